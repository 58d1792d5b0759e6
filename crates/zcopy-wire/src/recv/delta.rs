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
use crate::delta::{chunk, Apply, Chunk, Copy, Counts, Signature, SignatureCache};
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
    /// The old version's signature (what answered the FILE).
    old: Signature,
    /// The old version, as it was: its cache entry goes when it is replaced.
    old_stat: rustix::fs::Stat,
    /// Its signature came from the cache, not from a read.
    cached: bool,
    /// The new file's chunks, as the COPYs and LITERALs reveal them; `None` once
    /// they do not (a reference that does not fall on old chunks' bounds).
    new: Option<Signature>,
    cache: Option<SignatureCache>,
}

/// The older version of `entry`'s file, when a regular, non-empty one is in place,
/// is not complete by the quick check, and an unnamed file can be made beside it:
/// its signature (from `cache` while it holds the file's), and the new file.
pub(super) fn open(
    root: &Root,
    entry: &Entry,
    cache: Option<&SignatureCache>,
) -> io::Result<Option<(Incoming, Signature)>> {
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
            return open(root, &beside, cache);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = old.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    let old_stat = rustix::fs::fstat(&old)?;
    let kept = cache.and_then(|c| c.load(&old));
    let cached = kept.is_some();
    let signature = match kept {
        Some(sig) => sig,
        None => Signature::of(&old)?,
    };
    let incoming = |apply, inplace| Incoming {
        dir: dir.clone(),
        name,
        entry: entry.clone(),
        apply,
        buf: Vec::new(),
        inplace,
        old: signature.clone(),
        old_stat,
        cached,
        new: Some(Signature::default()),
        cache: cache.cloned(),
    };
    if entry.inplace {
        let incoming = incoming(Apply::inplace(old)?, true);
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
    let incoming = incoming(Apply::new(old, out)?, false);
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
        self.follow_copy(copy);
        self.apply.copy(copy)
    }

    /// The old chunks a COPY takes, as the new file's next chunks.
    fn follow_copy(&mut self, copy: Copy) {
        let Some(new) = &mut self.new else { return };
        let old = &self.old.chunks;
        let mut at = old.binary_search_by_key(&copy.old, |c| c.offset).ok();
        let mut left = copy.len;
        while left > 0 {
            match at.and_then(|i| old.get(i)) {
                Some(c)
                    if new.size() == copy.new + (copy.len - left) && u64::from(c.len) <= left =>
                {
                    new.chunks.push(Chunk {
                        offset: new.size(),
                        ..*c
                    });
                    left -= u64::from(c.len);
                    at = at.map(|i| i + 1);
                }
                _ => {
                    self.new = None;
                    return;
                }
            }
        }
    }

    /// A LITERAL's bytes, as the new file's next chunk.
    fn follow_literal(&mut self, offset: u64, bytes: &[u8]) {
        match &mut self.new {
            Some(new) if new.size() == offset && !bytes.is_empty() => new.chunks.push(Chunk {
                offset,
                len: bytes.len() as u32,
                digest: chunk::digest(bytes),
            }),
            _ => self.new = None,
        }
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
        self.follow_literal(offset, &bytes);
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
        self.follow_literal(offset, bytes);
        self.apply.literal(offset, bytes)
    }

    /// Checks the new file against the sender's digest, gives it the attributes
    /// `landing` may set, its mode and mtime, and renames it over the old one (in
    /// place: it is there already).
    pub(super) fn finish(self, landing: &Landing, size: u64, digest: u128) -> io::Result<Counts> {
        let mut counts = self.apply.finish(size, self.entry.block, digest)?;
        if self.cached {
            counts.cached = self.old.size();
        }
        let file = self.apply.file();
        landing.apply(file.as_fd(), &self.entry)?;
        rustix::fs::futimens(file, &times(self.entry.mtime))?;
        if self.inplace {
            self.keep_signature();
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
        if let Some(cache) = &self.cache {
            cache.forget(&self.old_stat);
        }
        self.keep_signature();
        Ok(counts)
    }

    /// Keeps the new file's signature for its next delta (after the rename,
    /// which changes its ctime); a cache that cannot be written is no error.
    fn keep_signature(&self) {
        if let (Some(cache), Some(sig)) = (&self.cache, &self.new) {
            let _ = cache.store(self.apply.file(), sig);
        }
    }
}
