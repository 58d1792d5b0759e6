//! The HTTP/1.1 client of `zcopy get`: URLs, connections, requests, response heads
//! and bodies.
//!
//! The response head is read with `MSG_PEEK` and then consumed to its last byte, so
//! no byte of the body passes through user space: a body with a `Content-Length`
//! goes socket → pipe → file with splice. A chunked body has to be decoded, so it
//! is read into a buffer and written out (the one path here that copies).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;
use zcopy::{Engine, Options, Report, Status, Syscall, Syscalls, Transfer};

use super::proxy::Proxy;
use crate::exit;

/// Why a download failed, with the exit code curl gives the same failure.
pub type Failed = exit::Coded;

/// A failure with its exit code (one of [`exit`]'s).
pub fn fail(code: u8, message: impl Into<String>) -> Failed {
    Failed {
        code,
        message: exit::without_os_error(&message.into()),
    }
}

/// The longest response head accepted.
const MAX_HEAD: usize = 64 << 10;

/// An `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https://`: the connection speaks TLS.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http[s]://HOST[:PORT][/PATH][?QUERY]`; a URL without a scheme is http.
    pub fn parse(text: &str) -> Result<Url, Failed> {
        let malformed = |why: &str| fail(exit::URL_MALFORMED, format!("{text}: {why}"));
        let (tls, rest) = match text.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (false, rest),
                "https" => (true, rest),
                other => {
                    return Err(fail(
                        exit::FAILURE,
                        format!("{text}: unsupported protocol {other}://"),
                    ))
                }
            },
            None => (false, text),
        };
        if rest.bytes().any(|b| b.is_ascii_control()) {
            return Err(malformed("control characters in the URL"));
        }
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(malformed("user names in URLs are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| malformed("unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(malformed("no host"));
        }
        let port = match port {
            None | Some("") => Url::default_port(tls),
            Some(p) => p.parse().map_err(|_| malformed("bad port"))?,
        };
        let path = path.split('#').next().unwrap_or_default();
        let path = match path.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_string(),
        };
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            path: path.replace(' ', "%20"),
        })
    }

    fn default_port(tls: bool) -> u16 {
        if tls {
            443
        } else {
            80
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// `scheme://host[:port]`: which URLs may share a kept-alive connection.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme(), self.authority())
    }

    /// `host[:port]` as the `Host` header and a connection key write it.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == Url::default_port(self.tls) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL a `Location` header leads to from this one.
    pub fn join(&self, location: &str) -> Result<Url, Failed> {
        let location = location.trim();
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme()));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or_default();
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path: remove_dot_segments(&path),
            ..self.clone()
        })
    }

    /// The last segment of the path, percent-decoded: the name `-O` saves under.
    pub fn file_name(&self) -> Option<String> {
        let path = self.path.split('?').next().unwrap_or_default();
        let last = path.rsplit('/').next().unwrap_or_default();
        let decoded = percent_decode(last)?;
        let usable = !decoded.is_empty() && decoded != "." && decoded != "..";
        (usable && !decoded.contains(['/', '\0'])).then_some(decoded)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority(), self.path)
    }
}

/// RFC 3986 §5.2.4, on a path that starts with `/` (a query is left alone).
fn remove_dot_segments(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." if last => out.push(""),
            "." => {}
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut joined = format!("/{}", out.join("/"));
    if let Some(q) = query {
        joined.push('?');
        joined.push_str(q);
    }
    joined
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Opens a connection to `url`'s host, or to `proxy` (through a `CONNECT` tunnel
/// for `https://`), trying each address; for `https://`, with the TLS handshake done.
pub fn connect(
    url: &Url,
    proxy: Option<&Proxy>,
    connect_timeout: Duration,
    timeout: Duration,
    tls: &super::tls_client::Settings,
) -> Result<TcpStream, Failed> {
    let hop = proxy.map_or(url, |p| &p.url);
    let resolve = if proxy.is_some() {
        exit::RESOLVE_PROXY
    } else {
        exit::RESOLVE
    };
    let addrs: Vec<SocketAddr> = (hop.host.as_str(), hop.port)
        .to_socket_addrs()
        .map_err(|e| fail(resolve, format!("cannot resolve {}: {e}", hop.host)))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, connect_timeout) {
            Ok(stream) => {
                // A read or write that waits longer than this fails (EAGAIN): a stalled server.
                let timeouts = stream
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| stream.set_write_timeout(Some(timeout)))
                    .and_then(|()| stream.set_nodelay(true));
                timeouts.map_err(|e| fail(exit::CONNECT, format!("{addr}: {e}")))?;
                if !url.tls {
                    return Ok(stream);
                }
                if let Some(proxy) = proxy {
                    tunnel(&stream, url, proxy)?;
                }
                return tls.connect(stream, &url.host);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => fail(
            exit::TIMEOUT,
            format!("cannot connect to {addr}: no answer within {connect_timeout:?}"),
        ),
        Some((addr, e)) => fail(exit::CONNECT, format!("cannot connect to {addr}: {e}")),
        None => fail(resolve, format!("{}: the name has no address", hop.host)),
    })
}

/// `CONNECT host:port` through `proxy`: afterwards the connection is a pipe to `url`'s host.
fn tunnel(stream: &TcpStream, url: &Url, proxy: &Proxy) -> Result<(), Failed> {
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let authorization = proxy
        .authorization
        .as_ref()
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n{authorization}User-Agent: zcopy/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let proxy = &proxy.url;
    (&*stream).write_all(request.as_bytes()).map_err(|e| {
        fail(
            exit::SEND,
            format!("proxy {proxy}: cannot send CONNECT: {e}"),
        )
    })?;
    match read_head(stream, proxy)? {
        Some(head) if (200..300).contains(&head.status) => Ok(()),
        // curl's words and code for a refused tunnel.
        Some(head) => Err(fail(
            exit::RECEIVE,
            format!(
                "proxy {proxy}: CONNECT tunnel failed, response {} {}",
                head.status, head.reason
            ),
        )),
        None => Err(fail(
            exit::RECEIVE,
            format!("proxy {proxy}: closed the connection without answering CONNECT"),
        )),
    }
}

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
) -> Result<(), Failed> {
    let target = match request.proxy {
        Some(_) => url.to_string(),
        None => url.path.clone(),
    };
    let mut text = format!("{} {target} HTTP/1.1\r\n", request.method);
    let defaults = [
        ("Host", url.authority()),
        ("User-Agent", format!("zcopy/{}", env!("CARGO_PKG_VERSION"))),
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
        .map_err(|e| fail(exit::SEND, format!("{url}: cannot send the request: {e}")))
}

/// How a response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    /// The minor version of HTTP/1.x the server answered with.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
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
pub fn read_head(stream: &TcpStream, url: &Url) -> Result<Option<Head>, Failed> {
    loop {
        let Some(raw) = peek_head(stream, url)? else {
            return Ok(None);
        };
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut response = httparse::Response::new(&mut headers);
        let weird = |why: &str| fail(exit::WEIRD_REPLY, format!("{url}: {why}"));
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
fn peek_head(stream: &TcpStream, url: &Url) -> Result<Option<Vec<u8>>, Failed> {
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
                Err(fail(
                    exit::RECEIVE,
                    format!("{url}: the server closed in the middle of the response head"),
                ))
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
            return Err(fail(
                exit::WEIRD_REPLY,
                format!("{url}: response head longer than {MAX_HEAD} bytes"),
            ));
        }
    }
}

/// A failed read from the server: a timeout (28) or another error (56).
pub fn recv_failure(url: &Url, e: io::Error, what: &str) -> Failed {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        fail(
            exit::TIMEOUT,
            format!("{url}: timed out waiting for {what}"),
        )
    } else {
        fail(exit::RECEIVE, format!("{url}: receiving {what}: {e}"))
    }
}

/// Reads and drops a body of `len` bytes (a redirect's), keeping the connection
/// usable.
pub fn discard(stream: &TcpStream, len: u64, url: &Url) -> Result<(), Failed> {
    io::copy(&mut stream.take(len), &mut io::sink())
        .map_err(|e| recv_failure(url, e, "a redirect's body"))
        .and_then(|n| {
            (n == len).then_some(()).ok_or_else(|| {
                fail(
                    exit::PEER_CLOSED,
                    format!("{url}: the redirect's body ended early"),
                )
            })
        })
}

/// What a body transfer did.
pub struct Body {
    pub report: Report,
    /// The body was decoded in user space (chunked), so its bytes were copied.
    pub copied: bool,
}

/// How a body is received.
#[derive(Clone, Copy, Debug)]
pub struct Receiving {
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
) -> Result<Body, Failed> {
    let len = match framing {
        Framing::Length(n) => Some(n),
        Framing::UntilClose => None,
        Framing::Chunked => return decode_chunked(stream, file, url, how.rate.map(Pace::new)),
    };
    let options = Options { len, ..how.options };
    let mut transfer = Transfer::new(stream, file, options)
        .map_err(|e| fail(exit::WRITE, format!("{url}: {e}")))?;
    let result = match how.rate {
        None => crate::progress::run(&mut transfer, len, how.progress),
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

/// Keeps a transfer at or under a rate by sleeping between its steps.
struct Pace {
    rate: u64,
    started: Instant,
}

impl Pace {
    fn new(rate: u64) -> Pace {
        Pace {
            rate: rate.max(1),
            started: Instant::now(),
        }
    }

    /// Sleeps until `moved` bytes are due.
    fn wait(&self, moved: u64) {
        let due = Duration::from_secs_f64(moved as f64 / self.rate as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Runs `transfer` in steps of a tenth of a second's worth at `rate`; the socket
/// buffer fills meanwhile and TCP slows the sender down.
fn paced(transfer: &mut Transfer<'_>, rate: u64) -> Result<(), zcopy::Error> {
    let pace = Pace::new(rate);
    let step = (rate / 10).clamp(16 << 10, 4 << 20);
    loop {
        match transfer.run_some(step)? {
            Status::Done => return Ok(()),
            Status::More => pace.wait(transfer.moved()),
            // Blocking sockets return EAGAIN only when SO_RCVTIMEO expired.
            Status::WouldBlock(_) => {
                return Err(zcopy::Error::Setup(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for the peer",
                )))
            }
        }
    }
}

/// Sorts an engine's failure into curl's codes: the file (23), the peer (18, 56) or
/// the clock (28).
fn body_failure(url: &Url, e: &zcopy::Error, moved: u64) -> Failed {
    let at = format!("{url}: after {moved} bytes");
    match e {
        zcopy::Error::EndedEarly { got, expected } => fail(
            exit::PEER_CLOSED,
            format!("{url}: the server closed after {got} of {expected} bytes"),
        ),
        zcopy::Error::Io { cause: source, .. } | zcopy::Error::Setup(source) => {
            // EPIPE: `-o -` into a pipe whose reader left (curl says 23 too).
            let file_side = source.raw_os_error().is_some_and(|errno| {
                [
                    libc::EPIPE,
                    libc::ENOSPC,
                    libc::EDQUOT,
                    libc::EFBIG,
                    libc::EIO,
                    libc::EROFS,
                ]
                .contains(&errno)
            });
            if file_side {
                fail(
                    exit::WRITE,
                    format!("{at}: cannot write the file: {source}"),
                )
            } else if matches!(
                source.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                fail(
                    exit::TIMEOUT,
                    format!("{at}: timed out waiting for the server"),
                )
            } else {
                fail(exit::RECEIVE, format!("{at}: {source}"))
            }
        }
        other => fail(exit::RECEIVE, format!("{at}: {other}")),
    }
}

/// A chunked body, decoded through a buffer. The connection is not reused after
/// it (bytes past the last chunk would be lost in the buffer).
fn decode_chunked(
    stream: &TcpStream,
    file: &File,
    url: &Url,
    pace: Option<Pace>,
) -> Result<Body, Failed> {
    let started = std::time::Instant::now();
    let mut reader = Buffered {
        stream,
        buf: vec![0; 64 << 10],
        start: 0,
        end: 0,
        syscalls: Syscalls::default(),
    };
    let mut written = 0u64;
    let mut out = file;
    let weird = |why: &str| fail(exit::WEIRD_REPLY, format!("{url}: chunked body: {why}"));
    loop {
        let line = reader.line(url)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let mut left = u64::from_str_radix(size, 16)
            .map_err(|_| weird(&format!("bad chunk size {size:?}")))?;
        if left == 0 {
            // Trailer fields, up to the blank line.
            while !reader.line(url)?.is_empty() {}
            break;
        }
        while left > 0 {
            if reader.start == reader.end && reader.fill(url)? == 0 {
                return Err(fail(
                    exit::PEER_CLOSED,
                    format!("{url}: the server closed in the middle of a chunk"),
                ));
            }
            let n = (reader.end - reader.start).min(usize::try_from(left).unwrap_or(usize::MAX));
            reader.syscalls.count(Syscall::Write);
            out.write_all(&reader.buf[reader.start..reader.start + n])
                .map_err(|e| fail(exit::WRITE, format!("{url}: cannot write the file: {e}")))?;
            reader.start += n;
            left -= n as u64;
            written += n as u64;
            if let Some(pace) = &pace {
                pace.wait(written);
            }
        }
        if !reader.line(url)?.is_empty() {
            return Err(weird("no CRLF after a chunk"));
        }
    }
    Ok(Body {
        report: Report {
            engine: Engine::ReadWrite,
            skipped: Vec::new(),
            bytes: written,
            elapsed: started.elapsed(),
            syscalls: reader.syscalls,
            zerocopy: zcopy::ZeroCopy::default(),
            rusage: zcopy::Rusage::default(),
        },
        copied: true,
    })
}

/// A read buffer over the socket, counting its reads.
struct Buffered<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    syscalls: Syscalls,
}

impl Buffered<'_> {
    /// Reads more into an emptied buffer; 0 at the end of the stream.
    fn fill(&mut self, url: &Url) -> Result<usize, Failed> {
        self.start = 0;
        self.end = 0;
        loop {
            self.syscalls.count(Syscall::Read);
            match (&*self.stream).read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(recv_failure(url, e, "the body")),
            }
        }
    }

    /// One line without its CRLF (a chunk-size line, a trailer), at most 4 KiB.
    fn line(&mut self, url: &Url) -> Result<String, Failed> {
        let mut line = Vec::new();
        loop {
            if self.start == self.end && self.fill(url)? == 0 {
                return Err(fail(
                    exit::PEER_CLOSED,
                    format!("{url}: the server closed in the middle of a chunked body"),
                ));
            }
            let seen = &self.buf[self.start..self.end];
            match seen.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    line.extend_from_slice(&seen[..at]);
                    self.start += at + 1;
                    break;
                }
                None => {
                    line.extend_from_slice(seen);
                    self.start = self.end;
                }
            }
            if line.len() > 4096 {
                return Err(fail(
                    exit::WEIRD_REPLY,
                    format!("{url}: chunked body: line too long"),
                ));
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line)
            .map_err(|_| fail(exit::WEIRD_REPLY, format!("{url}: chunked body: not text")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://example.com:8080/a/b%20c.iso?x=1#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.com", 8080, "/a/b%20c.iso?x=1")
        );
        assert_eq!(u.file_name().as_deref(), Some("b c.iso"));
        assert_eq!(u.authority(), "example.com:8080");
        let u = Url::parse("HTTP://[::1]/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.authority()),
            ("::1", 80, "[::1]".into())
        );
        assert_eq!(u.file_name(), None);
        assert_eq!(Url::parse("127.0.0.1:9/x").unwrap().path, "/x");
        assert_eq!(Url::parse("http://h?q").unwrap().path, "/?q");
        let secure = Url::parse("https://h/x").unwrap();
        assert_eq!(
            (secure.tls, secure.port, secure.authority()),
            (true, 443, "h".into())
        );
        assert_eq!(secure.join("//o/y").unwrap().to_string(), "https://o/y");
        assert_eq!(Url::parse("ftp://h/").unwrap_err().code, exit::FAILURE);
        assert_eq!(
            Url::parse("http://h:99999/").unwrap_err().code,
            exit::URL_MALFORMED
        );
        assert_eq!(
            Url::parse("http://u@h/").unwrap_err().code,
            exit::URL_MALFORMED
        );
        assert_eq!(
            Url::parse("http:///x").unwrap_err().code,
            exit::URL_MALFORMED
        );
        assert_eq!(Url::parse("http://h/%2e%2e").unwrap().file_name(), None);
    }

    #[test]
    fn redirect_targets() {
        let base = Url::parse("http://h:81/a/b/c?q").unwrap();
        let path = |loc: &str| base.join(loc).unwrap().to_string();
        assert_eq!(path("d"), "http://h:81/a/b/d");
        assert_eq!(path("../d?x"), "http://h:81/a/d?x");
        assert_eq!(path("./"), "http://h:81/a/b/");
        assert_eq!(path("/e/./f/../g"), "http://h:81/e/g");
        assert_eq!(path("//other/x"), "http://other/x");
        assert_eq!(path("http://third:82/"), "http://third:82/");
        assert_eq!(path("../../../.."), "http://h:81/");
    }
}
