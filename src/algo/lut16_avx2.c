/*-------------------------------------------------------------------------
 *
 * lut16_avx2.c
 *	  LUT16 kernel for AVX2: one 32-byte load covers two blocks, one per
 *	  128-bit lane (vpshufb looks up within lanes).
 *
 * The two lanes accumulate even and odd blocks in 16-bit sums, folded
 * into the 32-bit results every LUT16_CHUNK block pairs; an odd last block
 * goes through the portable step.
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>

__attribute__((target("avx2")))
void
scoreah_lut16_scan_avx2(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out)
{
	const __m256i mask = _mm256_set1_epi8(0x0F);
	const __m256i zero = _mm256_setzero_si256();
	int			npairs = nblocks / 2;

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int p0 = 0; p0 < npairs; p0 += LUT16_CHUNK)
	{
		int			p1 = Min(npairs, p0 + LUT16_CHUNK);
		__m256i		acc[4];
		uint16		sums[2 * SCOREAH_GROUP_ROWS];

		for (int i = 0; i < 4; i++)
			acc[i] = _mm256_setzero_si256();
		for (int p = p0; p < p1; p++)
		{
			__m256i		c = _mm256_loadu_si256((const __m256i *) (codes + p * 32));
			__m256i		t = _mm256_loadu_si256((const __m256i *) (qlut + p * 32));
			__m256i		lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask));
			__m256i		hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask));

			acc[0] = _mm256_add_epi16(acc[0], _mm256_unpacklo_epi8(lo, zero));
			acc[1] = _mm256_add_epi16(acc[1], _mm256_unpackhi_epi8(lo, zero));
			acc[2] = _mm256_add_epi16(acc[2], _mm256_unpacklo_epi8(hi, zero));
			acc[3] = _mm256_add_epi16(acc[3], _mm256_unpackhi_epi8(hi, zero));
		}

		/*
		 * Lane layout of acc[i]: 8 sums of rows 8i'.. for the even blocks,
		 * then the same rows for the odd blocks (i' = row group of acc[i]).
		 */
		for (int i = 0; i < 4; i++)
			_mm256_storeu_si256((__m256i *) (sums + 16 * i), acc[i]);
		for (int i = 0; i < 4; i++)
			for (int r = 0; r < 8; r++)
				out[8 * i + r] += (uint32) sums[16 * i + r] + sums[16 * i + 8 + r];
	}
	if (nblocks & 1)
		scoreah_lut16_add_block(codes + (nblocks - 1) * 16, qlut + (nblocks - 1) * 16, out);
}
#endif							/* SCOREAH_X86 */
