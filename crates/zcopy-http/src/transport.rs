//! How a connection's bytes travel: as they are, or through its TLS session; and
//! the reads and writes of each (a file body over TLS is read into a buffer and
//! encrypted: no sendfile without kTLS).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::buffer::spare_capacity;
use rustix::io::Errno;
use rustix::net::SendFlags;
use zcopy::{EngineChoice, FdKind, Options, TransferState};

use crate::tls_server::{Session, Stop};
use crate::upload::Upload;

/// The splice engine's pipe per connection: the default pipe size, since a
/// server holds one per open connection.
const PIPE_SIZE: usize = 64 << 10;
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 << 10;
/// File bytes read and encrypted at once over TLS: one full record.
const TLS_CHUNK: usize = 16 << 10;

/// A connection's transport.
pub enum Transport {
    /// Bytes go to and from the socket as they are.
    Plain,
    /// Every byte goes through the TLS session (boxed: most of a server's
    /// connections are idle, and a connection's size is what 10,000 idle ones cost).
    Tls(Box<Session>),
}

impl Transport {
    /// The TLS session, over HTTPS.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Transport::Plain => None,
            Transport::Tls(session) => Some(session),
        }
    }

    /// The TLS session, over HTTPS, to read or write through.
    pub fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Transport::Plain => None,
            Transport::Tls(session) => Some(session),
        }
    }

    /// Whether the connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

/// Reads what the socket has into `input`; `Ok(true)` when the socket is drained.
pub(crate) fn read_plain(socket: &OwnedFd, input: &mut Vec<u8>) -> Result<bool, Stop> {
    input.reserve(READ_CHUNK);
    let room = input.capacity() - input.len();
    match rustix::io::read(socket, spare_capacity(input)) {
        Ok(0) => Err(Stop::Closed),
        Ok(n) => Ok(n < room),
        Err(Errno::AGAIN) => Ok(true),
        Err(Errno::INTR) => Ok(false),
        Err(_) => Err(Stop::Closed),
    }
}

/// Sends `bytes` on the socket, or into its TLS session; the bytes taken.
/// `more`: more of the response follows at once (`MSG_MORE`; over TLS, the
/// records wait to leave with what follows).
pub(crate) fn send(
    socket: BorrowedFd<'_>,
    tls: Option<&mut Session>,
    bytes: &[u8],
    more: bool,
) -> Result<usize, Errno> {
    match tls {
        Some(tls) => tls.write(socket, bytes, more),
        None if more => rustix::net::send(socket, bytes, SendFlags::NOSIGNAL | SendFlags::MORE),
        None => rustix::net::send(socket, bytes, SendFlags::NOSIGNAL),
    }
}

/// Sends bytes `range` of `file` through TLS: read into `buffer`, encrypted,
/// written. `done` counts the bytes of the range rustls has taken;
/// `Ok(true)` once they all are.
pub(crate) fn send_file_tls(
    tls: &mut Session,
    socket: BorrowedFd<'_>,
    file: &File,
    range: std::ops::Range<u64>,
    done: &mut usize,
    more: bool,
    buffer: &mut Vec<u8>,
) -> Result<bool, String> {
    if buffer.len() < TLS_CHUNK {
        buffer.resize(TLS_CHUNK, 0);
    }
    loop {
        let at = range.start + *done as u64;
        if at >= range.end {
            return Ok(true);
        }
        // What the socket refused goes first: no file byte is read for nothing.
        if tls.blocked() && !tls.flush(socket).map_err(|e| e.to_string())? {
            return Ok(false);
        }
        let want = usize::try_from(range.end - at).map_or(TLS_CHUNK, |n| n.min(TLS_CHUNK));
        let n = match rustix::io::pread(file, &mut buffer[..want], at) {
            Ok(0) => return Err("the file shrank while it was sent".to_string()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(format!("reading the file: {e}")),
        };
        let last = at + n as u64 >= range.end;
        match tls.write(socket, &buffer[..n], more || !last) {
            Ok(taken) => *done += taken,
            Err(Errno::AGAIN) => return Ok(false),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Moves an upload's body on over TLS: the plaintext read with the head, then
/// what the socket has when `readable`; as [`receive`].
pub(crate) fn receive_tls(
    upload: &mut Upload,
    input: &mut Vec<u8>,
    tls: &mut Session,
    socket: &OwnedFd,
    mut readable: bool,
) -> Result<Option<bool>, String> {
    let before = upload.received();
    loop {
        upload.take_buffered(input).map_err(|e| e.to_string())?;
        if upload.complete() {
            return Ok(None);
        }
        if !readable {
            return Ok(Some(upload.received() > before));
        }
        match tls.read(socket.as_fd(), input) {
            Ok(drained) => readable = !drained,
            Err(Stop::Refused(e)) => return Err(format!("TLS: {e}")),
            Err(_) => return Err("the client closed the connection".to_string()),
        }
    }
}

/// Moves an upload's body on (the bytes read with the head, then what the socket
/// has when `readable`): `Some(moved)` while more is to come, `None` when it is in.
pub(crate) fn receive(
    upload: &mut Upload,
    input: &mut Vec<u8>,
    socket: &OwnedFd,
    readable: bool,
) -> Result<Option<bool>, String> {
    let before = upload.received();
    upload.take_buffered(input).map_err(|e| e.to_string())?;
    let done = if readable {
        upload.pump(socket)?
    } else {
        upload.complete()
    };
    Ok((!done).then_some(upload.received() > before))
}

/// The connection's engine state for sending bytes `start..start + len` of a
/// file on a plain socket: made on the first file body, kept for the next (so
/// the splice pipe is set up once per connection), `restart`ed for a new range.
pub(crate) fn file_transfer(
    slot: &mut Option<Box<TransferState>>,
    restart: bool,
    engine: EngineChoice,
    start: u64,
    len: u64,
) -> Result<&mut TransferState, String> {
    match slot {
        Some(transfer) => {
            if restart {
                transfer.restart(start, Some(len));
            }
            Ok(transfer)
        }
        None => {
            let options = Options::default()
                .engine(engine)
                .offset(start)
                .len(len)
                .pipe_size(PIPE_SIZE)
                .rusage(false);
            let state = TransferState::new(FdKind::File, FdKind::Socket, options)
                .map_err(|e| e.to_string())?;
            Ok(slot.insert(Box::new(state)))
        }
    }
}
