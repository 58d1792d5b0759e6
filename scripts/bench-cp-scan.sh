#!/usr/bin/env bash
# Issue 5's benchmarks, side by side in one run with hyperfine (mean of runs):
#   scan of a page-cached file with XXH3 against `xxhsum -H3`;
#   scan --engine direct of a cold file against `dd iflag=direct`;
#   cp of the file on ext4 (the work dir's file system) against GNU cp;
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
   -n "zcopy scan --digest xxh3 (auto = pread ring)" "$zcopy scan --digest xxh3 $work/data" \
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
echo "### cp, $size_mib MiB on $(df --output=fstype "$work" | tail -1)"
echo "| command | mean | min | max | relative |"
echo "|---|---|---|---|---|"
hf --prepare "rm -f $work/copy; sync" -n "GNU cp" "cp $work/data $work/copy" \
   -n "zcopy cp" "$zcopy cp $work/data $work/copy"

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
