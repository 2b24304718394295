#!/usr/bin/env bash
# Every measurement of BENCHMARKS.md in one run, for a quiet machine: memory bandwidth, the tile kernels, fabula vs
# llama.cpp (node-llama-cpp 3.21.1) on the demo narrator and on synthetic 26B-A4B Q4_K_M and Q8_0 files, and the
# demo's time to the first beat line. Outputs (text and JSON) go to WORK_DIR; nothing here runs in the test suite.
#   bench/run_all.sh [BUILD_DIR (build)] [WORK_DIR (/tmp/perf)]      THREADS=n overrides the thread count
# The synthetic files are made first if missing (16.8 GB and 26.9 GB; a few minutes each, disk-bound).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-/tmp/perf}
threads=${THREADS:-$(nproc)}
mkdir -p "$work"
cmake --build "$build" --target fabula bench_membw bench_quant bench_first_line >/dev/null
step() { echo "== $(date -u +%H:%M:%S) $*  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }
vs() {  # vs NAME MODEL ARGS...
  local name=$1 model=$2; shift 2
  step "fabula vs llama.cpp: $name"
  node bench/vs-llamacpp/run.mjs --model "$model" --fabula "$build/fabula" -t "$threads" --json "$work/vs-$name.json" "$@" \
    | tee "$work/vs-$name.txt"
}

q4=$work/synth-26b-q4km.gguf
q8=$work/synth-26b-q8.gguf
[ -f "$q4" ] || "$build/fabula" synth --shape gemma4-26b-a4b --type Q4_K_M -o "$q4"
[ -f "$q8" ] || "$build/fabula" synth --shape gemma4-26b-a4b --type Q8_0 -o "$q8"

step "memory bandwidth"
"$build/bench/bench_membw" | tee "$work/membw.txt"
step "tile kernels"
"$build/bench/bench_quant" --benchmark_filter=Tile | tee "$work/tiles.txt"
step "demo: time to the first beat line"
"$build/bench/bench_first_line" --benchmark_repetitions=5 | tee "$work/first_line.txt"
vs demo models/fabula-demo-v1.gguf -p 512 -n 128 -r 5 --rounds 2
vs 26b-q4km "$q4" -p 512 -n 128 -r 3 --rounds 2
# Q8_0 (26.9 GB) does not fit in 24 GiB of RAM: every pass pages part of the file in from disk, so fewer runs.
vs 26b-q8 "$q8" -p 128 -n 16 -r 2 --rounds 1 || echo "26B Q8_0 head to head failed (see above)" >&2
step "done"
