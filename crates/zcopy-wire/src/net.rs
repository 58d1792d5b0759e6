//! Addresses, connecting and the socket options of a transfer, shared by the
//! sender and the receiver.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Context, Error, Result};

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

/// Connects to `HOST:PORT`, trying each address the name has, each for at most
/// `timeout`.
pub fn connect(text: &str, timeout: Duration) -> Result<TcpStream> {
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .with_context(|| format!("{text}: not an address (expected HOST:PORT)"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = Some(std::io::Error::new(
                    e.kind(),
                    format!(
                        "no answer within {} s (--connect-timeout)",
                        timeout.as_secs_f64()
                    ),
                ))
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("cannot connect to {text}")),
        None => Err(Error::Failed(format!("{text}: the name has no address"))),
    }
}

/// Whether `addr` (`HOST:PORT`) names this host.
pub fn is_loopback(addr: &str) -> bool {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| a.ip().is_loopback())
}

/// No send or receive on `stream` waits more than `timeout` for progress
/// (`SO_SNDTIMEO`, `SO_RCVTIMEO`; 0: forever): for any stream socket.
pub fn timeouts(stream: &impl std::os::fd::AsFd, timeout: Duration) -> std::io::Result<()> {
    use rustix::net::sockopt;
    let timeout = Some(timeout).filter(|t| !t.is_zero());
    sockopt::set_socket_timeout(stream, sockopt::Timeout::Recv, timeout)?;
    sockopt::set_socket_timeout(stream, sockopt::Timeout::Send, timeout)?;
    Ok(())
}

/// Liveness for a transfer socket: no send or receive waits more than `timeout`
/// for progress (`SO_SNDTIMEO`, `SO_RCVTIMEO`), and TCP keepalive probes a silent
/// peer, so a vanished host ends the transfer instead of hanging it.
pub fn keep_alive(stream: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    use rustix::net::sockopt;
    timeouts(stream, timeout)?;
    sockopt::set_socket_keepalive(stream, true)?;
    sockopt::set_tcp_keepidle(stream, Duration::from_secs(10))?;
    sockopt::set_tcp_keepintvl(stream, Duration::from_secs(5))?;
    sockopt::set_tcp_keepcnt(stream, 3)?;
    sockopt::set_tcp_nodelay(stream, true)?;
    Ok(())
}

/// Ends our side of a raw stream gracefully: shut down writing, then read and
/// discard what the peer still sends until it closes or stays quiet for `quiet`.
/// Closing with unread data would send a reset that can destroy bytes the peer has
/// not read yet (nginx calls this a lingering close).
/// Returns the first bytes the peer sent meanwhile (up to 4 KiB), for a caller
/// that wants to know what a peer said instead of reading.
pub fn lingering_close(stream: &TcpStream, quiet: Duration) -> Vec<u8> {
    let mut first = Vec::new();
    if stream.shutdown(Shutdown::Write).is_err() || stream.set_read_timeout(Some(quiet)).is_err() {
        return first;
    }
    let mut sink = [0u8; 64 << 10];
    let mut stream = stream;
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
        let keep = n.min(4096 - first.len());
        first.extend_from_slice(&sink[..keep]);
    }
    first
}
