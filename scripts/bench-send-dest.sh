#!/usr/bin/env bash
# Issue 27: why a copying send beats sendfile into some destinations, measured per
# destination kind. A 1 GiB page-cached file goes from `zcopy send --raw` (sendfile,
# splice, read-write at 16 KiB and 128 KiB) and from `nc -N` into
#  - nc:     `nc -l` on 127.0.0.1, a copying reader (read(2) of 16 KiB);
#  - splice: `zcopy recv --raw --engine splice` on 127.0.0.1, a splice reader;
#  - pipe:   `| cat > /dev/null` (zcopy through `zcopy cp --engine E FILE /dev/stdout`,
#            whose read-write buffer is 128 KiB; `cat FILE` in nc's place);
#  - unix:   `nc -lU`, a copying reader on a Unix socket (send has no Unix-socket
#            address, so only `nc -NU` is timed there; the calibration measures the
#            engines into one).
# Whole-process runs, the contenders alternating, REPEAT rounds; medians of the wall
# time (sender's start to receiver's exit) and of sender and receiver CPU (GNU time,
# user + system). Then one run per pair under system-wide `perf stat` for syscalls,
# context switches and the receiver's skb copies (per GiB).
#   usage: flock -x /tmp/zcopy-bench.lock scripts/bench-send-dest.sh [REPEAT]  (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-5}
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
trap 'rm -rf "$work"' EXIT
. scripts/bench-lib.sh

[ -x target/release/zcopy ] || cargo build --release -q -p zcopy-cli
zcopy=$PWD/target/release/zcopy
big=$work/big
head -c $((1 << 30)) /dev/urandom > "$big"
cat "$big" > /dev/null

senders="sendfile splice rw16k rw128k peer"
await_port() { until ss -ltn | grep -q "127.0.0.1:$1 "; do sleep 0.01; done; }
await_unix() { until [ -S "$1" ]; do sleep 0.01; done; }
now() { date +%s%N; }
cpu() { awk '{ printf "%d", ($1 + $2) * 1000 }' "$1"; }
timed() { local out=$1; shift; /usr/bin/time -f '%U %S' -o "$out" "$@"; }

# zcopy send --raw's flags for a sender name, or nothing for the peer.
engine_flags() {
  case $1 in
    sendfile | splice) echo "--engine $1" ;;
    rw16k) echo "--engine read-write --buffer 16KiB" ;;
    rw128k) echo "--engine read-write --buffer 128KiB" ;;
  esac
}

# One run of sender $1 into destination $2: "WALL_MS SENDER_CPU_MS RECEIVER_CPU_MS",
# or nothing when the pair does not exist.
pair() {
  local s=$1 d=$2 p start rpid
  case $d in
    nc | splice)
      p=$(free_port)
      if [ "$d" = nc ]; then
        timed "$work/rt" nc -l 127.0.0.1 "$p" > /dev/null &
      else
        timed "$work/rt" "$zcopy" recv --raw --engine splice --listen "127.0.0.1:$p" --once -q > /dev/null 2>&1 &
      fi
      rpid=$!
      await_port "$p"
      start=$(now)
      if [ "$s" = peer ]; then
        timed "$work/st" nc -N 127.0.0.1 "$p" < "$big"
      else
        # shellcheck disable=SC2046
        timed "$work/st" "$zcopy" send --raw -q $(engine_flags "$s") "$big" "127.0.0.1:$p"
      fi
      wait $rpid
      ;;
    pipe)
      [ "$s" = rw16k ] && return 0
      [ "$s" = rw128k ] && s=read-write
      start=$(now)
      if [ "$s" = peer ]; then
        timed "$work/st" cat "$big" | timed "$work/rt" cat > /dev/null
      else
        timed "$work/st" "$zcopy" cp --engine "$s" "$big" /dev/stdout | timed "$work/rt" cat > /dev/null
      fi
      ;;
    unix)
      [ "$s" = peer ] || return 0
      rm -f "$work/sock"
      timed "$work/rt" nc -lU "$work/sock" > /dev/null &
      rpid=$!
      await_unix "$work/sock"
      start=$(now)
      timed "$work/st" nc -NU "$work/sock" < "$big"
      wait $rpid
      ;;
  esac
  echo "$((($(now) - start) / 1000000)) $(cpu "$work/st") $(cpu "$work/rt")"
}

dests="nc splice pipe unix"
for round in $(seq "$repeat"); do
  for d in $dests; do
    for s in $senders; do
      r=$(pair "$s" "$d")
      [ -n "$r" ] && echo "$r" >> "$work/$d-$s"
    done
  done
  echo "round $round of $repeat done" >&2
done

events=syscalls:sys_enter_sendfile64,syscalls:sys_enter_splice,syscalls:sys_enter_write
events=$events,syscalls:sys_enter_read,syscalls:sys_enter_pread64,context-switches
events=$events,skb:skb_copy_datagram_iovec
count() { awk -F, -v e="$1" '$3 == e { printf "%d", $1 }' "$work/perf"; }

echo "1 GiB page-cached, $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, Linux $(uname -r), $(date -u +%F)"
echo "medians of $repeat alternating runs; CPU = user + system (GNU time); counts from one run under perf stat -a"
printf '%-7s %-9s %8s %8s %8s %8s | %9s %9s %9s %9s %9s %8s %9s\n' \
  dest sender wall_ms MiB/s snd_cpu rcv_cpu sendfile splice write read pread ctxsw skb_copy
for d in $dests; do
  for s in $senders; do
    f=$work/$d-$s
    [ -s "$f" ] || continue
    wall=$(column_median "$f" 1)
    # shellcheck disable=SC2016
    perf stat -a -x, -o "$work/perf" -e "$events" -- bash -c "$(declare -f pair engine_flags await_port await_unix now cpu timed free_port); $(declare -p zcopy big work); pair $s $d" > /dev/null
    printf '%-7s %-9s %8s %8.0f %8s %8s | %9s %9s %9s %9s %9s %8s %9s\n' "$d" "$s" "$wall" \
      "$(awk -v w="$wall" 'BEGIN { print 1024 / (w / 1000) }')" \
      "$(column_median "$f" 2)" "$(column_median "$f" 3)" \
      "$(count syscalls:sys_enter_sendfile64)" "$(count syscalls:sys_enter_splice)" \
      "$(count syscalls:sys_enter_write)" "$(count syscalls:sys_enter_read)" \
      "$(count syscalls:sys_enter_pread64)" "$(count context-switches)" \
      "$(count skb:skb_copy_datagram_iovec)"
  done
done
