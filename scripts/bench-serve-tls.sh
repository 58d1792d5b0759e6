#!/usr/bin/env bash
# Issue 16's HTTPS benchmark: `zcopy serve --tls-cert/--tls-key` beside nginx with
# TLS on the same certificate (a P-256 test CA and server certificate made here with
# the openssl CLI), one worker each, in the same run, ROUNDS rounds with the servers
# alternating, medians:
#   - a 4 KiB file over keep-alive connections: wrk -t1 -c64 over https; requests/s
#     and the server's CPU per request (user + system ticks from /proc/PID/stat, all
#     threads, divided by the requests wrk completed);
#   - new TLS connections per second: the same with `Connection: close`, so every
#     request is a new TCP connection and a full handshake (wrk resumes no session);
#     wrk's own CPU per connection beside it (/usr/bin/time), since on a 2-core
#     machine the client's handshake half can be the limit.
# wrk's OpenSSL picks the cipher suite; the line above the table names what each
# server negotiated with it. OTHER: a second zcopy binary (e.g. built with the other
# rustls crypto provider) measured in the same rounds, as one more row.
#   usage: scripts/bench-serve-tls.sh [SECONDS] [ROUNDS] [OTHER]   (default 3 s, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
rounds=${2:-3}
other=${3:-}
work=$(mktemp -d /var/tmp/zcopy-serve-tls.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
for tool in nginx wrk openssl curl; do
  command -v "$tool" > /dev/null || { echo "bench-serve-tls: $tool not installed (scripts/test.sh installs it)" >&2; exit 1; }
done

cargo build --release -q
mkdir -p "$work/www" "$work/nginx"
. scripts/bench-lib.sh
chmod 755 "$work" "$work/www"
head -c 4096 /dev/urandom > "$work/www/4k.bin"

# The test CA and the server's certificate, as the tests make them (common::test_ca).
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 \
  -subj "/CN=zcopy bench CA" 2> /dev/null
openssl req "${ec[@]}" -keyout "$work/server.key" -out "$work/server.csr" \
  -subj "/CN=localhost" 2> /dev/null
echo "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -out "$work/server.pem" -days 2 -extfile "$work/ext.cnf" 2> /dev/null
chmod 644 "$work/server.key"

declare -A port pid
get() { curl -s -o /dev/null --cacert "$work/ca.pem" "https://127.0.0.1:$1/4k.bin"; }

start_zcopy() { # name, binary
  "$2" serve "$work/www" --listen 127.0.0.1:0 --workers 1 --no-digest \
    --tls-cert "$work/server.pem" --tls-key "$work/server.key" 2> "$work/$1.log" &
  pids+=($!); pid[$1]=$!
  until grep -q 'listening on' "$work/$1.log"; do sleep 0.05; done
  port[$1]=$(sed -n 's/^listening on .*://p' "$work/$1.log")
  until get "${port[$1]}"; do sleep 0.05; done
}
start_zcopy zcopy target/release/zcopy
servers=(zcopy)
if [ -n "$other" ]; then
  start_zcopy other "$other"
  servers+=(other)
fi

port[nginx]=$(free_port)
nginx_conf 1 "    listen 127.0.0.1:${port[nginx]} ssl;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $work/www;"
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
until get "${port[nginx]}"; do sleep 0.05; done
pid[nginx]=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')
servers+=(nginx)

negotiated=""
for s in "${servers[@]}"; do
  suite=$(openssl s_client -connect "127.0.0.1:${port[$s]}" -CAfile "$work/ca.pem" < /dev/null 2> /dev/null \
    | sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p')
  negotiated+="$s: $suite; "
done

ticks() { # the user + system ticks of these processes, all their threads
  local p sum=0
  for p in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
declare -A rps cpu client
for mode in keepalive new; do
  header=()
  [ "$mode" = new ] && header=(-H 'Connection: close')
  for round in $(seq "$rounds"); do
    for s in "${servers[@]}"; do
      # shellcheck disable=SC2086 # a list of pids
      before=$(ticks ${pid[$s]})
      out=$(/usr/bin/time -f '%U %S' -o "$work/wrk.time" \
        wrk -t1 -c64 -d"${secs}s" "${header[@]}" "https://127.0.0.1:${port[$s]}/4k.bin")
      # shellcheck disable=SC2086
      after=$(ticks ${pid[$s]})
      if grep -q "Non-2xx" <<< "$out"; then echo "non-2xx responses from $s" >&2; exit 1; fi
      requests=$(awk '/requests in/ {print $1}' <<< "$out")
      rps[$s-$mode]+="$(awk '/Requests\/sec/ {print $2}' <<< "$out") "
      cpu[$s-$mode]+="$(echo "($after - $before) / $hz / $requests * 1000000" | bc -l) "
      client[$s-$mode]+="$(awk -v n="$requests" '{print ($1 + $2) / n * 1000000}' "$work/wrk.time") "
    done
  done
done

echo "wrk -t1 -c64 -d${secs}s over https, 4 KiB file, one server worker, median of $rounds alternating rounds; machine shared"
echo "negotiated with wrk's OpenSSL: ${negotiated% }"
echo
echo "| server | keep-alive req/s | keep-alive CPU µs/req | new TLS connections/s | CPU µs per new connection | wrk's CPU µs per new connection |"
echo "|---|---:|---:|---:|---:|---:|"
for s in "${servers[@]}"; do
  name=$s
  case $s in
    zcopy) name="zcopy serve --tls-cert (rustls)";;
    other) name="$other";;
    nginx) name="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') ($(openssl version | cut -d' ' -f1-2))";;
  esac
  row="| $name"
  for mode in keepalive new; do
    row+=$(printf ' | %.0f | %.1f' "$(median <<< "${rps[$s-$mode]}")" "$(median <<< "${cpu[$s-$mode]}")")
  done
  row+=$(printf ' | %.1f' "$(median <<< "${client[$s-new]}")")
  echo "$row |"
done
for mode in keepalive new; do
  z=$(median <<< "${rps[zcopy-$mode]}"); n=$(median <<< "${rps[nginx-$mode]}")
  zc=$(median <<< "${cpu[zcopy-$mode]}"); nc=$(median <<< "${cpu[nginx-$mode]}")
  printf '%s: zcopy/nginx requests/s %.2f×, nginx/zcopy CPU per request %.2f× (≥ 1 means zcopy is level or better)\n' \
    "$mode" "$(echo "$z / $n" | bc -l)" "$(echo "$nc / $zc" | bc -l)"
done
