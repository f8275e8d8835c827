# ScoreahTest: helpers shared by scoreah's TAP tests (test/t/*.pl).
#
# Real-data tests need ../shared/data (or $SCOREAH_DATA_DIR) and Debian's
# /usr/bin/python3 with numpy for test/tools/vectors.py; when either is
# missing they skip rather than fail, so the suite still runs on a bare
# checkout.  Everything else here is plumbing: splitting a vector file into
# binary COPY files plus exact ground truth, loading them, and measuring
# recall@k of an ORDER BY ... LIMIT k query over all queries at once.
#
#   use ScoreahTest;
#   my $file = ScoreahTest::require_data('glove-100.f32bin', 'GloVe');
#   ScoreahTest::require_numpy();      # both: plan skip_all when missing
#   my $dir = ScoreahTest::split_vectors($file, base => 100000, queries => 1000,
#                                        k => 10, metric => 'cosine');
#   ScoreahTest::load_vectors($node, 'items', "$dir/base.copy");
#   my $truth = ScoreahTest::read_truth("$dir/truth.tsv");
#   my ($recall, $secs, $nfull) = ScoreahTest::measure_recall($node, $truth,
#       op => '<=>', settings => 'SET enable_seqscan = off');
#   ScoreahTest::figure("... recall@10=%.4f", $recall);
package ScoreahTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

our $PYTHON = '/usr/bin/python3';

# test/tools, found from this file so the caller's cwd does not matter
my $TOOLS = abs_path(dirname(abs_path(__FILE__)) . '/../tools');

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

# Skips the whole test file unless /usr/bin/python3 can import numpy.
sub require_numpy
{
	my $ok = -x $PYTHON
	  && system($PYTHON, '-c', 'import numpy') == 0;
	skip_all("$PYTHON with numpy is not available "
		  . "(test/tools/vectors.py needs it; apt-get install python3-numpy)")
	  unless $ok;
	return;
}

# Runs test/tools/vectors.py split on $file; returns the output directory
# holding base.copy, queries.copy and truth.tsv.  The directory is a fresh
# tempdir under tmp_check: the server runs as the same OS user, so COPY
# FROM can read it.  Options: base, queries, k, metric, seed, out.
sub split_vectors
{
	my ($file, %o) = @_;
	my $out = $o{out} // PostgreSQL::Test::Utils::tempdir('vectors');
	my @cmd = ($PYTHON, "$TOOLS/vectors.py", 'split', $file, '--out', $out);
	for my $opt (qw(base queries k metric seed))
	{
		push @cmd, "--$opt", $o{$opt} if defined $o{$opt};
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
# returns (recall@k, seconds the statement took, number of queries that
# got k rows back).
# recall@k = mean over the truth's queries of |returned and truth| / k; a
# query that returns nothing counts as 0.
sub measure_recall
{
	my ($node, $truth, %o) = @_;
	my $db = $o{db} // 'postgres';
	my $k = $o{k} // 10;
	my $settings = $o{settings} // '';

	# Time only the statement, not psql's start-up: \timing prints
	# "Time: N ms" on stdout after the result.
	my $out = $node->safe_psql($db,
		"$settings;\n\\timing on\n" . knn_sql(%o, k => $k) . ';');
	my ($ms) = $out =~ /^Time: ([0-9.]+) ms/m;
	die "no timing in psql output" unless defined $ms;

	my %got;
	for my $line (split /\n/, $out)
	{
		next unless $line =~ /^(-?\d+)\|([-\d,]*)$/;
		$got{$1} = [ split /,/, $2 ];
	}
	my $sum = 0;
	my $full = grep { @$_ == $k } values %got;
	for my $q (keys %$truth)
	{
		my %want = map { $_ => 1 } @{ $truth->{$q} }[ 0 .. $k - 1 ];
		my $hits = grep { $want{$_} } @{ $got{$q} // [] };
		$sum += $hits / $k;
	}
	my $n = scalar keys %$truth;
	return ($n ? $sum / $n : 0, $ms / 1000, $full);
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

1;
