//! What the library's integration tests share: test data, files holding it, and
//! connected TCP sockets on loopback.
#![allow(dead_code)] // each test file uses its own part of this module

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};

/// Deterministic bytes that differ at every offset, so a misplaced chunk shows.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An unnamed temporary file holding `data`, its offset at the end.
pub fn file_with(data: &[u8]) -> File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(data).unwrap();
    f
}

/// Two ends of a TCP connection on 127.0.0.1.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}
