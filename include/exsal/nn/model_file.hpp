#ifndef EXSAL_NN_MODEL_FILE_HPP
#define EXSAL_NN_MODEL_FILE_HPP

// The model file: architecture, activations, parameters and an opaque slot for the
// preprocessing state, in a versioned, checksummed binary format:
//   "EXSALMDL" | u32 format version | u64 payload size | payload | u64 FNV-1a of the payload
// Parameters are stored as 64-bit floats, so float and double models load exactly.
// Written to a temporary name and renamed.

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/serialize.hpp"
#include "exsal/nn/autoencoder.hpp"
#include "exsal/version.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace exsal {

inline constexpr char model_file_magic[9] = "EXSALMDL";
inline constexpr std::uint32_t model_file_version = 1;

template <typename Scalar>
struct LoadedModel {
    Autoencoder<Scalar> model;
    std::string preprocessing;   // the opaque state saved with the model (may be empty)
    std::string library_version; // exsal version that wrote the file
};

template <typename Scalar>
void save_model(const std::string& path, const Autoencoder<Scalar>& model, const std::string& preprocessing = {}) {
    if (!model.parameters().allFinite())
        throw NumericError("save_model: the model has non-finite parameters (NaN or infinity); " + path + " was not written");
    detail::ByteWriter p;
    p.str(EXSAL_VERSION_STRING);
    const AutoencoderConfig& c = model.config();
    p.i64(c.n_genes);
    p.u64(c.hidden.size());
    for (Index h : c.hidden) p.i64(h);
    p.i64(c.representation);
    p.u64(c.activations.size());
    for (const auto& a : c.activations) {
        p.u32(static_cast<std::uint32_t>(a.kind));
        p.f64(a.beta);
    }
    p.f64s(model.parameters());
    p.str(preprocessing);

    detail::ByteWriter file;
    for (int i = 0; i < 8; ++i) file.u8(static_cast<std::uint8_t>(model_file_magic[i]));
    file.u32(model_file_version);
    file.u64(p.bytes().size());
    std::string bytes = file.take();
    bytes += p.bytes();
    detail::ByteWriter tail;
    tail.u64(detail::fnv1a64(p.bytes()));
    bytes += tail.bytes();
    write_file_atomically(path, bytes, true);
}

template <typename Scalar>
LoadedModel<Scalar> load_model(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw FileError(path, std::string("cannot open model file: ") + std::strerror(errno));
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 8 || bytes.compare(0, 8, model_file_magic) != 0)
        throw FileError(path, "not an exsal model file (the header 'EXSALMDL' is missing)");
    detail::ByteReader head(std::string_view(bytes).substr(8), path);
    if (bytes.size() < 20) throw FileError(path, "truncated model file: the header is incomplete");
    const std::uint32_t version = head.u32();
    if (version != model_file_version)
        throw FileError(path, "model file format version " + std::to_string(version) + " is not supported (this exsal reads version " +
                                  std::to_string(model_file_version) + ")");
    const std::uint64_t size = head.u64();
    const std::size_t expected = 20 + size + 8;
    if (size > bytes.size() || bytes.size() != expected)
        throw FileError(path, (bytes.size() < expected ? "truncated model file: " : "model file has trailing bytes: ") +
                                  std::string("expected ") + std::to_string(expected) + " bytes, found " +
                                  std::to_string(bytes.size()));
    const std::string_view payload = std::string_view(bytes).substr(20, size);
    detail::ByteReader tail(std::string_view(bytes).substr(20 + size), path);
    if (tail.u64() != detail::fnv1a64(payload))
        throw FileError(path, "model file is corrupt: checksum mismatch");

    detail::ByteReader r(payload, path);
    std::string lib_version = r.str();
    AutoencoderConfig c;
    c.n_genes = r.i64();
    const std::uint64_t n_hidden = r.u64();
    if (n_hidden > 1000) r.fail("implausible layer count");
    c.hidden.clear();
    for (std::uint64_t i = 0; i < n_hidden; ++i) c.hidden.push_back(r.i64());
    c.representation = r.i64();
    const std::uint64_t n_act = r.u64();
    if (n_act > 1001) r.fail("implausible activation count");
    for (std::uint64_t i = 0; i < n_act; ++i) {
        ActivationSpec a;
        const std::uint32_t kind = r.u32();
        if (kind > static_cast<std::uint32_t>(ActivationKind::identity)) r.fail("unknown activation code " + std::to_string(kind));
        a.kind = static_cast<ActivationKind>(kind);
        a.beta = r.f64();
        if (!std::isfinite(a.beta)) r.fail("activation parameter (softplus beta) is not finite");
        c.activations.push_back(a);
    }
    try {
        c.validate("model file");
    } catch (const ArgumentError& e) {
        throw FileError(path, std::string("invalid architecture: ") + e.what());
    }
    std::vector<double> params = r.f64s();
    std::string preprocessing = r.str();
    if (r.remaining() != 0) r.fail("unexpected bytes after the model");
    // The count the architecture needs, sum of (in + 1) * out, compared before the model is built:
    // widths from a corrupt file must neither overflow nor allocate (found by fuzzing).
    std::uint64_t needed = 0;
    bool overflow = false;
    {
        std::uint64_t in = static_cast<std::uint64_t>(c.n_genes);
        std::vector<Index> outs = c.hidden;
        outs.push_back(c.n_genes);
        for (Index o : outs) {
            const auto out = static_cast<std::uint64_t>(o);
            std::uint64_t layer = 0;
            overflow = overflow || __builtin_mul_overflow(in + 1, out, &layer) || __builtin_add_overflow(needed, layer, &needed);
            in = out;
        }
    }
    if (overflow || needed != params.size())
        throw FileError(path, "model file holds " + std::to_string(params.size()) + " parameters, its architecture needs " +
                                  (overflow ? std::string("more than 2^64") : std::to_string(needed)));
    Autoencoder<Scalar> model(c);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto v = static_cast<Scalar>(params[i]);
        if (!std::isfinite(v))
            throw FileError(path, "model file is corrupt: parameter " + std::to_string(i) + " (" + std::to_string(params[i]) +
                                      ") is not a finite " + (sizeof(Scalar) == 4 ? "float" : "double"));
        model.parameters()[static_cast<Index>(i)] = v;
    }
    return LoadedModel<Scalar>{std::move(model), std::move(preprocessing), std::move(lib_version)};
}

} // namespace exsal

#endif // EXSAL_NN_MODEL_FILE_HPP
