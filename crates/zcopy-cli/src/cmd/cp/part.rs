//! Where a new file is written: under no name (`O_TMPFILE`) or a temporary one
//! beside its target, and put in place only when complete.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, RenameFlags, CWD};

use zcopy::place::parent_dir;

/// A target's directory, open, and the target's name in it.
pub type Target<'a> = (BorrowedFd<'a>, &'a OsStr);

/// A name beside `path` for a file, link or node being made: `.NAME.PID-N.zcopy-part`,
/// N counting up within this process.
pub fn temp_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let name = path
        .file_name()
        .map_or_else(|| "zcopy".into(), |n| n.to_string_lossy().into_owned());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    parent_dir(path).join(format!(".{name}.{pid}-{n}.zcopy-part"))
}

/// A file being written beside its target, never visible under the target's name
/// until it is complete. Where the file system allows, it is made with `O_TMPFILE`
/// (no name at all; nothing is left behind if the copy dies) and linked into place
/// by `linkat`: one directory update, as when GNU cp creates the file itself. A
/// target that exists is replaced by a rename from a temporary name instead, as
/// is everything on file systems without `O_TMPFILE`. With `--inplace` a new file
/// is made under the target's name itself, and removed if the copy fails.
pub struct PartFile {
    /// The temporary name, when the file has one (the target's, in place).
    path: Option<PathBuf>,
    file: File,
    persisted: bool,
    in_place: bool,
}

impl PartFile {
    /// Creates it with `mode` (less the umask), under `target` itself if
    /// `in_place` and nothing is there. `at`: the target's directory, open, and
    /// its name there.
    pub fn create(
        target: &Path,
        at: Option<Target<'_>>,
        mode: u32,
        in_place: bool,
    ) -> std::io::Result<PartFile> {
        use rustix::fs::OFlags;
        let named = |path: &Path| {
            rustix::fs::open(
                path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            )
        };
        if in_place {
            let made = match at {
                Some((dir, name)) => rustix::fs::openat(
                    dir,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode),
                ),
                None => named(target),
            };
            match made {
                Ok(fd) => {
                    return Ok(PartFile {
                        path: Some(target.to_path_buf()),
                        file: File::from(fd),
                        persisted: false,
                        in_place: true,
                    })
                }
                // Made since it was looked for: replaced as any existing target.
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let unnamed_flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
        let unnamed = match at {
            Some((dir, _)) => {
                rustix::fs::openat(dir, ".", unnamed_flags, Mode::from_raw_mode(mode))
            }
            None => rustix::fs::open(parent_dir(target), unnamed_flags, Mode::from_raw_mode(mode)),
        };
        match unnamed {
            Ok(fd) => {
                return Ok(PartFile {
                    path: None,
                    file: File::from(fd),
                    persisted: false,
                    in_place: false,
                })
            }
            // EOPNOTSUPP: a file system without O_TMPFILE (NFS, FUSE, older ones);
            // EISDIR: a kernel that predates it (3.11).
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            let path = temp_name(target);
            match named(&path) {
                Ok(fd) => {
                    return Ok(PartFile {
                        path: Some(path),
                        file: File::from(fd),
                        persisted: false,
                        in_place: false,
                    })
                }
                // Left by another process with our pid long ago: take the next name.
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn as_file(&self) -> &File {
        &self.file
    }

    /// Puts the file in place under `target` (`at`, as for `create`). Something
    /// found there is a file made since the target was looked for, replaced as
    /// it would have been, or a dangling symlink, which is never written through.
    pub fn persist(mut self, target: &Path, at: Option<Target<'_>>) -> Result<(), Persist> {
        if self.in_place {
            self.persisted = true;
            return Ok(());
        }
        let (dir, name) = at.unwrap_or((CWD, target.as_os_str()));
        let is_symlink = || {
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
        };
        if self.path.is_none() {
            if link_by_descriptor(&self.file, dir, name)? {
                self.persisted = true;
                return Ok(());
            }
            let fd = format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&self.file)
            );
            let linked = rustix::fs::linkat(CWD, fd.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW);
            match linked {
                Ok(()) => {
                    self.persisted = true;
                    return Ok(());
                }
                Err(rustix::io::Errno::EXIST) if is_symlink() => return Err(Persist::Dangling),
                // The target exists: link under a temporary name and rename over it.
                Err(rustix::io::Errno::EXIST) => loop {
                    let path = temp_name(target);
                    match rustix::fs::linkat(CWD, fd.as_str(), CWD, &path, AtFlags::SYMLINK_FOLLOW)
                    {
                        Ok(()) => {
                            self.path = Some(path);
                            break;
                        }
                        Err(rustix::io::Errno::EXIST) => continue,
                        Err(e) => return Err(Persist::Io(e.into())),
                    }
                },
                Err(e) => return Err(Persist::Io(e.into())),
            }
        } else if let Some(path) = &self.path {
            let placed = rustix::fs::renameat_with(CWD, path, CWD, target, RenameFlags::NOREPLACE);
            match placed {
                Ok(()) => {
                    self.persisted = true;
                    return Ok(());
                }
                Err(rustix::io::Errno::EXIST) if is_symlink() => return Err(Persist::Dangling),
                // EEXIST: a file made meanwhile, replaced below; EINVAL: a file
                // system without RENAME_NOREPLACE.
                Err(rustix::io::Errno::EXIST | rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(Persist::Io(e.into())),
            }
        }
        let path = self.path.as_ref().expect("a named part file");
        std::fs::rename(path, target)?;
        self.persisted = true;
        Ok(())
    }
}

/// Why a part file was not put in place.
#[derive(Debug)]
pub enum Persist {
    /// A symlink to nothing is at the target: GNU cp will not write through one.
    Dangling,
    Io(std::io::Error),
}

impl From<std::io::Error> for Persist {
    fn from(e: std::io::Error) -> Persist {
        Persist::Io(e)
    }
}

/// Links the unnamed file `file` as `name` in `dir` with `linkat(AT_EMPTY_PATH)`,
/// which needs no path walk through /proc; false where the kernel refuses it to
/// this process (it takes `CAP_DAC_READ_SEARCH`: `ENOENT` without it), remembered
/// so that the refusal is met once, or where the target exists.
fn link_by_descriptor(file: &File, dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<bool> {
    static REFUSED: AtomicBool = AtomicBool::new(false);
    if REFUSED.load(Ordering::Relaxed) {
        return Ok(false);
    }
    match rustix::fs::linkat(file, "", dir, name, AtFlags::EMPTY_PATH) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM) => {
            REFUSED.store(true, Ordering::Relaxed);
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.as_ref().filter(|_| !self.persisted) {
            let _ = std::fs::remove_file(path);
        }
    }
}
