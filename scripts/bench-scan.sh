#!/usr/bin/env bash
# Issue 9's scan goals, measured in one run: each zcopy command against its peer
# tool on a page-cached file, runs alternating between the two (so that a busy
# neighbour slows both alike), medians of wall and CPU ms, and the ratio peer/zcopy.
#   usage: scripts/bench-scan.sh [SIZE_MIB] [ROUNDS] [WORK_DIR]   (default 1024, 9, /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-9}
work=$(mktemp -d "${3:-/var/tmp}/zcopy-bench-scan.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --release -q
zcopy=$PWD/target/release/zcopy
head -c "$((size_mib << 20))" /dev/urandom > "$work/data"
cat "$work/data" > /dev/null

. scripts/bench-lib.sh

# pair LABEL "PEER COMMAND" "ZCOPY COMMAND"
pair() {
  local label=$1 peer=$2 ours=$3 i
  : > "$work/peer"
  : > "$work/ours"
  $peer "$work/data" > /dev/null 2>&1
  $ours "$work/data" > /dev/null
  for ((i = 0; i < rounds; i++)); do
    run $peer "$work/data" >> "$work/peer"
    run $ours "$work/data" >> "$work/ours"
  done
  local p o pc oc
  p=$(column_median "$work/peer" 1)
  o=$(column_median "$work/ours" 1)
  pc=$(column_median "$work/peer" 2)
  oc=$(column_median "$work/ours" 2)
  printf '| %s | `%s` | %s (%s) | `%s` | %s (%s) | %s |\n' "$label" "$peer" "$p" "$pc" \
    "zcopy ${ours#"$zcopy" }" "$o" "$oc" "$(ratio "$p" "$o")"
}

echo "$size_mib MiB page-cached, $rounds alternating runs each, medians of wall and CPU time;"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo
echo "| digest | peer | ms (CPU ms) | zcopy | ms (CPU ms) | peer / zcopy |"
echo "|---|---|---:|---|---:|---:|"
pair "XXH3" "xxhsum -H3" "$zcopy scan --digest xxh3"
pair "XXH3, read engine" "xxhsum -H3" "$zcopy scan --digest xxh3 --engine read"
pair "XXH3, mmap engine" "xxhsum -H3" "$zcopy scan --digest xxh3 --engine mmap"
pair "XXH64 (default)" "xxhsum" "$zcopy scan"
pair "BLAKE3" "b3sum" "$zcopy scan --digest blake3"
pair "BLAKE3, pread engine" "b3sum" "$zcopy scan --digest blake3 --engine pread"
