//! The receiver's side: an entry's owner, group, xattrs and ACLs set on what
//! landed, then its mode, in the order that keeps each (chown clears set-uid
//! bits and file capabilities, so they come after it).
//!
//! As rsync does: only root gives a file away; an ordinary receiver keeps its
//! own owner and sets a group it belongs to, silently, and none other. A
//! set-uid bit lands only on a file whose owner is the sender's (its owner
//! kept, `-o`), a set-gid bit only with its group kept (`-g`), and
//! `security.capability` only with its owner: a file must not run as its new
//! owner with privileges meant for the old one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::fs::{AtFlags, FileType, Gid, Mode, Uid, XattrFlags, CWD};
use rustix::io::Errno;

use super::xattr::{self, On};
use super::{acl, carried, Ids};
use crate::frame::{AclEntry, Entry, ACL_GROUP};

/// What a receiver may set, and the names it looked up.
pub struct Landing {
    root: bool,
    groups: Vec<u32>,
    /// The names and numbers looked up so far.
    pub ids: Ids,
}

/// Which of an entry's attributes differ from those of the file in place
/// (rsync's itemize letters `p o g a x`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Changes {
    /// The mode.
    pub perms: bool,
    /// The owner.
    pub owner: bool,
    /// The group.
    pub group: bool,
    /// The ACLs.
    pub acl: bool,
    /// The extended attributes.
    pub xattrs: bool,
}

impl Changes {
    /// Whether anything differs.
    pub fn any(&self) -> bool {
        *self != Changes::default()
    }
}

impl Default for Landing {
    fn default() -> Landing {
        Landing::new()
    }
}

impl Landing {
    /// What this process may set: everything as root, else its own groups.
    pub fn new() -> Landing {
        let mut groups: Vec<u32> = rustix::process::getgroups()
            .unwrap_or_default()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        groups.push(rustix::process::getegid().as_raw());
        Landing {
            root: rustix::process::geteuid().is_root(),
            groups,
            ids: Ids::default(),
        }
    }

    /// Whether this receiver is root (then it makes devices and gives files away).
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The owner and group `entry` lands with here (`None`: left as created).
    fn owners(&self, entry: &Entry) -> (Option<u32>, Option<u32>) {
        let a = &entry.attrs;
        let uid = a
            .owner
            .as_ref()
            .filter(|_| self.root)
            .map(|o| self.ids.local(false, o));
        let gid = a
            .group
            .as_ref()
            .map(|g| self.ids.local(true, g))
            .filter(|g| self.root || self.groups.contains(g));
        (uid, gid)
    }

    /// The mode `entry` lands with on a file owned by `uid` and `gid`: its
    /// set-uid bit only where its owner is the sender's, its set-gid bit only
    /// where its group is (a directory's set-gid bit stays: it is inherited
    /// by what is made in it, not a privilege).
    fn mode(&self, entry: &Entry, dir: bool, uid: u32, gid: u32) -> u32 {
        let a = &entry.attrs;
        let mut mode = entry.mode & 0o7777;
        if a.owner
            .as_ref()
            .is_none_or(|o| self.ids.local(false, o) != uid)
        {
            mode &= !0o4000;
        }
        if !dir
            && a.group
                .as_ref()
                .is_none_or(|g| self.ids.local(true, g) != gid)
        {
            mode &= !0o2000;
        }
        mode
    }

    /// What differs between `entry` and the file open at `fd` (a real
    /// descriptor for files and directories, `O_PATH` for the others).
    pub fn changes(&self, fd: BorrowedFd<'_>, entry: &Entry) -> io::Result<Changes> {
        let st = rustix::fs::fstat(fd)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let (uid, gid) = self.owners(entry);
        let mut changes = Changes {
            owner: uid.is_some_and(|u| u != st.st_uid),
            group: gid.is_some_and(|g| g != st.st_gid),
            ..Changes::default()
        };
        let (uid, gid) = (uid.unwrap_or(st.st_uid), gid.unwrap_or(st.st_gid));
        if kind != FileType::Symlink {
            let dir = kind == FileType::Directory;
            changes.perms = st.st_mode & 0o7777 != self.mode(entry, dir, uid, gid);
        }
        if !matches!(kind, FileType::RegularFile | FileType::Directory) {
            return Ok(changes);
        }
        let on = On::Fd(fd);
        if let Some(wanted) = &entry.attrs.xattrs {
            let mut have = Vec::new();
            for name in xattr::list(on)? {
                if carried(&name, self.root) {
                    have.push((name.clone(), xattr::get(on, &name)?.unwrap_or_default()));
                }
            }
            let mut wanted: Vec<_> = wanted
                .iter()
                .filter(|(n, _)| carried(n, self.root))
                .cloned()
                .collect();
            have.sort();
            wanted.sort();
            changes.xattrs = have != wanted;
        }
        let acls = [
            (acl::ACCESS, &entry.attrs.acl),
            (acl::DEFAULT, &entry.attrs.default_acl),
        ];
        for (name, wanted) in acls {
            if let Some(wanted) = wanted
                .as_ref()
                .filter(|_| kind == FileType::Directory || name == acl::ACCESS)
            {
                changes.acl |= self.acl_value(on, name)? != self.built(wanted);
            }
        }
        Ok(changes)
    }

    /// Sets `entry`'s owner, group, xattrs and ACLs on the file open at `fd`
    /// (as [`Landing::changes`] takes it), then, unless it is a symlink, its
    /// mode: only what differs.
    pub fn apply(&self, fd: BorrowedFd<'_>, entry: &Entry) -> io::Result<()> {
        let st = rustix::fs::fstat(fd)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let (uid, gid) = self.owners(entry);
        let (uid, gid) = (
            uid.filter(|&u| u != st.st_uid),
            gid.filter(|&g| g != st.st_gid),
        );
        let chowned = uid.is_some() || gid.is_some();
        if chowned {
            rustix::fs::chownat(
                fd,
                "",
                uid.map(Uid::from_raw),
                gid.map(Gid::from_raw),
                AtFlags::EMPTY_PATH,
            )?;
        }
        let (uid, gid) = (uid.unwrap_or(st.st_uid), gid.unwrap_or(st.st_gid));
        let dir = kind == FileType::Directory;
        if matches!(kind, FileType::RegularFile | FileType::Directory) {
            let owner_kept = entry
                .attrs
                .owner
                .as_ref()
                .is_some_and(|o| self.ids.local(false, o) == uid);
            if let Some(wanted) = &entry.attrs.xattrs {
                self.set_xattrs(fd, wanted, owner_kept)?;
            }
            if let Some(wanted) = &entry.attrs.acl {
                self.set_acl(fd, acl::ACCESS, wanted)?;
            }
            if let Some(wanted) = entry.attrs.default_acl.as_ref().filter(|_| dir) {
                self.set_acl(fd, acl::DEFAULT, wanted)?;
            }
        }
        if kind == FileType::Symlink {
            return Ok(());
        }
        let mode = self.mode(entry, dir, uid, gid);
        // After a chown or an ACL, the mode in place may have changed: look again.
        let acl = entry.attrs.acl.is_some() || entry.attrs.default_acl.is_some();
        let now = if chowned || acl {
            rustix::fs::fstat(fd)?.st_mode
        } else {
            st.st_mode
        };
        if now & 0o7777 != mode {
            match rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)) {
                Ok(()) => {}
                // An O_PATH descriptor takes no fchmod; its /proc name reaches the file.
                Err(Errno::BADF) => {
                    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
                    rustix::fs::chmodat(
                        CWD,
                        proc.as_str(),
                        Mode::from_raw_mode(mode),
                        AtFlags::empty(),
                    )?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn set_xattrs(
        &self,
        fd: BorrowedFd<'_>,
        wanted: &[(Vec<u8>, Vec<u8>)],
        owner_kept: bool,
    ) -> io::Result<()> {
        let lands = |name: &[u8]| {
            carried(name, self.root) && (owner_kept || name != b"security.capability")
        };
        let on = On::Fd(fd);
        for (name, value) in wanted.iter().filter(|(n, _)| lands(n)) {
            if xattr::get(on, name)?.as_ref() != Some(value) {
                rustix::fs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty())?;
            }
        }
        // What the sender does not have goes, but for a security label the
        // receiver's system gave it.
        for name in xattr::list(on)? {
            let sent = wanted.iter().any(|(n, _)| *n == name);
            if !sent && carried(&name, self.root) && !name.starts_with(b"security.") {
                match rustix::fs::fremovexattr(fd, name.as_slice()) {
                    Ok(()) | Err(Errno::NODATA) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    fn set_acl(&self, fd: BorrowedFd<'_>, name: &str, wanted: &[AclEntry]) -> io::Result<()> {
        let value = self.built(wanted);
        if self.acl_value(On::Fd(fd), name)? == value {
            return Ok(());
        }
        let done = match value {
            None => rustix::fs::fremovexattr(fd, name),
            Some(v) => rustix::fs::fsetxattr(fd, name, &v, XattrFlags::empty()),
        };
        match done {
            // No ACL to remove, or a file system without ACLs asked to have none.
            Ok(()) | Err(Errno::NODATA) => Ok(()),
            Err(Errno::NOTSUP) if wanted.is_empty() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The xattr value of an ACL of `wanted` here (`None`: none beyond the mode).
    fn built(&self, wanted: &[AclEntry]) -> Option<Vec<u8>> {
        (!wanted.is_empty())
            .then(|| acl::build(wanted, |tag, who| self.ids.local(tag == ACL_GROUP, who)))
    }

    /// The ACL in place, as [`Landing::built`] would make it.
    fn acl_value(&self, on: On<'_>, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(xattr::get(on, name.as_bytes())?
            .and_then(|v| acl::parse(&v))
            .filter(|e| !e.is_empty())
            .map(|e| acl::build(&e, |_, who| who.id)))
    }
}

impl Landing {
    /// [`Landing::changes`] of `name` in `dir` (not followed).
    pub fn changes_at(
        &self,
        dir: &std::fs::File,
        name: &[u8],
        entry: &Entry,
    ) -> io::Result<Changes> {
        self.changes(open_at(dir, name, entry)?.as_fd(), entry)
    }

    /// [`Landing::apply`] to `name` in `dir` (not followed).
    pub fn apply_at(&self, dir: &std::fs::File, name: &[u8], entry: &Entry) -> io::Result<()> {
        self.apply(open_at(dir, name, entry)?.as_fd(), entry)
    }
}

/// `name` in `dir` opened as [`Landing::changes`] takes it: for reading if it
/// is a file or a directory, else as `O_PATH`.
fn open_at(dir: &std::fs::File, name: &[u8], entry: &Entry) -> io::Result<rustix::fd::OwnedFd> {
    use crate::frame::EntryKind;
    use rustix::fs::OFlags;
    let flags = match entry.kind {
        EntryKind::File | EntryKind::HardLink => OFlags::RDONLY,
        EntryKind::Dir => OFlags::RDONLY | OFlags::DIRECTORY,
        _ => OFlags::PATH,
    };
    let flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}
