/*-------------------------------------------------------------------------
 *
 * random.c
 *	  The deterministic random numbers of scoreah's build: splitmix64, small
 *	  and good enough for sampling and k-means seeding.  The same seed gives
 *	  the same numbers on every machine, so the same table builds the same
 *	  index.
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

void
scoreah_random_init(ScoreahRandom *r, uint64 seed)
{
	r->s = seed ^ UINT64CONST(0x9E3779B97F4A7C15);
}

uint64
scoreah_random_next(ScoreahRandom *r)
{
	uint64		z = (r->s += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

double
scoreah_random_double(ScoreahRandom *r)
{
	return (scoreah_random_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64
scoreah_random_below(ScoreahRandom *r, uint64 n)
{
	return n == 0 ? 0 : scoreah_random_next(r) % n;
}

/*
 * Shuffle n rows of dim floats in place (Fisher-Yates).  A reservoir
 * sample is uniform as a set but not in its order; shuffled, any prefix of
 * it is a uniform sample too.
 */
void
scoreah_shuffle_rows(float *rows, uint64 *tags, int n, int dim, ScoreahRandom *r)
{
	for (int i = n - 1; i > 0; i--)
	{
		int			j = (int) scoreah_random_below(r, i + 1);

		if ((i & 1023) == 0)
			SCOREAH_CHECK_INTERRUPTS();
		if (i != j)
		{
			float	   *a = rows + (Size) i * dim;
			float	   *b = rows + (Size) j * dim;

			for (int d = 0; d < dim; d++)
			{
				float		t = a[d];

				a[d] = b[d];
				b[d] = t;
			}
			if (tags)
			{
				uint64		t = tags[i];

				tags[i] = tags[j];
				tags[j] = t;
			}
		}
	}
}
