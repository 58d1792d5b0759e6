//! A target that is already there: GNU cp's checks, its question, and the copy
//! written into it in place.

use std::fs::{File, Metadata};
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use zcopy::FdKind;

use super::backup;
use super::file::copy_failed;
use super::links::link_again;
use super::operands::{last_component, same_inode, same_name};
use super::options::{Clobber, Follow, Make, Update};
use super::words::{self, q};
use super::Copier;

/// What an existing destination leaves to do.
pub(super) enum Existing {
    /// Nothing: it stays (-n, -u, -i answered no, the same file with -l).
    Keep,
    /// Write over it.
    Replace,
    /// It was moved aside (to this backup) or removed: the target is new.
    Gone(Option<PathBuf>),
}

impl Copier {
    /// What to do about `dst`, which exists (`found`): GNU's checks in GNU's
    /// order (the same file, -u, -n, -i, a directory against a file, a file
    /// this copy just made), then a backup or a removal where one is due.
    pub(super) fn existing(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        found: &Metadata,
        top: bool,
    ) -> Result<Existing> {
        let mut keep_anyway = false;
        if self.set.clobber != Clobber::Never {
            match self.same_file_ok(src, meta, dst, found) {
                Some(ok) => keep_anyway = ok,
                None => bail!("{} and {} are the same file", q(src), q(dst)),
            }
        }
        if !meta.is_dir() {
            let skip = match self.set.update {
                Update::All => false,
                Update::None => true,
                Update::Older => {
                    (found.mtime(), found.mtime_nsec()) >= (meta.mtime(), meta.mtime_nsec())
                }
            };
            if skip {
                // The tree kept as it is still keeps its hard links, as with GNU's -u.
                if self.set.preserve.links && meta.nlink() > 1 {
                    match self.linked.get(&(meta.dev(), meta.ino())) {
                        Some(first) if !same_inode(&std::fs::metadata(first)?, found) => {
                            link_again(first, dst, true)?
                        }
                        Some(_) => {}
                        None => {
                            self.linked
                                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
                        }
                    }
                }
                return Ok(Existing::Keep);
            }
            match self.set.clobber {
                Clobber::Never => return Ok(Existing::Keep),
                Clobber::Ask if !self.ask(dst, found)? => return Ok(Existing::Keep),
                _ => {}
            }
        }
        if keep_anyway {
            return Ok(Existing::Keep);
        }
        if !found.is_dir() {
            if meta.is_dir() {
                bail!(
                    "cannot overwrite non-directory {} with directory {}",
                    q(dst),
                    q(src)
                );
            }
            let numbered = self
                .set
                .backup
                .as_ref()
                .is_some_and(|b| b.control == backup::Control::Numbered);
            let just_made = self.made.as_ref().filter(|_| top && !numbered);
            if just_made.is_some_and(|made| made.contains(&(found.dev(), found.ino()))) {
                bail!("will not overwrite just-created {} with {}", q(dst), q(src));
            }
        } else if !meta.is_dir() {
            bail!("cannot overwrite directory {} with non-directory", q(dst));
        }
        let base = last_component(src);
        if let Some(backup) = self.set.backup.as_ref() {
            if base != "." && base != ".." && !found.is_dir() {
                // `cp --backup=simple a~ a` would move the source aside as a's backup.
                let name = backup.name(dst);
                let is_source = backup.control != backup::Control::Numbered
                    && std::fs::symlink_metadata(&name).is_ok_and(|b| same_inode(&b, meta));
                if is_source {
                    bail!(
                        "backing up {} might destroy source;  {} not copied",
                        q(dst),
                        q(src)
                    );
                }
                return Ok(Existing::Gone(backup.make(dst)?));
            }
        }
        // Without data to copy (--attributes-only), what is there is kept.
        let remove = self.set.remove_destination
            || (!self.set.attributes_only
                && ((self.set.preserve.links && found.nlink() > 1)
                    || (self.set.follow == Follow::Never && !meta.is_file())));
        if !found.is_dir() && remove {
            if let Err(e) = std::fs::remove_file(dst) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e).with_context(|| format!("cannot remove {}", q(dst)));
                }
            }
            if self.set.verbose > 0 {
                self.print(&format!("removed {}\n", q(dst)))?;
            }
            return Ok(Existing::Gone(None));
        }
        Ok(Existing::Replace)
    }

    /// GNU's same_file_ok: `None` when copying `src` (`meta`) over `dst`
    /// (`found`, stat'ed or lstat'ed as copy_entry chose) would destroy the data
    /// it copies (a file onto itself, a symlink onto what it points to);
    /// `Some(true)` when there is nothing to do (hard-linking a file to itself).
    fn same_file_ok(
        &self,
        src: &Path,
        meta: &Metadata,
        dst: &Path,
        found: &Metadata,
    ) -> Option<bool> {
        let same = same_inode(meta, found);
        let hard_link = self.set.make == Make::HardLink;
        let backup = self.set.backup.is_some();
        if same && hard_link {
            return Some(true);
        }
        let (src_link, dst_link);
        let same_link;
        if self.set.follow == Follow::Never {
            same_link = same;
            if meta.file_type().is_symlink() && found.file_type().is_symlink() {
                let same_entry = same_name(src, dst);
                if !same_entry && (backup || same_link) {
                    return Some(!backup);
                }
                return (!same_entry).then_some(false);
            }
            src_link = meta.clone();
            dst_link = found.clone();
        } else {
            if !same {
                return Some(false);
            }
            let (Ok(d), Ok(s)) = (
                std::fs::symlink_metadata(dst),
                std::fs::symlink_metadata(src),
            ) else {
                return Some(false);
            };
            same_link = same_inode(&s, &d);
            if s.file_type().is_symlink()
                && d.file_type().is_symlink()
                && self.set.remove_destination
            {
                return Some(false);
            }
            src_link = s;
            dst_link = d;
        }
        let (src_is_link, dst_is_link) = (
            src_link.file_type().is_symlink(),
            dst_link.file_type().is_symlink(),
        );
        if backup {
            if !same_link {
                let breaks = self.set.follow != Follow::Never && src_is_link && !dst_is_link;
                return (!breaks).then_some(false);
            }
            return (!same_name(src, dst)).then_some(false);
        }
        if self.set.remove_destination {
            if dst_is_link {
                return Some(false);
            }
            if same_link && dst_link.nlink() > 1 && !same_name(src, dst) {
                return Some(false);
            }
        }
        if !src_is_link && !dst_is_link {
            if !same_inode(&src_link, &dst_link) {
                return Some(false);
            }
            if hard_link {
                return Some(true);
            }
        }
        if self.set.make == Make::SymbolicLink && dst_is_link {
            return Some(false);
        }
        if self.set.follow == Follow::Never {
            let resolve = |path: &Path, lstat: Metadata| {
                if lstat.file_type().is_symlink() {
                    std::fs::metadata(path).ok()
                } else {
                    Some(lstat)
                }
            };
            let (Some(s), Some(d)) = (resolve(src, src_link), resolve(dst, dst_link)) else {
                return Some(false);
            };
            if !same_inode(&s, &d) {
                return Some(false);
            }
            if hard_link {
                return Some(!dst_is_link);
            }
        }
        None
    }

    /// `-i`: GNU's question on stderr (another for a target this user may not
    /// write), the answer from stdin.
    fn ask(&self, dst: &Path, found: &Metadata) -> Result<bool> {
        let writable = found.file_type().is_symlink()
            || rustix::process::geteuid().is_root()
            || rustix::fs::accessat(CWD, dst, rustix::fs::Access::WRITE_OK, AtFlags::EACCESS)
                .is_ok();
        let (mode, perms) = (found.mode() & 0o7777, words::permissions(found.mode()));
        let question = if writable {
            format!("overwrite {}? ", q(dst))
        } else if self.set.force || self.set.remove_destination {
            format!("replace {}, overriding mode {mode:04o} ({perms})? ", q(dst))
        } else {
            format!(
                "unwritable {} (mode {mode:04o}, {perms}); try anyway? ",
                q(dst)
            )
        };
        eprint!("{}: {question}", self.program.prefix());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(answer.trim_start().starts_with(['y', 'Y']))
    }

    /// Writes `src` into the existing `dst` in place, opened `O_WRONLY|O_TRUNC`
    /// as GNU cp opens it (so its permissions decide, and a device or FIFO is
    /// written into, never replaced). `None` when it could not be opened and was
    /// removed (`-f`), or was gone: then a new file is made.
    pub(super) fn copy_into_existing(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        existing: &Metadata,
        file: &File,
    ) -> Result<Option<String>> {
        let truncate = if self.set.attributes_only {
            OFlags::empty()
        } else {
            OFlags::TRUNC
        };
        let sink = match rustix::fs::open(
            dst,
            OFlags::WRONLY | OFlags::CLOEXEC | truncate,
            Mode::empty(),
        ) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(_) if self.set.force => {
                // GNU's --force: what cannot be opened is removed and made anew.
                match std::fs::remove_file(dst) {
                    Ok(()) if self.set.verbose > 0 => {
                        self.print(&format!("removed {}\n", q(dst)))?
                    }
                    Ok(()) => {}
                    Err(gone) if gone.kind() == std::io::ErrorKind::NotFound => {}
                    Err(gone) => {
                        return Err(gone).with_context(|| format!("cannot remove {}", q(dst)))
                    }
                }
                return Ok(None);
            }
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot create regular file {}", q(dst)))
            }
        };
        let kind = if existing.is_file() {
            FdKind::File
        } else {
            FdKind::of(&sink)?
        };
        let how = if self.set.attributes_only {
            String::new()
        } else {
            self.fill(file, meta, &sink, kind, dst)
                .map_err(|e| copy_failed(e, src, dst))?
        };
        // An existing file keeps its mode unless -p, as when GNU cp opens it O_TRUNC.
        let current = existing.mode() & 0o7777;
        let mode = if self.set.preserve.mode {
            meta.mode() & 0o7777
        } else {
            current
        };
        if existing.is_file() {
            self.keep_attributes(file, &sink, dst, meta, mode, current)?;
        }
        Ok(Some(how))
    }
}
