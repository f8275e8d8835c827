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

/*
 * The admission limit as a signed 32-bit number.  A group's sums are at
 * most 255 times the blocks a page can hold, far below 2^31, so "sum <=
 * limit" is the same test with the limit clamped to INT32_MAX, and the
 * kernels compare with the signed instructions every instruction set has.
 */
static inline int32
scoreah_lut16_limit(uint32 limit)
{
	return limit > (uint32) INT32_MAX ? INT32_MAX : (int32) limit;
}

/* The portable admission mask of 32 sums (the kernels' reference) */
static inline uint32
scoreah_lut16_mask_scalar(const uint32 *out, uint32 limit)
{
	uint32		below = 0;

	for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
		below |= (uint32) (out[i] <= limit) << i;
	return below;
}

extern uint32 scoreah_lut16_scan_scalar(const uint8 *codes, const uint8 *qlut,
										int nblocks, uint32 *out, uint32 limit, const uint8 *next);
extern uint32 scoreah_lut16_min_masked_scalar(const uint32 *sums, uint32 mask);
/*
 * The line a SIMD kernel prefetches next to codes it reads at offset off:
 * the same offset of the next group, or of this group's own codes (already
 * in cache: no branch per step) when there is none.
 */
#define LUT16_PREFETCH_BASE(next, codes)	((next) ? (next) : (codes))
/* the last line of the next group's codes, which the strided prefetches may miss */
#define LUT16_PREFETCH_TAIL(pf, nblocks)	__builtin_prefetch((pf) + (nblocks) * 16 - 1)

/* The sums of one block, added to out (the kernels' tails use it) */
extern void scoreah_lut16_add_block(const uint8 *codes, const uint8 *qlut,
									uint32 *out);

#ifdef SCOREAH_X86
#include <immintrin.h>

/*
 * The admission mask of the 32 sums in out, eight a step, for the AVX2
 * and AVX-512 kernels.  Their sums were just stored as 256-bit words, so
 * loads of the same width come from the store buffer (one 512-bit load
 * over two such stores would wait for them); this replaced an SSE2 pass
 * outside the kernels that took about 120 instructions a group.
 */
__attribute__((target("avx2")))
static inline uint32
scoreah_lut16_admit_avx2(const uint32 *out, uint32 limit)
{
	const __m256i lim = _mm256_set1_epi32(scoreah_lut16_limit(limit));
	uint32		above = 0;

	for (int i = 0; i < SCOREAH_GROUP_ROWS; i += 8)
	{
		__m256i		s = _mm256_loadu_si256((const __m256i *) (out + i));

		above |= (uint32) _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(s, lim))) << i;
	}
	return ~above;
}

extern uint32 scoreah_lut16_scan_ssse3(const uint8 *codes, const uint8 *qlut,
									   int nblocks, uint32 *out, uint32 limit, const uint8 *next);
extern uint32 scoreah_lut16_scan_avx2(const uint8 *codes, const uint8 *qlut,
									  int nblocks, uint32 *out, uint32 limit, const uint8 *next);
extern uint32 scoreah_lut16_min_masked_avx2(const uint32 *sums, uint32 mask);
extern uint32 scoreah_lut16_scan_avx512(const uint8 *codes, const uint8 *qlut,
										int nblocks, uint32 *out, uint32 limit, const uint8 *next);
extern const ScoreahFloatKernels scoreah_float_kernels_avx2;
extern const ScoreahFloatKernels scoreah_float_kernels_avx512bw;
extern const ScoreahExactKernels scoreah_exact_kernels_avx2;
#endif

#ifdef SCOREAH_NEON
extern uint32 scoreah_lut16_scan_neon(const uint8 *codes, const uint8 *qlut,
									  int nblocks, uint32 *out, uint32 limit, const uint8 *next);
#endif

#endif							/* SCOREAH_KERNELS_H */
