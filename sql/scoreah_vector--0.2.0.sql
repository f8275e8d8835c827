-- scoreah_vector 0.2.0: scoreah index operator classes for pgvector's vector
-- and halfvec types, named as pgvector names its own, serving pgvector's own
-- distance operators <->, <#> and <=>.
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION scoreah_vector" to load this file. \quit

-- Support function 2 of each operator class names the type it reads
-- (scoreah reads pgvector's documented layout, without its headers).
CREATE FUNCTION scoreah_vector_format(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION scoreah_halfvec_format(internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The operator classes name pgvector's type and operators, and scoreah's
-- support functions, by their extensions' schemas: CREATE EXTENSION puts
-- this extension's schema first on the search path, and an operator <-> a
-- role created there for (vector, vector) would otherwise be the one bound
-- (scans call the operator to re-rank).  Index builds check it too
-- (ScoreahCheckColumnType).
DO $do$
DECLARE
	v text := (SELECT pg_catalog.quote_ident(n.nspname)
			   FROM pg_catalog.pg_extension e
			   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
			   WHERE e.extname = 'vector');
	s text := (SELECT pg_catalog.quote_ident(n.nspname)
			   FROM pg_catalog.pg_extension e
			   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
			   WHERE e.extname = 'scoreah');
	c record;
BEGIN
	FOR c IN SELECT * FROM (VALUES
		-- vector: L2 is the default, as for pgvector's own indexes
		('vector_l2_ops', 'DEFAULT ', 'vector', '<->', 'l2'),
		('vector_ip_ops', '', 'vector', '<#>', 'ip'),
		('vector_cosine_ops', '', 'vector', '<=>', 'cosine'),
		('halfvec_l2_ops', 'DEFAULT ', 'halfvec', '<->', 'l2'),
		('halfvec_ip_ops', '', 'halfvec', '<#>', 'ip'),
		('halfvec_cosine_ops', '', 'halfvec', '<=>', 'cosine'))
		AS t(opclass, dflt, typ, op, metric)
	LOOP
		EXECUTE pg_catalog.format(
			'CREATE OPERATOR CLASS %1$s %2$sFOR TYPE %3$s.%4$s USING scoreah AS '
			'OPERATOR 1 %3$s.%5$s (%3$s.%4$s, %3$s.%4$s) FOR ORDER BY pg_catalog.float_ops, '
			'FUNCTION 1 %6$s.scoreah_%7$s_support(internal), '
			'FUNCTION 2 scoreah_%4$s_format(internal)',
			c.opclass, c.dflt, v, c.typ, c.op, s, c.metric);
	END LOOP;
END
$do$;
