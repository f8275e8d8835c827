/*-------------------------------------------------------------------------
 *
 * vacuum.c
 *	  VACUUM for scoreah: remove dead heap TIDs from the leaves so scans
 *	  never spend candidates on them, and report statistics.
 *
 * A removed row keeps its slot in its group with an invalid TID (scans
 * skip it); its codes and vector stay until an insert into the same leaf
 * reuses the slot.  A leaf left without any live row gives all its pages
 * back: they are unlinked, marked deleted and recorded in the free space
 * map, from which new pages are taken; the build's vector pages, which
 * neighbouring leaves share, go back when the last leaf using them does.  Pages are reusable at once because
 * every reader checks that a page it reaches still belongs to the leaf it
 * expects (ScoreahPageIs) and otherwise treats it as gone, and inserts take
 * a share lock on their leaf that freeing waits for.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

#include "scoreah.h"

/*
 * Mark a page deleted and give it to the free space map; buf is
 * exclusively locked, and released here.
 */
static void
FreePage(Relation index, Buffer buf, IndexBulkDeleteResult *stats)
{
	BlockNumber blkno = BufferGetBlockNumber(buf);
	GenericXLogState *state = GenericXLogStart(index);
	Page		page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);

	ScoreahInitPage(page, SCOREAH_PAGE_DELETED, SCOREAH_NO_LEAF);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	RecordFreeIndexPage(index, blkno);
	stats->pages_deleted++;
	stats->pages_free++;
#if PG_VERSION_NUM >= 140000
	stats->pages_newly_deleted++;
#endif
}

/*
 * Mark every page of a leaf's chain deleted and give it to the free space
 * map; the walk ends at a page that is not the leaf's any more.
 */
static void
FreeChain(Relation index, BlockNumber head, uint16 kind, int leaf,
		  BufferAccessStrategy strategy, IndexBulkDeleteResult *stats)
{
	ScoreahChainData chain;

	ScoreahChainBegin(&chain, index, head, kind, (uint32) leaf, BUFFER_LOCK_EXCLUSIVE, 0);
	chain.strategy = strategy;
	while (ScoreahChainNext(&chain))
		FreePage(index, ScoreahChainTake(&chain), stats);
	ScoreahChainEnd(&chain);
}

static int
CmpBlock(const void *a, const void *b)
{
	BlockNumber x = *(const BlockNumber *) a;
	BlockNumber y = *(const BlockNumber *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * A freed leaf no longer needs its vectors on the build's shared pages:
 * take it off each page's count, and free the pages no leaf needs any
 * more.  The pages of a vector longer than a page follow its first page.
 */
static void
ReleaseSharedPages(Relation index, BlockNumber *blocks, int nblocks, int leaf,
				   BufferAccessStrategy strategy, IndexBulkDeleteResult *stats)
{
	qsort(blocks, nblocks, sizeof(BlockNumber), CmpBlock);
	for (int i = 0; i < nblocks; i++)
	{
		ScoreahChainData chain;

		if (i > 0 && blocks[i] == blocks[i - 1])
			continue;

		/* the leaf's own pages go with its chain; skip anything else */
		ScoreahChainBegin(&chain, index, blocks[i], SCOREAH_PAGE_VECTORS, (uint32) leaf,
						  BUFFER_LOCK_EXCLUSIVE, 0);
		chain.test = ScoreahSharedVectorPageOf;
		chain.strategy = strategy;
		while (ScoreahChainNext(&chain))
		{
			if (ScoreahVectorPageHeader(chain.page)->refs == 1)
				FreePage(index, ScoreahChainTake(&chain), stats);
			else
			{
				GenericXLogState *state = GenericXLogStart(index);
				Page		page = GenericXLogRegisterBuffer(state, chain.buf, 0);

				ScoreahVectorPageHeader(page)->refs--;
				GenericXLogFinish(state);
			}
		}
		ScoreahChainEnd(&chain);
	}
}

static bool
EditUnlinkChains(ScoreahLeaf entry, const void *arg)
{
	entry->codeHead = entry->codeTail = InvalidBlockNumber;
	entry->vecHead = entry->vecTail = InvalidBlockNumber;
	entry->reuseBlk = InvalidBlockNumber;
	return true;
}

/*
 * Free all pages of a leaf that has no live row left.  The exclusive lock
 * on the leaf waits for inserts into it to finish and keeps new ones out,
 * so the check below cannot be overtaken by a new row.  Returns whether it
 * freed them: not when a row arrived meanwhile, nor while a check runs.
 */
static bool
FreeLeaf(Relation index, ScoreahMetaPage meta, int leaf,
		 BufferAccessStrategy strategy, IndexBulkDeleteResult *stats)
{
	ScoreahLeafData entry;
	ScoreahLayoutData layout;
	ScoreahChainData chain;
	Size		gsize;
	bool		empty = true;
	int			maxvpages = 64;
	int			nvpages = 0;
	BlockNumber *vpages = palloc(sizeof(BlockNumber) * maxvpages);

	/*
	 * Not while scoreah_index_check walks the index: it would see the pages
	 * move from chain to chain.  Rather than wait for it, the leaf is left
	 * for the next VACUUM (src/README, "Locking").
	 */
	if (!ScoreahConditionalLockFreeing(index, ExclusiveLock))
	{
		ereport(DEBUG1,
				(errmsg("index \"%s\": leaf %d left unfreed while scoreah_index_check runs",
						RelationGetRelationName(index), leaf)));
		pfree(vpages);
		return false;
	}
	ScoreahComputeLeafLayout(meta, leaf, &layout);
	gsize = layout.gsize;
	LockPage(index, (BlockNumber) leaf, ExclusiveLock);
	ScoreahReadLeaf(index, meta, leaf, &entry);
	ScoreahChainBegin(&chain, index, entry.codeHead, SCOREAH_PAGE_CODES, (uint32) leaf,
					  BUFFER_LOCK_SHARE, SCOREAH_CHAIN_STRICT);
	chain.strategy = strategy;
	chain.groups = &layout;
	while (empty && ScoreahChainNext(&chain))
	{
		int			ngroups = ScoreahPageGetNGroups(chain.page, gsize);

		for (int g = 0; g < ngroups; g++)
		{
			ScoreahGroupHeaderData *gh = ScoreahGroupHeader(PageGetContents(chain.page) + g * gsize);

			if (gh->nlive > 0)
				empty = false;

			/* the vector pages its rows use, to release them below */
			for (int v = 0; v < Min(gh->nvblk, layout.maxVblk); v++)
			{
				if (nvpages == maxvpages)
				{
					maxvpages *= 2;
					vpages = repalloc(vpages, sizeof(BlockNumber) * maxvpages);
				}
				vpages[nvpages++] = gh->vblk[v];
			}
		}
	}
	ScoreahChainEnd(&chain);
	if (!empty || !ScoreahLeafHasChains(&entry))
	{
		UnlockPage(index, (BlockNumber) leaf, ExclusiveLock);
		ScoreahUnlockFreeing(index, ExclusiveLock);
		pfree(vpages);
		return false;
	}

	/* unlink the chains from the directory first: nothing new reaches them */
	ScoreahEditLeaf(index, meta, leaf, EditUnlinkChains, NULL);

	FreeChain(index, entry.codeHead, SCOREAH_PAGE_CODES, leaf, strategy, stats);
	FreeChain(index, entry.vecHead, SCOREAH_PAGE_VECTORS, leaf, strategy, stats);
	ReleaseSharedPages(index, vpages, nvpages, leaf, strategy, stats);
	UnlockPage(index, (BlockNumber) leaf, ExclusiveLock);
	ScoreahUnlockFreeing(index, ExclusiveLock);
	pfree(vpages);
	return true;
}

/*
 * One code page of VACUUM's walk, exclusively locked when there is a
 * callback: invalidate the TIDs it reports dead (looking first, and
 * changing the page only if something died), then count the live rows
 * into stats and *leafLive.  Returns whether the page has free slots.
 */
static bool
VacuumPage(Relation index, ScoreahLayout layout, Buffer buf,
		   IndexBulkDeleteCallback callback, void *callback_state,
		   IndexBulkDeleteResult *stats, int64 *leafLive)
{
	Page		page = BufferGetPage(buf);
	Size		gsize = layout->gsize;
	int			ngroups = ScoreahPageGetNGroups(page, gsize);
	int			ndead = 0;
	bool		hasFree = false;

	if (callback)
	{
		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(page) + g * gsize;
			ItemPointer tids = ScoreahGroupTids(layout, group);

			for (int i = 0; i < ScoreahGroupHeader(group)->nitems; i++)
				if (ItemPointerIsValid(&tids[i]) && callback(&tids[i], callback_state))
					ndead++;
		}
	}
	if (ndead > 0)
	{
		GenericXLogState *state = GenericXLogStart(index);
		Page		copy = GenericXLogRegisterBuffer(state, buf, 0);

		for (int g = 0; g < ngroups; g++)
		{
			char	   *group = PageGetContents(copy) + g * gsize;
			ScoreahGroupHeaderData *gh = ScoreahGroupHeader(group);
			ItemPointer tids = ScoreahGroupTids(layout, group);

			for (int i = 0; i < gh->nitems; i++)
				if (ItemPointerIsValid(&tids[i]) && callback(&tids[i], callback_state))
				{
					ItemPointerSetInvalid(&tids[i]);
					gh->nlive--;
					stats->tuples_removed++;
				}
		}
		GenericXLogFinish(state);
	}
	for (int g = 0; g < ngroups; g++)
	{
		ScoreahGroupHeaderData *gh = ScoreahGroupHeader(PageGetContents(page) + g * gsize);

		stats->num_index_tuples += gh->nlive;
		*leafLive += gh->nlive;
		hasFree |= gh->nlive < gh->nitems;
	}
	return hasFree;
}

/*
 * Walk every code page of every leaf; with a callback, invalidate the
 * TIDs it reports dead, free the leaves left without live rows and point
 * inserts at the first page with free slots.  Counts live rows into stats.
 */
static void
WalkLeaves(Relation index, BufferAccessStrategy strategy,
		   IndexBulkDeleteResult *stats,
		   IndexBulkDeleteCallback callback, void *callback_state)
{
	ScoreahMetaPageData meta;
	ScoreahLayoutData layout;

	ScoreahReadMeta(index, &meta);
	ScoreahValidateMeta(index, &meta);

	/* the leaves, then the extra leaves (NULL and zero vectors) */
	for (int leaf = 0; leaf < ScoreahDirEntries(&meta); leaf++)
	{
		ScoreahLeafData entry;
		ScoreahChainData chain;
		BlockNumber firstFree = InvalidBlockNumber;
		int64		leafLive = 0;

		ScoreahReadLeafAndLayout(index, &meta, leaf, &entry, &layout);
		ScoreahChainBegin(&chain, index, entry.codeHead, SCOREAH_PAGE_CODES, (uint32) leaf,
						  callback ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE,
						  SCOREAH_CHAIN_STRICT | SCOREAH_CHAIN_VACUUM_DELAY);
		chain.strategy = strategy;
		chain.groups = &layout;
		while (ScoreahChainNext(&chain))
			if (VacuumPage(index, &layout, chain.buf, callback, callback_state, stats,
						   &leafLive) && firstFree == InvalidBlockNumber)
				firstFree = chain.blkno;
		ScoreahChainEnd(&chain);

		if (callback && leafLive == 0 &&
			ScoreahLeafHasChains(&entry) &&
			FreeLeaf(index, &meta, leaf, strategy, stats))
			continue;
		if (callback && firstFree != entry.reuseBlk)
		{
			/*
			 * Point inserts at the leaf's free slots (also those of a leaf
			 * left unfreed: its slots are all free).
			 */
			ScoreahSetReuseHint(index, &meta, leaf, InvalidBlockNumber, firstFree, true);
		}
	}
}

/* Set block b's bit in bits (nblocks of them) */
static inline void
MarkBlock(uint8 *bits, BlockNumber nblocks, BlockNumber b)
{
	if (b < nblocks)
		bits[b / 8] |= (uint8) (1 << (b % 8));
}

static inline bool
BlockMarked(const uint8 *bits, BlockNumber nblocks, BlockNumber b)
{
	return b < nblocks && (bits[b / 8] & (1 << (b % 8))) != 0;
}

/*
 * Mark the pages a leaf's chains reach: its code pages, the vector pages
 * their groups list (where each vector starts) and, with ownChain, the
 * leaf's own vector chain (every page inserts have added for its vectors,
 * also those no group lists yet and the later pages of vectors longer
 * than a page).  Returns whether each walk ended at the end of its chain,
 * not at a page of another leaf or past the end.
 */
static bool
MarkLeafPages(Relation index, ScoreahMetaPage meta, int leaf, uint8 *bits, BlockNumber nblocks,
			  BufferAccessStrategy strategy, bool ownChain)
{
	ScoreahLeafData entry;
	ScoreahLayoutData layout;
	ScoreahChainData chain;
	bool		ok;

	ScoreahReadLeafAndLayout(index, meta, leaf, &entry, &layout);
	ScoreahChainBegin(&chain, index, entry.codeHead, SCOREAH_PAGE_CODES, (uint32) leaf,
					  BUFFER_LOCK_SHARE, SCOREAH_CHAIN_VACUUM_DELAY);
	chain.strategy = strategy;
	chain.groups = &layout;
	chain.nblocks = nblocks;
	while (ScoreahChainNext(&chain))
	{
		int			ngroups = ScoreahPageGetNGroups(chain.page, layout.gsize);

		MarkBlock(bits, nblocks, chain.blkno);
		for (int g = 0; g < ngroups; g++)
		{
			ScoreahGroupHeaderData *gh =
				ScoreahGroupHeader(PageGetContents(chain.page) + g * layout.gsize);

			for (int v = 0; v < Min(gh->nvblk, layout.maxVblk); v++)
				MarkBlock(bits, nblocks, gh->vblk[v]);
		}
	}
	ok = chain.stop == SCOREAH_CHAIN_END;
	ScoreahChainEnd(&chain);
	if (!ownChain)
		return ok;
	ScoreahChainBegin(&chain, index, entry.vecHead, SCOREAH_PAGE_VECTORS, (uint32) leaf,
					  BUFFER_LOCK_SHARE, SCOREAH_CHAIN_VACUUM_DELAY);
	chain.strategy = strategy;
	chain.nblocks = nblocks;
	while (ScoreahChainNext(&chain))
		MarkBlock(bits, nblocks, chain.blkno);
	ok = ok && chain.stop == SCOREAH_CHAIN_END;
	ScoreahChainEnd(&chain);
	return ok;
}

/*
 * The pages known to be in use, as a bit per block below nblocks: the
 * metapage, the model's and the directory's pages, every code page on a
 * leaf's chain and every vector page a group of those lists.  Only VACUUM
 * frees pages, one at a time for a table, so a page found here stays in
 * use until this VACUUM is over, unless this VACUUM freed it (and FreePage
 * recorded it).  Reads the code pages only: a tenth of GloVe's index.
 */
static uint8 *
MarkLivePages(Relation index, BufferAccessStrategy strategy, BlockNumber nblocks)
{
	uint8	   *live = palloc0(nblocks / 8 + 1);
	ScoreahMetaPageData meta;

	ScoreahReadMeta(index, &meta);
	ScoreahValidateMeta(index, &meta);
	MarkBlock(live, nblocks, SCOREAH_METAPAGE_BLKNO);
	for (BlockNumber b = 0; b < ScoreahModelPages(&meta); b++)
		MarkBlock(live, nblocks, meta.blobStart + b);
	for (BlockNumber b = 0; b < meta.directoryPages; b++)
		MarkBlock(live, nblocks, meta.directoryStart + b);

	/*
	 * Whatever is not marked is only read below (and walked again if it is
	 * a code or vector page), so a walk cut short costs reads, nothing else.
	 */
	for (int leaf = 0; leaf < ScoreahDirEntries(&meta); leaf++)
		(void) MarkLeafPages(index, &meta, leaf, live, nblocks, strategy, false);
	return live;
}

/*
 * A code or vector page that VACUUM's walk of the leaves did not mark, and
 * the leaves it may belong to (ScoreahChainPageLeaves).
 */
typedef struct Suspect
{
	BlockNumber blkno;
	uint16		kind;
	uint32		lo;
	uint32		hi;
} Suspect;

/*
 * Pages no chain reaches that are neither new nor deleted: what a crash in
 * the middle of FreeLeaf leaves behind.  Freeing a leaf takes several WAL
 * records (the directory unlinks its chains, then each page is marked
 * deleted, then the shared vector pages count one leaf fewer), and a crash
 * between the first and the last left the rest of the leaf's pages in use
 * by nothing until a REINDEX (a review killed a backend there: 82 of 849
 * pages).  RecordFreePages gives the code and vector pages MarkLivePages
 * did not mark (suspects: also pages inserts have linked since, and the
 * later pages of vectors longer than a page, which no group lists).
 *
 * A suspect none of its leaves' chains reaches is freed.  That is safe
 * because a page that is neither new nor deleted is never given to an
 * insert (ScoreahNewBuffer), an insert links each page it adds in the
 * record that initializes it, and only VACUUM unlinks: a suspect was
 * linked, if at all, before it was read, and a walk that starts after
 * that reaches it; one that does not is reached by nothing, now or later.
 * So the walks need no lock on the leaves (inserts go on), and a leaf
 * whose walk stops short of its chain's end (a foreign page, a link past
 * the end) frees no suspect of its.  Code pages and the vector pages of
 * vectors that fit a page are suspects only after a crash or when an
 * insert linked them during this cleanup: their leaves are walked (code
 * chain, listed vectors, own vector chain).  Vectors longer than a page
 * make the later pages of every vector suspects in every cleanup, and
 * walking their leaves would read every vector page again: a vector page
 * of such an index is freed only when none of its leaves has a chain left,
 * read off the directory (so a leaf given rows again before that VACUUM
 * keeps the pages until a REINDEX).  The freeing lock (not while
 * scoreah_index_check runs) is taken only when there is something to look
 * at.  Returns how many pages it freed.
 */
static BlockNumber
ReclaimUnreached(Relation index, BufferAccessStrategy strategy, IndexBulkDeleteResult *stats,
				 const Suspect *suspects, int nsuspects, BlockNumber nblocks)
{
	ScoreahMetaPageData meta;
	int			ndir;
	bool		longVectors;
	uint8	   *noChain;		/* per leaf: 0 not read, 1 has one, 2 none */
	bool	   *walk;
	bool	   *sure;
	bool	   *candidate = palloc0(sizeof(bool) * nsuspects);
	bool		anyWalk = false;
	bool		any = false;
	uint8	   *reach = NULL;
	BlockNumber nfreed = 0;

	ScoreahReadMeta(index, &meta);
	ScoreahValidateMeta(index, &meta);
	ndir = ScoreahDirEntries(&meta);
	longVectors = ScoreahVectorBytes(&meta) > SCOREAH_VECTOR_CAPACITY;
	noChain = palloc0(ndir);
	walk = palloc0(sizeof(bool) * ndir);
	sure = palloc0(sizeof(bool) * ndir);

	for (int i = 0; i < nsuspects; i++)
	{
		const Suspect *x = &suspects[i];
		bool		all = true;

		if (x->lo > x->hi || x->hi >= (uint32) ndir)
			continue;			/* not a chain page of this index's leaves */
		if (x->kind == SCOREAH_PAGE_VECTORS && longVectors)
		{
			for (uint32 leaf = x->lo; all && leaf <= x->hi; leaf++)
			{
				if (noChain[leaf] == 0)
				{
					ScoreahLeafData entry;

					ScoreahReadLeaf(index, &meta, (int) leaf, &entry);
					noChain[leaf] = ScoreahLeafHasChains(&entry) ? 1 : 2;
				}
				all = noChain[leaf] == 2;
			}
			candidate[i] = all;
		}
		else
		{
			for (uint32 leaf = x->lo; leaf <= x->hi; leaf++)
				walk[leaf] = true;
			candidate[i] = anyWalk = true;
		}
		any = any || candidate[i];
	}

	/* not while scoreah_index_check runs, as in FreeLeaf */
	if (any && ScoreahConditionalLockFreeing(index, ExclusiveLock))
	{
		if (anyWalk)
		{
			reach = palloc0(nblocks / 8 + 1);
			for (int leaf = 0; leaf < ndir; leaf++)
				if (walk[leaf])
					sure[leaf] = MarkLeafPages(index, &meta, leaf, reach, nblocks, strategy, true);
		}

		/* free the candidates no walk reached, if they are still what they were */
		for (int i = 0; i < nsuspects; i++)
		{
			const Suspect *x = &suspects[i];
			Buffer		buf;
			uint32		lo,
						hi;
			bool		shared;
			bool		all = candidate[i];

			for (uint32 leaf = x->lo; all && leaf <= x->hi; leaf++)
				if (walk[leaf])
					all = sure[leaf];
			if (!all || (reach && BlockMarked(reach, nblocks, x->blkno)))
				continue;
			buf = ReadBufferExtended(index, MAIN_FORKNUM, x->blkno, RBM_NORMAL, strategy);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			if (ScoreahChainPageLeaves(BufferGetPage(buf), &lo, &hi, &shared) != x->kind ||
				lo != x->lo || hi != x->hi)
			{
				UnlockReleaseBuffer(buf);
				continue;
			}
			FreePage(index, buf, stats);
			nfreed++;
		}
		ScoreahUnlockFreeing(index, ExclusiveLock);
	}
	if (nfreed > 0)
		ereport(LOG,
				(errmsg_plural("index \"%s\": %u page that no chain reached was freed",
							   "index \"%s\": %u pages that no chain reached were freed",
							   nfreed, RelationGetRelationName(index), nfreed),
				 errdetail("A crash while VACUUM freed a leaf leaves such pages behind.")));
	if (reach)
		pfree(reach);
	pfree(noChain);
	pfree(walk);
	pfree(sure);
	pfree(candidate);
	return nfreed;
}

/*
 * Give every deleted or never-initialized page of the index to the free
 * space map, and count them.  FreePage records the pages it frees, but the
 * free space map is not WAL-logged: after a crash, or on a standby
 * promoted to primary, the pages an earlier VACUUM freed would otherwise
 * stay unused until a REINDEX, and so would pages an insert added to the
 * relation but crashed before it initialized them.  A page recorded that
 * an insert has just taken is harmless: ScoreahNewBuffer uses a page from
 * the map only if it is still new or deleted under its lock.  Every page
 * not known to be in use (MarkLivePages) is read once, through VACUUM's
 * ring: on GloVe's index the code pages and a few more, not the nine
 * tenths that vectors take (reading every page added 120 ms to each
 * VACUUM of that 142 MB index, in memory).
 */
static void
RecordFreePages(Relation index, BufferAccessStrategy strategy, IndexBulkDeleteResult *stats)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber ndeleted = 0;
	BlockNumber nfree = 0;
	uint8	   *live = MarkLivePages(index, strategy, nblocks);
	int			maxsuspects = 64;
	int			nsuspects = 0;
	Suspect    *suspects = palloc(sizeof(Suspect) * maxsuspects);

	for (BlockNumber blkno = SCOREAH_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		bool		isnew;
		bool		deleted;
		Suspect		x;
		bool		shared;

		if (BlockMarked(live, nblocks, blkno))
			continue;
		vacuum_delay_point();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		isnew = PageIsNew(page);
		deleted = !isnew &&
			PageGetSpecialSize(page) == MAXALIGN(sizeof(ScoreahPageOpaqueData)) &&
			ScoreahPageGetOpaque(page)->page_id == SCOREAH_PAGE_ID &&
			ScoreahPageGetOpaque(page)->kind == SCOREAH_PAGE_DELETED;
		x.blkno = blkno;
		x.kind = ScoreahChainPageLeaves(page, &x.lo, &x.hi, &shared);
		UnlockReleaseBuffer(buf);
		if (isnew || deleted)
		{
			RecordFreeIndexPage(index, blkno);
			nfree++;
			if (deleted)
				ndeleted++;
		}
		else if (x.kind != 0)
		{
			if (nsuspects == maxsuspects)
			{
				maxsuspects *= 2;
				suspects = repalloc(suspects, sizeof(Suspect) * maxsuspects);
			}
			suspects[nsuspects++] = x;
		}
	}
	pfree(live);
	if (nsuspects > 0)
	{
		BlockNumber nfreed = ReclaimUnreached(index, strategy, stats, suspects,
											  nsuspects, nblocks);

		ndeleted += nfreed;
		nfree += nfreed;
	}
	pfree(suspects);
	stats->pages_deleted = ndeleted;
	stats->pages_free = nfree;
}

IndexBulkDeleteResult *
scoreahbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				  IndexBulkDeleteCallback callback, void *callback_state)
{
	if (stats == NULL)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
	stats->num_index_tuples = 0;
	WalkLeaves(info->index, info->strategy, stats, callback, callback_state);
	return stats;
}

IndexBulkDeleteResult *
scoreahvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;

	/* no bulk delete ran: count the rows */
	if (stats == NULL)
	{
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
		WalkLeaves(info->index, info->strategy, stats, NULL, NULL);
	}
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	RecordFreePages(info->index, info->strategy, stats);

	/* make the free pages findable in the free space map */
	IndexFreeSpaceMapVacuum(info->index);
	return stats;
}
