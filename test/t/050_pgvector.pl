# scoreah on pgvector's vector and halfvec columns (the scoreah_vector
# extension), beyond what pg_regress's vector_types checks:
#   (a) it installs whether pgvector came before or after scoreah, and
#       after an update of scoreah from 0.1.0;
#   (b) a database with scoreah indexes on vector and halfvec columns
#       survives pg_dump and pg_restore: same indexes, same answers;
#   (c) a parallel build of a vector column equals the serial one;
#   (d) on GloVe-100 (100k rows, 1,000 held-out queries, cosine), recall@10
#       of the same index on a vector(100) column is within 0.005 of the
#       real[] column's, and a halfvec(100) copy's within 0.01, at the
#       setting of 010_recall_glove (32 of 316 leaves, 200 re-ranked);
#   (e) a scoreah index built on a column that has a pgvector index (hnsw,
#       ivfflat) says so in a NOTICE.
# Skips when pgvector is not installed on the server (it is not in Debian
# 12's archive: build it from github.com/pgvector/pgvector); (d) skips on
# its own without the GloVe data or numpy.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $node = ScoreahTest::new_node('pgvector',
	conf => [ 'shared_buffers = 256MB', 'maintenance_work_mem = 512MB',
		'max_parallel_maintenance_workers = 2', 'max_worker_processes = 8',
		@ScoreahTest::MEASURE_CONF[ 0 .. 3 ] ]);
ScoreahTest::skip_all('pgvector is not installed on this server (build it from github.com/pgvector/pgvector)')
  unless $node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'}) eq '1';

# ---- (a) install orders ----
$node->safe_psql('postgres', 'CREATE DATABASE after_scoreah');
$node->safe_psql('after_scoreah', q{
	CREATE EXTENSION scoreah;
	CREATE EXTENSION vector;
	CREATE EXTENSION scoreah_vector;
});
$node->safe_psql('postgres', 'CREATE DATABASE vector_first');
$node->safe_psql('vector_first', q{
	CREATE EXTENSION vector;
	CREATE EXTENSION scoreah_vector CASCADE;
});
$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('updated', q{
	CREATE EXTENSION scoreah VERSION '0.1.0';
	CREATE EXTENSION vector;
	ALTER EXTENSION scoreah UPDATE;
	CREATE EXTENSION scoreah_vector;
});
my $opclasses = q{SELECT string_agg(opcname, ',' ORDER BY opcname) FROM pg_opclass
	WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'scoreah')};
my $want = 'halfvec_cosine_ops,halfvec_ip_ops,halfvec_l2_ops,scoreah_cosine_ops,scoreah_int2_ops,'
  . 'scoreah_int4_ops,scoreah_int8_ops,scoreah_ip_ops,scoreah_l2_ops,scoreah_text_ops,'
  . 'scoreah_uuid_ops,vector_cosine_ops,vector_ip_ops,vector_l2_ops';
is($node->safe_psql($_, $opclasses), $want, "$_: all nine vector operator classes and the five key ones")
  for qw(after_scoreah vector_first updated);

# ---- (b) pg_dump and pg_restore ----
my $db = 'after_scoreah';
$node->safe_psql($db, q{
	CREATE TABLE docs (id int PRIMARY KEY, e vector(16), h halfvec(16));
	INSERT INTO docs SELECT i, a::vector, a::halfvec
	FROM (SELECT i, ARRAY(SELECT sin(i * 0.61 + j * 0.37) FROM generate_series(1, 16) j)::real[] AS a
		  FROM generate_series(1, 5000) i) s;
	CREATE INDEX docs_e ON docs USING scoreah (e vector_cosine_ops) WITH (num_leaves = 40);
	CREATE INDEX docs_e_ip ON docs USING scoreah (e vector_ip_ops)
		WITH (num_leaves = 30, anisotropic_quantization_threshold = 0.2);
	CREATE INDEX docs_h ON docs USING scoreah (h) WITH (num_leaves = 40);
});
my @queries = (
	q{SELECT string_agg(id::text, ',') FROM (SELECT id FROM docs ORDER BY e <=> (SELECT e FROM docs WHERE id = 7) LIMIT 20) s},
	q{SELECT string_agg(id::text, ',') FROM (SELECT id FROM docs ORDER BY e <#> (SELECT e FROM docs WHERE id = 70) LIMIT 20) s},
	q{SELECT string_agg(id::text, ',') FROM (SELECT id FROM docs ORDER BY h <-> (SELECT h FROM docs WHERE id = 700) LIMIT 20) s});
my $settings = 'SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 5; SET scoreah.reordering_num_neighbors = 50;';
my @before = map { $node->safe_psql($db, "$settings $_") } @queries;
my $defs = q{SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'docs'};
my $defs_before = $node->safe_psql($db, $defs);

my $dump = PostgreSQL::Test::Utils::tempdir() . '/docs.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr($db), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', $defs), $defs_before, 'the restored indexes have the same definitions');
is($node->safe_psql('restored', q{SELECT string_agg(extname || ' ' || extversion, ',' ORDER BY extname)
	FROM pg_extension WHERE extname <> 'plpgsql'}), 'scoreah 0.2.0,scoreah_vector 0.2.0,vector '
  . $node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vector'}),
	'the restored database has the three extensions');
for my $i (0 .. $#queries)
{
	is($node->safe_psql('restored', "$settings $queries[$i]"), $before[$i],
		"query $i: the restored index answers as the original (a deterministic rebuild)");
}
like($node->safe_psql('restored', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) $queries[2]"),
	qr/Index Scan using docs_h/, 'the restored halfvec index serves its query');
is(ScoreahTest::index_check($node, $_, 'restored'), '', "restored $_ is sound") for qw(docs_e docs_e_ip docs_h);

# ---- (c) a parallel build of a vector column equals the serial build ----
my %built;
for my $workers (0, 2)
{
	my ($rc, $out, $err) = $node->psql($db, qq{
		DROP INDEX IF EXISTS docs_par;
		SET max_parallel_maintenance_workers = $workers;
		SET min_parallel_table_scan_size = 0;
		ALTER TABLE docs SET (parallel_workers = $workers);
		SET client_min_messages = debug1;
		CREATE INDEX docs_par ON docs USING scoreah (e) WITH (num_leaves = 40);
	});
	is($rc, 0, "built with $workers workers requested");
	like($err, qr/using 2 parallel workers/, 'the parallel build used its workers') if $workers;
	$built{$workers} = join('|',
		$node->safe_psql($db, "SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 3; "
			  . q{SELECT string_agg(id::text, ',') FROM (SELECT id FROM docs ORDER BY e <-> (SELECT e FROM docs WHERE id = 9) LIMIT 30) s}),
		ScoreahTest::index_info($node, 'docs_par', $db)->{rows_per_leaf_max});
}
is($built{2}, $built{0}, 'a parallel build of a vector column answers as the serial build');

# ---- (e) a pgvector index on the same column: a NOTICE at the build ----
# The planner takes whichever index it estimates cheaper, and pgvector's
# HNSW estimate is lower than scoreah's for a slower search (README,
# "Coming from pgvector"): a switch that keeps the old index goes on
# searching through it.
$node->safe_psql($db, q{
	CREATE TABLE two (id int, v vector(3), w vector(3), u vector(3));
	INSERT INTO two SELECT i, ARRAY[i, i % 7, 1]::real[]::vector, ARRAY[1, i, i % 5]::real[]::vector,
		ARRAY[i % 3, 1, i]::real[]::vector FROM generate_series(1, 300) i;
	CREATE INDEX two_v_hnsw ON two USING hnsw (v vector_l2_ops);
	CREATE INDEX two_w_ivf ON two USING ivfflat (w vector_cosine_ops) WITH (lists = 2);
});
# (the vector first, or after a key column: the index's column, not its
# first, is compared with the pgvector index's)
for my $case ([ 'two_v_s', 'v vector_l2_ops', 'v', 'hnsw', 'two_v_hnsw' ],
	[ 'two_w_s', 'w vector_cosine_ops', 'w', 'ivfflat', 'two_w_ivf' ],
	[ 'two_kv_s', 'id scoreah_int4_ops, v vector_l2_ops', 'v', 'hnsw', 'two_v_hnsw' ])
{
	my ($name, $cols, $col, $am, $pgv) = @$case;
	my ($rc, $out, $err) = $node->psql($db, "CREATE INDEX $name ON two USING scoreah ($cols)");
	is($rc, 0, "scoreah index $name beside a pgvector one: built");
	like($err, qr/column "$col" of "two" also has the $am index "$pgv"/,
		"scoreah index $name: a NOTICE names the pgvector index");
	like($err, qr/HINT:  Drop "$pgv" for queries to search through "$name"/,
		"scoreah index $name: the hint says to drop that one");
}
my ($rc_u, $out_u, $err_u) = $node->psql($db, 'CREATE INDEX two_u_s ON two USING scoreah (u vector_l2_ops)');
is($rc_u, 0, 'scoreah index on a column without a pgvector index: built');
unlike($err_u, qr/also has the/, 'scoreah index on a column without a pgvector index: no such NOTICE');
# an index left invalid (a failed CREATE INDEX CONCURRENTLY) is not one
# the planner takes: no NOTICE for it
$node->safe_psql($db, q{
	CREATE INDEX two_u_hnsw ON two USING hnsw (u vector_l2_ops);
	UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'two_u_hnsw'::regclass;
});
($rc_u, $out_u, $err_u) = $node->psql($db, 'REINDEX INDEX two_u_s');
is($rc_u, 0, 'scoreah index rebuilt beside an invalid hnsw index');
unlike($err_u, qr/also has the/, 'an invalid hnsw index on the column: no NOTICE');
($rc_u, $out_u, $err_u) = $node->psql($db, 'UPDATE pg_index SET indisvalid = true WHERE indexrelid = \'two_u_hnsw\'::regclass; REINDEX INDEX two_u_s');
like($err_u, qr/column "u" of "two" also has the hnsw index "two_u_hnsw"/, 'valid again: REINDEX says so too');

# ---- (d) GloVe: vector and halfvec against real[] ----
SKIP:
{
	my $dir = ScoreahTest::data_dir();
	skip 'GloVe data or numpy not available', 3
	  unless defined $dir && -r "$dir/glove-100.f32bin" && ScoreahTest::have_numpy();
	my $split = ScoreahTest::split_vectors("$dir/glove-100.f32bin",
		base => 100000, queries => 1000, k => 10, metric => 'cosine');
	my $truth = ScoreahTest::read_truth("$split/truth.tsv");
	ScoreahTest::load_vectors($node, 'items', "$split/base.copy");
	ScoreahTest::load_vectors($node, 'queries', "$split/queries.copy");
	$node->safe_psql('postgres', q{
		CREATE EXTENSION scoreah_vector CASCADE;
		CREATE TABLE items_vec AS SELECT id, v::vector(100) AS v FROM items;
		CREATE TABLE queries_vec AS SELECT id, v::vector(100) AS v FROM queries;
		CREATE TABLE items_half AS SELECT id, v::halfvec(100) AS v FROM items;
		CREATE TABLE queries_half AS SELECT id, v::halfvec(100) AS v FROM queries;
		SET max_parallel_maintenance_workers = 0;
		CREATE INDEX ON items USING scoreah (v scoreah_cosine_ops)
			WITH (num_leaves = 316, anisotropic_quantization_threshold = 0.2);
		CREATE INDEX ON items_vec USING scoreah (v vector_cosine_ops)
			WITH (num_leaves = 316, anisotropic_quantization_threshold = 0.2);
		CREATE INDEX ON items_half USING scoreah (v halfvec_cosine_ops)
			WITH (num_leaves = 316, anisotropic_quantization_threshold = 0.2);
		ANALYZE;
	});
	my $set = 'SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 32; SET scoreah.reordering_num_neighbors = 200';
	my %recall;
	for my $t ([ 'real[]', 'items', 'queries' ], [ 'vector', 'items_vec', 'queries_vec' ],
		[ 'halfvec', 'items_half', 'queries_half' ])
	{
		my ($r, $secs) = ScoreahTest::measure_recall($node, $truth,
			items => $t->[1], queries => $t->[2], op => '<=>', settings => $set);
		$recall{ $t->[0] } = $r;
		ScoreahTest::figure('glove-100k cosine %s column: probe=32 reorder=200 recall@10=%.4f (%.0f queries/s)',
			$t->[0], $r, 1000 / $secs);
	}
	cmp_ok(abs($recall{vector} - $recall{'real[]'}), '<=', 0.005, 'vector(100): recall within 0.005 of real[]');
	cmp_ok(abs($recall{halfvec} - $recall{'real[]'}), '<=', 0.01, 'halfvec(100): recall within 0.01 of real[]');
	cmp_ok($recall{vector}, '>=', 0.89, 'vector(100): recall as 010_recall_glove requires of real[]');
}

$node->stop;
done_testing();
