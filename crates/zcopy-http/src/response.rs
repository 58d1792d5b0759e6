//! Encoding responses: the typed status, the `Date` a worker renders once a second,
//! and heads written into a connection's reused output buffer.
//!
//! A cached file's `200` head is encoded once, when the file enters the open-file
//! cache ([`crate::open_files`]), with a placeholder date at [`DATE_AT`]: answering
//! is a copy of that head and a 29-byte patch of the date.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

/// The statuses this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `100 Continue`.
    Continue,
    /// `200 OK`.
    Ok,
    /// `201 Created`.
    Created,
    /// `204 No Content`.
    NoContent,
    /// `206 Partial Content`.
    PartialContent,
    /// `301 Moved Permanently`.
    MovedPermanently,
    /// `304 Not Modified`.
    NotModified,
    /// `400 Bad Request`.
    BadRequest,
    /// `401 Unauthorized`.
    Unauthorized,
    /// `403 Forbidden`.
    Forbidden,
    /// `404 Not Found`.
    NotFound,
    /// `405 Method Not Allowed`.
    MethodNotAllowed,
    /// `409 Conflict`.
    Conflict,
    /// `411 Length Required`.
    LengthRequired,
    /// `413 Content Too Large`.
    ContentTooLarge,
    /// `414 URI Too Long`.
    UriTooLong,
    /// `416 Range Not Satisfiable`.
    RangeNotSatisfiable,
    /// `431 Request Header Fields Too Large`.
    HeaderFieldsTooLarge,
    /// `500 Internal Server Error`.
    InternalServerError,
    /// `507 Insufficient Storage`.
    InsufficientStorage,
}

impl Status {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::Created => 201,
            Status::NoContent => 204,
            Status::PartialContent => 206,
            Status::MovedPermanently => 301,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::Conflict => 409,
            Status::LengthRequired => 411,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::RangeNotSatisfiable => 416,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::InsufficientStorage => 507,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Continue => "Continue",
            Status::Ok => "OK",
            Status::Created => "Created",
            Status::NoContent => "No Content",
            Status::PartialContent => "Partial Content",
            Status::MovedPermanently => "Moved Permanently",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::Conflict => "Conflict",
            Status::LengthRequired => "Length Required",
            Status::ContentTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::RangeNotSatisfiable => "Range Not Satisfiable",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::InsufficientStorage => "Insufficient Storage",
        }
    }
}

/// Where the date's 29 bytes sit in a `200` head (after the status line and
/// `Server`), so that a cached head is patched in place.
pub const DATE_AT: usize = "HTTP/1.1 200 OK\r\nServer: zcopy\r\nDate: ".len();
/// An IMF-fixdate is always this long (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub const DATE_LEN: usize = 29;

/// A worker's clock: read once per loop turn; the wall-clock date rendered again
/// only when a second has passed on it.
pub struct Clock {
    now: Instant,
    rendered_at: Instant,
    date: [u8; DATE_LEN],
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    /// A clock with the date rendered now.
    pub fn new() -> Clock {
        let now = Instant::now();
        Clock {
            now,
            rendered_at: now,
            date: render_date(),
        }
    }

    /// Reads the monotonic clock (once per loop turn) and renders the date when
    /// a second has passed since it was last rendered.
    pub fn tick(&mut self) {
        self.now = Instant::now();
        if self.now.duration_since(self.rendered_at) >= Duration::from_secs(1) {
            self.rendered_at = self.now;
            self.date = render_date();
        }
    }

    /// The time this loop turn started.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The `Date` header's value.
    pub fn date(&self) -> &[u8; DATE_LEN] {
        &self.date
    }
}

fn render_date() -> [u8; DATE_LEN] {
    let mut date = [b' '; DATE_LEN];
    let text = httpdate::fmt_http_date(SystemTime::now());
    let n = text.len().min(DATE_LEN);
    date[..n].copy_from_slice(&text.as_bytes()[..n]);
    date
}

/// Writes a status line and the headers every response has into `out`; the
/// caller adds its headers with [`header`] and ends with [`end`].
pub fn start(out: &mut Vec<u8>, status: Status, date: &[u8; DATE_LEN], close: bool) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status.code(), status.reason());
    out.extend_from_slice(b"Server: zcopy\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
}

/// Appends the header line `name: value`.
pub fn header(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{name}: {value}\r\n");
}

/// Ends a head: the blank line.
pub fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// A cached head copied into `out` with today's date, and `Connection: close`
/// when the connection ends after it.
pub fn cached(out: &mut Vec<u8>, head: &[u8], date: &[u8; DATE_LEN], close: bool) {
    let at = out.len();
    if close {
        // The cached head ends with its blank line; the header goes before it.
        out.extend_from_slice(&head[..head.len() - 2]);
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    } else {
        out.extend_from_slice(head);
    }
    out[at + DATE_AT..at + DATE_AT + DATE_LEN].copy_from_slice(date);
}

/// A whole response with a short text body (`"404 Not Found: no such file"`);
/// `head_only` for HEAD.
pub fn simple(
    out: &mut Vec<u8>,
    status: Status,
    text: &str,
    extra: &[(&str, &str)],
    date: &[u8; DATE_LEN],
    close: bool,
    head_only: bool,
) -> u64 {
    start(out, status, date, close);
    for (name, value) in extra {
        header(out, name, value);
    }
    let body_len = status.code().to_string().len() + 1 + status.reason().len() + 2 + text.len() + 1;
    header(out, "Content-Type", "text/plain; charset=utf-8");
    header(out, "Content-Length", body_len);
    end(out);
    if head_only {
        return 0;
    }
    let _ = writeln!(out, "{} {}: {text}", status.code(), status.reason());
    body_len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_head_gets_the_date_and_close() {
        let date = *b"Mon, 23 Nov 2026 02:30:38 GMT";
        let mut head = Vec::new();
        start(&mut head, Status::Ok, &[b'x'; DATE_LEN], false);
        header(&mut head, "Content-Length", 5);
        end(&mut head);
        let mut out = b"earlier".to_vec();
        cached(&mut out, &head, &date, true);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "earlierHTTP/1.1 200 OK\r\nServer: zcopy\r\nDate: Mon, 23 Nov 2026 02:30:38 GMT\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        let n = simple(
            &mut out,
            Status::NotFound,
            "no such file",
            &[],
            &date,
            false,
            false,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\r\n\r\n404 Not Found: no such file\n"),
            "{text}"
        );
        assert!(text.contains(&format!("Content-Length: {n}\r\n")));
    }
}
