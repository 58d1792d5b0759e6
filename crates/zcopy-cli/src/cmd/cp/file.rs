//! Regular files: a new copy made beside its name, filled, and put in place.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use rustix::fs::{Mode, OFlags};
use zcopy::FdKind;

use super::options::{Follow, When};
use super::part::{self, PartFile, Target};
use super::words::q;
use super::Copier;

impl Copier {
    /// A regular file (or, without `-r` or with `--copy-contents`, what a special
    /// file reads as) to `dst`. An existing target (`existing`, stat'ed through a
    /// symlink) is opened and truncated, as GNU cp does; a new one is made beside
    /// its name and put in place when complete.
    pub(super) fn copy_file(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        existing: Option<&Metadata>,
        opened: Option<File>,
        at: Option<At<'_>>,
    ) -> Result<String> {
        let file = match opened {
            Some(file) => file,
            None => {
                let nofollow = if self.set.follow == Follow::Never {
                    OFlags::NOFOLLOW
                } else {
                    OFlags::empty()
                };
                rustix::fs::open(
                    src,
                    OFlags::RDONLY | OFlags::CLOEXEC | nofollow,
                    Mode::empty(),
                )
                .map(File::from)
                .with_context(|| format!("cannot open {} for reading", q(src)))?
            }
        };
        if let Some(existing) = existing {
            if let Some(how) = self.copy_into_existing(src, dst, meta, existing, &file)? {
                return Ok(how);
            }
        }
        let mode = self.new_mode(meta, 0o666);
        // POSIXLY_CORRECT: a dangling symlink at the target is written through
        // (looked for only then: otherwise placing the file finds it).
        let dangling = || std::fs::symlink_metadata(dst).is_ok_and(|m| m.file_type().is_symlink());
        if existing.is_none() && self.set.open_dangling && dangling() {
            let sink = rustix::fs::open(
                dst,
                OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
            )
            .map(File::from)
            .with_context(|| format!("cannot create regular file {}", q(dst)))?;
            let how = self
                .fill(&file, meta, &sink, FdKind::File, dst)
                .map_err(|e| copy_failed(e, src, dst))?;
            self.keep_attributes(&file, &sink, dst, meta, mode, mode & 0o777 & !self.umask)?;
            return Ok(how);
        }
        if dst.as_os_str().as_bytes().ends_with(b"/") {
            // A name with a trailing slash can only be a directory's.
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
                .with_context(|| format!("cannot create regular file {}", q(dst)));
        }
        // By name in the open target directory, unless a symlink led elsewhere.
        let at = at.map(At::target);
        // What is read from a FIFO or a device may never end: its copy is made
        // under its name at once, as GNU cp makes it (a writer may wait to see it).
        let in_place = self.set.inplace || !meta.is_file();
        // A file visible under its name before its owner is set is made private
        // until then, as in GNU cp: the owner-to-be's group must not open it early.
        let private = if in_place && self.set.preserve.ownership {
            0o700
        } else {
            0o777
        };
        let temp = PartFile::create(dst, at, mode & private, in_place)
            .with_context(|| format!("cannot create regular file {}", q(dst)))?;
        let how = if self.set.attributes_only {
            String::new()
        } else {
            self.fill(&file, meta, temp.as_file(), FdKind::File, dst)
                .map_err(|e| copy_failed(e, src, dst))?
        };
        let created_as = mode & private & !self.umask;
        self.keep_attributes(&file, temp.as_file(), dst, meta, mode, created_as)?;
        temp.persist(dst, at).map_err(|e| match e {
            part::Persist::Dangling => {
                anyhow::anyhow!("not writing through dangling symlink {}", q(dst))
            }
            part::Persist::Io(e) => {
                anyhow::Error::from(e).context(format!("cannot create regular file {}", q(dst)))
            }
        })?;
        Ok(how)
    }

    /// Fills `sink` (a new file, or a device written in place) with the contents of
    /// `src` and says how (`zcopy::copy_contents`: a clone, else the engines over
    /// the data segments); `dst` names it on the progress bar.
    pub(super) fn fill(
        &self,
        src: &File,
        meta: &Metadata,
        sink: &File,
        sink_kind: FdKind,
        dst: &Path,
    ) -> Result<String> {
        let options = zcopy::CopyOptions::default()
            .reflink(match self.set.reflink {
                When::Auto => zcopy::Reflink::Auto,
                When::Always => zcopy::Reflink::Always,
                When::Never => zcopy::Reflink::Never,
            })
            .sparse(match self.set.sparse {
                When::Auto => zcopy::Sparse::Auto,
                When::Always => zcopy::Sparse::Always,
                When::Never => zcopy::Sparse::Never,
            })
            .engine(self.set.engine);
        let bar = self.bar.as_ref();
        if let Some(bar) = bar {
            bar.set_message(dst.display().to_string());
        }
        let before = bar.map_or(0, ProgressBar::position);
        let copied = zcopy::copy_contents(src, meta, sink, sink_kind, &options, &mut |moved| {
            if let Some(bar) = bar {
                bar.set_position(before + moved);
            }
        })
        .map_err(|e| match e {
            zcopy::Error::Clone(e) => anyhow::Error::from(CloneFailed(e)),
            e => e.into(),
        })?;
        Ok(copied.describe())
    }
}

/// `--reflink=always` met a file system that cannot clone.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CloneFailed(std::io::Error);

/// A failure while filling `dst` from `src`, in GNU's words for each kind.
pub(super) fn copy_failed(e: anyhow::Error, src: &Path, dst: &Path) -> anyhow::Error {
    if e.downcast_ref::<CloneFailed>().is_some() {
        e.context(format!("failed to clone {} from {}", q(dst), q(src)))
    } else {
        e.context(format!("error copying {} to {}", q(src), q(dst)))
    }
}

/// A regular file (by its directory entry) in a directory being copied, reached by
/// name from the open source and target directories rather than by walking its
/// whole path again (four walks per file, through every component).
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub(super) src_dir: BorrowedFd<'a>,
    pub(super) dst_dir: BorrowedFd<'a>,
    pub(super) name: &'a OsStr,
}

impl<'a> At<'a> {
    /// The source opened without following a symlink, and its metadata; `None`
    /// if it is no longer a regular file (or cannot be opened: the path-based
    /// code that follows then reports why, by name).
    pub(super) fn open_source(self) -> Option<(File, Metadata)> {
        use rustix::fs::OFlags;
        let fd = rustix::fs::openat(
            self.src_dir,
            self.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let file = File::from(fd);
        let meta = file.metadata().ok()?;
        meta.is_file().then_some((file, meta))
    }

    fn target(self) -> Target<'a> {
        (self.dst_dir, self.name)
    }
}
