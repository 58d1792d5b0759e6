#!/usr/bin/env bash
# Issue 2's benchmark: one file sent over loopback to the same receiver
# (`zcopy recv --raw -o /dev/null`, splice) by zcopy's engines, a bare C sendfile
# loop, and the seed's Java Client (1 KiB buffer) and ClientChannel (transferTo).
# Prints a markdown table of the median of REPEAT runs of each sender.
#   usage: scripts/bench-send.sh [SIZE_MIB] [REPEAT]      (default 1024 3)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
repeat=${2:-3}
work=$(mktemp -d)
trap 'kill $recv_pid 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release -q
zcopy=target/release/zcopy
gcc -O2 -o "$work/sendfile-loop" scripts/sendfile-loop.c
javac -d "$work" crates/zcopy-cli/tests/java/Client.java crates/zcopy-cli/tests/java/ClientChannel.java
head -c "$((size_mib << 20))" /dev/urandom > "$work/data"
cat "$work/data" > /dev/null # page-cached, as the issue asks

"$zcopy" recv --raw --listen 127.0.0.1:0 -o /dev/null 2> "$work/recv.log" &
recv_pid=$!
until grep -q 'listening on' "$work/recv.log"; do sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$work/recv.log")
port=${addr##*:}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # label, command...
  local label=$1; shift
  local times=()
  for _ in $(seq "$repeat"); do
    local start end
    start=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  local t
  t=$(printf '%s\n' "${times[@]}" | median)
  printf '| %s | %.3f | %.0f |\n' "$label" "$t" "$(echo "$size_mib / $t" | bc -l)"
}

echo "| sender ($size_mib MiB, page-cached, loopback, median of $repeat) | seconds | MiB/s |"
echo "|---|---:|---:|"
run "zcopy send --raw --engine sendfile" "$zcopy" send --raw --engine sendfile "$work/data" "$addr"
run "bare C sendfile loop" "$work/sendfile-loop" "$work/data" 127.0.0.1 "$port"
run "seed ClientChannel (Java transferTo)" java -cp "$work" ClientChannel 127.0.0.1 "$port" "$work/data"
run "zcopy send --raw --engine splice" "$zcopy" send --raw --engine splice "$work/data" "$addr"
run "zcopy send --raw --engine read-write --buffer 1KiB" "$zcopy" send --raw --engine read-write --buffer 1KiB "$work/data" "$addr"
run "seed Client (Java, 1 KiB stream)" java -cp "$work" Client 127.0.0.1 "$port" "$work/data"
