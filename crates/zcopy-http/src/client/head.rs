//! A response head, read with `MSG_PEEK` and then consumed to its last byte, so
//! that no byte of the body passes through user space; and how its body is framed.

use std::io::{self, Read};
use std::net::TcpStream;

use rustix::net::RecvFlags;

use super::{Error, Url};

/// The longest response head accepted.
const MAX_HEAD: usize = 64 << 10;

/// How a response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    /// The minor version of HTTP/1.x the server answered with.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header lines, in order, their values trimmed.
    pub headers: Vec<(String, String)>,
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection can carry another request after this body.
    pub keep_alive: bool,
}

impl Head {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Range: bytes START-END/TOTAL` as (start, end inclusive, total);
    /// `bytes */TOTAL` (a 416) as (0, 0, total) with `None` for the span.
    pub fn content_range(&self) -> Option<(Option<(u64, u64)>, u64)> {
        let value = self.header("content-range")?.strip_prefix("bytes ")?;
        let (span, total) = value.trim().split_once('/')?;
        let total = total.trim().parse().ok()?;
        if span.trim() == "*" {
            return Some((None, total));
        }
        let (start, end) = span.trim().split_once('-')?;
        Some((Some((start.parse().ok()?, end.parse().ok()?)), total))
    }
}

/// Reads a response head (skipping `1xx` interim responses) without taking a byte
/// of the body from the socket. `Ok(None)`: the connection closed before a byte of
/// the head (a kept-alive connection the server dropped).
pub fn read_head(stream: &TcpStream, url: &Url) -> Result<Option<Head>, Error> {
    loop {
        let Some(raw) = peek_head(stream, url)? else {
            return Ok(None);
        };
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut response = httparse::Response::new(&mut headers);
        let weird = |why: &str| Error::WeirdReply(format!("{url}: {why}"));
        match response.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(weird("incomplete response head")),
            Err(e) => return Err(weird(&format!("malformed response head: {e}"))),
        }
        let status = response.code.unwrap_or(0);
        if (100..200).contains(&status) {
            continue;
        }
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect();
        let mut head = Head {
            version: response.version.unwrap_or(1),
            status,
            reason: response.reason.unwrap_or_default().to_string(),
            headers,
            framing: Framing::UntilClose,
            keep_alive: response.version == Some(1),
        };
        let connection = head.header("connection").unwrap_or_default().to_string();
        for token in connection.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("close") {
                head.keep_alive = false;
            } else if token.eq_ignore_ascii_case("keep-alive") {
                head.keep_alive = true;
            }
        }
        let lengths: Vec<&str> = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_str())
            .collect();
        head.framing = if head
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().trim_end().ends_with("chunked"))
        {
            Framing::Chunked
        } else if let Some(first) = lengths.first() {
            // Several Content-Length values must agree (RFC 9112 §6.3).
            if lengths.iter().any(|l| l != first) {
                return Err(weird("conflicting Content-Length headers"));
            }
            Framing::Length(first.parse().map_err(|_| weird("bad Content-Length"))?)
        } else if status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            head.keep_alive = false;
            Framing::UntilClose
        };
        return Ok(Some(head));
    }
}

/// The bytes of one head up to its blank line, taken from the socket; the body stays
/// in the socket for splice.
fn peek_head(stream: &TcpStream, url: &Url) -> Result<Option<Vec<u8>>, Error> {
    let mut head: Vec<u8> = Vec::new();
    let mut peeked = vec![0u8; 16 << 10];
    loop {
        let n = loop {
            match rustix::net::recv(stream, &mut peeked[..], RecvFlags::PEEK) {
                Ok((n, _)) => break n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(recv_failure(url, io::Error::from(e), "the response head")),
            }
        };
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(Error::Receive(format!(
                    "{url}: the server closed in the middle of the response head"
                )))
            };
        }
        // The blank line may straddle what was taken and what is peeked.
        let from = head.len().saturating_sub(3);
        let mut joined = head[from..].to_vec();
        joined.extend_from_slice(&peeked[..n]);
        let take = match joined.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => at + 4 - (head.len() - from),
            None => n,
        };
        let start = head.len();
        head.resize(start + take, 0);
        (&*stream)
            .read_exact(&mut head[start..])
            .map_err(|e| recv_failure(url, e, "the response head"))?;
        if head.ends_with(b"\r\n\r\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Err(Error::WeirdReply(format!(
                "{url}: response head longer than {MAX_HEAD} bytes"
            )));
        }
    }
}

/// A failed read from the server: a timeout (28) or another error (56).
pub fn recv_failure(url: &Url, e: io::Error, what: &str) -> Error {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        Error::Timeout(format!("{url}: timed out waiting for {what}"))
    } else {
        Error::Receive(format!("{url}: receiving {what}: {e}"))
    }
}
