#!/usr/bin/env bash
# `fabula play --tui --voices`: each line shown is spoken with espeak-ng and handed to the system player
# (here a stand-in `paplay` first on PATH that keeps a copy of every WAV it is given).
# Usage: tui_voices_test.sh FABULA_BINARY SOURCE_DIR OUT_DIR
set -euo pipefail
bin=$1 src=$2 out=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/heard" "$out"
cat > "$tmp/bin/paplay" <<SH
#!/bin/sh
cp "\$1" "$tmp/heard/\$(date +%s%N).wav"
SH
chmod +x "$tmp/bin/paplay"

if ! "$bin" play --help | grep -q -- --voices; then echo "FAIL: no --voices flag"; exit 1; fi
# Enter every 0.6 s: time for each line to be spoken before the reader moves on.
{ for _ in $(seq 1 6); do sleep 0.6; echo; done; echo q; } |
  PATH="$tmp/bin:$PATH" "$bin" -q play --tui --voices --new --save "$tmp/saves.sqlite" \
    --scripted "$src/tests/data/engine/play_fixture.jsonl" --scripted-delay-ms 2 > "$out/tui_voices.txt" 2>&1 || true
n=$(ls "$tmp/heard" | wc -l)
echo "lines handed to the player: $n"
[ "$n" -ge 3 ] || { echo "FAIL: expected a WAV per line read (at least 3)"; cat "$out/tui_voices.txt"; exit 1; }
for f in "$tmp/heard"/*.wav; do
  [ "$(head -c 4 "$f")" = RIFF ] || { echo "FAIL: $f is not a WAV"; exit 1; }
  [ "$(stat -c %s "$f")" -gt 1000 ] || { echo "FAIL: $f is empty"; exit 1; }
done
echo PASS
