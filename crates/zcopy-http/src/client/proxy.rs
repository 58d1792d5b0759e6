//! Proxies as curl finds them in the environment: `http_proxy` for http:// (only the
//! lower-case name: a CGI program gets `HTTP_PROXY` from a request's `Proxy:` header),
//! `https_proxy`/`HTTPS_PROXY` for https:// (a `CONNECT` tunnel), `all_proxy`/
//! `ALL_PROXY` for both, and `no_proxy`/`NO_PROXY` for the hosts that go direct
//! (names with their subdomains, addresses, CIDR ranges, `*`).

use std::net::IpAddr;

use base64ct::Encoding;

use super::{Error, Url};
use crate::percent;

/// A proxy: where it listens, and the Basic credentials of `http://user:password@host`.
pub struct Proxy {
    /// Where the proxy listens.
    pub url: Url,
    /// The `Proxy-Authorization` value.
    pub authorization: Option<String>,
}

/// curl's port for a proxy named without one.
const DEFAULT_PORT: u16 = 1080;

/// The proxies a run uses, read once.
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    /// `no_proxy` entries: host names (matched with their subdomains) and addresses.
    direct: Vec<String>,
    /// `no_proxy=*`.
    all_direct: bool,
}

impl Proxies {
    /// From curl's `-x PROXY` and `--noproxy LIST` where given (`-x ""`: none),
    /// else from the environment as curl reads it: the lower-case name first.
    pub fn new(proxy: Option<&str>, noproxy: Option<&str>) -> Result<Proxies, Error> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Proxies::read(env, proxy, noproxy)
    }

    fn read(
        var: impl Fn(&str) -> Option<String>,
        given: Option<&str>,
        noproxy: Option<&str>,
    ) -> Result<Proxies, Error> {
        let either = |lower: &str| var(lower).or_else(|| var(&lower.to_ascii_uppercase()));
        let (http, https) = match given {
            Some(given) => {
                let given = Some(given.to_string()).filter(|g| !g.is_empty());
                (given.clone(), given)
            }
            None => {
                let all = either("all_proxy");
                (
                    var("http_proxy").or_else(|| all.clone()),
                    either("https_proxy").or(all),
                )
            }
        };
        let no_proxy = noproxy
            .map(str::to_string)
            .or_else(|| either("no_proxy"))
            .unwrap_or_default();
        let direct: Vec<String> = no_proxy
            .split([',', ' '])
            .map(|entry| entry.trim().trim_start_matches('.').trim_end_matches('.'))
            .filter(|entry| !entry.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        Ok(Proxies {
            http: http.as_deref().map(proxy).transpose()?,
            https: https.as_deref().map(proxy).transpose()?,
            all_direct: no_proxy.trim() == "*",
            direct,
        })
    }

    /// The proxy `url` goes through, if any.
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        let proxy = if url.tls { &self.https } else { &self.http };
        let host = url.host.trim_end_matches('.').to_ascii_lowercase();
        let direct = self.all_direct || self.direct.iter().any(|entry| goes_direct(entry, &host));
        proxy.as_ref().filter(|_| !direct)
    }
}

/// Whether `no_proxy`'s `entry` covers `host`: the name or a subdomain of it, the
/// same address, or an address in its CIDR range.
fn goes_direct(entry: &str, host: &str) -> bool {
    let entry = entry.trim_start_matches('[').trim_end_matches(']');
    if let Some((net, bits)) = entry.split_once('/') {
        let bits = |width: u32| bits.parse::<u32>().ok().filter(|&b| b <= width);
        let (net, host, bits, width) = match (net.parse::<IpAddr>(), host.parse::<IpAddr>()) {
            (Ok(IpAddr::V4(n)), Ok(IpAddr::V4(h))) => (
                u128::from(u32::from(n)),
                u128::from(u32::from(h)),
                bits(32),
                32,
            ),
            (Ok(IpAddr::V6(n)), Ok(IpAddr::V6(h))) => {
                (u128::from(n), u128::from(h), bits(128), 128)
            }
            _ => return false,
        };
        return bits.is_some_and(|b| b == 0 || (net ^ host) >> (width - b) == 0);
    }
    host == entry || host.strip_suffix(entry).is_some_and(|s| s.ends_with('.'))
}

/// A proxy from `[http://][user:password@]host[:port]`, port 1080 when none is given.
fn proxy(text: &str) -> Result<Proxy, Error> {
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(Error::Other(format!(
                "proxy {text}: unsupported proxy scheme {scheme}:// (http:// only)"
            )))
        }
        None => text,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (credentials, authority) = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = percent::decode_utf8(user).ok_or_else(|| {
                Error::UrlMalformed(format!("proxy {text}: bad %-escape in the user name"))
            })?;
            (Some(user), host)
        }
        None => (None, authority),
    };
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && (!host.contains(':') || host.ends_with(']'))
    });
    let mut url = Url::parse(&format!("http://{authority}"))?;
    if !has_port {
        url.port = DEFAULT_PORT;
    }
    // `user` alone is `user:` (curl prompts for nothing here either).
    let authorization = credentials.map(|user| {
        let pair = if user.contains(':') {
            user
        } else {
            format!("{user}:")
        };
        format!("Basic {}", base64ct::Base64::encode_string(pair.as_bytes()))
    });
    Ok(Proxy { url, authorization })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Proxies::read(var, None, None).unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_url(&Url::parse(url).unwrap())
            .map(|p| format!("{}:{}", p.url.host, p.url.port))
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
        let p = proxies(&[
            ("http_proxy", "http://u%40x:pw@p:5"),
            ("no_proxy", "10.1.0.0/16,::1/128,0.0.0.0/0x"),
        ]);
        assert_eq!(via(&p, "http://10.1.2.3/"), None);
        assert_eq!(via(&p, "http://10.2.0.1/").as_deref(), Some("p:5"));
        assert_eq!(via(&p, "http://[::1]/"), None);
        assert_eq!(via(&p, "http://[::2]/").as_deref(), Some("p:5"));
        let auth = p.for_url(&Url::parse("http://h/").unwrap()).unwrap();
        // base64("u@x:pw")
        assert_eq!(auth.authorization.as_deref(), Some("Basic dUB4OnB3"));
        let p = proxies(&[("https_proxy", "p:4"), ("NO_PROXY", "*")]);
        assert_eq!(via(&p, "https://h/"), None);
        let socks = |n: &str| (n == "http_proxy").then(|| "socks5://s".to_string());
        assert!(Proxies::read(socks, None, None).is_err());
        // -x and --noproxy win over the environment; -x "" is no proxy at all.
        let env = |n: &str| (n == "http_proxy").then(|| "env:1".to_string());
        let p = Proxies::read(env, Some("flag:2"), Some("other")).unwrap();
        assert_eq!(via(&p, "http://h/").as_deref(), Some("flag:2"));
        assert_eq!(via(&p, "https://h/").as_deref(), Some("flag:2"));
        assert_eq!(via(&p, "http://other/"), None);
        let p = Proxies::read(env, Some(""), None).unwrap();
        assert_eq!(via(&p, "http://h/"), None);
    }
}
