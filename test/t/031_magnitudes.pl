# Vectors of any magnitude a float holds.
#
# The model (k-means, codebooks, routing, lookup tables) works in single
# precision on vectors multiplied by the power of 2 that brings the
# sample's mean norm near 1 (the metapage's scale); exact distances use the
# vectors as they are, in double precision.  So the same data multiplied
# by 1e19 or by 1e-25 -- where squared distances overflow or underflow a
# float -- must search as well as the data itself.  This file checks, for
# L2 and inner product at default settings and with no WITH option:
#   * recall@10 of the scaled copies is within 0.02 of the unscaled one's
#     (ground truth: a sequential scan of the unscaled table, the same
#     neighbours at any positive scale), and the exhaustive settings give
#     recall 1.0;
#   * scoreah_index_info reports the scale chosen and the mean norm;
#   * a row far larger than the rows the model was built on (1e30 times
#     them) is refused by INSERT with an error naming the limit, and so is
#     a query vector whose distances cannot be computed; rows that fit are
#     found.
# Data: GloVe-100 (20k rows) when $SCOREAH_DATA_DIR has it and numpy is
# there; otherwise synthetic clustered data made in SQL with setseed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $K = 10;
my $node = ScoreahTest::new_node('magnitudes',
	conf => [ 'shared_buffers = 128MB', 'autovacuum = off', @ScoreahTest::MEASURE_CONF ]);
my $data = ScoreahTest::load_knn_data($node, seed => 0.61, base => 20000, queries => 200,
	k => $K);

my @SCALES = ('1', '1e19', '1e-25');
for my $metric ([ 'l2', '<->' ], [ 'ip', '<#>' ])
{
	my ($name, $op) = @$metric;
	my ($truth) = ScoreahTest::run_knn($node, items => 'base', op => $op, k => $K,
		settings => $ScoreahTest::SEQSCAN);
	my %recall;
	for my $s (@SCALES)
	{
		(my $tag = $s) =~ s/[^0-9a-z]/_/g;
		my $t = "base_${name}_$tag";
		my $q = "queries_${name}_$tag";
		$node->safe_psql('postgres', qq{
			CREATE TABLE $t AS SELECT id, array(SELECT (x * $s)::real FROM unnest(v) x) AS v FROM base;
			CREATE TABLE $q AS SELECT id, array(SELECT (x * $s)::real FROM unnest(v) x) AS v FROM queries;
			CREATE INDEX ${t}_v ON $t USING scoreah (v scoreah_${name}_ops);
		});
		my $info = ScoreahTest::index_info($node, "${t}_v");
		($recall{$s}) = ScoreahTest::measure_recall($node, $truth, items => $t, queries => $q,
			op => $op, k => $K, settings => 'SET enable_seqscan = off');
		my ($exact) = ScoreahTest::measure_recall($node, $truth, items => $t, queries => $q,
			op => $op, k => $K, settings => "SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE");
		ScoreahTest::figure("%s %s x %s: recall\@10 %.4f at defaults, %.4f exhaustive (scale %s, mean norm %s)",
			$data->{label}, $name, $s, $recall{$s}, $exact, $info->{scale}, $info->{mean_norm});
		is($exact, 1, "$name x $s: exhaustive settings return the exact neighbours");
		ok($recall{$s} > 0.5, "$name x $s: recall at defaults is useful");
		ok(abs($recall{$s} - $recall{1}) <= 0.02, "$name x $s: recall within 0.02 of the unscaled data's")
		  if $s ne '1';
		is(ScoreahTest::index_check($node, "${t}_v"), '', "$name x $s: index_check finds no problem");
	}
}

# A row 1e30 times larger than the rows the model was built on: its
# squared norm in the model's units overflows a float.
my $big = "array(SELECT (x * 1e30)::real FROM unnest(v) x)";
my ($ret, $out, $err) = $node->psql('postgres',
	"INSERT INTO base_l2_1 SELECT -1, $big FROM base WHERE id = (SELECT min(id) FROM base)");
isnt($ret, 0, 'a row too large for the model is refused');
like($err, qr/too large/, 'with an error that says so');
note($err);
($ret, $out, $err) = $node->psql('postgres',
	"SET enable_seqscan = off; SELECT id FROM base_l2_1 ORDER BY v <-> (SELECT $big FROM base LIMIT 1) LIMIT 1");
isnt($ret, 0, 'a query vector too large for the model is refused');
like($err, qr/too large/, 'with an error that says so');
note($err);

# a query of ordinary size against the index of rows 1e-25 as large: in
# that index's units (scale about 1e24) it overflows single precision, and
# the error gives its norm as the query has it, not Infinity (nor, as
# before, "beyond single precision in the index's units", which a review
# found puzzling for a vector of norm 1.7)
($ret, $out, $err) = $node->psql('postgres',
	"SET enable_seqscan = off; SELECT id FROM base_l2_1e_25 ORDER BY v <-> "
	  . "(SELECT array(SELECT (x * 1e15)::real FROM unnest(v) x) FROM base LIMIT 1) LIMIT 1");
isnt($ret, 0, 'a query vector beyond the index\'s units is refused');
like($err, qr/too large for this scoreah index: its norm is \d(\.\d+)?e\+15, more than 1e\+15 times the mean norm/,
	'with an error that gives its norm as given');
unlike($err, qr/inf/i, 'not an infinite norm');

# rows a thousand times larger still fit, and are found
$node->safe_psql('postgres',
	"INSERT INTO base_l2_1 SELECT -2, array(SELECT (x * 1000)::real FROM unnest(v) x) FROM base LIMIT 1");
is($node->safe_psql('postgres', qq{
	SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE
	SELECT id FROM base_l2_1 ORDER BY v <-> (SELECT v FROM base_l2_1 WHERE id = -2) LIMIT 1}),
	'-2', 'a row 1000 times larger is indexed and found');

done_testing();
