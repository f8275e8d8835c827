/*
 * test_pq.c
 *	  Codebooks, anisotropic encoding against brute force, lookup tables
 *	  against the codes they score, and routing.
 */
#include "unit.h"

/* A model of dim dimensions, dpb per block, codebooks trained on x */
static void
make_model(ScoreahModelData *m, int dim, int dpb, int metric, const float *x, int n)
{
	memset(m, 0, sizeof(*m));
	m->dim = dim;
	m->dpb = dpb;
	m->metric = metric;
	m->nleaves = 1;
	m->nblocks = (dim + dpb - 1) / dpb;
	m->residual = false;
	m->centroids = calloc(dim, sizeof(float));
	m->centroidNorms = calloc(1, sizeof(float));
	m->codebooks = calloc(16 * dim, sizeof(float));
	scoreah_pq_train(m, x, n, 10, 77);
}

static void
free_model(ScoreahModelData *m)
{
	free(m->centroids);
	free(m->centroidNorms);
	free(m->codebooks);
}

/* The score-aware loss of codes for residual r of datapoint x */
static double
aniso_loss(const ScoreahModelData *m, const float *r, const float *x, const uint8 *codes,
		   double eta)
{
	double		e2 = 0,
				par = 0,
				xn = 0;

	for (int b = 0; b < m->nblocks; b++)
	{
		int			w = ScoreahBlockWidth(m, b);
		const float *c = ScoreahCodebook(m, b) + codes[b] * w;

		for (int d = 0; d < w; d++)
		{
			double		e = (double) r[b * m->dpb + d] - c[d];

			e2 += e * e;
			par += e * x[b * m->dpb + d];
		}
	}
	for (int d = 0; d < m->dim; d++)
		xn += (double) x[d] * x[d];
	par = par * par / xn;
	return eta * par + (e2 - par);
}

static void
test_parallel_cost_multiplier(void)
{
	/* eta = (d - 1) t^2 / (1 - t^2), t = T / |x| */
	double		eta = scoreah_parallel_cost_multiplier(0.2, 1.0, 100);

	CHECK(fabs(eta - 99 * 0.04 / 0.96) < 1e-12, "eta(0.2, 1, 100) = %g", eta);
	eta = scoreah_parallel_cost_multiplier(0.2, 4.0, 100);
	CHECK(fabs(eta - 99 * 0.01 / 0.99) < 1e-12, "eta(0.2, |x| = 2, 100) = %g", eta);
	/* |x| <= T: t^2 capped at 0.99, finite and large */
	eta = scoreah_parallel_cost_multiplier(2, 1.0, 10);
	CHECK(fabs(eta - 9 * 0.99 / 0.01) < 1e-9, "eta past the threshold = %g", eta);
	CHECK(scoreah_parallel_cost_multiplier(0.2, 0, 10) == 1, "zero vector");
}

/*
 * On 3 blocks (16^3 code combinations) the best codes can be found by
 * brute force.  Without a threshold each block takes its nearest center,
 * which is the isotropic optimum.  With one, ScaNN's coordinate descent
 * never does worse than that start, ends where no single block's change
 * that does not grow the parallel error lowers the loss, and comes close
 * to the optimum.  Unit vectors and T = 2/3 give eta = 4 at 6 dimensions,
 * the ratio T = 0.2 gives at 100.
 */
static void
test_anisotropic_vs_brute_force(void)
{
	int			dim = 6,
				dpb = 2,
				n = 2000;
	double		T = 2.0 / 3.0;
	ScoreahRandom r;
	float	   *x = malloc(sizeof(float) * n * dim);
	ScoreahModelData m;
	double		ratioSum = 0;
	int			optimal = 0,
				trials = 300;

	scoreah_random_init(&r, 21);
	for (int i = 0; i < n; i++)
	{
		for (int d = 0; d < dim; d++)
			x[i * dim + d] = unit_uniform(&r, -1, 1);
		scoreah_normalize(x + i * dim, dim, x + i * dim);
	}
	make_model(&m, dim, dpb, SCOREAH_METRIC_IP, x, n);
	CHECK(fabs(scoreah_parallel_cost_multiplier(T, 1.0, dim) - 4) < 1e-9, "eta is not 4");

	for (int t = 0; t < trials; t++)
	{
		const float *v = x + t * dim;
		uint8		iso[3],
					aniso[3],
					best[3] = {0, 0, 0},
					c[3];
		double		eta = scoreah_parallel_cost_multiplier(T, scoreah_exact_dot(v, v, dim), dim);
		double		bestIso = INFINITY,
					bestAniso = INFINITY,
					got;

		scoreah_pq_encode(&m, v, v, NAN, iso);
		scoreah_pq_encode(&m, v, v, T, aniso);
		for (c[0] = 0; c[0] < 16; c[0]++)
			for (c[1] = 0; c[1] < 16; c[1]++)
				for (c[2] = 0; c[2] < 16; c[2]++)
				{
					double		li = aniso_loss(&m, v, v, c, 1.0);	/* eta 1: plain error */
					double		la = aniso_loss(&m, v, v, c, eta);

					if (li < bestIso)
						bestIso = li;
					if (la < bestAniso)
					{
						bestAniso = la;
						memcpy(best, c, 3);
					}
				}
		got = aniso_loss(&m, v, v, aniso, eta);
		CHECK(fabs(aniso_loss(&m, v, v, iso, 1.0) - bestIso) <= 1e-9 * (bestIso + 1e-12),
			  "trial %d: nearest centers are not the isotropic optimum", t);
		CHECK(got <= aniso_loss(&m, v, v, iso, eta) * (1 + 1e-6),
			  "trial %d: anisotropic codes worse than the start", t);

		/* a fixed point of the descent's moves */
		for (int b = 0; b < 3; b++)
			for (int j = 0; j < 16; j++)
			{
				uint8		alt[3];
				double		p0 = 0,
							p1 = 0;

				memcpy(alt, aniso, 3);
				alt[b] = (uint8) j;
				/* parallel errors before and after, as the descent sees them */
				p0 = aniso_loss(&m, v, v, aniso, 2) - aniso_loss(&m, v, v, aniso, 1);
				p1 = aniso_loss(&m, v, v, alt, 2) - aniso_loss(&m, v, v, alt, 1);
				if (p1 <= p0 * (1 + 1e-6))
					CHECK(aniso_loss(&m, v, v, alt, eta) >= got * (1 - 1e-5),
						  "trial %d: block %d center %d lowers the loss", t, b, j);
			}
		ratioSum += got / bestAniso;
		optimal += memcmp(aniso, best, 3) == 0;
	}
	printf("# anisotropic coordinate descent: mean loss / optimum %.4f, optimal in %d of %d\n",
		   ratioSum / trials, optimal, trials);
	CHECK(ratioSum / trials < 1.10, "mean loss %.4f times the optimum", ratioSum / trials);
	CHECK(optimal > trials / 2, "optimal in only %d of %d", optimal, trials);
	free_model(&m);
	free(x);
}

/* a lookup table's entries, summed by the codes, score the decoded vector */
static void
test_lut_scores_codes(void)
{
	int			dim = 37,
				dpb = 3,
				n = 3000;	/* 13 blocks, the last one 1 wide */
	ScoreahRandom r;
	float	   *x = malloc(sizeof(float) * n * dim);
	float		q[37],
				center[37],
				decoded[37];

	scoreah_random_init(&r, 31);
	for (int i = 0; i < n * dim; i++)
		x[i] = unit_uniform(&r, -2, 2);
	for (int d = 0; d < dim; d++)
	{
		q[d] = unit_uniform(&r, -1, 1);
		center[d] = unit_uniform(&r, -0.3f, 0.3f);
	}
	for (int metric = SCOREAH_METRIC_L2; metric <= SCOREAH_METRIC_IP; metric++)
	{
		ScoreahModelData m;
		ScoreahLutData lut;

		make_model(&m, dim, dpb, metric, x, n);
		CHECK(m.nblocks == 13 && ScoreahBlockWidth(&m, 12) == 1, "block layout");
		scoreah_lut_alloc(&lut, m.nblocks);
		scoreah_lut_build(&m, q, metric == SCOREAH_METRIC_L2 ? center : NULL, &lut);
		for (int t = 0; t < 50; t++)
		{
			uint8		codes[13];
			double		sum = 0,
						want = 0;

			scoreah_pq_encode(&m, x + t * dim, x + t * dim, NAN, codes);
			for (int b = 0; b < m.nblocks; b++)
			{
				int			w = ScoreahBlockWidth(&m, b);

				memcpy(decoded + b * dpb, ScoreahCodebook(&m, b) + codes[b] * w, sizeof(float) * w);
				sum += lut.flut[b * 16 + codes[b]];
			}
			for (int d = 0; d < dim; d++)
				want += metric == SCOREAH_METRIC_L2 ?
					((double) q[d] - center[d] - decoded[d]) * ((double) q[d] - center[d] - decoded[d]) :
					-(double) q[d] * decoded[d];
			CHECK(fabs(sum - want) < 1e-4 * (fabs(want) + 1), "metric %d row %d: table %g, decoded %g",
				  metric, t, sum, want);
		}
		scoreah_lut_free(&lut);
		free_model(&m);
	}
	free(x);
}

/*
 * L2 on residuals with row biases: the query's one table (entries
 * -2 <q_b, center>), the leaf's base |q - c|^2 and the row's bias
 * |r~|^2 + 2 <c, r~> add up to |q - c - r~|^2, in float and, to the 8-bit
 * table's rounding, in integers; the per-leaf table of the same model
 * (row biases off) scores the same.
 */
static void
test_lut_row_bias(void)
{
	int			dim = 37,
				dpb = 3,
				n = 3000;
	ScoreahRandom r;
	float	   *x = malloc(sizeof(float) * n * dim);
	float	   *res = malloc(sizeof(float) * n * dim);
	float		q[37],
				decoded[37];
	ScoreahModelData m;
	ScoreahLutData one,
				leaf;

	scoreah_random_init(&r, 43);
	for (int i = 0; i < n * dim; i++)
		x[i] = unit_uniform(&r, -2, 2);
	for (int d = 0; d < dim; d++)
		q[d] = unit_uniform(&r, -3, 3);
	make_model(&m, dim, dpb, SCOREAH_METRIC_L2, x, n);
	m.residual = true;
	for (int d = 0; d < dim; d++)
		m.centroids[d] = unit_uniform(&r, -1, 1);
	for (int i = 0; i < n; i++)
		scoreah_model_residual(&m, x + (Size) i * dim, 0, res + (Size) i * dim);
	scoreah_pq_train(&m, res, n, 10, 78);
	scoreah_lut_alloc(&one, m.nblocks);
	scoreah_lut_alloc(&leaf, m.nblocks);

	m.rowBias = true;
	scoreah_lut_query(&m, q, &one);
	{
		double		base = scoreah_lut_leaf(&m, q, 0, &one);

		m.rowBias = false;
		scoreah_lut_query(&m, q, &leaf);	/* no table: each leaf's own */
		{
			double		leafBase = scoreah_lut_leaf(&m, q, 0, &leaf);

			for (int t = 0; t < 50; t++)
			{
				uint8		codes[13];
				double		want = 0,
							fsum,
							qsum = 0,
							lsum = 0;
				float		bias;

				scoreah_pq_encode(&m, res + t * dim, x + t * dim, NAN, codes);
				m.rowBias = true;
				bias = scoreah_pq_row_bias(&m, 0, codes);
				fsum = base - one.offset + bias;
				for (int b = 0; b < m.nblocks; b++)
				{
					int			w = ScoreahBlockWidth(&m, b);

					memcpy(decoded + b * dpb, ScoreahCodebook(&m, b) + codes[b] * w, sizeof(float) * w);
					fsum += one.flut[b * 16 + codes[b]];
					qsum += one.qlut[b * 16 + codes[b]];
					lsum += leaf.qlut[b * 16 + codes[b]];
				}
				for (int d = 0; d < dim; d++)
				{
					double		e = (double) q[d] - m.centroids[d] - decoded[d];

					want += e * e;
				}
				CHECK(fabs(fsum - want) < 1e-4 * (want + 1), "row %d: float table with bias %g, decoded %g",
					  t, fsum, want);
				/* each entry rounds by at most half a unit */
				CHECK(fabs(base + qsum / one.scale + bias - want) <= (0.5 * m.nblocks + 0.01) / one.scale,
					  "row %d: 8-bit table with bias %g, decoded %g (scale %g)",
					  t, base + qsum / one.scale + bias, want, one.scale);
				CHECK(fabs(leafBase + lsum / leaf.scale - want) <= (0.5 * m.nblocks + 0.01) / leaf.scale,
					  "row %d: the leaf's own table %g, decoded %g", t, leafBase + lsum / leaf.scale, want);
			}
		}
	}
	scoreah_lut_free(&one);
	scoreah_lut_free(&leaf);
	free_model(&m);
	free(res);
	free(x);
}

/*
 * Every entry of a table against its definition, summed in the same order:
 * within a few units in the last place for the inlined widths 1..8 (the
 * same bits on x86-64; compilers may fuse multiply-adds where the CPU has
 * them, e.g. aarch64), to rounding above (those go through the float
 * kernels).  A misplaced center or dimension is far off either way.
 */
static void
test_lut_entries_definition(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 41);
	for (int dpb = 1; dpb <= 11; dpb++)
		for (int variant = 0; variant < 6; variant++)
		{
			/*
			 * L2 on residuals (a center), L2 on whole vectors, inner product;
			 * each with the codebooks as stored and with their transposed
			 * copy (the model cache's)
			 */
			int			metric = variant % 3 < 2 ? SCOREAH_METRIC_L2 : SCOREAH_METRIC_IP;
			bool		residual = variant % 3 == 0;
			bool		transposed = variant >= 3;
			int			dim = 5 * dpb + 1 + (dpb > 1 ? dpb / 2 : 0);	/* a narrower last block */
			ScoreahModelData m;
			ScoreahLutData lut,
						plain;
			float	   *q = malloc(sizeof(float) * dim);
			float	   *center = malloc(sizeof(float) * dim);

			memset(&m, 0, sizeof(m));
			m.dim = dim;
			m.dpb = dpb;
			m.metric = metric;
			m.nblocks = (dim + dpb - 1) / dpb;
			m.codebooks = malloc(sizeof(float) * 16 * dim);
			for (int i = 0; i < 16 * dim; i++)
				m.codebooks[i] = unit_uniform(&r, -3, 3);
			for (int d = 0; d < dim; d++)
			{
				q[d] = unit_uniform(&r, -2, 2);
				center[d] = unit_uniform(&r, -1, 1);
			}
			scoreah_lut_alloc(&lut, m.nblocks);
			scoreah_lut_alloc(&plain, m.nblocks);
			scoreah_lut_build(&m, q, residual ? center : NULL, &plain);
			if (transposed)
			{
				m.codebooksT = malloc(sizeof(float) * 16 * dim);
				scoreah_transpose_codebooks(&m, m.codebooksT);
			}
			scoreah_lut_build(&m, q, residual ? center : NULL, &lut);
			for (int b = 0; b < m.nblocks; b++)
			{
				int			w = ScoreahBlockWidth(&m, b);
				const float *cb = ScoreahCodebook(&m, b);

#ifdef SCOREAH_X86
				/* where the per-center loops inline, the same bits either way */
				if (transposed && w <= 8)
					CHECK(memcmp(lut.flut + b * 16, plain.flut + b * 16, 16 * sizeof(float)) == 0,
						  "dpb %d variant %d block %d: transposed table differs", dpb, variant, b);
#endif

				for (int j = 0; j < 16; j++)
				{
					float		s = 0;
					float		got = lut.flut[b * 16 + j];

					for (int d = 0; d < w; d++)
					{
						if (metric == SCOREAH_METRIC_L2)
						{
							float		rd = residual ? q[b * dpb + d] - center[b * dpb + d] : q[b * dpb + d];
							float		diff = rd - cb[j * w + d];

							s += diff * diff;
						}
						else
							s += q[b * dpb + d] * cb[j * w + d];
					}
					if (metric != SCOREAH_METRIC_L2)
						s = -s;
					CHECK(fabsf(got - s) <= (w <= 8 || transposed ? 4 * FLT_EPSILON : 1e-5f) * (fabsf(s) + 1),
						  "dpb %d variant %d block %d entry %d: %.9g, expected %.9g",
						  dpb, variant, b, j, got, s);
				}
			}
			scoreah_lut_free(&lut);
			scoreah_lut_free(&plain);
			free(m.codebooks);
			free(m.codebooksT);
			free(q);
			free(center);
		}
}

/* routing scores are the metric's distances to the centroids */
static void
test_route_scores(void)
{
	int			dim = 20,
				k = 50;
	ScoreahRandom r;
	ScoreahModelData m;
	float		q[20],
				scores[50],
				qscores[50];
	int			agree = 0;

	scoreah_random_init(&r, 41);
	memset(&m, 0, sizeof(m));
	m.dim = dim;
	m.nleaves = k;
	m.centroids = malloc(sizeof(float) * k * dim);
	m.centroidNorms = malloc(sizeof(float) * k);
	m.qcentroids = malloc(k * dim);
	m.qscales = malloc(sizeof(float) * dim);
	for (int i = 0; i < k * dim; i++)
		m.centroids[i] = unit_uniform(&r, -1, 1);
	for (int j = 0; j < k; j++)
		m.centroidNorms[j] = (float) scoreah_exact_dot(m.centroids + j * dim, m.centroids + j * dim, dim);
	for (int d = 0; d < dim; d++)
		q[d] = unit_uniform(&r, -1, 1);
	for (int metric = SCOREAH_METRIC_L2; metric <= SCOREAH_METRIC_IP; metric++)
	{
		m.metric = metric;
		m.quantizeCentroids = false;
		scoreah_route_scores(&m, q, scores);
		for (int j = 0; j < k; j++)
		{
			double		want = metric == SCOREAH_METRIC_L2 ?
				pow(scoreah_exact_l2(q, m.centroids + j * dim, dim), 2) :
				-scoreah_exact_dot(q, m.centroids + j * dim, dim);

			CHECK(fabs(scores[j] - want) < 1e-4 * (fabs(want) + 1), "metric %d leaf %d: %g vs %g",
				  metric, j, scores[j], want);
		}
		/* a share of a leaf's spread adds to L2 scores, nothing to IP */
		{
			float		spread[50],
						sscores[50];

			for (int j = 0; j < k; j++)
				spread[j] = unit_uniform(&r, 0, 2);
			m.leafSpread = spread;
			m.spreadWeight = 0.375f;
			scoreah_route_scores(&m, q, sscores);
			m.leafSpread = NULL;
			m.spreadWeight = 0;
			for (int j = 0; j < k; j++)
			{
				double		want = scores[j] + (metric == SCOREAH_METRIC_L2 ? 0.375 * spread[j] : 0);

				CHECK(fabs(sscores[j] - want) < 1e-5 * (fabs(want) + 1),
					  "metric %d leaf %d with spread %g: %g vs %g", metric, j, spread[j],
					  sscores[j], want);
			}
		}
		/*
		 * int8 centroids: close scores, mostly the same nearest leaves
		 * (through the integer kernel even where the kernel set would
		 * route by the float centroids: the portable one)
		 */
		scoreah_quantize_centroids(&m);
		m.quantizeCentroids = true;
		{
			bool		saved = scoreah_int8_routing;

			scoreah_int8_routing = true;
			scoreah_route_scores(&m, q, qscores);
			scoreah_int8_routing = saved;
		}
		for (int j = 0; j < k; j++)
			CHECK(fabs(qscores[j] - scores[j]) < 0.05 * (fabs(scores[j]) + 1),
				  "metric %d leaf %d: int8 score %g, float %g", metric, j, qscores[j], scores[j]);
		{
			int			o1[50],
						o2[50];

			for (int j = 0; j < k; j++)
				o1[j] = o2[j] = j;
			scoreah_order_smallest(scores, o1, k, 5);
			scoreah_order_smallest(qscores, o2, k, 5);
			for (int i = 0; i < 5; i++)
				for (int i2 = 0; i2 < 5; i2++)
					agree += o1[i] == o2[i2];
		}
	}
	CHECK(agree >= 8, "int8 routing keeps only %d of the 10 nearest leaves", agree);
	free(m.centroids);
	free(m.centroidNorms);
	free(m.qcentroids);
	free(m.qscales);
}

const UnitTestEntry unit_tests_pq[] = {
	{"pq: parallel cost multiplier eta", test_parallel_cost_multiplier},
	{"pq: anisotropic encoding against brute force (3 blocks)", test_anisotropic_vs_brute_force},
	{"lut: table sums score the decoded vector (L2 residual, IP)", test_lut_scores_codes},
	{"lut: L2 row biases: one table a query scores as the leaf's own table", test_lut_row_bias},
	{"lut: every entry as its definition, widths 1..11, L2 residual and whole, IP, codebooks transposed or not", test_lut_entries_definition},
	{"route: scores are distances to centroids (plus a share of the spread); int8 routing close", test_route_scores},
	{NULL, NULL}
};
