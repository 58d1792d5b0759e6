//! Authenticated, encrypted send/recv: TLS 1.3 with a pinned certificate and a
//! secret proven inside the session.
//!
//! The receiver makes a self-signed certificate (rcgen) each time it starts and
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
//! After that the transfer code runs unchanged: the TLS session is pumped by a
//! thread between the real socket and one end of a loopback TCP pair, and the
//! protocol code uses the other end (sendfile and splice keep working on it). This
//! costs one more kernel copy each way on top of rustls's user-space encryption;
//! kTLS would remove both (see `ktls`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use ring::hmac;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{Connection, DigitallySignedStruct, SignatureScheme};

use crate::exit::{self, Coded};

/// The label of the exported keying material the secret proof signs.
const PROOF_LABEL: &[u8] = b"EXPORTER-zcopy-secret-proof-v1";
/// The receiver's answer to the proof.
const ACCEPTED: u8 = 1;
const REFUSED: u8 = 0;

/// rustls with ring, AES-128-GCM first: the fastest suite where the CPU has AES-NI
/// (the README has the measurement). send/recv limit it to TLS 1.3 (the proof
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
                .with_context(|| format!("cannot read the secret from {}", path.display()))?
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
            return Err(crate::cmd::Usage(match file {
                Some(path) => format!("{}: the secret is empty", path.display()),
                None => "ZCOPY_SECRET is empty".to_string(),
            })
            .into());
        }
        Ok(Some(Secret(text.as_bytes().to_vec())))
    }

    /// A one-time secret: 128 random bits as 32 hex digits.
    pub fn random() -> Result<(Secret, String)> {
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| anyhow!("the system's random source failed"))?;
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

/// The receiver's side: its certificate, key and secret.
pub struct Receiver {
    config: Arc<rustls::ServerConfig>,
    secret: Secret,
    /// The certificate's fingerprint, for the line the sender pastes.
    pub fingerprint: String,
}

impl Receiver {
    /// A fresh self-signed certificate for this run of the receiver.
    pub fn new(secret: Secret) -> Result<Receiver> {
        let made = rcgen::generate_simple_self_signed(vec!["zcopy".to_string()])
            .context("cannot make the receiver's certificate")?;
        let cert = made.cert.der().clone();
        let fingerprint = fingerprint(&cert);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        // Each sender connects once per session: a resumption ticket would go unused.
        config.send_tls13_tickets = 0;
        Ok(Receiver {
            config: Arc::new(config),
            secret,
            fingerprint,
        })
    }

    /// The TLS handshake and the secret proof on an accepted connection; the stream
    /// the transfer code uses (see the module doc). A peer that does not prove the
    /// secret gets the answer "refused" and an error naming it.
    pub fn accept(&self, mut sock: TcpStream, peer: &str) -> Result<TcpStream> {
        let server = rustls::ServerConnection::new(self.config.clone())?;
        let mut conn = Connection::Server(server);
        handshake(&mut conn, &mut sock)
            .with_context(|| format!("{peer}: TLS handshake failed; nothing written"))?;
        let mut proof = [0u8; 32];
        read_exact(&mut conn, &mut sock, &mut proof)
            .with_context(|| format!("{peer}: no secret proof; nothing written"))?;
        // ring's verify compares in constant time.
        let ok = hmac::verify(&self.secret.key(), &export(&conn)?, &proof).is_ok();
        write_all(&mut conn, &mut sock, &[if ok { ACCEPTED } else { REFUSED }])?;
        if !ok {
            let _ = sock.shutdown(Shutdown::Both);
            return Err(Coded {
                code: exit::AUTH,
                message: format!("{peer}: wrong secret; refused, nothing written"),
            }
            .into());
        }
        tunnel(conn, sock).with_context(|| format!("{peer}: TLS"))
    }
}

/// This session's keying material for the secret proof: both ends of one TLS
/// session get the same bytes, any other session different ones.
fn export(conn: &Connection) -> Result<[u8; 32]> {
    conn.export_keying_material([0u8; 32], PROOF_LABEL, None)
        .map_err(|e| anyhow!("TLS exporter: {e}"))
}

/// The sender's side: the fingerprint it was given and the secret.
pub struct Sender {
    config: Arc<rustls::ClientConfig>,
    pin: Arc<Pin>,
    secret: Secret,
}

impl Sender {
    pub fn new(secret: Secret, fingerprint: &str) -> Result<Sender> {
        let expected = fingerprint.trim().to_ascii_lowercase();
        let well_formed = expected
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !well_formed {
            return Err(crate::cmd::Usage(format!(
                "--fingerprint {fingerprint}: expected sha256: and 64 hex digits, as recv printed it"
            ))
            .into());
        }
        let provider = provider();
        let pin = Arc::new(Pin {
            expected,
            seen: Mutex::new(None),
            algorithms: provider.signature_verification_algorithms,
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(pin.clone())
            .with_no_client_auth();
        Ok(Sender {
            config: Arc::new(config),
            pin,
            secret,
        })
    }

    /// The handshake with the pinned receiver, then the secret proof and its answer;
    /// the stream the transfer code uses.
    pub fn connect(&self, mut sock: TcpStream, addr: &str) -> Result<TcpStream> {
        let name = ServerName::try_from("zcopy").expect("a valid name");
        let client = rustls::ClientConnection::new(self.config.clone(), name)?;
        let mut conn = Connection::Client(client);
        if let Err(e) = handshake(&mut conn, &mut sock) {
            let seen = self
                .pin
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(match seen {
                Some(seen) if seen != self.pin.expected => Coded {
                    code: exit::PEER_VERIFY,
                    message: format!(
                        "{addr}: the receiver's certificate is {seen}, not the {} given: refusing to send (a man in the middle, or another receiver)",
                        self.pin.expected
                    ),
                }
                .into(),
                _ => anyhow!(e).context(format!(
                    "{addr}: TLS handshake failed (does the receiver have a secret? it prints the line to paste)"
                )),
            });
        }
        let tag = hmac::sign(&self.secret.key(), &export(&conn)?);
        write_all(&mut conn, &mut sock, tag.as_ref())
            .with_context(|| format!("{addr}: sending the secret proof"))?;
        let mut answer = [0u8; 1];
        read_exact(&mut conn, &mut sock, &mut answer)
            .with_context(|| format!("{addr}: no answer to the secret proof"))?;
        if answer[0] != ACCEPTED {
            return Err(Coded {
                code: exit::AUTH,
                message: format!(
                    "{addr}: the receiver refused the secret (wrong secret?); nothing sent"
                ),
            }
            .into());
        }
        tunnel(conn, sock).with_context(|| format!("{addr}: TLS"))
    }
}

/// Accepts exactly one certificate: the one whose fingerprint the sender was given.
/// Its signature over the handshake is still checked, so only the holder of the
/// key passes.
#[derive(Debug)]
struct Pin {
    expected: String,
    seen: Mutex<Option<String>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        let matches = seen == self.expected;
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable in practice: the sender offers TLS 1.3 only.
        Err(rustls::Error::General(
            "send/recv speak TLS 1.3 only".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
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

/// A connected loopback TCP pair: (the end the caller keeps, the pump's end). The
/// accepted connection must come from our own socket: another local process could
/// race to connect to the short-lived listener.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let near = TcpStream::connect(listener.local_addr()?)?;
    let ours = near.local_addr()?;
    loop {
        let (far, from) = listener.accept()?;
        if from == ours {
            return Ok((near, far));
        }
    }
}

/// Pumps `conn` over `sock` to and from a loopback stream it returns.
pub fn tunnel(conn: Connection, sock: TcpStream) -> io::Result<TcpStream> {
    let (near, far) = loopback_pair()?;
    near.set_nodelay(true)?;
    std::thread::spawn(move || relay(conn, sock, far));
    Ok(near)
}

/// Pumps `conn` over `sock` to and from `local` on this thread, until both
/// directions are closed; an error closes both sockets.
pub fn relay(mut conn: Connection, sock: TcpStream, local: TcpStream) {
    // The pump bounds what it buffers itself (one 256 KiB read at a time).
    conn.set_buffer_limit(None);
    let ready = sock
        .set_nonblocking(true)
        .and_then(|()| local.set_nonblocking(true));
    if ready.is_err() || pump(conn, &sock, &local).is_err() {
        let _ = sock.shutdown(Shutdown::Both);
        let _ = local.shutdown(Shutdown::Both);
    }
}

/// One thread, both directions: plaintext from `local` is encrypted to `net`, and
/// records from `net` are decrypted to `local`. What it waits for is derived from
/// the state: no reading more plaintext while records are still unsent, no
/// reading more records while plaintext still waits for `local`.
fn pump(mut conn: Connection, net: &TcpStream, local: &TcpStream) -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut buf = vec![0u8; 256 << 10];
    let mut pending: Vec<u8> = Vec::new();
    let (mut net_eof, mut local_eof, mut local_shut, mut net_shut) = (false, false, false, false);
    loop {
        drain_plaintext(&mut conn, &mut pending, &mut net_eof, &mut buf)?;
        if !pending.is_empty() {
            match (&*local).write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        while conn.wants_write() {
            match conn.write_tls(&mut &*net) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if net_eof && pending.is_empty() && !local_shut {
            local.shutdown(Shutdown::Write)?;
            local_shut = true;
        }
        if local_eof && !conn.wants_write() && !net_shut {
            net.shutdown(Shutdown::Write)?;
            net_shut = true;
        }
        if local_shut && net_shut {
            return Ok(());
        }
        let mut net_wants = PollFlags::empty();
        if !net_eof && pending.is_empty() {
            net_wants |= PollFlags::IN;
        }
        if conn.wants_write() {
            net_wants |= PollFlags::OUT;
        }
        let mut local_wants = PollFlags::empty();
        if !local_eof && !conn.wants_write() {
            local_wants |= PollFlags::IN;
        }
        if !pending.is_empty() {
            local_wants |= PollFlags::OUT;
        }
        let mut fds = [PollFd::new(net, net_wants), PollFd::new(local, local_wants)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let (net_got, local_got) = (fds[0].revents(), fds[1].revents());
        if net_got.intersects(PollFlags::ERR) || local_got.intersects(PollFlags::ERR) {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if net_wants.contains(PollFlags::IN) && net_got.intersects(PollFlags::IN | PollFlags::HUP) {
            match conn.read_tls(&mut &*net) {
                Ok(0) => net_eof = true,
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        // Tell the peer why before giving up.
                        let _ = conn.write_tls(&mut &*net);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if local_wants.contains(PollFlags::IN)
            && local_got.intersects(PollFlags::IN | PollFlags::HUP)
        {
            match (&*local).read(&mut buf) {
                Ok(0) => {
                    local_eof = true;
                    conn.send_close_notify();
                }
                Ok(n) => conn.writer().write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Moves what rustls has decrypted into `pending`; a close_notify (or the peer
/// closing without one: the protocol's own END and BYE catch a truncation) ends
/// the incoming direction.
fn drain_plaintext(
    conn: &mut Connection,
    pending: &mut Vec<u8>,
    net_eof: &mut bool,
    buf: &mut [u8],
) -> io::Result<()> {
    loop {
        match conn.reader().read(buf) {
            Ok(0) => {
                *net_eof = true;
                return Ok(());
            }
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                *net_eof = true;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}
