//! Attributes beyond mode and mtime, as rsync's `-o -g -X -A -D` keep them:
//! read by the sender ([`read`]) into an entry's [`Attrs`], set by the receiver
//! ([`Landing`]) with owners and groups mapped by name ([`Ids`]) and ACLs
//! rebuilt for the receiver's numbers ([`acl`]).
//!
//! Extended attributes travel in the `user.` namespace, and `trusted.` and
//! `security.` too where the sender is root (and land there only where the
//! receiver is root); never zcopy's own (`user.zcopy.*`), never `system.`
//! (the ACLs, which `-A` carries). Symlinks carry none (Linux refuses `user.`
//! on them).

pub mod acl;
mod apply;
mod ids;

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::frame::{AclEntry, Attrs, EntryKind, ACL_GROUP};

pub use apply::{Changes, Landing};
pub use ids::Ids;

/// Which attributes a sender keeps (all off: modes, mtimes and symlinks only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Keep {
    /// The owner, by name (`-o`).
    pub owner: bool,
    /// The group, by name (`-g`).
    pub group: bool,
    /// Owners and groups by number, not by name (`--numeric-ids`).
    pub numeric_ids: bool,
    /// Names of one file arrive as hard links of one another (`-H`).
    pub hard_links: bool,
    /// Extended attributes (`-X`).
    pub xattrs: bool,
    /// POSIX ACLs (`-A`).
    pub acls: bool,
    /// Block and character devices (`--devices`).
    pub devices: bool,
    /// FIFOs and sockets (`--specials`).
    pub specials: bool,
}

impl Keep {
    /// Whether anything beyond what protocol 2 carries is kept.
    pub fn any(&self) -> bool {
        self.owner
            || self.group
            || self.hard_links
            || self.xattrs
            || self.acls
            || self.devices
            || self.specials
    }
}

/// Whether the xattr `name` travels (and lands), on a side that is root or not.
pub fn carried(name: &[u8], root: bool) -> bool {
    if let Some(rest) = name.strip_prefix(b"user.") {
        return !rest.starts_with(b"zcopy.");
    }
    root && (name.starts_with(b"trusted.") || name.starts_with(b"security."))
}

/// The attributes `keep` asks for of the entry at `path` (not followed), of
/// kind `kind`, with `meta` its lstat.
pub fn read(
    path: &Path,
    meta: &Metadata,
    kind: EntryKind,
    keep: &Keep,
    ids: &Ids,
) -> io::Result<Attrs> {
    let mut attrs = Attrs::default();
    if keep.owner {
        attrs.owner = Some(ids.named(false, meta.uid(), keep.numeric_ids));
    }
    if keep.group {
        attrs.group = Some(ids.named(true, meta.gid(), keep.numeric_ids));
    }
    if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        attrs.rdev = Some(meta.rdev());
    }
    if kind == EntryKind::Symlink {
        return Ok(attrs);
    }
    let root = rustix::process::geteuid().is_root();
    if keep.xattrs {
        let mut list = Vec::new();
        let on = xattr::On::Path(path);
        for name in xattr::list(on)? {
            if carried(&name, root) {
                if let Some(value) = xattr::get(on, &name)? {
                    list.push((name, value));
                }
            }
        }
        attrs.xattrs = Some(list);
    }
    if keep.acls {
        let named = |mut entries: Vec<AclEntry>| {
            for e in &mut entries {
                if let Some(who) = &mut e.who {
                    *who = ids.named(e.tag == ACL_GROUP, who.id, keep.numeric_ids);
                }
            }
            entries
        };
        let of = |name: &str| -> io::Result<Vec<AclEntry>> {
            Ok(xattr::get(xattr::On::Path(path), name.as_bytes())?
                .and_then(|v| acl::parse(&v))
                .map(named)
                .unwrap_or_default())
        };
        attrs.acl = Some(of(acl::ACCESS)?);
        if kind == EntryKind::Dir {
            attrs.default_acl = Some(of(acl::DEFAULT)?);
        }
    }
    Ok(attrs)
}

/// The xattr calls, on a path not following a last symlink (the sender's) or
/// on an open file (the receiver's), each asking the size first.
pub(crate) mod xattr {
    use std::io;
    use std::os::fd::BorrowedFd;

    use rustix::io::Errno;

    /// Where the calls go.
    #[derive(Clone, Copy)]
    pub enum On<'a> {
        /// llistxattr, lgetxattr.
        Path(&'a std::path::Path),
        /// flistxattr, fgetxattr.
        Fd(BorrowedFd<'a>),
    }

    /// The names of its extended attributes (none where the file system has none).
    pub fn list(on: On<'_>) -> io::Result<Vec<Vec<u8>>> {
        loop {
            let len = match on {
                On::Path(p) => rustix::fs::llistxattr_query(p),
                On::Fd(fd) => rustix::fs::flistxattr_query(fd),
            };
            let len = match len {
                Ok(len) => len,
                // A file system without xattrs.
                Err(Errno::NOTSUP) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut names = vec![0u8; len];
            let got = match on {
                On::Path(p) => rustix::fs::llistxattr(p, &mut names[..]),
                On::Fd(fd) => rustix::fs::flistxattr(fd, &mut names[..]),
            };
            match got {
                Ok(len) => {
                    return Ok(names[..len]
                        .split(|&b| b == 0)
                        .filter(|n| !n.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect())
                }
                // Grew between the two calls.
                Err(Errno::RANGE) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The value of `name`, `None` where it has none.
    pub fn get(on: On<'_>, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
        loop {
            let len = match on {
                On::Path(p) => rustix::fs::lgetxattr_query(p, name),
                On::Fd(fd) => rustix::fs::fgetxattr_query(fd, name),
            };
            let len = match len {
                Ok(len) => len,
                Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut value = vec![0u8; len];
            let got = match on {
                On::Path(p) => rustix::fs::lgetxattr(p, name, &mut value[..]),
                On::Fd(fd) => rustix::fs::fgetxattr(fd, name, &mut value[..]),
            };
            match got {
                Ok(len) => {
                    value.truncate(len);
                    return Ok(Some(value));
                }
                Err(Errno::RANGE) => continue,
                Err(Errno::NODATA) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
