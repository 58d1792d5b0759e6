//! An archive's bytes `start..end` on a connection. On a plain socket the headers
//! and padding go out by `send` (`MSG_MORE`, gathered so that one member's padding
//! and the next member's header leave in one call), and every member's content by
//! the connection's transfer engine straight from its file (sendfile under
//! `auto`): the archive costs no copy through user space that the file itself
//! would not. Over TLS in user space, the bytes are read into the worker's buffer
//! ([`Archive::read_at`]) and encrypted.
//!
//! A member file is opened when its first byte is due and checked against the plan
//! then and after its last byte ([`Archive::verify`]); a change is an error that
//! ends the connection, so a client never gets a short member or one of two
//! versions under a `Content-Length` that promised the planned bytes.

use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;

use rustix::io::Errno;
use zcopy::{EngineChoice, Syscalls, TransferState};

use super::{changed, Archive, Opened, Piece};
use crate::files::Root;
use crate::tls_server::Session;
use crate::transport::{file_transfer, send};

/// Headers and padding gathered for one `send`, at most.
const GATHER: usize = 64 << 10;
/// Bytes read and encrypted at once over TLS: one full record.
const TLS_CHUNK: usize = 16 << 10;

/// The part of an archive a response sends, and how far it is.
pub struct Body {
    archive: Rc<Archive>,
    /// The next byte the socket (or the TLS session) has not taken.
    pos: u64,
    end: u64,
    /// Header and padding bytes from `pos` on, staged for `send`.
    staged: Vec<u8>,
    staged_sent: usize,
    /// The member file being sent.
    opened: Opened,
    /// Where in the archive the running file transfer began.
    sending: Option<u64>,
}

impl Body {
    /// Bytes `start..end` of `archive`.
    pub fn new(archive: Rc<Archive>, start: u64, end: u64) -> Body {
        Body {
            archive,
            pos: start,
            end,
            staged: Vec::new(),
            staged_sent: 0,
            opened: None,
            sending: None,
        }
    }

    /// The next byte to send.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Sends on a plain socket, member contents through the connection's transfer
    /// state in `slot` (`engine`); `Ok(true)` when all is sent, `Ok(false)` when
    /// the socket is full. The engines' syscalls are added to `syscalls`.
    pub fn send_plain(
        &mut self,
        root: &Root,
        socket: BorrowedFd<'_>,
        slot: &mut Option<Box<TransferState>>,
        engine: EngineChoice,
        syscalls: &mut Syscalls,
    ) -> Result<bool, String> {
        loop {
            if self.staged_sent < self.staged.len() {
                let rest = &self.staged[self.staged_sent..];
                let last = self.pos + rest.len() as u64 >= self.end;
                match send(socket, None, rest, !last) {
                    Ok(n) => {
                        self.staged_sent += n;
                        self.pos += n as u64;
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => return Ok(false),
                    Err(e) => return Err(e.to_string()),
                }
                continue;
            }
            if self.pos >= self.end {
                return Ok(true);
            }
            let Some(Piece::File {
                member,
                path,
                offset,
                len,
            }) = self.archive.piece_at(self.pos)
            else {
                self.stage();
                continue;
            };
            // Whether this sends the member's last byte (a range may end before it).
            let to_end = len <= self.end - self.pos;
            let len = len.min(self.end - self.pos);
            let file = match &self.opened {
                Some((open, file)) if *open == member => file,
                _ => {
                    let file = self.archive.open(root, member).map_err(|e| e.to_string())?;
                    &self.opened.insert((member, file)).1
                }
            };
            let restart = self.sending.is_none();
            let start = *self.sending.get_or_insert(self.pos);
            let transfer = file_transfer(slot, restart, engine, offset, len)?;
            let status = transfer.run(file.as_fd(), socket);
            self.pos = start + transfer.moved();
            match status {
                Ok(zcopy::Status::Done) => {
                    syscalls.add(&transfer.report().syscalls);
                    self.sending = None;
                    if to_end {
                        self.archive
                            .verify(member, file)
                            .map_err(|e| e.to_string())?;
                    }
                }
                Ok(_) => return Ok(false),
                Err(zcopy::Error::SourceShrank { .. }) => {
                    syscalls.add(&transfer.report().syscalls);
                    return Err(changed(path).to_string());
                }
                Err(e) => {
                    syscalls.add(&transfer.report().syscalls);
                    return Err(format!("{}: {e}", String::from_utf8_lossy(path)));
                }
            }
        }
    }

    /// Stages the header and padding bytes from `pos` up to the next member
    /// content, the end, or [`GATHER`] bytes.
    fn stage(&mut self) {
        self.staged.clear();
        self.staged_sent = 0;
        let mut at = self.pos;
        while at < self.end && self.staged.len() < GATHER {
            let room = usize::try_from(self.end - at).unwrap_or(usize::MAX);
            match self.archive.piece_at(at) {
                Some(Piece::Bytes(bytes)) => {
                    let n = bytes.len().min(room);
                    self.staged.extend_from_slice(&bytes[..n]);
                    at += n as u64;
                }
                Some(Piece::Zeros(len)) => {
                    let n = usize::try_from(len).unwrap_or(usize::MAX).min(room);
                    self.staged.resize(self.staged.len() + n, 0);
                    at += n as u64;
                }
                Some(Piece::File { .. }) | None => break,
            }
        }
    }

    /// Sends through `tls`, the bytes read into `buffer` and encrypted; as
    /// [`Body::send_plain`].
    pub fn send_tls(
        &mut self,
        root: &Root,
        tls: &mut Session,
        socket: BorrowedFd<'_>,
        buffer: &mut Vec<u8>,
    ) -> Result<bool, String> {
        if buffer.len() < TLS_CHUNK {
            buffer.resize(TLS_CHUNK, 0);
        }
        loop {
            if self.pos >= self.end {
                return Ok(true);
            }
            // What the socket refused goes first: no file byte is read for nothing.
            if tls.blocked() && !tls.flush(socket).map_err(|e| e.to_string())? {
                return Ok(false);
            }
            let want = usize::try_from(self.end - self.pos).map_or(TLS_CHUNK, |n| n.min(TLS_CHUNK));
            let mut n = 0;
            while n < want {
                let at = self.pos + n as u64;
                let got = self
                    .archive
                    .read_at(root, at, &mut buffer[n..want], &mut self.opened)
                    .map_err(|e| e.to_string())?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            let last = self.pos + n as u64 >= self.end;
            match tls.write(socket, &buffer[..n], !last) {
                Ok(taken) => self.pos += taken as u64,
                Err(Errno::AGAIN) => return Ok(false),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}
