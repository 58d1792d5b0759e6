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

/// The protocol's digest of a whole file of `size` bytes ([`crate::frame::file_digest`]
/// of its blocks of `block` bytes): what `send -c` and its receiver compare.
pub fn file_digest_of(file: &File, size: u64, block: u32) -> io::Result<u128> {
    let mut buf = zcopy::engine::direct::AlignedBuf::new(256 << 10, 4096);
    let block = u64::from(block);
    let mut digests = Vec::with_capacity(size.div_ceil(block) as usize);
    let mut offset = 0;
    while offset < size {
        let len = block.min(size - offset);
        digests.push(hash_range(file, offset, len, &mut buf)?);
        offset += len;
    }
    Ok(crate::frame::file_digest(&digests))
}
