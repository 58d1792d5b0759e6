#!/usr/bin/env bash
# Issue 24's benchmark: a 1 GiB file the receiver holds in an older version, sent
# again by zcopy (a delta into the old file's extents) and by rsync --no-W to an
# rsync daemon, both on loopback inside a network namespace of their own, so its
# loopback counts their bytes only (TCP/IP headers included, both directions).
# Two edits of a random 1 GiB file: 1 MiB overwritten in place, and 100 bytes
# inserted at 1/3 and 2/3. Each receives into a btrfs image and an ext4 image on
# loop devices, into a fresh copy of the old file every run; on btrfs it also
# counts how much of the new file still shares extents with the old one
# (`btrfs filesystem du`, against a reflinked copy of the old file kept aside).
# Median of REPEAT runs, the contenders alternating. Needs root, mkfs.btrfs,
# mkfs.ext4, rsync, ip. MIB changes the file's size (for a quick try).
#   usage: scripts/bench-delta.sh [REPEAT [MIB]]      (default 3, 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-3}
mib=${2:-1024}
for tool in mkfs.btrfs mkfs.ext4 rsync ip btrfs; do
  command -v $tool > /dev/null || { echo "bench-delta.sh: needs $tool (scripts/test.sh installs it)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench-delta.sh: needs root (loop devices, mounts, a network namespace)" >&2; exit 1; }
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
ns=zcopy-delta-$$
cleanup() {
  ip netns pids $ns 2> /dev/null | xargs -r kill 2> /dev/null || true
  ip netns del $ns 2> /dev/null || true
  for fs in btrfs ext4; do umount "$work/$fs" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add $ns
ip -n $ns link set lo up
in_ns() { ip netns exec $ns "$@"; }
lo_bytes() { in_ns cat /sys/class/net/lo/statistics/tx_bytes; }

cargo build --release -q -p zcopy-cli
zcopy=$PWD/target/release/zcopy

mkdir "$work/src"
head -c $((mib << 20)) /dev/urandom > "$work/src/old"
cp "$work/src/old" "$work/src/overwritten"
head -c $((1 << 20)) /dev/urandom | dd of="$work/src/overwritten" bs=1M seek=$((mib * 2 / 3)) conv=notrunc status=none
third=$(((mib << 20) / 3))
piece() { dd if="$work/src/old" bs=1M iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none; }
{
  piece 0 $third
  head -c 100 /dev/urandom
  piece $third $third
  head -c 100 /dev/urandom
  piece $((2 * third)) $(((mib << 20) - 2 * third))
} > "$work/src/inserted"
touch -d '2 days ago' "$work/src/old"
cat "$work/src/"* > /dev/null # page-cached

for fs in btrfs ext4; do
  mkdir "$work/$fs"
  truncate -s $((mib * 6 + 512))M "$work/$fs.img"
  if [ $fs = btrfs ]; then mkfs.btrfs -q "$work/$fs.img" > /dev/null; else mkfs.ext4 -q -F "$work/$fs.img"; fi
  mount -o loop "$work/$fs.img" "$work/$fs"
  mkdir "$work/$fs/zcopy" "$work/$fs/rsync"
done
cat > "$work/rsyncd.conf" << CONF
use chroot = no
uid = root
gid = root
[btrfs]
path = $work/btrfs/rsync
read only = false
[ext4]
path = $work/ext4/rsync
read only = false
CONF
in_ns rsync --daemon --no-detach --address=127.0.0.1 --port=8730 --config="$work/rsyncd.conf" &
until in_ns ss -ltn | grep -q '127.0.0.1:8730 '; do sleep 0.05; done

now() { date +%s.%N; }
# The old version in place, fresh: a plain copy (sharing nothing), older mtime;
# on btrfs a reflinked copy beside it, to count what the new file shares.
old_in() {
  rm -f "$1/img" "$1/kept"
  cp --reflink=never -p "$work/src/old" "$1/img"
  [ "${1#"$work/btrfs"}" != "$1" ] && cp --reflink=always "$1/img" "$1/kept"
  sync
}
# The percentage of $1 shared with other files (the kept old version), on btrfs.
shared() {
  sync
  btrfs filesystem du --raw "$1" | awk 'NR == 2 { printf "%.1f", 100 * (1 - $2 / $1) }'
}
# Each contender: NEW FS; prints "seconds wire_bytes shared%".
zcopy_run() {
  local dir=$work/$2/zcopy
  old_in "$dir"
  rm -f "$work/recv.log"
  in_ns "$zcopy" recv --listen 127.0.0.1:0 -o "$dir" --once -q 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  local addr; addr=$(sed -n 's/^listening on //p' "$work/recv.log")
  cp -p "$work/src/$1" "$work/src/img"
  local before; before=$(lo_bytes)
  local start; start=$(now)
  in_ns "$zcopy" send -q "$work/src/img" "$addr"
  wait $pid
  local end; end=$(now)
  cmp -s "$work/src/img" "$dir/img" || { echo "zcopy: $dir/img differs" >&2; exit 1; }
  echo "$(echo "$end - $start" | bc) $(($(lo_bytes) - before)) $([ "$2" = btrfs ] && shared "$dir/img" || echo -)"
}
rsync_run() {
  local dir=$work/$2/rsync
  old_in "$dir"
  cp -p "$work/src/$1" "$work/src/img"
  local before; before=$(lo_bytes)
  local start; start=$(now)
  in_ns rsync --no-W -t "$work/src/img" "rsync://127.0.0.1:8730/$2/img"
  local end; end=$(now)
  cmp -s "$work/src/img" "$dir/img" || { echo "rsync: $dir/img differs" >&2; exit 1; }
  echo "$(echo "$end - $start" | bc) $(($(lo_bytes) - before)) $([ "$2" = btrfs ] && shared "$dir/img" || echo -)"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| file system | edit of the $mib MiB file | zcopy s | rsync --no-W s | zcopy faster | zcopy on the wire | rsync on the wire | shared with the old file: zcopy / rsync |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for fs in btrfs ext4; do
  for edit in overwritten inserted; do
    : > "$work/z" ; : > "$work/r"
    for _ in $(seq "$repeat"); do
      zcopy_run $edit $fs >> "$work/z"
      rsync_run $edit $fs >> "$work/r"
    done
    zt=$(cut -d' ' -f1 "$work/z" | median); rt=$(cut -d' ' -f1 "$work/r" | median)
    zb=$(cut -d' ' -f2 "$work/z" | median); rb=$(cut -d' ' -f2 "$work/r" | median)
    zs=$(cut -d' ' -f3 "$work/z" | sort | tail -1); rs=$(cut -d' ' -f3 "$work/r" | sort | tail -1)
    case $edit in overwritten) what="1 MiB overwritten in place" ;; *) what="100 B inserted at 1/3 and 2/3" ;; esac
    printf '| %s | %s | %.2f | %.2f | %.2f× | %d B (%.2f%%) | %d B (%.2f%%) | %s%% / %s%% |\n' \
      $fs "$what" "$zt" "$rt" "$(echo "$rt / $zt" | bc -l)" \
      "$zb" "$(echo "100 * $zb / ($mib * 2^20)" | bc -l)" "$rb" "$(echo "100 * $rb / ($mib * 2^20)" | bc -l)" "$zs" "$rs"
  done
done
