//! Requests: parsing bytes from the network, which may be hostile (their byte
//! ranges are [`crate::range`]'s).
//! Nothing here panics on any input; limits turn oversized input into 414 or 431.

use httparse::EMPTY_HEADER;

use crate::response::Status;

// The fuzz target reaches both parsers of a request through this module.
pub use crate::range::{span, Span};

/// The longest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8192;
/// The most header lines accepted.
pub const MAX_HEADERS: usize = 64;

/// A request's method, as far as a file server cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the head without the body.
    Head,
    /// An upload (`zcopy serve --upload`, `curl -T`).
    Put,
    /// Anything else: answered 405.
    Other,
}

/// The parts of a request the server uses, borrowed from the input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, sorted.
    pub method: Method,
    /// The method as sent (for the access log).
    pub method_name: &'a str,
    /// The request target: path and query.
    pub target: &'a str,
    /// The minor version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub version: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The `Range` header.
    pub range: Option<&'a str>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<&'a str>,
    /// The `If-Modified-Since` header.
    pub if_modified_since: Option<&'a str>,
    /// `Range` applies only while this validator matches (RFC 9110 §13.1.5).
    pub if_range: Option<&'a str>,
    /// The `Accept-Encoding` header.
    pub accept_encoding: Option<&'a str>,
    /// The `Accept` header.
    pub accept: Option<&'a str>,
    /// The body's length; only a PUT may have a body.
    pub content_length: Option<u64>,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
    /// Credentials, for uploads.
    pub authorization: Option<&'a str>,
    /// For the access log.
    pub referer: Option<&'a str>,
    /// The `User-Agent` header, for the access log.
    pub user_agent: Option<&'a str>,
    /// How many `Host` lines it has (see [`Request::host_ok`]).
    pub hosts: u8,
}

impl Request<'_> {
    /// RFC 9112 §3.2: an HTTP/1.1 request without Host, and any request with two,
    /// gets 400 (two could name two sites to two servers on the way). Checked
    /// once the request is parsed, so that the access log names it.
    pub fn host_ok(&self) -> bool {
        self.hosts == 1 || (self.hosts == 0 && self.version == 0)
    }
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole request head of this many bytes.
    Complete(Request<'a>, usize),
    /// Not yet a whole head: read more.
    Partial,
    /// A request to refuse with this status, then close.
    Refuse(Status, &'static str),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => return too_large(buf),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return too_large(buf),
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refuse(Status::HeaderFieldsTooLarge, "too many header lines")
        }
        Err(_) => return Parsed::Refuse(Status::BadRequest, "malformed request"),
    };
    let (Some(method_name), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Refuse(Status::BadRequest, "malformed request line");
    };
    let method = match method_name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "PUT" => Method::Put,
        _ => Method::Other,
    };
    let mut keep_alive = minor == 1;
    let mut range = None;
    let mut if_none_match = None;
    let mut if_modified_since = None;
    let mut if_range = None;
    let mut accept_encoding = None;
    let mut accept = None;
    let mut content_length = None;
    let mut expect_continue = false;
    let mut authorization = None;
    let mut hosts = 0u8;
    let mut referer = None;
    let mut user_agent = None;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        // Lowercased on the stack: no allocation per header line. A name longer
        // than any the server reads matches none.
        let mut lower = [0u8; 24];
        let name = match lower.get_mut(..h.name.len()) {
            Some(room) => {
                room.copy_from_slice(h.name.as_bytes());
                room.make_ascii_lowercase();
                &*room
            }
            None => &[],
        };
        match name {
            b"connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    }
                }
            }
            b"range" => range = Some(value),
            b"if-none-match" => if_none_match = Some(value),
            b"if-modified-since" => if_modified_since = Some(value),
            b"if-range" => if_range = Some(value),
            b"accept-encoding" => accept_encoding = Some(value),
            b"accept" => accept = Some(value),
            // A body the server does not read would be taken for the next request
            // (request smuggling): anything but one plain length is refused.
            b"transfer-encoding" if method == Method::Put => {
                return Parsed::Refuse(Status::LengthRequired, "uploads need a Content-Length")
            }
            b"transfer-encoding" => {
                return Parsed::Refuse(Status::BadRequest, "request bodies are not accepted")
            }
            b"content-length" => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                match value.parse::<u64>() {
                    Ok(n) if digits && content_length.is_none() => content_length = Some(n),
                    _ => {
                        return Parsed::Refuse(Status::BadRequest, "bad or repeated Content-Length")
                    }
                }
            }
            b"expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            b"authorization" => authorization = Some(value),
            b"host" => hosts = hosts.saturating_add(1),
            b"referer" => referer = Some(value),
            b"user-agent" => user_agent = Some(value),
            _ => {}
        }
    }
    match (method, content_length) {
        (Method::Put, None) => {
            return Parsed::Refuse(Status::LengthRequired, "uploads need a Content-Length")
        }
        (Method::Put, _) | (_, None | Some(0)) => {}
        (_, Some(_)) => {
            return Parsed::Refuse(Status::BadRequest, "request bodies are not accepted")
        }
    }
    Parsed::Complete(
        Request {
            method,
            method_name,
            target,
            version: minor,
            keep_alive,
            range,
            if_none_match,
            if_modified_since,
            if_range,
            accept_encoding,
            accept,
            content_length,
            expect_continue,
            authorization,
            referer,
            user_agent,
            hosts,
        },
        head_len,
    )
}

fn too_large(buf: &[u8]) -> Parsed<'_> {
    let line_ends = buf.iter().take(MAX_HEAD).any(|&b| b == b'\n');
    if line_ends {
        Parsed::Refuse(
            Status::HeaderFieldsTooLarge,
            "request header fields too large",
        )
    } else {
        Parsed::Refuse(Status::UriTooLong, "request line too long")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Parsed<'_> {
        parse(text.as_bytes())
    }

    #[test]
    fn requests() {
        let Parsed::Complete(r, n) =
            req("GET /a%20b HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\nGET")
        else {
            panic!()
        };
        assert_eq!(
            (r.method, r.target, r.keep_alive, n),
            (Method::Get, "/a%20b", true, 50)
        );
        assert_eq!(r.range, Some("bytes=0-9"));
        let Parsed::Complete(r, _) = req(
            "GET / HTTP/1.1\r\nHost: x\r\nACCEPT-Encoding: br\r\nX-A-Name-Longer-Than-The-Buffer: 1\r\n\r\n",
        ) else {
            panic!()
        };
        assert_eq!(r.accept_encoding, Some("br"));
        let Parsed::Complete(r, _) = req("HEAD / HTTP/1.0\r\n\r\n") else {
            panic!()
        };
        assert!(!r.keep_alive);
        let Parsed::Complete(r, _) = req("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        else {
            panic!()
        };
        assert!(!r.keep_alive);
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial);
        let Parsed::Complete(r, _) = req("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n") else {
            panic!()
        };
        assert_eq!(r.method, Method::Other);
    }

    #[test]
    fn host_is_required_on_http_1_1() {
        let refused = |text: &str| matches!(req(text), Parsed::Complete(r, _) if !r.host_ok());
        assert!(refused("GET / HTTP/1.1\r\n\r\n"));
        assert!(refused("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n"));
        assert!(refused("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"));
        assert!(!refused("GET / HTTP/1.0\r\n\r\n"));
        assert!(!refused("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
    }

    #[test]
    fn hostile_requests() {
        assert!(matches!(
            req("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Parsed::Refuse(Status::BadRequest, _)
        ));
        assert!(matches!(
            req("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Refuse(Status::BadRequest, _)
        ));
        assert!(matches!(
            req("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"),
            Parsed::Refuse(Status::BadRequest, _)
        ));
        assert!(matches!(
            req("PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Refuse(Status::LengthRequired, _)
        ));
        assert!(matches!(
            req("PUT /a HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Refuse(Status::LengthRequired, _)
        ));
        for bad in ["-1", "+5", "5, 5", "0x10", "99999999999999999999999"] {
            let text = format!("PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
            assert!(
                matches!(req(&text), Parsed::Refuse(Status::BadRequest, _)),
                "{bad}"
            );
        }
        let Parsed::Complete(r, _) =
            req("PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(
            (r.method, r.content_length, r.expect_continue),
            (Method::Put, Some(12), true)
        );
        assert!(matches!(
            req("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n"),
            Parsed::Refuse(Status::BadRequest, _)
        ));
        assert!(matches!(
            req("\x00\x01 garbage\r\n\r\n"),
            Parsed::Refuse(Status::BadRequest, _)
        ));
        let long_line = format!("GET /{} HTTP/1.1", "a".repeat(MAX_HEAD));
        assert!(matches!(
            req(&long_line),
            Parsed::Refuse(Status::UriTooLong, _)
        ));
        let long_head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert!(matches!(
            req(&long_head),
            Parsed::Refuse(Status::HeaderFieldsTooLarge, _)
        ));
        let many = format!(
            "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(
            req(&many),
            Parsed::Refuse(Status::HeaderFieldsTooLarge, _)
        ));
    }

    /// The fuzz target's seed corpus (hostile requests) goes through both parsers.
    #[test]
    fn fuzz_corpus_is_parsed_without_panics() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_request");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Parsed::Complete(req, used) = parse(&data) {
                assert!(used <= data.len());
                let _ = span(req.range, 1000);
            }
            let _ = span(std::str::from_utf8(&data).ok(), 1000);
            seen += 1;
        }
        assert!(seen >= 10);
    }
}
