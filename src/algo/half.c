/*-------------------------------------------------------------------------
 *
 * half.c
 *	  IEEE 754 half precision (binary16), for re-ranking vectors kept at
 *	  two bytes per dimension (reordering_storage = float16).
 *
 * The conversions work on the bits, so every CPU gives the same ones, and
 * F16C's conversion to float (in the AVX2 exact kernel set) agrees with
 * them; values beyond the half range become infinities, tiny ones
 * subnormals or zero.
 *
 *-------------------------------------------------------------------------
 */
#include "half.h"

uint16
scoreah_float_to_half(float f)
{
	union
	{
		float		f;
		uint32		u;
	}			v;
	uint32		sign,
				exp,
				mant;

	v.f = f;
	sign = (v.u >> 16) & 0x8000;
	exp = (v.u >> 23) & 0xFF;
	mant = v.u & 0x7FFFFF;

	if (exp == 0xFF)			/* inf or NaN */
		return (uint16) (sign | 0x7C00 | (mant ? 0x200 : 0));
	if (exp > 142)				/* >= 2^16: overflow */
		return (uint16) (sign | 0x7C00);
	if (exp >= 113)				/* normal half */
	{
		uint32		h = ((exp - 112) << 10) | (mant >> 13);
		uint32		rest = mant & 0x1FFF;

		if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
			h++;				/* may carry into the exponent: still right */
		return (uint16) (sign | h);
	}
	if (exp >= 102)				/* subnormal half */
	{
		uint32		m = mant | 0x800000;
		int			shift = 126 - exp;
		uint32		h = m >> shift;
		uint32		rest = m & ((1u << shift) - 1);
		uint32		halfway = 1u << (shift - 1);

		if (rest > halfway || (rest == halfway && (h & 1)))
			h++;
		return (uint16) (sign | h);
	}
	return (uint16) sign;		/* underflow to zero */
}

float
scoreah_half_to_float(uint16 h)
{
	return scoreah_half_to_float_inline(h);
}

void
scoreah_half_to_float_many_scalar(const uint16 *src, float *dst, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = scoreah_half_to_float_inline(src[i]);
}
