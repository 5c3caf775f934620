#!/usr/bin/env bash
# Behaviour check for refactors: runs velten_pipeline on the built-in data (default settings, and
# once with the Monte Carlo null, an ensemble and a pair) and,
# where the public HSMM data are available, on HSMM + MSigDB Hallmark, and compares every output
# file byte for byte with a recorded baseline. run.json is compared without "timings_seconds", the
# only part that may differ between two runs with the same seed and thread count, and without
# "versions", which describes the build rather than the results.
#
#   scripts/compare-outputs.sh --record BINARY BASELINE_DIR   record the baseline (old binary)
#   scripts/compare-outputs.sh BINARY BASELINE_DIR            compare a new binary with it
#
# HSMM data: EXSAL_DATA (default: ../shared/data beside the repository) must hold
# hsmm_trapnell2014_fpkm.csv.gz and h.all.v6.2.symbols.gmt; without them only the built-in run
# is compared (and said so). Both runs use --seed 1 --threads 2. Exit 0: identical; 1: differences
# (listed); 2: usage or a failed run.
set -euo pipefail

record=0
if [[ "${1:-}" == "--record" ]]; then record=1; shift; fi
if [[ $# -ne 2 ]]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
binary=$(realpath "$1")
baseline=$(realpath -m "$2")
here=$(cd "$(dirname "$0")/.." && pwd)
data=${EXSAL_DATA:-$here/../shared/data}
hsmm=$data/hsmm_trapnell2014_fpkm.csv.gz
hallmark=$data/h.all.v6.2.symbols.gmt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_case() { # name, arguments...
    local name=$1
    shift
    echo "== $name"
    if ! (cd "$work" && "$binary" --quiet --seed 1 --threads 2 --out "$name" "$@"); then
        echo "compare-outputs: the run '$name' failed" >&2
        exit 2
    fi
}

run_case builtin
# The other null, the ensemble, a named pair and the impact heatmap, small and quick.
run_case variants --simulate-cells 600 --simulate-genes 1500 --epochs 20 --null monte-carlo --aggregator mean \
    --permutations 200 --ensemble 2 --compare HSC:MEP --heatmap-values impact --label-permutations 99
if [[ -f "$hsmm" && -f "$hallmark" ]]; then
    run_case hsmm --expression "$hsmm" --gene-sets "$hallmark" --gene-set-prefix HALLMARK_ --input-transform log1p
else
    echo "compare-outputs: no HSMM data in $data: compared the built-in run only"
fi

# run.json without its timings, in a form two runs can be compared by.
strip_timings() {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    run = json.load(f)
run.pop("timings_seconds", None)
run.pop("versions", None)  # the build (compiler, SIMD), not the results
json.dump(run, sys.stdout, indent=1)
print()
PY
}

if [[ $record -eq 1 ]]; then
    rm -rf "$baseline"
    mkdir -p "$baseline"
    cp -r "$work"/. "$baseline"/
    echo "recorded in $baseline"
    exit 0
fi

status=0
for case_dir in "$baseline"/*/; do
    name=$(basename "$case_dir")
    if [[ ! -d "$work/$name" ]]; then
        echo "MISSING run $name"; status=1; continue
    fi
    old=$(cd "$case_dir" && find . -type f | sort)
    new=$(cd "$work/$name" && find . -type f | sort)
    if [[ "$old" != "$new" ]]; then
        echo "DIFFERENT file lists in $name:"; diff <(echo "$old") <(echo "$new") || true; status=1
    fi
    while read -r f; do
        [[ -f "$work/$name/$f" ]] || continue
        if [[ "$(basename "$f")" == run.json ]]; then
            if ! diff -q <(strip_timings "$case_dir/$f") <(strip_timings "$work/$name/$f") >/dev/null; then
                echo "DIFFERENT $name/$f:"; diff <(strip_timings "$case_dir/$f") <(strip_timings "$work/$name/$f") | head -20
                status=1
            fi
        elif ! cmp -s "$case_dir/$f" "$work/$name/$f"; then
            echo "DIFFERENT $name/$f"; status=1
        fi
    done <<<"$old"
done
[[ $status -eq 0 ]] && echo "identical: every output file of $(ls "$baseline" | tr '\n' ' ')(run.json without timings and versions)"
exit $status
