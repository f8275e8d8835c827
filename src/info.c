/*-------------------------------------------------------------------------
 *
 * info.c
 *	  scoreah_index_info(regclass): what an index holds and how stale it
 *	  is; and the privilege rules of the introspection functions.
 *
 * The codes and vectors of an index are its table's data, so reading them
 * takes what reading the table's statistics takes: SELECT on the table or
 * on every indexed column (the rule of pg_stats).  Under row-level
 * security that is active for the caller, figures of the table's rows
 * (counts, rows per leaf, distances) are left out, as pg_stats leaves out
 * such a table's statistics; the options and page counts, which anyone can
 * see in pg_class, remain.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "scoreah.h"

PG_FUNCTION_INFO_V1(scoreah_index_info);

/* rows whose vectors are read to measure staleness, at most */
#define STALENESS_SAMPLE 10000

/* what a figure of the table's rows says to a role row-level security applies to */
#define NOT_SHOWN_RLS	"not shown (row-level security)"

/*
 * SELECT on the table, or on every column the index has.  A partial
 * index's row counts say how many rows pass its predicate, whose columns
 * need not be among those: it takes SELECT on the table, as an expression
 * column does.
 */
static bool
CanReadIndexedData(Oid indexOid, Oid heapOid)
{
	HeapTuple	tup;
	Form_pg_index indexForm;
	bool		ok = true;

	if (pg_class_aclcheck(heapOid, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
		return true;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexOid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for index %u", indexOid);
	indexForm = (Form_pg_index) GETSTRUCT(tup);
	ok = heap_attisnull(tup, Anum_pg_index_indpred, NULL);
	for (int i = 0; i < indexForm->indnatts && ok; i++)
	{
		AttrNumber	attnum = indexForm->indkey.values[i];

		/* an expression reads columns the catalog does not list here */
		ok = attnum > 0 &&
			pg_attribute_aclcheck(heapOid, attnum, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	}
	ReleaseSysCache(tup);
	return ok;
}

/*
 * May the current role read every row of the table: SELECT on it, and no
 * row-level security applying to it?  Figures of all the rows (a mean
 * norm) are shown only then.
 */
bool
ScoreahMayReadAllRows(Oid heapOid)
{
	return pg_class_aclcheck(heapOid, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(heapOid, InvalidOid, true) != RLS_ENABLED;
}

/*
 * Open a scoreah index for reading after checking that the caller may read
 * what it holds.  The privilege is checked before any lock is taken.
 * *rlsActive tells whether row-level security applies to the caller on
 * the indexed table.
 */
Relation
ScoreahOpenForIntrospection(Oid indexOid, bool *rlsActive)
{
	Oid			heapOid;
	Relation	index;
	char		relkind = get_rel_relkind(indexOid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", indexOid)));
	if (relkind == RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partitioned index, which holds no data of its own",
						get_rel_name(indexOid)),
				 errhint("Pass the index of one of its partitions.")));
	if (relkind != RELKIND_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", get_rel_name(indexOid))));
	heapOid = IndexGetRelation(indexOid, false);
	if (!CanReadIndexedData(indexOid, heapOid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(heapOid)),
				 errdetail("Reading a scoreah index needs SELECT on the table it indexes, or on every column it indexes when it has neither expressions nor a predicate.")));
	*rlsActive = check_enable_rls(heapOid, InvalidOid, true) == RLS_ENABLED;

	/*
	 * The table before the index, in the order queries and VACUUM lock them
	 * (held to the end of the transaction, as a query's are); the index
	 * must still belong to it once both are locked.
	 */
	LockRelationOid(heapOid, AccessShareLock);
	index = index_open(indexOid, AccessShareLock);
	if (IndexGetRelation(indexOid, false) != heapOid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" changed its table while being opened",
						RelationGetRelationName(index))));
	if (index->rd_rel->relam != get_index_am_oid("scoreah", false))
	{
		index_close(index, AccessShareLock);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a scoreah index", get_rel_name(indexOid))));
	}
	return index;
}

static int
CmpUint32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static void
PutRow(ReturnSetInfo *rsinfo, const char *name, const char *value)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(value);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static const char *
MetricName(int metric)
{
	switch (metric)
	{
		case SCOREAH_METRIC_L2:
			return "l2";
		case SCOREAH_METRIC_IP:
			return "inner_product";
		case SCOREAH_METRIC_COSINE:
			return "cosine";
	}
	return "unknown";
}

/* What the rows of the index say */
typedef struct RowFigures
{
	uint32	   *perLeaf;		/* live rows per leaf (sorted at the end) */
	int64		live;
	int64		inserted;
	int64		dead;
	int64		nullVectors;	/* rows of the extra leaves */
	int64		zeroVectors;
	int			emptyLeaves;
	double		insertedDist;	/* sum over measured inserted rows */
	int64		insertedMeasured;
} RowFigures;

/* Pages by kind, over every block */
static void
CountPages(Relation index, BlockNumber nblocks, int64 *byKind, int64 *pagesNew)
{
	for (BlockNumber b = 0; b < nblocks; b++)
	{
		Buffer		buf = ReadBuffer(index, b);
		Page		page;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
			(*pagesNew)++;
		else
		{
			uint16		kind = ScoreahPageGetOpaque(page)->kind;

			if (kind <= SCOREAH_PAGE_DELETED)
				byKind[kind]++;
		}
		UnlockReleaseBuffer(buf);
	}
}

/*
 * How far a stored vector of a row inserted after the build sits from its
 * leaf's centroid, as the build measured its rows (unit vectors for
 * cosine); -1 when VACUUM freed it meanwhile.
 */
static double
InsertedDistance(Relation index, ScoreahCache cache, int leaf, BlockNumber blkno,
				 uint16 off, float *vec)
{
	int			dim = cache->meta.dimensions;
	const float *c = cache->model.centroids + (Size) leaf * dim;

	if (ScoreahReadVector(index, &cache->meta, blkno, off, (uint32) leaf, vec) == NULL)
		return -1;
	if (cache->meta.metric == SCOREAH_METRIC_COSINE)
		scoreah_normalize(vec, dim, vec);
	scoreah_scale(vec, dim, cache->meta.scale, vec);	/* the model's units */
	return scoreah_exact_l2(vec, c, dim);
}

/* Rows per leaf, inserted rows and how far they sit from their centroid */
static void
CountRows(Relation index, ScoreahCache cache, RowFigures *f)
{
	ScoreahMetaPage meta = &cache->meta;
	bool		measure = (meta->flags & SCOREAH_FLAG_TRAINED) && meta->dimensions > 0 &&
		meta->reorderStorage != SCOREAH_STORAGE_TABLE;
	float	   *vec = palloc(sizeof(float) * Max(meta->dimensions, 1));
	bool		standby = RecoveryInProgress();
	struct
	{
		BlockNumber blkno;
		uint16		off;
		int			leaf;
	}		   *sample = palloc(sizeof(*sample) * STALENESS_SAMPLE);
	int			nsample;
	int64		seen = 0;
	pg_prng_state rng;

	/*
	 * The inserted rows measured are a uniform sample of them all (a
	 * reservoir, seeded so that the figure repeats), not the first ones
	 * met: leaves are walked in order, and rows arriving in new regions
	 * land in whichever leaves are nearest.
	 */
	pg_prng_seed(&rng, UINT64CONST(0x5c0ea4));

	f->perLeaf = palloc0(sizeof(uint32) * ScoreahDirEntries(meta));
	for (int leaf = 0; leaf < ScoreahDirEntries(meta); leaf++)
	{
		ScoreahLeafData entry;
		ScoreahChainData chain;
		ScoreahLayout layout = ScoreahCacheLeafLayout(cache, leaf);
		ScoreahLayoutData fresh;
		Size		gsize;
		bool		extra = leaf >= (int) meta->nleaves;

		/*
		 * The leaf's share lock keeps VACUUM from freeing its pages under
		 * the walk (inserts take it too and go on): the walk is strict, and
		 * a page freed and reused meanwhile would look like corruption.  On
		 * a hot standby replay frees and reuses pages without that lock, so
		 * there the walk stops quietly at a page that left the leaf, as a
		 * scan's does, and the counts are those of the pages it read.
		 */
		if (!standby)
			LockPage(index, (BlockNumber) leaf, ShareLock);
		ScoreahReadLeaf(index, meta, leaf, &entry);
		if (meta->dimensions == 0 && !extra && entry.codeHead != InvalidBlockNumber)
		{
			ScoreahMetaPageData now;

			/*
			 * The first row of an index built empty arrived after the cache
			 * was loaded: its insert fixed the dimension before it added
			 * pages, laid out for it.  (Its rows are counted; the figures
			 * that need the model are left out.)
			 */
			ScoreahReadMeta(index, &now);
			ScoreahValidateMeta(index, &now);
			ScoreahComputeLeafLayout(&now, leaf, &fresh);
			layout = &fresh;
		}
		gsize = layout->gsize;
		ScoreahChainBegin(&chain, index, entry.codeHead, SCOREAH_PAGE_CODES, (uint32) leaf,
						  BUFFER_LOCK_SHARE, standby ? 0 : SCOREAH_CHAIN_STRICT);
		chain.groups = layout;
		while (ScoreahChainNext(&chain))
		{
			int			ngroups = ScoreahPageGetNGroups(chain.page, gsize);

			CHECK_FOR_INTERRUPTS();
			for (int g = 0; g < ngroups; g++)
			{
				char	   *group = PageGetContents(chain.page) + g * gsize;
				ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
				ItemPointer tids = ScoreahGroupTids(layout, group);

				for (int i = 0; i < gh->nitems; i++)
				{
					BlockNumber blkno;
					uint16		off;

					if (!ItemPointerIsValid(&tids[i]))
					{
						f->dead++;
						continue;
					}
					if (extra)
					{
						if (leaf == ScoreahNullLeaf(meta))
							f->nullVectors++;
						else
							f->zeroVectors++;
						continue;
					}
					f->live++;
					f->perLeaf[leaf]++;
					if (!ScoreahGroupIsInserted(gh, i))
						continue;
					f->inserted++;
					if (measure && ScoreahRowVector(layout, gh, i, &blkno, &off))
					{
						int64		slot = seen++;

						if (slot >= STALENESS_SAMPLE)
							slot = (int64) pg_prng_uint64_range(&rng, 0, (uint64) slot);
						if (slot < STALENESS_SAMPLE)
						{
							sample[slot].blkno = blkno;
							sample[slot].off = off;
							sample[slot].leaf = leaf;
						}
					}
				}
			}
		}
		ScoreahChainEnd(&chain);
		if (!standby)
			UnlockPage(index, (BlockNumber) leaf, ShareLock);
		if (!extra && f->perLeaf[leaf] == 0)
			f->emptyLeaves++;
	}

	/*
	 * Vectors are read after the leaves are released, so that VACUUM need
	 * not wait for them; ScoreahReadVector tells a page freed meanwhile.
	 * The first STALENESS_SAMPLE rows filled the reservoir in order.
	 */
	nsample = (int) Min(seen, STALENESS_SAMPLE);
	for (int i = 0; i < nsample; i++)
	{
		double		d;

		CHECK_FOR_INTERRUPTS();
		d = InsertedDistance(index, cache, sample[i].leaf, sample[i].blkno, sample[i].off, vec);
		if (d >= 0)
		{
			f->insertedDist += d;
			f->insertedMeasured++;
		}
	}
	qsort(f->perLeaf, meta->nleaves, sizeof(uint32), CmpUint32);
}

/* How a scan's lookup tables are made for this index (scoreah.h, row biases) */
static const char *
LookupTables(ScoreahMetaPage meta)
{
	if (!(meta->flags & SCOREAH_FLAG_TRAINED) || meta->nblocks == 0 ||
		meta->scoring == SCOREAH_SCORING_BRUTE_FORCE)
		return "none (exact scoring)";
	if (meta->flags & SCOREAH_FLAG_ROW_BIAS)
		return "one per query (L2 on residuals: each row's bias kept with its codes)";
	if (meta->metric != SCOREAH_METRIC_L2 || !(meta->flags & SCOREAH_FLAG_RESIDUAL))
		return "one per query";
	if (!ScoreahRowBiasFits(meta))
		return "one per leaf searched (L2 on residuals, where row biases would take code pages' room)";
	return "one per leaf searched (L2 on residuals, built before row biases: REINDEX keeps them)";
}

/*
 * The options in force, as frozen in the metapage.  Under row-level
 * security an inner-product index's threshold is not shown: chosen by the
 * build, it is a multiple of the rows' mean norm, which is not shown
 * either.
 */
static void
PutOptions(ReturnSetInfo *rsinfo, ScoreahMetaPage meta, bool rlsActive)
{
	PutRow(rsinfo, "metric", MetricName(meta->metric));
	PutRow(rsinfo, "column_type", meta->format == SCOREAH_FORMAT_VECTOR ? "vector" :
		   meta->format == SCOREAH_FORMAT_HALFVEC ? "halfvec" : "real[]");
	PutRow(rsinfo, "dimensions", psprintf("%u", meta->dimensions));
	PutRow(rsinfo, "trained", (meta->flags & SCOREAH_FLAG_TRAINED) ? "true" : "false");
	PutRow(rsinfo, "num_leaves", psprintf("%u", meta->nleaves));
	PutRow(rsinfo, "num_leaves_to_search", psprintf("%u", meta->numLeavesToSearch));
	/* the sample sizes the build used: all the rows of a smaller table */
	PutRow(rsinfo, "leaves_training_sample_size",
		   rlsActive ? NOT_SHOWN_RLS : psprintf("%u", meta->leavesTrainingSampleSize));
	PutRow(rsinfo, "leaves_training_iterations", psprintf("%u", meta->leavesTrainingIterations));
	PutRow(rsinfo, "min_partition_size", psprintf("%u", meta->minPartitionSize));
	PutRow(rsinfo, "spherical", (meta->flags & SCOREAH_FLAG_SPHERICAL) ? "true" : "false");
	PutRow(rsinfo, "quantize_centroids", (meta->flags & SCOREAH_FLAG_QUANTIZE_CENTROIDS) ? "true" : "false");
	PutRow(rsinfo, "random_init", (meta->flags & SCOREAH_FLAG_RANDOM_INIT) ? "true" : "false");
	PutRow(rsinfo, "residual_quantization", (meta->flags & SCOREAH_FLAG_RESIDUAL) ? "true" : "false");
	PutRow(rsinfo, "dimensions_per_block", psprintf("%u", meta->dimsPerBlock));
	PutRow(rsinfo, "pq_blocks", psprintf("%u", meta->nblocks));
	PutRow(rsinfo, "anisotropic_quantization_threshold",
		   isnan(meta->threshold) ? "off" :
		   rlsActive && meta->metric == SCOREAH_METRIC_IP ? NOT_SHOWN_RLS :
		   psprintf("%g", meta->threshold));
	PutRow(rsinfo, "training_sample_size",
		   rlsActive ? NOT_SHOWN_RLS : psprintf("%u", meta->trainingSampleSize));
	PutRow(rsinfo, "training_iterations", psprintf("%u", meta->trainingIterations));
	PutRow(rsinfo, "scoring", meta->scoring == SCOREAH_SCORING_BRUTE_FORCE ? "brute_force" : "ah");
	PutRow(rsinfo, "lookup_tables", LookupTables(meta));
	PutRow(rsinfo, "reordering_storage",
		   meta->reorderStorage == SCOREAH_STORAGE_HALF ? "float16" :
		   meta->reorderStorage == SCOREAH_STORAGE_TABLE ? "table" : "float32");
	/* route.c: distance plus a share of each leaf's spread (L2, cosine) */
	PutRow(rsinfo, "spread_routing",
		   meta->spreadBytes > 0 && meta->spreadWeight > 0 && meta->metric != SCOREAH_METRIC_IP ?
		   psprintf("%g", (double) meta->spreadWeight) : "off");
}

/* The key columns after the vector, and how their values are compared */
static void
PutKeys(ReturnSetInfo *rsinfo, Relation index, ScoreahMetaPage meta)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int k = 0; k < (int) meta->nkeys; k++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(index), ScoreahKeyColumn(index, k));

		appendStringInfo(&buf, "%s%s (%s%s)", k > 0 ? ", " : "", NameStr(att->attname),
						 format_type_be(att->atttypid),
						 meta->keyKinds[k] == SCOREAH_KEY_HASH ? ", compared by hash" : "");
	}
	PutRow(rsinfo, "key_columns", meta->nkeys > 0 ? buf.data : "none");
}

/*
 * What the build chose where no option said, and why: one row per choice,
 * "option" when the user's option decided.
 */
static void
PutChoices(ReturnSetInfo *rsinfo, ScoreahMetaPage meta, bool rlsActive)
{
	uint32		f = meta->autoFlags;

	PutRow(rsinfo, "num_leaves_chosen",
		   !(f & SCOREAH_AUTO_LEAVES) ? "option" :
		   rlsActive ? "auto: about sqrt(rows), at most one per sampled row" :
		   psprintf("auto: about sqrt(" INT64_FORMAT " rows), at most one per sampled row",
					meta->rowsBuilt));
	PutRow(rsinfo, "dimensions_per_block_chosen",
		   (f & SCOREAH_AUTO_DIMS_PER_BLOCK) ?
		   psprintf("auto: %u blocks for %u dimensions (%s)", meta->nblocks, meta->dimensions,
					meta->dimsPerBlock == 2 ? "2 dimensions per block while the codes fit a page" :
					"the fewest dimensions per block whose codes fit a page") : "option");
	if (!(f & SCOREAH_AUTO_THRESHOLD))
		PutRow(rsinfo, "anisotropic_quantization_threshold_chosen", "option");
	else if (isnan(meta->threshold))
		PutRow(rsinfo, "anisotropic_quantization_threshold_chosen",
			   meta->scoring == SCOREAH_SCORING_AH ?
			   "auto: off (the anisotropic loss is for inner products; L2 is served best without it)" :
			   "auto: off (brute-force scoring has no codes)");
	else
		PutRow(rsinfo, "anisotropic_quantization_threshold_chosen",
			   psprintf("auto: sqrt(4 / (dimensions + 3))%s, so that eta = 4 at %u dimensions as ScaNN's 0.2 gives at 100",
					meta->metric == SCOREAH_METRIC_COSINE ? "" : " x the mean norm",
					meta->dimensions));
	PutRow(rsinfo, "quantize_centroids_chosen",
		   !(f & SCOREAH_AUTO_QUANTIZE_CENTROIDS) ? "option" :
		   (meta->flags & SCOREAH_FLAG_QUANTIZE_CENTROIDS) ?
		   psprintf("auto: true (%d or more dimensions, where int8 centroids route faster)",
					SCOREAH_QUANTIZE_MIN_DIM) :
		   psprintf("auto: false (fewer than %d dimensions, where float centroids route as fast)",
					SCOREAH_QUANTIZE_MIN_DIM));
	PutRow(rsinfo, "training_sample_rows",
		   rlsActive ? NOT_SHOWN_RLS :
		   psprintf("%u%s", meta->sampleRows,
					(f & SCOREAH_AUTO_SAMPLE) ?
					psprintf(" (auto: at most %d, and at most 3/4 of maintenance_work_mem)",
							 SCOREAH_AUTO_SAMPLE_ROWS) : " (options)"));
	/* the scale is the power of 2 that brings the mean norm into [1, 2) */
	if (!rlsActive)
	{
		PutRow(rsinfo, "mean_norm", psprintf("%.6g", meta->meanNorm));
		PutRow(rsinfo, "scale", psprintf("%.6g", meta->scale));
	}
}

/*
 * The recall the build measured (calibrate.c): one row per number of
 * leaves searched, recall@10 at each re-ranking depth, and what
 * scoreah.target_recall chooses for a few targets.
 */
static void
PutCalibration(ReturnSetInfo *rsinfo, ScoreahMetaPage meta, bool rlsActive)
{
	const ScoreahCalibrationData *cal = &meta->calibration;
	static const double targets[] = {0.8, 0.9, 0.95, 0.98, 0.99};

	/* recall measured on the rows is a figure of them */
	if (rlsActive)
	{
		PutRow(rsinfo, "calibration", NOT_SHOWN_RLS);
		return;
	}
	if (cal->nqueries == 0)
	{
		PutRow(rsinfo, "calibration",
			   "none (the build could not hold out 20 sample rows as queries: too few rows, or num_leaves near the sample's size): scoreah.target_recall searches every leaf");
		return;
	}
	PutRow(rsinfo, "calibration",
		   psprintf("recall@%u of %u held-out sample rows as queries, measured by the build",
					cal->k, cal->nqueries));
	for (int i = 0; i < cal->nprobes; i++)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		for (int j = 0; j < cal->nreorders; j++)
			appendStringInfo(&buf, "%sreordering %u: %.4f", j > 0 ? ", " : "",
							 cal->reorders[j], cal->recall[i][j] / 10000.0);
		PutRow(rsinfo, psprintf("calibration_leaves_%u", cal->probes[i]), buf.data);
	}
	for (int t = 0; t < lengthof(targets); t++)
	{
		int			probes,
					reorder;
		double		expected;

		const char *how;

		if (ScoreahCalibChoose(meta, targets[t], &probes, &reorder, &expected) == SCOREAH_CALIB_MET)
			how = psprintf("calibrated recall %.4f", expected);
		else if ((uint32) probes > cal->probes[cal->nprobes - 1])
			how = psprintf("extrapolated: the calibration measured at most %.4f, at %u leaves",
						   expected, cal->probes[cal->nprobes - 1]);
		else
			how = psprintf("out of reach: the calibration measured at most %.4f, with every leaf searched",
						   expected);
		PutRow(rsinfo, psprintf("target_recall_%.2f", targets[t]),
			   psprintf("num_leaves_to_search = %d, reordering_num_neighbors = %d (%s)",
						probes, reorder, how));
	}
}

/* Counts of the table's rows */
static void
PutRowCounts(ReturnSetInfo *rsinfo, ScoreahMetaPage meta, const RowFigures *f)
{
	PutRow(rsinfo, "rows", psprintf(INT64_FORMAT, f->live));
	PutRow(rsinfo, "rows_built", psprintf(INT64_FORMAT, meta->rowsBuilt));
	PutRow(rsinfo, "rows_inserted_since_build", psprintf(INT64_FORMAT, f->inserted));
	PutRow(rsinfo, "dead_slots", psprintf(INT64_FORMAT, f->dead));
	PutRow(rsinfo, "rows_null_vector", psprintf(INT64_FORMAT, f->nullVectors));
	if (meta->metric == SCOREAH_METRIC_COSINE)
		PutRow(rsinfo, "rows_zero_vector", psprintf(INT64_FORMAT, f->zeroVectors));
	PutRow(rsinfo, "rows_per_leaf_min", psprintf("%u", meta->nleaves ? f->perLeaf[0] : 0));
	PutRow(rsinfo, "rows_per_leaf_median", psprintf("%u", meta->nleaves ? f->perLeaf[meta->nleaves / 2] : 0));
	PutRow(rsinfo, "rows_per_leaf_max", psprintf("%u", meta->nleaves ? f->perLeaf[meta->nleaves - 1] : 0));
	PutRow(rsinfo, "empty_leaves", psprintf("%d", f->emptyLeaves));
}

/* Pages and bytes by kind */
static void
PutPages(ReturnSetInfo *rsinfo, BlockNumber nblocks, const int64 *byKind, int64 pagesNew)
{
	PutRow(rsinfo, "pages", psprintf("%u", nblocks));
	PutRow(rsinfo, "bytes", psprintf(INT64_FORMAT, (int64) nblocks * BLCKSZ));
	PutRow(rsinfo, "bytes_metapage", psprintf(INT64_FORMAT, byKind[SCOREAH_PAGE_META] * BLCKSZ));
	PutRow(rsinfo, "bytes_centroids_and_codebooks", psprintf(INT64_FORMAT, byKind[SCOREAH_PAGE_BLOB] * BLCKSZ));
	PutRow(rsinfo, "bytes_directory", psprintf(INT64_FORMAT, byKind[SCOREAH_PAGE_DIRECTORY] * BLCKSZ));
	PutRow(rsinfo, "bytes_codes", psprintf(INT64_FORMAT, byKind[SCOREAH_PAGE_CODES] * BLCKSZ));
	PutRow(rsinfo, "bytes_vectors", psprintf(INT64_FORMAT, byKind[SCOREAH_PAGE_VECTORS] * BLCKSZ));
	PutRow(rsinfo, "bytes_free", psprintf(INT64_FORMAT, (byKind[SCOREAH_PAGE_DELETED] + pagesNew) * BLCKSZ));
}

/* How stale the index is, and the advice drawn from it */
static void
PutStaleness(ReturnSetInfo *rsinfo, ScoreahMetaPage meta, const RowFigures *f)
{
	double		staleness = (f->insertedMeasured > 0 && meta->builtMeanDistance > 0) ?
		(f->insertedDist / f->insertedMeasured) / meta->builtMeanDistance : 0;
	const char *advice;

	PutRow(rsinfo, "built_mean_distance_to_centroid", psprintf("%.6g", meta->builtMeanDistance));
	PutRow(rsinfo, "inserted_mean_distance_to_centroid",
		   f->insertedMeasured > 0 ? psprintf("%.6g", f->insertedDist / f->insertedMeasured) : "n/a");
	PutRow(rsinfo, "staleness", f->insertedMeasured > 0 ? psprintf("%.3f", staleness) : "n/a");

	if (!(meta->flags & SCOREAH_FLAG_TRAINED))
		advice = "REINDEX: the index was built without data and scores every row exactly";
	else if (f->inserted > Max(f->live / 2, 1000) || staleness > 1.5)
		advice = "REINDEX recommended: many rows arrived after the build or sit far from their centroids";
	else
		advice = "ok";
	PutRow(rsinfo, "advice", advice);
}

/*
 * scoreah_index_info(index regclass) RETURNS TABLE (name text, value text)
 */
Datum
scoreah_index_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	index;
	bool		rlsActive;
	ScoreahCache cache;
	BlockNumber nblocks;
	int64		byKind[SCOREAH_PAGE_DELETED + 1] = {0};
	int64		pagesNew = 0;
	RowFigures	f;

	InitMaterializedSRF(fcinfo, 0);
	index = ScoreahOpenForIntrospection(PG_GETARG_OID(0), &rlsActive);

	/*
	 * Not ready: a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY is
	 * building it (its metapage not written yet, or its blocks still zero:
	 * no corruption to report), or one failed and left it so.
	 */
	if (!index->rd_index->indisready)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" is not ready: a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY is building it, or failed",
						RelationGetRelationName(index)),
				 errhint("Wait for the command to finish; one that failed leaves the index invalid: drop it or REINDEX it.")));
	/* a CREATE INDEX CONCURRENTLY that failed leaves an index of no pages */
	if (RelationGetNumberOfBlocks(index) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" has no metapage: it was never built", RelationGetRelationName(index)),
				 index->rd_index->indisvalid ? 0 :
				 errhint("It is marked invalid (a CREATE INDEX CONCURRENTLY that failed?): drop it or REINDEX it.")));
	cache = ScoreahCacheAcquire(index);
	nblocks = RelationGetNumberOfBlocks(index);
	CountPages(index, nblocks, byKind, &pagesNew);
	memset(&f, 0, sizeof(f));
	if (!rlsActive)
		CountRows(index, cache, &f);

	PutOptions(rsinfo, &cache->meta, rlsActive);
	PutKeys(rsinfo, index, &cache->meta);
	if (cache->meta.flags & SCOREAH_FLAG_TRAINED)
	{
		PutChoices(rsinfo, &cache->meta, rlsActive);
		PutCalibration(rsinfo, &cache->meta, rlsActive);
	}
	if (!rlsActive)
		PutRowCounts(rsinfo, &cache->meta, &f);
	PutPages(rsinfo, nblocks, byKind, pagesNew);
	if (!rlsActive)
		PutStaleness(rsinfo, &cache->meta, &f);
	else
		PutRow(rsinfo, "row_level_security",
			   "active for this role: figures of the table's rows are not shown (as in pg_stats)");

	ScoreahCacheRelease(cache);
	index_close(index, AccessShareLock);
	return (Datum) 0;
}
