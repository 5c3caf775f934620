#ifndef EXSAL_PIPELINE_HPP
#define EXSAL_PIPELINE_HPP

// The whole pipeline of examples/velten_pipeline as a library call (run_pipeline), its stages
// for programs that arrange them differently, its option table and its all-or-nothing output
// folder.

#include "exsal/report.hpp"

#include "exsal/pipeline/config.hpp"
#include "exsal/pipeline/options.hpp"
#include "exsal/pipeline/output_folder.hpp"
#include "exsal/pipeline/result_figures.hpp"
#include "exsal/pipeline/result_tables.hpp"
#include "exsal/pipeline/run.hpp"
#include "exsal/pipeline/stages.hpp"
#if EXSAL_WITH_HDF5
#include "exsal/io/h5ad_writer.hpp" // results.h5ad
#endif

#endif // EXSAL_PIPELINE_HPP
