// Check suite for the ring side of core/director: several Director cores
// joined by an in-memory network (no sockets, explicit time), checking ring
// forming, SYNC, and the propagation of users, hosts, moves and kicks.
#include <cstdlib>
#include <deque>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"
#include "check-ring-net.h"

#include "director.h"

using namespace director::core;
using namespace ring_net;


// Regression (fuzz-ring-director): a peer that sends VERSION again during the
// handshake made us send the host list and the users a second time, after our
// DONE. It is a protocol error now: the connection is closed once, with QUIT.
START_TEST(test_ring_duplicate_version_closes_the_connection)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	d.add_config_host(ip("10.0.0.1"), "", "");
	Effects fx;
	d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}}, ip("127.0.0.1"), 9090, t0,
		     fx);
	ck_assert_uint_eq(fx.ring_connects.size(), 1);
	RingConnId id = fx.ring_connects[0].id;
	d.ring_connected(id, t0, fx);
	d.ring_line(id, "VERSION\tdirector\t1\t9", t0, fx);
	auto count = [&](const char *prefix) {
		size_t n = 0;
		for (const auto &s : fx.ring_sends) {
			for (size_t at = s.data.find(prefix); at != std::string::npos;
			     at = s.data.find(prefix, at + 1))
				n += at == 0 || s.data[at - 1] == '\n';
		}
		return n;
	};
	ck_assert_uint_eq(count("HOST-HAND-START\t"), 1);
	ck_assert_uint_eq(count("DONE\n"), 1);
	ck_assert(fx.ring_closes.empty());
	d.ring_line(id, "VERSION\tdirector\t1\t9", t0, fx);
	ck_assert_uint_eq(count("HOST-HAND-START\t"), 1);
	ck_assert_uint_eq(count("QUIT\tDuplicate VERSION\n"), 1);
	ck_assert_uint_eq(fx.ring_closes.size(), 1);
	ck_assert_uint_eq(fx.ring_closes[0].id, id);
}
END_TEST

// Starts `d` as 127.0.0.2 in director_servers 127.0.0.1..<n> with mail host
// 10.0.0.1 and accepts a connection from 127.0.0.1, which sends VERSION and ME.
static RingConnId accept_from_left(Director &d, Effects &fx, uint8_t n)
{
	d.add_config_host(ip("10.0.0.1"), "", "");
	std::vector<RingDirectorConfig> servers;
	for (uint8_t i = 1; i <= n; i++)
		servers.push_back({IpAddr::v4(127, 0, 0, i), 9090});
	d.ring_start(servers, ip("127.0.0.2"), 9090, t0, fx);
	RingConnId in = d.ring_accept(ip("127.0.0.1"), t0, fx);
	ck_assert_uint_ne(in, 0);
	d.ring_line(in, "VERSION\tdirector\t1\t9", t0, fx);
	d.ring_line(in, "ME\t127.0.0.1\t9090\t1700000000", t0, fx);
	return in;
}

// Regression (fuzz-ring-director): CONNECT naming ourselves made us connect to
// our own ring listener. It is ignored now, like a CONNECT to a removed director.
START_TEST(test_ring_connect_to_self_is_ignored)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from_left(d, fx, 3);
	d.ring_line(in, "DONE", t0, fx); // ring changes count only after the handshake
	fx = Effects();
	d.ring_line(in, "CONNECT\t127.0.0.2\t9090", t0, fx);
	for (const auto &c : fx.ring_connects)
		ck_assert_msg(c.ip != ip("127.0.0.2"), "connecting to ourselves");
	// A CONNECT elsewhere is still followed.
	d.ring_line(in, "CONNECT\t127.0.0.1\t9090", t0, fx);
	bool to_left = false;
	for (const auto &c : fx.ring_connects)
		to_left |= c.ip == ip("127.0.0.1");
	ck_assert(to_left);
}
END_TEST

// Regression (fuzz-ring-director): a HOST line with a vhost count in the billions
// made the next lookup build a hash ring of that many points (tens of GB). Such a
// line is ignored now, as doveadm's HOST-SET over the limit is refused.
START_TEST(test_ring_host_with_too_many_vhosts_is_ignored)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from_left(d, fx, 2);
	for (const char *line : {"HOST-HAND-START\t0", "HOST\t10.0.0.9\t4000000000\t\tU0\t",
				 "HOST\t10.0.0.1\t1001\t\tU0\t", "HOST\t10.0.0.2\t1000\t\tU0\t",
				 "HOST-HAND-END\t0", "DONE"})
		d.ring_line(in, line, t0, fx);
	ck_assert(fx.ring_closes.empty());
	bool big = false, kept = false, max = false;
	for (const auto &h : d.host_list()) {
		big |= h.ip == ip("10.0.0.9");
		kept |= h.ip == ip("10.0.0.1") && h.vhost_count == 100;
		max |= h.ip == ip("10.0.0.2") && h.vhost_count == 1000;
	}
	ck_assert(!big);
	ck_assert(kept);
	ck_assert(max);
	UserLookup l = d.user_lookup(d.user_hash("alice"), "", t0);
	ck_assert(l.hashed.has_value());
}
END_TEST

START_TEST(test_ring_of_three_forms_and_syncs)
{
	Net net(3);
	net.tick(2);
	ck_assert(net.all_synced());
	for (auto &d : net.dirs) {
		int left = 0, right = 0;
		for (const auto &e : d->director_list(net.now)) {
			left += e.type == "left";
			right += e.type == "right";
		}
		ck_assert_int_eq(left, 1);
		ck_assert_int_eq(right, 1);
	}
}
END_TEST

// Directors joining a ring at once (the last 4, 3 or 2 of 5 start at the
// same moment, the others one by one): the ring must still close, every
// director with one left and one right, without a DIRECTOR storm (the
// harness aborts if the network never goes quiet).
START_TEST(test_ring_directors_joining_at_once_close_the_ring)
{
	for (size_t together_from = 1; together_from <= 3; together_from++) {
		Net net(5, DirectorConfig(), together_from);
		net.tick(10);
		for (size_t i = 0; i < net.dirs.size(); i++) {
			ck_assert_msg(net.dirs[i]->ring_synced(), "together from %zu: director %zu not synced",
				      together_from, i);
			int left = 0, right = 0;
			for (const auto &e : net.dirs[i]->director_list(net.now)) {
				left += e.type == "left";
				right += e.type == "right";
			}
			ck_assert_int_eq(left, 1);
			ck_assert_int_eq(right, 1);
		}
	}
}
END_TEST

START_TEST(test_ring_user_assignment_is_seen_by_every_director)
{
	Net net(3);
	net.tick(2);
	net.dirs[0]->lookup(1, "alice", "", net.now, net.fxs[0]);
	std::string h = host_of(net.fxs[0], 1);
	if (h.empty()) {
		for (size_t i = 0; i < 3; i++)
			for (auto &l : net.logs[i]->lines)
				fprintf(stderr, "d%zu: %s\n", i, l.c_str());
	}
	ck_assert(!h.empty());
	net.settle();
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(net.current(i, "alice") == h, "director %zu: '%s'", i,
			      net.current(i, "alice").c_str());
	// A login through another director gets the same host.
	net.dirs[2]->lookup(2, "alice", "", net.now, net.fxs[2]);
	ck_assert(host_of(net.fxs[2], 2) == h);
}
END_TEST

START_TEST(test_ring_host_change_reaches_everyone_and_reply_waits_for_sync)
{
	Net net(3);
	net.tick(2);
	AdminReply r = net.dirs[1]->host_set(7, ip("10.0.0.9"), "", 50, false, net.now, net.fxs[1]);
	ck_assert(r.later);
	net.settle();
	bool ok = false;
	for (auto &a : net.fxs[1].admin)
		ok = ok || (a.id == 7 && a.result == AdminResult::ok);
	ck_assert_msg(ok, "HOST-SET not answered after the ring synced");
	for (auto &d : net.dirs) {
		bool seen = false;
		for (const auto &h : d->host_list())
			seen = seen || (h.ip == ip("10.0.0.9") && h.vhost_count == 50);
		ck_assert(seen);
		ck_assert_uint_eq(d->hosts().hosts_hash(), net.dirs[0]->hosts().hosts_hash());
	}
	ck_assert(net.all_synced());
}
END_TEST

START_TEST(test_ring_move_kicks_on_every_director_and_blocks_until_done)
{
	Net net(3);
	net.tick(2);
	net.dirs[0]->lookup(1, "bob", "", net.now, net.fxs[0]);
	std::string old_host = host_of(net.fxs[0], 1);
	net.settle();
	std::string target = old_host == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
	uint32_t hash = net.dirs[0]->user_hash("bob");
	for (auto &fx : net.fxs)
		fx.kicks.clear();
	ck_assert(net.dirs[1]->user_move(hash, ip(target.c_str()), net.now, net.fxs[1]).result ==
		  AdminResult::ok);
	net.settle();
	// Every director kicks the user's sessions locally, then reports.
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(net.fxs[i].kicks.size(), 1);
		ck_assert(kick_ipc_line(net.fxs[i].kicks[0].kick) == "proxy\t*\tKICK-DIRECTOR-HASH\t" + std::to_string(hash));
		ck_assert(net.current(i, "bob") == target);
	}
	net.dirs[2]->lookup(5, "bob", "", net.now, net.fxs[2]);
	ck_assert(host_of(net.fxs[2], 5).empty()); // waits for the kill round
	for (size_t i = 0; i < 3; i++) {
		JobId job = net.fxs[i].kicks[0].id;
		net.fxs[i].kicks.clear();
		net.dirs[i]->kick_done(job, true, "", net.now, net.fxs[i]);
		net.settle();
	}
	for (auto &d : net.dirs)
		ck_assert_uint_eq(d->users_moving(), 1); // in the kick delay now
	net.tick(3);
	for (auto &d : net.dirs)
		ck_assert_uint_eq(d->users_moving(), 0);
	ck_assert(host_of(net.fxs[2], 5) == target);
}
END_TEST

START_TEST(test_ring_conflicting_assignment_resolves_to_lower_ip)
{
	Net net(2);
	net.tick(2);
	uint32_t hash = net.dirs[0]->user_hash("carol");
	// Both directors know carol on 10.0.0.2 ...
	net.dirs[0]->user_move(hash, ip("10.0.0.2"), net.now, net.fxs[0]);
	net.settle();
	for (size_t i = 0; i < 2; i++) {
		for (auto &j : net.fxs[i].kicks)
			net.dirs[i]->kick_done(j.id, true, "", net.now, net.fxs[i]);
		net.fxs[i].kicks.clear();
	}
	net.tick(3);
	ck_assert(net.current(1, "carol") == "10.0.0.2");
	// ... when director 0's connection delivers a contradicting USER.
	RingConnId from0 = 0;
	for (const auto &e : net.dirs[1]->director_list(net.now)) {
		if (e.has_connection && e.ip && *e.ip == Net::addr(0))
			from0 = e.conn;
	}
	ck_assert(from0 != 0);
	net.dirs[1]->ring_line(from0,
			       "USER\t" + std::to_string(hash) + "\t10.0.0.1\t" + std::to_string(net.now),
			       net.now, net.fxs[1]);
	net.settle();
	// The lower IP wins everywhere, and sessions elsewhere are kicked.
	ck_assert(net.current(1, "carol") == "10.0.0.1");
	ck_assert(net.current(0, "carol") == "10.0.0.1");
	bool kicked = false;
	for (auto &j : net.fxs[1].kicks)
		kicked = kicked || kick_ipc_line(j.kick) == "proxy\t*\tKICK-DIRECTOR-HASH\t" + std::to_string(hash) +
						 "\t10.0.0.1";
	ck_assert(kicked);
}
END_TEST

START_TEST(test_ring_frozen_director_is_dropped_within_seconds)
{
	Net net(3);
	net.tick(2);
	ck_assert(net.all_synced());
	net.freeze(2);
	int secs = 0;
	while (secs < 20) {
		net.tick(1);
		secs++;
		bool dropped = true;
		for (const auto &e : net.dirs[0]->director_list(net.now)) {
			if (e.ip && *e.ip == Net::addr(2) && e.has_connection)
				dropped = false;
		}
		if (dropped && net.dirs[0]->ring_synced() && net.dirs[1]->ring_synced())
			break;
	}
	ck_assert_msg(secs < 10, "took %d secs", secs);
	// The two left form a ring and serve new users.
	net.dirs[1]->lookup(9, "dave", "", net.now, net.fxs[1]);
	ck_assert(!host_of(net.fxs[1], 9).empty());
	// Closed connections do not pile up: only the live ones remain listed.
	net.tick(2);
	size_t conns = 0;
	for (const auto &e : net.dirs[0]->director_list(net.now))
		conns += e.has_connection;
	ck_assert_uint_le(conns, 2);
	ck_assert_uint_le(net.dirs[0]->ring_connection_count(), 2);
}
END_TEST

// Ring timeouts follow the monotonic clock: after the live directors' wall
// clocks were set back an hour, a frozen peer is still dropped by its ping
// timeout within seconds (on the wall clock it was an hour away), and the ring
// still times out a director that never finishes its handshake.
START_TEST(test_ring_ping_timeout_fires_after_a_backward_clock_jump)
{
	Net net(3);
	net.tick(2);
	ck_assert(net.all_synced());
	for (auto &off : net.wall_offset)
		off = -3600;
	net.tick(2);
	ck_assert(net.all_synced());
	net.freeze(2);
	int secs = 0;
	while (secs < 20) {
		net.tick(1);
		secs++;
		bool dropped = true;
		for (const auto &e : net.dirs[0]->director_list(net.at(0))) {
			if (e.ip && *e.ip == Net::addr(2) && e.has_connection)
				dropped = false;
		}
		if (dropped && net.dirs[0]->ring_synced() && net.dirs[1]->ring_synced())
			break;
	}
	ck_assert_msg(secs < 10, "took %d secs", secs);
	net.dirs[1]->lookup(9, "dave", "", net.at(1), net.fxs[1]);
	ck_assert(!host_of(net.fxs[1], 9).empty());
}
END_TEST

// Found by the chaos test: shutting down closed the right side, which
// reconnected inside the same loop, forever.
START_TEST(test_ring_shutdown_quits_every_peer_and_connects_nowhere)
{
	Net net(3);
	net.tick(2);
	Effects fx;
	net.dirs[0]->ring_shutdown(net.now, fx);
	ck_assert(fx.ring_connects.empty());
	ck_assert_uint_eq(fx.ring_closes.size(), 2);
	size_t quits = 0;
	for (auto &s : fx.ring_sends)
		quits += s.data.rfind("QUIT\tShutting down", 0) == 0;
	ck_assert_uint_eq(quits, 2);
}
END_TEST

// Regression (outside audit): finishing an incoming handshake re-sorted the user
// list while the outgoing user stream to our right was in progress, and the
// stream's position was not adjusted: users that arrived from the left during
// the stream were never sent to the right. 5,000 users arrive from the left
// while the stream of 25,000 runs; every one must reach the right.
START_TEST(test_ring_users_arriving_during_a_stream_all_reach_the_right)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	const int64_t now = t0 + 1000;
	d.add_config_host(ip("10.0.0.1"), "", "");
	d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}},
		     ip("127.0.0.2"), 9090, now, fx);
	auto handshake_from_left = [&](uint32_t first_hash, unsigned n, int64_t oldest) {
		RingConnId in = d.ring_accept(ip("127.0.0.1"), now, fx);
		ck_assert_uint_ne(in, 0);
		for (const char *line : {"VERSION\tdirector\t1\t9", "ME\t127.0.0.1\t9090\t1700001000",
					 "HOST-HAND-START\t0", "HOST\t10.0.0.1\t100\t\tU0\t",
					 "HOST-HAND-END\t0"})
			d.ring_line(in, line, now, fx);
		for (unsigned i = 0; i < n; i++) {
			std::string line = "U\t" + std::to_string(first_hash + i) +
					   "\t10.0.0.1\t" + std::to_string(oldest + (i * 7919) % 300);
			d.ring_line(in, line, now, fx);
		}
		d.ring_line(in, "DONE", now, fx);
		return in;
	};
	handshake_from_left(1, 25000, now - 400);
	ck_assert_uint_eq(d.user_count(), 25000);

	ck_assert_uint_ge(fx.ring_connects.size(), 1);
	RingConnId out = 0;
	for (const auto &c : fx.ring_connects) {
		if (c.ip == ip("127.0.0.3"))
			out = c.id;
	}
	ck_assert_uint_ne(out, 0);
	d.ring_connected(out, now, fx);
	fx = Effects();
	d.ring_line(out, "VERSION\tdirector\t1\t9", now, fx);
	d.ring_line(out, "ME\t127.0.0.3\t9090\t1700001000", now, fx);
	ck_assert(d.ring_wants_drain(out));

	// The left reconnects while the stream runs and brings 5,000 more users,
	// older than the ones already streamed.
	handshake_from_left(1000000, 5000, now - 800);
	ck_assert_uint_eq(d.user_count(), 30000);
	for (int i = 0; i < 100 && d.ring_wants_drain(out); i++)
		d.ring_drained(out, now, fx);
	ck_assert(!d.ring_wants_drain(out));

	std::vector<bool> seen(5000, false);
	bool done = false;
	for (const auto &s : fx.ring_sends) {
		if (s.id != out)
			continue;
		size_t start = 0;
		while (start < s.data.size()) {
			size_t lf = s.data.find('\n', start);
			std::string line = s.data.substr(start, lf - start);
			start = lf + 1;
			done |= line == "DONE";
			size_t tab = line.find('\t');
			if (tab == std::string::npos)
				continue;
			std::string cmd = line.substr(0, tab);
			if (cmd != "U" && cmd != "USER")
				continue;
			unsigned long h = std::strtoul(line.c_str() + tab + 1, nullptr, 10);
			if (h >= 1000000 && h < 1005000)
				seen[h - 1000000] = true;
		}
	}
	ck_assert(done);
	unsigned missing = 0;
	for (bool b : seen)
		missing += !b;
	ck_assert_msg(missing == 0, "%u of 5000 users never sent to the right", missing);
}
END_TEST

// Regression (outside audit): USER timestamps from peers were used unbounded. A
// USER with 4294967295 after the handshake kept the user forever (and went round
// the ring), INT64_MAX overflowed the expiry arithmetic, and ME with INT64_MIN
// overflowed the clock difference. They are bounded, and USER is capped at now.
START_TEST(test_ring_peer_timestamps_are_bounded_and_capped)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	d.add_config_host(ip("10.0.0.1"), "", "");
	d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}}, ip("127.0.0.2"), 9090, t0,
		     fx);
	RingConnId in = d.ring_accept(ip("127.0.0.1"), t0, fx);
	d.ring_line(in, "VERSION\tdirector\t1\t9", t0, fx);
	d.ring_line(in, "ME\t127.0.0.1\t9090\t-9223372036854775808", t0, fx);
	bool clock_logged = false;
	for (size_t i = 0; i < log.lines.size(); i++) {
		if (log.lines[i].find("clock differs by -" + std::to_string(t0) + " secs") ==
		    std::string::npos)
			continue;
		clock_logged = true;
		// Stock's words, and the peer as a field for event filters.
		const std::string &peer = log.fields[i].peer;
		ck_assert(peer.find("127.0.0.1") != std::string::npos);
		ck_assert(log.lines[i].rfind("director(" + peer + "): Director clock", 0) == 0);
	}
	ck_assert(clock_logged);
	d.ring_line(in, "DONE", t0, fx);
	ck_assert(fx.ring_closes.empty());
	d.ring_line(in, "USER\t1\t10.0.0.1\t4294967295", t0, fx);
	d.ring_line(in, "USER\t2\t10.0.0.1\t9223372036854775807", t0, fx);
	d.ring_line(in, "USER\t3\t10.0.0.1\t-9223372036854775808", t0, fx);
	ck_assert(fx.ring_closes.empty());
	size_t found = 0;
	for (const auto &e : d.user_list(std::nullopt)) {
		ck_assert_int_le(e.expire_time, t0 + DirectorConfig().user_expire_secs);
		found++;
	}
	ck_assert_uint_eq(found, 2); // user 3 is long expired
}
END_TEST

// Regression (outside audit): every DIRECTOR or CONNECT line from a peer added a
// director, with linear lookups: 40,000 lines stalled the event loop for seconds.
// The director list is capped and indexed now.
START_TEST(test_ring_director_lines_are_capped)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from_left(d, fx, 2);
	d.ring_line(in, "DONE", t0, fx);
	for (uint32_t i = 0; i < 40000; i++) {
		std::string addr = "10." + std::to_string((i >> 16) & 255) + "." +
				   std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
		d.ring_line(in, (i % 2 ? "DIRECTOR\t" : "CONNECT\t") + addr + "\t9090", t0, fx);
	}
	std::set<std::string> listed;
	for (const auto &e : d.director_list(t0)) {
		if (e.ip)
			listed.insert(e.ip->to_string() + ":" + std::to_string(e.port));
	}
	ck_assert_uint_le(listed.size(), max_ring_directors);
}
END_TEST

// Regression (outside audit): stock never forwards handshake users, so when two
// directors restart at once the one whose only source was the other misses users
// (an all-ours ring lost 1,931 of 20,000). Users a left's handshake adds after our
// handshake to the right is over now go right as USER commands.
START_TEST(test_ring_users_from_a_late_left_handshake_are_passed_right)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	const int64_t now = t0 + 1000;
	d.add_config_host(ip("10.0.0.1"), "", "");
	d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}},
		     ip("127.0.0.2"), 9090, now, fx);
	RingConnId out = 0;
	for (const auto &c : fx.ring_connects) {
		if (c.ip == ip("127.0.0.3"))
			out = c.id;
	}
	ck_assert_uint_ne(out, 0);
	d.ring_connected(out, now, fx);
	for (const char *line : {"VERSION\tdirector\t1\t9", "ME\t127.0.0.3\t9090\t1700001000",
				 "DONE"})
		d.ring_line(out, line, now, fx);
	ck_assert(!d.ring_wants_drain(out));
	fx = Effects();
	RingConnId in = d.ring_accept(ip("127.0.0.1"), now, fx);
	for (const char *line : {"VERSION\tdirector\t1\t9", "ME\t127.0.0.1\t9090\t1700001000",
				 "HOST-HAND-START\t1", "HOST\t10.0.0.1\t100\t\tU0\t",
				 "HOST-HAND-END\t1"})
		d.ring_line(in, line, now, fx);
	for (unsigned i = 0; i < 100; i++)
		d.ring_line(in, "U\t" + std::to_string(500 + i) + "\t10.0.0.1\t" +
				       std::to_string(now - 10),
			    now, fx);
	d.ring_line(in, "DONE", now, fx);
	for (int i = 0; i < 10 && d.ring_wants_drain(out); i++)
		d.ring_drained(out, now, fx);
	std::set<unsigned long> passed;
	for (const auto &snd : fx.ring_sends) {
		if (snd.id != out)
			continue;
		size_t start = 0;
		while (start < snd.data.size()) {
			size_t lf = snd.data.find('\n', start);
			std::string line = snd.data.substr(start, lf - start);
			start = lf + 1;
			if (line.rfind("USER\t", 0) == 0)
				passed.insert(std::strtoul(line.c_str() + 5, nullptr, 10));
		}
	}
	ck_assert_uint_eq(passed.size(), 100);
	// Only once: a second handshake with the same users passes nothing on.
	fx = Effects();
	RingConnId in2 = d.ring_accept(ip("127.0.0.1"), now, fx);
	for (const char *line : {"VERSION\tdirector\t1\t9", "ME\t127.0.0.1\t9090\t1700001000",
				 "HOST-HAND-START\t1", "HOST-HAND-END\t1"})
		d.ring_line(in2, line, now, fx);
	for (unsigned i = 0; i < 100; i++)
		d.ring_line(in2, "U\t" + std::to_string(500 + i) + "\t10.0.0.1\t" +
					std::to_string(now - 10),
			    now, fx);
	d.ring_line(in2, "DONE", now, fx);
	for (const auto &snd : fx.ring_sends)
		ck_assert_msg(snd.id != out || snd.data.find("USER\t") == std::string::npos,
			      "passed on again: %s", snd.data.c_str());
}
END_TEST

// The core reports each finished handshake with the users that went over it
// (director_ring_connected), and keeps counting them for the disconnect.
START_TEST(test_ring_handshakes_report_users_sent_and_received)
{
	RecordingLog log;
	Director d(DirectorConfig(), log);
	Effects fx;
	const int64_t now = t0 + 1000;
	d.add_config_host(ip("10.0.0.1"), "", "");
	d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}},
		     ip("127.0.0.2"), 9090, now, fx);
	RingConnId in = d.ring_accept(ip("127.0.0.1"), now, fx);
	ck_assert_uint_ne(in, 0);
	for (const char *line : {"VERSION\tdirector\t1\t9", "ME\t127.0.0.1\t9090\t1700001000",
				 "HOST-HAND-START\t0", "HOST\t10.0.0.1\t100\t\tU0\t",
				 "HOST-HAND-END\t0"})
		d.ring_line(in, line, now, fx);
	for (unsigned i = 0; i < 30; i++)
		d.ring_line(in, "U\t" + std::to_string(100 + i) + "\t10.0.0.1\t" +
					std::to_string(now - 10),
			    now, fx);
	ck_assert(fx.ring_handshakes.empty());
	d.ring_line(in, "DONE", now, fx);
	ck_assert_uint_eq(fx.ring_handshakes.size(), 1);
	ck_assert_uint_eq(fx.ring_handshakes[0].id, in);
	ck_assert_uint_eq(fx.ring_handshakes[0].users.sent, 0);
	ck_assert_uint_eq(fx.ring_handshakes[0].users.received, 30);

	RingConnId out = 0;
	for (const auto &c : fx.ring_connects) {
		if (c.ip == ip("127.0.0.3"))
			out = c.id;
	}
	ck_assert_uint_ne(out, 0);
	d.ring_connected(out, now, fx);
	fx = Effects();
	d.ring_line(out, "VERSION\tdirector\t1\t9", now, fx);
	d.ring_line(out, "ME\t127.0.0.3\t9090\t1700001000", now, fx);
	for (int i = 0; i < 100 && d.ring_wants_drain(out); i++)
		d.ring_drained(out, now, fx);
	ck_assert(fx.ring_handshakes.empty());
	d.ring_line(out, "DONE", now, fx);
	ck_assert_uint_eq(fx.ring_handshakes.size(), 1);
	ck_assert_uint_eq(fx.ring_handshakes[0].id, out);
	ck_assert_uint_eq(fx.ring_handshakes[0].users.sent, 30);
	ck_assert_uint_eq(fx.ring_handshakes[0].users.received, 0);

	// the counts stay readable until the connection is swept
	auto counts = d.ring_user_counts(in);
	ck_assert(counts.has_value());
	ck_assert_uint_eq(counts->received, 30);
	d.ring_closed(in, "EOF", now, fx);
	d.tick(now + 1, fx);
	ck_assert(!d.ring_user_counts(in).has_value());
	ck_assert(!d.ring_user_counts(12345678).has_value());
}
END_TEST

// A handshake whose users had to be appended out of order leaves the expiry
// list's sort for when the event loop is idle (Director::run_idle_work()), so its
// own lines go out first; tick() sorts before it expires anything.
START_TEST(test_ring_handshake_sorts_the_expiry_list_when_idle)
{
	for (bool by_tick : {false, true}) {
		RecordingLog log;
		Director d(DirectorConfig(), log);
		Effects fx;
		const int64_t now = t0 + 1000;
		d.add_config_host(ip("10.0.0.1"), "", "");
		d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}},
			     ip("127.0.0.2"), 9090, now, fx);
		RingConnId in = d.ring_accept(ip("127.0.0.1"), now, fx);
		for (const char *line :
		     {"VERSION\tdirector\t1\t9", "ME\t127.0.0.1\t9090\t1700001000",
		      "HOST-HAND-START\t0", "HOST\t10.0.0.1\t100\t\tU0\t", "HOST-HAND-END\t0"})
			d.ring_line(in, line, now, fx);
		// Newest first: past the bounded walk, the older ones are appended.
		for (unsigned i = 0; i < 300; i++)
			d.ring_line(in, "U\t" + std::to_string(100 + i) + "\t10.0.0.1\t" +
						std::to_string(now - 10 - i),
				    now, fx);
		ck_assert(!d.idle_work_due());
		d.ring_line(in, "DONE", now, fx);
		ck_assert_uint_eq(fx.ring_handshakes.size(), 1);
		ck_assert(d.idle_work_due());
		auto in_order = [&d]() {
			std::vector<UserListEntry> l = d.user_list(std::nullopt);
			for (size_t i = 1; i < l.size(); i++) {
				if (l[i - 1].expire_time > l[i].expire_time)
					return false;
			}
			return l.size() == 300;
		};
		ck_assert(!in_order());
		if (by_tick)
			d.tick(now + 1, fx);
		else
			d.run_idle_work();
		ck_assert(!d.idle_work_due());
		ck_assert(in_order());
	}
}
END_TEST

int main()
{
	Suite *s = suite_create("director-ring");
	TCase *tc = tcase_create("forming");
	tcase_add_test(tc, test_ring_of_three_forms_and_syncs);
	tcase_add_test(tc, test_ring_directors_joining_at_once_close_the_ring);
	tcase_add_test(tc, test_ring_duplicate_version_closes_the_connection);
	tcase_add_test(tc, test_ring_connect_to_self_is_ignored);
	tcase_add_test(tc, test_ring_host_with_too_many_vhosts_is_ignored);
	tcase_add_test(tc, test_ring_frozen_director_is_dropped_within_seconds);
	tcase_add_test(tc, test_ring_ping_timeout_fires_after_a_backward_clock_jump);
	tcase_add_test(tc, test_ring_shutdown_quits_every_peer_and_connects_nowhere);
	suite_add_tcase(s, tc);
	tc = tcase_create("propagation");
	tcase_add_test(tc, test_ring_user_assignment_is_seen_by_every_director);
	tcase_add_test(tc, test_ring_host_change_reaches_everyone_and_reply_waits_for_sync);
	tcase_add_test(tc, test_ring_move_kicks_on_every_director_and_blocks_until_done);
	tcase_add_test(tc, test_ring_conflicting_assignment_resolves_to_lower_ip);
	tcase_add_test(tc, test_ring_users_arriving_during_a_stream_all_reach_the_right);
	tcase_add_test(tc, test_ring_peer_timestamps_are_bounded_and_capped);
	tcase_add_test(tc, test_ring_director_lines_are_capped);
	tcase_add_test(tc, test_ring_users_from_a_late_left_handshake_are_passed_right);
	tcase_add_test(tc, test_ring_handshakes_report_users_sent_and_received);
	tcase_add_test(tc, test_ring_handshake_sorts_the_expiry_list_when_idle);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
