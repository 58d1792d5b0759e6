#!/usr/bin/env bash
# Issue 11's benchmark over loopback, alternating the contenders, median of REPEAT
# runs. Each run receives into a freshly made ext4 image (with its journal) on a loop
# device, as scripts/bench-cp-tree.sh does: into a directory of the root file system,
# a run's ratio depended on what the runs before it had written and deleted there
# (1 GiB file -> file gave 0.42-0.59x `nc -> nc` in one run and 1.3x in a rerun).
# Without root (no mkfs, no mount) it falls back to that directory and says so.
#  - a tree of 20,000 files of 4 KiB in 200 directories: zcopy send/recv (every file
#    verified) against `tar c | nc -N` → `nc -l | tar x`;
#  - a 1 GiB page-cached file: zcopy framed (digest checked), zcopy --raw, and
#    `nc -N < file` → `nc -l > file`.
# Each time runs from the sender's start until the receiver has exited.
#   usage: scripts/bench-transfer.sh [REPEAT]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-5}
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
cleanup() {
  umount "$work/out" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
images=yes
if [ "$(id -u)" != 0 ] || ! command -v mkfs.ext4 > /dev/null; then
  images=no
  echo "bench-transfer.sh: not root or no mkfs.ext4: receiving into a directory of $work, whose history can sway the ratios" >&2
fi

cargo build --release -q -p zcopy-cli
zcopy=$PWD/target/release/zcopy

mkdir "$work/tree"
for d in $(seq 200); do
  mkdir "$work/tree/d$d"
  head -c $((100 * 4096)) /dev/urandom > "$work/blob"
  split -b 4096 -d -a 3 "$work/blob" "$work/tree/d$d/f"
done
rm "$work/blob"
head -c $((1 << 30)) /dev/urandom > "$work/big"
cat "$work/big" > /dev/null # page-cached, as the issue asks

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
await_port() { until ss -ltn | grep -q "127.0.0.1:$1 "; do sleep 0.01; done; }
now() { date +%s.%N; }
fresh() {
  if [ $images = yes ]; then
    umount "$work/out" 2> /dev/null || true
    mkdir -p "$work/out"
    truncate -s 3G "$work/ext4.img"
    mkfs.ext4 -q -F "$work/ext4.img"
    mount -o loop "$work/ext4.img" "$work/out"
  else
    rm -rf "$work/out"
    mkdir "$work/out"
  fi
  sync
}

# Each contender prints its wall time in seconds.
zcopy_tree() {
  fresh
  rm -f "$work/recv.log"
  "$zcopy" recv --listen 127.0.0.1:0 -o "$work/out" --once -q 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  local addr; addr=$(sed -n 's/^listening on //p' "$work/recv.log")
  local start; start=$(now)
  "$zcopy" send -q "$work/tree" "$addr"
  wait $pid
  echo "$(now) - $start" | bc
}
tar_nc_tree() {
  fresh
  local p; p=$(port)
  (nc -l 127.0.0.1 "$p" | tar x -C "$work/out") &
  local pid=$!
  await_port "$p"
  local start; start=$(now)
  tar c -C "$work" tree | nc -N 127.0.0.1 "$p"
  wait $pid
  echo "$(now) - $start" | bc
}
zcopy_big() { # extra flags for both sides
  fresh
  rm -f "$work/recv.log"
  "$zcopy" recv --listen 127.0.0.1:0 -o "$work/out/big" --once -q "$@" 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  local addr; addr=$(sed -n 's/^listening on //p' "$work/recv.log")
  local start; start=$(now)
  "$zcopy" send -q "$work/big" "$addr" "$@"
  wait $pid
  echo "$(now) - $start" | bc
}
nc_big() {
  fresh
  local p; p=$(port)
  nc -l 127.0.0.1 "$p" > "$work/out/big" &
  local pid=$!
  await_port "$p"
  local start; start=$(now)
  nc -N 127.0.0.1 "$p" < "$work/big"
  wait $pid
  echo "$(now) - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A times
contenders=(zcopy_tree tar_nc_tree "zcopy_big" "zcopy_big --raw" nc_big)
for _ in $(seq "$repeat"); do
  for c in "${contenders[@]}"; do
    times[$c]+="$($c) "
  done
done
med() { printf '%s\n' ${times[$1]} | median; }

echo "| transfer (loopback, median of $repeat, alternating) | seconds | rate | vs the tar/nc pipe |"
echo "|---|---:|---:|---:|"
t_tar=$(med tar_nc_tree); t_nc=$(med nc_big)
row() { # label, key, files/s or MiB/s numerator, unit, reference
  local t; t=$(med "$2")
  printf '| %s | %.3f | %.0f %s | %.2f× |\n' "$1" "$t" "$(echo "$3 / $t" | bc -l)" "$4" "$(echo "$5 / $t" | bc -l)"
}
row "20,000 × 4 KiB: zcopy send → recv (every file verified)" zcopy_tree 20000 files/s "$t_tar"
row "20,000 × 4 KiB: tar c \| nc -N → nc -l \| tar x" tar_nc_tree 20000 files/s "$t_tar"
row "1 GiB: zcopy send → recv (framed, digest checked)" zcopy_big 1024 MiB/s "$t_nc"
row "1 GiB: zcopy send --raw → recv --raw" "zcopy_big --raw" 1024 MiB/s "$t_nc"
row "1 GiB: nc -N < file → nc -l > file" nc_big 1024 MiB/s "$t_nc"
