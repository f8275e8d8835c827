# Who may introspect an index, what the introspection functions refuse, and
# the extension installed in a schema outside the search_path.
#
# The design (sql/scoreah--0.1.0.sql, src/introspect.c, README): reading a
# scoreah index (its codes and stored vectors are the table's data) needs
# SELECT on the indexed table, checked before any lock is taken;
# insufficient_privilege (42501) otherwise.  Both functions refuse relations
# that are not scoreah indexes (wrong_object_type, 42809).  This file checks:
#   * a role without SELECT gets 42501 from scoreah_index_info and
#     scoreah_index_check, even while another session holds an ACCESS
#     EXCLUSIVE lock on the table (no waiting for a lock it may not take);
#     with SELECT granted (directly or through a role) both work;
#   * a btree index, a table, a sequence, a partitioned scoreah index (the
#     parent, which holds no data) and a dropped OID are refused with a clear
#     error, and the child indexes of the partitioned one work;
#   * CREATE EXTENSION scoreah SCHEMA s, with a search_path that does not
#     include s: indexes with s.scoreah_*_ops (and the default operator class,
#     found by type whatever the search_path), inserts, VACUUM, REINDEX and
#     queries with OPERATOR(s.<->) / OPERATOR(s.<#>) / OPERATOR(s.<=>) all
#     work and the queries go through the index.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $T0 = time;

my $node = ScoreahTest::new_node('privileges', conf => [ 'autovacuum = off', 'fsync = off' ]);

# Runs $sql as $role (the bootstrap superuser when undef; verbose errors, so SQLSTATEs show); returns
# (exit code, stdout, stderr).
sub psql_as
{
	my ($role, $sql, $db) = @_;
	my ($rc, $out, $err) = $node->psql($db // 'postgres', "\\set VERBOSITY verbose\n$sql",
		extra_params => defined $role ? [ '-U', $role ] : []);
	return ($rc, $out, $err);
}

$node->safe_psql(
	'postgres', q{
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE ROLE readers;
	GRANT readers TO bob;
	CREATE TABLE t (id int PRIMARY KEY, v real[]);
	INSERT INTO t SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3)]::real[]
		FROM generate_series(1, 2000) i;
	CREATE INDEX t_v_idx ON t USING scoreah (v) WITH (num_leaves = 20);
	CREATE INDEX t_id_btree ON t (id);
	CREATE SEQUENCE seq;
});

# ---- without SELECT ----

for my $f (qw(scoreah_index_info scoreah_index_check))
{
	my ($rc, $out, $err) = psql_as('alice', "SELECT * FROM $f('t_v_idx')");
	isnt($rc, 0, "$f without SELECT on the table fails");
	like($err, qr/ERROR:  42501: permission denied for table t/, "$f without SELECT: insufficient_privilege (42501)");
	like($err, qr/DETAIL:  Reading a scoreah index needs SELECT on the table it indexes/,
		"$f without SELECT: the detail says what is needed");
	is($out, '', "$f without SELECT: no rows leak");
}

# The privilege is checked before any lock: with the table locked by
# another session, the refusal is immediate (lock_timeout would say
# otherwise).
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
for my $f (qw(scoreah_index_info scoreah_index_check))
{
	my $t = time;
	my ($rc, $out, $err) = psql_as('alice', "SET lock_timeout = '5s'; SELECT * FROM $f('t_v_idx')");
	my $secs = time - $t;
	like($err, qr/ERROR:  42501:/, "$f without SELECT, table locked by another session: still 42501");
	cmp_ok($secs, '<', 4, sprintf('%s refuses without waiting for the lock (%.2fs)', $f, $secs));
}
$locker->query_safe('ROLLBACK');
$locker->quit;

# A column privilege is not the table privilege the functions ask for.
$node->safe_psql('postgres', 'GRANT SELECT (id) ON t TO alice');
my ($rc, $out, $err) = psql_as('alice', q{SELECT count(*) FROM scoreah_index_info('t_v_idx')});
like($err, qr/ERROR:  42501:/, 'SELECT on another column only: still 42501');
$node->safe_psql('postgres', 'REVOKE SELECT (id) ON t FROM alice');

# ---- with SELECT ----

$node->safe_psql('postgres', 'GRANT SELECT ON t TO alice; GRANT SELECT ON t TO readers');
for my $role (qw(alice bob))
{
	my $how = $role eq 'alice' ? 'granted SELECT' : 'SELECT through a role';
	($rc, $out, $err) = psql_as($role,
		q{SELECT value FROM scoreah_index_info('t_v_idx') WHERE name IN ('rows', 'trained') ORDER BY name});
	is($rc, 0, "$role ($how): scoreah_index_info works");
	is($out, "2000\ntrue", "$role ($how): scoreah_index_info reports the rows");
	($rc, $out, $err) = psql_as($role, q{SELECT count(*) FROM scoreah_index_check('t_v_idx')});
	is($rc, 0, "$role ($how): scoreah_index_check works");
	is($out, '0', "$role ($how): scoreah_index_check finds no problem");
}

# ---- relations that are not scoreah indexes ----

for my $case (
	[ 't_id_btree', qr/ERROR:  42809: "t_id_btree" is not a scoreah index/, 'a btree index' ],
	[ 't', qr/ERROR:  42809: "t" is not an index/, 'a table' ],
	[ 'seq', qr/ERROR:  42809: "seq" is not an index/, 'a sequence' ])
{
	my ($rel, $re, $what) = @$case;
	for my $f (qw(scoreah_index_info scoreah_index_check))
	{
		($rc, $out, $err) = psql_as('alice', "SELECT * FROM $f('$rel')");
		isnt($rc, 0, "$f refuses $what");
		like($err, $re, "$f on $what: clear error");
	}
}

# A partitioned scoreah index has no storage of its own; its partitions'
# indexes are ordinary scoreah indexes.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE p (id int, v real[]) PARTITION BY RANGE (id);
	CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (1000);
	CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (1000) TO (3000);
	INSERT INTO p SELECT * FROM t;
	CREATE INDEX p_v_idx ON p USING scoreah (v);
});
for my $f (qw(scoreah_index_info scoreah_index_check))
{
	($rc, $out, $err) = psql_as(undef, "SELECT * FROM $f('p_v_idx')");
	isnt($rc, 0, "$f refuses a partitioned index");
	like($err, qr/ERROR:  42809: .*p_v_idx/, "$f on a partitioned index: clear error naming it");
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(c.relname || '=' || (SELECT value FROM scoreah_index_info(c.oid) WHERE name = 'rows'), ' ' ORDER BY c.relname)
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'p_v_idx'::regclass}),
	'p1_v_idx=999 p2_v_idx=1001', 'scoreah_index_info works on the partitions\' indexes');

# An OID that names no relation (e.g. a dropped index)
my $gone = $node->safe_psql('postgres',
	q{CREATE INDEX gone ON t USING scoreah (v); SELECT 'gone'::regclass::oid; DROP INDEX gone;});
for my $f (qw(scoreah_index_info scoreah_index_check))
{
	($rc, $out, $err) = psql_as(undef, "SELECT * FROM $f($gone)");
	isnt($rc, 0, "$f refuses the OID of a dropped index");
	like($err, qr/ERROR:  [0-9A-Z]{5}: /, "$f on a dropped index's OID: an error, not a crash");
	note("$f($gone) on a dropped OID: $err");
}
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still up');

# ---- the extension in a schema outside the search_path ----

$node->safe_psql('postgres', 'CREATE DATABASE sdb');
$node->safe_psql(
	'sdb', q{
	CREATE SCHEMA s;
	CREATE EXTENSION scoreah SCHEMA s;
	CREATE TABLE items (id int PRIMARY KEY, v real[]);
	ALTER DATABASE sdb SET search_path = public;
});
is($node->safe_psql('sdb', q{SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'scoreah'}),
	's', 'extension installed in schema s');
is($node->safe_psql('sdb', 'SHOW search_path'), 'public', 'search_path does not include s');
($rc, $out, $err) = $node->psql('sdb', q{SELECT '{1}'::real[] <-> '{2}'});
like($err, qr/operator does not exist/, 'unqualified operator not found outside s (the test means something)');

$node->safe_psql(
	'sdb', q{
	INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3), i % 5]::real[]
		FROM generate_series(1, 3000) i;
	CREATE INDEX items_l2 ON items USING scoreah (v s.scoreah_l2_ops) WITH (num_leaves = 30);
	CREATE INDEX items_ip ON items USING scoreah (v s.scoreah_ip_ops) WITH (num_leaves = 30);
	CREATE INDEX items_cos ON items USING scoreah (v s.scoreah_cosine_ops) WITH (num_leaves = 30);
	INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3), i % 5]::real[]
		FROM generate_series(3001, 3500) i;
	DELETE FROM items WHERE id % 10 = 0;
	VACUUM items;
	REINDEX INDEX items_ip;
	ANALYZE items;
});

my $q = q{'{0.5,0.5,0.1,-0.2,2}'::real[]};
for my $case ([ '<->', 'items_l2', 'l2_distance' ], [ '<#>', 'items_ip', 'negative_inner_product' ],
	[ '<=>', 'items_cos', 'cosine_distance' ])
{
	my ($op, $idx, $fn) = @$case;
	my $knn = "SELECT id FROM items ORDER BY v OPERATOR(s.$op) $q LIMIT 10";
	my $exhaustive = "SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE";
	like($node->safe_psql('sdb', "$exhaustive EXPLAIN (COSTS OFF) $knn"),
		qr/Index Scan using $idx on items/, "OPERATOR(s.$op) uses $idx with s off the search_path");
	my $via_index = $node->safe_psql('sdb', "$exhaustive SELECT string_agg(id::text, ',') FROM ($knn) r");
	my $exact = $node->safe_psql('sdb',
		"SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY s.$fn(v, $q) LIMIT 10) r");
	is($via_index, $exact, "OPERATOR(s.$op) through $idx: the exact top 10 ($via_index)");
	is($node->safe_psql('sdb', "SELECT count(*) FROM s.scoreah_index_check('$idx')"), '0',
		"s.scoreah_index_check('$idx') finds no problem");
}
is($node->safe_psql('sdb', q{SELECT value FROM s.scoreah_index_info('items_l2') WHERE name = 'rows'}),
	'3150', 's.scoreah_index_info counts the rows');

# The default operator class is found by type and access method, whatever
# the search_path; and a search_path naming nothing at all still works.
$node->safe_psql(
	'sdb', q{
	SET search_path = '';
	CREATE TABLE public.more (id int, v real[]);
	CREATE INDEX more_v ON public.more USING scoreah (v);
	INSERT INTO public.more SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[] FROM generate_series(1, 500) i;
});
is($node->safe_psql('sdb', q{
	SELECT opcname FROM pg_index i JOIN pg_opclass o ON o.oid = i.indclass[0]
	WHERE i.indexrelid = 'public.more_v'::regclass}), 'scoreah_l2_ops',
	'default operator class chosen with an empty search_path');
like($node->safe_psql('sdb', q{SET search_path = ''; SET enable_seqscan = off;
	EXPLAIN (COSTS OFF) SELECT id FROM public.more ORDER BY v OPERATOR(s.<->) '{1,1,1}' LIMIT 3}),
	qr/Index Scan using more_v/, 'empty search_path: the index serves OPERATOR(s.<->)');
is($node->safe_psql('sdb', q{SET search_path = ''; SET enable_seqscan = off;
	SELECT id FROM public.more ORDER BY v OPERATOR(s.<->) '{1,1,1}' LIMIT 1}),
	'1', 'empty search_path: nearest row found');

ScoreahTest::figure('025_privileges total %.1fs', time - $T0);
$node->stop;
done_testing();
