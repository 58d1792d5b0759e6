//! The errors of a session, typed by what went wrong, so that a caller (the
//! `zcopy` command) decides how to exit without reading messages: each variant
//! is one kind of failure, and [`Error::Context`] names the step it happened in,
//! as `anyhow`'s context does, with the cause kept as the error's source.

use std::io;

/// What ended a session or a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Settings that do not fit together (a command's usage error).
    #[error("{0}")]
    Usage(String),
    /// The peer lacks the secret, or is a local user who may not connect.
    #[error("{0}")]
    Auth(String),
    /// The peer closed before everything promised arrived.
    #[error("{0}")]
    PeerClosed(String),
    /// No progress for the time allowed.
    #[error("{0}")]
    TimedOut(String),
    /// Anything else the protocol refused: the reason, one line.
    #[error("{0}")]
    Failed(String),
    /// A system call failed; its kind says how (refused, reset, broken pipe…).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// An engine failed in a way that is not a plain I/O error.
    #[error(transparent)]
    Engine(zcopy::Error),
    /// A filter rule could not be read.
    #[error(transparent)]
    Filter(#[from] crate::filter::Error),
    /// The authenticated session could not be set up or proven.
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
    /// A step that failed, and why.
    #[error("{context}")]
    Context {
        /// What was being done, naming the path or address.
        context: String,
        /// Why it failed: an [`Error`] (boxed as a trait object, so that walking
        /// the chain of sources meets the `Error` itself, not its box).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The result of this crate's session calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<zcopy::Error> for Error {
    /// An engine's I/O failure becomes one `io::Error` with its kind and one
    /// message, since the engine's error also lists its cause and the whole chain
    /// would say "Broken pipe" twice; the others stay typed.
    fn from(e: zcopy::Error) -> Error {
        match e {
            zcopy::Error::Io { .. } => Error::Io(io::Error::new(e.kind(), e.to_string())),
            other => Error::Engine(other),
        }
    }
}

impl From<zcopy::walk::Error> for Error {
    /// A tree walk's failure: the path it could not read, then the kernel's words.
    fn from(e: zcopy::walk::Error) -> Error {
        Error::Context {
            context: e.to_string(),
            source: Box::new(Error::Io(e.source)),
        }
    }
}

impl Error {
    /// This error as the cause of `context`.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The error and its causes on one line, joined by ": " (what a peer is told).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

/// Names the step a failure happened in (`anyhow::Context` for [`Error`]).
pub trait Context<T> {
    /// The error, if any, as the cause of `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// The error, if any, as the cause of what `context` says (made only on failure).
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::Failed(context.into()))
    }

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| Error::Failed(context().into()))
    }
}

/// Returns [`Error::Failed`] with a formatted reason.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Failed(format!($($arg)*)))
    };
}
pub(crate) use fail;

#[cfg(test)]
mod tests {
    use super::{Context, Error};

    #[test]
    fn the_chain_names_each_step_and_keeps_the_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "Broken pipe");
        let e = Err::<(), _>(io)
            .context("sending x")
            .context("to y")
            .unwrap_err();
        assert_eq!(e.chain(), "to y: sending x: Broken pipe");
        let Error::Context { source, .. } = &e else {
            panic!("a context")
        };
        assert!(matches!(
            source.downcast_ref::<Error>(),
            Some(Error::Context { .. })
        ));
    }
}
