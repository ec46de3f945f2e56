// Check suite for the noexcept trampolines (adapter/handles.h): what an
// exception escaping an ioloop callback does.
#include "adapter-test.h"

#include <new>
#include <stdexcept>

#include "adapter/handles.h"

using director::adapter::TimeoutHandle;
using adapter_test::run_until;

START_TEST(test_trampoline_out_of_memory_is_fatal)
{
	// Dovecot's own out-of-memory exit status: the master restarts the
	// process instead of it running on with half-done work.
	TimeoutHandle t;
	t.once(0, []() { throw std::bad_alloc(); });
	(void)run_until([]() { return false; }, 2000);
	ck_abort_msg("std::bad_alloc was swallowed");
}
END_TEST

START_TEST(test_trampoline_other_exception_is_logged_and_the_loop_goes_on)
{
	TimeoutHandle t, later;
	bool ran_later = false;
	t.once(0, []() { throw std::runtime_error("bad input"); });
	later.once(20, [&]() { ran_later = true; });
	ck_assert(run_until([&]() { return ran_later; }, 2000));
}
END_TEST

START_TEST(test_trampoline_repeating_timeout_survives_an_exception)
{
	TimeoutHandle t;
	int runs = 0;
	t.repeat(5, [&]() {
		if (++runs == 1)
			throw std::runtime_error("first run fails");
	});
	ck_assert(run_until([&]() { return runs >= 3; }, 2000));
}
END_TEST

int main()
{
	Suite *s = suite_create("handles");
	TCase *tc = adapter_test::tcase("exceptions");
	tcase_add_exit_test(tc, test_trampoline_out_of_memory_is_fatal, FATAL_OUTOFMEM);
	tcase_add_test(tc, test_trampoline_other_exception_is_logged_and_the_loop_goes_on);
	tcase_add_test(tc, test_trampoline_repeating_timeout_survives_an_exception);
	suite_add_tcase(s, tc);
	return adapter_test::run_suite(s);
}
