/*-------------------------------------------------------------------------
 *
 * distance.c
 *	  Distance kernels: float kernels for training, routing and lookup
 *	  tables (with run-time CPU dispatch), and exact double-accumulated
 *	  distances shared by the SQL operators and re-ranking.
 *
 * The float kernels are compiled once portably and once with function
 * level target attributes for AVX2+FMA; scoreah_init_kernels() picks one
 * from the CPU's features when the library loads.  Never -march=native:
 * the same binary must run on any x86-64 or aarch64 machine.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "scoreah_algo.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SCOREAH_X86_DISPATCH 1
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

/*
 * Choose the float kernels for this CPU.  force_scalar is for tests and
 * for comparing kernels (GUC scoreah.force_scalar_kernels).
 */
void
scoreah_init_kernels(void)
{
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
	scoreah_init_lut16();
}

const char *
scoreah_float_kernel_name(void)
{
	return scoreah_dot == scoreah_dot_scalar ? "scalar" : float_kernel_name;
}

/* ---- exact distances ---- */

double
scoreah_exact_dot(const float *a, const float *b, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) a[i] * (double) b[i];
	return s;
}

double
scoreah_exact_l2(const float *a, const float *b, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
	{
		double		d = (double) a[i] - (double) b[i];

		s += d * d;
	}
	return sqrt(s);
}

double
scoreah_exact_norm(const float *a, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) a[i] * (double) a[i];
	return sqrt(s);
}

/*
 * Cosine distance, 1 - cos(a, b).  With a zero vector the similarity is
 * 0/0 and the result NaN, as in pgvector.  Rounding can push |cos| a hair
 * past 1; clamp so the distance stays in [0, 2].
 */
double
scoreah_exact_cosine(const float *a, const float *b, int n)
{
	double		dot = 0,
				na = 0,
				nb = 0,
				sim;

	for (int i = 0; i < n; i++)
	{
		dot += (double) a[i] * (double) b[i];
		na += (double) a[i] * (double) a[i];
		nb += (double) b[i] * (double) b[i];
	}
	sim = dot / sqrt(na * nb);
	if (sim > 1)
		sim = 1;
	else if (sim < -1)
		sim = -1;
	return 1 - sim;
}

/*
 * Half precision (binary16) for re-ranking vectors kept at 2 bytes per
 * dimension.  Conversions are done by bit manipulation so every CPU gives
 * the same bits; values beyond the half range become infinities, tiny ones
 * subnormals or zero.
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
 * (fcvt) instructions do, so a SIMD conversion can agree with this one on
 * all 65536 inputs.  Stored vectors never hold NaN anyway.
 */
float
scoreah_half_to_float(uint16 h)
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

/* The value of the metric's ordering operator (<->, <#>, <=>) */
double
scoreah_exact_distance(int metric, const float *a, const float *b, int n)
{
	switch (metric)
	{
		case SCOREAH_METRIC_L2:
			return scoreah_exact_l2(a, b, n);
		case SCOREAH_METRIC_IP:
			return -scoreah_exact_dot(a, b, n);
		case SCOREAH_METRIC_COSINE:
			return scoreah_exact_cosine(a, b, n);
	}
	elog(ERROR, "unknown scoreah metric %d", metric);
	return 0;					/* keep compiler quiet */
}
