//! Putting new files in place: a temporary file beside the target, named so that
//! listings and servers recognise it, given the mode a new file gets, then renamed
//! over the target when complete.
//!
//! This is for new files and for receivers. Replacing an existing file by rename
//! is not how `cp` writes one (it opens and truncates, so the file's permissions,
//! owner and hard links stay): [`crate::copy_file()`] only places new files.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// The directory a path is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new temporary file beside `path` (mode 0600), named `.NAME.XXXXXX.zcopy-part`,
/// removed when dropped unless it is persisted (renamed) over `path`. Its error
/// does not name the temporary path: the caller names the real target.
pub fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or("zcopy".as_ref()));
    prefix.push(".");
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".zcopy-part")
        .tempfile_in(parent_dir(path))
        // tempfile appends ` at path "..."` to the OS error's own words.
        .map_err(|e| match e.to_string().split_once(" at path ") {
            Some((words, _)) => io::Error::new(e.kind(), words.to_string()),
            None => e,
        })
}

/// The process's umask, from /proc/self/status: reading it with umask(2) means
/// setting it, which would race with any other thread creating a file meanwhile.
/// Without procfs, set and put straight back.
pub fn umask() -> u32 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        });
    from_proc.unwrap_or_else(|| {
        let mask = rustix::process::umask(rustix::fs::Mode::empty());
        rustix::process::umask(mask);
        mask.bits()
    })
}

/// Gives a finished temporary file (made 0600) the mode a new file gets from
/// `>` or `curl -o`: 0666 less the umask.
pub fn open_up(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))
}

/// A new file being written: unnamed (`O_TMPFILE`) where the file system allows,
/// else under a temporary name that is removed if it is dropped before [`link`](Placement::link).
pub struct Placement {
    /// The file to write, opened write-only.
    pub file: File,
    temp: Option<std::path::PathBuf>,
}

impl Placement {
    /// An unnamed file with `mode` in the directory `dst` will be in.
    pub fn create(dst: &Path, mode: Mode) -> io::Result<Placement> {
        let dir = parent_dir(dst);
        let flags = OFlags::WRONLY | OFlags::CLOEXEC;
        match rustix::fs::open(dir, flags | OFlags::TMPFILE, mode) {
            Ok(fd) => Ok(Placement {
                file: File::from(fd),
                temp: None,
            }),
            // EOPNOTSUPP, EISDIR: a file system without O_TMPFILE (or an old kernel).
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR) => {
                let mut name = std::ffi::OsString::from(".");
                name.push(dst.file_name().unwrap_or_default());
                name.push(format!(".{}.zcopy-part", std::process::id()));
                let temp = dir.join(name);
                let fd = rustix::fs::open(&temp, flags | OFlags::CREATE | OFlags::EXCL, mode)?;
                Ok(Placement {
                    file: File::from(fd),
                    temp: Some(temp),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Puts the complete file under `dst`, replacing what was there.
    pub fn link(mut self, dst: &Path) -> io::Result<()> {
        if let Some(temp) = self.temp.take() {
            return std::fs::rename(&temp, dst).inspect_err(|_| {
                let _ = std::fs::remove_file(&temp);
            });
        }
        use std::os::fd::AsRawFd;
        let proc = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let link = |name: &Path| {
            rustix::fs::linkat(
                rustix::fs::CWD,
                proc.as_str(),
                rustix::fs::CWD,
                name,
                rustix::fs::AtFlags::SYMLINK_FOLLOW,
            )
        };
        match link(dst) {
            Ok(()) => Ok(()),
            // The target exists: link beside it, then rename over it.
            Err(rustix::io::Errno::EXIST) => {
                let mut name = dst.as_os_str().to_owned();
                name.push(format!(".{}.zcopy-part", std::process::id()));
                let temp = std::path::PathBuf::from(name);
                link(&temp)?;
                std::fs::rename(&temp, dst).inspect_err(|_| {
                    let _ = std::fs::remove_file(&temp);
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_file(temp);
        }
    }
}
