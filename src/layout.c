/*-------------------------------------------------------------------------
 *
 * layout.c
 *	  Where rows keep their codes and vectors: the group layout of an
 *	  index, the position of a row's vector, and stored vectors.
 *
 * A group of up to 32 rows on a code page lists the vector pages its
 * rows' vectors lie on (ScoreahGroupHeaderData in scoreah.h); vectors are
 * fixed-size records in the rows' order, so row j's vector is found by
 * position.  A vector longer than a page runs on over pages of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "scoreah.h"

/*
 * Is a stored vector a datum of the column's own type?  A pgvector column
 * kept in its own precision (vector in float32, halfvec in float16) keeps
 * its vectors as pgvector datums, so re-ranking can hand them to the
 * column's distance operator as they lie on the page; anything else keeps
 * the bare elements.
 */
bool
ScoreahStoredIsDatum(ScoreahMetaPage meta)
{
	return (meta->format == SCOREAH_FORMAT_VECTOR && meta->reorderStorage == SCOREAH_STORAGE_FLOAT) ||
		(meta->format == SCOREAH_FORMAT_HALFVEC && meta->reorderStorage == SCOREAH_STORAGE_HALF);
}

/*
 * Bytes of one stored re-ranking vector (0 when they live in the table).
 * Datums start at 4-byte boundaries: their varlena header is read as an
 * int32.
 */
Size
ScoreahVectorBytes(ScoreahMetaPage meta)
{
	Size		elems;

	switch (meta->reorderStorage)
	{
		case SCOREAH_STORAGE_HALF:
			elems = sizeof(uint16) * meta->dimensions;
			break;
		case SCOREAH_STORAGE_TABLE:
			return 0;
		default:
			elems = sizeof(float) * meta->dimensions;
			break;
	}
	if (ScoreahStoredIsDatum(meta))
		return INTALIGN(SCOREAH_PGVECTOR_HDRSZ + elems);
	return elems;
}

/*
 * The group layout of an index.  A group reserves room for the longest
 * list of vector pages its 32 rows can need: with V vectors to a page and
 * the first vector at any slot, 32 consecutive vectors touch at most
 * (V - 1 + 31) / V + 1 pages.
 */
void
ScoreahComputeLayout(ScoreahMetaPage meta, ScoreahLayout layout)
{
	Size		vbytes = ScoreahVectorBytes(meta);

	layout->vbytes = vbytes;
	if (vbytes == 0)
	{
		layout->vecsPerPage = 0;
		layout->vecsRecip = 0;
		layout->maxVblk = 0;
	}
	else if (vbytes > SCOREAH_VECTOR_CAPACITY)
	{
		layout->vecsPerPage = 0;
		layout->vecsRecip = 0;
		layout->maxVblk = SCOREAH_GROUP_MAX_VBLK;
	}
	else
	{
		int			v = (int) (SCOREAH_VECTOR_CAPACITY / vbytes);

		layout->vecsPerPage = v;
		layout->vecsRecip = (((uint64) 1 << 32) + v - 1) / v;
		layout->maxVblk = Min(SCOREAH_GROUP_MAX_VBLK, (v + 30) / v + 1);
	}
	layout->tidsOffset = MAXALIGN(offsetof(ScoreahGroupHeaderData, vblk) +
								  layout->maxVblk * sizeof(BlockNumber));
	layout->codesOffset = MAXALIGN(layout->tidsOffset +
								   SCOREAH_GROUP_ROWS * sizeof(ItemPointerData));
	layout->biasOffset = 0;
	if ((meta->flags & SCOREAH_FLAG_ROW_BIAS) && meta->nblocks > 0)
	{
		/* before the codes: a scan's prefetch of header and TIDs takes them */
		layout->biasOffset = layout->codesOffset;
		layout->codesOffset += SCOREAH_BIAS_BYTES;
	}
	layout->nblocks = (int) meta->nblocks;
	layout->nkeys = (int) meta->nkeys;
	layout->keysOffset = MAXALIGN(layout->codesOffset + (Size) meta->nblocks * 16);
	layout->gsize = MAXALIGN(layout->keysOffset + ScoreahKeysBytes(meta->nkeys));
	layout->groupsPerPage = (int) (SCOREAH_PAGE_CAPACITY / layout->gsize);
}

/*
 * The most PQ blocks a group of this layout can hold and still fit a page
 * (its codes and keys are whole 8-byte words after codesOffset, so a group
 * takes codesOffset + 16 nblocks + the keys' bytes exactly).  The bound
 * for the index's own vector size: ScoreahMaxBlocks assumes the longest
 * list of vector pages any width needs, which is what the build chooses
 * dimensions_per_block by, while row biases are kept wherever the index's
 * own layout has room for them (ScoreahRowBiasFits), so an index with
 * biases may hold more blocks than that bound.
 */
int
ScoreahLayoutMaxBlocks(const ScoreahLayoutData *layout)
{
	Size		fixed = layout->codesOffset + ScoreahKeysBytes(layout->nkeys);

	if (fixed >= SCOREAH_PAGE_CAPACITY)
		return 0;
	return (int) ((SCOREAH_PAGE_CAPACITY - fixed) / 16);
}

/*
 * The group layout of the extra leaves (rows with a NULL vector, or a
 * zero vector under cosine): no vector, no codes, only TIDs and keys, so
 * it does not depend on the dimension (such rows may come before it is
 * known).
 */
void
ScoreahComputeExtraLayout(ScoreahMetaPage meta, ScoreahLayout layout)
{
	layout->vbytes = 0;
	layout->vecsPerPage = 0;
	layout->vecsRecip = 0;
	layout->maxVblk = 0;
	layout->tidsOffset = MAXALIGN(offsetof(ScoreahGroupHeaderData, vblk));
	layout->codesOffset = MAXALIGN(layout->tidsOffset +
								   SCOREAH_GROUP_ROWS * sizeof(ItemPointerData));
	layout->biasOffset = 0;
	layout->nblocks = 0;
	layout->nkeys = (int) meta->nkeys;
	layout->keysOffset = layout->codesOffset;
	layout->gsize = MAXALIGN(layout->keysOffset + ScoreahKeysBytes(meta->nkeys));
	layout->groupsPerPage = (int) (SCOREAH_PAGE_CAPACITY / layout->gsize);
}

/*
 * Whether an index of this shape keeps row biases (L2 on residuals): where
 * they cost no code pages, i.e. a page holds as many groups with them as
 * without.  The table a leaf needs without them is the smaller cost where
 * it would take a page's room: up to a few hundred dimensions each width
 * loses a group a page (100 dimensions: 8 to 7, 128: 6 to 5), and in the
 * bands where 3 groups become 2 (293 to 310 dimensions in blocks of 2), 2
 * become 1 (463 to 478) or 1 no longer fits (969 to 976).  Wider groups,
 * one or two a page, have room to spare: 256, 384, 512, 768, 1,024 and
 * more dimensions keep them.
 */
bool
ScoreahRowBiasFits(ScoreahMetaPage meta)
{
	ScoreahMetaPageData with = *meta;
	ScoreahLayoutData plain;
	ScoreahLayoutData biased;

	if (meta->nblocks == 0)
		return false;
	with.flags |= SCOREAH_FLAG_ROW_BIAS;
	ScoreahComputeLayout(&with, &biased);
	with.flags &= ~SCOREAH_FLAG_ROW_BIAS;
	ScoreahComputeLayout(&with, &plain);
	return biased.groupsPerPage >= 1 && biased.groupsPerPage == plain.groupsPerPage;
}

/*
 * Store row `row' of a group's codes and, where the layout keeps them, its
 * bias, lowering the group's minimum (set afresh while the group has no
 * live row: the caller counts the row live after this).
 */
void
ScoreahPutRowCodes(const ScoreahLayoutData *layout, char *group, int row,
				   const uint8 *codes, float bias)
{
	if (layout->nblocks == 0)
		return;
	scoreah_pack_codes(ScoreahGroupCodes(layout, group), row, codes, layout->nblocks);
	if (layout->biasOffset != 0)
	{
		float	   *min = &ScoreahGroupBiasMin(layout, group);

		ScoreahGroupBias(layout, group)[row] = bias;
		if (ScoreahGroupHeader(group)->nlive == 0 || bias < *min)
			*min = bias;
	}
}

/* The layout of a leaf's groups: the leaves', or the extra leaves' */
void
ScoreahComputeLeafLayout(ScoreahMetaPage meta, int leaf, ScoreahLayout layout)
{
	if (leaf >= (int) meta->nleaves)
		ScoreahComputeExtraLayout(meta, layout);
	else
		ScoreahComputeLayout(meta, layout);
}

/*
 * Record that row `row' (the group's next row) has its vector at (blkno,
 * off).  False, with the group unchanged, when that place does not follow
 * the group's previous vectors: the caller then starts a new group there.
 */
bool
ScoreahGroupAddVector(const ScoreahLayoutData *layout, ScoreahGroupHeaderData *gh,
					  int row, BlockNumber blkno, uint16 off)
{
	int			v = layout->vecsPerPage;
	int			slot,
				p;

	if (layout->vbytes == 0)
		return true;
	if (v == 0)
	{
		if (row != gh->nvblk || row >= layout->maxVblk)
			return false;
		gh->vblk[gh->nvblk++] = blkno;
		return true;
	}
	slot = (int) ((off - SCOREAH_VECTORS_OFFSET) / layout->vbytes);
	if (row == 0)
	{
		gh->vslot = (uint16) slot;
		gh->vblk[0] = blkno;
		gh->nvblk = 1;
		return true;
	}
	p = gh->vslot + row;
	if (p % v != slot)
		return false;
	if (p / v < gh->nvblk)
		return gh->vblk[p / v] == blkno;
	if (p / v == gh->nvblk && gh->nvblk < layout->maxVblk)
	{
		gh->vblk[gh->nvblk++] = blkno;
		return true;
	}
	return false;
}

/*
 * The header every stored datum starts with (ScoreahStoredIsDatum): a
 * plain 4-byte varlena header of the datum's length, the dimensions, a
 * zero.  Re-ranking hands stored datums to pgvector's operators, which
 * would follow a TOAST pointer or decompress: a record whose header is
 * anything else is damage (ScoreahDamagedStored; scoreah_index_check names
 * it), never passed on.
 */
void
ScoreahStoredHeader(ScoreahMetaPage meta, ScoreahPgvectorHeader *h)
{
	memset(h, 0, sizeof(ScoreahPgvectorHeader));
	SET_VARSIZE(h, SCOREAH_PGVECTOR_HDRSZ +
				(meta->reorderStorage == SCOREAH_STORAGE_HALF ? sizeof(uint16) : sizeof(float)) *
				meta->dimensions);
	h->dim = (int16) meta->dimensions;
}

/* The error of a stored datum whose header is not want (scans) */
void
ScoreahDamagedStored(Oid indexOid, const char *stored, const ScoreahPgvectorHeader *want)
{
	ScoreahPgvectorHeader h;
	char	   *name = get_rel_name(indexOid);

	memcpy(&h, stored, sizeof(h));
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\" has a damaged re-ranking vector: header 0x%08x, %d dimensions, expected 0x%08x, %d",
					name ? name : "?", (uint32) h.vl_len_, (int) h.dim,
					(uint32) want->vl_len_, (int) want->dim),
			 errhint("Please REINDEX it; scoreah_index_check() lists what is wrong.")));
}

/* The stored form of a vector: ScoreahVectorBytes(meta) bytes at out */
void
ScoreahPackVector(ScoreahMetaPage meta, const float *x, char *out)
{
	if (ScoreahStoredIsDatum(meta))
	{
		/* a datum of the column's type: header, then the elements */
		memset(out, 0, ScoreahVectorBytes(meta));
		ScoreahStoredHeader(meta, (ScoreahPgvectorHeader *) out);
		out += SCOREAH_PGVECTOR_HDRSZ;
	}
	if (meta->reorderStorage == SCOREAH_STORAGE_HALF)
	{
		uint16		h;

		for (uint32 i = 0; i < meta->dimensions; i++)
		{
			/* 65520 and up round to infinity in half precision */
			if (fabsf(x[i]) >= 65520.0f)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("value %g (element %u) is out of range for reordering_storage = float16",
								x[i], i + 1),
						 errdetail("Half precision holds magnitudes up to 65504."),
						 errhint("Use reordering_storage = float32 or table.")));
			h = scoreah_float_to_half(x[i]);
			memcpy(out + i * sizeof(uint16), &h, sizeof(uint16));
		}
	}
	else if (meta->reorderStorage == SCOREAH_STORAGE_FLOAT)
		memcpy(out, x, sizeof(float) * meta->dimensions);
}

/*
 * Read the stored form of a vector of a leaf (ScoreahVectorBytes bytes
 * into buf) that starts at byte off of page blkno; a vector longer than a
 * page continues at the start of the next page of its run.  Returns false
 * when a page is no longer one the leaf's vectors can be on (VACUUM freed
 * it: the row was dead).
 */
bool
ScoreahReadStored(Relation index, ScoreahMetaPage meta, BlockNumber blkno,
				  uint16 off, uint32 leaf, char *buf)
{
	Size		nbytes = ScoreahVectorBytes(meta);
	ScoreahChainData chain;

	ScoreahChainBegin(&chain, index, blkno, SCOREAH_PAGE_VECTORS, leaf,
					  BUFFER_LOCK_SHARE, 0);
	chain.test = ScoreahVectorPageOf;
	while (nbytes > 0 && ScoreahChainNext(&chain))
	{
		PageHeader	ph = (PageHeader) chain.page;
		Size		n;

		if (off < SCOREAH_VECTORS_OFFSET || off > ph->pd_lower)
			break;				/* freed and reused meanwhile */
		n = Min(nbytes, (Size) (ph->pd_lower - off));
		memcpy(buf, (char *) chain.page + off, n);
		buf += n;
		nbytes -= n;
		off = SCOREAH_VECTORS_OFFSET;
	}
	ScoreahChainEnd(&chain);
	return nbytes == 0;
}

/* The elements of a stored vector as floats (exact: halves are floats) */
void
ScoreahStoredToFloats(ScoreahMetaPage meta, const char *stored, float *out)
{
	if (ScoreahStoredIsDatum(meta))
		stored += SCOREAH_PGVECTOR_HDRSZ;
	if (meta->reorderStorage == SCOREAH_STORAGE_HALF)
		scoreah_half_to_float_many((const uint16 *) stored, out, meta->dimensions);
	else
		memcpy(out, stored, sizeof(float) * meta->dimensions);
}

/* A stored vector as floats; NULL when VACUUM freed it (the row was dead) */
float *
ScoreahReadVector(Relation index, ScoreahMetaPage meta, BlockNumber blkno,
				  uint16 off, uint32 leaf, float *out)
{
	char	   *buf = palloc(ScoreahVectorBytes(meta));
	bool		found = ScoreahReadStored(index, meta, blkno, off, leaf, buf);

	if (found)
		ScoreahStoredToFloats(meta, buf, out);
	pfree(buf);
	return found ? out : NULL;
}

/* A directory entry with no pages and no key values */
void
ScoreahInitLeafEntry(ScoreahLeaf entry)
{
	memset(entry, 0, sizeof(ScoreahLeafData));
	entry->codeHead = entry->codeTail = InvalidBlockNumber;
	entry->vecHead = entry->vecTail = InvalidBlockNumber;
	entry->reuseBlk = InvalidBlockNumber;
	entry->keyMin = PG_INT64_MAX;
	entry->keyMax = PG_INT64_MIN;
}
