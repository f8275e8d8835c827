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
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "scoreah.h"

/* Candidates of a batch when nothing is re-ranked */
#define DEFAULT_BATCH	100

static bool
UseBruteForce(ScoreahCache cache)
{
	return cache->meta.scoring == SCOREAH_SCORING_BRUTE_FORCE ||
		!(cache->meta.flags & SCOREAH_FLAG_TRAINED) || cache->meta.nblocks == 0;
}

static void
EndHeapFetch(ScoreahScanOpaque so)
{
	if (so->fetch)
	{
		table_index_fetch_end(so->fetch);
		so->fetch = NULL;
	}
	if (so->slot)
	{
		ExecDropSingleTupleTableSlot(so->slot);
		so->slot = NULL;
	}
}

/* The exact distance the scan's kernels give, for a in floats or halves */
static inline double
Distance(ScoreahScanOpaque so, const void *a, bool half)
{
	return scoreah_exact_distance_with(so->exact, so->cache->meta.metric, a, half,
									   so->queryRaw, so->cache->meta.dimensions);
}

/*
 * Exact distance of a candidate to the query: from the vector the index
 * keeps, or (reordering_storage = table) from the table's row, fetched
 * with the scan's snapshot.  Returns false when that row is not visible:
 * the executor would drop it anyway, so it need not take a place.
 */
static bool
ExactDistance(IndexScanDesc scan, const ScoreahCandidate *c, double *distance)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahMetaPage meta = &so->cache->meta;

	if (meta->reorderStorage == SCOREAH_STORAGE_TABLE)
	{
		ItemPointerData tid;
		bool		call_again = false;
		bool		all_dead = false;
		bool		isnull;
		Datum		value;
		ArrayType  *array;
		float	   *x;
		int			dim;

		if (so->fetch == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(so->scanCtx);

			so->fetch = table_index_fetch_begin(scan->heapRelation);
			so->slot = table_slot_create(scan->heapRelation, NULL);
			so->heapAttno = scan->indexRelation->rd_index->indkey.values[0];
			MemoryContextSwitchTo(old);
		}
		ScoreahIdToTid(c->id, &tid);
		if (!table_index_fetch_tuple(so->fetch, &tid, scan->xs_snapshot, so->slot,
									 &call_again, &all_dead))
			return false;
		value = slot_getattr(so->slot, so->heapAttno, &isnull);
		if (isnull)
		{
			ExecClearTuple(so->slot);
			return false;
		}
		array = DatumGetArrayTypeP(value);
		x = ScoreahArrayToVector(array, &dim, "indexed vector");
		ScoreahCheckDimensions(meta->dimensions, dim);
		*distance = Distance(so, x, false);
		if ((Pointer) array != DatumGetPointer(value))
			pfree(array);
		ExecClearTuple(so->slot);
		return true;
	}
	if (ScoreahReadVector(scan->indexRelation, meta, c->vpage, c->voff, c->leaf,
						  so->vecbuf) == NULL)
		return false;			/* freed by VACUUM: the row was dead */
	*distance = Distance(so, so->vecbuf, false);
	return true;
}

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

	EndHeapFetch(so);
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
	so->nprobe = Max(1, Min(so->nprobe, so->nleaves));
	so->reorder = scoreah_reordering_num_neighbors;
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
 * (built empty, no row since): nothing to find.
 */
static bool
PrepareQuery(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	int			dim = so->cache->meta.dimensions;
	int			qdim;
	float	   *q;

	if (scan->numberOfOrderBys == 0 || (scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		so->nullQuery = true;
		return true;
	}
	q = ScoreahArrayToVector(DatumGetArrayTypeP(scan->orderByData[0].sk_argument),
							 &qdim, "query vector");
	if (dim == 0)
		return false;
	ScoreahCheckDimensions(dim, qdim);
	so->queryRaw = palloc(sizeof(float) * dim);
	memcpy(so->queryRaw, q, sizeof(float) * dim);
	so->query = so->queryRaw;
	if (so->cache->meta.metric == SCOREAH_METRIC_COSINE)
	{
		so->query = palloc(sizeof(float) * dim);
		if (scoreah_normalize(q, dim, so->query) == 0)
			so->nullQuery = true;	/* every distance is NaN */
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

	so->vecbuf = palloc(sizeof(float) * cache->meta.dimensions);
	if (cache->meta.flags & SCOREAH_FLAG_TRAINED)
	{
		so->leafScores = palloc(sizeof(float) * so->nleaves);
		scoreah_route_scores(&cache->model, so->query, so->leafScores);
	}
	if (!UseBruteForce(cache))
	{
		scoreah_lut_alloc(&so->lut, cache->model.nblocks);
		if (cache->meta.metric != SCOREAH_METRIC_L2 || !cache->model.residual)
		{
			/* one table for all leaves; the centroid enters as a bias */
			scoreah_lut_build(&cache->model, so->query, NULL, &so->lut);
			scoreah_lut_quantize(&so->lut);
		}
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
 * Offer a row to the top-N unless a previous batch of this round already
 * handed it out (its key is not past the round's threshold).
 */
static inline void
OfferItem(ScoreahScanOpaque so, ScoreahTopN *top, uint64 id, BlockNumber vblkno,
		  uint16 voff, int leaf, double approx, double distance)
{
	ScoreahCandidate c;

	c.approx = approx;
	c.id = id;
	if (so->haveThreshold && scoreah_candidate_cmp(&c, &so->threshold) <= 0)
		return;
	c.distance = distance;
	c.vpage = vblkno;
	c.voff = voff;
	c.leaf = (uint32) leaf;
	scoreah_topn_offer(top, &c);
}

/* Offer row i of a group; where its vector lies comes from the group header */
static inline void
OfferRow(ScoreahScanOpaque so, ScoreahTopN *top, const ScoreahGroupHeaderData *gh,
		 ItemPointer tids, int i, int leaf, double approx)
{
	BlockNumber vblkno;
	uint16		voff = 0;

	/* a damaged page list makes the vector unreadable: re-ranking drops it */
	if (!ScoreahRowVector(&so->cache->layout, gh, i, &vblkno, &voff))
		vblkno = InvalidBlockNumber;
	OfferItem(so, top, ScoreahTidToId(&tids[i]), vblkno, voff, leaf, approx, approx);
}

/*
 * Score the groups of a code page with the 8-bit lookup table and the
 * LUT16 kernel.  base is the leaf's part of every row's score.
 */
static void
ScorePageLut16(ScoreahScanOpaque so, Page page, int leaf, double base, ScoreahTopN *top)
{
	ScoreahLayout layout = &so->cache->layout;
	Size		gsize = layout->gsize;
	int			nblocks = so->cache->meta.nblocks;
	int			ngroups = ScoreahPageGetNGroups(page, gsize);
	uint32		sumLimit = PG_UINT32_MAX;

	for (int g = 0; g < ngroups; g++)
	{
		char	   *group = PageGetContents(page) + g * gsize;
		ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
		ItemPointer tids = ScoreahGroupTids(layout, group);
		uint32		sums[SCOREAH_GROUP_ROWS];
		uint32		pass = 0;

		if (gh->nlive == 0)
			continue;
		so->rowsScored += gh->nitems;
		so->lut16(ScoreahGroupCodes(layout, group), so->lut.qlut, nblocks, sums);

		/*
		 * Once the top-N is full, rows whose integer sum exceeds the worst
		 * kept candidate's are out: skip them before any float work.  The
		 * bound is rounded up so no row that could tie is skipped.
		 */
		if (top->full)
		{
			double		lim = (top->thr.approx - base) * so->lut.scale;

			sumLimit = lim < 0 ? 0 : (lim >= (double) PG_UINT32_MAX ? PG_UINT32_MAX : (uint32) ceil(lim) + 1);
		}

		/*
		 * The rows under the limit as a bit mask, without a branch per row
		 * (which rows pass is data-dependent, so such branches mispredict),
		 * then only those rows.
		 */
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			pass |= (uint32) (sums[i] <= sumLimit) << i;
		if (gh->nitems < SCOREAH_GROUP_ROWS)
			pass &= ((uint32) 1 << gh->nitems) - 1;
		while (pass != 0)
		{
			int			i = pg_rightmost_one_pos32(pass);

			pass &= pass - 1;
			if (ItemPointerIsValid(&tids[i]))
				OfferRow(so, top, gh, tids, i, leaf, base + sums[i] / so->lut.scale);
		}
	}
}

/*
 * The reference path of scoreah.float_lut_scoring: the float table's
 * entries, no 8-bit rounding (slow; to measure what 8 bits cost).
 */
static void
ScorePageFloatLut(ScoreahScanOpaque so, Page page, int leaf, double base, ScoreahTopN *top)
{
	ScoreahLayout layout = &so->cache->layout;
	Size		gsize = layout->gsize;
	int			nblocks = so->cache->meta.nblocks;
	int			ngroups = ScoreahPageGetNGroups(page, gsize);

	for (int g = 0; g < ngroups; g++)
	{
		char	   *group = PageGetContents(page) + g * gsize;
		ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
		ItemPointer tids = ScoreahGroupTids(layout, group);
		const uint8 *codes = ScoreahGroupCodes(layout, group);

		if (gh->nlive == 0)
			continue;
		so->rowsScored += gh->nitems;
		for (int i = 0; i < gh->nitems; i++)
		{
			double		sum = base - so->lut.offset;

			if (!ItemPointerIsValid(&tids[i]))
				continue;
			for (int b = 0; b < nblocks; b++)
				sum += so->lut.flut[b * SCOREAH_CENTERS + scoreah_unpack_code(codes, i, b)];
			OfferRow(so, top, gh, tids, i, leaf, sum);
		}
	}
}

/*
 * brute_force scoring (and untrained indexes): copy the live rows of a
 * code page with where their vectors are; their exact distances are read
 * after the page is released.  Returns how many.
 */
static int
CollectPageRows(ScoreahScanOpaque so, Page page, int leaf, ScoreahCandidate *rows)
{
	ScoreahLayout layout = &so->cache->layout;
	Size		gsize = layout->gsize;
	int			ngroups = ScoreahPageGetNGroups(page, gsize);
	int			n = 0;

	for (int g = 0; g < ngroups; g++)
	{
		char	   *group = PageGetContents(page) + g * gsize;
		ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
		ItemPointer tids = ScoreahGroupTids(layout, group);

		for (int i = 0; i < gh->nitems; i++)
			if (ItemPointerIsValid(&tids[i]))
			{
				ScoreahCandidate *r = &rows[n++];
				BlockNumber vblkno;

				r->id = ScoreahTidToId(&tids[i]);
				r->leaf = (uint32) leaf;
				if (!ScoreahRowVector(layout, gh, i, &vblkno, &r->voff))
					vblkno = InvalidBlockNumber;
				r->vpage = vblkno;
			}
	}
	return n;
}

/* The part of every row's AH score that comes from its leaf */
static double
LeafBase(ScoreahScanOpaque so, int leaf)
{
	ScoreahModel model = &so->cache->model;
	const float *c = model->centroids + (Size) leaf * model->dim;
	double		base = 0;

	if (!model->residual)
		base = 0;				/* codes approximate the whole vector */
	else if (model->metric == SCOREAH_METRIC_L2)
	{
		/* residuals of this leaf: the table depends on the leaf */
		scoreah_lut_build(model, so->query, c, &so->lut);
		scoreah_lut_quantize(&so->lut);
	}
	else
		base = -(double) scoreah_dot(so->query, c, model->dim);
	return base + so->lut.offset;
}

/*
 * Score every live row of one leaf and offer it to the top-N, skipping rows
 * at or before the round's threshold key.  headbuf is the leaf's first
 * code page, pinned ahead by the caller (or invalid).
 */
static void
ScanLeaf(IndexScanDesc scan, int leaf, ScoreahLeaf entry, Buffer headbuf,
		 ScoreahTopN *top)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	bool		brute = UseBruteForce(so->cache);
	double		base = 0;
	ScoreahCandidate *rows = NULL;
	ScoreahChainData chain;

	if (entry->codeHead == InvalidBlockNumber)
	{
		if (BufferIsValid(headbuf))
			ReleaseBuffer(headbuf);
		return;
	}
	if (brute)
		rows = palloc(sizeof(ScoreahCandidate) * SCOREAH_GROUP_ROWS *
					  so->cache->layout.groupsPerPage);
	else
		base = LeafBase(so, leaf);

	/* the chain's next page loads while this one is scored */
	ScoreahChainBegin(&chain, scan->indexRelation, entry->codeHead, SCOREAH_PAGE_CODES,
					  (uint32) leaf, BUFFER_LOCK_SHARE, SCOREAH_CHAIN_READAHEAD);
	chain.hints = so->cache;
	chain.ahead = headbuf;
	while (ScoreahChainNext(&chain))
	{
		int			nrows;

		CHECK_FOR_INTERRUPTS();
		if (!brute)
		{
			if (so->floatLut)
				ScorePageFloatLut(so, chain.page, leaf, base, top);
			else
				ScorePageLut16(so, chain.page, leaf, base, top);
			continue;
		}

		/* brute force: exact distances from the stored vectors */
		nrows = CollectPageRows(so, chain.page, leaf, rows);
		ScoreahChainRelease(&chain);
		for (int i = 0; i < nrows; i++)
		{
			double		distance;

			if (!ExactDistance(scan, &rows[i], &distance))
				continue;
			OfferItem(so, top, rows[i].id, rows[i].vpage, rows[i].voff, leaf,
					  isnan(distance) ? get_float8_infinity() : distance, distance);
		}
	}
	ScoreahChainEnd(&chain);
	if (rows)
		pfree(rows);
}

static int
CmpLocation(const void *a, const void *b)
{
	const ScoreahCandidate *x = (const ScoreahCandidate *) a;
	const ScoreahCandidate *y = (const ScoreahCandidate *) b;

	if (x->vpage != y->vpage)
		return x->vpage < y->vpage ? -1 : 1;
	return (int) x->voff - (int) y->voff;
}

/*
 * Exact distances of the batch from vectors kept in the index, each on one
 * page: visit the candidates in page order so each page is read and locked
 * once, however many of its vectors made the batch (a leaf's vectors sit
 * together, about 20 to a page at 100 dimensions).
 */
static void
RerankFromPages(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahMetaPage meta = &so->cache->meta;
	Relation	index = scan->indexRelation;
	Size		vbytes = so->cache->layout.vbytes;
	bool		half = meta->reorderStorage == SCOREAH_STORAGE_HALF;
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page		page = NULL;
	int			kept = 0;
	Buffer		ahead = InvalidBuffer;
	int			aheadAt = 0;

	qsort(so->batch, so->nbatch, sizeof(ScoreahCandidate), CmpLocation);
	for (int i = 0; i < so->nbatch; i++)
	{
		ScoreahCandidate *c = &so->batch[i];

		if (c->vpage == InvalidBlockNumber)
			continue;			/* no readable vector (sorted last) */
		if (c->vpage != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			CHECK_FOR_INTERRUPTS();
			cur = c->vpage;
			if (BufferIsValid(ahead) && BufferGetBlockNumber(ahead) == cur)
				buf = ahead;
			else
			{
				if (BufferIsValid(ahead))
					ReleaseBuffer(ahead);
				buf = ScoreahReadBufferRecent(index, so->cache, cur);
			}
			ahead = InvalidBuffer;

			/* pin the next candidate page ahead while this one is read */
			for (aheadAt = Max(aheadAt, i + 1); aheadAt < so->nbatch; aheadAt++)
				if (so->batch[aheadAt].vpage != cur)
				{
					ahead = ScoreahPinAhead(index, so->cache, so->batch[aheadAt].vpage,
											so->batch[aheadAt].voff, vbytes);
					break;
				}
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
		}

		/*
		 * A page VACUUM freed since the candidate was scored (the row was
		 * dead) is no longer this leaf's vector page: drop the candidate.
		 */
		if (!ScoreahVectorPageOf(page, c->leaf) ||
			c->voff < SCOREAH_VECTORS_OFFSET ||
			c->voff + vbytes > ((PageHeader) page)->pd_lower)
			continue;

		/*
		 * Straight from the page: records start at even (float16) or
		 * 4-byte (float32) offsets, so the kernels can read them in place.
		 */
		c->distance = Distance(so, (const char *) page + c->voff, half);
		so->batch[kept++] = *c;
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	if (BufferIsValid(ahead))
		ReleaseBuffer(ahead);
	so->nbatch = kept;
}

/*
 * Exact distances of the batch one candidate at a time: vectors longer
 * than a page, or rows of the table (reordering_storage = table).  Rows
 * gone from the table drop out.
 */
static void
RerankEach(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	int			kept = 0;

	for (int i = 0; i < so->nbatch; i++)
	{
		ScoreahCandidate *c = &so->batch[i];

		if ((i & 63) == 0)
			CHECK_FOR_INTERRUPTS();
		if (ExactDistance(scan, c, &c->distance))
			so->batch[kept++] = *c;
	}
	so->nbatch = kept;
}

/*
 * Score the leaves of the current round into top.  While a leaf is scored,
 * the next leaf's first page is already pinned and on its way into the
 * CPU cache.
 */
static void
ScoreRound(IndexScanDesc scan, ScoreahTopN *top)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	ScoreahCache cache = so->cache;
	ScoreahLeafData entries[2];
	Buffer		head = InvalidBuffer;

	OrderLeaves(so, so->roundEnd);
	if (so->roundStart < so->roundEnd)
	{
		ScoreahReadLeafRecent(index, cache, so->leafOrder[so->roundStart], &entries[0]);
		head = ScoreahPinAhead(index, cache, entries[0].codeHead, 0, BLCKSZ);
	}
	for (int i = so->roundStart; i < so->roundEnd; i++)
	{
		ScoreahLeaf cur = &entries[(i - so->roundStart) & 1];
		ScoreahLeaf nxt = &entries[(i - so->roundStart + 1) & 1];
		Buffer		nexthead = InvalidBuffer;

		if (i + 1 < so->roundEnd)
		{
			ScoreahReadLeafRecent(index, cache, so->leafOrder[i + 1], nxt);
			nexthead = ScoreahPinAhead(index, cache, nxt->codeHead, 0, BLCKSZ);
		}
		ScanLeaf(scan, so->leafOrder[i], cur, head, top);
		head = nexthead;
	}
}

/*
 * Fill so->batch with the next candidates, in output order.  Returns false
 * when every leaf has been searched.
 */
static bool
NextBatch(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	bool		brute = UseBruteForce(so->cache);
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
		scoreah_topn_init(&top, size);
		ScoreRound(scan, &top);
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
			/* re-rank: exact distances; rows gone from the table drop out */
			if (so->cache->layout.vbytes > 0 && so->cache->layout.vecsPerPage > 0)
				RerankFromPages(scan);
			else
				RerankEach(scan);
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
