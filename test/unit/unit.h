/*
 * unit.h
 *	  A small TAP harness for scoreah's C unit tests (test/unit), which
 *	  link the algorithm files of src/algo without a server.
 *
 * Each test is a function that calls CHECK; the runner prints one TAP
 * line per test ("ok N - name" or "not ok N - name") with the first
 * failed check as a diagnostic, and exits non-zero when any test failed.
 */
#ifndef SCOREAH_UNIT_H
#define SCOREAH_UNIT_H

#include "scoreah_algo.h"

extern int	unit_failed_checks;
extern char unit_first_failure[512];

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			if (unit_failed_checks++ == 0) \
			{ \
				int		n_ = snprintf(unit_first_failure, sizeof(unit_first_failure), \
									  "%s:%d: ", __FILE__, __LINE__); \
				snprintf(unit_first_failure + n_, sizeof(unit_first_failure) - n_, __VA_ARGS__); \
			} \
		} \
	} while (0)

typedef void (*UnitTest) (void);

typedef struct UnitTestEntry
{
	const char *name;
	UnitTest	fn;
} UnitTestEntry;

/* tests, one list per file */
extern const UnitTestEntry unit_tests_random[];
extern const UnitTestEntry unit_tests_kernels[];
extern const UnitTestEntry unit_tests_kmeans[];
extern const UnitTestEntry unit_tests_pq[];
extern const UnitTestEntry unit_tests_topn[];

/* helpers */
extern float unit_uniform(ScoreahRandom *r, float lo, float hi);

#endif
