# The algorithm files on aarch64: the C unit tests (test/unit) built with
# the aarch64 cross compiler from the same sources as the extension and run
# under qemu-user.  This checks the NEON LUT16 kernel bit for bit against
# the portable one at 1 to 1,025 blocks, and that the exact distances,
# k-means, encoding and the rest give on aarch64 what they give here
# (test_kernels pins a fingerprint of exact distances computed on x86-64).
# Skips when aarch64-linux-gnu-gcc or qemu-aarch64 is missing (the test
# runner installs both: Debian packages gcc-aarch64-linux-gnu, qemu-user).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";    # ScoreahTest, whatever prove's -I

use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Utils;
use ScoreahTest;
use Test::More;

my $root = "$FindBin::RealBin/../..";
for my $tool ('aarch64-linux-gnu-gcc', 'qemu-aarch64')
{
	my $found = grep { -x File::Spec->catfile($_, $tool) } split /:/, $ENV{PATH};
	ScoreahTest::skip_all("$tool not found (Debian packages gcc-aarch64-linux-gnu, qemu-user)")
	  unless $found;
}

my ($stdout, $stderr);
my $ok = IPC::Run::run(
	[
		'make', '-s', '-C', $root, 'unittest',
		'UNIT_CC=aarch64-linux-gnu-gcc', 'UNIT_RUN=qemu-aarch64',
		'UNIT_LDFLAGS=-static'
	],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'the unit tests build for aarch64 and pass under qemu')
  or diag("$stdout\n$stderr");
unlike($stderr // '', qr/warning/, 'without compiler warnings') or diag($stderr);
like($stdout, qr/^# kernels: float=\w+ lut16=neon exact=\w+$/m, 'the NEON LUT16 kernel is dispatched');
like($stdout, qr/^# LUT16 kernels compared: scalar neon$/m, 'and compared with the portable one');
my ($n) = $stdout =~ /^1\.\.(\d+)$/m;
ok(defined $n && $n > 20 && $stdout !~ /^not ok/m, "all " . ($n // 0) . " unit tests pass on aarch64");

done_testing();
