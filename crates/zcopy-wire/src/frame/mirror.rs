//! The messages of a mirror (`send --delete`, `-n`, `-i`), to a receiver that
//! announced [`super::CAP_MIRROR`]:
//!
//! ```text
//! M  MIRROR  flags:u8  count:u16  (len:u16 rule)*     sender, first after the greeting
//! N  NAMES   (len:u16 name)*                          sender, --delete-before: the names
//!                                                     it will send (a directory's with a
//!                                                     trailing /); an empty one ends them
//! I  ITEM    line                                     receiver: one --itemize-changes line
//! ```
//!
//! MIRROR's flags: 1 delete, 2 delete before the transfer, 4 delete excluded
//! files too, 8 dry run (nothing is written; entries come without content), 16
//! itemize. Its rules are `--filter` lines ([`crate::filter::Rules::lines`]):
//! the receiver keeps what they exclude unless told to delete excluded files.

use std::io;

use super::{invalid, Body};

/// A MIRROR message: what the receiver does beyond landing entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mirror {
    /// Remove what the sender does not have, under the directories it sends.
    pub delete: bool,
    /// Remove before the entries arrive (NAMES carry the sender's names), not after.
    pub delete_before: bool,
    /// Remove files the rules exclude too (else they are protected).
    pub delete_excluded: bool,
    /// Write nothing: say what would be done.
    pub dry_run: bool,
    /// Answer ITEM lines for what changes.
    pub itemize: bool,
    /// The filter rules, as `--filter` lines.
    pub rules: Vec<Vec<u8>>,
}

impl Mirror {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let flags = u8::from(self.delete)
            | u8::from(self.delete_before) << 1
            | u8::from(self.delete_excluded) << 2
            | u8::from(self.dry_run) << 3
            | u8::from(self.itemize) << 4;
        out.push(flags);
        out.extend_from_slice(&(self.rules.len() as u16).to_be_bytes());
        names(&self.rules, out);
    }

    pub(super) fn decode(b: &mut Body<'_>) -> io::Result<Mirror> {
        let flags = b.u8()?;
        let count = u16::from_be_bytes(b.take()?);
        let rules = (0..count).map(|_| b.name()).collect::<io::Result<_>>()?;
        Ok(Mirror {
            delete: flags & 1 != 0,
            delete_before: flags & 2 != 0,
            delete_excluded: flags & 4 != 0,
            dry_run: flags & 8 != 0,
            itemize: flags & 16 != 0,
            rules,
        })
    }
}

/// Appends each of `list` with its length.
pub(super) fn names(list: &[Vec<u8>], out: &mut Vec<u8>) {
    for name in list {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
    }
}

/// The names of a NAMES body, each checked as an entry's path is.
pub(super) fn decode_names(b: &mut Body<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut list = Vec::new();
    while !b.0.is_empty() {
        let name = b.name()?;
        super::check_path(name.strip_suffix(b"/").unwrap_or(&name))?;
        list.push(name);
    }
    Ok(list)
}

/// The NAMES messages that carry `all` (each under the longest body), then the
/// empty one that ends them.
pub fn names_messages(all: &[Vec<u8>]) -> Vec<super::Msg> {
    let mut msgs = Vec::new();
    let mut chunk = Vec::new();
    let mut len = 0;
    for name in all {
        if len + name.len() + 2 > (super::MAX_BODY as usize) / 2 {
            msgs.push(super::Msg::Names(std::mem::take(&mut chunk)));
            len = 0;
        }
        len += name.len() + 2;
        chunk.push(name.clone());
    }
    if !chunk.is_empty() {
        msgs.push(super::Msg::Names(chunk));
    }
    msgs.push(super::Msg::Names(Vec::new()));
    msgs
}

/// An ITEM line that is not one.
pub(super) fn check_item(line: &[u8]) -> io::Result<()> {
    if line.len() < 12 || line.contains(&b'\n') {
        return Err(invalid("malformed ITEM line"));
    }
    Ok(())
}
