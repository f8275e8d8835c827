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

-- vector: L2 is the default, as for pgvector's own indexes
CREATE OPERATOR CLASS vector_l2_ops
	DEFAULT FOR TYPE vector USING scoreah AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_l2_support(internal),
	FUNCTION 2 scoreah_vector_format(internal);

CREATE OPERATOR CLASS vector_ip_ops
	FOR TYPE vector USING scoreah AS
	OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_ip_support(internal),
	FUNCTION 2 scoreah_vector_format(internal);

CREATE OPERATOR CLASS vector_cosine_ops
	FOR TYPE vector USING scoreah AS
	OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_cosine_support(internal),
	FUNCTION 2 scoreah_vector_format(internal);

-- halfvec
CREATE OPERATOR CLASS halfvec_l2_ops
	DEFAULT FOR TYPE halfvec USING scoreah AS
	OPERATOR 1 <-> (halfvec, halfvec) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_l2_support(internal),
	FUNCTION 2 scoreah_halfvec_format(internal);

CREATE OPERATOR CLASS halfvec_ip_ops
	FOR TYPE halfvec USING scoreah AS
	OPERATOR 1 <#> (halfvec, halfvec) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_ip_support(internal),
	FUNCTION 2 scoreah_halfvec_format(internal);

CREATE OPERATOR CLASS halfvec_cosine_ops
	FOR TYPE halfvec USING scoreah AS
	OPERATOR 1 <=> (halfvec, halfvec) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_cosine_support(internal),
	FUNCTION 2 scoreah_halfvec_format(internal);
