#!/usr/bin/env bash
# Builds the Debian package: the release binary, the man pages and completions it
# generates from its own flags (target/release/assets), then `cargo deb --no-build`.
# Prints the path of the .deb. Needs cargo-deb (`cargo install cargo-deb`).
set -euo pipefail
cd "$(dirname "$0")/.."
release="${CARGO_TARGET_DIR:-target}/release"
cargo build --release -p zcopy-cli >&2
rm -rf "$release/assets"
"$release/zcopy" generate man "$release/assets/man" >/dev/null
gzip -9n "$release"/assets/man/*.1
"$release/zcopy" generate completions "$release/assets/completions" >/dev/null
# The peer-name links, laid out as installed: relative, so that each reaches
# /usr/bin/zcopy from /usr/lib/zcopy/bin, and here (through assets/usr/bin/zcopy)
# the release binary, since cargo-deb packs only links that resolve.
mkdir -p "$release/assets/usr/bin"
ln -s ../../../zcopy "$release/assets/usr/bin/zcopy"
"$release/zcopy" generate links "$release/assets/usr/lib/zcopy/bin" --target ../../../bin/zcopy >/dev/null
cargo deb -p zcopy-cli --no-build --no-strip "$@" | tail -1
