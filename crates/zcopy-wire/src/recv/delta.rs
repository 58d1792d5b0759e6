//! A file the sender sends as a delta against the older version in place: its
//! signature answers the FILE, then COPY and LITERAL build the new version in an
//! unnamed file beside it, which replaces the old one only once its digest matched
//! (a receiver killed before that leaves the old file as it was, and nothing else).
//!
//! A FILE flagged INPLACE (`send --inplace`) rewrites the old file itself, front
//! to back, as rsync's `--inplace` does: no second copy on disk and hard links
//! see the new content, but it is not crash-safe: a transfer cut off, or one whose
//! digest does not match, leaves the file part old, part new.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::attrs::Landing;
use crate::delta::{Apply, Copy, Counts, Signature};
use crate::frame::Entry;
use crate::partial::{same_file_in_place, times, Root};

/// The new version being built.
pub(super) struct Incoming {
    dir: Arc<File>,
    name: Vec<u8>,
    entry: Entry,
    apply: Apply,
    buf: Vec<u8>,
    /// The old file is being rewritten: nothing to rename at the end.
    inplace: bool,
}

/// The older version of `entry`'s file, when a regular, non-empty one is in place,
/// is not complete by the quick check, and an unnamed file can be made beside it:
/// its signature, and the new file.
pub(super) fn open(root: &Root, entry: &Entry) -> io::Result<Option<(Incoming, Signature)>> {
    let (dir, name) = root.parent_of(&entry.path)?;
    // The quick check's complete file is answered by the whole-file path: HAVE complete.
    if entry.complete_ok && same_file_in_place(&dir, &name, entry, Some(&root.landing)) {
        return Ok(None);
    }
    let access = if entry.inplace {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    // NONBLOCK: a FIFO under the name must not hang the open (it is replaced;
    // regular files ignore the flag).
    let flags = access | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let old = match rustix::fs::openat(&*dir, name.as_slice(), flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        // Nothing in place, or a symlink, which is replaced, never followed.
        Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
        // EACCES, EROFS, ETXTBSY: not writable in place (a read-only file, a
        // running program): built beside it instead (the in-place plan suits both).
        Err(Errno::ACCESS | Errno::ROFS | Errno::TXTBSY) if entry.inplace => {
            let beside = Entry {
                inplace: false,
                ..entry.clone()
            };
            return open(root, &beside);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = old.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    if entry.inplace {
        let signature = Signature::of(&old)?;
        let incoming = Incoming {
            dir,
            name,
            entry: entry.clone(),
            apply: Apply::inplace(old)?,
            buf: Vec::new(),
            inplace: true,
        };
        return Ok(Some((incoming, signature)));
    }
    let unnamed = rustix::fs::openat(
        &*dir,
        ".",
        OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    let out = match unnamed {
        Ok(fd) => File::from(fd),
        // EOPNOTSUPP, EISDIR: a file system without O_TMPFILE; the file is sent whole.
        Err(Errno::OPNOTSUPP | Errno::ISDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let signature = Signature::of(&old)?;
    let incoming = Incoming {
        dir,
        name,
        entry: entry.clone(),
        apply: Apply::new(old, out)?,
        buf: Vec::new(),
        inplace: false,
    };
    Ok(Some((incoming, signature)))
}

impl Incoming {
    pub(super) fn path(&self) -> &[u8] {
        &self.entry.path
    }

    pub(super) fn copy(&mut self, copy: Copy) -> io::Result<()> {
        if self
            .entry
            .size
            .is_some_and(|s| copy.new.saturating_add(copy.len) > s)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a COPY past the end of the file",
            ));
        }
        self.apply.copy(copy)
    }

    /// Reads a literal chunk of `len` bytes from `from` and writes it at `offset`.
    pub(super) fn literal(
        &mut self,
        from: &mut impl Read,
        offset: u64,
        len: u32,
    ) -> io::Result<()> {
        self.check_literal(offset, len)?;
        self.buf.resize(len as usize, 0);
        from.read_exact(&mut self.buf)?;
        let bytes = std::mem::take(&mut self.buf);
        let written = self.apply.literal(offset, &bytes);
        self.buf = bytes;
        written
    }

    /// Whether a literal chunk of `len` bytes at `offset` fits the file (before
    /// its bytes are read).
    pub(super) fn check_literal(&self, offset: u64, len: u32) -> io::Result<()> {
        if len > crate::delta::chunk::MAX
            || self
                .entry
                .size
                .is_some_and(|s| offset.saturating_add(u64::from(len)) > s)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a LITERAL of {len} bytes at {offset} does not fit the file"),
            ));
        }
        Ok(())
    }

    /// Writes a literal chunk (checked by [`Incoming::check_literal`]) at `offset`.
    pub(super) fn write_literal(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.apply.literal(offset, bytes)
    }

    /// Checks the new file against the sender's digest, gives it the attributes
    /// `landing` may set, its mode and mtime, and renames it over the old one (in
    /// place: it is there already).
    pub(super) fn finish(self, landing: &Landing, size: u64, digest: u128) -> io::Result<Counts> {
        let counts = self.apply.finish(size, self.entry.block, digest)?;
        let file = self.apply.file();
        landing.apply(file.as_fd(), &self.entry)?;
        rustix::fs::futimens(file, &times(self.entry.mtime))?;
        if self.inplace {
            return Ok(counts);
        }
        let mut part = b".".to_vec();
        part.extend_from_slice(&self.name);
        part.extend_from_slice(b".zcopy-delta");
        let _ = rustix::fs::unlinkat(&*self.dir, part.as_slice(), AtFlags::empty());
        rustix::fs::linkat(
            rustix::fs::CWD,
            format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
            &*self.dir,
            part.as_slice(),
            AtFlags::SYMLINK_FOLLOW,
        )?;
        rustix::fs::renameat(
            &*self.dir,
            part.as_slice(),
            &*self.dir,
            self.name.as_slice(),
        )?;
        Ok(counts)
    }
}
