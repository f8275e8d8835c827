/*-------------------------------------------------------------------------
 *
 * scoreah.c
 *	  Module initialisation, the index AM handler, WITH (...) options,
 *	  GUCs, the planner's cost estimate and operator class support.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/amapi.h"
#include "access/reloptions.h"
#include "catalog/pg_opclass.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

#include "scoreah.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(scoreah_handler);
PG_FUNCTION_INFO_V1(scoreah_l2_support);
PG_FUNCTION_INFO_V1(scoreah_ip_support);
PG_FUNCTION_INFO_V1(scoreah_cosine_support);
PG_FUNCTION_INFO_V1(scoreah_kernels);
PG_FUNCTION_INFO_V1(scoreah_kernel_selftest);
PG_FUNCTION_INFO_V1(scoreah_kernel_benchmark);

int			scoreah_num_leaves_to_search = 0;
int			scoreah_reordering_num_neighbors = SCOREAH_DEFAULT_REORDER;
bool		scoreah_float_lut_scoring = false;
static bool scoreah_force_scalar = false;

static relopt_kind scoreah_relopt_kind;

static relopt_enum_elt_def storage_values[] = {
	{"float32", SCOREAH_STORAGE_FLOAT},
	{"float16", SCOREAH_STORAGE_HALF},
	{"table", SCOREAH_STORAGE_TABLE},
	{(const char *) NULL}
};

static relopt_enum_elt_def scoring_values[] = {
	{"ah", SCOREAH_SCORING_AH},
	{"brute_force", SCOREAH_SCORING_BRUTE_FORCE},
	{(const char *) NULL}
};

static void
force_scalar_assign(bool newval, void *extra)
{
	scoreah_init_kernels();
	if (newval)
	{
		scoreah_dot = scoreah_dot_scalar;
		scoreah_l2sq = scoreah_l2sq_scalar;
		scoreah_dot_many = scoreah_dot_many_scalar;
		scoreah_lut16_scan = scoreah_lut16_scan_scalar;
		/* same bits as the SIMD ones: distances and orders do not change */
		scoreah_exact_kernels = &scoreah_exact_kernels_scalar;
	}
}

void
_PG_init(void)
{
	scoreah_init_kernels();

	scoreah_relopt_kind = add_reloption_kind();
	add_int_reloption(scoreah_relopt_kind, "num_leaves",
					  "Number of k-means partitions (0 = about sqrt(rows))",
					  0, 0, SCOREAH_MAX_LEAVES, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "num_leaves_to_search",
					  "Default number of partitions a query searches (0 = 10% of the leaves)",
					  0, 0, SCOREAH_MAX_LEAVES, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "leaves_training_sample_size",
					  "Rows sampled to train the k-means tree",
					  SCOREAH_DEFAULT_LEAVES_SAMPLE, SCOREAH_MIN_SAMPLE, 100000000,
					  AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "leaves_training_iterations",
					  "k-means iterations for the tree",
					  SCOREAH_DEFAULT_LEAVES_ITERATIONS, 1, SCOREAH_MAX_ITERATIONS,
					  AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "min_partition_size",
					  "Partitions smaller than this are re-seeded during training",
					  SCOREAH_DEFAULT_MIN_PARTITION, 0, 1000000, AccessExclusiveLock);
	add_bool_reloption(scoreah_relopt_kind, "spherical",
					   "Unit-length centroids (spherical k-means)",
					   false, AccessExclusiveLock);
	add_bool_reloption(scoreah_relopt_kind, "quantize_centroids",
					   "Route queries with int8 copies of the centroids",
					   false, AccessExclusiveLock);
	add_bool_reloption(scoreah_relopt_kind, "residual_quantization",
					   "Quantize the residual (vector minus its centroid) instead of the vector",
					   true, AccessExclusiveLock);
	add_bool_reloption(scoreah_relopt_kind, "random_init",
					   "Random initial centers (false = k-means++)",
					   true, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "dimensions_per_block",
					  "Dimensions per product-quantization block",
					  SCOREAH_DEFAULT_DIMS_PER_BLOCK, 1, SCOREAH_MAX_DIM,
					  AccessExclusiveLock);
	add_real_reloption(scoreah_relopt_kind, "anisotropic_quantization_threshold",
					   "Threshold T of the score-aware (anisotropic) loss; NaN = off",
					   get_float8_nan(), 0.0, 1.0e6, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "training_sample_size",
					  "Rows sampled to train the product-quantization codebooks",
					  SCOREAH_DEFAULT_PQ_SAMPLE, SCOREAH_MIN_SAMPLE, 100000000,
					  AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "training_iterations",
					  "k-means iterations for the codebooks",
					  SCOREAH_DEFAULT_PQ_ITERATIONS, 1, SCOREAH_MAX_ITERATIONS,
					  AccessExclusiveLock);
	add_enum_reloption(scoreah_relopt_kind, "scoring",
					   "Scoring inside searched partitions",
					   scoring_values, SCOREAH_SCORING_AH,
					   "Valid values are \"ah\" and \"brute_force\".",
					   AccessExclusiveLock);
	add_enum_reloption(scoreah_relopt_kind, "reordering_storage",
					   "How re-ranking vectors are kept: float32, float16, or table (read from the table's rows)",
					   storage_values, SCOREAH_STORAGE_FLOAT,
					   "Valid values are \"float32\", \"float16\" and \"table\".",
					   AccessExclusiveLock);

	DefineCustomIntVariable("scoreah.num_leaves_to_search",
							"Partitions a query searches (0 = the index's num_leaves_to_search).",
							NULL, &scoreah_num_leaves_to_search,
							0, 0, SCOREAH_MAX_LEAVES,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("scoreah.reordering_num_neighbors",
							"Candidates re-ranked with exact distances (0 = return the quantized order).",
							NULL, &scoreah_reordering_num_neighbors,
							SCOREAH_DEFAULT_REORDER, 0, SCOREAH_MAX_REORDER,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("scoreah.force_scalar_kernels",
							 "Use the portable scalar kernels instead of SIMD ones (for testing).",
							 NULL, &scoreah_force_scalar, false,
							 PGC_USERSET, 0, NULL, force_scalar_assign, NULL);

	DefineCustomBoolVariable("scoreah.float_lut_scoring",
							 "Score codes with the float lookup table instead of the 8-bit one (slow; to measure what 8 bits cost).",
							 NULL, &scoreah_float_lut_scoring, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("scoreah");
}

/*
 * Parse WITH (...) options.
 */
static bytea *
scoreahoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"num_leaves", RELOPT_TYPE_INT, offsetof(ScoreahOptions, numLeaves)},
		{"num_leaves_to_search", RELOPT_TYPE_INT, offsetof(ScoreahOptions, numLeavesToSearch)},
		{"leaves_training_sample_size", RELOPT_TYPE_INT, offsetof(ScoreahOptions, leavesTrainingSampleSize)},
		{"leaves_training_iterations", RELOPT_TYPE_INT, offsetof(ScoreahOptions, leavesTrainingIterations)},
		{"min_partition_size", RELOPT_TYPE_INT, offsetof(ScoreahOptions, minPartitionSize)},
		{"spherical", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, spherical)},
		{"quantize_centroids", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, quantizeCentroids)},
		{"random_init", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, randomInit)},
		{"residual_quantization", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, residualQuantization)},
		{"dimensions_per_block", RELOPT_TYPE_INT, offsetof(ScoreahOptions, dimensionsPerBlock)},
		{"anisotropic_quantization_threshold", RELOPT_TYPE_REAL, offsetof(ScoreahOptions, anisotropicThreshold)},
		{"training_sample_size", RELOPT_TYPE_INT, offsetof(ScoreahOptions, trainingSampleSize)},
		{"training_iterations", RELOPT_TYPE_INT, offsetof(ScoreahOptions, trainingIterations)},
		{"scoring", RELOPT_TYPE_ENUM, offsetof(ScoreahOptions, scoring)},
		{"reordering_storage", RELOPT_TYPE_ENUM, offsetof(ScoreahOptions, reorderingStorage)},
	};

	return (bytea *) build_reloptions(reloptions, validate, scoreah_relopt_kind,
									  sizeof(ScoreahOptions), tab, lengthof(tab));
}

/*
 * The options of an index, with defaults when none were given.
 */
ScoreahOptions *
ScoreahGetOptions(Relation index)
{
	ScoreahOptions *opts = (ScoreahOptions *) index->rd_options;

	if (opts == NULL)
	{
		opts = palloc0(sizeof(ScoreahOptions));
		SET_VARSIZE(opts, sizeof(ScoreahOptions));
		opts->leavesTrainingSampleSize = SCOREAH_DEFAULT_LEAVES_SAMPLE;
		opts->leavesTrainingIterations = SCOREAH_DEFAULT_LEAVES_ITERATIONS;
		opts->minPartitionSize = SCOREAH_DEFAULT_MIN_PARTITION;
		opts->randomInit = true;
		opts->residualQuantization = true;
		opts->dimensionsPerBlock = SCOREAH_DEFAULT_DIMS_PER_BLOCK;
		opts->anisotropicThreshold = get_float8_nan();
		opts->trainingSampleSize = SCOREAH_DEFAULT_PQ_SAMPLE;
		opts->trainingIterations = SCOREAH_DEFAULT_PQ_ITERATIONS;
		opts->scoring = SCOREAH_SCORING_AH;
		opts->reorderingStorage = SCOREAH_STORAGE_FLOAT;
	}
	return opts;
}

/*
 * The metric of the index's operator class, from support function 1.
 */
int
ScoreahGetMetric(Relation index)
{
	FmgrInfo   *proc = index_getprocinfo(index, 1, SCOREAH_METRIC_PROC);
	int			metric = DatumGetInt32(FunctionCall1(proc, PointerGetDatum(NULL)));

	if (metric < SCOREAH_METRIC_L2 || metric > SCOREAH_METRIC_COSINE)
		elog(ERROR, "scoreah support function 1 returned unknown metric %d", metric);
	return metric;
}

Datum
scoreah_l2_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_METRIC_L2);
}

Datum
scoreah_ip_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_METRIC_IP);
}

Datum
scoreah_cosine_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_METRIC_COSINE);
}

/*
 * Which kernels this backend uses, e.g. "float=avx2 lut16=scalar
 * exact=avx2".
 */
Datum
scoreah_kernels(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("float=%s lut16=%s exact=%s",
											  scoreah_float_kernel_name(),
											  scoreah_lut16_kernel_name(),
											  scoreah_exact_kernel_name())));
}

/*
 * scoreah_kernel_selftest(nblocks, ngroups, seed): every LUT16 kernel this
 * CPU runs must give the scalar kernel's sums bit for bit, every exact
 * distance kernel set (and half conversion) the scalar set's doubles bit
 * for bit, and the float kernels must agree with the scalar ones to
 * rounding.  Returns a line saying how many kernels were compared; errors
 * on any disagreement.
 */
Datum
scoreah_kernel_selftest(PG_FUNCTION_ARGS)
{
	int			nblocks = PG_GETARG_INT32(0);
	int			ngroups = PG_GETARG_INT32(1);
	int64		seed = PG_GETARG_INT64(2);
	const char *bad;
	int			tested,
				testedExact;
	ScoreahRandom rng;
	int			dim = nblocks * 2 + 1;
	int			k = 37;
	float	   *x,
			   *m,
			   *got,
			   *want;

	if (nblocks < 1 || nblocks > 4096 || ngroups < 1 || ngroups > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nblocks must be 1..4096 and ngroups 1..10000, got %d and %d",
						nblocks, ngroups)));
	tested = scoreah_lut16_selftest(nblocks, ngroups, (uint64) seed, &bad);
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("LUT16 kernel \"%s\" disagrees with the scalar kernel at %d blocks",
						bad, nblocks)));
	testedExact = scoreah_exact_selftest((uint64) seed, &bad);
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("exact distance kernels disagree with the scalar ones"),
				 errdetail("%s", bad)));

	/* float kernels: relative agreement */
	scoreah_random_init(&rng, (uint64) seed);
	x = palloc(sizeof(float) * dim);
	m = palloc(sizeof(float) * dim * k);
	got = palloc(sizeof(float) * k);
	want = palloc(sizeof(float) * k);
	for (int i = 0; i < dim; i++)
		x[i] = (float) (scoreah_random_double(&rng) * 2 - 1);
	for (int i = 0; i < dim * k; i++)
		m[i] = (float) (scoreah_random_double(&rng) * 2 - 1);
	scoreah_dot_many(x, m, k, dim, got);
	scoreah_dot_many_scalar(x, m, k, dim, want);
	for (int j = 0; j < k; j++)
	{
		double		scale = sqrt((double) scoreah_dot_scalar(x, x, dim) *
								 scoreah_dot_scalar(m + j * dim, m + j * dim, dim)) + 1e-30;
		float		d1 = scoreah_dot(x, m + j * dim, dim);
		float		l1 = scoreah_l2sq(x, m + j * dim, dim);
		float		l2 = scoreah_l2sq_scalar(x, m + j * dim, dim);

		if (fabs(got[j] - want[j]) > 1e-5 * scale || fabs(d1 - want[j]) > 1e-5 * scale ||
			fabs(l1 - l2) > 1e-5 * (l2 + 1e-30))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("float kernel \"%s\" disagrees with the scalar kernel at %d dimensions",
							scoreah_float_kernel_name(), dim)));
	}
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("ok: %d LUT16 kernel%s agree with scalar at %d blocks, %d exact kernel set%s bit for bit",
											  tested, tested == 1 ? "" : "s", nblocks,
											  testedExact, testedExact == 1 ? "" : "s")));
}

/*
 * scoreah_kernel_benchmark(nblocks, ngroups, rounds): time every LUT16
 * kernel this CPU runs over ngroups groups of random codes held in memory
 * (rounds passes).  Returns (kernel, ns_per_row, speedup over scalar).
 */
Datum
scoreah_kernel_benchmark(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nblocks = PG_GETARG_INT32(0);
	int			ngroups = PG_GETARG_INT32(1);
	int			rounds = PG_GETARG_INT32(2);
	const char *names[8];
	ScoreahLut16Kernel fns[8];
	int			nk;
	uint8	   *codes,
			   *qlut;
	ScoreahRandom rng;
	double		scalarNs = 0;
	uint32		sink = 0;

	if (nblocks < 1 || nblocks > 4096 || ngroups < 1 || ngroups > 1000000 ||
		rounds < 1 || rounds > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nblocks must be 1..4096, ngroups 1..1000000 and rounds 1..100000")));
	InitMaterializedSRF(fcinfo, 0);
	nk = scoreah_lut16_available(names, fns, lengthof(names));
	codes = palloc_extended((Size) ngroups * nblocks * 16, MCXT_ALLOC_HUGE);
	qlut = palloc((Size) nblocks * 16);
	scoreah_random_init(&rng, 7);
	for (Size i = 0; i < (Size) ngroups * nblocks * 16; i++)
		codes[i] = (uint8) scoreah_random_next(&rng);
	for (int i = 0; i < nblocks * 16; i++)
		qlut[i] = (uint8) scoreah_random_next(&rng);

	for (int k = 0; k < nk; k++)
	{
		instr_time	start,
					end;
		uint32		out[SCOREAH_GROUP_ROWS];
		double		ns;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		INSTR_TIME_SET_CURRENT(start);
		for (int r = 0; r < rounds; r++)
		{
			CHECK_FOR_INTERRUPTS();
			for (int g = 0; g < ngroups; g++)
			{
				fns[k] (codes + (Size) g * nblocks * 16, qlut, nblocks, out);
				sink += out[g & 31];
			}
		}
		INSTR_TIME_SET_CURRENT(end);
		INSTR_TIME_SUBTRACT(end, start);
		ns = INSTR_TIME_GET_DOUBLE(end) * 1e9 / ((double) rounds * ngroups * SCOREAH_GROUP_ROWS);
		if (k == 0)
			scalarNs = ns;
		values[0] = CStringGetTextDatum(names[k]);
		values[1] = Float8GetDatum(ns);
		values[2] = Float8GetDatum(scalarNs / ns);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	/* keep the compiler from dropping the loops */
	if (sink == 0xFFFFFFFF)
		elog(DEBUG5, "scoreah kernel benchmark sink %u", sink);
	return (Datum) 0;
}

/*
 * Cost estimate.  Without an ORDER BY distance the index is useless (it
 * has no search operators), so the cost is infinite.  With one, a scan
 * reads the centroids, then the probed fraction of the leaves; all of it
 * happens before the first row comes out, so startup = total.
 */
static void
scoreahcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
					Cost *indexStartupCost, Cost *indexTotalCost,
					Selectivity *indexSelectivity, double *indexCorrelation,
					double *indexPages)
{
	GenericCosts costs;
	double		ratio = 1.0;
	Relation	index;
	ScoreahCache cache;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	index = index_open(path->indexinfo->indexoid, NoLock);
	cache = ScoreahGetCache(index);
	if (cache->meta.nleaves > 0)
	{
		int			nprobe = scoreah_num_leaves_to_search > 0 ?
		scoreah_num_leaves_to_search : (int) cache->meta.numLeavesToSearch;

		ratio = Min(1.0, (double) nprobe / cache->meta.nleaves);
		if (cache->meta.scoring == SCOREAH_SCORING_BRUTE_FORCE ||
			!(cache->meta.flags & SCOREAH_FLAG_TRAINED))
			ratio = Min(1.0, ratio * 4);	/* float vectors, not codes */
	}
	index_close(index, NoLock);

	MemSet(&costs, 0, sizeof(costs));
	costs.numIndexTuples = Max(1.0, path->indexinfo->tuples * ratio);
	genericcostestimate(root, path, loop_count, &costs);

	*indexStartupCost = costs.indexTotalCost;
	*indexTotalCost = costs.indexTotalCost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}

/*
 * Check an operator class: one ordering operator (strategy 1) and support
 * function 1 returning the metric.
 */
static bool
scoreahvalidate(Oid opclassoid)
{
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamily;
	Oid			intype;
	bool		ok = true;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamily = classform->opcfamily;
	intype = classform->opcintype;

	if (!OidIsValid(get_opfamily_member(opfamily, intype, intype, 1)))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("scoreah operator class \"%s\" has no ordering operator for strategy 1",
						NameStr(classform->opcname))));
		ok = false;
	}
	if (!OidIsValid(get_opfamily_proc(opfamily, intype, intype, SCOREAH_METRIC_PROC)))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("scoreah operator class \"%s\" is missing support function %d",
						NameStr(classform->opcname), SCOREAH_METRIC_PROC)));
		ok = false;
	}
	ReleaseSysCache(classtup);
	return ok;
}

static char *
scoreahbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case SCOREAH_PHASE_SAMPLING:
			return "sampling rows";
		case SCOREAH_PHASE_TREE:
			return "training the k-means tree";
		case SCOREAH_PHASE_CODEBOOKS:
			return "training codebooks";
		case SCOREAH_PHASE_ENCODING:
			return "assigning and encoding rows";
		case SCOREAH_PHASE_WRITING:
			return "writing leaves";
		default:
			return NULL;
	}
}

Datum
scoreah_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = SCOREAH_NPROC;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = false;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
#if PG_VERSION_NUM >= 160000
	amroutine->amsummarizing = false;
#endif
#if PG_VERSION_NUM >= 170000
	amroutine->amcanbuildparallel = false;
#endif
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = scoreahbuild;
	amroutine->ambuildempty = scoreahbuildempty;
	amroutine->aminsert = scoreahinsert;
#if PG_VERSION_NUM >= 170000
	amroutine->aminsertcleanup = NULL;
#endif
	amroutine->ambulkdelete = scoreahbulkdelete;
	amroutine->amvacuumcleanup = scoreahvacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = scoreahcostestimate;
	amroutine->amoptions = scoreahoptions;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = scoreahbuildphasename;
	amroutine->amvalidate = scoreahvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = scoreahbeginscan;
	amroutine->amrescan = scoreahrescan;
	amroutine->amgettuple = scoreahgettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = scoreahendscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
