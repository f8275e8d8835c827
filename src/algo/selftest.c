/*-------------------------------------------------------------------------
 *
 * selftest.c
 *	  Every kernel this CPU runs against the portable one: LUT16 and exact
 *	  kernels bit for bit, float kernels to rounding.
 *
 * The unit tests call these at many sizes; the server's
 * scoreah_kernel_selftest() calls them too, so a DBA can check the
 * kernels the server binary picks on the CPU it actually runs on.
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

/*
 * Compare every LUT16 kernel with the portable one on ngroups groups of
 * random codes and one table of nblocks blocks: random entries, or all
 * 255 when saturated (the largest sums, which stress the folding of the
 * 16-bit accumulators).  Even groups start on a 64-byte line, odd ones
 * SCOREAH_CODES_SKEW bytes past one, as pages place them: the AVX-512
 * kernel loads the two differently.
 */
int
scoreah_lut16_selftest(int nblocks, int ngroups, uint64 seed, bool saturated,
					   char *mismatch, Size len)
{
	const ScoreahLut16Impl *impls[8];
	int			nimpl = scoreah_lut16_available(impls, lengthof(impls));
	ScoreahRandom rng;
	Size		gbytes = (Size) nblocks * 16;
	Size		stride = TYPEALIGN(64, gbytes) + 64;
	uint8	   *codesmem = scoreah_palloc(ngroups * stride + 64);
	uint8	   *codes = (uint8 *) TYPEALIGN(64, codesmem);

	/* group g's codes: on a line when g is even, off one when odd */
#define GROUP_CODES(g) (codes + (Size) (g) * stride + ((g) & 1 ? SCOREAH_CODES_SKEW : 0))
	uint8	   *qlut = scoreah_palloc((Size) nblocks * 16);
	uint32		want[SCOREAH_GROUP_ROWS];
	uint32		got[SCOREAH_GROUP_ROWS];

	mismatch[0] = '\0';
	scoreah_random_init(&rng, seed);
	for (int g = 0; g < ngroups; g++)
		for (Size i = 0; i < gbytes; i++)
			GROUP_CODES(g)[i] = (uint8) scoreah_random_next(&rng);
	for (int i = 0; i < nblocks * 16; i++)
		qlut[i] = saturated ? 255 : (uint8) scoreah_random_next(&rng);

	for (int g = 0; g < ngroups && mismatch[0] == '\0'; g++)
	{
		const uint8 *c = GROUP_CODES(g);
		uint32		limit;
		uint32		wantMask;

		SCOREAH_CHECK_INTERRUPTS();
		scoreah_lut16_scalar.scan(c, qlut, nblocks, want, PG_UINT32_MAX, NULL);
		/* an admission limit at one of the sums: some rows in, a tie, some out */
		limit = want[g % SCOREAH_GROUP_ROWS];
		wantMask = scoreah_lut16_mask_scalar(want, limit);
		for (int k = 0; k < nimpl; k++)
		{
			/* the next group prefetched as a scan does (it changes nothing) */
			uint32		gotMask = impls[k]->scan(c, qlut, nblocks, got, limit,
												 g + 1 < ngroups ? GROUP_CODES(g + 1) : NULL);

			/* the least sum of all rows, of a random subset, of the rejected */
			uint32		rows = g % 3 == 0 ? PG_UINT32_MAX :
				g % 3 == 1 ? (uint32) scoreah_random_next(&rng) : ~wantMask;
			uint32		wantLeast = scoreah_lut16_min_masked_scalar(want, rows);
			uint32		gotLeast = impls[k]->min_masked(want, rows);

			if (memcmp(want, got, sizeof(want)) != 0 || gotMask != wantMask ||
				gotLeast != wantLeast)
			{
				snprintf(mismatch, len, "LUT16 kernel %s differs from scalar at %d blocks (%s table, group %d%s)",
						 impls[k]->name, nblocks, saturated ? "all-255" : "random", g,
						 gotMask != wantMask ? ", admission mask" :
						 gotLeast != wantLeast ? ", least of the masked sums" : "");
				break;
			}
		}
	}
#undef GROUP_CODES
	scoreah_pfree(codesmem);
	scoreah_pfree(qlut);
	return nimpl;
}

/*
 * Compare every float kernel set with the portable one at dim dimensions,
 * to rounding: the dot products of SELFTEST_ROWS vectors with 37 others,
 * one by one, a row at a time and all rows at once, and squared L2
 * distances.  Five rows and 37 others leave remainders to the cross
 * kernel's tiles.  A set's cross kernel must give its one-row kernel's
 * bits.  Bit for bit, as integer or fixed operations must: the int8
 * routing sums, and a lookup table's entries, ranges and 8-bit bytes.
 */
#define SELFTEST_ROWS	5
#define LUT_SELFTEST_MAX_WIDTH	11
#define LUT_SELFTEST_BLOCKS		3	/* a pair of blocks and one more */
#define LUT_SELFTEST_QBLOCKS	50	/* tables of 1..6, 28 and 50 blocks */

int
scoreah_float_selftest(int dim, uint64 seed, char *mismatch, Size len)
{
	const ScoreahFloatKernels *sets[4];
	const ScoreahFloatKernels *ref = &scoreah_float_kernels_scalar;
	int			nsets = scoreah_float_available(sets, lengthof(sets));
	int			k = 37;
	int			nx = SELFTEST_ROWS;
	ScoreahRandom rng;
	float	   *x = scoreah_palloc(sizeof(float) * Max(dim, 1) * nx);
	float	   *m = scoreah_palloc(sizeof(float) * Max(dim, 1) * k);
	float	   *got = scoreah_palloc(sizeof(float) * k);
	float	   *cross = scoreah_palloc(sizeof(float) * k * nx);
	float	   *want = scoreah_palloc(sizeof(float) * k);
	int8	   *m8 = scoreah_palloc(Max(dim, 1) * k);
	int16	   *x16 = scoreah_palloc(sizeof(int16) * Max(dim, 1));

	mismatch[0] = '\0';
	scoreah_random_init(&rng, seed);
	for (int i = 0; i < dim * nx; i++)
		x[i] = (float) (scoreah_random_double(&rng) * 2 - 1);
	for (int i = 0; i < dim * k; i++)
		m[i] = (float) (scoreah_random_double(&rng) * 2 - 1);
	for (int i = 0; i < dim * k; i++)
		m8[i] = (int8) (scoreah_random_next(&rng) % 255) - 127;
	for (int d = 0; d < dim; d++)
		m8[d] = (scoreah_random_next(&rng) & 1) ? 127 : -127;
	for (int s = 0; s < nsets && mismatch[0] == '\0'; s++)
	{
		sets[s]->dot_cross(x, nx, m, k, dim, cross);
		for (int i = 0; i < nx && mismatch[0] == '\0'; i++)
		{
			const float *xi = x + (Size) i * dim;

			ref->dot_many(xi, m, k, dim, want);
			sets[s]->dot_many(xi, m, k, dim, got);
			for (int j = 0; j < k; j++)
			{
				const float *r = m + (Size) j * dim;
				double		scale = sqrt((double) ref->dot(xi, xi, dim) * ref->dot(r, r, dim)) + 1e-30;
				float		d1 = sets[s]->dot(xi, r, dim);
				float		l1 = sets[s]->l2sq(xi, r, dim);
				float		l2 = ref->l2sq(xi, r, dim);

				if (fabs(got[j] - want[j]) > 1e-5 * scale || fabs(d1 - want[j]) > 1e-5 * scale ||
					fabs(l1 - l2) > 1e-5 * (l2 + 1e-30))
				{
					snprintf(mismatch, len, "float kernel %s differs from scalar at %d dimensions",
							 sets[s]->name, dim);
					break;
				}
				/* same bits: a row's nearest leaf must not depend on its company */
				if (memcmp(&cross[i * k + j], &got[j], sizeof(float)) != 0)
				{
					snprintf(mismatch, len, "float kernel %s: cross and one-row dot products differ at %d dimensions",
							 sets[s]->name, dim);
					break;
				}
			}
		}

		/*
		 * Against int8 rows (quantized centroids), every k from 0: integer
		 * sums, so the same bits; random queries, then the largest ones
		 * routing makes, signed as row 0's values (all +-127), whose sum
		 * is the largest an int32 must hold.
		 */
		for (int variant = 0; variant < 2 && mismatch[0] == '\0'; variant++)
		{
			int			qmax = scoreah_i8_query_max(dim);

			for (int d = 0; d < dim; d++)
				x16[d] = variant == 0 ?
					(int16) ((int) (scoreah_random_next(&rng) % (uint64) (2 * qmax + 1)) - qmax) :
					(int16) (m8[d] > 0 ? qmax : -qmax);
			for (int kk = 0; kk <= k && mismatch[0] == '\0'; kk += (kk < 9 ? 1 : 14))
			{
				int64		exact = 0;

				ref->dot_many_i8(x16, 0.25f, m8, kk, dim, want);
				sets[s]->dot_many_i8(x16, 0.25f, m8, kk, dim, got);
				for (int d = 0; d < dim; d++)
					exact += (int64) x16[d] * m8[d];
				if (kk > 0 && (memcmp(got, want, sizeof(float) * kk) != 0 ||
							   got[0] != 0.25f * (float) exact))
					snprintf(mismatch, len, "float kernel %s: int8 dot products differ from scalar or exact at %d dimensions, %d rows",
							 sets[s]->name, dim, kk);
			}
		}
	}

	/*
	 * A lookup table's blocks from transposed codebooks, three at every
	 * width up to 11, L2 from a residual or the whole vector and inner
	 * products: the same bits in every set.
	 */
	for (int s = 0; s < nsets && mismatch[0] == '\0'; s++)
		for (int w = 1; w <= LUT_SELFTEST_MAX_WIDTH && mismatch[0] == '\0'; w++)
			for (int variant = 0; variant < 3; variant++)
			{
				float		q[LUT_SELFTEST_MAX_WIDTH * LUT_SELFTEST_BLOCKS],
							c[LUT_SELFTEST_MAX_WIDTH * LUT_SELFTEST_BLOCKS],
							cbT[LUT_SELFTEST_MAX_WIDTH * LUT_SELFTEST_BLOCKS * SCOREAH_CENTERS],
							e1[LUT_SELFTEST_BLOCKS * SCOREAH_CENTERS],
							e2[LUT_SELFTEST_BLOCKS * SCOREAH_CENTERS];

				for (int d = 0; d < w * LUT_SELFTEST_BLOCKS; d++)
				{
					q[d] = (float) (scoreah_random_double(&rng) * 4 - 2);
					c[d] = (float) (scoreah_random_double(&rng) * 2 - 1);
				}
				for (int i = 0; i < w * LUT_SELFTEST_BLOCKS * SCOREAH_CENTERS; i++)
					cbT[i] = (float) (scoreah_random_double(&rng) * 6 - 3);
				ref->lut_entries(q, variant == 0 ? c : NULL, cbT, w, LUT_SELFTEST_BLOCKS, variant < 2, e1);
				sets[s]->lut_entries(q, variant == 0 ? c : NULL, cbT, w, LUT_SELFTEST_BLOCKS, variant < 2, e2);
				if (memcmp(e1, e2, sizeof(e1)) != 0)
				{
					snprintf(mismatch, len, "float kernel %s: lookup table entries differ from scalar at width %d (%s)",
							 sets[s]->name, w,
							 variant == 0 ? "L2 residual" : variant == 1 ? "L2" : "inner product");
					break;
				}
			}

	/*
	 * A table's ranges and 8-bit entries, odd and even block counts (the
	 * SIMD kernels take two blocks a step): the same minima, span and bytes
	 * in every set, ties and negative entries included.
	 */
	for (int s = 0; s < nsets && mismatch[0] == '\0'; s++)
		for (int nb = 1; nb <= LUT_SELFTEST_QBLOCKS && mismatch[0] == '\0'; nb += (nb < 6 ? 1 : 22))
		{
			float		flut[LUT_SELFTEST_QBLOCKS * SCOREAH_CENTERS],
						mins1[LUT_SELFTEST_QBLOCKS],
						mins2[LUT_SELFTEST_QBLOCKS],
						span1,
						span2;
			uint8		q1[LUT_SELFTEST_QBLOCKS * SCOREAH_CENTERS],
						q2[LUT_SELFTEST_QBLOCKS * SCOREAH_CENTERS];
			bool		same = true;

			for (int i = 0; i < nb * SCOREAH_CENTERS; i++)
				flut[i] = (scoreah_random_next(&rng) & 7) == 0 ? 1.5f :
					(float) (scoreah_random_double(&rng) * 8 - 3);
			span1 = ref->lut_ranges(flut, nb, mins1);
			span2 = sets[s]->lut_ranges(flut, nb, mins2);
			for (int b = 0; b < nb; b++)
				same = same && mins1[b] == mins2[b];
			ref->lut_quantize(flut, mins1, nb, 255.0f / span1, q1);
			sets[s]->lut_quantize(flut, mins1, nb, 255.0f / span1, q2);
			if (!same || span1 != span2 || memcmp(q1, q2, (Size) nb * SCOREAH_CENTERS) != 0)
				snprintf(mismatch, len, "float kernel %s: 8-bit lookup tables differ from scalar at %d blocks (%s)",
						 sets[s]->name, nb, !same ? "minima" : span1 != span2 ? "span" : "entries");
		}

	scoreah_pfree(x);
	scoreah_pfree(m);
	scoreah_pfree(got);
	scoreah_pfree(cross);
	scoreah_pfree(want);
	scoreah_pfree(m8);
	scoreah_pfree(x16);
	return nsets;
}

/*
 * A float of the given kind for the self-test: 0 uniform in [-1, 1),
 * 1 mixed magnitudes (2^-20 .. 2^20), 2 any finite float (random sign,
 * exponent and mantissa: zeros, subnormals, up to FLT_MAX, so terms of
 * one sum differ by hundreds of binary orders), 3 small integers (exact
 * sums, and many exact cancellations).
 */
static float
selftest_float(ScoreahRandom *rng, int kind)
{
	uint64		r = scoreah_random_next(rng);
	union
	{
		float		f;
		uint32		u;
	}			v;

	switch (kind)
	{
		case 0:
			return (float) (scoreah_random_double(rng) * 2 - 1);
		case 1:
			return (float) ldexp(scoreah_random_double(rng) + 1,
								 (int) (r % 41) - 20) * ((r >> 8) & 1 ? -1 : 1);
		case 2:
			v.u = (uint32) r & 0x807FFFFF;	/* sign and mantissa */
			v.u |= (uint32) ((r >> 32) % 255) << 23;	/* exponent 0..254 */
			return v.f;
		default:
			return (float) ((int) (r % 7) - 3);
	}
}

/*
 * Compare every exact kernel set this CPU runs with the portable one, bit
 * for bit: dot product, squared L2, cosine's three sums, the same from
 * half-precision vectors, and the distances the operators return; at
 * every length from 0 to 300 and a few long ones, on floats of each kind
 * of selftest_float.  Also checks that each set's half kernels give the
 * distances of the converted vectors, and the conversion of all 65536
 * halves.  Returns the number of sets compared (scalar included).
 */
int
scoreah_exact_selftest(uint64 seed, char *mismatch, Size len)
{
	static const int longLengths[] = {511, 1000, 4099, 16000};
	static const char *const kindNames[] = {
		"uniform", "mixed-magnitude", "any-finite", "small-integer"
	};
	const ScoreahExactKernels *sets[4];
	const ScoreahExactKernels *ref = &scoreah_exact_kernels_scalar;
	int			nsets = scoreah_exact_available(sets, lengthof(sets));
	int			maxlen = longLengths[lengthof(longLengths) - 1];
	ScoreahRandom rng;

	/* one spare element in front, so the vectors start unaligned */
	float	   *abuf = scoreah_palloc(sizeof(float) * (maxlen + 1));
	float	   *b = scoreah_palloc(sizeof(float) * maxlen);
	uint16	   *hbuf = scoreah_palloc(sizeof(uint16) * (maxlen + 1));
	float	   *conv = scoreah_palloc(sizeof(float) * 65536);
	float	   *want = scoreah_palloc(sizeof(float) * 65536);
	uint16	   *all = scoreah_palloc(sizeof(uint16) * 65536);

	mismatch[0] = '\0';
	scoreah_random_init(&rng, seed);

	for (int step = 0; step <= 300 + (int) lengthof(longLengths) && mismatch[0] == '\0'; step++)
	{
		int			n = step <= 300 ? step : longLengths[step - 301];

		SCOREAH_CHECK_INTERRUPTS();
		for (int kind = 0; kind < 4 && mismatch[0] == '\0'; kind++)
		{
			float	   *a = abuf + (step & 1);
			uint16	   *h = hbuf + (step & 1);

			for (int i = 0; i < n; i++)
			{
				a[i] = selftest_float(&rng, kind);
				b[i] = selftest_float(&rng, kind);
				/* finite halves: any sign, exponent 0..30, mantissa */
				h[i] = (uint16) (scoreah_random_next(&rng) & 0xFFFF);
				if ((h[i] & 0x7C00) == 0x7C00)
					h[i] &= 0xBFFF;
			}
			/* b close to a: L2 of tiny differences */
			if (kind == 0 && (step & 2))
				for (int i = 0; i < n; i++)
					b[i] = a[i] + (i % 3 == 0 ? 1e-6f : 0);

			for (int s = 0; s < nsets && mismatch[0] == '\0'; s++)
			{
				const ScoreahExactKernels *k = sets[s];
				double		want3[3],
							got3[3],
							w,
							g;
				const char *what = NULL;

				/* the kernels' sums */
				w = ref->dot(a, b, n);
				g = k->dot(a, b, n);
				if (memcmp(&w, &g, sizeof(double)) != 0)
					what = "dot product";
				w = ref->dot(a, a, n);
				g = k->dot(a, a, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "norm";
				w = ref->l2sq(a, b, n);
				g = k->l2sq(a, b, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "squared L2";
				ref->cosine(a, b, n, want3);
				k->cosine(a, b, n, got3);
				if (what == NULL && memcmp(want3, got3, sizeof(want3)) != 0)
					what = "cosine sums";
				w = ref->dot_half(h, b, n);
				g = k->dot_half(h, b, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "dot product from halves";
				w = ref->l2sq_half(h, b, n);
				g = k->l2sq_half(h, b, n);
				if (what == NULL && memcmp(&w, &g, sizeof(double)) != 0)
					what = "squared L2 from halves";
				ref->cosine_half(h, b, n, want3);
				k->cosine_half(h, b, n, got3);
				if (what == NULL && memcmp(want3, got3, sizeof(want3)) != 0)
					what = "cosine sums from halves";

				/* the operators' values, and halves against converted halves */
				k->half_to_float(h, conv, n);
				for (int metric = SCOREAH_METRIC_L2;
					 metric <= SCOREAH_METRIC_COSINE && what == NULL; metric++)
				{
					double		c;

					w = scoreah_exact_distance_with(ref, metric, a, false, b, n);
					g = scoreah_exact_distance_with(k, metric, a, false, b, n);
					if (memcmp(&w, &g, sizeof(double)) != 0)
						what = "distance";
					g = scoreah_exact_distance_with(k, metric, h, true, b, n);
					c = scoreah_exact_distance_with(k, metric, conv, false, b, n);
					if (what == NULL && memcmp(&g, &c, sizeof(double)) != 0)
						what = "distance from halves against converted halves";
				}
				if (what)
					snprintf(mismatch, len, "%s: %s at %d dimensions (%s values)",
							 k->name, what, n, kindNames[kind]);
			}
		}
	}

	/* every half, through the vector loop and (shifted) the tail */
	for (int i = 0; i < 65536; i++)
	{
		all[i] = (uint16) i;
		want[i] = scoreah_half_to_float((uint16) i);
	}
	for (int s = 0; s < nsets && mismatch[0] == '\0'; s++)
	{
		for (int shift = 0; shift < 8 && mismatch[0] == '\0'; shift++)
		{
			sets[s]->half_to_float(all + shift, conv, 65536 - shift);
			if (memcmp(conv, want + shift, sizeof(float) * (65536 - shift)) != 0)
				snprintf(mismatch, len, "%s: half to float conversion", sets[s]->name);
		}
	}

	scoreah_pfree(abuf);
	scoreah_pfree(b);
	scoreah_pfree(hbuf);
	scoreah_pfree(conv);
	scoreah_pfree(want);
	scoreah_pfree(all);
	return nsets;
}
