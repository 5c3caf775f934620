#ifndef EXSAL_IO_HDF5_HPP
#define EXSAL_IO_HDF5_HPP

// A thin RAII layer over HDF5's C API, for the readers and writer of h5ad and 10x HDF5 files.
// Only what those need: open a file (from disk or from bytes in memory), walk groups, read 1-D and
// 2-D numeric datasets converted to a native type (whole or by row ranges), string datasets (fixed
// or variable length), fields of compound datasets, attributes (strings, numbers, object
// references); write groups, datasets and attributes. Every failure is an exsal::FileError naming
// the file and the object inside it ("/raw/X/indptr"); HDF5's own error stack printing is switched
// off while an exsal call runs.
//
// Needs HDF5's C library (Debian libhdf5-dev; CMake: find_package(HDF5 COMPONENTS C), or link the
// exsal::hdf5 target the exsal package exports when it was built with HDF5). The serial HDF5 of
// Debian is not thread-safe: call this layer from one thread at a time.

#include "exsal/core/error.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace exsal::h5 {

// Switches HDF5's automatic error printing off for the lifetime of the object (restored after).
class QuietErrors {
public:
    QuietErrors() {
        H5Eget_auto2(H5E_DEFAULT, &m_func, &m_data);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, m_func, m_data); }
    QuietErrors(const QuietErrors&) = delete;
    QuietErrors& operator=(const QuietErrors&) = delete;

private:
    H5E_auto2_t m_func = nullptr;
    void* m_data = nullptr;
};

// An HDF5 identifier closed by the matching H5?close when the handle goes.
class Handle {
public:
    Handle() = default;
    explicit Handle(hid_t id) noexcept : m_id(id) {}
    Handle(Handle&& o) noexcept : m_id(std::exchange(o.m_id, H5I_INVALID_HID)) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            close();
            m_id = std::exchange(o.m_id, H5I_INVALID_HID);
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { close(); }

    hid_t id() const noexcept { return m_id; }
    bool valid() const noexcept { return m_id >= 0; }

private:
    void close() noexcept {
        if (m_id < 0) return;
        switch (H5Iget_type(m_id)) {
        case H5I_FILE: H5Fclose(m_id); break;
        case H5I_GROUP: H5Gclose(m_id); break;
        case H5I_DATASET: H5Dclose(m_id); break;
        case H5I_DATATYPE: H5Tclose(m_id); break;
        case H5I_DATASPACE: H5Sclose(m_id); break;
        case H5I_ATTR: H5Aclose(m_id); break;
        case H5I_GENPROP_LST: H5Pclose(m_id); break;
        default: H5Idec_ref(m_id); break;
        }
        m_id = H5I_INVALID_HID;
    }
    hid_t m_id = H5I_INVALID_HID;
};

enum class Kind { missing, group, dataset, other };

// What a dataset or attribute holds.
struct TypeInfo {
    H5T_class_t type_class = H5T_NO_CLASS;
    std::size_t size = 0;   // bytes per element
    bool is_signed = false; // integers
    bool variable_string = false;
    bool is_integer() const noexcept { return type_class == H5T_INTEGER; }
    bool is_float() const noexcept { return type_class == H5T_FLOAT; }
    bool is_numeric() const noexcept { return is_integer() || is_float(); }
    bool is_string() const noexcept { return type_class == H5T_STRING; }
    // "float32", "int64", "string", "compound", ... for messages.
    std::string name() const {
        switch (type_class) {
        case H5T_INTEGER: return std::string(is_signed ? "int" : "uint") + std::to_string(size * 8);
        case H5T_FLOAT: return "float" + std::to_string(size * 8);
        case H5T_STRING: return "string";
        case H5T_COMPOUND: return "compound";
        case H5T_REFERENCE: return "reference";
        case H5T_ENUM: return "enum";
        default: return "unsupported type";
        }
    }
};

namespace detail {

template <class T> hid_t native_type() {
    if constexpr (std::is_same_v<T, float>) return H5T_NATIVE_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
    else if constexpr (std::is_same_v<T, std::int8_t>) return H5T_NATIVE_INT8;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return H5T_NATIVE_UINT8;
    else if constexpr (std::is_same_v<T, std::int32_t>) return H5T_NATIVE_INT32;
    else if constexpr (std::is_same_v<T, std::uint32_t>) return H5T_NATIVE_UINT32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return H5T_NATIVE_INT64;
    else if constexpr (std::is_same_v<T, std::uint64_t>) return H5T_NATIVE_UINT64;
    else static_assert(sizeof(T) == 0, "no native HDF5 type for T");
}

inline TypeInfo type_info(hid_t type) {
    TypeInfo t;
    t.type_class = H5Tget_class(type);
    t.size = H5Tget_size(type);
    if (t.type_class == H5T_INTEGER) t.is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (t.type_class == H5T_STRING) t.variable_string = H5Tis_variable_str(type) > 0;
    return t;
}

// Fixed-length string bytes without the padding (NUL or spaces, as the type says).
inline std::string trim_fixed(const char* p, std::size_t n, H5T_str_t pad) {
    std::size_t len = 0;
    while (len < n && p[len] != '\0') ++len;
    std::string s(p, len);
    if (pad == H5T_STR_SPACEPAD)
        while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

// Reads a string-typed dataset or attribute of `count` elements: `read(memtype, buffer)` does the
// H5Dread/H5Aread.
template <class Read> std::vector<std::string> read_strings(hid_t file_type, std::size_t count, Read read) {
    std::vector<std::string> out;
    out.reserve(count);
    if (H5Tis_variable_str(file_type) > 0) {
        Handle mem(H5Tcopy(H5T_C_S1));
        H5Tset_size(mem.id(), H5T_VARIABLE);
        H5Tset_cset(mem.id(), H5Tget_cset(file_type));
        std::vector<char*> ptrs(count, nullptr);
        if (!read(mem.id(), ptrs.data())) return {};
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        for (char* p : ptrs) H5free_memory(p);
        return out;
    }
    const std::size_t size = H5Tget_size(file_type);
    Handle mem(H5Tcopy(file_type)); // same size and padding, in memory
    std::vector<char> buffer(count * size + 1, '\0');
    if (!read(mem.id(), buffer.data())) return {};
    const H5T_str_t pad = H5Tget_strpad(file_type);
    for (std::size_t i = 0; i < count; ++i) out.push_back(trim_fixed(buffer.data() + i * size, size, pad));
    return out;
}

} // namespace detail

// An open object (file, group or dataset) of one file, with its path for messages.
class Node {
public:
    Node(std::shared_ptr<Handle> file, Handle object, std::string file_path, std::string object_path)
        : m_file(std::move(file)), m_object(std::move(object)), m_file_path(std::move(file_path)),
          m_path(std::move(object_path)) {}

    hid_t id() const noexcept { return m_object.id(); }
    const std::string& path() const noexcept { return m_path; }           // "/raw/X"
    const std::string& file_path() const noexcept { return m_file_path; } // the file on disk
    Kind kind() const noexcept {
        switch (H5Iget_type(id())) {
        case H5I_FILE: case H5I_GROUP: return Kind::group;
        case H5I_DATASET: return Kind::dataset;
        default: return Kind::other;
        }
    }
    bool is_group() const noexcept { return kind() == Kind::group; }
    bool is_dataset() const noexcept { return kind() == Kind::dataset; }

    // "file.h5ad: /raw/X/indptr: message"
    [[noreturn]] void fail(const std::string& message) const { throw FileError(m_file_path, m_path + ": " + message); }
    FileError error(const std::string& message) const { return FileError(m_file_path, m_path + ": " + message); }

    std::string child_path(const std::string& name) const { return m_path == "/" ? "/" + name : m_path + "/" + name; }

    // Kind of the direct child `name` (a plain name, no '/'), Kind::missing when there is none.
    Kind child_kind(const std::string& name) const {
        QuietErrors quiet;
        if (!is_group() || name.empty() || name.find('/') != std::string::npos) return Kind::missing;
        if (H5Lexists(id(), name.c_str(), H5P_DEFAULT) <= 0) return Kind::missing;
        if (H5Oexists_by_name(id(), name.c_str(), H5P_DEFAULT) <= 0) return Kind::missing; // dangling link
        H5O_info_t info;
        if (H5Oget_info_by_name(id(), name.c_str(), &info, H5P_DEFAULT) < 0) return Kind::missing;
        return info.type == H5O_TYPE_GROUP ? Kind::group : info.type == H5O_TYPE_DATASET ? Kind::dataset : Kind::other;
    }
    bool has(const std::string& name) const { return child_kind(name) != Kind::missing; }

    Node open(const std::string& name) const {
        QuietErrors quiet;
        if (!has(name)) fail("has no object '" + name + "'" + listing());
        Handle h(H5Oopen(id(), name.c_str(), H5P_DEFAULT));
        if (!h.valid()) throw FileError(m_file_path, child_path(name) + ": cannot be opened (damaged file?)");
        return Node(m_file, std::move(h), m_file_path, child_path(name));
    }

    // Names of the direct children, in HDF5's name order.
    std::vector<std::string> children() const {
        QuietErrors quiet;
        std::vector<std::string> names;
        if (!is_group()) return names;
        H5G_info_t info;
        if (H5Gget_info(id(), &info) < 0) fail("cannot list the group (damaged file?)");
        for (hsize_t i = 0; i < info.nlinks; ++i) {
            const ssize_t n = H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
            if (n < 0) fail("cannot list the group (damaged file?)");
            std::string s(static_cast<std::size_t>(n), '\0');
            H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), static_cast<std::size_t>(n) + 1,
                               H5P_DEFAULT);
            names.push_back(std::move(s));
        }
        return names;
    }
    // " (it holds: a, b, c)" or " (it is empty)", for messages.
    std::string listing(std::size_t max = 12) const {
        if (!is_group()) return "";
        const std::vector<std::string> c = children();
        if (c.empty()) return " (it is empty)";
        std::string s = " (it holds: ";
        for (std::size_t i = 0; i < c.size() && i < max; ++i) s += (i ? ", " : "") + c[i];
        if (c.size() > max) s += ", ... " + std::to_string(c.size() - max) + " more";
        return s + ")";
    }

    // ---- datasets -------------------------------------------------------------------------
    TypeInfo type() const {
        Handle t(H5Dget_type(id()));
        if (!t.valid()) fail("cannot read the datatype (damaged file?)");
        return detail::type_info(t.id());
    }
    std::vector<hsize_t> shape() const {
        Handle s(H5Dget_space(id()));
        const int rank = s.valid() ? H5Sget_simple_extent_ndims(s.id()) : -1;
        if (rank < 0) fail("cannot read the dataspace (damaged file?)");
        std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
        if (rank > 0) H5Sget_simple_extent_dims(s.id(), dims.data(), nullptr);
        return dims;
    }
    // Number of elements of a 1-D dataset; fails for other ranks.
    std::size_t length() const {
        const std::vector<hsize_t> d = shape();
        if (d.size() != 1) fail("expected a 1-D dataset, found " + std::to_string(d.size()) + " dimensions");
        return static_cast<std::size_t>(d[0]);
    }

    // Rows [first, first + count) of a numeric 1-D or 2-D dataset, converted to T (row-major).
    template <class T> std::vector<T> read_rows(hsize_t first, hsize_t count) const {
        QuietErrors quiet;
        const TypeInfo t = type();
        if (!t.is_numeric() && t.type_class != H5T_ENUM) fail("expected numbers, found " + t.name() + " values");
        std::vector<hsize_t> dims = shape();
        if (dims.empty() || dims.size() > 2) fail("expected a 1-D or 2-D dataset, found " + std::to_string(dims.size()) + " dimensions");
        if (first + count > dims[0]) fail("rows " + std::to_string(first) + "+" + std::to_string(count) + " beyond its " +
                                          std::to_string(dims[0]));
        const hsize_t width = dims.size() == 2 ? dims[1] : 1;
        std::vector<T> out(static_cast<std::size_t>(count * width));
        if (out.empty()) return out;
        Handle file_space(H5Dget_space(id()));
        std::vector<hsize_t> start(dims.size(), 0), n = dims;
        start[0] = first;
        n[0] = count;
        Handle mem_space(H5Screate_simple(static_cast<int>(dims.size()), n.data(), nullptr));
        if (H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, n.data(), nullptr) < 0)
            fail("cannot select rows (damaged file?)");
        if (t.type_class == H5T_ENUM) { // h5py's booleans: HDF5 converts enums only to enums, so read the codes
            Handle file_type(H5Dget_type(id()));
            Handle mem_type(H5Tget_native_type(file_type.id(), H5T_DIR_ASCEND));
            Handle base(H5Tget_super(mem_type.id()));
            const std::size_t size = H5Tget_size(mem_type.id());
            const bool is_signed = H5Tget_sign(base.id()) == H5T_SGN_2;
            if (size > 8) fail("enum values wider than 8 bytes");
            std::vector<unsigned char> raw(out.size() * size);
            if (H5Dread(id(), mem_type.id(), mem_space.id(), file_space.id(), H5P_DEFAULT, raw.data()) < 0)
                fail("cannot read its values (truncated or damaged file?)");
            for (std::size_t i = 0; i < out.size(); ++i) {
                std::uint64_t u = 0;
                std::memcpy(&u, raw.data() + i * size, size); // little-endian host
                std::int64_t v = static_cast<std::int64_t>(u);
                if (is_signed && size < 8 && (u >> (8 * size - 1)) & 1u) v -= static_cast<std::int64_t>(std::uint64_t(1) << (8 * size));
                out[i] = static_cast<T>(v);
            }
            return out;
        }
        if (H5Dread(id(), detail::native_type<T>(), mem_space.id(), file_space.id(), H5P_DEFAULT, out.data()) < 0)
            fail("cannot read its values (truncated or damaged file?)");
        return out;
    }
    template <class T> std::vector<T> read_all() const {
        const std::vector<hsize_t> d = shape();
        if (d.empty()) { // a scalar
            QuietErrors quiet;
            if (!type().is_numeric()) fail("expected a number, found " + type().name());
            std::vector<T> v(1);
            if (H5Dread(id(), detail::native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
                fail("cannot read its value (truncated or damaged file?)");
            return v;
        }
        return read_rows<T>(0, d[0]);
    }

    // A 1-D dataset of strings (fixed or variable length).
    std::vector<std::string> read_strings() const {
        QuietErrors quiet;
        Handle t(H5Dget_type(id()));
        if (!t.valid() || H5Tget_class(t.id()) != H5T_STRING) fail("expected strings, found " + type().name() + " values");
        const std::vector<hsize_t> d = shape();
        const std::size_t n = d.empty() ? 1 : static_cast<std::size_t>(d[0]);
        if (d.size() > 1) fail("expected a 1-D dataset of strings");
        bool ok = true;
        std::vector<std::string> s = detail::read_strings(t.id(), n, [&](hid_t mem, void* buf) {
            ok = H5Dread(id(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
            return ok;
        });
        if (!ok) fail("cannot read its strings (truncated or damaged file?)");
        return s;
    }

    // Names of the fields of a compound dataset ("" when it is not one).
    std::vector<std::string> fields() const {
        Handle t(H5Dget_type(id()));
        std::vector<std::string> out;
        if (!t.valid() || H5Tget_class(t.id()) != H5T_COMPOUND) return out;
        const int n = H5Tget_nmembers(t.id());
        for (int i = 0; i < n; ++i) {
            char* name = H5Tget_member_name(t.id(), static_cast<unsigned>(i));
            out.emplace_back(name ? name : "");
            H5free_memory(name);
        }
        return out;
    }
    TypeInfo field_type(const std::string& field) const {
        Handle t(H5Dget_type(id()));
        const int i = H5Tget_member_index(t.id(), field.c_str());
        if (i < 0) fail("has no field '" + field + "'");
        Handle m(H5Tget_member_type(t.id(), static_cast<unsigned>(i)));
        return detail::type_info(m.id());
    }
    // One numeric field of a 1-D compound dataset, converted to T.
    template <class T> std::vector<T> read_field(const std::string& field) const {
        QuietErrors quiet;
        if (!field_type(field).is_numeric()) fail("field '" + field + "' is not numeric");
        std::vector<T> out(length());
        Handle mem(H5Tcreate(H5T_COMPOUND, sizeof(T)));
        H5Tinsert(mem.id(), field.c_str(), 0, detail::native_type<T>());
        if (!out.empty() && H5Dread(id(), mem.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
            fail("cannot read field '" + field + "' (truncated or damaged file?)");
        return out;
    }
    std::vector<std::string> read_string_field(const std::string& field) const {
        QuietErrors quiet;
        Handle t(H5Dget_type(id()));
        const int i = H5Tget_member_index(t.id(), field.c_str());
        if (i < 0) fail("has no field '" + field + "'");
        Handle ft(H5Tget_member_type(t.id(), static_cast<unsigned>(i)));
        if (H5Tget_class(ft.id()) != H5T_STRING) fail("field '" + field + "' is not a string");
        const std::size_t n = length();
        bool ok = true;
        std::vector<std::string> s = detail::read_strings(ft.id(), n, [&](hid_t mem_member, void* buf) {
            Handle mem(H5Tcreate(H5T_COMPOUND, H5Tget_size(mem_member)));
            H5Tinsert(mem.id(), field.c_str(), 0, mem_member);
            ok = n == 0 || H5Dread(id(), mem.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
            return ok;
        });
        if (!ok) fail("cannot read field '" + field + "' (truncated or damaged file?)");
        return s;
    }

    // ---- attributes -----------------------------------------------------------------------
    bool has_attribute(const std::string& name) const {
        QuietErrors quiet;
        return H5Aexists(id(), name.c_str()) > 0;
    }
    TypeInfo attribute_type(const std::string& name) const {
        Handle a = open_attribute(name);
        Handle t(H5Aget_type(a.id()));
        return detail::type_info(t.id());
    }
    // A string attribute (a scalar, or the first element of an array); "" when absent.
    std::string attribute_string(const std::string& name) const {
        if (!has_attribute(name)) return "";
        const std::vector<std::string> v = attribute_strings(name);
        return v.empty() ? std::string() : v[0];
    }
    std::vector<std::string> attribute_strings(const std::string& name) const {
        QuietErrors quiet;
        Handle a = open_attribute(name);
        Handle t(H5Aget_type(a.id()));
        if (H5Tget_class(t.id()) != H5T_STRING) fail("attribute '" + name + "' is not a string");
        bool ok = true;
        std::vector<std::string> s = detail::read_strings(t.id(), attribute_size(a), [&](hid_t mem, void* buf) {
            ok = H5Aread(a.id(), mem, buf) >= 0;
            return ok;
        });
        if (!ok) fail("cannot read attribute '" + name + "'");
        return s;
    }
    template <class T> std::vector<T> attribute_numbers(const std::string& name) const {
        QuietErrors quiet;
        Handle a = open_attribute(name);
        Handle t(H5Aget_type(a.id()));
        const TypeInfo ti = detail::type_info(t.id());
        if (!ti.is_numeric()) fail("attribute '" + name + "' holds " + ti.name() + ", not numbers");
        std::vector<T> v(attribute_size(a));
        if (!v.empty() && H5Aread(a.id(), detail::native_type<T>(), v.data()) < 0)
            fail("cannot read attribute '" + name + "'");
        return v;
    }
    // The object an object-reference attribute points to (anndata 0.7's categories).
    Node attribute_target(const std::string& name) const {
        QuietErrors quiet;
        Handle a = open_attribute(name);
        Handle t(H5Aget_type(a.id()));
        if (H5Tget_class(t.id()) != H5T_REFERENCE || attribute_size(a) != 1)
            fail("attribute '" + name + "' is not one object reference");
        hobj_ref_t ref{};
        if (H5Aread(a.id(), H5T_STD_REF_OBJ, &ref) < 0) fail("cannot read attribute '" + name + "'");
        Handle target(H5Rdereference2(id(), H5P_DEFAULT, H5R_OBJECT, &ref));
        if (!target.valid()) fail("attribute '" + name + "' points to no object");
        char buffer[1024] = {0};
        H5Iget_name(target.id(), buffer, sizeof buffer);
        return Node(m_file, std::move(target), m_file_path, buffer);
    }

    // ---- writing --------------------------------------------------------------------------
    Node create_group(const std::string& name) const {
        QuietErrors quiet;
        Handle gcpl(H5Pcreate(H5P_GROUP_CREATE));
        H5Pset_obj_track_times(gcpl.id(), 0); // the same content gives the same bytes
        Handle g(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT));
        if (!g.valid()) fail("cannot create group '" + name + "'");
        return Node(m_file, std::move(g), m_file_path, child_path(name));
    }
    // A numeric dataset of shape `dims` (row-major `values`), gzip-compressed in chunks when large.
    template <class T> Node write(const std::string& name, const std::vector<hsize_t>& dims, const T* values) const {
        QuietErrors quiet;
        Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                  : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
        Handle plist = creation_properties(dims, sizeof(T));
        Handle d(H5Dcreate2(id(), name.c_str(), detail::native_type<T>(), space.id(), H5P_DEFAULT, plist.id(), H5P_DEFAULT));
        if (!d.valid() || H5Dwrite(d.id(), detail::native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
            fail("cannot write dataset '" + name + "' (disk full?)");
        return Node(m_file, std::move(d), m_file_path, child_path(name));
    }
    template <class T> Node write(const std::string& name, const std::vector<T>& values) const {
        return write<T>(name, {static_cast<hsize_t>(values.size())}, values.data());
    }
    // A 1-D dataset of variable-length UTF-8 strings (what anndata writes for names).
    Node write_strings(const std::string& name, const std::vector<std::string>& values) const {
        QuietErrors quiet;
        Handle type = utf8_type();
        const hsize_t n = values.size();
        Handle space(H5Screate_simple(1, &n, nullptr));
        std::vector<const char*> ptrs;
        ptrs.reserve(values.size());
        for (const auto& s : values) ptrs.push_back(s.c_str());
        Handle plist = creation_properties({}, 0);
        Handle d(H5Dcreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, plist.id(), H5P_DEFAULT));
        if (!d.valid() || (n > 0 && H5Dwrite(d.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0))
            fail("cannot write dataset '" + name + "' (disk full?)");
        return Node(m_file, std::move(d), m_file_path, child_path(name));
    }
    // A scalar variable-length UTF-8 string dataset.
    Node write_string(const std::string& name, const std::string& value) const {
        QuietErrors quiet;
        Handle type = utf8_type();
        Handle space(H5Screate(H5S_SCALAR));
        const char* p = value.c_str();
        Handle plist = creation_properties({}, 0);
        Handle d(H5Dcreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, plist.id(), H5P_DEFAULT));
        if (!d.valid() || H5Dwrite(d.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0)
            fail("cannot write dataset '" + name + "' (disk full?)");
        return Node(m_file, std::move(d), m_file_path, child_path(name));
    }
    void set_attribute(const std::string& name, const std::string& value) const {
        QuietErrors quiet;
        Handle type = utf8_type();
        Handle space(H5Screate(H5S_SCALAR));
        const char* p = value.c_str();
        Handle a(H5Acreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT));
        if (!a.valid() || H5Awrite(a.id(), type.id(), &p) < 0) fail("cannot write attribute '" + name + "'");
    }
    // (Without this overload a string literal would pick the bool one.)
    void set_attribute(const std::string& name, const char* value) const { set_attribute(name, std::string(value)); }
    void set_attribute(const std::string& name, const std::vector<std::string>& values) const {
        QuietErrors quiet;
        Handle type = utf8_type();
        const hsize_t n = values.size();
        Handle space(H5Screate_simple(1, &n, nullptr));
        std::vector<const char*> ptrs;
        for (const auto& s : values) ptrs.push_back(s.c_str());
        Handle a(H5Acreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT));
        if (!a.valid() || (n > 0 && H5Awrite(a.id(), type.id(), ptrs.data()) < 0))
            fail("cannot write attribute '" + name + "'");
    }
    template <class T> void set_attribute(const std::string& name, const std::vector<T>& values) const {
        QuietErrors quiet;
        const hsize_t n = values.size();
        Handle space(H5Screate_simple(1, &n, nullptr));
        Handle a(H5Acreate2(id(), name.c_str(), detail::native_type<T>(), space.id(), H5P_DEFAULT, H5P_DEFAULT));
        if (!a.valid() || (n > 0 && H5Awrite(a.id(), detail::native_type<T>(), values.data()) < 0))
            fail("cannot write attribute '" + name + "'");
    }
    // A boolean the way h5py writes numpy booleans (an int8 enum FALSE/TRUE), so Python reads a bool.
    void set_attribute(const std::string& name, bool value) const {
        QuietErrors quiet;
        Handle type(H5Tenum_create(H5T_NATIVE_INT8));
        const std::int8_t no = 0, yes = 1;
        H5Tenum_insert(type.id(), "FALSE", &no);
        H5Tenum_insert(type.id(), "TRUE", &yes);
        Handle space(H5Screate(H5S_SCALAR));
        const std::int8_t v = value ? yes : no;
        Handle a(H5Acreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT));
        if (!a.valid() || H5Awrite(a.id(), type.id(), &v) < 0) fail("cannot write attribute '" + name + "'");
    }

private:
    Handle open_attribute(const std::string& name) const {
        QuietErrors quiet;
        if (H5Aexists(id(), name.c_str()) <= 0) fail("has no attribute '" + name + "'");
        Handle a(H5Aopen(id(), name.c_str(), H5P_DEFAULT));
        if (!a.valid()) fail("cannot open attribute '" + name + "'");
        return a;
    }
    static std::size_t attribute_size(const Handle& a) {
        Handle s(H5Aget_space(a.id()));
        const hssize_t n = H5Sget_simple_extent_npoints(s.id());
        return n < 0 ? 0 : static_cast<std::size_t>(n);
    }
    static Handle utf8_type() {
        Handle t(H5Tcopy(H5T_C_S1));
        H5Tset_size(t.id(), H5T_VARIABLE);
        H5Tset_cset(t.id(), H5T_CSET_UTF8);
        return t;
    }
    static Handle creation_properties(const std::vector<hsize_t>& dims, std::size_t element) {
        Handle p(H5Pcreate(H5P_DATASET_CREATE));
        H5Pset_obj_track_times(p.id(), 0); // the same content gives the same bytes
        hsize_t total = 1;
        for (hsize_t d : dims) total *= d;
        if (dims.empty() || total * element < (1u << 16)) return p;
        std::vector<hsize_t> chunk = dims; // about 256 KiB chunks along the first dimension
        hsize_t row = 1;
        for (std::size_t i = 1; i < dims.size(); ++i) row *= dims[i];
        chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (hsize_t(1) << 18) / std::max<hsize_t>(1, row * element)));
        H5Pset_chunk(p.id(), static_cast<int>(chunk.size()), chunk.data());
        H5Pset_deflate(p.id(), 4);
        return p;
    }

    std::shared_ptr<Handle> m_file;
    Handle m_object;
    std::string m_file_path;
    std::string m_path;
};

// True when `path` is an HDF5 file (by its signature, whatever its name).
inline bool is_hdf5_file(const std::string& path) {
    QuietErrors quiet;
    return H5Fis_hdf5(path.c_str()) > 0;
}

// The root group of an HDF5 file opened read-only. Throws FileError when the file is missing, not
// HDF5 or too damaged to open (e.g. truncated).
inline Node open_file(const std::string& path) {
    QuietErrors quiet;
    const htri_t is = H5Fis_hdf5(path.c_str());
    if (is <= 0)
        throw FileError(path, is < 0 ? "cannot be read as HDF5 (missing, unreadable or truncated)" : "is not an HDF5 file");
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!f.valid()) throw FileError(path, "cannot be opened as HDF5 (truncated or damaged file?)");
    Handle root(H5Gopen2(f.id(), "/", H5P_DEFAULT));
    if (!root.valid()) throw FileError(path, "/: cannot open the root group (damaged file?)");
    return Node(std::make_shared<Handle>(std::move(f)), std::move(root), path, "/");
}

// The root group of an HDF5 file held in memory (`name` is used in messages only).
inline Node open_image(const void* bytes, std::size_t size, const std::string& name) {
    QuietErrors quiet;
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fapl_core(fapl.id(), 1 << 16, 0);
    if (size == 0 || H5Pset_file_image(fapl.id(), const_cast<void*>(bytes), size) < 0)
        throw FileError(name, "is not an HDF5 file");
    Handle f(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.id()));
    if (!f.valid()) throw FileError(name, "cannot be opened as HDF5 (truncated or damaged file?)");
    Handle root(H5Gopen2(f.id(), "/", H5P_DEFAULT));
    if (!root.valid()) throw FileError(name, "/: cannot open the root group (damaged file?)");
    return Node(std::make_shared<Handle>(std::move(f)), std::move(root), name, "/");
}

// A new HDF5 file at `path` (replaced if present), root group open for writing.
inline Node create_file(const std::string& path) {
    QuietErrors quiet;
    Handle fcpl(H5Pcreate(H5P_FILE_CREATE));
    H5Pset_obj_track_times(fcpl.id(), 0); // the root group too: no creation times in the file
    Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.id(), H5P_DEFAULT));
    if (!f.valid()) throw FileError(path, "cannot be created (folder missing or not writable?)");
    Handle root(H5Gopen2(f.id(), "/", H5P_DEFAULT));
    return Node(std::make_shared<Handle>(std::move(f)), std::move(root), path, "/");
}

} // namespace exsal::h5

#endif // EXSAL_IO_HDF5_HPP
