// Check suite for core::LookupQueue: order, retry, cancel, timeouts and the delay
// warning.
#include "lookup-queue.h"

#include <check.h>

#include "check-main.h"

using namespace director::core;

namespace {

PendingLookup req(RequestId id, int64_t created)
{
	return PendingLookup{id, uint32_t(id * 7), "", created, DelayReason::ring_not_synced};
}

} // namespace

START_TEST(test_lookup_queue_retry_keeps_unanswered_in_order)
{
	LookupQueue q;
	for (RequestId id = 1; id <= 5; id++)
		q.push(req(id, 100));
	std::vector<RequestId> offered;
	q.retry([&](PendingLookup &r) {
		offered.push_back(r.id);
		return r.id % 2 == 0;
	});
	ck_assert(offered == std::vector<RequestId>({1, 2, 3, 4, 5}));
	ck_assert_uint_eq(q.size(), 3);
	offered.clear();
	q.retry([&](PendingLookup &r) {
		offered.push_back(r.id);
		return false;
	});
	ck_assert(offered == std::vector<RequestId>({1, 3, 5}));
}
END_TEST

START_TEST(test_lookup_queue_cancel_forgets_one)
{
	LookupQueue q;
	q.push(req(1, 100));
	q.push(req(2, 100));
	ck_assert(q.cancel(1));
	ck_assert(!q.cancel(1));
	ck_assert_uint_eq(q.size(), 1);
}
END_TEST

START_TEST(test_lookup_queue_times_out_the_oldest)
{
	LookupQueue q;
	q.push(req(1, 100));
	q.push(req(2, 110));
	ck_assert(q.take_timed_out(100 + request_timeout_secs - 1).empty());
	auto out = q.take_timed_out(100 + request_timeout_secs);
	ck_assert_uint_eq(out.size(), 1);
	ck_assert_uint_eq(out[0].id, 1);
	ck_assert_uint_eq(q.size(), 1);
}
END_TEST

START_TEST(test_lookup_queue_warns_once_per_backlog)
{
	LookupQueue q;
	q.push(req(1, 100));
	ck_assert(!q.delay_warning(100 + request_delay_warning_secs - 1));
	auto w = q.delay_warning(100 + request_delay_warning_secs);
	ck_assert(w.has_value());
	ck_assert_str_eq(w->c_str(), "1 requests are delayed: ring not synced");
	ck_assert(!q.delay_warning(200));
	q.retry([](PendingLookup &) { return true; });
	q.push(req(2, 300));
	ck_assert(q.delay_warning(300 + request_delay_warning_secs).has_value());
}
END_TEST

// The queue's times are the monotonic clock's (PendingLookup::created is
// Now::mono): a wall clock set back or forward neither delays nor hastens them.
START_TEST(test_lookup_queue_timeouts_ignore_wall_clock_jumps)
{
	LookupQueue q;
	q.push(req(1, 100));
	ck_assert(q.take_timed_out(Now(100 + 3600 + 1, 101)).empty());
	ck_assert(!q.delay_warning(Now(100 + 3600 + 1, 101)));
	ck_assert(q.take_timed_out(Now(100 - 3600 + request_timeout_secs - 1,
				       100 + request_timeout_secs - 1))
			  .empty());
	auto out = q.take_timed_out(Now(100 - 3600 + request_timeout_secs, 100 + request_timeout_secs));
	ck_assert_uint_eq(out.size(), 1);
}
END_TEST

int main()
{
	Suite *s = suite_create("lookup-queue");
	TCase *tc = tcase_create("queue");
	tcase_add_test(tc, test_lookup_queue_retry_keeps_unanswered_in_order);
	tcase_add_test(tc, test_lookup_queue_cancel_forgets_one);
	tcase_add_test(tc, test_lookup_queue_times_out_the_oldest);
	tcase_add_test(tc, test_lookup_queue_warns_once_per_backlog);
	tcase_add_test(tc, test_lookup_queue_timeouts_ignore_wall_clock_jumps);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
