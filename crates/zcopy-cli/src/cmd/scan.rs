//! `zcopy scan [FILE...]`: checksums files through read, pread, mmap or direct I/O, in the
//! formats xxhsum, b3sum and the GNU `*sum` tools print, and checks their check
//! files (`--check`), so that each tool reads what the other writes. The hashing,
//! the formats and the checking are `zcopy_sum`'s; this is its front end.
//!
//! Through a link named `xxhsum`, `b3sum` or `sha256sum` (see `main.rs`), the
//! command *is* that tool: [`xxhsum`], [`b3sum`] and [`gnu`] read its flags into
//! the same [`Config`], whose [`Voice`] picks its words, its check-line rules
//! and its exit status. Flags are turned into a `Config` at the edge; hashing
//! below sees only the config.

pub mod b3sum;
pub mod gnu;
pub mod xxhsum;

use std::ffi::OsString;

use anyhow::{bail, Result};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use zcopy::{size, ScanChoice, ScanEngine};
use zcopy_sum::{Config, Digest, Voice, Xof};

/// Checksum files through read, pread, mmap or direct I/O (xxhsum-, b3sum- and
/// sha256sum-compatible output and check files)
#[derive(clap::Args)]
pub struct Args {
    /// Files to checksum (check files with -c); none or - is standard input
    #[arg(value_name = "FILE")]
    files: Vec<OsString>,
    /// How to read: read (one buffer), pread (two threads, page-aligned chunks),
    /// mmap, direct (O_DIRECT), auto (pread for files of 1 MiB or more; mmap for
    /// blake3, which hashes on every core)
    #[arg(long, default_value = "auto")]
    engine: ScanChoice,
    /// Digest [default: xxh64, as xxhsum]; with -c, how untagged lines are read
    /// [default: told by the length of the hex]
    #[arg(long, value_parser = digest_parser())]
    digest: Option<Digest>,
    /// Digest as xxhsum numbers them: 0 or 32 (xxh32), 1 or 64 (xxh64), 2 or 128
    /// (xxh128), 3 (xxh3)
    #[arg(short = 'H', value_name = "N", value_parser = zcopy_sum::xxhsum::algorithm, conflicts_with = "digest")]
    algorithm: Option<Digest>,
    /// Read FILEs as check files and verify the digests they list
    #[arg(short = 'c', long)]
    check: bool,
    /// BSD-style lines for every digest: TAG (name) = hex
    #[arg(long, conflicts_with = "check")]
    tag: bool,
    /// Digests in little-endian byte order (xxhsum's XXH64_LE lines); with -c,
    /// untagged lines are read so
    #[arg(long)]
    little_endian: bool,
    /// Mark lines as read in binary mode (`hex *name`), as sha256sum -b
    #[arg(short = 'b', long, conflicts_with_all = ["check", "text"])]
    binary: bool,
    /// Mark lines as read in text mode (`hex  name`, the default)
    #[arg(short = 't', long, conflicts_with = "check")]
    text: bool,
    /// End each line with NUL, not newline, and escape no names
    #[arg(short = 'z', long, conflicts_with = "check")]
    zero: bool,
    /// Print the digests only, without names
    #[arg(long, conflicts_with = "check")]
    no_names: bool,
    /// Write the digest's raw bytes, not hex (one FILE only)
    #[arg(long, conflicts_with = "check")]
    raw: bool,
    /// BLAKE3: output bytes to print [default: 32]
    #[arg(short = 'l', long, value_name = "LEN", conflicts_with = "check")]
    length: Option<u64>,
    /// BLAKE3: the output byte to start at
    #[arg(long, value_name = "SEEK", default_value_t = 0)]
    seek: u64,
    /// BLAKE3 keyed mode, the 32-byte key read from standard input
    #[arg(long, conflicts_with_all = ["check", "derive_key"])]
    keyed: bool,
    /// BLAKE3 key derivation with this context string
    #[arg(long, value_name = "CONTEXT", conflicts_with = "check")]
    derive_key: Option<String>,
    /// Read with read(2), never a mapping (as --engine read)
    #[arg(long, conflicts_with = "engine")]
    no_mmap: bool,
    /// Buffer size of the read and direct engines (1KiB is the seed's FileReader;
    /// from 1MiB a helper thread reads ahead)
    #[arg(long, value_parser = size::parse_buffer, default_value = "4MiB")]
    buffer: usize,
    /// With -c, print no OK lines; otherwise, no notes on stderr
    #[arg(short = 'q', long, overrides_with_all = ["status", "warn"])]
    quiet: bool,
    /// With -c, print nothing: the exit status says whether all matched
    #[arg(long, requires = "check", overrides_with_all = ["quiet", "warn"])]
    status: bool,
    /// With -c, exit 1 when a line is improperly formatted
    #[arg(long, requires = "check")]
    strict: bool,
    /// With -c, skip listed files that do not exist
    #[arg(long, requires = "check")]
    ignore_missing: bool,
    /// With -c, warn about each improperly formatted line
    #[arg(short = 'w', long, requires = "check", overrides_with_all = ["quiet", "status"])]
    warn: bool,
    /// Say on stderr which engine read each file, and why
    #[arg(short = 'v', long)]
    verbose: bool,
}

impl Args {
    fn into_config(self) -> Result<Config> {
        let digest = self.algorithm.or(self.digest);
        let blake3_only = self.keyed || self.derive_key.is_some() || self.length.is_some();
        if blake3_only && digest.is_some_and(|d| d != Digest::Blake3) {
            bail!(super::Usage(
                "--keyed, --derive-key and --length are BLAKE3's (--digest blake3)".into()
            ));
        }
        let digest = digest.unwrap_or(if blake3_only {
            Digest::Blake3
        } else {
            Digest::Xxh64
        });
        if self.raw && self.files.len() > 1 {
            bail!(super::Usage("--raw takes one FILE".into()));
        }
        let mut config = config(Voice::Zcopy, "zcopy", digest);
        config.untagged_as = if self.check { self.digest } else { None };
        config.files = self.files;
        config.check = self.check;
        config.tag = self.tag;
        config.little_endian = self.little_endian;
        config.binary = self.binary;
        config.zero = self.zero;
        config.no_names = self.no_names;
        config.raw = self.raw;
        config.xof = Xof {
            seek: self.seek,
            len: self.length.unwrap_or(Xof::DEFAULT.len),
        };
        if self.keyed {
            config.blake3 = Some(Box::new(blake3::Hasher::new_keyed(&blake3_key()?)));
            config.key_from_stdin = true;
        } else if let Some(context) = &self.derive_key {
            config.blake3 = Some(Box::new(blake3::Hasher::new_derive_key(context)));
        }
        config.quiet = self.quiet;
        config.status = self.status;
        config.strict = self.strict;
        config.warn = self.warn;
        config.ignore_missing = self.ignore_missing;
        config.engine = if self.no_mmap {
            ScanChoice::Only(ScanEngine::Read)
        } else {
            self.engine
        };
        config.buffer = self.buffer;
        config.verbose = self.verbose;
        Ok(config)
    }
}

pub fn run(args: Args) -> Result<()> {
    run_config(args.into_config()?)
}

/// Hashes or checks every file of `config` on stdout; `Err(Quiet)` when any
/// failed, after saying why on stderr in the voice's words.
pub fn run_config(config: Config) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match zcopy_sum::run(config, &mut out, &mut std::io::stderr()) {
        Ok(true) => Ok(()),
        Ok(false) => bail!(super::Quiet),
        Err(zcopy_sum::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(super::StdoutClosed.into())
        }
        Err(zcopy_sum::Error::Output(e)) => Err(anyhow::Error::new(e).context("standard output")),
        Err(e) => Err(e.into()),
    }
}

/// A config with every flag off, for a front end to fill in; `auto` reads as
/// the calibration profile says.
fn config(voice: Voice, prog: &str, digest: Digest) -> Config {
    let mut config = Config::new(voice, prog, digest);
    config.calibration = Some(calibrated_engine);
    config
}

/// The engine `zcopy bench --calibrate` measured fastest for a regular file of
/// this size, and why; `None` without a profile, where `auto`'s defaults apply.
fn calibrated_engine(len: u64) -> Option<(ScanEngine, String)> {
    static PROFILE: std::sync::OnceLock<Option<zcopy_bench::Profile>> = std::sync::OnceLock::new();
    PROFILE
        .get_or_init(zcopy_bench::Profile::load)
        .as_ref()?
        .scan_engine(len)
}

/// The 32-byte BLAKE3 key of `--keyed`, all of standard input.
fn blake3_key() -> Result<[u8; blake3::KEY_LEN]> {
    match zcopy_sum::b3sum::read_key(std::io::stdin().lock()) {
        Ok(key) => Ok(key),
        // The read's own error, so that its kind still picks the exit code.
        Err(zcopy_sum::b3sum::KeyError::Io(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

/// `--digest`: the digests by name, each with its line in the help.
fn digest_parser() -> impl TypedValueParser<Value = Digest> {
    let names = Digest::ALL.map(|d| PossibleValue::new(d.name()).help(d.about()));
    PossibleValuesParser::new(names).try_map(|name: String| {
        Digest::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or(name)
    })
}
