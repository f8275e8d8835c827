/*-------------------------------------------------------------------------
 *
 * vector.c
 *	  Vector functions and operators on real[]: l2_distance (<->),
 *	  inner_product, negative inner product (<#>), cosine_distance (<=>),
 *	  vector_dims, l2_norm and l2_normalize, named as in pgvector so that
 *	  queries carry over.  Also how the index reads the vectors of its
 *	  columns: real[], or pgvector's vector and halfvec by their layout.
 *
 * A vector is a one-dimensional real[] without NULLs, NaN or infinities.
 * Distances accumulate in double: float sums of a few hundred terms lose
 * digits that users then see as unstable orderings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "scoreah.h"

PG_FUNCTION_INFO_V1(scoreah_l2_distance);
PG_FUNCTION_INFO_V1(scoreah_inner_product);
PG_FUNCTION_INFO_V1(scoreah_negative_inner_product);
PG_FUNCTION_INFO_V1(scoreah_cosine_distance);
PG_FUNCTION_INFO_V1(scoreah_vector_dims);
PG_FUNCTION_INFO_V1(scoreah_l2_norm);
PG_FUNCTION_INFO_V1(scoreah_l2_normalize);

/* Finite elements only: NaN and infinities have no place in a distance */
static void
CheckFinite(const float *x, int n, const char *what)
{
	if (scoreah_all_finite(x, n))
		return;
	for (int i = 0; i < n; i++)
	{
		if (isnan(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain NaN (element %d)", what, i + 1)));
		if (isinf(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain infinite values (element %d)",
							what, i + 1)));
	}
}

/*
 * Check that an array is a valid vector and return its elements (pointing
 * into the array, which must stay alive) and dimension count.
 */
float *
ScoreahArrayToVector(ArrayType *array, int *dim, const char *what)
{
	int			n;
	float	   *x;

	if (ARR_ELEMTYPE(array) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be of type real[]", what)));
	if (ARR_NDIM(array) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must have at least 1 dimension", what),
				 errdetail("The array is empty.")));
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional",
						what, ARR_NDIM(array))));
	if (array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what)));

	n = ARR_DIMS(array)[0];
	x = (float *) ARR_DATA_PTR(array);
	CheckFinite(x, n, what);
	*dim = n;
	return x;
}

/*
 * The elements of a pgvector vector or halfvec datum (already detoasted),
 * checked against the type's layout.
 */
static const char *
PgvectorElements(const struct varlena *v, int format, int *dim, const char *what)
{
	const ScoreahPgvectorHeader *h = (const ScoreahPgvectorHeader *) v;
	Size		elem = format == SCOREAH_FORMAT_HALFVEC ? sizeof(uint16) : sizeof(float);

	if (VARATT_IS_EXTENDED(v) || h->dim < 1 || h->dim > SCOREAH_PGVECTOR_MAX_DIM ||
		VARSIZE(v) != SCOREAH_PGVECTOR_HDRSZ + elem * h->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s is not a valid %s value", what,
						format == SCOREAH_FORMAT_HALFVEC ? "halfvec" : "vector"),
				 errdetail("%d dimensions in %u bytes.", (int) h->dim, (unsigned) VARSIZE(v))));
	*dim = h->dim;
	return (const char *) v + SCOREAH_PGVECTOR_HDRSZ;
}

/*
 * The vector a datum of the column's format holds, as floats, checked:
 * one-dimensional real[] without NULL, NaN or infinity, or a valid
 * pgvector vector or halfvec.  Points into the detoasted datum for real[]
 * and vector; a halfvec's halves are converted into palloc'd floats
 * (exactly: every half is a float).  *dim receives the dimension count.
 */
float *
ScoreahDatumToVector(int format, Datum value, int *dim, const char *what)
{
	struct varlena *v;
	const char *elems;
	float	   *x;

	if (format == SCOREAH_FORMAT_ARRAY)
		return ScoreahArrayToVector(DatumGetArrayTypeP(value), dim, what);
	v = PG_DETOAST_DATUM(value);
	elems = PgvectorElements(v, format, dim, what);
	if (format == SCOREAH_FORMAT_VECTOR)
		x = (float *) elems;
	else
	{
		x = palloc(sizeof(float) * *dim);
		scoreah_half_to_float_many((const uint16 *) elems, x, *dim);
	}
	CheckFinite(x, *dim, what);
	return x;
}

void
ScoreahCheckDimensions(int expected, int actual)
{
	if (expected != actual)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", expected, actual)));
}

/*
 * A row or query vector in the model's units (scaled by the metapage's
 * scale) must keep its squared distances to centroids and codewords finite
 * in single precision.  Vectors within SCOREAH_MAX_NORM_RATIO times the
 * sample's mean norm, rounded down to a power of 2, do; larger ones are
 * refused.  The mean norm is a figure of the table's rows: the detail names
 * it only to a role that may read them all (SELECT on the table heapOid, no
 * row-level security), as scoreah_index_info does; InvalidOid names it (the
 * build's owner).  The rounding keeps the bound itself from giving it away:
 * a role that may not read the rows, trying queries or inserts of growing
 * norms, learns only its power of 2 (exactly, it recovered 7 digits).
 */
void
ScoreahCheckModelRange(const float *scaled, const float *raw, int dim, double meanNorm,
					   double scale, const char *what, Oid heapOid)
{
	double		norm = scoreah_exact_norm(scaled, dim);
	double		mean = meanNorm > 0 && isfinite(meanNorm) ?
		ldexp(1.0, ilogb(meanNorm)) * scale : 1.0;

	if (!(norm <= SCOREAH_MAX_NORM_RATIO * mean))
	{
		bool		show = !OidIsValid(heapOid) || ScoreahMayReadAllRows(heapOid);

		/*
		 * The norm as given: the scaled one may have overflowed the
		 * model's units (a tiny scale's), where a row of norm 1.7 in an
		 * index of rows about 1e-40 was said to be "beyond single
		 * precision".
		 */
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s is too large for this scoreah index: its norm is %s, more than %g times the mean norm of the rows the index was built on (rounded down to a power of 2)",
						what, psprintf("%g", scoreah_exact_norm(raw, dim)),
						SCOREAH_MAX_NORM_RATIO),
				 show ? errdetail("The mean norm is %g.", meanNorm) : 0,
				 errhint("REINDEX once the table holds rows of this magnitude.")));
	}
}

/* Both operands of a binary function: valid and of the same dimension */
static void
GetPair(FunctionCallInfo fcinfo, float **a, float **b, int *dim)
{
	int			na,
				nb;

	*a = ScoreahArrayToVector(PG_GETARG_ARRAYTYPE_P(0), &na, "vector");
	*b = ScoreahArrayToVector(PG_GETARG_ARRAYTYPE_P(1), &nb, "vector");
	if (na != nb)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d", na, nb)));
	*dim = na;
}

Datum
scoreah_l2_distance(PG_FUNCTION_ARGS)
{
	float	   *a,
			   *b;
	int			dim;

	GetPair(fcinfo, &a, &b, &dim);
	PG_RETURN_FLOAT8(scoreah_exact_l2(a, b, dim));
}

Datum
scoreah_inner_product(PG_FUNCTION_ARGS)
{
	float	   *a,
			   *b;
	int			dim;

	GetPair(fcinfo, &a, &b, &dim);
	PG_RETURN_FLOAT8(scoreah_exact_dot(a, b, dim));
}

Datum
scoreah_negative_inner_product(PG_FUNCTION_ARGS)
{
	float	   *a,
			   *b;
	int			dim;

	GetPair(fcinfo, &a, &b, &dim);
	PG_RETURN_FLOAT8(-scoreah_exact_dot(a, b, dim));
}

Datum
scoreah_cosine_distance(PG_FUNCTION_ARGS)
{
	float	   *a,
			   *b;
	int			dim;

	GetPair(fcinfo, &a, &b, &dim);
	PG_RETURN_FLOAT8(scoreah_exact_cosine(a, b, dim));
}

Datum
scoreah_vector_dims(PG_FUNCTION_ARGS)
{
	int			dim;

	(void) ScoreahArrayToVector(PG_GETARG_ARRAYTYPE_P(0), &dim, "vector");
	PG_RETURN_INT32(dim);
}

Datum
scoreah_l2_norm(PG_FUNCTION_ARGS)
{
	int			dim;
	float	   *a = ScoreahArrayToVector(PG_GETARG_ARRAYTYPE_P(0), &dim, "vector");

	PG_RETURN_FLOAT8(scoreah_exact_norm(a, dim));
}

/*
 * Unit-length copy of a vector.  The zero vector has no direction and is
 * returned unchanged (pgvector does the same).  The result is written
 * straight into a new one-dimensional array (lower bound 1, as
 * construct_array makes it), not through a float copy and an array of
 * Datums, which took three times the result's memory besides it: a
 * backend's peak for l2_normalize(array_fill(2::real, ARRAY[130000000]))
 * (520 MB) was 3.07 GB, 1.55 GB now (1.03 GB of it array_fill's).
 */
Datum
scoreah_l2_normalize(PG_FUNCTION_ARGS)
{
	int			dim;
	float	   *a = ScoreahArrayToVector(PG_GETARG_ARRAYTYPE_P(0), &dim, "vector");
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + sizeof(float4) * (Size) dim;
	ArrayType  *result = (ArrayType *) palloc(nbytes);

	memset(result, 0, ARR_OVERHEAD_NONULLS(1));
	SET_VARSIZE(result, nbytes);
	result->ndim = 1;
	result->dataoffset = 0;		/* no NULL bitmap */
	result->elemtype = FLOAT4OID;
	ARR_DIMS(result)[0] = dim;
	ARR_LBOUND(result)[0] = 1;
	scoreah_normalize(a, dim, (float *) ARR_DATA_PTR(result));
	PG_RETURN_ARRAYTYPE_P(result);
}
