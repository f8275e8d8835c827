/*-------------------------------------------------------------------------
 *
 * lut16_avx512.c
 *	  LUT16 kernel for AVX-512BW: four blocks per 64-byte load, one per
 *	  128-bit lane.
 *
 * The four lanes' 16-bit sums are added at the end of each chunk of
 * LUT16_CHUNK block quads; the last nblocks % 4 blocks go through the
 * portable step.  Compiled wherever the compiler knows the instructions,
 * called only on CPUs that report avx512bw (cpu.c).
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>

__attribute__((target("avx512bw")))
void
scoreah_lut16_scan_avx512(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out)
{
	const __m512i mask = _mm512_set1_epi8(0x0F);
	const __m512i zero = _mm512_setzero_si512();
	int			nquads = nblocks / 4;

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int p0 = 0; p0 < nquads; p0 += LUT16_CHUNK)
	{
		int			p1 = Min(nquads, p0 + LUT16_CHUNK);
		__m512i		acc[4];
		uint16		sums[4 * SCOREAH_GROUP_ROWS];

		for (int i = 0; i < 4; i++)
			acc[i] = _mm512_setzero_si512();
		for (int p = p0; p < p1; p++)
		{
			__m512i		c = _mm512_loadu_si512((const void *) (codes + p * 64));
			__m512i		t = _mm512_loadu_si512((const void *) (qlut + p * 64));
			__m512i		lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, mask));
			__m512i		hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), mask));

			acc[0] = _mm512_add_epi16(acc[0], _mm512_unpacklo_epi8(lo, zero));
			acc[1] = _mm512_add_epi16(acc[1], _mm512_unpackhi_epi8(lo, zero));
			acc[2] = _mm512_add_epi16(acc[2], _mm512_unpacklo_epi8(hi, zero));
			acc[3] = _mm512_add_epi16(acc[3], _mm512_unpackhi_epi8(hi, zero));
		}
		/* lane L of acc[i] holds rows 8i..8i+7 summed over blocks = L mod 4 */
		for (int i = 0; i < 4; i++)
			_mm512_storeu_si512((void *) (sums + 32 * i), acc[i]);
		for (int i = 0; i < 4; i++)
			for (int r = 0; r < 8; r++)
				out[8 * i + r] += (uint32) sums[32 * i + r] + sums[32 * i + 8 + r] +
					sums[32 * i + 16 + r] + sums[32 * i + 24 + r];
	}
	for (int b = nquads * 4; b < nblocks; b++)
		scoreah_lut16_add_block(codes + b * 16, qlut + b * 16, out);
}
#endif							/* SCOREAH_X86 */
