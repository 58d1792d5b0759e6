//! Hard links, symlinks and the links of `--preserve=links`.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rustix::fs::{AtFlags, CWD};

use super::attributes::timestamps;
use super::operands::{same_inode, split_last};
use super::part::temp_name;
use super::words::q;
use super::Copier;

impl Copier {
    /// `-l`: `dst` as another name of `src` (of what it points to, when
    /// following); with `-f`, what is at `dst` is replaced.
    pub(super) fn hard_link(&self, src: &Path, dst: &Path, follow: bool) -> Result<String> {
        let flags = if follow {
            AtFlags::SYMLINK_FOLLOW
        } else {
            AtFlags::empty()
        };
        let made = self.make_or_replace(dst, |at| rustix::fs::linkat(CWD, src, CWD, at, flags));
        made.with_context(|| format!("cannot create hard link {} to {}", q(dst), q(src)))?;
        Ok("hard link".into())
    }

    /// `-s`: `dst` as a symlink to `src`, which must be absolute unless `dst`
    /// is in the current directory (a relative one would point elsewhere).
    pub(super) fn symbolic_link(&self, src: &Path, dst: &Path) -> Result<String> {
        if !src.is_absolute() {
            let parent = split_last(dst).0;
            let here = parent == Path::new(".")
                || match (std::fs::metadata("."), std::fs::metadata(parent)) {
                    (Ok(dot), Ok(parent)) => same_inode(&dot, &parent),
                    _ => true,
                };
            if !here {
                bail!(
                    "{}: can make relative symbolic links only in current directory",
                    dst.display()
                );
            }
        }
        let made = self.make_or_replace(dst, |at| rustix::fs::symlink(src, at));
        made.with_context(|| format!("cannot create symbolic link {} to {}", q(dst), q(src)))?;
        Ok("symbolic link".into())
    }

    /// Makes `dst` with `make`; where something is there and `-f` was given,
    /// makes it under a temporary name and renames that over it.
    fn make_or_replace(
        &self,
        dst: &Path,
        make: impl Fn(&Path) -> rustix::io::Result<()>,
    ) -> std::io::Result<()> {
        match make(dst) {
            Err(rustix::io::Errno::EXIST) if self.set.force => {
                let temp = temp_name(dst);
                make(&temp)?;
                std::fs::rename(&temp, dst).inspect_err(|_| {
                    let _ = std::fs::remove_file(&temp);
                })?;
                if self.set.verbose > 0 {
                    let _ = self.print(&format!("removed {}\n", q(dst)));
                }
                Ok(())
            }
            other => Ok(other?),
        }
    }

    pub(super) fn copy_symlink(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
    ) -> Result<String> {
        let target = std::fs::read_link(src)
            .with_context(|| format!("cannot read symbolic link {}", q(src)))?;
        let temp = temp_name(dst);
        std::os::unix::fs::symlink(&target, &temp)
            .with_context(|| format!("cannot create symbolic link {}", q(dst)))?;
        let kept = self.keep_link_attributes(&temp, meta);
        if let Err(e) = kept.and_then(|()| {
            std::fs::rename(&temp, dst)
                .with_context(|| format!("cannot create symbolic link {}", q(dst)))
        }) {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok("symbolic link".into())
    }

    /// A symlink's own owner and times, with `-a`.
    pub(super) fn keep_link_attributes(&self, link: &Path, meta: &Metadata) -> Result<()> {
        if self.set.preserve.ownership {
            let owner = rustix::fs::chownat(
                CWD,
                link,
                Some(rustix::fs::Uid::from_raw(meta.uid())),
                Some(rustix::fs::Gid::from_raw(meta.gid())),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            // Only root may give a file away: GNU cp keeps going too.
            match owner {
                Ok(()) | Err(rustix::io::Errno::PERM) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("failed to preserve ownership for {}", q(link)))
                }
            }
        }
        if self.set.preserve.timestamps {
            rustix::fs::utimensat(CWD, link, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
                .with_context(|| format!("preserving times for {}", q(link)))?;
        }
        Ok(())
    }
}

/// `--preserve=links`: `dst` becomes another name of the file already copied to `first`.
pub(super) fn link_again(first: &Path, dst: &Path, replace: bool) -> Result<()> {
    if replace {
        std::fs::remove_file(dst).with_context(|| format!("cannot remove {}", q(dst)))?;
    }
    std::fs::hard_link(first, dst)
        .with_context(|| format!("cannot create hard link {} to {}", q(dst), q(first)))
}
