"""emb against gensim 4.2 on the same generated word vectors.

    python3 compare.py EMB DIR [--rows 1000000] [--dim 100] [--queries 20]

Writes DIR/w2v.bin (random vectors, seeded) and DIR/w2v.txt (the same vectors as text, written
by `emb convert`), then times:
  - loading: gensim's KeyedVectors.load_word2vec_format (in this process) against the whole
    `emb lookup FILE w0` process (start, load, find the word, one lookup, exit), wall time and
    CPU time (user + system); both results are checked to be the same table, bit for bit
    (through `emb convert FILE x.npy`);
  - exact cosine top-10: gensim's most_similar against `emb neighbors -k 10`, per query,
    excluding loading and the one-time norm computation (gensim's fill_norms, timed apart; emb
    prints its own norm time); the neighbour lists are checked to agree.
Prints one line per measurement; medians over --repeat runs.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import gensim
from gensim.models import KeyedVectors


def log(msg):
    print(msg, flush=True)


def generate(path_bin, rows, dim):
    rng = np.random.default_rng(1)
    vectors = rng.normal(0.0, 0.3, size=(rows, dim)).astype("<f4")
    with open(path_bin, "wb") as f:
        f.write(b"%d %d\n" % (rows, dim))
        chunk = []
        for i in range(rows):
            chunk.append(b"w%d " % i + vectors[i].tobytes() + b"\n")
            if len(chunk) == 65536:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    return vectors


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cpu_timed(fn):
    """(wall s, CPU s of this process and its finished children, result)."""
    def cpu():
        me = resource.getrusage(resource.RUSAGE_SELF)
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime
    c0, t0 = cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, cpu() - c0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("emb")
    ap.add_argument("dir")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="emb threads (0: its default)")
    ap.add_argument("--skip-load", action="store_true",
                    help="time neighbours only (the binary file loaded once, untimed)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    b = os.path.join(a.dir, "w2v.bin")
    t = os.path.join(a.dir, "w2v.txt")
    log(f"gensim {gensim.__version__}, numpy {np.__version__}; {a.rows} x {a.dim}")
    vectors = generate(b, a.rows, a.dim)
    subprocess.run([a.emb, "convert", b, t, "--quiet"], check=True)
    log(f"files: {b} {os.path.getsize(b)} bytes, {t} {os.path.getsize(t)} bytes")

    # ---- loading ----
    kv = None
    for path, binary in () if a.skip_load else ((t, False), (b, True)):
        g_times, e_times, g_cpu, e_cpu = [], [], [], []
        for _ in range(a.repeat):
            kv = None
            s, c, kv = cpu_timed(lambda: KeyedVectors.load_word2vec_format(path, binary=binary))
            g_times.append(s)
            g_cpu.append(c)
            s, c, _ = cpu_timed(lambda: subprocess.run([a.emb, "lookup", path, "w0", "--quiet"],
                                                       check=True, stdout=subprocess.DEVNULL))
            e_times.append(s)
            e_cpu.append(c)
        # The same table on both sides.
        npy = os.path.join(a.dir, "check.npy")
        subprocess.run([a.emb, "convert", path, npy, "--quiet"], check=True)
        if not (np.array_equal(np.load(npy), kv.vectors) and np.array_equal(kv.vectors, vectors)
                and kv.index_to_key[-1] == "w%d" % (a.rows - 1)):
            sys.exit(f"FAIL: gensim and emb read different tables from {path}")
        os.unlink(npy)
        g, e = statistics.median(g_times), statistics.median(e_times)
        gc, ec = statistics.median(g_cpu), statistics.median(e_cpu)
        size = os.path.getsize(path) / 1e6
        log(f"load {'binary' if binary else 'text  '}: wall gensim {g:.2f} s ({size / g:.0f} MB/s), "
            f"emb {e:.2f} s ({size / e:.0f} MB/s): emb {g / e:.1f}x faster; "
            f"CPU gensim {gc:.2f} s, emb {ec:.2f} s: {gc / ec:.1f}x "
            f"(wall runs: gensim {['%.2f' % x for x in g_times]}, emb {['%.2f' % x for x in e_times]})")

    # ---- neighbours ----
    if kv is None:
        kv = KeyedVectors.load_word2vec_format(b, binary=True)
    rng = np.random.default_rng(7)
    queries = ["w%d" % i for i in rng.choice(a.rows, size=a.queries, replace=False)]
    fill_s, _ = timed(kv.fill_norms)
    kv.most_similar(queries[0], topn=10)  # warm
    per_query = []
    gensim_results = {}
    for _ in range(a.repeat):
        s, res = timed(lambda: [kv.most_similar(q, topn=10) for q in queries])
        per_query.append(s / len(queries))
        gensim_results = dict(zip(queries, res))
    g = statistics.median(per_query)
    cmd = [a.emb, "neighbors", b, *queries, "-k", "10"]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    e_runs, norms = [], []
    for _ in range(a.repeat):
        r = subprocess.run(cmd, check=True, capture_output=True, text=True)
        m = re.search(r"norms ([0-9.]+) ms \(once\); \d+ queries in [0-9.]+ ms, ([0-9.]+) ms per "
                      r"query \(top 10, (\d+) threads, SIMD (\w+)\)", r.stderr)
        if not m:
            sys.exit("FAIL: no timing line from emb neighbors: " + r.stderr)
        norms.append(float(m.group(1)))
        e_runs.append(float(m.group(2)) / 1e3)
        threads, simd = m.group(3), m.group(4)
        emb_results = {}
        for line in r.stdout.splitlines():
            q, w, c = line.split()
            emb_results.setdefault(q, []).append((w, float(c)))
    mismatches = 0
    for q in queries:
        gl, el = gensim_results[q], emb_results[q]
        for (gw, gc), (ew, ec) in zip(gl, el):
            if abs(gc - ec) > 1e-5:
                mismatches += 1
            elif gw != ew and abs(gc - ec) > 1e-6:
                mismatches += 1
    if mismatches:
        sys.exit(f"FAIL: {mismatches} neighbours differ between gensim and emb")
    e = statistics.median(e_runs)
    log(f"norms (once): gensim {fill_s * 1e3:.1f} ms, emb {statistics.median(norms):.1f} ms")
    log(f"most_similar top-10: gensim {g * 1e3:.2f} ms per query, emb {e * 1e3:.2f} ms per query "
        f"({threads} threads, SIMD {simd}): emb {g / e:.2f}x faster; "
        f"{len(queries)} queries, neighbour lists agree (cosines within 1e-5)")


if __name__ == "__main__":
    main()
