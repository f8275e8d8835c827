/*-------------------------------------------------------------------------
 *
 * introspect.c
 *	  scoreah_index_info(regclass): what an index holds and how stale it is.
 *	  scoreah_index_check(regclass): an amcheck-style walk of the structure.
 *
 * Both read every page of the index under AccessShareLock, and both need
 * SELECT on the indexed table: the codes and vectors are the table's data.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "scoreah.h"

PG_FUNCTION_INFO_V1(scoreah_index_info);
PG_FUNCTION_INFO_V1(scoreah_index_check);

/* rows whose vectors are read to measure staleness, at most */
#define STALENESS_SAMPLE 10000

/*
 * Open a scoreah index for reading after checking that the caller may read
 * its table.  The privilege is checked before any lock is taken.
 */
static Relation
OpenIndexChecked(Oid indexOid)
{
	Oid			heapOid;
	Relation	index;
	AclResult	aclresult;

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
	aclresult = pg_class_aclcheck(heapOid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(heapOid)),
				 errdetail("Reading a scoreah index needs SELECT on the table it indexes.")));

	index = index_open(indexOid, AccessShareLock);
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
PutRow(Tuplestorestate *ts, TupleDesc desc, const char *name, char *value)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(value);
	tuplestore_putvalues(ts, desc, values, nulls);
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

/*
 * scoreah_index_info(index regclass) RETURNS TABLE (name text, value text)
 */
Datum
scoreah_index_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	index;
	ScoreahCache cache;
	ScoreahMetaPage meta;
	BlockNumber nblocks;
	int64		pagesByKind[SCOREAH_PAGE_DELETED + 1] = {0};
	int64		pagesNew = 0;
	uint32	   *perLeaf;
	int64		live = 0,
				inserted = 0,
				dead = 0;
	int			emptyLeaves = 0;
	double		insertedDist = 0;
	int64		insertedMeasured = 0;
	float	   *vec;
	float	   *unit;
	Size		gsize;

	InitMaterializedSRF(fcinfo, 0);
	index = OpenIndexChecked(PG_GETARG_OID(0));
	cache = ScoreahGetCache(index);
	meta = &cache->meta;
	nblocks = RelationGetNumberOfBlocks(index);
	gsize = cache->layout.gsize;

	/* pages by kind */
	for (BlockNumber b = 0; b < nblocks; b++)
	{
		Buffer		buf = ReadBuffer(index, b);
		Page		page;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
			pagesNew++;
		else
		{
			uint16		kind = ScoreahPageGetOpaque(page)->kind;

			if (kind <= SCOREAH_PAGE_DELETED)
				pagesByKind[kind]++;
		}
		UnlockReleaseBuffer(buf);
	}

	/* rows per leaf, inserted rows and how far they sit from their centroid */
	perLeaf = palloc0(sizeof(uint32) * meta->nleaves);
	vec = palloc(sizeof(float) * Max(meta->dimensions, 1));
	unit = palloc(sizeof(float) * Max(meta->dimensions, 1));
	for (int leaf = 0; leaf < (int) meta->nleaves; leaf++)
	{
		ScoreahLeafData entry;

		ScoreahReadLeaf(index, meta, leaf, &entry);
		for (BlockNumber blkno = entry.codeHead; blkno != InvalidBlockNumber;)
		{
			Buffer		buf = ReadBuffer(index, blkno);
			Page		page;
			int			ngroups;
			struct
			{
				BlockNumber blkno;
				uint16		off;
			}			sample[SCOREAH_GROUP_ROWS * 24];
			int			nsample = 0;

			CHECK_FOR_INTERRUPTS();
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			ScoreahCheckPage(index, page, blkno, SCOREAH_PAGE_CODES);
			ngroups = ScoreahPageGetNGroups(page, gsize);
			for (int g = 0; g < ngroups; g++)
			{
				char	   *group = PageGetContents(page) + g * gsize;
				ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
				ItemPointer tids = ScoreahGroupTids(&cache->layout, group);

				for (int i = 0; i < gh->nitems; i++)
				{
					if (!ItemPointerIsValid(&tids[i]))
					{
						dead++;
						continue;
					}
					live++;
					perLeaf[leaf]++;
					if (ScoreahGroupIsInserted(gh, i))
					{
						inserted++;
						if (insertedMeasured + nsample < STALENESS_SAMPLE &&
							nsample < lengthof(sample) &&
							ScoreahRowVector(&cache->layout, gh, i,
											 &sample[nsample].blkno, &sample[nsample].off))
							nsample++;
					}
				}
			}
			blkno = ScoreahPageGetOpaque(page)->nextblkno;
			UnlockReleaseBuffer(buf);

			/* distance to the leaf's centroid, as the build measured it */
			if ((meta->flags & SCOREAH_FLAG_TRAINED) && meta->dimensions > 0 &&
				meta->reorderStorage != SCOREAH_STORAGE_TABLE)
			{
				int			dim = meta->dimensions;
				const float *c = cache->model.centroids + (Size) leaf * dim;

				for (int i = 0; i < nsample; i++)
				{
					if (ScoreahReadVector(index, meta, sample[i].blkno, sample[i].off,
										  (uint32) leaf, vec) == NULL)
						continue;	/* freed meanwhile by VACUUM */
					if (meta->metric == SCOREAH_METRIC_COSINE)
					{
						double		n = scoreah_exact_norm(vec, dim);

						for (int d = 0; d < dim; d++)
							unit[d] = n > 0 ? (float) (vec[d] / n) : 0;
						insertedDist += scoreah_exact_l2(unit, c, dim);
					}
					else
						insertedDist += scoreah_exact_l2(vec, c, dim);
					insertedMeasured++;
				}
			}
		}
		if (perLeaf[leaf] == 0)
			emptyLeaves++;
	}
	qsort(perLeaf, meta->nleaves, sizeof(uint32), CmpUint32);

	{
		Tuplestorestate *ts = rsinfo->setResult;
		TupleDesc	desc = rsinfo->setDesc;
		bool		trained = (meta->flags & SCOREAH_FLAG_TRAINED) != 0;
		double		staleness = (insertedMeasured > 0 && meta->builtMeanDistance > 0) ?
		(insertedDist / insertedMeasured) / meta->builtMeanDistance : 0;
		const char *advice;

		PutRow(ts, desc, "metric", (char *) MetricName(meta->metric));
		PutRow(ts, desc, "dimensions", psprintf("%u", meta->dimensions));
		PutRow(ts, desc, "trained", trained ? "true" : "false");
		PutRow(ts, desc, "num_leaves", psprintf("%u", meta->nleaves));
		PutRow(ts, desc, "num_leaves_to_search", psprintf("%u", meta->numLeavesToSearch));
		PutRow(ts, desc, "leaves_training_sample_size", psprintf("%u", meta->leavesTrainingSampleSize));
		PutRow(ts, desc, "leaves_training_iterations", psprintf("%u", meta->leavesTrainingIterations));
		PutRow(ts, desc, "min_partition_size", psprintf("%u", meta->minPartitionSize));
		PutRow(ts, desc, "spherical", (meta->flags & SCOREAH_FLAG_SPHERICAL) ? "true" : "false");
		PutRow(ts, desc, "quantize_centroids", (meta->flags & SCOREAH_FLAG_QUANTIZE_CENTROIDS) ? "true" : "false");
		PutRow(ts, desc, "random_init", (meta->flags & SCOREAH_FLAG_RANDOM_INIT) ? "true" : "false");
		PutRow(ts, desc, "residual_quantization", (meta->flags & SCOREAH_FLAG_RESIDUAL) ? "true" : "false");
		PutRow(ts, desc, "dimensions_per_block", psprintf("%u", meta->dimsPerBlock));
		PutRow(ts, desc, "pq_blocks", psprintf("%u", meta->nblocks));
		PutRow(ts, desc, "anisotropic_quantization_threshold",
			   isnan(meta->threshold) ? "off" : psprintf("%g", meta->threshold));
		PutRow(ts, desc, "training_sample_size", psprintf("%u", meta->trainingSampleSize));
		PutRow(ts, desc, "training_iterations", psprintf("%u", meta->trainingIterations));
		PutRow(ts, desc, "scoring", meta->scoring == SCOREAH_SCORING_BRUTE_FORCE ? "brute_force" : "ah");
		PutRow(ts, desc, "reordering_storage",
			   meta->reorderStorage == SCOREAH_STORAGE_HALF ? "float16" :
			   meta->reorderStorage == SCOREAH_STORAGE_TABLE ? "table" : "float32");
		PutRow(ts, desc, "rows", psprintf(INT64_FORMAT, live));
		PutRow(ts, desc, "rows_built", psprintf(INT64_FORMAT, meta->rowsBuilt));
		PutRow(ts, desc, "rows_inserted_since_build", psprintf(INT64_FORMAT, inserted));
		PutRow(ts, desc, "dead_slots", psprintf(INT64_FORMAT, dead));
		PutRow(ts, desc, "rows_per_leaf_min", psprintf("%u", meta->nleaves ? perLeaf[0] : 0));
		PutRow(ts, desc, "rows_per_leaf_median", psprintf("%u", meta->nleaves ? perLeaf[meta->nleaves / 2] : 0));
		PutRow(ts, desc, "rows_per_leaf_max", psprintf("%u", meta->nleaves ? perLeaf[meta->nleaves - 1] : 0));
		PutRow(ts, desc, "empty_leaves", psprintf("%d", emptyLeaves));
		PutRow(ts, desc, "pages", psprintf("%u", nblocks));
		PutRow(ts, desc, "bytes", psprintf(INT64_FORMAT, (int64) nblocks * BLCKSZ));
		PutRow(ts, desc, "bytes_metapage", psprintf(INT64_FORMAT, pagesByKind[SCOREAH_PAGE_META] * BLCKSZ));
		PutRow(ts, desc, "bytes_centroids_and_codebooks", psprintf(INT64_FORMAT, pagesByKind[SCOREAH_PAGE_BLOB] * BLCKSZ));
		PutRow(ts, desc, "bytes_directory", psprintf(INT64_FORMAT, pagesByKind[SCOREAH_PAGE_DIRECTORY] * BLCKSZ));
		PutRow(ts, desc, "bytes_codes", psprintf(INT64_FORMAT, pagesByKind[SCOREAH_PAGE_CODES] * BLCKSZ));
		PutRow(ts, desc, "bytes_vectors", psprintf(INT64_FORMAT, pagesByKind[SCOREAH_PAGE_VECTORS] * BLCKSZ));
		PutRow(ts, desc, "bytes_free", psprintf(INT64_FORMAT, (pagesByKind[SCOREAH_PAGE_DELETED] + pagesNew) * BLCKSZ));
		PutRow(ts, desc, "built_mean_distance_to_centroid", psprintf("%.6g", meta->builtMeanDistance));
		PutRow(ts, desc, "inserted_mean_distance_to_centroid",
			   insertedMeasured > 0 ? psprintf("%.6g", insertedDist / insertedMeasured) : "n/a");
		PutRow(ts, desc, "staleness", insertedMeasured > 0 ? psprintf("%.3f", staleness) : "n/a");

		if (!trained)
			advice = "REINDEX: the index was built without data and scores every row exactly";
		else if (inserted > Max(live / 2, 1000) || staleness > 1.5)
			advice = "REINDEX recommended: many rows arrived after the build or sit far from their centroids";
		else
			advice = "ok";
		PutRow(ts, desc, "advice", (char *) advice);
	}

	index_close(index, AccessShareLock);
	return (Datum) 0;
}

/* ---- structural check ---- */

typedef struct CheckState
{
	Relation	index;
	Tuplestorestate *ts;
	TupleDesc	desc;
	int			nproblems;
	BlockNumber nblocks;
	BlockNumber heapBlocks;
	Bitmapset  *seen;			/* blocks already on some chain */
} CheckState;

static void
Problem(CheckState *cs, const char *fmt,...)
	pg_attribute_printf(2, 3);

static void
Problem(CheckState *cs, const char *fmt,...)
{
	va_list		args;
	StringInfoData buf;
	Datum		value;
	bool		isnull = false;

	if (cs->nproblems++ >= 1000)
		return;					/* enough to know it is broken */
	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	value = CStringGetTextDatum(buf.data);
	tuplestore_putvalues(cs->ts, cs->desc, &value, &isnull);
}

/*
 * Read a page for the check; returns InvalidBuffer (and reports) when the
 * block is out of range, of the wrong kind, or already on another chain.
 */
static Buffer
CheckedPage(CheckState *cs, BlockNumber blkno, uint16 kind, const char *what, int leaf)
{
	Buffer		buf;
	Page		page;
	ScoreahPageOpaque opaque;

	if (blkno >= cs->nblocks)
	{
		Problem(cs, "leaf %d: %s points to block %u, past the end of the index (%u blocks)",
				leaf, what, blkno, cs->nblocks);
		return InvalidBuffer;
	}
	if (bms_is_member((int) blkno, cs->seen))
	{
		Problem(cs, "leaf %d: %s reaches block %u a second time (cycle or shared page)",
				leaf, what, blkno);
		return InvalidBuffer;
	}
	cs->seen = bms_add_member(cs->seen, (int) blkno);
	buf = ReadBuffer(cs->index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	opaque = ScoreahPageGetOpaque(page);
	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(ScoreahPageOpaqueData)) ||
		opaque->page_id != SCOREAH_PAGE_ID || opaque->kind != kind)
	{
		Problem(cs, "leaf %d: %s block %u is not a page of kind %d", leaf, what, blkno, kind);
		UnlockReleaseBuffer(buf);
		return InvalidBuffer;
	}
	if (opaque->leaf != (leaf < 0 ? SCOREAH_NO_LEAF : (uint32) leaf))
	{
		Problem(cs, "leaf %d: %s block %u belongs to leaf %d", leaf, what, blkno,
				(int) opaque->leaf);
		UnlockReleaseBuffer(buf);
		return InvalidBuffer;
	}
	return buf;
}

/*
 * A vector page a group of leaf lists: is it a vector page that leaf may
 * use, and how far do its records go?  The last page looked at is
 * remembered, since a leaf's groups list the same pages one after another.
 */
typedef struct VectorPageMemo
{
	BlockNumber blkno;
	bool		ok;
	uint16		lower;
} VectorPageMemo;

static bool
CheckVectorPage(CheckState *cs, VectorPageMemo *memo, BlockNumber blkno, int leaf,
				BlockNumber codeBlk, int g)
{
	Buffer		buf;
	Page		page;

	if (memo->blkno == blkno)
		return memo->ok;
	memo->blkno = blkno;
	memo->ok = false;
	if (blkno >= cs->nblocks)
	{
		Problem(cs, "leaf %d: block %u group %d lists vector page %u past the end of the index (%u blocks)",
				leaf, codeBlk, g, blkno, cs->nblocks);
		return false;
	}
	buf = ReadBuffer(cs->index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!ScoreahVectorPageIs(page, (uint32) leaf))
		Problem(cs, "leaf %d: block %u group %d lists block %u, which is not a vector page of the leaf",
				leaf, codeBlk, g, blkno);
	else
	{
		ScoreahVectorPageHeaderData *vh = ScoreahVectorPageHeader(page);

		if (ScoreahPageGetOpaque(page)->leaf == SCOREAH_SHARED_LEAF &&
			(vh->firstLeaf > vh->lastLeaf || vh->refs > vh->lastLeaf - vh->firstLeaf + 1))
			Problem(cs, "vector page %u is shared by leaves %u to %u but counts %u of them",
					blkno, vh->firstLeaf, vh->lastLeaf, vh->refs);
		memo->ok = true;
		memo->lower = ((PageHeader) page)->pd_lower;
	}
	UnlockReleaseBuffer(buf);
	return memo->ok;
}

/*
 * scoreah_index_check(index regclass) RETURNS SETOF text: one row per
 * problem; no rows when the index is sound.
 */
Datum
scoreah_index_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CheckState	cs;
	ScoreahMetaPageData meta;
	Relation	heap;
	ScoreahLayoutData layout;
	Size		gsize;
	Size		vbytes;
	int			groupsPerPage;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	memset(&cs, 0, sizeof(cs));
	cs.index = OpenIndexChecked(PG_GETARG_OID(0));
	cs.ts = rsinfo->setResult;
	cs.desc = rsinfo->setDesc;
	cs.nblocks = RelationGetNumberOfBlocks(cs.index);
	heap = relation_open(IndexGetRelation(RelationGetRelid(cs.index), false), AccessShareLock);
	cs.heapBlocks = RelationGetNumberOfBlocks(heap);
	relation_close(heap, AccessShareLock);

	if (cs.nblocks == 0)
	{
		Problem(&cs, "index has no metapage");
		index_close(cs.index, AccessShareLock);
		return (Datum) 0;
	}
	ScoreahReadMeta(cs.index, &meta);	/* errors on a bad metapage */
	cs.seen = bms_make_singleton(SCOREAH_METAPAGE_BLKNO);

	if (meta.metric < SCOREAH_METRIC_L2 || meta.metric > SCOREAH_METRIC_COSINE)
		Problem(&cs, "metapage: unknown metric %u", meta.metric);
	if (meta.nleaves == 0 || meta.nleaves > SCOREAH_MAX_LEAVES)
		Problem(&cs, "metapage: %u leaves, expected 1 to %d", meta.nleaves, SCOREAH_MAX_LEAVES);
	if (meta.dimensions > SCOREAH_MAX_DIM)
		Problem(&cs, "metapage: %u dimensions, more than %d", meta.dimensions, SCOREAH_MAX_DIM);
	if (meta.nblocks > (uint32) SCOREAH_MAX_BLOCKS)
		Problem(&cs, "metapage: %u PQ blocks, more than %d", meta.nblocks, SCOREAH_MAX_BLOCKS);
	if ((meta.flags & SCOREAH_FLAG_TRAINED) && meta.dimsPerBlock > 0 && meta.nblocks > 0 &&
		meta.nblocks != (meta.dimensions + meta.dimsPerBlock - 1) / meta.dimsPerBlock)
		Problem(&cs, "metapage: %u PQ blocks do not match %u dimensions at %u per block",
				meta.nblocks, meta.dimensions, meta.dimsPerBlock);
	if (meta.directoryStart == InvalidBlockNumber ||
		meta.directoryStart + meta.directoryPages > cs.nblocks ||
		meta.directoryPages != (meta.nleaves + SCOREAH_LEAVES_PER_PAGE - 1) / SCOREAH_LEAVES_PER_PAGE)
	{
		Problem(&cs, "metapage: directory of %u pages at block %u does not fit %u leaves in %u blocks",
				meta.directoryPages, meta.directoryStart, meta.nleaves, cs.nblocks);
		index_close(cs.index, AccessShareLock);
		return (Datum) 0;
	}
	if (cs.nproblems > 0)
	{
		index_close(cs.index, AccessShareLock);
		return (Datum) 0;
	}

	/* model pages */
	if (meta.flags & SCOREAH_FLAG_TRAINED)
	{
		Size		blobBytes = (Size) meta.centroidBytes + meta.codebookBytes;
		BlockNumber nblob = (blobBytes + SCOREAH_PAGE_CAPACITY - 1) / SCOREAH_PAGE_CAPACITY;

		for (BlockNumber b = meta.blobStart; b < meta.blobStart + nblob; b++)
		{
			Buffer		buf = CheckedPage(&cs, b, SCOREAH_PAGE_BLOB, "model", -1);

			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
		}
	}
	for (BlockNumber b = meta.directoryStart; b < meta.directoryStart + meta.directoryPages; b++)
	{
		Buffer		buf = CheckedPage(&cs, b, SCOREAH_PAGE_DIRECTORY, "directory", -1);

		if (BufferIsValid(buf))
			UnlockReleaseBuffer(buf);
	}

	ScoreahComputeLayout(&meta, &layout);
	gsize = layout.gsize;
	groupsPerPage = layout.groupsPerPage;
	vbytes = layout.vbytes;

	/* vector chains first, so code items can be checked against them */
	for (int leaf = 0; leaf < (int) meta.nleaves; leaf++)
	{
		ScoreahLeafData entry;
		bool		tailSeen = false;

		CHECK_FOR_INTERRUPTS();
		ScoreahReadLeaf(cs.index, &meta, leaf, &entry);
		for (BlockNumber blkno = entry.vecHead; blkno != InvalidBlockNumber;)
		{
			Buffer		buf = CheckedPage(&cs, blkno, SCOREAH_PAGE_VECTORS, "vector chain", leaf);
			Page		page;

			if (!BufferIsValid(buf))
				break;
			page = BufferGetPage(buf);
			if (((PageHeader) page)->pd_lower > ((PageHeader) page)->pd_upper)
				Problem(&cs, "leaf %d: vector page %u has pd_lower %u past pd_upper %u",
						leaf, blkno, ((PageHeader) page)->pd_lower, ((PageHeader) page)->pd_upper);
			if (blkno == entry.vecTail)
				tailSeen = true;
			blkno = ScoreahPageGetOpaque(page)->nextblkno;
			UnlockReleaseBuffer(buf);
		}
		if (entry.vecTail != InvalidBlockNumber && !tailSeen)
			Problem(&cs, "leaf %d: vector tail hint %u is not on the leaf's vector chain",
					leaf, entry.vecTail);
	}

	for (int leaf = 0; leaf < (int) meta.nleaves; leaf++)
	{
		ScoreahLeafData entry;
		bool		tailSeen = false;
		bool		reuseSeen;
		VectorPageMemo memo = {InvalidBlockNumber, false, 0};

		CHECK_FOR_INTERRUPTS();
		ScoreahReadLeaf(cs.index, &meta, leaf, &entry);
		reuseSeen = entry.reuseBlk == InvalidBlockNumber;
		for (BlockNumber blkno = entry.codeHead; blkno != InvalidBlockNumber;)
		{
			Buffer		buf = CheckedPage(&cs, blkno, SCOREAH_PAGE_CODES, "code chain", leaf);
			Page		page;
			PageHeader	ph;
			int			ngroups;

			if (!BufferIsValid(buf))
				break;
			page = BufferGetPage(buf);
			ph = (PageHeader) page;
			if (blkno == entry.codeTail)
				tailSeen = true;
			if (blkno == entry.reuseBlk)
				reuseSeen = true;
			if ((ph->pd_lower - MAXALIGN(SizeOfPageHeaderData)) % gsize != 0)
				Problem(&cs, "leaf %d: code page %u holds a partial group (pd_lower %u)",
						leaf, blkno, ph->pd_lower);
			ngroups = ScoreahPageGetNGroups(page, gsize);
			if (ngroups > groupsPerPage)
				Problem(&cs, "leaf %d: code page %u holds %d groups, at most %d fit",
						leaf, blkno, ngroups, groupsPerPage);
			for (int g = 0; g < Min(ngroups, groupsPerPage); g++)
			{
				char	   *group = PageGetContents(page) + g * gsize;
				ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
				ItemPointer tids = ScoreahGroupTids(&layout, group);
				int			nlive = 0;

				if (gh->nitems == 0 || gh->nitems > SCOREAH_GROUP_ROWS)
				{
					Problem(&cs, "leaf %d: block %u group %d has %u rows, expected 1 to %d",
							leaf, blkno, g, gh->nitems, SCOREAH_GROUP_ROWS);
					continue;
				}
				/* the vector page list covers every row and stays in the index */
				if (gh->nvblk > layout.maxVblk ||
					(layout.vecsPerPage > 0 && gh->vslot >= layout.vecsPerPage))
					Problem(&cs, "leaf %d: block %u group %d lists %u vector pages from slot %u, at most %d pages and %d slots fit",
							leaf, blkno, g, gh->nvblk, gh->vslot, layout.maxVblk,
							layout.vecsPerPage);
				else
				{
					for (int v = 0; v < gh->nvblk; v++)
						CheckVectorPage(&cs, &memo, gh->vblk[v], leaf, blkno, g);
				}
				if (gh->nitems < SCOREAH_GROUP_ROWS && (gh->inserted >> gh->nitems) != 0)
					Problem(&cs, "leaf %d: block %u group %d marks unused rows as inserted",
							leaf, blkno, g);
				for (int i = 0; i < gh->nitems; i++)
				{
					ItemPointer tid = &tids[i];
					BlockNumber vblkno;
					uint16		voff;

					if (vbytes > 0 && gh->nvblk <= layout.maxVblk)
					{
						if (!ScoreahRowVector(&layout, gh, i, &vblkno, &voff))
							Problem(&cs, "leaf %d: block %u group %d row %d has no vector page in its group's list",
									leaf, blkno, g, i);
						else if (CheckVectorPage(&cs, &memo, vblkno, leaf, blkno, g) &&
								 voff + Min(vbytes, SCOREAH_VECTOR_CAPACITY) > memo.lower)
							Problem(&cs, "leaf %d: block %u group %d row %d has its vector at (%u,%u), past the page's records",
									leaf, blkno, g, i, vblkno, voff);
					}
					if (!ItemPointerIsValid(tid))
						continue;
					nlive++;
					if (ItemPointerGetBlockNumberNoCheck(tid) >= cs.heapBlocks ||
						ItemPointerGetOffsetNumberNoCheck(tid) == InvalidOffsetNumber ||
						ItemPointerGetOffsetNumberNoCheck(tid) > MaxHeapTuplesPerPage)
						Problem(&cs, "leaf %d: block %u group %d row %d has heap TID (%u,%u) outside the table (%u blocks)",
								leaf, blkno, g, i, ItemPointerGetBlockNumberNoCheck(tid),
								ItemPointerGetOffsetNumberNoCheck(tid), cs.heapBlocks);
				}
				if (nlive != gh->nlive)
					Problem(&cs, "leaf %d: block %u group %d counts %u live rows but holds %d",
							leaf, blkno, g, gh->nlive, nlive);

				/* nibbles of unused rows stay zero (padding) */
				if (meta.nblocks > 0 && gh->nitems < SCOREAH_GROUP_ROWS)
				{
					const uint8 *codes = ScoreahGroupCodes(&layout, group);

					for (int r = gh->nitems; r < SCOREAH_GROUP_ROWS; r++)
						for (int b = 0; b < (int) meta.nblocks; b++)
							if (scoreah_unpack_code(codes, r, b) != 0)
							{
								Problem(&cs, "leaf %d: block %u group %d has codes in unused row %d",
										leaf, blkno, g, r);
								b = meta.nblocks;
								r = SCOREAH_GROUP_ROWS;
							}
				}
			}
			blkno = ScoreahPageGetOpaque(page)->nextblkno;
			UnlockReleaseBuffer(buf);
		}
		if (entry.codeTail != InvalidBlockNumber && !tailSeen)
			Problem(&cs, "leaf %d: code tail hint %u is not on the leaf's code chain",
					leaf, entry.codeTail);
		if (!reuseSeen)
			Problem(&cs, "leaf %d: reuse hint %u is not on the leaf's code chain",
					leaf, entry.reuseBlk);
	}

	index_close(cs.index, AccessShareLock);
	return (Datum) 0;
}
