/*
 * unit.c
 *	  Runs every C unit test of scoreah's algorithms and prints TAP.
 *
 *	  make unittest                 # native build, run here
 *	  make unittest UNIT_CC=aarch64-linux-gnu-gcc UNIT_RUN=qemu-aarch64
 *
 * With an argument, runs only the tests whose name contains it.
 */
#include "unit.h"

int			unit_failed_checks;
char		unit_first_failure[512];

float
unit_uniform(ScoreahRandom *r, float lo, float hi)
{
	return lo + (float) scoreah_random_double(r) * (hi - lo);
}

int
main(int argc, char **argv)
{
	const UnitTestEntry *lists[] = {
		unit_tests_random, unit_tests_kernels, unit_tests_kmeans,
		unit_tests_pq, unit_tests_topn
	};
	int			n = 0,
				failed = 0;

	scoreah_init_kernels(false);
	printf("# kernels: float=%s lut16=%s exact=%s\n",
		   scoreah_float_kernel_name(), scoreah_lut16_kernel_name(),
		   scoreah_exact_kernel_name());
	for (int l = 0; l < (int) lengthof(lists); l++)
		for (const UnitTestEntry *t = lists[l]; t->name; t++)
		{
			if (argc > 1 && strstr(t->name, argv[1]) == NULL)
				continue;
			unit_failed_checks = 0;
			t->fn();
			n++;
			if (unit_failed_checks == 0)
				printf("ok %d - %s\n", n, t->name);
			else
			{
				failed++;
				printf("not ok %d - %s\n#   %s (%d failed checks)\n", n, t->name,
					   unit_first_failure, unit_failed_checks);
			}
			fflush(stdout);
		}
	printf("1..%d\n", n);
	if (failed)
		printf("# %d of %d tests failed\n", failed, n);
	return failed ? 1 : 0;
}
