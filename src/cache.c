/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  The backend's cache of index models and its buffer hints.
 *
 * Scans need an index's metapage, group layout and trained model
 * (centroids and codebooks: from a few kB to tens of MB) at every query;
 * reading them from their pages each time would cost more than many
 * queries.  So a backend keeps them between statements, under the rules
 * written next to ScoreahCacheData in scoreah.h: pinned while used,
 * dropped on relcache invalidation or a new build, freed only when
 * unpinned, and bounded in total by scoreah.model_cache_size with least
 * recently used eviction.
 *
 * It is deliberately not rd_amcache: the relcache may free that whenever
 * it rebuilds the entry (for example when VACUUM updates pg_class), with a
 * scan still using it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/ilist.h"
#include "storage/buf_internals.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "scoreah.h"

/* The hash's entry for an index OID: the current entry of that index */
typedef struct CacheLink
{
	Oid			indexOid;		/* hash key */
	ScoreahCache entry;
} CacheLink;

/* Every entry, linked or only pinned, with its list node */
typedef struct CacheNode
{
	dlist_node	node;
	ScoreahCacheData data;
} CacheNode;

static MemoryContext cacheContext = NULL;
static HTAB *cacheHash = NULL;
static dlist_head cacheEntries = DLIST_STATIC_INIT(cacheEntries);
static uint64 cacheClock = 0;

#define NodeOf(entry) \
	((CacheNode *) ((char *) (entry) - offsetof(CacheNode, data)))

static void
FreeEntry(ScoreahCache entry)
{
	Assert(entry->pins == 0 && !entry->linked);
	dlist_delete(&NodeOf(entry)->node);
	MemoryContextDelete(entry->context);
}

/* Take the entry out of the hash: nobody finds it any more */
static void
Unlink(ScoreahCache entry)
{
	if (entry->linked)
	{
		hash_search(cacheHash, &entry->indexOid, HASH_REMOVE, NULL);
		entry->linked = false;
	}
	if (entry->pins == 0)
		FreeEntry(entry);
}

static Size
TotalBytes(void)
{
	dlist_iter	it;
	Size		total = 0;

	dlist_foreach(it, &cacheEntries)
		total += dlist_container(CacheNode, node, it.cur)->data.bytes;
	return total;
}

/*
 * Evict unpinned entries, least recently used first, until the entries
 * together fit scoreah.model_cache_size (pinned ones stay whatever their
 * size).
 */
static void
EnforceLimit(void)
{
	Size		limit = (Size) scoreah_model_cache_size * 1024;
	Size		total = TotalBytes();

	while (total > limit)
	{
		dlist_iter	it;
		ScoreahCache victim = NULL;

		dlist_foreach(it, &cacheEntries)
		{
			ScoreahCache e = &dlist_container(CacheNode, node, it.cur)->data;

			if (e->pins == 0 && (victim == NULL || e->lastUse < victim->lastUse))
				victim = e;
		}
		if (victim == NULL)
			break;
		total -= victim->bytes;
		Unlink(victim);
	}
}

/*
 * Relcache invalidation of an index (DROP, REINDEX, ALTER INDEX, a
 * pg_class update), or of everything (InvalidOid, after an invalidation
 * queue overflow): its entry may be stale, so it goes.  Pinned entries
 * stay alive for their users and are freed by the last release.
 */
static void
InvalidateCallback(Datum arg, Oid relid)
{
	if (cacheHash == NULL)
		return;
	if (OidIsValid(relid))
	{
		CacheLink  *link = hash_search(cacheHash, &relid, HASH_FIND, NULL);

		if (link)
			Unlink(link->entry);
	}
	else
	{
		dlist_mutable_iter it;

		dlist_foreach_modify(it, &cacheEntries)
			Unlink(&dlist_container(CacheNode, node, it.cur)->data);
	}
}

/*
 * At the end of a top-level transaction no scan is running any more
 * (holdable cursors are materialized at commit), but scans ended by an
 * error never released their pins: drop them all, free what only they
 * kept alive, and trim the cache to its limit.
 */
static void
EndOfXact(XactEvent event, void *arg)
{
	dlist_mutable_iter it;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	dlist_foreach_modify(it, &cacheEntries)
	{
		ScoreahCache e = &dlist_container(CacheNode, node, it.cur)->data;

		e->pins = 0;
		if (!e->linked)
			FreeEntry(e);
	}
	EnforceLimit();
}

void
ScoreahInitCache(void)
{
	HASHCTL		ctl;

	cacheContext = AllocSetContextCreate(TopMemoryContext, "scoreah model cache",
										 ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CacheLink);
	ctl.hcxt = cacheContext;
	cacheHash = hash_create("scoreah model cache", 16, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(InvalidateCallback, (Datum) 0);
	RegisterXactCallback(EndOfXact, NULL);
}

/* Buffer hints for an index of nblocks blocks: a power of 2, bounded */
static int
HintSlots(BlockNumber nblocks)
{
	int			n = SCOREAH_MIN_HINTS;

	while (n < SCOREAH_MAX_HINTS && (BlockNumber) n < nblocks)
		n *= 2;
	return n;
}

/*
 * A new entry for the index's current build, in a memory context of its
 * own.  On error the context goes and nothing is kept.
 */
static ScoreahCache
LoadEntry(Relation index, ScoreahMetaPage meta)
{
	MemoryContext ctx;
	ScoreahCache entry;
	ScoreahModel model;
	Size		dim = meta->dimensions;
	Size		nleaves = (meta->flags & SCOREAH_FLAG_TRAINED) ? meta->nleaves : 0;
	CacheNode  *node;

	/* the sizes below come from the metapage: checked before they are used */
	ScoreahValidateMeta(index, meta);
	ctx = AllocSetContextCreate(cacheContext, "scoreah model", ALLOCSET_DEFAULT_SIZES);
	MemoryContextCopyAndSetIdentifier(ctx, RelationGetRelationName(index));
	PG_TRY();
	{
		node = MemoryContextAllocZero(ctx, sizeof(CacheNode));
		entry = &node->data;
		entry->indexOid = RelationGetRelid(index);
		entry->context = ctx;
		entry->meta = *meta;
		ScoreahComputeLayout(&entry->meta, &entry->layout);
		ScoreahComputeExtraLayout(&entry->meta, &entry->extraLayout);

		model = &entry->model;
		model->dim = dim;
		model->metric = meta->metric;
		model->nleaves = meta->nleaves;
		model->nblocks = meta->nblocks;
		model->dpb = meta->dimsPerBlock;
		model->residual = (meta->flags & SCOREAH_FLAG_RESIDUAL) != 0;
		model->rowBias = (meta->flags & SCOREAH_FLAG_ROW_BIAS) != 0;
		model->quantizeCentroids = (meta->flags & SCOREAH_FLAG_QUANTIZE_CENTROIDS) != 0;
		model->centroids = MemoryContextAllocExtended(ctx, sizeof(float) * nleaves * dim + 1,
													  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		model->centroidNorms = MemoryContextAllocZero(ctx, sizeof(float) * nleaves + 1);
		model->codebooks = MemoryContextAllocExtended(ctx, sizeof(float) * SCOREAH_CENTERS * dim + 1,
													  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		/* the lookup tables read them transposed (lut.c) */
		model->codebooksT = MemoryContextAllocExtended(ctx, sizeof(float) * SCOREAH_CENTERS * dim + 1,
													   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		if (model->quantizeCentroids)
		{
			model->qcentroids = MemoryContextAllocExtended(ctx, nleaves * dim + 1,
														   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
			model->qscales = MemoryContextAllocZero(ctx, sizeof(float) * dim + 1);
		}
		if (nleaves > 0)
		{
			ScoreahReadBlob(index, meta->blobStart, 0, meta->centroidBytes,
							(char *) model->centroids);
			ScoreahReadBlob(index, meta->blobStart, meta->centroidBytes,
							meta->codebookBytes, (char *) model->codebooks);
			scoreah_transpose_codebooks(model, model->codebooksT);
			if (meta->spreadBytes == sizeof(float) * nleaves)
			{
				model->leafSpread = MemoryContextAlloc(ctx, meta->spreadBytes);
				ScoreahReadBlob(index, meta->blobStart,
								(Size) meta->centroidBytes + meta->codebookBytes,
								meta->spreadBytes, (char *) model->leafSpread);
				model->spreadWeight = meta->spreadWeight;
			}
			if (model->quantizeCentroids)
				scoreah_quantize_centroids(model);
			for (Size j = 0; j < nleaves; j++)
				model->centroidNorms[j] = scoreah_dot(model->centroids + j * dim,
													  model->centroids + j * dim, dim);
		}

		entry->nhints = HintSlots(RelationGetNumberOfBlocks(index));
		entry->hints = MemoryContextAlloc(ctx, sizeof(ScoreahBufferHint) * entry->nhints);
		for (int i = 0; i < entry->nhints; i++)
		{
			entry->hints[i].blkno = InvalidBlockNumber;
			entry->hints[i].buf = InvalidBuffer;
		}
	}
	PG_CATCH();
	{
		MemoryContextDelete(ctx);
		PG_RE_THROW();
	}
	PG_END_TRY();
	entry->bytes = MemoryContextMemAllocated(ctx, true);
	dlist_push_head(&cacheEntries, &node->node);
	return entry;
}

/*
 * The cache entry of the index's current build, pinned: release it with
 * ScoreahCacheRelease.  The metapage is read every time (one share-locked
 * buffer) to see whether the build changed; the model is loaded once per
 * build.
 */
ScoreahCache
ScoreahCacheAcquire(Relation index)
{
	ScoreahMetaPageData meta;
	Oid			oid = RelationGetRelid(index);
	CacheLink  *link;
	ScoreahCache entry;
	bool		found;

	ScoreahReadMeta(index, &meta);
	link = hash_search(cacheHash, &oid, HASH_FIND, NULL);
	if (link && link->entry->meta.buildId == meta.buildId)
	{
		entry = link->entry;
		entry->pins++;
	}
	else
	{
		if (link)
			Unlink(link->entry);	/* an older build's */
		entry = LoadEntry(index, &meta);
		link = hash_search(cacheHash, &oid, HASH_ENTER, &found);
		Assert(!found);
		link->entry = entry;
		entry->linked = true;
		entry->pins = 1;
		EnforceLimit();			/* may evict others, never this one */
	}
	entry->lastUse = ++cacheClock;
	return entry;
}

void
ScoreahCacheRelease(ScoreahCache entry)
{
	Assert(entry->pins > 0);
	if (entry->pins > 0)
		entry->pins--;
	if (entry->pins == 0)
	{
		if (!entry->linked)
			FreeEntry(entry);
		else
			EnforceLimit();
	}
}

/*
 * ReadBuffer for the pages scans read over and over (code, vector and
 * directory pages): first try the buffer the block was found in last time
 * (see ScoreahBufferHint).  cache may be NULL: a plain read.
 */
Buffer
ScoreahReadBufferRecent(Relation index, ScoreahCache cache, BlockNumber blkno)
{
	ScoreahBufferHint *hint;
	Buffer		buf;

	if (cache == NULL)
		return ReadBuffer(index, blkno);
	hint = &cache->hints[blkno & (cache->nhints - 1)];
	if (hint->blkno == blkno &&
#if PG_VERSION_NUM >= 160000
		ReadRecentBuffer(index->rd_locator, MAIN_FORKNUM, blkno, hint->buf)
#else
		ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, hint->buf)
#endif
		)
		return hint->buf;

	buf = ReadBuffer(index, blkno);
	hint->blkno = blkno;
	hint->buf = buf;
	return buf;
}

/*
 * Start pulling a block's buffer header and bytes [from, from + len) of
 * its page toward the CPU cache without pinning it, if the hints know
 * which buffer holds it: re-ranking looks several candidates ahead this
 * way, so that the pin's header lock and the vector's lines are in cache
 * by the time it gets there.  Nothing is read: a hint gone stale (the
 * buffer reused since) costs a wasted prefetch, no more.  An invalid block
 * (a candidate without a readable vector) is skipped.
 */
void
ScoreahPrefetchHinted(ScoreahCache cache, BlockNumber blkno, Size from, Size len)
{
	ScoreahBufferHint *hint = &cache->hints[blkno & (cache->nhints - 1)];
	const char *p;

	if (blkno == InvalidBlockNumber || hint->blkno != blkno || hint->buf <= 0 ||
		hint->buf > NBuffers)
		return;
	__builtin_prefetch(GetBufferDescriptor(hint->buf - 1));
	p = (const char *) BufferGetPage(hint->buf);
	__builtin_prefetch(p);		/* the header and the special space: */
	__builtin_prefetch(p + BLCKSZ - 1);	/* both are checked first */
	ScoreahPrefetchBytes(p, from, len);
}

/*
 * Pin a page ahead of use and start pulling its header, its special space
 * and bytes [from, from + len) of it into the CPU cache, so their memory
 * latency overlaps the work on the page before it.  Only the bytes about
 * to be read at random: re-ranking reads one or two vectors of a page.
 * Code pages pass their first group's header and TIDs, or the whole group
 * for a leaf's first page (scoreah.h, before ScoreahGroupPrefetchBytes):
 * the 128 prefetches of a whole page at once (more lines than a core has
 * in flight) made a GloVe head query 3% slower.
 */
Buffer
ScoreahPinAhead(Relation index, ScoreahCache cache, BlockNumber blkno, Size from, Size len)
{
	Buffer		buf;
	const char *p;

	if (blkno == InvalidBlockNumber)
		return InvalidBuffer;
	buf = ScoreahReadBufferRecent(index, cache, blkno);
	p = (const char *) BufferGetPage(buf);
	__builtin_prefetch(p);		/* the header and the special space: */
	__builtin_prefetch(p + BLCKSZ - 1);	/* both are checked first */
	ScoreahPrefetchBytes(p, from, len);
	return buf;
}
