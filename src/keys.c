/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Key columns: the columns an index carries after its vector
 *	  (CREATE INDEX ... USING scoreah (embedding vector_cosine_ops,
 *	  tenant_id)), whose conditions in a query's WHERE reach the scan as
 *	  scan keys and are checked inside the index, row by row, before a row
 *	  is scored or re-ranked.
 *
 * Each row keeps one 64-bit value per key column: an integer column's
 * value itself (int2, int4, int8: equality, IN and ranges), or a hash of a
 * text, varchar or uuid value (equality and IN; equal hashes of different
 * values are possible, so such scans ask the executor to recheck the
 * row).  Each leaf keeps a summary of its first key column's values (a
 * 128-bit Bloom filter and the range), so that a scan skips leaves without
 * a matching row without reading them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/stratnum.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "scoreah.h"

/*
 * The kind of each key column of an index (SCOREAH_KEY_*), checked: the
 * types scoreah can key on, a deterministic collation for text (hashes of
 * bytes find equal strings only when equal means the same bytes).
 */
int
ScoreahKeyKinds(Relation index, uint8 *kinds)
{
	int			natts = RelationGetNumberOfAttributes(index);
	int			nkeys = natts - 1;

	if (nkeys > SCOREAH_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_COLUMNS),
				 errmsg("a scoreah index has at most %d key columns after its vector, not %d",
						SCOREAH_MAX_KEYS, nkeys)));
	for (int k = 0; k < nkeys; k++)
	{
		int			a = ScoreahKeyColumn(index, k);
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(index), a);
		Oid			coll = index->rd_indcollation[a];

		switch (getBaseType(att->atttypid))
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
				kinds[k] = SCOREAH_KEY_INT;
				break;
			case TEXTOID:
			case VARCHAROID:
				if (OidIsValid(coll) && !get_collation_isdeterministic(coll))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("scoreah key column \"%s\" has a nondeterministic collation",
									NameStr(att->attname)),
							 errdetail("Key values are compared by their bytes.")));
				kinds[k] = SCOREAH_KEY_HASH;
				break;
			case UUIDOID:
				kinds[k] = SCOREAH_KEY_HASH;
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("scoreah key column \"%s\" is of type %s; key columns are smallint, integer, bigint, text, varchar or uuid",
								NameStr(att->attname), format_type_be(att->atttypid))));
		}
	}
	return nkeys;
}

/* The 64-bit key of a value of type typid */
static int64
KeyOfValue(Oid typid, Datum value)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		case INT8OID:
			return DatumGetInt64(value);
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(value);
				int64		h = (int64) hash_any_extended((const unsigned char *) VARDATA_ANY(t),
														  VARSIZE_ANY_EXHDR(t), 0);

				if ((Pointer) t != DatumGetPointer(value))
					pfree(t);
				return h;
			}
		case UUIDOID:
			return (int64) hash_any_extended(DatumGetUUIDP(value)->data, UUID_LEN, 0);
	}
	/* A domain's values are its base type's (a catalog lookup, domains only) */
	if (getBaseType(typid) != typid)
		return KeyOfValue(getBaseType(typid), value);
	elog(ERROR, "scoreah: no key for type %u", typid);
	return 0;					/* keep compiler quiet */
}

/*
 * The keys of a row: the index tuple's values and isnull of its key
 * columns into keys[] and the bitmap of NULL keys.
 */
void
ScoreahRowKeys(Relation index, int nkeys, Datum *values, bool *isnull, int64 *keys,
			   uint32 *nulls)
{
	*nulls = 0;
	for (int k = 0; k < nkeys; k++)
	{
		int			a = ScoreahKeyColumn(index, k);

		if (isnull[a])
		{
			keys[k] = 0;
			*nulls |= (uint32) 1 << k;
			continue;
		}
		keys[k] = KeyOfValue(TupleDescAttr(RelationGetDescr(index), a)->atttypid, values[a]);
	}
}

/* Row `row' of a group takes the keys of rk (a new or a reused slot) */
void
ScoreahPutRowKeys(const ScoreahLayoutData *layout, char *group, int row,
				  const ScoreahRowKeysData *rk)
{
	uint32	   *nulls;

	if (layout->nkeys == 0)
		return;
	nulls = ScoreahGroupKeyNulls(layout, group);
	for (int k = 0; k < layout->nkeys; k++)
	{
		ScoreahGroupKeys(layout, group, k)[row] = rk->keys[k];
		if (rk->nulls & ((uint32) 1 << k))
			nulls[k] |= (uint32) 1 << row;
		else
			nulls[k] &= ~((uint32) 1 << row);
	}
}

/* ---- the first key column's summary per leaf ---- */

static inline int
BloomBit(int64 v)
{
	uint64		h = (uint64) v;

	/* a 64-bit finalizer (MurmurHash3's): every input bit moves the bit */
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (int) (h & 127);
}

/* Add a value to a leaf's summary; true when it changed */
bool
ScoreahKeySummaryAdd(ScoreahLeaf entry, int64 v)
{
	int			bit = BloomBit(v);
	uint64		mask = UINT64CONST(1) << (bit & 63);
	bool		changed = false;

	if ((entry->keyBloom[bit >> 6] & mask) == 0)
	{
		entry->keyBloom[bit >> 6] |= mask;
		changed = true;
	}
	if (v < entry->keyMin)
	{
		entry->keyMin = v;
		changed = true;
	}
	if (v > entry->keyMax)
	{
		entry->keyMax = v;
		changed = true;
	}
	return changed;
}

/* Whether a leaf's summary covers a value (scoreah_index_check) */
bool
ScoreahKeySummaryCovers(const ScoreahLeafData *entry, int64 v)
{
	int			bit = BloomBit(v);

	return v >= entry->keyMin && v <= entry->keyMax &&
		(entry->keyBloom[bit >> 6] & (UINT64CONST(1) << (bit & 63))) != 0;
}

/* ---- scan keys ---- */

static int
CmpInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Intersect f's values with vals[0..n-1] (sorted, distinct) */
static void
IntersectValues(ScoreahKeyFilter *f, int64 *vals, int n)
{
	if (f->nvals < 0)
	{
		f->vals = vals;
		f->nvals = n;
		return;
	}
	{
		int			m = 0;

		for (int i = 0; i < f->nvals; i++)
			if (bsearch(&f->vals[i], vals, n, sizeof(int64), CmpInt64))
				f->vals[m++] = f->vals[i];
		f->nvals = m;
	}
}

/*
 * The scan's conditions on key columns as one filter per column that has
 * any: allowed values (equality, IN) and a range (integers).  Returns
 * false when no row can match (a NULL compared, an empty IN list, a
 * contradiction); *recheck tells whether hashed keys were compared.
 */
bool
ScoreahKeyPrepare(IndexScanDesc scan, ScoreahKeyFilter *filters, int *nfilters, bool *recheck)
{
	Relation	index = scan->indexRelation;
	ScoreahKeyFilter byKey[SCOREAH_MAX_KEYS];
	bool		used[SCOREAH_MAX_KEYS] = {false};
	int			nkeys = RelationGetNumberOfAttributes(index) - 1;
	int			vcol = ScoreahVectorColumn(index);

	*nfilters = 0;
	*recheck = false;
	for (int k = 0; k < nkeys; k++)
	{
		byKey[k].key = k;
		byKey[k].nvals = -1;
		byKey[k].vals = NULL;
		byKey[k].lo = PG_INT64_MIN;
		byKey[k].hi = PG_INT64_MAX;
	}

	for (int i = 0; i < scan->numberOfKeys; i++)
	{
		ScanKey		sk = &scan->keyData[i];
		int			a = sk->sk_attno - 1;
		int			k = a < vcol ? a : a - 1;
		ScoreahKeyFilter *f;
		Oid			coltype;
		Oid			argtype;

		if (a == vcol || k < 0 || k >= nkeys)
			elog(ERROR, "scoreah: scan key on column %d", sk->sk_attno);
		if (sk->sk_flags & SK_ISNULL)
			return false;		/* comparisons with NULL are never true */
		f = &byKey[k];
		used[k] = true;
		coltype = getBaseType(TupleDescAttr(RelationGetDescr(index), a)->atttypid);
		argtype = OidIsValid(sk->sk_subtype) ? sk->sk_subtype : coltype;
		if (argtype == VARCHAROID)
			argtype = TEXTOID;
		if (coltype != INT2OID && coltype != INT4OID && coltype != INT8OID)
			*recheck = true;

		if (sk->sk_flags & SK_SEARCHARRAY)
		{
			ArrayType  *arr = DatumGetArrayTypeP(sk->sk_argument);
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Datum	   *elems;
			bool	   *enulls;
			int			nelems,
						n = 0;
			int64	   *vals;

			if (sk->sk_strategy != BTEqualStrategyNumber)
				elog(ERROR, "scoreah: array scan key with strategy %d", sk->sk_strategy);
			get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
			deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
							  &elems, &enulls, &nelems);
			vals = palloc(sizeof(int64) * Max(nelems, 1));
			for (int j = 0; j < nelems; j++)
				if (!enulls[j])
					vals[n++] = KeyOfValue(argtype == TEXTOID ? TEXTOID : ARR_ELEMTYPE(arr),
										   elems[j]);
			qsort(vals, n, sizeof(int64), CmpInt64);
			{
				int			m = 0;

				for (int j = 0; j < n; j++)
					if (m == 0 || vals[m - 1] != vals[j])
						vals[m++] = vals[j];
				n = m;
			}
			IntersectValues(f, vals, n);
			continue;
		}

		{
			int64		v = KeyOfValue(argtype, sk->sk_argument);

			switch (sk->sk_strategy)
			{
				case BTLessStrategyNumber:
					if (v == PG_INT64_MIN)
						return false;
					f->hi = Min(f->hi, v - 1);
					break;
				case BTLessEqualStrategyNumber:
					f->hi = Min(f->hi, v);
					break;
				case BTEqualStrategyNumber:
					{
						int64	   *one = palloc(sizeof(int64));

						*one = v;
						IntersectValues(f, one, 1);
					}
					break;
				case BTGreaterEqualStrategyNumber:
					f->lo = Max(f->lo, v);
					break;
				case BTGreaterStrategyNumber:
					if (v == PG_INT64_MAX)
						return false;
					f->lo = Max(f->lo, v + 1);
					break;
				default:
					elog(ERROR, "scoreah: scan key with strategy %d", sk->sk_strategy);
			}
		}
	}

	for (int k = 0; k < nkeys; k++)
	{
		ScoreahKeyFilter *f = &byKey[k];

		if (!used[k])
			continue;
		if (f->lo > f->hi)
			return false;
		if (f->nvals >= 0)
		{
			int			m = 0;

			for (int i = 0; i < f->nvals; i++)
				if (f->vals[i] >= f->lo && f->vals[i] <= f->hi)
					f->vals[m++] = f->vals[i];
			f->nvals = m;
			if (m == 0)
				return false;
		}
		filters[(*nfilters)++] = *f;
	}
	return true;
}

static inline bool
ValueMatches(const ScoreahKeyFilter *f, int64 v)
{
	if (v < f->lo || v > f->hi)
		return false;
	if (f->nvals < 0)
		return true;
	if (f->nvals <= 8)
	{
		for (int i = 0; i < f->nvals; i++)
			if (f->vals[i] == v)
				return true;
		return false;
	}
	return bsearch(&v, f->vals, f->nvals, sizeof(int64), CmpInt64) != NULL;
}

/* The rows of a group (bit i: row i) whose keys pass every filter */
uint32
ScoreahKeyMatchGroup(const ScoreahKeyFilter *filters, int nfilters,
					 const ScoreahLayoutData *layout, char *group)
{
	int			nitems = ScoreahGroupHeader(group)->nitems;
	uint32		mask = nitems >= 32 ? PG_UINT32_MAX : (((uint32) 1 << nitems) - 1);
	uint32	   *nulls = ScoreahGroupKeyNulls(layout, group);

	for (int j = 0; j < nfilters && mask != 0; j++)
	{
		const ScoreahKeyFilter *f = &filters[j];
		const int64 *keys = ScoreahGroupKeys(layout, group, f->key);
		uint32		pass = 0;

		/* the common shapes in loops the compiler vectorizes */
		if (f->nvals == 1)
		{
			int64		v = f->vals[0];

			for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
				pass |= (uint32) (keys[i] == v) << i;
		}
		else if (f->nvals < 0)
		{
			int64		lo = f->lo,
						hi = f->hi;

			for (int i = 0; i < SCOREAH_GROUP_ROWS; i++)
				pass |= (uint32) ((keys[i] >= lo) & (keys[i] <= hi)) << i;
		}
		else
			for (int i = 0; i < nitems; i++)
				pass |= (uint32) ValueMatches(f, keys[i]) << i;
		mask &= pass & ~nulls[f->key];
	}
	return mask;
}

/* Whether a leaf may hold a row that passes the filters (its summary) */
bool
ScoreahKeyLeafMayMatch(const ScoreahKeyFilter *filters, int nfilters, const ScoreahLeafData *entry)
{
	for (int j = 0; j < nfilters; j++)
	{
		const ScoreahKeyFilter *f = &filters[j];
		bool		any = false;

		if (f->key != 0)
			continue;
		if (entry->keyMin > entry->keyMax)
			return false;		/* no value at all */
		if (f->lo > entry->keyMax || f->hi < entry->keyMin)
			return false;
		if (f->nvals < 0)
			continue;
		for (int i = 0; i < f->nvals && !any; i++)
		{
			int			bit = BloomBit(f->vals[i]);

			any = f->vals[i] >= entry->keyMin && f->vals[i] <= entry->keyMax &&
				(entry->keyBloom[bit >> 6] & (UINT64CONST(1) << (bit & 63))) != 0;
		}
		if (!any)
			return false;
	}
	return true;
}
