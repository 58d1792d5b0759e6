#!/usr/bin/env bash
# Issue 16's benchmark: what encryption costs send → recv, over loopback, 1 GiB of
# random bytes, page-cached, into an empty directory on the work directory's file
# system, alternating the contenders, median of REPEAT runs:
#  - zcopy framed, plain TCP (loopback, no secret);
#  - zcopy framed, TLS 1.3 + secret (`--secret-file`): kTLS where the kernel has it,
#    else rustls in user space (the `kTLS` line below says which); where the kernel
#    has it, also with ZCOPY_KTLS=off (rustls in user space), for kTLS vs user space;
#  - scp to localhost, OpenSSH's default cipher and aes128-gcm@openssh.com (an sshd
#    on a loopback port with a throwaway host key and client key, made here);
#  - one core's AES-128-GCM speed: `openssl speed -evp aes-128-gcm`, 16 KiB blocks.
# Each time runs from the sender's start until the receiver has exited; CPU is the
# user + system time of both ends (for scp: the scp and sshd processes).
# The measuring holds /tmp/zcopy-bench.lock (so two benchmarks never overlap);
# run it as is, not under another flock.
#   usage: scripts/bench-tls.sh [REPEAT]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-5}
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
sshd_pid=
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p zcopy-cli
zcopy=$PWD/target/release/zcopy

head -c $((1 << 30)) /dev/urandom > "$work/big"
cat "$work/big" > /dev/null # page-cached
echo "bench-tls-$$-$RANDOM" > "$work/secret"

# A throwaway sshd on 127.0.0.1, for scp; never part of the tests.
if ! [ -x /usr/sbin/sshd ]; then
  apt-get install -y openssh-server > /dev/null
fi
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
ssh_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/sshd_config" << EOF
ListenAddress 127.0.0.1
Port $ssh_port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" &
sshd_pid=$!
until ss -ltn | grep -q "127.0.0.1:$ssh_port "; do sleep 0.05; done
ssh_opts=(-q -i "$work/client_key" -P "$ssh_port" -o StrictHostKeyChecking=no
  -o UserKnownHostsFile=/dev/null -o BatchMode=yes)
scp "${ssh_opts[@]}" "$work/secret" "$(id -un)@127.0.0.1:$work/scp-check" # warm up, and fail early
cmp -s "$work/secret" "$work/scp-check"

now() { date +%s.%N; }
fresh() { rm -rf "$work/out"; mkdir "$work/out"; sync; }
# CPU seconds (user + system) of sshd's finished sessions: each one's processes are
# waited for, so their time adds up in the listener's children's time.
sshd_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($16 + $17) / hz}' "/proc/$sshd_pid/stat"; }

# Each contender prints "wall cpu".
zcopy_big() { # extra flags for both sides
  fresh
  rm -f "$work/recv.log"
  /usr/bin/time -f '%U %S' -o "$work/recv.cpu" \
    "$zcopy" recv --listen 127.0.0.1:0 -o "$work/out/big" --once -q "$@" 2> "$work/recv.log" &
  local pid=$!
  until grep -qs 'listening on' "$work/recv.log"; do sleep 0.01; done
  local addr; addr=$(sed -n 's/^listening on //p' "$work/recv.log")
  local fp=(); if [ $# -gt 0 ]; then
    until grep -qs 'fingerprint' "$work/recv.log"; do sleep 0.01; done
    fp=(--fingerprint "$(grep -o 'sha256:[0-9a-f]*' "$work/recv.log")")
  fi
  local start; start=$(now)
  /usr/bin/time -f '%U %S' -o "$work/send.cpu" "$zcopy" send -q "$work/big" "$addr" "$@" "${fp[@]}" > "$work/send.json"
  wait $pid
  local wall; wall=$(echo "$(now) - $start" | bc)
  cmp -s "$work/big" "$work/out/big" || { echo "zcopy $*: the copy differs" >&2; exit 1; }
  echo "$wall $(cat "$work/recv.cpu" "$work/send.cpu" | awk '{s += $1 + $2} END {print s}')"
}
scp_big() { # extra scp flags
  fresh
  local before; before=$(sshd_cpu)
  local start; start=$(now)
  /usr/bin/time -f '%U %S' -o "$work/scp.cpu" \
    scp "${ssh_opts[@]}" "$@" "$work/big" "$(id -un)@127.0.0.1:$work/out/big"
  local wall; wall=$(echo "$(now) - $start" | bc)
  cmp -s "$work/big" "$work/out/big" || { echo "scp $*: the copy differs" >&2; exit 1; }
  sleep 0.2 # the session's processes exit after scp does
  local after; after=$(sshd_cpu)
  echo "$wall $(awk -v a="$after" -v b="$before" '{print $1 + $2 + a - b}' "$work/scp.cpu")"
}

exec 9> /tmp/zcopy-bench.lock
flock 9
ktls=$(zcopy_big --secret-file "$work/secret" --json > /dev/null; sed -n 's/.*"ktls":"\([^"]*\)".*/\1/p' "$work/send.json")
aes=$(openssl speed -seconds 3 -bytes 16384 -evp aes-128-gcm 2> /dev/null | awk '/^AES-128-GCM/ {sub("k", "", $2); printf "%.0f\n", $2 * 1000}')

declare -A wall cpu
contenders=("zcopy_big" "zcopy_big --secret-file $work/secret" "scp_big" "scp_big -c aes128-gcm@openssh.com")
user_space_tls() { (export ZCOPY_KTLS=off; zcopy_big --secret-file "$work/secret"); }
case $ktls in *"keys handed to the kernel"*) contenders+=(user_space_tls) ;; esac
for _ in $(seq "$repeat"); do
  for c in "${contenders[@]}"; do
    read -r w u <<< "$($c)"
    wall[$c]+="$w "
    cpu[$c]+="$u "
  done
done
flock -u 9

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med_wall() { printf '%s\n' ${wall[$1]} | median; }
med_cpu() { printf '%s\n' ${cpu[$1]} | median; }
t_plain=$(med_wall zcopy_big)
t_tls=$(med_wall "zcopy_big --secret-file $work/secret")
t_scp=$(med_wall scp_big)

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kTLS: $ktls"
printf 'one core, openssl speed -evp aes-128-gcm, 16 KiB: %.0f MB/s\n' "$(echo "$aes / 1000000" | bc -l)"
echo
echo "| 1 GiB over loopback (median of $repeat, alternating) | seconds | MiB/s | CPU s (both ends) | vs plain | vs scp | vs one core's AES-128-GCM |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row() { # label, key
  local t; t=$(med_wall "$2")
  printf '| %s | %.2f | %.0f | %.2f | %.2f× | %.2f× | %.3f× |\n' "$1" "$t" "$(echo "1024 / $t" | bc -l)" \
    "$(med_cpu "$2")" "$(echo "$t_plain / $t" | bc -l)" "$(echo "$t_scp / $t" | bc -l)" \
    "$(echo "(1073741824 / $t) / $aes" | bc -l)"
}
row "zcopy send → recv, framed, plain TCP" zcopy_big
row "zcopy send → recv, framed, TLS 1.3 AES-128-GCM + secret" "zcopy_big --secret-file $work/secret"
case $ktls in *"keys handed to the kernel"*)
  row "zcopy send → recv, framed, TLS 1.3 AES-128-GCM + secret, ZCOPY_KTLS=off (user space)" user_space_tls ;;
esac
row "scp, OpenSSH default cipher" scp_big
row "scp -c aes128-gcm@openssh.com" "scp_big -c aes128-gcm@openssh.com"
echo
echo "TLS vs plain: $(echo "$t_plain / $t_tls" | bc -l | xargs printf '%.2f')×; TLS vs scp: $(echo "$t_scp / $t_tls" | bc -l | xargs printf '%.2f')×"
