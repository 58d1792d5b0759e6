//! FIFOs, devices and sockets, made again.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use rustix::fs::{FileType, Mode, CWD};

use super::part::temp_name;
use super::words::q;
use super::Copier;

impl Copier {
    /// A FIFO, device or socket met by `-r`: made again, as GNU cp does (without
    /// `-r` their contents are copied instead, like a regular file's).
    pub(super) fn copy_special(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
    ) -> Result<String> {
        let kind = meta.file_type();
        let (file_type, words) = if kind.is_fifo() {
            (FileType::Fifo, "fifo")
        } else if kind.is_char_device() {
            (FileType::CharacterDevice, "character device")
        } else if kind.is_block_device() {
            (FileType::BlockDevice, "block device")
        } else if kind.is_socket() {
            (FileType::Socket, "socket")
        } else {
            bail!("cannot copy special file {}", q(src));
        };
        let temp = temp_name(dst);
        let mode = meta.mode() & 0o7777;
        rustix::fs::mknodat(
            CWD,
            &temp,
            file_type,
            Mode::from_raw_mode(mode & !self.umask),
            meta.rdev(),
        )
        .with_context(|| format!("cannot create special file {}", q(dst)))?;
        let kept = self.keep_link_attributes(&temp, meta).and_then(|()| {
            if self.set.preserve.mode {
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(std::fs::rename(&temp, dst)?)
        });
        if let Err(e) = kept {
            let _ = std::fs::remove_file(&temp);
            return Err(e).with_context(|| format!("cannot create special file {}", q(dst)));
        }
        Ok(words.into())
    }
}
