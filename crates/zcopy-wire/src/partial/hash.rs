//! Hashing what a partial file already holds.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use zcopy::xxh3::Xxh3;

/// XXH3-128 of `len` bytes of `file` at `offset`, read with `pread` into `buf`.
pub fn hash_range(
    file: &File,
    offset: u64,
    len: u64,
    buf: &mut zcopy::engine::direct::AlignedBuf,
) -> io::Result<u128> {
    let mut h = Xxh3::new();
    let mut pos = 0;
    let cap = buf.as_mut_slice().len() as u64;
    while pos < len {
        let want = (len - pos).min(cap) as usize;
        let n = file.read_at(&mut buf.as_mut_slice()[..want], offset + pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was hashed",
            ));
        }
        h.update(buf.filled(n));
        pos += n as u64;
    }
    Ok(h.digest128())
}
