#!/usr/bin/env bash
# Builds the Debian package: the release binary, the man pages and completions it
# generates from its own flags (target/assets), then `cargo deb --no-build`.
# Prints the path of the .deb. Needs cargo-deb (`cargo install cargo-deb`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p zcopy-cli >&2
rm -rf target/assets
target/release/zcopy generate man target/assets/man >/dev/null
target/release/zcopy generate completions target/assets/completions >/dev/null
cargo deb -p zcopy-cli --no-build --no-strip "$@" | tail -1
