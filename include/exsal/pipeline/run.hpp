#ifndef EXSAL_PIPELINE_RUN_HPP
#define EXSAL_PIPELINE_RUN_HPP

// One whole run of the pipeline: validate, read or simulate the data, train (or load a model),
// project every cell, interpret, and write every output into an OutputFolder that is committed
// only when everything succeeded. Outputs (names are a contract, see result_tables.hpp and
// result_figures.hpp for the columns and figures):
//   representation.csv unit_gene_sets.csv group_units.csv group_gene_sets.csv gene_saliency.csv
//   heatmap.svg heatmap_<group>.svg... heatmap_<A>_vs_<B>.svg... representation_map.svg
//   model.exsal   the model with its preprocessing (with --model-in: a copy of that file)
//   run.json      every parameter, seeds, versions, data dimensions, gene-set coverage, per-epoch
//                 losses and the seconds each stage took (under "timings_seconds", the only part
//                 that differs between two runs with the same seed and thread count)
//   synthetic_gene_sets.gmt, simulated_expression.csv.gz   built-in data only: the simulated
//                 sets (description "planted" or "decoy") and matrix (cells in rows, sample and
//                 cluster columns), so `--expression simulated_expression.csv.gz --gene-sets
//                 synthetic_gene_sets.gmt` repeats the run from files.
// Progress and notes go through PipelineObserver callbacks; nothing is printed here.

#include "exsal/core/cpu.hpp"
#include "exsal/core/denormals.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/interpret/annotate.hpp"
#include "exsal/io/expression_writer.hpp"
#include "exsal/pipeline/config.hpp"
#include "exsal/pipeline/output_folder.hpp"
#include "exsal/pipeline/result_figures.hpp"
#include "exsal/pipeline/result_tables.hpp"
#include "exsal/pipeline/stages.hpp"
#include "exsal/report/json.hpp"
#include "exsal/version.hpp"
#if EXSAL_WITH_HDF5
#include "exsal/io/h5ad_writer.hpp"
#endif

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

struct PipelineObserver {
    std::function<void(const std::string& stage)> on_stage;   // a stage starts ("data", "train", ...)
    std::function<void(const EpochInfo&)> on_epoch;            // after every training epoch
    std::function<void(const BatchInfo&)> on_batch;            // after every training batch
    std::function<void(Index done, Index total)> on_cells;     // interpretation progress, cells done
    std::function<void(const std::string& message)> on_note;  // something the user should know
};

// How the built-in data's planted programmes were recovered (one per set described "planted").
struct PlantedRecovery {
    std::string gene_set;     // SIM_<PROGRAMME>
    Index unit = -1;          // unit with the largest z-score for the set (-1: set not usable)
    double z_score = std::numeric_limits<double>::quiet_NaN();
    double q_value = std::numeric_limits<double>::quiet_NaN();
    double correlation = std::numeric_limits<double>::quiet_NaN(); // Pearson r of that unit with the planted activity
};

// One further model of an ensemble (model 1 is the run's own).
struct EnsembleMember {
    Index model = 0;            // 2 .. K
    std::uint64_t seed = 0;     // its --seed
    int epochs_run = 0;
    double final_orthogonality_error = 0.0;
    Index active_units = 0;
};

struct PipelineResult {
    std::string out;                 // the output folder
    std::vector<std::string> files;  // files written, in order
    bool trained = false;            // false with --model-in
    Index cells = 0, genes_input = 0, genes_model = 0, units = 0;
    Index sets_read = 0;
    TrainHistory history;            // empty with --model-in
    int max_epochs = 0;
    Interpretation interpretation;
    std::vector<UnitGroupStats> group_stats; // effect sizes NaN for inactive units
    UnitActivity activity;                   // which units are active (only those are tested)
    ProgrammeAnalysis programmes;            // group programmes of the run's model
    std::vector<ConsensusProgrammes> consensus; // --ensemble K > 1: over the K models
    std::vector<EnsembleMember> ensemble;    // --ensemble K > 1: models 2 .. K
    bool early_stopping = true;              // false: too few validation cells (--min-validation-cells)
    std::vector<PlantedRecovery> planted;
    std::vector<std::pair<std::string, double>> timings; // stage, seconds
};

namespace detail {

inline double pearson(const Eigen::Ref<const VectorD>& a, const Eigen::Ref<const VectorD>& b) {
    const Eigen::ArrayXd x = a.array() - a.mean(), y = b.array() - b.mean(); // centred
    const double den = std::sqrt((x * x).sum() * (y * y).sum());
    return den > 0.0 ? (x * y).sum() / den : std::numeric_limits<double>::quiet_NaN();
}

// Throws ArgumentError when an input file is one of the outputs `names` of the folder (only the
// model file may be its own copy in projection mode).
inline void check_inputs_not_overwritten(const PipelineConfig& c, const OutputFolder& folder,
                                         const std::vector<std::string>& names) {
    namespace fs = std::filesystem;
    const auto same = [](const std::string& a, const std::string& b) {
        std::error_code ec;
        return fs::weakly_canonical(fs::absolute(a), ec) == fs::weakly_canonical(fs::absolute(b), ec);
    };
    const std::pair<const char*, const std::string*> inputs[] = {
        {"--expression", &c.expression}, {"--gene-sets", &c.gene_sets}, {"--model-in", &c.model_in}};
    for (const auto& [option, path] : inputs) {
        if (path->empty()) continue;
        for (const auto& name : names) {
            if (std::string(option) == "--model-in" && name == "model.exsal") continue; // replaced by a copy of itself
            if (same(*path, folder.final_path(name)))
                throw ArgumentError(option, "'" + *path + "' would be replaced by the output " + name +
                                                "; move it or choose another --out");
        }
    }
}

inline JsonValue history_json(const TrainHistory& h) {
    JsonValue epochs = JsonValue::array();
    for (std::size_t e = 0; e < h.train_loss.size(); ++e) {
        JsonValue row = JsonValue::object();
        row["epoch"] = static_cast<Index>(e + 1);
        row["train_loss"] = h.train_loss[e];
        row["validation_loss"] = h.validation_loss[e]; // null where not evaluated
        row["orthogonality_error"] = h.orthogonality_error[e];
        epochs.push_back(std::move(row));
    }
    return epochs;
}

inline JsonValue model_json(const FittedModel& f) {
    const AutoencoderConfig& a = f.model.config();
    JsonValue m = JsonValue::object();
    m["genes"] = a.n_genes;
    m["hidden_layers"] = JsonValue::array_of(a.hidden);
    m["representation_layer"] = a.representation;
    m["units"] = a.units();
    JsonValue acts = JsonValue::array();
    for (const auto& s : a.activations) {
        JsonValue x = JsonValue::object();
        x["kind"] = to_string(s.kind);
        x["beta"] = s.beta;
        acts.push_back(std::move(x));
    }
    m["activations"] = std::move(acts);
    m["parameters"] = static_cast<Index>(f.model.parameters().size());
    m["input_transform"] = transform_option_name(f.preprocessor.input_transform());
    m["input_centred"] = f.preprocessor.centre().size() > 0;
    m["filter_threshold"] = f.preprocessor.filter_threshold();
    m["gene_sets_label"] = f.preprocessor.gene_sets();
    return m;
}

// group_programmes.svg: groups (and pairs) x their top sets, coloured by score relative to the
// group's largest |score| (negative for sets lower in the group), marked by q; the consensus of an
// ensemble when there is one.
inline void write_programmes_figure(const std::string& path, const ProgrammeAnalysis& a,
                                    const std::vector<ConsensusProgrammes>& consensus,
                                    const std::vector<std::string>& set_names) {
    const Index S = static_cast<Index>(set_names.size());
    const Index n = static_cast<Index>(consensus.empty() ? a.comparisons.size() : consensus.size());
    std::vector<std::string> groups;
    MatrixD score(S, n), q(S, n);
    for (Index g = 0; g < n; ++g) {
        const auto k = static_cast<std::size_t>(g);
        const auto& dir = consensus.empty() ? a.comparisons[k].direction : consensus[k].direction;
        const VectorD& sc = consensus.empty() ? a.comparisons[k].score : consensus[k].mean_score;
        groups.push_back(consensus.empty() ? a.comparisons[k].group : consensus[k].group);
        const auto& rank = consensus.empty() ? a.comparisons[k].rank : consensus[k].rank;
        q.col(g) = consensus.empty() ? a.comparisons[k].q_value : consensus[k].q_value;
        for (Index s = 0; s < S; ++s) // unranked sets (they do not stand out from random sets): no value, no mark
            if (rank[static_cast<std::size_t>(s)] == 0) {
                score(s, g) = q(s, g) = std::numeric_limits<double>::quiet_NaN();
            } else {
                score(s, g) = dir[static_cast<std::size_t>(s)] == ProgrammeDirection::higher ? sc(s) : -std::abs(sc(s));
            }
        double largest = 0.0; // scores are T, on each comparison's own scale
        for (Index s = 0; s < S; ++s)
            if (std::isfinite(score(s, g))) largest = std::max(largest, std::abs(score(s, g)));
        if (largest > 0.0) score.col(g) /= largest;
    }
    write_group_programmes_figure(path, groups, set_names, score, q, 3);
}

// Last finite value of v, NaN if none.
inline double last_finite(const std::vector<double>& v) {
    for (auto it = v.rbegin(); it != v.rend(); ++it)
        if (std::isfinite(*it)) return *it;
    return std::numeric_limits<double>::quiet_NaN();
}

} // namespace detail

namespace detail {

// The files of a run whose names do not depend on the data, once: checked against the inputs
// before any work and written under these names.
namespace output {
constexpr const char* representation = "representation.csv";
constexpr const char* unit_gene_sets = "unit_gene_sets.csv";
constexpr const char* group_units = "group_units.csv";
constexpr const char* group_gene_sets = "group_gene_sets.csv";
constexpr const char* gene_saliency = "gene_saliency.csv";
constexpr const char* units = "units.csv";
constexpr const char* group_programmes = "group_programmes.csv";
constexpr const char* group_programmes_figure = "group_programmes.svg";
constexpr const char* consensus = "group_programmes_consensus.csv";
constexpr const char* heatmap = "heatmap.svg";
constexpr const char* representation_map = "representation_map.svg";
constexpr const char* model = "model.exsal";
constexpr const char* run = "run.json";
constexpr const char* simulated_sets = "synthetic_gene_sets.gmt";
constexpr const char* simulated_expression = "simulated_expression.csv.gz";
constexpr const char* results_h5ad = "results.h5ad"; // built with HDF5 only
} // namespace output

inline std::vector<std::string> fixed_output_names(const PipelineConfig& c) {
    std::vector<std::string> n = {output::representation, output::unit_gene_sets, output::group_units,
                                  output::group_gene_sets,  output::gene_saliency,  output::heatmap,
                                  output::representation_map, output::model,      output::run,
                                  output::units,            output::group_programmes, output::group_programmes_figure};
    if (c.ensemble > 1) n.push_back(output::consensus);
    if (EXSAL_WITH_HDF5) n.push_back(output::results_h5ad);
    if (c.builtin_data()) {
        n.push_back(output::simulated_sets);
        n.push_back(output::simulated_expression);
    }
    return n;
}

// Stages of a run: each is announced to the observer and timed under the same name.
class Stages {
public:
    explicit Stages(const PipelineObserver& observer) : m_observer(observer) {}

    template <typename F>
    decltype(auto) run(const std::string& name, F&& work) {
        if (m_observer.on_stage) m_observer.on_stage(name);
        const auto start = std::chrono::steady_clock::now();
        struct Done { // records the time also when `work` returns void
            Stages& s;
            std::string name;
            std::chrono::steady_clock::time_point start;
            ~Done() { s.m_timings.emplace_back(name, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()); }
        } done{*this, name, start};
        return std::forward<F>(work)();
    }
    void note(const std::string& message) const {
        if (m_observer.on_note) m_observer.on_note(message);
    }
    const PipelineObserver& observer() const noexcept { return m_observer; }
    std::vector<std::pair<std::string, double>>& timings() noexcept { return m_timings; }

private:
    const PipelineObserver& m_observer;
    std::vector<std::pair<std::string, double>> m_timings;
};

// The files written into the output folder, in order.
// Without a folder (the processes of a data-parallel run other than the first) nothing is written.
class Outputs {
public:
    explicit Outputs(OutputFolder* folder) : m_folder(folder) {}
    bool writing() const noexcept { return m_folder != nullptr; }
    std::string file(const std::string& name) {
        if (!m_folder) throw Error("exsal pipeline: only the first process writes the outputs (" + name + ")");
        m_written.push_back(name);
        return m_folder->file(name);
    }
    const std::vector<std::string>& written() const noexcept { return m_written; }

private:
    OutputFolder* m_folder;
    std::vector<std::string> m_written;
};

// How each set described "planted" (the built-in data's programmes) was recovered.
inline std::vector<PlantedRecovery> planted_recovery(const Interpretation& in, const PipelineData& data,
                                                     const Projection& projection) {
    std::vector<PlantedRecovery> planted;
    for (std::size_t s = 0; s < in.set_names.size(); ++s) {
        if (in.set_descriptions[s] != "planted") continue;
        PlantedRecovery p;
        p.gene_set = in.set_names[s];
        const Index row = static_cast<Index>(s);
        for (Index u = 0; u < in.z_score.cols(); ++u)
            if (p.unit < 0 || in.z_score(row, u) > p.z_score) {
                p.unit = u;
                p.z_score = in.z_score(row, u);
            }
        p.q_value = in.q_value(row, p.unit);
        if (data.simulated)
            for (std::size_t k = 0; k < data.truth.programmes.size(); ++k)
                if ("SIM_" + data.truth.programmes[k] == p.gene_set)
                    p.correlation = pearson(projection.representation.row(p.unit).cast<double>().transpose(),
                                            data.truth.activity.row(static_cast<Index>(k)).cast<double>().transpose());
        planted.push_back(p);
    }
    return planted;
}

// Models 2 .. K of an ensemble: each trained, explained and tabled under models/model_<k>/; the
// consensus of all K models' programmes goes into r.consensus.
inline void run_ensemble(const PipelineConfig& c, const PipelineData& data, const std::vector<Index>& sample,
                         PipelineResult& r, Outputs& out, Stages& stages, ProcessGroup* processes) {
    std::vector<ProgrammeAnalysis> models{r.programmes};
    for (Index k = 2; k <= c.ensemble; ++k)
        stages.run("ensemble model " + std::to_string(k) + " of " + std::to_string(c.ensemble), [&] {
            const PipelineConfig ck = ensemble_member_config(c, k);
            const TrainedModel t = data.visit(
                [&](const auto& m) { return fit_pipeline_model(ck, m, data.gene_sets, stages.observer().on_epoch,
                                                                stages.observer().on_batch, processes, data.share); });
            Projection pk;
            on_every_process(processes, "projecting the cells", [&] {
                pk = data.visit([&](const auto& m) { return project_cells(t.fitted, m, sample, data.share); });
            });
            share_representation(pk, processes);
            Explanation e = explain_cells(ck, t.fitted, pk, data.groups(), data.gene_sets,
                                          stages.observer().on_cells, processes);
            const std::string dir = "models/model_" + std::to_string(k) + "/";
            on_every_process(processes, "writing the outputs", [&] {
                if (!out.writing()) return;
                units_table(e.activity, e.interpretation).write(out.file(dir + output::units));
                unit_gene_sets_table(e.interpretation).write(out.file(dir + output::unit_gene_sets));
                group_programmes_table(e.programmes, e.interpretation.set_names).write(out.file(dir + output::group_programmes));
            });
            r.ensemble.push_back({k, ck.seed, t.history.epochs_run,
                                  t.history.orthogonality_error.empty() ? 0.0 : t.history.orthogonality_error.back(),
                                  e.activity.n_active()});
            models.push_back(std::move(e.programmes));
        });
    r.consensus = consensus_programmes(models);
}

#if EXSAL_WITH_HDF5
// results.h5ad: the cells (obs, with their group), the model's genes (var), the representation
// (obsm/X_exsal, cells x units), the cells' programme scores (obsm/exsal_programme_scores, cells x
// the usable gene sets: see group_programmes; NaN for cells not interpreted or without a group)
// and the run's parameters (uns/exsal), for scanpy: sc.pp.neighbors(adata, use_rep="X_exsal").
inline void write_results_h5ad(const PipelineConfig& c, const PipelineData& data, const Projection& projection,
                               const FittedModel& fitted, const PipelineResult& r, Outputs& out) {
    AnnDataResults a;
    a.cells = data.cells();
    a.groups = data.groups();
    a.genes = fitted.preprocessor.genes();
    a.obsm.push_back({"X_exsal", {projection.representation.data(), projection.representation.rows()}});
    MatrixF scores; // all cells x sets
    if (r.programmes.cell_scores.size() > 0) {
        scores = MatrixF::Constant(data.n_cells(), r.programmes.cell_scores.cols(), std::numeric_limits<float>::quiet_NaN());
        for (std::size_t j = 0; j < projection.interpreted.size(); ++j)
            scores.row(projection.interpreted[j]) = r.programmes.cell_scores.row(static_cast<Index>(j));
        a.obsm_frames.push_back({"exsal_programme_scores", r.interpretation.set_names, scores.data()});
    }
    a.uns["version"] = EXSAL_VERSION_STRING;
    a.uns["source"] = data.source;
    a.uns["units"] = JsonValue::array_of(unit_labels(projection.representation.rows()));
    // The analysis' parameters; where the files went (--out, --force, --quiet) is not one of them,
    // and leaving it out keeps the file identical for runs that differ only there.
    const JsonValue parameters = parameters_json(c);
    JsonValue kept = JsonValue::object();
    for (std::size_t i = 0; i < parameters.keys().size(); ++i)
        if (parameters.keys()[i] != "out" && parameters.keys()[i] != "force" && parameters.keys()[i] != "quiet")
            kept[parameters.keys()[i]] = parameters.items()[i];
    a.uns["parameters"] = std::move(kept);
    write_h5ad_results(out.file(output::results_h5ad), a);
}
#endif

// The CSV tables of the run's model (and the ensemble's consensus).
inline void write_tables(const PipelineData& data, const Projection& projection, const FittedModel& fitted,
                         const PipelineResult& r, Outputs& out) {
    const Interpretation& in = r.interpretation;
    if (!r.consensus.empty()) consensus_programmes_table(r.consensus, in.set_names).write(out.file(output::consensus));
    write_representation(out.file(output::representation), data.cells(), data.groups(), projection.representation);
    unit_gene_sets_table(in).write(out.file(output::unit_gene_sets));
    group_units_table(r.group_stats).write(out.file(output::group_units));
    group_gene_sets_table(in).write(out.file(output::group_gene_sets));
    gene_saliency_table(in, fitted.preprocessor.genes()).write(out.file(output::gene_saliency));
    units_table(r.activity, in).write(out.file(output::units));
    group_programmes_table(r.programmes, in.set_names).write(out.file(output::group_programmes));
}

// What the figures showed, for run.json.
struct FiguresWritten {
    Index heatmap_sets = 0;        // sets in the heatmaps
    Index heatmap_units_shown = 0; // units in heatmap.svg
    JsonValue files = JsonValue::object(); // file -> what it shows
};

// The figures: programmes, the heatmaps (all cells, each group, each pair) and the map of cells.
inline FiguresWritten write_figures(const PipelineConfig& c, const PipelineData& data, const Projection& projection,
                                    const PipelineResult& r, Outputs& out) {
    const Interpretation& in = r.interpretation;
    write_programmes_figure(out.file(output::group_programmes_figure), r.programmes, r.consensus, in.set_names);
    FiguresWritten f;
    const std::vector<Index> rows = heatmap_sets(in, c.heatmap_sets);
    const HeatmapSelection shown = c.heatmap_values == "z"
                                       ? write_signed_z_heatmap(out.file(output::heatmap), in, r.activity.active, rows)
                                       : write_impact_heatmap(out.file(output::heatmap), in, rows);
    f.heatmap_sets = static_cast<Index>(rows.size());
    f.heatmap_units_shown = static_cast<Index>(shown.columns.size());
    std::set<std::string> taken = {output::heatmap};
    f.files[output::heatmap] = "all cells";
    for (std::size_t g = 0; g < in.groups.size(); ++g) {
        const std::string name = figure_file_name("heatmap_", in.groups[g], taken);
        write_difference_heatmap(out.file(name), in, rows, "Gene-set impact in " + in.groups[g] + " (" +
                                                               std::to_string(in.group_sizes[g]) + " cells)",
                                 in.impact_in_group[g], in.impact_in_rest[g], in.groups[g] + " \xE2\x88\x92 rest");
        f.files[name] = "group " + in.groups[g];
    }
    for (const auto& p : in.pairs) {
        const std::string name = figure_file_name("heatmap_", pair_label(p.group_a, p.group_b), taken);
        write_difference_heatmap(out.file(name), in, rows, "Gene-set impact in " + p.group_a + " against " + p.group_b,
                                 p.impact_a, p.impact_b, p.group_a + " \xE2\x88\x92 " + p.group_b);
        f.files[name] = "pair " + p.group_a + ":" + p.group_b;
    }
    write_representation_map(out.file(output::representation_map), projection.representation, data.groups());
    return f;
}

// model.exsal (with --model-in: a byte copy of that file, so the folder is complete on its own)
// and, for the built-in data, the simulated sets and matrix.
inline void write_model_and_data(const PipelineConfig& c, const PipelineData& data, const FittedModel& fitted,
                                 Outputs& out) {
    if (c.projecting()) {
        std::ifstream src(c.model_in, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
        if (!src.good() && !src.eof()) throw FileError(c.model_in, "cannot read the model file again");
        write_file_atomically(out.file(output::model), bytes, true);
    } else {
        save_fitted_model(out.file(output::model), fitted);
    }
    if (data.simulated) {
        write_gmt(out.file(output::simulated_sets), data.simulated_sets);
        write_expression(out.file(output::simulated_expression), data.expression);
    }
}

inline JsonValue versions_json() {
    JsonValue v = JsonValue::object();
    v["exsal"] = EXSAL_VERSION_STRING;
    v["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                 std::to_string(EIGEN_MINOR_VERSION);
#ifdef __VERSION__
    v["compiler"] = __VERSION__;
#endif
    v["simd"] = Eigen::SimdInstructionSetsInUse();           // what this binary was compiled for
    v["cpu_features_unused"] = JsonValue::array_of(unused_cpu_features()); // what this CPU has beyond that
    v["matrix_products"] = gemm_backend();                   // Eigen's kernels or BLAS (-DEXSAL_BLAS=ON)
    v["denormals"] = denormals_mode();                       // subnormal floats flushed to zero or kept
    return v;
}

inline JsonValue seeds_json(const PipelineConfig& c) {
    JsonValue s = JsonValue::object();
    s["simulation"] = pipeline_seed(c, PipelineSeed::simulation);
    s["split"] = pipeline_seed(c, PipelineSeed::split);
    s["weights"] = pipeline_seed(c, PipelineSeed::weights);
    s["batches"] = pipeline_seed(c, PipelineSeed::batches);
    s["null"] = pipeline_seed(c, PipelineSeed::null);
    if (c.interpret_cells > 0) s["interpreted_cells"] = pipeline_seed(c, PipelineSeed::interpreted_cells);
    return s;
}

inline JsonValue data_json(const PipelineData& data, const PipelineResult& r, const TrainedModel* trained,
                           const Projection& projection) {
    JsonValue d = JsonValue::object();
    d["source"] = data.source;
    if (!data.format.empty()) d["format"] = data.format;
    if (data.is_sparse) d["non_zeros"] = data.non_zeros;
    if (!data.notes.empty()) d["notes"] = JsonValue::array_of(data.notes);
    d["cells"] = r.cells;
    d["genes_input"] = r.genes_input;
    if (trained) {
        const PreprocessReport& pr = trained->report;
        d["genes_removed_by_filter"] = pr.genes_removed_by_filter;
        d["genes_removed_by_gene_sets"] = pr.genes_removed_by_gene_sets;
        d["cells_train"] = pr.cells_train;
        d["cells_validation"] = pr.cells_validation;
    }
    d["genes_model"] = r.genes_model;
    d["genes_missing_from_cells"] = projection.genes_missing;
    d["genes_not_in_model"] = projection.genes_extra;
    JsonValue groups = JsonValue::object();
    const Interpretation& in = r.interpretation;
    for (std::size_t g = 0; g < in.groups.size(); ++g) groups[in.groups[g]] = in.group_sizes[g];
    d["groups"] = std::move(groups);
    return d;
}

inline JsonValue gene_sets_json(const PipelineConfig& c, const PipelineData& data, const PipelineResult& r,
                                const FittedModel& fitted) {
    const Interpretation& in = r.interpretation;
    JsonValue gs = JsonValue::object();
    gs["source"] = c.gene_sets.empty() ? std::string("built-in simulation") : c.gene_sets;
    gs["prefix"] = c.gene_set_prefix;
    gs["sets"] = r.sets_read;
    gs["usable"] = static_cast<Index>(in.set_names.size());
    gs["skipped"] = static_cast<Index>(in.skipped_sets.size());
    gs["min_genes"] = c.interpret.min_genes;
    std::vector<std::string> upper_genes = data.genes();
    for (auto& g : upper_genes) detail::upper_case_ascii(g);
    const auto in_data = gene_set_coverage(data.gene_sets, upper_genes);
    const auto in_model = gene_set_coverage(data.gene_sets, fitted.preprocessor.genes());
    JsonValue cov = JsonValue::array();
    for (std::size_t s = 0; s < data.gene_sets.size(); ++s) {
        JsonValue x = JsonValue::object();
        x["name"] = data.gene_sets[s].name;
        x["genes_in_set"] = in_data[s].genes_in_set;
        x["genes_in_data"] = in_data[s].genes_found;
        x["genes_in_model"] = in_model[s].genes_found;
        x["usable"] = in_model[s].genes_found >= c.interpret.min_genes;
        cov.push_back(std::move(x));
    }
    gs["coverage"] = std::move(cov);
    return gs;
}

inline JsonValue training_json(const TrainedModel* trained) {
    if (!trained) return JsonValue();
    const TrainHistory& h = trained->history;
    JsonValue t = JsonValue::object();
    t["max_epochs"] = trained->max_epochs;
    t["epochs_run"] = h.epochs_run;
    t["stopped_early"] = h.stopped_early;
    t["early_stopping"] = trained->early_stopping;
    t["best_epoch"] = h.best_epoch >= 0 ? JsonValue(h.best_epoch + 1) : JsonValue();
    t["best_validation_loss"] = h.best_validation_loss;
    t["final_train_loss"] = h.train_loss.empty() ? JsonValue() : JsonValue(h.train_loss.back());
    t["final_validation_loss"] = last_finite(h.validation_loss);
    t["final_orthogonality_error"] = h.orthogonality_error.empty() ? JsonValue() : JsonValue(h.orthogonality_error.back());
    JsonValue first = JsonValue::object(); // which batches multiplied only their non-zero counts
    first["rule"] = "a batch with at most this share of non-zero counts goes through the sparse first layer";
    first["max_density"] = GatheredCells<SparseExpression>::default_sparse_density;
    first["batches"] = h.batches;
    first["sparse_batches"] = h.sparse_batches;
    t["first_layer"] = std::move(first);
    t["epochs"] = history_json(h);
    return t;
}

inline JsonValue interpretation_json(const PipelineConfig& c, const PipelineResult& r, const FiguresWritten& figures) {
    const Interpretation& in = r.interpretation;
    JsonValue ij = JsonValue::object();
    ij["cells"] = in.cells;
    ij["cells_sampled"] = in.cells < r.cells; // --interpret-cells: a sample per group
    if (in.cells < r.cells) {
        JsonValue per_group = JsonValue::object();
        for (std::size_t g = 0; g < in.groups.size(); ++g) per_group[in.groups[g]] = in.group_sizes[g];
        ij["sample_per_group"] = std::move(per_group);
    }
    ij["null_method"] = to_string(in.null_method);
    ij["expression_bins"] = in.expression_bins;
    ij["heatmap_sets"] = figures.heatmap_sets;
    ij["heatmap_units_shown"] = figures.heatmap_units_shown;
    JsonValue planted = JsonValue::array();
    for (const auto& p : r.planted) {
        JsonValue x = JsonValue::object();
        x["gene_set"] = p.gene_set;
        x["unit"] = unit_label(p.unit);
        x["z_score"] = p.z_score;
        x["q_value"] = p.q_value;
        x["correlation_with_planted_activity"] = p.correlation;
        planted.push_back(std::move(x));
    }
    ij["planted_programmes"] = std::move(planted);
    JsonValue families = JsonValue::object();
    families["unit_gene_sets"] = "per unit: Benjamini-Hochberg over the usable sets of one active unit";
    families["group_programmes"] = "per comparison: Benjamini-Hochberg over the usable sets of one group (or pair)";
    ij["multiple_testing_families"] = std::move(families);
    JsonValue units = JsonValue::object();
    units["rule"] = "active when the SD of the unit's activation over the cells exceeds activity_floor x the largest unit SD";
    units["activity_floor"] = c.activity_floor;
    units["floor_sd"] = r.activity.floor;
    units["active"] = r.activity.n_active();
    units["inactive"] = r.units - r.activity.n_active();
    ij["units"] = std::move(units);
    JsonValue pj = JsonValue::object();
    pj["statistic"] = "T(S) = sum over active units of w_u D(u, S); w_u = Cohen's d of the unit between the group and the "
                      "rest, D(u, S) = group minus rest mean of gradient x (input - mean input) over S's genes";
    pj["null"] = "group labels permuted among the comparison's cells";
    pj["label_permutations"] = r.programmes.permutations;
    pj["comparisons"] = static_cast<Index>(r.programmes.comparisons.size());
    ij["programmes"] = std::move(pj);
    if (c.ensemble > 1) {
        JsonValue e = JsonValue::array();
        for (const auto& m : r.ensemble) {
            JsonValue x = JsonValue::object();
            x["model"] = m.model;
            x["seed"] = m.seed;
            x["epochs_run"] = m.epochs_run;
            x["final_orthogonality_error"] = m.final_orthogonality_error;
            x["active_units"] = m.active_units;
            e.push_back(std::move(x));
        }
        ij["ensemble_models"] = std::move(e);
        ij["consensus_p_value"] = "Cauchy combination of the models' p-values";
    }
    return ij;
}

// Everything a run's run.json records but its timings.
struct RunRecord {
    const PipelineConfig& config;
    const JsonValue& program;
    const PipelineData& data;
    const PipelineResult& result;
    const TrainedModel* trained; // null with --model-in
    const FittedModel& fitted;
    const Projection& projection;
    const FiguresWritten& figures;
    int processes = 1; // of a data-parallel run (each with `threads` threads)
};

inline JsonValue run_json(const RunRecord& x, const std::vector<std::string>& outputs) {
    const PipelineConfig& c = x.config;
    JsonValue run = JsonValue::object();
    run["program"] = x.program.is_null() ? JsonValue("exsal pipeline") : x.program;
    run["mode"] = c.projecting() ? "project" : "train";
    run["versions"] = versions_json();
    run["parameters"] = parameters_json(c);
    run["seed"] = c.seed;
    run["derived_seeds"] = seeds_json(c);
    run["threads"] = threads();     // per process
    run["processes"] = x.processes; // data-parallel processes (MPI ranks)
    run["data"] = data_json(x.data, x.result, x.trained, x.projection);
    run["gene_sets"] = gene_sets_json(c, x.data, x.result, x.fitted);
    run["model"] = model_json(x.fitted);
    run["training"] = training_json(x.trained);
    run["interpretation"] = interpretation_json(c, x.result, x.figures);
    run["figures"] = x.figures.files;
    run["outputs"] = JsonValue::array_of(outputs);
    return run;
}

// Notes for the user after training and interpretation.
inline void note_training(const PipelineConfig& c, const TrainedModel& t, const Stages& stages) {
    if (!t.early_stopping)
        stages.note("only " + std::to_string(t.report.cells_validation) + " validation cells (fewer than --min-validation-cells " +
                    std::to_string(c.min_validation_cells) + "): no early stopping, the last epoch's model is kept");
}

inline void note_interpretation(const PipelineConfig& c, const PipelineData& data, const PipelineResult& r,
                                const Stages& stages) {
    const Interpretation& in = r.interpretation;
    if (!in.skipped_sets.empty())
        stages.note(std::to_string(in.skipped_sets.size()) + " of " + std::to_string(data.gene_sets.size()) +
                    " gene sets have fewer than " + std::to_string(c.interpret.min_genes) +
                    " genes in the model and were skipped");
    if (r.activity.n_active() < r.units)
        stages.note(std::to_string(r.units - r.activity.n_active()) + " of " + std::to_string(r.units) +
                    " units are inactive (SD over the cells at most " + detail::format_shortest(c.activity_floor) +
                    " x the largest unit's) and are left out of the tests and summaries");
}

} // namespace detail

// Runs the pipeline. Invalid settings throw ArgumentError naming the option before any work;
// failures later throw (FileError, ArgumentError, NumericError) and leave --out as it was.
//
// With `processes` (a data-parallel run, e.g. MPI ranks, every process calling run_pipeline with
// the same configuration): each process reads the values of its share of the cells only
// (PipelineData::share; the ids and groups of all cells; the built-in data are simulated whole),
// all prepare alike (gene maxima and transform statistics combined), each trains on the training
// cells of its share (exsal::train over the group: one sum of the gradients per step), projects
// its share (the representations are then added up, so every process has all of them), and takes
// the interpreted cells of its share through the interpretation's two gradient passes, whose sums
// are added across the processes. The first
// process alone writes the outputs (the same files as one process; run.json records the process
// count), and commits the folder only when every process got there. An error on one process ends
// the run on every process at the next agreement (ProcessGroup::last_failures() > 0 there): the
// failing one throws its own error, the others OtherProcessFailed, and --out is left as it was.
inline PipelineResult run_pipeline(const PipelineConfig& c, const PipelineObserver& observer = {},
                                   const JsonValue& program = JsonValue(), ProcessGroup* processes = nullptr) {
    using namespace detail;
    const auto t_start = std::chrono::steady_clock::now();
    const bool writer = !processes || processes->rank() == 0;
    std::optional<OutputFolder> folder;
    on_every_process(processes, "checking the settings", [&] {
        validate_config(c);
        set_threads(c.threads);
        if (!writer) return;
        try {
            folder.emplace(OutputFolder::open(c.out, c.force));
        } catch (const ArgumentError& e) {
            rethrow_for_command_line(e, c, c.out);
        }
        check_inputs_not_overwritten(c, *folder, fixed_output_names(c));
    });
    Stages stages(observer);
    Outputs out(folder ? &*folder : nullptr);
    PipelineResult r;

    // The model file first (projection): cheap, and a bad file fails before large data are read.
    std::unique_ptr<FittedModel> loaded;
    if (c.projecting())
        stages.run("load model", [&] {
            on_every_process(processes, "loading the model", [&] { loaded = std::make_unique<FittedModel>(load_fitted_model(c.model_in)); });
        });
    PipelineData data;
    stages.run(c.builtin_data() ? "simulate data" : "read data", [&] {
        on_every_process(processes, "reading the data", [&] {
            data = load_pipeline_data(c, processes);
            check_pipeline_data(c, data);
        });
    });
    for (const std::string& n : data.notes) stages.note(n);
    r.cells = data.n_cells();
    r.genes_input = data.n_genes();
    r.sets_read = static_cast<Index>(data.gene_sets.size());

    std::unique_ptr<TrainedModel> trained;
    if (!c.projecting()) {
        trained = stages.run("train", [&] {
            return data.visit([&](const auto& m) {
                return std::make_unique<TrainedModel>(fit_pipeline_model(c, m, data.gene_sets, observer.on_epoch,
                                                                         observer.on_batch, processes, data.share));
            });
        });
        r.trained = true;
        r.history = trained->history;
        r.max_epochs = trained->max_epochs;
        r.early_stopping = trained->early_stopping;
        note_training(c, *trained, stages);
    }
    const FittedModel& fitted = trained ? trained->fitted : *loaded;
    r.genes_model = fitted.model.n_genes();
    r.units = fitted.model.units();

    const std::vector<Index> sample = interpretation_sample(data.n_cells(), data.groups(), c.interpret_cells,
                                                            pipeline_seed(c, PipelineSeed::interpreted_cells));
    if (static_cast<Index>(sample.size()) < data.n_cells())
        stages.note("interpreting " + std::to_string(sample.size()) + " of the " + std::to_string(data.n_cells()) +
                    " cells, sampled per group (--interpret-cells " + std::to_string(c.interpret_cells) + ")");
    Projection projection;
    stages.run("project", [&] {
        on_every_process(processes, "projecting the cells", [&] {
            try {
                projection = data.visit([&](const auto& m) { return project_cells(fitted, m, sample, data.share); });
            } catch (const Error& e) {
                rethrow_for_command_line(e, c, data.source);
            }
        });
        share_representation(projection, processes);
    });
    if (projection.genes_missing > 0)
        stages.note(std::to_string(projection.genes_missing) + " of the model's " + std::to_string(r.genes_model) +
                    " genes are missing from the cells and were set to 0 (first: " +
                    detail::prep::first_few(projection.missing_genes) + ")");

    stages.run("interpret", [&] {
        Explanation e = explain_cells(c, fitted, projection, data.groups(), data.gene_sets, observer.on_cells, processes);
        r.interpretation = std::move(e.interpretation);
        r.activity = std::move(e.activity);
        r.group_stats = std::move(e.group_stats);
        r.programmes = std::move(e.programmes);
    });
    note_interpretation(c, data, r, stages);
    r.planted = planted_recovery(r.interpretation, data, projection);
    if (c.ensemble > 1) run_ensemble(c, data, sample, r, out, stages, processes); // the same cells interpreted

    // The outputs, by the first process only; committed when every process got here.
    FiguresWritten figures;
    stages.run("write outputs", [&] {
        on_every_process(processes, "writing the outputs", [&] {
            if (!writer) return;
            write_tables(data, projection, fitted, r, out);
#if EXSAL_WITH_HDF5
            write_results_h5ad(c, data, projection, fitted, r, out);
#endif
            figures = write_figures(c, data, projection, r, out);
            write_model_and_data(c, data, fitted, out);
            check_inputs_not_overwritten(c, *folder, out.written());
        });
    });
    // run.json, last; then the folder takes the place of --out.
    on_every_process(processes, "writing the outputs", [&] {
        if (!writer) return;
        JsonValue run = run_json({c, program, data, r, trained.get(), fitted, projection, figures, processes ? processes->size() : 1},
                                 out.written());
        stages.timings().emplace_back("total", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
        JsonValue timings = JsonValue::object();
        for (const auto& [name, seconds] : stages.timings()) timings[name] = seconds;
        run["outputs"].push_back(output::run);
        run["timings_seconds"] = std::move(timings);
        write_json(folder->file(output::run), run);
        folder->commit();
    });
    if (writer) r.out = folder->target();
    r.files = out.written();
    if (writer) r.files.push_back(output::run);
    r.timings = std::move(stages.timings());
    return r;
}

} // namespace exsal

#endif // EXSAL_PIPELINE_RUN_HPP
