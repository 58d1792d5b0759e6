//! The output directory: every path opened beneath it with
//! `openat2(RESOLVE_BENEATH)`, the directories entries landed in last kept open.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::part_name;
use crate::frame;

/// The output directory, and the directories entries landed in last.
pub struct Root {
    dir: File,
    path: std::path::PathBuf,
    /// `-o FILE`: the one file of the transfer lands under this name.
    single: Option<Vec<u8>>,
    recent: Mutex<Vec<(Vec<u8>, Arc<File>)>>,
}

/// Directories kept open for the entries that follow (trees arrive directory by
/// directory, and the landing threads work in a few at a time).
const RECENT_DIRS: usize = 8;

impl Root {
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

    pub fn is_single(&self) -> bool {
        self.single.is_some()
    }

    /// Creates directory `rel` (an existing directory is fine).
    pub fn mkdir(&self, rel: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        match rustix::fs::mkdirat(&*dir, name.as_slice(), Mode::from_raw_mode(0o700)) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => {
                let st = rustix::fs::statat(&*dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    Ok(())
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

    /// Sets a directory's mode and mtime, after its content arrived (adding entries
    /// changes a directory's mtime).
    pub fn finish_dir(&self, rel: &[u8], mode: u32, mtime: (i64, u32)) -> io::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        rustix::fs::chmodat(
            &*dir,
            name.as_slice(),
            Mode::from_raw_mode(mode & 0o7777),
            AtFlags::empty(),
        )?;
        rustix::fs::utimensat(
            &*dir,
            name.as_slice(),
            &times(mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    /// Creates symlink `rel` pointing at `target` (replacing what was there, atomically).
    pub fn symlink(&self, rel: &[u8], target: &[u8], mtime: (i64, u32)) -> io::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        let temp = part_name(&name, "link");
        let _ = rustix::fs::unlinkat(&*dir, temp.as_slice(), AtFlags::empty());
        rustix::fs::symlinkat(target, &*dir, temp.as_slice())?;
        rustix::fs::utimensat(
            &*dir,
            temp.as_slice(),
            &times(mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        rustix::fs::renameat(&*dir, temp.as_slice(), &*dir, name.as_slice())?;
        Ok(())
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

pub(super) fn times(mtime: (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.0,
        tv_nsec: mtime.1.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
