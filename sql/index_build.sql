-- CREATE INDEX ... USING scoreah: operator classes, column types,
-- unsupported index features, every WITH option (valid values and
-- out-of-range ones, cross-option checks), the limits on dimensions, the
-- GUCs and their bounds, bad rows at CREATE INDEX and at INSERT, NULL and
-- zero vectors, empty tables and tables with fewer rows than leaves.
--
-- Every index built here is checked with exhaustive settings (all leaves
-- searched, every candidate re-ranked): its order must then be exactly the
-- sequential scan's.  Rows are generated from sin/cos so that no two
-- distances tie and nothing depends on random().

-- Helper: build an index with the given operator class and options, check
-- it on three queries with its operator (LIMIT 10, 200, 200), drop it.
CREATE FUNCTION try_index(opclass text, options text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	op text := CASE opclass WHEN 'scoreah_l2_ops' THEN '<->'
		WHEN 'scoreah_ip_ops' THEN '<#>' ELSE '<=>' END;
	res text := '';
	r text;
BEGIN
	EXECUTE format('CREATE INDEX opt_idx ON opt USING scoreah (v %s) WITH (%s)', opclass, options);
	FOR k IN 1..3 LOOP
		r := check_index(format('SELECT id FROM opt ORDER BY v %s %L LIMIT %s',
								op, (SELECT q FROM opt_q WHERE qid = k), CASE k WHEN 1 THEN 10 ELSE 200 END));
		IF r <> format('opt_idx: same order, %s rows', CASE k WHEN 1 THEN 10 ELSE 200 END) THEN
			res := res || format('query %s: %s; ', k, r);
		END IF;
	END LOOP;
	EXECUTE 'DROP INDEX opt_idx';
	RETURN CASE WHEN res = '' THEN 'same order' ELSE res END;
END
$$;

-- Helper: run a query (SELECT id, distance AS d ... ORDER BY ...) through
-- the index; count its rows and check that the distances never go down by
-- more than 0.01 from one row to the next
CREATE FUNCTION check_near_order(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	used text := 'no index';
	n int := 0;
	ids int[] := '{}';
	prev float8;
	back float8 := 0;
	r record;
BEGIN
	PERFORM set_config('enable_seqscan', 'off', true);
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF line ~ 'Scan using' THEN
			used := substring(line from 'Scan using (\S+)');
		END IF;
	END LOOP;
	FOR r IN EXECUTE q LOOP
		n := n + 1;
		ids := ids || r.id;
		IF prev IS NOT NULL THEN
			back := greatest(back, prev - r.d);
		END IF;
		prev := r.d;
	END LOOP;
	PERFORM set_config('enable_seqscan', 'on', true);
	RETURN format('%s: %s rows, %s distinct, %s', used, n,
				  (SELECT count(DISTINCT i) FROM unnest(ids) i),
				  CASE WHEN back < 0.01 THEN 'near exact order' ELSE 'step back of ' || back END);
END
$$;

-- Exhaustive search and re-ranking for every check in this file
SET scoreah.num_leaves_to_search = 1000;
SET scoreah.reordering_num_neighbors = 1000;

-- The operator classes: l2 is the default for real[]
SELECT opc.opcname, opc.opcdefault, opc.opcintype::regtype,
       amop.amopopr::regoperator AS ordering_operator, amop.amoppurpose,
       amproc.amproc AS support_function
FROM pg_opclass opc
JOIN pg_am am ON am.oid = opc.opcmethod
JOIN pg_amop amop ON amop.amopfamily = opc.opcfamily
JOIN pg_amproc amproc ON amproc.amprocfamily = opc.opcfamily
WHERE am.amname = 'scoreah'
ORDER BY opc.opcname;
SELECT opc.opcname, amvalidate(opc.oid)
FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
WHERE am.amname = 'scoreah' ORDER BY 1;

-- Data for the options: 200 rows of 8 dimensions, and three queries
CREATE TABLE opt (id int PRIMARY KEY, v real[]);
INSERT INTO opt
SELECT i, ARRAY(SELECT (sin(i * 0.37 + j * 1.91) * (1 + (i % 7) * 0.1))::real
                FROM generate_series(1, 8) j)
FROM generate_series(1, 200) i;
CREATE TABLE opt_q (qid int, q real[]);
INSERT INTO opt_q
SELECT k, ARRAY(SELECT cos(k * 2.3 + j * 0.77)::real FROM generate_series(1, 8) j)
FROM generate_series(1, 3) k;

-- Each operator class, default options
SELECT try_index('scoreah_l2_ops', 'num_leaves = 0') AS l2;
SELECT try_index('scoreah_ip_ops', 'num_leaves = 0') AS ip;
SELECT try_index('scoreah_cosine_ops', 'num_leaves = 0') AS cosine;
-- the default operator class is l2
CREATE INDEX opt_default ON opt USING scoreah (v);
SELECT opc.opcname FROM pg_index i JOIN pg_opclass opc ON opc.oid = i.indclass[0]
WHERE i.indexrelid = 'opt_default'::regclass;
SELECT check_index(format('SELECT id FROM opt ORDER BY v <-> %L LIMIT 20', q)) FROM opt_q WHERE qid = 1;
DROP INDEX opt_default;

-- Valid values of every WITH option, at the bounds and in between
SELECT opclass, try_index(opclass, options), options
FROM (VALUES
	('scoreah_l2_ops', 'num_leaves = 1'),
	('scoreah_l2_ops', 'num_leaves = 7'),
	('scoreah_l2_ops', 'num_leaves = 200'),
	('scoreah_l2_ops', 'num_leaves = 10, num_leaves_to_search = 0'),
	('scoreah_l2_ops', 'num_leaves = 10, num_leaves_to_search = 3'),
	('scoreah_l2_ops', 'num_leaves = 10, num_leaves_to_search = 10'),
	('scoreah_l2_ops', 'num_leaves_to_search = 100000'),
	('scoreah_l2_ops', 'leaves_training_sample_size = 1000'),
	('scoreah_l2_ops', 'leaves_training_sample_size = 100000000'),
	('scoreah_l2_ops', 'leaves_training_iterations = 1'),
	('scoreah_l2_ops', 'leaves_training_iterations = 1000'),
	('scoreah_l2_ops', 'min_partition_size = 0'),
	('scoreah_l2_ops', 'min_partition_size = 1000000'),
	('scoreah_l2_ops', 'spherical = false'),
	('scoreah_cosine_ops', 'spherical = true'),
	('scoreah_ip_ops', 'spherical = true'),
	('scoreah_l2_ops', 'quantize_centroids = true'),
	('scoreah_ip_ops', 'quantize_centroids = true'),
	('scoreah_cosine_ops', 'quantize_centroids = true'),
	('scoreah_l2_ops', 'residual_quantization = false'),
	('scoreah_ip_ops', 'residual_quantization = false'),
	('scoreah_cosine_ops', 'residual_quantization = false, anisotropic_quantization_threshold = 0.2'),
	('scoreah_l2_ops', 'residual_quantization = true'),
	('scoreah_l2_ops', 'reordering_storage = float32'),
	('scoreah_l2_ops', 'reordering_storage = table'),
	('scoreah_ip_ops', 'reordering_storage = table'),
	('scoreah_cosine_ops', 'reordering_storage = table, scoring = brute_force'),
	('scoreah_l2_ops', 'random_init = false'),
	('scoreah_cosine_ops', 'random_init = false, spherical = true'),
	('scoreah_l2_ops', 'dimensions_per_block = 1'),
	('scoreah_l2_ops', 'dimensions_per_block = 3'),
	('scoreah_l2_ops', 'dimensions_per_block = 8'),
	('scoreah_l2_ops', 'dimensions_per_block = 16000'),
	('scoreah_l2_ops', 'anisotropic_quantization_threshold = 0.2'),
	('scoreah_l2_ops', 'anisotropic_quantization_threshold = 1000000'),
	('scoreah_ip_ops', 'anisotropic_quantization_threshold = 0.2'),
	('scoreah_ip_ops', 'anisotropic_quantization_threshold = 5'),
	('scoreah_cosine_ops', 'anisotropic_quantization_threshold = 0.2'),
	('scoreah_cosine_ops', 'anisotropic_quantization_threshold = 0.999'),
	('scoreah_l2_ops', 'training_sample_size = 1000'),
	('scoreah_l2_ops', 'training_sample_size = 100000000'),
	('scoreah_l2_ops', 'training_iterations = 1'),
	('scoreah_l2_ops', 'training_iterations = 1000'),
	('scoreah_l2_ops', 'scoring = ah'),
	('scoreah_l2_ops', 'scoring = brute_force'),
	('scoreah_ip_ops', 'scoring = brute_force'),
	('scoreah_cosine_ops', 'scoring = brute_force, spherical = true'),
	('scoreah_ip_ops', 'num_leaves = 5, num_leaves_to_search = 2, quantize_centroids = true, random_init = false'),
	('scoreah_ip_ops', 'dimensions_per_block = 4, anisotropic_quantization_threshold = 0.5, training_iterations = 3'),
	('scoreah_l2_ops', 'leaves_training_iterations = 3, min_partition_size = 5, dimensions_per_block = 2')
) AS t(opclass, options);

-- reordering_storage = float16 re-ranks with the distances of the rounded
-- vectors: every row comes once, and the order may only differ from the
-- exact one between near-ties
CREATE INDEX opt_f16_l2 ON opt USING scoreah (v) WITH (reordering_storage = float16, num_leaves = 5);
CREATE INDEX opt_f16_ip ON opt USING scoreah (v scoreah_ip_ops) WITH (reordering_storage = float16, num_leaves = 5);
CREATE INDEX opt_f16_cos ON opt USING scoreah (v scoreah_cosine_ops) WITH (reordering_storage = float16, num_leaves = 5);
SELECT qid, op, check_near_order(format('SELECT id, v %s %L AS d FROM opt ORDER BY v %s %L LIMIT 1000', op, q, op, q))
FROM opt_q, (VALUES ('<->'), ('<#>'), ('<=>')) AS o(op)
ORDER BY qid, op;
DROP INDEX opt_f16_l2, opt_f16_ip, opt_f16_cos;

-- Options are kept as reloptions
CREATE INDEX opt_with ON opt USING scoreah (v scoreah_cosine_ops)
	WITH (num_leaves = 4, spherical = on, scoring = 'brute_force');
SELECT reloptions FROM pg_class WHERE oid = 'opt_with'::regclass;
DROP INDEX opt_with;

-- Out-of-range and invalid option values
CREATE INDEX ON opt USING scoreah (v) WITH (num_leaves = -1);
CREATE INDEX ON opt USING scoreah (v) WITH (num_leaves = 100001);
CREATE INDEX ON opt USING scoreah (v) WITH (num_leaves = 'many');
CREATE INDEX ON opt USING scoreah (v) WITH (num_leaves_to_search = -1);
CREATE INDEX ON opt USING scoreah (v) WITH (num_leaves_to_search = 100001);
CREATE INDEX ON opt USING scoreah (v) WITH (leaves_training_sample_size = 999);
CREATE INDEX ON opt USING scoreah (v) WITH (leaves_training_sample_size = 100000001);
CREATE INDEX ON opt USING scoreah (v) WITH (leaves_training_iterations = 0);
CREATE INDEX ON opt USING scoreah (v) WITH (leaves_training_iterations = 1001);
CREATE INDEX ON opt USING scoreah (v) WITH (min_partition_size = -1);
CREATE INDEX ON opt USING scoreah (v) WITH (min_partition_size = 1000001);
CREATE INDEX ON opt USING scoreah (v) WITH (spherical = maybe);
CREATE INDEX ON opt USING scoreah (v) WITH (quantize_centroids = 2);
CREATE INDEX ON opt USING scoreah (v) WITH (random_init = 'yes please');
CREATE INDEX ON opt USING scoreah (v) WITH (residual_quantization = 'no way');
CREATE INDEX ON opt USING scoreah (v) WITH (dimensions_per_block = -1);
CREATE INDEX ON opt USING scoreah (v) WITH (dimensions_per_block = 16001);
CREATE INDEX ON opt USING scoreah (v) WITH (anisotropic_quantization_threshold = -0.1);
CREATE INDEX ON opt USING scoreah (v) WITH (anisotropic_quantization_threshold = 1000001);
CREATE INDEX ON opt USING scoreah (v) WITH (anisotropic_quantization_threshold = NaN);
CREATE INDEX ON opt USING scoreah (v) WITH (anisotropic_quantization_threshold = 'high');
CREATE INDEX ON opt USING scoreah (v) WITH (training_sample_size = 999);
CREATE INDEX ON opt USING scoreah (v) WITH (training_sample_size = 100000001);
CREATE INDEX ON opt USING scoreah (v) WITH (training_iterations = 0);
CREATE INDEX ON opt USING scoreah (v) WITH (training_iterations = 1001);
CREATE INDEX ON opt USING scoreah (v) WITH (scoring = exact);
CREATE INDEX ON opt USING scoreah (v) WITH (scoring = '');
CREATE INDEX ON opt USING scoreah (v) WITH (reordering_storage = float64);
CREATE INDEX ON opt USING scoreah (v) WITH (reordering_storage = '');
CREATE INDEX ON opt USING scoreah (v) WITH (lists = 10);

-- Cross-option checks (CREATE INDEX, before any row is read)
-- threshold: -1 = chosen by the build, 0 = off, other negatives refused
CREATE INDEX ON opt USING scoreah (v) WITH (anisotropic_quantization_threshold = -0.5);
CREATE INDEX ON opt USING scoreah (v scoreah_ip_ops) WITH (anisotropic_quantization_threshold = -2);
CREATE INDEX opt_t_off ON opt USING scoreah (v scoreah_ip_ops) WITH (anisotropic_quantization_threshold = 0);
CREATE INDEX opt_t_auto ON opt USING scoreah (v scoreah_ip_ops) WITH (anisotropic_quantization_threshold = -1);
SELECT c.relname, i.value FROM pg_class c, scoreah_index_info(c.oid) i
WHERE c.relname IN ('opt_t_off', 'opt_t_auto') AND i.name = 'anisotropic_quantization_threshold_chosen'
ORDER BY 1;
DROP INDEX opt_t_off, opt_t_auto;
-- quantize_centroids: auto (the default) routes by int8 centroids from 256
-- dimensions; on and off (or the boolean spellings) decide for themselves
CREATE TABLE qc (id int, v real[]);
INSERT INTO qc SELECT i, ARRAY(SELECT sin(i * 0.37 + d * 1.3)::real FROM generate_series(1, 256) d)
FROM generate_series(1, 300) i;
CREATE INDEX qc_auto ON qc USING scoreah (v) WITH (num_leaves = 4);
CREATE INDEX qc_auto255 ON qc USING scoreah ((v[1:255])) WITH (num_leaves = 4);
CREATE INDEX qc_off ON qc USING scoreah (v) WITH (num_leaves = 4, quantize_centroids = off);
CREATE INDEX qc_true ON qc USING scoreah ((v[1:255])) WITH (num_leaves = 4, quantize_centroids = true);
SELECT c.relname, i.name, i.value FROM pg_class c, scoreah_index_info(c.oid) i
WHERE c.relname LIKE 'qc\_%' AND i.name IN ('quantize_centroids', 'quantize_centroids_chosen')
ORDER BY 1, 2;
-- int8 routing finds a row's own leaf: each of these rows is its own nearest
SET enable_seqscan = off;
SET scoreah.num_leaves_to_search = 1;
DROP INDEX qc_off, qc_auto255, qc_true;
SELECT count(*) FILTER (WHERE (SELECT q.id FROM qc q ORDER BY q.v <-> p.v LIMIT 1) = p.id) >= 9 AS found
FROM qc p WHERE p.id % 30 = 0;
RESET scoreah.num_leaves_to_search;
RESET enable_seqscan;
DROP TABLE qc;
-- for cosine it is a similarity: below 1
CREATE INDEX ON opt USING scoreah (v scoreah_cosine_ops) WITH (anisotropic_quantization_threshold = 1);
CREATE INDEX ON opt USING scoreah (v scoreah_cosine_ops) WITH (anisotropic_quantization_threshold = 2.5);
-- no more leaves searched than exist
CREATE INDEX ON opt USING scoreah (v) WITH (num_leaves = 5, num_leaves_to_search = 6);
-- brute_force keeps no codes, so no threshold
CREATE INDEX ON opt USING scoreah (v) WITH (scoring = brute_force, anisotropic_quantization_threshold = 0.2);
-- re-ranking from the table needs a plain column
CREATE INDEX ON opt USING scoreah ((v || '{}'::real[])) WITH (reordering_storage = table);
CREATE INDEX ON opt USING scoreah ((l2_normalize(v)) scoreah_cosine_ops) WITH (reordering_storage = 'table');
-- spherical k-means needs unit vectors
CREATE INDEX ON opt USING scoreah (v) WITH (spherical = true);
CREATE INDEX ON opt USING scoreah (v scoreah_l2_ops) WITH (spherical = true, num_leaves = 3);
-- the checks also apply to an empty table
CREATE TABLE opt_empty (v real[]);
CREATE INDEX ON opt_empty USING scoreah (v) WITH (spherical = true);
CREATE INDEX ON opt_empty USING scoreah (v) WITH (num_leaves = 1, num_leaves_to_search = 2);
DROP TABLE opt_empty;
-- nothing was left behind by the failed builds
SELECT count(*) FROM pg_indexes WHERE tablename = 'opt';

-- ALTER INDEX validates option values too
CREATE INDEX opt_alter ON opt USING scoreah (v) WITH (num_leaves = 4);
ALTER INDEX opt_alter SET (num_leaves = 0);
ALTER INDEX opt_alter SET (training_iterations = 0);
ALTER INDEX opt_alter SET (scoring = fast);
ALTER INDEX opt_alter SET (num_leaves = 8, num_leaves_to_search = 2);
SELECT reloptions FROM pg_class WHERE oid = 'opt_alter'::regclass;
-- REINDEX builds with the new options (and checks them)
REINDEX INDEX opt_alter;
SELECT check_index(format('SELECT id FROM opt ORDER BY v <-> %L LIMIT 200', q)) FROM opt_q WHERE qid = 2;
-- rules between options are checked by ALTER INDEX too, so that no
-- REINDEX, TRUNCATE, VACUUM FULL or restore of a dump meets options it
-- refuses, those that need the metric or the column's type included
ALTER INDEX opt_alter SET (num_leaves_to_search = 9);
ALTER INDEX opt_alter SET (anisotropic_quantization_threshold = -0.5);
ALTER INDEX opt_alter SET (training_sample_size = 10);
ALTER INDEX opt_alter SET (scoring = brute_force, anisotropic_quantization_threshold = 0.2);
REINDEX INDEX opt_alter;
ALTER INDEX opt_alter SET (spherical = true);
BEGIN;
ALTER INDEX opt_alter RESET (num_leaves_to_search);
ALTER INDEX opt_alter SET (num_leaves = 5, spherical = true);
ROLLBACK;
SELECT reloptions FROM pg_class WHERE oid = 'opt_alter'::regclass;
REINDEX INDEX opt_alter;
CREATE INDEX opt_alter_cos ON opt USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 4);
ALTER INDEX opt_alter_cos SET (anisotropic_quantization_threshold = 2);
ALTER INDEX opt_alter_cos SET (anisotropic_quantization_threshold = 0.5, spherical = true);
SELECT reloptions FROM pg_class WHERE oid = 'opt_alter_cos'::regclass;
-- other changes of an index, and of other relations, do not meet the check
ALTER INDEX opt_alter_cos RENAME TO opt_alter_cosine;
ALTER TABLE opt SET (fillfactor = 90);
ALTER TABLE opt RESET (fillfactor);
DROP INDEX opt_alter, opt_alter_cosine;
-- a CREATE INDEX CONCURRENTLY whose build fails leaves an invalid index
-- of no pages: the introspection functions say so
CREATE INDEX CONCURRENTLY opt_cic ON opt USING scoreah (v) WITH (spherical = true);
SELECT indisvalid, pg_relation_size('opt_cic') FROM pg_index WHERE indexrelid = 'opt_cic'::regclass;
SELECT * FROM scoreah_index_info('opt_cic');
SELECT * FROM scoreah_index_check('opt_cic');
DROP INDEX opt_cic;

-- Dimensions: at most 16000, and at most 488 PQ blocks (dimensions /
-- dimensions_per_block, rounded up) fit a page of codes
CREATE TABLE wide (id int, v real[]);
INSERT INTO wide VALUES (1, array_fill(0.5::real, ARRAY[2000]));
-- without the option, dimensions per block follow the width
CREATE INDEX wide_auto ON wide USING scoreah (v);
SELECT name, value FROM scoreah_index_info('wide_auto')
WHERE name IN ('dimensions_per_block', 'pq_blocks') ORDER BY name;
DROP INDEX wide_auto;
CREATE INDEX ON wide USING scoreah (v) WITH (dimensions_per_block = 4);
CREATE INDEX wide_idx ON wide USING scoreah (v) WITH (dimensions_per_block = 5);
-- ALTER INDEX checks the blocks against a trained index's width
ALTER INDEX wide_idx SET (dimensions_per_block = 2);
ALTER INDEX wide_idx SET (dimensions_per_block = 6);
ALTER INDEX wide_idx SET (dimensions_per_block = 5);
-- brute_force keeps no codes: any dimensions_per_block
CREATE INDEX wide_bf ON wide USING scoreah (v) WITH (scoring = brute_force);
INSERT INTO wide VALUES (2, array_fill(0.25::real, ARRAY[2000])), (3, array_fill(-1::real, ARRAY[2000]));
SELECT check_index(format('SELECT id FROM wide ORDER BY v <-> %L LIMIT 3', array_fill(0.3::real, ARRAY[2000])));
DROP INDEX wide_bf;
SELECT check_index(format('SELECT id FROM wide ORDER BY v <-> %L LIMIT 3', array_fill(0.3::real, ARRAY[2000])));
TRUNCATE wide;
DROP INDEX wide_idx;
INSERT INTO wide VALUES (1, array_fill(0.5::real, ARRAY[16001]));
CREATE INDEX ON wide USING scoreah (v) WITH (scoring = brute_force);
TRUNCATE wide;
INSERT INTO wide VALUES (1, array_fill(0.5::real, ARRAY[16000]));
CREATE INDEX wide_idx ON wide USING scoreah (v) WITH (dimensions_per_block = 40);
INSERT INTO wide VALUES (2, array_fill(0.25::real, ARRAY[16000]));
SELECT check_index(format('SELECT id FROM wide ORDER BY v <-> %L LIMIT 3', array_fill(0.3::real, ARRAY[16000])));
DROP TABLE wide;
-- a block wider than the vector is one block of all of it (sized so, not
-- by the option's value)
CREATE TABLE narrow (id int, v real[]);
INSERT INTO narrow SELECT i, ARRAY[sin(i), cos(i), sin(2 * i)]::real[] FROM generate_series(1, 300) i;
CREATE INDEX narrow_idx ON narrow USING scoreah (v) WITH (dimensions_per_block = 16000, num_leaves = 4);
SELECT name, value FROM scoreah_index_info('narrow_idx')
WHERE name IN ('dimensions_per_block', 'pq_blocks') ORDER BY name;
DROP TABLE narrow;
-- vectors of denormal elements (norms near 4e-39): their scale, 2^127,
-- is past what a float holds, and they index and search all the same
CREATE TABLE tiny (id int, v real[]);
INSERT INTO tiny SELECT i, ARRAY[1e-39 * (1 + sin(i)), 2e-39 * (1 + cos(i)), 3e-39 * (1 + sin(2 * i))]::real[]
FROM generate_series(1, 300) i;
CREATE INDEX tiny_l2 ON tiny USING scoreah (v) WITH (num_leaves = 4);
CREATE INDEX tiny_ip ON tiny USING scoreah (v scoreah_ip_ops) WITH (num_leaves = 4);
SET scoreah.num_leaves_to_search = 4;
SET scoreah.reordering_num_neighbors = 300;
SELECT check_index('SELECT id FROM tiny ORDER BY v <-> ''{1e-39,2e-39,0}'' LIMIT 10');
SELECT check_index('SELECT id FROM tiny ORDER BY v <#> ''{1e-39,2e-39,0}'' LIMIT 10');
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
DROP TABLE tiny;

-- Columns of other types: there is no operator class for them
CREATE TABLE other (i int[], d float8[], t text, r real);
CREATE INDEX ON other USING scoreah (i);
CREATE INDEX ON other USING scoreah (d);
CREATE INDEX ON other USING scoreah (t);
CREATE INDEX ON other USING scoreah (r);
CREATE INDEX ON other USING scoreah (d scoreah_l2_ops);
CREATE INDEX ON other USING scoreah (i scoreah_cosine_ops);
CREATE INDEX ON other USING scoreah (r scoreah_ip_ops);
-- an expression of type real[] is fine
CREATE INDEX other_expr ON other USING scoreah ((d::real[]));
DROP TABLE other;

-- Unsupported index features
CREATE TABLE feat (id int, v real[]);
CREATE INDEX ON feat USING scoreah (v, id);	-- a key column: fine (sql/keys.sql)
CREATE INDEX ON feat USING scoreah (v) INCLUDE (id);
CREATE UNIQUE INDEX ON feat USING scoreah (v);
CREATE INDEX ON feat USING scoreah (v DESC);
CREATE INDEX ON feat USING scoreah (v NULLS FIRST);
DROP TABLE feat;

-- GUCs: defaults, bounds, reserved prefix
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
SHOW scoreah.num_leaves_to_search;
SHOW scoreah.reordering_num_neighbors;
SHOW scoreah.force_scalar_kernels;
SELECT name, setting, min_val, max_val, vartype, context
FROM pg_settings WHERE name LIKE 'scoreah.%' ORDER BY name;
SET scoreah.num_leaves_to_search = 0;
SET scoreah.num_leaves_to_search = 100000;
SET scoreah.num_leaves_to_search = -1;
SET scoreah.num_leaves_to_search = 100001;
SET scoreah.num_leaves_to_search = 'all';
SHOW scoreah.num_leaves_to_search;
SET scoreah.reordering_num_neighbors = 0;
SET scoreah.reordering_num_neighbors = 1000000;
SET scoreah.reordering_num_neighbors = -1;
SET scoreah.reordering_num_neighbors = 1000001;
SHOW scoreah.reordering_num_neighbors;
SET scoreah.force_scalar_kernels = on;
SET scoreah.force_scalar_kernels = 'sometimes';
SHOW scoreah.force_scalar_kernels;
RESET scoreah.force_scalar_kernels;
-- unknown names under the extension's prefix are rejected
SET scoreah.foo = 1;
SET scoreah.num_leaves = 10;
SELECT set_config('scoreah.bar', 'x', false);
SHOW scoreah.foo;
SET scoreah.num_leaves_to_search = 1000;
SET scoreah.reordering_num_neighbors = 1000;

-- Bad rows at CREATE INDEX: the build fails and names the problem
CREATE TABLE bad (id int, v real[]);
INSERT INTO bad SELECT i, ARRAY[sin(i), cos(i), sin(2 * i)]::real[] FROM generate_series(1, 50) i;
BEGIN;
INSERT INTO bad VALUES (100, '{1,2,3,4}');
CREATE INDEX bad_idx ON bad USING scoreah (v);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{1,2}');
CREATE INDEX bad_idx ON bad USING scoreah (v);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{1,NaN,3}');
CREATE INDEX bad_idx ON bad USING scoreah (v);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{1,2,Infinity}');
CREATE INDEX bad_idx ON bad USING scoreah (v);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{-Infinity,2,3}');
CREATE INDEX bad_idx ON bad USING scoreah (v scoreah_cosine_ops);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{1,NULL,3}');
CREATE INDEX bad_idx ON bad USING scoreah (v);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{{1,2,3},{4,5,6}}');
CREATE INDEX bad_idx ON bad USING scoreah (v scoreah_ip_ops);
ROLLBACK;
BEGIN;
INSERT INTO bad VALUES (100, '{}');
CREATE INDEX bad_idx ON bad USING scoreah (v);
ROLLBACK;
-- the first row fixes the dimension
CREATE TABLE bad_first (id int, v real[]);
INSERT INTO bad_first VALUES (1, '{1,2}'), (2, '{1,2,3}');
CREATE INDEX ON bad_first USING scoreah (v);
DROP TABLE bad_first;

-- Bad rows at INSERT after build: the insert fails, nothing is added
CREATE INDEX bad_idx ON bad USING scoreah (v) WITH (num_leaves = 4);
INSERT INTO bad VALUES (100, '{1,2,3,4}');
INSERT INTO bad VALUES (100, '{1,2}');
INSERT INTO bad VALUES (100, '{1,NaN,3}');
INSERT INTO bad VALUES (100, '{1,2,Infinity}');
INSERT INTO bad VALUES (100, '{1,NULL,3}');
INSERT INTO bad VALUES (100, '{{1,2,3},{4,5,6}}');
INSERT INTO bad VALUES (100, '{}');
UPDATE bad SET v = '{1,2}' WHERE id = 1;
-- one bad row fails the whole statement
INSERT INTO bad VALUES (101, '{0.5,0.5,0.5}'), (102, '{NaN,0,0}');
SELECT count(*) FROM bad;
SELECT check_index('SELECT id FROM bad ORDER BY v <-> ''{0.1,0.2,0.3}'' LIMIT 100');

-- NULL vectors are indexed apart: an index scan returns them after every
-- other row, as a sequential scan sorts them
INSERT INTO bad VALUES (200, NULL), (201, NULL);
SELECT check_index('SELECT id FROM bad ORDER BY v <-> ''{0.1,0.2,0.3}'' LIMIT 50');
SELECT check_index('SELECT id FROM bad ORDER BY v <-> ''{0.1,0.2,0.3}'' LIMIT 1000');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM bad ORDER BY v <-> '{0.1,0.2,0.3}' LIMIT 1000) s;
SELECT count(*) FROM (SELECT id FROM bad ORDER BY v <-> '{0.1,0.2,0.3}' LIMIT 1000) s WHERE id >= 200;
RESET enable_seqscan;
-- NULL vectors present at CREATE INDEX too
REINDEX INDEX bad_idx;
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM bad ORDER BY v <-> '{0.1,0.2,0.3}' LIMIT 1000) s;
RESET enable_seqscan;
DROP TABLE bad;

-- Zero vectors: ordinary rows under l2 and inner product; under cosine
-- they have no direction (their distance is NaN) and come after every
-- other row, as NaN sorts after every number
CREATE TABLE zero (id int, v real[]);
INSERT INTO zero SELECT i, ARRAY[sin(i), cos(i)]::real[] FROM generate_series(1, 30) i;
INSERT INTO zero VALUES (0, '{0,0}');
CREATE INDEX zero_l2 ON zero USING scoreah (v);
CREATE INDEX zero_ip ON zero USING scoreah (v scoreah_ip_ops);
CREATE INDEX zero_cos ON zero USING scoreah (v scoreah_cosine_ops);
INSERT INTO zero VALUES (-1, '{0,-0}');
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE id <= 0) AS zeros, count(*) AS total
FROM (SELECT id FROM zero ORDER BY v <-> '{1,1}' LIMIT 100) s;
SELECT count(*) FILTER (WHERE id <= 0) AS zeros, count(*) AS total
FROM (SELECT id FROM zero ORDER BY v <#> '{1,1}' LIMIT 100) s;
SELECT count(*) FILTER (WHERE id <= 0) AS zeros, count(*) AS total
FROM (SELECT id FROM zero ORDER BY v <=> '{1,1}' LIMIT 100) s;
RESET enable_seqscan;
-- the other rows come in the exact order, the zero vectors last
SELECT check_index('SELECT id FROM zero WHERE id > 0 ORDER BY v <=> ''{1,1}'' LIMIT 100');
SELECT array_agg(id) FROM (SELECT id FROM zero ORDER BY v <=> '{1,1}' LIMIT 100) s WHERE id <= 0;
SET enable_seqscan = off;
SELECT (array_agg(id))[31:32] AS last_two FROM (SELECT id FROM zero ORDER BY v <=> '{1,1}' LIMIT 100) s;
RESET enable_seqscan;
DROP TABLE zero;

-- Empty table: the index is built untrained (one leaf, exact scoring)
CREATE TABLE empty (id int, v real[]);
CREATE INDEX empty_l2 ON empty USING scoreah (v);
CREATE INDEX empty_cos ON empty USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 10);
-- nothing to find yet, whatever the query's dimension
SET enable_seqscan = off;
SELECT id FROM empty ORDER BY v <-> '{1,2,3}' LIMIT 5;
SELECT id FROM empty ORDER BY v <=> '{1}' LIMIT 5;
RESET enable_seqscan;
-- the first row fixes the dimension
INSERT INTO empty SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::real[] FROM generate_series(1, 100) i;
INSERT INTO empty VALUES (1000, '{1,2,3,4}');
INSERT INTO empty VALUES (1000, '{1,NaN,3}');
SELECT check_index('SELECT id FROM empty ORDER BY v <-> ''{0.3,-0.2,0.9}'' LIMIT 100');
SELECT check_index('SELECT id FROM empty ORDER BY v <=> ''{0.3,-0.2,0.9}'' LIMIT 10');
SET enable_seqscan = off;
SELECT id FROM empty ORDER BY v <-> '{0.3,-0.2}' LIMIT 5;
RESET enable_seqscan;
-- a table of NULL vectors has no rows to index either
CREATE TABLE all_null (v real[]);
INSERT INTO all_null VALUES (NULL), (NULL);
CREATE INDEX all_null_idx ON all_null USING scoreah (v scoreah_ip_ops);
DROP TABLE all_null;
-- REINDEX trains it
REINDEX TABLE empty;
SELECT check_index('SELECT id FROM empty ORDER BY v <-> ''{0.3,-0.2,0.9}'' LIMIT 100');
SELECT check_index('SELECT id FROM empty ORDER BY v <=> ''{0.3,-0.2,0.9}'' LIMIT 100');
DROP TABLE empty;

-- Fewer rows than num_leaves: as many leaves as rows, with a NOTICE
CREATE TABLE few (id int, v real[]);
INSERT INTO few SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7), cos(i * 2.1)]::real[] FROM generate_series(1, 20) i;
CREATE INDEX few_l2 ON few USING scoreah (v) WITH (num_leaves = 50, num_leaves_to_search = 40);
CREATE INDEX few_ip ON few USING scoreah (v scoreah_ip_ops) WITH (num_leaves = 21);
CREATE INDEX few_cos ON few USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 20);
SELECT check_index('SELECT id FROM few ORDER BY v <-> ''{1,0,0,0}'' LIMIT 20');
SELECT check_index('SELECT id FROM few ORDER BY v <#> ''{1,0,0,0}'' LIMIT 20');
SELECT check_index('SELECT id FROM few ORDER BY v <=> ''{1,0,0,0}'' LIMIT 20');
-- even with the index's default number of leaves searched, every row comes
SET scoreah.num_leaves_to_search = 0;
SET scoreah.reordering_num_neighbors = 3;
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM few ORDER BY v <-> '{1,0,0,0}' LIMIT 100) s;
RESET enable_seqscan;
DROP TABLE few;

DROP TABLE opt, opt_q;
DROP FUNCTION try_index(text, text);
DROP FUNCTION check_near_order(text);
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;

-- float16 re-ranking vectors cannot hold magnitudes past 65504: an error,
-- not a silent infinity
CREATE TABLE f16big (id int, v real[]);
INSERT INTO f16big SELECT i, ARRAY[i * 1000, 0]::real[] FROM generate_series(1, 65) i;
INSERT INTO f16big VALUES (66, '{100000, 0}');
CREATE INDEX f16big_idx ON f16big USING scoreah (v) WITH (reordering_storage = float16, num_leaves = 2);
DELETE FROM f16big WHERE id = 66;
CREATE INDEX f16big_idx ON f16big USING scoreah (v) WITH (reordering_storage = float16, num_leaves = 2);
INSERT INTO f16big VALUES (101, '{-70000, 0}');
DROP TABLE f16big;

-- the training sample must fit maintenance_work_mem; the error says how
-- many rows did
CREATE TABLE memtest (id int, v real[]);
INSERT INTO memtest SELECT i, array_fill((i % 7)::real, ARRAY[2000]) FROM generate_series(1, 300) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX memtest_idx ON memtest USING scoreah (v) WITH (dimensions_per_block = 5);
-- a table of fewer rows than that is sampled whole, however little memory
CREATE TABLE memsmall AS SELECT * FROM memtest WHERE id <= 10;
CREATE INDEX memsmall_idx ON memsmall USING scoreah (v) WITH (dimensions_per_block = 5);
SELECT name, value FROM scoreah_index_info('memsmall_idx') WHERE name IN ('rows', 'trained') ORDER BY name;
DROP TABLE memsmall;
-- sample sizes given as options: the sample grows until memory runs out
CREATE INDEX memtest_idx ON memtest USING scoreah (v)
	WITH (dimensions_per_block = 5, leaves_training_sample_size = 1000, training_sample_size = 1000);
RESET maintenance_work_mem;
DROP TABLE memtest;

-- training memory is counted once (the codebooks train on the sample's
-- residuals in place): 3,000 rows of 100 dimensions build within 1 MB, on
-- a sample of three quarters of it
CREATE TABLE memfit (id int, v real[]);
INSERT INTO memfit SELECT i, ARRAY(SELECT ((i * 7 + d * 13) % 101)::real
	FROM generate_series(1, 100) d WHERE i > 0) FROM generate_series(1, 3000) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX memfit_idx ON memfit USING scoreah (v);
SELECT value FROM scoreah_index_info('memfit_idx') WHERE name = 'training_sample_rows';
-- 100 leaves' centers and k-means arrays beside that sample do not fit: the
-- sample shrinks to what does (at least 10 rows a leaf), and the index is
-- searched as any other
DROP INDEX memfit_idx;
CREATE INDEX memfit_idx ON memfit USING scoreah (v) WITH (num_leaves = 100);
SELECT value FROM scoreah_index_info('memfit_idx') WHERE name IN ('num_leaves', 'training_sample_rows') ORDER BY name;
SET enable_seqscan = off;
SELECT count(*) = 10 AS ten_rows FROM (SELECT id FROM memfit
	ORDER BY v <-> (SELECT v FROM memfit WHERE id = 7) LIMIT 10) s;
SELECT id FROM memfit ORDER BY v <-> (SELECT v FROM memfit WHERE id = 7) LIMIT 1;
RESET enable_seqscan;
-- but 200 leaves would leave fewer than 10 rows a leaf: an error
DROP INDEX memfit_idx;
CREATE INDEX memfit_idx ON memfit USING scoreah (v) WITH (num_leaves = 200);
RESET maintenance_work_mem;
DROP TABLE memfit;

-- Calibration: one leaf is calibrated (its re-ranking depths), and so is
-- scoring = brute_force (routing alone); num_leaves near the sample's size
-- leaves no rows to hold out, and info says why
CREATE TABLE calib (id int, v real[]);
INSERT INTO calib SELECT i, ARRAY(SELECT (sin(i * 0.37 + j * 1.3) + cos(i * j * 0.011))::real
	FROM generate_series(1, 16) j) FROM generate_series(1, 3000) i;
CREATE INDEX calib_idx ON calib USING scoreah (v) WITH (num_leaves = 1);
SELECT name, value ~ '^recall@10 of \d+ held-out' AS measured,
	value ~ '\(calibrated recall|out of reach' AS chosen
	FROM scoreah_index_info('calib_idx') WHERE name ~ '^(calibration|target_recall_0.95)' ORDER BY name;
DROP INDEX calib_idx;
CREATE INDEX calib_idx ON calib USING scoreah (v) WITH (num_leaves = 20, scoring = brute_force);
SELECT name, value ~ '^recall@10 of \d+ held-out' AS measured
	FROM scoreah_index_info('calib_idx') WHERE name = 'calibration';
-- the same recall at every re-ranking depth: scores are exact
SELECT count(*) > 1 AND bool_and((SELECT count(DISTINCT m[1]) FROM regexp_matches(value, ': ([0-9.]+)', 'g') m) = 1) AS depth_free
	FROM scoreah_index_info('calib_idx') WHERE name ~ '^calibration_leaves_';
DROP INDEX calib_idx;
CREATE INDEX calib_idx ON calib USING scoreah (v) WITH (num_leaves = 2990);
SELECT value FROM scoreah_index_info('calib_idx') WHERE name = 'calibration';
DROP TABLE calib;
