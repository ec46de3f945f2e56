// Check suite for core/state-snapshot and Director::restore_state(): a director's
// state written in pieces and read back into another director, expiry at restore, and
// snapshots taken while the user table changes under them.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"

#include "director.h"
#include "state-snapshot.h"

using namespace director::core;

namespace {

struct NullLog : LogSink {
	void log(LogLevel, const std::string &) override {}
};

const int64_t t0 = 1700000000;

struct Node {
	NullLog log;
	Director dir;
	Effects fx;
	explicit Node(DirectorConfig cfg = DirectorConfig()) : dir(std::move(cfg), log)
	{
		dir.add_config_host(ip("10.0.0.1"), "", "");
		dir.add_config_host(ip("10.0.0.2"), "", "");
	}
	std::string snapshot(int64_t now, size_t piece = 1000)
	{
		auto snap = dir.state_snapshot(state_fingerprint(), now);
		std::string out;
		for (int i = 0; i < 1000000 && !snap->next_chunk(out, piece); i++) {
		}
		return out;
	}
};

// user hash -> (host, expiry) for every user, plus the host rows.
using Users = std::map<uint32_t, std::pair<std::string, int64_t>>;
Users users_of(const Director &d)
{
	Users u;
	for (const UserListEntry &e : d.user_list(std::nullopt))
		u[e.user_hash] = {e.host.to_string(), e.expire_time};
	return u;
}

std::vector<std::tuple<std::string, unsigned, std::string, bool, int64_t, size_t>>
hosts_of(const Director &d)
{
	std::vector<std::tuple<std::string, unsigned, std::string, bool, int64_t, size_t>> out;
	for (const HostListEntry &h : d.host_list())
		out.emplace_back(h.ip.to_string(), h.vhost_count, h.tag, h.down,
				 h.last_updown_change, h.user_count);
	std::sort(out.begin(), out.end());
	return out;
}

void make_state(Node &n)
{
	n.dir.start_alone(t0);
	// hashed users, moved users, host changes
	for (int i = 0; i < 300; i++) {
		std::string user = "user" + std::to_string(i);
		n.dir.lookup(RequestId(i + 1), user, "", t0 + i % 60, n.fx);
	}
	for (int i = 0; i < 50; i++) {
		uint32_t h = n.dir.user_hash("moved" + std::to_string(i));
		n.dir.user_move(h, ip(i % 2 ? "10.0.0.1" : "10.0.0.2"), t0 + 61, n.fx);
	}
	n.dir.host_set(1, ip("10.0.0.3"), "blue", 7, false, t0 + 62, n.fx);
	n.dir.host_set(2, ip("10.0.0.1"), "", 40, true, t0 + 62, n.fx);
	n.dir.host_set_down(3, ip("10.0.0.2"), true, t0 + 63, n.fx);
	n.dir.lookup(1000, "bluey", "blue", t0 + 64, n.fx);
}

} // namespace

START_TEST(test_state_snapshot_restore_gives_the_same_users_and_hosts)
{
	Node a;
	make_state(a);
	ck_assert_uint_eq(a.dir.user_count(), 351);
	std::string file = a.snapshot(t0 + 70);
	auto parsed = StateFile::parse(file, state_fingerprint());
	ck_assert_msg(parsed.ok(), "%s", parsed.ok() ? "" : parsed.error().c_str());
	ck_assert_uint_eq(parsed->user_count(), 351);

	Node b;
	StateRestore r = b.dir.restore_state(*parsed, t0 + 80);
	b.dir.start_alone(t0 + 80);
	ck_assert_uint_eq(r.users, 351);
	ck_assert_uint_eq(r.expired, 0);
	ck_assert_uint_eq(r.hosts, 3);
	ck_assert(users_of(b.dir) == users_of(a.dir));
	ck_assert(hosts_of(b.dir) == hosts_of(a.dir));
	// A restored user is served from its restored host, not the hash.
	uint32_t h = b.dir.user_hash("moved1");
	UserLookup l = b.dir.user_lookup(h, "", t0 + 80);
	ck_assert(l.current && *l.current == ip("10.0.0.1"));
	// "Initial config" is still the configuration.
	l = b.dir.user_lookup(b.dir.user_hash("bluey"), "blue", t0 + 80);
	ck_assert(l.current && *l.current == ip("10.0.0.3"));
	ck_assert(!l.initial_config);
}
END_TEST

START_TEST(test_state_snapshot_restore_drops_users_expired_meanwhile)
{
	DirectorConfig cfg;
	cfg.user_expire_secs = 100;
	Node a(cfg);
	a.dir.start_alone(t0);
	for (int i = 0; i < 100; i++)
		a.dir.lookup(RequestId(i + 1), "u" + std::to_string(i), "", t0 + i, a.fx);
	std::string file = a.snapshot(t0 + 100);
	auto parsed = StateFile::parse(file, state_fingerprint());
	ck_assert(parsed.ok());
	Node b(cfg);
	// At t0+150 the users refreshed before t0+50 (timestamp + 100 <= now) are gone.
	StateRestore r = b.dir.restore_state(*parsed, t0 + 150);
	ck_assert_uint_eq(r.expired, 51);
	ck_assert_uint_eq(r.users, 49);
	ck_assert_uint_eq(b.dir.user_count(), 49);
}
END_TEST

// Users refreshed, added and erased between the pieces: no crash, every user that
// stayed untouched is in the file, erased ones are not, and a user met twice is
// restored once with its newest time.
START_TEST(test_state_snapshot_survives_table_changes_between_pieces)
{
	Node a;
	a.dir.start_alone(t0);
	for (int i = 0; i < 2000; i++)
		a.dir.lookup(RequestId(i + 1), "u" + std::to_string(i), "", t0, a.fx);
	auto snap = a.dir.state_snapshot(state_fingerprint(), t0 + 10);
	std::string out;
	int pieces = 0;
	RequestId next = 100000;
	while (!snap->next_chunk(out, 240)) {
		pieces++;
		// refresh an early user (moves it to the newest end), add a new one
		a.dir.lookup(next++, "u" + std::to_string(pieces), "", t0 + 5, a.fx);
		a.dir.lookup(next++, "new" + std::to_string(pieces), "", t0 + 5, a.fx);
		ck_assert_int_lt(pieces, 100000);
	}
	// flush removes every user of one host while a second snapshot runs
	auto snap2 = a.dir.state_snapshot(state_fingerprint(), t0 + 11);
	std::string out2;
	snap2->next_chunk(out2, 240);
	a.dir.host_flush(7, ip("10.0.0.1"), t0 + 11, a.fx);
	while (!snap2->next_chunk(out2, 240)) {
	}
	snap.reset();
	snap2.reset();

	auto parsed = StateFile::parse(out, state_fingerprint());
	ck_assert(parsed.ok());
	ck_assert_uint_ge(parsed->user_count(), 2000);
	Node b;
	StateRestore r = b.dir.restore_state(*parsed, t0 + 12);
	ck_assert_uint_eq(b.dir.user_count(), 2000 + size_t(pieces));
	(void)r;
	uint32_t h = b.dir.user_hash("u1");
	ck_assert_int_eq(b.dir.user_lookup(h, "", t0 + 12).expire_time, t0 + 5 + 900);

	auto parsed2 = StateFile::parse(out2, state_fingerprint());
	ck_assert(parsed2.ok());
	Node c;
	c.dir.restore_state(*parsed2, t0 + 12);
	// Every user still there after the flush is in the file with its host; users
	// of the flushed host written before the flush may be too (a snapshot is of
	// its moments), none written after it.
	Users after = users_of(a.dir), restored = users_of(c.dir);
	for (const auto &[hash, v] : after) {
		auto it = restored.find(hash);
		ck_assert(it != restored.end());
		ck_assert_str_eq(it->second.first.c_str(), v.first.c_str());
	}
	size_t flushed_written = 0;
	for (const auto &[hash, v] : restored)
		flushed_written += v.first == "10.0.0.1" ? 1 : 0;
	ck_assert_uint_le(flushed_written, 240 / state_user_record_size + 1);
}
END_TEST

int main()
{
	Suite *s = suite_create("state-snapshot");
	TCase *tc = tcase_create("restore");
	tcase_add_test(tc, test_state_snapshot_restore_gives_the_same_users_and_hosts);
	tcase_add_test(tc, test_state_snapshot_restore_drops_users_expired_meanwhile);
	tcase_add_test(tc, test_state_snapshot_survives_table_changes_between_pieces);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
