//! What every worker of a server shares: the plain values `zcopy serve` (or the
//! bench) decides from its flags. A leaf: it names the types it holds and
//! nothing of the server that reads it.

use std::sync::Arc;
use std::time::Duration;

use zcopy::EngineChoice;

use crate::access_log::LogFormat;
use crate::auth::Credentials;
use crate::digest;
use crate::files;

/// What every worker shares.
pub struct Config {
    /// The directory served.
    pub root: files::Root,
    /// The engine for file bodies.
    pub engine: EngineChoice,
    /// Connections open at once across the workers; one more is refused (closed).
    pub max_connections: usize,
    /// Time allowed to send a whole request head once it has begun.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection is kept, and a stalled response waits.
    pub idle_timeout: Duration,
    /// With `--upload`: the largest body a PUT may have.
    pub max_upload: Option<u64>,
    /// With `--auth-file`: who may upload.
    pub uploaders: Option<Credentials>,
    /// The `Repr-Digest` of each file version, when the server sends them.
    pub digests: Option<digest::Cache>,
    /// `--cache-control`: the value sent with every file.
    pub cache_control: Option<String>,
    /// `--hidden`: dot names are listed, served and may be uploaded to.
    pub hidden: bool,
    /// Whether `FILE.br`, `FILE.zst`, `FILE.gz` are served for `FILE`.
    pub precompressed: bool,
    /// Whether text-like files are compressed on the fly (zstd, gzip) for clients
    /// that take it.
    pub compress: bool,
    /// Under `auto`, files up to this size go out from memory with their head.
    pub memory_body_max: u64,
    /// With `-v`: the access log's format.
    pub log: Option<LogFormat>,
    /// With `--tls-cert`: every connection speaks TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}
