/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Index scans: ORDER BY column <op> query LIMIT k.
 *
 * A scan routes the query to its nearest leaves, scores the rows of the
 * first num_leaves_to_search of them from their 4-bit codes through a
 * per-query 8-bit lookup table (or exactly, for brute_force scoring),
 * re-ranks the best reordering_num_neighbors candidates with exact
 * distances and returns rows in exact distance order.  When the executor
 * wants more rows (a LIMIT above the candidate count, or a WHERE clause
 * that rejects rows), it goes on batch after batch and wider, until every
 * leaf has been searched (scan_order.c decides what comes next and when a
 * row may go out); then come the rows without a distance (NULL vectors,
 * zero vectors under cosine).  Conditions on key columns are checked in
 * the index (keys.c).
 *
 * This file: the scan's life (begin, rescan, settings fixed at the start,
 * the query, end) and the rows it returns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/spccache.h"

#include "scoreah.h"


IndexScanDesc
scoreahbeginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	ScoreahScanOpaque so = palloc0(sizeof(ScoreahScanOpaqueData));

	so->scanCtx = AllocSetContextCreate(CurrentMemoryContext, "scoreah scan",
										ALLOCSET_DEFAULT_SIZES);
	so->settings.numLeavesToSearch = scoreah_num_leaves_to_search;
	so->settings.reorderingNumNeighbors = scoreah_reordering_num_neighbors;
	so->settings.targetRecall = scoreah_target_recall;
	so->settings.floatLut = scoreah_float_lut_scoring;
	so->settings.refillSkipping = scoreah_refill_skipping;
	so->settings.scanOrder = scoreah_scan_order;
	so->settings.workMem = work_mem;
	scan->opaque = so;
	return scan;
}

/* Forget a scan's state and release its model (rescan, end) */
static void
ResetScan(ScoreahScanOpaque so)
{
	MemoryContext scanCtx = so->scanCtx;
	ScoreahScanSettingsData settings = so->settings;

	ScoreahScanEndHeapFetch(so);
	if (so->cache)
		ScoreahCacheRelease(so->cache);
	MemoryContextReset(scanCtx);
	memset(so, 0, sizeof(ScoreahScanOpaqueData));
	so->scanCtx = scanCtx;
	so->settings = settings;
}

void
scoreahrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
			  int norderbys)
{
	ResetScan((ScoreahScanOpaque) scan->opaque);
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys,
				scan->numberOfOrderBys * sizeof(ScanKeyData));
}

/*
 * The settings the scan will use from now on, from those it began with
 * (scoreahbeginscan), so that a SET between two fetches of a cursor, or
 * between two rescans of a LATERAL join's scan, changes nothing in it.
 */
static void
FixSettings(ScoreahScanOpaque so)
{
	ScoreahScanSettingsData *s = &so->settings;
	const ScoreahLut16Impl *lut16;

	so->nprobe = s->numLeavesToSearch > 0 ? s->numLeavesToSearch :
		(int) so->cache->meta.numLeavesToSearch;
	so->reorder = s->reorderingNumNeighbors;
	if (s->targetRecall > 0)
	{
		double		expected;

		/* uncalibrated (too few sample rows to spare): search it all */
		if (ScoreahCalibChoose(&so->cache->meta, s->targetRecall,
							   &so->nprobe, &so->reorder, &expected) == SCOREAH_CALIB_NONE)
			so->nprobe = so->nleaves;
	}
	so->nprobe = Max(1, Min(so->nprobe, so->nleaves));
	/* a top-N keeps up to twice its size while it fills, two keys for each */
	so->maxBatch = Max(SCOREAH_DEFAULT_BATCH,
					   (int) Min((Size) INT_MAX / 4,
								 (Size) s->workMem * 1024 /
								 (2 * (sizeof(ScoreahCandidate) + 2 * sizeof(uint64)))));
	so->floatLut = s->floatLut;
	so->strict = s->scanOrder == SCOREAH_ORDER_STRICT;
	/* the fastest LUT16 kernel of this CPU at the index's block count */
	lut16 = scoreah_lut16_for((int) so->cache->meta.nblocks, (uint32) MyProcPid);
	so->lut16 = lut16->scan;
	so->lut16MinOf = lut16->min_masked;
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
				ScoreahCheckModelRange(so->query, q, dim, so->cache->meta.meanNorm,
									   so->cache->meta.scale, "query vector",
									   scan->indexRelation->rd_index->indrelid);
			break;
		default:
			/* inner products rank alike at any positive scale of the query */
			so->queryScale = scoreah_unit_scale(scoreah_exact_norm(q, dim));
			scoreah_scale(q, dim, so->queryScale, so->query);
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
	bool		haveQuery;

	if (scan->xs_snapshot == NULL || !IsMVCCSnapshot(scan->xs_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("scoreah index scans need an MVCC snapshot")));

	/* the planner never offers more than one (cost.c): an internal error */
	if (scan->numberOfOrderBys > 1)
		elog(ERROR, "scoreah index scans order by one distance, not %d",
			 scan->numberOfOrderBys);

	so->started = true;
	cache = so->cache = ScoreahCacheAcquire(index);
	so->nleaves = cache->meta.nleaves;
	FixSettings(so);
	/*
	 * Heap tables only: their TIDs are block numbers of the main fork.
	 * Read when the scan starts (a rescan reads it again).
	 */
	if (scan->heapRelation != NULL &&
		scan->heapRelation->rd_tableam == GetHeapamTableAmRoutine())
		so->heapWindow = Min(get_tablespace_io_concurrency(scan->heapRelation->rd_rel->reltablespace),
							 SCOREAH_HEAP_PREFETCH_MAX);
	pgstat_count_index_scan(index);

	haveQuery = PrepareQuery(scan);
	if (!ScoreahKeyPrepare(scan, so->filters, &so->nfilters, &so->keyRecheck))
	{
		/* key conditions no row can meet */
		so->done = true;
		MemoryContextSwitchTo(oldCtx);
		return;
	}

	so->leafOrder = palloc(sizeof(int) * so->nleaves);
	for (int j = 0; j < so->nleaves; j++)
		so->leafOrder[j] = j;
	so->seqRows = palloc(sizeof(ScoreahCandidate) * SCOREAH_GROUP_ROWS *
						 Max(cache->layout.groupsPerPage, cache->extraLayout.groupsPerPage));
	so->seqLeaf = -1;
	so->seqBlk = InvalidBlockNumber;

	/*
	 * No usable query (NULL, a zero vector under cosine) or no dimension
	 * yet (an index built empty has no row with a vector, but may have
	 * rows with NULL ones): every row in no order, leaf by leaf.  Without
	 * a dimension only the extra leaves can hold rows this scan sees (see
	 * PrepareQuery), and only they are walked: a row a concurrent insert
	 * adds to a leaf meanwhile is laid out for the dimension it fixed, which
	 * this scan's model does not know.
	 */
	if (!haveQuery || so->nullQuery)
	{
		so->nullQuery = true;
		if (cache->meta.dimensions == 0)
			so->seqLeaf = so->nleaves - 1;
		MemoryContextSwitchTo(oldCtx);
		return;
	}

	so->batchCtx = AllocSetContextCreate(so->scanCtx, "scoreah scan batch",
										 ALLOCSET_DEFAULT_SIZES);
	so->storedBuf = palloc(Max(cache->layout.vbytes, 1));
	if (ScoreahStoredIsDatum(&cache->meta))
		ScoreahStoredHeader(&cache->meta, &so->storedHeader);
	else if (cache->meta.format != SCOREAH_FORMAT_ARRAY)
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
	scoreah_heap_init(&so->pending);
	scoreah_heap_init(&so->late);
	MemoryContextSwitchTo(oldCtx);
}

/*
 * Rows in no order, leaf by leaf, a code page per call: every row for a
 * scan without a usable query (NULL, or a zero vector under cosine), or,
 * after every other row, the rows of the extra leaves (zero vectors under
 * cosine, then NULL vectors), as a sequential scan sorts them last.
 */
static bool
NextSequentialPage(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahMetaPage meta = &so->cache->meta;

	for (;;)
	{
		ScoreahChainData chain;
		ScoreahLayout layout;
		int			ngroups;

		CHECK_FOR_INTERRUPTS();
		if (so->seqBlk == InvalidBlockNumber)
		{
			ScoreahLeafData entry;

			if (++so->seqLeaf >= ScoreahDirEntries(meta))
				return false;
			ScoreahReadLeaf(scan->indexRelation, meta, so->seqLeaf, &entry);
			if (so->nfilters > 0 && !ScoreahKeyLeafMayMatch(so->filters, so->nfilters, &entry))
				continue;
			so->seqBlk = entry.codeHead;
			continue;
		}
		layout = ScoreahCacheLeafLayout(so->cache, so->seqLeaf);
		ScoreahChainBegin(&chain, scan->indexRelation, so->seqBlk, SCOREAH_PAGE_CODES,
						  (uint32) so->seqLeaf, BUFFER_LOCK_SHARE, 0);
		chain.groups = layout;
		if (!ScoreahChainNext(&chain))
		{
			/* freed by VACUUM after we read the directory: next leaf */
			so->seqBlk = InvalidBlockNumber;
			continue;
		}
		ngroups = ScoreahPageGetNGroups(chain.page, layout->gsize);
		so->nseq = 0;
		so->seqPos = 0;
		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(chain.page) + g * layout->gsize;
			ItemPointer tids = ScoreahGroupTids(layout, group);
			uint32		keep = so->nfilters > 0 ?
				ScoreahKeyMatchGroup(so->filters, so->nfilters, layout, group) : PG_UINT32_MAX;

			for (int i = 0; i < ScoreahGroupHeader(group)->nitems; i++)
				if (ItemPointerIsValid(&tids[i]) && (keep & ((uint32) 1 << i)))
				{
					ScoreahCandidate *c = &so->seqRows[so->nseq++];

					c->id = ScoreahTidToId(&tids[i]);
					c->distance = get_float8_nan();
				}
		}
		so->seqBlk = chain.next;
		ScoreahChainEnd(&chain);
		if (so->nseq > 0)
			return true;
	}
}

/*
 * Start the heap pages of the rows to be returned next on their way while
 * the executor fetches this one, as a bitmap heap scan does: the nearest
 * pending rows, up to the heap tablespace's effective_io_concurrency of
 * them (at most SCOREAH_HEAP_PREFETCH_MAX; none at 0).  PrefetchBuffer asks
 * the kernel to read a page that is not in shared buffers, so that LIMIT
 * k's heap reads overlap instead of queueing one after another (GloVe-100
 * with the heap out of every cache, one row ahead: 0.70-0.86 ms a query
 * instead of 1.00-1.10); of a page that is, the buffer's header, the
 * page's header and the row's line pointer come into the CPU cache
 * without waiting.  The window refills when half of it has been returned:
 * a few heap walks per batch, not one per row.  Rows of a later batch
 * nearer than the farthest prefetched are not prefetched (they are rare:
 * the batch's line puts them past the rows returned).
 */
static void
PrefetchHeapRows(IndexScanDesc scan, const ScoreahCandidate *returned)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	int			pos[SCOREAH_HEAP_PREFETCH_MAX];
	int			frontier[SCOREAH_HEAP_PREFETCH_MAX + 1];
	int			n;

	if (so->heapPrefetched)
	{
		if (scoreah_distance_cmp(returned, &so->heapLast) > 0)
			so->heapAhead = 0;	/* past them all (some held back as late) */
		else if (so->heapAhead > 0)
			so->heapAhead--;
	}
	if (so->heapAhead * 2 > so->heapWindow - 1 || so->pending.n == 0)
		return;
	n = scoreah_heap_smallest(&so->pending, so->heapWindow, pos, frontier);
	for (int i = 0; i < n; i++)
	{
		const ScoreahCandidate *c = &so->pending.items[pos[i]];
		ItemPointerData tid;
		PrefetchBufferResult r;

		if (so->heapPrefetched && scoreah_distance_cmp(c, &so->heapLast) <= 0)
			continue;			/* on its way already */
		ScoreahIdToTid(c->id, &tid);
		r = PrefetchBuffer(scan->heapRelation, MAIN_FORKNUM,
						   ItemPointerGetBlockNumberNoCheck(&tid));
		/* a shared buffer's (a temporary table's local ones are negative) */
		if (r.recent_buffer > 0 && ItemPointerGetOffsetNumberNoCheck(&tid) >= FirstOffsetNumber)
		{
			const char *page = (const char *) BufferGetPage(r.recent_buffer);

			__builtin_prefetch(GetBufferDescriptor(r.recent_buffer - 1));
			__builtin_prefetch(page);
			__builtin_prefetch(page + SizeOfPageHeaderData +
							   (ItemPointerGetOffsetNumberNoCheck(&tid) - 1) * sizeof(ItemIdData));
		}
	}
	so->heapLast = so->pending.items[pos[n - 1]];
	so->heapPrefetched = true;
	so->heapAhead = n;
}

bool
scoreahgettuple(IndexScanDesc scan, ScanDirection dir)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahCandidate c;

	if (!so->started)
		StartScan(scan);

	if (so->nullQuery || so->tail)
	{
		while (so->seqPos >= so->nseq)
		{
			if (so->done || !NextSequentialPage(scan))
			{
				so->done = true;
				return false;
			}
		}
		c = so->seqRows[so->seqPos++];
	}
	else
	{
		for (;;)
		{
			if (so->done)
				return false;
			if (so->pending.n > 0 && ScoreahScanMayReturn(so, &so->pending.items[0]))
			{
				scoreah_heap_pop(&so->pending, &c);
				if (so->strict && so->emitted > 0 &&
					scoreah_distance_cmp(&c, &so->last) < 0 &&
					!(c.distance == so->last.distance))
				{
					/* found after a farther row went: held back (below) */
					MemoryContext old = MemoryContextSwitchTo(so->scanCtx);

					scoreah_heap_push(&so->late, &c);
					so->heldBack++;
					MemoryContextSwitchTo(old);
					continue;
				}
				break;
			}
			if (!ScoreahScanNextBatch(scan))
			{
				/* everything is known: the pending rows go in order */
				if (so->pending.n == 0)
				{
					/*
					 * Rows found after a farther row had been returned come
					 * last, nearest first, only when the executor wants
					 * every row: out of order, rather than lost.
					 */
					if (so->late.n > 0)
					{
						scoreah_heap_pop(&so->late, &c);
						so->dropped++;
						break;
					}

					/* then the extra leaves: zero vectors, NULL vectors */
					so->tail = true;
					so->seqLeaf = so->nleaves - 1;
					so->seqBlk = InvalidBlockNumber;
					return scoreahgettuple(scan, dir);
				}
				so->searched = so->nleaves;
				so->haveStore = true;
				so->nstore = so->storePos = so->storeSorted = 0;
				so->cut = false;
			}
		}
		so->last = c;
		so->emitted++;
		so->waitBatches = 0;
		if (so->heapWindow > 0)
			PrefetchHeapRows(scan, &c);
	}

	ScoreahIdToTid(c.id, &scan->xs_heaptid);
	/* hashed keys may collide: the executor checks the row's own values */
	scan->xs_recheck = so->keyRecheck;
	/* rows come in exact order: the executor need not re-sort */
	scan->xs_recheckorderby = false;
	return true;
}

void
scoreahendscan(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;

	if (so->started && message_level_is_interesting(DEBUG2))
	{
		double		gamma,
					delta,
					sigma;

		/* the margin in sigmas of the line at the end (3 without one) */
		if (!scoreah_fit_distance_line(&so->fit, &gamma, &delta, &sigma))
			sigma = 0;
		elog(DEBUG2, "scoreah scan of \"%s\": %d leaves per round, %d leaves searched, " INT64_FORMAT " rows scored, %d batches, " INT64_FORMAT " rows returned, " INT64_FORMAT " found late (after a farther row), " INT64_FORMAT " of them returned at the end, %d times widened for a nearer leaf, order margin %.1f sigmas, " INT64_FORMAT " leaf scores skipped (their rows counted as scored)",
				 RelationGetRelationName(scan->indexRelation), so->nprobe, so->searched,
				 so->rowsScored, so->nbatches, so->emitted, so->heldBack, so->dropped, so->nearHolds,
				 sigma > 0 ? ScoreahScanOrderMargin(so, sigma) / sigma : SCOREAH_ORDER_SIGMAS,
				 so->leavesSkipped);
	}
	ResetScan(so);
	MemoryContextDelete(so->scanCtx);
	pfree(so);
	scan->opaque = NULL;
}
