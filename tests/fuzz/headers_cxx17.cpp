// Every public header of exsal, compiled by clang as strict C++17 (the fuzz build is the project's
// clang build, and run-fuzz.sh builds this with the fuzz targets). GCC accepts some later forms in
// C++17 mode, e.g. a lambda or an OpenMP region that captures a structured binding (C++20); a host
// project built with clang would fail on them.
#include "exsal/exsal.hpp"
#include "exsal/pipeline.hpp"
#include "exsal/report.hpp"

int main() { return 0; }
