//! What an async copy did, or why it failed: the path taken and the bytes moved.

use std::fmt;
use std::io;

#[cfg(doc)]
use crate::Options;
use crate::{Engine, FdKind, Report, Side};

/// Why `tokio::io::copy` moved the bytes instead of an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// This side has no descriptor the engines can drive.
    NoDescriptor {
        /// Which end.
        side: Side,
        /// What it is, from [`End::Other`](super::End::Other).
        what: &'static str,
    },
    /// This side is a [`File`](::tokio::fs::File) but not a regular file: a pipe or
    /// a device would block a runtime thread, where tokio reads it on its blocking
    /// pool.
    NotRegularFile {
        /// Which end.
        side: Side,
        /// What it is.
        kind: FdKind,
    },
    /// The engines refused the pair before the first byte (an [`Options::engine`]
    /// that cannot move these kinds, a kernel that refused them all); their words.
    Refused(String),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::NoDescriptor { side, what } => {
                write!(f, "the {} is {what}, with no descriptor", side_name(*side))
            }
            Fallback::NotRegularFile { side, kind } => {
                write!(f, "the {} is {kind}, not a regular file", side_name(*side))
            }
            Fallback::Refused(words) => write!(f, "the engines refused: {words}"),
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Sink => "sink",
        Side::Either => "source or sink",
    }
}

/// Which path moved the bytes.
#[derive(Clone, Debug)]
#[non_exhaustive]
// One per copy, returned once: a box would cost more than the bytes it saves.
#[allow(clippy::large_enum_variant)]
pub enum Path {
    /// The engines, with their report: the engine that ran ([`Report::engine`]),
    /// those skipped and why, the syscalls by kind.
    Engine(Report),
    /// `tokio::io::copy`, and why.
    Fallback(Fallback),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Engine(report) => write!(f, "{}", report.engine),
            Path::Fallback(why) => write!(f, "tokio::io::copy ({why})"),
        }
    }
}

/// What [`copy`](super::copy) did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// Bytes the sink accepted.
    pub bytes: u64,
    /// The engine, or the fallback and why.
    pub path: Path,
    /// Times the task waited for the source to become readable.
    pub source_waits: u64,
    /// Times the task waited for the sink to become writable (a slow reader).
    pub sink_waits: u64,
}

impl Outcome {
    /// The engine that moved the bytes, or `None` for the fallback.
    pub fn engine(&self) -> Option<Engine> {
        match &self.path {
            Path::Engine(report) => Some(report.engine),
            Path::Fallback(_) => None,
        }
    }
}

/// Why [`copy`](super::copy) failed, and how far it got.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An engine failed (a reset peer, a file that shrank) after `moved` bytes.
    #[error("{error} (after {moved} bytes)")]
    Engine {
        /// Bytes the sink had accepted.
        moved: u64,
        /// What failed.
        error: crate::Error,
    },
    /// `tokio::io::copy`, the fallback, failed; it does not say after how many bytes.
    #[error("tokio::io::copy ({why}): {cause}")]
    Fallback {
        /// Why the fallback ran.
        why: Fallback,
        /// What failed.
        cause: io::Error,
    },
    /// A [`Options::len`] was promised and the fallback's source ended before it.
    #[error("tokio::io::copy ({why}): the source ended after {got} of {expected} bytes")]
    EndedEarly {
        /// Why the fallback ran.
        why: Fallback,
        /// Bytes moved.
        got: u64,
        /// Bytes promised.
        expected: u64,
    },
    /// Setting up failed: examining or seeking a file, or an [`Options::offset`]
    /// given (seek the file instead).
    #[error("{call}: {cause}")]
    Setup {
        /// What was being done.
        call: &'static str,
        /// What failed.
        cause: io::Error,
    },
}

impl Error {
    /// The underlying I/O error kind (`ConnectionReset`, `BrokenPipe` for a peer gone).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Engine { error, .. } => error.kind(),
            Error::Fallback { cause, .. } | Error::Setup { cause, .. } => cause.kind(),
            Error::EndedEarly { .. } => io::ErrorKind::UnexpectedEof,
        }
    }

    /// Bytes the sink accepted before the failure, where known.
    pub fn moved(&self) -> Option<u64> {
        match self {
            Error::Engine { moved, .. } => Some(*moved),
            Error::EndedEarly { got, .. } => Some(*got),
            Error::Fallback { .. } | Error::Setup { .. } => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}
