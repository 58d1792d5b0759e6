//! Where `recv` lands what arrives: every path opened beneath the output directory
//! with `openat2(RESOLVE_BENEATH)`; every file written beside its target and put
//! under its name only once verified: a large one as `.NAME.zcopy-part` with a
//! manifest of verified blocks beside it, so an interrupted transfer can resume;
//! any other as an unnamed `O_TMPFILE` linked into place (nothing is left if the
//! receiver dies), or `.NAME.zcopy-part` where the file system has no `O_TMPFILE`.
//!
//! A manifest (`.NAME.zcopy-manifest`) is text: a header naming the file's size,
//! mtime and block size, then one line per verified block, `INDEX DIGEST`,
//! appended as blocks are checked. A torn last line (a receiver killed mid-write)
//! is ignored; the blocks it lists are hashed again before they are trusted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::attrs::Landing;
use crate::frame::{self, Entry, Have};

mod in_place;
mod root;

pub use in_place::same_file_in_place;
pub(crate) use root::times;
pub use root::Root;

/// The most blocks a file may have: its HAVE bitmap fits in one message.
const MAX_BLOCKS: u64 = 1 << 22;

/// Files larger than this many blocks keep a manifest and can resume.
const RESUMABLE_BLOCKS: u64 = 1;

/// `.NAME.SUFFIX`, or a digest of NAME when that would be longer than NAME_MAX.
fn part_name(name: &[u8], suffix: &str) -> Vec<u8> {
    if name.len() + suffix.len() + 2 <= 255 {
        [b".", name, b".", suffix.as_bytes()].concat()
    } else {
        format!(".{:016x}.{suffix}", xxhash_rust::xxh3::xxh3_64(name)).into_bytes()
    }
}

/// Partial files that cannot be resumed, removed if the receiver is interrupted.
static UNRESUMABLE: Mutex<BTreeMap<u64, PartIn>> = Mutex::new(BTreeMap::new());

/// A partial file's directory and name.
type PartIn = (Arc<File>, Vec<u8>);
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// Removes every partial file that could never be resumed (SIGINT, SIGTERM).
pub fn remove_unresumable() {
    let parts = UNRESUMABLE.lock().unwrap_or_else(|p| p.into_inner());
    for (dir, name) in parts.values() {
        let _ = rustix::fs::unlinkat(&**dir, name.as_slice(), AtFlags::empty());
    }
}

/// One file being received.
pub struct Partial {
    dir: Arc<File>,
    name: Vec<u8>,
    part: Vec<u8>,
    /// Whether the partial file has the name `part` (else it is an unnamed
    /// `O_TMPFILE`, linked into place at the end and gone if the receiver dies).
    named: bool,
    manifest_name: Vec<u8>,
    /// The partial file, open for writing.
    pub file: File,
    /// The FILE message it is received for.
    pub entry: Entry,
    manifest: Mutex<Option<File>>,
    blocks: Mutex<Vec<Option<u128>>>,
    filled: Condvar,
    key: Mutex<Option<u64>>,
    /// A hole was skipped or an old partial reused: the length must be set at the end.
    set_len: AtomicBool,
}

impl Partial {
    /// Opens the partial file for `entry`: a fresh one, or, when the sender asks
    /// and a manifest matches, the interrupted one with the blocks it holds.
    pub fn open(root: &Root, entry: Entry) -> io::Result<(Partial, Have)> {
        let (dir, name) = root.parent_of(&entry.path)?;
        let part = part_name(&name, "zcopy-part");
        let manifest_name = part_name(&name, "zcopy-manifest");
        let block = u64::from(entry.block);
        let resumable = entry.size.is_some_and(|s| s > RESUMABLE_BLOCKS * block);
        let nblocks = entry.size.map_or(0, |s| s.div_ceil(block));
        if nblocks > MAX_BLOCKS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} blocks of {block} bytes are too many", nblocks),
            ));
        }
        let nblocks = nblocks as usize;
        if entry.ask
            && entry.complete_ok
            && same_file_in_place(&dir, &name, &entry, Some(&root.landing))
        {
            let file = File::from(rustix::fs::openat(
                &*dir,
                name.as_slice(),
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )?);
            let partial = Partial {
                dir,
                name,
                part,
                named: false,
                manifest_name,
                file,
                entry,
                manifest: Mutex::new(None),
                blocks: Mutex::new(Vec::new()),
                filled: Condvar::new(),
                key: Mutex::new(None),
                set_len: AtomicBool::new(false),
            };
            return Ok((partial, Have::Complete));
        }
        // Grown as blocks arrive: a hostile size allocates nothing.
        let mut blocks = Vec::new();
        let mut have = Have::Nothing;
        let mut file = None;
        if entry.ask && resumable {
            if let Some((f, held)) = resume(&dir, &part, &manifest_name, &entry)? {
                blocks.resize(nblocks, None);
                for (i, d) in held {
                    blocks[i] = Some(d);
                }
                let mut bits = vec![0u8; nblocks.div_ceil(8)];
                for (i, b) in blocks.iter().enumerate() {
                    if b.is_some() {
                        bits[i / 8] |= 1 << (i % 8);
                    }
                }
                have = Have::Blocks(bits);
                file = Some(f);
            }
        }
        let resuming = file.is_some();
        let (file, named) = match file {
            Some(f) => (f, true),
            None if !resumable => match unnamed_file(&dir)? {
                Some(f) => (f, false),
                None => (create_part(&dir, &part)?, true),
            },
            None => (create_part(&dir, &part)?, true),
        };
        let manifest = if resumable {
            let mut flags = OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC;
            if !resuming {
                flags |= OFlags::TRUNC;
            }
            let mut m = File::from(rustix::fs::openat(
                &*dir,
                manifest_name.as_slice(),
                flags,
                Mode::from_raw_mode(0o600),
            )?);
            if !resuming {
                m.write_all(manifest_header(&entry).as_bytes())?;
            }
            Some(m)
        } else {
            None
        };
        let key = (named && !resumable).then(|| {
            let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
            UNRESUMABLE
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, (dir.clone(), part.clone()));
            key
        });
        let partial = Partial {
            dir,
            name,
            part,
            named,
            manifest_name,
            file,
            entry,
            manifest: Mutex::new(manifest),
            blocks: Mutex::new(blocks),
            filled: Condvar::new(),
            key: Mutex::new(key),
            set_len: AtomicBool::new(resuming),
        };
        Ok((partial, have))
    }

    /// Checks a DATA or HOLE message's place: block-aligned, inside the file.
    pub fn check_block(&self, offset: u64, len: u32) -> io::Result<usize> {
        let block = u64::from(self.entry.block);
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: block at {offset} of {len} bytes {why}",
                    frame::shown(&self.entry.path)
                ),
            )
        };
        if !offset.is_multiple_of(block) || u64::from(len) > block || len == 0 {
            return Err(bad("is not a block"));
        }
        if let Some(size) = self.entry.size {
            if u64::from(len) != block.min(size.saturating_sub(offset)) {
                return Err(bad("is outside the file"));
            }
        }
        let index = usize::try_from(offset / block).map_err(|_| bad("is too far"))?;
        if index as u64 >= MAX_BLOCKS {
            return Err(bad("is too far"));
        }
        Ok(index)
    }

    /// Records a block of zeros that was not written (a HOLE).
    pub fn skipped_hole(&self, index: usize, digest: u128, notify: bool) -> io::Result<()> {
        self.set_len.store(true, Ordering::Relaxed);
        self.verified(index, digest, notify)
    }

    /// Records a verified block (and appends it to the manifest). `notify` wakes a
    /// connection waiting for the file's last blocks (only sessions with extra
    /// connections have one; a wake is a syscall even with nobody waiting).
    pub fn verified(&self, index: usize, digest: u128, notify: bool) -> io::Result<()> {
        if let Some(m) = &mut *self.manifest.lock().unwrap_or_else(|p| p.into_inner()) {
            m.write_all(format!("{index} {digest:032x}\n").as_bytes())?;
        }
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if blocks.len() <= index {
            blocks.resize(index + 1, None);
        }
        blocks[index] = Some(digest);
        if notify {
            self.filled.notify_all();
        }
        Ok(())
    }

    /// Waits until every block of a `size`-byte file is verified (blocks of one
    /// file may arrive on several connections), then checks the file digest, sets
    /// the attributes `landing` may set, mode and mtime, and renames the file
    /// into place.
    pub fn finish(
        &self,
        landing: &Landing,
        size: u64,
        digest: u128,
        wait: Duration,
    ) -> io::Result<()> {
        let block = u64::from(self.entry.block);
        let nblocks = size.div_ceil(block) as usize;
        if self.entry.size.is_some_and(|s| s != size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("END says {size} bytes, FILE said {:?}", self.entry.size),
            ));
        }
        let digests = {
            let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
            let (blocks, timeout) = self
                .filled
                .wait_timeout_while(blocks, wait, |b| {
                    b.len() < nblocks || b[..nblocks].iter().any(Option::is_none)
                })
                .unwrap_or_else(|p| p.into_inner());
            if timeout.timed_out() {
                let got = blocks.iter().flatten().count();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} of {nblocks} blocks arrived before the timeout", got),
                ));
            }
            if blocks.len() > nblocks {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "blocks beyond the end of the file",
                ));
            }
            blocks.iter().flatten().copied().collect::<Vec<_>>()
        };
        let got = frame::file_digest(&digests);
        if got != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("digest mismatch (sent {digest:032x}, received {got:032x})"),
            ));
        }
        // Trailing holes were never written: the length makes them.
        if self.set_len.load(Ordering::Relaxed) {
            self.file.set_len(size)?;
        }
        landing.apply(self.file.as_fd(), &self.entry)?;
        rustix::fs::futimens(&self.file, &times(self.entry.mtime))?;
        if !self.named {
            let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
            let link = |name: &[u8]| {
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    fd.as_str(),
                    &*self.dir,
                    name,
                    AtFlags::SYMLINK_FOLLOW,
                )
            };
            match link(&self.name) {
                Ok(()) => {
                    self.unregister();
                    return Ok(());
                }
                // The target exists: link under the part name and rename over it.
                Err(Errno::EXIST) => {
                    let _ =
                        rustix::fs::unlinkat(&*self.dir, self.part.as_slice(), AtFlags::empty());
                    link(&self.part)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        rustix::fs::renameat(
            &*self.dir,
            self.part.as_slice(),
            &*self.dir,
            self.name.as_slice(),
        )?;
        if self
            .manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
        {
            let _ =
                rustix::fs::unlinkat(&*self.dir, self.manifest_name.as_slice(), AtFlags::empty());
        }
        self.unregister();
        Ok(())
    }

    /// Gives up on the file: a resumable partial is kept with its manifest (and a
    /// line saying so is returned); any other partial is removed.
    pub fn abandon(&self) -> Option<String> {
        self.unregister();
        if self
            .manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
            let held = blocks.iter().flatten().count();
            let all = self
                .entry
                .size
                .map_or(0, |s| s.div_ceil(u64::from(self.entry.block)));
            Some(format!(
                "{}: kept the partial file {} ({held} of {all} blocks verified); send it again to resume",
                frame::shown(&self.entry.path),
                frame::shown(&self.part),
            ))
        } else {
            if self.named {
                let _ = rustix::fs::unlinkat(&*self.dir, self.part.as_slice(), AtFlags::empty());
            }
            None
        }
    }

    /// A file already complete under its real name (`Have::Complete`): nothing to do.
    pub fn skip(&self) {
        self.unregister();
    }

    fn unregister(&self) {
        if let Some(key) = self.key.lock().unwrap_or_else(|p| p.into_inner()).take() {
            UNRESUMABLE
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}

/// An unnamed file in `dir` (`O_TMPFILE`), or `None` where the file system has none.
fn unnamed_file(dir: &File) -> io::Result<Option<File>> {
    match rustix::fs::openat(
        dir,
        ".",
        OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // EOPNOTSUPP: a file system without O_TMPFILE (NFS, FUSE, older ones);
        // EISDIR: a kernel that predates it (3.11).
        Err(Errno::OPNOTSUPP | Errno::ISDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates (or truncates) the partial file `part` in `dir`.
fn create_part(dir: &File, part: &[u8]) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        part,
        OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(File::from(fd))
}

fn manifest_header(entry: &Entry) -> String {
    format!(
        "zcopy-manifest 1 size={} mtime={}.{:09} block={}\n",
        entry.size.unwrap_or(0),
        entry.mtime.0,
        entry.mtime.1,
        entry.block
    )
}

/// Block indexes and their digests.
type HeldBlocks = Vec<(usize, u128)>;

/// The partial file and the blocks it verifiably holds, if its manifest describes
/// the same file (size, mtime, block size). Each listed block is hashed again, so
/// a block the manifest lists but the disk lost is sent again.
fn resume(
    dir: &File,
    part: &[u8],
    manifest: &[u8],
    entry: &Entry,
) -> io::Result<Option<(File, HeldBlocks)>> {
    let Ok(m) = rustix::fs::openat(
        dir,
        manifest,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Ok(None);
    };
    let mut text = String::new();
    if File::from(m).read_to_string(&mut text).is_err() {
        return Ok(None);
    }
    let mut lines = text.split_inclusive('\n');
    if lines.next() != Some(manifest_header(entry).as_str()) {
        return Ok(None);
    }
    let Ok(file) = rustix::fs::openat(
        dir,
        part,
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Ok(None);
    };
    let file = File::from(file);
    let size = entry.size.unwrap_or(0);
    let block = u64::from(entry.block);
    let mut held = Vec::new();
    let mut buf = zcopy::engine::direct::AlignedBuf::new(256 << 10, 4096);
    for line in lines.filter(|l| l.ends_with('\n')) {
        let Some((index, digest)) = line.trim_end().split_once(' ') else {
            continue;
        };
        let (Ok(index), Ok(digest)) = (index.parse::<u64>(), u128::from_str_radix(digest, 16))
        else {
            continue;
        };
        let Some(offset) = index.checked_mul(block).filter(|&o| o < size) else {
            continue;
        };
        let len = block.min(size - offset);
        // A block that cannot be read back is sent again.
        if hash_range(&file, offset, len, &mut buf).is_ok_and(|d| d == digest) {
            held.push((index as usize, digest));
        }
    }
    Ok(Some((file, held)))
}

mod hash;

pub use hash::{file_digest_of, hash_range};
