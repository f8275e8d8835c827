/*-------------------------------------------------------------------------
 *
 * exact.c
 *	  The exact distance kernels, accumulated in double: portable and
 *	  AVX2+F16C, for vectors in floats or in halves.
 *
 * The kernels are compiled once portably and once with a function-level
 * target attribute; cpu.c picks a set from the CPU's features.  Never
 * -march=native: the same binary must run on any x86-64 or aarch64
 * machine.
 *
 * The exact kernels may not round differently from one another: the
 * SQL operators and the index's re-ranking both call them, and an index
 * scan with exhaustive settings must return exactly a sequential scan's
 * order, whichever kernels the backend picked (or
 * scoreah.force_scalar_kernels forced).  So every exact kernel adds the
 * same terms in the same order and gives the same double to the last
 * bit:
 *
 *	- term i is, in double, a[i] * b[i] (dot product; the norm is the dot
 *	  product of a vector with itself), a[i] * a[i] and b[i] * b[i] (the
 *	  norms of cosine), or d * d with d = a[i] - b[i] (L2), each operation
 *	  rounded on its own: a multiply then an add, never a fused
 *	  multiply-add;
 *	- there are eight partial sums ("lanes"), each starting at +0.  For
 *	  i < n - n % 4, term i goes to lane i % 8; the last n % 4 terms go
 *	  to lane 0.  Each lane adds its terms in increasing i;
 *	- the result is ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)).
 *
 * That is what two AVX2 registers of four doubles compute (lanes 0-3 and
 * 4-7; steps of eight elements, then at most one step of four, then the
 * rest one by one into lane 0; a lane-wise add, then a horizontal sum),
 * and what the portable code spells out with eight scalar variables.
 * Eight lanes rather than four because with one register the chain of
 * dependent adds is the bottleneck (a quarter slower at 100 dimensions).
 * A product of two floats is exact in double (24 + 24 bits of mantissa
 * fit in 53, and the exponents in double's range), so the dot product
 * and norm terms carry no rounding; L2's difference and square, and every
 * addition, round, identically in every variant.  The file is compiled
 * with -ffp-contract=off (Makefile) so that the compiler cannot fuse a
 * multiply and an add in one variant and not in another (on aarch64, FMA
 * is baseline; on x86-64, a function with an FMA target); the AVX2 code
 * uses separate multiply and add intrinsics.  Compilers never reassociate
 * without -ffast-math, so the same source order also gives the same
 * distances on x86-64 and aarch64.
 *
 * Vectors kept in half precision (reordering_storage = float16) convert
 * exactly to float, so the half variants of the exact kernels give
 * exactly the distances of the converted float vectors.
 *
 *-------------------------------------------------------------------------
 */
#include "half.h"
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>
#endif

/* ---- exact distances: portable kernels ---- */

/*
 * Element i of a vector of floats or of halves, as a double.  "half" is a
 * constant wherever this is inlined, so each kernel below exists in a
 * float and a half version without a test in its loop.
 */
static pg_attribute_always_inline double
exact_elem(const void *a, bool half, int i)
{
	if (half)
		return (double) scoreah_half_to_float_inline(((const uint16 *) a)[i]);
	return (double) ((const float *) a)[i];
}

/*
 * Term i + k of each distance, added to the partial sum named.  The
 * portable and the AVX2 kernels share these for the elements they do one
 * at a time.
 */
/*
 * Term i of a dot product (x * y) or of a squared L2 distance ((x - y)^2).
 * "l2" is a constant wherever this is inlined.
 */
static pg_attribute_always_inline double
exact_term(const void *a, bool half, const float *b, int i, bool l2)
{
	double		x = exact_elem(a, half, i);
	double		y = (double) b[i];

	if (l2)
		return (x - y) * (x - y);
	return x * y;
}

#define SUM_TERM(s, k) \
	((s) += exact_term(a, half, b, i + (k), l2))

/* cosine: dot product in d<k>, squared norms of a and b in p<k> and q<k> */
#define COS_TERM(k, dk, pk, qk) \
	do { \
		double		x_ = exact_elem(a, half, i + (k)); \
		double		y_ = (double) b[i + (k)]; \
		(dk) += x_ * y_; \
		(pk) += x_ * x_; \
		(qk) += y_ * y_; \
	} while (0)

/* The final reduction of the eight lanes s0..s7 */
#define EXACT_REDUCE(s) \
	(((s##0 + s##4) + (s##1 + s##5)) + ((s##2 + s##6) + (s##3 + s##7)))

/*
 * The portable kernels: eight scalar lanes, in the order of the file
 * header (blocks of eight, one block of four, the rest into lane 0).
 */
static pg_attribute_always_inline double
sum_portable(const void *a, bool half, const float *b, int n, bool l2)
{
	double		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0,
				s4 = 0,
				s5 = 0,
				s6 = 0,
				s7 = 0;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
	{
		SUM_TERM(s0, 0);
		SUM_TERM(s1, 1);
		SUM_TERM(s2, 2);
		SUM_TERM(s3, 3);
		SUM_TERM(s4, 4);
		SUM_TERM(s5, 5);
		SUM_TERM(s6, 6);
		SUM_TERM(s7, 7);
	}
	if (i + 4 <= n)
	{
		SUM_TERM(s0, 0);
		SUM_TERM(s1, 1);
		SUM_TERM(s2, 2);
		SUM_TERM(s3, 3);
		i += 4;
	}
	for (; i < n; i++)
		SUM_TERM(s0, 0);
	return EXACT_REDUCE(s);
}

static pg_attribute_always_inline void
cosine_portable(const void *a, bool half, const float *b, int n, double *sums)
{
	double		d0 = 0,
				d1 = 0,
				d2 = 0,
				d3 = 0,
				d4 = 0,
				d5 = 0,
				d6 = 0,
				d7 = 0;
	double		p0 = 0,
				p1 = 0,
				p2 = 0,
				p3 = 0,
				p4 = 0,
				p5 = 0,
				p6 = 0,
				p7 = 0;
	double		q0 = 0,
				q1 = 0,
				q2 = 0,
				q3 = 0,
				q4 = 0,
				q5 = 0,
				q6 = 0,
				q7 = 0;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
	{
		COS_TERM(0, d0, p0, q0);
		COS_TERM(1, d1, p1, q1);
		COS_TERM(2, d2, p2, q2);
		COS_TERM(3, d3, p3, q3);
		COS_TERM(4, d4, p4, q4);
		COS_TERM(5, d5, p5, q5);
		COS_TERM(6, d6, p6, q6);
		COS_TERM(7, d7, p7, q7);
	}
	if (i + 4 <= n)
	{
		COS_TERM(0, d0, p0, q0);
		COS_TERM(1, d1, p1, q1);
		COS_TERM(2, d2, p2, q2);
		COS_TERM(3, d3, p3, q3);
		i += 4;
	}
	for (; i < n; i++)
		COS_TERM(0, d0, p0, q0);
	sums[0] = EXACT_REDUCE(d);
	sums[1] = EXACT_REDUCE(p);
	sums[2] = EXACT_REDUCE(q);
}

static double
exact_dot_scalar(const float *a, const float *b, int n)
{
	return sum_portable(a, false, b, n, false);
}

static double
exact_l2sq_scalar(const float *a, const float *b, int n)
{
	return sum_portable(a, false, b, n, true);
}

static void
exact_cosine_scalar(const float *a, const float *b, int n, double *sums)
{
	cosine_portable(a, false, b, n, sums);
}

static double
exact_dot_half_scalar(const uint16 *a, const float *b, int n)
{
	return sum_portable(a, true, b, n, false);
}

static double
exact_l2sq_half_scalar(const uint16 *a, const float *b, int n)
{
	return sum_portable(a, true, b, n, true);
}

static void
exact_cosine_half_scalar(const uint16 *a, const float *b, int n, double *sums)
{
	cosine_portable(a, true, b, n, sums);
}

const ScoreahExactKernels scoreah_exact_kernels_scalar = {
	"scalar",
	exact_dot_scalar,
	exact_l2sq_scalar,
	exact_cosine_scalar,
	exact_dot_half_scalar,
	exact_l2sq_half_scalar,
	exact_cosine_half_scalar,
	scoreah_half_to_float_many_scalar
};

/* ---- exact distances: AVX2 kernels ---- */

#ifdef SCOREAH_X86

/*
 * AVX2 for the double arithmetic, F16C to load halves (every CPU with
 * AVX2 has F16C; both are checked).  No FMA: a fused multiply-add would
 * round differently from the portable kernels.
 */
#define EXACT_TARGET __attribute__((target("avx2,f16c")))

/* Elements i .. i + 3 of a vector of floats or halves, as four doubles */
EXACT_TARGET
static pg_attribute_always_inline __m256d
exact_load4(const void *a, bool half, int i)
{
	if (half)
		return _mm256_cvtps_pd(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *) ((const uint16 *) a + i))));
	return _mm256_cvtps_pd(_mm_loadu_ps((const float *) a + i));
}

/* (v0 + v1) + (v2 + v3): the last step of the reduction */
EXACT_TARGET
static inline double
exact_hsum(__m256d v)
{
	__m128d		s = _mm_hadd_pd(_mm256_castpd256_pd128(v),
								_mm256_extractf128_pd(v, 1));

	return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* v with lane 0 replaced by x */
EXACT_TARGET
static inline __m256d
exact_set_lane0(__m256d v, double x)
{
	return _mm256_blend_pd(v, _mm256_set1_pd(x), 1);
}

/* Terms of four elements: x * y, or (x - y)^2 */
EXACT_TARGET
static pg_attribute_always_inline __m256d
exact_term4(const void *a, bool half, const float *b, int i, bool l2)
{
	__m256d		x = exact_load4(a, half, i);
	__m256d		y = exact_load4(b, false, i);

	if (l2)
	{
		__m256d		d = _mm256_sub_pd(x, y);

		return _mm256_mul_pd(d, d);
	}
	return _mm256_mul_pd(x, y);
}

/*
 * acc0 holds lanes 0-3 and acc1 lanes 4-7: the eight-element steps feed
 * both, the one four-element step acc0, the last n % 4 elements lane 0 of
 * acc0 one at a time.  Then acc0 + acc1 lane-wise is (s0 + s4, s1 + s5,
 * s2 + s6, s3 + s7), and exact_hsum finishes the reduction.
 */
EXACT_TARGET
static pg_attribute_always_inline double
sum_avx2_impl(const void *a, bool half, const float *b, int n, bool l2)
{
	__m256d		acc0 = _mm256_setzero_pd();
	__m256d		acc1 = _mm256_setzero_pd();
	int			i = 0;

	for (; i + 8 <= n; i += 8)
	{
		acc0 = _mm256_add_pd(acc0, exact_term4(a, half, b, i, l2));
		acc1 = _mm256_add_pd(acc1, exact_term4(a, half, b, i + 4, l2));
	}
	if (i + 4 <= n)
	{
		acc0 = _mm256_add_pd(acc0, exact_term4(a, half, b, i, l2));
		i += 4;
	}
	if (i < n)
	{
		double		s0 = _mm256_cvtsd_f64(acc0);

		for (; i < n; i++)
			SUM_TERM(s0, 0);
		acc0 = exact_set_lane0(acc0, s0);
	}
	return exact_hsum(_mm256_add_pd(acc0, acc1));
}

EXACT_TARGET
static pg_attribute_always_inline void
cosine_avx2_impl(const void *a, bool half, const float *b, int n, double *sums)
{
	__m256d		dot0 = _mm256_setzero_pd();
	__m256d		dot1 = _mm256_setzero_pd();
	__m256d		na0 = _mm256_setzero_pd();
	__m256d		na1 = _mm256_setzero_pd();
	__m256d		nb0 = _mm256_setzero_pd();
	__m256d		nb1 = _mm256_setzero_pd();
	int			i = 0;

	for (; i + 8 <= n; i += 8)
	{
		__m256d		x0 = exact_load4(a, half, i);
		__m256d		y0 = exact_load4(b, false, i);
		__m256d		x1 = exact_load4(a, half, i + 4);
		__m256d		y1 = exact_load4(b, false, i + 4);

		dot0 = _mm256_add_pd(dot0, _mm256_mul_pd(x0, y0));
		na0 = _mm256_add_pd(na0, _mm256_mul_pd(x0, x0));
		nb0 = _mm256_add_pd(nb0, _mm256_mul_pd(y0, y0));
		dot1 = _mm256_add_pd(dot1, _mm256_mul_pd(x1, y1));
		na1 = _mm256_add_pd(na1, _mm256_mul_pd(x1, x1));
		nb1 = _mm256_add_pd(nb1, _mm256_mul_pd(y1, y1));
	}
	if (i + 4 <= n)
	{
		__m256d		x0 = exact_load4(a, half, i);
		__m256d		y0 = exact_load4(b, false, i);

		dot0 = _mm256_add_pd(dot0, _mm256_mul_pd(x0, y0));
		na0 = _mm256_add_pd(na0, _mm256_mul_pd(x0, x0));
		nb0 = _mm256_add_pd(nb0, _mm256_mul_pd(y0, y0));
		i += 4;
	}
	if (i < n)
	{
		double		d0 = _mm256_cvtsd_f64(dot0);
		double		p0 = _mm256_cvtsd_f64(na0);
		double		q0 = _mm256_cvtsd_f64(nb0);

		for (; i < n; i++)
			COS_TERM(0, d0, p0, q0);
		dot0 = exact_set_lane0(dot0, d0);
		na0 = exact_set_lane0(na0, p0);
		nb0 = exact_set_lane0(nb0, q0);
	}
	sums[0] = exact_hsum(_mm256_add_pd(dot0, dot1));
	sums[1] = exact_hsum(_mm256_add_pd(na0, na1));
	sums[2] = exact_hsum(_mm256_add_pd(nb0, nb1));
}

EXACT_TARGET
static double
exact_dot_avx2(const float *a, const float *b, int n)
{
	return sum_avx2_impl(a, false, b, n, false);
}

EXACT_TARGET
static double
exact_l2sq_avx2(const float *a, const float *b, int n)
{
	return sum_avx2_impl(a, false, b, n, true);
}

EXACT_TARGET
static void
exact_cosine_avx2(const float *a, const float *b, int n, double *sums)
{
	cosine_avx2_impl(a, false, b, n, sums);
}

EXACT_TARGET
static double
exact_dot_half_avx2(const uint16 *a, const float *b, int n)
{
	return sum_avx2_impl(a, true, b, n, false);
}

EXACT_TARGET
static double
exact_l2sq_half_avx2(const uint16 *a, const float *b, int n)
{
	return sum_avx2_impl(a, true, b, n, true);
}

EXACT_TARGET
static void
exact_cosine_half_avx2(const uint16 *a, const float *b, int n, double *sums)
{
	cosine_avx2_impl(a, true, b, n, sums);
}

/* Eight halves per vcvtph2ps; the rest one by one */
EXACT_TARGET
static void
half_to_float_many_f16c(const uint16 *src, float *dst, int n)
{
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i,
						 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (src + i))));
	for (; i < n; i++)
		dst[i] = scoreah_half_to_float_inline(src[i]);
}

const ScoreahExactKernels scoreah_exact_kernels_avx2 = {
	"avx2",
	exact_dot_avx2,
	exact_l2sq_avx2,
	exact_cosine_avx2,
	exact_dot_half_avx2,
	exact_l2sq_half_avx2,
	exact_cosine_half_avx2,
	half_to_float_many_f16c
};
#endif							/* SCOREAH_X86 */

/* ---- distances from the kernels' sums ---- */

/*
 * Cosine distance from the kernel's sums, 1 - cos(a, b).  With a zero
 * vector the similarity is 0/0 and the result NaN, as in pgvector.
 * Rounding can push |cos| a hair past 1; clamp so the distance stays in
 * [0, 2].
 */
static double
cosine_from_sums(const double *sums)
{
	double		sim = sums[0] / sqrt(sums[1] * sums[2]);

	if (sim > 1)
		sim = 1;
	else if (sim < -1)
		sim = -1;
	return 1 - sim;
}

/*
 * The metric's distance with kernel set k, a in floats or halves: the
 * value of its ordering operator (<->, <#>, <=>).
 */
double
scoreah_exact_distance_with(const ScoreahExactKernels *k, int metric,
							const void *a, bool half, const float *b, int n)
{
	double		sums[3];

	switch (metric)
	{
		case SCOREAH_METRIC_L2:
			return sqrt(half ? k->l2sq_half(a, b, n) : k->l2sq(a, b, n));
		case SCOREAH_METRIC_IP:
			return -(half ? k->dot_half(a, b, n) : k->dot(a, b, n));
		case SCOREAH_METRIC_COSINE:
			if (half)
				k->cosine_half(a, b, n, sums);
			else
				k->cosine(a, b, n, sums);
			return cosine_from_sums(sums);
	}
	Assert(false);				/* metrics are checked where they are read */
	return NAN;
}

