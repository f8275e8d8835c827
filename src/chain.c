/*-------------------------------------------------------------------------
 *
 * chain.c
 *	  The leaf directory, and walks along chains of pages.
 *
 * The directory holds one ScoreahLeafData per leaf: the heads of its code
 * and vector chains and hints for their tails and for the first page with
 * free slots.  Every walk along a chain, by scans, inserts, VACUUM and the
 * introspection functions, goes through ScoreahChainNext, which reads the
 * next page (through the buffer hints and pinned ahead, for scans; through
 * VACUUM's ring, for VACUUM), locks it and checks that it still belongs to
 * the chain (src/README, "Page reuse").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "utils/rel.h"

#include "scoreah.h"

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

/*
 * A leaf's directory entry and the layout of its pages, for walkers that
 * read every leaf (VACUUM, scoreah_index_check).  An index built empty may
 * have got its first row after *meta was read: that insert fixed the
 * dimension before it added pages, which are laid out for it, so the
 * metapage is read again (into *meta) when a leaf that is not extra has
 * pages and *meta no dimension (src/README, "Locking").
 */
void
ScoreahReadLeafAndLayout(Relation index, ScoreahMetaPage meta, int leaf, ScoreahLeaf entry,
						 ScoreahLayout layout)
{
	ScoreahReadLeaf(index, meta, leaf, entry);
	if (meta->dimensions == 0 && leaf < (int) meta->nleaves &&
		ScoreahLeafHasChains(entry))
	{
		ScoreahReadMeta(index, meta);
		ScoreahValidateMeta(index, meta);
	}
	ScoreahComputeLeafLayout(meta, leaf, layout);
}

/*
 * Copy the directory entries of leaves[0..n-1] into out[0..n-1], for scans
 * (through the recent-buffer hints), each directory page read and locked
 * once however many of the leaves it holds: a scan's round wants a few
 * dozen leaves of a few directory pages (GloVe's 576 leaves fill five),
 * and one read per leaf cost 600 instructions and a pin each.  Entries
 * read together are as good as entries read one by one: a scan only needs
 * those of the rows its snapshot sees, which were in the directory before
 * it started, and a page freed meanwhile held no live row (src/README,
 * "Page reuse").
 */
void
ScoreahReadLeavesRecent(Relation index, ScoreahCache cache, const int *leaves, int n,
						ScoreahLeaf out)
{
	BlockNumber start = cache->meta.directoryStart;
	int			done = 0;
	uint64		copied = 0;		/* bit i: leaves[i] done */

	StaticAssertStmt(SCOREAH_READ_LEAVES_MAX <= 64, "one bit per leaf");
	Assert(n <= SCOREAH_READ_LEAVES_MAX);
	while (done < n)
	{
		BlockNumber blkno = InvalidBlockNumber;
		Buffer		buf;
		Page		page;

		/* the first leaf not copied yet names the page; all of its leaves go */
		for (int i = 0; i < n; i++)
			if (!(copied & ((uint64) 1 << i)))
			{
				blkno = start + leaves[i] / SCOREAH_LEAVES_PER_PAGE;
				break;
			}
		buf = ScoreahReadBufferRecent(index, cache, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		ScoreahCheckPage(index, page, blkno, SCOREAH_PAGE_DIRECTORY);
		for (int i = 0; i < n; i++)
			if (!(copied & ((uint64) 1 << i)) &&
				start + leaves[i] / SCOREAH_LEAVES_PER_PAGE == blkno)
			{
				memcpy(&out[i], (ScoreahLeaf) PageGetContents(page) + leaves[i] % SCOREAH_LEAVES_PER_PAGE,
					   sizeof(ScoreahLeafData));
				copied |= (uint64) 1 << i;
				done++;
			}
		UnlockReleaseBuffer(buf);
	}
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

/* ---- chain walks ---- */

/*
 * Start a walk at head (InvalidBlockNumber: an empty chain).  The caller
 * may set hints, strategy, seen, nblocks or a pre-pinned first page
 * (ahead) before the first ScoreahChainNext.
 */
void
ScoreahChainBegin(ScoreahChain chain, Relation index, BlockNumber head,
				  uint16 kind, uint32 leaf, int lockmode, int flags)
{
	memset(chain, 0, sizeof(ScoreahChainData));
	chain->index = index;
	chain->kind = kind;
	chain->leaf = leaf;
	chain->test = kind == SCOREAH_PAGE_CODES ? ScoreahCodePageOf : ScoreahOwnVectorPageOf;
	chain->lockmode = lockmode;
	chain->flags = flags;
	chain->blkno = InvalidBlockNumber;
	chain->buf = InvalidBuffer;
	chain->stop = SCOREAH_CHAIN_MORE;
	chain->stopBlkno = InvalidBlockNumber;
	chain->next = head;
	chain->ahead = InvalidBuffer;
}

/* Unlock and release the current page, if the walk still holds it */
void
ScoreahChainRelease(ScoreahChain chain)
{
	if (BufferIsValid(chain->buf))
		UnlockReleaseBuffer(chain->buf);
	chain->buf = InvalidBuffer;
	chain->page = NULL;
}

/*
 * The current page's buffer, still locked, for the caller to release
 * (or free): the walk forgets it.
 */
Buffer
ScoreahChainTake(ScoreahChain chain)
{
	Buffer		buf = chain->buf;

	chain->buf = InvalidBuffer;
	chain->page = NULL;
	return buf;
}

static Buffer
ChainRead(ScoreahChain chain, BlockNumber blkno)
{
	if (chain->hints)
		return ScoreahReadBufferRecent(chain->index, chain->hints, blkno);
	return ReadBufferExtended(chain->index, MAIN_FORKNUM, blkno, RBM_NORMAL,
							  chain->strategy);
}

static bool
ChainStop(ScoreahChain chain, ScoreahChainStop stop, BlockNumber blkno)
{
	chain->stop = stop;
	chain->stopBlkno = blkno;
	if (BufferIsValid(chain->ahead))
		ReleaseBuffer(chain->ahead);
	chain->ahead = InvalidBuffer;
	return false;
}

/*
 * Move to the next page of the chain, locked in chain->lockmode: true with
 * chain->blkno, buf and page set, or false when the walk is over, with
 * chain->stop saying why.  The previous page is released first unless the
 * caller released or took it.
 */
bool
ScoreahChainNext(ScoreahChain chain)
{
	BlockNumber blkno = chain->next;
	Buffer		buf;
	Page		page;

	ScoreahChainRelease(chain);
	if (chain->stop != SCOREAH_CHAIN_MORE)
		return false;
	if (blkno == InvalidBlockNumber)
		return ChainStop(chain, SCOREAH_CHAIN_END, InvalidBlockNumber);

	/*
	 * A chain is never longer than the relation: a damaged link that loops
	 * back would otherwise keep a walk going for ever.  The relation's size
	 * is asked only at 1,024, 2,048, 4,096 ... pages, so ordinary walks pay
	 * nothing; a loop is an error within about twice the relation's pages.
	 */
	chain->steps++;
	if (chain->steps >= 1024 && (chain->steps & (chain->steps - 1)) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (chain->steps > RelationGetNumberOfBlocks(chain->index))
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has a loop in the chain of leaf %u (" UINT64_FORMAT " pages walked, more than the index has)",
							RelationGetRelationName(chain->index), chain->leaf, chain->steps),
					 errhint("Please REINDEX it.")));
	}
	if (chain->nblocks > 0 && blkno >= chain->nblocks)
	{
		/* an insert may have extended the index since its size was taken */
		chain->nblocks = RelationGetNumberOfBlocks(chain->index);
		if (blkno >= chain->nblocks)
			return ChainStop(chain, SCOREAH_CHAIN_PAST_END, blkno);
	}
	if (chain->seen)
	{
		if (bms_is_member((int) blkno, *chain->seen))
			return ChainStop(chain, SCOREAH_CHAIN_CYCLE, blkno);
		*chain->seen = bms_add_member(*chain->seen, (int) blkno);
	}
	if (chain->flags & SCOREAH_CHAIN_VACUUM_DELAY)
		vacuum_delay_point();

	if (BufferIsValid(chain->ahead) && BufferGetBlockNumber(chain->ahead) == blkno)
		buf = chain->ahead;
	else
	{
		if (BufferIsValid(chain->ahead))
			ReleaseBuffer(chain->ahead);
		buf = ChainRead(chain, blkno);
	}
	chain->ahead = InvalidBuffer;
	LockBuffer(buf, chain->lockmode);
	page = BufferGetPage(buf);

	if (!chain->test(page, chain->leaf))
	{
		if (chain->flags & SCOREAH_CHAIN_STRICT)
		{
			/* the walker holds the leaf: nothing may have freed the page */
			ScoreahCheckPage(chain->index, page, blkno, chain->kind);
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("index \"%s\" has a page of leaf %u on the chain of leaf %u at block %u",
							RelationGetRelationName(chain->index),
							ScoreahPageGetOpaque(page)->leaf, chain->leaf, blkno),
					 errhint("Please REINDEX it.")));
		}
		/* freed by VACUUM after the link was read: the walk is over */
		UnlockReleaseBuffer(buf);
		return ChainStop(chain, SCOREAH_CHAIN_FOREIGN, blkno);
	}

	chain->blkno = blkno;
	chain->buf = buf;
	chain->page = page;
	if (chain->groups && !(chain->flags & SCOREAH_CHAIN_CHECK_EACH))
		ScoreahCheckCodeGroups(chain->index, page, blkno, chain->groups);
	chain->next = ScoreahPageGetOpaque(page)->nextblkno;
	if ((chain->flags & SCOREAH_CHAIN_READAHEAD) && chain->next != InvalidBlockNumber &&
		(chain->nblocks == 0 || chain->next < chain->nblocks))
		chain->ahead = ScoreahPinAhead(chain->index, chain->hints, chain->next,
									   chain->groups ? SCOREAH_FIRST_GROUP_OFFSET : 0,
									   chain->groups ? chain->groups->codesOffset : 0);
	return true;
}

/* Release whatever the walk holds */
void
ScoreahChainEnd(ScoreahChain chain)
{
	ScoreahChainRelease(chain);
	if (BufferIsValid(chain->ahead))
		ReleaseBuffer(chain->ahead);
	chain->ahead = InvalidBuffer;
}
