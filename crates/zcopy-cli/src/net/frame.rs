//! The framed protocol of `send` and `recv` (without `--raw`).
//!
//! ```text
//! sender → receiver   "ZCP1"  name_len:u16  name  size:u64  mode:u32   (big-endian)
//!                     size bytes of file content
//!                     XXH3-128 digest of the content (16 bytes, big-endian)
//! receiver → sender   "OK\n"  or  "ERR <reason>\n", then close
//! ```
//!
//! The receiver writes the content to a temporary name beside the target and
//! renames it only when the size arrived in full and the digest matches, so a
//! failed transfer never leaves a partial file under the real name. The digest is
//! computed beside the zero-copy path (the sender hashes the file while sendfile
//! runs; the receiver hashes the written file), not inside it.

use std::io::{self, Read};
use std::os::fd::AsFd;

use xxhash_rust::xxh3::Xxh3;

/// The first four bytes of every framed transfer.
pub const MAGIC: &[u8; 4] = b"ZCP1";

/// The longest file name accepted, as on Linux file systems.
pub const MAX_NAME: usize = 255;

/// What the sender announces before the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The file's base name.
    pub name: String,
    /// Content length in bytes.
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl Header {
    /// The header's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 2 + self.name.len() + 12);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.mode.to_be_bytes());
        out
    }

    /// Reads a header, exactly its bytes and no more, so the content that follows
    /// stays in the socket for the engine.
    pub fn read(stream: &mut impl Read) -> io::Result<Header> {
        let mut fixed = [0u8; 6];
        stream.read_exact(&mut fixed)?;
        if &fixed[..4] != MAGIC {
            return Err(invalid(
                "not a zcopy sender (bad magic; use --raw for plain bytes)",
            ));
        }
        let name_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
        if name_len == 0 || name_len > MAX_NAME {
            return Err(invalid("file name length out of range"));
        }
        let mut name = vec![0u8; name_len];
        stream.read_exact(&mut name)?;
        let name = String::from_utf8(name).map_err(|_| invalid("file name is not UTF-8"))?;
        check_name(&name)?;
        let mut rest = [0u8; 12];
        stream.read_exact(&mut rest)?;
        let size = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
        let mode = u32::from_be_bytes(rest[8..].try_into().expect("4 bytes"));
        Ok(Header { name, size, mode })
    }
}

/// Refuses names that would leave the target directory or cannot be file names.
pub fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(invalid(&format!(
            "refused file name {name:?}: it must be a plain name"
        )));
    }
    Ok(())
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// XXH3-128 of the first `len` bytes of a file, read with `pread` (never mapped, so
/// a file that shrinks meanwhile gives a short read, not a SIGBUS).
pub fn digest_file(file: impl AsFd, len: u64) -> io::Result<u128> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    while pos < len {
        let want = usize::try_from(len - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = match rustix::io::pread(&file, &mut buf[..want], pos) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was hashed",
                ))
            }
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hasher.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            name: "a.txt".into(),
            size: 5 << 32,
            mode: 0o644,
        };
        let bytes = h.encode();
        assert_eq!(Header::read(&mut &bytes[..]).unwrap(), h);
    }

    #[test]
    fn hostile_headers_are_refused() {
        for name in ["..", ".", "a/b", "/etc/passwd", "x\0y", ""] {
            let mut bytes = b"ZCP1".to_vec();
            bytes.extend_from_slice(&(name.len() as u16).to_be_bytes());
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(&[0; 12]);
            assert!(Header::read(&mut &bytes[..]).is_err(), "{name:?}");
        }
        assert!(Header::read(&mut &b"GET / HTTP/1.1\r\n"[..]).is_err());
        assert!(
            Header::read(&mut &b"ZCP1\x00\x05ab"[..]).is_err(),
            "truncated"
        );
    }
}
