#!/usr/bin/env bash
# Issue 10's benchmark: requests/s and CPU per request of `zcopy serve` beside a
# trivial C sendfile server (scripts/sendfile-server.c, the ceiling), nginx and
# lighttpd (when installed), all with one worker, in the same run: wrk -t1 -c64 on
# a 4 KiB and a 64 KiB file, ROUNDS rounds with the servers alternating, medians.
# CPU per request = the server's user+system ticks (/proc/PID/stat) over the run,
# divided by the requests wrk completed (summed over a server's worker processes).
# Then a 64 KiB text file (this repository's docs) asked for with Accept-Encoding:
# zcopy serve's on-the-fly gzip and zstd against nginx's `gzip on` (its default
# level 1), the servers alternating in each round.
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
cat docs/*.md README.md > "$work/docs.txt"
head -c 65536 "$work/docs.txt" > "$work/www/64k.txt"

declare -A port pid
start_zcopy() { # name, extra args...
  local name=$1; shift
  target/release/zcopy serve "$work/www" --listen 127.0.0.1:0 --workers "$workers" --no-digest "$@" 2> "$work/$name.log" &
  pids+=($!); pid[$name]=$!
  until grep -qs 'listening on' "$work/$name.log"; do sleep 0.05; done
  port[$name]=$(sed -n 's/^listening on .*://p' "$work/$name.log")
}
start_zcopy zcopy
start_zcopy zcopy-sendfile --no-memory-bodies

servers=(zcopy zcopy-sendfile)
if command -v nginx > /dev/null; then
  port[nginx]=$(free_port)
  nginx_conf $workers "    listen 127.0.0.1:${port[nginx]};
    root $work/www;
    location /gz/ { alias $work/www/; gzip on; gzip_types text/plain; }"
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
declare -A rps cpu size
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

# 64 KiB of text, compressed per request by nginx, once per version by zcopy.
declare -A text_url=(
  [nginx-gzip]="http://127.0.0.1:${port[nginx]:-0}/gz/64k.txt"
  [zcopy-gzip]="http://127.0.0.1:${port[zcopy]}/64k.txt"
  [zcopy-zstd]="http://127.0.0.1:${port[zcopy]}/64k.txt"
)
declare -A text_coding=([nginx-gzip]=gzip [zcopy-gzip]=gzip [zcopy-zstd]=zstd)
declare -A text_pid=([nginx-gzip]="${pid[nginx]:-}" [zcopy-gzip]="${pid[zcopy]}" [zcopy-zstd]="${pid[zcopy]}")
text=(zcopy-gzip zcopy-zstd)
[ -n "${pid[nginx]:-}" ] && text=(nginx-gzip "${text[@]}")
for s in "${text[@]}"; do
  got=$(curl -s -o /dev/null -w '%{size_download}' -H "Accept-Encoding: ${text_coding[$s]}" "${text_url[$s]}")
  coding=$(curl -s -D - -o /dev/null -H "Accept-Encoding: ${text_coding[$s]}" "${text_url[$s]}" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-encoding" {print $2}')
  if [ "$coding" != "${text_coding[$s]}" ]; then echo "$s did not answer in ${text_coding[$s]}" >&2; exit 1; fi
  size[$s]=$got
done
for round in $(seq "$rounds"); do
  for s in "${text[@]}"; do
    # shellcheck disable=SC2086 # a list of pids
    before=$(ticks ${text_pid[$s]})
    out=$(wrk -t"$workers" -c64 -d"${secs}s" -H "Accept-Encoding: ${text_coding[$s]}" "${text_url[$s]}")
    # shellcheck disable=SC2086
    after=$(ticks ${text_pid[$s]})
    if grep -q "Non-2xx" <<< "$out"; then echo "non-2xx responses from $s" >&2; exit 1; fi
    requests=$(awk '/requests in/ {print $1}' <<< "$out")
    rps[$s]+="$(awk '/Requests\/sec/ {print $2}' <<< "$out") "
    cpu[$s]+="$(echo "($after - $before) / $hz / $requests * 1000000" | bc -l) "
  done
done
echo
echo "64 KiB of text with Accept-Encoding, wrk -t$workers -c64 -d${secs}s, median of $rounds alternating rounds"
echo
echo "| server | coding | body bytes | req/s | CPU µs/req | req per CPU-s |"
echo "|---|---|---:|---:|---:|---:|"
for s in "${text[@]}"; do
  case $s in
    nginx-gzip) name="nginx gzip on (level 1, per request)";;
    zcopy-gzip) name="zcopy serve (gzip level 6, once per version)";;
    zcopy-zstd) name="zcopy serve (zstd level 3, once per version)";;
  esac
  r=$(median <<< "${rps[$s]}")
  c=$(median <<< "${cpu[$s]}")
  printf '| %s | %s | %s | %.0f | %.1f | %.0f |\n' "$name" "${text_coding[$s]}" "${size[$s]}" "$r" "$c" "$(echo "1000000 / $c" | bc -l)"
done
