/*
 * lut16_check.c
 *	  Compares a LUT16 kernel with the scalar one outside PostgreSQL, for
 *	  kernels this machine cannot run natively (NEON on x86-64 through
 *	  qemu-user).  test/t/040_neon_kernel.pl extracts the two functions
 *	  from src/pq.c into scalar.inc and kernel.inc and builds this file
 *	  with -DKERNEL=<function name>.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __aarch64__
#include <arm_neon.h>
#endif

typedef uint8_t uint8;
typedef uint16_t uint16;
typedef uint32_t uint32;

#define Min(a, b) ((a) < (b) ? (a) : (b))
#define SCOREAH_GROUP_ROWS 32
#define SCOREAH_CENTERS 16
#define LUT16_CHUNK 256

void		scoreah_lut16_scan_scalar(const uint8 *codes, const uint8 *qlut, int nblocks, uint32 *out);

#include "scalar.inc"
#include "kernel.inc"

int
main(void)
{
	/* odd counts, not multiples of 16 or 32, and past the 256-block folding */
	static const int sizes[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 50, 255, 256, 257, 511, 512, 513, 1000};
	int			checked = 0;

	srand(1);
	for (int s = 0; s < (int) (sizeof(sizes) / sizeof(sizes[0])); s++)
		for (int saturated = 0; saturated < 2; saturated++)
			for (int g = 0; g < 50; g++)
			{
				int			nb = sizes[s];
				uint8	   *codes = malloc(nb * 16);
				uint8	   *lut = malloc(nb * 16);
				uint32		want[32],
							got[32];

				for (int i = 0; i < nb * 16; i++)
				{
					codes[i] = (uint8) rand();
					lut[i] = saturated ? 255 : (uint8) rand();
				}
				scoreah_lut16_scan_scalar(codes, lut, nb, want);
				KERNEL(codes, lut, nb, got);
				if (memcmp(want, got, sizeof(want)) != 0)
				{
					printf("MISMATCH at %d blocks (%s tables)\n", nb, saturated ? "all-255" : "random");
					return 1;
				}
				checked++;
				free(codes);
				free(lut);
			}
	printf("ok: %d groups agree with the scalar kernel\n", checked);
	return 0;
}
