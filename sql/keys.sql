-- Key columns: an index carries columns after its vector whose conditions
-- (=, IN, and for integers <, <=, >=, >) are checked inside the index.
-- DDL and its errors, the plans (the conditions become Index Cond), and
-- results equal to a sequential scan's with exhaustive settings, for every
-- key type, through inserts, deletes and VACUUM.

-- Data: 600 rows of 8 dimensions from sin/cos; tenants i^2 mod 10 (0, 1, 4,
-- 5, 6 and 9, uneven),
-- a category text, a uuid, a bigint and a smallint, some NULL keys
CREATE TABLE kv (id int PRIMARY KEY, v real[], tenant int, cat text, u uuid, big bigint, small smallint);
INSERT INTO kv
SELECT i, ARRAY(SELECT (sin(i * 0.37 + j * 1.1) * (1 + (i % 3) * 0.3))::real FROM generate_series(1, 8) j),
	   CASE WHEN i % 97 = 0 THEN NULL ELSE (i * i) % 10 END,
	   CASE WHEN i % 89 = 0 THEN NULL ELSE 'cat' || (i % 4) END,
	   md5((i % 5)::text)::uuid,
	   (i % 7)::bigint * 1000000000000,
	   (i % 6)::smallint
FROM generate_series(1, 600) i;
ANALYZE kv;

-- DDL: any of the key types, several keys
CREATE INDEX kv_t ON kv USING scoreah (v, tenant) WITH (num_leaves = 8);
CREATE INDEX kv_c ON kv USING scoreah (v scoreah_cosine_ops, cat) WITH (num_leaves = 8);
CREATE INDEX kv_many ON kv USING scoreah (v scoreah_ip_ops, u, big, small, tenant) WITH (num_leaves = 8);
SELECT name, value FROM scoreah_index_info('kv_many') WHERE name IN ('key_columns', 'rows');
SELECT * FROM scoreah_index_check('kv_t');
SELECT * FROM scoreah_index_check('kv_many');

-- errors: one vector column; key types; collations
CREATE INDEX ON kv USING scoreah (tenant);
CREATE INDEX ON kv USING scoreah (v, v);
CREATE TABLE kv_bad (v real[], f float8, t text COLLATE "C");
CREATE INDEX ON kv_bad USING scoreah (v, f);
CREATE INDEX ON kv_bad USING scoreah (v, t);	-- "C" is deterministic: fine
DROP TABLE kv_bad;

-- Plans: key conditions become index conditions
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE tenant = 3 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
-- IN lists stay with the executor on PostgreSQL 15 when the key column
-- comes after the vector: its planner keeps = ANY conditions on later
-- index columns out of ordered index scans ...
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE tenant IN (1, 4, 5) ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
-- ... so the key column may come first: then IN is an index condition
CREATE INDEX kv_tv ON kv USING scoreah (tenant, v) WITH (num_leaves = 8);
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE tenant IN (1, 4, 5) ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE tenant = ANY ('{4,9}'::int[]) ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
RESET enable_seqscan;
SET scoreah.num_leaves_to_search = 100000;
SET scoreah.reordering_num_neighbors = 1000000;
SELECT check_index($$SELECT id FROM kv WHERE tenant IN (1, 4, 5, NULL) ORDER BY v <-> '{0,1,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant IN (1, 4, 5) AND tenant >= 4 ORDER BY v <-> '{0,1,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant = ANY ('{}'::int[]) ORDER BY v <-> '{0,1,0,0,0,0,0,0}' LIMIT 20$$);
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
SELECT * FROM scoreah_index_check('kv_tv');
SELECT name, value FROM scoreah_index_info('kv_tv') WHERE name = 'key_columns';
DROP INDEX kv_tv;
-- only the first column: a key column before the vector but not first
-- keeps its IN list with the executor (equality still goes in)
CREATE INDEX kv_ctv ON kv USING scoreah (cat, tenant, v) WITH (num_leaves = 8);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE cat = 'cat1' AND tenant IN (1, 4, 5) ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
RESET enable_seqscan;
DROP INDEX kv_ctv;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE tenant >= 2 AND tenant < 5 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE cat = 'cat1' ORDER BY v <=> '{1,0,0,0,0,0,0,0}' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM kv WHERE big = 2000000000000 AND small = 4::int2 AND id % 2 = 0
	ORDER BY v <#> '{1,0,0,0,0,0,0,0}' LIMIT 5;
RESET enable_seqscan;

-- Results: exhaustive settings give exactly the sequential scan's rows
SET scoreah.num_leaves_to_search = 100000;
SET scoreah.reordering_num_neighbors = 1000000;
SELECT check_index($$SELECT id FROM kv WHERE tenant = 4 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant IN (1, 4, 5, NULL) ORDER BY v <-> '{0,1,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant > 6 ORDER BY v <-> '{0,0,1,0,0,0,0,0}' LIMIT 500$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant <= 0 ORDER BY v <-> '{0,0,1,0,0,0,0,0}' LIMIT 500$$);
SELECT check_index($$SELECT id FROM kv WHERE cat = 'cat2' ORDER BY v <=> '{1,1,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE cat IN ('cat0', 'cat3') ORDER BY v <=> '{1,1,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE u = md5('2')::uuid AND big = 3000000000000 ORDER BY v <#> '{1,0,1,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kv WHERE small BETWEEN 1 AND 2 AND tenant = 9 ORDER BY v <#> '{1,0,1,0,0,0,0,0}' LIMIT 20$$);
-- contradictions and NULLs: no rows, and no error
SELECT check_index($$SELECT id FROM kv WHERE tenant = 3 AND tenant = 4 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant > 2147483647 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant = NULL ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant IN (NULL) ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5$$);
-- a NULL query returns the rows that pass, in no order
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM kv WHERE tenant = 6 ORDER BY v <-> NULL LIMIT 1000) s;
SELECT count(*) FROM kv WHERE tenant = 6;
RESET enable_seqscan;

-- at default settings too: every row a LIMIT asks for, in exact order
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
SET enable_seqscan = off;
SELECT count(*) AS rows, bool_and(ok) AS ordered FROM (
	SELECT d >= lag(d, 1, '-Infinity') OVER () AS ok
	FROM (SELECT v <-> '{1,0,0,0,0,0,0,0}' AS d FROM kv WHERE tenant IN (4, 9)
		  ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 1000) s) c;
SELECT count(*) FROM kv WHERE tenant IN (4, 9);
RESET enable_seqscan;

-- inserts after the build (new keys widen the leaves' summaries), deletes,
-- VACUUM, reused slots: still exactly the sequential scan's rows
INSERT INTO kv
SELECT i, ARRAY(SELECT (cos(i * 0.41 + j * 0.9))::real FROM generate_series(1, 8) j),
	   CASE WHEN i % 2 = 0 THEN 42 ELSE i % 10 END, 'cat9', md5('new')::uuid, -5, 1
FROM generate_series(601, 700) i;
DELETE FROM kv WHERE id % 5 = 0;
VACUUM kv;
INSERT INTO kv
SELECT i, ARRAY(SELECT (sin(i * 0.13 + j))::real FROM generate_series(1, 8) j), 42, 'cat9', NULL, NULL, NULL
FROM generate_series(701, 760) i;
SET scoreah.num_leaves_to_search = 100000;
SET scoreah.reordering_num_neighbors = 1000000;
SELECT check_index($$SELECT id FROM kv WHERE tenant = 42 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 200$$);
SELECT check_index($$SELECT id FROM kv WHERE cat = 'cat9' ORDER BY v <=> '{0,1,0,0,0,0,0,0}' LIMIT 200$$);
SELECT check_index($$SELECT id FROM kv WHERE u = md5('new')::uuid AND big < 0 ORDER BY v <#> '{0,1,0,0,0,0,0,0}' LIMIT 200$$);
SELECT check_index($$SELECT id FROM kv WHERE tenant = 9 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 200$$);
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
SELECT * FROM scoreah_index_check('kv_t');
SELECT * FROM scoreah_index_check('kv_c');
SELECT * FROM scoreah_index_check('kv_many');

-- an index built on an empty table (scores exactly) filters the same way
CREATE TABLE kv_empty (id int, v real[], tenant int);
CREATE INDEX kv_empty_t ON kv_empty USING scoreah (v, tenant);
INSERT INTO kv_empty SELECT id, v, tenant FROM kv;
SELECT check_index($$SELECT id FROM kv_empty WHERE tenant = 6 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 50$$);
DROP TABLE kv_empty;

-- domains: a vector column of a domain over real[], key columns of domains
-- over integer and text are read as their base types
CREATE DOMAIN emb AS real[] CHECK (cardinality(VALUE) = 8);
CREATE DOMAIN tenant_id AS integer CHECK (VALUE >= 0);
CREATE DOMAIN label AS text;
CREATE TABLE kd (id int, v emb, tenant tenant_id, cat label);
INSERT INTO kd SELECT id, v, tenant, cat FROM kv WHERE tenant >= 0 AND id % 3 <> 0;
CREATE INDEX kd_tc ON kd USING scoreah (v, tenant, cat);
INSERT INTO kd SELECT id, v, tenant, cat FROM kv WHERE tenant >= 0 AND id % 3 = 0;
SET scoreah.num_leaves_to_search = 100000;
SET scoreah.reordering_num_neighbors = 1000000;
SELECT check_index($$SELECT id FROM kd WHERE tenant = 42 ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 20$$);
SELECT check_index($$SELECT id FROM kd WHERE tenant >= 3 AND tenant <= 7 AND cat = 'cat2' ORDER BY v <-> '{0,1,0,0,0,0,0,0}' LIMIT 20$$);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM kd WHERE tenant = 42 AND cat = 'cat9' ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 5;
RESET enable_seqscan;
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
SELECT * FROM scoreah_index_check('kd_tc');
DROP TABLE kd;
DROP DOMAIN emb, tenant_id, label;

DROP TABLE kv;
