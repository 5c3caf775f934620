#!/bin/bash
# Strong scaling of data-parallel training on one machine: 1 rank x 1 thread, 2 ranks x 1 thread
# and 1 rank x 2 threads on the same cells and global batches (bench_mpi, one JSON line each), with
# the load average before each run (timings mean little on a busy machine).
#
#   benchmarks/mpi_scaling.sh [BUILD_DIR]    default build-mpi (needs benchmarks/bench_mpi:
#                                            cmake -S . -B build-mpi -DEXSAL_MPI=ON && cmake --build build-mpi --target bench_mpi)
# The launcher is the one the build found (MPIEXEC_EXECUTABLE in its CMakeCache.txt: Open MPI's
# mpiexec, or MPICH's mpiexec.mpich after scripts/check-mpich.sh), with that launcher's flags.
# Environment: CELLS (default 20000), GENES (2000), EPOCHS (2), BATCH (128), REPS (1: runs per
# configuration, alternating configurations).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD="${1:-$(dirname "$HERE")/build-mpi}"
BENCH="$BUILD/benchmarks/bench_mpi"
[[ -x "$BENCH" ]] || { echo "mpi_scaling.sh: $BENCH not found; build the target bench_mpi with -DEXSAL_MPI=ON" >&2; exit 1; }
LAUNCHER="$(sed -n 's/^MPIEXEC_EXECUTABLE:FILEPATH=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
LAUNCHER="${LAUNCHER:-mpiexec}"
if "$LAUNCHER" --version 2>&1 | grep -q HYDRA; then # MPICH's launcher
  launch() { "$LAUNCHER" -n "$1" -bind-to none -genv OMP_NUM_THREADS "$2" "${@:3}"; }
else # Open MPI's
  FLAGS=(--bind-to none --oversubscribe)
  [[ $(id -u) -eq 0 ]] && FLAGS+=(--allow-run-as-root)
  launch() { "$LAUNCHER" -np "$1" "${FLAGS[@]}" -x OMP_NUM_THREADS="$2" "${@:3}"; }
fi
ARGS=(--cells "${CELLS:-20000}" --genes "${GENES:-2000}" --epochs "${EPOCHS:-2}" --batch "${BATCH:-128}")
for ((r = 0; r < ${REPS:-1}; r++)); do
  for config in "1 1" "2 1" "1 2"; do
    read -r ranks threads <<<"$config"
    echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    launch "$ranks" "$threads" "$BENCH" "${ARGS[@]}" --threads "$threads"
  done
done
