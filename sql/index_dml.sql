-- Changes after CREATE INDEX: inserts (also across many pages and with
-- vectors longer than a page), DELETE and VACUUM (dead rows never come
-- back, freed heap slots are reused), UPDATE (HOT and not), rolled-back
-- inserts, TRUNCATE, VACUUM FULL, REINDEX (also CONCURRENTLY), unlogged
-- tables.  After each change the index must give, with exhaustive
-- settings, exactly the order of a sequential scan, and
-- scoreah_index_check() must find nothing wrong.
--
-- Rows come from sin/cos (no ties, no random()).

-- Helper: check_index on the whole of table dml for two queries and the
-- three operators, with the structural check of the three indexes
CREATE FUNCTION check_dml() RETURNS TABLE (query int, op text, result text) LANGUAGE plpgsql AS $$
DECLARE
	n int := (SELECT count(*) FROM dml) + 10;
BEGIN
	FOR k IN 1..2 LOOP
		query := k;
		FOREACH op IN ARRAY ARRAY['<->', '<#>', '<=>'] LOOP
			result := check_index(format('SELECT id FROM dml ORDER BY v %s %L LIMIT %s', op,
				ARRAY(SELECT cos(k * 2.9 + j * 0.83)::real FROM generate_series(1, 6) j), n));
			RETURN NEXT;
		END LOOP;
	END LOOP;
	query := NULL;
	op := 'check';
	result := coalesce((SELECT string_agg(c, '; ') FROM (
		SELECT scoreah_index_check('dml_l2') c UNION ALL
		SELECT scoreah_index_check('dml_ip') UNION ALL
		SELECT scoreah_index_check('dml_cos')) s), 'no problem found');
	RETURN NEXT;
END
$$;

-- Helper: the row counts scoreah_index_info() reports
CREATE FUNCTION index_rows(idx regclass) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(name || '=' || value, ', ' ORDER BY name)
	FROM scoreah_index_info(idx)
	WHERE name IN ('rows', 'rows_built', 'rows_inserted_since_build', 'trained', 'dimensions')
$$;

SET scoreah.num_leaves_to_search = 1000;
SET scoreah.reordering_num_neighbors = 1000;

-- A table of 200 rows of 6 dimensions and an index of each kind
CREATE TABLE dml (id int PRIMARY KEY, v real[], note text) WITH (autovacuum_enabled = off);
INSERT INTO dml
SELECT i, ARRAY(SELECT (sin(i * 0.71 + j * 1.37) * (1 + (i % 5) * 0.25))::real FROM generate_series(1, 6) j), 'built'
FROM generate_series(1, 200) i;
CREATE INDEX dml_l2 ON dml USING scoreah (v) WITH (num_leaves = 8);
CREATE INDEX dml_ip ON dml USING scoreah (v scoreah_ip_ops) WITH (num_leaves = 8);
CREATE INDEX dml_cos ON dml USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 8, reordering_storage = table);
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');

-- Inserts after build are found
INSERT INTO dml
SELECT i, ARRAY(SELECT (cos(i * 0.53 + j * 2.11) * (1 + (i % 4) * 0.3))::real FROM generate_series(1, 6) j), 'inserted'
FROM generate_series(201, 400) i;
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');
-- a new row is its own nearest neighbour
SET enable_seqscan = off;
SELECT id FROM dml ORDER BY v <-> (SELECT v FROM dml WHERE id = 333) LIMIT 1;
SELECT id FROM dml ORDER BY v <=> (SELECT v FROM dml WHERE id = 333) LIMIT 1;
RESET enable_seqscan;

-- Rows of a rolled-back insert are not returned
BEGIN;
INSERT INTO dml VALUES (1000, '{9,9,9,9,9,9}', 'rolled back');
-- the transaction sees its own row through the index
SET LOCAL enable_seqscan = off;
SELECT id FROM dml ORDER BY v <-> '{9,9,9,9,9,9}' LIMIT 1;
ROLLBACK;
SELECT * FROM check_dml();
SET enable_seqscan = off;
SELECT id FROM dml ORDER BY v <-> '{9,9,9,9,9,9}' LIMIT 1;
RESET enable_seqscan;

-- DELETE: deleted rows are not returned, before and after VACUUM
DELETE FROM dml WHERE id % 3 = 0;
SELECT * FROM check_dml();
-- dead rows take no place among the candidates (dml_cos re-ranks from
-- the table and drops them early): small batches still give every row
SET scoreah.num_leaves_to_search = 1;
SET scoreah.reordering_num_neighbors = 3;
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id % 3 = 0) AS deleted
FROM (SELECT id FROM dml ORDER BY v <-> '{1,1,0,0,0,0}' LIMIT 1000) s;
SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id % 3 = 0) AS deleted
FROM (SELECT id FROM dml ORDER BY v <=> '{1,1,0,0,0,0}' LIMIT 1000) s;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM dml WHERE id % 40 = 1 ORDER BY v <=> '{1,1,0,0,0,0}' LIMIT 1000) s;
RESET enable_seqscan;
SET scoreah.num_leaves_to_search = 1000;
SET scoreah.reordering_num_neighbors = 1000;
VACUUM dml;
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');
SET enable_seqscan = off;
SELECT count(*), count(*) FILTER (WHERE id % 3 = 0) AS deleted
FROM (SELECT id FROM dml ORDER BY v <#> '{1,1,1,1,1,1}' LIMIT 1000) s;
RESET enable_seqscan;

-- Inserts after VACUUM reuse freed heap slots (and index slots): the
-- index must return the new rows, never the old ones
INSERT INTO dml
SELECT i, ARRAY(SELECT (sin(i * 0.29 + j * 0.97) * 1.5)::real FROM generate_series(1, 6) j), 'after vacuum'
FROM generate_series(401, 530) i;
SELECT count(*) > 0 AS reused_heap_slots
FROM dml WHERE note = 'after vacuum' AND (ctid::text::point)[0] < 3;
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');

-- UPDATE of the vector: the row moves
UPDATE dml SET v = ARRAY(SELECT -x FROM unnest(v) x), note = 'negated' WHERE id % 7 = 1;
SELECT * FROM check_dml();
SET enable_seqscan = off;
SELECT id FROM dml ORDER BY v <-> (SELECT v FROM dml WHERE id = 8) LIMIT 1;
RESET enable_seqscan;
-- UPDATE of another column (HOT when it fits): the index still finds the row
UPDATE dml SET note = 'noted' WHERE id % 5 = 2;
SELECT * FROM check_dml();
-- an UPDATE to a zero vector: the cosine index keeps the row apart, last
UPDATE dml SET v = '{0,0,0,0,0,0}' WHERE id = 4;
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE id = 4) AS zero_row, count(*) FROM (SELECT id FROM dml ORDER BY v <-> '{1,0,0,0,0,0}' LIMIT 1000) s;
SELECT count(*) FILTER (WHERE id = 4) AS zero_row, count(*) FROM (SELECT id FROM dml ORDER BY v <=> '{1,0,0,0,0,0}' LIMIT 1000) s;
RESET enable_seqscan;
-- an UPDATE to a NULL vector: every index keeps the row apart, last
UPDATE dml SET v = NULL WHERE id = 4;
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE id = 4) AS null_row, count(*) FROM (SELECT id FROM dml ORDER BY v <-> '{1,0,0,0,0,0}' LIMIT 1000) s;
RESET enable_seqscan;
DELETE FROM dml WHERE id = 4;
VACUUM dml;
SELECT * FROM check_dml();

-- REINDEX: a new build on the current rows
REINDEX INDEX dml_l2;
REINDEX TABLE dml;
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');
REINDEX INDEX CONCURRENTLY dml_ip;
SELECT * FROM check_dml();

-- VACUUM FULL rebuilds the indexes
VACUUM FULL dml;
SELECT * FROM check_dml();

-- TRUNCATE empties the indexes (built again on no rows: NOTICE), then
-- inserts go to the untrained index until REINDEX
TRUNCATE dml;
SET enable_seqscan = off;
SELECT id FROM dml ORDER BY v <-> '{1,0,0,0,0,0}' LIMIT 1;
RESET enable_seqscan;
INSERT INTO dml
SELECT i, ARRAY(SELECT (sin(i * 0.43 + j * 1.13) * (1 + (i % 3) * 0.5))::real FROM generate_series(1, 6) j), 'after truncate'
FROM generate_series(1, 150) i;
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');
REINDEX TABLE dml;
SELECT * FROM check_dml();
SELECT index_rows('dml_l2');
-- after TRUNCATE the dimension may change
TRUNCATE dml;
INSERT INTO dml VALUES (1, '{1,2,3}'), (2, '{3,2,1}'), (3, '{-1,0,1}');
SET enable_seqscan = off;
SELECT id FROM dml ORDER BY v <-> '{1,2,2}' LIMIT 3;
RESET enable_seqscan;
SELECT index_rows('dml_l2');
DROP TABLE dml;

-- Many inserts into an index built on a few rows: chains of many pages
CREATE TABLE grow (id int, v real[]);
INSERT INTO grow SELECT i, ARRAY[sin(i), cos(i * 1.1), sin(i * 0.3)]::real[] FROM generate_series(1, 10) i;
CREATE INDEX grow_l2 ON grow USING scoreah (v) WITH (num_leaves = 2);
INSERT INTO grow SELECT i, ARRAY[sin(i), cos(i * 1.1), sin(i * 0.3)]::real[] FROM generate_series(11, 3000) i;
SET scoreah.reordering_num_neighbors = 3000;
SELECT check_index('SELECT id FROM grow ORDER BY v <-> ''{0.5,-0.5,0.25}'' LIMIT 3000');
SELECT check_index('SELECT id FROM grow ORDER BY v <-> ''{-0.1,0.9,0.7}'' LIMIT 10');
SELECT scoreah_index_check('grow_l2');
SELECT index_rows('grow_l2');
SET scoreah.reordering_num_neighbors = 1000;
DROP TABLE grow;

-- Vectors longer than a page (3000 dimensions, 12 kB), built and inserted
CREATE TABLE long (id int, v real[]);
INSERT INTO long SELECT i, ARRAY(SELECT sin(i * 0.5 + j * 0.01)::real FROM generate_series(1, 3000) j) FROM generate_series(1, 5) i;
CREATE INDEX long_l2 ON long USING scoreah (v) WITH (dimensions_per_block = 10);
CREATE INDEX long_cos ON long USING scoreah (v scoreah_cosine_ops) WITH (scoring = brute_force);
INSERT INTO long SELECT i, ARRAY(SELECT sin(i * 0.5 + j * 0.01)::real FROM generate_series(1, 3000) j) FROM generate_series(6, 12) i;
SELECT check_index(format('SELECT id FROM long ORDER BY v <-> %L LIMIT 12', ARRAY(SELECT cos(j * 0.02)::real FROM generate_series(1, 3000) j)));
SELECT check_index(format('SELECT id FROM long ORDER BY v <=> %L LIMIT 12', ARRAY(SELECT cos(j * 0.02)::real FROM generate_series(1, 3000) j)));
SELECT scoreah_index_check('long_l2');
SELECT scoreah_index_check('long_cos');
DROP TABLE long;

-- Where vectors are: rows do not store it, a group lists the vector pages
-- its rows' vectors lie on, in row order.  Vector sizes that give 40, 3, 2
-- and 1 vectors a page, one longer than a page, and none kept; rows from
-- the build, from inserts (new groups, groups crossing vector pages) and in
-- slots VACUUM freed.  Values are multiples of 1/1024 below 2, which half
-- precision keeps exactly, so float16 vectors re-rank exactly too.
CREATE TABLE vp (id int, v real[]);
CREATE PROCEDURE vp_fill(lo int, hi int, dims int) LANGUAGE sql AS $$
	INSERT INTO vp SELECT i, ARRAY(SELECT (round(sin(i * 0.77 + j * 0.13) * 1000) / 1024)::real
									FROM generate_series(1, dims) j)
	FROM generate_series(lo, hi) i
$$;
CREATE PROCEDURE vp_build(dims int, storage text) LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('client_min_messages', 'warning', true);
	DROP INDEX IF EXISTS vp_idx;
	TRUNCATE vp;
	CALL vp_fill(1, 150, dims);
	EXECUTE format('CREATE INDEX vp_idx ON vp USING scoreah (v) WITH (num_leaves = 2, reordering_storage = %s, dimensions_per_block = %s)',
				   storage, CASE WHEN dims > 900 THEN 8 ELSE 2 END);
END
$$;
CREATE FUNCTION vp_check(dims int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN format('%s; dead slots %s; check: %s',
		check_index(format('SELECT id FROM vp ORDER BY v <-> %L LIMIT 400',
			ARRAY(SELECT cos(j * 0.37)::real FROM generate_series(1, dims) j))),
		(SELECT value FROM scoreah_index_info('vp_idx') WHERE name = 'dead_slots'),
		coalesce((SELECT string_agg(c, '; ') FROM scoreah_index_check('vp_idx') c), 'ok'));
END
$$;
CALL vp_build(100, 'float16');	-- 40 vectors a page
CALL vp_fill(151, 260, 100);
DELETE FROM vp WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) vp;
SELECT vp_check(100);
CALL vp_fill(261, 320, 100);
SELECT vp_check(100);
CALL vp_build(679, 'float32');	-- 3 a page
CALL vp_fill(151, 260, 679);
DELETE FROM vp WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) vp;
CALL vp_fill(261, 320, 679);
SELECT vp_check(679);
CALL vp_build(1500, 'float16');	-- 2 a page
CALL vp_fill(151, 260, 1500);
DELETE FROM vp WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) vp;
CALL vp_fill(261, 320, 1500);
SELECT vp_check(1500);
CALL vp_build(1500, 'float32');	-- 1 a page
CALL vp_fill(151, 260, 1500);
DELETE FROM vp WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) vp;
CALL vp_fill(261, 320, 1500);
SELECT vp_check(1500);
CALL vp_build(2100, 'float32');	-- longer than a page
CALL vp_fill(151, 260, 2100);
DELETE FROM vp WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) vp;
CALL vp_fill(261, 320, 2100);
SELECT vp_check(2100);
CALL vp_build(100, 'table');		-- none in the index
CALL vp_fill(151, 260, 100);
DELETE FROM vp WHERE id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) vp;
CALL vp_fill(261, 320, 100);
SELECT vp_check(100);
DROP TABLE vp;
DROP PROCEDURE vp_fill(int, int, int);
DROP PROCEDURE vp_build(int, text);
DROP FUNCTION vp_check(int);

-- Unlogged tables: built with data, and built empty
CREATE UNLOGGED TABLE unlogged (id int, v real[]);
INSERT INTO unlogged SELECT i, ARRAY[sin(i), cos(i * 0.7), sin(i * 1.9), cos(i * 0.2)]::real[] FROM generate_series(1, 200) i;
CREATE INDEX unlogged_l2 ON unlogged USING scoreah (v) WITH (num_leaves = 5);
CREATE INDEX unlogged_ip ON unlogged USING scoreah (v scoreah_ip_ops);
INSERT INTO unlogged SELECT i, ARRAY[cos(i), sin(i * 0.7), cos(i * 1.9), sin(i * 0.2)]::real[] FROM generate_series(201, 300) i;
SELECT check_index('SELECT id FROM unlogged ORDER BY v <-> ''{0.5,0.5,-0.5,0}'' LIMIT 300');
SELECT check_index('SELECT id FROM unlogged ORDER BY v <#> ''{0.5,0.5,-0.5,0}'' LIMIT 300');
SELECT relpersistence FROM pg_class WHERE relname IN ('unlogged_l2', 'unlogged_ip');
DROP TABLE unlogged;
CREATE UNLOGGED TABLE unlogged (id int, v real[]);
CREATE INDEX unlogged_cos ON unlogged USING scoreah (v scoreah_cosine_ops);
INSERT INTO unlogged SELECT i, ARRAY[sin(i), cos(i * 0.7), sin(i * 1.9)]::real[] FROM generate_series(1, 100) i;
SELECT check_index('SELECT id FROM unlogged ORDER BY v <=> ''{0.5,0.5,-0.5}'' LIMIT 100');
REINDEX TABLE unlogged;
SELECT check_index('SELECT id FROM unlogged ORDER BY v <=> ''{0.5,0.5,-0.5}'' LIMIT 100');
DROP TABLE unlogged;

DROP FUNCTION check_dml();
DROP FUNCTION index_rows(regclass);
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
