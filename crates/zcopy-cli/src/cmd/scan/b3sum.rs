//! `b3sum` as b3sum 1.8 is: its flags (clap, as b3sum's own, so its usage errors
//! and exit 2 are the same), keyed and key-derivation modes, extendable output
//! (`--length`, `--seek`, `--raw`), names printed as Unicode, and its check mode:
//! lower-case hex only, no comments, names with NUL or U+FFFD refused, failures
//! counted over all check files and reported once.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;
use zcopy::{ScanChoice, ScanEngine};

use super::line::{self, CheckLine};
use super::{Config, Voice};
use crate::digest::{Digest, Xof};

#[derive(Parser)]
#[command(name = "b3sum", version, max_term_width(100))]
struct Inner {
    /// Files to hash, or checkfiles to check
    ///
    /// When no file is given, or when - is given, read standard input.
    file: Vec<OsString>,

    /// Use the keyed mode, reading the 32-byte key from stdin
    #[arg(long, requires("file"))]
    keyed: bool,

    /// Use the key derivation mode, with the given context string
    ///
    /// Cannot be used with --keyed.
    #[arg(long, value_name("CONTEXT"), conflicts_with("keyed"))]
    derive_key: Option<String>,

    /// The number of output bytes, before hex encoding
    #[arg(short, long, default_value_t = blake3::OUT_LEN as u64, value_name("LEN"))]
    length: u64,

    /// The starting output byte offset, before hex encoding
    #[arg(long, default_value_t = 0, value_name("SEEK"))]
    seek: u64,

    /// The maximum number of threads to use
    ///
    /// By default, this is the number of logical cores. If this flag is
    /// omitted, or if its value is 0, RAYON_NUM_THREADS is also respected.
    #[arg(long, value_name("NUM"))]
    num_threads: Option<usize>,

    /// Disable memory mapping
    #[arg(long)]
    no_mmap: bool,

    /// Omit filenames in the output
    #[arg(long)]
    no_names: bool,

    /// Write raw output bytes to stdout, rather than hex
    ///
    /// --no-names is implied. In this case, only a single input is allowed.
    #[arg(long)]
    raw: bool,

    /// Output BSD-style checksums: BLAKE3 ([FILE]) = [HASH]
    #[arg(long)]
    tag: bool,

    /// Read BLAKE3 sums from the [FILE]s and check them
    #[arg(
        short,
        long,
        conflicts_with_all(["derive_key", "keyed", "length", "raw", "tag", "no_names"])
    )]
    check: bool,

    /// Skip printing OK for each checked file
    ///
    /// Must be used with --check.
    #[arg(long, requires("check"))]
    quiet: bool,
}

/// Runs b3sum on its whole command line (argv[0] included, for clap).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let inner = Inner::parse_from(args);
    match config(inner) {
        Ok(config) => super::super::exit_for("b3sum", super::run_config(config)),
        Err(e) => {
            // b3sum's errors before any file come out of its main as Rust prints them.
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(inner: Inner) -> Result<Config> {
    if inner.raw && inner.file.len() > 1 {
        bail!("Only one filename can be provided when using --raw");
    }
    if let Some(threads) = inner.num_threads.filter(|n| *n > 0) {
        // The global pool is built once, here, before any hashing.
        rayon_pool(threads)?;
    }
    let mut config = Config::new(Voice::B3sum, "b3sum", Digest::Blake3);
    config.accepts = vec![Digest::Blake3];
    if inner.keyed {
        config.blake3 = Some(Box::new(blake3::Hasher::new_keyed(&key_from_stdin()?)));
        config.key_from_stdin = true;
    } else if let Some(context) = &inner.derive_key {
        config.blake3 = Some(Box::new(blake3::Hasher::new_derive_key(context)));
    }
    config.files = inner.file;
    config.xof = Xof {
        seek: inner.seek,
        len: inner.length,
    };
    config.no_names = inner.no_names;
    config.raw = inner.raw;
    config.tag = inner.tag;
    config.check = inner.check;
    config.quiet = inner.quiet;
    if inner.no_mmap {
        config.engine = ScanChoice::Only(ScanEngine::Read);
    }
    Ok(config)
}

fn rayon_pool(threads: usize) -> Result<()> {
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The 32-byte key of `--keyed`, all of standard input.
pub fn key_from_stdin() -> Result<[u8; blake3::KEY_LEN]> {
    let mut bytes = Vec::with_capacity(blake3::KEY_LEN + 1);
    let n = std::io::stdin()
        .lock()
        .take(blake3::KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    match n.cmp(&blake3::KEY_LEN) {
        std::cmp::Ordering::Less => bail!(
            "expected {} key bytes from stdin, found {n}",
            blake3::KEY_LEN
        ),
        std::cmp::Ordering::Greater => {
            bail!("read more than {} key bytes from stdin", blake3::KEY_LEN)
        }
        std::cmp::Ordering::Equal => Ok(bytes.try_into().unwrap_or([0; blake3::KEY_LEN])),
    }
}

/// Reads a check line as b3sum does: `hex  name` (split at the first two
/// spaces) or `BLAKE3 (name) = hex` (split at the last `) = `), a leading
/// backslash for an escaped name. `Err` carries b3sum's words for the refusal.
pub fn parse(text: &[u8]) -> Result<CheckLine, String> {
    // b3sum reads lines as Unicode: a byte that is not becomes U+FFFD, and is
    // refused with the others below.
    let text = String::from_utf8_lossy(text);
    if text.is_empty() {
        return Err("Empty line".into());
    }
    let (escaped, rest) = match text.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, &text[..]),
    };
    let (hex, name) = if let Some((hex, name)) = rest.split_once("  ") {
        (hex, name)
    } else if let Some((name, hex)) = rest
        .strip_prefix("BLAKE3 (")
        .and_then(|r| r.rsplit_once(") = "))
    {
        (hex, name)
    } else {
        return Err("Invalid check line format".into());
    };
    if hex.len() != 2 * blake3::OUT_LEN {
        return Err("Invalid hash length".into());
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("Invalid hex".into());
    }
    let path = if escaped {
        unescape(name)?
    } else {
        name.to_string()
    };
    if path.is_empty() {
        return Err("empty file path".into());
    }
    if path.contains('\0') {
        return Err("Null character in path".into());
    }
    if path.contains(char::REPLACEMENT_CHARACTER) {
        return Err("Unicode replacement character in path".into());
    }
    let shown = if escaped {
        format!("\\{name}")
    } else {
        name.to_string()
    };
    Ok(CheckLine {
        digests: vec![Digest::Blake3],
        expected: line::unhex(hex.as_bytes(), false).ok_or("Invalid hex")?,
        name: path.into_bytes(),
        shown: shown.into_bytes(),
    })
}

fn unescape(name: &str) -> Result<String, String> {
    line::unescape(name.as_bytes())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| "Invalid backslash escape".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lines_as_b3sum_reads_them() {
        let zeros = "0".repeat(64);
        let ok = parse(format!("{zeros}  a  b").as_bytes()).unwrap();
        assert_eq!(ok.name, b"a  b");
        let tagged = parse(format!("BLAKE3 (x) = y) = {zeros}").as_bytes()).unwrap();
        assert_eq!(tagged.name, b"x) = y");
        let escaped = parse(format!("\\{zeros}  a\\nb").as_bytes()).unwrap();
        assert_eq!(
            (escaped.name, escaped.shown),
            (b"a\nb".to_vec(), b"\\a\\nb".to_vec())
        );
        let refusal = |line: &[u8]| parse(line).err();
        assert_eq!(
            refusal(format!("{zeros}  \0").as_bytes()).as_deref(),
            Some("Null character in path")
        );
        assert_eq!(
            refusal(format!("{zeros}  \u{fffd}").as_bytes()).as_deref(),
            Some("Unicode replacement character in path")
        );
        assert_eq!(
            refusal(&[format!("{zeros}  a").as_bytes(), b"\xff"].concat()).as_deref(),
            Some("Unicode replacement character in path")
        );
        assert_eq!(
            refusal(format!("\\{zeros}  \\a").as_bytes()).as_deref(),
            Some("Invalid backslash escape")
        );
        assert_eq!(
            refusal(format!("{}  f", "A".repeat(64)).as_bytes()).as_deref(),
            Some("Invalid hex")
        );
        assert_eq!(
            refusal(b"# comment").as_deref(),
            Some("Invalid check line format")
        );
        assert_eq!(refusal(b"").as_deref(), Some("Empty line"));
    }
}
