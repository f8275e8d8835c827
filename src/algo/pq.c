/*-------------------------------------------------------------------------
 *
 * pq.c
 *	  Product quantization as ScaNN's asymmetric hashing does it: 16-center
 *	  codebooks per block of dimensions, and anisotropic (score-aware)
 *	  encoding by coordinate descent over blocks.
 *
 * Codebooks are trained with plain (isotropic) k-means per block, on
 * residuals x - c_leaf; the anisotropic loss enters at encoding time, as
 * in ScaNN since 2021 (reference section 2.5).
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

/* ---- codebook training ---- */

/*
 * Train the 16 centers of one block (dimensions start..start+w-1) on n
 * sample residuals (n x dim) into codebook (16 x w).  sub is scratch for
 * n x w floats.  Each block depends only on its data and seed, so the
 * blocks may be trained in any order by any process (build_parallel.c).
 */
void
scoreah_pq_train_block(const float *samples, int n, int dim, int start, int w,
					   int iterations, uint64 seed, float *sub, float *codebook)
{
	ScoreahKmeansParams params;

	SCOREAH_CHECK_INTERRUPTS();

	/* a block is a few floats a row: copied in place (memcpy was a call a row) */
	for (int i = 0; i < n; i++)
	{
		const float *from = samples + (Size) i * dim + start;
		float	   *to = sub + (Size) i * w;

		for (int d = 0; d < w; d++)
			to[d] = from[d];
	}

	params.k = SCOREAH_CENTERS;
	params.iterations = iterations;
	params.minClusterSize = 1;
	params.spherical = false;
	params.randomInit = false;	/* k-means++: 16 centers, cheap */
	params.seed = seed;
	params.assignFn = NULL;
	params.assignArg = NULL;
	scoreah_kmeans(sub, n, w, &params, codebook);
}

/*
 * Train the codebooks of every block on n sample residuals (n x dim).
 */
void
scoreah_pq_train(ScoreahModel model, const float *samples, int n,
				 int iterations, uint64 seed)
{
	float	   *sub = scoreah_palloc(sizeof(float) * (Size) Max(n, 1) * model->dpb);

	for (int b = 0; b < model->nblocks; b++)
		scoreah_pq_train_block(samples, n, model->dim, b * model->dpb, ScoreahBlockWidth(model, b),
							   iterations, seed + b, sub, ScoreahCodebook(model, b));
	scoreah_pfree(sub);
}

/* ---- encoding ---- */

/*
 * ScaNN's parallel cost multiplier eta = h_par / h_perp for a datapoint of
 * squared norm sqnorm in dim dimensions: (d - 1) t^2 / (1 - t^2), with
 * t = T / |x|.  For |x| <= T the formula has no meaning (no unit query can
 * reach the threshold); t^2 is capped at 0.99 so such rows still get a
 * finite, strongly parallel-weighted loss.
 */
double
scoreah_parallel_cost_multiplier(double threshold, double sqnorm, int dim)
{
	double		t2;

	if (sqnorm <= 0)
		return 1.0;
	t2 = threshold * threshold / sqnorm;
	if (t2 > 0.99)
		t2 = 0.99;
	return (dim - 1) * t2 / (1 - t2);
}

/*
 * One step of the coordinate descent: the center j of a block that most
 * lowers the loss, by eta * dP2 + (e_j - e_cur) - dP2, among those that
 * do not grow P^2 (dP2 <= 0); cur when none lowers it.  rest is P without
 * the block's current share.  Ties go to the lower center, as a scan in
 * order finds them.  No branch on the data (scoreah_v4_min_step): with
 * branches the encoding took more than twice as long.
 */
static inline int
cd_step(const float *pb, const float *eb, float rest, float P2, float ecur,
		float eta, int cur)
{
	ScoreahV4f	best = {0, 0, 0, 0};
	ScoreahV4i	bestj = {0, 0, 0, 0};
	ScoreahV4i	lane = {0, 1, 2, 3};
	float		v;
	int			j;

	for (int q = 0; q < SCOREAH_CENTERS / 4; q++)
	{
		ScoreahV4f	p,
					e,
					Pn,
					dP2,
					d;

		memcpy(&p, pb + 4 * q, sizeof(p));
		memcpy(&e, eb + 4 * q, sizeof(e));
		Pn = rest + p;
		dP2 = Pn * Pn - P2;
		d = eta * dP2 + ((e - ecur) - dP2);
		/* growing P^2: delta 0, which never wins (only d < 0 does) */
		d = (ScoreahV4f) ((ScoreahV4i) d & (dP2 <= 0));
		scoreah_v4_min_step(d, lane + 4 * q, &best, &bestj);
	}
	j = scoreah_v4_argmin(best, bestj, &v);
	return v < 0 ? j : cur;
}

/*
 * Encode one vector: codes[b] = a center index for every block.
 *
 * residual is what is quantized (x - c_leaf, or x), original the datapoint
 * itself (its direction defines "parallel").  Without a threshold (NaN)
 * each block takes its nearest center.  With one, coordinate descent over
 * blocks minimizes eta * |r_par|^2 + |r_perp|^2, the score-aware loss,
 * starting from the nearest centers (reference 2.5).
 */
void
scoreah_pq_encode(ScoreahModel model, const float *residual,
				  const float *original, double threshold, uint8 *codes)
{
	int			nb = model->nblocks;
	int			dim = model->dim;
	bool		aniso = !isnan(threshold);
	float	   *energy;
	float	   *par;
	const float *codebooksT;
	float	   *ownT = NULL;
	int		   *order;
	float	   *keys;
	double		sqnorm = 0;
	float		invnorm = 0,
				eta = 0,
				P = 0;

	if (aniso)
	{
		sqnorm = scoreah_exact_dot(original, original, dim);
		if (sqnorm <= 0)
			aniso = false;		/* no direction: plain nearest centers */
		else
		{
			invnorm = (float) (1.0 / sqrt(sqnorm));
			eta = (float) scoreah_parallel_cost_multiplier(threshold, sqnorm, dim);
		}
	}

	/*
	 * The codebooks dimension by dimension: the model's transposed copy
	 * (the build's and the model cache's have one), or one made here.
	 */
	if (model->codebooksT)
		codebooksT = model->codebooksT;
	else
	{
		ownT = scoreah_palloc(sizeof(float) * SCOREAH_CENTERS * dim);
		scoreah_transpose_codebooks(model, ownT);
		codebooksT = ownT;
	}

	if (!aniso)
	{
		/* plain nearest centers (L2, or no threshold) */
		for (int b = 0; b < nb; b++)
			codes[b] = (uint8) scoreah_nearest16_transposed(residual + b * model->dpb,
															codebooksT + (Size) SCOREAH_CENTERS * b * model->dpb,
															ScoreahBlockWidth(model, b));
		if (ownT)
			scoreah_pfree(ownT);
		return;
	}

	/*
	 * Per block and center: the residual energy |r_b - C_bj|^2 and the
	 * block's share of the parallel error, <r_b - C_bj, x_b> / |x|.  The
	 * loops over the 16 centers have fixed length and no dependencies, so
	 * the compiler vectorizes them.
	 */
	energy = scoreah_palloc(sizeof(float) * nb * SCOREAH_CENTERS);
	par = scoreah_palloc(sizeof(float) * nb * SCOREAH_CENTERS);
	for (int b = 0; b < nb; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		const float *r = residual + b * model->dpb;
		const float *x = original + b * model->dpb;
		const float *cbT = codebooksT + (Size) SCOREAH_CENTERS * b * model->dpb;
		float		e[SCOREAH_CENTERS] = {0};
		float		p[SCOREAH_CENTERS] = {0};
		float		best = FLT_MAX;
		int			bestj = 0;

		for (int d = 0; d < w; d++)
		{
			const float *ct = cbT + d * SCOREAH_CENTERS;
			float		rd = r[d];
			float		xd = x[d] * invnorm;

			for (int j = 0; j < SCOREAH_CENTERS; j++)
			{
				float		diff = rd - ct[j];

				e[j] += diff * diff;
				p[j] += diff * xd;
			}
		}
		for (int j = 0; j < SCOREAH_CENTERS; j++)
			if (e[j] < best)
			{
				best = e[j];
				bestj = j;
			}
		codes[b] = (uint8) bestj;
		memcpy(energy + b * SCOREAH_CENTERS, e, sizeof(e));
		memcpy(par + b * SCOREAH_CENTERS, p, sizeof(p));
		P += p[bestj];
	}

	/* visit blocks by their current residual energy, largest first */
	order = scoreah_palloc(sizeof(int) * nb);
	keys = scoreah_palloc(sizeof(float) * nb);
	for (int i = 0; i < nb; i++)
	{
		float		et = energy[i * SCOREAH_CENTERS + codes[i]];
		int			j = i - 1;

		while (j >= 0 && keys[j] < et)
		{
			order[j + 1] = order[j];
			keys[j + 1] = keys[j];
			j--;
		}
		keys[j + 1] = et;
		order[j + 1] = i;
	}

	/*
	 * Coordinate descent (reference 2.5): for each block, the center that
	 * most lowers eta * P^2 + (E - P^2), where P is the parallel error and E
	 * the total energy, among those that do not grow P^2.
	 */
	for (int round = 0; round < 10; round++)
	{
		bool		changed = false;

		for (int i = 0; i < nb; i++)
		{
			int			b = order[i];
			int			cur = codes[b];
			const float *pb = par + b * SCOREAH_CENTERS;
			const float *eb = energy + b * SCOREAH_CENTERS;
			float		rest = P - pb[cur];
			int			bestj = cd_step(pb, eb, rest, P * P, eb[cur], eta, cur);

			if (bestj != cur)
			{
				P = rest + pb[bestj];
				codes[b] = (uint8) bestj;
				changed = true;
			}
		}
		if (!changed)
			break;
	}

	scoreah_pfree(energy);
	scoreah_pfree(par);
	scoreah_pfree(order);
	scoreah_pfree(keys);
	if (ownT)
		scoreah_pfree(ownT);
}

/*
 * What the codes of a row of this leaf quantize: x - c_leaf with residual
 * quantization, x itself without.
 */
void
scoreah_model_residual(ScoreahModel model, const float *x, int leaf, float *out)
{
	const float *c = model->centroids + (Size) leaf * model->dim;

	if (model->residual)
		for (int i = 0; i < model->dim; i++)
			out[i] = x[i] - c[i];
	else
		memcpy(out, x, sizeof(float) * model->dim);
}

/*
 * A row's own part of its L2 distance when its codes quantize the residual
 * r = x - c of leaf c, which is why such an L2 table used to be the leaf's:
 *
 *	|q - c - r~|^2 = |q - c|^2 - 2 <q, r~> + (|r~|^2 + 2 <c, r~>)
 *
 * The first term is the leaf's, the second is summed from one table of the
 * query for every leaf (entries -2 <q_b, center>), and the third, this
 * bias, depends on the row alone: kept with its codes, it spares a scan a
 * table per leaf searched.  From the decoded residual r~, in double.
 */
float
scoreah_pq_row_bias(ScoreahModel model, int leaf, const uint8 *codes)
{
	const float *c = model->centroids + (Size) leaf * model->dim;
	double		bias = 0;

	for (int b = 0; b < model->nblocks; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		const float *center = ScoreahCodebook(model, b) + codes[b] * w;
		const float *cb = c + (Size) b * model->dpb;

		for (int d = 0; d < w; d++)
			bias += (double) center[d] * ((double) center[d] + 2.0 * cb[d]);
	}
	return (float) bias;
}
