/*-------------------------------------------------------------------------
 *
 * scoreah.c
 *	  Module initialisation and the index access method's handler: which
 *	  function serves each duty of the index AM API.
 *
 * The duties live one to a file: options.c (WITH options, GUCs), cost.c,
 * validate.c (operator classes), build*.c, insert.c, scan.c, vacuum.c;
 * src/README maps the rest.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "fmgr.h"

#include "scoreah.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(scoreah_handler);

/*
 * glibc returns the top of its heap to the kernel whenever more than its
 * trim threshold (128 kB until the process frees a chunk it mapped with
 * mmap; then twice that chunk) lies free there.  A scan's memory, freed
 * when it ends, is mostly a few hundred kB of 16-64 kB chunks, so in a
 * backend that never freed a large chunk every query shrank the heap
 * (a TLB flush across CPUs) and the next one faulted the pages back in:
 * 10% of a backend's time at 768 dimensions (brk 5.7%, page faults 4.6%;
 * AMD EPYC Zen 5, 100,000 rows, 32 leaves).  Freeing one mapped chunk of
 * SETTLE_BYTES at load moves glibc's thresholds where its own adaptation
 * puts them after any such free (mmap above 1 MB, trim above 2 MB): a
 * backend then keeps at most about 2 MB of free heap, and glibc still
 * adapts as usual afterwards.  Elsewhere than glibc nothing is done.
 */
#define SETTLE_BYTES (1024 * 1024)

static void
SettleMalloc(void)
{
#ifdef __GLIBC__
	void	   *volatile p = malloc(SETTLE_BYTES);

	free(p);
#endif
}

void
_PG_init(void)
{
	SettleMalloc();
	scoreah_init_kernels(false);
	ScoreahInitOptions();
	ScoreahInitAlterCheck();
	ScoreahInitGucs();
	ScoreahInitCache();
}

static char *
scoreahbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case SCOREAH_PHASE_SAMPLING:
			return "sampling rows";
		case SCOREAH_PHASE_TREE:
			return "training the k-means tree";
		case SCOREAH_PHASE_CODEBOOKS:
			return "training codebooks";
		case SCOREAH_PHASE_ENCODING:
			return "assigning and encoding rows";
		case SCOREAH_PHASE_WRITING:
			return "writing leaves";
		case SCOREAH_PHASE_CALIBRATING:
			return "measuring recall";
		default:
			return NULL;
	}
}

Datum
scoreah_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = SCOREAH_NSTRATEGIES;
	amroutine->amsupport = SCOREAH_NPROC;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = true;	/* key columns after the vector */
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = true;	/* key IN (...) */
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
#if PG_VERSION_NUM >= 160000
	amroutine->amsummarizing = false;
#endif
#if PG_VERSION_NUM >= 170000
	amroutine->amcanbuildparallel = false;
#endif
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = scoreahbuild;
	amroutine->ambuildempty = scoreahbuildempty;
	amroutine->aminsert = scoreahinsert;
#if PG_VERSION_NUM >= 170000
	amroutine->aminsertcleanup = NULL;
#endif
	amroutine->ambulkdelete = scoreahbulkdelete;
	amroutine->amvacuumcleanup = scoreahvacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = scoreahcostestimate;
	amroutine->amoptions = scoreahoptions;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = scoreahbuildphasename;
	amroutine->amvalidate = scoreahvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = scoreahbeginscan;
	amroutine->amrescan = scoreahrescan;
	amroutine->amgettuple = scoreahgettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = scoreahendscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
