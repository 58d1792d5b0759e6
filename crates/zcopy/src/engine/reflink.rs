//! `ioctl(dst, FICLONE, src)`: copy-on-write cloning, the seeds' "copy-on-write".
//!
//! The destination shares every extent of the source; no data is read or written,
//! whatever the size, and the file system copies a block only when one of the two
//! files writes to it. Applies to whole regular files on btrfs, xfs (with reflink,
//! the mkfs default), bcachefs, OCFS2 and NFS 4.2 servers that support it.
//!
//! Pitfalls: `EOPNOTSUPP` on file systems without reflink (ext4, tmpfs); `EXDEV`
//! across file systems or mounts of different superblocks; `EINVAL` when either file
//! is not a regular file, or the source is mapped with unflushed changes; the
//! destination's previous contents are replaced.
//!
//! # References
//!  - [ioctl_ficlone(2)](https://man7.org/linux/man-pages/man2/ioctl_ficlone.2.html)

use std::io;
use std::os::fd::AsFd;

/// Makes `dst` a copy-on-write clone of all of `src`.
pub fn clone_file(src: impl AsFd, dst: impl AsFd) -> io::Result<()> {
    rustix::fs::ioctl_ficlone(dst, src).map_err(Into::into)
}
