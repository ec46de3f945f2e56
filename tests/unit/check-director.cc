// Check suite for core/director: the single-director state machine (lookups
// and their delay queue, moves and kill states, kicks, reset-users, expiry,
// proxy-notify, flush programs), driven with explicit time.
#include <cstdlib>
#include <string>
#include <vector>

#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"

#include "admin-protocol.h"
#include "director.h"

using namespace director::core;

namespace {

struct RecordingLog : LogSink {
	std::vector<std::string> lines;
	void log(LogLevel, const std::string &message) override { lines.push_back(message); }
	bool has(const std::string &needle) const
	{
		for (const auto &l : lines) {
			if (l.find(needle) != std::string::npos)
				return true;
		}
		return false;
	}
};

const int64_t t0 = 1700000000;

struct Fixture {
	RecordingLog log;
	Director dir;
	Effects fx;
	explicit Fixture(DirectorConfig cfg = DirectorConfig()) : dir(std::move(cfg), log)
	{
		dir.add_config_host(ip("10.0.0.1"), "", "");
		dir.add_config_host(ip("10.0.0.2"), "", "");
		dir.start_alone(t0);
	}
	// The host answered for request `id` in fx, or "" when unanswered,
	// "FAIL:<error>" when failed. Consumes the answer.
	std::string answer(RequestId id)
	{
		for (auto it = fx.lookups.begin(); it != fx.lookups.end(); ++it) {
			if (it->id != id)
				continue;
			std::string r = it->host ? it->host->ip.to_string() : "FAIL:" + it->error;
			fx.lookups.erase(it);
			return r;
		}
		return "";
	}
	std::string lookup(RequestId id, const char *user, Now now, const char *tag = "")
	{
		dir.lookup(id, user, tag, now, fx);
		return answer(id);
	}
	std::string other_host(const std::string &host)
	{
		return host == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
	}
};

} // namespace

START_TEST(test_director_new_user_gets_hashed_host_and_keeps_it)
{
	Fixture f;
	std::string h = f.lookup(1, "alice", t0);
	ck_assert(!h.empty() && h.rfind("FAIL", 0) != 0);
	UserLookup l = f.dir.user_lookup(f.dir.user_hash("alice"), "", t0);
	ck_assert(l.hashed && l.hashed->to_string() == h);
	ck_assert(l.current && l.current->to_string() == h);
	ck_assert_int_eq(l.expire_time, t0 + 900);
	// A vhost change does not move an existing user.
	f.dir.host_set(0, *IpAddr::parse(h), "", 0, true, t0, f.fx);
	ck_assert(f.lookup(2, "ALICE", t0 + 5) == h);
	ck_assert_uint_eq(f.dir.user_count(), 1);
}
END_TEST

START_TEST(test_director_lookup_without_hosts_waits_then_times_out)
{
	Fixture f;
	f.dir.host_set_down(0, ip("10.0.0.1"), true, t0, f.fx);
	f.dir.host_set_down(0, ip("10.0.0.2"), true, t0, f.fx);
	ck_assert(f.lookup(1, "bob", t0) == "");
	ck_assert_uint_eq(f.dir.delayed_lookups(), 1);
	f.dir.tick(t0 + 29, f.fx);
	ck_assert(f.answer(1) == "");
	f.dir.tick(t0 + 30, f.fx);
	std::string r = f.answer(1);
	ck_assert_msg(r.find("FAIL:Timeout because no hosts - queued for 30 secs (Ring synced "
			     "for 30 secs, hash=") == 0,
		      "%s", r.c_str());
	ck_assert_uint_eq(f.dir.delayed_lookups(), 0);
}
END_TEST

START_TEST(test_director_queued_lookup_is_answered_when_a_host_comes_up)
{
	Fixture f;
	f.dir.host_set_down(0, ip("10.0.0.1"), true, t0, f.fx);
	f.dir.host_set_down(0, ip("10.0.0.2"), true, t0, f.fx);
	ck_assert(f.lookup(1, "bob", t0) == "");
	f.dir.host_set_down(0, ip("10.0.0.2"), false, t0 + 3, f.fx);
	f.dir.tick(t0 + 4, f.fx);
	ck_assert(f.answer(1) == "10.0.0.2");
}
END_TEST

START_TEST(test_director_cancelled_lookup_is_never_answered)
{
	Fixture f;
	f.dir.host_remove(0, ip("10.0.0.1"), t0, f.fx);
	f.dir.host_remove(0, ip("10.0.0.2"), t0, f.fx);
	f.lookup(1, "bob", t0);
	f.dir.cancel_lookup(1);
	f.dir.tick(t0 + 60, f.fx);
	ck_assert(f.fx.lookups.empty());
}
END_TEST

START_TEST(test_director_tagged_user_goes_to_tagged_host_only)
{
	Fixture f;
	f.dir.host_set(0, ip("10.0.0.9"), "blue", std::nullopt, false, t0, f.fx);
	for (int i = 0; i < 20; i++) {
		std::string user = "u" + std::to_string(i);
		ck_assert(f.lookup(RequestId(i + 1), user.c_str(), t0, "blue") == "10.0.0.9");
	}
	// An unknown tag has no hosts.
	ck_assert(f.lookup(100, "x", t0, "green") == "");
}
END_TEST

START_TEST(test_director_move_kicks_and_delays_logins_until_kick_delay)
{
	Fixture f;
	std::string old_host = f.lookup(1, "carol", t0);
	std::string new_host = f.other_host(old_host);
	uint32_t hash = f.dir.user_hash("carol");
	AdminReply r = f.dir.user_move(hash, ip(new_host.c_str()), t0 + 1, f.fx);
	ck_assert(!r.later && r.result == AdminResult::ok);
	ck_assert_uint_eq(f.fx.user_moves.size(), 1);
	ck_assert(f.fx.user_moves[0].user_hash == hash);
	ck_assert(f.fx.user_moves[0].host_from &&
		  f.fx.user_moves[0].host_from->to_string() == old_host);
	ck_assert(f.fx.user_moves[0].host_to.to_string() == new_host);
	ck_assert(f.fx.user_moves[0].reason == Effects::MoveReason::admin);
	f.fx.user_moves.clear();
	ck_assert_uint_eq(f.fx.kicks.size(), 1);
	ck_assert(kick_ipc_line(f.fx.kicks[0].kick) == "proxy\t*\tKICK-DIRECTOR-HASH\t" + std::to_string(hash));
	JobId kick = f.fx.kicks[0].id;
	f.fx.kicks.clear();
	// While the kick runs, logins wait and a second move is refused.
	ck_assert(f.lookup(2, "carol", t0 + 1) == "");
	ck_assert(f.dir.user_move(hash, ip(old_host.c_str()), t0 + 1, f.fx).result ==
		  AdminResult::try_again);
	f.dir.kick_done(kick, true, "", t0 + 1, f.fx);
	ck_assert(f.answer(2) == "");
	f.dir.tick(t0 + 2, f.fx);
	ck_assert(f.answer(2) == "");
	f.dir.tick(t0 + 3, f.fx); // director_user_kick_delay = 2 s
	ck_assert(f.answer(2) == new_host);
	ck_assert_uint_eq(f.dir.users_moving(), 0);
}
END_TEST

START_TEST(test_director_move_of_unknown_user_creates_it_without_kick)
{
	Fixture f;
	uint32_t hash = f.dir.user_hash("dave");
	ck_assert(f.dir.user_move(hash, ip("10.0.0.2"), t0, f.fx).result == AdminResult::ok);
	ck_assert(f.fx.kicks.empty());
	// reported as a move with no host_from
	ck_assert_uint_eq(f.fx.user_moves.size(), 1);
	ck_assert(!f.fx.user_moves[0].host_from);
	ck_assert(f.fx.user_moves[0].host_to.to_string() == "10.0.0.2");
	f.fx.user_moves.clear();
	UserLookup l = f.dir.user_lookup(hash, "", t0);
	ck_assert(l.current && l.current->to_string() == "10.0.0.2");
	ck_assert(f.dir.user_move(hash, ip("10.9.9.9"), t0, f.fx).result == AdminResult::not_found);
}
END_TEST

START_TEST(test_director_flush_program_runs_after_move_and_skips_delay)
{
	DirectorConfig cfg;
	cfg.flush_program_set = true;
	Fixture f(cfg);
	std::string old_host = f.lookup(1, "erin", t0);
	std::string new_host = f.other_host(old_host);
	uint32_t hash = f.dir.user_hash("erin");
	f.dir.user_move(hash, ip(new_host.c_str()), t0, f.fx);
	f.dir.kick_done(f.fx.kicks.at(0).id, true, "", t0, f.fx);
	ck_assert_uint_eq(f.fx.flushes.size(), 1);
	const auto &fl = f.fx.flushes[0];
	std::vector<std::string> want = {"FLUSH", std::to_string(hash), old_host, new_host, "up",
					 "100"};
	ck_assert(fl.args == want);
	ck_assert(f.lookup(2, "erin", t0) == "");
	f.dir.flush_done(fl.id, true, t0, f.fx);
	ck_assert(f.answer(2) == new_host);
}
END_TEST

START_TEST(test_director_stuck_move_is_freed_after_timeout)
{
	Fixture f;
	std::string old_host = f.lookup(1, "fred", t0);
	f.dir.user_move(f.dir.user_hash("fred"), ip(f.other_host(old_host).c_str()), t0, f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 1);
	f.dir.tick(t0 + 29, f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 1);
	f.dir.tick(t0 + 30, f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 0);
	ck_assert(f.log.has("move timed out"));
}
END_TEST

// Found by fuzz-director: a move that timed out while its kick was running
// must still let the kick's late reply end it.
START_TEST(test_director_kick_reply_after_move_timeout_ends_the_kick)
{
	Fixture f;
	std::string old_host = f.lookup(1, "kyle", t0);
	f.dir.user_move(f.dir.user_hash("kyle"), ip(f.other_host(old_host).c_str()), t0, f.fx);
	ck_assert_uint_eq(f.dir.users_kicking(), 1);
	JobId kick = f.fx.kicks.at(0).id;
	f.dir.tick(t0 + 31, f.fx); // the move times out first
	ck_assert_uint_eq(f.dir.users_moving(), 0);
	f.dir.kick_done(kick, true, "", t0 + 32, f.fx);
	ck_assert_uint_eq(f.dir.users_kicking(), 0);
}
END_TEST

// Timeouts follow the monotonic clock (Now::mono); the wall clock only carries
// user timestamps. Each test sets the wall clock back an hour or forward 30 s
// while the monotonic clock advances normally.
START_TEST(test_director_delayed_lookup_times_out_on_mono_after_backward_jump)
{
	Fixture f;
	f.dir.host_set_down(0, ip("10.0.0.1"), true, t0, f.fx);
	f.dir.host_set_down(0, ip("10.0.0.2"), true, t0, f.fx);
	ck_assert(f.lookup(1, "bob", Now(t0, t0)) == "");
	const int64_t back = t0 - 3600;
	f.dir.tick(Now(back + 29, t0 + 29), f.fx);
	ck_assert(f.answer(1) == "");
	f.dir.tick(Now(back + 30, t0 + 30), f.fx);
	std::string r = f.answer(1);
	ck_assert_msg(r.find("FAIL:Timeout because no hosts - queued for 30 secs (Ring synced "
			     "for 30 secs, hash=") == 0,
		      "%s", r.c_str());
	ck_assert_uint_eq(f.dir.delayed_lookups(), 0);
}
END_TEST

START_TEST(test_director_delayed_lookup_not_timed_out_early_by_forward_jump)
{
	Fixture f;
	f.dir.host_set_down(0, ip("10.0.0.1"), true, t0, f.fx);
	f.dir.host_set_down(0, ip("10.0.0.2"), true, t0, f.fx);
	ck_assert(f.lookup(1, "bob", Now(t0, t0)) == "");
	ck_assert(f.lookup(2, "carol", Now(t0 + 10, t0 + 10)) == "");
	// The wall clock jumps 30 s forward between two wakeups, 1 s apart.
	const int64_t fwd = 30;
	f.dir.tick(Now(t0 + 11 + fwd, t0 + 11), f.fx);
	ck_assert(f.answer(1) == "" && f.answer(2) == "");
	ck_assert_uint_eq(f.dir.delayed_lookups(), 2);
	f.dir.tick(Now(t0 + 29 + fwd, t0 + 29), f.fx);
	ck_assert(f.answer(1) == "");
	f.dir.tick(Now(t0 + 30 + fwd, t0 + 30), f.fx);
	ck_assert(f.answer(1).rfind("FAIL:Timeout because no hosts - queued for 30 secs", 0) == 0);
	ck_assert(f.answer(2) == "");
	f.dir.tick(Now(t0 + 39 + fwd, t0 + 39), f.fx);
	ck_assert(f.answer(2) == "");
	f.dir.tick(Now(t0 + 40 + fwd, t0 + 40), f.fx);
	ck_assert(f.answer(2).rfind("FAIL:Timeout because no hosts - queued for 30 secs", 0) == 0);
}
END_TEST

START_TEST(test_director_move_times_out_on_mono_after_backward_jump)
{
	Fixture f;
	std::string old_host = f.lookup(1, "fred", Now(t0, t0));
	f.dir.user_move(f.dir.user_hash("fred"), ip(f.other_host(old_host).c_str()), Now(t0, t0),
			f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 1);
	const int64_t back = t0 - 3600;
	f.dir.tick(Now(back + 29, t0 + 29), f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 1);
	f.dir.tick(Now(back + 30, t0 + 30), f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 0);
	ck_assert(f.log.has("move timed out"));
}
END_TEST

START_TEST(test_director_move_not_timed_out_early_by_forward_jump)
{
	Fixture f;
	std::string old_host = f.lookup(1, "fred", Now(t0, t0));
	f.dir.user_move(f.dir.user_hash("fred"), ip(f.other_host(old_host).c_str()), Now(t0, t0),
			f.fx);
	const int64_t fwd = 30;
	f.dir.tick(Now(t0 + 1 + fwd, t0 + 1), f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 1);
	f.dir.tick(Now(t0 + 29 + fwd, t0 + 29), f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 1);
	ck_assert(!f.log.has("move timed out"));
	f.dir.tick(Now(t0 + 30 + fwd, t0 + 30), f.fx);
	ck_assert_uint_eq(f.dir.users_moving(), 0);
}
END_TEST

// The kick delay after a move is a monotonic wait too: logins that waited for
// the move are answered 2 s after the kick, not an hour later.
START_TEST(test_director_kick_delay_ends_on_mono_after_backward_jump)
{
	Fixture f;
	std::string old_host = f.lookup(1, "carol", Now(t0, t0));
	std::string new_host = f.other_host(old_host);
	uint32_t hash = f.dir.user_hash("carol");
	f.dir.user_move(hash, ip(new_host.c_str()), Now(t0, t0), f.fx);
	JobId kick = f.fx.kicks.at(0).id;
	ck_assert(f.lookup(2, "carol", Now(t0, t0)) == "");
	f.dir.kick_done(kick, true, "", Now(t0 + 1, t0 + 1), f.fx);
	const int64_t back = t0 - 3600; // set back during the delay
	f.dir.tick(Now(back + 2, t0 + 2), f.fx);
	ck_assert(f.answer(2) == "");
	f.dir.tick(Now(back + 3, t0 + 3), f.fx);
	ck_assert(f.answer(2) == new_host);
}
END_TEST

START_TEST(test_director_reset_users_moves_with_max_parallel)
{
	Fixture f;
	int on_a = 0;
	for (int i = 0; i < 40; i++) {
		std::string user = "r" + std::to_string(i);
		if (f.lookup(RequestId(i + 1), user.c_str(), t0) == "10.0.0.1")
			on_a++;
	}
	ck_assert_int_gt(on_a, 1);
	f.dir.host_set(0, ip("10.0.0.1"), "", 0, true, t0, f.fx);
	AdminReply r = f.dir.host_reset_users(77, ip("10.0.0.1"), 1,
					      Now::at_msecs(t0, t0 * 1000 + 250), f.fx);
	ck_assert(r.later);
	int kicks = 0;
	for (int round = 0; round < 100 && f.fx.admin.empty(); round++) {
		ck_assert_uint_le(f.dir.users_moving(), 1);
		std::vector<Effects::KickCommand> ipc;
		std::swap(ipc, f.fx.kicks);
		for (const auto &c : ipc) {
			kicks++;
			f.dir.kick_done(c.id, true, "", t0 + round, f.fx);
		}
		f.dir.tick(t0 + round + 3, f.fx);
	}
	// Like stock, OK comes once the last move has started, not finished.
	kicks += int(f.fx.kicks.size());
	ck_assert_uint_eq(f.fx.admin.size(), 1);
	ck_assert_uint_eq(f.fx.admin[0].id, 77);
	ck_assert(f.fx.admin[0].result == AdminResult::ok);
	ck_assert_msg(kicks == on_a, "kicks %d on_a %d moved-log: %s", kicks, on_a,
		      f.log.lines.empty() ? "" : f.log.lines.back().c_str());
	for (const auto &h : f.dir.host_list()) {
		if (h.ip.to_string() == "10.0.0.1")
			ck_assert_uint_eq(h.user_count, 0);
	}
	// The time to the millisecond, as stock logs it: started at t0 + 0.250 s,
	// ended on a whole-second tick.
	ck_assert(f.log.has("Moved " + std::to_string(on_a) + " users in 1 hosts in "));
	ck_assert(f.log.has(".750 secs (max parallel=1)"));
}
END_TEST

START_TEST(test_director_reset_users_without_usable_host_kicks_and_flushes)
{
	Fixture f;
	f.dir.host_remove(0, ip("10.0.0.2"), t0, f.fx);
	f.lookup(1, "gina", t0);
	f.dir.host_set_down(0, ip("10.0.0.1"), true, t0, f.fx);
	AdminReply r = f.dir.host_reset_users(5, std::nullopt, 100, t0, f.fx);
	ck_assert(r.later || r.result == AdminResult::ok);
	ck_assert_uint_eq(f.fx.kicks.size(), 1);
	ck_assert(kick_ipc_line(f.fx.kicks[0].kick).rfind("proxy\t*\tKICK-DIRECTOR-HASH\t", 0) == 0);
	ck_assert_uint_eq(f.dir.user_count(), 0);
}
END_TEST

START_TEST(test_director_kicks_over_the_limit_queue_or_tryagain)
{
	DirectorConfig cfg;
	cfg.max_parallel_kicks = 1;
	Fixture f(cfg);
	ck_assert(f.dir.user_kick(1, "", "a\tb", false, f.fx).result == AdminResult::ok);
	ck_assert(kick_ipc_line(f.fx.kicks.at(0).kick) == "proxy\t*\tKICK\ta\001tb");
	ck_assert(f.dir.user_kick(2, "user_x", "v", true, f.fx).result == AdminResult::try_again);
	AdminReply queued = f.dir.user_kick(3, "user_x", "v", false, f.fx);
	ck_assert(queued.later);
	f.dir.kick_done(f.fx.kicks.at(0).id, true, "", t0, f.fx);
	ck_assert_uint_eq(f.fx.admin.size(), 1);
	ck_assert_uint_eq(f.fx.admin[0].id, 3);
	ck_assert(kick_ipc_line(f.fx.kicks.back().kick) == "proxy\t*\tKICK-ALT\tuser_x\tv");
}
END_TEST

START_TEST(test_director_users_expire_unless_notified)
{
	Fixture f;
	f.lookup(1, "hank", t0);
	f.lookup(2, "ivy", t0);
	f.dir.notify_alive("ivy", t0 + 600, f.fx);
	f.dir.tick(t0 + 899, f.fx);
	ck_assert_uint_eq(f.dir.user_count(), 2);
	f.dir.tick(t0 + 900, f.fx);
	ck_assert_uint_eq(f.dir.user_count(), 1);
	ck_assert(!f.dir.user_lookup(f.dir.user_hash("hank"), "", t0 + 900).current);
	ck_assert(f.dir.user_lookup(f.dir.user_hash("ivy"), "", t0 + 900).current);
	// A refresh that comes after the user had expired is logged.
	f.dir.notify_alive("ivy", t0 + 600 + 900 + 5, f.fx);
	ck_assert(f.log.has("notify: User ivy refreshed too late"));
}
END_TEST

START_TEST(test_director_remove_and_flush_forget_users)
{
	Fixture f;
	for (int i = 0; i < 20; i++) {
		std::string user = "f" + std::to_string(i);
		f.lookup(RequestId(i + 1), user.c_str(), t0);
	}
	size_t before = f.dir.user_count();
	size_t on_1 = 0;
	for (const auto &h : f.dir.host_list()) {
		if (h.ip.to_string() == "10.0.0.1")
			on_1 = h.user_count;
	}
	ck_assert(f.fx.host_flushes.empty());
	ck_assert(f.dir.host_flush(0, ip("10.0.0.1"), t0, f.fx).result == AdminResult::ok);
	ck_assert_uint_eq(f.dir.user_count(), before - on_1);
	// the flush is reported (the host list did not change)
	ck_assert_uint_eq(f.fx.host_flushes.size(), 1);
	ck_assert(f.fx.host_flushes[0].ip.to_string() == "10.0.0.1");
	ck_assert(!f.fx.host_flushes[0].from_ring);
	ck_assert_uint_eq(f.fx.host_flushes[0].vhosts, 100);
	// a graceful flush (nothing left to move here) is reported too
	f.fx.host_flushes.clear();
	ck_assert(f.dir.host_reset_users(0, ip("10.0.0.1"), 100, t0, f.fx).result == AdminResult::ok);
	ck_assert_uint_eq(f.fx.host_flushes.size(), 1);
	ck_assert(f.fx.host_flushes[0].ip.to_string() == "10.0.0.1");
	f.fx.host_flushes.clear();
	ck_assert(f.dir.host_remove(0, ip("10.0.0.2"), t0, f.fx).result == AdminResult::ok);
	ck_assert_uint_eq(f.dir.user_count(), 0);
	ck_assert(f.fx.host_flushes.empty()); // a removal is no flush
	ck_assert(f.dir.host_remove(0, ip("10.0.0.2"), t0, f.fx).result == AdminResult::not_found);
	std::vector<IpAddr> removed = f.dir.hosts_removed_from_config();
	ck_assert_uint_eq(removed.size(), 1);
	ck_assert(removed[0].to_string() == "10.0.0.2");
}
END_TEST

START_TEST(test_director_host_set_validates_like_stock)
{
	Fixture f;
	ck_assert(f.dir.host_set(0, ip("10.0.0.1"), "", 1001, false, t0, f.fx).result ==
		  AdminResult::vhost_count_too_large);
	ck_assert(f.dir.host_set(0, ip("10.0.0.1"), "blue", 5, false, t0, f.fx).result ==
		  AdminResult::tag_cant_change);
	ck_assert(f.dir.host_set(0, ip("10.0.0.7"), "", 5, true, t0, f.fx).result ==
		  AdminResult::not_found);
	ck_assert(f.dir.host_set(0, ip("10.0.0.7"), "", std::nullopt, false, t0, f.fx).result ==
		  AdminResult::ok);
	ck_assert(f.dir.host_set_down(0, ip("10.0.0.8"), true, t0, f.fx).result == AdminResult::not_found);
	auto hosts = f.dir.host_list();
	ck_assert_uint_eq(hosts.size(), 3);
	ck_assert_uint_eq(hosts[2].vhost_count, 100);
}
END_TEST

// The user table has 12 bits for a tag: the director refuses more tags
// instead of asserting on the next login.
START_TEST(test_director_refuses_more_tags_than_the_user_table_holds)
{
	Fixture f;
	AdminResult last = AdminResult::ok;
	for (unsigned i = 1; i <= max_tag_id + 1 && last != AdminResult::too_many_tags; i++) {
		IpAddr host = IpAddr::v4(10, 1 + (i >> 16), (i >> 8) & 0xff, i & 0xff);
		last = f.dir.host_set(0, host, "t" + std::to_string(i), 1, false, t0, f.fx).result;
		if (i <= max_tag_id)
			ck_assert_msg(last == AdminResult::ok, "tag %u: %s", i,
				      std::string(admin_result_line(last)).c_str());
	}
	ck_assert(last == AdminResult::too_many_tags);
	ck_assert(f.lookup(1, "u", t0, ("t" + std::to_string(max_tag_id)).c_str()) != "");
}
END_TEST

// Regression (outside audit): at the user table's limit insert() returned "no
// user", no caller checked it and the process aborted. The lookup fails with an
// error now; known users are still answered, and moves and ring users are refused.
START_TEST(test_director_full_user_table_fails_the_lookup)
{
	DirectorConfig cfg;
	cfg.max_users = 3;
	Fixture f(cfg);
	ck_assert(!f.lookup(1, "u1", t0).empty());
	ck_assert(!f.lookup(2, "u2", t0).empty());
	std::string third = f.lookup(3, "u3", t0);
	ck_assert(third.rfind("FAIL:", 0) != 0);
	std::string fourth = f.lookup(4, "u4", t0);
	ck_assert_str_eq(fourth.c_str(), "FAIL:User table is full");
	ck_assert_uint_eq(f.dir.user_count(), 3);
	std::string again = f.lookup(5, "u3", t0);
	ck_assert_str_eq(again.c_str(), third.c_str());
	AdminReply moved = f.dir.user_move(f.dir.user_hash("u9"), ip("10.0.0.1"), t0, f.fx);
	ck_assert(moved.result == AdminResult::ok);
	ck_assert_uint_eq(f.dir.user_count(), 3);
}
END_TEST

int main()
{
	Suite *s = suite_create("director");
	TCase *tc = tcase_create("lookups");
	tcase_add_test(tc, test_director_new_user_gets_hashed_host_and_keeps_it);
	tcase_add_test(tc, test_director_lookup_without_hosts_waits_then_times_out);
	tcase_add_test(tc, test_director_queued_lookup_is_answered_when_a_host_comes_up);
	tcase_add_test(tc, test_director_cancelled_lookup_is_never_answered);
	tcase_add_test(tc, test_director_full_user_table_fails_the_lookup);
	tcase_add_test(tc, test_director_tagged_user_goes_to_tagged_host_only);
	suite_add_tcase(s, tc);
	tc = tcase_create("moves");
	tcase_add_test(tc, test_director_move_kicks_and_delays_logins_until_kick_delay);
	tcase_add_test(tc, test_director_move_of_unknown_user_creates_it_without_kick);
	tcase_add_test(tc, test_director_flush_program_runs_after_move_and_skips_delay);
	tcase_add_test(tc, test_director_stuck_move_is_freed_after_timeout);
	tcase_add_test(tc, test_director_kick_reply_after_move_timeout_ends_the_kick);
	tcase_add_test(tc, test_director_reset_users_moves_with_max_parallel);
	tcase_add_test(tc, test_director_reset_users_without_usable_host_kicks_and_flushes);
	suite_add_tcase(s, tc);
	tc = tcase_create("clock-jumps");
	tcase_add_test(tc, test_director_delayed_lookup_times_out_on_mono_after_backward_jump);
	tcase_add_test(tc, test_director_delayed_lookup_not_timed_out_early_by_forward_jump);
	tcase_add_test(tc, test_director_move_times_out_on_mono_after_backward_jump);
	tcase_add_test(tc, test_director_move_not_timed_out_early_by_forward_jump);
	tcase_add_test(tc, test_director_kick_delay_ends_on_mono_after_backward_jump);
	suite_add_tcase(s, tc);
	tc = tcase_create("kicks");
	tcase_add_test(tc, test_director_kicks_over_the_limit_queue_or_tryagain);
	suite_add_tcase(s, tc);
	tc = tcase_create("hosts-and-expiry");
	tcase_add_test(tc, test_director_users_expire_unless_notified);
	tcase_add_test(tc, test_director_remove_and_flush_forget_users);
	tcase_add_test(tc, test_director_host_set_validates_like_stock);
	tcase_add_test(tc, test_director_refuses_more_tags_than_the_user_table_holds);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
