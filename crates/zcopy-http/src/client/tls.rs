//! `get https://`: rustls (TLS 1.2 and 1.3) verifying the server against the
//! system's CA bundle, `--cacert FILE`, or nothing (`-k`, as curl's). The session
//! is relayed over an AF_UNIX pair (`zcopy_wire::tls::tunnel`), so the client code reads
//! heads and splices bodies from it as from a plain connection.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, Connection, RootCertStore};

use zcopy_wire::tls;

use super::Error;

/// Where the system keeps its CA bundle (Debian, Fedora, Alpine and macOS-like).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The client's TLS settings, made into a configuration on the first https:// URL
/// (an http://-only run needs no CA bundle).
pub struct Settings {
    cacert: Option<PathBuf>,
    insecure: bool,
    config: OnceLock<Result<Arc<ClientConfig>, String>>,
}

impl Settings {
    /// Verify with the CA certificates in `cacert` (else the system's), or with
    /// `insecure` not at all.
    pub fn new(cacert: Option<PathBuf>, insecure: bool) -> Settings {
        Settings {
            cacert,
            insecure,
            config: OnceLock::new(),
        }
    }

    fn config(&self) -> Result<Arc<ClientConfig>, Error> {
        self.config
            .get_or_init(|| self.build())
            .clone()
            .map_err(Error::CaCert)
    }

    fn build(&self) -> Result<Arc<ClientConfig>, String> {
        let builder = ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let mut config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(tls::Pin::any())
                .with_no_client_auth()
        } else {
            let bundle = match &self.cacert {
                Some(path) => path.clone(),
                None => std::env::var_os("SSL_CERT_FILE")
                    .map(PathBuf::from)
                    .or_else(|| {
                        SYSTEM_BUNDLES
                            .iter()
                            .map(PathBuf::from)
                            .find(|p| p.exists())
                    })
                    .ok_or("no CA bundle on this system (give --cacert FILE, or -k)")?,
            };
            builder
                .with_root_certificates(roots(&bundle)?)
                .with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The TLS handshake with `host` on `sock`; the stream to speak HTTP on.
    pub fn connect(&self, mut sock: TcpStream, host: &str) -> Result<TcpStream, Error> {
        let config = self.config()?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Error::UrlMalformed(format!("{host}: not a name TLS can verify")))?;
        let client = rustls::ClientConnection::new(config, name)
            .map_err(|e| Error::Tls(format!("{host}: TLS: {e}")))?;
        let mut conn = Connection::Client(client);
        if let Err(e) = tls::handshake(&mut conn, &mut sock) {
            let certificate = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
            return Err(if certificate {
                Error::Untrusted(format!("{host}: the server's certificate is not trusted ({e}); --cacert FILE names the CA, -k skips the check"),
                )
            } else {
                Error::Tls(format!(
                    "{host}: TLS handshake failed: {e} (is it an https:// server?)"
                ))
            });
        }
        let timeouts = (sock.read_timeout(), sock.write_timeout());
        let near = tls::tunnel(conn, sock).map_err(|e| Error::Tls(format!("{host}: TLS: {e}")))?;
        if let (Ok(read), Ok(write)) = timeouts {
            let _ = near.set_read_timeout(read);
            let _ = near.set_write_timeout(write);
        }
        Ok(near)
    }
}

fn roots(bundle: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(bundle)
        .map_err(|e| format!("{}: cannot read CA certificates ({e})", bundle.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", bundle.display()))?;
        // A bundle may hold certificates webpki cannot parse; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate in it", bundle.display()));
    }
    Ok(roots)
}
