# Smoke test: the extension loads in a fresh cluster and the index answers a
# query.  The query orders by the distance alone, the plan must be a scan of
# the scoreah index ordered by it, and the row it returns the one nearest
# row: i % 7, i % 11, i % 13 are all 1 for i = 1 only (7 * 11 * 13 = 1001),
# so row 1 is the only one at distance 0 from {1,1,1}.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $node = ScoreahTest::new_node('smoke');
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int, v real[]);
	INSERT INTO t SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[] FROM generate_series(1, 1000) i;
	CREATE INDEX t_v_idx ON t USING scoreah (v) WITH (num_leaves = 10);
});
my $knn = q{SELECT id FROM t ORDER BY v <-> '{1,1,1}' LIMIT 1};
like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) $knn"),
	qr/Index Scan using t_v_idx on t\n\s+Order By: \(v <-> /,
	'the query is an index scan of the scoreah index ordered by the distance');
is($node->safe_psql('postgres', "SET enable_seqscan = off; $knn"), '1',
	'the index answers with the nearest row');
$node->stop;
done_testing();
