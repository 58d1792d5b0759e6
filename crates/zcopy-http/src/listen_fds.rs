//! systemd socket activation (`sd_listen_fds(3)`): a service started by a `.socket`
//! unit finds its listening socket already open at descriptor 3, announced by
//! `LISTEN_PID` (our pid) and `LISTEN_FDS` (how many). The variables are removed so
//! that children do not take the socket for theirs. `ListenStream=` passes a TCP
//! socket for a port and a Unix-domain one for a path: the socket's own address
//! family says which.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use crate::server::Listener;
use rustix::net::{sockopt, AddressFamily, SocketType};

/// Why the socket systemd passed cannot be served on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not one socket.
    #[error("systemd passed {0} sockets (LISTEN_FDS); zcopy serve takes exactly one")]
    Count(i32),
    /// `LISTEN_FDS` is not a count.
    #[error("LISTEN_FDS={0} is not a number")]
    NotANumber(String),
    /// Descriptor 3 is a file, a pipe, ….
    #[error("descriptor 3 from systemd (LISTEN_FDS) is not a socket")]
    NotASocket,
    /// A datagram socket, or one not listening.
    #[error(
        "descriptor 3 from systemd (LISTEN_FDS) is not a listening stream socket (ListenStream=)"
    )]
    NotListening,
    /// A call on the descriptor failed.
    #[error(transparent)]
    Sys(#[from] rustix::io::Errno),
}

/// The first descriptor systemd passes.
const SD_LISTEN_FDS_START: i32 = 3;

/// The listening socket systemd passed to this process, if it passed one.
pub fn take() -> Result<Option<Listener>, Error> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    match count.parse::<i32>() {
        Ok(1) => {}
        Ok(n) => return Err(Error::Count(n)),
        Err(_) => return Err(Error::NotANumber(count)),
    }
    let fd = SD_LISTEN_FDS_START;
    let stat = rustix::fs::fstat(
        // SAFETY: systemd passes descriptor 3 open to this process (LISTEN_PID is
        // ours), and nothing else in the process has taken it yet.
        unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) },
    )?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err(Error::NotASocket);
    }
    // SAFETY: as above; from here the listener owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    // ListenDatagram= or a socket not yet listening would fail at the first accept.
    if sockopt::socket_type(&owned)? != SocketType::STREAM || !sockopt::socket_acceptconn(&owned)? {
        return Err(Error::NotListening);
    }
    let family = rustix::net::getsockname(&owned)?.address_family();
    Ok(Some(if family == AddressFamily::UNIX {
        Listener::Unix(UnixListener::from(owned))
    } else {
        Listener::Tcp(TcpListener::from(owned))
    }))
}
