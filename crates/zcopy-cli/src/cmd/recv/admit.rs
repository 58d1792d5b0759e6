//! Who a receiver lets in: the secret and TLS, or on loopback the peer socket's
//! owner; senders of the wrong kind are told why before a byte is read as data.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zcopy_wire::frame::{self, Greeting, Msg};
use zcopy_wire::peer_owner;

use zcopy_wire::tls;

use super::{Args, Job};

impl Job {
    /// Socket options; then, when a secret is required, the TLS handshake and the
    /// secret's proof (nothing is read as a name before it). Without a secret, a
    /// loopback peer must be this user or root (`zcopy_wire::peer_owner`).
    pub(super) fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Result<TcpStream> {
        let tls = self.tls.as_ref().filter(|_| !self.raw);
        // First of all: a peer that sends and closes at once leaves no owner to read.
        if tls.is_none() && !self.any_local_user {
            self.refuse_other_user(&stream, peer)?;
        }
        zcopy_wire::net::keep_alive(&stream, self.timeout)
            .with_context(|| format!("{peer}: socket options"))?;
        let Some(tls) = tls else {
            return Ok(stream);
        };
        refuse_plain_sender(&stream, peer)?;
        let inner = tls.accept(stream, &peer.to_string())?;
        zcopy_wire::net::timeouts(&inner, self.timeout)
            .with_context(|| format!("{peer}: socket options"))?;
        if self.verbose {
            eprintln!("{peer}: secret proven; TLS 1.3; {}", tls.record_layer());
        }
        Ok(inner)
    }

    /// Another local user's loopback connection, to a receiver without a secret,
    /// is told why (framed) or cut off (raw) before a byte is read as data.
    pub(super) fn refuse_other_user(&self, stream: &TcpStream, peer: SocketAddr) -> Result<()> {
        let local = stream
            .local_addr()
            .with_context(|| format!("{peer}: local address"))?;
        let Err(e) = peer_owner::admit(local, peer) else {
            return Ok(());
        };
        if self.raw {
            zcopy_wire::net::lingering_close(stream, Duration::from_secs(2));
        } else {
            refuse_greeting(stream, &e.to_string());
        }
        Err(crate::exit::Coded {
            code: crate::exit::AUTH,
            message: format!("{peer}: {e}"),
        }
        .into())
    }
}

pub(super) const ANY_LOCAL_USER: &str =
    "zcopy: warning: --insecure on loopback: any local user can write here";

/// Decides how this receiver admits senders: a secret (given, or made here off
/// loopback) and TLS, or anyone (loopback; `--insecure`, with a warning).
pub(super) fn secure(args: &Args, local: SocketAddr) -> Result<Option<tls::Receiver>> {
    let loopback = local.ip().is_loopback();
    if args.raw {
        if args.secret_file.is_some() || args.identity.is_some() {
            return Err(crate::cmd::Usage("recv --raw takes plain bytes: it has no --secret-file or --identity (drop --raw to authenticate senders)".into()).into());
        }
        if !loopback && !args.insecure {
            return Err(crate::cmd::Usage(format!("recv --raw on {local} would take bytes from anyone who reaches it, in clear: add --insecure to accept that, or drop --raw (framed send/recv authenticate and encrypt)")).into());
        }
        if !loopback {
            eprintln!("zcopy: warning: recv --raw --insecure on {local}: anyone who reaches it can write, and the bytes cross the network in clear");
        } else if args.insecure {
            eprintln!("{ANY_LOCAL_USER}");
        }
        return Ok(None);
    }
    let (secret, made) = match tls::Secret::given(args.secret_file.as_deref())? {
        Some(secret) => (secret, None),
        None if loopback => {
            if args.insecure {
                eprintln!("{ANY_LOCAL_USER}");
            }
            return Ok(None);
        }
        None if args.insecure => {
            eprintln!("zcopy: warning: recv --insecure on {local}: anyone who reaches it can write into the output directory, and names and bytes cross the network in clear");
            return Ok(None);
        }
        None => {
            let (secret, text) = tls::Secret::random()?;
            (secret, Some(text))
        }
    };
    let receiver = tls::Receiver::new(secret, args.identity.as_deref())?;
    let host = if local.ip().is_unspecified() {
        let name = rustix::system::uname();
        format!("{}:{}", name.nodename().to_string_lossy(), local.port())
    } else {
        local.to_string()
    };
    match made {
        Some(secret) => eprintln!(
            "zcopy: to send here: ZCOPY_SECRET={secret} zcopy send --fingerprint {} PATH... {host}",
            receiver.fingerprint
        ),
        None => eprintln!(
            "zcopy: to send here, with the same secret (ZCOPY_SECRET or --secret-file): zcopy send --fingerprint {} PATH... {host}",
            receiver.fingerprint
        ),
    }
    Ok(Some(receiver))
}

/// A receiver that needs a secret meets a sender without one (its greeting comes
/// where a TLS handshake should): it says so to both sides.
pub(super) fn refuse_plain_sender(stream: &TcpStream, peer: SocketAddr) -> Result<()> {
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
        return Err(crate::exit::Coded {
            code: crate::exit::AUTH,
            message: format!("{peer}: a sender without the secret; refused, nothing written"),
        }
        .into());
    }
    Ok(())
}

/// Reads a framed sender's greeting and answers it with `reason`, the first and
/// last message of the connection.
pub(super) fn refuse_greeting(stream: &TcpStream, reason: &str) {
    let mut greeting = [0u8; Greeting::LEN];
    let _ = (&*stream).read_exact(&mut greeting);
    let mut out = Vec::new();
    Msg::Err {
        id: 0,
        reason: reason.into(),
    }
    .encode(&mut out);
    let _ = (&*stream).write_all(&out);
    zcopy_wire::net::lingering_close(stream, Duration::from_secs(2));
}

/// A raw receiver sees a framed sender's greeting: it says so to both sides
/// instead of writing the protocol's bytes as if they were the file.
pub(super) fn refuse_framed_sender(stream: &TcpStream, peer: SocketAddr) -> Result<()> {
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
        bail!("{peer}: a framed zcopy sender connected to this --raw receiver (add --raw to send, or drop it from recv); nothing written");
    }
    Ok(())
}
