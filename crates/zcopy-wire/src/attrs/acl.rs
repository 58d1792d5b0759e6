//! POSIX ACLs as Linux keeps them: the value of `system.posix_acl_access` and
//! `system.posix_acl_default`, a little-endian version 2 header and entries of
//! `tag:u16 perm:u16 id:u32`.
//!
//! # References
//! - acl(5); the kernel's `include/uapi/linux/posix_acl_xattr.h`

use crate::frame::{AclEntry, Id, ACL_GROUP, ACL_USER};

/// The xattr that holds a file's access ACL.
pub const ACCESS: &str = "system.posix_acl_access";
/// The xattr that holds a directory's default ACL.
pub const DEFAULT: &str = "system.posix_acl_default";

const VERSION: u32 = 2;
const UNDEFINED_ID: u32 = u32::MAX;

/// The entries of an ACL xattr's value; `None` when it is not one. An ACL of
/// the owner, group and other entries alone says what the mode says, and is
/// returned empty.
pub fn parse(value: &[u8]) -> Option<Vec<AclEntry>> {
    let (head, body) = value.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*head) != VERSION || body.len() % 8 != 0 {
        return None;
    }
    let entries: Vec<AclEntry> = body
        .chunks_exact(8)
        .map(|e| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            AclEntry {
                tag,
                perm: u16::from_le_bytes([e[2], e[3]]),
                who: matches!(tag, ACL_USER | ACL_GROUP).then_some(Id {
                    id,
                    name: Vec::new(),
                }),
            }
        })
        .collect();
    let minimal = entries.len() <= 3 && entries.iter().all(|e| e.who.is_none());
    Some(if minimal { Vec::new() } else { entries })
}

/// The xattr value of `entries`, named users and groups given their numbers
/// here by `id_of`.
pub fn build(entries: &[AclEntry], mut id_of: impl FnMut(u16, &Id) -> u32) -> Vec<u8> {
    let mut out = VERSION.to_le_bytes().to_vec();
    let mut sorted: Vec<(u16, u16, u32)> = entries
        .iter()
        .map(|e| {
            let id = e.who.as_ref().map_or(UNDEFINED_ID, |who| id_of(e.tag, who));
            (e.tag, e.perm, id)
        })
        .collect();
    // The kernel wants them by tag, then by number.
    sorted.sort_unstable_by_key(|&(tag, _, id)| (tag, id));
    for (tag, perm, id) in sorted {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acl_survives_parse_and_build_and_a_minimal_one_is_empty() {
        let mut value = VERSION.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, UNDEFINED_ID),
            (2, 4, 1000),
            (4, 4, UNDEFINED_ID),
            (0x10, 6, UNDEFINED_ID),
            (0x20, 0, UNDEFINED_ID),
        ] {
            value.extend_from_slice(&tag.to_le_bytes());
            value.extend_from_slice(&perm.to_le_bytes());
            value.extend_from_slice(&id.to_le_bytes());
        }
        let entries = parse(&value).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(build(&entries, |_, who| who.id), value);
        assert_eq!(
            build(&entries, |_, _| 7)[4 + 8 + 4..4 + 8 + 8],
            7u32.to_le_bytes()
        );
        let minimal: Vec<u8> = [&value[..12], &value[20..28], &value[36..]].concat();
        assert_eq!(parse(&minimal), Some(Vec::new()));
        assert_eq!(parse(b"junk"), None);
    }
}
