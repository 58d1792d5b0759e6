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

/// What every worker shares. Made by [`Config::new`], then changed field by field.
#[non_exhaustive]
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

impl Config {
    /// Under `auto`, files up to this size go out from memory with their head, in
    /// one send, by default. Measured with wrk on loopback (docs/benchmarks.md,
    /// "serve"): at 4 KiB that costs about 10% less CPU per request than a head and
    /// sendfile; at 8 KiB the two are level; at 16 KiB sendfile costs 20% less.
    pub const MEMORY_BODY_MAX: u64 = 4 << 10;

    /// Serving `root` as `zcopy serve` does without flags: the `auto` engine,
    /// 100,000 connections, 10 s for a request head, 75 s idle (nginx's
    /// keep-alive), no uploads, no digests, dot names hidden, precompressed
    /// siblings and compression on, the access log off, plain TCP.
    pub fn new(root: files::Root) -> Config {
        Config {
            root,
            engine: EngineChoice::Auto,
            max_connections: 100_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_upload: None,
            uploaders: None,
            digests: None,
            cache_control: None,
            hidden: false,
            precompressed: true,
            compress: true,
            memory_body_max: Config::MEMORY_BODY_MAX,
            log: None,
            tls: None,
        }
    }
}
