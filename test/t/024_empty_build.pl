# An index created on an empty table, then filled by inserts.
#
# The design (README, Bad input / Maintenance): CREATE INDEX on an empty
# table makes an "untrained" index -- one leaf, no codes, every row scored
# exactly -- says so in a NOTICE, and the first inserted row fixes the
# dimension.  scoreah_index_info advises REINDEX; after REINDEX the index is
# trained like one built on the full table.  This file checks:
#   * recall@10 of the empty-built index, filled by INSERT, is 1.0 at any
#     setting (it scores exactly), printed next to the recall of an index
#     built on the full table (same rows, same options, same settings);
#   * its info: trained = false, 1 leaf, rows_built = 0, every row inserted
#     since the build, advice starting with REINDEX; after REINDEX trained =
#     true, the requested leaves, rows_built = every row, advice ok, and the
#     same recall as the full-table build;
#   * on an empty-built index, rows of one dimension, then a row of another,
#     errors -- also from a second session whose cached copy of the index
#     was loaded before the first row arrived;
#   * an index built on 500 rows and grown to 60,500 by inserts searches
#     only the leaves a LIMIT 100 wants, not all of them (its deep scans
#     once took the exact tail of small indexes on the build's count).
# Data: GloVe-100 (20k rows, cosine) when $SCOREAH_DATA_DIR has it and numpy
# is there; otherwise synthetic clustered data made in SQL with setseed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $NBASE = 20000;
my $NQUERIES = 200;
my $K = 10;
my $LEAVES = 100;
my $PROBE = 4;
my $REORDER = 20;
my $T0 = time;

my $node = ScoreahTest::new_node('empty_build',
	conf => [ 'shared_buffers = 128MB', 'autovacuum = off', @ScoreahTest::MEASURE_CONF ]);

# ---- data: base (id, v), queries (id, v), truth {qid => [ids]} ----

my $data = ScoreahTest::load_knn_data($node, seed => 0.37, base => $NBASE,
	queries => $NQUERIES, k => $K, leaves => $LEAVES);
my ($OP, $OPCLASS, $WITH, $LABEL) = @$data{qw(op opclass with label)};

# (recall@K of every query through the index of $table, the statement's
# seconds) with the given search settings
sub recall
{
	my ($probe, $reorder, $table) = @_;
	return ScoreahTest::measure_recall(
		$node, $data->{truth},
		items => $table,
		op => $OP,
		k => $K,
		settings => "SET enable_seqscan = off; SET scoreah.num_leaves_to_search = $probe;"
		  . " SET scoreah.reordering_num_neighbors = $reorder");
}

sub check_sound
{
	my ($index, $what) = @_;
	is(ScoreahTest::index_check($node, $index), '', "$what: scoreah_index_check finds no problem");
}

is(scalar keys %{ $data->{truth} }, $NQUERIES, 'ground truth for every query');

# ---- the empty-built index ----

$node->safe_psql('postgres', 'CREATE TABLE items (id int4 PRIMARY KEY, v real[] NOT NULL)');
my ($rc, $stdout, $stderr) = $node->psql('postgres',
	"CREATE INDEX items_v_idx ON items USING scoreah (v $OPCLASS) WITH ($WITH)");
is($rc, 0, 'CREATE INDEX on an empty table succeeds');
like($stderr, qr/NOTICE: .*created on a table with no rows to index: it scores every row exactly until rebuilt/,
	'CREATE INDEX on an empty table says the index is untrained');

my $info = ScoreahTest::index_info($node, 'items_v_idx');
is($info->{trained}, 'false', 'empty build: trained = false');
is($info->{num_leaves}, '1', 'empty build: one leaf');
is($info->{rows}, '0', 'empty build: no rows');
like($info->{advice}, qr/^REINDEX/, 'empty build: advice is REINDEX');
check_sound('items_v_idx', 'empty build');

my $insert_secs = ScoreahTest::timed_sql($node, 'INSERT INTO items SELECT * FROM base ORDER BY id; ANALYZE items');
ScoreahTest::figure('%s insert of %d rows into the empty-built index: %.2fs', $LABEL, $NBASE, $insert_secs);

$info = ScoreahTest::index_info($node, 'items_v_idx');
is($info->{trained}, 'false', 'filled: still untrained');
is($info->{dimensions}, $data->{dims}, 'filled: the first row fixed the dimension');
is($info->{rows}, $NBASE, 'filled: info counts every row');
is($info->{rows_built}, '0', 'filled: rows_built = 0');
is($info->{rows_inserted_since_build}, $NBASE, 'filled: every row inserted since the build');
like($info->{advice}, qr/^REINDEX/, "filled: advice is REINDEX ($info->{advice})");
check_sound('items_v_idx', 'filled empty-built index');

like($node->safe_psql('postgres', 'SET enable_seqscan = off; EXPLAIN (COSTS OFF) '
		  . "SELECT id FROM items ORDER BY v $OP (SELECT v FROM queries LIMIT 1) LIMIT $K"),
	qr/Index Scan using items_v_idx/, 'k-NN statement uses the empty-built index');

my ($empty, $empty_secs) = recall($PROBE, $REORDER, 'items');
ScoreahTest::figure('%s empty-built + %d inserts probe=%d reorder=%d recall@%d=%.4f (%.0f queries/s)',
	$LABEL, $NBASE, $PROBE, $REORDER, $K, $empty, $NQUERIES / $empty_secs);
is($empty, 1, "empty-built index: recall\@$K = 1 at probe=$PROBE reorder=$REORDER");
for my $s ([ 1, 0 ], [ 1, $K ], [ 0, 200 ])
{
	my ($r) = recall(@$s, 'items');
	ScoreahTest::figure('%s empty-built + %d inserts probe=%d reorder=%d recall@%d=%.4f',
		$LABEL, $NBASE, @$s, $K, $r);
	is($r, 1, "empty-built index: recall\@$K = 1 at probe=$s->[0] reorder=$s->[1]");
}

# ---- the same rows, the same options, built on the full table ----

my $build_secs = ScoreahTest::timed_sql(
	$node, qq{
	CREATE TABLE items_full (id int4 PRIMARY KEY, v real[] NOT NULL);
	INSERT INTO items_full SELECT * FROM base ORDER BY id;
	CREATE INDEX items_full_v_idx ON items_full USING scoreah (v $OPCLASS) WITH ($WITH);
	ANALYZE items_full;
});
ScoreahTest::figure('%s full-table build of %d rows: %.2fs', $LABEL, $NBASE, $build_secs);
my ($full, $full_secs) = recall($PROBE, $REORDER, 'items_full');
ScoreahTest::figure('%s built on the full table probe=%d reorder=%d recall@%d=%.4f (%.0f queries/s)',
	$LABEL, $PROBE, $REORDER, $K, $full, $NQUERIES / $full_secs);
cmp_ok($full, '<', 1, 'the full-table build is approximate at this setting (the comparison means something)');
cmp_ok($empty, '>=', $full, 'the empty-built index is at least as accurate as the trained one');

# ---- REINDEX trains it ----

$node->safe_psql('postgres', 'REINDEX INDEX items_v_idx');
$info = ScoreahTest::index_info($node, 'items_v_idx');
is($info->{trained}, 'true', 'after REINDEX: trained = true');
is($info->{num_leaves}, $LEAVES, "after REINDEX: $LEAVES leaves");
is($info->{rows_built}, $NBASE, 'after REINDEX: rows_built counts every row');
is($info->{rows_inserted_since_build}, '0', 'after REINDEX: nothing inserted since the build');
is($info->{advice}, 'ok', 'after REINDEX: advice ok');
check_sound('items_v_idx', 'after REINDEX');
my ($reindexed) = recall($PROBE, $REORDER, 'items');
ScoreahTest::figure('%s empty-built then REINDEX probe=%d reorder=%d recall@%d=%.4f (full-table build %.4f)',
	$LABEL, $PROBE, $REORDER, $K, $reindexed, $full);
# Same rows in the same physical order and the same options: the same
# (deterministic) build, so recall should match closely.
cmp_ok(abs($reindexed - $full), '<=', 0.005,
	sprintf('REINDEXed index as good as the full-table build (%.4f vs %.4f)', $reindexed, $full));

# ---- dimensions of an empty-built index ----

($rc, $stdout, $stderr) = $node->psql(
	'postgres', q{
	CREATE TABLE d (id int, v real[]);
	CREATE INDEX d_v_idx ON d USING scoreah (v);
});
is($rc, 0, 'index on another empty table');

# A second session loads the index (dimension still unknown) before any row.
my $other = $node->background_psql('postgres', on_error_stop => 0);
$other->query_safe(q{SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM d ORDER BY v <-> '{0,0,0}' LIMIT 1) s});

$node->safe_psql('postgres', q{INSERT INTO d VALUES (1, '{1,2,3}'), (2, '{2,3,4}'), (3, '{0,0,1}')});
is(ScoreahTest::index_info($node, 'd_v_idx')->{dimensions}, '3', 'the first row fixed 3 dimensions');

($rc, $stdout, $stderr) = $node->psql('postgres', q{\set VERBOSITY verbose
	INSERT INTO d VALUES (4, '{1,2,3,4}')});
isnt($rc, 0, 'a row of 4 dimensions into a 3-dimensional index fails');
like($stderr, qr/ERROR:  22000: expected 3 dimensions, not 4/, 'the error names both dimensions');

# The other session's cache predates the first row: it must still refuse.
my $res = $other->query(q{INSERT INTO d VALUES (5, '{1,2,3,4,5}')});
like($other->{stderr}, qr/ERROR:  expected 3 dimensions, not 5/,
	'a session that loaded the index before the first row also refuses another dimension');
$other->{stderr} = '';
$other->query_safe(q{INSERT INTO d VALUES (6, '{3,3,3}')});
$other->quit;

is($node->safe_psql('postgres', q{SET enable_seqscan = off;
	SELECT string_agg(id::text, ',') FROM (SELECT id FROM d ORDER BY v <-> '{3,3,3}' LIMIT 10) s}),
	'6,2,1,3', 'the empty-built index returns every row in exact order');
is($node->safe_psql('postgres', 'SELECT count(*) FROM d'), '4', 'only the rows of the right dimension went in');
check_sound('d_v_idx', 'after rows of mixed dimensions were refused');

# ---- an index built small, grown by inserts, read deep ----
# A deep strict scan of an index the store can hold whole re-ranks all of
# it (the exact tail).  It judged "whole" by the build's row count, so an
# index built on 500 rows and grown to 60,500 scored every row of every
# leaf for a LIMIT 100 (22 of 22 leaves, 121,000 rows scored); now the rows
# of the leaves searched say how big it has grown, and the scan searches as
# deep as the LIMIT wants.
$node->safe_psql('postgres', q{
	SELECT setseed(0.3);
	CREATE TABLE grown (id serial, v real[]);
	INSERT INTO grown (v) SELECT ARRAY[random(), random(), random(), random()]::real[]
	  FROM generate_series(1, 500);
	CREATE INDEX grown_v ON grown USING scoreah (v);
	INSERT INTO grown (v) SELECT ARRAY[random(), random(), random(), random()]::real[]
	  FROM generate_series(1, 60000);
});
my $grown_leaves = ScoreahTest::index_info($node, 'grown_v')->{num_leaves};
my ($grc, $gout, $gerr) = $node->psql('postgres', q{SET enable_seqscan = off;
	SET client_min_messages = debug2;
	SELECT count(*) FROM (SELECT id FROM grown ORDER BY v <-> '{0.5,0.5,0.5,0.5}' LIMIT 100) s});
is($gout, '100', 'a LIMIT 100 on the grown index returns 100 rows');
my ($searched, $scored) = $gerr =~ /scoreah scan of "grown_v": \d+ leaves per round, (\d+) leaves searched, (\d+) rows scored/;
ok(defined $searched && $searched < $grown_leaves,
	"the grown index's LIMIT 100 searches " . ($searched // '?') . " of its $grown_leaves leaves, not all")
  or diag($gerr);
ScoreahTest::figure('index built on 500 rows, grown to 60,500: LIMIT 100 searched %s of %d leaves, scored %s rows',
	$searched // '?', $grown_leaves, $scored // '?');

ScoreahTest::figure('%s 024_empty_build total %.1fs', $LABEL, time - $T0);
$node->stop;
done_testing();
