#!/usr/bin/python3
"""scoreah filter benchmark: filtered top-k queries, recall@k against QPS.

Usually started by `bash test/bench/run --filters` (which starts the throwaway
cluster and passes the server options); see test/bench/README.md, "Filter
mode".  Needs pgvector and scoreah_vector on the server.

One table, bench_filter (id int4, t1000 int4, t100 int4, t10 int4, t2 int4,
r int4, v vector(d)), holds the base rows (GloVe-100 by default).  For the row
at position p of the base (0..n-1): tN = p % N (tenant-like columns: N
tenants of equal size, uncorrelated with the vectors), r = a seeded random
permutation of 0..n-1.  Filters, per selectivity s (default 0.1%, 1%, 10%,
50%):
  eq     tN = $2 with N = 1/s, the tenant drawn per query (seeded): every
         tenant holds n/N rows, so every query has matches
  range  r BETWEEN $2 AND $3, a window of round(s * n) values starting at a
         random point per query (seeded)
Every query is
  SELECT id, v <=> $1 FROM bench_filter WHERE <filter> ORDER BY v <=> $1 LIMIT k
(psycopg 3, prepared on the server, the vector bound in binary), on the head
and uniform query sets of bench.py.  Engines, each on the same table:
  exact         no vector index: the planner's plan with enable_indexscan =
                off and a B-tree on the filter column (a bitmap scan of the
                B-tree or a sequential scan, then a top-k sort)
  post          scoreah index on v alone, the filter checked by the executor
  key           scoreah index on (v, filter column): the filter is an index
                condition
  hnsw-strict   pgvector HNSW (m 16, ef_construction 64),
                hnsw.iterative_scan = strict_order, hnsw.ef_search sweep
  hnsw-relaxed  the same with relaxed_order
scoreah is swept through its defaults and scoreah.target_recall (plus
optional explicit leaves:reorder points), and measured with scoreah.scan_order
= relaxed at its defaults.  Per point: rows returned (queries with fewer
than k), recall@k against the exact filtered top k (numpy, float64), QPS
with one client, p50/p99, queries whose rows are not in the order of the
distances the server returns with them.  Then, at the --confirm-selectivities,
scoreah's defaults and HNSW strict_order's fastest point reaching the same
recall are measured again taking turns (the floors' comparison).

Writes OUT/results.jsonl, OUT/results.md, OUT/results.png.
"""
import argparse
import hashlib
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402
from bench import log, one, read_vectors, readme_split  # noqa: E402

TABLE = "bench_filter"
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)
FILTERS = ("eq", "range")
ENGINES = ("exact", "post", "key", "hnsw-strict", "hnsw-relaxed")
LABEL = {"exact": "exact", "post": "scoreah post-filter", "key": "scoreah key column",
         "hnsw-strict": "HNSW strict_order", "hnsw-relaxed": "HNSW relaxed_order",
         "post-relaxed": "scoreah post-filter, relaxed", "key-relaxed": "scoreah key column, relaxed"}
SERIES = ["exact", "post", "key", "post-relaxed", "key-relaxed", "hnsw-strict", "hnsw-relaxed"]
COLORS = {"exact": "#555555", "post": "#ff7f0e", "key": "#d62728", "post-relaxed": "#ffbb78",
          "key-relaxed": "#ff9896", "hnsw-strict": "#1f77b4", "hnsw-relaxed": "#17becf"}
TARGET = 0.95  # the recall the summary tables read QPS at
NOT_SWEEP = ("confirm",)


def pct(s):
    x = s * 100
    return ("%.1f%%" % x) if x < 1 else ("%g%%" % x)


def case_name(c):
    return "%s %s" % (c["kind"], pct(c["sel"]))


def make_cases(a, n):
    out = []
    for kind in a.filters:
        for s in a.selectivities:
            if kind == "eq":
                N = int(round(1.0 / s))
                out.append(dict(kind="eq", sel=s, col="t%d" % N, N=N, matches=n // N,
                                cond="t%d = %%(c)b" % N))
            else:
                w = max(a.k, int(round(s * n)))
                out.append(dict(kind="range", sel=s, col="r", w=w, matches=w,
                                cond="r BETWEEN %(lo)b AND %(hi)b"))
    for c in out:
        c["name"] = case_name(c)
    return out


def case_seed(seed, case, qset):
    return int(hashlib.sha1(("%d|%s|%s" % (seed, case["name"], qset)).encode()).hexdigest()[:8], 16)


def query_values(a, case, qset, nq, n):
    """The filter's values per query (seeded): eq -> [c], range -> [(lo, hi)]."""
    rng = np.random.default_rng(case_seed(a.seed, case, qset))
    if case["kind"] == "eq":
        return [int(x) for x in rng.integers(0, case["N"], size=nq)]
    lo = rng.integers(0, n - case["w"] + 1, size=nq)
    return [(int(x), int(x) + case["w"] - 1) for x in lo]


def filtered_truth(base, perm_inv, queries, cases, values, k):
    """{case name: [ids positions (nearest first)]} per query: the exact filtered top k (cosine, float64)."""
    b = base.astype(np.float64)
    bn = np.linalg.norm(b, axis=1)
    bn[bn == 0] = np.inf
    b /= bn[:, None]
    q = queries.astype(np.float64)
    q /= np.linalg.norm(q, axis=1)[:, None]
    out = {c["name"]: [] for c in cases}
    dist_out = {c["name"]: [] for c in cases}
    for s in range(0, len(q), 50):
        D = 1.0 - q[s:s + 50] @ b.T
        for j in range(D.shape[0]):
            d = D[j]
            for c in cases:
                v = values[c["name"]][s + j]
                if c["kind"] == "eq":
                    idx = np.arange(v, len(d), c["N"])
                else:
                    idx = perm_inv[v[0]:v[1] + 1]
                sub = d[idx]
                kk = min(k, len(idx))
                part = np.argpartition(sub, kk - 1)[:kk]
                part = part[np.argsort(sub[part], kind="stable")]
                out[c["name"]].append(idx[part])
                dist_out[c["name"]].append(sub[part])
    return out, dist_out


def literal_params(case, v):
    if case["kind"] == "eq":
        return "%d" % v
    return "%d, %d" % v


class FilterBench(B.Bench):
    def __init__(self, a):
        super().__init__(a)
        from psycopg.types.numeric import Int4
        self.Int4 = Int4

    # ---- setup
    def load(self, ids, vecs):
        cur = self.cur
        n, d = vecs.shape
        t0 = time.time()
        self.tcols = ["t%d" % N for N in sorted(set(int(round(1.0 / s)) for s in self.a.selectivities))
                      ] if "eq" in self.a.filters else []
        cols = self.tcols + ["r"]
        perm = np.random.default_rng(self.a.seed).permutation(n).astype(np.int64)
        pos = np.arange(n)
        ints = np.stack([pos % int(c[1:]) for c in self.tcols] + [perm], axis=1).astype(np.int32)
        cur.execute("DROP TABLE IF EXISTS %s, %s_stage" % (TABLE, TABLE))
        cur.execute("CREATE TABLE %s_stage (id int4, %s, v real[])" % (TABLE, ", ".join("%s int4" % c for c in cols)))
        B.copy_rows(cur, "%s_stage" % TABLE, ids, vecs, ints)
        cur.execute("CREATE TABLE %s (id int4 NOT NULL, %s, v vector(%d) NOT NULL)"
                    % (TABLE, ", ".join("%s int4 NOT NULL" % c for c in cols), d))
        cur.execute("INSERT INTO %s SELECT id, %s, v::vector(%d) FROM %s_stage" % (TABLE, ", ".join(cols), d, TABLE))
        cur.execute("DROP TABLE %s_stage" % TABLE)
        cur.execute("VACUUM ANALYZE %s" % TABLE)
        cur.execute("CHECKPOINT")
        rec = dict(type="load", rows=n, d=d, table=TABLE, columns=cols, seconds=time.time() - t0,
                   table_bytes=one(cur, "SELECT pg_table_size(%s::regclass)", (TABLE,)))
        self.emit(rec)
        log("loaded %d rows x %d dims into %s (%s) in %.1f s, %.0f MB"
            % (n, d, TABLE, ", ".join(cols), rec["seconds"], rec["table_bytes"] / 2**20))
        return perm

    def prewarm(self):
        """Every relation of the table into shared buffers (pg_prewarm), so that no engine pays for reads
        another one's queries happened to cache."""
        cur = self.cur
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except Exception as e:  # noqa: BLE001
            log("pg_prewarm not available (%s): no prewarming" % str(e).splitlines()[0])
            return
        cur.execute("SELECT c.relname, pg_prewarm(c.oid) FROM pg_class c WHERE c.oid = %s::regclass OR c.oid IN "
                    "(SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass)", (TABLE, TABLE))
        log("prewarmed: %s" % ", ".join("%s %d pages" % r for r in cur.fetchall()))

    def steer_set(self, valid):
        """Only the indexes in VALID are seen by the planner (pg_index.indisvalid, a planner-only switch)."""
        self.cur.execute("UPDATE pg_index SET indisvalid = (indexrelid::regclass::text = ANY(%s)) "
                         "WHERE indrelid = %s::regclass AND indisvalid IS DISTINCT FROM "
                         "(indexrelid::regclass::text = ANY(%s))", (list(valid), TABLE, list(valid)))

    def stmt(self, case):
        return "SELECT id, v <=> %%(q)b FROM %s WHERE %s ORDER BY v <=> %%(q)b LIMIT %d" % (
            TABLE, case["cond"], self.a.k)

    def args(self, case, vecs, values):
        Int4 = self.Int4
        out = []
        for v, x in zip(vecs, values):
            if case["kind"] == "eq":
                out.append(dict(q=B.PgVector(v), c=Int4(x)))
            else:
                out.append(dict(q=B.PgVector(v), lo=Int4(x[0]), hi=Int4(x[1])))
        return out

    # ---- a point
    def measure(self, case, engine, params, setup, valid, qs, expect, sweep="sweep", nq=None, repeat=None,
                warm=None, extra=None):
        a = self.a
        k = a.k
        self.steer_set(valid)
        conn, cur = self.session(setup)
        sql = self.stmt(case)
        nq = min(nq or len(qs["vecs"]), len(qs["vecs"]))
        vals = qs["values"][case["name"]][:nq]
        args = self.args(case, qs["vecs"][:nq], vals)
        truth = qs["truth"][case["name"]][:nq]
        w = a.warm if warm is None else warm
        for arg in args[:max(w, 6)]:  # past PostgreSQL's 5 custom plans: the generic plan from here on
            cur.execute(sql, arg, prepare=True)
            cur.fetchall()
        B.check_settings(cur, setup, "%s %s %s" % (case["name"], engine, params))
        name = one(cur, "SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
        cur.execute("EXPLAIN EXECUTE %s(%s, %s)" % (name, B.literal("vector", qs["vecs"][0]),
                                                     literal_params(case, vals[0])))
        plan = " ".join(r[0].strip() for r in cur.fetchall())
        ok_plan = all(e in plan for e in (expect if isinstance(expect, (list, tuple)) else [expect]))
        if not ok_plan:
            log("WARNING: %s %s %s: plan does not show %r: %s" % (case["name"], engine, params, expect, plan[:400]))
        best, res = None, None
        for _ in range(repeat or a.repeat):
            lat = np.empty(len(args))
            got_all = []
            for i, arg in enumerate(args):
                t0 = time.perf_counter()
                cur.execute(sql, arg, prepare=True)
                got = cur.fetchall()
                lat[i] = time.perf_counter() - t0
                got_all.append(got)
            if res is None:
                res = got_all
            if best is None or lat.sum() < best.sum():
                best = lat
        cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", (name,))
        gp, cp = cur.fetchone()
        conn.close()
        hits, short, ooo, rows_ret, min_rows, ooo_ex = 0, 0, 0, 0, k, []
        for i, got in enumerate(res):
            ids = [r[0] for r in got]
            ds = [r[1] for r in got]
            hits += len(truth[i] & set(ids))
            rows_ret += len(got)
            min_rows = min(min_rows, len(got))
            if len(got) < k:
                short += 1
            if any(ds[j] > ds[j + 1] for j in range(len(ds) - 1)):
                ooo += 1
                if len(ooo_ex) < 3:
                    ooo_ex.append(dict(query=i, value=vals[i], ids=ids, dists=ds))
        rec = dict(type="point", engine=engine, case=case["name"], kind=case["kind"], sel=case["sel"],
                   qset=qs["name"], params=params, sweep=sweep, queries=len(args),
                   recall=hits / float(k * len(args)), qps=len(args) / best.sum(),
                   p50_ms=float(np.percentile(best, 50) * 1000), p99_ms=float(np.percentile(best, 99) * 1000),
                   mean_ms=float(best.mean() * 1000), short=short, min_rows=min_rows,
                   rows_returned=rows_ret, out_of_order=ooo, plan=plan[:600], plan_ok=ok_plan,
                   generic_plans=gp, custom_plans=cp, load1=B.loadavg(), setup=setup)
        if ooo_ex:
            rec["out_of_order_examples"] = ooo_ex
        if extra:
            rec.update(extra)
        self.emit(rec)
        log("  %-9s %-7s %-26s %-32s recall@%d %.4f %8.1f QPS p50 %7.2f ms p99 %7.2f ms%s%s" % (
            case["name"], qs["name"], LABEL.get(engine, engine), ", ".join("%s=%s" % kv for kv in params.items()),
            k, rec["recall"], rec["qps"], rec["p50_ms"], rec["p99_ms"],
            "  SHORT %d (min %d rows)" % (short, min_rows) if short else "",
            "  OUT OF ORDER %d" % ooo if ooo else ""))
        return rec

    def planner_choice(self, case, valid, qs):
        """What the planner picks by itself with the indexes VALID and nothing set: the generic plan of the
        prepared statement after 10 executions, and the custom plan for the first query."""
        self.steer_set(valid)
        conn, cur = self.session()
        sql = self.stmt(case)
        args = self.args(case, qs["vecs"][:10], qs["values"][case["name"]][:10])
        t0 = time.perf_counter()
        for arg in args:
            cur.execute(sql, arg, prepare=True)
            cur.fetchall()
        ms = (time.perf_counter() - t0) * 100.0  # per query (10 queries)
        name = one(cur, "SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
        vals = qs["values"][case["name"]]
        cur.execute("EXPLAIN EXECUTE %s(%s, %s)" % (name, B.literal("vector", qs["vecs"][0]),
                                                     literal_params(case, vals[0])))
        generic = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", (name,))
        gp, cp = cur.fetchone()
        lit = sql.replace("%(q)b", B.literal("vector", qs["vecs"][0]) + "::vector")
        if case["kind"] == "eq":
            lit = lit.replace("%(c)b", "%d" % vals[0])
        else:
            lit = lit.replace("%(lo)b", "%d" % vals[0][0]).replace("%(hi)b", "%d" % vals[0][1])
        cur.execute("EXPLAIN " + lit)
        custom = [r[0] for r in cur.fetchall()]
        conn.close()

        def node(plan):
            m = re.search(r"(Index (?:Only )?Scan using \S+|Seq Scan on \S+|Bitmap Heap Scan on \S+)",
                          " ".join(plan))
            return m.group(1) if m else plan[0].strip()

        rec = dict(type="planner", case=case["name"], kind=case["kind"], sel=case["sel"], qset=qs["name"],
                   valid=list(valid), generic=node(generic), custom=node(custom), generic_plans=gp,
                   custom_plans=cp, ms_per_query=ms, generic_plan=generic, custom_plan=custom)
        self.emit(rec)
        log("  planner, %s, %s: generic plan %s; custom plan %s (%.2f ms per query over 10)"
            % (case["name"], qs["name"], rec["generic"], rec["custom"], ms))
        return rec

    # ---- the run
    def run(self, rows, qsets):
        a = self.a
        n = rows
        cases = make_cases(a, n)
        post_idx, hnsw_idx = "bench_f_scoreah", "bench_f_hnsw"
        builds = {}
        if "post" in a.engines or "post-relaxed" in a.engines:
            builds["post"] = self.build("scoreah", rows, "CREATE INDEX %s ON %s USING scoreah (v vector_cosine_ops)"
                                        % (post_idx, TABLE), post_idx, TABLE, column="vector")
        if any(e.startswith("hnsw") for e in a.engines):
            builds["hnsw"] = self.build("hnsw", rows, "CREATE INDEX %s ON %s USING hnsw (v vector_cosine_ops) "
                                        "WITH (m = %d, ef_construction = %d)" % (hnsw_idx, TABLE, a.hnsw_m,
                                                                                 a.hnsw_ef_construction),
                                        hnsw_idx, TABLE, column="vector")
        fcols = list(dict.fromkeys(c["col"] for c in cases))
        for col in fcols:
            self.cur.execute("CREATE INDEX bench_f_btree_%s ON %s (%s)" % (col, TABLE, col))
        self.cur.execute("ANALYZE %s" % TABLE)
        hnsw_common = ["SET hnsw.max_scan_tuples = %d" % a.max_scan_tuples,
                       "SET hnsw.scan_mem_multiplier = %g" % a.scan_mem_multiplier]
        self.emit(dict(type="settings", hnsw=hnsw_common, selectivities=a.selectivities, filters=a.filters,
                       engines=a.engines, targets=a.targets, ef_search=a.ef_search, scoreah_points=a.scoreah_points,
                       warm=a.warm, repeat=a.repeat, exact_queries=a.exact_queries,
                       cases=[dict(c) for c in cases]))
        for col in fcols:
            key_idx = "bench_f_key_%s" % col
            if "key" in a.engines or "key-relaxed" in a.engines:
                builds["key " + col] = self.build(
                    "scoreah-key", rows, "CREATE INDEX %s ON %s USING scoreah (v vector_cosine_ops, %s)"
                    % (key_idx, TABLE, col), key_idx, TABLE, column="vector")
            self.prewarm()
            for case in [c for c in cases if c["col"] == col]:
                log("=== %s: %s (%s matching rows per query)" % (case["name"], case["cond"].replace("%(c)b", "$2")
                                                               .replace("%(lo)b", "$2").replace("%(hi)b", "$3"),
                                                               format(case["matches"], ",")))
                self.run_case(rows, case, qsets, post_idx, key_idx, hnsw_idx, hnsw_common)
            if "key" in a.engines or "key-relaxed" in a.engines:
                self.cur.execute("DROP INDEX %s" % key_idx)
        self.cur.execute("UPDATE pg_index SET indisvalid = true WHERE indrelid = %s::regclass", (TABLE,))
        self.cur.execute("DROP TABLE %s" % TABLE)

    def run_case(self, rows, case, qsets, post_idx, key_idx, hnsw_idx, hnsw_common):
        a = self.a
        btree = "bench_f_btree_%s" % case["col"]
        pts = {}  # (engine, qset) -> [points]

        def add(r):
            pts.setdefault((r["engine"], r["qset"]), []).append(r)
            return r

        scoreah_settings = [("defaults", {}, [])]
        for t in a.targets:
            scoreah_settings.append(("target", {"target_recall": t}, ["SET scoreah.target_recall = %g" % t]))
        for ls, ro in a.scoreah_points:
            scoreah_settings.append(("sweep", {"leaves": ls, "reorder": ro},
                                     ["SET scoreah.num_leaves_to_search = %d" % ls,
                                      "SET scoreah.reordering_num_neighbors = %d" % ro]))
        for qs in qsets:
            if "exact" in a.engines:
                add(self.measure(case, "exact", {"queries": min(a.exact_queries, len(qs["vecs"]))},
                                 ["SET enable_indexscan = off"], [btree], qs, "Sort",
                                 nq=a.exact_queries, warm=min(a.warm, 6)))
            for eng, idx, expect in (("post", post_idx, [post_idx, "Filter"]),
                                     ("key", key_idx, [key_idx, "Index Cond"])):
                if eng in a.engines:
                    for sweep, params, setup in scoreah_settings:
                        add(self.measure(case, eng, dict(params), ["SET enable_seqscan = off"] + setup, [idx], qs,
                                         expect, sweep=sweep))
                if eng + "-relaxed" in a.engines:
                    add(self.measure(case, eng + "-relaxed", {"scan_order": "relaxed"},
                                     ["SET enable_seqscan = off", "SET scoreah.scan_order = relaxed"], [idx], qs,
                                     expect, sweep="defaults"))
            for eng, mode in (("hnsw-strict", "strict_order"), ("hnsw-relaxed", "relaxed_order")):
                if eng not in a.engines:
                    continue
                for ef in a.ef_search:
                    add(self.measure(case, eng, {"ef_search": ef},
                                     ["SET enable_seqscan = off", "SET hnsw.iterative_scan = %s" % mode,
                                      "SET hnsw.ef_search = %d" % ef] + hnsw_common, [hnsw_idx], qs, hnsw_idx))
            if a.planner:
                valid = [post_idx, btree] + ([key_idx] if "key" in a.engines else [])
                self.planner_choice(case, valid, qs)
        if case["sel"] in a.confirm_selectivities and a.confirm_rounds > 0 and "hnsw-strict" in a.engines:
            for qs in qsets:
                self.confirm(rows, case, qs, pts, post_idx, key_idx, hnsw_idx, hnsw_common)

    def confirm(self, rows, case, qs, pts, post_idx, key_idx, hnsw_idx, hnsw_common):
        """scoreah's defaults (post-filter and key column) and HNSW strict_order's fastest sweep point whose
        recall is at least theirs, measured again taking turns (--confirm-rounds), the fastest pass kept."""
        a = self.a
        q = qs["name"]
        H = pts.get(("hnsw-strict", q), [])
        entries = []
        for eng, idx, expect in (("post", post_idx, [post_idx, "Filter"]), ("key", key_idx, [key_idx, "Index Cond"])):
            dp = [p for p in pts.get((eng, q), []) if p["sweep"] == "defaults"]
            if not dp:
                continue
            dp = dp[0]
            ok = [p for p in H if p["recall"] >= dp["recall"]]
            h = max(ok, key=lambda p: p["qps"]) if ok else max(H, key=lambda p: (p["recall"], p["qps"]))
            entries.append((eng, dp, h, idx, expect))
        hs = {}
        for eng, dp, h, idx, expect in entries:
            hs.setdefault(h["params"]["ef_search"], h)
        best = {}
        for rnd in range(a.confirm_rounds):
            for eng, dp, h, idx, expect in entries:
                r = self.measure(case, eng, {}, ["SET enable_seqscan = off"], [idx], qs, expect, sweep="confirm",
                                 repeat=1, warm=a.warm if rnd == 0 else 6, extra={"round": rnd})
                b = best.setdefault(eng, dict(r))
                if r["qps"] > b["qps"]:
                    best[eng] = dict(r)
            for ef, h in sorted(hs.items()):
                r = self.measure(case, "hnsw-strict", {"ef_search": ef},
                                 ["SET enable_seqscan = off", "SET hnsw.iterative_scan = strict_order",
                                  "SET hnsw.ef_search = %d" % ef] + hnsw_common, [hnsw_idx], qs, hnsw_idx,
                                 sweep="confirm", repeat=1, warm=a.warm if rnd == 0 else 6, extra={"round": rnd})
                key = "hnsw ef_search=%d" % ef
                b = best.setdefault(key, dict(r))
                if r["qps"] > b["qps"]:
                    best[key] = dict(r)
        for eng, dp, h, idx, expect in entries:
            hk = "hnsw ef_search=%d" % h["params"]["ef_search"]
            s, hh = best[eng], best[hk]
            rec = dict(type="confirm", case=case["name"], kind=case["kind"], sel=case["sel"], qset=q, engine=eng,
                       rounds=a.confirm_rounds, scoreah=dict(recall=dp["recall"], qps=s["qps"], short=dp["short"],
                                                             out_of_order=dp["out_of_order"], sweep_qps=dp["qps"]),
                       hnsw=dict(ef_search=h["params"]["ef_search"], recall=h["recall"], qps=hh["qps"],
                                 sweep_qps=h["qps"], short=h["short"], reaches=h["recall"] >= dp["recall"]),
                       ratio=s["qps"] / hh["qps"])
            self.emit(rec)
            log("  confirm %s %s %s defaults: recall %.4f, %.0f QPS; HNSW strict ef_search=%d recall %.4f%s, %.0f QPS;"
                " ratio %.2f" % (case["name"], q, LABEL[eng], dp["recall"], s["qps"], h["params"]["ef_search"],
                                 h["recall"], "" if rec["hnsw"]["reaches"] else " (NOT reaching scoreah's recall)",
                                 hh["qps"], rec["ratio"]))


# ------------------------------------------------------------------ report

def best_at(points, t):
    ok = [p for p in points if p["recall"] >= t]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def fmt_params(p):
    if p["engine"] == "exact":
        return "planner's plan: %s" % plan_node(p["plan"])
    if not p["params"]:
        return "defaults"
    return ", ".join("%s=%s" % kv for kv in p["params"].items())


def plan_node(plan):
    m = re.findall(r"(Index (?:Only )?Scan using \S+|Seq Scan on \S+|Bitmap Heap Scan on \S+|Bitmap Index Scan on "
                   r"\S+|Sort|Gather)", plan)
    return " > ".join(dict.fromkeys(m)) if m else plan[:60]


def qfmt(x):
    return "%.1f" % x if x < 100 else "%.0f" % x


def report(out, records):
    meta = [r for r in records if r["type"] == "meta"][0]
    st = next((r for r in records if r["type"] == "settings"), {})
    P = [r for r in records if r["type"] == "point" and r.get("sweep") not in NOT_SWEEP]
    C = [r for r in records if r["type"] == "confirm"]
    builds = [r for r in records if r["type"] == "build"]
    load = next((r for r in records if r["type"] == "load"), None)
    planners = [r for r in records if r["type"] == "planner"]
    notes = [r for r in records if r["type"] == "note"]
    k = meta["k"]
    cases = list(dict.fromkeys(p["case"] for p in P))
    qsets = [q for q in B.QUERY_SETS if any(p["qset"] == q for p in P)]
    engines = [e for e in SERIES if any(p["engine"] == e for p in P)]
    L = ["# scoreah filter benchmark: %s, %s, k = %d" % (meta["dataset"], meta["metric"], k), ""]
    s = meta["settings"]
    L.append("* Machine: %s; %d logical CPUs (%s physical cores); %.0f GB RAM; CPU flags %s; %s." % (
        meta["cpu"], meta["cores"], meta.get("physical_cores"), meta["ram_gb"], " ".join(meta.get("cpu_flags", [])),
        meta.get("os", "")))
    L.append("* PostgreSQL %s: shared_buffers %s, maintenance_work_mem %s, work_mem %s, "
             "max_parallel_maintenance_workers %s, max_parallel_workers_per_gather %s, jit %s." % (
                 meta["server_version"], s["shared_buffers"], s["maintenance_work_mem"], s["work_mem"],
                 s["max_parallel_maintenance_workers"], s["max_parallel_workers_per_gather"], s["jit"]))
    L.append("* scoreah %s (%s), `SELECT scoreah_kernels()` = `%s`; scoreah_vector %s; library md5 %s%s." % (
        meta["scoreah_version"], meta["scoreah_git"], meta["scoreah_kernels"], meta.get("scoreah_vector_version"),
        (meta.get("scoreah_library") or {}).get("md5"),
        " (the run used a copy taken at its start, md5 %s)" % meta["scoreah_library_pinned"]["md5"]
        if meta.get("scoreah_library_pinned") else ""))
    pb = meta.get("pgvector_build") or {}
    L.append("* pgvector %s%s." % (meta.get("pgvector_version"), ", built with %s" % pb["summary"]
                                   if pb.get("summary") else ""))
    cl = meta.get("client") or {}
    L.append("* Client: %s %s (%s), on the same machine, one client; each query `SELECT id, v <=> $1 FROM %s "
             "WHERE <filter> ORDER BY v <=> $1 LIMIT %d`, prepared on the server, the vector bound in binary "
             "(pgvector's format) and the filter's values as int4; %s untimed queries first (statement prepared, "
             "generic plan from the 6th), then %s timed pass(es) over the set, the fastest kept. Every relation "
             "of the table was loaded into shared buffers (pg_prewarm) before each filter column's "
             "measurements." % (cl.get("driver"), cl.get("version"), cl.get("implementation"), TABLE, k,
                                st.get("warm"), st.get("repeat")))
    qi = meta.get("query_sets") or []
    L.append("* Query sets (%d queries each): %s. Data split: %s." % (
        meta["queries"], "; ".join("`%s` = %s" % (q["name"], q["description"]) for q in qi), meta["split"]))
    if load:
        L.append("* Table `%s`: %s rows x %d, %.0f MB; columns %s: for the base row at position p (0..n-1) "
                 "`tN = p %% N`, `r` = a seeded random permutation of 0..n-1 (both uncorrelated with the vectors)."
                 % (TABLE, format(load["rows"], ","), load["d"], load["table_bytes"] / 2**20,
                    ", ".join("`%s`" % c for c in load["columns"])))
    L.append("* Filters: `eq` = `tN = $2` with N = 1/selectivity, the tenant drawn per query (seeded); `range` = "
             "`r BETWEEN $2 AND $3`, a window of selectivity x n values at a random start per query. Every query "
             "has at least n x selectivity matching rows.")
    L.append("* Engines: `exact` = no vector index, a B-tree on the filter column, `enable_indexscan = off`, the "
             "planner's choice (%d queries per set); `scoreah post-filter` = scoreah index on v alone (AUTO), the "
             "executor checks the filter; `scoreah key column` = scoreah index on (v, filter column) (AUTO), the "
             "filter an `Index Cond`; scoreah at its defaults (nothing set), at `scoreah.target_recall` %s%s, and "
             "with `scoreah.scan_order = relaxed` at its defaults; `HNSW` = pgvector HNSW (m %s, ef_construction "
             "%s), `hnsw.iterative_scan` = strict_order / relaxed_order, `hnsw.ef_search` %s, with `%s`. "
             "Every index point with `enable_seqscan = off` and only the index measured visible to the planner "
             "(`pg_index.indisvalid`)." % (
                 st.get("exact_queries", 0), ", ".join("%g" % t for t in st.get("targets", [])),
                 "" if not st.get("scoreah_points") else " and num_leaves_to_search:reordering_num_neighbors %s"
                 % ", ".join("%d:%d" % tuple(x) for x in st["scoreah_points"]),
                 meta.get("hnsw_m", 16), meta.get("hnsw_ef_construction", 64),
                 ", ".join(str(x) for x in st.get("ef_search", [])), "; ".join(st.get("hnsw", []))))
    L.append("* recall@%d against the exact filtered top %d (numpy, float64 cosine); *short* = queries that got "
             "fewer than %d rows; *out of order* = queries whose rows' distances (`v <=> $1`, computed by the "
             "server from the rows) decrease somewhere in the returned order." % (k, k, k))
    L.append("* Date %s." % meta["date"])
    loads1 = [p["load1"] for p in P if p.get("load1") is not None]
    if loads1:
        L.append("* 1-minute load average during the measurements: %.1f to %.1f." % (min(loads1), max(loads1)))
    for n in notes:
        L.append("* Note: %s." % n["note"])
    L.append("")
    L.append("## Builds")
    L.append("")
    L.append("| index | DDL | build s | size MB | peak memory MB | parallel workers at once |")
    L.append("|---|---|---|---|---|---|")
    for b in builds:
        L.append("| %s | `%s` | %.1f | %.1f | %s | %d |" % (b["index"], b["ddl"], b["seconds"], b["index_bytes"] / 2**20,
                                                        "%.0f" % b["peak_mem_mb"] if "peak_mem_mb" in b else "-",
                                                        b.get("parallel_workers", 0)))
    bi = next((b for b in builds if b["engine"] == "scoreah"), None)
    if bi and bi.get("index_info"):
        ii = bi["index_info"]
        L.append("")
        L.append("scoreah's AUTO build chose: %s; default num_leaves_to_search %s." % (
            B.chosen_summary(ii), ii.get("num_leaves_to_search", "?")))
    # summary: QPS at recall >= TARGET
    for q in qsets:
        L.append("")
        L.append("## Query set %s: QPS (1 client) of each engine's fastest point at recall@%d >= %.2f" % (q, k, TARGET))
        L.append("")
        L.append("Cells: QPS (recall, setting); *not reached* gives the best recall of the sweep. "
                 "Exact search: QPS and recall over its queries.")
        L.append("")
        head = ["filter"] + [LABEL[e] for e in engines if e not in ("post-relaxed", "key-relaxed")]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * len(head))
        for cn in cases:
            cells = [cn]
            for e in engines:
                if e in ("post-relaxed", "key-relaxed"):
                    continue
                E = [p for p in P if p["case"] == cn and p["qset"] == q and p["engine"] == e]
                if not E:
                    cells.append("-")
                    continue
                if e == "exact":
                    cells.append("%s (%.4f)" % (qfmt(E[0]["qps"]), E[0]["recall"]))
                    continue
                b = best_at(E, TARGET)
                if b:
                    cells.append("%s (%.4f, %s)%s" % (qfmt(b["qps"]), b["recall"], fmt_params(b),
                                                      " [%d short]" % b["short"] if b["short"] else ""))
                else:
                    m = max(E, key=lambda p: p["recall"])
                    cells.append("not reached (%.4f at %s)" % (m["recall"], fmt_params(m)))
            L.append("| " + " | ".join(cells) + " |")
    # defaults
    L.append("")
    L.append("## scoreah at its defaults (nothing set) and with scan_order = relaxed")
    L.append("")
    L.append("| filter | query set | engine | recall@%d | QPS | p50 ms | p99 ms | short | out of order |" % k)
    L.append("|---|---|---|---|---|---|---|---|---|")
    for cn in cases:
        for q in qsets:
            for e in ("post", "key", "post-relaxed", "key-relaxed"):
                for p in [p for p in P if p["case"] == cn and p["qset"] == q and p["engine"] == e
                          and p["sweep"] == "defaults"]:
                    L.append("| %s | %s | %s | %.4f | %s | %.2f | %.2f | %d | %d |" % (
                        cn, q, LABEL[e], p["recall"], qfmt(p["qps"]), p["p50_ms"], p["p99_ms"], p["short"],
                        p["out_of_order"]))
    # floors
    if C:
        L.append("")
        L.append("## Floors: 1% and 10% selectivity, scoreah at its defaults against HNSW strict_order")
        L.append("")
        L.append("The issue's floors, at its defaults: every query gets %d rows; recall@%d >= 0.95; QPS >= 2x "
                 "pgvector HNSW with `hnsw.iterative_scan = strict_order` at its fastest `ef_search` of the sweep "
                 "whose recall is at least scoreah's. QPS from the side-by-side rounds (scoreah and that HNSW "
                 "setting taking turns, %d rounds, the fastest pass of each kept)." % (k, k, C[0]["rounds"]))
        L.append("")
        L.append("| filter | query set | scoreah | short | recall@%d | QPS | HNSW strict ef_search (recall) | HNSW QPS "
                 "| ratio | 10 rows | recall >= 0.95 | QPS >= 2x |" % k)
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for c in C:
            s_, h = c["scoreah"], c["hnsw"]
            L.append("| %s | %s | %s | %d | %.4f | %s | %d (%.4f%s) | %s | %.2fx | %s | %s | %s |" % (
                c["case"], c["qset"], LABEL[c["engine"]], s_["short"], s_["recall"], qfmt(s_["qps"]), h["ef_search"],
                h["recall"], "" if h["reaches"] else ", below scoreah's: HNSW's best", qfmt(h["qps"]), c["ratio"],
                "met" if s_["short"] == 0 else "MISSED (%d queries short)" % s_["short"],
                "met" if s_["recall"] >= 0.95 else "MISSED by %.4f" % (0.95 - s_["recall"]),
                "met" if c["ratio"] >= 2 else "MISSED (%.2fx)" % c["ratio"]))
    # order and rows
    L.append("")
    L.append("## Rows and order over all points")
    L.append("")
    L.append("| engine | points | points with short queries | short queries (sum) | points with out-of-order queries "
             "| out-of-order queries (sum) |")
    L.append("|---|---|---|---|---|---|")
    for e in engines:
        E = [p for p in P if p["engine"] == e]
        L.append("| %s | %d | %d | %d | %d | %d |" % (LABEL[e], len(E), sum(1 for p in E if p["short"]),
                                                     sum(p["short"] for p in E),
                                                     sum(1 for p in E if p["out_of_order"]),
                                                     sum(p["out_of_order"] for p in E)))
    bad = [p for p in P if p["engine"] in ("post", "key") and p["out_of_order"]]
    for p in bad[:10]:
        for ex in p.get("out_of_order_examples", [])[:1]:
            L.append("")
            L.append("Out of order: %s, %s, %s %s, query %d of the set (filter value %s): distances %s." % (
                p["case"], p["qset"], LABEL[p["engine"]], fmt_params(p), ex["query"], ex["value"],
                ", ".join("%.6f" % x for x in ex["dists"])))
    if planners:
        L.append("")
        L.append("## What the planner chooses by itself")
        L.append("")
        L.append("With the plain scoreah index, the key-column index on the filter column and a B-tree on it all "
                 "visible, nothing set: the prepared statement's generic plan after 10 executions, and the custom "
                 "plan of the first query (EXPLAIN with literals); the mean time of the 10 executions.")
        L.append("")
        L.append("| filter | query set | generic plan | custom plan | ms per query |")
        L.append("|---|---|---|---|---|")
        for r in planners:
            L.append("| %s | %s | %s | %s | %.2f |" % (r["case"], r["qset"], r["generic"], r["custom"],
                                                       r["ms_per_query"]))
    L.append("")
    L.append("## Every point")
    L.append("")
    L.append("| filter | query set | engine | setting | recall@%d | QPS | p50 ms | p99 ms | short | min rows "
             "| out of order | plan |" % k)
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cn in cases:
        for q in qsets:
            for e in engines:
                for p in [p for p in P if p["case"] == cn and p["qset"] == q and p["engine"] == e]:
                    L.append("| %s | %s | %s | %s | %.4f | %s | %.2f | %.2f | %d | %d | %d | %s |" % (
                        cn, q, LABEL[e], fmt_params(p), p["recall"], qfmt(p["qps"]), p["p50_ms"], p["p99_ms"],
                        p["short"], p["min_rows"], p["out_of_order"], plan_node(p["plan"])))
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def pareto(points):
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (-p["recall"], -p["qps"])):
        if p["qps"] > best:
            front.append(p)
            best = p["qps"]
    return sorted(front, key=lambda p: p["recall"])


def plot(out, records):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    meta = [r for r in records if r["type"] == "meta"][0]
    P = [r for r in records if r["type"] == "point" and r.get("sweep") not in NOT_SWEEP]
    kinds = [x for x in FILTERS if any(p["kind"] == x for p in P)]
    sels = sorted(set(p["sel"] for p in P))
    qsets = [q for q in B.QUERY_SETS if any(p["qset"] == q for p in P)]
    engines = [e for e in SERIES if any(p["engine"] == e for p in P)]
    fig, axes = plt.subplots(len(kinds), len(sels), figsize=(4.6 * len(sels), 4.4 * len(kinds)), squeeze=False)
    styles = {"head": ("-", "o"), "uniform": ("--", "^")}
    for ki, kind in enumerate(kinds):
        for si, s in enumerate(sels):
            ax = axes[ki][si]
            for e in engines:
                for q in qsets:
                    E = [p for p in P if p["kind"] == kind and p["sel"] == s and p["engine"] == e and p["qset"] == q]
                    if not E:
                        continue
                    ls, mk = styles.get(q, ("-", "o"))
                    lab = "%s, %s" % (LABEL[e], q) if ki == 0 and si == 0 else None
                    if e in ("exact", "post-relaxed", "key-relaxed"):
                        ax.scatter([p["recall"] for p in E], [p["qps"] for p in E], marker="s" if e == "exact" else mk,
                                   s=30, color=COLORS[e], label=lab, zorder=3,
                                   edgecolors="black" if e != "exact" else None, linewidths=0.5)
                        continue
                    ax.scatter([p["recall"] for p in E], [p["qps"] for p in E], s=8, color=COLORS[e], alpha=0.3)
                    f = pareto(E)
                    ax.plot([p["recall"] for p in f], [p["qps"] for p in f], ls, marker=mk, ms=3.5, color=COLORS[e],
                            label=lab, lw=1.2)
                    dflt = [p for p in E if p["sweep"] == "defaults"]
                    if dflt:
                        ax.scatter([p["recall"] for p in dflt], [p["qps"] for p in dflt], marker="D", s=36,
                                   facecolors=COLORS[e], edgecolors="black", linewidths=0.7, zorder=4)
                    short = [p for p in E if p["short"]]
                    if short:
                        ax.scatter([p["recall"] for p in short], [p["qps"] for p in short], marker="x", s=30,
                                   color="black", zorder=5)
            ax.set_yscale("log")
            lo = min([p["recall"] for p in P if p["kind"] == kind and p["sel"] == s] + [0.9])
            ax.set_xlim(max(0.0, min(0.85, lo) - 0.02), 1.005)
            ax.axvline(TARGET, color="#bbbbbb", lw=0.8, zorder=0)
            ax.set_title("%s filter, %s of rows" % ("equality (tenant)" if kind == "eq" else "range (BETWEEN)", pct(s)),
                         fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if si == 0:
                ax.set_ylabel("queries per second, 1 client (log)")
            if ki == len(kinds) - 1:
                ax.set_xlabel("recall@%d (exact filtered top %d)" % (meta["k"], meta["k"]))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(7, len(labels)), fontsize=8, frameon=False)
    fig.suptitle("%s (%s rows), filtered top-%d, %s; diamonds: scoreah at its defaults, x: points with queries that "
                 "got fewer than %d rows; CPU %s, kernels %s" % (
                     meta["dataset"], format(meta.get("rows_used") or 0, ","), meta["k"], meta["metric"], meta["k"],
                     meta["cpu"], meta["scoreah_kernels"]), fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(os.path.join(out, "results.png"), dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_server_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None, help=".f32bin or .fvecs (default GloVe-100, as bench.py)")
    g.add_argument("--split-queries", type=int, default=10000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--rows", type=int, default=0, help="first N base rows (default all; --quick 30000)")
    g.add_argument("--queries", type=int, default=0, help="queries per set (default 250; --quick 50)")
    g.add_argument("--query-sets", default="head,uniform")
    g.add_argument("--k", type=int, default=10)
    g = p.add_argument_group("what to run")
    g.add_argument("--quick", action="store_true", help="smoke run: 30,000 rows, 50 queries a set, small sweeps")
    g.add_argument("--selectivities", default=",".join("%g" % s for s in SELECTIVITIES))
    g.add_argument("--filters", default=",".join(FILTERS), help="eq,range")
    g.add_argument("--engines", default=",".join(ENGINES + ("post-relaxed", "key-relaxed")),
                   help="comma list of %s" % ",".join(SERIES))
    g.add_argument("--targets", default="0.8,0.9,0.95,0.98,0.99", help="scoreah.target_recall sweep")
    g.add_argument("--scoreah-points", default="", help="explicit leaves:reorder points, e.g. 20:50,60:200")
    g.add_argument("--ef-search", default=None, help="hnsw.ef_search sweep (default 10,20,40,80,160,400)")
    g.add_argument("--max-scan-tuples", type=int, default=0,
                   help="hnsw.max_scan_tuples (default: the table's rows, so HNSW may visit all of them)")
    g.add_argument("--scan-mem-multiplier", type=float, default=20,
                   help="hnsw.scan_mem_multiplier (default 20: 80 MB with work_mem 4MB)")
    g.add_argument("--hnsw-m", type=int, default=16)
    g.add_argument("--hnsw-ef-construction", type=int, default=64)
    g.add_argument("--exact-queries", type=int, default=50)
    g.add_argument("--warm", type=int, default=30, help="untimed queries before the timed pass (default 30)")
    g.add_argument("--repeat", type=int, default=1, help="timed passes per point, the fastest kept (default 1)")
    g.add_argument("--confirm-rounds", type=int, default=3)
    g.add_argument("--confirm-selectivities", default="0.01,0.1")
    g.add_argument("--no-planner", dest="planner", action="store_false")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=os.path.join(HERE, "out", "filters"))
    g.add_argument("--cache", default=os.environ.get("SCOREAH_BENCH_CACHE") or os.path.join(HERE, "cache"))
    g.add_argument("--report-only", action="store_true")
    a = p.parse_args()
    a.out = os.path.abspath(a.out)
    if a.report_only:
        B.remake_reports(a.out, report, plot)
        return 0
    if not a.host:
        p.error("--host is required (or run through test/bench/run --filters)")
    q = a.quick
    a.queries = a.queries or (50 if q else 250)
    a.selectivities = B.parse_list(a.selectivities)
    a.filters = [x.strip() for x in a.filters.split(",") if x.strip()]
    for x in a.filters:
        if x not in FILTERS:
            p.error("--filters: unknown %r" % x)
    a.engines = [x.strip() for x in a.engines.split(",") if x.strip()]
    for x in a.engines:
        if x not in SERIES:
            p.error("--engines: unknown %r (choose from %s)" % (x, ",".join(SERIES)))
    a.targets = B.parse_list(a.targets) if a.targets.strip() else []
    a.scoreah_points = [tuple(int(y) for y in x.split(":")) for x in a.scoreah_points.split(",") if x.strip()]
    a.ef_search = B.parse_list(a.ef_search or ("10,40,200" if q else "10,20,40,80,160,400"), int)
    a.confirm_selectivities = B.parse_list(a.confirm_selectivities)
    a.query_sets = [x for x in B.QUERY_SETS if x in [y.strip() for y in a.query_sets.split(",")]]
    # what Bench.meta reads
    a.clients = 1
    a.scoreah_columns = ["vector"]
    a.leaves_pct, a.reorder, a.probes = [], [], []
    a.main_storage, a.variant_storages = "float32", []
    a.scoreah_mode, a.scoreah_with, a.target_recalls = "auto", "", a.targets
    bench_engines = a.engines
    data = a.data or B.default_data_file()
    if not os.path.exists(data):
        data = B.fetch_glove(a.cache)
    vecs = read_vectors(data)
    n, d = vecs.shape
    pool, brows = readme_split(n, min(a.split_queries, n // 10), a.seed)
    m = min(a.queries, len(pool))
    step = max(1, len(pool) // m)
    chosen = {"head": pool[:m], "uniform": pool[::step][:m]}
    a.query_set_info = []
    for name in a.query_sets:
        desc = ("the first %d held-out rows (GloVe: frequent words)" % m if name == "head"
                else "every %s of the %d held-out rows (%d; GloVe: mostly rare words)" % (B.ordinal(step), len(pool), m))
        a.query_set_info.append(dict(name=name, description=desc, step=1 if name == "head" else step))
    rows = min(a.rows or (30000 if q else len(brows)), len(brows))
    base_ids = brows[:rows]
    base = vecs[base_ids]
    dataset = dict(dataset=os.path.basename(data), data_file=os.path.abspath(data), n=n, d=d, metric="cosine",
                   split="random.Random(%d).sample of %d rows held out, in file order; base = the other %s rows"
                   % (a.seed, len(pool), format(len(brows), ",")), base_rows=len(brows), queries=m, rows_used=rows,
                   argv=sys.argv[1:], hnsw_m=a.hnsw_m, hnsw_ef_construction=a.hnsw_ef_construction, mode="filters")
    a.max_scan_tuples = a.max_scan_tuples or rows
    log("filter benchmark: %s, %d rows x %d; query sets %s (%d queries); selectivities %s; filters %s; engines %s"
        % (data, rows, d, ",".join(a.query_sets), m, ",".join("%g" % s for s in a.selectivities),
           ",".join(a.filters), ",".join(bench_engines)))
    a.engines = ["scoreah", "hnsw"]  # for Bench.meta: scoreah on the vector table
    b = FilterBench(a)
    try:
        b.meta(dataset)
        a.engines = bench_engines
        if not b.has_scoreah_vector:
            raise SystemExit("the filter benchmark needs pgvector and the scoreah_vector extension on the server")
        perm = b.load(base_ids.astype(np.int32), base)
        perm_inv = np.argsort(perm)
        cases = make_cases(a, rows)
        qsets = []
        for name in a.query_sets:
            qv = vecs[chosen[name]]
            values = {c["name"]: query_values(a, c, name, len(qv), rows) for c in cases}
            t0 = time.time()
            tp, td = filtered_truth(base, perm_inv, qv, cases, values, a.k)
            truth = {cn: [set(int(base_ids[j]) for j in row) for row in v] for cn, v in tp.items()}
            log("exact filtered top %d for %s: %d queries x %d filters in %.1f s" % (a.k, name, len(qv), len(cases),
                                                                                     time.time() - t0))
            qsets.append(dict(name=name, vecs=qv, values=values, truth=truth))
        b.run(rows, qsets)
    finally:
        b.close()
    report(a.out, b.records)
    plot(a.out, b.records)
    log("done in %.0f s: %s/results.jsonl, results.md, results.png" % (time.time() - B.T0, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
