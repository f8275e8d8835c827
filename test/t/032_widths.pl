# Every embedding width, with no option: 100 to 16,000 dimensions.
#
# For each width a small table of clustered rows (16 centers in [-1, 1]^d,
# rows a center plus noise of the same scale) gets an index built with no
# WITH option, then: scoreah_index_info says what the build chose
# (dimensions_per_block 2 while a group's codes fit a page, else the
# fewest that fit; int8 routing from 256 dimensions); a query through the
# index at its defaults returns 10 rows and with exhaustive settings
# returns exactly the sequential scan's top 10; rows inserted after the build are found, deleted rows are gone
# after VACUUM, and scoreah_index_check finds no problem; a query with
# scoreah.target_recall set returns 10 rows.  real[] at every width; with
# pgvector installed, vector and halfvec columns at 384, 1536, 3072 and
# 16,000 dimensions (pgvector's own limit), else that part is skipped.
# Then the widths where a group with row biases just fits its page.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $node = ScoreahTest::new_node('widths',
	conf => [ 'shared_buffers = 256MB', 'maintenance_work_mem = 256MB', 'autovacuum = off',
		'max_parallel_maintenance_workers = 0' ]);

my $have_pgvector = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") eq '1';
$node->safe_psql('postgres', 'CREATE EXTENSION vector; CREATE EXTENSION scoreah_vector')
  if $have_pgvector;
diag('skip: pgvector is not installed on this server: vector and halfvec columns not tested')
  unless $have_pgvector;

# rows per width: fewer at the widest, where each row is 64 kB
my %ROWS = (100 => 2000, 384 => 1500, 768 => 1200, 930 => 1000, 961 => 1000, 976 => 1000,
	1280 => 1000, 1536 => 1000, 3072 => 600, 4096 => 500, 16000 => 200);

# the dimensions per block the build should choose (SCOREAH_MAX_BLOCKS
# = 488 blocks fit a code page)
sub expected_dpb
{
	my ($d) = @_;
	return int(($d + 1) / 2) <= 488 ? 2 : int(($d + 487) / 488);
}

# 10 ids of the nearest rows, through the index (settings) or a sequential
# scan (ties broken by id there: the index breaks them the same way)
sub top10
{
	my ($tab, $type, $settings, $seq) = @_;
	my $q = "(SELECT v::$type FROM ${tab}_q)";
	my $order = $seq ? "v <-> $q, id" : "v <-> $q";
	return $node->safe_psql('postgres', qq{
		$settings
		SELECT array_agg(id) FROM (SELECT id FROM $tab ORDER BY $order LIMIT 10) s});
}

# %o: with => a WITH clause's options, key => index a key column too,
# biases => the index keeps row biases (scoreah_index_info says so)
sub check_width
{
	my ($d, $type, $opclass, %o) = @_;
	my $n = $ROWS{$d};
	(my $tname = $type) =~ s/\W.*//;
	my $tab = "w${d}_$tname";
	my $label = "$d dimensions, $type" . ($o{with} ? ", $o{with}" : '') . ($o{key} ? ', a key column' : '');
	my $coltype = $type eq 'real[]' ? 'real[]' : "$type($d)";
	my $keycol = $o{key} ? ', k int DEFAULT 7' : '';
	my $indexed = $o{key} ? "v $opclass, k" : "v $opclass";
	my $with = $o{with} ? "WITH ($o{with})" : '';
	my $row = "ARRAY(SELECT (c.v[d] + random() * 1.6 - 0.8)::real FROM generate_series(1, $d) d WHERE i > 0)";

	$node->safe_psql('postgres', qq{
		SELECT setseed(0.3);
		CREATE TABLE centers AS
			SELECT c, ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, $d) d WHERE c >= 0) AS v
			FROM generate_series(0, 15) c;
		CREATE TABLE $tab (id int PRIMARY KEY, v $coltype$keycol);
		INSERT INTO $tab SELECT i, ${row}::$coltype FROM generate_series(1, $n) i JOIN centers c ON c.c = i % 16;
		CREATE TABLE ${tab}_q AS SELECT 0 AS id, $row AS v FROM generate_series(1, 1) i JOIN centers c ON c.c = 3;
		CREATE INDEX ${tab}_v ON $tab USING scoreah ($indexed) $with;
	});
	my $info = ScoreahTest::index_info($node, "${tab}_v");
	like($info->{lookup_tables}, qr/each row's bias kept/, "$label: the index keeps row biases")
	  if $o{biases};
	is($info->{dimensions_per_block}, expected_dpb($d), "$label: dimensions_per_block chosen from the width");
	like($info->{dimensions_per_block_chosen}, qr/^auto/, "$label: and said to be chosen");
	is($info->{quantize_centroids}, $d >= 256 ? 'true' : 'false',
		"$label: int8 routing chosen from 256 dimensions");
	like($info->{quantize_centroids_chosen}, qr/^auto/, "$label: and said to be chosen");
	is($info->{trained}, 'true', "$label: trained");
	like($info->{calibration}, qr/^recall\@10 of \d+ held-out sample rows/, "$label: calibrated")
	  if $n >= 1000;

	my $exh = "SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE";
	my $seq = top10($tab, $coltype, $ScoreahTest::SEQSCAN, 1);
	is(top10($tab, $coltype, $exh), $seq, "$label: exhaustive top 10 equals the sequential scan's");
	my $dflt = top10($tab, $coltype, 'SET enable_seqscan = off;');
	is(scalar(split /,/, $dflt), 10, "$label: 10 rows at the defaults");
	my $tr = top10($tab, $coltype, 'SET enable_seqscan = off; SET scoreah.target_recall = 0.95;');
	is(scalar(split /,/, $tr), 10, "$label: 10 rows with scoreah.target_recall");

	# inserts after the build, deletes and VACUUM
	$node->safe_psql('postgres', qq{
		INSERT INTO $tab SELECT i, ${row}::$coltype FROM generate_series($n + 1, $n + 50) i
			JOIN centers c ON c.c = i % 16;
		INSERT INTO $tab SELECT -1, v::$coltype FROM ${tab}_q;
		DELETE FROM $tab WHERE id % 5 = 0;
		VACUUM $tab;
	});
	like(top10($tab, $coltype, $exh), qr/^\{-1,/, "$label: a row inserted after the build is found first");
	is(top10($tab, $coltype, $exh), top10($tab, $coltype, $ScoreahTest::SEQSCAN, 1),
		"$label: after inserts, deletes and VACUUM the exhaustive top 10 equals the sequential scan's");
	is(ScoreahTest::index_check($node, "${tab}_v"), '', "$label: scoreah_index_check finds no problem");
	$node->safe_psql('postgres', "DROP TABLE $tab, ${tab}_q, centers");
	return;
}

for my $d (100, 384, 768, 1280, 1536, 3072, 4096, 16000)
{
	check_width($d, 'real[]', 'scoreah_l2_ops');
}

# Widths where a group with row biases fills its page: the build keeps
# them by the index's own layout, and until session 25 the metapage check
# bounded the blocks as if a group listed the most vector pages any width
# needs, so these indexes built and then refused every insert, scan and
# VACUUM as damaged (961-968 dimensions, 927-934 with a key column,
# 961-976 with reordering_storage = table)
check_width(961, 'real[]', 'scoreah_l2_ops', biases => 1);
check_width(930, 'real[]', 'scoreah_l2_ops', biases => 1, key => 1);
check_width(976, 'real[]', 'scoreah_l2_ops', biases => 1, with => 'reordering_storage = table');

SKIP:
{
	skip 'pgvector is not installed', 1 unless $have_pgvector;
	for my $d (384, 1536, 3072, 16000)
	{
		check_width($d, 'vector', 'vector_l2_ops');
		check_width($d, 'halfvec', 'halfvec_l2_ops');
	}
}

done_testing();
