#!/usr/bin/env bash
# Issues 12 and 25's benchmark: a 1 GiB page-cached file served by nginx (sendfile
# on, one worker) over loopback, downloaded into a file on this disk by `zcopy get`
# (splice, and its read-write engine for comparison), `curl -o`, `wget -O` and
# `aria2c` (one connection). Rounds alternate between the clients; each figure is
# the median of the rounds, and the CPU of 1 GiB is the CPU per GiB.
# Then `--segments 4` against one connection and against `aria2c -x4` on a 64 MiB
# file that nginx sends at 16 MiB/s per connection (`limit_rate`, as a rate-limited
# link or a mirror would).
# Last, uploads: `curl -T` of the GiB into nginx (`dav_methods PUT`) and into
# `zcopy serve --upload`, one worker each; the server's CPU time from /proc.
# Wall time and the client's CPU time (user + system) come from GNU time; the
# written file is removed and `sync`ed away between runs (not timed).
#   usage: scripts/bench-get.sh [ROUNDS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
work=$(mktemp -d /var/tmp/zcopy-get.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q
mkdir -p "$work/www" "$work/nginx" "$work/out" "$work/up-nginx" "$work/up-zcopy"
. scripts/bench-lib.sh
chmod 777 "$work/up-nginx" # written by nginx's worker (nobody)
chmod 755 "$work" "$work/www" # nginx workers run as nobody
head -c 1G /dev/urandom > "$work/www/1g.bin"
head -c 64M /dev/urandom > "$work/www/64m.bin"
cat "$work/www/1g.bin" > /dev/null

port=$(free_port)
nginx_conf 1 "    listen 127.0.0.1:$port;
    root $work/www;
    location /slow/ { alias $work/www/; limit_rate 16m; }
    location /up/ { alias $work/up-nginx/; dav_methods PUT; client_max_body_size 2g; }"
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
url="http://127.0.0.1:$port/1g.bin"
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.05; done

zcopy=$PWD/target/release/zcopy
declare -A cmds=(
  [zcopy-get]="$zcopy get -q -o $work/out/f $url"
  [zcopy-get-read-write]="$zcopy get -q --engine read-write -o $work/out/f $url"
  [curl]="curl -s -o $work/out/f $url"
  [wget]="wget -q -O $work/out/f $url"
  [aria2c]="aria2c -q --allow-overwrite=true --file-allocation=none -d $work/out -o f $url"
)
order=(zcopy-get curl wget aria2c zcopy-get-read-write)
for ((r = 0; r < rounds; r++)); do
  for name in "${order[@]}"; do
    rm -f "$work/out/f"; sync
    /usr/bin/time -f "$name %e %U %S" -a -o "$work/times" ${cmds[$name]}
    cmp -n 4096 "$work/out/f" "$work/www/1g.bin"
  done
done
sed "s/^/run: /" "$work/times" >&2
echo "1 GiB page-cached file from nginx over loopback into $(df -T "$work" | awk 'NR==2 {print $2}'), median of $rounds rounds"
printf '%-22s %8s %10s %10s %12s %8s %14s %12s\n' client wall_s user_s sys_s 'cpu_s/GiB' 'GiB/s' 'rate/curl' 'cpu/curl'
python3 - "$work/times" "${order[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
for name in sys.argv[2:]:
    runs = [(float(w), float(u), float(s)) for n, w, u, s in rows if n == name]
    med[name] = (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
        statistics.median(r[1] + r[2] for r in runs),
    )
curl_wall, curl_cpu = med["curl"][0], med["curl"][3]
for name in sys.argv[2:]:
    wall, user, sys_, cpu = med[name]
    cpu_ratio = f"{cpu / curl_cpu:12.2f}" if curl_cpu else f"{'-':>12}"
    print(f"{name:22} {wall:8.3f} {user:10.3f} {sys_:10.3f} {cpu:12.3f} {1 / wall:8.2f} {curl_wall / wall:14.2f} {cpu_ratio}")
PY

echo
echo "64 MiB at 16 MiB/s per connection (nginx limit_rate), median of 3 rounds"
slow="http://127.0.0.1:$port/slow/64m.bin"
declare -A slow_cmds=(
  [segments-1]="$zcopy get -q --segments 1 -o $work/out/f $slow"
  [segments-4]="$zcopy get -q --segments 4 -o $work/out/f $slow"
  [aria2c-x4]="aria2c -q -x4 -s4 --min-split-size=1M --allow-overwrite=true --file-allocation=none -d $work/out -o f $slow"
)
for ((r = 0; r < 3; r++)); do
  for name in segments-1 segments-4 aria2c-x4; do
    rm -f "$work/out/f"; sync
    /usr/bin/time -f "$name %e %U %S" -a -o "$work/times-slow" ${slow_cmds[$name]}
    cmp "$work/out/f" "$work/www/64m.bin"
  done
done
sed "s/^/run: /" "$work/times-slow" >&2
printf '%-24s %8s %10s %8s %14s\n' client wall_s 'MiB/s' cpu_s 'rate/aria2c'
python3 - "$work/times-slow" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
wall = {n: statistics.median(float(w) for m, w, u, s in rows if m == n) for n in ("segments-1", "segments-4", "aria2c-x4")}
cpu = {n: statistics.median(float(u) + float(s) for m, w, u, s in rows if m == n) for n in wall}
labels = {"segments-1": "zcopy get --segments 1", "segments-4": "zcopy get --segments 4", "aria2c-x4": "aria2c -x4 -s4"}
for name, label in labels.items():
    print(f"{label:24} {wall[name]:8.3f} {64 / wall[name]:10.1f} {cpu[name]:8.2f} {wall['aria2c-x4'] / wall[name]:14.2f}")
PY

"$zcopy" serve "$work/up-zcopy" --listen 127.0.0.1:0 --workers 1 --upload --max-upload 2GiB 2> "$work/zcopy.log" &
pids+=($!)
zcopy_pid=$!
until grep -q 'listening on' "$work/zcopy.log"; do sleep 0.05; done
zcopy_port=$(sed -n 's/^listening on .*://p' "$work/zcopy.log")
nginx_worker=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | head -1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
echo
echo "1 GiB uploaded with curl -T, one server worker, median of 3 rounds"
for ((r = 0; r < 3; r++)); do
  for server in nginx zcopy; do
    if [ $server = nginx ]; then pid=$nginx_worker; url="http://127.0.0.1:$port/up/f"
    else pid=$zcopy_pid; url="http://127.0.0.1:$zcopy_port/f"; fi
    rm -f "$work/up-$server/f"; sync
    before=$(cpu_ticks "$pid")
    start=$(date +%s.%N)
    code=$(curl -s -o /dev/null -w '%{http_code}' -T "$work/www/1g.bin" "$url")
    end=$(date +%s.%N)
    after=$(cpu_ticks "$pid")
    case $code in 201|204) ;; *) echo "$server answered $code" >&2; exit 1 ;; esac
    cmp -n 4096 "$work/up-$server/f" "$work/www/1g.bin"
    echo "$server $(echo "$end - $start" | bc) $(echo "scale=3; ($after - $before) / $tick" | bc)" >> "$work/times-up"
  done
done
sed "s/^/run: /" "$work/times-up" >&2
printf '%-22s %8s %14s\n' server wall_s server_cpu_s
python3 - "$work/times-up" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
for name in ("nginx", "zcopy"):
    wall = statistics.median(float(w) for n, w, c in rows if n == name)
    cpu = statistics.median(float(c) for n, w, c in rows if n == name)
    label = {"nginx": "nginx dav PUT", "zcopy": "zcopy serve --upload"}[name]
    print(f"{label:22} {wall:8.3f} {cpu:14.3f}")
PY
