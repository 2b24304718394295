#!/usr/bin/env bash
# tmux test of `fabula play --tui`: backdrop name, who is on stage, lines one at a time (Enter), numbered choices.
# Usage: tui_tmux_test.sh FABULA_BINARY SOURCE_DIR OUT_DIR
set -euo pipefail
bin=$1 src=$2 out=$3
command -v tmux >/dev/null || { echo "FAIL: no tmux (scripts/setup installs it)"; exit 1; }
tmp=$(mktemp -d)
sock="fabula-tui-$$"
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$out"

tmux -L "$sock" new-session -d -s play -x 120 -y 40 \
  "$bin -q play --tui --new --save $tmp/saves.sqlite --scripted $src/tests/data/engine/play_fixture.jsonl --scripted-delay-ms 5; sleep 30"
screen() { tmux -L "$sock" capture-pane -p -t play -S -200; }
wait_for() {  # wait_for PATTERN: polls the pane up to ~20 s
  for _ in $(seq 1 200); do
    if screen | grep -q -- "$1"; then return 0; fi
    sleep 0.1
  done
  echo "FAIL: never saw '$1'"; screen; exit 1
}

wait_for "== Classroom =="
wait_for "on stage:"
wait_for "Afternoon light slanted"
# One line at a time: the next line is not shown before Enter.
if screen | grep -q "You're finally here"; then echo "FAIL: second line shown without Enter"; screen; exit 1; fi
tmux -L "$sock" send-keys -t play Enter
wait_for "You ask what everyone is doing"
for _ in $(seq 1 10); do tmux -L "$sock" send-keys -t play Enter; sleep 0.15; done
wait_for "1. Race Hana to the school gate"
wait_for "Choose \[1-3\]"
tmux -L "$sock" send-keys -t play 1 Enter
wait_for "== School Gate =="
for _ in $(seq 1 10); do tmux -L "$sock" send-keys -t play Enter; sleep 0.15; done
wait_for "1. Wave Kaito over"
screen > "$out/tui.txt"
echo "--- final screen ---"
tail -25 "$out/tui.txt"
grep -q "Hana (smile, left)" "$out/tui.txt" || { echo "FAIL: no stage line with Hana's expression"; exit 1; }
tmux -L "$sock" send-keys -t play q Enter
echo PASS
