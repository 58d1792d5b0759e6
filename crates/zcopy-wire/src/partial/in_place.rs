//! rsync's quick check: whether the file already under an entry's name is the
//! file the sender has, so that nothing need be sent.

use std::fs::File;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::hash::file_digest_of;
use super::times;
use crate::attrs::Landing;
use crate::frame::Entry;

/// Whether `name` in `dir` is a regular file of `entry`'s size and mtime; with
/// the entry's digest (`send -c`), of its size and content whatever its mtime.
/// With `settle` (not a dry run), a file that is the entry's is given the
/// entry's mtime (as rsync -c does), mode, owner, group, xattrs and ACLs where
/// only those differ, as rsync does: its data is not sent again.
pub fn same_file_in_place(
    dir: &File,
    name: &[u8],
    entry: &Entry,
    settle: Option<&Landing>,
) -> bool {
    let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return false;
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || Some(st.st_size as u64) != entry.size
    {
        return false;
    }
    let same_time = st.st_mtime == entry.mtime.0 && st.st_mtime_nsec as u32 == entry.mtime.1;
    let same_mode = st.st_mode & 0o7777 == entry.mode;
    if entry.digest.is_none() && (!same_time || same_mode && entry.attrs.is_empty()) {
        return same_time;
    }
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let file = File::from(fd);
    if let Some(digest) = entry.digest {
        if !file_digest_of(&file, st.st_size as u64, entry.block).is_ok_and(|d| d == digest) {
            return false;
        }
    }
    let Some(landing) = settle else {
        return true;
    };
    if !same_time && rustix::fs::futimens(&file, &times(entry.mtime)).is_err() {
        return false;
    }
    landing
        .apply(std::os::fd::AsFd::as_fd(&file), entry)
        .is_ok()
}
