# Real text embeddings at the width most applications store: 384-d
# all-MiniLM-L6-v2 vectors of documentation chunks (../shared/data
# minilm-384: 778 rows, unit length, cosine), each tagged with the
# collection it came from (13 sources, 353 rows down to 1) as a category
# column, the way applications filter by tenant or category.  700 base
# rows and 78 held-out queries (vectors.py split, seed 42), exact top 10
# from numpy.  Checks:
#   * an index built with no option: 384 dimensions, 2 per block, and
#     balanced leaves (the median leaf at least half the mean; ScaNN's
#     re-seeding bound made it 2 rows of a mean of 27 here);
#   * recall@10 at the index's defaults and with scoreah.target_recall =
#     0.95 (the held-out queries are not the build's calibration rows);
#   * exhaustive settings return exactly the sequential scan's order and
#     every row once (verify_exhaustive);
#   * filtered by category through a key column of the index: an Index
#     Cond, 10 rows of the asked category whenever it has 10, recall@10
#     against the exact filtered top 10 (a sequential scan);
#   * with pgvector installed, the same index on vector(384) and
#     halfvec(384) copies: recall within 0.02 of real[]'s, and the
#     exhaustive top 10 of every query equal to the sequential scan's.
# Skips without the data or /usr/bin/python3 with numpy.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $K = 10;
my $file = ScoreahTest::require_data('minilm-384.f32bin', 'MiniLM-384');
(my $idsfile = $file) =~ s/\.f32bin$/.ids.txt/;
ScoreahTest::skip_all("MiniLM-384 data incomplete: $idsfile is missing") unless -r $idsfile;
ScoreahTest::require_numpy();

my $dir = ScoreahTest::split_vectors($file, split_queries => 78, queries => 78,
	k => $K, metric => 'cosine');
my $truth = ScoreahTest::read_truth("$dir/truth.tsv");
is(scalar keys %$truth, 78, 'ground truth for every held-out query');

my $node = ScoreahTest::new_node('minilm_text',
	conf => [ 'shared_buffers = 128MB', 'autovacuum = off', @ScoreahTest::MEASURE_CONF ]);
is(ScoreahTest::load_vectors($node, 'base', "$dir/base.copy"), 700, '700 base rows');
ScoreahTest::load_vectors($node, 'queries', "$dir/queries.copy");

# each row's source collection (the id line without "-<n>-chunk-<m>") as
# a category number, rows in file order from 0 as vectors.py numbers them
my (@values, %cat);
open my $fh, '<', $idsfile or die "cannot open $idsfile: $!";
my @sources = map { chomp; s/-\d+-chunk-\d+$//r } <$fh>;
close $fh;
my $ncat = 0;
$cat{$_} //= ++$ncat for sort @sources;
push @values, "($_,$cat{$sources[$_]})" for 0 .. $#sources;
$node->safe_psql('postgres', "
	CREATE TABLE cats (id int4 PRIMARY KEY, cat int4 NOT NULL);
	INSERT INTO cats VALUES " . join(',', @values) . ";
	ALTER TABLE base ADD COLUMN cat int4;
	UPDATE base b SET cat = c.cat FROM cats c WHERE c.id = b.id;
	ANALYZE base;");
is($node->safe_psql('postgres', 'SELECT count(*) FROM base WHERE cat IS NULL'), '0',
	'every row has its category');

# ---- no option ----
$node->safe_psql('postgres', 'CREATE INDEX base_v ON base USING scoreah (v scoreah_cosine_ops)');
my $info = ScoreahTest::index_info($node, 'base_v');
is($info->{dimensions}, 384, '384 dimensions');
is($info->{dimensions_per_block}, 2, '2 dimensions per block');
my $mean = 700 / $info->{num_leaves};
ScoreahTest::figure('minilm-384 cosine: %d leaves, rows per leaf min/median/max %d/%d/%d (mean %.1f)',
	$info->{num_leaves}, $info->{rows_per_leaf_min}, $info->{rows_per_leaf_median},
	$info->{rows_per_leaf_max}, $mean);
cmp_ok($info->{rows_per_leaf_median}, '>=', $mean / 2, 'balanced leaves: the median at least half the mean');
cmp_ok($info->{rows_per_leaf_max}, '<', 4 * $mean, 'balanced leaves: none of four means');

my %recall;
for my $t ([ 'defaults', '' ], [ 'target_recall 0.95', 'SET scoreah.target_recall = 0.95;' ])
{
	my ($r, $secs, $full) = ScoreahTest::measure_recall($node, $truth, items => 'base',
		queries => 'queries', op => '<=>', k => $K, settings => "SET enable_seqscan = off; $t->[1]");
	$recall{ $t->[0] } = $r;
	ScoreahTest::figure('minilm-384 cosine, real[], %s: recall@10=%.4f', $t->[0], $r);
	is($full, 78, "$t->[0]: every query gets 10 rows");
}
cmp_ok($recall{defaults}, '>=', 0.9, 'recall@10 at the defaults >= 0.90');
cmp_ok($recall{'target_recall 0.95'}, '>=', 0.94, 'recall@10 with target_recall 0.95 >= 0.94');

my @qlits = split /\n/, $node->safe_psql('postgres',
	'SELECT v::text FROM queries ORDER BY id LIMIT 5');
ScoreahTest::verify_exhaustive($node, 'minilm real[]', [ [ 'base_v', 'base', '<=>' ] ], \@qlits);

# ---- filtered by category, through a key column ----
$node->safe_psql('postgres', 'DROP INDEX base_v;
	CREATE INDEX base_vc ON base USING scoreah (v scoreah_cosine_ops, cat)');
my @cats = split /\n/, $node->safe_psql('postgres',
	'SELECT cat FROM base GROUP BY cat HAVING count(*) >= 10 ORDER BY cat');
my $knn = sub {
	my ($settings, $cat, $extra) = @_;
	return $node->safe_psql('postgres', qq{
		$settings
		SELECT string_agg(r.ids, ';' ORDER BY q.id) FROM queries q CROSS JOIN LATERAL (
			SELECT string_agg(b.id || ':' || b.cat, ',') AS ids FROM (
				SELECT id, cat FROM base WHERE cat = $cat ORDER BY v <=> q.v $extra LIMIT $K) b) r});
};
like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF)
	SELECT id FROM base WHERE cat = $cats[0] ORDER BY v <=> (SELECT v FROM queries LIMIT 1) LIMIT 10"),
	qr/Index Cond: \(cat = $cats[0]\)/, 'the category is an Index Cond');
my ($hits, $want, $short, $wrong) = (0, 0, 0, 0);
for my $c (@cats)
{
	my @got = split /;/, $knn->('SET enable_seqscan = off;', $c, '');
	my @exact = split /;/, $knn->($ScoreahTest::SEQSCAN, $c, ', id');
	for my $i (0 .. $#exact)
	{
		my %e = map { (split /:/)[0] => 1 } split /,/, $exact[$i];
		my @g = split /,/, ($got[$i] // '');
		$short++ if @g < $K;
		$wrong += grep { (split /:/)[1] != $c } @g;
		$hits += grep { $e{ (split /:/)[0] } } @g;
		$want += scalar keys %e;
	}
}
my $frecall = $hits / $want;
ScoreahTest::figure('minilm-384 cosine, %d categories of 16 to 353 rows: filtered recall@10=%.4f',
	scalar @cats, $frecall);
is($wrong, 0, 'filtered: every row returned is of the asked category');
is($short, 0, 'filtered: 10 rows for every query and category');
cmp_ok($frecall, '>=', 0.9, 'filtered: recall@10 against the exact filtered top 10 >= 0.90');

# ---- pgvector's types ----
SKIP:
{
	skip 'pgvector is not installed on this server: vector and halfvec columns not tested', 6
	  unless $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") eq '1';
	$node->safe_psql('postgres', q{
		CREATE EXTENSION scoreah_vector CASCADE;
		CREATE TABLE base_vec AS SELECT id, v::vector(384) AS v FROM base;
		CREATE TABLE queries_vec AS SELECT id, v::vector(384) AS v FROM queries;
		CREATE TABLE base_half AS SELECT id, v::halfvec(384) AS v FROM base;
		CREATE TABLE queries_half AS SELECT id, v::halfvec(384) AS v FROM queries;
		CREATE INDEX ON base_vec USING scoreah (v vector_cosine_ops);
		CREATE INDEX ON base_half USING scoreah (v halfvec_cosine_ops);
		ANALYZE;
	});
	for my $t ([ 'vector', 'base_vec', 'queries_vec' ], [ 'halfvec', 'base_half', 'queries_half' ])
	{
		my ($type, $items, $queries) = @$t;
		my ($r) = ScoreahTest::measure_recall($node, $truth, items => $items, queries => $queries,
			op => '<=>', k => $K, settings => 'SET enable_seqscan = off;');
		ScoreahTest::figure('minilm-384 cosine, %s(384), defaults: recall@10=%.4f', $type, $r);
		cmp_ok(abs($r - $recall{defaults}), '<=', 0.02, "$type(384): recall within 0.02 of real[]'s");
		my $sql = qq{SELECT string_agg(r.ids, ';' ORDER BY q.id) FROM $queries q CROSS JOIN LATERAL (
			SELECT string_agg(b.id::text, ',') AS ids FROM (
				SELECT id FROM $items ORDER BY v <=> q.v %s LIMIT $K) b) r};
		my $exh = $node->safe_psql('postgres',
			"SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE " . sprintf($sql, ''));
		my $seq = $node->safe_psql('postgres', "$ScoreahTest::SEQSCAN " . sprintf($sql, ', id'));
		is($exh, $seq, "$type(384): exhaustive top 10 of every query equals the sequential scan's");
		like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) "
			  . sprintf($sql, '')), qr/Index Scan using \w+ on $items/, "$type(384): through the index");
	}
}

$node->stop;
done_testing();
