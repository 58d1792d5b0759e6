//! Where a run writes: its lines to one stream, its diagnostics, in the voice's
//! words, to another; and how a run stops early.

use std::io::Write;

/// The two streams of a run.
pub(crate) struct Streams<'a> {
    /// Digest lines, check results, and what xxhsum says on stdout.
    pub out: &'a mut dyn Write,
    /// Diagnostics: a failed write here has nowhere to be reported, and is dropped.
    pub err: &'a mut dyn Write,
}

/// Why a run stops before its files are done.
pub(crate) enum Halt {
    /// Writing a line failed.
    Output(std::io::Error),
    /// b3sum stops at a check file it cannot read, as an error out of its main,
    /// already reported.
    Abandoned,
}

impl Streams<'_> {
    /// Writes `bytes` to the output.
    pub fn emit(&mut self, bytes: &[u8]) -> Result<(), Halt> {
        self.out.write_all(bytes).map_err(Halt::Output)
    }

    /// Writes `bytes` to the diagnostics.
    pub fn say(&mut self, bytes: &[u8]) {
        let _ = self.err.write_all(bytes);
    }

    /// Writes one formatted line to the diagnostics.
    pub fn say_line(&mut self, line: std::fmt::Arguments) {
        let _ = writeln!(self.err, "{line}");
    }
}

/// The strerror words of `e`, without Rust's ` (os error N)`.
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let words = e.to_string();
    match words.find(" (os error") {
        Some(end) => words[..end].to_string(),
        None => words,
    }
}
