#!/usr/bin/env bash
# Decode speed as a fraction of the read bound, with the bound measured right beside each decode run.
#
# This VM's memory bandwidth drifts by up to a third within minutes, so a bound measured once at the start of a long
# run says little about a decode measured ten minutes later. Here every decode run (fabula bench tg, all threads) sits
# between two bandwidth runs (bench_membw's Read* benchmarks with the same thread count, the best method of each run),
# and is divided by the HIGHER of its two neighbours: the strict reading. Bytes per token are fabula's own count of
# every weight byte a generated token reads (attention, dense MLP, the routed experts, the output head).
#   bench/decode_bound.sh BUILD_DIR MODEL [PAIRS (3)] [N_GEN (128)]      THREADS=n overrides the thread count
# Where the bandwidth changes within seconds (this VM: ~45 <-> ~80 GB/s), even neighbouring runs can be in another
# state than the decode between them; `fabula bench --bound-probe K` is the time-local alternative: the same read
# (tensor/read_probe.h) on the decode pool before and after every K decode steps, each chunk against its own reads.
set -euo pipefail
build=$1
model=$2
pairs=${3:-3}
n_gen=${4:-128}
threads=${THREADS:-$(nproc)}

best_read() {  # the best read figure (GB/s) of one bench_membw run with $threads threads
  "$build/bench/bench_membw" --benchmark_filter="^BM_Read[A-Za-z]*/$threads/" 2>/dev/null |
    sed -n 's/.*best_GB\/s=\([0-9.]*\).*/\1/p' | sort -g | tail -1
}
decode() {  # "t/s GB-per-token" of one fabula bench run
  local out
  out=$("$build/fabula" bench -m "$model" -p 0 -n "$n_gen" -r 2 -t "$threads" 2>&1)
  local tps gb
  tps=$(sed -n "s/.*| *tg$n_gen *| *\([0-9.]*\) ±.*/\1/p" <<<"$out" | head -1)
  gb=$(sed -n 's/^decode reads \([0-9.]*\) GB of weights per token.*/\1/p' <<<"$out" | head -1)
  [ -n "$tps" ] && [ -n "$gb" ] || { echo "decode_bound: could not read fabula bench's output:" >&2; echo "$out" >&2; exit 1; }
  echo "$tps $gb"
}

"$build/fabula" bench -m "$model" -p 0 -n 8 -r 1 -t "$threads" >/dev/null 2>&1  # fault the weights in once
bw_before=$(best_read)
results=()
for ((i = 1; i <= pairs; ++i)); do
  read -r tps gb <<<"$(decode)"
  bw_after=$(best_read)
  line=$(awk -v i="$i" -v a="$bw_before" -v b="$bw_after" -v t="$tps" -v g="$gb" -v n="$n_gen" 'BEGIN {
    bound = (a > b ? a : b); pct = 100 * t * g / bound;
    printf "pair %d: read %.2f GB/s before, %.2f after; tg%d %.2f t/s x %.4f GB = %.2f GB/s = %.1f%% of %.2f (bound %.2f t/s)\n",
           i, a, b, n, t, g, t * g, pct, bound, bound / g }')
  echo "$line"
  results+=("$(sed -n 's/.* = \([0-9.]*\)% of .*/\1/p' <<<"$line")")
  bw_before=$bw_after
done
printf '%s\n' "${results[@]}" | sort -g | awk '{ v[NR] = $1 } END {
  printf "decode / read bound over %d pairs: median %.1f%%, min %.1f%%, max %.1f%%\n", NR, v[int((NR + 1) / 2)], v[1], v[NR] }'
