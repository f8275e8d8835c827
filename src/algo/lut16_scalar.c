/*-------------------------------------------------------------------------
 *
 * lut16_scalar.c
 *	  The portable LUT16 kernel, which every SIMD kernel must match bit for
 *	  bit.
 *
 * A group of 32 rows stores, for each PQ block, 16 bytes: byte m holds
 * the 4-bit code of row m in its low nibble and of row m + 16 in its high
 * nibble (ScaNN's LUT16 layout).  A kernel adds, for each row, the lookup
 * table entry its code selects in every block, and returns which rows'
 * sums are within the scan's limit.  The tables are 8-bit, so the sums are
 * exact integers and every kernel gives the same ones and the same mask.
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

void
scoreah_lut16_add_block(const uint8 *codes, const uint8 *qlut, uint32 *out)
{
	for (int m = 0; m < 16; m++)
	{
		out[m] += qlut[codes[m] & 0x0F];
		out[m + 16] += qlut[codes[m] >> 4];
	}
}

uint32
scoreah_lut16_scan_scalar(const uint8 *codes, const uint8 *qlut, int nblocks,
						  uint32 *out, uint32 limit, const uint8 *next)
{
	/* next is not prefetched: this kernel is compute-bound, 10x the SIMD ones */
	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int b = 0; b < nblocks; b++)
		scoreah_lut16_add_block(codes + b * 16, qlut + b * SCOREAH_CENTERS, out);
	return scoreah_lut16_mask_scalar(out, limit);
}

uint32
scoreah_lut16_min_masked_scalar(const uint32 *sums, uint32 mask)
{
	uint32		least = PG_UINT32_MAX;

	for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
		if (((mask >> i) & 1) && sums[i] < least)
			least = sums[i];
	return least;
}

const ScoreahLut16Impl scoreah_lut16_scalar =
{
	"scalar", scoreah_lut16_scan_scalar, scoreah_lut16_min_masked_scalar
};
