//! The output directory: every path opened beneath it with
//! `openat2(RESOLVE_BENEATH)`, the directories entries landed in last kept open.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use std::os::fd::AsFd;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::part_name;
use crate::attrs::Landing;
use crate::frame::{self, Entry, EntryKind};

/// The output directory, and the directories entries landed in last.
pub struct Root {
    dir: File,
    path: std::path::PathBuf,
    /// `-o FILE`: the one file of the transfer lands under this name.
    single: Option<Vec<u8>>,
    recent: Mutex<Vec<(Vec<u8>, Arc<File>)>>,
    /// What this receiver may set of an entry's attributes.
    pub landing: Landing,
}

/// Directories kept open for the entries that follow (trees arrive directory by
/// directory, and the landing threads work in a few at a time).
const RECENT_DIRS: usize = 8;

impl Root {
    /// Opens the output directory `dir_path`; with `single` (`-o FILE`), the one
    /// file of the transfer lands under that name.
    pub fn open(dir_path: &std::path::Path, single: Option<Vec<u8>>) -> io::Result<Root> {
        let dir = rustix::fs::open(
            dir_path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            dir: File::from(dir),
            path: dir_path.to_path_buf(),
            single,
            recent: Mutex::new(Vec::new()),
            landing: Landing::new(),
        })
    }

    /// Closes the directories kept open: a deletion may have removed them.
    pub fn forget_dirs(&self) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Where the output directory is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The directory `rel` beneath the root, opened for reading through no
    /// symlink at all: what `--delete` lists and removes entries of.
    pub fn open_dir(&self, rel: &[u8]) -> io::Result<File> {
        let dir = rustix::fs::openat2(
            &self.dir,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?;
        Ok(File::from(dir))
    }

    /// The directory `rel` lands in (opened beneath the root, never through a
    /// symlink that leaves it) and its last component.
    pub fn parent_of(&self, rel: &[u8]) -> io::Result<(Arc<File>, Vec<u8>)> {
        if let Some(single) = &self.single {
            let dir = rustix::io::fcntl_dupfd_cloexec(&self.dir, 0)?;
            return Ok((Arc::new(File::from(dir)), single.clone()));
        }
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(at) => (&rel[..at], &rel[at + 1..]),
            None => (&b"."[..], rel),
        };
        if let Some((_, dir)) = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(path, _)| path == parent)
        {
            return Ok((dir.clone(), name.to_vec()));
        }
        let dir = rustix::fs::openat2(
            &self.dir,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| beneath_error(e, parent))?;
        let dir = Arc::new(File::from(dir));
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_DIRS {
            recent.remove(0);
        }
        recent.push((parent.to_vec(), dir.clone()));
        Ok((dir, name.to_vec()))
    }

    /// Whether the transfer's one file has a name of its own (`-o FILE`).
    pub fn is_single(&self) -> bool {
        self.single.is_some()
    }

    /// Creates directory `rel` (an existing directory is fine); whether it made
    /// it (then nothing of the sender's can be in place in it).
    pub fn mkdir(&self, rel: &[u8]) -> io::Result<bool> {
        let (dir, name) = self.parent_of(rel)?;
        match rustix::fs::mkdirat(&*dir, name.as_slice(), Mode::from_raw_mode(0o700)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => {
                let st = rustix::fs::statat(&*dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    Ok(false)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a directory's attributes, mode and mtime, after its content arrived
    /// (adding entries changes a directory's mtime).
    pub fn finish_dir(&self, entry: &Entry) -> io::Result<()> {
        let (dir, name) = self.parent_of(&entry.path)?;
        let fd = rustix::fs::openat(
            &*dir,
            name.as_slice(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        self.landing.apply(fd.as_fd(), entry)?;
        rustix::fs::futimens(&fd, &times(entry.mtime))?;
        Ok(())
    }

    /// Creates symlink `entry.path` pointing at `entry.target`, with its owner
    /// and mtime (replacing what was there, atomically).
    pub fn symlink(&self, entry: &Entry) -> io::Result<()> {
        let (dir, name) = self.parent_of(&entry.path)?;
        let temp = part_name(&name, "link");
        let _ = rustix::fs::unlinkat(&*dir, temp.as_slice(), AtFlags::empty());
        rustix::fs::symlinkat(entry.target.as_slice(), &*dir, temp.as_slice())?;
        self.settle_temp(&dir, &temp, &name, entry)
    }

    /// Makes the FIFO, socket or device `entry` (`-D`), with its attributes,
    /// under a temporary name, then renames it over what was there.
    pub fn special(&self, entry: &Entry) -> io::Result<()> {
        let (dir, name) = self.parent_of(&entry.path)?;
        let kind = match entry.kind {
            EntryKind::Fifo => FileType::Fifo,
            EntryKind::Socket => FileType::Socket,
            EntryKind::CharDevice => FileType::CharacterDevice,
            _ => FileType::BlockDevice,
        };
        let temp = part_name(&name, "special");
        let _ = rustix::fs::unlinkat(&*dir, temp.as_slice(), AtFlags::empty());
        let rdev = entry.attrs.rdev.unwrap_or(0);
        rustix::fs::mknodat(
            &*dir,
            temp.as_slice(),
            kind,
            Mode::from_raw_mode(0o600),
            rdev,
        )?;
        self.settle_temp(&dir, &temp, &name, entry)
    }

    /// A symlink or a special file made under `temp`: its attributes and
    /// mtime, then its real name (removed if any of it fails).
    fn settle_temp(&self, dir: &File, temp: &[u8], name: &[u8], entry: &Entry) -> io::Result<()> {
        let settled = (|| {
            let fd = rustix::fs::openat(
                dir,
                temp,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            self.landing.apply(fd.as_fd(), entry)?;
            rustix::fs::utimensat(dir, temp, &times(entry.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
            rustix::fs::renameat(dir, temp, dir, name)?;
            Ok(())
        })();
        if settled.is_err() {
            let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
        }
        settled
    }

    /// Makes `entry.path` another name of `entry.target` (`-H`), unless it is
    /// one already; returns whether it was made.
    pub fn hard_link(&self, entry: &Entry) -> io::Result<bool> {
        let (to_dir, to_name) = self.parent_of(&entry.target)?;
        let (dir, name) = self.parent_of(&entry.path)?;
        let first = rustix::fs::statat(&*to_dir, to_name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
        if let Ok(st) = rustix::fs::statat(&*dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            if (st.st_dev, st.st_ino) == (first.st_dev, first.st_ino) {
                return Ok(false);
            }
        }
        let temp = part_name(&name, "link");
        let _ = rustix::fs::unlinkat(&*dir, temp.as_slice(), AtFlags::empty());
        rustix::fs::linkat(
            &*to_dir,
            to_name.as_slice(),
            &*dir,
            temp.as_slice(),
            AtFlags::empty(),
        )?;
        if let Err(e) = rustix::fs::renameat(&*dir, temp.as_slice(), &*dir, name.as_slice()) {
            let _ = rustix::fs::unlinkat(&*dir, temp.as_slice(), AtFlags::empty());
            return Err(e.into());
        }
        Ok(true)
    }
}

/// EXDEV and ELOOP from openat2 mean the path tried to leave the directory.
fn beneath_error(e: Errno, path: &[u8]) -> io::Error {
    match e {
        Errno::XDEV | Errno::LOOP => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refused file name {:?}: it leads outside the output directory",
                frame::shown(path)
            ),
        ),
        e => io::Error::from(e),
    }
}

pub(crate) fn times(mtime: (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.0,
        tv_nsec: mtime.1.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
