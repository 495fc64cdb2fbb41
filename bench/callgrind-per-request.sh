#!/usr/bin/env bash
# Instructions the server executes per request, counted by callgrind: deterministic where
# wall-clock figures on a shared machine are not, so two builds compare exactly.
#
#   bench/callgrind-per-request.sh BINARY [PIPELINE]
#
# Runs BINARY (`--app hello --workers 1`) under `valgrind --tool=callgrind` twice, loaded by
# `asycamore-bench load -c 50 -p PIPELINE` with N and 3N requests (N = 10,000, or 32,000 when
# pipelined), and prints (Ir(3N) - Ir(N)) / 2N: start-up and shutdown cancel out.
# Needs valgrind and a release build of the bench tool (cargo build --release -p asycamore-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$1
pipeline=${2:-1}
load=target/release/asycamore-bench
port=19077
n=$(( pipeline > 1 ? 32000 : 10000 ))

total() {
  local requests=$1 out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" --app hello --workers 1 \
    --quiet --bind 127.0.0.1:$port 2>/dev/null &
  local server=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.2
  done
  "$load" load -c 50 -p "$pipeline" -n "$requests" "http://127.0.0.1:$port/" >/dev/null 2>&1
  kill -TERM "$server"
  wait "$server" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
  rm -f "$out"
}

small=$(total "$n")
large=$(total $((3 * n)))
echo "$binary, pipeline $pipeline: $(( (large - small) / (2 * n) )) instructions per request"
