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

#include "scoreah.h"

/* Candidates of a batch when nothing is re-ranked */
#define DEFAULT_BATCH	100

/* (key, tid) order: the total order in which a round hands out rows */
static inline int
CandCmp(const ScoreahCandidate *a, const ScoreahCandidate *b)
{
	if (a->approx < b->approx)
		return -1;
	if (a->approx > b->approx)
		return 1;
	return ItemPointerCompare((ItemPointer) &a->tid, (ItemPointer) &b->tid);
}

/*
 * The best `keep` candidates on (approx, tid), kept as ScaNN's top-N does:
 * an unsorted buffer of twice that size; when it fills, a quickselect
 * keeps the best half and their worst becomes the admission threshold.
 * Each offer costs O(1) amortized, against O(log n) swaps in a heap.
 */
typedef struct CandTop
{
	ScoreahCandidate *items;
	int			n;
	int			keep;
	int			cap;			/* 2 * keep */
	bool		full;			/* thr is valid */
	ScoreahCandidate thr;		/* worst of the kept after the last prune */
} CandTop;

static void
TopInit(CandTop *t, int keep)
{
	t->keep = Max(keep, 1);
	t->cap = 2 * t->keep;
	t->items = palloc(sizeof(ScoreahCandidate) * t->cap);
	t->n = 0;
	t->full = false;
}

/* Partially order items[lo..hi] so that items[k] is in its sorted place */
static void
QuickSelect(ScoreahCandidate *items, int lo, int hi, int k)
{
	while (hi > lo)
	{
		ScoreahCandidate pivot = items[lo + (hi - lo) / 2];
		int			i = lo,
					j = hi;

		while (i <= j)
		{
			ScoreahCandidate t;

			while (CandCmp(&items[i], &pivot) < 0)
				i++;
			while (CandCmp(&items[j], &pivot) > 0)
				j--;
			if (i <= j)
			{
				t = items[i];
				items[i] = items[j];
				items[j] = t;
				i++;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;
	}
}

/* Keep the best `keep`; their worst becomes the threshold */
static void
TopPrune(CandTop *t)
{
	ScoreahCandidate *worst;

	if (t->n < t->keep)
		return;
	if (t->n > t->keep)
	{
		QuickSelect(t->items, 0, t->n - 1, t->keep - 1);
		t->n = t->keep;
	}
	worst = &t->items[0];
	for (int i = 1; i < t->n; i++)
		if (CandCmp(&t->items[i], worst) > 0)
			worst = &t->items[i];
	t->thr = *worst;
	t->full = true;
}

static inline void
TopOffer(CandTop *t, const ScoreahCandidate *c)
{
	if (t->full && CandCmp(c, &t->thr) >= 0)
		return;
	t->items[t->n++] = *c;
	if (t->n == t->cap)
		TopPrune(t);
}

static int
CmpExact(const void *a, const void *b)
{
	const ScoreahCandidate *x = (const ScoreahCandidate *) a;
	const ScoreahCandidate *y = (const ScoreahCandidate *) b;

	/* NaN (cosine of a zero query) sorts last, like float8 ordering */
	if (isnan(x->distance) || isnan(y->distance))
	{
		if (isnan(x->distance) && isnan(y->distance))
			return ItemPointerCompare((ItemPointer) &x->tid, (ItemPointer) &y->tid);
		return isnan(x->distance) ? 1 : -1;
	}
	if (x->distance < y->distance)
		return -1;
	if (x->distance > y->distance)
		return 1;
	return ItemPointerCompare((ItemPointer) &x->tid, (ItemPointer) &y->tid);
}

static int
CmpApprox(const void *a, const void *b)
{
	return CandCmp((const ScoreahCandidate *) a, (const ScoreahCandidate *) b);
}

static int
CmpLeafScore(const void *a, const void *b, void *arg)
{
	const float *scores = (const float *) arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	if (scores[x] < scores[y])
		return -1;
	if (scores[x] > scores[y])
		return 1;
	return x - y;
}

/*
 * Make the first upto entries of leafOrder the nearest leaves, in order.
 * The first round needs only num_leaves_to_search of them: a bounded heap
 * picks those without sorting every leaf; a later round sorts the rest.
 */
static void
OrderLeaves(ScoreahScanOpaque so, int upto)
{
	float	   *scores = so->leafScores;

	upto = Min(upto, so->nleaves);
	if (scores == NULL || so->nordered >= upto)
		return;

	if (so->nordered == 0 && upto < so->nleaves / 4)
	{
		int		   *heap = palloc(sizeof(int) * upto);
		bool	   *picked = palloc0(sizeof(bool) * so->nleaves);
		int			n = 0,
					rest = upto;

		for (int j = 0; j < so->nleaves; j++)
		{
			int			i;

			if (n < upto)
			{
				/* sift up in a max-heap on (score, leaf) */
				i = n++;
				heap[i] = j;
				while (i > 0 && CmpLeafScore(&heap[(i - 1) / 2], &heap[i], scores) < 0)
				{
					int			p = (i - 1) / 2,
								t = heap[p];

					heap[p] = heap[i];
					heap[i] = t;
					i = p;
				}
			}
			else if (CmpLeafScore(&j, &heap[0], scores) < 0)
			{
				heap[0] = j;
				i = 0;
				for (;;)
				{
					int			l = 2 * i + 1,
								r = l + 1,
								m = i,
								t;

					if (l < n && CmpLeafScore(&heap[l], &heap[m], scores) > 0)
						m = l;
					if (r < n && CmpLeafScore(&heap[r], &heap[m], scores) > 0)
						m = r;
					if (m == i)
						break;
					t = heap[i];
					heap[i] = heap[m];
					heap[m] = t;
					i = m;
				}
			}
		}
		qsort_arg(heap, n, sizeof(int), CmpLeafScore, scores);
		for (int i = 0; i < n; i++)
		{
			so->leafOrder[i] = heap[i];
			picked[heap[i]] = true;
		}
		for (int j = 0; j < so->nleaves; j++)
			if (!picked[j])
				so->leafOrder[rest++] = j;
		so->nordered = n;
		pfree(heap);
		pfree(picked);
		return;
	}
	qsort_arg(so->leafOrder + so->nordered, so->nleaves - so->nordered, sizeof(int),
			  CmpLeafScore, scores);
	so->nordered = so->nleaves;
}

/*
 * Pin a page ahead of use and start pulling bytes [from, from + len) of it
 * into the CPU cache, so their memory latency overlaps the work on the page
 * before it.  Only the bytes about to be read: a whole page is 128 cache
 * lines, more than a core can have in flight, and re-ranking reads one or
 * two vectors of a page.
 */
static Buffer
PinAhead(Relation index, ScoreahCache cache, BlockNumber blkno, Size from, Size len)
{
	Buffer		buf;
	const char *p;

	if (blkno == InvalidBlockNumber)
		return InvalidBuffer;
	buf = ScoreahReadBufferRecent(index, cache, blkno);
	p = (const char *) BufferGetPage(buf);
	__builtin_prefetch(p);		/* the header and the special space: */
	__builtin_prefetch(p + BLCKSZ - 1);	/* both are checked first */
	for (Size off = from & ~(Size) 63; off < Min(from + len, (Size) BLCKSZ); off += 64)
		__builtin_prefetch(p + off);
	return buf;
}

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

/*
 * Exact distance of a candidate to the query: from the vector the index
 * keeps, or (reordering_storage = table) from the table's row, fetched
 * with the scan's snapshot.  Returns false when that row is not visible:
 * the executor would drop it anyway, so it need not take a place.
 */
static bool
ExactDistance(IndexScanDesc scan, ItemPointer tid, BlockNumber vblkno, uint16 voff,
			  uint32 leaf, double *distance)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahMetaPage meta = &so->cache->meta;

	if (meta->reorderStorage == SCOREAH_STORAGE_TABLE)
	{
		ItemPointerData t = *tid;
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
		if (!table_index_fetch_tuple(so->fetch, &t, scan->xs_snapshot, so->slot,
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
		*distance = scoreah_exact_distance(meta->metric, x, so->queryRaw, dim);
		if ((Pointer) array != DatumGetPointer(value))
			pfree(array);
		ExecClearTuple(so->slot);
		return true;
	}
	if (ScoreahReadVector(scan->indexRelation, meta, vblkno, voff, leaf, so->vecbuf) == NULL)
		return false;			/* freed by VACUUM: the row was dead */
	*distance = scoreah_exact_distance(meta->metric, so->vecbuf, so->queryRaw,
									   meta->dimensions);
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

void
scoreahrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
			  int norderbys)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	MemoryContext scanCtx = so->scanCtx;

	EndHeapFetch(so);
	MemoryContextReset(scanCtx);
	memset(so, 0, sizeof(ScoreahScanOpaqueData));
	so->scanCtx = scanCtx;

	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys,
				scan->numberOfOrderBys * sizeof(ScanKeyData));
}

/*
 * First call of a scan: check the query, order the leaves, build the
 * lookup table.
 */
static void
StartScan(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);
	ScoreahCache cache;
	int			dim;

	if (scan->xs_snapshot == NULL || !IsMVCCSnapshot(scan->xs_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("scoreah index scans need an MVCC snapshot")));

	so->started = true;
	cache = so->cache = ScoreahGetCache(index);
	dim = cache->meta.dimensions;
	so->nleaves = cache->meta.nleaves;
	pgstat_count_index_scan(index);

	if (scan->numberOfOrderBys == 0 || (scan->orderByData[0].sk_flags & SK_ISNULL))
		so->nullQuery = true;
	else
	{
		int			qdim;
		float	   *q = ScoreahArrayToVector(DatumGetArrayTypeP(scan->orderByData[0].sk_argument),
											 &qdim, "query vector");

		if (dim == 0)
		{
			/* an index built empty that never got a row: nothing to find */
			so->done = true;
			MemoryContextSwitchTo(oldCtx);
			return;
		}
		ScoreahCheckDimensions(dim, qdim);
		so->queryRaw = palloc(sizeof(float) * dim);
		memcpy(so->queryRaw, q, sizeof(float) * dim);
		so->query = so->queryRaw;
		if (cache->meta.metric == SCOREAH_METRIC_COSINE)
		{
			double		norm = scoreah_exact_norm(q, dim);

			if (norm == 0)
				so->nullQuery = true;	/* every distance is NaN */
			else
			{
				so->query = palloc(sizeof(float) * dim);
				for (int i = 0; i < dim; i++)
					so->query[i] = (float) (q[i] / norm);
			}
		}
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

	so->nprobe = scoreah_num_leaves_to_search > 0 ? scoreah_num_leaves_to_search :
		(int) cache->meta.numLeavesToSearch;
	so->nprobe = Max(1, Min(so->nprobe, so->nleaves));
	so->reorder = scoreah_reordering_num_neighbors;
	so->maxBatch = Max(DEFAULT_BATCH,
					   (int) Min((Size) INT_MAX / 2,
								 (Size) work_mem * 1024 / sizeof(ScoreahCandidate)));
	so->vecbuf = palloc(sizeof(float) * dim);

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
 * Offer a row to the top-N unless a previous batch of this round already
 * handed it out (its key is not past the round's threshold).
 */
static inline void
OfferItem(ScoreahScanOpaque so, CandTop *top, const ScoreahCandidate *threshold,
		  ItemPointer tid, BlockNumber vblkno, uint16 voff, int leaf,
		  double approx, double distance)
{
	ScoreahCandidate c;

	c.approx = approx;
	c.tid = *tid;
	if (so->haveThreshold && CandCmp(&c, threshold) <= 0)
		return;
	c.distance = distance;
	c.vblkno = vblkno;
	c.voff = voff;
	c.leaf = (uint32) leaf;
	TopOffer(top, &c);
}

/* Offer row i of a group; where its vector lies comes from the group header */
static inline void
OfferRow(ScoreahScanOpaque so, CandTop *top, const ScoreahCandidate *threshold,
		 const ScoreahGroupHeaderData *gh, ItemPointer tids, int i, int leaf,
		 double approx)
{
	BlockNumber vblkno;
	uint16		voff = 0;

	/* a damaged page list makes the vector unreadable: re-ranking drops it */
	if (!ScoreahRowVector(&so->cache->layout, gh, i, &vblkno, &voff))
		vblkno = InvalidBlockNumber;
	OfferItem(so, top, threshold, &tids[i], vblkno, voff, leaf, approx, approx);
}

/* A row of a leaf scored exactly (brute force), copied off its page */
typedef struct BruteRow
{
	ItemPointerData tid;
	uint16		voff;
	BlockNumber vblkno;
} BruteRow;

/*
 * Score every live row of one leaf and offer it to the top-N, skipping rows
 * at or before the round's threshold key.
 */
static void
ScanLeaf(IndexScanDesc scan, int leaf, ScoreahLeaf entry, Buffer headbuf,
		 CandTop *top)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	ScoreahCache cache = so->cache;
	ScoreahModel model = &cache->model;
	ScoreahMetaPage meta = &cache->meta;
	bool		brute = UseBruteForce(cache);
	ScoreahLayout layout = &cache->layout;
	Size		gsize = layout->gsize;
	Buffer		buf;
	double		base = 0;
	ScoreahCandidate threshold;
	BruteRow   *items = NULL;
	int			nitems = 0;
	uint32		sumLimit = PG_UINT32_MAX;

	threshold.approx = so->thrApprox;
	threshold.tid = so->thrTid;

	if (entry->codeHead == InvalidBlockNumber)
		return;

	if (!brute)
	{
		const float *c = model->centroids + (Size) leaf * model->dim;

		if (!model->residual)
			base = 0;			/* codes approximate the whole vector */
		else if (meta->metric == SCOREAH_METRIC_L2)
		{
			/* residuals of this leaf: the table depends on the leaf */
			scoreah_lut_build(model, so->query, c, &so->lut);
			scoreah_lut_quantize(&so->lut);
		}
		else
			base = -(double) scoreah_dot(so->query, c, model->dim);
		base += so->lut.offset;
	}
	else
		items = palloc(sizeof(BruteRow) * SCOREAH_GROUP_ROWS * layout->groupsPerPage);

	buf = BufferIsValid(headbuf) ? headbuf :
		ScoreahReadBufferRecent(index, cache, entry->codeHead);
	while (BufferIsValid(buf))
	{
		Page		page;
		int			ngroups;
		Buffer		nextbuf;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!ScoreahPageIs(page, SCOREAH_PAGE_CODES, (uint32) leaf))
		{
			/* VACUUM freed the leaf's pages after we read the directory */
			UnlockReleaseBuffer(buf);
			break;
		}
		/* the chain's next page loads while this one is scored */
		nextbuf = PinAhead(index, cache, ScoreahPageGetOpaque(page)->nextblkno, 0, BLCKSZ);
		ngroups = ScoreahPageGetNGroups(page, gsize);
		nitems = 0;

		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(page) + g * gsize;
			ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
			ItemPointer tids = ScoreahGroupTids(layout, group);
			uint32		sums[SCOREAH_GROUP_ROWS];

			if (gh->nlive == 0)
				continue;
			if (brute)
			{
				/* copy out; vectors are read after the page is released */
				for (int i = 0; i < gh->nitems; i++)
					if (ItemPointerIsValid(&tids[i]))
					{
						BruteRow   *r = &items[nitems++];

						r->tid = tids[i];
						if (!ScoreahRowVector(layout, gh, i, &r->vblkno, &r->voff))
							r->vblkno = InvalidBlockNumber;
					}
				continue;
			}

			so->rowsScored += gh->nitems;
			if (scoreah_float_lut_scoring)
			{
				/* reference path: float table entries, no 8-bit rounding */
				const uint8 *codes = ScoreahGroupCodes(layout, group);

				for (int i = 0; i < gh->nitems; i++)
				{
					double		sum = base - so->lut.offset;

					if (!ItemPointerIsValid(&tids[i]))
						continue;
					for (int b = 0; b < (int) meta->nblocks; b++)
						sum += so->lut.flut[b * SCOREAH_CENTERS + scoreah_unpack_code(codes, i, b)];
					OfferRow(so, top, &threshold, gh, tids, i, leaf, sum);
				}
				continue;
			}
			scoreah_lut16_scan(ScoreahGroupCodes(layout, group), so->lut.qlut, meta->nblocks, sums);

			/*
			 * Once the heap is full, rows whose integer sum exceeds the worst
			 * kept candidate's are out: skip them before any float work.  The
			 * bound is rounded up so no row that could tie is skipped.
			 */
			if (top->full)
			{
				double		lim = (top->thr.approx - base) * so->lut.scale;

				sumLimit = lim < 0 ? 0 : (lim >= (double) PG_UINT32_MAX ? PG_UINT32_MAX : (uint32) ceil(lim) + 1);
			}
			/*
			 * The rows under the limit as a bit mask, without a branch per
			 * row (which rows pass is data-dependent, so such branches
			 * mispredict), then only those rows.
			 */
			{
				uint32		pass = 0;

				for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
					pass |= (uint32) (sums[i] <= sumLimit) << i;
				if (gh->nitems < SCOREAH_GROUP_ROWS)
					pass &= ((uint32) 1 << gh->nitems) - 1;
				while (pass != 0)
				{
					int			i = pg_rightmost_one_pos32(pass);

					pass &= pass - 1;
					if (ItemPointerIsValid(&tids[i]))
						OfferRow(so, top, &threshold, gh, tids, i, leaf,
								 base + sums[i] / so->lut.scale);
				}
			}
		}
		UnlockReleaseBuffer(buf);
		buf = nextbuf;

		/* brute force: exact distances from the stored vectors */
		for (int i = 0; i < nitems; i++)
		{
			double		distance;

			if (!ExactDistance(scan, &items[i].tid, items[i].vblkno, items[i].voff,
							   (uint32) leaf, &distance))
				continue;
			OfferItem(so, top, &threshold, &items[i].tid, items[i].vblkno, items[i].voff,
					  leaf, isnan(distance) ? get_float8_infinity() : distance, distance);
		}
	}
	if (items)
		pfree(items);
}

static int
CmpLocation(const void *a, const void *b)
{
	const ScoreahCandidate *x = (const ScoreahCandidate *) a;
	const ScoreahCandidate *y = (const ScoreahCandidate *) b;

	if (x->vblkno != y->vblkno)
		return x->vblkno < y->vblkno ? -1 : 1;
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
	Size		vbytes = ScoreahVectorBytes(meta);
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
		const char *src;

		if (c->vblkno == InvalidBlockNumber)
			continue;			/* no readable vector (sorted last) */
		if (c->vblkno != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			CHECK_FOR_INTERRUPTS();
			cur = c->vblkno;
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
				if (so->batch[aheadAt].vblkno != cur)
				{
					ahead = PinAhead(index, so->cache, so->batch[aheadAt].vblkno, so->batch[aheadAt].voff, vbytes);
					break;
				}
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
		}

		/*
		 * A page VACUUM freed since the candidate was scored (the row was
		 * dead) is no longer this leaf's vector page: drop the candidate.
		 */
		if (!ScoreahVectorPageIs(page, c->leaf) ||
			c->voff < SCOREAH_VECTORS_OFFSET ||
			c->voff + vbytes > ((PageHeader) page)->pd_lower)
			continue;
		src = (const char *) page + c->voff;

		/*
		 * Straight from the page: records start at even (float16) or
		 * 4-byte (float32) offsets, so the kernels can read them in place.
		 */
		if (half)
			c->distance = scoreah_exact_distance_half(meta->metric, (const uint16 *) src,
													  so->queryRaw, meta->dimensions);
		else
			c->distance = scoreah_exact_distance(meta->metric, (const float *) src,
												 so->queryRaw, meta->dimensions);
		so->batch[kept++] = *c;
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	if (BufferIsValid(ahead))
		ReleaseBuffer(ahead);
	so->nbatch = kept;
}

/*
 * Fill so->batch with the next candidates, in output order.  Returns false
 * when every leaf has been searched.
 */
static bool
NextBatch(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	ScoreahCache cache = so->cache;
	bool		brute = UseBruteForce(cache);
	MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);
	CandTop		top;

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
		TopInit(&top, size);

		OrderLeaves(so, so->roundEnd);
		{
			ScoreahLeafData entries[2];
			Buffer		head = InvalidBuffer;

			/*
			 * While a leaf is scored, the next leaf's first page is already
			 * pinned and on its way into the CPU cache.
			 */
			if (so->roundStart < so->roundEnd)
			{
				ScoreahReadLeafRecent(index, cache, so->leafOrder[so->roundStart], &entries[0]);
				head = PinAhead(index, cache, entries[0].codeHead, 0, BLCKSZ);
			}
			for (int i = so->roundStart; i < so->roundEnd; i++)
			{
				ScoreahLeaf cur = &entries[(i - so->roundStart) & 1];
				ScoreahLeaf nxt = &entries[(i - so->roundStart + 1) & 1];
				Buffer		nexthead = InvalidBuffer;

				if (i + 1 < so->roundEnd)
				{
					ScoreahReadLeafRecent(index, cache, so->leafOrder[i + 1], nxt);
					nexthead = PinAhead(index, cache, nxt->codeHead, 0, BLCKSZ);
				}
				ScanLeaf(scan, so->leafOrder[i], cur, head, &top);
				head = nexthead;
			}
		}
		TopPrune(&top);

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
			so->thrApprox = top.thr.approx;
			so->thrTid = top.thr.tid;
		}

		if (brute)
			qsort(so->batch, so->nbatch, sizeof(ScoreahCandidate), CmpExact);
		else if (so->reorder > 0)
		{
			/* re-rank: exact distances; rows gone from the table drop out */
			Size		vbytes = ScoreahVectorBytes(&cache->meta);

			if (vbytes > 0 && vbytes <= SCOREAH_VECTOR_CAPACITY)
				RerankFromPages(scan);
			else
			{
				int			kept = 0;

				for (int i = 0; i < so->nbatch; i++)
				{
					ScoreahCandidate *c = &so->batch[i];

					if ((i & 63) == 0)
						CHECK_FOR_INTERRUPTS();
					if (ExactDistance(scan, &c->tid, c->vblkno, c->voff, c->leaf, &c->distance))
						so->batch[kept++] = *c;
				}
				so->nbatch = kept;
			}
			qsort(so->batch, so->nbatch, sizeof(ScoreahCandidate), CmpExact);
		}
		else
			qsort(so->batch, so->nbatch, sizeof(ScoreahCandidate), CmpApprox);
		MemoryContextSwitchTo(oldCtx);
		return true;
	}
}

/*
 * Rows of a scan without a usable query (NULL, or a zero vector under
 * cosine): every live row once, leaf by leaf, page by page.
 */
static bool
NextSequentialPage(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	ScoreahMetaPage meta = &so->cache->meta;
	ScoreahLayout layout = &so->cache->layout;
	Size		gsize = layout->gsize;

	for (;;)
	{
		Buffer		buf;
		Page		page;
		int			ngroups;

		CHECK_FOR_INTERRUPTS();
		if (so->seqBlk == InvalidBlockNumber)
		{
			ScoreahLeafData entry;

			if (++so->seqLeaf >= so->nleaves)
				return false;
			ScoreahReadLeaf(index, meta, so->seqLeaf, &entry);
			so->seqBlk = entry.codeHead;
			continue;
		}
		buf = ReadBuffer(index, so->seqBlk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!ScoreahPageIs(page, SCOREAH_PAGE_CODES, (uint32) so->seqLeaf))
		{
			/* freed by VACUUM after we read the directory: next leaf */
			UnlockReleaseBuffer(buf);
			so->seqBlk = InvalidBlockNumber;
			continue;
		}
		ngroups = ScoreahPageGetNGroups(page, gsize);
		so->nbatch = 0;
		so->batchPos = 0;
		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(page) + g * gsize;
			ItemPointer tids = ScoreahGroupTids(layout, group);

			for (int i = 0; i < ScoreahGroupHeader(group)->nitems; i++)
				if (ItemPointerIsValid(&tids[i]))
				{
					ScoreahCandidate *c = &so->batch[so->nbatch++];

					c->tid = tids[i];
					c->distance = get_float8_nan();
				}
		}
		so->seqBlk = ScoreahPageGetOpaque(page)->nextblkno;
		UnlockReleaseBuffer(buf);
		if (so->nbatch > 0)
			return true;
	}
}

bool
scoreahgettuple(IndexScanDesc scan, ScanDirection dir)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;

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

	{
		ScoreahCandidate *c = &so->batch[so->batchPos++];

		scan->xs_heaptid = c->tid;
		scan->xs_recheck = false;
		/* rows come in exact order: the executor need not re-sort */
		scan->xs_recheckorderby = false;
	}
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
	EndHeapFetch(so);
	MemoryContextDelete(so->scanCtx);
	pfree(so);
	scan->opaque = NULL;
}
