//! `serve --tls-cert FILE --tls-key FILE`: HTTPS in front of the event loops.
//!
//! A thread accepts on the public socket; each connection gets a thread that
//! runs the TLS handshake (rustls, TLS 1.2 and 1.3, ALPN `http/1.1`) and then
//! relays the session to a loopback listener the event loops accept from, so
//! the HTTP code runs unchanged (`net::tls::relay`). The event loops learn the
//! real client address from [`Peers`], for the log and for the per-address limit
//! on failed logins. A plain-HTTP request on the TLS port gets 400 and a line
//! saying to use https://, as nginx does. The cost against plain HTTP: rustls
//! encrypts in user space and the relay adds one kernel copy each way (kTLS
//! would remove both; this kernel has no `tls` ULP). No HSTS header is sent.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{Connection, ServerConfig};

use crate::net::tls;

/// The real client of each relayed connection, by the relay's loopback address.
#[derive(Default)]
pub struct Peers(Mutex<HashMap<SocketAddr, SocketAddr>>);

impl Peers {
    /// The client behind a connection the event loop accepted from `relay`
    /// (`relay` itself for a connection that is not relayed).
    pub fn take(&self, relay: SocketAddr) -> SocketAddr {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&relay)
            .unwrap_or(relay)
    }
}

/// Reads the PEM certificate chain and private key.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| anyhow!("{}: not a PEM certificate ({e})", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{}: no certificate in it", cert.display()));
    }
    let key_path = key;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("{}: not a PEM private key ({e})", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "{} and {}: the key does not match the certificate",
                cert.display(),
                key_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Starts accepting TLS on `public`; returns the loopback listener the event
/// loops accept the decrypted connections from, and who is behind each.
/// At most `max_connections` clients are in front at once (handshaking or
/// relayed); past it a client is closed at once, as the event loops do.
pub fn start(
    public: TcpListener,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    max_connections: usize,
) -> Result<(TcpListener, Arc<Peers>)> {
    let inner = TcpListener::bind(("127.0.0.1", 0)).context("TLS: loopback listener")?;
    let to = inner.local_addr().context("TLS: loopback listener")?;
    let peers = Arc::new(Peers::default());
    public
        .set_nonblocking(false)
        .context("TLS: listening socket")?;
    let shared = peers.clone();
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for conn in public.incoming() {
            let Ok(sock) = conn else { continue };
            let peer = sock
                .peer_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            if open.fetch_add(1, Ordering::Relaxed) >= max_connections {
                open.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(
                    "{peer}: refused, {max_connections} TLS connections open (--max-connections)"
                );
                continue;
            }
            let (config, peers, open) = (config.clone(), shared.clone(), open.clone());
            std::thread::spawn(move || {
                if let Err(e) = front(sock, peer, config, &peers, to, handshake_timeout) {
                    tracing::warn!("{peer}: {e:#}");
                }
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    Ok((inner, peers))
}

/// One client: the handshake, then the relay to the event loops.
fn front(
    mut sock: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    peers: &Peers,
    to: SocketAddr,
    timeout: Duration,
) -> Result<()> {
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    sock.set_nodelay(true)?;
    let mut first = [0u8; 1];
    let n = sock.peek(&mut first).context("reading the handshake")?;
    // 0x16: a TLS handshake record; a letter: a plain HTTP request.
    if n == 1 && first[0].is_ascii_alphabetic() {
        let text = "this port speaks HTTPS: use https://\n";
        let _ = write!(
            sock,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        tracing::warn!("{peer}: plain HTTP on the TLS port; answered 400");
        crate::net::lingering_close(&sock, Duration::from_secs(1));
        return Ok(());
    }
    let mut conn = Connection::Server(rustls::ServerConnection::new(config)?);
    tls::handshake(&mut conn, &mut sock).context("TLS handshake")?;
    // Idle keep-alive and stalled responses are the event loop's to time out.
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(None)?;
    let local = connect_from_known_address(to, peer, peers)?;
    tls::relay(conn, sock, local);
    Ok(())
}

/// Connects to the event loops' listener from an address recorded in `peers`
/// before the connection exists, so the event loop never accepts it unknown.
fn connect_from_known_address(
    to: SocketAddr,
    peer: SocketAddr,
    peers: &Peers,
) -> Result<TcpStream> {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).context("TLS: socket")?;
    bind(&fd, &SocketAddr::from(([127, 0, 0, 1], 0))).context("TLS: bind")?;
    let from = rustix::net::getsockname(&fd).context("TLS: getsockname")?;
    let from = SocketAddr::try_from(from).map_err(|_| anyhow!("TLS: not an inet address"))?;
    peers
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(from, peer);
    if let Err(e) = connect(&fd, &to) {
        peers.take(from);
        return Err(std::io::Error::from(e)).context("TLS: connecting to the event loops");
    }
    let stream = TcpStream::from(fd);
    stream.set_nodelay(true)?;
    Ok(stream)
}
