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
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time sleep);

my $DIM = 16;
my $t_start = time();

my $EXHAUSTIVE = "SET scoreah.num_leaves_to_search = 1000;\n"
  . "SET scoreah.reordering_num_neighbors = 1000000;\n";
my $RANDVEC_I = "ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, $DIM) WHERE i > 0)";
my $RANDVEC_G = "ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, $DIM) WHERE g > 0)";

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

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
autovacuum = off
max_connections = 30
# enable_seqscan = off makes plans cost 1e10: no JIT for them
jit = off
});
$node->start;

# No primary keys: the scoreah indexes are the only ones, so the index
# phase of VACUUM is theirs alone.
$node->safe_psql('postgres', qq{
	CREATE EXTENSION scoreah;
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
	return $node->safe_psql('postgres',
		"SELECT value FROM scoreah_index_info('$index') WHERE name = '$name'");
}

# pgbench in the background with script files written to the node's basedir
my $nscript = 0;
sub start_pgbench
{
	my ($clients, $secs, $rate, @scripts) = @_;    # scripts: [text, weight]
	my @opts;
	for my $s (@scripts)
	{
		my $path = $node->basedir . '/script' . ++$nscript . '.sql';
		PostgreSQL::Test::Utils::append_to_file($path, $s->[0]);
		push @opts, '-f', "$path\@$s->[1]";
	}
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', $clients, '-j', ($clients > 1 ? 2 : 1),
			'-T', $secs, '-R', $rate, @opts, '-h', $node->host, '-p', $node->port, 'postgres'
		],
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

sub count_via_index
{
	my ($tab, $op) = @_;
	return "SELECT count(*), count(DISTINCT id) FROM "
	  . "(SELECT id FROM $tab ORDER BY v $op '$queries[0]'::real[] LIMIT 1000000) s";
}

sub knn_sql
{
	my ($tab, $op, $q, $tiebreak) = @_;
	my $order = "v $op '$q'::real[]" . ($tiebreak ? ', id' : '');
	return "SELECT array_agg(id) FROM (SELECT id FROM $tab ORDER BY $order LIMIT 20) s";
}

# The checks run after every restart
sub verify
{
	my ($label) = @_;

	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		is($node->safe_psql('postgres', "SELECT * FROM scoreah_index_check('$name')"),
			'', "$label: scoreah_index_check('$name') finds no problem");

		my $plan = $node->safe_psql('postgres',
			"SET enable_seqscan = off; $EXHAUSTIVE EXPLAIN (COSTS OFF) " . count_via_index($tab, $op));
		like($plan, qr/Index Scan using $name on $tab/, "$label: the full scan goes through $name");

		my $via_index = $node->safe_psql('postgres',
			"SET enable_seqscan = off; $EXHAUSTIVE " . count_via_index($tab, $op));
		my $n = $node->safe_psql('postgres', "SELECT count(*) FROM $tab");
		is($via_index, "$n|$n", "$label: every row of $tab exactly once through $name ($n rows)");
		is( $node->safe_psql('postgres',
				"SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 2; "
				  . "SET scoreah.reordering_num_neighbors = 16; " . count_via_index($tab, $op)),
			"$n|$n", "$label: every row of $tab exactly once through $name in small batches");

		my ($idx, $seq) = ('', '');
		for my $q (@queries)
		{
			$idx .= $node->safe_psql('postgres',
				"SET enable_seqscan = off; $EXHAUSTIVE " . knn_sql($tab, $op, $q)) . "\n";
			$seq .= $node->safe_psql('postgres',
				"SET enable_indexscan = off; SET enable_bitmapscan = off; " . knn_sql($tab, $op, $q, 1)) . "\n";
		}
		is($idx, $seq, "$label: exhaustive kNN through $name equals the sequential scan");
	}
	return;
}

verify('before any crash');

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
my ($processed) = ${ $bench->{out} } =~ /number of transactions actually processed: (\d+)/;
my $aborted = () = ${ $bench->{err} } =~ /client \d+ aborted/g;
note(sprintf("figure: crash 1 after %.1f s of 4 inserting clients: %s transactions done, %d clients cut off",
		time() - $t1, $processed // '?', $aborted));

my $t2 = time();
$node->start;
note(sprintf("figure: restart (WAL replay) after crash 1: %.2f s", time() - $t2));

my $n1 = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
my $e1 = $node->safe_psql('postgres', 'SELECT count(*) FROM e');
note("figure: after crash 1: t has $n1 rows (was $n0; $n_before seen just before the crash), e has $e1 rows (was $e0)");
cmp_ok($n1, '>', $n0, 'rows committed before the crash survived');

verify('after crash during inserts');

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
note("figure: after crash 1 and VACUUM: t_l2 dead_slots=" . info_value('t_l2', 'dead_slots')
	  . ", e_l2 dead_slots=" . info_value('e_l2', 'dead_slots'));
verify('after crash 1 and VACUUM');

# ---- 2. crash during VACUUM ----
# Delete the oldest rows (the first heap pages: the rest of the table is
# all-visible since the VACUUM above, so the heap pass is short) and run a
# throttled VACUUM; crash once it has started invalidating index entries.
my $ndel = $node->safe_psql('postgres',
	'WITH d AS (DELETE FROM t WHERE id <= 2000 RETURNING 1) SELECT count(*) FROM d');
note("figure: deleted $ndel rows before the VACUUM; t_l2 "
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
note(sprintf("figure: crash 2 %.1f s after VACUUM started, %.2f s into its index phase ('%s')",
		time() - $t3, defined $in_index_phase ? time() - $in_index_phase : -1, $state));
$node->start;
verify('after crash during VACUUM');
note("figure: after crash 2 (replayed): dead slots t_l2=" . info_value('t_l2', 'dead_slots')
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
note("figure: 800 inserts after VACUUM: t_l2 dead_slots $dead_after -> $dead_reused, bytes $bytes_before -> "
	  . info_value('t_l2', 'bytes'));
verify('after reuse');

note(sprintf("figure: 021_crash total %.1f s", time() - $t_start));
$node->stop;
done_testing();
