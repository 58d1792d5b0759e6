#!/usr/bin/env bash
# Runs zcopy's whole test suite on a fresh machine: installs the real peers the
# integration tests talk to (netcat, socat, Java, curl, xxhsum, mkfs for btrfs and
# xfs, nginx, wrk, iperf3, aria2c, wget, zstd, tar, rsync, setfacl, chromium for the bench
# report's screenshot, sshd and ssh for the transfers over ssh) when they are
# missing and we may install them, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# command:package pairs; a missing command is installed from its package.
wanted=(nc:netcat-openbsd javac:openjdk-17-jdk-headless curl:curl xxhsum:xxhash
        b3sum:b3sum mkfs.btrfs:btrfs-progs mkfs.xfs:xfsprogs losetup:mount filefrag:e2fsprogs
        systemd-socket-activate:systemd dpkg:dpkg nginx:nginx-light
        nft:nftables ip:iproute2 tc:iproute2 wrk:wrk socat:socat iperf3:iperf3
        chromium:chromium openssl:openssl aria2c:aria2 wget:wget zstd:zstd tar:tar rsync:rsync
        sshd:openssh-server ssh:openssh-client scp:openssh-client
        setfacl:acl getfattr:attr)
missing=()
for pair in "${wanted[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# The FUSE file system of tests/fuse_faults.rs runs on Debian's python3 and fusepy.
[ -e /usr/lib/python3/dist-packages/fusepy.py ] || missing+=(python3 python3-fusepy)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "not installing ${missing[*]} (needs root and apt-get): the tests that need them will skip" >&2
  fi
fi

# cargo-deb builds the Debian package the packaging test installs.
if ! cargo deb --version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    cargo install cargo-deb --locked --quiet
  else
    echo "not installing cargo-deb (not root): the package test will skip" >&2
  fi
fi

cargo test --workspace "$@"
# The library's optional tokio feature, off in the workspace build.
cargo test -p zcopy --features tokio --test tokio
cargo test -p zcopy --features tokio --doc tokio
