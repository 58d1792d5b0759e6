//! Authenticated, encrypted send/recv: TLS 1.3 with a pinned certificate and a
//! secret proven inside the session.
//!
//! The receiver makes a self-signed certificate (rcgen) each time it starts, or
//! keeps one in an identity file (`recv --identity`, as ssh keeps a host key), and
//! prints its SHA-256 fingerprint beside the secret; the sender accepts only that
//! certificate, so a man in the middle cannot finish the handshake with it. Once
//! the handshake is done the sender proves it holds the secret: it sends
//! HMAC-SHA256(secret, exporter) where `exporter` is 32 bytes of the session's TLS
//! keying material (RFC 8446 §7.5). The proof travels encrypted, to the receiver the
//! sender verified, and it is only valid for this one session: a recorded session
//! replayed to the receiver meets fresh handshake keys and fails the handshake
//! itself; an eavesdropper sees neither the proof nor anything to brute-force
//! offline. The receiver answers one byte (accepted or refused) before it reads a
//! name or writes a byte.
//!
//! After that the transfer code runs unchanged on one of two streams. Where the
//! kernel has kTLS (see `ktls`), the session's keys go to the kernel and the code
//! uses the socket itself: sendfile and splice move file bytes and the kernel
//! encrypts them. Elsewhere a thread pumps the session between the socket and
//! one end of an `AF_UNIX` pair, and the code uses the other end (sendfile and
//! splice keep working on it): rustls encrypts in user space, at the cost of one
//! more kernel copy each way and a thread per connection. Either way neither side
//! sends close_notify after the proof, so a kTLS peer and a user-space peer
//! interoperate (a kTLS read fails on a control record); the protocol's own END
//! and BYE end a session.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ring::hmac;
use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::Connection;

use crate::ktls;

mod pin;
mod pump;
pub mod records;

pub use pin::Pin;
pub use pump::{finish_pumps, tunnel};
use pump::{spawn_pump, Ending};

/// What went wrong setting up or proving an authenticated session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A secret or fingerprint, as given, cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The peer did not prove the secret, or refused this side's.
    #[error("{0}")]
    Refused(String),
    /// The receiver's certificate is not the one whose fingerprint was given.
    #[error("{0}")]
    WrongCertificate(String),
    /// A step failed: which one, and its cause.
    #[error("{what}")]
    Failed {
        /// The step, named for a message.
        what: String,
        #[source]
        /// What failed in it.
        cause: io::Error,
    },
}

/// The result of this module's calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the step a failure happened in, keeping its cause (an `io::Error`
/// stays one, so its kind still says what kind of failure it was).
trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> Step<T> for Result<T, E> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let cause = match e.into().downcast::<io::Error>() {
                Ok(io) => *io,
                Err(other) => io::Error::other(other),
            };
            Error::Failed {
                what: what(),
                cause,
            }
        })
    }
}

/// The label of the exported keying material the secret proof signs.
const PROOF_LABEL: &[u8] = b"EXPORTER-zcopy-secret-proof-v1";
/// The receiver's answer to the proof.
const ACCEPTED: u8 = 1;
const REFUSED: u8 = 0;

/// rustls with ring, AES-128-GCM first: the fastest suite where the CPU has AES-NI
/// (docs/security.md has the measurement). send/recv limit it to TLS 1.3 (the proof
/// needs its exporter); `serve` also speaks 1.2.
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = provider::default_provider();
    use provider::cipher_suite as suite;
    p.cipher_suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        // TLS 1.2, for `serve`'s older clients; send/recv speak 1.3 only.
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}

/// A secret both sides hold: from `--secret-file`, `ZCOPY_SECRET`, or made by recv.
pub struct Secret(Vec<u8>);

impl Secret {
    /// `--secret-file FILE` (its first line), else `ZCOPY_SECRET`, else none.
    pub fn given(file: Option<&std::path::Path>) -> Result<Option<Secret>> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path)
                .step(|| format!("cannot read the secret from {}", path.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            None => match std::env::var("ZCOPY_SECRET") {
                Ok(text) => text,
                Err(_) => return Ok(None),
            },
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Usage(match file {
                Some(path) => format!("{}: the secret is empty", path.display()),
                None => "ZCOPY_SECRET is empty".to_string(),
            }));
        }
        Ok(Some(Secret(text.as_bytes().to_vec())))
    }

    /// A secret told in a line (the one `zcopy` over ssh passes through the
    /// encrypted ssh channel).
    pub fn from_text(text: &str) -> Result<Secret> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Usage("the secret is empty".to_string()));
        }
        Ok(Secret(text.as_bytes().to_vec()))
    }

    /// A one-time secret: 128 random bits as 32 hex digits.
    pub fn random() -> Result<(Secret, String)> {
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| io::Error::other("getrandom failed"))
            .step(|| "the system's random source failed".into())?;
        let text = hex(&bytes);
        Ok((Secret(text.as_bytes().to_vec()), text))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a certificate, as printed for the sender: `sha256:` and 64 hex digits.
fn fingerprint(cert: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex(ring::digest::digest(&ring::digest::SHA256, cert).as_ref())
    )
}

/// A new self-signed certificate and its key.
fn made_identity() -> Result<rcgen::CertifiedKey> {
    rcgen::generate_simple_self_signed(vec!["zcopy".to_string()])
        .step(|| "cannot make the receiver's certificate".into())
}

fn private_key(made: &rcgen::CertifiedKey) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()))
}

/// The certificate and key in the PEM file `path`; where there is no such file, a
/// new pair written there first (mode 0600, complete or not at all), so that the
/// fingerprint senders pinned stays valid when the receiver starts again.
fn kept_identity(path: &Path) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    use rustls::pki_types::pem::PemObject;
    let shown = path.display();
    match std::fs::read(path) {
        Ok(pem) => {
            let cert = CertificateDer::pem_slice_iter(&pem)
                .next()
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
                .step(|| format!("{shown}: no certificate in this identity file"))?
                .step(|| format!("{shown}: the certificate"))?;
            let key = PrivateKeyDer::from_pem_slice(&pem)
                .step(|| format!("{shown}: no private key in this identity file"))?;
            Ok((cert, key))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let made = made_identity()?;
            let pem = format!("{}{}", made.cert.pem(), made.key_pair.serialize_pem());
            // tempfile makes the file 0600 before a byte of the key is in it.
            let cannot = || format!("cannot write the identity file {shown}");
            let mut temp = zcopy::place::temp_beside(path).step(cannot)?;
            temp.write_all(pem.as_bytes())
                .and_then(|()| temp.as_file().sync_all())
                .step(cannot)?;
            temp.persist_noclobber(path)
                .map_err(|e| e.error)
                .step(cannot)?;
            Ok((made.cert.der().clone(), private_key(&made)))
        }
        Err(e) => Err(e).step(|| format!("cannot read the identity file {shown}")),
    }
}

/// The receiver's side: its certificate, key and secret.
pub struct Receiver {
    config: Arc<rustls::ServerConfig>,
    secret: Secret,
    /// The certificate's fingerprint, for the line the sender pastes.
    pub fingerprint: String,
    /// Why a session stayed in user space though the kernel has kTLS, if one did.
    fallback: OnceLock<String>,
}

impl Receiver {
    /// A receiver with the certificate kept in `identity` (made there if the file
    /// does not exist), or with a fresh self-signed one for this run.
    pub fn new(secret: Secret, identity: Option<&Path>) -> Result<Receiver> {
        let (cert, key) = match identity {
            Some(path) => kept_identity(path)?,
            None => {
                let made = made_identity()?;
                (made.cert.der().clone(), private_key(&made))
            }
        };
        let fingerprint = fingerprint(&cert);
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .step(|| "TLS 1.3".into())?;
        let mut config = config
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .step(|| "the receiver's certificate".into())?;
        // Each sender connects once per session: a resumption ticket would go
        // unused, and after a kTLS hand-off it would arrive as a control record
        // the transfer code cannot read.
        config.send_tls13_tickets = 0;
        config.enable_secret_extraction = true;
        Ok(Receiver {
            config: Arc::new(config),
            secret,
            fingerprint,
            fallback: OnceLock::new(),
        })
    }

    /// The TLS handshake and the secret proof on an accepted connection; the stream
    /// the transfer code uses (see the module doc). A peer that does not prove the
    /// secret gets the answer "refused" and an error naming it.
    pub fn accept(&self, mut sock: TcpStream, peer: &str) -> Result<TcpStream> {
        let server =
            rustls::ServerConnection::new(self.config.clone()).step(|| format!("{peer}: TLS"))?;
        let mut conn = Connection::Server(server);
        handshake(&mut conn, &mut sock)
            .step(|| format!("{peer}: TLS handshake failed; nothing written"))?;
        let mut proof = [0u8; 32];
        read_exact(&mut conn, &mut sock, &mut proof)
            .step(|| format!("{peer}: no secret proof; nothing written"))?;
        // ring's verify compares in constant time.
        let ok = hmac::verify(&self.secret.key(), &export(&conn)?, &proof).is_ok();
        write_all(&mut conn, &mut sock, &[if ok { ACCEPTED } else { REFUSED }])
            .step(|| format!("{peer}: answering the secret proof"))?;
        if !ok {
            let _ = sock.shutdown(Shutdown::Both);
            return Err(Error::Refused(format!(
                "{peer}: wrong secret; refused, nothing written"
            )));
        }
        hand_off(conn, sock, &self.fallback).step(|| format!("{peer}: TLS"))
    }

    /// How this receiver's sessions encrypt, in the words `-v` and `--json` print.
    pub fn record_layer(&self) -> &str {
        self.fallback.get().map_or(ktls::status(), |why| why)
    }
}

/// This session's keying material for the secret proof: both ends of one TLS
/// session get the same bytes, any other session different ones.
fn export(conn: &Connection) -> Result<[u8; 32]> {
    conn.export_keying_material([0u8; 32], PROOF_LABEL, None)
        .step(|| "TLS exporter".into())
}

/// The sender's side: the fingerprint it was given and the secret.
pub struct Sender {
    config: Arc<rustls::ClientConfig>,
    pin: Arc<Pin>,
    secret: Secret,
    /// Why a connection stayed in user space though the kernel has kTLS, if one did.
    fallback: OnceLock<String>,
}

impl Sender {
    /// A sender that accepts only the receiver certificate of `fingerprint` (SHA-256
    /// hex) and proves `secret` to it.
    pub fn new(secret: Secret, fingerprint: &str) -> Result<Sender> {
        let expected = fingerprint.trim().to_ascii_lowercase();
        let well_formed = expected
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !well_formed {
            return Err(Error::Usage(format!(
                "--fingerprint {fingerprint}: expected sha256: and 64 hex digits, as recv printed it"
            )));
        }
        let pin = Pin::new(Some(expected));
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .step(|| "TLS 1.3".into())?
            .dangerous()
            .with_custom_certificate_verifier(pin.clone())
            .with_no_client_auth();
        config.enable_secret_extraction = true;
        Ok(Sender {
            config: Arc::new(config),
            pin,
            secret,
            fallback: OnceLock::new(),
        })
    }

    /// The handshake with the pinned receiver, then the secret proof and its answer;
    /// the stream the transfer code uses.
    pub fn connect(&self, mut sock: TcpStream, addr: &str) -> Result<TcpStream> {
        let name = ServerName::try_from("zcopy").expect("a valid name");
        let client = rustls::ClientConnection::new(self.config.clone(), name)
            .step(|| format!("{addr}: TLS"))?;
        let mut conn = Connection::Client(client);
        if let Err(e) = handshake(&mut conn, &mut sock) {
            let seen = self
                .pin
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(match seen {
                Some(seen) if Some(&seen) != self.pin.expected.as_ref() => Error::WrongCertificate(format!(
                    "{addr}: the receiver's certificate is {seen}, not the {} given: refusing to send (a man in the middle, or another receiver)",
                    self.pin.expected.as_deref().unwrap_or_default()
                )),
                _ => Error::Failed {
                    what: format!("{addr}: TLS handshake failed (does the receiver have a secret? it prints the line to paste)"),
                    cause: e,
                },
            });
        }
        let tag = hmac::sign(&self.secret.key(), &export(&conn)?);
        write_all(&mut conn, &mut sock, tag.as_ref())
            .step(|| format!("{addr}: sending the secret proof"))?;
        let mut answer = [0u8; 1];
        read_exact(&mut conn, &mut sock, &mut answer)
            .step(|| format!("{addr}: no answer to the secret proof"))?;
        if answer[0] != ACCEPTED {
            return Err(Error::Refused(format!(
                "{addr}: the receiver refused the secret (wrong secret?); nothing sent"
            )));
        }
        hand_off(conn, sock, &self.fallback).step(|| format!("{addr}: TLS"))
    }

    /// How this sender's connections encrypt, in the words `-v` and `--json` print.
    pub fn record_layer(&self) -> &str {
        self.fallback.get().map_or(ktls::status(), |why| why)
    }
}

/// The stream the transfer code uses once the secret is proven: the socket itself
/// with the keys in the kernel where kTLS works (see `ktls`), else the pump's
/// end. Nothing is buffered at this point: the proof and its answer are lockstep,
/// so neither side sends a byte the other has not asked for. A session that
/// stays in user space though the kernel has kTLS records why in `fallback`.
fn hand_off(
    mut conn: Connection,
    sock: TcpStream,
    fallback: &OnceLock<String>,
) -> io::Result<TcpStream> {
    if !ktls::available() {
        return spawn_pump(conn, sock, Ending::Quiet);
    }
    let user_space = "TLS encrypts in user space: 1 CPU copy per byte";
    let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
    let why = if suite != Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256) {
        format!("kTLS: {suite:?} negotiated, the kernel was probed for TLS 1.3 AES-128-GCM only; {user_space}")
    } else if conn.wants_write() {
        format!("kTLS: rustls still had records to send; {user_space}")
    } else if conn
        .process_new_packets()
        .map_or(true, |state| state.plaintext_bytes_to_read() > 0)
    {
        format!("kTLS: rustls held received bytes; {user_space}")
    } else {
        match ktls::attach(&sock) {
            Ok(()) => {
                let secrets = conn
                    .dangerous_extract_secrets()
                    .map_err(|e| io::Error::other(format!("kTLS: {e}")))?;
                ktls::install(&sock, rustls::ProtocolVersion::TLSv1_3, &secrets)?;
                return Ok(sock);
            }
            Err(e) => format!("kTLS: tls ULP refused on this connection ({e}); {user_space}"),
        }
    };
    let _ = fallback.set(why);
    spawn_pump(conn, sock, Ending::Quiet)
}

/// Drives a blocking handshake to its end (the socket's timeouts bound it).
pub fn handshake(conn: &mut Connection, sock: &mut TcpStream) -> io::Result<()> {
    while conn.is_handshaking() {
        let (read, written) = conn.complete_io(sock)?;
        if read == 0 && written == 0 && conn.is_handshaking() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed during the handshake",
            ));
        }
    }
    Ok(())
}

fn write_all(conn: &mut Connection, sock: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    conn.writer().write_all(bytes)?;
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

fn read_exact(conn: &mut Connection, sock: &mut TcpStream, out: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < out.len() {
        match conn.reader().read(&mut out[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if conn.read_tls(sock)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::session_in_memory;
