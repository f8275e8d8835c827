-- pgvector's vector and halfvec columns through the operator classes of
-- the scoreah_vector extension: every operator class gives, with
-- exhaustive settings, exactly a sequential scan's rows and order under
-- pgvector's own operators; inserts, VACUUM, every reordering_storage and
-- every bad input carry over.  Needs pgvector on the server (it is not in
-- Debian 12's archive); without it this file says so and stops, and
-- expected/vector_types_1.out is what it prints.
SELECT NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector') AS no_pgvector \gset
\if :no_pgvector
\echo 'skipped: pgvector is not installed on this server (build it from github.com/pgvector/pgvector to run this test)'
\quit
\endif

CREATE EXTENSION scoreah_vector CASCADE;
SELECT extname FROM pg_extension WHERE extname IN ('vector', 'scoreah', 'scoreah_vector') ORDER BY extname;
SELECT opcname, opcdefault, format_type(opcintype, NULL) AS type
FROM pg_opclass WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'scoreah')
ORDER BY opcname;
-- amvalidate checks every operator class
SELECT opcname, amvalidate(oid) FROM pg_opclass
WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'scoreah') ORDER BY opcname;

-- Rows from sin/cos: no two distances tie, so a sequential scan's order
-- is one order.
CREATE TABLE pv (id int PRIMARY KEY, e vector(8), h halfvec(8));
INSERT INTO pv
SELECT i, a::vector, a::halfvec
FROM (SELECT i, ARRAY(SELECT sin(i * 0.77 + j * 0.29 + i * j * 0.001)
					  FROM generate_series(1, 8) j)::real[] AS a
	  FROM generate_series(1, 3000) i) s;
CREATE TABLE pq (qid int, e vector(8), h halfvec(8));
INSERT INTO pq
SELECT k, a::vector, a::halfvec
FROM (SELECT k, ARRAY(SELECT cos(k * 1.9 + j * 0.61) FROM generate_series(1, 8) j)::real[] AS a
	  FROM generate_series(1, 3) k) s;

-- Helper: the distances a query returns, in order, by a sequential scan
-- or through the index
CREATE FUNCTION distances(q text, seq bool) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
	d float8[];
BEGIN
	PERFORM set_config('enable_seqscan', CASE WHEN seq THEN 'on' ELSE 'off' END, true);
	PERFORM set_config('enable_indexscan', CASE WHEN seq THEN 'off' ELSE 'on' END, true);
	EXECUTE q INTO d;
	RETURN d;
END
$$;

-- every operator class, exhaustive settings: exactly the sequential scan.
-- halfvec's rounding makes a few distances tie: then the distances in
-- order must be the same (rows that tie come in TID order from the index,
-- in any order from a sort).
SET scoreah.num_leaves_to_search = 1000;
SET scoreah.reordering_num_neighbors = 4000;
CREATE FUNCTION check_opclass(col text, opclass text, op text, options text DEFAULT '')
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	r text;
	dq text;
BEGIN
	EXECUTE format('CREATE INDEX pv_idx ON pv USING scoreah (%s %s) WITH (num_leaves = 20%s)',
				   col, opclass, options);
	FOR k IN 1..3 LOOP
		r := check_index(format(
			'SELECT id FROM pv ORDER BY %s %s (SELECT %s FROM pq WHERE qid = %s) LIMIT %s',
			col, op, col, k, CASE k WHEN 1 THEN 10 WHEN 2 THEN 500 ELSE 3000 END));
		dq := format('SELECT array_agg(d) FROM (SELECT %s %s (SELECT %s FROM pq WHERE qid = %s) AS d FROM pv ORDER BY 1 LIMIT 3000) s',
					 col, op, col, k);
		IF r LIKE '%DIFFERENT%' AND distances(dq, true) = distances(dq, false) THEN
			r := 'pv_idx: same distances in order, tied rows in another order';
		END IF;
		RETURN NEXT format('%s %s: %s', opclass, k, r);
	END LOOP;
	RETURN NEXT coalesce((SELECT string_agg(c, '; ') FROM scoreah_index_check('pv_idx') c), 'sound');
	DROP INDEX pv_idx;
END
$$;
SELECT check_opclass('e', 'vector_l2_ops', '<->');
SELECT check_opclass('e', 'vector_ip_ops', '<#>');
SELECT check_opclass('e', 'vector_cosine_ops', '<=>');
SELECT check_opclass('h', 'halfvec_l2_ops', '<->');
SELECT check_opclass('h', 'halfvec_ip_ops', '<#>');
SELECT check_opclass('h', 'halfvec_cosine_ops', '<=>');
-- the other ways of keeping re-ranking vectors, and brute-force scoring
SELECT check_opclass('e', 'vector_l2_ops', '<->', ', reordering_storage = table');
SELECT check_opclass('h', 'halfvec_cosine_ops', '<=>', ', reordering_storage = table');
SELECT check_opclass('h', 'halfvec_l2_ops', '<->', ', scoring = brute_force');
SELECT check_opclass('e', 'vector_ip_ops', '<#>', ', anisotropic_quantization_threshold = 0.2');

-- a vector column kept in half precision: distances of the rounded
-- vectors, the column's own when it holds halves (multiples of 1/1024
-- below 2); such values tie, so the distances are compared in order
CREATE TABLE pv16 (id int, e vector(8));
INSERT INTO pv16 SELECT i, ARRAY(SELECT round(sin(i * 0.77 + j * 0.29) * 1000) / 1024
								  FROM generate_series(1, 8) j)::real[]::vector
FROM generate_series(1, 2000) i;
CREATE INDEX ON pv16 USING scoreah (e vector_cosine_ops) WITH (num_leaves = 20, reordering_storage = float16);
SELECT distances(q, true) = distances(q, false) AS same_distances_in_order
FROM (SELECT 'SELECT array_agg(d) FROM (SELECT e <=> (SELECT e FROM pv16 WHERE id = 7) AS d FROM pv16 ORDER BY 1 LIMIT 2000) s' AS q) s;
DROP TABLE pv16;

-- the default operator classes, and what the index says of its column
CREATE INDEX pv_e ON pv USING scoreah (e) WITH (num_leaves = 20);
CREATE INDEX pv_h ON pv USING scoreah (h) WITH (num_leaves = 20);
SELECT c.relname, o.opcname
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_opclass o ON o.oid = i.indclass[0]
WHERE c.relname IN ('pv_e', 'pv_h') ORDER BY 1;
SELECT name, value FROM scoreah_index_info('pv_e')
WHERE name IN ('column_type', 'metric', 'dimensions', 'reordering_storage') ORDER BY name;
SELECT name, value FROM scoreah_index_info('pv_h')
WHERE name IN ('column_type', 'metric', 'dimensions', 'reordering_storage') ORDER BY name;
-- a halfvec column's vectors take half the bytes of a vector column's
SELECT (SELECT value::bigint FROM scoreah_index_info('pv_h') WHERE name = 'bytes_vectors') * 10 /
	   (SELECT value::bigint FROM scoreah_index_info('pv_e') WHERE name = 'bytes_vectors') AS half_to_float_tenths;

-- inserts, deletes, VACUUM: still exactly the sequential scan's order
INSERT INTO pv
SELECT i, a::vector, a::halfvec
FROM (SELECT i, ARRAY(SELECT cos(i * 0.53 + j * 0.47 + i * j * 0.002)
					  FROM generate_series(1, 8) j)::real[] AS a
	  FROM generate_series(3001, 4000) i) s;
DELETE FROM pv WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) pv;
SELECT check_index('SELECT id FROM pv ORDER BY e <-> (SELECT e FROM pq WHERE qid = 2) LIMIT 4000');
SELECT check_index('SELECT id FROM pv ORDER BY h <-> (SELECT h FROM pq WHERE qid = 3) LIMIT 4000');
SELECT count(*) AS problems FROM (SELECT scoreah_index_check('pv_e') UNION ALL SELECT scoreah_index_check('pv_h')) s;
SELECT name, value FROM scoreah_index_info('pv_e') WHERE name IN ('rows', 'rows_inserted_since_build') ORDER BY name;

-- bad input, as for real[]
SET enable_seqscan = off;
SELECT id FROM pv ORDER BY e <-> '[1,2,3]' LIMIT 1;
SELECT id FROM pv ORDER BY h <-> '[1,2,3]'::halfvec LIMIT 1;
-- a NULL query: every row, in no particular order, as a sequential scan
SELECT count(*) FROM (SELECT id FROM pv ORDER BY e <-> (SELECT NULL::vector) LIMIT 5000) s;
-- a zero vector under cosine: every distance is NaN
CREATE INDEX pv_e_cos ON pv USING scoreah (e vector_cosine_ops) WITH (num_leaves = 20);
SELECT count(*) FROM (SELECT id FROM pv ORDER BY e <=> '[0,0,0,0,0,0,0,0]' LIMIT 5000) s;
DROP INDEX pv_e_cos;
RESET enable_seqscan;
-- rows of another dimension in a column without a typmod
CREATE TABLE pv_free (id int, e vector);
INSERT INTO pv_free VALUES (1, '[1,2,3]'), (2, '[1,2,3,4]');
CREATE INDEX ON pv_free USING scoreah (e);
DELETE FROM pv_free WHERE id = 2;
CREATE INDEX pv_free_idx ON pv_free USING scoreah (e);
INSERT INTO pv_free VALUES (3, '[1,2,3,4]');
DROP TABLE pv_free;
-- the wrong type for the operator class
CREATE INDEX ON pv USING scoreah (e halfvec_l2_ops);
CREATE INDEX ON pv USING scoreah (e scoreah_l2_ops);
CREATE TABLE arr (v real[]);
CREATE INDEX ON arr USING scoreah (v vector_l2_ops);
DROP TABLE arr;
-- a halfvec column kept at twice its size is refused, by ALTER INDEX too
CREATE INDEX ON pv USING scoreah (h) WITH (reordering_storage = float32);
ALTER INDEX pv_h SET (reordering_storage = float32);

-- 16,000 dimensions, the most either type holds
CREATE TABLE wide (id int, e vector(16000), h halfvec(16000));
INSERT INTO wide SELECT i, a::vector, a::halfvec
FROM (SELECT i, ARRAY(SELECT sin(i * 0.3 + j * 0.001) FROM generate_series(1, 16000) j)::real[] AS a
	  FROM generate_series(1, 12) i) s;
CREATE INDEX wide_e ON wide USING scoreah (e) WITH (num_leaves = 3, dimensions_per_block = 40);
CREATE INDEX wide_h ON wide USING scoreah (h halfvec_cosine_ops) WITH (num_leaves = 3, dimensions_per_block = 40);
SELECT check_index('SELECT id FROM wide ORDER BY e <-> (SELECT e FROM wide WHERE id = 5) LIMIT 12');
SELECT check_index('SELECT id FROM wide ORDER BY h <=> (SELECT h FROM wide WHERE id = 7) LIMIT 12');
SELECT count(*) AS problems FROM (SELECT scoreah_index_check('wide_e') UNION ALL SELECT scoreah_index_check('wide_h')) s;
DROP TABLE wide;

RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
DROP FUNCTION check_opclass(text, text, text, text);
DROP FUNCTION distances(text, bool);
DROP TABLE pv, pq;
DROP EXTENSION scoreah_vector;
DROP EXTENSION vector;

-- pgvector in a schema of its own and a namesake operator <-> for its type
-- in this extension's schema (public, first on the search path of CREATE
-- EXTENSION): the operator classes still bind pgvector's operators, and an
-- index whose operator class orders by another operator is refused
CREATE SCHEMA vext;
CREATE EXTENSION vector SCHEMA vext;
CREATE FUNCTION namesake_dist(vext.vector, vext.vector) RETURNS float8
	LANGUAGE sql IMMUTABLE AS 'SELECT 42::float8';
CREATE OPERATOR <-> (LEFTARG = vext.vector, RIGHTARG = vext.vector, FUNCTION = namesake_dist);
CREATE EXTENSION scoreah_vector;
SELECT c.opcname, o.oprnamespace::regnamespace AS operator_schema,
	   (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
		WHERE d.classid = 'pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e') AS of_extension
FROM pg_opclass c JOIN pg_amop a ON a.amopfamily = c.opcfamily JOIN pg_operator o ON o.oid = a.amopopr
WHERE c.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'scoreah')
  AND c.opcname ~ '^(vector|halfvec)_' ORDER BY 1;
CREATE TABLE nv (id int, v vext.vector(3));
INSERT INTO nv SELECT i, ARRAY[i, 2 * i, 1]::real[]::vext.vector FROM generate_series(1, 50) i;
CREATE INDEX nv_v ON nv USING scoreah (v);
CREATE OPERATOR CLASS namesake_ops FOR TYPE vext.vector USING scoreah AS
	OPERATOR 1 public.<-> (vext.vector, vext.vector) FOR ORDER BY float_ops,
	FUNCTION 1 scoreah_l2_support(internal),
	FUNCTION 2 scoreah_vector_format(internal);
CREATE INDEX ON nv USING scoreah (v namesake_ops);
DROP TABLE nv;
DROP OPERATOR CLASS namesake_ops USING scoreah;
DROP OPERATOR <-> (vext.vector, vext.vector);
DROP FUNCTION namesake_dist(vext.vector, vext.vector);
DROP EXTENSION scoreah_vector;
DROP EXTENSION vector;
DROP SCHEMA vext;
