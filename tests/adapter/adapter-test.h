// Shared by the adapter Check suites: lib-dovecot and an ioloop per forked
// test (CK_FORK), running the loop with a deadline, and a main() tail.
#pragma once

#include <check.h>
#include <cstdlib>
#include <functional>

#include "adapter/dovecot.h"
#include "adapter/event-log.h"

extern "C" {
#include "time-util.h"
}

namespace adapter_test {

inline struct ioloop *loop = nullptr;

inline void setup()
{
	lib_init();
	loop = io_loop_create();
}

inline void teardown()
{
	director::adapter::director_root_event_free();
	io_loop_destroy(&loop);
	lib_deinit();
}

inline void stop_loop(void *)
{
	io_loop_stop(current_ioloop);
}

// Runs the ioloop until `done()` is true (checked after every callback that
// stopped the loop, see stop_when()) or `deadline_msecs` passed. Returns
// done().
inline bool run_until(const std::function<bool()> &done, unsigned deadline_msecs)
{
	struct timeval end;
	i_gettimeofday(&end);
	end.tv_sec += deadline_msecs / 1000;
	end.tv_usec += (deadline_msecs % 1000) * 1000;
	if (end.tv_usec >= 1000000) {
		end.tv_sec++;
		end.tv_usec -= 1000000;
	}
	// Polls done() every 10 ms: callbacks under test need not know the test.
	while (!done()) {
		struct timeval now;
		i_gettimeofday(&now);
		if (timeval_cmp(&now, &end) >= 0)
			return false;
		struct timeout *to = timeout_add_short(10, stop_loop, nullptr);
		io_loop_run(loop);
		timeout_remove(&to);
	}
	return true;
}

inline TCase *tcase(const char *name)
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	return tc;
}

inline int run_suite(Suite *s)
{
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

} // namespace adapter_test
