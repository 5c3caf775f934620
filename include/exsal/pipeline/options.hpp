#ifndef EXSAL_PIPELINE_OPTIONS_HPP
#define EXSAL_PIPELINE_OPTIONS_HPP

// The pipeline's options, each declared once: its name, the member of PipelineConfig it sets,
// its help and default as users read them, how its text is parsed and checked, which library
// setting it is (so library errors can be shown under the option's name) and how run.json records
// it. Everything else is made from this table: the program's command line (CLI11 is only in the
// program), validate_config(), run.json's "parameters" (parameters_json) and the README's option
// table (options_markdown; a test keeps the README equal to it).
//
// Checks throw ArgumentError(option name, message); the message says what is expected and what
// was given.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/pipeline/config.hpp"
#include "exsal/report/format.hpp"
#include "exsal/report/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

enum class OptionKind {
    flag,  // present or not
    value, // one value
    list,  // repeatable, one value each time
};

struct PipelineOption {
    std::string name;          // "--lr"
    std::string value_name;    // "X", "N", "FILE", "poisson|mse" ("" for flags)
    std::string group;         // section of --help
    std::string help;          // one sentence, for --help and the README
    std::string default_text;  // as users read it: "0.001", "built-in data", "off"
    OptionKind kind = OptionKind::value;
    std::vector<std::string> choices; // the accepted values, if only these
    bool training = false;     // sets the model, preprocessing or training: refused with --model-in
    Setting setting = Setting::none; // the library setting it is, for messages about that setting
    std::function<void(PipelineConfig&, const std::string&)> parse;  // text -> member; throws ArgumentError
    std::function<void(const PipelineConfig&)> check;                // throws ArgumentError
    std::string key;           // run.json "parameters" member ("" = not recorded)
    std::function<std::optional<JsonValue>(const PipelineConfig&)> record; // nullopt = left out
};

namespace detail::options {

inline std::string format_real(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return detail::format_shortest(v);
}

// Whole-text integer; `allow_sign` false refuses "-1" and "+1" (for unsigned values).
template <typename T>
T parse_integer(const std::string& option, const std::string& text, bool allow_sign = true) {
    T v{};
    const char* end = text.data() + text.size();
    const bool signed_text = !text.empty() && (text[0] == '-' || text[0] == '+');
    const char* begin = text.data() + (!text.empty() && text[0] == '+' ? 1 : 0);
    const auto [ptr, ec] = std::from_chars(begin, end, v);
    if (text.empty() || ptr != end || (signed_text && !allow_sign) || ec == std::errc::invalid_argument)
        throw ArgumentError(option, std::string(allow_sign ? "expects an integer" : "must be a non-negative integer") +
                                        ", got '" + text + "'");
    if (ec == std::errc::result_out_of_range) throw ArgumentError(option, "'" + text + "' is out of range");
    return v;
}

inline double parse_real(const std::string& option, const std::string& text) {
    double v = 0.0;
    const char* end = text.data() + text.size();
    const char* begin = text.data() + (!text.empty() && text[0] == '+' ? 1 : 0);
    const auto [ptr, ec] = std::from_chars(begin, end, v);
    if (text.empty() || ptr != end || ec == std::errc::invalid_argument)
        throw ArgumentError(option, "expects a number, got '" + text + "'");
    if (ec == std::errc::result_out_of_range) throw ArgumentError(option, "'" + text + "' is out of range");
    return v;
}

inline void positive(const std::string& option, long long v) {
    if (v < 1) throw ArgumentError(option, "must be a positive count, got " + std::to_string(v));
}
inline void non_negative(const std::string& option, long long v) {
    if (v < 0) throw ArgumentError(option, "must be >= 0, got " + std::to_string(v));
}

// Throws ArgumentError naming the option when a given input file does not exist or is a folder
// (unless `folder_ok`: a 10x MTX folder).
inline void check_input_file(const std::string& option, const std::string& path, bool folder_ok = false) {
    if (path.empty()) return;
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(st)) throw ArgumentError(option, "'" + path + "' does not exist");
    if (!std::filesystem::is_directory(st)) return;
    if (!folder_ok) throw ArgumentError(option, "'" + path + "' is a folder, not a file");
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) { // a 10x MTX folder has a matrix.mtx[.gz]
        const std::string name = e.path().filename().string();
        for (const char* m : {"matrix.mtx", "matrix.mtx.gz"})
            if (name.size() >= std::strlen(m) && name.compare(name.size() - std::strlen(m), std::string::npos, m) == 0) return;
    }
    throw ArgumentError(option, "'" + path + "' is a folder, not a file, and not a 10x MTX folder (no matrix.mtx[.gz] in it)");
}

// An option with its texts; the factories below add how it is parsed, checked and recorded.
inline PipelineOption declare(std::string name, std::string value_name, std::string help, std::string default_text = "",
                              OptionKind kind = OptionKind::value) {
    PipelineOption o;
    o.name = std::move(name);
    o.value_name = std::move(value_name);
    o.help = std::move(help);
    o.default_text = std::move(default_text);
    o.kind = kind;
    return o;
}

// Factories. `field` is a generic lambda [](auto& c) -> auto& { return c.member; }, so one lambda
// serves both the parser (non-const) and the check and record (const).

template <typename Field>
PipelineOption text(std::string name, std::string value_name, std::string help, std::string default_text, Field field,
                    bool null_when_empty = false) {
    PipelineOption o = declare(std::move(name), std::move(value_name), std::move(help), std::move(default_text));
    o.parse = [field](PipelineConfig& c, const std::string& t) { field(c) = t; };
    o.record = [field, null_when_empty](const PipelineConfig& c) -> std::optional<JsonValue> {
        const std::string& v = field(c);
        return null_when_empty && v.empty() ? JsonValue() : JsonValue(v);
    };
    return o;
}

template <typename Field>
PipelineOption flag(std::string name, std::string help, Field field) {
    PipelineOption o = declare(std::move(name), "", std::move(help), "off", OptionKind::flag);
    o.parse = [field](PipelineConfig& c, const std::string&) { field(c) = true; };
    o.record = [field](const PipelineConfig& c) -> std::optional<JsonValue> { return JsonValue(field(c)); };
    return o;
}

// An integer with `check(option, value)` (default: a positive count).
template <typename Field>
PipelineOption count(std::string name, std::string help, Field field,
                     std::function<void(const std::string&, long long)> check = positive) {
    PipelineOption o = declare(std::move(name), "N", std::move(help));
    o.parse = [field, n = o.name](PipelineConfig& c, const std::string& t) {
        field(c) = parse_integer<std::remove_reference_t<decltype(field(c))>>(n, t);
    };
    o.check = [field, check, n = o.name](const PipelineConfig& c) { check(n, static_cast<long long>(field(c))); };
    o.record = [field](const PipelineConfig& c) -> std::optional<JsonValue> { return JsonValue(field(c)); };
    return o;
}

// A real number; `valid(v)` says whether it is accepted, `expected` what is ("a finite number > 0").
template <typename Field>
PipelineOption real(std::string name, std::string help, Field field, std::function<bool(double)> valid,
                    std::string expected) {
    PipelineOption o = declare(std::move(name), "X", std::move(help));
    o.parse = [field, n = o.name](PipelineConfig& c, const std::string& t) { field(c) = parse_real(n, t); };
    o.check = [field, valid, expected, n = o.name](const PipelineConfig& c) {
        const double v = field(c);
        if (!valid(v)) throw ArgumentError(n, "must be " + expected + ", got " + format_real(v));
    };
    o.record = [field](const PipelineConfig& c) -> std::optional<JsonValue> { return JsonValue(field(c)); };
    return o;
}

// One of a few spellings, each standing for a value of the member's type.
template <typename Field, typename T>
PipelineOption choice(std::string name, std::string help, Field field, std::vector<std::pair<std::string, T>> values) {
    PipelineOption o = declare(std::move(name), "", std::move(help));
    for (const auto& [text, value] : values) {
        o.choices.push_back(text);
        o.value_name += (o.value_name.empty() ? "" : "|") + text;
    }
    o.parse = [field, values, n = o.name, names = o.value_name](PipelineConfig& c, const std::string& t) {
        for (const auto& [text, value] : values)
            if (text == t) {
                field(c) = value;
                return;
            }
        throw ArgumentError(n, "must be one of " + names + ", got '" + t + "'");
    };
    o.record = [field, values](const PipelineConfig& c) -> std::optional<JsonValue> {
        for (const auto& [text, value] : values)
            if (field(c) == value) return JsonValue(text);
        return JsonValue();
    };
    return o;
}

} // namespace detail::options

// "A:B" -> {A, B}; throws ArgumentError("--compare", ...) unless there is exactly one ':' with
// text on both sides.
inline std::pair<std::string, std::string> parse_compare_pair(const std::string& text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos || text.find(':', colon + 1) != std::string::npos || colon == 0 ||
        colon + 1 == text.size())
        throw ArgumentError("--compare", "expects A:B with two group labels separated by one ':', got '" + text + "'");
    return {text.substr(0, colon), text.substr(colon + 1)};
}

// Command-line spellings of the enumerations that run.json and reports use too.
inline const char* transform_option_name(InputTransform t) {
    return t == InputTransform::cpm_log1p ? "cpm-log1p" : input_transform_name(t);
}
inline const char* null_option_name(NullMethod m) { return m == NullMethod::exact ? "exact" : "monte-carlo"; }

namespace detail::options {

// Adds an option under a --help group; its run.json key is its name without "--", '-' as '_'.
inline PipelineOption& add_to(std::vector<PipelineOption>& t, PipelineOption o, const char* group) {
    o.group = group;
    if (o.key.empty() && o.record) {
        o.key = o.name.substr(2);
        for (char& ch : o.key)
            if (ch == '-') ch = '_';
    }
    t.push_back(std::move(o));
    return t.back();
}

// Recorded in run.json for the built-in data only.
inline void only_builtin(PipelineOption& o) {
    const auto record = o.record;
    o.record = [record](const PipelineConfig& c) { return c.builtin_data() ? record(c) : std::optional<JsonValue>(); };
}

// --expression .. --simulate-genes: the input and its reading.
inline void data_options(std::vector<PipelineOption>& t) {
    const auto add = [&t](PipelineOption o, const char* group) -> PipelineOption& { return add_to(t, std::move(o), group); };
    const char* data = "Data";
    add(text("--expression", "PATH",
             "expression data, recognised by content: a .csv/.tsv table (optionally .gz), an AnnData .h5ad, a 10x "
             "HDF5 (.h5) or a 10x MTX folder (or its matrix.mtx[.gz])",
             "built-in data",
             [](auto& c) -> auto& { return c.expression; }, true),
        data)
        .setting = Setting::expression_data;
    add(flag("--genes-in-rows", "the table has one row per gene (no group labels then)",
             [](auto& c) -> auto& { return c.genes_in_rows; }),
        data)
        .setting = Setting::genes_in_rows;
    add(text("--id-column", "NAME", "header of the cell id column (cells in rows)", "sample",
             [](auto& c) -> auto& { return c.id_column; }),
        data)
        .setting = Setting::id_column;
    add(text("--group-column", "NAME",
             "header of the group label column (h5ad: an obs column); \"\" or absent: no groups", "cluster",
             [](auto& c) -> auto& { return c.group_column; }),
        data)
        .setting = Setting::group_column;
    add(text("--layer", "NAME", "h5ad: read layers/NAME instead of X; raw: the raw matrix (raw/X) with its genes", "X",
             [](auto& c) -> auto& { return c.layer; }),
        data)
        .setting = Setting::layer;
    add(text("--cell-groups", "FILE",
             "CSV/TSV of cell id and group: the cells' group labels (cells it does not list are \"ungrouped\", in no comparison)", "none",
             [](auto& c) -> auto& { return c.cell_groups; }, true),
        data)
        .setting = Setting::cell_groups;
    add(text("--gene-sets", "FILE.gmt", "gene sets (required with --expression)", "built-in sets",
             [](auto& c) -> auto& { return c.gene_sets; }, true),
        data)
        .setting = Setting::gene_sets;
    add(text("--gene-set-prefix", "P", "use only sets whose name starts with P, e.g. HALLMARK_", "all sets",
             [](auto& c) -> auto& { return c.gene_set_prefix; }),
        data);
    add(count("--min-genes", "skip gene sets with fewer genes in the model",
              [](auto& c) -> auto& { return c.interpret.min_genes; }),
        data);
    {
        PipelineOption& o = add(real("--min-gene-max", "keep genes whose value exceeds X in at least one cell",
                                     [](auto& c) -> auto& { return c.preprocess.filter_threshold; },
                                     [](double v) { return std::isfinite(v); }, "a finite number"),
                                data);
        o.setting = Setting::filter_threshold;
        o.training = true;
    }
    only_builtin(add(count("--simulate-cells", "cells of the built-in data (at least 20)",
                           [](auto& c) -> auto& { return c.simulate_cells; },
                           [](const std::string& n, long long v) {
                               positive(n, v);
                               if (v < 20) throw ArgumentError(n, "needs at least 20 cells, got " + std::to_string(v));
                           }),
                     data));
    only_builtin(add(count("--simulate-genes", "genes of the built-in data",
                           [](auto& c) -> auto& { return c.simulate_genes; }),
                     data));
}

// --hidden .. --ensemble: the model, preprocessing and training (refused with --model-in).
inline void model_options(std::vector<PipelineOption>& t) {
    const auto add = [&t](PipelineOption o, const char* group) -> PipelineOption& { return add_to(t, std::move(o), group); };
    const char* model = "Model and training";
    const auto training = [&](PipelineOption o) -> PipelineOption& {
        o.training = true;
        return add(std::move(o), model);
    };
    training(count("--hidden", "width of the layers around the representation (G → N → U → N → G)",
                   [](auto& c) -> auto& { return c.hidden; }));
    training(count("--units", "representation units", [](auto& c) -> auto& { return c.units; }));
    training(choice("--loss", "reconstruction loss (Poisson: rate output, compared with the raw values)",
                    [](auto& c) -> auto& { return c.train.loss.loss; },
                    std::vector<std::pair<std::string, LossKind>>{{"poisson", LossKind::poisson}, {"mse", LossKind::mse}}));
    training(choice("--optimizer", "Adam (β 0.9/0.999), or SGD with Nesterov momentum 0.9 (the reference)",
                    [](auto& c) -> auto& { return c.train.optimizer; },
                    std::vector<std::pair<std::string, OptimizerKind>>{{"adam", OptimizerKind::adam},
                                                                        {"sgd", OptimizerKind::sgd}}));
    {
        // One learning rate for whichever optimiser runs.
        PipelineOption& o = training(real("--lr", "learning rate", [](auto& c) -> auto& { return c.train.adam.lr; },
                                          [](double v) { return v > 0.0 && std::isfinite(v); },
                                          "a positive finite number"));
        o.parse = [](PipelineConfig& c, const std::string& t) { c.train.adam.lr = c.train.sgd.lr = parse_real("--lr", t); };
        o.check = [](const PipelineConfig& c) {
            const double v = c.train.learning_rate();
            if (!(v > 0.0) || !std::isfinite(v))
                throw ArgumentError("--lr", "must be a positive finite number, got " + format_real(v));
        };
        o.record = [](const PipelineConfig& c) -> std::optional<JsonValue> { return JsonValue(c.train.learning_rate()); };
    }
    training(real("--lambda-orth",
                  "weight of the orthogonality penalty ‖I − W Wᵀ‖_F on the weights feeding the representation",
                  [](auto& c) -> auto& { return c.train.loss.lambda; },
                  [](double v) { return v >= 0.0 && std::isfinite(v); }, "a finite number >= 0"));
    {
        PipelineOption& o = training(count("--epochs", "maximum epochs (early stopping may end sooner)",
                                           [](auto& c) -> auto& { return c.epochs; }, non_negative));
        o.default_text = "150 (built-in), 500 (files)";
        const auto parse = o.parse;
        o.parse = [parse](PipelineConfig& c, const std::string& t) {
            parse(c, t);
            positive("--epochs", c.epochs); // 0 is the default's marker, not a value to give
        };
        o.record = [](const PipelineConfig& c) -> std::optional<JsonValue> { return JsonValue(c.max_epochs()); };
    }
    training(count("--batch", "cells per mini-batch", [](auto& c) -> auto& { return c.train.batch_size; }));
    training(choice("--input-transform",
                    "network input (fitted on the training cells, stored in the model); the loss target stays raw",
                    [](auto& c) -> auto& { return c.preprocess.transform; },
                    std::vector<std::pair<std::string, InputTransform>>{{"none", InputTransform::none},
                                                                         {"log1p", InputTransform::log1p},
                                                                         {"minmax", InputTransform::minmax},
                                                                         {"cpm-log1p", InputTransform::cpm_log1p}}));
    training(choice("--input-centring",
                    "subtract each gene's mean input over the training cells after the transform (stored in the model)",
                    [](auto& c) -> auto& { return c.preprocess.centre; },
                    std::vector<std::pair<std::string, bool>>{{"on", true}, {"off", false}}));
    training(real("--validation-fraction", "held-out cells for early stopping",
                  [](auto& c) -> auto& { return c.preprocess.validation_fraction; },
                  [](double v) { return v >= 0.0 && v < 0.5; }, "in [0, 0.5)"))
        .setting = Setting::validation_fraction;
    training(count("--validate-every", "epochs between validation checks",
                   [](auto& c) -> auto& { return c.train.validate_every; }));
    training(count("--patience", "checks without improvement before stopping (0: never)",
                   [](auto& c) -> auto& { return c.train.patience; }, non_negative));
    training(count("--min-validation-cells",
                   "with fewer validation cells there is no early stopping: the validation loss is recorded and "
                   "the last epoch's model kept",
                   [](auto& c) -> auto& { return c.min_validation_cells; }, non_negative));
    training(count("--ensemble", "train K models from derived seeds and report the consensus of their group programmes",
                   [](auto& c) -> auto& { return c.ensemble; },
                   [](const std::string& n, long long v) {
                       if (v < 1 || v > 100)
                           throw ArgumentError(n, "must be a count from 1 to 100, got " + std::to_string(v));
                   }))
        .value_name = "K";
}

// --saliency .. --label-permutations: the interpretation and its figures.
inline void interpretation_options(std::vector<PipelineOption>& t) {
    const auto add = [&t](PipelineOption o, const char* group) -> PipelineOption& { return add_to(t, std::move(o), group); };
    const char* interp = "Interpretation";
    add(choice("--saliency", "guided backprop (the paper) or the plain gradient",
               [](auto& c) -> auto& { return c.interpret.saliency; },
               std::vector<std::pair<std::string, SaliencyKind>>{{"guided", SaliencyKind::guided},
                                                                  {"vanilla", SaliencyKind::vanilla}}),
        interp);
    add(choice("--aggregator", "per-cell aggregate of |saliency| over a set's genes",
               [](auto& c) -> auto& { return c.interpret.aggregator; },
               std::vector<std::pair<std::string, ImpactAggregator>>{{"median", ImpactAggregator::median},
                                                                      {"mean", ImpactAggregator::mean}}),
        interp);
    add(choice("--null", "null distribution of random size-matched sets",
               [](auto& c) -> auto& { return c.interpret.null_method; },
               std::vector<std::pair<std::string, NullMethod>>{{"exact", NullMethod::exact},
                                                                {"monte-carlo", NullMethod::monte_carlo}}),
        interp);
    add(count("--permutations", "random sets per set size (monte-carlo null)",
              [](auto& c) -> auto& { return c.interpret.permutations; }),
        interp);
    add(count("--expression-bins",
              "random sets also match the set's expression profile over N bins of mean input (at most one bin "
              "per 50 genes; 1: match the size only)",
              [](auto& c) -> auto& { return c.interpret.expression_bins; }),
        interp);
    {
        PipelineOption o = declare("--compare", "A:B", "compare group A with group B (repeatable)", "none", OptionKind::list);
        o.parse = [](PipelineConfig& c, const std::string& t) { c.interpret.compare_pairs.push_back(parse_compare_pair(t)); };
        o.check = [](const PipelineConfig& c) {
            for (const auto& [a, b] : c.interpret.compare_pairs) {
                if (a.empty() || b.empty()) throw ArgumentError("--compare", "expects A:B with two group labels");
                if (a == b) throw ArgumentError("--compare", a + ":" + b + " names the same group twice");
            }
        };
        o.record = [](const PipelineConfig& c) -> std::optional<JsonValue> {
            JsonValue pairs = JsonValue::array();
            for (const auto& [a, b] : c.interpret.compare_pairs) pairs.push_back(a + ":" + b);
            return pairs;
        };
        add(std::move(o), interp);
    }
    add(count("--interpret-cells",
              "interpret a seeded sample of N cells, drawn per group in proportion to its size (each group at "
              "least 50 cells or all of it); the representation still covers every cell. 0: all cells",
              [](auto& c) -> auto& { return c.interpret_cells; }, non_negative),
        interp);
    add(count("--heatmap-sets", "at most N gene sets in the heatmaps", [](auto& c) -> auto& { return c.heatmap_sets; }),
        interp);
    {
        PipelineOption o = choice("--heatmap-values",
                                  "heatmap.svg: signed z-scores of the active units, clustered, or the reference's "
                                  "scaled impact",
                                  [](auto& c) -> auto& { return c.heatmap_values; },
                                  std::vector<std::pair<std::string, std::string>>{{"z", "z"}, {"impact", "impact"}});
        o.check = [](const PipelineConfig& c) {
            if (c.heatmap_values != "z" && c.heatmap_values != "impact")
                throw ArgumentError("--heatmap-values", "must be z or impact, got '" + c.heatmap_values + "'");
        };
        add(std::move(o), interp);
    }
    add(real("--activity-floor",
             "a unit whose activation SD is at most X times the largest unit SD is inactive (not tested)",
             [](auto& c) -> auto& { return c.activity_floor; }, [](double v) { return v >= 0.0 && v < 1.0; },
             "in [0, 1)"),
        interp);
    add(count("--label-permutations", "group-label permutations of the programme test (at least 19)",
              [](auto& c) -> auto& { return c.programmes.permutations; },
              [](const std::string& n, long long v) {
                  if (v < 19)
                      throw ArgumentError(n, "must be at least 19 (p-values reach 0.05), got " + std::to_string(v));
              }),
        interp);
}

// --out .. --model-in: where and how the run goes.
inline void run_options(std::vector<PipelineOption>& t) {
    const auto add = [&t](PipelineOption o, const char* group) -> PipelineOption& { return add_to(t, std::move(o), group); };
    const char* run = "Run";
    {
        PipelineOption& o = add(text("--out", "DIR", "output folder; refused if it exists and is not empty", "exsal-out",
                                     [](auto& c) -> auto& { return c.out; }),
                                run);
        o.setting = Setting::output_folder;
        o.check = [](const PipelineConfig& c) {
            if (c.out.empty()) throw ArgumentError("--out", "must not be empty");
        };
    }
    add(flag("--force",
             "write into an existing non-empty --out. The run's files replace files of the same names; all other "
             "files are kept",
             [](auto& c) -> auto& { return c.force; }),
        run)
        .setting = Setting::output_force;
    {
        PipelineOption o = declare(
            "--seed", "N", "seed of every random step (simulation, split, initial weights, batch order, Monte Carlo null)");
        o.parse = [](PipelineConfig& c, const std::string& t) { c.seed = parse_integer<std::uint64_t>("--seed", t, false); };
        o.record = [](const PipelineConfig& c) -> std::optional<JsonValue> { return JsonValue(c.seed); };
        add(std::move(o), run);
    }
    add(count("--threads", "threads of every parallel loop (results depend on the seed and this count only)",
              [](auto& c) -> auto& { return c.threads; }),
        run)
        .default_text = "all cores";
    add(flag("--quiet",
             "print nothing but errors (otherwise: a progress bar on a terminal, plain lines every 10 epochs in a log)",
             [](auto& c) -> auto& { return c.quiet; }),
        run);
    add(text("--model-in", "FILE",
             "project the cells through a trained model.exsal instead of training (the model and training options "
             "do not apply)",
             "none", [](auto& c) -> auto& { return c.model_in; }, true),
        run)
        .setting = Setting::model_file;
}

} // namespace detail::options

// The table, in the order of --help, the README and run.json.
inline const std::vector<PipelineOption>& pipeline_options() {
    static const std::vector<PipelineOption> table = [] {
        std::vector<PipelineOption> t;
        detail::options::data_options(t);
        detail::options::model_options(t);
        detail::options::interpretation_options(t);
        detail::options::run_options(t);
        return t;
    }();
    return table;
}

// The option with this name, or nullptr.
inline const PipelineOption* find_option(const std::string& name) {
    for (const PipelineOption& o : pipeline_options())
        if (o.name == name) return &o;
    return nullptr;
}

// The option that sets a library setting ("" when none does).
inline std::string option_for(Setting s) {
    if (s == Setting::none) return "";
    for (const PipelineOption& o : pipeline_options())
        if (o.setting == s) return o.name;
    return "";
}

// Sets an option from its command-line text, as the command line does.
inline void set_option(PipelineConfig& c, const std::string& name, const std::string& text = "") {
    const PipelineOption* o = find_option(name);
    if (!o) throw ArgumentError(name, "no such option");
    o->parse(c, text);
}

// Text of the default of every option, as --help and the README show it.
inline std::string option_default_text(const PipelineOption& o) {
    if (!o.default_text.empty()) return o.default_text;
    if (!o.record) return "";
    const std::optional<JsonValue> v = o.record(PipelineConfig{});
    if (!v) return "";
    std::string s = v->dump();
    if (s.size() >= 2 && s.front() == '"') s = s.substr(1, s.size() - 2);
    return s;
}

// Checks every value before any work: each option's own check, then what options say together,
// then that the given input files exist. Throws ArgumentError naming the option.
inline void validate_config(const PipelineConfig& c) {
    for (const PipelineOption& o : pipeline_options())
        if (o.check) o.check(c);
    if (c.builtin_data()) {
        if (c.genes_in_rows) throw ArgumentError("--genes-in-rows", "only applies to --expression files");
    } else if (c.gene_sets.empty()) {
        throw ArgumentError("--gene-sets", "a GMT file is required with --expression (e.g. MSigDB Hallmark)");
    }
    if (!c.genes_in_rows && c.id_column.empty()) throw ArgumentError("--id-column", "must not be empty");
    if (!c.genes_in_rows && c.id_column == c.group_column)
        throw ArgumentError("--group-column", "is the same column as --id-column ('" + c.id_column + "')");
    if (c.interpret.null_method == NullMethod::exact && c.interpret.aggregator == ImpactAggregator::mean)
        throw ArgumentError("--null", "exact needs --aggregator median (use --null monte-carlo with mean)");
    if (c.ensemble > 1 && c.projecting())
        throw ArgumentError("--ensemble", "trains models; it does not apply with --model-in");
    if (!c.interpret.compare_pairs.empty() && (c.genes_in_rows || (!c.builtin_data() && c.group_column.empty())))
        throw ArgumentError("--compare", "needs group labels (a --group-column in a cells-in-rows table)");
    detail::options::check_input_file("--expression", c.expression, true);
    detail::options::check_input_file("--cell-groups", c.cell_groups);
    detail::options::check_input_file("--gene-sets", c.gene_sets);
    detail::options::check_input_file("--model-in", c.model_in);
}

// run.json "parameters": every recorded option under its key, in table order.
inline JsonValue parameters_json(const PipelineConfig& c) {
    JsonValue j = JsonValue::object();
    for (const PipelineOption& o : pipeline_options())
        if (o.record && !o.key.empty())
            if (std::optional<JsonValue> v = o.record(c)) j[o.key] = std::move(*v);
    return j;
}

// The README's option table (Markdown), made from the table.
inline std::string options_markdown() {
    const auto cell = [](std::string s) { // '|' inside a table cell must be escaped
        std::string out;
        for (char ch : s) {
            if (ch == '|') out += '\\';
            out += ch;
        }
        return out;
    };
    std::string md = "| option | default | meaning |\n|---|---|---|\n";
    for (const PipelineOption& o : pipeline_options()) {
        const std::string shown = o.name + (o.value_name.empty() ? "" : " " + o.value_name);
        md += "| `" + cell(shown) + "` | " + cell(option_default_text(o)) + " | " + cell(o.help) + " |\n";
    }
    return md;
}

// An error of a library call, in the program's terms: its subject becomes the option that sets
// it, or the input file it is about (`source` names the expression data); its hints are named by
// their options (hints with no option are left out). Errors without a subject keep their text,
// hints renamed.
[[noreturn]] inline void rethrow_for_command_line(const Error& e, const PipelineConfig& c, const std::string& source) {
    const auto body = [&e] { // the message without the library's "where: "
        const auto* a = dynamic_cast<const ArgumentError*>(&e);
        return a ? a->message() : e.body();
    };
    const std::string hints = e.describe(option_for).substr(e.body().size());
    switch (e.subject()) {
    case Setting::gene_sets:
        if (c.gene_sets.empty()) throw ArgumentError("--gene-set-prefix", source + ": " + body() + hints);
        throw FileError(c.gene_sets, body() + hints + " (expression data: " + source + ")");
    case Setting::expression_data:
        throw FileError(source, body() + hints + (c.projecting() ? " (model: " + c.model_in + ")" : std::string()));
    case Setting::model_file: throw FileError(c.model_in, body() + hints);
    case Setting::validation_fraction:
    case Setting::filter_threshold: throw ArgumentError(option_for(e.subject()), source + ": " + body() + hints);
    case Setting::none: throw Error(e.describe(option_for));
    default: {
        const std::string option = option_for(e.subject());
        if (option.empty()) throw Error(e.describe(option_for));
        throw ArgumentError(option, body() + hints);
    }
    }
}

} // namespace exsal

#endif // EXSAL_PIPELINE_OPTIONS_HPP
