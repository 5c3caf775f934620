#!/usr/bin/python3
"""Writes tests/fixtures/formats/: one small single-cell dataset in every layout a reader of
exsal must support (CSV, h5ad as written by anndata 0.8 / 0.7 / <= 0.6, 10x MTX and HDF5 of
Cell Ranger 2 and >= 3), the dataset itself as JSON, and broken files for the error paths.

Run with Debian's Python (numpy, pandas, scipy, h5py 3.7, anndata 0.8):

    /usr/bin/python3 scripts/make-format-fixtures.py

The folder is deleted and written again, README.md included. Everything is drawn from a fixed
seed and no file records a time (h5py datasets and, via hdf5_format, groups do not track
times; gzip headers get mtime 0), so two runs give byte-identical files with the same library
versions (not checked by the script: `git status` after a run shows any difference).

Every good file is read back here (anndata.read_h5ad for h5ad, h5py / scipy for 10x files)
and compared with the dataset; an assertion stops the script when one disagrees. CI does not
run this script: it uses the committed files.
"""

import contextlib
import gzip
import json
import shutil
import sys
import warnings
from pathlib import Path

import h5py
from h5py import h5g, h5p
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

import anndata as ad

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "formats"
SEED = 20240917

# ----------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------

# Symbol and Ensembl id (as used by 10x GRCh38 references; the ids are given for realism, the
# tests compare symbols). OR4F5 is the gene that no cell expresses.
GENES = [
    ("CD3E", "ENSG00000198851"), ("CD8A", "ENSG00000153563"), ("IL7R", "ENSG00000168685"),
    ("CCR7", "ENSG00000126353"), ("MS4A1", "ENSG00000156738"), ("CD79A", "ENSG00000105369"),
    ("CD19", "ENSG00000177455"), ("CD74", "ENSG00000019582"), ("HLA-DRA", "ENSG00000204287"),
    ("LYZ", "ENSG00000090382"), ("CD14", "ENSG00000170458"), ("S100A8", "ENSG00000143546"),
    ("S100A9", "ENSG00000163220"), ("FCGR3A", "ENSG00000203747"), ("CST3", "ENSG00000101439"),
    ("LST1", "ENSG00000204482"), ("NKG7", "ENSG00000105374"), ("GNLY", "ENSG00000115523"),
    ("PPBP", "ENSG00000163736"), ("HBB", "ENSG00000244734"), ("MKI67", "ENSG00000148773"),
    ("TOP2A", "ENSG00000131747"), ("ACTB", "ENSG00000075624"), ("GAPDH", "ENSG00000111640"),
    ("B2M", "ENSG00000166710"), ("FTL", "ENSG00000087086"), ("MALAT1", "ENSG00000251562"),
    ("PTPRC", "ENSG00000081237"), ("OR4F5", "ENSG00000186092"),
]
N_CELLS = 37
N_GENES = len(GENES)
SYMBOLS = [g[0] for g in GENES]
GENE_IDS = [g[1] for g in GENES]

GROUP_NAMES = ["B", "Mono", "T cell"]        # pandas' (sorted) category order
MARKERS = {"B": ["MS4A1", "CD79A", "CD19", "CD74", "HLA-DRA"],
           "Mono": ["LYZ", "CD14", "S100A8", "S100A9", "FCGR3A", "CST3", "LST1", "CD74", "HLA-DRA"],
           "T cell": ["CD3E", "CD8A", "IL7R", "CCR7", "NKG7", "GNLY"]}
HOUSEKEEPING = {"ACTB": 6.0, "B2M": 10.0, "FTL": 2.0, "MALAT1": 20.0, "GAPDH": 0.8, "PTPRC": 0.4}
DONORS = ["D1 Zürich", "D2 Zürich", "D3 Malmö"]   # non-ASCII on purpose (UTF-8 in every file)
PHASES = ["G1", "G2M", "S"]                         # legacy file only

ZERO_CELL = 7             # expresses nothing
ZERO_GENE = "OR4F5"       # expressed by no cell
UNLABELLED = [11, 30]     # cells without a group (empty in the CSV, NaN category, not in groups.csv)
BIG_CELL, BIG_GENE, BIG_VALUE = 3, "MALAT1", 2345
EXACT_CELL, EXACT_GENE, EXACT_VALUE = 20, "HBB", 16777215   # 2^24 - 1: exact in float32, 8 digits

# Gene subset kept in X of the "raw" files (scanpy's highly variable genes, after which X is
# scaled): every gene but the housekeeping ones, PPBP, LST1 and the all-zero gene.
SCALED_GENES = [s for s in SYMBOLS if s not in HOUSEKEEPING and s not in ("PPBP", "LST1", ZERO_GENE)]

# Two antibody-derived features that 10x files carry besides the genes; readers drop them.
ANTIBODIES = [("CD3", "CD3_TotalSeqB"), ("CD19", "CD19_TotalSeqB")]
ANTIBODY_AFTER = {"CD3": "HLA-DRA", "CD19": None}   # inserted after this gene (None: at the end)

GENOME = "GRCh38"

# HDF5 object formats of most files written here. The anndata 0.8 "main" file
# (anndata08_csr_f32.h5ad), the anndata <= 0.6 file and the two Cell Ranger files keep h5py's
# default ('earliest'), as their writers did; the others use the HDF5 1.10 formats (superblock
# 3, compact groups), which take 40 % less space for files this small and make the readers meet
# both.
LIBVER = "v110"


def make_barcodes(rng):
    bases = np.array(list("ACGT"))
    out = {"AAACCTGAGAAACCAT"}
    while len(out) < N_CELLS:
        out.add("".join(rng.choice(bases, 16)))
    return [b + "-1" for b in sorted(out)]


def make_dataset():
    rng = np.random.default_rng(SEED)
    cells = make_barcodes(rng)
    group_of = rng.choice(3, size=N_CELLS, p=[0.3, 0.3, 0.4])
    # Every group at least 8 cells, deterministically.
    counts_per = np.bincount(group_of, minlength=3)
    assert counts_per.min() >= 8, counts_per
    groups = [GROUP_NAMES[k] for k in group_of]
    for c in UNLABELLED:
        groups[c] = ""
    donors = [DONORS[k] for k in rng.choice(3, size=N_CELLS)]

    base = rng.lognormal(mean=-2.7, sigma=0.8, size=N_GENES)
    for s, m in HOUSEKEEPING.items():
        base[SYMBOLS.index(s)] = m
    size = rng.lognormal(mean=0.0, sigma=0.5, size=N_CELLS)
    mu = np.outer(size, base)
    for c in range(N_CELLS):
        for s in MARKERS[GROUP_NAMES[group_of[c]]]:
            mu[c, SYMBOLS.index(s)] *= 20.0
    r = 1.5                                                    # negative binomial dispersion
    counts = rng.negative_binomial(r, r / (r + mu)).astype(np.int64)
    counts[ZERO_CELL, :] = 0
    counts[:, SYMBOLS.index(ZERO_GENE)] = 0
    counts[BIG_CELL, SYMBOLS.index(BIG_GENE)] = BIG_VALUE
    counts[EXACT_CELL, SYMBOLS.index(EXACT_GENE)] = EXACT_VALUE

    zero_cells = np.flatnonzero(counts.sum(axis=1) == 0).tolist()
    zero_genes = np.flatnonzero(counts.sum(axis=0) == 0).tolist()
    assert zero_cells == [ZERO_CELL], zero_cells
    assert zero_genes == [SYMBOLS.index(ZERO_GENE)], zero_genes
    zero_fraction = float((counts == 0).mean())
    assert 0.62 <= zero_fraction <= 0.78, zero_fraction
    assert float(np.float32(EXACT_VALUE)) == EXACT_VALUE

    # Log-normalised (scanpy: normalize_total to 1e4, log1p), float32; the empty cell stays 0.
    totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    lognorm = np.log1p(np.divide(counts * 1e4, totals, out=np.zeros(counts.shape), where=totals > 0))
    lognorm = lognorm.astype(np.float32)
    # Scaled (scanpy: highly variable subset, scale(max_value=10)), float32.
    keep = [SYMBOLS.index(s) for s in SCALED_GENES]
    sub = lognorm[:, keep].astype(np.float64)
    scaled = (sub - sub.mean(axis=0)) / sub.std(axis=0, ddof=1)
    scaled = np.minimum(scaled, 10.0).astype(np.float32)

    # Per-cell antibody counts (10x files only).
    antibody_counts = rng.poisson(lam=[[60.0, 25.0]] * N_CELLS).astype(np.int64)
    for c in range(N_CELLS):
        if group_of[c] == 2:
            antibody_counts[c, 0] += 400
        if group_of[c] == 0:
            antibody_counts[c, 1] += 300

    cluster_id = [GROUP_NAMES.index(g) if g else -1 for g in groups]
    hashtag = [int(v) for v in rng.integers(1, 5, size=N_CELLS)]
    hashtag_na = [2, 17, 29]
    qc_pass = [bool(v) for v in rng.random(N_CELLS) < 0.85]
    qc_na = [5, 23]
    proliferating = counts[:, SYMBOLS.index("MKI67")] + counts[:, SYMBOLS.index("TOP2A")] > 0
    phase = ["G2M" if proliferating[c] else ("S" if c % 5 == 0 else "G1") for c in range(N_CELLS)]
    return dict(cells=cells, groups=groups, phase=phase, donors=donors, counts=counts, lognorm=lognorm,
                scaled=scaled, antibody_counts=antibody_counts, cluster_id=cluster_id,
                hashtag=hashtag, hashtag_na=hashtag_na, qc_pass=qc_pass, qc_na=qc_na,
                zero_fraction=zero_fraction)


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def hdf5_format(libver):
    """Inside: h5py.File creates files with `libver` (None: h5py's default, 'earliest', and
    nothing is changed) and records no times on groups or the root group. The 1.10 object
    headers store times on groups unless the creation property lists say not to, and h5py has
    no argument for that; datasets already have track_times=False by default."""
    if libver is None:
        yield
        return
    files_module = sys.modules[h5py.File.__module__]
    original_fcpl, original_group, original_file = files_module.make_fcpl, h5py.Group.create_group, h5py.File

    def make_fcpl(*args, **kw):
        plist = original_fcpl(*args, **kw) or h5p.create(h5p.FILE_CREATE)
        plist.set_obj_track_times(False)
        return plist

    def create_group(self, name, track_order=None):
        assert not track_order
        gcpl = h5p.create(h5p.GROUP_CREATE)
        gcpl.set_obj_track_times(False)
        name, lcpl = self._e(name, lcpl=True)
        assert b"/" not in name, name   # intermediate groups would get the default list
        return h5py.Group(h5g.create(self.id, name, lcpl=lcpl, gcpl=gcpl))

    class File(original_file):
        def __init__(self, *args, **kw):
            kw.setdefault("libver", libver)
            super().__init__(*args, **kw)

    files_module.make_fcpl, h5py.Group.create_group, h5py.File = make_fcpl, create_group, File
    try:
        yield
    finally:
        files_module.make_fcpl, h5py.Group.create_group, h5py.File = original_fcpl, original_group, original_file


def write_gz(path, text):
    """gzip without file name and with mtime 0, so the bytes depend on the text only."""
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as z:
            z.write(text.encode("utf-8"))


def write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def fixed_bytes(strings):
    """Fixed-length byte strings (numpy 'S'), UTF-8, as 10x and anndata <= 0.6 store them."""
    enc = [s.encode("utf-8") for s in strings]
    width = max(1, max(len(e) for e in enc))
    return np.array(enc, dtype=f"S{width}")


def obs_frame(d, nullable=False):
    cat = pd.Categorical([g if g else np.nan for g in d["groups"]], categories=GROUP_NAMES)
    obs = pd.DataFrame({"cluster": cat, "donor": np.array(d["donors"], dtype=object),
                        "cluster_id": np.array(d["cluster_id"], dtype=np.int64)},
                       index=pd.Index(d["cells"]))
    if nullable:
        h = pd.array(d["hashtag"], dtype="Int64")
        h[d["hashtag_na"]] = pd.NA
        q = pd.array(d["qc_pass"], dtype="boolean")
        q[d["qc_na"]] = pd.NA
        obs["hashtag"] = h
        obs["qc_pass"] = q
    return obs


def var_frame(symbols):
    ids = [GENE_IDS[SYMBOLS.index(s)] for s in symbols]
    return pd.DataFrame({"gene_ids": np.array(ids, dtype=object)}, index=pd.Index(symbols))


def write_anndata08(path, X, d, var_symbols=SYMBOLS, layers=None, raw=None, nullable=False,
                    compression=None, libver=LIBVER):
    """Writes with anndata 0.8's write_h5ad. Its string-to-categorical conversion is switched
    off, so "donor" stays a string-array column (anndata keeps a string column whose values are
    all distinct the same way). libver: see hdf5_format."""
    a = ad.AnnData(X=X, obs=obs_frame(d, nullable), var=var_frame(var_symbols), layers=layers,
                   dtype=X.dtype)
    if raw is not None:
        a.raw = ad.AnnData(X=raw, obs=a.obs[[]], var=var_frame(SYMBOLS), dtype=raw.dtype)
    original = ad.AnnData.strings_to_categoricals
    ad.AnnData.strings_to_categoricals = lambda self, df=None: None
    try:
        with hdf5_format(libver):
            a.write_h5ad(path, compression=compression)
    finally:
        ad.AnnData.strings_to_categoricals = original


def rewrite_sparse_index_dtype(path, group, dtype, libver=LIBVER):
    """Gives indices and indptr of the top-level sparse `group` the type `dtype` (scipy
    downcasts small index arrays to int32, so anndata cannot be made to write int64 ones). The
    file is copied object by object (H5Ocopy keeps types, attributes and filters) rather than
    edited in place, which would leave the deleted datasets' space in the file."""
    tmp = path.with_suffix(".tmp")
    with h5py.File(path, "r") as src, hdf5_format(libver), h5py.File(tmp, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for key in src:
            if key != group:
                src.copy(src[key], dst, name=key)
                continue
            g = dst.create_group(key)
            for k, v in src[key].attrs.items():
                g.attrs[k] = v
            for name, old in src[key].items():
                values = old[()].astype(dtype) if name in ("indices", "indptr") else old[()]
                new = g.create_dataset(name, data=values, track_times=False)
                for k, v in old.attrs.items():
                    new.attrs[k] = v
    tmp.replace(path)


def csr(counts, dtype, index_dtype=np.int32):
    m = sp.csr_matrix(counts.astype(dtype))
    m.indices = m.indices.astype(index_dtype)
    m.indptr = m.indptr.astype(index_dtype)
    return m


def to_dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def read_h5ad_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def check_obs(a, d, donors=True):
    assert list(a.obs_names) == d["cells"]
    got = [("" if pd.isna(v) else str(v)) for v in a.obs["cluster"]]
    assert got == d["groups"], (got, d["groups"])
    assert [int(v) for v in a.obs["cluster_id"]] == d["cluster_id"]
    if donors:
        assert [str(v) for v in a.obs["donor"]] == d["donors"]


def check_h5ad(path, d, x_expected, x_genes, layer=None, raw=None, donors=True):
    a = read_h5ad_quiet(path)
    check_obs(a, d, donors)
    assert list(a.var_names) == list(x_genes), (path, list(a.var_names))
    np.testing.assert_array_equal(to_dense(a.X), x_expected, err_msg=str(path))
    if layer is not None:
        name, expected = layer
        np.testing.assert_array_equal(to_dense(a.layers[name]), expected, err_msg=str(path))
    if raw is not None:
        assert list(a.raw.var_names) == SYMBOLS, path
        np.testing.assert_array_equal(to_dense(a.raw.X), raw, err_msg=str(path))
    return a


def describe_hdf5(path):
    """How the matrices of an HDF5 file are stored, for the README."""
    parts = []

    def comp(o):
        return (", " + o.compression) if o.compression else ""

    with h5py.File(path, "r") as f:
        for loc in ("X", "layers/counts", "raw/X", "raw.X", "matrix", GENOME):
            if loc not in f:
                continue
            o = f[loc]
            if isinstance(o, h5py.Dataset):
                parts.append("%s: dense %s%s" % (loc, o.dtype, comp(o)))
                continue
            kind = o.attrs.get("encoding-type", o.attrs.get("h5sparse_format", "CSC by barcode"))
            kind = {"csr_matrix": "CSR", "csc_matrix": "CSC", "csr": "CSR (h5sparse)"}.get(kind, kind)
            parts.append("%s: %s, data %s, indices %s, indptr %s%s" % (
                loc, kind, o["data"].dtype, o["indices"].dtype, o["indptr"].dtype, comp(o["data"])))
            if "shape" in o:
                parts[-1] += ", shape %s" % o["shape"].dtype
    with open(path, "rb") as raw:
        superblock = raw.read(9)[8]
    parts.append("superblock v%d" % superblock)
    return "; ".join(parts)


def sparse_dtypes(path, group):
    with h5py.File(path, "r") as f:
        g = f[group]
        if isinstance(g, h5py.Dataset):
            return (str(g.dtype), None)
        return (str(g["data"].dtype), str(g["indices"].dtype) + "/" + str(g["indptr"].dtype))


# ----------------------------------------------------------------------------------------------
# h5ad, anndata 0.8 (written by anndata)
# ----------------------------------------------------------------------------------------------

def make_anndata08(d, files):
    counts = d["counts"]
    X32 = counts.astype(np.float32)

    p = OUT / "anndata08_csr_f32.h5ad"
    write_anndata08(p, csr(counts, np.float32), d, nullable=True, libver=None)
    a = check_h5ad(p, d, X32, SYMBOLS)
    h = list(a.obs["hashtag"])
    assert all(pd.isna(h[i]) for i in d["hashtag_na"]) and h[0] == d["hashtag"][0]
    q = list(a.obs["qc_pass"])
    assert all(pd.isna(q[i]) for i in d["qc_na"])
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="counts", groups="obs/cluster",
                         tests="the common case; obs also has nullable-integer 'hashtag' and "
                               "nullable-boolean 'qc_pass' columns a reader must skip")

    p = OUT / "anndata08_csr_f64_i64.h5ad"
    write_anndata08(p, csr(counts, np.float64), d)
    rewrite_sparse_index_dtype(p, "X", np.int64)
    check_h5ad(p, d, counts.astype(np.float64), SYMBOLS)
    assert sparse_dtypes(p, "X") == ("float64", "int64/int64")
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad; indices/indptr rewritten as int64 by h5py)",
                         X="counts", groups="obs/cluster",
                         tests="float64 values, 64-bit indices and indptr")

    p = OUT / "anndata08_csr_i32.h5ad"
    write_anndata08(p, csr(counts, np.int32), d)
    check_h5ad(p, d, counts.astype(np.int32), SYMBOLS)
    assert sparse_dtypes(p, "X") == ("int32", "int32/int32")
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="counts", groups="obs/cluster",
                         tests="int32 values")

    p = OUT / "anndata08_csr_unsorted_indices.h5ad"
    m = csr(counts, np.float32)
    for c in range(N_CELLS):                       # reverse the genes within every cell
        lo, hi = m.indptr[c], m.indptr[c + 1]
        m.indices[lo:hi] = m.indices[lo:hi][::-1].copy()
        m.data[lo:hi] = m.data[lo:hi][::-1].copy()
    m.has_sorted_indices = False
    write_anndata08(p, m, d)
    with h5py.File(p, "r") as f:
        idx, ptr = f["X/indices"][()], f["X/indptr"][()]
        assert any(np.any(np.diff(idx[ptr[c]:ptr[c + 1]]) < 0) for c in range(N_CELLS)), "sorted?"
    check_h5ad(p, d, X32, SYMBOLS)
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="counts", groups="obs/cluster",
                         tests="valid but non-canonical CSR (scipy has_sorted_indices=False): a reader "
                               "must sort, not reject")

    p = OUT / "anndata08_csc_f32.h5ad"
    write_anndata08(p, sp.csc_matrix(X32), d)
    check_h5ad(p, d, X32, SYMBOLS)
    with h5py.File(p, "r") as f:
        assert f["X"].attrs["encoding-type"] == "csc_matrix"
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="counts", groups="obs/cluster",
                         tests="CSC (indptr over genes, indices = cells)")

    p = OUT / "anndata08_dense_f32_gzip.h5ad"
    write_anndata08(p, X32, d, compression="gzip")
    check_h5ad(p, d, X32, SYMBOLS)
    with h5py.File(p, "r") as f:
        assert f["X"].compression == "gzip" and f["X"].chunks is not None
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad, compression='gzip')", X="counts",
                         groups="obs/cluster", tests="dense X; every dataset gzip-compressed and chunked")

    p = OUT / "anndata08_dense_i64.h5ad"
    write_anndata08(p, counts.astype(np.int64), d)
    check_h5ad(p, d, counts, SYMBOLS)
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="counts", groups="obs/cluster",
                         tests="dense int64 values")

    p = OUT / "anndata08_layers_counts.h5ad"
    write_anndata08(p, csr(d["lognorm"], np.float32), d, layers={"counts": csr(counts, np.float32)})
    check_h5ad(p, d, d["lognorm"], SYMBOLS, layer=("counts", X32))
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="lognorm", layers={"counts": "counts"},
                         groups="obs/cluster",
                         tests="--layer counts gives the counts; X holds log1p(normalised) values")

    p = OUT / "anndata08_raw.h5ad"
    write_anndata08(p, d["scaled"], d, var_symbols=SCALED_GENES, raw=csr(counts, np.float32))
    check_h5ad(p, d, d["scaled"], SCALED_GENES, raw=X32)
    files[p.name] = dict(layout="anndata 0.8 (write_h5ad)", X="scaled", raw="counts", groups="obs/cluster",
                         tests="--layer raw gives all %d genes' counts from raw/X with the names in "
                               "raw/var; X has fewer genes and scaled values" % N_GENES)


# ----------------------------------------------------------------------------------------------
# h5ad, anndata 0.7 layout (written here with h5py)
# ----------------------------------------------------------------------------------------------

def vlen_strings(group, name, strings, **kw):
    return group.create_dataset(name, data=np.array(strings, dtype=object),
                                dtype=h5py.string_dtype("utf-8"), track_times=False, **kw)


def make_anndata07(d, files):
    p = OUT / "anndata07_csr_f32.h5ad"
    counts = d["counts"]
    m = csr(counts, np.float32)
    with hdf5_format(LIBVER), h5py.File(p, "w") as f:  # anndata 0.7: no attributes on the root
        x = f.create_group("X")
        x.attrs["encoding-type"] = "csr_matrix"
        x.attrs["encoding-version"] = "0.1.0"
        x.attrs["shape"] = np.array(counts.shape, dtype=np.int64)
        for name in ("data", "indices", "indptr"):
            x.create_dataset(name, data=getattr(m, name), track_times=False)
        for name in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
            f.create_group(name)

        obs = f.create_group("obs")
        obs.attrs["_index"] = "_index"
        obs.attrs["column-order"] = np.array(["cluster", "donor", "cluster_id"], dtype=object)
        obs.attrs["encoding-type"] = "dataframe"
        obs.attrs["encoding-version"] = "0.1.0"
        cats = obs.create_group("__categories")
        cd = vlen_strings(cats, "cluster", GROUP_NAMES)
        cd.attrs["ordered"] = np.bool_(False)
        vlen_strings(obs, "_index", d["cells"])
        codes = np.array([GROUP_NAMES.index(g) if g else -1 for g in d["groups"]], dtype=np.int8)
        c = obs.create_dataset("cluster", data=codes, track_times=False)
        c.attrs["categories"] = cd.ref                 # object reference to the categories
        vlen_strings(obs, "donor", d["donors"])        # a string column that stayed strings
        obs.create_dataset("cluster_id", data=np.array(d["cluster_id"], dtype=np.int64), track_times=False)

        var = f.create_group("var")
        var.attrs["_index"] = "_index"
        var.attrs["column-order"] = np.array(["gene_ids"], dtype=object)
        var.attrs["encoding-type"] = "dataframe"
        var.attrs["encoding-version"] = "0.1.0"
        vlen_strings(var, "_index", SYMBOLS)
        vlen_strings(var, "gene_ids", GENE_IDS)
    check_h5ad(p, d, counts.astype(np.float32), SYMBOLS)
    files[p.name] = dict(layout="anndata 0.7 (h5py, as anndata 0.7 wrote it)", X="counts",
                         groups="obs/cluster (int8 codes; attribute 'categories' = object reference to "
                                "obs/__categories/cluster)",
                         tests="0.7 dataframes: _index attribute, codes + referenced categories, no "
                               "encoding attributes on the root or on columns")


# ----------------------------------------------------------------------------------------------
# h5ad, anndata <= 0.6 layout (as scanpy's pbmc68k_reduced.h5ad)
# ----------------------------------------------------------------------------------------------

def make_legacy(d, files):
    p = OUT / "anndata06_legacy.h5ad"
    counts = d["counts"]
    m = csr(counts, np.float32)
    gz = dict(compression="gzip", compression_opts=4, track_times=False)
    cells = fixed_bytes(d["cells"])
    obs = np.zeros(N_CELLS, dtype=[("index", cells.dtype), ("cluster", "i1"), ("cluster_id", "<i8"),
                                   ("phase", "i1")])
    obs["index"] = cells
    obs["cluster"] = [GROUP_NAMES.index(g) if g else -1 for g in d["groups"]]
    obs["cluster_id"] = d["cluster_id"]
    # anndata 0.6 stored string columns as categoricals and could only write ASCII into its
    # fixed-length strings, so the non-ASCII "donor" column is left out; "phase" (as in
    # pbmc68k_reduced) is a second categorical a reader must not take for the groups.
    obs["phase"] = [PHASES.index(x) for x in d["phase"]]

    def var_records(symbols, with_ids):
        names = fixed_bytes(symbols)
        fields = [("index", names.dtype)]
        if with_ids:
            ids = fixed_bytes([GENE_IDS[SYMBOLS.index(s)] for s in symbols])
            fields.append(("gene_ids", ids.dtype))
        rec = np.zeros(len(symbols), dtype=fields)
        rec["index"] = names
        if with_ids:
            rec["gene_ids"] = ids
        return rec

    with h5py.File(p, "w") as f:
        f.create_dataset("X", data=d["scaled"], chunks=(N_CELLS, 4), **gz)
        f.create_dataset("obs", data=obs, chunks=(N_CELLS,), **gz)
        f.create_dataset("var", data=var_records(SCALED_GENES, True), chunks=(len(SCALED_GENES),), **gz)
        rx = f.create_group("raw.X")
        rx.attrs["h5sparse_format"] = "csr"
        rx.attrs["h5sparse_shape"] = np.array(counts.shape, dtype=np.int64)
        for name in ("data", "indices", "indptr"):
            a = getattr(m, name)
            rx.create_dataset(name, data=a, chunks=(len(a),), maxshape=(None,), **gz)
        f.create_dataset("raw.var", data=var_records(SYMBOLS, False), chunks=(N_GENES,), **gz)
        uns = f.create_group("uns")
        uns.create_dataset("cluster_categories", data=fixed_bytes(GROUP_NAMES), **gz)
        uns.create_dataset("phase_categories", data=fixed_bytes(PHASES), **gz)
    a = check_h5ad(p, d, d["scaled"], SCALED_GENES, raw=counts.astype(np.float32), donors=False)
    assert [str(v) for v in a.obs["phase"]] == d["phase"]
    files[p.name] = dict(layout="anndata <= 0.6 (h5py, conventions of scanpy's pbmc68k_reduced.h5ad)",
                         X="scaled", raw="counts",
                         groups="obs compound field 'cluster' (int8 codes, -1 = none) + uns/cluster_categories",
                         tests="compound obs/var with fixed-length 'index', categories in uns, raw.X / raw.var at "
                               "the top level; a second categorical 'phase'; no 'donor' (0.6 wrote ASCII only)")


# ----------------------------------------------------------------------------------------------
# 10x Genomics
# ----------------------------------------------------------------------------------------------

def tenx_features(d):
    """Features in file order: genes with the antibodies inserted; returns (ids, names, types,
    genomes, matrix features x cells)."""
    ids, names, types, genomes, rows = [], [], [], [], []
    ab_rows = {a[0]: d["antibody_counts"][:, k] for k, a in enumerate(ANTIBODIES)}

    def add_antibody(ab_id):
        ids.append(ab_id)
        names.append(dict(ANTIBODIES)[ab_id])
        types.append("Antibody Capture")
        genomes.append("")
        rows.append(ab_rows[ab_id])

    for g, s in enumerate(SYMBOLS):
        ids.append(GENE_IDS[g])
        names.append(s)
        types.append("Gene Expression")
        genomes.append(GENOME)
        rows.append(d["counts"][:, g])
        for ab_id, after in ANTIBODY_AFTER.items():
            if after == s:
                add_antibody(ab_id)
    for ab_id, after in ANTIBODY_AFTER.items():
        if after is None:
            add_antibody(ab_id)
    return ids, names, types, genomes, np.array(rows, dtype=np.int64)


def mtx_text(matrix, comment_lines):
    """Matrix Market coordinate integer, 1-based, entries by column (barcode) then row."""
    m = sp.csc_matrix(matrix)
    m.sort_indices()
    lines = ["%%MatrixMarket matrix coordinate integer general"] + ["%" + c for c in comment_lines]
    lines.append("%d %d %d" % (m.shape[0], m.shape[1], m.nnz))
    for j in range(m.shape[1]):
        for k in range(m.indptr[j], m.indptr[j + 1]):
            lines.append("%d %d %d" % (m.indices[k] + 1, j + 1, m.data[k]))
    return "\n".join(lines) + "\n"


def check_mtx(folder, d, v3):
    mat = "matrix.mtx.gz" if v3 else "matrix.mtx"
    feat = "features.tsv.gz" if v3 else "genes.tsv"
    bc = "barcodes.tsv.gz" if v3 else "barcodes.tsv"
    m = scipy.io.mmread(str(folder / mat)).tocsc()
    features = pd.read_csv(folder / feat, sep="\t", header=None, dtype=str, keep_default_na=False)
    barcodes = pd.read_csv(folder / bc, sep="\t", header=None, dtype=str)[0].tolist()
    assert barcodes == d["cells"]
    keep = np.flatnonzero(features[2] == "Gene Expression") if v3 else np.arange(len(features))
    assert features[1].iloc[keep].tolist() == SYMBOLS
    np.testing.assert_array_equal(m.toarray()[keep, :].T, d["counts"])


def make_mtx(d, files):
    ids, names, types, genomes, matrix = tenx_features(d)

    folder = OUT / "10x_mtx_v3"
    folder.mkdir()
    meta = '{"software_version": "cellranger-3.1.0", "format_version": 2}'
    write_gz(folder / "matrix.mtx.gz", mtx_text(matrix, ["metadata_json: " + meta]))
    write_gz(folder / "features.tsv.gz",
             "".join("%s\t%s\t%s\n" % (i, n, t) for i, n, t in zip(ids, names, types)))
    write_gz(folder / "barcodes.tsv.gz", "".join(c + "\n" for c in d["cells"]))
    check_mtx(folder, d, True)
    files[folder.name + "/"] = dict(layout="10x MTX, Cell Ranger >= 3 (filtered_feature_bc_matrix/)",
                                    X="counts", matrix="MatrixMarket coordinate integer, features x barcodes",
                                    dtype="integer text, gzip", groups="groups.csv",
                                    tests="gzip files; features.tsv.gz with 2 'Antibody Capture' features "
                                          "(one between genes, one last) that must be dropped")

    folder = OUT / "10x_mtx_v2"
    folder.mkdir()
    gene_rows = [k for k, t in enumerate(types) if t == "Gene Expression"]
    write_text(folder / "matrix.mtx", mtx_text(matrix[gene_rows, :], [""]))
    write_text(folder / "genes.tsv", "".join("%s\t%s\n" % (GENE_IDS[g], SYMBOLS[g]) for g in range(N_GENES)))
    write_text(folder / "barcodes.tsv", "".join(c + "\n" for c in d["cells"]))
    check_mtx(folder, d, False)
    files[folder.name + "/"] = dict(layout="10x MTX, Cell Ranger 2 (filtered_gene_bc_matrices/<genome>/)",
                                    X="counts", matrix="MatrixMarket coordinate integer, genes x barcodes",
                                    dtype="integer text, plain", groups="groups.csv",
                                    tests="plain text; genes.tsv with two columns (id, symbol)")

    # Two features with one symbol (as TBCE in the GRCh38 references): a reader must either
    # fail naming the symbol or add the two up (sum_duplicates).
    folder = OUT / "mtx_duplicate_symbols"
    folder.mkdir()
    dup_features = [("ENSG00000285053", "TBCE"), ("ENSG00000198851", "CD3E"), ("ENSG00000284770", "TBCE"),
                    ("ENSG00000156738", "MS4A1")]
    dup = np.array([[1, 0, 2], [0, 3, 0], [4, 5, 0], [0, 0, 6]], dtype=np.int64)   # features x cells
    write_gz(folder / "matrix.mtx.gz", mtx_text(dup, ["metadata_json: " + meta]))
    write_gz(folder / "features.tsv.gz",
             "".join("%s\t%s\tGene Expression\n" % f for f in dup_features))
    write_gz(folder / "barcodes.tsv.gz", "".join(c + "\n" for c in d["cells"][:3]))
    files[folder.name + "/"] = dict(layout="10x MTX, Cell Ranger >= 3", X="mtx_duplicate_symbols in expected.json",
                                    matrix="4 features x 3 barcodes", dtype="integer text, gzip", groups="none",
                                    tests="two features named TBCE (different ids): an error naming TBCE, "
                                          "or with sum_duplicates TBCE = their sum")
    return dict(cells=d["cells"][:3], features=[f[1] for f in dup_features], feature_ids=[f[0] for f in dup_features],
                counts_features_x_cells=dup.tolist(),
                summed={"genes": ["TBCE", "CD3E", "MS4A1"], "counts_cells_x_genes":
                        np.stack([dup[0] + dup[2], dup[1], dup[3]], axis=1).tolist()})


def write_10x_v3_h5(path, d, dtypes, cellranger_like=True, libver=None):
    """Cell Ranger >= 3 feature-barcode matrix: /matrix CSC by barcode (indptr over barcodes,
    indices = feature rows), features/{_all_tag_keys,feature_type,genome,id,name}."""
    ids, names, types, genomes, matrix = tenx_features(d)
    m = sp.csc_matrix(matrix)
    m.sort_indices()
    if cellranger_like:   # cellranger's matrix.py: chunks of 80000, gzip, shuffle, resizable
        kw = dict(chunks=(80000,), maxshape=(None,), compression="gzip", shuffle=True, track_times=False)
    else:
        kw = dict(track_times=False)
    skw = dict(compression="gzip", track_times=False) if cellranger_like else dict(track_times=False)
    with hdf5_format(libver), h5py.File(path, "w") as f:
        f.attrs["chemistry_description"] = np.bytes_("Single Cell 3' v3")
        f.attrs["filetype"] = np.bytes_("matrix")
        f.attrs["library_ids"] = fixed_bytes(["pbmc_fixture"])
        f.attrs["original_gem_groups"] = np.array([1], dtype=np.int64)
        f.attrs["version"] = np.int64(2)
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=fixed_bytes(d["cells"]), **skw)
        g.create_dataset("data", data=m.data.astype(dtypes["data"]), **kw)
        g.create_dataset("indices", data=m.indices.astype(dtypes["indices"]), **kw)
        g.create_dataset("indptr", data=m.indptr.astype(dtypes["indptr"]), **kw)
        g.create_dataset("shape", data=np.array(m.shape, dtype=dtypes["shape"]), track_times=False)
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=fixed_bytes(["genome"]), track_times=False)
        fg.create_dataset("feature_type", data=fixed_bytes(types), **skw)
        fg.create_dataset("genome", data=fixed_bytes(genomes), **skw)
        fg.create_dataset("id", data=fixed_bytes(ids), **skw)
        fg.create_dataset("name", data=fixed_bytes(names), **skw)


def check_10x_v3_h5(path, d):
    with h5py.File(path, "r") as f:
        g = f["matrix"]
        shape = tuple(int(v) for v in g["shape"][()])
        m = sp.csc_matrix((g["data"][()], g["indices"][()], g["indptr"][()]), shape=shape)
        types = [t.decode() for t in g["features/feature_type"][()]]
        names = [t.decode() for t in g["features/name"][()]]
        barcodes = [b.decode() for b in g["barcodes"][()]]
    assert barcodes == d["cells"]
    keep = [k for k, t in enumerate(types) if t == "Gene Expression"]
    assert [names[k] for k in keep] == SYMBOLS
    assert len(types) == N_GENES + len(ANTIBODIES)
    np.testing.assert_array_equal(m.toarray()[keep, :].T, d["counts"])


def make_10x_h5(d, files):
    cr = dict(data=np.int32, indices=np.int64, indptr=np.int64, shape=np.int32)
    p = OUT / "filtered_feature_bc_matrix.h5"
    write_10x_v3_h5(p, d, cr)
    check_10x_v3_h5(p, d)
    files[p.name] = dict(layout="10x HDF5, Cell Ranger >= 3 (types and storage of Cell Ranger's matrix.py)",
                         X="counts", groups="groups.csv",
                         note="strings fixed-length bytes; chunks of 80000, gzip + shuffle",
                         tests="/matrix is CSC by barcode (indptr over the 37 barcodes, indices = feature rows); "
                               "features/feature_type has 2 'Antibody Capture' features to drop (one between "
                               "genes, one last); compressed datasets")

    p = OUT / "feature_bc_matrix_uint32.h5"
    write_10x_v3_h5(p, d, dict(data=np.uint32, indices=np.uint32, indptr=np.uint32, shape=np.uint64),
                    cellranger_like=False, libver=LIBVER)
    check_10x_v3_h5(p, d)
    files[p.name] = dict(layout="10x HDF5, Cell Ranger >= 3", X="counts", groups="groups.csv",
                         note="contiguous, uncompressed",
                         tests="the unsigned types 10x's documentation lists (uint32 data/indices/indptr, "
                               "uint64 shape) instead of the signed ones Cell Ranger writes")

    p = OUT / "filtered_gene_bc_matrices_h5.h5"
    m = sp.csc_matrix(d["counts"].T)
    m.sort_indices()
    kw = dict(chunks=(80000,), maxshape=(None,), compression="gzip", shuffle=True, track_times=False)
    skw = dict(compression="gzip", track_times=False)
    with h5py.File(p, "w") as f:
        g = f.create_group(GENOME)
        g.create_dataset("barcodes", data=fixed_bytes(d["cells"]), **skw)
        g.create_dataset("data", data=m.data.astype(np.int32), **kw)
        g.create_dataset("gene_names", data=fixed_bytes(SYMBOLS), **skw)
        g.create_dataset("genes", data=fixed_bytes(GENE_IDS), **skw)
        g.create_dataset("indices", data=m.indices.astype(np.int64), **kw)
        g.create_dataset("indptr", data=m.indptr.astype(np.int64), **kw)
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32), track_times=False)
    with h5py.File(p, "r") as f:
        g = f[GENOME]
        shape = tuple(int(v) for v in g["shape"][()])
        got = sp.csc_matrix((g["data"][()], g["indices"][()], g["indptr"][()]), shape=shape).toarray().T
        assert [s.decode() for s in g["gene_names"][()]] == SYMBOLS
        assert [s.decode() for s in g["barcodes"][()]] == d["cells"]
    np.testing.assert_array_equal(got, d["counts"])
    files[p.name] = dict(layout="10x HDF5, Cell Ranger 2 (one group per genome: /%s)" % GENOME, X="counts",
                         groups="groups.csv", note="strings fixed-length bytes; chunks of 80000, gzip + shuffle",
                         tests="the pre-3.0 layout: genes (ids) + gene_names, no feature types, no root "
                               "attributes; CSC by barcode")


# ----------------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------------

# A small matrix for the broken files: 6 cells x 5 genes (the first ids / symbols of the dataset).
SMALL = np.array([[1, 0, 3, 0, 2], [0, 4, 0, 0, 1], [5, 0, 0, 6, 0], [0, 0, 7, 0, 8], [9, 1, 0, 0, 0],
                  [0, 2, 0, 3, 0]], dtype=np.float32)


def write_minimal_h5ad(path, d, data, indices, indptr, shape, n_obs=None, n_var=None, x=True,
                       compression=None):
    """X (CSR), obs and var in anndata 0.8's encoding, nothing else; arrays as given (so they
    can be broken)."""
    n_obs = SMALL.shape[0] if n_obs is None else n_obs
    n_var = SMALL.shape[1] if n_var is None else n_var
    with hdf5_format(LIBVER), h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        if x:
            g = f.create_group("X")
            g.attrs["encoding-type"] = "csr_matrix"
            g.attrs["encoding-version"] = "0.1.0"
            g.attrs["shape"] = np.array(shape, dtype=np.int64)
            for name, values in (("data", data), ("indices", indices), ("indptr", indptr)):
                g.create_dataset(name, data=values, compression=compression, track_times=False)
        for name, index in (("obs", d["cells"][:n_obs]), ("var", SYMBOLS[:n_var])):
            df = f.create_group(name)
            df.attrs["_index"] = "_index"
            df.attrs["column-order"] = np.array([], dtype=np.float64)   # what anndata 0.8 writes for no columns
            df.attrs["encoding-type"] = "dataframe"
            df.attrs["encoding-version"] = "0.2.0"
            s = vlen_strings(df, "_index", index)
            s.attrs["encoding-type"] = "string-array"
            s.attrs["encoding-version"] = "0.2.0"


def make_bad(d, files):
    bad = OUT / "bad"
    bad.mkdir()
    m = sp.csr_matrix(SMALL)
    data, indices, indptr = m.data.copy(), m.indices.astype(np.int32), m.indptr.astype(np.int32)
    shape = SMALL.shape
    nnz = len(data)

    # The unbroken small file reads back: each bad file differs from it in the named defect only.
    good = OUT / "bad" / "_good_small.tmp.h5ad"
    write_minimal_h5ad(good, d, data, indices, indptr, shape)
    a = read_h5ad_quiet(good)
    np.testing.assert_array_equal(a.X.toarray(), SMALL)
    assert list(a.obs_names) == d["cells"][:6] and list(a.var_names) == SYMBOLS[:5]
    good_bytes = good.read_bytes()
    good.unlink()

    def entry(name, what):
        if name.endswith(".h5"):
            layout = "10x HDF5, Cell Ranger >= 3"
        elif name.endswith("/"):
            layout = "10x MTX, Cell Ranger 2 (plain text)"
        elif name == "not_hdf5.h5ad":
            layout = "text"
        else:
            layout = "h5ad, anndata 0.8 layout (h5py, superblock v3)"
        files["bad/" + name] = dict(layout=layout, broken=True, tests=what)

    write_text(bad / "not_hdf5.h5ad", "sample,cluster,CD3E\nAAACCTGAGAAACCAT-1,B,1\n")
    entry("not_hdf5.h5ad", "a CSV text file named .h5ad (no HDF5 signature)")

    (bad / "truncated.h5ad").write_bytes(good_bytes[: len(good_bytes) // 2])
    entry("truncated.h5ad", "the first half of a valid 6 x 5 h5ad (HDF5 signature present, end of file missing)")

    write_minimal_h5ad(bad / "no_x.h5ad", d, data, indices, indptr, shape, x=False)
    entry("no_x.h5ad", "obs and var but no X")

    # indptr for 5 cells (the last cell and its values dropped) under shape (6, 5) and 6 obs rows.
    last = indptr[-2]
    write_minimal_h5ad(bad / "shape_disagrees_with_indptr.h5ad", d, data[:last], indices[:last], indptr[:-1], shape)
    entry("shape_disagrees_with_indptr.h5ad", "shape attribute says 6 rows, indptr has 6 entries (5 rows); "
                                              "indptr[-1] = nnz, obs has 6 rows")

    p = indptr.copy()
    p[2], p[3] = p[3], p[2]
    assert np.any(np.diff(p) < 0)
    write_minimal_h5ad(bad / "indptr_not_monotone.h5ad", d, data, indices, p, shape)
    entry("indptr_not_monotone.h5ad", "indptr[2] > indptr[3]")

    p = indptr.copy()
    p[-1] = nnz + 3
    write_minimal_h5ad(bad / "indptr_end_not_nnz.h5ad", d, data, indices, p, shape)
    entry("indptr_end_not_nnz.h5ad", "indptr[-1] = nnz + 3 (the last cell reads past data/indices)")

    p = indptr.copy()
    p[-1] = nnz - 1
    write_minimal_h5ad(bad / "indptr_end_short_of_nnz.h5ad", d, data, indices, p, shape)
    entry("indptr_end_short_of_nnz.h5ad", "indptr[-1] = nnz - 1 (one stored value belongs to no cell)")

    i = indices.copy()
    i[3] = shape[1]
    write_minimal_h5ad(bad / "index_out_of_range.h5ad", d, data, i, indptr, shape)
    entry("index_out_of_range.h5ad", "a gene index equal to the number of genes (5)")

    i = indices.copy()
    i[3] = -1
    write_minimal_h5ad(bad / "index_negative.h5ad", d, data, i, indptr, shape)
    entry("index_negative.h5ad", "a gene index of -1 (int32)")

    # Cell 0 stores genes [0, 2, 4]: make them [2, 0, 2] (unsorted, gene 2 twice).
    i = indices.copy()
    assert list(i[indptr[0]:indptr[1]]) == [0, 2, 4]
    i[indptr[0]:indptr[1]] = [2, 0, 2]
    write_minimal_h5ad(bad / "unsorted_duplicate_indices.h5ad", d, data, i, indptr, shape)
    entry("unsorted_duplicate_indices.h5ad", "cell 0 stores genes [2, 0, 2]: unsorted (fine alone) and gene 2 twice "
                                             "(not fine: ambiguous value)")

    write_minimal_h5ad(bad / "obs_count_mismatch.h5ad", d, data, indices, indptr, shape, n_obs=5)
    entry("obs_count_mismatch.h5ad", "X is 6 x 5, obs has 5 rows")

    write_minimal_h5ad(bad / "var_count_mismatch.h5ad", d, data, indices, indptr, shape, n_var=4)
    entry("var_count_mismatch.h5ad", "X is 6 x 5, var has 4 rows")

    v = data.copy()
    v[4] = -3
    write_minimal_h5ad(bad / "negative_value.h5ad", d, v, indices, indptr, shape)
    entry("negative_value.h5ad", "one stored value is -3 (counts must be >= 0 unless allow_negative)")

    v = data.copy()
    v[4] = np.nan
    write_minimal_h5ad(bad / "nan_value.h5ad", d, v, indices, indptr, shape)
    entry("nan_value.h5ad", "one stored value is NaN")

    # Valid for anndata/h5py, but LZF is h5py's own filter: libhdf5 alone cannot decode it.
    p = bad / "lzf_compressed.h5ad"
    write_minimal_h5ad(p, d, data, indices, indptr, shape, compression="lzf")
    np.testing.assert_array_equal(read_h5ad_quiet(p).X.toarray(), SMALL)
    entry("lzf_compressed.h5ad", "valid for anndata (X compressed with LZF, as in anndata 0.7's own test archives), "
                                 "but LZF is h5py's filter: a reader on plain libhdf5 must say the filter is missing")

    # Bad MTX folders (Cell Ranger 2 layout, plain text, 5 genes x 6 barcodes).
    genes_tsv = "".join("%s\t%s\n" % (GENE_IDS[g], SYMBOLS[g]) for g in range(5))
    barcodes_tsv = "".join(c + "\n" for c in d["cells"][:6])
    good_mtx = mtx_text(SMALL.T.astype(np.int64), [""])
    lines = good_mtx.splitlines()
    header_at = next(k for k, l in enumerate(lines) if not l.startswith("%"))

    def mtx_folder(name, text, what):
        folder = bad / name
        folder.mkdir()
        write_text(folder / "matrix.mtx", text)
        write_text(folder / "genes.tsv", genes_tsv)
        write_text(folder / "barcodes.tsv", barcodes_tsv)
        entry(name + "/", what)   # (the layout is set from the trailing slash)

    dense_rows = ["%d" % v for v in SMALL.T.astype(np.int64).flatten(order="F")]
    mtx_folder("mtx_not_coordinate",
               "%%MatrixMarket matrix array integer general\n%\n5 6\n" + "\n".join(dense_rows) + "\n",
               "a dense 'array' Matrix Market file (10x writes 'coordinate')")
    extra = lines[: header_at + 1] + lines[header_at + 1:] + ["5 6 1"]
    mtx_folder("mtx_too_many_entries", "\n".join(extra) + "\n",
               "the size line says %d entries, the file has %d" % (nnz, nnz + 1))
    mtx_folder("mtx_too_few_entries", "\n".join(lines[:-1]) + "\n",
               "the size line says %d entries, the file has %d" % (nnz, nnz - 1))
    oor = list(lines)
    r, c, v = oor[header_at + 2].split()
    oor[header_at + 2] = "6 %s %s" % (c, v)
    mtx_folder("mtx_index_out_of_range", "\n".join(oor) + "\n", "an entry in row 6 of a 5-row matrix")

    # 10x HDF5 without matrix/indptr.
    p = bad / "10x_no_indptr.h5"
    mm = sp.csc_matrix(SMALL.T)
    with h5py.File(p, "w") as f:
        f.attrs["filetype"] = np.bytes_("matrix")
        f.attrs["version"] = np.int64(2)
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=fixed_bytes(d["cells"][:6]), track_times=False)
        g.create_dataset("data", data=mm.data.astype(np.int32), track_times=False)
        g.create_dataset("indices", data=mm.indices.astype(np.int64), track_times=False)
        g.create_dataset("shape", data=np.array(mm.shape, dtype=np.int32), track_times=False)
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=fixed_bytes(["genome"]), track_times=False)
        fg.create_dataset("feature_type", data=fixed_bytes(["Gene Expression"] * 5), track_times=False)
        fg.create_dataset("genome", data=fixed_bytes([GENOME] * 5), track_times=False)
        fg.create_dataset("id", data=fixed_bytes(GENE_IDS[:5]), track_times=False)
        fg.create_dataset("name", data=fixed_bytes(SYMBOLS[:5]), track_times=False)
    entry("10x_no_indptr.h5", "Cell Ranger >= 3 layout (6 barcodes x 5 genes) without matrix/indptr")


# ----------------------------------------------------------------------------------------------
# CSV, groups, expected.json
# ----------------------------------------------------------------------------------------------

def make_csv(d, files):
    lines = [",".join(["sample", "cluster"] + SYMBOLS)]
    for c, cell in enumerate(d["cells"]):
        lines.append(",".join([cell, d["groups"][c]] + ["%d" % v for v in d["counts"][c]]))
    write_text(OUT / "expression.csv", "\n".join(lines) + "\n")
    back = pd.read_csv(OUT / "expression.csv", index_col=0, keep_default_na=False)
    assert back.index.tolist() == d["cells"] and back["cluster"].tolist() == d["groups"]
    np.testing.assert_array_equal(back[SYMBOLS].to_numpy(), d["counts"])
    files["expression.csv"] = dict(layout="CSV, cells in rows (exsal's default: id column 'sample', group column "
                                          "'cluster')", X="counts", matrix="dense text", dtype="integers",
                                   groups="column 'cluster' (empty for 2 cells)", tests="the reference every other "
                                   "file must agree with")

    labelled = [c for c in range(N_CELLS) if d["groups"][c]]
    order = sorted(labelled, key=lambda c: (d["groups"][c], d["cells"][c]))
    write_text(OUT / "groups.csv", "sample,cluster\n" + "".join(
        "%s,%s\n" % (d["cells"][c], d["groups"][c]) for c in order))
    files["groups.csv"] = dict(layout="CSV: cell id, group", matrix="text",
                               groups="%d of %d cells" % (len(order), N_CELLS),
                               tests="labels for the formats without them; sorted by group, not in matrix order "
                                     "(join by id); the 2 unlabelled cells are absent")


def fmt_float(v):
    """The shortest decimal that gives this float32 back, whether parsed as float (strtof) or
    as double and then cast to float (checked)."""
    v = np.float32(v)
    text = np.format_float_positional(v, unique=True, trim="0") if v != 0 else "0.0"
    if "e" not in text and len(text) > 12:
        text = np.format_float_scientific(v, unique=True, trim="0")
    assert np.float32(float(text)) == v, (text, v)
    return text


def dump_json(obj, indent=0):
    pad = " " * indent
    if isinstance(obj, dict):
        items = ["%s  %s: %s" % (pad, json.dumps(k, ensure_ascii=False), dump_json(v, indent + 2))
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], list):
        rows = ["%s  %s" % (pad, dump_json(r, indent + 2)) for r in obj]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    if isinstance(obj, list):
        return "[" + ", ".join(dump_json(v, indent) for v in obj) + "]"
    if isinstance(obj, (float, np.floating)):
        return fmt_float(obj)
    if isinstance(obj, (np.integer,)):
        return str(int(obj))
    return json.dumps(obj, ensure_ascii=False)


def expected_file_entry(info):
    entry = {"X": info["X"], "X_genes": "scaled_genes" if info["X"] == "scaled" else "genes"}
    if "layers" in info:
        entry["layers"] = info["layers"]
    if "raw" in info:
        entry["raw"] = info["raw"]
    entry["groups_from"] = "groups.csv" if info["groups"] == "groups.csv" else "file"
    return entry


def make_expected(d, files, dup):
    f32 = lambda m: [[np.float32(v) for v in row] for row in m]
    expected = {
        "about": "The dataset every good file under tests/fixtures/formats encodes. Matrices are cells x genes "
                 "(row = cell). Float values are float32 values in their shortest decimal form (strtof, or "
                 "strtod and a cast to float, gives them back exactly). "
                 "Written by scripts/make-format-fixtures.py.",
        "n_cells": N_CELLS,
        "n_genes": N_GENES,
        "cells": d["cells"],
        "genes": SYMBOLS,
        "gene_ids": GENE_IDS,
        "groups": d["groups"],
        "group_names": GROUP_NAMES,
        "unlabelled_cells": [d["cells"][c] for c in UNLABELLED],
        "zero_cell": d["cells"][ZERO_CELL],
        "zero_gene": ZERO_GENE,
        "obs_cluster_id": d["cluster_id"],
        "obs_donor": d["donors"],
        "obs_hashtag": [None if c in d["hashtag_na"] else d["hashtag"][c] for c in range(N_CELLS)],
        "obs_qc_pass": [None if c in d["qc_na"] else d["qc_pass"][c] for c in range(N_CELLS)],
        "obs_phase": d["phase"],
        "counts": d["counts"].tolist(),
        "lognorm_about": "log1p(counts / total of the cell * 1e4) in float32; 0 for the empty cell",
        "lognorm": f32(d["lognorm"]),
        "scaled_about": "lognorm restricted to scaled_genes, each gene centred and divided by its standard "
                        "deviation (ddof 1), capped at 10, float32",
        "scaled_genes": SCALED_GENES,
        "scaled": f32(d["scaled"]),
        "antibodies": [a[1] for a in ANTIBODIES],
        "antibody_counts": d["antibody_counts"].tolist(),
        "files_about": "what each good file holds: X (and its genes), layers, raw (all genes), and where the "
                       "group labels come from ('file': the file itself; 'groups.csv': that file, joined by cell id)",
        "files": {name: expected_file_entry(info) for name, info in files.items()
                  if info.get("X") in ("counts", "lognorm", "scaled")},
        "mtx_duplicate_symbols": dup,
    }
    write_text(OUT / "expected.json", dump_json(expected) + "\n")
    back = json.loads((OUT / "expected.json").read_text(encoding="utf-8"))
    assert back["counts"] == d["counts"].tolist()
    assert np.array_equal(np.array(back["lognorm"], dtype=np.float32), d["lognorm"])
    assert np.array_equal(np.array(back["scaled"], dtype=np.float32), d["scaled"])


def holds(info):
    x = info.get("X")
    if x not in ("counts", "lognorm", "scaled"):
        return x or ""
    genes = len(SCALED_GENES) if x == "scaled" else N_GENES
    parts = ["X = %s (%d genes)" % (x, genes)]
    for name, what in info.get("layers", {}).items():
        parts.append("layers/%s = %s" % (name, what))
    if "raw" in info:
        parts.append("raw = %s (%d genes)" % (info["raw"], N_GENES))
    parts.append("groups: " + info["groups"])
    return "; ".join(parts)


def storage(name, info):
    path = OUT / name
    if not info.get("broken") and path.is_file() and path.suffix in (".h5ad", ".h5"):
        text = describe_hdf5(path)
        return text + ("; " + info["note"] if "note" in info else "")
    return "; ".join(info[k] for k in ("matrix", "dtype") if k in info)


README = """\
# Single-cell input fixtures

Generated by `scripts/make-format-fixtures.py` (do not edit by hand: change the script and run
it again; it rewrites this folder, this README included):

    /usr/bin/python3 scripts/make-format-fixtures.py

It needs Debian's Python 3 with numpy, pandas, scipy, h5py 3.7 and anndata 0.8 (the `python3`
of a pyenv or venv without them will not do). CI does not run it: the files are committed.

## The dataset

Every good file below encodes one dataset, so a reader test can require that each gives the
same cells x genes values, cell ids, gene symbols and group labels as `expression.csv`. The
same data is in `expected.json` (plain JSON, no CSV parsing needed).

- {n_cells} cells x {n_genes} genes, integer UMI counts (negative binomial around per-group
  marker means, seed {seed}), {zeros:.1f} % zeros.
- Cell ids are 10x barcodes (`AAACCTGAGAAACCAT-1`, ...), sorted as Cell Ranger writes them.
  Gene symbols are human genes (CD3E, MS4A1, LYZ, HBB, MKI67, TOP2A, HLA-DRA, ...), with
  Ensembl ids in the files that carry ids (the ids are there for realism; tests compare
  symbols).
- Cell `{zero_cell}` expresses nothing; gene `{zero_gene}` is expressed by no cell.
- `{big_gene}` in cell `{big_cell}` is {big_value} (> 1000); `{exact_gene}` in cell `{exact_cell}` is
  {exact_value} = 2^24 - 1: exact in float32, 8 significant digits (a reader that goes through
  `%g` or a lower precision loses it).
- Groups (obs column `cluster`): `B`, `Mono`, `T cell` (a space). Cells `{unl0}` and `{unl1}`
  have no group: an empty field in `expression.csv`, a NaN category (code -1) in the h5ad
  files, absent from `groups.csv`. Every format therefore gives "" for those two cells.
- Other obs columns in the h5ad files: `cluster_id` (int64, -1 for the two unlabelled cells),
  `donor` (a string column, not categorical, with non-ASCII values: `D1 Zürich`, `D3 Malmö`;
  not in the <= 0.6 file), in `anndata08_csr_f32.h5ad` also `hashtag` (nullable integer) and
  `qc_pass` (nullable boolean), in `anndata06_legacy.h5ad` `phase` (a second categorical).
  Readers must take the groups from `cluster` and skip the rest.
- `lognorm` = log1p(counts / cell total x 1e4) as float32 (0 for the empty cell); `scaled` =
  lognorm on {n_scaled} genes (`scaled_genes` in `expected.json`), centred, divided by the
  standard deviation (ddof 1), capped at 10, float32. `expected.json` gives both, each float32
  value in its shortest decimal form (strtof, or strtod and a cast to float, gives it back
  exactly).
- The 10x files add two antibody features (`CD3_TotalSeqB` after HLA-DRA, `CD19_TotalSeqB`
  last) with feature type `Antibody Capture`; readers must drop them. (Cell Ranger lists
  gene expression first; the fixture puts one antibody between genes so that a reader that
  drops rows without renumbering the rest fails.)
- The 10x files have no labels: with `groups.csv` (header `sample,cluster`, {n_groups} of the
  {n_cells} cells, sorted by group rather than in matrix order, so it must be joined by id)
  they give the same groups as the others.

## Files

`Holds` says what X (and layers / raw) contain; `expected.json` has the same under `files`.
"Superblock v0" is h5py's default HDF5 format ('earliest'), as anndata, scanpy and Cell Ranger
write by default; "v3" is the HDF5 1.10 format (compact groups), used for most files here to
keep the folder small and so that readers meet both.

| File | Layout | Storage | Holds | Tests |
|---|---|---|---|---|
{rows}

## Notes

- **Deterministic.** Two runs give byte-identical files (checked with h5py 3.7.0 / HDF5
  1.10.8, anndata 0.8.0, numpy 1.24, pandas 1.5): the data come from a fixed seed, h5py
  creates datasets without timestamps (`track_times=False`), the script switches time
  tracking off for groups in the v3 files (1.10 object headers would store times), gzip
  members have mtime 0 and no file name. Other library versions may produce different bytes
  for the same content; `git diff --stat` after a run shows whether anything changed.
- **anndata files.** The `anndata08_*` files are written by anndata 0.8's `write_h5ad`, with
  these interventions: its string-to-categorical conversion is switched off while writing (so
  `donor` stays a string column, as anndata keeps a column whose values are all distinct);
  all but `anndata08_csr_f32.h5ad` are opened with `libver='v110'` and untimed groups (see
  Deterministic); and `anndata08_csr_f64_i64.h5ad` is copied object by object into a new
  file whose X has int64 indices/indptr (scipy downcasts small index arrays to int32, so
  anndata cannot be made to write int64 ones). The 0.7 and <= 0.6 files are written with h5py following anndata 0.7's
  test archives (`/usr/lib/python3/dist-packages/anndata/tests/data/archives/v0.7.0`) and
  scanpy's `pbmc68k_reduced.h5ad` (compound obs/var with a fixed-length `index` field,
  categories in `uns/<column>_categories`, `raw.X` with `h5sparse_format`/`h5sparse_shape`,
  gzip level 4 chunks). anndata 0.8 reads all of them (the script checks).
- **10x files.** `filtered_feature_bc_matrix.h5` uses the dtypes and storage of Cell
  Ranger's `matrix.py` (data int32, indices/indptr int64, shape int32, fixed-length byte
  strings, root attributes `filetype`, `version` = 2, `chemistry_description`,
  `library_ids`, `original_gem_groups`); the Cell Ranger 2 file has no root attributes (not
  verified against a real file; readers should not depend on them). MTX files: header
  `%%MatrixMarket matrix coordinate integer general`, 1-based, features x barcodes, entries
  by barcode; Cell Ranger >= 3 adds a `%metadata_json` comment line and gzips the three files.
- **Bad files** (under `bad/`) use a 6 x 5 matrix (the first ids and symbols of the dataset)
  and differ from a valid file (which the script reads back with anndata) in the named
  defect only. `lzf_compressed.h5ad` is valid for anndata but needs h5py's LZF filter.
- **Size.** {size_kb:.0f} KB, most of it HDF5 structure rather than data: an anndata 0.8 file
  has 12 or more groups and takes 17-40 KB here for a 3 KB matrix, a global heap for its
  variable-length strings alone is 4 KB.
"""


def make_readme(d, files, size=0):
    """Written twice by main: the second time with the folder's size, README included."""
    rows = []
    for name, info in files.items():
        rows.append("| `%s` | %s | %s | %s | %s |" % (name, info["layout"], storage(name, info), holds(info),
                                                      info["tests"]))
    text = README.format(
        n_cells=N_CELLS, n_genes=N_GENES, seed=SEED, zeros=100 * d["zero_fraction"],
        zero_cell=d["cells"][ZERO_CELL], zero_gene=ZERO_GENE, big_gene=BIG_GENE, big_cell=d["cells"][BIG_CELL],
        big_value=BIG_VALUE, exact_gene=EXACT_GENE, exact_cell=d["cells"][EXACT_CELL], exact_value=EXACT_VALUE,
        unl0=d["cells"][UNLABELLED[0]], unl1=d["cells"][UNLABELLED[1]], n_scaled=len(SCALED_GENES),
        n_groups=N_CELLS - len(UNLABELLED), rows="\n".join(rows), size_kb=size / 1024)
    write_text(OUT / "README.md", text)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    d = make_dataset()
    files = {}
    make_csv(d, files)
    make_anndata08(d, files)
    make_anndata07(d, files)
    make_legacy(d, files)
    dup = make_mtx(d, files)
    make_10x_h5(d, files)
    make_bad(d, files)
    make_expected(d, files, dup)
    make_readme(d, files)
    make_readme(d, files, sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file()))

    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print("wrote %s: %d files, %.1f KB; %.1f %% zeros"
          % (OUT.relative_to(ROOT), sum(1 for p in OUT.rglob("*") if p.is_file()), total / 1024,
             100 * d["zero_fraction"]))


if __name__ == "__main__":
    sys.exit(main())
