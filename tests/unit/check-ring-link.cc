// Check suite for core::RingLink: handshake states, PING/PONG and the user stream of
// an outgoing handshake while the user table changes under it.
#include "ring-link.h"

#include <check.h>

#include "check-main.h"

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

using namespace director::core;

namespace {

// The user hashes in U/USER lines sent on `fx`, in order.
std::vector<uint32_t> users_sent_in_order(const Effects &fx)
{
	std::vector<uint32_t> out;
	for (const auto &s : fx.ring_sends) {
		size_t start = 0;
		while (start < s.data.size()) {
			size_t lf = s.data.find('\n', start);
			std::string line = s.data.substr(start, lf - start);
			start = lf + 1;
			if (line.rfind("U\t", 0) == 0 || line.rfind("USER\t", 0) == 0)
				out.push_back(uint32_t(std::strtoul(line.c_str() + line.find('\t') + 1,
								    nullptr, 10)));
		}
	}
	return out;
}

std::multiset<uint32_t> users_sent(const Effects &fx)
{
	auto v = users_sent_in_order(fx);
	return std::multiset<uint32_t>(v.begin(), v.end());
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

// A delta stream: only the users of the named buckets. A few (here 1/16 of
// the table) are picked before the stream starts and sent oldest first: one
// erased meanwhile is not sent, nor the user that got its index. Many (here
// 3/4) are streamed by walking the expiry list, as the whole table is, which
// meets that user.
START_TEST(test_ring_link_delta_stream_sends_the_buckets_users_oldest_first)
{
	const unsigned bits = 5;
	for (bool few : {true, false}) {
		Fixture f;
		// 200000 users, the later the older
		for (uint32_t i = 0; i < 200000; i++)
			f.users.insert(i * 143107u, 0, f.host, 300000 - i);
		f.users.sort_by_timestamp(); // so that a walk, too, goes oldest first
		UserDigestBuckets buckets(bits);
		for (uint32_t b = 0; b < (few ? 2u : 24u); b++)
			buckets.add(few ? 3 + 8 * b : b);
		std::vector<uint32_t> want;
		for (uint32_t i = 200000; i-- > 0;) {
			if (buckets.contains_user(i * 143107u))
				want.push_back(i * 143107u);
		}
		ck_assert_uint_gt(want.size(), ring_handshake_users_per_batch);
		RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), 100);
		out.set_connected(100);
		out.start_user_stream(f.users, buckets);
		ck_assert_uint_eq(f.users.open_cursors(), few ? 0 : 1);
		Effects fx;
		ck_assert(!out.continue_user_stream(f.hosts, 100, fx));
		// not sent yet: erased; then its index goes to a user of the same
		// bucket (with a cursor open, at the newest end of the list)
		uint32_t gone = want.back();
		f.users.erase(f.users.find(gone, 0));
		uint32_t newcomer = gone + (1u << (32 - bits)) / 2; // same top bits
		ck_assert(buckets.contains_user(newcomer) && f.users.find(newcomer, 0) == no_user);
		f.users.insert(newcomer, 0, f.host, 1);
		int batches = 1;
		while (!out.continue_user_stream(f.hosts, 100, fx))
			ck_assert_int_lt(++batches, 30);
		want.pop_back();
		if (!few)
			want.push_back(newcomer); // a walk meets users added meanwhile
		ck_assert(users_sent_in_order(fx) == want);
		ck_assert(!out.sending_users());
		ck_assert_uint_eq(f.users.open_cursors(), 0);
	}
}
END_TEST

// A resend stream sends the users marked resend, oldest first, and clears the
// mark of each one it sent: picked beforehand when few are marked, by walking
// the expiry list when the whole table is (after a full join).
START_TEST(test_ring_link_resend_stream_sends_marked_users)
{
	for (uint32_t step : {7u, 1u}) {
		Fixture f;
		f.add_users(1, 20000, 1000);
		f.users.sort_by_timestamp();
		std::vector<uint32_t> marked;
		for (uint32_t h = 1; h <= 20000; h += step) {
			f.users.set_resend(f.users.find(h, 0), true);
			marked.push_back(h);
		}
		RingLink out(1, false, IpAddr::v4(127, 0, 0, 2), 100);
		out.set_connected(100);
		out.set_handshaked();
		out.start_resend_stream(f.users);
		ck_assert_uint_eq(f.users.open_cursors(), step == 1 ? 1 : 0);
		Effects fx;
		while (!out.continue_user_stream(f.hosts, 100, fx))
			;
		auto sent = users_sent_in_order(fx);
		ck_assert_uint_eq(sent.size(), marked.size());
		ck_assert(std::multiset<uint32_t>(sent.begin(), sent.end()) ==
			  std::multiset<uint32_t>(marked.begin(), marked.end()));
		for (size_t i = 1; i < sent.size(); i++)
			ck_assert(f.users.timestamp(f.users.find(sent[i - 1], 0)) <=
				  f.users.timestamp(f.users.find(sent[i], 0)));
		for (uint32_t h : marked)
			ck_assert(!f.users.resend(f.users.find(h, 0)));
	}
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
	tcase_add_test(tc, test_ring_link_delta_stream_sends_the_buckets_users_oldest_first);
	tcase_add_test(tc, test_ring_link_resend_stream_sends_marked_users);
	tcase_add_test(tc, test_ring_link_closing_ends_the_stream);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
