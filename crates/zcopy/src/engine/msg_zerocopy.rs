//! `send(MSG_ZEROCOPY)`: the kernel sends straight from our buffers, pinning their
//! pages instead of copying them into socket buffers, and says on the socket's error
//! queue when it is done with each send.
//!
//! Applies when the sink is a TCP socket (Linux 4.14; `SO_ZEROCOPY` must be set
//! first, which Unix sockets refuse with `EOPNOTSUPP`: the engine then falls back
//! before its first byte). The source is read into page-aligned buffers (`pread` or
//! `read`: one CPU copy, from the page cache, as in read + write), then each buffer is
//! sent with `MSG_ZEROCOPY`, which saves the second copy, into the socket buffer: on a
//! NIC with scatter-gather DMA the bytes go from our pages to the wire. Completions
//! come as `sock_extended_err` messages read with `recvmsg(MSG_ERRQUEUE)`, each a
//! range of send numbers, and say when the kernel *copied after all*
//! (`SO_EE_CODE_ZEROCOPY_COPIED`): it does on loopback and veth, where the receiver
//! on the same host must not keep a reference to our pages, and for NICs without
//! scatter-gather or checksum offload. The report counts sends, completions and
//! copies, so a user sees which happened.
//!
//! Pitfalls: a buffer is read into again only after every send from it has been
//! completed, or the kernel would transmit the new bytes in place of the old; at most
//! [`SLOTS`] buffers are in flight, and the engine waits (`poll`, which reports
//! `POLLERR` while the error queue holds notifications) when all are. On a
//! non-blocking socket it returns `WouldBlock` instead, and the caller's wait for
//! writability may return at once: completions follow acknowledgements, so the wait
//! is short. Each in-flight send costs socket option memory (`net.core.optmem_max`);
//! past it `send` fails with `ENOBUFS`, and the engine waits for completions and
//! retries. An engine dropped with sends in flight (an abandoned transfer) leaks its
//! buffers rather than let the allocator hand pages the kernel may still send to
//! someone else. Pinning and completion handling cost more than a copy for small
//! sends: the kernel's documentation puts the break-even around 10 KB. The kernel
//! numbers zero-copy sends per socket, so a second transfer on one connection
//! continues the count of the first, kept in a process-wide table by socket inode;
//! a socket on which someone else turned `SO_ZEROCOPY` on is left alone (fallback).
//!
//! # References
//!  - [MSG_ZEROCOPY](https://docs.kernel.org/networking/msg_zerocopy.html),
//!    [send(2)](https://man7.org/linux/man-pages/man2/send.2.html),
//!    [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html),
//!    [ip(7)](https://man7.org/linux/man-pages/man7/ip.7.html) `IP_RECVERR`

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::net::sockopt::Timeout;

use super::direct::AlignedBuf;
use super::{sink_closed, triage, Cursor, Side, Step, Verdict};
use crate::choice::Engine;
use crate::choice::SkipReason;
use crate::report::Syscall;
use crate::sys::{self, ErrQueue};
use crate::Error;

/// Buffers in flight at most.
pub const SLOTS: usize = 8;

/// The number of the next zero-copy send on each socket this process has sent
/// on, by (device, inode): the kernel numbers sends per socket, from 0 when
/// `SO_ZEROCOPY` is first set, and a second transfer on the same connection must
/// continue the count. A socket with `SO_ZEROCOPY` off is new to this, so an
/// inode reused by a new socket starts again at 0.
static NEXT_IDS: Mutex<Option<HashMap<(u64, u64), u32>>> = Mutex::new(None);

/// The buffers, the sends the kernel has not completed, and where the engine is.
pub(crate) struct MsgZerocopy {
    slots: Vec<Slot>,
    /// Bytes per buffer (the read-write buffer size, at least a page).
    size: usize,
    /// The buffer being sent, or filled next.
    current: usize,
    /// The number the kernel gives the next send (it counts from 0 per socket).
    next_id: u32,
    /// Sends not yet completed, in the order they were issued: (number, buffer).
    in_flight: VecDeque<(u32, usize)>,
    /// `SO_ZEROCOPY` is set and the socket's blocking mode known.
    ready: Option<Blocking>,
    /// The socket's key in [`NEXT_IDS`].
    socket: (u64, u64),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Blocking {
    Yes,
    No,
}

struct Slot {
    buf: AlignedBuf,
    /// The part of the buffer still to be sent.
    pending: Range<usize>,
    /// Sends from this buffer the kernel has not completed.
    outstanding: u32,
}

impl MsgZerocopy {
    pub fn new(buffer: usize) -> MsgZerocopy {
        let page = rustix::param::page_size();
        let size = buffer.max(page);
        MsgZerocopy {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    buf: AlignedBuf::new(size, page),
                    pending: 0..0,
                    outstanding: 0,
                })
                .collect(),
            size,
            current: 0,
            next_id: 0,
            in_flight: VecDeque::new(),
            ready: None,
            socket: (0, 0),
        }
    }

    /// Whether every buffer is sent and released, so the next transfer can start.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty() && self.slots.iter().all(|s| s.pending.is_empty())
    }

    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        let blocking = match self.ready {
            Some(blocking) => blocking,
            None => match self.prepare(sink, cur)? {
                Ok(blocking) => blocking,
                Err(reason) => return Ok(Step::Fallback(reason)),
            },
        };
        loop {
            let slot = &mut self.slots[self.current];
            if !slot.pending.is_empty() {
                let bytes = &slot.buf.filled(slot.pending.end)[slot.pending.clone()];
                // SAFETY: the buffer is neither written nor freed until the kernel has
                // completed this send: it is refilled only when `outstanding` is back to
                // 0, and `Drop` leaks the buffers while any send is in flight.
                let result = unsafe { sys::send_zerocopy(sink, bytes.as_ptr(), bytes.len()) };
                match cur.call(Syscall::Send, result) {
                    Ok(0) => return Err(sink_closed(Engine::MsgZerocopy)),
                    Ok(n) => {
                        slot.pending.start += n;
                        slot.outstanding += 1;
                        self.in_flight.push_back((self.next_id, self.current));
                        self.next_id = self.next_id.wrapping_add(1);
                        cur.zerocopy.sends += 1;
                        cur.moved += n as u64;
                        if slot.pending.is_empty() {
                            self.current = (self.current + 1) % SLOTS;
                        }
                    }
                    // Too much socket option memory held by sends in flight.
                    Err(Errno::NOBUFS) if !self.in_flight.is_empty() => {
                        if !self.wait(sink, blocking, cur)? {
                            return Ok(Step::WouldBlock(Side::Sink));
                        }
                    }
                    Err(errno) => {
                        if let Some(end) =
                            triage(Engine::MsgZerocopy, Syscall::Send, errno, true).end(Side::Sink)
                        {
                            return end;
                        }
                    }
                }
                continue;
            }
            if cur.source_done() {
                if self.in_flight.is_empty() {
                    return Ok(Step::Done);
                }
                if !self.wait(sink, blocking, cur)? {
                    return Ok(Step::WouldBlock(Side::Sink));
                }
                continue;
            }
            if cur.budget == 0 {
                return Ok(Step::Paused);
            }
            if self.slots[self.current].outstanding > 0 {
                self.reap(sink, cur)?;
                if self.slots[self.current].outstanding > 0 && !self.wait(sink, blocking, cur)? {
                    return Ok(Step::WouldBlock(Side::Sink));
                }
                continue;
            }
            let want = cur.want(self.size);
            let slot = &mut self.slots[self.current];
            let buf = &mut slot.buf.as_mut_slice()[..want];
            match cur.read_source(src, buf) {
                Ok(n) => slot.pending = 0..n,
                Err((call, errno)) => {
                    if let Some(end) =
                        triage(Engine::MsgZerocopy, call, errno, true).end(Side::Source)
                    {
                        return end;
                    }
                }
            }
        }
    }

    /// Sets `SO_ZEROCOPY`, learns the number of the socket's next send and whether
    /// the socket blocks; the inner `Err` is a reason to fall back.
    fn prepare(
        &mut self,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Result<Blocking, SkipReason>, Error> {
        let fail = |syscall: &'static str| {
            move |errno: Errno| Error::Io {
                engine: Engine::MsgZerocopy,
                syscall,
                cause: errno.into(),
            }
        };
        let stat = cur
            .call(Syscall::Fstat, rustix::fs::fstat(sink))
            .map_err(fail("fstat"))?;
        self.socket = (stat.st_dev, stat.st_ino);
        let known = NEXT_IDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .get(&self.socket)
            .copied();
        let on = match cur.call(Syscall::Sockopt, sys::zerocopy_enabled(sink)) {
            Ok(on) => on,
            // EOPNOTSUPP: not TCP or UDP (a Unix socket); ENOPROTOOPT: before Linux
            // 4.14.
            Err(errno @ (Errno::OPNOTSUPP | Errno::NOPROTOOPT)) => return Ok(Err(refused(errno))),
            Err(errno) => return Err(fail("getsockopt")(errno)),
        };
        match (on, known) {
            (true, Some(next)) => self.next_id = next,
            (true, None) => {
                return Ok(Err(SkipReason::Unsupported(
                    "SO_ZEROCOPY was set by someone else: the numbers of the socket's \
                     zero-copy sends are unknown",
                )))
            }
            (false, _) => {
                match cur.call(Syscall::Sockopt, sys::set_zerocopy(sink)) {
                    Ok(()) => {}
                    // EOPNOTSUPP: not TCP or UDP (a Unix socket); EINVAL: a socket
                    // type without zero-copy sends.
                    Err(errno @ (Errno::OPNOTSUPP | Errno::NOPROTOOPT | Errno::INVAL)) => {
                        return Ok(Err(refused(errno)))
                    }
                    Err(errno) => return Err(fail("setsockopt")(errno)),
                }
                self.next_id = 0;
            }
        }
        let flags = cur
            .call(Syscall::Fcntl, rustix::fs::fcntl_getfl(sink))
            .map_err(fail("fcntl"))?;
        let blocking = if flags.contains(OFlags::NONBLOCK) {
            Blocking::No
        } else {
            Blocking::Yes
        };
        self.ready = Some(blocking);
        Ok(Ok(blocking))
    }

    /// Reads every completion waiting on the error queue; returns how many sends
    /// they completed.
    fn reap(&mut self, sink: BorrowedFd<'_>, cur: &mut Cursor) -> Result<u64, Error> {
        let mut done = 0;
        loop {
            match cur.call(Syscall::Recvmsg, sys::zerocopy_completion(sink)) {
                Ok(ErrQueue::Zerocopy { lo, hi, copied }) => {
                    let span = hi.wrapping_sub(lo);
                    let slots = &mut self.slots;
                    let before = self.in_flight.len();
                    self.in_flight.retain(|&(id, slot)| {
                        let hit = id.wrapping_sub(lo) <= span;
                        if hit {
                            slots[slot].outstanding -= 1;
                        }
                        !hit
                    });
                    let n = (before - self.in_flight.len()) as u64;
                    cur.zerocopy.completions += n;
                    if copied {
                        cur.zerocopy.copied += n;
                    }
                    done += n;
                }
                Ok(ErrQueue::Other) => {}
                Err(Errno::AGAIN) => return Ok(done),
                Err(errno) => match triage(Engine::MsgZerocopy, Syscall::Recvmsg, errno, true) {
                    Verdict::Retry => {}
                    Verdict::Fail(e) => return Err(e),
                    Verdict::WouldBlock | Verdict::Fallback(_) => {
                        unreachable!("EAGAIN is handled above and nothing falls back mid-transfer")
                    }
                },
            }
        }
    }

    /// Waits until at least one send completes; `false` when the socket is
    /// non-blocking and none has yet (the caller reports `WouldBlock`).
    fn wait(
        &mut self,
        sink: BorrowedFd<'_>,
        blocking: Blocking,
        cur: &mut Cursor,
    ) -> Result<bool, Error> {
        loop {
            if self.reap(sink, cur)? > 0 {
                return Ok(true);
            }
            if blocking == Blocking::No {
                return Ok(false);
            }
            // No events asked: poll still reports POLLERR, raised while the error
            // queue holds a notification, and POLLHUP. A blocking send would give up
            // after the socket's send timeout, so the wait for completions does too.
            let mut fds = [PollFd::new(&sink, PollFlags::empty())];
            let limit = rustix::net::sockopt::socket_timeout(sink, Timeout::Send)
                .ok()
                .flatten()
                .and_then(|t| Timespec::try_from(t).ok());
            match cur.call(Syscall::Poll, rustix::event::poll(&mut fds, limit.as_ref())) {
                Ok(0) if limit.is_some() => return Ok(false),
                Ok(_) | Err(Errno::INTR) => {}
                Err(errno) => {
                    return Err(Error::Io {
                        engine: Engine::MsgZerocopy,
                        syscall: "poll",
                        cause: errno.into(),
                    })
                }
            }
            let revents = fds[0].revents();
            if revents.contains(PollFlags::HUP) && self.reap(sink, cur)? == 0 {
                // A closed connection with sends it will never complete: report the
                // socket's error if it has one.
                let errno = rustix::net::sockopt::socket_error(sink)
                    .ok()
                    .and_then(Result::err)
                    .unwrap_or(Errno::PIPE);
                return Err(Error::Io {
                    engine: Engine::MsgZerocopy,
                    syscall: "send",
                    cause: errno.into(),
                });
            } else if revents.contains(PollFlags::HUP) {
                return Ok(true);
            }
        }
    }
}

/// `SO_ZEROCOPY` refused: the reason to fall back.
fn refused(errno: Errno) -> SkipReason {
    SkipReason::SetupRefused {
        call: "SO_ZEROCOPY",
        errno,
        cached: false,
    }
}

impl Drop for MsgZerocopy {
    fn drop(&mut self) {
        if self.ready.is_some() {
            NEXT_IDS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(self.socket, self.next_id);
        }
        if !self.in_flight.is_empty() {
            // The kernel may still read these pages (a transfer abandoned mid-way):
            // never give them back to the allocator.
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }
}
