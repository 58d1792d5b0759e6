//! What an entry carries beyond its mode and mtime (protocol 3, to a receiver
//! that announced [`super::CAP_ATTRS`]): owner and group by name with the number
//! beside it, a device's number, extended attributes and POSIX ACLs, as rsync's
//! `-o -g -D -X -A` carry them. After FILE's names and digest, when its flags
//! have 16:
//!
//! ```text
//! present:u8    1 owner, 2 group, 4 rdev, 8 xattrs, 16 access ACL, 32 default ACL
//! owner         id:u32 len:u16 name     an empty name: by number (--numeric-ids)
//! group         id:u32 len:u16 name
//! rdev          u64                     a device's major and minor
//! xattrs        count:u16 (len:u16 name  len:u32 value)*
//! access ACL    count:u16 (tag:u16 perm:u16 id:u32 len:u16 name)*
//! default ACL   the same
//! ```
//!
//! A part that is present and empty (no xattrs, no ACL beyond the mode) tells
//! the receiver to remove what the file in place has beyond it.

use std::io;

use super::{invalid, Body};

/// A user or a group: the sender's number, and its name unless `--numeric-ids`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Id {
    /// The number on the sender.
    pub id: u32,
    /// The name on the sender; empty: the receiver takes the number as it is.
    pub name: Vec<u8>,
}

/// One entry of a POSIX ACL, as Linux stores it in `system.posix_acl_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEntry {
    /// `ACL_USER_OBJ` 1, `ACL_USER` 2, `ACL_GROUP_OBJ` 4, `ACL_GROUP` 8,
    /// `ACL_MASK` 0x10, `ACL_OTHER` 0x20.
    pub tag: u16,
    /// Read 4, write 2, execute 1.
    pub perm: u16,
    /// For `ACL_USER` and `ACL_GROUP`: whom it names.
    pub who: Option<Id>,
}

/// An entry's attributes beyond mode and mtime; `None`: not carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attrs {
    /// The owner (`-o`).
    pub owner: Option<Id>,
    /// The group (`-g`).
    pub group: Option<Id>,
    /// A device's number (`-D`).
    pub rdev: Option<u64>,
    /// Extended attributes, names and values (`-X`).
    pub xattrs: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// The access ACL's entries beyond the mode (`-A`; empty: none).
    pub acl: Option<Vec<AclEntry>>,
    /// A directory's default ACL (`-A`; empty: none).
    pub default_acl: Option<Vec<AclEntry>>,
}

impl Attrs {
    /// Whether nothing is carried.
    pub fn is_empty(&self) -> bool {
        *self == Attrs::default()
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let present = u8::from(self.owner.is_some())
            | u8::from(self.group.is_some()) << 1
            | u8::from(self.rdev.is_some()) << 2
            | u8::from(self.xattrs.is_some()) << 3
            | u8::from(self.acl.is_some()) << 4
            | u8::from(self.default_acl.is_some()) << 5;
        out.push(present);
        for id in self.owner.iter().chain(&self.group) {
            encode_id(id, out);
        }
        if let Some(rdev) = self.rdev {
            out.extend_from_slice(&rdev.to_be_bytes());
        }
        if let Some(xattrs) = &self.xattrs {
            out.extend_from_slice(&(xattrs.len() as u16).to_be_bytes());
            for (name, value) in xattrs {
                out.extend_from_slice(&(name.len() as u16).to_be_bytes());
                out.extend_from_slice(name);
                out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                out.extend_from_slice(value);
            }
        }
        for acl in self.acl.iter().chain(&self.default_acl) {
            out.extend_from_slice(&(acl.len() as u16).to_be_bytes());
            for e in acl {
                out.extend_from_slice(&e.tag.to_be_bytes());
                out.extend_from_slice(&e.perm.to_be_bytes());
                encode_id(e.who.as_ref().unwrap_or(&Id::default()), out);
            }
        }
    }

    pub(super) fn decode(b: &mut Body<'_>) -> io::Result<Attrs> {
        let present = b.u8()?;
        let has = |bit: u8| present & bit != 0;
        let owner = has(1).then(|| decode_id(b)).transpose()?;
        let group = has(2).then(|| decode_id(b)).transpose()?;
        let rdev = has(4).then(|| b.u64()).transpose()?;
        let xattrs = if has(8) {
            let count = u16::from_be_bytes(b.take()?);
            let mut list = Vec::new();
            for _ in 0..count {
                let name = b.name()?;
                if name.is_empty() || name.contains(&0) {
                    return Err(invalid("an extended attribute without a name"));
                }
                let len = b.u32()? as usize;
                if b.0.len() < len {
                    return Err(invalid("message body too short"));
                }
                let (value, rest) = b.0.split_at(len);
                b.0 = rest;
                list.push((name, value.to_vec()));
            }
            Some(list)
        } else {
            None
        };
        let mut acl = || -> io::Result<Vec<AclEntry>> {
            let count = u16::from_be_bytes(b.take()?);
            (0..count)
                .map(|_| {
                    let (tag, perm) =
                        (u16::from_be_bytes(b.take()?), u16::from_be_bytes(b.take()?));
                    let id = decode_id(b)?;
                    Ok(AclEntry {
                        tag,
                        perm,
                        who: matches!(tag, ACL_USER | ACL_GROUP).then_some(id),
                    })
                })
                .collect()
        };
        let access = has(16).then(&mut acl).transpose()?;
        let default_acl = has(32).then(&mut acl).transpose()?;
        Ok(Attrs {
            owner,
            group,
            rdev,
            xattrs,
            acl: access,
            default_acl,
        })
    }
}

/// `ACL_USER`: an entry that names a user.
pub const ACL_USER: u16 = 2;
/// `ACL_GROUP`: an entry that names a group.
pub const ACL_GROUP: u16 = 8;

fn encode_id(id: &Id, out: &mut Vec<u8>) {
    out.extend_from_slice(&id.id.to_be_bytes());
    out.extend_from_slice(&(id.name.len() as u16).to_be_bytes());
    out.extend_from_slice(&id.name);
}

fn decode_id(b: &mut Body<'_>) -> io::Result<Id> {
    Ok(Id {
        id: b.u32()?,
        name: b.name()?,
    })
}
