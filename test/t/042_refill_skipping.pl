# Refills that skip leaves change no row.
#
# A deep scan (a filter the executor checks, a large LIMIT) whose store of
# candidates runs out scores its searched leaves again; a leaf whose rows
# all score past the refilled store's threshold is skipped, its rows never
# read (scoreah.refill_skipping, on by default).  This file checks, on
# GloVe-100 (20k rows, cosine) or synthetic data, that with skipping on
# and off every query returns the same rows in the same order, for
# executor filters keeping 1% and 10% of the rows, a LIMIT 300, and a
# filter on a key column of the index, at few leaves and small batches
# (many refills) and at the index's defaults; and that skipping happens
# (the scans' DEBUG2 count of leaf scores skipped is above zero with it
# on, zero with it off), so the comparison is not vacuous.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $T0 = time;
my $node = ScoreahTest::new_node('refill_skipping',
	conf => [ 'shared_buffers = 256MB', 'autovacuum = off', @ScoreahTest::MEASURE_CONF ]);
my $data = ScoreahTest::load_knn_data($node, seed => 0.42, base => 20000, queries => 60, k => 10);
my ($OP, $OPCLASS, $LABEL) = @$data{qw(op opclass label)};

# f: a key column of the second index, uncorrelated with the vectors
$node->safe_psql('postgres', qq{
	ALTER TABLE base ADD COLUMN f int4;
	UPDATE base SET f = (id * 7919) % 100;
	VACUUM ANALYZE base;
	CREATE INDEX base_v ON base USING scoreah (v $OPCLASS);
	CREATE FUNCTION ids_of(filter text, lim int) RETURNS text LANGUAGE plpgsql AS \$\$
	DECLARE
		r record;
		ids int4[];
		acc text := '';
	BEGIN
		-- one statement a query: each scan ends, and says what it did
		FOR r IN SELECT id, v FROM queries ORDER BY id LOOP
			EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM base WHERE %s ORDER BY v $OP \$1 LIMIT %s) s',
						   filter, lim) INTO ids USING r.v;
			acc := acc || coalesce(ids::text, '{}') || ';';
		END LOOP;
		RETURN acc;
	END \$\$;
});

# The rows of every query (one string) and the leaf scores the scans
# skipped, with skipping on or off.
sub run_case
{
	my ($filter, $limit, $settings, $skipping) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', qq{
		SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;
		$settings
		SET scoreah.refill_skipping = $skipping;
		SET client_min_messages = debug2;
		SELECT ids_of('$filter', $limit);
	});
	die "query failed: $err" if $rc != 0;
	my $skipped = 0;
	my $scans = 0;
	while ($err =~ /scoreah scan of "[^"]+":.* (\d+) leaf scores skipped/g)
	{
		$skipped += $1;
		$scans++;
	}
	return ($out, $skipped, $scans);
}

my $few = 'SET scoreah.num_leaves_to_search = 3; SET scoreah.reordering_num_neighbors = 10;';
my @cases = (
	[ 'executor filter keeping 1%, 3 leaves, 10 re-ranked', 'id % 100 = 7', 10, $few ],
	[ 'executor filter keeping 1%, defaults', 'id % 100 = 7', 10, '' ],
	[ 'executor filter keeping 10%, 3 leaves, 10 re-ranked', 'id % 10 = 3', 10, $few ],
	[ 'LIMIT 300, 3 leaves, 10 re-ranked', 'true', 300, $few ],
	[ 'key column keeping 2%', 'f < 2', 10, $few ],
);

my ($total_on, $total_off) = (0, 0);
foreach my $case (@cases)
{
	my ($name, $filter, $limit, $settings) = @$case;

	$node->safe_psql('postgres', 'CREATE INDEX base_vf ON base USING scoreah (v ' . $OPCLASS . ', f)')
	  if $filter eq 'f < 2';
	my ($on, $skip_on, $scans) = run_case($filter, $limit, $settings, 'on');
	my ($off, $skip_off) = run_case($filter, $limit, $settings, 'off');
	ok($on ne '' && $on eq $off, "$name: the same rows in the same order with skipping on and off");
	is($skip_off, 0, "$name: no leaf skipped with skipping off");
	ok($scans > 0, "$name: the scans reported what they did ($scans)");
	ScoreahTest::figure('%s, %s: %d leaf scores skipped in %d queries', $LABEL, $name, $skip_on, $scans);
	$total_on += $skip_on;
}
ok($total_on > 0, "leaves were skipped ($total_on leaf scores), so the comparison is not vacuous");

ScoreahTest::figure('%s 042_refill_skipping total %.1fs', $LABEL, time - $T0);
$node->stop;
done_testing();
