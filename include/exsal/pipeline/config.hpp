#ifndef EXSAL_PIPELINE_CONFIG_HPP
#define EXSAL_PIPELINE_CONFIG_HPP

// Everything one run of the pipeline (examples/velten_pipeline) needs: data, model, training,
// interpretation and run settings, with the command line's defaults. Each field names its
// command-line option; validate() checks every value before any work and names the option in
// its message (ArgumentError "--lr: ..."), so a program can pass the message on unchanged. It
// also checks that the given input files exist.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/interpret/interpretation.hpp"
#include "exsal/nn/losses.hpp"
#include "exsal/nn/optimizers.hpp"
#include "exsal/report/json.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

struct PipelineConfig {
    // Data. An empty `expression` means the built-in simulated haematopoiesis data.
    std::string expression;               // --expression: .csv, .tsv or .gz table
    bool genes_in_rows = false;           // --genes-in-rows: one row per gene (no group labels then)
    std::string id_column = "sample";     // --id-column: header of the cell id column
    std::string group_column = "cluster"; // --group-column: header of the group column ("" = none)
    std::string gene_sets;                // --gene-sets: GMT file ("" = the simulated sets, built-in data only)
    std::string gene_set_prefix;          // --gene-set-prefix: keep sets whose name starts with it
    Index min_genes = 10;                 // --min-genes: sets with fewer genes in the model are skipped
    double min_gene_max = 2.0;            // --min-gene-max: keep genes with a value > X in some cell
    Index simulate_cells = 2000;          // --simulate-cells: built-in data size
    Index simulate_genes = 3000;          // --simulate-genes

    // Model and training.
    Index hidden = 128;                   // --hidden: width of the layers around the representation
    Index units = 64;                     // --units: representation units
    LossKind loss = LossKind::poisson;    // --loss
    OptimizerKind optimizer = OptimizerKind::adam; // --optimizer
    double learning_rate = 1e-3;          // --lr
    double lambda_orth = 1.0;             // --lambda-orth: weight of ||I - W W^T||_F
    int epochs = 0;                       // --epochs: at most this many; 0 = default_epochs()
    Index batch = 128;                    // --batch: cells per mini-batch
    InputTransform input_transform = InputTransform::minmax; // --input-transform (per gene to [0, 1] on the training cells)
    bool input_centring = true;           // --input-centring on|off: subtract each gene's mean input over the training cells
    double validation_fraction = 0.05;    // --validation-fraction: held-out cells for early stopping
    int validate_every = 10;              // --validate-every: epochs between validation checks
    int patience = 5;                     // --patience: checks without improvement before stopping (0 = never)
    Index min_validation_cells = 50;      // --min-validation-cells: fewer held-out cells: no early stopping, last epoch kept
    Index ensemble = 1;                   // --ensemble: models trained from derived seeds; consensus programmes

    // Interpretation.
    SaliencyKind saliency = SaliencyKind::guided;           // --saliency
    ImpactAggregator aggregator = ImpactAggregator::median; // --aggregator
    NullMethod null_method = NullMethod::exact;             // --null
    Index permutations = 1000;            // --permutations: random sets per size (--null monte-carlo, --aggregator mean)
    Index expression_bins = 20;           // --expression-bins: random sets match the set's expression (1 = size only)
    std::vector<std::pair<std::string, std::string>> compare; // --compare A:B (repeatable)
    Index heatmap_sets = 60;              // --heatmap-sets: at most this many sets in the heatmaps
    std::string heatmap_values = "z";     // --heatmap-values: z (signed z-scores, clustered) or impact (the reference's)
    double activity_floor = 0.01;         // --activity-floor: units with SD <= this x the largest unit SD are inactive
    Index label_permutations = 1000;      // --label-permutations: group-label permutations of the programme test

    // Run.
    std::string out = "exsal-out";        // --out: output folder
    bool force = false;                   // --force: write into an existing non-empty --out
    std::uint64_t seed = 1;               // --seed
    int threads = 1;                      // --threads (the command line defaults to all cores)
    bool quiet = false;                   // --quiet
    std::string model_in;                 // --model-in: project with a trained model, no training

    bool builtin_data() const noexcept { return expression.empty(); }
    bool projecting() const noexcept { return !model_in.empty(); }

    // Maximum epochs when `epochs` is 0: 150 for the built-in data (about a minute on 2 cores),
    // 500 (the reference's maximum) for files; early stopping usually ends training sooner.
    int default_epochs() const noexcept { return builtin_data() ? 150 : 500; }
    int max_epochs() const noexcept { return epochs > 0 ? epochs : default_epochs(); }

    // Throws ArgumentError("--option", ...) for the first invalid value.
    void validate() const {
        const auto positive = [](const char* option, long long v) {
            if (v < 1) throw ArgumentError(option, "must be a positive count, got " + std::to_string(v));
        };
        const auto finite = [](const char* option, double v) {
            if (!std::isfinite(v)) throw ArgumentError(option, "must be a finite number, got " + format_value(v));
        };
        if (builtin_data()) {
            if (genes_in_rows) throw ArgumentError("--genes-in-rows", "only applies to --expression files");
            positive("--simulate-cells", simulate_cells);
            positive("--simulate-genes", simulate_genes);
            if (simulate_cells < 20)
                throw ArgumentError("--simulate-cells", "needs at least 20 cells, got " + std::to_string(simulate_cells));
        } else if (gene_sets.empty()) {
            throw ArgumentError("--gene-sets", "a GMT file is required with --expression (e.g. MSigDB Hallmark)");
        }
        if (!genes_in_rows && id_column.empty()) throw ArgumentError("--id-column", "must not be empty");
        if (!genes_in_rows && id_column == group_column)
            throw ArgumentError("--group-column", "is the same column as --id-column ('" + id_column + "')");
        positive("--min-genes", min_genes);
        finite("--min-gene-max", min_gene_max);
        positive("--hidden", hidden);
        positive("--units", units);
        if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
            throw ArgumentError("--lr", "must be a positive finite number, got " + format_value(learning_rate));
        if (!(lambda_orth >= 0.0) || !std::isfinite(lambda_orth))
            throw ArgumentError("--lambda-orth", "must be a finite number >= 0, got " + format_value(lambda_orth));
        if (epochs < 0) throw ArgumentError("--epochs", "must be a positive count, got " + std::to_string(epochs));
        positive("--batch", batch);
        if (!(validation_fraction >= 0.0 && validation_fraction < 0.5))
            throw ArgumentError("--validation-fraction", "must be in [0, 0.5), got " + format_value(validation_fraction));
        positive("--validate-every", validate_every);
        if (patience < 0) throw ArgumentError("--patience", "must be >= 0, got " + std::to_string(patience));
        positive("--permutations", permutations);
        positive("--expression-bins", expression_bins);
        if (null_method == NullMethod::exact && aggregator == ImpactAggregator::mean)
            throw ArgumentError("--null", "exact needs --aggregator median (use --null monte-carlo with mean)");
        positive("--heatmap-sets", heatmap_sets);
        if (heatmap_values != "z" && heatmap_values != "impact")
            throw ArgumentError("--heatmap-values", "must be z or impact, got '" + heatmap_values + "'");
        if (!(activity_floor >= 0.0 && activity_floor < 1.0))
            throw ArgumentError("--activity-floor", "must be in [0, 1), got " + format_value(activity_floor));
        if (label_permutations < 19)
            throw ArgumentError("--label-permutations", "must be at least 19 (p-values reach 0.05), got " +
                                                            std::to_string(label_permutations));
        if (min_validation_cells < 0)
            throw ArgumentError("--min-validation-cells", "must be >= 0, got " + std::to_string(min_validation_cells));
        if (ensemble < 1 || ensemble > 100)
            throw ArgumentError("--ensemble", "must be a count from 1 to 100, got " + std::to_string(ensemble));
        if (ensemble > 1 && projecting())
            throw ArgumentError("--ensemble", "trains models; it does not apply with --model-in");
        for (const auto& [a, b] : compare) {
            if (a.empty() || b.empty()) throw ArgumentError("--compare", "expects A:B with two group labels");
            if (a == b) throw ArgumentError("--compare", a + ":" + b + " names the same group twice");
        }
        if (!compare.empty() && (genes_in_rows || (!builtin_data() && group_column.empty())))
            throw ArgumentError("--compare", "needs group labels (a --group-column in a cells-in-rows table)");
        if (out.empty()) throw ArgumentError("--out", "must not be empty");
        positive("--threads", threads);
        check_input_file("--expression", expression);
        check_input_file("--gene-sets", gene_sets);
        check_input_file("--model-in", model_in);
    }

    // Every setting, with the command line's option names and spellings, for run.json.
    JsonValue to_json() const {
        JsonValue j = JsonValue::object();
        j["expression"] = expression.empty() ? JsonValue() : JsonValue(expression);
        j["genes_in_rows"] = genes_in_rows;
        j["id_column"] = id_column;
        j["group_column"] = group_column;
        j["gene_sets"] = gene_sets.empty() ? JsonValue() : JsonValue(gene_sets);
        j["gene_set_prefix"] = gene_set_prefix;
        j["min_genes"] = min_genes;
        j["min_gene_max"] = min_gene_max;
        if (builtin_data()) {
            j["simulate_cells"] = simulate_cells;
            j["simulate_genes"] = simulate_genes;
        }
        j["hidden"] = hidden;
        j["units"] = units;
        j["loss"] = to_string(loss);
        j["optimizer"] = to_string(optimizer);
        j["lr"] = learning_rate;
        j["lambda_orth"] = lambda_orth;
        j["epochs"] = max_epochs();
        j["batch"] = batch;
        j["input_transform"] = transform_option_name(input_transform);
        j["input_centring"] = input_centring ? "on" : "off";
        j["validation_fraction"] = validation_fraction;
        j["validate_every"] = validate_every;
        j["patience"] = patience;
        j["min_validation_cells"] = min_validation_cells;
        j["ensemble"] = ensemble;
        j["saliency"] = to_string(saliency);
        j["aggregator"] = to_string(aggregator);
        j["null"] = null_option_name(null_method);
        j["permutations"] = permutations;
        j["expression_bins"] = expression_bins;
        JsonValue pairs = JsonValue::array();
        for (const auto& [a, b] : compare) pairs.push_back(a + ":" + b);
        j["compare"] = std::move(pairs);
        j["heatmap_sets"] = heatmap_sets;
        j["heatmap_values"] = heatmap_values;
        j["activity_floor"] = activity_floor;
        j["label_permutations"] = label_permutations;
        j["out"] = out;
        j["force"] = force;
        j["seed"] = seed;
        j["threads"] = threads;
        j["quiet"] = quiet;
        j["model_in"] = model_in.empty() ? JsonValue() : JsonValue(model_in);
        return j;
    }

    // Command-line spellings of the enumerations.
    static const char* transform_option_name(InputTransform t) {
        return t == InputTransform::cpm_log1p ? "cpm-log1p" : input_transform_name(t);
    }
    static const char* null_option_name(NullMethod m) { return m == NullMethod::exact ? "exact" : "monte-carlo"; }

private:
    // Throws ArgumentError naming the option when a given input file does not exist or is a folder.
    static void check_input_file(const char* option, const std::string& path) {
        if (path.empty()) return;
        std::error_code ec;
        const auto st = std::filesystem::status(path, ec);
        if (!std::filesystem::exists(st)) throw ArgumentError(option, "'" + path + "' does not exist");
        if (std::filesystem::is_directory(st)) throw ArgumentError(option, "'" + path + "' is a folder, not a file");
    }
    static std::string format_value(double v) {
        if (std::isnan(v)) return "nan";
        if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
        return detail::format_shortest(v);
    }
};

// "A:B" -> {A, B}; throws ArgumentError("--compare", ...) unless there is exactly one ':' with
// text on both sides.
inline std::pair<std::string, std::string> parse_compare_pair(const std::string& text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos || text.find(':', colon + 1) != std::string::npos || colon == 0 ||
        colon + 1 == text.size())
        throw ArgumentError("--compare", "expects A:B with two group labels separated by one ':', got '" + text + "'");
    return {text.substr(0, colon), text.substr(colon + 1)};
}

} // namespace exsal

#endif // EXSAL_PIPELINE_CONFIG_HPP
