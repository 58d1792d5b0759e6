//! Setting up: the ring (this thread's spare, or a new one with the opcode probe),
//! the pipe, and `SEND_ZC` mode's registered buffers.

use std::os::fd::BorrowedFd;

use io_uring::{opcode, IoUring as Ring, Probe};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use super::{IoUring, Mode, Pipe, Registered, ENTRIES, SLOTS, SPARE};
use crate::choice::{Engine, SkipReason};
use crate::engine::direct::AlignedBuf;
use crate::engine::Cursor;
use crate::report::Syscall;
use crate::Error;

impl IoUring {
    /// Takes this thread's spare ring or sets one up, checks that the kernel has
    /// `IORING_OP_SPLICE`, and makes the pipe; `Some` is a reason to fall back.
    pub(super) fn setup(
        &mut self,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Option<SkipReason>, Error> {
        let spare = match self.mode {
            Mode::Splice { .. } => SPARE.with(|spare| spare.borrow_mut().take()),
            // A spare ring's probe covered splicing only.
            Mode::SendZc { .. } => None,
        };
        if let Some(ring) = spare {
            self.ring = Some(ring);
        } else {
            if Engine::IoUring.known_unavailable() {
                return Ok(Some(SkipReason::Unavailable));
            }
            cur.syscalls.count(Syscall::IoUringSetup);
            let ring = match Ring::new(ENTRIES) {
                Ok(ring) => ring,
                Err(e) => {
                    let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                    // ENOSYS: a kernel built without io_uring, which will not grow one.
                    // EPERM: kernel.io_uring_disabled (Linux 6.6) or a seccomp filter
                    // (Docker's default profile since 25.0), which may change: not cached.
                    // ENOMEM: RLIMIT_MEMLOCK too low for the rings before Linux 5.12.
                    let cached = errno == Errno::NOSYS;
                    if cached {
                        Engine::IoUring.mark_unavailable();
                    }
                    return Ok(Some(SkipReason::SetupRefused {
                        call: "io_uring_setup",
                        errno,
                        cached,
                    }));
                }
            };
            let mut probe = Probe::new();
            cur.syscalls.count(Syscall::IoUringRegister);
            // EINVAL: IORING_REGISTER_PROBE arrived in Linux 5.6, before the opcodes.
            let probed = ring.submitter().register_probe(&mut probe).is_ok();
            let needs: &[(u8, &'static str)] = match self.mode {
                Mode::Splice { .. } => &[(
                    opcode::Splice::CODE,
                    "the kernel has no IORING_OP_SPLICE (Linux 5.7+)",
                )],
                Mode::SendZc { .. } => &[
                    (
                        opcode::ReadFixed::CODE,
                        "the kernel has no IORING_OP_READ_FIXED (Linux 5.1+)",
                    ),
                    (
                        opcode::SendZc::CODE,
                        "the kernel has no IORING_OP_SEND_ZC (Linux 6.0+)",
                    ),
                ],
            };
            if let Some((_, words)) = needs
                .iter()
                .find(|(code, _)| !probed || !probe.is_supported(*code))
            {
                return Ok(Some(SkipReason::Unsupported(words)));
            }
            self.ring = Some(ring);
        }
        if let Mode::SendZc { .. } = self.mode {
            let flags = cur
                .call(Syscall::Fcntl, rustix::fs::fcntl_getfl(sink))
                .map_err(|errno| Error::Io {
                    engine: Engine::IoUring,
                    syscall: "fcntl",
                    cause: errno.into(),
                })?;
            if flags.contains(rustix::fs::OFlags::NONBLOCK) {
                self.dontwait = libc::MSG_DONTWAIT;
            }
            return Ok(self.register(cur));
        }
        if self.needs_pipe {
            let fail = |errno: Errno| Error::Io {
                engine: Engine::IoUring,
                syscall: "pipe2",
                cause: errno.into(),
            };
            let (read, write) = cur
                .call(Syscall::Pipe, rustix::pipe::pipe_with(PipeFlags::CLOEXEC))
                .map_err(fail)?;
            // EPERM past pipe-max-size for unprivileged users: keep the default size.
            let got = cur.call(
                Syscall::Pipe,
                rustix::pipe::fcntl_setpipe_size(&write, self.chunk),
            );
            self.chunk = match got {
                Ok(size) => size,
                Err(_) => rustix::pipe::fcntl_getpipe_size(&write).map_err(fail)?,
            };
            self.pipe = Some(Pipe {
                read,
                write,
                held: 0,
            });
        }
        Ok(None)
    }

    /// Allocates and registers `SEND_ZC` mode's buffers; `Some` is a reason to
    /// fall back.
    pub(super) fn register(&mut self, cur: &mut Cursor) -> Option<SkipReason> {
        let ring = self.ring.as_ref().expect("registered after setup");
        let page = rustix::param::page_size();
        let mut bufs: Vec<AlignedBuf> = (0..SLOTS)
            .map(|_| AlignedBuf::new(self.chunk, page))
            .collect();
        let iovecs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|buf| {
                let slice = buf.as_mut_slice();
                libc::iovec {
                    iov_base: slice.as_mut_ptr().cast(),
                    iov_len: slice.len(),
                }
            })
            .collect();
        cur.syscalls.count(Syscall::IoUringRegister);
        // SAFETY: the buffers live as long as the ring: the ring is dropped before
        // them (field order is irrelevant: `Drop` drops or leaks them explicitly).
        if let Err(e) = unsafe { ring.submitter().register_buffers(&iovecs) } {
            let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
            // ENOMEM: RLIMIT_MEMLOCK too low to pin them.
            return Some(SkipReason::SetupRefused {
                call: "IORING_REGISTER_BUFFERS",
                errno,
                cached: false,
            });
        }
        self.zc = Some(Registered {
            bufs,
            pending: vec![0..0; SLOTS],
            current: 0,
            sends: Vec::with_capacity(2 * SLOTS),
            next_tag: 1,
        });
        None
    }
}
