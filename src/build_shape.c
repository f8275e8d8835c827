/*-------------------------------------------------------------------------
 *
 * build_shape.c
 *	  What CREATE INDEX chooses before it trains, where the options leave
 *	  it open: the sample's size (bounded by maintenance_work_mem at any
 *	  width), the scale that brings the data to a mean norm near 1, the
 *	  number of leaves, the dimensions per PQ block and the anisotropic
 *	  threshold; and the memory training will take.  Each choice is
 *	  flagged in the metapage (autoFlags) for scoreah_index_info.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/float.h"
#include "utils/rel.h"

#include "scoreah.h"

/*
 * The sample's size for a training no option sizes: up to
 * SCOREAH_AUTO_SAMPLE_ROWS rows, fewer at dimensions where they would take
 * more than three quarters of maintenance_work_mem (the rest is for
 * k-means), so that memory and time stay bounded at any width.  The
 * sample keeps the larger of that and the other option's size.
 */
void
ScoreahBuildChooseSampleSize(ScoreahBuildState *state)
{
	Size		fit = state->memLimit / 4 * 3 / (sizeof(float) * state->dim);

	state->sampleAutoRows = (int) Max(1, Min((Size) SCOREAH_AUTO_SAMPLE_ROWS, fit));
	state->sampleTarget = Max(state->sampleAutoRows, state->sampleGiven);
	state->autoFlags |= SCOREAH_AUTO_SAMPLE;
}

/*
 * After the sampling scan: a chosen sample of fewer than 100 rows, where
 * the table has more, is too small to train on (a table of fewer rows is
 * sampled whole, however wide).
 */
void
ScoreahBuildCheckSampleSize(ScoreahBuildState *state)
{
	if ((state->autoFlags & SCOREAH_AUTO_SAMPLE) && state->sampleAutoRows < 100 &&
		state->nrows > state->sampleAutoRows)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("maintenance_work_mem (%d kB) holds only %d rows of %d dimensions, too few to train on",
						maintenance_work_mem, state->sampleAutoRows, state->dim),
				 errhint("Increase maintenance_work_mem.")));
}

/*
 * The sample's mean norm, and the power of 2 that brings it to [1, 2):
 * the model works on vectors multiplied by it, so that data of any
 * magnitude a float holds trains and scores without overflow or underflow
 * (cosine's vectors are unit vectors already).  The sample is scaled in
 * place.
 */
void
ScoreahBuildScaleSample(ScoreahBuildState *state)
{
	int			dim = state->dim;
	double		sum = 0;

	for (int i = 0; i < state->nsamples; i++)
		sum += scoreah_exact_norm(state->samples + (Size) i * dim, dim);
	state->meanNorm = state->nsamples > 0 ? sum / state->nsamples : 0;
	state->scale = state->metric == SCOREAH_METRIC_COSINE ? 1.0 :
		scoreah_unit_scale(state->meanNorm);
	if (state->scale != 1.0)
		for (int i = 0; i < state->nsamples; i++)
			scoreah_scale(state->samples + (Size) i * dim, dim, state->scale,
						  state->samples + (Size) i * dim);
}

/*
 * Dimensions per PQ block when the option does not say: 2 (ScaNN's choice
 * at up to a few hundred dimensions) while the codes of a group fit a page,
 * then the fewest that fit.
 */
static int
AutoDimsPerBlock(int dim, int nkeys)
{
	int			maxBlocks = ScoreahMaxBlocks(nkeys);

	if ((dim + 1) / 2 <= maxBlocks)
		return 2;
	return (dim + maxBlocks - 1) / maxBlocks;
}

/*
 * The anisotropic threshold when the option does not say.  ScaNN
 * recommends T = 0.2 for unit vectors of about 100 dimensions, where the
 * parallel cost multiplier eta = (d - 1) T^2 / (1 - T^2) is 4; eta grows
 * with d for a fixed T, so T is chosen for eta = 4 at every width:
 * T = sqrt(4 / (d + 3)) times the typical norm (1 for cosine).  The loss
 * is about inner products, so L2 gets none (in scaled units).
 */
static double
AutoThreshold(ScoreahBuildState *state)
{
	double		t = sqrt(4.0 / (state->dim + 3));

	switch (state->metric)
	{
		case SCOREAH_METRIC_COSINE:
			return t;
		case SCOREAH_METRIC_IP:
			return t * state->meanNorm * state->scale;
		default:
			return get_float8_nan();
	}
}

/*
 * The shape of the model: how many leaves (about sqrt(rows) unless given,
 * at most one per sampled row), PQ blocks, the anisotropic threshold and
 * the sample's share for each training step.  What the options leave open
 * is chosen here and flagged in autoFlags.
 */
void
ScoreahBuildChooseShape(ScoreahBuildState *state)
{
	ScoreahOptions *opts = state->opts;
	ScoreahModel model = &state->model;
	int			dim = state->dim;
	int			requested;

	if (opts->numLeaves > 0)
		requested = opts->numLeaves;
	else
	{
		requested = (int) Max(1, Min(SCOREAH_MAX_LEAVES, rint(sqrt((double) state->nrows))));
		state->autoFlags |= SCOREAH_AUTO_LEAVES;
	}
	model->nleaves = requested;
	if (state->nsamples < requested)
	{
		model->nleaves = Max(1, state->nsamples);
		ereport(NOTICE,
				(errmsg("scoreah index \"%s\" built with %d leaves instead of %d: only %d rows to train on",
						RelationGetRelationName(state->index), model->nleaves, requested,
						state->nsamples),
				 errhint("REINDEX once the table holds its data, for good recall.")));
	}

	/*
	 * The metapage keeps the centroids' size as a uint32 (4 GB: 67,108
	 * leaves at 16,000 dimensions); a model past it would wrap, and every
	 * scan would then refuse the index as damaged.  A size the options
	 * allow, so it is an error at the start rather than hours later.
	 */
	if ((uint64) model->nleaves * dim * sizeof(float) > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("num_leaves = %d at %d dimensions needs %.1f GB of centroids, more than the 4 GB a scoreah index holds",
						model->nleaves, dim,
						(double) model->nleaves * dim * sizeof(float) / (1024.0 * 1024.0 * 1024.0)),
				 errhint("Use num_leaves = %d or fewer.",
						 (int) (PG_UINT32_MAX / (sizeof(float) * (uint64) dim)))));

	model->dim = dim;
	model->metric = state->metric;
	model->dpb = opts->dimensionsPerBlock;
	if (model->dpb == 0)
	{
		model->dpb = AutoDimsPerBlock(dim, state->nkeys);
		state->autoFlags |= SCOREAH_AUTO_DIMS_PER_BLOCK;
	}

	/*
	 * A block is never wider than the vector: a larger option is one block
	 * of every dimension, and the memory figures below (PQ_ROW_BYTES) and
	 * the codebooks' work arrays are sized by this width.
	 */
	model->dpb = Max(1, Min(model->dpb, Max(dim, 1)));
	if (opts->anisotropicThreshold == SCOREAH_THRESHOLD_AUTO)
	{
		state->threshold = opts->scoring == SCOREAH_SCORING_AH ?
			AutoThreshold(state) : get_float8_nan();
		state->autoFlags |= SCOREAH_AUTO_THRESHOLD;
	}
	else if (opts->anisotropicThreshold > 0)
		state->threshold = opts->anisotropicThreshold * state->scale;
	else
		state->threshold = get_float8_nan();
	state->ntree = Min(state->nsamples, opts->leavesTrainingSampleSize > 0 ?
					   opts->leavesTrainingSampleSize : state->sampleAutoRows);
	state->npq = Min(state->nsamples, opts->trainingSampleSize > 0 ?
					 opts->trainingSampleSize : state->sampleAutoRows);
	model->residual = opts->residualQuantization;
	model->quantizeCentroids = opts->quantizeCentroids == SCOREAH_QUANTIZE_ON;
	if (opts->quantizeCentroids == SCOREAH_QUANTIZE_AUTO)
	{
		/*
		 * int8 centroids read a quarter of the bytes, and their integer
		 * kernel outruns the float one from 256 dimensions (1,000 leaves x
		 * 1,536 dimensions: 35-43 us against 77-100 a query; 245 x 784, as
		 * MNIST: 6-8 against 9-10); at 100-128 dimensions the float one is
		 * as quick or quicker.  Recall@10 at the same leaves moved by at
		 * most 0.0005 on MNIST-784, mobilenet-1280 (cosine and L2) and
		 * GloVe projected to 512 dimensions, 0.0013 once (mobilenet cosine
		 * at 2 of 157 leaves, 0.757).
		 */
		model->quantizeCentroids = dim >= SCOREAH_QUANTIZE_MIN_DIM;
		state->autoFlags |= SCOREAH_AUTO_QUANTIZE_CENTROIDS;
	}
	model->nblocks = opts->scoring == SCOREAH_SCORING_AH ?
		(dim + model->dpb - 1) / model->dpb : 0;
	if (model->nblocks > 0)
		ScoreahCheckBlocksFit(model->dpb, dim, state->nkeys);
}

/*
 * The memory training holds in the building process: the sample; the
 * centers; k-means' work arrays (per sample row its leaf and Hamerly's two
 * bounds, per center double sums, the centers before the update and a
 * chunk's sums); a codebook block's rows.  The codebooks train on the
 * sample's residuals, computed in place.  Parallel training copies the
 * sample into shared memory besides, only within what is left of
 * maintenance_work_mem (ScoreahBuildTrainingBudget), else the leader
 * trains alone.
 */
#define SAMPLE_ROW_BYTES(state)	(sizeof(float) * (Size) (state)->dim)
#define CENTERS_BYTES(state) \
	((Size) (state)->model.nleaves * (state)->dim * (2 * sizeof(float) + 2 * sizeof(double)))
#define TREE_ROW_BYTES			(sizeof(int) + 2 * sizeof(float))
#define PQ_ROW_BYTES(state)		((Size) Max((state)->model.dpb, 1) * sizeof(float))

static Size
TrainingBytes(ScoreahBuildState *state, int ntree, int npq)
{
	return SAMPLE_ROW_BYTES(state) * state->sampleCapacity + CENTERS_BYTES(state) +
		TREE_ROW_BYTES * ntree + PQ_ROW_BYTES(state) * npq;
}

/* Sample rows per leaf below which a sample is not shrunk to fit (below) */
#define SCOREAH_MIN_SAMPLE_PER_LEAF	10

/*
 * An automatic sample whose training, with the leaves' centers and work
 * arrays beside it, would take more than maintenance_work_mem: shrunk to
 * what fits, as long as at least SCOREAH_MIN_SAMPLE_PER_LEAF rows per leaf
 * remain; otherwise it is left for ScoreahBuildCheckTrainingMemory's
 * error.  Wide vectors meet this at PostgreSQL's default 64 MB: 300,000
 * rows of 1536 dimensions want 548 leaves, whose centers and k-means sums
 * take 20 MB beside a sample of 48 MB (three quarters of it).  The sample
 * is shuffled first, so the rows kept are still a uniform sample.  Options
 * that size the sample are taken as given.
 */
void
ScoreahBuildFitSample(ScoreahBuildState *state)
{
	Size		fixed = CENTERS_BYTES(state);
	int			fit;

	if (!(state->autoFlags & SCOREAH_AUTO_SAMPLE) || state->nsamples == 0 ||
		TrainingBytes(state, state->ntree, state->npq) <= state->memLimit ||
		fixed >= state->memLimit)
		return;

	/* TrainingBytes of a sample of n rows, every training step on all of it */
	fit = (int) Min((Size) state->nsamples,
					(state->memLimit - fixed) /
					(SAMPLE_ROW_BYTES(state) + TREE_ROW_BYTES + PQ_ROW_BYTES(state)));
	if (fit < SCOREAH_MIN_SAMPLE_PER_LEAF * state->model.nleaves)
		return;

	scoreah_shuffle_rows(state->samples, state->sampleIds, state->nsamples, state->dim,
						 &state->rng);
	state->nsamples = fit;
	state->samples = repalloc_huge(state->samples, SAMPLE_ROW_BYTES(state) * fit);
	state->sampleIds = repalloc(state->sampleIds, sizeof(uint64) * fit);
	state->sampleCapacity = fit;
	state->ntree = Min(state->ntree, fit);
	state->npq = Min(state->npq, fit);
}

/* What parallel training may put in shared memory: the rest of it */
Size
ScoreahBuildTrainingBudget(ScoreahBuildState *state, int ntree, int npq)
{
	Size		need = TrainingBytes(state, ntree, npq);

	return need < state->memLimit ? state->memLimit - need : 0;
}

/*
 * What one participant of the encoding pass holds beside its sort: the
 * rows of a batch (as read, as unit vectors, and as the sort's payload)
 * and its copy of the calibration queries with their neighbour lists.
 */
static Size
EncodeParticipantBytes(ScoreahBuildState *state)
{
	ScoreahCalib calib = state->calib;
	Size		batch = (Size) 3 * SCOREAH_ENCODE_BATCH * sizeof(float) * state->dim;

	if (calib)
		batch += (Size) calib->nqueries * (sizeof(float) * state->dim + sizeof(uint64) +
										   sizeof(ScoreahCalibNeighbor) * calib->k +
										   sizeof(int) +
										   sizeof(float) * (1 + SCOREAH_ENCODE_BATCH));
	return batch;
}

/*
 * The kB of maintenance_work_mem each of nparticipants sorts may take in
 * the encoding pass: what is left when the model (centroids, codebooks
 * and their transposed copy, leaf spreads), the leader's calibration,
 * sharedBytes of copies in shared memory and each participant's own
 * buffers (EncodeParticipantBytes) are counted.  The sort gets the whole setting otherwise and the build goes
 * past it by all of these: 132 MB at maintenance_work_mem = 100 MB for
 * 3,000 rows of 16,000 dimensions (a third of it the 245 calibration
 * queries).  At least 64 kB, tuplesort's least; training already had to
 * fit the model in the setting (ScoreahBuildCheckTrainingMemory).
 */
int
ScoreahBuildSortMem(ScoreahBuildState *state, int nparticipants, Size sharedBytes)
{
	ScoreahModel model = &state->model;
	Size		used;
	Size		left;

	used = sizeof(float) * ((Size) model->nleaves * (state->dim + 2) +
							(Size) 2 * SCOREAH_CENTERS * state->dim) +
		sharedBytes + (Size) nparticipants * EncodeParticipantBytes(state);
	if (nparticipants > 1 && state->calib)
		used += EncodeParticipantBytes(state);	/* the leader's calibration */
	left = state->memLimit > used ? state->memLimit - used : 0;
	return (int) Max(left / 1024 / nparticipants, 64);
}

/*
 * All of training within maintenance_work_mem, or a clear error.  (It
 * used to count a copy of the sample the codebooks never make: with
 * PostgreSQL's default 64 MB, a 100,000-row table of 100 dimensions could
 * not be indexed without options.)
 */
void
ScoreahBuildCheckTrainingMemory(ScoreahBuildState *state, int ntree, int npq)
{
	int			dim = state->dim;
	int			nleaves = state->model.nleaves;
	Size		need = TrainingBytes(state, ntree, npq);

	if (need > state->memLimit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("memory required to train %d leaves on %d rows of %d dimensions is %zu MB, maintenance_work_mem is %d MB",
						nleaves, Max(ntree, npq), dim, need / (1024 * 1024) + 1,
						maintenance_work_mem / 1024),
				 errhint("Increase maintenance_work_mem, or lower num_leaves or the training sample sizes.")));
}

