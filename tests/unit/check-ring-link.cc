// Check suite for core::RingLink: handshake states, PING/PONG and the user stream of
// an outgoing handshake while the user table changes under it.
#include "ring-link.h"

#include <check.h>

#include "check-main.h"

#include <cstdlib>
#include <set>
#include <string>

using namespace director::core;

namespace {

// The user hashes in U/USER lines sent on `fx`.
std::multiset<uint32_t> users_sent(const Effects &fx)
{
	std::multiset<uint32_t> out;
	for (const auto &s : fx.ring_sends) {
		size_t start = 0;
		while (start < s.data.size()) {
			size_t lf = s.data.find('\n', start);
			std::string line = s.data.substr(start, lf - start);
			start = lf + 1;
			if (line.rfind("U\t", 0) == 0 || line.rfind("USER\t", 0) == 0)
				out.insert(uint32_t(std::strtoul(line.c_str() + line.find('\t') + 1,
								 nullptr, 10)));
		}
	}
	return out;
}

struct Fixture {
	HostList hosts;
	UserTable users;
	HostId host;
	Fixture()
	{
		host = *hosts.add(IpAddr::v4(10, 0, 0, 1), "");
	}
	void add_users(uint32_t first, uint32_t n, uint32_t ts)
	{
		for (uint32_t i = 0; i < n; i++)
			users.insert(first + i, 0, host, ts + i % 100);
	}
};

} // namespace

// The ping round trip is measured on the monotonic clock, and the PING carries
// the wall clock (the protocol's timestamp), even when the wall clock was set
// back between PING and PONG.
START_TEST(test_ring_link_ping_time_is_monotonic)
{
	RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), Now(5000, 100));
	out.set_connected(Now(5000, 100));
	Effects fx;
	out.ping(Now(5000, 100), ring_version_minor, fx);
	ck_assert_uint_eq(fx.ring_sends.size(), 1);
	ck_assert_msg(fx.ring_sends[0].data.rfind("PING\t5000", 0) == 0, "%s",
		      fx.ring_sends[0].data.c_str());
	ck_assert(out.pong(Now(5000 - 3600, 102)));
	ck_assert_uint_eq(out.last_ping_msecs, 2000);
	ck_assert_int_eq(out.ping_sent_at, 100);
	ck_assert_int_eq(out.last_input, 100);
}
END_TEST

START_TEST(test_ring_link_states_and_ping_pong)
{
	RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), 100);
	ck_assert(out.state() == RingLink::State::connecting);
	ck_assert(!out.connected());
	Effects fx;
	out.ping(100, ring_version_minor, fx);
	ck_assert(fx.ring_sends.empty()); // not connected yet
	out.set_connected(101);
	ck_assert(out.state() == RingLink::State::handshaking);
	out.ping(102, ring_version_minor, fx);
	out.ping(102, ring_version_minor, fx); // one outstanding at a time
	ck_assert_uint_eq(fx.ring_sends.size(), 1);
	ck_assert(fx.ring_sends[0].data.rfind("PING\t", 0) == 0);
	ck_assert(out.pong(104));
	ck_assert_uint_eq(out.last_ping_msecs, 2000);
	ck_assert(!out.pong(105));
	out.set_handshaked();
	ck_assert(out.handshaked());
	ck_assert(out.pctx.handshake_done);
	out.set_closing();
	ck_assert(out.closing());

	RingLink in(2, true, IpAddr::v4(127, 0, 0, 3), 100);
	ck_assert(in.state() == RingLink::State::handshaking);
	std::string who = in.who();
	ck_assert_str_eq(who.c_str(), "127.0.0.3");
}
END_TEST

START_TEST(test_ring_link_streams_users_in_batches)
{
	Fixture f;
	f.add_users(1, 25000, 1000);
	RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), 100);
	out.set_connected(100);
	out.start_user_stream(f.users);
	Effects fx;
	ck_assert(!out.continue_user_stream(f.hosts, 100, fx));
	ck_assert(out.want_drain);
	ck_assert_uint_eq(users_sent(fx).size(), ring_handshake_users_per_batch);
	int batches = 1;
	while (!out.continue_user_stream(f.hosts, 100, fx))
		ck_assert_int_lt(++batches, 10);
	ck_assert_int_eq(batches, 2);
	ck_assert(!out.sending_users());
	ck_assert_uint_eq(f.users.open_cursors(), 0);
	auto sent = users_sent(fx);
	ck_assert_uint_eq(sent.size(), 25000);
	ck_assert_uint_eq(std::set<uint32_t>(sent.begin(), sent.end()).size(), 25000);
}
END_TEST

// Regression (outside audit): users that reached the table while the stream ran
// (older ones from another handshake, then a re-sort) were never streamed.
START_TEST(test_ring_link_stream_meets_users_added_and_resorted_meanwhile)
{
	Fixture f;
	f.add_users(1, 25000, 100000);
	RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), 100);
	out.set_connected(100);
	out.start_user_stream(f.users);
	Effects fx;
	ck_assert(!out.continue_user_stream(f.hosts, 100, fx));
	f.add_users(1000000, 5000, 500);
	for (uint32_t i = 2; i < 1000; i += 3)
		f.users.erase(f.users.find(i + 20000, 0));
	f.users.sort_by_timestamp();
	while (!out.continue_user_stream(f.hosts, 100, fx))
		;
	auto sent = users_sent(fx);
	for (uint32_t i = 0; i < 5000; i++)
		ck_assert_msg(sent.count(1000000 + i) == 1, "user %u not streamed", 1000000 + i);
	ck_assert(f.users.sorted()); // the postponed sort ran when the stream ended
}
END_TEST

START_TEST(test_ring_link_closing_ends_the_stream)
{
	Fixture f;
	f.add_users(1, 15000, 1000);
	RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), 100);
	out.set_connected(100);
	out.start_user_stream(f.users);
	Effects fx;
	out.continue_user_stream(f.hosts, 100, fx);
	ck_assert_uint_eq(f.users.open_cursors(), 1);
	out.set_closing();
	ck_assert_uint_eq(f.users.open_cursors(), 0);
	ck_assert(!out.want_drain);
}
END_TEST

int main()
{
	Suite *s = suite_create("ring-link");
	TCase *tc = tcase_create("link");
	tcase_add_test(tc, test_ring_link_states_and_ping_pong);
	tcase_add_test(tc, test_ring_link_ping_time_is_monotonic);
	tcase_add_test(tc, test_ring_link_streams_users_in_batches);
	tcase_add_test(tc, test_ring_link_stream_meets_users_added_and_resorted_meanwhile);
	tcase_add_test(tc, test_ring_link_closing_ends_the_stream);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
