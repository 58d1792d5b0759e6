//! `io_uring`: splice through a pipe as `IORING_OP_SPLICE` operations, several to one
//! `io_uring_enter(2)`.
//!
//! Applies to any source and sink that `splice(2)` accepts: file → socket, pipe or
//! file, and socket → file for receiving. The bytes take the same path as with the
//! splice engine (no copy through user space: pages go from the page cache into the
//! pipe and from the pipe to the sink), but instead of two syscalls per pipeful, one
//! `io_uring_enter` submits a chain of up to [`PAIRS`] pipefuls, source → pipe then
//! pipe → sink, linked (`IOSQE_IO_LINK`) so that they run in order, and waits for all
//! of them. When one end is a pipe already, the chain is of single splices.
//!
//! Pitfalls: a splice that moves fewer bytes than asked breaks the chain, and the
//! kernel completes the rest with `ECANCELED`; the bytes left in the pipe are sent
//! first in the next round, as the splice engine does. Every round waits for all of
//! its operations, so nothing is in flight when `pump` returns, whatever the
//! outcome: descriptors and the pipe outlive every operation that names them. The
//! kernel runs splices on its io-wq worker threads, not on the caller's: the
//! thread's `getrusage` misses their CPU time (the process's shows it). A kernel
//! may refuse `io_uring_setup` (`kernel.io_uring_disabled`, Linux 6.6, or a seccomp
//! filter: `EPERM`; not built in: `ENOSYS`) or lack the opcode (Linux 5.7): the
//! engine then falls back before its first byte, with the reason. On loopback this
//! saves syscalls, not copies, and costs more CPU than the splice engine: see the
//! crate's engine table.
//!
//! With [`Options::send_zc`](crate::Options::send_zc) and a socket for sink, the
//! engine reads the source into [`SLOTS`] registered buffers (`IORING_OP_READ_FIXED`,
//! one CPU copy from the page cache) and sends each with `IORING_OP_SEND_ZC` (Linux
//! 6.0), linked after its read: the send is zero-copy on a NIC with scatter-gather.
//! Each send completes twice: its result, then a notification once the kernel has
//! released the buffer, flagged `IORING_NOTIF_USAGE_ZC_COPIED` (Linux 6.2) when it
//! copied after all, as it does on loopback; a buffer is read into again only after
//! its notification, and an engine dropped before every notification has come
//! leaks its buffers rather than free pages the kernel may still send.
//!
//! # References
//!  - [io_uring_setup(2)](https://man7.org/linux/man-pages/man2/io_uring_setup.2.html),
//!    [io_uring_enter(2)](https://man7.org/linux/man-pages/man2/io_uring_enter.2.html)
//!    (`IORING_OP_SPLICE`, `IOSQE_IO_LINK`),
//!    [io_uring_register(2)](https://man7.org/linux/man-pages/man2/io_uring_register.2.html)
//!    (`IORING_REGISTER_PROBE`), [splice(2)](https://man7.org/linux/man-pages/man2/splice.2.html)

use std::cell::RefCell;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use io_uring::{opcode, squeue, types, IoUring as Ring};
use rustix::io::Errno;
use rustix::pipe::SpliceFlags;

use super::direct::AlignedBuf;
use super::{Cursor, Step};
use crate::choice::{Engine, FdKind};
use crate::report::Syscall;
use crate::Error;

mod complete;
mod setup;

/// Pipefuls submitted to one `io_uring_enter`.
pub const PAIRS: usize = 8;
/// Registered buffers in `SEND_ZC` mode.
pub const SLOTS: usize = 8;
/// Submission queue entries: a round's chain and the drain of a held pipe.
const ENTRIES: u32 = 2 * PAIRS as u32 + 1;
/// `IORING_SEND_ZC_REPORT_USAGE` (`linux/io_uring.h`, Linux 6.2): ask the
/// notification to say whether the kernel copied.
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: set in a notification's result when it did.
const NOTIF_USAGE_ZC_COPIED: i32 = i32::MIN;

thread_local! {
    /// A ring left by this thread's last transfer, so that a run of small transfers
    /// (a server's) does not pay `io_uring_setup` and the opcode probe each time.
    static SPARE: RefCell<Option<Ring>> = const { RefCell::new(None) };
}

/// How the engine moves the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Splices through a pipe of this size.
    Splice { pipe_size: usize },
    /// Reads into registered buffers of this size and sends them with `SEND_ZC`.
    SendZc { buffer: usize },
}

/// The ring, the private pipe when neither end is a pipe, and what sits in it.
pub(crate) struct IoUring {
    ring: Option<Ring>,
    mode: Mode,
    /// Whether neither end is a pipe, so the bytes need one of ours.
    needs_pipe: bool,
    pipe: Option<Pipe>,
    /// The registered buffers in `SEND_ZC` mode.
    zc: Option<Registered>,
    /// `MSG_DONTWAIT` for `SEND_ZC` into a non-blocking socket: io_uring would
    /// otherwise wait for room itself, where the caller expects `WouldBlock`.
    dontwait: i32,
    /// How many bytes one splice asks for.
    chunk: usize,
    /// Whether the sink has accepted a byte from this engine (no fallback after).
    started: bool,
    /// This round's operations and their results, kept to reuse the allocations.
    ops: Vec<Op>,
    /// Each operation's result and completion flags.
    results: Vec<Option<(i32, u32)>>,
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe, taken from the source, not yet given to the sink.
    held: usize,
}

/// `SEND_ZC` mode's buffers, registered with the ring (index = slot).
struct Registered {
    bufs: Vec<AlignedBuf>,
    /// Per buffer, the bytes read into it and not yet sent.
    pending: Vec<Range<usize>>,
    /// The slot whose bytes go next.
    current: usize,
    /// Sends the kernel may still read a buffer for.
    sends: Vec<SendZc>,
    /// The tag of the next send (0 is never used: it marks other operations).
    next_tag: u64,
}

/// One `SEND_ZC` and what its completions have said so far. A send whose result
/// has `IORING_CQE_F_MORE` keeps its buffer until its notification; one without
/// it (failed, or cancelled: it never ran) releases the buffer at once, and a
/// notification that still comes for it (the kernel posts them for cancelled
/// sends too) is ignored.
struct SendZc {
    tag: u64,
    slot: usize,
    /// `Some(true)`: the result came with `F_MORE`.
    more: Option<bool>,
    /// The notification came; `copied` is what it said.
    notified: bool,
    copied: bool,
}

/// One operation of a round.
#[derive(Clone, Copy)]
enum Op {
    /// Source → our pipe, this many bytes, from this source offset (-1: a stream).
    In { len: usize, offset: i64 },
    /// Our pipe → sink.
    Out { len: usize },
    /// Source → sink, when one of them is a pipe.
    Direct { len: usize, offset: i64 },
    /// Source → a registered buffer (`READ_FIXED`), from this offset (`u64::MAX`:
    /// a stream's own position).
    Read {
        slot: usize,
        len: usize,
        offset: u64,
    },
    /// A registered buffer's bytes `start..start + len` → the socket (`SEND_ZC`).
    Send {
        slot: usize,
        start: usize,
        len: usize,
    },
}

/// A completion's `user_data`: the operation's index in its round, and for a
/// send its tag (a notification arrives rounds later and names only the tag).
fn user_data(index: usize, tag: u64) -> u64 {
    tag << 8 | index as u64
}

impl IoUring {
    pub fn new(src: FdKind, sink: FdKind, mode: Mode) -> IoUring {
        IoUring {
            ring: None,
            needs_pipe: matches!(mode, Mode::Splice { .. })
                && src != FdKind::Pipe
                && sink != FdKind::Pipe,
            mode,
            pipe: None,
            zc: None,
            dontwait: 0,
            chunk: match mode {
                Mode::Splice { pipe_size } => pipe_size,
                Mode::SendZc { buffer } => buffer.max(rustix::param::page_size()),
            },
            started: false,
            ops: Vec::with_capacity(ENTRIES as usize),
            results: Vec::with_capacity(ENTRIES as usize),
        }
    }

    /// Whether nothing waits in the pipe or the buffers and every buffer is
    /// released, so the next transfer can start.
    pub fn is_idle(&self) -> bool {
        self.pipe.as_ref().is_none_or(|p| p.held == 0)
            && self
                .zc
                .as_ref()
                .is_none_or(|reg| reg.sends.is_empty() && reg.pending.iter().all(|p| p.is_empty()))
    }

    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        if self.ring.is_none() {
            if let Some(reason) = self.setup(sink, cur)? {
                return Ok(Step::Fallback(reason));
            }
        }
        loop {
            self.plan(cur);
            if self.ops.is_empty() {
                if self.notifs_due() {
                    // Buffers the kernel has not released: wait for notifications.
                    self.submit(src, sink, cur)?;
                    continue;
                }
                return Ok(if cur.source_done() {
                    Step::Done
                } else {
                    Step::Paused
                });
            }
            self.submit(src, sink, cur)?;
            if let Some(end) = self.account(cur)? {
                return end;
            }
        }
    }

    /// The next round: drain what the pipe holds, then as many pipefuls as the
    /// budget and the length allow.
    fn plan(&mut self, cur: &Cursor) {
        self.ops.clear();
        if let Some(reg) = &self.zc {
            let mut left = if cur.source_done() {
                0
            } else {
                cur.want(SLOTS * self.chunk)
            };
            let mut offset = cur.src_pos;
            let mut slot = reg.current;
            for _ in 0..SLOTS {
                let pending = &reg.pending[slot];
                if !pending.is_empty() {
                    self.ops.push(Op::Send {
                        slot,
                        start: pending.start,
                        len: pending.len(),
                    });
                } else if reg.free(slot) && left > 0 {
                    let len = left.min(self.chunk);
                    self.ops.push(Op::Read {
                        slot,
                        len,
                        offset: offset.unwrap_or(u64::MAX),
                    });
                    self.ops.push(Op::Send {
                        slot,
                        start: 0,
                        len,
                    });
                    left -= len;
                    offset = offset.map(|pos| pos + len as u64);
                } else {
                    break;
                }
                slot = (slot + 1) % SLOTS;
            }
            return;
        }
        let held = self.pipe.as_ref().map_or(0, |p| p.held);
        if held > 0 {
            self.ops.push(Op::Out { len: held });
        }
        if cur.source_done() || cur.budget == 0 {
            return;
        }
        let mut left = cur.want(PAIRS * self.chunk);
        let mut offset = cur.src_pos;
        while left > 0 && self.ops.len() + 2 <= ENTRIES as usize {
            let len = left.min(self.chunk);
            let at = offset.map_or(-1, |pos| pos as i64);
            if self.needs_pipe {
                self.ops.push(Op::In { len, offset: at });
                self.ops.push(Op::Out { len });
            } else {
                self.ops.push(Op::Direct { len, offset: at });
            }
            left -= len;
            offset = offset.map(|pos| pos + len as u64);
        }
    }

    /// Submits the round as one linked chain and waits for every completion but
    /// `SEND_ZC`'s notifications, which are counted as they come; a round without
    /// operations waits for one notification.
    fn submit(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<(), Error> {
        let Some(ring) = self.ring.as_mut() else {
            unreachable!("set up before the first round")
        };
        let (pipe_read, pipe_write) = match &self.pipe {
            Some(pipe) => (pipe.read.as_raw_fd(), pipe.write.as_raw_fd()),
            None => (-1, -1),
        };
        let last = self.ops.len().saturating_sub(1);
        {
            let mut queue = ring.submission();
            for (i, op) in self.ops.iter().enumerate() {
                let more = match op {
                    Op::Out { .. } | Op::Direct { .. } if i < last => SpliceFlags::MORE,
                    _ => SpliceFlags::empty(),
                };
                let splice = |from: i32, from_offset: i64, to: i32, len: usize| {
                    opcode::Splice::new(types::Fd(from), from_offset, types::Fd(to), -1, len32(len))
                        .flags((SpliceFlags::MOVE | more).bits())
                        .build()
                };
                let (entry, tag) = match *op {
                    Op::In { len, offset } => (splice(src.as_raw_fd(), offset, pipe_write, len), 0),
                    Op::Out { len } => (splice(pipe_read, -1, sink.as_raw_fd(), len), 0),
                    Op::Direct { len, offset } => {
                        (splice(src.as_raw_fd(), offset, sink.as_raw_fd(), len), 0)
                    }
                    Op::Read { slot, len, offset } => {
                        let reg = self.zc.as_mut().expect("Read needs the buffers");
                        let buf = reg.bufs[slot].as_mut_slice().as_mut_ptr();
                        let entry = opcode::ReadFixed::new(
                            types::Fd(src.as_raw_fd()),
                            buf,
                            len32(len),
                            slot as u16,
                        )
                        .offset(offset)
                        .build();
                        (entry, 0)
                    }
                    Op::Send { slot, start, len } => {
                        let reg = self.zc.as_mut().expect("Send needs the buffers");
                        let tag = reg.next_tag;
                        reg.next_tag += 1;
                        reg.sends.push(SendZc {
                            tag,
                            slot,
                            more: None,
                            notified: false,
                            copied: false,
                        });
                        let buf = reg.bufs[slot].filled(start + len)[start..].as_ptr();
                        let entry =
                            opcode::SendZc::new(types::Fd(sink.as_raw_fd()), buf, len32(len))
                                .buf_index(Some(slot as u16))
                                .zc_flags(SEND_ZC_REPORT_USAGE)
                                // Stream sockets: the kernel retries until all is sent.
                                .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL | self.dontwait)
                                .build();
                        (entry, tag)
                    }
                };
                let entry = entry.user_data(user_data(i, tag));
                let entry = if i < last {
                    entry.flags(squeue::Flags::IO_LINK)
                } else {
                    entry
                };
                // SAFETY: splices name only descriptors (the borrowed source and sink,
                // our pipe), which stay open until the operation completes: this
                // function waits for every completion before it returns, and the ring
                // is dropped if that wait fails. Reads and sends name registered
                // buffers, which live until their send's notification has come (or
                // forever: see `Drop`) and are neither read nor written by us while
                // an operation on them is in flight.
                unsafe { queue.push(&entry) }.expect("the ring has room for a whole round");
            }
        }
        self.results.clear();
        self.results.resize(self.ops.len(), None);
        let mut waiting = self.ops.len();
        let mut notified = false;
        while waiting > 0 || (self.ops.is_empty() && !notified) {
            match cur.call(
                Syscall::IoUringEnter,
                ring.submit_and_wait(waiting.max(1))
                    .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO)),
            ) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(errno) => {
                    // Operations may still be in flight: the ring must not serve
                    // again, nor its buffers be freed.
                    self.ring = None;
                    std::mem::forget(self.zc.take());
                    return Err(Error::Io {
                        engine: Engine::IoUring,
                        syscall: "io_uring_enter",
                        cause: errno.into(),
                    });
                }
            }
            for cqe in ring.completion() {
                let (index, tag) = ((cqe.user_data() & 0xff) as usize, cqe.user_data() >> 8);
                let notification = io_uring::cqueue::notif(cqe.flags());
                if tag != 0 {
                    let reg = self.zc.as_mut().expect("sends need the buffers");
                    let more = io_uring::cqueue::more(cqe.flags());
                    reg.completed(tag, notification.then_some(cqe.result()), more, cur);
                }
                if notification {
                    notified = true;
                } else if self.results[index]
                    .replace((cqe.result(), cqe.flags()))
                    .is_none()
                {
                    waiting -= 1;
                }
            }
        }
        Ok(())
    }

    /// Whether `SEND_ZC` notifications are still to come.
    fn notifs_due(&self) -> bool {
        self.zc.as_ref().is_some_and(|reg| !reg.sends.is_empty())
    }
}

/// A length for a submission entry; the planner never asks for more than a pipe
/// or buffer holds.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Drop for IoUring {
    fn drop(&mut self) {
        let ring = self.ring.take();
        if let Some(reg) = self.zc.take() {
            // Registered buffers: the ring goes first, and buffers the kernel has
            // not released (notifications still due) are never freed.
            drop(ring);
            if !reg.sends.is_empty() {
                std::mem::forget(reg);
            }
            return;
        }
        // Nothing is in flight between rounds (see `submit`), so the ring can serve
        // this thread's next transfer.
        if let Some(ring) = ring {
            SPARE.with(|spare| *spare.borrow_mut() = Some(ring));
        }
    }
}
