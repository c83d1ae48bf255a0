/*
 * The one way a unit test program runs its suite (the check library's
 * runner, forking each test unless CK_FORK=no).
 */
#ifndef FANOUTD_TESTS_CHECK_RUN_H
#define FANOUTD_TESTS_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* Run every test of s; EXIT_SUCCESS when all of them passed. */
static inline int
check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
