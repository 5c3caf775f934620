#!/bin/bash
# Scaling of exsal's training and guided saliency with cells, genes and threads, and the peak
# memory of the pipeline on 100,000 cells. Prints Markdown tables; raw JSON lines go to $OUT/*.jsonl.
#
#   benchmarks/scaling.sh [BUILD_DIR] [OUT_DIR]
#     BUILD_DIR  default build-bench (needs bench_autoencoder, bench_reader; the memory part also
#                uses examples/velten_pipeline from the same build dir when it exists)
#     OUT_DIR    default /tmp/exsal_scaling (the 100,000-cell CSV, about 1 GB, is written there)
# Environment: EPOCHS (default 1), REPS (default 1), CELLS_LIST, GENES_LIST, SKIP_MEMORY=1.
# Timings are only meaningful on a quiet machine (the load average is printed with each table).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
BUILD="${1:-$ROOT/build-bench}"
OUT="${2:-/tmp/exsal_scaling}"
EPOCHS="${EPOCHS:-1}"
REPS="${REPS:-1}"
CELLS_LIST="${CELLS_LIST:-1000 2000 5000 10000 20000 50000 100000}"
GENES_LIST="${GENES_LIST:-1000 2000 4000 10000 20000}"
BENCH="$BUILD/benchmarks/bench_autoencoder"
READER="$BUILD/benchmarks/bench_reader"
PIPELINE="$BUILD/examples/velten_pipeline"
GMT="$ROOT/../shared/data/h.all.v6.2.symbols.gmt"
mkdir -p "$OUT"

# Median over REPS runs of one configuration, printed as one JSON line (medians of numeric keys).
run_median() {
  local runs=()
  for ((r = 0; r < REPS; r++)); do runs+=("$("$BENCH" "$@")"); done
  printf '%s\n' "${runs[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
out = dict(rows[0])
for k, v in rows[0].items():
    if isinstance(v, (int, float)):
        out[k] = statistics.median(r[k] for r in rows)
print(json.dumps(out))'
}

table() { # $1 = jsonl file, $2 = title
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{sys.argv[2]}\n")
print("| cells | genes | threads | train s | train cells/s | step ms | saliency s | saliency cells/s | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['cells']} | {r['genes']} | {r['threads']} | {r.get('train_s', float('nan')):.3f} | "
          f"{r.get('train_cells_per_s', float('nan')):.0f} | {r.get('step_ms', float('nan')):.2f} | "
          f"{r.get('saliency_s', float('nan')):.3f} | {r.get('saliency_cells_per_s', float('nan')):.0f} | "
          f"{r.get('peak_rss_mib', float('nan')):.0f} |")
EOF
}

echo "# $(uptime)"
echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores"

# 1. Cells at 4,000 genes, 2 threads.
: > "$OUT/cells.jsonl"
for cells in $CELLS_LIST; do
  run_median --cells "$cells" --genes 4000 --epochs "$EPOCHS" --batch 128 --threads 2 --mode train >> "$OUT/cells.jsonl"
done
table "$OUT/cells.jsonl" "Cells at 4,000 genes, $EPOCHS epoch(s), batch 128, 2 threads (load: $(cut -d' ' -f1 /proc/loadavg))"

# 2. Genes at 2,000 cells, 2 threads.
: > "$OUT/genes.jsonl"
for genes in $GENES_LIST; do
  run_median --cells 2000 --genes "$genes" --epochs "$EPOCHS" --batch 128 --threads 2 --mode train >> "$OUT/genes.jsonl"
done
table "$OUT/genes.jsonl" "Genes at 2,000 cells, $EPOCHS epoch(s), batch 128, 2 threads (load: $(cut -d' ' -f1 /proc/loadavg))"

# 3. Threads: 1 versus 2 at 2,000 and 10,000 cells x 4,000 genes.
: > "$OUT/threads.jsonl"
for cells in 2000 10000; do
  for t in 1 2; do
    run_median --cells "$cells" --genes 4000 --epochs "$EPOCHS" --batch 128 --threads "$t" --mode train >> "$OUT/threads.jsonl"
  done
done
table "$OUT/threads.jsonl" "Threads, 4,000 genes, $EPOCHS epoch(s) (load: $(cut -d' ' -f1 /proc/loadavg))"

# 4. Peak memory of the pipeline on 100,000 cells x 4,000 genes (genes named from Hallmark so the
#    gene-set restriction keeps them), one epoch, with /usr/bin/time -v.
if [ "${SKIP_MEMORY:-0}" != 1 ]; then
  CSV="$OUT/synthetic_100000x4000.csv"
  [ -s "$CSV" ] || "$READER" --write "$CSV" --cells 100000 --genes 4000 --gmt "$GMT" --seed 1
  echo
  echo "Peak memory, 100,000 cells x 4,000 genes ($(du -m "$CSV" | cut -f1) MB CSV); float data alone: $((100000 * 4000 * 4 / 1048576)) MiB"
  echo
  echo "| step | wall s | peak RSS MiB |"
  echo "|---|---|---|"
  /usr/bin/time -v "$READER" --file "$CSV" --reps 1 > "$OUT/read.json" 2> "$OUT/read.time"
  echo "| read_expression (bench_reader) | $(grep 'Elapsed' "$OUT/read.time" | awk '{print $NF}') | $(( $(grep 'Maximum resident' "$OUT/read.time" | awk '{print $NF}') / 1024 )) |"
  if [ -x "$PIPELINE" ]; then
    rm -rf "$OUT/pipeline_out"
    /usr/bin/time -v "$PIPELINE" --expression "$CSV" --gene-sets "$GMT" --epochs 1 --threads 2 \
      --out "$OUT/pipeline_out" --quiet > "$OUT/pipeline.log" 2> "$OUT/pipeline.time" || {
      echo "pipeline failed:"; tail -5 "$OUT/pipeline.time"; }
    echo "| velten_pipeline --epochs 1 (read, preprocess, train, saliency, gene sets, report) | $(grep 'Elapsed' "$OUT/pipeline.time" | awk '{print $NF}') | $(( $(grep 'Maximum resident' "$OUT/pipeline.time" | awk '{print $NF}') / 1024 )) |"
  else
    echo "(no $PIPELINE: pipeline memory not measured)"
  fi
fi
echo
echo "# $(uptime)"
