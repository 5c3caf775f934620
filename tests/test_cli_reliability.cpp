// Malformed-input catalogue at the command line (issue 7): examples/velten_pipeline is run as a
// separate process on broken expression tables, GMT files, model files and option values. Every
// case asserts the promise made to users:
//   - the program exits by itself (no crash, no signal, no hang) with a code in 1..127;
//   - stderr names the file (with "path:line:" where a line applies) or the option at fault;
//   - --out holds nothing afterwards (absent or empty) and no staging folder is left behind.
// Then the valid variants (CRLF, byte order mark, quoted fields, gzip) must give the very same
// results as the plain table, a run killed with SIGKILL at any moment leaves only complete files
// under final names, a diverging run writes nothing, all-zero cells and genes run through
// without a NaN in any output, and two runs with the same seed and threads write identical
// files (run.json apart from its timings).
// Skipped, with a message, when the pipeline binary has not been built (EXSAL_BUILD_EXAMPLES=OFF).

#include <doctest/doctest.h>

#include "test_files.hpp"

#include "exsal/core/random.hpp"
#include "exsal/core/serialize.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/nn/model_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

using exsal_test::gzip_member;
using exsal_test::read_bytes;
using exsal_test::TempDir;
using exsal_test::write_bytes;

const std::string pipeline_binary = std::string(EXSAL_BINARY_DIR) + "/examples/velten_pipeline";

bool pipeline_built() {
    if (fs::exists(pipeline_binary)) return true;
    MESSAGE("skipped: " << pipeline_binary << " is not built (configure with EXSAL_BUILD_EXAMPLES=ON)");
    return false;
}

// Every file of `a` equals the one of the same name in `b`, and the name sets agree.
void check_same_files(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
    for (const auto& name_content : a) {
        const auto& name = name_content.first;
        const auto& content = name_content.second;
        CAPTURE(name);
        CHECK(b.count(name) == 1);
        if (b.count(name)) CHECK_MESSAGE(content == b.at(name), name << " differs");
    }
    CHECK(a.size() == b.size());
}

// ---------------------------------------------------------------------------------------------
// Running the program

struct Child {
    pid_t pid = -1;
    std::string out_file, err_file; // its stdout and stderr
};

struct Exit {
    bool exited = false;  // ended through exit() (not a signal)
    int code = -1;        // exit code when exited
    int signal = 0;       // terminating signal otherwise
    bool timed_out = false;
    std::string out, err;
    double seconds = 0.0;
};

Child spawn(const std::vector<std::string>& args, const std::string& log_prefix) {
    Child c;
    c.out_file = log_prefix + ".stdout";
    c.err_file = log_prefix + ".stderr";
    std::vector<std::string> full{pipeline_binary};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) { // only async-signal-safe calls until exec
        const int o = ::open(c.out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(c.err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) ::_exit(126);
        ::dup2(o, 1);
        ::dup2(e, 2);
        ::close(o);
        ::close(e);
        ::execv(pipeline_binary.c_str(), argv.data());
        ::_exit(127);
    }
    c.pid = pid;
    return c;
}

// Waits for the child; after `timeout_s` it is killed and reported as timed out (a hang).
Exit finish(const Child& c, double timeout_s = 600) {
    Exit x;
    const auto start = std::chrono::steady_clock::now();
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid) break;
        x.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (x.seconds > timeout_s) {
            ::kill(c.pid, SIGKILL);
            ::waitpid(c.pid, &status, 0);
            x.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    x.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (WIFEXITED(status)) {
        x.exited = true;
        x.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        x.signal = WTERMSIG(status);
    }
    x.out = read_bytes(c.out_file);
    x.err = read_bytes(c.err_file);
    return x;
}

Exit run_cli(const std::vector<std::string>& args, const std::string& log_prefix, double timeout_s = 600) {
    return finish(spawn(args, log_prefix), timeout_s);
}

// ---------------------------------------------------------------------------------------------
// Inputs: a small table whose gene programmes follow the groups, and three gene sets.

constexpr int n_genes = 30;

std::string gene_name(int g) { return "GENE" + std::to_string(g); }

// cells-in-rows CSV (sample,cluster,GENE0..GENE29); line 1 header, line k+1 cell k.
std::string table_text(int cells, std::uint64_t seed = 7, const std::string& eol = "\n") {
    exsal::Rng rng(seed);
    std::string t = "sample,cluster";
    for (int g = 0; g < n_genes; ++g) t += "," + gene_name(g);
    t += eol;
    const char* groups[] = {"A", "B", "C"};
    for (int c = 0; c < cells; ++c) {
        const int k = c % 3;
        t += "cell" + std::to_string(c) + "," + groups[k];
        for (int g = 0; g < n_genes; ++g) {
            const double mean = (g / 10 == k) ? 12.0 : 2.0; // group k expresses set k's genes
            t += "," + std::to_string(rng.poisson(mean));
        }
        t += eol;
    }
    return t;
}

std::string gmt_text(const std::string& eol = "\n") {
    std::string t;
    const char* names[] = {"SET_A", "SET_B", "SET_C"};
    for (int s = 0; s < 3; ++s) {
        t += std::string(names[s]) + "\tprogramme " + std::to_string(s);
        for (int g = 10 * s; g < 10 * s + 10; ++g) t += "\t" + gene_name(g);
        t += eol;
    }
    return t;
}

// Options that keep a run to a second or two.
std::vector<std::string> fast_options(const std::string& table, const std::string& gmt) {
    return {"--expression", table, "--gene-sets", gmt, "--min-genes", "3", "--hidden", "8", "--units", "3",
            "--epochs", "4", "--batch", "16", "--validation-fraction", "0.1", "--validate-every", "2",
            "--threads", "1", "--seed", "3", "--quiet"};
}

// `a` with the options of `b` (name value pairs, or a lone flag) set: a name already in `a` gets
// the new value (an option given twice is an error of its own), others are appended.
std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    for (std::size_t i = 0; i < b.size(); ++i) {
        const bool has_value = i + 1 < b.size() && b[i + 1].rfind("--", 0) != 0;
        const auto at = std::find(a.begin(), a.end(), b[i]);
        if (has_value && at != a.end() && at + 1 != a.end()) {
            *(at + 1) = b[i + 1];
        } else {
            a.push_back(b[i]);
            if (has_value) a.push_back(b[i + 1]);
        }
        if (has_value) ++i;
    }
    return a;
}

// Output folder checks: absent or empty, and no staging folder of ours beside it.
bool holds_nothing(const std::string& out) {
    std::error_code ec;
    return !fs::exists(out) || (fs::is_directory(out) && fs::is_empty(out, ec));
}

// Waits until process `pid` blocks signal `sig` (bit sig - 1 of SigBlk in /proc/<pid>/status);
// false after `timeout_s` or when the process is gone.
bool wait_until_blocked(pid_t pid, int sig, double timeout_s) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < timeout_s) {
        std::ifstream status("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(status, line))
            if (line.rfind("SigBlk:", 0) == 0) {
                const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
                if (mask >> (sig - 1) & 1ull) return true;
            }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

std::vector<std::string> staging_leftovers(const std::string& out) {
    std::vector<std::string> found;
    const fs::path p(out);
    const std::string prefix = "." + p.filename().string() + ".exsal-staging";
    for (const auto& e : fs::directory_iterator(p.parent_path()))
        if (e.path().filename().string().rfind(prefix, 0) == 0) found.push_back(e.path().filename().string());
    return found;
}

std::map<std::string, std::string> folder_files(const std::string& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) files[e.path().filename().string()] = read_bytes(e.path().string());
    return files;
}

// run.json without its "timings_seconds" object (the one part that may differ between runs).
std::string without_timings(const std::string& json) {
    const std::size_t k = json.find("\"timings_seconds\"");
    if (k == std::string::npos) return json;
    const std::size_t open = json.find('{', k), close = json.find('}', open);
    return json.substr(0, k) + json.substr(close + 1);
}

// A NaN or infinity written as text ("nan", "-inf", "Infinity", ...), as a whole word.
bool has_non_finite_text(const std::string& text) {
    const auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const std::string w : {"nan", "inf", "infinity"})
        for (std::size_t at = lower.find(w); at != std::string::npos; at = lower.find(w, at + 1)) {
            const std::size_t end = at + w.size();
            if ((at == 0 || !word_char(lower[at - 1])) && (end == lower.size() || !word_char(lower[end]))) return true;
        }
    return false;
}

// The catalogue's one assertion set (see the top of the file).
struct Case {
    std::string name;
    std::vector<std::string> args;          // without --out
    std::vector<std::string> words;         // all must appear in stderr
};

void expect_refused(const TempDir& tmp, const Case& c, int& index) {
    CAPTURE(c.name);
    const std::string out = tmp.file("out_" + std::to_string(index++));
    const bool has_out = std::find(c.args.begin(), c.args.end(), "--out") != c.args.end();
    const Exit x = run_cli(has_out ? c.args : c.args + std::vector<std::string>{"--out", out}, out, 120);
    INFO("stderr: " << x.err);
    CHECK_FALSE(x.timed_out);
    CHECK(x.exited);
    CHECK(x.code >= 1);
    CHECK(x.code <= 127);
    for (const auto& w : c.words) CHECK_MESSAGE(x.err.find(w) != std::string::npos, "stderr lacks: " << w);
    CHECK(x.err.find("velten_pipeline: error: ") != std::string::npos);
    CHECK(holds_nothing(out));
    CHECK(staging_leftovers(out).empty());
}

// A valid model file (trained by the pipeline itself) for the --model-in cases.
std::string train_model(const TempDir& tmp, const std::string& table, const std::string& gmt) {
    const std::string out = tmp.file("trained");
    const Exit x = run_cli(fast_options(table, gmt) + std::vector<std::string>{"--out", out}, out);
    INFO("stderr: " << x.err);
    REQUIRE(x.exited);
    REQUIRE(x.code == 0);
    return out + "/model.exsal";
}

} // namespace

// ---------------------------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------------------------

TEST_CASE("malformed expression tables: refused with the file and line, --out untouched") {
    if (!pipeline_built()) return;
    TempDir tmp("expression");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string good = table_text(30);
    const std::string header = good.substr(0, good.find('\n') + 1);
    const std::string row1 = good.substr(header.size(), good.find('\n', header.size()) + 1 - header.size());
    std::string fields_of_row1 = row1.substr(0, row1.size() - 1);
    const auto row_with = [&](int field, const std::string& value) { // row 1 with field `field` (1-based) replaced
        std::vector<std::string> f;
        std::size_t a = 0;
        for (;;) {
            const std::size_t b = fields_of_row1.find(',', a);
            f.push_back(fields_of_row1.substr(a, b == std::string::npos ? std::string::npos : b - a));
            if (b == std::string::npos) break;
            a = b + 1;
        }
        f[0] = "cell_bad"; // a new cell: the same id twice is an error of its own
        f[static_cast<std::size_t>(field - 1)] = value;
        std::string r;
        for (std::size_t i = 0; i < f.size(); ++i) r += (i ? "," : "") + f[i];
        return r + "\n";
    };
    int index = 0;
    std::vector<std::pair<std::string, std::string>> files; // name, content
    std::vector<Case> cases;
    const auto file_case = [&](const std::string& name, const std::string& content, std::vector<std::string> words) {
        const std::string path = tmp.file(name);
        write_bytes(path, content);
        for (auto& w : words)
            if (w.rfind("@", 0) == 0) w = path + w.substr(1); // "@:3:" -> "<path>:3:"
        cases.push_back({name, fast_options(path, gmt), words});
    };
    file_case("empty.csv", "", {"@: empty file"});
    file_case("header_only.csv", header, {"@:1: ", "header only"});
    file_case("duplicate_cell.csv", header + row1 + row1, {"@:3:1: ", "duplicate cell id \"cell0\" on lines 2 and 3"});
    file_case("ragged_short.csv", header + row1 + "cellX,A,1,2\n", {"@:3: ", "expected 32 fields", "found 4"});
    file_case("ragged_long.csv", header + row1 + row_with(32, "1,2,3"), {"@:3:33: ", "expected 32 fields", "found 34"});
    file_case("not_a_number.csv", header + row1 + row_with(4, "12abc"), {"@:3:4: ", "\"12abc\" is not a number", "GENE1"});
    file_case("empty_field.csv", header + row1 + row_with(5, ""), {"@:3:5: ", "empty field"});
    file_case("nan.csv", header + row1 + row_with(6, "NaN"), {"@:3:6: ", "not a finite number"});
    file_case("infinity.csv", header + row1 + row_with(7, "inf"), {"@:3:7: ", "not a finite number"});
    file_case("overflow.csv", header + row1 + row_with(8, "1e39"), {"@:3:8: ", "overflow"});
    file_case("negative.csv", header + row1 + row_with(9, "-3"), {"@:3:9: ", "negative"});
    file_case("duplicate_gene.csv", "sample,cluster,GENE0,gene0\nc1,A,1,2\n", {"@:1:4: ", "duplicate gene symbol"});
    file_case("no_id_column.csv", "cell,cluster,GENE0\nc1,A,1\n", {"@:1: ", "no cell id column"});
    file_case("unterminated_quote.csv", header + row1 + row_with(1, "\"cell9"), {"@:3:1: ", "unterminated quoted field"});
    file_case("binary.csv", std::string("\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0", 20), {"@:1:", "binary file"});
    file_case("utf16.csv", std::string("\xff\xfes\0a\0m\0p\0l\0e\0", 14), {"@:1:1: ", "UTF-16"});
    const std::string gz = gzip_member(good);
    file_case("truncated.csv.gz", gz.substr(0, gz.size() / 2), {"@: ", "truncated gzip stream"});
    file_case("fake.csv.gz", "\x1f\x8b" + good, {"@: ", "corrupt gzip data"});
    // Options naming a file that is not there, or a folder.
    cases.push_back({"missing", fast_options(tmp.file("missing.csv"), gmt), {"--expression", tmp.file("missing.csv"), "does not exist"}});
    cases.push_back({"folder", fast_options(tmp.dir.string(), gmt), {"--expression", "is a folder"}});
    for (const auto& c : cases) expect_refused(tmp, c, index);
    CHECK(index >= 19);
}

TEST_CASE("malformed gene-set files: refused with the file and line, --out untouched") {
    if (!pipeline_built()) return;
    TempDir tmp("gmt");
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(30));
    const std::string good = gmt_text();
    std::vector<Case> cases;
    const auto file_case = [&](const std::string& name, const std::string& content, std::vector<std::string> words,
                               std::vector<std::string> extra = {}) {
        const std::string path = tmp.file(name);
        write_bytes(path, content);
        for (auto& w : words)
            if (w.rfind("@", 0) == 0) w = path + w.substr(1);
        cases.push_back({name, fast_options(table, path) + extra, words});
    };
    file_case("empty.gmt", "", {"@: empty file"});
    file_case("two_fields.gmt", good + "SET_D\tonly a description\n", {"@:4: ", "expected at least 3 tab-separated fields"});
    file_case("spaces.gmt", "SET_A programme GENE0 GENE1\n", {"@:1: ", "found 1"});
    file_case("duplicate_set.gmt", good + "SET_B\tagain\tGENE1\n", {"@:4:1: ", "duplicate gene set name", "lines 2 and 4"});
    file_case("no_genes.gmt", good + "SET_D\tdesc\t\t\n", {"@:4: ", "lists no genes"});
    file_case("binary.gmt", std::string("SET_A\td\tGENE0\n\x01\x02\x03\0", 18), {"@:2:1: ", "binary file"});
    const std::string gz = gzip_member(good);
    file_case("truncated.gmt.gz", gz.substr(0, gz.size() - 6), {"@: ", "truncated gzip stream"});
    file_case("prefix.gmt", good, {"@: ", "HALLMARK_"}, {"--gene-set-prefix", "HALLMARK_"});
    cases.push_back({"missing", fast_options(table, tmp.file("missing.gmt")), {"--gene-sets", "does not exist"}});
    int index = 0;
    for (const auto& c : cases) expect_refused(tmp, c, index);
}

TEST_CASE("data that cannot be trained on: no shared genes, nothing left after filtering, too few cells") {
    if (!pipeline_built()) return;
    TempDir tmp("data");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    std::vector<Case> cases;
    // Gene sets of another species: no gene of the table is in any set.
    const std::string mouse = tmp.file("mouse.gmt");
    write_bytes(mouse, "SET_M\tmouse\tGapdh_m\tActb_m\tXist\n");
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(30));
    cases.push_back({"no shared genes", fast_options(table, mouse), {"none of the", "gene sets", "GAPDH_M"}});
    // Counts never above the filter threshold.
    std::string low = "sample,cluster";
    for (int g = 0; g < n_genes; ++g) low += "," + gene_name(g);
    low += "\n";
    for (int c = 0; c < 30; ++c) {
        low += "c" + std::to_string(c) + ",A";
        for (int g = 0; g < n_genes; ++g) low += (g + c) % 3 ? ",1" : ",2";
        low += "\n";
    }
    const std::string low_path = tmp.file("low.csv");
    write_bytes(low_path, low);
    cases.push_back({"nothing left after filtering", fast_options(low_path, gmt), {"no gene has a value > 2"}});
    // Two cells: the validation split cannot hold one out.
    const std::string two = tmp.file("two.csv");
    const std::string t = table_text(2);
    write_bytes(two, t);
    cases.push_back({"too few cells", fast_options(two, gmt), {"2 cells", "validation"}});
    // A --compare group no cell has.
    cases.push_back({"unknown group", fast_options(table, gmt) + std::vector<std::string>{"--compare", "A:Z"},
                     {"--compare", "no cell has the group label 'Z'"}});
    int index = 0;
    for (const auto& c : cases) expect_refused(tmp, c, index);
}

TEST_CASE("single-cell files that cannot be read: the file, the object inside it and the option to change") {
    if (!pipeline_built()) return;
    TempDir tmp("formats");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string fx = std::string(EXSAL_SOURCE_DIR) + "/tests/fixtures/formats/";
    const auto run = [&](const std::string& data, std::vector<std::string> extra) {
        std::vector<std::string> a{"--expression", data, "--gene-sets", gmt, "--epochs", "2"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    };
    std::vector<Case> cases;
    cases.push_back({"scaled X with a raw matrix", run(fx + "anndata08_raw.h5ad", {}),
                     {"anndata08_raw.h5ad: /X: value -", "is negative", "set --layer to raw"}});
    cases.push_back({"a layer that does not exist", run(fx + "anndata08_layers_counts.h5ad", {"--layer", "spliced"}),
                     {"has no layer 'spliced' (layers: counts)"}});
    cases.push_back({"an obs column that does not exist", run(fx + "anndata08_csr_f32.h5ad", {"--group-column", "celltype"}),
                     {"/obs: has no column 'celltype' (columns: ", "donor"}});
    cases.push_back({"--layer on a CSV table", run(fx + "expression.csv", {"--layer", "counts"}),
                     {"--layer", "applies to h5ad files"}});
    cases.push_back({"indptr not monotone", run(fx + "bad/indptr_not_monotone.h5ad", {}), {"/X/indptr: decreases at entry"}});
    cases.push_back({"truncated h5ad", run(fx + "bad/truncated.h5ad", {}), {"truncated.h5ad", "HDF5"}});
    cases.push_back({"an MTX with too many entries", run(fx + "bad/mtx_too_many_entries", {}), {"matrix.mtx"}});
    cases.push_back({"a cell-groups file without the data's cells",
                     run(fx + "10x_mtx_v2", {"--cell-groups", gmt}), {"sets.gmt"}});
    int index = 0;
    for (const auto& c : cases) expect_refused(tmp, c, index);
}

TEST_CASE("malformed model files and a model whose genes do not match: refused, --out untouched") {
    if (!pipeline_built()) return;
    TempDir tmp("model");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(60));
    const std::string model = train_model(tmp, table, gmt);
    const std::string bytes = read_bytes(model);
    REQUIRE(bytes.size() > 100);
    const auto project = [&](const std::string& model_path, const std::string& data) {
        return std::vector<std::string>{"--model-in", model_path, "--expression", data, "--gene-sets", gmt,
                                        "--min-genes", "3", "--threads", "1", "--quiet"};
    };
    std::vector<Case> cases;
    const auto model_case = [&](const std::string& name, const std::string& content, std::vector<std::string> words) {
        const std::string path = tmp.file(name);
        write_bytes(path, content);
        for (auto& w : words)
            if (w.rfind("@", 0) == 0) w = path + w.substr(1);
        cases.push_back({name, project(path, table), words});
    };
    model_case("truncated.exsal", bytes.substr(0, bytes.size() * 2 / 3), {"@: ", "truncated model file"});
    std::string flipped = bytes;
    flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x04);
    model_case("flipped.exsal", flipped, {"@: ", "checksum mismatch"});
    model_case("table_as_model.exsal", read_bytes(table), {"@: ", "not an exsal model file"});
    model_case("empty.exsal", "", {"@: ", "not an exsal model file"});
    {
        exsal::AutoencoderConfig cfg;
        cfg.n_genes = 4;
        cfg.hidden = {3, 2, 3};
        exsal::Autoencoder<float> net(cfg);
        net.initialize(1);
        exsal::save_model(tmp.file("bare.exsal"), net); // a library model without preprocessing state
        cases.push_back({"no preprocessing state", project(tmp.file("bare.exsal"), table),
                         {tmp.file("bare.exsal") + ": ", "no preprocessing state"}});
    }
    cases.push_back({"missing model", project(tmp.file("missing.exsal"), table), {"--model-in", "does not exist"}});
    // Cells whose genes the model does not know.
    std::string other = "sample,cluster,Xist,Hbb,Cd34\nc1,A,1,2,3\nc2,B,4,5,6\n";
    const std::string other_path = tmp.file("other_genes.csv");
    write_bytes(other_path, other);
    cases.push_back({"genes do not match", project(model, other_path), {"none of the model's", "XIST"}});
    // Training options do not apply to a trained model.
    cases.push_back({"training option with --model-in", project(model, table) + std::vector<std::string>{"--lr", "0.1"},
                     {"--lr", "does not apply with --model-in"}});
    int index = 0;
    for (const auto& c : cases) expect_refused(tmp, c, index);
}

TEST_CASE("invalid option values: refused before any work, naming the option") {
    if (!pipeline_built()) return;
    TempDir tmp("options");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(30));
    const auto with = [&](std::vector<std::string> extra) { return fast_options(table, gmt) + extra; };
    const std::vector<Case> cases = {
        {"epochs 0", with({"--epochs", "0"}), {"--epochs"}},
        {"negative lr", with({"--lr", "-0.1"}), {"--lr", "positive"}},
        {"lr not a number", with({"--lr", "fast"}), {"--lr"}},
        {"lr nan", with({"--lr", "nan"}), {"--lr"}},
        {"batch 0", with({"--batch", "0"}), {"--batch"}},
        {"hidden 0", with({"--hidden", "0"}), {"--hidden"}},
        {"units -3", with({"--units", "-3"}), {"--units"}},
        {"validation fraction 0.7", with({"--validation-fraction", "0.7"}), {"--validation-fraction"}},
        {"threads 0", with({"--threads", "0"}), {"--threads"}},
        {"threads huge", with({"--threads", "99999999999"}), {"--threads"}},
        {"seed negative", with({"--seed", "-5"}), {"--seed"}},
        {"loss unknown", with({"--loss", "hinge"}), {"--loss", "hinge"}},
        {"transform unknown", with({"--input-transform", "zscore"}), {"--input-transform"}},
        {"compare without colon", with({"--compare", "AB"}), {"--compare", "A:B"}},
        {"min genes 0", with({"--min-genes", "0"}), {"--min-genes"}},
        {"lambda negative", with({"--lambda-orth", "-1"}), {"--lambda-orth"}},
        {"unknown option", with({"--learning-rate", "0.1"}), {"--learning-rate"}},
        {"expression without gene sets", {"--expression", table, "--quiet"}, {"--gene-sets", "required"}},
        {"empty out", with({"--out", ""}), {"--out"}},
    };
    int index = 0;
    for (const auto& c : cases) expect_refused(tmp, c, index);

    // --out naming a file, and a non-empty folder without --force: refused, contents unchanged.
    const std::string file_out = tmp.file("a_file");
    write_bytes(file_out, "precious\n");
    Exit x = run_cli(with({"--out", file_out}), tmp.file("log_file_out"), 120);
    CHECK(x.exited);
    CHECK(x.code >= 1);
    CHECK(x.code <= 127);
    CHECK(x.err.find("--out") != std::string::npos);
    CHECK(read_bytes(file_out) == "precious\n");
    const std::string full = tmp.file("full");
    fs::create_directories(full);
    write_bytes(full + "/notes.txt", "mine\n");
    write_bytes(full + "/representation.csv", "an older result\n");
    x = run_cli(with({"--out", full}), tmp.file("log_full"), 120);
    INFO("stderr: " << x.err);
    CHECK(x.exited);
    CHECK(x.code >= 1);
    CHECK(x.code <= 127);
    CHECK(x.err.find("--out") != std::string::npos);
    CHECK(x.err.find("--force") != std::string::npos);
    CHECK(folder_files(full) ==
          std::map<std::string, std::string>{{"notes.txt", "mine\n"}, {"representation.csv", "an older result\n"}});
    CHECK(staging_leftovers(full).empty());
}

// ---------------------------------------------------------------------------------------------
// Valid variants, numerics, interruption, determinism
// ---------------------------------------------------------------------------------------------

TEST_CASE("valid variants (CRLF, byte order mark, quoted fields, gzip) give the same results as the plain files") {
    if (!pipeline_built()) return;
    TempDir tmp("variants");
    const std::string plain = table_text(60);
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    // CRLF + BOM + quoted fields (ids, labels, numbers, a header field) in one table.
    std::string variant = "\xef\xbb\xbf" + table_text(60, 7, "\r\n");
    variant.replace(variant.find("sample"), 6, "\"sample\"");
    for (const char* g : {",A,", ",B,", ",C,"}) {
        std::size_t at = 0;
        while ((at = variant.find(g, at)) != std::string::npos) {
            variant.replace(at, 3, std::string(",\"") + g[1] + "\",");
            at += 5;
        }
    }
    const std::string gmt_variant = tmp.file("sets_crlf_bom.gmt");
    write_bytes(gmt_variant, "\xef\xbb\xbf" + gmt_text("\r\n"));
    const std::map<std::string, std::pair<std::string, std::string>> inputs = {
        {"plain", {plain, gmt}},
        {"crlf_bom_quoted", {variant, gmt_variant}},
        {"gzip", {gzip_member(plain), gmt}},
    };
    std::map<std::string, std::map<std::string, std::string>> results;
    for (const auto& name_files : inputs) {
        const auto& name = name_files.first;
        const auto& files = name_files.second;
        CAPTURE(name);
        const std::string table = tmp.file(name + (name == "gzip" ? ".csv.gz" : ".csv"));
        write_bytes(table, files.first);
        const std::string out = tmp.file("out");
        fs::remove_all(out);
        const Exit x = run_cli(fast_options(table, files.second) + std::vector<std::string>{"--out", out}, tmp.file(name));
        INFO("stderr: " << x.err);
        REQUIRE(x.exited);
        REQUIRE(x.code == 0);
        auto f = folder_files(out);
        f.erase("run.json");     // names the input files
        f.erase("results.h5ad"); // so does its uns/exsal (source, parameters)
        // The model file records the gene-set file's name: compare what it holds instead.
        const auto model = exsal::load_model<float>(out + "/model.exsal");
        const auto prep = exsal::Preprocessor::deserialize(model.preprocessing, out + "/model.exsal");
        exsal::detail::ByteWriter w;
        w.f64s(model.model.parameters());
        w.strings(prep.genes());
        w.u32(static_cast<std::uint32_t>(prep.input_transform()));
        w.f64s(prep.minimum());
        w.f64s(prep.maximum());
        f["model.exsal"] = w.take();
        results[name] = f;
    }
    CHECK(results["plain"].size() >= 9);
    check_same_files(results["crlf_bom_quoted"], results["plain"]);
    check_same_files(results["gzip"], results["plain"]);
}

TEST_CASE("a diverging run (learning rate far too high) stops with a clear error and writes nothing") {
    if (!pipeline_built()) return;
    TempDir tmp("diverge");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(60));
    for (const char* lr : {"1e6", "1e30"}) {
        CAPTURE(lr);
        const std::string out = tmp.file(std::string("out_") + lr);
        auto args = fast_options(table, gmt) + std::vector<std::string>{"--lr", lr, "--epochs", "50", "--out", out};
        const Exit x = run_cli(args, out);
        INFO("stderr: " << x.err);
        CHECK(x.exited);
        CHECK(x.code >= 1);
        CHECK(x.code <= 127);
        CHECK(x.err.find("diverged") != std::string::npos);
        CHECK(x.err.find("learning rate") != std::string::npos);
        CHECK(holds_nothing(out));
        CHECK(staging_leftovers(out).empty());
    }
}

TEST_CASE("all-zero cells and genes run through; no output holds a NaN or an infinity") {
    if (!pipeline_built()) return;
    TempDir tmp("zeros");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    // Cells 0 and 7 have no counts; GENE3 and GENE25 are never expressed.
    std::string t = table_text(60);
    std::vector<std::string> lines;
    for (std::size_t a = 0, b; (b = t.find('\n', a)) != std::string::npos; a = b + 1) lines.push_back(t.substr(a, b - a));
    std::string z;
    for (std::size_t l = 0; l < lines.size(); ++l) {
        std::vector<std::string> f;
        for (std::size_t a = 0, b;; a = b + 1) {
            b = lines[l].find(',', a);
            f.push_back(lines[l].substr(a, b == std::string::npos ? std::string::npos : b - a));
            if (b == std::string::npos) break;
        }
        for (std::size_t k = 2; l > 0 && k < f.size(); ++k)
            if (l == 1 || l == 8 || k == 2 + 3 || k == 2 + 25) f[k] = "0";
        for (std::size_t k = 0; k < f.size(); ++k) z += (k ? "," : "") + f[k];
        z += "\n";
    }
    const std::string table = tmp.file("zeros.csv");
    write_bytes(table, z);
    for (const char* transform : {"none", "log1p", "minmax", "cpm-log1p"}) {
        CAPTURE(transform);
        const std::string out = tmp.file(std::string("out_") + transform);
        const Exit x = run_cli(fast_options(table, gmt) + std::vector<std::string>{"--input-transform", transform, "--out", out}, out);
        INFO("stderr: " << x.err);
        REQUIRE(x.exited);
        REQUIRE(x.code == 0);
        for (const auto& name_content : folder_files(out)) {
            const auto& name = name_content.first;
            const auto& content = name_content.second;
            if (name.size() > 3 && name.substr(name.size() - 3) == ".gz") continue;
            if (name == "model.exsal") {
                CHECK(exsal::load_model<float>(out + "/" + name).model.parameters().allFinite());
                continue;
            }
            CAPTURE(name);
            CHECK_FALSE(has_non_finite_text(content));
        }
        const std::string rep = read_bytes(out + "/representation.csv");
        CHECK(rep.find("cell0,") != std::string::npos); // the empty cells are projected like the others
        CHECK(rep.find("cell7,") != std::string::npos);
    }
}

TEST_CASE("a run killed at any moment leaves no partial file under a final name") {
    if (!pipeline_built()) return;
    TempDir tmp("kill");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(600));
    const auto args = [&](const std::string& seed, const std::string& out, bool force) {
        auto a = fast_options(table, gmt) + std::vector<std::string>{"--epochs", "60", "--patience", "0", "--seed", seed, "--out", out};
        if (force) a.push_back("--force");
        return a;
    };
    // Two complete references: the folder before (seed 1) and the one a finished run writes (seed 2).
    const std::string before = tmp.file("before"), after = tmp.file("after");
    Exit x = run_cli(args("1", before, false), before);
    REQUIRE(x.code == 0);
    x = run_cli(args("2", after, false), after);
    REQUIRE(x.code == 0);
    const double full_run = x.seconds;
    const auto old_files = folder_files(before), new_files = folder_files(after);
    REQUIRE(old_files.size() >= 9);
    REQUIRE(old_files.at("model.exsal") != new_files.at("model.exsal"));

    int killed = 0;
    std::set<std::string> states; // what the kills found: "untouched", "complete", "mixed"
    for (double fraction : {0.05, 0.3, 0.6, 0.85, 0.95, 1.0, 1.05}) {
        CAPTURE(fraction);
        // Into a fresh folder: afterwards absent or exactly the finished result.
        const std::string fresh = tmp.file("fresh");
        fs::remove_all(fresh);
        // Over an earlier result with --force: each file is the old one or the new one, whole.
        const std::string merged = tmp.file("merged");
        fs::remove_all(merged);
        fs::copy(before, merged, fs::copy_options::recursive);
        for (const auto& out_force : {std::pair<std::string, bool>{fresh, false}, {merged, true}}) {
            const auto& out = out_force.first;
            const auto& force = out_force.second;
            CAPTURE(out);
            const Child c = spawn(args("2", out, force), out);
            std::this_thread::sleep_for(std::chrono::duration<double>(fraction * full_run));
            killed += ::kill(c.pid, SIGKILL) == 0;
            const Exit k = finish(c, 600);
            CHECK((!k.exited || k.code == 0)); // killed, or it had finished
            if (!fs::exists(out)) {
                CHECK(!force);
                states.insert("untouched");
                continue;
            }
            const auto files = folder_files(out);
            bool all_new = true, all_old = true;
            for (const auto& name_content : files) {
                const auto& name = name_content.first;
                const auto& content = name_content.second;
                CAPTURE(name);
                const bool is_old = force && old_files.count(name) && old_files.at(name) == content;
                const bool is_new = new_files.count(name) &&
                                    (name == "run.json" ? without_timings(content).size() > 100 &&
                                                              content.find("\"timings_seconds\"") != std::string::npos &&
                                                              content.back() == '\n'
                                                        : new_files.at(name) == content);
                CHECK((is_old || is_new));
                all_new = all_new && is_new;
                all_old = all_old && is_old;
            }
            if (force) CHECK(files.size() == old_files.size());
            else CHECK(files.size() == new_files.size());
            states.insert(all_old ? "untouched" : all_new ? "complete" : "mixed");
            // The model under its final name always loads.
            CHECK(exsal::load_model<float>(out + "/model.exsal").model.parameters().allFinite());
        }
        // A kill cannot clean up: its staging folder stays beside the target, under a hidden
        // name that no final name matches; the next run from the same process id reuses it.
        for (const std::string& out : {fresh, merged})
            for (const auto& name : staging_leftovers(out)) fs::remove_all(fs::path(out).parent_path() / name);
    }
    CHECK(killed >= 1);
    CHECK(states.count("untouched") == 1); // early kills left the targets as they were
    MESSAGE("kill outcomes seen: " << [&] {
        std::string s;
        for (const auto& st : states) s += st + " ";
        return s;
    }());
}

TEST_CASE("SIGTERM, SIGINT or SIGHUP at any moment: ends by the signal, no staging folder left, --out as before") {
    if (!pipeline_built()) return;
    TempDir tmp("term");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(600));
    const auto args = [&](const std::string& out) {
        return fast_options(table, gmt) + std::vector<std::string>{"--epochs", "60", "--patience", "0", "--out", out};
    };
    const std::string reference = tmp.file("reference");
    const Exit full = run_cli(args(reference), reference);
    REQUIRE(full.code == 0);
    const auto finished = folder_files(reference);
    int stopped = 0;
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        for (double fraction : {0.0, 0.02, 0.1, 0.5, 0.9, 1.0})
            for (bool merge : {false, true}) {
                CAPTURE(sig);
                CAPTURE(fraction);
                CAPTURE(merge);
                const std::string out = tmp.file("out");
                fs::remove_all(out);
                std::vector<std::string> a = args(out);
                if (merge) { // an existing --out with a file of the user's, replaced with --force
                    fs::create_directories(out);
                    write_bytes(out + "/notes.txt", "mine");
                    a.push_back("--force");
                }
                const Child c = spawn(a, out);
                // Between fork and the pipeline's first line the signal would still have its
                // default action: wait until the process blocks it (SigBlk in /proc/<pid>/status).
                REQUIRE(wait_until_blocked(c.pid, sig, 60.0));
                std::this_thread::sleep_for(std::chrono::duration<double>(fraction * full.seconds));
                REQUIRE(::kill(c.pid, sig) == 0);
                const Exit x = finish(c, 600);
                // Ended by the signal itself (after removing its staging folder), or it had finished.
                CHECK(((!x.exited && x.signal == sig) || (x.exited && x.code == 0)));
                CHECK(staging_leftovers(out).empty());
                for (const auto& name : staging_leftovers(out)) fs::remove_all(fs::path(out).parent_path() / name);
                if (!x.exited) ++stopped;
                if (x.exited) REQUIRE(fs::exists(out));
                // --out: as before (absent, or only the user's file), or with the complete output
                // (the signal came while it was being moved into place, or after the run).
                std::map<std::string, std::string> now = fs::exists(out) ? folder_files(out) : std::map<std::string, std::string>{};
                if (merge) {
                    REQUIRE(now.count("notes.txt") == 1);
                    CHECK(now.at("notes.txt") == "mine");
                    now.erase("notes.txt");
                }
                CHECK((now.empty() || now.size() == finished.size()));
            }
    CHECK(stopped >= 6);
}

TEST_CASE("same seed and thread count: identical output files (run.json apart from its timings)") {
    if (!pipeline_built()) return;
    TempDir tmp("determinism");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(120));
    const std::string out = tmp.file("out");
    std::vector<std::map<std::string, std::string>> runs;
    for (int r = 0; r < 2; ++r) {
        fs::remove_all(out);
        const Exit x = run_cli(fast_options(table, gmt) + std::vector<std::string>{"--threads", "2", "--epochs", "12",
                                                                                "--compare", "A:B", "--out", out},
                               tmp.file("log" + std::to_string(r)));
        INFO("stderr: " << x.err);
        REQUIRE(x.code == 0);
        runs.push_back(folder_files(out));
    }
    REQUIRE(runs[0].size() == runs[1].size());
    for (const auto& name_content : runs[0]) {
        const auto& name = name_content.first;
        const auto& content = name_content.second;
        CAPTURE(name);
        REQUIRE(runs[1].count(name) == 1);
        if (name == "run.json")
            CHECK(without_timings(content) == without_timings(runs[1].at(name)));
        else
            CHECK(content == runs[1].at(name));
    }
    // Another thread count may change the last bits: large products are split over the threads
    // (split_product in nn/dense.hpp) and Eigen chooses its blocking from each slice's shape.
    // The check itself can fail: a different seed changes the model.
    fs::remove_all(out);
    const Exit x = run_cli(fast_options(table, gmt) + std::vector<std::string>{"--threads", "2", "--epochs", "12",
                                                                            "--compare", "A:B", "--seed", "4", "--out", out},
                           tmp.file("log_seed4"));
    REQUIRE(x.code == 0);
    CHECK(read_bytes(out + "/model.exsal") != runs[0].at("model.exsal"));
}

// ---------------------------------------------------------------------------------------------
// Errors found only once the data is read (by the reader or a preprocessing step) name the
// command-line option or the file the user has to change, not the library function or option
// that found them (library errors are typed; the pipeline maps their subject and hints to options and files).
// ---------------------------------------------------------------------------------------------

TEST_CASE("data-dependent errors name the option or file to change" *
          doctest::skip(!fs::exists(pipeline_binary))) {
    TempDir tmp("gaps");
    const std::string gmt = tmp.file("sets.gmt");
    write_bytes(gmt, gmt_text());
    const std::string table = tmp.file("table.csv");
    write_bytes(table, table_text(30));
    const auto stderr_of = [&](const std::vector<std::string>& args, const std::string& name) {
        return run_cli(args + std::vector<std::string>{"--out", tmp.file("out_" + name)}, tmp.file(name), 120).err;
    };
    const std::string no_id = tmp.file("no_id.csv");
    write_bytes(no_id, "cell,cluster,GENE0\nc1,A,1\n");
    CHECK(stderr_of(fast_options(no_id, gmt), "no_id").find("--id-column") != std::string::npos);
    const std::string mouse = tmp.file("mouse.gmt");
    write_bytes(mouse, "SET_M\tmouse\tGapdh_m\tActb_m\tXist\n");
    CHECK(stderr_of(fast_options(table, mouse), "mouse").find(mouse) != std::string::npos);
    const std::string two = tmp.file("two.csv");
    write_bytes(two, table_text(2));
    CHECK(stderr_of(fast_options(two, gmt), "two").find("--validation-fraction") != std::string::npos);
    const std::string ones = tmp.file("ones.csv");
    write_bytes(ones, "sample,cluster,GENE0,GENE1\nc1,A,1,1\nc2,A,1,1\nc3,B,2,1\n");
    CHECK(stderr_of(fast_options(ones, gmt) + std::vector<std::string>{"--validation-fraction", "0"}, "ones")
              .find("--min-gene-max") != std::string::npos);
    // Projection of cells that share no gene with the model: the cells' file is not named.
    const std::string model_dir = tmp.file("trained");
    REQUIRE(run_cli(fast_options(table, gmt) + std::vector<std::string>{"--out", model_dir}, model_dir).code == 0);
    const std::string other = tmp.file("other_genes.csv");
    write_bytes(other, "sample,cluster,Xist,Hbb\nc1,A,1,2\nc2,B,4,5\n");
    CHECK(stderr_of({"--model-in", model_dir + "/model.exsal", "--expression", other, "--gene-sets", gmt, "--quiet"}, "other")
              .find(other) != std::string::npos);
}
