#!/usr/bin/env bash
# Issue 9's cp -r goal: a tree of 20,000 files of 4 KiB (200 directories of 100)
# copied by GNU cp, xcp (if installed) and zcopy cp, with and without --inplace.
# Each run copies into a freshly made ext4 image (with its journal, as ext4 is made
# by default) on a loop device: on a file system where the last run's 20,000 files
# were just deleted, ext4 without a journal spends most of the time skipping
# recently freed inodes (`recently_deleted` in perf), whatever the tool. Tools
# rotate within each round; medians of wall and CPU ms. Root only.
#   usage: scripts/bench-cp-tree.sh [ROUNDS] [WORK_DIR]    (default 7, /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
[ "$(id -u)" = 0 ] || { echo "bench-cp-tree.sh: needs root (mkfs, mount)" >&2; exit 1; }
work=$(mktemp -d "${2:-/var/tmp}/zcopy-bench-tree.XXXXXX")
mnt=$work/mnt
cleanup() {
  umount "$mnt" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release -q
zcopy=$PWD/target/release/zcopy
. scripts/bench-lib.sh

for d in $(seq 0 199); do
  mkdir -p "$work/src/d$d"
  for f in $(seq 0 99); do head -c 4096 /dev/urandom > "$work/src/d$d/f$f"; done
done
# Written back and cached before the first run, so that no run shares the disk
# with the tree's own write-back.
sync
cat "$work"/src/*/* > /dev/null
truncate -s 2G "$work/ext4.img"
mkdir "$mnt"

tools=("cp -r" "$zcopy cp -r" "$zcopy cp -r --inplace")
if command -v xcp > /dev/null; then tools+=("xcp -r"); fi
for ((i = 0; i < ${#tools[@]}; i++)); do : > "$work/times.$i"; done
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#tools[@]}; k++)); do
    i=$(((k + r) % ${#tools[@]}))
    umount "$mnt" 2> /dev/null || true
    mkfs.ext4 -q -F "$work/ext4.img"
    mount -o loop "$work/ext4.img" "$mnt"
    sync
    run ${tools[$i]} "$work/src" "$mnt/dst" >> "$work/times.$i"
  done
done

gnu=$(column_median "$work/times.0" 1)
echo "20,000 files of 4 KiB into a fresh ext4 image, $rounds rounds, medians;"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| command | ms (CPU ms) | × GNU cp |"
echo "|---|---:|---:|"
for ((i = 0; i < ${#tools[@]}; i++)); do
  wall=$(column_median "$work/times.$i" 1)
  printf '| `%s` | %s (%s) | %s |\n' "${tools[$i]/#$zcopy/zcopy}" "$wall" \
    "$(column_median "$work/times.$i" 2)" "$(ratio "$gnu" "$wall")"
done
