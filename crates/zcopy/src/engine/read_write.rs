//! `read` + `write` through a user-space buffer: the traditional I/O of the seed's
//! `Client` and `FileReader`.
//!
//! Works for every source and sink. Per chunk: `read(2)` (or `pread(2)` on a file)
//! copies from the page cache or socket buffer into our buffer, `write(2)` copies it
//! back into the kernel: 2 CPU copies and 2 syscalls, which the seeds count as 4
//! user↔kernel switches. A 1 KiB buffer reproduces the seed's `byte[1024]`; larger
//! buffers cut the syscalls, not the copies.
//!
//! Bytes read but not yet written stay in the buffer across `WouldBlock`, so a
//! non-blocking caller loses nothing.
//!
//! # References
//!  - [read(2)](https://man7.org/linux/man-pages/man2/read.2.html),
//!    [write(2)](https://man7.org/linux/man-pages/man2/write.2.html)

use std::ops::Range;
use std::os::fd::BorrowedFd;

use super::direct::AlignedBuf;
use super::{sink_closed, triage, Cursor, Side, Step};
use crate::choice::Engine;
use crate::report::Syscall;
use crate::Error;

/// The buffer and the part of it still to be written. The buffer is page-aligned:
/// the kernel's copy into a buffer 16 bytes past a page boundary (where glibc puts a
/// large `Vec`) ran 4× slower on the machine this was measured on.
pub(crate) struct ReadWrite {
    buf: AlignedBuf,
    /// The size asked for (the allocation is rounded up to whole pages): reads ask
    /// for at most this much, so 1 KiB stays the seed's 1 KiB.
    len: usize,
    pending: Range<usize>,
}

impl ReadWrite {
    pub fn new(size: usize) -> ReadWrite {
        ReadWrite {
            buf: AlignedBuf::new(size.max(1), rustix::param::page_size()),
            len: size.max(1),
            pending: 0..0,
        }
    }

    /// Whether no bytes wait in the buffer.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        loop {
            if self.pending.is_empty() {
                if let Some(stop) = cur.stop() {
                    return Ok(stop);
                }
                let want = cur.want(self.len);
                let buf = &mut self.buf.as_mut_slice()[..want];
                match cur.read_source(src, buf) {
                    Ok(n) => self.pending = 0..n,
                    Err((call, errno)) => {
                        if let Some(end) =
                            triage(Engine::ReadWrite, call, errno, true).end(Side::Source)
                        {
                            return end;
                        }
                    }
                }
                continue;
            }
            let result = rustix::io::write(
                sink,
                &self.buf.filled(self.pending.end)[self.pending.clone()],
            );
            match cur.call(Syscall::Write, result) {
                Ok(0) => return Err(sink_closed(Engine::ReadWrite)),
                Ok(n) => {
                    self.pending.start += n;
                    cur.moved += n as u64;
                }
                Err(errno) => {
                    if let Some(end) =
                        triage(Engine::ReadWrite, Syscall::Write, errno, true).end(Side::Sink)
                    {
                        return end;
                    }
                }
            }
        }
    }
}
