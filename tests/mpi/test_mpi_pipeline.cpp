// velten_pipeline under mpiexec (2 processes, one thread each) against the same run in one
// process: exit code, every output file with the same header, rows and row keys, the loss curves
// within 1 % over 20 epochs, run.json's process count, messages printed once; the same from a file
// that each process reads only its share of; an error on every process reported once; a process
// killed mid-run ends the run and leaves --out as it was.
// The binary and the launcher come from CMake (tests/mpi/CMakeLists.txt).
#include <doctest/doctest.h>

#include "test_files.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using exsal_test::read_bytes;
using exsal_test::TempDir;

namespace {

const std::string binary = EXSAL_PIPELINE_BINARY;
const std::string launcher = std::string("'") + EXSAL_MPIEXEC + "' " + EXSAL_MPIEXEC_NUMPROC_FLAG + " 2 " + EXSAL_MPIEXEC_FLAGS;

struct Run {
    int code = -1;
    std::string out, err;
};

// Runs `command` (a shell command line) with its output in files of `dir`.
Run run(const std::string& command, const TempDir& dir, const std::string& tag) {
    const std::string out = dir.file(tag + ".stdout"), err = dir.file(tag + ".stderr");
    const int status = std::system((command + " > '" + out + "' 2> '" + err + "'").c_str());
    Run r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_bytes(out);
    r.err = read_bytes(err);
    return r;
}

std::string pipeline(const std::string& args) { return "OMP_NUM_THREADS=1 '" + binary + "' " + args; }
std::string on_two_processes(const std::string& args) { return "OMP_NUM_THREADS=1 " + launcher + " '" + binary + "' " + args; }

// The files under `root`, relative, sorted.
std::vector<std::string> files_under(const fs::path& root) {
    std::vector<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file()) names.push_back(fs::relative(e.path(), root).string());
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// The first field of each line (the row key: cell, set, unit, group or gene).
std::vector<std::string> keys(const std::vector<std::string>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.substr(0, r.find(',')));
    return out;
}

// Every number after "name": in a JSON text, in order.
std::vector<double> json_numbers(const std::string& text, const std::string& name) {
    std::vector<double> v;
    const std::regex pattern("\"" + name + "\": *(-?[0-9][0-9.eE+-]*)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it)
        v.push_back(std::stod((*it)[1].str()));
    return v;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

const std::string small = " --simulate-cells 600 --simulate-genes 500 --hidden 32 --units 8 --epochs 20 --label-permutations 199"
                          " --threads 1 --seed 5";

} // namespace

TEST_CASE("mpiexec -n 2 velten_pipeline writes the outputs of one process: files, rows, keys, losses within 1 %") {
    TempDir dir("same");
    const Run one = run(pipeline(small + " --quiet --out '" + dir.file("one") + "'"), dir, "one");
    const Run two = run(on_two_processes(small + " --out '" + dir.file("two") + "'"), dir, "two");
    REQUIRE_MESSAGE(one.code == 0, one.err);
    REQUIRE_MESSAGE(two.code == 0, two.err);
    // The first process alone speaks: one summary, each stage announced once.
    CHECK(count(two.out, "Data: built-in simulation") == 1);
    CHECK(count(two.err, "] train\n") == 1);

    const std::vector<std::string> files = files_under(dir.file("one"));
    CHECK(files_under(dir.file("two")) == files);
    CHECK(files.size() >= 12);
    for (const std::string& f : files) {
        if (f.size() < 4 || f.compare(f.size() - 4, 4, ".csv") != 0) continue;
        INFO(f);
        const std::vector<std::string> a = lines(read_bytes(dir.file("one/" + f))), b = lines(read_bytes(dir.file("two/" + f)));
        REQUIRE(a.size() == b.size());
        REQUIRE(!a.empty());
        CHECK(a[0] == b[0]); // header
        CHECK(keys(a) == keys(b));
    }
    const std::string json_one = read_bytes(dir.file("one/run.json")), json_two = read_bytes(dir.file("two/run.json"));
    CHECK(json_numbers(json_one, "processes") == std::vector<double>{1});
    CHECK(json_numbers(json_two, "processes") == std::vector<double>{2});
    for (double t : json_numbers(json_two, "threads")) CHECK(t == 1); // the parameter and the threads per process
    // The same global batches: the loss curves agree to the float rounding of the sums, grown over the steps.
    const std::vector<double> loss_one = json_numbers(json_one, "train_loss"), loss_two = json_numbers(json_two, "train_loss");
    REQUIRE(loss_one.size() == 20);
    REQUIRE(loss_two.size() == loss_one.size());
    double worst = 0.0;
    for (std::size_t e = 0; e < loss_one.size(); ++e) worst = std::max(worst, std::abs(loss_two[e] / loss_one[e] - 1.0));
    MESSAGE("20 epochs on 2 processes: largest relative difference of the training loss " << worst);
    CHECK(worst < 0.01);
    // The interpretation of all cells: the same cell and group counts.
    CHECK(json_numbers(json_two, "cells") == json_numbers(json_one, "cells"));
}

// The numeric fields of a CSV table's rows after the header, in order (text fields skipped).
std::vector<double> table_numbers(const std::string& text) {
    std::vector<double> v;
    const std::vector<std::string> rows = lines(text);
    for (std::size_t r = 1; r < rows.size(); ++r) {
        std::istringstream in(rows[r]);
        for (std::string field; std::getline(in, field, ',');) {
            char* end = nullptr;
            const double x = std::strtod(field.c_str(), &end);
            if (!field.empty() && end == field.c_str() + field.size()) v.push_back(x);
        }
    }
    return v;
}

TEST_CASE("mpiexec -n 2 velten_pipeline on a file: each process reads its share of the cells, the run matches one process") {
    TempDir dir("file");
    // The data: the built-in simulation as the pipeline writes it (a gzip CSV and its gene sets).
    const Run sim = run(pipeline(" --simulate-cells 600 --simulate-genes 500 --hidden 32 --units 8 --epochs 1 --threads 1 --seed 5"
                                 " --quiet --out '" + dir.file("sim") + "'"), dir, "sim");
    REQUIRE_MESSAGE(sim.code == 0, sim.err);
    const std::string input = " --expression '" + dir.file("sim/simulated_expression.csv.gz") + "' --gene-sets '" +
                              dir.file("sim/synthetic_gene_sets.gmt") + "' --gene-set-prefix SIM_"
                              " --hidden 32 --units 8 --epochs 20 --label-permutations 199 --threads 1 --seed 5";
    const Run one = run(pipeline(input + " --out '" + dir.file("one") + "'"), dir, "one");
    const Run two = run(on_two_processes(input + " --out '" + dir.file("two") + "'"), dir, "two");
    REQUIRE_MESSAGE(one.code == 0, one.err);
    REQUIRE_MESSAGE(two.code == 0, two.err);
    CHECK_MESSAGE((two.out + two.err).find("each of the 2 processes holds the values of its share of the cells (process 0: 300 cells") !=
                      std::string::npos, two.err);
    const std::vector<std::string> files = files_under(dir.file("one"));
    CHECK(files_under(dir.file("two")) == files);
    for (const std::string& f : files) {
        if (f.size() < 4 || f.compare(f.size() - 4, 4, ".csv") != 0) continue;
        INFO(f);
        const std::vector<std::string> a = lines(read_bytes(dir.file("one/" + f))), b = lines(read_bytes(dir.file("two/" + f)));
        REQUIRE(a.size() == b.size());
        CHECK(a[0] == b[0]);
        CHECK(keys(a) == keys(b));
    }
    const std::string json_one = read_bytes(dir.file("one/run.json")), json_two = read_bytes(dir.file("two/run.json"));
    // The same preprocessing (gene filter over every process's cells, min-max and centre combined)
    // and the same global batches: the same genes and split, the losses to float rounding.
    for (const std::string key : {"genes_removed_by_filter", "genes_removed_by_gene_sets", "cells_train", "cells_validation"}) {
        INFO(key);
        CHECK(json_numbers(json_two, key) == json_numbers(json_one, key));
    }
    const std::vector<double> loss_one = json_numbers(json_one, "train_loss"), loss_two = json_numbers(json_two, "train_loss");
    REQUIRE(loss_one.size() == 20);
    REQUIRE(loss_two.size() == loss_one.size());
    CHECK(std::abs(loss_two[0] / loss_one[0] - 1.0) < 1e-5); // the first epoch: rounding only
    double worst = 0.0;
    for (std::size_t e = 0; e < loss_one.size(); ++e) worst = std::max(worst, std::abs(loss_two[e] / loss_one[e] - 1.0));
    MESSAGE("20 epochs on 2 processes reading their shares: largest relative difference of the training loss " << worst);
    CHECK(worst < 0.01);
    // The representation of every cell, from both processes' shares.
    const std::vector<double> r1 = table_numbers(read_bytes(dir.file("one/representation.csv"))),
                              r2 = table_numbers(read_bytes(dir.file("two/representation.csv")));
    REQUIRE(r1.size() == r2.size());
    double scale = 0.0, diff = 0.0;
    for (std::size_t i = 0; i < r1.size(); ++i) {
        scale = std::max(scale, std::abs(r1[i]));
        diff = std::max(diff, std::abs(r1[i] - r2[i]));
    }
    MESSAGE("representation: largest difference " << diff << " of values up to " << scale);
    CHECK(scale > 0.0);
    CHECK(diff <= 1e-3 * scale);
}

TEST_CASE("mpiexec -n 2 velten_pipeline: an error every process meets is reported once, with the exit code") {
    TempDir dir("errors");
    const Run missing = run(on_two_processes("--quiet --expression '" + dir.file("absent.csv") + "' --gene-sets '" +
                                             dir.file("absent.gmt") + "' --out '" + dir.file("out") + "'"),
                            dir, "missing");
    CHECK(missing.code != 0);
    CHECK_MESSAGE(count(missing.err, "velten_pipeline: error") == 1, missing.err);
    CHECK_MESSAGE(missing.err.find("absent") != std::string::npos, missing.err);
    CHECK_FALSE(fs::exists(dir.file("out")));
    const Run usage = run(on_two_processes("--epochs zero"), dir, "usage");
    CHECK(usage.code == 2);
    CHECK_MESSAGE(count(usage.err, "velten_pipeline: error") == 1, usage.err);
}

TEST_CASE("mpiexec -n 2 velten_pipeline: a process killed mid-run ends the run and leaves --out as it was") {
    TempDir dir("killed");
    fs::create_directories(dir.file("out"));
    exsal_test::write_bytes(dir.file("out/mine.txt"), "the user's file\n");
    // Rank 1 (Open MPI: OMPI_COMM_WORLD_RANK, MPICH: PMI_RANK in its environment) is killed once
    // training runs; --force would let a finished run replace --out.
    const std::string args = " --simulate-cells 3000 --simulate-genes 800 --epochs 200 --threads 1 --quiet --force --out '" +
                             dir.file("out") + "'";
    const std::string script = on_two_processes(args) + " & launcher=$!\n"
                               "for i in $(seq 1 300); do\n"
                               "  for p in $(pgrep -f '" + dir.file("out") + "'); do\n"
                               "    if tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -Eq '^(OMPI_COMM_WORLD_RANK|PMI_RANK)=1$'; then\n"
                               "      sleep 2; kill -9 $p; wait $launcher; exit $?\n"
                               "    fi\n"
                               "  done\n"
                               "  sleep 0.1\n"
                               "done\n"
                               "kill $launcher; wait $launcher; exit 99\n";
    exsal_test::write_bytes(dir.file("kill.sh"), script);
    const Run killed = run("bash '" + dir.file("kill.sh") + "'", dir, "killed");
    CHECK_MESSAGE(killed.code != 0, killed.err);
    CHECK_MESSAGE(killed.code != 99, "rank 1 was never found: " << killed.err);
    CHECK(exsal_test::read_bytes(dir.file("out/mine.txt")) == "the user's file\n");
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(dir.file("out"))) left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{"mine.txt"});
}
