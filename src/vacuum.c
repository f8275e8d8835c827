/*-------------------------------------------------------------------------
 *
 * vacuum.c
 *	  VACUUM for scoreah: remove dead heap TIDs from the leaves so scans
 *	  never spend candidates on them, and report statistics.
 *
 * A removed row keeps its slot in its group with an invalid TID (scans
 * skip it); its codes and vector stay until the slot is reused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "utils/rel.h"

#include "scoreah.h"

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
	Size		gsize;

	ScoreahReadMeta(index, &meta);
	gsize = ScoreahGroupSize(meta.nblocks);

	for (int leaf = 0; leaf < (int) meta.nleaves; leaf++)
	{
		ScoreahLeafData entry;
		BlockNumber blkno;
		BlockNumber firstFree = InvalidBlockNumber;

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
					ScoreahItem items = ScoreahGroupItems(group);

					for (int i = 0; i < ScoreahGroupHeader(group)->nitems; i++)
						if (ItemPointerIsValid(&items[i].tid) &&
							callback(&items[i].tid, callback_state))
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
					ScoreahItem items = ScoreahGroupItems(group);

					for (int i = 0; i < gh->nitems; i++)
						if (ItemPointerIsValid(&items[i].tid) &&
							callback(&items[i].tid, callback_state))
						{
							ItemPointerSetInvalid(&items[i].tid);
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
				if (gh->nlive < gh->nitems && firstFree == InvalidBlockNumber)
					firstFree = blkno;
			}
			blkno = ScoreahPageGetOpaque(page)->nextblkno;
			UnlockReleaseBuffer(buf);
		}

		/* point inserts at the leaf's free slots */
		if (callback && firstFree != entry.reuseBlk)
			ScoreahSetReuseHint(index, &meta, leaf, InvalidBlockNumber, firstFree, true);
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
	return stats;
}
