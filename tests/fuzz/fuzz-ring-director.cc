// libFuzzer target: the ring side of the Director state machine. The director under
// test is 127.0.0.2:9090 in director_servers 127.0.0.1-3 (and .4); the input plays
// every other director: it accepts and refuses connections, completes or fails the
// director's connects, and sends ring lines (raw, from templates with fuzzed fields,
// or echoes of lines the director sent, which is how a SYNC comes round the ring),
// mixed with lookups, proxy-notify, admin commands, job completions and time.
// Invariants are checked after every step (see check()); at the end every peer goes
// away and the director must drain: lookups answered, moves and kicks finished,
// deferred admin replies sent. Any violation aborts.
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "director-harness.h"
#include "user-digest.h"

const char *const director::fuzz::target_name = "fuzz-ring-director";

using namespace director::fuzz;

namespace {

std::string printable(std::string_view s)
{
	std::string out;
	for (char ch : s) {
		if (ch == '\t')
			out += "\\t";
		else if (uint8_t(ch) < 0x20 || uint8_t(ch) >= 0x7f)
			out += "\\x" + std::string(1, "0123456789abcdef"[uint8_t(ch) >> 4]) +
			       "0123456789abcdef"[uint8_t(ch) & 15];
		else
			out += ch;
	}
	return out;
}

const uint16_t ring_port = 9090;
const char *const self_ip = "127.0.0.2";
// Peers: listed ones first; 127.0.0.4 is listed only when the config byte says so;
// 127.0.0.9 never is (DIRECTOR lines may still add it).
const char *const peer_ips[] = {"127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.9"};
// Ring origins: the peers and ourselves.
const char *const origin_ips[] = {"127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.9",
				  "127.0.0.2"};
const char *const host_ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
				"10.0.0.5", "10.0.0.6", "2001:db8::1", "10.0.0.99"};
const char *const tags[] = {"", "a", "b", "zz"};
const char *const users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7",
			     "U0", "u1*master", "x@d1", "y@d1", "x@d2", "", "u8", "u9"};
const unsigned vhost_choices[] = {0, 1, 5, 100, 1000, 2, 3, 50};
const unsigned minor_choices[] = {9, 9, 8, 7, 6, 5, 3, 0};

struct Harness : Ledger {
	NullLog log;
	Director dir;
	Effects fx;
	int64_t now;

	// A ring connection as the peer sees it.
	struct Conn {
		bool incoming;      // the director accepted it
		bool connected;     // outgoing: ring_connected() called
		size_t peer;        // index into peer_ips (outgoing: the connect target)
		RingParseContext peer_view; // how the peer parses what the director sends
		bool digest_offered = false; // the peer's VERSION offered USER-DIGEST
	};
	std::map<RingConnId, Conn> conns;
	size_t closed_since_tick = 0;
	std::deque<std::string> sent_history; // recent lines the director sent
	std::map<std::string, uint32_t> next_seq;  // per origin ip, for templates
	// Lookups, notifies, ring lines, USER-MOVEs and DIRECTOR-ADDs so far: each
	// adds at most one user or one director.
	size_t fed = 0;

	Harness(DirectorConfig cfg, int64_t t0) : dir(std::move(cfg), log), now(t0) {}

	static IpAddr ip(const char *s) { return *IpAddr::parse(s); }

	// A line the director sent must be one a stock peer accepts.
	void check_sent_line(Conn &c, std::string_view line)
	{
		if (line.find('\0') != std::string_view::npos || line.find('\r') != std::string_view::npos)
			fail("director sent a line with NUL or CR", step);
		// The extension between our directors: only to a peer that offered it.
		if (is_user_digest_line(line)) {
			if (!c.digest_offered)
				fail("director sent USER-DIGEST to a peer that did not offer it", step);
			return;
		}
		auto parsed = parse_ring_line(line, c.peer_view);
		if (!parsed.ok()) {
			fprintf(stderr, "line '%s': %s\n", printable(line).c_str(),
				parsed.error().c_str());
			fail("director sent a line its peer cannot parse", step);
		}
		switch (parsed.value().kind) {
		case RingCommandKind::version:
			c.peer_view.version_received = true;
			c.peer_view.peer_minor = parsed.value().minor_version;
			break;
		case RingCommandKind::me:
			c.peer_view.me_received = true;
			if (parsed.value().ip != ip(self_ip) || parsed.value().port != ring_port)
				fail("director's ME names someone else", step);
			break;
		case RingCommandKind::host_hand_start:
			c.peer_view.in_host_list = true;
			break;
		case RingCommandKind::host_hand_end:
			c.peer_view.in_host_list = false;
			break;
		case RingCommandKind::done:
			c.peer_view.handshake_done = true;
			break;
		default:
			break;
		}
		sent_history.emplace_back(line);
		if (sent_history.size() > 64)
			sent_history.pop_front();
	}

	// Consumes fx (and what carrying it out produces), checking every effect.
	void absorb()
	{
		for (int round = 0; !fx.empty(); round++) {
			if (round > 100)
				fail("effects did not settle", step);
			Effects todo;
			std::swap(todo, fx);
			absorb_once(todo);
		}
		check();
	}

	void absorb_once(Effects &todo)
	{
		std::vector<HostListEntry> list = dir.host_list();
		size_t sent_bytes = 0;
		record(todo, list);
		for (JobId job : todo.admin_resume)
			trace("  -> admin resume job=%llu\n", (unsigned long long)job);
		for (const Effects::RingConnect &c : todo.ring_connects) {
			trace("  -> connect id=%llu %s:%u\n", (unsigned long long)c.id,
			      c.ip.to_string().c_str(), c.port);
			if (conns.count(c.id) != 0)
				fail("connect with a connection id in use", step);
			if (c.ip == ip(self_ip) && c.port == ring_port)
				fail("director connects to itself", step);
			size_t peer = 0;
			while (peer < 3 && ip(peer_ips[peer]) != c.ip)
				peer++;
			conns[c.id] = Conn{false, false, peer, RingParseContext::fresh(true)};
		}
		for (const Effects::RingSend &s : todo.ring_sends) {
			auto it = conns.find(s.id);
			if (it == conns.end())
				fail("ring send on a connection that is not open", step);
			if (s.data.empty() || s.data.back() != '\n')
				fail("ring send does not end in LF", step);
			sent_bytes += s.data.size();
			size_t start = 0;
			while (start < s.data.size()) {
				size_t lf = s.data.find('\n', start);
				std::string_view line(s.data.data() + start, lf - start);
				trace("  -> [%llu] %s\n", (unsigned long long)s.id,
				      printable(line).c_str());
				check_sent_line(it->second, line);
				start = lf + 1;
			}
		}
		// Output is bounded by what the director holds: a handshake sends
		// every host and user once per connection.
		size_t holds = dir.user_count() + list.size() + dir.director_list(now).size() + 16;
		if (sent_bytes > holds * 200 * (conns.size() + 1))
			fail("one step produced more ring output than the state explains", step);
		for (const Effects::RingClose &c : todo.ring_closes) {
			trace("  -> close id=%llu (%s)\n", (unsigned long long)c.id, c.reason.c_str());
			if (conns.erase(c.id) == 0)
				fail("close of a connection that is not open", step);
			closed_since_tick++;
			dir.ring_closed(c.id, "closed by us", now, fx);
		}
	}

	void check()
	{
		Ledger::check(dir, dir.host_list(), false);
		if (dir.user_count() > fed)
			fail("more users than lookups, notifies and ring lines could add", step);
		if (dir.ring_connection_count() > conns.size() + closed_since_tick)
			fail("the director tracks connections that are gone", step);
		if (dir.director_list(now).size() > 8 + fed + conns.size())
			fail("director list grew beyond what the input named", step);
	}

	RingConnId pick_conn(Bytes &in, bool connected_only)
	{
		std::vector<RingConnId> ids;
		for (const auto &[id, c] : conns) {
			if (!connected_only || c.incoming || c.connected)
				ids.push_back(id);
		}
		if (ids.empty())
			return 0;
		return ids[in.pick(ids.size())];
	}

	std::string origin(Bytes &in, size_t which)
	{
		std::string o = origin_ips[which];
		uint8_t b = in.u8();
		uint32_t seq;
		if (b < 200)
			seq = ++next_seq[o]; // a fresh change
		else
			seq = b - 200;       // an old or replayed one
		return o + "\t9090\t" + std::to_string(seq);
	}

	std::string hash_field(Bytes &in)
	{
		uint8_t b = in.u8();
		if (b < 192)
			return std::to_string(dir.user_hash(users[b % 16]));
		return std::to_string(b);
	}

	std::string updown(Bytes &in)
	{
		uint8_t b = in.u8();
		return std::string(b & 1 ? "D" : "U") + std::to_string(b < 128 ? 0 : now - (b & 63));
	}

	// A USER-DIGEST line at the fewest bits (16 buckets; sub-buckets: 128).
	std::string digest_line(Bytes &in)
	{
		auto digests = [&in](size_t n) {
			std::string out;
			uint8_t seed = in.u8();
			for (size_t i = 0; i < n; i++) {
				char hex[17];
				snprintf(hex, sizeof hex, "%016llx",
					 (unsigned long long)(seed * 0x9e3779b97f4a7c15ULL * (i + 1)));
				out += '\t';
				out += hex;
			}
			return out;
		};
		const std::string p = "USER-DIGEST\t";
		switch (in.pick(8)) {
		case 0:
			return p + "BEGIN\t4\t" + std::to_string(in.pick(40)) + "\t" +
			       std::to_string(in.bit());
		case 1:
			return p + "D\t0" + digests(16);
		case 2:
			return p + "END";
		case 3:
			return p + (in.bit() ? "REFINE" : "DELTA") + "\t4\t1";
		case 4: {
			char hex[17];
			snprintf(hex, sizeof hex, "%016llx", 1ULL << in.pick(16));
			return p + "B\t0\t" + hex;
		}
		case 5:
			return p + "SUB\t7\t" + std::to_string(in.pick(40));
		case 6:
			return p + "D\t" + std::to_string(8 * in.pick(16)) + digests(8);
		default:
			return p + "FULL";
		}
	}

	// A ring line from a template with fuzzed fields.
	std::string template_line(Bytes &in, const Conn &c)
	{
		const char *peer = peer_ips[c.peer];
		std::string host = host_ips[in.pick(8)];
		switch (in.u8() % 28) {
		case 0: {
			std::string v = "VERSION\tdirector\t1\t" +
					std::to_string(minor_choices[in.pick(8)]);
			// half the time one of ours, with the USER-DIGEST offers
			if (in.bit())
				v += "\tUSER-DIGEST\tUSER-DIGEST-CHECK\tUSER-DIGEST-REFINE";
			return v;
		}
		case 1: {
			const char *me = in.u8() < 224 ? peer : peer_ips[in.pick(4)];
			return std::string("ME\t") + me + "\t9090\t" + std::to_string(now + in.pick(4) - 1);
		}
		case 2:
			return std::string("DIRECTOR\t") + origin_ips[in.pick(5)] + "\t9090";
		case 3:
			return std::string("DIRECTOR-REMOVE\t") + origin_ips[in.pick(5)] + "\t9090";
		case 4:
			return "HOST-HAND-START\t" + std::to_string(in.bit());
		case 5:
			return "HOST\t" + host + "\t" + std::to_string(vhost_choices[in.pick(8)]) + "\t" +
			       tags[in.pick(4)] + "\t" + updown(in) + "\t" + (in.bit() ? "mail.example" : "");
		case 6:
			return "HOST-HAND-END\t" + std::to_string(in.bit());
		case 7:
			return "U\t" + hash_field(in) + "\t" + host + "\t" +
			       std::to_string(now - in.pick(2000)) + (in.bit() ? "\tw" : "");
		case 8:
			if (in.bit())
				return digest_line(in);
			return "OPTIONS\tconsistent-hashing";
		case 9:
			return "DONE";
		case 10: {
			size_t o = in.pick(5);
			return "SYNC\t" + std::string(origin_ips[o]) + "\t9090\t" +
			       std::to_string(in.pick(8)) + "\t9\t" + std::to_string(now) + "\t" +
			       (in.bit() ? "0" : std::to_string(in.u8()));
		}
		case 11:
		case 12:
		case 13:
			// What the director sent, as if it came round the ring.
			if (!sent_history.empty())
				return sent_history[in.pick(sent_history.size())];
			return "PING";
		case 14:
			return "USER\t" + hash_field(in) + "\t" + host + "\t" +
			       std::to_string(now - in.pick(2000)) + (in.bit() ? "\tw" : "");
		case 15:
			return "HOST\t" + origin(in, in.pick(5)) + "\t" + host + "\t" +
			       std::to_string(vhost_choices[in.pick(8)]) + "\t" + tags[in.pick(4)] + "\t" +
			       updown(in) + "\t";
		case 16:
			return "HOST-REMOVE\t" + origin(in, in.pick(5)) + "\t" + host;
		case 17:
			return "HOST-FLUSH\t" + origin(in, in.pick(5)) + "\t" + host;
		case 18:
			return "USER-MOVE\t" + origin(in, in.pick(5)) + "\t" + hash_field(in) + "\t" + host;
		case 19:
			return "USER-WEAK\t" + origin(in, in.pick(5)) + "\t" + hash_field(in) + "\t" + host;
		case 20:
			return "USER-KILLED\t" + hash_field(in);
		case 21:
			return "USER-KILLED-EVERYWHERE\t" + origin(in, in.pick(5)) + "\t" + hash_field(in);
		case 22:
			return "USER-KICK\t" + origin(in, in.pick(5)) + "\t" + users[in.pick(16)];
		case 23:
			return "USER-KICK-ALT\t" + origin(in, in.pick(5)) + "\tuser_x\t" + users[in.pick(16)];
		case 24:
			return "USER-KICK-HASH\t" + origin(in, in.pick(5)) + "\t" + hash_field(in) + "\t" + host;
		case 25:
			return "PING\t" + std::to_string(now) + "\t0";
		case 26:
			return in.bit() ? "PONG\t" + std::to_string(now) + "\t0"
					: std::string("CONNECT\t") + origin_ips[in.pick(5)] + "\t9090";
		default:
			return "QUIT\tgoing away";
		}
	}

	void deliver(RingConnId id, std::string_view line)
	{
		fed++;
		trace("t=%lld <- [%llu] %s\n", (long long)now, (unsigned long long)id,
		      printable(line).c_str());
		auto c = conns.find(id);
		if (c != conns.end() && user_digest_version_offered(line))
			c->second.digest_offered = true;
		dir.ring_line(id, line, now, fx);
		absorb();
	}

	void op(Bytes &in)
	{
		switch (in.u8() % 16) {
		case 0: {
			size_t peer = in.pick(4);
			trace("t=%lld accept from %s\n", (long long)now, peer_ips[peer]);
			RingConnId id = dir.ring_accept(ip(peer_ips[peer]), now, fx);
			if (id != 0) {
				if (conns.count(id) != 0)
					fail("accept returned a connection id in use", step);
				conns[id] = Conn{true, true, peer, RingParseContext::fresh(false)};
			}
			absorb();
			break;
		}
		case 1: {
			bool ok = in.u8() < 220;
			std::vector<RingConnId> pending;
			for (const auto &[id, c] : conns) {
				if (!c.incoming && !c.connected)
					pending.push_back(id);
			}
			if (pending.empty())
				break;
			RingConnId id = pending[in.pick(pending.size())];
			trace("t=%lld connect id=%llu %s\n", (long long)now, (unsigned long long)id,
			      ok ? "established" : "failed");
			if (ok) {
				conns[id].connected = true;
				dir.ring_connected(id, now, fx);
			} else {
				conns.erase(id);
				closed_since_tick++;
				dir.ring_closed(id, "connect() failed", now, fx);
			}
			absorb();
			break;
		}
		case 2: {
			RingConnId id = pick_conn(in, false);
			if (id == 0)
				break;
			trace("t=%lld peer closes id=%llu\n", (long long)now, (unsigned long long)id);
			conns.erase(id);
			closed_since_tick++;
			dir.ring_closed(id, "EOF", now, fx);
			absorb();
			break;
		}
		case 3:
		case 4: {
			RingConnId id = pick_conn(in, true);
			std::string_view line = in.line();
			if (id != 0)
				deliver(id, line);
			break;
		}
		case 5:
		case 6:
		case 7:
		case 8: {
			RingConnId id = pick_conn(in, true);
			if (id == 0)
				break;
			std::string line = template_line(in, conns[id]);
			deliver(id, line);
			break;
		}
		case 9: {
			uint8_t b = in.u8();
			now += b < 200 ? b % 20 : int64_t(b - 199) * 30;
			trace("t=%lld tick\n", (long long)now);
			closed_since_tick = 0;
			dir.tick(now, fx);
			absorb();
			break;
		}
		case 10: {
			const char *user = users[in.pick(16)];
			std::string tag = tags[in.pick(4)];
			RequestId id = new_request(tag);
			fed++;
			trace("t=%lld lookup id=%llu user='%s' tag='%s'\n", (long long)now,
			      (unsigned long long)id, user, tag.c_str());
			dir.lookup(id, user, tag, now, fx);
			absorb();
			break;
		}
		case 11: {
			uint8_t b = in.u8();
			if (b & 0x80) {
				RequestId id = 1 + in.pick(unsigned(next_request));
				trace("cancel_lookup id=%llu\n", (unsigned long long)id);
				dir.cancel_lookup(id);
				cancelled(id);
			} else {
				fed++;
				trace("t=%lld notify_alive '%s'\n", (long long)now, users[b % 16]);
				dir.notify_alive(users[b % 16], now, fx);
			}
			absorb();
			break;
		}
		case 12:
			admin(in);
			break;
		case 13: {
			uint8_t b = in.u8();
			bool ok = in.bit();
			std::set<JobId> &jobs = b & 0x80 ? flush_jobs : ipc_jobs;
			if (jobs.empty())
				break;
			auto it = jobs.begin();
			std::advance(it, b % jobs.size());
			JobId id = *it;
			jobs.erase(it);
			trace("t=%lld %s_done id=%llu ok=%d\n", (long long)now,
			      &jobs == &ipc_jobs ? "ipc" : "flush", (unsigned long long)id, int(ok));
			if (&jobs == &ipc_jobs)
				dir.kick_done(id, ok, ok ? "" : "ipc failed", now, fx);
			else
				dir.flush_done(id, ok, now, fx);
			absorb();
			break;
		}
		case 14: {
			for (const auto &[id, c] : conns) {
				if (dir.ring_wants_drain(id)) {
					trace("t=%lld drained id=%llu\n", (long long)now,
					      (unsigned long long)id);
					dir.ring_drained(id, now, fx);
				}
			}
			absorb();
			break;
		}
		default:
			query(in);
			break;
		}
	}

	void admin(Bytes &in)
	{
		JobId job = next_admin_job++;
		uint8_t b = in.u8();
		const char *host = host_ips[in.pick(8)];
		switch (b % 9) {
		case 0: {
			const char *tag = tags[in.pick(3)];
			unsigned vhosts = vhost_choices[in.pick(8)];
			trace("t=%lld host_set job=%llu %s tag='%s' vhosts=%u\n", (long long)now,
			      (unsigned long long)job, host, tag, vhosts);
			admin_reply(job, dir.host_set(job, ip(host), tag, vhosts, false, now, fx));
			break;
		}
		case 1: {
			bool down = in.bit();
			trace("t=%lld host_set_down job=%llu %s %d\n", (long long)now,
			      (unsigned long long)job, host, int(down));
			admin_reply(job, dir.host_set_down(job, ip(host), down, now, fx));
			break;
		}
		case 2:
			trace("t=%lld host_remove job=%llu %s\n", (long long)now, (unsigned long long)job,
			      host);
			admin_reply(job, dir.host_remove(job, ip(host), now, fx));
			break;
		case 3:
			trace("t=%lld host_flush job=%llu %s\n", (long long)now, (unsigned long long)job,
			      host);
			admin_reply(job, dir.host_flush(job, ip(host), now, fx));
			break;
		case 4: {
			uint32_t hash = dir.user_hash(users[in.pick(16)]);
			trace("t=%lld user_move %u %s\n", (long long)now, hash, host);
			fed++;
			AdminReply r = dir.user_move(hash, ip(host), now, fx);
			if (r.later)
				fail("USER-MOVE reply deferred", step);
			break;
		}
		case 5: {
			bool alt = in.bit();
			const char *user = users[in.pick(16)];
			trace("t=%lld user_kick job=%llu alt=%d '%s'\n", (long long)now,
			      (unsigned long long)job, int(alt), user);
			admin_reply(job, dir.user_kick(job, alt ? "user_x" : "", user, false, fx));
			break;
		}
		case 6: {
			const char *d = origin_ips[in.pick(5)];
			trace("t=%lld director_add %s\n", (long long)now, d);
			fed++;
			AdminReply r = dir.director_add(ip(d), ring_port, now, fx);
			if (r.later)
				fail("DIRECTOR-ADD reply deferred", step);
			break;
		}
		case 7: {
			const char *d = origin_ips[in.pick(5)];
			trace("t=%lld director_remove job=%llu %s\n", (long long)now,
			      (unsigned long long)job, d);
			admin_reply(job, dir.director_remove(job, ip(d), ring_port, now, fx));
			break;
		}
		default: {
			JobId gone = 1 + in.pick(unsigned(next_admin_job));
			trace("admin_gone job=%llu\n", (unsigned long long)gone);
			dir.admin_gone(gone);
			Ledger::admin_gone(gone);
			break;
		}
		}
		absorb();
	}

	void query(Bytes &in)
	{
		uint8_t b = in.u8();
		std::vector<HostListEntry> list = dir.host_list();
		UserLookup ul = dir.user_lookup(dir.user_hash(users[b % 16]), tags[in.pick(4)], now);
		if (ul.current && find_host(list, *ul.current) == nullptr)
			fail("USER-LOOKUP current host not in host_list()", step);
		if (ul.hashed && find_host(list, *ul.hashed) == nullptr)
			fail("USER-LOOKUP hashed host not in host_list()", step);
		for (const DirectorListEntry &d : dir.director_list(now)) {
			if (d.has_connection && d.conn != 0 && conns.count(d.conn) == 0 &&
			    d.type != "removed")
				fail("director list shows a connection that is gone", step);
		}
		(void)dir.admin_may_run(next_admin_job++);
		absorb();
	}

	// Every peer goes away; jobs finish; time passes until nothing is left.
	void drain()
	{
		trace("drain\n");
		for (int round = 0; round < 400; round++) {
			step++;
			while (!conns.empty()) {
				RingConnId id = conns.begin()->first;
				conns.erase(conns.begin());
				dir.ring_closed(id, "EOF", now, fx);
				absorb();
			}
			finish_jobs(dir, now, fx);
			absorb();
			now += 5;
			closed_since_tick = 0;
			trace("t=%lld drain tick\n", (long long)now);
			dir.tick(now, fx);
			absorb();
			if (conns.empty() && quiet(dir))
				break;
		}
		check_drained(dir);
	}
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Bytes in{data, size};
	DirectorConfig cfg;
	uint8_t c = in.u8();
	static const uint32_t expire_choices[] = {10, 60, 900, 1};
	cfg.user_expire_secs = expire_choices[c & 3];
	cfg.user_kick_delay_secs = (c >> 2) & 3;
	cfg.flush_program_set = (c & 0x10) != 0;
	cfg.max_parallel_moves = 1 + ((c >> 5) & 1);
	bool four = (c & 0x40) != 0;
	if (c & 0x80)
		cfg.username_hash = *UsernameHash::parse("%Ln");

	const int64_t t0 = 1700000000;
	Harness h(std::move(cfg), t0);
	uint8_t hosts = in.u8();
	for (size_t i = 0; i < 8; i++) {
		if (hosts & (1u << i))
			h.dir.add_config_host(Harness::ip(host_ips[i]), "", tags[i % 3 == 2 ? 1 : 0]);
	}
	std::vector<RingDirectorConfig> servers;
	for (const char *d : {"127.0.0.1", self_ip, "127.0.0.3"})
		servers.push_back({Harness::ip(d), ring_port});
	if (four)
		servers.push_back({Harness::ip("127.0.0.4"), ring_port});
	h.dir.ring_start(servers, Harness::ip(self_ip), ring_port, h.now, h.fx);
	h.absorb();
	while (!in.done() && h.step < 3000) {
		h.step++;
		h.op(in);
	}
	h.drain();
	return 0;
}
