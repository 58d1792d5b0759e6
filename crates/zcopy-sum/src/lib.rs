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
