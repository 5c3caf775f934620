// libFuzzer target: read_h5ad and read_10x_h5, structure-aware. HDF5's own file parser is not ours
// to harden (libhdf5 is not instrumented and crashes on some damaged files), so the input is never
// an HDF5 file: it is decoded into an AnnData (or Cell Ranger) structure, written with libhdf5 into
// an in-memory file whose image h5::open_image reads back. Unless the tamper mask says otherwise the
// structure is well formed; its bits bend shapes, index arrays, values, names, codes, attributes,
// dataset types and leave objects out.
//
// Input, read from the front (bytes past the end read as 0, so a short input is a small file):
//   byte 0     layout: 0 anndata >= 0.8, 1 anndata 0.7, 2 anndata <= 0.6, 3 Cell Ranger >= 3 (/matrix),
//              4 Cell Ranger 2 (/GRCh38)
//   byte 1     options: bits 0-1 layer ("", "raw", "counts", "none": absent), bits 2-4 group column
//              (cluster, "", batch, n_counts, flag, absent, cluster, batch), bit 5 group column
//              required, bit 6 keep the symbols' case, bit 7 allow negative values (10x: keep every
//              feature type)
//   byte 2     number of tamperings (0-3; 0 = a well-formed file), then a byte for each: which
//              (enum Tamper, bit number mod 17). Few at a time, so that one reaches deep.
//   then the model (make_model), then a storage byte per matrix written (write_matrix, write_tenx),
//   interleaved with the bytes that the tamperings of the mask consume.
// A finding: a crash, sanitizer report, leak, exception other than exsal::Error, a SparseExpression
// with inconsistent arrays, genes not strictly ascending or out of range within a cell, values not
// finite or negative (or -0) unless allowed; and, for a well-formed file, a read that fails although
// the options ask for something the file holds, succeeds although a value is bad, or returns other
// values, names or labels than were written.
// EXSAL_FUZZ_VERBOSE=1 in the environment prints each input's outcome (to check seeds).

#include "fuzz_common.hpp"
#include "fuzz_sparse.hpp"

#include "exsal/io/h5ad.hpp"
#include "exsal/io/tenx_h5.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

namespace h5 = exsal::h5;

[[noreturn]] void finding(const std::string& what) {
    std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
    std::abort();
}

// ---- input -------------------------------------------------------------------------------------

class Input {
public:
    Input(const unsigned char* data, std::size_t size) : m_data(data), m_size(size) {}
    unsigned byte() { return m_pos < m_size ? m_data[m_pos++] : 0u; }
    unsigned below(unsigned n) { return byte() % n; }
    std::string text() { // 0-12 arbitrary bytes: NUL, invalid UTF-8, '/'
        std::string s(below(13), '\0');
        for (char& c : s) c = static_cast<char>(byte());
        return s;
    }

private:
    const unsigned char* m_data;
    std::size_t m_size;
    std::size_t m_pos = 0;
};

enum Tamper : std::uint32_t {
    t_shape = 1u << 0,      // the shape attribute of sparse groups, 10x's shape dataset
    t_indptr = 1u << 1,
    t_indices = 1u << 2,
    t_data = 1u << 3,
    t_cells = 1u << 4,      // obs index, barcodes
    t_genes = 1u << 5,      // var index, feature names
    t_codes = 1u << 6,      // categorical codes
    t_categories = 1u << 7,
    t_encoding = 1u << 8,   // encoding-type / h5sparse_format attributes
    t_rank = 1u << 9,       // dense matrices not cells x genes
    t_columns = 1u << 10,   // the other obs columns (batch, n_counts, flag)
    t_raw_var = 1u << 11,
    t_types = 1u << 12,     // strings where numbers belong and numbers where strings belong
    t_frames = 1u << 13,    // _index and column-order attributes, dataframes of the wrong kind
    t_reference = 1u << 14, // anndata 0.7's categories reference points elsewhere
    t_features = 1u << 15,  // 10x feature types, a second genome
    t_omit = 1u << 16,      // objects left out
};

struct Fuzz {
    Input in;
    std::uint32_t mask = 0;
    bool on(std::uint32_t bit) const { return (mask & bit) != 0; }
    // Each consumes a byte only when its bit is set, so a well-formed file reads no byte for them.
    bool omit() { return on(t_omit) && in.below(8) == 0; }
    bool swap_type() { return on(t_types) && in.below(8) == 0; }
};

// Boundaries of the types a reader converts through, or a small number.
std::int64_t wild_integer(Input& in) {
    using L32 = std::numeric_limits<std::int32_t>;
    using L64 = std::numeric_limits<std::int64_t>;
    static constexpr std::int64_t table[16] = {-1, 0, 1, 2, 255, 256, 4096, -4096, L32::max(), std::int64_t(L32::max()) + 1,
                                               L32::min(), std::int64_t(1) << 32, std::int64_t(1) << 62, L64::max(),
                                               L64::min(), 65535};
    const unsigned b = in.byte();
    return b < 16 ? table[b] : static_cast<std::int64_t>(b) - 80; // -64 .. 175
}

double wild_real(Input& in) {
    static const double table[8] = {std::numeric_limits<double>::quiet_NaN(), HUGE_VAL, -HUGE_VAL, -0.0, 1e300, -1.0,
                                    3.5e38, 1e-310};
    const unsigned b = in.byte();
    return b < 8 ? table[b] : (b - 8) * 0.5;
}

void draw(Input& in, std::int64_t& x) { x = wild_integer(in); }
void draw(Input& in, double& x) { x = wild_real(in); }
void draw(Input& in, std::string& x) { x = in.text(); }

// A copy of `v`, bent when `bit` is in the mask: shortened, lengthened, an element replaced or
// repeated, or all replaced by up to 255 wild elements.
template <class T> std::vector<T> mutated(Fuzz& f, std::uint32_t bit, std::vector<T> v) {
    if (!f.on(bit)) return v;
    const unsigned rounds = 1 + f.in.below(3);
    for (unsigned r = 0; r < rounds; ++r) {
        switch (f.in.below(5)) {
        case 0:
            if (!v.empty()) v.pop_back();
            break;
        case 1: v.emplace_back(), draw(f.in, v.back()); break;
        case 2:
            if (!v.empty()) draw(f.in, v[f.in.byte() % v.size()]);
            break;
        case 3:
            if (!v.empty()) {
                const std::size_t to = f.in.byte() % v.size();
                v[to] = v[f.in.byte() % v.size()];
            }
            break;
        default:
            v.resize(f.in.byte());
            for (auto& x : v) draw(f.in, x);
        }
    }
    return v;
}

// ---- the model: what the file says when nothing is tampered with -------------------------------

enum class Dtype { i32, i64, f32, f64, u8 };
enum Layout { v08, v07, legacy, tenx3, tenx2 };

bool is_float(Dtype t) { return t == Dtype::f32 || t == Dtype::f64; }

// Whether `v` is stored exactly as type `t`.
bool representable(double v, Dtype t) {
    if (t == Dtype::f64) return true;
    if (t == Dtype::f32)
        return !std::isfinite(v) || (std::fabs(v) <= std::numeric_limits<float>::max() &&
                                     static_cast<double>(static_cast<float>(v)) == v);
    if (!std::isfinite(v) || v != std::floor(v)) return false;
    if (t == Dtype::u8) return v >= 0 && v <= 255;
    if (t == Dtype::i32) return v >= -2147483648.0 && v <= 2147483647.0;
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
}
bool representable(std::int64_t v, Dtype t) {
    const std::int64_t a = v < 0 ? -(v + 1) : v; // no overflow at the minimum
    switch (t) {
    case Dtype::i64: return true;
    case Dtype::f64: return a < (std::int64_t(1) << 53);
    case Dtype::f32: return a < (std::int64_t(1) << 24);
    case Dtype::u8: return v >= 0 && v <= 255;
    default: return v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max();
    }
}

struct Model {
    std::size_t n_obs = 0, n_var = 0;
    Dtype dtype = Dtype::f32;       // of every matrix's values, so each value is stored exactly
    Dtype codes_dtype = Dtype::i32; // of the cluster codes
    std::vector<std::vector<std::pair<std::int64_t, double>>> rows; // per cell (gene, value), genes ascending
    std::vector<std::string> cells, genes, raw_genes, ids, feature_types, categories, batch;
    std::vector<std::int64_t> codes, flag, flag_mask;
    std::vector<double> n_counts;
    bool layers = false, raw = false, flag_boolean = false, flag_enum = false;
};

// A value of type `t`: mostly small counts, also fractions, zeros, negatives, NaN, infinities, -0,
// values beyond single precision, denormals, the type's extremes.
double model_value(Input& in, Dtype t) {
    const unsigned kind = in.byte() % 8, mag = in.byte();
    const bool real = is_float(t);
    double v = mag;
    if (kind == 3 && real) v = mag / 4.0;
    if (kind == 4) v = 0.0;
    if (kind == 5) v = t == Dtype::u8 ? mag : -1.0 - mag;
    if (kind == 7) v = mag * 1e6;
    if (kind == 6) {
        static const double reals[8] = {std::numeric_limits<double>::quiet_NaN(), HUGE_VAL, -HUGE_VAL, -0.0, 1e300,
                                        1e-310, 3.4028234663852886e38, 1e-3};
        static const double ints[4] = {-2147483648.0, 2147483647.0, 4611686018427387904.0, -9223372036854775808.0};
        v = real ? reals[mag % 8] : t == Dtype::u8 ? 255.0 : ints[mag % (t == Dtype::i32 ? 2 : 4)];
    }
    if (t == Dtype::f32) v = static_cast<double>(static_cast<float>(v)); // 1e300 and 1e-310: inf and 0
    if (t == Dtype::u8) v = std::min(v, 255.0);
    if (t == Dtype::i32) v = std::min(v, 2147483647.0);
    return v;
}

void model_names(Model& m, unsigned antibodies) {
    for (std::size_t c = 0; c < m.n_obs; ++c) {
        m.cells.push_back("cell-" + std::to_string(c));
        m.batch.push_back("batch" + std::to_string(c % 3));
        m.flag.push_back(static_cast<std::int64_t>(c % (m.flag_boolean ? 2 : 3)));
        m.flag_mask.push_back(c % 4 == 3);
        double sum = 0;
        for (const auto& e : m.rows[c]) sum += std::isfinite(e.second) ? e.second : 0.0;
        m.n_counts.push_back(sum);
    }
    for (std::size_t g = 0; g < m.n_var; ++g) { // distinct, also once upper-cased
        const bool antibody = (antibodies >> (g % 8)) & 1u;
        m.genes.push_back((antibody ? "Ab" : "Gene") + std::to_string(g));
        m.raw_genes.push_back("rawGene" + std::to_string(g));
        m.ids.push_back("ENSG" + std::to_string(1000 + g));
        m.feature_types.emplace_back(antibody ? "Antibody Capture" : "Gene Expression");
    }
}

Model make_model(Input& in) {
    Model m;
    m.n_obs = in.below(33);
    m.n_var = in.below(33);
    m.dtype = static_cast<Dtype>(in.below(5));
    m.codes_dtype = static_cast<Dtype>(in.below(5));
    const unsigned n_categories = in.below(9), antibodies = in.byte(), parts = in.byte();
    m.layers = parts & 1u;
    m.raw = parts & 2u;
    m.flag_boolean = parts & 4u;
    m.flag_enum = parts & 8u;
    std::vector<std::map<std::int64_t, double>> rows(m.n_obs);
    const unsigned entries = m.n_obs && m.n_var ? in.byte() : 0;
    for (unsigned k = 0; k < entries; ++k) {
        const std::size_t c = in.byte() % m.n_obs;
        const auto g = static_cast<std::int64_t>(in.byte() % m.n_var);
        rows[c].emplace(g, model_value(in, m.dtype)); // the first value of a (cell, gene) stays
    }
    for (const auto& r : rows) m.rows.emplace_back(r.begin(), r.end());
    for (unsigned k = 0; k < n_categories; ++k)
        m.categories.push_back("type " + std::string(1, static_cast<char>('A' + k)));
    for (std::size_t c = 0; c < m.n_obs; ++c)
        m.codes.push_back(static_cast<std::int64_t>(in.byte() % (n_categories + 1)) - 1); // -1: no category
    model_names(m, antibodies);
    return m;
}

// ---- writing ------------------------------------------------------------------------------------

template <class T> T narrow(double v) {
    if constexpr (std::is_floating_point_v<T>) {
        if (std::isfinite(v) && std::fabs(v) > static_cast<double>(std::numeric_limits<T>::max()))
            return v > 0 ? std::numeric_limits<T>::infinity() : -std::numeric_limits<T>::infinity();
        return static_cast<T>(v);
    } else {
        if (std::isnan(v)) return 0;
        if (v <= static_cast<double>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
        if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
        return static_cast<T>(v);
    }
}
template <class T> T narrow(std::int64_t v) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<T>(v);
    else
        return static_cast<T>(std::clamp<std::int64_t>(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
}

template <class T, class U>
void write_as(const h5::Node& g, const std::string& name, const std::vector<hsize_t>& dims, const std::vector<U>& v) {
    hsize_t total = 1;
    for (hsize_t d : dims) total *= d;
    fuzz_check(total == v.size()); // HDF5 reads `total` elements from the buffer
    std::vector<T> buffer;
    buffer.reserve(v.size());
    for (const U& x : v) buffer.push_back(narrow<T>(x));
    g.write<T>(name, dims, buffer.data());
}

// Writes `v` as a dataset of type `t` (1-D unless `dims` says otherwise), unless the tampering
// leaves it out or writes strings instead. False when a value does not survive the type.
template <class U>
bool numbers(Fuzz& f, const h5::Node& g, const std::string& name, Dtype t, const std::vector<U>& v,
             std::vector<hsize_t> dims = {}) {
    if (dims.empty()) dims = {static_cast<hsize_t>(v.size())};
    if (f.omit()) return false;
    if (f.swap_type()) {
        std::vector<std::string> s;
        for (const U& x : v) s.push_back(std::to_string(x));
        g.write_strings(name, s);
        return false;
    }
    switch (t) {
    case Dtype::i32: write_as<std::int32_t>(g, name, dims, v); break;
    case Dtype::i64: write_as<std::int64_t>(g, name, dims, v); break;
    case Dtype::f32: write_as<float>(g, name, dims, v); break;
    case Dtype::f64: write_as<double>(g, name, dims, v); break;
    case Dtype::u8: write_as<std::uint8_t>(g, name, dims, v); break;
    }
    return std::all_of(v.begin(), v.end(), [t](const U& x) { return representable(x, t); });
}

// Strings of fixed length, NUL-padded, as Cell Ranger and anndata <= 0.6 store them.
void write_fixed_strings(const h5::Node& g, const std::string& name, const std::vector<std::string>& v) {
    std::size_t width = 1;
    for (const auto& s : v) width = std::max(width, s.size());
    std::vector<char> buffer(v.size() * width + 1, '\0');
    for (std::size_t i = 0; i < v.size(); ++i) std::memcpy(buffer.data() + i * width, v[i].data(), v[i].size());
    h5::Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.id(), width);
    H5Tset_strpad(type.id(), H5T_STR_NULLPAD);
    const hsize_t n = v.size();
    h5::Handle space(H5Screate_simple(1, &n, nullptr));
    h5::Handle d(H5Dcreate2(g.id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    fuzz_check(d.valid() && (n == 0 || H5Dwrite(d.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) >= 0));
}

void strings(Fuzz& f, const h5::Node& g, const std::string& name, const std::vector<std::string>& v, bool fixed = false) {
    if (f.omit()) return;
    if (f.swap_type()) {
        std::vector<std::int64_t> n(v.size());
        for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::int64_t>(i);
        write_as<std::int64_t>(g, name, {static_cast<hsize_t>(n.size())}, n);
        return;
    }
    if (fixed) write_fixed_strings(g, name, v);
    else g.write_strings(name, v);
}

// h5py's booleans: an int8 enum FALSE/TRUE.
void write_bools(Fuzz& f, const h5::Node& g, const std::string& name, const std::vector<std::int64_t>& v) {
    if (f.omit()) return;
    h5::Handle type(H5Tenum_create(H5T_NATIVE_INT8));
    const std::int8_t no = 0, yes = 1;
    H5Tenum_insert(type.id(), "FALSE", &no);
    H5Tenum_insert(type.id(), "TRUE", &yes);
    std::vector<std::int8_t> b;
    for (std::int64_t x : v) b.push_back(narrow<std::int8_t>(x));
    const hsize_t n = b.size();
    h5::Handle space(H5Screate_simple(1, &n, nullptr));
    h5::Handle d(H5Dcreate2(g.id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    fuzz_check(d.valid() && (n == 0 || H5Dwrite(d.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, b.data()) >= 0));
}

std::optional<h5::Node> group(Fuzz& f, const h5::Node& parent, const std::string& name) {
    if (f.omit()) return std::nullopt;
    return parent.create_group(name);
}

// A string attribute (a helper: a string literal would pick set_attribute's bool overload).
void attr(const h5::Node& n, const std::string& name, const std::string& value) { n.set_attribute(name, value); }

// What was written for one matrix, for the expectations.
struct MatrixInfo {
    bool ok = false;     // well formed for the reader: values stored exactly, integer index arrays
    std::string storage; // "csr", "csc", "dense"
};

struct Written {
    MatrixInfo x, layer, raw;
    bool cluster_ok = true; // codes stored exactly (and, for anndata <= 0.6, as integers)
};

// CSR (by cell) or CSC (by gene) arrays of the model; `reversed` leaves each row's indices
// descending, as some writers do (the readers sort them).
struct Compressed {
    std::vector<std::int64_t> ptr{0}, idx;
    std::vector<double> val;
};

Compressed compress(const Model& m, bool by_cell, bool reversed) {
    std::vector<std::vector<std::pair<std::int64_t, double>>> lines = m.rows;
    if (!by_cell) {
        lines.assign(m.n_var, {});
        for (std::size_t c = 0; c < m.n_obs; ++c)
            for (const auto& e : m.rows[c]) lines[static_cast<std::size_t>(e.first)].emplace_back(c, e.second);
    }
    Compressed out;
    for (auto& line : lines) {
        if (reversed) std::reverse(line.begin(), line.end());
        for (const auto& e : line) {
            out.idx.push_back(e.first);
            out.val.push_back(e.second);
        }
        out.ptr.push_back(static_cast<std::int64_t>(out.idx.size()));
    }
    return out;
}

MatrixInfo write_dense(Fuzz& f, const h5::Node& parent, const std::string& name, const Model& m) {
    std::vector<double> full(m.n_obs * m.n_var, 0.0);
    for (std::size_t c = 0; c < m.n_obs; ++c)
        for (const auto& e : m.rows[c]) full[c * m.n_var + static_cast<std::size_t>(e.first)] = e.second;
    std::vector<hsize_t> dims = {m.n_obs, m.n_var};
    if (f.on(t_rank)) {
        const unsigned r = f.in.below(3);
        dims = r == 0 ? std::vector<hsize_t>{full.size()} : r == 1 ? std::vector<hsize_t>{m.n_obs, m.n_var, 1}
                                                                   : std::vector<hsize_t>{m.n_var, m.n_obs};
    }
    return {numbers(f, parent, name, m.dtype, full, dims), "dense"};
}

void write_sparse_attributes(Fuzz& f, const h5::Node& g, const Model& m, bool csr, Layout layout) {
    std::string format = layout == legacy ? (csr ? "csr" : "csc") : (csr ? "csr_matrix" : "csc_matrix");
    bool write_format = true;
    if (f.on(t_encoding)) {
        const unsigned e = f.in.below(4);
        write_format = e != 0;
        if (e == 1) format = csr ? "csc_matrix" : "csr_matrix"; // the arrays read the other way round
        if (e == 2) format = f.in.text();
    }
    if (write_format) attr(g, layout == legacy ? "h5sparse_format" : "encoding-type", format);
    if (layout != legacy) attr(g, "encoding-version", "0.1.0");
    const char* shape_name = layout == legacy ? "h5sparse_shape" : "shape";
    const std::vector<std::int64_t> shape = mutated(
        f, t_shape, std::vector<std::int64_t>{static_cast<std::int64_t>(m.n_obs), static_cast<std::int64_t>(m.n_var)});
    if (f.omit()) return;
    if (f.swap_type()) g.set_attribute(shape_name, std::vector<std::string>{"1", "2"});
    else if (f.on(t_shape) && f.in.below(4) == 0) g.set_attribute<double>(shape_name, {0.5, 1e300});
    else g.set_attribute<std::int64_t>(shape_name, shape);
}

// X, a layer or the raw matrix: CSR, CSC (indices possibly descending) or dense, per a storage
// byte: bits 0-1 storage (csr, csc, dense, csr with descending indices), bits 2-4 index type.
MatrixInfo write_matrix(Fuzz& f, const h5::Node& parent, const std::string& name, const Model& m, Layout layout) {
    const unsigned s = f.in.byte();
    if ((s & 3u) == 2) return write_dense(f, parent, name, m);
    const Dtype index_type = static_cast<Dtype>((s >> 2) % 5);
    const bool csr = (s & 3u) != 1;
    const Compressed c = compress(m, csr, (s & 3u) == 3);
    const std::optional<h5::Node> g = group(f, parent, name);
    if (!g) return {};
    write_sparse_attributes(f, *g, m, csr, layout);
    bool ok = !is_float(index_type); // the h5ad reader wants integer indices
    ok = numbers(f, *g, "data", m.dtype, mutated(f, t_data, c.val)) && ok;
    ok = numbers(f, *g, "indices", index_type, mutated(f, t_indices, c.idx)) && ok;
    ok = numbers(f, *g, "indptr", index_type, mutated(f, t_indptr, c.ptr)) && ok;
    return {ok, csr ? "csr" : "csc"};
}

// obs or var of anndata >= 0.7: a group with `_index` (row names) and columns.
std::optional<h5::Node> frame_group(Fuzz& f, const h5::Node& parent, const std::string& name,
                                    const std::vector<std::string>& index, const std::vector<std::string>& columns) {
    const unsigned how = f.on(t_frames) ? f.in.byte() : 0;
    if ((how & 7u) == 1) { // a plain dataset where a dataframe belongs
        numbers(f, parent, name, Dtype::f64, std::vector<double>(index.size(), 1.0));
        return std::nullopt;
    }
    std::optional<h5::Node> g = group(f, parent, name);
    if (!g) return g;
    static const char* index_names[4] = {"_index", "index", "missing", ""};
    if ((how & 7u) != 2) attr(*g, "_index", index_names[(how >> 3) & 3u]);
    attr(*g, "encoding-type", "dataframe");
    attr(*g, "encoding-version", "0.2.0");
    if ((how >> 5) == 1) g->set_attribute<std::int64_t>("column-order", {1, 2});
    else if ((how >> 5) != 2) {
        if (columns.empty()) g->set_attribute<double>("column-order", {}); // what anndata writes for none
        else g->set_attribute("column-order", columns);
    }
    strings(f, *g, "_index", index);
    return g;
}

void write_categorical(Fuzz& f, const h5::Node& obs, const Model& m, Written& w) {
    const std::optional<h5::Node> c = group(f, obs, "cluster");
    if (!c) return;
    static const char* encodings[4] = {"categorical", "", "nullable-integer", "dataframe"};
    attr(*c, "encoding-type", f.on(t_encoding) ? encodings[f.in.below(4)] : "categorical");
    attr(*c, "encoding-version", "0.2.0");
    c->set_attribute("ordered", false);
    w.cluster_ok = numbers(f, *c, "codes", m.codes_dtype, mutated(f, t_codes, m.codes));
    if (f.on(t_categories) && f.in.below(4) == 0) // numeric categories are legal: labels "0.5", "1", ...
        numbers(f, *c, "categories", Dtype::f64, std::vector<double>{0.5, 1.0, -2.0, 1e300});
    else
        strings(f, *c, "categories", mutated(f, t_categories, m.categories));
}

// anndata 0.7: integer codes whose attribute `categories` refers to obs/__categories/cluster.
void write_codes_07(Fuzz& f, const h5::Node& obs, const Model& m, Written& w) {
    if (const std::optional<h5::Node> cats = group(f, obs, "__categories"))
        strings(f, *cats, "cluster", mutated(f, t_categories, m.categories));
    w.cluster_ok = numbers(f, obs, "cluster", m.codes_dtype, mutated(f, t_codes, m.codes));
    if (obs.child_kind("cluster") != h5::Kind::dataset) return;
    const h5::Node codes = obs.open("cluster");
    std::string target = "/obs/__categories/cluster";
    if (f.on(t_reference)) {
        static const char* targets[5] = {"/obs", "/", "/obs/n_counts", "/obs/__categories/missing", ""};
        target = targets[f.in.below(5)];
        if (target.empty()) return attr(codes, "categories", "/obs/__categories/cluster"); // a path, not a reference
    }
    hobj_ref_t ref{};
    if (H5Rcreate(&ref, codes.id(), target.c_str(), H5R_OBJECT, -1) < 0) return; // no such object: no attribute
    h5::Handle space(H5Screate(H5S_SCALAR));
    h5::Handle a(H5Acreate2(codes.id(), "categories", H5T_STD_REF_OBJ, space.id(), H5P_DEFAULT, H5P_DEFAULT));
    fuzz_check(a.valid() && H5Awrite(a.id(), H5T_STD_REF_OBJ, &ref) >= 0);
}

// anndata >= 0.8's nullable columns: values with a mask (booleans as h5py's enum or as uint8).
void write_flag(Fuzz& f, const h5::Node& obs, const Model& m) {
    const std::optional<h5::Node> g = group(f, obs, "flag");
    if (!g) return;
    attr(*g, "encoding-type", m.flag_boolean ? "nullable-boolean" : "nullable-integer");
    attr(*g, "encoding-version", "0.1.0");
    const std::vector<std::int64_t> values = mutated(f, t_columns, m.flag), mask = mutated(f, t_columns, m.flag_mask);
    if (m.flag_boolean && m.flag_enum) write_bools(f, *g, "values", values);
    else numbers(f, *g, "values", m.flag_boolean ? Dtype::u8 : Dtype::i64, values);
    if (m.flag_enum) write_bools(f, *g, "mask", mask);
    else numbers(f, *g, "mask", Dtype::u8, mask);
}

void write_obs(Fuzz& f, const h5::Node& root, const Model& m, bool v8, Written& w) {
    std::vector<std::string> columns = {"cluster", "batch", "n_counts"};
    if (v8) columns.emplace_back("flag");
    const std::optional<h5::Node> obs = frame_group(f, root, "obs", mutated(f, t_cells, m.cells), columns);
    if (!obs) return;
    strings(f, *obs, "batch", mutated(f, t_columns, m.batch));
    numbers(f, *obs, "n_counts", Dtype::f64, mutated(f, t_columns, m.n_counts));
    if (v8) {
        write_categorical(f, *obs, m, w);
        write_flag(f, *obs, m);
    } else {
        write_codes_07(f, *obs, m, w);
    }
}

// ---- anndata <= 0.6: compound obs and var --------------------------------------------------------

struct Field {
    std::string name;
    bool text = false;
    Dtype type = Dtype::f64;
    std::vector<std::string> s;
    std::vector<double> x;
};

hid_t native(Dtype t) {
    switch (t) {
    case Dtype::i32: return H5T_NATIVE_INT32;
    case Dtype::i64: return H5T_NATIVE_INT64;
    case Dtype::f32: return H5T_NATIVE_FLOAT;
    case Dtype::u8: return H5T_NATIVE_UINT8;
    default: return H5T_NATIVE_DOUBLE;
    }
}

void store(unsigned char* at, Dtype t, double v) {
    const auto put = [at](auto x) { std::memcpy(at, &x, sizeof x); };
    switch (t) {
    case Dtype::i32: put(narrow<std::int32_t>(v)); break;
    case Dtype::i64: put(narrow<std::int64_t>(v)); break;
    case Dtype::f32: put(narrow<float>(v)); break;
    case Dtype::u8: put(narrow<std::uint8_t>(v)); break;
    default: put(v);
    }
}

// A 1-D compound dataset of `rows` rows (fields shorter than that are padded with "" or 0).
void write_compound(Fuzz& f, const h5::Node& parent, const std::string& name, const std::vector<Field>& fields,
                    std::size_t rows) {
    if (f.omit()) return;
    std::vector<h5::Handle> types;
    std::vector<std::size_t> offset;
    std::size_t total = 0;
    for (const Field& field : fields) {
        std::size_t width = 1;
        for (const auto& s : field.s) width = std::max(width, s.size());
        types.emplace_back(H5Tcopy(field.text ? H5T_C_S1 : native(field.type)));
        if (field.text) H5Tset_size(types.back().id(), width);
        offset.push_back(total);
        total += H5Tget_size(types.back().id());
    }
    h5::Handle type(H5Tcreate(H5T_COMPOUND, total));
    for (std::size_t i = 0; i < fields.size(); ++i)
        H5Tinsert(type.id(), fields[i].name.c_str(), offset[i], types[i].id());
    std::vector<unsigned char> buffer(rows * total + 1, 0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < fields.size(); ++i) {
            unsigned char* at = buffer.data() + r * total + offset[i];
            if (fields[i].text && r < fields[i].s.size()) std::memcpy(at, fields[i].s[r].data(), fields[i].s[r].size());
            if (!fields[i].text) store(at, fields[i].type, r < fields[i].x.size() ? fields[i].x[r] : 0.0);
        }
    const hsize_t n = rows;
    h5::Handle space(H5Screate_simple(1, &n, nullptr));
    h5::Handle d(H5Dcreate2(parent.id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    fuzz_check(d.valid() && (n == 0 || H5Dwrite(d.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) >= 0));
}

void write_legacy_frame(Fuzz& f, const h5::Node& parent, const std::string& name, const std::vector<std::string>& index,
                        std::vector<Field> columns) {
    if (f.on(t_frames) && f.in.below(4) == 0) { // a dataset without fields
        numbers(f, parent, name, Dtype::f64, std::vector<double>(index.size(), 1.0));
        return;
    }
    Field names{f.on(t_frames) && f.in.below(2) == 0 ? "name" : "index", true, Dtype::f64, index, {}};
    columns.insert(columns.begin(), std::move(names));
    write_compound(f, parent, name, columns, index.size());
}

void write_legacy_obs(Fuzz& f, const h5::Node& root, const Model& m, Written& w) {
    std::vector<double> codes;
    for (std::int64_t c : mutated(f, t_codes, m.codes)) codes.push_back(static_cast<double>(c));
    w.cluster_ok = !is_float(m.codes_dtype) && std::all_of(codes.begin(), codes.end(), [&](double c) {
        return representable(c, m.codes_dtype);
    });
    std::vector<Field> columns = {{"cluster", false, m.codes_dtype, {}, codes},
                                  {"batch", true, Dtype::f64, mutated(f, t_columns, m.batch), {}},
                                  {"n_counts", false, Dtype::f64, {}, m.n_counts}};
    write_legacy_frame(f, root, "obs", mutated(f, t_cells, m.cells), columns);
    if (const std::optional<h5::Node> uns = group(f, root, "uns"))
        strings(f, *uns, "cluster_categories", mutated(f, t_categories, m.categories), true);
}

// ---- files ----------------------------------------------------------------------------------------

void write_h5ad(Fuzz& f, const h5::Node& root, const Model& m, Layout layout, Written& w) {
    if (layout == v08 && !(f.on(t_encoding) && f.in.below(2) == 0)) {
        attr(root, "encoding-type", "anndata");
        attr(root, "encoding-version", "0.1.0");
    }
    w.x = write_matrix(f, root, "X", m, layout);
    if (m.layers)
        if (const std::optional<h5::Node> layers = group(f, root, "layers"))
            w.layer = write_matrix(f, *layers, "counts", m, layout);
    if (m.raw && layout == legacy) {
        w.raw = write_matrix(f, root, "raw.X", m, layout);
        write_legacy_frame(f, root, "raw.var", mutated(f, t_raw_var, m.raw_genes), {});
    } else if (m.raw) {
        if (const std::optional<h5::Node> raw = group(f, root, "raw")) {
            w.raw = write_matrix(f, *raw, "X", m, layout);
            frame_group(f, *raw, "var", mutated(f, t_raw_var, m.raw_genes), {});
        }
    }
    if (layout == legacy) {
        write_legacy_obs(f, root, m, w);
        write_legacy_frame(f, root, "var", mutated(f, t_genes, m.genes), {});
    } else {
        write_obs(f, root, m, layout == v08, w);
        frame_group(f, root, "var", mutated(f, t_genes, m.genes), {});
    }
}

// Cell Ranger's matrix: CSC by barcode (= CSR by cell), barcodes and features as fixed strings.
void write_tenx(Fuzz& f, const h5::Node& root, const Model& m, bool v3, Written& w) {
    const std::optional<h5::Node> g = group(f, root, v3 ? "matrix" : "GRCh38");
    if (!g) return;
    const unsigned s = f.in.byte(); // bit 0 descending indices, bits 2-4 index type, bit 5 int64 shape
    const Dtype index_type = static_cast<Dtype>((s >> 2) % 5);
    const Compressed c = compress(m, true, s & 1u);
    strings(f, *g, "barcodes", mutated(f, t_cells, m.cells), true);
    bool ok = numbers(f, *g, "data", m.dtype, mutated(f, t_data, c.val));
    ok = numbers(f, *g, "indices", index_type, mutated(f, t_indices, c.idx)) && ok;
    ok = numbers(f, *g, "indptr", index_type, mutated(f, t_indptr, c.ptr)) && ok;
    const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(m.n_var), static_cast<std::int64_t>(m.n_obs)};
    ok = numbers(f, *g, "shape", (s & 32u) ? Dtype::i64 : Dtype::i32, mutated(f, t_shape, shape)) && ok;
    w.x = {ok, "csr"};
    const std::vector<std::string> names = mutated(f, t_genes, m.genes);
    if (!v3) {
        strings(f, *g, "gene_names", names, true);
        strings(f, *g, "genes", m.ids, true);
        if (f.on(t_features) && f.in.below(2) == 0)
            if (const std::optional<h5::Node> other = group(f, root, "mm10")) // a second genome
                strings(f, *other, "gene_names", names, true);
        return;
    }
    const std::optional<h5::Node> features = group(f, *g, "features");
    if (!features) return;
    strings(f, *features, "name", names, true);
    strings(f, *features, "id", m.ids, true);
    strings(f, *features, "feature_type", mutated(f, t_features, m.feature_types), true);
    strings(f, *features, "genome", std::vector<std::string>(m.n_var, "GRCh38"), true);
}

// The image of an in-memory HDF5 file (core driver, no backing store: nothing touches the disk)
// holding the model as `layout` lays it out.
std::vector<unsigned char> build_image(Fuzz& f, const Model& m, Layout layout, Written& w) {
    static unsigned long counter = 0; // a new name each time: libhdf5 knows open files by name
    const std::string name = "exsal-fuzz-h5-" + std::to_string(++counter) + ".h5";
    h5::Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fapl_core(fapl.id(), 1 << 16, 0);
    auto file = std::make_shared<h5::Handle>(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()));
    fuzz_check(file->valid());
    try {
        const h5::Node root(file, h5::Handle(H5Gopen2(file->id(), "/", H5P_DEFAULT)), name, "/");
        if (layout == tenx3 || layout == tenx2) write_tenx(f, root, m, layout == tenx3, w);
        else write_h5ad(f, root, m, layout, w);
    } catch (const exsal::Error& e) {
        finding(std::string("the harness could not write its file: ") + e.what());
    }
    fuzz_check(H5Fflush(file->id(), H5F_SCOPE_GLOBAL) >= 0);
    const ssize_t n = H5Fget_file_image(file->id(), nullptr, 0);
    fuzz_check(n > 0);
    std::vector<unsigned char> image(static_cast<std::size_t>(n));
    fuzz_check(H5Fget_file_image(file->id(), image.data(), image.size()) == n);
    return image; // the file closes with its last handle, `file`
}

// ---- reading and checking -----------------------------------------------------------------------

bool verbose() {
    static const bool v = std::getenv("EXSAL_FUZZ_VERBOSE") != nullptr;
    return v;
}

// The promises of every SparseExpression a reader returns.
void check_sparse(const exsal::SparseExpression& m, bool allow_negative) {
    try {
        m.check_consistent("fuzz");
    } catch (const exsal::Error& e) {
        finding(e.what());
    }
    exsal_fuzz::check_csr_rows(m, allow_negative);
    std::unordered_set<std::string> cells(m.cells.begin(), m.cells.end());
    fuzz_check(cells.size() == m.cells.size()); // both readers refuse a repeated cell id
}

// Whether the reader must accept every value of the model (the stored zeros of a dense matrix are
// always fine).
bool values_valid(const Model& m, bool allow_negative) {
    for (const auto& row : m.rows)
        for (const auto& e : row)
            if (!std::isfinite(e.second) || std::fabs(e.second) > std::numeric_limits<float>::max() ||
                (e.second < 0 && !allow_negative))
                return false;
    return true;
}

// The model as the reader should return it: genes renumbered by `new_gene` (-1 = dropped), zeros
// dropped when the matrix was dense.
void check_matrix(const exsal::SparseExpression& r, const Model& m, bool dense,
                  const std::vector<std::int32_t>& new_gene) {
    std::vector<std::int64_t> indptr{0};
    std::vector<std::int32_t> indices;
    std::vector<float> values;
    for (const auto& row : m.rows) {
        for (const auto& e : row) {
            const float v = static_cast<float>(e.second);
            const std::int32_t g = new_gene[static_cast<std::size_t>(e.first)];
            if (g < 0 || (dense && v == 0.0f)) continue;
            indices.push_back(g);
            values.push_back(v);
        }
        indptr.push_back(static_cast<std::int64_t>(indices.size()));
    }
    fuzz_check(r.indptr == indptr);
    fuzz_check(r.indices == indices);
    fuzz_check(r.values == values);
    fuzz_check(r.cells == m.cells);
}

std::vector<std::string> upper(std::vector<std::string> v, bool on) {
    if (on)
        for (auto& s : v) exsal::detail::upper_case_ascii(s);
    return v;
}

// The labels column `column` must give, when the harness can tell.
std::optional<std::vector<std::string>> expected_groups(const Model& m, const std::string& column, Layout layout) {
    std::vector<std::string> out;
    if (column == "cluster")
        for (std::int64_t c : m.codes) out.push_back(c < 0 ? "" : m.categories[static_cast<std::size_t>(c)]);
    else if (column == "batch") out = m.batch;
    else if (column == "flag" && layout == v08)
        for (std::size_t i = 0; i < m.flag.size(); ++i)
            out.push_back(m.flag_mask[i]     ? ""
                          : m.flag_boolean ? (m.flag[i] ? "True" : "False")
                                           : std::to_string(m.flag[i]));
    else if (column == "n_counts") return std::nullopt; // number_text's business
    return out;
}

bool column_written(const std::string& column, Layout layout) {
    return column == "cluster" || column == "batch" || column == "n_counts" || (column == "flag" && layout == v08);
}

struct Expectation {
    bool must_succeed = false, must_fail = false;
    const MatrixInfo* matrix = nullptr; // the matrix read, when the options name one the file holds
};

Expectation expect_h5ad(bool clean, const Model& m, const Written& w, const exsal::H5adReadOptions& o, Layout layout) {
    Expectation e;
    const std::string& l = o.layer;
    e.matrix = l.empty() ? &w.x : l == "raw" && m.raw ? &w.raw : l == "counts" && m.layers ? &w.layer : nullptr;
    if (!clean) return e;
    const bool column_missing = !o.group_column.empty() && !column_written(o.group_column, layout);
    const bool bad_values = e.matrix && e.matrix->ok && !values_valid(m, o.allow_negative);
    if (!e.matrix || bad_values || (column_missing && o.group_column_required)) e.must_fail = true;
    else if (e.matrix->ok && (o.group_column != "cluster" || w.cluster_ok)) e.must_succeed = true;
    return e;
}

void compare_h5ad(const exsal::H5adData& r, const Model& m, const Expectation& e, const exsal::H5adReadOptions& o,
                  Layout layout) {
    std::vector<std::int32_t> identity(m.n_var);
    for (std::size_t g = 0; g < m.n_var; ++g) identity[g] = static_cast<std::int32_t>(g);
    check_matrix(r.data, m, e.matrix->storage == "dense", identity);
    fuzz_check(r.data.genes == upper(o.layer == "raw" ? m.raw_genes : m.genes, o.upper_case_genes));
    fuzz_check(r.summary.storage == e.matrix->storage);
    static const char* layouts[3] = {"anndata >= 0.8", "anndata 0.7", "anndata <= 0.6"};
    fuzz_check(r.summary.layout == layouts[layout]);
    const bool missing = !o.group_column.empty() && !column_written(o.group_column, layout);
    fuzz_check(r.summary.group_column_missing == missing);
    if (o.group_column.empty() || missing) {
        fuzz_check(!r.data.has_groups());
        return;
    }
    const auto groups = expected_groups(m, o.group_column, layout);
    if (groups) fuzz_check(r.data.groups == *groups);
}

void run_h5ad(const std::vector<unsigned char>& image, bool clean, const Model& m, const Written& w, unsigned options,
              Layout layout) {
    static const char* layers[4] = {"", "raw", "counts", "none"};
    static const char* columns[8] = {"cluster", "", "batch", "n_counts", "flag", "absent", "cluster", "batch"};
    exsal::H5adReadOptions o;
    o.layer = layers[options & 3u];
    o.group_column = columns[(options >> 2) & 7u];
    o.group_column_required = options & 32u;
    o.upper_case_genes = !(options & 64u);
    o.allow_negative = options & 128u;
    const Expectation e = expect_h5ad(clean, m, w, o, layout);
    exsal::H5adData r;
    try {
        r = exsal::read_h5ad(h5::open_image(image.data(), image.size(), "fuzz.h5ad"), o);
    } catch (const exsal::Error& err) {
        if (verbose()) std::fprintf(stderr, "h5ad: error: %s\n", err.what());
        if (e.must_succeed) finding(std::string("a well-formed file was refused: ") + err.what());
        return;
    }
    if (verbose()) std::fprintf(stderr, "h5ad: read %lld cells x %lld genes\n", static_cast<long long>(r.data.n_cells()),
                                static_cast<long long>(r.data.n_genes()));
    if (e.must_fail) finding("a read that must fail (bad value, absent layer or column) succeeded");
    check_sparse(r.data, o.allow_negative);
    fuzz_check(r.summary.cells_without_group ==
               static_cast<exsal::Index>(std::count(r.data.groups.begin(), r.data.groups.end(), std::string())));
    if (e.must_succeed) compare_h5ad(r, m, e, o, layout);
}

void check_tenx(const exsal::SparseExpression& r, const exsal::TenxReadSummary& s, const Model& m, bool v3,
                const exsal::TenxReadOptions& o, bool well_formed) {
    check_sparse(r, false);
    fuzz_check(!r.has_groups());
    std::unordered_set<std::string> genes(r.genes.begin(), r.genes.end());
    fuzz_check(genes.size() == r.genes.size()); // made unique
    fuzz_check(s.features_v3 == v3);
    fuzz_check(s.features_in_file == s.features_dropped + r.n_genes());
    fuzz_check(s.entries_in_file - s.entries_dropped == r.nnz());
    if (!well_formed) return;
    std::vector<std::int32_t> new_gene(m.n_var, -1);
    std::vector<std::string> kept;
    for (std::size_t g = 0; g < m.n_var; ++g)
        if (!v3 || o.feature_type.empty() || m.feature_types[g] == o.feature_type) {
            new_gene[g] = static_cast<std::int32_t>(kept.size());
            kept.push_back(m.genes[g]);
        }
    check_matrix(r, m, false, new_gene);
    fuzz_check(r.genes == upper(kept, o.upper_case_genes));
    fuzz_check(s.genes_renamed == 0);
}

void run_tenx(const std::vector<unsigned char>& image, bool clean, const Model& m, const Written& w, unsigned options,
              bool v3) {
    exsal::TenxReadOptions o;
    o.upper_case_genes = !(options & 64u);
    if (options & 128u) o.feature_type.clear();
    bool any_kept = false;
    for (std::size_t g = 0; g < m.n_var; ++g)
        any_kept = any_kept || !v3 || o.feature_type.empty() || m.feature_types[g] == o.feature_type;
    const bool values_ok = values_valid(m, false);
    const bool must_fail = clean && (!values_ok || !any_kept), must_succeed = clean && w.x.ok && values_ok && any_kept;
    exsal::SparseExpression r;
    exsal::TenxReadSummary s;
    try {
        r = exsal::read_10x_h5(h5::open_image(image.data(), image.size(), "fuzz.h5"), o, &s);
    } catch (const exsal::Error& err) {
        if (verbose()) std::fprintf(stderr, "10x: error: %s\n", err.what());
        if (must_succeed) finding(std::string("a well-formed file was refused: ") + err.what());
        return;
    }
    if (verbose()) std::fprintf(stderr, "10x: read %lld cells x %lld genes\n", static_cast<long long>(r.n_cells()),
                                static_cast<long long>(r.n_genes()));
    if (must_fail) finding("a read that must fail (bad value, no feature kept) succeeded");
    check_tenx(r, s, m, v3, o, must_succeed);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // The harness's own failed calls (a reference to nothing, say) are expected: no error stack printing.
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    // libhdf5 takes a 1 MiB conversion buffer for most reads and writes and, with its default
    // free-list limits, returns it to malloc each time; under ASan every one is a fresh mmap that
    // gets zeroed page by page (20 ms an input). Keeping its free lists unbounded reuses the blocks
    // (5 ms): memory libhdf5 recycles itself, which ASan could not check anyway (not instrumented).
    H5set_free_list_limits(-1, -1, -1, -1, -1, -1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    Fuzz f{Input(data, size)};
    const auto layout = static_cast<Layout>(f.in.below(5));
    const unsigned options = f.in.byte();
    for (unsigned k = f.in.below(4); k > 0; --k) f.mask |= 1u << f.in.below(17);
    const Model m = make_model(f.in);
    Written w;
    const std::vector<unsigned char> image = build_image(f, m, layout, w);
    const bool clean = f.mask == 0;
    if (layout == tenx3 || layout == tenx2) run_tenx(image, clean, m, w, options, layout == tenx3);
    else run_h5ad(image, clean, m, w, options, layout);
    return 0;
}
