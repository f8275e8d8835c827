/*-------------------------------------------------------------------------
 *
 * page.c
 *	  Pages of a scoreah index: new pages (from the free space map first),
 *	  page initialisation, the tests that tell whether a page still belongs
 *	  where a reader expects it, the metapage and the model's pages.
 *
 * Every page carries its kind and, for code and vector pages, its leaf in
 * the special space.  VACUUM frees the pages of a leaf without live rows
 * and they are reused at once, so a reader that followed a link taken
 * earlier asks these tests and treats a page that fails as freed (src/README,
 * "Page reuse").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
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
					(PageGetSpecialSize(page) == MAXALIGN(sizeof(ScoreahPageOpaqueData)) &&
					 ScoreahPageGetOpaque(page)->page_id == SCOREAH_PAGE_ID &&
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

/* Page tests for chain walks (ScoreahChainData.test) */

/* A code page of the leaf */
bool
ScoreahCodePageOf(Page page, uint32 leaf)
{
	return ScoreahPageIs(page, SCOREAH_PAGE_CODES, leaf);
}

/* A vector page of the leaf's own chain (vectors of inserted rows) */
bool
ScoreahOwnVectorPageOf(Page page, uint32 leaf)
{
	return ScoreahPageIs(page, SCOREAH_PAGE_VECTORS, leaf);
}

/* A page of the build's shared vector pages that still counts the leaf */
bool
ScoreahSharedVectorPageOf(Page page, uint32 leaf)
{
	ScoreahVectorPageHeaderData *vh;

	if (!ScoreahPageIs(page, SCOREAH_PAGE_VECTORS, SCOREAH_SHARED_LEAF))
		return false;
	vh = ScoreahVectorPageHeader(page);
	return vh->refs > 0 && leaf >= vh->firstLeaf && leaf <= vh->lastLeaf;
}

/*
 * The leaves a chain page may belong to: a code page or a leaf's own
 * vector page its leaf (lo = hi), a shared vector page the leaves it
 * counts (*shared).  Returns the page's kind, or 0 for any other page (new,
 * deleted, fixed, not ours).
 */
uint16
ScoreahChainPageLeaves(Page page, uint32 *lo, uint32 *hi, bool *shared)
{
	ScoreahPageOpaque opaque = ScoreahPageGetOpaque(page);

	*lo = 1;
	*hi = 0;
	*shared = false;
	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(ScoreahPageOpaqueData)) ||
		opaque->page_id != SCOREAH_PAGE_ID ||
		(opaque->kind != SCOREAH_PAGE_CODES && opaque->kind != SCOREAH_PAGE_VECTORS))
		return 0;
	if (opaque->kind == SCOREAH_PAGE_VECTORS && opaque->leaf == SCOREAH_SHARED_LEAF)
	{
		*shared = true;
		*lo = ScoreahVectorPageHeader(page)->firstLeaf;
		*hi = ScoreahVectorPageHeader(page)->lastLeaf;
	}
	else
		*lo = *hi = opaque->leaf;
	return opaque->kind;
}

/*
 * Can leaf's vectors be on this page?  Its own vector pages, or shared
 * pages of the build whose leaves include it and are not all freed.  Like
 * ScoreahPageIs, a no means VACUUM freed the page: the row was dead.
 */
bool
ScoreahVectorPageOf(Page page, uint32 leaf)
{
	return ScoreahOwnVectorPageOf(page, leaf) || ScoreahSharedVectorPageOf(page, leaf);
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

/*
 * The groups of a code page as scans, VACUUM and inserts walk them: each
 * has at most 32 rows, no more live rows than rows, and no longer a list
 * of vector pages than the layout reserves (that the groups end before
 * the special space, PostgreSQL's check of every page read from disk
 * says: pd_lower <= pd_upper <= pd_special).  Those loops index fixed
 * arrays by these counts, so a damaged page is an error here rather than
 * reads and writes past them (scoreah_index_check says more).  A few
 * comparisons a group.
 */
void
ScoreahCheckCodeGroups(Relation index, Page page, BlockNumber blkno, ScoreahLayout layout)
{
	int			ngroups = ScoreahPageGetNGroups(page, layout->gsize);

	for (int g = 0; g < ngroups; g++)
	{
		ScoreahCheckCodeGroup(index, ScoreahGroupHeader(PageGetContents(page) + g * layout->gsize),
							  g, blkno, layout);
	}
}

/* The error of a group that fails ScoreahCheckCodeGroup */
void
ScoreahDamagedGroup(Relation index, const ScoreahGroupHeaderData *gh, int g,
					BlockNumber blkno, ScoreahLayout layout)
{
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("index \"%s\" has a damaged group %d at block %u: %u rows (at most %d), %u live, %u vector pages (at most %d)",
					RelationGetRelationName(index), g, blkno, gh->nitems,
					SCOREAH_GROUP_ROWS, gh->nlive, gh->nvblk, layout->maxVblk),
			 errhint("Please REINDEX it.")));
	pg_unreachable();
}

/*
 * The metapage's fields that size what the model cache allocates and what
 * scans, inserts and the planner index by them, checked where a copy is
 * taken for use (cache.c, cost.c, vacuum.c): a damaged metapage is then an
 * error, not reads past arrays.  ScoreahMetaProblem says what the first
 * field out of bounds is (NULL when none is); scoreah_index_check reports
 * it beside its own, more detailed, findings.
 */
char *
ScoreahMetaProblem(Relation index, ScoreahMetaPage meta)
{
	const char *field = NULL;
	const char *bound = "";
	uint64		value = 0;
	uint64		limit = 0;

	/* the first field out of bounds: its name, value and bound */
#define META_MAX(v, name, max) \
	if (field == NULL && (uint64) (v) > (uint64) (max)) \
		field = (name), value = (uint64) (v), limit = (uint64) (max), bound = "at most "
#define META_MIN(v, name, min) \
	if (field == NULL && (uint64) (v) < (uint64) (min)) \
		field = (name), value = (uint64) (v), limit = (uint64) (min), bound = "at least "
#define META_EQ(v, name, want) \
	if (field == NULL && (uint64) (v) != (uint64) (want)) \
		field = (name), value = (uint64) (v), limit = (uint64) (want), bound = ""

	META_MIN(meta->metric, "metric", SCOREAH_METRIC_L2);
	META_MAX(meta->metric, "metric", SCOREAH_METRIC_COSINE);
	META_MAX(meta->format, "column format", SCOREAH_FORMAT_HALFVEC);
	META_MAX(meta->reorderStorage, "reordering storage", SCOREAH_STORAGE_TABLE);
	META_MAX(meta->dimensions, "dimensions", SCOREAH_MAX_DIM);
	META_MAX(meta->nkeys, "key columns", SCOREAH_MAX_KEYS);
	/* the key code indexes the index's columns and values by these */
	META_EQ(meta->nkeys, "key columns", RelationGetNumberOfAttributes(index) - 1);
	for (uint32 k = 0; k < meta->nkeys && k < SCOREAH_MAX_KEYS; k++)
	{
		META_MIN(meta->keyKinds[k], "key kind", SCOREAH_KEY_INT);
		META_MAX(meta->keyKinds[k], "key kind", SCOREAH_KEY_HASH);
	}
	META_MAX(meta->calibration.nprobes, "calibrated leaf counts", SCOREAH_CALIB_PROBES);
	META_MAX(meta->calibration.nreorders, "calibrated re-ranking depths", SCOREAH_CALIB_REORDERS);
	if (meta->flags & SCOREAH_FLAG_TRAINED)
	{
		uint64		dim = meta->dimensions;

		META_MIN(meta->nleaves, "leaves", 1);
		META_MAX(meta->nleaves, "leaves", SCOREAH_MAX_LEAVES);
		META_MIN(dim, "dimensions", 1);
		META_MAX(meta->nblocks, "PQ blocks", SCOREAH_MAX_BLOCKS);
		/* a group must fit a page, in the index's own layout */
		if (field == NULL && meta->nblocks > 0)
		{
			ScoreahLayoutData layout;

			ScoreahComputeLayout(meta, &layout);
			META_MAX(meta->nblocks, (meta->flags & SCOREAH_FLAG_ROW_BIAS) ?
					 "PQ blocks with row biases" : "PQ blocks for a group to fit a page",
					 ScoreahLayoutMaxBlocks(&layout));
		}
		/*
		 * Blocks of dimsPerBlock dimensions, the last one narrower: the
		 * lookup tables read a block's query and codebook dimensions by
		 * these two, and a damaged width read past both.
		 */
		if (meta->nblocks > 0)
		{
			META_MIN(meta->dimsPerBlock, "dimensions per block", 1);
			META_MAX(meta->dimsPerBlock, "dimensions per block", dim);
			META_EQ(meta->nblocks, "PQ blocks",
					(dim + Max(meta->dimsPerBlock, 1) - 1) / Max(meta->dimsPerBlock, 1));
		}
		META_EQ(meta->centroidBytes, "centroid bytes", sizeof(float) * meta->nleaves * dim);
		META_EQ(meta->codebookBytes, "codebook bytes", sizeof(float) * SCOREAH_CENTERS * dim);
		if (meta->spreadBytes != 0)
			META_EQ(meta->spreadBytes, "leaf spread bytes", sizeof(float) * (uint64) meta->nleaves);

		/*
		 * The calibration, when there is one: scoreah.target_recall
		 * interpolates between its points in log leaves and divides by its
		 * k, so a zero or an out-of-order point would choose nonsense.
		 */
		if (meta->calibration.nqueries > 0)
		{
			const ScoreahCalibrationData *cal = &meta->calibration;

			META_MIN(cal->k, "calibration's neighbours per query", 1);
			META_MIN(cal->nprobes, "calibrated leaf counts", 1);
			META_MIN(cal->nreorders, "calibrated re-ranking depths", 1);
			for (int i = 0; i < cal->nprobes && i < SCOREAH_CALIB_PROBES; i++)
			{
				META_MIN(cal->probes[i], "calibrated leaf count", i > 0 ? (uint64) cal->probes[i - 1] + 1 : 1);
				META_MAX(cal->probes[i], "calibrated leaf count", meta->nleaves);
				for (int j = 0; j < cal->nreorders && j < SCOREAH_CALIB_REORDERS; j++)
					META_MAX(cal->recall[i][j], "calibrated recall (x 10,000)", 10000);
			}
			for (int j = 0; j < cal->nreorders && j < SCOREAH_CALIB_REORDERS; j++)
				META_MIN(cal->reorders[j], "calibrated re-ranking depth",
						 j > 0 ? (uint64) cal->reorders[j - 1] + 1 : 1);
		}
	}
#undef META_MAX
#undef META_MIN
#undef META_EQ
	if (field == NULL)
		return NULL;
	return psprintf("%s " UINT64_FORMAT ", expected %s" UINT64_FORMAT, field, value, bound, limit);
}

void
ScoreahValidateMeta(Relation index, ScoreahMetaPage meta)
{
	char	   *problem = ScoreahMetaProblem(index, meta);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has a damaged metapage: %s",
						RelationGetRelationName(index), problem),
				 errhint("Please REINDEX it; scoreah_index_check() lists what is wrong.")));
}

void
ScoreahReadMeta(Relation index, ScoreahMetaPage meta)
{
	Buffer		buf = ScoreahLockMeta(index, BUFFER_LOCK_SHARE);

	memcpy(meta, PageGetContents(BufferGetPage(buf)), sizeof(ScoreahMetaPageData));
	UnlockReleaseBuffer(buf);
}

/*
 * The lock that keeps VACUUM from freeing pages while scoreah_index_check
 * walks the index (src/README, "Locking"): the check shares it, VACUUM
 * takes it exclusively and only if it can at once.  It is a lock on an
 * object of the index's own, not a page lock: the check opens relations
 * and VACUUM takes a leaf's page lock while holding it, and a backend must
 * take no other heavyweight lock while it holds a page lock (lock.c
 * asserts so from PostgreSQL 13).  No role can take it by hand: SQL locks
 * objects only through DDL, and no DDL names this sub-object.  Hot standby
 * refuses such locks and frees no pages under them (replay frees what the
 * primary freed), so a check there goes without it (check.c).
 */
#define SCOREAH_FREEING_SUBID	0x5C0A	/* above any column number, and
										 * no system column's number
										 * either */

void
ScoreahLockFreeing(Relation index, LOCKMODE mode)
{
	LockDatabaseObject(RelationRelationId, RelationGetRelid(index),
					   SCOREAH_FREEING_SUBID, mode);
}

bool
ScoreahConditionalLockFreeing(Relation index, LOCKMODE mode)
{
	return ConditionalLockDatabaseObject(RelationRelationId, RelationGetRelid(index),
										 SCOREAH_FREEING_SUBID, mode);
}

void
ScoreahUnlockFreeing(Relation index, LOCKMODE mode)
{
	UnlockDatabaseObject(RelationRelationId, RelationGetRelid(index),
						 SCOREAH_FREEING_SUBID, mode);
}

/*
 * The metapage's buffer, locked in mode, after checking that it is the
 * metapage of a scoreah index of the on-disk version this code reads.
 */
Buffer
ScoreahLockMeta(Relation index, int mode)
{
	Buffer		buf = ReadBuffer(index, SCOREAH_METAPAGE_BLKNO);
	Page		page;
	ScoreahMetaPage m;

	LockBuffer(buf, mode);
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
	return buf;
}

/*
 * How many pages from meta->blobStart the model takes (centroids,
 * codebooks, leaf spreads); none before the index is trained.
 */
BlockNumber
ScoreahModelPages(ScoreahMetaPage meta)
{
	Size		bytes = (Size) meta->centroidBytes + meta->codebookBytes + meta->spreadBytes;

	if (!(meta->flags & SCOREAH_FLAG_TRAINED))
		return 0;
	return (BlockNumber) ((bytes + SCOREAH_PAGE_CAPACITY - 1) / SCOREAH_PAGE_CAPACITY);
}

/*
 * Read nbytes of the blob stream that starts at block start, skipping the
 * first skip bytes.
 */
void
ScoreahReadBlob(Relation index, BlockNumber start, Size skip, Size nbytes, char *dest)
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
