// velten_pipeline: the whole method of Kinalis et al. (2019) on one data set, from the command line.
//
//   velten_pipeline                               built-in haematopoiesis-like data, about a minute
//   velten_pipeline --expression velten.csv.gz --gene-sets h.all.v6.2.symbols.gmt
//                   --gene-set-prefix HALLMARK_ --out velten
//   velten_pipeline --model-in velten/model.exsal --expression new_cells.csv --gene-sets h.all.v6.2.symbols.gmt
//                   --out new_cells
//
// The stages live in include/exsal/pipeline/ (run_pipeline); this file parses the command line
// (CLI11), shows progress and prints a short summary. Exit codes: 0 success, 2 invalid command
// line (every option is checked before any work), 1 anything that fails while running. SIGINT,
// SIGTERM and SIGHUP end the run by that signal (a shell shows 128 + N) after its staging folder
// is removed, so --out is left as it was (or holds the complete output, if the signal came while
// it was being moved into place).

#include "exsal/core/cpu.hpp"
#include "exsal/pipeline/run.hpp"
#if EXSAL_WITH_MPI
#include "exsal/mpi/mpi.hpp"
#endif

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <ostream>
#include <new>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr const char* program_name = "velten_pipeline";

// Progress on stderr: a one-line bar on a terminal, plain lines every few epochs otherwise,
// nothing when quiet.
class Progress {
public:
    Progress(bool quiet, bool terminal) : m_quiet(quiet), m_terminal(terminal) {}

    void stage(const std::string& name) {
        if (m_quiet) return;
        end_bar();
        std::cerr << "[" << clock() << "] " << name << "\n";
        m_pass_start = std::chrono::steady_clock::now();
        m_last_done = 0;
    }
    void epoch(const exsal::EpochInfo& e) {
        if (m_quiet) return;
        if (std::isfinite(e.validation_loss)) m_validation = e.validation_loss;
        const int done = e.epoch + 1;
        const double eta = e.seconds / done * (e.max_epochs - done);
        if (m_terminal) {
            char line[200];
            std::snprintf(line, sizeof line, "\r  %s epoch %d/%d  train %.5g  validation %s  ETA %s (at most)\033[K",
                          bar(static_cast<double>(done) / e.max_epochs).c_str(), done, e.max_epochs, e.train_loss,
                          validation_text().c_str(), duration(eta).c_str());
            std::cerr << line << std::flush;
            m_bar_open = true;
        } else if (done == 1 || done % 10 == 0 || done == e.max_epochs) {
            char line[200];
            std::snprintf(line, sizeof line, "  epoch %d/%d  train loss %.6g  validation loss %s  orthogonality %.3g  %.1f s",
                          done, e.max_epochs, e.train_loss, validation_text().c_str(), e.orthogonality_error, e.seconds);
            std::cerr << line << "\n";
        }
    }
    // Within an epoch (long on large data): cells/s and the epoch's time left, on a terminal at
    // most 5 times a second, in a log every 30 s.
    void batch(const exsal::BatchInfo& b) {
        if (m_quiet) return;
        const auto now = std::chrono::steady_clock::now();
        if (b.batch == 0) {
            m_epoch_start = now;
            m_epoch_cells = 0;
        }
        m_epoch_cells += b.cells;
        if (b.batch == 0 || b.batch + 1 == b.batches || !due(now)) return;
        const double seconds = std::chrono::duration<double>(now - m_epoch_start).count();
        const double rate = seconds > 0.0 ? static_cast<double>(m_epoch_cells) / seconds : 0.0;
        const double left = seconds / static_cast<double>(b.batch + 1) * static_cast<double>(b.batches - b.batch - 1);
        char line[200];
        std::snprintf(line, sizeof line, "epoch %d: batch %lld/%lld  %.0f cells/s  epoch ends in %s", b.epoch + 1,
                      static_cast<long long>(b.batch + 1), static_cast<long long>(b.batches), rate, duration(left).c_str());
        show(line);
    }
    // Interpretation: cells done of each gradient pass, cells/s and time left.
    void cells(exsal::Index done, exsal::Index total) {
        if (m_quiet || done <= 0) return;
        const auto now = std::chrono::steady_clock::now();
        if (done < m_last_done) m_pass_start = now; // a new pass began
        m_last_done = done;
        if (done == total || !due(now)) return;
        const double seconds = std::chrono::duration<double>(now - m_pass_start).count();
        const double rate = seconds > 0.0 ? static_cast<double>(done) / seconds : 0.0;
        const double eta = rate > 0.0 ? static_cast<double>(total - done) / rate : 0.0;
        char line[200];
        std::snprintf(line, sizeof line, "%s saliency %lld/%lld cells  %.0f cells/s  pass ends in %s",
                      bar(static_cast<double>(done) / static_cast<double>(total)).c_str(), static_cast<long long>(done),
                      static_cast<long long>(total), rate, duration(eta).c_str());
        show(line);
    }
    void note(const std::string& message) {
        if (m_quiet) return;
        end_bar();
        std::cerr << "  note: " << message << "\n";
    }
    // Whether a progress line is due: on a terminal every 0.2 s, in a log every 30 s.
    bool due(std::chrono::steady_clock::time_point now) {
        if (std::chrono::duration<double>(now - m_last_line).count() < (m_terminal ? 0.2 : 30.0)) return false;
        m_last_line = now;
        return true;
    }
    void show(const char* line) {
        if (m_terminal) {
            std::cerr << "\r  " << line << "\033[K" << std::flush;
            m_bar_open = true;
        } else {
            std::cerr << "  " << line << "\n";
        }
    }
    void end_bar() {
        if (m_bar_open) std::cerr << "\n";
        m_bar_open = false;
    }

private:
    static std::string bar(double fraction) {
        const int width = 24, filled = static_cast<int>(fraction * width + 0.5);
        return "[" + std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(width - filled), '.') + "]";
    }
    static std::string duration(double seconds) {
        const long s = static_cast<long>(seconds + 0.5);
        char text[32];
        std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
        return text;
    }
    std::string validation_text() const {
        if (!std::isfinite(m_validation)) return "-";
        char text[32];
        std::snprintf(text, sizeof text, "%.5g", m_validation);
        return text;
    }
    std::string clock() const {
        return duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count());
    }

    bool m_quiet, m_terminal;
    bool m_bar_open = false;
    double m_validation = std::numeric_limits<double>::quiet_NaN();
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point m_epoch_start = m_start, m_pass_start = m_start, m_last_line = m_start;
    exsal::Index m_epoch_cells = 0, m_last_done = 0;
};

struct CommandLine {
    exsal::PipelineConfig config;
    int exit_code = -1; // >= 0: stop with this code (help shown or error printed)
};

// The command line is made from the option table (exsal/pipeline/options.hpp): every option's
// text is bound here and handed to the table's parser, so names, help, defaults and checks live
// in one place.
// Messages (errors, --help) go to `err` and `out`: those of the first process only in a
// data-parallel run, whose processes all parse the same command line.
CommandLine parse_command_line(int argc, char** argv, std::ostream& err, std::ostream& out) {
    CommandLine cl;
    exsal::PipelineConfig& c = cl.config;
    c.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    CLI::App app{"Trains an orthogonality-regularised autoencoder on single-cell expression and explains its "
                 "representation units by saliency maps aggregated over gene sets (Kinalis et al. 2019). Without "
                 "--expression it runs on built-in simulated haematopoiesis data with planted gene programmes.",
                 program_name};
    app.get_formatter()->column_width(40);

    const std::vector<exsal::PipelineOption>& table = exsal::pipeline_options();
    std::vector<std::string> values(table.size());
    std::vector<std::vector<std::string>> lists(table.size());
    std::vector<CLI::Option*> bound(table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        const exsal::PipelineOption& o = table[i];
        CLI::Option* opt = nullptr;
        if (o.kind == exsal::OptionKind::flag) {
            opt = app.add_flag(o.name, o.help); // given or not: count()
        } else if (o.kind == exsal::OptionKind::list) {
            opt = app.add_option(o.name, lists[i], o.help);
        } else {
            opt = app.add_option(o.name, values[i], o.help);
        }
        opt->group(o.group);
        if (!o.value_name.empty()) opt->type_name(o.value_name);
        const std::string shown = exsal::option_default_text(o);
        if (!shown.empty() && o.kind != exsal::OptionKind::flag) opt->default_str(shown);
        bound[i] = opt;
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
            cl.exit_code = app.exit(e, out, err); // --help
            return cl;
        }
        err << program_name << ": error: " << e.what() << "\nRun '" << program_name << " --help' for the options.\n";
        cl.exit_code = 2;
        return cl;
    }

    try {
        for (std::size_t i = 0; i < table.size(); ++i) {
            const exsal::PipelineOption& o = table[i];
            if (bound[i]->count() == 0) continue;
            if (o.kind == exsal::OptionKind::list) {
                for (const std::string& v : lists[i]) o.parse(c, v);
            } else {
                o.parse(c, values[i]);
            }
        }
        if (c.projecting())
            for (std::size_t i = 0; i < table.size(); ++i)
                if (table[i].training && bound[i]->count() > 0)
                    throw exsal::ArgumentError(table[i].name, "does not apply with --model-in (the model file fixes the "
                                                              "architecture, preprocessing and genes)");
        exsal::validate_config(c);
    } catch (const exsal::Error& e) {
        err << program_name << ": error: " << e.what() << "\n";
        cl.exit_code = 2;
    }
    return cl;
}

void print_summary(const exsal::PipelineConfig& c, const exsal::PipelineResult& r) {
    using exsal::Index;
    const exsal::Interpretation& in = r.interpretation;
    std::printf("\nData: %s, %lld cells x %lld genes; %lld genes in the model; %lld gene sets, %zu usable\n",
                c.builtin_data() ? "built-in simulation" : c.expression.c_str(), static_cast<long long>(r.cells),
                static_cast<long long>(r.genes_input), static_cast<long long>(r.genes_model),
                static_cast<long long>(r.sets_read), in.set_names.size());
    if (r.trained) {
        const exsal::TrainHistory& h = r.history;
        if (h.best_epoch >= 0)
            std::printf("Training: %d of at most %d epochs%s; final train loss %.6g, validation loss %.6g "
                        "(best %.6g at epoch %d), orthogonality error %.3g\n",
                        h.epochs_run, r.max_epochs, h.stopped_early ? " (stopped early)" : "", h.train_loss.back(),
                        exsal::detail::last_finite(h.validation_loss), h.best_validation_loss, h.best_epoch + 1,
                        h.orthogonality_error.back());
        else
            std::printf("Training: %d of at most %d epochs%s; final train loss %.6g, validation loss %.6g, "
                        "orthogonality error %.3g\n",
                        h.epochs_run, r.max_epochs, r.early_stopping ? "" : " (no early stopping: few validation cells)",
                        h.train_loss.back(), exsal::detail::last_finite(h.validation_loss), h.orthogonality_error.back());
    } else {
        std::printf("Projection through %s (no training)\n", c.model_in.c_str());
    }
    if (!r.planted.empty()) {
        std::printf("Planted programmes (unit with the highest z-score for the planted set; r = correlation of\n"
                    "that unit with the planted activity):\n");
        for (const auto& p : r.planted)
            std::printf("  %-22s %-8s z %7.2f  q %-9.3g r %+.2f\n", p.gene_set.c_str(), exsal::unit_label(p.unit).c_str(),
                        p.z_score, p.q_value, p.correlation);
    }
    const auto annotations = exsal::annotate_units(in, 1);
    Index named = 0;
    for (const auto& a : annotations) named += a.top_sets.empty() ? 0 : 1;
    const Index active = r.activity.n_active();
    std::printf("Units with a significant gene set (q <= 0.05 within the unit): %lld of %lld active units (%lld inactive)\n",
                static_cast<long long>(named), static_cast<long long>(active), static_cast<long long>(r.units - active));
    if (!r.programmes.comparisons.empty()) {
        const bool consensus = !r.consensus.empty();
        std::printf("Top programmes per group (gene sets higher in the group%s; score, q):\n",
                    consensus ? ", consensus of the ensemble: mean rank, q" : "");
        for (std::size_t g = 0; g < r.programmes.comparisons.size(); ++g) {
            const exsal::GroupProgrammes& p = r.programmes.comparisons[g];
            std::printf("  %-14s", p.group.c_str());
            for (Index rank = 1; rank <= 3; ++rank)
                for (std::size_t s = 0; s < in.set_names.size(); ++s) {
                    const auto& dir = consensus ? r.consensus[g].direction : p.direction;
                    const auto& rk = consensus ? r.consensus[g].rank : p.rank;
                    if (dir[s] != exsal::ProgrammeDirection::higher || rk[s] != rank) continue;
                    const Index i = static_cast<Index>(s);
                    if (consensus)
                        std::printf("  %s (%.1f, %.2g)", in.set_names[s].c_str(), r.consensus[g].mean_rank(i), r.consensus[g].q_value(i));
                    else
                        std::printf("  %s (%.3g, %.2g)", in.set_names[s].c_str(), p.score(i), p.q_value(i));
                }
            std::printf("\n");
        }
    }
    if (!r.group_stats.empty()) {
        std::printf("Most active units per group (active units by effect size; best gene set):\n");
        for (const auto& m : exsal::group_modules(r.group_stats, 3)) {
            std::printf("  %-14s", m.group.c_str());
            for (Index u : m.units) {
                const auto& top = annotations[static_cast<std::size_t>(u)].top_sets;
                std::printf("  %s (%s)", exsal::unit_label(u).c_str(),
                            top.empty() ? "-" : in.set_names[static_cast<std::size_t>(top[0])].c_str());
            }
            std::printf("\n");
        }
    }
    std::printf("Outputs in %s (%zu files); timings:", r.out.c_str(), r.files.size());
    for (const auto& [stage, seconds] : r.timings) std::printf(" %s %.1f s;", stage.c_str(), seconds);
    std::printf("\n");
}

// SIGINT, SIGTERM and SIGHUP are blocked in every thread (call before any thread starts: OpenMP's
// threads inherit the mask) and taken by one watcher thread, which removes the run's staging
// folder through OutputFolder::remove_staging_folders_for_exit() - under the lock that also
// orders the folder's creation and commit, so a folder can neither appear after the removal nor
// be removed half committed - and then ends the process by the same signal. The removal runs in
// an ordinary thread, not in a signal handler, so it may use the file system.
// Set by the watcher when a signal has arrived: main() then waits for the watcher to end the
// process instead of returning (a write into the folder being removed fails, and that failure
// must not end the process as an ordinary error first).
std::atomic<bool> terminating{false};

sigset_t block_termination_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

void watch_termination_signals(sigset_t set) {
    std::thread([set] {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) return;
        terminating = true;
        exsal::OutputFolder::remove_staging_folders_for_exit();
        // End by the same signal, with its default action: the kernel stops every thread at once
        // (exit() would first run exit-time work, e.g. a sanitizer's leak check, while the other
        // threads go on).
        std::signal(sig, SIG_DFL);
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, sig);
        pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
        ::raise(sig);
        std::_Exit(128 + sig); // not reached
    }).detach();
}

// The watcher is ending the process: never return from main (see `terminating`).
void wait_if_terminating() {
    while (terminating) std::this_thread::sleep_for(std::chrono::seconds(1));
}

} // namespace

int main(int argc, char** argv) {
    const sigset_t termination = block_termination_signals();
#if EXSAL_WITH_MPI
    // Under mpirun (or srun) every process runs the pipeline together (run_pipeline's processes);
    // started alone it is one process as without MPI, and does not start MPI at all.
    std::optional<exsal::mpi::Environment> environment;
    std::optional<exsal::mpi::Communicator> world;
    if (exsal::mpi::started_by_launcher()) {
        environment.emplace(argc, argv);
        world.emplace();
    }
    exsal::ProcessGroup* const processes = world && world->size() > 1 ? &*world : nullptr;
    const int rank = world ? world->rank() : 0;
#else
    exsal::ProcessGroup* const processes = nullptr;
    const int rank = 0;
#endif
    std::ostream silent(nullptr); // the processes after the first print nothing but their own errors
    CommandLine cl = parse_command_line(argc, argv, rank == 0 ? std::cerr : silent, rank == 0 ? std::cout : silent);
    if (cl.exit_code >= 0) return cl.exit_code;
    const exsal::PipelineConfig& c = cl.config;
    watch_termination_signals(termination);
    Progress progress(c.quiet || rank != 0, ::isatty(STDERR_FILENO) != 0);
    if (const std::vector<std::string> unused = exsal::unused_cpu_features(); !unused.empty()) {
        std::string list;
        for (const std::string& f : unused) list += (list.empty() ? "" : "/") + f;
        progress.note("built without " + list + ", which this CPU has; rebuild with -DEXSAL_NATIVE=ON for about twice "
                      "the training speed");
    }
    // Prints the error (own: this process's, not another's failure) and returns the exit code.
    const auto fail = [&](const std::string& message, bool own) {
        progress.end_bar();
        wait_if_terminating();
#if EXSAL_WITH_MPI
        if (processes) {
            // Outside an agreement on failures the other processes may be waiting for this one: end them all.
            if (processes->last_failures() == 0) world->abort("error: " + message);
            if (rank == 0) {
                std::cerr << program_name << ": error: " << message << "\n";
            } else if (own && processes->last_failures() < processes->size()) { // the first process does not have it
                std::cerr << program_name << ": error (process " << rank << " of " << processes->size() << "): " << message << "\n";
            }
            return 1;
        }
#endif
        (void)own;
        std::cerr << program_name << ": error: " << message << "\n";
        return 1;
    };
    try {
        exsal::PipelineObserver observer;
        if (rank == 0) {
            observer.on_stage = [&](const std::string& s) { progress.stage(s); };
            observer.on_epoch = [&](const exsal::EpochInfo& e) { progress.epoch(e); };
            observer.on_batch = [&](const exsal::BatchInfo& b) { progress.batch(b); };
            observer.on_cells = [&](exsal::Index done, exsal::Index total) { progress.cells(done, total); };
            observer.on_note = [&](const std::string& m) { progress.note(m); };
        }
        exsal::JsonValue program = exsal::JsonValue::object();
        program["name"] = program_name;
        program["cli11"] = CLI11_VERSION;
        std::vector<std::string> args(argv + 1, argv + argc);
        program["arguments"] = exsal::JsonValue::array_of(args);
        const exsal::PipelineResult result = exsal::run_pipeline(c, observer, program, processes);
        progress.end_bar();
        wait_if_terminating();
        if (!c.quiet && rank == 0) print_summary(c, result);
        return 0;
    } catch (const exsal::OtherProcessFailed& e) {
        return fail(e.what(), false);
    } catch (const exsal::Error& e) {
        return fail(e.what(), true);
    } catch (const std::bad_alloc&) {
        return fail("out of memory; lower --units, --hidden or --batch, or give the run a machine with more memory "
                    "(nothing was written)",
                    true);
    } catch (const std::exception& e) {
        return fail(e.what(), true);
    }
}
