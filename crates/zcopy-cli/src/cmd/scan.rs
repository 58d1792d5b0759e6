//! `zcopy scan [FILE...]`: checksums files through read, pread, mmap or direct I/O, in the
//! formats xxhsum, b3sum and the GNU `*sum` tools print, and checks their check
//! files (`--check`), so that each tool reads what the other writes.
//!
//! Lines are GNU style, `<hex>  <name>`, except for the digests whose hex length
//! does not name them to the peer tool (XXH3, which xxhsum 0.8.1 prints tagged, and
//! CRC32C): those are BSD style, `XXH3 (<name>) = <hex>`, as is everything with
//! `--tag`. `--check` reads both, tells the digest from the tag or from the length
//! of the hex (with `--digest`, untagged lines are read as that digest), and
//! follows GNU `sha256sum -c` in its output, its options and its exit status.

mod line;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zcopy::{ScanChoice, ScanEngine};

use crate::digest::{Digest, Hasher};
use crate::size;

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
    /// Read FILEs as check files and verify the digests they list
    #[arg(short = 'c', long)]
    check: bool,
    /// BSD-style lines for every digest: TAG (name) = hex
    #[arg(long, conflicts_with = "check")]
    tag: bool,
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

pub fn run(mut args: Args) -> Result<()> {
    if args.files.is_empty() {
        args.files.push("-".into());
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for name in &args.files {
        let result = if args.check {
            check(name, &args, &mut out)
        } else {
            print_digest(name, &args, &mut out)
        };
        match result {
            Ok(ok) => failed |= !ok,
            Err(e) if super::is_stdout_closed(&e) => return Err(e),
            Err(e) => {
                eprintln!("zcopy: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        bail!(super::Quiet);
    }
    Ok(())
}

fn print_digest(name: &OsStr, args: &Args, out: &mut impl Write) -> Result<bool> {
    let digest = args.digest.unwrap_or(Digest::Xxh64);
    let stdin = name == "-";
    let shown = if stdin {
        OsStr::new(digest.stdin_name())
    } else {
        name
    };
    let file = open(name).map_err(|e| open_error(shown, e))?;
    let hex = hash(&file, shown, &[digest], args)?.remove(0);
    let tagged = args.tag || digest.tagged_by_default();
    emit(out, &line::format(digest, &hex, shown.as_bytes(), tagged))
}

/// Opens a file to hash; `-` is standard input.
fn open(name: &OsStr) -> std::io::Result<File> {
    if name == "-" {
        return Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?));
    }
    File::open(name)
}

/// The digests of `file` in one pass, in hex.
fn hash(file: &File, shown: &OsStr, digests: &[Digest], args: &Args) -> Result<Vec<String>> {
    let shown = Path::new(shown).display();
    if file.metadata().with_context(|| shown.to_string())?.is_dir() {
        bail!("{shown}: Is a directory");
    }
    let mut hashers: Vec<Hasher> = digests.iter().map(|d| Hasher::new(*d)).collect();
    let mut calibrated = None;
    let choice = match args.engine {
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
    let report = zcopy::scan(file, choice, args.buffer, &mut |chunk| {
        for h in &mut hashers {
            h.update(chunk);
        }
    })
    .with_context(|| shown.to_string())?;
    if let Some(note) = &report.fallback {
        if args.engine != ScanChoice::Only(ScanEngine::Read) && !args.quiet {
            eprintln!("zcopy: note: {shown}: {note}");
        }
    }
    if args.verbose {
        let why = calibrated.as_deref().unwrap_or(report.why);
        eprintln!("zcopy: {shown}: {} ({why})", report.engine);
    }
    Ok(hashers.into_iter().map(Hasher::hex).collect())
}

/// The engine `zcopy bench --calibrate` measured fastest for a regular file of
/// this size, and why; `None` without a profile, where `auto`'s defaults apply.
fn calibrated_engine(file: &File) -> Option<(ScanEngine, String)> {
    static PROFILE: std::sync::OnceLock<Option<crate::bench::Profile>> = std::sync::OnceLock::new();
    let meta = file.metadata().ok().filter(std::fs::Metadata::is_file)?;
    let (engine, why) = PROFILE
        .get_or_init(crate::bench::Profile::load)
        .as_ref()?
        .scan_engine(meta.len())?;
    Some((engine, format!("auto, calibrated: {why}")))
}

/// `NAME: No such file or directory`, in the words of the GNU tools (without Rust's
/// ` (os error 2)`).
fn open_error(name: &OsStr, e: std::io::Error) -> anyhow::Error {
    let words = e.to_string();
    let words = words.split(" (os error").next().unwrap_or_default();
    anyhow::anyhow!("{}: {words}", Path::new(name).display())
}

fn emit(out: &mut impl Write, line: &[u8]) -> Result<bool> {
    match out.write_all(line) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(super::StdoutClosed.into()),
        other => {
            other?;
            Ok(true)
        }
    }
}

fn result_line(name: &[u8], word: &str) -> Vec<u8> {
    [&line::display(name)[..], b": ", word.as_bytes(), b"\n"].concat()
}

/// What one check file came to.
#[derive(Default)]
struct Tally {
    misformatted: usize,
    unreadable: usize,
    mismatched: usize,
    matched: usize,
    well_formed: usize,
}

/// Verifies every line of the check file `name`; `Ok(false)` when it fails as
/// `sha256sum -c` would.
fn check(name: &OsStr, args: &Args, out: &mut impl Write) -> Result<bool> {
    let stdin = name == "-";
    let shown = if stdin {
        "standard input".to_string()
    } else {
        Path::new(name).display().to_string()
    };
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(BufReader::new(File::open(name).context(shown.clone())?))
    };
    let mut tally = Tally::default();
    // Digests that matched in this file go first when a line's hex fits several.
    let mut seen: Vec<Digest> = Vec::new();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).context(shown.clone())? == 0 {
            break;
        }
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() || text[0] == b'#' {
            continue;
        }
        let parsed = line::parse(text, args.digest).filter(|l| !(stdin && l.name == b"-"));
        let Some(mut entry) = parsed else {
            tally.misformatted += 1;
            if args.warn {
                let kind = args
                    .digest
                    .map(|d| format!("{} ", d.tag()))
                    .unwrap_or_default();
                eprintln!("zcopy: {shown}: {number}: improperly formatted {kind}checksum line");
            }
            continue;
        };
        tally.well_formed += 1;
        entry.digests.sort_by_key(|d| !seen.contains(d));
        match verify(&entry, args) {
            Verdict::Missing => {}
            Verdict::Unreadable(e) => {
                tally.unreadable += 1;
                eprintln!("zcopy: {e:#}");
                if !args.status {
                    emit(out, &result_line(&entry.name, "FAILED open or read"))?;
                }
            }
            Verdict::Matched(digest) => {
                tally.matched += 1;
                if !seen.contains(&digest) {
                    seen.push(digest);
                }
                if !args.status && !args.quiet {
                    emit(out, &result_line(&entry.name, "OK"))?;
                }
            }
            Verdict::Mismatched => {
                tally.mismatched += 1;
                if !args.status {
                    emit(out, &result_line(&entry.name, "FAILED"))?;
                }
            }
        }
    }
    if tally.well_formed == 0 {
        eprintln!("zcopy: {shown}: no properly formatted checksum lines found");
        return Ok(false);
    }
    if !args.status {
        let plural =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        let m = tally.misformatted;
        if m > 0 {
            eprintln!(
                "zcopy: WARNING: {m} {}",
                plural(
                    m,
                    "line is improperly formatted",
                    "lines are improperly formatted"
                )
            );
        }
        let u = tally.unreadable;
        if u > 0 {
            eprintln!(
                "zcopy: WARNING: {u} {}",
                plural(
                    u,
                    "listed file could not be read",
                    "listed files could not be read"
                )
            );
        }
        let f = tally.mismatched;
        if f > 0 {
            eprintln!(
                "zcopy: WARNING: {f} {}",
                plural(
                    f,
                    "computed checksum did NOT match",
                    "computed checksums did NOT match"
                )
            );
        }
        if args.ignore_missing && tally.matched == 0 {
            eprintln!("zcopy: {shown}: no file was verified");
        }
    }
    Ok(tally.matched > 0
        && tally.mismatched == 0
        && tally.unreadable == 0
        && !(args.strict && tally.misformatted > 0))
}

enum Verdict {
    Matched(Digest),
    Mismatched,
    /// Absent, and `--ignore-missing` says to skip it.
    Missing,
    Unreadable(anyhow::Error),
}

/// Hashes the file a check line names and compares. A line whose hex fits several
/// digests is tried with each in turn (all in one pass for standard input, which
/// cannot be read twice).
fn verify(entry: &line::CheckLine, args: &Args) -> Verdict {
    let name = OsStr::from_bytes(&entry.name);
    let stdin = name == "-" || (name == "stdin" && entry.digests[0].stdin_name() == "stdin");
    let path = if stdin { OsStr::new("-") } else { name };
    let file = match open(path) {
        Ok(file) => file,
        Err(e) if args.ignore_missing && e.kind() == std::io::ErrorKind::NotFound => {
            return Verdict::Missing
        }
        Err(e) => return Verdict::Unreadable(open_error(name, e)),
    };
    let batches: Vec<&[Digest]> = if stdin {
        vec![&entry.digests]
    } else {
        entry.digests.chunks(1).collect()
    };
    for batch in batches {
        match hash(&file, name, batch, args) {
            Ok(hexes) => {
                if let Some(i) = hexes.iter().position(|h| *h == entry.hex) {
                    return Verdict::Matched(batch[i]);
                }
            }
            Err(e) => return Verdict::Unreadable(e),
        }
    }
    Verdict::Mismatched
}
