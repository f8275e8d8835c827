/*-------------------------------------------------------------------------
 *
 * scoreah_algo.h
 *	  The algorithms of scoreah, free of pages and buffers: distance
 *	  kernels, k-means, product-quantization codebooks, anisotropic
 *	  encoding, lookup tables and the LUT16 scoring kernel.
 *
 * These files use palloc and CHECK_FOR_INTERRUPTS but nothing of the
 * storage layer, so they can be tested and benchmarked on arrays in memory
 * (see the scoreah_debug_* SQL functions).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCOREAH_ALGO_H
#define SCOREAH_ALGO_H

#include "postgres.h"

/* Metric of an operator class (value of support function 1) */
#define SCOREAH_METRIC_L2		1
#define SCOREAH_METRIC_IP		2
#define SCOREAH_METRIC_COSINE	3

#define SCOREAH_CENTERS			16	/* 4-bit codes: 16 centers per block */
#define SCOREAH_GROUP_ROWS		32	/* rows scored together by LUT16 */

/* ---- distance.c: float kernels with run-time CPU dispatch ---- */

/* Float kernels used for training, routing and lookup tables */
typedef float (*ScoreahFloatKernel) (const float *a, const float *b, int n);
extern ScoreahFloatKernel scoreah_dot;
extern ScoreahFloatKernel scoreah_l2sq;

typedef void (*ScoreahDotManyKernel) (const float *x, const float *m, int k,
									  int dim, float *out);
extern ScoreahDotManyKernel scoreah_dot_many;
extern void scoreah_dot_many_scalar(const float *x, const float *m, int k,
									int dim, float *out);

extern void scoreah_init_kernels(void);
extern const char *scoreah_float_kernel_name(void);

/* Scalar reference versions (for tests against the dispatched ones) */
extern float scoreah_dot_scalar(const float *a, const float *b, int n);
extern float scoreah_l2sq_scalar(const float *a, const float *b, int n);

/*
 * Exact distances, accumulated in double.  The SQL operators and the
 * re-ranking step share these, so an index scan orders rows exactly as a
 * sequential scan that sorts by the operator.  Every kernel set gives the
 * same bits (one fixed summation order: see distance.c), so which one a
 * backend dispatched to never changes a distance.
 */
extern double scoreah_exact_l2(const float *a, const float *b, int n);
extern double scoreah_exact_dot(const float *a, const float *b, int n);
extern double scoreah_exact_cosine(const float *a, const float *b, int n);
extern double scoreah_exact_norm(const float *a, int n);
extern double scoreah_exact_distance(int metric, const float *a, const float *b, int n);

/*
 * The same distance for a vector a kept in half precision: bit for bit
 * scoreah_exact_distance() of a converted to float, without the copy.
 */
extern double scoreah_exact_distance_half(int metric, const uint16 *a,
										  const float *b, int n);

/* One set of exact kernels: sums in the fixed order, a in floats or halves */
typedef struct ScoreahExactKernels
{
	const char *name;
	double		(*dot) (const float *a, const float *b, int n);
	double		(*l2sq) (const float *a, const float *b, int n);
	/* sums[0] = a . b, sums[1] = |a|^2, sums[2] = |b|^2 */
	void		(*cosine) (const float *a, const float *b, int n, double *sums);
	double		(*dot_half) (const uint16 *a, const float *b, int n);
	double		(*l2sq_half) (const uint16 *a, const float *b, int n);
	void		(*cosine_half) (const uint16 *a, const float *b, int n,
								double *sums);
	void		(*half_to_float) (const uint16 *src, float *dst, int n);
} ScoreahExactKernels;

extern const ScoreahExactKernels *scoreah_exact_kernels;	/* dispatched */
extern const ScoreahExactKernels scoreah_exact_kernels_scalar;
extern int	scoreah_exact_available(const ScoreahExactKernels **sets, int max);
extern const char *scoreah_exact_kernel_name(void);
extern int	scoreah_exact_selftest(uint64 seed, const char **mismatch);

/* IEEE 754 half precision, round to nearest even; NaNs come back quiet */
extern uint16 scoreah_float_to_half(float f);
extern float scoreah_half_to_float(uint16 h);
/* n halves to floats (F16C when the CPU has it), same bits as the above */
extern void scoreah_half_to_float_many(const uint16 *src, float *dst, int n);

/* ---- random.c-like helpers (in kmeans.c): deterministic PRNG ---- */
typedef struct ScoreahRandom
{
	uint64		s;
} ScoreahRandom;

extern void scoreah_random_init(ScoreahRandom *r, uint64 seed);
extern uint64 scoreah_random_next(ScoreahRandom *r);
extern double scoreah_random_double(ScoreahRandom *r);	/* [0, 1) */
extern uint64 scoreah_random_below(ScoreahRandom *r, uint64 n);

/* ---- kmeans.c ---- */

typedef struct ScoreahKmeansParams
{
	int			k;
	int			iterations;
	int			minClusterSize; /* re-seed clusters smaller than this */
	bool		spherical;		/* unit-length centers */
	bool		randomInit;		/* else k-means++ */
	uint64		seed;
} ScoreahKmeansParams;

/*
 * Cluster n points of dimension dim into params->k centers (written to
 * centers, k x dim).  Returns the number of clusters that ended up empty.
 */
extern int	scoreah_kmeans(const float *data, int n, int dim,
						   const ScoreahKmeansParams *params, float *centers);

/* Index of the nearest center by squared L2 (cnorms: squared norms) */
extern int	scoreah_nearest_l2(const float *x, const float *centers,
							   const float *cnorms, int k, int dim, float *dist);

/* ---- pq.c: model, codebooks, encoding, lookup tables, LUT16 ---- */

/*
 * The trained model of an index: the tree's centroids and the shared PQ
 * codebooks.  Codebooks are stored block after block; block b covers
 * dimensions [b * dpb, min(dim, (b + 1) * dpb)) and holds 16 centers of
 * that width, so the codebook of block b starts at float 16 * b * dpb.
 */
typedef struct ScoreahModelData
{
	int			dim;
	int			metric;
	int			nleaves;
	int			nblocks;
	int			dpb;
	bool		residual;
	bool		quantizeCentroids;
	float	   *centroids;		/* nleaves x dim */
	float	   *centroidNorms;	/* squared norms, nleaves */
	float	   *codebooks;		/* 16 x dim floats */
	int8	   *qcentroids;		/* nleaves x dim, when quantized */
	float	   *qscales;		/* per dimension: max |c_d| / 127 */
} ScoreahModelData;

typedef ScoreahModelData *ScoreahModel;

#define ScoreahBlockWidth(m, b) \
	(Min((m)->dpb, (m)->dim - (b) * (m)->dpb))
#define ScoreahCodebook(m, b) \
	((m)->codebooks + 16 * (b) * (m)->dpb)

extern void scoreah_pq_train(ScoreahModel model, const float *samples, int n,
							 int iterations, uint64 seed);
extern void scoreah_pq_encode(ScoreahModel model, const float *residual,
							  const float *original, double threshold,
							  uint8 *codes);
extern double scoreah_parallel_cost_multiplier(double threshold, double sqnorm, int dim);
extern void scoreah_model_residual(ScoreahModel model, const float *x, int leaf,
								   float *out);
extern void scoreah_quantize_centroids(ScoreahModel model);
extern void scoreah_route_scores(ScoreahModel model, const float *query,
								 float *scores);

/* Per-query lookup table */
typedef struct ScoreahLutData
{
	int			nblocks;
	float	   *flut;			/* nblocks x 16 float distances */
	uint8	   *qlut;			/* nblocks x 16, (flut - min_b) * scale */
	float		scale;			/* integer units per distance unit */
	float		offset;			/* sum of the per-block minima */
} ScoreahLutData;

typedef ScoreahLutData *ScoreahLut;

extern void scoreah_lut_alloc(ScoreahLut lut, int nblocks);
extern void scoreah_lut_build(ScoreahModel model, const float *query,
							  const float *center, ScoreahLut lut);
extern void scoreah_lut_quantize(ScoreahLut lut);

/* Codes: packing into the LUT16 group layout */
extern void scoreah_pack_codes(uint8 *groupCodes, int row, const uint8 *codes,
							   int nblocks);
extern uint8 scoreah_unpack_code(const uint8 *groupCodes, int row, int block);

/* LUT16 scoring of one group of 32 rows: out[i] = sum of qlut entries */
typedef void (*ScoreahLut16Kernel) (const uint8 *codes, const uint8 *qlut,
									int nblocks, uint32 *out);
extern ScoreahLut16Kernel scoreah_lut16_scan;
extern void scoreah_lut16_scan_scalar(const uint8 *codes, const uint8 *qlut,
									  int nblocks, uint32 *out);
extern const char *scoreah_lut16_kernel_name(void);
extern void scoreah_init_lut16(void);
extern int	scoreah_lut16_available(const char **names, ScoreahLut16Kernel *fns, int max);
extern int	scoreah_lut16_selftest(int nblocks, int ngroups, uint64 seed,
								   const char **mismatch);

#endif							/* SCOREAH_ALGO_H */
