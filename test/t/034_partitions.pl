# Multi-tenant vector search with partitioned tables (docs/partitioning.md).
#
# One table per tenant under a partitioned parent, one scoreah index per
# partition made by a single CREATE INDEX on the parent.  This file checks,
# on GloVe-100 (20k rows, cosine) or synthetic data, with the same rows in
#   * docs_list: LIST-partitioned by tenant_id, 8 tenants of 40% ... 0.2% of
#     the rows (tenant 8: 40 rows, fewer than the index's 100 leaves),
#     index WITH (num_leaves = 100, ...) on the parent;
#   * docs_hash: HASH-partitioned on tenant_id, 4 partitions, index with no
#     option (each partition chooses its own leaves, about sqrt(rows));
#   * flat: one plain table and one index, the tenant a filter (the
#     baseline the figures compare with);
# that
#   * CREATE INDEX on a parent gives every partition a scoreah index, the
#     tiny partition's saying it has fewer rows than leaves;
#   * 10% of the rows, inserted after the build through the parents, are
#     routed to their partitions' indexes: a full scan through the indexes
#     returns them, and their own vectors find them at defaults as often
#     as rows of the build (a figure: the search is approximate);
#   * a per-tenant query (WHERE tenant_id = const ORDER BY v <=> q LIMIT 10)
#     is pruned at plan time to one partition and its index; under
#     plan_cache_mode = force_generic_plan it is pruned at executor start
#     ("Subplans Removed"); as a subquery run per outer row, at each rescan
#     (every partition runs only for its own tenant's queries);
#   * per-tenant results: 10 rows whenever the tenant has them, only the
#     tenant's rows, exact distance order, no duplicate; the three kinds of
#     pruning return the same rows (the tiny tenant's custom plan is a
#     sequential scan: exact); recall@10 against a sequential scan is a
#     figure, above a floor, and with every leaf searched exact; the same
#     for the flat table, whose index filters the tenant;
#   * a global query (no tenant) is a Merge Append over every partition's
#     index scan, in exact order, recall@10 a figure;
#   * DETACH PARTITION keeps the partition's index (then a plain index of a
#     plain table, same rows as before); ATTACH PARTITION adopts it (same
#     relfilenode: not rebuilt);
#   * a partition created after the parent index gets its own scoreah
#     index (built empty: untrained until REINDEX); a table loaded and
#     indexed with its own options, then attached, keeps its index;
#   * scoreah_index_check finds no problem in any partition's index.
# Figures: build times, leaves per partition, recall@10 and queries/s per
# tenant and global (partitioned and flat, at defaults and at
# scoreah.target_recall = 0.95), planning times, model cache memory.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;
use Time::HiRes qw(time);

my $T0 = time;
my $K = 10;
my $NBASE = 20000;
my $NQUERIES = 200;
my $NTENANTS = 8;
my $RECALL_FLOOR = 0.70;    # mean per-tenant/global recall@10 at defaults
my $EXH_Q = 'q.id IN (SELECT id FROM qt ORDER BY id LIMIT 48)';    # 6 queries a tenant

# tenant t holds the rows whose rank % 1000 is below $BOUNDS[t-1]: 40%,
# 20%, 12%, 10%, 8%, 6%, 3.8% and 0.2% (40 of 20,000 rows) of the rows
my @BOUNDS = (400, 600, 720, 820, 900, 960, 998, 1000);

my $node = ScoreahTest::new_node('partitions',
	conf => [ 'shared_buffers = 256MB', 'autovacuum = off', @ScoreahTest::MEASURE_CONF ]);
my $data = ScoreahTest::load_knn_data($node, seed => 0.34, base => $NBASE,
	queries => $NQUERIES, k => $K, leaves => 100);
my ($OP, $OPCLASS, $WITH, $LABEL) = @$data{qw(op opclass with label)};

sub sql { return $node->safe_psql('postgres', $_[0]); }

# notes a section's start and the seconds since the file's
sub section { note(sprintf('---- %s (%.1fs)', $_[0], time - $T0)); return; }

# ---- tenants, tables, indexes ----
section('tenants, tables, indexes');

my $case = 'CASE ' . join(' ', map { "WHEN rk % 1000 < $BOUNDS[$_] THEN " . ($_ + 1) } 0 .. $#BOUNDS) . ' END';
sql(qq{
	CREATE TYPE hit AS (id int, tenant int, d float8);
	-- every base row with its tenant; late: inserted after the builds
	CREATE TABLE src AS
		SELECT $case AS tenant_id, id, v, rk % 10 = 5 AS late
		FROM (SELECT id, v, row_number() OVER (ORDER BY id) AS rk FROM base) b;
	-- the queries, 25 per tenant
	CREATE TABLE qt AS
		SELECT id, v, (row_number() OVER (ORDER BY id) % $NTENANTS + 1)::int AS tenant FROM queries;

	CREATE TABLE docs_list (tenant_id int NOT NULL, id int NOT NULL, v real[] NOT NULL)
		PARTITION BY LIST (tenant_id);
	CREATE TABLE docs_hash (tenant_id int NOT NULL, id int NOT NULL, v real[] NOT NULL)
		PARTITION BY HASH (tenant_id);
	CREATE TABLE flat (tenant_id int NOT NULL, id int NOT NULL, v real[] NOT NULL);
});
sql(join('', map { "CREATE TABLE docs_list_t$_ PARTITION OF docs_list FOR VALUES IN ($_);\n" } 1 .. $NTENANTS)
	  . join('', map { "CREATE TABLE docs_hash_p$_ PARTITION OF docs_hash FOR VALUES WITH (MODULUS 4, REMAINDER $_);\n" } 0 .. 3)
	  . join('', map { "INSERT INTO $_ SELECT tenant_id, id, v FROM src WHERE NOT late ORDER BY id;\n" } qw(docs_list docs_hash flat)));

my $qplan_vec = sql('SELECT v FROM qt ORDER BY id LIMIT 1');    # a query vector for EXPLAIN
my %rows_of = map { split /\|/ } split /\n/, sql('SELECT tenant_id, count(*) FROM src GROUP BY 1');
is($rows_of{8}, $NBASE / 500, "tenant 8 holds $rows_of{8} rows");
ScoreahTest::figure('%s tenants: rows %s', $LABEL, join(' / ', map { $rows_of{$_} } 1 .. $NTENANTS));

# (psql's own \timing: the time of the statement alone)
my ($rc, $stdout, $stderr) = $node->psql('postgres',
	"\\timing on\nCREATE INDEX docs_list_v ON docs_list USING scoreah (v $OPCLASS) WITH ($WITH)");
my ($list_ms) = $stdout =~ /^Time: ([0-9.]+) ms/m;
my $list_secs = ($list_ms // 0) / 1000;
is($rc, 0, 'CREATE INDEX on the LIST-partitioned parent');
like($stderr, qr/NOTICE: .*"docs_list_t8_v_idx" built with (\d+) leaves instead of 100: only \1 rows to train on/,
	'the tiny partition says it has fewer rows than leaves');
my $hash_secs = ScoreahTest::timed_sql($node, "CREATE INDEX docs_hash_v ON docs_hash USING scoreah (v $OPCLASS)");
my $flat_secs = ScoreahTest::timed_sql($node, "CREATE INDEX flat_v ON flat USING scoreah (v $OPCLASS)");
ScoreahTest::figure('%s build of %d rows: LIST parent (8 partitions, %s) %.2fs, HASH parent (4 partitions, no option) %.2fs, flat table (no option) %.2fs',
	$LABEL, $NBASE - $NBASE / 10, $WITH, $list_secs, $hash_secs, $flat_secs);

# Each partition has its own scoreah index, attached to the parent's.
my $parts_sql = q{SELECT c.relname, i.relname, a.amname FROM pg_inherits h
	JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_index x ON x.indrelid = c.oid
	JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam
	JOIN pg_inherits hi ON hi.inhrelid = i.oid
	WHERE h.inhparent = '%s'::regclass AND hi.inhparent = '%s'::regclass ORDER BY 1};
is(sql(sprintf($parts_sql, 'docs_list', 'docs_list_v')),
	join("\n", map { "docs_list_t$_|docs_list_t${_}_v_idx|scoreah" } 1 .. $NTENANTS),
	'every LIST partition got a scoreah index attached to the parent index');
is(sql(sprintf($parts_sql, 'docs_hash', 'docs_hash_v')),
	join("\n", map { "docs_hash_p$_|docs_hash_p${_}_v_idx|scoreah" } 0 .. 3),
	'every HASH partition got a scoreah index attached to the parent index');

# ---- inserts after the build, routed through the parents ----
section('inserts after the build, routed through the parents');

sql(join('', map { "INSERT INTO $_ SELECT tenant_id, id, v FROM src WHERE late ORDER BY id;\n" } qw(docs_list docs_hash flat))
	  . 'ANALYZE docs_list; ANALYZE docs_hash; ANALYZE flat; ANALYZE qt;');
is(sql(q{SELECT count(*) FROM (
		SELECT tenant_id, count(*) FROM docs_list GROUP BY 1
		EXCEPT SELECT tenant_id, count(*) FROM src GROUP BY 1) s}), '0',
	'every row reached its tenant');
is(sql(q{SELECT count(*) FROM docs_list WHERE tableoid <> ('docs_list_t' || tenant_id)::regclass}), '0',
	'every row routed to its LIST partition');

my (%leaves, %hash_tenants, $inserted);
for my $p ((map { "docs_list_t$_" } 1 .. $NTENANTS), (map { "docs_hash_p$_" } 0 .. 3))
{
	my $info = ScoreahTest::index_info($node, "${p}_v_idx");
	my $n = sql("SELECT count(*) FROM $p");
	is($info->{rows}, $n, "${p}_v_idx counts its partition's $n rows");
	$inserted += $info->{rows_inserted_since_build};
	$leaves{$p} = $info->{num_leaves};
	$hash_tenants{$p} = sql("SELECT string_agg(DISTINCT tenant_id::text, ',') FROM $p") if $p =~ /hash/;
}
is($inserted, 2 * $NBASE / 10, 'the indexes of both parents took every row inserted after the build');
ScoreahTest::figure('%s leaves per partition: LIST %s; HASH (tenants) %s', $LABEL,
	join(' / ', map { $leaves{"docs_list_t$_"} } 1 .. $NTENANTS),
	join(' / ', map { "$leaves{\"docs_hash_p$_\"} ($hash_tenants{\"docs_hash_p$_\"}: "
		  . sql("SELECT count(*) FROM docs_hash_p$_") . ' rows)' } 0 .. 3));

# Every row inserted after the build, as a query within its tenant, is
# among its own 10 nearest about as often as a row the build saw (the
# search is approximate: a row's own leaf need not be among the leaves a
# query of it is routed to); and a full scan through the partitions'
# indexes returns every row once, those inserted after the build too.
for my $items ('docs_list', 'docs_hash')
{
	my $self = qq{SELECT count(*) FROM src s WHERE %s AND s.id = ANY (ARRAY(
		SELECT d.id FROM $items d WHERE d.tenant_id = s.tenant_id ORDER BY d.v $OP s.v LIMIT $K))};
	my $late = sql(sprintf($self, 's.late'));
	my $built = sql(sprintf($self, 'NOT s.late AND s.id IN (SELECT id FROM src WHERE NOT late ORDER BY id LIMIT 2000)'));
	my $full = "SELECT id FROM $items ORDER BY v $OP '$qplan_vec' LIMIT 1000000";
	like(sql("SET enable_seqscan = off; EXPLAIN (COSTS OFF) $full"), qr/Merge Append\n(?:.*\n)*.*Index Scan using/,
		"$items: the full scan goes through the partitions' indexes");
	is(sql("SET enable_seqscan = off; $ScoreahTest::EXHAUSTIVE SELECT count(*), count(DISTINCT f.id), count(*) FILTER (WHERE s.late) "
			  . "FROM ($full) f JOIN src s USING (id)"),
		"$NBASE|$NBASE|" . $NBASE / 10, "$items: a full scan through the indexes returns every row once, the inserted ones too");
	ScoreahTest::figure('%s %s: a row\'s own vector finds it at defaults: %d of %d rows inserted after the build, %d of 2000 rows of the build',
		$LABEL, $items, $late, $NBASE / 10, $built);
	cmp_ok($late, '>=', $built - 40, "$items: rows inserted after the build are found by their own vector as often as built rows ($late, $built)");
}

# ---- exact answers: sequential scans of flat ----
section('exact answers: sequential scans of flat');

sql(qq{
	SET enable_indexscan = off; SET enable_bitmapscan = off;
	CREATE TABLE truth_tenant AS SELECT q.id, q.tenant, ARRAY(
		SELECT ROW(f.id, f.tenant_id, f.v $OP q.v)::hit FROM flat f WHERE f.tenant_id = q.tenant
		ORDER BY f.v $OP q.v, f.id LIMIT $K) AS hits FROM qt q;
	CREATE TABLE truth_global AS SELECT q.id, NULL::int AS tenant, ARRAY(
		SELECT ROW(f.id, f.tenant_id, f.v $OP q.v)::hit FROM flat f
		ORDER BY f.v $OP q.v, f.id LIMIT $K) AS hits FROM qt q;
});

# The subquery of one query: $items searched for q.v, within q's tenant
# or not; each run of it is a rescan whose parameters are q's tenant and
# vector.
sub knn_subquery
{
	my ($items, $per_tenant, $select) = @_;
	my $where = $per_tenant ? 'WHERE d.tenant_id = q.tenant' : '';
	return "ARRAY(SELECT $select FROM $items d $where ORDER BY d.v $OP q.v LIMIT $K)";
}

# Runs every query of qt (or those of $qwhere, a condition on q) against
# $items, per tenant or global, after the SET statements of $settings,
# into table $res (id, hits hit[]).
sub knn
{
	my ($res, $items, $per_tenant, $settings, $qwhere) = @_;
	$qwhere //= 'true';
	sql(qq{
		$settings;
		DROP TABLE IF EXISTS $res;
		CREATE TABLE $res AS SELECT q.id, }
		  . knn_subquery($items, $per_tenant, "ROW(d.id, d.tenant_id, d.v $OP q.v)::hit")
		  . " AS hits FROM qt q WHERE $qwhere");
	return;
}

# Queries per second of the same statement, the rows only counted (the
# server's time for the statement: no client, no table written).
sub qps
{
	my ($items, $per_tenant, $settings, $qwhere) = @_;
	$qwhere //= 'true';
	my $out = sql("$settings;\n\\timing on\nSELECT count(*), sum(cardinality("
		  . knn_subquery($items, $per_tenant, 'd.id') . ")) FROM qt q WHERE $qwhere;");
	my ($n) = $out =~ /^(\d+)\|/m;
	my ($ms) = $out =~ /^Time: ([0-9.]+) ms/m;
	die "no timing in $out" unless defined $ms && $n;
	return $n / ($ms / 1000);
}

# Judges $res against $truth: { unordered => queries whose rows are not in
# ascending distance, short => queries with fewer rows than the truth,
# wrong => rows of another tenant, dups => queries with a row twice,
# inexact => queries whose distances differ from the truth's, recall =>
# mean recall@10 } (over the queries of $where, a condition on q).
sub judge
{
	my ($res, $truth, $where) = @_;
	$where //= 'true';
	my $out = sql(qq{
		WITH t AS (
			SELECT t.id, t.tenant, t.hits, ARRAY(SELECT x.id FROM unnest(t.hits) x) AS ids
			FROM $truth t JOIN qt q USING (id) WHERE $where),
		h AS (
			SELECT r.id, x.id AS hid, x.tenant, x.d,
				   lag(x.d) OVER (PARTITION BY r.id ORDER BY x.ord) AS prev
			FROM $res r, unnest(r.hits) WITH ORDINALITY x(id, tenant, d, ord)),
		per AS (
			SELECT t.id, cardinality(t.ids) AS want, count(h.hid) AS n, count(DISTINCT h.hid) AS nd,
				   count(*) FILTER (WHERE h.d < h.prev) AS unordered,
				   count(*) FILTER (WHERE h.tenant <> t.tenant) AS wrong,
				   count(*) FILTER (WHERE h.hid = ANY (t.ids)) AS hits,
				   (SELECT array_agg(x.d) FROM unnest(t.hits) x)
					 IS DISTINCT FROM (SELECT array_agg(x.d) FROM $res r, unnest(r.hits) x WHERE r.id = t.id) AS inexact
			FROM t LEFT JOIN h ON h.id = t.id GROUP BY t.id, t.ids, t.hits)
		SELECT count(*) FILTER (WHERE unordered > 0), count(*) FILTER (WHERE n < want),
			   coalesce(sum(wrong), 0), count(*) FILTER (WHERE nd <> n),
			   count(*) FILTER (WHERE inexact), avg(hits::float8 / want)
		FROM per});
	my %j;
	@j{qw(unordered short wrong dups inexact recall)} = split /\|/, $out;
	return \%j;
}

# The checks every run of knn must pass; returns recall@10.
sub sound
{
	my ($what, $j) = @_;
	is($j->{unordered}, 0, "$what: every query's rows in exact distance order");
	is($j->{short}, 0, "$what: every query gets its $K rows (or all its tenant's)");
	is($j->{wrong}, 0, "$what: no row of another tenant");
	is($j->{dups}, 0, "$what: no row twice");
	return $j->{recall};
}


# ---- per-tenant queries: plans ----
section('per-tenant queries: plans');

for my $t (1 .. $NTENANTS)
{
	my $plan = sql("EXPLAIN (COSTS OFF) SELECT id FROM docs_list WHERE tenant_id = $t "
		  . "ORDER BY v $OP '$qplan_vec' LIMIT $K");
	my @scans = $plan =~ /(Scan(?: using \S+)? on \S+)/g;
	if ($t == 3)
	{
		like($plan, qr/^\s*->\s+Index Scan using docs_list_t3_v_idx on docs_list_t3 /m,
			'tenant 3 (constant): an Index Scan on its partition\'s scoreah index');
		unlike($plan, qr/Append/, 'tenant 3 (constant): pruned at plan time, no Append');
	}
	is_deeply([ map { /on (\S+)/ } @scans ], ["docs_list_t$t"],
		"tenant $t (constant): only its partition is scanned (@scans)");
	note("tenant $t plan: @scans");
	if ($t == $NTENANTS)
	{
		ScoreahTest::figure('%s tenant %d (%d rows), constant tenant: the planner picks %s', $LABEL,
			$t, $rows_of{$t}, join(' > ', $plan =~ /^\s*(?:->\s+)?([A-Z][A-Za-z ]+?)(?: using \S+)?(?: on \S+.*)?$/mg));
	}
}

my $hash_plan = sql("EXPLAIN (COSTS OFF) SELECT id FROM docs_hash WHERE tenant_id = 3 ORDER BY v $OP '$qplan_vec' LIMIT $K");
like($hash_plan, qr/Index Scan using docs_hash_p\d_v_idx on docs_hash_p\d .*\n(?:.*\n)*\s+Filter: \(tenant_id = 3\)/,
	'HASH, tenant 3 (constant): an Index Scan on one partition\'s index, other tenants filtered out');
is(scalar(() = $hash_plan =~ /Index Scan/g), 1, 'HASH, tenant 3 (constant): one partition scanned');

# generic plans: pruned when the executor starts
my $generic = "SET plan_cache_mode = force_generic_plan;\n"
  . "PREPARE p(int, real[]) AS SELECT id FROM %s WHERE tenant_id = \$1 ORDER BY v $OP \$2 LIMIT $K;\n"
  . "EXPLAIN (COSTS OFF) EXECUTE p(3, '$qplan_vec');";
my $plan = sql(sprintf($generic, 'docs_list'));
like($plan, qr/Subplans Removed: 7/, 'LIST, generic plan: 7 of 8 partitions pruned at executor start');
like($plan, qr/Index Scan using docs_list_t3_v_idx on docs_list_t3 /, 'LIST, generic plan: tenant 3\'s index scanned');
is(scalar(() = $plan =~ /Index Scan/g), 1, 'LIST, generic plan: one partition left');
like($plan, qr/^\s*->\s+Append$/m, 'LIST, generic plan: a plain Append (tenant_id = $1 leaves one LIST partition that can match)');
note($plan);
$plan = sql(sprintf($generic, 'docs_hash'));
like($plan, qr/Merge Append\n.*\n\s+Subplans Removed: 3/, 'HASH, generic plan: Merge Append, 3 of 4 partitions pruned at executor start');
is(scalar(() = $plan =~ /Index Scan/g), 1, 'HASH, generic plan: one partition left');
note($plan);

# a subquery per row: pruned at each rescan
$plan = sql(qq{EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT q.id, ARRAY(SELECT d.id FROM docs_list d WHERE d.tenant_id = q.tenant ORDER BY d.v $OP q.v LIMIT $K) FROM qt q});
for my $t (1 .. $NTENANTS)
{
	like($plan, qr/Index Scan using docs_list_t${t}_v_idx on docs_list_t$t \S+ \(actual rows=\d+ loops=25\)/,
		"LIST, per-row subquery: tenant $t\'s index runs for its 25 queries only");
}

# ---- per-tenant queries: results ----
section('per-tenant queries: results');

my %recall;
my %qps;
for my $items ('docs_list', 'docs_hash', 'flat')
{
	knn("res_$items", $items, 1, '');
	$recall{$items} = sound("$items per tenant", judge("res_$items", 'truth_tenant'));
	$qps{$items} = qps($items, 1, '');
	my $j = judge("res_$items", 'truth_tenant', 'q.tenant = ' . $NTENANTS);
	is($j->{short}, 0, "$items: tenant $NTENANTS (tiny) gets its $K rows");
	knn("exh_$items", $items, 1, $ScoreahTest::EXHAUSTIVE, $EXH_Q);
	is(judge("exh_$items", 'truth_tenant', $EXH_Q)->{inexact}, 0,
		"$items per tenant, every leaf searched: every query's distances equal the sequential scan's");
}
ScoreahTest::figure('%s per-tenant recall@%d at defaults: LIST %.4f (%.0f queries/s), HASH %.4f (%.0f queries/s), flat table + filter %.4f (%.0f queries/s)',
	$LABEL, $K, $recall{docs_list}, $qps{docs_list}, $recall{docs_hash}, $qps{docs_hash}, $recall{flat}, $qps{flat});
cmp_ok($recall{$_}, '>=', $RECALL_FLOOR, "$_ per tenant: recall\@$K $recall{$_} >= $RECALL_FLOOR at defaults")
  for qw(docs_list docs_hash);
ScoreahTest::figure('%s per-tenant recall@%d at defaults by tenant (rows): LIST %s', $LABEL, $K,
	join(', ', map { sprintf('%d (%d) %.3f', $_, $rows_of{$_}, judge('res_docs_list', 'truth_tenant', "q.tenant = $_")->{recall}) } 1 .. $NTENANTS));
ScoreahTest::figure('%s per-tenant recall@%d at defaults by tenant (rows): HASH %s', $LABEL, $K,
	join(', ', map { sprintf('%d (%d) %.3f', $_, $rows_of{$_}, judge('res_docs_hash', 'truth_tenant', "q.tenant = $_")->{recall}) } 1 .. $NTENANTS));

# queries/s by tenant: a partition's own index against the flat table's
# index and a filter that keeps the tenant's share of the rows
ScoreahTest::figure('%s per-tenant queries/s by tenant (rows): %s', $LABEL, join(', ', map {
	my $t = $_;
	my ($l, $f) = map { qps($_, 1, '', "q.tenant = $t") } qw(docs_list flat);
	sprintf('%d (%d) LIST %.0f, flat %.0f', $t, $rows_of{$t}, $l, $f) } 1 .. $NTENANTS));

my %target;
for my $items ('docs_list', 'docs_hash', 'flat')
{
	my $set = 'SET scoreah.target_recall = 0.95';
	knn("tgt_$items", $items, 1, $set);
	$target{$items} = sprintf('%.4f (%.0f queries/s)', sound("$items per tenant, target 0.95", judge("tgt_$items", 'truth_tenant')),
		qps($items, 1, $set));
}
ScoreahTest::figure('%s per-tenant recall@%d at scoreah.target_recall = 0.95: LIST %s, HASH %s, flat table + filter %s',
	$LABEL, $K, @target{qw(docs_list docs_hash flat)});

# The same statement as an application would prepare it, with custom
# plans (pruned at plan time) and the generic plan (pruned at executor
# start): the rows of the subquery runs above, in the same order.
my %qv = map { split /\|/, $_, 2 } split /\n/, sql('SELECT id, v FROM qt ORDER BY id');
my %qtenant = map { split /\|/ } split /\n/, sql('SELECT id, tenant FROM qt');
my %ref = map { split /\|/, $_, 2 } split /\n/, sql(
	q{SELECT r.id, coalesce((SELECT string_agg(x.id::text, ',' ORDER BY o) FROM unnest(r.hits) WITH ORDINALITY x(id, tenant, d, o)), '') FROM res_docs_list r});
my %exact = map { split /\|/, $_, 2 } split /\n/, sql(
	q{SELECT t.id, coalesce((SELECT string_agg(x.id::text, ',' ORDER BY o) FROM unnest(t.hits) WITH ORDINALITY x(id, tenant, d, o)), '') FROM truth_tenant t});
for my $mode ('force_custom_plan', 'force_generic_plan')
{
	my $s = "SET plan_cache_mode = $mode;\nPREPARE p(int, real[]) AS SELECT id, tenant_id, v $OP \$2 FROM docs_list "
	  . "WHERE tenant_id = \$1 ORDER BY v $OP \$2 LIMIT $K;\n";
	$s .= "\\echo \@q $_\nEXECUTE p($qtenant{$_}, '$qv{$_}');\n" for sort { $a <=> $b } keys %qv;
	my (%got, %prev, $cur);
	my ($unordered, $wrong, $short, $differ, $differ_tiny) = (0, 0, 0, 0, 0);
	for my $line (split /\n/, sql($s))
	{
		if ($line =~ /^\@q (\d+)$/) { $cur = $1; $got{$cur} = []; next; }
		my ($id, $tenant, $d) = split /\|/, $line;
		$unordered++ if @{ $got{$cur} } && $d < $prev{$cur};
		$wrong++ if $tenant != $qtenant{$cur};
		$prev{$cur} = $d;
		push @{ $got{$cur} }, $id;
	}
	for my $q (keys %qv)
	{
		my $ids = join(',', @{ $got{$q} // [] });
		$short++ if @{ $got{$q} // [] } < $K;    # every tenant has at least $K rows
		# The tiny tenant's custom plan may be a sequential scan and sort:
		# exact, so compared with the exact answer.
		if ($mode eq 'force_custom_plan' && $qtenant{$q} == $NTENANTS && $ids ne $ref{$q})
		{
			$differ_tiny++ if $ids ne $exact{$q};
			next;
		}
		$differ++ if $ids ne $ref{$q};
	}
	is(scalar keys %got, $NQUERIES, "prepared, $mode: every query answered");
	is($unordered, 0, "prepared, $mode: rows in exact distance order");
	is($wrong, 0, "prepared, $mode: no row of another tenant");
	is($short, 0, "prepared, $mode: every query gets $K rows");
	is($differ, 0, "prepared, $mode: the same rows in the same order as the per-row subquery");
	is($differ_tiny, 0, "prepared, $mode: the tiny tenant's rows are the exact answer") if $mode eq 'force_custom_plan';
}

# ---- global queries: no tenant ----
section('global queries: no tenant');

for my $items ('docs_list', 'docs_hash')
{
	my $gplan = sql("EXPLAIN (COSTS OFF) SELECT id FROM $items ORDER BY v $OP '$qplan_vec' LIMIT $K");
	my $nparts = $items eq 'docs_list' ? $NTENANTS : 4;
	like($gplan, qr/^\s*->\s+Merge Append\n\s+Sort Key: /m, "$items, global query: a Merge Append");
	is(scalar(() = $gplan =~ /Index Scan using ${items}_\w+_v_idx on $items/g), $nparts,
		"$items, global query: an Index Scan on each of the $nparts partitions' indexes");
}
my %grecall;
my %gqps;
for my $items ('docs_list', 'docs_hash', 'flat')
{
	knn("g_$items", $items, 0, '');
	$grecall{$items} = sound("$items global", judge("g_$items", 'truth_global'));
	$gqps{$items} = qps($items, 0, '');
	knn("gexh_$items", $items, 0, $ScoreahTest::EXHAUSTIVE, $EXH_Q);
	is(judge("gexh_$items", 'truth_global', $EXH_Q)->{inexact}, 0,
		"$items global, every leaf searched: every query's distances equal the sequential scan's");
}
ScoreahTest::figure('%s global recall@%d at defaults: LIST %.4f (%.0f queries/s), HASH %.4f (%.0f queries/s), flat table %.4f (%.0f queries/s)',
	$LABEL, $K, $grecall{docs_list}, $gqps{docs_list}, $grecall{docs_hash}, $gqps{docs_hash}, $grecall{flat}, $gqps{flat});
cmp_ok($grecall{$_}, '>=', $RECALL_FLOOR, "$_ global: recall\@$K $grecall{$_} >= $RECALL_FLOOR at defaults")
  for qw(docs_list docs_hash);

# a global query costs about the sum of one search per partition
ScoreahTest::figure('%s global queries/s searching one partition alone: LIST %s; HASH %s', $LABEL,
	join(', ', map { sprintf('t%d %.0f', $_, qps("docs_list_t$_", 0, '')) } 1 .. $NTENANTS),
	join(', ', map { sprintf('p%d %.0f', $_, qps("docs_hash_p$_", 0, '')) } 0 .. 3));

# ---- planning time and model memory ----
section('planning time and model memory');

# (planning ms, execution ms) of $query as the first statement of a new
# session (cold caches, models not loaded), then the fastest of 20 more
sub plan_exec_ms
{
	my ($query) = @_;
	my $out = sql(join('', map { "EXPLAIN (ANALYZE, SUMMARY ON, COSTS OFF, TIMING OFF) $query;\n" } 0 .. 20));
	my @plan = $out =~ /Planning Time: ([0-9.]+) ms/g;
	my @exec = $out =~ /Execution Time: ([0-9.]+) ms/g;
	my $first = sprintf('%.3f / %.3f', shift @plan, shift @exec);
	@plan = sort { $a <=> $b } @plan;
	@exec = sort { $a <=> $b } @exec;
	return sprintf('%s first, %.3f / %.3f warm', $first, $plan[0], $exec[0]);
}
my $tq = "WHERE tenant_id = 3 ORDER BY v $OP '$qplan_vec' LIMIT $K";
my $gq = "ORDER BY v $OP '$qplan_vec' LIMIT $K";
ScoreahTest::figure('%s planning / execution ms of one query, first of a session and warm: tenant 3 LIST %s, HASH %s, flat %s; global LIST %s, HASH %s, flat %s',
	$LABEL, (map { plan_exec_ms("SELECT id FROM $_ $tq") } qw(docs_list docs_hash flat)),
	(map { plan_exec_ms("SELECT id FROM $_ $gq") } qw(docs_list docs_hash flat)));

my $mem = sql(qq{
	SELECT count(*) FROM (SELECT id FROM docs_list $gq) s;
	SELECT count(*), sum(total_bytes) FROM pg_backend_memory_contexts WHERE name = 'scoreah model';
	SELECT count(*) FROM (SELECT id FROM flat $gq) s;
	SELECT count(*), sum(total_bytes) FROM pg_backend_memory_contexts WHERE name = 'scoreah model' AND ident = 'flat_v';
});
my (undef, $list_models, undef, $flat_models) = split /\n/, $mem;
my ($nmodels, $model_bytes) = split /\|/, $list_models;
is($nmodels, $NTENANTS, 'a global query over the LIST parent loads one model per partition');
ScoreahTest::figure('%s models cached by a backend after one global query: LIST %d models, %d kB; flat %d kB',
	$LABEL, $nmodels, $model_bytes / 1024, (split /\|/, $flat_models)[1] / 1024);

# ---- DETACH and ATTACH a partition with its index ----
section('DETACH and ATTACH a partition with its index');

my $before = sql(q{SELECT oid, relfilenode FROM pg_class WHERE relname = 'docs_list_t2_v_idx'});
sql('ALTER TABLE docs_list DETACH PARTITION docs_list_t2');
is(sql(q{SELECT count(*) FROM pg_inherits WHERE inhrelid = 'docs_list_t2_v_idx'::regclass}), '0',
	'after DETACH the partition\'s index is no longer part of the parent index');
is(sql(q{SELECT count(*) FROM (SELECT id FROM docs_list WHERE tenant_id = 2 ORDER BY v } . "$OP '$qplan_vec' LIMIT $K) s"), '0',
	'after DETACH the parent has no row of tenant 2');
like(sql("EXPLAIN (COSTS OFF) SELECT id FROM docs_list_t2 ORDER BY v $OP '$qplan_vec' LIMIT $K"),
	qr/Index Scan using docs_list_t2_v_idx on docs_list_t2/, 'the detached table is searched through its index');
my $same = qq{SELECT count(*) FROM qt q JOIN res_docs_list r USING (id) WHERE q.tenant = 2 AND r.hits IS DISTINCT FROM
	ARRAY(SELECT ROW(d.id, d.tenant_id, d.v $OP q.v)::hit FROM %s d %s ORDER BY d.v $OP q.v LIMIT $K)};
is(sql(sprintf($same, 'docs_list_t2', '')), '0', 'the detached table\'s index returns the rows it returned as a partition');
is(ScoreahTest::index_check($node, 'docs_list_t2_v_idx'), '', 'scoreah_index_check on the detached index finds no problem');

sql('ALTER TABLE docs_list ATTACH PARTITION docs_list_t2 FOR VALUES IN (2)');
is(sql(q{SELECT oid, relfilenode FROM pg_class WHERE relname = 'docs_list_t2_v_idx'}), $before,
	'ATTACH adopts the partition\'s index (same oid and relfilenode: not rebuilt)');
is(sql(q{SELECT inhparent::regclass FROM pg_inherits WHERE inhrelid = 'docs_list_t2_v_idx'::regclass}), 'docs_list_v',
	'after ATTACH the index is part of the parent index again');
is(sql(q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'docs_list_v'::regclass}), 't', 'the parent index is valid');
is(sql(sprintf($same, 'docs_list', 'WHERE d.tenant_id = q.tenant')), '0',
	'after ATTACH tenant 2\'s queries through the parent return the same rows as before');

# ---- partitions added after the parent index ----
section('partitions added after the parent index');

# (a) PARTITION OF: the partition gets a scoreah index at once, built on no
# rows (untrained: every row scored exactly until REINDEX)
($rc, $stdout, $stderr) = $node->psql('postgres', 'CREATE TABLE docs_list_t9 PARTITION OF docs_list FOR VALUES IN (9)');
is($rc, 0, 'a new partition of the indexed parent');
like($stderr, qr/NOTICE: .*created on a table with no rows to index/, 'its index is built empty and says so');
is(sql(sprintf($parts_sql, 'docs_list', 'docs_list_v') . ' DESC LIMIT 1'), 'docs_list_t9|docs_list_t9_v_idx|scoreah',
	'the new partition has a scoreah index attached to the parent index');
# tenant 9: a copy of tenant 3's rows, so tenant 3's queries and truth apply
sql('INSERT INTO docs_list SELECT 9, id + 10000000, v FROM docs_list_t3 ORDER BY id; ANALYZE docs_list_t9');
my $info = ScoreahTest::index_info($node, 'docs_list_t9_v_idx');
is($info->{trained}, 'false', 'the new partition\'s index is untrained');
like($info->{advice}, qr/^REINDEX/, 'and advises REINDEX');
my $t9 = qq{SELECT count(*) FROM qt q JOIN truth_tenant t USING (id) WHERE q.tenant = 3 AND
	ARRAY(SELECT x.d FROM unnest(t.hits) x) IS DISTINCT FROM ARRAY(SELECT d.v $OP q.v FROM docs_list d
		WHERE d.tenant_id = 9 ORDER BY d.v $OP q.v LIMIT $K)};
is(sql($t9), '0', 'the untrained index of the new partition returns the exact answers');
# An untrained index scores every row: the planner may prefer a sequential
# scan and a sort of the partition (exact either way)
my $t9plan = sql("EXPLAIN (COSTS OFF) SELECT id FROM docs_list WHERE tenant_id = 9 ORDER BY v $OP '$qplan_vec' LIMIT $K");
is_deeply([ $t9plan =~ /Scan(?: using \S+)? on (\S+)/g ], ['docs_list_t9'], 'tenant 9\'s queries scan only its partition');
ScoreahTest::figure('%s tenant 9 (%d rows) under its untrained index: the planner picks %s', $LABEL, $rows_of{3},
	join(' > ', $t9plan =~ /^\s*(?:->\s+)?([A-Z][A-Za-z ]+?)(?: using \S+)?(?: on \S+.*)?$/mg));
sql('REINDEX INDEX docs_list_t9_v_idx');
$info = ScoreahTest::index_info($node, 'docs_list_t9_v_idx');
is($info->{trained}, 'true', 'after REINDEX the new partition\'s index is trained');
is($info->{num_leaves}, $leaves{docs_list_t3}, "with the parent index's options ($info->{num_leaves} leaves)");
is(ScoreahTest::index_check($node, 'docs_list_t9_v_idx'), '', 'scoreah_index_check on the reindexed partition index finds no problem');
like(sql("EXPLAIN (COSTS OFF) SELECT id FROM docs_list WHERE tenant_id = 9 ORDER BY v $OP '$qplan_vec' LIMIT $K"),
	qr/Index Scan using docs_list_t9_v_idx on docs_list_t9/, 'after REINDEX tenant 9\'s queries go through its index');

# (b) loaded first, indexed with options of its own, then attached
sql(qq{
	CREATE TABLE docs_list_t10 (LIKE docs_list);
	INSERT INTO docs_list_t10 SELECT 10, id + 20000000, v FROM docs_list_t4 ORDER BY id;
	CREATE INDEX docs_list_t10_v ON docs_list_t10 USING scoreah (v $OPCLASS);
	ALTER TABLE docs_list_t10 ADD CONSTRAINT docs_list_t10_tenant CHECK (tenant_id IS NOT NULL AND tenant_id = 10);
});
my $t10 = sql(q{SELECT oid, relfilenode FROM pg_class WHERE relname = 'docs_list_t10_v'});
my $t10_leaves = ScoreahTest::index_info($node, 'docs_list_t10_v')->{num_leaves};
sql('ALTER TABLE docs_list ATTACH PARTITION docs_list_t10 FOR VALUES IN (10); ANALYZE docs_list_t10');
is(sql(q{SELECT oid, relfilenode FROM pg_class WHERE relname = 'docs_list_t10_v'}), $t10,
	'ATTACH adopts the loaded table\'s own index although its options differ from the parent index\'s');
is(sql(q{SELECT count(*) FROM pg_index WHERE indrelid = 'docs_list_t10'::regclass}), '1', 'and builds no second index');
is(sql(q{SELECT inhparent::regclass FROM pg_inherits WHERE inhrelid = 'docs_list_t10_v'::regclass}), 'docs_list_v',
	'the attached index is part of the parent index');
is(ScoreahTest::index_info($node, 'docs_list_t10_v')->{num_leaves}, $t10_leaves,
	"it keeps its own leaves ($t10_leaves, parent index: $leaves{docs_list_t4})");
like(sql("EXPLAIN (COSTS OFF) SELECT id FROM docs_list WHERE tenant_id = 10 ORDER BY v $OP '$qplan_vec' LIMIT $K"),
	qr/Index Scan using docs_list_t10_v on docs_list_t10/, 'tenant 10\'s queries go through it');
my $t10_bad = sql(qq{SELECT count(*) FROM qt q WHERE q.tenant = 4 AND EXISTS (
	SELECT 1 FROM (SELECT d.v $OP q.v AS d, lag(d.v $OP q.v) OVER () AS prev FROM (
		SELECT v FROM docs_list d WHERE d.tenant_id = 10 ORDER BY d.v $OP q.v LIMIT $K) d) s
	WHERE s.d < s.prev)});
is($t10_bad, '0', 'tenant 10\'s rows in exact distance order');
my $t10_recall = sql(qq{SELECT avg(cardinality(ARRAY(
		SELECT x.id + 20000000 FROM unnest(t.hits) x INTERSECT
		SELECT d.id FROM (SELECT id FROM docs_list d WHERE d.tenant_id = 10 ORDER BY d.v $OP q.v LIMIT $K) d))::float8 / $K)
	FROM qt q JOIN truth_tenant t USING (id) WHERE q.tenant = 4});
ScoreahTest::figure('%s tenant 10 (a copy of tenant 4, %d rows) attached with its own index of %d leaves: recall@%d %.4f at defaults (tenant 4 under the parent index, %d leaves: %.4f)',
	$LABEL, $rows_of{4}, $t10_leaves, $K, $t10_recall, $leaves{docs_list_t4},
	judge('res_docs_list', 'truth_tenant', 'q.tenant = 4')->{recall});

# ---- every partition's index is sound ----
section('every partition\'s index is sound');

my @indexes = split /\n/, sql(q{SELECT inhrelid::regclass FROM pg_inherits
	WHERE inhparent IN ('docs_list_v'::regclass, 'docs_hash_v'::regclass) ORDER BY 1::text});
is(scalar @indexes, $NTENANTS + 2 + 4, 'ten LIST and four HASH partition indexes');
is(ScoreahTest::index_check($node, $_), '', "scoreah_index_check('$_') finds no problem") for @indexes;
is(ScoreahTest::index_check($node, 'flat_v'), '', "scoreah_index_check('flat_v') finds no problem");

ScoreahTest::figure('%s 034_partitions total %.1fs', $LABEL, time - $T0);
$node->stop;
done_testing();
