// The velten_pipeline program end to end: every output file with its columns, the refusal of
// invalid options and of a non-empty --out before any work, no partial output after a failure,
// bit-identical reruns, repeating the built-in run from its written files, and --model-in
// projections that reproduce the training run's representation (built-in data and HSMM).
// The binary is <build>/examples/velten_pipeline (examples/CMakeLists.txt builds it before this
// test); without it (EXSAL_BUILD_EXAMPLES=OFF) the tests are skipped with a message.

#include "exsal/pipeline/output_folder.hpp"
#include "exsal/pipeline/options.hpp"
#include "exsal/pipeline/stages.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string binary = std::string(EXSAL_BINARY_DIR) + "/examples/velten_pipeline";
const fs::path work = fs::path(EXSAL_BINARY_DIR) / "test_pipeline_out";

bool have_binary() {
    if (fs::exists(binary)) return true;
    MESSAGE("skipped: " << binary << " is not built (configure with EXSAL_BUILD_EXAMPLES=ON)");
    return false;
}

struct Run {
    int code = -1;
    std::string out, err;
};

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs the pipeline with `args` (already shell-quoted where needed); captures exit code and output.
Run run(const std::string& args, const std::string& tag) {
    fs::create_directories(work);
    const fs::path out = work / (tag + ".stdout"), err = work / (tag + ".stderr");
    const std::string command = "'" + binary + "' " + args + " > '" + out.string() + "' 2> '" + err.string() + "'";
    const int status = std::system(command.c_str());
    Run r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
}

fs::path fresh(const std::string& name) {
    const fs::path p = work / name;
    fs::remove_all(p);
    return p;
}

// A CSV file as header + rows (the pipeline's tables hold no quoted fields in these tests).
struct Csv {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::size_t column(const std::string& name) const {
        for (std::size_t i = 0; i < header.size(); ++i)
            if (header[i] == name) return i;
        FAIL("no column " << name);
        return 0;
    }
};

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> f;
    std::string cur;
    for (char ch : line) {
        if (ch == ',') {
            f.push_back(cur);
            cur.clear();
        } else {
            cur += ch;
        }
    }
    f.push_back(cur);
    return f;
}

Csv read_csv(const fs::path& p) {
    std::ifstream in(p);
    REQUIRE_MESSAGE(in, "cannot open " << p);
    Csv c;
    std::string line;
    std::getline(in, line);
    c.header = split(line);
    while (std::getline(in, line)) {
        c.rows.push_back(split(line));
        REQUIRE_MESSAGE(c.rows.back().size() == c.header.size(), p << ": row " << c.rows.size() << " has a wrong field count");
    }
    return c;
}

double number(const std::string& s) {
    if (s == "NA") return std::nan("");
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    REQUIRE_MESSAGE(used == s.size(), "'" << s << "' is not a number");
    return v;
}

std::vector<std::string> unit_columns(std::size_t units) {
    std::vector<std::string> u;
    for (std::size_t i = 0; i < units; ++i) u.push_back("unit_" + std::to_string(i));
    return u;
}

// run.json without the parts that may differ between two runs of the same settings: the
// timings, the program's arguments and the output folder.
std::string comparable_run_json(const fs::path& p) {
    std::istringstream in(read_text(p));
    std::string line, out;
    bool skipping = false;
    while (std::getline(in, line)) {
        if (line.find("\"timings_seconds\"") != std::string::npos || line.find("\"arguments\"") != std::string::npos) {
            skipping = line.find('[') != std::string::npos || line.find('{') != std::string::npos;
            if (line.find("[]") != std::string::npos || line.find("{}") != std::string::npos) skipping = false;
            continue;
        }
        if (skipping) {
            if (line.find_first_not_of(' ') != std::string::npos &&
                (line[line.find_first_not_of(' ')] == ']' || line[line.find_first_not_of(' ')] == '}') &&
                line.find_first_not_of(' ') <= 4)
                skipping = false;
            continue;
        }
        if (line.find("\"out\":") != std::string::npos) continue;
        out += line + "\n";
    }
    return out;
}

const std::string small = " --simulate-cells 300 --simulate-genes 600 --epochs 3 --threads 2 --quiet";
const std::string tiny_model = " --hidden 16 --units 8";

} // namespace

TEST_CASE("default run: every output file with its columns") {
    if (!have_binary()) return;
    const fs::path out = fresh("default");
    // The default run (built-in data of 2,000 cells x 3,000 genes, default model), 2 epochs only.
    const Run r = run(" --epochs 2 --threads 2 --quiet --out '" + out.string() + "'", "default");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.empty()); // --quiet
    CHECK(r.err.empty());
    const std::size_t U = 64;
    const std::vector<std::string> groups = {"CMP", "GMP", "HSC", "MEP", "MLP", "MPP"};

    for (const char* f : {"representation.csv", "unit_gene_sets.csv", "group_units.csv", "group_gene_sets.csv",
                          "gene_saliency.csv", "heatmap.svg", "representation_map.svg", "model.exsal", "run.json",
                          "synthetic_gene_sets.gmt", "simulated_expression.csv.gz"})
        CHECK_MESSAGE(fs::is_regular_file(out / f), f);
    for (const auto& g : groups) CHECK_MESSAGE(fs::is_regular_file(out / ("heatmap_" + g + ".svg")), g);
    for (const auto& e : fs::directory_iterator(out.parent_path()))
        CHECK_MESSAGE(e.path().filename().string().find("exsal-staging") == std::string::npos, "staging folder left: " << e.path());

    const Csv rep = read_csv(out / "representation.csv");
    std::vector<std::string> header = {"cell", "group"};
    for (const auto& u : unit_columns(U)) header.push_back(u);
    CHECK(rep.header == header);
    REQUIRE(rep.rows.size() == 2000);
    std::map<std::string, int> group_count;
    for (const auto& row : rep.rows) {
        ++group_count[row[1]];
        for (std::size_t k = 2; k < row.size(); ++k) CHECK(std::isfinite(number(row[k])));
    }
    CHECK(group_count.size() == groups.size());

    const Csv ugs = read_csv(out / "unit_gene_sets.csv");
    CHECK(ugs.header == std::vector<std::string>{"unit", "gene_set", "genes_in_set", "genes_found", "impact", "z_score",
                                                 "p_value", "q_value"});
    std::set<std::string> sets;
    for (const auto& row : ugs.rows) {
        sets.insert(row[1]);
        const double p = number(row[6]), q = number(row[7]);
        CHECK((p > 0.0 && p <= 1.0));
        CHECK((q >= p - 1e-12 && q <= 1.0)); // BH q-values are never below the p-value
        CHECK(number(row[3]) <= number(row[2]));
        CHECK(number(row[3]) >= 10); // --min-genes default
    }
    CHECK(ugs.rows.size() == U * sets.size());
    CHECK(sets.count("SIM_ERYTHROID") == 1);

    const Csv gu = read_csv(out / "group_units.csv");
    CHECK(gu.header == std::vector<std::string>{"group", "unit", "mean_in_group", "mean_in_rest", "effect_size"});
    CHECK(gu.rows.size() == U * groups.size());
    for (const auto& row : gu.rows) // the sign: group minus rest
        if (number(row[4]) != 0.0) CHECK((number(row[4]) > 0) == (number(row[2]) > number(row[3])));

    const Csv ggs = read_csv(out / "group_gene_sets.csv");
    CHECK(ggs.header ==
          std::vector<std::string>{"group", "unit", "gene_set", "impact_in_group", "impact_in_rest", "difference"});
    CHECK(ggs.rows.size() == U * groups.size() * sets.size());
    for (const auto& row : ggs.rows)
        CHECK(number(row[5]) == doctest::Approx(number(row[3]) - number(row[4])).epsilon(1e-12));

    const Csv gs = read_csv(out / "gene_saliency.csv");
    CHECK(gs.header == std::vector<std::string>{"unit", "gene", "mean_abs_saliency"});
    REQUIRE(gs.rows.size() % U == 0);
    for (const auto& row : gs.rows) CHECK(number(row[2]) >= 0.0);

    const std::string json = read_text(out / "run.json");
    for (const char* key : {"\"parameters\"", "\"seed\"", "\"versions\"", "\"exsal\"", "\"data\"", "\"cells\": 2000",
                            "\"genes_model\"", "\"coverage\"", "\"training\"", "\"epochs\"", "\"train_loss\"",
                            "\"validation_loss\"", "\"timings_seconds\"", "\"planted_programmes\"", "\"outputs\""})
        CHECK_MESSAGE(json.find(key) != std::string::npos, key);
    const std::string gmt = read_text(out / "synthetic_gene_sets.gmt");
    CHECK(gmt.find("SIM_ERYTHROID\tplanted\t") != std::string::npos);
    CHECK(gmt.find("\tdecoy\t") != std::string::npos);
    CHECK(read_text(out / "heatmap.svg").rfind("<svg", 200) != std::string::npos);
}

TEST_CASE("same seed and threads: identical files; the written matrix and sets repeat the run; --model-in reproduces it") {
    if (!have_binary()) return;
    const fs::path a = fresh("repeat_a"), b = fresh("repeat_b"), files = fresh("repeat_files"), proj = fresh("repeat_proj");
    const Run ra = run(small + tiny_model + " --seed 7 --out '" + a.string() + "'", "repeat_a");
    REQUIRE_MESSAGE(ra.code == 0, ra.err);
    const Run rb = run(small + tiny_model + " --seed 7 --out '" + b.string() + "'", "repeat_b");
    REQUIRE_MESSAGE(rb.code == 0, rb.err);
    std::size_t compared = 0;
    for (const auto& e : fs::directory_iterator(a)) {
        const std::string name = e.path().filename().string();
        if (name == "run.json") {
            CHECK(comparable_run_json(a / name) == comparable_run_json(b / name));
        } else {
            CHECK_MESSAGE(read_text(a / name) == read_text(b / name), name << " differs between two identical runs");
        }
        ++compared;
    }
    CHECK(compared >= 17);

    // The same run from the files it wrote: same model, same representation.
    const std::string from_files = " --expression '" + (a / "simulated_expression.csv.gz").string() + "' --gene-sets '" +
                                   (a / "synthetic_gene_sets.gmt").string() + "'";
    const Run rf = run(" --epochs 3 --threads 2 --quiet --seed 7" + tiny_model + from_files + " --out '" + files.string() + "'",
                       "repeat_files");
    REQUIRE_MESSAGE(rf.code == 0, rf.err);
    CHECK(read_text(files / "representation.csv") == read_text(a / "representation.csv"));
    // (model.exsal differs only in the gene-set label stored with the preprocessing: a path here)
    CHECK(read_text(files / "unit_gene_sets.csv") == read_text(a / "unit_gene_sets.csv"));

    // Projection of the training cells through the stored model and preprocessing.
    const Run rp = run(" --threads 2 --quiet --model-in '" + (a / "model.exsal").string() + "'" + from_files + " --out '" +
                           proj.string() + "'",
                       "repeat_proj");
    REQUIRE_MESSAGE(rp.code == 0, rp.err);
    const Csv ta = read_csv(a / "representation.csv"), tp = read_csv(proj / "representation.csv");
    REQUIRE(ta.header == tp.header);
    REQUIRE(ta.rows.size() == tp.rows.size());
    for (std::size_t i = 0; i < ta.rows.size(); ++i)
        for (std::size_t k = 2; k < ta.header.size(); ++k)
            CHECK(std::abs(number(ta.rows[i][k]) - number(tp.rows[i][k])) <= 1e-4);
    CHECK(read_text(proj / "model.exsal") == read_text(a / "model.exsal"));
    CHECK(read_text(proj / "run.json").find("\"mode\": \"project\"") != std::string::npos);
    CHECK(!fs::exists(proj / "simulated_expression.csv.gz"));
}

TEST_CASE("invalid options are refused before any work, naming the option") {
    if (!have_binary()) return;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"--lr nan", "--lr"},
        {"--lr -0.5", "--lr"},
        {"--lr inf", "--lr"},
        {"--lambda-orth -1", "--lambda-orth"},
        {"--epochs 0", "--epochs"},
        {"--epochs -3", "--epochs"},
        {"--hidden 0", "--hidden"},
        {"--units -2", "--units"},
        {"--batch 0", "--batch"},
        {"--permutations 0", "--permutations"},
        {"--expression-bins 0", "--expression-bins"},
        {"--min-genes 0", "--min-genes"},
        {"--min-gene-max nan", "--min-gene-max"},
        {"--threads 0", "--threads"},
        {"--validation-fraction 0.7", "--validation-fraction"},
        {"--loss gaussian", "--loss"},
        {"--optimizer rmsprop", "--optimizer"},
        {"--input-transform sqrt", "--input-transform"},
        {"--saliency smooth", "--saliency"},
        {"--null bootstrap", "--null"},
        {"--compare HSC", "--compare"},
        {"--compare HSC:HSC", "--compare"},
        {"--seed -1", "--seed"},
        {"--hidden many", "--hidden"},
        {"--no-such-option", "--no-such-option"},
        {"--expression /nonexistent/x.csv --gene-sets /nonexistent/h.gmt", "--expression"},
        {"--expression '" + (work / "x.csv").string() + "'", "--gene-sets"},
        {"--model-in /nonexistent/model.exsal", "--model-in"},
    };
    int i = 0;
    for (const auto& args_option : cases) {
        const auto& args = args_option.first;
        const auto& option = args_option.second;
        // Small built-in data, so that a wrongly accepted value costs seconds, not minutes.
        const std::string tag = "invalid_" + std::to_string(i++);
        const fs::path out = fresh(tag);
        const Run r = run(args + " --simulate-cells 100 --simulate-genes 400 --out '" + out.string() + "'", tag);
        CHECK_MESSAGE(r.code == 2, args << " -> exit " << r.code << ": " << r.err);
        CHECK_MESSAGE(r.err.find(option) != std::string::npos, args << " -> " << r.err);
        CHECK_MESSAGE(r.err.find("velten_pipeline: error: ") == 0, args << " -> " << r.err);
        CHECK_MESSAGE(!fs::exists(out), args << " created the output folder");
    }
    const fs::path out = fresh("invalid_model_in");
    // Training options do not apply to a stored model.
    fs::create_directories(work);
    { std::ofstream(work / "fake.exsal") << "x"; }
    const Run r = run("--model-in '" + (work / "fake.exsal").string() + "' --hidden 32 --out '" + out.string() + "'", "invalid_model_in");
    CHECK(r.code == 2);
    CHECK(r.err.find("--hidden") != std::string::npos);
    // A group that no cell has: refused after reading the data, before training; nothing written.
    const Run g = run(small + tiny_model + " --compare HSC:NOPE --out '" + out.string() + "'", "invalid_group");
    CHECK(g.code == 1);
    CHECK(g.err.find("--compare") != std::string::npos);
    CHECK(g.err.find("NOPE") != std::string::npos);
    CHECK(!fs::exists(out));
}

TEST_CASE("--help lists every option with its default") {
    if (!have_binary()) return;
    const Run r = run("--help", "help");
    CHECK(r.code == 0);
    for (const char* s : {"--expression PATH=built-in data", "--genes-in-rows", "--id-column NAME=sample",
                          "--group-column NAME=cluster", "--gene-sets", "--gene-set-prefix", "--min-genes N=10",
                          "--min-gene-max X=2", "--hidden N=128", "--units N=64", "--loss poisson|mse=poisson",
                          "--optimizer adam|sgd=adam", "--lr X=0.001", "--lambda-orth X=1", "--epochs", "--batch N=128",
                          "--input-transform", "=guided", "--permutations N=1000", "--compare A:B=none",
                          "--out DIR=exsal-out", "--force", "--seed N=1", "--threads N=all cores", "--quiet", "--model-in"})
        CHECK_MESSAGE(r.out.find(s) != std::string::npos, s);
    // Every option of the table is on the command line.
    for (const exsal::PipelineOption& o : exsal::pipeline_options())
        CHECK_MESSAGE(r.out.find(o.name + (o.value_name.empty() ? "" : " ")) != std::string::npos, o.name);
}

TEST_CASE("progress without a terminal: plain lines every 10 epochs; summary on stdout") {
    if (!have_binary()) return;
    const fs::path out = fresh("progress");
    const Run r = run(" --simulate-cells 300 --simulate-genes 600 --epochs 12 --threads 2" + tiny_model + " --out '" +
                          out.string() + "'",
                      "progress");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.err.find('\r') == std::string::npos); // no bar when stderr is a file
    for (const char* line : {"epoch 1/12 ", "epoch 10/12 ", "epoch 12/12 "}) CHECK_MESSAGE(r.err.find(line) != std::string::npos, line);
    CHECK(r.err.find("epoch 5/12 ") == std::string::npos);
    for (const char* s : {"Data: built-in simulation, 300 cells x 600 genes", "Training: 12 of at most 12 epochs",
                          "Planted programmes", "SIM_ERYTHROID", "Outputs in"})
        CHECK_MESSAGE(r.out.find(s) != std::string::npos, s);
}

TEST_CASE("existing output folders: refused unless --force, which keeps other files; failures leave nothing") {
    if (!have_binary()) return;
    const fs::path out = fresh("existing");
    fs::create_directories(out);
    { std::ofstream(out / "notes.txt") << "mine"; }
    { std::ofstream(out / "heatmap.svg") << "old"; }
    const Run refused = run(small + tiny_model + " --out '" + out.string() + "'", "existing_refused");
    CHECK(refused.code == 1);
    CHECK(refused.err.find("--out") != std::string::npos);
    CHECK(read_text(out / "heatmap.svg") == "old");
    CHECK(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 2);

    const Run forced = run(small + tiny_model + " --force --out '" + out.string() + "'", "existing_forced");
    REQUIRE_MESSAGE(forced.code == 0, forced.err);
    CHECK(read_text(out / "notes.txt") == "mine");
    CHECK(read_text(out / "heatmap.svg") != "old");
    CHECK(fs::exists(out / "representation.csv"));

    // An empty existing folder is used without --force.
    const fs::path empty = fresh("existing_empty");
    fs::create_directories(empty);
    const Run into_empty = run(small + tiny_model + " --out '" + empty.string() + "'", "existing_empty");
    CHECK_MESSAGE(into_empty.code == 0, into_empty.err);
    CHECK(fs::exists(empty / "run.json"));

    // A failure while running (a bad number in the table) leaves neither --out nor a staging folder.
    const fs::path bad = work / "bad_table.csv", failed = fresh("failed");
    {
        std::ofstream t(bad);
        t << "sample,cluster,A,B,C\nc1,x,1,2,3\nc2,x,4,oops,6\n";
    }
    { std::ofstream(work / "sets.gmt") << "S1\td\tA\tB\tC\n"; }
    const Run fail = run("--quiet --expression '" + bad.string() + "' --gene-sets '" + (work / "sets.gmt").string() +
                             "' --out '" + failed.string() + "'",
                         "failed");
    CHECK(fail.code == 1);
    CHECK(fail.err.find("bad_table.csv:3") != std::string::npos);
    CHECK(!fs::exists(failed));
    for (const auto& e : fs::directory_iterator(work))
        CHECK_MESSAGE(e.path().filename().string().find("exsal-staging") == std::string::npos, e.path());
}

TEST_CASE("OutputFolder: refusal, staging, merge commit and discard") {
    const fs::path base = fresh("folder_unit");
    fs::create_directories(base / "full");
    { std::ofstream(base / "full" / "keep.txt") << "k"; }
    // The library names no command-line option: the error is typed, the program names it.
    try {
        exsal::OutputFolder::open((base / "full").string(), false);
        FAIL("a non-empty folder was accepted without force");
    } catch (const exsal::ArgumentError& e) {
        CHECK(e.subject() == exsal::Setting::output_folder);
        REQUIRE(e.hints().size() == 1);
        CHECK(e.hints()[0].setting == exsal::Setting::output_force);
        CHECK(std::string(e.what()).find("--") == std::string::npos);
        CHECK(std::string(e.what()).find("not empty") != std::string::npos);
    }
    { std::ofstream(base / "file") << "f"; }
    CHECK_THROWS_AS(exsal::OutputFolder::open((base / "file").string(), true), exsal::ArgumentError);
    {
        exsal::OutputFolder f = exsal::OutputFolder::open((base / "new").string(), false);
        { std::ofstream(f.file("a.txt")) << "a"; }
        CHECK_THROWS_AS(f.file("a.txt"), exsal::ArgumentError);
        for (const char* bad : {"/y", "../y", "x/../y", "x//y", "x/./y", "x/", ""}) CHECK_THROWS_AS(f.file(bad), exsal::ArgumentError);
        { std::ofstream(f.file("sub/folder/b.txt")) << "b"; } // a file inside subfolders of the output
        CHECK(fs::exists(fs::path(f.staging()) / "sub" / "folder" / "b.txt"));
        CHECK(!fs::exists(base / "new")); // nothing before commit; destroyed without commit
    }
    CHECK(!fs::exists(base / "new"));
    {
        exsal::OutputFolder f = exsal::OutputFolder::open((base / "new").string(), false);
        { std::ofstream(f.file("a.txt")) << "a"; }
        f.commit();
    }
    CHECK(read_text(base / "new" / "a.txt") == "a");
    {
        exsal::OutputFolder f = exsal::OutputFolder::open((base / "full").string(), true);
        CHECK(f.merging());
        { std::ofstream(f.file("b.txt")) << "b"; }
        f.commit();
    }
    CHECK(read_text(base / "full" / "keep.txt") == "k");
    CHECK(read_text(base / "full" / "b.txt") == "b");
    std::size_t staging = 0;
    for (const auto& e : fs::directory_iterator(base)) staging += e.path().filename().string().find("staging") != std::string::npos;
    CHECK(staging == 0);
}

TEST_CASE("HSMM with Hallmark v6.2: runs, and --model-in reproduces the representation within 1e-4") {
    if (!have_binary()) return;
    const std::string data = std::string(EXSAL_SHARED_DATA_DIR) + "/hsmm_trapnell2014_fpkm.csv.gz";
    const std::string gmt = std::string(EXSAL_SHARED_DATA_DIR) + "/h.all.v6.2.symbols.gmt";
    if (!fs::exists(data) || !fs::exists(gmt)) {
        MESSAGE("skipped: HSMM or Hallmark v6.2 not found in " << EXSAL_SHARED_DATA_DIR);
        return;
    }
    const fs::path a = fresh("hsmm_train"), b = fresh("hsmm_project");
    const std::string inputs = " --expression '" + data + "' --gene-sets '" + gmt + "' --gene-set-prefix HALLMARK_";
    const Run ra = run(inputs + " --epochs 2 --threads 2 --quiet --compare 0h:72h --out '" + a.string() + "'", "hsmm_train");
    REQUIRE_MESSAGE(ra.code == 0, ra.err);
    const Run rb = run(inputs + " --threads 2 --quiet --model-in '" + (a / "model.exsal").string() + "' --out '" +
                           b.string() + "'",
                       "hsmm_project");
    REQUIRE_MESSAGE(rb.code == 0, rb.err);

    const Csv ta = read_csv(a / "representation.csv"), tb = read_csv(b / "representation.csv");
    REQUIRE(ta.header == tb.header);
    REQUIRE(ta.rows.size() == 271);
    REQUIRE(tb.rows.size() == 271);
    double worst = 0.0;
    for (std::size_t i = 0; i < ta.rows.size(); ++i) {
        CHECK(ta.rows[i][0] == tb.rows[i][0]);
        CHECK(ta.rows[i][1] == tb.rows[i][1]);
        for (std::size_t k = 2; k < ta.header.size(); ++k)
            worst = std::max(worst, std::abs(number(ta.rows[i][k]) - number(tb.rows[i][k])));
    }
    CHECK(worst <= 1e-4);

    const Csv ugs = read_csv(a / "unit_gene_sets.csv");
    std::set<std::string> sets;
    for (const auto& row : ugs.rows) sets.insert(row[1]);
    CHECK(sets.size() == 50); // every Hallmark set has >= 10 genes in HSMM
    const Csv gu = read_csv(a / "group_units.csv");
    std::set<std::string> labels;
    for (const auto& row : gu.rows) labels.insert(row[0]);
    CHECK(labels == std::set<std::string>{"0h", "24h", "48h", "72h", "0h_vs_72h"});
    for (const char* f : {"heatmap_0h.svg", "heatmap_72h.svg", "heatmap_0h_vs_72h.svg"}) CHECK_MESSAGE(fs::exists(a / f), f);
}

TEST_CASE("explanations: units.csv, group_programmes.csv, an ensemble's consensus and per-model tables") {
    if (!have_binary()) return;
    const fs::path out = fresh("explain");
    const Run r = run(small + tiny_model + " --ensemble 2 --label-permutations 99 --compare HSC:MEP --out '" + out.string() + "'",
                      "explain");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::size_t U = 8;
    for (const char* f : {"units.csv", "group_programmes.csv", "group_programmes.svg", "group_programmes_consensus.csv",
                          "models/model_2/units.csv", "models/model_2/unit_gene_sets.csv", "models/model_2/group_programmes.csv"})
        CHECK_MESSAGE(fs::is_regular_file(out / f), f);

    const Csv units = read_csv(out / "units.csv");
    CHECK(units.header == std::vector<std::string>{"unit", "active", "activation_mean", "activation_sd", "activation_min",
                                                   "activation_max", "fraction_on", "best_gene_set", "best_q_value"});
    REQUIRE(units.rows.size() == U);
    std::set<std::string> inactive;
    double largest_sd = 0.0;
    for (const auto& row : units.rows) largest_sd = std::max(largest_sd, number(row[3]));
    for (const auto& row : units.rows) {
        CHECK((row[1] == "true" || row[1] == "false"));
        CHECK((row[1] == "true") == (number(row[3]) > 0.01 * largest_sd)); // the documented rule
        CHECK(number(row[4]) <= number(row[2]));
        CHECK(number(row[2]) <= number(row[5]));
        if (row[1] == "false") {
            inactive.insert(row[0]);
            CHECK(row[7].empty());
        }
    }
    // Inactive units are never tested and get no effect size.
    for (const auto& row : read_csv(out / "unit_gene_sets.csv").rows)
        if (inactive.count(row[0])) CHECK(row[7] == "NA");
    for (const auto& row : read_csv(out / "group_units.csv").rows)
        if (inactive.count(row[1])) CHECK(row[4] == "NA");

    const Csv gp = read_csv(out / "group_programmes.csv");
    CHECK(std::vector<std::string>(gp.header.begin(), gp.header.begin() + 8) ==
          std::vector<std::string>{"group", "gene_set", "direction", "score", "p_value", "q_value", "rank", "units"});
    std::map<std::string, std::vector<double>> ranks; // group + direction -> ranks
    std::set<std::string> comparisons;
    for (const auto& row : gp.rows) {
        comparisons.insert(row[0]);
        CHECK((row[2] == "higher" || row[2] == "lower"));
        const double p = number(row[4]) * 100.0; // (k + 1) / 100
        CHECK(std::abs(p - std::round(p)) < 1e-9);
        CHECK(number(row[5]) >= number(row[4]) - 1e-12);
        if (row[6] != "NA") ranks[row[0] + "/" + row[2]].push_back(number(row[6]));
        for (const auto& u : inactive) CHECK(row[7].find(u + ";") == std::string::npos);
    }
    CHECK(comparisons == std::set<std::string>{"CMP", "GMP", "HSC", "MEP", "MLP", "MPP", "HSC_vs_MEP"});
    for (auto& key_v : ranks) { // 1..k in file order
        const auto& key = key_v.first;
        auto& v = key_v.second;
        for (std::size_t i = 0; i < v.size(); ++i) CHECK_MESSAGE(v[i] == static_cast<double>(i + 1), key);
    }
    const Csv consensus = read_csv(out / "group_programmes_consensus.csv");
    CHECK(consensus.header == std::vector<std::string>{"group", "gene_set", "direction", "mean_rank", "top5_fraction",
                                                       "p_value", "q_value", "rank"});
    CHECK(consensus.rows.size() == gp.rows.size());
    for (const auto& row : consensus.rows) {
        CHECK((number(row[4]) >= 0.0 && number(row[4]) <= 1.0));
        CHECK(number(row[6]) >= number(row[5]) - 1e-12);
    }
    const std::string json = read_text(out / "run.json");
    for (const char* key : {"\"multiple_testing_families\"", "\"ensemble_models\"", "\"input_centred\": true",
                            "\"early_stopping\": false", "\"label_permutations\": 99"})
        CHECK_MESSAGE(json.find(key) != std::string::npos, key);
    CHECK(read_text(out / "group_programmes.svg").find("Programmes that tell each group apart") != std::string::npos);

    // --ensemble trains models: refused with --model-in, before any work.
    const fs::path proj = fresh("explain_proj");
    const Run refused = run(" --model-in '" + (out / "model.exsal").string() + "' --ensemble 2 --out '" + proj.string() + "'",
                            "explain_proj");
    CHECK(refused.code == 2);
    CHECK(refused.err.find("--ensemble") != std::string::npos);
}

TEST_CASE("runs that cannot work are refused naming the cause, before training, with nothing written") {
    if (!have_binary()) return;
    // A representation too wide for this machine's memory: named with the option and the gigabytes
    // (the U x U orthogonality matrices alone need 80 GB), instead of std::bad_alloc.
    const fs::path out = fresh("refused_memory");
    const Run m = run(small + " --units 100000 --out '" + out.string() + "'", "refused_memory");
    CHECK(m.code == 1);
    CHECK(m.err.find("--units: 100000: training needs at least") != std::string::npos);
    CHECK(m.err.find(" GB are available") != std::string::npos);
    CHECK(!fs::exists(out));

    // A value the loss cannot hold in single precision: the file, cell and gene, not a divergence.
    const fs::path work = fresh("refused_value");
    fs::create_directories(work);
    std::ofstream table(work / "huge.csv"), sets(work / "s.gmt");
    table << "sample,cluster";
    for (int g = 0; g < 30; ++g) table << ",G" << g;
    table << "\n";
    for (int c = 0; c < 60; ++c) {
        table << "cell" << c << "," << (c % 2 ? "a" : "b");
        for (int g = 0; g < 30; ++g) table << "," << (c == 17 && g == 4 ? std::string("3e34") : std::to_string((c * 7 + g) % 9));
        table << "\n";
    }
    table.close();
    sets << "S1\td";
    for (int g = 0; g < 30; ++g) sets << "\tG" << g;
    sets << "\n";
    sets.close();
    const fs::path out2 = work / "out";
    const Run v = run(" --expression '" + (work / "huge.csv").string() + "' --gene-sets '" + (work / "s.gmt").string() +
                          "' --min-genes 1 --min-gene-max 0 --epochs 2 --quiet --out '" + out2.string() + "'",
                      "refused_value");
    CHECK(v.code == 1);
    CHECK(v.err.find("huge.csv: cell cell17, gene G4: the value 3e+34 is too large for the poisson loss") != std::string::npos);
    CHECK(v.err.find("learning rate") == std::string::npos);
    CHECK(!fs::exists(out2));
}

TEST_CASE("--interpret-cells: a seeded sample per group is interpreted, every cell is still represented") {
    // The sampling rule itself, on labels with one small group.
    std::vector<std::string> groups;
    for (int i = 0; i < 1000; ++i) groups.push_back(i % 50 == 0 ? "rare" : (i % 3 ? "a" : "b"));
    const std::vector<exsal::Index> s = exsal::interpretation_sample(1000, groups, 200, 7);
    CHECK(std::is_sorted(s.begin(), s.end()));
    CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
    std::map<std::string, int> per_group;
    for (exsal::Index c : s) ++per_group[groups[static_cast<std::size_t>(c)]];
    CHECK(per_group["rare"] == 20);           // all of a group below the minimum of 50
    CHECK(per_group["a"] == 131);             // 200 x 653 / 1000 = 130.6: the largest remainder rounds up
    CHECK(per_group["b"] == 65);              // 200 x 327 / 1000 = 65.4 rounds down (above the minimum)
    CHECK(exsal::interpretation_sample(1000, groups, 200, 7) == s);
    CHECK(exsal::interpretation_sample(1000, groups, 200, 8) != s);
    CHECK(exsal::interpretation_sample(1000, groups, 0, 7).size() == 1000);    // 0: all cells
    CHECK(exsal::interpretation_sample(1000, groups, 5000, 7).size() == 1000); // more than there are: all
    CHECK(exsal::interpretation_sample(1000, {}, 100, 7).size() == 100);       // no groups: a plain sample

    if (!have_binary()) return;
    const fs::path all = fresh("sample_all"), part = fresh("sample_part"), again = fresh("sample_again");
    const Run a = run(small + tiny_model + " --interpret-cells 300 --out '" + all.string() + "'", "sample_all");
    const Run b = run(small + tiny_model + " --interpret-cells 120 --out '" + part.string() + "'", "sample_part");
    const Run c = run(small + tiny_model + " --interpret-cells 120 --out '" + again.string() + "'", "sample_again");
    REQUIRE_MESSAGE(a.code == 0, a.err);
    REQUIRE_MESSAGE(b.code == 0, b.err);
    REQUIRE_MESSAGE(c.code == 0, c.err);
    // Every cell keeps its representation; the sample only changes what is interpreted.
    CHECK(read_text(all / "representation.csv") == read_text(part / "representation.csv"));
    CHECK(read_text(part / "unit_gene_sets.csv") == read_text(again / "unit_gene_sets.csv")); // seeded
    CHECK(read_text(all / "unit_gene_sets.csv") != read_text(part / "unit_gene_sets.csv"));
    const std::string json = read_text(part / "run.json");
    CHECK(json.find("\"cells_sampled\": true") != std::string::npos);
    CHECK(json.find("\"sample_per_group\"") != std::string::npos);
    CHECK(json.find("\"interpreted_cells\"") != std::string::npos); // its derived seed
    CHECK(read_text(all / "run.json").find("\"cells_sampled\": false") != std::string::npos);
}
