//! A mirror session on the receiving side ([`frame::Mirror`]): the names the
//! sender has, rsync's itemize lines for what changes, the dry run that writes
//! nothing, and when the deletion pass ([`super::delete`]) runs.

use std::collections::HashMap;

use rustix::fs::{AtFlags, FileType};

use crate::error::{fail, Context, Result};
use crate::filter::{Filter, Rules};
use crate::frame::{self, Entry, EntryKind};
use crate::partial::{same_file_in_place, Root};

use super::delete::Pass;

/// What a mirror session knows and was asked.
pub(super) struct Mirror {
    pub(super) settings: frame::Mirror,
    filter: Filter,
    /// Every name the sender has sent or listed, and whether it is a directory.
    names: HashMap<Vec<u8>, bool>,
    /// The directories sent: where the deletion pass looks.
    dirs: Vec<Vec<u8>>,
    /// NAMES still to come before the deletion that precedes the transfer.
    listing: bool,
}

impl Mirror {
    pub(super) fn new(settings: frame::Mirror, root: &Root) -> Result<Mirror> {
        if root.is_single() && (settings.delete || settings.delete_before) {
            fail!("--delete mirrors a directory: give recv a directory, not -o FILE");
        }
        let rules = Rules::from_lines(&settings.rules).context("the sender's filter rules")?;
        Ok(Mirror {
            listing: settings.delete_before,
            settings,
            filter: Filter::new(rules),
            names: HashMap::new(),
            dirs: Vec::new(),
        })
    }

    /// NAMES from the sender; the empty one ends them and runs the deletion
    /// before the transfer. Returns the itemize lines of what was deleted.
    pub(super) fn listed(&mut self, root: &Root, list: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        if !self.listing {
            fail!("NAMES outside a --delete-before listing");
        }
        if !list.is_empty() {
            for name in list {
                if let Some(dir) = name.strip_suffix(b"/") {
                    self.dirs.push(dir.to_vec());
                    self.names.insert(dir.to_vec(), true);
                } else {
                    self.names.insert(name, false);
                }
            }
            return Ok(Vec::new());
        }
        self.listing = false;
        self.delete(root)
    }

    /// An entry arrives: it is the sender's; the itemize line of what it
    /// changes, if asked; whether the file in place is already it.
    pub(super) fn entry(&mut self, root: &Root, entry: &Entry) -> Result<(Option<Vec<u8>>, bool)> {
        if self.listing {
            fail!("an entry before the end of the --delete-before listing");
        }
        let is_dir = entry.kind == EntryKind::Dir;
        // Listed before (--delete-before): its directory is in `dirs` already.
        if self.names.insert(entry.path.clone(), is_dir).is_none() && is_dir {
            self.dirs.push(entry.path.clone());
        }
        if entry.kind == EntryKind::HardLink {
            // Itemized when it is made, after every file landed.
            return Ok((None, false));
        }
        let (line, same) = itemize(root, entry, !self.settings.dry_run)?;
        Ok((line.filter(|_| self.settings.itemize), same))
    }

    /// The deletion after the transfer, if it is one's.
    pub(super) fn after(&mut self, root: &Root) -> Result<Vec<Vec<u8>>> {
        if self.settings.delete && !self.settings.delete_before {
            self.delete(root)
        } else {
            Ok(Vec::new())
        }
    }

    fn delete(&mut self, root: &Root) -> Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        let mut removed = |name: &[u8], is_dir: bool| {
            let mut line = b"*deleting   ".to_vec();
            line.extend_from_slice(name);
            if is_dir {
                line.push(b'/');
            }
            lines.push(line);
            Ok(())
        };
        let mut pass = Pass {
            root,
            names: &self.names,
            filter: (!self.settings.delete_excluded).then_some(&mut self.filter),
            dry_run: self.settings.dry_run,
            removed: &mut removed,
        };
        let done = self.dirs.iter().try_for_each(|dir| {
            pass.directory(dir)
                .with_context(|| format!("{}: cannot delete in it", frame::shown(dir)))
        });
        // What was removed may have been kept open.
        root.forget_dirs();
        done?;
        Ok(if self.settings.itemize {
            lines
        } else {
            Vec::new()
        })
    }
}

/// rsync's `--itemize-changes` line for `entry` against what is in place
/// (`None`: nothing changes), and whether a file in place is already it (then,
/// with `settle`, given the attributes that differ).
fn itemize(root: &Root, entry: &Entry, settle: bool) -> Result<(Option<Vec<u8>>, bool)> {
    let path = frame::shown(&entry.path).into_owned();
    let (dir, name) = match root.parent_of(&entry.path) {
        Ok(found) => found,
        // Its directory is not there yet (a dry run, or a new tree).
        Err(_) => return Ok((Some(line(entry, b"+++++++++")), false)),
    };
    let st = match rustix::fs::statat(&*dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok((Some(line(entry, b"+++++++++")), false)),
        Err(e) => {
            return Err(std::io::Error::from(e))
                .with_context(|| format!("{path}: cannot look at it"))
        }
    };
    let kind = FileType::from_raw_mode(st.st_mode);
    let wanted = match entry.kind {
        EntryKind::File | EntryKind::HardLink => FileType::RegularFile,
        EntryKind::Dir => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Fifo => FileType::Fifo,
        EntryKind::Socket => FileType::Socket,
        EntryKind::CharDevice => FileType::CharacterDevice,
        EntryKind::BlockDevice => FileType::BlockDevice,
    };
    let new_device = entry.attrs.rdev.is_some_and(|r| r != st.st_rdev);
    if kind != wanted || new_device {
        return Ok((Some(line(entry, b"+++++++++")), false));
    }
    let time = st.st_mtime != entry.mtime.0 || st.st_mtime_nsec as u32 != entry.mtime.1;
    let attrs = root
        .landing
        .changes_at(&dir, &name, entry)
        .with_context(|| format!("{path}: cannot look at its attributes"))?;
    let flag = |on: bool, c: u8| if on { c } else { b'.' };
    let rest = [
        flag(attrs.owner, b'o'),
        flag(attrs.group, b'g'),
        b'.',
        flag(attrs.acl, b'a'),
        flag(attrs.xattrs, b'x'),
    ];
    let changes = match entry.kind {
        EntryKind::File => {
            let settle = settle.then_some(&root.landing);
            let same = entry.complete_ok && same_file_in_place(&dir, &name, entry, settle);
            if same {
                if !attrs.any() {
                    return Ok((None, true));
                }
                // Only its attributes change (rsync's `.f...p.....`).
                let mut letters = vec![b'.', b'.', b'.', flag(attrs.perms, b'p')];
                letters.extend_from_slice(&rest);
                let mut only = line(entry, &letters);
                only[0] = b'.';
                return Ok((Some(only), true));
            }
            let size = Some(st.st_size as u64) != entry.size;
            let sum = entry.digest.is_some() && !size;
            [
                flag(sum, b'c'),
                flag(size, b's'),
                flag(time, b't'),
                flag(attrs.perms, b'p'),
            ]
        }
        EntryKind::Symlink => {
            let target = rustix::fs::readlinkat(&*dir, name.as_slice(), Vec::new())
                .map(|t| t.into_bytes())
                .unwrap_or_default();
            [flag(target != entry.target, b'c'), b'.', b'.', b'.']
        }
        _ => [b'.', b'.', flag(time, b't'), flag(attrs.perms, b'p')],
    };
    let mut letters = changes.to_vec();
    letters.extend_from_slice(&rest);
    if letters.iter().all(|&c| c == b'.') {
        return Ok((None, false));
    }
    Ok((Some(line(entry, &letters)), false))
}

/// `YX` and the nine change letters, then the name as rsync prints it.
fn line(entry: &Entry, letters: &[u8]) -> Vec<u8> {
    let (y, x) = match entry.kind {
        EntryKind::File | EntryKind::HardLink => (b'>', b'f'),
        EntryKind::Dir => (b'c', b'd'),
        EntryKind::Symlink => (b'c', b'L'),
        EntryKind::CharDevice | EntryKind::BlockDevice => (b'c', b'D'),
        EntryKind::Fifo | EntryKind::Socket => (b'c', b'S'),
    };
    // An existing directory's or symlink's changes start with '.', not 'c'.
    let y = if letters[0] != b'+' && entry.kind != EntryKind::File {
        b'.'
    } else {
        y
    };
    let mut out = vec![y, x];
    out.extend_from_slice(letters);
    out.push(b' ');
    out.extend_from_slice(&entry.path);
    match entry.kind {
        EntryKind::Dir => out.push(b'/'),
        EntryKind::Symlink => {
            out.extend_from_slice(b" -> ");
            out.extend_from_slice(&entry.target);
        }
        _ => {}
    }
    out
}
