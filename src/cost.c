/*-------------------------------------------------------------------------
 *
 * cost.c
 *	  The planner's cost estimate for scoreah index scans.
 *
 * Without an ORDER BY distance the index is useless (its search operators
 * are for key columns, next to a vector), so the cost is infinite.  With
 * one, a scan reads the centroids, then the searched fraction of the
 * leaves and re-ranks its first batch before the first row comes out (the
 * startup cost); each row it returns after that is re-ranked (the run
 * cost, which a LIMIT scales; a LIMIT the planner cannot evaluate is
 * taken to be small).  Only the metapage is read: the planner must not
 * load a model to plan a query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "utils/float.h"
#include "utils/rel.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/selfuncs.h"

#include "scoreah.h"

/*
 * Whether the query's LIMIT, or its OFFSET, is one the planner cannot
 * evaluate: LIMIT $n in a generic plan (a prepared statement's, or the
 * body of a SQL function that is not inlined, planned before its
 * arguments are known), LIMIT (SELECT ...), a LATERAL reference; OFFSET
 * $n of a page of results.  The planner then takes the query to want a
 * tenth of the rows (preprocess_limit sets tuple_fraction to 0.10) and
 * charges a path that much of its run cost.
 */
static bool
Unevaluable(PlannerInfo *root, Node *expr)
{
	Node	   *est;

	if (expr == NULL)
		return false;
	est = estimate_expression_value(root, expr);
	return est == NULL || !IsA(est, Const);
}

static bool
LimitUnknown(PlannerInfo *root)
{
	if (root->parse->limitCount == NULL ||
		root->tuple_fraction <= 0 || root->tuple_fraction >= 1)
		return false;
	return Unevaluable(root, root->parse->limitCount) ||
		Unevaluable(root, root->parse->limitOffset);
}

void
scoreahcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
					Cost *indexStartupCost, Cost *indexTotalCost,
					Selectivity *indexSelectivity, double *indexCorrelation,
					double *indexPages)
{
	GenericCosts costs;
	double		ratio = 1.0;
	double		runScale = 1.0;	/* of the run cost, for a LIMIT unknown */
	int			nprobe = 1;
	int			reorder = scoreah_reordering_num_neighbors;
	Relation	index;
	ScoreahMetaPageData meta;
	ScoreahLayoutData layout;
	double		tuples = Max(path->indexinfo->tuples, 1.0);
	double		codePages,
				vecPages,
				pages;
	Selectivity sel,
				keySel;
	bool		exact;
	Cost		cost,
				runCost,
				distCost;

	/*
	 * Only ORDER BY one distance: the scan orders by the first key alone,
	 * so a second (ORDER BY v <-> $1, v <-> $2) must be left to a sort.
	 */
	if (path->indexorderbys == NIL || list_length(path->indexorderbys) > 1)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	index = index_open(path->indexinfo->indexoid, NoLock);
	ScoreahReadMeta(index, &meta);
	ScoreahValidateMeta(index, &meta);
	index_close(index, NoLock);
	ScoreahComputeLayout(&meta, &layout);

	/* the leaves and candidates a scan will take, as scan.c fixes them */
	if (meta.nleaves > 0)
	{
		double		expected;

		nprobe = scoreah_num_leaves_to_search > 0 ?
			scoreah_num_leaves_to_search : (int) meta.numLeavesToSearch;
		if (scoreah_target_recall > 0 &&
			ScoreahCalibChoose(&meta, scoreah_target_recall, &nprobe, &reorder,
							   &expected) == SCOREAH_CALIB_NONE)
			nprobe = meta.nleaves;
		ratio = Min(1.0, (double) nprobe / meta.nleaves);
	}
	exact = meta.scoring == SCOREAH_SCORING_BRUTE_FORCE || !(meta.flags & SCOREAH_FLAG_TRAINED);

	/*
	 * A filter keeping a fraction s of the rows (key conditions checked in
	 * the index, or conditions the executor checks on the rows the scan
	 * returns) makes the scan go as deep as the 10/s nearest rows of all,
	 * and it widens for that depth (scan_order.c, WantLeavesAt).
	 */
	{
		RelOptInfo *rel = path->indexinfo->rel;

		sel = clauselist_selectivity(root, rel->baserestrictinfo, rel->relid,
									 JOIN_INNER, NULL);
		sel = Max(sel, 1.0 / tuples);
		ratio = Min(1.0, ratio * scoreah_depth_factor(1.0 / sel));
	}

	/* the selectivity of the key conditions, checked inside the index */
	MemSet(&costs, 0, sizeof(costs));
	costs.numIndexTuples = Max(1.0, tuples * ratio);
	genericcostestimate(root, path, loop_count, &costs);
	keySel = path->indexclauses != NIL ? Max(costs.indexSelectivity, 1.0 / tuples) : 1.0;

	/*
	 * The work is scoreah's own: the searched leaves' code pages, read
	 * along their chains in the order the build wrote them (sequential
	 * pages), a check or a score per row (rows failing the key conditions
	 * are checked, not scored), and the re-ranking: a candidate's vector
	 * from the vector pages of the same leaves (the build wrote them leaf
	 * after leaf), and a distance of dim multiply-adds.  Not the index's
	 * whole size: at high dimensions the vectors are most of it, and a
	 * scan reads a few hundred of them.  The first batch comes before the
	 * first row (startup); every row the scan returns past it is re-ranked
	 * (a vector page each, or the table's row with reordering_storage =
	 * table; random reads), so a scan whose rows the executor filters
	 * re-ranks 1/s rows for each one the query keeps, where key conditions
	 * keep them from being re-ranked at all.  The planner charges that run
	 * cost for the rows a LIMIT takes.
	 */
	codePages = ceil(tuples / ((double) SCOREAH_GROUP_ROWS * Max(layout.groupsPerPage, 1)));
	if (layout.vbytes == 0)
		vecPages = 0;
	else if (layout.vecsPerPage > 0)
		vecPages = ceil(tuples / layout.vecsPerPage);
	else
		vecPages = tuples * ceil((double) layout.vbytes / SCOREAH_VECTOR_CAPACITY);
	distCost = cpu_operator_cost * Max(1.0, meta.dimensions / 32.0);
	if (exact)
	{
		/* brute force, or untrained: every row of the leaves exactly */
		pages = ceil(ratio * (codePages + vecPages));
		cost = pages * seq_page_cost + ratio * tuples * (cpu_operator_cost + keySel * distCost);
		runCost = tuples * keySel * cpu_index_tuple_cost;
	}
	else
	{
		pages = ceil(ratio * codePages) + Min((double) reorder, ceil(ratio * vecPages));
		cost = pages * seq_page_cost +
			ratio * tuples * cpu_operator_cost * (path->indexclauses != NIL ? 1.0 + keySel : 1.0) +
			reorder * (cpu_index_tuple_cost + distCost);
		runCost = tuples * keySel * (random_page_cost + 2 * cpu_index_tuple_cost + distCost);
	}

	/*
	 * A LIMIT the planner cannot evaluate (LimitUnknown) is charged a tenth
	 * of the run cost, which on a table of any size is more than a
	 * sequential scan and a sort of all its rows: a generic plan of ORDER
	 * BY v <-> $1 LIMIT $2 sorted the table, and a SQL function with LIMIT
	 * match_count (a common way applications call a vector search) took
	 * 185 ms a call on MNIST-784 60k instead of 0.4.  A nearest-neighbour
	 * query's LIMIT is small; the run cost is scaled so that the planner's
	 * tenth charges the rows of one batch (reordering_num_neighbors, more
	 * when the executor filters rows out).  A LIMIT that turns out large
	 * still gets every row in order, more slowly than a sort would.
	 */
	if (LimitUnknown(root))
	{
		double		returned = Max(tuples * keySel, 1.0);
		double		kept = Min(1.0, sel / keySel);	/* by the executor */
		double		want = Min(returned, Max(reorder, 1) / kept);

		runScale = Min(1.0, (want / returned) / root->tuple_fraction);
		runCost *= runScale;
	}

	*indexStartupCost = cost;
	*indexTotalCost = cost + runCost;
	*indexPages = pages;

	/*
	 * cost_index adds the heap fetches of indexSelectivity times the
	 * table's rows: scaled alike, or a LATERAL join's LIMIT outer.k still
	 * charged every row's heap fetch a loop (a review: 50 loops over 200k
	 * rows estimated at 533,736, past jit_above_cost, so JIT took 140 ms
	 * of a 12 ms query).
	 */
	*indexSelectivity = costs.indexSelectivity * runScale;
	*indexCorrelation = 0;
}
