/*-------------------------------------------------------------------------
 *
 * scan_score.c
 *	  The work of a scan round: score every live row of the round's leaves
 *	  (from their 4-bit codes through the LUT16 kernel, through the float
 *	  table for scoreah.float_lut_scoring, or exactly for brute_force and
 *	  untrained indexes) into the top-N, then re-rank a batch with exact
 *	  distances from the stored vectors or the table's rows.
 *
 * scan.c decides which leaves and how many candidates; this file reads the
 * pages.  Pages are reached by chain walks (chain.c) that pin the next
 * page ahead and check that each still belongs to its leaf.
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
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "scoreah.h"

void
ScoreahScanEndHeapFetch(ScoreahScanOpaque so)
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
 * The value of the ORDER BY operator for a vector of a pgvector column
 * (a datum of the column's type): pgvector computes its distances in single
 * precision with the instructions its build chose, so only its own function
 * gives the bits a sequential scan sorts by.
 */
static inline double
OperatorDistance(ScoreahScanOpaque so, Datum value)
{
	return DatumGetFloat8(FunctionCall2Coll(so->distFunc, so->distColl, value,
											so->queryDatum));
}

/*
 * The exact distance of a vector as the index stores it: for real[] the
 * scan's exact kernels (bit for bit the SQL operators'), for pgvector's
 * types the column's operator (a datum as it lies on the page, or, for a
 * vector kept in half precision, a vector datum of the rounded values).
 */
static inline double
StoredDistance(ScoreahScanOpaque so, const char *stored)
{
	ScoreahMetaPage meta = &so->cache->meta;

	if (meta->format == SCOREAH_FORMAT_ARRAY)
		return scoreah_exact_distance_with(so->exact, meta->metric, stored,
										   meta->reorderStorage == SCOREAH_STORAGE_HALF,
										   so->queryRaw, meta->dimensions);
	if (ScoreahStoredIsDatum(meta))
	{
		/* the header as written, or pgvector would follow what it says */
		if (unlikely(memcmp(stored, &so->storedHeader, SCOREAH_PGVECTOR_HDRSZ) != 0))
			ScoreahDamagedStored(so->cache->indexOid, stored, &so->storedHeader);
		return OperatorDistance(so, PointerGetDatum(stored));
	}
	ScoreahStoredToFloats(meta, stored, (float *) (so->datumBuf + SCOREAH_PGVECTOR_HDRSZ));
	return OperatorDistance(so, PointerGetDatum(so->datumBuf));
}

/*
 * The exact distance of a row read from the table (reordering_storage =
 * table): the column's value as the SQL operator sees it.
 */
static double
HeapDistance(ScoreahScanOpaque so, Datum value)
{
	ScoreahMetaPage meta = &so->cache->meta;
	int			dim;
	float	   *x;

	if (meta->format != SCOREAH_FORMAT_ARRAY)
		return OperatorDistance(so, value);
	x = ScoreahDatumToVector(meta->format, value, &dim, "indexed vector");
	ScoreahCheckDimensions(meta->dimensions, dim);
	return scoreah_exact_distance_with(so->exact, meta->metric, x, false,
									   so->queryRaw, meta->dimensions);
}

/*
 * Exact distance of a candidate to the query: from the vector the index
 * keeps, or (reordering_storage = table) from the table's row, fetched
 * with the scan's snapshot.  Returns false when that row is not visible:
 * the executor would drop it anyway, so it need not take a place.  The
 * row's value is copied (detoasted, or by pgvector's operator) into a
 * context reset for each row: brute-force scoring takes every row of the
 * leaves searched this way, and the per-batch context kept all their
 * copies (32 MB for 8,000 TOASTed rows of 1,000 dimensions under a
 * work_mem of 64 kB).
 */
static bool
ExactDistance(IndexScanDesc scan, const ScoreahCandidate *c, double *distance)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	ScoreahMetaPage meta = &so->cache->meta;
	MemoryContext old = MemoryContextSwitchTo(so->batchCtx);
	bool		found = true;

	if (meta->reorderStorage == SCOREAH_STORAGE_TABLE)
	{
		ItemPointerData tid;
		bool		call_again = false;
		bool		all_dead = false;
		bool		isnull;
		Datum		value;

		if (so->fetch == NULL)
		{
			MemoryContextSwitchTo(so->scanCtx);
			so->fetch = table_index_fetch_begin(scan->heapRelation);
			so->slot = table_slot_create(scan->heapRelation, NULL);
			so->heapAttno = scan->indexRelation->rd_index->indkey.values[ScoreahVectorColumn(scan->indexRelation)];
			so->rowCtx = AllocSetContextCreate(so->scanCtx, "scoreah scan row",
											   ALLOCSET_DEFAULT_SIZES);
		}
		MemoryContextReset(so->rowCtx);
		MemoryContextSwitchTo(so->rowCtx);
		ScoreahIdToTid(c->id, &tid);
		found = table_index_fetch_tuple(so->fetch, &tid, scan->xs_snapshot, so->slot,
										&call_again, &all_dead);
		if (found)
		{
			value = slot_getattr(so->slot, so->heapAttno, &isnull);
			found = !isnull;
			if (found)
				*distance = HeapDistance(so, value);
			ExecClearTuple(so->slot);
		}
	}
	else if (ScoreahReadStored(scan->indexRelation, meta, c->vpage, c->voff, c->leaf,
							   so->storedBuf))
		*distance = StoredDistance(so, so->storedBuf);
	else
		found = false;			/* freed by VACUUM: the row was dead */
	MemoryContextSwitchTo(old);
	return found;
}

/*
 * Offer a row to the top-N unless a previous batch already took it (its
 * key is not past the leaf's floor).
 */
static inline void
OfferItem(ScoreahScanOpaque so, ScoreahTopN *top, uint64 id, BlockNumber vblkno,
		  uint16 voff, int leaf, double approx, double distance)
{
	ScoreahCandidate c;

	c.approx = approx;
	c.id = id;
	if (so->haveFloor && scoreah_candidate_cmp(&c, &so->floor) <= 0)
		return;
	c.distance = distance;
	c.vpage = vblkno;
	c.voff = voff;
	c.leaf = (uint32) leaf;
	scoreah_topn_offer(top, &c);
}

/*
 * Offer row i of a group; where its vector lies comes from the group
 * header.  Inlined into the scoring loop: as a call (GCC left it one) its
 * entry and exit took 14 instructions an offer, about 440 offers a GloVe
 * head query.
 */
static pg_attribute_always_inline void
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
 * The LUT16 kernel's bound on a group's integer sums for a row to beat a
 * score lim (in distance units above the rows' common part, times the
 * table's scale): rounded up, so no row that could tie is skipped; no bound
 * for NaN.
 */
static inline uint32
SumLimit(double lim)
{
	if (!(lim < (double) PG_UINT32_MAX - 1))
		return PG_UINT32_MAX;
	return lim < 0 ? 0 : (uint32) ceil(lim) + 1;
}

/*
 * Score the groups of the chain's code page with the 8-bit lookup table and
 * the LUT16 kernel, checking each group as it is reached (the chain walks
 * with SCOREAH_CHAIN_CHECK_EACH).  base is the leaf's part of every row's
 * score; with row biases (scoreah.h) each row adds its own.  Compiled
 * twice (ScorePageLut16): with track, for a pass that keeps the leaves'
 * least scores left out (top->leafLeast), so that the others pay nothing
 * for it.
 */
static pg_attribute_always_inline void
ScorePageLut16Impl(ScoreahScanOpaque so, ScoreahChain chain, int leaf, double base,
				   ScoreahTopN *top, const bool track)
{
	Page		page = chain->page;
	ScoreahLayout layout = &so->cache->layout;
	Size		gsize = layout->gsize;
	int			nblocks = so->cache->meta.nblocks;
	int			ngroups = ScoreahPageGetNGroups(page, gsize);
	uint32		sumLimit = PG_UINT32_MAX;
	double		limitOf = get_float8_nan();	/* the threshold sumLimit is of */
	uint32		pageLeast = PG_UINT32_MAX;	/* least sum rejected (track) */
	const uint8 *next;

	for (int g = 0; g < ngroups; g++)
	{
		char	   *group = PageGetContents(page) + g * gsize;
		ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
		ItemPointer tids = ScoreahGroupTids(layout, group);
		uint32	   *sums = so->lut.sums;	/* beside the table: lut.c */
		const float *bias = layout->biasOffset != 0 ? ScoreahGroupBias(layout, group) : NULL;
		uint32		pass;
		uint32		rejected;	/* rows of keep the kernel left out */
		uint32		keep;

		ScoreahCheckCodeGroup(chain->index, gh, g, chain->blkno, layout);
		if (gh->nlive == 0)
			continue;
		keep = gh->nitems >= SCOREAH_GROUP_ROWS ? PG_UINT32_MAX :
			(((uint32) 1 << gh->nitems) - 1);
		if (so->nfilters > 0)
		{
			/* rows of other keys cost a check, not a score */
			keep = ScoreahKeyMatchGroup(so->filters, so->nfilters, layout, group);
			so->keyRowsSeen += gh->nitems;
			so->keyRowsPassed += pg_popcount32(keep);
			if (keep == 0)
				continue;
		}

		/*
		 * Once the top-N is full, rows whose integer sum exceeds the worst
		 * kept candidate's are out: skip them before any float work.  The
		 * bound is rounded up so no row that could tie is skipped.
		 */
		if (top->full && bias)
		{
			/* no live row of the group has a bias below their minimum */
			sumLimit = SumLimit((top->thr.approx - base - bias[SCOREAH_GROUP_ROWS]) *
								so->lut.scale);
		}
		else if (top->full && top->thr.approx != limitOf)
		{
			/* recomputed only when a prune moved the threshold */
			limitOf = top->thr.approx;
			sumLimit = SumLimit((top->thr.approx - base) * so->lut.scale);
		}

		/*
		 * The kernel gives the rows under the limit as a bit mask, without
		 * a branch per row (which rows pass is data-dependent, so such
		 * branches mispredict); then only those rows.
		 */
		so->rowsScored += gh->nitems;

		/*
		 * The next group loads while this one is scored: its header and
		 * TIDs now, its codes line by line from the kernel.  After a page's
		 * last group, the first of the page pinned ahead (its header is on
		 * its way: ScoreahPinAhead).
		 */
		if (g + 1 < ngroups)
		{
			ScoreahPrefetchBytes(page, group + gsize - (char *) page, layout->codesOffset);
			next = ScoreahGroupCodes(layout, group + gsize);
		}
		else if (BufferIsValid(chain->ahead))
			next = ScoreahGroupCodes(layout, PageGetContents(BufferGetPage(chain->ahead)));
		else
			next = NULL;
		pass = so->lut16(ScoreahGroupCodes(layout, group), so->lut.qlut, nblocks, sums,
						 sumLimit, next) & keep;

		/*
		 * A store pass keeps a bound on the scores of the rows the kernel
		 * left out (with row biases, their group's least bias added: no
		 * row's is lower), for a later pass's bound on this leaf.  A few
		 * such rows (a key column's scan) go one by one; more (every row,
		 * usually) through the kernel's partner.
		 */
		rejected = keep & ~pass;
		if (track && rejected != 0)
		{
			uint32		least = PG_UINT32_MAX;
			uint32		r = rejected;

			r &= r - 1;
			r &= r - 1;
			r &= r - 1;
			if ((r & (r - 1)) == 0)
			{
				/* up to four */
				for (r = rejected; r != 0; r &= r - 1)
					least = Min(least, sums[pg_rightmost_one_pos32(r)]);
			}
			else
				least = so->lut16MinOf(sums, rejected);
			if (!bias)
				pageLeast = Min(pageLeast, least);	/* a score at the end */
			else if (least != PG_UINT32_MAX)
				scoreah_leaf_least_note(top->leafLeast, leaf,
										base + least / so->lut.scale +
										bias[SCOREAH_GROUP_ROWS]);
		}
		if (bias)
		{
			/*
			 * The kernel's bound used the group's smallest bias, so many rows
			 * pass it that their own bias puts above the threshold: drop
			 * those here, before OfferRow finds where their vectors lie (the
			 * top-N would refuse them).
			 */
			while (pass != 0)
			{
				int			i = pg_rightmost_one_pos32(pass);
				double		approx = base + sums[i] / so->lut.scale + bias[i];

				pass &= pass - 1;
				if (unlikely(isnan(approx)))
					approx = get_float8_infinity(); /* a damaged bias: last */
				if (top->full && approx > top->thr.approx)
				{
					if (track)
						scoreah_leaf_least_note(top->leafLeast, leaf, approx);
					continue;
				}
				if (ItemPointerIsValid(&tids[i]))
					OfferRow(so, top, gh, tids, i, leaf, approx);
			}
			continue;
		}
		while (pass != 0)
		{
			int			i = pg_rightmost_one_pos32(pass);

			pass &= pass - 1;
			if (ItemPointerIsValid(&tids[i]))
				OfferRow(so, top, gh, tids, i, leaf, base + sums[i] / so->lut.scale);
		}
	}
	if (track && pageLeast != PG_UINT32_MAX)
		scoreah_leaf_least_note(top->leafLeast, leaf, base + pageLeast / so->lut.scale);
}

static void
ScorePageLut16(ScoreahScanOpaque so, ScoreahChain chain, int leaf, double base, ScoreahTopN *top)
{
	if (top->leafLeast)
		ScorePageLut16Impl(so, chain, leaf, base, top, true);
	else
		ScorePageLut16Impl(so, chain, leaf, base, top, false);
}

/*
 * The reference path of scoreah.float_lut_scoring: the float table's
 * entries, no 8-bit rounding (slow; to measure what 8 bits cost).
 */
static void
ScorePageFloatLut(ScoreahScanOpaque so, ScoreahChain chain, int leaf, double base, ScoreahTopN *top)
{
	Page		page = chain->page;
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
		uint32		keep = PG_UINT32_MAX;

		ScoreahCheckCodeGroup(chain->index, gh, g, chain->blkno, layout);
		if (gh->nlive == 0)
			continue;
		if (so->nfilters > 0)
			keep = ScoreahKeyMatchGroup(so->filters, so->nfilters, layout, group);
		so->rowsScored += gh->nitems;
		for (int i = 0; i < gh->nitems; i++)
		{
			double		sum = base - so->lut.offset;

			if (!ItemPointerIsValid(&tids[i]) || !(keep & ((uint32) 1 << i)))
				continue;
			for (int b = 0; b < nblocks; b++)
				sum += so->lut.flut[b * SCOREAH_CENTERS + scoreah_unpack_code(codes, i, b)];
			if (layout->biasOffset != 0)
				sum += ScoreahGroupBias(layout, group)[i];
			OfferRow(so, top, gh, tids, i, leaf, isnan(sum) ? get_float8_infinity() : sum);
		}
	}
}

/*
 * brute_force scoring (and untrained indexes): copy the live rows of a
 * code page with where their vectors are; their exact distances are read
 * after the page is released.  Returns how many.
 */
static int
CollectPageRows(ScoreahScanOpaque so, ScoreahChain chain, int leaf, ScoreahCandidate *rows)
{
	Page		page = chain->page;
	ScoreahLayout layout = &so->cache->layout;
	Size		gsize = layout->gsize;
	int			ngroups = ScoreahPageGetNGroups(page, gsize);
	int			n = 0;

	for (int g = 0; g < ngroups; g++)
	{
		char	   *group = PageGetContents(page) + g * gsize;
		ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
		ItemPointer tids = ScoreahGroupTids(layout, group);
		uint32		keep = PG_UINT32_MAX;

		ScoreahCheckCodeGroup(chain->index, gh, g, chain->blkno, layout);
		if (so->nfilters > 0)
		{
			keep = ScoreahKeyMatchGroup(so->filters, so->nfilters, layout, group);
			so->keyRowsSeen += gh->nitems;
			so->keyRowsPassed += pg_popcount32(keep);
		}
		for (int i = 0; i < gh->nitems; i++)
			if (ItemPointerIsValid(&tids[i]) && (keep & ((uint32) 1 << i)))
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
	bool		brute = ScoreahScanBruteForce(so->cache);
	double		base = 0;
	ScoreahCandidate *rows = NULL;
	ScoreahChainData chain;

	if (entry->codeHead == InvalidBlockNumber ||
		(so->nfilters > 0 && !ScoreahKeyLeafMayMatch(so->filters, so->nfilters, entry)))
	{
		/* no rows, or none with the keys the scan wants: not read */
		if (BufferIsValid(headbuf))
			ReleaseBuffer(headbuf);
		return;
	}
	if (brute)
		rows = palloc(sizeof(ScoreahCandidate) * SCOREAH_GROUP_ROWS *
					  so->cache->layout.groupsPerPage);
	else
		base = scoreah_lut_leaf(&so->cache->model, so->query, leaf, &so->lut);

	/* the chain's next page loads while this one is scored */
	ScoreahChainBegin(&chain, scan->indexRelation, entry->codeHead, SCOREAH_PAGE_CODES,
					  (uint32) leaf, BUFFER_LOCK_SHARE,
					  SCOREAH_CHAIN_READAHEAD | SCOREAH_CHAIN_CHECK_EACH);
	chain.hints = so->cache;
	chain.groups = &so->cache->layout;
	chain.ahead = headbuf;
	while (ScoreahChainNext(&chain))
	{
		int			nrows;

		CHECK_FOR_INTERRUPTS();
		if (!brute)
		{
			if (so->floatLut)
				ScorePageFloatLut(so, &chain, leaf, base, top);
			else
				ScorePageLut16(so, &chain, leaf, base, top);
			continue;
		}

		/* brute force: exact distances from the stored vectors */
		nrows = CollectPageRows(so, &chain, leaf, rows);
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

/* A candidate's vector location (page, offset) and its place in the batch */
typedef struct LocationKey
{
	uint64		loc;
	int			pos;
} LocationKey;

/* LocationKeys by location: sort_location_keys (PostgreSQL's sort template) */
#define ST_SORT sort_location_keys
#define ST_ELEMENT_TYPE LocationKey
#define ST_COMPARE(a, b) (((a)->loc > (b)->loc) - ((a)->loc < (b)->loc))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * The batch in page order (candidates without a readable vector, at
 * InvalidBlockNumber, last).  A batch sorted is a deep scan's, hundreds
 * of candidates or more: qsort's call through a comparator per comparison
 * cost 72k instructions for 100 candidates (5% of a SIFT query) and 17k
 * for 30.  The 16-byte keys sort inline, then the candidates follow their
 * keys' order in place, cycle by cycle (a batch may take half of work_mem:
 * no copy of it).
 */
static void
SortByLocation(ScoreahCandidate *c, int n)
{
	LocationKey *keys;

	if (n < 2)
		return;
	keys = palloc(sizeof(LocationKey) * n);
	for (int i = 0; i < n; i++)
	{
		keys[i].loc = ((uint64) c[i].vpage << 16) | c[i].voff;
		keys[i].pos = i;
	}
	sort_location_keys(keys, n);

	/* place i takes candidate keys[i].pos; a place done points at itself */
	for (int i = 0; i < n; i++)
	{
		ScoreahCandidate first;
		int			j = i;

		if (keys[i].pos == i)
			continue;
		first = c[i];
		while (keys[j].pos != i)
		{
			int			from = keys[j].pos;

			c[j] = c[from];
			keys[j].pos = j;
			j = from;
		}
		c[j] = first;
		keys[j].pos = j;
	}
	pfree(keys);
}

/* Candidates whose page and vector re-ranking prefetches ahead (unpinned) */
#define RERANK_PREFETCH		8

/*
 * Exact distances of the batch from vectors kept in the index, each on one
 * page.  A batch about as large as the vector pages of the leaves it came
 * from (a deep or exhaustive scan) is visited in page order, so that each
 * page is read and locked once however many of its vectors made the batch
 * (a leaf's vectors sit together, about 20 to a page at 100 dimensions).
 * A smaller one is visited as it is: its candidates rarely share a page
 * (50 from GloVe's 20 head-query leaves, about 500 vector pages: about two
 * pairs), and sorting them cost more than the pins it saved (about 4,000
 * cycles a query, 1.5 us of 70; sorting n keys costs about as much as n
 * pins, sharing saves about n * n / 2P of them for P pages).
 */
static void
RerankFromPages(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	Size		vbytes = so->cache->layout.vbytes;
	MemoryContext oldCtx = MemoryContextSwitchTo(so->batchCtx);
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page		page = NULL;
	int			kept = 0;
	Buffer		ahead = InvalidBuffer;
	int			aheadAt = 0;
	int			prefetched = 0;

	if (so->nbatch > 1 &&
		(int64) so->nbatch * Max(so->cache->layout.vecsPerPage, 1) >= so->rowsScored)
		SortByLocation(so->batch, so->nbatch);
	for (int i = 0; i < so->nbatch; i++)
	{
		ScoreahCandidate *c = &so->batch[i];

		/* candidates up to RERANK_PREFETCH ahead of this one on their way */
		for (; prefetched < Min(so->nbatch, i + 1 + RERANK_PREFETCH); prefetched++)
			ScoreahPrefetchHinted(so->cache, so->batch[prefetched].vpage,
								  so->batch[prefetched].voff, vbytes);
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
		c->distance = StoredDistance(so, (const char *) page + c->voff);
		so->batch[kept++] = *c;
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	if (BufferIsValid(ahead))
		ReleaseBuffer(ahead);
	so->nbatch = kept;
	MemoryContextSwitchTo(oldCtx);
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
 * Whether a store pass need not score the leaf: every row of it not in
 * the store and not served scores past the top-N's threshold (top->
 * leafLeast, kept by the pass that last scored it), so the top-N would
 * refuse each of them.
 */
static inline bool
LeafLeftOut(const ScoreahTopN *top, int leaf)
{
	return top->leafLeast && top->full && top->leafLeast[leaf] > top->thr.approx;
}

/*
 * Score the leaves at positions from..to-1 of the leaf order into top;
 * rows of the leaves before floorUpto whose key is not past floorKey were
 * batched already and are skipped.  The directory entries are read up to
 * SCOREAH_READ_LEAVES_MAX leaves at a time; while a leaf is scored, the
 * next leaf's first page is already pinned and its header, special space
 * and first group are on their way into the CPU cache.
 *
 * A store pass (top->leafLeast set: so->leafLeast) keeps, for each leaf
 * it scores, the least score of the rows it leaves out: the kernel's
 * rejected rows and what the top-N refuses or drops; AddToStore adds what
 * the store drops.  A later pass skips a leaf whose least is past its
 * top-N's threshold: the same candidates, the leaf's rows not read.  The
 * leaf's counts (rows scored, the key columns' pass rate) are added as
 * if it had been scored, so that the depth and the size estimates do not
 * change with the skipping.
 */
void
ScoreahScanLeaves(IndexScanDesc scan, ScoreahTopN *top, int from, int to,
				  int floorUpto, const ScoreahCandidate *floorKey)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	ScoreahCache cache = so->cache;
	ScoreahLeafData entries[SCOREAH_READ_LEAVES_MAX];
	Buffer		head = InvalidBuffer;
	Size		firstGroup = ScoreahGroupPrefetchBytes(&cache->layout);

	for (int i = from; i < to; i++)
	{
		int			k = (i - from) % SCOREAH_READ_LEAVES_MAX;
		int			leaf = so->leafOrder[i];
		Buffer		nexthead = InvalidBuffer;
		ScoreahLeafCountsData before;

		if (k == 0)
		{
			/* the previous chunk's last leaf pinned nothing ahead */
			Assert(!BufferIsValid(head));
			ScoreahReadLeavesRecent(index, cache, so->leafOrder + i,
									Min(to - i, SCOREAH_READ_LEAVES_MAX), entries);
			if (!LeafLeftOut(top, leaf))
				head = ScoreahPinAhead(index, cache, entries[0].codeHead,
									   SCOREAH_FIRST_GROUP_OFFSET, firstGroup);
		}
		/*
		 * A leaf skipped now is skipped when reached: the threshold only
		 * falls, and the leaf's bound does not move while others are
		 * scored (the top-N holds none of its rows).
		 */
		if (i + 1 < to && k + 1 < SCOREAH_READ_LEAVES_MAX &&
			!LeafLeftOut(top, so->leafOrder[i + 1]))
			nexthead = ScoreahPinAhead(index, cache, entries[k + 1].codeHead,
									   SCOREAH_FIRST_GROUP_OFFSET, firstGroup);
		if (LeafLeftOut(top, leaf))
		{
			ScoreahLeafCountsData *c = &so->leafCounts[leaf];

			if (BufferIsValid(head))
				ReleaseBuffer(head);
			so->rowsScored += c->rows;
			so->keyRowsSeen += c->seen;
			so->keyRowsPassed += c->passed;
			so->leavesSkipped++;
			head = nexthead;
			continue;
		}
		so->haveFloor = floorKey != NULL && i < floorUpto;
		if (so->haveFloor)
			so->floor = *floorKey;
		if (top->leafLeast)
			top->leafLeast[leaf] = get_float8_infinity();
		before.rows = so->rowsScored;
		before.seen = so->keyRowsSeen;
		before.passed = so->keyRowsPassed;
		ScanLeaf(scan, leaf, &entries[k], head, top);
		if (top->leafLeast)
		{
			ScoreahLeafCountsData *c = &so->leafCounts[leaf];

			c->rows = so->rowsScored - before.rows;
			c->seen = so->keyRowsSeen - before.seen;
			c->passed = so->keyRowsPassed - before.passed;
		}
		head = nexthead;
	}
	so->haveFloor = false;
}

/*
 * Exact distances of the batch; candidates whose row is gone (a vector
 * page VACUUM freed, a row invisible in the table) drop out.
 */
void
ScoreahScanRerank(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;

	if (so->cache->layout.vbytes > 0 && so->cache->layout.vecsPerPage > 0)
		RerankFromPages(scan);
	else
		RerankEach(scan);
}
