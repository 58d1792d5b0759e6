//! What a sender asks and tells beyond the files: the quick check each file's
//! entry asks for (size and mtime, or the digest of `-c`), a dry run's entries
//! without content, and a mirror's MIRROR and NAMES messages.

use std::fs::File;

use crate::error::{fail, Context, Result};
use crate::frame::{self, Entry, Msg};
use crate::partial::file_digest_of;
use crate::send::walk::Item;
use crate::send::{Compare, BATCH};

use super::Sender;

impl Sender<'_> {
    /// What a file's entry asks: whether the receiver holds it, and how it tells
    /// (by size and mtime, or by the digest read here for `-c`).
    pub(super) fn quick_check(&self, item: &Item, entry: &mut Entry, file: &File) -> Result<()> {
        entry.ask = self.config.resume || self.config.compare != Compare::Never;
        entry.complete_ok = self.config.compare != Compare::Never;
        if self.config.compare == Compare::Checksum {
            let size = entry.size.expect("regular files have a size");
            let digest = file_digest_of(file, size, entry.block)
                .with_context(|| format!("cannot read {}", item.source.display()))?;
            entry.digest = Some(digest);
        }
        Ok(())
    }

    /// A dry run's file: its entry alone, which the receiver answers without
    /// writing (and itemizes, if asked).
    pub(super) fn dry_run(&mut self, mut entry: Entry) -> Result<()> {
        entry.ask = true;
        let (id, path) = (entry.id, frame::shown(&entry.path).into_owned());
        Msg::File(entry).encode(&mut self.batch);
        self.flush(false)?;
        self.await_have(id, &path)?;
        Ok(())
    }

    /// Tells a receiver of a mirror (MIRROR), and for a deletion before the
    /// transfer every name the session will send (NAMES); refuses a mirror or
    /// `-c` to a receiver without the capability.
    pub(super) fn announce(&mut self, items: &[Item]) -> Result<()> {
        if self.config.compare == Compare::Checksum && !self.mirror_ok {
            // It would skip a file by size and mtime alone.
            fail!(
                "{}: this receiver is too old for --checksum (update zcopy there)",
                self.addr
            );
        }
        if !self.config.mirrors() {
            return Ok(());
        }
        if !self.mirror_ok {
            fail!("{}: this receiver is too old for --delete, --dry-run and --itemize-changes (update zcopy there)", self.addr);
        }
        Msg::Mirror(self.config.mirror.clone()).encode(&mut self.batch);
        if self.config.mirror.delete_before {
            let names: Vec<Vec<u8>> = items
                .iter()
                .map(|i| {
                    let mut name = i.entry.path.clone();
                    if i.entry.kind == frame::EntryKind::Dir {
                        name.push(b'/');
                    }
                    name
                })
                .collect();
            for msg in frame::names_messages(&names) {
                msg.encode(&mut self.batch);
                if self.batch.len() >= BATCH {
                    self.flush(false)?;
                }
            }
        }
        self.flush(false)
    }
}
