// libFuzzer target: the model file loader (load_model) and the preprocessing state stored with a
// model (Preprocessor::deserialize). Both are checksummed, so most random bytes stop at the
// checksum; two of the four modes repair it so that the parser behind it is reached.
// Input: byte 0 selects the mode (bits 0-1) and the scalar (bit 2: double), the rest is:
//   mode 0  a model file, as is
//   mode 1  a model file's payload: the harness adds the header and the checksum
//   mode 2  a preprocessing state, as is
//   mode 3  a preprocessing state without its checksum: the harness appends it
// After a successful load: parameters are finite and match the architecture, the model encodes
// and reconstructs a cell, and saving and loading again gives the same model; a state
// serializes and deserializes to the same bytes.

#include "fuzz_common.hpp"

#include "exsal/core/serialize.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/nn/model_file.hpp"

#include <string>
#include <string_view>

using exsal_fuzz::ScratchFile;

namespace {

void check_preprocessor(std::string_view bytes, const std::string& origin) {
    exsal::Preprocessor p;
    try {
        p = exsal::Preprocessor::deserialize(bytes, origin);
    } catch (const exsal::FileError& e) {
        fuzz_check(e.path() == origin);
        return;
    }
    fuzz_check(p.n_genes() >= 1);
    const std::string again = p.serialize();
    const exsal::Preprocessor q = exsal::Preprocessor::deserialize(again, origin);
    fuzz_check(q.serialize() == again);
    fuzz_check(q.genes() == p.genes());
    // New cells with the model's genes in reverse order align back and transform without error.
    exsal::ExpressionMatrix cells;
    cells.genes.assign(p.genes().rbegin(), p.genes().rend());
    cells.cells = {"c1"};
    cells.values = exsal::MatrixF::Ones(p.n_genes(), 1);
    const auto aligned = p.align(cells);
    fuzz_check(aligned.genes_missing == 0 && aligned.genes_extra == 0);
    const exsal::MatrixF input = p.transform(aligned.values);
    fuzz_check(input.rows() == p.n_genes() && input.cols() == 1);
}

template <typename Scalar>
void check_model(const std::string& path) {
    static ScratchFile out("model-roundtrip");
    exsal::LoadedModel<Scalar> loaded = [&] {
        try {
            return exsal::load_model<Scalar>(path);
        } catch (const exsal::FileError& e) {
            fuzz_check(e.path() == path);
            throw;
        }
    }();
    const auto& model = loaded.model;
    fuzz_check(model.parameters().allFinite());
    exsal::Index expected = 0, in = model.n_genes();
    for (exsal::Index l = 0; l < model.layer_count(); ++l) {
        fuzz_check(model.layer(l).in_size() == in);
        expected += model.layer(l).out_size() * (in + 1);
        in = model.layer(l).out_size();
    }
    fuzz_check(in == model.n_genes() && expected == model.parameters().size());
    const exsal::Matrix<Scalar> x = exsal::Matrix<Scalar>::Ones(model.n_genes(), 2);
    fuzz_check(model.encode(x).rows() == model.units());
    fuzz_check(model.reconstruct(x).rows() == model.n_genes());
    if (!loaded.preprocessing.empty()) check_preprocessor(loaded.preprocessing, path);

    exsal::save_model(out.path, model, loaded.preprocessing);
    const exsal::LoadedModel<Scalar> back = exsal::load_model<Scalar>(out.path);
    fuzz_check(back.preprocessing == loaded.preprocessing);
    fuzz_check(back.model.config().hidden == model.config().hidden);
    fuzz_check(back.model.config().representation == model.config().representation);
    fuzz_check(back.model.parameters().size() == model.parameters().size());
    fuzz_check((back.model.parameters().array() == model.parameters().array()).all());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size < 1) return 0;
    static ScratchFile in("model");
    const unsigned mode = data[0] & 3;
    const bool use_double = data[0] & 4;
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    if (mode >= 2) {
        std::string bytes(rest);
        if (mode == 3) {
            exsal::detail::ByteWriter w;
            w.u64(exsal::detail::fnv1a64(bytes));
            bytes += w.bytes();
        }
        check_preprocessor(bytes, "fuzz-state");
        return 0;
    }
    std::string file;
    if (mode == 0) {
        file = std::string(rest);
    } else {
        exsal::detail::ByteWriter w;
        for (int i = 0; i < 8; ++i) w.u8(static_cast<std::uint8_t>(exsal::model_file_magic[i]));
        w.u32(exsal::model_file_version);
        w.u64(rest.size());
        file = w.take();
        file += rest;
        exsal::detail::ByteWriter tail;
        tail.u64(exsal::detail::fnv1a64(rest));
        file += tail.bytes();
    }
    exsal_fuzz::write_scratch(in.path, reinterpret_cast<const unsigned char*>(file.data()), file.size());
    try {
        if (use_double)
            check_model<double>(in.path);
        else
            check_model<float>(in.path);
    } catch (const exsal::FileError&) {
        // checked in check_model: names the file
    }
    return 0;
}
