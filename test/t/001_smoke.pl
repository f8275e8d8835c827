# Smoke test: the extension loads in a fresh cluster and the index answers a query.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('smoke');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION scoreah');
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int, v real[]);
	INSERT INTO t SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[] FROM generate_series(1, 1000) i;
	CREATE INDEX ON t USING scoreah (v) WITH (num_leaves = 10);
});
my $got = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT id FROM t ORDER BY v <-> '{1,1,1}', id LIMIT 1;
});
is($got, '1', 'nearest row found through the index');
$node->stop;
done_testing();
