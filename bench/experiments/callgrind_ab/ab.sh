#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions per message of two wsfast builds, side by side (callgrind counts
# instructions, not seconds, so the answer does not depend on machine load).
#   bench/experiments/callgrind_ab/ab.sh PYTHON_BEFORE PYTHON_AFTER
# Each PYTHON is a real interpreter binary (not a pyenv shim) whose wsfast is the
# build to measure. Per message = (I(N2) - I(N1)) / (N2 - N1): start-up cancels out.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONHASHSEED=0
server() { # PY SIZE COUNT KIND -> instructions of the echo server process
  local port=$((20000 + RANDOM % 20000)) out; out=$(mktemp -d)
  (cd /tmp && valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$1" -m wsfast echo \
      --host 127.0.0.1 --port $port >/dev/null 2>&1) & local vp=$!
  for _ in $(seq 1 600); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
  python3 "$HERE/echo_client.py" $port "$2" "$3" 8 "$4" >/dev/null || echo "echo client failed" >&2
  pkill -INT -f "wsfast echo --host 127.0.0.1 --port $port"; wait $vp
  awk '/^(summary|totals)/ {print $2; exit}' "$out/cg"; rm -rf "$out"
}
client() { # PY SIZE COUNT -> instructions of the blocking client reading a feed
  local port=$((20000 + RANDOM % 20000)) out; out=$(mktemp -d)
  python3 "$HERE/feed_server.py" $port "$2" "$3" >"$out/s" & local sp=$!
  for _ in $(seq 1 100); do grep -q ready "$out/s" 2>/dev/null && break; sleep 0.1; done
  (cd /tmp && valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$1" \
      "$HERE/feed_client.py" $port "$3" >/dev/null 2>&1) || echo "feed client failed" >&2
  kill $sp 2>/dev/null; wait $sp 2>/dev/null
  awk '/^(summary|totals)/ {print $2; exit}' "$out/cg"; rm -rf "$out"
}
PY_BEFORE=$1; PY_AFTER=$2
for spec in "64 binary 2048 34816" "1024 binary 2048 34816" "1024 text 2048 34816" "65536 binary 256 4352"; do
  set -- $spec
  b1=$(server "$PY_BEFORE" $1 $3 $2); b2=$(server "$PY_BEFORE" $1 $4 $2)
  a1=$(server "$PY_AFTER" $1 $3 $2); a2=$(server "$PY_AFTER" $1 $4 $2)
  echo "server echo $1 B $2: before $(( (b2 - b1) / ($4 - $3) )) after $(( (a2 - a1) / ($4 - $3) )) instructions/message"
done
for size in 64 1024; do
  b1=$(client "$PY_BEFORE" $size 1000); b2=$(client "$PY_BEFORE" $size 101000)
  a1=$(client "$PY_AFTER" $size 1000); a2=$(client "$PY_AFTER" $size 101000)
  echo "client feed $size B text: before $(( (b2 - b1) / 100000 )) after $(( (a2 - a1) / 100000 )) instructions/message"
done
