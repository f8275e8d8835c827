/*-------------------------------------------------------------------------
 *
 * topn.c
 *	  Choosing the best of many: ScaNN's top-N buffer for a scan's
 *	  candidates, the sorts that put them in output order, and the
 *	  selection of the nearest leaves.
 *
 *-------------------------------------------------------------------------
 */
#include "scoreah_algo.h"

void
scoreah_topn_init(ScoreahTopN *t, int keep)
{
	t->keep = Max(keep, 1);
	t->cap = 2 * t->keep;
	t->items = scoreah_palloc(sizeof(ScoreahCandidate) * t->cap);
	t->keys = scoreah_palloc(sizeof(uint64) * 2 * t->cap);
	t->n = 0;
	t->full = false;
	t->lo = INFINITY;
	t->leafLeast = NULL;
}

/*
 * Selection without data-dependent branches.  Which side of a pivot a
 * candidate falls on is a coin toss, so a quickselect that branches on it
 * mispredicts about every other comparison: on the top-N of a query (300
 * candidates, pruned three or four times) that made the selection the
 * scan's costliest function in time, ahead of the LUT16 kernel.  Here the
 * k-th score is found on 64-bit keys, partitioned from one buffer into
 * the other with both ends written and the comparisons' results added
 * (no branch, and no store the next step must wait for); then one pass
 * keeps the candidates before it, ties on the score (rows of a leaf with
 * equal code sums) decided by id.
 */

/*
 * An unsigned image of a double that orders as the double does (-0 and +0
 * alike: adding +0 makes -0 +0).  Scores are never NaN: brute force
 * offers a NaN distance as infinity.
 */
static inline uint64
approx_key(double d)
{
	uint64		u;
	uint64		sign;

	d += 0.0;
	memcpy(&u, &d, sizeof(u));
	sign = (uint64) ((int64) u >> 63);
	return u ^ (sign | ((uint64) 1 << 63));
}

static int
cmp_uint64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Keys into ascending order: up to `few' by insertion, more by qsort */
static void
sort_keys(uint64 *a, int n, int few)
{
	if (n > few)
	{
		qsort(a, n, sizeof(uint64), cmp_uint64);
		return;
	}
	for (int i = 1; i < n; i++)
	{
		uint64		x = a[i];
		int			j = i;

		for (; j > 0 && a[j - 1] > x; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

static inline uint64
median3(uint64 a, uint64 b, uint64 c)
{
	uint64		lo = Min(a, b),
				hi = Max(a, b);

	return c <= lo ? lo : (c >= hi ? hi : c);
}

/*
 * The key that sorts k-th (from 0) of a[0..n-1]; *below and *equal get
 * how many keys are less than and equal to it.  a and b (room for n keys)
 * are both overwritten.  Each round moves the keys below a median of
 * three to the front of the other buffer and those above to its back (the
 * pivot is one of the keys, so every round removes at least one); an
 * input that keeps choosing bad pivots is sorted instead after 64 rounds.
 */
static uint64
kth_key(uint64 *a, uint64 *b, int n, int k, int *below, int *equal)
{
	int			base = 0;		/* keys known to lie below a[0..n-1] */

	for (int round = 0; n > 16 && round < 64; round++)
	{
		uint64		p = median3(a[0], a[n / 2], a[n - 1]);
		Size		front = 0,
					back = (Size) n;
		int			lo,
					hi;
		uint64	   *t;

		/*
		 * Between the front and the back lie the keys equal to p; a key
		 * written at the wrong end is overwritten later or lands among
		 * them, where nothing is read.
		 */
		for (Size i = 0; i < (Size) n; i++)
		{
			uint64		x = a[i];

			b[front] = x;
			b[back - 1] = x;
			front += x < p;
			back -= x > p;
		}
		lo = (int) front;
		hi = (int) back;
		if (k < lo)
			n = lo;
		else if (k >= hi)
		{
			base += hi;
			k -= hi;
			n -= hi;
			t = a;
			a = b + hi;
			b = t;
			continue;
		}
		else
		{
			*below = base + lo;
			*equal = hi - lo;
			return p;
		}
		t = a;
		a = b;
		b = t;
	}

	/* a few keys left, or a hostile input that gets qsort's bound */
	sort_keys(a, n, 16);
	{
		int			lo = k,
					hi = k + 1;

		while (lo > 0 && a[lo - 1] == a[k])
			lo--;
		while (hi < n && a[hi] == a[k])
			hi++;
		*below = base + lo;
		*equal = hi - lo;
	}
	return a[k];
}

/*
 * Where the k smallest of items[0..n-1] on (approx, id) end (0 < k < n):
 * those scoring below *v, and of those scoring *v the ones with an id up
 * to *idLimit.  keys is scratch for 2n keys.
 */
static void
kth_candidate(const ScoreahCandidate *items, int n, int k, uint64 *keys,
			  uint64 *v, uint64 *idLimit)
{
	int			below,
				equal;

	for (int i = 0; i < n; i++)
		keys[i] = approx_key(items[i].approx);
	*v = kth_key(keys, keys + n, n, k - 1, &below, &equal);
	*idLimit = PG_UINT64_MAX;
	if (k - below < equal)
	{
		/* only some of the ties fit: the smallest ids (a rarer path) */
		int			m = 0;
		int			need = k - below;

		for (int i = 0; i < n; i++)
			if (approx_key(items[i].approx) == *v)
				keys[m++] = items[i].id;
		*idLimit = kth_key(keys, keys + m, m, need - 1, &below, &equal);
	}
}

/* Is c among the kept of kth_candidate's result */
static inline int
kept_candidate(const ScoreahCandidate *c, uint64 v, uint64 idLimit)
{
	uint64		key = approx_key(c->approx);

	return (key < v) | ((key == v) & (c->id <= idLimit));
}

/*
 * Move the largest of items[0..n-1] on (approx, id) to items[n - 1].  A
 * new largest turns up a few times in a pass (about ln n), so the
 * comparisons' branches predict well.
 */
static void
worst_last(ScoreahCandidate *items, int n)
{
	int			last = 0;

	for (int i = 1; i < n; i++)
		if (scoreah_candidate_cmp(&items[i], &items[last]) > 0)
			last = i;
	if (last != n - 1)
	{
		ScoreahCandidate x = items[last];

		items[last] = items[n - 1];
		items[n - 1] = x;
	}
}

/* A candidate's score into its leaf's least unless it is kept */
static inline void
topn_left_out_unless(ScoreahTopN *t, const ScoreahCandidate *c, int kept)
{
	scoreah_leaf_least_note(t->leafLeast, c->leaf, kept ? INFINITY : c->approx);
}

/* Keep the best `keep'; their worst becomes the threshold */
void
scoreah_topn_prune(ScoreahTopN *t)
{
	if (t->n < t->keep)
		return;
	if (t->n > t->keep)
	{
		ScoreahCandidate *items = t->items;
		int			n = t->n;
		uint64		v,
					idLimit;
		int			j = 0;

		kth_candidate(items, n, t->keep, t->keys, &v, &idLimit);

		/*
		 * The kept slide to the front, each copied and the next
		 * overwriting it unless it was kept.  More than keep only if a
		 * candidate was offered twice: the copies tie and either may go.
		 * The others' scores go to their leaves' least (no branch: which
		 * go is a coin toss), in a loop of its own so that a top-N without
		 * leafLeast pays nothing.
		 */
		if (t->leafLeast)
			for (int i = 0; i < n; i++)
			{
				int			kept = kept_candidate(&items[i], v, idLimit);

				topn_left_out_unless(t, &items[i], kept);
				items[j] = items[i];
				j += kept;
			}
		else
			for (int i = 0; i < n; i++)
			{
				int			kept = kept_candidate(&items[i], v, idLimit);

				items[j] = items[i];
				j += kept;
			}
		t->n = t->keep;
	}
	worst_last(t->items, t->n);
	t->thr = t->items[t->n - 1];
	t->full = true;
}

#define ROOM_BINS		64

/*
 * Make room in a full top-N (n = cap = 2 * keep) without finding the
 * keep-th candidate: one pass counts the scores into equal-width bins
 * between the smallest offered and the threshold (the first time, before
 * there is one, the largest held), and the candidates of the bins up to
 * the one that reaches keep stay, with the worst of them as the threshold
 * (a few more than keep: the last bin's).  The kept are still every
 * candidate below the threshold, so nothing the top-N must hold is lost;
 * the threshold is a little looser than the keep-th's, which admits a few
 * more offers.
 * On GloVe head queries (19 leaves, 50 re-ranked: keep 100, three or four
 * times a query) the exact selection (keys, quickselect, ties by id) took
 * 43,000 instructions a query, this 24,000 (callgrind), with the same
 * rows returned (at 30 re-ranked one query in 1,000 differed: its next
 * batch came from the larger store, where the scan had searched more
 * leaves for it).  Scores the bins cannot split (infinite, a bin holding
 * too many) go to the exact prune.
 */
void
scoreah_topn_make_room(ScoreahTopN *t)
{
	ScoreahCandidate *items = t->items;
	int			n = t->n;
	int			counts[ROOM_BINS] = {0};
	uint8	   *bins = (uint8 *) t->keys;	/* scratch: 16 * cap bytes */
	double		lo = t->lo;
	double		hi = -INFINITY;
	double		scale;
	int			last,
				nkept = 0,
				j = 0;

	Assert(n > t->keep);

	/* every candidate held is at most the threshold, an offered one */
	if (t->full)
		hi = t->thr.approx;
	else
		for (int i = 0; i < n; i++)
			hi = items[i].approx > hi ? items[i].approx : hi;
	scale = ROOM_BINS / (hi - lo);
	if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || !isfinite(scale))
	{
		scoreah_topn_prune(t);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		/* in range by the bounds' construction; the comparisons hold anyway */
		double		x = (items[i].approx - lo) * scale;
		int			b = x > 0 ? (x < ROOM_BINS - 1 ? (int) x : ROOM_BINS - 1) : 0;

		bins[i] = (uint8) b;
		counts[b]++;
	}
	for (last = 0; last < ROOM_BINS - 1 && nkept + counts[last] < t->keep; last++)
		nkept += counts[last];
	nkept += counts[last];

	/*
	 * Under cap by a margin, or an offer would fill it again at once (and
	 * keep = 1 must keep one: its margin is 0).
	 */
	if (nkept > t->keep + t->keep / 8)
	{
		scoreah_topn_prune(t);
		return;
	}
	for (int i = 0; i < n && t->leafLeast; i++)
		topn_left_out_unless(t, &items[i], bins[i] <= last);
	for (int i = 0; i < n; i++)
	{
		int			kept = bins[i] <= last;

		items[j] = items[i];
		j += kept;
	}
	Assert(j == nkept && nkept >= t->keep && nkept < t->cap);
	t->n = nkept;
	worst_last(items, nkept);
	t->thr = items[nkept - 1];
	t->full = true;
}

static int
cmp_distance(const void *a, const void *b)
{
	const ScoreahCandidate *x = (const ScoreahCandidate *) a;
	const ScoreahCandidate *y = (const ScoreahCandidate *) b;

	/* NaN (cosine of a zero query) sorts last, as float8 ordering does */
	if (isnan(x->distance) || isnan(y->distance))
	{
		if (!isnan(x->distance))
			return -1;
		if (!isnan(y->distance))
			return 1;
	}
	else if (x->distance < y->distance)
		return -1;
	else if (x->distance > y->distance)
		return 1;
	return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

int
scoreah_distance_cmp(const ScoreahCandidate *x, const ScoreahCandidate *y)
{
	return cmp_distance(x, y);
}

void
scoreah_sort_by_distance(ScoreahCandidate *c, int n)
{
	qsort(c, n, sizeof(ScoreahCandidate), cmp_distance);
}

/*
 * By (approx, id): a quicksort with the comparison inline (median of
 * three, insertion sort below 16, the larger side iterated), several
 * times faster than qsort()'s call per comparison on the store of a deep
 * scan.
 */
#define CAND_LESS(a, b) ((a)->approx < (b)->approx || \
						 ((a)->approx == (b)->approx && (a)->id < (b)->id))

static inline void
swap_cand(ScoreahCandidate *a, ScoreahCandidate *b)
{
	ScoreahCandidate t = *a;

	*a = *b;
	*b = t;
}

void
scoreah_sort_by_approx(ScoreahCandidate *c, int n)
{
	while (n > 16)
	{
		int			mid = n / 2,
					i,
					j;
		ScoreahCandidate pivot;

		/* median of three to c[0] .. c[mid] .. c[n - 1], pivot in the middle */
		if (CAND_LESS(&c[mid], &c[0]))
			swap_cand(&c[mid], &c[0]);
		if (CAND_LESS(&c[n - 1], &c[mid]))
		{
			swap_cand(&c[n - 1], &c[mid]);
			if (CAND_LESS(&c[mid], &c[0]))
				swap_cand(&c[mid], &c[0]);
		}
		pivot = c[mid];
		i = 0;
		j = n - 1;
		while (i <= j)
		{
			while (CAND_LESS(&c[i], &pivot))
				i++;
			while (CAND_LESS(&pivot, &c[j]))
				j--;
			if (i <= j)
			{
				swap_cand(&c[i], &c[j]);
				i++;
				j--;
			}
		}
		/* recurse into the smaller side, loop on the larger */
		if (j + 1 < n - i)
		{
			scoreah_sort_by_approx(c, j + 1);
			c += i;
			n -= i;
		}
		else
		{
			scoreah_sort_by_approx(c + i, n - i);
			n = j + 1;
		}
	}
	for (int i = 1; i < n; i++)
	{
		ScoreahCandidate x = c[i];
		int			j = i;

		while (j > 0 && CAND_LESS(&x, &c[j - 1]))
		{
			c[j] = c[j - 1];
			j--;
		}
		c[j] = x;
	}
}

/*
 * The k smallest of c[0..n-1] on (approx, id) to the front, in order, the
 * rest after them in no order; returns how many the front holds in order
 * (k, or more: n when it sorted all, or the copies of a candidate offered
 * twice tying at the k-th).  A scan's store serves its candidates a batch
 * at a time, and most scans that read it stop after a batch or two: on
 * GloVe-100's head queries at 19 leaves, 30 re-ranked, it holds about 130
 * candidates of which the next batch takes 15, and sorting all of them
 * (its partitions mispredict about every other comparison) was 4% of a
 * query.  Here the k-th is found on keys without branches (kth_candidate),
 * the kept swapped to the front by a Lomuto pass that swaps every
 * candidate (a skipped one is swapped among the skipped), and only those
 * sorted.  Few candidates, or most of them wanted: all sorted.
 */
int
scoreah_sort_front(ScoreahCandidate *c, int n, int k)
{
	uint64	   *keys;
	uint64		v,
				idLimit;
	int			j = 0;

	if (n <= 32 || k >= n / 2)
	{
		scoreah_sort_by_approx(c, n);
		return n;
	}
	if (k <= 0)
		return 0;
	keys = scoreah_palloc(sizeof(uint64) * 2 * n);
	kth_candidate(c, n, k, keys, &v, &idLimit);
	scoreah_pfree(keys);
	for (int i = 0; i < n; i++)
	{
		ScoreahCandidate x = c[i];

		c[i] = c[j];
		c[j] = x;
		j += kept_candidate(&x, v, idLimit);
	}
	scoreah_sort_by_approx(c, j);
	return j;
}

/* ---- the nearest leaves ---- */

/* (score, index) order */
static inline bool
score_less(const float *scores, int a, int b)
{
	return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
}

/* Restore the max-heap property below position i of heap[0..n-1] */
static void
sift_down(const float *scores, int *heap, int n, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i,
					t;

		if (l < n && score_less(scores, heap[m], heap[l]))
			m = l;
		if (r < n && score_less(scores, heap[m], heap[r]))
			m = r;
		if (m == i)
			return;
		t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

/*
 * A max-heap of the best k seen so far, whose top is the worst of them:
 * one pass over n scores, O(n log k), then the heap sorted in place.
 */
static void
order_smallest_heap(const float *scores, int *order, int n, int k)
{
	/* heapify the first k, then let each later one replace the worst */
	for (int i = k / 2 - 1; i >= 0; i--)
		sift_down(scores, order, k, i);
	for (int j = k; j < n; j++)
		if (score_less(scores, order[j], order[0]))
		{
			int			t = order[0];

			order[0] = order[j];
			order[j] = t;
			sift_down(scores, order, k, 0);
		}

	/* heap sort: the worst goes last, k times */
	for (int m = k - 1; m > 0; m--)
	{
		int			t = order[0];

		order[0] = order[m];
		order[m] = t;
		sift_down(scores, order, m, 0);
	}
}

/*
 * A 64-bit key that orders as (score, index) does for scores that are not
 * NaN: the score's bits made unsigned-ordered above the index (-0 and +0
 * alike).
 */
static inline uint64
score_key(const float *scores, int index)
{
	float		f = scores[index] + 0.0f;
	uint32		u;

	memcpy(&u, &f, sizeof(u));
	u ^= (uint32) ((int32) u >> 31) | ((uint32) 1 << 31);
	return ((uint64) u << 32) | (uint32) index;
}

/* Few keys into ascending order: each goes to its rank, no branch */
static void
rank_sort_keys(const uint64 *in, uint64 *out, int n)
{
	for (int i = 0; i < n; i++)
	{
		int			rank = 0;

		for (int j = 0; j < n; j++)
			rank += in[j] < in[i];
		out[rank] = in[i];
	}
}

#define SMALLEST_BINS	64
#define SMALLEST_MIN_K	12
#define SMALLEST_MAX_K	128
#define SAMPLE_SCORES	64
#define SAMPLE_MAX_RANK	32

/*
 * The few smallest of many by a threshold from a sample: the r-th smallest
 * of 64 scores spread over order[] lies, in expectation, near rank
 * 2.5 k (r = 2.5 k * 64 / n, rounded up); one pass keeps the positions of
 * the scores up to it (without a branch), and if there are at least k and
 * not too many they move to the front (a swap each: the others keep no
 * order) and are sorted by (score, index).  About 2% of GloVe's head
 * queries (576 leaves, 19 wanted) find fewer than k under the threshold;
 * those, and ties past the bound, return false for the caller's other
 * ways.  Three passes over all n made the binned selection 36,000
 * instructions a query on GloVe (19 leaves wanted); this one pass with
 * the sample and the sort about 11,000 (callgrind).
 */
static bool
order_smallest_sampled(const float *scores, int *order, int n, int k)
{
	float		best[SAMPLE_MAX_RANK];
	int			r = (int) (((int64) 5 * k * SAMPLE_SCORES + 2 * (int64) n - 1) / (2 * (int64) n));
	int		   *cand;
	uint64	   *keys;
	float		t;
	int			ncand = 0;

	if (n < 4 * SAMPLE_SCORES || r < 1 || r > SAMPLE_MAX_RANK)
		return false;
	for (int j = 0; j < r; j++)
		best[j] = INFINITY;
	for (int s = 0; s < SAMPLE_SCORES; s++)
	{
		float		v = scores[order[(int) ((int64) s * n / SAMPLE_SCORES)]];

		/* the r smallest so far, in order (NaN never enters) */
		if (v < best[r - 1])
		{
			int			p = r - 1;

			for (; p > 0 && best[p - 1] > v; p--)
				best[p] = best[p - 1];
			best[p] = v;
		}
	}
	t = best[r - 1];
	if (!isfinite(t))
		return false;

	/* a NaN is never under t: it sorts after every number, as in float8 */
	cand = scoreah_palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		cand[ncand] = i;
		ncand += scores[order[i]] <= t;
	}
	if (ncand < k || ncand > 4 * k + 16)
	{
		scoreah_pfree(cand);
		return false;
	}

	/*
	 * The candidates to the front: each swaps with the entry at the next
	 * front position, which is never a candidate not yet moved (those lie
	 * at or after their own position, past the front).
	 */
	keys = scoreah_palloc(sizeof(uint64) * ncand);
	for (int j = 0; j < ncand; j++)
	{
		int			x = order[cand[j]];

		order[cand[j]] = order[j];
		order[j] = x;
		keys[j] = score_key(scores, x);
	}

	/* GloVe's head queries: about 50 */
	sort_keys(keys, ncand, 64);
	for (int j = 0; j < ncand; j++)
		order[j] = (int) (uint32) keys[j];
	scoreah_pfree(keys);
	scoreah_pfree(cand);
	return true;
}

/*
 * Make order[0..k-1] the k entries of order[0..n-1] (indexes into scores)
 * with the smallest (score, index), in that order; the others follow in
 * no order.  A scan's first round needs num_leaves_to_search of perhaps
 * thousands of leaves.  A heap of the best k branched on every
 * replacement and sift (GloVe's 576 leaves, 20 wanted: 4 us, 5% of a head
 * query).  A threshold from a sample serves most first rounds
 * (order_smallest_sampled, above).  Otherwise one pass counts the scores
 * into equal-width bins between the smallest and the largest, the bins up
 * to the one that reaches k give a few more than k candidates, and those
 * go to their ranks by (score, index) without a branch (2.1 us; 3.6
 * against 12.1 for 64).  Below 12 wanted the heap is faster (0.6 us for
 * 1, 2.4 for 12); a full sort, and scores the bins cannot split, take it
 * too.
 */
void
scoreah_order_smallest(const float *scores, int *order, int n, int k)
{
	int			counts[SMALLEST_BINS] = {0};
	float		lo = INFINITY,
				hi = -INFINITY;
	float		scale;
	int			last,
				ncand,
				front = 0,
				back = n;
	uint64	   *keys;
	int		   *rest;
	uint8	   *bins;
	bool		nan = false;

	k = Min(k, n);
	if (k <= 0)
		return;
	if (k >= SMALLEST_MIN_K && order_smallest_sampled(scores, order, n, k))
		return;
	if (k < SMALLEST_MIN_K || k > SMALLEST_MAX_K || k > n / 4)
	{
		/* few: the heap's replacements are few; many: a full sort */
		order_smallest_heap(scores, order, n, k);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		float		f = scores[order[i]];

		lo = f < lo ? f : lo;
		hi = f > hi ? f : hi;
		nan |= isnan(f);
	}

	/* scores the bins cannot split (NaN, infinite, all equal) */
	if (nan || !isfinite(lo) || !isfinite(hi) || !(hi > lo) ||
		!isfinite(SMALLEST_BINS / (hi - lo)))
	{
		order_smallest_heap(scores, order, n, k);
		return;
	}
	scale = SMALLEST_BINS / (hi - lo);
	bins = scoreah_palloc(n);
	for (int i = 0; i < n; i++)
	{
		int			b = (int) ((scores[order[i]] - lo) * scale);

		bins[i] = (uint8) Min(Max(b, 0), SMALLEST_BINS - 1);
		counts[bins[i]]++;
	}
	ncand = 0;
	for (last = 0; last < SMALLEST_BINS - 1 && ncand + counts[last] < k; last++)
		ncand += counts[last];
	ncand += counts[last];
	if (ncand > 2 * k + 16)
	{
		/* bunched near the smallest: ranking them (n^2) would cost more */
		scoreah_pfree(bins);
		order_smallest_heap(scores, order, n, k);
		return;
	}

	/*
	 * The candidates' keys to the front (one slot past them for the last
	 * entry's write), the other entries to the back.
	 */
	keys = scoreah_palloc(sizeof(uint64) * (2 * ncand + 1));
	rest = scoreah_palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		int			in = bins[i] <= last;

		keys[front] = score_key(scores, order[i]);
		rest[back - 1] = order[i];
		front += in;
		back -= 1 - in;
	}
	Assert(front == ncand && back == ncand);
	rank_sort_keys(keys, keys + ncand + 1, ncand);
	for (int i = 0; i < ncand; i++)
		order[i] = (int) (uint32) keys[ncand + 1 + i];
	memcpy(order + ncand, rest + ncand, sizeof(int) * (n - ncand));
	scoreah_pfree(keys);
	scoreah_pfree(rest);
	scoreah_pfree(bins);
}

/* ---- rows re-ranked but not returned yet: a min-heap on exact distance ---- */

void
scoreah_heap_init(ScoreahHeap *h)
{
	h->items = NULL;
	h->n = 0;
	h->cap = 0;
}

void
scoreah_heap_push(ScoreahHeap *h, const ScoreahCandidate *c)
{
	int			i;

	if (h->n == h->cap)
	{
		int			cap = Max(64, h->cap * 2);
		ScoreahCandidate *items = scoreah_palloc(sizeof(ScoreahCandidate) * cap);

		if (h->n > 0)
			memcpy(items, h->items, sizeof(ScoreahCandidate) * h->n);
		if (h->items)
			scoreah_pfree(h->items);
		h->items = items;
		h->cap = cap;
	}
	i = h->n++;
	h->items[i] = *c;
	while (i > 0 && scoreah_distance_cmp(&h->items[i], &h->items[(i - 1) / 2]) < 0)
	{
		ScoreahCandidate t = h->items[i];

		h->items[i] = h->items[(i - 1) / 2];
		h->items[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

void
scoreah_heap_pop(ScoreahHeap *h, ScoreahCandidate *out)
{
	int			i = 0;

	*out = h->items[0];
	h->items[0] = h->items[--h->n];
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;
		ScoreahCandidate t;

		if (l < h->n && scoreah_distance_cmp(&h->items[l], &h->items[m]) < 0)
			m = l;
		if (r < h->n && scoreah_distance_cmp(&h->items[r], &h->items[m]) < 0)
			m = r;
		if (m == i)
			break;
		t = h->items[i];
		h->items[i] = h->items[m];
		h->items[m] = t;
		i = m;
	}
}

/*
 * Positions in h->items of its k nearest, nearest first (fewer when it
 * holds fewer); returns how many.  A walk down from the root: the next
 * nearest is always the nearest of the children of those taken, kept in
 * a small heap of positions (at most k + 1 of them), so it costs k log k
 * comparisons however large h is.  frontier is scratch for k + 1.
 */
int
scoreah_heap_smallest(const ScoreahHeap *h, int k, int *pos, int *frontier)
{
	int			nf = 0;
	int			taken = 0;

#define FRONT_LESS(a, b) \
	(scoreah_distance_cmp(&h->items[frontier[a]], &h->items[frontier[b]]) < 0)
#define FRONT_SWAP(a, b) \
	do { int t_ = frontier[a]; frontier[a] = frontier[b]; frontier[b] = t_; } while (0)

	if (h->n == 0 || k <= 0)
		return 0;
	frontier[nf++] = 0;
	while (taken < k && nf > 0)
	{
		int			p = frontier[0];
		int			i = 0;

		pos[taken++] = p;

		/* the nearest leaves the frontier: its last entry sifts down */
		frontier[0] = frontier[--nf];
		for (;;)
		{
			int			l = 2 * i + 1,
						m = i;

			if (l < nf && FRONT_LESS(l, m))
				m = l;
			if (l + 1 < nf && FRONT_LESS(l + 1, m))
				m = l + 1;
			if (m == i)
				break;
			FRONT_SWAP(i, m);
			i = m;
		}

		/* and its children come in, each sifting up */
		for (int child = 2 * p + 1; child <= 2 * p + 2 && child < h->n; child++)
		{
			frontier[nf] = child;
			for (int j = nf++; j > 0 && FRONT_LESS(j, (j - 1) / 2); j = (j - 1) / 2)
				FRONT_SWAP(j, (j - 1) / 2);
		}
	}
#undef FRONT_LESS
#undef FRONT_SWAP
	return taken;
}

/* ---- how approximate scores follow exact distances ---- */

void
scoreah_fit_add(ScoreahFit *f, double t, double a)
{
	if (!isfinite(t) || !isfinite(a))
		return;
	f->n += 1;
	f->st += t;
	f->sa += a;
	f->stt += t * t;
	f->sta += t * a;
	f->saa += a * a;
}

/*
 * The least-squares line t = gamma a + delta of exact distances t on
 * approximate scores a, and the standard deviation of the points about it.
 * This way round because the points are chosen by a (a scan re-ranks the
 * candidates of lowest score): selecting on the regressor leaves the line
 * of t on a unbiased, while the line of a on t through such a sample is
 * flattened and its spread shrunk to the narrow band of scores chosen, so
 * that a candidate just past the band looked far from every row (a review
 * found rows at distance 0 left behind 200 candidates re-ranked with every
 * leaf searched).  False with fewer than 30 points (too few to trust the
 * spread) or no spread in a.
 */
bool
scoreah_fit_distance_line(const ScoreahFit *f, double *gamma, double *delta, double *sigma)
{
	double		n = f->n,
				va,
				cta,
				res;

	if (n < 30)
		return false;
	va = f->saa - f->sa * f->sa / n;
	if (!(va > 0))
		return false;
	cta = f->sta - f->st * f->sa / n;
	*gamma = cta / va;
	*delta = (f->st - *gamma * f->sa) / n;
	res = (f->stt - f->st * f->st / n) - *gamma * cta;
	*sigma = res > 0 ? sqrt(res / (n - 2)) : 0;
	return true;
}

/*
 * Put the k smallest of the top-N's candidates on (approx, id) first, in
 * no order, with the largest of them at items[k - 1]; the others follow.
 * Once per scan, so the kept move forward by swaps, which keep the rest.
 */
void
scoreah_topn_split(ScoreahTopN *t, int k)
{
	uint64		v,
				idLimit;
	int			j = 0;

	if (k <= 0 || k >= t->n)
		return;
	kth_candidate(t->items, t->n, k, t->keys, &v, &idLimit);
	for (int i = 0; i < t->n; i++)
	{
		ScoreahCandidate x = t->items[i];
		int			kept = kept_candidate(&x, v, idLimit);

		t->items[i] = t->items[j];
		t->items[j] = x;
		j += kept;
	}
	worst_last(t->items, k);
}
