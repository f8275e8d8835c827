# The backend's model cache under PostgreSQL's rules (src/cache.c, and the
# lifetime written next to ScoreahCacheData in src/scoreah.h):
#   (a) a cursor keeps its model pinned while another session invalidates
#       it (VACUUM's statistics update, then the first row of an index built
#       empty): the cursor fetches the rest of its rows, exactly those of an
#       uninterrupted scan, and the replaced model is freed when it closes;
#   (b) REINDEX and DROP INDEX from another session wait for an open cursor,
#       the cursor finishes right, and afterwards the old model is gone; the
#       same session's REINDEX under its own open cursor is refused (55006);
#   (c) one session that creates, queries and drops 500 indexes keeps its
#       memory bounded;
#   (d) scoreah.model_cache_size bounds the models kept between statements,
#       least recently used first, without refusing a model larger than it.
# Memory is read from pg_backend_memory_contexts: every model has a context
# "scoreah model" named after its index, under "scoreah model cache".
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $node = ScoreahTest::new_node('model_cache',
	conf => [ 'fsync = off', 'synchronous_commit = off', 'autovacuum = off',
		'jit = off', 'max_parallel_maintenance_workers = 0' ]);

# The models a session holds: their indexes' names, sorted
my $models_sql = q{SELECT coalesce(string_agg(ident, ',' ORDER BY ident COLLATE "C"), '')
	FROM pg_backend_memory_contexts WHERE name = 'scoreah model'};

# rows of t: 4000 rows of 16 dimensions, from sin/cos (no ties)
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, v real[]);
	INSERT INTO t SELECT i, ARRAY(SELECT sin(i * 0.37 + j * 1.3)::real FROM generate_series(1, 16) j)
		FROM generate_series(1, 4000) i;
	CREATE INDEX t_idx ON t USING scoreah (v) WITH (num_leaves = 40);
});
my $q = q{SELECT id FROM t ORDER BY v <-> '{1,0,1,0,1,0,1,0,1,0,1,0,1,0,1,0}' LIMIT 2000};
my $settings = q{SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 4;
	SET scoreah.reordering_num_neighbors = 100;};
my $reference = $node->safe_psql('postgres', "$settings SELECT string_agg(id::text, ',') FROM ($q) s");

# ---- (a) invalidation under an open cursor ----
my $a = $node->background_psql('postgres', on_error_stop => 0);
$a->query_safe($settings);
$a->query_safe("BEGIN; DECLARE c CURSOR FOR $q;");
my $part1 = $a->query_safe('FETCH 700 FROM c');
is($a->query_safe($models_sql), 't_idx', 'the cursor pinned one model');

# another session renames the index (ShareUpdateExclusiveLock, which the
# cursor's lock allows): a relcache invalidation of the index
$node->safe_psql('postgres', 'ALTER INDEX t_idx RENAME TO t_idx_renamed');
# the next statement here processes it; a new query loads a new model
$a->query_safe(q{SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '{0,1,0,1,0,1,0,1,0,1,0,1,0,1,0,1}' LIMIT 5) s});
is($a->query_safe($models_sql), 't_idx,t_idx_renamed',
	'after the invalidation: the cursor\'s model (unlinked, pinned) and a new one');
my $part2 = $a->query_safe('FETCH ALL FROM c');
$a->query_safe('COMMIT');
is(join(',', split(/\n/, "$part1\n$part2")), $reference,
	'the cursor fetched the rest: the rows and order of an uninterrupted scan');
is($a->query_safe($models_sql), 't_idx_renamed', 'its replaced model was freed when it closed');
$node->safe_psql('postgres', 'ALTER INDEX t_idx_renamed RENAME TO t_idx');

# the first row of an index built empty writes a new build id, under
# RowExclusiveLock: a cursor of the same index may be running
$node->safe_psql(
	'postgres', q{
	CREATE TABLE e (id int, v real[]);
	CREATE INDEX e_idx ON e USING scoreah (v);
});
$a->query_safe("BEGIN ISOLATION LEVEL REPEATABLE READ;
	DECLARE n CURSOR FOR SELECT id FROM e ORDER BY v <-> '{1,2,3}';
	DECLARE z CURSOR FOR SELECT id FROM e ORDER BY v <-> (SELECT NULL::real[]);");
is($a->query_safe('FETCH 1 FROM n'), '', 'a scan of the empty index finds nothing');
is($a->query_safe('FETCH 1 FROM z'), '', 'nor does a walk with a NULL query');
$node->safe_psql('postgres', q{INSERT INTO e VALUES (1, '{1,2,3}'), (2, '{3,2,1}')});
is($a->query_safe(q{SELECT count(*) FROM (SELECT id FROM e ORDER BY v <-> '{1,2,3}' LIMIT 5) s}),
	'0', 'the transaction\'s snapshot does not see the new rows');
is($a->query_safe($models_sql), 'e_idx,e_idx',
	'the two cursors share the pinned dimensionless model; the new query loaded the 3-dimensional one');
is($a->query_safe('FETCH ALL FROM n'), '', 'the cursors fetch the rest: nothing, as their snapshot says');
is($a->query_safe('FETCH ALL FROM z'), '', 'without reading pages of the new layout');
$a->query_safe('COMMIT');
is($a->query_safe(q{SELECT string_agg(id::text, ',') FROM (SELECT id FROM e ORDER BY v <-> '{1,2,3}' LIMIT 5) s}),
	'1,2', 'a new transaction sees both rows, in order');
is($a->query_safe($models_sql), 'e_idx', 'one model per index again (t_idx\'s went with its rename)');

# ---- (b) REINDEX and DROP INDEX against an open cursor ----
sub waits_for_lock
{
	return $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation IN ('t'::regclass, 't_idx'::regclass)});
}

$a->query_safe("BEGIN; DECLARE c CURSOR FOR $q;");
$part1 = $a->query_safe('FETCH 500 FROM c');
my $b = $node->background_psql('postgres');
$b->query_until(qr/reindexing/, "\\echo reindexing\nREINDEX INDEX t_idx;\n");
ok(waits_for_lock(), 'REINDEX from another session waits for the cursor');

# the same session cannot rebuild an index its own cursor is reading
my ($out, $err) = $a->query("SAVEPOINT s; REINDEX INDEX t_idx");
like($a->{stderr}, qr/cannot REINDEX|being used by active queries|55006/,
	'REINDEX under the session\'s own open cursor is refused');
$a->{stderr} = '';
$a->query_safe('ROLLBACK TO SAVEPOINT s');
$part2 = $a->query_safe('FETCH ALL FROM c');
$a->query_safe('COMMIT');
is(join(',', split(/\n/, "$part1\n$part2")), $reference, 'the cursor finished with the old index\'s rows');
$b->query_safe('SELECT 1');	# returns once REINDEX has finished
is($a->query_safe("SELECT string_agg(id::text, ',') FROM ($q) s"), $reference,
	'after REINDEX the session reads the new build, same rows (same data, deterministic build)');
is($a->query_safe($models_sql), 'e_idx,t_idx', 'the old build\'s model is gone');

$a->query_safe("BEGIN; DECLARE c CURSOR FOR $q;");
$part1 = $a->query_safe('FETCH 300 FROM c');
$b->query_until(qr/dropping/, "\\echo dropping\nDROP INDEX t_idx;\n");
ok(waits_for_lock(), 'DROP INDEX from another session waits for the cursor');
$part2 = $a->query_safe('FETCH ALL FROM c');
$a->query_safe('COMMIT');
is(join(',', split(/\n/, "$part1\n$part2")), $reference, 'the cursor finished before the drop');
$b->query_safe('SELECT 1');
$b->quit;
$a->query_safe('SELECT 1');	# processes the drop's invalidation
is($a->query_safe($models_sql), 'e_idx', 'the dropped index\'s model is gone');
$a->quit;

# ---- (c) 500 indexes created, queried and dropped by one session ----
$node->safe_psql(
	'postgres', q{
	CREATE TABLE s (id int, v real[]);
	INSERT INTO s SELECT i, ARRAY(SELECT sin(i * 0.91 + j)::real FROM generate_series(1, 32) j)
		FROM generate_series(1, 1000) i;
});
my $c = $node->background_psql('postgres');
$c->query_safe('SET enable_seqscan = off; SET client_min_messages = warning');
my $round = q{DO $$
BEGIN
	FOR i IN 1..100 LOOP
		EXECUTE 'CREATE INDEX s_idx ON s USING scoreah (v) WITH (num_leaves = 30)';
		PERFORM count(*) FROM (SELECT id FROM s ORDER BY v <-> array_fill(0.5::real, ARRAY[32]) LIMIT 10) x;
		EXECUTE 'DROP INDEX s_idx';
	END LOOP;
END $$};
my $mem_sql = q{SELECT sum(total_bytes) FILTER (WHERE name IN ('scoreah model cache', 'scoreah model')),
	sum(total_bytes) FROM pg_backend_memory_contexts};
my @rows;
for my $r (1 .. 5)
{
	$c->query_safe($round);
	push @rows, [ split /\|/, $c->query_safe($mem_sql) ];
	ScoreahTest::figure('after %d indexes created, queried and dropped: scoreah %d bytes, backend %d bytes',
		$r * 100, @{ $rows[-1] });
}
is($c->query_safe($models_sql), '', 'no model of a dropped index is left');
cmp_ok($rows[-1][0], '<=', 64 * 1024, 'the cache holds no memory for dropped indexes');
cmp_ok($rows[-1][1] - $rows[0][1], '<=', 1024 * 1024,
	'the backend grew by at most 1 MB from 100 to 500 indexes');
$c->quit;

# ---- (d) the cache's size limit ----
$node->safe_psql('postgres',
	join('', map { "CREATE TABLE s$_ AS SELECT * FROM s; CREATE INDEX s${_}_idx ON s$_ USING scoreah (v) WITH (num_leaves = 200);\n" } 1 .. 12));
my $d = $node->background_psql('postgres');
$d->query_safe('SET enable_seqscan = off');
sub query_table
{
	my ($i) = @_;
	return $d->query_safe("SELECT count(*) FROM (SELECT id FROM s$i ORDER BY v <-> array_fill(0.1::real, ARRAY[32]) LIMIT 3) x");
}
query_table(1);
my ($model) = $d->query_safe(q{SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'scoreah model'});
ScoreahTest::figure('one model of 200 leaves x 32 dimensions: %d bytes', $model);

my $limitkb = int((3 * $model + $model / 2) / 1024) + 1;
$d->query_safe("SET scoreah.model_cache_size = '${limitkb}kB'");
my $kept = int($limitkb * 1024 / $model);
is(query_table($_), '3', "a query of s$_ under a limit of ${limitkb}kB") for 1 .. 12;
my @want = map { "s${_}_idx" } sort { "s${a}_idx" cmp "s${b}_idx" } (12 - $kept + 1 .. 12);
is($d->query_safe($models_sql), join(',', sort @want),
	"the $kept most recently used models are kept, the others evicted");
my ($total) = $d->query_safe(q{SELECT sum(total_bytes) FROM pg_backend_memory_contexts WHERE name = 'scoreah model'});
cmp_ok($total, '<=', $limitkb * 1024, 'together within scoreah.model_cache_size');

# a limit of 0 keeps nothing between statements, yet every model loads
$d->query_safe("SET scoreah.model_cache_size = 0");
is(query_table(5), '3', 'a query with a limit smaller than its model');
is($d->query_safe($models_sql), '', 'and no model is kept after it');
$d->quit;

$node->stop;
done_testing();
