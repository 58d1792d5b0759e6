//! A request head: the request line, the default header lines and the user's,
//! written in one piece.

use std::io::Write;
use std::net::TcpStream;

use super::proxy::Proxy;
use super::{Error, Url};

/// The `User-Agent` a request names unless told otherwise.
pub const USER_AGENT: &str = concat!("zcopy/", env!("CARGO_PKG_VERSION"));

/// A request's method and header lines, as `-I`, `-H`, `-A` and `-u` shape them.
pub struct Request<'a> {
    /// `GET`, or `HEAD` for `-I`.
    pub method: &'a str,
    /// Header lines the user gave: one named as a default replaces it, one with an
    /// empty value removes it (curl's `-H 'Name:'`).
    pub headers: &'a [(String, String)],
    /// The proxy an `http://` request goes to: the request line carries the
    /// absolute URL, and its credentials go along.
    pub proxy: Option<&'a Proxy>,
}

/// Sends `request` for `url` with `extra` header lines (each ending in CRLF).
pub fn send(
    stream: &TcpStream,
    url: &Url,
    request: &Request<'_>,
    extra: &str,
) -> Result<(), Error> {
    let target = match request.proxy {
        Some(_) => url.to_string(),
        None => url.path.clone(),
    };
    let mut text = format!("{} {target} HTTP/1.1\r\n", request.method);
    let defaults = [
        ("Host", url.authority()),
        ("User-Agent", USER_AGENT.to_string()),
        ("Accept", "*/*".to_string()),
        ("Want-Repr-Digest", "sha-256=10, sha-512=3".to_string()),
    ];
    let given = |name: &str| {
        request
            .headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let mut line = |name: &str, value: &str| {
        if !value.is_empty() {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    };
    for (name, value) in &defaults {
        match given(name) {
            Some((name, value)) => line(name, value),
            None => line(name, value),
        }
    }
    for (name, value) in request.headers {
        if !defaults.iter().any(|(d, _)| d.eq_ignore_ascii_case(name)) {
            line(name, value);
        }
    }
    if let Some(authorization) = request.proxy.and_then(|p| p.authorization.as_ref()) {
        text.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    text.push_str(extra);
    text.push_str("\r\n");
    (&*stream)
        .write_all(text.as_bytes())
        .map_err(|e| Error::Send(format!("{url}: cannot send the request: {e}")))
}
