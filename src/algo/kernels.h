/*-------------------------------------------------------------------------
 *
 * kernels.h
 *	  The kernels of each instruction set, for cpu.c's registries and the
 *	  unit tests.  Nothing else calls them directly: everything goes
 *	  through the pointers cpu.c sets (scoreah_algo.h).
 *
 * A kernel for an instruction set the compiler cannot target is not
 * declared; one the CPU lacks is compiled but never called (cpu.c asks the
 * CPU first).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCOREAH_KERNELS_H
#define SCOREAH_KERNELS_H

#include "scoreah_algo.h"

/*
 * The LUT16 kernels fold their 16-bit accumulators into the 32-bit sums
 * every LUT16_CHUNK blocks, so no sum can overflow (entries are at most
 * 255, and 256 * 255 < 65536); the sums are exact integers, identical in
 * every kernel.
 */
#define LUT16_CHUNK 256

extern void scoreah_lut16_scan_scalar(const uint8 *codes, const uint8 *qlut,
									  int nblocks, uint32 *out);
/* The sums of one block, added to out (the kernels' tails use it) */
extern void scoreah_lut16_add_block(const uint8 *codes, const uint8 *qlut,
									uint32 *out);

#ifdef SCOREAH_X86
extern void scoreah_lut16_scan_ssse3(const uint8 *codes, const uint8 *qlut,
									 int nblocks, uint32 *out);
extern void scoreah_lut16_scan_avx2(const uint8 *codes, const uint8 *qlut,
									int nblocks, uint32 *out);
extern void scoreah_lut16_scan_avx512(const uint8 *codes, const uint8 *qlut,
									  int nblocks, uint32 *out);
extern const ScoreahFloatKernels scoreah_float_kernels_avx2;
extern const ScoreahExactKernels scoreah_exact_kernels_avx2;
#endif

#ifdef SCOREAH_NEON
extern void scoreah_lut16_scan_neon(const uint8 *codes, const uint8 *qlut,
									int nblocks, uint32 *out);
#endif

#endif							/* SCOREAH_KERNELS_H */
