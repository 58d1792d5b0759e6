//! A response body into a file: a body with a `Content-Length` (or one that runs
//! until close) goes socket → pipe → file with splice, at most `--limit-rate` fast.

use std::fs::File;
use std::io::{self, Read};
use std::net::TcpStream;

use rustix::io::Errno;
use zcopy::drive::Drive;
use zcopy::limit::Limiter;
use zcopy::{Options, Status, Transfer};

use super::chunked::decode_chunked;
use super::head::{recv_failure, Framing};
use super::{Body, Error, Events, Url};

/// Reads and drops a body of `len` bytes (a redirect's), keeping the connection
/// usable.
pub fn discard(stream: &TcpStream, len: u64, url: &Url) -> Result<(), Error> {
    io::copy(&mut stream.take(len), &mut io::sink())
        .map_err(|e| recv_failure(url, e, "a redirect's body"))
        .and_then(|n| {
            (n == len)
                .then_some(())
                .ok_or_else(|| Error::PeerClosed(format!("{url}: the redirect's body ended early")))
        })
}

/// How a body is received.
#[derive(Clone, Copy, Debug)]
pub struct Receiving {
    /// The engine's options (its `len` is the body's, set here).
    pub options: Options,
    /// At most this many bytes per second (`--limit-rate`).
    pub rate: Option<u64>,
    /// A progress bar on a terminal.
    pub progress: bool,
}

/// Moves a body of `framing` from `stream` into `file` at the file's offset:
/// spliced when its length is known or it runs until close, decoded otherwise.
pub fn receive(
    stream: &TcpStream,
    file: &File,
    framing: Framing,
    how: Receiving,
    url: &Url,
    events: &dyn Events,
) -> Result<Body, Error> {
    let len = match framing {
        Framing::Length(n) => Some(n),
        Framing::UntilClose => None,
        Framing::Chunked => return decode_chunked(stream, file, url, how.rate.map(Limiter::new)),
    };
    let options = how.options.len(len);
    let mut transfer =
        Transfer::new(stream, file, options).map_err(|e| Error::Write(format!("{url}: {e}")))?;
    let result = match how.rate {
        None => events.drive(&mut transfer, len, how.progress),
        Some(rate) => paced(&mut transfer, rate),
    };
    let report = transfer.report();
    match result {
        Ok(()) => Ok(Body {
            report,
            copied: false,
        }),
        Err(e) => Err(body_failure(url, &e, transfer.moved())),
    }
}

/// Runs `transfer` to its end, in one go.
pub(super) fn run(transfer: &mut Transfer<'_>) -> Result<(), zcopy::Error> {
    ended(Drive::new().run(transfer, |_| {})?)
}

/// A run's end: done, or the socket's timeout.
fn ended(status: Status) -> Result<(), zcopy::Error> {
    match status {
        Status::Done => Ok(()),
        Status::More | Status::WouldBlock(_) => Err(timed_out()),
    }
}

/// Blocking sockets return EAGAIN only when SO_RCVTIMEO expired.
fn timed_out() -> zcopy::Error {
    zcopy::Error::Setup(io::Error::new(
        io::ErrorKind::TimedOut,
        "timed out waiting for the peer",
    ))
}

/// Runs `transfer` under `rate`, in steps of a limiter's chunk; the socket buffer
/// fills meanwhile and TCP slows the sender down.
fn paced(transfer: &mut Transfer<'_>, rate: u64) -> Result<(), zcopy::Error> {
    let limiter = Limiter::new(rate);
    ended(Drive::new().paced(&limiter).run(transfer, |_| {})?)
}

/// Sorts an engine's failure into curl's codes: the file (23), the peer (18, 56) or
/// the clock (28).
fn body_failure(url: &Url, e: &zcopy::Error, moved: u64) -> Error {
    let at = format!("{url}: after {moved} bytes");
    match e {
        zcopy::Error::EndedEarly { got, expected } => Error::PeerClosed(format!(
            "{url}: the server closed after {got} of {expected} bytes"
        )),
        zcopy::Error::Io { cause: source, .. } | zcopy::Error::Setup(source) => {
            // EPIPE: `-o -` into a pipe whose reader left (curl says 23 too).
            let file_side = Errno::from_io_error(source).is_some_and(|errno| {
                [
                    Errno::PIPE,
                    Errno::NOSPC,
                    Errno::DQUOT,
                    Errno::FBIG,
                    Errno::IO,
                    Errno::ROFS,
                ]
                .contains(&errno)
            });
            if file_side {
                Error::Write(format!("{at}: cannot write the file: {source}"))
            } else if matches!(
                source.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                Error::Timeout(format!("{at}: timed out waiting for the server"))
            } else {
                Error::Receive(format!("{at}: {source}"))
            }
        }
        other => Error::Receive(format!("{at}: {other}")),
    }
}
