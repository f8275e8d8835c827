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

static uint32
cpu_features(void)
{
	uint32		f = 0;

#ifdef SCOREAH_X86
	unsigned int eax,
				ebx,
				ecx,
				edx;

	__builtin_cpu_init();
	if (__builtin_cpu_supports("ssse3"))
		f |= CPU_SSSE3;
	if (__builtin_cpu_supports("avx2"))
		f |= CPU_AVX2;
	if (__builtin_cpu_supports("fma"))
		f |= CPU_FMA;
	if (__builtin_cpu_supports("avx512bw"))
		f |= CPU_AVX512BW;

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
	{{"scalar", scoreah_lut16_scan_scalar}, 0},
#ifdef SCOREAH_X86
	{{"ssse3", scoreah_lut16_scan_ssse3}, CPU_SSSE3},
	{{"avx2", scoreah_lut16_scan_avx2}, CPU_AVX2},
	{{"avx512bw", scoreah_lut16_scan_avx512}, CPU_AVX512BW},
#endif
#ifdef SCOREAH_NEON
	{{"neon", scoreah_lut16_scan_neon}, CPU_NEON},
#endif
};

#define RUNS(needs, have)	(((needs) & ~(have)) == 0)

int
scoreah_float_available(const ScoreahFloatKernels **sets, int max)
{
	uint32		have = cpu_features();
	int			n = 0;

	for (int i = 0; i < (int) lengthof(float_registry) && n < max; i++)
		if (RUNS(float_registry[i].needs, have))
			sets[n++] = float_registry[i].set;
	return n;
}

int
scoreah_exact_available(const ScoreahExactKernels **sets, int max)
{
	uint32		have = cpu_features();
	int			n = 0;

	for (int i = 0; i < (int) lengthof(exact_registry) && n < max; i++)
		if (RUNS(exact_registry[i].needs, have))
			sets[n++] = exact_registry[i].set;
	return n;
}

int
scoreah_lut16_available(const ScoreahLut16Impl **impls, int max)
{
	uint32		have = cpu_features();
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
ScoreahLut16Kernel scoreah_lut16_scan;
const ScoreahExactKernels *scoreah_exact_kernels;

static const char *float_name;
static const char *lut16_name;

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
	float_name = f->name;
	scoreah_exact_kernels = forceScalar ? esets[0] : esets[ne - 1];
	scoreah_lut16_scan = l->scan;
	lut16_name = l->name;
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
