#!/usr/bin/python3
"""Vector data for scoreah's tests, demo and benchmark.

Reads .f32bin (int32 n, int32 d, n*d float32, little-endian) and .fvecs
files, makes the GloVe split described in ../shared/data/README.md, writes
PostgreSQL binary COPY files (id int4, v real[]) -- or (id int4, word text,
v real[]) with write_copy_words -- and exact top-k ground truth computed
with numpy.

    vectors.py split FILE.f32bin --out DIR [--base N] [--queries M]
                     [--k 10] [--metric cosine|l2|ip] [--seed 42]
        DIR/base.copy, DIR/queries.copy   binary COPY of (id, v); ids are the
                                          rows' numbers in FILE
        DIR/truth.tsv                     query id <TAB> k nearest base ids
    vectors.py info FILE

The split is the one ../shared/data/build_datasets.py makes ("split --queries
10000 --seed 42"): the held-out query rows are random.Random(seed).sample(
range(n), 10000), the base rows the others, both in file order; --base and
--queries then take the first N and M of each.

Runs with Debian's /usr/bin/python3 and python3-numpy.
"""
import argparse
import os
import random
import struct
import sys

import numpy as np


def read_vectors(path):
    """(n x d float32 array) from .f32bin or .fvecs."""
    if path.endswith(".fvecs"):
        raw = np.fromfile(path, dtype="<i4")
        d = int(raw[0])
        return raw.reshape(-1, d + 1)[:, 1:].view("<f4").astype(np.float32)
    with open(path, "rb") as f:
        n, d = struct.unpack("<ii", f.read(8))
        a = np.fromfile(f, dtype="<f4", count=n * d)
    return a.reshape(n, d).astype(np.float32)


def write_copy(path, ids, vecs, ints=None):
    """PostgreSQL binary COPY of rows (id int4, v real[]); with INTS (n x m), of rows
    (id int4, m int4 columns, v real[])."""
    n, d = vecs.shape
    m = 0 if ints is None else ints.shape[1]
    dt = np.dtype([
        ("nfields", ">i2"),
        ("idlen", ">i4"), ("id", ">i4"),
    ] + [f for j in range(m) for f in (("l%d" % j, ">i4"), ("c%d" % j, ">i4"))] + [
        ("arrlen", ">i4"), ("ndim", ">i4"), ("hasnull", ">i4"), ("elemtype", ">u4"),
        ("dim", ">i4"), ("lbound", ">i4"),
        ("elems", [("len", ">i4"), ("val", ">f4")], (d,)),
    ])
    rows = np.zeros(n, dtype=dt)
    rows["nfields"] = 2 + m
    rows["idlen"] = 4
    rows["id"] = ids
    for j in range(m):
        rows["l%d" % j] = 4
        rows["c%d" % j] = ints[:, j]
    rows["arrlen"] = 20 + 8 * d
    rows["ndim"] = 1
    rows["elemtype"] = 700  # float4
    rows["dim"] = d
    rows["lbound"] = 1
    rows["elems"]["len"] = 4
    rows["elems"]["val"] = vecs
    with open(path, "wb") as f:
        f.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        f.write(rows.tobytes())
        f.write(struct.pack(">h", -1))


def write_copy_words(path, ids, words, vecs):
    """PostgreSQL binary COPY of rows (id int4, word text, v real[])."""
    n, d = vecs.shape
    tail = np.zeros(n, dtype=np.dtype([
        ("arrlen", ">i4"), ("ndim", ">i4"), ("hasnull", ">i4"), ("elemtype", ">u4"),
        ("dim", ">i4"), ("lbound", ">i4"),
        ("elems", [("len", ">i4"), ("val", ">f4")], (d,)),
    ]))
    tail["arrlen"] = 20 + 8 * d
    tail["ndim"] = 1
    tail["elemtype"] = 700  # float4
    tail["dim"] = d
    tail["lbound"] = 1
    tail["elems"]["len"] = 4
    tail["elems"]["val"] = vecs
    tb = tail.tobytes()
    rl = tail.itemsize
    parts = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
    for r in range(n):
        w = words[r].encode("utf-8")
        parts.append(struct.pack(">hiii", 3, 4, int(ids[r]), len(w)))
        parts.append(w)
        parts.append(tb[r * rl:(r + 1) * rl])
    parts.append(struct.pack(">h", -1))
    with open(path, "wb") as f:
        f.write(b"".join(parts))


def exact_topk(base, queries, k, metric, chunk=100):
    """Indices (into base) of each query's k nearest rows, nearest first."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "cosine":
        bn = np.linalg.norm(b, axis=1)
        bn[bn == 0] = np.inf  # zero vectors are never neighbours
        b = b / bn[:, None]
        q = q / np.linalg.norm(q, axis=1)[:, None]
    bsq = (b * b).sum(axis=1)
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk]
        dots = qc @ b.T
        if metric == "l2":
            dist = bsq[None, :] - 2 * dots
        else:  # ip and cosine: larger dot = nearer
            dist = -dots
        part = np.argpartition(dist, k, axis=1)[:, :k]
        pd = np.take_along_axis(dist, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def readme_split(n, nqueries, seed):
    """Row numbers of the held-out queries and of the base, in file order."""
    held = set(random.Random(seed).sample(range(n), nqueries))
    qrows = np.array(sorted(held), dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    mask[qrows] = False
    return qrows, np.nonzero(mask)[0]


def cmd_split(a):
    vecs = read_vectors(a.file)
    qrows, brows = readme_split(len(vecs), a.split_queries, a.seed)
    if a.base:
        brows = brows[:a.base]
    if a.queries:
        qrows = qrows[:a.queries]
    os.makedirs(a.out, exist_ok=True)
    write_copy(os.path.join(a.out, "base.copy"), brows, vecs[brows])
    write_copy(os.path.join(a.out, "queries.copy"), qrows, vecs[qrows])
    truth = exact_topk(vecs[brows], vecs[qrows], a.k, a.metric)
    with open(os.path.join(a.out, "truth.tsv"), "w") as f:
        for qi, row in zip(qrows, truth):
            f.write("%d\t%s\n" % (qi, ",".join(str(int(brows[j])) for j in row)))
    print("split %s: %d base rows, %d queries, %d dims, top-%d by %s -> %s" % (
        a.file, len(brows), len(qrows), vecs.shape[1], a.k, a.metric, a.out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("file")
    s.add_argument("--out", required=True)
    s.add_argument("--base", type=int, default=0, help="first N base rows (0 = all)")
    s.add_argument("--queries", type=int, default=0, help="first M queries (0 = all)")
    s.add_argument("--split-queries", type=int, default=10000, help="rows held out by the split")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--metric", choices=["cosine", "l2", "ip"], default="cosine")
    i = sub.add_parser("info")
    i.add_argument("file")
    a = p.parse_args()
    if a.cmd == "split":
        cmd_split(a)
    else:
        v = read_vectors(a.file)
        norms = np.linalg.norm(v, axis=1)
        print("%s: n=%d d=%d norms min=%.4g mean=%.4g max=%.4g" % (
            a.file, v.shape[0], v.shape[1], norms.min(), norms.mean(), norms.max()))


if __name__ == "__main__":
    sys.exit(main())
