-- scoreah 0.1.0 -> 0.2.0
-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION scoreah UPDATE TO '0.2.0'" to load this file. \quit

-- The kernel self-test and benchmark are for DBAs, not for every role.
REVOKE ALL ON FUNCTION scoreah_kernel_selftest(integer, integer, bigint) FROM PUBLIC;

-- The benchmark also says which kernel scans use at that block count
-- (chosen by timing, per backend).
DROP FUNCTION scoreah_kernel_benchmark(integer, integer, integer);
CREATE FUNCTION scoreah_kernel_benchmark(nblocks integer DEFAULT 50, ngroups integer DEFAULT 10000, rounds integer DEFAULT 20)
	RETURNS TABLE (kernel text, ns_per_row float8, speedup float8, dispatched boolean)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION scoreah_kernel_benchmark(integer, integer, integer) FROM PUBLIC;

-- Key columns: an index may carry columns after its vector, whose
-- conditions in WHERE (=, IN, and for integers <, <=, >=, >) are checked
-- inside the index, row by row, before a row is scored:
--   CREATE INDEX ON items USING scoreah (embedding scoreah_cosine_ops, tenant_id);
-- Integers compare across their sizes, as in btree's integer_ops.
CREATE OPERATOR FAMILY scoreah_integer_ops USING scoreah;
CREATE OPERATOR CLASS scoreah_int2_ops
	DEFAULT FOR TYPE int2 USING scoreah FAMILY scoreah_integer_ops AS
	OPERATOR 1 < , OPERATOR 2 <= , OPERATOR 3 = , OPERATOR 4 >= , OPERATOR 5 > ;
CREATE OPERATOR CLASS scoreah_int4_ops
	DEFAULT FOR TYPE int4 USING scoreah FAMILY scoreah_integer_ops AS
	OPERATOR 1 < , OPERATOR 2 <= , OPERATOR 3 = , OPERATOR 4 >= , OPERATOR 5 > ;
CREATE OPERATOR CLASS scoreah_int8_ops
	DEFAULT FOR TYPE int8 USING scoreah FAMILY scoreah_integer_ops AS
	OPERATOR 1 < , OPERATOR 2 <= , OPERATOR 3 = , OPERATOR 4 >= , OPERATOR 5 > ;
ALTER OPERATOR FAMILY scoreah_integer_ops USING scoreah ADD
	OPERATOR 1 < (int2, int4),
	OPERATOR 2 <= (int2, int4),
	OPERATOR 3 = (int2, int4),
	OPERATOR 4 >= (int2, int4),
	OPERATOR 5 > (int2, int4),
	OPERATOR 1 < (int2, int8),
	OPERATOR 2 <= (int2, int8),
	OPERATOR 3 = (int2, int8),
	OPERATOR 4 >= (int2, int8),
	OPERATOR 5 > (int2, int8),
	OPERATOR 1 < (int4, int2),
	OPERATOR 2 <= (int4, int2),
	OPERATOR 3 = (int4, int2),
	OPERATOR 4 >= (int4, int2),
	OPERATOR 5 > (int4, int2),
	OPERATOR 1 < (int4, int8),
	OPERATOR 2 <= (int4, int8),
	OPERATOR 3 = (int4, int8),
	OPERATOR 4 >= (int4, int8),
	OPERATOR 5 > (int4, int8),
	OPERATOR 1 < (int8, int2),
	OPERATOR 2 <= (int8, int2),
	OPERATOR 3 = (int8, int2),
	OPERATOR 4 >= (int8, int2),
	OPERATOR 5 > (int8, int2),
	OPERATOR 1 < (int8, int4),
	OPERATOR 2 <= (int8, int4),
	OPERATOR 3 = (int8, int4),
	OPERATOR 4 >= (int8, int4),
	OPERATOR 5 > (int8, int4);

-- text and varchar (deterministic collations) and uuid: equality and IN,
-- on a hash of the value (the executor rechecks the rows found)
CREATE OPERATOR CLASS scoreah_text_ops
	DEFAULT FOR TYPE text USING scoreah AS
	OPERATOR 3 = ;

CREATE OPERATOR CLASS scoreah_uuid_ops
	DEFAULT FOR TYPE uuid USING scoreah AS
	OPERATOR 3 = ;
