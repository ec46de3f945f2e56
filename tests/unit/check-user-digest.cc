// Check suite for core/user-digest (bucketed user-table digests: buckets, wire
// form, reader) and the delta join in the ring handshake between our directors:
// the acceptor offers its digests, the connector sends only the users of the
// buckets that differ, and an acceptor joining a running ring keeps its users of
// the equal buckets. A stock peer (no offer) sees none of it.
#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"
#include "check-ring-net.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "director.h"
#include "state-file.h"
#include "state-snapshot.h"
#include "user-digest.h"

using namespace director::core;

namespace {

struct NullLog : LogSink {
	std::vector<std::string> lines;
	void log(LogLevel, const std::string &m) override { lines.push_back(m); }
	bool has(const std::string &part) const
	{
		for (const auto &l : lines) {
			if (l.find(part) != std::string::npos)
				return true;
		}
		return false;
	}
};

const int64_t t0 = 1700000000;

// A director's state file as it would write it at `now`.
std::string snapshot_of(Director &dir, int64_t now)
{
	auto snap = dir.state_snapshot(state_fingerprint(), now);
	std::string out;
	for (int i = 0; i < 1000000 && !snap->next_chunk(out, 1000); i++) {
	}
	return out;
}

void restore_into(Director &dir, const std::string &file, int64_t now)
{
	auto parsed = StateFile::parse(file, state_fingerprint());
	ck_assert(parsed.ok());
	dir.restore_state(*parsed, now);
}

struct Node {
	NullLog log;
	Director dir;
	Effects fx;
	Node() : dir(DirectorConfig(), log)
	{
		dir.add_config_host(ip("10.0.0.1"), "", "");
		dir.add_config_host(ip("10.0.0.2"), "", "");
	}
	std::string snapshot(int64_t now) { return snapshot_of(dir, now); }
	void restore(const std::string &file, int64_t now) { restore_into(dir, file, now); }
};

using Users = std::map<uint32_t, std::string>;
Users users_of(const Director &d)
{
	Users u;
	for (const UserListEntry &e : d.user_list(std::nullopt))
		u[e.user_hash] = e.host.to_string();
	return u;
}

// Digests of a {hash: host} map (no weak users in these tests).
std::vector<uint64_t> digests_of(const Users &users, unsigned bits)
{
	std::vector<uint64_t> d(size_t{1} << bits, 0);
	for (const auto &[h, host] : users)
		d[user_digest_bucket(h, bits)] += user_digest_entry(h, user_digest_host_key(ip(host.c_str())), false);
	return d;
}

// The lines of every send to `id`.
std::vector<std::string> lines_to(const Effects &fx, RingConnId id)
{
	std::vector<std::string> out;
	for (const auto &s : fx.ring_sends) {
		if (s.id != id)
			continue;
		size_t start = 0;
		while (start < s.data.size()) {
			size_t lf = s.data.find('\n', start);
			out.push_back(s.data.substr(start, lf - start));
			start = lf + 1;
		}
	}
	return out;
}

size_t count_prefix(const std::vector<std::string> &lines, const std::string &prefix)
{
	size_t n = 0;
	for (const auto &l : lines)
		n += l.rfind(prefix, 0) == 0;
	return n;
}

// A ring's table: 400 hashed users on two hosts at t0.
std::string ring_state(Node &n, int64_t at)
{
	n.dir.start_alone(t0);
	for (int i = 0; i < 400; i++)
		n.dir.lookup(RequestId(i + 1), "user" + std::to_string(i), "", t0, n.fx);
	return n.snapshot(at);
}

void feed(Director &d, RingConnId id, const std::vector<std::string> &lines, int64_t now,
	  Effects &fx)
{
	for (const auto &l : lines)
		d.ring_line(id, l, now, fx);
}

// `a`, restored from `file` as `self` in a ring of 127.0.0.1-3, dialled its right
// `right`, whose VERSION (offering digests) and ME arrived at t0 + 10. Returns the
// connection; `fx` holds what was sent on it after it was up.
RingConnId restored_dials_right(Node &a, const std::string &file, const char *self,
				const char *right, Effects &fx)
{
	a.restore(file, t0 + 10);
	a.dir.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}},
			 ip(self), 9090, t0 + 10, fx);
	RingConnId out = fx.ring_connects.front().id;
	a.dir.ring_connected(out, t0 + 10, fx);
	fx = Effects();
	a.dir.ring_line(out, "VERSION\tdirector\t1\t9\tUSER-DIGEST", t0 + 10, fx);
	a.dir.ring_line(out, "ME\t" + std::string(right) + "\t9090\t" + std::to_string(t0 + 10),
			t0 + 10, fx);
	return out;
}

// The digests of a right whose running ring put every one of `users` on the other
// host.
std::vector<std::string> running_ring_disagreeing_everywhere(const Users &users)
{
	Users other;
	for (const auto &[h, host] : users)
		other[h] = host == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
	unsigned bits = user_digest_bits_for(other.size());
	return format_user_digests(bits, other.size(), digests_of(other, bits), true);
}

} // namespace

// --- the digest module ----------------------------------------------------------

START_TEST(test_bits_grow_with_the_table)
{
	ck_assert_uint_eq(user_digest_bits_for(0), user_digest_min_bits);
	ck_assert_uint_eq(user_digest_bits_for(1000), 5);
	ck_assert_uint_eq(user_digest_bits_for(1000000), 15); // 32768 buckets of ~31
	ck_assert_uint_eq(user_digest_bits_for(100000000), user_digest_max_bits);
	ck_assert_uint_eq(user_digest_bucket(0xffffffffu, 14), 16383);
	ck_assert_uint_eq(user_digest_bucket(0x0003ffffu, 14), 0);
}
END_TEST

START_TEST(test_entry_depends_on_host_and_weak_flag)
{
	uint64_t k1 = user_digest_host_key(ip("10.0.0.1"));
	uint64_t k2 = user_digest_host_key(ip("10.0.0.2"));
	ck_assert(k1 != k2);
	ck_assert(user_digest_host_key(ip("::ffff:10.0.0.1")) != k1);
	ck_assert(user_digest_entry(5, k1, false) != user_digest_entry(5, k2, false));
	ck_assert(user_digest_entry(5, k1, false) != user_digest_entry(5, k1, true));
	ck_assert(user_digest_entry(5, k1, false) != user_digest_entry(6, k1, false));
	// a sum: two equal entries in one bucket do not cancel
	ck_assert(2 * user_digest_entry(5, k1, false) != 0);
}
END_TEST

START_TEST(test_digest_block_round_trip)
{
	std::vector<uint64_t> d(1 << 8);
	for (size_t i = 0; i < d.size(); i++)
		d[i] = 0x0123456789abcdefULL * (i + 1);
	auto lines = format_user_digests(8, 12345, d);
	ck_assert_uint_eq(lines.size(), 2 + (256 + user_digest_per_line - 1) / user_digest_per_line);
	UserDigestReader r;
	for (size_t i = 0; i < lines.size(); i++) {
		ck_assert_msg(lines[i].size() < 1024, "line %zu is %zu bytes", i, lines[i].size());
		auto res = r.line(lines[i]);
		ck_assert_msg(res.ok(), "%s", res.ok() ? "" : res.error().c_str());
		ck_assert(*res == (i + 1 == lines.size()));
	}
	ck_assert(r.kind() == UserDigestReader::Kind::digests);
	ck_assert_uint_eq(r.bits(), 8);
	ck_assert_uint_eq(r.peer_users(), 12345);
	ck_assert(r.digests() == d);

	UserDigestBuckets b(12);
	for (uint32_t x : {0u, 63u, 64u, 2047u, 2048u, 4095u})
		b.add(x);
	auto dl = format_user_digest_delta(b);
	UserDigestReader r2;
	for (const auto &l : dl) {
		ck_assert(l.size() < 1024);
		ck_assert(r2.line(l).ok());
	}
	ck_assert(r2.done() && r2.kind() == UserDigestReader::Kind::delta);
	ck_assert_uint_eq(r2.buckets().count(), 6);
	ck_assert(r2.buckets().contains(2048) && !r2.buckets().contains(1));
}
END_TEST

START_TEST(test_bad_digest_lines_are_errors)
{
	const std::vector<std::vector<std::string>> bad = {
		{"USER-DIGEST\tBEGIN\t99\t10\t0"},
		{"USER-DIGEST\tBEGIN\t4"},
		{"USER-DIGEST\tBEGIN\t4\t1"},
		{"USER-DIGEST\tBEGIN\t4\t1\t2"},
		{"USER-DIGEST\tD\t0\t0000000000000000"},
		{"USER-DIGEST\tBEGIN\t4\t1\t0", "USER-DIGEST\tD\t1\t0000000000000000"},
		{"USER-DIGEST\tBEGIN\t4\t1\t0", "USER-DIGEST\tD\t0\t00000000000000zz"},
		{"USER-DIGEST\tBEGIN\t4\t1\t0", "USER-DIGEST\tEND"},
		{"USER-DIGEST\tBEGIN\t4\t1\t0",
		 "USER-DIGEST\tD\t0" + std::string(17 * 17, '0')},
		{"USER-DIGEST\tDELTA\t4\t2", "USER-DIGEST\tB\t0\t0000000000000001",
		 "USER-DIGEST\tEND"},
		{"USER-DIGEST\tDELTA\t4\t1", "USER-DIGEST\tB\t0\t0000000000010000",
		 "USER-DIGEST\tEND"},
		{"USER-DIGEST\tFULL", "USER-DIGEST\tFULL"},
		{"USER-DIGEST\tWHAT"},
	};
	for (const auto &seq : bad) {
		UserDigestReader r;
		bool failed = false;
		for (const auto &l : seq)
			failed |= !r.line(l).ok();
		ck_assert_msg(failed, "accepted: %s", seq.back().c_str());
	}
	ck_assert(user_digest_version_offered("VERSION\tdirector\t1\t9\tUSER-DIGEST"));
	ck_assert(user_digest_version_offered(
		"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t00\tUSER-DIGEST"));
	ck_assert(!user_digest_version_offered("VERSION\tdirector\t1\t9"));
	ck_assert(!user_digest_version_offered("ME\t1\t2\t3\tUSER-DIGEST"));
}
END_TEST

// The refinement's two blocks: a sparse REFINE bitmap, and SUB digests for
// exactly the sub-buckets of the named buckets.
START_TEST(test_refine_and_sub_blocks_round_trip)
{
	UserDigestBuckets named(15);
	for (uint32_t b : {5u, 6u, 20000u})
		named.add(b);
	auto refine = format_user_digest_refine(named);
	// the header, one B line for buckets 0-2047 and one for 18432-20479, END
	ck_assert_uint_eq(refine.size(), 4);
	UserDigestReader r;
	for (const auto &l : refine)
		ck_assert(r.line(l).ok());
	ck_assert(r.done() && r.kind() == UserDigestReader::Kind::refine);
	ck_assert_uint_eq(r.bits(), 15);
	ck_assert_uint_eq(r.buckets().count(), 3);
	ck_assert(r.buckets().contains(20000) && !r.buckets().contains(7));

	const unsigned fine_bits = 15 + user_digest_refine_bits;
	const size_t per = size_t{1} << user_digest_refine_bits;
	std::vector<uint64_t> packed(3 * per);
	for (size_t i = 0; i < packed.size(); i++)
		packed[i] = 0x9e3779b97f4a7c15ULL * (i + 1);
	auto sub = format_user_digest_sub(named, 777, packed);
	ck_assert_uint_eq(sub.size(), 2 + 3);
	UserDigestReader s;
	for (const auto &l : sub)
		ck_assert(s.line(l).ok());
	ck_assert(s.done() && s.kind() == UserDigestReader::Kind::sub);
	ck_assert_uint_eq(s.bits(), fine_bits);
	ck_assert_uint_eq(s.peer_users(), 777);
	ck_assert_uint_eq(s.buckets().count(), 3 * per);
	for (uint32_t b : {5u, 6u, 20000u}) {
		for (size_t k = 0; k < per; k++)
			ck_assert(s.buckets().contains(uint32_t(b * per + k)));
	}
	ck_assert(s.digests() == packed);
	ck_assert(!s.buckets().contains(uint32_t(7 * per)));

	// a DELTA at the refined bits, sparse
	UserDigestBuckets fine_diff(fine_bits);
	fine_diff.add(200000);
	auto delta = format_user_digest_delta(fine_diff, true);
	ck_assert_uint_eq(delta.size(), 3);
	UserDigestReader d;
	for (const auto &l : delta)
		ck_assert(d.line(l).ok());
	ck_assert(d.done() && d.buckets().count() == 1 && d.buckets().contains(200000));

	const std::string zero(16, '0');
	const std::vector<std::vector<std::string>> bad = {
		{"USER-DIGEST\tREFINE\t19\t1"},  // past the first round's bits
		{"USER-DIGEST\tSUB\t6\t1"},	    // below the least a SUB can have
		{"USER-DIGEST\tSUB\t22\t1"},
		{"USER-DIGEST\tDELTA\t22\t1"},
		{"USER-DIGEST\tSUB\t7\t1", "USER-DIGEST\tD\t8\t" + zero,
		 "USER-DIGEST\tD\t0\t" + zero},  // backwards
		{"USER-DIGEST\tREFINE\t8\t1", "USER-DIGEST\tB\t65\t0000000000000001"},
		{"USER-DIGEST\tREFINE\t8\t2", "USER-DIGEST\tB\t64\t0000000000000001",
		 "USER-DIGEST\tEND"},	    // names fewer than announced
		{"USER-DIGEST\tREFINE\t8\t1", "USER-DIGEST\tD\t0\t" + zero},
		{"USER-DIGEST\tSUB\t7\t1", "USER-DIGEST\tB\t0\t" + zero},
	};
	for (const auto &seq : bad) {
		UserDigestReader x;
		bool failed = false;
		for (const auto &l : seq)
			failed |= !x.line(l).ok();
		ck_assert_msg(failed, "accepted: %s", seq.back().c_str());
	}
}
END_TEST

// Sub-bucket digests of the named buckets only, packed: the same as a full
// pass at those bits gives them.
START_TEST(test_digests_of_named_buckets_only)
{
	HostList hosts;
	HostId a = *hosts.add(ip("10.0.0.1"), "");
	HostId b = *hosts.add(ip("10.0.0.2"), "");
	UserTable users;
	for (uint32_t i = 0; i < 5000; i++)
		users.insert(i * 2654435761u, 0, i % 2 ? a : b, 1000);
	const unsigned bits = 7, fine_bits = bits + user_digest_refine_bits;
	UserDigestBuckets named(bits);
	named.add(3);
	named.add(100);
	auto all = user_table_digests(users, hosts, fine_bits);
	auto sub = user_table_sub_digests(users, hosts, named);
	const size_t per = size_t{1} << user_digest_refine_bits;
	ck_assert_uint_eq(sub.size(), 2 * per);
	size_t nonzero = 0;
	for (size_t k = 0; k < per; k++) {
		ck_assert(sub[k] == all[3 * per + k]);
		ck_assert(sub[per + k] == all[100 * per + k]);
		nonzero += (sub[k] != 0) + (sub[per + k] != 0);
	}
	ck_assert_uint_gt(nonzero, 8);
}
END_TEST

// The digests a table keeps as it changes equal a pass over its users, at every
// bucket count and for sub-buckets: through inserts, erases, moves, weak flags,
// a host's users dropped and its id handed to another IP, and a bulk load with
// duplicates.
START_TEST(test_kept_digests_match_a_walk)
{
	HostList hosts;
	std::vector<HostId> ids;
	for (const char *a : {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
		ids.push_back(*hosts.add(ip(a), ""));
	auto key = [&hosts](HostId h) { return user_digest_host_key(hosts.get(h).ip); };
	UserTable users;
	ck_assert(users.fine_digests() == nullptr);
	users.maintain_digests(key);
	ck_assert(users.fine_digests() != nullptr);

	uint64_t x = 88172645463325252ULL;
	auto rnd = [&x]() {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		return x;
	};
	std::vector<std::pair<uint32_t, TagId>> keys;
	auto same = [&](const char *when) {
		// 20,000 users keep 13 bits (4 a bucket): the first two are sums of
		// kept digests, the others walks whatever the table keeps.
		ck_assert_uint_eq(users.digest_bits(), 13);
		for (unsigned bits : {4u, 13u, 15u, 18u})
			ck_assert_msg(user_table_digests(users, hosts, bits) ==
					      user_table_digests_walked(users, hosts, bits),
				      "%s: digests at %u bits differ from a walk", when, bits);
		for (unsigned bits : {4u, 10u, 12u}) {
			UserDigestBuckets named(bits);
			for (int i = 0; i < 40; i++)
				named.add(uint32_t(rnd() % named.buckets()));
			ck_assert_msg(user_table_sub_digests(users, hosts, named) ==
					      user_table_sub_digests_walked(users, hosts, named),
				      "%s: sub-digests of %u-bit buckets differ", when, bits);
		}
	};
	for (int i = 0; i < 20000; i++) {
		auto hash = uint32_t(rnd());
		TagId tag = TagId(rnd() % 2);
		if (users.find(hash, tag) == no_user) {
			users.insert(hash, tag, ids[rnd() % ids.size()], 1000 + uint32_t(i));
			keys.push_back({hash, tag});
		}
	}
	same("after inserts");
	for (int i = 0; i < 6000; i++) {
		auto [hash, tag] = keys[rnd() % keys.size()];
		UserIndex u = users.find(hash, tag);
		if (u == no_user)
			continue;
		switch (rnd() % 3) {
		case 0:
			users.erase(u);
			break;
		case 1:
			users.set_host(u, ids[rnd() % ids.size()]);
			break;
		default:
			users.set_weak(u, !users.weak(u));
		}
	}
	same("after erases, moves and weak flags");
	ck_assert_uint_gt(users.erase_host(ids[1]), 0);
	hosts.remove(ids[1]);
	HostId reused = *hosts.add(ip("10.9.9.9"), "");
	for (int i = 0; i < 3000; i++) {
		auto [hash, tag] = keys[rnd() % keys.size()];
		UserIndex u = users.find(hash, tag);
		if (u != no_user)
			users.set_host(u, reused);
	}
	same("after a host's id went to another IP");

	// A bulk load, with some users twice, into the emptied table.
	for (auto [hash, tag] : keys) {
		UserIndex u = users.find(hash, tag);
		if (u != no_user)
			users.erase(u);
	}
	same("emptied");
	users.load_begin(keys.size());
	for (size_t i = 0; i < keys.size(); i += 2)
		users.load_add(keys[i].first, keys[i].second, ids[i % 3 == 1 ? 0 : i % 3],
			       uint32_t(500 + i % 7));
	for (size_t i = 0; i < keys.size(); i += 10)
		users.load_add(keys[i].first, keys[i].second, reused, uint32_t(500 + i % 5));
	ck_assert_uint_gt(users.load_end(), 0);
	same("after a bulk load with duplicates");

	ck_assert_uint_eq(users.digest_bits(), 13); // a load keeps the bits the table had

	// Digests kept from the start of a table that already has users.
	UserTable late;
	for (size_t i = 0; i < keys.size(); i += 3)
		late.insert(keys[i].first, keys[i].second, reused, 1000);
	late.maintain_digests(key);
	ck_assert_uint_eq(late.digest_bits(), 11); // 6,667 users
	for (unsigned bits : {4u, 11u})
		ck_assert(user_table_digests(late, hosts, bits) ==
			  user_table_digests_walked(late, hosts, bits));
}
END_TEST

// The check after the handshake: a CHECK block (as BEGIN, at most 16 bits) and the
// left's answers.
START_TEST(test_check_block_and_answers)
{
	std::vector<uint64_t> d(1 << 5, 7);
	UserDigestReader r;
	for (const auto &l : format_user_digest_check(5, 99, d)) {
		ck_assert(is_user_digest_check_line(l));
		ck_assert(r.line(l).ok());
	}
	ck_assert(r.done() && r.kind() == UserDigestReader::Kind::check);
	ck_assert(r.digests() == d && r.peer_users() == 99 && !r.peer_ring_running());
	UserDigestReader too_big;
	ck_assert(!too_big.line("USER-DIGEST\tCHECK\t17\t1").ok());
	UserDigestReader no_bits;
	ck_assert(!no_bits.line("USER-DIGEST\tCHECK\t0\t0").ok());

	auto rep = parse_user_digest_reply(format_user_digest_repair(3, 32));
	ck_assert(rep.ok() && rep->kind == UserDigestReply::Kind::repair && rep->count == 3 &&
		  rep->buckets == 32);
	auto done = parse_user_digest_reply(format_user_digest_repaired(41));
	ck_assert(done.ok() && done->kind == UserDigestReply::Kind::repaired && done->count == 41);
	ck_assert(parse_user_digest_reply(format_user_digest_busy())->kind ==
		  UserDigestReply::Kind::busy);
	auto u = parse_user_digest_reply("USER-DIGEST\tU\t4000000000\t10.0.0.2\t1700000000");
	ck_assert(u.ok() && u->kind == UserDigestReply::Kind::user &&
		  u->user_hash == 4000000000u && u->ip == ip("10.0.0.2") &&
		  u->timestamp == 1700000000);
	for (const char *bad : {"USER-DIGEST\tU\t1\tnot-an-ip\t5", "USER-DIGEST\tU\t1\t10.0.0.2",
				"USER-DIGEST\tU\t-1\t10.0.0.2\t5",
				"USER-DIGEST\tREPAIR\t33\t32", "USER-DIGEST\tREPAIR\t1\t131072",
				"USER-DIGEST\tREPAIRED", "USER-DIGEST\tBUSY\tx", "USER-DIGEST\tCHECK"})
		ck_assert_msg(!parse_user_digest_reply(bad).ok(), "accepted %s", bad);
	for (const char *answer : {"USER-DIGEST\tU\t1", "USER-DIGEST\tREPAIR\t1\t2",
				   "USER-DIGEST\tBUSY"})
		ck_assert(!is_user_digest_check_line(answer));
	ck_assert(ring_version_offers("VERSION\tdirector\t1\t9\tUSER-DIGEST\tUSER-DIGEST-CHECK",
				      user_digest_check_offer));
	ck_assert(!ring_version_offers("VERSION\tdirector\t1\t9\tUSER-DIGEST",
				       user_digest_check_offer));
}
END_TEST

// --- the delta join --------------------------------------------------------------

// The acceptor: restored from a stale snapshot, joining its left's running ring.
// It offers its digests; the left names the buckets it sends and sends them; every
// other bucket keeps its restored users, and the table ends up as the left's.
START_TEST(test_acceptor_keeps_equal_buckets_and_takes_the_rest)
{
	Node ring;
	std::string file = ring_state(ring, t0 + 5);
	Users truth = users_of(ring.dir);
	ck_assert_uint_eq(truth.size(), 400);

	Node b;
	b.restore(file, t0 + 10);
	b.dir.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}},
			 ip("127.0.0.2"), 9090, t0 + 10, b.fx);
	ck_assert(!b.dir.ring_synced());
	Effects fx;
	RingConnId in = b.dir.ring_accept(ip("127.0.0.1"), t0 + 10, fx);
	// our VERSION carries the offer
	auto out = lines_to(fx, in);
	ck_assert(count_prefix(out, "VERSION\tdirector\t1\t9\tUSER-DIGEST") == 1);
	fx = Effects();
	b.dir.ring_line(in, "VERSION\tdirector\t1\t9\tUSER-DIGEST", t0 + 10, fx);
	b.dir.ring_line(in, "ME\t127.0.0.1\t9090\t" + std::to_string(t0 + 10), t0 + 10, fx);
	out = lines_to(fx, in);
	UserDigestReader digests;
	for (const auto &l : out) {
		if (is_user_digest_line(l))
			ck_assert(digests.line(l).ok());
	}
	ck_assert(digests.done() && digests.kind() == UserDigestReader::Kind::digests);
	ck_assert_uint_eq(digests.peer_users(), 400);
	ck_assert(digests.digests() == digests_of(truth, digests.bits()));

	// Meanwhile the ring moved three users and dropped one.
	unsigned bits = digests.bits();
	std::vector<uint32_t> hashes;
	for (const auto &[h, host] : truth)
		hashes.push_back(h);
	Users now = truth;
	std::set<uint32_t> changed_buckets;
	for (size_t i : {size_t(7), size_t(100), size_t(250)}) {
		uint32_t h = hashes[i];
		now[h] = now[h] == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
		changed_buckets.insert(user_digest_bucket(h, bits));
	}
	now.erase(hashes[300]);
	changed_buckets.insert(user_digest_bucket(hashes[300], bits));
	auto diff = user_digest_diff(digests_of(now, bits), digests.digests(), bits);
	ck_assert_uint_eq(diff.count(), changed_buckets.size());

	// Its host list replaces ours (in place: the users of the kept buckets stay).
	std::vector<std::string> hs = {"HOST-HAND-START\t1", "HOST\t10.0.0.1\t50\t\tU0\tmail1",
				       "HOST\t10.0.0.2\t100\t\tD1700000007\t",
				       "HOST\t10.0.0.3\t7\t\tU0\t", "HOST-HAND-END\t1"};
	for (const auto &l : format_user_digest_delta(diff))
		hs.push_back(l);
	size_t sent = 0;
	for (const auto &[h, host] : now) {
		if (!diff.contains_user(h))
			continue;
		hs.push_back("U\t" + std::to_string(h) + "\t" + host + "\t" + std::to_string(t0 + 8));
		sent++;
	}
	ck_assert(sent < 400 / 2);
	hs.push_back("OPTIONS\tconsistent-hashing");
	hs.push_back("DONE");
	feed(b.dir, in, hs, t0 + 11, fx);
	for (const auto &c : fx.ring_closes)
		ck_assert_msg(c.id != in, "closed: %s", c.reason.c_str());
	ck_assert(users_of(b.dir) == now);
	ck_assert(b.log.has("Delta join: kept " + std::to_string(now.size() - sent) + " users"));
	std::map<std::string, std::tuple<unsigned, bool, int64_t>> hosts;
	for (const HostListEntry &h : b.dir.host_list())
		hosts[h.ip.to_string()] = {h.vhost_count, h.down, h.last_updown_change};
	ck_assert_uint_eq(hosts.size(), 3);
	ck_assert(hosts["10.0.0.1"] == std::make_tuple(50u, false, int64_t(0)));
	ck_assert(hosts["10.0.0.2"] == std::make_tuple(100u, true, int64_t(1700000007)));
	ck_assert(hosts["10.0.0.3"] == std::make_tuple(7u, false, int64_t(0)));
}
END_TEST

// The same join without a delta (FULL, or a stock connector that never saw our
// offer): the left's users replace ours, as stock does.
START_TEST(test_acceptor_full_join_replaces_the_table)
{
	Node ring;
	std::string file = ring_state(ring, t0 + 5);
	for (bool stock : {false, true}) {
		Node b;
		b.restore(file, t0 + 10);
		b.dir.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090},
				  {ip("127.0.0.3"), 9090}},
				 ip("127.0.0.2"), 9090, t0 + 10, b.fx);
		Effects fx;
		RingConnId in = b.dir.ring_accept(ip("127.0.0.1"), t0 + 10, fx);
		fx = Effects();
		b.dir.ring_line(in, stock ? "VERSION\tdirector\t1\t9" : "VERSION\tdirector\t1\t9\tUSER-DIGEST",
				t0 + 10, fx);
		b.dir.ring_line(in, "ME\t127.0.0.1\t9090\t" + std::to_string(t0 + 10), t0 + 10, fx);
		// a stock peer never sees a USER-DIGEST line
		ck_assert_uint_eq(count_prefix(lines_to(fx, in), "USER-DIGEST"), stock ? 0 : 3); // BEGIN, one D line (16 buckets), END
		std::vector<std::string> hs = {"HOST-HAND-START\t1", "HOST\t10.0.0.1\t100\t\tU0\t",
					       "HOST\t10.0.0.2\t100\t\tU0\t", "HOST-HAND-END\t1"};
		if (!stock)
			hs.push_back("USER-DIGEST\tFULL");
		hs.push_back("U\t42\t10.0.0.2\t" + std::to_string(t0 + 8));
		hs.push_back("DONE");
		feed(b.dir, in, hs, t0 + 11, fx);
		Users want = {{42, "10.0.0.2"}};
		ck_assert(users_of(b.dir) == want);
	}
}
END_TEST

// The connector: its right offered digests; it holds its users until they
// arrive, then names the differing buckets and sends only their users.
// A restored connector whose right (ours) says its ring kept running sends it
// none of its stale users, at once: it does not wait for its left or the hold.
START_TEST(test_restored_connector_sends_nothing_to_a_running_ring)
{
	Node ring;
	std::string file = ring_state(ring, t0 + 5);
	Users users = users_of(ring.dir);
	// The right sent its digests (an older director of ours), or only said
	// that its ring runs (it saw our USER-DIGEST-RESTORED).
	for (bool digests : {true, false}) {
		Node a;
		Effects fx;
		RingConnId out = restored_dials_right(a, file, "127.0.0.1", "127.0.0.2", fx);
		ck_assert_uint_eq(count_prefix(lines_to(fx, out), "DONE"), 0); // held
		feed(a.dir, out,
		     digests ? running_ring_disagreeing_everywhere(users)
			     : format_user_digests(0, users.size(), {}, true),
		     t0 + 10, fx);
		auto lines = lines_to(fx, out);
		ck_assert_uint_eq(count_prefix(lines, "U\t"), 0);
		ck_assert_uint_eq(count_prefix(lines, "USER-DIGEST\tDELTA\t"), 1);
		ck_assert_uint_eq(count_prefix(lines, "DONE"), 1);
		ck_assert(a.log.has("The ring kept running while we were away"));
		// our table stays until our left replaces it
		ck_assert(users_of(a.dir) == users);
	}
}
END_TEST

// A restored director says so in the VERSION it sends its right, and only then.
START_TEST(test_restored_connector_says_so_in_its_version)
{
	Node ring;
	std::string file = ring_state(ring, t0 + 5);
	for (bool restored : {true, false}) {
		Node a;
		if (restored)
			a.restore(file, t0 + 10);
		Effects fx;
		a.dir.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}},
				 ip("127.0.0.1"), 9090, t0 + 10, fx);
		RingConnId out = fx.ring_connects.front().id;
		a.dir.ring_connected(out, t0 + 10, fx);
		auto lines = lines_to(fx, out);
		ck_assert_uint_eq(count_prefix(lines, "VERSION\t"), 1);
		ck_assert_uint_eq(count_prefix(lines, "VERSION\tdirector\t1\t9\tUSER-DIGEST\t"
							"USER-DIGEST-CHECK\tUSER-DIGEST-REFINE\t"
							"USER-DIGEST-RESTORED"),
				  restored ? 1 : 0);
	}
}
END_TEST

// An acceptor in a running ring spares a restored connector its digests (that
// connector sends it no users whatever they say): BEGIN with 0 bits and the
// ring flag, then END. Any other connector gets the digests.
START_TEST(test_running_acceptor_spares_a_restored_connector_its_digests)
{
	ring_net::Net net(2);
	for (unsigned i = 0; i < 50; i++)
		net.dirs[0]->lookup(RequestId(i + 1), "user" + std::to_string(i), "", net.at(0),
				    net.fxs[0]);
	net.settle();
	ck_assert(net.all_synced());
	Director &d = *net.dirs[1];
	ck_assert_uint_eq(users_of(d).size(), 50);
	for (bool restored : {true, false}) {
		Effects fx;
		// a second connection from its left (a listed director)
		RingConnId in = d.ring_accept(ip("127.0.0.1"), net.at(1), fx);
		ck_assert(in != 0);
		d.ring_line(in, std::string("VERSION\tdirector\t1\t9\tUSER-DIGEST\tUSER-DIGEST-CHECK") +
				(restored ? "\tUSER-DIGEST-RESTORED" : ""),
			    net.at(1), fx);
		UserDigestReader got;
		for (const auto &l : lines_to(fx, in)) {
			if (is_user_digest_line(l))
				ck_assert(got.line(l).ok());
		}
		ck_assert(got.done() && got.peer_ring_running());
		ck_assert_uint_eq(got.peer_users(), 50);
		if (restored) {
			ck_assert_uint_eq(got.bits(), 0);
		} else {
			ck_assert_uint_ne(got.bits(), 0);
			ck_assert(got.digests() == digests_of(users_of(d), got.bits()));
		}
	}
}
END_TEST

// The whole ring restarted with state files: each director dials its right and
// holds its user stream until its left says whether the ring kept running, and
// each left says so in a HOST-HAND-START that is applied only at its DONE, which
// comes after its own held stream. Around a ring that waited for the 20 s hold.
// A left that says its ring is not running either releases the hold at once.
START_TEST(test_restored_ring_restart_does_not_wait_for_the_hold)
{
	Node ring;
	std::string file = ring_state(ring, t0 + 5);
	Node a;
	Effects fx;
	RingConnId out = restored_dials_right(a, file, "127.0.0.2", "127.0.0.3", fx);
	// our right restarted too: its ring is not running
	feed(a.dir, out, format_user_digests(0, 0, {}, false), t0 + 10, fx);
	ck_assert_uint_eq(count_prefix(lines_to(fx, out), "DONE"), 0); // held

	// our left dials us; its handshake is held as well (no DONE yet)
	RingConnId in = a.dir.ring_accept(ip("127.0.0.1"), t0 + 11, fx);
	a.dir.ring_line(in, "VERSION\tdirector\t1\t9\tUSER-DIGEST", t0 + 11, fx);
	a.dir.ring_line(in, "ME\t127.0.0.1\t9090\t" + std::to_string(t0 + 11), t0 + 11, fx);
	ck_assert_uint_eq(count_prefix(lines_to(fx, out), "DONE"), 0);
	a.dir.ring_line(in, "HOST-HAND-START\t0", t0 + 11, fx);
	// the left's ring is not running: our restored users go to our right now
	auto lines = lines_to(fx, out);
	ck_assert_uint_eq(count_prefix(lines, "DONE"), 1);
	ck_assert_uint_eq(count_prefix(lines, "U\t"), users_of(a.dir).size());
}
END_TEST

// The race after such a restore: until our left's handshake replaces our stale
// table, a ring update that disagrees with a restored user is newer than it. The
// lower-IP conflict rule would keep our stale host (10.0.0.1 < 10.0.0.2) and push it
// on the ring, which then followed the restarted director.
START_TEST(test_restored_stale_table_takes_a_disagreeing_ring_update)
{
	Node ring;
	std::string file = ring_state(ring, t0 + 5);
	Users users = users_of(ring.dir);
	Node a;
	Effects fx;
	RingConnId out = restored_dials_right(a, file, "127.0.0.1", "127.0.0.2", fx);
	feed(a.dir, out, running_ring_disagreeing_everywhere(users), t0 + 10, fx);
	a.dir.ring_line(out, "DONE", t0 + 10, fx);
	for (const auto &c : fx.ring_closes)
		ck_assert_msg(c.id != out, "closed: %s", c.reason.c_str());

	// The ring (through our right) says a user of ours on 10.0.0.1 is on 10.0.0.2.
	uint32_t hash = 0;
	for (const auto &[h, host] : users) {
		if (host == "10.0.0.1") {
			hash = h;
			break;
		}
	}
	ck_assert_uint_ne(hash, 0);
	fx = Effects();
	a.dir.ring_line(out,
			"USER\t" + std::to_string(hash) + "\t10.0.0.2\t" + std::to_string(t0 + 11),
			t0 + 11, fx);
	// users_of() returns a copy: keep it while its strings are compared.
	std::map<uint32_t, std::string> after = users_of(a.dir);
	ck_assert_str_eq(after[hash].c_str(), "10.0.0.2");
	ck_assert_msg(!a.log.has("redirected to two hosts"), "taken as a conflict");
	ck_assert(fx.kicks.empty());
}
END_TEST

START_TEST(test_connector_sends_only_differing_buckets)
{
	Node ring;
	std::string stale = ring_state(ring, t0 + 5);
	Users old_users = users_of(ring.dir);
	std::vector<uint32_t> hashes;
	for (const auto &[h, host] : old_users)
		hashes.push_back(h);
	for (size_t i : {size_t(3), size_t(200)})
		ring.dir.user_move(hashes[i], ip(old_users[hashes[i]] == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1"),
				   t0 + 6, ring.fx);
	std::string fresh = ring.snapshot(t0 + 7);
	Users new_users = users_of(ring.dir);

	for (bool stock : {false, true}) {
		Node a;
		a.restore(fresh, t0 + 10);
		Effects fx;
		a.dir.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090},
				  {ip("127.0.0.3"), 9090}},
				 ip("127.0.0.1"), 9090, t0 + 10, fx);
		ck_assert(!fx.ring_connects.empty());
		RingConnId out = fx.ring_connects.front().id;
		a.dir.ring_connected(out, t0 + 10, fx);
		fx = Effects();
		a.dir.ring_line(out, stock ? "VERSION\tdirector\t1\t9" : "VERSION\tdirector\t1\t9\tUSER-DIGEST",
				t0 + 10, fx);
		a.dir.ring_line(out, "ME\t127.0.0.2\t9090\t" + std::to_string(t0 + 10), t0 + 10, fx);
		unsigned bits = user_digest_bits_for(old_users.size());
		if (!stock) {
			for (const auto &l : format_user_digests(bits, old_users.size(),
								 digests_of(old_users, bits)))
				a.dir.ring_line(out, l, t0 + 10, fx);
		}
		// a restored director holds its stream until its left speaks or the
		// hold runs out
		a.dir.tick(t0 + 10 + ring_restore_hold_secs, fx);
		auto lines = lines_to(fx, out);
		size_t users = count_prefix(lines, "U\t");
		ck_assert(count_prefix(lines, "DONE") == 1);
		if (stock) {
			ck_assert_uint_eq(count_prefix(lines, "USER-DIGEST"), 0);
			ck_assert_uint_eq(users, new_users.size());
			continue;
		}
		UserDigestReader delta;
		for (const auto &l : lines) {
			if (is_user_digest_line(l))
				ck_assert(delta.line(l).ok());
		}
		ck_assert(delta.done() && delta.kind() == UserDigestReader::Kind::delta);
		std::set<uint32_t> want;
		for (size_t i : {size_t(3), size_t(200)})
			want.insert(user_digest_bucket(hashes[i], bits));
		ck_assert_uint_eq(delta.buckets().count(), want.size());
		for (uint32_t b : want)
			ck_assert(delta.buckets().contains(b));
		size_t in_buckets = 0;
		for (const auto &[h, host] : new_users)
			in_buckets += delta.buckets().contains_user(h);
		ck_assert_uint_eq(users, in_buckets);
		ck_assert(users < new_users.size() / 4);
		// the users come after the bucket list
		size_t last_digest = 0, first_user = lines.size();
		for (size_t i = 0; i < lines.size(); i++) {
			if (is_user_digest_line(lines[i]))
				last_digest = i;
			if (lines[i].rfind("U\t", 0) == 0 && first_user == lines.size())
				first_user = i;
		}
		ck_assert(last_digest < first_user);
	}
}
END_TEST

// A director of a ring of three ours restarts with a state file written before
// the ring moved a few users. Its left asks for the sub-bucket digests of the
// buckets that differ and sends only the users of the sub-buckets that differ;
// afterwards all three map every user alike.
START_TEST(test_rejoin_refines_the_buckets_that_differ)
{
	ring_net::Net net(3);
	const size_t n = 3000;
	for (unsigned i = 0; i < n; i++)
		net.dirs[0]->lookup(RequestId(i + 1), "user" + std::to_string(i), "", net.at(0),
				    net.fxs[0]);
	net.settle();
	ck_assert(net.all_synced());
	std::string file = snapshot_of(*net.dirs[2], net.at(2).wall);
	Users before = users_of(*net.dirs[2]);
	ck_assert_uint_eq(before.size(), n);

	net.stop(2);
	net.tick(2);
	ck_assert(net.dirs[0]->ring_synced());
	std::vector<uint32_t> hashes;
	for (const auto &[h, host] : before)
		hashes.push_back(h);
	const std::vector<size_t> moved = {11, 700, 1500, 2222, 2999};
	for (size_t i : moved) {
		uint32_t h = hashes[i];
		std::string to = before[h] == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
		AdminReply r = net.dirs[0]->user_move(h, ip(to.c_str()), net.at(0), net.fxs[0]);
		ck_assert(r.result == AdminResult::ok);
	}
	net.settle();
	net.tick(1);

	net.start(2, [&](Director &d) { restore_into(d, file, net.at(2).wall); });
	net.tick(3);
	ck_assert(net.all_synced());
	Users truth = users_of(*net.dirs[0]);
	for (size_t i : moved)
		ck_assert_str_ne(truth[hashes[i]].c_str(), before[hashes[i]].c_str());
	for (size_t d = 1; d < 3; d++)
		ck_assert_msg(users_of(*net.dirs[d]) == truth, "director %zu differs", d);

	// Its left (127.0.0.2) refined: about 4 users a sub-bucket, not 32 a bucket.
	unsigned bits = user_digest_bits_for(n);
	ck_assert_msg(net.logs[1]->has("user buckets that differ (refined from " +
				       std::to_string(moved.size()) + " of " +
				       std::to_string(size_t{1} << bits) + ";"),
		      "no refinement logged");
	size_t received = 0;
	for (const auto &l : net.logs[2]->lines) {
		auto at = l.find(" buckets replaced by ");
		if (l.find("Delta join: kept") != std::string::npos && at != std::string::npos)
			received = std::stoul(l.substr(at + 21));
	}
	ck_assert_uint_ge(received, moved.size());
	ck_assert_msg(received <= 4 * moved.size() * (n >> (bits + user_digest_refine_bits)) +
					   moved.size(),
		      "%zu users received for %zu moved", received, moved.size());
}
END_TEST

int main()
{
	Suite *s = suite_create("user-digest");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_bits_grow_with_the_table);
	tcase_add_test(tc, test_entry_depends_on_host_and_weak_flag);
	tcase_add_test(tc, test_digest_block_round_trip);
	tcase_add_test(tc, test_bad_digest_lines_are_errors);
	tcase_add_test(tc, test_check_block_and_answers);
	tcase_add_test(tc, test_refine_and_sub_blocks_round_trip);
	tcase_add_test(tc, test_digests_of_named_buckets_only);
	tcase_add_test(tc, test_kept_digests_match_a_walk);
	tcase_add_test(tc, test_rejoin_refines_the_buckets_that_differ);
	tcase_add_test(tc, test_acceptor_keeps_equal_buckets_and_takes_the_rest);
	tcase_add_test(tc, test_acceptor_full_join_replaces_the_table);
	tcase_add_test(tc, test_connector_sends_only_differing_buckets);
	tcase_add_test(tc, test_restored_connector_sends_nothing_to_a_running_ring);
	tcase_add_test(tc, test_restored_connector_says_so_in_its_version);
	tcase_add_test(tc, test_running_acceptor_spares_a_restored_connector_its_digests);
	tcase_add_test(tc, test_restored_stale_table_takes_a_disagreeing_ring_update);
	tcase_add_test(tc, test_restored_ring_restart_does_not_wait_for_the_hold);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
