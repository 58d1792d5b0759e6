//! ssh as the way in, not the data path: `zcopy send PATH... [user@]host:[DIR]`
//! and `zcopy recv [user@]host:PATH...` start `zcopy` on the other machine over
//! ssh (`-e/--rsh`, `--zcopy-path`, as rsync's `-e` and `--rsync-path`), and the
//! two sides tell each other, through the ssh channel, where to connect and the
//! one-time secret and certificate fingerprint of this session ([`Hello`]). The
//! data then goes over direct TCP with the session's TLS ([`crate::tls`]; kTLS
//! where the kernel has it), with `-j` streams, sendfile at the sender and splice
//! at the receiver: ssh's cipher and its 2 MiB channel window are not in the way.
//! Where no port is reachable, `--ssh-data` carries the same TLS session inside
//! the ssh channel instead ([`relay`]).
//!
//! Which operand is remote ([`Operand::parse`]): `HOST:PORT` with a port of digits
//! alone is a zcopy receiver to connect to; anything else with a colon before its
//! first slash is `[user@]host:PATH` over ssh (`host:./8000` names a directory
//! called 8000); `[v6]:PORT` and `[v6]:PATH` bracket an IPv6 host; a colon after a
//! slash (`./a:b`) is a local name. rsync's daemon form `host::module` is refused.

mod hello;
pub mod relay;
mod ssh;

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub use hello::Hello;
pub use ssh::{quote, split_rsh, Link};

/// What a failure of the way in was, so that the command picks its exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operand or `-e` command that cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The ssh program itself could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program of `-e`.
        program: String,
        /// Why (`No such file or directory`).
        source: std::io::Error,
    },
    /// ssh ended before the remote zcopy answered (host key, authentication,
    /// no route): its exit code (255) and the last line it said.
    #[error("{host}: ssh failed (exit {code}): {said}")]
    Ssh {
        /// The `[user@]host` given.
        host: String,
        /// ssh's exit code.
        code: i32,
        /// ssh's last line on stderr.
        said: String,
    },
    /// The remote shell did not find the program (exit 127).
    #[error(
        "{host}: {program}: command not found on the remote host (give its path with --zcopy-path)"
    )]
    NotFound {
        /// The `[user@]host` given.
        host: String,
        /// The remote program (`--zcopy-path`).
        program: String,
    },
    /// The remote zcopy ended with a failure of its own (it said why on stderr).
    #[error("{host}: the remote zcopy exited with {code}")]
    Exited {
        /// The `[user@]host` given.
        host: String,
        /// Its exit code.
        code: i32,
    },
    /// The remote side printed something that is not the line this side waits for.
    #[error("{host}: the remote side said {line:?}, not a {tag} line (is the remote zcopy another version, or does the remote shell print a greeting?)", tag = hello::TAG)]
    Garbled {
        /// The `[user@]host` given.
        host: String,
        /// What it said instead.
        line: String,
    },
    /// Reading or writing the ssh channel failed.
    #[error("{host}: the ssh channel: {source}")]
    Channel {
        /// The `[user@]host` given.
        host: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A `[user@]host:PATH` operand: where ssh goes and the path on that host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// `[user@]host`, as ssh takes it (an IPv6 host without its brackets).
    pub host: OsString,
    /// The path on the remote host; empty: the remote user's home.
    pub path: OsString,
}

impl Remote {
    /// The host as messages name it.
    pub fn shown(&self) -> String {
        self.host.to_string_lossy().into_owned()
    }
}

/// What one operand of `send` or `recv` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// `HOST:PORT`: a zcopy receiver to connect to directly.
    Addr(String),
    /// `[user@]host:PATH`: over ssh.
    Remote(Remote),
    /// A local path.
    Local,
}

impl Operand {
    /// Tells `HOST:PORT`, `[user@]host:PATH` and a local path apart (see the
    /// module doc for the rules).
    pub fn parse(arg: &OsStr) -> Result<Operand, Error> {
        let bytes = arg.as_bytes();
        let (host, tail) = if let Some(open) = bracketed(bytes) {
            open
        } else {
            let Some(colon) = bytes.iter().position(|&b| b == b':') else {
                return Ok(Operand::Local);
            };
            if bytes[..colon].contains(&b'/') {
                return Ok(Operand::Local);
            }
            (bytes[..colon].to_vec(), &bytes[colon + 1..])
        };
        if tail.starts_with(b":") {
            return Err(Error::Usage(format!(
                "{}: host::module is rsync's daemon syntax; zcopy goes over ssh (host:DIR) or to a receiver (HOST:PORT)",
                arg.to_string_lossy()
            )));
        }
        let name = host.rsplit(|&b| b == b'@').next().unwrap_or(&host);
        if name.is_empty() || host.starts_with(b"-") {
            return Err(Error::Usage(format!(
                "{}: no host before the colon",
                arg.to_string_lossy()
            )));
        }
        if !tail.is_empty() && tail.iter().all(u8::is_ascii_digit) {
            let text = arg.to_str().ok_or_else(|| {
                Error::Usage(format!("{}: not an address", arg.to_string_lossy()))
            })?;
            return Ok(Operand::Addr(text.to_string()));
        }
        Ok(Operand::Remote(Remote {
            host: OsString::from_vec(host),
            path: OsString::from_vec(tail.to_vec()),
        }))
    }
}

/// `[user@][v6]:tail`: the host without its brackets, and the tail.
fn bracketed(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let open = bytes.iter().position(|&b| b == b'[')?;
    let user = &bytes[..open];
    if !(user.is_empty() || user.ends_with(b"@")) || user.contains(&b'/') {
        return None;
    }
    let close = open + bytes[open..].iter().position(|&b| b == b']')?;
    let tail = bytes[close + 1..].strip_prefix(b":")?;
    // The brackets go; the user stays: `user@::1` is what ssh takes.
    let mut host = user.to_vec();
    host.extend_from_slice(&bytes[open + 1..close]);
    Some((host, tail))
}

/// The address a remote side listens on: the one the ssh connection arrived on
/// (the third word of `SSH_CONNECTION`), so the data comes the way ssh did; the
/// loopback address when it was not started by sshd.
pub fn listen_here() -> SocketAddr {
    let ip = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|v| {
            v.split_whitespace()
                .nth(2)
                .and_then(|w| w.parse::<IpAddr>().ok())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, 0)
}

#[cfg(test)]
mod tests {
    use super::{Operand, Remote};
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::OsStrExt;

    fn remote(host: &str, path: &[u8]) -> Operand {
        Operand::Remote(Remote {
            host: OsString::from(host),
            path: OsStr::from_bytes(path).to_os_string(),
        })
    }

    fn parse(text: &[u8]) -> Operand {
        Operand::parse(OsStr::from_bytes(text)).unwrap()
    }

    #[test]
    fn a_number_after_the_colon_is_a_port_and_anything_else_a_path() {
        assert_eq!(parse(b"host:8000"), Operand::Addr("host:8000".into()));
        assert_eq!(parse(b"127.0.0.1:0"), Operand::Addr("127.0.0.1:0".into()));
        assert_eq!(parse(b"[::1]:9"), Operand::Addr("[::1]:9".into()));
        assert_eq!(parse(b"host:./8000"), remote("host", b"./8000"));
        assert_eq!(parse(b"me@host:/tmp"), remote("me@host", b"/tmp"));
        assert_eq!(parse(b"host:"), remote("host", b""));
        assert_eq!(parse(b"me@[::1]:dir"), remote("me@::1", b"dir"));
        assert_eq!(parse(b"h:bad\xffname"), remote("h", b"bad\xffname"));
    }

    #[test]
    fn a_colon_after_a_slash_is_a_local_name_and_daemons_are_refused() {
        assert_eq!(parse(b"./a:b"), Operand::Local);
        assert_eq!(parse(b"plain"), Operand::Local);
        assert!(Operand::parse(OsStr::new("host::module")).is_err());
        assert!(Operand::parse(OsStr::new(":dir")).is_err());
        assert!(Operand::parse(OsStr::new("-oProxyCommand=x:dir")).is_err());
    }
}
