//! Why a download failed, sorted as curl sorts its failures, so that a command can
//! give curl's exit code for each (the mapping is the command's, not this crate's).

/// A failed download: which failure it was, and one line naming the URL, file or
/// host and the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed URL, or a host name TLS cannot verify (curl's 3).
    #[error("{0}")]
    UrlMalformed(String),
    /// The proxy's host name does not resolve (curl's 5).
    #[error("{0}")]
    ResolveProxy(String),
    /// The host name does not resolve (curl's 6).
    #[error("{0}")]
    Resolve(String),
    /// No connection to the host (curl's 7).
    #[error("{0}")]
    Connect(String),
    /// A malformed response head or chunked body (curl's 8).
    #[error("{0}")]
    WeirdReply(String),
    /// The server closed before the body it promised arrived (curl's 18).
    #[error("{0}")]
    PeerClosed(String),
    /// The server answered 4xx or 5xx (curl's 22).
    #[error("{0}")]
    Http(String),
    /// The output file cannot be written (curl's 23).
    #[error("{0}")]
    Write(String),
    /// The server stayed silent for the time allowed (curl's 28).
    #[error("{0}")]
    Timeout(String),
    /// The server answered a range that was not asked for (curl's 33).
    #[error("{0}")]
    Range(String),
    /// The TLS handshake failed (curl's 35).
    #[error("{0}")]
    Tls(String),
    /// More redirects than followed (curl's 47).
    #[error("{0}")]
    Redirects(String),
    /// Sending to the server failed (curl's 55).
    #[error("{0}")]
    Send(String),
    /// Receiving from the server failed (curl's 56).
    #[error("{0}")]
    Receive(String),
    /// The server's certificate is not trusted (curl's 60).
    #[error("{0}")]
    Untrusted(String),
    /// The CA certificates cannot be read (curl's 77).
    #[error("{0}")]
    CaCert(String),
    /// Anything else: an unsupported scheme, a digest mismatch (curl's 1).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Refused, timed out, cut off or reset: curl's transient failures, which
    /// `--retry` tries again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Connect(_)
                | Error::Timeout(_)
                | Error::PeerClosed(_)
                | Error::Send(_)
                | Error::Receive(_)
        )
    }
}
