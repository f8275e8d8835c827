/*-------------------------------------------------------------------------
 *
 * distance.c
 *	  The exact distances everything calls: the SQL operators, the index's
 *	  re-ranking, norms and unit vectors, through the exact kernel set this
 *	  process runs (cpu.c).
 *
 * Every exact kernel set gives the same bits (exact.c), so an index scan
 * with exhaustive settings returns exactly a sequential scan's order
 * whichever set a backend picked.
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

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
	return scoreah_exact_distance_with(scoreah_exact_kernels, SCOREAH_METRIC_COSINE,
									   a, false, b, n);
}

/* The value of the metric's ordering operator (<->, <#>, <=>) */
double
scoreah_exact_distance(int metric, const float *a, const float *b, int n)
{
	return scoreah_exact_distance_with(scoreah_exact_kernels, metric, a, false, b, n);
}

/*
 * The same for a vector a kept in half precision: bit for bit the
 * distance of a converted with scoreah_half_to_float_many, without the
 * float copy.
 */
double
scoreah_exact_distance_half(int metric, const uint16 *a, const float *b, int n)
{
	return scoreah_exact_distance_with(scoreah_exact_kernels, metric, a, true, b, n);
}

void
scoreah_half_to_float_many(const uint16 *src, float *dst, int n)
{
	scoreah_exact_kernels->half_to_float(src, dst, n);
}

double
scoreah_unit_scale(double norm)
{
	if (!(norm > 0) || isinf(norm))
		return 1.0;
	return ldexp(1.0, -ilogb(norm));
}

/*
 * x times a power of 2, in double and rounded once to float: the same
 * bits as a float product wherever the scale is a float, and right where
 * it is not (2^128 and more, for vectors of denormal elements, which a
 * float scale made infinite).
 */
void
scoreah_scale(const float *x, int dim, double scale, float *out)
{
	for (int i = 0; i < dim; i++)
		out[i] = (float) (x[i] * scale);
}

/*
 * The unit vector of x, element by element x[i] / |x| rounded once to
 * float, with the norm of the exact kernels: cosine rows and queries, and
 * spherical k-means centers, are all normalized this one way.
 */
double
scoreah_normalize(const float *x, int dim, float *out)
{
	double		norm = scoreah_exact_norm(x, dim);

	if (norm > 0)
		for (int i = 0; i < dim; i++)
			out[i] = (float) (x[i] / norm);
	else if (out != x)
		memcpy(out, x, sizeof(float) * dim);
	return norm;
}
