#!/usr/bin/env bash
# zcopy's own part of the tree rows of bench-mirror.sh, without ssh: a local
# `zcopy send` of 20,000 files of 4 KiB (200 directories) to a `zcopy recv
# --once` on 127.0.0.1, into a fresh tmpfs and into a freshly made ext4 image on
# a loop device, then the same send again with nothing changed (the quick
# check). Several builds can be compared in one run (ZCOPY...: binaries, e.g. a
# copy of target/release/zcopy from before a change and the one after); builds
# and targets alternate within each round. Wall ms from the sender's start to
# the receiver's exit, the receiver's CPU ms (user + system), and for the
# re-sync the sender's send/recv calls on the control connection (strace -c,
# a separate untimed run).
#   usage: scripts/bench-recv-small.sh [ROUNDS] [ZCOPY...]   (default 5, target/release/zcopy)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shift || true
[ "$(id -u)" = 0 ] || { echo "bench-recv-small.sh: needs root (mount, mkfs)" >&2; exit 1; }
if [ $# = 0 ]; then
  cargo build --release -q -p zcopy-cli
  set -- "$PWD/target/release/zcopy"
fi
builds=("$@")
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/zcopy-bench-recv-small.XXXXXX")
out=$work/out
cleanup() {
  umount "$out" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. scripts/bench-lib.sh

mkdir -p "$work/tree" "$out"
for d in $(seq 200); do
  mkdir "$work/tree/d$d"
  head -c $((100 * 4096)) /dev/urandom > "$work/blob"
  split -b 4096 -d -a 3 "$work/blob" "$work/tree/d$d/f"
done
rm "$work/blob"
find "$work/tree" -type f -exec cat {} + > /dev/null
truncate -s 3G "$work/ext4.img"

fresh() {
  umount "$out" 2> /dev/null || true
  case $1 in
    tmpfs) mount -t tmpfs -o size=1g tmpfs "$out" ;;
    ext4)
      mkfs.ext4 -q -F "$work/ext4.img"
      mount -o loop "$work/ext4.img" "$out"
      ;;
  esac
  sync
}

# once ZCOPY: one send of the tree into $out; prints "WALL_MS RECV_CPU_MS".
once() {
  rm -f "$work/recv.log"
  /usr/bin/time -f '%U %S' -o "$work/recv.time" "$1" recv --listen 127.0.0.1:0 -o "$out" --once -q 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  local addr start end
  addr=$(sed -n 's/^listening on //p' "$work/recv.log")
  start=$(date +%s%N)
  "$1" send -q "$work/tree" "$addr"
  wait $pid
  end=$(date +%s%N)
  awk -v ns="$((end - start))" '{ printf "%.1f %d\n", ns / 1e6, ($1 + $2) * 1000 }' "$work/recv.time"
}

targets=(tmpfs ext4)
for ((b = 0; b < ${#builds[@]}; b++)); do
  for t in "${targets[@]}"; do : > "$work/first.$b.$t"; : > "$work/again.$b.$t"; done
done
for ((round = 0; round < rounds; round++)); do
  for ((k = 0; k < ${#builds[@]}; k++)); do
    b=$(((k + round) % ${#builds[@]}))
    for t in "${targets[@]}"; do
      fresh "$t"
      once "${builds[$b]}" >> "$work/first.$b.$t"
      once "${builds[$b]}" >> "$work/again.$b.$t"
    done
  done
done

# The re-sync's calls on the sender's sockets, counted once per build (tmpfs).
calls() {
  fresh tmpfs
  once "$1" > /dev/null
  rm -f "$work/recv.log"
  "$1" recv --listen 127.0.0.1:0 -o "$out" --once -q 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  strace -f -c -o "$work/strace" -e trace=sendto,recvfrom,write,read "$1" send -q "$work/tree" "$(sed -n 's/^listening on //p' "$work/recv.log")"
  wait $pid
  awk '$NF == "sendto" || $NF == "recvfrom" { printf "%s %s, ", $(NF-1), $NF }' "$work/strace" | sed 's/, $//'
}

echo "local zcopy send -> recv --once of 20,000 x 4 KiB (200 directories) on 127.0.0.1;"
echo "$rounds rounds, builds and targets alternating, medians of wall ms (receiver CPU ms)"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| build | first copy, tmpfs | first copy, ext4 | re-sync, nothing changed, tmpfs | re-sync, ext4 | re-sync: sender's socket calls |"
echo "|---|---:|---:|---:|---:|---|"
for ((b = 0; b < ${#builds[@]}; b++)); do
  line="| ${builds[$b]} |"
  for row in first again; do
    for t in "${targets[@]}"; do
      f=$work/$row.$b.$t
      line+=" $(column_median "$f" 1) ($(column_median "$f" 2)) |"
    done
  done
  if command -v strace > /dev/null; then
    line+=" $(calls "${builds[$b]}") |"
  else
    line+=" (no strace) |"
  fi
  echo "$line"
done
