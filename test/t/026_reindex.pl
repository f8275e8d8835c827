# Rebuilding and re-creating a scoreah index every way PostgreSQL can:
# REINDEX, REINDEX CONCURRENTLY and CREATE INDEX CONCURRENTLY while another
# session inserts and updates rows, DROP INDEX CONCURRENTLY, TRUNCATE, VACUUM
# FULL, CLUSTER (not supported on a scoreah index: an error; on another
# index of the table it rebuilds the scoreah one), an UNLOGGED table across
# a crash, and ALTER TABLE ... SET LOGGED.
#
# After each, with exhaustive settings (every leaf searched, every
# candidate re-ranked, enable_seqscan = off) the index must return exactly
# what a sequential scan returns (ids of the top 20 of 12 queries, in
# order), hold every visible row of the table (an index scan with a LIMIT
# above the table's size returns count(*) rows), be the index the plan
# uses, and scoreah_index_check must be empty.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use IPC::Run;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $NROWS = 20000;
my $DIM = 16;
my $T0 = time;

my $node = ScoreahTest::new_node('reindex',
	conf => [ 'shared_buffers = 128MB', 'fsync = off', 'autovacuum = off', 'jit = off',
		'max_parallel_workers_per_gather = 0' ]);

$node->safe_psql(
	'postgres', qq{
	CREATE FUNCTION rvec() RETURNS real[] LANGUAGE sql VOLATILE
		AS 'SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, $DIM)';
	SELECT setseed(0.5);
	CREATE TABLE qs (id int PRIMARY KEY, v real[]);
	INSERT INTO qs SELECT i, rvec() FROM generate_series(1, 12) i;
	CREATE TABLE t (id bigserial PRIMARY KEY, v real[], src text DEFAULT 'load');
	INSERT INTO t (v) SELECT rvec() FROM generate_series(1, $NROWS);
	CREATE TABLE stop_flag (x int);
	ANALYZE;
});

my $EXHAUSTIVE = "SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE";
my $SEQ = $ScoreahTest::SEQSCAN;

# Top 20 of every query: "qid:id,id,...;qid:..."
sub top20
{
	my ($settings, $table) = @_;
	return $node->safe_psql(
		'postgres', qq{$settings
		SELECT string_agg(q.id || ':' || r.ids, ';' ORDER BY q.id)
		FROM qs q CROSS JOIN LATERAL (
			SELECT string_agg(id::text, ',' ORDER BY n) AS ids
			FROM (SELECT id, row_number() OVER () AS n
				  FROM (SELECT id FROM $table x ORDER BY x.v <-> q.v LIMIT 20) a) b) r});
}

sub verify
{
	my ($what, $table, $index) = @_;
	like($node->safe_psql('postgres', "$EXHAUSTIVE EXPLAIN (COSTS OFF) "
			  . "SELECT id FROM $table ORDER BY v <-> (SELECT v FROM qs LIMIT 1) LIMIT 20"),
		qr/Index Scan using $index on $table/, "$what: the k-NN query uses $index");
	my $idx = top20($EXHAUSTIVE, $table);
	my $seq = top20($SEQ, $table);
	ok(length($seq) > 12 * 20, "$what: the sequential scan returns rows");
	is($idx, $seq, "$what: exhaustive index scan returns the sequential scan's ids");
	my $all = "SELECT id FROM $table ORDER BY v <-> (SELECT v FROM qs LIMIT 1) LIMIT 10000000";
	like($node->safe_psql('postgres', "$EXHAUSTIVE EXPLAIN (COSTS OFF) SELECT count(*) FROM ($all) s"),
		qr/Index Scan using $index on $table/, "$what: the every-row query uses $index");
	my ($count, $via_index) = split /\|/, $node->safe_psql(
		'postgres', "$EXHAUSTIVE
		SELECT (SELECT count(*) FROM $table), (SELECT count(*) FROM ($all) s)");
	is($via_index, $count, "$what: the index holds all $count rows");
	is(ScoreahTest::index_check($node, $index), '', "$what: scoreah_index_check finds no problem");
	return;
}

# A second session inserting rows (5 per transaction) and moving existing
# rows to new vectors (non-HOT updates), one commit per loop, until
# stop_flag has a row.  Returns a function that stops it and returns the
# number of loops it ran.
sub start_writer
{
	my ($tag) = @_;
	$node->safe_psql('postgres', 'DELETE FROM stop_flag');
	my ($out, $err) = ('', '');
	my $sql = qq{
DO \$\$
DECLARE
	n int := 0;
BEGIN
	LOOP
		INSERT INTO t (v, src) SELECT rvec(), '$tag' FROM generate_series(1, 5);
		UPDATE t SET v = rvec() WHERE id = 1 + (n * 7919) % $NROWS;
		COMMIT;
		n := n + 1;
		EXIT WHEN n >= 100000 OR EXISTS (SELECT 1 FROM stop_flag);
	END LOOP;
	RAISE NOTICE 'writer loops: %', n;
END
\$\$;};
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(180));
	$node->poll_query_until('postgres', "SELECT count(*) >= 50 FROM t WHERE src = '$tag'")
	  or die "writer $tag did not start: $err";
	return sub {
		$node->safe_psql('postgres', 'INSERT INTO stop_flag VALUES (1)');
		$h->finish;
		is($h->full_result(0), 0, "$tag writer finished without error") or diag($err);
		unlike($err, qr/ERROR|WARNING/, "$tag writer: no error or warning");
		my ($loops) = $err =~ /writer loops: (\d+)/;
		return $loops // 0;
	};
}

sub rows_from
{
	my ($tag) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM t WHERE src = '$tag'");
}

# ---- plain build, REINDEX ----

my $secs = ScoreahTest::timed_sql($node, 'CREATE INDEX t_v_idx ON t USING scoreah (v) WITH (num_leaves = 60)');
ScoreahTest::figure('%d rows, %d dims: CREATE INDEX %.2fs', $NROWS, $DIM, $secs);
verify('CREATE INDEX', 't', 't_v_idx');

$node->safe_psql('postgres', q{DELETE FROM t WHERE id % 3 = 0; INSERT INTO t (v, src) SELECT rvec(), 'extra' FROM generate_series(1, 1000)});
verify('after deletes and inserts', 't', 't_v_idx');
$secs = ScoreahTest::timed_sql($node, 'REINDEX INDEX t_v_idx');
ScoreahTest::figure('REINDEX INDEX %.2fs', $secs);
verify('REINDEX INDEX', 't', 't_v_idx');
is(ScoreahTest::index_info($node, 't_v_idx')->{rows_inserted_since_build}, '0', 'REINDEX INDEX: nothing inserted since the build');

# ---- REINDEX INDEX CONCURRENTLY with a writer ----

my $stop = start_writer('during_reindex_cc');
my $before = rows_from('during_reindex_cc');
$secs = ScoreahTest::timed_sql($node, 'REINDEX INDEX CONCURRENTLY t_v_idx');
my $after = rows_from('during_reindex_cc');
my $loops = $stop->();
ScoreahTest::figure('REINDEX INDEX CONCURRENTLY %.2fs; rows inserted while it ran: %d (writer loops %d)',
	$secs, $after - $before, $loops);
cmp_ok($after - $before, '>', 0, 'REINDEX CONCURRENTLY: the writer inserted rows while it ran');
is($node->safe_psql('postgres', q{SELECT indisvalid AND indisready FROM pg_index WHERE indexrelid = 't_v_idx'::regclass}),
	't', 'REINDEX CONCURRENTLY: the index is valid');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE 't_v_idx_ccnew%' OR relname LIKE 't_v_idx_ccold%'}),
	'0', 'REINDEX CONCURRENTLY: no leftover index');
verify('REINDEX INDEX CONCURRENTLY with a concurrent writer', 't', 't_v_idx');

# ---- DROP INDEX CONCURRENTLY, then CREATE INDEX CONCURRENTLY with a writer ----

$node->safe_psql('postgres', 'DROP INDEX CONCURRENTLY t_v_idx');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 't_v_idx'}),
	'0', 'DROP INDEX CONCURRENTLY: index gone');
unlike($node->safe_psql('postgres', "$EXHAUSTIVE EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY v <-> (SELECT v FROM qs LIMIT 1) LIMIT 20"),
	qr/t_v_idx/, 'DROP INDEX CONCURRENTLY: plans no longer use it');
is(top20($EXHAUSTIVE, 't'), top20($SEQ, 't'), 'DROP INDEX CONCURRENTLY: queries still answer');

$stop = start_writer('during_cic');
$before = rows_from('during_cic');
$secs = ScoreahTest::timed_sql($node, 'CREATE INDEX CONCURRENTLY t_v_idx ON t USING scoreah (v) WITH (num_leaves = 60)');
$after = rows_from('during_cic');
$loops = $stop->();
ScoreahTest::figure('CREATE INDEX CONCURRENTLY %.2fs; rows inserted while it ran: %d (writer loops %d)',
	$secs, $after - $before, $loops);
cmp_ok($after - $before, '>', 0, 'CREATE INDEX CONCURRENTLY: the writer inserted rows while it ran');
is($node->safe_psql('postgres', q{SELECT indisvalid AND indisready FROM pg_index WHERE indexrelid = 't_v_idx'::regclass}),
	't', 'CREATE INDEX CONCURRENTLY: the index is valid');
verify('CREATE INDEX CONCURRENTLY with a concurrent writer', 't', 't_v_idx');

# ---- introspection while a CREATE INDEX CONCURRENTLY builds ----
# The index exists from the command's first step, not ready: of no pages
# while the command waits for a writer's transaction, then with its
# metapage still zero while it builds.  scoreah_index_info and
# scoreah_index_check must say it is not ready, not that it is corrupt (a
# review's loop during a build got "unexpected zero page at block 0",
# ERRCODE_INDEX_CORRUPTED, and "has no metapage: it was never built").
my $blocker = $node->background_psql('postgres');
$blocker->query_safe(q{BEGIN; INSERT INTO t (v, src) SELECT rvec(), 'blocker'});
my ($cic_out, $cic_err) = ('', '');
my $cic = IPC::Run::start(
	[ $node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
	  '-c', 'CREATE INDEX CONCURRENTLY t_v_cic ON t USING scoreah (v) WITH (num_leaves = 20)' ],
	'>', \$cic_out, '2>', \$cic_err, IPC::Run::timeout(180));
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
	WHERE c.relname = 't_v_cic' AND NOT i.indisready})
  or die "CREATE INDEX CONCURRENTLY did not start: $cic_err";
my ($irc, $iout, $ierr) = $node->psql('postgres', q{SELECT * FROM scoreah_index_info('t_v_cic')});
isnt($irc, 0, 'info on an index being built concurrently: an error');
like($ierr, qr/ERROR:  index "t_v_cic" is not ready: a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY is building it/,
	'info says the index is not ready');
unlike($ierr, qr/corrupt|zero page|never built/, 'info does not call it corrupt');
is($node->safe_psql('postgres', q{SELECT * FROM scoreah_index_check('t_v_cic')}),
	'index is not ready: a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY is building it, or failed (then drop it or REINDEX it)',
	'check reports only that the index is not ready');
$blocker->query_safe('COMMIT');
$blocker->quit;
$cic->finish;
is($cic->full_result(0), 0, 'CREATE INDEX CONCURRENTLY finished once the writer committed') or diag($cic_err);
is($node->safe_psql('postgres', q{SELECT * FROM scoreah_index_check('t_v_cic')}), '', 'built: check finds nothing');
is(ScoreahTest::index_info($node, 't_v_cic')->{rows}, $node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'built: info counts every row');
$node->safe_psql('postgres', 'DROP INDEX t_v_cic');

# ---- TRUNCATE, then insert ----

$node->safe_psql('postgres', 'TRUNCATE t');
my $info = ScoreahTest::index_info($node, 't_v_idx');
is($info->{rows}, '0', 'TRUNCATE: the index is empty');
ScoreahTest::figure('after TRUNCATE: trained=%s num_leaves=%s dimensions=%s advice=%s',
	$info->{trained}, $info->{num_leaves}, $info->{dimensions}, $info->{advice});
$node->safe_psql('postgres', "INSERT INTO t (v, src) SELECT rvec(), 'after_truncate' FROM generate_series(1, 5000); ANALYZE t");
$info = ScoreahTest::index_info($node, 't_v_idx');
is($info->{rows}, '5000', 'TRUNCATE then insert: info counts the new rows');
verify('TRUNCATE then insert', 't', 't_v_idx');

# ---- VACUUM FULL ----

$node->safe_psql('postgres', "DELETE FROM t WHERE id % 4 = 0; INSERT INTO t (v, src) SELECT rvec(), 'before_vf' FROM generate_series(1, 15000)");
$secs = ScoreahTest::timed_sql($node, 'VACUUM FULL t');
ScoreahTest::figure('VACUUM FULL %.2fs', $secs);
$info = ScoreahTest::index_info($node, 't_v_idx');
is($info->{trained}, 'true', 'VACUUM FULL: the rebuilt index is trained');
is($info->{dead_slots}, '0', 'VACUUM FULL: no dead slots');
is($info->{rows}, $node->safe_psql('postgres', 'SELECT count(*) FROM t'), 'VACUUM FULL: info counts every row');
verify('VACUUM FULL', 't', 't_v_idx');

# ---- CLUSTER ----

my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nCLUSTER t USING t_v_idx");
isnt($rc, 0, 'CLUSTER USING a scoreah index fails');
like($err, qr/ERROR:  0A000: cannot cluster on index "t_v_idx" because access method does not support clustering/,
	'CLUSTER USING a scoreah index: feature_not_supported, naming the index');
($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nALTER TABLE t CLUSTER ON t_v_idx");
like($err, qr/ERROR:  0A000: cannot cluster on index "t_v_idx"/, 'ALTER TABLE ... CLUSTER ON a scoreah index fails too');
$node->safe_psql('postgres', 'CLUSTER t USING t_pkey');
verify('CLUSTER USING the primary key (rebuilds the scoreah index)', 't', 't_v_idx');

# ---- UNLOGGED table, across a crash ----

$node->safe_psql(
	'postgres', q{
	CREATE UNLOGGED TABLE u (id bigserial PRIMARY KEY, v real[]);
	INSERT INTO u (v) SELECT rvec() FROM generate_series(1, 5000);
	CREATE INDEX u_v_idx ON u USING scoreah (v) WITH (num_leaves = 30);
	INSERT INTO u (v) SELECT rvec() FROM generate_series(1, 500);
	ANALYZE u;
});
verify('UNLOGGED table', 'u', 'u_v_idx');
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), '0', 'after a crash the unlogged table is empty');
$info = ScoreahTest::index_info($node, 'u_v_idx');
is($info->{rows}, '0', 'after a crash: the unlogged index is empty (its init fork)');
is($info->{trained}, 'false', 'after a crash: the init fork is an untrained index');
is(ScoreahTest::index_check($node, 'u_v_idx'), '', 'after a crash: scoreah_index_check finds no problem');
$node->safe_psql('postgres', 'INSERT INTO u (v) SELECT rvec() FROM generate_series(1, 3000); ANALYZE u');
verify('UNLOGGED table refilled after a crash', 'u', 'u_v_idx');
$node->safe_psql('postgres', 'REINDEX INDEX u_v_idx');
is(ScoreahTest::index_info($node, 'u_v_idx')->{trained}, 'true', 'unlogged: REINDEX trains it');
verify('UNLOGGED table, REINDEX', 'u', 'u_v_idx');
$node->safe_psql('postgres', 'ALTER TABLE u SET LOGGED');
verify('ALTER TABLE ... SET LOGGED', 'u', 'u_v_idx');
# now logged: it survives a crash
$node->stop('immediate');
$node->start;
verify('SET LOGGED table after a crash', 'u', 'u_v_idx');

ScoreahTest::figure('026_reindex total %.1fs', time - $T0);
$node->stop;
done_testing();
