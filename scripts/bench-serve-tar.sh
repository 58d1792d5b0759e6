#!/usr/bin/env bash
# Issue 25's benchmark: a 1 GiB folder of 10,000 files downloaded as one tar stream
# (`GET /tree/?archive=tar`: headers from memory, every file by sendfile) against
# one 1 GiB file from the same `zcopy serve` (one worker), page-cached, over
# loopback into curl -o /dev/null. Rounds alternate; medians of wall time and of
# the server's CPU (user + system ticks from /proc). Then the archive is saved,
# `tar -x`ed and compared with the folder (diff -r), not timed.
#   usage: scripts/bench-serve-tar.sh [ROUNDS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
work=$(mktemp -d /var/tmp/zcopy-serve-tar.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. scripts/bench-lib.sh

cargo build --release -q
mkdir -p "$work/www/tree" "$work/out"
head -c 1G /dev/urandom > "$work/www/1g.bin"
# The same GiB as 10,000 files of 107,374 or 107,375 bytes, in 100 folders.
split -n 10000 -a 4 -d "$work/www/1g.bin" "$work/www/tree/f"
for d in $(seq -w 0 99); do
  mkdir "$work/www/tree/d$d"
  mv "$work/www/tree/f$d"?? "$work/www/tree/d$d/"
done
cat "$work/www/1g.bin" "$work/www/tree"/*/* > /dev/null

target/release/zcopy serve "$work/www" --listen 127.0.0.1:0 --workers 1 --no-digest 2> "$work/zcopy.log" &
pids+=($!)
server=$!
until grep -q 'listening on' "$work/zcopy.log"; do sleep 0.05; done
port=$(sed -n 's/^listening on .*://p' "$work/zcopy.log")
declare -A url=([file]="http://127.0.0.1:$port/1g.bin" [tar]="http://127.0.0.1:$port/tree/?archive=tar")
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)

for ((r = 0; r < rounds; r++)); do
  for what in file tar; do
    before=$(ticks)
    start=$(date +%s%N)
    bytes=$(curl -s -o /dev/null -w '%{size_download}' "${url[$what]}")
    end=$(date +%s%N)
    after=$(ticks)
    echo "$what $bytes $(( (end - start) / 1000 )) $(echo "($after - $before) / $hz" | bc -l)" >> "$work/times"
  done
done
sed "s/^/run: /" "$work/times" >&2

curl -s -o "$work/tree.tar" "${url[tar]}"
tar -xf "$work/tree.tar" -C "$work/out"
diff -r "$work/www/tree" "$work/out/tree"
files=$(find "$work/out/tree" -type f | wc -l)

echo "1 GiB as one file and as a folder of $files files (tar: $(stat -c %s "$work/tree.tar") bytes), zcopy serve --workers 1,"
echo "curl -o /dev/null over loopback, page-cached, median of $rounds alternating rounds; tar -x of the archive = the folder (diff -r)"
echo
python3 - "$work/times" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
print("| download | bytes | wall s | GiB/s | server CPU s |")
print("|---|---:|---:|---:|---:|")
for what, label in (("file", "one 1 GiB file"), ("tar", "folder of 10,000 files as tar")):
    runs = [r for r in rows if r[0] == what]
    size = int(runs[0][1])
    wall = statistics.median(int(r[2]) for r in runs) / 1e6
    cpu = statistics.median(float(r[3]) for r in runs)
    med[what] = size / wall
    print(f"| {label} | {size} | {wall:.3f} | {size / wall / 2**30:.2f} | {cpu:.2f} |")
print()
print(f"tar rate / file rate: {med['tar'] / med['file']:.2f}")
PY
