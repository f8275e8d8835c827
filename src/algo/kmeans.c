/*-------------------------------------------------------------------------
 *
 * kmeans.c
 *	  k-means clustering for the partition tree and the PQ codebooks.
 *
 * Lloyd iterations with squared L2, random or k-means++ initialisation,
 * ScaNN's re-seeding of undersized clusters, and an optional spherical
 * variant (unit-length centers).  Everything is deterministic for a given
 * seed so that the same table builds the same index.
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

#ifdef SCOREAH_X86
#include <emmintrin.h>
#endif

/* ---- assignment ---- */

/*
 * The running nearest (*bestv, *best) updated with a run of n centers
 * from index base on: |c|^2 - 2<x, c> from their squared norms and dot
 * products.  Four lanes without a branch (the first of equal values
 * stays, as in a scan in order); the last n % 4 one by one.
 */
static inline void
nearest_in_run(const float *cnorms, const float *dots, int n, int base,
			   float *bestv, int *best)
{
	ScoreahV4f	bv = {*bestv, *bestv, *bestv, *bestv};
	ScoreahV4i	bj = {*best, *best, *best, *best};
	ScoreahV4i	lane = {0, 1, 2, 3};
	float		m;
	int			i;
	int			j = 0;

	for (; j + 4 <= n; j += 4)
	{
		ScoreahV4f	c,
					d;

		memcpy(&c, cnorms + j, sizeof(c));
		memcpy(&d, dots + j, sizeof(d));
		scoreah_v4_min_step(c - 2 * d, lane + (base + j), &bv, &bj);
	}
	i = scoreah_v4_argmin(bv, bj, &m);
	for (; j < n; j++)
	{
		float		v = cnorms[j] - 2 * dots[j];

		if (v < m)
		{
			m = v;
			i = base + j;
		}
	}
	*bestv = m;
	*best = i;
}

/*
 * Nearest center by squared L2, computed as |c|^2 - 2<x, c> (the |x|^2
 * term is the same for every center).  dist, if given, receives the
 * squared distance (clamped at 0 against rounding).
 */
int
scoreah_nearest_l2(const float *x, const float *centers, const float *cnorms,
				   int k, int dim, float *dist)
{
	int			best = 0;
	float		bestv = FLT_MAX;
	float		dots[64];

	/*
	 * Tiny dimensions (PQ blocks): a plain loop beats any call.  Otherwise
	 * dot products in chunks of 64 centers through the dispatched kernel.
	 */
	if (dim <= 4)
	{
		for (int j = 0; j < k; j++)
		{
			const float *c = centers + j * dim;
			float		v = 0;

			for (int d = 0; d < dim; d++)
			{
				float		diff = x[d] - c[d];

				v += diff * diff;
			}
			if (v < bestv)
			{
				bestv = v;
				best = j;
			}
		}
		if (dist)
			*dist = bestv;
		return best;
	}

	for (int j0 = 0; j0 < k; j0 += 64)
	{
		int			n = Min(64, k - j0);

		scoreah_dot_many(x, centers + (Size) j0 * dim, n, dim, dots);
		nearest_in_run(cnorms + j0, dots, n, j0, &bestv, &best);
	}
	if (dist)
	{
		float		d = bestv + scoreah_dot(x, x, dim);

		*dist = d > 0 ? d : 0;
	}
	return best;
}

static void
compute_norms(const float *centers, int k, int dim, float *cnorms)
{
	for (int j = 0; j < k; j++)
		cnorms[j] = scoreah_dot(centers + (Size) j * dim, centers + (Size) j * dim, dim);
}

/* ---- initialisation ---- */

static void
init_random(const float *data, int n, int dim, int k, ScoreahRandom *rng,
			float *centers)
{
	int		   *idx = scoreah_palloc(sizeof(int) * n);

	for (int i = 0; i < n; i++)
		idx[i] = i;
	/* partial Fisher-Yates: the first k entries are a uniform k-subset */
	for (int j = 0; j < k; j++)
	{
		int			r = j + (int) scoreah_random_below(rng, n - j);
		int			t = idx[j];

		idx[j] = idx[r];
		idx[r] = t;
		memcpy(centers + (Size) j * dim, data + (Size) idx[j] * dim, sizeof(float) * dim);
	}
	scoreah_pfree(idx);
}

static inline float
point_l2sq(const float *a, const float *b, int dim)
{
	/* tiny dimensions (PQ blocks) inline: a kernel call cost more than the sum */
	if (dim <= 4)
	{
		float		s = 0;

		for (int d = 0; d < dim; d++)
		{
			float		e = a[d] - b[d];

			s += e * e;
		}
		return s;
	}
	return scoreah_l2sq(a, b, dim);
}

/*
 * mind[i] = min(mind[i], |x_i - c|^2) over the n points (every mind[i]
 * at FLT_MAX: the distances); returns the sum of mind, in four partial
 * sums so that the additions do not wait for each other.  Always inlined
 * and called with tiny widths as constants (unrolled, no branch on which
 * distance is smaller: that one is random).
 */
static pg_attribute_always_inline double
kmeanspp_update_w(const float *data, int n, int dim, const float *c, float *mind)
{
	double		t0 = 0,
				t1 = 0,
				t2 = 0,
				t3 = 0;
	int			i = 0;

#define KPP_ONE(T, I) \
	do { \
		float		d_ = point_l2sq(data + (Size) (I) * dim, c, dim); \
		mind[I] = d_ < mind[I] ? d_ : mind[I]; \
		T += mind[I]; \
	} while (0)
	for (; i + 4 <= n; i += 4)
	{
		KPP_ONE(t0, i);
		KPP_ONE(t1, i + 1);
		KPP_ONE(t2, i + 2);
		KPP_ONE(t3, i + 3);
	}
	for (; i < n; i++)
		KPP_ONE(t0, i);
#undef KPP_ONE
	return (t0 + t1) + (t2 + t3);
}

static double
kmeanspp_update(const float *data, int n, int dim, const float *c, float *mind)
{
	switch (dim)
	{
		case 1:
			return kmeanspp_update_w(data, n, 1, c, mind);
		case 2:
			return kmeanspp_update_w(data, n, 2, c, mind);
		case 3:
			return kmeanspp_update_w(data, n, 3, c, mind);
		case 4:
			return kmeanspp_update_w(data, n, 4, c, mind);
		default:
			return kmeanspp_update_w(data, n, dim, c, mind);
	}
}

/*
 * k-means++: each new center is drawn with probability proportional to
 * the squared distance to the nearest center chosen so far.
 */
static void
init_kmeanspp(const float *data, int n, int dim, int k, ScoreahRandom *rng,
			  float *centers)
{
	float	   *mind = scoreah_palloc(sizeof(float) * n);
	int			first = (int) scoreah_random_below(rng, n);
	double		total;

	memcpy(centers, data + (Size) first * dim, sizeof(float) * dim);
	for (int i = 0; i < n; i++)
		mind[i] = FLT_MAX;
	total = kmeanspp_update(data, n, dim, centers, mind);

	for (int j = 1; j < k; j++)
	{
		double		target,
					acc = 0;
		int			pick = n - 1;
		float	   *c = centers + (Size) j * dim;

		SCOREAH_CHECK_INTERRUPTS();
		if (total <= 0)
			pick = (int) scoreah_random_below(rng, n);	/* all points covered */
		else
		{
			target = scoreah_random_double(rng) * total;
			for (int i = 0; i < n; i++)
			{
				acc += mind[i];
				if (acc > target)
				{
					pick = i;
					break;
				}
			}
		}
		memcpy(c, data + (Size) pick * dim, sizeof(float) * dim);
		total = kmeanspp_update(data, n, dim, c, mind);
	}
	scoreah_pfree(mind);
}

/* ---- Lloyd iterations ---- */

/*
 * Nearest center for tiny dimensions (PQ blocks) with the centers stored
 * transposed (ct[d * k + j]): the loop over centers has no dependency
 * between iterations, so the compiler vectorizes it.  For a codebook's 16
 * centers the sums and the choice run in four lanes of four, without a
 * branch; encoding without the anisotropic loss takes the same search
 * (pq.c).
 */
int
scoreah_nearest16_transposed(const float *x, const float *ct, int dim)
{
	ScoreahV4f	a0 = {0, 0, 0, 0},
				a1 = a0,
				a2 = a0,
				a3 = a0;
	ScoreahV4f	best = {FLT_MAX, FLT_MAX, FLT_MAX, FLT_MAX};
	ScoreahV4i	bestj = {0, 0, 0, 0};
	ScoreahV4i	lane = {0, 1, 2, 3};
	float		v;

	for (int d = 0; d < dim; d++)
	{
		const float *row = ct + d * 16;
		float		xd = x[d];
		ScoreahV4f	r,
					diff;

		memcpy(&r, row, sizeof(r));
		diff = xd - r;
		a0 += diff * diff;
		memcpy(&r, row + 4, sizeof(r));
		diff = xd - r;
		a1 += diff * diff;
		memcpy(&r, row + 8, sizeof(r));
		diff = xd - r;
		a2 += diff * diff;
		memcpy(&r, row + 12, sizeof(r));
		diff = xd - r;
		a3 += diff * diff;
	}
#ifdef SCOREAH_X86
	{
		/*
		 * SSE2: the least of the 16 into every lane, then a bit per center
		 * that holds it, and the lowest such bit: the same choice (the
		 * lowest center among equals) in half the instructions of the
		 * lane-by-lane steps below, about half of a PQ block's training.
		 */
		__m128		m0 = (__m128) a0,
					m1 = (__m128) a1,
					m2 = (__m128) a2,
					m3 = (__m128) a3;
		__m128		m = _mm_min_ps(_mm_min_ps(m0, m1), _mm_min_ps(m2, m3));
		int			bits;

		m = _mm_min_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
		m = _mm_min_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
		bits = _mm_movemask_ps(_mm_cmpeq_ps(m0, m)) |
			(_mm_movemask_ps(_mm_cmpeq_ps(m1, m)) << 4) |
			(_mm_movemask_ps(_mm_cmpeq_ps(m2, m)) << 8) |
			(_mm_movemask_ps(_mm_cmpeq_ps(m3, m)) << 12);
		if (bits != 0)
			return __builtin_ctz(bits);
		/* a NaN among them (not from finite rows): the steps below skip it */
	}
#endif
	scoreah_v4_min_step(a0, lane, &best, &bestj);
	scoreah_v4_min_step(a1, lane + 4, &best, &bestj);
	scoreah_v4_min_step(a2, lane + 8, &best, &bestj);
	scoreah_v4_min_step(a3, lane + 12, &best, &bestj);
	return scoreah_v4_argmin(best, bestj, &v);
}

static int
nearest_transposed(const float *x, const float *ct, int k, int dim, float *scratch)
{
	int			best = 0;
	float		bestv = FLT_MAX;

	if (k == 16)
		return scoreah_nearest16_transposed(x, ct, dim);
	for (int j = 0; j < k; j++)
		scratch[j] = 0;
	for (int d = 0; d < dim; d++)
	{
		const float *row = ct + d * k;
		float		xd = x[d];

		for (int j = 0; j < k; j++)
		{
			float		diff = xd - row[j];

			scratch[j] += diff * diff;
		}
	}
	for (int j = 0; j < k; j++)
		if (scratch[j] < bestv)
		{
			bestv = scratch[j];
			best = j;
		}
	return best;
}

/*
 * scoreah_nearest_l2 for n rows of x (one after another) into nearest[]
 * (and dist[] if given): the same answers to the bit (the cross kernel
 * rounds as the one-row kernel does), but a few rows at a time, reading
 * each center once for several rows: one row's search is bound by
 * reading the centers when they do not fit in L1 (GloVe's tree: 1.5 us a
 * row against 2.6).
 */
#define NEAREST_ROWS	6
#define NEAREST_CENTERS	64

void
scoreah_nearest_l2_rows(const float *x, int n, const float *centers, const float *cnorms,
						int k, int dim, int *nearest, float *dist)
{
	float		dots[NEAREST_ROWS * NEAREST_CENTERS];

	if (dim <= 4)
	{
		for (int i = 0; i < n; i++)
			nearest[i] = scoreah_nearest_l2(x + (Size) i * dim, centers, cnorms, k, dim,
											dist ? &dist[i] : NULL);
		return;
	}
	for (int i0 = 0; i0 < n; i0 += NEAREST_ROWS)
	{
		int			nr = Min(NEAREST_ROWS, n - i0);
		float		bestv[NEAREST_ROWS];

		for (int r = 0; r < nr; r++)
		{
			bestv[r] = FLT_MAX;
			nearest[i0 + r] = 0;
		}
		/* centers in runs that stay in L1 while the rows pass over them */
		for (int j0 = 0; j0 < k; j0 += NEAREST_CENTERS)
		{
			int			nc = Min(NEAREST_CENTERS, k - j0);

			scoreah_dot_cross(x + (Size) i0 * dim, nr, centers + (Size) j0 * dim, nc, dim, dots);
			for (int r = 0; r < nr; r++)
				nearest_in_run(cnorms + j0, dots + r * nc, nc, j0, &bestv[r], &nearest[i0 + r]);
		}
		for (int r = 0; dist && r < nr; r++)
		{
			const float *xr = x + (Size) (i0 + r) * dim;
			float		d = bestv[r] + scoreah_dot(xr, xr, dim);

			dist[i0 + r] = d > 0 ? d : 0;
		}
	}
}

/*
 * Search all centers for x: nearest (c) and the distances to the nearest
 * and second nearest (true distances, not squared).
 */
static void
assign_full(const float *x, const float *centers, const float *cnorms, int k,
			int dim, float *dots, int *c, float *d1, float *d2)
{
	float		xn = scoreah_dot(x, x, dim);
	float		b1 = FLT_MAX,
				b2 = FLT_MAX;
	int			best = 0;

	scoreah_dot_many(x, centers, k, dim, dots);
	for (int j = 0; j < k; j++)
	{
		float		v = xn + cnorms[j] - 2 * dots[j];

		if (v < b1)
		{
			b2 = b1;
			b1 = v;
			best = j;
		}
		else if (v < b2)
			b2 = v;
	}
	*c = best;
	*d1 = sqrtf(Max(b1, 0.0f));
	*d2 = sqrtf(Max(b2, 0.0f));
}

/*
 * Tiny runs take a full search of centers stored transposed, without
 * Hamerly's bounds: up to 4 dimensions, and a codebook's 16 centers up to
 * 16 (the PQ blocks AUTO chooses above 976 dimensions are 3 to 9 wide):
 * with 16 centers a full search costs about what the bounds' one distance
 * through a kernel call does.
 */
#define KMEANS_TINY(k, dim)	((dim) <= 4 || ((k) <= 16 && (dim) <= 16))

/* sets of partial sums the tiny assignment spreads its points over */
#define KMEANS_LANES	4

/*
 * The working state of one k-means run.  Hamerly's bounds (runs that
 * are not tiny) keep an upper bound on each point's distance to its center and
 * a lower bound on the distance to any other center, which let most
 * points skip the search over all centers once clusters settle; they are
 * not worth it for the tiny dimensions of PQ blocks, which search centers
 * stored transposed instead.
 */
typedef struct KmeansState
{
	const float *data;
	int			n;
	int			dim;
	int			k;
	const ScoreahKmeansParams *params;
	float	   *centers;
	ScoreahRandom rng;
	int			small;			/* clusters below this are re-seeded */
	int		   *assign;			/* point -> cluster, -1 before the first */
	int		   *counts;
	double	   *sums;			/* k x dim */
	float	   *cnorms;
	/* Hamerly */
	bool		hamerly;
	float	   *upper;
	float	   *lower;
	float	   *half;			/* half the distance to the nearest other
								 * center */
	float	   *moved;			/* how far each center moved */
	float	   *old;			/* centers before the update */
	float	   *dots;			/* k scratch floats */
	int		   *reseededList;
	/* tiny dimensions */
	float	   *ct;				/* centers transposed, dim x k */
	float	   *ctScratch;
	double	   *ctSums;			/* KMEANS_LANES x k x dim partial sums */
	int		   *ctCounts;		/* KMEANS_LANES x k */
	/* large runs: full search in chunks */
	bool		chunked;
	double	   *chunkSums;		/* one chunk's sums, k x dim */
} KmeansState;

static void
kmeans_alloc(KmeansState *s)
{
	int			n = s->n,
				k = s->k,
				dim = s->dim;

	s->assign = scoreah_palloc(sizeof(int) * n);
	s->counts = scoreah_palloc(sizeof(int) * k);
	s->sums = scoreah_palloc(sizeof(double) * k * dim);
	s->cnorms = scoreah_palloc(sizeof(float) * k);
	for (int i = 0; i < n; i++)
		s->assign[i] = -1;
	s->chunked = scoreah_kmeans_full_search(k, dim);
	if (s->chunked && !s->params->assignFn)
		s->chunkSums = scoreah_palloc(sizeof(double) * k * dim);
	s->hamerly = !KMEANS_TINY(k, dim) && k > 1 && !s->chunked;
	if (s->hamerly)
	{
		s->upper = scoreah_palloc(sizeof(float) * n);
		s->lower = scoreah_palloc(sizeof(float) * n);
		s->half = scoreah_palloc(sizeof(float) * k);
		s->moved = scoreah_palloc(sizeof(float) * k);
		s->old = scoreah_palloc(sizeof(float) * (Size) k * dim);
		s->dots = scoreah_palloc(sizeof(float) * k);
		s->reseededList = scoreah_palloc(sizeof(int) * k);
	}
	if (KMEANS_TINY(k, dim))
	{
		s->ct = scoreah_palloc(sizeof(float) * k * dim);
		s->ctScratch = scoreah_palloc(sizeof(float) * k);
		s->ctSums = scoreah_palloc(sizeof(double) * KMEANS_LANES * k * dim);
		s->ctCounts = scoreah_palloc(sizeof(int) * KMEANS_LANES * k);
	}
}

static void
kmeans_free(KmeansState *s)
{
	scoreah_pfree(s->assign);
	scoreah_pfree(s->counts);
	scoreah_pfree(s->sums);
	scoreah_pfree(s->cnorms);
	if (s->hamerly)
	{
		scoreah_pfree(s->upper);
		scoreah_pfree(s->lower);
		scoreah_pfree(s->half);
		scoreah_pfree(s->moved);
		scoreah_pfree(s->old);
		scoreah_pfree(s->dots);
		scoreah_pfree(s->reseededList);
	}
	if (s->ct)
	{
		scoreah_pfree(s->ct);
		scoreah_pfree(s->ctScratch);
		scoreah_pfree(s->ctSums);
		scoreah_pfree(s->ctCounts);
	}
	if (s->chunkSums)
		scoreah_pfree(s->chunkSums);
}

/* Half the distance from each center to its nearest other center */
static void
kmeans_half_distances(KmeansState *s)
{
	int			k = s->k,
				dim = s->dim;

	for (int j = 0; j < k; j++)
	{
		float		best = FLT_MAX;

		scoreah_dot_many(s->centers + (Size) j * dim, s->centers, k, dim, s->dots);
		for (int j2 = 0; j2 < k; j2++)
		{
			float		d2 = s->cnorms[j] + s->cnorms[j2] - 2 * s->dots[j2];

			if (j2 != j && d2 < best)
				best = d2;
		}
		s->half[j] = 0.5f * sqrtf(Max(best, 0.0f));
	}
}

/* ---- full search in chunks (large runs, and parallel workers) ---- */

void
scoreah_kmeans_chunk(int n, int c, int *lo, int *hi)
{
	*lo = (int) ((int64) n * c / SCOREAH_KMEANS_CHUNKS);
	*hi = (int) ((int64) n * (c + 1) / SCOREAH_KMEANS_CHUNKS);
}

int
scoreah_kmeans_assign_range(const float *data, int dim, const float *centers,
							const float *cnorms, int k, int lo, int hi,
							int *assign, double *sums, int *counts)
{
	int			changed = 0;
	int			nearest[256];

	for (int i0 = lo; i0 < hi; i0 += lengthof(nearest))
	{
		int			n = Min((int) lengthof(nearest), hi - i0);

		SCOREAH_CHECK_INTERRUPTS();
		scoreah_nearest_l2_rows(data + (Size) i0 * dim, n, centers, cnorms, k, dim, nearest, NULL);
		for (int i = i0; i < i0 + n; i++)
		{
			const float *x = data + (Size) i * dim;
			int			c = nearest[i - i0];
			double	   *sum;

			if (c != assign[i])
			{
				changed++;
				assign[i] = c;
			}
			counts[c]++;
			sum = sums + (Size) c * dim;
			for (int d = 0; d < dim; d++)
				sum[d] += x[d];
		}
	}
	return changed;
}

/*
 * The assignment of a large run in this process: chunk after chunk, each
 * into its own sums, added to the totals in chunk order (as a parallel
 * run adds its workers' chunks).
 */
static int
kmeans_assign_chunks(KmeansState *s)
{
	int			changed = 0;
	Size		nsum = (Size) s->k * s->dim;

	for (int c = 0; c < SCOREAH_KMEANS_CHUNKS; c++)
	{
		int			lo,
					hi;

		scoreah_kmeans_chunk(s->n, c, &lo, &hi);
		memset(s->chunkSums, 0, sizeof(double) * nsum);
		changed += scoreah_kmeans_assign_range(s->data, s->dim, s->centers, s->cnorms, s->k,
											   lo, hi, s->assign, s->chunkSums, s->counts);
		for (Size i = 0; i < nsum; i++)
			s->sums[i] += s->chunkSums[i];
	}
	return changed;
}

/*
 * The assignment of a tiny run (KMEANS_TINY: the centers transposed, no
 * Hamerly bounds).  A point's coordinates go into one of
 * KMEANS_LANES sets of sums, by its number, and the sets are added at the
 * end: with one set, every point of a cluster waited for the previous
 * one's addition to reach memory, and in blocks where most rows are the
 * same (MNIST's blank borders) nearly all of them are one cluster's.
 */
static int
kmeans_assign_tiny(KmeansState *s)
{
	int			k = s->k,
				dim = s->dim;
	int			changed = 0;

	memset(s->ctSums, 0, sizeof(double) * KMEANS_LANES * k * dim);
	memset(s->ctCounts, 0, sizeof(int) * KMEANS_LANES * k);
	for (int i = 0; i < s->n; i++)
	{
		const float *x = s->data + (Size) i * dim;
		int			lane = i & (KMEANS_LANES - 1);
		int			c;
		double	   *sum;

		if ((i & 1023) == 0)
			SCOREAH_CHECK_INTERRUPTS();
		c = nearest_transposed(x, s->ct, k, dim, s->ctScratch);
		changed += c != s->assign[i];
		s->assign[i] = c;
		s->ctCounts[lane * k + c]++;
		sum = s->ctSums + ((Size) lane * k + c) * dim;
		for (int d = 0; d < dim; d++)
			sum[d] += x[d];
	}
	for (int j = 0; j < k; j++)
	{
		for (int lane = 0; lane < KMEANS_LANES; lane++)
			s->counts[j] += s->ctCounts[lane * k + j];
		for (int d = 0; d < dim; d++)
		{
			double		t = 0;

			for (int lane = 0; lane < KMEANS_LANES; lane++)
				t += s->ctSums[((Size) lane * k + j) * dim + d];
			s->sums[(Size) j * dim + d] += t;
		}
	}
	return changed;
}

/*
 * Assign every point to its nearest center and add it to that center's
 * sum.  Returns how many points changed cluster; *nfull counts the points
 * whose bounds did not spare them the search over all centers.
 */
static int
kmeans_assign(KmeansState *s, int it, int *nfull)
{
	int			k = s->k,
				dim = s->dim;
	int			changed = 0;

	*nfull = 0;
	if (s->ct)
		return kmeans_assign_tiny(s);
	for (int i = 0; i < s->n; i++)
	{
		const float *x = s->data + (Size) i * dim;
		int			c;
		double	   *sum;

		if ((i & 1023) == 0)
			SCOREAH_CHECK_INTERRUPTS();
		if (s->hamerly && it > 0)
		{
			int			a = s->assign[i];
			float		m = Max(s->half[a], s->lower[i]);

			c = a;
			if (s->upper[i] > m)
			{
				s->upper[i] = sqrtf(scoreah_l2sq(x, s->centers + (Size) a * dim, dim));
				if (s->upper[i] > m)
				{
					assign_full(x, s->centers, s->cnorms, k, dim, s->dots, &c,
								&s->upper[i], &s->lower[i]);
					(*nfull)++;
				}
			}
		}
		else if (s->hamerly)
			assign_full(x, s->centers, s->cnorms, k, dim, s->dots, &c,
						&s->upper[i], &s->lower[i]);
		else
			c = scoreah_nearest_l2(x, s->centers, s->cnorms, k, dim, NULL);

		if (c != s->assign[i])
		{
			changed++;
			s->assign[i] = c;
		}
		s->counts[c]++;
		sum = s->sums + (Size) c * dim;
		for (int d = 0; d < dim; d++)
			sum[d] += x[d];
	}
	return changed;
}

/* New centers: the means of their points (spherical: normalized sums) */
static void
kmeans_update_centers(KmeansState *s)
{
	int			dim = s->dim;

	for (int j = 0; j < s->k; j++)
	{
		float	   *c = s->centers + (Size) j * dim;
		double	   *sum = s->sums + (Size) j * dim;

		if (s->counts[j] == 0)
			continue;
		for (int d = 0; d < dim; d++)
			c[d] = (float) (sum[d] / s->counts[j]);
		if (s->params->spherical)
			scoreah_normalize(c, dim, c);
	}
}

/* A split moves the two centers this far apart, in units of c to the point */
#define SCOREAH_SPLIT_STEP	0.1f

/*
 * Re-seed undersized clusters by splitting a cluster that is big enough:
 * a random point picks it (bigger clusters more often), and its center c
 * and the new one go to c + e and c - e for e a small step from c toward
 * the point, so that the next assignment cuts the cluster through c, about
 * half to each.  A new center put beside the point itself, as before,
 * took in little more than the point: in 100 dimensions the cluster's
 * other points lie about as far from c in every direction, and few reach
 * past the half-way plane (GloVe 331k under L2: 312 of 576 clusters
 * re-seeded in every iteration and as many leaves of a few rows at the
 * end).  A cluster is split once an iteration.  Returns how many clusters
 * were re-seeded (listed in reseededList with Hamerly).
 */
static int
kmeans_reseed(KmeansState *s)
{
	int			dim = s->dim;
	int			reseeded = 0;
	int			small = Max(s->small, 1);
	bool	   *split = NULL;

	for (int j = 0; j < s->k; j++)
	{
		if (s->counts[j] >= small)
			continue;
		if (split == NULL)
			split = scoreah_palloc0(sizeof(bool) * s->k);
		for (int tries = 0; tries < 64; tries++)
		{
			int			p = (int) scoreah_random_below(&s->rng, s->n);
			int			owner = s->assign[p];

			if (s->counts[owner] > small * 2 && !split[owner])
			{
				const float *x = s->data + (Size) p * dim;
				float	   *oc = s->centers + (Size) owner * dim;
				float	   *c = s->centers + (Size) j * dim;

				for (int d = 0; d < dim; d++)
				{
					float		e = SCOREAH_SPLIT_STEP * (x[d] - oc[d]);

					c[d] = oc[d] + e;
					oc[d] -= e;
				}
				if (s->params->spherical)
				{
					scoreah_normalize(c, dim, c);
					scoreah_normalize(oc, dim, oc);
				}
				split[owner] = true;
				split[j] = true;
				s->counts[owner]--;
				s->counts[j]++;
				s->assign[p] = j;
				if (s->hamerly)
				{
					s->upper[p] = FLT_MAX;	/* its bound was for the old center */
					s->reseededList[reseeded] = j;
				}
				reseeded++;
				break;
			}
		}
	}
	if (split)
		scoreah_pfree(split);
	return reseeded;
}

/*
 * Bounds follow the centers' moves.  Re-seeded centers jump across the
 * space; counting their jumps in the lower bounds would send every point
 * back to a full search, so the lower bounds take the largest move among
 * the other centers and the exact distance to the re-seeded ones instead.
 */
static void
kmeans_update_bounds(KmeansState *s, int reseeded)
{
	int			k = s->k,
				dim = s->dim;
	float		max1 = 0,
				max2 = 0;
	int			arg1 = -1;
	bool	   *isReseeded = (bool *) s->dots; /* scratch, k bytes */

	memset(isReseeded, 0, sizeof(bool) * k);
	for (int r = 0; r < reseeded; r++)
		isReseeded[s->reseededList[r]] = true;
	for (int j = 0; j < k; j++)
	{
		s->moved[j] = sqrtf(scoreah_l2sq(s->old + (Size) j * dim,
										 s->centers + (Size) j * dim, dim));
		if (isReseeded[j])
			continue;
		if (s->moved[j] > max1)
		{
			max2 = max1;
			max1 = s->moved[j];
			arg1 = j;
		}
		else if (s->moved[j] > max2)
			max2 = s->moved[j];
	}
	for (int i = 0; i < s->n; i++)
	{
		int			a = s->assign[i];

		if ((i & 1023) == 0)
			SCOREAH_CHECK_INTERRUPTS();
		if (s->upper[i] < FLT_MAX)
			s->upper[i] += s->moved[a];
		s->lower[i] -= (a == arg1) ? max2 : max1;
		for (int r = 0; r < reseeded; r++)
		{
			int			j = s->reseededList[r];

			if (j != a)
			{
				float		d = sqrtf(scoreah_l2sq(s->data + (Size) i * dim,
												  s->centers + (Size) j * dim, dim));

				if (d < s->lower[i])
					s->lower[i] = d;
			}
		}
	}
}

int
scoreah_kmeans(const float *data, int n, int dim,
			   const ScoreahKmeansParams *params, float *centers)
{
	KmeansState s;
	int			k = params->k;
	int			nempty = 0;

	if (n <= 0)
	{
		memset(centers, 0, sizeof(float) * k * dim);
		return k;
	}
	if (n <= k)
	{
		/* every point is a center; repeat points to fill the rest */
		for (int j = 0; j < k; j++)
			memcpy(centers + (Size) j * dim, data + (Size) (j % n) * dim, sizeof(float) * dim);
		if (params->spherical)
			for (int j = 0; j < k; j++)
				scoreah_normalize(centers + (Size) j * dim, dim, centers + (Size) j * dim);
		return k - n;
	}

	memset(&s, 0, sizeof(s));
	s.data = data;
	s.n = n;
	s.dim = dim;
	s.k = k;
	s.params = params;
	s.centers = centers;
	scoreah_random_init(&s.rng, params->seed);
	if (params->randomInit)
		init_random(data, n, dim, k, &s.rng, centers);
	else
		init_kmeanspp(data, n, dim, k, &s.rng, centers);
	if (params->spherical)
		for (int j = 0; j < k; j++)
			scoreah_normalize(centers + (Size) j * dim, dim, centers + (Size) j * dim);
	kmeans_alloc(&s);

	/*
	 * Re-seed clusters smaller than min_cluster_size and than half the
	 * mean cluster (n / k).  ScaNN's bound, min(min_cluster_size, n / k),
	 * is the mean itself wherever the mean is below min_cluster_size (at
	 * the default 50 and about sqrt(rows) leaves: tables under 2,500
	 * rows): about half the clusters are "small" in every iteration, get
	 * moved, and end as leaves of one or two rows beside a few huge ones
	 * (778 MiniLM text embeddings, 26 leaves: median leaf 2 rows, largest
	 * 144; GloVe's first 2,000 rows, 45 leaves: median 5, largest 181).
	 * Half the mean is ScaNN's bound wherever the mean is 100 sample rows
	 * or more (GloVe 331k, 173), and re-seeding up to about half the mean
	 * helps large trees: SIFT 1.16M (1,076 leaves, mean 93) lost recall
	 * with a third (31 rows: 0.928 against 0.932 at 16 leaves) and gained
	 * with half (46: 0.943).  Empty clusters are always re-seeded
	 * (kmeans_reseed's floor of 1).
	 */
	s.small = Min(params->minClusterSize, n / (2 * k));

	for (int it = 0; it < params->iterations; it++)
	{
		int			changed,
					reseeded,
					nfull;

		compute_norms(centers, k, dim, s.cnorms);
		if (s.ct)
			for (int j = 0; j < k; j++)
				for (int d = 0; d < dim; d++)
					s.ct[d * k + j] = centers[(Size) j * dim + d];
		memset(s.counts, 0, sizeof(int) * k);
		memset(s.sums, 0, sizeof(double) * k * dim);
		if (s.hamerly && it > 0)
			kmeans_half_distances(&s);

		if (s.chunked && params->assignFn)
		{
			nfull = n;
			changed = params->assignFn(params->assignArg, centers, s.cnorms, s.assign,
									   s.sums, s.counts);
		}
		else if (s.chunked)
		{
			nfull = n;
			changed = kmeans_assign_chunks(&s);
		}
		else
			changed = kmeans_assign(&s, it, &nfull);
		nempty = 0;
		for (int j = 0; j < k; j++)
			nempty += s.counts[j] == 0;
		if (s.hamerly)
			memcpy(s.old, centers, sizeof(float) * (Size) k * dim);
		kmeans_update_centers(&s);
		reseeded = kmeans_reseed(&s);

		scoreah_debug("scoreah k-means iteration %d: %d points changed cluster, %d clusters re-seeded, %d full searches",
					  it, changed, reseeded, nfull);
		if (changed == 0 && reseeded == 0)
			break;
		if (s.hamerly)
			kmeans_update_bounds(&s, reseeded);
	}

	/* nempty: the clusters no point chose in the last assignment */
	kmeans_free(&s);
	return nempty;
}
