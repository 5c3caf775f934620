#!/usr/bin/python3
"""Times exsal's readers (bench_read_formats) against anndata.read_h5ad on the same files, and a
10x MTX folder against scipy.io.mmread, alternating the two, each repetition in a fresh process
(so the peak resident memory of each is that of one read). Prints a Markdown table.

    /usr/bin/python3 benchmarks/formats/compare_read.py --bench build/benchmarks/bench_read_formats \
        --reps 3 FILE.h5ad [FILE.h5ad ...] [MTX_FOLDER ...]

Python side: anndata.read_h5ad(path) loads the whole file into memory (X, obs, var). exsal
returns cells x genes CSR, so the time to convert X to a scipy CSR matrix (X.tocsr() for CSC,
scipy.sparse.csr_matrix(X) for a dense X) is added in the "+ CSR" column, and the ratio is taken
against that; the plain read time is shown too. For an MTX folder: scipy.io.mmread(matrix.mtx)
then .T.tocsr() (cells in rows), without reading the names files. Peak memory: the peak resident
set of each child process, VmHWM of /proc/<pid>/status read by the child at its end (for Python
also the part above the interpreter with its imports: VmHWM just before reading). getrusage's
ru_maxrss is recorded in the JSON too, but Linux carries it over fork and exec, so a child of a
Python process reports at least the parent's size there; VmHWM starts afresh at exec.

Needs /usr/bin/python3 with numpy, scipy and anndata (>= 0.8).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
import numpy as np, scipy.sparse as sp
if kind == "h5ad":
    import anndata
else:
    import scipy.io
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
def hwm_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
base = hwm_mib()
t0 = time.perf_counter()
if kind == "h5ad":
    a = anndata.read_h5ad(path)
    x = a.X
else:
    import os
    x = scipy.io.mmread(os.path.join(path, "matrix.mtx"))
t1 = time.perf_counter()
if kind == "h5ad":
    storage = "csr" if sp.isspmatrix_csr(x) else "csc" if sp.isspmatrix_csc(x) else "dense"
    if storage == "csc":
        x = x.tocsr()
    elif storage == "dense":
        x = sp.csr_matrix(x)
else:
    storage = "coordinate"
    x = x.T.tocsr()
t2 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "csr_s": t2 - t0, "storage": storage, "shape": list(x.shape), "nnz": int(x.nnz),
                  "peak_rss_mib": rss_mib(), "vm_hwm_mib": hwm_mib(), "base_hwm_mib": base}))
"""


def run_exsal(bench, path):
    out = subprocess.run([bench, "--file", path], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_python(path):
    kind = "mtx" if os.path.isdir(path) else "h5ad"
    out = subprocess.run([sys.executable, "-c", CHILD, kind, path], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def spread(values, fmt="%.3f"):
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help=".h5ad files or 10x MTX folders")
    ap.add_argument("--bench", default="build/benchmarks/bench_read_formats")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default="", help="also write every measurement here")
    args = ap.parse_args()

    # The parent stays small (no numpy here): its children are timed and measured.
    versions = subprocess.run([sys.executable, "-c", "import anndata, scipy; print(anndata.__version__, scipy.__version__)"],
                              check=True, capture_output=True, text=True).stdout.split()
    load_before = os.getloadavg()[0]
    rows, raw = [], []
    for path in args.files:
        ex, py = [], []
        for _ in range(args.reps):  # alternate, so a change of load hits both
            ex.append(run_exsal(args.bench, path))
            py.append(run_python(path))
        e0, p0 = ex[0], py[0]
        if [e0["cells"], e0["genes"]] != p0["shape"] or e0["nnz"] != p0["nnz"]:
            sys.exit("%s: exsal read %d x %d (%d non-zeros), Python %s (%d)" %
                     (path, e0["cells"], e0["genes"], e0["nnz"], p0["shape"], p0["nnz"]))
        es = [r["seconds"] for r in ex]
        pr = [r["read_s"] for r in py]
        pc = [r["csr_s"] for r in py]
        ratios = [p["csr_s"] / e["seconds"] for e, p in zip(ex, py)]
        python_name = "anndata.read_h5ad" if p0["storage"] != "coordinate" else "scipy.io.mmread"
        rows.append([
            "%s (%s)" % (os.path.basename(path.rstrip("/")), e0["storage"]),
            "%d x %d, %.1f M nnz" % (e0["cells"], e0["genes"], e0["nnz"] / 1e6),
            "%.0f" % (e0["bytes"] / 2**20),
            spread(es),
            python_name + " " + spread(pr),
            spread(pc) if p0["storage"] != "csr" else "(is CSR)",
            "%.1fx (%.1f-%.1f)" % (statistics.median(ratios), min(ratios), max(ratios)),
            "%.0f" % statistics.median(r["vm_hwm_mib"] for r in ex),
            "%.0f (%.0f above imports)" % (statistics.median(r["vm_hwm_mib"] for r in py),
                                          statistics.median(r["vm_hwm_mib"] - r["base_hwm_mib"] for r in py)),
            "%.0f" % (e0["csr_bytes"] / 2**20),
        ])
        raw.append({"file": path, "exsal": ex, "python": py})
    load_after = os.getloadavg()[0]

    print("Machine: %d cores (os.cpu_count); anndata %s, scipy %s; %d repetitions each, alternating, each in a "
          "fresh process; median (min-max); peak = VmHWM." % (os.cpu_count(), versions[0], versions[1], args.reps))
    print()
    head = ["file (storage)", "cells x genes", "MiB on disk", "exsal s", "Python read s", "Python + CSR s",
            "ratio (Python + CSR) / exsal", "exsal peak MiB", "Python peak MiB", "CSR arrays MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("load average (1 min) before/after: %.2f / %.2f" % (load_before, load_after))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "load": [load_before, load_after], "runs": raw}, f,
                      indent=1)


if __name__ == "__main__":
    main()
