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
		/* the selected place holds the worst of those kept */
		quickselect(t->items, 0, t->n - 1, t->keep - 1);
		t->n = t->keep;
		worst = &t->items[t->keep - 1];
	}
	else
	{
		worst = &t->items[0];
		for (int i = 1; i < t->n; i++)
			if (scoreah_candidate_cmp(&t->items[i], worst) > 0)
				worst = &t->items[i];
	}
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
 * The least-squares line a = alpha t + beta through the points, and the
 * standard deviation of the points about it.  False with fewer than 30
 * points (too few to trust the spread) or no spread in t.
 */
bool
scoreah_fit_line(const ScoreahFit *f, double *alpha, double *beta, double *sigma)
{
	double		n = f->n,
				vt,
				cta,
				res;

	if (n < 30)
		return false;
	vt = f->stt - f->st * f->st / n;
	if (!(vt > 0))
		return false;
	cta = f->sta - f->st * f->sa / n;
	*alpha = cta / vt;
	*beta = (f->sa - *alpha * f->st) / n;
	res = (f->saa - f->sa * f->sa / n) - *alpha * cta;
	*sigma = res > 0 ? sqrt(res / (n - 2)) : 0;
	return true;
}

/*
 * Put the k smallest of items[0..n-1] on (approx, id) first, in no
 * order, with the largest of them at items[k - 1].
 */
void
scoreah_select_smallest(ScoreahCandidate *items, int n, int k)
{
	if (k <= 0 || k >= n)
		return;
	quickselect(items, 0, n - 1, k - 1);
}
