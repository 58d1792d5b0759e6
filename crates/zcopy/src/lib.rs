//! zcopy: move bytes between files, pipes and sockets on Linux with the least
//! copying the kernel allows, and measure what each technique costs.
//!
//! Each technique is an [`Engine`], implemented in one module of [`engine`] named
//! after its syscall:
//!
//! | engine | syscalls per chunk | CPU copies | source → sink |
//! |---|---|---|---|
//! | [`Engine::ReadWrite`] | `read` + `write` | 2 | anything → anything |
//! | [`Engine::Mmap`] | `write` from a mapping | 1 | file → anything |
//! | [`Engine::Sendfile`] | `sendfile` | 0 through user space | file → anything |
//! | [`Engine::Splice`] | `splice` ×2 through a pipe | 0 through user space | anything → anything |
//! | [`Engine::CopyFileRange`] | `copy_file_range` | 0 through user space | file → file |
//! | [`Engine::IoUring`] | 1 `io_uring_enter` per 8 pipefuls of `IORING_OP_SPLICE` | 0 through user space | anything → anything |
//! | [`Engine::IoUring`] with [`Options::send_zc`] | `READ_FIXED` + `SEND_ZC` ×8 per `io_uring_enter` | 1 (the read); the send as msg-zerocopy's | anything → socket |
//! | [`Engine::MsgZerocopy`] | `pread` + `send(MSG_ZEROCOPY)`, `recvmsg(MSG_ERRQUEUE)` for completions | 1 (the read); the send 0 on a NIC with scatter-gather, 1 on loopback | anything → TCP socket |
//!
//! `auto` ([`EngineChoice::Auto`]) never picks the last two. On loopback io-uring
//! moved a page-cached file into a socket at sendfile's rate (0.98×, median of 10
//! runs) with 2.6× its CPU (its splices run on the kernel's io-wq threads), and
//! msg-zerocopy's sends, like io-uring's `SEND_ZC` ([`Options::send_zc`]), are
//! copied by the kernel anyway, as their completions say ([`Report::zerocopy`]). They
//! pay off elsewhere: io-uring where syscalls per operation dominate, msg-zerocopy on
//! a NIC with scatter-gather DMA for sends of tens of kilobytes and more.
//!
//! A [`Transfer`] runs one engine, or the `auto` chain, and returns a [`Report`]:
//! bytes, time, syscalls by kind and the thread's resource usage. Under `auto`, a
//! file sent into a socket or a pipe tries first the engine that this machine's
//! calibration ([`profile`]) measured fastest into that kind of [`Destination`]
//! (a TCP peer on this host or across a network, a Unix socket, a pipe), and the
//! report's [`Preference`] says which and why.
//!
//! [`copy()`] is `std::io::copy` for descriptors: the fastest path the kernel
//! offers between them, and a report of the path taken.
//!
//! [`copy_file()`] copies a whole file the way `cp` does: a clone where the file
//! system can, else the engines over the data segments only (holes kept), made
//! unnamed and linked into place when complete; [`copy_contents`] is its middle,
//! for callers that place files themselves. Both say what ran and what was skipped.
//!
//! [`Drive`](drive::Drive) runs a transfer the way a command does: in steps that a
//! progress bar can follow, under a shared [`Limiter`](limit::Limiter)'s rate, and
//! ended when nothing has moved for a while.
//!
//! [`walk()`](walk::walk) walks a tree depth first without following symlinks,
//! naming each entry by its bytes relative to the root, with a hook to filter
//! entries out; `zcopy send` and `zcopy cp -r` list directories with it.
//!
//! Beside the transfer engines, [`engine::reflink`] clones a file copy-on-write
//! (`FICLONE`), [`engine::seek_data`] finds the data of sparse files, and [`scan()`]
//! reads a file into user space for a checksum by `read`, by `pread` on two threads
//! into a ring of page-aligned chunks, by `mmap` (surviving the SIGBUS of a file that
//! shrinks) or by `O_DIRECT` ([`engine::direct`]).
//!
//! ```
//! use std::io::{Read, Write};
//! use zcopy::{EngineChoice, Engine, Options, Transfer, Status};
//!
//! let mut src = tempfile::tempfile()?;
//! src.write_all(b"hello, zero copy")?;
//! let (mut theirs, ours) = std::os::unix::net::UnixStream::pair()?;
//! let options = Options::default().engine(EngineChoice::Only(Engine::Sendfile));
//! let mut transfer = Transfer::new(&src, &ours, options)?;
//! assert_eq!(transfer.run()?, Status::Done);
//! let report = transfer.report();
//! assert_eq!(report.syscalls.get(zcopy::Syscall::Sendfile), 2); // the data, then end of file
//! drop(transfer);
//! drop(ours);
//! let mut got = String::new();
//! theirs.read_to_string(&mut got)?;
//! assert_eq!(got, "hello, zero copy");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `tokio` feature, `zcopy::tokio::copy` is `tokio::io::copy` for
//! tokio files and sockets by these engines: a file into a socket by sendfile,
//! socket to socket by splice, driven by tokio's readiness, falling back to
//! `tokio::io::copy` for what they cannot move, and saying which path ran.
//!
//! The engines rely on `SIGPIPE` being ignored, as the Rust runtime arranges for
//! every binary: a sink that closes early is then an `EPIPE` error, not a signal.
#![deny(
    missing_docs,
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod choice;
mod copy;
pub mod copy_file;
pub mod drive;
pub mod engine;
pub mod limit;
pub mod place;
pub mod profile;
pub mod quote;
pub mod report;
// Maps files and reads them in place, behind a SIGBUS guard.
#[allow(unsafe_code)]
pub mod scan;
pub mod size;
// The calls rustix does not wrap.
#[allow(unsafe_code)]
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod transfer;
pub mod walk;
// XXH3's loop compiled per SIMD level, called after a run-time CPU check.
#[allow(unsafe_code)]
pub mod xxh3;

pub use choice::{Basis, Destination, Engine, EngineChoice, FdKind, Plan, Preference};
pub use choice::{Skip, SkipReason};
pub use copy::copy;
pub use copy_file::{copy_contents, copy_file, Copied, CopyOptions, Method, Reflink, Sparse};
pub use engine::Side;
pub use report::{Report, Rusage, Syscall, Syscalls, ZeroCopy};
pub use scan::{scan, ScanChoice, ScanEngine, ScanReport};
pub use transfer::{Options, Status, Transfer, TransferState};

/// Why a transfer failed. The bytes already moved stay in [`Transfer::moved`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A syscall failed while moving bytes.
    #[error("{syscall}: {cause}")]
    Io {
        /// The engine that issued the call.
        engine: Engine,
        /// The syscall's name.
        syscall: &'static str,
        /// What the kernel said: in the message, not chained as a source, so a
        /// report of the whole chain says it once.
        cause: std::io::Error,
    },
    /// The source ended before the promised length: the file shrank while it was
    /// being sent (or mapped).
    #[error("the source file shrank to {size} bytes during the transfer")]
    SourceShrank {
        /// Where the source ended.
        size: u64,
    },
    /// A stream source (a socket, a pipe) ended before the promised length: the
    /// peer closed early.
    #[error("the peer closed after {got} of {expected} bytes")]
    EndedEarly {
        /// Bytes received.
        got: u64,
        /// Bytes promised.
        expected: u64,
    },
    /// The sink accepted zero bytes of a non-empty write.
    #[error("{engine}: the sink accepted no more bytes")]
    SinkClosed {
        /// The engine that was writing.
        engine: Engine,
    },
    /// A scan's read failed.
    #[error("{syscall}: {cause}")]
    ScanIo {
        /// The syscall's name.
        syscall: &'static str,
        /// What the kernel said (in the message, as for [`Error::Io`]).
        cause: std::io::Error,
    },
    /// The transfer could not be set up: a directory, an engine that does not
    /// apply, a descriptor that cannot be examined.
    #[error("{0}")]
    Setup(std::io::Error),
    /// A clone that was required ([`Reflink::Always`]) failed.
    #[error("cannot clone: {0}")]
    Clone(std::io::Error),
}

impl Error {
    /// The underlying I/O error kind, for callers that sort errors (a reset peer, say).
    pub fn kind(&self) -> std::io::ErrorKind {
        match self {
            Error::Io { cause, .. }
            | Error::ScanIo { cause, .. }
            | Error::Setup(cause)
            | Error::Clone(cause) => cause.kind(),
            Error::SourceShrank { .. } | Error::EndedEarly { .. } => {
                std::io::ErrorKind::UnexpectedEof
            }
            Error::SinkClosed { .. } => std::io::ErrorKind::WriteZero,
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(e.kind(), e)
    }
}
