/*-------------------------------------------------------------------------
 *
 * build.c
 *	  CREATE INDEX for scoreah: sample rows, train the k-means tree and the
 *	  PQ codebooks, assign and encode every row, write the pages.
 *
 * 1. A first heap scan counts the indexable rows and keeps a reservoir
 *	  sample (Vitter's algorithm R) of up to max(leaves_training_sample_size,
 *	  training_sample_size) vectors, bounded by maintenance_work_mem.
 * 2. k-means on the sample gives the leaves' centroids.
 * 3. The sample's residuals (vector minus its nearest centroid) train the
 *	  16-center codebooks of every block.
 * 4. A second heap scan assigns each row to its nearest leaf and encodes
 *	  its residual (anisotropically when a threshold is set); rows go into
 *	  a tuplesort keyed by leaf, which spills to disk past
 *	  maintenance_work_mem.
 * 5. The sorted stream is written leaf by leaf: a chain of code pages and
 *	  a chain of vector pages per leaf, then the directory and metapage.
 *	  Pages are written through shared buffers without WAL and the whole
 *	  relation is WAL-logged once at the end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"

#include "scoreah.h"

#define TREE_SEED	UINT64CONST(20200718)
#define PQ_SEED		UINT64CONST(19080371)
#define SAMPLE_SEED UINT64CONST(42)

typedef struct ScoreahBuildState
{
	Relation	heap;
	Relation	index;
	IndexInfo  *indexInfo;
	ScoreahOptions *opts;
	int			metric;
	int			dim;			/* from the first row */
	MemoryContext tmpCtx;

	/* sampling */
	int			sampleTarget;
	int			nsamples;
	int			sampleCapacity;
	float	   *samples;
	int64		nrows;			/* indexable rows seen */
	ScoreahRandom rng;
	Size		memLimit;

	/* model */
	ScoreahModelData model;
	double		threshold;

	/* encoding */
	Tuplesortstate *sort;
	TupleDesc	sortDesc;
	TupleTableSlot *slot;
	int64		nencoded;
	double		sumDistance;

	/* phase timing, logged at DEBUG1 */
	int			phase;
	instr_time	phaseStart;

	/* parallel encoding */
	bool		reportProgress;
	struct ScoreahShared *shared;
	ParallelContext *pcxt;
	Snapshot	snapshot;
} ScoreahBuildState;

/*
 * Parallel build.  PostgreSQL 15 offers parallel workers to btree alone, so
 * scoreah sets up its own ParallelContext as nbtree does: the leader trains
 * the model, then it and the workers scan parts of the heap, assign and
 * encode rows into their own tuplesorts over one shared file set, and the
 * leader merges them and writes the pages.
 */
#define PARALLEL_KEY_SHARED		UINT64CONST(0xA5C0000000000001)
#define PARALLEL_KEY_TUPLESORT	UINT64CONST(0xA5C0000000000002)
#define PARALLEL_KEY_MODEL		UINT64CONST(0xA5C0000000000003)
#define PARALLEL_KEY_QUERY_TEXT UINT64CONST(0xA5C0000000000004)

typedef struct ScoreahShared
{
	/* set by the leader before launch */
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	int			scantuplesortstates;
	int			metric;
	int			dim;
	int			nleaves;
	int			nblocks;
	int			dpb;
	bool		residual;
	double		threshold;

	/* workers report here */
	ConditionVariable workersdonecv;
	slock_t		mutex;
	int			nparticipantsdone;
	int64		nencoded;
	double		sumDistance;
	pg_atomic_uint64 progress;	/* rows encoded so far, all participants */

	/* ParallelTableScanDescData follows */
} ScoreahShared;

#define ParallelTableScanFromShared(shared) \
	(ParallelTableScanDesc) ((char *) (shared) + BUFFERALIGN(sizeof(ScoreahShared)))

PGDLLEXPORT void ScoreahParallelBuildMain(dsm_segment *seg, shm_toc *toc);

static char *
PhaseName(int phase)
{
	switch (phase)
	{
		case SCOREAH_PHASE_SAMPLING:
			return "sampling";
		case SCOREAH_PHASE_TREE:
			return "tree training";
		case SCOREAH_PHASE_CODEBOOKS:
			return "codebook training";
		case SCOREAH_PHASE_ENCODING:
			return "assigning and encoding";
		case SCOREAH_PHASE_WRITING:
			return "writing";
	}
	return "build";
}

/* Report a new build phase; log how long the previous one took */
static void
SetPhase(ScoreahBuildState *state, int phase)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	if (state->phase != 0)
	{
		instr_time	d = now;

		INSTR_TIME_SUBTRACT(d, state->phaseStart);
		elog(DEBUG1, "scoreah build of \"%s\": %s took %.3f s",
			 RelationGetRelationName(state->index), PhaseName(state->phase),
			 INSTR_TIME_GET_DOUBLE(d));
	}
	state->phase = phase;
	state->phaseStart = now;
	if (phase != 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, phase);
}

/* A page being filled in memory before it goes to its block */
typedef struct PageWriter
{
	Relation	index;
	uint32		leaf;
	BlockNumber blkno;
	PGAlignedBlock data;
} PageWriter;

static BlockNumber
AllocBlock(Relation index)
{
	Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	BlockNumber blkno = BufferGetBlockNumber(buf);

	ReleaseBuffer(buf);
	return blkno;
}

static void
WriteBlock(Relation index, BlockNumber blkno, Page page)
{
	Buffer		buf = ReadBuffer(index, blkno);

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	memcpy(BufferGetPage(buf), page, BLCKSZ);
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
}

/* ---- row validation shared by both scans ---- */

/*
 * The vector of a heap row, checked, in tmpCtx.  Returns NULL for rows the
 * index leaves out (zero vectors under cosine).  *unit receives the unit
 * copy for cosine, the vector itself otherwise.
 */
static float *
RowVector(ScoreahBuildState *state, Datum value, float **unit)
{
	int			dim;
	float	   *x = ScoreahArrayToVector(DatumGetArrayTypeP(value), &dim, "indexed vector");

	if (state->dim == 0)
	{
		if (dim > SCOREAH_MAX_DIM)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("scoreah indexes at most %d dimensions, the column has %d",
							SCOREAH_MAX_DIM, dim)));
		state->dim = dim;
	}
	else
		ScoreahCheckDimensions(state->dim, dim);

	*unit = x;
	if (state->metric == SCOREAH_METRIC_COSINE)
	{
		double		norm = scoreah_exact_norm(x, dim);
		float	   *u;

		if (norm == 0)
			return NULL;
		u = palloc(sizeof(float) * dim);
		for (int i = 0; i < dim; i++)
			u[i] = (float) (x[i] / norm);
		*unit = u;
	}
	return x;
}

/* ---- pass 1: count and sample ---- */

static void
SampleCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *arg)
{
	ScoreahBuildState *state = (ScoreahBuildState *) arg;
	MemoryContext oldCtx;
	float	   *x,
			   *unit;
	int			slot = -1;

	if (isnull[0])
		return;

	oldCtx = MemoryContextSwitchTo(state->tmpCtx);
	x = RowVector(state, values[0], &unit);
	if (x != NULL)
	{
		state->nrows++;
		if (state->nsamples < state->sampleTarget)
			slot = state->nsamples++;
		else
		{
			int64		r = (int64) scoreah_random_below(&state->rng, state->nrows);

			if (r < state->sampleTarget)
				slot = (int) r;
		}
		if (slot >= 0)
		{
			if (slot >= state->sampleCapacity)
			{
				int			newcap = Min(state->sampleTarget,
										 Max(64, state->sampleCapacity * 2));
				Size		bytes = sizeof(float) * (Size) newcap * state->dim;

				/* grow to what fits, then stop with the real figure */
				if (bytes > state->memLimit)
				{
					newcap = Max(slot + 1,
								 (int) (state->memLimit / (sizeof(float) * state->dim)));
					bytes = sizeof(float) * (Size) newcap * state->dim;
				}
				if (bytes > state->memLimit)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("memory required to sample %d rows of %d dimensions is more than maintenance_work_mem (%d MB)",
									slot + 1, state->dim, maintenance_work_mem / 1024),
							 errdetail("The training sample holds up to %d rows (the larger of leaves_training_sample_size and training_sample_size), %zu MB at this dimension.",
									   state->sampleTarget,
									   (Size) state->sampleTarget * state->dim * sizeof(float) / (1024 * 1024) + 1),
							 errhint("Increase maintenance_work_mem or lower leaves_training_sample_size and training_sample_size.")));
				MemoryContextSwitchTo(oldCtx);
				if (state->samples == NULL)
					state->samples = palloc_extended(bytes, MCXT_ALLOC_HUGE);
				else
					state->samples = repalloc_huge(state->samples, bytes);
				MemoryContextSwitchTo(state->tmpCtx);
				state->sampleCapacity = newcap;
			}
			memcpy(state->samples + (Size) slot * state->dim, unit,
				   sizeof(float) * state->dim);
		}
	}
	MemoryContextSwitchTo(oldCtx);
	MemoryContextReset(state->tmpCtx);
}

/* ---- options ---- */

static void
CheckOptions(ScoreahBuildState *state)
{
	ScoreahOptions *opts = state->opts;
	double		t = opts->anisotropicThreshold;

	if (!isnan(t))
	{
		if (t <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("anisotropic_quantization_threshold must be greater than 0, got %g", t),
					 errhint("Leave it unset (NaN) to turn the anisotropic loss off.")));
		if (state->metric == SCOREAH_METRIC_COSINE && t >= 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("anisotropic_quantization_threshold must be below 1 for cosine distance, got %g", t),
					 errdetail("It is a cosine similarity threshold; 0.2 is ScaNN's recommendation for about 100 dimensions.")));
	}
	if (opts->numLeaves > 0 && opts->numLeavesToSearch > opts->numLeaves)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("num_leaves_to_search = %d is more than num_leaves = %d",
						opts->numLeavesToSearch, opts->numLeaves)));
	if (opts->scoring == SCOREAH_SCORING_BRUTE_FORCE && !isnan(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("anisotropic_quantization_threshold has no effect with scoring = brute_force"),
				 errdetail("brute_force scoring keeps no quantized codes.")));
	if (opts->reorderingStorage == SCOREAH_STORAGE_TABLE &&
		state->indexInfo->ii_IndexAttrNumbers[0] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("reordering_storage = table needs an index on a plain column, not an expression"),
				 errhint("Use reordering_storage = float32 or float16 for expression indexes.")));
	if (opts->spherical && state->metric == SCOREAH_METRIC_L2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("spherical = true needs unit vectors: use it with scoreah_cosine_ops"),
				 errdetail("Spherical k-means normalizes the centroids, which misroutes L2 queries on vectors of other lengths.")));
}

/* ---- pass 2: assign and encode ---- */

static void
EncodeCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *arg)
{
	ScoreahBuildState *state = (ScoreahBuildState *) arg;
	ScoreahModel model = &state->model;
	MemoryContext oldCtx;
	float	   *x,
			   *unit;

	if (isnull[0])
		return;

	oldCtx = MemoryContextSwitchTo(state->tmpCtx);
	x = RowVector(state, values[0], &unit);
	if (x != NULL)
	{
		int			dim = state->dim;
		float		dist;
		int			leaf = scoreah_nearest_l2(unit, model->centroids, model->centroidNorms,
											  model->nleaves, dim, &dist);
		Size		plen = sizeof(ItemPointerData) + model->nblocks + sizeof(float) * dim;
		bytea	   *payload = palloc(VARHDRSZ + plen);
		char	   *p = VARDATA(payload);

		SET_VARSIZE(payload, VARHDRSZ + plen);
		memcpy(p, tid, sizeof(ItemPointerData));
		p += sizeof(ItemPointerData);
		if (model->nblocks > 0)
		{
			float	   *res = palloc(sizeof(float) * dim);

			scoreah_model_residual(model, unit, leaf, res);
			scoreah_pq_encode(model, res, unit, state->threshold, (uint8 *) p);
		}
		p += model->nblocks;
		memcpy(p, x, sizeof(float) * dim);

		ExecClearTuple(state->slot);
		state->slot->tts_values[0] = Int32GetDatum(leaf);
		state->slot->tts_isnull[0] = false;
		state->slot->tts_values[1] = PointerGetDatum(payload);
		state->slot->tts_isnull[1] = false;
		ExecStoreVirtualTuple(state->slot);
		tuplesort_puttupleslot(state->sort, state->slot);

		state->sumDistance += sqrt(dist);
		state->nencoded++;
		if ((state->nencoded & 1023) == 0)
		{
			int64		done = state->nencoded;

			if (state->shared)
				done = (int64) pg_atomic_add_fetch_u64(&state->shared->progress, 1024);
			if (state->reportProgress)
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
		}
	}
	MemoryContextSwitchTo(oldCtx);
	MemoryContextReset(state->tmpCtx);
}

/* ---- parallel encoding ---- */

static void
InitSortDesc(ScoreahBuildState *state)
{
	state->sortDesc = CreateTemplateTupleDesc(2);
	TupleDescInitEntry(state->sortDesc, (AttrNumber) 1, "leaf", INT4OID, -1, 0);
	TupleDescInitEntry(state->sortDesc, (AttrNumber) 2, "row", BYTEAOID, -1, 0);
	state->slot = MakeSingleTupleTableSlot(state->sortDesc, &TTSOpsVirtual);
}

/* Sort by leaf; all participants must begin their sorts identically */
static Tuplesortstate *
BeginSort(ScoreahBuildState *state, int sortmem, SortCoordinate coordinate)
{
	AttrNumber	sortKey = 1;
	Oid			sortOp = Int4LessOperator;
	Oid			sortColl = InvalidOid;
	bool		nullsFirst = false;

	return tuplesort_begin_heap(state->sortDesc, 1, &sortKey, &sortOp,
								&sortColl, &nullsFirst, sortmem, coordinate,
								TUPLESORT_NONE);
}

/* Model arrays in one float buffer: centroids, their norms, codebooks */
static Size
ModelFloats(int nleaves, int dim)
{
	return (Size) nleaves * dim + nleaves + (Size) SCOREAH_CENTERS * dim;
}

/*
 * One participant's share of the encoding pass (the leader's or a
 * worker's): scan its part of the heap into its own tuplesort.
 */
static void
ParticipateInEncoding(ScoreahShared *shared, Sharedsort *sharedsort,
					  Relation heap, Relation index, float *modelbuf,
					  int sortmem, bool progress)
{
	ScoreahBuildState state;
	SortCoordinate coordinate;
	TableScanDesc scan;

	memset(&state, 0, sizeof(state));
	state.heap = heap;
	state.index = index;
	state.indexInfo = BuildIndexInfo(index);
	state.indexInfo->ii_Concurrent = shared->isconcurrent;
	state.metric = shared->metric;
	state.dim = shared->dim;
	state.threshold = shared->threshold;
	state.model.dim = shared->dim;
	state.model.metric = shared->metric;
	state.model.nleaves = shared->nleaves;
	state.model.nblocks = shared->nblocks;
	state.model.dpb = shared->dpb;
	state.model.residual = shared->residual;
	state.model.centroids = modelbuf;
	state.model.centroidNorms = modelbuf + (Size) shared->nleaves * shared->dim;
	state.model.codebooks = state.model.centroidNorms + shared->nleaves;
	state.shared = shared;
	state.reportProgress = progress;
	state.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "scoreah build row",
										 ALLOCSET_DEFAULT_SIZES);
	InitSortDesc(&state);

	coordinate = palloc0(sizeof(SortCoordinateData));
	coordinate->isWorker = true;
	coordinate->nParticipants = -1;
	coordinate->sharedsort = sharedsort;
	state.sort = BeginSort(&state, sortmem, coordinate);

	scan = table_beginscan_parallel(heap, ParallelTableScanFromShared(shared));
	table_index_build_scan(heap, index, state.indexInfo, true, progress,
						   EncodeCallback, (void *) &state, scan);
	tuplesort_performsort(state.sort);

	SpinLockAcquire(&shared->mutex);
	shared->nparticipantsdone++;
	shared->nencoded += state.nencoded;
	shared->sumDistance += state.sumDistance;
	SpinLockRelease(&shared->mutex);
	ConditionVariableSignal(&shared->workersdonecv);

	tuplesort_end(state.sort);
	ExecDropSingleTupleTableSlot(state.slot);
	MemoryContextDelete(state.tmpCtx);
}

/*
 * Entry point of a parallel worker (named in CreateParallelContext).
 */
void
ScoreahParallelBuildMain(dsm_segment *seg, shm_toc *toc)
{
	char	   *queryText;
	ScoreahShared *shared;
	Sharedsort *sharedsort;
	float	   *modelbuf;
	Relation	heap,
				index;
	LOCKMODE	heapLockmode,
				indexLockmode;

	/* report the statement, so workers show it in pg_stat_activity */
	queryText = shm_toc_lookup(toc, PARALLEL_KEY_QUERY_TEXT, true);
	debug_query_string = queryText;
	pgstat_report_activity(STATE_RUNNING, debug_query_string);

	shared = shm_toc_lookup(toc, PARALLEL_KEY_SHARED, false);

	/* the same locks as the leader (index_build and CIC take these) */
	if (!shared->isconcurrent)
	{
		heapLockmode = ShareLock;
		indexLockmode = AccessExclusiveLock;
	}
	else
	{
		heapLockmode = ShareUpdateExclusiveLock;
		indexLockmode = RowExclusiveLock;
	}
	heap = table_open(shared->heaprelid, heapLockmode);
	index = index_open(shared->indexrelid, indexLockmode);

	sharedsort = shm_toc_lookup(toc, PARALLEL_KEY_TUPLESORT, false);
	tuplesort_attach_shared(sharedsort, seg);
	modelbuf = shm_toc_lookup(toc, PARALLEL_KEY_MODEL, false);

	ParticipateInEncoding(shared, sharedsort, heap, index, modelbuf,
						  maintenance_work_mem / shared->scantuplesortstates, false);

	index_close(index, indexLockmode);
	table_close(heap, heapLockmode);
}

/*
 * Encode with nworkers workers plus the leader.  Returns false (and the
 * caller encodes serially) when no worker could be started.  On success
 * state->sort holds the merged, sorted rows, and the parallel context stays
 * up until EndParallel (the sort's files live in its shared memory).
 */
static bool
EncodeParallel(ScoreahBuildState *state, int request)
{
	ParallelContext *pcxt;
	Snapshot	snapshot;
	Size		estshared,
				estsort,
				modelbytes;
	int			scantuplesortstates = request + 1;
	bool		isconcurrent = state->indexInfo->ii_Concurrent;
	ScoreahShared *shared;
	Sharedsort *sharedsort;
	float	   *modelbuf;
	ScoreahModel model = &state->model;
	int			nparticipants;
	SortCoordinate coordinate;

	EnterParallelMode();
	pcxt = CreateParallelContext("scoreah", "ScoreahParallelBuildMain", request);

	snapshot = isconcurrent ? RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;

	estshared = BUFFERALIGN(sizeof(ScoreahShared)) +
		table_parallelscan_estimate(state->heap, snapshot);
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	estsort = tuplesort_estimate_shared(scantuplesortstates);
	shm_toc_estimate_chunk(&pcxt->estimator, estsort);
	modelbytes = sizeof(float) * ModelFloats(model->nleaves, model->dim);
	shm_toc_estimate_chunk(&pcxt->estimator, modelbytes);
	shm_toc_estimate_keys(&pcxt->estimator, 3);
	if (debug_query_string)
	{
		shm_toc_estimate_chunk(&pcxt->estimator, strlen(debug_query_string) + 1);
		shm_toc_estimate_keys(&pcxt->estimator, 1);
	}

	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		/* no dynamic shared memory: serial build */
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}

	shared = shm_toc_allocate(pcxt->toc, estshared);
	memset(shared, 0, sizeof(ScoreahShared));
	shared->heaprelid = RelationGetRelid(state->heap);
	shared->indexrelid = RelationGetRelid(state->index);
	shared->isconcurrent = isconcurrent;
	shared->scantuplesortstates = scantuplesortstates;
	shared->metric = state->metric;
	shared->dim = model->dim;
	shared->nleaves = model->nleaves;
	shared->nblocks = model->nblocks;
	shared->dpb = model->dpb;
	shared->residual = model->residual;
	shared->threshold = state->threshold;
	ConditionVariableInit(&shared->workersdonecv);
	SpinLockInit(&shared->mutex);
	pg_atomic_init_u64(&shared->progress, 0);
	table_parallelscan_initialize(state->heap, ParallelTableScanFromShared(shared), snapshot);

	sharedsort = shm_toc_allocate(pcxt->toc, estsort);
	tuplesort_initialize_shared(sharedsort, scantuplesortstates, pcxt->seg);

	modelbuf = shm_toc_allocate(pcxt->toc, modelbytes);
	memcpy(modelbuf, model->centroids, sizeof(float) * model->nleaves * model->dim);
	memcpy(modelbuf + (Size) model->nleaves * model->dim, model->centroidNorms,
		   sizeof(float) * model->nleaves);
	memcpy(modelbuf + (Size) model->nleaves * model->dim + model->nleaves,
		   model->codebooks, sizeof(float) * SCOREAH_CENTERS * model->dim);

	shm_toc_insert(pcxt->toc, PARALLEL_KEY_SHARED, shared);
	shm_toc_insert(pcxt->toc, PARALLEL_KEY_TUPLESORT, sharedsort);
	shm_toc_insert(pcxt->toc, PARALLEL_KEY_MODEL, modelbuf);
	if (debug_query_string)
	{
		char	   *q = shm_toc_allocate(pcxt->toc, strlen(debug_query_string) + 1);

		strcpy(q, debug_query_string);
		shm_toc_insert(pcxt->toc, PARALLEL_KEY_QUERY_TEXT, q);
	}

	LaunchParallelWorkers(pcxt);
	if (pcxt->nworkers_launched == 0)
	{
		WaitForParallelWorkersToFinish(pcxt);
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}
	nparticipants = pcxt->nworkers_launched + 1;
	ereport(DEBUG1,
			(errmsg_internal("scoreah build of \"%s\": using %d parallel workers",
							 RelationGetRelationName(state->index),
							 pcxt->nworkers_launched)));

	/* the leader encodes its share too */
	ParticipateInEncoding(shared, sharedsort, state->heap, state->index, modelbuf,
						  maintenance_work_mem / scantuplesortstates, true);

	/* wait for every participant's sorted run */
	for (;;)
	{
		bool		done;

		SpinLockAcquire(&shared->mutex);
		done = shared->nparticipantsdone == nparticipants;
		SpinLockRelease(&shared->mutex);
		if (done)
			break;
		ConditionVariableSleep(&shared->workersdonecv,
							   WAIT_EVENT_PARALLEL_CREATE_INDEX_SCAN);
	}
	ConditionVariableCancelSleep();

	state->nencoded = shared->nencoded;
	state->sumDistance = shared->sumDistance;

	/* merge */
	coordinate = palloc0(sizeof(SortCoordinateData));
	coordinate->isWorker = false;
	coordinate->nParticipants = nparticipants;
	coordinate->sharedsort = sharedsort;
	state->sort = BeginSort(state, maintenance_work_mem, coordinate);
	tuplesort_performsort(state->sort);

	state->pcxt = pcxt;
	state->snapshot = snapshot;
	return true;
}

static void
EndParallel(ScoreahBuildState *state)
{
	if (state->pcxt == NULL)
		return;
	WaitForParallelWorkersToFinish(state->pcxt);
	if (IsMVCCSnapshot(state->snapshot))
		UnregisterSnapshot(state->snapshot);
	DestroyParallelContext(state->pcxt);
	ExitParallelMode();
	state->pcxt = NULL;
}

/* ---- writing ---- */

typedef struct LeafWriter
{
	Relation	index;
	ScoreahMetaPage meta;
	Size		vbytes;			/* stored bytes per vector (0: table) */
	char	   *vbuf;			/* packed vector */
	int			nblocks;
	int			dim;
	ScoreahLayoutData layout;
	PageWriter	code;			/* current code page */
	PageWriter	vec;			/* current shared vector page */
	bool		haveCode;
	bool		haveVec;		/* vec holds a page (across leaves) */
	bool		leafOnVec;		/* the current leaf is counted on vec */
	uint32		leafno;			/* the leaf being written */
	ScoreahLeafData leaf;
} LeafWriter;

static void
StartPage(PageWriter *w, Relation index, uint16 kind, uint32 leaf)
{
	w->index = index;
	w->leaf = leaf;
	w->blkno = AllocBlock(index);
	ScoreahInitPage(w->data.data, kind, leaf);
}

/* Flush w and continue the chain on a new page */
static void
ChainPage(PageWriter *w, uint16 kind)
{
	BlockNumber next = AllocBlock(w->index);

	ScoreahPageGetOpaque(w->data.data)->nextblkno = next;
	WriteBlock(w->index, w->blkno, w->data.data);
	w->blkno = next;
	ScoreahInitPage(w->data.data, kind, w->leaf);
}

/* Write the current shared vector page and start a new one */
static void
NextVectorPage(LeafWriter *lw, bool link)
{
	if (!lw->haveVec)
	{
		StartPage(&lw->vec, lw->index, SCOREAH_PAGE_VECTORS, SCOREAH_SHARED_LEAF);
		lw->haveVec = true;
	}
	else if (link)
		ChainPage(&lw->vec, SCOREAH_PAGE_VECTORS);
	else
	{
		WriteBlock(lw->index, lw->vec.blkno, lw->vec.data.data);
		StartPage(&lw->vec, lw->index, SCOREAH_PAGE_VECTORS, SCOREAH_SHARED_LEAF);
	}
	lw->leafOnVec = false;
}

/* Count the current leaf in on the current shared vector page */
static void
CountLeafOnPage(LeafWriter *lw)
{
	ScoreahVectorPageHeaderData *vh = ScoreahVectorPageHeader(lw->vec.data.data);

	if (lw->leafOnVec)
		return;
	if (vh->refs == 0)
		vh->firstLeaf = lw->leafno;
	vh->lastLeaf = lw->leafno;
	vh->refs++;
	lw->leafOnVec = true;
}

/*
 * Append a vector to the build's shared vector pages; returns where it
 * starts.  Leaves follow each other on the same pages.  A vector longer
 * than a page starts a fresh page and runs on over as many linked pages
 * as it needs, each counting its leaf.
 */
static void
WriteVector(LeafWriter *lw, const float *x, BlockNumber *blkno, uint16 *off)
{
	Size		nbytes = lw->vbytes;
	const char *src = lw->vbuf;
	PageHeader	ph;

	if (nbytes == 0)
	{
		/* reordering_storage = table: re-ranking reads the heap */
		*blkno = InvalidBlockNumber;
		*off = 0;
		return;
	}
	ScoreahPackVector(lw->meta, x, lw->vbuf);
	if (!lw->haveVec)
		NextVectorPage(lw, false);
	ph = (PageHeader) lw->vec.data.data;
	if ((nbytes <= SCOREAH_VECTOR_CAPACITY && ph->pd_upper - ph->pd_lower < nbytes) ||
		(nbytes > SCOREAH_VECTOR_CAPACITY && ph->pd_lower > SCOREAH_VECTORS_OFFSET))
	{
		NextVectorPage(lw, false);
		ph = (PageHeader) lw->vec.data.data;
	}
	CountLeafOnPage(lw);
	*blkno = lw->vec.blkno;
	*off = ph->pd_lower;
	while (nbytes > 0)
	{
		Size		n = Min(nbytes, (Size) (ph->pd_upper - ph->pd_lower));

		memcpy((char *) ph + ph->pd_lower, src, n);
		ph->pd_lower += n;
		src += n;
		nbytes -= n;
		if (nbytes > 0)
		{
			NextVectorPage(lw, true);
			ph = (PageHeader) lw->vec.data.data;
			CountLeafOnPage(lw);
		}
	}
}

static void
WriteRow(LeafWriter *lw, ItemPointer tid, const uint8 *codes, const float *x)
{
	PageHeader	ph;
	int			ngroups;
	char	   *group;
	ScoreahGroupHeaderData *gh;
	BlockNumber vblkno;
	uint16		voff;
	Size		gsize = lw->layout.gsize;

	if (!lw->haveCode)
	{
		StartPage(&lw->code, lw->index, SCOREAH_PAGE_CODES, lw->leafno);
		lw->haveCode = true;
		lw->leaf.codeHead = lw->code.blkno;
	}
	ph = (PageHeader) lw->code.data.data;
	ngroups = ScoreahPageGetNGroups(lw->code.data.data, gsize);
	group = ngroups > 0 ? PageGetContents(lw->code.data.data) + (ngroups - 1) * gsize : NULL;
	if (group == NULL || ScoreahGroupHeader(group)->nitems == SCOREAH_GROUP_ROWS)
	{
		if (ngroups == lw->layout.groupsPerPage)
		{
			ChainPage(&lw->code, SCOREAH_PAGE_CODES);
			ph = (PageHeader) lw->code.data.data;
			ngroups = 0;
		}
		group = PageGetContents(lw->code.data.data) + ngroups * gsize;
		memset(group, 0, gsize);
		ph->pd_lower += gsize;
	}
	gh = ScoreahGroupHeader(group);
	ScoreahGroupTids(&lw->layout, group)[gh->nitems] = *tid;
	WriteVector(lw, x, &vblkno, &voff);

	/* the build writes a leaf's vectors in row order: they always follow */
	if (!ScoreahGroupAddVector(&lw->layout, gh, gh->nitems, vblkno, voff))
		elog(ERROR, "scoreah build: vector of leaf %u at (%u,%u) does not follow its group",
			 lw->leafno, vblkno, voff);
	if (lw->nblocks > 0)
		scoreah_pack_codes(ScoreahGroupCodes(&lw->layout, group), gh->nitems, codes,
						   lw->nblocks);
	gh->nitems++;
	gh->nlive++;
	lw->leaf.nbuilt++;
}

static void
FinishLeaf(LeafWriter *lw)
{
	if (lw->haveCode)
	{
		WriteBlock(lw->index, lw->code.blkno, lw->code.data.data);
		lw->leaf.codeTail = lw->code.blkno;
	}
	/* the shared vector page goes on with the next leaf */
	lw->haveCode = false;
	lw->leafOnVec = false;
}

/* After the last leaf: the last shared vector page */
static void
FinishVectors(LeafWriter *lw)
{
	if (lw->haveVec)
		WriteBlock(lw->index, lw->vec.blkno, lw->vec.data.data);
	lw->haveVec = false;
}

/*
 * Write a byte stream over consecutive new pages; returns the first block.
 */
static BlockNumber
WriteBlob(Relation index, const char *src, Size nbytes)
{
	PGAlignedBlock page;
	BlockNumber first = InvalidBlockNumber;

	while (nbytes > 0)
	{
		BlockNumber blkno = AllocBlock(index);
		Size		n = Min(nbytes, SCOREAH_PAGE_CAPACITY);

		if (first == InvalidBlockNumber)
			first = blkno;
		ScoreahInitPage(page.data, SCOREAH_PAGE_BLOB, SCOREAH_NO_LEAF);
		memcpy(PageGetContents(page.data), src, n);
		((PageHeader) page.data)->pd_lower += n;
		WriteBlock(index, blkno, page.data);
		src += n;
		nbytes -= n;
	}
	return first;
}

static void
FillMeta(ScoreahBuildState *state, ScoreahMetaPage meta)
{
	ScoreahOptions *opts = state->opts;

	memset(meta, 0, sizeof(ScoreahMetaPageData));
	meta->magic = SCOREAH_MAGIC;
	meta->version = SCOREAH_VERSION;
	if (!pg_strong_random(&meta->buildId, sizeof(meta->buildId)))
		meta->buildId = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	meta->dimensions = state->dim;
	meta->metric = state->metric;
	meta->dimsPerBlock = opts->dimensionsPerBlock;
	meta->scoring = opts->scoring;
	meta->reorderStorage = opts->reorderingStorage;
	meta->leavesTrainingSampleSize = opts->leavesTrainingSampleSize;
	meta->leavesTrainingIterations = opts->leavesTrainingIterations;
	meta->minPartitionSize = opts->minPartitionSize;
	meta->trainingSampleSize = opts->trainingSampleSize;
	meta->trainingIterations = opts->trainingIterations;
	meta->threshold = opts->anisotropicThreshold;
	if (opts->spherical)
		meta->flags |= SCOREAH_FLAG_SPHERICAL;
	if (opts->quantizeCentroids)
		meta->flags |= SCOREAH_FLAG_QUANTIZE_CENTROIDS;
	if (opts->randomInit)
		meta->flags |= SCOREAH_FLAG_RANDOM_INIT;
	meta->blobStart = InvalidBlockNumber;
	meta->directoryStart = InvalidBlockNumber;
}

/*
 * An index with one leaf and no model: every row goes to leaf 0 and scans
 * score exactly.  Used for empty tables and for the init fork of unlogged
 * tables; the first row fixes the dimension.
 */
static void
WriteUntrained(Relation index, ForkNumber forkNum, ScoreahMetaPage meta)
{
	Buffer		metabuf,
				dirbuf;
	Page		page;
	ScoreahLeaf leaf;

	meta->nleaves = 1;
	meta->nblocks = 0;
	meta->numLeavesToSearch = 1;
	meta->flags &= ~(SCOREAH_FLAG_TRAINED | SCOREAH_FLAG_RESIDUAL);
	meta->directoryStart = 1;
	meta->directoryPages = 1;

	metabuf = ReadBufferExtended(index, forkNum, P_NEW, RBM_NORMAL, NULL);
	Assert(BufferGetBlockNumber(metabuf) == SCOREAH_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	dirbuf = ReadBufferExtended(index, forkNum, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);

	START_CRIT_SECTION();
	page = BufferGetPage(metabuf);
	ScoreahInitPage(page, SCOREAH_PAGE_META, SCOREAH_NO_LEAF);
	memcpy(PageGetContents(page), meta, sizeof(ScoreahMetaPageData));
	((PageHeader) page)->pd_lower += sizeof(ScoreahMetaPageData);
	MarkBufferDirty(metabuf);

	page = BufferGetPage(dirbuf);
	ScoreahInitPage(page, SCOREAH_PAGE_DIRECTORY, SCOREAH_NO_LEAF);
	leaf = (ScoreahLeaf) PageGetContents(page);
	memset(leaf, 0, sizeof(ScoreahLeafData));
	leaf->codeHead = leaf->codeTail = InvalidBlockNumber;
	leaf->vecHead = leaf->vecTail = InvalidBlockNumber;
	leaf->reuseBlk = InvalidBlockNumber;
	((PageHeader) page)->pd_lower += sizeof(ScoreahLeafData);
	MarkBufferDirty(dirbuf);

	/* the init fork is not covered by the end-of-build log: log it here */
	if (forkNum == INIT_FORKNUM || RelationNeedsWAL(index))
	{
		log_newpage_buffer(metabuf, true);
		log_newpage_buffer(dirbuf, true);
	}
	END_CRIT_SECTION();

	UnlockReleaseBuffer(dirbuf);
	UnlockReleaseBuffer(metabuf);
}

/*
 * Train, encode and write a trained index.
 */
static void
BuildTrained(ScoreahBuildState *state, ScoreahMetaPage meta)
{
	ScoreahOptions *opts = state->opts;
	ScoreahModel model = &state->model;
	int			dim = state->dim;
	int			requested;
	int			nleaves;
	int			ntree,
				npq;
	Size		need;
	ScoreahKmeansParams kp;
	BlockNumber metaBlk,
				dirStart;
	int			dirPages;
	ScoreahLeaf leaves;
	LeafWriter	lw;
	int			nworkers;
	TupleTableSlot *readSlot;
	int			curLeaf = -1;

	/* number of leaves: about sqrt(rows) unless given */
	requested = opts->numLeaves > 0 ? opts->numLeaves :
		(int) Max(1, Min(SCOREAH_MAX_LEAVES, rint(sqrt((double) state->nrows))));
	nleaves = requested;
	if (state->nsamples < requested)
	{
		nleaves = Max(1, state->nsamples);
		ereport(NOTICE,
				(errmsg("scoreah index \"%s\" built with %d leaves instead of %d: only %d rows to train on",
						RelationGetRelationName(state->index), nleaves, requested,
						state->nsamples),
				 errhint("REINDEX once the table holds its data, for good recall.")));
	}

	/* dimensions per block and blocks */
	model->dim = dim;
	model->metric = state->metric;
	model->nleaves = nleaves;
	model->dpb = opts->dimensionsPerBlock;
	model->residual = opts->residualQuantization;
	model->quantizeCentroids = opts->quantizeCentroids;
	model->nblocks = opts->scoring == SCOREAH_SCORING_AH ?
		(dim + model->dpb - 1) / model->dpb : 0;
	if (model->nblocks > SCOREAH_MAX_BLOCKS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dimensions_per_block = %d gives %d blocks for %d dimensions, more than the %d that fit a page",
						model->dpb, model->nblocks, dim, SCOREAH_MAX_BLOCKS),
				 errhint("Use dimensions_per_block = %d or more.",
						 (dim + SCOREAH_MAX_BLOCKS - 1) / SCOREAH_MAX_BLOCKS)));

	/* memory: sample + centers + k-means work arrays */
	ntree = Min(state->nsamples, opts->leavesTrainingSampleSize);
	npq = Min(state->nsamples, opts->trainingSampleSize);
	need = sizeof(float) * (Size) state->sampleCapacity * dim +
		(Size) nleaves * dim * (sizeof(float) + sizeof(double)) +
		(Size) ntree * sizeof(int) * 2 + (Size) npq * dim * sizeof(float);
	if (need > state->memLimit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("memory required to train %d leaves on %d rows of %d dimensions is %zu MB, maintenance_work_mem is %d MB",
						nleaves, Max(ntree, npq), dim, need / (1024 * 1024) + 1,
						maintenance_work_mem / 1024),
				 errhint("Increase maintenance_work_mem, or lower num_leaves or the training sample sizes.")));

	model->centroids = palloc_extended(sizeof(float) * (Size) nleaves * dim, MCXT_ALLOC_HUGE);
	model->centroidNorms = palloc(sizeof(float) * nleaves);
	model->codebooks = palloc0(sizeof(float) * SCOREAH_CENTERS * dim);

	/* shuffle the reservoir so that any prefix is a uniform sample */
	for (int i = state->nsamples - 1; i > 0; i--)
	{
		int			j = (int) scoreah_random_below(&state->rng, i + 1);

		if (i != j)
		{
			float	   *a = state->samples + (Size) i * dim;
			float	   *b = state->samples + (Size) j * dim;

			for (int d = 0; d < dim; d++)
			{
				float		t = a[d];

				a[d] = b[d];
				b[d] = t;
			}
		}
	}

	/* tree */
	SetPhase(state, SCOREAH_PHASE_TREE);
	kp.k = nleaves;
	kp.iterations = opts->leavesTrainingIterations;
	kp.minClusterSize = opts->minPartitionSize;
	kp.spherical = opts->spherical;
	kp.randomInit = opts->randomInit;
	kp.seed = TREE_SEED;
	scoreah_kmeans(state->samples, ntree, dim, &kp, model->centroids);
	for (int j = 0; j < nleaves; j++)
		model->centroidNorms[j] = scoreah_dot(model->centroids + (Size) j * dim,
											  model->centroids + (Size) j * dim, dim);

	/* codebooks, on residuals of the sample */
	if (model->nblocks > 0)
	{
		SetPhase(state, SCOREAH_PHASE_CODEBOOKS);
		for (int i = 0; i < npq && model->residual; i++)
		{
			float	   *x = state->samples + (Size) i * dim;
			int			leaf = scoreah_nearest_l2(x, model->centroids, model->centroidNorms,
												  nleaves, dim, NULL);
			const float *c = model->centroids + (Size) leaf * dim;

			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			for (int d = 0; d < dim; d++)
				x[d] -= c[d];
		}
		scoreah_pq_train(model, state->samples, npq, opts->trainingIterations, PQ_SEED);
	}
	pfree(state->samples);
	state->samples = NULL;

	/* reserve block 0 for the metapage, write the model */
	metaBlk = AllocBlock(state->index);
	Assert(metaBlk == SCOREAH_METAPAGE_BLKNO);
	(void) metaBlk;
	meta->nleaves = nleaves;
	meta->nblocks = model->nblocks;
	meta->flags |= SCOREAH_FLAG_TRAINED;
	if (model->residual)
		meta->flags |= SCOREAH_FLAG_RESIDUAL;
	meta->numLeavesToSearch = opts->numLeavesToSearch > 0 ?
		Min(opts->numLeavesToSearch, nleaves) : Max(1, (nleaves + 9) / 10);
	meta->centroidBytes = sizeof(float) * nleaves * dim;
	meta->codebookBytes = sizeof(float) * SCOREAH_CENTERS * dim;
	{
		Size		total = (Size) meta->centroidBytes + meta->codebookBytes;
		char	   *blob = palloc_extended(total, MCXT_ALLOC_HUGE);

		memcpy(blob, model->centroids, meta->centroidBytes);
		memcpy(blob + meta->centroidBytes, model->codebooks, meta->codebookBytes);
		meta->blobStart = WriteBlob(state->index, blob, total);
		pfree(blob);
	}
	/* quantize_centroids: the int8 copies are derived when the model loads */

	/* reserve the directory */
	dirPages = (nleaves + SCOREAH_LEAVES_PER_PAGE - 1) / SCOREAH_LEAVES_PER_PAGE;
	dirStart = InvalidBlockNumber;
	for (int i = 0; i < dirPages; i++)
	{
		BlockNumber b = AllocBlock(state->index);

		if (i == 0)
			dirStart = b;
	}
	meta->directoryStart = dirStart;
	meta->directoryPages = dirPages;
	leaves = palloc_extended(sizeof(ScoreahLeafData) * nleaves, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int j = 0; j < nleaves; j++)
	{
		leaves[j].codeHead = leaves[j].codeTail = InvalidBlockNumber;
		leaves[j].vecHead = leaves[j].vecTail = InvalidBlockNumber;
		leaves[j].reuseBlk = InvalidBlockNumber;
	}

	/* pass 2: assign and encode into the sort */
	SetPhase(state, SCOREAH_PHASE_ENCODING);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, state->nrows);
	InitSortDesc(state);
	state->dim = dim;
	state->reportProgress = true;
	nworkers = plan_create_index_workers(RelationGetRelid(state->heap),
										 RelationGetRelid(state->index));
	if (nworkers <= 0 || !EncodeParallel(state, nworkers))
	{
		state->sort = BeginSort(state, maintenance_work_mem, NULL);
		table_index_build_scan(state->heap, state->index, state->indexInfo,
							   true, true, EncodeCallback, (void *) state, NULL);
		tuplesort_performsort(state->sort);
	}

	/* write the leaves */
	SetPhase(state, SCOREAH_PHASE_WRITING);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
	memset(&lw, 0, sizeof(lw));
	lw.index = state->index;
	lw.meta = meta;
	lw.vbytes = ScoreahVectorBytes(meta);
	lw.vbuf = palloc(Max(lw.vbytes, 1));
	lw.nblocks = model->nblocks;
	lw.dim = dim;
	ScoreahComputeLayout(meta, &lw.layout);
	readSlot = MakeSingleTupleTableSlot(state->sortDesc, &TTSOpsMinimalTuple);
	{
		int64		written = 0;

		while (tuplesort_gettupleslot(state->sort, true, false, readSlot, NULL))
		{
			bool		isnull;
			int			leaf = DatumGetInt32(slot_getattr(readSlot, 1, &isnull));
			bytea	   *payload = DatumGetByteaPP(slot_getattr(readSlot, 2, &isnull));
			char	   *p = VARDATA_ANY(payload);
			ItemPointerData tid;

			if (leaf != curLeaf)
			{
				if (curLeaf >= 0)
				{
					FinishLeaf(&lw);
					leaves[curLeaf] = lw.leaf;
				}
				curLeaf = leaf;
				lw.leafno = (uint32) leaf;
				memset(&lw.leaf, 0, sizeof(lw.leaf));
				lw.leaf.codeHead = lw.leaf.codeTail = InvalidBlockNumber;
				lw.leaf.vecHead = lw.leaf.vecTail = InvalidBlockNumber;
				lw.leaf.reuseBlk = InvalidBlockNumber;
			}
			memcpy(&tid, p, sizeof(ItemPointerData));
			p += sizeof(ItemPointerData);
			WriteRow(&lw, &tid, (const uint8 *) p, (const float *) (p + model->nblocks));
			if ((Pointer) payload != DatumGetPointer(slot_getattr(readSlot, 2, &isnull)))
				pfree(payload);
			if ((++written & 1023) == 0)
			{
				CHECK_FOR_INTERRUPTS();
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, written);
			}
		}
		if (curLeaf >= 0)
		{
			FinishLeaf(&lw);
			leaves[curLeaf] = lw.leaf;
		}
		FinishVectors(&lw);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, written);
	}
	ExecDropSingleTupleTableSlot(readSlot);
	ExecDropSingleTupleTableSlot(state->slot);
	tuplesort_end(state->sort);
	EndParallel(state);

	/* directory */
	for (int i = 0; i < dirPages; i++)
	{
		PGAlignedBlock page;
		int			first = i * SCOREAH_LEAVES_PER_PAGE;
		int			n = Min(SCOREAH_LEAVES_PER_PAGE, nleaves - first);

		ScoreahInitPage(page.data, SCOREAH_PAGE_DIRECTORY, SCOREAH_NO_LEAF);
		memcpy(PageGetContents(page.data), leaves + first, sizeof(ScoreahLeafData) * n);
		((PageHeader) page.data)->pd_lower += sizeof(ScoreahLeafData) * n;
		WriteBlock(state->index, dirStart + i, page.data);
	}

	/* metapage last */
	meta->rowsBuilt = state->nencoded;
	meta->builtMeanDistance = state->nencoded > 0 ? state->sumDistance / state->nencoded : 0;
	{
		PGAlignedBlock page;

		ScoreahInitPage(page.data, SCOREAH_PAGE_META, SCOREAH_NO_LEAF);
		memcpy(PageGetContents(page.data), meta, sizeof(ScoreahMetaPageData));
		((PageHeader) page.data)->pd_lower += sizeof(ScoreahMetaPageData);
		WriteBlock(state->index, SCOREAH_METAPAGE_BLKNO, page.data);
	}

	if (RelationNeedsWAL(state->index))
		log_newpage_range(state->index, MAIN_FORKNUM, 0,
						  RelationGetNumberOfBlocks(state->index), true);
}

IndexBuildResult *
scoreahbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	ScoreahBuildState state;
	ScoreahMetaPageData meta;
	double		reltuples;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
	if (TupleDescAttr(RelationGetDescr(index), 0)->atttypid != FLOAT4ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("scoreah indexes columns of type real[], not %s",
						format_type_be(TupleDescAttr(RelationGetDescr(index), 0)->atttypid))));

	memset(&state, 0, sizeof(state));
	state.heap = heap;
	state.index = index;
	state.indexInfo = indexInfo;
	state.opts = ScoreahGetOptions(index);
	state.metric = ScoreahGetMetric(index);
	state.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "scoreah build row",
										 ALLOCSET_DEFAULT_SIZES);
	state.sampleTarget = Max(state.opts->leavesTrainingSampleSize,
							 state.opts->trainingSampleSize);
	state.memLimit = (Size) maintenance_work_mem * 1024;
	state.threshold = state.opts->anisotropicThreshold;
	scoreah_random_init(&state.rng, SAMPLE_SEED);
	CheckOptions(&state);

	SetPhase(&state, SCOREAH_PHASE_SAMPLING);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
									   SampleCallback, (void *) &state, NULL);

	FillMeta(&state, &meta);
	if (state.nrows == 0)
	{
		ereport(NOTICE,
				(errmsg("scoreah index \"%s\" created on a table with no rows to index: it scores every row exactly until rebuilt",
						RelationGetRelationName(index)),
				 errhint("REINDEX once the table holds its data, to train the partitions and codebooks.")));
		WriteUntrained(index, MAIN_FORKNUM, &meta);
	}
	else
		BuildTrained(&state, &meta);

	SetPhase(&state, 0);
	MemoryContextDelete(state.tmpCtx);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = state.nencoded;
	return result;
}

/*
 * The init fork of an unlogged index: an untrained, empty index.
 */
void
scoreahbuildempty(Relation index)
{
	ScoreahBuildState state;
	ScoreahMetaPageData meta;

	memset(&state, 0, sizeof(state));
	state.index = index;
	state.opts = ScoreahGetOptions(index);
	state.metric = ScoreahGetMetric(index);
	FillMeta(&state, &meta);
	WriteUntrained(index, INIT_FORKNUM, &meta);
}
