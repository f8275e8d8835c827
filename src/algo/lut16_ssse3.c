/*-------------------------------------------------------------------------
 *
 * lut16_ssse3.c
 *	  LUT16 kernel for SSSE3: pshufb looks up 16 one-byte table entries at
 *	  once, one block per step.
 *
 * Lookups are widened to 16-bit accumulators, folded into the 32-bit sums
 * every LUT16_CHUNK blocks (kernels.h).
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>

__attribute__((target("ssse3")))
uint32
scoreah_lut16_scan_ssse3(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out,
						 uint32 limit, const uint8 *next)
{
	const uint8 *pf = LUT16_PREFETCH_BASE(next, codes);
	const __m128i lim = _mm_set1_epi32(scoreah_lut16_limit(limit));
	uint32		above = 0;
	const __m128i mask = _mm_set1_epi8(0x0F);
	const __m128i zero = _mm_setzero_si128();

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int b0 = 0; b0 < nblocks; b0 += LUT16_CHUNK)
	{
		int			b1 = Min(nblocks, b0 + LUT16_CHUNK);
		__m128i		acc[4];
		uint16		sums[SCOREAH_GROUP_ROWS];

		for (int i = 0; i < 4; i++)
			acc[i] = _mm_setzero_si128();
		for (int b = b0; b < b1; b++)
		{
			__m128i		c = _mm_loadu_si128((const __m128i *) (codes + b * 16));
			__m128i		t = _mm_loadu_si128((const __m128i *) (qlut + b * 16));
			__m128i		lo = _mm_shuffle_epi8(t, _mm_and_si128(c, mask));
			__m128i		hi = _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(c, 4), mask));

			if ((b & 3) == 0)
				__builtin_prefetch(pf + b * 16);	/* a line every 4 blocks */

			acc[0] = _mm_add_epi16(acc[0], _mm_unpacklo_epi8(lo, zero));
			acc[1] = _mm_add_epi16(acc[1], _mm_unpackhi_epi8(lo, zero));
			acc[2] = _mm_add_epi16(acc[2], _mm_unpacklo_epi8(hi, zero));
			acc[3] = _mm_add_epi16(acc[3], _mm_unpackhi_epi8(hi, zero));
		}
		for (int i = 0; i < 4; i++)
			_mm_storeu_si128((__m128i *) (sums + 8 * i), acc[i]);
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			out[i] += sums[i];
	}

	LUT16_PREFETCH_TAIL(pf, nblocks);

	/* the admission mask, four sums a step */
	for (int i = 0; i < SCOREAH_GROUP_ROWS; i += 4)
	{
		__m128i		s = _mm_loadu_si128((const __m128i *) (out + i));

		above |= (uint32) _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(s, lim))) << i;
	}
	return ~above;
}
#endif							/* SCOREAH_X86 */
