# Exact order and every row asked for, with and without filters.
#
# A scan returns its rows in exact distance order across batches and
# rounds (scoreah.scan_order = strict, the default), goes wider as the
# executor asks for more rows, and never stops before every leaf has been
# searched.  This file checks, on GloVe-100 (20k rows, cosine) or synthetic
# data:
#   * every returned row of every query is at least as far as the row
#     before it, for LIMITs 10, 100 and 1000 and for filtered queries whose
#     filter keeps 0.1%, 1%, 10% and 50% of the rows;
#   * a filtered query returns its 10 rows whenever the table has them,
#     and its recall@10 against the exact filtered top 10 is within 0.02
#     of the unfiltered query's at the same (default) settings;
#   * a LIMIT past the table's size returns every row exactly once;
#   * the same filters on key columns of the index (checked inside it):
#     the condition is an Index Cond, same guarantees, the speed a figure;
#   * relaxed order returns every row too (its order is exact within a
#     batch only: the figure says how often it is not, and how much faster
#     it is).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $K = 10;
my $node = ScoreahTest::new_node('order_filters',
	conf => [ 'shared_buffers = 256MB', 'autovacuum = off', @ScoreahTest::MEASURE_CONF ]);
my $data = ScoreahTest::load_knn_data($node, seed => 0.42, base => 20000, queries => 100, k => $K);
my ($OP, $OPCLASS, $LABEL) = @$data{qw(op opclass label)};
my $nrows = $node->safe_psql('postgres', 'SELECT count(*) FROM base');

$node->safe_psql('postgres', qq{
	CREATE INDEX base_v ON base USING scoreah (v $OPCLASS);
});

# Queries out of order, rows short of min(LIMIT, matching rows), and the
# statement's seconds, for all queries at once.
sub order_check
{
	my ($where, $limit, $settings) = @_;
	my $out = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off; $settings
		\\timing on
		SELECT count(*) FILTER (WHERE NOT ordered), coalesce(sum(short), 0) FROM (
			SELECT bool_and(ok) AS ordered,
				   least($limit, (SELECT count(*) FROM base WHERE $where)) - count(*) AS short
			FROM queries q CROSS JOIN LATERAL (
				SELECT d >= lag(d, 1, '-Infinity') OVER () AS ok
				FROM (SELECT v $OP q.v AS d FROM base WHERE $where ORDER BY v $OP q.v LIMIT $limit) s) r
			GROUP BY q.id) c});
	my ($bad, $short) = $out =~ /^(\d+)\|(-?\d+)$/m;
	my ($ms) = $out =~ /^Time: ([0-9.]+) ms/m;
	return ($bad, $short, $ms / 1000);
}

# recall@10 of the filtered query against a sequential scan's, and the
# fewest rows a query got
sub filtered_recall
{
	my ($where, $settings) = @_;
	$node->safe_psql('postgres', qq{
		DROP TABLE IF EXISTS truth_f;
		SET enable_indexscan = off; SET enable_bitmapscan = off;
		CREATE TABLE truth_f AS SELECT q.id, ARRAY(
			SELECT b.id FROM base b WHERE $where ORDER BY b.v $OP q.v, b.id LIMIT $K) AS ids
		FROM queries q;
	});
	my $out = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off; $settings
		SELECT avg(cardinality(ARRAY(SELECT unnest(r.ids) INTERSECT SELECT unnest(t.ids)))::float8
				   / greatest(cardinality(t.ids), 1)),
			   min(cardinality(r.ids) - cardinality(t.ids))
		FROM queries q JOIN truth_f t USING (id), LATERAL (
			SELECT ARRAY(SELECT b.id FROM base b WHERE $where ORDER BY b.v $OP q.v LIMIT $K) AS ids) r});
	return split /\|/, $out;
}

like($node->safe_psql('postgres',
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM base WHERE id % 100 = 3 "
		  . "ORDER BY v $OP (SELECT v FROM queries LIMIT 1) LIMIT 10"),
	qr/Index Scan using base_v/, 'filtered queries go through the index');

# unfiltered: order at several depths, strict and relaxed
for my $limit (10, 100, 1000)
{
	my ($bad, $short, $secs) = order_check('true', $limit, '');
	is($bad, 0, "LIMIT $limit: every query's rows in exact distance order");
	is($short, 0, "LIMIT $limit: every query gets $limit rows");
	my ($rbad, $rshort, $rsecs) = order_check('true', $limit, 'SET scoreah.scan_order = relaxed;');
	is($rshort, 0, "LIMIT $limit relaxed: every query gets $limit rows");
	ScoreahTest::figure('%s LIMIT %d: strict %.0f queries/s, out of order 0; relaxed %.0f queries/s, out of order in %d of 100 queries',
		$LABEL, $limit, 100 / $secs, 100 / $rsecs, $rbad);
}

# filtered: tenant-like equality filters keeping 0.1% to 50% of the rows.
# Which rows a filter keeps comes from a hash of the id: the synthetic
# rows' clusters follow id % 40, so id % m would keep whole clusters (m = 2
# the odd ones, m = 100 two of forty), all of them far from most queries,
# which no tenant column of real data does.
my ($base_recall) = filtered_recall('true', '');
ScoreahTest::figure('%s unfiltered recall@10 %.4f at defaults', $LABEL, $base_recall);
for my $m (1000, 100, 10, 2)
{
	my $where = "abs(hashint4(id)) % $m = 1";
	my $pct = 100 / $m;
	my ($recall, $shortfall) = filtered_recall($where, '');
	my ($bad, $short, $secs) = order_check($where, $K, '');
	ScoreahTest::figure('%s filter keeping %g%%: recall@10 %.4f (unfiltered %.4f), %.0f queries/s',
		$LABEL, $pct, $recall, $base_recall, 100 / $secs);
	is($shortfall, 0, "filter $pct%: every query gets as many rows as the table has (up to $K)");
	is($short, 0, "filter $pct%: no query short of rows");
	is($bad, 0, "filter $pct%: rows in exact distance order");
	cmp_ok($recall, '>=', $base_recall - 0.02, "filter $pct%: recall\@10 within 0.02 of the unfiltered");
}

# the same filters as a key column checked inside the index: the same
# recall and rows, faster (rows of other keys are checked, not scored)
$node->safe_psql('postgres', qq{
	ALTER TABLE base ADD COLUMN k1000 int, ADD COLUMN k100 int, ADD COLUMN k10 int, ADD COLUMN k2 int;
	UPDATE base SET k1000 = abs(hashint4(id)) % 1000, k100 = abs(hashint4(id)) % 100,
		k10 = abs(hashint4(id)) % 10, k2 = abs(hashint4(id)) % 2;
	VACUUM ANALYZE base;
	CREATE INDEX base_vk ON base USING scoreah (v $OPCLASS, k1000, k100, k10, k2);
	DROP INDEX base_v;
});
is(ScoreahTest::index_check($node, 'base_vk'), '', 'key column index: scoreah_index_check finds no problem');
for my $m (1000, 100, 10, 2)
{
	my $where = "k$m = 1";
	my $pct = 100 / $m;
	like($node->safe_psql('postgres',
			"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM base WHERE $where "
			  . "ORDER BY v $OP (SELECT v FROM queries LIMIT 1) LIMIT 10"),
		qr/Index Cond: \(k$m = 1\)/, "key $pct%: the condition is checked in the index");
	my ($recall, $shortfall) = filtered_recall($where, '');
	my ($bad, $short, $secs) = order_check($where, $K, '');
	ScoreahTest::figure('%s key column keeping %g%%: recall@10 %.4f (unfiltered %.4f), %.0f queries/s',
		$LABEL, $pct, $recall, $base_recall, 100 / $secs);
	is($shortfall, 0, "key $pct%: every query gets as many rows as the table has (up to $K)");
	is($short, 0, "key $pct%: no query short of rows");
	is($bad, 0, "key $pct%: rows in exact distance order");
	cmp_ok($recall, '>=', $base_recall - 0.02, "key $pct%: recall\@10 within 0.02 of the unfiltered");
}

# a LIMIT past the table: every row once, strict and relaxed
for my $order ('strict', 'relaxed')
{
	is($node->safe_psql('postgres', qq{
		SET enable_seqscan = off; SET scoreah.scan_order = $order;
		SELECT count(*), count(DISTINCT id) FROM (
			SELECT id FROM base ORDER BY v $OP (SELECT v FROM queries ORDER BY id LIMIT 1)
			LIMIT $nrows + 100) s}),
		"$nrows|$nrows", "$order order: a LIMIT past the table returns every row once");
}

done_testing();
