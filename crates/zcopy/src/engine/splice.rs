//! `splice(2)`: moves pages between a descriptor and a pipe inside the kernel.
//!
//! Applies to any source and sink that support splicing (files, sockets, pipes,
//! `/dev/null`); unlike sendfile the source may be a socket, which makes this the
//! zero-copy engine for receiving (socket → file) and echoing (socket → socket).
//! When neither end is a pipe, the bytes go through a private pipe sized with
//! `F_SETPIPE_SZ`: splice source → pipe, then pipe → sink, 2 syscalls per chunk and
//! no copy through user space. When one end is a pipe already, one splice per chunk.
//!
//! Pitfalls: the private pipe is drained completely before it is refilled, so it
//! never blocks and bytes in it survive a `WouldBlock` on the sink; a pipe larger
//! than `/proc/sys/fs/pipe-max-size` is refused to unprivileged users (`EPERM`), so
//! the engine keeps the size it got; `SPLICE_F_MORE` is set while more data follows,
//! the splice counterpart of `MSG_MORE`.
//!
//! # References
//!  - [splice(2)](https://man7.org/linux/man-pages/man2/splice.2.html),
//!    [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html) for `F_SETPIPE_SZ`

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::pipe::{PipeFlags, SpliceFlags};

use super::{sink_closed, triage, Cursor, Side, Step, Verdict};
use crate::choice::{Engine, FdKind};
use crate::report::Syscall;
use crate::Error;

/// The private pipe, when neither end is a pipe, and what sits in it.
pub(crate) struct Splice {
    pipe: Option<Pipe>,
    /// How many bytes one splice asks for.
    chunk: usize,
    /// Whether the sink has accepted a byte from this engine (no fallback after).
    started: bool,
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe, taken from the source, not yet given to the sink.
    held: usize,
}

impl Splice {
    pub fn new(
        src: FdKind,
        sink: FdKind,
        pipe_size: usize,
        cur: &mut Cursor,
    ) -> Result<Splice, Error> {
        if src == FdKind::Pipe || sink == FdKind::Pipe {
            return Ok(Splice {
                pipe: None,
                chunk: pipe_size,
                started: false,
            });
        }
        let fail = |errno: Errno| Error::Io {
            engine: Engine::Splice,
            syscall: "pipe2",
            cause: errno.into(),
        };
        let (read, write) = cur
            .call(Syscall::Pipe, rustix::pipe::pipe_with(PipeFlags::CLOEXEC))
            .map_err(fail)?;
        // EPERM past pipe-max-size for unprivileged users: keep the default size.
        let got = cur.call(
            Syscall::Pipe,
            rustix::pipe::fcntl_setpipe_size(&write, pipe_size),
        );
        let chunk = match got {
            Ok(size) => size,
            Err(_) => rustix::pipe::fcntl_getpipe_size(&write).map_err(fail)?,
        };
        Ok(Splice {
            pipe: Some(Pipe {
                read,
                write,
                held: 0,
            }),
            chunk,
            started: false,
        })
    }

    /// Whether the private pipe (if any) is empty.
    pub fn is_idle(&self) -> bool {
        self.pipe.as_ref().is_none_or(|p| p.held == 0)
    }

    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        loop {
            let held = self.pipe.as_ref().map_or(0, |p| p.held);
            if held > 0 {
                let pipe = self.pipe.as_mut().expect("bytes are held only in a pipe");
                let flags = more_follows(cur, 0);
                let result = rustix::pipe::splice(&pipe.read, None, sink, None, held, flags);
                match cur.call(Syscall::Splice, result) {
                    Ok(0) => return Err(sink_closed(Engine::Splice)),
                    Ok(n) => {
                        self.started = true;
                        pipe.held -= n;
                        cur.moved += n as u64;
                    }
                    Err(errno) => {
                        match triage(Engine::Splice, Syscall::Splice, errno, self.started) {
                            Verdict::Retry => {}
                            // The bytes in the pipe go back to a positional source, and the
                            // next engine starts from them; a stream cannot take them back.
                            Verdict::Fallback(reason) if cur.src_pos.is_some() => {
                                cur.give_back(held);
                                pipe.held = 0;
                                return Ok(Step::Fallback(reason));
                            }
                            Verdict::Fallback(_) => {
                                return Err(Error::Io {
                                    engine: Engine::Splice,
                                    syscall: "splice",
                                    cause: errno.into(),
                                })
                            }
                            other => {
                                if let Some(end) = other.end(Side::Sink) {
                                    return end;
                                }
                            }
                        }
                    }
                }
                continue;
            }
            if let Some(stop) = cur.stop() {
                return Ok(stop);
            }
            let want = cur.want(self.chunk);
            let mut pos = cur.src_pos;
            let (to, flags): (BorrowedFd<'_>, _) = match &self.pipe {
                Some(pipe) => (pipe.write.as_fd(), SpliceFlags::MOVE),
                None => (sink, SpliceFlags::MOVE | more_follows(cur, want)),
            };
            let result = rustix::pipe::splice(src, pos.as_mut(), to, None, want, flags);
            match cur.call(Syscall::Splice, result) {
                Ok(0) => cur.src_eof = true,
                Ok(n) => {
                    cur.took(n);
                    match &mut self.pipe {
                        Some(pipe) => pipe.held = n,
                        None => {
                            self.started = true;
                            cur.moved += n as u64;
                        }
                    }
                }
                Err(errno) => {
                    // Into our pipe only the source can block; a direct splice
                    // between a pipe and the other end can block on either.
                    let side = if self.pipe.is_some() {
                        Side::Source
                    } else {
                        Side::Either
                    };
                    if let Some(end) =
                        triage(Engine::Splice, Syscall::Splice, errno, self.started).end(side)
                    {
                        return end;
                    }
                }
            }
        }
    }
}

/// `SPLICE_F_MORE` when the transfer's length is known and more than the `n` bytes
/// about to go remain; never for streams of unknown length, which must not stall.
fn more_follows(cur: &Cursor, n: usize) -> SpliceFlags {
    if cur.remaining.is_some_and(|rem| rem > n as u64) {
        SpliceFlags::MORE
    } else {
        SpliceFlags::empty()
    }
}
