/*-------------------------------------------------------------------------
 *
 * calibrate.c
 *	  What recall@10 the index gives at which settings, measured by the
 *	  build on its own data, so that scoreah.target_recall can ask for a
 *	  recall rather than for leaf counts.
 *
 * Calibration queries are rows of the training sample.  While the encoding
 * pass reads every row, each query keeps its k nearest rows (exact
 * distances in the model's units, the query's own row left out: real
 * queries are not rows of the table).  Once the leaves are written, each
 * query is routed and every row of the index is scored from its codes
 * with the query's 8-bit lookup tables, exactly as a scan scores it.  A
 * true neighbour is found when its leaf is among the first P leaves the
 * query searches and fewer than R rows of those leaves score before it
 * (the scan re-ranks its best R candidates by exact distance).  That gives
 * recall@k on a grid of P and R, kept in the metapage; at query time the
 * cheapest setting that reaches the target is taken from the grid.
 *
 * R starts at 5k: self-queries have near-duplicates in many real tables
 * (several crops of one image, several chunks of one document), which
 * their codes rank first however coarse they are, so below 5k the grid
 * promised more than held-out queries got (mobilenet-1280 at R = 20:
 * 0.99 measured for 0.977 reached); from 5k on the two agree within a
 * few thousandths on GloVe-100, MNIST-784 and mobilenet-1280 (README).
 *
 * Self-queries are drawn from the data as held-out queries are (a uniform
 * sample), so the curve transfers to them; the cost is the queries'
 * distances to every row during encoding and one scoring of the index per
 * query, a few percent of a build.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/float.h"
#include "utils/rel.h"

#include "scoreah.h"

#define CALIB_K				10
#define CALIB_MAX_QUERIES	200
#define CALIB_MIN_QUERIES	20
#define CALIB_WORK			((double) 1e10) /* queries x rows x dimensions */

static const uint32 calib_reorders[SCOREAH_CALIB_REORDERS] =
{50, 75, 100, 150, 200, 400, 800, 1600};

/*
 * How many calibration queries for a table of nrows rows of dim
 * dimensions split into nleaves leaves: 200, fewer for big tables.  Each
 * query's exact distance to every row is a dim-long loop, as is routing a
 * row to each leaf: up to 10^10 multiply-adds, or a quarter of the
 * routing work of the encoding pass when that is more.  At least 20.
 */
int
ScoreahCalibQueries(int64 nrows, int nsamples, int dim, int nleaves)
{
	double		q = Max(CALIB_WORK / ((double) Max(nrows, 1) * Max(dim, 1)), nleaves / 4.0);

	q = Max((double) CALIB_MIN_QUERIES, Min((double) CALIB_MAX_QUERIES, q));
	return (int) Min((double) nsamples, q);
}

/*
 * Set up calibration with the first nqueries rows of the (shuffled, scaled)
 * sample as queries.
 */
void
ScoreahCalibInit(ScoreahCalib calib, const float *samples, const uint64 *ids,
				 int nqueries, int dim)
{
	memset(calib, 0, sizeof(ScoreahCalibBuildData));
	calib->nqueries = nqueries;
	calib->k = CALIB_K;
	calib->dim = dim;
	calib->queries = palloc(sizeof(float) * (Size) Max(nqueries, 1) * dim);
	memcpy(calib->queries, samples, sizeof(float) * (Size) nqueries * dim);
	calib->queryIds = palloc(sizeof(uint64) * Max(nqueries, 1));
	memcpy(calib->queryIds, ids, sizeof(uint64) * nqueries);
	calib->nn = palloc0(sizeof(ScoreahCalibNeighbor) * Max(nqueries, 1) * CALIB_K);
	calib->nnCount = palloc0(sizeof(int) * Max(nqueries, 1));
	calib->queryNorms = palloc(sizeof(float) * Max(nqueries, 1));
	for (int q = 0; q < nqueries; q++)
	{
		const float *qv = calib->queries + (Size) q * dim;

		calib->queryNorms[q] = scoreah_dot(qv, qv, dim);
	}
	calib->dots = palloc(sizeof(float) * SCOREAH_ENCODE_BATCH * Max(nqueries, 1));
}

/* The query's k nearest so far form a max-heap on distance: replace the top */
static void
HeapOffer(ScoreahCalibNeighbor *heap, int *n, int k, const ScoreahCalibNeighbor *c)
{
	int			i;

	if (*n < k)
	{
		/* sift up */
		i = (*n)++;
		heap[i] = *c;
		while (i > 0 && heap[(i - 1) / 2].dist < heap[i].dist)
		{
			ScoreahCalibNeighbor t = heap[(i - 1) / 2];

			heap[(i - 1) / 2] = heap[i];
			heap[i] = t;
			i = (i - 1) / 2;
		}
		return;
	}
	if (c->dist >= heap[0].dist)
		return;
	heap[0] = *c;
	i = 0;
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;
		ScoreahCalibNeighbor t;

		if (l < k && heap[l].dist > heap[m].dist)
			m = l;
		if (r < k && heap[r].dist > heap[m].dist)
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
 * n rows of the encoding pass (in the model's units, one after another;
 * their ids and leaves): candidate neighbours of every query but their
 * own.
 *
 * The exact distance (double sums) to every query cost a tenth of a
 * build's CPU, though nearly every row is far from every query.  So the
 * float dot products come first, all rows by all queries at once, and a
 * row is passed over for a query whose list is full when its float
 * distance exceeds the list's worst by more than float rounding can
 * reach: at most (dim + 16) * 2^-21 * (|q|^2 + |x|^2), four times the error
 * bound of the float sums (dim * 2^-23 * (|q|^2 + |x|^2) for the L2 form).
 * Such a row's exact distance is no better than the worst, which the heap
 * would refuse anyway, so the lists are the ones the exact distances
 * alone give.
 */
void
ScoreahCalibOffer(ScoreahCalib calib, int metric, const float *x, int n,
				  const uint64 *ids, const int *leaves)
{
	int			dim = calib->dim;
	int			nq = calib->nqueries;
	float		eps = (float) ldexp(dim + 16, -21);

	Assert(n <= SCOREAH_ENCODE_BATCH);
	scoreah_dot_cross(x, n, calib->queries, nq, dim, calib->dots);
	for (int i = 0; i < n; i++)
	{
		const float *xi = x + (Size) i * dim;
		const float *dots = calib->dots + (Size) i * nq;
		float		xn = scoreah_dot(xi, xi, dim);

		for (int q = 0; q < nq; q++)
		{
			const float *qv = calib->queries + (Size) q * dim;
			ScoreahCalibNeighbor *heap = calib->nn + (Size) q * calib->k;
			ScoreahCalibNeighbor c;

			if (calib->queryIds[q] == ids[i])
				continue;
			if (calib->nnCount[q] == calib->k)
			{
				float		qn = calib->queryNorms[q];
				float		approx = metric == SCOREAH_METRIC_L2 ?
					qn + xn - 2 * dots[q] : -dots[q];

				/* NaN (overflow) compares false and falls through to exact */
				if (approx >= heap[0].dist + eps * (qn + xn))
					continue;
			}
			c.dist = metric == SCOREAH_METRIC_L2 ?
				scoreah_exact_kernels->l2sq(qv, xi, dim) :
				-scoreah_exact_kernels->dot(qv, xi, dim);
			c.id = ids[i];
			c.leaf = (uint32) leaves[i];
			HeapOffer(heap, &calib->nnCount[q], calib->k, &c);
		}
	}
}

/* Another participant's neighbours into calib's (parallel builds) */
void
ScoreahCalibMerge(ScoreahCalib calib, const ScoreahCalibNeighbor *nn, const int *counts)
{
	for (int q = 0; q < calib->nqueries; q++)
		for (int j = 0; j < counts[q]; j++)
			HeapOffer(calib->nn + (Size) q * calib->k, &calib->nnCount[q], calib->k,
					  &nn[(Size) q * calib->k + j]);
}

/*
 * One query's pass over a leaf: every live row scored from its codes as a
 * scan scores it.  In FIND mode the neighbours' scores are recorded; in
 * COUNT mode each other row adds to hist[p], p being how many of the
 * neighbours (sorted by (score, id)) it does not come before: rows past
 * the last neighbour, most of them, cost one comparison.
 */
typedef struct CalibPass
{
	bool		find;
	int			nnn;
	uint64		self;			/* the query's own row, left out */
	double		key[CALIB_K];	/* neighbours' scores (COUNT: sorted) */
	uint64		keyId[CALIB_K];
	bool		found[CALIB_K];
	int		   *hist;			/* COUNT: k + 1 counters of the leaf */
} CalibPass;

/* (approx, id): the order in which a scan's top-N keeps candidates */
static inline bool
KeyLess(double a, uint64 ida, double b, uint64 idb)
{
	return a < b || (a == b && ida < idb);
}

static void
PassLeaf(Relation index, ScoreahModel model, ScoreahLayout layout, const ScoreahLeafData *entry,
		 int leaf, const float *query, ScoreahLut lut, CalibPass *cp)
{
	double		base = scoreah_lut_leaf(model, query, leaf, lut);
	ScoreahChainData chain;

	if (entry->codeHead == InvalidBlockNumber)
		return;
	ScoreahChainBegin(&chain, index, entry->codeHead, SCOREAH_PAGE_CODES, (uint32) leaf,
					  BUFFER_LOCK_SHARE, SCOREAH_CHAIN_STRICT);
	while (ScoreahChainNext(&chain))
	{
		int			ngroups = ScoreahPageGetNGroups(chain.page, layout->gsize);

		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(chain.page) + g * layout->gsize;
			ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
			ItemPointer tids = ScoreahGroupTids(layout, group);
			uint32	   *sums = lut->sums;
			const float *bias = layout->biasOffset != 0 ? ScoreahGroupBias(layout, group) : NULL;

			scoreah_lut16_scan(ScoreahGroupCodes(layout, group), lut->qlut, model->nblocks, sums,
							   PG_UINT32_MAX,
							   g + 1 < ngroups ? ScoreahGroupCodes(layout, group + layout->gsize) : NULL);
			for (int i = 0; i < gh->nitems; i++)
			{
				double		score = base + sums[i] / lut->scale + (bias ? bias[i] : 0);
				uint64		id;
				int			p;

				if (!ItemPointerIsValid(&tids[i]))
					continue;
				if (!cp->find && cp->nnn > 0 && score > cp->key[cp->nnn - 1])
					continue;	/* after every neighbour: counts for none */
				id = ScoreahTidToId(&tids[i]);
				if (cp->find)
				{
					for (int j = 0; j < cp->nnn; j++)
						if (cp->keyId[j] == id)
						{
							cp->key[j] = score;
							cp->found[j] = true;
						}
					continue;
				}
				if (id == cp->self)
					continue;
				/* a neighbour is not before itself, but before those after it */
				p = 0;
				while (p < cp->nnn && !KeyLess(score, id, cp->key[p], cp->keyId[p]))
					p++;
				cp->hist[p]++;
			}
		}
	}
	ScoreahChainEnd(&chain);
}

/*
 * The grid of leaves searched: 1 to a quarter of the leaves (all of them
 * up to 64), about geometric.  Past a quarter no target needs more (recall
 * 0.999 on GloVe, SIFT and MNIST), and each query's pass over the leaves
 * stops there: the measurement of a million rows takes a quarter of the
 * time.
 */
static int
ProbeMax(int nleaves)
{
	return nleaves <= 64 ? nleaves : Max(64, nleaves / 4);
}

static int
ProbeGrid(int nleaves, uint32 *probes)
{
	int			n = 0;
	int			pmax = ProbeMax(nleaves);

	for (int i = 0; i < SCOREAH_CALIB_PROBES; i++)
	{
		double		f = (double) i / (SCOREAH_CALIB_PROBES - 1);
		uint32		p = (uint32) rint(pow((double) pmax, f));

		p = Max(1, Min((uint32) pmax, p));
		if (n == 0 || p > probes[n - 1])
			probes[n++] = p;
	}
	return n;
}

/*
 * Measure recall@k on the grid for the neighbours found in the encoding
 * pass, from the written leaves (entries: the directory, in memory), into
 * out.  Per query: the neighbours' own scores first (their leaves only),
 * then one pass over every leaf in the order the query searches them,
 * counting the rows that score before each neighbour.
 */
void
ScoreahCalibMeasure(ScoreahCalib calib, Relation index, ScoreahModel model,
					ScoreahLayout layout, const ScoreahLeafData *entries, int64 rows,
					ScoreahCalibrationData *out)
{
	int			nleaves = model->nleaves;
	int			k = calib->k;
	int			nprobes;
	float	   *routing = palloc(sizeof(float) * nleaves);
	int		   *order = palloc(sizeof(int) * nleaves);
	int		   *rank = palloc(sizeof(int) * nleaves);
	int		   *hist = palloc(sizeof(int) * nleaves * (k + 1));
	double		hits[SCOREAH_CALIB_PROBES][SCOREAH_CALIB_REORDERS];
	int64		total = 0;
	ScoreahLutData lut;

	/*
	 * scoring = brute_force (no codes): a scan scores the rows of the leaves
	 * it searches exactly, so a neighbour is found when its leaf is, at
	 * every re-ranking depth.
	 */
	bool		exact = model->nblocks == 0;

	memset(out, 0, sizeof(ScoreahCalibrationData));
	memset(hits, 0, sizeof(hits));
	nprobes = ProbeGrid(nleaves, out->probes);
	if (exact)
		memset(&lut, 0, sizeof(lut));
	else
		scoreah_lut_alloc(&lut, model->nblocks);

	/* the build's model keeps its codebooks transposed, as the cache's does */
	Assert(model->codebooksT != NULL);

	for (int q = 0; q < calib->nqueries; q++)
	{
		const float *qv = calib->queries + (Size) q * calib->dim;
		ScoreahCalibNeighbor *nn = calib->nn + (Size) q * k;
		int			nnn = calib->nnCount[q];
		int			keyRank[CALIB_K];	/* the rank of the neighbours' leaves */
		CalibPass	cp;

		CHECK_FOR_INTERRUPTS();
		if (nnn == 0)
			continue;

		/* the leaves in the order the query searches them */
		scoreah_route_scores(model, qv, routing);
		for (int j = 0; j < nleaves; j++)
			order[j] = j;
		scoreah_order_smallest(routing, order, nleaves, nleaves);
		for (int j = 0; j < nleaves; j++)
			rank[order[j]] = j;
		if (exact)
		{
			for (int pi = 0; pi < nprobes; pi++)
				for (int j = 0; j < nnn; j++)
					if ((uint32) rank[nn[j].leaf] < out->probes[pi])
						for (int r = 0; r < SCOREAH_CALIB_REORDERS; r++)
							hits[pi][r] += 1;
			total += nnn;
			continue;
		}
		scoreah_lut_query(model, qv, &lut);

		/* the neighbours' scores, from their own leaves */
		memset(&cp, 0, sizeof(cp));
		cp.find = true;
		cp.nnn = nnn;
		cp.self = calib->queryIds[q];
		for (int j = 0; j < nnn; j++)
		{
			cp.keyId[j] = nn[j].id;
			cp.key[j] = get_float8_infinity();
		}
		for (int j = 0; j < nnn; j++)
		{
			bool		seen = false;

			for (int i = 0; i < j; i++)
				seen |= nn[i].leaf == nn[j].leaf;
			if (!seen)
				PassLeaf(index, model, layout, &entries[nn[j].leaf], (int) nn[j].leaf, qv, &lut, &cp);
		}
		for (int j = 0; j < nnn; j++)
			keyRank[j] = rank[nn[j].leaf];

		/* sort the neighbours by (score, id) */
		for (int a = 1; a < nnn; a++)
			for (int b = a; b > 0 && KeyLess(cp.key[b], cp.keyId[b], cp.key[b - 1], cp.keyId[b - 1]); b--)
			{
				double		tk = cp.key[b];
				uint64		ti = cp.keyId[b];
				int			tr = keyRank[b];

				cp.key[b] = cp.key[b - 1];
				cp.keyId[b] = cp.keyId[b - 1];
				keyRank[b] = keyRank[b - 1];
				cp.key[b - 1] = tk;
				cp.keyId[b - 1] = ti;
				keyRank[b - 1] = tr;
			}

		/*
		 * hist[L][p]: rows of the leaf ranked L that score before neighbours
		 * p..nnn-1 but not before neighbour p-1 (the query's own row left
		 * out).  A row before neighbour j takes one of the R places ahead
		 * of it, neighbours included.
		 */
		memset(hist, 0, sizeof(int) * nleaves * (k + 1));
		cp.find = false;
		for (int L = 0; L < ProbeMax(nleaves); L++)
		{
			cp.hist = hist + L * (k + 1);
			PassLeaf(index, model, layout, &entries[order[L]], order[L], qv, &lut, &cp);
		}

		/* found at (P, R): its leaf among the first P, fewer than R before it */
		{
			int64		before[CALIB_K] = {0};
			int			pi = 0;

			for (int L = 0; L < nleaves && pi < nprobes; L++)
			{
				int64		run = 0;

				for (int p = 0; p <= nnn - 1; p++)
				{
					run += hist[L * (k + 1) + p];
					before[p] += run;
				}
				while (pi < nprobes && (uint32) (L + 1) == out->probes[pi])
				{
					for (int j = 0; j < nnn; j++)
						if (keyRank[j] <= L && !isinf(cp.key[j]))
							for (int r = 0; r < SCOREAH_CALIB_REORDERS; r++)
								if (before[j] < calib_reorders[r])
									hits[pi][r] += 1;
					pi++;
				}
			}
		}
		total += nnn;
	}

	out->nqueries = (uint16) calib->nqueries;
	out->k = (uint16) k;
	out->nprobes = (uint16) nprobes;
	out->nreorders = SCOREAH_CALIB_REORDERS;
	for (int r = 0; r < SCOREAH_CALIB_REORDERS; r++)
		out->reorders[r] = calib_reorders[r];
	for (int pi = 0; pi < nprobes; pi++)
		for (int r = 0; r < SCOREAH_CALIB_REORDERS; r++)
			out->recall[pi][r] = total > 0 ? (uint16) rint(10000.0 * hits[pi][r] / total) : 0;

	if (!exact)
		scoreah_lut_free(&lut);
	pfree(routing);
	pfree(order);
	pfree(rank);
	pfree(hist);
}

/*
 * The share of each leaf's spread that routing adds to a query's distance
 * (route.c): for each weight of scoreah_spread_weights, the calibration
 * queries' recall of their true neighbours' leaves against the rows of the
 * leaves searched, P leaves at a time (P from 1 to ProbeMax, recall and
 * rows averaged over the queries at each P); the rows needed for recall
 * 0.90, 0.95 and 0.99, interpolated, against those of distance alone.  The
 * weight needing the fewest (their mean ratio), if at least 2% fewer:
 * below that the sample cannot tell (GloVe-100 331k took 0.25; SIFT 1.16M
 * and mobilenet-1280 none, as simulated).  Codes are not scored: which
 * leaves a query searches is all routing decides.  Returns 0 for an index
 * without spreads or with inner product (routed by inner product alone).
 */
float
ScoreahCalibChooseSpread(ScoreahCalib calib, ScoreahModel model, const ScoreahLeafData *entries)
{
	static const double targets[] = {0.90, 0.95, 0.99};
	int			nleaves = model->nleaves;
	int			pmax = ProbeMax(nleaves);
	int			nw = SCOREAH_SPREAD_WEIGHTS;
	float	   *spread = model->leafSpread;
	float	   *base,
			   *scores;
	int		   *order;
	double	   *hits,
			   *rows;
	int64		total = 0;
	double		need[SCOREAH_SPREAD_WEIGHTS][lengthof(targets)];
	double		bestRatio = 0.98;
	float		best = 0;

	if (spread == NULL || model->metric == SCOREAH_METRIC_IP || nleaves < 2)
		return 0;
	base = palloc(sizeof(float) * nleaves);
	scores = palloc(sizeof(float) * nleaves);
	order = palloc(sizeof(int) * nleaves);
	hits = palloc0(sizeof(double) * nw * pmax);
	rows = palloc0(sizeof(double) * nw * pmax);

	/* the distances alone: routing by the weight yet to be chosen is none */
	model->spreadWeight = 0;
	for (int q = 0; q < calib->nqueries; q++)
	{
		const ScoreahCalibNeighbor *nn = calib->nn + (Size) q * calib->k;
		int			nnn = calib->nnCount[q];

		CHECK_FOR_INTERRUPTS();
		if (nnn == 0)
			continue;
		total += nnn;
		scoreah_route_scores(model, calib->queries + (Size) q * calib->dim, base);
		for (int w = 0; w < nw; w++)
		{
			double		cumRows = 0;
			int			cumHits = 0;

			memcpy(scores, base, sizeof(float) * nleaves);
			scoreah_route_add_spread(scores, spread, scoreah_spread_weights[w], nleaves);
			for (int j = 0; j < nleaves; j++)
				order[j] = j;
			scoreah_order_smallest(scores, order, nleaves, pmax);
			for (int p = 0; p < pmax; p++)
			{
				cumRows += entries[order[p]].nbuilt;
				for (int i = 0; i < nnn; i++)
					cumHits += nn[i].leaf == (uint32) order[p];
				hits[w * pmax + p] += cumHits;
				rows[w * pmax + p] += cumRows;
			}
		}
	}

	/* rows needed for each target, interpolated between probe counts */
	for (int w = 0; w < nw; w++)
		for (int t = 0; t < (int) lengthof(targets); t++)
		{
			need[w][t] = get_float8_infinity();
			for (int p = 0; p < pmax; p++)
			{
				double		r = hits[w * pmax + p] / total;

				if (r >= targets[t])
				{
					double		r0 = p > 0 ? hits[w * pmax + p - 1] / total : 0;
					double		w0 = p > 0 ? rows[w * pmax + p - 1] : 0;
					double		f = r > r0 ? (targets[t] - r0) / (r - r0) : 1;

					need[w][t] = w0 + f * (rows[w * pmax + p] - w0);
					break;
				}
			}
		}
	for (int w = 1; w < nw && total > 0; w++)
	{
		double		ratio = 0;

		for (int t = 0; t < (int) lengthof(targets); t++)
			ratio += need[w][t] / need[0][t] / lengthof(targets);
		/* NaN (a target out of reach either way) compares false */
		if (ratio < bestRatio)
		{
			bestRatio = ratio;
			best = scoreah_spread_weights[w];
		}
	}
	pfree(base);
	pfree(scores);
	pfree(order);
	pfree(hits);
	pfree(rows);
	return best;
}

/*
 * The relative cost of a query that searches P leaves and re-ranks R
 * candidates: every row of the P leaves is scored from its codes (a few
 * nanoseconds, growing with the blocks), each candidate is re-ranked from
 * its stored vector (a page access and a dim-long distance).  Constants
 * are nanoseconds measured on GloVe-100 and MNIST-784 scans (README).
 */
static double
QueryCost(const ScoreahMetaPageData *meta, double probes, double reorder)
{
	double		rowsPerLeaf = (double) Max(meta->rowsBuilt, 1) / Max(meta->nleaves, 1);
	double		score = 2.0 + 0.05 * meta->nblocks;
	double		rerank = 250.0 + 0.5 * meta->dimensions;

	return probes * rowsPerLeaf * score + reorder * rerank;
}

/* Calibrated recall at probes[i], reorders[j], as a fraction */
static inline double
CalibRecall(const ScoreahCalibrationData *cal, int i, int j)
{
	return cal->recall[i][j] / 10000.0;
}

/*
 * The cheapest (leaves, candidates) that reaches recall@10 >= target on
 * the build's calibration, with leaves interpolated between the grid's
 * (linearly in log leaves).  *expected receives the calibrated recall of
 * the choice.
 *
 * A target above every measured point (the grid stops at a quarter of the
 * leaves) takes the re-ranking depth with the best recall there and
 * extrapolates the leaves along it: the share of neighbours missed falls
 * about as a power of the leaves searched (GloVe-100, SIFT), so the last
 * two points' slope in log-log gives the leaves the target needs, up to
 * all of them; a curve that stopped falling, or a target of 1, searches
 * every leaf.  *expected then receives the best measured recall, and the
 * result says the choice is extrapolated.
 */
ScoreahCalibChoice
ScoreahCalibChoose(const ScoreahMetaPageData *meta, double target,
				   int *probes, int *reorder, double *expected)
{
	const ScoreahCalibrationData *cal = &meta->calibration;
	double		bestCost = get_float8_infinity();
	int			last,
				bestJ = 0,
				prev;
	double		r1,
				p1,
				p;

	if (cal->nqueries == 0 || cal->nprobes == 0)
		return SCOREAH_CALIB_NONE;

	/*
	 * Three standard errors of a recall measured on nqueries x k neighbours
	 * above the target: the calibration's rows are a sample too, drawn
	 * from the table (held-out queries from elsewhere are harder when the
	 * table holds near-duplicates: mobilenet-1280's crops of one image),
	 * and a target is a floor (0.95 becomes 0.9646 with 200 queries).
	 */
	target = Min(1.0, target + 3.0 * sqrt(target * (1.0 - target) /
										  ((double) cal->nqueries * cal->k)));

	for (int j = 0; j < cal->nreorders; j++)
	{
		for (int i = 0; i < cal->nprobes; i++)
		{
			double		r = CalibRecall(cal, i, j);
			double		cost;

			p = cal->probes[i];
			if (r < target)
				continue;
			/* between the previous grid point and this one */
			if (i > 0 && CalibRecall(cal, i - 1, j) < r)
			{
				double		r0 = CalibRecall(cal, i - 1, j);
				double		lp0 = log((double) cal->probes[i - 1]);
				double		lp1 = log(p);

				p = ceil(exp(lp0 + (lp1 - lp0) * (target - r0) / (r - r0)) - 1e-9);
				p = Max(p, cal->probes[i - 1] + 1);
				r = target;
			}
			cost = QueryCost(meta, p, cal->reorders[j]);
			if (cost < bestCost)
			{
				bestCost = cost;
				*probes = (int) p;
				*reorder = (int) cal->reorders[j];
				*expected = r;
			}
			break;
		}
	}
	if (bestCost < get_float8_infinity())
		return SCOREAH_CALIB_MET;

	/* out of reach: the depth best at the last point, cheapest first */
	last = cal->nprobes - 1;
	for (int j = 1; j < cal->nreorders; j++)
		if (CalibRecall(cal, last, j) > CalibRecall(cal, last, bestJ))
			bestJ = j;
	r1 = CalibRecall(cal, last, bestJ);
	p1 = cal->probes[last];
	*reorder = (int) cal->reorders[bestJ];
	*expected = r1;

	/* the nearest earlier point of lower recall along that depth */
	prev = last - 1;
	while (prev >= 0 && CalibRecall(cal, prev, bestJ) >= r1)
		prev--;
	p = meta->nleaves;
	if (prev >= 0 && target < 1.0 && r1 < 1.0)
	{
		double		m0 = 1.0 - CalibRecall(cal, prev, bestJ);
		double		m1 = 1.0 - r1;
		double		slope = log(m1 / m0) / log(p1 / cal->probes[prev]);

		/* slope < 0: misses fall as leaves grow */
		p = ceil(p1 * exp(log((1.0 - target) / m1) / slope));
		if (isnan(p))
			p = meta->nleaves;
		p = Max(p1 + 1, Min((double) meta->nleaves, p));
	}
	*probes = (int) Min((double) meta->nleaves, Max(p, p1));
	return SCOREAH_CALIB_BEYOND;
}
