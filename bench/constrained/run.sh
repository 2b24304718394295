#!/usr/bin/env bash
# Constrained decoding and phrase bans on the demo narrator: `fabula eval` at T=1.1 and 1.5 for constrained off/on x
# --ban-tells off/on, then one markdown table (validity, slop density, TTR, trigram reuse, tok/s, backtracks).
#
#   bench/constrained/run.sh [FABULA_BINARY]      (default: build/fabula)
# Env: OUT (default out/bench-constrained), SEEDS (default 1-6), TEMPS (default "1.1 1.5"), EXTRA (more eval flags).
# Each setting starts from an empty directory (eval resumes otherwise). tok/s is tokens over wall time per beat,
# prompt included, so compare settings from one run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
FABULA=${1:-build/fabula}
OUT=${OUT:-out/bench-constrained}
SEEDS=${SEEDS:-1-6}
TEMPS=${TEMPS:-1.1 1.5}
MODEL=models/fabula-demo-v1.gguf
SCENES=eval/scenes-public.jsonl
[[ -x $FABULA ]] || { echo "no fabula binary at $FABULA" >&2; exit 2; }
[[ -f $MODEL ]] || { echo "no $MODEL" >&2; exit 2; }

rows=()
for temp in $TEMPS; do
  for constrained in off on; do
    for ban in off on; do
      dir="$OUT/t$temp-c$constrained-b$ban"
      rm -rf "$dir"
      flags=()
      [[ $constrained == on ]] && flags+=(--constrained)
      [[ $ban == on ]] && flags+=(--ban-tells)
      echo "== temp $temp, constrained $constrained, ban $ban" >&2
      # Exit 1 means some beats failed (reported on stderr); the table still shows what was written.
      "$FABULA" eval --model "$MODEL" --scenes "$SCENES" --out "$dir" --seeds "$SEEDS" --temp "$temp" --top-p 0.95 \
        ${flags[@]+"${flags[@]}"} ${EXTRA:-} > /dev/null || [[ $? == 1 ]]
      rows+=("$temp $constrained $ban $dir/report.json")
    done
  done
done

python3 - "${rows[@]}" <<'PY'
import json, sys
print("| temp | constrained | ban | validity | slop density | TTR | trigram reuse | tok/s | backtracks |")
print("|---|---|---|---|---|---|---|---|---|")
for row in sys.argv[1:]:
    temp, constrained, ban, path = row.split(" ", 3)
    n = json.load(open(path))["narrators"][0]
    m = n["metrics"]
    validity = f'{100 * m["validity"]:.1f}% ({m["valid_beats"]}/{m["scenes"]})'
    print(f'| {temp} | {constrained} | {ban} | {validity} | {m["slop_density"]:.2f} | {m["ttr"]:.3f} | '
          f'{m["trigram_reuse"]:.3f} | {n["tok_s"]:.1f} | {n.get("backtracks", 0)} |')
PY
