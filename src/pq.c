/*-------------------------------------------------------------------------
 *
 * pq.c
 *	  Product quantization as ScaNN's asymmetric hashing does it: 16-center
 *	  codebooks per block of dimensions, anisotropic (score-aware) encoding
 *	  by coordinate descent over blocks, per-query lookup tables quantized
 *	  to 8 bits, and the LUT16 scoring of groups of 32 rows.
 *
 * Codebooks are trained with plain (isotropic) k-means per block, on
 * residuals x - c_leaf; the anisotropic loss enters at encoding time, as
 * in ScaNN since 2021 (reference section 2.5).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"

#include "scoreah_algo.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SCOREAH_X86_DISPATCH 1
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#define SCOREAH_NEON 1
#include <arm_neon.h>
#endif

ScoreahLut16Kernel scoreah_lut16_scan = scoreah_lut16_scan_scalar;

/* ---- codebook training ---- */

/*
 * Train the codebooks of every block on n sample residuals (n x dim).
 */
void
scoreah_pq_train(ScoreahModel model, const float *samples, int n,
				 int iterations, uint64 seed)
{
	int			dim = model->dim;
	float	   *sub = palloc(sizeof(float) * (Size) Max(n, 1) * model->dpb);

	for (int b = 0; b < model->nblocks; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		int			start = b * model->dpb;
		ScoreahKmeansParams params;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < n; i++)
			memcpy(sub + (Size) i * w, samples + (Size) i * dim + start, sizeof(float) * w);

		params.k = SCOREAH_CENTERS;
		params.iterations = iterations;
		params.minClusterSize = 1;
		params.spherical = false;
		params.randomInit = false;	/* k-means++: 16 centers, cheap */
		params.seed = seed + b;
		scoreah_kmeans(sub, n, w, &params, ScoreahCodebook(model, b));
	}
	pfree(sub);
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
	float	   *par = NULL;
	int		   *order;
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
	 * Per block and center: the residual energy |r_b - C_bj|^2 and (for
	 * the anisotropic loss) the block's share of the parallel error,
	 * <r_b - C_bj, x_b> / |x|.  The loops over the 16 centers have fixed
	 * length and no dependencies, so the compiler vectorizes them.
	 */
	energy = palloc(sizeof(float) * nb * SCOREAH_CENTERS);
	if (aniso)
		par = palloc(sizeof(float) * nb * SCOREAH_CENTERS);
	for (int b = 0; b < nb; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		const float *r = residual + b * model->dpb;
		const float *x = original + b * model->dpb;
		const float *cb = ScoreahCodebook(model, b);
		float		e[SCOREAH_CENTERS] = {0};
		float		p[SCOREAH_CENTERS] = {0};
		float		best = FLT_MAX;
		int			bestj = 0;

		for (int d = 0; d < w; d++)
		{
			float		ct[SCOREAH_CENTERS];
			float		rd = r[d];
			float		xd = aniso ? x[d] * invnorm : 0;

			for (int j = 0; j < SCOREAH_CENTERS; j++)
				ct[j] = cb[j * w + d];
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
		if (aniso)
		{
			memcpy(par + b * SCOREAH_CENTERS, p, sizeof(p));
			P += p[bestj];
		}
	}
	if (!aniso)
	{
		pfree(energy);
		return;
	}

	/* visit blocks by their current residual energy, largest first */
	order = palloc(sizeof(int) * nb);
	for (int i = 0; i < nb; i++)
	{
		float		et = energy[i * SCOREAH_CENTERS + codes[i]];
		int			j = i - 1;

		while (j >= 0 && energy[order[j] * SCOREAH_CENTERS + codes[order[j]]] < et)
		{
			order[j + 1] = order[j];
			j--;
		}
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
			float		P2 = P * P;
			float		ecur = eb[cur];
			float		delta[SCOREAH_CENTERS];
			float		bestDelta = 0;
			int			bestj = cur;

			for (int j = 0; j < SCOREAH_CENTERS; j++)
			{
				float		Pn = rest + pb[j];
				float		dP2 = Pn * Pn - P2;

				delta[j] = dP2 > 0 ? FLT_MAX : eta * dP2 + ((eb[j] - ecur) - dP2);
			}
			for (int j = 0; j < SCOREAH_CENTERS; j++)
				if (delta[j] < bestDelta)
				{
					bestDelta = delta[j];
					bestj = j;
				}
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

	pfree(energy);
	pfree(par);
	pfree(order);
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

/* ---- routing ---- */

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
 * for L2, negative inner product for inner product and cosine (ScaNN
 * routes by the search distance).
 */
void
scoreah_route_scores(ScoreahModel model, const float *query, float *scores)
{
	int			dim = model->dim;
	float		qn = scoreah_dot(query, query, dim);
	float	   *qs = NULL;

	if (model->quantizeCentroids)
	{
		qs = palloc(sizeof(float) * dim);
		for (int d = 0; d < dim; d++)
			qs[d] = query[d] * model->qscales[d];
	}

	/* float centroids: all the dot products through the blocked kernel */
	if (!qs)
		scoreah_dot_many(query, model->centroids, model->nleaves, dim, scores);

	for (int j = 0; j < model->nleaves; j++)
	{
		float		dot;

		if (qs)
		{
			const int8 *c = model->qcentroids + (Size) j * dim;
			float		s = 0;

			for (int d = 0; d < dim; d++)
				s += qs[d] * c[d];
			dot = s;
		}
		else
			dot = scores[j];

		if (model->metric == SCOREAH_METRIC_L2)
			scores[j] = qn - 2 * dot + model->centroidNorms[j];
		else
			scores[j] = -dot;
	}
	if (qs)
		pfree(qs);
}

/* ---- lookup tables ---- */

void
scoreah_lut_alloc(ScoreahLut lut, int nblocks)
{
	lut->nblocks = nblocks;
	lut->flut = palloc(sizeof(float) * nblocks * SCOREAH_CENTERS);
	lut->qlut = palloc(sizeof(uint8) * nblocks * SCOREAH_CENTERS);
	lut->scale = 1;
	lut->offset = 0;
}

/*
 * Float lookup table of a query.  For L2 the entries are squared distances
 * between the query's block (minus the leaf centroid when codes are
 * residuals: center is then that centroid) and each codebook center; for
 * inner product and cosine they are negative inner products, the same for
 * every leaf (the centroid's part is a per-leaf bias).
 */
void
scoreah_lut_build(ScoreahModel model, const float *query, const float *center,
				  ScoreahLut lut)
{
	float		tmp[64];

	for (int b = 0; b < model->nblocks; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		const float *q = query + b * model->dpb;
		const float *cb = ScoreahCodebook(model, b);
		float	   *out = lut->flut + b * SCOREAH_CENTERS;

		if (model->metric == SCOREAH_METRIC_L2)
		{
			const float *qq = q;
			float	   *heapbuf = NULL;

			if (center)
			{
				float	   *t = w <= 64 ? tmp : (heapbuf = palloc(sizeof(float) * w));

				for (int d = 0; d < w; d++)
					t[d] = q[d] - center[b * model->dpb + d];
				qq = t;
			}
			if (w <= 8)
			{
				/* tiny blocks: inline, no call per center */
				for (int j = 0; j < SCOREAH_CENTERS; j++)
				{
					float		s = 0;

					for (int d = 0; d < w; d++)
					{
						float		diff = qq[d] - cb[j * w + d];

						s += diff * diff;
					}
					out[j] = s;
				}
			}
			else
				for (int j = 0; j < SCOREAH_CENTERS; j++)
					out[j] = scoreah_l2sq(qq, cb + j * w, w);
			if (heapbuf)
				pfree(heapbuf);
		}
		else if (w <= 8)
		{
			for (int j = 0; j < SCOREAH_CENTERS; j++)
			{
				float		s = 0;

				for (int d = 0; d < w; d++)
					s += q[d] * cb[j * w + d];
				out[j] = -s;
			}
		}
		else
		{
			scoreah_dot_many(q, cb, SCOREAH_CENTERS, w, out);
			for (int j = 0; j < SCOREAH_CENTERS; j++)
				out[j] = -out[j];
		}
	}
}

/*
 * 8-bit table: each block's entries minus the block's minimum, times one
 * global scale.  The per-block bias uses all 8 bits even for L2 tables
 * (all positive), which ScaNN's symmetric scale would half waste; the sums
 * are exact integers, so any kernel that adds them gives the same result.
 * distance ~= offset + sum / scale.
 */
void
scoreah_lut_quantize(ScoreahLut lut)
{
	float		maxspan = 0;
	double		offset = 0;
	float	   *mins = palloc(sizeof(float) * lut->nblocks);

	for (int b = 0; b < lut->nblocks; b++)
	{
		const float *f = lut->flut + b * SCOREAH_CENTERS;
		float		lo = f[0],
					hi = f[0];

		for (int j = 1; j < SCOREAH_CENTERS; j++)
		{
			lo = Min(lo, f[j]);
			hi = Max(hi, f[j]);
		}
		mins[b] = lo;
		offset += lo;
		maxspan = Max(maxspan, hi - lo);
	}
	lut->scale = maxspan > 0 ? 255.0f / maxspan : 1.0f;
	lut->offset = (float) offset;
	for (int b = 0; b < lut->nblocks; b++)
	{
		const float *f = lut->flut + b * SCOREAH_CENTERS;
		uint8	   *q = lut->qlut + b * SCOREAH_CENTERS;

		for (int j = 0; j < SCOREAH_CENTERS; j++)
		{
			float		v = rintf((f[j] - mins[b]) * lut->scale);

			q[j] = (uint8) Max(0.0f, Min(255.0f, v));
		}
	}
	pfree(mins);
}

/* ---- LUT16 code layout and scoring ---- */

/*
 * Store the codes of one row into a group: in block b, byte (row % 16)
 * holds row's code in the low nibble for rows 0..15 and in the high
 * nibble for rows 16..31.
 */
void
scoreah_pack_codes(uint8 *groupCodes, int row, const uint8 *codes, int nblocks)
{
	int			m = row & 15;

	for (int b = 0; b < nblocks; b++)
	{
		uint8	   *byte = groupCodes + b * 16 + m;

		if (row < 16)
			*byte = (uint8) ((*byte & 0xF0) | (codes[b] & 0x0F));
		else
			*byte = (uint8) ((*byte & 0x0F) | ((codes[b] & 0x0F) << 4));
	}
}

uint8
scoreah_unpack_code(const uint8 *groupCodes, int row, int block)
{
	uint8		byte = groupCodes[block * 16 + (row & 15)];

	return row < 16 ? (byte & 0x0F) : (byte >> 4);
}

/*
 * Portable LUT16 scan: out[i] = sum over blocks of qlut[b][code(i, b)] for
 * the 32 rows of a group.
 */
void
scoreah_lut16_scan_scalar(const uint8 *codes, const uint8 *qlut, int nblocks,
						  uint32 *out)
{
	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int b = 0; b < nblocks; b++)
	{
		const uint8 *c = codes + b * 16;
		const uint8 *t = qlut + b * SCOREAH_CENTERS;

		for (int m = 0; m < 16; m++)
		{
			out[m] += t[c[m] & 0x0F];
			out[m + 16] += t[c[m] >> 4];
		}
	}
}

/*
 * SIMD kernels: in-register table lookups (pshufb, tbl) use each code
 * nibble as an index into the 16 one-byte entries of its block's table.
 * Bytes are widened to 16-bit accumulators, which are folded into the
 * 32-bit results every 256 blocks so no sum can overflow (each entry is at
 * most 255, and 256 * 255 < 65536).  The sums are exact integers:
 * identical to the scalar kernel's.
 */
#define LUT16_CHUNK 256

#ifdef SCOREAH_X86_DISPATCH

__attribute__((target("ssse3")))
static void
lut16_scan_ssse3(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out)
{
	const __m128i mask = _mm_set1_epi8(0x0F);
	const __m128i zero = _mm_setzero_si128();

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int b0 = 0; b0 < nblocks; b0 += LUT16_CHUNK)
	{
		int			b1 = Min(nblocks, b0 + LUT16_CHUNK);
		__m128i		acc[4];
		uint16		sums[SCOREAH_GROUP_ROWS];

		for (int i = 0; i < 4; i++)
			acc[i] = _mm_setzero_si128();
		for (int b = b0; b < b1; b++)
		{
			__m128i		c = _mm_loadu_si128((const __m128i *) (codes + b * 16));
			__m128i		t = _mm_loadu_si128((const __m128i *) (qlut + b * 16));
			__m128i		lo = _mm_shuffle_epi8(t, _mm_and_si128(c, mask));
			__m128i		hi = _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(c, 4), mask));

			acc[0] = _mm_add_epi16(acc[0], _mm_unpacklo_epi8(lo, zero));
			acc[1] = _mm_add_epi16(acc[1], _mm_unpackhi_epi8(lo, zero));
			acc[2] = _mm_add_epi16(acc[2], _mm_unpacklo_epi8(hi, zero));
			acc[3] = _mm_add_epi16(acc[3], _mm_unpackhi_epi8(hi, zero));
		}
		for (int i = 0; i < 4; i++)
			_mm_storeu_si128((__m128i *) (sums + 8 * i), acc[i]);
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			out[i] += sums[i];
	}
}

/*
 * AVX2: one 32-byte load covers two blocks (one per 128-bit lane, since
 * vpshufb looks up within lanes), so the two lanes accumulate even and
 * odd blocks and are added at the end.
 */
__attribute__((target("avx2")))
static void
lut16_scan_avx2(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out)
{
	const __m256i mask = _mm256_set1_epi8(0x0F);
	const __m256i zero = _mm256_setzero_si256();
	int			npairs = nblocks / 2;

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int p0 = 0; p0 < npairs; p0 += LUT16_CHUNK)
	{
		int			p1 = Min(npairs, p0 + LUT16_CHUNK);
		__m256i		acc[4];
		uint16		sums[2 * SCOREAH_GROUP_ROWS];

		for (int i = 0; i < 4; i++)
			acc[i] = _mm256_setzero_si256();
		for (int p = p0; p < p1; p++)
		{
			__m256i		c = _mm256_loadu_si256((const __m256i *) (codes + p * 32));
			__m256i		t = _mm256_loadu_si256((const __m256i *) (qlut + p * 32));
			__m256i		lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask));
			__m256i		hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask));

			acc[0] = _mm256_add_epi16(acc[0], _mm256_unpacklo_epi8(lo, zero));
			acc[1] = _mm256_add_epi16(acc[1], _mm256_unpackhi_epi8(lo, zero));
			acc[2] = _mm256_add_epi16(acc[2], _mm256_unpacklo_epi8(hi, zero));
			acc[3] = _mm256_add_epi16(acc[3], _mm256_unpackhi_epi8(hi, zero));
		}

		/*
		 * Lane layout of acc[i]: 8 sums of rows 8i'.. for the even blocks,
		 * then the same rows for the odd blocks (i' = row group of acc[i]).
		 */
		for (int i = 0; i < 4; i++)
			_mm256_storeu_si256((__m256i *) (sums + 16 * i), acc[i]);
		for (int i = 0; i < 4; i++)
			for (int r = 0; r < 8; r++)
				out[8 * i + r] += (uint32) sums[16 * i + r] + sums[16 * i + 8 + r];
	}
	if (nblocks & 1)
	{
		const uint8 *c = codes + (nblocks - 1) * 16;
		const uint8 *t = qlut + (nblocks - 1) * 16;

		for (int m = 0; m < 16; m++)
		{
			out[m] += t[c[m] & 0x0F];
			out[m + 16] += t[c[m] >> 4];
		}
	}
}

/*
 * AVX-512BW: four blocks per 64-byte load, one per 128-bit lane; the four
 * lanes' sums are added at the end.  Compiled wherever the compiler knows
 * the instructions, used only on CPUs that report avx512bw.
 */
__attribute__((target("avx512bw")))
static void
lut16_scan_avx512(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out)
{
	const __m512i mask = _mm512_set1_epi8(0x0F);
	const __m512i zero = _mm512_setzero_si512();
	int			nquads = nblocks / 4;

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int p0 = 0; p0 < nquads; p0 += LUT16_CHUNK)
	{
		int			p1 = Min(nquads, p0 + LUT16_CHUNK);
		__m512i		acc[4];
		uint16		sums[4 * SCOREAH_GROUP_ROWS];

		for (int i = 0; i < 4; i++)
			acc[i] = _mm512_setzero_si512();
		for (int p = p0; p < p1; p++)
		{
			__m512i		c = _mm512_loadu_si512((const void *) (codes + p * 64));
			__m512i		t = _mm512_loadu_si512((const void *) (qlut + p * 64));
			__m512i		lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, mask));
			__m512i		hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), mask));

			acc[0] = _mm512_add_epi16(acc[0], _mm512_unpacklo_epi8(lo, zero));
			acc[1] = _mm512_add_epi16(acc[1], _mm512_unpackhi_epi8(lo, zero));
			acc[2] = _mm512_add_epi16(acc[2], _mm512_unpacklo_epi8(hi, zero));
			acc[3] = _mm512_add_epi16(acc[3], _mm512_unpackhi_epi8(hi, zero));
		}
		/* lane L of acc[i] holds rows 8i..8i+7 summed over blocks = L mod 4 */
		for (int i = 0; i < 4; i++)
			_mm512_storeu_si512((void *) (sums + 32 * i), acc[i]);
		for (int i = 0; i < 4; i++)
			for (int r = 0; r < 8; r++)
				out[8 * i + r] += (uint32) sums[32 * i + r] + sums[32 * i + 8 + r] +
					sums[32 * i + 16 + r] + sums[32 * i + 24 + r];
	}
	for (int b = nquads * 4; b < nblocks; b++)
	{
		const uint8 *c = codes + b * 16;
		const uint8 *t = qlut + b * 16;

		for (int m = 0; m < 16; m++)
		{
			out[m] += t[c[m] & 0x0F];
			out[m + 16] += t[c[m] >> 4];
		}
	}
}
#endif							/* SCOREAH_X86_DISPATCH */

#ifdef SCOREAH_NEON

/*
 * NEON (every aarch64 CPU has it): tbl looks up 16 bytes in a 16-entry
 * table per instruction; one block per step, widened to 16-bit sums that
 * are folded into 32 bits every 256 blocks, as in the x86 kernels.
 */
static void
lut16_scan_neon(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out)
{
	const uint8x16_t mask = vdupq_n_u8(0x0F);

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int b0 = 0; b0 < nblocks; b0 += LUT16_CHUNK)
	{
		int			b1 = Min(nblocks, b0 + LUT16_CHUNK);
		uint16x8_t	acc0 = vdupq_n_u16(0),
					acc1 = vdupq_n_u16(0),
					acc2 = vdupq_n_u16(0),
					acc3 = vdupq_n_u16(0);
		uint16		sums[SCOREAH_GROUP_ROWS];

		for (int b = b0; b < b1; b++)
		{
			uint8x16_t	c = vld1q_u8(codes + b * 16);
			uint8x16_t	t = vld1q_u8(qlut + b * 16);
			uint8x16_t	lo = vqtbl1q_u8(t, vandq_u8(c, mask));
			uint8x16_t	hi = vqtbl1q_u8(t, vshrq_n_u8(c, 4));

			acc0 = vaddw_u8(acc0, vget_low_u8(lo));
			acc1 = vaddw_high_u8(acc1, lo);
			acc2 = vaddw_u8(acc2, vget_low_u8(hi));
			acc3 = vaddw_high_u8(acc3, hi);
		}
		vst1q_u16(sums, acc0);
		vst1q_u16(sums + 8, acc1);
		vst1q_u16(sums + 16, acc2);
		vst1q_u16(sums + 24, acc3);
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			out[i] += sums[i];
	}
}
#endif							/* SCOREAH_NEON */

/* Every LUT16 kernel this build has, and whether this CPU can run it */
static const struct
{
	const char *name;
	ScoreahLut16Kernel fn;
	const char *feature;
}			lut16_kernels[] =
{
	{"scalar", scoreah_lut16_scan_scalar, NULL},
#ifdef SCOREAH_X86_DISPATCH
	{"ssse3", lut16_scan_ssse3, "ssse3"},
	{"avx2", lut16_scan_avx2, "avx2"},
	{"avx512bw", lut16_scan_avx512, "avx512bw"},
#endif
#ifdef SCOREAH_NEON
	{"neon", lut16_scan_neon, "neon"},
#endif
};

static bool
kernel_available(int i)
{
#ifdef SCOREAH_X86_DISPATCH
	const char *f = lut16_kernels[i].feature;

	__builtin_cpu_init();
	if (f == NULL)
		return true;
	if (strcmp(f, "ssse3") == 0)
		return __builtin_cpu_supports("ssse3");
	if (strcmp(f, "avx2") == 0)
		return __builtin_cpu_supports("avx2");
	if (strcmp(f, "avx512bw") == 0)
		return __builtin_cpu_supports("avx512bw");
	return false;
#elif defined(SCOREAH_NEON)
	return true;				/* NEON is part of every aarch64 CPU */
#else
	return i == 0;
#endif
}

/* The LUT16 kernels this CPU runs, scalar first; returns how many */
int
scoreah_lut16_available(const char **names, ScoreahLut16Kernel *fns, int max)
{
	int			n = 0;

	for (int i = 0; i < (int) lengthof(lut16_kernels) && n < max; i++)
		if (kernel_available(i))
		{
			names[n] = lut16_kernels[i].name;
			fns[n] = lut16_kernels[i].fn;
			n++;
		}
	return n;
}

/* Pick the best LUT16 kernel the CPU supports (the last available) */
void
scoreah_init_lut16(void)
{
	scoreah_lut16_scan = scoreah_lut16_scan_scalar;
	for (int i = 0; i < (int) lengthof(lut16_kernels); i++)
		if (kernel_available(i))
			scoreah_lut16_scan = lut16_kernels[i].fn;
}

const char *
scoreah_lut16_kernel_name(void)
{
	for (int i = 0; i < (int) lengthof(lut16_kernels); i++)
		if (lut16_kernels[i].fn == scoreah_lut16_scan)
			return lut16_kernels[i].name;
	return "unknown";
}

/*
 * Compare every available kernel with the scalar one on random codes and
 * tables of nblocks blocks, over ngroups groups.  Returns the number of
 * kernels compared; *mismatch receives the name of the first kernel that
 * differs (NULL when all agree).
 */
int
scoreah_lut16_selftest(int nblocks, int ngroups, uint64 seed, const char **mismatch)
{
	ScoreahRandom rng;
	uint8	   *codes = palloc((Size) ngroups * nblocks * 16);
	uint8	   *qlut = palloc((Size) nblocks * 16);
	uint32		want[SCOREAH_GROUP_ROWS];
	uint32		got[SCOREAH_GROUP_ROWS];
	int			tested = 0;

	*mismatch = NULL;
	scoreah_random_init(&rng, seed);
	for (Size i = 0; i < (Size) ngroups * nblocks * 16; i++)
		codes[i] = (uint8) scoreah_random_next(&rng);
	/* extreme tables too: all 255 stresses the overflow handling */
	for (int i = 0; i < nblocks * 16; i++)
		qlut[i] = (seed & 1) ? 255 : (uint8) scoreah_random_next(&rng);

	for (int k = 0; k < (int) lengthof(lut16_kernels); k++)
	{
		if (!kernel_available(k))
			continue;
		tested++;
		for (int g = 0; g < ngroups && *mismatch == NULL; g++)
		{
			const uint8 *c = codes + (Size) g * nblocks * 16;

			scoreah_lut16_scan_scalar(c, qlut, nblocks, want);
			lut16_kernels[k].fn(c, qlut, nblocks, got);
			if (memcmp(want, got, sizeof(want)) != 0)
				*mismatch = lut16_kernels[k].name;
		}
	}
	pfree(codes);
	pfree(qlut);
	return tested;
}
