/*-------------------------------------------------------------------------
 *
 * distance.c
 *	  Distance kernels: float kernels for training, routing and lookup
 *	  tables, exact double-accumulated distances shared by the SQL
 *	  operators and re-ranking, and half-precision conversions; all with
 *	  run-time CPU dispatch.
 *
 * The kernels are compiled once portably and once with function level
 * target attributes (AVX2+FMA for the float kernels, AVX2+F16C for the
 * exact ones); scoreah_init_kernels() picks from the CPU's features when
 * the library loads.  Never -march=native: the same binary must run on
 * any x86-64 or aarch64 machine.
 *
 * The float kernels may round differently from one another (they only
 * train, route and build lookup tables).  The exact kernels may not: the
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
#include "postgres.h"

#include <math.h>

#include "scoreah_algo.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SCOREAH_X86_DISPATCH 1
#include <cpuid.h>
#include <immintrin.h>
#endif

ScoreahFloatKernel scoreah_dot = scoreah_dot_scalar;
ScoreahFloatKernel scoreah_l2sq = scoreah_l2sq_scalar;
ScoreahDotManyKernel scoreah_dot_many = scoreah_dot_many_scalar;
static const char *float_kernel_name = "scalar";

/*
 * Portable versions.  Four partial sums break the dependency chain so the
 * compiler can keep several additions in flight even without reassociation.
 */
float
scoreah_dot_scalar(const float *a, const float *b, int n)
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

float
scoreah_l2sq_scalar(const float *a, const float *b, int n)
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
void
scoreah_dot_many_scalar(const float *x, const float *m, int k, int dim, float *out)
{
	for (int j = 0; j < k; j++)
		out[j] = scoreah_dot_scalar(x, m + (Size) j * dim, dim);
}

#ifdef SCOREAH_X86_DISPATCH

__attribute__((target("avx2,fma")))
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

__attribute__((target("avx2,fma")))
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

__attribute__((target("avx2,fma")))
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

/*
 * Four rows at a time: each load of x serves four multiply-adds, which
 * halves the loads per flop of the one-row kernel.
 */
__attribute__((target("avx2,fma")))
static void
dot_many_avx2(const float *x, const float *m, int k, int dim, float *out)
{
	int			j = 0;

	for (; j + 4 <= k; j += 4)
	{
		const float *r0 = m + (Size) j * dim;
		const float *r1 = r0 + dim;
		const float *r2 = r1 + dim;
		const float *r3 = r2 + dim;
		__m256		a0 = _mm256_setzero_ps();
		__m256		a1 = _mm256_setzero_ps();
		__m256		a2 = _mm256_setzero_ps();
		__m256		a3 = _mm256_setzero_ps();
		float		t0 = 0,
					t1 = 0,
					t2 = 0,
					t3 = 0;
		int			i = 0;

		for (; i + 8 <= dim; i += 8)
		{
			__m256		xv = _mm256_loadu_ps(x + i);

			a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r0 + i), a0);
			a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r1 + i), a1);
			a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r2 + i), a2);
			a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r3 + i), a3);
		}
		for (; i < dim; i++)
		{
			t0 += x[i] * r0[i];
			t1 += x[i] * r1[i];
			t2 += x[i] * r2[i];
			t3 += x[i] * r3[i];
		}
		out[j] = hsum256(a0) + t0;
		out[j + 1] = hsum256(a1) + t1;
		out[j + 2] = hsum256(a2) + t2;
		out[j + 3] = hsum256(a3) + t3;
	}
	for (; j < k; j++)
		out[j] = dot_avx2(x, m + (Size) j * dim, dim);
}
#endif							/* SCOREAH_X86_DISPATCH */

/* ---- half precision ---- */

/*
 * Half precision (binary16) for re-ranking vectors kept at 2 bytes per
 * dimension.  The portable conversions work on the bits, so every CPU
 * gives the same ones (and F16C's conversion to float agrees with them);
 * values beyond the half range become infinities, tiny ones subnormals
 * or zero.
 */
uint16
scoreah_float_to_half(float f)
{
	union
	{
		float		f;
		uint32		u;
	}			v;
	uint32		sign,
				exp,
				mant;

	v.f = f;
	sign = (v.u >> 16) & 0x8000;
	exp = (v.u >> 23) & 0xFF;
	mant = v.u & 0x7FFFFF;

	if (exp == 0xFF)			/* inf or NaN */
		return (uint16) (sign | 0x7C00 | (mant ? 0x200 : 0));
	if (exp > 142)				/* >= 2^16: overflow */
		return (uint16) (sign | 0x7C00);
	if (exp >= 113)				/* normal half */
	{
		uint32		h = ((exp - 112) << 10) | (mant >> 13);
		uint32		rest = mant & 0x1FFF;

		if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
			h++;				/* may carry into the exponent: still right */
		return (uint16) (sign | h);
	}
	if (exp >= 102)				/* subnormal half */
	{
		uint32		m = mant | 0x800000;
		int			shift = 126 - exp;
		uint32		h = m >> shift;
		uint32		rest = m & ((1u << shift) - 1);
		uint32		halfway = 1u << (shift - 1);

		if (rest > halfway || (rest == halfway && (h & 1)))
			h++;
		return (uint16) (sign | h);
	}
	return (uint16) sign;		/* underflow to zero */
}

/*
 * Half to float is exact: every half is a float.  A signalling NaN comes
 * out quiet (the quiet bit set, payload and sign kept), as IEEE 754
 * prescribes for conversions and as the F16C (vcvtph2ps) and aarch64
 * (fcvt) instructions do, so the SIMD conversion below agrees with this
 * one on all 65536 inputs.  Stored vectors never hold NaN anyway.
 */
static inline float
half_to_float(uint16 h)
{
	union
	{
		float		f;
		uint32		u;
	}			v;
	uint32		sign = (uint32) (h & 0x8000) << 16;
	uint32		exp = (h >> 10) & 0x1F;
	uint32		mant = h & 0x3FF;

	if (exp == 0x1F)
		v.u = sign | 0x7F800000 | (mant << 13) | (mant ? 0x400000 : 0);
	else if (exp > 0)
		v.u = sign | ((exp + 112) << 23) | (mant << 13);
	else if (mant == 0)
		v.u = sign;
	else
	{
		/* subnormal: normalize */
		int			e = -1;

		do
		{
			mant <<= 1;
			e++;
		} while ((mant & 0x400) == 0);
		v.u = sign | ((uint32) (112 - e) << 23) | ((mant & 0x3FF) << 13);
	}
	return v.f;
}

float
scoreah_half_to_float(uint16 h)
{
	return half_to_float(h);
}

static void
half_to_float_many_scalar(const uint16 *src, float *dst, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = half_to_float(src[i]);
}

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
		return (double) half_to_float(((const uint16 *) a)[i]);
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
	half_to_float_many_scalar
};

const ScoreahExactKernels *scoreah_exact_kernels = &scoreah_exact_kernels_scalar;

/* ---- exact distances: AVX2 kernels ---- */

#ifdef SCOREAH_X86_DISPATCH

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
		dst[i] = half_to_float(src[i]);
}

static const ScoreahExactKernels exact_kernels_avx2 = {
	"avx2",
	exact_dot_avx2,
	exact_l2sq_avx2,
	exact_cosine_avx2,
	exact_dot_half_avx2,
	exact_l2sq_half_avx2,
	exact_cosine_half_avx2,
	half_to_float_many_f16c
};

/*
 * F16C from cpuid leaf 1: clang's __builtin_cpu_supports does not know
 * "f16c".  The OS saving the AVX registers, which F16C's VEX encoding
 * needs too, is part of __builtin_cpu_supports("avx2").
 */
static bool
cpu_has_f16c(void)
{
	unsigned int eax,
				ebx,
				ecx,
				edx;

	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return false;
	return (ecx & bit_F16C) != 0;
}
#endif							/* SCOREAH_X86_DISPATCH */

/*
 * The exact kernel sets this CPU runs, scalar first; returns how many.
 * For the self-test, which compares them all whatever the dispatch chose.
 */
int
scoreah_exact_available(const ScoreahExactKernels **sets, int max)
{
	int			n = 0;

	if (n < max)
		sets[n++] = &scoreah_exact_kernels_scalar;
#ifdef SCOREAH_X86_DISPATCH
	__builtin_cpu_init();
	if (n < max && __builtin_cpu_supports("avx2") && cpu_has_f16c())
		sets[n++] = &exact_kernels_avx2;
#endif
	return n;
}

const char *
scoreah_exact_kernel_name(void)
{
	return scoreah_exact_kernels->name;
}

/* ---- exact distances: the functions everything calls ---- */

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
static double
exact_distance_with(const ScoreahExactKernels *k, int metric,
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
	elog(ERROR, "unknown scoreah metric %d", metric);
	return 0;					/* keep compiler quiet */
}

double
scoreah_exact_dot(const float *a, const float *b, int n)
{
	return scoreah_exact_kernels->dot(a, b, n);
}

double
scoreah_exact_l2(const float *a, const float *b, int n)
{
	return sqrt(scoreah_exact_kernels->l2sq(a, b, n));
}

/* The dot product of a with itself: the same terms as the norm's */
double
scoreah_exact_norm(const float *a, int n)
{
	return sqrt(scoreah_exact_kernels->dot(a, a, n));
}

double
scoreah_exact_cosine(const float *a, const float *b, int n)
{
	double		sums[3];

	scoreah_exact_kernels->cosine(a, b, n, sums);
	return cosine_from_sums(sums);
}

/* The value of the metric's ordering operator (<->, <#>, <=>) */
double
scoreah_exact_distance(int metric, const float *a, const float *b, int n)
{
	return exact_distance_with(scoreah_exact_kernels, metric, a, false, b, n);
}

/*
 * The same for a vector a kept in half precision: bit for bit the
 * distance of a converted with scoreah_half_to_float_many, without the
 * float copy.
 */
double
scoreah_exact_distance_half(int metric, const uint16 *a, const float *b, int n)
{
	return exact_distance_with(scoreah_exact_kernels, metric, a, true, b, n);
}

void
scoreah_half_to_float_many(const uint16 *src, float *dst, int n)
{
	scoreah_exact_kernels->half_to_float(src, dst, n);
}

/* ---- choosing the kernels ---- */

/*
 * Choose the kernels for this CPU.  scoreah.force_scalar_kernels then
 * replaces them with the portable ones (scoreah.c), for tests and for
 * comparing kernels.
 */
void
scoreah_init_kernels(void)
{
	const ScoreahExactKernels *sets[4];

	scoreah_dot = scoreah_dot_scalar;
	scoreah_l2sq = scoreah_l2sq_scalar;
	scoreah_dot_many = scoreah_dot_many_scalar;
	float_kernel_name = "scalar";
#ifdef SCOREAH_X86_DISPATCH
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		scoreah_dot = dot_avx2;
		scoreah_l2sq = l2sq_avx2;
		scoreah_dot_many = dot_many_avx2;
		float_kernel_name = "avx2";
	}
#endif
	/* the best exact kernels: the last available */
	scoreah_exact_kernels = sets[scoreah_exact_available(sets, lengthof(sets)) - 1];
	scoreah_init_lut16();
}

const char *
scoreah_float_kernel_name(void)
{
	return scoreah_dot == scoreah_dot_scalar ? "scalar" : float_kernel_name;
}

/* ---- self-test ---- */

/*
 * A float of the given kind for the self-test: 0 uniform in [-1, 1),
 * 1 mixed magnitudes (2^-20 .. 2^20), 2 any finite float (random sign,
 * exponent and mantissa: zeros, subnormals, up to FLT_MAX, so terms of
 * one sum differ by hundreds of binary orders), 3 small integers (exact
 * sums, and many exact cancellations).
 */
static float
selftest_float(ScoreahRandom *rng, int kind)
{
	uint64		r = scoreah_random_next(rng);
	union
	{
		float		f;
		uint32		u;
	}			v;

	switch (kind)
	{
		case 0:
			return (float) (scoreah_random_double(rng) * 2 - 1);
		case 1:
			return (float) ldexp(scoreah_random_double(rng) + 1,
								 (int) (r % 41) - 20) * ((r >> 8) & 1 ? -1 : 1);
		case 2:
			v.u = (uint32) r & 0x807FFFFF;	/* sign and mantissa */
			v.u |= (uint32) ((r >> 32) % 255) << 23;	/* exponent 0..254 */
			return v.f;
		default:
			return (float) ((int) (r % 7) - 3);
	}
}

/*
 * Compare every exact kernel set this CPU runs with the portable one, bit
 * for bit: dot product, squared L2, cosine's three sums, the same from
 * half-precision vectors, and the distances the operators return; at
 * every length from 0 to 300 and a few long ones, on floats of each kind
 * of selftest_float.  Also checks that each set's half kernels give the
 * distances of the converted vectors, and the conversion of all 65536
 * halves.  Returns the number of sets compared (scalar included);
 * *mismatch receives a description of the first disagreement (NULL when
 * all agree).
 */
int
scoreah_exact_selftest(uint64 seed, const char **mismatch)
{
	static const int longLengths[] = {511, 1000, 4099, 16000};
	static const char *const kindNames[] = {
		"uniform", "mixed-magnitude", "any-finite", "small-integer"
	};
	const ScoreahExactKernels *sets[4];
	const ScoreahExactKernels *ref = &scoreah_exact_kernels_scalar;
	int			nsets = scoreah_exact_available(sets, lengthof(sets));
	int			maxlen = longLengths[lengthof(longLengths) - 1];
	ScoreahRandom rng;

	/* one spare element in front, so the vectors start unaligned */
	float	   *abuf = palloc(sizeof(float) * (maxlen + 1));
	float	   *b = palloc(sizeof(float) * maxlen);
	uint16	   *hbuf = palloc(sizeof(uint16) * (maxlen + 1));
	float	   *conv = palloc(sizeof(float) * 65536);
	float	   *want = palloc(sizeof(float) * 65536);
	uint16	   *all = palloc(sizeof(uint16) * 65536);

	*mismatch = NULL;
	scoreah_random_init(&rng, seed);

	for (int step = 0; step <= 300 + lengthof(longLengths) && *mismatch == NULL; step++)
	{
		int			n = step <= 300 ? step : longLengths[step - 301];

		for (int kind = 0; kind < 4 && *mismatch == NULL; kind++)
		{
			float	   *a = abuf + (step & 1);
			uint16	   *h = hbuf + (step & 1);

			for (int i = 0; i < n; i++)
			{
				a[i] = selftest_float(&rng, kind);
				b[i] = selftest_float(&rng, kind);
				/* finite halves: any sign, exponent 0..30, mantissa */
				h[i] = (uint16) (scoreah_random_next(&rng) & 0xFFFF);
				if ((h[i] & 0x7C00) == 0x7C00)
					h[i] &= 0xBFFF;
			}
			/* b close to a: L2 of tiny differences */
			if (kind == 0 && (step & 2))
				for (int i = 0; i < n; i++)
					b[i] = a[i] + (i % 3 == 0 ? 1e-6f : 0);

			for (int s = 0; s < nsets && *mismatch == NULL; s++)
			{
				const ScoreahExactKernels *k = sets[s];
				double		want3[3],
							got3[3],
							w,
							g;
				const char *what = NULL;

				/* the kernels' sums */
				w = ref->dot(a, b, n);
				g = k->dot(a, b, n);
				if (memcmp(&w, &g, sizeof(double)) != 0)
					what = "dot product";
				w = ref->dot(a, a, n);
				g = k->dot(a, a, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "norm";
				w = ref->l2sq(a, b, n);
				g = k->l2sq(a, b, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "squared L2";
				ref->cosine(a, b, n, want3);
				k->cosine(a, b, n, got3);
				if (what == NULL && memcmp(want3, got3, sizeof(want3)) != 0)
					what = "cosine sums";
				w = ref->dot_half(h, b, n);
				g = k->dot_half(h, b, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "dot product from halves";
				w = ref->l2sq_half(h, b, n);
				g = k->l2sq_half(h, b, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "squared L2 from halves";
				ref->cosine_half(h, b, n, want3);
				k->cosine_half(h, b, n, got3);
				if (what == NULL && memcmp(want3, got3, sizeof(want3)) != 0)
					what = "cosine sums from halves";

				/* the operators' values, and halves against converted halves */
				k->half_to_float(h, conv, n);
				for (int metric = SCOREAH_METRIC_L2;
					 metric <= SCOREAH_METRIC_COSINE && what == NULL; metric++)
				{
					double		c;

					w = exact_distance_with(ref, metric, a, false, b, n);
					g = exact_distance_with(k, metric, a, false, b, n);
					if (memcmp(&w, &g, sizeof(double)) != 0)
						what = "distance";
					g = exact_distance_with(k, metric, h, true, b, n);
					c = exact_distance_with(k, metric, conv, false, b, n);
					if (what == NULL && memcmp(&g, &c, sizeof(double)) != 0)
						what = "distance from halves against converted halves";
				}
				if (what)
					*mismatch = psprintf("%s: %s at %d dimensions (%s values)",
										 k->name, what, n, kindNames[kind]);
			}
		}
	}

	/* every half, through the vector loop and (shifted) the tail */
	for (int i = 0; i < 65536; i++)
	{
		all[i] = (uint16) i;
		want[i] = half_to_float((uint16) i);
	}
	for (int s = 0; s < nsets && *mismatch == NULL; s++)
	{
		for (int shift = 0; shift < 8 && *mismatch == NULL; shift++)
		{
			sets[s]->half_to_float(all + shift, conv, 65536 - shift);
			if (memcmp(conv, want + shift, sizeof(float) * (65536 - shift)) != 0)
				*mismatch = psprintf("%s: half to float conversion", sets[s]->name);
		}
	}

	pfree(abuf);
	pfree(b);
	pfree(hbuf);
	pfree(conv);
	pfree(want);
	pfree(all);
	return nsets;
}
