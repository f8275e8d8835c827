# A build stays within maintenance_work_mem, serial and with parallel
# workers, on wide vectors where the model, the calibration queries and
# the encoding's batches are large beside the sort.
#
# 2,000 rows of 16,000 dimensions (125 MB of vectors) with
# maintenance_work_mem = 64MB: the sample, the sort and everything beside
# them must share the 64 MB.  The test polls the private resident memory
# (RssAnon) of every process of the node while CREATE INDEX runs and
# compares the peak with the same sum just before.  Before the encoding
# pass counted what it holds beside its sort, this build took +86 MB
# serially and +125 MB with two workers; now +65 and +77 MB.  The bound is
# 1.15x plus 4 MB a process (78 and 86 MB).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use IPC::Run;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $DIM = 16000;
my $ROWS = 2000;
my $MWM_MB = 64;
my $t_start = time();

plan skip_all => 'needs /proc (Linux)' unless -r "/proc/self/status";

my $node = ScoreahTest::new_node('build_memory',
	conf => [ 'max_worker_processes = 8', 'max_parallel_workers = 8',
		"maintenance_work_mem = '${MWM_MB}MB'", 'jit = off' ]);
$node->safe_psql('postgres', qq{
	CREATE TABLE w (id int, v real[]) WITH (parallel_workers = 2);
	ALTER TABLE w ALTER COLUMN v SET STORAGE EXTERNAL;
	INSERT INTO w SELECT i, ARRAY(SELECT (sin(i * 0.37 + d * 0.011) + random() * 0.1)::real
	                              FROM generate_series(1, $DIM) d WHERE i > 0)
	  FROM generate_series(1, $ROWS) i;
	ANALYZE w;
});

my $ppid = $node->{_pid};

# RssAnon (kB) summed over the postmaster's children
sub rss_anon_kb
{
	my $sum = 0;
	opendir(my $dh, '/proc') or return 0;
	for my $pid (grep { /^\d+$/ } readdir($dh))
	{
		open(my $fh, '<', "/proc/$pid/status") or next;
		my ($parent, $anon) = (-1, 0);
		while (<$fh>)
		{
			$parent = $1 if /^PPid:\s+(\d+)/;
			$anon = $1 if /^RssAnon:\s+(\d+)/;
		}
		close($fh);
		$sum += $anon if $parent == $ppid;
	}
	closedir($dh);
	return $sum;
}

for my $workers (0, 2)
{
	$node->safe_psql('postgres', 'DROP INDEX IF EXISTS w_idx');
	my $before = rss_anon_kb();
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c',
		  "SET max_parallel_maintenance_workers = $workers; SET client_min_messages = debug1; "
		  . "CREATE INDEX w_idx ON w USING scoreah (v)" ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(600));
	my $peak = $before;
	my $t0 = time();
	while ($h->pumpable)
	{
		my $now = rss_anon_kb();
		$peak = $now if $now > $peak;
		usleep(20_000);
		$h->pump_nb;
	}
	my $ok = $h->finish;
	my $secs = time() - $t0;
	ok($ok, "build with $workers workers succeeds") or diag($err);
	if ($workers > 0)
	{
		like($err, qr/using [1-9]\d* parallel workers/, "the build used parallel workers");
	}
	my $grew_mb = ($peak - $before) / 1024;
	# what tuplesort counts is not all it holds, and each process has its
	# own caches: 15% and 4 MB a process of slack
	cmp_ok($grew_mb, '<=', 1.15 * $MWM_MB + 4 * (1 + $workers),
		"build with $workers workers: private memory grew by at most 1.15 x maintenance_work_mem + 4 MB a process");
	ScoreahTest::figure("build of %d rows x %d dims, maintenance_work_mem %d MB, %d workers: %.1f s, private memory +%.1f MB at peak",
		$ROWS, $DIM, $MWM_MB, $workers, $secs, $grew_mb);
}

my $info = ScoreahTest::index_info($node, 'w_idx');
is($info->{rows}, $ROWS, 'the index holds every row');

ScoreahTest::figure("037_build_memory total %.1f s", time() - $t_start);
done_testing();
