/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Index scans: ORDER BY column <op> query LIMIT k.
 *
 * A scan routes the query to its nearest leaves and works in rounds of
 * num_leaves_to_search leaves.  Within a round it scores every row of
 * those leaves from their 4-bit codes through a per-query 8-bit lookup
 * table (or exactly, for brute_force scoring), keeps the best
 * reordering_num_neighbors candidates (ScaNN's top-N buffer), re-ranks them
 * with exact distances from the stored vectors and returns them in exact
 * distance order.
 *
 * When the executor wants more rows (a LIMIT above the candidate count, or
 * a WHERE clause that rejects rows), the scan takes the next candidates of
 * the round in approximate order (each batch twice the last, the leaves
 * scored again past the last key returned), then moves on to the next
 * round of leaves, until every leaf has been searched.  Order is exact
 * within a batch and approximate between batches.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "scoreah.h"

/* Candidates of a batch when nothing is re-ranked */
#define DEFAULT_BATCH	100

IndexScanDesc
scoreahbeginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	ScoreahScanOpaque so = palloc0(sizeof(ScoreahScanOpaqueData));

	so->scanCtx = AllocSetContextCreate(CurrentMemoryContext, "scoreah scan",
										ALLOCSET_DEFAULT_SIZES);
	scan->opaque = so;
	return scan;
}

/* Forget a scan's state and release its model (rescan, end) */
static void
ResetScan(ScoreahScanOpaque so)
{
	MemoryContext scanCtx = so->scanCtx;

	ScoreahScanEndHeapFetch(so);
	if (so->cache)
		ScoreahCacheRelease(so->cache);
	MemoryContextReset(scanCtx);
	memset(so, 0, sizeof(ScoreahScanOpaqueData));
	so->scanCtx = scanCtx;
}

void
scoreahrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
			  int norderbys)
{
	ResetScan((ScoreahScanOpaque) scan->opaque);
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys,
				scan->numberOfOrderBys * sizeof(ScanKeyData));
}

/*
 * The settings the scan will use from now on: read once, so that a SET
 * between two fetches of a cursor changes nothing in a running scan.
 */
static void
FixSettings(ScoreahScanOpaque so)
{
	so->nprobe = scoreah_num_leaves_to_search > 0 ? scoreah_num_leaves_to_search :
		(int) so->cache->meta.numLeavesToSearch;
	so->reorder = scoreah_reordering_num_neighbors;
	if (scoreah_target_recall > 0)
	{
		double		expected;

		/* uncalibrated (built from too few rows): search it all */
		if (!ScoreahCalibChoose(&so->cache->meta, scoreah_target_recall,
								&so->nprobe, &so->reorder, &expected))
			so->nprobe = so->nleaves;
	}
	so->nprobe = Max(1, Min(so->nprobe, so->nleaves));
	so->maxBatch = Max(DEFAULT_BATCH,
					   (int) Min((Size) INT_MAX / 2,
								 (Size) work_mem * 1024 / sizeof(ScoreahCandidate)));
	so->floatLut = scoreah_float_lut_scoring;
	so->lut16 = scoreah_lut16_scan;
	so->exact = scoreah_exact_kernels;
}

/*
 * The query of the ORDER BY, checked against the index: so->queryRaw (as
 * given) and so->query (unit length for cosine).  A NULL query, or a zero
 * vector under cosine (every distance NaN), makes the scan return every
 * row in no order.  Returns false when the index has no dimension yet
 * (built empty, no row since): nothing to find.  A query vector is
 * checked first either way, so bad input is an error even then.
 */
static bool
PrepareQuery(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	int			dim = so->cache->meta.dimensions;
	int			qdim = 0;
	float	   *q = NULL;

	if (scan->numberOfOrderBys == 0 || (scan->orderByData[0].sk_flags & SK_ISNULL))
		so->nullQuery = true;
	else
	{
		ScanKey		key = &scan->orderByData[0];

		so->queryDatum = PointerGetDatum(PG_DETOAST_DATUM(key->sk_argument));
		so->distFunc = &key->sk_func;
		so->distColl = key->sk_collation;
		q = ScoreahDatumToVector(so->cache->meta.format, so->queryDatum, &qdim,
								 "query vector");
	}

	/*
	 * An index built empty has no dimension until its first row, and a scan
	 * whose model has none can see no row: a row its snapshot sees was
	 * committed before the scan read the metapage, so its insert had fixed
	 * the dimension.  Returning at once also keeps the scan from reading
	 * pages written under the new build's layout with the old one.
	 */
	if (dim == 0)
		return false;
	if (so->nullQuery)
		return true;
	ScoreahCheckDimensions(dim, qdim);
	so->queryRaw = palloc(sizeof(float) * dim);
	memcpy(so->queryRaw, q, sizeof(float) * dim);
	so->query = palloc(sizeof(float) * dim);
	switch (so->cache->meta.metric)
	{
		case SCOREAH_METRIC_COSINE:
			if (scoreah_normalize(q, dim, so->query) == 0)
				so->nullQuery = true;	/* every distance is NaN */
			break;
		case SCOREAH_METRIC_L2:
			/* in the model's units: scaled as the build scaled the rows */
			scoreah_scale(q, dim, so->cache->meta.scale, so->query);
			if (so->cache->meta.flags & SCOREAH_FLAG_TRAINED)
				ScoreahCheckModelRange(so->query, dim, so->cache->meta.meanNorm,
									   so->cache->meta.scale, "query vector");
			break;
		default:
			/* inner products rank alike at any positive scale of the query */
			scoreah_scale(q, dim, scoreah_unit_scale(scoreah_exact_norm(q, dim)), so->query);
			break;
	}
	return true;
}

/*
 * First call of a scan: pin the model, fix the settings, check the query,
 * score the leaves for routing, build the lookup table.
 */
static void
StartScan(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);
	ScoreahCache cache;

	if (scan->xs_snapshot == NULL || !IsMVCCSnapshot(scan->xs_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("scoreah index scans need an MVCC snapshot")));

	so->started = true;
	cache = so->cache = ScoreahCacheAcquire(index);
	so->nleaves = cache->meta.nleaves;
	FixSettings(so);
	pgstat_count_index_scan(index);

	if (!PrepareQuery(scan))
	{
		so->done = true;
		MemoryContextSwitchTo(oldCtx);
		return;
	}

	so->leafOrder = palloc(sizeof(int) * so->nleaves);
	for (int j = 0; j < so->nleaves; j++)
		so->leafOrder[j] = j;

	if (so->nullQuery)
	{
		so->seqLeaf = -1;
		so->seqBlk = InvalidBlockNumber;
		so->batch = palloc(sizeof(ScoreahCandidate) * SCOREAH_GROUP_ROWS *
						   cache->layout.groupsPerPage);
		MemoryContextSwitchTo(oldCtx);
		return;
	}

	so->batchCtx = AllocSetContextCreate(so->scanCtx, "scoreah scan batch",
										 ALLOCSET_DEFAULT_SIZES);
	so->storedBuf = palloc(Max(cache->layout.vbytes, 1));
	if (cache->meta.format != SCOREAH_FORMAT_ARRAY && !ScoreahStoredIsDatum(&cache->meta))
	{
		/* pgvector's vector kept in half precision: a datum to fill */
		Size		len = SCOREAH_PGVECTOR_HDRSZ + sizeof(float) * cache->meta.dimensions;
		ScoreahPgvectorHeader *h = palloc0(len);

		SET_VARSIZE(h, len);
		h->dim = (int16) cache->meta.dimensions;
		so->datumBuf = (char *) h;
	}
	if (cache->meta.flags & SCOREAH_FLAG_TRAINED)
	{
		so->leafScores = palloc(sizeof(float) * so->nleaves);
		scoreah_route_scores(&cache->model, so->query, so->leafScores);
	}
	if (!ScoreahScanBruteForce(cache))
	{
		scoreah_lut_alloc(&so->lut, cache->model.nblocks);
		scoreah_lut_query(&cache->model, so->query, &so->lut);
	}
	so->roundStart = 0;
	so->roundEnd = so->nprobe;
	MemoryContextSwitchTo(oldCtx);
}

/*
 * Make the first upto entries of leafOrder the nearest leaves, in order:
 * the first round needs only num_leaves_to_search of them, a later round
 * orders the rest.
 */
static void
OrderLeaves(ScoreahScanOpaque so, int upto)
{
	upto = Min(upto, so->nleaves);
	if (so->leafScores == NULL || so->nordered >= upto)
		return;
	scoreah_order_smallest(so->leafScores, so->leafOrder + so->nordered,
						   so->nleaves - so->nordered,
						   so->nordered == 0 ? upto : so->nleaves - so->nordered);
	so->nordered = so->nordered == 0 ? upto : so->nleaves;
}

/*
 * Fill so->batch with the next candidates, in output order.  Returns false
 * when every leaf has been searched.
 */
static bool
NextBatch(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	bool		brute = ScoreahScanBruteForce(so->cache);
	MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);
	ScoreahTopN top;

	for (;;)
	{
		int			size;

		if (so->roundStart >= so->nleaves)
		{
			MemoryContextSwitchTo(oldCtx);
			return false;
		}

		/* batch size: the reorder count, doubling within a round */
		if (so->batchSize == 0)
			so->batchSize = so->reorder > 0 ? so->reorder : DEFAULT_BATCH;
		else
			so->batchSize = (int) Min((int64) so->maxBatch, (int64) so->batchSize * 2);
		size = Min(so->batchSize, so->maxBatch);

		if (so->batch)
			pfree(so->batch);
		MemoryContextReset(so->batchCtx);
		scoreah_topn_init(&top, size);
		OrderLeaves(so, so->roundEnd);
		ScoreahScanRound(scan, &top);
		scoreah_topn_prune(&top);

		so->batch = top.items;
		so->nbatch = top.n;
		so->batchPos = 0;
		so->nbatches++;

		if (top.n < size)
		{
			/* this round has nothing after this batch: next round */
			so->roundStart = so->roundEnd;
			so->roundEnd = Min(so->nleaves, so->roundEnd + so->nprobe);
			so->haveThreshold = false;
			so->batchSize = 0;
			if (top.n == 0)
				continue;
		}
		else
		{
			/* the largest key kept: later batches start after it */
			so->haveThreshold = true;
			so->threshold = top.thr;
		}

		if (brute)
			scoreah_sort_by_distance(so->batch, so->nbatch);
		else if (so->reorder > 0)
		{
			ScoreahScanRerank(scan);
			scoreah_sort_by_distance(so->batch, so->nbatch);
		}
		else
			scoreah_sort_by_approx(so->batch, so->nbatch);
		MemoryContextSwitchTo(oldCtx);
		return true;
	}
}

/*
 * Rows of a scan without a usable query (NULL, or a zero vector under
 * cosine): every live row once, leaf by leaf, a code page per call.
 */
static bool
NextSequentialPage(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahLayout layout = &so->cache->layout;

	for (;;)
	{
		ScoreahChainData chain;
		int			ngroups;

		CHECK_FOR_INTERRUPTS();
		if (so->seqBlk == InvalidBlockNumber)
		{
			ScoreahLeafData entry;

			if (++so->seqLeaf >= so->nleaves)
				return false;
			ScoreahReadLeaf(scan->indexRelation, &so->cache->meta, so->seqLeaf, &entry);
			so->seqBlk = entry.codeHead;
			continue;
		}
		ScoreahChainBegin(&chain, scan->indexRelation, so->seqBlk, SCOREAH_PAGE_CODES,
						  (uint32) so->seqLeaf, BUFFER_LOCK_SHARE, 0);
		if (!ScoreahChainNext(&chain))
		{
			/* freed by VACUUM after we read the directory: next leaf */
			so->seqBlk = InvalidBlockNumber;
			continue;
		}
		ngroups = ScoreahPageGetNGroups(chain.page, layout->gsize);
		so->nbatch = 0;
		so->batchPos = 0;
		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(chain.page) + g * layout->gsize;
			ItemPointer tids = ScoreahGroupTids(layout, group);

			for (int i = 0; i < ScoreahGroupHeader(group)->nitems; i++)
				if (ItemPointerIsValid(&tids[i]))
				{
					ScoreahCandidate *c = &so->batch[so->nbatch++];

					c->id = ScoreahTidToId(&tids[i]);
					c->distance = get_float8_nan();
				}
		}
		so->seqBlk = chain.next;
		ScoreahChainEnd(&chain);
		if (so->nbatch > 0)
			return true;
	}
}

bool
scoreahgettuple(IndexScanDesc scan, ScanDirection dir)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahCandidate *c;

	if (!so->started)
		StartScan(scan);

	while (so->batchPos >= so->nbatch)
	{
		if (so->done)
			return false;
		if (so->nullQuery ? !NextSequentialPage(scan) : !NextBatch(scan))
		{
			so->done = true;
			return false;
		}
	}

	c = &so->batch[so->batchPos++];
	ScoreahIdToTid(c->id, &scan->xs_heaptid);
	scan->xs_recheck = false;
	/* rows come in exact order: the executor need not re-sort */
	scan->xs_recheckorderby = false;
	return true;
}

void
scoreahendscan(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;

	if (so->started)
		elog(DEBUG2, "scoreah scan of \"%s\": %d leaves per round, %d leaves searched, " INT64_FORMAT " rows scored, %d batches",
			 RelationGetRelationName(scan->indexRelation), so->nprobe, so->roundStart,
			 so->rowsScored, so->nbatches);
	ResetScan(so);
	MemoryContextDelete(so->scanCtx);
	pfree(so);
	scan->opaque = NULL;
}
