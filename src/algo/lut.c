/*-------------------------------------------------------------------------
 *
 * lut.c
 *	  Per-query lookup tables for asymmetric scoring, their 8-bit
 *	  quantization, and the LUT16 layout of codes in a group of 32 rows.
 *
 * A table holds, for each PQ block, the distance from the query's part to
 * each of the block's 16 centers; a row's approximate distance is the sum
 * of the entries its codes select.  The LUT16 kernels (lut16_*.c) add the
 * 8-bit version of the table for 32 rows at once.
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

#ifdef SCOREAH_X86
#include <emmintrin.h>
#endif

/*
 * Room for a LUT16 kernel's table and sums: both on cache lines of their
 * own, the sums right after the table.  Where they lie matters to the
 * AVX-512 kernel: with the sums at the same address modulo 4 KB as the
 * table (the stack and the heap put them anywhere), each call's loads of
 * the table waited on the last call's stores of the sums, 14% slower at 50
 * blocks on Zen 4 (and 40% at 25 in one backend, with the two where its
 * stack and heap happened to put them); adjacent, they cannot alias while
 * the table is shorter than 4 KB (248 blocks).  Returns the allocation to
 * free.
 */
void *
scoreah_lut16_operands(int nblocks, uint8 **qlut, uint32 **sums)
{
	Size		tbytes = TYPEALIGN(64, (Size) Max(nblocks, 1) * SCOREAH_CENTERS);
	char	   *mem = scoreah_palloc(tbytes + sizeof(uint32) * SCOREAH_GROUP_ROWS + 64);
	char	   *base = (char *) TYPEALIGN(64, mem);

	*qlut = (uint8 *) base;
	*sums = (uint32 *) (base + tbytes);
	return mem;
}

void
scoreah_lut_alloc(ScoreahLut lut, int nblocks)
{
	lut->nblocks = nblocks;
	lut->flut = scoreah_palloc(sizeof(float) * nblocks * SCOREAH_CENTERS);
	lut->qmem = scoreah_lut16_operands(nblocks, &lut->qlut, &lut->sums);
	lut->scale = 1;
	lut->offset = 0;
}

void
scoreah_lut_free(ScoreahLut lut)
{
	scoreah_pfree(lut->flut);
	scoreah_pfree(lut->qmem);
	lut->flut = NULL;
	lut->qlut = NULL;
	lut->sums = NULL;
	lut->qmem = NULL;
}

/*
 * The 16 entries of a block of width w: squared L2 distances from r, or
 * negative inner products with q.  Always inlined, and called with the
 * usual widths as constants, so each becomes straight-line code: with w
 * known only at run time the loop over 2 dimensions cost 450 instructions
 * a block, and tables built per leaf (L2 on residuals) made that a fifth
 * of a SIFT query.
 */
static pg_attribute_always_inline void
l2_entries(const float *r, const float *cb, int w, float *out)
{
	for (int j = 0; j < SCOREAH_CENTERS; j++)
	{
		float		s = 0;

		for (int d = 0; d < w; d++)
		{
			float		diff = r[d] - cb[j * w + d];

			s += diff * diff;
		}
		out[j] = s;
	}
}

/*
 * Width 2, the default: four centers a step with SSE2 on x86-64 (every
 * such CPU has it), adding the two squares in the same order as
 * l2_entries, so the table is the same to the bit.  r = q - c (c may be
 * NULL: r = q) is formed in a register: written to memory as two floats
 * and read back as one 8-byte load, it missed the CPU's store forwarding,
 * a stall of about 20 cycles a block, a third of a table built per leaf.
 */
static inline void
l2_entries2(const float *q, const float *c, const float *cb, float *out)
{
#ifdef SCOREAH_X86
	__m128		r2 = _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *) q);
	__m128		rr;

	if (c)
		r2 = _mm_sub_ps(r2, _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *) c));
	rr = _mm_movelh_ps(r2, r2); /* r0, r1, r0, r1 */
	for (int j = 0; j < SCOREAH_CENTERS; j += 4)
	{
		__m128		a = _mm_sub_ps(rr, _mm_loadu_ps(cb + 2 * j));	/* centers j, j+1 */
		__m128		b = _mm_sub_ps(rr, _mm_loadu_ps(cb + 2 * j + 4));	/* j+2, j+3 */

		a = _mm_mul_ps(a, a);
		b = _mm_mul_ps(b, b);
		_mm_storeu_ps(out + j, _mm_add_ps(_mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
										  _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
	}
#else
	float		r[2];

	r[0] = c ? q[0] - c[0] : q[0];
	r[1] = c ? q[1] - c[1] : q[1];
	l2_entries(r, cb, 2, out);
#endif
}

static pg_attribute_always_inline void
ip_entries(const float *q, const float *cb, int w, float *out)
{
	for (int j = 0; j < SCOREAH_CENTERS; j++)
	{
		float		s = 0;

		for (int d = 0; d < w; d++)
			s += q[d] * cb[j * w + d];
		out[j] = -s;
	}
}

/*
 * Tiny blocks (up to 8 dimensions) inline, no call per center, and the
 * usual widths with the width a constant.  Called with l2 a constant, so
 * each call site keeps one metric's code.
 */
static pg_attribute_always_inline void
small_entries(const float *x, const float *cb, int w, bool l2, float *out)
{
#define SMALL_ENTRIES(W) \
	do { \
		if (l2) \
			l2_entries(x, cb, (W), out); \
		else \
			ip_entries(x, cb, (W), out); \
	} while (0)

	/* L2 at width 2 never comes here: scoreah_lut_build calls l2_entries2 */
	if (w == 2)
		SMALL_ENTRIES(2);
	else if (w == 3)
		SMALL_ENTRIES(3);
	else if (w == 1)
		SMALL_ENTRIES(1);
	else if (w == 4)
		SMALL_ENTRIES(4);
	else
		SMALL_ENTRIES(w);
#undef SMALL_ENTRIES
}

/*
 * The codebooks block by block as w rows of 16 (row d: dimension d of each
 * center) into out (16 x dim floats), for the lut_entries kernels
 * (float.c).  Kept with a model that serves queries (the model cache);
 * NULL in a model makes the tables take the per-center loops.
 */
void
scoreah_transpose_codebooks(ScoreahModel model, float *out)
{
	for (int b = 0; b < model->nblocks; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		const float *cb = ScoreahCodebook(model, b);
		float	   *t = out + (cb - model->codebooks);

		for (int d = 0; d < w; d++)
			for (int j = 0; j < SCOREAH_CENTERS; j++)
				t[d * SCOREAH_CENTERS + j] = cb[j * w + d];
	}
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

	/* with row biases an L2 table holds inner products (scoreah_lut_query) */
	bool		l2 = model->metric == SCOREAH_METRIC_L2 && !model->rowBias;

	if (model->codebooksT)
	{
		/*
		 * The transposed codebooks (the model cache's and the build's):
		 * every full-width block in one call of the lut_entries kernel, a
		 * narrower last block in a second.  Against the per-center loops
		 * below (Zen 4, AVX2 kernel): a per-leaf L2 table of 1,536
		 * dimensions 3.4-4.9 -> 1.6-2.1 us at width 2, 10.4 -> 1.4-1.8 at
		 * 4; GloVe's cosine table (50 blocks of 2) 0.6-1.0 -> 0.08-0.12.
		 */
		int			dpb = model->dpb;
		int			last = model->nblocks - 1;
		int			nfull = ScoreahBlockWidth(model, last) == dpb ? model->nblocks : last;
		const float *c = l2 ? center : NULL;

		scoreah_lut_entries(query, c, model->codebooksT, dpb, nfull, l2, lut->flut);
		if (nfull < model->nblocks)
			scoreah_lut_entries(query + (Size) last * dpb, c ? c + (Size) last * dpb : NULL,
								model->codebooksT + (Size) last * dpb * SCOREAH_CENTERS,
								ScoreahBlockWidth(model, last), 1, l2,
								lut->flut + (Size) last * SCOREAH_CENTERS);
		return;
	}

	for (int b = 0; b < model->nblocks; b++)
	{
		int			w = ScoreahBlockWidth(model, b);
		const float *q = query + b * model->dpb;
		const float *cb = ScoreahCodebook(model, b);
		float	   *out = lut->flut + b * SCOREAH_CENTERS;

		if (l2)
		{
			const float *qq = q;
			float	   *heapbuf = NULL;

			if (w == 2)
			{
				/* the default width: r = q - center in a register */
				l2_entries2(q, center ? center + b * model->dpb : NULL, cb, out);
				continue;
			}
			if (center)
			{
				float	   *t = w <= 64 ? tmp : (heapbuf = scoreah_palloc(sizeof(float) * w));

				for (int d = 0; d < w; d++)
					t[d] = q[d] - center[b * model->dpb + d];
				qq = t;
			}
			if (w <= 8)
				small_entries(qq, cb, w, true, out);
			else
				for (int j = 0; j < SCOREAH_CENTERS; j++)
					out[j] = scoreah_l2sq(qq, cb + j * w, w);
			if (heapbuf)
				scoreah_pfree(heapbuf);
		}
		else if (w <= 8)
			small_entries(q, cb, w, false, out);
		else
		{
			scoreah_dot_many(q, cb, SCOREAH_CENTERS, w, out);
			for (int j = 0; j < SCOREAH_CENTERS; j++)
				out[j] = -out[j];
		}
	}
}

/*
 * The 16 entries of one block: (f - min) * scale rounded to the nearest
 * integer (ties to even) and clamped to 0..255.  On x86-64 with SSE2 (every
 * such CPU): the conversion rounds as rintf does in the default rounding
 * mode and the two saturating packs clamp, where rintf is a library call
 * per entry without SSE4.1; tables built per leaf (L2 on residuals) made
 * that loop a visible part of a query.
 */
static inline void
quantize_block(const float *f, float min, float scale, uint8 *q)
{
#ifdef SCOREAH_X86
	const __m128 mn = _mm_set1_ps(min);
	const __m128 sc = _mm_set1_ps(scale);
	/* four named vectors: an array of them went through the stack */
	__m128i		i0 = _mm_cvtps_epi32(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(f), mn), sc));
	__m128i		i1 = _mm_cvtps_epi32(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(f + 4), mn), sc));
	__m128i		i2 = _mm_cvtps_epi32(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(f + 8), mn), sc));
	__m128i		i3 = _mm_cvtps_epi32(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(f + 12), mn), sc));

	_mm_storeu_si128((__m128i *) q, _mm_packus_epi16(_mm_packs_epi32(i0, i1),
													 _mm_packs_epi32(i2, i3)));
#else
	for (int j = 0; j < SCOREAH_CENTERS; j++)
	{
		float		v = rintf((f[j] - min) * scale);

		q[j] = (uint8) Max(0.0f, Min(255.0f, v));
	}
#endif
}

/*
 * The smallest and largest of a block's 16 entries (SSE2 on x86-64; min
 * and max round nothing, so the values are the loop's, up to the sign of
 * a zero).  Per-leaf tables made the loop 7% of a SIFT query.
 */
static inline void
block_range(const float *f, float *lo, float *hi)
{
#ifdef SCOREAH_X86
	__m128		a = _mm_loadu_ps(f),
				b = _mm_loadu_ps(f + 4),
				c = _mm_loadu_ps(f + 8),
				d = _mm_loadu_ps(f + 12);
	__m128		mn = _mm_min_ps(_mm_min_ps(a, b), _mm_min_ps(c, d));
	__m128		mx = _mm_max_ps(_mm_max_ps(a, b), _mm_max_ps(c, d));

	mn = _mm_min_ps(mn, _mm_shuffle_ps(mn, mn, _MM_SHUFFLE(1, 0, 3, 2)));
	mn = _mm_min_ps(mn, _mm_shuffle_ps(mn, mn, _MM_SHUFFLE(2, 3, 0, 1)));
	mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
	mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
	*lo = _mm_cvtss_f32(mn);
	*hi = _mm_cvtss_f32(mx);
#else
	float		l = f[0],
				h = f[0];

	for (int j = 1; j < SCOREAH_CENTERS; j++)
	{
		l = Min(l, f[j]);
		h = Max(h, f[j]);
	}
	*lo = l;
	*hi = h;
#endif
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
	double		offset = 0;
	float	   *mins = scoreah_palloc(sizeof(float) * lut->nblocks);
	float		maxspan = scoreah_lut_ranges(lut->flut, lut->nblocks, mins);

	for (int b = 0; b < lut->nblocks; b++)
		offset += mins[b];
	lut->scale = maxspan > 0 ? 255.0f / maxspan : 1.0f;
	lut->offset = (float) offset;
	scoreah_lut_quantize_blocks(lut->flut, mins, lut->nblocks, lut->scale, lut->qlut);
	scoreah_pfree(mins);
}

/*
 * The two passes of scoreah_lut_quantize, portable (SSE2 on x86-64): the
 * float kernel sets' lut_ranges and lut_quantize, which must give these
 * values and bytes.
 */
float
scoreah_lut_ranges_portable(const float *flut, int nblocks, float *mins)
{
	float		maxspan = 0;

	for (int b = 0; b < nblocks; b++)
	{
		float		lo,
					hi;

		block_range(flut + (Size) b * SCOREAH_CENTERS, &lo, &hi);
		mins[b] = lo;
		maxspan = Max(maxspan, hi - lo);
	}
	return maxspan;
}

void
scoreah_lut_quantize_portable(const float *flut, const float *mins, int nblocks, float scale,
							  uint8 *qlut)
{
	for (int b = 0; b < nblocks; b++)
		quantize_block(flut + (Size) b * SCOREAH_CENTERS, mins[b], scale,
					   qlut + (Size) b * SCOREAH_CENTERS);
}

/* ---- a query's tables ---- */

/* L2 on residuals without row biases: each leaf needs a table of its own */
static bool
lut_per_leaf(ScoreahModel model)
{
	return model->metric == SCOREAH_METRIC_L2 && model->residual && !model->rowBias;
}

void
scoreah_lut_query(ScoreahModel model, const float *query, ScoreahLut lut)
{
	if (lut_per_leaf(model))
		return;
	if (model->rowBias)
	{
		/*
		 * L2 with row biases: entries -2 <q_b, center> (scoreah_pq_row_bias),
		 * the inner-product table of 2q (doubling a float is exact).
		 */
		float	   *q2 = scoreah_palloc(sizeof(float) * model->dim);

		for (int d = 0; d < model->dim; d++)
			q2[d] = 2.0f * query[d];
		scoreah_lut_build(model, q2, NULL, lut);
		scoreah_pfree(q2);
	}
	else						/* the centroid enters as a per-leaf bias */
		scoreah_lut_build(model, query, NULL, lut);
	scoreah_lut_quantize(lut);
}

double
scoreah_lut_leaf(ScoreahModel model, const float *query, int leaf, ScoreahLut lut)
{
	const float *c = model->centroids + (Size) leaf * model->dim;
	double		base = 0;

	if (lut_per_leaf(model))
	{
		/* residuals of this leaf: the table depends on the leaf */
		scoreah_lut_build(model, query, c, lut);
		scoreah_lut_quantize(lut);
	}
	else if (model->rowBias)
		base = scoreah_l2sq(query, c, model->dim);	/* |q - c|^2 */
	else if (model->residual)
		base = -(double) scoreah_dot(query, c, model->dim);
	/* without residuals the codes approximate the whole vector */
	return base + lut->offset;
}

/* ---- the LUT16 code layout ---- */

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
