/*-------------------------------------------------------------------------
 *
 * half.h
 *	  Half precision to float, inline for the exact kernels' loops.
 *
 * Half to float is exact: every half is a float.  A signalling NaN comes
 * out quiet (the quiet bit set, payload and sign kept), as IEEE 754
 * prescribes for conversions and as the F16C (vcvtph2ps) and aarch64
 * (fcvt) instructions do, so the SIMD conversions agree with this one on
 * all 65536 inputs.  Stored vectors never hold NaN anyway.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCOREAH_HALF_H
#define SCOREAH_HALF_H

#include "scoreah_algo.h"

static inline float
scoreah_half_to_float_inline(uint16 h)
{
	union
	{
		float		f;
		uint32		u;
	}			v;
	uint32		sign = (uint32) (h & 0x8000) << 16;
	uint32		exp = (h >> 10) & 0x1F;
	uint32		mant = h & 0x3FF;

	if (exp == 0x1F)
		v.u = sign | 0x7F800000 | (mant << 13) | (mant ? 0x400000 : 0);
	else if (exp > 0)
		v.u = sign | ((exp + 112) << 23) | (mant << 13);
	else if (mant == 0)
		v.u = sign;
	else
	{
		/* subnormal: normalize */
		int			e = -1;

		do
		{
			mant <<= 1;
			e++;
		} while ((mant & 0x400) == 0);
		v.u = sign | ((uint32) (112 - e) << 23) | ((mant & 0x3FF) << 13);
	}
	return v.f;
}

/* n halves to floats, portably (the scalar exact set's conversion) */
extern void scoreah_half_to_float_many_scalar(const uint16 *src, float *dst, int n);

#endif							/* SCOREAH_HALF_H */
