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

static void
test_order_smallest(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 13);
	for (int trial = 0; trial < 300; trial++)
	{
		int			n = 1 + (int) scoreah_random_below(&r, 500);
		int			k = (int) scoreah_random_below(&r, n + 3);
		float	   *scores = malloc(sizeof(float) * n);
		int		   *order = malloc(sizeof(int) * n);
		int		   *ref = malloc(sizeof(int) * n);
		bool	   *seen = calloc(n, 1);

		for (int i = 0; i < n; i++)
		{
			scores[i] = (float) scoreah_random_below(&r, trial % 3 ? 1000 : 5);
			order[i] = i;
		}
		/* reference: selection sort on (score, index) */
		for (int i = 0; i < n; i++)
			ref[i] = i;
		for (int i = 0; i < n; i++)
			for (int j = i + 1; j < n; j++)
				if (scores[ref[j]] < scores[ref[i]] ||
					(scores[ref[j]] == scores[ref[i]] && ref[j] < ref[i]))
				{
					int			t = ref[i];

					ref[i] = ref[j];
					ref[j] = t;
				}
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

const UnitTestEntry unit_tests_topn[] = {
	{"topn: the kept candidates are a full sort's first", test_topn_against_sort},
	{"topn: exact order puts NaN last, ties by id", test_sort_by_distance},
	{"topn: nearest leaves as a sort orders them", test_order_smallest},
	{NULL, NULL}
};
