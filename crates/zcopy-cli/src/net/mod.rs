//! Addresses, listening and connecting, shared by `send`, `recv` and `echo`.

pub mod frame;

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Parses a listen address: `HOST:PORT`, `:PORT` or `PORT`; a bare port binds
/// 127.0.0.1, as every zcopy server does unless told otherwise.
pub fn listen_addr(text: &str) -> Result<SocketAddr> {
    let full = if let Some(port) = text.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if text.parse::<u16>().is_ok() {
        format!("127.0.0.1:{text}")
    } else {
        text.to_string()
    };
    full.to_socket_addrs()
        .with_context(|| {
            format!("{text}: not a listen address (expected HOST:PORT, :PORT or PORT)")
        })?
        .next()
        .with_context(|| format!("{text}: the name has no address"))
}

/// Binds `text` and says where on stderr ("listening on 127.0.0.1:PORT"), so a
/// caller that asked for port 0 learns the port.
pub fn listen(text: &str) -> Result<TcpListener> {
    let addr = listen_addr(text)?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("listening on {local}");
    Ok(listener)
}

/// Connects to `HOST:PORT`, trying each address the name has.
pub fn connect(text: &str) -> Result<TcpStream> {
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .with_context(|| format!("{text}: not an address (expected HOST:PORT)"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("cannot connect to {text}")),
        None => bail!("{text}: the name has no address"),
    }
}

/// Ends our side of a raw stream gracefully: shut down writing, then read and
/// discard what the peer still sends until it closes or stays quiet for `quiet`.
/// Closing with unread data would send a reset that can destroy bytes the peer has
/// not read yet (nginx calls this a lingering close).
pub fn lingering_close(mut stream: TcpStream, quiet: Duration) {
    if stream.shutdown(Shutdown::Write).is_err() || stream.set_read_timeout(Some(quiet)).is_err() {
        return;
    }
    let mut sink = [0u8; 64 << 10];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}
