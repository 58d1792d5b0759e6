//! Who a receiver lets in: a secret (given, or made here off loopback) and TLS,
//! or on loopback the peer socket's owner (`zcopy_wire::recv` checks both).

use std::net::{SocketAddr, TcpStream};

use anyhow::Result;
use zcopy_wire::tls;

use super::{Args, Job};

impl Job {
    /// The receiver's admission ([`zcopy_wire::recv::Receiver::admit`]); with
    /// `--verbose`, what a sender proved.
    pub(super) fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Result<TcpStream> {
        let stream = self.receiver.admit(stream, peer)?;
        if let Some(tls) = self.tls.as_ref().filter(|_| self.verbose && !self.raw) {
            eprintln!("{peer}: secret proven; TLS 1.3; {}", tls.record_layer());
        }
        Ok(stream)
    }
}

pub(super) const ANY_LOCAL_USER: &str =
    "zcopy: warning: --insecure on loopback: any local user can write here";

/// Decides how this receiver admits senders: a secret (given, or made here off
/// loopback) and TLS, or anyone (loopback; `--insecure`, with a warning).
pub(super) fn secure(args: &Args, local: SocketAddr) -> Result<Option<tls::Receiver>> {
    let loopback = local.ip().is_loopback();
    if args.raw {
        if args.shared.secret_file.is_some() || args.identity.is_some() {
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
    let (secret, made) = match tls::Secret::given(args.shared.secret_file.as_deref())? {
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
