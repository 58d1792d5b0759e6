//! Users and groups by name: the sender's names for its numbers, the
//! receiver's numbers for those names (rsync's mapping), each looked up once.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::frame::Id;
use crate::sys::{lookup, Lookup};

/// Names and numbers looked up so far, in both directions.
#[derive(Default)]
pub struct Ids {
    names: Mutex<HashMap<(bool, u32), Vec<u8>>>,
    numbers: Mutex<HashMap<(bool, Vec<u8>), u32>>,
}

impl Ids {
    /// The sender's [`Id`] for user (`group` false) or group number `id`: with
    /// its name unless `numeric`, or when it has none.
    pub fn named(&self, group: bool, id: u32, numeric: bool) -> Id {
        if numeric {
            return Id {
                id,
                name: Vec::new(),
            };
        }
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let name = names
            .entry((group, id))
            .or_insert_with(|| {
                let what = if group {
                    Lookup::GroupName(id)
                } else {
                    Lookup::UserName(id)
                };
                lookup(what).map(|(_, n)| n).unwrap_or_default()
            })
            .clone();
        Id { id, name }
    }

    /// The receiver's number for the sender's `who`: the number of the user
    /// or group of that name here, else the sender's number. Number 0 (root,
    /// and root's group) is never mapped by name, as rsync does not.
    pub fn local(&self, group: bool, who: &Id) -> u32 {
        if who.name.is_empty() || who.id == 0 {
            return who.id;
        }
        let mut numbers = self.numbers.lock().unwrap_or_else(|p| p.into_inner());
        *numbers.entry((group, who.name.clone())).or_insert_with(|| {
            let what = if group {
                Lookup::GroupId(&who.name)
            } else {
                Lookup::UserId(&who.name)
            };
            lookup(what).map_or(who.id, |(n, _)| n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named_and_mapped_back_and_an_unknown_name_keeps_its_number() {
        let ids = Ids::default();
        let root = ids.named(false, 0, false);
        assert_eq!(root.name, b"root");
        assert_eq!(ids.named(false, 0, true).name, b"");
        let stranger = Id {
            id: 4242,
            name: b"no-such-user-here\xff".to_vec(),
        };
        assert_eq!(ids.local(false, &stranger), 4242);
        let group_root = ids.named(true, 0, false);
        assert_eq!(ids.local(true, &group_root), 0);
    }
}
