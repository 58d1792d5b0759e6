//! `serve --tls-cert FILE --tls-key FILE`: HTTPS inside the event loops.
//!
//! A TLS connection's [`Session`] (a rustls `ServerConnection`) sits between its
//! state machine ([`crate::conn`]) and its non-blocking socket: what the socket has
//! goes in through `read_tls` and comes out as the request's plaintext; a response
//! goes in as plaintext and leaves as records, the records of a turn in one
//! `sendmsg`. The handshake runs in the same loop turns as everything else, never
//! blocking the loop, and must be done within `--header-timeout` of the accept.
//!
//! Bodies go read → encrypt → write: without kTLS (this kernel has no `tls` ULP) the
//! CPU encrypts every byte, so sendfile cannot be used; a file's bytes are read
//! into the worker's buffer (1 CPU copy), copied into a record and encrypted in
//! place (1), and written (1). A body of up to 4 KiB rides in the head's record.
//!
//! A plain-HTTP request on the TLS port is recognised by its first byte, peeked
//! before rustls sees it (a letter, where TLS starts with 0x16: what nginx checks),
//! and answered 400 in clear saying to use https://. TLS 1.2 and 1.3, ALPN
//! `http/1.1`; no HSTS header is sent.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use zcopy_wire::tls;

/// Reads the PEM certificate chain and private key.
pub fn load(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| bad(format!("{}: not a PEM certificate ({e})", cert.display())))?;
    if chain.is_empty() {
        return Err(bad(format!("{}: no certificate in it", cert.display())));
    }
    let key_path = key;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(format!("{}: not a PEM private key ({e})", key.display())))?;
    let mut config = ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            bad(format!(
                "{} and {}: the key does not match the certificate ({e})",
                cert.display(),
                key_path.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One client's TLS session.
pub struct Session {
    tls: ServerConnection,
    /// The first byte has been checked for plain HTTP.
    checked: bool,
    /// The socket refused the records last flushed: wait for it before encrypting more.
    blocked: bool,
}

/// Why a connection's input ended.
pub enum Stop {
    /// The peer closed (TCP end or TLS `close_notify`), or the socket failed.
    Closed,
    /// The first byte is a letter: a plain-HTTP request on the TLS port.
    PlainHttp,
    /// rustls refused the peer's bytes (a failed handshake, a forged record).
    Refused(rustls::Error),
}

impl Session {
    /// A session for a new connection, on the server's TLS configuration.
    pub fn new(config: &Arc<ServerConfig>) -> Result<Session, rustls::Error> {
        Ok(Session {
            tls: ServerConnection::new(config.clone())?,
            checked: false,
            blocked: false,
        })
    }

    /// Whether the handshake is still under way.
    pub fn handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Whether records wait for the socket to take them.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Whether the socket refused the last records: nothing more is encrypted
    /// until they are out (so a connection holds at most rustls' 64 KiB).
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    /// Reads what the socket has, and appends its plaintext to `input`;
    /// `Ok(true)` when the socket is drained (a short read or `EAGAIN`). Records
    /// the handshake or rustls must answer are sent at once.
    pub fn read(&mut self, socket: BorrowedFd<'_>, input: &mut Vec<u8>) -> Result<bool, Stop> {
        if !self.checked {
            let mut first = [0u8; 1];
            match rustix::net::recv(socket, &mut first, RecvFlags::PEEK) {
                Ok((_, 0)) => return Err(Stop::Closed),
                Ok(_) if first[0].is_ascii_alphabetic() => return Err(Stop::PlainHttp),
                Ok(_) => self.checked = true,
                Err(Errno::AGAIN) => return Ok(true),
                Err(Errno::INTR) => return Ok(false),
                Err(_) => return Err(Stop::Closed),
            }
        }
        let mut io = SocketIo {
            socket,
            short: false,
        };
        let drained = match self.tls.read_tls(&mut io) {
            Ok(0) => return Err(Stop::Closed),
            Ok(_) => io.short,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(_) => return Err(Stop::Closed),
        };
        let state = match self.tls.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                // The alert rustls queued for the peer, if the socket takes it.
                let _ = self.flush(socket);
                return Err(Stop::Refused(e));
            }
        };
        let n = state.plaintext_bytes_to_read();
        if n > 0 {
            let at = input.len();
            input.resize(at + n, 0);
            if self.tls.reader().read_exact(&mut input[at..]).is_err() {
                return Err(Stop::Closed);
            }
        }
        if self.tls.wants_write() && self.flush(socket).is_err() {
            return Err(Stop::Closed);
        }
        Ok(drained)
    }

    /// Encrypts what rustls' buffer takes of `plaintext` and sends the records
    /// unless `more` follows at once; the bytes taken, or `EAGAIN` when none was.
    pub fn write(
        &mut self,
        socket: BorrowedFd<'_>,
        plaintext: &[u8],
        more: bool,
    ) -> Result<usize, Errno> {
        let mut taken = self.tls.writer().write(plaintext).unwrap_or(0);
        if taken == 0 {
            // rustls holds its 64 KiB: make room first.
            if !self.flush(socket)? {
                return Err(Errno::AGAIN);
            }
            taken = self.tls.writer().write(plaintext).unwrap_or(0);
            if taken == 0 {
                // An empty buffer that takes nothing: nothing would ever wake us.
                return Err(Errno::NOBUFS);
            }
        }
        if !more {
            self.flush(socket)?;
        }
        Ok(taken)
    }

    /// Sends the records rustls holds; `Ok(true)` when none is left.
    pub fn flush(&mut self, socket: BorrowedFd<'_>) -> Result<bool, Errno> {
        let mut io = SocketIo {
            socket,
            short: false,
        };
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut io) {
                // A socket that takes nothing without EAGAIN is gone.
                Ok(0) => return Err(Errno::PIPE),
                Ok(_) => {}
                Err(e) => match Errno::from_io_error(&e) {
                    Some(Errno::AGAIN) => {
                        self.blocked = true;
                        return Ok(false);
                    }
                    Some(Errno::INTR) => {}
                    Some(errno) => return Err(errno),
                    None => return Err(Errno::IO),
                },
            }
        }
        self.blocked = false;
        Ok(true)
    }

    /// Queues `close_notify`: the response before it was the last.
    pub fn close(&mut self) {
        self.tls.send_close_notify();
    }
}

/// The non-blocking socket as rustls reads and writes it.
struct SocketIo<'a> {
    socket: BorrowedFd<'a>,
    /// The last read returned less than asked: the socket is drained.
    short: bool,
}

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = rustix::io::read(self.socket, &mut *buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::net::send(self.socket, buf, SendFlags::NOSIGNAL)?)
    }

    // rustls hands over all the records it holds: one syscall for them.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut control = SendAncillaryBuffer::default();
        Ok(rustix::net::sendmsg(
            self.socket,
            bufs,
            &mut control,
            SendFlags::NOSIGNAL,
        )?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
