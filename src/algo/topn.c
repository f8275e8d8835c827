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
	t->n = 0;
	t->full = false;
}

/* Partially order items[lo..hi] so that items[k] is in its sorted place */
static void
quickselect(ScoreahCandidate *items, int lo, int hi, int k)
{
	while (hi > lo)
	{
		ScoreahCandidate pivot = items[lo + (hi - lo) / 2];
		int			i = lo,
					j = hi;

		while (i <= j)
		{
			ScoreahCandidate t;

			while (scoreah_candidate_cmp(&items[i], &pivot) < 0)
				i++;
			while (scoreah_candidate_cmp(&items[j], &pivot) > 0)
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

/* Keep the best `keep'; their worst becomes the threshold */
void
scoreah_topn_prune(ScoreahTopN *t)
{
	ScoreahCandidate *worst;

	if (t->n < t->keep)
		return;
	if (t->n > t->keep)
	{
		quickselect(t->items, 0, t->n - 1, t->keep - 1);
		t->n = t->keep;
	}
	worst = &t->items[0];
	for (int i = 1; i < t->n; i++)
		if (scoreah_candidate_cmp(&t->items[i], worst) > 0)
			worst = &t->items[i];
	t->thr = *worst;
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

static int
cmp_approx(const void *a, const void *b)
{
	return scoreah_candidate_cmp((const ScoreahCandidate *) a,
								 (const ScoreahCandidate *) b);
}

void
scoreah_sort_by_distance(ScoreahCandidate *c, int n)
{
	qsort(c, n, sizeof(ScoreahCandidate), cmp_distance);
}

void
scoreah_sort_by_approx(ScoreahCandidate *c, int n)
{
	qsort(c, n, sizeof(ScoreahCandidate), cmp_approx);
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
 * one pass over n scores, O(n log k), then the heap sorted in place.  A
 * scan's first round needs only num_leaves_to_search of perhaps thousands
 * of leaves, so this beats sorting them all.
 */
void
scoreah_order_smallest(const float *scores, int *order, int n, int k)
{
	k = Min(k, n);
	if (k <= 0)
		return;

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
