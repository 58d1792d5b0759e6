//! The receiver's side: the new file built from references to the old one and
//! the literal chunks, the references cloned where the file system shares extents.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::io::Errno;
use zcopy::engine::direct::AlignedBuf;

use super::plan::Copy;
use crate::frame;
use crate::partial::hash_range;

/// What a delta moved, by how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes sent over the wire as they are.
    pub literal: u64,
    /// Bytes taken from the old file.
    pub referenced: u64,
    /// Of those, bytes shared with the old file by `FICLONERANGE` (no data copied).
    pub cloned: u64,
    /// Bytes of old versions whose signature came from the receiver's cache
    /// ([`super::SignatureCache`]) instead of a read.
    pub cached: u64,
}

impl Counts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: Counts) {
        self.literal += other.literal;
        self.referenced += other.referenced;
        self.cloned += other.cloned;
        self.cached += other.cached;
    }
}

/// A new file being built from an old one.
pub struct Apply {
    old: File,
    out: File,
    /// `out` is `old`: the file is rewritten in place, front to back.
    inplace: bool,
    /// The file system's block: clones must start and end on one.
    block: u64,
    /// Whether `FICLONERANGE` is still worth trying.
    clone: bool,
    /// Whether `copy_file_range` is still worth trying.
    copy_range: bool,
    buf: Vec<u8>,
    counts: Counts,
}

impl Apply {
    /// Builds the new file in `out` (a new, empty file) from `old`.
    pub fn new(old: File, out: File) -> io::Result<Apply> {
        let block = rustix::fs::fstat(&out)?.st_blksize.max(512) as u64;
        Ok(Apply {
            old,
            out,
            inplace: false,
            block,
            clone: true,
            copy_range: true,
            buf: Vec::new(),
            counts: Counts::default(),
        })
    }

    /// Rewrites `file` in place (`--inplace`): references at their own offset cost
    /// nothing; the plan must have been made with `inplace`.
    pub fn inplace(file: File) -> io::Result<Apply> {
        let mut apply = Apply::new(file.try_clone()?, file)?;
        apply.inplace = true;
        apply.clone = false;
        apply.copy_range = false;
        Ok(apply)
    }

    /// Puts `copy.len` bytes of the old file at `copy.old` at `copy.new`.
    pub fn copy(&mut self, copy: Copy) -> io::Result<()> {
        self.counts.referenced += copy.len;
        if self.inplace && copy.old == copy.new {
            return Ok(());
        }
        let (mut old, mut new, mut len) = (copy.old, copy.new, copy.len);
        if self.clone && old % self.block == new % self.block {
            // The block-aligned middle is cloned; the ragged ends are copied.
            let head = (self.block - new % self.block) % self.block;
            let body = (len.saturating_sub(head) / self.block) * self.block;
            if body > 0 {
                self.move_bytes(old, new, head)?;
                match zcopy::engine::reflink::clone_range(
                    &self.old,
                    old + head,
                    body,
                    &self.out,
                    new + head,
                ) {
                    Ok(()) => {
                        self.counts.cloned += body;
                        (old, new, len) = (old + head + body, new + head + body, len - head - body);
                    }
                    // EOPNOTSUPP, ENOTTY: no reflink here (ext4, tmpfs); EXDEV: another
                    // file system; EINVAL: unaligned, or a file system that refuses ranges.
                    Err(e) if falls_back(&e) => {
                        self.clone = false;
                        (old, new, len) = (old + head, new + head, len - head);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.move_bytes(old, new, len)
    }

    /// Writes a literal chunk at `new`.
    pub fn literal(&mut self, new: u64, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all_at(bytes, new)?;
        self.counts.literal += bytes.len() as u64;
        Ok(())
    }

    /// The new file.
    pub fn file(&self) -> &File {
        &self.out
    }

    /// Copies without cloning: `copy_file_range`, else `pread` and `pwrite`
    /// front to back (which is also a safe `memmove` within one file when `old`
    /// lies after `new`).
    fn move_bytes(&mut self, mut old: u64, mut new: u64, mut len: u64) -> io::Result<()> {
        while len > 0 && self.copy_range {
            let (mut from, mut to) = (old, new);
            let want = len.min(1 << 30) as usize;
            match rustix::fs::copy_file_range(
                &self.old,
                Some(&mut from),
                &self.out,
                Some(&mut to),
                want,
            ) {
                Ok(0) => return Err(shrank()),
                Ok(n) => (old, new, len) = (old + n as u64, new + n as u64, len - n as u64),
                Err(Errno::INTR) => {}
                // EXDEV: another file system (before 5.3, or of another type);
                // EINVAL, EOPNOTSUPP, ENOSYS: a file system or kernel without it.
                Err(Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS) => {
                    self.copy_range = false;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if len > 0 && self.buf.is_empty() {
            self.buf = vec![0; 1 << 20];
        }
        while len > 0 {
            let want = len.min(self.buf.len() as u64) as usize;
            let n = self.old.read_at(&mut self.buf[..want], old)?;
            if n == 0 {
                return Err(shrank());
            }
            self.out.write_all_at(&self.buf[..n], new)?;
            (old, new, len) = (old + n as u64, new + n as u64, len - n as u64);
        }
        Ok(())
    }

    /// Gives the new file its length and checks it against the sender's digest
    /// (the protocol's file digest over blocks of `block` bytes).
    pub fn finish(&self, size: u64, block: u32, digest: u128) -> io::Result<Counts> {
        self.out.set_len(size)?;
        let got = file_digest(&self.out, size, block)?;
        if got != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the file built from the delta does not match the sender's digest",
            ));
        }
        Ok(self.counts)
    }
}

/// The protocol's digest of `size` bytes of `file` in blocks of `block` bytes.
pub fn file_digest(file: &File, size: u64, block: u32) -> io::Result<u128> {
    let mut buf = AlignedBuf::new(1 << 20, 4096);
    let mut digests = Vec::with_capacity(size.div_ceil(u64::from(block)) as usize);
    let mut offset = 0;
    // An empty file has one empty block, as senders hash it.
    while offset < size || digests.is_empty() {
        let len = (size - offset).min(u64::from(block));
        digests.push(hash_range(file, offset, len, &mut buf)?);
        offset += len;
    }
    Ok(frame::file_digest(&digests))
}

fn falls_back(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOTTY | libc::EXDEV | libc::EINVAL | libc::ENOSYS)
    )
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the old file shrank while the new one was built from it",
    )
}
