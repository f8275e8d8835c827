# Pages freed by VACUUM and reused while scans run.
#
# When every row of a leaf is dead, VACUUM unlinks the leaf's code and
# vector pages, marks them deleted and gives them to the free space map,
# where inserts into any leaf find them again at once.  Scans that read a
# chain link or a candidate's vector location before that must notice that
# the page is no longer theirs (it may already hold another leaf's rows)
# and skip it, never returning a row twice or another leaf's row.
#
# One client empties the table and fills it again (in separate
# transactions, so VACUUM sees whole leaves without a live row), one runs
# VACUUM in a loop, two check inside one snapshot that an exhaustive scan
# through each index returns every visible row exactly once, also batch
# after batch, and equals the sequential scan's top 10.  Afterwards:
# no failed transaction, scoreah_index_check is clean, VACUUM of an empty
# table frees every code and vector page, and the index did not grow past
# a small multiple of its built size.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use IPC::Run;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $DIM = 16;
my $SECS = 12;
my $t_start = time();
my $KQ = ScoreahTest::pgbench_vector_sql($DIM);

my $node = ScoreahTest::new_node('free_pages', conf => [ 'autovacuum = off', 'jit = off', 'max_connections = 20' ]);
$node->safe_psql('postgres', qq{
	CREATE TABLE keep (v real[] NOT NULL);
	INSERT INTO keep SELECT ARRAY(SELECT sin(i * 0.013 + d * 0.7 + (i % 9))::real
	                              FROM generate_series(1, $DIM) d WHERE i > 0)
	  FROM generate_series(1, 2000) i;
	CREATE TABLE f (id bigserial PRIMARY KEY, v real[] NOT NULL);
	INSERT INTO f (v) SELECT v FROM keep;
	CREATE INDEX f_l2 ON f USING scoreah (v) WITH (num_leaves = 8);
	CREATE INDEX f_cos ON f USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 6);
});
my $size0 = $node->safe_psql('postgres', "SELECT pg_relation_size('f_l2')");

# ---- a first, quiet cycle: the whole index becomes free space ----
$node->safe_psql('postgres', 'DELETE FROM f');
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) f');
# all but the metapage, the model and the directory is free
sub all_free
{
	my ($label) = @_;
	my $i = ScoreahTest::index_info($node, 'f_l2');
	my $size = $node->safe_psql('postgres', "SELECT pg_relation_size('f_l2')");
	is($i->{rows}, 0, "$label: no row left in the index");
	is($i->{bytes_codes} + $i->{bytes_vectors}, 0, "$label: every code and vector page was freed");
	is($i->{bytes_free},
		$size - $i->{bytes_metapage} - $i->{bytes_centroids_and_codebooks} - $i->{bytes_directory},
		"$label: they are free space ($i->{bytes_free} of $size bytes)");
}
all_free('VACUUM of the emptied table');
$node->safe_psql('postgres', 'INSERT INTO f (v) SELECT v FROM keep');
my $size1 = $node->safe_psql('postgres', "SELECT pg_relation_size('f_l2')");
# the build packs the vectors of neighbouring leaves on shared pages;
# inserts give each of the 8 leaves a vector chain of its own
cmp_ok($size1, '<=', $size0 + 8 * 8192,
	"the same rows inserted again fit in the freed pages, plus at most a page per leaf ($size1 vs $size0 bytes)");
is(ScoreahTest::index_check($node, 'f_l2'), '', 'index sound after the cycle');

# ---- the same under load ----
# (the checkers' snapshots keep deleted rows visible to them, so VACUUM
# cannot always remove a whole generation before the next is inserted: the
# index may grow during the run, like any index under long snapshots)
my $churn_script = "DELETE FROM f;\n\\sleep 30 ms\nINSERT INTO f (v) SELECT v FROM keep;\n\\sleep 30 ms\n";
my $vacuum_script = "VACUUM (INDEX_CLEANUP ON) f;\n\\sleep 10 ms\n";
my $check_script = "\\set k random(1, 1000000)\nBEGIN ISOLATION LEVEL REPEATABLE READ;\n"
  . "SET LOCAL enable_seqscan = off;\n";
for my $round ([ 1000, 1000000 ], [ 2, 16 ])
{
	$check_script .= "SET LOCAL scoreah.num_leaves_to_search = $round->[0];\n"
	  . "SET LOCAL scoreah.reordering_num_neighbors = $round->[1];\n";
	for my $tg ([ 'f_l2', '<->' ], [ 'f_cos', '<=>' ])
	{
		my ($name, $op) = @$tg;
		$check_script .= "SELECT CASE WHEN a.n = a.d AND a.n = b.c THEN 'ok' ELSE "
		  . "('$name mismatch ($round->[0]/$round->[1]): index scan ' || a.n || ' rows, ' || a.d "
		  . "|| ' distinct; table ' || b.c)::int::text END FROM "
		  . "(SELECT count(*) n, count(DISTINCT id) d FROM (SELECT id FROM f ORDER BY v $op $KQ LIMIT 1000000) s) a, "
		  . "(SELECT count(*) c FROM f) b;\n";
	}
}
$check_script .= "SET LOCAL scoreah.num_leaves_to_search = 1000;\n"
  . "SET LOCAL scoreah.reordering_num_neighbors = 1000000;\n"
  . "SELECT CASE WHEN x.i IS NOT DISTINCT FROM x.s THEN 'ok' ELSE ('top10 mismatch ' || x.i::text || ' vs ' || x.s::text)::int::text END FROM "
  . "(SELECT (SELECT array_agg(id) FROM (SELECT id FROM f ORDER BY v <-> $KQ LIMIT 10) s1) i, "
  . "(SELECT array_agg(id) FROM (SELECT id FROM f ORDER BY l2_distance(v, $KQ), id LIMIT 10) s2) s) x;\n"
  . "COMMIT;\n";

my @runs;
for my $s ([ 1, $churn_script ], [ 1, $vacuum_script ], [ 2, $check_script ])
{
	my ($out, $err) = ('', '');
	my $cmd = ScoreahTest::pgbench_cmd($node, clients => $s->[0], jobs => 1, secs => $SECS, scripts => [ [ $s->[1] ] ]);
	my $h = IPC::Run::start($cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	push @runs, [ $h, \$out, \$err ];
}
my @names = ('churn client', 'VACUUM client', 'checking clients');
my @ntx;
for my $i (0 .. $#runs)
{
	my ($h, $out, $err) = @{ $runs[$i] };
	my $ok = eval { $h->finish };
	ok($ok && $? == 0, "$names[$i]: pgbench exits 0") or diag("stdout:\n$$out\nstderr:\n$$err");
	like($$out, qr/number of failed transactions: 0 /, "$names[$i]: no failed transaction");
	unlike($$err, qr/error|aborted|mismatch|FATAL|PANIC/i, "$names[$i]: no error") or diag($$err);
	push @ntx, ScoreahTest::pgbench_transactions($$out) // 0;
}
cmp_ok($ntx[0], '>', 5, 'the table was emptied and refilled several times');
cmp_ok($ntx[1], '>', 2, 'VACUUM ran several times during the run');
cmp_ok($ntx[2], '>', 10, 'the in-snapshot checks ran');
ScoreahTest::figure('%d s: %d empty/refill cycles, %d VACUUMs, %d checks', $SECS, @ntx);

# ---- afterwards ----
for my $name ('f_l2', 'f_cos')
{
	is(ScoreahTest::index_check($node, $name), '', "after the run: scoreah_index_check('$name') is clean");
}
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) f');
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM f');
is($node->safe_psql('postgres', "SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE"
		. "SELECT count(*) || '/' || count(DISTINCT id) FROM (SELECT id FROM f ORDER BY v <-> '{"
		. join(',', (0.1) x $DIM) . "}' LIMIT 1000000) s"),
	"$rows/$rows", 'exhaustive scan returns every row once');
my $size2 = $node->safe_psql('postgres', "SELECT pg_relation_size('f_l2')");
ScoreahTest::figure("f_l2 index size: built $size0, after the run $size2 bytes");

# quiet again: emptying frees everything, refilling takes it back
$node->safe_psql('postgres', 'DELETE FROM f');
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) f');
all_free('after the run, VACUUM of the emptied table');
$node->safe_psql('postgres', 'INSERT INTO f (v) SELECT v FROM keep');
is($node->safe_psql('postgres', "SELECT pg_relation_size('f_l2')"), $size2,
	'after the run, refilling reuses the freed pages: the index does not grow');
is(ScoreahTest::index_check($node, 'f_l2'), '', 'index sound at the end');

ScoreahTest::figure('027_free_pages total %.1fs', time() - $t_start);
$node->stop;
done_testing();
