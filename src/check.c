/*-------------------------------------------------------------------------
 *
 * check.c
 *	  scoreah_index_check(regclass): an amcheck-style walk of an index's
 *	  whole structure, one row per problem found, none when it is sound.
 *
 * It checks the metapage's fields, the kind and owner of every page, every
 * chain (no cycle, no page on two chains, nothing past the end, tail and
 * reuse hints on their chains), group sizes and live counts, heap TIDs
 * inside the table, each group's list of vector pages (inside the index,
 * covering every row), the padding of unused rows, and that every code
 * and vector page is reached (CheckUnreached).  It needs what
 * scoreah_index_info needs (info.c) and is refused under row-level
 * security, since its reports name rows' heap TIDs.
 *
 * On the primary no VACUUM frees pages under the walk (src/README,
 * "Locking"); on a hot standby replay may, so there a walk that found
 * problems while replay went on is done again, and what does not stay the
 * same is not reported (scoreah_index_check, below).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/xlog.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif
#include "catalog/index.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "scoreah.h"

PG_FUNCTION_INFO_V1(scoreah_index_check);

typedef struct CheckState
{
	Relation	index;
	Relation	heap;
	List	   *problems;		/* of the walk under way: text, at most
								 * MAX_PROBLEMS */
	int			nproblems;
	BlockNumber nblocks;		/* read again when a link goes past it */
	BlockNumber heapBlocks;		/* the same, for heap TIDs */
	Bitmapset  *seen;			/* blocks already on some chain */
	Bitmapset  *listed;			/* vector pages some group lists */
	ScoreahMetaPageData meta;
	ScoreahLayoutData layout;	/* of the leaf being checked */
	ScoreahLeaf entry;			/* its directory entry */
} CheckState;

static void
Problem(CheckState *cs, const char *fmt,...)
	pg_attribute_printf(2, 3);

#define MAX_PROBLEMS	1000	/* enough to know it is broken */

/* Walks on a hot standby, at most, before the reports that stay are final */
#define STANDBY_WALKS	3

static void
Problem(CheckState *cs, const char *fmt,...)
{
	va_list		args;
	StringInfoData buf;

	if (cs->nproblems++ >= MAX_PROBLEMS)
		return;
	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	cs->problems = lappend(cs->problems, buf.data);
}

/*
 * Whether blkno is inside the index, or the table, asking the relation's
 * size again before saying no: inserts go on during a check and may have
 * extended either since the size was taken.
 */
static bool
InIndex(CheckState *cs, BlockNumber blkno)
{
	if (blkno >= cs->nblocks)
		cs->nblocks = RelationGetNumberOfBlocks(cs->index);
	return blkno < cs->nblocks;
}

static bool
InHeap(CheckState *cs, BlockNumber blkno)
{
	if (blkno >= cs->heapBlocks)
		cs->heapBlocks = RelationGetNumberOfBlocks(cs->heap);
	return blkno < cs->heapBlocks;
}

/* The kind and owner of a page, to say what a chain ran into */
static void
DescribeForeign(CheckState *cs, BlockNumber blkno, const char *what, int leaf, uint16 kind)
{
	Buffer		buf = ReadBuffer(cs->index, blkno);
	Page		page;
	ScoreahPageOpaque opaque;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	opaque = ScoreahPageGetOpaque(page);
	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(ScoreahPageOpaqueData)) ||
		opaque->page_id != SCOREAH_PAGE_ID || opaque->kind != kind)
		Problem(cs, "leaf %d: %s block %u is not a page of kind %d", leaf, what, blkno, kind);
	else
		Problem(cs, "leaf %d: %s block %u belongs to leaf %d", leaf, what, blkno,
				(int) opaque->leaf);
	UnlockReleaseBuffer(buf);
}

/* Report why a chain walk ended early, if it did */
static void
ChainProblem(CheckState *cs, ScoreahChain chain, const char *what, int leaf)
{
	switch (chain->stop)
	{
		case SCOREAH_CHAIN_PAST_END:
			Problem(cs, "leaf %d: %s points to block %u, past the end of the index (%u blocks)",
					leaf, what, chain->stopBlkno, chain->nblocks);
			break;
		case SCOREAH_CHAIN_CYCLE:
			Problem(cs, "leaf %d: %s reaches block %u a second time (cycle or shared page)",
					leaf, what, chain->stopBlkno);
			break;
		case SCOREAH_CHAIN_FOREIGN:
			DescribeForeign(cs, chain->stopBlkno, what, leaf, chain->kind);
			break;
		default:
			break;
	}
}

/* A walk of a leaf's chain that reports instead of stopping quietly */
static void
BeginCheckedChain(CheckState *cs, ScoreahChain chain, BlockNumber head, uint16 kind, int leaf)
{
	ScoreahChainBegin(chain, cs->index, head, kind, (uint32) leaf, BUFFER_LOCK_SHARE, 0);
	chain->seen = &cs->seen;
	chain->nblocks = cs->nblocks;	/* ScoreahChainNext asks again past it */
}

/* A page outside the chains (model, directory): in range, right kind, once */
static void
CheckFixedPage(CheckState *cs, BlockNumber blkno, uint16 kind, const char *what)
{
	Buffer		buf;
	Page		page;
	ScoreahPageOpaque opaque;

	if (!InIndex(cs, blkno))
	{
		Problem(cs, "leaf -1: %s points to block %u, past the end of the index (%u blocks)",
				what, blkno, cs->nblocks);
		return;
	}
	if (bms_is_member((int) blkno, cs->seen))
	{
		Problem(cs, "leaf -1: %s reaches block %u a second time (cycle or shared page)",
				what, blkno);
		return;
	}
	cs->seen = bms_add_member(cs->seen, (int) blkno);
	buf = ReadBuffer(cs->index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	opaque = ScoreahPageGetOpaque(page);
	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(ScoreahPageOpaqueData)) ||
		opaque->page_id != SCOREAH_PAGE_ID || opaque->kind != kind)
		Problem(cs, "leaf -1: %s block %u is not a page of kind %d", what, blkno, kind);
	else if (opaque->leaf != SCOREAH_NO_LEAF)
		Problem(cs, "leaf -1: %s block %u belongs to leaf %d", what, blkno, (int) opaque->leaf);
	UnlockReleaseBuffer(buf);
}

/*
 * The metapage's fields against each other and the limits.  Returns false
 * when the rest of the index cannot be walked.
 */
static bool
CheckMetapage(CheckState *cs)
{
	ScoreahMetaPage meta = &cs->meta;

	if (meta->metric < SCOREAH_METRIC_L2 || meta->metric > SCOREAH_METRIC_COSINE)
		Problem(cs, "metapage: unknown metric %u", meta->metric);
	if (meta->format > SCOREAH_FORMAT_HALFVEC)
		Problem(cs, "metapage: unknown column format %u", meta->format);
	if (meta->nleaves == 0 || meta->nleaves > SCOREAH_MAX_LEAVES)
		Problem(cs, "metapage: %u leaves, expected 1 to %d", meta->nleaves, SCOREAH_MAX_LEAVES);
	if (meta->dimensions > SCOREAH_MAX_DIM)
		Problem(cs, "metapage: %u dimensions, more than %d", meta->dimensions, SCOREAH_MAX_DIM);
	if (meta->nblocks > (uint32) SCOREAH_MAX_BLOCKS)
		Problem(cs, "metapage: %u PQ blocks, more than %d", meta->nblocks, SCOREAH_MAX_BLOCKS);
	else if ((meta->flags & SCOREAH_FLAG_TRAINED) && meta->nblocks > 0 &&
			 meta->dimensions <= SCOREAH_MAX_DIM && meta->nkeys <= SCOREAH_MAX_KEYS)
	{
		ScoreahLayoutData layout;

		ScoreahComputeLayout(meta, &layout);
		if (meta->nblocks > (uint32) ScoreahLayoutMaxBlocks(&layout))
			Problem(cs, "metapage: %u PQ blocks%s, more than a group of this index can hold on a page (%d)",
					meta->nblocks, (meta->flags & SCOREAH_FLAG_ROW_BIAS) ? " with row biases" : "",
					ScoreahLayoutMaxBlocks(&layout));
	}
	if ((meta->flags & SCOREAH_FLAG_TRAINED) && meta->dimsPerBlock > 0 && meta->nblocks > 0 &&
		meta->nblocks != (meta->dimensions + meta->dimsPerBlock - 1) / meta->dimsPerBlock)
		Problem(cs, "metapage: %u PQ blocks do not match %u dimensions at %u per block",
				meta->nblocks, meta->dimensions, meta->dimsPerBlock);
	if (meta->directoryStart == InvalidBlockNumber ||
		meta->directoryStart + meta->directoryPages > cs->nblocks ||
		meta->directoryPages != (ScoreahDirEntries(meta) + SCOREAH_LEAVES_PER_PAGE - 1) / SCOREAH_LEAVES_PER_PAGE)
		Problem(cs, "metapage: directory of %u pages at block %u does not fit %u leaves in %u blocks",
				meta->directoryPages, meta->directoryStart, meta->nleaves, cs->nblocks);
	/* the leaves' spreads: none (built before they were kept) or one each */
	if ((meta->spreadBytes != 0 && meta->spreadBytes != sizeof(float) * meta->nleaves) ||
		!(meta->spreadWeight >= 0 && meta->spreadWeight <= 1))
		Problem(cs, "metapage: %u bytes of leaf spreads for %u leaves, weighted %g (expected 0 or %zu bytes, a weight in [0, 1])",
				meta->spreadBytes, meta->nleaves, (double) meta->spreadWeight,
				sizeof(float) * meta->nleaves);

	/*
	 * What scans, inserts and VACUUM refuse (ScoreahValidateMeta): its
	 * first field out of bounds, which the findings above may not name
	 * (the storage, the model's sizes, the key columns, the block width).
	 */
	{
		char	   *problem = ScoreahMetaProblem(cs->index, meta);

		if (problem != NULL)
			Problem(cs, "metapage: %s (scans, inserts and VACUUM refuse the index)", problem);
	}
	return cs->nproblems == 0;
}

/* The model's pages and the directory's */
static void
CheckFixedPages(CheckState *cs)
{
	ScoreahMetaPage meta = &cs->meta;

	for (BlockNumber b = 0; b < ScoreahModelPages(meta); b++)
		CheckFixedPage(cs, meta->blobStart + b, SCOREAH_PAGE_BLOB, "model");
	for (BlockNumber b = meta->directoryStart; b < meta->directoryStart + meta->directoryPages; b++)
		CheckFixedPage(cs, b, SCOREAH_PAGE_DIRECTORY, "directory");
}

/* A leaf's own vector chain, and its tail hint */
static void
CheckVectorChain(CheckState *cs, int leaf, ScoreahLeaf entry)
{
	ScoreahChainData chain;
	bool		tailSeen = false;

	BeginCheckedChain(cs, &chain, entry->vecHead, SCOREAH_PAGE_VECTORS, leaf);
	while (ScoreahChainNext(&chain))
	{
		PageHeader	ph = (PageHeader) chain.page;

		CHECK_FOR_INTERRUPTS();
		if (ph->pd_lower > ph->pd_upper)
			Problem(cs, "leaf %d: vector page %u has pd_lower %u past pd_upper %u",
					leaf, chain.blkno, ph->pd_lower, ph->pd_upper);
		if (chain.blkno == entry->vecTail)
			tailSeen = true;
	}
	ChainProblem(cs, &chain, "vector chain", leaf);
	ScoreahChainEnd(&chain);
	if (entry->vecTail != InvalidBlockNumber && !tailSeen)
		Problem(cs, "leaf %d: vector tail hint %u is not on the leaf's vector chain",
				leaf, entry->vecTail);
}

/*
 * A vector page a group of leaf lists: is it a vector page that leaf may
 * use, and how far do its records go?  The last page looked at is
 * remembered, since a leaf's groups list the same pages one after another.
 */
typedef struct VectorPageMemo
{
	BlockNumber blkno;
	bool		ok;
	uint16		lower;
} VectorPageMemo;

/*
 * The records of a vector page whose vectors are datums of a pgvector
 * type, which re-ranking hands to pgvector's operator: each must start
 * with the header the index writes (scans refuse any other).  The first
 * that does not is named.
 */
static void
CheckStoredHeaders(CheckState *cs, Page page, BlockNumber blkno)
{
	ScoreahPgvectorHeader want;
	Size		vbytes = cs->layout.vbytes;
	Size		lower = Min(((PageHeader) page)->pd_lower, BLCKSZ);

	ScoreahStoredHeader(&cs->meta, &want);
	for (Size off = SCOREAH_VECTORS_OFFSET; off + vbytes <= lower; off += vbytes)
	{
		if (memcmp((char *) page + off, &want, SCOREAH_PGVECTOR_HDRSZ) != 0)
		{
			Problem(cs, "vector page %u has a record at offset %zu whose header is not that of a %u-dimension %s",
					blkno, off, cs->meta.dimensions,
					cs->meta.format == SCOREAH_FORMAT_HALFVEC ? "halfvec" : "vector");
			return;
		}
	}
}

static bool
CheckVectorPage(CheckState *cs, VectorPageMemo *memo, BlockNumber blkno, int leaf,
				BlockNumber codeBlk, int g)
{
	Buffer		buf;
	Page		page;

	if (memo->blkno == blkno)
		return memo->ok;
	memo->blkno = blkno;
	memo->ok = false;
	if (!InIndex(cs, blkno))
	{
		Problem(cs, "leaf %d: block %u group %d lists vector page %u past the end of the index (%u blocks)",
				leaf, codeBlk, g, blkno, cs->nblocks);
		return false;
	}
	cs->listed = bms_add_member(cs->listed, (int) blkno);
	buf = ReadBuffer(cs->index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!ScoreahVectorPageOf(page, (uint32) leaf))
		Problem(cs, "leaf %d: block %u group %d lists block %u, which is not a vector page of the leaf",
				leaf, codeBlk, g, blkno);
	else
	{
		ScoreahVectorPageHeaderData *vh = ScoreahVectorPageHeader(page);

		if (ScoreahPageGetOpaque(page)->leaf == SCOREAH_SHARED_LEAF &&
			(vh->firstLeaf > vh->lastLeaf || vh->refs > vh->lastLeaf - vh->firstLeaf + 1))
			Problem(cs, "vector page %u is shared by leaves %u to %u but counts %u of them",
					blkno, vh->firstLeaf, vh->lastLeaf, vh->refs);
		memo->ok = true;
		memo->lower = ((PageHeader) page)->pd_lower;
		if (ScoreahStoredIsDatum(&cs->meta) && cs->layout.vecsPerPage > 0)
			CheckStoredHeaders(cs, page, blkno);
	}
	UnlockReleaseBuffer(buf);
	return memo->ok;
}

/*
 * The vector page in memo read again, for a row whose vector seemed past
 * its records: an insert may have added the record since the memo was
 * taken (it writes the vector before the row's codes).  True when the page
 * still passes.
 */
static bool
VectorPageGrew(CheckState *cs, VectorPageMemo *memo, BlockNumber blkno, int leaf,
			   BlockNumber codeBlk, int g)
{
	memo->blkno = InvalidBlockNumber;
	return CheckVectorPage(cs, memo, blkno, leaf, codeBlk, g);
}

/*
 * Whether the leaf's key summary covers a row's first key, reading the
 * directory entry again before saying no: an insert widens the summary
 * before it adds its row, maybe after the check copied the entry.
 */
static bool
SummaryCovers(CheckState *cs, int leaf, int64 key)
{
	ScoreahLeafData now;

	if (ScoreahKeySummaryCovers(cs->entry, key))
		return true;
	ScoreahReadLeaf(cs->index, &cs->meta, leaf, &now);
	return ScoreahKeySummaryCovers(&now, key);
}

/* One group of a code page: sizes, vector pages, TIDs, row biases, live count, padding */
static void
CheckGroup(CheckState *cs, VectorPageMemo *memo, int leaf, BlockNumber blkno, int g,
		   char *group)
{
	ScoreahLayout layout = &cs->layout;
	ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
	ItemPointer tids = ScoreahGroupTids(layout, group);
	int			nlive = 0;
	int			nblocks = layout->nblocks;

	if (gh->nitems == 0 || gh->nitems > SCOREAH_GROUP_ROWS)
	{
		Problem(cs, "leaf %d: block %u group %d has %u rows, expected 1 to %d",
				leaf, blkno, g, gh->nitems, SCOREAH_GROUP_ROWS);
		return;
	}
	/* the vector page list covers every row and stays in the index */
	if (gh->nvblk > layout->maxVblk ||
		(layout->vecsPerPage > 0 && gh->vslot >= layout->vecsPerPage))
		Problem(cs, "leaf %d: block %u group %d lists %u vector pages from slot %u, at most %d pages and %d slots fit",
				leaf, blkno, g, gh->nvblk, gh->vslot, layout->maxVblk, layout->vecsPerPage);
	else
		for (int v = 0; v < gh->nvblk; v++)
			CheckVectorPage(cs, memo, gh->vblk[v], leaf, blkno, g);
	if (gh->nitems < SCOREAH_GROUP_ROWS && (gh->inserted >> gh->nitems) != 0)
		Problem(cs, "leaf %d: block %u group %d marks unused rows as inserted", leaf, blkno, g);

	for (int i = 0; i < gh->nitems; i++)
	{
		ItemPointer tid = &tids[i];
		BlockNumber vblkno;
		uint16		voff;

		if (layout->vbytes > 0 && gh->nvblk <= layout->maxVblk)
		{
			if (!ScoreahRowVector(layout, gh, i, &vblkno, &voff))
				Problem(cs, "leaf %d: block %u group %d row %d has no vector page in its group's list",
						leaf, blkno, g, i);
			else if (CheckVectorPage(cs, memo, vblkno, leaf, blkno, g) &&
					 voff + Min(layout->vbytes, SCOREAH_VECTOR_CAPACITY) > memo->lower &&
					 VectorPageGrew(cs, memo, vblkno, leaf, blkno, g) &&
					 voff + Min(layout->vbytes, SCOREAH_VECTOR_CAPACITY) > memo->lower)
				Problem(cs, "leaf %d: block %u group %d row %d has its vector at (%u,%u), past the page's records",
						leaf, blkno, g, i, vblkno, voff);
		}
		if (!ItemPointerIsValid(tid))
			continue;
		nlive++;
		/* a scan prunes by the minimum before it reads a row's own bias */
		if (layout->biasOffset != 0)
		{
			float		bias = ScoreahGroupBias(layout, group)[i];
			float		min = ScoreahGroupBiasMin(layout, group);

			if (!isfinite(bias) || !isfinite(min) || bias < min)
				Problem(cs, "leaf %d: block %u group %d row %d has row bias %g, not a finite value at or above its group's minimum %g",
						leaf, blkno, g, i, bias, min);
		}
		/* the leaf's summary covers its rows' first keys */
		if (layout->nkeys > 0 && !(ScoreahGroupKeyNulls(layout, group)[0] & ((uint32) 1 << i)) &&
			!SummaryCovers(cs, leaf, ScoreahGroupKeys(layout, group, 0)[i]))
			Problem(cs, "leaf %d: block %u group %d row %d has a first key its leaf's summary does not cover",
					leaf, blkno, g, i);
		if (!InHeap(cs, ItemPointerGetBlockNumberNoCheck(tid)) ||
			ItemPointerGetOffsetNumberNoCheck(tid) == InvalidOffsetNumber ||
			ItemPointerGetOffsetNumberNoCheck(tid) > MaxHeapTuplesPerPage)
			Problem(cs, "leaf %d: block %u group %d row %d has heap TID (%u,%u) outside the table (%u blocks)",
					leaf, blkno, g, i, ItemPointerGetBlockNumberNoCheck(tid),
					ItemPointerGetOffsetNumberNoCheck(tid), cs->heapBlocks);
	}
	if (nlive != gh->nlive)
		Problem(cs, "leaf %d: block %u group %d counts %u live rows but holds %d",
				leaf, blkno, g, gh->nlive, nlive);

	/* nibbles of unused rows stay zero (padding) */
	if (nblocks > 0 && gh->nitems < SCOREAH_GROUP_ROWS)
	{
		const uint8 *codes = ScoreahGroupCodes(layout, group);

		for (int r = gh->nitems; r < SCOREAH_GROUP_ROWS; r++)
			for (int b = 0; b < nblocks; b++)
				if (scoreah_unpack_code(codes, r, b) != 0)
				{
					Problem(cs, "leaf %d: block %u group %d has codes in unused row %d",
							leaf, blkno, g, r);
					return;
				}
	}
}

/* A leaf's code chain, its groups, and its tail and reuse hints */
static void
CheckCodeChain(CheckState *cs, int leaf, ScoreahLeaf entry)
{
	ScoreahChainData chain;
	Size		gsize = cs->layout.gsize;
	bool		tailSeen = false;
	bool		reuseSeen = entry->reuseBlk == InvalidBlockNumber;
	VectorPageMemo memo = {InvalidBlockNumber, false, 0};

	BeginCheckedChain(cs, &chain, entry->codeHead, SCOREAH_PAGE_CODES, leaf);
	while (ScoreahChainNext(&chain))
	{
		PageHeader	ph = (PageHeader) chain.page;
		int			ngroups = ScoreahPageGetNGroups(chain.page, gsize);

		CHECK_FOR_INTERRUPTS();
		if (chain.blkno == entry->codeTail)
			tailSeen = true;
		if (chain.blkno == entry->reuseBlk)
			reuseSeen = true;
		if ((ph->pd_lower - MAXALIGN(SizeOfPageHeaderData)) % gsize != 0)
			Problem(cs, "leaf %d: code page %u holds a partial group (pd_lower %u)",
					leaf, chain.blkno, ph->pd_lower);
		if (ngroups > cs->layout.groupsPerPage)
			Problem(cs, "leaf %d: code page %u holds %d groups, at most %d fit",
					leaf, chain.blkno, ngroups, cs->layout.groupsPerPage);
		for (int g = 0; g < Min(ngroups, cs->layout.groupsPerPage); g++)
			CheckGroup(cs, &memo, leaf, chain.blkno, g, PageGetContents(chain.page) + g * gsize);
	}
	ChainProblem(cs, &chain, "code chain", leaf);
	ScoreahChainEnd(&chain);
	if (entry->codeTail != InvalidBlockNumber && !tailSeen)
		Problem(cs, "leaf %d: code tail hint %u is not on the leaf's code chain",
				leaf, entry->codeTail);
	if (!reuseSeen)
		Problem(cs, "leaf %d: reuse hint %u is not on the leaf's code chain",
				leaf, entry->reuseBlk);
}

/* Whether a chain of leaf's, walked now, reaches blkno */
static bool
OnLeafChain(CheckState *cs, BlockNumber head, uint16 kind, int leaf, BlockNumber blkno)
{
	ScoreahChainData chain;
	bool		found = false;

	ScoreahChainBegin(&chain, cs->index, head, kind, (uint32) leaf, BUFFER_LOCK_SHARE, 0);
	chain.nblocks = cs->nblocks;
	while (!found && ScoreahChainNext(&chain))
		found = chain.blkno == blkno;
	ScoreahChainEnd(&chain);
	return found;
}

/*
 * Code and vector pages that nothing reaches: what a crash in the middle of
 * VACUUM's freeing of a leaf leaves behind (the directory unlinks the
 * leaf's chains in one WAL record, the pages are deleted in later ones),
 * until the next VACUUM frees them (vacuum.c, ReclaimUnreached).  A page of
 * a leaf's own that the walk did not meet may have been linked since by an
 * insert, which links a page in the record that initializes it: the
 * leaf's chains, walked again now, reach it if so.  A shared vector page
 * no group lists stays so (inserts never list one anew); with vectors
 * longer than a page the later pages of each vector are listed by none,
 * so there only one whose leaves have no chain left is reported.
 */
static void
CheckUnreached(CheckState *cs)
{
	bool		longVectors = ScoreahVectorBytes(&cs->meta) > SCOREAH_VECTOR_CAPACITY;
	int			ndir = ScoreahDirEntries(&cs->meta);

	for (BlockNumber blkno = SCOREAH_METAPAGE_BLKNO + 1; blkno < cs->nblocks; blkno++)
	{
		Buffer		buf;
		uint16		kind;
		uint32		lo,
					hi;
		bool		shared;
		bool		unreached = true;

		if (bms_is_member((int) blkno, cs->seen) || bms_is_member((int) blkno, cs->listed))
			continue;
		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(cs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		kind = ScoreahChainPageLeaves(BufferGetPage(buf), &lo, &hi, &shared);
		UnlockReleaseBuffer(buf);
		if (kind == 0 || lo > hi || hi >= (uint32) ndir)
			continue;			/* not a page of a chain (other checks) */

		/* a shared page that fits its vectors: no group lists it, so none */
		for (uint32 leaf = lo; unreached && (!shared || longVectors) && leaf <= hi; leaf++)
		{
			ScoreahLeafData entry;

			ScoreahReadLeaf(cs->index, &cs->meta, (int) leaf, &entry);
			if (shared)
				unreached = !ScoreahLeafHasChains(&entry);
			else
				unreached = !OnLeafChain(cs, kind == SCOREAH_PAGE_CODES ? entry.codeHead : entry.vecHead,
										 kind, (int) leaf, blkno);
		}
		if (!unreached)
			continue;
		if (shared)
			Problem(cs, "vector page %u of leaves %u to %u is listed by no group of theirs (a crash while VACUUM freed a leaf leaves such pages: the next VACUUM frees them)",
					blkno, lo, hi);
		else
			Problem(cs, "leaf %u: %s page %u is on no chain of the leaf (a crash while VACUUM freed the leaf leaves such pages: the next VACUUM frees them)",
					lo, kind == SCOREAH_PAGE_CODES ? "code" : "vector", blkno);
	}
}

/* One walk of the whole index, its problems left in cs->problems */
static void
CheckIndex(CheckState *cs)
{
	cs->problems = NIL;
	cs->nproblems = 0;
	bms_free(cs->seen);
	cs->seen = NULL;
	bms_free(cs->listed);
	cs->listed = NULL;
	/* as in scoreah_index_info: its pages may be mid-build, not damaged */
	if (!cs->index->rd_index->indisready)
	{
		Problem(cs, "index is not ready: a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY is building it, or failed (then drop it or REINDEX it)");
		return;
	}
	cs->nblocks = RelationGetNumberOfBlocks(cs->index);
	cs->heapBlocks = RelationGetNumberOfBlocks(cs->heap);
	if (cs->nblocks == 0)
	{
		Problem(cs, "index has no metapage");
		return;
	}
	ScoreahReadMeta(cs->index, &cs->meta);	/* errors on a bad metapage */
	cs->seen = bms_make_singleton(SCOREAH_METAPAGE_BLKNO);
	if (!CheckMetapage(cs))
		return;
	CheckFixedPages(cs);

	/*
	 * Vector chains first, so code items can be checked against them; the
	 * leaves, then the extra leaves (NULL and zero vectors).
	 */
	for (int pass = 0; pass < 2; pass++)
		for (int leaf = 0; leaf < ScoreahDirEntries(&cs->meta); leaf++)
		{
			ScoreahLeafData entry;

			CHECK_FOR_INTERRUPTS();
			ScoreahReadLeafAndLayout(cs->index, &cs->meta, leaf, &entry, &cs->layout);
			cs->entry = &entry;
			if (pass == 0)
				CheckVectorChain(cs, leaf, &entry);
			else
				CheckCodeChain(cs, leaf, &entry);
		}

	/*
	 * Not on a hot standby: replaying a VACUUM that is freeing a leaf
	 * passes through the state a crash leaves (the directory's record
	 * replayed, the pages' records not yet), and a walk there, with no
	 * record replayed while it ran, reported a page on no chain (TAP 020,
	 * now and then).  On the primary the walk holds off VACUUM's freeing.
	 */
	if (!RecoveryInProgress())
		CheckUnreached(cs);
}

/* The reports of stable that are also in now: those that stayed */
static List *
KeepStable(List *stable, List *now)
{
	List	   *kept = NIL;
	ListCell   *lc;

	foreach(lc, stable)
	{
		ListCell   *lc2;

		foreach(lc2, now)
			if (strcmp((char *) lfirst(lc), (char *) lfirst(lc2)) == 0)
			{
				kept = lappend(kept, lfirst(lc));
				break;
			}
	}
	return kept;
}

/*
 * scoreah_index_check(index regclass) RETURNS SETOF text: one row per
 * problem; no rows when the index is sound.
 */
Datum
scoreah_index_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CheckState	cs;
	bool		rlsActive;
	bool		standby = RecoveryInProgress();
	List	   *report = NIL;
	int			unstable = 0;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	memset(&cs, 0, sizeof(cs));
	cs.index = ScoreahOpenForIntrospection(PG_GETARG_OID(0), &rlsActive);
	if (rlsActive)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row-level security is active on the table of \"%s\" for this role",
						RelationGetRelationName(cs.index)),
				 errdetail("scoreah_index_check reports on every row of the table."),
				 errhint("Run it as the table's owner or a role that bypasses row-level security.")));
	/* already locked, before the index (ScoreahOpenForIntrospection) */
	cs.heap = relation_open(IndexGetRelation(RelationGetRelid(cs.index), false), AccessShareLock);

	if (!standby)
	{
		/*
		 * No VACUUM frees pages while the walk goes on (src/README,
		 * "Locking"); inserts do go on, and what they change is read again
		 * before it is called a problem.  One walk is final.
		 */
		ScoreahLockFreeing(cs.index, ShareLock);
		CheckIndex(&cs);
		ScoreahUnlockFreeing(cs.index, ShareLock);
		report = cs.problems;
	}
	else
	{
		/*
		 * Replay frees and reuses pages with no regard for the walk, so a
		 * page seen on one chain may turn up on another.  A walk during
		 * which no record was replayed (none in progress when it began,
		 * none begun by its end) is final; otherwise one that found
		 * problems is done again, up to STANDBY_WALKS times, and only the
		 * reports every walk made are kept: real damage stays where it is,
		 * a page moving under the walk does not make the same report
		 * twice.
		 */
		for (int walk = 1;; walk++)
		{
			XLogRecPtr	before = GetXLogReplayRecPtr(NULL);
			bool		quiet;

			CheckIndex(&cs);
			quiet = GetCurrentReplayRecPtr(NULL) == before;
			if (cs.problems == NIL || quiet)
			{
				report = cs.problems;
				unstable = 0;
				break;
			}
			if (walk == 1)
				report = cs.problems;
			else
			{
				List	   *kept = KeepStable(report, cs.problems);

				unstable += list_length(report) - list_length(kept);
				report = kept;
			}
			if (walk == STANDBY_WALKS)
				break;
			ereport(DEBUG1,
					(errmsg_internal("scoreah_index_check of \"%s\": walk %d found %d problems while WAL was replayed, walking again",
									 RelationGetRelationName(cs.index), walk, cs.nproblems)));
		}
	}

	foreach(lc, report)
	{
		Datum		value = CStringGetTextDatum((char *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	if (unstable > 0)
		ereport(NOTICE,
				(errmsg("%d problem reports on index \"%s\" changed between walks while WAL replay went on, and are left out",
						unstable, RelationGetRelationName(cs.index)),
				 errhint("For a check that replay cannot disturb, run it while replay is paused (pg_wal_replay_pause()) or on the primary.")));
	relation_close(cs.heap, AccessShareLock);
	index_close(cs.index, AccessShareLock);
	return (Datum) 0;
}
