/*-------------------------------------------------------------------------
 *
 * build_parallel.c
 *	  Parallel encoding for CREATE INDEX.
 *
 * PostgreSQL 15 offers parallel workers to btree alone, so scoreah sets up
 * its own ParallelContext as nbtree does: the leader trains the model,
 * then it and the workers scan parts of the heap, assign and encode rows
 * into their own tuplesorts over one shared file set, and the leader
 * merges them and writes the pages (build_write.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"
#include "utils/wait_event.h"

#include "scoreah.h"

#define PARALLEL_KEY_SHARED		UINT64CONST(0xA5C0000000000001)
#define PARALLEL_KEY_TUPLESORT	UINT64CONST(0xA5C0000000000002)
#define PARALLEL_KEY_MODEL		UINT64CONST(0xA5C0000000000003)
#define PARALLEL_KEY_QUERY_TEXT UINT64CONST(0xA5C0000000000004)
#define PARALLEL_KEY_CALIB		UINT64CONST(0xA5C0000000000005)
#define PARALLEL_KEY_KMEANS		UINT64CONST(0xA5C0000000000006)
#define PARALLEL_KEY_CODEBOOKS	UINT64CONST(0xA5C0000000000007)

typedef struct ScoreahShared
{
	/* set by the leader before launch */
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	int			scantuplesortstates;
	int			metric;
	int			format;
	int			dim;
	int			nleaves;
	int			nblocks;
	int			dpb;
	bool		residual;
	bool		rowBias;
	double		threshold;
	double		scale;
	double		meanNorm;
	int			calibQueries;	/* 0: no calibration */
	int			calibK;
	int			calibSlots;		/* one per participant */
	int			sortmem;		/* kB for each participant's sort */

	/* workers report here */
	ConditionVariable workersdonecv;
	slock_t		mutex;
	int			nparticipantsdone;
	int64		nencoded;
	pg_atomic_uint64 progress;	/* rows encoded so far, all participants */

	/* ParallelTableScanDescData follows */
} ScoreahShared;

#define ParallelTableScanFromShared(shared) \
	(ParallelTableScanDesc) ((char *) (shared) + BUFFERALIGN(sizeof(ScoreahShared)))

PGDLLEXPORT void ScoreahParallelBuildMain(dsm_segment *seg, shm_toc *toc);

/* Rows encoded so far by all participants, after adding n of ours */
int64
ScoreahBuildAddProgress(struct ScoreahShared *shared, int64 n)
{
	return (int64) pg_atomic_add_fetch_u64(&shared->progress, n);
}

/*
 * Calibration in shared memory (PARALLEL_KEY_CALIB): the queries and their
 * row ids, then for each participant (workers by ParallelWorkerNumber, the
 * leader last) its neighbour counts and lists, merged by the leader.
 */
static Size
CalibQueryBytes(int nq, int dim)
{
	return MAXALIGN(sizeof(float) * (Size) nq * dim) + MAXALIGN(sizeof(uint64) * nq);
}

static Size
CalibSlotBytes(int nq, int k)
{
	return MAXALIGN(sizeof(int) * nq) + MAXALIGN(sizeof(ScoreahCalibNeighbor) * (Size) nq * k);
}

static int *
CalibSlotCounts(ScoreahShared *shared, char *calibbuf, int slot)
{
	return (int *) (calibbuf + CalibQueryBytes(shared->calibQueries, shared->dim) +
					CalibSlotBytes(shared->calibQueries, shared->calibK) * slot);
}

static ScoreahCalibNeighbor *
CalibSlotNeighbors(ScoreahShared *shared, char *calibbuf, int slot)
{
	return (ScoreahCalibNeighbor *) ((char *) CalibSlotCounts(shared, calibbuf, slot) +
									 MAXALIGN(sizeof(int) * shared->calibQueries));
}

/*
 * Model arrays in one float buffer: centroids, their norms, codebooks and
 * the codebooks transposed (one copy for every participant's encoding)
 */
static Size
ModelFloats(int nleaves, int dim)
{
	return (Size) nleaves * dim + nleaves + (Size) 2 * SCOREAH_CENTERS * dim;
}

/*
 * One participant's share of the encoding pass (the leader's or a
 * worker's): scan its part of the heap into its own tuplesort.
 */
static void
ParticipateInEncoding(ScoreahShared *shared, Sharedsort *sharedsort,
					  Relation heap, Relation index, float *modelbuf,
					  char *calibbuf, int slot, int sortmem, bool progress)
{
	ScoreahBuildState state;
	SortCoordinate coordinate;
	TableScanDesc scan;
	ScoreahCalibBuildData calib;

	memset(&state, 0, sizeof(state));
	state.heap = heap;
	state.index = index;
	state.indexInfo = BuildIndexInfo(index);
	state.indexInfo->ii_Concurrent = shared->isconcurrent;
	state.opts = ScoreahGetOptions(index);
	state.metric = shared->metric;
	state.format = shared->format;
	state.dim = shared->dim;
	state.nkeys = ScoreahKeyKinds(index, state.keyKinds);
	state.vecCol = ScoreahVectorColumn(index);
	state.threshold = shared->threshold;
	state.scale = shared->scale;
	state.meanNorm = shared->meanNorm;
	state.model.dim = shared->dim;
	state.model.metric = shared->metric;
	state.model.nleaves = shared->nleaves;
	state.model.nblocks = shared->nblocks;
	state.model.dpb = shared->dpb;
	state.model.residual = shared->residual;
	state.model.rowBias = shared->rowBias;
	state.model.centroids = modelbuf;
	state.model.centroidNorms = modelbuf + (Size) shared->nleaves * shared->dim;
	state.model.codebooks = state.model.centroidNorms + shared->nleaves;
	state.model.codebooksT = state.model.codebooks + (Size) SCOREAH_CENTERS * shared->dim;
	state.shared = shared;
	state.reportProgress = progress;
	if (shared->calibQueries > 0)
	{
		int			nq = shared->calibQueries;

		ScoreahCalibInit(&calib, (float *) calibbuf,
						 (uint64 *) (calibbuf + MAXALIGN(sizeof(float) * (Size) nq * shared->dim)),
						 nq, shared->dim);
		state.calib = &calib;
	}
	state.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "scoreah build row",
										 ALLOCSET_DEFAULT_SIZES);
	ScoreahBuildInitSort(&state);

	coordinate = palloc0(sizeof(SortCoordinateData));
	coordinate->isWorker = true;
	coordinate->nParticipants = -1;
	coordinate->sharedsort = sharedsort;
	state.sort = ScoreahBuildBeginSort(&state, sortmem, coordinate);

	scan = table_beginscan_parallel(heap, ParallelTableScanFromShared(shared));
	table_index_build_scan(heap, index, state.indexInfo, true, progress,
						   ScoreahBuildEncodeCallback, (void *) &state, scan);
	ScoreahBuildEncodeFinish(&state);
	tuplesort_performsort(state.sort);

	if (state.calib)
	{
		memcpy(CalibSlotCounts(shared, calibbuf, slot), calib.nnCount,
			   sizeof(int) * calib.nqueries);
		memcpy(CalibSlotNeighbors(shared, calibbuf, slot), calib.nn,
			   sizeof(ScoreahCalibNeighbor) * (Size) calib.nqueries * calib.k);
	}

	SpinLockAcquire(&shared->mutex);
	shared->nparticipantsdone++;
	shared->nencoded += state.nencoded;
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
	char	   *calibbuf;
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
	calibbuf = shm_toc_lookup(toc, PARALLEL_KEY_CALIB, true);

	ParticipateInEncoding(shared, sharedsort, heap, index, modelbuf,
						  calibbuf, ParallelWorkerNumber, shared->sortmem, false);

	index_close(index, indexLockmode);
	table_close(heap, heapLockmode);
}

/*
 * Encode with nworkers workers plus the leader.  Returns false (and the
 * caller encodes serially) when no worker could be started.  On success
 * state->sort holds the merged, sorted rows, and the parallel context stays
 * up until EndParallel (the sort's files live in its shared memory).
 */
bool
ScoreahBuildEncodeParallel(ScoreahBuildState *state, int request)
{
	ParallelContext *pcxt;
	Snapshot	snapshot;
	Size		estshared,
				estsort,
				modelbytes,
				calibbytes = 0;
	char	   *calibbuf = NULL;
	ScoreahCalib calib = state->calib;
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
	if (calib)
	{
		calibbytes = CalibQueryBytes(calib->nqueries, model->dim) +
			CalibSlotBytes(calib->nqueries, calib->k) * (request + 1);
		shm_toc_estimate_chunk(&pcxt->estimator, calibbytes);
		shm_toc_estimate_keys(&pcxt->estimator, 1);
	}
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
	shared->sortmem = ScoreahBuildSortMem(state, scantuplesortstates, modelbytes + calibbytes);
	shared->metric = state->metric;
	shared->format = state->format;
	shared->dim = model->dim;
	shared->nleaves = model->nleaves;
	shared->nblocks = model->nblocks;
	shared->dpb = model->dpb;
	shared->residual = model->residual;
	shared->rowBias = model->rowBias;
	shared->threshold = state->threshold;
	shared->scale = state->scale;
	shared->meanNorm = state->meanNorm;
	if (calib)
	{
		shared->calibQueries = calib->nqueries;
		shared->calibK = calib->k;
		shared->calibSlots = request + 1;
	}
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
	memcpy(modelbuf + (Size) model->nleaves * model->dim + model->nleaves +
		   (Size) SCOREAH_CENTERS * model->dim,
		   model->codebooksT, sizeof(float) * SCOREAH_CENTERS * model->dim);

	shm_toc_insert(pcxt->toc, PARALLEL_KEY_SHARED, shared);
	shm_toc_insert(pcxt->toc, PARALLEL_KEY_TUPLESORT, sharedsort);
	shm_toc_insert(pcxt->toc, PARALLEL_KEY_MODEL, modelbuf);
	if (calib)
	{
		calibbuf = shm_toc_allocate(pcxt->toc, calibbytes);
		memset(calibbuf, 0, calibbytes);
		memcpy(calibbuf, calib->queries, sizeof(float) * (Size) calib->nqueries * model->dim);
		memcpy(calibbuf + MAXALIGN(sizeof(float) * (Size) calib->nqueries * model->dim),
			   calib->queryIds, sizeof(uint64) * calib->nqueries);
		shm_toc_insert(pcxt->toc, PARALLEL_KEY_CALIB, calibbuf);
	}
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
						  calibbuf, request, shared->sortmem, true);

	/*
	 * A worker launched but never started (its fork failed) would never
	 * count itself done, and the loop below would wait for ever (a review:
	 * with the postmaster unable to fork, CREATE INDEX hung until
	 * statement_timeout): this raises "parallel worker failed to
	 * initialize" instead, as a B-tree build does.
	 */
	WaitForParallelWorkersToAttach(pcxt);

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
	if (calib)
		for (int slot = 0; slot < shared->calibSlots; slot++)
			ScoreahCalibMerge(calib, CalibSlotNeighbors(shared, calibbuf, slot),
							  CalibSlotCounts(shared, calibbuf, slot));

	/* merge */
	coordinate = palloc0(sizeof(SortCoordinateData));
	coordinate->isWorker = false;
	coordinate->nParticipants = nparticipants;
	coordinate->sharedsort = sharedsort;
	/* the merge, beside the model, the calibration and their shared copies */
	state->sort = ScoreahBuildBeginSort(state, ScoreahBuildSortMem(state, 1, modelbytes + calibbytes),
										coordinate);
	tuplesort_performsort(state->sort);

	state->pcxt = pcxt;
	state->snapshot = snapshot;
	return true;
}

void
ScoreahBuildEndParallel(ScoreahBuildState *state)
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

/* ---- parallel k-means for the tree ---- */

/*
 * Shared memory of a parallel k-means run: the sample, the centers of the
 * current iteration, the assignment, and each chunk's sums and counts
 * (SCOREAH_KMEANS_CHUNKS of them).  Workers are launched for each
 * iteration and take chunks until none is left; the leader takes chunks
 * too, then adds the chunks' sums in chunk order (kmeans.c does the same
 * in one process, so both give the same centers).
 */
typedef struct ScoreahKmeansShared
{
	int			n;
	int			dim;
	int			k;
	pg_atomic_uint32 nextChunk;
	int			changed[SCOREAH_KMEANS_CHUNKS];
	/* offsets from the start of this struct */
	Size		dataOff;
	Size		centersOff;
	Size		cnormsOff;
	Size		assignOff;
	Size		sumsOff;		/* SCOREAH_KMEANS_CHUNKS x k x dim doubles */
	Size		countsOff;		/* SCOREAH_KMEANS_CHUNKS x k ints */
} ScoreahKmeansShared;

#define KS_PTR(ks, off, type) ((type) ((char *) (ks) + (ks)->off))

/*
 * A parallel context for training: entry point function, one chunk of
 * shared memory of size bytes under key (*chunk), in parallel mode.  NULL,
 * with nothing left behind, when the chunk would pass budget (what the
 * build's own training memory leaves of maintenance_work_mem) or no
 * dynamic shared memory could be had: the caller trains in its own
 * process.  EndTrainingContext undoes it.
 */
static ParallelContext *
BeginTrainingContext(const char *function, int request, uint64 key, Size size, Size budget,
					 void **chunk)
{
	ParallelContext *pcxt;

	if (size > budget)
		return NULL;
	EnterParallelMode();
	pcxt = CreateParallelContext("scoreah", function, request);
	shm_toc_estimate_chunk(&pcxt->estimator, size);
	shm_toc_estimate_keys(&pcxt->estimator, 1);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return NULL;
	}
	*chunk = shm_toc_allocate(pcxt->toc, size);
	shm_toc_insert(pcxt->toc, key, *chunk);
	return pcxt;
}

static void
EndTrainingContext(ParallelContext *pcxt)
{
	DestroyParallelContext(pcxt);
	ExitParallelMode();
}

typedef struct ScoreahKmeansRun
{
	ParallelContext *pcxt;
	ScoreahKmeansShared *ks;
	bool		launched;		/* workers were launched once */
	int			nworkers;		/* launched in the last iteration */
} ScoreahKmeansRun;

PGDLLEXPORT void ScoreahParallelKmeansMain(dsm_segment *seg, shm_toc *toc);

static Size
KmeansSharedSize(int n, int dim, int k, ScoreahKmeansShared *layout)
{
	Size		off = MAXALIGN(sizeof(ScoreahKmeansShared));

	layout->dataOff = off;
	off += MAXALIGN(sizeof(float) * (Size) n * dim);
	layout->centersOff = off;
	off += MAXALIGN(sizeof(float) * (Size) k * dim);
	layout->cnormsOff = off;
	off += MAXALIGN(sizeof(float) * k);
	layout->assignOff = off;
	off += MAXALIGN(sizeof(int) * (Size) n);
	layout->sumsOff = off;
	off += MAXALIGN(sizeof(double) * (Size) SCOREAH_KMEANS_CHUNKS * k * dim);
	layout->countsOff = off;
	off += MAXALIGN(sizeof(int) * (Size) SCOREAH_KMEANS_CHUNKS * k);
	return off;
}

/* Take chunks until none is left (workers and the leader alike) */
static void
KmeansTakeChunks(ScoreahKmeansShared *ks)
{
	const float *data = KS_PTR(ks, dataOff, const float *);
	const float *centers = KS_PTR(ks, centersOff, const float *);
	const float *cnorms = KS_PTR(ks, cnormsOff, const float *);
	int		   *assign = KS_PTR(ks, assignOff, int *);
	Size		nsum = (Size) ks->k * ks->dim;

	for (;;)
	{
		uint32		c = pg_atomic_fetch_add_u32(&ks->nextChunk, 1);
		double	   *sums;
		int		   *counts;
		int			lo,
					hi;

		if (c >= SCOREAH_KMEANS_CHUNKS)
			break;
		sums = KS_PTR(ks, sumsOff, double *) + nsum * c;
		counts = KS_PTR(ks, countsOff, int *) + (Size) ks->k * c;
		memset(sums, 0, sizeof(double) * nsum);
		memset(counts, 0, sizeof(int) * ks->k);
		scoreah_kmeans_chunk(ks->n, (int) c, &lo, &hi);
		ks->changed[c] = scoreah_kmeans_assign_range(data, ks->dim, centers, cnorms, ks->k,
													 lo, hi, assign, sums, counts);
	}
}

/* Entry point of a parallel k-means worker */
void
ScoreahParallelKmeansMain(dsm_segment *seg, shm_toc *toc)
{
	KmeansTakeChunks(shm_toc_lookup(toc, PARALLEL_KEY_KMEANS, false));
}

/* One iteration's assignment (ScoreahKmeansAssignFn) */
static int
KmeansAssignParallel(void *arg, const float *centers, const float *cnorms, int *assign,
					 double *sums, int *counts)
{
	ScoreahKmeansRun *run = (ScoreahKmeansRun *) arg;
	ScoreahKmeansShared *ks = run->ks;
	Size		nsum = (Size) ks->k * ks->dim;
	int			changed = 0;

	memcpy(KS_PTR(ks, centersOff, float *), centers, sizeof(float) * nsum);
	memcpy(KS_PTR(ks, cnormsOff, float *), cnorms, sizeof(float) * ks->k);
	memcpy(KS_PTR(ks, assignOff, int *), assign, sizeof(int) * ks->n);
	pg_atomic_write_u32(&ks->nextChunk, 0);

	if (run->launched)
		ReinitializeParallelDSM(run->pcxt);
	LaunchParallelWorkers(run->pcxt);
	run->launched = true;
	run->nworkers = run->pcxt->nworkers_launched;
	KmeansTakeChunks(ks);
	WaitForParallelWorkersToFinish(run->pcxt);

	/* the chunks' sums in chunk order, as one process adds them */
	memset(sums, 0, sizeof(double) * nsum);
	memset(counts, 0, sizeof(int) * ks->k);
	for (int c = 0; c < SCOREAH_KMEANS_CHUNKS; c++)
	{
		const double *cs = KS_PTR(ks, sumsOff, double *) + nsum * c;
		const int  *cc = KS_PTR(ks, countsOff, int *) + (Size) ks->k * c;

		for (Size i = 0; i < nsum; i++)
			sums[i] += cs[i];
		for (int j = 0; j < ks->k; j++)
			counts[j] += cc[j];
		changed += ks->changed[c];
	}
	memcpy(assign, KS_PTR(ks, assignOff, int *), sizeof(int) * ks->n);
	return changed;
}

/*
 * k-means for the tree with parallel workers assigning the points, when
 * the run is large enough to be worth them (full search, 2.5 x 10^8
 * multiply-adds an iteration) and its shared memory stays within budget
 * (what the sample and training leave of maintenance_work_mem).  Returns
 * false (nothing done) otherwise: the caller runs k-means in its own
 * process.  *nworkers receives how many workers the last iteration had.
 */
bool
ScoreahBuildKmeansParallel(ScoreahBuildState *state, const float *data, int n, int dim,
						   ScoreahKmeansParams *params, float *centers, int request,
						   Size budget, int *nworkers)
{
	ScoreahKmeansShared layout;
	ScoreahKmeansRun run;
	void	   *chunk;

	*nworkers = 0;
	if (request <= 0 || !scoreah_kmeans_full_search(params->k, dim) ||
		(double) n * params->k * dim < 2.5e8)
		return false;
	run.pcxt = BeginTrainingContext("ScoreahParallelKmeansMain", request, PARALLEL_KEY_KMEANS,
									KmeansSharedSize(n, dim, params->k, &layout), budget, &chunk);
	if (run.pcxt == NULL)
		return false;
	run.ks = chunk;
	*run.ks = layout;
	run.ks->n = n;
	run.ks->dim = dim;
	run.ks->k = params->k;
	pg_atomic_init_u32(&run.ks->nextChunk, 0);
	memcpy(KS_PTR(run.ks, dataOff, float *), data, sizeof(float) * (Size) n * dim);
	run.launched = false;
	run.nworkers = 0;

	params->assignFn = KmeansAssignParallel;
	params->assignArg = &run;
	scoreah_kmeans(data, n, dim, params, centers);
	params->assignFn = NULL;
	params->assignArg = NULL;

	*nworkers = run.nworkers;
	EndTrainingContext(run.pcxt);
	return true;
}

/* ---- codebook training: the blocks shared out ---- */

/*
 * The sample residuals and the codebooks, in one chunk of shared memory;
 * participants take blocks in turn and write each block's centers in
 * place.
 */
typedef struct ScoreahCodebooksShared
{
	int			n;
	int			dim;
	int			dpb;
	int			nblocks;
	int			iterations;
	uint64		seed;
	pg_atomic_uint32 nextBlock;
	/* offsets from the start of this struct */
	Size		dataOff;		/* n x dim floats */
	Size		booksOff;		/* 16 x dim floats, the model's layout */
} ScoreahCodebooksShared;

PGDLLEXPORT void ScoreahParallelCodebooksMain(dsm_segment *seg, shm_toc *toc);

static Size
CodebooksSharedSize(int n, int dim, ScoreahCodebooksShared *layout)
{
	Size		off = MAXALIGN(sizeof(ScoreahCodebooksShared));

	layout->dataOff = off;
	off += MAXALIGN(sizeof(float) * (Size) n * dim);
	layout->booksOff = off;
	off += MAXALIGN(sizeof(float) * (Size) SCOREAH_CENTERS * dim);
	return off;
}

/* Train blocks until none is left (workers and the leader alike) */
static void
CodebooksTakeBlocks(ScoreahCodebooksShared *cs)
{
	const float *data = KS_PTR(cs, dataOff, const float *);
	float	   *books = KS_PTR(cs, booksOff, float *);
	float	   *sub = palloc(sizeof(float) * (Size) Max(cs->n, 1) * cs->dpb);

	for (;;)
	{
		uint32		b = pg_atomic_fetch_add_u32(&cs->nextBlock, 1);
		int			start;

		if (b >= (uint32) cs->nblocks)
			break;
		start = (int) b * cs->dpb;
		/* the model's layout: block b's 16 centers at 16 * b * dpb */
		scoreah_pq_train_block(data, cs->n, cs->dim, start, Min(cs->dpb, cs->dim - start),
							   cs->iterations, cs->seed + b, sub,
							   books + (Size) SCOREAH_CENTERS * start);
	}
	pfree(sub);
}

/* Entry point of a parallel codebook worker */
void
ScoreahParallelCodebooksMain(dsm_segment *seg, shm_toc *toc)
{
	CodebooksTakeBlocks(shm_toc_lookup(toc, PARALLEL_KEY_CODEBOOKS, false));
}

/*
 * The model's codebooks trained by the leader and parallel workers, a
 * block at a time, when there is enough work (as for the tree's k-means:
 * 16 centers x dimensions x rows x iterations of at least 5 x 10^7) and
 * the residuals' copy in shared memory stays within budget (what the
 * sample and training leave of maintenance_work_mem).  Every block is
 * trained from its own data and seed, so the codebooks are the same
 * whoever trains which.  Returns false (nothing done) otherwise.
 * GloVe-100 331k with one worker: 1.7 s of training in the leader alone.
 */
bool
ScoreahBuildCodebooksParallel(ScoreahModel model, const float *samples, int n,
							  int iterations, uint64 seed, int request, Size budget,
							  int *nworkers)
{
	ScoreahCodebooksShared layout;
	ScoreahCodebooksShared *cs;
	ParallelContext *pcxt;
	void	   *chunk;
	int			dim = model->dim;

	*nworkers = 0;
	if (request <= 0 || model->nblocks < 2 ||
		(double) n * dim * SCOREAH_CENTERS * iterations < 5e7)
		return false;
	pcxt = BeginTrainingContext("ScoreahParallelCodebooksMain", request, PARALLEL_KEY_CODEBOOKS,
								CodebooksSharedSize(n, dim, &layout), budget, &chunk);
	if (pcxt == NULL)
		return false;
	cs = chunk;
	*cs = layout;
	cs->n = n;
	cs->dim = dim;
	cs->dpb = model->dpb;
	cs->nblocks = model->nblocks;
	cs->iterations = iterations;
	cs->seed = seed;
	pg_atomic_init_u32(&cs->nextBlock, 0);
	memcpy(KS_PTR(cs, dataOff, float *), samples, sizeof(float) * (Size) n * dim);
	memset(KS_PTR(cs, booksOff, float *), 0, sizeof(float) * (Size) SCOREAH_CENTERS * dim);

	LaunchParallelWorkers(pcxt);
	*nworkers = pcxt->nworkers_launched;
	CodebooksTakeBlocks(cs);
	WaitForParallelWorkersToFinish(pcxt);
	memcpy(model->codebooks, KS_PTR(cs, booksOff, float *), sizeof(float) * (Size) SCOREAH_CENTERS * dim);
	EndTrainingContext(pcxt);
	return true;
}
