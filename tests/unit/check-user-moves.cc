// Check suite for core::UserMoves: a move's kill, flush and kick delay, move timeouts,
// admin kicks and their parallel limit, against a recording RingPort.
#include "user-moves.h"

#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"

#include <string>
#include <vector>

using namespace director::core;

namespace {


// A standalone ring: inactive, no neighbours; records what it is asked to send.
struct FakeRing : RingPort {
	std::vector<RingCommand> sent;
	unsigned changes = 0;
	bool active() const override { return false; }
	bool has_neighbours() const override { return false; }
	bool has_right() const override { return false; }
	bool has_links() const override { return false; }
	bool synced() const override { return true; }
	bool handshaked() const override { return true; }
	unsigned min_version() const override { return ring_version_minor; }
	int64_t last_sync_time() const override { return 0; }
	const DirectorHost *self() const override { return nullptr; }
	RingOrigin next_origin() override { return RingOrigin{}; }
	void send(const DirectorHost *, const RingCommand &cmd, Effects &, unsigned) override
	{
		sent.push_back(cmd);
	}
	bool send_right(const RingCommand &cmd, Effects &) override
	{
		sent.push_back(cmd);
		return false;
	}
	void pass_on(const RingLink &, const RingCommand &, Effects &) override {}
	void close(RingLink &, const std::string &, Now, Effects &, bool) override {}
	void changed(Now, Effects &) override { changes++; }
};

struct Owner : UserMoves::Owner {
	unsigned ended = 0;
	std::vector<HostId> flushed;
	void moves_ended(Now, Effects &) override { ended++; }
	void flush_host(HostId host, Now, Effects &) override { flushed.push_back(host); }
};

struct Fixture {
	DirectorConfig config;
	RecordingLog log;
	UserTable users;
	HostList hosts;
	FakeRing ring;
	Owner owner;
	HostId a, b;
	UserMoves moves;
	explicit Fixture(DirectorConfig cfg = DirectorConfig())
		: config(cfg), a(*hosts.add(IpAddr::v4(10, 0, 0, 1), "")),
		  b(*hosts.add(IpAddr::v4(10, 0, 0, 2), "")),
		  moves(config, log, users, hosts, ring, owner)
	{
	}
};

const int64_t t0 = 1700000000;

} // namespace

START_TEST(test_user_moves_move_kicks_then_waits_the_kick_delay)
{
	Fixture f;
	UserIndex u = f.users.insert(42, 0, f.a, uint32_t(t0));
	Effects fx;
	f.moves.move(nullptr, std::nullopt, 42, f.b, Effects::MoveReason::ring, t0, fx);
	ck_assert_uint_eq(f.users.host(u), f.b);
	ck_assert(f.users.kill_pending(u));
	ck_assert(f.moves.moving(42, 0));
	ck_assert_uint_eq(fx.kicks.size(), 1);
	ck_assert(kick_ipc_line(fx.kicks[0].kick) == std::string("proxy\t*\tKICK-DIRECTOR-HASH\t42"));
	ck_assert_uint_eq(f.moves.users_kicking(), 1);
	f.moves.kick_done(fx.kicks[0].id, true, "", t0 + 1, fx);
	ck_assert_uint_eq(f.moves.users_kicking(), 0);
	ck_assert(f.moves.moving(42, 0)); // in the kick delay
	f.moves.tick(t0 + 1 + f.config.user_kick_delay_secs - 1, fx);
	ck_assert(f.moves.moving(42, 0));
	f.moves.tick(t0 + 1 + f.config.user_kick_delay_secs, fx);
	ck_assert(!f.moves.moving(42, 0));
	ck_assert(!f.users.kill_pending(u));
	ck_assert_uint_eq(f.owner.ended, 1);
}
END_TEST

// A kick delay is kept to the millisecond: one started at x.9 s is not over at
// the second x+2 (a whole-second clock would end a 2 s delay after 1.1 s), and
// next_delay_end_msecs() names its end so the adapter can wake for it and
// end_delays() then (tick() ends it too).
START_TEST(test_user_moves_kick_delay_is_kept_to_the_millisecond)
{
	Fixture f;
	const int64_t ms0 = t0 * 1000;
	const int64_t delay_ms = int64_t{f.config.user_kick_delay_secs} * 1000;
	f.users.insert(42, 0, f.a, uint32_t(t0));
	f.users.insert(43, 0, f.a, uint32_t(t0));
	Effects fx;
	ck_assert(!f.moves.next_delay_end_msecs());
	f.moves.move(nullptr, std::nullopt, 42, f.b, Effects::MoveReason::ring, t0, fx);
	f.moves.move(nullptr, std::nullopt, 43, f.b, Effects::MoveReason::ring, t0, fx);
	ck_assert_uint_eq(fx.kicks.size(), 2);
	ck_assert(!f.moves.next_delay_end_msecs()); // kicking, no delay yet
	f.moves.kick_done(fx.kicks[0].id, true, "", Now::at_msecs(t0, ms0 + 900), fx);
	f.moves.kick_done(fx.kicks[1].id, true, "", Now::at_msecs(t0 + 1, ms0 + 1200), fx);
	auto first = f.moves.next_delay_end_msecs();
	ck_assert(first.has_value());
	ck_assert_int_eq(*first, ms0 + 900 + delay_ms);

	f.moves.tick(Now::at_msecs(t0 + 2, ms0 + delay_ms), fx);
	ck_assert(f.moves.moving(42, 0));
	f.moves.tick(Now::at_msecs(t0 + 2, ms0 + 900 + delay_ms - 1), fx);
	ck_assert(f.moves.moving(42, 0));
	f.moves.tick(Now::at_msecs(t0 + 2, ms0 + 900 + delay_ms), fx);
	ck_assert(!f.moves.moving(42, 0));
	ck_assert(f.moves.moving(43, 0));
	ck_assert_uint_eq(f.owner.ended, 1);
	first = f.moves.next_delay_end_msecs();
	ck_assert(first.has_value());
	ck_assert_int_eq(*first, ms0 + 1200 + delay_ms);

	f.moves.end_delays(Now::at_msecs(t0 + 3, ms0 + 1200 + delay_ms - 1), fx);
	ck_assert(f.moves.moving(43, 0));
	f.moves.end_delays(Now::at_msecs(t0 + 3, ms0 + 1200 + delay_ms), fx);
	ck_assert(!f.moves.moving(43, 0));
	ck_assert_uint_eq(f.owner.ended, 2);
	ck_assert(!f.moves.next_delay_end_msecs());
}
END_TEST

START_TEST(test_user_moves_flush_program_runs_after_the_kill)
{
	DirectorConfig cfg;
	cfg.flush_program_set = true;
	Fixture f(cfg);
	f.users.insert(42, 0, f.a, uint32_t(t0));
	Effects fx;
	f.moves.move(nullptr, std::nullopt, 42, f.b, Effects::MoveReason::ring, t0, fx);
	f.moves.kick_done(fx.kicks[0].id, true, "", t0, fx);
	ck_assert_uint_eq(fx.flushes.size(), 1);
	std::vector<std::string> want = {"FLUSH", "42", "10.0.0.1", "10.0.0.2", "up", "100"};
	ck_assert(fx.flushes[0].args == want);
	f.moves.flush_done(fx.flushes[0].id, true, t0 + 1, fx);
	ck_assert(!f.moves.moving(42, 0)); // success skips the kick delay
}
END_TEST

START_TEST(test_user_moves_stuck_move_times_out)
{
	Fixture f;
	f.users.insert(42, 0, f.a, uint32_t(t0));
	Effects fx;
	f.moves.move(nullptr, std::nullopt, 42, f.b, Effects::MoveReason::ring, t0, fx);
	f.moves.tick(t0 + user_move_timeout_secs - 1, fx);
	ck_assert(f.moves.moving(42, 0));
	f.moves.tick(t0 + user_move_timeout_secs, fx);
	ck_assert(!f.moves.moving(42, 0));
	ck_assert(!f.log.lines.empty());
	ck_assert(f.log.lines.back().find("move timed out") != std::string::npos);
	ck_assert(f.log.fields.back().user_hash == 42u);
}
END_TEST

START_TEST(test_user_moves_admin_kicks_queue_over_the_limit)
{
	DirectorConfig cfg;
	cfg.max_parallel_kicks = 1;
	Fixture f(cfg);
	Effects fx;
	AdminReply r = f.moves.user_kick(1, "", "alice", false, fx);
	ck_assert(!r.later);
	ck_assert(kick_ipc_line(fx.kicks[0].kick) == std::string("proxy\t*\tKICK\talice"));
	r = f.moves.user_kick(2, "", "bob", true, fx);
	ck_assert(r.result == AdminResult::try_again);
	r = f.moves.user_kick(3, "user", "b\tob", false, fx);
	ck_assert(r.later);
	ck_assert_uint_eq(fx.kicks.size(), 1);
	f.moves.kick_done(fx.kicks[0].id, true, "", t0, fx);
	ck_assert_uint_eq(fx.kicks.size(), 2);
	ck_assert(kick_ipc_line(fx.kicks[1].kick) == std::string("proxy\t*\tKICK-ALT\tuser\tb\001tob"));
	ck_assert_uint_eq(fx.admin.size(), 1);
	ck_assert_uint_eq(fx.admin[0].id, 3);
}
END_TEST

int main()
{
	Suite *s = suite_create("user-moves");
	TCase *tc = tcase_create("moves");
	tcase_add_test(tc, test_user_moves_move_kicks_then_waits_the_kick_delay);
	tcase_add_test(tc, test_user_moves_kick_delay_is_kept_to_the_millisecond);
	tcase_add_test(tc, test_user_moves_flush_program_runs_after_the_kill);
	tcase_add_test(tc, test_user_moves_stuck_move_times_out);
	tcase_add_test(tc, test_user_moves_admin_kicks_queue_over_the_limit);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
