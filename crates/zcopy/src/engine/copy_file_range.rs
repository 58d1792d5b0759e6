//! `copy_file_range(2)`: file → file inside the kernel; on file systems that support
//! it (btrfs, xfs, NFS 4.2, overlayfs over them) the file system may share or offload
//! the extents instead of copying.
//!
//! Applies only when both ends are regular files. No user-space copy at all, one
//! syscall per chunk (capped here at 1 GiB so progress is reported).
//!
//! Pitfalls: `EXDEV` across file systems (always before Linux 5.3, and since 5.19
//! whenever the two file systems are of different types); `EINVAL` when the sink
//! is `O_APPEND`; `ENOSYS` before Linux 4.5. All of these fall back before the first
//! byte moves (see `engine::triage`). procfs, sysfs and some FUSE and overlay files
//! report a size of 0 or a size they do not have, and the call returns 0 at once:
//! the transfer then reads to end of file instead of trusting that 0.
//!
//! # References
//!  - [copy_file_range(2)](https://man7.org/linux/man-pages/man2/copy_file_range.2.html)

use std::os::fd::BorrowedFd;

use super::{triage, Cursor, Side, Step};
use crate::choice::Engine;
use crate::report::Syscall;
use crate::Error;

/// Bytes asked of one call: big enough to be cheap, small enough to show progress.
const CHUNK: usize = 1 << 30;

/// Whether this engine has moved anything yet (fallback is only allowed before).
#[derive(Default)]
pub(crate) struct CopyFileRange {
    started: bool,
}

impl CopyFileRange {
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
            let want = cur.want(CHUNK);
            let mut pos = cur
                .src_pos
                .expect("copy_file_range needs a positional source");
            let result = rustix::fs::copy_file_range(src, Some(&mut pos), sink, None, want);
            match cur.call(Syscall::CopyFileRange, result) {
                Ok(0) => cur.src_eof = true,
                Ok(n) => {
                    self.started = true;
                    cur.took(n);
                    cur.moved += n as u64;
                }
                Err(errno) => {
                    if let Some(end) = triage(
                        Engine::CopyFileRange,
                        Syscall::CopyFileRange,
                        errno,
                        self.started,
                    )
                    .end(Side::Sink)
                    {
                        return end;
                    }
                }
            }
        }
    }
}
