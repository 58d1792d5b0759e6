//! Proxies as curl finds them in the environment: `http_proxy` for http:// (only the
//! lower-case name: a CGI program gets `HTTP_PROXY` from a request's `Proxy:` header),
//! `https_proxy`/`HTTPS_PROXY` for https:// (a `CONNECT` tunnel), `all_proxy`/
//! `ALL_PROXY` for both, and `no_proxy`/`NO_PROXY` for the hosts that go direct.

use super::client::{fail, Failed, Url};
use crate::exit;

/// curl's port for a proxy named without one.
const DEFAULT_PORT: u16 = 1080;

/// The proxies a run uses, read once.
pub struct Proxies {
    http: Option<Url>,
    https: Option<Url>,
    /// `no_proxy` entries: host names (matched with their subdomains) and addresses.
    direct: Vec<String>,
    /// `no_proxy=*`.
    all_direct: bool,
}

impl Proxies {
    /// From the environment, as curl reads it: the lower-case name first.
    pub fn from_env() -> Result<Proxies, Failed> {
        Proxies::read(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn read(var: impl Fn(&str) -> Option<String>) -> Result<Proxies, Failed> {
        let either = |lower: &str| var(lower).or_else(|| var(&lower.to_ascii_uppercase()));
        let all = either("all_proxy");
        let http = var("http_proxy").or_else(|| all.clone());
        let https = either("https_proxy").or(all);
        let no_proxy = either("no_proxy").unwrap_or_default();
        let direct: Vec<String> = no_proxy
            .split([',', ' '])
            .map(|entry| entry.trim().trim_start_matches('.').trim_end_matches('.'))
            .filter(|entry| !entry.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        Ok(Proxies {
            http: http.as_deref().map(proxy_url).transpose()?,
            https: https.as_deref().map(proxy_url).transpose()?,
            all_direct: no_proxy.trim() == "*",
            direct,
        })
    }

    /// The proxy `url` goes through, if any.
    pub fn for_url(&self, url: &Url) -> Option<&Url> {
        let proxy = if url.tls { &self.https } else { &self.http };
        let host = url.host.trim_end_matches('.').to_ascii_lowercase();
        let direct = self.all_direct
            || self.direct.iter().any(|entry| {
                let entry = entry.trim_start_matches('[').trim_end_matches(']');
                host == entry || host.strip_suffix(entry).is_some_and(|s| s.ends_with('.'))
            });
        proxy.as_ref().filter(|_| !direct)
    }
}

/// A proxy's URL: `[http://]host[:port]`, port 1080 when none is given.
fn proxy_url(text: &str) -> Result<Url, Failed> {
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(fail(
                exit::FAILURE,
                format!("proxy {text}: unsupported proxy scheme {scheme}:// (http:// only)"),
            ))
        }
        None => text,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && (!host.contains(':') || host.ends_with(']'))
    });
    let mut url = Url::parse(&format!("http://{authority}"))?;
    if !has_port {
        url.port = DEFAULT_PORT;
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::read(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_url(&Url::parse(url).unwrap())
            .map(|u| format!("{}:{}", u.host, u.port))
    }

    #[test]
    fn curls_variables() {
        // HTTP_PROXY is not read (curl's httpoxy rule); HTTPS_PROXY is.
        let p = proxies(&[("HTTP_PROXY", "up:1"), ("HTTPS_PROXY", "sec:2")]);
        assert_eq!(via(&p, "http://h/"), None);
        assert_eq!(via(&p, "https://h/").as_deref(), Some("sec:2"));
        let p = proxies(&[
            ("http_proxy", "http://p"),
            ("all_proxy", "a:3"),
            ("no_proxy", "example.com, .local.,10.0.0.1"),
        ]);
        assert_eq!(via(&p, "http://h/").as_deref(), Some("p:1080"));
        assert_eq!(via(&p, "https://h/").as_deref(), Some("a:3"));
        assert_eq!(via(&p, "http://www.example.com/"), None);
        assert_eq!(via(&p, "http://EXAMPLE.com/"), None);
        assert_eq!(via(&p, "http://badexample.com/").as_deref(), Some("p:1080"));
        assert_eq!(via(&p, "http://x.local/"), None);
        assert_eq!(via(&p, "http://10.0.0.1:8/"), None);
        let p = proxies(&[("https_proxy", "p:4"), ("NO_PROXY", "*")]);
        assert_eq!(via(&p, "https://h/"), None);
        assert!(Proxies::read(|n| (n == "http_proxy").then(|| "socks5://s".into())).is_err());
    }
}
