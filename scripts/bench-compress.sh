#!/usr/bin/env bash
# Issue 24's `-z` benchmark: `zcopy send` with and without -z across a 100 Mbit/s
# link, two network namespaces joined by a veth pair with a token bucket
# (`tc qdisc ... tbf rate 100mbit burst 32kbit latency 50ms`) on both ends.
# Two sources of about MIB MiB each: a tree of source text (the crates of
# $CARGO_HOME/registry/src, copied as many times as it takes; TEXT=DIR to use
# another tree) and one file of random bytes. Every run receives into a fresh
# directory on a tmpfs (`recv --once --insecure`: plain TCP, as off loopback
# without a secret): on this VM's shared disk ext4 created 1,100 files a
# second, which would time the disk, not the link; into tmpfs the receiver takes
# the whole tree in under half a second. Wall time from the start of send to the
# receiver's exit, bytes on the wire from the sender's veth counters. Median of
# REPEAT runs, with and without -z alternating (Z="--compress-level 3" puts
# other flags in -z's place). Needs root and ip, tc, jq, bc.
#   usage: scripts/bench-compress.sh [REPEAT [MIB]]      (default 3, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-3}
mib=${2:-200}
for tool in ip tc jq bc; do
  command -v $tool > /dev/null || { echo "bench-compress.sh: needs $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench-compress.sh: needs root (network namespaces, tc)" >&2; exit 1; }
text=${TEXT:-${CARGO_HOME:-$HOME/.cargo}/registry/src}
[ -d "$text" ] || { echo "bench-compress.sh: no text tree at $text (set TEXT=DIR)" >&2; exit 1; }
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
tx=zc-tx-$$
rx=zc-rx-$$
cleanup() {
  for ns in $tx $rx; do
    ip netns pids $ns 2> /dev/null | xargs -r kill 2> /dev/null || true
    ip netns del $ns 2> /dev/null || true
  done
  umount "$work/out" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add $tx
ip netns add $rx
ip link add veth-tx netns $tx type veth peer name veth-rx netns $rx
ip -n $tx addr add 10.77.0.1/24 dev veth-tx
ip -n $rx addr add 10.77.0.2/24 dev veth-rx
for end in "$tx veth-tx" "$rx veth-rx"; do
  set -- $end
  ip -n "$1" link set "$2" up
  ip -n "$1" link set lo up
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate 100mbit burst 32kbit latency 50ms
done
wire_bytes() { ip netns exec $tx cat /sys/class/net/veth-tx/statistics/tx_bytes; }

cargo build --release -q -p zcopy-cli
zcopy=$PWD/target/release/zcopy

mkdir -p "$work/src/tree" "$work/out"
mount -t tmpfs -o size=$((mib * 3 + 256))m zcopy-bench "$work/out"
n=0
while [ "$(du -sm "$work/src/tree" | cut -f1)" -lt "$mib" ]; do
  cp -r "$text" "$work/src/tree/copy$n"
  n=$((n + 1))
done
head -c $((mib << 20)) /dev/urandom > "$work/src/random.bin"
tree_files=$(find "$work/src/tree" -type f | wc -l)
tree_bytes=$(find "$work/src/tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
cat "$work/src/random.bin" > /dev/null
find "$work/src/tree" -type f -exec cat {} + > /dev/null # page-cached

# One run: SOURCE [SEND FLAGS...]; prints "seconds wire_bytes levels".
one() {
  local src=$1
  shift
  rm -rf "$work/out/"* "$work/recv.log"
  ip netns exec $rx "$zcopy" recv --listen 10.77.0.2:0 -o "$work/out" --once --insecure -q 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  local addr; addr=$(sed -n 's/^listening on //p' "$work/recv.log")
  local before; before=$(wire_bytes)
  local start; start=$(date +%s.%N)
  ip netns exec $tx "$zcopy" send "$src" "$addr" --json "$@" > "$work/send.json"
  wait $pid
  local end; end=$(date +%s.%N)
  local levels; levels=$(jq -r 'if .compressed.levels then (.compressed.levels | map(tostring) | join("..")) else "-" end' "$work/send.json")
  echo "$(echo "$end - $start" | bc) $(($(wire_bytes) - before)) $levels"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "100 Mbit/s veth pair (tbf on both ends), median of $repeat, alternating; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| data | without -z s | with -z s | -z faster | on the wire without | with -z | zstd levels used |"
echo "|---|---:|---:|---:|---:|---:|---|"
for what in tree random; do
  if [ $what = tree ]; then
    src=$work/src/tree
    label="source text: $tree_files files, $((tree_bytes >> 20)) MiB"
  else
    src=$work/src/random.bin
    label="random bytes: 1 file, $mib MiB"
  fi
  : > "$work/plain"
  : > "$work/z"
  for _ in $(seq "$repeat"); do
    one "$src" >> "$work/plain"
    one "$src" ${Z:--z} >> "$work/z"
  done
  pt=$(cut -d' ' -f1 "$work/plain" | median)
  zt=$(cut -d' ' -f1 "$work/z" | median)
  pb=$(cut -d' ' -f2 "$work/plain" | median)
  zb=$(cut -d' ' -f2 "$work/z" | median)
  levels=$(cut -d' ' -f3 "$work/z" | sort -u | paste -sd, -)
  printf '| %s | %.2f | %.2f | %.2f× | %d MiB | %d MiB | %s |\n' "$label" "$pt" "$zt" \
    "$(echo "$pt / $zt" | bc -l)" $((pb >> 20)) $((zb >> 20)) "$levels"
done
