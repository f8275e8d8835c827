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
 *	  a tuplesort keyed by leaf and TID, which spills to disk past
 *	  maintenance_work_mem.
 * 5. The sorted stream is written leaf by leaf (build_write.c): a chain of
 *	  code pages per leaf and the vectors on pages the leaves share, then
 *	  the directory and the metapage.  Pages are written through shared
 *	  buffers without WAL and the whole relation is WAL-logged once at the
 *	  end.
 *
 * Step 4 runs in parallel workers when the planner grants them
 * (build_parallel.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/progress.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplesort.h"

#include "scoreah.h"

#define TREE_SEED	UINT64CONST(20200718)
#define PQ_SEED		UINT64CONST(19080371)
#define SAMPLE_SEED UINT64CONST(42)


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
		case SCOREAH_PHASE_CALIBRATING:
			return "calibrating";
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

/* ---- row validation shared by both scans ---- */

/* A bad row's errors say which row: its TID in the table */
typedef struct RowErrorArg
{
	ScoreahBuildState *state;
	ItemPointer tid;
} RowErrorArg;

static void
RowErrorContext(void *arg)
{
	RowErrorArg *a = (RowErrorArg *) arg;

	errcontext("row (%u,%u) of table \"%s\"",
			   ItemPointerGetBlockNumberNoCheck(a->tid),
			   ItemPointerGetOffsetNumberNoCheck(a->tid),
			   a->state->heap ? RelationGetRelationName(a->state->heap) : "?");
}

#define PUSH_ROW_CONTEXT(state_, tid_) \
	RowErrorArg rowArg = {(state_), (tid_)}; \
	ErrorContextCallback rowCallback = {error_context_stack, RowErrorContext, &rowArg}; \
	error_context_stack = &rowCallback
#define POP_ROW_CONTEXT() (error_context_stack = rowCallback.previous)

/*
 * The vector of a heap row, checked, in tmpCtx.  Returns NULL for rows the
 * index leaves out (zero vectors under cosine).  *unit receives the unit
 * copy for cosine, the vector itself otherwise.
 */
static float *
RowVector(ScoreahBuildState *state, Datum value, float **unit)
{
	int			dim;
	float	   *x = ScoreahDatumToVector(state->format, value, &dim, "indexed vector");

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
		*unit = palloc(sizeof(float) * dim);
		if (scoreah_normalize(x, dim, *unit) == 0)
			return NULL;
	}
	if (state->scale != 1.0)
	{
		float	   *s = *unit == x ? palloc(sizeof(float) * dim) : *unit;

		scoreah_scale(*unit, dim, state->scale, s);
		*unit = s;
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

	oldCtx = MemoryContextSwitchTo(state->tmpCtx);
	{
		PUSH_ROW_CONTEXT(state, tid);
		x = isnull[state->vecCol] ? NULL : RowVector(state, values[state->vecCol], &unit);
		POP_ROW_CONTEXT();
	}
	if (x == NULL)
		state->nextra++;		/* NULL vector, or zero under cosine */
	else
	{
		if (state->sampleAuto && state->sampleTarget == 0)
			ScoreahBuildChooseSampleSize(state);
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
				{
					state->samples = palloc_extended(bytes, MCXT_ALLOC_HUGE);
					state->sampleIds = palloc(sizeof(uint64) * newcap);
				}
				else
				{
					state->samples = repalloc_huge(state->samples, bytes);
					state->sampleIds = repalloc(state->sampleIds, sizeof(uint64) * newcap);
				}
				MemoryContextSwitchTo(state->tmpCtx);
				state->sampleCapacity = newcap;
			}
			memcpy(state->samples + (Size) slot * state->dim, unit,
				   sizeof(float) * state->dim);
			state->sampleIds[slot] = ScoreahTidToId(tid);
		}
	}
	MemoryContextSwitchTo(oldCtx);
	MemoryContextReset(state->tmpCtx);
}

/* ---- options ---- */

static void
CheckOptions(ScoreahBuildState *state)
{
	ScoreahCheckOptionValues(state->opts);
	ScoreahCheckIndexOptions(state->index, state->opts);
}

/* ---- pass 2: assign and encode ---- */

/* The row's keys at the end of its sort payload (p points there) */
static void
PutKeys(ScoreahBuildState *state, char *p, Datum *values, bool *isnull)
{
	int64		keys[SCOREAH_MAX_KEYS];
	uint32		nulls;

	ScoreahRowKeys(state->index, state->nkeys, values, isnull, keys, &nulls);
	memcpy(p, keys, sizeof(int64) * state->nkeys);
	memcpy(p + sizeof(int64) * state->nkeys, &nulls, sizeof(uint32));
}

/*
 * A row's payload (its TID, its codes, its vector as the index stores it,
 * its keys) into the sort under its leaf and its TID: rows reach their
 * leaves in TID order however the heap scan was split among workers, so a
 * parallel build writes the pages a serial one does (scans that sum over
 * rows in page order get the same bits).
 */
static void
SortRow(ScoreahBuildState *state, int leaf, bytea *payload, double distance)
{
	ExecClearTuple(state->slot);
	state->slot->tts_values[0] = Int32GetDatum(leaf);
	state->slot->tts_isnull[0] = false;
	state->slot->tts_values[1] =
		Int64GetDatum((int64) ScoreahTidToId((ItemPointer) VARDATA(payload)));
	state->slot->tts_isnull[1] = false;
	state->slot->tts_values[2] = PointerGetDatum(payload);
	state->slot->tts_isnull[2] = false;
	state->slot->tts_values[3] = Float8GetDatum(distance);
	state->slot->tts_isnull[3] = false;
	ExecStoreVirtualTuple(state->slot);
	tuplesort_puttupleslot(state->sort, state->slot);
}

/*
 * A row of an extra leaf into the sort: its TID and keys (the writer reads
 * the payload by the leaf).
 */
static void
SortExtraRow(ScoreahBuildState *state, ItemPointer tid, int leaf, Datum *values, bool *isnull)
{
	Size		plen = sizeof(ItemPointerData) + sizeof(int64) * state->nkeys + sizeof(uint32);
	bytea	   *payload = palloc(VARHDRSZ + plen);
	char	   *p = VARDATA(payload);

	SET_VARSIZE(payload, VARHDRSZ + plen);
	memcpy(p, tid, sizeof(ItemPointerData));
	PutKeys(state, p + sizeof(ItemPointerData), values, isnull);
	SortRow(state, leaf, payload, 0);
}

/*
 * The waiting rows: their leaves searched together (several rows a pass
 * over the centroids, which one row at a time read from L2 for each),
 * their calibration offers, codes, and places in the sort, in the order
 * the scan gave them.
 */
static void
EncodePending(ScoreahBuildState *state)
{
	ScoreahModel model = &state->model;
	int			dim = state->dim;
	int			n = state->npending;
	int			leaves[SCOREAH_ENCODE_BATCH];
	float		dist[SCOREAH_ENCODE_BATCH];
	MemoryContext oldCtx;

	if (n == 0)
		return;
	oldCtx = MemoryContextSwitchTo(state->pendingCtx);
	scoreah_nearest_l2_rows(state->pendingUnits, n, model->centroids, model->centroidNorms,
							model->nleaves, dim, leaves, dist);
	if (state->calib)
	{
		uint64		ids[SCOREAH_ENCODE_BATCH];

		for (int i = 0; i < n; i++)
			ids[i] = ScoreahTidToId((ItemPointer) VARDATA(state->pendingRows[i]));
		ScoreahCalibOffer(state->calib, state->metric, state->pendingUnits, n, ids, leaves);
	}
	for (int i = 0; i < n; i++)
	{
		const float *unit = state->pendingUnits + (Size) i * dim;
		char	   *codes = VARDATA(state->pendingRows[i]) + sizeof(ItemPointerData);

		if (model->nblocks > 0)
		{
			float	   *res = palloc(sizeof(float) * dim);

			scoreah_model_residual(model, unit, leaves[i], res);
			scoreah_pq_encode(model, res, unit, state->threshold, (uint8 *) codes);
		}
		SortRow(state, leaves[i], state->pendingRows[i], sqrt(dist[i]));
		state->nencoded++;
		if ((state->nencoded & 1023) == 0)
		{
			int64		done = state->nencoded;

			if (state->shared)
				done = ScoreahBuildAddProgress(state->shared, 1024);
			if (state->reportProgress)
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
		}
	}
	state->npending = 0;
	MemoryContextSwitchTo(oldCtx);
	MemoryContextReset(state->pendingCtx);
}

void
ScoreahBuildEncodeCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
						   bool tupleIsAlive, void *arg)
{
	ScoreahBuildState *state = (ScoreahBuildState *) arg;
	ScoreahModel model = &state->model;
	MemoryContext oldCtx;
	float	   *x,
			   *unit;

	if (state->pendingCtx == NULL)
	{
		/* beside tmpCtx: the build's context, not the scan's */
		MemoryContext buildCtx = MemoryContextGetParent(state->tmpCtx);

		state->pendingCtx = AllocSetContextCreate(buildCtx, "scoreah build rows",
												  ALLOCSET_DEFAULT_SIZES);
		state->pendingUnits = MemoryContextAlloc(buildCtx,
												 sizeof(float) * SCOREAH_ENCODE_BATCH * state->dim);

		/*
		 * The payload carries the vector as the index will store it
		 * (nothing for reordering_storage = table, half precision for
		 * float16): the sort moves no more than the pages will hold.
		 */
		memset(&state->storeMeta, 0, sizeof(state->storeMeta));
		state->storeMeta.format = state->format;
		state->storeMeta.dimensions = state->dim;
		state->storeMeta.reorderStorage = ScoreahBuildStorage(state);
		state->storeBytes = ScoreahVectorBytes(&state->storeMeta);
	}
	oldCtx = MemoryContextSwitchTo(state->tmpCtx);
	{
		/* errors about this row (its vector, its keys) name it */
		PUSH_ROW_CONTEXT(state, tid);

		x = isnull[state->vecCol] ? NULL : RowVector(state, values[state->vecCol], &unit);
		if (x == NULL)
		{
			/* NULL vector, or zero vector under cosine: an extra leaf */
			SortExtraRow(state, tid, isnull[state->vecCol] ? model->nleaves + 1 : model->nleaves,
						 values, isnull);
		}
		else
		{
			int			dim = state->dim;
			Size		plen;
			bytea	   *payload;
			char	   *p;

			if (state->metric != SCOREAH_METRIC_COSINE)
				ScoreahCheckModelRange(unit, x, dim, state->meanNorm, state->scale,
									   "indexed vector", InvalidOid);

			/* the payload now, with room for the codes the batch will give */
			plen = sizeof(ItemPointerData) + model->nblocks + state->storeBytes +
				sizeof(int64) * state->nkeys + sizeof(uint32);
			payload = MemoryContextAlloc(state->pendingCtx, VARHDRSZ + plen);
			p = VARDATA(payload);
			SET_VARSIZE(payload, VARHDRSZ + plen);
			memcpy(p, tid, sizeof(ItemPointerData));
			p += sizeof(ItemPointerData) + model->nblocks;
			if (state->storeBytes > 0)
				ScoreahPackVector(&state->storeMeta, x, p);
			p += state->storeBytes;
			PutKeys(state, p, values, isnull);
			memcpy(state->pendingUnits + (Size) state->npending * dim, unit, sizeof(float) * dim);
			state->pendingRows[state->npending++] = payload;
		}
		POP_ROW_CONTEXT();
	}
	MemoryContextSwitchTo(oldCtx);
	MemoryContextReset(state->tmpCtx);
	if (state->npending == SCOREAH_ENCODE_BATCH)
		EncodePending(state);
}

/*
 * After the encoding scan: the rows still waiting, and the batch's memory.
 */
void
ScoreahBuildEncodeFinish(ScoreahBuildState *state)
{
	EncodePending(state);
	if (state->pendingCtx)
	{
		MemoryContextDelete(state->pendingCtx);
		pfree(state->pendingUnits);
		state->pendingCtx = NULL;
		state->pendingUnits = NULL;
	}
}

/* ---- the sort of encoded rows (all participants begin theirs alike) ---- */

void
ScoreahBuildInitSort(ScoreahBuildState *state)
{
	state->sortDesc = CreateTemplateTupleDesc(4);
	TupleDescInitEntry(state->sortDesc, (AttrNumber) 1, "leaf", INT4OID, -1, 0);
	TupleDescInitEntry(state->sortDesc, (AttrNumber) 2, "tid", INT8OID, -1, 0);
	TupleDescInitEntry(state->sortDesc, (AttrNumber) 3, "row", BYTEAOID, -1, 0);
	/* the row's distance to its centroid: summed by the writer (build_write.c) */
	TupleDescInitEntry(state->sortDesc, (AttrNumber) 4, "distance", FLOAT8OID, -1, 0);
	state->slot = MakeSingleTupleTableSlot(state->sortDesc, &TTSOpsVirtual);
}

/*
 * Sort by leaf, then TID; all participants must begin their sorts
 * identically
 */
Tuplesortstate *
ScoreahBuildBeginSort(ScoreahBuildState *state, int sortmem, SortCoordinate coordinate)
{
	AttrNumber	sortKeys[2] = {1, 2};
	Oid			sortOps[2] = {Int4LessOperator, Int8LessOperator};
	Oid			sortColls[2] = {InvalidOid, InvalidOid};
	bool		nullsFirst[2] = {false, false};

	return tuplesort_begin_heap(state->sortDesc, 2, sortKeys, sortOps,
								sortColls, nullsFirst, sortmem, coordinate,
								TUPLESORT_NONE);
}

/* ---- training ---- */

/* The tree: k-means on the first ntree rows of the shuffled sample */
static void
TrainTree(ScoreahBuildState *state, int ntree)
{
	ScoreahOptions *opts = state->opts;
	ScoreahModel model = &state->model;
	int			dim = state->dim;
	ScoreahKmeansParams kp;

	SetPhase(state, SCOREAH_PHASE_TREE);
	kp.k = model->nleaves;
	kp.iterations = opts->leavesTrainingIterations;
	kp.minClusterSize = opts->minPartitionSize;
	kp.spherical = opts->spherical;
	kp.randomInit = opts->randomInit;
	kp.seed = TREE_SEED;
	kp.assignFn = NULL;
	kp.assignArg = NULL;

	/*
	 * Large runs assign points with parallel workers when the planner
	 * grants them, as the encoding pass does; the centers come out the
	 * same either way.
	 */
	{
		int			request = plan_create_index_workers(RelationGetRelid(state->heap),
														RelationGetRelid(state->index));
		int			nworkers;

		if (ScoreahBuildKmeansParallel(state, state->samples, ntree, dim, &kp,
									   model->centroids, request,
									   ScoreahBuildTrainingBudget(state, ntree, state->npq),
									   &nworkers))
			ereport(DEBUG1,
					(errmsg_internal("scoreah build of \"%s\": k-means with %d parallel workers",
									 RelationGetRelationName(state->index), nworkers)));
		else
			scoreah_kmeans(state->samples, ntree, dim, &kp, model->centroids);
	}
	for (int j = 0; j < model->nleaves; j++)
		model->centroidNorms[j] = scoreah_dot(model->centroids + (Size) j * dim,
											  model->centroids + (Size) j * dim, dim);
}

/*
 * The leaves of the first npq rows of the sample: each leaf's spread (the
 * mean squared distance of its rows to its centroid, which routing adds to
 * a query's distance, route.c) and, when the codebooks quantize residuals,
 * the rows replaced by their residuals.  A leaf no sample row reached gets
 * the mean spread of all rows.
 */
static void
SampleLeaves(ScoreahBuildState *state, int npq, bool residuals)
{
	ScoreahModel model = &state->model;
	int			dim = state->dim;
	double	   *sums = palloc0(sizeof(double) * model->nleaves);
	int		   *counts = palloc0(sizeof(int) * model->nleaves);
	double		total = 0;

	for (int i0 = 0; i0 < npq; i0 += 1024)
	{
		int			leaves[1024];
		float		dist[1024];
		int			n = Min(1024, npq - i0);
		float	   *x = state->samples + (Size) i0 * dim;

		CHECK_FOR_INTERRUPTS();
		scoreah_nearest_l2_rows(x, n, model->centroids, model->centroidNorms,
								model->nleaves, dim, leaves, dist);
		for (int i = 0; i < n; i++)
		{
			sums[leaves[i]] += dist[i];
			counts[leaves[i]]++;
			total += dist[i];
			if (residuals)
				scoreah_model_residual(model, x + (Size) i * dim, leaves[i], x + (Size) i * dim);
		}
	}
	model->leafSpread = palloc(sizeof(float) * model->nleaves);
	for (int j = 0; j < model->nleaves; j++)
		model->leafSpread[j] = (float) (counts[j] > 0 ? sums[j] / counts[j] :
										npq > 0 ? total / npq : 0);
	pfree(sums);
	pfree(counts);
}

/* The codebooks, on the residuals of the first npq rows of the sample */
static void
TrainCodebooks(ScoreahBuildState *state, int npq)
{
	ScoreahModel model = &state->model;

	if (model->nblocks == 0)
		return;
	SetPhase(state, SCOREAH_PHASE_CODEBOOKS);
	SampleLeaves(state, npq, model->residual);

	/* the blocks shared out to parallel workers when worth it; same result */
	{
		int			request = plan_create_index_workers(RelationGetRelid(state->heap),
														RelationGetRelid(state->index));
		int			nworkers;

		if (ScoreahBuildCodebooksParallel(model, state->samples, npq,
										  state->opts->trainingIterations, PQ_SEED, request,
										  ScoreahBuildTrainingBudget(state, state->ntree, npq),
										  &nworkers))
			ereport(DEBUG1,
					(errmsg_internal("scoreah build of \"%s\": codebook training with %d parallel workers",
									 RelationGetRelationName(state->index), nworkers)));
		else
			scoreah_pq_train(model, state->samples, npq, state->opts->trainingIterations, PQ_SEED);
	}
}

/*
 * Reserve the metapage, write the model's pages and reserve the
 * directory's, recording where they are in meta.
 */
static void
WriteModel(ScoreahBuildState *state, ScoreahMetaPage meta)
{
	ScoreahModel model = &state->model;
	int			nleaves = model->nleaves;
	BlockNumber metaBlk = ScoreahBuildAllocBlock(state->index);
	Size		total;
	char	   *blob;

	Assert(metaBlk == SCOREAH_METAPAGE_BLKNO);
	(void) metaBlk;
	meta->nleaves = nleaves;
	meta->nblocks = model->nblocks;
	meta->flags |= SCOREAH_FLAG_TRAINED;
	if (model->residual)
		meta->flags |= SCOREAH_FLAG_RESIDUAL;

	/*
	 * L2 on residuals: each row's own part of its distance kept with its
	 * codes, so that a scan builds one lookup table a query, not one a leaf
	 * searched (scoreah.h, before ScoreahGroupHeaderData), where that
	 * leaves as many groups to a page (ScoreahRowBiasFits).
	 */
	model->rowBias = model->metric == SCOREAH_METRIC_L2 && model->residual &&
		ScoreahRowBiasFits(meta);
	if (model->rowBias)
		meta->flags |= SCOREAH_FLAG_ROW_BIAS;
	meta->numLeavesToSearch = state->opts->numLeavesToSearch > 0 ?
		Min(state->opts->numLeavesToSearch, nleaves) : Max(1, (nleaves + 9) / 10);

	/*
	 * Centroids, codebooks, then the leaves' spreads; int8 copies are
	 * derived when loaded.
	 */
	meta->centroidBytes = sizeof(float) * nleaves * state->dim;
	meta->codebookBytes = sizeof(float) * SCOREAH_CENTERS * state->dim;
	meta->spreadBytes = model->leafSpread ? sizeof(float) * nleaves : 0;
	total = (Size) meta->centroidBytes + meta->codebookBytes + meta->spreadBytes;
	blob = palloc_extended(total, MCXT_ALLOC_HUGE);
	memcpy(blob, model->centroids, meta->centroidBytes);
	memcpy(blob + meta->centroidBytes, model->codebooks, meta->codebookBytes);
	if (meta->spreadBytes > 0)
		memcpy(blob + meta->centroidBytes + meta->codebookBytes, model->leafSpread,
			   meta->spreadBytes);
	meta->blobStart = ScoreahBuildWriteBlob(state->index, blob, total);
	pfree(blob);

	meta->directoryPages = (ScoreahDirEntries(meta) + SCOREAH_LEAVES_PER_PAGE - 1) /
		SCOREAH_LEAVES_PER_PAGE;
	meta->directoryStart = InvalidBlockNumber;
	for (uint32 i = 0; i < meta->directoryPages; i++)
	{
		BlockNumber b = ScoreahBuildAllocBlock(state->index);

		if (i == 0)
			meta->directoryStart = b;
	}
}

/*
 * The second heap scan: assign and encode every row into state->sort, in
 * parallel workers when the planner grants them.
 */
static void
EncodeRows(ScoreahBuildState *state)
{
	int			nworkers;

	SetPhase(state, SCOREAH_PHASE_ENCODING);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, state->nrows);
	ScoreahBuildInitSort(state);
	state->reportProgress = true;
	nworkers = plan_create_index_workers(RelationGetRelid(state->heap),
										 RelationGetRelid(state->index));
	if (nworkers <= 0 || !ScoreahBuildEncodeParallel(state, nworkers))
	{
		state->sort = ScoreahBuildBeginSort(state, ScoreahBuildSortMem(state, 1, 0), NULL);
		table_index_build_scan(state->heap, state->index, state->indexInfo,
							   true, true, ScoreahBuildEncodeCallback, (void *) state, NULL);
		ScoreahBuildEncodeFinish(state);
		tuplesort_performsort(state->sort);
	}
}

/*
 * Hold out the last rows of the shuffled sample as calibration queries
 * (calibrate.c): the model trains on the rest, so that they measure the
 * index as queries from outside it would.  Returns how many (0: tables too
 * small to spare 20 rows go uncalibrated); StartCalibration takes them.
 */
static int
SetUpCalibration(ScoreahBuildState *state)
{
	int			nq = ScoreahCalibQueries(state->nrows, state->nsamples, state->dim,
										 state->model.nleaves);
	int			rest;

	nq = Min(nq, state->nsamples / 5);
	nq = Min(nq, state->nsamples - state->model.nleaves);
	if (nq < 20)
		return 0;
	rest = state->nsamples - nq;
	state->ntree = Min(state->ntree, rest);
	state->npq = Min(state->npq, rest);
	return nq;
}

/*
 * Copy the calibration queries out of the sample once training is done
 * with it (training reads and rewrites only the rows before them): while
 * it trains the sample alone holds them, and the copy counts against the
 * encoding pass's memory (ScoreahBuildSortMem), not training's.
 */
static void
StartCalibration(ScoreahBuildState *state, int nq)
{
	int			rest = state->nsamples - nq;

	if (nq == 0)
		return;
	state->calib = palloc(sizeof(ScoreahCalibBuildData));
	ScoreahCalibInit(state->calib, state->samples + (Size) rest * state->dim,
					 state->sampleIds + rest, nq, state->dim);
}

/*
 * Train, encode and write a trained index.
 */
static void
BuildTrained(ScoreahBuildState *state, ScoreahMetaPage meta)
{
	ScoreahModel model = &state->model;
	int			dim = state->dim;
	int			ntree,
				npq,
				ncalib;
	ScoreahLeaf leaves;

	/* shuffled, any prefix of the reservoir is a uniform sample */
	scoreah_shuffle_rows(state->samples, state->sampleIds, state->nsamples, dim, &state->rng);
	ncalib = SetUpCalibration(state);
	ntree = state->ntree;
	npq = state->npq;
	ScoreahBuildCheckTrainingMemory(state, ntree, npq);

	model->centroids = palloc_extended(sizeof(float) * (Size) model->nleaves * dim, MCXT_ALLOC_HUGE);
	model->centroidNorms = palloc(sizeof(float) * model->nleaves);
	model->codebooks = palloc0(sizeof(float) * SCOREAH_CENTERS * dim);

	TrainTree(state, ntree);
	TrainCodebooks(state, npq);
	/* encoding and calibration read the codebooks transposed (pq.c, lut.c) */
	model->codebooksT = palloc(sizeof(float) * SCOREAH_CENTERS * dim);
	scoreah_transpose_codebooks(model, model->codebooksT);
	StartCalibration(state, ncalib);
	pfree(state->samples);
	state->samples = NULL;

	WriteModel(state, meta);
	EncodeRows(state);

	SetPhase(state, SCOREAH_PHASE_WRITING);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
	leaves = palloc_extended(sizeof(ScoreahLeafData) * ScoreahDirEntries(meta),
							 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int j = 0; j < ScoreahDirEntries(meta); j++)
		ScoreahInitLeafEntry(&leaves[j]);
	ScoreahBuildWriteLeaves(state, meta, leaves);
	ExecDropSingleTupleTableSlot(state->slot);
	tuplesort_end(state->sort);
	ScoreahBuildEndParallel(state);
	ScoreahBuildWriteDirectory(state->index, meta, leaves);

	if (state->calib)
	{
		ScoreahLayoutData layout;

		SetPhase(state, SCOREAH_PHASE_CALIBRATING);
		if (model->quantizeCentroids)
		{
			/* queries are routed as scans route them */
			model->qcentroids = palloc_extended((Size) model->nleaves * dim, MCXT_ALLOC_HUGE);
			model->qscales = palloc(sizeof(float) * dim);
			scoreah_quantize_centroids(model);
		}
		ScoreahComputeLayout(meta, &layout);
		/* routing's share of the spreads first: calibration routes so */
		model->spreadWeight = ScoreahCalibChooseSpread(state->calib, model, leaves);
		meta->spreadWeight = model->spreadWeight;
		ScoreahCalibMeasure(state->calib, state->index, model, &layout, leaves,
							state->nencoded, &meta->calibration);
	}

	meta->rowsBuilt = state->nencoded;
	meta->builtMeanDistance = state->nencoded > 0 ? state->sumDistance / state->nencoded : 0;
	ScoreahBuildWriteMeta(state->index, meta);

	if (RelationNeedsWAL(state->index))
		log_newpage_range(state->index, MAIN_FORKNUM, 0,
						  RelationGetNumberOfBlocks(state->index), true);
}

/*
 * An index built untrained (no vector to train on) takes the table's rows
 * with NULL or zero vectors as inserts take them: into the extra leaves,
 * WAL-logged one by one (the end-of-build log covers trained builds only).
 */
static void
ExtraRowCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				 bool tupleIsAlive, void *arg)
{
	ScoreahBuildState *state = (ScoreahBuildState *) arg;

	scoreahinsert(index, values, isnull, tid, state->heap, UNIQUE_CHECK_NO,
#if PG_VERSION_NUM >= 140000
				  false,
#endif
				  state->indexInfo);
}

/*
 * A pgvector index (hnsw or ivfflat) on the same column: the planner
 * takes whichever it estimates cheaper, and pgvector's HNSW estimate is a
 * small part of what its search costs (about 200 estimate units a
 * millisecond on GloVe-100 331k, against 1,070-1,350 for PostgreSQL's own
 * plans and scoreah's), so queries went on through HNSW after a switch
 * that kept the old index (README, "Coming from pgvector").  Say so at
 * the build.  Plain columns only: an expression index is left alone.
 */
static void
NoteOtherVectorIndexes(Relation heap, Relation index, int vecCol)
{
	AttrNumber	attno = index->rd_index->indkey.values[vecCol];
	List	   *indexes;
	ListCell   *lc;

	if (attno == InvalidAttrNumber)
		return;
	indexes = RelationGetIndexList(heap);
	foreach(lc, indexes)
	{
		Oid			oid = lfirst_oid(lc);
		HeapTuple	tup;
		Form_pg_index other;
		bool		sameColumn;
		char	   *amname;
		char	   *name;
		bool		hnsw;

		if (oid == RelationGetRelid(index))
			continue;
		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(oid));
		if (!HeapTupleIsValid(tup))
			continue;

		/*
		 * Not an index the planner does not use: one left invalid by a
		 * failed CREATE INDEX CONCURRENTLY, or the new copies of REINDEX
		 * CONCURRENTLY, built one after another under names that go away.
		 */
		other = (Form_pg_index) GETSTRUCT(tup);
		sameColumn = other->indisvalid && other->indnatts >= 1 &&
			other->indkey.values[0] == attno;
		ReleaseSysCache(tup);
		if (!sameColumn)
			continue;
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(oid));
		if (!HeapTupleIsValid(tup))
			continue;
		amname = get_am_name(((Form_pg_class) GETSTRUCT(tup))->relam);
		ReleaseSysCache(tup);
		if (amname == NULL)
			continue;
		hnsw = strcmp(amname, "hnsw") == 0;
		if (!hnsw && strcmp(amname, "ivfflat") != 0)
			continue;
		name = get_rel_name(oid);
		ereport(NOTICE,
				(errmsg("column \"%s\" of \"%s\" also has the %s index \"%s\"",
						get_attname(RelationGetRelid(heap), attno, false),
						RelationGetRelationName(heap), amname, name),
				 hnsw ?
				 errdetail("The planner takes whichever index it estimates cheaper, and pgvector's HNSW estimates run lower than scoreah's for slower searches.") :
				 errdetail("The planner takes whichever index it estimates cheaper for each query."),
				 errhint("Drop \"%s\" for queries to search through \"%s\".",
						 name, RelationGetRelationName(index))));
	}
	list_free(indexes);
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

	memset(&state, 0, sizeof(state));
	state.heap = heap;
	state.index = index;
	state.indexInfo = indexInfo;
	state.opts = ScoreahGetOptions(index);
	state.metric = ScoreahGetMetric(index);
	state.format = ScoreahGetFormat(index);
	state.nkeys = ScoreahKeyKinds(index, state.keyKinds);
	state.vecCol = ScoreahVectorColumn(index);
	ScoreahCheckColumnType(index, state.format);
	state.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "scoreah build row",
										 ALLOCSET_DEFAULT_SIZES);
	/*
	 * The sample serves both trainings: the larger of the two sizes, an
	 * option left 0 taking the size the build chooses (so that setting one
	 * does not shrink the other's sample to it).
	 */
	state.sampleGiven = Max(state.opts->leavesTrainingSampleSize,
							state.opts->trainingSampleSize);
	state.sampleAuto = state.opts->leavesTrainingSampleSize == 0 ||
		state.opts->trainingSampleSize == 0;
	state.sampleTarget = state.sampleAuto ? 0 : state.sampleGiven;
	state.memLimit = (Size) maintenance_work_mem * 1024;
	state.scale = 1.0;
	scoreah_random_init(&state.rng, SAMPLE_SEED);
	CheckOptions(&state);

	SetPhase(&state, SCOREAH_PHASE_SAMPLING);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
									   SampleCallback, (void *) &state, NULL);

	if (state.nrows > 0)
	{
		ScoreahBuildCheckSampleSize(&state);
		ScoreahBuildScaleSample(&state);
		ScoreahBuildChooseShape(&state);
		ScoreahBuildFitSample(&state);
		if ((state.autoFlags & SCOREAH_AUTO_SAMPLE) &&
			state.nsamples < Min(state.nrows, SCOREAH_AUTO_SAMPLE_ROWS))
			ereport(NOTICE,
					(errmsg("scoreah index \"%s\" trains on a sample of %d rows instead of %d: %d dimensions and %d leaves in maintenance_work_mem = %d MB",
							RelationGetRelationName(index), state.nsamples,
							(int) Min(state.nrows, SCOREAH_AUTO_SAMPLE_ROWS), state.dim,
							state.model.nleaves, maintenance_work_mem / 1024),
					 errhint("Raise maintenance_work_mem for a larger sample.")));
	}
	ScoreahBuildFillMeta(&state, &meta);
	if (state.nrows == 0)
	{
		if (state.nextra > 0)
			ereport(NOTICE,
					(errmsg("scoreah index \"%s\" created with no vector to train on: its " INT64_FORMAT " rows all have a NULL vector%s; it scores every row exactly until rebuilt",
							RelationGetRelationName(index), (int64) state.nextra,
							state.metric == SCOREAH_METRIC_COSINE ? " or a zero one (which cosine distance cannot place)" : ""),
					 errhint("REINDEX once the table holds its data, to train the partitions and codebooks.")));
		else
			ereport(NOTICE,
					(errmsg("scoreah index \"%s\" created on a table with no rows to index: it scores every row exactly until rebuilt",
							RelationGetRelationName(index)),
					 errhint("REINDEX once the table holds its data, to train the partitions and codebooks.")));
		ScoreahBuildWriteUntrained(index, MAIN_FORKNUM, &meta);
		if (state.nextra > 0)
		{
			/* rows with NULL or zero vectors: into the extra leaves */
			table_index_build_scan(heap, index, indexInfo, true, false,
								   ExtraRowCallback, (void *) &state, NULL);
		}
	}
	else
		BuildTrained(&state, &meta);

	SetPhase(&state, 0);
	MemoryContextDelete(state.tmpCtx);
	NoteOtherVectorIndexes(heap, index, state.vecCol);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = state.nencoded + state.nextra;
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
	state.format = ScoreahGetFormat(index);
	state.nkeys = ScoreahKeyKinds(index, state.keyKinds);
	state.vecCol = ScoreahVectorColumn(index);
	ScoreahBuildFillMeta(&state, &meta);
	ScoreahBuildWriteUntrained(index, INIT_FORKNUM, &meta);
}
