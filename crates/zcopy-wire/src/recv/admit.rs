//! Who a receiver lets in: the secret and TLS, or on loopback the peer socket's
//! owner; senders of the wrong kind are told why before a byte is read as data.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{fail, Context, Error, Result};
use crate::frame::{self, Greeting, Msg};
use crate::net;
use crate::peer_owner;

use super::Receiver;

impl Receiver {
    /// Socket options; then, when a secret is required, the TLS handshake and the
    /// secret's proof (nothing is read as a name before it). Without a secret, a
    /// loopback peer must be this user or root ([`peer_owner`]).
    pub fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Result<TcpStream> {
        let tls = self.tls.as_ref().filter(|_| !self.config.raw);
        // Read now, from the TCP socket: over TLS the session may read a pump's.
        if let Some(uid) = stream
            .local_addr()
            .ok()
            .filter(|_| !self.config.raw)
            .and_then(|local| peer_owner::uid(local, peer))
        {
            self.local_peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(peer, uid);
        }
        // First of all: a peer that sends and closes at once leaves no owner to read.
        if tls.is_none() && !self.config.any_local_user {
            self.refuse_other_user(&stream, peer)?;
        }
        net::keep_alive(&stream, self.config.timeout)
            .with_context(|| format!("{peer}: socket options"))?;
        let Some(tls) = tls else {
            return Ok(stream);
        };
        refuse_plain_sender(&stream, peer)?;
        let inner = tls.accept(stream, &peer.to_string())?;
        net::timeouts(&inner, self.config.timeout)
            .with_context(|| format!("{peer}: socket options"))?;
        Ok(inner)
    }

    /// Another local user's loopback connection, to a receiver without a secret,
    /// is told why (framed) or cut off (raw) before a byte is read as data.
    fn refuse_other_user(&self, stream: &TcpStream, peer: SocketAddr) -> Result<()> {
        let local = stream
            .local_addr()
            .with_context(|| format!("{peer}: local address"))?;
        let Err(e) = peer_owner::admit(local, peer) else {
            return Ok(());
        };
        if self.config.raw {
            net::lingering_close(stream, Duration::from_secs(2));
        } else {
            refuse_greeting(stream, &e.to_string());
        }
        Err(Error::Auth(format!("{peer}: {e}")))
    }
}

/// A receiver that needs a secret meets a sender without one (its greeting comes
/// where a TLS handshake should): it says so to both sides.
fn refuse_plain_sender(stream: &TcpStream, peer: SocketAddr) -> Result<()> {
    let mut first = [0u8; 1];
    let n = loop {
        match rustix::net::recv(stream, &mut first, rustix::net::RecvFlags::PEEK) {
            Ok((n, _)) => break n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(std::io::Error::from(e)).with_context(|| format!("{peer}: receiving"))
            }
        }
    };
    // 0x16: a TLS handshake record.
    if n == 1 && first[0] != 0x16 {
        refuse_greeting(stream, frame::NEEDS_SECRET);
        return Err(Error::Auth(format!(
            "{peer}: a sender without the secret; refused, nothing written"
        )));
    }
    Ok(())
}

/// Reads a framed sender's greeting and answers it with `reason`, the first and
/// last message of the connection.
fn refuse_greeting(stream: &TcpStream, reason: &str) {
    let mut greeting = [0u8; Greeting::LEN];
    let _ = (&*stream).read_exact(&mut greeting);
    let mut out = Vec::new();
    Msg::Err {
        id: 0,
        reason: reason.into(),
    }
    .encode(&mut out);
    let _ = (&*stream).write_all(&out);
    net::lingering_close(stream, Duration::from_secs(2));
}

/// A raw receiver sees a framed sender's greeting: it says so to both sides
/// instead of writing the protocol's bytes as if they were the file.
pub fn refuse_framed_sender(stream: &TcpStream, peer: SocketAddr) -> Result<()> {
    let mut first = [0u8; 5];
    let n = loop {
        match rustix::net::recv(
            stream,
            &mut first,
            rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::WAITALL,
        ) {
            Ok((n, _)) => break n,
            Err(rustix::io::Errno::INTR) => {}
            // The transfer itself will meet and report the error.
            Err(_) => return Ok(()),
        }
    };
    if n == first.len() && &first[..4] == frame::MAGIC && first[4] >= 2 {
        let mut out = Vec::new();
        Msg::Err {
            id: 0,
            reason: "this receiver takes raw bytes (recv --raw): add --raw to send, or drop it from recv".into(),
        }
        .encode(&mut out);
        let _ = (&*stream).write_all(&out);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        fail!("{peer}: a framed zcopy sender connected to this --raw receiver (add --raw to send, or drop it from recv); nothing written");
    }
    Ok(())
}
