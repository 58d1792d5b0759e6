//! `http://` and `https://` URLs: parsed, joined with a redirect's `Location`
//! (RFC 3986's dot segments removed), and the file name `-O` saves under.

use std::fmt;

use super::Error;

/// An `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https://`: the connection speaks TLS.
    pub tls: bool,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port, the scheme's when the URL names none.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http[s]://HOST[:PORT][/PATH][?QUERY]`; a URL without a scheme is http.
    pub fn parse(text: &str) -> Result<Url, Error> {
        let malformed = |why: &str| Error::UrlMalformed(format!("{text}: {why}"));
        let (tls, rest) = match text.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (false, rest),
                "https" => (true, rest),
                other => {
                    return Err(Error::Other(format!(
                        "{text}: unsupported protocol {other}://"
                    )))
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
    pub fn join(&self, location: &str) -> Result<Url, Error> {
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
        let decoded = crate::percent::decode_utf8(last)?;
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
        assert!(matches!(Url::parse("ftp://h/"), Err(Error::Other(_))));
        assert!(matches!(
            Url::parse("http://h:99999/"),
            Err(Error::UrlMalformed(_))
        ));
        assert!(matches!(
            Url::parse("http://u@h/"),
            Err(Error::UrlMalformed(_))
        ));
        assert!(matches!(
            Url::parse("http:///x"),
            Err(Error::UrlMalformed(_))
        ));
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
