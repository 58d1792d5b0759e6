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
# Relative, so that each link in /usr/lib/zcopy/bin reaches /usr/bin/zcopy.
"$release/zcopy" generate links "$release/assets/links" --target ../../../bin/zcopy >/dev/null
cargo deb -p zcopy-cli --no-build --no-strip "$@" | tail -1
