#!/usr/bin/python3
"""Writes a synthetic single-cell count matrix as an AnnData .h5ad (anndata >= 0.8 layout), and
optionally the same data as a 10x MTX folder and as a dense CSV table, for the reader and memory
benchmarks in benchmarks/README.md ("Reading single-cell formats and peak memory").

    /usr/bin/python3 benchmarks/formats/make_h5ad.py --cells 20000 --genes 20000 --density 0.05 \
        --gmt /work/shared/data/h.all.v7.0.symbols.gmt --out /work/bench_data/c20k_csr.h5ad
        [--layout csr|csc|dense] [--seed 1] [--mtx DIR] [--csv FILE] [--verify]

The data (deterministic for the same options; blocks of cells are drawn from their own seeded
streams, so the output does not depend on memory or threads):
  - genes: the distinct symbols of --gmt in order of first appearance, then "GENE00001", ... up to
    --genes (the first --genes symbols when the GMT has more);
  - cells "cell000000", ... with an obs column `cell_type` (categorical, 8 groups "type1".."type8"
    of unequal sizes, 25 % down to 4 %);
  - each gene is non-zero in a cell with a gene-specific probability (log-normal spread around
    --density); group k (k = 0..7) has genes k*200 .. k*200+199 (the first Hallmark sets'
    genes) non-zero 3x as often and with 4x the rate, and each cell's probabilities are scaled so
    that a cell has on average density x genes non-zeros;
  - a stored value is 1 + Poisson(rate of the gene), so stored values are never zero; X is float32.

Memory: the matrix is never held whole twice. A first pass draws only the non-zero pattern block
by block (500 cells or fewer) to count the values per cell and per gene (so datasets are created at
their final size, chunked like anndata 0.8 writes them); the second pass redraws the same blocks
with their values and writes each one as it comes. A CSC file is the exception: its arrays are
filled in memory (one copy, nnz x 8 bytes) and written at the end.

--verify reads the file back with anndata.read_h5ad (and the MTX folder with scipy.io.mmread) and
checks it against the generated matrix held in memory: for small files only.

Needs numpy and h5py (Debian: /usr/bin/python3 with python3-numpy, python3-h5py); --verify also
anndata, pandas and scipy.
"""

import argparse
import os
import sys
import time

import h5py
import numpy as np

N_GROUPS = 8
GROUP_SHARES = np.array([0.25, 0.20, 0.15, 0.12, 0.10, 0.08, 0.06, 0.04])
BLOCK_GENES = 200          # genes raised per group
BLOCK_P_FACTOR = 3.0       # how much more often a group's block genes are non-zero
BLOCK_RATE_FACTOR = 4.0    # and how much larger their values are
MAX_BLOCK_ELEMENTS = 10_000_000  # cells x genes drawn at once


def gmt_genes(path):
    seen, out = set(), []
    with open(path) as f:
        for line in f:
            for g in line.rstrip("\r\n").split("\t")[2:]:
                if g and g not in seen:
                    seen.add(g)
                    out.append(g)
    return out


class Synthetic:
    """The data: parameters drawn once, then cells block by block."""

    def __init__(self, cells, genes, density, seed, gmt):
        if not 0.0 < density <= 1.0:
            sys.exit("--density must be in (0, 1]")
        self.n_cells, self.n_genes, self.density, self.seed = cells, genes, density, seed
        real = gmt_genes(gmt) if gmt else []
        real = real[:genes]
        self.n_real = len(real)
        width = len(str(genes))
        self.gene_names = real + ["GENE%0*d" % (max(5, width), i + 1) for i in range(genes - len(real))]
        self.cell_names = ["cell%06d" % i for i in range(cells)]
        self.categories = ["type%d" % (k + 1) for k in range(N_GROUPS)]

        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0])))
        self.types = rng.choice(N_GROUPS, size=cells, p=GROUP_SHARES).astype(np.int8)
        weight = rng.lognormal(0.0, 0.8, size=genes)
        weight /= weight.mean()
        rate = rng.gamma(2.0, 1.0, size=genes)
        # Per group: probability of a non-zero and Poisson rate, genes in columns.
        self.p = np.empty((N_GROUPS, genes), dtype=np.float32)
        self.rate = np.empty((N_GROUPS, genes), dtype=np.float64)
        block_span = self.n_real if self.n_real >= BLOCK_GENES else genes
        for k in range(N_GROUPS):
            p = weight.copy()
            r = rate.copy()
            lo = (k * BLOCK_GENES) % max(block_span, 1)
            hi = min(lo + BLOCK_GENES, genes)
            p[lo:hi] *= BLOCK_P_FACTOR
            r[lo:hi] *= BLOCK_RATE_FACTOR
            p *= density * genes / p.sum()
            for _ in range(20):  # clip at 1 and spread the excess over the others
                over = p > 1.0
                if not over.any():
                    break
                p[over] = 1.0
                free = ~over
                p[free] *= (density * genes - over.sum()) / p[free].sum()
            self.p[k] = np.minimum(p, 1.0)
            self.rate[k] = r
        self.block_cells = max(1, min(500, MAX_BLOCK_ELEMENTS // max(genes, 1)))

    def blocks(self, with_values=True):
        """Yields (first cell, cell count, per-cell counts, rows, genes, values) per block; rows are
        0-based within the block, genes ascending within a cell; values None without with_values."""
        for b, c0 in enumerate(range(0, self.n_cells, self.block_cells)):
            n = min(self.block_cells, self.n_cells - c0)
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, 1, b])))
            t = self.types[c0:c0 + n].astype(np.intp)
            u = rng.random((n, self.n_genes), dtype=np.float32)
            mask = u < self.p[t]
            del u
            counts = mask.sum(axis=1, dtype=np.int64)
            if not with_values:
                yield c0, n, counts, None, mask.sum(axis=0, dtype=np.int64), None
                continue
            rows, cols = np.nonzero(mask)
            del mask
            lam = self.rate[t[rows], cols]
            vals = (1.0 + rng.poisson(lam)).astype(np.float32)
            yield c0, n, counts, rows, cols.astype(np.int32), vals

    def count(self):
        per_cell = np.zeros(self.n_cells, dtype=np.int64)
        per_gene = np.zeros(self.n_genes, dtype=np.int64)
        for c0, n, counts, _, gene_counts, _ in self.blocks(with_values=False):
            per_cell[c0:c0 + n] = counts
            per_gene += gene_counts
        return per_cell, per_gene


# --- h5ad (anndata >= 0.8 layout, as anndata 0.8.0 writes it) -----------------------------------

def encoding(obj, kind, version):
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


def string_array(group, name, values):
    d = group.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())
    encoding(d, "string-array", "0.2.0")


def write_frames(f, s):
    obs = f.create_group("obs")
    encoding(obs, "dataframe", "0.2.0")
    obs.attrs["_index"] = "_index"
    obs.attrs["column-order"] = np.array(["cell_type"], dtype=object)
    string_array(obs, "_index", s.cell_names)
    ct = obs.create_group("cell_type")
    encoding(ct, "categorical", "0.2.0")
    ct.attrs["ordered"] = False
    string_array(ct, "categories", s.categories)
    codes = ct.create_dataset("codes", data=s.types)
    encoding(codes, "array", "0.2.0")
    var = f.create_group("var")
    encoding(var, "dataframe", "0.2.0")
    var.attrs["_index"] = "_index"
    var.attrs["column-order"] = np.array([], dtype=np.float64)
    string_array(var, "_index", s.gene_names)
    for name in ("layers", "obsm", "obsp", "uns", "varm", "varp"):
        encoding(f.create_group(name), "dict", "0.1.0")


def sparse_dataset(g, name, size, dtype):
    # anndata 0.8 writes sparse arrays resizable (maxshape None) with h5py's automatic chunks.
    return g.create_dataset(name, shape=(size,), dtype=dtype, maxshape=(None,), chunks=True if size else None)


def index_dtype(n):
    return np.int32 if n < 2**31 else np.int64


def write_h5ad(path, s, layout, per_cell, per_gene, sinks):
    nnz = int(per_cell.sum())
    tmp = path + ".part"
    with h5py.File(tmp, "w") as f:
        encoding(f, "anndata", "0.1.0")
        if layout == "dense":
            x = f.create_dataset("X", shape=(s.n_cells, s.n_genes), dtype=np.float32)
            encoding(x, "array", "0.2.0")
        else:
            x = f.create_group("X")
            encoding(x, layout + "_matrix", "0.1.0")
            x.attrs["shape"] = np.array([s.n_cells, s.n_genes], dtype=np.int64)
            major = per_cell if layout == "csr" else per_gene
            idt = index_dtype(max(nnz, s.n_cells, s.n_genes))
            indptr = np.zeros(len(major) + 1, dtype=np.int64)
            np.cumsum(major, out=indptr[1:])
            x.create_dataset("indptr", data=indptr.astype(idt), maxshape=(None,), chunks=True)
            data = sparse_dataset(x, "data", nnz, np.float32)
            indices = sparse_dataset(x, "indices", nnz, idt)
            if layout == "csc":
                csc_idx = np.empty(nnz, dtype=idt)
                csc_val = np.empty(nnz, dtype=np.float32)
                next_free = indptr[:-1].copy()
        at = 0
        for c0, n, counts, rows, cols, vals in s.blocks():
            m = len(vals)
            if layout == "csr":
                data[at:at + m] = vals
                indices[at:at + m] = cols
            elif layout == "csc":
                order = np.argsort(cols, kind="stable")  # by gene, cells ascending within a gene
                g_sorted = cols[order]
                per = np.bincount(g_sorted, minlength=s.n_genes)
                starts = np.zeros(s.n_genes, dtype=np.int64)
                np.cumsum(per[:-1], out=starts[1:])
                rank = np.arange(m, dtype=np.int64) - starts[g_sorted]
                pos = next_free[g_sorted] + rank
                csc_idx[pos] = (rows[order] + c0).astype(idt)
                csc_val[pos] = vals[order]
                next_free += per
            else:
                block = np.zeros((n, s.n_genes), dtype=np.float32)
                block[rows, cols] = vals
                x[c0:c0 + n, :] = block
            for sink in sinks:
                sink.block(c0, n, rows, cols, vals)
            at += m
        if layout == "csc":
            data[:] = csc_val
            indices[:] = csc_idx
        write_frames(f, s)
    os.replace(tmp, path)
    return nnz


# --- 10x MTX folder and dense CSV, written from the same blocks --------------------------------

class MtxSink:
    """matrix.mtx (features x barcodes, 1-based, column by column as Cell Ranger writes it),
    features.tsv (id, name, "Gene Expression"), barcodes.tsv."""

    def __init__(self, folder, s, nnz):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "features.tsv"), "w") as f:
            for i, g in enumerate(s.gene_names):
                f.write("ID%08d\t%s\tGene Expression\n" % (i + 1, g))
        with open(os.path.join(folder, "barcodes.tsv"), "w") as f:
            f.write("\n".join(s.cell_names) + "\n")
        self.f = open(os.path.join(folder, "matrix.mtx"), "w")
        self.f.write("%%MatrixMarket matrix coordinate integer general\n")
        self.f.write('%metadata_json: {"software_version": "exsal benchmarks/formats/make_h5ad.py"}\n')
        self.f.write("%d %d %d\n" % (s.n_genes, s.n_cells, nnz))

    def block(self, c0, n, rows, cols, vals):
        if len(vals) == 0:
            return
        a = np.empty((len(vals), 3), dtype=np.int64)
        a[:, 0] = cols + 1
        a[:, 1] = rows + c0 + 1
        a[:, 2] = vals
        self.f.write(("%d %d %d\n" * len(vals)) % tuple(a.ravel()))

    def close(self):
        self.f.close()


class CsvSink:
    """Cells as rows: sample,cluster,GENE... (the layout of the reference and of bench_reader)."""

    def __init__(self, path, s):
        self.s = s
        self.f = open(path, "w")
        self.f.write("sample,cluster," + ",".join(s.gene_names) + "\n")
        self.table = np.array([str(i) for i in range(4096)], dtype=object)

    def block(self, c0, n, rows, cols, vals):
        dense = np.zeros((n, self.s.n_genes), dtype=np.int64)
        dense[rows, cols] = vals
        out = []
        for r in range(n):
            row = dense[r]
            text = ",".join(self.table[row]) if row.max(initial=0) < len(self.table) else ",".join(map(str, row))
            c = c0 + r
            out.append("%s,%s,%s\n" % (self.s.cell_names[c], self.s.categories[self.s.types[c]], text))
        self.f.write("".join(out))

    def close(self):
        self.f.close()


def verify(args, s, nnz):
    import anndata
    import scipy.io
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for c0, n, counts, r, c, v in s.blocks():
        rows.append(r + c0)
        cols.append(c)
        vals.append(v)
    want = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(s.n_cells, s.n_genes), dtype=np.float32)
    a = anndata.read_h5ad(args.out)
    x = a.X if isinstance(a.X, np.ndarray) else a.X.tocsr()
    got = sp.csr_matrix(x)
    assert a.shape == (s.n_cells, s.n_genes), a.shape
    assert got.nnz == want.nnz == nnz, (got.nnz, want.nnz, nnz)
    assert (got != want).nnz == 0, "X differs"
    assert list(a.obs_names) == s.cell_names and list(a.var_names) == s.gene_names
    assert str(a.obs["cell_type"].dtype) == "category"
    assert list(a.obs["cell_type"]) == [s.categories[t] for t in s.types]
    print("verified %s with anndata %s: %d x %d, %d non-zeros, X (%s) and obs/var as generated"
          % (args.out, anndata.__version__, s.n_cells, s.n_genes, nnz, type(a.X).__name__))
    if args.mtx:
        m = scipy.io.mmread(os.path.join(args.mtx, "matrix.mtx")).T.tocsr()
        assert (m.astype(np.float32) != want).nnz == 0, "MTX differs"
        print("verified %s with scipy.io.mmread" % args.mtx)
    if args.csv:
        import pandas as pd
        t = pd.read_csv(args.csv, index_col=0)
        assert list(t.index) == s.cell_names and list(t.columns[1:]) == s.gene_names
        assert (t.iloc[:, 1:].to_numpy(np.float32) == want.toarray()).all(), "CSV differs"
        print("verified %s with pandas.read_csv" % args.csv)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, required=True)
    ap.add_argument("--genes", type=int, required=True)
    ap.add_argument("--density", type=float, default=0.05, help="fraction of non-zero values (default 0.05)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gmt", default="", help="gene sets whose symbols name the first genes")
    ap.add_argument("--out", required=True, help="the .h5ad file")
    ap.add_argument("--layout", choices=["csr", "csc", "dense"], default="csr")
    ap.add_argument("--mtx", default="", help="also write the data as a 10x MTX folder here")
    ap.add_argument("--csv", default="", help="also write the data as a dense CSV table (cells as rows) here")
    ap.add_argument("--verify", action="store_true", help="read the files back and compare (small data only)")
    args = ap.parse_args()
    if args.layout == "dense" and args.cells * args.genes > 500_000_000:
        sys.exit("--layout dense is for small data (at most 5e8 values)")

    t0 = time.time()
    s = Synthetic(args.cells, args.genes, args.density, args.seed, args.gmt)
    per_cell, per_gene = s.count()
    nnz = int(per_cell.sum())
    sinks = []
    if args.mtx:
        sinks.append(MtxSink(args.mtx, s, nnz))
    if args.csv:
        sinks.append(CsvSink(args.csv, s))
    write_h5ad(args.out, s, args.layout, per_cell, per_gene, sinks)
    for sink in sinks:
        sink.close()
    print("%s: %d cells x %d genes (%d Hallmark/GMT symbols), %s, %d non-zeros (density %.4f), %.1f MB, %.1f s"
          % (args.out, s.n_cells, s.n_genes, s.n_real, args.layout, nnz, nnz / (s.n_cells * s.n_genes),
             os.path.getsize(args.out) / 1e6, time.time() - t0))
    if args.verify:
        verify(args, s, nnz)


if __name__ == "__main__":
    main()
