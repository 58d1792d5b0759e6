//! Checksums of files as xxhsum, b3sum and GNU coreutils' `*sum` tools compute,
//! print and check them, read through zcopy's scan engines (read, pread, mmap or
//! direct I/O), so that each tool reads what the other writes.
//!
//! Lines are GNU style, `<hex>  <name>`, except for the digests whose hex length
//! does not name them to the peer tool (XXH3, which xxhsum prints tagged, and
//! CRC32C): those are BSD style, `XXH3 (<name>) = <hex>`, as is everything with
//! `tag`. Checking reads both, tells the digest from the tag or from the length
//! of the hex (with [`Config::untagged_as`], untagged lines are read as that
//! digest), and follows GNU `sha256sum -c` in its output and its verdict.
//!
//! Under a peer's [`Voice`] ([`Voice::Xxhsum`], [`Voice::B3sum`],
//! [`Voice::Gnu`]), a run *is* that tool: its words, its check-line rules
//! ([`xxhsum`], [`b3sum`], [`gnu`]) and its verdict. A front end reads its flags
//! into a [`Config`]; [`run`] sees only the config.
//!
//! No command-line types and no exit codes live here: [`run`] writes lines and
//! diagnostics to the streams it is given and says whether every file passed.
//! A file named `-` is standard input, which a run reads itself.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod b3sum;
mod check;
mod config;
mod digest;
pub mod gnu;
mod hash;
pub mod line;
mod output;
mod print;
mod report;
pub mod xxhsum;

use std::io::Write;

pub use config::{Calibration, Config, Voice};
pub use digest::{hex, Digest, Hasher, Xof};

use output::{Halt, Streams};

/// Why a run stopped before its verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing to the output failed (a reader that went away: `BrokenPipe`).
    #[error("writing the output")]
    Output(#[source] std::io::Error),
}

/// Hashes or checks every file of `config`, writing lines to `out` and, in the
/// voice's words, why a file failed to `err`. `Ok(false)` when any failed (each
/// said on `err`), as the voice's tool would fail it.
pub fn run(mut config: Config, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool, Error> {
    if config.files.is_empty() {
        config.files.push("-".into());
    }
    let mut io = Streams { out, err };
    match run_files(&config, &mut io) {
        Ok(passed) => Ok(passed),
        Err(Halt::Abandoned) => Ok(false),
        Err(Halt::Output(e)) => Err(Error::Output(e)),
    }
}

fn run_files(config: &Config, io: &mut Streams) -> Result<bool, Halt> {
    let mut failed = false;
    let mut state = report::CheckState::default();
    for name in &config.files {
        let ok = if config.check {
            check::check(name, config, &mut state, io)?
        } else if config.file_list {
            print::hash_listed(name, config, io)?
        } else {
            print::print_digest(name, config, io)?
        };
        failed |= !ok;
    }
    if config.check && config.voice == Voice::B3sum && state.b3sum_failures > 0 {
        failed = true;
        let n = state.b3sum_failures;
        let s = if n == 1 { "" } else { "s" };
        io.say_line(format_args!(
            "b3sum: WARNING: {n} computed checksum{s} did NOT match"
        ));
    }
    io.out.flush().map_err(Halt::Output)?;
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HI_SHA256: &str = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";

    /// What a run wrote to its two streams, and its verdict.
    fn run_in(config: Config) -> (Result<bool, Error>, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let verdict = run(config, &mut out, &mut err);
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap();
        (verdict, text(out), text(err))
    }

    fn gnu(files: &[&std::path::Path]) -> Config {
        let mut config = Config::new(Voice::Gnu, "sha256sum", Digest::Sha256);
        config.accepts = vec![Digest::Sha256];
        config.files = files.iter().map(|f| f.as_os_str().to_owned()).collect();
        config
    }

    #[test]
    fn lines_and_verdicts_in_the_voices_words() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "hi\n").unwrap();
        let (verdict, out, err) = run_in(gnu(&[&f]));
        assert!(verdict.unwrap());
        assert_eq!(out, format!("{HI_SHA256}  {}\n", f.display()));
        assert_eq!(err, "");

        let mut zcopy = Config::new(Voice::Zcopy, "zcopy", Digest::Xxh3);
        zcopy.files = vec![f.clone().into()];
        let (_, out, _) = run_in(zcopy);
        assert_eq!(out, format!("XXH3 ({}) = b34d1a3ab2bece70\n", f.display()));

        let sums = dir.path().join("sums");
        let zeros = "0".repeat(64);
        let name = f.display();
        std::fs::write(
            &sums,
            format!("{HI_SHA256}  {name}\n{zeros}  {name}\nnonsense\n"),
        )
        .unwrap();
        let mut check = gnu(&[&sums]);
        check.check = true;
        let (verdict, out, err) = run_in(check);
        assert!(!verdict.unwrap());
        assert_eq!(out, format!("{name}: OK\n{name}: FAILED\n"));
        assert_eq!(
            err,
            "sha256sum: WARNING: 1 line is improperly formatted\n\
             sha256sum: WARNING: 1 computed checksum did NOT match\n"
        );
    }

    #[test]
    fn a_failed_write_stops_the_run_with_its_cause() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "hi\n").unwrap();
        match run(gnu(&[&f]), &mut Closed, &mut Vec::new()) {
            Err(Error::Output(e)) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe),
            other => panic!("{other:?}"),
        }
    }
}
