//! The digests of the protocol: a file's, and a block of zeros'.

use xxhash_rust::xxh3::xxh3_128;
use zcopy::xxh3::Xxh3;

/// The digest of a whole file: XXH3-128 of its blocks' XXH3-128s (16 bytes each,
/// big-endian) in block order, so blocks can be hashed in any order, on any
/// connection, and a resumed file needs no re-read of the blocks it kept.
pub fn file_digest(blocks: &[u128]) -> u128 {
    let mut h = Xxh3::new();
    for d in blocks {
        h.update(&d.to_be_bytes());
    }
    h.digest128()
}

/// The XXH3-128 of `len` zero bytes (a HOLE block), computed once per length.
pub fn zeros_digest(len: u32) -> u128 {
    use std::sync::Mutex;
    static KNOWN: Mutex<Vec<(u32, u128)>> = Mutex::new(Vec::new());
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&(_, d)) = known.iter().find(|(l, _)| *l == len) {
        return d;
    }
    let d = xxh3_128(&vec![0u8; len as usize]);
    known.push((len, d));
    d
}
