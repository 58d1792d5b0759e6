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
//! [`clone_range`] (`FICLONERANGE`) shares part of a file: the offsets and the
//! length must be multiples of the file system's block size (`EINVAL` otherwise),
//! except a range that ends at the end of the source; delta transfers clone the
//! unchanged runs of an old file into the new one with it.
//!
//! # References
//!  - [ioctl_ficlone(2)](https://man7.org/linux/man-pages/man2/ioctl_ficlone.2.html)
//!  - [ioctl_ficlonerange(2)](https://man7.org/linux/man-pages/man2/ioctl_ficlonerange.2.html)

use std::io;
use std::os::fd::AsFd;

/// Makes `dst` a copy-on-write clone of all of `src`.
pub fn clone_file(src: impl AsFd, dst: impl AsFd) -> io::Result<()> {
    rustix::fs::ioctl_ficlone(dst, src).map_err(Into::into)
}

/// Makes `len` bytes of `dst` at `dst_offset` share the extents of `src` at
/// `src_offset` (block-aligned; see the module doc).
pub fn clone_range(
    src: impl AsFd,
    src_offset: u64,
    len: u64,
    dst: impl AsFd,
    dst_offset: u64,
) -> io::Result<()> {
    crate::sys::ficlonerange(src.as_fd(), src_offset, len, dst.as_fd(), dst_offset)
}
