/*-------------------------------------------------------------------------
 *
 * route.c
 *	  Routing: how near each leaf's centroid is to a query, which decides
 *	  the leaves a scan searches, and the int8 copies of the centroids
 *	  that quantize_centroids routes with.
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

/*
 * int8 copies of the centroids with one multiplier per dimension
 * (max |c_d| / 127), used for routing when quantize_centroids is set.
 */
void
scoreah_quantize_centroids(ScoreahModel model)
{
	int			dim = model->dim;

	for (int d = 0; d < dim; d++)
	{
		float		m = 0;

		for (int j = 0; j < model->nleaves; j++)
			m = Max(m, fabsf(model->centroids[(Size) j * dim + d]));
		model->qscales[d] = m > 0 ? m / 127.0f : 1.0f;
	}
	for (int j = 0; j < model->nleaves; j++)
		for (int d = 0; d < dim; d++)
		{
			float		v = rintf(model->centroids[(Size) j * dim + d] / model->qscales[d]);

			model->qcentroids[(Size) j * dim + d] = (int8) Max(-127, Min(127, v));
		}
}

/*
 * Routing score of every leaf for a query, smaller = nearer: squared L2
 * for L2 and cosine, negative inner product for inner product.  Cosine's
 * rows are unit vectors assigned to the leaf whose centroid is nearest in
 * L2, and k-means centroids are shorter than 1 by different amounts, so
 * the inner product alone would send a query past the leaf its own row
 * lies in (GloVe-100 331k, 30 of 576 leaves searched: recall@10 0.909 by
 * inner product, 0.939 by L2); with spherical centroids the two agree.
 * Inner product search routes by inner product, as ScaNN does: a leaf of
 * long rows can hold the best products however far its centroid is.
 *
 * L2 and cosine may add a share w of the leaf's spread (the mean squared
 * distance of its rows to its centroid, measured by the build on its
 * sample): of two leaves whose centroids are as near, the tighter one
 * often holds more rows near the query.  How often depends on the data:
 * simulated at recall@10 0.95, w = 0.5 took 7% fewer rows on GloVe-100
 * 331k head queries and 12% on uniform ones (9% and 23% fewer leaves),
 * as many on a SIFT sample and 5% more on mobilenet-1280; a whole spread
 * did worse everywhere.  So the build tries the weights below on its
 * calibration queries and keeps the one that needs the fewest rows
 * (calibrate.c, ScoreahCalibChooseSpread); w = 0 routes by distance alone.
 */
const float scoreah_spread_weights[SCOREAH_SPREAD_WEIGHTS] =
{0.0f, 0.125f, 0.25f, 0.375f, 0.5f, 0.75f};

/*
 * The query for int8 routing: x[d] * qscales[d] (the centroids' scale
 * folded in) rounded to integers of at most scoreah_i8_query_max(dim) in
 * magnitude, so the integer sums of dot_many_i8 cannot overflow; returns
 * the multiplier that turns those sums back into dot products, or 0 when
 * the query cannot be put so (all zeros, or values beyond float's range
 * once scaled), for which routing takes the float centroids.  16-bit
 * values (at least 10 bits even at 16,000 dimensions) leave the
 * centroids' own 8 bits the only rounding that matters.
 */
static float
QuantizeQuery(ScoreahModel model, const float *query, int16 *xq)
{
	int			dim = model->dim;
	int			qmax = scoreah_i8_query_max(dim);
	float		amax = 0;
	float		step;

	for (int d = 0; d < dim; d++)
		amax = Max(amax, fabsf(query[d] * model->qscales[d]));
	if (!(amax > 0) || isinf(amax))
		return 0;
	step = amax / (float) qmax;
	if (!(step > 0))
		return 0;
	for (int d = 0; d < dim; d++)
	{
		float		v = rintf(query[d] * model->qscales[d] / step);

		xq[d] = (int16) Max(-qmax, Min(qmax, v));
	}
	return step;
}

void
scoreah_route_scores(ScoreahModel model, const float *query, float *scores)
{
	int			dim = model->dim;
	float		qn = scoreah_dot(query, query, dim);
	int16	   *xq = NULL;
	float		step = 0;

	/*
	 * The portable kernel set routes by the float centroids, which every
	 * model keeps: its integer loop took 4x the float loop's time (1,000 x
	 * 768: 373 against 99 us, forced scalar on Zen 5), so on CPUs without
	 * AVX2 (aarch64 among them) int8 routing would only cost.
	 */
	if (model->quantizeCentroids && scoreah_int8_routing)
	{
		xq = scoreah_palloc(sizeof(int16) * dim);
		step = QuantizeQuery(model, query, xq);
	}

	/* all the dot products through the blocked kernel */
	if (step > 0)
		scoreah_dot_many_i8(xq, step, model->qcentroids, model->nleaves, dim, scores);
	else
		scoreah_dot_many(query, model->centroids, model->nleaves, dim, scores);

	/*
	 * Distances from the products in a loop per metric: one loop with the
	 * branches inside cost 21 instructions a leaf.  The spreads' share is
	 * added by the function the build's calibration adds it with.
	 */
	if (model->metric == SCOREAH_METRIC_L2 || model->metric == SCOREAH_METRIC_COSINE)
	{
		for (int j = 0; j < model->nleaves; j++)
			scores[j] = qn - 2 * scores[j] + model->centroidNorms[j];
		scoreah_route_add_spread(scores, model->leafSpread, model->spreadWeight, model->nleaves);
	}
	else
		for (int j = 0; j < model->nleaves; j++)
			scores[j] = -scores[j];
	if (xq)
		scoreah_pfree(xq);
}

/*
 * scores[j] += w * spread[j] for the n leaves (nothing without spreads or
 * weight): routing's share of the spreads, here for scans and for the
 * build's choice of w among candidates.
 */
void
scoreah_route_add_spread(float *scores, const float *spread, float w, int n)
{
	if (spread == NULL || w == 0)
		return;
	for (int j = 0; j < n; j++)
		scores[j] += w * spread[j];
}
