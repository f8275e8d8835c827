/*
 * test_kernels.c
 *	  The kernels: half precision, exact and float distances, lookup table
 *	  quantization, the LUT16 code layout and every LUT16 kernel this CPU
 *	  runs against the portable one.
 */
#include "unit.h"
#include "kernels.h"

/* ---- half precision ---- */

static void
test_half_all_values(void)
{
	int			nan = 0;

	for (int i = 0; i < 65536; i++)
	{
		uint16		h = (uint16) i;
		float		f = scoreah_half_to_float(h);
		uint16		back = scoreah_float_to_half(f);

		if (isnan(f))
		{
			/* NaN stays NaN, comes back quiet, keeps sign and payload */
			nan++;
			CHECK((back & 0x7C00) == 0x7C00 && (back & 0x03FF) != 0, "NaN %04x lost", i);
			CHECK((back & 0x8000) == (h & 0x8000), "NaN %04x lost its sign", i);
			CHECK((back & 0x0200) != 0, "NaN %04x not quiet after the round trip", i);
			continue;
		}
		CHECK(back == h, "half %04x -> %.9g -> %04x", i, f, back);
	}
	CHECK(nan == 2 * 1023, "%d NaN halves, expected 2046", nan);
}

static void
test_half_rounding(void)
{
	struct
	{
		float		f;
		uint16		h;
	}			cases[] = {
		{0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3C00}, {-2.0f, 0xC000},
		{65504.0f, 0x7BFF},		/* largest half */
		{65519.99f, 0x7BFF},	/* rounds down to it */
		{65520.0f, 0x7C00},		/* ties to even: infinity */
		{1e9f, 0x7C00}, {-1e9f, 0xFC00},
		{INFINITY, 0x7C00},
		{5.9604645e-08f, 0x0001},	/* smallest subnormal */
		{2.9802322e-08f, 0x0000},	/* half of it: ties to even, zero */
		{4.4703484e-08f, 0x0001},	/* 0.75 of it rounds up */
		{6.1035156e-05f, 0x0400},	/* smallest normal */
		{1.0009766f, 0x3C01},	/* 1 + 2^-10 */
		{1.00048828125f, 0x3C00},	/* 1 + 2^-11: tie, to even */
		{1.00146484375f, 0x3C02},	/* 1 + 3 * 2^-11: tie, to even */
	};

	for (int i = 0; i < (int) lengthof(cases); i++)
		CHECK(scoreah_float_to_half(cases[i].f) == cases[i].h, "%.9g -> %04x, expected %04x",
			  cases[i].f, scoreah_float_to_half(cases[i].f), cases[i].h);
}

/* ---- exact and float distances ---- */

static void
test_exact_kernels_agree(void)
{
	char		msg[256];
	int			n = scoreah_exact_selftest(11, msg, sizeof(msg));

	CHECK(n >= 1, "no exact kernel set");
	CHECK(msg[0] == '\0', "%s", msg);
}

static void
test_float_kernels_agree(void)
{
	char		msg[256];

	for (int dim = 0; dim <= 300; dim += (dim < 40 ? 1 : 37))
	{
		scoreah_float_selftest(dim, 5 + dim, msg, sizeof(msg));
		CHECK(msg[0] == '\0', "%s", msg);
	}
	scoreah_float_selftest(16000, 3, msg, sizeof(msg));
	CHECK(msg[0] == '\0', "%s", msg);
}

/* the exact distances against the textbook formulas in long double */
static void
test_exact_distances(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 3);
	for (int n = 1; n <= 64; n++)
	{
		float		a[64],
					b[64];
		long double dot = 0,
					na = 0,
					nb = 0,
					l2 = 0;

		for (int i = 0; i < n; i++)
		{
			a[i] = unit_uniform(&r, -1, 1);
			b[i] = unit_uniform(&r, -1, 1);
			dot += (long double) a[i] * b[i];
			na += (long double) a[i] * a[i];
			nb += (long double) b[i] * b[i];
			l2 += ((long double) a[i] - b[i]) * ((long double) a[i] - b[i]);
		}
		CHECK(fabsl(scoreah_exact_distance(SCOREAH_METRIC_L2, a, b, n) - sqrtl(l2)) < 1e-12,
			  "L2 at %d", n);
		CHECK(fabsl(scoreah_exact_distance(SCOREAH_METRIC_IP, a, b, n) + dot) < 1e-12,
			  "inner product at %d", n);
		CHECK(fabsl(scoreah_exact_distance(SCOREAH_METRIC_COSINE, a, b, n) -
					(1 - dot / sqrtl(na * nb))) < 1e-12, "cosine at %d", n);
		CHECK(fabsl(scoreah_exact_norm(a, n) - sqrtl(na)) < 1e-12, "norm at %d", n);
	}
	{
		float		z[3] = {0, 0, 0},
					x[3] = {1, 2, 3},
					u[3];

		CHECK(isnan(scoreah_exact_cosine(z, x, 3)), "cosine with a zero vector is not NaN");
		CHECK(scoreah_normalize(z, 3, u) == 0 && u[0] == 0 && u[2] == 0,
			  "the zero vector does not normalize to itself");
		CHECK(fabs(scoreah_normalize(x, 3, u) - sqrt(14.0)) < 1e-12 &&
			  fabs(scoreah_exact_norm(u, 3) - 1) < 1e-7, "normalize (1,2,3)");
	}
}

/*
 * A fingerprint of exact distances on fixed inputs: the same on every CPU
 * and architecture (the summation order is fixed and nothing is fused).
 * Pinned from x86-64; the aarch64 run of these tests (under qemu) must
 * give the same, as must a change to the kernels.
 */
#define EXACT_FINGERPRINT UINT64CONST(0x3236293DC575A75F)

static void
test_exact_fingerprint(void)
{
	ScoreahRandom r;
	uint64		h = UINT64CONST(0xCBF29CE484222325);
	float		a[301],
				b[301];
	uint16		ha[301];

	scoreah_random_init(&r, 2024);
	for (int n = 0; n <= 300; n++)
	{
		for (int i = 0; i < n; i++)
		{
			/* one draw per statement: argument order is unspecified in C */
			double		ma = scoreah_random_double(&r) - 0.5;
			int			ea = (int) scoreah_random_below(&r, 20) - 10;
			double		mb = scoreah_random_double(&r) - 0.5;
			int			eb = (int) scoreah_random_below(&r, 20) - 10;

			a[i] = (float) ldexp(ma, ea);
			b[i] = (float) ldexp(mb, eb);
			ha[i] = scoreah_float_to_half(a[i]);
		}
		for (int metric = SCOREAH_METRIC_L2; metric <= SCOREAH_METRIC_COSINE; metric++)
		{
			double		d[2];

			d[0] = scoreah_exact_distance(metric, a, b, n);
			d[1] = scoreah_exact_distance_half(metric, ha, b, n);
			for (int k = 0; k < 2; k++)
			{
				uint64		bits;

				memcpy(&bits, &d[k], sizeof(bits));
				if (isnan(d[k]))
					bits = 0x7FF8000000000000ULL;	/* any NaN (n = 0 cosine) */
				for (int byte = 0; byte < 8; byte++)
				{
					h ^= (bits >> (8 * byte)) & 0xFF;
					h *= UINT64CONST(0x100000001B3);
				}
			}
		}
	}
	printf("# exact distance fingerprint %016llX\n", (unsigned long long) h);
	CHECK(h == EXACT_FINGERPRINT, "fingerprint %016llX, pinned %016llX",
		  (unsigned long long) h, (unsigned long long) EXACT_FINGERPRINT);
}

/* ---- lookup tables and the code layout ---- */

static void
test_lut_quantization_bounds(void)
{
	ScoreahRandom r;

	scoreah_random_init(&r, 9);
	for (int trial = 0; trial < 200; trial++)
	{
		int			nblocks = 1 + (int) scoreah_random_below(&r, 300);
		ScoreahLutData lut;
		double		offset = 0;

		scoreah_lut_alloc(&lut, nblocks);
		for (int i = 0; i < nblocks * 16; i++)
		{
			/* spans from zero to large, and negative values (inner product) */
			float		span = trial % 5 == 0 ? 0 : (float) ldexp(1, (int) scoreah_random_below(&r, 40) - 20);

			lut.flut[i] = unit_uniform(&r, -span, span);
		}
		if (trial % 7 == 0)
			for (int j = 0; j < 16; j++)
				lut.flut[j] = 1.5f; /* a block of equal entries */
		scoreah_lut_quantize(&lut);
		CHECK(lut.scale > 0 && isfinite(lut.scale), "scale %g", lut.scale);
		for (int b = 0; b < nblocks; b++)
		{
			float		lo = lut.flut[b * 16];
			bool		zero = false;

			for (int j = 1; j < 16; j++)
				lo = Min(lo, lut.flut[b * 16 + j]);
			offset += lo;
			for (int j = 0; j < 16; j++)
			{
				float		f = lut.flut[b * 16 + j];
				double		back = lo + lut.qlut[b * 16 + j] / (double) lut.scale;

				float		v = rintf((f - lo) * lut.scale);
				uint8		want = (uint8) Max(0.0f, Min(255.0f, v));

				/* the definition, to the bit, whatever instructions compute it */
				CHECK(lut.qlut[b * 16 + j] == want, "block %d entry %d: %u, expected %u", b, j,
					  lut.qlut[b * 16 + j], want);
				zero |= lut.qlut[b * 16 + j] == 0;
				/* each entry within half a step (and float rounding) */
				CHECK(fabs(back - f) <= 0.5 / lut.scale * (1 + 1e-5) + 1e-6 * fabs(f),
					  "block %d entry %d: %g vs %g (step %g)", b, j, f, back, 1 / lut.scale);
			}
			CHECK(zero, "block %d: its minimum is not 0", b);
		}
		CHECK(fabs(lut.offset - offset) <= 1e-5 * (fabs(offset) + 1), "offset %g vs %g",
			  lut.offset, offset);
		scoreah_lut_free(&lut);
	}
}

static void
test_pack_unpack(void)
{
	ScoreahRandom r;
	int			nblocks = 77;
	uint8		group[77 * 16];
	uint8		codes[32][77];

	scoreah_random_init(&r, 4);
	memset(group, 0, sizeof(group));
	for (int row = 0; row < 32; row++)
	{
		for (int b = 0; b < nblocks; b++)
			codes[row][b] = (uint8) scoreah_random_below(&r, 16);
		scoreah_pack_codes(group, row, codes[row], nblocks);
	}
	for (int row = 0; row < 32; row++)
		for (int b = 0; b < nblocks; b++)
			CHECK(scoreah_unpack_code(group, row, b) == codes[row][b], "row %d block %d", row, b);

	/* overwriting one row (slot reuse) leaves the other 31 alone */
	for (int b = 0; b < nblocks; b++)
		codes[20][b] = (uint8) (15 - codes[20][b]);
	scoreah_pack_codes(group, 20, codes[20], nblocks);
	for (int row = 0; row < 32; row++)
		for (int b = 0; b < nblocks; b++)
			CHECK(scoreah_unpack_code(group, row, b) == codes[row][b], "after rewrite: row %d block %d", row, b);

	/* the layout itself: row m low nibble, row m + 16 high nibble */
	CHECK((group[5 * 16 + 3] & 0x0F) == codes[3][5] && (group[5 * 16 + 3] >> 4) == codes[19][5],
		  "nibble layout");
}

/* scoring through the table equals the sum of the entries the codes select */
static void
test_lut16_matches_definition(void)
{
	ScoreahRandom r;
	int			nblocks = 40;
	uint8		group[40 * 16],
				qlut[40 * 16];
	uint8		codes[32][40];
	uint32		sums[32];

	scoreah_random_init(&r, 8);
	memset(group, 0, sizeof(group));
	for (int i = 0; i < nblocks * 16; i++)
		qlut[i] = (uint8) scoreah_random_below(&r, 256);
	for (int row = 0; row < 32; row++)
	{
		for (int b = 0; b < nblocks; b++)
			codes[row][b] = (uint8) scoreah_random_below(&r, 16);
		scoreah_pack_codes(group, row, codes[row], nblocks);
	}
	CHECK(scoreah_lut16_scan(group, qlut, nblocks, sums, PG_UINT32_MAX, NULL) == PG_UINT32_MAX,
		  "a limit of UINT32_MAX left rows out");
	for (int row = 0; row < 32; row++)
	{
		uint32		want = 0;

		for (int b = 0; b < nblocks; b++)
			want += qlut[b * 16 + codes[row][b]];
		CHECK(sums[row] == want, "row %d: %u, expected %u", row, sums[row], want);
	}
}

/*
 * Every kernel, every block count from 1 to 1025, random and saturated
 * tables; then counts past the AVX-512 kernel's first chunk (LUT16_CHUNK
 * quads), where later chunks add to the sums, up to the most the SQL
 * functions take.
 */
static void
test_lut16_kernels_bit_for_bit(void)
{
	const ScoreahLut16Impl *impls[8];
	int			nimpl = scoreah_lut16_available(impls, lengthof(impls));
	const int	more[] = {4 * LUT16_CHUNK + 4, 8 * LUT16_CHUNK + 3, 12 * LUT16_CHUNK + 1, 4096};
	char		msg[256];

	CHECK(nimpl >= 1 && strcmp(impls[0]->name, "scalar") == 0, "scalar kernel missing");
	for (int i = 0; i < 1025 + (int) lengthof(more); i++)
	{
		int			nblocks = i < 1025 ? i + 1 : more[i - 1025];

		scoreah_lut16_selftest(nblocks, nblocks < 64 ? 8 : 2, 1000 + nblocks, false,
							   msg, sizeof(msg));
		CHECK(msg[0] == '\0', "%s", msg);
		scoreah_lut16_selftest(nblocks, 1, 77, true, msg, sizeof(msg));
		CHECK(msg[0] == '\0', "%s", msg);
	}
	printf("# LUT16 kernels compared:");
	for (int i = 0; i < nimpl; i++)
		printf(" %s", impls[i]->name);
	printf("\n");
}

/*
 * The largest sums do not overflow: 16-bit accumulators folded every
 * LUT16_CHUNK blocks, 32-bit sums up to the most blocks a page can hold.
 */
static void
test_lut16_no_overflow(void)
{
	const ScoreahLut16Impl *impls[8];
	int			nimpl = scoreah_lut16_available(impls, lengthof(impls));
	int			nblocks = 4 * LUT16_CHUNK + 3;
	uint8	   *codes = malloc(nblocks * 16);
	uint8	   *qlut = malloc(nblocks * 16);
	uint32		out[32];

	memset(codes, 0xFF, nblocks * 16);	/* every row picks entry 15 */
	memset(qlut, 255, nblocks * 16);
	for (int k = 0; k < nimpl; k++)
	{
		uint32		mask = impls[k]->scan(codes, qlut, nblocks, out, 255u * nblocks - 1, NULL);

		for (int row = 0; row < 32; row++)
			CHECK(out[row] == 255u * nblocks, "%s row %d: %u, expected %u", impls[k]->name,
				  row, out[row], 255u * nblocks);
		CHECK(mask == 0, "%s: largest sums under a limit one below them: %08x", impls[k]->name, mask);
		mask = impls[k]->scan(codes, qlut, nblocks, out, 255u * nblocks, qlut);
		CHECK(mask == PG_UINT32_MAX, "%s: largest sums at their own limit: %08x", impls[k]->name, mask);
	}
	free(codes);
	free(qlut);
}

/*
 * Every kernel's admission mask against a per-row comparison of the sums
 * it gave: limits at the ends of the range (0, the sign bit, UINT32_MAX),
 * ties with a row's sum and random ones, at block counts with and without
 * a kernel's tail.
 */
static void
test_lut16_below(void)
{
	const ScoreahLut16Impl *impls[8];
	int			nimpl = scoreah_lut16_available(impls, lengthof(impls));
	const uint32 edges[] = {0, 1, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 0xFFFFFFFEu, 0xFFFFFFFFu};
	const int	counts[] = {1, 2, 3, 4, 5, 7, 8, 16, 25, 50, 51, 64, 97};
	ScoreahRandom r;
	uint8		codes[97 * 16];
	uint8		qlut[97 * 16];

	scoreah_random_init(&r, 21);
	for (int trial = 0; trial < 4000; trial++)
	{
		int			nblocks = counts[trial % lengthof(counts)];
		uint32		sums[SCOREAH_GROUP_ROWS];
		uint32		limit;

		for (int i = 0; i < nblocks * 16; i++)
		{
			codes[i] = (uint8) scoreah_random_below(&r, 256);
			/* small entries too, so that many rows tie */
			qlut[i] = (uint8) scoreah_random_below(&r, trial % 3 == 0 ? 4 : 256);
		}
		scoreah_lut16_scalar.scan(codes, qlut, nblocks, sums, PG_UINT32_MAX, NULL);
		if (trial < 3 * (int) lengthof(edges))
			limit = edges[trial % lengthof(edges)];
		else if (trial % 2 == 0)
			limit = sums[scoreah_random_below(&r, SCOREAH_GROUP_ROWS)];	/* a tie */
		else
			limit = (uint32) scoreah_random_below(&r, 256u * nblocks);
		for (int k = 0; k < nimpl; k++)
		{
			/* half the trials with a next group to prefetch (the table's bytes) */
			uint32		got = impls[k]->scan(codes, qlut, nblocks, sums, limit,
											 trial % 2 ? qlut : NULL);
			uint32		want = 0;

			for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
				want |= (uint32) (sums[i] <= limit) << i;
			CHECK(got == want, "%s, %d blocks, limit %u: mask %08x, expected %08x",
				  impls[k]->name, nblocks, limit, got, want);
		}
	}
}

/*
 * Every kernel's partner for the least of the sums in a mask, against a
 * loop: no row (PG_UINT32_MAX), each single row, all rows, the rejected
 * rows of an admission and random subsets, on sums with ties and with
 * the largest values a group can reach.
 */
static void
test_lut16_min_masked(void)
{
	const ScoreahLut16Impl *impls[8];
	int			nimpl = scoreah_lut16_available(impls, lengthof(impls));
	ScoreahRandom r;

	scoreah_random_init(&r, 23);
	for (int trial = 0; trial < 3000; trial++)
	{
		uint32		sums[SCOREAH_GROUP_ROWS];
		uint32		mask;
		uint32		want = PG_UINT32_MAX;

		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			sums[i] = trial % 4 == 0 ? (uint32) scoreah_random_below(&r, 3) :
				trial % 4 == 1 ? 0x7FFFFFFFu - (uint32) scoreah_random_below(&r, 5) :
				(uint32) scoreah_random_below(&r, 255u * 1024);
		if (trial < 34)
			mask = trial == 0 ? 0 : trial == 1 ? PG_UINT32_MAX : (uint32) 1 << (trial - 2);
		else if (trial % 2 == 0)
			mask = ~scoreah_lut16_mask_scalar(sums, sums[trial % SCOREAH_GROUP_ROWS]);
		else
			mask = (uint32) scoreah_random_next(&r);
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			if (((mask >> i) & 1) && sums[i] < want)
				want = sums[i];
		for (int k = 0; k < nimpl; k++)
		{
			uint32		got = impls[k]->min_masked(sums, mask);

			CHECK(got == want, "%s, mask %08x: least %u, expected %u",
				  impls[k]->name, mask, got, want);
		}
	}
}

/* finite or not, at every position of short and long vectors */
static void
test_all_finite(void)
{
	const float bads[] = {NAN, -NAN, INFINITY, -INFINITY};
	const float goods[] = {0.0f, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f, -1e-45f, 1.0f};
	float		x[40] = {0};

	for (int n = 0; n <= 40; n++)
	{
		for (int i = 0; i < n; i++)
			x[i] = goods[i % lengthof(goods)];
		CHECK(scoreah_all_finite(x, n), "n %d: finite vector reported non-finite", n);
		for (int at = 0; at < n; at++)
			for (int k = 0; k < (int) lengthof(bads); k++)
			{
				float		keep = x[at];

				x[at] = bads[k];
				CHECK(!scoreah_all_finite(x, n), "n %d: %g at %d not found", n, bads[k], at);
				x[at] = keep;
			}
	}
}

/* the dispatch picks the last kernel of each registry, or scalar when forced */
static void
test_dispatch(void)
{
	const ScoreahLut16Impl *impls[8];
	int			n = scoreah_lut16_available(impls, lengthof(impls));

	scoreah_init_kernels(true);
	CHECK(strcmp(scoreah_lut16_kernel_name(), "scalar") == 0 &&
		  strcmp(scoreah_float_kernel_name(), "scalar") == 0 &&
		  strcmp(scoreah_exact_kernel_name(), "scalar") == 0, "forced scalar");
	scoreah_init_kernels(false);
	CHECK(strcmp(scoreah_lut16_kernel_name(), impls[n - 1]->name) == 0,
		  "dispatched %s, best available %s", scoreah_lut16_kernel_name(), impls[n - 1]->name);
}

/*
 * Without AVX-512 allowed, nothing chosen, listed, timed or dispatched
 * needs it, and the timed choices made before are forgotten; allowed
 * again, the kernels are what they were.
 */
static void
test_without_avx512(void)
{
	const ScoreahLut16Impl *impls[8];
	int			n;
	int			nb[16];
	const char *names[16];
	char		before[64];

	scoreah_init_kernels(false);
	snprintf(before, sizeof(before), "%s %s", scoreah_float_kernel_name(),
			 scoreah_lut16_kernel_name());
	(void) scoreah_lut16_for(64, 7);
	scoreah_allow_avx512(false);
	CHECK(scoreah_lut16_choices(nb, names, lengthof(nb)) == 0,
		  "choices timed with AVX-512 allowed are still listed");
	n = scoreah_lut16_available(impls, lengthof(impls));
	for (int k = 0; k < n; k++)
		CHECK(strstr(impls[k]->name, "avx512") == NULL, "%s available", impls[k]->name);
	CHECK(strstr(scoreah_float_kernel_name(), "avx512") == NULL &&
		  strstr(scoreah_lut16_kernel_name(), "avx512") == NULL,
		  "dispatched %s %s", scoreah_float_kernel_name(), scoreah_lut16_kernel_name());
	CHECK(strstr(scoreah_lut16_for(64, 7)->name, "avx512") == NULL &&
		  strstr(scoreah_lut16_for(392, 7)->name, "avx512") == NULL, "an AVX-512 kernel timed");
	scoreah_allow_avx512(true);
	{
		char		after[64];

		snprintf(after, sizeof(after), "%s %s", scoreah_float_kernel_name(),
				 scoreah_lut16_kernel_name());
		CHECK(strcmp(before, after) == 0, "allowed again: %s, before: %s", after, before);
	}
}

/*
 * The LUT16 kernel timed for a block count: one the CPU runs (not the
 * portable one when there is another), the same on later requests but for
 * the one recheck and the timings every period, listed by
 * scoreah_lut16_choices oldest first, at most 8 block counts remembered;
 * none listed while forced scalar.
 */
static void
test_lut16_timed_choice(void)
{
	const ScoreahLut16Impl *impls[8];
	int			n = scoreah_lut16_available(impls, lengthof(impls));
	const int	counts[] = {50, 1, 16, 25, 64, 100, 200, 392, 1025};
	const ScoreahLut16Impl *got[lengthof(counts)];
	int			nb[16];
	const char *names[16];
	int			listed;

	scoreah_init_kernels(false);
	for (int i = 0; i < (int) lengthof(counts); i++)
	{
		bool		known = false;

		got[i] = scoreah_lut16_for(counts[i], 7);
		for (int k = 0; k < n; k++)
			known |= got[i] == impls[k];
		CHECK(known, "%d blocks: %s is not a kernel of this CPU", counts[i], got[i]->name);
		CHECK(n == 1 || got[i] != impls[0], "%d blocks: the portable kernel chosen", counts[i]);
		CHECK(scoreah_lut16_for(counts[i], 99) == got[i], "%d blocks: asked again, another kernel", counts[i]);
	}

	/*
	 * Asked many times, the last block count is timed twice more at its
	 * 16th request: whatever stays is still one of this CPU's kernels,
	 * not the portable one, and the listing shows it.
	 */
	{
		int			last = (int) lengthof(counts) - 1;

		for (int u = 0; u < 40; u++)
		{
			const ScoreahLut16Impl *k = scoreah_lut16_for(counts[last], 11);
			bool		known = false;

			for (int j = 0; j < n; j++)
				known |= k == impls[j];
			CHECK(known && (n == 1 || k != impls[0]), "%d blocks, request %d: %s",
				  counts[last], u, k->name);
			CHECK(u < 20 || k == got[last], "%d blocks: the choice changed at request %d",
				  counts[last], u);
			got[last] = k;
		}
	}
	listed = scoreah_lut16_choices(nb, names, lengthof(nb));
	if (n > 1)
	{
		/* one block count more than are remembered: the first is gone */
		CHECK(lengthof(counts) == SCOREAH_LUT16_CHOICES + 1,
			  "the test needs %d block counts", SCOREAH_LUT16_CHOICES + 1);
		CHECK(listed == SCOREAH_LUT16_CHOICES, "%d choices listed, expected %d", listed,
			  SCOREAH_LUT16_CHOICES);
		for (int i = 0; i < listed && i < SCOREAH_LUT16_CHOICES; i++)
			CHECK(nb[i] == counts[i + 1] && strcmp(names[i], got[i + 1]->name) == 0,
				  "choice %d: %d blocks %s, expected %d blocks %s", i, nb[i], names[i],
				  counts[i + 1], got[i + 1]->name);
	}
	else
		CHECK(listed == 0, "%d choices listed with one kernel", listed);

	/*
	 * Timed again once its period has passed (30 seconds; 0 here: at
	 * every request), the kernel in use the least on average over the
	 * last timings: a kernel of this CPU.  Nothing is timed with one
	 * kernel besides the portable one (aarch64), nor within the period.
	 */
	{
		int			timed = scoreah_lut16_timings();
		int			timable = n > 2;
		const ScoreahLut16Impl *k;

		k = scoreah_lut16_for(counts[0], 5);	/* forgotten: timed anew */
		CHECK(scoreah_lut16_timings() == timed + timable, "%d timings for a new choice",
			  scoreah_lut16_timings() - timed);
		for (int u = 0; u < 5; u++)
			CHECK(scoreah_lut16_for(counts[0], 5) == k, "asked again within the period: %s",
				  scoreah_lut16_for(counts[0], 5)->name);
		CHECK(scoreah_lut16_timings() == timed + timable, "timed within the period");
		scoreah_lut16_set_retime(0);
		for (int u = 0; u < 4; u++)
		{
			bool		known = false;

			k = scoreah_lut16_for(counts[0], 5);
			for (int j = 0; j < n; j++)
				known |= k == impls[j];
			CHECK(known && (n == 1 || k != impls[0]), "timed again, request %d: %s", u, k->name);
		}
		CHECK(scoreah_lut16_timings() == timed + timable * 5, "%d timings, expected %d",
			  scoreah_lut16_timings() - timed, timable * 5);
		scoreah_lut16_set_retime(30);
		(void) scoreah_lut16_for(counts[0], 5);
		CHECK(scoreah_lut16_timings() == timed + timable * 5, "timed after the period was reset");
	}
	scoreah_init_kernels(true);
	CHECK(scoreah_lut16_choices(nb, names, lengthof(nb)) == 0, "choices listed while forced scalar");
	CHECK(scoreah_lut16_for(50, 7) == impls[0], "forced scalar: %s", scoreah_lut16_for(50, 7)->name);
	scoreah_init_kernels(false);
}

/*
 * The scale brings every positive finite norm to [1, 2), denormal ones
 * included, and scaling a vector by it gives finite, nonzero elements
 * (a float scale of 2^128 made a build on vectors of norm 4e-39 scale
 * every row to infinity).
 */
static void
test_unit_scale(void)
{
	const double norms[] = {1.0, 1.5, 3.0, 0.25, 1e-30, 3.7e-39, 1e-45, 1e38, 3.4e38};

	for (int i = 0; i < (int) lengthof(norms); i++)
	{
		double		s = scoreah_unit_scale(norms[i]);
		double		scaled = norms[i] * s;
		float		x[2] = {(float) norms[i], 0};
		float		y[2];

		CHECK(scaled >= 1.0 && scaled < 2.0, "norm %g scaled to %g, not in [1, 2)", norms[i], scaled);
		scoreah_scale(x, 2, s, y);
		CHECK(isfinite(y[0]) && y[0] > 0, "vector of norm %g scaled to %g", norms[i], y[0]);
	}
	CHECK(scoreah_unit_scale(0) == 1.0 && scoreah_unit_scale(INFINITY) == 1.0 &&
		  scoreah_unit_scale(NAN) == 1.0, "zero, infinite and NaN norms keep scale 1");
}

const UnitTestEntry unit_tests_kernels[] = {
	{"half: all 65536 values round-trip", test_half_all_values},
	{"half: rounding, overflow, subnormals", test_half_rounding},
	{"exact: every kernel set bit for bit (incl. F16C conversion)", test_exact_kernels_agree},
	{"exact: distances against long double formulas", test_exact_distances},
	{"exact: distances give the pinned fingerprint", test_exact_fingerprint},
	{"float: every kernel set to rounding, 0..300 and 16000 dims", test_float_kernels_agree},
	{"lut: 8-bit quantization within half a step, rounding to even", test_lut_quantization_bounds},
	{"lut: pack/unpack round trip and layout", test_pack_unpack},
	{"lut16: sums are the selected entries", test_lut16_matches_definition},
	{"lut16: every kernel bit for bit at 1..1025 blocks and past one chunk", test_lut16_kernels_bit_for_bit},
	{"lut16: no accumulator overflow at saturated tables", test_lut16_no_overflow},
	{"lut16: every kernel's admission mask at the range's ends and ties", test_lut16_below},
	{"lut16: every kernel's least of the sums in a mask", test_lut16_min_masked},
	{"float: the finite test at every position, NaN and infinities", test_all_finite},
	{"scale: every norm to [1, 2), denormal ones included", test_unit_scale},
	{"cpu: dispatch picks the best kernel, or scalar when forced", test_dispatch},
	{"cpu: the LUT16 kernel timed per block count, kept and listed", test_lut16_timed_choice},
	{"cpu: without AVX-512, no kernel needing it is chosen or timed", test_without_avx512},
	{NULL, NULL}
};
