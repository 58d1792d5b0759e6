//! Directories: their entries, listed by [`zcopy::walk::read_dir`] in inode
//! order, copied in order or shared out over two threads. The recursion stays
//! cp's (see [`zcopy::walk`]): each destination directory is made before its
//! content and given its mode and times after it, and files are created
//! relative to the open source and destination directories.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use rustix::fs::Mode;
use zcopy::walk::{self, Kind, Listed, Order};

use super::file::At;
use super::operands::split_last;
use super::options::Clobber;
use super::words::q;
use super::Copier;

/// A directory with at least this many entries has its files copied on two
/// threads: below it, starting a thread costs more than it saves.
const SHARE_OUT_MIN: usize = 64;

impl Copier {
    /// `src`, a directory, to `dst`; its contents only if `descend` (`-x` stops
    /// at a mount point, which is made empty as in GNU cp).
    pub(super) fn copy_dir(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        descend: bool,
    ) -> Result<()> {
        let abs_src = src
            .canonicalize()
            .with_context(|| format!("cannot access {}", q(src)))?;
        let (parent, name) = split_last(dst);
        let abs_parent = parent
            .canonicalize()
            .with_context(|| format!("cannot create directory {}", q(dst)))?;
        if abs_parent.join(name).starts_with(&abs_src) {
            bail!(
                "cannot copy a directory, {}, into itself, {}",
                q(src),
                q(dst)
            );
        }
        let created = match std::fs::metadata(dst) {
            Ok(existing) if existing.is_dir() => false,
            Ok(_) => bail!(
                "cannot overwrite non-directory {} with directory {}",
                q(dst),
                q(src)
            ),
            Err(_) => {
                // Created private, opened up below once the contents are in.
                rustix::fs::mkdir(dst, Mode::from_raw_mode(0o700))
                    .with_context(|| format!("cannot create directory {}", q(dst)))?;
                self.say(src, dst, None, "")?;
                true
            }
        };
        let dir = File::open(dst).with_context(|| format!("cannot access {}", q(dst)))?;
        let src_dir = File::open(src).with_context(|| format!("cannot access {}", q(src)))?;
        let mut failed = false;
        if descend {
            // In inode order, as GNU cp reads a directory: on ext4 and xfs that is
            // roughly the order of the files on disk.
            let mut entries = walk::read_dir(src, Order::Inode)
                .map_err(|e| e.source)
                .with_context(|| format!("cannot access {}", q(src)))?;
            let dirs = (src_dir.as_fd(), dir.as_fd());
            let outer_dev = std::mem::replace(&mut self.dir_dev, meta.dev());
            if self.may_share_out() && entries.len() >= SHARE_OUT_MIN {
                // Regular files (by d_type, no stat) shared between this thread and a
                // helper, each taking the next file when it is done with one (a file
                // system stalls one creation now and then: halves fixed up front left
                // one thread idle); directories and the rest after, in order.
                let (files, rest): (Vec<_>, Vec<_>) = entries
                    .into_iter()
                    .partition(|e| e.kind == Some(Kind::File));
                let next = AtomicUsize::new(0);
                let take =
                    || std::iter::from_fn(|| files.get(next.fetch_add(1, Ordering::Relaxed)));
                let mut helper = self.helper();
                let (mine, theirs) = std::thread::scope(|scope| {
                    let theirs =
                        scope.spawn(|| helper.copy_entries(src, dst, take(), created, dirs));
                    (
                        self.copy_entries(src, dst, take(), created, dirs),
                        theirs.join(),
                    )
                });
                failed |= mine? | theirs.expect("a copy thread does not panic")?;
                entries = rest;
            }
            failed |= self.copy_entries(src, dst, entries.iter(), created, dirs)?;
            self.dir_dev = outer_dev;
        }
        // A directory that was there keeps its mode unless -p, as in GNU cp.
        let mode = if created || self.set.preserve.mode {
            self.new_mode(meta, 0o777)
        } else {
            dir.metadata()?.mode() & 0o7777
        };
        let current = if created { 0o700 } else { mode };
        self.keep_attributes(&src_dir, &dir, dst, meta, mode, current)?;
        if failed {
            bail!(crate::cmd::Quiet);
        }
        Ok(())
    }

    /// Copies `entries` of `src` into `dst` (made by this copy if `fresh`), each
    /// error reported as it happens; `Ok(true)` when any failed. `dirs`: `src`
    /// and `dst`, open.
    fn copy_entries<'e>(
        &mut self,
        src: &Path,
        dst: &Path,
        entries: impl Iterator<Item = &'e Listed>,
        fresh: bool,
        dirs: (BorrowedFd<'_>, BorrowedFd<'_>),
    ) -> Result<bool> {
        let mut failed = false;
        for entry in entries {
            let name = &entry.name;
            let target = dst.join(name);
            let at = (entry.kind == Some(Kind::File)).then_some(At {
                src_dir: dirs.0,
                dst_dir: dirs.1,
                name,
            });
            if let Err(e) = self.copy_entry(&src.join(name), &target, false, fresh, at) {
                if crate::cmd::is_stdout_closed(&e) {
                    return Err(e);
                }
                self.report(&e);
                failed = true;
            }
        }
        Ok(failed)
    }

    /// Whether a directory's files may be copied on two threads: only when the
    /// order of what is printed or asked does not matter (no -v, -i, progress) and
    /// no hard-link map is shared (-a, -d), and there is a second core.
    fn may_share_out(&self) -> bool {
        self.set.verbose == 0
            && self.set.clobber != Clobber::Ask
            && !self.set.preserve.links
            && self.bar.is_none()
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    }

    /// A copier for a helper thread, with the same settings and what was learnt.
    fn helper(&self) -> Copier {
        Copier {
            set: self.set.clone(),
            linked: HashMap::new(),
            made: None,
            sources: None,
            bar: None,
            ..*self
        }
    }
}
