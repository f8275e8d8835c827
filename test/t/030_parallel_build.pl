# Parallel build: the same index with 0 and 2 parallel workers.
#
# PostgreSQL 15 gives parallel workers to btree builds only, so scoreah runs
# its own ParallelContext: workers scan parts of the heap, assign and encode
# rows into tuplesorts over a shared file set, the leader merges and writes.
# The model (centroids, codebooks) is trained from the same sample (a large
# tree's k-means assigns points with the workers too, adding their sums in
# a fixed order; the workers train codebook blocks, each from its own data
# and seed), so both builds must hold the same rows in the same
# leaves with the same codes; rows within a leaf may come in another order.  This
# file checks that the parallel build really used workers (DEBUG1 message),
# that scoreah_index_info reports the same leaves and rows, that
# exhaustive and default-setting queries return the same rows in the same
# order, that pg_stat_progress_create_index counted every tuple, that the
# metapages are the same, and that workers that cannot be forked fail the
# build instead of hanging it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $DIM = 24;
my $ROWS = 20000;
my $t_start = time();

my $node = ScoreahTest::new_node('parallel_build',
	conf => [ 'max_worker_processes = 8', 'max_parallel_workers = 8', 'max_parallel_maintenance_workers = 2',
		'maintenance_work_mem = 256MB', 'jit = off' ]);
$node->safe_psql('postgres', qq{
	CREATE TABLE t (id int PRIMARY KEY, v real[]) WITH (parallel_workers = 2);
	INSERT INTO t SELECT i, ARRAY(SELECT sin(i * 0.0173 + d * 0.61 + (i % 13) * 0.3)::real
	                              FROM generate_series(1, $DIM) d WHERE i > 0)
	  FROM generate_series(1, $ROWS) i;
	ANALYZE t;
});

# the third: enough leaves that the tree's k-means assigns points with the
# workers too (full search of 2,100 centers x 24 dimensions for 20,000
# rows: 10^9 multiply-adds an iteration)
my @opts = ('scoreah_l2_ops', 'num_leaves = 40, anisotropic_quantization_threshold = 0.3',
	'scoreah_cosine_ops', 'num_leaves = 30, anisotropic_quantization_threshold = 0.2, reordering_storage = float16',
	'scoreah_l2_ops', 'num_leaves = 2100');

sub build
{
	my ($name, $workers, $opclass, $with) = @_;
	my $t0 = time();
	my ($ret, $out, $err) = $node->psql('postgres', qq{
		SET max_parallel_maintenance_workers = $workers;
		SET client_min_messages = debug1;
		CREATE INDEX $name ON t USING scoreah (v $opclass) WITH ($with);
	});
	is($ret, 0, "$name builds with max_parallel_maintenance_workers = $workers") or diag($err);
	ScoreahTest::figure('%s (%d workers requested) built in %.2f s', $name, $workers, time() - $t0);
	return $err;
}

sub results
{
	my ($name, $op, $settings) = @_;
	my $out = '';
	for my $q (1 .. 5)
	{
		my $vec = '{' . join(',', map { sprintf('%.4f', sin($q * 1.7 + $_ * 0.61)) } 1 .. $DIM) . '}';
		$out .= $node->safe_psql('postgres', qq{
			SET enable_seqscan = off; $settings
			SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v $op '$vec' LIMIT 50) s;
		}) . "\n";
	}
	return $out;
}

my $exhaustive = $ScoreahTest::EXHAUSTIVE;
my $default = 'SET scoreah.num_leaves_to_search = 3; SET scoreah.reordering_num_neighbors = 30;';

while (my ($opclass, $with) = splice(@opts, 0, 2))
{
	my $op = $opclass eq 'scoreah_l2_ops' ? '<->' : '<=>';
	my $big = $with =~ /2100/;
	my $serial = 'serial_' . $opclass . ($big ? '_2100' : '');
	my $parallel = 'parallel_' . $opclass . ($big ? '_2100' : '');

	my $err = build($serial, 0, $opclass, $with);
	unlike($err, qr/(using|with) \d+ parallel workers/, "$serial: no parallel workers");
	my %s = (info => ScoreahTest::index_info($node, $serial));
	$s{exhaustive} = results($serial, $op, $exhaustive);
	$s{default} = results($serial, $op, $default);
	$node->safe_psql('postgres', "DROP INDEX $serial");

	$err = build($parallel, 2, $opclass, $with);
	like($err, qr/using [12] parallel workers/, "$parallel: the build used parallel workers");
	like($err, qr/codebook training with [12] parallel workers/,
		"$parallel: the codebooks were trained with parallel workers");
	if ($big)
	{
		like($err, qr/k-means with [12] parallel workers/, "$parallel: the tree's k-means used parallel workers");
	}
	else
	{
		unlike($err, qr/k-means with/, "$parallel: a small tree's k-means runs in the leader");
	}
	my %p = (info => ScoreahTest::index_info($node, $parallel));
	$p{exhaustive} = results($parallel, $op, $exhaustive);
	$p{default} = results($parallel, $op, $default);

	for my $k (qw(rows rows_built num_leaves rows_per_leaf_min rows_per_leaf_median
		rows_per_leaf_max empty_leaves bytes_codes bytes_vectors))
	{
		is($p{info}{$k}, $s{info}{$k}, "$opclass: $k is the same serial and parallel ($s{info}{$k})");
	}
	is($p{info}{rows}, $ROWS, "$opclass: every row indexed");
	is($p{exhaustive}, $s{exhaustive}, "$opclass: exhaustive top-50 of 5 queries equal serial and parallel");
	is($p{default}, $s{default}, "$opclass: top-50 at 3 leaves / 30 re-ranked equal serial and parallel");
	is(ScoreahTest::index_check($node, $parallel), '', "$parallel: scoreah_index_check is clean");
	$node->safe_psql('postgres', "DROP INDEX $parallel");
}

# progress: a second session watches pg_stat_progress_create_index while a
# parallel build runs on a bigger table; the last tuples_done it sees during
# the encoding phase must not exceed tuples_total, and phases must be named
$node->safe_psql('postgres', qq{
	CREATE TABLE big (id int, v real[]) WITH (parallel_workers = 2);
	INSERT INTO big SELECT i, ARRAY(SELECT sin(i * 0.011 + d * 0.37)::real FROM generate_series(1, 64) d WHERE i > 0)
	  FROM generate_series(1, 120000) i;
});
my $bg = $node->background_psql('postgres');
$bg->query_until(qr/started/, q{
	SET max_parallel_maintenance_workers = 2;
	\echo started
	CREATE INDEX big_idx ON big USING scoreah (v) WITH (num_leaves = 300);
});
my %phases;
my ($maxdone, $total) = (0, 0);
for (1 .. 600)
{
	my $row = $node->safe_psql('postgres',
		"SELECT phase || '|' || tuples_done || '|' || tuples_total FROM pg_stat_progress_create_index");
	last if $row eq '' && %phases;
	if ($row ne '')
	{
		my ($phase, $done, $tot) = split /\|/, $row;
		$phases{$phase} = 1;
		if ($phase =~ /encoding/)
		{
			$maxdone = $done if $done > $maxdone;
			$total = $tot;
		}
	}
	select(undef, undef, undef, 0.05);
}
$bg->quit;
ok(scalar(grep { /sampling|tree|codebooks|encoding|writing/ } keys %phases) >= 2,
	'progress shows named build phases: ' . join(', ', sort keys %phases));
cmp_ok($maxdone, '<=', $total, "tuples_done ($maxdone) never passes tuples_total ($total) while encoding");
is(ScoreahTest::index_info($node, 'big_idx')->{rows}, '120000', 'the parallel build indexed every row of the bigger table');

# The metapages of a serial and a parallel build are the same past the
# build's random id (bytes 24-39 of the page: the page header's 24, magic,
# version, buildId): the rows' mean distance to their centroids (the
# staleness reference), summed by each participant and added as they
# finished, differed in its last bits (a review, session 35).
$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pageinspect');
my $metasql = "SELECT md5(substring(get_raw_page('%s', 0) from 41))";
build('meta_serial', 0, 'scoreah_l2_ops', 'num_leaves = 40');
build('meta_parallel', 2, 'scoreah_l2_ops', 'num_leaves = 40');
is($node->safe_psql('postgres', sprintf($metasql, 'meta_parallel')),
	$node->safe_psql('postgres', sprintf($metasql, 'meta_serial')),
	'the parallel build writes the serial build\'s metapage');
$node->safe_psql('postgres', 'DROP INDEX meta_serial; DROP INDEX meta_parallel');

# Workers that never start: with the postmaster unable to fork (its
# process limit lowered to 1), the encoding pass's leader waited for ever
# for workers registered but never forked (CREATE INDEX hung until
# statement_timeout).  Now it fails as a B-tree build does.  The training
# samples are kept small so that the encoding pass is the first to
# launch workers.
SKIP:
{
	my $pid = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	my $soft = `prlimit --pid $pid --nproc --output=SOFT --noheadings 2>/dev/null`;
	chomp $soft;
	$soft =~ s/^\s+//;
	skip 'prlimit cannot read the postmaster\'s process limit', 3 if $? != 0 || $soft eq '';
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->query_safe("SET max_parallel_maintenance_workers = 2; SET statement_timeout = '60s'");
	system('prlimit', "--pid=$pid", '--nproc=1:') == 0 or skip 'prlimit cannot lower the limit', 3;
	eval {
		$s->query(q{CREATE INDEX nofork ON t USING scoreah (v)
			WITH (num_leaves = 40, training_sample_size = 1000, leaves_training_sample_size = 1000)});
	};
	my $err = $@ || $s->{stderr};
	system('prlimit', "--pid=$pid", "--nproc=$soft:") == 0 or die "prlimit could not restore $soft";
	like($err, qr/parallel worker failed to initialize/,
		'a build whose workers cannot be forked fails at once') or diag($err);
	$s->{stderr} = '';
	is($s->query_safe('SELECT count(*) FROM pg_class WHERE relname = \'nofork\''), '0', 'and leaves no index');
	$s->quit;
	build('after_nofork', 2, 'scoreah_l2_ops', 'num_leaves = 40');
	$node->safe_psql('postgres', 'DROP INDEX after_nofork');
}

ScoreahTest::figure('030_parallel_build total %.1fs', time() - $t_start);
$node->stop;
done_testing();
