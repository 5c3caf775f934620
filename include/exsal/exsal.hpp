#ifndef EXSAL_EXSAL_HPP
#define EXSAL_EXSAL_HPP

// exsal: orthogonality-regularised autoencoders and saliency-based gene-set interpretation
// for single-cell RNA-seq. Include this one header for the library: data in, models, saliency and
// statistics out. Tables, JSON and SVG figures are in exsal/report.hpp, the whole command-line
// pipeline (stages, options, output folder) in exsal/pipeline.hpp; a program that needs neither
// does not compile them.
//
//   core/       errors, random numbers, threads, atomic file writes, serialisation
//   io/         expression matrices (CSV/TSV, gzip; 10x MTX; h5ad and 10x HDF5 with exsal::hdf5),
//               sparse cells, cell-group tables and GMT gene sets
//   data/       preprocessing stored with the model, and the ground-truth simulator
//   nn/         layers, losses, orthogonality penalty, optimisers, trainer, model files
//   interpret/  saliency, gene-set impact with significance, group comparisons, PCA
//   report/     CSV tables, JSON, SVG heatmaps and maps      (exsal/report.hpp)
//   pipeline/   the stages, options and outputs of a run     (exsal/pipeline.hpp)

#include "exsal/version.hpp"

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/cpu.hpp"
#include "exsal/core/denormals.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/core/types.hpp"

#include "exsal/io/expression_matrix.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/expression_writer.hpp"
#include "exsal/io/gene_set.hpp"
#include "exsal/io/gmt.hpp"
#include "exsal/io/cell_groups.hpp"
#include "exsal/io/formats.hpp"
#include "exsal/io/mtx.hpp"
#include "exsal/io/sparse_expression.hpp"
#if EXSAL_WITH_HDF5 // link the exsal::hdf5 CMake target (HDF5's C library) to read h5ad and 10x .h5 files
#include "exsal/io/h5ad.hpp"
#include "exsal/io/tenx_h5.hpp"
#endif

#include "exsal/data/cell_batches.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/data/simulator.hpp"

#include "exsal/nn/nn.hpp"

#include "exsal/interpret/interpret.hpp"
#include "exsal/interpret/pca.hpp"
#include "exsal/interpret/programmes.hpp"


#endif // EXSAL_EXSAL_HPP
