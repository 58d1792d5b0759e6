//! Mode, ownership, ACLs, extended attributes and times kept on a copy.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use rustix::fs::{Mode, Timespec, Timestamps};

use super::words::q;
use super::Copier;

impl Copier {
    /// Mode, and with `--preserve`: ownership, xattrs and times, in the order that
    /// keeps each (chown clears set-user-ID bits, so mode comes after it; times last).
    /// Where the owner cannot be kept (an ordinary user's copy of someone else's
    /// file), the group is kept if it may be and the set-user-ID, set-group-ID
    /// and sticky bits are dropped, as GNU cp drops them: the copy must not run
    /// as its new owner with privileges meant for the old one.
    pub(super) fn keep_attributes(
        &self,
        src: &File,
        file: &File,
        path: &Path,
        meta: &Metadata,
        mode: u32,
        current: u32,
    ) -> Result<()> {
        let mut mode = mode;
        if self.set.preserve.ownership {
            let (uid, gid) = (
                rustix::fs::Uid::from_raw(meta.uid()),
                rustix::fs::Gid::from_raw(meta.gid()),
            );
            match rustix::fs::fchown(file, Some(uid), Some(gid)) {
                Ok(()) => {}
                Err(rustix::io::Errno::PERM | rustix::io::Errno::INVAL) => {
                    let _ = rustix::fs::fchown(file, None, Some(gid));
                    mode &= !0o7000;
                }
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("failed to preserve ownership for {}", q(path)))
                }
            }
        }
        if self.set.preserve.mode && !self.set.preserve.xattr {
            // GNU keeps ACLs with the mode; --preserve=xattr copies them anyway.
            copy_acls(src, file, meta.is_dir())
                .with_context(|| format!("preserving permissions for {}", q(path)))?;
        }
        if self.set.preserve.xattr {
            if let Err(e) = copy_xattrs(src, file) {
                if !self.set.preserve.quiet_xattr {
                    return Err(std::io::Error::from(e)).with_context(|| {
                        format!("failed to preserve extended attributes for {}", q(path))
                    });
                }
            }
        }
        // `current` is the mode the file was made with: set it only where that
        // differs (the umask took something away, a directory was made private).
        if current != mode || (self.set.preserve.ownership && mode & 0o6000 != 0) {
            rustix::fs::fchmod(file, Mode::from_raw_mode(mode))
                .with_context(|| format!("preserving permissions for {}", q(path)))?;
        }
        if self.set.preserve.timestamps {
            rustix::fs::futimens(file, &timestamps(meta))
                .with_context(|| format!("preserving times for {}", q(path)))?;
        }
        Ok(())
    }
}

/// The POSIX ACLs of `src` onto `dst` (the access ACL, and a directory's default
/// one), where it has them and the file systems keep them.
fn copy_acls(src: &File, dst: &File, dir: bool) -> std::io::Result<()> {
    let names: &[&str] = if dir {
        &["system.posix_acl_access", "system.posix_acl_default"]
    } else {
        &["system.posix_acl_access"]
    };
    let mut value = vec![0u8; 4096];
    for name in names {
        let len = match rustix::fs::fgetxattr(src, *name, &mut value[..]) {
            Ok(len) => len,
            Err(rustix::io::Errno::RANGE) => {
                value.resize(rustix::fs::fgetxattr_query(src, *name)?, 0);
                rustix::fs::fgetxattr(src, *name, &mut value[..])?
            }
            // No ACL beyond the mode, or a file system without them.
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::fsetxattr(dst, *name, &value[..len], rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Every extended attribute of `src` onto `dst`.
fn copy_xattrs(src: &File, dst: &File) -> rustix::io::Result<()> {
    let mut names = vec![0u8; rustix::fs::flistxattr_query(src)?];
    let len = rustix::fs::flistxattr(src, &mut names[..])?;
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; rustix::fs::fgetxattr_query(src, name)?];
        let len = rustix::fs::fgetxattr(src, name, &mut value[..])?;
        rustix::fs::fsetxattr(dst, name, &value[..len], rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

pub(super) fn timestamps(meta: &Metadata) -> Timestamps {
    let time = |secs: i64, nsecs: i64| Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    };
    Timestamps {
        last_access: time(meta.atime(), meta.atime_nsec()),
        last_modification: time(meta.mtime(), meta.mtime_nsec()),
    }
}
