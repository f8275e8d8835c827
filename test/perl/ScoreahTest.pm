# ScoreahTest: helpers shared by scoreah's TAP tests (test/t/*.pl).
#
# Real-data tests need ../shared/data (or $SCOREAH_DATA_DIR) and Debian's
# /usr/bin/python3 with numpy for test/tools/vectors.py; when either is
# missing they skip rather than fail, so the suite still runs on a bare
# checkout.  Everything else here is plumbing: a started node with the
# extension, splitting a vector file into binary COPY files plus exact
# ground truth, loading them (or synthetic data when they are missing),
# measuring recall@k of an ORDER BY ... LIMIT k query over all queries at
# once, scoreah_index_info / scoreah_index_check, pgbench scripts.
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";    # whatever prove's -I
#   use ScoreahTest;
#   my $node = ScoreahTest::new_node('recall', conf => [ 'jit = off' ]);
#   my $file = ScoreahTest::require_data('glove-100.f32bin', 'GloVe');
#   ScoreahTest::require_numpy();      # both: plan skip_all when missing
#   my $dir = ScoreahTest::split_vectors($file, base => 100000, queries => 1000,
#                                        k => 10, metric => 'cosine');
#   ScoreahTest::load_vectors($node, 'items', "$dir/base.copy");
#   my $truth = ScoreahTest::read_truth("$dir/truth.tsv");
#   my ($recall, $secs, $nfull) = ScoreahTest::measure_recall($node, $truth,
#       op => '<=>', settings => 'SET enable_seqscan = off');
#   ScoreahTest::figure("... recall@10=%.4f", $recall);
#   # GloVe when there, else synthetic data; ->{truth}, ->{op}, ->{with}...
#   my $data = ScoreahTest::load_knn_data($node, seed => 0.5);
package ScoreahTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

our $PYTHON = '/usr/bin/python3';

# test/tools, found from this file so the caller's cwd does not matter
my $TOOLS = abs_path(dirname(abs_path(__FILE__)) . '/../tools');

# SET statements for an exhaustive search: every leaf (100000 is
# SCOREAH_MAX_LEAVES) searched and every candidate (1000000,
# SCOREAH_MAX_REORDER) re-ranked exactly, so a scan through the index must
# return what a sequential scan returns.
our $EXHAUSTIVE = "SET scoreah.num_leaves_to_search = 100000;\n"
  . "SET scoreah.reordering_num_neighbors = 1000000;\n";

# SET statements that leave the planner nothing but a sequential scan.
our $SEQSCAN = "SET enable_indexscan = off;\nSET enable_bitmapscan = off;\n";

# postgresql.conf lines for tests that time queries: no disk flushes, one
# backend per statement and per build (no parallel workers), no JIT, so
# that queries per second compare between runs.
our @MEASURE_CONF = (
	'fsync = off',
	'synchronous_commit = off',
	'jit = off',
	'max_parallel_workers_per_gather = 0',
	'max_parallel_maintenance_workers = 0');

# A new node (PostgreSQL::Test::Cluster) named $name: initdb, the lines of
# $o{conf} (an array ref of "name = value" lines) appended to
# postgresql.conf, started, and CREATE EXTENSION scoreah in the postgres
# database.  allows_streaming => 1 makes it a primary that can take base
# backups for standbys (PostgreSQL::Test::Cluster's init option).
sub new_node
{
	my ($name, %o) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init($o{allows_streaming} ? (allows_streaming => $o{allows_streaming}) : ());
	$node->append_conf('postgresql.conf', join('', map { "$_\n" } @{ $o{conf} }))
	  if $o{conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION scoreah');
	return $node;
}

# Skips the whole test file with $reason.  The reason also goes to stderr
# as "# skip: ...": prove prints "FILE .. skipped: reason" but never the
# "1..0 # SKIP" line itself, so this is what a log grep can find.
sub skip_all
{
	my ($reason) = @_;
	diag("skip: $reason");
	plan skip_all => $reason;
	return;    # not reached: plan skip_all exits
}

# Directory of the shared vector data, or undef.  The runner sets
# SCOREAH_DATA_DIR (empty when ../shared/data does not exist).
sub data_dir
{
	my $d = $ENV{SCOREAH_DATA_DIR};
	return (defined $d && $d ne '' && -d $d) ? $d : undef;
}

# Absolute path of $name in the data directory; skips the whole test file
# (plan skip_all) when it is not there.  $label names the data set in the
# skip reason (default: the file name).
sub require_data
{
	my ($name, $label) = @_;
	$label //= $name;
	my $dir = data_dir();
	skip_all("$label data not found: set SCOREAH_DATA_DIR or "
		  . "place ../shared/data beside the checkout")
	  unless defined $dir;
	my $path = "$dir/$name";
	skip_all("$label data not found: $path is missing (set "
		  . "SCOREAH_DATA_DIR or place ../shared/data beside the checkout)")
	  unless -r $path;
	return $path;
}

# True when /usr/bin/python3 can import numpy.
sub have_numpy
{
	return -x $PYTHON && system($PYTHON, '-c', 'import numpy') == 0;
}

# Skips the whole test file unless /usr/bin/python3 can import numpy.
sub require_numpy
{
	skip_all("$PYTHON with numpy is not available "
		  . "(test/tools/vectors.py needs it; apt-get install python3-numpy)")
	  unless have_numpy();
	return;
}

# Runs test/tools/vectors.py split on $file; returns the output directory
# holding base.copy, queries.copy and truth.tsv.  The directory is a fresh
# tempdir under tmp_check: the server runs as the same OS user, so COPY
# FROM can read it.  Options: base, queries, k, metric, seed, out,
# split_queries (rows held out, 10,000 unless set: smaller files need it).
sub split_vectors
{
	my ($file, %o) = @_;
	my $out = $o{out} // PostgreSQL::Test::Utils::tempdir('vectors');
	my @cmd = ($PYTHON, "$TOOLS/vectors.py", 'split', $file, '--out', $out);
	for my $opt (qw(base queries k metric seed split_queries))
	{
		(my $flag = $opt) =~ tr/_/-/;
		push @cmd, "--$flag", $o{$opt} if defined $o{$opt};
	}
	my $t0 = time;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	BAIL_OUT("vectors.py split failed: $stderr") unless $ok;
	chomp $stdout;
	note(sprintf('%s (%.1f s)', $stdout, time - $t0));
	return $out;
}

# (Re)creates $table (id int4, v real[]) and loads a binary COPY file
# written by vectors.py; returns the number of rows.
sub load_vectors
{
	my ($node, $table, $file, $db) = @_;
	$db //= 'postgres';
	$node->safe_psql(
		$db, qq{
		DROP TABLE IF EXISTS $table;
		CREATE TABLE $table (id int4 PRIMARY KEY, v real[] NOT NULL);
		COPY $table FROM '$file' WITH (FORMAT binary);
		ANALYZE $table;
	});
	return $node->safe_psql($db, "SELECT count(*) FROM $table");
}

# truth.tsv -> { query id => [k nearest ids, nearest first] }
sub read_truth
{
	my ($file) = @_;
	my %truth;
	open my $fh, '<', $file or die "cannot open $file: $!";
	while (my $line = <$fh>)
	{
		chomp $line;
		next if $line eq '';
		my ($q, $ids) = split /\t/, $line;
		$truth{$q} = [ split /,/, $ids ];
	}
	close $fh;
	return \%truth;
}

# Base rows, queries and exact ground truth for a k-NN test that runs with
# or without the real data: tables base and queries (id int4 PRIMARY KEY,
# v real[] NOT NULL), analyzed, in $node's postgres database; either
#   * GloVe-100, when data_dir() has glove-100.f32bin and numpy is there:
#     vectors.py split (base rows, held-out queries, cosine), truth from
#     numpy; or else, saying so in a "# skip: ..." line (diag),
#   * synthetic clustered data made in SQL after setseed($o{seed}): 40
#     clusters in 32 dimensions, centers uniform in [-1,1]^32, rows and
#     queries (ids from 1000001) a center plus uniform noise of the same
#     scale, so clusters overlap and a query's neighbours spread over
#     several leaves; l2, truth from a sequential scan.
# Options: seed (required), base (20000 rows), queries (200), k (10),
# leaves (100, the num_leaves of the WITH options).  Returns a hash ref:
# op, opclass, with (CREATE INDEX ... WITH (...) options), label (for
# figures, e.g. "glove-20k cosine", "synthetic-20k l2"), dims, truth
# ({ query id => [k nearest ids] }).
sub load_knn_data
{
	my ($node, %o) = @_;
	my $seed = $o{seed} // die 'load_knn_data: no seed';
	my $nbase = $o{base} // 20000;
	my $nqueries = $o{queries} // 200;
	my $k = $o{k} // 10;
	my $leaves = $o{leaves} // 100;
	my $size = ($nbase / 1000) . 'k';
	my $dir = data_dir();
	my $glove = defined $dir ? "$dir/glove-100.f32bin" : '';

	if ($glove ne '' && -r $glove && have_numpy())
	{
		my $out = split_vectors($glove, base => $nbase, queries => $nqueries,
			k => $k, metric => 'cosine');
		load_vectors($node, 'base', "$out/base.copy");
		load_vectors($node, 'queries', "$out/queries.copy");
		return {
			op => '<=>',
			opclass => 'scoreah_cosine_ops',
			with => "num_leaves = $leaves, anisotropic_quantization_threshold = 0.2",
			label => "glove-$size cosine",
			dims => 100,
			truth => read_truth("$out/truth.tsv") };
	}

	my $env = $ENV{SCOREAH_DATA_DIR} // '';
	diag('skip: GloVe data or numpy not available (SCOREAH_DATA_DIR='
		  . ($env eq '' ? 'empty' : $env)
		  . '): using synthetic clustered data');
	$node->safe_psql(
		'postgres', qq{
		SELECT setseed($seed);
		CREATE TABLE centers AS
			SELECT c, array_agg((random() * 2 - 1)::real ORDER BY d) AS v
			FROM generate_series(0, 39) c, generate_series(1, 32) d GROUP BY c;
		CREATE TABLE base (id int4 PRIMARY KEY, v real[] NOT NULL);
		INSERT INTO base
			SELECT i, (SELECT array_agg((c.v[d] + random() * 1.6 - 0.8)::real ORDER BY d)
					   FROM generate_series(1, 32) d)
			FROM generate_series(1, $nbase) i JOIN centers c ON c.c = i % 40;
		CREATE TABLE queries (id int4 PRIMARY KEY, v real[] NOT NULL);
		INSERT INTO queries
			SELECT 1000000 + i, (SELECT array_agg((c.v[d] + random() * 1.6 - 0.8)::real ORDER BY d)
								 FROM generate_series(1, 32) d)
			FROM generate_series(1, $nqueries) i JOIN centers c ON c.c = (i * 7) % 40;
		ANALYZE base;
		ANALYZE queries;
	});
	my ($truth) = run_knn($node, items => 'base', op => '<->', k => $k,
		settings => $SEQSCAN);
	return {
		op => '<->',
		opclass => 'scoreah_l2_ops',
		with => "num_leaves = $leaves",
		label => "synthetic-$size l2",
		dims => 32,
		truth => $truth };
}

# The k-NN statement for all queries at once: one row per query,
# "query id|comma-separated result ids".  $op is the distance operator.
sub knn_sql
{
	my (%o) = @_;
	my $items = $o{items} // 'items';
	my $queries = $o{queries} // 'queries';
	my $op = $o{op} // '<->';
	my $k = $o{k} // 10;
	return qq{
		SELECT q.id, array_to_string(array_agg(r.id), ',')
		FROM $queries q
		CROSS JOIN LATERAL (
			SELECT i.id FROM $items i ORDER BY i.v $op q.v LIMIT $k
		) r
		GROUP BY q.id};
}

# Runs knn_sql (after the SET statements in $o{settings}, a string) and
# returns ({ query id => [result ids] }, seconds the statement took).
sub run_knn
{
	my ($node, %o) = @_;
	my $db = $o{db} // 'postgres';
	my $settings = $o{settings} // '';

	# Time only the statement, not psql's start-up: \timing prints
	# "Time: N ms" on stdout after the result.
	my $out = $node->safe_psql($db,
		"$settings;\n\\timing on\n" . knn_sql(%o) . ';');
	my ($ms) = $out =~ /^Time: ([0-9.]+) ms/m;
	die "no timing in psql output" unless defined $ms;

	my %got;
	for my $line (split /\n/, $out)
	{
		next unless $line =~ /^(-?\d+)\|([-\d,]*)$/;
		$got{$1} = [ split /,/, $2 ];
	}
	return (\%got, $ms / 1000);
}

# Runs knn_sql (after the SET statements in $o{settings}, a string) and
# returns (recall@k, seconds the statement took, number of queries that
# got k rows back).
# recall@k = mean over the truth's queries of |returned and truth| / k; a
# query that returns nothing counts as 0.
sub measure_recall
{
	my ($node, $truth, %o) = @_;
	my $k = $o{k} // 10;
	my ($got, $secs) = run_knn($node, %o, k => $k);

	my $sum = 0;
	my $full = grep { @$_ == $k } values %$got;
	for my $q (keys %$truth)
	{
		my %want = map { $_ => 1 } @{ $truth->{$q} }[ 0 .. $k - 1 ];
		my $hits = grep { $want{$_} } @{ $got->{$q} // [] };
		$sum += $hits / $k;
	}
	my $n = scalar keys %$truth;
	return ($n ? $sum / $n : 0, $secs, $full);
}

# scoreah_index_info($index) as a hash ref { name => value }.
sub index_info
{
	my ($node, $index, $db) = @_;
	my %i = map { split /\|/, $_, 2 } split /\n/,
	  $node->safe_psql($db // 'postgres',
		"SELECT name, value FROM scoreah_index_info('$index')");
	return \%i;
}

# The problems scoreah_index_check($index) reports, one a line; '' when
# it finds none.
sub index_check
{
	my ($node, $index, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		"SELECT string_agg(p, E'\\n') FROM scoreah_index_check('$index') p");
}

# The checks of scoreah indexes after a crash or a concurrent run, for each
# [index, table, operator] of @$targets (test names start with $label):
# scoreah_index_check finds no problem; with exhaustive settings a scan
# through the index (EXPLAIN says so) returns every row of the table
# exactly once, and so does one that goes through many small batches and
# rounds (2 leaves a round, 16 candidates a batch); the top 20 of each
# query of @$queries (real[] literals) through the index equal the
# sequential scan's (ties broken by id).
sub verify_exhaustive
{
	my ($node, $label, $targets, $queries) = @_;
	my $via_index = "SET enable_seqscan = off;\n$EXHAUSTIVE";
	for my $tg (@$targets)
	{
		my ($name, $tab, $op) = @$tg;
		is(index_check($node, $name), '', "$label: scoreah_index_check('$name') finds no problem");

		my $all = "SELECT count(*), count(DISTINCT id) FROM "
		  . "(SELECT id FROM $tab ORDER BY v $op '$queries->[0]'::real[] LIMIT 1000000) s";
		like($node->safe_psql('postgres', "$via_index EXPLAIN (COSTS OFF) $all"),
			qr/Index Scan using $name on $tab/, "$label: the full scan goes through $name");
		my $n = $node->safe_psql('postgres', "SELECT count(*) FROM $tab");
		is($node->safe_psql('postgres', "$via_index $all"),
			"$n|$n", "$label: every row of $tab exactly once through $name ($n rows)");
		is( $node->safe_psql('postgres',
				"SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 2; "
				  . "SET scoreah.reordering_num_neighbors = 16; $all"),
			"$n|$n", "$label: every row of $tab exactly once through $name in small batches");

		my ($idx, $seq) = ('', '');
		for my $q (@$queries)
		{
			my $knn = "SELECT array_agg(id) FROM (SELECT id FROM $tab ORDER BY v $op '$q'::real[]";
			$idx .= $node->safe_psql('postgres', "$via_index $knn LIMIT 20) s") . "\n";
			$seq .= $node->safe_psql('postgres', "$SEQSCAN $knn, id LIMIT 20) s") . "\n";
		}
		is($idx, $seq, "$label: exhaustive kNN through $name equals the sequential scan");
	}
	return;
}

# SQL for a vector of $dim random components in [-1, 1], evaluated anew
# for each row of a FROM generate_series(...) $var (the WHERE on $var ties
# the subquery to the row).
sub random_vector_sql
{
	my ($dim, $var) = @_;
	return "ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, $dim) WHERE $var > 0)";
}

# A pgbench script that empties and refills whole leaves of $table (a
# bigserial id and a real[] v of $dim components, a few rows a leaf):
# deletes the 15 rows nearest a random point, found through the index,
# and inserts 15 random rows, in one transaction.
sub leaf_churn_script
{
	my ($table, $dim) = @_;
	my $q = "(SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, $dim))";
	my $vec = random_vector_sql($dim, 'g');
	return qq{
BEGIN;
SET LOCAL enable_seqscan = off;
DELETE FROM $table WHERE id IN (SELECT id FROM $table ORDER BY v <-> $q LIMIT 15);
INSERT INTO $table (v) SELECT $vec FROM generate_series(1, 15) g;
COMMIT;
};
}

# A pgbench script that runs scoreah_index_info and scoreah_index_check on
# each index and raises an error naming the problems when the check
# reports any.
sub introspect_script
{
	my (@indexes) = @_;
	return join('', map {
			"SELECT count(*) FROM scoreah_index_info('$_');\n"
			  . "DO \$\$ DECLARE p text; BEGIN SELECT string_agg(c, '; ') INTO p FROM scoreah_index_check('$_') c; "
			  . "IF p IS NOT NULL THEN RAISE 'scoreah_index_check($_) mismatch: %', p; END IF; END \$\$;\n"
	} @indexes);
}

# SQL for a query vector of $dim components computed from the pgbench
# variable :k, so that it is the same vector everywhere in a transaction.
sub pgbench_vector_sql
{
	my ($dim) = @_;
	return "ARRAY(SELECT sin(:k * 0.37 + d * 1.1)::real FROM generate_series(1, $dim) d)";
}

# A pgbench script that checks, in one snapshot, each [index, table,
# operator, distance function] of @targets: an exhaustive scan through
# the index returns every visible row once and its top 10 equals the
# sequential scan's (by the distance function, ties by id); then, with 2
# leaves a round and 16 candidates a batch, that a scan going through
# many batches and rounds still returns every visible row once.  Any
# mismatch is an error naming the numbers (pgbench reports it).
sub snapshot_check_script
{
	my ($dim, @targets) = @_;
	my $kq = pgbench_vector_sql($dim);
	my $s = "\\set k random(1, 1000000)\nBEGIN;\nSET LOCAL enable_seqscan = off;\n"
	  . ($EXHAUSTIVE =~ s/^SET /SET LOCAL /mgr);
	for my $tg (@targets)
	{
		my ($name, $tab, $op, $fn) = @$tg;
		$s .= "SELECT CASE WHEN a.n = a.d AND a.n = b.c AND x.i = x.s THEN 'ok' ELSE "
		  . "('$name mismatch: index scan ' || a.n || ' rows, ' || a.d || ' distinct; table ' || b.c || ' rows; "
		  . "top10 index ' || x.i::text || ' seq ' || x.s::text)::int::text END FROM "
		  . "(SELECT count(*) n, count(DISTINCT id) d FROM (SELECT id FROM $tab ORDER BY v $op $kq LIMIT 1000000) s) a, "
		  . "(SELECT count(*) c FROM $tab) b, "
		  . "(SELECT (SELECT array_agg(id) FROM (SELECT id FROM $tab ORDER BY v $op $kq LIMIT 10) s1) i, "
		  . "(SELECT array_agg(id) FROM (SELECT id FROM $tab ORDER BY $fn(v, $kq), id LIMIT 10) s2) s) x;\n";
	}
	$s .= "SET LOCAL scoreah.num_leaves_to_search = 2;\nSET LOCAL scoreah.reordering_num_neighbors = 16;\n";
	for my $tg (@targets)
	{
		my ($name, $tab, $op) = @$tg;
		$s .= "SELECT CASE WHEN a.n = a.d AND a.n = b.c THEN 'ok' ELSE "
		  . "('$name mismatch in batches: index scan ' || a.n || ' rows, ' || a.d || ' distinct; table ' || b.c || ' rows')::int::text END FROM "
		  . "(SELECT count(*) n, count(DISTINCT id) d FROM (SELECT id FROM $tab ORDER BY v $op $kq LIMIT 1000000) s) a, "
		  . "(SELECT count(*) c FROM $tab) b;\n";
	}
	return $s . "COMMIT;\n";
}

my $nscript = 0;    # script files written so far

# The pgbench command (an array ref for IPC::Run) that runs the scripts of
# $o{scripts} against $node's postgres database for $o{secs} seconds.
# Each script is [text, weight] (weight optional), written to a new file
# in the node's basedir.  Options: clients (1), jobs (2 when clients > 1,
# else 1), rate (-R, transactions per second; none by default).
sub pgbench_cmd
{
	my ($node, %o) = @_;
	my $clients = $o{clients} // 1;
	my @cmd = ('pgbench', '-n', '-c', $clients,
		'-j', $o{jobs} // ($clients > 1 ? 2 : 1), '-T', $o{secs});
	push @cmd, '-R', $o{rate} if defined $o{rate};
	for my $script (@{ $o{scripts} })
	{
		my ($text, $weight) = @$script;
		my $path = $node->basedir . '/script' . ++$nscript . '.sql';
		PostgreSQL::Test::Utils::append_to_file($path, $text);
		push @cmd, '-f', defined $weight ? "$path\@$weight" : $path;
	}
	return [ @cmd, '-h', $node->host, '-p', $node->port, 'postgres' ];
}

# The number of transactions pgbench's output $out says it processed, or
# undef.
sub pgbench_transactions
{
	my ($out) = @_;
	my ($n) = $out =~ /number of transactions actually processed: (\d+)/;
	return $n;
}

# Prints a measured figure as "# figure: ..." (the runner collects them).
# diag goes to stderr, so it shows whether or not prove runs verbose.
sub figure
{
	my ($fmt, @args) = @_;
	diag('figure: ' . (@args ? sprintf($fmt, @args) : $fmt));
	return;
}

# Wall-clock seconds $code takes, and its result.
sub timed
{
	my ($code) = @_;
	my $t0 = time;
	my @r = $code->();
	return (time - $t0, @r);
}

# Wall-clock seconds $node takes to run $sql (safe_psql, in $db or postgres).
sub timed_sql
{
	my ($node, $sql, $db) = @_;
	my ($secs) = timed(sub { $node->safe_psql($db // 'postgres', $sql) });
	return $secs;
}

1;
