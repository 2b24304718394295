#!/usr/bin/env bash
# Slow: docs/FINETUNE.md's loop end to end on the demo narrator. A scripted play-through (the player's moves from
# a script, the demo narrator writing; 3 sessions with regenerations) -> fabula dataset export -> an f32 HF checkpoint of the demo narrator -> fabula experts unfuse ->
# a few LoRA steps in PyTorch on the per-expert modules of `fabula lora plan --list` -> fabula lora merge ->
# fabula experts refuse -> fabula convert -> the logits of the merged model against the unmerged base + LoRA in
# PyTorch (within 1e-3) -> fabula quantize Q4_K_M -> fabula eval, base vs tuned, on the held-out scenes.
# Usage: finetune_roundtrip.sh FABULA_BINARY SOURCE_DIR WORK_DIR. Exit 77 (skip) without Debian's python3-torch.
set -euo pipefail
FABULA=$(realpath "$1")
SRC=$(realpath "$2")
WORK=$(realpath -m "$3")/finetune
PY=/usr/bin/python3
LORA="$SRC/tests/scripts/finetune_lora.py"
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then
  echo "skip: needs Debian's python3-torch (apt-get install python3-torch)"
  exit 77
fi
export FABULA_HOME="$SRC"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$SRC"
step() { echo; echo "== $*"; }

step "1. a scripted play-through of the demo narrator: 3 sessions of 12 moves, with regenerations"
seed=1
for moves in '1\n2\n1\nr\n3\n1\n1\n2\n1\n1\n3\n1\nq\n' '2\n1\n3\n1\nr\n1\n2\n1\n1\n2\n1\n3\nq\n' \
             '3\n2\n1\nr\n1\n2\n3\n1\n1\n1\n2\n1\nq\n'; do
  printf "$moves" | "$FABULA" play --tui --no-wait --new --no-tts --model models/fabula-demo-v1.gguf --seed $seed \
    --save "$WORK/saves.sqlite" >> "$WORK/play.log" 2>&1
  seed=$((seed + 1000))
done

step "2. fabula dataset export"
"$FABULA" dataset export "$WORK/saves.sqlite" -o "$WORK/data" --held-out 0.25 --split-seed 1 | tee "$WORK/export.txt"
test -s "$WORK/data/train.text.jsonl"
test -s "$WORK/data/heldout-scenes.jsonl"

step "3. the base checkpoint (HF, f32) and its un-fused experts"
"$PY" "$LORA" export-hf models/fabula-demo-v1.gguf tests/data/demo "$WORK/base-hf"
"$FABULA" experts unfuse "$WORK/base-hf" "$WORK/base-unfused"
"$FABULA" lora plan --config "$WORK/base-hf/config.json" --targets experts --rank 4
"$FABULA" lora plan --config "$WORK/base-hf/config.json" --targets experts --list > "$WORK/modules.tsv"

step "4. LoRA in PyTorch on the per-expert modules"
"$PY" "$LORA" tokens "$FABULA" models/fabula-demo-v1.gguf "$WORK/data/train.text.jsonl" "$WORK/train.tokens.jsonl"
"$PY" "$LORA" train "$WORK/base-hf" "$WORK/train.tokens.jsonl" "$WORK/modules.tsv" "$WORK/adapter" \
  --steps "${FINETUNE_STEPS:-10}" --rank 4 --alpha 8 --lr 2e-3

step "5. merge into the un-fused checkpoint, re-fuse, convert"
"$FABULA" lora merge --base "$WORK/base-unfused" --adapter "$WORK/adapter" --out "$WORK/tuned-unfused"
"$FABULA" experts refuse "$WORK/tuned-unfused" "$WORK/tuned-hf"
"$FABULA" convert "$WORK/base-hf" -o "$WORK/base-f32.gguf" --outtype f32
"$FABULA" convert "$WORK/tuned-hf" -o "$WORK/tuned-f32.gguf" --outtype f32

step "6. logits: the merged, re-fused model against base + LoRA (unmerged) in PyTorch"
"$PY" "$LORA" tokens "$FABULA" models/fabula-demo-v1.gguf "$WORK/data/heldout.text.jsonl" "$WORK/heldout.tokens.jsonl"
IDS=$("$PY" -c "import json,sys; print(','.join(map(str, json.loads(open(sys.argv[1]).readline())['ids'][:256])))" \
  "$WORK/heldout.tokens.jsonl")
"$FABULA" logits -m "$WORK/tuned-f32.gguf" --tokens "$IDS" -o "$WORK/tuned.fabula.safetensors"
"$FABULA" logits -m "$WORK/base-f32.gguf" --tokens "$IDS" -o "$WORK/base.fabula.safetensors"
"$PY" "$LORA" logits "$WORK/base-hf" "$IDS" "$WORK/tuned.torch.safetensors" --adapter "$WORK/adapter"
"$PY" "$LORA" logits "$WORK/base-hf" "$IDS" "$WORK/base.torch.safetensors"
tuned_diff=$("$PY" "$LORA" compare "$WORK/tuned.fabula.safetensors" "$WORK/tuned.torch.safetensors")
base_diff=$("$PY" "$LORA" compare "$WORK/base.fabula.safetensors" "$WORK/base.torch.safetensors")
moved=$("$PY" "$LORA" compare "$WORK/tuned.fabula.safetensors" "$WORK/base.fabula.safetensors")
echo "max |logit diff|: merged vs base+LoRA $tuned_diff, base vs base $base_diff; tuned vs base $moved"
"$PY" -c "import sys; t, b, m = map(float, sys.argv[1:]); sys.exit(0 if t <= 1e-3 and b <= 1e-3 and m > 1e-2 else 1)" \
  "$tuned_diff" "$base_diff" "$moved" || { echo "FAIL: logits out of tolerance"; exit 1; }

step "7. quantize Q4_K_M and evaluate base vs tuned on the held-out scenes"
"$FABULA" quantize "$WORK/base-f32.gguf" "$WORK/base-Q4_K_M.gguf" Q4_K_M > "$WORK/quantize-base.log"
"$FABULA" quantize "$WORK/tuned-f32.gguf" "$WORK/tuned-Q4_K_M.gguf" Q4_K_M > "$WORK/quantize-tuned.log"
"$FABULA" eval --model "$WORK/base-Q4_K_M.gguf@label=base" --model "$WORK/tuned-Q4_K_M.gguf@label=tuned" \
  --profile demo --scenes "$WORK/data/heldout-scenes.jsonl" --out "$WORK/eval" --seeds 1-4 > "$WORK/eval.log" 2>&1
cat "$WORK/eval/report.md"
test "$(wc -l < "$WORK/eval/beats.jsonl")" -eq $((2 * 4 * $(wc -l < "$WORK/data/heldout-scenes.jsonl")))
echo
echo "PASS"
