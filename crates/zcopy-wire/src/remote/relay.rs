//! `--ssh-data`: the session's TLS connection carried inside the ssh channel.
//! The transfer code wants a socket, so each side makes a connected pair of
//! loopback sockets ([`socket_pair`]): the session uses one end, and two threads
//! pump the other end to and from the ssh pipes ([`pump`]). The pumps read and
//! write through a buffer, not splice: a splice from a socket into a pipe holds
//! the pipe's lock while it waits for the socket, so ssh could not read what is
//! already in the pipe (the line before the data) until more arrived, which
//! waits on that very line.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::JoinHandle;

/// Two connected loopback sockets of this process. The listener lives only
/// until the connection it waits for arrives, and a connection from anyone else
/// (another process racing for the port) is dropped.
pub fn socket_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let ours = TcpStream::connect(listener.local_addr()?)?;
    let mine = ours.local_addr()?;
    loop {
        let (theirs, from) = listener.accept()?;
        if from == mine {
            ours.set_nodelay(true)?;
            theirs.set_nodelay(true)?;
            return Ok((ours, theirs));
        }
    }
}

/// Pumps `sock` to `out` and `input` to `sock` until each ends; the pump into the
/// socket then shuts its writing down, the one out of it closes `out`. The
/// handle ends when both are done.
pub fn pump(sock: TcpStream, input: File, out: File) -> io::Result<JoinHandle<()>> {
    let from_sock = sock.try_clone()?;
    let incoming = std::thread::spawn(move || {
        let _ = copy(input, &sock);
        let _ = sock.shutdown(Shutdown::Write);
    });
    Ok(std::thread::spawn(move || {
        let _ = copy(&from_sock, out);
        let _ = incoming.join();
    }))
}

/// `from` to `to` until `from` ends, through a buffer.
fn copy(mut from: impl Read, mut to: impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return to.flush(),
            Ok(n) => to.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads one line from `input` a byte at a time, so that nothing after it is
/// taken from the pipe (what follows is the relay's); without its newline.
/// `None` at the end of input.
pub fn read_line(mut input: impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Ok(Some(line)),
            Ok(_) if byte[0] == b'\n' => return Ok(Some(line)),
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    #[test]
    fn a_pair_carries_bytes_both_ways_and_a_line_leaves_the_rest() {
        let (mut a, mut b) = super::socket_pair().unwrap();
        a.write_all(b"one\ntwo").unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(super::read_line(&mut b).unwrap().unwrap(), b"one");
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"two");
        assert_eq!(super::read_line(&mut b).unwrap(), None);
    }
}
