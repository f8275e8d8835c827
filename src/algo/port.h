/*-------------------------------------------------------------------------
 *
 * port.h
 *	  What the algorithm files of scoreah take from their surroundings:
 *	  integer types, memory, cancellation and debug messages.
 *
 * The files in src/algo know nothing of pages, buffers or relations.  They
 * are compiled twice: into the extension, where this header maps
 * everything onto PostgreSQL (palloc, CHECK_FOR_INTERRUPTS, elog), and
 * into the standalone unit test binary (SCOREAH_STANDALONE), where it maps
 * them onto the C library, so the algorithms can be tested and measured
 * without a server.  Nothing else of PostgreSQL may be used in src/algo.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCOREAH_PORT_H
#define SCOREAH_PORT_H

#ifdef SCOREAH_STANDALONE

#include <assert.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int8_t int8;
typedef int16_t int16;
typedef int32_t int32;
typedef int64_t int64;
typedef uint8_t uint8;
typedef uint16_t uint16;
typedef uint32_t uint32;
typedef uint64_t uint64;
typedef size_t Size;

#define UINT64CONST(x)	(x##ULL)
#define PG_UINT32_MAX	UINT32_MAX
#define PG_UINT64_MAX	UINT64_MAX
#define lengthof(array) (sizeof(array) / sizeof((array)[0]))
#define TYPEALIGN(ALIGNVAL, LEN) \
	(((uintptr_t) (LEN) + ((ALIGNVAL) - 1)) & ~((uintptr_t) ((ALIGNVAL) - 1)))
#define Min(x, y)		((x) < (y) ? (x) : (y))
#define Max(x, y)		((x) > (y) ? (x) : (y))
#define Assert(c)		assert(c)
#define pg_attribute_always_inline __attribute__((always_inline)) inline
#define likely(x)		__builtin_expect((x) != 0, 1)
#define unlikely(x)		__builtin_expect((x) != 0, 0)

static inline void *
scoreah_palloc(Size n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static inline void *
scoreah_palloc0(Size n)
{
	void	   *p = calloc(1, n > 0 ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

#define scoreah_pfree(p)			free(p)
#define SCOREAH_CHECK_INTERRUPTS()	((void) 0)
#define scoreah_debug(...)			((void) 0)

#else							/* inside PostgreSQL */

#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"

/*
 * Huge allocations: the sample, centroids and k-means sums may pass 1 GB
 * at high dimensions; the build checks them against maintenance_work_mem
 * before it asks.
 */
#define scoreah_palloc(n)	palloc_extended((n), MCXT_ALLOC_HUGE)
#define scoreah_palloc0(n)	palloc_extended((n), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO)
#define scoreah_pfree(p)	pfree(p)
#define SCOREAH_CHECK_INTERRUPTS()	CHECK_FOR_INTERRUPTS()
#define scoreah_debug(...)	elog(DEBUG2, __VA_ARGS__)

#endif							/* SCOREAH_STANDALONE */

/* Instruction sets the kernels are compiled for (chosen at run time) */
#if defined(__x86_64__) && defined(__GNUC__)
#define SCOREAH_X86 1
#endif
#if defined(__aarch64__)
#define SCOREAH_NEON 1
#endif

#endif							/* SCOREAH_PORT_H */
