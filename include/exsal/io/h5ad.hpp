#ifndef EXSAL_IO_H5AD_HPP
#define EXSAL_IO_H5AD_HPP

// Reads AnnData .h5ad files (the HDF5 files of anndata and scanpy) into SparseExpression.
//
// An AnnData object is cells ("obs") x genes ("var"). This reader takes its expression matrix
// from `X`, from `layers/<name>` or from the raw matrix, with the cell ids, gene names and one obs
// column as group labels, in the three on-disk layouts in use:
//  - anndata >= 0.8: objects carry an `encoding-type` attribute. Sparse matrices are groups
//    (`csr_matrix` or `csc_matrix`) holding `data`, `indices`, `indptr` and a `shape` attribute;
//    dense ones are 2-D datasets. Dataframes (`obs`, `var`, `raw/var`) are groups whose `_index`
//    attribute names the dataset of row names; columns are datasets (numbers, strings) or groups
//    (`categorical`: integer `codes` into `categories`, -1 = missing; `nullable-integer` and
//    `nullable-boolean`: `values` with a `mask`).
//  - anndata 0.7: the same groups without encoding attributes on sparse matrices' children;
//    categorical columns are integer datasets whose `categories` attribute is an object reference
//    to the category names (under `obs/__categories`).
//  - anndata <= 0.6 (scanpy's own example files): `obs` and `var` are compound datasets with an
//    `index` field, categorical columns are integer codes with the names in
//    `uns/<column>_categories`, sparse groups say `h5sparse_format` and `h5sparse_shape`, and the
//    raw data are `raw.X` and `raw.var` at the top level.
// CSR matrices are read straight into the result (indices sorted per cell where a writer left
// them unsorted); CSC matrices are transposed by counting (peak: both copies); dense ones are read
// by blocks of rows. Values are checked (finite, >= 0 unless allowed) as they are read.

#include "exsal/core/error.hpp"
#include "exsal/core/text.hpp"
#include "exsal/io/hdf5.hpp"
#include "exsal/io/sparse_expression.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace exsal {

struct H5adReadOptions {
    // Which matrix: "" = X; "raw" = the raw matrix (raw/X, or raw.X in old files) with the raw
    // gene names; any other name = layers/<name>.
    std::string layer;
    // The obs column whose values become the group labels ("" = none). Categorical, string,
    // integer and boolean columns work; missing values give no group ("").
    std::string group_column = "cluster";
    // false: a group column that obs lacks gives no groups (H5adSummary::group_column_missing);
    // true: it is an error listing obs's columns.
    bool group_column_required = false;
    bool upper_case_genes = true; // as ExpressionReadOptions
    bool allow_negative = false;  // accept values < 0 (the Poisson loss needs counts >= 0)
    // The cells whose values are read (SparseExpression::held); the others' ids and groups only.
    // CSR and dense matrices are read for those cells alone (hyperslabs of the file); a CSC
    // matrix is read whole and then cut down to them.
    ReadShare share;
};

struct H5adSummary {
    std::string layout;        // "anndata >= 0.8", "anndata 0.7", "anndata <= 0.6"
    std::string matrix;        // object read, e.g. "/raw/X"
    std::string storage;       // "csr", "csc" or "dense"
    std::string value_type;    // "float32", "int64", ...
    std::vector<std::string> obs_columns;
    bool group_column_missing = false;
    Index cells_without_group = 0;
};

struct H5adData {
    SparseExpression data;
    H5adSummary summary;
};

namespace detail::h5ad {

inline std::string join_names(const std::vector<std::string>& names, std::size_t max = 20) {
    if (names.empty()) return "none";
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < max; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > max) s += ", ... " + std::to_string(names.size() - max) + " more";
    return s;
}

inline std::string number_text(double v) {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
}

// The rows of a dataset of strings or numbers as text (categories, plain columns).
inline std::vector<std::string> values_as_text(const h5::Node& d) {
    const h5::TypeInfo t = d.type();
    if (t.is_string()) return d.read_strings();
    if (t.is_numeric() || t.type_class == H5T_ENUM) {
        if (t.type_class == H5T_ENUM || (t.is_integer() && t.size == 1 && !t.is_signed)) { // h5py's booleans
            std::vector<std::int64_t> v = d.read_all<std::int64_t>();
            std::vector<std::string> out;
            for (auto x : v) out.push_back(t.type_class == H5T_ENUM ? (x ? "True" : "False") : std::to_string(x));
            return out;
        }
        const std::vector<double> v = d.read_all<double>();
        std::vector<std::string> out;
        out.reserve(v.size());
        for (double x : v) out.push_back(std::isnan(x) ? std::string() : number_text(x));
        return out;
    }
    d.fail("holds " + t.name() + " values, which cannot be group labels");
}

// Labels from integer codes into categories; code -1 (or out of range: an error) = missing.
inline std::vector<std::string> decode(const h5::Node& codes_node, const std::vector<std::int64_t>& codes,
                                       const std::vector<std::string>& categories) {
    std::vector<std::string> out;
    out.reserve(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) {
        const std::int64_t c = codes[i];
        if (c == -1) {
            out.emplace_back();
            continue;
        }
        if (c < 0 || c >= static_cast<std::int64_t>(categories.size()))
            codes_node.fail("code " + std::to_string(c) + " of row " + std::to_string(i) + " is not a category (" +
                            std::to_string(categories.size()) + " categories)");
        out.push_back(categories[static_cast<std::size_t>(c)]);
    }
    return out;
}

// A dataframe of any layout: its row names and columns.
struct Frame {
    h5::Node node;
    bool legacy = false; // a compound dataset (anndata <= 0.6)

    std::vector<std::string> index() const {
        if (legacy) {
            const std::vector<std::string> f = node.fields();
            if (std::find(f.begin(), f.end(), "index") == f.end())
                node.fail("has no 'index' field (fields: " + join_names(f) + ")");
            return node.read_string_field("index");
        }
        std::string name = node.attribute_string("_index");
        if (name.empty()) name = node.has("_index") ? "_index" : "index";
        if (!node.has(name)) node.fail("has no row names (no '_index' attribute and no '" + name + "' dataset)");
        return node.open(name).read_strings();
    }

    std::vector<std::string> columns() const {
        std::vector<std::string> out;
        if (legacy) {
            for (auto& f : node.fields())
                if (f != "index") out.push_back(f);
            return out;
        }
        if (node.has_attribute("column-order")) {
            const h5::TypeInfo t = node.attribute_type("column-order");
            if (t.is_string()) return node.attribute_strings("column-order");
            return out; // an empty float array: no columns
        }
        const std::string index_name = node.attribute_string("_index");
        for (auto& c : node.children())
            if (c != index_name && c != "__categories" && c != "_index") out.push_back(c);
        return out;
    }
};

inline Frame open_frame(const h5::Node& root, const std::string& name) {
    h5::Node n = root.open(name);
    Frame f{std::move(n), false};
    if (f.node.is_dataset()) {
        if (f.node.fields().empty()) f.node.fail("is neither a dataframe group nor a compound dataset");
        f.legacy = true;
    }
    return f;
}

// Column `name` of an anndata >= 0.7 dataframe group as labels ("" = missing).
inline std::vector<std::string> group_frame_column(const h5::Node& frame, const std::string& name) {
    const h5::Node c = frame.open(name);
    if (c.is_group()) {
        const std::string enc = c.attribute_string("encoding-type");
        if (enc == "categorical") {
            const h5::Node codes = c.open("codes");
            return decode(codes, codes.read_all<std::int64_t>(), values_as_text(c.open("categories")));
        }
        if (enc == "nullable-integer" || enc == "nullable-boolean") {
            std::vector<std::string> v = values_as_text(c.open("values"));
            const std::vector<std::int64_t> mask = c.open("mask").read_all<std::int64_t>();
            if (mask.size() != v.size()) c.fail("'mask' and 'values' differ in length");
            if (enc == "nullable-boolean")
                for (auto& s : v) s = (s == "1" || s == "True") ? "True" : "False";
            for (std::size_t i = 0; i < v.size(); ++i)
                if (mask[i]) v[i].clear();
            return v;
        }
        c.fail("has encoding '" + enc + "', which this reader cannot turn into group labels");
    }
    if (c.has_attribute("categories")) { // anndata 0.7
        const h5::Node cats = c.attribute_target("categories");
        return decode(c, c.read_all<std::int64_t>(), values_as_text(cats));
    }
    return values_as_text(c);
}

// Column `name` of a legacy compound obs as labels.
inline std::vector<std::string> legacy_frame_column(const h5::Node& root, const h5::Node& frame, const std::string& name) {
    const h5::TypeInfo t = frame.field_type(name);
    const std::string cats_name = name + "_categories";
    if (t.is_integer() && root.has("uns") && root.open("uns").has(cats_name)) {
        const h5::Node cats = root.open("uns").open(cats_name);
        return decode(frame, frame.read_field<std::int64_t>(name), values_as_text(cats));
    }
    if (t.is_string()) return frame.read_string_field(name);
    if (t.is_numeric()) {
        std::vector<std::string> out;
        for (double x : frame.read_field<double>(name)) out.push_back(std::isnan(x) ? std::string() : number_text(x));
        return out;
    }
    frame.fail("field '" + name + "' holds " + t.name() + " values, which cannot be group labels");
}

inline std::string layout_of(const h5::Node& root) {
    if (root.attribute_string("encoding-type") == "anndata") return "anndata >= 0.8";
    if (root.child_kind("obs") == h5::Kind::dataset) return "anndata <= 0.6";
    return "anndata 0.7";
}

// The matrix object for options.layer and the dataframe naming its genes.
struct MatrixChoice {
    std::string matrix; // path under the root
    std::string var;    // dataframe of its genes
};

inline MatrixChoice choose_matrix(const h5::Node& root, const std::string& layer) {
    if (layer.empty()) {
        if (!root.has("X")) root.fail("has no expression matrix 'X'" + root.listing());
        return {"X", "var"};
    }
    if (layer == "raw") {
        if (root.child_kind("raw") == h5::Kind::group && root.open("raw").has("X")) return {"raw/X", "raw/var"};
        if (root.has("raw.X")) return {"raw.X", "raw.var"};
    } else if (root.child_kind("layers") == h5::Kind::group && root.open("layers").has(layer)) {
        return {"layers/" + layer, "var"};
    }
    std::vector<std::string> known;
    if (root.child_kind("layers") == h5::Kind::group) known = root.open("layers").children();
    if ((root.child_kind("raw") == h5::Kind::group && root.open("raw").has("X")) || root.has("raw.X")) known.push_back("raw");
    throw FileError(root.file_path(), "has no layer '" + layer + "' (layers: " + join_names(known) + ")");
}

inline h5::Node open_path(const h5::Node& root, const std::string& path) {
    const std::size_t slash = path.find('/');
    if (slash == std::string::npos) return root.open(path);
    return open_path(root.open(path.substr(0, slash)), path.substr(slash + 1));
}

// Checks one block of values as read (finite, >= 0 unless allowed) and converts it to float.
// `position(k)` names value k of the block for messages ("cell 3, gene 17").
template <class T, class Position>
void check_values(const h5::Node& where, const std::vector<T>& block, bool allow_negative, bool raw_exists, float* out,
                  Position position) {
    for (std::size_t k = 0; k < block.size(); ++k) {
        const double v = static_cast<double>(block[k]);
        if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max()))
            where.fail("value " + number_text(v) + " of " + position(k) +
                       (std::isfinite(v) ? " does not fit in single precision" : " is not finite"));
        if (v < 0.0 && !allow_negative) {
            std::vector<SettingHint> hints;
            if (raw_exists) hints.push_back({Setting::layer, "to raw to read the file's raw matrix"});
            throw FileError(where.file_path(), 0, 0, where.path() + ": value " + number_text(v) + " of " + position(k) +
                                                   " is negative; the model expects counts or normalised counts (>= 0)",
                            std::move(hints));
        }
        out[k] = static_cast<float>(v) + 0.0f; // "-0" is stored as +0, as read_10x_mtx does
    }
}

constexpr std::size_t block_elements = std::size_t(1) << 20;

// Reads the `data` of a sparse group by blocks into `out` (float), checking each value; `ptr`
// (indptr) names the cell (CSR) or gene (CSC) of a bad value.
// Entries [begin, end) only when given (a process's share of the cells of a CSR matrix).
inline void read_values(const h5::Node& d, const std::vector<std::int64_t>& ptr, bool csr, const H5adReadOptions& o,
                        bool raw_exists, std::vector<float>& out, std::size_t begin = 0,
                        std::size_t end = std::numeric_limits<std::size_t>::max()) {
    const auto total = static_cast<std::size_t>(ptr.back());
    if (d.length() != total) d.fail("has " + std::to_string(d.length()) + " values where indptr says " + std::to_string(total));
    end = std::min(end, total);
    const std::size_t n = end - begin;
    out.resize(n);
    // Only float64 needs a wider buffer (a value beyond single precision); HDF5 converts the
    // others (float32 as it is, integers) straight to float.
    const h5::TypeInfo t = d.type();
    const bool wide = t.is_float() && t.size > sizeof(float);
    for (std::size_t first = 0; first < n; first += block_elements) {
        const std::size_t count = std::min(block_elements, n - first);
        const auto position = [&](std::size_t k) {
            const auto at = static_cast<std::int64_t>(begin + first + k);
            const auto major = std::upper_bound(ptr.begin(), ptr.end(), at) - ptr.begin() - 1;
            return "entry " + std::to_string(at) + " (" + (csr ? "cell " : "gene ") + std::to_string(major) + ")";
        };
        if (wide) check_values(d, d.read_rows<double>(begin + first, count), o.allow_negative, raw_exists, out.data() + first, position);
        else check_values(d, d.read_rows<float>(begin + first, count), o.allow_negative, raw_exists, out.data() + first, position);
    }
}

// indptr of a sparse group: `major + 1` entries from 0, non-decreasing, ending at nnz.
inline std::vector<std::int64_t> read_indptr(const h5::Node& g, std::size_t major, const std::string& shape_text) {
    const h5::Node p = g.open("indptr");
    if (!p.type().is_integer()) p.fail("holds " + p.type().name() + " values, not integers");
    if (p.length() != major + 1)
        p.fail("has " + std::to_string(p.length()) + " entries, but the shape " + shape_text + " needs " +
               std::to_string(major + 1));
    std::vector<std::int64_t> ptr = p.read_all<std::int64_t>();
    if (ptr[0] != 0) p.fail("starts at " + std::to_string(ptr[0]) + ", not 0");
    for (std::size_t i = 1; i < ptr.size(); ++i)
        if (ptr[i] < ptr[i - 1])
            p.fail("decreases at entry " + std::to_string(i) + " (" + std::to_string(ptr[i - 1]) + " then " +
                   std::to_string(ptr[i]) + ")");
    const std::size_t nnz = g.open("indices").length();
    if (static_cast<std::size_t>(ptr.back()) != nnz)
        p.fail("ends at " + std::to_string(ptr.back()) + " but 'indices' holds " + std::to_string(nnz) + " entries");
    return ptr;
}

// indices of a sparse group, checked against `minor`, as int32 (entries [begin, end) only when given).
inline std::vector<std::int32_t> read_indices(const h5::Node& g, std::size_t minor, std::size_t begin = 0,
                                              std::size_t end = std::numeric_limits<std::size_t>::max()) {
    const h5::Node d = g.open("indices");
    if (!d.type().is_integer()) d.fail("holds " + d.type().name() + " values, not integers");
    end = std::min(end, d.length());
    const std::size_t n = end - begin;
    std::vector<std::int32_t> out(n);
    const h5::TypeInfo t = d.type();
    const bool narrow = t.is_signed && t.size <= sizeof(std::int32_t); // read as int32, no int64 buffer
    const auto check = [&](const auto& block, std::size_t first) {
        for (std::size_t k = 0; k < block.size(); ++k) {
            const auto v = static_cast<std::int64_t>(block[k]);
            if (v < 0 || v >= static_cast<std::int64_t>(minor))
                d.fail("index " + std::to_string(v) + " at position " + std::to_string(begin + first + k) +
                       " is out of range (0 to " + std::to_string(minor) + " - 1)");
            out[first + k] = static_cast<std::int32_t>(v);
        }
    };
    for (std::size_t first = 0; first < n; first += block_elements) {
        const std::size_t count = std::min(block_elements, n - first);
        if (narrow) check(d.read_rows<std::int32_t>(begin + first, count), first);
        else check(d.read_rows<std::int64_t>(begin + first, count), first);
    }
    return out;
}

// Sorts each row's (index, value) pairs where a writer left them unsorted; refuses an index that
// appears twice in one row.
inline void sort_rows(const h5::Node& g, const std::vector<std::int64_t>& ptr, std::vector<std::int32_t>& idx,
                      std::vector<float>& val, const char* row_name) {
    std::vector<std::pair<std::int32_t, float>> buffer;
    for (std::size_t r = 0; r + 1 < ptr.size(); ++r) {
        const auto b = static_cast<std::size_t>(ptr[r]), e = static_cast<std::size_t>(ptr[r + 1]);
        bool sorted = true;
        for (std::size_t k = b + 1; k < e && sorted; ++k) sorted = idx[k - 1] < idx[k];
        if (sorted) continue;
        buffer.clear();
        for (std::size_t k = b; k < e; ++k) buffer.emplace_back(idx[k], val[k]);
        std::sort(buffer.begin(), buffer.end(), [](auto& x, auto& y) { return x.first < y.first; });
        for (std::size_t k = b; k < e; ++k) {
            idx[k] = buffer[k - b].first;
            val[k] = buffer[k - b].second;
            if (k > b && idx[k] == idx[k - 1])
                g.open("indices").fail("index " + std::to_string(idx[k]) + " appears twice in " + row_name + " " +
                                       std::to_string(r));
        }
    }
}

// CSC (genes compressed) to CSR (cells compressed) by counting: indices in each cell come out
// ascending because the genes are visited in order.
inline void csc_to_csr(std::size_t n_cells, const std::vector<std::int64_t>& cptr, const std::vector<std::int32_t>& cidx,
                       const std::vector<float>& cval, SparseExpression& out) {
    out.indptr.assign(n_cells + 1, 0);
    for (std::int32_t c : cidx) ++out.indptr[static_cast<std::size_t>(c) + 1];
    std::partial_sum(out.indptr.begin(), out.indptr.end(), out.indptr.begin());
    std::vector<std::int64_t> next(out.indptr.begin(), out.indptr.end() - 1);
    out.indices.resize(cidx.size());
    out.values.resize(cidx.size());
    for (std::size_t g = 0; g + 1 < cptr.size(); ++g)
        for (std::int64_t k = cptr[g]; k < cptr[g + 1]; ++k) {
            const auto cell = static_cast<std::size_t>(cidx[static_cast<std::size_t>(k)]);
            const auto at = static_cast<std::size_t>(next[cell]++);
            out.indices[at] = static_cast<std::int32_t>(g);
            out.values[at] = cval[static_cast<std::size_t>(k)];
        }
}

inline std::vector<std::int64_t> sparse_shape(const h5::Node& g) {
    const char* attr = g.has_attribute("shape") ? "shape" : g.has_attribute("h5sparse_shape") ? "h5sparse_shape" : nullptr;
    if (!attr) g.fail("has no 'shape' attribute");
    std::vector<std::int64_t> s = g.attribute_numbers<std::int64_t>(attr);
    if (s.size() != 2 || s[0] < 0 || s[1] < 0) g.fail("attribute '" + std::string(attr) + "' is not a 2-D shape");
    if (s[1] > std::numeric_limits<std::int32_t>::max()) g.fail("has more genes than this reader supports (2^31)");
    return s;
}

inline void read_sparse(const h5::Node& g, const H5adReadOptions& o, bool raw_exists, SparseExpression& out,
                        H5adSummary& summary) {
    std::string format = g.attribute_string("encoding-type");
    if (format.empty()) format = g.attribute_string("h5sparse_format");
    if (format == "csr_matrix" || format == "csr") format = "csr";
    else if (format == "csc_matrix" || format == "csc") format = "csc";
    else g.fail("is a group but not a sparse matrix (encoding '" + format + "'; expected csr_matrix or csc_matrix)");
    for (const char* part : {"data", "indices", "indptr"})
        if (!g.has(part)) g.fail(std::string("has no '") + part + "' dataset" + g.listing());
    const std::vector<std::int64_t> shape = sparse_shape(g);
    const std::string shape_text = "[" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + "]";
    const bool csr = format == "csr";
    const auto n_obs = static_cast<std::size_t>(shape[0]), n_var = static_cast<std::size_t>(shape[1]);
    // Only the shape says how many cells a CSC matrix has: check it against obs (read first) before
    // csc_to_csr allocates an offset per cell.
    if (!csr && n_obs != out.cells.size())
        g.fail("shape " + shape_text + " says " + std::to_string(n_obs) + " cells, but obs names " +
               std::to_string(out.cells.size()));
    summary.storage = format;
    summary.value_type = g.open("data").type().name();
    std::vector<std::int64_t> ptr = read_indptr(g, csr ? n_obs : n_var, shape_text);
    out.genes_count = static_cast<Index>(n_var);
    if (csr) { // the share's cells alone (all by default): entries ptr[first] .. ptr[first + count)
        const CellRange r = o.share.of(static_cast<std::int64_t>(n_obs));
        const auto begin = static_cast<std::size_t>(ptr[static_cast<std::size_t>(r.first)]);
        const auto end = static_cast<std::size_t>(ptr[static_cast<std::size_t>(r.first + r.count)]);
        std::vector<std::int32_t> idx = read_indices(g, n_var, begin, end);
        std::vector<float> val;
        read_values(g.open("data"), ptr, csr, o, raw_exists, val, begin, end);
        for (auto& p : ptr) p = std::clamp(p, static_cast<std::int64_t>(begin), static_cast<std::int64_t>(end)) - static_cast<std::int64_t>(begin);
        sort_rows(g, ptr, idx, val, "cell");
        out.indptr = std::move(ptr);
        out.indices = std::move(idx);
        out.values = std::move(val);
        if (!o.share.all()) out.held = r;
        return;
    }
    std::vector<std::int32_t> idx = read_indices(g, n_obs);
    std::vector<float> val;
    read_values(g.open("data"), ptr, csr, o, raw_exists, val);
    sort_rows(g, ptr, idx, val, "gene");
    csc_to_csr(n_obs, ptr, idx, val, out); // read whole, then cut down to the share
    if (!o.share.all()) restrict_to_cells(out, o.share.of(static_cast<std::int64_t>(n_obs)));
}

// A dense cells x genes dataset, read by blocks of rows and stored sparse.
inline void read_dense(const h5::Node& d, const H5adReadOptions& o, bool raw_exists, SparseExpression& out,
                       H5adSummary& summary) {
    const std::vector<hsize_t> dims = d.shape();
    if (dims.size() != 2) d.fail("is a " + std::to_string(dims.size()) + "-D dataset, not a cells x genes matrix");
    summary.storage = "dense";
    summary.value_type = d.type().name();
    const auto n_obs = static_cast<std::size_t>(dims[0]), n_var = static_cast<std::size_t>(dims[1]);
    if (n_var > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        d.fail("has more genes than this reader supports (2^31)");
    out.genes_count = static_cast<Index>(n_var);
    const CellRange share = o.share.of(static_cast<std::int64_t>(n_obs)); // rows read (all by default)
    const auto share_end = static_cast<std::size_t>(share.first + share.count);
    out.indptr.assign(static_cast<std::size_t>(share.first) + 1, 0);
    if (!o.share.all()) out.held = share;
    const std::size_t rows_per_block = std::max<std::size_t>(1, block_elements / std::max<std::size_t>(1, n_var));
    std::vector<float> row(n_var);
    for (std::size_t first = static_cast<std::size_t>(share.first); first < share_end; first += rows_per_block) {
        const std::size_t count = std::min(rows_per_block, share_end - first);
        const std::vector<double> block = d.read_rows<double>(first, count);
        for (std::size_t r = 0; r < count; ++r) {
            std::vector<double> one(block.begin() + static_cast<std::ptrdiff_t>(r * n_var),
                                    block.begin() + static_cast<std::ptrdiff_t>((r + 1) * n_var));
            check_values(d, one, o.allow_negative, raw_exists, row.data(), [&](std::size_t k) {
                return "cell " + std::to_string(first + r) + ", gene " + std::to_string(k);
            });
            for (std::size_t gi = 0; gi < n_var; ++gi)
                if (row[gi] != 0.0f) {
                    out.indices.push_back(static_cast<std::int32_t>(gi));
                    out.values.push_back(row[gi]);
                }
            out.indptr.push_back(static_cast<std::int64_t>(out.indices.size()));
        }
    }
    out.indptr.resize(n_obs + 1, static_cast<std::int64_t>(out.indices.size()));
}

inline void read_groups(const h5::Node& root, const Frame& obs, const H5adReadOptions& o, H5adData& r) {
    r.summary.obs_columns = obs.columns();
    if (o.group_column.empty()) return;
    const bool present = obs.legacy ? std::find(r.summary.obs_columns.begin(), r.summary.obs_columns.end(),
                                                o.group_column) != r.summary.obs_columns.end()
                                    : obs.node.has(o.group_column);
    if (!present) {
        if (o.group_column_required)
            obs.node.fail("has no column '" + o.group_column + "' (columns: " + join_names(r.summary.obs_columns, 40) + ")");
        r.summary.group_column_missing = true;
        return;
    }
    r.data.groups = obs.legacy ? legacy_frame_column(root, obs.node, o.group_column)
                               : group_frame_column(obs.node, o.group_column);
    if (static_cast<Index>(r.data.groups.size()) != r.data.n_cells())
        obs.node.fail("column '" + o.group_column + "' has " + std::to_string(r.data.groups.size()) + " rows for " +
                      std::to_string(r.data.n_cells()) + " cells");
    r.summary.cells_without_group =
        static_cast<Index>(std::count(r.data.groups.begin(), r.data.groups.end(), std::string()));
}

inline void check_names(const h5::Node& frame, const std::vector<std::string>& names, std::size_t expected,
                        const char* what, const std::string& matrix) {
    if (names.size() != expected)
        frame.fail("names " + std::to_string(names.size()) + " " + what + ", but " + matrix + " has " +
                   std::to_string(expected));
}

inline void check_unique_cells(const h5::Node& obs, const std::vector<std::string>& cells) {
    std::unordered_set<std::string> seen;
    seen.reserve(cells.size());
    for (std::size_t i = 0; i < cells.size(); ++i)
        if (!seen.insert(cells[i]).second)
            obs.fail("cell id \"" + cells[i] + "\" appears twice (the second time in row " + std::to_string(i) + ")");
}

} // namespace detail::h5ad

// Reads the expression matrix of an h5ad file already open (see the header comment).
inline H5adData read_h5ad(const h5::Node& root, const H5adReadOptions& o = {}) {
    using namespace detail::h5ad;
    H5adData r;
    r.summary.layout = layout_of(root);
    const MatrixChoice choice = choose_matrix(root, o.layer);
    const bool raw_exists = o.layer != "raw" && ((root.child_kind("raw") == h5::Kind::group && root.open("raw").has("X")) ||
                                                 root.has("raw.X"));
    const h5::Node m = open_path(root, choice.matrix);
    r.summary.matrix = m.path();
    if (!root.has("obs")) root.fail("has no 'obs' (cell names)" + root.listing());
    const Frame obs = open_frame(root, "obs");
    r.data.cells = obs.index(); // before the matrix: read_sparse checks a CSC shape against it
    if (m.is_group()) read_sparse(m, o, raw_exists, r.data, r.summary);
    else read_dense(m, o, raw_exists, r.data, r.summary);
    check_names(obs.node, r.data.cells, static_cast<std::size_t>(r.data.n_cells()), "cells", m.path());
    check_unique_cells(obs.node, r.data.cells);
    const std::string var_path = choice.var;
    const std::size_t slash = var_path.find('/');
    if (slash == std::string::npos ? !root.has(var_path)
                                   : !root.open(var_path.substr(0, slash)).has(var_path.substr(slash + 1)))
        root.fail("has no '" + var_path + "' (gene names of " + m.path() + ")");
    const Frame var = slash == std::string::npos ? open_frame(root, var_path)
                                                 : open_frame(root.open(var_path.substr(0, slash)), var_path.substr(slash + 1));
    r.data.genes = var.index();
    check_names(var.node, r.data.genes, static_cast<std::size_t>(r.data.n_genes()), "genes", m.path());
    if (o.upper_case_genes)
        for (auto& g : r.data.genes) detail::upper_case_ascii(g);
    read_groups(root, obs, o, r);
    return r;
}

// Reads the expression matrix of the h5ad file at `path`.
inline H5adData read_h5ad(const std::string& path, const H5adReadOptions& o = {}) {
    return read_h5ad(h5::open_file(path), o);
}

} // namespace exsal

#endif // EXSAL_IO_H5AD_HPP
