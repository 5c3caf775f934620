#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each in turn;
# the same build checks that every public header compiles with clang as strict C++17.
#   scripts/run-fuzz.sh [SECONDS] [TARGET...]   SECONDS per target (default 20); targets:
#       fuzz_expression_reader fuzz_gmt_reader fuzz_model_loader fuzz_mtx_reader fuzz_h5ad_reader
#       (default: all five)
# Seeds come from tests/fuzz/corpus/<target>/ (never modified); the growing corpus is kept in
# build-fuzz/corpus/<target>/ and reused by later runs; crash, leak, timeout and out-of-memory
# inputs are written to build-fuzz/artifacts/. Exits non-zero on the first finding.
# Reproduce a finding: build-fuzz/tests/fuzz/<target> build-fuzz/artifacts/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

seconds=20
targets=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    ''|*[!0-9]*) targets+=("$arg") ;;
    *) seconds=$arg ;;
  esac
done
all=(fuzz_expression_reader fuzz_gmt_reader fuzz_model_loader fuzz_mtx_reader fuzz_h5ad_reader)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "run-fuzz.sh: unknown target '$t' (one of: ${all[*]})" >&2; exit 2; }
done

ensure_packages "${EXSAL_BUILD_PACKAGES[@]}" clang libclang-rt-14-dev libomp-dev
dir=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXSAL_FUZZ=ON -DEXSAL_BLAS=OFF \
  -DEXSAL_BUILD_TESTS=OFF -DEXSAL_BUILD_EXAMPLES=OFF -DEXSAL_BUILD_BENCHMARKS=OFF >/dev/null
if [[ "${targets[*]}" == "${all[*]}" ]]; then
  cmake --build "$dir" -j "$(nproc)" --target exsal_fuzz_targets # side by side
else
  cmake --build "$dir" -j "$(nproc)" --target "${targets[@]}"
fi

mkdir -p "$dir/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t"
  log="$dir/artifacts/$t.log"
  echo "== $t: ${seconds} s"
  # One process (the machines have 2 cores); an input running over 10 s counts as a hang.
  if ! "$dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$dir/artifacts/$t-" "$dir/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    grep -E "ERROR|SUMMARY|invariant|Assertion|Test unit written" "$log" >&2 || true
    echo "run-fuzz.sh: $t found a problem; full log: $log" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "   ${runs:-?} executions, corpus $(find "$dir/corpus/$t" -type f | wc -l) inputs"
done
