/*-------------------------------------------------------------------------
 *
 * utils.c
 *	  Page utilities of scoreah: new buffers, page initialisation and
 *	  checks, the metapage, the backend-local model cache, the leaf
 *	  directory and stored vectors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "scoreah.h"

/*
 * A new page for the index, exclusively locked: a page recycled through
 * the free space map when there is one, otherwise a new block at the end.
 */
Buffer
ScoreahNewBuffer(Relation index, ForkNumber forkNum)
{
	Buffer		buf;

	if (forkNum == MAIN_FORKNUM)
	{
		for (;;)
		{
			BlockNumber blkno = GetFreeIndexPage(index);

			if (blkno == InvalidBlockNumber)
				break;
			buf = ReadBuffer(index, blkno);

			/*
			 * Someone else may hold it (they might have taken it from the FSM
			 * too): skip it rather than wait.
			 */
			if (ConditionalLockBuffer(buf))
			{
				Page		page = BufferGetPage(buf);

				if (PageIsNew(page) ||
					(ScoreahPageGetOpaque(page)->page_id == SCOREAH_PAGE_ID &&
					 ScoreahPageGetOpaque(page)->kind == SCOREAH_PAGE_DELETED))
					return buf;
				LockBuffer(buf, BUFFER_LOCK_UNLOCK);
			}
			ReleaseBuffer(buf);
		}
	}

	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBufferExtended(index, forkNum, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

void
ScoreahInitPage(Page page, uint16 kind, uint32 leaf)
{
	ScoreahPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(ScoreahPageOpaqueData));
	opaque = ScoreahPageGetOpaque(page);
	opaque->nextblkno = InvalidBlockNumber;
	opaque->leaf = leaf;
	opaque->kind = kind;
	opaque->page_id = SCOREAH_PAGE_ID;
	if (kind == SCOREAH_PAGE_VECTORS)
	{
		ScoreahVectorPageHeaderData *vh = ScoreahVectorPageHeader(page);

		/* refs of a shared page: the build counts its leaves in */
		memset(vh, 0, sizeof(ScoreahVectorPageHeaderData));
		((PageHeader) page)->pd_lower = SCOREAH_VECTORS_OFFSET;
	}
}

/*
 * Is this a page of the given kind belonging to the given leaf?  VACUUM
 * frees the pages of a leaf left without live rows and they can be reused
 * at once, so a reader that followed a pointer taken before that (a chain
 * link, a candidate's vector location) asks this and stops or drops the
 * candidate when the answer is no: everything on a freed page was dead.
 */
bool
ScoreahPageIs(Page page, uint16 kind, uint32 leaf)
{
	ScoreahPageOpaque opaque;

	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(ScoreahPageOpaqueData)))
		return false;
	opaque = ScoreahPageGetOpaque(page);
	return opaque->page_id == SCOREAH_PAGE_ID && opaque->kind == kind &&
		opaque->leaf == leaf;
}

/*
 * Can leaf's vectors be on this page?  Its own vector pages, or shared
 * pages of the build whose leaves include it and are not all freed.  Like
 * ScoreahPageIs, a no means VACUUM freed the page: the row was dead.
 */
bool
ScoreahVectorPageIs(Page page, uint32 leaf)
{
	ScoreahVectorPageHeaderData *vh;

	if (ScoreahPageIs(page, SCOREAH_PAGE_VECTORS, leaf))
		return true;
	if (!ScoreahPageIs(page, SCOREAH_PAGE_VECTORS, SCOREAH_SHARED_LEAF))
		return false;
	vh = ScoreahVectorPageHeader(page);
	return vh->refs > 0 && leaf >= vh->firstLeaf && leaf <= vh->lastLeaf;
}

/*
 * Complain about a page that is not what the index structure says it is.
 */
void
ScoreahCheckPage(Relation index, Page page, BlockNumber blkno, uint16 kind)
{
	ScoreahPageOpaque opaque;

	if (PageIsNew(page))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" contains an unexpected zero page at block %u",
						RelationGetRelationName(index), blkno),
				 errhint("Please REINDEX it.")));
	opaque = ScoreahPageGetOpaque(page);
	if (PageGetSpecialSize(page) != MAXALIGN(sizeof(ScoreahPageOpaqueData)) ||
		opaque->page_id != SCOREAH_PAGE_ID || opaque->kind != kind)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has a page of the wrong kind at block %u (expected kind %d, found %d)",
						RelationGetRelationName(index), blkno, kind,
						(int) opaque->kind),
				 errhint("Please REINDEX it.")));
}

void
ScoreahReadMeta(Relation index, ScoreahMetaPage meta)
{
	Buffer		buf = ReadBuffer(index, SCOREAH_METAPAGE_BLKNO);
	Page		page;
	ScoreahMetaPage m;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	ScoreahCheckPage(index, page, SCOREAH_METAPAGE_BLKNO, SCOREAH_PAGE_META);
	m = (ScoreahMetaPage) PageGetContents(page);
	if (m->magic != SCOREAH_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not a scoreah index", RelationGetRelationName(index))));
	if (m->version != SCOREAH_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("index \"%s\" has on-disk version %u, this scoreah reads version %d",
						RelationGetRelationName(index), m->version, SCOREAH_VERSION),
				 errhint("REINDEX it.")));
	memcpy(meta, m, sizeof(ScoreahMetaPageData));
	UnlockReleaseBuffer(buf);
}

/*
 * Read nbytes of the blob stream that starts at block start, skipping the
 * first skip bytes.
 */
static void
ReadBlob(Relation index, BlockNumber start, Size skip, Size nbytes, char *dest)
{
	Size		cap = SCOREAH_PAGE_CAPACITY;
	BlockNumber blk = start + skip / cap;
	Size		off = skip % cap;

	while (nbytes > 0)
	{
		Buffer		buf = ReadBuffer(index, blk);
		Page		page;
		Size		n = Min(nbytes, cap - off);

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		ScoreahCheckPage(index, page, blk, SCOREAH_PAGE_BLOB);
		memcpy(dest, PageGetContents(page) + off, n);
		UnlockReleaseBuffer(buf);
		dest += n;
		nbytes -= n;
		off = 0;
		blk++;
	}
}

typedef struct CacheEntry
{
	Oid			indexOid;		/* hash key */
	uint64		buildId;
	ScoreahCache cache;			/* one chunk in CacheContext */
} CacheEntry;

static HTAB *cacheHash = NULL;
static MemoryContext cacheContext = NULL;

/*
 * The metapage and model of an index.  The metapage is read every time
 * (one share-locked buffer); the model is loaded once per build.
 */
ScoreahCache
ScoreahGetCache(Relation index)
{
	ScoreahMetaPageData meta;
	CacheEntry *entry;
	Oid			oid = RelationGetRelid(index);
	bool		found;
	Size		dim,
				nleaves,
				size;
	ScoreahCache cache;
	char	   *p;

	ScoreahReadMeta(index, &meta);

	if (cacheHash == NULL)
	{
		HASHCTL		ctl;

		cacheContext = AllocSetContextCreate(TopMemoryContext,
											 "scoreah model cache",
											 ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CacheEntry);
		ctl.hcxt = cacheContext;
		cacheHash = hash_create("scoreah model cache", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	entry = hash_search(cacheHash, &oid, HASH_ENTER, &found);
	if (found && entry->buildId == meta.buildId)
		return entry->cache;
	if (found && entry->cache)
	{
		if (entry->cache->recent)
			pfree(entry->cache->recent);
		pfree(entry->cache);
	}
	entry->cache = NULL;
	entry->buildId = 0;

	/* one chunk: struct, centroids, norms, codebooks, int8 centroids */
	dim = meta.dimensions;
	nleaves = (meta.flags & SCOREAH_FLAG_TRAINED) ? meta.nleaves : 0;
	size = MAXALIGN(sizeof(ScoreahCacheData)) +
		MAXALIGN(sizeof(float) * nleaves * dim) +
		MAXALIGN(sizeof(float) * nleaves) +
		MAXALIGN(sizeof(float) * SCOREAH_CENTERS * dim) +
		MAXALIGN(nleaves * dim) + MAXALIGN(sizeof(float) * dim);
	if (size >= MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("scoreah model of index \"%s\" needs %zu bytes, more than one allocation allows",
						RelationGetRelationName(index), size)));
	p = MemoryContextAllocZero(cacheContext, size);
	cache = (ScoreahCache) p;
	p += MAXALIGN(sizeof(ScoreahCacheData));
	cache->meta = meta;
	ScoreahComputeLayout(&cache->meta, &cache->layout);
	cache->model.dim = dim;
	cache->model.metric = meta.metric;
	cache->model.nleaves = meta.nleaves;
	cache->model.nblocks = meta.nblocks;
	cache->model.dpb = meta.dimsPerBlock;
	cache->model.residual = (meta.flags & SCOREAH_FLAG_RESIDUAL) != 0;
	cache->model.quantizeCentroids = (meta.flags & SCOREAH_FLAG_QUANTIZE_CENTROIDS) != 0;
	cache->model.centroids = (float *) p;
	p += MAXALIGN(sizeof(float) * nleaves * dim);
	cache->model.centroidNorms = (float *) p;
	p += MAXALIGN(sizeof(float) * nleaves);
	cache->model.codebooks = (float *) p;
	p += MAXALIGN(sizeof(float) * SCOREAH_CENTERS * dim);
	cache->model.qcentroids = (int8 *) p;
	p += MAXALIGN(nleaves * dim);
	cache->model.qscales = (float *) p;

	if (nleaves > 0)
	{
		PG_TRY();
		{
			ReadBlob(index, meta.blobStart, 0, meta.centroidBytes,
					 (char *) cache->model.centroids);
			ReadBlob(index, meta.blobStart, meta.centroidBytes, meta.codebookBytes,
					 (char *) cache->model.codebooks);
			if (cache->model.quantizeCentroids)
				scoreah_quantize_centroids(&cache->model);
		}
		PG_CATCH();
		{
			pfree(cache);
			hash_search(cacheHash, &oid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
		for (Size j = 0; j < nleaves; j++)
			cache->model.centroidNorms[j] =
				scoreah_dot(cache->model.centroids + j * dim,
							cache->model.centroids + j * dim, dim);
	}

	entry->cache = cache;
	entry->buildId = meta.buildId;
	return cache;
}

/*
 * ReadBuffer for the pages scans read over and over (code, vector and
 * directory pages): first try the buffer the block was found in last time.
 * ReadRecentBuffer pins it if it still holds the block, which skips the
 * shared buffer mapping lookup, a hash probe into a table the size of
 * shared_buffers that misses the CPU caches: about a tenth of a scan's
 * time at 100 dimensions.  The hint lives in the backend's model cache.
 */
Buffer
ScoreahReadBufferRecent(Relation index, ScoreahCache cache, BlockNumber blkno)
{
	Buffer		buf;

	if (blkno < cache->nrecent && BufferIsValid(cache->recent[blkno]) &&
#if PG_VERSION_NUM >= 160000
		ReadRecentBuffer(index->rd_locator, MAIN_FORKNUM, blkno, cache->recent[blkno])
#else
		ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, cache->recent[blkno])
#endif
		)
		return cache->recent[blkno];

	buf = ReadBuffer(index, blkno);
	if (blkno >= cache->nrecent)
	{
		BlockNumber n = Max(blkno + 1, Max(cache->nrecent * 2, 1024));

		if ((Size) n * sizeof(Buffer) >= MaxAllocSize)
			return buf;
		if (cache->recent == NULL)
			cache->recent = MemoryContextAllocZero(cacheContext, n * sizeof(Buffer));
		else
		{
			cache->recent = repalloc(cache->recent, n * sizeof(Buffer));
			memset(cache->recent + cache->nrecent, 0,
				   (n - cache->nrecent) * sizeof(Buffer));
		}
		cache->nrecent = n;
	}
	cache->recent[blkno] = buf;
	return buf;
}

/* Copy a leaf's directory entry from its page, pinned in buf */
static void
CopyLeafEntry(Relation index, Buffer buf, BlockNumber blkno, int leaf, ScoreahLeaf out)
{
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	ScoreahCheckPage(index, page, blkno, SCOREAH_PAGE_DIRECTORY);
	memcpy(out, (ScoreahLeaf) PageGetContents(page) + leaf % SCOREAH_LEAVES_PER_PAGE,
		   sizeof(ScoreahLeafData));
	UnlockReleaseBuffer(buf);
}

/*
 * Copy the directory entry of a leaf.
 */
void
ScoreahReadLeaf(Relation index, ScoreahMetaPage meta, int leaf, ScoreahLeaf out)
{
	BlockNumber blkno = meta->directoryStart + leaf / SCOREAH_LEAVES_PER_PAGE;

	CopyLeafEntry(index, ReadBuffer(index, blkno), blkno, leaf, out);
}

/* The same through the recent-buffer hint, for scans */
void
ScoreahReadLeafRecent(Relation index, ScoreahCache cache, int leaf, ScoreahLeaf out)
{
	BlockNumber blkno = cache->meta.directoryStart + leaf / SCOREAH_LEAVES_PER_PAGE;

	CopyLeafEntry(index, ScoreahReadBufferRecent(index, cache, blkno), blkno, leaf, out);
}

/*
 * Change a leaf's directory entry: edit() works on a copy under the
 * directory page's exclusive lock and returns whether to keep it; the page
 * is WAL-logged only when the entry really changed.
 */
void
ScoreahEditLeaf(Relation index, ScoreahMetaPage meta, int leaf,
				ScoreahLeafEdit edit, const void *arg)
{
	BlockNumber blkno = meta->directoryStart + leaf / SCOREAH_LEAVES_PER_PAGE;
	Buffer		buf = ReadBuffer(index, blkno);
	ScoreahLeaf entry;
	ScoreahLeafData copy;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	ScoreahCheckPage(index, BufferGetPage(buf), blkno, SCOREAH_PAGE_DIRECTORY);
	entry = (ScoreahLeaf) PageGetContents(BufferGetPage(buf)) + leaf % SCOREAH_LEAVES_PER_PAGE;
	copy = *entry;
	if (edit(&copy, arg) && memcmp(&copy, entry, sizeof(ScoreahLeafData)) != 0)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(state, buf, 0);

		*((ScoreahLeaf) PageGetContents(page) + leaf % SCOREAH_LEAVES_PER_PAGE) = copy;
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
}

/* Bytes of one stored re-ranking vector (0 when they live in the table) */
Size
ScoreahVectorBytes(ScoreahMetaPage meta)
{
	switch (meta->reorderStorage)
	{
		case SCOREAH_STORAGE_HALF:
			return sizeof(uint16) * meta->dimensions;
		case SCOREAH_STORAGE_TABLE:
			return 0;
		default:
			return sizeof(float) * meta->dimensions;
	}
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
		layout->maxVblk = 0;
	}
	else if (vbytes > SCOREAH_VECTOR_CAPACITY)
	{
		layout->vecsPerPage = 0;
		layout->maxVblk = SCOREAH_GROUP_MAX_VBLK;
	}
	else
	{
		int			v = (int) (SCOREAH_VECTOR_CAPACITY / vbytes);

		layout->vecsPerPage = v;
		layout->maxVblk = Min(SCOREAH_GROUP_MAX_VBLK, (v + 30) / v + 1);
	}
	layout->tidsOffset = MAXALIGN(offsetof(ScoreahGroupHeaderData, vblk) +
								  layout->maxVblk * sizeof(BlockNumber));
	layout->codesOffset = MAXALIGN(layout->tidsOffset +
								   SCOREAH_GROUP_ROWS * sizeof(ItemPointerData));
	layout->gsize = MAXALIGN(layout->codesOffset + (Size) meta->nblocks * 16);
	layout->groupsPerPage = (int) (SCOREAH_PAGE_CAPACITY / layout->gsize);
}

/*
 * Where row `row' of a group keeps its vector.  False when the group's
 * page list does not cover the row (a damaged page) or there are no stored
 * vectors.
 */
bool
ScoreahRowVector(const ScoreahLayoutData *layout, const ScoreahGroupHeaderData *gh,
				 int row, BlockNumber *blkno, uint16 *off)
{
	if (layout->vbytes == 0)
		return false;
	if (layout->vecsPerPage == 0)
	{
		/* a vector of its own pages: the list has one entry per row */
		if (row >= gh->nvblk)
			return false;
		*blkno = gh->vblk[row];
		*off = SCOREAH_VECTORS_OFFSET;
	}
	else
	{
		int			p = gh->vslot + row;
		int			v = layout->vecsPerPage;

		if (p / v >= gh->nvblk || gh->nvblk > layout->maxVblk)
			return false;
		*blkno = gh->vblk[p / v];
		*off = ScoreahVectorSlotOffset(layout, p % v);
	}
	return true;
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

/* The stored form of a vector: ScoreahVectorBytes(meta) bytes at out */
void
ScoreahPackVector(ScoreahMetaPage meta, const float *x, char *out)
{
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
 * Read a stored vector of a leaf that starts at byte off of page blkno; a
 * vector longer than a page continues at the start of the next page of the
 * chain.  Returns NULL when the page is no longer the leaf's vector page
 * (VACUUM freed it: the row was dead).
 */
float *
ScoreahReadVector(Relation index, ScoreahMetaPage meta, BlockNumber blkno,
				  uint16 off, uint32 leaf, float *out)
{
	Size		total = ScoreahVectorBytes(meta);
	Size		nbytes = total;
	bool		half = meta->reorderStorage == SCOREAH_STORAGE_HALF;
	char	   *dest = half ? palloc(total) : (char *) out;
	char	   *start = dest;

	while (nbytes > 0)
	{
		Buffer		buf;
		Page		page;
		Size		avail,
					n;

		if (blkno == InvalidBlockNumber)
		{
			if (half)
				pfree(start);
			return NULL;		/* chain cut: the page was freed */
		}
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!ScoreahVectorPageIs(page, leaf) ||
			off < SCOREAH_VECTORS_OFFSET || off > ((PageHeader) page)->pd_lower)
		{
			/* freed by VACUUM (its rows were all dead) and maybe reused */
			UnlockReleaseBuffer(buf);
			if (half)
				pfree(start);
			return NULL;
		}
		avail = ((PageHeader) page)->pd_lower - off;
		n = Min(nbytes, avail);
		memcpy(dest, (char *) page + off, n);
		dest += n;
		nbytes -= n;
		blkno = ScoreahPageGetOpaque(page)->nextblkno;
		off = SCOREAH_VECTORS_OFFSET;
		UnlockReleaseBuffer(buf);
	}
	if (half)
	{
		scoreah_half_to_float_many((const uint16 *) start, out, meta->dimensions);
		pfree(start);
	}
	return out;
}

void
ScoreahCheckDimensions(int expected, int actual)
{
	if (expected != actual)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", expected, actual)));
}
