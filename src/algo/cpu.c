/*-------------------------------------------------------------------------
 *
 * cpu.c
 *	  Run-time CPU dispatch: what the CPU can run, every kernel compiled
 *	  into this build, and the ones this process calls.
 *
 * The only place that asks the CPU about its features.  Kernels for other
 * instruction sets are compiled with function-level target attributes
 * (never -march=native), listed here with the features they need, and
 * chosen when the library loads: the same binary runs on any x86-64 or
 * aarch64 machine and uses what each one has.
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#include <time.h>

#ifdef SCOREAH_X86
#include <cpuid.h>
#endif

/* CPU features a kernel may need */
#define CPU_SSSE3		0x01
#define CPU_AVX2		0x02
#define CPU_FMA			0x04
#define CPU_F16C		0x08
#define CPU_AVX512BW	0x10
#define CPU_NEON		0x20
/*
 * AVX-512 without a lasting clock penalty: Ice Lake and later Intel cores,
 * AMD Zen 4 and later, told apart from Skylake-SP and Cascade Lake by
 * AVX512-VBMI2, which those lack.  On them a 512-bit multiply lowers the
 * core's clock for about 2 ms (Intel's "license 2"), longer than a query,
 * so a kernel that saves microseconds with one would slow everything after
 * it.  The LUT16 kernel needs no such care: it is timed, and adds and
 * shuffles (AVX-512 "light") cost no more than the AVX2 FMAs every query
 * already runs.
 */
#define CPU_AVX512_NOPENALTY	0x40

/*
 * What the CPU runs, asked once: cpuid is slow (a serializing instruction,
 * and under a hypervisor a trap), and scans ask for every block count.
 */
static uint32
cpu_features(void)
{
	static bool known = false;
	static uint32 features = 0;
	uint32		f = 0;
#ifdef SCOREAH_X86
	unsigned int eax,
				ebx,
				ecx,
				edx;
#endif

	if (known)
		return features;

#ifdef SCOREAH_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("ssse3"))
		f |= CPU_SSSE3;
	if (__builtin_cpu_supports("avx2"))
		f |= CPU_AVX2;
	if (__builtin_cpu_supports("fma"))
		f |= CPU_FMA;
	if (__builtin_cpu_supports("avx512bw"))
		f |= CPU_AVX512BW;
	if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi2"))
		f |= CPU_AVX512_NOPENALTY;

	/*
	 * F16C from cpuid leaf 1: clang's __builtin_cpu_supports does not know
	 * "f16c".  The OS saving the AVX registers, which F16C's VEX encoding
	 * needs too, is part of __builtin_cpu_supports("avx2").
	 */
	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0)
		f |= CPU_F16C;
#endif
#ifdef SCOREAH_NEON
	f |= CPU_NEON;				/* part of every aarch64 CPU */
#endif
	features = f;
	known = true;
	return f;
}

/* ---- registries: every kernel of this build, portable first ---- */

static const struct
{
	const ScoreahFloatKernels *set;
	uint32		needs;
}			float_registry[] =
{
	{&scoreah_float_kernels_scalar, 0},
#ifdef SCOREAH_X86
	{&scoreah_float_kernels_avx2, CPU_AVX2 | CPU_FMA},
	{&scoreah_float_kernels_avx512bw, CPU_AVX2 | CPU_FMA | CPU_AVX512_NOPENALTY},
#endif
};

static const struct
{
	const ScoreahExactKernels *set;
	uint32		needs;
}			exact_registry[] =
{
	{&scoreah_exact_kernels_scalar, 0},
#ifdef SCOREAH_X86
	{&scoreah_exact_kernels_avx2, CPU_AVX2 | CPU_F16C},
#endif
};

static const struct
{
	ScoreahLut16Impl impl;
	uint32		needs;
}			lut16_registry[] =
{
	{{"scalar", scoreah_lut16_scan_scalar, scoreah_lut16_min_masked_scalar}, 0},
#ifdef SCOREAH_X86
	{{"ssse3", scoreah_lut16_scan_ssse3, scoreah_lut16_min_masked_scalar}, CPU_SSSE3},
	{{"avx2", scoreah_lut16_scan_avx2, scoreah_lut16_min_masked_avx2}, CPU_AVX2},
	{{"avx512bw", scoreah_lut16_scan_avx512, scoreah_lut16_min_masked_avx2},
	CPU_AVX512BW | CPU_AVX2},
#endif
#ifdef SCOREAH_NEON
	{{"neon", scoreah_lut16_scan_neon, scoreah_lut16_min_masked_scalar}, CPU_NEON},
#endif
};

#define RUNS(needs, have)	(((needs) & ~(have)) == 0)

/*
 * Features the kernels may use: all the CPU has, or all but AVX-512
 * (scoreah_allow_avx512), so that one machine can run and time the path
 * a CPU without AVX-512 takes.
 */
static uint32 features_allowed = ~(uint32) 0;

static uint32
usable_features(void)
{
	return cpu_features() & features_allowed;
}

int
scoreah_float_available(const ScoreahFloatKernels **sets, int max)
{
	uint32		have = usable_features();
	int			n = 0;

	for (int i = 0; i < (int) lengthof(float_registry) && n < max; i++)
		if (RUNS(float_registry[i].needs, have))
			sets[n++] = float_registry[i].set;
	return n;
}

int
scoreah_exact_available(const ScoreahExactKernels **sets, int max)
{
	uint32		have = usable_features();
	int			n = 0;

	for (int i = 0; i < (int) lengthof(exact_registry) && n < max; i++)
		if (RUNS(exact_registry[i].needs, have))
			sets[n++] = exact_registry[i].set;
	return n;
}

int
scoreah_lut16_available(const ScoreahLut16Impl **impls, int max)
{
	uint32		have = usable_features();
	int			n = 0;

	for (int i = 0; i < (int) lengthof(lut16_registry) && n < max; i++)
		if (RUNS(lut16_registry[i].needs, have))
			impls[n++] = &lut16_registry[i].impl;
	return n;
}

/* ---- the kernels in use ---- */

ScoreahFloatKernel scoreah_dot;
ScoreahFloatKernel scoreah_l2sq;
ScoreahDotManyKernel scoreah_dot_many;
ScoreahDotCrossKernel scoreah_dot_cross;
ScoreahDotManyI8Kernel scoreah_dot_many_i8;
ScoreahLutEntriesKernel scoreah_lut_entries;
bool		scoreah_int8_routing;
ScoreahLutRangesKernel scoreah_lut_ranges;
ScoreahLutQuantizeKernel scoreah_lut_quantize_blocks;
ScoreahLut16Kernel scoreah_lut16_scan;
const ScoreahExactKernels *scoreah_exact_kernels;

static const char *float_name;
static const char *lut16_name;
static bool kernels_forced_scalar;

/*
 * Choose the kernels: for each kind the last one in its registry that the
 * CPU runs (the registries list them from slowest to fastest), or the
 * portable ones when forceScalar (for tests and for comparing kernels:
 * the exact and LUT16 kernels give the same bits either way).
 */
void
scoreah_init_kernels(bool forceScalar)
{
	const ScoreahFloatKernels *fsets[lengthof(float_registry)];
	const ScoreahExactKernels *esets[lengthof(exact_registry)];
	const ScoreahLut16Impl *limpls[lengthof(lut16_registry)];
	int			nf = scoreah_float_available(fsets, lengthof(fsets));
	int			ne = scoreah_exact_available(esets, lengthof(esets));
	int			nl = scoreah_lut16_available(limpls, lengthof(limpls));
	const ScoreahFloatKernels *f = forceScalar ? fsets[0] : fsets[nf - 1];
	const ScoreahLut16Impl *l = forceScalar ? limpls[0] : limpls[nl - 1];

	scoreah_dot = f->dot;
	scoreah_l2sq = f->l2sq;
	scoreah_dot_many = f->dot_many;
	scoreah_dot_cross = f->dot_cross;
	scoreah_dot_many_i8 = f->dot_many_i8;
	scoreah_lut_entries = f->lut_entries;
	scoreah_int8_routing = f->int8_routing;
	scoreah_lut_ranges = f->lut_ranges;
	scoreah_lut_quantize_blocks = f->lut_quantize;
	float_name = f->name;
	scoreah_exact_kernels = forceScalar ? esets[0] : esets[ne - 1];
	scoreah_lut16_scan = l->scan;
	lut16_name = l->name;
	kernels_forced_scalar = forceScalar;
}

/* ---- the LUT16 kernel for a block count, chosen by timing ---- */

#define CHOICE_GROUPS	16		/* codes of 16 groups: in L1/L2 at any width */
#define CHOICE_ROUNDS	7
#define CHOICE_MARGIN	0.95	/* a wider kernel must be 5% faster */

/* Uses of a choice after which it is timed again at once (below) */
#define CHOICE_RECHECK	16
/* Timings a choice averages (below) */
#define CHOICE_HISTORY	4
#define CHOICE_KERNELS	lengthof(lut16_registry)

/* Seconds after which a choice is timed again (below); tests change it */
static double lut16_retime_ns = 30e9;
static int	lut16_timings;		/* timings run, for the tests */

static struct
{
	int			nblocks;		/* 0: free */
	const ScoreahLut16Impl *impl;	/* in use */
	/* each kernel's time relative to the fastest, in the last timings */
	double		rel[CHOICE_HISTORY][CHOICE_KERNELS];
	int			ntimed;			/* timings run (the last CHOICE_HISTORY kept) */
	int			uses;			/* requests served, up to CHOICE_RECHECK */
	double		timedAt;		/* now_ns() of the last timing */
	bool		fixed;			/* one kernel to run: never timed */
}			lut16_choice[SCOREAH_LUT16_CHOICES];
static int	lut16_choice_next;

/*
 * Let the kernels use AVX-512 where the CPU has it (the default), or not:
 * then this process chooses, times and self-tests its kernels as on a CPU
 * without AVX-512 (scoreah.avx512_kernels, for measuring that path on a
 * machine that has both).  The LUT16 choices timed so far are forgotten,
 * since they may name a kernel no longer allowed.
 */
void
scoreah_allow_avx512(bool allow)
{
	uint32		allowed = ~(uint32) 0;

	if (!allow)
		allowed &= ~(uint32) (CPU_AVX512BW | CPU_AVX512_NOPENALTY);
	if (allowed == features_allowed)
		return;
	features_allowed = allowed;
	memset(lut16_choice, 0, sizeof(lut16_choice));
	lut16_choice_next = 0;
	scoreah_init_kernels(kernels_forced_scalar);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * Time the LUT16 kernels of this CPU (impls[0..n-1], from
 * scoreah_lut16_available) at nblocks blocks: each scores the codes of 16
 * groups (in cache, as a leaf's page is, and as far off a 64-byte line as
 * a page's codes usually are; table and sums placed as a scan places
 * them, scoreah_lut16_operands) over and over in each of seven rounds,
 * all but the portable one, which never wins (so n > 2: one more kernel
 * is not timed).  rel[k] receives kernel k's median over the rounds of its
 * time relative to the round's fastest (rel[0], the portable kernel's, 0);
 * retime_lut16 chooses from them.  (Timing only the
 * two widest, AVX2 and AVX-512, without SSSE3 between them, chose AVX-512
 * at 192 and 392 blocks in 12 and 15 of 30 backends on Zen 4, where it
 * was 11% slower; with SSSE3 taking its turn, 1 and 2 of 30.)
 * Which instruction set is fastest depends on the CPU as much as on its
 * features (on AMD Zen 4 AVX-512 was 12% slower than AVX2 at 50 blocks,
 * 11% at 192 and 392, within 5% at 64 and 512, when nothing else runs on
 * the core, and 20% faster at 192 when something does; 7% slower at 50
 * and 5% at 192 since its loop stopped copying its accumulators; on Zen 5
 * and Intel it leads from 64), and the block count decides how much of a
 * kernel runs in its tail, so it is measured, not assumed.
 *
 * The kernels take turns within a round, after an untimed round, and each
 * is judged by its median relative time, so that a stretch when the host
 * slows every kernel, or an interrupt that slows one, does not decide.
 * Timed one after the other, fastest total winning, 4 backends in 40 chose
 * AVX-512 at 50 blocks on Zen 4 with the other core busy; then none in 60.
 * Each timing covers at least 65,536 group-blocks (four passes over the
 * groups at the least): with a quarter of that, about 8 us a timing at 192
 * blocks, 4 of 20 backends on Zen 4 chose AVX-512 there, 11% slower, and
 * with half 15 of 30; then 3 in 113 (the last 2 in a run of 23), and
 * 30 of 30 in a stretch when AVX-512 was the faster (scoreah_lut16_for).
 * All kernels give the same sums.
 * About 1.7 ms at 50 blocks and 1.5 at 192 on Zen 4 (0.7 with the short
 * timings), at a block count's first scan in a backend, twice more at
 * the recheck and every 30 seconds after (scoreah_lut16_for).
 */
static void
time_lut16(const ScoreahLut16Impl *const *impls, int n, int nblocks, uint32 seed, double *rel)
{
	void	   *codesmem;
	uint8	   *codes;
	uint8	   *qlut;
	uint32	   *sums;
	void	   *operands;
	double		times[lengthof(lut16_registry)][CHOICE_ROUNDS];
	int			reps;

	Assert(n > 2);				/* scoreah_lut16_for times only a choice */
	lut16_timings++;

	codesmem = scoreah_palloc((Size) CHOICE_GROUPS * nblocks * 16 + SCOREAH_CODES_SLACK);
	codes = SCOREAH_CODES_PLACE(codesmem);
	operands = scoreah_lut16_operands(nblocks, &qlut, &sums);
	for (Size i = 0; i < (Size) CHOICE_GROUPS * nblocks * 16; i++)
		codes[i] = (uint8) ((seed = seed * 1103515245 + 12345) >> 16);
	for (int i = 0; i < nblocks * 16; i++)
		qlut[i] = (uint8) ((seed = seed * 1103515245 + 12345) >> 16);
	reps = Max(4, 65536 / (CHOICE_GROUPS * nblocks));
	for (int round = -1; round < CHOICE_ROUNDS; round++)
	{
		double		fastest = -1;

		for (int j = 1; j < n; j++)
		{
			/* the portable kernel never wins; round r starts at 1 + r % (n - 1) */
			int			k = 1 + (j - 1 + Max(round, 0)) % (n - 1);
			double		t0 = now_ns();

			for (int r = 0; r < reps; r++)
				for (int g = 0; g < CHOICE_GROUPS; g++)
					impls[k]->scan(codes + (Size) g * nblocks * 16, qlut, nblocks, sums,
								   PG_UINT32_MAX,
								   codes + (Size) ((g + 1) % CHOICE_GROUPS) * nblocks * 16);
			times[k][Max(round, 0)] = Max(now_ns() - t0, 1.0);
		}
		if (round < 0)
			continue;			/* warming up */
		for (int k = 1; k < n; k++)
			if (fastest < 0 || times[k][round] < fastest)
				fastest = times[k][round];
		for (int k = 1; k < n; k++)
			times[k][round] /= fastest;
	}
	rel[0] = 0;					/* the portable kernel: not timed */
	for (int k = 1; k < n; k++)
	{
		qsort(times[k], CHOICE_ROUNDS, sizeof(double), cmp_double);
		rel[k] = times[k][CHOICE_ROUNDS / 2];
	}
	scoreah_pfree(codesmem);
	scoreah_pfree(operands);
}

/*
 * Time the kernels for choice c once more; the kernel in use becomes the
 * one with the least mean relative time over the last CHOICE_HISTORY
 * timings, a wider kernel replacing a narrower one only when CHOICE_MARGIN
 * faster (impls[] runs from narrow to wide).
 */
static void
retime_lut16(int c, uint32 seed)
{
	const ScoreahLut16Impl *impls[lengthof(lut16_registry)];
	int			n = scoreah_lut16_available(impls, lengthof(impls));
	int			kept;
	double		best = -1;

	time_lut16(impls, n, lut16_choice[c].nblocks, seed,
			   lut16_choice[c].rel[lut16_choice[c].ntimed % CHOICE_HISTORY]);
	lut16_choice[c].ntimed++;
	lut16_choice[c].timedAt = now_ns();
	kept = Min(lut16_choice[c].ntimed, CHOICE_HISTORY);
	for (int k = 1; k < n; k++)
	{
		double		mean = 0;

		for (int t = 0; t < kept; t++)
			mean += lut16_choice[c].rel[t][k] / kept;
		if (best < 0 || mean < best * CHOICE_MARGIN)
		{
			best = mean;
			lut16_choice[c].impl = impls[k];
		}
	}
}

/*
 * The LUT16 kernel for nblocks blocks: timed (time_lut16) the first time
 * a backend asks for that block count, then found in a small table.
 *
 * Which kernel is fastest changes while a backend lives.  On an AMD EPYC
 * Zen 4 VM (session 39) AVX2 scored 192 blocks 10% faster than AVX-512
 * (2.9 against 3.25 ns a row) in some stretches and 20% slower in others
 * (4.5 against 3.7; SSSE3 13-14 ns against 7.3), on the same virtual CPU,
 * the long in-memory benchmark agreeing with the timing each time; the
 * phases changed within seconds and held, in proportion, for tens of
 * minutes, whatever the VM's other CPU did: contention for the physical
 * core from outside the VM, which slows the instruction-heavy kernels
 * most (Zen 4 splits a 512-bit instruction into two 256-bit halves, so
 * the AVX-512 kernel issues half the instructions for the same work).
 * The faster kernel flipped from one second to the next (at 192 blocks
 * AVX-512 was the faster in 40% of 150 moments one stretch, 60% another,
 * the two 2-12% apart on average; at 50 blocks in 8%), in-cache timings
 * and in-memory benchmarks agreeing in 72-88% of the moments and in the
 * share.  So no single timing can tell which kernel will be faster; what
 * costs least on average can be estimated.  A choice is timed again at the
 * first request 30 seconds (lut16_retime_ns) after its last timing, and
 * the kernel in use is the one whose mean relative time over the last
 * CHOICE_HISTORY timings (two minutes) is least, a wider one winning by
 * CHOICE_MARGIN.  (Timed once per backend, a connection pool kept
 * whichever kernel its first scans met: 12 of 60 fresh backends chose
 * AVX-512 at 192 blocks in one stretch; one backend timing 30 times, 30
 * of 30 in another.)  The CHOICE_RECHECK-th request times the kernels
 * twice more at once, so that a first timing a busy moment misled weighs
 * a third until the next period (AVX-512 at 50 blocks in 1 and in 8 of
 * the 144 backends of two GloVe benchmark runs, both cores busy, before
 * such a recheck).  A timing
 * takes about 1.7 ms at 50 blocks: every 30 seconds, 0.006% of a backend
 * that scans without pause.
 */
const ScoreahLut16Impl *
scoreah_lut16_for(int nblocks, uint32 seed)
{
	const ScoreahLut16Impl *impls[lengthof(lut16_registry)];
	int			n;
	int			c;

	/* every scan asks: the table first (not while forced scalar) */
	for (int i = 0; i < SCOREAH_LUT16_CHOICES && !kernels_forced_scalar && nblocks > 0; i++)
	{
		if (lut16_choice[i].nblocks != nblocks)
			continue;
		if (lut16_choice[i].fixed)
			return lut16_choice[i].impl;
		if (lut16_choice[i].uses < CHOICE_RECHECK &&
			++lut16_choice[i].uses == CHOICE_RECHECK)
		{
			retime_lut16(i, seed + 1);
			retime_lut16(i, seed + 2);
		}
		else if (now_ns() - lut16_choice[i].timedAt >= lut16_retime_ns)
			retime_lut16(i, seed + 3);
		return lut16_choice[i].impl;
	}
	n = scoreah_lut16_available(impls, lengthof(impls));
	if (kernels_forced_scalar || nblocks <= 0 || n == 1)
		return kernels_forced_scalar ? impls[0] : impls[n - 1];

	c = lut16_choice_next;
	lut16_choice_next = (lut16_choice_next + 1) % SCOREAH_LUT16_CHOICES;
	memset(&lut16_choice[c], 0, sizeof(lut16_choice[c]));
	lut16_choice[c].nblocks = nblocks;

	/*
	 * A kernel before the timing: the timing allocates, and an ERROR there
	 * must not leave a slot that scoreah_kernels() and the next request
	 * read with no kernel in it.
	 */
	lut16_choice[c].impl = impls[n - 1];
	/* one kernel besides the portable one: nothing to time (time_lut16) */
	lut16_choice[c].fixed = n <= 2;
	if (!lut16_choice[c].fixed)
		retime_lut16(c, seed);
	return lut16_choice[c].impl;
}

/*
 * Time a backend's LUT16 choices again after this many seconds (30 unless
 * changed; 0: at every request), for the unit tests.
 */
void
scoreah_lut16_set_retime(double seconds)
{
	lut16_retime_ns = seconds * 1e9;
}

/* How many times this process has timed the LUT16 kernels */
int
scoreah_lut16_timings(void)
{
	return lut16_timings;
}

/*
 * The block counts this backend has timed the LUT16 kernels for and the
 * kernel each chose, oldest first: up to max of them; returns how many.
 * None while scoreah.force_scalar_kernels is on: the scans then use the
 * portable kernel whatever was timed.
 */
int
scoreah_lut16_choices(int *nblocks, const char **names, int max)
{
	int			n = 0;

	if (kernels_forced_scalar)
		return 0;
	for (int i = 0; i < SCOREAH_LUT16_CHOICES && n < max; i++)
	{
		int			slot = (lut16_choice_next + i) % SCOREAH_LUT16_CHOICES;

		if (lut16_choice[slot].nblocks == 0)
			continue;
		nblocks[n] = lut16_choice[slot].nblocks;
		names[n] = lut16_choice[slot].impl->name;
		n++;
	}
	return n;
}

const char *
scoreah_float_kernel_name(void)
{
	return float_name ? float_name : "none";
}

const char *
scoreah_lut16_kernel_name(void)
{
	return lut16_name ? lut16_name : "none";
}

const char *
scoreah_exact_kernel_name(void)
{
	return scoreah_exact_kernels ? scoreah_exact_kernels->name : "none";
}
