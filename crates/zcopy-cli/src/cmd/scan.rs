//! `zcopy scan [FILE...]`: checksums files through read, pread, mmap or direct I/O, in the
//! formats xxhsum, b3sum and the GNU `*sum` tools print, and checks their check
//! files (`--check`), so that each tool reads what the other writes.
//!
//! Lines are GNU style, `<hex>  <name>`, except for the digests whose hex length
//! does not name them to the peer tool (XXH3, which xxhsum prints tagged, and
//! CRC32C): those are BSD style, `XXH3 (<name>) = <hex>`, as is everything with
//! `--tag`. `--check` reads both, tells the digest from the tag or from the length
//! of the hex (with `--digest`, untagged lines are read as that digest), and
//! follows GNU `sha256sum -c` in its output, its options and its exit status.
//!
//! Through a link named `xxhsum`, `b3sum` or `sha256sum` (see `main.rs`), the
//! command *is* that tool: [`xxhsum`], [`b3sum`] and [`gnu`] read its flags into
//! the same [`Config`], and the [`Voice`] picks its words, its check-line rules
//! and its exit status. Flags are turned into a `Config` at the edge; hashing
//! below sees only the config.

pub mod b3sum;
pub mod gnu;
mod line;
pub mod xxhsum;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Result};
use zcopy::{ScanChoice, ScanEngine};

use crate::digest::{self, Digest, Hasher, Xof};
use zcopy::size;

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
    #[arg(long)]
    digest: Option<Digest>,
    /// Digest as xxhsum numbers them: 0 or 32 (xxh32), 1 or 64 (xxh64), 2 or 128
    /// (xxh128), 3 (xxh3)
    #[arg(short = 'H', value_name = "N", value_parser = xxhsum::algorithm, conflicts_with = "digest")]
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

/// Whose conventions the command follows: its words, the check lines it accepts,
/// what it calls standard input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// `zcopy scan`: GNU's check output, every digest's lines, `zcopy:` prefix.
    Zcopy,
    /// xxhsum 0.8.2 (also as xxh32sum, xxh64sum, xxh128sum, xxh3sum).
    Xxhsum,
    /// b3sum 1.8.
    B3sum,
    /// GNU coreutils' sha256sum.
    Gnu,
}

/// What to do, whoever asked: the flags of every front end end up here.
pub struct Config {
    pub voice: Voice,
    /// The prefix of messages (`zcopy`, `sha256sum`, ...).
    pub prog: String,
    pub files: Vec<OsString>,
    pub digest: Digest,
    /// The digests check lines may hold; empty for any.
    pub accepts: Vec<Digest>,
    /// zcopy's `--digest` with `-c`: how untagged lines are read.
    pub untagged_as: Option<Digest>,
    pub check: bool,
    /// xxhsum `--filelist`: FILEs list the files to hash.
    pub file_list: bool,
    pub tag: bool,
    pub little_endian: bool,
    /// `hex *name`: GNU's binary-mode marker.
    pub binary: bool,
    /// NUL-terminated lines, names unescaped (GNU `-z`).
    pub zero: bool,
    pub no_names: bool,
    pub raw: bool,
    /// BLAKE3 set up keyed or deriving a key, instead of plain.
    pub blake3: Option<Box<blake3::Hasher>>,
    /// The BLAKE3 key came on standard input, which cannot then be hashed.
    pub key_from_stdin: bool,
    pub xof: Xof,
    pub quiet: bool,
    pub status: bool,
    pub strict: bool,
    pub warn: bool,
    pub ignore_missing: bool,
    pub engine: ScanChoice,
    pub buffer: usize,
    pub verbose: bool,
}

impl Config {
    /// A config with every flag off, for a front end to fill in.
    pub fn new(voice: Voice, prog: &str, digest: Digest) -> Config {
        Config {
            voice,
            prog: prog.to_string(),
            files: Vec::new(),
            digest,
            accepts: Vec::new(),
            untagged_as: None,
            check: false,
            file_list: false,
            tag: false,
            little_endian: false,
            binary: false,
            zero: false,
            no_names: false,
            raw: false,
            blake3: None,
            key_from_stdin: false,
            xof: Xof::DEFAULT,
            quiet: false,
            status: false,
            strict: false,
            warn: false,
            ignore_missing: false,
            engine: ScanChoice::Auto,
            buffer: 4 << 20,
            verbose: false,
        }
    }
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
        let mut config = Config::new(Voice::Zcopy, "zcopy", digest);
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
            config.blake3 = Some(Box::new(blake3::Hasher::new_keyed(
                &b3sum::key_from_stdin()?
            )));
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

/// Hashes or checks every file of `config`; `Err(Quiet)` when any failed, after
/// saying why on stderr in the voice's words.
pub fn run_config(mut config: Config) -> Result<()> {
    if config.files.is_empty() {
        config.files.push("-".into());
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    let mut state = CheckState::default();
    for name in &config.files {
        let ok = if config.check {
            check(name, &config, &mut state, &mut out)?
        } else if config.file_list {
            hash_listed(name, &config, &mut out)?
        } else {
            print_digest(name, &config, &mut out)?
        };
        failed |= !ok;
    }
    if config.check && config.voice == Voice::B3sum && state.b3sum_failures > 0 {
        failed = true;
        let n = state.b3sum_failures;
        let s = if n == 1 { "" } else { "s" };
        eprintln!("b3sum: WARNING: {n} computed checksum{s} did NOT match");
    }
    if let Err(e) = out.flush() {
        return Err(stdout_error(e));
    }
    if failed {
        bail!(super::Quiet);
    }
    Ok(())
}

/// What standard input is called in output lines: xxhsum says `stdin`, the GNU
/// tools and b3sum `-`; zcopy follows the digest's own tool.
fn stdin_name(config: &Config) -> &'static str {
    match config.voice {
        Voice::Xxhsum => "stdin",
        Voice::B3sum | Voice::Gnu => "-",
        Voice::Zcopy => config.digest.stdin_name(),
    }
}

/// Prints one file's line; `Ok(false)` when it could not be hashed (said on stderr).
fn print_digest(name: &OsStr, config: &Config, out: &mut impl Write) -> Result<bool> {
    let stdin = name == "-";
    let shown = if stdin {
        OsStr::new(stdin_name(config))
    } else {
        name
    };
    let bytes = match open(name, config).and_then(|file| hash(&file, &[config.digest], config)) {
        Ok(mut digests) => digests.remove(0),
        Err(e) => {
            hash_error(name, &e, config);
            return Ok(false);
        }
    };
    emit(out, &digest_line(shown.as_bytes(), &bytes, config))?;
    Ok(true)
}

/// What the voice's tool prints for a file named `shown` whose digest is `bytes`.
fn digest_line(shown: &[u8], bytes: &[u8], config: &Config) -> Vec<u8> {
    if config.raw {
        return bytes.to_vec();
    }
    let hex = if config.little_endian {
        digest::hex(&bytes.iter().rev().copied().collect::<Vec<_>>())
    } else {
        digest::hex(bytes)
    };
    if config.no_names {
        return format!("{hex}\n").into_bytes();
    }
    let tagged = config.tag || (config.voice == Voice::Zcopy && config.digest.tagged_by_default());
    // xxhsum 0.8.3 marks an untagged XXH3 line, lest it pass for XXH64.
    let hex = if config.voice == Voice::Xxhsum && config.digest == Digest::Xxh3 && !tagged {
        format!("XXH3_{hex}")
    } else {
        hex
    };
    let tag = if config.little_endian {
        format!("{}_LE", config.digest.tag())
    } else {
        config.digest.tag().to_string()
    };
    // b3sum prints names as Unicode, an invalid byte as U+FFFD.
    let lossy;
    let name = if config.voice == Voice::B3sum {
        lossy = String::from_utf8_lossy(shown).into_owned();
        lossy.as_bytes()
    } else {
        shown
    };
    let style = line::Style {
        tagged,
        binary: config.binary,
        zero: config.zero,
    };
    line::format(&tag, &hex, name, style)
}

/// xxhsum `--filelist`: hashes the files named in the list file `list`, one a
/// line (escaped behind a leading backslash), as xxhsum 0.8.3 does; `Ok(false)`
/// when a line is malformed or a file cannot be read.
fn hash_listed(list: &OsStr, config: &Config, out: &mut impl Write) -> Result<bool> {
    let stdin = list == "-";
    let shown: &[u8] = if stdin { b"stdin" } else { list.as_bytes() };
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        match File::open(list) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(e) => return check_file_error(shown, &e, false, config),
        }
    };
    let (mut well_formed, mut misformatted, mut unreadable) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    for number in 1u64.. {
        buf.clear();
        // xxhsum reads a list it cannot read as an empty one.
        if reader.read_until(b'\n', &mut buf).unwrap_or(0) == 0 {
            break;
        }
        let Some(text) = line::content(&buf, Voice::Xxhsum) else {
            continue;
        };
        let escaped = text.iter().find(|b| **b != b' ' && **b != b'\t') == Some(&b'\\');
        let name = if escaped {
            line::unescape(&text[1..])
        } else {
            Some(text.to_vec())
        };
        let Some(name) = name else {
            misformatted += 1;
            if config.warn {
                let where_ = format!(":{number}: Error: Improperly formatted line.\n");
                let _ = std::io::stderr().write_all(&[shown, where_.as_bytes()].concat());
            }
            continue;
        };
        well_formed += 1;
        let path = OsStr::from_bytes(&name);
        let hashed = File::open(path).and_then(|file| hash(&file, &[config.digest], config));
        let failure = match hashed {
            Ok(mut digests) => {
                emit(out, &digest_line(&name, &digests.remove(0), config))?;
                continue;
            }
            Err(_) if config.ignore_missing => continue,
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                format!(":{number}: Target is a directory '")
                    .into_bytes()
                    .into_iter()
                    .chain(name.iter().copied())
                    .chain(*b"'.\n")
                    .collect::<Vec<u8>>()
            }
            Err(e) => [
                format!(":{number}: Could not open or read '").as_bytes(),
                &name,
                b"': ",
                strerror(&e).as_bytes(),
                b".\n",
            ]
            .concat(),
        };
        unreadable += 1;
        if !config.status {
            emit(out, &[shown, &failure].concat())?;
        }
    }
    if well_formed == 0 {
        let _ = std::io::stderr()
            .write_all(&[shown, b": no properly formatted filename lines found\n"].concat());
    }
    let plural = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    if misformatted > 0 {
        let what = plural(misformatted, "line is", "lines are");
        emit(
            out,
            format!("{misformatted} {what} improperly formatted\n").as_bytes(),
        )?;
    }
    if unreadable > 0 {
        let what = plural(unreadable, "file", "files");
        emit(
            out,
            format!("{unreadable} listed {what} could not be read\n").as_bytes(),
        )?;
    }
    Ok(well_formed > 0 && unreadable == 0 && misformatted == 0)
}

/// Says why `name` could not be hashed, as the voice's tool says it.
fn hash_error(name: &OsStr, e: &std::io::Error, config: &Config) {
    let is_dir = e.raw_os_error() == Some(libc::EISDIR);
    let mut err = std::io::stderr().lock();
    let shown = name.as_bytes();
    // A failed write to stderr has nowhere to be reported.
    let _ = match config.voice {
        Voice::Xxhsum if is_dir => {
            err.write_all(&[b"xxhsum: ", shown, b": Is a directory \n"].concat())
        }
        Voice::Xxhsum => err.write_all(
            &[
                b"Error: Could not open '",
                shown,
                b"': ",
                strerror(e).as_bytes(),
                b". \n",
            ]
            .concat(),
        ),
        // b3sum prints Rust's own words, `(os error 2)` included.
        Voice::B3sum => writeln!(err, "b3sum: {}: {e}", String::from_utf8_lossy(shown)),
        Voice::Gnu => writeln!(
            err,
            "{}: {}: {}",
            config.prog,
            gnu::quote(shown),
            strerror(e)
        ),
        Voice::Zcopy => {
            err.write_all(&[b"zcopy: ", shown, b": ", strerror(e).as_bytes(), b"\n"].concat())
        }
    };
}

/// The strerror words of `e`, without Rust's ` (os error N)`.
fn strerror(e: &std::io::Error) -> String {
    let words = e.to_string();
    match words.find(" (os error") {
        Some(end) => words[..end].to_string(),
        None => words,
    }
}

/// Opens a file to hash; `-` is standard input.
fn open(name: &OsStr, config: &Config) -> std::io::Result<File> {
    if name == "-" {
        if config.key_from_stdin {
            return Err(std::io::Error::other("Cannot open `-` in keyed mode"));
        }
        return Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?));
    }
    File::open(name)
}

/// The digests of `file` in one pass, canonical bytes each.
fn hash(file: &File, digests: &[Digest], config: &Config) -> std::io::Result<Vec<Vec<u8>>> {
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    let mut hashers: Vec<Hasher> = digests
        .iter()
        .map(|d| match (&config.blake3, d) {
            (Some(base), Digest::Blake3) => Hasher::blake3((**base).clone()),
            _ => Hasher::new(*d),
        })
        .collect();
    let mut calibrated = None;
    let choice = match config.engine {
        ScanChoice::Auto if digests.contains(&Digest::Blake3) => ScanChoice::AutoInPlace,
        ScanChoice::Auto => match calibrated_engine(file) {
            Some((engine, why)) => {
                calibrated = Some(why);
                ScanChoice::Only(engine)
            }
            None => ScanChoice::Auto,
        },
        choice => choice,
    };
    let report = zcopy::scan(file, choice, config.buffer, &mut |chunk| {
        for h in &mut hashers {
            h.update(chunk);
        }
    })
    .map_err(|e| match e {
        zcopy::Error::ScanIo { cause, .. } | zcopy::Error::Setup(cause) => cause,
        other => std::io::Error::other(other.to_string()),
    })?;
    // Notes are zcopy's own: a peer's stderr carries only the peer's words.
    if config.voice == Voice::Zcopy {
        if let Some(note) = &report.fallback {
            if config.engine != ScanChoice::Only(ScanEngine::Read) && !config.quiet {
                eprintln!("zcopy: note: {note}");
            }
        }
    }
    if config.verbose {
        let why = calibrated.as_deref().unwrap_or(report.why);
        eprintln!("{}: {} ({why})", config.prog, report.engine);
    }
    Ok(hashers.into_iter().map(|h| h.finish(config.xof)).collect())
}

/// The engine `zcopy bench --calibrate` measured fastest for a regular file of
/// this size, and why; `None` without a profile, where `auto`'s defaults apply.
fn calibrated_engine(file: &File) -> Option<(ScanEngine, String)> {
    static PROFILE: std::sync::OnceLock<Option<zcopy_bench::Profile>> = std::sync::OnceLock::new();
    let meta = file.metadata().ok().filter(std::fs::Metadata::is_file)?;
    let (engine, why) = PROFILE
        .get_or_init(zcopy_bench::Profile::load)
        .as_ref()?
        .scan_engine(meta.len())?;
    Some((engine, format!("auto, calibrated: {why}")))
}

fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        super::StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("standard output")
    }
}

fn emit(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    out.write_all(bytes).map_err(stdout_error)
}

/// What carries over from one check file to the next within a run.
#[derive(Default)]
struct CheckState {
    /// GNU decides once per run whether untagged lines are `hex name` ("BSD
    /// reversed", one space) or `hex  name`, from the first line that tells.
    gnu_reversed: Option<bool>,
    /// b3sum counts failed lines over all its check files, and reports once.
    b3sum_failures: u64,
}

/// What one check file came to.
#[derive(Default)]
struct Tally {
    misformatted: u64,
    unreadable: u64,
    mismatched: u64,
    matched: u64,
    well_formed: u64,
}

/// A check line's outcome.
enum Verdict {
    Matched(Digest),
    Mismatched,
    /// Absent, and `--ignore-missing` says to skip it.
    Missing,
    Unreadable(std::io::Error),
}

/// Verifies every line of the check file `name`; `Ok(false)` when it fails as the
/// voice's tool would fail it.
fn check(
    name: &OsStr,
    config: &Config,
    state: &mut CheckState,
    out: &mut impl Write,
) -> Result<bool> {
    let stdin = name == "-";
    let shown: Vec<u8> = match (stdin, config.voice) {
        (true, Voice::Xxhsum) => b"stdin".to_vec(),
        (true, _) => b"standard input".to_vec(),
        (false, _) => name.as_bytes().to_vec(),
    };
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        match File::open(name) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(e) => return check_file_error(&shown, &e, false, config),
        }
    };
    let mut tally = Tally::default();
    // Digests that matched in this file go first when a line's hex fits several.
    let mut seen: Vec<Digest> = Vec::new();
    let mut buf = Vec::new();
    for number in 1u64.. {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            // xxhsum reads a directory as an empty file.
            Err(_) if config.voice == Voice::Xxhsum => break,
            Err(e) => return check_file_error(&shown, &e, true, config),
        }
        if config.voice == Voice::B3sum && std::str::from_utf8(&buf).is_err() {
            let e = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            );
            return check_file_error(&shown, &e, true, config);
        }
        let Some(text) = line::content(&buf, config.voice) else {
            continue;
        };
        let parsed = match config.voice {
            Voice::Xxhsum => xxhsum::parse(text, config),
            Voice::B3sum => b3sum::parse(text),
            Voice::Gnu => gnu::parse(text, config.digest, &mut state.gnu_reversed),
            Voice::Zcopy => {
                line::parse(text, config.untagged_as, config.little_endian).ok_or(String::new())
            }
        };
        let parsed = parsed.and_then(|entry| {
            // GNU refuses to read standard input twice, as the list and as a file.
            let from_stdin =
                stdin && entry.name == b"-" && matches!(config.voice, Voice::Gnu | Voice::Zcopy);
            let accepted = config.accepts.is_empty()
                || entry.digests.iter().any(|d| config.accepts.contains(d));
            (!from_stdin && accepted)
                .then_some(entry)
                .ok_or(String::new())
        });
        let mut entry = match parsed {
            Ok(entry) => entry,
            Err(why) => {
                tally.misformatted += 1;
                misformatted(&shown, number, &why, config, state);
                continue;
            }
        };
        tally.well_formed += 1;
        entry.digests.sort_by_key(|d| !seen.contains(d));
        let verdict = verify(&entry, config);
        if let Verdict::Matched(digest) = verdict {
            if !seen.contains(&digest) {
                seen.push(digest);
            }
        }
        report_line(
            &entry, &verdict, &shown, number, config, state, &mut tally, out,
        )?;
    }
    summary(&shown, &tally, config, out)
}

/// A check file that cannot be opened or read: `Ok(false)`, the next one is read;
/// b3sum stops there, as an error out of its main, before its summary.
fn check_file_error(
    shown: &[u8],
    e: &std::io::Error,
    reading: bool,
    config: &Config,
) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    let _ = match config.voice {
        Voice::Xxhsum => err.write_all(
            &[
                b"Error: Could not open '",
                shown,
                b"': ",
                strerror(e).as_bytes(),
                b"\n",
            ]
            .concat(),
        ),
        Voice::B3sum => {
            let _ = writeln!(err, "Error: {e}");
            bail!(super::Quiet);
        }
        // GNU's getline failing says no more than this.
        Voice::Gnu if reading => {
            writeln!(err, "{}: {}: read error", config.prog, gnu::quote(shown))
        }
        Voice::Gnu => writeln!(
            err,
            "{}: {}: {}",
            config.prog,
            gnu::quote(shown),
            strerror(e)
        ),
        Voice::Zcopy => {
            err.write_all(&[b"zcopy: ", shown, b": ", strerror(e).as_bytes(), b"\n"].concat())
        }
    };
    Ok(false)
}

/// Reports a line that does not parse, when the voice's tool would.
fn misformatted(shown: &[u8], number: u64, why: &str, config: &Config, state: &mut CheckState) {
    let mut err = std::io::stderr().lock();
    let _ = match config.voice {
        Voice::B3sum => {
            state.b3sum_failures += 1;
            writeln!(err, "b3sum: {why}")
        }
        _ if !config.warn => Ok(()),
        Voice::Xxhsum => err.write_all(
            &[
                shown,
                format!(":{number}: Error: Improperly formatted checksum line.\n").as_bytes(),
            ]
            .concat(),
        ),
        Voice::Gnu => writeln!(
            err,
            "{}: {}: {number}: improperly formatted {} checksum line",
            config.prog,
            gnu::quote(shown),
            config.digest.tag()
        ),
        Voice::Zcopy => {
            let kind = config
                .untagged_as
                .map(|d| format!("{} ", d.tag()))
                .unwrap_or_default();
            err.write_all(
                &[
                    b"zcopy: ",
                    shown,
                    format!(": {number}: improperly formatted {kind}checksum line\n").as_bytes(),
                ]
                .concat(),
            )
        }
    };
}

/// Prints what one well-formed line came to and counts it.
#[allow(clippy::too_many_arguments)]
fn report_line(
    entry: &line::CheckLine,
    verdict: &Verdict,
    shown: &[u8],
    number: u64,
    config: &Config,
    state: &mut CheckState,
    tally: &mut Tally,
    out: &mut impl Write,
) -> Result<()> {
    if config.voice == Voice::B3sum {
        let word = match verdict {
            Verdict::Matched(_) if config.quiet => return Ok(()),
            Verdict::Matched(_) => "OK".to_string(),
            Verdict::Mismatched => "FAILED".to_string(),
            Verdict::Missing => return Ok(()),
            Verdict::Unreadable(e) => format!("FAILED ({e})"),
        };
        if !matches!(verdict, Verdict::Matched(_)) {
            state.b3sum_failures += 1;
        }
        return emit(
            out,
            &[&entry.shown[..], b": ", word.as_bytes(), b"\n"].concat(),
        );
    }
    let word = match verdict {
        Verdict::Missing => return Ok(()),
        Verdict::Matched(_) => {
            tally.matched += 1;
            "OK"
        }
        Verdict::Mismatched => {
            tally.mismatched += 1;
            "FAILED"
        }
        Verdict::Unreadable(e) => {
            tally.unreadable += 1;
            match config.voice {
                Voice::Xxhsum => {
                    if !config.status {
                        let text = [
                            shown,
                            format!(":{number}: Could not open or read '").as_bytes(),
                            &entry.name,
                            b"': ",
                            strerror(e).as_bytes(),
                            b".\n",
                        ]
                        .concat();
                        emit(out, &text)?;
                    }
                    return Ok(());
                }
                Voice::Gnu => eprintln!(
                    "{}: {}: {}",
                    config.prog,
                    gnu::quote(&entry.name),
                    strerror(e)
                ),
                _ => {
                    let _ = std::io::stderr().write_all(
                        &[
                            b"zcopy: ",
                            &entry.name[..],
                            b": ",
                            strerror(e).as_bytes(),
                            b"\n",
                        ]
                        .concat(),
                    );
                }
            }
            "FAILED open or read"
        }
    };
    let quiet_ok = config.quiet && word == "OK";
    if config.status || quiet_ok {
        return Ok(());
    }
    // GNU 9.1 escapes a result line only for a newline in the name; xxhsum and
    // zcopy for a backslash or carriage return too, as they do in digest lines.
    let escape = match config.voice {
        Voice::Gnu => entry.name.contains(&b'\n'),
        _ => line::needs_escape(&entry.name),
    };
    let name = if escape {
        line::display(&entry.name)
    } else {
        entry.name.clone()
    };
    emit(out, &[&name[..], b": ", word.as_bytes(), b"\n"].concat())
}

/// The end of one check file: the counts, in the voice's words; whether it passed.
fn summary(shown: &[u8], tally: &Tally, config: &Config, out: &mut impl Write) -> Result<bool> {
    if config.voice == Voice::B3sum {
        return Ok(true);
    }
    let xxhsum = config.voice == Voice::Xxhsum;
    if tally.well_formed == 0 {
        let mut err = std::io::stderr().lock();
        let _ = match config.voice {
            Voice::Xxhsum => err.write_all(
                &[
                    shown,
                    b": no properly formatted xxHash checksum lines found\n",
                ]
                .concat(),
            ),
            Voice::Gnu => writeln!(
                err,
                "{}: {}: no properly formatted checksum lines found",
                config.prog,
                gnu::quote(shown)
            ),
            _ => err.write_all(
                &[
                    b"zcopy: ",
                    shown,
                    b": no properly formatted checksum lines found\n",
                ]
                .concat(),
            ),
        };
        return Ok(false);
    }
    let plural = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    let counts = [
        (
            tally.misformatted,
            plural(tally.misformatted, "line is", "lines are"),
            "improperly formatted",
        ),
        (
            tally.unreadable,
            plural(tally.unreadable, "listed file", "listed files"),
            "could not be read",
        ),
        (
            tally.mismatched,
            plural(tally.mismatched, "computed checksum", "computed checksums"),
            "did NOT match",
        ),
    ];
    if !config.status {
        for (n, what, verb) in counts {
            if n == 0 {
                continue;
            }
            if xxhsum {
                emit(out, format!("{n} {what} {verb}\n").as_bytes())?;
            } else {
                eprintln!("{}: WARNING: {n} {what} {verb}", config.prog);
            }
        }
    }
    let none_verified = config.ignore_missing && tally.matched == 0;
    if none_verified {
        // xxhsum says so on stdout, even with --status; GNU on stderr, without.
        if xxhsum {
            emit(out, &[shown, b": no file was verified\n"].concat())?;
        } else if !config.status {
            let quoted = match config.voice {
                Voice::Gnu => gnu::quote(shown),
                _ => String::from_utf8_lossy(shown).into_owned(),
            };
            eprintln!("{}: {quoted}: no file was verified", config.prog);
        }
    }
    Ok(tally.mismatched == 0
        && tally.unreadable == 0
        && !(config.strict && tally.misformatted > 0)
        && !none_verified
        && (xxhsum || tally.matched > 0))
}

/// Hashes the file a check line names and compares. A line whose hex fits several
/// digests is tried with each in turn (all in one pass for standard input, which
/// cannot be read twice).
fn verify(entry: &line::CheckLine, config: &Config) -> Verdict {
    let name = OsStr::from_bytes(&entry.name);
    let stdin = match config.voice {
        Voice::Xxhsum => name == "stdin",
        Voice::B3sum | Voice::Gnu => name == "-",
        Voice::Zcopy => {
            name == "-" || (name == "stdin" && entry.digests[0].stdin_name() == "stdin")
        }
    };
    let path = if stdin { OsStr::new("-") } else { name };
    let file = match open(path, config) {
        Ok(file) => file,
        Err(e) if config.ignore_missing && e.kind() == std::io::ErrorKind::NotFound => {
            return Verdict::Missing
        }
        Err(e) => return Verdict::Unreadable(e),
    };
    let batches: Vec<&[Digest]> = if stdin {
        vec![&entry.digests]
    } else {
        entry.digests.chunks(1).collect()
    };
    for batch in batches {
        match hash(&file, batch, config) {
            Ok(found) => {
                if let Some(i) = found.iter().position(|h| *h == entry.expected) {
                    return Verdict::Matched(batch[i]);
                }
            }
            Err(e) => return Verdict::Unreadable(e),
        }
    }
    Verdict::Mismatched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parser takes any line: short ones made of the bytes the formats give a
    /// meaning to, in every order, and longer pseudo-random ones.
    #[test]
    fn no_check_line_panics_any_parser() {
        const BYTES: &[u8] = b"\\ ()=*_LEXH3S0a\t\0\xff\r";
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for len in 0..=4u32 {
            for mut n in 0..BYTES.len().pow(len) {
                let mut line = Vec::new();
                for _ in 0..len {
                    line.push(BYTES[n % BYTES.len()]);
                    n /= BYTES.len();
                }
                lines.push(line);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 80) as usize;
            let line = (0..len)
                .map(|i| BYTES[((x >> (i % 60)) as usize).wrapping_add(i) % BYTES.len()])
                .collect();
            lines.push(line);
        }
        lines.push(format!("XXH64 ({}) = ", "0".repeat(16)).into_bytes());
        lines.push(format!("\\{}  \\", "0".repeat(64)).into_bytes());
        let xxhsum = Config::new(Voice::Xxhsum, "xxhsum", Digest::Xxh64);
        for line in &lines {
            let _ = xxhsum::parse(line, &xxhsum);
            let _ = b3sum::parse(line);
            let _ = gnu::parse(line, Digest::Sha256, &mut None);
            let _ = gnu::parse(line, Digest::Sha256, &mut Some(true));
            let _ = line::parse(line, None, false);
            for voice in [Voice::Zcopy, Voice::Xxhsum, Voice::B3sum, Voice::Gnu] {
                let _ = line::content(line, voice);
            }
        }
    }
}
