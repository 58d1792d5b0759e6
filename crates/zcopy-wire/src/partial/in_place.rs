//! rsync's quick check: whether the file already under an entry's name is the
//! file the sender has, so that nothing need be sent.

use std::fs::File;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::hash::file_digest_of;
use super::times;
use crate::frame::Entry;

/// Whether `name` in `dir` is a regular file of `entry`'s size and mtime; with
/// the entry's digest (`send -c`), of its size and content whatever its mtime,
/// which is then set to the entry's (as rsync -c does). A file that is the
/// entry's is given the entry's mode if only that differs, as rsync does.
pub fn same_file_in_place(dir: &File, name: &[u8], entry: &Entry) -> bool {
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
    if entry.digest.is_none() && (!same_time || same_mode) {
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
        if !same_time && rustix::fs::futimens(&file, &times(entry.mtime)).is_err() {
            return false;
        }
    }
    same_mode || rustix::fs::fchmod(&file, Mode::from_raw_mode(entry.mode)).is_ok()
}
