# Differential test: random tables, the index against a sequential scan.
#
# Each round draws a table (width 1 to 300, uniform, Gaussian, clustered,
# integer-grid data full of duplicates and ties, or rows whose lengths span
# five orders of magnitude; some NULL and zero vectors), a metric, an
# index (leaves, residuals, reordering storage, int8 routing, spherical
# centroids, an integer or a text key column or none; SIMD or the portable
# kernels), how it is built (on the full table, on an empty or a half-full
# one with the rest inserted after) and what follows (deletes, updates to
# other rows' vectors, VACUUM, more inserts).  Then queries (a row's own
# vector or a new one; LIMIT 1, 7, 40 or past the table; no filter, a
# key-column condition (=, <, IN), a condition the index does not key)
# run through the index, which EXPLAIN must show, and through a
# sequential scan:
#   * exhaustive settings (every leaf, every candidate re-ranked): the
#     index returns the sequential scan's distances, in order, and the
#     same rows except among ties at the last distance (float16 re-ranking
#     within its rounding);
#   * the index's defaults, many small rounds (one leaf a round, three
#     candidates a batch), and work_mem at 64kB (a store of 292 candidates,
#     cut and refilled): no row twice, min(LIMIT, matching rows) rows,
#     each of them matching, and exact distance order whenever the LIMIT
#     is at most half the matching rows (past that, the executor may drain
#     the index and meet the rows the README's "A known flaw" describes:
#     then the order may descend once, to that run of late rows);
#   * scoreah.scan_order = relaxed: the rows and their number as above,
#     in whatever order;
#   * scoreah_index_check finds no problem.
# The rounds follow from a seed (SCOREAH_DIFF_SEED, default fixed) so a
# failure repeats; SCOREAH_DIFF_ROUNDS sets how many.  With pgvector
# installed some rounds use vector and halfvec columns.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $seed = $ENV{SCOREAH_DIFF_SEED} // 20261203;
my $rounds = $ENV{SCOREAH_DIFF_ROUNDS} // 24;
srand($seed);
note("seed $seed, $rounds rounds");

my $node = ScoreahTest::new_node('differential',
	conf => [ 'autovacuum = off', 'max_parallel_maintenance_workers = 0', 'jit = off' ]);
my $have_pgvector = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") eq '1';
$node->safe_psql('postgres', 'CREATE EXTENSION vector; CREATE EXTENSION scoreah_vector')
  if $have_pgvector;
note('pgvector is not installed: real[] columns only') unless $have_pgvector;

# One query through the index under the settings of `mode', checked as the
# header says against the same query through a sequential scan.  Returns
# '' or what is wrong.  tol: how far float16 re-ranking may move a distance.
$node->safe_psql('postgres', q{
CREATE FUNCTION diff_query(tab text, dist text, lim int, filt text, mode text, tol float8)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	sql text := format('SELECT id, (%s)::float8 AS d FROM %I ORDER BY %s LIMIT %s',
					   dist, tab, dist, lim);
	plan text := '';
	line text;
	ids int[];
	ds float8[];
	sids int[];
	sds float8[];
	matching bigint;
	want bigint;
	ordered boolean := mode = 'exhaustive';
	descents int := 0;
	bad text := '';
BEGIN
	IF filt IS NOT NULL THEN
		sql := format('SELECT id, (%s)::float8 AS d FROM %I WHERE %s ORDER BY %s LIMIT %s',
					  dist, tab, filt, dist, lim);
	END IF;
	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('enable_indexscan', 'on', true);
	PERFORM set_config('scoreah.num_leaves_to_search',
					   CASE mode WHEN 'exhaustive' THEN '100000' WHEN 'rounds' THEN '1' ELSE '0' END, true);
	PERFORM set_config('scoreah.reordering_num_neighbors',
					   CASE mode WHEN 'exhaustive' THEN '1000000' WHEN 'rounds' THEN '3' ELSE '50' END, true);
	PERFORM set_config('scoreah.scan_order', CASE mode WHEN 'relaxed' THEN 'relaxed' ELSE 'strict' END, true);
	PERFORM set_config('work_mem', CASE mode WHEN 'tight' THEN '64kB' ELSE '4MB' END, true);
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
		plan := plan || line || ' ';
	END LOOP;
	IF plan NOT LIKE '%Index Scan using%' THEN
		RETURN 'not an index scan: ' || plan;
	END IF;
	EXECUTE format('SELECT array_agg(id ORDER BY n), array_agg(d ORDER BY n) FROM (SELECT id, d, row_number() OVER () n FROM (%s) s) s', sql)
		INTO ids, ds;

	PERFORM set_config('enable_seqscan', 'on', true);
	PERFORM set_config('enable_indexscan', 'off', true);
	PERFORM set_config('enable_bitmapscan', 'off', true);
	EXECUTE format('SELECT array_agg(id ORDER BY d, id), array_agg(d ORDER BY d, id) FROM (%s) s',
				   replace(sql, format('LIMIT %s', lim), format(', id LIMIT %s', lim)))
		INTO sids, sds;
	EXECUTE format('SELECT count(*) FROM %I WHERE %s', tab, coalesce(filt, 'true')) INTO matching;
	PERFORM set_config('enable_indexscan', 'on', true);
	PERFORM set_config('enable_bitmapscan', 'on', true);

	want := least(lim, matching);
	IF coalesce(cardinality(ids), 0) <> want THEN
		RETURN format('%s rows, expected %s (%s match)', coalesce(cardinality(ids), 0), want, matching);
	END IF;
	IF want = 0 THEN
		RETURN '';
	END IF;
	IF (SELECT count(DISTINCT i) FROM unnest(ids) i) <> want THEN
		RETURN 'a row twice';
	END IF;
	IF filt IS NOT NULL THEN
		EXECUTE format('SELECT count(*) FROM %I WHERE id = ANY ($1) AND %s', tab, filt) INTO matching USING ids;
		IF matching <> want THEN
			RETURN format('%s of its %s rows fail the filter', want - matching, want);
		END IF;
		EXECUTE format('SELECT count(*) FROM %I WHERE %s', tab, filt) INTO matching;
	END IF;
	IF lim * 2 <= matching AND mode <> 'relaxed' THEN
		ordered := true;
	END IF;
	-- Strict order: ascending, or (where the executor may have drained the
	-- index) ascending but for one run of late rows at the end
	IF mode <> 'relaxed' THEN
		FOR i IN 2 .. want LOOP
			-- float8's order: NaN after every number; NULL last
			IF ds[i - 1] IS NOT NULL AND (ds[i] IS NULL OR ds[i] >= ds[i - 1] - tol) THEN
				CONTINUE;
			END IF;
			IF ds[i - 1] IS NULL AND ds[i] IS NULL THEN
				CONTINUE;
			END IF;
			descents := descents + 1;
			IF ordered OR descents > 1 THEN
				RETURN format('out of order at row %s: %s after %s%s', i, ds[i], ds[i - 1],
							  CASE WHEN descents > 1 THEN ' (a second descent)' ELSE '' END);
			END IF;
		END LOOP;
	END IF;
	IF mode = 'exhaustive' THEN
		FOR i IN 1 .. want LOOP
			IF (ds[i] IS NULL) <> (sds[i] IS NULL) OR
				(ds[i] IS NOT NULL AND NOT (ds[i] <= sds[i] + tol AND ds[i] >= sds[i] - tol) AND
				 NOT (ds[i] = sds[i])) THEN
				RETURN format('row %s at distance %s, the sequential scan''s at %s', i, ds[i], sds[i]);
			END IF;
		END LOOP;
		-- the same rows, but for ties at the last distance (and float16's blur)
		IF EXISTS (SELECT FROM unnest(sids, sds) s(id, d)
				   WHERE (d < sds[want] - 2 * tol OR (sds[want] IS NULL AND d IS NOT NULL))
				     AND NOT id = ANY (ids)) THEN
			RETURN 'misses a row the sequential scan has well inside its LIMIT';
		END IF;
	END IF;
	RETURN '';
END $$;
});

# Perl's own draws, so that the seed decides everything
sub pick { return $_[ int(rand(scalar @_)) ]; }

my @kinds = qw(uniform gauss clusters grid magnitudes);
my $failures = 0;
for my $r (1 .. $rounds)
{
	my $dim = pick(1, 2, 3, 8, 17, 64, 130, 300);
	my $metric = pick('l2', 'cosine', 'ip');
	my $kind = pick(@kinds);
	my $rows = pick(30, 200, 700, 2500);
	my $type = $have_pgvector ? pick('real[]', 'real[]', 'vector', 'halfvec') : 'real[]';
	my $storage = pick('float32', 'float16', 'table');
	my $leaves = pick(1, 3, 10, 40);
	my $resid = pick('true', 'false');
	my $int8 = pick('auto', 'on', 'off');
	my $spherical = pick('true', 'false');
	my $key = pick(0, 1);
	my $build = pick('full', 'empty', 'half');
	my $nulls = pick(0, 1);
	my $vacuum = pick(0, 1);
	my $scalar = pick('off', 'off', 'on');
	# without AVX-512: the kernels of the CPUs that lack it (the same on those)
	my $avx512 = $scalar eq 'on' ? 'on' : pick('on', 'off');
	my $sd = rand();
	my ($op, $ops) = (
		{ l2 => '<->', cosine => '<=>', ip => '<#>' }->{$metric},
		{ l2 => 'l2_ops', cosine => 'cosine_ops', ip => 'ip_ops' }->{$metric});
	my $opclass = $type eq 'real[]' ? "scoreah_$ops" : ($type eq 'vector' ? "vector_$ops" : "halfvec_$ops");
	my $coltype = $type eq 'real[]' ? 'real[]' : "$type($dim)";
	# a halfvec column's vectors are kept as they are: float16 (or table)
	$storage = 'float16' if $type eq 'halfvec' && $storage eq 'float32';

	my $el = {
		uniform => 'random() * 2 - 1',
		gauss => 'sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())',
		clusters => 'sin((i % 5) * 7.1 + j * 1.3) * 3 + 0.1 * (random() * 2 - 1)',
		grid => 'floor(random() * 5) - 2',
		magnitudes => '(random() * 2 - 1) * power(10, (i % 6) - 3)',
	}->{$kind};
	my $vec = "ARRAY(SELECT ($el)::real FROM generate_series(1, $dim) j WHERE i > 0)";
	# every 37th row a zero vector, every 41st NULL (when the round has them)
	my $row = $nulls
	  ? "CASE WHEN i % 41 = 0 THEN NULL WHEN i % 37 = 0 THEN array_fill(0::real, ARRAY[$dim]) ELSE $vec END"
	  : $vec;
	$row = "($row)::$coltype";
	my $insert = sub {
		my ($from, $to) = @_;
		return "INSERT INTO d$r SELECT i, $row, CASE WHEN i % 17 = 0 THEN NULL ELSE i % 5 END, "
		  . "CASE WHEN i % 19 = 0 THEN NULL ELSE 'c' || (i % 4) END FROM generate_series($from, $to) i;";
	};
	my $half = int($rows / 2);
	# the key column: an integer tenant, or a text category
	my $keyname = pick('tenant', 'cat');
	my $keycol = $key ? ", $keyname" : '';
	my $with = "num_leaves = $leaves, residual_quantization = $resid, reordering_storage = $storage, "
	  . "quantize_centroids = $int8";
	$with .= ", spherical = $spherical" if $metric ne 'l2';
	my $index = "CREATE INDEX d${r}_v ON d$r USING scoreah (v $opclass$keycol) WITH ($with);";
	my $desc = "round $r: $rows rows of $kind $type($dim), $metric, $with, "
	  . ($key ? "key column $keyname, " : '') . "built $build" . ($nulls ? ', NULL/zero rows' : '')
	  . ($vacuum ? ', VACUUM' : '') . ($scalar eq 'on' ? ', scalar kernels' : '')
	  . ($avx512 eq 'off' ? ', no AVX-512 kernels' : '');
	note($desc);

	# the portable kernels (or those without AVX-512) for the build, the inserts and the queries
	$node->safe_psql('postgres', "ALTER DATABASE postgres SET scoreah.force_scalar_kernels = $scalar");
	$node->safe_psql('postgres', "ALTER DATABASE postgres SET scoreah.avx512_kernels = $avx512");
	my $setup = "SELECT setseed($sd); CREATE TABLE d$r (id int, v $coltype, tenant int, cat text);\n";
	$setup .= $build eq 'full' ? $insert->(1, $rows) . $index
	  : $build eq 'empty' ? $index . $insert->(1, $rows)
	  : $insert->(1, $half) . $index . $insert->($half + 1, $rows);
	# deletes, rows taking other rows' vectors (duplicates), VACUUM, more rows
	$setup .= "DELETE FROM d$r WHERE id % 11 = 3;\n";
	$setup .= "UPDATE d$r t SET v = s.v FROM d$r s WHERE t.id % 13 = 5 AND s.id = t.id / 2;\n";
	$setup .= "VACUUM d$r;\n" if $vacuum;
	$setup .= $insert->($rows + 1, $rows + int($rows / 10) + 1);
	$setup .= "ANALYZE d$r;\n";
	my ($rc, $out, $err) = $node->psql('postgres', $setup);
	if ($rc != 0)
	{
		fail("$desc: setup");
		diag($err);
		$failures++;
		next;
	}

	# float16 re-ranking: distances off by a few units of 2^-11 of the lengths
	my $tol = 0;
	if ($storage eq 'float16' && $type ne 'halfvec')
	{
		my $len = $node->safe_psql('postgres',
			"SELECT coalesce(max(sqrt((SELECT sum(x * x) FROM unnest(v::real[]) x))), 0) FROM d$r");
		$tol = $metric eq 'cosine' ? 4e-3 : 4e-3 * ($len + 1) * ($metric eq 'ip' ? ($len + 1) : 1);
	}

	my @problems;
	for my $qn (1 .. 5)
	{
		my $q = pick('row', 'new') eq 'row'
		  ? "(SELECT v FROM d$r WHERE v IS NOT NULL ORDER BY id OFFSET " . int(rand($rows / 2)) . " LIMIT 1)"
		  : "(SELECT ($vec)::$coltype FROM (SELECT " . (1 + int(rand(1000))) . " AS i) x)";
		my $qv = $node->safe_psql('postgres', "SELECT setseed($sd / 2); SELECT $q");
		$qv =~ s/^.*\n//;    # setseed's empty line
		my $dist = "v $op '$qv'::$coltype";
		my $lim = pick(1, 7, 40, $rows * 2);
		my @filters = ('NULL');
		push @filters, "'tenant = 2'", "'tenant < 2'", "'tenant IN (1, 3)'"
		  if $key && $keyname eq 'tenant';
		push @filters, "\$f\$cat = 'c2'\$f\$", "\$f\$cat IN ('c1', 'c3')\$f\$"
		  if $key && $keyname eq 'cat';
		push @filters, "'id % 3 = 1'";
		my $filt = pick(@filters);
		for my $mode ('exhaustive', 'default', 'rounds', 'tight', 'relaxed')
		{
			my $res = $node->safe_psql('postgres',
				"SELECT diff_query('d$r', \$q\$$dist\$q\$, $lim, $filt, '$mode', $tol)");
			push @problems, "query $qn ($mode, LIMIT $lim, filter $filt, query $qv): $res" if $res ne '';
		}
	}
	my $check = ScoreahTest::index_check($node, "d${r}_v");
	push @problems, "scoreah_index_check: $check" if $check ne '';
	is(join("\n", @problems), '', $desc);
	diag("the round's table:\n$setup") if @problems;
	$failures++ if @problems;
	$node->safe_psql('postgres', "DROP TABLE d$r") unless @problems;
}
diag("differential test failed: rerun with SCOREAH_DIFF_SEED=$seed") if $failures;

$node->stop;
done_testing();
