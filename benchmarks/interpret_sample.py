#!/usr/bin/python3
"""How the answers of a run change when only a sample of the cells is interpreted
(--interpret-cells N), against the same model interpreting every cell.

    /usr/bin/python3 benchmarks/interpret_sample.py --binary build/examples/velten_pipeline \
        --model /tmp/exsal_c20k/model.exsal --expression ../bench_data/c20k_g20k_csr.h5ad \
        --gene-sets $GMT --group-column cell_type --sizes 1000,2000,5000,10000 --work /tmp/exsal_sample

Runs the pipeline once with every cell and once per size (all with --model-in, so the model is the
same), then compares, per size:
  - group_programmes.csv: per group, how many of the all-cell run's first 5 sets ranked "higher"
    are among the sample's first 5 (top-5 overlap), and the Spearman correlation of the set scores
    over all (group, set) pairs;
  - unit_gene_sets.csv: the Spearman correlation of the impacts and the share of (unit, set) pairs
    whose call (q <= 0.05) agrees;
  - the interpretation's wall time from run.json.
Prints one JSON line per size. Needs only the Python standard library.
"""

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5 if va > 0 and vb > 0 else float("nan")


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run(args, out, size):
    cmd = [args.binary, "--model-in", args.model, "--expression", args.expression, "--gene-sets", args.gene_sets,
           "--group-column", args.group_column, "--out", out, "--force", "--quiet"]
    cmd += shlex.split(args.extra)
    if size:
        cmd += ["--interpret-cells", str(size)]
    subprocess.run(cmd, check=True)
    with open(os.path.join(out, "run.json")) as f:
        return json.load(f)["timings_seconds"]["interpret"]


def compare(full_dir, sample_dir):
    def programmes(d):
        rows = read(os.path.join(d, "group_programmes.csv"))
        top = {}
        for r in rows:
            if r["direction"] == "higher" and r["rank"] not in ("", "0", "NA") and int(r["rank"]) <= 5:
                top.setdefault(r["group"], set()).add(r["gene_set"])
        return {(r["group"], r["gene_set"]): float(r["score"]) for r in rows}, top

    fs, ft = programmes(full_dir)
    ss, st = programmes(sample_dir)
    keys = sorted(set(fs) & set(ss))
    overlap = {g: len(ft[g] & st.get(g, set())) for g in sorted(ft)}
    uf = {(r["unit"], r["gene_set"]): r for r in read(os.path.join(full_dir, "unit_gene_sets.csv"))}
    us = {(r["unit"], r["gene_set"]): r for r in read(os.path.join(sample_dir, "unit_gene_sets.csv"))}
    ukeys = sorted(set(uf) & set(us))

    def called(r):
        return r["q_value"] not in ("", "NA") and float(r["q_value"]) <= 0.05

    return {
        "top5_overlap_per_group": overlap,
        "top5_overlap_mean": sum(overlap.values()) / max(1, len(overlap)),
        "programme_score_spearman": spearman([fs[k] for k in keys], [ss[k] for k in keys]),
        "impact_spearman": spearman([float(uf[k]["impact"]) for k in ukeys], [float(us[k]["impact"]) for k in ukeys]),
        "unit_set_call_agreement": sum(called(uf[k]) == called(us[k]) for k in ukeys) / max(1, len(ukeys)),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("binary", "model", "expression", "gene-sets", "work"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--group-column", default="cluster")
    p.add_argument("--sizes", default="1000,2000,5000,10000")
    p.add_argument("--extra", default="", help="more options for every run, e.g. \"--layer raw\"")
    args = p.parse_args()
    full = os.path.join(args.work, "all")
    seconds = run(args, full, 0)
    print(json.dumps({"cells": "all", "interpret_s": round(seconds, 1)}), flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        out = os.path.join(args.work, "n%d" % size)
        seconds = run(args, out, size)
        line = {"cells": size, "interpret_s": round(seconds, 1)}
        line.update(compare(full, out))
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
