/*-------------------------------------------------------------------------
 *
 * scoreah_algo.h
 *	  The algorithms of scoreah, free of pages and buffers: deterministic
 *	  random numbers, distance kernels, k-means, product-quantization
 *	  codebooks and anisotropic encoding, lookup tables and the LUT16
 *	  scoring kernels, routing, the top-N buffer, and the CPU dispatch that
 *	  picks kernels at run time.
 *
 * Everything declared here builds both into the extension and, without a
 * server, into the unit test binary (port.h says how).  Files depend on
 * each other in one direction only:
 *
 *	random, half, topn				(nothing)
 *	float, exact, lut16_<isa>		(half)
 *	cpu								(the kernel files: it registers them)
 *	kmeans, lut, route, pq			(cpu's dispatched kernels, random)
 *	selftest						(cpu's registries)
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCOREAH_ALGO_H
#define SCOREAH_ALGO_H

#include "port.h"

/* Metric of an operator class (value of support function 1) */
#define SCOREAH_METRIC_L2		1
#define SCOREAH_METRIC_IP		2
#define SCOREAH_METRIC_COSINE	3

#define SCOREAH_CENTERS			16	/* 4-bit codes: 16 centers per block */
#define SCOREAH_GROUP_ROWS		32	/* rows scored together by LUT16 */

/* ---- random.c: deterministic PRNG (splitmix64) ---- */

typedef struct ScoreahRandom
{
	uint64		s;
} ScoreahRandom;

extern void scoreah_random_init(ScoreahRandom *r, uint64 seed);
extern uint64 scoreah_random_next(ScoreahRandom *r);
extern double scoreah_random_double(ScoreahRandom *r);	/* [0, 1) */
extern uint64 scoreah_random_below(ScoreahRandom *r, uint64 n);
/* Fisher-Yates over n rows of dim floats, and tags[] with them if given */
extern void scoreah_shuffle_rows(float *rows, uint64 *tags, int n, int dim,
								 ScoreahRandom *r);

/* ---- four lanes of four floats, for choices among 16 centers ---- */

/*
 * GCC and clang vector extensions, compiled for whatever the target has
 * (SSE2, NEON): the argmin over a codebook's 16 centers without a branch
 * on the data.  Which center wins is random, so branches on it mispredict
 * about half the time; a chain of 16 conditional moves is 16 deep.
 */
typedef float ScoreahV4f __attribute__((vector_size(16)));
typedef int32 ScoreahV4i __attribute__((vector_size(16)));

/* Where x < *best (lane by lane), take x and its index */
static inline void
scoreah_v4_min_step(ScoreahV4f x, ScoreahV4i idx, ScoreahV4f *best, ScoreahV4i *bestj)
{
	ScoreahV4i	lt = x < *best;

	*best = (ScoreahV4f) (((ScoreahV4i) x & lt) | ((ScoreahV4i) *best & ~lt));
	*bestj = (idx & lt) | (*bestj & ~lt);
}

/*
 * The index in the lowest lane of best, the lower index on ties (lanes
 * hold interleaved indices, so lane order is not index order); its value
 * in *v.  No branch either: the lowest value first, then the least index
 * among the lanes holding it (minss and conditional moves).
 */
static inline int
scoreah_v4_argmin(ScoreahV4f best, ScoreahV4i bestj, float *v)
{
	float		m = best[0];
	ScoreahV4i	eq;
	ScoreahV4i	cand;
	int			j;

	for (int l = 1; l < 4; l++)
		m = best[l] < m ? best[l] : m;
	eq = best == m;
	cand = (bestj & eq) | (0x7fffffff & ~eq);
	j = cand[0];
	for (int l = 1; l < 4; l++)
		j = cand[l] < j ? cand[l] : j;
	*v = m;
	return j;
}

/*
 * The largest |x| of an int16 query that dot_many_i8 takes at dim
 * dimensions: dim * max|x| * 127 (int8 rows) must fit an int32 sum.
 */
static inline int
scoreah_i8_query_max(int dim)
{
	int64		m = (int64) 2147483647 / ((int64) 127 * (dim > 0 ? dim : 1));

	return (int) (m < 32767 ? m : 32767);
}

/* ---- kernel types (implemented per instruction set, chosen by cpu.c) ---- */

/* Float kernels: training, routing and lookup tables (rounding may vary) */
typedef float (*ScoreahFloatKernel) (const float *a, const float *b, int n);
typedef void (*ScoreahDotManyKernel) (const float *x, const float *m, int k,
									  int dim, float *out);
typedef void (*ScoreahDotCrossKernel) (const float *x, int nx, const float *m, int k,
									   int dim, float *out);
typedef void (*ScoreahDotManyI8Kernel) (const int16 *x, float scale, const int8 *m, int k,
										int dim, float *out);
/* lookup table entries of nblocks blocks from transposed codebooks (lut.c) */
typedef void (*ScoreahLutEntriesKernel) (const float *q, const float *c, const float *cbT,
										 int w, int nblocks, bool l2, float *out);
/* each block's smallest entry into mins; returns the largest max - min */
typedef float (*ScoreahLutRangesKernel) (const float *flut, int nblocks, float *mins);
/* each entry as (f - mins[b]) * scale, rounded to even, clamped to 0..255 */
typedef void (*ScoreahLutQuantizeKernel) (const float *flut, const float *mins, int nblocks,
										  float scale, uint8 *qlut);

typedef struct ScoreahFloatKernels
{
	const char *name;
	ScoreahFloatKernel dot;
	ScoreahFloatKernel l2sq;
	ScoreahDotManyKernel dot_many;	/* dot products of x with k rows of m */
	ScoreahDotCrossKernel dot_cross;	/* of nx rows of x with k rows of m,
										 * out[i * k + j] */
	ScoreahDotManyI8Kernel dot_many_i8; /* dot_many with m in int8 (routing
										 * by quantized centroids) */
	ScoreahLutEntriesKernel lut_entries;	/* the same bits in every set */
	ScoreahLutRangesKernel lut_ranges;	/* the same values in every set */
	ScoreahLutQuantizeKernel lut_quantize;	/* the same bytes in every set */
	bool		int8_routing;	/* dot_many_i8 outruns dot_many: route by
								 * int8 centroids where an index has them */
} ScoreahFloatKernels;

/*
 * Exact kernels, accumulated in double in one fixed order (see exact.c):
 * every set gives the same bits, so which one a backend runs never
 * changes a distance.  a in floats or in halves.
 */
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

/*
 * LUT16: out[i] = sum over blocks of qlut[b][code(i, b)], 32 rows; returns
 * the rows whose sum is at most limit as a bit mask (bit i for row i), the
 * scan's admission test, computed by the kernel while its sums are at hand
 * (PG_UINT32_MAX admits every row).
 *
 * next: the codes of the group to be scored after this one (nblocks * 16
 * bytes, only prefetched, never read), or NULL.  The SIMD kernels prefetch
 * a line of it for each line of codes they read, so that the next group's
 * codes arrive while this group is scored: index pages lie anywhere in
 * shared memory, and the hardware prefetcher finds each new page's stream
 * late (a GloVe group waited on its codes for over half of the kernel's
 * time in a query, a 784-dimension group, one a page, longer still).
 */
typedef uint32 (*ScoreahLut16Kernel) (const uint8 *codes, const uint8 *qlut,
									  int nblocks, uint32 *out, uint32 limit,
									  const uint8 *next);

/*
 * The least of a LUT16 kernel's 32 sums over the rows in mask
 * (PG_UINT32_MAX for none): a scan passes the rows the kernel's admission
 * rejected, for its bound on the scores of a leaf's rows it left out.
 */
typedef uint32 (*ScoreahLut16MinKernel) (const uint32 *sums, uint32 mask);

typedef struct ScoreahLut16Impl
{
	const char *name;
	ScoreahLut16Kernel scan;
	ScoreahLut16MinKernel min_masked;	/* same instruction set, or portable */
} ScoreahLut16Impl;

/* The portable versions, which every other must agree with */
extern float scoreah_lut_ranges_portable(const float *flut, int nblocks, float *mins);
extern void scoreah_lut_quantize_portable(const float *flut, const float *mins, int nblocks,
										  float scale, uint8 *qlut);
extern const ScoreahFloatKernels scoreah_float_kernels_scalar;
extern const ScoreahExactKernels scoreah_exact_kernels_scalar;
extern const ScoreahLut16Impl scoreah_lut16_scalar;

/* ---- cpu.c: the kernels this process runs ---- */

/*
 * Chosen once from the CPU's features (scoreah_init_kernels), or the
 * portable ones when forceScalar.  Called through these pointers on every
 * hot path.
 */
extern ScoreahFloatKernel scoreah_dot;
extern ScoreahFloatKernel scoreah_l2sq;
extern ScoreahDotManyKernel scoreah_dot_many;
extern ScoreahDotCrossKernel scoreah_dot_cross;
extern ScoreahDotManyI8Kernel scoreah_dot_many_i8;
extern ScoreahLutEntriesKernel scoreah_lut_entries;
extern bool scoreah_int8_routing;
extern ScoreahLutRangesKernel scoreah_lut_ranges;
extern ScoreahLutQuantizeKernel scoreah_lut_quantize_blocks;
extern ScoreahLut16Kernel scoreah_lut16_scan;
extern const ScoreahExactKernels *scoreah_exact_kernels;

extern void scoreah_init_kernels(bool forceScalar);
extern void scoreah_allow_avx512(bool allow);
extern const char *scoreah_float_kernel_name(void);
extern const ScoreahLut16Impl *scoreah_lut16_for(int nblocks, uint32 seed);
extern void scoreah_lut16_set_retime(double seconds);
extern int	scoreah_lut16_timings(void);
/* Block counts a backend remembers a timed LUT16 kernel for */
#define SCOREAH_LUT16_CHOICES	8
extern int	scoreah_lut16_choices(int *nblocks, const char **names, int max);
extern const char *scoreah_lut16_kernel_name(void);
extern const char *scoreah_exact_kernel_name(void);

/* Every kernel (set) this CPU can run, the portable one first */
extern int	scoreah_float_available(const ScoreahFloatKernels **sets, int max);
extern int	scoreah_exact_available(const ScoreahExactKernels **sets, int max);
extern int	scoreah_lut16_available(const ScoreahLut16Impl **impls, int max);

/* ---- float.c: checks every caller shares ---- */

/* No NaN and no infinity among x[0..n-1] */
extern bool scoreah_all_finite(const float *x, int n);

/* ---- half.c: IEEE 754 binary16, round to nearest even ---- */

extern uint16 scoreah_float_to_half(float f);
extern float scoreah_half_to_float(uint16 h);	/* exact; NaNs come back quiet */
/* n halves to floats through the dispatched kernel (same bits) */
extern void scoreah_half_to_float_many(const uint16 *src, float *dst, int n);

/* ---- exact.c: exact distances (the SQL operators and re-ranking) ---- */

extern double scoreah_exact_l2(const float *a, const float *b, int n);
extern double scoreah_exact_dot(const float *a, const float *b, int n);
extern double scoreah_exact_cosine(const float *a, const float *b, int n);
extern double scoreah_exact_norm(const float *a, int n);
/* the value of the metric's ordering operator (<->, <#>, <=>) */
extern double scoreah_exact_distance(int metric, const float *a, const float *b, int n);
/* the same for a kept in half precision, bit for bit as if converted */
extern double scoreah_exact_distance_half(int metric, const uint16 *a,
										  const float *b, int n);
/* the same through a given kernel set (self-tests) */
extern double scoreah_exact_distance_with(const ScoreahExactKernels *k, int metric,
										  const void *a, bool half,
										  const float *b, int n);

/*
 * out = x / |x| (out may be x).  Returns |x|; a zero vector has no
 * direction and is copied unchanged.
 */
extern double scoreah_normalize(const float *x, int dim, float *out);

/*
 * The power of 2 that brings a vector of this norm to [1, 2): vectors of
 * any magnitude a float holds, scaled by it, train and score without
 * overflow or underflow, and the scaling itself rounds nothing.  1 for a
 * zero norm.  For norms below 2^-126 (denormal elements) it is past what a
 * float holds: scoreah_scale multiplies in double.
 */
extern double scoreah_unit_scale(double norm);
/* out = x * scale (out may be x) */
extern void scoreah_scale(const float *x, int dim, double scale, float *out);

/* ---- kmeans.c ---- */

/*
 * Large runs (k x dim at least SCOREAH_KMEANS_FULL, where Hamerly's bounds
 * spare few points the search over all centers) assign by full search in
 * SCOREAH_KMEANS_CHUNKS fixed ranges of points, each summed on its own and
 * the sums added in chunk order: the same bits whoever computes which
 * chunk, so the assignment can be handed to parallel workers (assignFn)
 * and give what one process gives.
 */
#define SCOREAH_KMEANS_FULL		32768
#define SCOREAH_KMEANS_CHUNKS	8

/*
 * Assign every point to its nearest center: assign[] (previous assignment
 * in, new out), sums (k x dim) and counts (k) filled; returns how many
 * points changed cluster.  Must equal scoreah_kmeans_assign_chunks().
 */
typedef int (*ScoreahKmeansAssignFn) (void *arg, const float *centers, const float *cnorms,
									  int *assign, double *sums, int *counts);

typedef struct ScoreahKmeansParams
{
	int			k;
	int			iterations;
	int			minClusterSize; /* re-seed clusters smaller than this */
	bool		spherical;		/* unit-length centers */
	bool		randomInit;		/* else k-means++ */
	uint64		seed;
	ScoreahKmeansAssignFn assignFn; /* large runs: NULL = in this process */
	void	   *assignArg;
} ScoreahKmeansParams;

/* Whether a run of k centers in dim dimensions assigns by full search */
#define scoreah_kmeans_full_search(k, dim)	((double) (k) * (dim) >= SCOREAH_KMEANS_FULL)

/* Points lo..hi-1 of chunk c of n points */
extern void scoreah_kmeans_chunk(int n, int c, int *lo, int *hi);

/*
 * Full search for points lo..hi-1: assign[i] set, x added to sums (k x dim,
 * zeroed by the caller) and counts.  Returns how many changed cluster.
 */
extern int	scoreah_kmeans_assign_range(const float *data, int dim, const float *centers,
										const float *cnorms, int k, int lo, int hi,
										int *assign, double *sums, int *counts);

/*
 * Cluster n points of dimension dim into params->k centers (written to
 * centers, k x dim).  Returns the number of clusters no point chose in
 * the last assignment.
 */
extern int	scoreah_kmeans(const float *data, int n, int dim,
						   const ScoreahKmeansParams *params, float *centers);

/* Index of the nearest center by squared L2 (cnorms: squared norms) */
extern int	scoreah_nearest_l2(const float *x, const float *centers,
							   const float *cnorms, int k, int dim, float *dist);
/* The same for n rows of x, several at a time (faster for many centers) */
extern void scoreah_nearest_l2_rows(const float *x, int n, const float *centers,
									const float *cnorms, int k, int dim, int *nearest,
									float *dist);

/* ---- pq.c: the trained model, codebooks, anisotropic encoding ---- */

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
	bool		rowBias;		/* L2 on residuals, each row's own part of
								 * its distance kept with its codes: one
								 * table a query (scoreah_pq_row_bias) */
	bool		quantizeCentroids;
	float	   *centroids;		/* nleaves x dim */
	float	   *centroidNorms;	/* squared norms, nleaves */
	float	   *codebooks;		/* 16 x dim floats */
	float	   *codebooksT;		/* the same per block as w x 16 (dimension
								 * by dimension), or NULL: the lookup tables'
								 * copy (scoreah_transpose_codebooks) */
	int8	   *qcentroids;		/* nleaves x dim, when quantized */
	float	   *qscales;		/* per dimension: max |c_d| / 127 */
	float	   *leafSpread;		/* per leaf: mean squared distance of its
								 * rows to its centroid, or NULL (route.c) */
	float		spreadWeight;	/* its share in the routing score (0: none) */
} ScoreahModelData;

typedef ScoreahModelData *ScoreahModel;

#define ScoreahBlockWidth(m, b) \
	(Min((m)->dpb, (m)->dim - (b) * (m)->dpb))
#define ScoreahCodebook(m, b) \
	((m)->codebooks + 16 * (Size) (b) * (m)->dpb)

extern void scoreah_pq_train(ScoreahModel model, const float *samples, int n,
							 int iterations, uint64 seed);
extern void scoreah_pq_train_block(const float *samples, int n, int dim, int start, int w,
								   int iterations, uint64 seed, float *sub, float *codebook);
extern void scoreah_pq_encode(ScoreahModel model, const float *residual,
							  const float *original, double threshold,
							  uint8 *codes);
extern double scoreah_parallel_cost_multiplier(double threshold, double sqnorm, int dim);
extern void scoreah_model_residual(ScoreahModel model, const float *x, int leaf,
								   float *out);
extern float scoreah_pq_row_bias(ScoreahModel model, int leaf, const uint8 *codes);

/* ---- route.c: which leaves a query searches ---- */

/*
 * L2 and cosine route by |q - c|^2 + w * spread(c), w chosen by the build
 * from these (route.c, calibrate.c)
 */
#define SCOREAH_SPREAD_WEIGHTS	6
extern const float scoreah_spread_weights[SCOREAH_SPREAD_WEIGHTS];

extern void scoreah_quantize_centroids(ScoreahModel model);
extern void scoreah_route_scores(ScoreahModel model, const float *query,
								 float *scores);
extern void scoreah_route_add_spread(float *scores, const float *spread, float w, int n);

/* ---- lut.c: lookup tables and the LUT16 code layout ---- */

typedef struct ScoreahLutData
{
	int			nblocks;
	float	   *flut;			/* nblocks x 16 float distances */
	uint8	   *qlut;			/* nblocks x 16, (flut - min_b) * scale */
	uint32	   *sums;			/* a group's 32 LUT16 sums, after qlut */
	void	   *qmem;			/* the allocation qlut and sums lie in */
	float		scale;			/* integer units per distance unit */
	float		offset;			/* sum of the per-block minima */
} ScoreahLutData;

typedef ScoreahLutData *ScoreahLut;

extern void scoreah_lut_alloc(ScoreahLut lut, int nblocks);
extern void *scoreah_lut16_operands(int nblocks, uint8 **qlut, uint32 **sums);

/*
 * Codes lie in index pages at 8-byte (MAXALIGN) offsets, seldom on a
 * 64-byte line, and the AVX-512 kernel loads them differently when they
 * do (lut16_avx512.c).  Where kernels are timed (the choice in cpu.c,
 * scoreah_kernel_benchmark), codes are placed as a page usually has them:
 * SCOREAH_CODES_SKEW bytes past a line, in an allocation
 * SCOREAH_CODES_SLACK bytes longer than the codes.
 */
#define SCOREAH_CODES_SKEW	8
#define SCOREAH_CODES_SLACK (64 + SCOREAH_CODES_SKEW)
#define SCOREAH_CODES_PLACE(mem) ((uint8 *) TYPEALIGN(64, (mem)) + SCOREAH_CODES_SKEW)
extern void scoreah_lut_free(ScoreahLut lut);
extern void scoreah_transpose_codebooks(ScoreahModel model, float *out);
/* the nearest of 16 centers stored dimension by dimension (ct: dim x 16) */
extern int	scoreah_nearest16_transposed(const float *x, const float *ct, int dim);
extern void scoreah_lut_build(ScoreahModel model, const float *query,
							  const float *center, ScoreahLut lut);
extern void scoreah_lut_quantize(ScoreahLut lut);

/*
 * The lookup table a query scores leaf's codes with: one table for all
 * leaves (built with scoreah_lut_query), or for L2 on residuals without
 * row biases a table of the leaf's own (built here).  Returns the part of
 * every row's approximate distance that comes from the leaf: a row scores
 * base + sum / lut->scale, plus its bias when the model has them.
 */
extern void scoreah_lut_query(ScoreahModel model, const float *query, ScoreahLut lut);
extern double scoreah_lut_leaf(ScoreahModel model, const float *query, int leaf,
							   ScoreahLut lut);

/* Row `row' of a group: in block b, byte row % 16, low nibble for rows < 16 */
extern void scoreah_pack_codes(uint8 *groupCodes, int row, const uint8 *codes,
							   int nblocks);
extern uint8 scoreah_unpack_code(const uint8 *groupCodes, int row, int block);

/* ---- topn.c: ScaNN's top-N buffer, sorts, smallest-k selection ---- */

/*
 * A candidate row of a scan.  id identifies the row (the heap TID packed
 * so that its order is ItemPointerCompare's) and breaks ties of approx, so
 * (approx, id) is a total order; vpage/voff/leaf say where its vector is,
 * in the caller's terms.
 */
typedef struct ScoreahCandidate
{
	double		approx;			/* approximate distance: the top-N key */
	double		distance;		/* exact, after re-ranking */
	uint64		id;
	uint32		vpage;
	uint16		voff;
	uint32		leaf;
} ScoreahCandidate;

static inline int
scoreah_candidate_cmp(const ScoreahCandidate *a, const ScoreahCandidate *b)
{
	if (a->approx < b->approx)
		return -1;
	if (a->approx > b->approx)
		return 1;
	return a->id < b->id ? -1 : (a->id > b->id ? 1 : 0);
}

/*
 * The best `keep` candidates on (approx, id), kept as ScaNN's top-N does:
 * an unsorted buffer of twice that size; when it fills, about the best
 * half stays (at least `keep`; topn.c) and their worst becomes the
 * admission threshold.  Each offer costs O(1) amortized, against O(log n)
 * swaps in a heap.  Whatever it holds scores below the threshold, and
 * every candidate offered that does is there; scoreah_topn_prune keeps
 * exactly `keep`.
 */
typedef struct ScoreahTopN
{
	ScoreahCandidate *items;
	uint64	   *keys;			/* scratch for a prune: 2 * cap keys */
	int			n;
	int			keep;
	int			cap;			/* 2 * keep */
	bool		full;			/* thr is valid */
	ScoreahCandidate thr;		/* worst of the kept after the last prune */
	double		lo;				/* the smallest score offered (none drops) */

	/*
	 * Optional (NULL: not kept): for each leaf, the least score of a
	 * candidate of that leaf it refused or dropped, for the caller's bound
	 * on what it left out (indexed by ScoreahCandidate.leaf).
	 */
	double	   *leafLeast;
} ScoreahTopN;

extern void scoreah_topn_init(ScoreahTopN *t, int keep);
extern void scoreah_topn_prune(ScoreahTopN *t);
extern void scoreah_topn_make_room(ScoreahTopN *t);
/* The k smallest first, in no order, their largest at items[k - 1] */
extern void scoreah_topn_split(ScoreahTopN *t, int k);

/*
 * A score left out of leaf's rows, into the leaf's least (an array such
 * as ScoreahTopN.leafLeast); the top-N and the scan's store both note
 * through it.  Scores are never NaN (a damaged one is made infinity).
 */
static inline void
scoreah_leaf_least_note(double *leafLeast, uint32 leaf, double score)
{
	leafLeast[leaf] = score < leafLeast[leaf] ? score : leafLeast[leaf];
}

/* A candidate the top-N refuses or drops, into its leaf's least score */
static inline void
scoreah_topn_left_out(ScoreahTopN *t, const ScoreahCandidate *c)
{
	scoreah_leaf_least_note(t->leafLeast, c->leaf, c->approx);
}

static inline void
scoreah_topn_offer(ScoreahTopN *t, const ScoreahCandidate *c)
{
	if (t->full && scoreah_candidate_cmp(c, &t->thr) >= 0)
	{
		if (t->leafLeast)
			scoreah_topn_left_out(t, c);
		return;
	}
	t->items[t->n++] = *c;
	t->lo = c->approx < t->lo ? c->approx : t->lo;
	if (t->n == t->cap)
		scoreah_topn_make_room(t);
}

/* By exact distance (NaN last, as float8 sorts), then id */
extern int	scoreah_distance_cmp(const ScoreahCandidate *x, const ScoreahCandidate *y);
extern void scoreah_sort_by_distance(ScoreahCandidate *c, int n);

/*
 * Candidates re-ranked but not returned yet, nearest first: a binary
 * min-heap on (exact distance, id), NaN last.
 */
typedef struct ScoreahHeap
{
	ScoreahCandidate *items;
	int			n;
	int			cap;
} ScoreahHeap;

extern void scoreah_heap_init(ScoreahHeap *h);
extern void scoreah_heap_push(ScoreahHeap *h, const ScoreahCandidate *c);
extern void scoreah_heap_pop(ScoreahHeap *h, ScoreahCandidate *out);
extern int	scoreah_heap_smallest(const ScoreahHeap *h, int k, int *pos, int *frontier);

/*
 * Running sums for the least-squares line of t, a monotone function of the
 * exact distance (the distance itself, or its square for L2), on
 * approximate scores a: how far past a row the distances the rows not yet
 * re-ranked are expected at must lie before the row can be returned in
 * order.
 */
typedef struct ScoreahFit
{
	double		n,
				st,
				sa,
				stt,
				sta,
				saa;
} ScoreahFit;

extern void scoreah_fit_add(ScoreahFit *f, double t, double a);
extern bool scoreah_fit_distance_line(const ScoreahFit *f, double *gamma, double *delta,
									  double *sigma);
/* By (approx, id) */
extern void scoreah_sort_by_approx(ScoreahCandidate *c, int n);
/* The k smallest by (approx, id) sorted to the front: how many are */
extern int	scoreah_sort_front(ScoreahCandidate *c, int n, int k);

/*
 * order holds n distinct indexes into scores.  Afterwards its first k
 * (clamped to n) are the k smallest of them in increasing (score, index)
 * order; the others follow in no particular order.
 */
extern void scoreah_order_smallest(const float *scores, int *order, int n, int k);

/* ---- selftest.c: every kernel against the portable one ---- */

/*
 * Each returns the number of kernels (sets) compared, the portable one
 * included, and writes a description of the first disagreement to
 * mismatch (an empty string when all agree).
 */
extern int	scoreah_lut16_selftest(int nblocks, int ngroups, uint64 seed,
								   bool saturated, char *mismatch, Size len);
extern int	scoreah_exact_selftest(uint64 seed, char *mismatch, Size len);
extern int	scoreah_float_selftest(int dim, uint64 seed, char *mismatch, Size len);

#endif							/* SCOREAH_ALGO_H */
