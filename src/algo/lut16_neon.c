/*-------------------------------------------------------------------------
 *
 * lut16_neon.c
 *	  LUT16 kernel for NEON (every aarch64 CPU has it): tbl looks up 16
 *	  bytes in a 16-entry table per instruction, one block per step.
 *
 * Widened to 16-bit sums that are folded into 32 bits every LUT16_CHUNK
 * blocks, as in the x86 kernels.  Checked bit for bit against the
 * portable kernel by the unit tests, on x86-64 machines under qemu.
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_NEON
#include <arm_neon.h>

uint32
scoreah_lut16_scan_neon(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out,
						uint32 limit, const uint8 *next)
{
	const uint8 *pf = LUT16_PREFETCH_BASE(next, codes);
	const uint32x4_t lim = vdupq_n_u32(limit);
	const uint32x4_t bits = {1, 2, 4, 8};
	uint32		below = 0;
	const uint8x16_t mask = vdupq_n_u8(0x0F);

	memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int b0 = 0; b0 < nblocks; b0 += LUT16_CHUNK)
	{
		int			b1 = Min(nblocks, b0 + LUT16_CHUNK);
		uint16x8_t	acc0 = vdupq_n_u16(0),
					acc1 = vdupq_n_u16(0),
					acc2 = vdupq_n_u16(0),
					acc3 = vdupq_n_u16(0);
		uint16		sums[SCOREAH_GROUP_ROWS];

		for (int b = b0; b < b1; b++)
		{
			uint8x16_t	c = vld1q_u8(codes + b * 16);
			uint8x16_t	t = vld1q_u8(qlut + b * 16);
			uint8x16_t	lo = vqtbl1q_u8(t, vandq_u8(c, mask));
			uint8x16_t	hi = vqtbl1q_u8(t, vshrq_n_u8(c, 4));

			if ((b & 3) == 0)
				__builtin_prefetch(pf + b * 16);	/* a line every 4 blocks */

			acc0 = vaddw_u8(acc0, vget_low_u8(lo));
			acc1 = vaddw_high_u8(acc1, lo);
			acc2 = vaddw_u8(acc2, vget_low_u8(hi));
			acc3 = vaddw_high_u8(acc3, hi);
		}
		vst1q_u16(sums, acc0);
		vst1q_u16(sums + 8, acc1);
		vst1q_u16(sums + 16, acc2);
		vst1q_u16(sums + 24, acc3);
		for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
			out[i] += sums[i];
	}

	LUT16_PREFETCH_TAIL(pf, nblocks);

	/* the admission mask, four sums a step (NEON compares unsigned) */
	for (int i = 0; i < SCOREAH_GROUP_ROWS; i += 4)
		below |= vaddvq_u32(vandq_u32(vcleq_u32(vld1q_u32(out + i), lim), bits)) << i;
	return below;
}
#endif							/* SCOREAH_NEON */
