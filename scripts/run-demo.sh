#!/usr/bin/env bash
# Installs what is missing, builds the pipeline in build/ and runs it on its built-in simulated
# haematopoiesis data (about a minute on 2 cores). Results go to out/demo.
#   scripts/run-demo.sh                 default run
#   scripts/run-demo.sh --epochs 50     extra options are passed to velten_pipeline
# The demo replaces the files of its own folder out/demo on every run (it passes --force for that
# folder only); for any other folder run build/examples/velten_pipeline --out DIR yourself, which
# refuses an existing non-empty folder unless you pass --force.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,8p' "$0"; echo; echo "velten_pipeline options (after building): build/examples/velten_pipeline --help"; exit 0 ;;
    --out|--out=*|--force)
      echo "run-demo.sh: the demo always writes to out/demo; run build/examples/velten_pipeline --out DIR for other folders" >&2
      exit 2 ;;
  esac
done

ensure_packages "${EXSAL_BUILD_PACKAGES[@]}"
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" --target velten_pipeline
mkdir -p out
build/examples/velten_pipeline --out out/demo --force "$@"
echo
echo "Open out/demo/heatmap.svg (gene sets x representation units) in a browser; the tables are in out/demo/*.csv."
