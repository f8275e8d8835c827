/*-------------------------------------------------------------------------
 *
 * lut16_avx512.c
 *	  LUT16 kernel for AVX-512BW: four blocks per 64-byte load, one per
 *	  128-bit lane.
 *
 * The looked-up bytes are added as whole 16-bit words (an even row's entry
 * plus 256 times the odd row's, wrapping) beside the odd rows' bytes alone,
 * as the AVX2 kernel does; at the end of each chunk of LUT16_CHUNK block
 * quads the even rows' sums are separated, and the four lanes' 16-bit sums
 * widened and added in registers.  The last nblocks % 4 blocks take a
 * 256-bit and a 128-bit step (AVX-512BW CPUs have AVX2), not the portable
 * one, which cost more than the quads at 50 blocks.
 *
 * Codes on a 64-byte line are read with one 512-bit load a step; codes off
 * a line, as pages mostly hold them (8-byte aligned), with two 256-bit
 * loads.  A 512-bit load that spans two lines costs little in cache but,
 * streaming a large group from memory, halved the kernel's speed on AMD
 * Zen 5 (392 blocks, 12,000 groups: 8.9 ns a row against AVX2's 5.7; with
 * two 256-bit loads 4.2), while in cache it is about 7% slower.
 *
 * The loop takes two quads a turn and the chunk's end folds each
 * accumulator in its own call: one quad a turn, GCC 12 copied the four
 * 512-bit accumulators at every step, and an array of the four went
 * through the stack at the end.  Without those copies (AMD Zen 4, codes in
 * memory off a line, both connections on one CPU): 1.18 -> 1.10 ns a row
 * at 50 blocks, 0.62 -> 0.54 at 16, 1.33 -> 1.27 at 64, 3.46 -> 3.32 at
 * 192, 6.99 -> 6.77 at 392, AVX2 unchanged beside it (session 39).
 * Compiled wherever the compiler knows the instructions, called only on
 * CPUs that report avx512bw (cpu.c).
 *
 *-------------------------------------------------------------------------
 */
#include "kernels.h"

#ifdef SCOREAH_X86
#include <immintrin.h>

/* Add the 8 sums of a 128-bit lane of 16-bit counters to out[0..7] */
__attribute__((target("avx2")))
static inline void
AddRows8(uint32 *out, __m128i sums16)
{
	__m256i		o = _mm256_loadu_si256((const __m256i *) out);

	_mm256_storeu_si256((__m256i *) out, _mm256_add_epi32(o, _mm256_cvtepu16_epi32(sums16)));
}

/* Add the two 128-bit lanes of 16-bit counters, then to out[0..7] */
__attribute__((target("avx2")))
static inline void
AddLanesRows8(uint32 *out, __m256i a)
{
	AddRows8(out, _mm_add_epi16(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)));
}

/*
 * out[0..7] = (or +=) rows 8i..8i+7 of acc, whose lane L holds them summed
 * over the blocks = L mod 4: widened to 32 bits (four lanes could overflow
 * 16) and the lanes added, in registers.  (A loop over an array of the
 * four accumulators went through the stack.)
 */
__attribute__((target("avx512bw,avx2")))
static inline void
FoldQuadRows8(uint32 *out, __m512i acc, bool add)
{
	__m512i		w = _mm512_add_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(acc)),
									 _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(acc, 1)));
	__m256i		r = _mm256_add_epi32(_mm512_castsi512_si256(w), _mm512_extracti64x4_epi64(w, 1));

	if (add)
		r = _mm256_add_epi32(r, _mm256_loadu_si256((const __m256i *) out));
	_mm256_storeu_si256((__m256i *) out, r);
}

/*
 * One step: the four blocks of codes c (already loaded) looked up in the
 * table at t, a line of the next group prefetched at pf.  The bytes are
 * added as whole 16-bit words (wrapping) and the odd rows' bytes alone.
 */
#define LUT16_QUAD(c_, t_, pf_) \
do { \
	__m512i		c = (c_); \
	__m512i		t = _mm512_loadu_si512((const void *) (t_)); \
	__m512i		lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, mask)); \
	__m512i		hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), mask)); \
\
	__builtin_prefetch(pf_); \
	lo16 = _mm512_add_epi16(lo16, lo); \
	lo8 = _mm512_add_epi16(lo8, _mm512_srli_epi16(lo, 8)); \
	hi16 = _mm512_add_epi16(hi16, hi); \
	hi8 = _mm512_add_epi16(hi8, _mm512_srli_epi16(hi, 8)); \
} while (0)

/* 64 code bytes on a line, and off one (two 256-bit loads, above) */
#define LUT16_LOAD_LINE(cp)		_mm512_load_si512((const void *) (cp))
#define LUT16_LOAD_HALVES(cp) \
	_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) (cp))), \
					   _mm256_loadu_si256((const __m256i *) ((cp) + 32)), 1)

/*
 * Quads p0..p1-1, their codes read by load: two a turn (one a turn, GCC
 * copied the four accumulators at every step).
 */
#define LUT16_QUADS(load, p0, p1) \
do { \
	int			p = (p0); \
\
	for (; p + 2 <= (p1); p += 2) \
	{ \
		LUT16_QUAD(load(codes + p * 64), qlut + p * 64, pf + p * 64); \
		LUT16_QUAD(load(codes + p * 64 + 64), qlut + p * 64 + 64, pf + p * 64 + 64); \
	} \
	if (p < (p1)) \
		LUT16_QUAD(load(codes + p * 64), qlut + p * 64, pf + p * 64); \
} while (0)

__attribute__((target("avx512bw,avx2")))
uint32
scoreah_lut16_scan_avx512(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out,
						  uint32 limit, const uint8 *next)
{
	const uint8 *pf = LUT16_PREFETCH_BASE(next, codes);
	const __m512i mask = _mm512_set1_epi8(0x0F);
	int			nquads = nblocks / 4;
	int			b = nquads * 4;

	if (nquads == 0)
		memset(out, 0, sizeof(uint32) * SCOREAH_GROUP_ROWS);
	for (int p0 = 0; p0 < nquads; p0 += LUT16_CHUNK)
	{
		int			p1 = Min(nquads, p0 + LUT16_CHUNK);
		__m512i		lo16 = _mm512_setzero_si512(),
					lo8 = _mm512_setzero_si512(),
					hi16 = _mm512_setzero_si512(),
					hi8 = _mm512_setzero_si512();
		__m512i		even;

		if (((uintptr_t) codes & 63) == 0)
			LUT16_QUADS(LUT16_LOAD_LINE, p0, p1);
		else
			LUT16_QUADS(LUT16_LOAD_HALVES, p0, p1);

		/* the even rows' sums, interleaved back with the odd rows' */
		even = _mm512_sub_epi16(lo16, _mm512_slli_epi16(lo8, 8));
		FoldQuadRows8(out, _mm512_unpacklo_epi16(even, lo8), p0 > 0);
		FoldQuadRows8(out + 8, _mm512_unpackhi_epi16(even, lo8), p0 > 0);
		even = _mm512_sub_epi16(hi16, _mm512_slli_epi16(hi8, 8));
		FoldQuadRows8(out + 16, _mm512_unpacklo_epi16(even, hi8), p0 > 0);
		FoldQuadRows8(out + 24, _mm512_unpackhi_epi16(even, hi8), p0 > 0);
	}

	LUT16_PREFETCH_TAIL(pf, nblocks);

	/* two blocks left: one 256-bit step, as the AVX2 kernel takes them */
	if (nblocks - b >= 2)
	{
		const __m256i mask2 = _mm256_set1_epi8(0x0F);
		const __m256i zero2 = _mm256_setzero_si256();
		__m256i		c = _mm256_loadu_si256((const __m256i *) (codes + b * 16));
		__m256i		t = _mm256_loadu_si256((const __m256i *) (qlut + b * 16));
		__m256i		lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask2));
		__m256i		hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask2));

		/* lane 0: the even block's rows 8i.., lane 1: the odd block's */
		AddLanesRows8(out, _mm256_unpacklo_epi8(lo, zero2));
		AddLanesRows8(out + 8, _mm256_unpackhi_epi8(lo, zero2));
		AddLanesRows8(out + 16, _mm256_unpacklo_epi8(hi, zero2));
		AddLanesRows8(out + 24, _mm256_unpackhi_epi8(hi, zero2));
		b += 2;
	}

	/* and one more: a 128-bit step */
	if (b < nblocks)
	{
		const __m128i mask1 = _mm_set1_epi8(0x0F);
		const __m128i zero1 = _mm_setzero_si128();
		__m128i		c = _mm_loadu_si128((const __m128i *) (codes + b * 16));
		__m128i		t = _mm_loadu_si128((const __m128i *) (qlut + b * 16));
		__m128i		lo = _mm_shuffle_epi8(t, _mm_and_si128(c, mask1));
		__m128i		hi = _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(c, 4), mask1));

		AddRows8(out, _mm_unpacklo_epi8(lo, zero1));
		AddRows8(out + 8, _mm_unpackhi_epi8(lo, zero1));
		AddRows8(out + 16, _mm_unpacklo_epi8(hi, zero1));
		AddRows8(out + 24, _mm_unpackhi_epi8(hi, zero1));
	}

	return scoreah_lut16_admit_avx2(out, limit);
}
#endif							/* SCOREAH_X86 */
