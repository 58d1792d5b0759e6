#!/usr/bin/env bash
# Issue 10's benchmark: requests/s and CPU per request of `zcopy serve` beside a
# trivial C sendfile server (scripts/sendfile-server.c, the ceiling), nginx and
# lighttpd (when installed), all with one worker, in the same run: wrk -t1 -c64 on
# a 4 KiB and a 64 KiB file, ROUNDS rounds with the servers alternating, medians.
# CPU per request = the server's user+system ticks (/proc/PID/stat) over the run,
# divided by the requests wrk completed (summed over a server's worker processes).
#   usage: scripts/bench-serve-cpu.sh [SECONDS] [ROUNDS] [WORKERS]
#          (default 3 s, 3 rounds, 1 worker; wrk runs as many threads as workers)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
rounds=${2:-3}
workers=${3:-1}
work=$(mktemp -d /var/tmp/zcopy-serve-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

cargo build --release -q
cc -O2 -o "$work/sendfile-server" scripts/sendfile-server.c -lpthread
mkdir -p "$work/www" "$work/nginx"
. scripts/bench-lib.sh
chmod 755 "$work" "$work/www"
head -c 4096 /dev/urandom > "$work/www/4k.bin"
head -c 65536 /dev/urandom > "$work/www/64k.bin"

declare -A port pid
start_zcopy() { # name, extra args...
  local name=$1; shift
  target/release/zcopy serve "$work/www" --listen 127.0.0.1:0 --workers "$workers" --no-digest "$@" 2> "$work/$name.log" &
  pids+=($!); pid[$name]=$!
  until grep -q 'listening on' "$work/$name.log"; do sleep 0.05; done
  port[$name]=$(sed -n 's/^listening on .*://p' "$work/$name.log")
}
start_zcopy zcopy
start_zcopy zcopy-sendfile --no-memory-bodies

servers=(zcopy zcopy-sendfile)
if command -v nginx > /dev/null; then
  port[nginx]=$(free_port)
  nginx_conf $workers "    listen 127.0.0.1:${port[nginx]};
    root $work/www;"
  nginx -c "$work/nginx/nginx.conf" &
  pids+=($!)
  until curl -s -o /dev/null "http://127.0.0.1:${port[nginx]}/4k.bin"; do sleep 0.05; done
  pid[nginx]=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')
  servers+=(nginx)
fi
if command -v lighttpd > /dev/null; then
  port[lighttpd]=$(free_port)
  cat > "$work/lighttpd.conf" <<CONF
server.document-root = "$work/www"
server.bind = "127.0.0.1"
server.port = ${port[lighttpd]}
server.max-keep-alive-requests = 1000000
server.network-backend = "sendfile"
server.errorlog = "$work/lighttpd.err"
$( ((workers > 1)) && echo "server.max-worker = $workers")
CONF
  lighttpd -D -f "$work/lighttpd.conf" &
  pids+=($!); pid[lighttpd]=$!
  until curl -s -o /dev/null "http://127.0.0.1:${port[lighttpd]}/4k.bin"; do sleep 0.05; done
  # Its workers, with server.max-worker; with one worker it has no children.
  pid[lighttpd]+=" $(pgrep -P "${pid[lighttpd]}" | tr '\n' ' ' || true)"
  servers+=(lighttpd)
fi

ticks() { # the user + system ticks of these processes, all their threads
  local p sum=0
  for p in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
declare -A rps cpu
for f in 4k 64k; do
  port[c-$f]=$(free_port)
  "$work/sendfile-server" "$work/www/$f.bin" "${port[c-$f]}" "$workers" &
  pids+=($!); pid[c-$f]=$!
  until curl -s -o /dev/null "http://127.0.0.1:${port[c-$f]}/"; do sleep 0.05; done
done

for f in 4k 64k; do
  for round in $(seq "$rounds"); do
    for s in c "${servers[@]}"; do
      key=$s; [ "$s" = c ] && key=c-$f
      # shellcheck disable=SC2086 # a list of pids
      before=$(ticks ${pid[$key]})
      out=$(wrk -t"$workers" -c64 -d"${secs}s" "http://127.0.0.1:${port[$key]}/$f.bin")
      # shellcheck disable=SC2086
      after=$(ticks ${pid[$key]})
      if grep -q "Non-2xx" <<< "$out"; then echo "non-2xx responses from $s" >&2; exit 1; fi
      requests=$(awk '/requests in/ {print $1}' <<< "$out")
      rps[$s-$f]+="$(awk '/Requests\/sec/ {print $2}' <<< "$out") "
      cpu[$s-$f]+="$(echo "($after - $before) / $hz / $requests * 1000000" | bc -l) "
    done
  done
done

echo "wrk -t$workers -c64 -d${secs}s, $workers server worker(s), median of $rounds alternating rounds; machine shared"
echo
echo "| server | 4 KiB req/s | 4 KiB CPU µs/req | 4 KiB req per CPU-s | 64 KiB req/s | 64 KiB CPU µs/req | 64 KiB req per CPU-s |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for s in c "${servers[@]}"; do
  name=$s
  case $s in
    c) name="trivial C sendfile server (ceiling)";;
    zcopy) name="zcopy serve (auto: ≤ 4 KiB from memory)";;
    zcopy-sendfile) name="zcopy serve --no-memory-bodies (sendfile)";;
  esac
  row="| $name"
  for f in 4k 64k; do
    r=$(median <<< "${rps[$s-$f]}")
    c=$(median <<< "${cpu[$s-$f]}")
    row+=$(printf ' | %.0f | %.1f | %.0f' "$r" "$c" "$(echo "1000000 / $c" | bc -l)")
  done
  echo "$row |"
done
