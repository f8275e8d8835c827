/*-------------------------------------------------------------------------
 *
 * kmeans.c
 *	  k-means clustering for the partition tree and the PQ codebooks, and
 *	  the deterministic random numbers the build uses.
 *
 * Lloyd iterations with squared L2, random or k-means++ initialisation,
 * ScaNN's re-seeding of undersized clusters, and an optional spherical
 * variant (unit-length centers).  Everything is deterministic for a given
 * seed so that the same table builds the same index.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"

#include "scoreah_algo.h"

/* ---- PRNG: splitmix64, small and good enough for sampling ---- */

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

/* ---- assignment ---- */

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
		for (int j = 0; j < n; j++)
		{
			float		v = cnorms[j0 + j] - 2 * dots[j];

			if (v < bestv)
			{
				bestv = v;
				best = j0 + j;
			}
		}
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

static void
normalize(float *v, int dim)
{
	double		s = 0;

	for (int i = 0; i < dim; i++)
		s += (double) v[i] * v[i];
	if (s > 0)
	{
		float		inv = (float) (1.0 / sqrt(s));

		for (int i = 0; i < dim; i++)
			v[i] *= inv;
	}
}

/* ---- initialisation ---- */

static void
init_random(const float *data, int n, int dim, int k, ScoreahRandom *rng,
			float *centers)
{
	int		   *idx = palloc(sizeof(int) * n);

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
	pfree(idx);
}

/*
 * k-means++: each new center is drawn with probability proportional to
 * the squared distance to the nearest center chosen so far.
 */
static void
init_kmeanspp(const float *data, int n, int dim, int k, ScoreahRandom *rng,
			  float *centers)
{
	float	   *mind = palloc(sizeof(float) * n);
	int			first = (int) scoreah_random_below(rng, n);

	memcpy(centers, data + (Size) first * dim, sizeof(float) * dim);
	for (int i = 0; i < n; i++)
		mind[i] = scoreah_l2sq(data + (Size) i * dim, centers, dim);

	for (int j = 1; j < k; j++)
	{
		double		total = 0,
					target,
					acc = 0;
		int			pick = n - 1;
		float	   *c = centers + (Size) j * dim;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < n; i++)
			total += mind[i];
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
		for (int i = 0; i < n; i++)
		{
			float		d = scoreah_l2sq(data + (Size) i * dim, c, dim);

			if (d < mind[i])
				mind[i] = d;
		}
	}
	pfree(mind);
}

/* ---- Lloyd iterations ---- */

/*
 * Nearest center for tiny dimensions (PQ blocks) with the centers stored
 * transposed (ct[d * k + j]): the loop over centers has no dependency
 * between iterations, so the compiler vectorizes it.
 */
static int
nearest_transposed16(const float *x, const float *ct, int dim)
{
	float		acc[16] = {0};
	int			best = 0;
	float		bestv = FLT_MAX;

	for (int d = 0; d < dim; d++)
	{
		const float *row = ct + d * 16;
		float		xd = x[d];

		for (int j = 0; j < 16; j++)
		{
			float		diff = xd - row[j];

			acc[j] += diff * diff;
		}
	}
	for (int j = 0; j < 16; j++)
		if (acc[j] < bestv)
		{
			bestv = acc[j];
			best = j;
		}
	return best;
}

static int
nearest_transposed(const float *x, const float *ct, int k, int dim, float *scratch)
{
	int			best = 0;
	float		bestv = FLT_MAX;

	if (k == 16)
		return nearest_transposed16(x, ct, dim);
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

int
scoreah_kmeans(const float *data, int n, int dim,
			   const ScoreahKmeansParams *params, float *centers)
{
	int			k = params->k;
	ScoreahRandom rng;
	int		   *assign;
	int		   *counts;
	double	   *sums;
	float	   *cnorms;
	int			nempty = 0;
	int			small;
	bool		hamerly;
	float	   *upper = NULL,
			   *lower = NULL,
			   *half = NULL,
			   *moved = NULL,
			   *old = NULL,
			   *dots = NULL;
	int		   *reseededList = NULL;
	float	   *ct = NULL,
			   *ctScratch = NULL;

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
				normalize(centers + (Size) j * dim, dim);
		return k - n;
	}

	scoreah_random_init(&rng, params->seed);
	if (params->randomInit)
		init_random(data, n, dim, k, &rng, centers);
	else
		init_kmeanspp(data, n, dim, k, &rng, centers);
	if (params->spherical)
		for (int j = 0; j < k; j++)
			normalize(centers + (Size) j * dim, dim);

	assign = palloc(sizeof(int) * n);
	counts = palloc(sizeof(int) * k);
	sums = palloc(sizeof(double) * k * dim);
	cnorms = palloc(sizeof(float) * k);
	for (int i = 0; i < n; i++)
		assign[i] = -1;

	/*
	 * Hamerly's bounds: an upper bound on each point's distance to its
	 * center and a lower bound on the distance to any other center let most
	 * points skip the search over all centers once clusters settle.  Not
	 * worth it for the tiny dimensions of PQ blocks.
	 */
	hamerly = dim > 4 && k > 1;
	if (hamerly)
	{
		upper = palloc(sizeof(float) * n);
		lower = palloc(sizeof(float) * n);
		half = palloc(sizeof(float) * k);
		moved = palloc(sizeof(float) * k);
		old = palloc(sizeof(float) * (Size) k * dim);
		dots = palloc(sizeof(float) * k);
		reseededList = palloc(sizeof(int) * k);
	}

	if (dim <= 4)
	{
		ct = palloc(sizeof(float) * k * dim);
		ctScratch = palloc(sizeof(float) * k);
	}

	/* ScaNN re-seeds clusters smaller than min(min_cluster_size, n / k) */
	small = Min(params->minClusterSize, n / k);

	for (int it = 0; it < params->iterations; it++)
	{
		int			changed = 0;
		int			reseeded = 0;
		int			nfull = 0;

		compute_norms(centers, k, dim, cnorms);
		if (ct)
			for (int j = 0; j < k; j++)
				for (int d = 0; d < dim; d++)
					ct[d * k + j] = centers[(Size) j * dim + d];
		memset(counts, 0, sizeof(int) * k);
		memset(sums, 0, sizeof(double) * k * dim);

		/* half the distance from each center to its nearest other center */
		if (hamerly && it > 0)
		{
			for (int j = 0; j < k; j++)
			{
				float		best = FLT_MAX;

				scoreah_dot_many(centers + (Size) j * dim, centers, k, dim, dots);
				for (int j2 = 0; j2 < k; j2++)
				{
					float		d2 = cnorms[j] + cnorms[j2] - 2 * dots[j2];

					if (j2 != j && d2 < best)
						best = d2;
				}
				half[j] = 0.5f * sqrtf(Max(best, 0.0f));
			}
		}

		for (int i = 0; i < n; i++)
		{
			const float *x = data + (Size) i * dim;
			int			c;
			double	   *s;

			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			if (hamerly && it > 0)
			{
				int			a = assign[i];
				float		m = Max(half[a], lower[i]);

				if (upper[i] > m)
				{
					upper[i] = sqrtf(scoreah_l2sq(x, centers + (Size) a * dim, dim));
					if (upper[i] > m)
					{
						assign_full(x, centers, cnorms, k, dim, dots, &c, &upper[i], &lower[i]);
						nfull++;
					}
					else
						c = a;
				}
				else
					c = a;
			}
			else if (hamerly)
				assign_full(x, centers, cnorms, k, dim, dots, &c, &upper[i], &lower[i]);
			else if (ct)
				c = nearest_transposed(x, ct, k, dim, ctScratch);
			else
				c = scoreah_nearest_l2(x, centers, cnorms, k, dim, NULL);

			if (c != assign[i])
			{
				changed++;
				assign[i] = c;
			}
			counts[c]++;
			s = sums + (Size) c * dim;
			for (int d = 0; d < dim; d++)
				s[d] += x[d];
		}

		if (hamerly)
			memcpy(old, centers, sizeof(float) * (Size) k * dim);

		/* new centers: means (spherical: normalized sums) */
		for (int j = 0; j < k; j++)
		{
			float	   *c = centers + (Size) j * dim;
			double	   *s = sums + (Size) j * dim;

			if (counts[j] == 0)
				continue;
			for (int d = 0; d < dim; d++)
				c[d] = (float) (s[d] / counts[j]);
			if (params->spherical)
				normalize(c, dim);
		}

		/*
		 * Re-seed undersized clusters at a random point of a cluster that is
		 * big enough, nudged off it so the two can separate.  The point's
		 * own cluster keeps its center; the next assignment splits it.
		 */
		for (int j = 0; j < k; j++)
		{
			if (counts[j] >= Max(small, 1))
				continue;
			for (int tries = 0; tries < 64; tries++)
			{
				int			p = (int) scoreah_random_below(&rng, n);
				int			owner = assign[p];

				if (counts[owner] > Max(small, 1) * 2)
				{
					const float *x = data + (Size) p * dim;
					const float *oc = centers + (Size) owner * dim;
					float	   *c = centers + (Size) j * dim;

					for (int d = 0; d < dim; d++)
						c[d] = x[d] + 0.01f * (x[d] - oc[d]);
					if (params->spherical)
						normalize(c, dim);
					counts[owner]--;
					counts[j]++;
					assign[p] = j;
					if (hamerly)
					{
						upper[p] = FLT_MAX; /* its bound was for the old center */
						reseededList[reseeded] = j;
					}
					reseeded++;
					break;
				}
			}
		}

		elog(DEBUG2, "scoreah k-means iteration %d: %d points changed cluster, %d clusters re-seeded, %d full searches",
			 it, changed, reseeded, nfull);
		if (changed == 0 && reseeded == 0)
			break;

		/*
		 * Bounds follow the centers' moves.  Re-seeded centers jump across
		 * the space; counting their jumps in the lower bounds would send every
		 * point back to a full search, so the lower bounds take the largest
		 * move among the other centers and the exact distance to the
		 * re-seeded ones instead.
		 */
		if (hamerly)
		{
			float		max1 = 0,
						max2 = 0;
			int			arg1 = -1;
			bool	   *isReseeded = (bool *) dots;	/* scratch, k bytes */

			memset(isReseeded, 0, sizeof(bool) * k);
			for (int r = 0; r < reseeded; r++)
				isReseeded[reseededList[r]] = true;
			for (int j = 0; j < k; j++)
			{
				moved[j] = sqrtf(scoreah_l2sq(old + (Size) j * dim, centers + (Size) j * dim, dim));
				if (isReseeded[j])
					continue;
				if (moved[j] > max1)
				{
					max2 = max1;
					max1 = moved[j];
					arg1 = j;
				}
				else if (moved[j] > max2)
					max2 = moved[j];
			}
			for (int i = 0; i < n; i++)
			{
				int			a = assign[i];

				if ((i & 1023) == 0)
					CHECK_FOR_INTERRUPTS();
				if (upper[i] < FLT_MAX)
					upper[i] += moved[a];
				lower[i] -= (a == arg1) ? max2 : max1;
				for (int r = 0; r < reseeded; r++)
				{
					int			j = reseededList[r];

					if (j != a)
					{
						float		d = sqrtf(scoreah_l2sq(data + (Size) i * dim,
														  centers + (Size) j * dim, dim));

						if (d < lower[i])
							lower[i] = d;
					}
				}
			}
		}
	}

	/* count clusters that no point chose in the last assignment */
	memset(counts, 0, sizeof(int) * k);
	for (int i = 0; i < n; i++)
		counts[assign[i]]++;
	for (int j = 0; j < k; j++)
		if (counts[j] == 0)
			nempty++;

	pfree(assign);
	pfree(counts);
	pfree(sums);
	pfree(cnorms);
	if (hamerly)
	{
		pfree(upper);
		pfree(lower);
		pfree(half);
		pfree(moved);
		pfree(old);
		pfree(dots);
		pfree(reseededList);
	}
	if (ct)
	{
		pfree(ct);
		pfree(ctScratch);
	}
	return nempty;
}
