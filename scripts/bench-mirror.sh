#!/usr/bin/env bash
# Issue 23's goal: zcopy over ssh against the tools people use there, through a
# throwaway sshd on 127.0.0.1 (its own host and user keys): `zcopy send` to
# host:DIR, `rsync -aHAX` over ssh, rsync to an `rsync --daemon`, `scp -r` and
# `tar c | ssh tar x`. Each command is timed from its start to its exit, which
# comes after the receiver's. Rows: a first copy of 20,000 files of 4 KiB and of
# one 1 GiB file, a re-sync of the tree with nothing changed, and one after 100
# files were touched and 100 deleted (with --delete; skipped where a tool has no
# such thing). The tree has what `-aHAX` keeps: a few files and directories
# with other owners and modes, user xattrs, ACLs (a default one on a directory)
# and hard links, so zcopy and rsync both run with `-aHAX` (scp and tar as they
# are); after each --delete re-sync the trees must be equal in content (diff -r)
# and in every attribute (a listing of type, mode, owner, group, mtime, xattrs
# with the ACLs among them, and the names of each inode, diffed). Every run
# writes into a freshly made ext4 image on a loop device (as bench-cp-tree.sh
# does); tools rotate within each round; medians of wall ms (and the local
# process's CPU ms). Root only (sshd, mkfs, mount).
#   usage: scripts/bench-mirror.sh [ROUNDS] [WORK_DIR]    (default 5, /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
[ "$(id -u)" = 0 ] || { echo "bench-mirror.sh: needs root (sshd, mkfs, mount)" >&2; exit 1; }
for tool in /usr/sbin/sshd ssh scp rsync tar mkfs.ext4 setfattr setfacl python3; do
  command -v "$tool" > /dev/null || { echo "bench-mirror.sh: $tool is missing (scripts/test.sh installs it)" >&2; exit 1; }
done
work=$(mktemp -d "${2:-/var/tmp}/zcopy-bench-mirror.XXXXXX")
mnt=$work/mnt
cleanup() {
  [ -n "${sshd_pid:-}" ] && kill "$sshd_pid" 2> /dev/null || true
  [ -n "${rsyncd_pid:-}" ] && kill "$rsyncd_pid" 2> /dev/null || true
  umount "$mnt" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release -q
zcopy=$PWD/target/release/zcopy
. scripts/bench-lib.sh

# attributes DIR: one line per entry under DIR (itself included): its name,
# type, mode, owner, group, mtime in ns, its xattrs (the ACLs are
# system.posix_acl_*) and, for a file with other names in DIR, those names.
attributes() {
  python3 - "$1" << 'PY'
import os, sys
root = sys.argv[1]
entries, names = ["."], {}
for top, dirs, files in os.walk(root):
    for name in dirs + files:
        entries.append(os.path.relpath(os.path.join(top, name), root))
for rel in entries:
    st = os.lstat(os.path.join(root, rel))
    names.setdefault(st.st_ino, []).append(rel)
for rel in sorted(entries):
    path = os.path.join(root, rel)
    st = os.lstat(path)
    xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False).hex())
                    for k in os.listxattr(path, follow_symlinks=False))
    linked = sorted(names[st.st_ino]) if len(names[st.st_ino]) > 1 else []
    print(rel, oct(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, xattrs, linked)
PY
}

# The sshd, the -e command every tool uses, and the rsync daemon.
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
cp "$work/user_key.pub" "$work/authorized_keys"
mkdir -p /run/sshd "$mnt"
port=$(free_port)
cat > "$work/sshd_config" << CONF
Port $port
ListenAddress 127.0.0.1
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
PidFile none
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2> "$work/sshd.log" &
sshd_pid=$!
opts="-i $work/user_key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
rsh="ssh -p $port $opts"
until $rsh 127.0.0.1 true 2> /dev/null; do sleep 0.1; done
rport=$(free_port)
cat > "$work/rsyncd.conf" << CONF
use chroot = no
[dst]
path = $mnt/dst
read only = no
uid = root
gid = root
CONF
rsync --daemon --no-detach --config="$work/rsyncd.conf" --port="$rport" --address=127.0.0.1 &
rsyncd_pid=$!

# The tree (200 directories of 100 files), the same tree after 100 files were
# touched and 100 deleted, and the large file; cached before the first run.
mkdir -p "$work/a/tree" "$work/b"
for d in $(seq 0 199); do
  mkdir -p "$work/a/tree/d$d"
  for f in $(seq 0 99); do head -c 4096 /dev/urandom > "$work/a/tree/d$d/f$f"; done
done
# Attributes on some of it: owners and modes, xattrs, ACLs, hard links (within a
# directory and across two).
for d in $(seq 0 19); do
  chown nobody:nogroup "$work/a/tree/d$d/f4"
  chmod 600 "$work/a/tree/d$d/f5"
  chmod 751 "$work/a/tree/d$d/f6"
  setfattr -n user.tag -v "d$d" "$work/a/tree/d$d/f2"
  setfacl -m u:nobody:r "$work/a/tree/d$d/f3"
  ln "$work/a/tree/d$d/f50" "$work/a/tree/d$d/h50"
done
ln "$work/a/tree/d0/f51" "$work/a/tree/d150/h51"
chown nobody "$work/a/tree/d7"
chmod 700 "$work/a/tree/d8"
setfacl -d -m u:nobody:rx "$work/a/tree/d9"
setfattr -n user.dir -v yes "$work/a/tree/d10"
cp -a "$work/a/tree" "$work/b/tree"
for d in $(seq 0 99); do
  touch -d '+1 hour' "$work/b/tree/d$d/f0"
  rm "$work/b/tree/d$((d + 100))/f0"
done
mkdir -p "$work/c"
head -c 1G /dev/urandom > "$work/c/big"
sync
find "$work/a/tree" "$work/b/tree" "$work/c/big" -type f -exec cat {} + > /dev/null
attributes "$work/b/tree" > "$work/attributes.want"
: > "$work/notes"
truncate -s 3G "$work/ext4.img"

fresh() {
  # A receiver's or daemon's child may still be exiting: wait for the mount to free.
  for _ in $(seq 50); do
    mountpoint -q "$mnt" || break
    umount "$mnt" 2> /dev/null || sleep 0.1
  done
  if mountpoint -q "$mnt"; then
    echo "bench-mirror.sh: $mnt stays busy:" >&2
    fuser -vm "$mnt" >&2 || true
    exit 1
  fi
  mkfs.ext4 -q -F "$work/ext4.img"
  mount -o loop "$work/ext4.img" "$mnt"
  mkdir "$mnt/dst"
  sync
}

# copy TOOL SRC: one copy of SRC (a directory or file) into $mnt/dst/ by TOOL.
copy() {
  local src=$2
  case $1 in
    zcopy) "$zcopy" send -q -aHAX "$src" "127.0.0.1:$mnt/dst/" -e "$rsh" --zcopy-path "$zcopy" ;;
    rsync-ssh) rsync -aHAX -e "$rsh" "$src" "127.0.0.1:$mnt/dst/" ;;
    rsyncd) rsync -aHAX "$src" "rsync://127.0.0.1:$rport/dst/" ;;
    scp) scp -q -r -P "$port" $opts "$src" "127.0.0.1:$mnt/dst/" ;;
    tar) tar cf - -C "$(dirname "$src")" "$(basename "$src")" | $rsh 127.0.0.1 "tar xf - -C $mnt/dst" ;;
  esac
}

# again TOOL SRC: SRC again into $mnt/dst/ (each tool's quick check skips what is in place).
again() {
  local src=$2
  case $1 in
    zcopy) "$zcopy" send -q -aHAX "$src" "127.0.0.1:$mnt/dst/" -e "$rsh" --zcopy-path "$zcopy" ;;
    rsync-ssh) rsync -aHAX -e "$rsh" "$src" "127.0.0.1:$mnt/dst/" ;;
    rsyncd) rsync -aHAX "$src" "rsync://127.0.0.1:$rport/dst/" ;;
  esac
}

# resync TOOL SRC: SRC again into $mnt/dst/, with --delete.
resync() {
  local src=$2
  case $1 in
    zcopy) "$zcopy" send -q -aHAX --delete "$src" "127.0.0.1:$mnt/dst/" -e "$rsh" --zcopy-path "$zcopy" ;;
    rsync-ssh) rsync -aHAX --delete -e "$rsh" "$src" "127.0.0.1:$mnt/dst/" ;;
    rsyncd) rsync -aHAX --delete "$src" "rsync://127.0.0.1:$rport/dst/" ;;
  esac
}
export -f copy again resync
export zcopy rsh rport port opts mnt

tools=(zcopy rsync-ssh rsyncd scp tar)
rows=(tree same changed big)
for t in "${tools[@]}"; do for r in "${rows[@]}"; do : > "$work/times.$t.$r"; done; done
checked=no
for ((round = 0; round < rounds; round++)); do
  for ((k = 0; k < ${#tools[@]}; k++)); do
    t=${tools[$(((k + round) % ${#tools[@]}))]}
    fresh
    run bash -c "copy $t $work/a/tree" >> "$work/times.$t.tree"
    if [ "$t" = zcopy ] || [ "$t" = rsync-ssh ] || [ "$t" = rsyncd ]; then
      run bash -c "again $t $work/a/tree" >> "$work/times.$t.same"
      run bash -c "resync $t $work/b/tree" >> "$work/times.$t.changed"
      if [ $checked = no ] || [ "$t" = zcopy ]; then
        diff -r "$work/b/tree" "$mnt/dst/tree" > /dev/null || { echo "bench-mirror.sh: $t: the trees differ after the re-sync" >&2; exit 1; }
        attributes "$mnt/dst/tree" > "$work/attributes.$t"
        if ! diff -q "$work/attributes.want" "$work/attributes.$t" > /dev/null; then
          # zcopy must keep them all; a peer's differences are reported beside its numbers.
          if [ "$t" = zcopy ]; then
            diff "$work/attributes.want" "$work/attributes.$t" >&2
            echo "bench-mirror.sh: zcopy: the attributes differ after the re-sync" >&2
            exit 1
          fi
          echo "$t -aHAX: $(diff "$work/attributes.want" "$work/attributes.$t" | grep -c '^>') of $(wc -l < "$work/attributes.want") entries with other attributes after the re-sync, e.g. $(diff "$work/attributes.want" "$work/attributes.$t" | grep -m1 '^>')" >> "$work/notes"
        fi
        checked=yes
      fi
    fi
    fresh
    run bash -c "copy $t $work/c/big" >> "$work/times.$t.big"
    cmp "$work/c/big" "$mnt/dst/big"
  done
done

echo "zcopy over ssh and its peers through an sshd on 127.0.0.1, into a fresh ext4 image per run;"
echo "$rounds rounds, tools rotating, medians of wall ms (local CPU ms); × rsync over ssh (> 1: zcopy faster)"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| row | zcopy send | rsync -a over ssh | rsync to rsyncd | scp -r | tar c \\| ssh tar x | zcopy × rsync over ssh |"
echo "|---|---:|---:|---:|---:|---:|---:|"
names=("first copy, 20,000 × 4 KiB" "re-sync, nothing changed" "re-sync, 100 touched + 100 deleted, --delete" "first copy, one 1 GiB file")
for ((i = 0; i < ${#rows[@]}; i++)); do
  r=${rows[$i]}
  line="| ${names[$i]} |"
  for t in "${tools[@]}"; do
    if [ -s "$work/times.$t.$r" ]; then
      line+=" $(column_median "$work/times.$t.$r" 1) ($(column_median "$work/times.$t.$r" 2)) |"
    else
      line+=" — |"
    fi
  done
  if [ -s "$work/times.zcopy.$r" ]; then
    line+=" $(ratio "$(column_median "$work/times.rsync-ssh.$r" 1)" "$(column_median "$work/times.zcopy.$r" 1)") |"
  else
    line+=" — |"
  fi
  echo "$line"
done
if [ -s "$work/notes" ]; then
  echo
  cat "$work/notes"
fi
