/*-------------------------------------------------------------------------
 *
 * scoreah.h
 *	  Structs, page layouts and prototypes of the scoreah index access method.
 *
 * scoreah is ScaNN's search pipeline as a PostgreSQL index: a one-level
 * k-means tree partitions the vectors into leaves, every vector's residual
 * (vector minus its leaf centroid) is product-quantized into 4-bit codes
 * with 16-center codebooks per block of dimensions, and a query scores the
 * codes of the leaves it probes through per-query lookup tables, then
 * re-ranks the best candidates exactly from stored float vectors.
 *
 * On-disk layout (all pages carry ScoreahPageOpaqueData as special space):
 *
 *	block 0					metapage (ScoreahMetaPageData)
 *	blocks 1..				"blob" pages: centroids, then codebooks, as a
 *							byte stream over consecutive pages
 *	next blocks				leaf directory (ScoreahLeafData per leaf)
 *	the rest				per leaf, a chain of code pages (groups of 32 rows
 *							in the LUT16 nibble-interleaved layout, with
 *							their heap TIDs and the pages of their vectors);
 *							the build's vectors for re-ranking (fixed-size
 *							records in the rows' order, leaf after leaf, on
 *							pages leaves share); per leaf, a chain of vector
 *							pages for rows inserted later
 *
 * The algorithms (k-means, codebook training, encoding, lookup tables,
 * distance kernels, top-N) live in src/algo and know nothing of pages:
 * see algo/scoreah_algo.h.  src/README says how the files are layered,
 * which locks they take and how pages are reused.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCOREAH_H
#define SCOREAH_H

#include "postgres.h"

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/itup.h"
#include "access/relscan.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/relcache.h"

#include "algo/scoreah_algo.h"

#if PG_VERSION_NUM < 150000
#error "scoreah requires PostgreSQL 15 or later"
#endif

/* Identity and version of the on-disk format */
#define SCOREAH_MAGIC			0x5C0AE4A1
#define SCOREAH_VERSION			7
#define SCOREAH_PAGE_ID			0xFF8A	/* bloom uses FF83, pgvector FF84/FF90 */

#define SCOREAH_METAPAGE_BLKNO	0

/* Page kinds, kept in the special space */
#define SCOREAH_PAGE_META		1
#define SCOREAH_PAGE_BLOB		2
#define SCOREAH_PAGE_DIRECTORY	3
#define SCOREAH_PAGE_CODES		4
#define SCOREAH_PAGE_VECTORS	5
#define SCOREAH_PAGE_DELETED	6

/* Limits */
#define SCOREAH_MAX_DIM			16000
#define SCOREAH_MAX_LEAVES		100000

/* How re-ranking vectors are kept (option reordering_storage) */
#define SCOREAH_STORAGE_FLOAT	0	/* float32 in the index */
#define SCOREAH_STORAGE_HALF	1	/* float16 in the index */
#define SCOREAH_STORAGE_TABLE	2	/* none: read from the table's rows */
#define SCOREAH_STORAGE_DEFAULT (-1)	/* the column's own precision */

/*
 * The type an operator class indexes (support function 2; real[] when an
 * operator class has none).  pgvector's vector and halfvec are read by
 * their documented layout, without its headers: a varlena header, int16
 * dim, int16 unused, then dim floats or IEEE binary16 halves.
 */
#define SCOREAH_FORMAT_ARRAY	0	/* real[] */
#define SCOREAH_FORMAT_VECTOR	1	/* pgvector's vector */
#define SCOREAH_FORMAT_HALFVEC	2	/* pgvector's halfvec */

typedef struct ScoreahPgvectorHeader
{
	int32		vl_len_;		/* varlena header */
	int16		dim;
	int16		unused;			/* always zero */
} ScoreahPgvectorHeader;

#define SCOREAH_PGVECTOR_HDRSZ	sizeof(ScoreahPgvectorHeader)
#define SCOREAH_PGVECTOR_MAX_DIM	16000

/* Scoring inside the probed leaves */
#define SCOREAH_SCORING_AH			0
#define SCOREAH_SCORING_BRUTE_FORCE	1

/* Support function numbers */
#define SCOREAH_METRIC_PROC		1
#define SCOREAH_FORMAT_PROC		2	/* optional */
#define SCOREAH_NPROC			2

/*
 * Strategies: 1, the ordering operator of a vector operator class; for key
 * columns, btree's 1 to 5 (<, <=, =, >=, >).
 */
#define SCOREAH_NSTRATEGIES		5

/* Build phases for pg_stat_progress_create_index */
#define SCOREAH_PHASE_SAMPLING		2
#define SCOREAH_PHASE_TREE			3
#define SCOREAH_PHASE_CODEBOOKS		4
#define SCOREAH_PHASE_ENCODING		5
#define SCOREAH_PHASE_WRITING		6
#define SCOREAH_PHASE_CALIBRATING	7

/* Key columns after the vector, and how their values are kept */
#define SCOREAH_MAX_KEYS		8
#define SCOREAH_KEY_INT			1	/* int2, int4, int8: the value */
#define SCOREAH_KEY_HASH		2	/* text, varchar, uuid: a hash, so
									 * the executor rechecks the row */

/* Metapage flags */
#define SCOREAH_FLAG_TRAINED			0x0001	/* tree and codebooks come
												 * from data */
#define SCOREAH_FLAG_RESIDUAL			0x0002	/* codes quantize x - c_leaf */
#define SCOREAH_FLAG_SPHERICAL			0x0004
#define SCOREAH_FLAG_QUANTIZE_CENTROIDS	0x0008
#define SCOREAH_FLAG_RANDOM_INIT		0x0010
#define SCOREAH_FLAG_ROW_BIAS			0x0020	/* L2 on residuals: groups keep
												 * each row's bias (layout.c) */

/* Options the build chose itself (metapage autoFlags) */
#define SCOREAH_AUTO_LEAVES				0x0001
#define SCOREAH_AUTO_DIMS_PER_BLOCK		0x0002
#define SCOREAH_AUTO_THRESHOLD			0x0004
#define SCOREAH_AUTO_SAMPLE				0x0008
#define SCOREAH_AUTO_QUANTIZE_CENTROIDS	0x0010

/*
 * Option defaults and ranges (WITH (...)).  0 (or -1 for the threshold)
 * asks the build to choose from the data: see build.c, ChooseShape.
 */
#define SCOREAH_AUTO_SAMPLE_ROWS			100000	/* at most, memory allowing */

/*
 * quantize_centroids: off, on, or auto = on from this many dimensions,
 * where routing by int8 centroids took 0.3-0.7 of the float time (256 to
 * 3,072 dimensions; at 100-128 it is no faster: build_shape.c).
 */
#define SCOREAH_QUANTIZE_OFF				0
#define SCOREAH_QUANTIZE_ON					1
#define SCOREAH_QUANTIZE_AUTO				2
#define SCOREAH_QUANTIZE_MIN_DIM			256
#define SCOREAH_DEFAULT_LEAVES_ITERATIONS	12
#define SCOREAH_DEFAULT_MIN_PARTITION		50
#define SCOREAH_DEFAULT_PQ_ITERATIONS		10
/*
 * Norm of a vector the model can take, relative to the sample's mean norm:
 * squared distances in the model's units stay far from FLT_MAX.
 */
#define SCOREAH_MAX_NORM_RATIO				1e15

#define SCOREAH_THRESHOLD_AUTO				(-1.0)
#define SCOREAH_MAX_ITERATIONS				1000
#define SCOREAH_MIN_SAMPLE					1000

/* GUC defaults */
#define SCOREAH_DEFAULT_REORDER			200
#define SCOREAH_MAX_REORDER				1000000

/*
 * Options as parsed from WITH (...).  The first member must be the varlena
 * header (build_reloptions fills the struct in place).
 */
typedef struct ScoreahOptions
{
	int32		vl_len_;
	int			numLeaves;		/* 0 = chosen from the row count */
	int			numLeavesToSearch;	/* 0 = 10% of the leaves */
	int			leavesTrainingSampleSize;	/* 0 = chosen */
	int			leavesTrainingIterations;
	int			minPartitionSize;
	bool		spherical;
	int			quantizeCentroids;	/* SCOREAH_QUANTIZE_* */
	bool		randomInit;
	int			dimensionsPerBlock; /* 0 = chosen from the width */
	double		anisotropicThreshold;	/* -1 = chosen, 0 = off */
	int			trainingSampleSize; /* 0 = chosen */
	int			trainingIterations;
	int			scoring;
	int			reorderingStorage;
	bool		residualQuantization;
} ScoreahOptions;

/*
 * Special space of every page.  page_id sits last, as in bloom and
 * pgvector, so tools can tell index kinds apart.
 */
typedef struct ScoreahPageOpaqueData
{
	BlockNumber nextblkno;		/* next page of the chain, or invalid */
	uint32		leaf;			/* leaf owning a code or vector page, else
								 * SCOREAH_NO_LEAF */
	uint16		kind;			/* SCOREAH_PAGE_* */
	uint16		page_id;		/* SCOREAH_PAGE_ID */
} ScoreahPageOpaqueData;

#define SCOREAH_NO_LEAF		0xFFFFFFFF

typedef ScoreahPageOpaqueData *ScoreahPageOpaque;

#define ScoreahPageGetOpaque(page) \
	((ScoreahPageOpaque) PageGetSpecialPointer(page))

/* Usable bytes of a page between the header and the special space */
#define SCOREAH_PAGE_CAPACITY \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(ScoreahPageOpaqueData)))

/*
 * What the build measured of its own index, for scoreah.target_recall:
 * recall@k of self-queries (sample rows, their exact neighbours among all
 * other rows) when probes[i] leaves are searched and reorders[j]
 * candidates re-ranked, in ten-thousandths (calibrate.c).
 */
#define SCOREAH_CALIB_PROBES	24
#define SCOREAH_CALIB_REORDERS	8

typedef struct ScoreahCalibrationData
{
	uint16		nqueries;		/* 0: not calibrated */
	uint16		k;
	uint16		nprobes;
	uint16		nreorders;
	uint32		probes[SCOREAH_CALIB_PROBES];
	uint32		reorders[SCOREAH_CALIB_REORDERS];
	uint16		recall[SCOREAH_CALIB_PROBES][SCOREAH_CALIB_REORDERS];
} ScoreahCalibrationData;

/*
 * The metapage.  Options are frozen here at build: scans and inserts read
 * them from the metapage, never from reloptions.
 */
typedef struct ScoreahMetaPageData
{
	uint32		magic;
	uint32		version;
	uint64		buildId;		/* random, new for every build: keys the
								 * backend-local model cache */
	uint32		dimensions;		/* 0 until the first row (empty build) */
	uint32		metric;
	uint32		flags;
	uint32		nleaves;
	uint32		nblocks;		/* PQ blocks (ceil(dim / dims_per_block)) */
	uint32		dimsPerBlock;
	uint32		scoring;
	uint32		reorderStorage; /* SCOREAH_STORAGE_* */
	uint32		numLeavesToSearch;	/* default for the GUC, resolved */
	uint32		leavesTrainingSampleSize;
	uint32		leavesTrainingIterations;
	uint32		minPartitionSize;
	uint32		trainingSampleSize;
	uint32		trainingIterations;
	float8		threshold;		/* anisotropic threshold T, NaN = off */
	BlockNumber blobStart;		/* centroids, then codebooks */
	uint32		centroidBytes;
	uint32		codebookBytes;
	BlockNumber directoryStart;
	uint32		directoryPages;
	int64		rowsBuilt;		/* rows indexed by the build */
	float8		builtMeanDistance;	/* mean distance of built rows to their
									 * centroid (staleness reference) */
	uint32		format;			/* SCOREAH_FORMAT_* of the column */
	uint32		autoFlags;		/* SCOREAH_AUTO_*: options the build chose */
	uint32		sampleRows;		/* rows the model was trained on */
	float8		meanNorm;		/* of the sample's vectors, before scaling */
	float8		scale;			/* a power of 2: vectors are multiplied by
								 * it for training, encoding, routing and
								 * lookup tables (exact distances use them
								 * as they are) */
	ScoreahCalibrationData calibration;
	uint32		nkeys;			/* key columns after the vector */
	uint8		keyKinds[SCOREAH_MAX_KEYS]; /* SCOREAH_KEY_* */
	uint32		spreadBytes;	/* the leaves' spreads after the codebooks
								 * (float each), or 0: indexes built before
								 * they were kept route without them */
	float4		spreadWeight;	/* their share in routing (route.c) */
} ScoreahMetaPageData;

typedef ScoreahMetaPageData *ScoreahMetaPage;

/* One entry of the leaf directory */
typedef struct ScoreahLeafData
{
	BlockNumber codeHead;		/* first code page, or invalid */
	BlockNumber codeTail;		/* hint: last code page */
	BlockNumber vecHead;		/* first page of the leaf's own vector chain
								 * (vectors of inserted rows), or invalid */
	BlockNumber vecTail;		/* hint: last page of it */
	uint32		nbuilt;			/* rows written by the build */
	BlockNumber reuseBlk;		/* hint: first code page with dead slots
								 * (set by VACUUM, cleared by inserts that
								 * find none left) */
	/*
	 * What values of the first key column the leaf's rows hold (NULLs
	 * aside), so that a scan filtering on it skips leaves that have none:
	 * a 128-bit Bloom filter and the range.  Grown by inserts, never
	 * shrunk (a bound, not a count).  keyMin > keyMax: no value.
	 */
	uint64		keyBloom[2];
	int64		keyMin;
	int64		keyMax;
} ScoreahLeafData;

typedef ScoreahLeafData *ScoreahLeaf;

/* Whether a leaf has any page: a code chain or a vector chain of its own */
static inline bool
ScoreahLeafHasChains(const ScoreahLeafData *entry)
{
	return entry->codeHead != InvalidBlockNumber || entry->vecHead != InvalidBlockNumber;
}

/*
 * Two directory entries follow the leaves: rows without a place in the
 * tree, kept so that a scan can return every row, after all the others
 * (as a sequential scan sorts them): rows whose vector is a zero vector
 * under cosine (their distances are NaN), then rows whose vector is NULL.
 * Their groups hold TIDs and keys only (ScoreahComputeExtraLayout).
 */
#define SCOREAH_EXTRA_LEAVES	2
#define ScoreahNanLeaf(meta)	((int) (meta)->nleaves)
#define ScoreahNullLeaf(meta)	((int) (meta)->nleaves + 1)
#define ScoreahDirEntries(meta) ((int) (meta)->nleaves + SCOREAH_EXTRA_LEAVES)

#define SCOREAH_LEAVES_PER_PAGE \
	((int) (SCOREAH_PAGE_CAPACITY / sizeof(ScoreahLeafData)))

/*
 * Vector pages start with this header, then fixed-size vector records (a
 * vector longer than a page fills pages of its own, linked by nextblkno).
 *
 * The build writes the vectors of all leaves, leaf after leaf, into one run
 * of shared pages (opaque.leaf = SCOREAH_SHARED_LEAF): a page may hold the
 * last vectors of one leaf and the first of the next, so leaves leave no
 * half-empty vector page behind.  refs counts the leaves with vectors on
 * the page that VACUUM has not freed; the last one frees the page.  Pages
 * that inserts add to a leaf's own vector chain (the directory's vecHead)
 * belong to that leaf alone and have refs = 0.
 */
typedef struct ScoreahVectorPageHeaderData
{
	uint32		firstLeaf;		/* shared pages: leaves with vectors here */
	uint32		lastLeaf;
	uint32		refs;			/* shared pages: those not freed yet */
	uint32		unused;
} ScoreahVectorPageHeaderData;

#define SCOREAH_SHARED_LEAF		0xFFFFFFFE

#define ScoreahVectorPageHeader(page) \
	((ScoreahVectorPageHeaderData *) PageGetContents(page))

/* Where a vector page's records start, and how many bytes they may take */
#define SCOREAH_VECTORS_OFFSET \
	(MAXALIGN(SizeOfPageHeaderData) + MAXALIGN(sizeof(ScoreahVectorPageHeaderData)))
#define SCOREAH_VECTOR_CAPACITY \
	(SCOREAH_PAGE_CAPACITY - MAXALIGN(sizeof(ScoreahVectorPageHeaderData)))

/*
 * A group of up to 32 rows on a code page:
 *	ScoreahGroupHeaderData with its list of vector pages, then 32 heap TIDs,
 *	then (SCOREAH_FLAG_ROW_BIAS) 32 float row biases and their minimum,
 *	then nblocks x 16 code bytes in the LUT16 layout (byte m of block b
 *	holds the code of row m in its low nibble and of row m + 16 in its high
 *	nibble).  A dead row (removed by VACUUM) has an invalid TID.
 *
 * A row bias is |r~|^2 + 2 <c, r~> for the decoded residual r~ of leaf
 * centroid c (scoreah_pq_row_bias): the part of the row's L2 distance that
 * does not depend on the query, so that one table a query scores every
 * leaf.  The minimum is at most the bias of every live row (inserts lower
 * it; rows that die leave it), so a scan prunes a group's rows by its
 * integer sums with the minimum before it adds their own biases.
 *
 * Rows do not store where their vectors are: a group's vectors are
 * consecutive records of its leaf's vector chain, so the group keeps the
 * pages they lie on (vblk[]) and the slot of its first row's vector on
 * vblk[0] (vslot).  With V vectors to a page, row j's vector is slot
 * (vslot + j) % V of page vblk[(vslot + j) / V]; a vector longer than a
 * page starts a page of its own, and vblk[j] is row j's first page.  This
 * saves 6 bytes a row against an explicit location, which lets 8 groups
 * share a page where 6 did.
 */
typedef struct ScoreahGroupHeaderData
{
	uint16		nitems;			/* rows used (1..32) */
	uint16		nlive;			/* rows whose TID is valid */
	uint32		inserted;		/* bit j: row j came from an insert after
								 * the build */
	uint16		vslot;			/* slot of row 0's vector on vblk[0] */
	uint16		nvblk;			/* entries of vblk in use */
	BlockNumber vblk[FLEXIBLE_ARRAY_MEMBER];	/* layout.maxVblk entries */
} ScoreahGroupHeaderData;

#define SCOREAH_GROUP_MAX_VBLK	SCOREAH_GROUP_ROWS

/*
 * Sizes and offsets of groups, fixed for an index by its number of PQ
 * blocks and its stored vector size (ScoreahComputeLayout).
 */
typedef struct ScoreahLayoutData
{
	Size		vbytes;			/* bytes of a stored vector (0: table) */
	int			vecsPerPage;	/* V; 0 when a vector spans pages or none
								 * are stored */
	uint64		vecsRecip;		/* ceil(2^32 / V): p / V as a multiply */
	int			maxVblk;		/* vblk entries a group reserves */
	Size		tidsOffset;
	Size		biasOffset;		/* row biases, or 0: none */
	Size		codesOffset;
	Size		keysOffset;
	int			nblocks;		/* PQ blocks (0: no codes) */
	int			nkeys;			/* key columns */
	Size		gsize;			/* bytes of a group */
	int			groupsPerPage;
} ScoreahLayoutData;

typedef ScoreahLayoutData *ScoreahLayout;

/*
 * Key columns (the index's columns after the vector): each row of a group
 * keeps one 64-bit value per key column (the integer itself, or a hash of
 * a text or uuid), then a bitmap of the rows whose key is NULL per column.
 */

/* A scan's conditions on one key column (keys.c) */
typedef struct ScoreahKeyFilter
{
	int			key;			/* key column (0: the index's second column) */
	int			nvals;			/* allowed values (sorted), or -1: any */
	int64	   *vals;
	int64		lo;				/* and the range they must lie in */
	int64		hi;
} ScoreahKeyFilter;

#define ScoreahKeysBytes(nkeys) \
	((Size) (nkeys) * SCOREAH_GROUP_ROWS * sizeof(int64) + MAXALIGN((Size) (nkeys) * sizeof(uint32)))

/* The row biases of a group and their minimum (the last float) */
#define SCOREAH_BIAS_BYTES		MAXALIGN((SCOREAH_GROUP_ROWS + 1) * sizeof(float))

/*
 * PQ blocks a group can hold even with the longest vector page list and no
 * row biases (the build keeps biases only where its own layout has room:
 * ScoreahRowBiasFits, ScoreahLayoutMaxBlocks)
 */
#define ScoreahMaxBlocks(nkeys) \
	((int) ((SCOREAH_PAGE_CAPACITY - \
			 MAXALIGN(offsetof(ScoreahGroupHeaderData, vblk) + SCOREAH_GROUP_MAX_VBLK * sizeof(BlockNumber)) - \
			 MAXALIGN(SCOREAH_GROUP_ROWS * sizeof(ItemPointerData)) - \
			 ScoreahKeysBytes(nkeys)) / 16))
#define SCOREAH_MAX_BLOCKS		ScoreahMaxBlocks(0)

#define ScoreahGroupHeader(g)	((ScoreahGroupHeaderData *) (g))
#define ScoreahGroupTids(l, g)	((ItemPointer) ((char *) (g) + (l)->tidsOffset))
#define ScoreahGroupCodes(l, g)	((uint8 *) ((char *) (g) + (l)->codesOffset))
#define ScoreahGroupBias(l, g)	((float *) ((char *) (g) + (l)->biasOffset))
#define ScoreahGroupBiasMin(l, g)	(ScoreahGroupBias(l, g)[SCOREAH_GROUP_ROWS])

/*
 * How a scan gets code groups into the CPU cache before it reads them.
 * Code pages lie anywhere in shared memory, and the kernel's loads of a
 * group's codes waited on memory (the hardware prefetcher finds each new
 * page's stream late).  Within a leaf, the scan prefetches the next
 * group's header and TIDs (codesOffset bytes) before scoring a group and
 * the LUT16 kernel streams the next group's codes, a line for each line it
 * reads (ScoreahLut16Kernel's next); the chain's page pinned ahead gets
 * its header and first group's TIDs, its codes streamed the same way.
 * Where nothing streams into it, the next leaf's first page pinned ahead,
 * the whole first group is prefetched at once, at most
 * SCOREAH_GROUP_PREFETCH_MAX bytes: a wide index's group (6 kB at 784
 * dimensions) read 7% slower prefetched whole.  Measured in the server
 * on Zen 4, against no such prefetches: GloVe-100 queries 13-16% less
 * time, MNIST-784 15%.
 */
#define SCOREAH_GROUP_PREFETCH_MAX	2048
#define ScoreahGroupPrefetchBytes(l) \
	Min((l)->codesOffset + (Size) (l)->nblocks * 16, (Size) SCOREAH_GROUP_PREFETCH_MAX)
/* Where a code page's first group starts */
#define SCOREAH_FIRST_GROUP_OFFSET	MAXALIGN(SizeOfPageHeaderData)

/* Start pulling the lines of bytes [from, from + len) of page p into the CPU cache */
static inline void
ScoreahPrefetchBytes(const char *p, Size from, Size len)
{
	for (Size off = from & ~(Size) 63; off < Min(from + len, (Size) BLCKSZ); off += 64)
		__builtin_prefetch(p + off);
}

#define ScoreahGroupIsInserted(gh, j)	(((gh)->inserted & ((uint32) 1 << (j))) != 0)
#define ScoreahGroupKeys(l, g, k) \
	((int64 *) ((char *) (g) + (l)->keysOffset + (Size) (k) * SCOREAH_GROUP_ROWS * sizeof(int64)))
#define ScoreahGroupKeyNulls(l, g) \
	((uint32 *) ((char *) (g) + (l)->keysOffset + (Size) (l)->nkeys * SCOREAH_GROUP_ROWS * sizeof(int64)))

/* Where vector slot s of a vector page starts */
#define ScoreahVectorSlotOffset(l, s) \
	((uint16) (SCOREAH_VECTORS_OFFSET + (Size) (s) * (l)->vbytes))

/* Number of groups on a code page, from pd_lower */
#define ScoreahPageGetNGroups(page, gsize) \
	((int) ((((PageHeader) (page))->pd_lower - MAXALIGN(SizeOfPageHeaderData)) / (gsize)))

/*
 * A hint of the shared buffer a block was last found in: ReadRecentBuffer
 * pins it if it still holds the block, which skips the buffer mapping
 * lookup (a hash probe into a table the size of shared_buffers that
 * misses the CPU caches: about a tenth of a scan's time at 100
 * dimensions).  A direct-mapped table of a fixed size per index: bounded
 * whatever the index's size, and exact while the index has fewer blocks.
 * At 32,768 slots a 656 MB index (SIFT 1.16M rows, 84k blocks) shared each
 * slot among three blocks; one per block made its queries 5-8% faster
 * server-side, for 1 MB a backend keeps per index that large.
 */
typedef struct ScoreahBufferHint
{
	BlockNumber blkno;
	Buffer		buf;
} ScoreahBufferHint;

#define SCOREAH_MIN_HINTS		256
#define SCOREAH_MAX_HINTS		131072	/* 1 MB */

/*
 * What a backend keeps of an index between statements: its metapage, its
 * group layout, its trained model and its buffer hints (cache.c).  None of
 * the first three changes after a build, so an entry is valid for as long
 * as the metapage carries its buildId (a REINDEX, TRUNCATE or the first
 * row of an index built empty writes a new one).
 *
 * Lifetime, enforced by cache.c:
 *	- ScoreahCacheAcquire() returns the entry of the index's current build,
 *	  loading it when needed, and pins it; the caller releases it with
 *	  ScoreahCacheRelease().  A scan holds its pin from its first tuple to
 *	  its end (or rescan), an insert or scoreah_index_info for their call.
 *	- A pinned entry is never freed.  When a newer build replaces it, or a
 *	  relcache invalidation names its index (DROP, REINDEX, ALTER INDEX,
 *	  VACUUM's statistics, an invalidation reset), it is unlinked, so that
 *	  nobody finds it any more, and freed by its last release.  Unpinned
 *	  entries are freed at once.
 *	- Each entry has a memory context of its own ("scoreah model", named
 *	  after the index in pg_backend_memory_contexts); when the entries
 *	  together take more than scoreah.model_cache_size, unpinned ones are
 *	  evicted, least recently used first.
 *	- Pins do not outlive their transaction: an error ends scans without
 *	  amendscan, so transaction end drops every pin left and frees what it
 *	  kept alive.
 *	- A pinned entry of an older build never reads pages of a newer one:
 *	  REINDEX and TRUNCATE wait for running scans (AccessExclusiveLock), and
 *	  the only build change that can happen under a scan, the first row of
 *	  an index built empty, leaves the dimensionless model's scans nothing
 *	  to read but the extra leaves (scan.c, PrepareQuery; src/README).
 */
typedef struct ScoreahCacheData
{
	Oid			indexOid;
	MemoryContext context;		/* holds this struct and everything below */
	int			pins;
	bool		linked;			/* still the hash's entry for indexOid */
	uint64		lastUse;		/* for LRU eviction */
	Size		bytes;			/* what context holds */
	ScoreahMetaPageData meta;
	ScoreahLayoutData layout;	/* group sizes (from meta) */
	ScoreahLayoutData extraLayout;	/* ... of the extra leaves */
	ScoreahModelData model;		/* centroids, codebooks (scoreah_algo.h) */
	int			nhints;			/* a power of 2 */
	ScoreahBufferHint *hints;
} ScoreahCacheData;

typedef ScoreahCacheData *ScoreahCache;

/*
 * A walk along a chain of pages linked by nextblkno: a leaf's code pages,
 * a leaf's own vector pages, the pages of a vector longer than a page.
 * Every chain walk goes through ScoreahChainNext (chain.c), which locks
 * one page at a time and checks that each page still belongs where the
 * walk expects it: VACUUM frees the pages of a leaf without live rows and
 * they may be reused at once, so a page of another kind or leaf means the
 * chain was freed under a reader (end of walk), or, for walks that hold
 * the leaf's lock, corruption (error).
 */
typedef bool (*ScoreahPageTest) (Page page, uint32 leaf);

typedef enum ScoreahChainStop
{
	SCOREAH_CHAIN_MORE,			/* still walking */
	SCOREAH_CHAIN_END,			/* the last page was reached */
	SCOREAH_CHAIN_FOREIGN,		/* a page failed the test */
	SCOREAH_CHAIN_PAST_END,		/* a link beyond the relation (checks) */
	SCOREAH_CHAIN_CYCLE			/* a page seen before (checks) */
} ScoreahChainStop;

/* flags of a walk */
#define SCOREAH_CHAIN_STRICT		0x01	/* a foreign page is corruption */
#define SCOREAH_CHAIN_READAHEAD		0x02	/* pin and prefetch the next page */
#define SCOREAH_CHAIN_VACUUM_DELAY	0x04	/* vacuum_delay_point between pages */
#define SCOREAH_CHAIN_CHECK_EACH	0x08	/* the walker checks each group
											 * itself before reading it
											 * (ScoreahCheckCodeGroup) */

typedef struct ScoreahChainData
{
	Relation	index;
	uint16		kind;			/* SCOREAH_PAGE_CODES or _VECTORS */
	uint32		leaf;
	ScoreahPageTest test;		/* does a page belong to the walk? */
	int			lockmode;		/* BUFFER_LOCK_SHARE or _EXCLUSIVE */
	int			flags;
	BufferAccessStrategy strategy;	/* VACUUM's ring, or NULL */
	ScoreahCache hints;			/* recent-buffer hints, or NULL */
	ScoreahLayout groups;		/* code pages: check their groups against
								 * this layout (ScoreahCheckCodeGroups, or
								 * the walker with CHECK_EACH) and prefetch
								 * a page pinned ahead's first group; or
								 * NULL */
	struct Bitmapset **seen;	/* checks: blocks met on any chain */
	BlockNumber nblocks;		/* checks: blocks of the relation, or 0 */
	/* the current page, locked */
	BlockNumber blkno;
	Buffer		buf;
	Page		page;
	ScoreahChainStop stop;
	BlockNumber stopBlkno;		/* the block that ended the walk */
	BlockNumber next;			/* the next link */
	Buffer		ahead;			/* the next page, pinned ahead */
	uint64		steps;			/* pages visited */
} ScoreahChainData;

typedef ScoreahChainData *ScoreahChain;

/*
 * State of CREATE INDEX, shared by build.c (sampling, training, encoding),
 * build_parallel.c (parallel encoding) and build_write.c (pages).
 */
/*
 * Calibration during a build (calibrate.c): self-queries drawn from the
 * sample and, per query, its k nearest rows seen so far by the encoding
 * pass (a max-heap on distance).
 */
typedef struct ScoreahCalibNeighbor
{
	double		dist;			/* exact, in the model's units */
	uint64		id;				/* ScoreahTidToId of the row */
	uint32		leaf;
} ScoreahCalibNeighbor;

typedef struct ScoreahCalibBuildData
{
	int			nqueries;
	int			k;
	int			dim;
	float	   *queries;		/* nqueries x dim, in the model's units */
	float	   *queryNorms;		/* their squared norms (float) */
	uint64	   *queryIds;		/* their own rows, left out of their lists */
	ScoreahCalibNeighbor *nn;	/* nqueries x k */
	int		   *nnCount;
	float	   *dots;			/* scratch: float dot products of up to
								 * SCOREAH_ENCODE_BATCH rows */
} ScoreahCalibBuildData;

typedef ScoreahCalibBuildData *ScoreahCalib;

/*
 * Rows the encoding pass collects before it searches their leaves: a
 * multiple of the six rows scoreah_nearest_l2_rows takes at a time.
 */
#define SCOREAH_ENCODE_BATCH	48

typedef struct ScoreahBuildState
{
	Relation	heap;
	Relation	index;
	IndexInfo  *indexInfo;
	ScoreahOptions *opts;
	int			metric;
	int			format;			/* SCOREAH_FORMAT_* of the column */
	int			dim;			/* from the first row */
	int			nkeys;			/* key columns */
	uint8		keyKinds[SCOREAH_MAX_KEYS];
	int			vecCol;			/* the vector's column (0-based) */
	MemoryContext tmpCtx;

	/* sampling */
	bool		sampleAuto;		/* an option left to the build: the target
								 * is chosen from the dimension at the first
								 * row */
	int			sampleTarget;	/* rows the sample keeps */
	int			sampleGiven;	/* the larger sample size option, or 0 */
	int			sampleAutoRows; /* the chosen size, for the option left 0 */
	int			nsamples;
	int			sampleCapacity;
	float	   *samples;
	uint64	   *sampleIds;		/* the sampled rows' TIDs (ScoreahTidToId) */
	int64		nrows;			/* indexable rows seen */
	ScoreahRandom rng;
	Size		memLimit;

	/* model */
	ScoreahModelData model;
	double		threshold;		/* in scaled units; NaN = off */
	double		scale;			/* ScoreahMetaPageData.scale */
	double		meanNorm;
	uint32		autoFlags;
	int			ntree;			/* sample rows the tree trains on */
	int			npq;			/* ... and the codebooks */
	struct ScoreahCalibBuildData *calib;	/* NULL: no calibration */

	/* encoding: rows sorted by leaf */
	struct Tuplesortstate *sort;
	TupleDesc	sortDesc;
	TupleTableSlot *slot;
	int64		nencoded;
	int64		nextra;			/* rows of the extra leaves */
	double		sumDistance;	/* rows' distances to their centroids,
								 * summed by the writer in sort order */
	/* rows waiting for their leaves, searched together (build.c) */
	int			npending;
	float	   *pendingUnits;	/* SCOREAH_ENCODE_BATCH x dim */
	bytea	   *pendingRows[SCOREAH_ENCODE_BATCH];	/* sort payloads */
	MemoryContext pendingCtx;
	/* how vectors are stored (format, storage, dimensions), for payloads */
	ScoreahMetaPageData storeMeta;
	Size		storeBytes;		/* a stored vector's bytes (0: table) */

	/* phase timing, logged at DEBUG1 */
	int			phase;
	instr_time	phaseStart;

	/* parallel encoding */
	bool		reportProgress;
	struct ScoreahShared *shared;
	struct ParallelContext *pcxt;
	Snapshot	snapshot;
} ScoreahBuildState;

/*
 * Scan state.  Everything a scan reads of the settings (GUCs, work_mem,
 * the kernels) is copied here when it starts, so that a SET between two
 * FETCHes of a cursor changes nothing in a running scan.
 */
/*
 * The settings a scan runs with, as they were when it began (the
 * statement's start, a cursor's DECLARE): its rescans (a LATERAL join's,
 * a nested loop's) keep them whatever a SET in between says.
 */
typedef struct ScoreahScanSettingsData
{
	int			numLeavesToSearch;	/* scoreah.num_leaves_to_search */
	int			reorderingNumNeighbors; /* scoreah.reordering_num_neighbors */
	double		targetRecall;	/* scoreah.target_recall */
	bool		floatLut;		/* scoreah.float_lut_scoring */
	bool		refillSkipping; /* scoreah.refill_skipping */
	int			scanOrder;		/* scoreah.scan_order */
	int			workMem;		/* work_mem, kB */
} ScoreahScanSettingsData;

/* What scoring a leaf counted, added again when a pass skips it */
typedef struct ScoreahLeafCountsData
{
	int64		rows;			/* rowsScored */
	int64		seen;			/* keyRowsSeen */
	int64		passed;			/* keyRowsPassed */
} ScoreahLeafCountsData;

typedef struct ScoreahScanOpaqueData
{
	ScoreahCache cache;			/* pinned from the first tuple to the end */
	MemoryContext scanCtx;		/* per rescan */
	ScoreahScanSettingsData settings;	/* from scoreahbeginscan, kept by
										 * rescans */
	bool		started;
	bool		done;
	bool		nullQuery;		/* return every row, in no order */
	/* settings, fixed at the start */
	int			nprobe;			/* leaves per round */
	int			reorder;		/* reordering_num_neighbors */
	int			maxBatch;		/* work_mem bound on a batch */
	bool		floatLut;		/* scoreah.float_lut_scoring */
	ScoreahLut16Kernel lut16;
	ScoreahLut16MinKernel lut16MinOf;	/* its least of masked sums */
	const ScoreahExactKernels *exact;
	/* conditions on key columns, checked in the index */
	ScoreahKeyFilter filters[SCOREAH_MAX_KEYS];
	int			nfilters;
	bool		keyRecheck;		/* hashed keys: the executor rechecks */
	int64		keyRowsSeen;	/* rows of the searched leaves ... */
	int64		keyRowsPassed;	/* ... and those the filters kept */
	/* the query */
	float	   *query;			/* as given (cosine: normalized) */
	float	   *queryRaw;		/* as given, for exact distances */
	double		queryScale;		/* inner product: query / queryRaw */
	Datum		queryDatum;		/* as given, detoasted (pgvector's types) */
	FmgrInfo   *distFunc;		/* the ORDER BY operator's function */
	Oid			distColl;
	/* leaves */
	int			nleaves;
	int		   *leafOrder;		/* leaves, nearest first (the first nordered) */
	float	   *leafScores;		/* routing score of every leaf */
	int			nordered;
	int			searched;		/* leaves (positions of leafOrder) scored */
	int			nearWant;		/* leaves the nearest-leaf rule wants */
	int			nearAt;			/* searched + 1 when nearest was found */
	float		nearest;		/* smallest centroid distance of the leaves
								 * not searched, in routing units */
	int			nearHolds;		/* rows the rule held back (DEBUG2) */
	/* WantLeavesAt's last answer, and what it was for */
	bool		wantKnown;
	int64		wantRows;
	int64		wantSeen;
	int64		wantPassed;
	int			wantLeaves;
	ScoreahCandidate floor;		/* the leaf being scored: keys up to this
								 * one were batched already */
	bool		haveFloor;
	/* batches */
	int			batchSize;		/* candidates per batch */
	ScoreahCandidate *batch;	/* current batch (the null query's rows) */
	int			nbatch;
	int			batchPos;
	/*
	 * The candidates of the searched leaves not batched yet, by key: the
	 * first batch's runners-up, then each leaf scored once (new leaves
	 * merged in), a few batches' worth up to work_mem; when more were
	 * left out (cut), the leaves are scored again past the last key
	 * served.
	 */
	bool		haveStore;
	bool		exactTail;		/* a small index gone deep: all of it in the
								 * store, re-ranked at once */
	ScoreahCandidate *store;
	int			nstore;
	int			storePos;
	int			storeSorted;	/* store[storePos..storeSorted-1] in order,
								 * before the rest (SortFront); the first
								 * batch sorts none ... */
	ScoreahCandidate storeMin;	/* ... and notes its smallest key */
	bool		cut;
	ScoreahCandidate cutKey;	/* the best key left out */
	ScoreahCandidate served;	/* the last key served */
	bool		haveServed;

	/*
	 * For each leaf, once a store pass has scored it (-infinity before): a
	 * lower bound on the scores of its live rows that pass the key
	 * conditions and are neither in the store nor served, and what its
	 * scoring counted; a pass that scores the leaves again skips those
	 * whose bound is past its top-N's threshold.
	 */
	double	   *leafLeast;
	ScoreahLeafCountsData *leafCounts;
	int64		leavesSkipped;
	/* output: re-ranked rows wait here until no unseen row can precede */
	bool		strict;			/* scoreah.scan_order = strict */
	ScoreahHeap pending;
	/* the heap pages of the nearest pending rows on their way (scan.c) */
	int			heapWindow;		/* rows ahead: effective_io_concurrency */
	int			heapAhead;		/* pending rows prefetched, about */
	bool		heapPrefetched; /* heapLast is set */
	ScoreahCandidate heapLast;	/* the farthest row prefetched */
	ScoreahFit	fit;			/* exact distances on approximate scores,
								 * over every re-ranked row */
	double		fitWorstMiss;	/* the most negative residual of a later
								 * batch's row on the line before it, of
								 * those past normal residuals' reach (0
								 * until one is) */
	int64		laterRows;		/* rows of later batches on a line */
	int			waitBatches;	/* batches since a row was last returned */
	ScoreahCandidate last;		/* the last row returned */
	int64		emitted;
	int64		depthAhead;		/* rows the leaves were last widened for */
	ScoreahHeap late;			/* strict: rows found after a farther row
								 * had been returned */
	int64		heldBack;		/* rows found late: pushed to `late' */
	int64		dropped;		/* late rows returned at the end */
	/* rows in no order: a null query's, and the extra leaves' at the end */
	bool		tail;			/* past every row with a distance */
	int			seqLeaf;
	BlockNumber seqBlk;
	ScoreahCandidate *seqRows;	/* the rows of a code page */
	int			nseq;
	int			seqPos;
	/* reordering_storage = table: heap fetches for exact distances */
	IndexFetchTableData *fetch;
	TupleTableSlot *slot;
	AttrNumber	heapAttno;
	MemoryContext rowCtx;		/* a row's value, reset for each */
	/* scratch */
	MemoryContext batchCtx;		/* reset for every batch */
	ScoreahLutData lut;
	char	   *storedBuf;		/* a stored vector read off its pages */
	char	   *datumBuf;		/* a vector datum of halves made floats */
	ScoreahPgvectorHeader storedHeader; /* of stored datums: checked
										 * before pgvector reads one */
	int64		rowsScored;
	int			nbatches;
} ScoreahScanOpaqueData;

typedef ScoreahScanOpaqueData *ScoreahScanOpaque;

/* The group layout of a leaf of a cached index */
#define ScoreahCacheLeafLayout(cache, leaf) \
	((leaf) >= (int) (cache)->meta.nleaves ? &(cache)->extraLayout : &(cache)->layout)

/* Heap TIDs as candidate ids: the packing keeps ItemPointerCompare's order */
static inline uint64
ScoreahTidToId(ItemPointer tid)
{
	return ((uint64) ItemPointerGetBlockNumberNoCheck(tid) << 16) |
		ItemPointerGetOffsetNumberNoCheck(tid);
}

static inline void
ScoreahIdToTid(uint64 id, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (id >> 16), (OffsetNumber) (id & 0xFFFF));
}

/* GUCs (options.c) */
extern int	scoreah_num_leaves_to_search;
extern int	scoreah_reordering_num_neighbors;
extern double scoreah_target_recall;
extern int	scoreah_scan_order;

#define SCOREAH_ORDER_STRICT	0
#define SCOREAH_ORDER_RELAXED	1
extern bool scoreah_float_lut_scoring;
extern bool scoreah_refill_skipping;
extern bool scoreah_force_scalar_kernels;
extern bool scoreah_avx512_kernels;
extern int	scoreah_model_cache_size;

/* scoreah.c: the handler */
extern void _PG_init(void);

/* options.c: WITH (...) and GUCs */
extern void ScoreahInitOptions(void);
extern void ScoreahInitGucs(void);
extern bytea *scoreahoptions(Datum reloptions, bool validate);
extern void ScoreahCheckOptionValues(const ScoreahOptions *opts);
extern void ScoreahCheckIndexOptions(Relation index, const ScoreahOptions *opts);
extern void ScoreahCheckBlocksFit(int dpb, int dim, int nkeys);
extern void ScoreahInitAlterCheck(void);
extern ScoreahOptions *ScoreahGetOptions(Relation index);

/* validate.c: operator classes */
extern bool scoreahvalidate(Oid opclassoid);
extern int	ScoreahVectorColumn(Relation index);
extern int	ScoreahKeyColumn(Relation index, int k);
extern int	ScoreahGetMetric(Relation index);
extern int	ScoreahGetFormat(Relation index);
extern void ScoreahCheckColumnType(Relation index, int format);

/* cost.c */
extern void scoreahcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
								Cost *indexStartupCost, Cost *indexTotalCost,
								Selectivity *indexSelectivity, double *indexCorrelation,
								double *indexPages);

/* page.c: pages, the metapage, the model's pages */
extern Buffer ScoreahNewBuffer(Relation index, ForkNumber forkNum);
extern void ScoreahInitPage(Page page, uint16 kind, uint32 leaf);
extern bool ScoreahPageIs(Page page, uint16 kind, uint32 leaf);
extern bool ScoreahCodePageOf(Page page, uint32 leaf);
extern bool ScoreahVectorPageOf(Page page, uint32 leaf);
extern bool ScoreahOwnVectorPageOf(Page page, uint32 leaf);
extern bool ScoreahSharedVectorPageOf(Page page, uint32 leaf);
extern uint16 ScoreahChainPageLeaves(Page page, uint32 *lo, uint32 *hi, bool *shared);
extern void ScoreahCheckPage(Relation index, Page page, BlockNumber blkno, uint16 kind);
extern void ScoreahCheckCodeGroups(Relation index, Page page, BlockNumber blkno,
								   ScoreahLayout layout);
extern void ScoreahDamagedGroup(Relation index, const ScoreahGroupHeaderData *gh, int g,
								BlockNumber blkno, ScoreahLayout layout) pg_attribute_noreturn();

/*
 * One group of ScoreahCheckCodeGroups, for a walker that reads the groups
 * of a page one at a time (SCOREAH_CHAIN_CHECK_EACH): a scan checks each
 * group as it reaches it, once its lines have been prefetched, instead of
 * reading every group's header when the page is locked (3.6% of a GloVe
 * head query's time waited on those headers).
 */
static inline void
ScoreahCheckCodeGroup(Relation index, const ScoreahGroupHeaderData *gh, int g,
					  BlockNumber blkno, ScoreahLayout layout)
{
	if (unlikely(gh->nitems > SCOREAH_GROUP_ROWS || gh->nlive > gh->nitems ||
				 gh->nvblk > layout->maxVblk))
		ScoreahDamagedGroup(index, gh, g, blkno, layout);
}
extern char *ScoreahMetaProblem(Relation index, ScoreahMetaPage meta);
extern void ScoreahValidateMeta(Relation index, ScoreahMetaPage meta);
extern void ScoreahReadMeta(Relation index, ScoreahMetaPage meta);
extern Buffer ScoreahLockMeta(Relation index, int mode);
extern void ScoreahLockFreeing(Relation index, LOCKMODE mode);
extern bool ScoreahConditionalLockFreeing(Relation index, LOCKMODE mode);
extern void ScoreahUnlockFreeing(Relation index, LOCKMODE mode);
extern BlockNumber ScoreahModelPages(ScoreahMetaPage meta);
extern void ScoreahReadBlob(Relation index, BlockNumber start, Size skip, Size nbytes,
							char *dest);

/* chain.c: the leaf directory and chain walks */
extern void ScoreahReadLeaf(Relation index, ScoreahMetaPage meta, int leaf, ScoreahLeaf out);
extern void ScoreahReadLeafAndLayout(Relation index, ScoreahMetaPage meta, int leaf,
									 ScoreahLeaf entry, ScoreahLayout layout);
/* at most this many leaves a call */
#define SCOREAH_READ_LEAVES_MAX		64
extern void ScoreahReadLeavesRecent(Relation index, ScoreahCache cache, const int *leaves,
									int n, ScoreahLeaf out);
typedef bool (*ScoreahLeafEdit) (ScoreahLeaf entry, const void *arg);
extern void ScoreahEditLeaf(Relation index, ScoreahMetaPage meta, int leaf,
							ScoreahLeafEdit edit, const void *arg);
extern void ScoreahChainBegin(ScoreahChain chain, Relation index, BlockNumber head,
							  uint16 kind, uint32 leaf, int lockmode, int flags);
extern bool ScoreahChainNext(ScoreahChain chain);
extern void ScoreahChainRelease(ScoreahChain chain);
extern Buffer ScoreahChainTake(ScoreahChain chain);
extern void ScoreahChainEnd(ScoreahChain chain);

/* cache.c: the backend's model cache and buffer hints */
extern void ScoreahInitCache(void);
extern ScoreahCache ScoreahCacheAcquire(Relation index);
extern void ScoreahCacheRelease(ScoreahCache cache);
extern Buffer ScoreahReadBufferRecent(Relation index, ScoreahCache cache, BlockNumber blkno);
extern void ScoreahPrefetchHinted(ScoreahCache cache, BlockNumber blkno, Size from, Size len);
extern Buffer ScoreahPinAhead(Relation index, ScoreahCache cache, BlockNumber blkno,
							  Size from, Size len);

/* layout.c: groups and stored vectors */
extern Size ScoreahVectorBytes(ScoreahMetaPage meta);
extern void ScoreahComputeLayout(ScoreahMetaPage meta, ScoreahLayout layout);
extern int	ScoreahLayoutMaxBlocks(const ScoreahLayoutData *layout);
extern bool ScoreahRowBiasFits(ScoreahMetaPage meta);
extern void ScoreahPutRowCodes(const ScoreahLayoutData *layout, char *group, int row,
							   const uint8 *codes, float bias);
extern void ScoreahComputeExtraLayout(ScoreahMetaPage meta, ScoreahLayout layout);
extern void ScoreahComputeLeafLayout(ScoreahMetaPage meta, int leaf, ScoreahLayout layout);
extern void ScoreahInitLeafEntry(ScoreahLeaf entry);

/*
 * Where row `row' of a group keeps its vector.  False when the group's
 * page list does not cover the row (a damaged page) or there are no stored
 * vectors.  Inline, without a division: a scan asks for every row it
 * offers to its top-N (two divisions by V were 2% of a head query's
 * instructions); p / V is exact as (p * ceil(2^32 / V)) >> 32 while
 * p * V < 2^32 (the error, under p / 2^32, stays below the 1 / V to the
 * next integer): p < 2^17 and V < 2^13 here.
 */
static inline bool
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
		uint32		p = (uint32) gh->vslot + (uint32) row;
		uint32		q = (uint32) (((uint64) p * layout->vecsRecip) >> 32);

		if (q >= gh->nvblk || gh->nvblk > layout->maxVblk)
			return false;
		*blkno = gh->vblk[q];
		*off = ScoreahVectorSlotOffset(layout, p - q * (uint32) layout->vecsPerPage);
	}
	return true;
}
extern bool ScoreahGroupAddVector(const ScoreahLayoutData *layout,
								  ScoreahGroupHeaderData *gh, int row,
								  BlockNumber blkno, uint16 off);
extern bool ScoreahStoredIsDatum(ScoreahMetaPage meta);
extern void ScoreahStoredHeader(ScoreahMetaPage meta, ScoreahPgvectorHeader *h);
extern void ScoreahDamagedStored(Oid indexOid, const char *stored,
								 const ScoreahPgvectorHeader *want) pg_attribute_noreturn();
extern void ScoreahPackVector(ScoreahMetaPage meta, const float *x, char *out);
extern bool ScoreahReadStored(Relation index, ScoreahMetaPage meta, BlockNumber blkno,
							  uint16 off, uint32 leaf, char *buf);
extern void ScoreahStoredToFloats(ScoreahMetaPage meta, const char *stored, float *out);
extern float *ScoreahReadVector(Relation index, ScoreahMetaPage meta,
								BlockNumber blkno, uint16 off, uint32 leaf,
								float *out);

/* vector.c */
extern float *ScoreahArrayToVector(ArrayType *array, int *dim, const char *what);
extern float *ScoreahDatumToVector(int format, Datum value, int *dim, const char *what);
extern void ScoreahCheckDimensions(int expected, int actual);
extern bool ScoreahMayReadAllRows(Oid heapOid);
extern void ScoreahCheckModelRange(const float *scaled, const float *raw, int dim,
								   double meanNorm, double scale, const char *what,
								   Oid heapOid);

/* build.c: CREATE INDEX */
extern IndexBuildResult *scoreahbuild(Relation heap, Relation index, IndexInfo *indexInfo);
extern void scoreahbuildempty(Relation index);
extern void ScoreahBuildInitSort(ScoreahBuildState *state);
extern struct Tuplesortstate *ScoreahBuildBeginSort(ScoreahBuildState *state, int sortmem,
													struct SortCoordinateData *coordinate);
extern void ScoreahBuildEncodeCallback(Relation index, ItemPointer tid, Datum *values,
									   bool *isnull, bool tupleIsAlive, void *arg);
extern void ScoreahBuildEncodeFinish(ScoreahBuildState *state);

/* build_shape.c: what the build chooses before it trains */
extern void ScoreahBuildChooseSampleSize(ScoreahBuildState *state);
extern void ScoreahBuildCheckSampleSize(ScoreahBuildState *state);
extern void ScoreahBuildScaleSample(ScoreahBuildState *state);
extern void ScoreahBuildChooseShape(ScoreahBuildState *state);
extern void ScoreahBuildFitSample(ScoreahBuildState *state);
extern void ScoreahBuildCheckTrainingMemory(ScoreahBuildState *state, int ntree, int npq);
extern Size ScoreahBuildTrainingBudget(ScoreahBuildState *state, int ntree, int npq);
extern int	ScoreahBuildSortMem(ScoreahBuildState *state, int nparticipants, Size sharedBytes);

/* build_parallel.c */
extern bool ScoreahBuildEncodeParallel(ScoreahBuildState *state, int request);
extern void ScoreahBuildEndParallel(ScoreahBuildState *state);
extern int64 ScoreahBuildAddProgress(struct ScoreahShared *shared, int64 n);
extern bool ScoreahBuildKmeansParallel(ScoreahBuildState *state, const float *data, int n,
									   int dim, ScoreahKmeansParams *params, float *centers,
									   int request, Size budget, int *nworkers);
extern bool ScoreahBuildCodebooksParallel(ScoreahModel model, const float *samples, int n,
										  int iterations, uint64 seed, int request,
										  Size budget, int *nworkers);

/* build_write.c: the pages of a new index */
extern BlockNumber ScoreahBuildAllocBlock(Relation index);
extern void ScoreahBuildWriteBlock(Relation index, BlockNumber blkno, Page page);
extern BlockNumber ScoreahBuildWriteBlob(Relation index, const char *src, Size nbytes);
extern void ScoreahBuildFillMeta(ScoreahBuildState *state, ScoreahMetaPage meta);
extern int	ScoreahBuildStorage(ScoreahBuildState *state);
extern void ScoreahBuildWriteUntrained(Relation index, ForkNumber forkNum,
									   ScoreahMetaPage meta);
extern int64 ScoreahBuildWriteLeaves(ScoreahBuildState *state, ScoreahMetaPage meta,
									 ScoreahLeaf leaves);
extern void ScoreahBuildWriteDirectory(Relation index, ScoreahMetaPage meta,
									   const ScoreahLeafData *leaves);
extern void ScoreahBuildWriteMeta(Relation index, ScoreahMetaPage meta);

/* keys.c: key columns */
/* A row's keys on its way into a group */
typedef struct ScoreahRowKeysData
{
	int64		keys[SCOREAH_MAX_KEYS];
	uint32		nulls;			/* bit k: key k is NULL */
} ScoreahRowKeysData;

extern int	ScoreahKeyKinds(Relation index, uint8 *kinds);
extern void ScoreahPutRowKeys(const ScoreahLayoutData *layout, char *group, int row,
							  const ScoreahRowKeysData *rk);
extern void ScoreahRowKeys(Relation index, int nkeys, Datum *values, bool *isnull,
						   int64 *keys, uint32 *nulls);
extern bool ScoreahKeySummaryAdd(ScoreahLeaf entry, int64 v);
extern bool ScoreahKeySummaryCovers(const ScoreahLeafData *entry, int64 v);
extern bool ScoreahKeyPrepare(IndexScanDesc scan, ScoreahKeyFilter *filters, int *nfilters,
							  bool *recheck);
extern uint32 ScoreahKeyMatchGroup(const ScoreahKeyFilter *filters, int nfilters,
								   const ScoreahLayoutData *layout, char *group);
extern bool ScoreahKeyLeafMayMatch(const ScoreahKeyFilter *filters, int nfilters,
								   const ScoreahLeafData *entry);

/* calibrate.c: the recall the build measures for scoreah.target_recall */
extern int	ScoreahCalibQueries(int64 nrows, int nsamples, int dim, int nleaves);
extern void ScoreahCalibInit(ScoreahCalib calib, const float *samples, const uint64 *ids,
							 int nqueries, int dim);
extern void ScoreahCalibOffer(ScoreahCalib calib, int metric, const float *x, int n,
							  const uint64 *ids, const int *leaves);
extern void ScoreahCalibMerge(ScoreahCalib calib, const ScoreahCalibNeighbor *nn,
							  const int *counts);
extern void ScoreahCalibMeasure(ScoreahCalib calib, Relation index, ScoreahModel model,
								ScoreahLayout layout, const ScoreahLeafData *entries,
								int64 rows, ScoreahCalibrationData *out);
/* What ScoreahCalibChoose found for a target */
typedef enum ScoreahCalibChoice
{
	SCOREAH_CALIB_NONE,			/* the index holds no calibration */
	SCOREAH_CALIB_MET,			/* a measured point reaches the target */
	SCOREAH_CALIB_BEYOND		/* past the measured leaves: extrapolated */
} ScoreahCalibChoice;

extern ScoreahCalibChoice ScoreahCalibChoose(const ScoreahMetaPageData *meta, double target,
											 int *probes, int *reorder, double *expected);
extern float ScoreahCalibChooseSpread(ScoreahCalib calib, ScoreahModel model,
									  const ScoreahLeafData *entries);

/* insert.c */
extern bool scoreahinsert(Relation index, Datum *values, bool *isnull,
						  ItemPointer heap_tid, Relation heap,
						  IndexUniqueCheck checkUnique,
#if PG_VERSION_NUM >= 140000
						  bool indexUnchanged,
#endif
						  IndexInfo *indexInfo);
extern void ScoreahSetReuseHint(Relation index, ScoreahMetaPage meta, int leaf,
								BlockNumber expected, BlockNumber blkno, bool force);

/* scan.c, scan_score.c */
extern IndexScanDesc scoreahbeginscan(Relation index, int nkeys, int norderbys);
extern void scoreahrescan(IndexScanDesc scan, ScanKey keys, int nkeys,
						  ScanKey orderbys, int norderbys);
extern bool scoreahgettuple(IndexScanDesc scan, ScanDirection dir);
extern void scoreahendscan(IndexScanDesc scan);
/* scan_order.c: batches, the store, the order rows go out in */
#define SCOREAH_HEAP_PREFETCH_MAX 16	/* heap pages prefetched ahead, at
										 * most (scan.c) */
#define SCOREAH_DEFAULT_BATCH	100 /* candidates of a batch when nothing is
									 * re-ranked */
/*
 * Strict order: how far past a row the unseen candidates must score, in
 * standard deviations of the line's residuals (ScoreahScanOrderMargin)
 */
#define SCOREAH_ORDER_SIGMAS	3.0
extern bool ScoreahScanNextBatch(IndexScanDesc scan);
extern bool ScoreahScanMayReturn(ScoreahScanOpaque so, const ScoreahCandidate *x);
extern double ScoreahScanOrderMargin(ScoreahScanOpaque so, double sigma);
extern double scoreah_depth_factor(double depth);

extern void ScoreahScanLeaves(IndexScanDesc scan, ScoreahTopN *top, int from, int to,
							  int floorUpto, const ScoreahCandidate *floorKey);
extern void ScoreahScanRerank(IndexScanDesc scan);
extern void ScoreahScanEndHeapFetch(ScoreahScanOpaque so);

/* Rows scored exactly: brute_force scoring, or no model to score codes with */
static inline bool
ScoreahScanBruteForce(ScoreahCache cache)
{
	return cache->meta.scoring == SCOREAH_SCORING_BRUTE_FORCE ||
		!(cache->meta.flags & SCOREAH_FLAG_TRAINED) || cache->meta.nblocks == 0;
}

/* vacuum.c */
extern IndexBulkDeleteResult *scoreahbulkdelete(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats,
												IndexBulkDeleteCallback callback,
												void *callback_state);
extern IndexBulkDeleteResult *scoreahvacuumcleanup(IndexVacuumInfo *info,
												   IndexBulkDeleteResult *stats);

/* info.c, check.c: introspection */
extern Relation ScoreahOpenForIntrospection(Oid indexOid, bool *rlsActive);

#endif							/* SCOREAH_H */
