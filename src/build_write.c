/*-------------------------------------------------------------------------
 *
 * build_write.c
 *	  The pages of a new index: the model, the leaves' code and vector
 *	  pages, the directory and the metapage.
 *
 * Pages are filled in memory and written through shared buffers without
 * WAL; build.c logs the whole relation once at the end (log_newpage_range),
 * except the init fork of an unlogged index, which is logged here.  The
 * build writes the vectors of all leaves, leaf after leaf, into one run of
 * shared pages, so that no leaf leaves a half-empty vector page behind
 * (ScoreahVectorPageHeaderData in scoreah.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xloginsert.h"
#include "commands/progress.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/float.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"

#include "scoreah.h"

/* A page being filled in memory before it goes to its block */
typedef struct PageWriter
{
	Relation	index;
	uint32		leaf;
	BlockNumber blkno;
	PGAlignedBlock data;
} PageWriter;

BlockNumber
ScoreahBuildAllocBlock(Relation index)
{
	Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	BlockNumber blkno = BufferGetBlockNumber(buf);

	ReleaseBuffer(buf);
	return blkno;
}

void
ScoreahBuildWriteBlock(Relation index, BlockNumber blkno, Page page)
{
	Buffer		buf = ReadBuffer(index, blkno);

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	memcpy(BufferGetPage(buf), page, BLCKSZ);
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
}

/* ---- row validation shared by both scans ---- */

typedef struct LeafWriter
{
	Relation	index;
	ScoreahMetaPage meta;
	ScoreahModel model;			/* for the rows' biases */
	Size		vbytes;			/* stored bytes per vector (0: table) */
	int			nblocks;
	int			dim;
	ScoreahLayoutData layout;	/* of the leaf being written */
	ScoreahLayoutData leafLayout;	/* the leaves' and the extra leaves' */
	ScoreahLayoutData extraLayout;
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
	w->blkno = ScoreahBuildAllocBlock(index);
	ScoreahInitPage(w->data.data, kind, leaf);
}

/* Flush w and continue the chain on a new page */
static void
ChainPage(PageWriter *w, uint16 kind)
{
	BlockNumber next = ScoreahBuildAllocBlock(w->index);

	ScoreahPageGetOpaque(w->data.data)->nextblkno = next;
	ScoreahBuildWriteBlock(w->index, w->blkno, w->data.data);
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
		ScoreahBuildWriteBlock(lw->index, lw->vec.blkno, lw->vec.data.data);
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
WriteVector(LeafWriter *lw, const char *packed, BlockNumber *blkno, uint16 *off)
{
	Size		nbytes = lw->vbytes;
	const char *src = packed;
	PageHeader	ph;

	if (nbytes == 0)
	{
		/* reordering_storage = table: re-ranking reads the heap */
		*blkno = InvalidBlockNumber;
		*off = 0;
		return;
	}
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
WriteRow(LeafWriter *lw, ItemPointer tid, const uint8 *codes, const char *packed,
		 const int64 *keys, uint32 nulls)
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
	if (lw->layout.vbytes > 0)
		WriteVector(lw, packed, &vblkno, &voff);
	else
	{
		/* reordering_storage = table, or an extra leaf: no vector */
		vblkno = InvalidBlockNumber;
		voff = 0;
	}

	/* the build writes a leaf's vectors in row order: they always follow */
	if (!ScoreahGroupAddVector(&lw->layout, gh, gh->nitems, vblkno, voff))
		elog(ERROR, "scoreah build: vector of leaf %u at (%u,%u) does not follow its group",
			 lw->leafno, vblkno, voff);
	ScoreahPutRowCodes(&lw->layout, group, gh->nitems, codes,
					   lw->layout.biasOffset != 0 ?
					   scoreah_pq_row_bias(lw->model, (int) lw->leafno, codes) : 0);
	if (lw->layout.nkeys > 0)
	{
		ScoreahRowKeysData rk;

		memcpy(rk.keys, keys, sizeof(int64) * lw->layout.nkeys);
		rk.nulls = nulls;
		ScoreahPutRowKeys(&lw->layout, group, gh->nitems, &rk);
		if (!(nulls & 1))
			ScoreahKeySummaryAdd(&lw->leaf, keys[0]);
	}
	gh->nitems++;
	gh->nlive++;
	lw->leaf.nbuilt++;
}

static void
FinishLeaf(LeafWriter *lw)
{
	if (lw->haveCode)
	{
		ScoreahBuildWriteBlock(lw->index, lw->code.blkno, lw->code.data.data);
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
		ScoreahBuildWriteBlock(lw->index, lw->vec.blkno, lw->vec.data.data);
	lw->haveVec = false;
}

/*
 * Write a byte stream over consecutive new pages; returns the first block.
 */
BlockNumber
ScoreahBuildWriteBlob(Relation index, const char *src, Size nbytes)
{
	PGAlignedBlock page;
	BlockNumber first = InvalidBlockNumber;

	while (nbytes > 0)
	{
		BlockNumber blkno = ScoreahBuildAllocBlock(index);
		Size		n = Min(nbytes, SCOREAH_PAGE_CAPACITY);

		if (first == InvalidBlockNumber)
			first = blkno;
		ScoreahInitPage(page.data, SCOREAH_PAGE_BLOB, SCOREAH_NO_LEAF);
		memcpy(PageGetContents(page.data), src, n);
		((PageHeader) page.data)->pd_lower += n;
		ScoreahBuildWriteBlock(index, blkno, page.data);
		src += n;
		nbytes -= n;
	}
	return first;
}

/* How the index keeps re-ranking vectors: the option, else the column's own precision */
int
ScoreahBuildStorage(ScoreahBuildState *state)
{
	if (state->opts->reorderingStorage != SCOREAH_STORAGE_DEFAULT)
		return state->opts->reorderingStorage;
	return state->format == SCOREAH_FORMAT_HALFVEC ? SCOREAH_STORAGE_HALF : SCOREAH_STORAGE_FLOAT;
}

void
ScoreahBuildFillMeta(ScoreahBuildState *state, ScoreahMetaPage meta)
{
	ScoreahOptions *opts = state->opts;

	memset(meta, 0, sizeof(ScoreahMetaPageData));
	meta->magic = SCOREAH_MAGIC;
	meta->version = SCOREAH_VERSION;
	if (!pg_strong_random(&meta->buildId, sizeof(meta->buildId)))
		meta->buildId = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	meta->dimensions = state->dim;
	meta->metric = state->metric;
	meta->nkeys = state->nkeys;
	memcpy(meta->keyKinds, state->keyKinds, sizeof(meta->keyKinds));
	meta->format = state->format;
	meta->dimsPerBlock = state->model.dpb;
	meta->scoring = opts->scoring;
	meta->reorderStorage = ScoreahBuildStorage(state);
	meta->leavesTrainingSampleSize = state->ntree;
	meta->leavesTrainingIterations = opts->leavesTrainingIterations;
	meta->minPartitionSize = opts->minPartitionSize;
	meta->trainingSampleSize = state->npq;
	meta->trainingIterations = opts->trainingIterations;
	/* in the vectors' own units */
	meta->threshold = isnan(state->threshold) || state->model.dpb == 0 ? get_float8_nan() :
		state->threshold / state->scale;
	meta->scale = state->scale > 0 ? state->scale : 1.0;
	meta->meanNorm = state->meanNorm;
	meta->autoFlags = state->autoFlags;
	meta->sampleRows = state->nsamples;
	if (opts->spherical)
		meta->flags |= SCOREAH_FLAG_SPHERICAL;
	if (state->model.quantizeCentroids)
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
void
ScoreahBuildWriteUntrained(Relation index, ForkNumber forkNum, ScoreahMetaPage meta)
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
	meta->directoryPages = 1;	/* the leaf and the two extra leaves */

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
	for (int i = 0; i < ScoreahDirEntries(meta); i++)
		ScoreahInitLeafEntry(&leaf[i]);
	((PageHeader) page)->pd_lower += sizeof(ScoreahLeafData) * ScoreahDirEntries(meta);
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
 * Write the encoded rows, sorted by leaf and TID, as the leaves' code pages
 * and the shared vector pages; each leaf's directory entry goes to
 * leaves[leaf].  Returns the number of rows written.
 */
int64
ScoreahBuildWriteLeaves(ScoreahBuildState *state, ScoreahMetaPage meta, ScoreahLeaf leaves)
{
	int			nblocks = state->model.nblocks;
	LeafWriter	lw;
	TupleTableSlot *readSlot;
	int			curLeaf = -1;
	int64		written = 0;

	memset(&lw, 0, sizeof(lw));
	lw.index = state->index;
	lw.meta = meta;
	lw.model = &state->model;
	lw.vbytes = ScoreahVectorBytes(meta);
	lw.nblocks = nblocks;
	lw.dim = state->dim;
	ScoreahComputeLayout(meta, &lw.leafLayout);
	ScoreahComputeExtraLayout(meta, &lw.extraLayout);
	lw.layout = lw.leafLayout;
	readSlot = MakeSingleTupleTableSlot(state->sortDesc, &TTSOpsMinimalTuple);

	/*
	 * The rows' distances to their centroids are summed here, in the
	 * sort's (leaf, TID) order, not by each participant of a parallel
	 * encoding as it goes: the participants' sums came together in the
	 * order they finished, so a parallel build's builtMeanDistance (the
	 * staleness reference) differed from a serial one's in its last bits
	 * and from run to run (a review, session 35; TAP 030 compares them).
	 */
	state->sumDistance = 0;
	while (tuplesort_gettupleslot(state->sort, true, false, readSlot, NULL))
	{
		bool		isnull;
		int			leaf = DatumGetInt32(slot_getattr(readSlot, 1, &isnull));
		Datum		value = slot_getattr(readSlot, 3, &isnull);
		bytea	   *payload = DatumGetByteaPP(value);
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
			ScoreahInitLeafEntry(&lw.leaf);
			lw.layout = leaf >= (int) meta->nleaves ? lw.extraLayout : lw.leafLayout;
		}
		state->sumDistance += DatumGetFloat8(slot_getattr(readSlot, 4, &isnull));
		memcpy(&tid, p, sizeof(ItemPointerData));
		p += sizeof(ItemPointerData);
		{
			int64		keys[SCOREAH_MAX_KEYS];
			uint32		nulls;
			/* an extra leaf's row has no codes and no vector */
			const char *kp = leaf >= (int) meta->nleaves ? p : p + nblocks + lw.vbytes;

			memcpy(keys, kp, sizeof(int64) * meta->nkeys);
			memcpy(&nulls, kp + sizeof(int64) * meta->nkeys, sizeof(uint32));
			WriteRow(&lw, &tid, (const uint8 *) p, p + nblocks, keys, nulls);
		}
		if ((Pointer) payload != DatumGetPointer(value))
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
	ExecDropSingleTupleTableSlot(readSlot);
	return written;
}

/* The directory: meta->directoryPages pages from meta->directoryStart */
void
ScoreahBuildWriteDirectory(Relation index, ScoreahMetaPage meta, const ScoreahLeafData *leaves)
{
	for (uint32 i = 0; i < meta->directoryPages; i++)
	{
		PGAlignedBlock page;
		int			first = i * SCOREAH_LEAVES_PER_PAGE;
		int			n = Min(SCOREAH_LEAVES_PER_PAGE, ScoreahDirEntries(meta) - first);

		ScoreahInitPage(page.data, SCOREAH_PAGE_DIRECTORY, SCOREAH_NO_LEAF);
		memcpy(PageGetContents(page.data), leaves + first, sizeof(ScoreahLeafData) * n);
		((PageHeader) page.data)->pd_lower += sizeof(ScoreahLeafData) * n;
		ScoreahBuildWriteBlock(index, meta->directoryStart + i, page.data);
	}
}

/* The metapage, block 0: written last, when everything it points to is */
void
ScoreahBuildWriteMeta(Relation index, ScoreahMetaPage meta)
{
	PGAlignedBlock page;

	ScoreahInitPage(page.data, SCOREAH_PAGE_META, SCOREAH_NO_LEAF);
	memcpy(PageGetContents(page.data), meta, sizeof(ScoreahMetaPageData));
	((PageHeader) page.data)->pd_lower += sizeof(ScoreahMetaPageData);
	ScoreahBuildWriteBlock(index, SCOREAH_METAPAGE_BLKNO, page.data);
}
