/*-------------------------------------------------------------------------
 *
 * cost.c
 *	  The planner's cost estimate for scoreah index scans.
 *
 * Without an ORDER BY distance the index is useless (its search operators
 * are for key columns, next to a vector), so the cost is infinite.  With one, a scan reads the
 * centroids, then the searched fraction of the leaves; all of it happens
 * before the first row comes out, so startup = total.  Only the metapage
 * is read: the planner must not load a model to plan a query.
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

void
scoreahcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
					Cost *indexStartupCost, Cost *indexTotalCost,
					Selectivity *indexSelectivity, double *indexCorrelation,
					double *indexPages)
{
	GenericCosts costs;
	double		ratio = 1.0;
	Relation	index;
	ScoreahMetaPageData meta;

	if (path->indexorderbys == NIL)
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
	index_close(index, NoLock);
	if (meta.nleaves > 0)
	{
		int			nprobe = scoreah_num_leaves_to_search > 0 ?
		scoreah_num_leaves_to_search : (int) meta.numLeavesToSearch;

		ratio = Min(1.0, (double) nprobe / meta.nleaves);
		if (meta.scoring == SCOREAH_SCORING_BRUTE_FORCE ||
			!(meta.flags & SCOREAH_FLAG_TRAINED))
			ratio = Min(1.0, ratio * 4);	/* float vectors, not codes */
	}

	/*
	 * A filter keeping a fraction s of the rows (key conditions checked in
	 * the index, or conditions the executor checks on the rows the scan
	 * returns) makes the scan go as deep as the 10/s nearest rows of all:
	 * it widens as the square root of that (scan.c, WantLeaves).  Rows
	 * failing key conditions cost a check, not a score, but their pages
	 * are read all the same.
	 */
	{
		RelOptInfo *rel = path->indexinfo->rel;
		Selectivity sel = clauselist_selectivity(root, rel->baserestrictinfo, rel->relid,
												 JOIN_INNER, NULL);
		double		tuples = Max(path->indexinfo->tuples, 1.0);

		sel = Max(sel, 1.0 / tuples);
		ratio = Min(1.0, ratio * sqrt(1.0 / sel));
	}

	MemSet(&costs, 0, sizeof(costs));
	costs.numIndexTuples = Max(1.0, path->indexinfo->tuples * ratio);
	genericcostestimate(root, path, loop_count, &costs);

	/*
	 * genericcostestimate gives the selectivity of the key conditions; the
	 * work is scoreah's own: the searched leaves' code pages, read along
	 * their chains in the order the build wrote them (sequential pages,
	 * not random ones), every row of them checked and scored from its
	 * codes (an operator's cost each), and the candidates re-ranked from
	 * their vector pages.  All of it comes before the first row.
	 */
	{
		double		pages = ceil(ratio * path->indexinfo->pages);
		double		tuples = ratio * path->indexinfo->tuples;
		int			reorder = scoreah_reordering_num_neighbors;
		Cost		cost;

		cost = pages * seq_page_cost + tuples * cpu_operator_cost +
			reorder * (cpu_index_tuple_cost + cpu_operator_cost);
		*indexStartupCost = cost;
		*indexTotalCost = cost;
		*indexPages = pages;
	}
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
}
