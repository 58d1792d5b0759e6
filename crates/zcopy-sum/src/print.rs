//! Digest lines: what each voice prints for a file, and for a file it cannot
//! hash; xxhsum's `--filelist`, which hashes the files a list names.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;

use zcopy::quote::{quote, Style};

use crate::config::{Config, Voice};
use crate::digest::{self, Digest};
use crate::hash::{hash, open};
use crate::line;
use crate::output::{strerror, Halt, Streams};
use crate::report::check_file_error;

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
pub(crate) fn print_digest(name: &OsStr, config: &Config, io: &mut Streams) -> Result<bool, Halt> {
    let stdin = name == "-";
    let shown = if stdin {
        OsStr::new(stdin_name(config))
    } else {
        name
    };
    let bytes = match open(name, config).and_then(|file| hash(&file, &[config.digest], config, io))
    {
        Ok(mut digests) => digests.remove(0),
        Err(e) => {
            hash_error(name, &e, config, io);
            return Ok(false);
        }
    };
    io.emit(&digest_line(shown.as_bytes(), &bytes, config))?;
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
pub(crate) fn hash_listed(list: &OsStr, config: &Config, io: &mut Streams) -> Result<bool, Halt> {
    let stdin = list == "-";
    let shown: &[u8] = if stdin { b"stdin" } else { list.as_bytes() };
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        match File::open(list) {
            Ok(file) => Box::new(BufReader::new(file)),
            Err(e) => return check_file_error(shown, &e, false, config, io),
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
                io.say(&[shown, where_.as_bytes()].concat());
            }
            continue;
        };
        well_formed += 1;
        let path = OsStr::from_bytes(&name);
        let hashed = File::open(path).and_then(|file| hash(&file, &[config.digest], config, io));
        let failure = match hashed {
            Ok(mut digests) => {
                io.emit(&digest_line(&name, &digests.remove(0), config))?;
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
            io.emit(&[shown, &failure].concat())?;
        }
    }
    if well_formed == 0 {
        io.say(&[shown, b": no properly formatted filename lines found\n"].concat());
    }
    let plural = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    if misformatted > 0 {
        let what = plural(misformatted, "line is", "lines are");
        io.emit(format!("{misformatted} {what} improperly formatted\n").as_bytes())?;
    }
    if unreadable > 0 {
        let what = plural(unreadable, "file", "files");
        io.emit(format!("{unreadable} listed {what} could not be read\n").as_bytes())?;
    }
    Ok(well_formed > 0 && unreadable == 0 && misformatted == 0)
}

/// Says why `name` could not be hashed, as the voice's tool says it.
fn hash_error(name: &OsStr, e: &std::io::Error, config: &Config, io: &mut Streams) {
    let is_dir = e.raw_os_error() == Some(libc::EISDIR);
    let shown = name.as_bytes();
    // A failed write to stderr has nowhere to be reported.
    let _ = match config.voice {
        Voice::Xxhsum if is_dir => io
            .err
            .write_all(&[b"xxhsum: ", shown, b": Is a directory \n"].concat()),
        Voice::Xxhsum => io.err.write_all(
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
        Voice::B3sum => writeln!(io.err, "b3sum: {}: {e}", String::from_utf8_lossy(shown)),
        Voice::Gnu => writeln!(
            io.err,
            "{}: {}: {}",
            config.prog,
            quote(shown, Style::Shell),
            strerror(e)
        ),
        Voice::Zcopy => io
            .err
            .write_all(&[b"zcopy: ", shown, b": ", strerror(e).as_bytes(), b"\n"].concat()),
    };
}
