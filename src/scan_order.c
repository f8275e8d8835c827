/*-------------------------------------------------------------------------
 *
 * scan_order.c
 *	  Which candidates a scan re-ranks next and when a row may go out: the
 *	  depth a scan has reached and the leaves it wants, the store of
 *	  candidates not yet batched, batches, and the rule that keeps rows in
 *	  exact distance order (scoreah.scan_order = strict).
 *
 * scan.c drives a scan and returns its rows; scan_score.c reads pages and
 * scores them.  This file decides: the first batch is the best candidates
 * of the first num_leaves_to_search leaves (ScaNN's top-N, keeping two
 * batches' worth); later batches are half as large; a scan asked for more
 * scores its leaves' other rows once into the store, widens as the cube
 * root of its depth, and re-ranks batch after batch; a re-ranked row waits
 * in the pending heap until no candidate not yet re-ranked is likely to
 * be nearer, and no leaf not searched yet has its centroid nearer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "utils/float.h"
#include "utils/memutils.h"

#include "scoreah.h"

/* The rows the settings are for; deeper scans widen (WantLeaves) */
#define SCOREAH_DEPTH_ROWS		10.0
/*
 * The leaves searched grow as depth^(1/3): the nearest 1,000 rows of a
 * query lie in fewer than 10 times the leaves of its nearest 10.  On
 * GloVe-100 331k (576 leaves, defaults) it keeps recall within 0.01 of an
 * unfiltered query's for filters keeping 0.1% to 10% and for LIMIT 100
 * and 1,000, at 1.6 to 2.4 times the speed of a square root; a fourth
 * root lost 0.04 at 0.1% and at LIMIT 1,000.
 */
#define SCOREAH_DEPTH_EXPONENT	(1.0 / 3.0)

#define SCOREAH_MAX_WAIT		1000000

/*
 * The first batch's top-N keeps this many batches' worth (the rest waits
 * in the store).  Most scans need one batch (GloVe-100 331k head queries
 * at 19 leaves, 50 re-ranked: 73%), and every candidate the top-N keeps
 * costs offers and selection while the leaves are scored: two batches'
 * worth with later batches half as large took 7% fewer instructions than
 * three with full ones on head and on uniform queries; two with full
 * later batches saved 4% on head queries but cost uniform ones (29 of
 * 576 leaves, 100 re-ranked) 4%, whose third batches then scored the
 * leaves again.
 *
 * A strict scan keeps at least SCOREAH_FIRST_KEEP_MIN: its rows are sure only
 * once the candidates that might precede them are re-ranked, about as
 * many whatever the batch, and a scan that runs out of them scores its
 * leaves again.  With 30 re-ranked, 60 kept made 9% of GloVe's head
 * queries (19 leaves) score their leaves twice; at least 80 took 2.8%
 * fewer instructions there, 3.2% at 12 leaves, and with 10 re-ranked
 * (20 kept) 38% fewer; 75-90 were equal within 0.3%, 105 and 120 cost
 * more (callgrind, 1,000 queries twice).
 */
#define SCOREAH_FIRST_KEEP		2
#define SCOREAH_FIRST_KEEP_MIN	80

/*
 * Make the first upto entries of leafOrder the nearest leaves, in order.
 * Each round orders only the leaves it adds, from those not ordered yet
 * (which follow in no order).  Ordering all the rest at a scan's first
 * widening heap-sorted GloVe's other 557 leaves for the 19 or more a
 * second round adds: 197,000 instructions in each of the 4.6% of head
 * queries that widen at 19 leaves, 30 re-ranked, 1.5% of all the scans'
 * (callgrind).
 */
static void
OrderLeaves(ScoreahScanOpaque so, int upto)
{
	upto = Min(upto, so->nleaves);
	if (so->leafScores == NULL || so->nordered >= upto)
		return;
	scoreah_order_smallest(so->leafScores, so->leafOrder + so->nordered,
						   so->nleaves - so->nordered, upto - so->nordered);
	so->nordered = upto;
}

/*
 * How much wider than num_leaves_to_search a scan goes for a depth of
 * depth times the 10 rows the settings are for (also the cost estimate's).
 */
double
scoreah_depth_factor(double depth)
{
	return pow(Max(1.0, depth), SCOREAH_DEPTH_EXPONENT);
}

/*
 * Leaves a scan should have searched before it returns its next row.  The
 * settings are for the first 10 rows; a scan asked for more (a larger
 * LIMIT, or a WHERE clause that rejects rows) goes wider, as the cube
 * root of the rows returned, so that its later rows are as good as its
 * first ones: a filter keeping 1% of the rows reads about 4.6 times the
 * leaves for its 10 rows.
 */
static int
WantLeavesAt(ScoreahScanOpaque so, int64 rows)
{
	double		depth = (double) rows;
	double		w;

	/*
	 * Asked again for the same row while rows wait (ScoreahScanMayReturn,
	 * the nearest-leaf rule): behind a filter keeping 1% the pow() of
	 * each call took 2.2% of the scan, three calls in five repeats.
	 * (cbrt() instead saved nothing more and moved a leaf count in two
	 * of ten query sets.)
	 */
	if (so->wantKnown && rows == so->wantRows &&
		so->keyRowsSeen == so->wantSeen && so->keyRowsPassed == so->wantPassed)
		return so->wantLeaves;

	/*
	 * Key conditions keeping a fraction s of the rows: the nearest rows
	 * that pass lie as deep as the rows/s nearest of all.
	 */
	if (so->keyRowsPassed > 0 && so->keyRowsSeen > so->keyRowsPassed)
		depth *= (double) so->keyRowsSeen / so->keyRowsPassed;
	else if (so->keyRowsSeen > 0 && so->keyRowsPassed == 0)
		depth = (double) so->keyRowsSeen * SCOREAH_DEPTH_ROWS;
	w = so->nprobe * scoreah_depth_factor(depth / SCOREAH_DEPTH_ROWS);

	so->wantKnown = true;
	so->wantRows = rows;
	so->wantSeen = so->keyRowsSeen;
	so->wantPassed = so->keyRowsPassed;
	so->wantLeaves = (int) Min((double) so->nleaves, ceil(w));
	return so->wantLeaves;
}

static int
WantLeaves(ScoreahScanOpaque so)
{
	return Max(WantLeavesAt(so, so->emitted + 1), so->nearWant);
}

/*
 * The nearest-leaf rule of a strict scan: a row farther from the query
 * than the centroid of a leaf not searched yet waits until that leaf has
 * been searched.  A centroid is the mean of its leaf's rows, so such a
 * leaf likely holds rows nearer than that row; returning it first would
 * make those rows late (returned at the end, out of order).  Without the
 * rule, a 3-dimension table of 700 rows whose lengths span five orders of
 * magnitude (the differential test's) returned 94 rows up to distance 170
 * from leaves of long rows before it searched the leaf of short ones at
 * distance 75, and its 596 rows came last; GloVe-100's queries rarely
 * meet the rule (numpy, 576 leaves: the leaves whose centroid is nearer
 * than the 10th nearest row numbered 2 at the median and 11 at the 90th
 * percentile for head queries, 9 and 36 for uniform ones).  It is no
 * bound: in high dimensions rows lie far from their centroids, and none
 * of the bounds that would be (a leaf's radius, the Voronoi cell) rules
 * out a single leaf of GloVe-100 (benchmark log).  So it stops widening
 * once twice the leaves the depth wants (at least 32) have been searched:
 * past that the row goes, as before the rule.  On GloVe-100 331k it
 * widened 46 of 1,000 head queries at 19 leaves and 51 of 300 uniform
 * ones at 29 (recall@10 0.9523 -> 0.9546 and 0.9505 -> 0.9627); at equal
 * recall it scored 1% more rows on head queries, 8% fewer on uniform.
 */
#define SCOREAH_NEAR_LEAVES_MIN		32

/* The row's distance in the routing scores' units (route.c) */
static double
RoutingUnits(ScoreahScanOpaque so, double distance)
{
	ScoreahMetaPage meta = &so->cache->meta;

	switch (meta->metric)
	{
		case SCOREAH_METRIC_L2:
			return (distance * meta->scale) * (distance * meta->scale);
		case SCOREAH_METRIC_COSINE:
			return 2 * distance;	/* |q - x|^2 of unit vectors */
		default:
			/* -<q, x> as routing scores it: query and rows scaled */
			return distance * so->queryScale * meta->scale;
	}
}

/* The row's distance in the strict order line's units: L2's are squares */
static inline double
LineUnits(ScoreahScanOpaque so, double distance)
{
	if (so->cache->meta.metric == SCOREAH_METRIC_L2)
		return distance * distance;
	return distance;
}

/* Smallest centroid distance of the leaves not searched (routing units) */
static float
NearestUnsearched(ScoreahScanOpaque so)
{
	ScoreahModel model = &so->cache->model;
	const int  *order = so->leafOrder;
	const float *scores = so->leafScores;
	float		nearest = get_float4_infinity();

	if (so->nearAt == so->searched + 1)
		return so->nearest;

	/*
	 * The leaves not searched are the positions of leafOrder past those
	 * searched, in score order or none.  Their scores add a share of the
	 * leaf's spread to L2 and cosine: taken off, the centroid's distance.
	 * The minimum in a local, the spreads' test out of the loop: with both
	 * in the loop (so->nearest written at each leaf, so the model's fields
	 * read again) it took 16 instructions a leaf, 1.7% of a GloVe head
	 * query's (callgrind).
	 */
	if (model->leafSpread && model->metric != SCOREAH_METRIC_IP)
	{
		const float *spread = model->leafSpread;
		float		w = model->spreadWeight;

		for (int i = so->searched; i < so->nleaves; i++)
		{
			float		d = scores[order[i]] - w * spread[order[i]];

			nearest = Min(nearest, d);
		}
	}
	else
		for (int i = so->searched; i < so->nleaves; i++)
			nearest = Min(nearest, scores[order[i]]);
	so->nearest = nearest;
	so->nearAt = so->searched + 1;
	return nearest;
}

/*
 * Whether the nearest-leaf rule holds x back: then the leaves it wants
 * are set, for the next batch to widen to.
 */
static bool
NearLeafFirst(ScoreahScanOpaque so, const ScoreahCandidate *x)
{
	int			cap;

	/* reordering_num_neighbors = 0: x's distance is its code's score */
	if (so->leafScores == NULL || so->searched >= so->nleaves || so->reorder == 0 ||
		!(RoutingUnits(so, x->distance) > NearestUnsearched(so)))
		return false;
	cap = Max(2 * WantLeavesAt(so, so->emitted + 1), SCOREAH_NEAR_LEAVES_MIN);
	if (so->searched >= cap)
		return false;
	so->nearWant = Min(so->searched + 1, so->nleaves);
	so->nearHolds++;
	return true;
}

/* (approx, id) of c is past key */
static inline bool
KeyAfter(const ScoreahCandidate *c, const ScoreahCandidate *key)
{
	return scoreah_candidate_cmp(c, key) > 0;
}

/* (approx, id) of c is before key */
static inline bool
KeyBefore(const ScoreahCandidate *c, const ScoreahCandidate *key)
{
	return scoreah_candidate_cmp(c, key) < 0;
}

/*
 * How many rows the index holds, for the exact tail: the build's count,
 * unless the leaves searched so far hold more than twice their share of it
 * (then their rows times the leaves over those searched).  An index built
 * small and grown by inserts (before the REINDEX that scoreah_index_info
 * advises) took the exact tail on the build's count, and its deep scans
 * scored every row of every leaf: built on 500 rows and grown to 60,500,
 * a LIMIT 100 searched 22 of 22 leaves (121,000 rows scored; 9 leaves
 * now, TAP 024).  Twice: the nearest leaves may be the larger ones, and a
 * small index not grown keeps its exact tail.
 */
static double
RowsEstimate(ScoreahScanOpaque so)
{
	double		built = (double) so->cache->meta.rowsBuilt;
	double		seen = so->searched > 0 ?
		(double) so->rowsScored * so->nleaves / so->searched : 0;

	return seen > 2 * built ? seen : built;
}

/*
 * How many candidates the store keeps: a few batches ahead, not all of
 * work_mem at once: sorting and merging cost more per candidate than
 * scoring the leaves again once the store runs out.  At least 256 (1,024
 * before): a scan that outruns the first batches' store keeps and sorts
 * that many, and on GloVe 331k at 20 leaves, 30 re-ranked, a store of
 * 1,024 cost head queries 8% (LIMIT 10), LIMIT 100 and a filter keeping
 * a tenth of the rows 30%; LIMIT 1000 was no slower with 256.
 */
static int
StoreSize(ScoreahScanOpaque so)
{
	if (so->exactTail)
		return so->maxBatch;
	return (int) Min((int64) so->maxBatch,
					 Max(Max((int64) 256, 4 * (int64) so->batchSize), 2 * so->emitted));
}

/*
 * The store's next k candidates (all it has, if fewer) in key order, each
 * before every candidate after it: what a batch and the frontier read.
 * The first batch leaves the store unsorted, and a later batch takes only
 * a few of it (scoreah_sort_front).
 */
static void
SortFront(ScoreahScanOpaque so, int k)
{
	int			from = Max(so->storeSorted, so->storePos);

	if (from >= so->nstore || so->storeSorted - so->storePos >= k)
		return;
	so->storeSorted = from +
		scoreah_sort_front(so->store + from, so->nstore - from,
						   k - (from - so->storePos));
}

/* The store in key order, before it merges */
static void
SortStore(ScoreahScanOpaque so)
{
	SortFront(so, so->nstore - so->storePos);
}

/*
 * A candidate the store gives up without serving it: its leaf's least
 * score left out (so->leafLeast) must cover it.
 */
static inline void
LeaveOut(ScoreahScanOpaque so, const ScoreahCandidate *c)
{
	Assert(c->leaf < (uint32) so->nleaves);
	if (so->leafLeast)
		scoreah_leaf_least_note(so->leafLeast, c->leaf, c->approx);
}

/*
 * The per-leaf least scores left out, from the first store pass on (the
 * first batch's leaves stay unknown, -infinity, until a pass scores them
 * again); none for brute-force and float-table scoring, which do not keep
 * them, nor with scoreah.refill_skipping off.
 */
static double *
LeafLeast(ScoreahScanOpaque so)
{
	if (so->leafLeast == NULL && so->settings.refillSkipping &&
		!ScoreahScanBruteForce(so->cache) && !so->floatLut)
	{
		MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);

		so->leafLeast = palloc(sizeof(double) * so->nleaves);
		for (int i = 0; i < so->nleaves; i++)
			so->leafLeast[i] = -get_float8_infinity();
		/* read only for a leaf a pass has scored: it wrote them */
		so->leafCounts = palloc(sizeof(ScoreahLeafCountsData) * so->nleaves);
		MemoryContextSwitchTo(oldCtx);
	}
	return so->leafLeast;
}

/*
 * Score the leaves at positions from..to-1 (keys up to floorKey skipped in
 * those before floorUpto) and merge their candidates into what the store
 * has not served yet.  The store keeps work_mem's worth; what it leaves
 * out is past cutKey, and every candidate up to cutKey is in the store or
 * served.  Candidates at or before the last key served (rows of new leaves
 * scoring better than rows already served) are always kept, so that the
 * leaves can be scored again past that key without losing any.
 *
 * Every row of a leaf a pass scores is then in the store, served, or under
 * its leaf's least score left out (so->leafLeast): the bound that lets a
 * later refill skip the leaf.
 */
static void
AddToStore(IndexScanDesc scan, int from, int to, int floorUpto, const ScoreahCandidate *floorKey)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	MemoryContext oldCtx = MemoryContextSwitchTo(so->scanCtx);
	int			keep = StoreSize(so);
	ScoreahTopN top;
	ScoreahCandidate *merged;
	int			nrest = so->nstore - so->storePos;
	bool		seeded = so->cut && floorKey == NULL;
	int			i,
				j,
				n;

	OrderLeaves(so, to);
	for (;;)
	{
		scoreah_topn_init(&top, keep);
		/*
		 * Only a cut store is ever scored again: a pass that starts with
		 * none (a key column's scan, whose few rows a store holds whole)
		 * would note its leaves' scores for nothing (4% of a 10% key
		 * filter's instructions at LIMIT 100).
		 */
		if (floorKey != NULL || so->cut)
			top.leafLeast = LeafLeast(so);

		/*
		 * A cut store holds every candidate of the leaves searched up to
		 * its cut and none past it, so a candidate of the new leaves past
		 * the cut could not be served before those leaves are scored again
		 * (StoreExhausted): the top-N starts with the cut as its
		 * threshold, and the kernel's admission drops such rows before any
		 * float work.  A widening of a deep scan otherwise kept, sorted
		 * and merged a store's worth of them, thrown away at the cut: at
		 * LIMIT 100 on GloVe-100 (19 leaves, 200 re-ranked), 47% of the
		 * scan's instructions were its widenings.
		 */
		if (seeded)
		{
			top.full = true;
			top.thr = so->cutKey;
		}
		ScoreahScanLeaves(scan, &top, from, to, floorUpto, floorKey);
		scoreah_topn_prune(&top);
		if (!top.full || !so->haveServed || KeyAfter(&top.thr, &so->served) ||
			(seeded && !KeyBefore(&top.thr, &so->cutKey)) ||
			keep >= INT_MAX / 4)
			break;
		/* more rows than work_mem's worth before the last key served */
		for (i = 0; i < top.n; i++)
			LeaveOut(so, &top.items[i]);
		pfree(top.items);
		pfree(top.keys);
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
			for (i = k; i < n; i++)
				LeaveOut(so, &merged[i]);
			n = k;
			if (!so->cut || scoreah_candidate_cmp(&merged[k - 1], &so->cutKey) < 0)
			{
				so->cut = true;
				so->cutKey = merged[k - 1];
			}
		}
	}
	pfree(top.items);
	pfree(top.keys);
	if (so->store)
		pfree(so->store);
	so->store = merged;
	so->nstore = n;
	so->storePos = 0;
	so->storeSorted = n;
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
	/* only after the first batch: a later one sorts one past itself */
	if (so->storeSorted <= so->storePos && so->storePos < so->nstore)
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
bool
ScoreahScanNextBatch(IndexScanDesc scan)
{
	ScoreahScanOpaque so = (ScoreahScanOpaque) scan->opaque;
	bool		brute = ScoreahScanBruteForce(so->cache);
	MemoryContext oldCtx;
	int			size;
	bool		haveLine;
	double		gamma,
				delta,
				sigma,
				reach = 0;

	/*
	 * Batch size: the reorder count.  Deeper batches need not grow: the
	 * store serves them without scoring leaves again, and rows are
	 * returned as soon as no unseen row can precede them.
	 */
	if (so->batchSize == 0)
		so->batchSize = so->reorder > 0 ? so->reorder : SCOREAH_DEFAULT_BATCH;
	size = Min(so->batchSize, so->maxBatch);

	/*
	 * Later batches are half as large: a strict scan goes on only while
	 * its next candidates score too near its rows to rule them out, and
	 * those few are at the front of the store.  Of the 27% of GloVe head
	 * queries that go on at 19 leaves and 50 re-ranked, 62% stop after a
	 * second batch of 25 (82% after one of 50): the candidates not
	 * re-ranked outweigh the third batches.
	 */
	if (so->nbatches > 0)
		size = Max(size / 2, 1);

	if (so->batch)
		pfree(so->batch);
	so->batch = NULL;
	MemoryContextReset(so->batchCtx);

	if (so->nbatches == 0)
	{
		ScoreahTopN top;

		int			keep = (int) Min((int64) so->maxBatch,
								   Max((int64) size * SCOREAH_FIRST_KEEP,
									   so->strict ? SCOREAH_FIRST_KEEP_MIN : 0));

		oldCtx = MemoryContextSwitchTo(so->scanCtx);
		so->searched = Min(so->nprobe, so->nleaves);
		OrderLeaves(so, so->searched);
		scoreah_topn_init(&top, keep);
		ScoreahScanLeaves(scan, &top, 0, so->searched, 0, NULL);

		/*
		 * The best `size' are the first batch; the next best wait in the
		 * store, so that a strict scan that must look further before it
		 * can return its rows need not score the leaves again.  The store
		 * is sorted only if a second batch is wanted (most scans stop at
		 * the first); until then its frontier is its smallest key.  The
		 * top-N is not pruned to `keep' first: whatever it holds scores
		 * below its last threshold, and every candidate that does is
		 * there, which is all the store's cut needs (a prune only to
		 * drop candidates the store could serve cost 2% of a head query).
		 */
		scoreah_topn_split(&top, size);
		pfree(top.keys);

		/*
		 * The top-N's array becomes the store (its first nbatch slots are
		 * not read again) and the batch a copy of those: re-ranking sets
		 * and reorders the batch's entries.  Copying the whole top-N into a
		 * new store instead cost 2% of a head query.
		 */
		so->nbatch = Min(top.n, size);
		so->batch = palloc(sizeof(ScoreahCandidate) * Max(so->nbatch, 1));
		memcpy(so->batch, top.items, sizeof(ScoreahCandidate) * so->nbatch);
		so->haveStore = true;
		so->nstore = top.n;
		so->storePos = so->nbatch;
		so->store = top.items;
		so->storeSorted = so->storePos;
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
		 * exact from here on (ScoreahScanMayReturn holds every row back
		 * until all are batched).
		 */
		if (!so->exactTail && so->strict && so->emitted >= 4 * SCOREAH_DEPTH_ROWS &&
			RowsEstimate(so) <= so->maxBatch / 2)
			so->exactTail = true;
		if (so->exactTail)
			want = so->nleaves;
		SortFront(so, size + 1);
		if (so->searched < want)
			Widen(scan, want);
		while (StoreExhausted(so))
		{
			if (so->cut)
			{
				/* work_mem held only part: score the leaves again past it */
				int			searched = so->searched;

				so->cut = false;
				for (int i = so->storePos; i < so->nstore; i++)
					LeaveOut(so, &so->store[i]);
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
		 * batch of all of it, so that the rest of the scan is exact.  The
		 * exact tail takes a cut store whole too: the leaves are scored
		 * again past it at the next batch, when it has all been batched
		 * (an earlier refill, while the store still held candidates a
		 * widening had just added below the last key served, skipped
		 * those by that key and lost them).
		 */
		if (so->strict && (so->exactTail || (so->searched >= so->nleaves && !so->cut)))
			size = so->nstore - so->storePos;
		SortFront(so, size + 1);
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
	/*
	 * The fit sums the batch in the order re-ranking leaves it (the top-N's
	 * or page order), which follows from the index's pages alone: the same
	 * for an index built in parallel (build.c writes the same pages), so
	 * the same bits and the same rows out.
	 */
	if (!brute && so->reorder > 0)
		ScoreahScanRerank(scan);

	/*
	 * The rows of a batch after the first were candidates past the line's
	 * frontier: how far nearer than it they come tests the line's margin
	 * (ScoreahScanOrderMargin), before they join the fit.
	 */
	haveLine = !brute && so->reorder > 0 && so->nbatches > 1 &&
		scoreah_fit_distance_line(&so->fit, &gamma, &delta, &sigma) &&
		gamma > 0 && sigma > 0;
	if (haveLine)
	{
		/* what normal residuals of the later batches' rows reach */
		so->laterRows += so->nbatch;
		reach = (sqrt(2 * log((double) Max(so->laterRows, 2))) + 1) * sigma;
	}
	for (int i = 0; i < so->nbatch; i++)
	{
		ScoreahCandidate *c = &so->batch[i];
		double		t = LineUnits(so, c->distance);

		if (!brute && so->reorder > 0)
		{
			if (haveLine)
			{
				double		miss = t - (gamma * c->approx + delta);

				if (miss < -reach)
					so->fitWorstMiss = Min(so->fitWorstMiss, miss);
			}
			scoreah_fit_add(&so->fit, t, c->approx);
		}
		scoreah_heap_push(&so->pending, c);
	}
	MemoryContextSwitchTo(oldCtx);
	return true;
}

/*
 * How far past a row the unseen candidates must score (in the line's
 * units): SCOREAH_ORDER_SIGMAS standard deviations of its residuals, or
 * more once a row of a later batch came out nearer than the line put it
 * by more than normal residuals of that many rows reach (sqrt(2 ln m) + 1
 * sigmas for m rows: fitWorstMiss).  Residuals are not always normal: on
 * tight clusters a line over rows of several clusters under-predicts some
 * rows by 5 to 900 sigmas, the candidates scored past a row were ruled
 * out wrongly at 3, and their rows came late.  Such a miss is evidence
 * that 3 sigmas are too few for this query, and the margin grows to it
 * (in distance units: sigma shrinks and grows as rows are added).  A
 * 5,000-row clustered 16-dimension table gave 135 late rows in 50 full
 * scans, 4 with the margin (0 when every miss past 3 sigmas counted, but
 * then LIMIT 1,000 on GloVe-100 took a third more batches, for nothing:
 * none of its rows came late either way).  GloVe-100 cosine at 19 leaves,
 * 30 re-ranked: 1.1% more batches at LIMIT 10 (0.45% more instructions,
 * callgrind), 0.8% at 100, 3% at 1,000; 29/100 on uniform queries
 * unchanged; under inner product (19/50) 8% more batches; recall
 * unchanged everywhere.
 */
double
ScoreahScanOrderMargin(ScoreahScanOpaque so, double sigma)
{
	return Max(SCOREAH_ORDER_SIGMAS * sigma, -so->fitWorstMiss);
}

/*
 * May the nearest pending row be returned now?  Only once the scan has
 * searched the leaves its depth wants and, in strict order, when no
 * candidate of the searched leaves not yet re-ranked is likely to be
 * nearer: those all score at or past the frontier, and the line of exact
 * distances on scores through the re-ranked rows (scoreah_fit_distance_line)
 * expects the frontier's score at a distance the margin past the row's
 * (ScoreahScanOrderMargin: SCOREAH_ORDER_SIGMAS standard deviations, or
 * the worst miss a later batch showed).  Leaves not yet searched are not
 * bounded: the nearest-leaf rule (NearLeafFirst) and the depth's widening
 * search those likely to matter.  Exact scores (brute force) and rows
 * without re-ranking need only not pass the frontier.  A row waits at
 * most SCOREAH_MAX_WAIT batches: then it goes, and a nearer row found
 * later is held back to the end of the scan (scoreahgettuple's late rows)
 * rather than returned out of order.
 */
bool
ScoreahScanMayReturn(ScoreahScanOpaque so, const ScoreahCandidate *x)
{
	const ScoreahCandidate *f;
	double		gamma,
				delta,
				sigma,
				t;

	if (so->searched < WantLeaves(so))
		return false;
	if (AllBatched(so))
		return so->searched >= so->nleaves;

	/*
	 * The exact tail returns nothing more until every candidate has been
	 * re-ranked: a store cut when it began would otherwise let rows go out
	 * by the line, and a row it misjudged would miss a LIMIT (a review:
	 * LIMIT 1,000 on a clustered 5,000-row table with every leaf searched
	 * lost rows in 9 of 29 queries; pg_regress index_scan).
	 */
	if (so->exactTail)
		return false;
	if (!so->strict || so->waitBatches >= SCOREAH_MAX_WAIT)
		return true;
	if (NearLeafFirst(so, x))
		return false;

	f = Frontier(so);
	if (ScoreahScanBruteForce(so->cache) || so->reorder == 0)
		return x->distance <= f->approx;
	if (!scoreah_fit_distance_line(&so->fit, &gamma, &delta, &sigma) || !(gamma > 0))
		return false;
	t = LineUnits(so, x->distance);
	return (gamma * f->approx + delta) - t > ScoreahScanOrderMargin(so, sigma);
}

