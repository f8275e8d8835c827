/*
 * test_kmeans.c
 *	  k-means: determinism, recovery of well-separated clusters, empty
 *	  clusters and degenerate inputs, spherical centers, Hamerly's
 *	  bounds giving what plain Lloyd iterations give, and the many-rows
 *	  nearest-center search giving what one row's gives.
 */
#include "unit.h"

/* n points around `blobs' centers spaced `sep' apart, in dim dimensions */
static float *
make_blobs(int n, int dim, int blobs, float sep, uint64 seed, float *means)
{
	ScoreahRandom r;
	float	   *x = malloc(sizeof(float) * n * dim);

	scoreah_random_init(&r, seed);
	for (int b = 0; b < blobs; b++)
		for (int d = 0; d < dim; d++)
			means[b * dim + d] = unit_uniform(&r, -sep, sep);
	for (int i = 0; i < n; i++)
		for (int d = 0; d < dim; d++)
			x[i * dim + d] = means[(i % blobs) * dim + d] + unit_uniform(&r, -0.5f, 0.5f);
	return x;
}

/*
 * The nearest of k centers to point x by brute force in double (the
 * first on ties); *dist gets its squared distance.
 */
static int
nearest_center(const float *x, const float *centers, int k, int dim, double *dist)
{
	int			best = 0;
	double		bestd = INFINITY;

	for (int j = 0; j < k; j++)
	{
		double		s = 0;

		for (int d = 0; d < dim; d++)
		{
			double		diff = (double) x[d] - centers[j * dim + d];

			s += diff * diff;
		}
		if (s < bestd)
		{
			bestd = s;
			best = j;
		}
	}
	*dist = bestd;
	return best;
}

static double
objective(const float *x, int n, int dim, const float *centers, int k)
{
	double		total = 0;

	for (int i = 0; i < n; i++)
	{
		double		best;

		nearest_center(x + i * dim, centers, k, dim, &best);
		total += best;
	}
	return total;
}

static void
test_kmeans_deterministic(void)
{
	int			n = 3000,
				dim = 24,
				k = 20;
	float		means[20 * 24];
	float	   *x = make_blobs(n, dim, 20, 3, 1, means);
	float	   *c1 = malloc(sizeof(float) * k * dim);
	float	   *c2 = malloc(sizeof(float) * k * dim);
	ScoreahKmeansParams p = {k, 10, 5, false, true, 99, NULL, NULL};

	scoreah_kmeans(x, n, dim, &p, c1);
	scoreah_kmeans(x, n, dim, &p, c2);
	CHECK(memcmp(c1, c2, sizeof(float) * k * dim) == 0, "same seed, different centers");
	p.seed = 100;
	scoreah_kmeans(x, n, dim, &p, c2);
	CHECK(memcmp(c1, c2, sizeof(float) * k * dim) != 0, "another seed, same centers");
	free(x);
	free(c1);
	free(c2);
}

static void
test_kmeans_recovers_blobs(void)
{
	int			n = 4000,
				dim = 16,
				k = 8;
	float		means[8 * 16];
	float	   *x = make_blobs(n, dim, k, 10, 2, means);
	float	   *c = malloc(sizeof(float) * k * dim);

	double		obj[2];

	for (int init = 0; init < 2; init++)
	{
		ScoreahKmeansParams p = {k, 20, 10, false, init == 1, 5, NULL, NULL};
		int			nempty = scoreah_kmeans(x, n, dim, &p, c);

		CHECK(nempty == 0, "%d empty clusters (%s init)", nempty, init ? "random" : "k-means++");
		obj[init] = objective(x, n, dim, c, k);
		if (init == 1)
			break;				/* random starts may settle in a local optimum */
		/* every blob's mean has a center within the blob's spread */
		for (int b = 0; b < k; b++)
		{
			double		best;

			nearest_center(means + b * dim, c, k, dim, &best);
			CHECK(best < 0.1, "blob %d is %g from the nearest center (%s init)", b, sqrt(best),
				  init ? "random" : "k-means++");
		}
	}
	/* k-means++ found the blobs: nothing does much better */
	CHECK(obj[0] <= obj[1] * (1 + 1e-9), "k-means++ objective %g above random init's %g",
		  obj[0], obj[1]);
	free(x);
	free(c);
}

static void
test_kmeans_degenerate(void)
{
	int			dim = 5;
	float		pts[3 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1, -2, -3, -4, -5};
	float		c[8 * 5];
	ScoreahKmeansParams p = {8, 10, 1, false, true, 1, NULL, NULL};
	float	   *same = malloc(sizeof(float) * 100 * dim);
	int			nempty;

	/* no points: every cluster empty, centers zero */
	nempty = scoreah_kmeans(pts, 0, dim, &p, c);
	CHECK(nempty == 8 && c[0] == 0 && c[39] == 0, "n = 0 gave %d empty", nempty);

	/* fewer points than clusters: each point a center, the rest repeat them */
	nempty = scoreah_kmeans(pts, 3, dim, &p, c);
	CHECK(nempty == 5, "3 points, 8 clusters: %d empty, expected 5", nempty);
	CHECK(memcmp(c, pts, sizeof(pts)) == 0 && memcmp(c + 3 * dim, pts, sizeof(float) * dim) == 0,
		  "centers are not the points");

	/*
	 * identical points: clusters cannot separate (re-seeded centers fall on
	 * the same point); every center is that point, no NaN, and the count
	 * of empty clusters stays in range
	 */
	for (int i = 0; i < 100 * dim; i++)
		same[i] = (float) (i % dim);
	p.k = 4;
	p.minClusterSize = 10;
	nempty = scoreah_kmeans(same, 100, dim, &p, c);
	CHECK(nempty >= 0 && nempty <= 3, "identical points: %d empty clusters", nempty);
	for (int i = 0; i < 4 * dim; i++)
		CHECK(!isnan(c[i]) && c[i] == (float) (i % dim), "center value %d is %g", i, c[i]);
	free(same);
}

static void
test_kmeans_spherical(void)
{
	int			n = 2000,
				dim = 32,
				k = 10;
	float		means[10 * 32];
	float	   *x = make_blobs(n, dim, k, 4, 3, means);
	float	   *c = malloc(sizeof(float) * k * dim);
	ScoreahKmeansParams p = {k, 8, 5, true, true, 3, NULL, NULL};

	for (int i = 0; i < n; i++)
		scoreah_normalize(x + i * dim, dim, x + i * dim);
	scoreah_kmeans(x, n, dim, &p, c);
	for (int j = 0; j < k; j++)
		CHECK(fabs(scoreah_exact_norm(c + j * dim, dim) - 1) < 1e-6, "center %d has norm %g", j,
			  scoreah_exact_norm(c + j * dim, dim));
	free(x);
	free(c);
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *) a - *(const int *) b;
}

/*
 * A small table with the default min_partition_size (50): 700 rows of
 * overlapping clusters, 26 leaves (about sqrt(rows)), so the mean leaf is
 * 27 rows.  Re-seeding every cluster below min(50, rows / leaves), the
 * mean itself, moved about half of them in every iteration and left
 * leaves of one or two rows beside a few huge ones (MiniLM text
 * embeddings: median leaf 2 rows, largest 144; here median 2, largest
 * 85).  Counted over the final centers' nearest points: the median leaf
 * is at least half the mean, none is empty and the largest is below three
 * means.
 */
static void
test_kmeans_small_table_balanced(void)
{
	int			n = 700,
				dim = 32,
				k = 26;
	float		means[60 * 32];
	float	   *x = make_blobs(n, dim, 60, 0.2f, 6, means);
	float	   *c = malloc(sizeof(float) * k * dim);
	int			counts[26] = {0};
	ScoreahKmeansParams p = {k, 12, 50, false, true, 11, NULL, NULL};

	scoreah_kmeans(x, n, dim, &p, c);
	for (int i = 0; i < n; i++)
	{
		double		dist;

		counts[nearest_center(x + i * dim, c, k, dim, &dist)]++;
	}
	qsort(counts, k, sizeof(int), cmp_int);
	CHECK(counts[k / 2] * 2 >= n / k, "median leaf %d rows, mean %d", counts[k / 2], n / k);
	CHECK(counts[0] > 0, "an empty leaf");
	CHECK(counts[k - 1] < 3 * (n / k), "largest leaf %d rows, mean %d", counts[k - 1], n / k);
	free(x);
	free(c);
}

/*
 * Hamerly's bounds only skip searches that could not change an
 * assignment: the clustering must be as good as plain Lloyd iterations
 * from the same start (here: the objective after each run, compared with
 * Lloyd's from the centers the first iteration starts from).  The same
 * for tiny runs (codebooks: 16 centers, up to 16 dimensions), which search
 * all centers stored transposed and add their sums in four sets.
 */
static void
test_kmeans_hamerly_exact(void)
{
	static const struct
	{
		int			dim;
		int			k;
	}			runs[] = {{12, 40}, {2, 16}, {3, 16}, {4, 16}, {7, 16}, {16, 16}};

	for (int r = 0; r < (int) lengthof(runs); r++)
	{
		int			n = 5000,
					dim = runs[r].dim,
					k = runs[r].k;
		float	   *means = malloc(sizeof(float) * k * dim);
		float	   *x = make_blobs(n, dim, k, 2, 4, means);
		float	   *c = malloc(sizeof(float) * k * dim);
		float	   *ref = malloc(sizeof(float) * k * dim);
		double	   *sums = malloc(sizeof(double) * k * dim);
		int		   *counts = malloc(sizeof(int) * k);
		ScoreahKmeansParams p = {k, 1, 0, false, true, 8, NULL, NULL};

		/* one iteration gives the random start's first update */
		scoreah_kmeans(x, n, dim, &p, ref);

		/* plain Lloyd from there, 15 more iterations, full search each time */
		for (int it = 0; it < 15; it++)
		{
			memset(sums, 0, sizeof(double) * k * dim);
			memset(counts, 0, sizeof(int) * k);
			for (int i = 0; i < n; i++)
			{
				double		dist;
				int			best = nearest_center(x + i * dim, ref, k, dim, &dist);

				counts[best]++;
				for (int d = 0; d < dim; d++)
					sums[best * dim + d] += x[i * dim + d];
			}
			for (int j = 0; j < k; j++)
				if (counts[j] > 0)
					for (int d = 0; d < dim; d++)
						ref[j * dim + d] = (float) (sums[j * dim + d] / counts[j]);
		}
		p.iterations = 16;
		scoreah_kmeans(x, n, dim, &p, c);
		{
			double		oh = objective(x, n, dim, c, k);
			double		ol = objective(x, n, dim, ref, k);

			CHECK(fabs(oh - ol) <= 1e-4 * ol, "%d dims, %d centers: objective %.6g, plain Lloyd %.6g",
				  dim, k, oh, ol);
		}
		free(means);
		free(x);
		free(c);
		free(ref);
		free(sums);
		free(counts);
	}
}

/*
 * The assignment of a large run handed to assignFn, as parallel workers
 * take it: chunks computed in another order into buffers of their own,
 * added in chunk order.  The centers must be the same bits as the run in
 * one process.
 */
typedef struct ChunkedArg
{
	const float *data;
	int			n;
	int			dim;
	int			k;
	int			calls;
} ChunkedArg;

static int
assign_reversed(void *arg, const float *centers, const float *cnorms, int *assign,
				double *sums, int *counts)
{
	ChunkedArg *a = (ChunkedArg *) arg;
	size_t		nsum = (size_t) a->k * a->dim;
	double	   *cs = calloc(SCOREAH_KMEANS_CHUNKS * nsum, sizeof(double));
	int		   *cc = calloc((size_t) SCOREAH_KMEANS_CHUNKS * a->k, sizeof(int));
	int			changed = 0;

	a->calls++;
	for (int c = SCOREAH_KMEANS_CHUNKS - 1; c >= 0; c--)
	{
		int			lo,
					hi;

		scoreah_kmeans_chunk(a->n, c, &lo, &hi);
		changed += scoreah_kmeans_assign_range(a->data, a->dim, centers, cnorms, a->k, lo, hi,
											   assign, cs + nsum * c, cc + (size_t) a->k * c);
	}
	memset(sums, 0, sizeof(double) * nsum);
	memset(counts, 0, sizeof(int) * a->k);
	for (int c = 0; c < SCOREAH_KMEANS_CHUNKS; c++)
	{
		for (size_t i = 0; i < nsum; i++)
			sums[i] += cs[nsum * c + i];
		for (int j = 0; j < a->k; j++)
			counts[j] += cc[(size_t) a->k * c + j];
	}
	free(cs);
	free(cc);
	return changed;
}

static void
test_kmeans_chunked_parallel(void)
{
	int			n = 3000,
				dim = 64,
				k = 520;		/* k x dim = 33280: the chunked full search */
	float	   *x = malloc(sizeof(float) * n * dim);
	float	   *c1 = malloc(sizeof(float) * k * dim);
	float	   *c2 = malloc(sizeof(float) * k * dim);
	ScoreahRandom r;
	ChunkedArg	arg = {x, n, dim, k, 0};
	ScoreahKmeansParams p = {k, 4, 2, false, true, 21, NULL, NULL};

	CHECK(scoreah_kmeans_full_search(k, dim), "the test run must be a large one");
	scoreah_random_init(&r, 77);
	for (int i = 0; i < n * dim; i++)
		x[i] = (float) ((scoreah_random_next(&r) >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
	scoreah_kmeans(x, n, dim, &p, c1);
	p.assignFn = assign_reversed;
	p.assignArg = &arg;
	scoreah_kmeans(x, n, dim, &p, c2);
	CHECK(arg.calls > 0, "assignFn was not called");
	CHECK(memcmp(c1, c2, sizeof(float) * k * dim) == 0,
		  "centers differ between one process and chunks taken in another order");
	free(x);
	free(c1);
	free(c2);
}

/*
 * Several rows' nearest centers at once give each row's own search to
 * the bit (leaf and distance), whatever the rows' company: n rows from 1
 * to 14 (the groups of 6 and tiles of 3 and their remainders), center
 * counts around the runs of 64 and the tiles of 4, dimensions around the
 * 8-wide steps and the tiny-dimension path; portable and chosen kernels.
 */
static void
test_nearest_rows(void)
{
	static const int dims[] = {2, 4, 5, 8, 17, 100};
	static const int ks[] = {1, 3, 16, 65, 130};
	ScoreahRandom r;
	int			bad = 0;

	scoreah_random_init(&r, 5);
	for (int forced = 1; forced >= 0; forced--)
	{
		scoreah_init_kernels(forced == 1);
		for (int di = 0; di < (int) lengthof(dims); di++)
			for (int ki = 0; ki < (int) lengthof(ks); ki++)
			{
				int			dim = dims[di],
							k = ks[ki];
				float	   *c = malloc(sizeof(float) * k * dim);
				float	   *cn = malloc(sizeof(float) * k);
				float	   *x = malloc(sizeof(float) * 14 * dim);

				for (int i = 0; i < k * dim; i++)
					c[i] = unit_uniform(&r, -1, 1);
				for (int j = 0; j < k; j++)
					cn[j] = scoreah_dot(c + j * dim, c + j * dim, dim);
				for (int i = 0; i < 14 * dim; i++)
					x[i] = unit_uniform(&r, -1, 1);
				for (int n = 1; n <= 14; n++)
				{
					int			got[14];
					float		gotd[14];

					scoreah_nearest_l2_rows(x, n, c, cn, k, dim, got, gotd);
					for (int i = 0; i < n; i++)
					{
						float		d;
						int			want = scoreah_nearest_l2(x + i * dim, c, cn, k, dim, &d);

						bad += got[i] != want || memcmp(&gotd[i], &d, sizeof(float)) != 0;
					}
				}
				free(c);
				free(cn);
				free(x);
			}
	}
	scoreah_init_kernels(false);
	CHECK(bad == 0, "%d rows searched with others differ from their own search", bad);
}

/*
 * Re-seeding splits a big cluster rather than putting the new center
 * beside one of its points: in 100 dimensions such a center took in little
 * more than that point, and on rows whose norms differ widely (GloVe under
 * L2) most clusters stayed undersized, re-seeded in every iteration, and
 * ended with a few points each.  Rows here: uniform directions times norms
 * spread over 0.2-5 (log-uniform), 6,000 of them, 60 clusters, clusters
 * under 50 re-seeded; the final assignment leaves no cluster under 25.
 */
static void
test_kmeans_reseed_splits(void)
{
	int			n = 6000,
				dim = 100,
				k = 60;
	float	   *x = malloc(sizeof(float) * n * dim);
	float	   *c = malloc(sizeof(float) * k * dim);
	int			counts[60] = {0};
	int			tiny = 0,
				smallest = n;
	ScoreahRandom r;
	ScoreahKmeansParams p = {k, 12, 50, false, true, 7, NULL, NULL};

	scoreah_random_init(&r, 11);
	for (int i = 0; i < n; i++)
	{
		float		scale = expf(unit_uniform(&r, logf(0.2f), logf(5.0f)));

		for (int d = 0; d < dim; d++)
			x[i * dim + d] = scale * unit_uniform(&r, -1, 1);
	}
	scoreah_kmeans(x, n, dim, &p, c);
	for (int i = 0; i < n; i++)
	{
		double		dist;

		counts[nearest_center(x + i * dim, c, k, dim, &dist)]++;
	}
	for (int j = 0; j < k; j++)
	{
		tiny += counts[j] < 25;
		smallest = Min(smallest, counts[j]);
	}
	CHECK(tiny == 0, "%d of %d clusters under 25 points (smallest %d)", tiny, k, smallest);
	free(x);
	free(c);
}

const UnitTestEntry unit_tests_kmeans[] = {
	{"kmeans: same seed, same centers", test_kmeans_deterministic},
	{"kmeans: recovers separated clusters (k-means++ and random init)", test_kmeans_recovers_blobs},
	{"kmeans: no points, fewer points than clusters, identical points", test_kmeans_degenerate},
	{"kmeans: spherical centers are unit length", test_kmeans_spherical},
	{"kmeans: a small table's leaves stay balanced (min_partition_size 50)", test_kmeans_small_table_balanced},
	{"kmeans: re-seeding splits big clusters, so rows of any norm balance", test_kmeans_reseed_splits},
	{"kmeans: Hamerly's bounds and tiny runs give plain Lloyd's clustering", test_kmeans_hamerly_exact},
	{"kmeans: a large run's chunks give the same centers in any order", test_kmeans_chunked_parallel},
	{"kmeans: rows searched together find what each finds alone", test_nearest_rows},
	{NULL, NULL}
};
