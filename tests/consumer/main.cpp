// Using exsal from another CMake project (the README shows this file): simulate a small data set,
// preprocess it, train the autoencoder for two epochs, then explain the representation units by
// saliency aggregated over gene sets. Returns 0 when every step produced finite results.
#include <exsal/data/preprocess.hpp>
#include <exsal/data/simulator.hpp>
#include <exsal/interpret/interpret.hpp>
#include <exsal/nn/nn.hpp>

#include <cmath>
#include <iostream>

int main() {
    // 300 cells x 800 genes with planted programmes and gene sets (or: exsal::read_expression, exsal::read_gmt).
    exsal::SimulationOptions simulation;
    simulation.n_cells = 300;
    simulation.n_genes = 800;
    const exsal::SimulatedData sim = exsal::simulate_haematopoiesis(simulation);

    // Reference preprocessing: split, gene filter, upper case, restriction to the gene sets, log1p input.
    exsal::PreprocessOptions preprocess;
    preprocess.transform = exsal::InputTransform::log1p;
    const exsal::PreparedData data = exsal::prepare(sim.expression, sim.gene_sets, preprocess);

    // G -> 32 -> 16 -> 32 -> G; the 16-unit middle layer is the representation.
    exsal::AutoencoderConfig architecture;
    architecture.n_genes = data.train.n_genes();
    architecture.hidden = {32, 16, 32};
    exsal::Autoencoder<float> model(architecture);
    model.initialize(42);

    exsal::TrainOptions training; // Adam, Poisson loss, orthogonality penalty with lambda = 1
    training.max_epochs = 2;
    const exsal::TrainHistory history = exsal::train<float>(model, data.train_input, data.train.values,
                                                            data.validation_input, data.validation.values, training);

    // All cells through the fitted preprocessing, then saliency -> gene-set impact and statistics.
    const exsal::MatrixF input = data.preprocessor.transform(data.preprocessor.align(sim.expression).values);
    const exsal::Interpretation result = exsal::interpret<float>(model, input, data.preprocessor.genes(),
                                                                 sim.expression.groups, sim.gene_sets, {});

    for (std::size_t s = 0; s < result.set_names.size(); ++s) {
        if (result.set_descriptions[s] != "planted") continue; // skip the simulated decoy sets
        exsal::Index best = 0; // the unit whose saliency concentrates most on this set
        result.z_score.row(static_cast<exsal::Index>(s)).maxCoeff(&best);
        std::cout << result.set_names[s] << ": unit_" << best << " (impact "
                  << result.impact(static_cast<exsal::Index>(s), best) << ")\n";
    }
    const bool ok = history.epochs_run == 2 && std::isfinite(history.train_loss.back()) && result.impact.allFinite() &&
                    result.q_value.allFinite() && result.gene_saliency.rows() == model.n_genes();
    std::cout << (ok ? "ok" : "FAILED") << "\n";
    return ok ? 0 : 1;
}
