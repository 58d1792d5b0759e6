//! `zcopy scan FILE...`: checksums files through read, mmap or direct I/O, in the
//! formats `xxhsum` and `b3sum` print, and checks their check files (`--check`).
//!
//! Output is GNU style, `<hex>  <name>` (`XXH3_<hex>  <name>` for XXH3, as xxhsum
//! 0.8.2 prints it), or BSD style with `--tag`, `XXH3 (<name>) = <hex>`. `--check`
//! reads either style and tells the digest from the line: a BSD name, the `XXH3_`
//! prefix, or the length of the hex (64 BLAKE3, 32 XXH128, 16 XXH3, 8 CRC32C).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use xxhash_rust::xxh3::Xxh3;
use zcopy::{ScanChoice, ScanEngine};

use crate::size;

/// Checksum files through read, mmap or direct I/O (xxhsum- and b3sum-compatible output)
#[derive(clap::Args)]
pub struct Args {
    /// Files to checksum; - is standard input
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// How to read: read (buffered), mmap, direct (O_DIRECT), auto (mmap for large files)
    #[arg(long, default_value = "auto")]
    engine: ScanChoice,
    /// Digest: xxh3, xxh128, crc32c, blake3
    #[arg(long, default_value = "xxh3")]
    digest: Digest,
    /// Read FILEs as check files and verify the digests they list
    #[arg(short = 'c', long)]
    check: bool,
    /// BSD-style lines: XXH3 (name) = hex
    #[arg(long)]
    tag: bool,
    /// Buffer size of the read and direct engines (1KiB is the seed's FileReader;
    /// from 1MiB a helper thread reads ahead)
    #[arg(long, value_parser = size::parse_buffer, default_value = "4MiB")]
    buffer: usize,
}

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Digest {
    Xxh3,
    Xxh128,
    Crc32c,
    Blake3,
}

impl Digest {
    fn tag(self) -> &'static str {
        match self {
            Digest::Xxh3 => "XXH3",
            Digest::Xxh128 => "XXH128",
            Digest::Crc32c => "CRC32C",
            Digest::Blake3 => "BLAKE3",
        }
    }

    fn from_tag(tag: &str) -> Option<Digest> {
        [Digest::Xxh3, Digest::Xxh128, Digest::Crc32c, Digest::Blake3]
            .into_iter()
            .find(|d| d.tag().eq_ignore_ascii_case(tag))
    }

    fn from_hex_len(len: usize) -> Option<Digest> {
        match len {
            64 => Some(Digest::Blake3),
            32 => Some(Digest::Xxh128),
            16 => Some(Digest::Xxh3),
            8 => Some(Digest::Crc32c),
            _ => None,
        }
    }
}

enum Hasher {
    Xxh(Box<Xxh3>),
    Crc32c(u32),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(digest: Digest) -> Hasher {
        match digest {
            Digest::Xxh3 | Digest::Xxh128 => Hasher::Xxh(Box::default()),
            Digest::Crc32c => Hasher::Crc32c(0),
            Digest::Blake3 => Hasher::Blake3(Box::default()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Xxh(h) => h.update(bytes),
            Hasher::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, bytes),
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    fn hex(&self, digest: Digest) -> String {
        match (self, digest) {
            (Hasher::Xxh(h), Digest::Xxh128) => format!("{:032x}", h.digest128()),
            (Hasher::Xxh(h), _) => format!("{:016x}", h.digest()),
            (Hasher::Crc32c(crc), _) => format!("{crc:08x}"),
            (Hasher::Blake3(h), _) => h.finalize().to_hex().to_string(),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for name in &args.files {
        let result = if args.check {
            check(name, &args, &mut out)
        } else {
            digest_of(name, args.digest, &args).and_then(|hex| {
                let line = if args.tag {
                    format!("{} ({}) = {hex}\n", args.digest.tag(), display_name(name))
                } else if args.digest == Digest::Xxh3 {
                    format!("XXH3_{hex}  {name}\n")
                } else {
                    format!("{hex}  {name}\n")
                };
                emit(&mut out, &line)
            })
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

fn display_name(name: &str) -> &str {
    if name == "-" {
        "stdin"
    } else {
        name
    }
}

fn emit(out: &mut impl Write, line: &str) -> Result<bool> {
    match out.write_all(line.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(super::StdoutClosed.into()),
        other => {
            other?;
            Ok(true)
        }
    }
}

/// The digest of one file (or stdin), in hex.
fn digest_of(name: &str, digest: Digest, args: &Args) -> Result<String> {
    let file = if name == "-" {
        File::from(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("stdin")?,
        )
    } else {
        let file = File::open(name).with_context(|| name.to_string())?;
        if file.metadata().with_context(|| name.to_string())?.is_dir() {
            bail!("{name}: Is a directory");
        }
        file
    };
    let mut hasher = Hasher::new(digest);
    let report = zcopy::scan(&file, args.engine, args.buffer, &mut |chunk| {
        hasher.update(chunk)
    })
    .with_context(|| display_name(name).to_string())?;
    if let Some(note) = &report.fallback {
        if args.engine != ScanChoice::Only(ScanEngine::Read) {
            eprintln!("zcopy: note: {}: {note}", display_name(name));
        }
    }
    Ok(hasher.hex(digest))
}

/// One line of a check file: the digest, its expected hex and the file name.
fn parse_check_line(line: &str) -> Option<(Digest, String, String)> {
    if let Some((head, hex)) = line.rsplit_once(") = ") {
        let (tag, name) = head.split_once(" (")?;
        return Some((
            Digest::from_tag(tag)?,
            hex.trim().to_ascii_lowercase(),
            name.to_string(),
        ));
    }
    let (hex, name) = line.split_once("  ").or_else(|| line.split_once(" *"))?;
    let (digest, hex) = match hex.strip_prefix("XXH3_") {
        Some(hex) => (Digest::Xxh3, hex),
        None => (Digest::from_hex_len(hex.len())?, hex),
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((digest, hex.to_ascii_lowercase(), name.to_string()))
}

/// Verifies every line of the check file `name`; `Ok(false)` when any failed.
fn check(name: &str, args: &Args, out: &mut impl Write) -> Result<bool> {
    let reader: Box<dyn BufRead> = if name == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(BufReader::new(
            File::open(name).with_context(|| name.to_string())?,
        ))
    };
    let (mut bad, mut mismatched, mut unreadable, mut good) = (0, 0, 0, 0);
    for line in reader.lines() {
        let line = line.with_context(|| name.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let Some((digest, want, file)) = parse_check_line(&line) else {
            bad += 1;
            continue;
        };
        let path = if file == "stdin" {
            "-".to_string()
        } else {
            file.clone()
        };
        match digest_of(&path, digest, args) {
            Ok(got) if got == want => {
                good += 1;
                emit(out, &format!("{file}: OK\n"))?;
            }
            Ok(_) => {
                mismatched += 1;
                emit(out, &format!("{file}: FAILED\n"))?;
            }
            Err(e) => {
                unreadable += 1;
                eprintln!("zcopy: {e:#}");
                emit(out, &format!("{file}: FAILED open or read\n"))?;
            }
        }
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if bad > 0 {
        eprintln!(
            "zcopy: WARNING: {bad} line{} improperly formatted in {name}",
            plural(bad)
        );
    }
    if unreadable > 0 {
        eprintln!(
            "zcopy: WARNING: {unreadable} listed file{} could not be read",
            plural(unreadable)
        );
    }
    if mismatched > 0 {
        eprintln!(
            "zcopy: WARNING: {mismatched} computed checksum{} did NOT match",
            plural(mismatched)
        );
    }
    if good + mismatched + unreadable == 0 {
        eprintln!(
            "zcopy: {}: no properly formatted checksum lines found",
            Path::new(name).display()
        );
        return Ok(false);
    }
    Ok(mismatched == 0 && unreadable == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lines_in_both_styles() {
        let h = "99fc819aaba2462a";
        assert_eq!(
            parse_check_line(&format!("XXH3 (a b.txt) = {h}")),
            Some((Digest::Xxh3, h.into(), "a b.txt".into()))
        );
        assert_eq!(
            parse_check_line(&format!("XXH3_{h}  f")),
            Some((Digest::Xxh3, h.into(), "f".into()))
        );
        let h128 = "6bba86c7e069f56d5a10b435f1c8e49c";
        assert_eq!(
            parse_check_line(&format!("{h128}  f")),
            Some((Digest::Xxh128, h128.into(), "f".into()))
        );
        assert_eq!(
            parse_check_line(&format!("{}  f", "ab".repeat(32)))
                .unwrap()
                .0,
            Digest::Blake3
        );
        assert_eq!(
            parse_check_line("CRC32C (f) = 0a0b0c0d").unwrap().0,
            Digest::Crc32c
        );
        assert_eq!(parse_check_line("zz  f"), None);
        assert_eq!(parse_check_line("nonsense"), None);
    }
}
