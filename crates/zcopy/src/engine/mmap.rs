//! `mmap` + `write`: map the source file and write from the mapping, the seed's
//! "mmap + write" path (`MappedByteBuffer`).
//!
//! Applies when the source is a regular file; the sink may be anything. The page
//! cache is mapped into our address space instead of copied into a buffer, so one
//! CPU copy remains (mapping → socket or sink), with the 4 switches of read + write:
//! `mmap`, `write`... `munmap`. The file is mapped in windows of [`WINDOW`] bytes, each
//! advised `MADV_SEQUENTIAL` so readahead runs ahead of the writes.
//!
//! Pitfalls: touching a mapped page past the end of a file that shrank raises
//! SIGBUS. This engine never touches the mapping from user space: it only hands it
//! to `write(2)`, and the kernel's own access to a missing page fails that call with
//! `EFAULT`, which becomes [`Error::SourceShrank`]. Each window is sized from a fresh
//! `fstat`, so a file that shrank between windows simply ends early.
//!
//! # References
//!  - [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html),
//!    [madvise(2)](https://man7.org/linux/man-pages/man2/madvise.2.html)

use std::os::fd::BorrowedFd;

use memmap2::{Advice, MmapOptions};
use rustix::io::Errno;

use super::{sink_closed, triage, Cursor, Side, Step};
use crate::choice::Engine;
use crate::report::Syscall;
use crate::Error;

/// Bytes mapped at once: large enough that mapping costs little per byte, small
/// enough that a huge file never needs a huge stretch of address space.
pub const WINDOW: u64 = 64 << 20;

/// The window being written, if any.
#[derive(Default)]
pub(crate) struct Mmap {
    window: Option<Window>,
    /// Whether the sink has accepted a byte from a mapping (no fallback after).
    started: bool,
}

struct Window {
    map: memmap2::Mmap,
    written: usize,
}

impl Mmap {
    /// Whether no window is mapped.
    pub fn is_idle(&self) -> bool {
        self.window.is_none()
    }

    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        loop {
            if let Some(window) = &mut self.window {
                if window.written < window.map.len() {
                    let result = rustix::io::write(sink, &window.map[window.written..]);
                    match cur.call(Syscall::Write, result) {
                        Ok(0) => return Err(sink_closed(Engine::Mmap)),
                        Ok(n) => {
                            self.started = true;
                            window.written += n;
                            cur.moved += n as u64;
                        }
                        Err(Errno::FAULT) => return Err(shrank(src, cur)),
                        Err(errno) => {
                            if let Some(end) =
                                triage(Engine::Mmap, Syscall::Write, errno, true).end(Side::Sink)
                            {
                                return end;
                            }
                        }
                    }
                    continue;
                }
                cur.syscalls.count(Syscall::Munmap);
                self.window = None;
            }
            if let Some(stop) = cur.stop() {
                return Ok(stop);
            }
            let pos = cur.src_pos.expect("mmap needs a positional source");
            let size = file_size(src, cur)?;
            if size <= pos {
                cur.src_eof = true;
                continue;
            }
            let len = cur.want(usize::try_from(WINDOW.min(size - pos)).unwrap_or(usize::MAX));
            cur.syscalls.count(Syscall::Mmap);
            // SAFETY: the mapping is read-only and never dereferenced by our code: its
            // bytes go only to write(2), where a page lost to truncation makes the kernel
            // return EFAULT (handled above) instead of raising SIGBUS in this process.
            let map = match unsafe { MmapOptions::new().offset(pos).len(len).map(&src) } {
                Ok(map) => map,
                Err(e) => {
                    let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
                    match triage(Engine::Mmap, Syscall::Mmap, errno, self.started).end(Side::Source)
                    {
                        Some(end) => return end,
                        None => continue,
                    }
                }
            };
            cur.syscalls.count(Syscall::Madvise);
            // Readahead is only a hint: a kernel that refuses it still maps correctly.
            let _ = map.advise(Advice::Sequential);
            cur.took(len);
            self.window = Some(Window { map, written: 0 });
        }
    }
}

/// `fstat(fd)`'s size, counted.
fn file_size(src: BorrowedFd<'_>, cur: &mut Cursor) -> Result<u64, Error> {
    let stat = cur
        .call(Syscall::Fstat, rustix::fs::fstat(src))
        .map_err(|errno| Error::Io {
            engine: Engine::Mmap,
            syscall: "fstat",
            cause: errno.into(),
        })?;
    Ok(stat.st_size as u64)
}

/// The error for a write that hit a page the file no longer has.
fn shrank(src: BorrowedFd<'_>, cur: &mut Cursor) -> Error {
    match file_size(src, cur) {
        Ok(size) => Error::SourceShrank { size },
        Err(e) => e,
    }
}
