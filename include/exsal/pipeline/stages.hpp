#ifndef EXSAL_PIPELINE_STAGES_HPP
#define EXSAL_PIPELINE_STAGES_HPP

// The stages of a pipeline run, each usable on its own:
//   load_pipeline_data   the built-in simulated data (with its planted gene sets and truth), or
//                        an expression table and a GMT file
//   fit_pipeline_model   reference preprocessing (split, gene filter, upper case, gene-set
//                        restriction, input transform fitted on the training cells) and training
//   load_fitted_model    a model file written by save_fitted_model (model + preprocessing)
//   project_cells        any cells through the stored preprocessing and the encoder
//   interpret_cells      saliency, gene-set impacts and statistics for projected cells
//   explain_cells        interpret_cells, then which units are active (only those are tested),
//                        the groups' unit activity and the group programmes (programmes.hpp)
// Seeds: one base seed; every random stage draws from its own stream derive_seed(seed, k):
// k = 1 simulation, 2 train/validation split, 3 initial weights, 4 batch order, 5 the
// Monte Carlo null, 6 the label permutations of the programmes, 7 the seeds of the further
// models of an ensemble (model k >= 2 runs with seed derive_seed(derive_seed(seed, 7), k)).
// The same seed and thread count give the same results bit for bit.

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/core/types.hpp"
#include "exsal/data/cell_batches.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/data/simulator.hpp"
#include "exsal/interpret/interpret.hpp"
#include "exsal/interpret/programmes.hpp"
#include "exsal/io/cell_groups.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/formats.hpp"
#include "exsal/io/gmt.hpp"
#include "exsal/io/mtx.hpp"
#include "exsal/io/sparse_expression.hpp"
#if EXSAL_WITH_HDF5
#include "exsal/io/h5ad.hpp"
#include "exsal/io/tenx_h5.hpp"
#endif
#include "exsal/nn/nn.hpp"
#include "exsal/pipeline/config.hpp"
#include "exsal/pipeline/options.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

// Stream numbers of derive_seed(config.seed, k) (see the top of this header).
enum class PipelineSeed : std::uint64_t {
    simulation = 1, split = 2, weights = 3, batches = 4, null = 5, programmes = 6, ensemble = 7, interpreted_cells = 8
};

inline std::uint64_t pipeline_seed(const PipelineConfig& c, PipelineSeed stream) {
    return derive_seed(c.seed, static_cast<std::uint64_t>(stream));
}

// The input of a run: dense (CSV tables, the built-in data) or sparse (h5ad, 10x files).
struct PipelineData {
    ExpressionMatrix expression; // dense input: genes x cells, raw values (counts), gene symbols upper case
    SparseExpression sparse;     // sparse input: cells x genes CSR, raw values
    bool is_sparse = false;
    GeneSetCollection gene_sets; // after the --gene-set-prefix filter
    std::string source;          // "built-in simulation" or the expression file
    std::string format;          // expression_format_name, or "built-in simulation"
    std::vector<std::string> notes; // what reading found worth saying (layout, renamed genes, ungrouped cells)
    bool simulated = false;
    SimulatedTruth truth;        // simulated data only: what was planted
    GeneSetCollection simulated_sets; // simulated data only: all planted and decoy sets
    // Data-parallel runs: the cells this process trains on, projects and interprets (its
    // exsal::even_share of all cells, in file order); a sparse input holds the values of these
    // alone (SparseExpression::held), every input the ids and groups of all cells. One process:
    // count -1, all cells.
    CellRange share{0, -1};
    double non_zeros = 0.0; // sparse input: stored values over all processes

    // f(expression) or f(sparse), whichever holds the data.
    template <class F> decltype(auto) visit(F&& f) const { return is_sparse ? f(sparse) : f(expression); }
    const std::vector<std::string>& cells() const { return is_sparse ? sparse.cells : expression.cells; }
    const std::vector<std::string>& genes() const { return is_sparse ? sparse.genes : expression.genes; }
    const std::vector<std::string>& groups() const { return is_sparse ? sparse.groups : expression.groups; }
    std::vector<std::string>& groups() { return is_sparse ? sparse.groups : expression.groups; }
    Index n_cells() const { return is_sparse ? sparse.n_cells() : expression.n_cells(); }
    Index n_genes() const { return is_sparse ? sparse.n_genes() : expression.n_genes(); }
};

// Group label of cells that the data or --cell-groups leave without one.
constexpr const char* ungrouped_label = "ungrouped";

// Simulation settings of the built-in data for a configuration.
inline SimulationOptions pipeline_simulation_options(const PipelineConfig& c) {
    SimulationOptions o;
    o.seed = pipeline_seed(c, PipelineSeed::simulation);
    o.n_cells = c.simulate_cells;
    o.n_genes = c.simulate_genes;
    return o;
}

namespace detail::pipeline_data {

inline std::string format_percent(double fraction) {
    std::ostringstream s;
    s.precision(fraction < 0.1 ? 2 : 3);
    s << 100.0 * fraction << " %";
    return s.str();
}

inline std::string format_bytes(double bytes) {
    std::ostringstream s;
    s.precision(3);
    if (bytes >= 1e9) s << bytes / 1e9 << " GB";
    else s << bytes / 1e6 << " MB";
    return s.str();
}

#if EXSAL_WITH_HDF5
inline void read_h5ad_data(const PipelineConfig& c, PipelineData& d, ReadShare share) {
    H5adReadOptions o;
    o.share = share;
    o.layer = c.layer;
    o.group_column = c.cell_groups.empty() ? c.group_column : std::string();
    o.group_column_required = c.group_column != PipelineConfig{}.group_column; // the default may be absent
    H5adData r = read_h5ad(c.expression, o);
    d.sparse = std::move(r.data);
    d.notes.push_back(r.summary.layout + " file, " + r.summary.matrix + " (" + r.summary.storage + ", " +
                      r.summary.value_type + ")");
    if (r.summary.group_column_missing)
        d.notes.push_back("obs has no column '" + c.group_column + "': no group labels (--group-column names one of: " +
                          detail::h5ad::join_names(r.summary.obs_columns) + ")");
}

inline void read_tenx_h5_data(const PipelineConfig& c, PipelineData& d, TenxReadSummary& s, ReadShare share) {
    TenxReadOptions o;
    o.share = share;
    d.sparse = read_10x_h5(c.expression, o, &s);
}
#endif

// Group labels from --cell-groups; cells it does not list (and cells the file left without a
// label) get ungrouped_label.
inline void apply_cell_groups(const PipelineConfig& c, PipelineData& d) {
    if (!c.cell_groups.empty()) {
        CellGroupsSummary s;
        d.groups() = read_cell_groups(d.cells(), c.cell_groups, {}, &s);
        d.notes.push_back(c.cell_groups + ": groups for " + std::to_string(s.cells_grouped) + " of " +
                          std::to_string(d.n_cells()) + " cells" +
                          (s.ids_not_in_data ? "; " + std::to_string(s.ids_not_in_data) + " of its ids are not cells of the data"
                                             : std::string()));
    }
    if (d.groups().empty()) return;
    const auto missing = static_cast<Index>(std::count(d.groups().begin(), d.groups().end(), std::string()));
    if (missing == 0) return;
    for (auto& g : d.groups())
        if (g.empty()) g = ungrouped_label;
    d.notes.push_back(std::to_string(missing) + " cells have no group label ('" + std::string(ungrouped_label) +
                      "' in the tables); they are in no group comparison");
}

} // namespace detail::pipeline_data

// Reads --expression in the format its content says (detect_expression_format), with
// --cell-groups applied. Throws the readers' errors. With a `share` of several, the values of
// that share of the cells only, as SparseExpression (tables too).
inline void read_pipeline_expression(const PipelineConfig& c, PipelineData& d, ReadShare share = {}) {
    namespace pd = detail::pipeline_data;
    const ExpressionFormat format = detect_expression_format(c.expression);
    d.format = expression_format_name(format);
    if (format != ExpressionFormat::h5ad && !c.layer.empty())
        throw ArgumentError("--layer", "applies to h5ad files; " + c.expression + " is a " + d.format);
    if (format == ExpressionFormat::table) {
        ExpressionReadOptions o; // duplicates are an error and values must be counts (no option offers otherwise)
        o.genes_in_rows = c.genes_in_rows;
        o.id_column = c.id_column;
        o.group_column = c.cell_groups.empty() ? c.group_column : std::string();
        if (share.all()) {
            d.expression = read_expression(c.expression, o);
        } else {
            d.sparse = read_expression_share(c.expression, o, share);
            d.is_sparse = true;
        }
    } else {
        if (c.genes_in_rows) throw ArgumentError("--genes-in-rows", "applies to CSV/TSV tables; " + c.expression + " is a " + d.format);
        d.is_sparse = true;
        TenxReadSummary s;
        TenxReadOptions mtx;
        mtx.share = share;
        if (format == ExpressionFormat::tenx_mtx) d.sparse = read_10x_mtx(c.expression, mtx, &s);
#if EXSAL_WITH_HDF5
        else if (format == ExpressionFormat::h5ad) pd::read_h5ad_data(c, d, share);
        else pd::read_tenx_h5_data(c, d, s, share);
#endif
        if (format != ExpressionFormat::h5ad) {
            if (s.features_dropped > 0)
                d.notes.push_back(std::to_string(s.features_dropped) + " of " + std::to_string(s.features_in_file) +
                                  " features are not gene expression and were left out");
            if (s.genes_renamed > 0)
                d.notes.push_back(std::to_string(s.genes_renamed) + " genes share a symbol with another and were renamed "
                                  "SYMBOL-1, SYMBOL-2, ... (as scanpy does)");
        }
    }
    pd::apply_cell_groups(c, d);
}

// The note on a sparse input's size (with several processes: process 0's share, which the
// caller has summed the stored values of all processes into d.non_zeros for).
inline void note_sparse_size(PipelineData& d, int processes) {
    if (!d.is_sparse) return;
    const double cells = static_cast<double>(d.sparse.n_cells()), genes = static_cast<double>(d.sparse.n_genes());
    std::string note = std::to_string(d.sparse.n_cells()) + " cells x " + std::to_string(d.sparse.n_genes()) + " genes, " +
                       detail::pipeline_data::format_percent(d.non_zeros / std::max(1.0, cells * genes)) + " non-zero, kept sparse";
    if (processes > 1)
        note += "; each of the " + std::to_string(processes) + " processes holds the values of its share of the cells (process 0: " +
                std::to_string(d.sparse.held_cells().count) + " cells, " + detail::pipeline_data::format_bytes(d.sparse.csr_bytes()) + ")";
    else
        note += " (" + detail::pipeline_data::format_bytes(d.sparse.csr_bytes()) + ")";
    d.notes.push_back(note);
}

namespace detail::pipeline_data {

inline void read_or_simulate(const PipelineConfig& c, PipelineData& d, ReadShare share) {
    GmtReadOptions gmt;
    gmt.name_prefix = c.gene_set_prefix;
    if (c.builtin_data()) {
        SimulatedData sim = simulate_haematopoiesis(pipeline_simulation_options(c));
        d.expression = std::move(sim.expression);
        d.truth = std::move(sim.truth);
        d.simulated = true;
        d.source = "built-in simulation";
        d.simulated_sets = std::move(sim.gene_sets);
        if (c.gene_sets.empty()) {
            for (const auto& s : d.simulated_sets)
                if (s.name.compare(0, c.gene_set_prefix.size(), c.gene_set_prefix) == 0) d.gene_sets.push_back(s);
            if (d.gene_sets.empty())
                throw ArgumentError("--gene-set-prefix", "no simulated gene set starts with '" + c.gene_set_prefix + "'");
        }
    } else {
        try {
            read_pipeline_expression(c, d, share);
        } catch (const Error& e) { // hints named by the options
            rethrow_for_command_line(e, c, c.expression);
        }
        d.source = c.expression;
    }
    if (!c.gene_sets.empty()) d.gene_sets = read_gmt(c.gene_sets, gmt);
}

} // namespace detail::pipeline_data

// Reads or simulates the data. The gene sets come from --gene-sets when given, else (built-in
// data) from the simulation. Throws what the reader, GMT reader or simulator throw.
//
// Data-parallel (`processes`): each process reads the values of its share of the cells only
// (exsal::even_share in file order: PipelineData::share) and the ids and groups of all cells; the
// built-in data are simulated whole by every process. Collective: an error on one process throws
// on all (the failing one its own error).
inline PipelineData load_pipeline_data(const PipelineConfig& c, ProcessGroup* processes = nullptr) {
    PipelineData d;
    const ReadShare share = processes ? ReadShare{processes->rank(), processes->size()} : ReadShare{};
    on_every_process(processes, "reading the data", [&] { detail::pipeline_data::read_or_simulate(c, d, share); });
    if (d.is_sparse) {
        d.non_zeros = static_cast<double>(d.sparse.nnz());
        if (processes) processes->sum(&d.non_zeros, 1);
    }
    if (processes) {
        double cells[2] = {static_cast<double>(d.n_cells()), -static_cast<double>(d.n_cells())};
        processes->max(cells, 2); // every process must have read the same cells
        if (cells[0] != -cells[1])
            throw Error("reading the data: the processes read different numbers of cells (" +
                        std::to_string(static_cast<std::int64_t>(-cells[1])) + " to " +
                        std::to_string(static_cast<std::int64_t>(cells[0])) + "); did the file change while it was read?");
        d.share = even_share(d.n_cells(), processes->rank(), processes->size());
    }
    note_sparse_size(d, processes ? processes->size() : 1);
    return d;
}

// Checks what needs the data: --compare labels exist. Throws ArgumentError("--compare", ...).
inline void check_pipeline_data(const PipelineConfig& c, const PipelineData& d) {
    for (const auto& [a, b] : c.interpret.compare_pairs)
        for (const std::string* g : {&a, &b}) {
            if (*g == ungrouped_label && std::find(d.groups().begin(), d.groups().end(), *g) != d.groups().end())
                throw ArgumentError("--compare", a + ":" + b + ": '" + *g + "' are the cells without a group label; they are in no comparison");
            if (std::find(d.groups().begin(), d.groups().end(), *g) == d.groups().end()) {
                const GroupLabels labels = group_labels(d.groups());
                std::string known;
                for (std::size_t i = 0; i < labels.names.size() && i < 12; ++i) known += (i ? ", " : "") + labels.names[i];
                throw ArgumentError("--compare", a + ":" + b + ": no cell has the group label '" + *g + "'" +
                                                     (known.empty() ? std::string(" (the cells have no group labels)")
                                                                    : " (groups: " + known + ")"));
            }
        }
}

// What a stage is about to allocate, for check_memory.
struct MemoryNeed {
    std::string what;   // "orthogonality penalty (U x U)"
    std::string option; // the option that sets its size
    double bytes = 0.0;
};

// Memory the system can still give (MemAvailable of /proc/meminfo, bytes); NaN where unknown.
inline double available_memory_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    double kib = 0.0;
    std::string unit;
    while (in >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024.0;
    return std::numeric_limits<double>::quiet_NaN();
}

// Throws ArgumentError naming the option behind the largest need when `stage` needs more memory
// than is available, instead of letting std::bad_alloc (or the kernel's OOM killer) end the run
// part-way. The needs are lower bounds of what the stage allocates, so a run that fits is never
// refused.
inline void check_memory(const PipelineConfig& c, const std::string& stage, const std::vector<MemoryNeed>& needs) {
    const double available = available_memory_bytes();
    double total = 0.0;
    const MemoryNeed* largest = nullptr;
    for (const MemoryNeed& n : needs) {
        total += n.bytes;
        if (!largest || n.bytes > largest->bytes) largest = &n;
    }
    if (!largest || !(total > available)) return;
    const auto gb = [](double b) {
        std::ostringstream s;
        s.precision(3);
        s << b / 1e9 << " GB";
        return s.str();
    };
    std::string parts;
    for (const MemoryNeed& n : needs)
        if (n.bytes >= 0.01 * total) parts += (parts.empty() ? "" : "; ") + n.what + " " + gb(n.bytes);
    const PipelineOption* o = find_option(largest->option);
    const std::optional<JsonValue> value = o && o->record ? o->record(c) : std::nullopt;
    throw ArgumentError(largest->option, (value ? value->dump(0) + ": " : std::string()) + stage + " needs at least " +
                                             gb(total) + " of memory (" + parts + ") and " + gb(available) +
                                             " are available; lower " + largest->option);
}

// Refuses a target value the loss cannot hold in single precision (largest_safe_target), naming
// the cell and gene, before training turns it into an infinite loss.
// The cells `train` and `validation` are those of this process.
template <class Expression>
void check_targets_fit_loss(const PipelineConfig& c, const Expression& data, const PreparedCells& prepared,
                            const std::vector<Index>& train, const std::vector<Index>& validation,
                            const std::string& source) {
    const Index G = static_cast<Index>(prepared.rows.size());
    const double limit = largest_safe_target(c.train.loss.loss, G);
    const CellGather<Expression> cells(data, prepared.rows);
    for (const std::vector<Index>* columns : {&train, &validation})
        Preprocessor::for_each_block(cells, *columns, [&](Eigen::Ref<MatrixF> block, Index first) {
            // The cells checked on all threads; a block with a value above the limit (or a NaN)
            // is searched again for the message, as before, on one thread.
            int over = 0;
#pragma omp parallel for schedule(static) reduction(+ : over) if (block.size() >= (Index(1) << 15))
            for (Index j = 0; j < block.cols(); ++j)
                over += !(static_cast<double>(block.col(j).maxCoeff<Eigen::PropagateNaN>()) <= limit);
            if (over == 0) return;
            Index gene = 0, cell = 0;
            const float largest = block.maxCoeff(&gene, &cell);
            if (static_cast<double>(largest) <= limit) return;
            std::ostringstream msg;
            msg << "cell " << data.cells[static_cast<std::size_t>((*columns)[static_cast<std::size_t>(first + cell)])]
                << ", gene " << prepared.genes[static_cast<std::size_t>(gene)] << ": the value " << largest
                << " is too large for the " << to_string(c.train.loss.loss) << " loss in single precision with " << G
                << " genes (at most " << limit << "); expression values are expected to be counts or comparable to them";
            throw FileError(source, msg.str());
        });
}

// A trained model and the preprocessing its input needs.
struct FittedModel {
    Autoencoder<float> model;
    Preprocessor preprocessor;
};

struct TrainedModel {
    FittedModel fitted;
    PreprocessReport report; // what each preprocessing step did
    TrainHistory history;    // per-epoch losses
    int max_epochs = 0;
    bool early_stopping = true; // false: fewer validation cells than --min-validation-cells
};

// The configuration of model k (1-based) of an ensemble: model 1 is the run's own; the others
// differ only in their seed, derive_seed(derive_seed(seed, 7), k), so every random step differs.
inline PipelineConfig ensemble_member_config(const PipelineConfig& c, Index k) {
    PipelineConfig m = c;
    if (k > 1) m.seed = derive_seed(pipeline_seed(c, PipelineSeed::ensemble), static_cast<std::uint64_t>(k));
    return m;
}

// The autoencoder configuration of a run: G -> hidden -> units -> hidden -> G.
inline AutoencoderConfig pipeline_architecture(const PipelineConfig& c, Index n_genes) {
    AutoencoderConfig a;
    a.n_genes = n_genes;
    a.hidden = {c.hidden, c.units, c.hidden};
    a.representation = 1;
    return a;
}

inline TrainOptions pipeline_train_options(const PipelineConfig& c) {
    TrainOptions o = c.train;
    o.max_epochs = c.max_epochs();
    o.seed = pipeline_seed(c, PipelineSeed::batches);
    return o;
}

// Preprocesses `data` with the reference steps and trains the autoencoder on it. on_epoch (may
// be empty) sees every epoch.
//
// With `processes` (data-parallel training, each process holding the cells `share` of the data:
// PipelineData::share): every process prepares the cells alike (the gene filter's maxima and the
// transform's statistics combined over the processes), trains on the training and validation
// cells within its share and ends with the same model (see exsal::train).
template <class Expression>
TrainedModel fit_pipeline_model(const PipelineConfig& c, const Expression& data, const GeneSetCollection& sets,
                                const std::function<void(const EpochInfo&)>& on_epoch = {},
                                const std::function<void(const BatchInfo&)>& on_batch = {},
                                ProcessGroup* processes = nullptr, CellRange share = {0, -1}) {
    PreprocessOptions po = c.preprocess;
    po.seed = pipeline_seed(c, PipelineSeed::split);
    po.gene_sets_label = c.gene_sets.empty() ? std::string("built-in simulated gene sets") : c.gene_sets;
    if (processes && share.count < 0) share = even_share(data.n_cells(), processes->rank(), processes->size());
    if (!processes) share = {0, -1};
    PreparedCells prepared;
    std::vector<Index> my_train, my_validation; // this process's cells of each
    const std::string source = c.builtin_data() ? std::string("built-in data") : c.expression;
    on_every_process(processes, "preparing the cells", [&] {
        try {
            prepared = detail::prep::prepare_cells(data, &sets, po, processes, share);
        } catch (const Error& e) {
            rethrow_for_command_line(e, c, source);
        }
        my_train = columns_in(prepared.split.train, share);
        my_validation = columns_in(prepared.split.validation, share);
        check_targets_fit_loss(c, data, prepared, my_train, my_validation, source);
    });
    const Index n_genes = static_cast<Index>(prepared.rows.size());
    {
        const double G = static_cast<double>(n_genes), H = static_cast<double>(c.hidden),
                     U = static_cast<double>(c.units), B = static_cast<double>(c.train.batch_size);
        const double parameters = 2.0 * (G * H + H * U) + 2.0 * H + U + G;
        check_memory(c, "training",
                     {{"orthogonality penalty (units x units, twice)", "--units", 2.0 * 4.0 * U * U},
                      {"model, gradient and optimiser state", G * H > H * U ? "--hidden" : "--units", 4.0 * 4.0 * parameters},
                      {"batch activations", "--batch", 2.0 * 4.0 * B * (3.0 * G + 2.0 * H + U)}});
    }
    TrainedModel t{FittedModel{Autoencoder<float>(pipeline_architecture(c, n_genes)), std::move(prepared.preprocessor)},
                   prepared.report, TrainHistory{}, c.max_epochs()};
    Autoencoder<float>& model = t.fitted.model;
    model.initialize(pipeline_seed(c, PipelineSeed::weights));
    TrainOptions o = pipeline_train_options(c);
    o.on_epoch = on_epoch;
    o.on_batch = on_batch;
    // A validation loss over a dozen cells is too noisy to choose an epoch by (on 271 HSMM cells
    // it stopped at epoch 100 and kept epoch 50, far from orthogonal): below the minimum the
    // validation loss is only recorded and training runs every epoch.
    t.early_stopping = static_cast<Index>(prepared.split.validation.size()) >= c.min_validation_cells;
    o.early_stopping = t.early_stopping;
    // Batches are gathered from the data as they are needed: no genes x cells copy of the
    // training cells (the data may be sparse).
    const GatheredCells<Expression> train_cells(data, prepared.rows, std::move(my_train), t.fitted.preprocessor);
    const GatheredCells<Expression> validation_cells(data, prepared.rows, std::move(my_validation), t.fitted.preprocessor);
    t.history = processes ? train<float>(model, train_cells, &validation_cells, o, *processes)
                          : train<float>(model, train_cells, &validation_cells, o);
    return t;
}

// Writes the model with its preprocessing (Preprocessor::serialize in the model file's slot).
inline void save_fitted_model(const std::string& path, const FittedModel& f) {
    save_model(path, f.model, f.preprocessor.serialize());
}

// Reads a model file written by save_fitted_model. Throws FileError when the file holds no
// preprocessing state or its gene count differs from the model's.
inline FittedModel load_fitted_model(const std::string& path) {
    LoadedModel<float> loaded = load_model<float>(path);
    if (loaded.preprocessing.empty())
        throw FileError(path, "the model file holds no preprocessing state (it was not written by the pipeline)");
    Preprocessor p = Preprocessor::deserialize(loaded.preprocessing, path);
    if (p.n_genes() != loaded.model.n_genes())
        throw FileError(path, "the preprocessing state lists " + std::to_string(p.n_genes()) + " genes, the model has " +
                                  std::to_string(loaded.model.n_genes()));
    return FittedModel{std::move(loaded.model), std::move(p)};
}

// The network input of chosen cells of the data (model genes x cells), gathered (absent genes
// are 0) and put through the stored input transform block by block, on demand: what projection
// and interpretation read instead of a dense copy of the cells. Refers to the cells and the
// preprocessor: valid while both live.
template <class Expression>
class TransformedCells final : public CellBlockSource<float> {
public:
    TransformedCells(const Preprocessor& pre, const Expression& cells, std::vector<Index> source_rows, std::vector<Index> columns)
        : m_pre(&pre), m_ids(&cells.cells), m_gather(cells, std::move(source_rows)), m_columns(std::move(columns)) {}
    Index genes() const override { return m_pre->n_genes(); }
    Index cells() const override { return static_cast<Index>(m_columns.size()); }
    ConstMatrixRef<float> block(Index first, Index n, MatrixF& scratch) const override {
        if (scratch.rows() != genes() || scratch.cols() < n) scratch.resize(genes(), n);
        auto out = scratch.leftCols(n);
        const Index* columns = m_columns.data() + first;
        m_gather.gather(columns, n, out);
        detail::prep::check_block_transformable(out, columns, *m_ids, m_pre->genes(), m_pre->input_transform(),
                                                "Preprocessor::transform");
#pragma omp parallel for schedule(static) if (out.size() >= (Index(1) << 15))
        for (Index j = 0; j < n; ++j) m_pre->transform_column(out.col(j).data(), out.col(j).data());
        return out;
    }

private:
    const Preprocessor* m_pre;
    const std::vector<std::string>* m_ids;
    CellGather<Expression> m_gather;
    std::vector<Index> m_columns;
};

// Cells through the stored preprocessing and the encoder.
struct Projection {
    MatrixF representation;                 // units x cells, all cells
    std::vector<Index> interpreted;         // the cells interpreted (ascending columns of the data)
    // The network input of the interpreted cells, gathered from the projected cells block by block
    // when read (valid while those cells and the fitted model live).
    std::shared_ptr<const CellBlockSource<float>> input;
    // Positions in `interpreted` of the cells this process interprets (data-parallel runs: those
    // within its share of the cells; one process: all).
    CellRange share;
    Index genes_missing = 0;                // model genes absent from the cells (zero-filled)
    Index genes_extra = 0;                  // genes of the cells the model does not use
    std::vector<std::string> missing_genes; // their symbols

    bool all_interpreted() const noexcept { return static_cast<Index>(interpreted.size()) == representation.cols(); }
    // The representation of the interpreted cells.
    MatrixF interpreted_representation() const {
        if (all_interpreted()) return representation;
        MatrixF r(representation.rows(), static_cast<Index>(interpreted.size()));
        for (std::size_t j = 0; j < interpreted.size(); ++j) r.col(static_cast<Index>(j)) = representation.col(interpreted[j]);
        return r;
    }
};

// At most `n` of the cells (all for n = 0 or n >= cells), ascending: a seeded sample that keeps
// every group, drawn per group in proportion to its size (largest remainders), at least
// min(group size, 50) cells of each group so that small groups can still be compared. Cells
// without groups: a plain random sample. The total can exceed n by the groups' minimums.
inline std::vector<Index> interpretation_sample(Index cells, const std::vector<std::string>& groups, Index n,
                                                std::uint64_t seed) {
    std::vector<Index> all(static_cast<std::size_t>(cells));
    std::iota(all.begin(), all.end(), Index(0));
    if (n <= 0 || n >= cells) return all;
    const GroupLabels labels =
        group_labels(groups.empty() ? std::vector<std::string>(static_cast<std::size_t>(cells), "all") : groups);
    const std::size_t K = labels.names.size();
    std::vector<std::vector<Index>> members(K);
    for (Index c = 0; c < cells; ++c) members[static_cast<std::size_t>(labels.of_cell[static_cast<std::size_t>(c)])].push_back(c);
    // Proportional shares by largest remainders, then the per-group minimum.
    std::vector<Index> take(K);
    std::vector<std::pair<double, std::size_t>> remainder(K);
    Index given = 0;
    for (std::size_t k = 0; k < K; ++k) {
        const double share = static_cast<double>(n) * static_cast<double>(members[k].size()) / static_cast<double>(cells);
        take[k] = static_cast<Index>(std::floor(share));
        remainder[k] = {-(share - std::floor(share)), k};
        given += take[k];
    }
    std::sort(remainder.begin(), remainder.end());
    for (std::size_t i = 0; given < n && i < K; ++i, ++given) ++take[remainder[i].second];
    const Index floor_cells = K > 1 ? 50 : 0;
    std::vector<Index> out;
    Rng rng(seed);
    for (std::size_t k = 0; k < K; ++k) {
        const Index size = static_cast<Index>(members[k].size());
        const Index t = std::min(size, std::max(take[k], std::min(size, floor_cells)));
        rng.shuffle(members[k]);
        out.insert(out.end(), members[k].begin(), members[k].begin() + t);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Aligns `cells` to the model's genes (by upper-cased symbol; absent genes are 0), applies the
// stored input transform and encodes, block by block so that only the representation of all cells
// is kept; the network input of the cells `interpreted` (ascending; all when empty) is read from
// `cells` when interpretation asks for it, so `cells` must outlive the projection.
// The training cells projected this way give exactly the representation the training run reports.
//
// Data-parallel (the cells `share` of this process, PipelineData::share): only those cells are
// encoded, the other columns of the representation are 0 until share_representation adds the
// processes' columns up; Projection::share says which interpreted cells are this process's.
template <class Expression>
Projection project_cells(const FittedModel& f, const Expression& cells, std::vector<Index> interpreted = {},
                         CellRange share = {0, -1}) {
    Preprocessor::GeneMatch match = f.preprocessor.match(cells);
    const Index C = cells.n_cells();
    if (share.count < 0) share = {0, C};
    std::vector<Index> mine(static_cast<std::size_t>(share.count));
    std::iota(mine.begin(), mine.end(), static_cast<Index>(share.first));
    if (interpreted.empty()) {
        interpreted.resize(static_cast<std::size_t>(C));
        std::iota(interpreted.begin(), interpreted.end(), Index(0));
    }
    Projection p;
    p.representation = MatrixF::Zero(f.model.units(), C);
    {
        const TransformedCells<Expression> every(f.preprocessor, cells, match.source, std::move(mine));
        constexpr Index block_cells = 4096;
        MatrixF scratch;
        for (Index c0 = 0; c0 < share.count; c0 += block_cells) {
            const Index n = std::min<Index>(block_cells, static_cast<Index>(share.count) - c0);
            p.representation.middleCols(static_cast<Index>(share.first) + c0, n) = f.model.encode(every.block(c0, n, scratch));
        }
    }
    p.share = positions_in(interpreted, share);
    p.input = std::make_shared<TransformedCells<Expression>>(f.preprocessor, cells, std::move(match.source), interpreted);
    p.interpreted = std::move(interpreted);
    p.genes_missing = match.genes_missing;
    p.genes_extra = match.genes_extra;
    p.missing_genes = std::move(match.missing_genes);
    return p;
}

// The representation of every process's cells on every process (a sum: each column is non-zero
// on one process only, so the values are exact). Collective; nothing without processes.
inline void share_representation(Projection& p, ProcessGroup* processes) {
    if (processes && p.representation.size() > 0) processes->sum(p.representation.data(), p.representation.size());
}

// Cells per saliency block: the configured count, fewer for wide models, so that a thread's block
// of saliency (genes x units x cells floats) stays within 32 MiB (20,000 cells x 4,400 genes x 64
// units: 29 cells, 36 MB per thread instead of 72); at least 8.
inline Index saliency_block_cells(const Autoencoder<float>& model, Index configured) {
    const Index per_cell = std::max<Index>(1, Index(4) * model.n_genes() * model.units());
    return std::min(configured, std::max<Index>(8, (Index(32) << 20) / per_cell));
}

inline InterpretOptions pipeline_interpret_options(const PipelineConfig& c) {
    InterpretOptions o = c.interpret;
    o.seed = pipeline_seed(c, PipelineSeed::null);
    return o;
}

// The group labels of the interpreted cells as the analyses take them (none when the cells have
// none): cells without a group (ungrouped_label) get "", which puts them in no comparison and in
// no group's rest.
inline std::vector<std::string> interpreted_groups(const Projection& p, const std::vector<std::string>& groups) {
    if (groups.empty()) return groups;
    std::vector<std::string> g;
    g.reserve(p.interpreted.size());
    for (Index c : p.interpreted) {
        const std::string& label = groups[static_cast<std::size_t>(c)];
        g.push_back(label == ungrouped_label ? std::string() : label);
    }
    return g;
}

// Interprets the projected cells chosen for it (p.interpreted) with their group labels (`groups`:
// one per projected cell, or none).
// With `processes`, each process interprets the interpreted cells of its share (p.share) and every
// process gets the interpretation of all of them.
inline Interpretation interpret_cells(const PipelineConfig& c, const FittedModel& f, const Projection& p,
                                      const std::vector<std::string>& groups, const GeneSetCollection& sets,
                                      const std::function<void(Index, Index)>& on_progress = {},
                                      ProcessGroup* processes = nullptr) {
    InterpretOptions o = pipeline_interpret_options(c);
    o.on_progress = on_progress;
    o.block_cells = saliency_block_cells(f.model, o.block_cells);
    o.processes = processes;
    const CellRange share = processes ? p.share : CellRange{0, p.input->cells()};
    const CellRangeBlocks<float> input(*p.input, share.first, share.count);
    if (f.preprocessor.centre().size() > 0) // expression bins from the uncentred input
        o.expression_level = detail::input_mean(input, processes) + f.preprocessor.centre().cast<double>();
    std::vector<std::string> labels = interpreted_groups(p, groups);
    if (!labels.empty())
        labels = std::vector<std::string>(labels.begin() + share.first, labels.begin() + share.first + share.count);
    return interpret<float>(f.model, input, f.preprocessor.genes(), labels, sets, o);
}

// What the interpretation says about one model's cells.
struct Explanation {
    Interpretation interpretation; // inactive units carry no z, p or q
    UnitActivity activity;         // per unit: activation statistics, active or not
    std::vector<UnitGroupStats> group_stats; // effect sizes NaN for inactive units
    ProgrammeAnalysis programmes;  // gene sets that tell each group (and pair) apart
};

// Each group against the rest, then each --compare pair (group "A_vs_B").
inline std::vector<UnitGroupStats> compare_groups(const PipelineConfig& c, const MatrixF& representation,
                                                  const std::vector<std::string>& groups);

inline void explain_units(const PipelineConfig& c, const FittedModel& f, const MatrixF& representation,
                          const std::vector<std::string>& cell_groups, Explanation& e);

inline ProgrammeOptions pipeline_programme_options(const PipelineConfig& c) {
    ProgrammeOptions o = c.programmes;
    o.seed = pipeline_seed(c, PipelineSeed::programmes);
    o.compare_pairs = c.interpret.compare_pairs; // one --compare for both analyses
    return o;
}

// interpret_cells, then the unit activity (inactive units leave the tests and get no effect
// sizes) and the group programmes. on_progress sees the cells of each of the two gradient passes.
//
// With `processes` (every process with the representation of all cells, share_representation),
// each process takes the interpreted cells of its share (p.share) through both gradient passes,
// and every process gets the explanation of all of them (programme cell scores included).
inline Explanation explain_cells(const PipelineConfig& c, const FittedModel& f, const Projection& p,
                                 const std::vector<std::string>& groups, const GeneSetCollection& sets,
                                 const std::function<void(Index, Index)>& on_progress = {},
                                 ProcessGroup* processes = nullptr) {
    on_every_process(processes, "checking memory", [&] {
        const double G = static_cast<double>(f.model.n_genes()), U = static_cast<double>(f.model.units()),
                     C = static_cast<double>(p.input->cells()), T = static_cast<double>(std::max(1, threads()));
        double H = 0.0;
        const AutoencoderConfig& a = f.model.config(); // widest layer before the representation
        for (Index l = 0; l < a.representation; ++l) H = std::max(H, static_cast<double>(a.hidden[static_cast<std::size_t>(l)]));
        const double block = std::min(C, static_cast<double>(saliency_block_cells(f.model, c.interpret.block_cells)));
        const double labellings = static_cast<double>(c.programmes.permutations + 1);
        const double comparisons =
            static_cast<double>(group_labels(interpreted_groups(p, groups)).names.size() + c.interpret.compare_pairs.size());
        check_memory(c, "interpretation",
                     {{"saliency blocks (threads x genes x units x 64 cells)", "--units", T * 4.0 * (G + 2.0 * H) * U * block},
                      {"programme labellings (comparisons x cells x permutations bits)", "--label-permutations",
                       comparisons * C * labellings / 8.0 + T * 4.0 * U * block * labellings}});
    });
    Explanation e;
    e.interpretation = interpret_cells(c, f, p, groups, sets, on_progress, processes);
    const MatrixF representation = p.interpreted_representation();
    const std::vector<std::string> cell_groups = interpreted_groups(p, groups);
    on_every_process(processes, "comparing the groups", [&] { explain_units(c, f, representation, cell_groups, e); });
    ProgrammeOptions o = pipeline_programme_options(c);
    o.on_progress = on_progress;
    o.block_cells = saliency_block_cells(f.model, o.block_cells);
    const UsableGeneSets usable = usable_gene_sets(sets, f.preprocessor.genes(), c.interpret.min_genes);
    if (!processes) {
        e.programmes = group_programmes<float>(f.model, *p.input, representation, usable.rows, cell_groups, e.activity, o);
        return e;
    }
    const CellRange share = p.share;
    o.processes = processes;
    o.first_cell = share.first;
    e.programmes = group_programmes<float>(f.model, CellRangeBlocks<float>(*p.input, share.first, share.count),
                                           representation, usable.rows, cell_groups, e.activity, o);
    // The cell scores of every process's cells, on every process (the others' rows are 0 here).
    MatrixF scores = MatrixF::Zero(p.input->cells(), e.programmes.cell_scores.cols());
    if (scores.size() > 0) {
        scores.middleRows(share.first, share.count) = e.programmes.cell_scores;
        processes->sum(scores.data(), scores.size());
    }
    e.programmes.cell_scores = std::move(scores);
    return e;
}

// The units' activity, the tests restricted to the active units and the groups' effect sizes.
inline void explain_units(const PipelineConfig& c, const FittedModel& f, const MatrixF& representation,
                          const std::vector<std::string>& cell_groups, Explanation& e) {
    e.activity = unit_activity(representation, c.activity_floor);
    if (e.activity.n_active() == 0) {
        std::ostringstream msg; // nothing to explain: every unit is constant over the cells
        msg << "no representation unit varies over the cells (all " << f.model.units() << " are constant)";
        if (c.projecting()) msg << "; the model " << c.model_in << " does not separate these cells";
        else msg << ": training diverged into dead units; try a lower learning rate than " << c.train.learning_rate();
        throw NumericError(msg.str());
    }
    restrict_tests_to_units(e.interpretation, e.activity.active);
    e.group_stats = compare_groups(c, representation, cell_groups);
    for (auto& s : e.group_stats)
        if (!e.activity.active[static_cast<std::size_t>(s.unit)]) s.effect_size = std::numeric_limits<double>::quiet_NaN();
}

// Each group against the rest, then each --compare pair (group "A_vs_B").
inline std::vector<UnitGroupStats> compare_groups(const PipelineConfig& c, const MatrixF& representation,
                                                  const std::vector<std::string>& groups) {
    if (groups.empty()) return {};
    std::vector<UnitGroupStats> stats = compare_unit_activity(representation, groups);
    for (const auto& [a, b] : c.interpret.compare_pairs) {
        std::vector<UnitGroupStats> pair = compare_unit_activity(representation, groups, a, b);
        stats.insert(stats.end(), pair.begin(), pair.end());
    }
    return stats;
}

} // namespace exsal

#endif // EXSAL_PIPELINE_STAGES_HPP
