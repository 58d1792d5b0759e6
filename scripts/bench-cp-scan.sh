#!/usr/bin/env bash
# Issue 5's benchmarks, side by side in one run (hyperfine's mean of runs, cp alternating):
#   scan of a page-cached file with XXH3 against `xxhsum -H3`;
#   scan --engine direct of a cold file against `dd iflag=direct`;
#   cp of the file and of a 10 GiB sparse file on ext4 (the work dir's file system)
#   against GNU cp, alternating;
#   cp --reflink on a btrfs loop image (root only).
#   usage: scripts/bench-cp-scan.sh [SIZE_MIB] [WORK_DIR]     (default 1024, /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
work=$(mktemp -d "${2:-/var/tmp}/zcopy-bench.XXXXXX")
mnt=""
loopdev=""
cleanup() {
  if [ -n "$mnt" ]; then umount "$mnt" || true; fi
  if [ -n "$loopdev" ]; then losetup -d "$loopdev" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release -q
zcopy=$PWD/target/release/zcopy
head -c "$((size_mib << 20))" /dev/urandom > "$work/data"
sync
hf() { hyperfine -N --style basic --warmup 1 --runs "${RUNS:-5}" --export-markdown "$work/out.md" "$@" > /dev/null; tail -n +3 "$work/out.md"; }

echo "### scan, $size_mib MiB page-cached, XXH3"
echo "| command | mean | min | max | relative |"
echo "|---|---|---|---|---|"
cat "$work/data" > /dev/null
hf -n "xxhsum -H3" "xxhsum -H3 $work/data" \
   -n "zcopy scan --digest xxh3 (auto = pread pair)" "$zcopy scan --digest xxh3 $work/data" \
   -n "zcopy scan --digest xxh3 --engine read" "$zcopy scan --digest xxh3 --engine read $work/data"

echo
echo "### scan --engine direct against dd iflag=direct, cold file"
echo "| command | mean | min | max | relative |"
echo "|---|---|---|---|---|"
# dd with count=0 and oflag=nocache asks the kernel to drop the file's cached pages.
drop="dd of=$work/data oflag=nocache conv=notrunc,fdatasync count=0 status=none"
hf --prepare "$drop" -n "dd iflag=direct bs=4M" "dd if=$work/data of=/dev/null bs=4M iflag=direct status=none" \
   -n "zcopy scan --engine direct" "$zcopy scan --engine direct --buffer 4MiB $work/data"

echo
. scripts/bench-lib.sh

# cp_pair LABEL SOURCE: GNU cp and zcopy cp of SOURCE, alternating, the copy removed and
# the file system synced before each run (hyperfine runs one command's runs in a row,
# and each 1 GiB copy leaves a GiB of page cache for the next run to reclaim: the
# command measured second paid for the first). Medians of wall and CPU ms.
cp_pair() {
  local label=$1 src=$2 i
  : > "$work/peer"
  : > "$work/ours"
  for ((i = 0; i < ${RUNS:-5}; i++)); do
    rm -f "$work/copy"; sync
    run cp "$src" "$work/copy" >> "$work/peer"
    rm -f "$work/copy"; sync
    run "$zcopy" cp "$src" "$work/copy" >> "$work/ours"
  done
  local p o
  p=$(column_median "$work/peer" 1)
  o=$(column_median "$work/ours" 1)
  printf '| %s | %s (%s) | %s (%s) | %s |\n' "$label" "$p" "$(column_median "$work/peer" 2)" \
    "$o" "$(column_median "$work/ours" 2)" "$(ratio "$p" "$o")"
}

echo "### cp on $(df --output=fstype "$work" | tail -1), ${RUNS:-5} alternating runs, medians in ms (CPU ms)"
echo "| file | GNU cp | zcopy cp | GNU / zcopy |"
echo "|---|---:|---:|---:|"
cp_pair "$size_mib MiB" "$work/data"
# A 10 GiB sparse file: four 64 MiB extents of data, the rest holes.
truncate -s 10G "$work/sparse"
for at in 0 3000 6000 9000; do
  dd if="$work/data" of="$work/sparse" bs=1M count=64 seek="$at" conv=notrunc status=none
done
cp_pair "10 GiB sparse (256 MiB of data)" "$work/sparse"
rm -f "$work/sparse" "$work/copy"

if [ "$(id -u)" = 0 ] && command -v mkfs.btrfs > /dev/null; then
  truncate -s "$((size_mib * 2 + 512))M" "$work/btrfs.img"
  mkfs.btrfs -q "$work/btrfs.img"
  loopdev=$(losetup -f --show "$work/btrfs.img")
  mnt="$work/mnt"
  mkdir "$mnt"
  mount "$loopdev" "$mnt"
  cp "$work/data" "$mnt/data"
  sync
  echo
  echo "### cp --reflink on btrfs (loop image), $size_mib MiB"
  echo "| command | mean | min | max | relative |"
  echo "|---|---|---|---|---|"
  hf --prepare "rm -f $mnt/copy" -n "GNU cp --reflink=always" "cp --reflink=always $mnt/data $mnt/copy" \
     -n "zcopy cp --reflink=always" "$zcopy cp --reflink=always $mnt/data $mnt/copy"
fi
