#!/usr/bin/env bash
# Every measurement of BENCHMARKS.md in one run, for a quiet machine: memory bandwidth (the decode bound), the tile
# kernels, fabula vs llama.cpp (node-llama-cpp 3.21.1) on the demo narrator (pp512, tg128) and on synthetic 26B-A4B
# Q4_K_M (pp512, tg128, pp1500: the first beat's prompt length) and Q8_0 files, the demo's time to the first beat
# line, and the 26B's time to the first beat line on a ~1,500-token vn26b prompt. Outputs (text and JSON) go to
# WORK_DIR; nothing here runs in the test suite.
#   bench/run_all.sh [BUILD_DIR (build)] [WORK_DIR (/tmp/perf)]      THREADS=n overrides the thread count
# The synthetic files are made first if missing (16.8 GB and 26.9 GB; a few minutes each, disk-bound). Q8=0 skips the
# Q8_0 file (it does not fit in 24 GiB of RAM: each pass reads part of it from disk, and it evicts the Q4_K_M file).
# Each 26B step starts from a warm page cache (the file read once through): a cold cache, or one that other work has
# partly evicted, makes the first repetitions read the routed experts from disk, in either engine.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-/tmp/perf}
threads=${THREADS:-$(nproc)}
mkdir -p "$work"
cmake --build "$build" --target fabula bench_membw bench_quant bench_first_line bench_first_beat >/dev/null
step() { echo "== $(date -u +%H:%M:%S) $*  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }
cpuinfo() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'; }
# The machine goes into every log: a VM's host (and so its CPU generation) can change between runs.
step "machine: $(cpuinfo 'model name'), family $(cpuinfo 'cpu family') model $(cpuinfo model), $(nproc) CPUs," \
  "$(cpuinfo flags | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|avx512_bf16|avx512vbmi|gfni' | tr '\n' ' ')"
vs() {  # vs NAME MODEL ARGS...
  local name=$1 model=$2; shift 2
  step "fabula vs llama.cpp: $name"
  node bench/vs-llamacpp/run.mjs --model "$model" --fabula "$build/fabula" -t "$threads" --json "$work/vs-$name.json" "$@" \
    | tee "$work/vs-$name.txt"
}

q4=$work/synth-26b-q4km.gguf
q8=$work/synth-26b-q8.gguf
[ -f "$q4" ] || "$build/fabula" synth --shape gemma4-26b-a4b --type Q4_K_M -o "$q4"
with_q8=${Q8:-1}
[ "$with_q8" = 0 ] || [ -f "$q8" ] || "$build/fabula" synth --shape gemma4-26b-a4b --type Q8_0 -o "$q8"
warm() { step "warm the page cache: $1"; cat "$1" > /dev/null; }
# Once: drop the 26B's cached pages (unless a process maps them) and read the file back, so that its page cache is in
# large folios (readahead builds them; pages written by `fabula synth` or faulted in one by one stay 4 KiB). Both
# engines then read the same, TLB-friendly pages.
fresh() { step "re-read into large folios: $1"; dd if="$1" iflag=nocache count=0 status=none; cat "$1" > /dev/null; }

step "memory bandwidth"
"$build/bench/bench_membw" | tee "$work/membw.txt"
# The decode bound: the best read bandwidth with all threads of every read method (the AVX-512 sum and the plain loop,
# each with and without software prefetch as the decode kernels use it) / bytes read per generated token
# (`fabula bench` prints them).
bw=$(sed -n 's/^BM_Read[A-Za-z]*\/'"$threads"'\/.*best_GB\/s=\([0-9.]*\).*/\1/p' "$work/membw.txt" | sort -g | tail -1)
echo "read bandwidth for the decode bound: ${bw:-?} GB/s" | tee -a "$work/membw.txt"
step "tile kernels"
"$build/bench/bench_quant" --benchmark_filter=Tile | tee "$work/tiles.txt"
step "demo: time to the first beat line"
"$build/bench/bench_first_line" --benchmark_repetitions=5 | tee "$work/first_line.txt"
vs demo models/fabula-demo-v1.gguf -p 512 -n 128 -r 5 --rounds 2
fresh "$q4"
vs 26b-q4km "$q4" -p 512 -n 128 -r 3 --rounds 2
step "fabula decode vs the read bound, by phase (26B-A4B Q4_K_M)"
"$build/fabula" bench -m "$q4" -p 0 -n 128 -r 3 -t "$threads" --profile ${bw:+--bandwidth "$bw"} | tee "$work/bound-26b-q4km.txt"
# The bound drifts within minutes on a VM: the figure for the issue is this alternating one (each decode run between
# two bandwidth runs, divided by the higher), not the single bandwidth run at the start.
step "fabula decode vs the read bound, alternating (26B-A4B Q4_K_M)"
THREADS="$threads" bench/decode_bound.sh "$build" "$q4" 3 128 | tee "$work/decode-bound.txt"
# When the memory changes state within seconds, even that pairs decode with reads of another state: --bound-probe
# reads beside every 16 steps. Two repetitions, since the first may still read experts for the first time.
step "fabula decode vs a read probe every 16 steps (26B-A4B Q4_K_M)"
"$build/fabula" bench -m "$q4" -p 0 -n 256 -r 2 -t "$threads" --bound-probe 16 | tee "$work/bound-probe-26b-q4km.txt"
step "decode streaming per weight type (GEMV over 512 MB, all threads)"
"$build/bench/bench_quant" --benchmark_filter="GemvStream/.*/$threads/" | tee "$work/gemv_stream.txt"
# The same gemvs as decode's routed experts, over one layer's experts (285 MB) and over the 26B's 30 layers (8.6 GB):
# where a page translation is costly (membw.txt's PageChase), the second runs far slower, and so do the model's experts.
step "decode's routed experts over one layer and over 30 (Q4_K gate_up, all threads)"
"$build/bench/bench_quant" --benchmark_filter="ExpertStream/q4_K/$threads/" | tee "$work/expert_stream.txt"
# The first beat's prompt length, then fabula's time to the first line on a real vn26b prompt of that length.
warm "$q4"
vs 26b-q4km-pp1500 "$q4" -p 1500 -n 0 -r 1 --rounds 2
step "26B-A4B Q4_K_M: time to the first beat line (vn26b prompt, ~1,500 tokens)"
FABULA_MODEL="$q4" FABULA_THREADS="$threads" "$build/bench/bench_first_beat" --benchmark_repetitions=2 \
  | tee "$work/first_beat.txt"
# Q8_0 (26.9 GB) does not fit in 24 GiB of RAM: every pass pages part of the file in from disk, so fewer runs.
[ "$with_q8" = 0 ] || vs 26b-q8 "$q8" -p 128 -n 16 -r 2 --rounds 1 || echo "26B Q8_0 head to head failed (see above)" >&2
step "done"
