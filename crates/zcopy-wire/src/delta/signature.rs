//! The receiver's description of its old copy: the chunks of the file, in order.

use std::io;

use super::chunk::{chunks, Chunk, MAX};

/// The chunks of a file, in order, with no gaps: chunk `i + 1` starts where
/// chunk `i` ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signature {
    /// The chunks, from offset 0 to the end of the file.
    pub chunks: Vec<Chunk>,
}

/// Bytes one chunk takes in [`Signature::encode`]: its length and its digest.
pub const ENCODED_CHUNK: usize = 4 + 16;

impl Signature {
    /// Reads `file` (or anything else) to its end and describes it.
    pub fn of(source: impl io::Read) -> io::Result<Signature> {
        let mut sig = Signature::default();
        chunks(source, |c, _| {
            sig.chunks.push(c);
            Ok(())
        })?;
        Ok(sig)
    }

    /// The length of the file described.
    pub fn size(&self) -> u64 {
        self.chunks
            .last()
            .map_or(0, |c| c.offset + u64::from(c.len))
    }

    /// Appends chunks `range` as `len:u32 digest:u128` each, big-endian (offsets
    /// follow from the lengths).
    pub fn encode(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        for c in &self.chunks[range] {
            out.extend_from_slice(&c.len.to_be_bytes());
            out.extend_from_slice(&c.digest.to_be_bytes());
        }
    }

    /// Appends the chunks encoded in `bytes` after the ones already held; never
    /// panics on hostile bytes.
    pub fn decode_more(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !bytes.len().is_multiple_of(ENCODED_CHUNK) {
            return Err(invalid(
                "a signature's length is not a whole number of chunks",
            ));
        }
        for entry in bytes.chunks_exact(ENCODED_CHUNK) {
            let len = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes"));
            if len == 0 || len > MAX {
                return Err(invalid(&format!("a signature's chunk of {len} bytes")));
            }
            let offset = self.size();
            self.chunks.push(Chunk {
                offset,
                len,
                digest: u128::from_be_bytes(entry[4..].try_into().expect("16 bytes")),
            });
        }
        Ok(())
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}
