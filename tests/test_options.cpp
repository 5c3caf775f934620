// The pipeline's option table (exsal/pipeline/options.hpp): one declaration per option drives the
// command line, the checks, run.json and the README; these tests keep them from drifting apart.

#include "exsal/pipeline/options.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

using namespace exsal;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The message of what `f` throws as an exsal::Error ("" when it throws nothing).
template <typename F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

PipelineConfig parsed(std::initializer_list<std::pair<const char*, const char*>> options) {
    PipelineConfig c;
    for (const auto& [name, text] : options) set_option(c, name, text);
    return c;
}

} // namespace

TEST_CASE("the README's option table is the one the table makes") {
    const std::string readme = read_text(std::string(EXSAL_SOURCE_DIR) + "/README.md");
    const std::string begin = "<!-- options table: made by exsal::options_markdown(), checked by tests/test_options.cpp -->\n";
    const std::string end = "<!-- end of options table -->";
    const std::size_t b = readme.find(begin), e = readme.find(end);
    REQUIRE_MESSAGE(b != std::string::npos, "README.md has no options table marker");
    REQUIRE(e != std::string::npos);
    const std::string in_readme = readme.substr(b + begin.size(), e - b - begin.size());
    const std::string expected = options_markdown();
    if (in_readme != expected) {
        const std::string path = std::string(EXSAL_BINARY_DIR) + "/options_table.md";
        std::ofstream(path) << expected;
        FAIL("README.md's option table differs from options_markdown(); the table to paste between the markers is in "
             << path);
    }
}

TEST_CASE("every option is declared completely and once") {
    std::set<std::string> names, keys;
    for (const PipelineOption& o : pipeline_options()) {
        CAPTURE(o.name);
        CHECK(o.name.rfind("--", 0) == 0);
        CHECK(names.insert(o.name).second);
        CHECK(!o.group.empty());
        CHECK(!o.help.empty());
        CHECK(static_cast<bool>(o.parse));
        CHECK(static_cast<bool>(o.record));
        CHECK(!o.key.empty());
        CHECK(keys.insert(o.key).second);
        CHECK(!option_default_text(o).empty());
        CHECK((o.kind == OptionKind::flag) == o.value_name.empty());
    }
    // run.json records every option of the built-in run (the simulation sizes only there).
    const JsonValue p = parameters_json(PipelineConfig{});
    CHECK(p.size() == pipeline_options().size());
    PipelineConfig files = parsed({{"--expression", "x.csv"}, {"--gene-sets", "x.gmt"}});
    CHECK(parameters_json(files).size() == pipeline_options().size() - 2);
}

TEST_CASE("options set the library's own option structs") {
    const PipelineConfig c = parsed({{"--lr", "0.01"},
                                     {"--optimizer", "sgd"},
                                     {"--batch", "64"},
                                     {"--min-gene-max", "2.5"},
                                     {"--input-transform", "cpm-log1p"},
                                     {"--input-centring", "off"},
                                     {"--validation-fraction", "0.1"},
                                     {"--null", "monte-carlo"},
                                     {"--permutations", "500"},
                                     {"--label-permutations", "99"},
                                     {"--min-genes", "5"},
                                     {"--compare", "A:B"},
                                     {"--compare", "C:D"},
                                     {"--force", ""},
                                     {"--seed", "18446744073709551615"}});
    CHECK(c.train.optimizer == OptimizerKind::sgd);
    CHECK(c.train.sgd.lr == 0.01);
    CHECK(c.train.adam.lr == 0.01); // one --lr for whichever optimiser runs
    CHECK(c.train.learning_rate() == 0.01);
    CHECK(c.train.batch_size == 64);
    CHECK(c.preprocess.filter_threshold == 2.5);
    CHECK(c.preprocess.transform == InputTransform::cpm_log1p);
    CHECK_FALSE(c.preprocess.centre);
    CHECK(c.preprocess.validation_fraction == 0.1);
    CHECK(c.interpret.null_method == NullMethod::monte_carlo);
    CHECK(c.interpret.permutations == 500);
    CHECK(c.interpret.min_genes == 5);
    CHECK(c.programmes.permutations == 99);
    REQUIRE(c.interpret.compare_pairs.size() == 2);
    CHECK(c.interpret.compare_pairs[1].first == "C");
    CHECK(c.force);
    CHECK(c.seed == 18446744073709551615ull);
    const JsonValue p = parameters_json(c);
    CHECK(p.dump(0).find("\"input_transform\":\"cpm-log1p\"") != std::string::npos);
    CHECK(p.dump(0).find("\"compare\":[\"A:B\",\"C:D\"]") != std::string::npos);

    // The pipeline's defaults: min-max input, centred; everything else the library's.
    const PipelineConfig d;
    CHECK(d.preprocess.transform == InputTransform::minmax);
    CHECK(d.preprocess.centre);
    CHECK(d.train.batch_size == TrainOptions{}.batch_size);
    CHECK(d.interpret.permutations == InterpretOptions{}.permutations);
}

TEST_CASE("bad option values are refused naming the option") {
    struct Case {
        const char* option;
        const char* text;
        const char* says;
    };
    for (const Case& k : {Case{"--batch", "abc", "expects an integer"}, Case{"--batch", "12x", "expects an integer"},
                          Case{"--seed", "-1", "non-negative integer"}, Case{"--lr", "fast", "expects a number"},
                          Case{"--loss", "l1", "poisson|mse"}, Case{"--compare", "A", "A:B"},
                          Case{"--epochs", "0", "positive count"}, Case{"--units", "99999999999999999999", "out of range"}}) {
        CAPTURE(k.option);
        PipelineConfig c;
        const std::string m = error_of([&] { set_option(c, k.option, k.text); });
        CHECK(m.rfind(std::string(k.option) + ": ", 0) == 0);
        CHECK(m.find(k.says) != std::string::npos);
    }
    // Parsed but invalid: validate_config names the option.
    for (const Case& k : {Case{"--batch", "0", "positive count"}, Case{"--lr", "nan", "positive finite"},
                          Case{"--lr", "-1", "positive finite"}, Case{"--validation-fraction", "0.5", "[0, 0.5)"},
                          Case{"--label-permutations", "10", "at least 19"}, Case{"--ensemble", "101", "1 to 100"},
                          Case{"--simulate-cells", "10", "at least 20"}, Case{"--activity-floor", "1", "[0, 1)"},
                          Case{"--patience", "-1", ">= 0"}, Case{"--out", "", "must not be empty"},
                          Case{"--compare", "A:A", "same group twice"}}) {
        CAPTURE(k.option);
        PipelineConfig c;
        set_option(c, k.option, k.text);
        const std::string m = error_of([&] { validate_config(c); });
        CHECK(m.rfind(std::string(k.option) + ": ", 0) == 0);
        CHECK(m.find(k.says) != std::string::npos);
    }
    CHECK(error_of([] { validate_config(PipelineConfig{}); }).empty());
    CHECK(error_of([] { validate_config(parsed({{"--aggregator", "mean"}})); }).rfind("--null:", 0) == 0);
    CHECK(error_of([] { validate_config(parsed({{"--expression", "/no/such/file.csv"}, {"--gene-sets", "/no/x.gmt"}})); })
              .rfind("--expression: '/no/such/file.csv' does not exist", 0) == 0);
}

TEST_CASE("library errors are named by the program's options and files, by their type") {
    const PipelineConfig c = parsed({{"--expression", "cells.csv"}, {"--gene-sets", "h.gmt"}});
    // The library's own text names its settings...
    const FileError reader("cells.csv", 1, 0, "the header has no cell id column \"sample\"",
                           {{Setting::id_column, "to name it"},
                            {Setting::genes_in_rows, "for a genes x cells table"},
                            {Setting::sum_duplicates, "to add them up"}});
    CHECK(std::string(reader.what()).find("set ExpressionReadOptions::id_column to name it, or "
                                          "ExpressionReadOptions::genes_in_rows for a genes x cells table") !=
          std::string::npos);
    // ...the program's, its options; a setting it does not offer is not suggested.
    const std::string m = error_of([&] { rethrow_for_command_line(reader, c, c.expression); });
    CHECK(m == "cells.csv:1: the header has no cell id column \"sample\"; set --id-column to name it, or "
               "--genes-in-rows for a genes x cells table");

    CHECK(error_of([&] {
              rethrow_for_command_line(ArgumentError("split_train_validation", "leaves 0 training cells",
                                                     Setting::validation_fraction),
                                       c, c.expression);
          }) == "--validation-fraction: cells.csv: leaves 0 training cells");
    CHECK(error_of([&] {
              rethrow_for_command_line(ArgumentError("restrict_to_gene_sets", "no overlap", Setting::gene_sets), c,
                                       c.expression);
          }) == "h.gmt: no overlap (expression data: cells.csv)");
    // Built-in data: the sets come from the simulation, so the prefix is what to change.
    CHECK(error_of([&] {
              rethrow_for_command_line(ArgumentError("restrict_to_gene_sets", "no overlap", Setting::gene_sets),
                                       PipelineConfig{}, "built-in data");
          }) == "--gene-set-prefix: built-in data: no overlap");
    CHECK(error_of([&] {
              rethrow_for_command_line(ArgumentError("Preprocessor::align", "no gene in common", Setting::expression_data),
                                       c, c.expression);
          }) == "cells.csv: no gene in common");
    CHECK(error_of([&] {
              rethrow_for_command_line(ArgumentError("OutputFolder::open", "'o' exists and is not empty",
                                                     Setting::output_folder, {{Setting::output_force, "to merge"}}),
                                       c, c.out);
          }) == "--out: 'o' exists and is not empty; set --force to merge");
    // Every library setting a message can suggest has an option, or is deliberately not offered.
    for (Setting s : {Setting::id_column, Setting::group_column, Setting::genes_in_rows, Setting::validation_fraction,
                      Setting::filter_threshold, Setting::output_folder, Setting::output_force})
        CHECK_MESSAGE(!option_for(s).empty(), setting_name(s));
    CHECK(option_for(Setting::sum_duplicates).empty());
    CHECK(option_for(Setting::allow_negative).empty());
}
