-- scoreah 0.2.0: vector functions on real[] and the scoreah index access method.
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION scoreah" to load this file. \quit

-- Distance functions, named and defined as in pgvector.
CREATE FUNCTION l2_distance(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'scoreah_l2_distance'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION inner_product(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'scoreah_inner_product'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION negative_inner_product(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'scoreah_negative_inner_product'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION cosine_distance(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'scoreah_cosine_distance'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION vector_dims(real[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'scoreah_vector_dims'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION l2_norm(real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'scoreah_l2_norm'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION l2_normalize(real[]) RETURNS real[]
	AS 'MODULE_PATHNAME', 'scoreah_l2_normalize'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR <-> (
	LEFTARG = real[], RIGHTARG = real[], FUNCTION = l2_distance,
	COMMUTATOR = '<->'
);

CREATE OPERATOR <#> (
	LEFTARG = real[], RIGHTARG = real[], FUNCTION = negative_inner_product,
	COMMUTATOR = '<#>'
);

CREATE OPERATOR <=> (
	LEFTARG = real[], RIGHTARG = real[], FUNCTION = cosine_distance,
	COMMUTATOR = '<=>'
);

-- The index access method.
CREATE FUNCTION scoreah_handler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD scoreah TYPE INDEX HANDLER scoreah_handler;

COMMENT ON ACCESS METHOD scoreah IS 'ScaNN-style k-means tree with anisotropic product quantization and exact re-ranking';

-- Support function 1 of each operator class names its metric.
CREATE FUNCTION scoreah_l2_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scoreah_ip_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scoreah_cosine_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS scoreah_l2_ops
	DEFAULT FOR TYPE real[] USING scoreah AS
	OPERATOR 1 <-> (real[], real[]) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_l2_support(internal);

CREATE OPERATOR CLASS scoreah_ip_ops
	FOR TYPE real[] USING scoreah AS
	OPERATOR 1 <#> (real[], real[]) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_ip_support(internal);

CREATE OPERATOR CLASS scoreah_cosine_ops
	FOR TYPE real[] USING scoreah AS
	OPERATOR 1 <=> (real[], real[]) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_cosine_support(internal);

-- Which SIMD kernels this backend runs (e.g. 'float=avx2 lut16=scalar').
CREATE FUNCTION scoreah_kernels() RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL SAFE;

-- Introspection.  Both need SELECT on the indexed table (or on every
-- indexed column); under row-level security scoreah_index_info leaves out
-- figures of the table's rows and scoreah_index_check refuses.
CREATE FUNCTION scoreah_index_info(index regclass)
	RETURNS TABLE (name text, value text)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION scoreah_index_info(regclass) IS
	'What a scoreah index holds: options in force, rows, rows per leaf, bytes by kind, staleness';

CREATE FUNCTION scoreah_index_check(index regclass)
	RETURNS SETOF text
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION scoreah_index_check(regclass) IS
	'Structural check of a scoreah index: one row per problem, none when sound';

-- Compares every SIMD kernel this CPU runs with the portable one on random
-- data (LUT16 and exact distance kernels bit for bit, float kernels to
-- rounding); errors on any disagreement.  For DBAs checking a server's CPU:
-- not executable by PUBLIC (it takes up to 64 MB and a few seconds).
CREATE FUNCTION scoreah_kernel_selftest(nblocks integer, ngroups integer DEFAULT 64, seed bigint DEFAULT 1)
	RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION scoreah_kernel_selftest(integer, integer, bigint) FROM PUBLIC;

-- Times every LUT16 kernel this CPU runs on codes held in memory.  Not
-- executable by PUBLIC either.
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
