#!/usr/bin/python3
"""Expression baseline for group programmes: what a gene set's plain expression says, without a model.

Every model answer ("gene set S is higher in group G") is held against this baseline:

  1. log1p of the expression (skipped with --no-log, for input that is already log-normalised);
  2. z-score per gene over all cells (genes that are constant over all cells are left out);
  3. per cell and gene set, the mean z-score over the set's genes present in the data (symbols
     compared upper-case; sets with fewer than --min-genes genes present are skipped, like the
     pipeline's --min-genes, default 10);
  4. per group, group versus the rest (and for every --compare A:B, A versus B only): Cohen's d
     with the pooled standard deviation (effect_size) and the difference of the means
     (mean_difference); direction "higher" when d > 0, otherwise "lower";
  5. ranks within each group and direction: among the "higher" sets rank 1 = largest d (the
     strongest set higher in the group), among the "lower" sets rank 1 = most negative d.

Input layout: `sample,cluster,GENE1,GENE2,...` with one row per cell (.csv or .csv.gz). Output CSV
columns: group, gene_set, direction, effect_size, mean_difference, rank (A-versus-B rows have the
group label "A_vs_B").

  benchmarks/expression_baseline.py --expression hsmm.csv.gz --gene-sets h.all.v6.2.symbols.gmt \\
      --gene-set-prefix HALLMARK_ [--no-log] [--min-genes 10] [--compare 0h:72h] [--out baseline.csv]

As a module: baseline_programmes(expression, groups, gmt_path, ...) returns the same table as a
pandas.DataFrame (see its docstring). Only the standard library, numpy and pandas are used.
"""
import argparse
import gzip
import math
import sys

import numpy as np
import pandas as pd

COLUMNS = ["group", "gene_set", "direction", "effect_size", "mean_difference", "rank"]


def read_gmt(path, prefix=None):
    """Gene sets of a GMT file as an ordered list of (name, description, [UPPER-CASE genes]).

    Lines are tab separated: name, description, genes. Empty lines are ignored; a repeated set name
    keeps its first occurrence; repeated genes within a set count once. With `prefix`, only sets
    whose name starts with it are kept."""
    sets, seen = [], set()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise ValueError(f"{path}:{line_no}: a GMT line needs at least a name and a description")
            name, desc = fields[0].strip(), fields[1]
            if prefix and not name.startswith(prefix):
                continue
            if name in seen:
                print(f"warning: {path}:{line_no}: gene set {name} repeated, the first one is kept", file=sys.stderr)
                continue
            seen.add(name)
            genes, in_set = [], set()
            for g in fields[2:]:
                g = g.strip().upper()
                if g and g not in in_set:
                    in_set.add(g)
                    genes.append(g)
            sets.append((name, desc, genes))
    return sets


def _read_header(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.readline().rstrip("\r\n").split(",")


def read_expression(path, id_column="sample", group_column="cluster", keep_genes=None):
    """Reads a cells-in-rows CSV(.gz) `sample,cluster,GENE...`.

    With `keep_genes` (a set of upper-case symbols) only those gene columns are parsed, which keeps
    large files (e.g. 271 x 14818) quick. Returns a DataFrame with the id and group columns (as
    strings) and the gene columns (float64)."""
    header = _read_header(path)
    for col in (id_column, group_column):
        if col not in header:
            raise ValueError(f"{path}: no column '{col}' in the header (expected 'sample,cluster,GENE1,...')")
    genes = [h for h in header if h not in (id_column, group_column)]
    if keep_genes is not None:
        genes = [h for h in genes if h.upper() in keep_genes]
    usecols = [id_column, group_column] + genes
    dtype = {id_column: str, group_column: str}
    dtype.update({g: np.float64 for g in genes})
    return pd.read_csv(path, usecols=usecols, dtype=dtype, keep_default_na=False, na_values=[""])


def _cohens_d(a, b):
    """Cohen's d of a versus b (pooled SD, ddof 1) and the difference of the means."""
    n1, n2 = len(a), len(b)
    diff = float(np.mean(a) - np.mean(b))
    if n1 + n2 <= 2:
        return float("nan"), diff
    v1 = float(np.var(a, ddof=1)) if n1 > 1 else 0.0
    v2 = float(np.var(b, ddof=1)) if n2 > 1 else 0.0
    pooled = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    if pooled == 0.0:
        return (0.0 if diff == 0.0 else math.copysign(float("inf"), diff)), diff
    return diff / pooled, diff


def _rank_block(rows):
    """Adds direction and rank to the rows of one group (list of dicts with effect_size)."""
    higher = [r for r in rows if r["effect_size"] > 0]
    lower = [r for r in rows if not r["effect_size"] > 0]
    for r in higher:
        r["direction"] = "higher"
    for r in lower:
        r["direction"] = "lower"
    # ties broken by name, so the table is deterministic
    higher.sort(key=lambda r: (-r["effect_size"], r["gene_set"]))
    lower.sort(key=lambda r: (r["effect_size"] if not math.isnan(r["effect_size"]) else math.inf, r["gene_set"]))
    for i, r in enumerate(higher, 1):
        r["rank"] = i
    for i, r in enumerate(lower, 1):
        r["rank"] = i
    return higher + lower


def set_scores(expression, gmt_path, gene_set_prefix=None, log=True, min_genes=10,
               id_column="sample", group_column="cluster"):
    """Per-cell set scores (mean z-scored log expression over the set's genes present).

    Returns (scores DataFrame cells x usable sets, labels array, info dict with 'n_genes' per set,
    'skipped' [(set, genes present)], 'constant_genes')."""
    sets = read_gmt(gmt_path, gene_set_prefix)
    if not sets:
        raise ValueError(f"{gmt_path}: no gene sets" + (f" starting with {gene_set_prefix}" if gene_set_prefix else ""))
    wanted = {g for _, _, genes in sets for g in genes}
    if isinstance(expression, pd.DataFrame):
        df = expression
        for col in (id_column, group_column):
            if col not in df.columns:
                raise ValueError(f"expression table has no column '{col}'")
    else:
        df = read_expression(expression, id_column, group_column, keep_genes=wanted)
    labels = df[group_column].astype(str).to_numpy()

    # upper-case symbol -> first column with it
    col_of = {}
    for c in df.columns:
        if c in (id_column, group_column):
            continue
        u = str(c).upper()
        if u in wanted and u not in col_of:
            col_of[u] = c
    used = list(col_of)
    x = df[[col_of[u] for u in used]].to_numpy(dtype=np.float64, copy=True) if used else np.zeros((len(df), 0))
    if not np.all(np.isfinite(x)):
        raise ValueError("expression values must be finite numbers")
    if log:
        if np.any(x < 0):
            raise ValueError("negative expression values cannot be log1p-transformed (use --no-log for log data)")
        np.log1p(x, out=x)
    mean = x.mean(axis=0)
    sd = x.std(axis=0)  # over all cells, ddof 0
    varying = sd > 0
    constant = [u for u, v in zip(used, varying) if not v]
    z = (x[:, varying] - mean[varying]) / sd[varying]
    index = {u: i for i, u in enumerate(u for u, v in zip(used, varying) if v)}

    names, n_genes, skipped, members = [], {}, [], []
    for name, _, genes in sets:
        cols = [index[g] for g in genes if g in index]
        if len(cols) < min_genes:
            skipped.append((name, len(cols)))
            continue
        names.append(name)
        n_genes[name] = len(cols)
        members.append(cols)
    m = np.zeros((z.shape[1], len(names)))
    for j, cols in enumerate(members):
        m[cols, j] = 1.0 / len(cols)
    scores = pd.DataFrame(z @ m, columns=names, index=df[id_column].astype(str).to_numpy())
    return scores, labels, {"n_genes": n_genes, "skipped": skipped, "constant_genes": constant}


def baseline_programmes(expression, groups=None, gmt_path=None, gene_set_prefix=None, log=True, min_genes=10,
                        compare=(), id_column="sample", group_column="cluster"):
    """The baseline table: one row per (group, gene set).

    expression: a path (.csv / .csv.gz, cells in rows, `sample,cluster,GENE...`) or a DataFrame of
                that layout (gene columns numeric).
    groups:     the group labels to report (each against all other cells); None = every label of
                the group column.
    gmt_path:   GMT file; gene_set_prefix keeps only sets whose name starts with it.
    log:        apply log1p first (False for already log-normalised input).
    min_genes:  sets with fewer genes present (and not constant) are skipped.
    compare:    pairs (A, B) or strings "A:B"; rows with group "A_vs_B" compare A with B only.

    Returns a DataFrame with columns group, gene_set, direction, effect_size, mean_difference, rank
    (see the module docstring). df.attrs holds 'n_genes' (genes used per set), 'skipped' (sets
    below min_genes) and 'constant_genes'."""
    if gmt_path is None:
        raise ValueError("gmt_path is required")
    scores, labels, info = set_scores(expression, gmt_path, gene_set_prefix, log, min_genes, id_column, group_column)
    if scores.shape[1] == 0:
        raise ValueError(f"no gene set has at least {min_genes} genes in the data")
    present = list(dict.fromkeys(labels))  # labels in order of first appearance
    if groups is None:
        groups = present
    elif isinstance(groups, str):
        groups = [groups]
    missing = [g for g in groups if g not in set(present)]
    if missing:
        raise ValueError(f"groups not in the data: {', '.join(missing)} (present: {', '.join(present)})")
    pairs = []
    for p in compare or ():
        a, b = (p.split(":", 1) if isinstance(p, str) else p)
        for g in (a, b):
            if g not in set(present):
                raise ValueError(f"--compare {a}:{b}: group '{g}' is not in the data")
        if a == b:
            raise ValueError(f"--compare {a}:{b}: the two groups must differ")
        pairs.append((a, b))

    s = scores.to_numpy()
    blocks = [(g, labels == g, labels != g) for g in groups]
    blocks += [(f"{a}_vs_{b}", labels == a, labels == b) for a, b in pairs]
    out = []
    for label, in_mask, out_mask in blocks:
        if not out_mask.any():
            print(f"warning: group {label} has no other cells to compare with; skipped", file=sys.stderr)
            continue
        rows = []
        for j, name in enumerate(scores.columns):
            d, diff = _cohens_d(s[in_mask, j], s[out_mask, j])
            rows.append({"group": label, "gene_set": name, "effect_size": d, "mean_difference": diff})
        out.extend(_rank_block(rows))
    df = pd.DataFrame(out, columns=COLUMNS)
    df.attrs.update(info)
    return df


def top_sets(table, group, k=3, direction="higher"):
    """Names of the k best-ranked sets of one group and direction."""
    t = table[(table["group"] == group) & (table["direction"] == direction)].sort_values("rank")
    return list(t["gene_set"].head(k))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expression", required=True, help="cells-in-rows CSV(.gz): sample,cluster,GENE1,...")
    p.add_argument("--gene-sets", required=True, help="GMT file")
    p.add_argument("--gene-set-prefix", default=None, help="use only sets whose name starts with this")
    p.add_argument("--no-log", action="store_true", help="input is already log-normalised: no log1p")
    p.add_argument("--min-genes", type=int, default=10, help="skip sets with fewer genes present (default 10)")
    p.add_argument("--group", action="append", default=None, help="report only this group (repeatable)")
    p.add_argument("--compare", action="append", default=[], metavar="A:B", help="group A versus group B (repeatable)")
    p.add_argument("--id-column", default="sample")
    p.add_argument("--group-column", default="cluster")
    p.add_argument("--top", type=int, default=3, help="sets printed per group and direction (default 3)")
    p.add_argument("--out", default=None, help="write the table to this CSV")
    a = p.parse_args(argv)
    if a.min_genes < 1:
        p.error("--min-genes must be >= 1")
    for c in a.compare:
        if ":" not in c:
            p.error(f"--compare expects A:B, got '{c}'")

    df = baseline_programmes(a.expression, a.group, a.gene_sets, a.gene_set_prefix, log=not a.no_log,
                             min_genes=a.min_genes, compare=a.compare, id_column=a.id_column,
                             group_column=a.group_column)
    n_sets = df["gene_set"].nunique()
    print(f"expression baseline: {n_sets} gene sets with >= {a.min_genes} genes present "
          f"({len(df.attrs['skipped'])} skipped), {'log1p, ' if not a.no_log else 'no log (input already log), '}"
          f"z-score per gene ({len(df.attrs['constant_genes'])} constant genes left out)")
    for g in dict.fromkeys(df["group"]):
        up = top_sets(df, g, a.top, "higher")
        down = top_sets(df, g, a.top, "lower")
        print(f"  {g}: higher {', '.join(up) or '-'} | lower {', '.join(down) or '-'}")
    if a.out:
        df.to_csv(a.out, index=False, float_format="%.6g")
        print(f"wrote {a.out} ({len(df)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
