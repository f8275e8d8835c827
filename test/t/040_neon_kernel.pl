# The NEON LUT16 kernel against the scalar one, bit for bit, under qemu.
#
# NEON is compiled only on aarch64, which this project's machines are not,
# so the kernel and the scalar reference are extracted from src/pq.c,
# built with the aarch64 cross compiler around test/tools/lut16_check.c and
# run with qemu-user on random and saturated tables at block counts that
# are odd, not multiples of 16 or 32, and past the 256-block folding.
# Skips when aarch64-linux-gnu-gcc or qemu-aarch64 is missing (the test
# runner installs both).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Spec;
use IPC::Run;
use FindBin;

my $root = "$FindBin::RealBin/../..";
for my $tool ('aarch64-linux-gnu-gcc', 'qemu-aarch64')
{
	my $found = grep { -x File::Spec->catfile($_, $tool) } split /:/, $ENV{PATH};
	plan skip_all => "$tool not found (Debian packages gcc-aarch64-linux-gnu, qemu-user)"
	  unless $found;
}

open(my $fh, '<', "$root/src/pq.c") or die "src/pq.c: $!";
my $src = do { local $/; <$fh> };
close $fh;

# a function's text: from its name at the start of a line to the first "}"
# alone on a line, with the storage class line before it
sub extract
{
	my ($name) = @_;
	$src =~ /^(\w[^\n]*)\n($name\(.*?\n\})/ms or die "function $name not found in src/pq.c";
	return "$1\n$2\n";
}

my $dir = PostgreSQL::Test::Utils::tempdir();
for ([ 'scalar.inc', 'scoreah_lut16_scan_scalar' ], [ 'kernel.inc', 'lut16_scan_neon' ])
{
	open(my $out, '>', "$dir/$_->[0]") or die;
	print $out extract($_->[1]);
	close $out;
}
my $bin = "$dir/lut16_check";
my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'aarch64-linux-gnu-gcc', '-O2', '-static', '-Wall', "-I$dir",
		'-DKERNEL=lut16_scan_neon', '-o', $bin, "$root/test/tools/lut16_check.c" ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'the NEON kernel and the checker build for aarch64') or diag($stderr);
unlike($stderr // '', qr/warning/, 'without warnings') or diag($stderr);

$ok = IPC::Run::run([ 'qemu-aarch64', $bin ], '>', \$stdout, '2>', \$stderr);
ok($ok, 'the NEON kernel gives the scalar kernel\'s sums bit for bit') or diag("$stdout$stderr");
like($stdout, qr/^ok: \d+ groups agree/, $stdout);

done_testing();
