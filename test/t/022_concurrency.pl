# Concurrency: several pgbench clients insert, search and delete through
# scoreah indexes while another client runs VACUUM over and over, so that
# inserts land in slots VACUUM has just freed while scans read the same
# pages.  A fraction of the transactions checks, inside one snapshot, that
# an exhaustive scan through each index returns every visible row exactly
# once and that its top 10 equals the sequential scan's; a mismatch raises
# an error that pgbench reports as a failed transaction.
#
# Meanwhile a third client runs scoreah_index_check() and
# scoreah_index_info() over and over on every index, one of which (f_l2,
# a dozen rows a leaf) loses whole leaves to the deletes, so that VACUUM
# frees their pages and inserts reuse them under the walks: a problem
# reported is an error.
#
# Afterwards: the pgbench runs exit 0 without a failed transaction or a
# client error; scoreah_index_check() is clean; exhaustive scans through
# the indexes (and scans in small batches) return each row of the table
# exactly once and their kNN equals the sequential scan; after a last
# VACUUM the indexes' live rows equal the table's.
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
my $SECS = 15;
my $t_start = time();

my $RANDVEC_I = ScoreahTest::random_vector_sql($DIM, 'i');
my $RANDVEC_G = ScoreahTest::random_vector_sql($DIM, 'g');
my $RANDQ = "(SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, $DIM))";
# the same query twice in one statement: a formula of a pgbench variable
my $KQ = ScoreahTest::pgbench_vector_sql($DIM);

# index, table, operator, distance function
my @targets = (
	[ 't_l2',  't', '<->', 'l2_distance' ],
	[ 't_cos', 't', '<=>', 'cosine_distance' ],
	[ 'e_l2',  'e', '<->', 'l2_distance' ],
	[ 'z_ip',  'z', '<#>', 'negative_inner_product' ],
	[ 'f_l2',  'f', '<->', 'l2_distance' ],);

# (enable_seqscan = off makes plans cost 1e10: no JIT for them)
my $node = ScoreahTest::new_node('concurrency',
	conf => [ 'autovacuum = off', 'max_connections = 30', 'jit = off', "deadlock_timeout = '100ms'" ]);
$node->safe_psql('postgres', qq{
	CREATE TABLE t (id bigserial PRIMARY KEY, v real[] NOT NULL);
	SELECT setseed(0.42);
	INSERT INTO t (v) SELECT $RANDVEC_I FROM generate_series(1, 3000) i;
	CREATE INDEX t_l2 ON t USING scoreah (v scoreah_l2_ops) WITH (num_leaves = 16);
	CREATE INDEX t_cos ON t USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 8);
	-- built empty: one leaf, every insert appends to the same chains
	CREATE TABLE e (id bigserial PRIMARY KEY, v real[] NOT NULL);
	CREATE INDEX e_l2 ON e USING scoreah (v) WITH (num_leaves = 8);
	INSERT INTO e (v) SELECT $RANDVEC_I FROM generate_series(1, 300) i;
	-- built empty and left without a row: the clients' first inserts race
	-- to fix its dimension
	CREATE TABLE z (id bigserial PRIMARY KEY, v real[] NOT NULL);
	CREATE INDEX z_ip ON z USING scoreah (v scoreah_ip_ops) WITH (num_leaves = 4);
	-- a dozen rows a leaf: deleting the rows nearest a point empties leaves
	CREATE TABLE f (id bigserial PRIMARY KEY, v real[] NOT NULL);
	INSERT INTO f (v) SELECT $RANDVEC_I FROM generate_series(1, 400) i;
	CREATE INDEX f_l2 ON f USING scoreah (v) WITH (num_leaves = 32);
});

# The scripts' kNN queries must go through the scoreah indexes
for my $tg (@targets)
{
	my ($name, $tab, $op) = @$tg;
	# (f is small: its churn turns sequential scans off)
	my $pre = $name eq 'f_l2' ? 'SET enable_seqscan = off; ' : '';
	like($node->safe_psql('postgres', "${pre}EXPLAIN (COSTS OFF) SELECT id FROM $tab ORDER BY v $op $RANDQ LIMIT 10"),
		qr/Index Scan using $name on $tab/, "kNN with a sub-select query vector uses $name");
	my $kq = $KQ =~ s/:k/7/r;
	like($node->safe_psql('postgres',
			"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM $tab ORDER BY v $op $kq LIMIT 1000000"),
		qr/Index Scan using $name on $tab/, "the exhaustive check's scan uses $name");
}

# ---- scripts ----
my $insert_script = qq{
INSERT INTO t (v) SELECT $RANDVEC_G FROM generate_series(1, 3) g;
SELECT id FROM t ORDER BY v <-> $RANDQ LIMIT 10;
INSERT INTO e (v) SELECT $RANDVEC_G FROM generate_series(1, 2) g;
SELECT id FROM t ORDER BY v <=> $RANDQ LIMIT 10;
SELECT id FROM e ORDER BY v <-> $RANDQ LIMIT 10;
INSERT INTO z (v) SELECT $RANDVEC_G FROM generate_series(1, 1) g;
SELECT id FROM z ORDER BY v <#> $RANDQ LIMIT 5;
};
# single-row deletes (no lock-order deadlocks), found through the indexes
my $delete_script = qq{
DELETE FROM t WHERE id = (SELECT id FROM t ORDER BY v <-> $RANDQ LIMIT 1);
DELETE FROM t WHERE id = (SELECT id FROM t ORDER BY v <=> $RANDQ LIMIT 1);
DELETE FROM e WHERE id = (SELECT id FROM e ORDER BY v <-> $RANDQ LIMIT 1);
BEGIN;
INSERT INTO t (v) SELECT $RANDVEC_G FROM generate_series(1, 2) g;
DELETE FROM t WHERE id = (SELECT max(id) FROM t);
ROLLBACK;
};
# whole leaves of f go, and come back
my $churn_script = ScoreahTest::leaf_churn_script('f', $DIM);
# one snapshot: every visible row once through the index, and the index's
# top 10 equal to the sequential scan's, also batch after batch, round after
# round; otherwise an error naming the numbers
my $check_script = ScoreahTest::snapshot_check_script($DIM, @targets);
my $vacuum_script = "VACUUM (INDEX_CLEANUP ON) t;\nVACUUM (INDEX_CLEANUP ON) e;\n"
  . "VACUUM (INDEX_CLEANUP ON) f;\n\\sleep 100 ms\n";
my $vacuum_auto_script = "VACUUM t;\nVACUUM e;\nVACUUM z;\nVACUUM f;\n\\sleep 100 ms\n";
# the introspection functions under all that: any problem is an error
my $introspect_script = ScoreahTest::introspect_script(map { $_->[0] } @targets);

my $n0 = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
my ($vout, $verr, $out, $err) = ('', '', '', '');
my $vac = IPC::Run::start(
	ScoreahTest::pgbench_cmd($node, clients => 1, secs => $SECS,
		scripts => [ [ $vacuum_script, 2 ], [ $vacuum_auto_script, 1 ] ]),
	'>', \$vout, '2>', \$verr, IPC::Run::timeout(120));
my ($iout, $ierr) = ('', '');
my $intro = IPC::Run::start(
	ScoreahTest::pgbench_cmd($node, clients => 1, secs => $SECS,
		scripts => [ [ $introspect_script, 1 ] ]),
	'>', \$iout, '2>', \$ierr, IPC::Run::timeout(120));
my $t1 = time();
my $ok = IPC::Run::run(
	ScoreahTest::pgbench_cmd($node, clients => 4, secs => $SECS,
		scripts => [ [ $insert_script, 5 ], [ $delete_script, 3 ], [ $check_script, 1 ],
			[ $churn_script, 2 ] ]),
	'>', \$out, '2>', \$err, IPC::Run::timeout(120));
my $rc = $?;
my $vok = eval { $vac->finish };
my $vrc = $?;
my $iok = eval { $intro->finish };
my $irc = $?;
my $elapsed = time() - $t1;

ok($ok && $rc == 0, 'pgbench (insert, kNN, delete, in-snapshot checks) exits 0')
  or diag("exit status $rc\nstdout:\n$out\nstderr:\n$err");
like($out, qr/number of failed transactions: 0 /, 'no failed transaction');
unlike($err, qr/error|aborted|mismatch|FATAL|PANIC/i, 'pgbench reports no error')
  or diag($err);
ok($vok && $vrc == 0, 'the VACUUM client exits 0') or diag("exit status $vrc\nstdout:\n$vout\nstderr:\n$verr");
unlike($verr, qr/error|aborted|FATAL|PANIC/i, 'the VACUUM client reports no error')
  or diag($verr);
ok($iok && $irc == 0, 'the scoreah_index_check/info client exits 0')
  or diag("exit status $irc\nstdout:\n$iout\nstderr:\n$ierr");
unlike($ierr, qr/error|aborted|mismatch|FATAL|PANIC/i,
	'scoreah_index_check finds no problem and scoreah_index_info no error while rows come and go')
  or diag($ierr);
my $nintro = ScoreahTest::pgbench_transactions($iout) // 0;
cmp_ok($nintro, '>', 3, 'the introspection client ran several rounds');

my $ntx = ScoreahTest::pgbench_transactions($out);
my ($tps) = $out =~ /tps = ([\d.]+)/;
my $nvac = ScoreahTest::pgbench_transactions($vout);
my @per_script = $out =~ /SQL script \d+: \S+\n - weight: \d+ \([^)]*\)\n - (\d+) transactions/g;
$ntx //= 0;
$nvac //= 0;
cmp_ok($ntx, '>', 100, 'the clients got work done');
cmp_ok($nvac, '>', 3, 'VACUUM ran several times during the run');
cmp_ok($per_script[2] // 0, '>', 5, 'the in-snapshot checks ran');
my $f_free = ScoreahTest::index_info($node, 'f_l2')->{bytes_free} // 0;
ScoreahTest::figure("%d s of 4 clients + 1 VACUUM client + 1 introspection client: %d transactions (%.0f tps; insert/delete/check/churn = %s), %d VACUUM rounds, %d introspection rounds, f_l2 bytes_free %s",
	$SECS, $ntx, $tps // 0, join('/', @per_script), $nvac, $nintro, $f_free);

my $n1 = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
my $e1 = $node->safe_psql('postgres', 'SELECT count(*) FROM e');
ScoreahTest::figure("t went from $n0 to $n1 rows, e has $e1 rows; t_l2 dead_slots="
	  . ScoreahTest::index_info($node, 't_l2')->{dead_slots});

# ---- after the run ----
my @queries = map {
	my $j = $_;
	'{' . join(',', map { sprintf('%.5f', sin($j * 0.91 + $_ * 0.47) * 0.8) } 0 .. $DIM - 1) . '}'
} 1 .. 3;

ScoreahTest::verify_exhaustive($node, 'after the run', \@targets, \@queries);

$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t; VACUUM (INDEX_CLEANUP ON) e; VACUUM (INDEX_CLEANUP ON) z; VACUUM (INDEX_CLEANUP ON) f;');
for my $tg (@targets)
{
	my ($name, $tab) = @$tg;
	is(ScoreahTest::index_info($node, $name)->{rows}, $node->safe_psql('postgres', "SELECT count(*) FROM $tab"),
		"after a last VACUUM: $name holds as many live rows as $tab");
}
ScoreahTest::verify_exhaustive($node, 'after a last VACUUM', \@targets, \@queries);
ScoreahTest::figure("after the last VACUUM: "
	  . join(', ', map {
			my $i = $_->[0];
			"$i " . $node->safe_psql('postgres',
				"SELECT string_agg(name || '=' || value, ' ' ORDER BY name) FROM scoreah_index_info('$i') "
				  . "WHERE name IN ('rows', 'dead_slots', 'bytes')")
		} @targets));

ScoreahTest::figure("022_concurrency total %.1f s", time() - $t_start);
$node->stop;
done_testing();
