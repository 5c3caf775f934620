#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs the whole test suite with CTest.
#   scripts/run-tests.sh              Release build in build/ with the optional MPI parts on (installs
#                                     Open MPI): every test, the MPI ones on 2 processes (label mpi)
#   scripts/run-tests.sh --sanitize   AddressSanitizer + UBSan build in build-sanitize/ (-Og -g1), every test
#                                     but the slow real-data training, the packaging tests and the
#                                     umbrella-header compile check
#   scripts/run-tests.sh --mpi        MPI build in build-mpi/ (-DEXSAL_MPI=ON): only the MPI tests
#                                     (label mpi: training, interpretation and velten_pipeline on 2 ranks)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

sanitize=0
mpi=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --mpi) mpi=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "run-tests.sh: unknown option '$arg' (use --sanitize, --mpi or --help)" >&2; exit 2 ;;
  esac
done

ensure_packages "${EXSAL_BUILD_PACKAGES[@]}"
((mpi)) || ensure_packages "${EXSAL_TEST_PACKAGES[@]}"
jobs=$(nproc)
if ((mpi)); then
  ensure_packages "${EXSAL_MPI_PACKAGES[@]}"
  dir=build-mpi
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DEXSAL_MPI=ON \
        -DEXSAL_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build "$dir" -j "$jobs" --target exsal_mpi_tests
  ctest --test-dir "$dir" --output-on-failure -L '^mpi$'
  exit 0
fi
if ((sanitize)); then
  dir=build-sanitize
  # Eigen's own kernels here: the sanitisers check exsal's code, and OpenBLAS's buffers (allocated
  # once, never freed) are not exsal's to check.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXSAL_SANITIZE=ON -DEXSAL_BLAS=OFF -DEXSAL_BUILD_BENCHMARKS=OFF >/dev/null
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  # The MPI parts are optional for users; the test suite builds them, so that one build tests both
  # the program run alone (MPI's singleton start) and under mpiexec.
  ensure_packages "${EXSAL_MPI_PACKAGES[@]}"
  dir=build
  # The benchmarks are only compiled as a check here (-fsyntax-only); benchmarks/README.md builds them.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DEXSAL_MPI=ON -DEXSAL_BENCHMARKS_CHECK=ON >/dev/null
fi
if ((sanitize)); then
  # The minutes-long real-data training runs once, in the Release build; the packaging tests
  # build separate projects without sanitisers; the umbrella test checks what headers compile to.
  # Only what the rest needs is built (the tests and the program they run).
  cmake --build "$dir" -j "$jobs" --target exsal_sanitize_tests
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE 'slow|packaging|compile'
else
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
fi
