# pg_upgrade carries scoreah indexes over: it creates every index of the
# old cluster on empty tables in the new one (binary upgrade mode), then
# puts the old cluster's files in their place, so the new cluster's
# indexes are the old ones page for page.  Asserted: the upgrade succeeds
# with trained and untrained scoreah indexes (one with key columns, one
# on an empty table, one on pgvector's vector type when the server has
# pgvector); after it the same queries return the same rows through the
# index, scoreah_index_check finds nothing wrong, and inserts and VACUUM
# go on.  (The builds on empty tables during the upgrade say nothing: the
# dump pg_upgrade restores sets client_min_messages = warning, so their
# NOTICEs, such as "REINDEX once the table holds its data", are not shown;
# checked by reading the restore's logs with --retain.)
# PostgreSQL 15 to 15 here (the version the suite runs on): the on-disk
# format is scoreah's own, whatever the server's major version.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $old = ScoreahTest::new_node('upgrade_old');
my $pgvector = $old->safe_psql('postgres',
	q{SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'}) eq '1';
$old->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, tenant int, v real[]);
	INSERT INTO items
		SELECT i, i % 5, ARRAY(SELECT ((i * 37 + d * 11) % 101)::real / 101 + (i % 7) FROM generate_series(1, 16) d)
		FROM generate_series(1, 3000) i;
	CREATE INDEX items_v ON items USING scoreah (v, tenant) WITH (num_leaves = 20);
	CREATE TABLE later (id int, v real[]);
	CREATE INDEX later_v ON later USING scoreah (v);
});
if ($pgvector)
{
	$old->safe_psql('postgres', q{
		CREATE EXTENSION scoreah_vector CASCADE;
		CREATE TABLE docs (id int, e vector(16));
		INSERT INTO docs SELECT id, v::vector FROM items;
		CREATE INDEX docs_e ON docs USING scoreah (e vector_cosine_ops) WITH (num_leaves = 15);
	});
}

my $probe = '(SELECT v FROM items WHERE id = 77)';
my %queries = (
	key => "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items WHERE tenant = 2
		ORDER BY v <-> $probe LIMIT 20) s",
	all => "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY v <-> $probe LIMIT 50) s");
$queries{vector} = "SELECT string_agg(id::text, ',') FROM (SELECT id FROM docs
	ORDER BY e <=> ${probe}::vector LIMIT 20) s" if $pgvector;
my $setup = 'SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 4;';
my %before = map { $_ => $old->safe_psql('postgres', "$setup $queries{$_}") } keys %queries;
my $pages_before = $old->safe_psql('postgres', q{SELECT pg_relation_size('items_v') / 8192});
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('upgrade_new');
$new->init;
my $bindir = $old->config_data('--bindir');

# pg_upgrade writes its files under the new data directory (PostgreSQL
# 15) and into the current directory.
my $work = PostgreSQL::Test::Utils::tempdir;
chdir $work or die "chdir $work: $!";
command_ok(
	[
		'pg_upgrade', '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host, '-p', $old->port, '-P', $new->port
	],
	'pg_upgrade of a cluster with scoreah indexes');

$new->start;
for my $name (sort keys %queries)
{
	is($new->safe_psql('postgres', "$setup $queries{$name}"), $before{$name},
		"after pg_upgrade: the same rows through the index ($name)");
	like($new->safe_psql('postgres', "$setup EXPLAIN (COSTS OFF) $queries{$name}"),
		qr/Index Scan using (items_v|docs_e)/, "after pg_upgrade: the query searches the index ($name)");
}
is($new->safe_psql('postgres', q{SELECT pg_relation_size('items_v') / 8192}), $pages_before,
	'after pg_upgrade: the index has its old pages');
is(ScoreahTest::index_check($new, 'items_v'), '', 'after pg_upgrade: scoreah_index_check finds nothing wrong');

# the upgraded index goes on: inserts, a delete and VACUUM, an untrained
# index filling up, a REINDEX that trains it
$new->safe_psql('postgres', q{
	INSERT INTO items SELECT i, i % 5, ARRAY(SELECT ((i * 13 + d) % 97)::real / 97 FROM generate_series(1, 16) d)
		FROM generate_series(3001, 3500) i;
	DELETE FROM items WHERE id % 10 = 0;
	VACUUM items;
	INSERT INTO later SELECT id, v FROM items;
	REINDEX INDEX later_v;
});
is(ScoreahTest::index_check($new, 'items_v'), '', 'after inserts, deletes and VACUUM: the upgraded index checks out');
is($new->safe_psql('postgres', "$setup SELECT count(*) FROM (SELECT id FROM items WHERE tenant = 3
	ORDER BY v <-> (SELECT v FROM items WHERE id = 3003) LIMIT 10) s"), '10',
	'after inserts: a search returns its 10 rows');
is($new->safe_psql('postgres', "$setup SELECT id FROM later ORDER BY v <-> (SELECT v FROM items WHERE id = 77) LIMIT 1"),
	'77', 'the index on the table that was empty, filled and rebuilt: the row itself first');
$new->stop;

done_testing();
