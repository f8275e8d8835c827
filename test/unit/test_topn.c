/*
 * test_topn.c
 *	  The top-N buffer against a full sort, the candidate sorts, and the
 *	  selection of the nearest leaves.
 */
#include "unit.h"

static int
cmp_cand(const void *a, const void *b)
{
	return scoreah_candidate_cmp((const ScoreahCandidate *) a, (const ScoreahCandidate *) b);
}

static void
test_topn_against_sort(void)
{
	ScoreahRandom r;
	int			sizes[] = {1, 2, 5, 37, 100, 1000};

	scoreah_random_init(&r, 12);
	for (int s = 0; s < (int) lengthof(sizes); s++)
		for (int trial = 0; trial < 20; trial++)
		{
			int			keep = sizes[s];
			int			n = (int) scoreah_random_below(&r, 5000);
			ScoreahCandidate *all = malloc(sizeof(ScoreahCandidate) * (n + 1));
			ScoreahTopN top;
			int			want;

			scoreah_topn_init(&top, keep);
			for (int i = 0; i < n; i++)
			{
				ScoreahCandidate c;

				memset(&c, 0, sizeof(c));
				/* few distinct keys: ties decided by id */
				c.approx = (double) scoreah_random_below(&r, trial % 2 ? 20 : 100000);
				c.id = scoreah_random_next(&r);
				c.leaf = (uint32) i;
				all[i] = c;
				scoreah_topn_offer(&top, &c);
			}
			scoreah_topn_prune(&top);
			qsort(all, n, sizeof(ScoreahCandidate), cmp_cand);
			want = Min(keep, n);
			CHECK(top.n == want, "keep %d of %d: %d kept", keep, n, top.n);
			scoreah_sort_by_approx(top.items, top.n);
			for (int i = 0; i < Min(top.n, want); i++)
				CHECK(top.items[i].id == all[i].id && top.items[i].leaf == all[i].leaf,
					  "keep %d of %d: item %d differs from the sort", keep, n, i);
			if (n >= keep)
				CHECK(top.full && top.thr.id == all[keep - 1].id, "threshold is not the worst kept");
			free(all);
			free(top.items);
			free(top.keys);
		}
}

/*
 * Between offers the top-N holds every candidate offered that scores below
 * its threshold, nothing above it, at least keep and fewer than cap:
 * whatever the room-making kept (binned, or the exact prune on ties and
 * infinities), checked after every offer.
 */
static void
test_topn_room(void)
{
	ScoreahRandom r;
	int			keeps[] = {1, 2, 7, 8, 9, 60, 301};

	scoreah_random_init(&r, 21);
	for (int s = 0; s < (int) lengthof(keeps); s++)
		for (int shape = 0; shape < 4; shape++)
		{
			int			keep = keeps[s];
			int			n = 40 * keep + 50;
			ScoreahCandidate *all = malloc(sizeof(ScoreahCandidate) * n);
			ScoreahTopN top;
			int			rooms = 0;

			scoreah_topn_init(&top, keep);
			for (int i = 0; i < n; i++)
			{
				ScoreahCandidate c;
				bool		wasFull = top.full;
				ScoreahCandidate oldThr = top.thr;

				memset(&c, 0, sizeof(c));
				switch (shape)
				{
					case 0:		/* spread: the bins decide */
						c.approx = scoreah_random_below(&r, 1000000) / 1000.0;
						break;
					case 1:		/* falling: every offer is admitted */
						c.approx = 1e6 - i;
						break;
					case 2:		/* few distinct: ties fill a bin */
						c.approx = (double) scoreah_random_below(&r, 3);
						break;
					default:	/* an infinity among them */
						c.approx = i % 50 == 7 ? -INFINITY : scoreah_random_below(&r, 5000) - 2500.0;
						break;
				}
				c.id = scoreah_random_next(&r);
				c.leaf = (uint32) i;
				all[i] = c;
				scoreah_topn_offer(&top, &c);
				rooms += top.full && (!wasFull || scoreah_candidate_cmp(&oldThr, &top.thr) != 0);
				if (!top.full)
					continue;
				CHECK(top.n >= (i + 1 < keep ? i + 1 : keep) && top.n < top.cap,
					  "keep %d shape %d: %d held after offer %d", keep, shape, top.n, i);
				for (int j = 0; j < top.n; j++)
					CHECK(scoreah_candidate_cmp(&top.items[j], &top.thr) <= 0,
						  "keep %d shape %d: a held candidate above the threshold", keep, shape);
				if (i % 97 == 0 || i == n - 1)
					for (int a = 0; a <= i; a++)
					{
						bool		held = false;

						if (scoreah_candidate_cmp(&all[a], &top.thr) > 0)
							continue;
						for (int j = 0; j < top.n && !held; j++)
							held = top.items[j].leaf == all[a].leaf;
						CHECK(held, "keep %d shape %d: offer %d below the threshold not held",
							  keep, shape, a);
					}
			}
			CHECK(rooms > 0, "keep %d shape %d: never made room", keep, shape);
			free(all);
			free(top.items);
			free(top.keys);
		}
}

/*
 * With leafLeast, a top-N notes for each leaf the least score of its
 * candidates it refused or dropped: after any run of offers and a prune,
 * exactly the least of the leaf's candidates not held (infinity for a
 * leaf with none left out), whatever made room (binned or exact prunes;
 * spread, tied and infinite scores).  This is what lets a scan skip a
 * leaf whose rows all score past a later threshold.
 */
static void
test_topn_leaf_least(void)
{
	ScoreahRandom r;
	int			keeps[] = {1, 3, 16, 60, 257};

	scoreah_random_init(&r, 33);
	for (int s = 0; s < (int) lengthof(keeps); s++)
		for (int shape = 0; shape < 3; shape++)
		{
			int			keep = keeps[s];
			int			nleaves = 1 + (int) scoreah_random_below(&r, 40);
			int			n = (int) scoreah_random_below(&r, 30 * keep + 100);
			ScoreahCandidate *all = malloc(sizeof(ScoreahCandidate) * (n + 1));
			double	   *least = malloc(sizeof(double) * nleaves);
			double	   *want = malloc(sizeof(double) * nleaves);
			ScoreahTopN top;

			for (int l = 0; l < nleaves; l++)
				least[l] = want[l] = INFINITY;
			scoreah_topn_init(&top, keep);
			top.leafLeast = least;
			for (int i = 0; i < n; i++)
			{
				ScoreahCandidate c;

				memset(&c, 0, sizeof(c));
				if (shape == 0)
					c.approx = scoreah_random_below(&r, 1000000) / 1000.0;
				else if (shape == 1)
					c.approx = (double) scoreah_random_below(&r, 4);
				else
					c.approx = i % 31 == 5 ? INFINITY : scoreah_random_below(&r, 500) - 250.0;
				c.id = (uint64) i;	/* distinct: a candidate is found by id */
				c.leaf = (uint32) scoreah_random_below(&r, nleaves);
				all[i] = c;
				scoreah_topn_offer(&top, &c);
			}
			scoreah_topn_prune(&top);
			for (int i = 0; i < n; i++)
			{
				bool		held = false;

				for (int j = 0; j < top.n && !held; j++)
					held = top.items[j].id == all[i].id;
				if (!held)
					want[all[i].leaf] = Min(want[all[i].leaf], all[i].approx);
			}
			for (int l = 0; l < nleaves; l++)
				CHECK(least[l] == want[l],
					  "keep %d shape %d, %d offers: leaf %d least left out %g, want %g",
					  keep, shape, n, l, least[l], want[l]);
			free(all);
			free(least);
			free(want);
			free(top.items);
			free(top.keys);
		}
}

/*
 * The split against a full sort on inputs that trouble a selection: keys
 * all equal, already in order, in reverse, few distinct (ties by id),
 * negative, infinite, zeros of both signs.
 */
static void
test_topn_split(void)
{
	ScoreahRandom r;
	int			sizes[] = {2, 3, 17, 18, 100, 300, 2000};

	scoreah_random_init(&r, 7);
	for (int s = 0; s < (int) lengthof(sizes); s++)
		for (int shape = 0; shape < 7; shape++)
			for (int trial = 0; trial < 6; trial++)
			{
				int			n = sizes[s];
				int			k = 1 + (int) scoreah_random_below(&r, (uint32) (n - 1));
				ScoreahCandidate *all = malloc(sizeof(ScoreahCandidate) * n);
				ScoreahTopN top;

				scoreah_topn_init(&top, n);
				for (int i = 0; i < n; i++)
				{
					ScoreahCandidate c;
					double		x;

					memset(&c, 0, sizeof(c));
					switch (shape)
					{
						case 0:
							x = 1.5;
							break;
						case 1:
							x = i;
							break;
						case 2:
							x = n - i;
							break;
						case 3:
							x = (double) scoreah_random_below(&r, 5);
							break;
						case 4:
							x = -1.0 - (double) scoreah_random_below(&r, 1000) / 7.0;
							break;
						case 5:
							x = (i % 3 == 0) ? INFINITY : (i % 3 == 1 ? -INFINITY : 0.0);
							break;
						default:
							x = (i % 2) ? -0.0 : (double) scoreah_random_below(&r, 3) - 1.0;
							break;
					}
					c.approx = x;
					c.id = scoreah_random_next(&r);
					c.leaf = (uint32) i;
					all[i] = c;
					top.items[top.n++] = c;
				}
				scoreah_topn_split(&top, k);
				for (int i = 0; i < k - 1; i++)
					CHECK(scoreah_candidate_cmp(&top.items[i], &top.items[k - 1]) < 0,
						  "shape %d, %d of %d: item %d not before the k-th", shape, k, n, i);
				qsort(all, n, sizeof(ScoreahCandidate), cmp_cand);
				CHECK(top.items[k - 1].id == all[k - 1].id,
					  "shape %d, %d of %d: the k-th is not the sort's", shape, k, n);
				for (int i = k; i < n; i++)
					CHECK(scoreah_candidate_cmp(&top.items[i], &top.items[k - 1]) > 0,
						  "shape %d, %d of %d: item %d not after the k-th", shape, k, n, i);
				free(all);
				free(top.items);
				free(top.keys);
			}
}

static void
test_sort_by_distance(void)
{
	ScoreahCandidate c[6];
	double		d[6] = {2, NAN, -1, 2, NAN, 0};
	uint64		want[6] = {2, 5, 0, 3, 1, 4};

	memset(c, 0, sizeof(c));
	for (int i = 0; i < 6; i++)
	{
		c[i].distance = d[i];
		c[i].id = (uint64) i;
	}
	scoreah_sort_by_distance(c, 6);
	for (int i = 0; i < 6; i++)
		CHECK(c[i].id == want[i], "position %d holds %llu, expected %llu", i,
			  (unsigned long long) c[i].id, (unsigned long long) want[i]);
}

/*
 * The k smallest first, in (score, index) order, the rest a permutation of
 * the others: against a selection sort, with ties, negatives, signed zeros,
 * k of 0, n and more than n, and few of many (the bins' path).
 */
static void
test_order_smallest(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 13);
	for (int trial = 0; trial < 600; trial++)
	{
		/* from trial 300 up to 3,000 scores, as many leaves have */
		int			n = 1 + (int) scoreah_random_below(&r, trial < 300 ? 500 : 3000);
		/* every third trial few of many, as a scan's first round asks */
		int			k = (int) scoreah_random_below(&r, trial % 3 == 2 ? Min(n / 4, 128) + 1 : n + 3);
		float	   *scores = malloc(sizeof(float) * n);
		int		   *order = malloc(sizeof(int) * n);
		int		   *ref = malloc(sizeof(int) * n);
		bool	   *seen = calloc(n, 1);

		for (int i = 0; i < n; i++)
		{
			scores[i] = (float) scoreah_random_below(&r, trial % 3 ? 1000 : 5);
			if (trial % 6 == 5)
				scores[i] = (float) (scoreah_random_double(&r) * 3.0 - 1.0);	/* few ties */
			if (trial % 4 == 3)
			{
				/* negative scores, and zeros of both signs (which tie) */
				scores[i] -= trial % 3 ? 500.0f : 2.0f;
				if (scores[i] == 0 && (i & 1))
					scores[i] = -0.0f;
			}
			order[i] = i;
		}
		/* from trial 300 every other order[] shuffled, as a later round has */
		if (trial >= 300 && trial % 2)
			for (int i = n - 1; i > 0; i--)
			{
				int			j = (int) scoreah_random_below(&r, (uint32) i + 1);
				int			t = order[i];

				order[i] = order[j];
				order[j] = t;
			}
		/* reference: selection sort on (score, index), of the first 300 */
		for (int i = 0; i < n; i++)
			ref[i] = i;
		for (int i = 0; i < Min(n, 300); i++)
			for (int j = i + 1; j < n; j++)
				if (scores[ref[j]] < scores[ref[i]] ||
					(scores[ref[j]] == scores[ref[i]] && ref[j] < ref[i]))
				{
					int			t = ref[i];

					ref[i] = ref[j];
					ref[j] = t;
				}
		if (k > 300)
			k = 300;
		scoreah_order_smallest(scores, order, n, k);
		for (int i = 0; i < Min(k, n); i++)
			CHECK(order[i] == ref[i], "n %d k %d: position %d holds %d, expected %d",
				  n, k, i, order[i], ref[i]);
		for (int i = 0; i < n; i++)
		{
			CHECK(order[i] >= 0 && order[i] < n && !seen[order[i]], "not a permutation");
			if (order[i] >= 0 && order[i] < n)
				seen[order[i]] = true;
		}
		free(scores);
		free(order);
		free(ref);
		free(seen);
	}
}

static int
cmp_dist(const void *a, const void *b)
{
	return scoreah_distance_cmp((const ScoreahCandidate *) a, (const ScoreahCandidate *) b);
}

/*
 * The inline sort against qsort, on many ties and on sorted input; from
 * trial 40 batches of up to 70 (a re-ranking batch's size) with negative
 * scores, signed zeros and copies of one candidate.
 */
static void
test_sort_by_approx(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 5);
	for (int trial = 0; trial < 140; trial++)
	{
		int			n = (int) scoreah_random_below(&r, trial < 40 ? 3000 : 71);
		ScoreahCandidate *a = malloc(sizeof(ScoreahCandidate) * (n + 1));
		ScoreahCandidate *b = malloc(sizeof(ScoreahCandidate) * (n + 1));

		for (int i = 0; i < n; i++)
		{
			memset(&a[i], 0, sizeof(ScoreahCandidate));
			a[i].approx = trial % 3 == 0 ? (double) i :
				(double) scoreah_random_below(&r, trial % 3 == 1 ? 7 : 1000000);
			a[i].id = scoreah_random_next(&r);
			if (trial >= 40)
			{
				a[i].approx -= trial % 3 == 1 ? 3 : 500000;
				if (a[i].approx == 0 && (i & 1))
					a[i].approx = -0.0;
				if (i > 0 && scoreah_random_below(&r, 8) == 0)
					a[i] = a[i - 1];	/* a candidate offered twice */
			}
		}
		memcpy(b, a, sizeof(ScoreahCandidate) * n);
		scoreah_sort_by_approx(a, n);
		qsort(b, n, sizeof(ScoreahCandidate), cmp_cand);
		for (int i = 0; i < n; i++)
			CHECK(a[i].id == b[i].id, "trial %d: position %d of %d differs", trial, i, n);
		free(a);
		free(b);
	}
}

/*
 * scoreah_sort_front: the first m (at least k, or all) agree with a full
 * sort, the rest are the others, none of them before the m-th; through
 * ties, candidates offered twice, -0 and every k from 0 to n.
 */
static void
test_sort_front(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 6);
	for (int trial = 0; trial < 400; trial++)
	{
		int			n = (int) scoreah_random_below(&r, trial < 100 ? 600 : 90);
		int			k = (int) scoreah_random_below(&r, n + 2);
		ScoreahCandidate *a = malloc(sizeof(ScoreahCandidate) * (n + 1));
		ScoreahCandidate *b = malloc(sizeof(ScoreahCandidate) * (n + 1));
		int			m;

		for (int i = 0; i < n; i++)
		{
			memset(&a[i], 0, sizeof(ScoreahCandidate));
			a[i].approx = (double) scoreah_random_below(&r, trial % 3 == 1 ? 5 : 100000) -
				(trial % 3 == 1 ? 2 : 0);
			if (a[i].approx == 0 && (i & 1))
				a[i].approx = -0.0;
			a[i].id = scoreah_random_below(&r, trial % 4 == 0 ? 50 : 1000000000);
			if (i > 0 && scoreah_random_below(&r, 6) == 0)
				a[i] = a[i - 1];	/* a candidate offered twice */
		}
		memcpy(b, a, sizeof(ScoreahCandidate) * n);
		qsort(b, n, sizeof(ScoreahCandidate), cmp_cand);
		m = scoreah_sort_front(a, n, k);
		CHECK(m >= Min(Max(k, 0), n) && m <= n, "trial %d: %d in order for k = %d of %d", trial, m, k, n);
		for (int i = 0; i < m; i++)
			CHECK(a[i].approx == b[i].approx && a[i].id == b[i].id,
				  "trial %d (k %d of %d): position %d differs from the sort", trial, k, n, i);
		for (int i = m; i < n; i++)
			CHECK(m == 0 || cmp_cand(&a[i], &a[m - 1]) >= 0,
				  "trial %d (k %d of %d): %d after the front sorts before its last", trial, k, n, i);
		qsort(a + m, n - m, sizeof(ScoreahCandidate), cmp_cand);
		for (int i = m; i < n; i++)
			CHECK(a[i].approx == b[i].approx && a[i].id == b[i].id,
				  "trial %d (k %d of %d): the rest lost or changed position %d", trial, k, n, i);
		free(a);
		free(b);
	}
}

/* The pending heap pops in (distance, id) order, NaN last */
static void
test_heap(void)
{
	ScoreahRandom r;
	ScoreahHeap h;
	int			n = 5000;
	ScoreahCandidate *all = malloc(sizeof(ScoreahCandidate) * n);
	int			popped = 0;

	scoreah_random_init(&r, 8);
	scoreah_heap_init(&h);
	for (int i = 0; i < n; i++)
	{
		memset(&all[i], 0, sizeof(ScoreahCandidate));
		all[i].distance = i % 97 == 0 ? NAN : (double) scoreah_random_below(&r, 500);
		all[i].id = (uint64) i;
		scoreah_heap_push(&h, &all[i]);
		/* pops interleaved with pushes, as a scan does */
		if (i % 3 == 0)
		{
			ScoreahCandidate c;

			scoreah_heap_pop(&h, &c);
			all[popped++] = c;
		}
	}
	CHECK(h.n == n - popped, "heap holds %d, expected %d", h.n, n - popped);
	{
		ScoreahCandidate prev,
					c;

		scoreah_heap_pop(&h, &prev);
		while (h.n > 0)
		{
			scoreah_heap_pop(&h, &c);
			CHECK(cmp_dist(&prev, &c) <= 0, "popped (%g, %llu) after (%g, %llu)",
				  c.distance, (unsigned long long) c.id, prev.distance,
				  (unsigned long long) prev.id);
			prev = c;
		}
	}
	free(h.items);
	free(all);
}

/*
 * The heap's k nearest, found without popping, are what popping a copy
 * gives, in that order: for every k up to past the heap's size, on heaps
 * of many sizes with ties and NaN, and the heap is left as it was.
 */
static void
test_heap_smallest(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 9);
	for (int trial = 0; trial < 300; trial++)
	{
		ScoreahHeap h,
					copy;
		int			n = (int) scoreah_random_below(&r, trial < 20 ? 4 : 300);
		int			k = (int) scoreah_random_below(&r, 40);
		int		   *pos = malloc(sizeof(int) * Max(k, 1));
		int		   *frontier = malloc(sizeof(int) * (k + 1));
		int			got;

		scoreah_heap_init(&h);
		scoreah_heap_init(&copy);
		for (int i = 0; i < n; i++)
		{
			ScoreahCandidate c;

			memset(&c, 0, sizeof(c));
			c.distance = i % 53 == 7 ? NAN : (double) scoreah_random_below(&r, 40);
			c.id = (uint64) scoreah_random_below(&r, 1000);
			scoreah_heap_push(&h, &c);
			scoreah_heap_push(&copy, &c);
			if (i % 5 == 4)
			{
				scoreah_heap_pop(&h, &c);
				scoreah_heap_pop(&copy, &c);
			}
		}
		got = scoreah_heap_smallest(&h, k, pos, frontier);
		CHECK(got == Min(k, h.n), "trial %d: %d of %d nearest, heap of %d", trial, got, k, h.n);
		for (int i = 0; i < got; i++)
		{
			ScoreahCandidate c;

			scoreah_heap_pop(&copy, &c);
			CHECK(cmp_dist(&h.items[pos[i]], &c) == 0 && h.items[pos[i]].id == c.id,
				  "trial %d: nearest %d is (%g, %llu), popping gives (%g, %llu)", trial, i,
				  h.items[pos[i]].distance, (unsigned long long) h.items[pos[i]].id,
				  c.distance, (unsigned long long) c.id);
		}
		for (int i = 1; i < h.n; i++)
			CHECK(cmp_dist(&h.items[(i - 1) / 2], &h.items[i]) <= 0, "trial %d: heap changed", trial);
		free(h.items);
		free(copy.items);
		free(pos);
		free(frontier);
	}
}

/* A standard normal variate (Box-Muller) */
static double
normal(ScoreahRandom *r)
{
	double		u = 1.0 - scoreah_random_double(r);	/* (0, 1] */
	double		v = scoreah_random_double(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/*
 * The line of distances t on scores a, and its spread: noiseless and noisy
 * points; then points chosen by their scores, as a scan re-ranks them (the
 * lowest tenth of a), where the line of t on a stays what it is for all
 * the points and a line of a on t would be flattened.
 */
static void
test_fit(void)
{
	ScoreahFit	f;
	ScoreahRandom r;
	double		gamma,
				delta,
				sigma;
	int			kept = 0;

	memset(&f, 0, sizeof(f));
	for (int i = 0; i < 29; i++)
		scoreah_fit_add(&f, i, 3.0 * i - 2.0);
	CHECK(!scoreah_fit_distance_line(&f, &gamma, &delta, &sigma), "29 points are too few");
	scoreah_fit_add(&f, 29, 85.0);
	scoreah_fit_add(&f, NAN, 1.0);
	CHECK(scoreah_fit_distance_line(&f, &gamma, &delta, &sigma), "30 points fit");
	CHECK(fabs(gamma - 1.0 / 3.0) < 1e-9 && fabs(delta - 2.0 / 3.0) < 1e-9 && sigma < 1e-6,
		  "exact line: gamma %g delta %g sigma %g", gamma, delta, sigma);

	memset(&f, 0, sizeof(f));
	scoreah_random_init(&r, 3);
	for (int i = 0; i < 20000; i++)
	{
		double		a = scoreah_random_below(&r, 1000) / 100.0;
		/* uniform noise in [-1, 1]: standard deviation 1 / sqrt(3) */
		double		e = scoreah_random_below(&r, 2000001) / 1000000.0 - 1.0;

		scoreah_fit_add(&f, 0.5 * a + 4.0 + e, a);
	}
	CHECK(scoreah_fit_distance_line(&f, &gamma, &delta, &sigma), "noisy points fit");
	CHECK(fabs(gamma - 0.5) < 0.01 && fabs(delta - 4.0) < 0.05 &&
		  fabs(sigma - 1.0 / sqrt(3.0)) < 0.01,
		  "noisy line: gamma %g delta %g sigma %g", gamma, delta, sigma);

	/*
	 * t standard normal, a = t + standard normal noise: E[t | a] = a / 2,
	 * spread sqrt(1/2) about it, whatever the scores kept.  Kept: a below
	 * its 10th percentile, -1.2816 sqrt(2) = -1.8124.
	 */
	memset(&f, 0, sizeof(f));
	scoreah_random_init(&r, 11);
	for (int i = 0; i < 200000; i++)
	{
		double		t = normal(&r);
		double		a = t + normal(&r);

		if (a < -1.8124)
		{
			scoreah_fit_add(&f, t, a);
			kept++;
		}
	}
	CHECK(kept > 15000 && scoreah_fit_distance_line(&f, &gamma, &delta, &sigma),
		  "points chosen by score fit (%d kept)", kept);
	CHECK(fabs(gamma - 0.5) < 0.03 && fabs(delta) < 0.08 && fabs(sigma - sqrt(0.5)) < 0.02,
		  "chosen by score: gamma %g delta %g sigma %g (0.5, 0, 0.707)", gamma, delta, sigma);
}

const UnitTestEntry unit_tests_topn[] = {
	{"topn: the kept candidates are a full sort's first", test_topn_against_sort},
	{"topn: room made keeps every candidate below the threshold", test_topn_room},
	{"topn: each leaf's least score left out is the least not held", test_topn_leaf_least},
	{"topn: the split puts the k smallest first on awkward inputs", test_topn_split},
	{"topn: exact order puts NaN last, ties by id", test_sort_by_distance},
	{"topn: nearest leaves as a sort orders them", test_order_smallest},
	{"topn: the inline sort by key agrees with qsort", test_sort_by_approx},
	{"topn: sorting the front agrees with qsort, the rest kept behind it", test_sort_front},
	{"topn: pending rows pop nearest first, NaN last", test_heap},
	{"topn: the pending heap's k nearest, in order, without popping", test_heap_smallest},
	{"topn: the line of distances on scores and its spread, on points chosen by score too", test_fit},
	{NULL, NULL}
};
