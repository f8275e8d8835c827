-- Vector functions and operators on real[]: l2_distance (<->),
-- inner_product, negative_inner_product (<#>), cosine_distance (<=>),
-- vector_dims, l2_norm, l2_normalize.  Values on small vectors,
-- commutativity, accuracy (double accumulation), NULL inputs (STRICT) and
-- every input error with its SQLSTATE.

-- Values on small vectors
SELECT l2_distance('{1,2,3}', '{4,6,3}') AS l2,
       inner_product('{1,2,3}', '{4,5,6}') AS ip,
       negative_inner_product('{1,2,3}', '{4,5,6}') AS nip,
       cosine_distance('{1,0}', '{0,1}') AS cos_orthogonal,
       cosine_distance('{1,1}', '{2,2}') AS cos_same_direction,
       cosine_distance('{1,0}', '{-1,0}') AS cos_opposite;
SELECT l2_distance('{1.5}', '{-1.5}') AS l2_1d,
       inner_product('{-2}', '{3}') AS ip_1d,
       cosine_distance('{-2}', '{3}') AS cos_1d;
SELECT vector_dims('{1,2,3}') AS dims3,
       vector_dims('{0}') AS dims1,
       l2_norm('{3,4}') AS norm,
       l2_norm('{0,0,0}') AS norm_zero;
SELECT l2_normalize('{3,4}') AS unit,
       l2_normalize('{0,0,-5}') AS unit_axis,
       l2_norm(l2_normalize('{1,2,3,4,5}')) BETWEEN 0.9999999 AND 1.0000001 AS unit_length;
-- the zero vector has no direction: l2_normalize returns it unchanged
SELECT l2_normalize('{0,0}') AS zero;
-- a non-default lower bound is still a one-dimensional vector
SELECT vector_dims('[0:2]={1,2,3}'), l2_distance('[5:6]={3,4}', '{0,0}');
-- l2_normalize's result starts at 1 whatever the argument's lower bound;
-- a long vector comes back whole and of unit length
SELECT l2_normalize('[0:1]={3,4}') AS unit, array_lower(l2_normalize('[0:1]={3,4}'), 1) AS lower;
SELECT array_length(u, 1) AS n, l2_norm(u) BETWEEN 0.999999 AND 1.000001 AS unit_length,
       u[1] = u[1000000] AND u[1] BETWEEN 0.000999 AND 0.001001 AS equal_parts
FROM (SELECT l2_normalize(array_fill(2::real, ARRAY[1000000])) AS u) s;

-- Operators call the same functions
SELECT '{1,2,3}'::real[] <-> '{1,2,4}' AS l2,
       '{1,2}'::real[] <#> '{3,4}' AS neg_ip,
       '{1,2}'::real[] <=> '{2,4}' AS cos,
       '{1,0}'::real[] <=> '{1,1}' = cosine_distance('{1,0}', '{1,1}') AS cos_same,
       '{1,2,3}'::real[] <-> '{3,2,1}' = l2_distance('{1,2,3}', '{3,2,1}') AS l2_same,
       '{1,2,3}'::real[] <#> '{3,2,1}' = -inner_product('{1,2,3}', '{3,2,1}') AS ip_same;

-- Commutativity (the operators are declared their own commutators)
SELECT a <-> b = b <-> a AS l2,
       a <#> b = b <#> a AS ip,
       a <=> b = b <=> a AS cos,
       inner_product(a, b) = inner_product(b, a) AS ip_fn
FROM (VALUES ('{0.1,-2.5,3.25,7}'::real[], '{4,0.5,-1,2.75}'::real[])) AS t(a, b);
SELECT oprname, oprcom::regoperator
FROM pg_operator
WHERE oprname IN ('<->', '<#>', '<=>') AND oprleft = 'real[]'::regtype
ORDER BY oprname;

-- Accuracy: distances accumulate in double, float4 inputs stay exact
-- a float sum of 1e8 + 1 - 1e8 would give 0
SELECT inner_product('{1e8,1,-1e8}', '{1,1,1}') AS ip_cancellation;
-- small angles: 1 - cos is about 5e-9, lost entirely in float arithmetic
SELECT cosine_distance('{1,1e-4}', '{1,0}') BETWEEN 4.9e-9 AND 5.1e-9 AS small_angle;
-- near-identical large vectors
SELECT l2_distance('{1000000,0}', '{1000001,0}') AS l2_large_close;
-- squares of large values overflow float4 but not float8
SELECT l2_norm('{3e38,3e38}') AS norm_near_float4_max,
       l2_distance('{3e38}', '{-3e38}') AS l2_near_float4_max,
       inner_product('{1e20}', '{1e20}') AS ip_large,
       cosine_distance('{3e38,3e38}', '{3e38,0}') AS cos_large;
-- tiny values: squares underflow float4 but not float8
SELECT l2_distance('{1e-30}', '{-1e-30}') AS l2_tiny,
       l2_norm('{1e-25,1e-25}') AS norm_tiny,
       cosine_distance('{1e-30,0}', '{2e-30,0}') AS cos_tiny,
       l2_normalize('{1e-30,0}') AS normalize_tiny;
-- rounding must not push the cosine distance below 0 or above 2
SELECT cosine_distance(v, v) AS self, cosine_distance(v, ARRAY[-v[1], -v[2], -v[3]]) AS opposite
FROM (VALUES ('{0.1,0.2,0.3}'::real[])) AS t(v);

-- Cosine distance with a zero vector is NaN (0/0), as in pgvector
SELECT cosine_distance('{0,0}', '{1,1}') AS zero_left,
       cosine_distance('{1,1}', '{0,0}') AS zero_right,
       '{0,0}'::real[] <=> '{0,0}' AS both_zero;

-- NULL inputs: the functions are STRICT, the result is NULL
SELECT l2_distance(NULL, '{1}') IS NULL AS l2,
       inner_product('{1}', NULL) IS NULL AS ip,
       negative_inner_product(NULL, NULL) IS NULL AS nip,
       cosine_distance(NULL, '{1}') IS NULL AS cos,
       vector_dims(NULL) IS NULL AS dims,
       l2_norm(NULL) IS NULL AS norm,
       l2_normalize(NULL) IS NULL AS normalize,
       (NULL::real[] <-> '{1}') IS NULL AS op_l2,
       ('{1}'::real[] <#> NULL) IS NULL AS op_ip,
       (NULL::real[] <=> NULL) IS NULL AS op_cos;

-- Errors: different dimensions
SELECT l2_distance('{1,2,3}', '{1,2,3,4}');
SELECT inner_product('{1,2,3,4}', '{1,2,3}');
SELECT negative_inner_product('{1}', '{1,2}');
SELECT cosine_distance('{1,2}', '{1}');
SELECT '{1,2,3}'::real[] <-> '{1,2}';
SELECT '{1,2,3}'::real[] <#> '{1,2}';
SELECT '{1,2,3}'::real[] <=> '{1,2}';

-- Errors: NULL elements
SELECT l2_distance('{1,NULL}', '{1,2}');
SELECT inner_product('{1,2}', '{NULL,2}');
SELECT vector_dims('{NULL}');
SELECT l2_norm('{1,NULL,3}');
SELECT l2_normalize('{NULL}');

-- Errors: multi-dimensional arrays
SELECT l2_distance('{{1,2},{3,4}}', '{1,2}');
SELECT cosine_distance('{1,2}', '{{1,2}}');
SELECT vector_dims('{{{1}}}');
SELECT l2_norm('{{1,2},{3,4}}');

-- Errors: NaN and infinite elements (the message gives the element)
SELECT l2_distance('{NaN}', '{1}');
SELECT l2_distance('{1,2,NaN}', '{1,2,3}');
SELECT inner_product('{1}', '{Infinity}');
SELECT cosine_distance('{1,-Infinity}', '{1,2}');
SELECT vector_dims('{1,NaN}');
SELECT l2_norm('{Infinity}');
SELECT l2_normalize('{-Infinity,0}');
SELECT '{1,2}'::real[] <#> '{NaN,2}';
-- the first argument is checked first
SELECT l2_distance('{NaN}', '{Infinity}');

-- Errors: empty arrays
SELECT l2_distance('{}', '{}');
SELECT inner_product('{1}', '{}');
SELECT vector_dims('{}');
SELECT l2_norm('{}');
SELECT l2_normalize('{}');
SELECT '{}'::real[] <=> '{}';

-- Other element types: float8[] does not resolve to these functions (its
-- cast to real[] is assignment-only); int[] is cast implicitly
SELECT l2_distance('{1,2}'::float8[], '{1,2}'::float8[]);
SELECT '{1,2}'::int[] <-> '{4,6}'::int[];
SELECT l2_distance('{1,2}'::float8[]::real[], '{1,2}');

-- SQLSTATEs of the errors
DO $$
DECLARE
	c text;
BEGIN
	FOREACH c IN ARRAY ARRAY[
		$q$SELECT l2_distance('{1,2,3}', '{1,2,3,4}')$q$,
		$q$SELECT l2_distance('{1,NULL}', '{1,2}')$q$,
		$q$SELECT l2_distance('{{1,2},{3,4}}', '{1,2}')$q$,
		$q$SELECT l2_distance('{NaN}', '{1}')$q$,
		$q$SELECT l2_distance('{1}', '{Infinity}')$q$,
		$q$SELECT l2_distance('{}', '{}')$q$]
	LOOP
		BEGIN
			EXECUTE c;
			RAISE NOTICE 'no error: %', c;
		EXCEPTION WHEN others THEN
			RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
		END;
	END LOOP;
END
$$;
