//! `sendfile(2)`: the kernel moves file pages to the sink itself, the seed's
//! `ClientChannel` (`FileChannel.transferTo`).
//!
//! Applies when the source is a regular file or block device; the sink may be
//! anything (a socket, a pipe, or, since Linux 2.6.33, a file). One syscall per
//! chunk instead of two, and no copy through user space: the seeds count 2 switches
//! and 1 CPU copy (0 with scatter-gather DMA, which loopback does not have).
//!
//! Pitfalls: one call moves at most `0x7ffff000` bytes (`MAX_RW_COUNT`), so larger
//! transfers loop; a return of 0 means the file ended early (it shrank); the source
//! offset is passed explicitly, so the file's own offset is left alone.
//!
//! # References
//!  - [sendfile(2)](https://man7.org/linux/man-pages/man2/sendfile.2.html)

use std::os::fd::BorrowedFd;

use super::{triage, Cursor, Side, Step};
use crate::choice::Engine;
use crate::report::Syscall;
use crate::Error;

/// The most one `sendfile` call moves (`MAX_RW_COUNT`, `INT_MAX` rounded down to a page).
pub const MAX_PER_CALL: usize = 0x7fff_f000;

/// Whether this engine has moved anything yet (fallback is only allowed before).
#[derive(Default)]
pub(crate) struct Sendfile {
    started: bool,
}

impl Sendfile {
    pub fn pump(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        cur: &mut Cursor,
    ) -> Result<Step, Error> {
        loop {
            if let Some(stop) = cur.stop() {
                return Ok(stop);
            }
            let want = cur.want(MAX_PER_CALL);
            let mut pos = cur.src_pos.expect("sendfile needs a positional source");
            let result = rustix::fs::sendfile(sink, src, Some(&mut pos), want);
            match cur.call(Syscall::Sendfile, result) {
                Ok(0) => cur.src_eof = true,
                Ok(n) => {
                    self.started = true;
                    cur.took(n);
                    cur.moved += n as u64;
                }
                Err(errno) => {
                    if let Some(end) =
                        triage(Engine::Sendfile, Syscall::Sendfile, errno, self.started)
                            .end(Side::Sink)
                    {
                        return end;
                    }
                }
            }
        }
    }
}
