# WAL and streaming replication: every change a scoreah index goes through
# on the primary (build, inserts, VACUUM, slot reuse, REINDEX, an index
# built empty and filled by inserts) must replay on a hot standby into the
# same index, which must then answer exactly as the primary does.
#
# After each of a dozen cycles of DELETE / UPDATE / VACUUM / INSERT on the
# primary the test waits for the standby to replay everything and checks:
#   - exhaustive kNN (every leaf searched, every candidate re-ranked) on
#     both nodes equals the primary's sequential scan, for each opclass;
#   - kNN with default settings returns the same ids on both nodes;
#   - an exhaustive scan through the index returns every row once, and so
#     does a scan that has to go through many small batches and rounds;
#   - scoreah_index_check() is clean on both nodes, and scoreah_index_info()
#     reports the same rows and dead slots on both;
#   - on the primary, the index's live rows match the table after VACUUM.
# The standby's queries run in one long-lived session (its model cache must
# notice a REINDEX on the primary).  Finally an UNLOGGED table: not readable
# on the standby, and empty but usable on the primary after a crash.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $DIM = 16;
my $NQ = 4;                  # query vectors
my $CYCLES = 12;
my $t_start = time();

my $EXHAUSTIVE = $ScoreahTest::EXHAUSTIVE;
my $DEFAULTS = "RESET scoreah.num_leaves_to_search;\n"
  . "RESET scoreah.reordering_num_neighbors;\n";

# Deterministic query vectors, in [-1, 1]
my @queries;
for my $j (1 .. $NQ)
{
	push @queries,
	  '{' . join(',', map { sprintf('%.5f', sin($j * 1.37 + $_ * 0.71) * 0.9) } 0 .. $DIM - 1) . '}';
}

# name, table, operator and distance function of each index
my @targets = (
	[ 't_l2',  't', '<->', 'l2_distance' ],
	[ 't_ip',  't', '<#>', 'negative_inner_product' ],
	[ 't_cos', 't', '<=>', 'cosine_distance' ],
	[ 'e_l2',  'e', '<->', 'l2_distance' ],);
my $index_list = join(',', map { "'$_->[0]'" } @targets);

# SQL for a random vector, evaluated anew for each row of generate_series(...) i
my $RANDVEC = ScoreahTest::random_vector_sql($DIM, 'i');

sub knn_sql
{
	my ($tab, $op, $q, $k, $tiebreak) = @_;
	my $order = "v $op '$q'::real[]" . ($tiebreak ? ', id' : '');
	return "(SELECT array_agg(id) FROM (SELECT id FROM $tab ORDER BY $order LIMIT $k) s)";
}

# kNN through the indexes: exhaustive, all rows once, then default settings
sub index_batch
{
	my $sql = "SET enable_seqscan = off;\n" . $EXHAUSTIVE;
	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		for my $qi (0 .. $#queries)
		{
			$sql .= "SELECT '$name q$qi exhaustive', " . knn_sql($tab, $op, $queries[$qi], 20) . ";\n";
		}
		$sql .= "SELECT '$name all', count(*), count(DISTINCT id) FROM "
		  . "(SELECT id FROM $tab ORDER BY v $op '$queries[0]'::real[] LIMIT 1000000) s;\n";
	}
	# few leaves per round, few candidates per batch: the scan goes through
	# many batches and rounds and must still return every row once
	$sql .= "SET scoreah.num_leaves_to_search = 2;\nSET scoreah.reordering_num_neighbors = 16;\n";
	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		$sql .= "SELECT '$name batches', count(*), count(DISTINCT id) FROM "
		  . "(SELECT id FROM $tab ORDER BY v $op '$queries[1]'::real[] LIMIT 1000000) s;\n";
	}
	$sql .= $DEFAULTS;
	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		for my $qi (0 .. $#queries)
		{
			$sql .= "SELECT '$name q$qi default', " . knn_sql($tab, $op, $queries[$qi], 10) . ";\n";
		}
	}
	return $sql;
}

# The same exhaustive lines from a sequential scan
sub seq_batch
{
	my $sql = $ScoreahTest::SEQSCAN . "SET enable_seqscan = on;\n";
	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		for my $qi (0 .. $#queries)
		{
			$sql .= "SELECT '$name q$qi exhaustive', " . knn_sql($tab, $op, $queries[$qi], 20, 1) . ";\n";
		}
		$sql .= "SELECT '$name all', count(*), count(DISTINCT id) FROM $tab;\n";
		$sql .= "SELECT '$name batches', count(*), count(DISTINCT id) FROM $tab;\n";
	}
	return $sql;
}

# "label|rest" lines into a hash; only labels matching $re
sub lines_by_label
{
	my ($out, $re) = @_;
	my %h;
	for my $line (split /\n/, $out)
	{
		my ($label, $rest) = split /\|/, $line, 2;
		$h{$label} = $rest if $label =~ $re;
	}
	return \%h;
}

sub hash_text
{
	my ($h) = @_;
	return join("\n", map { "$_: $h->{$_}" } sort keys %$h);
}

my $CHECK_SQL = "SELECT i, c FROM unnest(ARRAY[$index_list]) i, LATERAL scoreah_index_check(i::regclass) c;";
my $INFO_SQL = "SELECT i, string_agg(name || '=' || value, ' ' ORDER BY name) "
  . "FROM unnest(ARRAY[$index_list]) i, LATERAL scoreah_index_info(i::regclass) "
  . "WHERE name IN ('rows', 'dead_slots', 'rows_inserted_since_build', 'trained', 'num_leaves', 'dimensions') "
  . "GROUP BY i ORDER BY i;";

# ---- nodes ----
my $primary = ScoreahTest::new_node('primary', allows_streaming => 1,
	conf => [ 'autovacuum = off', 'jit = off' ]);
$primary->backup('b1');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->append_conf('postgresql.conf', "wal_retrieve_retry_interval = '200ms'\njit = off\n");
$standby->start;

# Everything below is built after the base backup: the standby gets it all
# through WAL (the builds' page images, then GenericXLog records).
my $t0 = time();
$primary->safe_psql('postgres', qq{
	CREATE TABLE t (id int PRIMARY KEY, v real[] NOT NULL);
	SELECT setseed(0.25);
	INSERT INTO t SELECT i, $RANDVEC FROM generate_series(1, 3000) i;
	CREATE INDEX t_l2 ON t USING scoreah (v scoreah_l2_ops) WITH (num_leaves = 12);
	CREATE INDEX t_ip ON t USING scoreah (v scoreah_ip_ops) WITH (num_leaves = 10, reordering_storage = 'table');
	CREATE INDEX t_cos ON t USING scoreah (v scoreah_cosine_ops) WITH (num_leaves = 8);
	-- built on an empty table: untrained, filled by inserts
	CREATE TABLE e (id int PRIMARY KEY, v real[] NOT NULL);
	CREATE INDEX e_l2 ON e USING scoreah (v) WITH (num_leaves = 10);
	SELECT setseed(0.5);
	INSERT INTO e SELECT i, $RANDVEC FROM generate_series(1, 400) i;
});
ScoreahTest::figure("build of 3 indexes on 3000 rows x %d dims + 400 inserts: %.2f s", $DIM, time() - $t0);

is(ScoreahTest::index_info($primary, 'e_l2')->{trained}, 'false', 'index built on an empty table is untrained');

# The kNN queries must go through the right index on both nodes
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
for my $node ($primary, $standby)
{
	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		my $plan = $node->safe_psql('postgres',
			"SET enable_seqscan = off; $EXHAUSTIVE EXPLAIN (COSTS OFF) SELECT id FROM $tab ORDER BY v $op '$queries[0]'::real[] LIMIT 1000000");
		like($plan, qr/Index Scan using $name on $tab/, $node->name . ": kNN with $op on $tab uses $name");
	}
}

my $sb = $standby->background_psql('postgres');
my $pr = $primary->background_psql('postgres');

# Readers on the standby while it replays the cycles: in one snapshot, an
# exhaustive scan through each index returns every visible row once and its
# top 10 equals the sequential scan's (else an error pgbench reports).
my $reader_script = ScoreahTest::snapshot_check_script($DIM, @targets);
my ($rout, $rerr) = ('', '');
my $readers = IPC::Run::start(
	ScoreahTest::pgbench_cmd($standby, clients => 2, secs => 6, scripts => [ [$reader_script] ]),
	'>', \$rout, '2>', \$rerr,
	IPC::Run::timeout(120));
my $t_cycles = time();

my %next_id = (t => 3001, e => 401);
my %unvacuumed = (t => 0, e => 0);    # dead heap rows VACUUM has not seen
my ($recall_hits, $recall_total) = (0, 0);
my @catchup_ms;

for my $c (1 .. $CYCLES)
{
	my $vacuum = ($c % 4 != 3);        # some cycles leave dead rows in place
	my $sql = '';
	my %deleted;

	# deletes: a deterministic pseudo-random choice of rows
	$deleted{t} = 150 + 20 * ($c % 5);
	$deleted{e} = 40;
	for my $tab ('t', 'e')
	{
		$sql .= "DELETE FROM $tab WHERE id IN (SELECT id FROM $tab ORDER BY md5(id::text || ':$c') LIMIT $deleted{$tab});\n";
		$unvacuumed{$tab} += $deleted{$tab};
	}
	if ($c == 6)
	{
		# non-HOT updates: new index entries, dead old ones
		my $n = $primary->safe_psql('postgres', "SELECT count(*) FROM t WHERE id % 25 = 6");
		$sql .= "SELECT setseed(0.66);\nUPDATE t SET v = " . ScoreahTest::random_vector_sql($DIM, 'id') . " WHERE id % 25 = 6;\n";
		$unvacuumed{t} += $n;
	}
	if ($vacuum)
	{
		# INDEX_CLEANUP ON: PG15 may skip the index pass when few heap pages
		# have dead items, and the row counts below expect it done
		$sql .= "VACUUM (INDEX_CLEANUP ON) t;\nVACUUM (INDEX_CLEANUP ON) e;\n";
		%unvacuumed = (t => 0, e => 0);
	}
	my %ins = (t => 120 + 10 * $c, e => 70);
	$sql .= sprintf("SELECT setseed(%.3f);\n", $c / 100.0);
	for my $tab ('t', 'e')
	{
		my ($lo, $hi) = ($next_id{$tab}, $next_id{$tab} + $ins{$tab} - 1);
		$sql .= "INSERT INTO $tab SELECT i, $RANDVEC FROM generate_series($lo, $hi) i;\n";
		$next_id{$tab} = $hi + 1;
	}
	$sql .= "REINDEX INDEX e_l2;\n" if $c == 5;    # the empty-built index gets trained
	$primary->safe_psql('postgres', $sql);

	my $t1 = time();
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	push @catchup_ms, (time() - $t1) * 1000;

	my $batch = index_batch();
	my $out_p = $pr->query_safe($batch);
	my $out_s = $sb->query_safe($batch);
	my $out_seq = $primary->safe_psql('postgres', seq_batch());

	my $all = qr/./;
	my $exh = qr/ (exhaustive|all|batches)$/;
	my $p = lines_by_label($out_p, $all);
	my $s = lines_by_label($out_s, $all);
	my $seq = lines_by_label($out_seq, $exh);
	my $p_exh = lines_by_label($out_p, $exh);
	my $s_exh = lines_by_label($out_s, $exh);

	is(scalar(keys %$p), scalar(@targets) * (2 * $NQ + 2), "cycle $c: every query answered on the primary");
	is(scalar(grep { /exhaustive$/ && ($p->{$_} =~ tr/,//) == 19 } keys %$p), scalar(@targets) * $NQ,
		"cycle $c: every exhaustive query returned 20 rows");
	is(hash_text($p_exh), hash_text($seq), "cycle $c: exhaustive kNN on the primary equals the sequential scan");
	is(hash_text($s_exh), hash_text($seq), "cycle $c: exhaustive kNN on the standby equals the primary's sequential scan");
	is(hash_text($s), hash_text($p), "cycle $c: standby returns the same ids as the primary (exhaustive and default settings)");

	# recall of the default settings against the exact answer (figure only)
	for my $tg (@targets)
	{
		for my $qi (0 .. $#queries)
		{
			my $key = "$tg->[0] q$qi";
			next unless defined $p->{"$key default"} && defined $seq->{"$key exhaustive"};
			my @exact = (split /,/, ($seq->{"$key exhaustive"} =~ s/[{}]//gr))[0 .. 9];
			my %got = map { $_ => 1 } split /,/, ($p->{"$key default"} =~ s/[{}]//gr);
			$recall_hits += grep { defined $_ && $got{$_} } @exact;
			$recall_total += 10;
		}
	}

	is($sb->query_safe($CHECK_SQL), '', "cycle $c: scoreah_index_check clean on the standby");
	is($pr->query_safe($CHECK_SQL), '', "cycle $c: scoreah_index_check clean on the primary");
	is($sb->query_safe($INFO_SQL), $pr->query_safe($INFO_SQL),
		"cycle $c: scoreah_index_info rows and dead slots agree between primary and standby");

	# live index entries = table rows + dead rows no VACUUM has removed yet
	my $counts = $pr->query_safe(
		"SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM e), "
		  . join(', ', map { "(SELECT value FROM scoreah_index_info('$_->[0]') WHERE name = 'rows')" } @targets));
	my ($nt, $ne, @rows) = split /\|/, $counts;
	my @expect = map { ($_->[1] eq 't' ? $nt + $unvacuumed{t} : $ne + $unvacuumed{e}) } @targets;
	is(join(',', @rows), join(',', @expect),
		"cycle $c: live index rows = table rows + unvacuumed dead rows (" . join(',', map { $_->[0] } @targets) . ")");

	if ($c == $CYCLES)
	{
		my $info = ScoreahTest::index_info($primary, 't_l2');
		ScoreahTest::figure("after $CYCLES cycles: t has $nt rows, t_l2 $rows[0] live entries, "
			  . "$info->{dead_slots} dead slots, $info->{bytes} bytes");
	}
}

is(ScoreahTest::index_info($primary, 'e_l2')->{trained}, 'true', 'REINDEX trained the index built on an empty table');

my $cycles_secs = time() - $t_cycles;
my $readers_ok = eval { $readers->finish };
my $readers_rc = $?;
ok($readers_ok && $readers_rc == 0, 'standby readers (pgbench during replay) exit 0')
  or diag("exit status $readers_rc\nstdout:\n$rout\nstderr:\n$rerr");
unlike($rerr, qr/error|aborted|mismatch|FATAL/i, 'standby readers saw no error or mismatch')
  or diag($rerr);
my $nread = ScoreahTest::pgbench_transactions($rout);
cmp_ok($nread // 0, '>', 5, 'standby readers ran their checks');
ScoreahTest::figure("%d cycles on the primary in %.1f s; %d one-snapshot checks on the standby while it replayed",
	$CYCLES, $cycles_secs, $nread // 0);

my @sorted = sort { $a <=> $b } @catchup_ms;
ScoreahTest::figure("standby catch-up after a cycle: median %.0f ms, max %.0f ms",
	$sorted[$#sorted / 2], $sorted[-1]);
ScoreahTest::figure("default-settings recall\@10 over %d cycles x %d queries x %d indexes: %.3f",
	$CYCLES, $NQ, scalar(@targets), $recall_hits / $recall_total);

# ---- introspection on the standby while replay frees and reuses pages ----
# Four rows a leaf: deleting the rows nearest a point empties leaves,
# VACUUM frees their pages and inserts take them again.  Replay does that
# without the locks that keep a check on the primary from seeing it, so on
# the standby scoreah_index_check must not report pages it saw move as
# problems, nor scoreah_index_info fail, while the index is sound.
$primary->safe_psql('postgres', qq{
	CREATE TABLE f (id bigserial PRIMARY KEY, v real[] NOT NULL);
	INSERT INTO f (v) SELECT $RANDVEC FROM generate_series(1, 256) i;
	CREATE INDEX f_l2 ON f USING scoreah (v) WITH (num_leaves = 64);
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my $f_churn = ScoreahTest::leaf_churn_script('f', $DIM);
my $f_vacuum = "VACUUM (INDEX_CLEANUP ON) f;\n";
# (DEBUG1 says when a check walks again: counted below)
my $f_introspect = "SET log_statement = 'none';\nSET client_min_messages = debug1;\n"
  . ScoreahTest::introspect_script('f_l2', 't_l2');
my ($fiout, $fierr) = ('', '');
my $f_intro = IPC::Run::start(
	ScoreahTest::pgbench_cmd($standby, clients => 2, secs => 8, scripts => [ [$f_introspect] ]),
	'>', \$fiout, '2>', \$fierr, IPC::Run::timeout(120));
my ($fout, $ferr) = ('', '');
my $f_ok = IPC::Run::run(
	ScoreahTest::pgbench_cmd($primary, clients => 2, secs => 8,
		scripts => [ [ $f_churn, 1 ], [ $f_vacuum, 1 ] ]),
	'>', \$fout, '2>', \$ferr, IPC::Run::timeout(120));
ok($f_ok, 'churn and VACUUM of f on the primary exit 0') or diag("stdout:\n$fout\nstderr:\n$ferr");
my $fi_ok = eval { $f_intro->finish };
ok($fi_ok, 'scoreah_index_check and scoreah_index_info on the standby during replay exit 0')
  or diag("stdout:\n$fiout\nstderr:\n$fierr");
unlike($fierr, qr/error|aborted|mismatch|FATAL/i,
	'no problem reported on the standby while replay freed and reused pages')
  or diag($fierr);
my $nfi = ScoreahTest::pgbench_transactions($fiout);
cmp_ok($nfi // 0, '>', 3, 'the standby introspection clients ran several rounds');
my $rewalks = () = $fierr =~ /walking again/g;
ScoreahTest::figure("standby introspection while replaying f's churn: %d rounds, %d check walks repeated because replay ran under a walk that found problems; f_l2 now %s bytes free",
	$nfi // 0, $rewalks, $primary->safe_psql('postgres',
		"SELECT value FROM scoreah_index_info('f_l2') WHERE name = 'bytes_free'"));
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($sb->query_safe("SELECT c FROM scoreah_index_check('f_l2') c"), '',
	'scoreah_index_check of f_l2 clean on the standby after catch-up');

$pr->quit;
$sb->quit;

# ---- damage on the standby stays reported while replay goes on ----
# A group header of a standby's copy of an index is damaged on disk (after
# a restartpoint, so that replay does not put the page back); then its
# check runs while the primary writes WAL as fast as it can, so the walks
# see replay move: the damage is in every walk, and must be reported.
$primary->safe_psql('postgres', q{
	CREATE EXTENSION IF NOT EXISTS pageinspect;
	CREATE TABLE h (id int, v real[]);
	INSERT INTO h SELECT i, ARRAY(SELECT sin(i * 0.37 + d)::real FROM generate_series(1, 16) d)
	  FROM generate_series(1, 20000) i;
	CREATE INDEX h_idx ON h USING scoreah (v) WITH (num_leaves = 16);
	CREATE TABLE busy (x int);
	CHECKPOINT;
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
$standby->safe_psql('postgres', 'CHECKPOINT');    # a restartpoint
my $hblk = $standby->safe_psql('postgres', q{
	SELECT b FROM generate_series(0, pg_relation_size('h_idx') / 8192 - 1) b
	WHERE get_byte(get_raw_page('h_idx', b::int), 8184) = 4 ORDER BY b LIMIT 1});
my $hfile = $standby->data_dir . '/' . $standby->safe_psql('postgres', "SELECT pg_relation_filepath('h_idx')");
$standby->stop;
# the first group's count of vector pages (uint16 at byte 10 of the contents)
open(my $hfh, '+<', $hfile) or die "open $hfile: $!";
binmode $hfh;
seek($hfh, $hblk * 8192 + 24 + 10, 0) or die "seek: $!";
print $hfh pack('S', 99);
close($hfh);
$standby->start;
my ($bout, $berr) = ('', '');
my $busy = IPC::Run::start(
	ScoreahTest::pgbench_cmd($primary, clients => 2, secs => 4,
		scripts => [ ["INSERT INTO busy SELECT g FROM generate_series(1, 10) g;\n"] ]),
	'>', \$bout, '2>', \$berr, IPC::Run::timeout(120));
sleep(1);
my ($hret, $hout, $herr) = $standby->psql('postgres',
	"SET log_statement = 'none'; SET client_min_messages = debug1; "
	  . "SELECT c FROM scoreah_index_check('h_idx') c");
$busy->finish;
like($hout, qr/leaf \d+: block $hblk group 0 lists 99 vector pages/,
	'damage on the standby is reported while replay goes on');
my $hwalks = () = $herr =~ /walking again/g;
ScoreahTest::figure("damaged index on the standby under replay: %d of its check's walks repeated, the damage reported", $hwalks);

# ---- UNLOGGED: primary only, reset by a crash ----
$primary->safe_psql('postgres', qq{
	CREATE UNLOGGED TABLE u (id int PRIMARY KEY, v real[] NOT NULL);
	SELECT setseed(0.75);
	INSERT INTO u SELECT i, $RANDVEC FROM generate_series(1, 1000) i;
	CREATE INDEX u_l2 ON u USING scoreah (v) WITH (num_leaves = 8);
	INSERT INTO u SELECT i, $RANDVEC FROM generate_series(1001, 1200) i;
});
my $u_knn_idx = "SET enable_seqscan = off; $EXHAUSTIVE SELECT " . knn_sql('u', '<->', $queries[1], 20) . ", "
  . "(SELECT count(*) FROM (SELECT id FROM u ORDER BY v <-> '$queries[1]'::real[] LIMIT 1000000) s)";
my $u_knn_seq = "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT "
  . knn_sql('u', '<->', $queries[1], 20, 1) . ", (SELECT count(*) FROM u)";
like($primary->safe_psql('postgres', "SET enable_seqscan = off; $EXHAUSTIVE EXPLAIN (COSTS OFF) SELECT id FROM u ORDER BY v <-> '$queries[1]'::real[] LIMIT 10"),
	qr/Index Scan using u_l2 on u/, 'unlogged: kNN uses u_l2');
is($primary->safe_psql('postgres', $u_knn_idx), $primary->safe_psql('postgres', $u_knn_seq),
	'unlogged: exhaustive kNN equals the sequential scan before the crash');
is(ScoreahTest::index_check($primary, 'u_l2'), '',
	'unlogged: index check clean before the crash');

$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my ($rc, $out, $err) = $standby->psql('postgres', 'SELECT count(*) FROM u');
isnt($rc, 0, 'unlogged table is not readable on the standby');
like($err, qr/cannot access temporary or unlogged relations during recovery/,
	'standby refuses the unlogged table with the expected error');

my $t_rows_before = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
$primary->stop('immediate');
$primary->start;

is($primary->safe_psql('postgres', 'SELECT count(*) FROM u'), '0', 'unlogged table is empty after a crash');
is(ScoreahTest::index_check($primary, 'u_l2'), '',
	'unlogged index check clean after the crash (reset to its init fork)');
is(ScoreahTest::index_info($primary, 'u_l2')->{rows}, '0', 'unlogged index holds no rows after the crash');
is($primary->safe_psql('postgres', "SET enable_seqscan = off; $EXHAUSTIVE SELECT count(*) FROM (SELECT id FROM u ORDER BY v <-> '$queries[1]'::real[] LIMIT 10) s"),
	'0', 'unlogged index answers an empty result after the crash');

$primary->safe_psql('postgres', qq{
	SELECT setseed(0.8);
	INSERT INTO u SELECT i, $RANDVEC FROM generate_series(1, 300) i;
});
is($primary->safe_psql('postgres', $u_knn_idx), $primary->safe_psql('postgres', $u_knn_seq),
	'unlogged index usable after the crash: exhaustive kNN equals the sequential scan');
like($primary->safe_psql('postgres', $u_knn_idx), qr/\|300$/, 'unlogged index returns all 300 new rows');
is(ScoreahTest::index_check($primary, 'u_l2'), '',
	'unlogged index check clean after refilling');
is(ScoreahTest::index_info($primary, 'u_l2')->{dimensions}, $DIM, 'unlogged index took its dimension from the first insert');

# The logged tables survived the crash, and the standby follows on
is($primary->safe_psql('postgres', 'SELECT count(*) FROM t'), $t_rows_before, 'logged table intact after the crash');
$primary->safe_psql('postgres', qq{
	DELETE FROM t WHERE id % 7 = 0;
	VACUUM t;
	SELECT setseed(0.9);
	INSERT INTO t SELECT i, $RANDVEC FROM generate_series(100001, 100300) i;
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my $exh = qr/ (exhaustive|all|batches)$/;
is( hash_text(lines_by_label($standby->safe_psql('postgres', index_batch()), $exh)),
	hash_text(lines_by_label($primary->safe_psql('postgres', seq_batch()), $exh)),
	'after the primary crashed: exhaustive kNN on the standby equals the primary\'s sequential scan');
is($standby->safe_psql('postgres', $CHECK_SQL), '', 'after the primary crashed: standby index check clean');
is($primary->safe_psql('postgres', $CHECK_SQL), '', 'after the primary crashed: primary index check clean');

ScoreahTest::figure("020_wal_standby total %.1f s", time() - $t_start);

$standby->stop;
$primary->stop;
done_testing();
