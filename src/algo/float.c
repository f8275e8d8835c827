/*-------------------------------------------------------------------------
 *
 * float.c
 *	  Float kernels for training, routing and lookup tables: dot product,
 *	  squared L2, the dot products of one vector with many, and a lookup
 *	  table's block from transposed codebooks; portable and AVX2+FMA.
 *
 * These may round differently from one another (only the exact kernels of
 * exact.c must agree to the bit; of these, lut_entries does too, so that a
 * query's table does not depend on the CPU); selftest.c checks them to
 * rounding, lut_entries to the bit.
 * The AVX2 versions are compiled with a function-level target attribute
 * and called only on CPUs that have AVX2 and FMA (cpu.c).
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>
#endif

/*
 * Whether every element is finite (no NaN, no infinity): the test every
 * vector a SQL function or the index receives goes through, so it looks
 * at the exponent bits only, four floats a step with SSE2 on x86-64 (every
 * such CPU has it: no dispatch).  The caller finds the culprit itself.
 */
bool
scoreah_all_finite(const float *x, int n)
{
	int			i = 0;
	uint32		bad = 0;

#ifdef SCOREAH_X86
	{
		const __m128i expo = _mm_set1_epi32(0x7F800000);
		__m128i		acc = _mm_setzero_si128();

		for (; i + 4 <= n; i += 4)
		{
			__m128i		e = _mm_and_si128(_mm_loadu_si128((const __m128i *) (x + i)), expo);

			acc = _mm_or_si128(acc, _mm_cmpeq_epi32(e, expo));
		}
		bad = (uint32) _mm_movemask_epi8(acc);
	}
#endif
	for (; i < n; i++)
	{
		uint32		u;

		memcpy(&u, &x[i], sizeof(u));
		bad |= (u & 0x7F800000) == 0x7F800000;
	}
	return bad == 0;
}

/*
 * Portable versions.  Four partial sums break the dependency chain so the
 * compiler can keep several additions in flight even without reassociation.
 */
static float
dot_scalar(const float *a, const float *b, int n)
{
	float		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

static float
l2sq_scalar(const float *a, const float *b, int n)
{
	float		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		float		d0 = a[i] - b[i];
		float		d1 = a[i + 1] - b[i + 1];
		float		d2 = a[i + 2] - b[i + 2];
		float		d3 = a[i + 3] - b[i + 3];

		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i < n; i++)
	{
		float		d = a[i] - b[i];

		s0 += d * d;
	}
	return (s0 + s1) + (s2 + s3);
}

/*
 * Dot products of x with k vectors stored one after another (the centroids
 * of a tree, the centers of a codebook).
 */
static void
dot_many_scalar(const float *x, const float *m, int k, int dim, float *out)
{
	for (int j = 0; j < k; j++)
		out[j] = dot_scalar(x, m + (Size) j * dim, dim);
}

/* Dot products of nx rows of x with k rows of m: out is nx x k */
static void
dot_cross_scalar(const float *x, int nx, const float *m, int k, int dim, float *out)
{
	for (int i = 0; i < nx; i++)
		dot_many_scalar(x + (Size) i * dim, m, k, dim, out + (Size) i * k);
}

/*
 * Dot products of an int16 query with k rows of int8 values (centroids
 * quantized for routing: route.c), times scale.  The sums are integers,
 * exact in int32 as long as dim * max|x| * 127 fits (route.c bounds x so),
 * so every kernel set gives the same bits whatever order it adds in.
 */
static void
dot_many_i8_scalar(const int16 *x, float scale, const int8 *m, int k, int dim, float *out)
{
	for (int j = 0; j < k; j++)
	{
		const int8 *r = m + (Size) j * dim;
		int32		s = 0;

		for (int i = 0; i < dim; i++)
			s += (int32) x[i] * r[i];
		out[j] = scale * (float) s;
	}
}

/*
 * A lookup table's 16 entries for each of nblocks consecutive blocks of
 * width w, from their transposed codebooks (cbT: w x 16 a block, blocks
 * one after the other), for lut.c: squared L2 distances from r = q - c (c
 * may be NULL: r = q), or negative inner products with q; q and c start
 * at the first block's dimensions, out at its entries.  All 16 centers a
 * step (SSE2 on x86-64, which every such CPU has), each entry summed over
 * the block's dimensions in order from 0 as lut.c's per-center loops sum
 * it, so where those inline the table is the same to the bit; the AVX2
 * version below gives the same bits too (a multiply and an add, never
 * fused).  Several blocks a call: one call a block through the kernel
 * pointer cost as much as the arithmetic.
 */
static void
lut_entries_scalar(const float *q, const float *c, const float *cbT, int w, int nblocks,
				   bool l2, float *out)
{
	for (int b = 0; b < nblocks; b++)
	{
		const float *qb = q + (Size) b * w;
		const float *cbTb = cbT + (Size) b * w * SCOREAH_CENTERS;
		float	   *o = out + (Size) b * SCOREAH_CENTERS;
#ifdef SCOREAH_X86
		__m128		a0 = _mm_setzero_ps(),
					a1 = _mm_setzero_ps(),
					a2 = _mm_setzero_ps(),
					a3 = _mm_setzero_ps();

		for (int d = 0; d < w; d++)
		{
			const float *t = cbTb + d * SCOREAH_CENTERS;
			__m128		x = _mm_set1_ps(c ? qb[d] - c[(Size) b * w + d] : qb[d]);

			if (l2)
			{
				__m128		e0 = _mm_sub_ps(x, _mm_loadu_ps(t));
				__m128		e1 = _mm_sub_ps(x, _mm_loadu_ps(t + 4));
				__m128		e2 = _mm_sub_ps(x, _mm_loadu_ps(t + 8));
				__m128		e3 = _mm_sub_ps(x, _mm_loadu_ps(t + 12));

				a0 = _mm_add_ps(a0, _mm_mul_ps(e0, e0));
				a1 = _mm_add_ps(a1, _mm_mul_ps(e1, e1));
				a2 = _mm_add_ps(a2, _mm_mul_ps(e2, e2));
				a3 = _mm_add_ps(a3, _mm_mul_ps(e3, e3));
			}
			else
			{
				a0 = _mm_add_ps(a0, _mm_mul_ps(x, _mm_loadu_ps(t)));
				a1 = _mm_add_ps(a1, _mm_mul_ps(x, _mm_loadu_ps(t + 4)));
				a2 = _mm_add_ps(a2, _mm_mul_ps(x, _mm_loadu_ps(t + 8)));
				a3 = _mm_add_ps(a3, _mm_mul_ps(x, _mm_loadu_ps(t + 12)));
			}
		}
		if (!l2)
		{
			/* negate by the sign bit, as -s does (0 - s would turn -0 into +0) */
			const __m128 sign = _mm_set1_ps(-0.0f);

			a0 = _mm_xor_ps(a0, sign);
			a1 = _mm_xor_ps(a1, sign);
			a2 = _mm_xor_ps(a2, sign);
			a3 = _mm_xor_ps(a3, sign);
		}
		_mm_storeu_ps(o, a0);
		_mm_storeu_ps(o + 4, a1);
		_mm_storeu_ps(o + 8, a2);
		_mm_storeu_ps(o + 12, a3);
#else
		float		acc[SCOREAH_CENTERS] = {0};

		for (int d = 0; d < w; d++)
		{
			const float *t = cbTb + d * SCOREAH_CENTERS;
			float		x = c ? qb[d] - c[(Size) b * w + d] : qb[d];

			for (int j = 0; j < SCOREAH_CENTERS; j++)
			{
				if (l2)
				{
					float		e = x - t[j];

					acc[j] += e * e;
				}
				else
					acc[j] += x * t[j];
			}
		}
		for (int j = 0; j < SCOREAH_CENTERS; j++)
			o[j] = l2 ? acc[j] : -acc[j];
#endif
	}
}

const ScoreahFloatKernels scoreah_float_kernels_scalar = {
	"scalar", dot_scalar, l2sq_scalar, dot_many_scalar, dot_cross_scalar, dot_many_i8_scalar,
	lut_entries_scalar, scoreah_lut_ranges_portable, scoreah_lut_quantize_portable,
	false						/* its integer loop: 4x the float one's time */
};

#ifdef SCOREAH_X86

#define FLOAT_TARGET __attribute__((target("avx2,fma")))

FLOAT_TARGET
static inline float
hsum256(__m256 v)
{
	__m128		lo = _mm256_castps256_ps128(v);
	__m128		hi = _mm256_extractf128_ps(v, 1);
	__m128		s = _mm_add_ps(lo, hi);

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
	return _mm_cvtss_f32(s);
}

FLOAT_TARGET
static float
dot_avx2(const float *a, const float *b, int n)
{
	__m256		acc0 = _mm256_setzero_ps();
	__m256		acc1 = _mm256_setzero_ps();
	float		tail = 0;
	int			i = 0;

	for (; i + 16 <= n; i += 16)
	{
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
	}
	for (; i + 8 <= n; i += 8)
		acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
	for (; i < n; i++)
		tail += a[i] * b[i];
	return hsum256(_mm256_add_ps(acc0, acc1)) + tail;
}

FLOAT_TARGET
static float
l2sq_avx2(const float *a, const float *b, int n)
{
	__m256		acc0 = _mm256_setzero_ps();
	__m256		acc1 = _mm256_setzero_ps();
	float		tail = 0;
	int			i = 0;

	for (; i + 16 <= n; i += 16)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256		d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));

		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
		acc1 = _mm256_fmadd_ps(d1, d1, acc1);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));

		acc0 = _mm256_fmadd_ps(d0, d0, acc0);
	}
	for (; i < n; i++)
	{
		float		d = a[i] - b[i];

		tail += d * d;
	}
	return hsum256(_mm256_add_ps(acc0, acc1)) + tail;
}


/* The four sums of a, b, c and d in one vector */
FLOAT_TARGET
static inline __m128
hsum256x4(__m256 a, __m256 b, __m256 c, __m256 d)
{
	__m256		s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));

	return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* The first tail of eight lanes set: masked loads of the last dim % 8 */
FLOAT_TARGET
static inline __m256i
TailMask(int tail)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(tail),
							  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/*
 * Eight dimensions (d..d+7) of dot_cross_avx2's tile of three rows of x
 * (x0..x2) by four of m (r0..r3), into accumulators a (x0), b and c; LOAD
 * is a plain load, or a masked one for the last dim % 8 dimensions.
 */
#define CROSS_LOADU(p) _mm256_loadu_ps(p)
#define CROSS_LOADM(p) _mm256_maskload_ps((p), mask)
#define CROSS_STEP(LOAD) \
do { \
	__m256		u = LOAD(x0 + d); \
	__m256		v = LOAD(x1 + d); \
	__m256		w = LOAD(x2 + d); \
	__m256		r; \
	r = LOAD(r0 + d); \
	a0 = _mm256_fmadd_ps(u, r, a0); b0 = _mm256_fmadd_ps(v, r, b0); c0 = _mm256_fmadd_ps(w, r, c0); \
	r = LOAD(r1 + d); \
	a1 = _mm256_fmadd_ps(u, r, a1); b1 = _mm256_fmadd_ps(v, r, b1); c1 = _mm256_fmadd_ps(w, r, c1); \
	r = LOAD(r2 + d); \
	a2 = _mm256_fmadd_ps(u, r, a2); b2 = _mm256_fmadd_ps(v, r, b2); c2 = _mm256_fmadd_ps(w, r, c2); \
	r = LOAD(r3 + d); \
	a3 = _mm256_fmadd_ps(u, r, a3); b3 = _mm256_fmadd_ps(v, r, b3); c3 = _mm256_fmadd_ps(w, r, c3); \
} while (0)

/* The same for one row of x (dot_many_avx2): accumulators a0..a3 */
#define MANY_STEP(LOAD) \
do { \
	__m256		u = LOAD(x + d); \
	a0 = _mm256_fmadd_ps(u, LOAD(r0 + d), a0); \
	a1 = _mm256_fmadd_ps(u, LOAD(r1 + d), a1); \
	a2 = _mm256_fmadd_ps(u, LOAD(r2 + d), a2); \
	a3 = _mm256_fmadd_ps(u, LOAD(r3 + d), a3); \
} while (0)

/*
 * Dot products of x with k rows of m, four rows at a time: each load of x
 * serves four multiply-adds.  The arithmetic is dot_cross_avx2's for one
 * row of x (same sums in the same order, same remainder handling), so a
 * row's dot products have the same bits through either kernel: a row's
 * nearest leaf does not depend on whether the build searched it alone or
 * with others.
 */
FLOAT_TARGET
static void
dot_many_avx2(const float *x, const float *m, int k, int dim, float *out)
{
	int			tail = dim & 7;
	int			d8 = dim - tail;
	__m256i		mask = TailMask(tail);
	int			j = 0;

	for (; j + 4 <= k; j += 4)
	{
		const float *r0 = m + (Size) j * dim;
		const float *r1 = r0 + dim;
		const float *r2 = r1 + dim;
		const float *r3 = r2 + dim;
		__m256		a0 = _mm256_setzero_ps(),
					a1 = a0,
					a2 = a0,
					a3 = a0;
		int			d = 0;

		for (; d < d8; d += 8)
			MANY_STEP(CROSS_LOADU);
		if (tail)
			MANY_STEP(CROSS_LOADM);
		_mm_storeu_ps(out + j, hsum256x4(a0, a1, a2, a3));
	}
	for (; j < k; j++)
		out[j] = dot_avx2(x, m + (Size) j * dim, dim);
}

/*
 * Three rows of x against four rows of m at a time.  The one-row kernel
 * reads all of m once per row of x, from L2 when m is a tree's centroids
 * (230 KB at 576 x 100): it is bound by that traffic, at about one
 * multiply-add a cycle.  Here twelve accumulators share each load of m (15
 * of the 16 vector registers), which nearly halves the time per row.  The
 * last dim % 8 dimensions are read with masked loads.
 */
FLOAT_TARGET
static void
dot_cross_avx2(const float *x, int nx, const float *m, int k, int dim, float *out)
{
	int			tail = dim & 7;
	int			d8 = dim - tail;
	__m256i		mask = TailMask(tail);
	int			i = 0;

	for (; i + 3 <= nx; i += 3)
	{
		const float *x0 = x + (Size) i * dim;
		const float *x1 = x0 + dim;
		const float *x2 = x1 + dim;
		float	   *o0 = out + (Size) i * k;
		float	   *o1 = o0 + k;
		float	   *o2 = o1 + k;
		int			j = 0;

		for (; j + 4 <= k; j += 4)
		{
			const float *r0 = m + (Size) j * dim;
			const float *r1 = r0 + dim;
			const float *r2 = r1 + dim;
			const float *r3 = r2 + dim;
			__m256		a0 = _mm256_setzero_ps(),
						a1 = a0, a2 = a0, a3 = a0,
						b0 = a0, b1 = a0, b2 = a0, b3 = a0,
						c0 = a0, c1 = a0, c2 = a0, c3 = a0;
			int			d = 0;

			for (; d < d8; d += 8)
				CROSS_STEP(CROSS_LOADU);
			if (tail)
				CROSS_STEP(CROSS_LOADM);
			_mm_storeu_ps(o0 + j, hsum256x4(a0, a1, a2, a3));
			_mm_storeu_ps(o1 + j, hsum256x4(b0, b1, b2, b3));
			_mm_storeu_ps(o2 + j, hsum256x4(c0, c1, c2, c3));
		}
		for (; j < k; j++)
		{
			const float *r = m + (Size) j * dim;

			o0[j] = dot_avx2(x0, r, dim);
			o1[j] = dot_avx2(x1, r, dim);
			o2[j] = dot_avx2(x2, r, dim);
		}
	}
	for (; i < nx; i++)
		dot_many_avx2(x + (Size) i * dim, m, k, dim, out + (Size) i * k);
}

#undef CROSS_STEP
#undef MANY_STEP
#undef CROSS_LOADU
#undef CROSS_LOADM

/* Sixteen int8 values from p, as int16 */
FLOAT_TARGET
static inline __m256i
LoadI8x16(const int8 *p)
{
	return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) p));
}

/* The four sums of a, b, c and d's int32 lanes */
FLOAT_TARGET
static inline __m128i
hsum256x4_epi32(__m256i a, __m256i b, __m256i c, __m256i d)
{
	__m256i		s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));

	return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/*
 * The int8 kernels' tail: a row's last 16 bytes against the query's last
 * 16 values with the ones before the dim % 16 of the tail zeroed (a loop
 * of scalar additions cost more than the rest at 100 dimensions); zeros
 * when there is no tail or fewer than 16 values in all.
 */
FLOAT_TARGET
static inline __m256i
I8TailQuery(const int16 *x, int dim)
{
	int			tail = dim & 15;
	__m256i		lane = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

	if (tail == 0 || dim < 16)
		return _mm256_setzero_si256();
	return _mm256_and_si256(_mm256_loadu_si256((const __m256i *) (x + dim - 16)),
							_mm256_cmpgt_epi16(lane, _mm256_set1_epi16((int16) (15 - tail))));
}

/*
 * The int8 kernels' end of four rows j.. (r[t] repeats row k - 1 past
 * k): their integer sums (or, below 16 dimensions, the sums taken here one
 * by one) times scale into out.
 */
FLOAT_TARGET
static inline void
I8StoreRows(__m128i isums, const int16 *x, const int8 *const *r, int dim, float scale,
			int j, int k, float *out)
{
	__m128		sums;

	if (dim < 16)
	{
		int32		t4[4] = {0, 0, 0, 0};

		for (int t = 0; t < 4; t++)
			for (int d = 0; d < dim; d++)
				t4[t] += (int32) x[d] * r[t][d];
		isums = _mm_loadu_si128((const __m128i *) t4);
	}
	sums = _mm_mul_ps(_mm_cvtepi32_ps(isums), _mm_set1_ps(scale));
	if (j + 4 <= k)
		_mm_storeu_ps(out + j, sums);
	else
	{
		float		f[4];

		_mm_storeu_ps(f, sums);
		for (int t = 0; j + t < k; t++)
			out[j + t] = f[t];
	}
}

/*
 * dot_many_i8_scalar four rows at a time, 16 dimensions a step: the int8
 * values widened to 16 bits and multiplied in pairs into 32-bit sums
 * (vpmaddwd), three instructions for 16 multiply-adds where converting
 * the bytes to floats took four for 8 and left routing compute-bound
 * (1,000 x 1,536 int8 centroids took 68 us, float ones 79; now 35-43 on
 * the same Zen 5 host).  Nothing is read past a row (I8TailQuery).
 */
FLOAT_TARGET
static void
dot_many_i8_avx2(const int16 *x, float scale, const int8 *m, int k, int dim, float *out)
{
	int			d16 = dim & ~15;
	__m256i		xt = I8TailQuery(x, dim);

	for (int j = 0; j < k; j += 4)
	{
		const int8 *r[4];
		__m256i		a[4];

		for (int t = 0; t < 4; t++)
		{
			r[t] = m + (Size) Min(j + t, k - 1) * dim;
			a[t] = _mm256_setzero_si256();
		}
		/* written out: gcc kept a loop over the rows with a[] in memory */
		for (int d = 0; d < d16; d += 16)
		{
			__m256i		u = _mm256_loadu_si256((const __m256i *) (x + d));

			a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(u, LoadI8x16(r[0] + d)));
			a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(u, LoadI8x16(r[1] + d)));
			a[2] = _mm256_add_epi32(a[2], _mm256_madd_epi16(u, LoadI8x16(r[2] + d)));
			a[3] = _mm256_add_epi32(a[3], _mm256_madd_epi16(u, LoadI8x16(r[3] + d)));
		}
		if (d16 < dim && dim >= 16)
		{
			int			e = dim - 16;

			a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(xt, LoadI8x16(r[0] + e)));
			a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(xt, LoadI8x16(r[1] + e)));
			a[2] = _mm256_add_epi32(a[2], _mm256_madd_epi16(xt, LoadI8x16(r[2] + e)));
			a[3] = _mm256_add_epi32(a[3], _mm256_madd_epi16(xt, LoadI8x16(r[3] + e)));
		}
		I8StoreRows(hsum256x4_epi32(a[0], a[1], a[2], a[3]), x, r, dim, scale, j, k, out);
	}
}

/*
 * lut_entries_scalar with 8 centers a register and two blocks a step (two
 * independent chains of additions: one block's w additions in a row wait
 * on each other): the same operations on each entry in the same order,
 * so the same bits.  Compiled for AVX2 without FMA, so that the compiler
 * cannot fuse a multiply and the add after it (a fused one rounds once,
 * and the table would depend on the CPU).  Tables built per leaf (L2 on
 * residuals) are a tenth of a 784-dimension query.
 */
#define LUT_TARGET __attribute__((target("avx2")))

/* the residual's (or query's) value at dimension i, broadcast */
#define LUT_X(i) _mm256_set1_ps(c ? q[i] - c[i] : q[i])

LUT_TARGET
static inline void
lut_store2(float *o, __m256 a0, __m256 a1, bool l2)
{
	if (!l2)
	{
		/* negate by the sign bit, as -s does (0 - s would turn -0 into +0) */
		const __m256 sign = _mm256_set1_ps(-0.0f);

		a0 = _mm256_xor_ps(a0, sign);
		a1 = _mm256_xor_ps(a1, sign);
	}
	_mm256_storeu_ps(o, a0);
	_mm256_storeu_ps(o + 8, a1);
}

LUT_TARGET
static void
lut_entries_avx2(const float *q, const float *c, const float *cbT, int w, int nblocks,
				 bool l2, float *out)
{
	Size		bw = (Size) w * SCOREAH_CENTERS;	/* floats of a block's codebook */
	int			b = 0;

	for (; b + 2 <= nblocks; b += 2)
	{
		const float *t = cbT + (Size) b * bw;
		Size		i = (Size) b * w;
		__m256		a0 = _mm256_setzero_ps(),
					a1 = _mm256_setzero_ps(),
					b0 = _mm256_setzero_ps(),
					b1 = _mm256_setzero_ps();

		if (l2)
			for (int d = 0; d < w; d++, t += SCOREAH_CENTERS, i++)
			{
				__m256		x = LUT_X(i);
				__m256		y = LUT_X(i + w);
				__m256		e0 = _mm256_sub_ps(x, _mm256_loadu_ps(t));
				__m256		e1 = _mm256_sub_ps(x, _mm256_loadu_ps(t + 8));
				__m256		f0 = _mm256_sub_ps(y, _mm256_loadu_ps(t + bw));
				__m256		f1 = _mm256_sub_ps(y, _mm256_loadu_ps(t + bw + 8));

				a0 = _mm256_add_ps(a0, _mm256_mul_ps(e0, e0));
				a1 = _mm256_add_ps(a1, _mm256_mul_ps(e1, e1));
				b0 = _mm256_add_ps(b0, _mm256_mul_ps(f0, f0));
				b1 = _mm256_add_ps(b1, _mm256_mul_ps(f1, f1));
			}
		else
			for (int d = 0; d < w; d++, t += SCOREAH_CENTERS, i++)
			{
				__m256		x = LUT_X(i);
				__m256		y = LUT_X(i + w);

				a0 = _mm256_add_ps(a0, _mm256_mul_ps(x, _mm256_loadu_ps(t)));
				a1 = _mm256_add_ps(a1, _mm256_mul_ps(x, _mm256_loadu_ps(t + 8)));
				b0 = _mm256_add_ps(b0, _mm256_mul_ps(y, _mm256_loadu_ps(t + bw)));
				b1 = _mm256_add_ps(b1, _mm256_mul_ps(y, _mm256_loadu_ps(t + bw + 8)));
			}
		lut_store2(out + (Size) b * SCOREAH_CENTERS, a0, a1, l2);
		lut_store2(out + (Size) (b + 1) * SCOREAH_CENTERS, b0, b1, l2);
	}
	/* an odd block left: the portable kernel's step gives the same bits */
	if (b < nblocks)
		lut_entries_scalar(q + (Size) b * w, c ? c + (Size) b * w : NULL, cbT + (Size) b * bw,
						   w, 1, l2, out + (Size) b * SCOREAH_CENTERS);
}
#undef LUT_X
#undef LUT_TARGET

/*
 * scoreah_lut_ranges_portable two blocks a step, a block to each 128-bit
 * lane: the same minima and span (min and max round nothing), about half
 * the instructions of the SSE2 loop.  Tables built per leaf (L2 on
 * residuals) pay this and lut_quantize_avx2 for every leaf a query
 * searches: 1.7 us a leaf at 392 blocks (MNIST) before.
 */
FLOAT_TARGET
static float
lut_ranges_avx2(const float *flut, int nblocks, float *mins)
{
	__m256		span = _mm256_setzero_ps();
	__m128		s;
	int			b = 0;
	float		maxspan;

	for (; b + 2 <= nblocks; b += 2)
	{
		const float *f = flut + b * SCOREAH_CENTERS;
		__m256		a0 = _mm256_loadu_ps(f),
					a1 = _mm256_loadu_ps(f + 8),
					a2 = _mm256_loadu_ps(f + 16),
					a3 = _mm256_loadu_ps(f + 24);
		__m256		mn0 = _mm256_min_ps(a0, a1),
					mn1 = _mm256_min_ps(a2, a3),
					mx0 = _mm256_max_ps(a0, a1),
					mx1 = _mm256_max_ps(a2, a3);

		/* lane 0: block b's candidates, lane 1: block b + 1's */
		__m256		mn = _mm256_min_ps(_mm256_permute2f128_ps(mn0, mn1, 0x20),
									   _mm256_permute2f128_ps(mn0, mn1, 0x31));
		__m256		mx = _mm256_max_ps(_mm256_permute2f128_ps(mx0, mx1, 0x20),
									   _mm256_permute2f128_ps(mx0, mx1, 0x31));

		mn = _mm256_min_ps(mn, _mm256_shuffle_ps(mn, mn, _MM_SHUFFLE(1, 0, 3, 2)));
		mn = _mm256_min_ps(mn, _mm256_shuffle_ps(mn, mn, _MM_SHUFFLE(2, 3, 0, 1)));
		mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
		mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
		span = _mm256_max_ps(span, _mm256_sub_ps(mx, mn));
		mins[b] = _mm256_cvtss_f32(mn);
		mins[b + 1] = _mm_cvtss_f32(_mm256_extractf128_ps(mn, 1));
	}
	s = _mm_max_ps(_mm256_castps256_ps128(span), _mm256_extractf128_ps(span, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ps(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(1, 1, 1, 1)));
	maxspan = _mm_cvtss_f32(s);
	if (b < nblocks)
		maxspan = Max(maxspan, scoreah_lut_ranges_portable(flut + (Size) b * SCOREAH_CENTERS,
														   nblocks - b, mins + b));
	return maxspan;
}

/*
 * scoreah_lut_quantize_portable two blocks a step: the same subtraction,
 * multiplication and rounding conversion, so the same bytes; the 256-bit
 * packs work per lane, so the dwords come out as (block b's 0-3, 8-11,
 * block b + 1's 0-3, 8-11, then 4-7, 12-15 of each) and one permutation
 * puts them in order.
 */
FLOAT_TARGET
static void
lut_quantize_avx2(const float *flut, const float *mins, int nblocks, float scale, uint8 *qlut)
{
	const __m256 sc = _mm256_set1_ps(scale);
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	int			b = 0;

	for (; b + 2 <= nblocks; b += 2)
	{
		const float *f = flut + b * SCOREAH_CENTERS;
		__m256		m0 = _mm256_set1_ps(mins[b]),
					m1 = _mm256_set1_ps(mins[b + 1]);
		__m256i		i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(f), m0), sc));
		__m256i		i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(f + 8), m0), sc));
		__m256i		i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(f + 16), m1), sc));
		__m256i		i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(f + 24), m1), sc));
		__m256i		p = _mm256_packus_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));

		_mm256_storeu_si256((__m256i *) (qlut + b * SCOREAH_CENTERS),
							_mm256_permutevar8x32_epi32(p, order));
	}
	if (b < nblocks)
		scoreah_lut_quantize_portable(flut + (Size) b * SCOREAH_CENTERS, mins + b, nblocks - b,
									  scale, qlut + (Size) b * SCOREAH_CENTERS);
}

const ScoreahFloatKernels scoreah_float_kernels_avx2 = {
	"avx2", dot_avx2, l2sq_avx2, dot_many_avx2, dot_cross_avx2, dot_many_i8_avx2,
	lut_entries_avx2, lut_ranges_avx2, lut_quantize_avx2, true
};

/*
 * dot_many_i8_avx2 with 512-bit registers, 32 values a step; the same
 * integer sums, so the same bits.  Standalone on Zen 5, against the AVX2
 * kernel: 1,000 int8 centroids of 1,536 dimensions 38 -> 27 us, of 768
 * 19-20 -> 14, of 384 11 -> 8; 245 x 784 6 -> 4.5.  On Intel's AVX-512
 * cores the widening (vpmovsxbw) runs on one port, which the 256-bit loop
 * needs twice as often.  Chosen only on CPUs whose clock does not drop
 * for 512-bit multiplies (cpu.c, CPU_AVX512_NOPENALTY).  The last dim %
 * 32 values: a 256-bit step of 16 if there are that many, then the masked
 * last 16 of I8TailQuery.
 */
#define I8_512_TARGET __attribute__((target("avx512bw,avx512f,avx2,fma")))

I8_512_TARGET
static void
dot_many_i8_avx512(const int16 *x, float scale, const int8 *m, int k, int dim, float *out)
{
	int			d32 = dim & ~31;
	int			d16 = dim & ~15;
	__m256i		xt = I8TailQuery(x, dim);
	__m256i		x16 = _mm256_setzero_si256();

	if (d16 > d32)
		x16 = _mm256_loadu_si256((const __m256i *) (x + d32));

	for (int j = 0; j < k; j += 4)
	{
		const int8 *r[4];
		__m512i		a[4];
		__m256i		h[4];

		for (int t = 0; t < 4; t++)
		{
			r[t] = m + (Size) Min(j + t, k - 1) * dim;
			a[t] = _mm512_setzero_si512();
		}
		for (int d = 0; d < d32; d += 32)
		{
			__m512i		u = _mm512_loadu_si512((const void *) (x + d));

			a[0] = _mm512_add_epi32(a[0], _mm512_madd_epi16(u, _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) (r[0] + d)))));
			a[1] = _mm512_add_epi32(a[1], _mm512_madd_epi16(u, _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) (r[1] + d)))));
			a[2] = _mm512_add_epi32(a[2], _mm512_madd_epi16(u, _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) (r[2] + d)))));
			a[3] = _mm512_add_epi32(a[3], _mm512_madd_epi16(u, _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) (r[3] + d)))));
		}
		/* fold to 256 bits, then the remainder as the AVX2 kernel takes it */
		for (int t = 0; t < 4; t++)
		{
			h[t] = _mm256_add_epi32(_mm512_castsi512_si256(a[t]), _mm512_extracti64x4_epi64(a[t], 1));
			if (d16 > d32)
				h[t] = _mm256_add_epi32(h[t], _mm256_madd_epi16(x16, LoadI8x16(r[t] + d32)));
			if (d16 < dim && dim >= 16)
				h[t] = _mm256_add_epi32(h[t], _mm256_madd_epi16(xt, LoadI8x16(r[t] + dim - 16)));
		}
		I8StoreRows(hsum256x4_epi32(h[0], h[1], h[2], h[3]), x, r, dim, scale, j, k, out);
	}
}

/* The AVX2 set with the 512-bit routing kernel: the rest has no gain there */
const ScoreahFloatKernels scoreah_float_kernels_avx512bw = {
	"avx512bw", dot_avx2, l2sq_avx2, dot_many_avx2, dot_cross_avx2, dot_many_i8_avx512,
	lut_entries_avx2, lut_ranges_avx2, lut_quantize_avx2, true
};
#endif							/* SCOREAH_X86 */
