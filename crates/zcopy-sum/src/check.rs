//! Check files: every line read by the voice's rules, the file it names hashed
//! by the digests the line may hold, and the result reported.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;

use crate::config::{Config, Voice};
use crate::digest::Digest;
use crate::hash::{hash, open};
use crate::line;
use crate::output::{Halt, Streams};
use crate::report::{
    check_file_error, misformatted, report_line, summary, CheckState, Tally, Verdict,
};
use crate::{b3sum, gnu, xxhsum};

/// Verifies every line of the check file `name`; `Ok(false)` when it fails as the
/// voice's tool would fail it.
pub(crate) fn check(
    name: &OsStr,
    config: &Config,
    state: &mut CheckState,
    io: &mut Streams,
) -> Result<bool, Halt> {
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
            Err(e) => return check_file_error(&shown, &e, false, config, io),
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
            Err(e) => return check_file_error(&shown, &e, true, config, io),
        }
        if config.voice == Voice::B3sum && std::str::from_utf8(&buf).is_err() {
            let e = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            );
            return check_file_error(&shown, &e, true, config, io);
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
                misformatted(&shown, number, &why, config, state, io);
                continue;
            }
        };
        tally.well_formed += 1;
        entry.digests.sort_by_key(|d| !seen.contains(d));
        let verdict = verify(&entry, config, io);
        if let Verdict::Matched(digest) = verdict {
            if !seen.contains(&digest) {
                seen.push(digest);
            }
        }
        report_line(
            &entry, &verdict, &shown, number, config, state, &mut tally, io,
        )?;
    }
    summary(&shown, &tally, config, io)
}

/// Hashes the file a check line names and compares. A line whose hex fits several
/// digests is tried with each in turn (all in one pass for standard input, which
/// cannot be read twice).
fn verify(entry: &line::CheckLine, config: &Config, io: &mut Streams) -> Verdict {
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
        match hash(&file, batch, config, io) {
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
