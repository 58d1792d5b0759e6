//! A hand-written speaker of the framed protocol (version 2, as docs/protocol.md
//! documents it), independent of zcopy's own code: the tests use it to play a
//! hostile or broken sender or receiver.
#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{Read, Write};
use std::net::TcpStream;

use xxhash_rust::xxh3::xxh3_128;

pub const BLOCK: u32 = 4 << 20;

pub fn greeting(session: u64) -> Vec<u8> {
    let mut g = b"ZCPY".to_vec();
    g.push(2);
    g.extend_from_slice(&3u32.to_be_bytes());
    g.extend_from_slice(&session.to_be_bytes());
    g
}

pub fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// FILE for an entry: kind 0 file, 1 directory, 2 symlink.
pub fn entry(id: u32, kind: u8, path: &str, size: Option<u64>, target: &str) -> Vec<u8> {
    entry_with_mode(id, kind, path, size, target, 0o644)
}

/// FILE for an entry with these mode bits.
pub fn entry_with_mode(
    id: u32,
    kind: u8,
    path: &str,
    size: Option<u64>,
    target: &str,
    mode: u32,
) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.push(kind);
    b.extend_from_slice(&mode.to_be_bytes());
    b.extend_from_slice(&1_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&size.unwrap_or(u64::MAX).to_be_bytes());
    b.extend_from_slice(&BLOCK.to_be_bytes());
    b.push(0);
    for text in [path, target] {
        b.extend_from_slice(&(text.len() as u16).to_be_bytes());
        b.extend_from_slice(text.as_bytes());
    }
    msg(b'F', &b)
}

pub fn file(id: u32, path: &str, size: u64) -> Vec<u8> {
    entry(id, 0, path, Some(size), "")
}

/// DATA at `offset`, the content, then its digest (`digest` overrides it).
pub fn data(id: u32, offset: u64, content: &[u8], digest: Option<u128>) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&(content.len() as u32).to_be_bytes());
    let mut m = msg(b'D', &b);
    m.extend_from_slice(content);
    m.extend_from_slice(&digest.unwrap_or_else(|| xxh3_128(content)).to_be_bytes());
    m
}

/// PACKED: a block of `len` bytes at `offset` as `packed`, zstd's bytes (the
/// block's digest is the caller's to add).
pub fn packed(id: u32, offset: u64, len: u32, packed: &[u8]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&(packed.len() as u32).to_be_bytes());
    b.push(0);
    let mut m = msg(b'P', &b);
    m.extend_from_slice(packed);
    m
}

/// END with the digest of the block digests.
pub fn end(id: u32, size: u64, blocks: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for b in blocks {
        list.extend_from_slice(&xxh3_128(b).to_be_bytes());
    }
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(&xxh3_128(&list).to_be_bytes());
    msg(b'E', &b)
}

pub fn done() -> Vec<u8> {
    msg(b'Q', &[])
}

/// A whole one-file session (content under one block).
pub fn one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut s = greeting(0);
    s.extend(file(1, name, content.len() as u64));
    if !content.is_empty() {
        s.extend(data(1, 0, content, None));
    }
    let blocks: Vec<&[u8]> = if content.is_empty() {
        vec![]
    } else {
        vec![content]
    };
    s.extend(end(1, content.len() as u64, &blocks));
    s.extend(done());
    s
}

/// Reads the receiver's greeting (17 bytes), or `Err(reason)` if it refused.
pub fn read_greeting(c: &mut TcpStream) -> Result<[u8; 17], String> {
    let mut g = [0u8; 17];
    c.read_exact(&mut g[..1]).map_err(|e| e.to_string())?;
    if g[0] == b'X' {
        let (_, body) = read_rest(c, g[0]).map_err(|e| e.to_string())?;
        return Err(String::from_utf8_lossy(&body[4..]).into_owned());
    }
    c.read_exact(&mut g[1..]).map_err(|e| e.to_string())?;
    Ok(g)
}

/// The next message's kind and body.
pub fn read_msg(c: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut kind = [0u8; 1];
    c.read_exact(&mut kind)?;
    read_rest(c, kind[0])
}

fn read_rest(c: &mut impl Read, kind: u8) -> std::io::Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    c.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    c.read_exact(&mut body)?;
    Ok((kind, body))
}

/// Reads messages until BYE or ERR; returns ERR's reason, or `None` after BYE.
pub fn verdict(c: &mut TcpStream) -> Option<String> {
    loop {
        match read_msg(c) {
            Ok((b'B', _)) => return None,
            Ok((b'X', body)) => return Some(String::from_utf8_lossy(&body[4..]).into_owned()),
            Ok(_) => {}
            Err(e) => return Some(format!("no verdict: {e}")),
        }
    }
}

/// Writes everything, ignoring a receiver that stopped reading (it refused).
pub fn write_lossy(c: &mut TcpStream, bytes: &[u8]) {
    let _ = c.write_all(bytes);
}
