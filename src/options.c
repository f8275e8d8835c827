/*-------------------------------------------------------------------------
 *
 * options.c
 *	  The index's WITH (...) options and scoreah's GUCs.
 *
 * Option names follow ScaNN's Tree and ScoreAH options.  Options are
 * checked at CREATE INDEX (build.c, which knows the metric and the rows)
 * and at ALTER INDEX ... SET (amoptions for the rules between options, an
 * object access hook for those that need the index), and frozen into the
 * metapage: scans and inserts read them from there, never from reloptions.
 *
 * Query settings anybody may change are USERSET; the ones that exist to
 * test and compare kernels, and the cache's size, which is memory of the
 * server, are for superusers (SUSET).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "scoreah.h"

int			scoreah_num_leaves_to_search = 0;
int			scoreah_reordering_num_neighbors = SCOREAH_DEFAULT_REORDER;
double		scoreah_target_recall = 0;
int			scoreah_scan_order = SCOREAH_ORDER_STRICT;

static const struct config_enum_entry scan_order_options[] = {
	{"strict", SCOREAH_ORDER_STRICT, false},
	{"relaxed", SCOREAH_ORDER_RELAXED, false},
	{NULL, 0, false}
};
bool		scoreah_float_lut_scoring = false;
bool		scoreah_refill_skipping = true;
bool		scoreah_force_scalar_kernels = false;
bool		scoreah_avx512_kernels = true;
int			scoreah_model_cache_size = 128 * 1024;	/* kB */

static relopt_kind scoreah_relopt_kind;

static relopt_enum_elt_def storage_values[] = {
	{"float32", SCOREAH_STORAGE_FLOAT},
	{"float16", SCOREAH_STORAGE_HALF},
	{"table", SCOREAH_STORAGE_TABLE},
	{(const char *) NULL}
};

/* auto, and the spellings of a boolean it took before it had auto */
static relopt_enum_elt_def quantize_values[] = {
	{"auto", SCOREAH_QUANTIZE_AUTO},
	{"on", SCOREAH_QUANTIZE_ON},
	{"off", SCOREAH_QUANTIZE_OFF},
	{"true", SCOREAH_QUANTIZE_ON},
	{"false", SCOREAH_QUANTIZE_OFF},
	{"yes", SCOREAH_QUANTIZE_ON},
	{"no", SCOREAH_QUANTIZE_OFF},
	{"1", SCOREAH_QUANTIZE_ON},
	{"0", SCOREAH_QUANTIZE_OFF},
	{(const char *) NULL}
};

static relopt_enum_elt_def scoring_values[] = {
	{"ah", SCOREAH_SCORING_AH},
	{"brute_force", SCOREAH_SCORING_BRUTE_FORCE},
	{(const char *) NULL}
};

void
ScoreahInitOptions(void)
{
	scoreah_relopt_kind = add_reloption_kind();
	add_int_reloption(scoreah_relopt_kind, "num_leaves",
					  "Number of k-means partitions (0 = about sqrt(rows))",
					  0, 0, SCOREAH_MAX_LEAVES, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "num_leaves_to_search",
					  "Default number of partitions a query searches (0 = 10% of the leaves)",
					  0, 0, SCOREAH_MAX_LEAVES, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "leaves_training_sample_size",
					  "Rows sampled to train the k-means tree (0 = up to 100000, as memory allows)",
					  0, 0, 100000000, AccessExclusiveLock);
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
	add_enum_reloption(scoreah_relopt_kind, "quantize_centroids",
					   "Route queries with int8 copies of the centroids (auto = from 256 dimensions)",
					   quantize_values, SCOREAH_QUANTIZE_AUTO,
					   "Valid values are \"auto\", \"on\" and \"off\" (or true and false).",
					   AccessExclusiveLock);
	add_bool_reloption(scoreah_relopt_kind, "residual_quantization",
					   "Quantize the residual (vector minus its centroid) instead of the vector",
					   true, AccessExclusiveLock);
	add_bool_reloption(scoreah_relopt_kind, "random_init",
					   "Random initial centers (false = k-means++)",
					   true, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "dimensions_per_block",
					  "Dimensions per product-quantization block (0 = chosen from the dimension)",
					  0, 0, SCOREAH_MAX_DIM, AccessExclusiveLock);
	add_real_reloption(scoreah_relopt_kind, "anisotropic_quantization_threshold",
					   "Threshold T of the score-aware (anisotropic) loss; 0 = off, -1 = chosen from the metric and dimension",
					   SCOREAH_THRESHOLD_AUTO, SCOREAH_THRESHOLD_AUTO, 1.0e6, AccessExclusiveLock);
	add_int_reloption(scoreah_relopt_kind, "training_sample_size",
					  "Rows sampled to train the product-quantization codebooks (0 = up to 100000, as memory allows)",
					  0, 0, 100000000, AccessExclusiveLock);
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
					   storage_values, SCOREAH_STORAGE_DEFAULT,
					   "Valid values are \"float32\", \"float16\" and \"table\".",
					   AccessExclusiveLock);
}

/*
 * scoreah.force_scalar_kernels: the portable kernels instead of the SIMD
 * ones.  Exact and LUT16 kernels give the same bits either way, so this
 * changes speed, never a result.
 */
static void
force_scalar_assign(bool newval, void *extra)
{
	scoreah_init_kernels(newval);
}

/*
 * scoreah.avx512_kernels = off: the kernels a CPU without AVX-512 runs,
 * on one that has it (to measure that path; results do not change).
 */
static void
avx512_assign(bool newval, void *extra)
{
	scoreah_allow_avx512(newval);
}

void
ScoreahInitGucs(void)
{
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
	DefineCustomRealVariable("scoreah.target_recall",
							 "Recall@10 a query should reach: leaves searched and candidates re-ranked are chosen from the index's calibration (0 = off: use num_leaves_to_search and reordering_num_neighbors).",
							 NULL, &scoreah_target_recall,
							 0, 0, 1,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("scoreah.scan_order",
							 "strict: rows come out in exact distance order across batches and rounds; relaxed: exact within a batch only (faster past the first batch).",
							 NULL, &scoreah_scan_order,
							 SCOREAH_ORDER_STRICT, scan_order_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("scoreah.force_scalar_kernels",
							 "Use the portable scalar kernels instead of SIMD ones (for testing).",
							 NULL, &scoreah_force_scalar_kernels, false,
							 PGC_SUSET, 0, NULL, force_scalar_assign, NULL);
	DefineCustomBoolVariable("scoreah.avx512_kernels",
							 "Let the SIMD kernels use AVX-512 where the CPU has it (off: the kernels of a CPU without it, for comparing).",
							 NULL, &scoreah_avx512_kernels, true,
							 PGC_SUSET, 0, NULL, avx512_assign, NULL);
	DefineCustomBoolVariable("scoreah.float_lut_scoring",
							 "Score codes with the float lookup table instead of the 8-bit one (slow; to measure what 8 bits cost).",
							 NULL, &scoreah_float_lut_scoring, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("scoreah.refill_skipping",
							 "Let a scan that scores its leaves again skip those whose rows cannot enter its store (off: to measure what it saves, and that it changes no row).",
							 NULL, &scoreah_refill_skipping, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("scoreah.model_cache_size",
							"Memory a backend keeps trained models of scoreah indexes in, between statements.",
							"Models in use are kept whatever their size; the least recently used of the others are dropped past this.",
							&scoreah_model_cache_size,
							128 * 1024, 0, MAX_KILOBYTES,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);

	MarkGUCPrefixReserved("scoreah");
}

/*
 * The rules between options that need nothing but the options: checked
 * by CREATE INDEX (CheckOptions in build.c, beside those that need the
 * column's type and the metric) and by ALTER INDEX ... SET, so that no
 * index is left with options its REINDEX, or a restore of its dump, would
 * refuse.
 */
void
ScoreahCheckOptionValues(const ScoreahOptions *opts)
{
	double		t = opts->anisotropicThreshold;

	if (isnan(t) || (t < 0 && t != SCOREAH_THRESHOLD_AUTO))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("anisotropic_quantization_threshold must be -1 (chosen from the metric and dimension), 0 (off) or greater than 0, got %g", t)));
	if (opts->numLeaves > 0 && opts->numLeavesToSearch > opts->numLeaves)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("num_leaves_to_search = %d is more than num_leaves = %d",
						opts->numLeavesToSearch, opts->numLeaves)));
	for (int i = 0; i < 2; i++)
	{
		int			n = i == 0 ? opts->leavesTrainingSampleSize : opts->trainingSampleSize;

		if (n > 0 && n < SCOREAH_MIN_SAMPLE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be 0 (chosen from the dimension and maintenance_work_mem) or at least %d, got %d",
							i == 0 ? "leaves_training_sample_size" : "training_sample_size",
							SCOREAH_MIN_SAMPLE, n)));
	}
	if (opts->scoring == SCOREAH_SCORING_BRUTE_FORCE && t > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("anisotropic_quantization_threshold has no effect with scoring = brute_force"),
				 errdetail("brute_force scoring keeps no quantized codes.")));
}

/*
 * The rules between options and the index they are for: its metric, its
 * column's type and whether it indexes a plain column.  Checked by CREATE
 * INDEX and every rebuild (build.c) and by ALTER INDEX ... SET
 * (CheckAlteredIndex), so that no index is left with options its REINDEX,
 * a TRUNCATE or VACUUM FULL of its table, or a restore of its dump would
 * refuse.
 */
void
ScoreahCheckIndexOptions(Relation index, const ScoreahOptions *opts)
{
	int			metric = ScoreahGetMetric(index);
	int			format = ScoreahGetFormat(index);
	double		t = opts->anisotropicThreshold;

	if (t > 0 && metric == SCOREAH_METRIC_COSINE && t >= 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("anisotropic_quantization_threshold must be below 1 for cosine distance, got %g", t),
				 errdetail("It is a cosine similarity threshold; 0.2 is ScaNN's recommendation for about 100 dimensions.")));
	if (opts->reorderingStorage == SCOREAH_STORAGE_TABLE &&
		index->rd_index->indkey.values[0] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("reordering_storage = table needs an index on a plain column, not an expression"),
				 errhint("Use reordering_storage = float32 or float16 for expression indexes.")));
	if (format == SCOREAH_FORMAT_HALFVEC && opts->reorderingStorage == SCOREAH_STORAGE_FLOAT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reordering_storage = float32 would keep a halfvec column at twice its size"),
				 errdetail("A halfvec column's vectors are kept in half precision (float16), exactly as the column holds them."),
				 errhint("Leave reordering_storage unset (float16), or use table.")));
	if (opts->spherical && metric == SCOREAH_METRIC_L2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("spherical = true needs unit vectors: use it with scoreah_cosine_ops"),
				 errdetail("Spherical k-means normalizes the centroids, which misroutes L2 queries on vectors of other lengths.")));
}

/*
 * The codes of dim dimensions in blocks of dpb (at most dim) must fit a
 * code page beside a group's other fields: checked by the build once it
 * knows the width, and by ALTER INDEX for a trained index.
 */
void
ScoreahCheckBlocksFit(int dpb, int dim, int nkeys)
{
	int			nblocks = (dim + dpb - 1) / dpb;
	int			maxBlocks = ScoreahMaxBlocks(nkeys);

	if (nblocks > maxBlocks)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dimensions_per_block = %d gives %d blocks for %d dimensions, more than the %d that fit a page",
						dpb, nblocks, dim, maxBlocks),
				 errhint("Use dimensions_per_block = %d or more.",
						 (dim + maxBlocks - 1) / maxBlocks)));
}

/*
 * ALTER INDEX ... SET (...) of a scoreah index: amoptions sees only the
 * options, not the index, so the rules that need the index are checked
 * here, after the new options are in pg_class (read with SnapshotSelf:
 * the change is not visible to other snapshots until the command ends).
 * An error rolls the ALTER back.  A trained index also has its width, so
 * dimensions_per_block is checked as its REINDEX would check it.  The
 * hook is installed when the library loads, which opening a scoreah
 * index does before ALTER reaches the options.
 */
static object_access_hook_type prevObjectAccessHook = NULL;

static void
CheckAlteredIndex(Oid relid)
{
	Relation	pgclass;
	ScanKeyData key;
	SysScanDesc sscan;
	HeapTuple	tuple;
	Relation	index = NULL;
	ScoreahOptions *opts = NULL;

	/*
	 * A scoreah index (ALTER INDEX ... SET applies to no partitioned index):
	 * the ALTER holds a lock on it; its relcache entry has the rest
	 */
	pgclass = table_open(RelationRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	sscan = systable_beginscan(pgclass, ClassOidIndexId, true, SnapshotSelf, 1, &key);
	tuple = systable_getnext(sscan);
	if (HeapTupleIsValid(tuple) && ((Form_pg_class) GETSTRUCT(tuple))->relkind == RELKIND_INDEX)
	{
		index = index_open(relid, NoLock);
		if (index->rd_indam->ambuild == scoreahbuild)
		{
			bool		isnull;
			Datum		datum = heap_getattr(tuple, Anum_pg_class_reloptions,
											 RelationGetDescr(pgclass), &isnull);

			if (!isnull)
				opts = (ScoreahOptions *) scoreahoptions(datum, false);
		}
	}
	systable_endscan(sscan);
	table_close(pgclass, AccessShareLock);
	if (index == NULL)
		return;

	/*
	 * The defaults suit every index; and options the command left as they
	 * were (the relcache still has those it started with: a rename, a
	 * tablespace) are not checked again, so that an index given bad ones
	 * before this check existed can still be renamed or moved.
	 */
	if (opts == NULL ||
		(index->rd_options != NULL && VARSIZE(index->rd_options) == VARSIZE(opts) &&
		 memcmp(index->rd_options, opts, VARSIZE(opts)) == 0))
	{
		index_close(index, NoLock);
		return;
	}
	ScoreahCheckIndexOptions(index, opts);

	if (opts->dimensionsPerBlock > 0 && opts->scoring == SCOREAH_SCORING_AH &&
		RelationGetNumberOfBlocks(index) > 0)
	{
		ScoreahMetaPageData meta;

		ScoreahReadMeta(index, &meta);
		if ((meta.flags & SCOREAH_FLAG_TRAINED) && meta.dimensions > 0)
			ScoreahCheckBlocksFit(Min(opts->dimensionsPerBlock, (int) meta.dimensions),
								  (int) meta.dimensions, (int) meta.nkeys);
	}
	index_close(index, NoLock);
}

static void
ScoreahObjectAccess(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prevObjectAccessHook)
		prevObjectAccessHook(access, classId, objectId, subId, arg);
	if (access == OAT_POST_ALTER && classId == RelationRelationId && subId == 0)
		CheckAlteredIndex(objectId);
}

void
ScoreahInitAlterCheck(void)
{
	prevObjectAccessHook = object_access_hook;
	object_access_hook = ScoreahObjectAccess;
}

/*
 * Parse WITH (...) options; when validating (CREATE INDEX, ALTER INDEX
 * ... SET), also the rules between them.
 */
bytea *
scoreahoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"num_leaves", RELOPT_TYPE_INT, offsetof(ScoreahOptions, numLeaves)},
		{"num_leaves_to_search", RELOPT_TYPE_INT, offsetof(ScoreahOptions, numLeavesToSearch)},
		{"leaves_training_sample_size", RELOPT_TYPE_INT, offsetof(ScoreahOptions, leavesTrainingSampleSize)},
		{"leaves_training_iterations", RELOPT_TYPE_INT, offsetof(ScoreahOptions, leavesTrainingIterations)},
		{"min_partition_size", RELOPT_TYPE_INT, offsetof(ScoreahOptions, minPartitionSize)},
		{"spherical", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, spherical)},
		{"quantize_centroids", RELOPT_TYPE_ENUM, offsetof(ScoreahOptions, quantizeCentroids)},
		{"random_init", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, randomInit)},
		{"residual_quantization", RELOPT_TYPE_BOOL, offsetof(ScoreahOptions, residualQuantization)},
		{"dimensions_per_block", RELOPT_TYPE_INT, offsetof(ScoreahOptions, dimensionsPerBlock)},
		{"anisotropic_quantization_threshold", RELOPT_TYPE_REAL, offsetof(ScoreahOptions, anisotropicThreshold)},
		{"training_sample_size", RELOPT_TYPE_INT, offsetof(ScoreahOptions, trainingSampleSize)},
		{"training_iterations", RELOPT_TYPE_INT, offsetof(ScoreahOptions, trainingIterations)},
		{"scoring", RELOPT_TYPE_ENUM, offsetof(ScoreahOptions, scoring)},
		{"reordering_storage", RELOPT_TYPE_ENUM, offsetof(ScoreahOptions, reorderingStorage)},
	};

	bytea	   *opts = (bytea *) build_reloptions(reloptions, validate, scoreah_relopt_kind,
												  sizeof(ScoreahOptions), tab, lengthof(tab));

	if (validate && opts != NULL)
		ScoreahCheckOptionValues((const ScoreahOptions *) opts);
	return opts;
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
		opts->leavesTrainingIterations = SCOREAH_DEFAULT_LEAVES_ITERATIONS;
		opts->minPartitionSize = SCOREAH_DEFAULT_MIN_PARTITION;
		opts->quantizeCentroids = SCOREAH_QUANTIZE_AUTO;
		opts->randomInit = true;
		opts->residualQuantization = true;
		opts->anisotropicThreshold = SCOREAH_THRESHOLD_AUTO;
		opts->trainingIterations = SCOREAH_DEFAULT_PQ_ITERATIONS;
		opts->scoring = SCOREAH_SCORING_AH;
		opts->reorderingStorage = SCOREAH_STORAGE_DEFAULT;
	}
	return opts;
}
