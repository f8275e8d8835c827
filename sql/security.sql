-- What an ordinary role can and cannot do through scoreah: the kernel
-- self-test and benchmark are not executable by PUBLIC and their arguments
-- are bounded; the debugging GUCs and the cache size are for superusers;
-- scoreah_index_info follows pg_stats' rule under row-level security and
-- scoreah_index_check refuses; column privileges count as pg_stats counts
-- them.

CREATE TABLE sec_items (id int PRIMARY KEY, tenant int, v real[]);
INSERT INTO sec_items
SELECT i, i % 10, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3)]::real[]
FROM generate_series(1, 1000) i;
CREATE INDEX sec_idx ON sec_items USING scoreah (v) WITH (num_leaves = 8);
-- inner products: the build's threshold is a multiple of the mean norm
CREATE INDEX sec_ip_idx ON sec_items USING scoreah (v scoreah_ip_ops) WITH (num_leaves = 8);
-- a partial index: its row counts are of the rows its predicate keeps
CREATE INDEX sec_part_idx ON sec_items USING scoreah (v) WITH (num_leaves = 4) WHERE id <= 500;
GRANT SELECT ON sec_items TO regress_scoreah_user;

-- ---- functions for DBAs ----
SET ROLE regress_scoreah_user;
SELECT * FROM scoreah_kernel_benchmark(4096, 70000, 1);
SELECT scoreah_kernel_selftest(50);
SELECT scoreah_kernels() ~ '^float=\w+ lut16=\w+ exact=\w+( lut16@\d+=\w+)*$' AS kernels_visible;
RESET ROLE;

-- a superuser may call them, within bounds
SELECT * FROM scoreah_kernel_benchmark(4096, 70000, 1);
SELECT * FROM scoreah_kernel_benchmark(0, 10, 1);
SELECT * FROM scoreah_kernel_benchmark(50, 10000, 100001);
SELECT * FROM scoreah_kernel_benchmark(4096, 1024, 100000);
SELECT scoreah_kernel_selftest(4097);
SELECT scoreah_kernel_selftest(64, 100000);
SELECT count(*) >= 1 AS kernels_timed FROM scoreah_kernel_benchmark(8, 10, 1);

-- and cancel stops them part way (both would run for many seconds)
SET statement_timeout = '300ms';
SELECT count(*) FROM scoreah_kernel_benchmark(512, 1024, 1000);
SELECT scoreah_kernel_selftest(4096, 1024);
RESET statement_timeout;

-- a DBA may hand them to a monitoring role
GRANT EXECUTE ON FUNCTION scoreah_kernel_selftest(integer, integer, bigint) TO regress_scoreah_user;
SET ROLE regress_scoreah_user;
SELECT scoreah_kernel_selftest(8) ~ '^ok: ' AS granted_selftest_ok;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION scoreah_kernel_selftest(integer, integer, bigint) FROM regress_scoreah_user;

-- ---- settings ----
SET ROLE regress_scoreah_user;
SET scoreah.force_scalar_kernels = on;
SET scoreah.avx512_kernels = off;
SET scoreah.float_lut_scoring = on;
SET scoreah.refill_skipping = off;
SET scoreah.model_cache_size = '1GB';
-- the query settings are everybody's
SET scoreah.num_leaves_to_search = 3;
SET scoreah.reordering_num_neighbors = 50;
SELECT count(*) FROM (SELECT id FROM sec_items ORDER BY v <-> '{1,0,0,0}' LIMIT 5) s;
RESET scoreah.num_leaves_to_search;
RESET scoreah.reordering_num_neighbors;
RESET ROLE;
SELECT name, context FROM pg_settings WHERE name LIKE 'scoreah.%' ORDER BY name;

-- ---- introspection and row-level security ----
ALTER TABLE sec_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY sec_tenant ON sec_items FOR SELECT TO regress_scoreah_user USING (tenant = 1);
SET ROLE regress_scoreah_user;
-- the role sees 100 rows; the index's figures of all 1000 stay hidden
SELECT count(*) FROM sec_items;
SELECT name, value FROM scoreah_index_info('sec_idx')
WHERE name IN ('metric', 'num_leaves', 'rows', 'rows_built', 'rows_per_leaf_max',
			   'staleness', 'advice', 'row_level_security')
ORDER BY name;
-- nor the figures of the build that count the rows or measure them
SELECT name, value FROM scoreah_index_info('sec_idx')
WHERE name ~ '^(num_leaves_chosen|leaves_training_sample_size|training_sample_size|training_sample_rows|calibration|target_recall)'
ORDER BY name;
SELECT * FROM scoreah_index_check('sec_idx');
-- nor the figures that would give the rows' mean norm back, nor an error
SELECT name, value FROM scoreah_index_info('sec_ip_idx')
WHERE name IN ('anisotropic_quantization_threshold', 'mean_norm', 'scale') ORDER BY name;
SET enable_seqscan = off;
SELECT id FROM sec_items ORDER BY v <-> '{1e20,0,0,0}' LIMIT 1;
RESET ROLE;
-- which names it to the owner
SELECT id FROM sec_items ORDER BY v <-> '{1e20,0,0,0}' LIMIT 1;
RESET enable_seqscan;
SELECT name, value ~ '^[0-9.e+-]+$' AS shown FROM scoreah_index_info('sec_ip_idx')
WHERE name IN ('anisotropic_quantization_threshold', 'mean_norm', 'scale') ORDER BY name;
-- the owner, to whom the policy does not apply, sees them
SELECT name, value FROM scoreah_index_info('sec_idx')
WHERE name IN ('rows', 'rows_built', 'row_level_security') ORDER BY name;
SELECT count(*) AS problems FROM scoreah_index_check('sec_idx');

-- SELECT on the indexed column is enough, as for pg_stats; another is not
ALTER TABLE sec_items DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON sec_items FROM regress_scoreah_user;
GRANT SELECT (id, tenant) ON sec_items TO regress_scoreah_user;
SET ROLE regress_scoreah_user;
SELECT name, value FROM scoreah_index_info('sec_idx') WHERE name = 'rows';
RESET ROLE;
GRANT SELECT (v) ON sec_items TO regress_scoreah_user;
SET ROLE regress_scoreah_user;
SELECT name, value FROM scoreah_index_info('sec_idx') WHERE name = 'rows';
SELECT count(*) AS problems FROM scoreah_index_check('sec_idx');
-- a partial index takes SELECT on the table: the predicate's columns are
-- not the indexed ones (here the role may read id, but that is not why)
SELECT name, value FROM scoreah_index_info('sec_part_idx') WHERE name = 'rows';
RESET ROLE;
SELECT name, value FROM scoreah_index_info('sec_part_idx') WHERE name = 'rows';

REVOKE ALL ON sec_items FROM regress_scoreah_user;
DROP TABLE sec_items;

-- ---- an installation of 0.1.0 updated to 0.2.0 ends up the same ----
SELECT current_database() AS regdb \gset
CREATE DATABASE scoreah_upgrade;
\c scoreah_upgrade
CREATE EXTENSION scoreah VERSION '0.1.0';
SELECT has_function_privilege('public', 'scoreah_kernel_benchmark(integer, integer, integer)', 'EXECUTE') AS public_may_benchmark_in_010;
ALTER EXTENSION scoreah UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'scoreah';
CREATE TEMP TABLE updated AS
SELECT p.oid::regprocedure::text AS func, coalesce(p.proacl::text, 'default') AS acl
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'scoreah';
DROP EXTENSION scoreah;
CREATE EXTENSION scoreah;
SELECT func, acl FROM updated
FULL JOIN (SELECT p.oid::regprocedure::text AS func, coalesce(p.proacl::text, 'default') AS acl
		   FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
		   JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'scoreah') fresh USING (func, acl)
WHERE updated.func IS NULL OR fresh.func IS NULL;
SELECT count(*) AS functions FROM updated;
\c :regdb
DROP DATABASE scoreah_upgrade;
