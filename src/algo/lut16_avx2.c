/*-------------------------------------------------------------------------
 *
 * lut16_avx2.c
 *	  LUT16 kernel for AVX2: one 32-byte load covers two blocks, one per
 *	  128-bit lane (vpshufb looks up within lanes).
 *
 * The two lanes accumulate even and odd blocks in 16-bit sums: the
 * looked-up bytes are added as 16-bit words (an even row's entry plus 256
 * times the odd row's) beside the odd rows' entries alone, two additions
 * and one more instruction per 32 bytes where widening each half costs
 * four; every LUT16_CHUNK block pairs the sums are separated, widened and
 * added into the 32-bit results in registers.  An odd last block goes
 * through the portable step; the admission mask comes last
 * (scoreah_lut16_admit_avx2).
 *
 * The odd rows' entries come from vpmaddubsw against 0, 1 byte pairs
 * rather than a 16-bit shift by 8: on AMD Zen 3 shifts share two pipes
 * with the shuffles, which the multiply-add leaves alone, and the loop
 * takes two block pairs a turn, so that GCC 12 keeps the accumulators in
 * place (one pair a turn, it copied four registers a step).  In memory,
 * against the shift and one pair a turn: 2.5% less time a row at 50
 * blocks, 5% at 64, 7-8% at 192 and 384, 7% more at 16 (Zen 3).
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>

/* out[0..7] = (or +=) the sums of acc's two lanes, widened to 32 bits */
__attribute__((target("avx2")))
static inline void
FoldRows8(uint32 *out, __m256i acc, bool add)
{
	__m256i		r = _mm256_add_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(acc)),
									 _mm256_cvtepu16_epi32(_mm256_extracti128_si256(acc, 1)));

	if (add)
		r = _mm256_add_epi32(r, _mm256_loadu_si256((const __m256i *) out));
	_mm256_storeu_si256((__m256i *) out, r);
}

/*
 * One block pair (32 code bytes, the table's two 16-byte blocks) into the
 * accumulators: whole 16-bit words, each an even row's entry plus 256
 * times the next row's (wrapping), and the odd rows' entries alone.
 */
#define LUT16_PAIR(cp, tp) \
do { \
	__m256i		c = _mm256_loadu_si256((const __m256i *) (cp)); \
	__m256i		t = _mm256_loadu_si256((const __m256i *) (tp)); \
	__m256i		lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask)); \
	__m256i		hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask)); \
	acc0 = _mm256_add_epi16(acc0, lo); \
	acc1 = _mm256_add_epi16(acc1, _mm256_maddubs_epi16(lo, odd)); \
	acc2 = _mm256_add_epi16(acc2, hi); \
	acc3 = _mm256_add_epi16(acc3, _mm256_maddubs_epi16(hi, odd)); \
} while (0)

__attribute__((target("avx2")))
uint32
scoreah_lut16_scan_avx2(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out,
						uint32 limit, const uint8 *next)
{
	const uint8 *pf = LUT16_PREFETCH_BASE(next, codes);
	const __m256i mask = _mm256_set1_epi8(0x0F);
	const __m256i odd = _mm256_set1_epi16(0x0100);	/* bytes 0, 1: the odd byte */
	int			npairs = nblocks / 2;

	if (npairs == 0)
		memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int p0 = 0; p0 < npairs; p0 += LUT16_CHUNK)
	{
		int			p1 = Min(npairs, p0 + LUT16_CHUNK);
		int			p = p0;
		__m256i		acc0 = _mm256_setzero_si256();
		__m256i		acc1 = _mm256_setzero_si256();
		__m256i		acc2 = _mm256_setzero_si256();
		__m256i		acc3 = _mm256_setzero_si256();
		__m256i		even;

		for (; p + 2 <= p1; p += 2)
		{
			__builtin_prefetch(pf + p * 32);	/* a line a turn */
			LUT16_PAIR(codes + p * 32, qlut + p * 32);
			LUT16_PAIR(codes + p * 32 + 32, qlut + p * 32 + 32);
		}
		if (p < p1)
			LUT16_PAIR(codes + p * 32, qlut + p * 32);

		/*
		 * The even rows' sums are the whole words' less 256 times the odd
		 * rows' (modulo 2^16, exact: a sum of at most LUT16_CHUNK entries
		 * fits 16 bits).  Interleaved back, each 128-bit lane holds rows
		 * 8I..8I+7 summed over its block (lane 0 the even blocks, lane 1
		 * the odd ones); widen both to 32 bits (their sum can pass 16) and
		 * add them in registers; the first chunk stores, the others add.
		 */
		even = _mm256_sub_epi16(acc0, _mm256_slli_epi16(acc1, 8));
		FoldRows8(out, _mm256_unpacklo_epi16(even, acc1), p0 > 0);
		FoldRows8(out + 8, _mm256_unpackhi_epi16(even, acc1), p0 > 0);
		even = _mm256_sub_epi16(acc2, _mm256_slli_epi16(acc3, 8));
		FoldRows8(out + 16, _mm256_unpacklo_epi16(even, acc3), p0 > 0);
		FoldRows8(out + 24, _mm256_unpackhi_epi16(even, acc3), p0 > 0);
	}
	LUT16_PREFETCH_TAIL(pf, nblocks);
	if (nblocks & 1)
		scoreah_lut16_add_block(codes + (nblocks - 1) * 16, qlut + (nblocks - 1) * 16, out);
	return scoreah_lut16_admit_avx2(out, limit);
}
#undef LUT16_PAIR

/*
 * The least of the sums in mask for AVX2 (ScoreahLut16MinKernel, the
 * AVX-512 kernel's partner too): eight sums a step, the lanes outside
 * mask made all ones, which no unsigned minimum takes; a whole group (the
 * usual case: every row rejected) needs no lane mask.
 */
__attribute__((target("avx2")))
uint32
scoreah_lut16_min_masked_avx2(const uint32 *sums, uint32 mask)
{
	const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
	__m256i		least;
	__m128i		x;

	if (mask == PG_UINT32_MAX)
		least = _mm256_min_epu32(_mm256_min_epu32(_mm256_loadu_si256((const __m256i *) sums),
												  _mm256_loadu_si256((const __m256i *) (sums + 8))),
								 _mm256_min_epu32(_mm256_loadu_si256((const __m256i *) (sums + 16)),
												  _mm256_loadu_si256((const __m256i *) (sums + 24))));
	else
	{
		least = _mm256_set1_epi32(-1);
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i += 8)
		{
			__m256i		s = _mm256_loadu_si256((const __m256i *) (sums + i));
			__m256i		m = _mm256_and_si256(_mm256_set1_epi32((int) (mask >> i)), bit);

			/* s where the row's bit is set, all ones where not */
			least = _mm256_min_epu32(least,
									 _mm256_or_si256(s, _mm256_xor_si256(_mm256_cmpeq_epi32(m, bit),
																		 _mm256_set1_epi32(-1))));
		}
	}
	x = _mm_min_epu32(_mm256_castsi256_si128(least), _mm256_extracti128_si256(least, 1));
	x = _mm_min_epu32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
	x = _mm_min_epu32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
	return (uint32) _mm_cvtsi128_si32(x);
}
#endif							/* SCOREAH_X86 */
