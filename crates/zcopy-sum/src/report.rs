//! What a check says: a line that does not parse, a check file that cannot be
//! read, each line's result and each check file's counts, in the voice's words
//! (GNU's warnings on stderr, xxhsum's counts on stdout, b3sum's one total).

use zcopy::quote::{quote, Style};

use crate::config::{Config, Voice};
use crate::digest::Digest;
use crate::line;
use crate::output::{strerror, Halt, Streams};

/// What carries over from one check file to the next within a run.
#[derive(Default)]
pub(crate) struct CheckState {
    /// GNU decides once per run whether untagged lines are `hex name` ("BSD
    /// reversed", one space) or `hex  name`, from the first line that tells.
    pub gnu_reversed: Option<bool>,
    /// b3sum counts failed lines over all its check files, and reports once.
    pub b3sum_failures: u64,
}

/// What one check file came to.
#[derive(Default)]
pub(crate) struct Tally {
    pub misformatted: u64,
    pub unreadable: u64,
    pub mismatched: u64,
    pub matched: u64,
    pub well_formed: u64,
}

/// A check line's outcome.
pub(crate) enum Verdict {
    /// The file hashed to the line's digest, this one of the digests it may be.
    Matched(Digest),
    /// The file hashed to something else.
    Mismatched,
    /// Absent, and `--ignore-missing` says to skip it.
    Missing,
    /// The file could not be opened or read.
    Unreadable(std::io::Error),
}

/// A check file that cannot be opened or read: `Ok(false)`, the next one is read;
/// b3sum stops there, as an error out of its main, before its summary.
pub(crate) fn check_file_error(
    shown: &[u8],
    e: &std::io::Error,
    reading: bool,
    config: &Config,
    io: &mut Streams,
) -> Result<bool, Halt> {
    let _ = match config.voice {
        Voice::Xxhsum => io.err.write_all(
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
            let _ = writeln!(io.err, "Error: {e}");
            return Err(Halt::Abandoned);
        }
        // GNU's getline failing says no more than this.
        Voice::Gnu if reading => {
            writeln!(
                io.err,
                "{}: {}: read error",
                config.prog,
                quote(shown, Style::Shell)
            )
        }
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
    Ok(false)
}

/// Reports a line that does not parse, when the voice's tool would.
pub(crate) fn misformatted(
    shown: &[u8],
    number: u64,
    why: &str,
    config: &Config,
    state: &mut CheckState,
    io: &mut Streams,
) {
    let _ = match config.voice {
        Voice::B3sum => {
            state.b3sum_failures += 1;
            writeln!(io.err, "b3sum: {why}")
        }
        _ if !config.warn => Ok(()),
        Voice::Xxhsum => io.err.write_all(
            &[
                shown,
                format!(":{number}: Error: Improperly formatted checksum line.\n").as_bytes(),
            ]
            .concat(),
        ),
        Voice::Gnu => writeln!(
            io.err,
            "{}: {}: {number}: improperly formatted {} checksum line",
            config.prog,
            quote(shown, Style::Shell),
            config.digest.tag()
        ),
        Voice::Zcopy => {
            let kind = config
                .untagged_as
                .map(|d| format!("{} ", d.tag()))
                .unwrap_or_default();
            io.err.write_all(
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
pub(crate) fn report_line(
    entry: &line::CheckLine,
    verdict: &Verdict,
    shown: &[u8],
    number: u64,
    config: &Config,
    state: &mut CheckState,
    tally: &mut Tally,
    io: &mut Streams,
) -> Result<(), Halt> {
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
        return io.emit(&[&entry.shown[..], b": ", word.as_bytes(), b"\n"].concat());
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
                        io.emit(&text)?;
                    }
                    return Ok(());
                }
                Voice::Gnu => io.say_line(format_args!(
                    "{}: {}: {}",
                    config.prog,
                    quote(&entry.name, Style::Shell),
                    strerror(e)
                )),
                _ => {
                    io.say(
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
    io.emit(&[&name[..], b": ", word.as_bytes(), b"\n"].concat())
}

/// The end of one check file: the counts, in the voice's words; whether it passed.
pub(crate) fn summary(
    shown: &[u8],
    tally: &Tally,
    config: &Config,
    io: &mut Streams,
) -> Result<bool, Halt> {
    if config.voice == Voice::B3sum {
        return Ok(true);
    }
    let xxhsum = config.voice == Voice::Xxhsum;
    if tally.well_formed == 0 {
        let _ = match config.voice {
            Voice::Xxhsum => io.err.write_all(
                &[
                    shown,
                    b": no properly formatted xxHash checksum lines found\n",
                ]
                .concat(),
            ),
            Voice::Gnu => writeln!(
                io.err,
                "{}: {}: no properly formatted checksum lines found",
                config.prog,
                quote(shown, Style::Shell)
            ),
            _ => io.err.write_all(
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
                io.emit(format!("{n} {what} {verb}\n").as_bytes())?;
            } else {
                io.say_line(format_args!("{}: WARNING: {n} {what} {verb}", config.prog));
            }
        }
    }
    let none_verified = config.ignore_missing && tally.matched == 0;
    if none_verified {
        // xxhsum says so on stdout, even with --status; GNU on stderr, without.
        if xxhsum {
            io.emit(&[shown, b": no file was verified\n"].concat())?;
        } else if !config.status {
            let quoted = match config.voice {
                Voice::Gnu => quote(shown, Style::Shell),
                _ => String::from_utf8_lossy(shown).into_owned(),
            };
            io.say_line(format_args!(
                "{}: {quoted}: no file was verified",
                config.prog
            ));
        }
    }
    Ok(tally.mismatched == 0
        && tally.unreadable == 0
        && !(config.strict && tally.misformatted > 0)
        && !none_verified
        && (xxhsum || tally.matched > 0))
}
