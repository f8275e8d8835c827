# Damaged group headers: scoreah_index_check names them, and an insert that
# would reuse a slot, or a scan, refuses (index_corrupted) rather than read
# or write past the group's arrays; then a damaged metapage field (the
# leaves' spreads, each field of the calibration), which scans and the
# planner refuse too; then a chain
# whose link loops back, which a scan reports instead of walking for ever;
# then a row bias below its group's minimum, which the check names; then
# more PQ blocks than a group of the index's layout holds; then a block
# width, a storage and a key-column count out of bounds; last a pgvector
# re-ranking vector whose header is not the one the index wrote.
#
# The first group of the first code page is changed on disk with the server
# stopped: first its first vector page number is pointed past the end of
# the index, then its count of vector pages is set beyond what a group
# holds, then (restored) its count of rows.  (Data checksums are off in
# test clusters, so the page is read.)
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $node = ScoreahTest::new_node('check_corruption', conf => [ 'autovacuum = off' ]);
$node->safe_psql('postgres', q{
	CREATE EXTENSION pageinspect;
	CREATE TABLE t (id int, v real[]);
	INSERT INTO t SELECT i, ARRAY(SELECT sin(i * 0.37 + d)::real FROM generate_series(1, 8) d)
	  FROM generate_series(1, 300) i;
	CREATE INDEX t_idx ON t USING scoreah (v) WITH (num_leaves = 2);
});
is(ScoreahTest::index_check($node, 't_idx'), '', 'the index is sound after the build');

# the first code page: kind 4 in the special space (2 bytes at 8184)
my $blk = $node->safe_psql('postgres', q{
	SELECT b FROM generate_series(0, pg_relation_size('t_idx') / 8192 - 1) b
	WHERE get_byte(get_raw_page('t_idx', b::int), 8184) = 4 ORDER BY b LIMIT 1});
ok($blk ne '', "code page found at block $blk");

# free a slot of the first group: delete its first row, VACUUM
my $raw = $node->safe_psql('postgres',
	"SELECT encode(substring(get_raw_page('t_idx', $blk) from 1 + 24 + 24 for 6), 'hex')");
my ($hi, $lo, $pos) = unpack('vvv', pack('H*', $raw));
my $ctid = sprintf('(%d,%d)', $hi * 65536 + $lo, $pos);
my $id = $node->safe_psql('postgres', "DELETE FROM t WHERE ctid = '$ctid' RETURNING id");
like($id, qr/^\d+$/, "deleted the first row of the group, $ctid (id $id)");
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t');

my $file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");
sub poke
{
	my ($offset, $bytes, $block) = @_;
	$block //= $blk;
	$node->stop;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	seek($fh, $block * 8192 + 24 + $offset, 0) or die "seek: $!";
	print $fh $bytes;
	close($fh);
	$node->start;
}

# group header: nitems, nlive (uint16), inserted (uint32), vslot, nvblk
# (uint16), vblk[] (uint32) from byte 12; kept to be put back
my $header = pack('H*', $node->safe_psql('postgres',
	"SELECT encode(substring(get_raw_page('t_idx', $blk) from 1 + 24 for 16), 'hex')"));
# the three nearest rows of a table (t unless named) through its index
sub knn_query
{
	my $table = shift // 't';
	return "SELECT count(*) FROM (SELECT id FROM $table ORDER BY v <-> '{1,0,0,0,0,0,0,0}' LIMIT 3) s";
}
my $query = knn_query();
sub query_fails
{
	my ($re, $what, $table) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 2; " . knn_query($table));
	isnt($ret, 0, "$what: the query fails");
	like($err, $re, "$what: the error names it");
}
poke(12, pack('L', 0x7FFFFFF0));
like(ScoreahTest::index_check($node, 't_idx'),
	qr/group 0 lists vector page 2147483632 past the end of the index/,
	'scoreah_index_check names a vector page past the end');

poke(10, pack('S', 99));
like(ScoreahTest::index_check($node, 't_idx'),
	qr/group 0 lists 99 vector pages from slot \d+, at most \d+ pages and \d+ slots fit/,
	'scoreah_index_check names a vector page count a group cannot hold');
# the deleted row again: same vector, same leaf, the freed slot
my ($ret, $out, $err) = $node->psql('postgres',
	"INSERT INTO t SELECT $id, ARRAY(SELECT sin($id * 0.37 + d)::real FROM generate_series(1, 8) d)");
isnt($ret, 0, 'the insert fails');
like($err, qr/has a damaged group 0 at block $blk: \d+ rows \(at most 32\), \d+ live, 99 vector pages \(at most \d+\)/,
	'an insert reusing the damaged slot fails with a message naming the block');
query_fails(qr/has a damaged group 0 at block $blk: .* 99 vector pages/, 'a group listing 99 vector pages');

# the header back, then 65,535 rows in the group (of 32 at most)
poke(0, $header);
is($node->safe_psql('postgres', "SET enable_seqscan = off; $query"), '3', 'the group put back: the query works');
poke(0, pack('S', 0xFFFF));
query_fails(qr/has a damaged group 0 at block $blk: 65535 rows \(at most 32\)/, 'a group of 65,535 rows');
like(ScoreahTest::index_check($node, 't_idx'), qr/65535/, 'scoreah_index_check names the count');
poke(0, $header);

# the metapage's leaf spreads (spreadBytes, uint32 at byte 684 of
# ScoreahMetaPageData): 4 bytes a leaf, here 8; checked before the change
# so that a new metapage layout fails here rather than poking elsewhere
is($node->safe_psql('postgres',
		"SELECT get_byte(get_raw_page('t_idx', 0), 24 + 684) + 256 * get_byte(get_raw_page('t_idx', 0), 24 + 685)"),
	'8', 'the metapage keeps 8 bytes of spreads for the 2 leaves');
poke(684, pack('L', 12), 0);
like(ScoreahTest::index_check($node, 't_idx'),
	qr/metapage: 12 bytes of leaf spreads for 2 leaves, weighted [0-9.]+ \(expected 0 or 8 bytes/,
	'scoreah_index_check names spreads that do not match the leaves');
query_fails(qr/index "t_idx" has a damaged metapage: leaf spread bytes 12, expected 8/,
	'a metapage whose spreads do not match its leaves');
poke(684, pack('L', 8), 0);
is($node->safe_psql('postgres', "SET enable_seqscan = off; $query"), '3', 'the metapage put back: the query works');

# the calibration's leaf counts (uint32 from byte 160: 152 for the
# calibration, 8 for its four counts), here 1 and 2; a second point equal
# to the first would make target_recall's interpolation divide by zero
is($node->safe_psql('postgres',
		"SELECT get_byte(get_raw_page('t_idx', 0), 24 + 160) || ',' || get_byte(get_raw_page('t_idx', 0), 24 + 164)"),
	'1,2', 'the metapage holds a calibration at 1 and 2 leaves');
poke(164, pack('L', 1), 0);
like(ScoreahTest::index_check($node, 't_idx'),
	qr/calibrated leaf count 1, expected at least 2/,
	'scoreah_index_check names calibrated leaf counts out of order');
query_fails(qr/index "t_idx" has a damaged metapage: calibrated leaf count 1, expected at least 2/,
	'a calibration out of order');
poke(164, pack('L', 2), 0);
is($node->safe_psql('postgres', "SET enable_seqscan = off; SET scoreah.target_recall = 0.99; $query"), '3',
	'the calibration put back: the query works');

# the calibration's other fields, each damaged and put back: k and the
# numbers of leaf counts and of depths (uint16 at 154, 156, 158), the
# second leaf count past the index's 2 leaves, the second re-ranking depth
# (uint32 at 260; reorders from 256) equal to the first, the first recall
# (uint16 at 288; recall from 288) past 10,000
sub meta_bytes
{
	my ($offset, $n) = @_;
	return pack('H*', $node->safe_psql('postgres',
			"SELECT encode(substring(get_raw_page('t_idx', 0) from 25 + $offset for $n), 'hex')"));
}
my $reorder0 = unpack('L', meta_bytes(256, 4));
cmp_ok(unpack('L', meta_bytes(260, 4)), '>', $reorder0, 'the calibration has a second, deeper re-ranking depth');
foreach my $case (
	[ 154, pack('S', 0), qr/calibration's neighbours per query 0, expected at least 1/, 'a calibration of k = 0' ],
	[ 156, pack('S', 0), qr/calibrated leaf counts 0, expected at least 1/, 'a calibration of no leaf counts' ],
	[ 158, pack('S', 0), qr/calibrated re-ranking depths 0, expected at least 1/, 'a calibration of no depths' ],
	[ 164, pack('L', 3), qr/calibrated leaf count 3, expected at most 2/, 'a calibrated leaf count past the leaves' ],
	[ 260, pack('L', $reorder0),
	  qr/calibrated re-ranking depth $reorder0, expected at least ${\($reorder0 + 1)}/,
	  'calibrated re-ranking depths out of order' ],
	[ 288, pack('S', 10001), qr/calibrated recall \(x 10,000\) 10001, expected at most 10000/,
	  'a calibrated recall above 1' ])
{
	my ($offset, $bad, $re, $what) = @$case;
	my $good = meta_bytes($offset, length($bad));
	poke($offset, $bad, 0);
	like(ScoreahTest::index_check($node, 't_idx'), $re, "scoreah_index_check names $what");
	query_fails(qr/index "t_idx" has a damaged metapage: $re/, $what);
	poke($offset, $good, 0);
}
is($node->safe_psql('postgres', "SET enable_seqscan = off; SET scoreah.target_recall = 0.99; $query"), '3',
	'the calibration put back again: the query works');

# the code page's link to itself (nextblkno, the first field of the
# special space, 16 bytes from the page's end)
poke(8192 - 16 - 24, pack('L', $blk));
query_fails(qr/index "t_idx" has a loop in the chain of leaf \d+ \(\d+ pages walked, more than the index has\)/,
	'a chain that loops back');

# A row bias below its group's minimum (an L2 index on residuals at 256
# dimensions keeps them): a scan prunes a group's rows by the minimum, so
# such a row could be pruned while it is among the nearest.  The group
# layout at 256 dimensions (1,024-byte vectors, 7 a vector page): the list
# of vector pages reserves (7 + 30) / 7 + 1 = 6 entries, so the TIDs start
# at MAXALIGN(12 + 6 * 4) = 40 and the biases, 32 floats and the minimum,
# at MAXALIGN(40 + 32 * 6) = 232.  Checked before the change: after the
# build every row is live and the minimum is the least of the biases.
$node->safe_psql('postgres', q{
	CREATE TABLE w (id int, v real[]);
	INSERT INTO w SELECT i, ARRAY(SELECT sin(i * 0.37 + d * 0.11)::real FROM generate_series(1, 256) d)
	  FROM generate_series(1, 300) i;
	CREATE INDEX w_idx ON w USING scoreah (v) WITH (num_leaves = 2);
});
is($node->safe_psql('postgres', "SELECT value FROM scoreah_index_info('w_idx') WHERE name = 'lookup_tables'"),
	'one per query (L2 on residuals: each row\'s bias kept with its codes)', 'the 256-dimension L2 index keeps row biases');
is(ScoreahTest::index_check($node, 'w_idx'), '', 'the biased index is sound after the build');
$file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('w_idx')");
$blk = $node->safe_psql('postgres', q{
	SELECT b FROM generate_series(0, pg_relation_size('w_idx') / 8192 - 1) b
	WHERE get_byte(get_raw_page('w_idx', b::int), 8184) = 4 ORDER BY b LIMIT 1});
my $nitems = $node->safe_psql('postgres',
	"SELECT get_byte(get_raw_page('w_idx', $blk), 24) + 256 * get_byte(get_raw_page('w_idx', $blk), 25)");
my @bias = unpack('f33', pack('H*', $node->safe_psql('postgres',
	"SELECT encode(substring(get_raw_page('w_idx', $blk) from 1 + 24 + 232 for 132), 'hex')")));
my ($least) = sort { $a <=> $b } @bias[0 .. $nitems - 1];
ok($nitems >= 2 && $bias[32] == $least,
	"group 0 of block $blk: $nitems rows, minimum $bias[32] is the least of their biases");
poke(232, pack('f', $bias[32] - 1.0));
like(ScoreahTest::index_check($node, 'w_idx'),
	qr/leaf \d+: block $blk group 0 row 0 has row bias [-0-9.e+]+, not a finite value at or above its group's minimum/,
	'scoreah_index_check names a row bias below its group minimum');
poke(232, pack('f', 'NaN'));
like(ScoreahTest::index_check($node, 'w_idx'),
	qr/block $blk group 0 row 0 has row bias nan, not a finite value/i,
	'scoreah_index_check names a row bias that is not a number');
poke(232, pack('f', $bias[0]));
is(ScoreahTest::index_check($node, 'w_idx'), '', 'the bias put back: the index is sound');

# A metapage whose PQ blocks are within the bound of an index without key
# columns (488) but more than a group of this one, with a key column, can
# hold on a page: the check measures them against the index's own layout,
# and so does every scan.  nblocks is the uint32 at byte 32 of
# ScoreahMetaPageData; checked before the change.
$node->safe_psql('postgres', q{
	CREATE TABLE kt (id int, v real[], tenant int);
	INSERT INTO kt SELECT i, ARRAY(SELECT sin(i * 0.37 + d)::real FROM generate_series(1, 8) d), i % 3
	  FROM generate_series(1, 300) i;
	CREATE INDEX kt_idx ON kt USING scoreah (v, tenant) WITH (num_leaves = 2);
});
is($node->safe_psql('postgres',
		"SELECT get_byte(get_raw_page('kt_idx', 0), 24 + 32) + 256 * get_byte(get_raw_page('kt_idx', 0), 24 + 33)"),
	'4', 'the metapage keeps 4 PQ blocks for 8 dimensions');
$file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('kt_idx')");
poke(32, pack('L', 485), 0);
like(ScoreahTest::index_check($node, 'kt_idx'),
	qr/metapage: 485 PQ blocks, more than a group of this index can hold on a page \(\d+\)/,
	'scoreah_index_check names PQ blocks a group of this layout cannot hold');
query_fails(qr/index "kt_idx" has a damaged metapage: PQ blocks for a group to fit a page 485, expected at most \d+/,
	'PQ blocks a group of this layout cannot hold', 'kt');
poke(32, pack('L', 4), 0);
is(ScoreahTest::index_check($node, 'kt_idx'), '', 'the blocks put back: the index is sound');

# Metapage fields the check used to pass while every scan refused the
# index, or that scans trusted (a review, session 35): the block width
# (dimsPerBlock, uint32 at byte 36: the lookup tables read that many
# dimensions a block, past the query and the codebooks, a segfault), the
# storage (byte 44), the key columns (nkeys, uint32 at byte 672: the key
# code indexes the index's columns by it).
is($node->safe_psql('postgres',
		"SELECT get_byte(get_raw_page('kt_idx', 0), 24 + 36) || ',' || get_byte(get_raw_page('kt_idx', 0), 24 + 44)"
		  . " || ',' || get_byte(get_raw_page('kt_idx', 0), 24 + 672)"),
	'2,0,1', 'the metapage keeps 2 dimensions a block, float32 storage, 1 key column');
poke(36, pack('L', 100000000), 0);
query_fails(qr/index "kt_idx" has a damaged metapage: dimensions per block 100000000, expected at most 8/,
	'a block width past the dimensions', 'kt');
like(ScoreahTest::index_check($node, 'kt_idx'),
	qr/metapage: dimensions per block 100000000, expected at most 8 \(scans, inserts and VACUUM refuse the index\)/,
	'scoreah_index_check names the block width as scans refuse it');
poke(36, pack('L', 3), 0);
query_fails(qr/damaged metapage: PQ blocks 4, expected 3/, 'blocks that do not match the width', 'kt');
poke(36, pack('L', 2), 0);
poke(44, pack('L', 9), 0);
like(ScoreahTest::index_check($node, 'kt_idx'),
	qr/metapage: reordering storage 9, expected at most 2 \(scans, inserts and VACUUM refuse the index\)/,
	'scoreah_index_check names an unknown storage');
poke(44, pack('L', 0), 0);
poke(672, pack('L', 3), 0);
query_fails(qr/damaged metapage: key columns 3, expected 1/, 'more key columns than the index has', 'kt');
poke(672, pack('L', 1), 0);
is(ScoreahTest::index_check($node, 'kt_idx'), '', 'the fields put back: the index is sound');
is($node->safe_psql('postgres', 'SET enable_seqscan = off; ' . knn_query('kt')), '3', 'and the scan works');

# A pgvector column's re-ranking vectors are datums of its type, handed to
# pgvector's operator as they lie on the page: a record whose header says
# TOAST pointer (here an indirect one, to 0x4141414141414141) crashed the
# scan inside pgvector.  Scans now compare each header with the one the
# index writes, and the check names such a record.
SKIP:
{
	skip 'pgvector is not installed on this server', 7
	  unless $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'}) eq '1';
	$node->safe_psql('postgres', q{
		CREATE EXTENSION vector;
		CREATE EXTENSION scoreah_vector;
		CREATE TABLE pv (id int, v vector(3));
		INSERT INTO pv SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.5)]::vector FROM generate_series(1, 500) i;
		CREATE INDEX pv_idx ON pv USING scoreah (v) WITH (num_leaves = 2);
	});
	is(ScoreahTest::index_check($node, 'pv_idx'), '', 'the vector index is sound after the build');
	$file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('pv_idx')");
	my $vblk = $node->safe_psql('postgres', q{
		SELECT b FROM generate_series(0, pg_relation_size('pv_idx') / 8192 - 1) b
		WHERE get_byte(get_raw_page('pv_idx', b::int), 8184) = 5 ORDER BY b LIMIT 1});
	# the first record at byte 40 of the page: length 20 (0x50 as a 4-byte header), 3 dimensions
	is($node->safe_psql('postgres',
			"SELECT encode(substring(get_raw_page('pv_idx', $vblk) from 41 for 8), 'hex')"),
		'5000000003000000', "vector page $vblk starts with a 3-dimension vector datum");
	my $pvq = "SELECT count(*) FROM (SELECT id FROM pv ORDER BY v <-> '[1,0,0]' LIMIT 3) s";
	my $keep = pack('H*', $node->safe_psql('postgres',
		"SELECT encode(substring(get_raw_page('pv_idx', $vblk) from 41 for 10), 'hex')"));
	poke(16, pack('H*', '01014141414141414141'), $vblk);
	my ($pret, $pout, $perr) = $node->psql('postgres',
		"SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 2; SET scoreah.reordering_num_neighbors = 500; $pvq");
	isnt($pret, 0, 'a scan re-ranking the damaged record fails');
	like($perr, qr/index "pv_idx" has a damaged re-ranking vector: header 0x\w+, \d+ dimensions, expected 0x00000050, 3/,
		'with an error, not a crash');
	like(ScoreahTest::index_check($node, 'pv_idx'),
		qr/vector page $vblk has a record at offset 40 whose header is not that of a 3-dimension vector/,
		'scoreah_index_check names the record');
	poke(16, $keep, $vblk);
	is(ScoreahTest::index_check($node, 'pv_idx'), '', 'the header put back: the index is sound');
	is($node->safe_psql('postgres', "SET enable_seqscan = off; $pvq"), '3', 'and the scan works');
}

done_testing();
