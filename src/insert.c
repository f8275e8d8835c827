/*-------------------------------------------------------------------------
 *
 * insert.c
 *	  Inserts after build: route the row to its nearest leaf, encode it
 *	  with the index's codebooks (anisotropically when the index has a
 *	  threshold), and append its vector and codes to the leaf's chains.
 *
 * Every page change goes through GenericXLog.  Inserters into the same
 * leaf serialize on the leaf's tail page; different leaves do not meet.
 * The directory's tail pointers are hints: readers and writers follow the
 * chains' next links to the real tail, so a stale hint costs a page read,
 * never a lost row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "scoreah.h"

/* Which chain of a leaf */
typedef enum ChainKind
{
	CHAIN_CODES,
	CHAIN_VECTORS
} ChainKind;

static BlockNumber *
ChainHead(ScoreahLeaf leaf, ChainKind kind)
{
	return kind == CHAIN_CODES ? &leaf->codeHead : &leaf->vecHead;
}

static BlockNumber *
ChainTail(ScoreahLeaf leaf, ChainKind kind)
{
	return kind == CHAIN_CODES ? &leaf->codeTail : &leaf->vecTail;
}

static uint16
ChainPageKind(ChainKind kind)
{
	return kind == CHAIN_CODES ? SCOREAH_PAGE_CODES : SCOREAH_PAGE_VECTORS;
}

/*
 * Create the first page of a leaf's chain, unless a concurrent inserter
 * did it first.  The directory page is locked across the creation so only
 * one head can ever be linked.
 */
static void
EnsureHead(Relation index, ScoreahMetaPage meta, int leaf, ChainKind kind)
{
	BlockNumber dirblk = meta->directoryStart + leaf / SCOREAH_LEAVES_PER_PAGE;
	Buffer		dirbuf = ReadBuffer(index, dirblk);
	ScoreahLeaf entry;

	LockBuffer(dirbuf, BUFFER_LOCK_EXCLUSIVE);
	ScoreahCheckPage(index, BufferGetPage(dirbuf), dirblk, SCOREAH_PAGE_DIRECTORY);
	entry = (ScoreahLeaf) PageGetContents(BufferGetPage(dirbuf)) +
		leaf % SCOREAH_LEAVES_PER_PAGE;
	if (*ChainHead(entry, kind) == InvalidBlockNumber)
	{
		Buffer		newbuf = ScoreahNewBuffer(index, MAIN_FORKNUM);
		BlockNumber newblk = BufferGetBlockNumber(newbuf);
		GenericXLogState *state = GenericXLogStart(index);
		Page		dirpage = GenericXLogRegisterBuffer(state, dirbuf, 0);
		Page		newpage = GenericXLogRegisterBuffer(state, newbuf, GENERIC_XLOG_FULL_IMAGE);

		ScoreahInitPage(newpage, ChainPageKind(kind), (uint32) leaf);
		entry = (ScoreahLeaf) PageGetContents(dirpage) + leaf % SCOREAH_LEAVES_PER_PAGE;
		*ChainHead(entry, kind) = newblk;
		*ChainTail(entry, kind) = newblk;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(newbuf);
	}
	UnlockReleaseBuffer(dirbuf);
}

/*
 * The leaf's last page of a chain, exclusively locked: from the tail hint
 * (or the head) along the links to the page without a next one.  The
 * caller holds the leaf's share lock, so every page on the way must be the
 * leaf's.
 */
static Buffer
LockTail(Relation index, ScoreahMetaPage meta, int leaf, ChainKind kind)
{
	ScoreahLeafData entry;
	BlockNumber blkno;
	ScoreahChainData chain;

	ScoreahReadLeaf(index, meta, leaf, &entry);
	if (*ChainHead(&entry, kind) == InvalidBlockNumber)
	{
		EnsureHead(index, meta, leaf, kind);
		ScoreahReadLeaf(index, meta, leaf, &entry);
	}
	blkno = *ChainTail(&entry, kind);
	if (blkno == InvalidBlockNumber)
		blkno = *ChainHead(&entry, kind);

	ScoreahChainBegin(&chain, index, blkno, ChainPageKind(kind), (uint32) leaf,
					  BUFFER_LOCK_EXCLUSIVE, SCOREAH_CHAIN_STRICT);
	while (ScoreahChainNext(&chain))
		if (chain.next == InvalidBlockNumber)
			return ScoreahChainTake(&chain);
	elog(ERROR, "scoreah: the chain of leaf %d of index \"%s\" has no last page",
		 leaf, RelationGetRelationName(index));
	return InvalidBuffer;		/* keep compiler quiet */
}

typedef struct TailHint
{
	ChainKind	kind;
	BlockNumber blkno;
} TailHint;

static bool
EditTailHint(ScoreahLeaf entry, const void *arg)
{
	const TailHint *h = (const TailHint *) arg;

	*ChainTail(entry, h->kind) = h->blkno;
	return true;
}

/* Point the directory's tail hint of a chain at blkno */
static void
UpdateTailHint(Relation index, ScoreahMetaPage meta, int leaf, ChainKind kind,
			   BlockNumber blkno)
{
	TailHint	h = {kind, blkno};

	ScoreahEditLeaf(index, meta, leaf, EditTailHint, &h);
}

/*
 * Write a vector longer than a page at the end of the leaf's vector chain,
 * on pages of its own, and say where it starts.  Each step links the
 * previous page to the next in one WAL record of two pages; a crash part
 * way leaves pages no row points to (space lost until REINDEX, never a
 * wrong vector), because the row that points to them is written after.
 */
static BlockNumber
AppendLongVector(Relation index, ScoreahMetaPage meta, int leaf, const char *x,
				 Size nbytes)
{
	const char *src = x;
	Buffer		buf = LockTail(index, meta, leaf, CHAIN_VECTORS);
	BlockNumber startTail = BufferGetBlockNumber(buf);
	BlockNumber first = InvalidBlockNumber;

	/* a chain that ends with an empty page (a new head) starts there */
	if (((PageHeader) BufferGetPage(buf))->pd_lower == SCOREAH_VECTORS_OFFSET)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(state, buf, 0);
		Size		n = Min(nbytes, SCOREAH_VECTOR_CAPACITY);

		memcpy((char *) page + ((PageHeader) page)->pd_lower, src, n);
		((PageHeader) page)->pd_lower += n;
		GenericXLogFinish(state);
		first = BufferGetBlockNumber(buf);
		src += n;
		nbytes -= n;
	}
	while (nbytes > 0)
	{
		Buffer		newbuf = ScoreahNewBuffer(index, MAIN_FORKNUM);
		BlockNumber newblk = BufferGetBlockNumber(newbuf);
		GenericXLogState *state = GenericXLogStart(index);
		Page		prev = GenericXLogRegisterBuffer(state, buf, 0);
		Page		page = GenericXLogRegisterBuffer(state, newbuf, GENERIC_XLOG_FULL_IMAGE);
		Size		n = Min(nbytes, SCOREAH_VECTOR_CAPACITY);

		ScoreahInitPage(page, SCOREAH_PAGE_VECTORS, (uint32) leaf);
		ScoreahPageGetOpaque(prev)->nextblkno = newblk;
		memcpy((char *) page + ((PageHeader) page)->pd_lower, src, n);
		((PageHeader) page)->pd_lower += n;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		if (first == InvalidBlockNumber)
			first = newblk;
		buf = newbuf;
		src += n;
		nbytes -= n;
	}
	if (BufferGetBlockNumber(buf) != startTail)
	{
		BlockNumber tail = BufferGetBlockNumber(buf);

		UnlockReleaseBuffer(buf);
		UpdateTailHint(index, meta, leaf, CHAIN_VECTORS, tail);
	}
	else
		UnlockReleaseBuffer(buf);
	return first;
}

/*
 * Append a row to a leaf: its vector to the end of the vector chain and its
 * TID and codes to the last group of the code chain, or to a new group when
 * the last one is full or its vectors do not lead to where this one goes.
 *
 * A group finds its rows' vectors by position (see ScoreahGroupHeaderData),
 * so vectors must reach the chain in the order rows reach the groups: the
 * code tail's lock, taken first and held throughout, orders the appends of
 * a leaf, and vector and row go into one WAL record (at most four pages:
 * both tails and a new page for each), so a crash cannot leave a vector
 * without its row.  Vectors longer than a page are written beforehand by
 * AppendLongVector and located explicitly.
 */
static void
AppendRow(Relation index, ScoreahCache cache, int leaf, ItemPointer tid,
		  const char *packed, const uint8 *codes, float bias, const ScoreahRowKeysData *rk)
{
	ScoreahMetaPage meta = &cache->meta;
	ScoreahLayout layout = ScoreahCacheLeafLayout(cache, leaf);
	Size		gsize = layout->gsize;
	bool		withVector = layout->vecsPerPage > 0;
	BlockNumber vblkno = InvalidBlockNumber;
	uint16		voff = SCOREAH_VECTORS_OFFSET;
	ScoreahLeafData entry;
	Buffer		cbuf,
				vbuf = InvalidBuffer,
				newcbuf = InvalidBuffer,
				newvbuf = InvalidBuffer;
	Page		cpage;
	int			ngroups;
	char	   *group = NULL;
	ScoreahGroupHeaderData *gh;
	GenericXLogState *state;
	int			row;

	if (layout->vbytes > 0 && !withVector)
		vblkno = AppendLongVector(index, meta, leaf, packed, layout->vbytes);

	/*
	 * Heads first: creating one locks the directory, which must not wait
	 * while we hold a tail.
	 */
	ScoreahReadLeaf(index, meta, leaf, &entry);
	if (entry.codeHead == InvalidBlockNumber)
		EnsureHead(index, meta, leaf, CHAIN_CODES);
	if (withVector && entry.vecHead == InvalidBlockNumber)
		EnsureHead(index, meta, leaf, CHAIN_VECTORS);

	/* code tail, then vector tail: the order ReuseSlot locks them in too */
	cbuf = LockTail(index, meta, leaf, CHAIN_CODES);
	cpage = BufferGetPage(cbuf);
	if (withVector)
	{
		PageHeader	vph;
		int			slot;

		vbuf = LockTail(index, meta, leaf, CHAIN_VECTORS);
		vph = (PageHeader) BufferGetPage(vbuf);
		slot = (int) ((vph->pd_lower - SCOREAH_VECTORS_OFFSET) / layout->vbytes);
		if (slot >= layout->vecsPerPage)
		{
			newvbuf = ScoreahNewBuffer(index, MAIN_FORKNUM);
			vblkno = BufferGetBlockNumber(newvbuf);
			voff = ScoreahVectorSlotOffset(layout, 0);
		}
		else
		{
			vblkno = BufferGetBlockNumber(vbuf);
			voff = ScoreahVectorSlotOffset(layout, slot);
		}
	}

	/* the last group takes the row if it has room and its vectors lead here */
	ngroups = ScoreahPageGetNGroups(cpage, gsize);
	if (ngroups > 0)
	{
		char	   *last = PageGetContents(cpage) + (ngroups - 1) * gsize;
		union
		{
			ScoreahGroupHeaderData gh;
			char		bytes[MAXALIGN(offsetof(ScoreahGroupHeaderData, vblk) +
									   SCOREAH_GROUP_MAX_VBLK * sizeof(BlockNumber))];
		}			trial;

		memcpy(&trial, last, layout->tidsOffset);
		if (trial.gh.nitems < SCOREAH_GROUP_ROWS &&
			ScoreahGroupAddVector(layout, &trial.gh, trial.gh.nitems, vblkno, voff))
			group = last;
	}
	if (group == NULL && ngroups == layout->groupsPerPage)
		newcbuf = ScoreahNewBuffer(index, MAIN_FORKNUM);

	state = GenericXLogStart(index);
	cpage = GenericXLogRegisterBuffer(state, cbuf, 0);
	if (withVector)
	{
		Page		vpage = GenericXLogRegisterBuffer(state, vbuf, 0);

		if (BufferIsValid(newvbuf))
		{
			Page		prev = vpage;

			vpage = GenericXLogRegisterBuffer(state, newvbuf, GENERIC_XLOG_FULL_IMAGE);
			ScoreahInitPage(vpage, SCOREAH_PAGE_VECTORS, (uint32) leaf);
			ScoreahPageGetOpaque(prev)->nextblkno = vblkno;
		}
		Assert(((PageHeader) vpage)->pd_lower == voff);
		memcpy((char *) vpage + voff, packed, layout->vbytes);
		((PageHeader) vpage)->pd_lower = voff + layout->vbytes;
	}
	if (group != NULL)
		group = PageGetContents(cpage) + (ngroups - 1) * gsize;
	else
	{
		Page		gpage = cpage;

		if (BufferIsValid(newcbuf))
		{
			gpage = GenericXLogRegisterBuffer(state, newcbuf, GENERIC_XLOG_FULL_IMAGE);
			ScoreahInitPage(gpage, SCOREAH_PAGE_CODES, (uint32) leaf);
			ScoreahPageGetOpaque(cpage)->nextblkno = BufferGetBlockNumber(newcbuf);
			ngroups = 0;
		}
		group = PageGetContents(gpage) + ngroups * gsize;
		memset(group, 0, gsize);
		((PageHeader) gpage)->pd_lower += gsize;
	}
	gh = ScoreahGroupHeader(group);
	row = gh->nitems;
	if (!ScoreahGroupAddVector(layout, gh, row, vblkno, voff))
		elog(ERROR, "scoreah: a new group of leaf %d refused its first vector", leaf);
	ScoreahGroupTids(layout, group)[row] = *tid;
	gh->inserted |= (uint32) 1 << row;
	ScoreahPutRowCodes(layout, group, row, codes, bias);
	ScoreahPutRowKeys(layout, group, row, rk);
	gh->nitems++;
	gh->nlive++;
	GenericXLogFinish(state);

	UnlockReleaseBuffer(cbuf);
	if (BufferIsValid(vbuf))
		UnlockReleaseBuffer(vbuf);
	if (BufferIsValid(newvbuf))
	{
		UnlockReleaseBuffer(newvbuf);
		UpdateTailHint(index, meta, leaf, CHAIN_VECTORS, vblkno);
	}
	if (BufferIsValid(newcbuf))
	{
		BlockNumber tail = BufferGetBlockNumber(newcbuf);

		UnlockReleaseBuffer(newcbuf);
		UpdateTailHint(index, meta, leaf, CHAIN_CODES, tail);
	}
}

/*
 * Overwrite the stored vector of a dead slot in place (every vector of an
 * index has the same size, so a dead row's space fits a new one exactly).
 * One WAL record per page the vector touches.
 */
static void
OverwriteVector(Relation index, int leaf, BlockNumber blkno, uint16 off, Size nbytes,
				const char *x)
{
	const char *src = x;
	ScoreahChainData chain;

	ScoreahChainBegin(&chain, index, blkno, SCOREAH_PAGE_VECTORS, (uint32) leaf,
					  BUFFER_LOCK_EXCLUSIVE, SCOREAH_CHAIN_STRICT);
	chain.test = ScoreahVectorPageOf;
	while (nbytes > 0)
	{
		GenericXLogState *state;
		Page		page;
		Size		n;

		if (!ScoreahChainNext(&chain) ||
			off < SCOREAH_VECTORS_OFFSET || off > ((PageHeader) chain.page)->pd_lower)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has a vector at invalid offset %u of block %u",
							RelationGetRelationName(index), off, chain.blkno)));
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, chain.buf, 0);
		n = Min(nbytes, (Size) (((PageHeader) page)->pd_lower - off));
		memcpy((char *) page + off, src, n);
		GenericXLogFinish(state);
		src += n;
		nbytes -= n;
		off = SCOREAH_VECTORS_OFFSET;
	}
	ScoreahChainEnd(&chain);
}

typedef struct ReuseHint
{
	BlockNumber expected;
	BlockNumber blkno;
	bool		force;
} ReuseHint;

static bool
EditReuseHint(ScoreahLeaf entry, const void *arg)
{
	const ReuseHint *h = (const ReuseHint *) arg;

	if (!h->force && entry->reuseBlk != h->expected)
		return false;
	entry->reuseBlk = h->blkno;
	return true;
}

/*
 * Set the directory's reuse hint of a leaf to blkno; unless force, only if
 * it still says expected (an insert must not undo what a VACUUM just set).
 */
void
ScoreahSetReuseHint(Relation index, ScoreahMetaPage meta, int leaf,
					BlockNumber expected, BlockNumber blkno, bool force)
{
	ReuseHint	h = {expected, blkno, force};

	ScoreahEditLeaf(index, meta, leaf, EditReuseHint, &h);
}

/*
 * Put the row into a slot VACUUM freed, if the leaf has one: its TID, codes
 * and vector replace the dead row's.  Returns false when there is none.
 */
static bool
ReuseSlot(Relation index, ScoreahCache cache, int leaf, ItemPointer tid,
		  const char *x, const uint8 *codes, float bias, const ScoreahRowKeysData *rk)
{
	ScoreahMetaPage meta = &cache->meta;
	ScoreahLayout layout = ScoreahCacheLeafLayout(cache, leaf);
	ScoreahLeafData entry;
	Size		gsize = layout->gsize;
	BlockNumber start;
	ScoreahChainData chain;

	ScoreahReadLeaf(index, meta, leaf, &entry);
	start = entry.reuseBlk;
	ScoreahChainBegin(&chain, index, start, SCOREAH_PAGE_CODES, (uint32) leaf,
					  BUFFER_LOCK_EXCLUSIVE, SCOREAH_CHAIN_STRICT);
	chain.groups = layout;
	while (ScoreahChainNext(&chain))
	{
		int			ngroups = ScoreahPageGetNGroups(chain.page, gsize);

		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(chain.page) + g * gsize;
			ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
			ItemPointer tids = ScoreahGroupTids(layout, group);

			if (gh->nlive >= gh->nitems)
				continue;
			for (int i = 0; i < gh->nitems; i++)
			{
				GenericXLogState *state;
				Page		page;
				BlockNumber blkno = chain.blkno;

				if (ItemPointerIsValid(&tids[i]))
					continue;

				/* vector first: a crash before the TID leaves a dead slot */
				if (layout->vbytes > 0)
				{
					BlockNumber vblkno;
					uint16		voff;

					if (!ScoreahRowVector(layout, gh, i, &vblkno, &voff))
						ereport(ERROR,
								(errcode(ERRCODE_INDEX_CORRUPTED),
								 errmsg("index \"%s\" has a group without the vector page of its row %d at block %u",
										RelationGetRelationName(index), i, blkno)));
					OverwriteVector(index, leaf, vblkno, voff, layout->vbytes, x);
				}
				state = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(state, chain.buf, 0);
				group = PageGetContents(page) + g * gsize;
				gh = ScoreahGroupHeader(group);
				ScoreahGroupTids(layout, group)[i] = *tid;
				gh->inserted |= (uint32) 1 << i;
				ScoreahPutRowCodes(layout, group, i, codes, bias);
				ScoreahPutRowKeys(layout, group, i, rk);
				gh->nlive++;
				GenericXLogFinish(state);
				ScoreahChainEnd(&chain);
				if (blkno != start)
					ScoreahSetReuseHint(index, meta, leaf, start, blkno, false);
				return true;
			}
		}
	}
	ScoreahChainEnd(&chain);
	if (start != InvalidBlockNumber)
		ScoreahSetReuseHint(index, meta, leaf, start, InvalidBlockNumber, false);
	return false;
}

/* Widen a leaf's key summary to cover the row's first key */
static bool
EditKeySummary(ScoreahLeaf entry, const void *arg)
{
	return ScoreahKeySummaryAdd(entry, *(const int64 *) arg);
}

static void
InsertRow(Relation index, ScoreahCache cache, int leaf, ItemPointer tid,
		  const float *vector, const uint8 *codes, const ScoreahRowKeysData *rk)
{
	char	   *packed = palloc(Max(ScoreahVectorBytes(&cache->meta), 1));
	float		bias = 0;

	/* L2 on residuals: the row's own part of its distance (scoreah.h) */
	if (codes != NULL && cache->model.rowBias && leaf < (int) cache->meta.nleaves)
		bias = scoreah_pq_row_bias(&cache->model, leaf, codes);

	/* the extra leaves keep no vector */
	if (vector != NULL)
		ScoreahPackVector(&cache->meta, vector, packed);

	/*
	 * The leaf's summary first: a scan that reads it after this row
	 * committed must not skip the leaf.
	 */
	if (cache->meta.nkeys > 0 && !(rk->nulls & 1))
	{
		ScoreahLeafData entry;
		ScoreahLeafData trial;

		ScoreahReadLeaf(index, &cache->meta, leaf, &entry);
		trial = entry;
		if (ScoreahKeySummaryAdd(&trial, rk->keys[0]))
			ScoreahEditLeaf(index, &cache->meta, leaf, EditKeySummary, &rk->keys[0]);
	}

	/*
	 * A share lock on the leaf (a page lock on its number, not a buffer):
	 * VACUUM takes it exclusively to free the pages of a leaf without live
	 * rows, so it never frees a page an insert is about to use, and a row's
	 * vector and codes always land in the same, live chains.
	 */
	LockPage(index, (BlockNumber) leaf, ShareLock);
	if (!ReuseSlot(index, cache, leaf, tid, packed, codes, bias, rk))
		AppendRow(index, cache, leaf, tid, packed, codes, bias, rk);
	UnlockPage(index, (BlockNumber) leaf, ShareLock);
	pfree(packed);
}

/*
 * The first row of an index built on an empty table fixes its dimension.
 * A new buildId makes every backend reload the (trivial) model.
 */
static void
SetDimensions(Relation index, int dim)
{
	Buffer		buf = ScoreahLockMeta(index, BUFFER_LOCK_EXCLUSIVE);
	ScoreahMetaPage meta = (ScoreahMetaPage) PageGetContents(BufferGetPage(buf));

	if (meta->dimensions == 0)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(state, buf, 0);

		meta = (ScoreahMetaPage) PageGetContents(page);
		meta->dimensions = dim;
		meta->buildId++;
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
}

/* A row for an extra leaf: its TID and keys */
static void
InsertExtraRow(Relation index, ScoreahCache cache, int leaf, ItemPointer tid,
			   Datum *values, bool *isnull)
{
	ScoreahRowKeysData rk;

	ScoreahRowKeys(index, cache->meta.nkeys, values, isnull, rk.keys, &rk.nulls);
	InsertRow(index, cache, leaf, tid, NULL, NULL, &rk);
}

bool
scoreahinsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
			  Relation heap, IndexUniqueCheck checkUnique,
#if PG_VERSION_NUM >= 140000
			  bool indexUnchanged,
#endif
			  IndexInfo *indexInfo)
{
	MemoryContext ctx,
				oldCtx;
	ScoreahCache cache;
	ScoreahModel model;
	float	   *x,
			   *unit;
	int			dim;
	int			leaf = 0;
	uint8	   *codes = NULL;
	int			vcol;

	ctx = AllocSetContextCreate(CurrentMemoryContext, "scoreah insert",
								ALLOCSET_DEFAULT_SIZES);
	oldCtx = MemoryContextSwitchTo(ctx);

	cache = ScoreahCacheAcquire(index);
	vcol = ScoreahVectorColumn(index);
	if (isnull[vcol])
	{
		/* a NULL vector: an extra leaf, so that scans still return it */
		InsertExtraRow(index, cache, ScoreahNullLeaf(&cache->meta), heap_tid, values, isnull);
		ScoreahCacheRelease(cache);
		MemoryContextSwitchTo(oldCtx);
		MemoryContextDelete(ctx);
		return false;
	}
	x = ScoreahDatumToVector(cache->meta.format, values[vcol], &dim, "indexed vector");
	if (cache->meta.dimensions == 0)
	{
		if (dim > SCOREAH_MAX_DIM)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("scoreah indexes at most %d dimensions, the row has %d",
							SCOREAH_MAX_DIM, dim)));
		ScoreahCacheRelease(cache);
		SetDimensions(index, dim);
		cache = ScoreahCacheAcquire(index);
	}
	ScoreahCheckDimensions(cache->meta.dimensions, dim);
	model = &cache->model;

	unit = x;
	if (cache->meta.metric == SCOREAH_METRIC_COSINE)
	{
		unit = palloc(sizeof(float) * dim);
		if (scoreah_normalize(x, dim, unit) == 0)
		{
			/* zero vectors have no direction: an extra leaf, as NaN */
			InsertExtraRow(index, cache, ScoreahNanLeaf(&cache->meta), heap_tid, values, isnull);
			ScoreahCacheRelease(cache);
			MemoryContextSwitchTo(oldCtx);
			MemoryContextDelete(ctx);
			return false;
		}
	}

	if (cache->meta.flags & SCOREAH_FLAG_TRAINED)
	{
		/* the model works on vectors scaled as the build scaled them */
		if (cache->meta.scale != 1.0)
		{
			float	   *s = unit == x ? palloc(sizeof(float) * dim) : unit;

			scoreah_scale(unit, dim, cache->meta.scale, s);
			unit = s;
		}
		if (cache->meta.metric != SCOREAH_METRIC_COSINE)
			ScoreahCheckModelRange(unit, x, dim, cache->meta.meanNorm, cache->meta.scale,
								   "indexed vector", index->rd_index->indrelid);
		leaf = scoreah_nearest_l2(unit, model->centroids, model->centroidNorms,
								  model->nleaves, dim, NULL);
		if (model->nblocks > 0)
		{
			float	   *res = palloc(sizeof(float) * dim);

			scoreah_model_residual(model, unit, leaf, res);
			codes = palloc(model->nblocks);
			scoreah_pq_encode(model, res, unit, cache->meta.threshold * cache->meta.scale,
							  codes);
		}
	}

	{
		ScoreahRowKeysData rk;

		ScoreahRowKeys(index, cache->meta.nkeys, values, isnull, rk.keys, &rk.nulls);
		InsertRow(index, cache, leaf, heap_tid, x, codes, &rk);
	}
	ScoreahCacheRelease(cache);

	MemoryContextSwitchTo(oldCtx);
	MemoryContextDelete(ctx);
	return false;
}
