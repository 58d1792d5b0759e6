//! The HTTP/1.1 client of `zcopy get`: URLs, connections, requests, response heads
//! and bodies.
//!
//! The response head is read with `MSG_PEEK` and then consumed to its last byte, so
//! no byte of the body passes through user space: a body with a `Content-Length`
//! goes socket → pipe → file with splice. A chunked body has to be decoded, so it
//! is read into a buffer and written out (the one path here that copies).
//!
//! Every download is written to `.NAME.zcopy-part` beside its target and renamed
//! when it is complete and verified: its length, and its `Repr-Digest` (or, for a
//! whole body, `Content-Digest`) when the server sends one. An interrupted download
//! keeps its partial file with the server's validator (ETag or Last-Modified) in an
//! extended attribute, so that a resume asks for the rest with `Range` and
//! `If-Range`; a server whose file changed answers with the whole file, and the
//! download starts over.
//!
//! The rooms: [`url`](Url) parsing and joining, the connection (through a proxy
//! from the environment, `CONNECT` for `https://`, TLS with rustls), the request,
//! the response [`Head`] and its [`Framing`], the body (spliced, or decoded when
//! chunked), one download with its redirects and retries ([`Client::download`]),
//! where its body is saved, and `segments` (one file over several connections).
//! Failures are an [`Error`] a command maps to its exit codes; what a command
//! prints along the way it gets through [`Events`].

mod body;
mod chunked;
mod connect;
mod download;
mod error;
mod head;
mod proxy;
mod request;
mod save;
mod segments;
mod tls;
mod url;

use std::path::{Path, PathBuf};
use std::time::Duration;

use zcopy::{EngineChoice, Transfer};

pub use download::{Client, Failure, Got, Saved};
pub use error::Error;
pub use head::{Framing, Head};
pub use url::Url;

/// What a [`Client`] does with each download: plain values, decided by the
/// command from its flags ([`Config::default`] is curl's behaviour without flags,
/// with wget's `Last-Modified` time).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where a download without its own output file goes (else here).
    pub directory: Option<PathBuf>,
    /// Make the output file's missing directories.
    pub create_dirs: bool,
    /// Resume from the partial file an interrupted download left.
    pub resume: bool,
    /// Ranges over connections of their own for one file (1: a single stream).
    pub segments: u16,
    /// Header lines for every request, in order; one named as a default replaces
    /// it, one with an empty value removes it.
    pub headers: Vec<(String, String)>,
    /// The proxy instead of the environment's (`Some("")`: none).
    pub proxy: Option<String>,
    /// The hosts that go direct, instead of the environment's `no_proxy`.
    pub noproxy: Option<String>,
    /// Ask with HEAD, give the heads to [`Events::head`], save nothing.
    pub head_only: bool,
    /// The `bytes=` range asked for; its bytes are the file.
    pub range: Option<String>,
    /// Attempts after the first for a transient failure.
    pub retries: u32,
    /// Between retries; `None`: curl's backoff (1 s doubling, at most 10 min).
    pub retry_delay: Option<Duration>,
    /// No retry starts after this long from the first attempt.
    pub retry_max_time: Option<Duration>,
    /// Every failure is worth a retry, not only the transient ones.
    pub retry_all_errors: bool,
    /// The file's modification time from `Last-Modified`.
    pub remote_time: bool,
    /// How long a connection may take.
    pub connect_timeout: Duration,
    /// How long the server may stay silent.
    pub timeout: Duration,
    /// CA certificates (PEM) for `https://`, instead of the system's.
    pub cacert: Option<PathBuf>,
    /// Do not verify `https://` certificates.
    pub insecure: bool,
    /// At most this many bytes per second, shared by a download's segments.
    pub limit_rate: Option<u64>,
    /// The engine for bodies with a length.
    pub engine: EngineChoice,
    /// Whether [`Events::drive`] is asked for progress on a whole body.
    pub progress: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            directory: None,
            create_dirs: false,
            resume: false,
            segments: 1,
            headers: Vec::new(),
            proxy: None,
            noproxy: None,
            head_only: false,
            range: None,
            retries: 0,
            retry_delay: None,
            retry_max_time: None,
            retry_all_errors: false,
            remote_time: true,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            cacert: None,
            insecure: false,
            limit_rate: None,
            engine: EngineChoice::Auto,
            progress: false,
        }
    }
}

/// One URL, and the file it goes to (else its last path segment, in
/// [`Config::directory`] or here); `-` is standard output.
#[derive(Clone, Debug)]
pub struct Download {
    /// The URL as given.
    pub url: String,
    /// The output file.
    pub output: Option<PathBuf>,
}

/// What a download tells the command running it. Every method has a default
/// that says nothing (and runs a body without progress).
pub trait Events: Sync {
    /// A step worth showing on request: a request, a status line, a redirect.
    fn verbose(&self, line: &str) {
        let _ = line;
    }

    /// Something worth knowing that is not a failure: a kept partial file, a
    /// download that starts over.
    fn note(&self, line: &str) {
        let _ = line;
    }

    /// An attempt failed with `error`; the next starts after `wait`, with `left`
    /// retries left before it.
    fn retrying(&self, error: &Error, wait: Duration, left: u32) {
        let _ = (error, wait, left);
    }

    /// With [`Config::head_only`]: a response head, each redirect's and then the
    /// last, for `output` (the download's output file, if it has one); `first`
    /// for the first head of the download.
    fn head(&self, head: &Head, output: Option<&Path>, first: bool) -> Result<(), Error> {
        let _ = (head, output, first);
        Ok(())
    }

    /// Runs a body's `transfer` to its end; `total` is the body's length when
    /// known, `progress` whether progress is worth showing for it.
    fn drive(
        &self,
        transfer: &mut Transfer<'_>,
        total: Option<u64>,
        progress: bool,
    ) -> Result<(), zcopy::Error> {
        let _ = (total, progress);
        body::run(transfer)
    }
}

/// A connection kept alive after a response, for the next URL to the same host:
/// `None` at first, then whatever the last download left.
pub type Idle = Option<(String, std::net::TcpStream)>;

/// What a download asks for beyond the defaults: the user's header lines (without
/// credentials once a redirect leaves the first origin) and the `Range` lines.
struct Asking<'a> {
    headers: &'a [(String, String)],
    extra: String,
}

/// One download under way: the client and whom it tells.
struct Job<'a> {
    client: &'a Client,
    events: &'a dyn Events,
}

/// What a body transfer did.
pub struct Body {
    /// What the engine did (or the decoder, for a chunked body).
    pub report: zcopy::Report,
    /// The body was decoded in user space (chunked), so its bytes were copied.
    pub copied: bool,
}
