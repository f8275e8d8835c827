# Crash recovery: a scoreah index must come back sound from an immediate
# shutdown (no checkpoint, WAL replay from the last one) taken
#   1. while several clients insert (some in multi-statement transactions
#      left open by the crash), into trained indexes and into an index
#      built on an empty table;
#   2. while VACUUM is invalidating dead TIDs in the indexes, with inserts
#      running alongside.
# After each restart: scoreah_index_check() finds no problem; an exhaustive
# scan through each index returns every row of the table exactly once (and
# EXPLAIN shows the index is what answers); exhaustive kNN equals the
# sequential scan.  After the VACUUM crash a new VACUUM must finish the job
# (live index rows = table rows) and inserts must reuse the freed slots.
# 3. after VACUUM freed whole leaves' pages: the next VACUUM finds them
#    again (the free space map is not WAL-logged) and inserts reuse them.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use IPC::Run;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $DIM = 16;
my $t_start = time();

my $RANDVEC_I = ScoreahTest::random_vector_sql($DIM, 'i');
my $RANDVEC_G = ScoreahTest::random_vector_sql($DIM, 'g');

my @queries;
for my $j (1 .. 3)
{
	push @queries,
	  '{' . join(',', map { sprintf('%.5f', cos($j * 2.11 + $_ * 0.53) * 0.8) } 0 .. $DIM - 1) . '}';
}

# index, table, operator
my @targets = (
	[ 't_l2',  't', '<->' ],
	[ 't_cos', 't', '<=>' ],
	[ 'e_l2',  'e', '<->' ],);

# (enable_seqscan = off makes plans cost 1e10: no JIT for them)
my $node = ScoreahTest::new_node('crash', conf => [ 'autovacuum = off', 'max_connections = 30', 'jit = off' ]);

# No primary keys: the scoreah indexes are the only ones, so the index
# phase of VACUUM is theirs alone.
$node->safe_psql('postgres', qq{
	CREATE TABLE t (id bigserial, v real[] NOT NULL);
	SELECT setseed(0.31);
	INSERT INTO t (v) SELECT $RANDVEC_I FROM generate_series(1, 3000) i;
	CREATE INDEX t_l2 ON t USING scoreah (v scoreah_l2_ops) WITH (num_leaves = 10);
	CREATE INDEX t_cos ON t USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 8);
	CREATE TABLE e (id bigserial, v real[] NOT NULL);
	CREATE INDEX e_l2 ON e USING scoreah (v) WITH (num_leaves = 10);
	INSERT INTO e (v) SELECT $RANDVEC_I FROM generate_series(1, 50) i;
	CHECKPOINT;
});

sub info_value
{
	my ($index, $name) = @_;
	return ScoreahTest::index_info($node, $index)->{$name};
}

# pgbench in the background
sub start_pgbench
{
	my ($clients, $secs, $rate, @scripts) = @_;    # scripts: [text, weight]
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		ScoreahTest::pgbench_cmd($node, clients => $clients, secs => $secs, rate => $rate, scripts => \@scripts),
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(180));
	return { h => $h, out => \$out, err => \$err };
}

# Wait for a background program that the crash cut off; its exit status
# does not matter, only that it is gone.
sub reap
{
	my ($bg) = @_;
	eval { $bg->{h}->finish; };
	if ($@)
	{
		$bg->{h}->kill_kill;
		diag("background program did not end by itself: $@");
	}
	return;
}

ScoreahTest::verify_exhaustive($node, 'before any crash', \@targets, \@queries);

# ---- 1. crash while clients insert ----
my $insert_script = qq{
\\set n random(1, 8)
INSERT INTO t (v) SELECT $RANDVEC_G FROM generate_series(1, :n) g;
INSERT INTO e (v) SELECT $RANDVEC_G FROM generate_series(1, 2) g;
};
# transactions of several statements, some open when the crash comes
my $txn_script = qq{
BEGIN;
INSERT INTO t (v) SELECT $RANDVEC_G FROM generate_series(1, 5) g;
INSERT INTO e (v) SELECT $RANDVEC_G FROM generate_series(1, 3) g;
\\sleep 5 ms
INSERT INTO t (v) SELECT $RANDVEC_G FROM generate_series(1, 5) g;
COMMIT;
};
# some deletes and rolled-back inserts leave dead rows behind
my $mixed_script = qq{
\\set lo random(1, 3000)
DELETE FROM t WHERE id BETWEEN :lo AND :lo + 2;
BEGIN;
INSERT INTO t (v) SELECT $RANDVEC_G FROM generate_series(1, 4) g;
ROLLBACK;
};

my $n0 = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
my $e0 = $node->safe_psql('postgres', 'SELECT count(*) FROM e');
my $bench = start_pgbench(4, 60, 400, [ $insert_script, 6 ], [ $txn_script, 3 ], [ $mixed_script, 1 ]);

# let them run a few seconds, making sure rows are arriving
my $t1 = time();
my $grown = 0;
while (time() - $t1 < 20)
{
	sleep(0.5);
	my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
	if ($n > $n0 + 500 && time() - $t1 >= 3)
	{
		$grown = 1;
		last;
	}
}
ok($grown, 'the inserting clients added rows before the crash');
my $n_before = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
$node->stop('immediate');
reap($bench);
my $processed = ScoreahTest::pgbench_transactions(${ $bench->{out} });
my $aborted = () = ${ $bench->{err} } =~ /client \d+ aborted/g;
ScoreahTest::figure("crash 1 after %.1f s of 4 inserting clients: %s transactions done, %d clients cut off",
	time() - $t1, $processed // '?', $aborted);

my $t2 = time();
$node->start;
ScoreahTest::figure("restart (WAL replay) after crash 1: %.2f s", time() - $t2);

my $n1 = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
my $e1 = $node->safe_psql('postgres', 'SELECT count(*) FROM e');
ScoreahTest::figure("after crash 1: t has $n1 rows (was $n0; $n_before seen just before the crash), e has $e1 rows (was $e0)");
cmp_ok($n1, '>', $n0, 'rows committed before the crash survived');

ScoreahTest::verify_exhaustive($node, 'after crash during inserts', \@targets, \@queries);

# VACUUM after the crash removes the aborted and deleted rows from the index
# (INDEX_CLEANUP ON: PG15 skips the index pass when few heap pages have
# dead items, which would leave a handful of dead TIDs in the index)
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t; VACUUM (INDEX_CLEANUP ON) e;');
for my $tg (@targets)
{
	my ($name, $tab) = @$tg;
	is(info_value($name, 'rows'), $node->safe_psql('postgres', "SELECT count(*) FROM $tab"),
		"after crash 1 and VACUUM: $name holds as many live rows as $tab");
}
ScoreahTest::figure("after crash 1 and VACUUM: t_l2 dead_slots=" . info_value('t_l2', 'dead_slots')
	  . ", e_l2 dead_slots=" . info_value('e_l2', 'dead_slots'));
ScoreahTest::verify_exhaustive($node, 'after crash 1 and VACUUM', \@targets, \@queries);

# ---- 2. crash during VACUUM ----
# Delete the oldest rows (the first heap pages: the rest of the table is
# all-visible since the VACUUM above, so the heap pass is short) and run a
# throttled VACUUM; crash once it has started invalidating index entries.
my $ndel = $node->safe_psql('postgres',
	'WITH d AS (DELETE FROM t WHERE id <= 2000 RETURNING 1) SELECT count(*) FROM d');
ScoreahTest::figure("deleted $ndel rows before the VACUUM; t_l2 "
	  . info_value('t_l2', 'bytes_codes') . " bytes of code pages");

my ($vout, $verr) = ('', '');
my $vac = IPC::Run::start(
	[
		'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		'-c', 'SET vacuum_cost_delay = 20',
		'-c', 'SET vacuum_cost_limit = 1',
		'-c', 'VACUUM (INDEX_CLEANUP ON) t'
	],
	'>', \$vout, '2>', \$verr,
	IPC::Run::timeout(180));
my $bench2 = start_pgbench(2, 60, 50, [ $insert_script, 1 ]);

# crash a little after VACUUM enters its index phase (the scoreah indexes
# are the table's only ones).  The phase is short, about 20 code pages per
# index at 20 ms each: crash 0.1 s into it, not later.
my $state = '';
my $t3 = time();
my $in_index_phase;
while (time() - $t3 < 60)
{
	$state = $node->safe_psql('postgres', 'SELECT phase FROM pg_stat_progress_vacuum');
	if ($state eq 'vacuuming indexes')
	{
		$in_index_phase //= time();
		last if time() - $in_index_phase > 0.1;
	}
	last if $state eq '' && time() - $t3 > 5;    # over (or never started)
	sleep(0.05);
}
$node->stop('immediate');
reap($bench2);
eval { $vac->finish; };
is($state, 'vacuuming indexes', 'the server crashed while VACUUM was in its index phase');
ScoreahTest::figure("crash 2 %.1f s after VACUUM started, %.2f s into its index phase ('%s')",
	time() - $t3, defined $in_index_phase ? time() - $in_index_phase : -1, $state);
$node->start;
ScoreahTest::verify_exhaustive($node, 'after crash during VACUUM', \@targets, \@queries);
ScoreahTest::figure("after crash 2 (replayed): dead slots t_l2=" . info_value('t_l2', 'dead_slots')
	  . " t_cos=" . info_value('t_cos', 'dead_slots'));

# A new VACUUM completes what the crashed one started
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t; VACUUM (INDEX_CLEANUP ON) e;');
my $nt = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
for my $tg (@targets)
{
	my ($name, $tab) = @$tg;
	is(info_value($name, 'rows'), $node->safe_psql('postgres', "SELECT count(*) FROM $tab"),
		"after crash 2 and VACUUM: $name holds as many live rows as $tab");
}
my $dead_after = info_value('t_l2', 'dead_slots');
cmp_ok($dead_after, '>=', $ndel, "after crash 2 and VACUUM: the $ndel deleted rows are dead slots of t_l2");

# Inserts reuse the slots VACUUM freed
my $bytes_before = info_value('t_l2', 'bytes');
$node->safe_psql('postgres', qq{
	SELECT setseed(0.77);
	INSERT INTO t (v) SELECT $RANDVEC_I FROM generate_series(1, 800) i;
});
my $dead_reused = info_value('t_l2', 'dead_slots');
cmp_ok($dead_reused, '<', $dead_after, 'inserts after the VACUUM reuse dead slots');
ScoreahTest::figure("800 inserts after VACUUM: t_l2 dead_slots $dead_after -> $dead_reused, bytes $bytes_before -> "
	  . info_value('t_l2', 'bytes'));
ScoreahTest::verify_exhaustive($node, 'after reuse', \@targets, \@queries);

# ---- 3. pages freed just before a crash ----
# VACUUM gives a leaf's pages to the free space map, which is not
# WAL-logged: the crash loses what it recorded.  The next VACUUM must find
# the deleted pages again, so that inserts reuse them instead of growing
# the index.
$node->safe_psql('postgres', qq{
	CREATE TABLE p (id int, v real[] NOT NULL);
	SELECT setseed(0.5);
	INSERT INTO p SELECT i, $RANDVEC_I FROM generate_series(1, 2000) i;
	CREATE INDEX p_l2 ON p USING scoreah (v) WITH (num_leaves = 8);
	CHECKPOINT;
});
my $p_size0 = $node->safe_psql('postgres', "SELECT pg_relation_size('p_l2')");
$node->safe_psql('postgres', 'DELETE FROM p');
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) p');
my $p_free = info_value('p_l2', 'bytes_free');
cmp_ok($p_free, '>', 0, "VACUUM of an emptied table freed index pages ($p_free bytes)");
$node->stop('immediate');
$node->start;
is(info_value('p_l2', 'bytes_free'), $p_free, 'after the crash the freed pages are still deleted pages');
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) p');
$node->safe_psql('postgres', qq{
	SELECT setseed(0.5);
	INSERT INTO p SELECT i, $RANDVEC_I FROM generate_series(1, 2000) i;
});
my $p_size1 = $node->safe_psql('postgres', "SELECT pg_relation_size('p_l2')");
cmp_ok($p_size1, '<=', $p_size0 + 8 * 8192,
	"after crash and VACUUM the same rows fit in the freed pages, plus at most a page per leaf ($p_size1 vs $p_size0 bytes)");
is(ScoreahTest::index_check($node, 'p_l2'), '', 'p_l2 sound after reusing the pages');
is($node->safe_psql('postgres', 'SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM p ORDER BY v <-> '
		  . "(SELECT v FROM p LIMIT 1) LIMIT 100000) s"), '2000', 'every row found through p_l2');

ScoreahTest::figure("021_crash total %.1f s", time() - $t_start);
$node->stop;
done_testing();
