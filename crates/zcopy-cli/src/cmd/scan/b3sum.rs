//! `b3sum` as b3sum 1.8 is: its flags (clap, as b3sum's own, so its usage errors
//! and exit 2 are the same), keyed and key-derivation modes, extendable output
//! (`--length`, `--seek`, `--raw`), names printed as Unicode, and its check mode:
//! failures counted over all check files and reported once. Its check-line rules
//! are `zcopy_sum::b3sum`'s.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;
use zcopy::{ScanChoice, ScanEngine};
use zcopy_sum::{Config, Digest, Voice, Xof};

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
        Ok(config) => crate::exit::for_peer("b3sum", super::run_config(config)),
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
    let mut config = super::config(Voice::B3sum, "b3sum", Digest::Blake3);
    config.accepts = vec![Digest::Blake3];
    if inner.keyed {
        config.blake3 = Some(Box::new(blake3::Hasher::new_keyed(&super::blake3_key()?)));
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
