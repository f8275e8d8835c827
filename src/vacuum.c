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

/* Mark every page of a chain deleted and give it to the free space map */
static void
FreeChain(Relation index, BlockNumber blkno, uint16 kind, int leaf,
		  BufferAccessStrategy strategy, IndexBulkDeleteResult *stats)
{
	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
		BlockNumber next;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (!ScoreahPageIs(BufferGetPage(buf), kind, (uint32) leaf))
		{
			UnlockReleaseBuffer(buf);
			break;
		}
		next = ScoreahPageGetOpaque(BufferGetPage(buf))->nextblkno;
		FreePage(index, buf, stats);
		blkno = next;
	}
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
		BlockNumber blkno = blocks[i];

		if (i > 0 && blkno == blocks[i - 1])
			continue;
		while (blkno != InvalidBlockNumber)
		{
			Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
			Page		page;
			ScoreahVectorPageHeaderData *vh;
			BlockNumber next;

			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			page = BufferGetPage(buf);
			vh = ScoreahVectorPageHeader(page);

			/* the leaf's own pages go with its chain; skip anything else */
			if (!ScoreahPageIs(page, SCOREAH_PAGE_VECTORS, SCOREAH_SHARED_LEAF) ||
				vh->refs == 0 || (uint32) leaf < vh->firstLeaf || (uint32) leaf > vh->lastLeaf)
			{
				UnlockReleaseBuffer(buf);
				break;
			}
			next = ScoreahPageGetOpaque(page)->nextblkno;
			if (vh->refs == 1)
				FreePage(index, buf, stats);
			else
			{
				GenericXLogState *state = GenericXLogStart(index);

				page = GenericXLogRegisterBuffer(state, buf, 0);
				ScoreahVectorPageHeader(page)->refs--;
				GenericXLogFinish(state);
				UnlockReleaseBuffer(buf);
			}
			blkno = next;
		}
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
 * so the check below cannot be overtaken by a new row.
 */
static void
FreeLeaf(Relation index, ScoreahMetaPage meta, int leaf,
		 BufferAccessStrategy strategy, IndexBulkDeleteResult *stats)
{
	ScoreahLeafData entry;
	ScoreahLayoutData layout;
	Size		gsize;
	bool		empty = true;
	int			maxvpages = 64;
	int			nvpages = 0;
	BlockNumber *vpages = palloc(sizeof(BlockNumber) * maxvpages);

	ScoreahComputeLayout(meta, &layout);
	gsize = layout.gsize;
	LockPage(index, (BlockNumber) leaf, ExclusiveLock);
	ScoreahReadLeaf(index, meta, leaf, &entry);
	for (BlockNumber blkno = entry.codeHead; blkno != InvalidBlockNumber && empty;)
	{
		Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
		Page		page;
		int			ngroups;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		ScoreahCheckPage(index, page, blkno, SCOREAH_PAGE_CODES);
		ngroups = ScoreahPageGetNGroups(page, gsize);
		for (int g = 0; g < ngroups; g++)
		{
			ScoreahGroupHeaderData *gh = ScoreahGroupHeader(PageGetContents(page) + g * gsize);

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
		blkno = ScoreahPageGetOpaque(page)->nextblkno;
		UnlockReleaseBuffer(buf);
	}
	if (!empty || (entry.codeHead == InvalidBlockNumber && entry.vecHead == InvalidBlockNumber))
	{
		UnlockPage(index, (BlockNumber) leaf, ExclusiveLock);
		pfree(vpages);
		return;
	}

	/* unlink the chains from the directory first: nothing new reaches them */
	ScoreahEditLeaf(index, meta, leaf, EditUnlinkChains, NULL);

	FreeChain(index, entry.codeHead, SCOREAH_PAGE_CODES, leaf, strategy, stats);
	FreeChain(index, entry.vecHead, SCOREAH_PAGE_VECTORS, leaf, strategy, stats);
	ReleaseSharedPages(index, vpages, nvpages, leaf, strategy, stats);
	UnlockPage(index, (BlockNumber) leaf, ExclusiveLock);
	pfree(vpages);
}

/*
 * Walk every code page of every leaf; with a callback, invalidate the
 * TIDs it reports dead.  Counts live rows into stats.
 */
static void
WalkLeaves(Relation index, BufferAccessStrategy strategy,
		   IndexBulkDeleteResult *stats,
		   IndexBulkDeleteCallback callback, void *callback_state)
{
	ScoreahMetaPageData meta;
	ScoreahLayoutData layout;
	Size		gsize;

	ScoreahReadMeta(index, &meta);
	ScoreahComputeLayout(&meta, &layout);
	gsize = layout.gsize;

	for (int leaf = 0; leaf < (int) meta.nleaves; leaf++)
	{
		ScoreahLeafData entry;
		BlockNumber blkno;
		BlockNumber firstFree = InvalidBlockNumber;
		int64		leafLive = 0;

		ScoreahReadLeaf(index, &meta, leaf, &entry);
		for (blkno = entry.codeHead; blkno != InvalidBlockNumber;)
		{
			Buffer		buf;
			Page		page;
			int			ngroups;
			int			ndead = 0;

			vacuum_delay_point();
			buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
			LockBuffer(buf, callback ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			ScoreahCheckPage(index, page, blkno, SCOREAH_PAGE_CODES);
			ngroups = ScoreahPageGetNGroups(page, gsize);

			/* first look, then change the page only if something died */
			if (callback)
			{
				for (int g = 0; g < ngroups; g++)
				{
					char	   *group = PageGetContents(page) + g * gsize;
					ItemPointer tids = ScoreahGroupTids(&layout, group);

					for (int i = 0; i < ScoreahGroupHeader(group)->nitems; i++)
						if (ItemPointerIsValid(&tids[i]) &&
							callback(&tids[i], callback_state))
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
					ItemPointer tids = ScoreahGroupTids(&layout, group);

					for (int i = 0; i < gh->nitems; i++)
						if (ItemPointerIsValid(&tids[i]) &&
							callback(&tids[i], callback_state))
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
				leafLive += gh->nlive;
				if (gh->nlive < gh->nitems && firstFree == InvalidBlockNumber)
					firstFree = blkno;
			}
			blkno = ScoreahPageGetOpaque(page)->nextblkno;
			UnlockReleaseBuffer(buf);
		}

		if (callback && leafLive == 0 &&
			(entry.codeHead != InvalidBlockNumber || entry.vecHead != InvalidBlockNumber))
			FreeLeaf(index, &meta, leaf, strategy, stats);
		else if (callback && firstFree != entry.reuseBlk)
		{
			/* point inserts at the leaf's free slots */
			ScoreahSetReuseHint(index, &meta, leaf, InvalidBlockNumber, firstFree, true);
		}
	}
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

	/* make pages freed by this VACUUM findable in the free space map */
	IndexFreeSpaceMapVacuum(info->index);
	return stats;
}
