// Shared main() tail for the Check suites: run one suite, report, and
// turn its failure count into the process exit status that automake's
// test driver reads.
#ifndef DIRECTOR_CHECK_MAIN_H
#define DIRECTOR_CHECK_MAIN_H

#include <check.h>
#include <cstdlib>

static inline int run_suite(Suite *s)
{
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
