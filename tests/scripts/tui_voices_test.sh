#!/usr/bin/env bash
# `fabula play --tui --voices --sound`: each line shown is spoken with espeak-ng and each sound effect rendered,
# and handed to the system player (here a stand-in `paplay` first on PATH that keeps a copy of every WAV).
# Usage: tui_voices_test.sh FABULA_BINARY SOURCE_DIR OUT_DIR
set -euo pipefail
bin=$1 src=$2 out=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/heard" "$out"
cat > "$tmp/bin/paplay" <<SH
#!/bin/sh
cp "\$1" "$tmp/heard/\$(basename "\$1" .wav)-\$(date +%s%N).wav"
SH
chmod +x "$tmp/bin/paplay"

if ! "$bin" play --help | grep -q -- --voices; then echo "FAIL: no --voices flag"; exit 1; fi
# Enter every 0.6 s: time for each line to be spoken before the reader moves on.
{ for _ in $(seq 1 6); do sleep 0.6; echo; done; echo q; } |
  PATH="$tmp/bin:$PATH" "$bin" -q play --tui --voices --sound --new --save "$tmp/saves.sqlite" \
    --scripted "$src/tests/data/engine/audio_fixture.jsonl" --scripted-delay-ms 2 > "$out/tui_voices.txt" 2>&1 || true
lines=$(ls "$tmp/heard" | grep -c '^fabula-line' || true)
effects=$(ls "$tmp/heard" | grep -c '^fabula-sfx' || true)
echo "lines handed to the player: $lines, sound effects: $effects"
[ "$lines" -ge 3 ] || { echo "FAIL: expected a WAV per line read (at least 3)"; cat "$out/tui_voices.txt"; exit 1; }
[ "$effects" -ge 1 ] || { echo "FAIL: expected the rain to be played"; cat "$out/tui_voices.txt"; exit 1; }
for f in "$tmp/heard"/*.wav; do
  [ "$(head -c 4 "$f")" = RIFF ] || { echo "FAIL: $f is not a WAV"; exit 1; }
  [ "$(stat -c %s "$f")" -gt 1000 ] || { echo "FAIL: $f is empty"; exit 1; }
done
echo PASS
