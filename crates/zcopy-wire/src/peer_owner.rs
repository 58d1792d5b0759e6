//! Who owns the other end of a loopback connection.
//!
//! Every local account reaches 127.0.0.1, so a receiver that writes what a
//! loopback peer sends, without a secret, must know whose socket connected: only
//! its own user and root are let in. The kernel lists every TCP socket of this
//! network namespace in `/proc/net/tcp` and `/proc/net/tcp6`, each with the uid
//! that made it; the peer's socket is the row whose local address is the peer's
//! and whose remote address is ours. A row that cannot be found (the peer closed
//! at once, or lives in another namespace) is a refusal, never a guess.
//!
//! # References
//! proc(5): `/proc/net/tcp`

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Refuses `peer`, connected to our `local` address over loopback, unless its
/// socket belongs to this process's effective user or to root. Peers off
/// loopback pass: the secret or `--insecure` decides for them. The error says
/// why, without the address (callers name it).
pub fn admit(local: SocketAddr, peer: SocketAddr) -> io::Result<()> {
    if !plain(peer.ip()).is_loopback() {
        return Ok(());
    }
    let ours = rustix::process::geteuid().as_raw();
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    match owner(local, peer)? {
        Owner::Uid(uid) if uid == ours || uid == 0 => Ok(()),
        Owner::Uid(uid) => refuse(format!("a connection from uid {uid}, another local user; refused, nothing written (a receiver with a secret admits other users that prove it)")),
        Owner::Closed => refuse("the peer closed its socket before its owner could be read (the kernel then shows uid 0 for it); refused, nothing written (a sender that waits for the receiver's close, as `nc -N` and `zcopy send --raw` do, is let in; `--insecure` admits any local user)".into()),
        Owner::Missing => refuse("the owner of this loopback connection is not in /proc/net/tcp; refused, nothing written".into()),
    }
}

/// The uid that owns the socket of `peer`, connected to our `local` address
/// over loopback; `None` off loopback or where the kernel does not say.
pub fn uid(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    if !plain(peer.ip()).is_loopback() {
        return None;
    }
    match owner(local, peer) {
        Ok(Owner::Uid(uid)) => Some(uid),
        _ => None,
    }
}

/// What the kernel's TCP tables say about the peer's socket.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    Uid(u32),
    /// Closed by its process (orphaned, inode 0): the kernel no longer knows
    /// whose it was and shows uid 0, which must not pass for root.
    Closed,
    Missing,
}

/// The owner of the socket at `peer` connected to `local`, from the kernel's TCP
/// tables.
fn owner(local: SocketAddr, peer: SocketAddr) -> io::Result<Owner> {
    let (local, peer) = (canonical(local), canonical(peer));
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // A kernel without IPv6 has no tcp6 table.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{table}: {e}"))),
        };
        let found = text
            .lines()
            .skip(1)
            .filter_map(row)
            .find(|row| row.local == peer && row.remote == local);
        if let Some(row) = found {
            return Ok(if row.inode == 0 {
                Owner::Closed
            } else {
                Owner::Uid(row.uid)
            });
        }
    }
    Ok(Owner::Missing)
}

/// One row of a TCP table.
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    uid: u32,
    inode: u64,
}

fn row(line: &str) -> Option<Row> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(Row {
        local: address(fields.get(1)?)?,
        remote: address(fields.get(2)?)?,
        uid: fields.get(7)?.parse().ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the kernel prints
/// each 32-bit word of the address as a native-endian number.
fn address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// An IPv4 peer of a dual-stack socket appears as `::ffff:a.b.c.d`.
fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(plain(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reads_both_address_forms() {
        let v4 = address("0100007F:1F90").unwrap();
        assert_eq!(v4, "127.0.0.1:8080".parse().unwrap());
        let v6 = address("00000000000000000000000001000000:0050").unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
        let mapped = address("0000000000000000FFFF00000100007F:0016").unwrap();
        assert_eq!(mapped, "127.0.0.1:22".parse().unwrap());
        assert_eq!(address("zz:1"), None);
    }

    #[test]
    fn finds_our_own_socket_and_admits_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let local = server.local_addr().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(owner(local, peer).unwrap(), Owner::Uid(me));
        admit(local, peer).unwrap();
        // A port nobody connected from has no owner: refused, with the reason.
        let nobody = SocketAddr::new(peer.ip(), 1);
        let e = admit(local, nobody).unwrap_err();
        assert!(e.to_string().contains("not in /proc/net/tcp"), "{e}");
        // Closed by its owner, the peer's socket shows uid 0: not taken for root.
        drop(client);
        assert_eq!(owner(local, peer).unwrap(), Owner::Closed);
        let e = admit(local, peer).unwrap_err();
        assert!(e.to_string().contains("closed its socket"), "{e}");
    }
}
