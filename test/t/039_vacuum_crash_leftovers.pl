# Pages a crash in the middle of VACUUM's freeing of a leaf leaves behind.
#
# VACUUM frees a leaf without a live row in several WAL records: the
# directory unlinks the leaf's chains first, then each page is marked
# deleted, then the build's shared vector pages count one leaf fewer.  A
# crash after the first record left the rest of the leaf's pages in use by
# nothing, and no later VACUUM gave them back (a review found 82 of 849
# pages so lost).  This file puts an index in that state, as the first
# record leaves it: the rows of one leaf deleted, the server stopped, and
# the leaf's directory entry unlinked on disk (its four chain fields and
# its reuse hint set to invalid, what EditUnlinkChains writes), which
# scoreah_index_check reports, and nothing else.  Then one
# VACUUM must give every page of that leaf back (code pages, its own vector
# pages, the shared vector pages only it counts) and say so in the log;
# the other leaves keep every page and row (an exhaustive scan through the
# index returns each row once, scoreah_index_check is clean), rows
# inserted into the freed leaf afterwards are found, and a second VACUUM
# frees nothing more; once the table is emptied, VACUUM frees every code
# and vector page, also the shared ones that still counted the leaf.
# Twice: vectors of 10 dimensions (many to a shared
# page), and of 2,100 (each vector over two linked pages of its own, whose
# later pages VACUUM only frees when their leaf has no chain left).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $node = ScoreahTest::new_node('vacuum_crash_leftovers', conf => [ 'autovacuum = off' ]);
$node->safe_psql('postgres', 'CREATE EXTENSION pageinspect');

my $INVALID = 0xFFFFFFFF;
my $SHARED = 0xFFFFFFFE;
my $ENTRY = 56;    # sizeof(ScoreahLeafData)

# every page of an index: kind and leaf from the special space; for vector
# pages also the shared header's first and last leaf and count
sub pages
{
	my ($idx) = @_;
	my @pages;
	for my $row (split /\n/, $node->safe_psql('postgres', qq{
		SELECT b, encode(substring(p from 8177 for 12), 'hex'), encode(substring(p from 25 for 12), 'hex')
		FROM (SELECT b, get_raw_page('$idx', b::int) p
		      FROM generate_series(0, pg_relation_size('$idx') / 8192 - 1) b) s ORDER BY b}))
	{
		my ($b, $special, $head) = split /\|/, $row;
		my ($next, $leaf, $kind) = unpack('VVv', pack('H*', $special));
		my ($first, $last, $refs) = unpack('VVV', pack('H*', $head));
		push @pages, { blk => $b, kind => $kind, leaf => $leaf, first => $first, last => $last, refs => $refs };
	}
	return @pages;
}

# pages of leaf L still in use: its code and own vector pages, and shared
# vector pages that count only it
sub leaf_pages
{
	my ($L, @pages) = @_;
	return scalar grep {
		($_->{kind} == 4 || $_->{kind} == 5) && $_->{leaf} != $SHARED && $_->{leaf} == $L
		  || $_->{kind} == 5 && $_->{leaf} == $SHARED && $_->{first} == $L && $_->{last} == $L
	} @pages;
}

sub count_kind { my ($k, @pages) = @_; return scalar grep { $_->{kind} == $k } @pages; }

for my $case ([ 'short', 10 ], [ 'long', 2100 ])
{
	my ($label, $dim) = @$case;
	my $t = "t_$label";
	my $idx = "${t}_v";

	# 10 tight clusters, cluster c of 40 + c rows: each a leaf, told apart
	# by the rows the build wrote into it (the entry's nbuilt)
	$node->safe_psql('postgres', qq{
		CREATE TABLE $t (id serial, c int, v real[]);
		INSERT INTO $t (c, v) SELECT c, ARRAY(SELECT (CASE WHEN d % 10 = c THEN 100 ELSE 0 END
		                                           + sin(i * 7 + d) * 0.01)::real
		                                    FROM generate_series(1, $dim) d)
		  FROM generate_series(0, 9) c, generate_series(1, 40 + c) i;
		CREATE INDEX $idx ON $t USING scoreah (v) WITH (num_leaves = 10);
		-- rows after the build: the leaves get vector pages of their own
		INSERT INTO $t (c, v) SELECT c, ARRAY(SELECT (CASE WHEN d % 10 = c THEN 100 ELSE 0 END
		                                           + cos(i * 5 + d) * 0.01)::real
		                                    FROM generate_series(1, $dim) d)
		  FROM generate_series(0, 9) c, generate_series(1, 5) i;
		DELETE FROM $t WHERE c = 8;
	});

	# the directory entry of cluster 8's leaf: 48 rows built
	my ($dirblk, $slot, $L);
	my @dirs = grep { $_->{kind} == 3 } pages($idx);
	for my $d (@dirs)
	{
		my $raw = pack('H*', $node->safe_psql('postgres',
			"SELECT encode(substring(get_raw_page('$idx', $d->{blk}) from 25 for 8168), 'hex')"));
		for my $j (0 .. int(8168 / $ENTRY) - 1)
		{
			my ($codeHead, $codeTail, $vecHead, $vecTail, $nbuilt) = unpack('VVVVV', substr($raw, $j * $ENTRY, 20));
			next unless $nbuilt == 48 && $codeHead != $INVALID;
			($dirblk, $slot) = ($d->{blk}, $j);
		}
	}
	ok(defined $dirblk, "$label: the entry of the leaf of 48 built rows is found");
	$L = $slot;    # one directory page: the slot is the leaf
	my @before = pages($idx);
	my $nleaf = leaf_pages($L, @before);
	cmp_ok($nleaf, '>', 1, "$label: leaf $L holds $nleaf pages");

	# the first record of the free, as a crash right after it leaves it (on
	# disk after a clean stop, so that no replay writes the page again)
	my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$idx')");
	$node->stop;
	open(my $fh, '+<', $path) or die "open $path: $!";
	binmode $fh;
	seek($fh, $dirblk * 8192 + 24 + $slot * $ENTRY, 0) or die "seek: $!";
	print $fh pack('VVVV', ($INVALID) x 4);
	seek($fh, $dirblk * 8192 + 24 + $slot * $ENTRY + 20, 0) or die "seek: $!";
	print $fh pack('V', $INVALID);
	close($fh);
	$node->start;
	is(leaf_pages($L, pages($idx)), $nleaf, "$label: after the unlink the leaf's $nleaf pages are still in use");
	my $report = ScoreahTest::index_check($node, $idx);
	like($report, qr/^leaf $L: code page \d+ is on no chain of the leaf/m,
		"$label: scoreah_index_check reports the leaf's code pages as on no chain");
	unlike($report, qr/^(?!leaf $L: (code|vector) page \d+ is on no chain|vector page \d+ of leaves $L to $L is listed by no group)/m,
		"$label: and nothing else") or diag($report);

	my $log_at = -s $node->logfile;
	$node->safe_psql('postgres', "VACUUM $t");
	my @after = pages($idx);
	is(leaf_pages($L, @after), 0, "$label: one VACUUM gives every page of leaf $L back");
	is(count_kind(6, @after), count_kind(6, @before) + $nleaf,
		"$label: they are the $nleaf newly deleted pages, no other");
	like(slurp_file($node->logfile, $log_at), qr/"$idx": $nleaf pages that no chain reached were freed/,
		"$label: the log says how many");
	is(ScoreahTest::index_check($node, $idx), '', "$label: scoreah_index_check is clean");

	# every other row is still there, once
	my $exh = "SET enable_seqscan = off; SET scoreah.num_leaves_to_search = 1000; "
	  . "SET scoreah.reordering_num_neighbors = 100000; "
	  . "SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM $t ORDER BY v <-> "
	  . "(SELECT v FROM $t WHERE c = 3 LIMIT 1) LIMIT 100000) s";
	my $n = $node->safe_psql('postgres', "SELECT count(*) FROM $t");
	is($node->safe_psql('postgres', $exh), "$n|$n", "$label: an exhaustive scan returns the $n rows left, once each");

	# the freed leaf takes rows again, and a second VACUUM frees nothing more
	$node->safe_psql('postgres', qq{
		INSERT INTO $t (c, v) SELECT 8, ARRAY(SELECT (CASE WHEN d % 10 = 8 THEN 100 ELSE 0 END
		                                           + sin(i * 3 + d) * 0.01)::real
		                                    FROM generate_series(1, $dim) d)
		  FROM generate_series(1, 6) i;
	});
	$n += 6;
	is($node->safe_psql('postgres', $exh), "$n|$n", "$label: rows inserted into the freed leaf are found");
	my $log_at2 = -s $node->logfile;
	$node->safe_psql('postgres', "VACUUM $t");
	unlike(slurp_file($node->logfile, $log_at2), qr/no chain reached/, "$label: a second VACUUM frees nothing more");
	is(ScoreahTest::index_check($node, $idx), '', "$label: scoreah_index_check is clean after it");

	# the shared vector pages that still counted the freed leaf go back
	# with their last other leaf: an emptied table keeps no code or vector
	# page
	$node->safe_psql('postgres', "DELETE FROM $t");
	$node->safe_psql('postgres', "VACUUM $t");
	my @empty = pages($idx);
	is(count_kind(4, @empty) + count_kind(5, @empty), 0,
		"$label: VACUUM of the emptied table frees every code and vector page");
}

$node->stop;
done_testing();
