//! Uploads to `zcopy serve --upload`: `PUT /path` with a `Content-Length` (what
//! `curl -T` sends), the body spliced socket → pipe → file under a temporary name
//! beside the target, renamed over it when the last byte is in.
//!
//! The target's directory is opened with `openat2(RESOLVE_BENEATH)` from the served
//! directory, as downloads are, and the file is created and renamed by name inside
//! that directory: no `..`, no symlink, no name can place a byte outside the served
//! tree. A symlink under the target name is replaced, never followed. A dot name
//! is refused unless `--hidden` (it would be stored where nobody could get it), a
//! part file's or manifest's name always (403). A directory
//! that does not exist is not created (409), and a body the disk cannot hold is
//! refused before it is read (507, from `fallocate`). An upload cut off (the peer closes or
//! stalls past the idle timeout, the server stops) removes its temporary file;
//! only a killed server leaves a `.NAME.*.zcopy-part` behind.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FallocateFlags, Mode, OFlags};
use zcopy::{EngineChoice, FdKind, Options, Syscalls, TransferState};

use crate::files::{self, Root};
use crate::response::Status;

/// What a PUT request gets.
pub enum Start {
    /// Refused before a byte of the body is read: this status, this reason.
    Refuse(Status, &'static str),
    /// Accepted: read the body into this upload.
    Receive(Box<Upload>),
}

/// An upload in progress: its directory, temporary file and what is left to read.
pub struct Upload {
    dir: File,
    temp: String,
    name: String,
    file: File,
    remaining: u64,
    received: u64,
    finished: bool,
    /// The socket → file transfer of the bytes after those read with the head,
    /// kept across readiness events (with its splice pipe).
    transfer: Option<TransferState>,
}

/// Tells the temporary names of uploads in flight apart.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Checks a `PUT target` of `length` bytes and creates its temporary file; dot
/// names only with `hidden`.
pub fn start(root: &Root, target: &str, length: u64, max: u64, hidden: bool) -> Start {
    if length > max {
        return Start::Refuse(
            Status::ContentTooLarge,
            "larger than this server accepts (--max-upload)",
        );
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Start::Refuse(Status::BadRequest, "malformed path");
    }
    let Some(decoded) = crate::percent::decode(path) else {
        return Start::Refuse(Status::BadRequest, "malformed path");
    };
    if decoded.contains(&0) {
        return Start::Refuse(Status::Forbidden, "not stored");
    }
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Start::Refuse(Status::BadRequest, "the path is not UTF-8");
    };
    let mut parts = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return Start::Refuse(Status::Forbidden, "not stored"),
            name if files::in_flight(name.as_bytes()) => {
                return Start::Refuse(Status::Forbidden, "not stored: a part file's name")
            }
            name if !files::servable(name, hidden) => {
                return Start::Refuse(
                    Status::Forbidden,
                    "not stored: a name starting with '.' (serve --hidden takes them)",
                )
            }
            name => parts.push(name),
        }
    }
    let (Some(name), false) = (parts.pop(), decoded.ends_with('/')) else {
        return Start::Refuse(Status::Conflict, "a directory cannot be uploaded onto");
    };
    let parent = if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    };
    let dir = match files::open_beneath(root.dir(), &parent) {
        Ok(dir) => dir,
        Err(e) => {
            return match files::refusal(e) {
                files::Resolved::Forbidden => Start::Refuse(Status::Forbidden, "not stored"),
                _ => Start::Refuse(
                    Status::Conflict,
                    "no such directory (uploads do not create them)",
                ),
            }
        }
    };
    if !dir.metadata().is_ok_and(|m| m.is_dir()) {
        return Start::Refuse(
            Status::Conflict,
            "no such directory (uploads do not create them)",
        );
    }
    if rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
    {
        return Start::Refuse(Status::Conflict, "a directory has that name");
    }
    let temp = format!(
        ".{name}.{}.{}.zcopy-part",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let file = match rustix::fs::openat(&dir, temp.as_str(), flags, Mode::from_raw_mode(0o644)) {
        Ok(fd) => File::from(fd),
        Err(_) => {
            return Start::Refuse(Status::Forbidden, "cannot create a file in that directory")
        }
    };
    // The body's blocks reserved at once: a full disk is refused before the body is
    // read, and the file system allocates its extents once (KEEP_SIZE: the size
    // still grows with the bytes written). EOPNOTSUPP and the like: written as is.
    let reserved = rustix::fs::fallocate(&file, FallocateFlags::KEEP_SIZE, 0, length);
    if let Err(rustix::io::Errno::NOSPC | rustix::io::Errno::DQUOT | rustix::io::Errno::FBIG) =
        reserved
    {
        let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        return Start::Refuse(
            Status::InsufficientStorage,
            "not enough space for this upload",
        );
    }
    Start::Receive(Box::new(Upload {
        dir,
        temp,
        name: name.to_string(),
        file,
        remaining: length,
        received: 0,
        finished: false,
        transfer: None,
    }))
}

impl Upload {
    /// Body bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The engine that moved the body (`-` if it all came with the head), for the
    /// access log.
    pub fn engine(&self) -> &'static str {
        self.transfer
            .as_ref()
            .and_then(TransferState::engine)
            .map_or("-", |e| e.name())
    }

    /// Syscalls the engines issued for the body.
    pub fn syscalls(&self) -> Syscalls {
        self.transfer
            .as_ref()
            .map_or_else(Syscalls::default, |t| t.report().syscalls)
    }

    /// Whether the whole body is in.
    pub fn complete(&self) -> bool {
        self.remaining == 0
    }

    /// Writes the body bytes that arrived with the head (taken from `input`).
    pub fn take_buffered(&mut self, input: &mut Vec<u8>) -> std::io::Result<()> {
        let n = input
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if n > 0 {
            self.file.write_all(&input[..n])?;
            input.drain(..n);
            self.remaining -= n as u64;
            self.received += n as u64;
        }
        Ok(())
    }

    /// Splices what the non-blocking socket has into the file; `Ok(true)` once the
    /// whole body is in.
    pub fn pump(&mut self, socket: impl AsFd) -> Result<bool, String> {
        if self.remaining == 0 {
            return Ok(true);
        }
        let transfer = match &mut self.transfer {
            Some(transfer) => transfer,
            None => {
                let options = Options::default()
                    .engine(EngineChoice::Auto)
                    .len(self.remaining)
                    .rusage(false);
                let state = TransferState::new(FdKind::Socket, FdKind::File, options)
                    .map_err(|e| e.to_string())?;
                self.transfer.insert(state)
            }
        };
        let before = transfer.moved();
        let status = transfer.run(socket.as_fd(), self.file.as_fd());
        let moved = transfer.moved() - before;
        self.remaining -= moved;
        self.received += moved;
        match status.map_err(|e| e.to_string())? {
            zcopy::Status::Done => Ok(true),
            zcopy::Status::WouldBlock(_) | zcopy::Status::More => Ok(false),
        }
    }

    /// Renames the complete upload over its target: 201 for a new file, 204 for
    /// one replaced.
    pub fn finish(mut self) -> Result<Status, String> {
        let replaced =
            rustix::fs::statat(&self.dir, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok();
        rustix::fs::renameat(&self.dir, self.temp.as_str(), &self.dir, self.name.as_str())
            .map_err(|e| format!("cannot rename into {}: {e}", self.name))?;
        self.finished = true;
        Ok(if replaced {
            Status::NoContent
        } else {
            Status::Created
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.finished {
            let _ = rustix::fs::unlinkat(&self.dir, self.temp.as_str(), AtFlags::empty());
        }
    }
}
