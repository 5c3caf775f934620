#ifndef EXSAL_IO_H5AD_WRITER_HPP
#define EXSAL_IO_H5AD_WRITER_HPP

// Writes an AnnData file (.h5ad) as anndata >= 0.8 encodes it, for results that scanpy users load
// with anndata.read_h5ad: obs (cell ids and a categorical group column), var (gene names), obsm
// (cells x k float32 embeddings, e.g. "X_exsal", and data frames of named float32 columns) and uns
// (a JSON object as nested dicts of scalars and arrays). There is no X: the results describe cells, they are not an expression matrix.
// Names are variable-length UTF-8 string arrays, which older readers read as plain strings too.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/hdf5.hpp"
#include "exsal/report/json.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

struct AnnDataResults {
    std::vector<std::string> cells;  // obs names
    std::vector<std::string> groups; // obs["group"] (categorical), or empty: no column
    std::vector<std::string> genes;  // var names (may be empty)
    // obsm entries: name -> cells x k values, row-major (a units x cells column-major Eigen
    // matrix has this layout).
    std::vector<std::pair<std::string, std::pair<const float*, Index>>> obsm;
    // obsm data frames (pandas.DataFrame in anndata, indexed by the cells): one float32 column per
    // name, `values` column-major cells x columns.size(). A '/' in a column name (HDF5's path
    // separator) is written as '_'.
    struct Frame {
        std::string name;
        std::vector<std::string> columns;
        const float* values = nullptr;
    };
    std::vector<Frame> obsm_frames;
    JsonValue uns = JsonValue::object(); // written under uns/<uns_key>
    std::string uns_key = "exsal";
};

namespace detail::h5ad_write {

inline void encoding(const h5::Node& n, const char* type, const char* version) {
    n.set_attribute("encoding-type", std::string(type));
    n.set_attribute("encoding-version", std::string(version));
}

inline void string_array(const h5::Node& parent, const std::string& name, const std::vector<std::string>& v) {
    encoding(parent.write_strings(name, v), "string-array", "0.2.0");
}

inline void dataframe(const h5::Node& parent, const std::string& name, const std::vector<std::string>& index,
                      const std::vector<std::string>& groups) {
    const h5::Node df = parent.create_group(name);
    encoding(df, "dataframe", "0.2.0");
    df.set_attribute("_index", std::string("_index"));
    df.set_attribute("column-order", groups.empty() ? std::vector<std::string>{} : std::vector<std::string>{"group"});
    string_array(df, "_index", index);
    if (groups.empty()) return;
    std::vector<std::string> categories = groups;
    std::sort(categories.begin(), categories.end());
    categories.erase(std::unique(categories.begin(), categories.end()), categories.end());
    std::vector<std::int32_t> codes;
    codes.reserve(groups.size());
    for (const auto& g : groups)
        codes.push_back(static_cast<std::int32_t>(std::lower_bound(categories.begin(), categories.end(), g) - categories.begin()));
    const h5::Node cat = df.create_group("group");
    encoding(cat, "categorical", "0.2.0");
    cat.set_attribute("ordered", false);
    encoding(cat.write("codes", codes), "array", "0.2.0");
    string_array(cat, "categories", categories);
}

// A JSON value as anndata's uns elements: objects -> dict groups, strings -> string scalars,
// numbers and booleans -> numeric scalars, arrays of strings -> string arrays, arrays of numbers ->
// float64 arrays, other arrays -> their JSON text. Nulls are left out.
inline void uns_value(const h5::Node& parent, const std::string& name, const JsonValue& v) {
    using K = JsonValue::Kind;
    switch (v.kind()) {
    case K::null: return;
    case K::object: {
        const h5::Node g = parent.create_group(name);
        encoding(g, "dict", "0.1.0");
        for (std::size_t i = 0; i < v.keys().size(); ++i) uns_value(g, v.keys()[i], v.items()[i]);
        return;
    }
    case K::string: encoding(parent.write_string(name, v.text()), "string", "0.2.0"); return;
    case K::boolean: {
        const std::uint8_t b = v.text() == "true" ? 1 : 0;
        encoding(parent.write<std::uint8_t>(name, {}, &b), "numeric-scalar", "0.2.0");
        return;
    }
    case K::number: {
        const double x = std::strtod(v.text().c_str(), nullptr);
        encoding(parent.write<double>(name, {}, &x), "numeric-scalar", "0.2.0");
        return;
    }
    case K::array: {
        const bool strings = std::all_of(v.items().begin(), v.items().end(), [](auto& x) { return x.kind() == K::string; });
        const bool numbers = std::all_of(v.items().begin(), v.items().end(), [](auto& x) { return x.kind() == K::number; });
        if (strings) {
            std::vector<std::string> s;
            for (const auto& x : v.items()) s.push_back(x.text());
            string_array(parent, name, s);
        } else if (numbers) {
            std::vector<double> d;
            for (const auto& x : v.items()) d.push_back(std::strtod(x.text().c_str(), nullptr));
            encoding(parent.write(name, d), "array", "0.2.0");
        } else {
            encoding(parent.write_string(name, v.dump(0)), "string", "0.2.0");
        }
        return;
    }
    }
}

} // namespace detail::h5ad_write

// Writes `r` to `path` (replacing it). Throws ArgumentError when the parts disagree in size,
// FileError when the file cannot be written.
inline void write_h5ad_results(const std::string& path, const AnnDataResults& r) {
    namespace w = detail::h5ad_write;
    const char* where = "write_h5ad_results";
    if (!r.groups.empty() && r.groups.size() != r.cells.size())
        throw ArgumentError(where, std::to_string(r.groups.size()) + " group labels for " + std::to_string(r.cells.size()) + " cells");
    const h5::Node root = h5::create_file(path);
    w::encoding(root, "anndata", "0.1.0");
    w::dataframe(root, "obs", r.cells, r.groups);
    w::dataframe(root, "var", r.genes, {});
    const h5::Node obsm = root.create_group("obsm");
    w::encoding(obsm, "dict", "0.1.0");
    for (const auto& [name, matrix] : r.obsm) {
        const std::vector<hsize_t> dims{static_cast<hsize_t>(r.cells.size()), static_cast<hsize_t>(matrix.second)};
        w::encoding(obsm.write<float>(name, dims, matrix.first), "array", "0.2.0");
    }
    for (const AnnDataResults::Frame& f : r.obsm_frames) {
        const h5::Node df = obsm.create_group(f.name);
        w::encoding(df, "dataframe", "0.2.0");
        std::vector<std::string> columns = f.columns;
        for (auto& name : columns) std::replace(name.begin(), name.end(), '/', '_');
        df.set_attribute("_index", std::string("_index"));
        df.set_attribute("column-order", columns);
        w::string_array(df, "_index", r.cells);
        const std::vector<hsize_t> dims{static_cast<hsize_t>(r.cells.size())};
        for (std::size_t k = 0; k < columns.size(); ++k)
            w::encoding(df.write<float>(columns[k], dims, f.values + k * r.cells.size()), "array", "0.2.0");
    }
    for (const char* empty : {"obsp", "varm", "varp", "layers"}) w::encoding(root.create_group(empty), "dict", "0.1.0");
    const h5::Node uns = root.create_group("uns");
    w::encoding(uns, "dict", "0.1.0");
    w::uns_value(uns, r.uns_key, r.uns);
    if (H5Fflush(root.id(), H5F_SCOPE_GLOBAL) < 0) root.fail("cannot be written (disk full?)");
}

} // namespace exsal

#endif // EXSAL_IO_H5AD_WRITER_HPP
