// Check suite for core/admin-session and core/user-list: one director-admin
// connection's handshake, dispatch (HEALTH-LIST included), pending commands, and
// USER-LIST written in pieces over a user table cursor while the table changes.
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"

#include "admin-session.h"
#include "director.h"

using namespace director::core;

namespace {

struct NullLog : LogSink {
	void log(LogLevel, const std::string &) override {}
};

const int64_t t0 = 1700000000;

struct Port : AdminSessionPort {
	std::string out;
	std::optional<std::string> health;
	void admin_send(std::string_view data) override { out.append(data); }
	std::optional<std::string> admin_health_list() override { return health; }
	void admin_ring_counters(RingConnId, DirectorListConnection &c) override
	{
		c.bytes_read = 7;
	}
	std::string take()
	{
		std::string s = std::move(out);
		out.clear();
		return s;
	}
};

struct Fixture {
	NullLog log;
	Director dir;
	Effects fx;
	Port port;
	std::unique_ptr<AdminSession> s;
	explicit Fixture(DirectorConfig cfg = DirectorConfig()) : dir(std::move(cfg), log)
	{
		dir.add_config_host(ip("10.0.0.1"), "", "");
		dir.add_config_host(ip("10.0.0.2"), "", "");
		dir.start_alone(t0);
		s = std::make_unique<AdminSession>(dir, 1, port);
		ck_assert(s->input_line("VERSION\tdirector-doveadm\t1\t0", t0, fx).ok());
	}
	// Runs one command line; returns what it sent.
	std::string cmd(const std::string &line)
	{
		Status st = s->input_line(line, t0, fx);
		ck_assert_msg(st.ok(), "%s: %s", line.c_str(), st.error().c_str());
		return port.take();
	}
	void add_users(unsigned n, unsigned first = 0)
	{
		for (unsigned i = 0; i < n; i++)
			dir.lookup(RequestId(first + i + 1), "user" + std::to_string(first + i),
				   "", t0, fx);
		fx = Effects();
	}
	// Runs USER-LIST to its end in chunks of max_bytes; returns the reply.
	std::string list_all(const std::string &line, size_t max_bytes, unsigned *chunks_r = nullptr)
	{
		ck_assert(cmd(line).empty());
		ck_assert(s->listing() && !s->reading());
		unsigned chunks = 0;
		while (!s->continue_user_list(max_bytes))
			ck_assert_uint_lt(++chunks, 1000000);
		ck_assert(!s->listing() && s->reading());
		if (chunks_r != nullptr)
			*chunks_r = chunks;
		return port.take();
	}
};

std::string expected_list(Director &d, std::optional<IpAddr> only)
{
	std::string out;
	for (const UserListEntry &e : d.user_list(only)) {
		out += format_user_list_line(e.user_hash, uint32_t(e.expire_time), e.host);
		out += '\n';
	}
	return out + "\n";
}

size_t count_lines(const std::string &s)
{
	size_t n = 0;
	for (char c : s)
		n += c == '\n';
	return n;
}

} // namespace

START_TEST(test_session_handshake_is_checked_first)
{
	NullLog log;
	Director dir(DirectorConfig(), log);
	dir.start_alone(t0);
	Port port;
	Effects fx;
	ck_assert(AdminSession::greeting() == "VERSION\tdirector-doveadm\t1\t0\n");
	AdminSession bad(dir, 1, port);
	Status st = bad.input_line("HOST-LIST", t0, fx);
	ck_assert(!st.ok());
	ck_assert(st.error().find("not compatible") != std::string::npos);
	AdminSession good(dir, 2, port);
	ck_assert(good.input_line("VERSION\tdirector-doveadm\t1\t3", t0, fx).ok());
	ck_assert(good.handshaked());
	ck_assert(port.out.empty());
}
END_TEST

START_TEST(test_session_bad_command_is_an_error_without_reply)
{
	Fixture f;
	Status st = f.s->input_line("NO-SUCH", t0, f.fx);
	ck_assert(!st.ok());
	ck_assert(st.error().find("unknown command") != std::string::npos);
	ck_assert(!f.s->input_line("", t0, f.fx).ok());
	ck_assert(!f.s->input_line("HOST-SET\tnot-an-ip", t0, f.fx).ok());
	ck_assert(f.port.out.empty());
}
END_TEST

START_TEST(test_session_health_list_only_while_health_checks_run)
{
	Fixture f;
	Status st = f.s->input_line("HEALTH-LIST", t0, f.fx);
	ck_assert(!st.ok());
	ck_assert(st.error().find("unknown command") != std::string::npos);
	f.port.health = std::string("10.0.0.1\tup\n\n");
	ck_assert(f.cmd("HEALTH-LIST") == "10.0.0.1\tup\n\n");
	ck_assert(f.s->reading());
}
END_TEST

START_TEST(test_session_host_list_and_lookup_replies)
{
	Fixture f;
	std::string out = f.cmd("HOST-LIST");
	ck_assert_uint_eq(count_lines(out), 3);
	ck_assert(out.rfind("10.0.0.1\t100\t0\t\tU\t", 0) == 0);
	ck_assert(out.size() >= 2 && out.compare(out.size() - 2, 2, "\n\n") == 0);
	f.add_users(1);
	UserLookup l = f.dir.user_lookup(f.dir.user_hash("user0"), "", t0);
	std::string line = f.cmd("USER-LOOKUP\tuser0");
	ck_assert(line == format_user_lookup_line(l.current, uint32_t(l.expire_time), l.hashed,
						  l.initial_config) +
				  "\n");
	ck_assert(f.cmd("HOST-LIST-REMOVED") == "\n");
	ck_assert(f.cmd("HOST-SET\t10.0.0.3\t100000") == "vhost count too large\n");
	ck_assert(f.cmd("USER-MOVE\tuser0\t10.9.9.9") == "NOTFOUND\n");
	out = f.cmd("DIRECTOR-LIST");
	ck_assert(out.size() >= 2 && out.compare(out.size() - 2, 2, "\n\n") == 0);
}
END_TEST

START_TEST(test_session_pending_kick_stops_reading_until_answered)
{
	DirectorConfig cfg;
	cfg.max_parallel_kicks = 1;
	Fixture f(cfg);
	ck_assert(f.cmd("USER-KICK\ta") == "OK\n");
	ck_assert(f.cmd("USER-KICK-ALT\tuser_x\tv").empty());
	ck_assert(f.s->awaiting_reply() && !f.s->reading());
	ck_assert_uint_ge(f.fx.kicks.size(), 1);
	f.dir.kick_done(f.fx.kicks.at(0).id, true, "", t0, f.fx);
	ck_assert_uint_eq(f.fx.admin.size(), 1);
	ck_assert_uint_eq(f.fx.admin[0].id, 1);
	ck_assert(f.fx.admin[0].result == AdminResult::ok);
	f.s->reply_later(f.fx.admin[0].result);
	ck_assert(f.s->reading());
	ck_assert(f.port.take() == "OK\n");
}
END_TEST

START_TEST(test_user_list_streams_in_chunks_as_stock_orders_it)
{
	Fixture f;
	f.add_users(5000);
	unsigned chunks = 0;
	std::string out = f.list_all("USER-LIST", 4096, &chunks);
	ck_assert(out == expected_list(f.dir, std::nullopt));
	ck_assert_uint_eq(count_lines(out), 5001);
	ck_assert_uint_gt(chunks, 10);
	// One host only, and an unknown host lists nothing.
	ck_assert(f.list_all("USER-LIST\t10.0.0.2", 4096) ==
		  expected_list(f.dir, ip("10.0.0.2")));
	ck_assert(f.list_all("USER-LIST\t10.9.9.9", 4096) == "\n");
}
END_TEST

START_TEST(test_user_list_follows_a_changing_table)
{
	Fixture f;
	f.add_users(3000);
	ck_assert(f.cmd("USER-LIST").empty());
	ck_assert(!f.s->continue_user_list(2048));
	// Between chunks: users come and go, and the table expires some.
	f.add_users(500, 3000);
	f.dir.tick(t0 + 100, f.fx);
	unsigned guard = 0;
	while (!f.s->continue_user_list(2048)) {
		ck_assert_uint_lt(++guard, 100000);
		if (guard % 5 == 0)
			f.add_users(10, 3500 + guard);
	}
	std::string out = f.port.take();
	ck_assert(out.size() >= 2 && out.compare(out.size() - 2, 2, "\n\n") == 0);
	// Every user present from the start until the end is listed.
	for (unsigned i = 0; i < 3500; i += 97) {
		uint32_t h = f.dir.user_hash("user" + std::to_string(i));
		ck_assert_msg(out.find("\n" + std::to_string(h) + "\t") != std::string::npos ||
				      out.rfind(std::to_string(h) + "\t", 0) == 0,
			      "user%u missing", i);
	}
	ck_assert(f.s->reading());
}
END_TEST

START_TEST(test_user_list_chunk_visits_a_bounded_number_of_users)
{
	// USER-LIST of a host with few users in a big table: each chunk walks only
	// part of the table, so no single call stalls the process.
	Fixture f;
	f.add_users(200000);
	ck_assert(f.cmd("USER-LIST\t10.9.9.8").empty()); // unknown: nothing to walk
	ck_assert(f.s->continue_user_list(1 << 20));
	ck_assert(f.port.take() == "\n");
	f.dir.add_config_host(ip("10.0.0.3"), "", "");
	ck_assert(f.cmd("USER-LIST\t10.0.0.3").empty());
	unsigned calls = 1;
	while (!f.s->continue_user_list(1 << 20))
		ck_assert_uint_lt(++calls, 1000);
	ck_assert_uint_ge(calls, 3);
	ck_assert(f.port.take() == "\n");
}
END_TEST

START_TEST(test_session_gone_while_listing_closes_the_cursor)
{
	Fixture f;
	f.add_users(1000);
	ck_assert(f.cmd("USER-LIST").empty());
	ck_assert(!f.s->continue_user_list(100));
	ck_assert_uint_eq(f.dir.user_cursors_open(), 1);
	f.s.reset();
	ck_assert_uint_eq(f.dir.user_cursors_open(), 0);
}
END_TEST

static Suite *admin_session_suite()
{
	Suite *s = suite_create("admin-session");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_session_handshake_is_checked_first);
	tcase_add_test(tc, test_session_bad_command_is_an_error_without_reply);
	tcase_add_test(tc, test_session_health_list_only_while_health_checks_run);
	tcase_add_test(tc, test_session_host_list_and_lookup_replies);
	tcase_add_test(tc, test_session_pending_kick_stops_reading_until_answered);
	tcase_add_test(tc, test_user_list_streams_in_chunks_as_stock_orders_it);
	tcase_add_test(tc, test_user_list_follows_a_changing_table);
	tcase_add_test(tc, test_user_list_chunk_visits_a_bounded_number_of_users);
	tcase_add_test(tc, test_session_gone_while_listing_closes_the_cursor);
	suite_add_tcase(s, tc);
	return s;
}

int main()
{
	return run_suite(admin_session_suite());
}
