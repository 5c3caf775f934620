#!/usr/bin/python3
"""Side-by-side timings of exsal and the PyTorch reference on the same shapes, in one run.

Runs the two implementations alternately (several repetitions, medians), then exsal with 1 and
2 threads next to Eigen's own GEMM with 1 and 2 threads on the products of one training step (the
scaling ceiling of the machine), the GEMM-only roofline, and the expression reader against
pandas.read_csv. Prints a
Markdown table and, with --json, writes every raw measurement.

  benchmarks/compare.py [--build build-bench] [--cells 2000 --genes 4000 --epochs 3 --batch 128]
                        [--threads 2] [--reps 3] [--csv PATH] [--json out.json]

Timings are only meaningful on a quiet machine: the script prints the load average before and
after, and medians damp (but do not remove) the effect of concurrent load.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "torch_reference.py")
HSMM = os.path.join(ROOT, "..", "shared", "data", "hsmm_trapnell2014_fpkm.csv.gz")

PANDAS_SNIPPET = r"""
import json, sys, time
import pandas as pd
path, reps = sys.argv[1], int(sys.argv[2])
t = []
for _ in range(reps):
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    t.append(time.perf_counter() - t0)
print(json.dumps({"impl": "pandas", "pandas": pd.__version__, "rows": df.shape[0], "cols": df.shape[1],
                  "read_s": sorted(t)[len(t) // 2], "read_min_s": min(t)}))
"""


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def load():
    return os.getloadavg()[0]


def med(rows, key):
    vals = [float(r[key]) for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    p.add_argument("--cells", type=int, default=2000)
    p.add_argument("--genes", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--csv", default=HSMM, help="expression table for the reader comparison")
    p.add_argument("--reader-reps", type=int, default=5)
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--skip-reader", action="store_true")
    p.add_argument("--json", help="write all raw measurements here")
    a = p.parse_args()

    bench = os.path.join(a.build, "benchmarks", "bench_autoencoder")
    bench_reader = os.path.join(a.build, "benchmarks", "bench_reader")
    shape = ["--cells", str(a.cells), "--genes", str(a.genes), "--epochs", str(a.epochs),
             "--batch", str(a.batch), "--seed", str(a.seed)]
    raw = {"load_before": load(), "shape": vars(a)}
    print(f"# load average before: {raw['load_before']:.2f}", file=sys.stderr)

    # 1. exsal and the reference, alternating, at the requested thread count.
    ours, ref = [], []
    for r in range(a.reps):
        ours.append(run_json([bench, *shape, "--threads", str(a.threads), "--mode", "all"]))
        print(f"# exsal     rep {r + 1}: {ours[-1]}", file=sys.stderr)
        if not a.skip_reference:
            ref.append(run_json(["/usr/bin/python3", REFERENCE, *shape, "--threads", str(a.threads)]))
            print(f"# reference rep {r + 1}: {ref[-1]}", file=sys.stderr)
    raw["exsal"], raw["reference"] = ours, ref

    # 2. thread scaling of exsal: 1 and 2 threads alternating (training and saliency), and the
    #    scaling of Eigen's own GEMM on the products of one step (the ceiling on this machine).
    one, two, gemm1, gemm2 = [], [], [], []
    for r in range(a.reps):
        one.append(run_json([bench, *shape, "--threads", "1", "--mode", "all"]))
        two.append(run_json([bench, *shape, "--threads", "2", "--mode", "all"]))
        gemm1.append(run_json([bench, *shape, "--threads", "1", "--mode", "roofline"]))
        gemm2.append(run_json([bench, *shape, "--threads", "2", "--mode", "roofline"]))
        print(f"# threads 1/2 rep {r + 1}: train {one[-1].get('train_s')} / {two[-1].get('train_s')}, saliency "
              f"{one[-1].get('saliency_s')} / {two[-1].get('saliency_s')}, GEMM step "
              f"{gemm1[-1].get('gemm_eigen_ms')} / {gemm2[-1].get('gemm_eigen_ms')} ms", file=sys.stderr)
    raw["threads1"], raw["threads2"], raw["gemm_threads1"], raw["gemm_threads2"] = one, two, gemm1, gemm2

    # 3. the reader against pandas.read_csv, on the file as given and on a decompressed copy.
    reader = []
    if not a.skip_reader:
        tmp = tempfile.mkdtemp(prefix="exsal_bench_")
        files = [a.csv]
        if a.csv.endswith(".gz"):
            plain = os.path.join(tmp, os.path.basename(a.csv)[:-3])
            subprocess.run(f"gzip -dc '{a.csv}' > '{plain}'", shell=True, check=True)
            files.append(plain)
        for f in files:
            e, pd = [], []
            for r in range(a.reps):
                e.append(run_json([bench_reader, "--file", f, "--reps", str(a.reader_reps)]))
                pd.append(run_json(["/usr/bin/python3", "-c", PANDAS_SNIPPET, f, str(a.reader_reps)]))
            reader.append({"file": f, "bytes": os.path.getsize(f), "exsal": e, "pandas": pd})
            print(f"# reader {f}: exsal {med(e, 'read_s'):.4f} s, pandas {med(pd, 'read_s'):.4f} s", file=sys.stderr)
        shutil.rmtree(tmp)
    raw["reader"] = reader
    raw["load_after"] = load()
    print(f"# load average after: {raw['load_after']:.2f}", file=sys.stderr)

    # Table.
    def ratio(x, y):
        return x / y if y else float("nan")

    rows = []
    o_train, o_sal = med(ours, "train_s"), med(ours, "saliency_s")
    rows.append(("simd / threads", f"{ours[0].get('simd')} / {a.threads}", "", ""))
    if ref:
        r_train, r_sal = med(ref, "train_s"), med(ref, "saliency_s")
        rows.append(("training s (median)", f"{o_train:.3f}", f"{r_train:.3f}", f"{ratio(r_train, o_train):.2f}x"))
        rows.append(("training cells/s", f"{med(ours, 'train_cells_per_s'):.0f}", f"{med(ref, 'train_cells_per_s'):.0f}",
                     f"{ratio(med(ours, 'train_cells_per_s'), med(ref, 'train_cells_per_s')):.2f}x"))
        if any("saliency_s" in o for o in ours):
            rows.append(("guided saliency, 64 units, s", f"{o_sal:.3f}", f"{r_sal:.3f}", f"{ratio(r_sal, o_sal):.2f}x"))
        rows.append(("final loss (last batch)", f"{med(ours, 'final_loss'):.4f}", f"{med(ref, 'final_loss'):.4f}", ""))
    rows.append(("step ms (median, full batch)", f"{med(ours, 'step_ms'):.2f}", "", ""))
    rows.append(("GEMM-only step ms", f"{med(ours, 'gemm_step_ms'):.2f}", "", ""))
    rows.append(("roofline fraction (GEMM / step)", f"{med(ours, 'roofline_fraction'):.2f}", "", ""))
    t1, t2 = med(one, "train_s"), med(two, "train_s")
    rows.append(("training 1 thread / 2 threads s", f"{t1:.3f} / {t2:.3f}", "", f"{ratio(t1, t2):.2f}x"))
    if any("saliency_s" in o for o in one):
        s1, s2 = med(one, "saliency_s"), med(two, "saliency_s")
        rows.append(("saliency 1 thread / 2 threads s", f"{s1:.3f} / {s2:.3f}", "", f"{ratio(s1, s2):.2f}x"))
    g1, g2 = med(gemm1, "gemm_eigen_ms"), med(gemm2, "gemm_eigen_ms")
    rows.append(("Eigen GEMM of one step, 1 thread / 2 threads ms", f"{g1:.2f} / {g2:.2f}", "", f"{ratio(g1, g2):.2f}x"))
    for rd in reader:
        e, pd = med(rd["exsal"], "read_s"), med(rd["pandas"], "read_s")
        name = os.path.basename(rd["file"])
        rows.append((f"read {name} ({rd['bytes'] / 1e6:.1f} MB) s", f"{e:.4f}", f"pandas {pd:.4f}", f"{ratio(pd, e):.2f}x"))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"Machine: {cpu}, {os.cpu_count()} cores; float; exsal built with "
          f"SIMD {ours[0].get('simd')}; {a.reps} repetitions, medians.\n")
    print(f"| {a.cells} cells x {a.genes} genes, batch {a.batch}, {a.epochs} epochs | exsal | reference | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nload average before/after: {raw['load_before']:.2f} / {raw['load_after']:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
