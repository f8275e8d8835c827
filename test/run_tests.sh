#!/usr/bin/env bash
# scoreah's whole test suite: the C unit tests of the algorithms
# (test/unit), pg_regress (sql/, expected/) and TAP (test/t/).
#
#   bash test/run_tests.sh              # everything
#   TAP=test/t/010_x.pl bash test/run_tests.sh   # pg_regress + one TAP file
#
# Works on a fresh Debian 12 machine, as root or as a user with sudo:
# installs what it needs with apt-get, builds and installs the extension,
# then runs the tests as an unprivileged user (initdb refuses root) on
# throwaway clusters.  Tests that need ../shared/data (real vectors) skip
# with a message when it is absent; set SCOREAH_DATA_DIR to point elsewhere.
# Ends with "N passed, N failed, N skipped" (the unit tests, each pg_regress
# test and each TAP file count as one); exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# ---- packages ----
PACKAGES="postgresql-15 postgresql-server-dev-15 libipc-run-perl make gcc python3 python3-numpy rsync gcc-aarch64-linux-gnu qemu-user"
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	$SUDO apt-get update -qq || exit 1
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || exit 1
fi

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PATH="/usr/lib/postgresql/15/bin:$PATH"

# ---- build and install ----
echo "== building"
make -s PG_CONFIG=$PG_CONFIG >/dev/null || { echo "build failed"; exit 1; }
$SUDO make -s PG_CONFIG=$PG_CONFIG install >/dev/null || { echo "install failed"; exit 1; }

# ---- who runs the servers ----
if [ "$(id -u)" -eq 0 ]; then
	TESTUSER=scoreah_test
	id -u "$TESTUSER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$TESTUSER" || exit 1
	run_as() { runuser -u "$TESTUSER" -- "$@"; }
else
	TESTUSER=$(id -un)
	run_as() { "$@"; }
fi

DATA_DIR=${SCOREAH_DATA_DIR:-$ROOT/../shared/data}
if [ -d "$DATA_DIR" ]; then DATA_DIR=$(cd "$DATA_DIR" && pwd); else DATA_DIR=""; fi

# A copy of the tree the test user owns (pg_regress and prove write into it)
WORK=$(mktemp -d /tmp/scoreah-tests.XXXXXX)
chmod 755 "$WORK"
rsync -a --exclude .git --exclude results --exclude tmp_check --exclude test/unit/build "$ROOT/" "$WORK/tree/"
chown -R "$TESTUSER" "$WORK"
trap 'rm -rf "$WORK"' EXIT
LOGDIR=$WORK/logs
mkdir -p "$LOGDIR" && chown "$TESTUSER" "$LOGDIR"

passed=0; failed=0; skipped=0
failures=""

# ---- C unit tests of src/algo (no server) ----
echo "== unit tests"
run_as env PATH="$PATH" bash -c "cd '$WORK/tree' && make -s unittest PG_CONFIG=$PG_CONFIG" >"$LOGDIR/unit.log" 2>&1
rc=$?
grep -E "^(not ok|# )" "$LOGDIR/unit.log" | sed 's/^/    /'
nunit=$(grep -cE "^ok " "$LOGDIR/unit.log")
if [ "$rc" -eq 0 ] && [ "$nunit" -gt 0 ]; then
	echo "unit tests ... ok ($nunit tests)"
	passed=$((passed + 1))
else
	echo "unit tests ... FAILED"
	tail -20 "$LOGDIR/unit.log"
	failed=$((failed + 1)); failures="$failures unit"
fi

# ---- pg_regress ----
echo "== pg_regress"
run_as env PATH="$PATH" bash -c "cd '$WORK/tree' && pg_virtualenv -v 15 make -s installcheck PG_CONFIG=$PG_CONFIG TAP_TESTS=" >"$LOGDIR/regress.log" 2>&1
rc=$?
cat "$LOGDIR/regress.log" | grep -E "^(test| *ok| *not ok|[ #]*[0-9]+ +- )|tests? (passed|failed)|FAILED" || true
nok=$(grep -cE "^(test +\S+ +\.\.\. +ok|ok +[0-9]+ +[-+] )" "$LOGDIR/regress.log")
nfail=$(grep -cE "^(test +\S+ +\.\.\. +FAILED|not ok +[0-9]+ )" "$LOGDIR/regress.log")
if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
	# pg_regress did not get as far as running tests
	tail -30 "$LOGDIR/regress.log"
	nfail=1
fi
# a test that could not run here says "skipped: WHY" (its alternative
# expected output): count it as skipped, not passed
for r in "$WORK"/tree/results/*.out; do
	[ -f "$r" ] || continue
	why=$(grep -m1 -E "^skipped: " "$r" | sed 's/^skipped: *//')
	if [ -n "$why" ] && grep -qE "^test +$(basename "$r" .out) +\.\.\. +ok" "$LOGDIR/regress.log"; then
		echo "pg_regress $(basename "$r" .out) ... skipped: $why"
		nok=$((nok - 1)); skipped=$((skipped + 1))
	fi
done
passed=$((passed + nok)); failed=$((failed + nfail))
if [ "$nfail" -gt 0 ]; then
	failures="$failures pg_regress"
	[ -f "$WORK/tree/regression.diffs" ] && head -200 "$WORK/tree/regression.diffs"
fi

# ---- TAP ----
echo "== TAP"
TAP_FILES=${TAP:-$(cd "$WORK/tree" && ls test/t/*.pl 2>/dev/null)}
for t in $TAP_FILES; do
	log="$LOGDIR/$(basename "$t").log"
	start=$(date +%s)
	run_as env PATH="$PATH" SCOREAH_DATA_DIR="$DATA_DIR" \
		bash -c "cd '$WORK/tree' && make -s prove_installcheck PG_CONFIG=$PG_CONFIG TAP='$t' PROVE_FLAGS='-I ./test/perl -v'" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	# measured figures the tests print (lines starting with "# figure:")
	grep -E "^# (figure|skip|note):" "$log" | sed 's/^/    /'
	if [ "$rc" -ne 0 ]; then
		echo "$t ... FAILED (${secs}s)"
		grep -E "^(not ok|#)" "$log" | grep -vE "^# (figure|note):" | head -40
		tail -5 "$log"
		failed=$((failed + 1)); failures="$failures $t"
		# server logs of the failed test
		for f in "$WORK"/tree/tmp_check/log/*.log; do
			[ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }
		done
	elif grep -qE "(\.\. |^)skipped:" "$log"; then
		# prove says "FILE .. skipped: WHY", or "skipped: WHY" when verbose
		echo "$t ... skipped: $(grep -E '(\.\. |^)skipped:' "$log" | head -1 | sed 's/.*skipped: *//')"
		skipped=$((skipped + 1))
	else
		echo "$t ... ok (${secs}s)"
		passed=$((passed + 1))
	fi
done

echo
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
