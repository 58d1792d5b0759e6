#!/usr/bin/env bash
# Issue 4's benchmark: nginx (sendfile on, tcp_nopush on, access log off, one
# worker) and `zcopy serve --workers 1` on the same files, in the same run:
#   wrk -t1 -c64 on a 4 KiB and a 64 KiB file (requests/s);
#   curl of a 1 GiB page-cached file (throughput);
#   resident memory of the server holding 10,000 idle keep-alive connections.
#   usage: scripts/bench-serve.sh [SECONDS]     (default 10 per wrk run)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
work=$(mktemp -d /var/tmp/zcopy-serve.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

cargo build --release -q
mkdir -p "$work/www" "$work/nginx"
. scripts/bench-lib.sh
chmod 755 "$work" "$work/www" # nginx workers run as nobody
head -c 4096 /dev/urandom > "$work/www/4k.bin"
head -c 65536 /dev/urandom > "$work/www/64k.bin"
head -c 1G /dev/urandom > "$work/www/1g.bin"
cat "$work/www/1g.bin" > /dev/null

nginx_port=$(free_port)
nginx_conf 1 "    listen 127.0.0.1:$nginx_port;
    root $work/www;"
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
target/release/zcopy serve "$work/www" --listen 127.0.0.1:0 --workers 1 2> "$work/zcopy.log" &
pids+=($!)
zcopy_pid=$!
until grep -q 'listening on' "$work/zcopy.log"; do sleep 0.05; done
zcopy_port=$(sed -n 's/^listening on .*://p' "$work/zcopy.log")
until curl -s -o /dev/null "http://127.0.0.1:$nginx_port/4k.bin"; do sleep 0.05; done
nginx_worker=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | head -1)

rps() { # fails loudly if any response was not 2xx
  local out; out=$(wrk -t1 -c64 -d"${secs}s" "$1")
  if grep -q "Non-2xx" <<< "$out"; then echo "non-2xx responses from $1" >&2; exit 1; fi
  awk "/Requests\/sec/ {print \$2}" <<< "$out"
}
echo "| measure | nginx 1 worker | zcopy serve --workers 1 | zcopy / nginx |"
echo "|---|---:|---:|---:|"
for f in 4k 64k; do
  n=$(rps "http://127.0.0.1:$nginx_port/$f.bin")
  z=$(rps "http://127.0.0.1:$zcopy_port/$f.bin")
  printf '| %s file, requests/s (wrk -t1 -c64, %ss) | %.0f | %.0f | %.2f |\n' "$f" "$secs" "$n" "$z" "$(echo "$z / $n" | bc -l)"
done
speed() { curl -s -o /dev/null -w '%{speed_download}' "$1"; }
n=$(speed "http://127.0.0.1:$nginx_port/1g.bin")
z=$(speed "http://127.0.0.1:$zcopy_port/1g.bin")
printf '| 1 GiB file with curl, MiB/s | %.0f | %.0f | %.2f |\n' "$(echo "$n / 1048576" | bc -l)" "$(echo "$z / 1048576" | bc -l)" "$(echo "$z / $n" | bc -l)"

idle() { # port, pid: RSS in KiB after 10,000 idle keep-alive connections
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
conns = []
for _ in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    conns.append(s)
for s in conns[:100]:
    s.sendall(b"GET /4k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(1)
for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmRSS"):
        print(line.split()[1])
PY
}
n=$(idle "$nginx_port" "$nginx_worker")
z=$(idle "$zcopy_port" "$zcopy_pid")
printf '| resident memory with 10,000 idle connections, KiB | %s | %s | %.2f |\n' "$n" "$z" "$(echo "$z / $n" | bc -l)"
