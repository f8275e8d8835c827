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

/* The rows the settings are for; deeper scans widen (WantLeaves) */
#define SCOREAH_DEPTH_ROWS		10.0

/* Strict order: how far past a row the unseen candidates must score */
#define SCOREAH_ORDER_SIGMAS	3.0
#define SCOREAH_MAX_WAIT		1000000

/* The first batch's top-N keeps this many batches' worth (the rest waits) */
#define SCOREAH_FIRST_KEEP		3

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
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
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
	/* a top-N keeps up to twice its size while it fills */
	so->maxBatch = Max(DEFAULT_BATCH,
					   (int) Min((Size) INT_MAX / 2,
								 (Size) work_mem * 1024 / (2 * sizeof(ScoreahCandidate))));
	so->floatLut = scoreah_float_lut_scoring;
	so->strict = scoreah_scan_order == SCOREAH_ORDER_STRICT;
	/* the fastest LUT16 kernel of this CPU at the index's block count */
	so->lut16 = scoreah_lut16_for((int) so->cache->meta.nblocks, (uint32) MyProcPid)->scan;
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
	bool		haveQuery;

	if (scan->xs_snapshot == NULL || !IsMVCCSnapshot(scan->xs_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("scoreah index scans need an MVCC snapshot")));

	so->started = true;
	cache = so->cache = ScoreahCacheAcquire(index);
	so->nleaves = cache->meta.nleaves;
	FixSettings(so);
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
	 * rows with NULL ones): every row in no order, leaf by leaf.
	 */
	if (!haveQuery || so->nullQuery)
	{
		so->nullQuery = true;
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
	scoreah_heap_init(&so->pending);
	scoreah_heap_init(&so->late);
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
 * Leaves a scan should have searched before it returns its next row.  The
 * settings are for the first 10 rows; a scan asked for more (a larger
 * LIMIT, or a WHERE clause that rejects rows) goes wider, as the square
 * root of the rows returned, so that its later rows are as good as its
 * first ones: a filter keeping 1% of the rows reads about 10 times the
 * leaves for its 10 rows.
 */
static int
WantLeavesAt(ScoreahScanOpaque so, int64 rows)
{
	double		depth = (double) rows;
	double		w;

	/*
	 * Key conditions keeping a fraction s of the rows: the nearest rows
	 * that pass lie as deep as the rows/s nearest of all.
	 */
	if (so->keyRowsPassed > 0 && so->keyRowsSeen > so->keyRowsPassed)
		depth *= (double) so->keyRowsSeen / so->keyRowsPassed;
	else if (so->keyRowsSeen > 0 && so->keyRowsPassed == 0)
		depth = (double) so->keyRowsSeen * SCOREAH_DEPTH_ROWS;
	w = so->nprobe * sqrt(Max(1.0, depth / SCOREAH_DEPTH_ROWS));

	return (int) Min((double) so->nleaves, ceil(w));
}

static int
WantLeaves(ScoreahScanOpaque so)
{
	return WantLeavesAt(so, so->emitted + 1);
}

/* (approx, id) of c is past key */
static inline bool
KeyAfter(const ScoreahCandidate *c, const ScoreahCandidate *key)
{
	return scoreah_candidate_cmp(c, key) > 0;
}

/*
 * How many candidates the store keeps: a few batches ahead, not all of
 * work_mem at once: sorting and merging cost more per candidate than
 * scoring the leaves again once the store runs out.
 */
static int
StoreSize(ScoreahScanOpaque so)
{
	if (so->exactTail)
		return so->maxBatch;
	return (int) Min((int64) so->maxBatch,
					 Max(Max((int64) 1024, 4 * (int64) so->batchSize), 2 * so->emitted));
}

/*
 * Score the leaves at positions from..to-1 (keys up to floorKey skipped in
 * those before floorUpto) and merge their candidates into what the store
 * has not served yet.  The store keeps work_mem's worth; what it leaves
 * out is past cutKey, and every candidate up to cutKey is in the store or
 * served.  Candidates at or before the last key served (rows of new leaves
 * scoring better than rows already served) are always kept, so that the
 * leaves can be scored again past that key without losing any.
 */
/* The store in key order, before it serves or merges */
static void
SortStore(ScoreahScanOpaque so)
{
	if (!so->storeSorted && so->storePos < so->nstore)
		scoreah_sort_by_approx(so->store + so->storePos, so->nstore - so->storePos);
	so->storeSorted = true;
}

static void
AddToStore(IndexScanDesc scan, int from, int to, int floorUpto, const ScoreahCandidate *floorKey)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);
	int			keep = StoreSize(so);
	ScoreahTopN top;
	ScoreahCandidate *merged;
	int			nrest = so->nstore - so->storePos;
	int			i,
				j,
				n;

	OrderLeaves(so, to);
	for (;;)
	{
		scoreah_topn_init(&top, keep);
		ScoreahScanLeaves(scan, &top, from, to, floorUpto, floorKey);
		scoreah_topn_prune(&top);
		if (!top.full || !so->haveServed || KeyAfter(&top.thr, &so->served) ||
			keep >= INT_MAX / 4)
			break;
		/* more rows than work_mem's worth before the last key served */
		pfree(top.items);
		keep *= 2;
	}
	scoreah_sort_by_approx(top.items, top.n);
	SortStore(so);

	merged = palloc(sizeof(ScoreahCandidate) * Max(nrest + top.n, 1));
	for (i = so->storePos, j = 0, n = 0; i < so->nstore || j < top.n;)
	{
		if (j >= top.n ||
			(i < so->nstore && scoreah_candidate_cmp(&so->store[i], &top.items[j]) < 0))
			merged[n++] = so->store[i++];
		else
			merged[n++] = top.items[j++];
	}
	if (top.full && (!so->cut || scoreah_candidate_cmp(&top.thr, &so->cutKey) < 0))
	{
		so->cut = true;
		so->cutKey = top.thr;
	}
	if (n > StoreSize(so))
	{
		int			k = StoreSize(so);

		while (k < n && so->haveServed && !KeyAfter(&merged[k - 1], &so->served))
			k++;
		if (k < n)
		{
			n = k;
			if (!so->cut || scoreah_candidate_cmp(&merged[k - 1], &so->cutKey) < 0)
			{
				so->cut = true;
				so->cutKey = merged[k - 1];
			}
		}
	}
	pfree(top.items);
	if (so->store)
		pfree(so->store);
	so->store = merged;
	so->nstore = n;
	so->storePos = 0;
	MemoryContextSwitchTo(oldCtx);
}

/* Whether the store has nothing to serve before the leaves are scored again */
static inline bool
StoreExhausted(ScoreahScanOpaque so)
{
	return so->storePos >= so->nstore ||
		(so->cut && KeyAfter(&so->store[so->storePos], &so->cutKey));
}

/*
 * Every candidate of the searched leaves has been batched: only more
 * leaves can give more rows.
 */
static inline bool
AllBatched(ScoreahScanOpaque so)
{
	return so->haveStore && so->storePos >= so->nstore && !so->cut;
}

/*
 * The key every candidate of the searched leaves not batched yet is at
 * or past.  Only when !AllBatched, after the first batch.
 */
static const ScoreahCandidate *
Frontier(ScoreahScanOpaque so)
{
	if (!so->storeSorted && so->storePos < so->nstore)
		return &so->storeMin;
	if (!StoreExhausted(so))
		return &so->store[so->storePos];
	return &so->cutKey;
}

/* Score more leaves into the store: for the depth, or the next leaves */
static void
Widen(IndexScanDesc scan, int want)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	int			end;

	/*
	 * Widen for twice the rows returned so far, so that a deep scan widens
	 * a few times, not at every row; at least num_leaves_to_search more.
	 */
	so->depthAhead = Max(so->depthAhead, 2 * (so->emitted + 1));
	end = Max(want, WantLeavesAt(so, so->depthAhead));
	end = Min(so->nleaves, Max(end, so->searched + so->nprobe));
	AddToStore(scan, so->searched, end, 0, NULL);
	so->searched = end;
}

/*
 * The next batch of candidates, re-ranked, into the pending rows.  The
 * first batch is the best candidates of the first num_leaves_to_search
 * leaves, kept by a top-N as ScaNN does; a scan that goes on scores those
 * leaves' other rows once into the store and serves its next batches from
 * there, widening as its depth wants.  Returns false when every leaf has
 * been searched and every candidate batched.
 */
static bool
NextBatch(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahMetaPage meta = &so->cache->meta;
	bool		brute = ScoreahScanBruteForce(so->cache);
	MemoryContext oldCtx;
	int			size;

	/*
	 * Batch size: the reorder count.  Deeper batches need not grow: the
	 * store serves them without scoring leaves again, and rows are
	 * returned as soon as no unseen row can precede them.
	 */
	if (so->batchSize == 0)
		so->batchSize = so->reorder > 0 ? so->reorder : DEFAULT_BATCH;
	size = Min(so->batchSize, so->maxBatch);

	if (so->batch)
		pfree(so->batch);
	so->batch = NULL;
	MemoryContextReset(so->batchCtx);

	if (so->nbatches == 0)
	{
		ScoreahTopN top;

		int			keep = (int) Min((int64) so->maxBatch, (int64) size * SCOREAH_FIRST_KEEP);

		oldCtx = MemoryContextSwitchTo(so->scanCtx);
		so->searched = Min(so->nprobe, so->nleaves);
		OrderLeaves(so, so->searched);
		scoreah_topn_init(&top, keep);
		ScoreahScanLeaves(scan, &top, 0, so->searched, 0, NULL);
		scoreah_topn_prune(&top);

		/*
		 * The best `size' are the first batch; the next best wait in the
		 * store, so that a strict scan that must look further before it
		 * can return its rows need not score the leaves again.  The store
		 * is sorted only if a second batch is wanted (most scans stop at
		 * the first); until then its frontier is its smallest key.
		 */
		scoreah_select_smallest(top.items, top.n, size);
		so->batch = top.items;
		so->nbatch = Min(top.n, size);
		so->haveStore = true;
		so->nstore = top.n;
		so->storePos = so->nbatch;
		so->store = palloc(sizeof(ScoreahCandidate) * Max(top.n, 1));
		memcpy(so->store, top.items, sizeof(ScoreahCandidate) * top.n);
		so->storeSorted = false;
		for (int i = so->storePos; i < so->nstore; i++)
			if (i == so->storePos || scoreah_candidate_cmp(&so->store[i], &so->storeMin) < 0)
				so->storeMin = so->store[i];
		if (top.full)
		{
			so->cut = true;
			so->cutKey = top.thr;
		}
		for (int i = 0; i < so->nbatch; i++)
			if (i == 0 || scoreah_candidate_cmp(&so->batch[i], &so->served) > 0)
				so->served = so->batch[i];	/* the batch's largest key */
		so->haveServed = so->nbatch > 0;
		MemoryContextSwitchTo(oldCtx);
	}
	else
	{
		int			want = WantLeaves(so);
		int			n;

		/*
		 * A deep scan of an index the store can hold whole: all of it, and
		 * exact from here on.
		 */
		if (!so->exactTail && so->strict && meta->rowsBuilt <= so->maxBatch / 2 &&
			so->emitted >= 4 * SCOREAH_DEPTH_ROWS)
			so->exactTail = true;
		if (so->exactTail)
			want = so->nleaves;
		SortStore(so);
		if (so->searched < want)
			Widen(scan, want);
		while (StoreExhausted(so))
		{
			if (so->cut)
			{
				/* work_mem held only part: score the leaves again past it */
				int			searched = so->searched;

				so->cut = false;
				so->nstore = so->storePos = 0;
				AddToStore(scan, 0, searched, searched, &so->served);
			}
			else if (so->searched < so->nleaves)
				Widen(scan, want);
			else
				return false;
		}
		oldCtx = MemoryContextSwitchTo(so->scanCtx);

		/*
		 * Every leaf searched and the store holding all that is left: one
		 * batch of all of it, so that the rest of the scan is exact.
		 */
		if (so->searched >= so->nleaves && !so->cut && so->strict)
			size = so->nstore - so->storePos;
		n = 0;
		while (n < size && !StoreExhausted(so))
			n++, so->storePos++;
		so->batch = palloc(sizeof(ScoreahCandidate) * n);
		memcpy(so->batch, so->store + so->storePos - n, sizeof(ScoreahCandidate) * n);
		so->nbatch = n;
		if (!so->haveServed || KeyAfter(&so->batch[n - 1], &so->served))
			so->served = so->batch[n - 1];
		so->haveServed = true;
		MemoryContextSwitchTo(oldCtx);
	}
	so->nbatches++;
	so->waitBatches++;

	oldCtx = MemoryContextSwitchTo(so->scanCtx);
	if (!brute && so->reorder > 0)
	{
		ScoreahScanRerank(scan);

		/*
		 * Re-ranking reads vectors in page order; the fit's sums must not
		 * depend on where rows lie (a parallel build places them
		 * differently), so the batch goes in in key order.
		 */
		scoreah_sort_by_approx(so->batch, so->nbatch);
	}
	for (int i = 0; i < so->nbatch; i++)
	{
		ScoreahCandidate *c = &so->batch[i];
		double		t = c->distance;

		if (!brute && so->reorder > 0)
		{
			if (meta->metric == SCOREAH_METRIC_L2)
				t = t * t;
			scoreah_fit_add(&so->fit, t, c->approx);
		}
		scoreah_heap_push(&so->pending, c);
	}
	MemoryContextSwitchTo(oldCtx);
	return true;
}

/*
 * May the nearest pending row be returned now?  Only once the scan has
 * searched the leaves its depth wants and, in strict order, when no
 * candidate not yet re-ranked is likely to be nearer: those all score at
 * or past the frontier, and the line of scores against exact distances
 * (scoreah_fit_line) puts the row SCOREAH_ORDER_SIGMAS standard
 * deviations short of it.  Exact scores (brute force) and rows without
 * re-ranking need only not pass the frontier.  A row waits at most
 * SCOREAH_MAX_WAIT batches: then it goes, and a nearer row found later is
 * dropped rather than returned out of order.
 */
static bool
MayReturn(ScoreahScanOpaque so, const ScoreahCandidate *x)
{
	const ScoreahCandidate *f;
	double		alpha,
				beta,
				sigma,
				t;

	if (so->searched < WantLeaves(so))
		return false;
	if (AllBatched(so))
		return so->searched >= so->nleaves;
	if (!so->strict || so->waitBatches >= SCOREAH_MAX_WAIT)
		return true;

	f = Frontier(so);
	if (ScoreahScanBruteForce(so->cache) || so->reorder == 0)
		return x->distance <= f->approx;
	if (!scoreah_fit_line(&so->fit, &alpha, &beta, &sigma) || !(alpha > 0))
		return false;
	t = so->cache->meta.metric == SCOREAH_METRIC_L2 ? x->distance * x->distance : x->distance;
	return f->approx - (alpha * t + beta) > SCOREAH_ORDER_SIGMAS * sigma;
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
			if (so->pending.n > 0 && MayReturn(so, &so->pending.items[0]))
			{
				scoreah_heap_pop(&so->pending, &c);
				if (so->strict && so->emitted > 0 &&
					scoreah_distance_cmp(&c, &so->last) < 0 &&
					!(c.distance == so->last.distance))
				{
					/* found after a farther row went: held back (below) */
					MemoryContext old = MemoryContextSwitchTo(so->scanCtx);

					scoreah_heap_push(&so->late, &c);
					MemoryContextSwitchTo(old);
					continue;
				}
				break;
			}
			if (!NextBatch(scan))
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
				so->nstore = so->storePos = 0;
				so->cut = false;
			}
		}
		so->last = c;
		so->emitted++;
		so->waitBatches = 0;
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

	if (so->started)
		elog(DEBUG2, "scoreah scan of \"%s\": %d leaves per round, %d leaves searched, " INT64_FORMAT " rows scored, %d batches, " INT64_FORMAT " rows returned, " INT64_FORMAT " of them late (out of order, at the end)",
			 RelationGetRelationName(scan->indexRelation), so->nprobe, so->searched,
			 so->rowsScored, so->nbatches, so->emitted, so->dropped);
	ResetScan(so);
	MemoryContextDelete(so->scanCtx);
	pfree(so);
	scan->opaque = NULL;
}
