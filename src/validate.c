/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Operator class support: the support functions that name each
 *	  operator class's metric, and amvalidate, which checks an operator
 *	  family's members and their signatures.
 *
 * A scoreah operator class has one ordering operator (strategy 1, FOR
 * ORDER BY a btree family that sorts float8) from its type to itself
 * returning float8, support function 1 (internal) -> internal, whose value
 * is the metric (SCOREAH_METRIC_*), and optionally support function 2 of
 * the same signature, whose value is the type it indexes
 * (SCOREAH_FORMAT_*: pgvector's vector or halfvec; real[] without it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"

#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "scoreah.h"

PG_FUNCTION_INFO_V1(scoreah_l2_support);
PG_FUNCTION_INFO_V1(scoreah_ip_support);
PG_FUNCTION_INFO_V1(scoreah_cosine_support);
PG_FUNCTION_INFO_V1(scoreah_vector_format);
PG_FUNCTION_INFO_V1(scoreah_halfvec_format);

Datum
scoreah_l2_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_METRIC_L2);
}

Datum
scoreah_ip_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_METRIC_IP);
}

Datum
scoreah_cosine_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_METRIC_COSINE);
}

Datum
scoreah_vector_format(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_FORMAT_VECTOR);
}

Datum
scoreah_halfvec_format(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SCOREAH_FORMAT_HALFVEC);
}

/*
 * The metric of the index's operator class, from support function 1.
 */
/*
 * The index's vector column (0-based): the one column whose operator class
 * has support function 1; every other column is a key column.  Exactly one.
 */
int
ScoreahVectorColumn(Relation index)
{
	int			natts = IndexRelationGetNumberOfKeyAttributes(index);
	int			found = -1;

	for (int a = 0; a < natts; a++)
		if (OidIsValid(index_getprocid(index, a + 1, SCOREAH_METRIC_PROC)))
		{
			if (found >= 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("a scoreah index has one vector column, not both \"%s\" and \"%s\"",
								NameStr(TupleDescAttr(RelationGetDescr(index), found)->attname),
								NameStr(TupleDescAttr(RelationGetDescr(index), a)->attname))));
			found = a;
		}
	if (found < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a scoreah index needs a vector column, with a vector operator class such as scoreah_l2_ops or vector_cosine_ops"),
				 errdetail("Its columns have operator classes for key columns only.")));
	return found;
}

/* Attribute (0-based) of key column k: the columns other than the vector */
int
ScoreahKeyColumn(Relation index, int k)
{
	int			v = ScoreahVectorColumn(index);

	return k < v ? k : k + 1;
}

int
ScoreahGetMetric(Relation index)
{
	FmgrInfo   *proc;
	int			metric;
	int			v = ScoreahVectorColumn(index);

	proc = index_getprocinfo(index, v + 1, SCOREAH_METRIC_PROC);
	metric = DatumGetInt32(FunctionCall1(proc, PointerGetDatum(NULL)));

	if (metric < SCOREAH_METRIC_L2 || metric > SCOREAH_METRIC_COSINE)
		elog(ERROR, "scoreah support function 1 returned unknown metric %d", metric);
	return metric;
}

/* The type the index's operator class reads, from support function 2 */
int
ScoreahGetFormat(Relation index)
{
	int			format;
	int			v = ScoreahVectorColumn(index);

	if (!OidIsValid(index_getprocid(index, v + 1, SCOREAH_FORMAT_PROC)))
		return SCOREAH_FORMAT_ARRAY;
	format = DatumGetInt32(FunctionCall1(index_getprocinfo(index, v + 1, SCOREAH_FORMAT_PROC),
										 PointerGetDatum(NULL)));
	if (format < SCOREAH_FORMAT_ARRAY || format > SCOREAH_FORMAT_HALFVEC)
		elog(ERROR, "scoreah support function 2 returned unknown format %d", format);
	return format;
}

/*
 * The indexed column must be of the type the operator class reads: real[],
 * or the vector or halfvec of the pgvector extension (scoreah reads them
 * by their layout, so a namesake from elsewhere must not pass).
 */
void
ScoreahCheckColumnType(Relation index, int format)
{
	Oid			coltype = TupleDescAttr(RelationGetDescr(index), ScoreahVectorColumn(index))->atttypid;
	Oid			typid = getBaseType(coltype);	/* a domain is read as its base */
	const char *want = format == SCOREAH_FORMAT_VECTOR ? "vector" :
		format == SCOREAH_FORMAT_HALFVEC ? "halfvec" : NULL;
	Oid			ext;
	HeapTuple	tup;
	bool		named;
	int			col;
	Oid			opno;

	if (want == NULL)
	{
		if (typid != FLOAT4ARRAYOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("scoreah indexes columns of type real[], not %s, with this operator class",
							format_type_be(coltype)),
					 errhint("For pgvector's vector and halfvec, use the operator classes of the scoreah_vector extension.")));
		return;
	}
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	named = strcmp(NameStr(((Form_pg_type) GETSTRUCT(tup))->typname), want) == 0;
	ReleaseSysCache(tup);
	if (!named)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("this scoreah operator class indexes pgvector's %s, not %s",
						want, format_type_be(coltype))));
	ext = get_extension_oid("vector", true);
	if (!OidIsValid(ext) || getExtensionOfObject(TypeRelationId, typid) != ext)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("type %s is not the %s type of the pgvector extension",
						format_type_be(typid), want)));

	/*
	 * Nor may the ORDER BY operator be another's: scans re-rank by calling
	 * it (scan_score.c), and an operator class binds whatever operator of
	 * that name the search path found when it was created.
	 */
	col = ScoreahVectorColumn(index);
	opno = get_opfamily_member(index->rd_opfamily[col], index->rd_opcintype[col],
							   index->rd_opcintype[col], 1);
	if (!OidIsValid(opno) || getExtensionOfObject(OperatorRelationId, opno) != ext)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the operator class of index \"%s\" orders by operator %s, which is not the pgvector extension's",
						RelationGetRelationName(index),
						OidIsValid(opno) ? format_operator_qualified(opno) : "(none)"),
				 errhint("Drop and create the scoreah_vector extension again: its script binds pgvector's operators by pgvector's schema.")));
}

/*
 * Check an operator class and its family: each member is of a kind
 * scoreah knows, with the right signature, and the class has both
 * members it needs for its type.  Problems are reported at INFO, as the
 * built-in access methods do, and make the result false.
 */
/*
 * An operator class of a key column: no support functions; search
 * operators (Op)(type, type) -> boolean with btree's strategies 1 to 5.
 */
static bool
ValidateKeyClass(const char *opclassname, Oid opfamily, Oid intype)
{
	CatCList   *oprlist;
	CatCList   *proclist;
	bool		ok = true;

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamily));
	if (proclist->n_members > 0)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("scoreah key operator family of \"%s\" has support functions; it needs none",
						opclassname)));
		ok = false;
	}
	ReleaseSysCacheList(proclist);

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamily));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (oprform->amopstrategy < 1 || oprform->amopstrategy > SCOREAH_NSTRATEGIES ||
			oprform->amoppurpose != AMOP_SEARCH ||
			!check_amop_signature(oprform->amopopr, BOOLOID,
								  oprform->amoplefttype, oprform->amoprighttype))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scoreah key operator family of \"%s\" contains operator %s with strategy %d, which is not a comparison of strategy 1 to %d",
							opclassname, format_operator(oprform->amopopr),
							oprform->amopstrategy, SCOREAH_NSTRATEGIES)));
			ok = false;
		}
	}
	ReleaseSysCacheList(oprlist);

	if (!OidIsValid(get_opfamily_member(opfamily, intype, intype, BTEqualStrategyNumber)))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("scoreah key operator class \"%s\" has no equality operator (strategy 3)",
						opclassname)));
		ok = false;
	}
	return ok;
}

bool
scoreahvalidate(Oid opclassoid)
{
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamily;
	Oid			intype;
	char	   *opclassname;
	CatCList   *oprlist;
	CatCList   *proclist;
	bool		ok = true;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamily = classform->opcfamily;
	intype = classform->opcintype;
	opclassname = NameStr(classform->opcname);

	/* an operator class for key columns has no ordering operator */
	if (!OidIsValid(get_opfamily_member(opfamily, intype, intype, 1)) ||
		get_op_opfamily_sortfamily(get_opfamily_member(opfamily, intype, intype, 1),
								   opfamily) == InvalidOid)
	{
		ok = ValidateKeyClass(opclassname, opfamily, intype);
		ReleaseSysCache(classtup);
		return ok;
	}

	/* support functions: number 1, (internal) -> internal */
	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamily));
	for (int i = 0; i < proclist->n_members; i++)
	{
		Form_pg_amproc procform = (Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple);

		if (procform->amprocnum != SCOREAH_METRIC_PROC &&
			procform->amprocnum != SCOREAH_FORMAT_PROC)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scoreah operator family of \"%s\" contains function %s with invalid support number %d",
							opclassname, format_procedure(procform->amproc),
							procform->amprocnum)));
			ok = false;
		}
		else if (!check_amproc_signature(procform->amproc, INTERNALOID, true,
										 1, 1, INTERNALOID))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scoreah operator family of \"%s\" contains function %s with wrong signature for support number %d",
							opclassname, format_procedure(procform->amproc),
							procform->amprocnum),
					 errdetail("Support functions %d and %d take internal and return internal.",
							   SCOREAH_METRIC_PROC, SCOREAH_FORMAT_PROC)));
			ok = false;
		}
	}
	ReleaseSysCacheList(proclist);

	/* operators: strategy 1, for ORDER BY, (type, type) -> float8 */
	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamily));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (oprform->amopstrategy != 1 || oprform->amoppurpose != AMOP_ORDER)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scoreah operator family of \"%s\" contains operator %s with invalid strategy number %d or purpose",
							opclassname, format_operator(oprform->amopopr),
							oprform->amopstrategy),
					 errdetail("scoreah has one strategy, 1, an ordering operator (FOR ORDER BY).")));
			ok = false;
			continue;
		}
		if (!check_amop_signature(oprform->amopopr, FLOAT8OID,
								  oprform->amoplefttype, oprform->amoprighttype) ||
			oprform->amoplefttype != oprform->amoprighttype)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scoreah operator family of \"%s\" contains operator %s with wrong signature",
							opclassname, format_operator(oprform->amopopr)),
					 errdetail("The ordering operator takes two values of the indexed type and returns double precision.")));
			ok = false;
		}
		if (!opfamily_can_sort_type(oprform->amopsortfamily, FLOAT8OID))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("scoreah operator family of \"%s\" contains operator %s whose sort family cannot sort double precision",
							opclassname, format_operator(oprform->amopopr))));
			ok = false;
		}
	}
	ReleaseSysCacheList(oprlist);

	/* the class's own type has both members */
	if (!OidIsValid(get_opfamily_member(opfamily, intype, intype, 1)))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("scoreah operator class \"%s\" has no ordering operator for strategy 1",
						opclassname)));
		ok = false;
	}
	if (!OidIsValid(get_opfamily_proc(opfamily, intype, intype, SCOREAH_METRIC_PROC)))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("scoreah operator class \"%s\" is missing support function %d",
						opclassname, SCOREAH_METRIC_PROC)));
		ok = false;
	}
	ReleaseSysCache(classtup);
	return ok;
}
