//! A connection to a URL's host: each address tried with a timeout, through a
//! proxy's `CONNECT` tunnel for `https://`, with the TLS handshake done.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::head::read_head;
use super::proxy::Proxy;
use super::request::USER_AGENT;
use super::tls::Settings;
use super::{Error, Url};

/// Opens a connection to `url`'s host, or to `proxy` (through a `CONNECT` tunnel
/// for `https://`), trying each address; for `https://`, with the TLS handshake done.
pub fn connect(
    url: &Url,
    proxy: Option<&Proxy>,
    connect_timeout: Duration,
    timeout: Duration,
    tls: &Settings,
) -> Result<TcpStream, Error> {
    let hop = proxy.map_or(url, |p| &p.url);
    let resolve = |why: String| {
        if proxy.is_some() {
            Error::ResolveProxy(why)
        } else {
            Error::Resolve(why)
        }
    };
    let addrs: Vec<SocketAddr> = (hop.host.as_str(), hop.port)
        .to_socket_addrs()
        .map_err(|e| resolve(format!("cannot resolve {}: {e}", hop.host)))?
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
                timeouts.map_err(|e| Error::Connect(format!("{addr}: {e}")))?;
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
        Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => Error::Timeout(format!(
            "cannot connect to {addr}: no answer within {connect_timeout:?}"
        )),
        Some((addr, e)) => Error::Connect(format!("cannot connect to {addr}: {e}")),
        None => resolve(format!("{}: the name has no address", hop.host)),
    })
}

/// `CONNECT host:port` through `proxy`: afterwards the connection is a pipe to `url`'s host.
fn tunnel(stream: &TcpStream, url: &Url, proxy: &Proxy) -> Result<(), Error> {
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
        "CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n{authorization}User-Agent: {USER_AGENT}\r\n\r\n"
    );
    let proxy = &proxy.url;
    (&*stream)
        .write_all(request.as_bytes())
        .map_err(|e| Error::Send(format!("proxy {proxy}: cannot send CONNECT: {e}")))?;
    match read_head(stream, proxy)? {
        Some(head) if (200..300).contains(&head.status) => Ok(()),
        // curl's words and code for a refused tunnel.
        Some(head) => Err(Error::Receive(format!(
            "proxy {proxy}: CONNECT tunnel failed, response {} {}",
            head.status, head.reason
        ))),
        None => Err(Error::Receive(format!(
            "proxy {proxy}: closed the connection without answering CONNECT"
        ))),
    }
}
