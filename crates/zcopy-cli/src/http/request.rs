//! Requests and byte ranges: parsing bytes from the network, which may be hostile.
//! Nothing here panics on any input; limits turn oversized input into 414 or 431.

use httparse::{Status, EMPTY_HEADER};

/// The longest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8192;
/// The most header lines accepted.
pub const MAX_HEADERS: usize = 64;

/// A request's method, as far as a file server cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// An upload (`zcopy serve --upload`, `curl -T`).
    Put,
    /// Anything else: answered 405.
    Other,
}

/// The parts of a request the server uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub method_name: String,
    pub target: String,
    pub keep_alive: bool,
    pub range: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// The body's length; only a PUT may have a body.
    pub content_length: Option<u64>,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
    /// Credentials, for uploads.
    pub authorization: Option<String>,
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request head of this many bytes.
    Complete(Request, usize),
    /// Not yet a whole head: read more.
    Partial,
    /// A request to refuse with this status, then close.
    Refuse(u16, &'static str),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(Status::Complete(n)) if n > MAX_HEAD => return too_large(buf),
        Ok(Status::Complete(n)) => n,
        Ok(Status::Partial) if buf.len() >= MAX_HEAD => return too_large(buf),
        Ok(Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refuse(431, "too many header lines")
        }
        Err(_) => return Parsed::Refuse(400, "malformed request"),
    };
    let (Some(method_name), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Refuse(400, "malformed request line");
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
    let mut content_length = None;
    let mut expect_continue = false;
    let mut authorization = None;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        match h.name.to_ascii_lowercase().as_str() {
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    }
                }
            }
            "range" => range = Some(value.to_string()),
            "if-none-match" => if_none_match = Some(value.to_string()),
            "if-modified-since" => if_modified_since = Some(value.to_string()),
            // A body the server does not read would be taken for the next request
            // (request smuggling): anything but one plain length is refused.
            "transfer-encoding" if method == Method::Put => {
                return Parsed::Refuse(411, "uploads need a Content-Length")
            }
            "transfer-encoding" => return Parsed::Refuse(400, "request bodies are not accepted"),
            "content-length" => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                match value.parse::<u64>() {
                    Ok(n) if digits && content_length.is_none() => content_length = Some(n),
                    _ => return Parsed::Refuse(400, "bad or repeated Content-Length"),
                }
            }
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "authorization" => authorization = Some(value.to_string()),
            _ => {}
        }
    }
    match (method, content_length) {
        (Method::Put, None) => return Parsed::Refuse(411, "uploads need a Content-Length"),
        (Method::Put, _) | (_, None | Some(0)) => {}
        (_, Some(_)) => return Parsed::Refuse(400, "request bodies are not accepted"),
    }
    Parsed::Complete(
        Request {
            method,
            method_name: method_name.to_string(),
            target: target.to_string(),
            keep_alive,
            range,
            if_none_match,
            if_modified_since,
            content_length,
            expect_continue,
            authorization,
        },
        head_len,
    )
}

fn too_large(buf: &[u8]) -> Parsed {
    let line_ends = buf.iter().take(MAX_HEAD).any(|&b| b == b'\n');
    if line_ends {
        Parsed::Refuse(431, "request header fields too large")
    } else {
        Parsed::Refuse(414, "request line too long")
    }
}

/// The part of a file a `Range` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// The whole file: no header, an unusable one, or several ranges.
    Full,
    /// Bytes `start..=end` (206).
    Part { start: u64, end: u64 },
    /// Nothing of the file can satisfy it (416).
    Unsatisfiable,
}

/// Interprets a `Range` header for a file of `size` bytes. Several ranges get the
/// whole file (200), as the RFC allows; syntax errors are ignored, as it requires.
pub fn span(header: Option<&str>, size: u64) -> Span {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Span::Full;
    };
    if spec.contains(',') {
        return Span::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Span::Full;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => Span::Full,
            Some(0) => Span::Unsatisfiable,
            Some(_) if size == 0 => Span::Unsatisfiable,
            Some(n) => Span::Part {
                start: size - n.min(size),
                end: size - 1,
            },
        },
        (start, "") => match number(start) {
            None => Span::Full,
            Some(s) if s >= size => Span::Unsatisfiable,
            Some(s) => Span::Part {
                start: s,
                end: size - 1,
            },
        },
        (start, end) => match (number(start), number(end)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= size {
                    Span::Unsatisfiable
                } else {
                    Span::Part {
                        start: s,
                        end: e.min(size - 1),
                    }
                }
            }
            _ => Span::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Parsed {
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
            (r.method, r.target.as_str(), r.keep_alive, n),
            (Method::Get, "/a%20b", true, 50)
        );
        assert_eq!(r.range.as_deref(), Some("bytes=0-9"));
        let Parsed::Complete(r, _) = req("HEAD / HTTP/1.0\r\n\r\n") else {
            panic!()
        };
        assert!(!r.keep_alive);
        let Parsed::Complete(r, _) = req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n") else {
            panic!()
        };
        assert!(!r.keep_alive);
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial);
        let Parsed::Complete(r, _) = req("DELETE / HTTP/1.1\r\n\r\n") else {
            panic!()
        };
        assert_eq!(r.method, Method::Other);
    }

    #[test]
    fn hostile_requests() {
        assert!(matches!(
            req("GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Parsed::Refuse(400, _)
        ));
        assert!(matches!(
            req("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Refuse(400, _)
        ));
        assert!(matches!(
            req("GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"),
            Parsed::Refuse(400, _)
        ));
        assert!(matches!(
            req("PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Refuse(411, _)
        ));
        assert!(matches!(
            req("PUT /a HTTP/1.1\r\n\r\n"),
            Parsed::Refuse(411, _)
        ));
        for bad in ["-1", "+5", "5, 5", "0x10", "99999999999999999999999"] {
            let text = format!("PUT /a HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            assert!(matches!(req(&text), Parsed::Refuse(400, _)), "{bad}");
        }
        let Parsed::Complete(r, _) =
            req("PUT /a HTTP/1.1\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(
            (r.method, r.content_length, r.expect_continue),
            (Method::Put, Some(12), true)
        );
        assert!(matches!(
            req("GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n"),
            Parsed::Refuse(400, _)
        ));
        assert!(matches!(
            req("\x00\x01 garbage\r\n\r\n"),
            Parsed::Refuse(400, _)
        ));
        let long_line = format!("GET /{} HTTP/1.1", "a".repeat(MAX_HEAD));
        assert!(matches!(req(&long_line), Parsed::Refuse(414, _)));
        let long_head = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(req(&long_head), Parsed::Refuse(431, _)));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(req(&many), Parsed::Refuse(431, _)));
    }

    #[test]
    fn ranges() {
        let p = |start, end| Span::Part { start, end };
        assert_eq!(span(None, 10), Span::Full);
        assert_eq!(span(Some("bytes=0-0"), 10), p(0, 0));
        assert_eq!(span(Some("bytes=2-5"), 10), p(2, 5));
        assert_eq!(span(Some("bytes=2-"), 10), p(2, 9));
        assert_eq!(span(Some("bytes=-3"), 10), p(7, 9));
        assert_eq!(span(Some("bytes=-30"), 10), p(0, 9));
        assert_eq!(span(Some("bytes=5-100"), 10), p(5, 9));
        assert_eq!(span(Some("bytes=10-"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-0"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-"), 0), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=5-2"), 10), Span::Full);
        assert_eq!(span(Some("bytes=0-1,4-5"), 10), Span::Full);
        assert_eq!(span(Some("items=0-1"), 10), Span::Full);
        assert_eq!(span(Some("bytes=a-b"), 10), Span::Full);
        assert_eq!(span(Some("bytes=99999999999999999999999-"), 10), Span::Full);
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
                let _ = span(req.range.as_deref(), 1000);
            }
            let _ = span(std::str::from_utf8(&data).ok(), 1000);
            seen += 1;
        }
        assert!(seen >= 10);
    }

    /// Range arithmetic on many random headers and sizes: a part is always inside
    /// the file and never empty, and parsing never panics.
    #[test]
    fn range_properties() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..100_000 {
            let size = next(5) * next(1 << 20);
            let (a, b) = (next(size + 10), next(size + 10));
            let header = match next(4) {
                0 => format!("bytes={a}-{b}"),
                1 => format!("bytes={a}-"),
                2 => format!("bytes=-{b}"),
                _ => format!("bytes={a}-{b},{b}-"),
            };
            match span(Some(&header), size) {
                Span::Part { start, end } => {
                    assert!(start <= end && end < size, "{header} of {size}")
                }
                Span::Unsatisfiable => assert!(
                    size == 0 || header.contains("-0") || a >= size,
                    "{header} of {size}"
                ),
                Span::Full => {}
            }
        }
    }
}
