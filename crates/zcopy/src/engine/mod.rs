//! The engines, one module per technique, each named after its syscall.
//!
//! Every engine is a small state machine driven by `State::pump`: it moves bytes
//! from the source to the sink until the source is done, its budget is spent, or a
//! non-blocking descriptor says `EAGAIN`. The position, the bytes moved and the
//! syscalls issued live in the shared `Cursor`, so progress is never lost: a
//! `WouldBlock` keeps whatever the engine holds in flight (a buffer, a pipe) for the
//! next call, an error leaves the count of bytes the sink accepted, and a fallback
//! hands the cursor to the next engine at the exact byte where this one stopped.

pub mod copy_file_range;
// Aligned buffers for O_DIRECT and read-write.
#[allow(unsafe_code)]
pub mod direct;
// Submission entries point the kernel at our descriptors and buffers, which the
// io-uring crate can only take as raw pointers and numbers.
#[allow(unsafe_code)]
pub mod io_uring;
// Maps the source file.
#[allow(unsafe_code)]
pub mod mmap;
// Hands buffers to the kernel that it reads after send returns, until it says done.
#[allow(unsafe_code)]
pub mod msg_zerocopy;
pub mod read_write;
pub mod reflink;
pub mod seek_data;
pub mod sendfile;
pub mod splice;

use std::os::fd::BorrowedFd;

use rustix::io::Errno;

use crate::choice::SkipReason;
use crate::choice::{Engine, FdKind};
use crate::report::{Syscall, Syscalls, ZeroCopy};
use crate::sys::Probe;
use crate::Error;

/// Where a transfer stands, shared by whichever engine is running.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// The next source offset, for positional sources (files, block devices).
    pub src_pos: Option<u64>,
    /// Bytes still to take from the source; `None` means until end of file.
    pub remaining: Option<u64>,
    /// The source reported end of file.
    pub src_eof: bool,
    /// Bytes the sink has accepted.
    pub moved: u64,
    /// Bytes the current call may still take from the source.
    pub budget: u64,
    /// Syscalls issued so far.
    pub syscalls: Syscalls,
    /// Zero-copy sends and their completions so far.
    pub zerocopy: ZeroCopy,
}

impl Cursor {
    /// How many bytes the next source call may ask for, at most `cap`.
    pub fn want(&self, cap: usize) -> usize {
        let limit = self.remaining.unwrap_or(u64::MAX).min(self.budget);
        usize::try_from(limit).unwrap_or(usize::MAX).min(cap)
    }

    /// Records `n` bytes taken from the source.
    pub fn took(&mut self, n: usize) {
        let n = n as u64;
        if let Some(pos) = &mut self.src_pos {
            *pos += n;
        }
        if let Some(rem) = &mut self.remaining {
            *rem -= n;
        }
        self.budget -= n;
    }

    /// Returns `n` bytes taken from a positional source, to be taken again.
    pub fn give_back(&mut self, n: usize) {
        let n = n as u64;
        if let Some(pos) = &mut self.src_pos {
            *pos -= n;
        }
        if let Some(rem) = &mut self.remaining {
            *rem += n;
        }
        self.budget = self.budget.saturating_add(n);
    }

    /// The source has nothing more to give this transfer.
    pub fn source_done(&self) -> bool {
        self.src_eof || self.remaining == Some(0)
    }

    /// Where an engine with nothing in flight stops before its next source call:
    /// `Done` at the end of the source, `Paused` when the budget is spent.
    pub fn stop(&self) -> Option<Step> {
        if self.source_done() {
            Some(Step::Done)
        } else if self.budget == 0 {
            Some(Step::Paused)
        } else {
            None
        }
    }

    /// Reads the source's next bytes into `buf` (`pread` at the cursor for a
    /// positional source, `read` otherwise) and counts the call: the bytes taken
    /// (0 at end of file, which is recorded), or the call and its errno.
    pub fn read_source(
        &mut self,
        src: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> Result<usize, (Syscall, Errno)> {
        let (call, result) = match self.src_pos {
            Some(pos) => (Syscall::Pread, rustix::io::pread(src, buf, pos)),
            None => (Syscall::Read, rustix::io::read(src, buf)),
        };
        match self.call(call, result) {
            Ok(0) => {
                self.src_eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.took(n);
                Ok(n)
            }
            Err(errno) => Err((call, errno)),
        }
    }

    /// Counts a syscall and passes its result through.
    pub fn call<T>(
        &mut self,
        call: Syscall,
        result: rustix::io::Result<T>,
    ) -> rustix::io::Result<T> {
        self.syscalls.count(call);
        result
    }
}

/// Which descriptor of a transfer was not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// The source had nothing to read: wait until it is readable.
    Source,
    /// The sink had no room: wait until it is writable (for msg-zerocopy, also
    /// until the socket's error queue holds completions, which `poll` reports).
    Sink,
    /// A splice straight between a pipe and the other end, which does not say
    /// which of them was not ready: wait until either is.
    Either,
}

/// How an engine's pump ended, when it did not fail.
#[derive(Debug)]
pub(crate) enum Step {
    /// The source is done and nothing is in flight.
    Done,
    /// The budget is spent and nothing is in flight.
    Paused,
    /// A non-blocking descriptor returned `EAGAIN`; call again when it is ready.
    WouldBlock(Side),
    /// The engine cannot work here, found on its first call; nothing is in flight.
    Fallback(SkipReason),
}

/// The running engine and what it holds between calls.
pub(crate) enum State {
    ReadWrite(read_write::ReadWrite),
    Mmap(mmap::Mmap),
    Sendfile(sendfile::Sendfile),
    Splice(splice::Splice),
    CopyFileRange(copy_file_range::CopyFileRange),
    // Boxed: the ring's handles make it ten times the size of the others.
    IoUring(Box<io_uring::IoUring>),
    MsgZerocopy(msg_zerocopy::MsgZerocopy),
}

impl State {
    /// Sets up `engine` for a `src` → `sink` transfer.
    pub fn new(
        engine: Engine,
        buffer: usize,
        pipe_size: usize,
        send_zc: bool,
        src: FdKind,
        sink: FdKind,
        cursor: &mut Cursor,
    ) -> Result<State, Error> {
        Ok(match engine {
            Engine::ReadWrite => State::ReadWrite(read_write::ReadWrite::new(buffer)),
            Engine::Mmap => State::Mmap(mmap::Mmap::default()),
            Engine::Sendfile => State::Sendfile(sendfile::Sendfile::default()),
            Engine::Splice => State::Splice(splice::Splice::new(src, sink, pipe_size, cursor)?),
            Engine::CopyFileRange => {
                State::CopyFileRange(copy_file_range::CopyFileRange::default())
            }
            Engine::IoUring => State::IoUring(Box::new(io_uring::IoUring::new(
                src,
                sink,
                if send_zc && sink == FdKind::Socket {
                    io_uring::Mode::SendZc { buffer }
                } else {
                    io_uring::Mode::Splice { pipe_size }
                },
            ))),
            Engine::MsgZerocopy => State::MsgZerocopy(msg_zerocopy::MsgZerocopy::new(buffer)),
        })
    }

    /// Whether the engine holds nothing in flight, so it can start another transfer.
    pub fn is_idle(&self) -> bool {
        match self {
            State::ReadWrite(e) => e.is_idle(),
            State::Mmap(e) => e.is_idle(),
            State::Splice(e) => e.is_idle(),
            State::IoUring(e) => e.is_idle(),
            State::MsgZerocopy(e) => e.is_idle(),
            State::Sendfile(_) | State::CopyFileRange(_) => true,
        }
    }

    /// Moves bytes until the source is done, the budget is spent, the descriptors
    /// would block, or the engine asks to fall back.
    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        match self {
            State::ReadWrite(e) => e.pump(src, sink, cur),
            State::Mmap(e) => e.pump(src, sink, cur),
            State::Sendfile(e) => e.pump(src, sink, cur),
            State::Splice(e) => e.pump(src, sink, cur),
            State::CopyFileRange(e) => e.pump(src, sink, cur),
            State::IoUring(e) => e.pump(src, sink, cur),
            State::MsgZerocopy(e) => e.pump(src, sink, cur),
        }
    }
}

/// What to do with an errno from a data-moving syscall.
pub(crate) enum Verdict {
    /// Retry the same call (`EINTR`).
    Retry,
    /// Report `WouldBlock` (`EAGAIN`) of the side the call was on.
    WouldBlock,
    /// This engine cannot work here: the next one takes over at the cursor's byte.
    Fallback(SkipReason),
    /// A real error.
    Fail(Error),
}

impl Verdict {
    /// How the engine's pump ends on this verdict for a call on `side`: `None`
    /// retries the call.
    pub fn end(self, side: Side) -> Option<Result<Step, Error>> {
        match self {
            Verdict::Retry => None,
            Verdict::WouldBlock => Some(Ok(Step::WouldBlock(side))),
            Verdict::Fallback(reason) => Some(Ok(Step::Fallback(reason))),
            Verdict::Fail(e) => Some(Err(e)),
        }
    }
}

/// The one errno triage every engine uses, after Rust std's `kernel_copy.rs`.
///
/// `started` says whether the engine has already moved bytes: most "cannot work
/// here" errnos are trusted only before the first byte, since a file system that
/// copied some bytes and then refuses is failing, not unsupported.
pub(crate) fn triage(engine: Engine, call: Syscall, errno: Errno, started: bool) -> Verdict {
    let in_kernel = matches!(
        engine,
        Engine::Sendfile | Engine::Splice | Engine::CopyFileRange | Engine::IoUring
    );
    match errno {
        Errno::INTR => Verdict::Retry,
        Errno::AGAIN => Verdict::WouldBlock,
        // ENOSYS: a kernel without the syscall (copy_file_range before 4.5); EPERM:
        // a seccomp filter (Docker's older profiles), or an immutable or append-only
        // file, which a probe with invalid descriptors tells apart before caching.
        Errno::NOSYS | Errno::PERM if in_kernel && !started => {
            let probe = match call {
                Syscall::CopyFileRange => Some(Probe::CopyFileRange),
                Syscall::Sendfile => Some(Probe::Sendfile),
                Syscall::Splice => Some(Probe::Splice),
                _ => None,
            };
            if probe.is_some_and(crate::sys::syscall_is_missing) {
                engine.mark_unavailable();
                Verdict::Fallback(SkipReason::Refused {
                    errno,
                    cached: true,
                })
            } else {
                Verdict::Fallback(SkipReason::Refused {
                    errno,
                    cached: false,
                })
            }
        }
        // EXDEV: copy_file_range across file systems (always before Linux 5.3, and
        // since 5.19 between file systems of different types).
        // EINVAL: an end without splice or copy support (a terminal, procfs, some FUSE
        // and NFS files) or a sink opened O_APPEND.
        // EOPNOTSUPP: some FUSE and NFS mounts, and RHEL 7's copy_file_range.
        // EBADF: copy_file_range into an O_APPEND sink on older kernels.
        Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::BADF if in_kernel && !started => {
            Verdict::Fallback(SkipReason::Refused {
                errno,
                cached: false,
            })
        }
        // EOVERFLOW: offset plus length past what the call's types or the file system
        // allow; the next engine continues at the exact byte, even mid-transfer.
        Errno::OVERFLOW if in_kernel => Verdict::Fallback(SkipReason::Refused {
            errno,
            cached: false,
        }),
        // ENODEV, EACCES, EINVAL from mmap: a file system that cannot map this file
        // (procfs, sysfs attributes, some FUSE file systems).
        Errno::NODEV | Errno::ACCESS | Errno::INVAL if call == Syscall::Mmap && !started => {
            Verdict::Fallback(SkipReason::Refused {
                errno,
                cached: false,
            })
        }
        _ => Verdict::Fail(Error::Io {
            engine,
            syscall: call.name(),
            cause: errno.into(),
        }),
    }
}

/// A write that returned 0 for a non-empty buffer: the sink will take no more.
pub(crate) fn sink_closed(engine: Engine) -> Error {
    Error::SinkClosed { engine }
}
