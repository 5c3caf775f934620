#ifndef EXSAL_PIPELINE_CONFIG_HPP
#define EXSAL_PIPELINE_CONFIG_HPP

// Everything one run of the pipeline (examples/velten_pipeline) needs. It is made of the library's
// own option structs - PreprocessOptions, TrainOptions (with AdamOptions and SgdOptions),
// InterpretOptions and ProgrammeOptions - plus what only the program needs (file names, sizes of
// the built-in data, figures, the output folder). The pipeline's stages use the structs as they
// are and only add the seeds they derive from `seed`. The command-line options, their checks,
// their help and how run.json records them are declared once, in options.hpp.

#include "exsal/core/types.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/interpret/interpretation.hpp"
#include "exsal/interpret/programmes.hpp"
#include "exsal/nn/trainer.hpp"

#include <cstdint>
#include <string>

namespace exsal {

struct PipelineConfig {
    // Data. An empty `expression` means the built-in simulated haematopoiesis data.
    std::string expression;
    bool genes_in_rows = false;
    std::string id_column = "sample";
    std::string group_column = "cluster";
    std::string layer;           // h5ad: "" = X, "raw" = the raw matrix, else layers/<layer>
    std::string cell_groups;     // CSV/TSV of cell id, group: the group labels (overrides the file's)
    std::string gene_sets;       // GMT file ("" = the simulated sets, built-in data only)
    std::string gene_set_prefix; // keep sets whose name starts with it
    Index simulate_cells = 2000;
    Index simulate_genes = 3000;

    // Model and training. The seeds inside the structs are replaced by streams derived from `seed`.
    Index hidden = 128; // width of the layers around the representation: G -> hidden -> units -> hidden -> G
    Index units = 64;
    PreprocessOptions preprocess = default_preprocess();
    TrainOptions train;               // max_epochs is set from `epochs`
    int epochs = 0;                   // at most this many; 0 = default_epochs()
    Index min_validation_cells = 50;  // fewer held-out cells: no early stopping, last epoch kept
    Index ensemble = 1;               // models trained from derived seeds; consensus programmes

    // Interpretation.
    InterpretOptions interpret;       // its compare_pairs are also the programmes' comparisons
    ProgrammeOptions programmes;      // permutations = the label permutations
    Index interpret_cells = 0;        // interpret a stratified sample of this many cells (0 = all)
    double activity_floor = 0.01;     // units with SD <= this x the largest unit SD are inactive
    Index heatmap_sets = 60;          // at most this many sets in the heatmaps
    std::string heatmap_values = "z"; // z (signed z-scores, clustered) or impact (the reference's)

    // Run.
    std::string out = "exsal-out";
    bool force = false;
    std::uint64_t seed = 1;
    int threads = 1;                  // the command line defaults to all cores
    bool quiet = false;
    std::string model_in;             // project with a trained model, no training

    bool builtin_data() const noexcept { return expression.empty(); }
    bool projecting() const noexcept { return !model_in.empty(); }

    // Maximum epochs when `epochs` is 0: 150 for the built-in data (about a minute on 2 cores),
    // 500 (the reference's maximum) for files; early stopping usually ends training sooner.
    int default_epochs() const noexcept { return builtin_data() ? 150 : 500; }
    int max_epochs() const noexcept { return epochs > 0 ? epochs : default_epochs(); }

    // The pipeline's preprocessing differs from the library's defaults: per-gene min-max input,
    // centred (units do not die at the start of training; see PreprocessOptions::centre).
    static PreprocessOptions default_preprocess() {
        PreprocessOptions o;
        o.transform = InputTransform::minmax;
        o.centre = true;
        return o;
    }
};

} // namespace exsal

#endif // EXSAL_PIPELINE_CONFIG_HPP
