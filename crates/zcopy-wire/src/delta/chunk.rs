//! A file cut into content-defined chunks (FastCDC 2020), each with its XXH3-128.

use std::io::{self, Read};

use fastcdc::v2020::FastCDC;
use zcopy::xxh3::Xxh3;

/// No chunk is shorter, but the last of a file.
pub const MIN: u32 = 16 << 10;
/// The length chunks average on data without structure.
pub const AVG: u32 = 64 << 10;
/// No chunk is longer: a run of bytes without a cut point (zeros) is cut here.
pub const MAX: u32 = 256 << 10;

/// The bytes read at a time; chunks are cut only where the cut cannot depend on
/// bytes past the window (at least [`MAX`] bytes left, or the end of the file).
const WINDOW: usize = 8 << 20;

/// One chunk: where it starts, its length and the XXH3-128 of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub len: u32,
    pub digest: u128,
}

/// Cuts `source` into chunks, in order, and gives each to `each` with its bytes;
/// returns the length of the source. The cuts depend on the content only, so an
/// insertion moves the boundaries near it and no others.
pub fn chunks(
    mut source: impl Read,
    mut each: impl FnMut(Chunk, &[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; WINDOW];
    let (mut filled, mut base, mut eof) = (0usize, 0u64, false);
    loop {
        while !eof && filled < buf.len() {
            match source.read(&mut buf[filled..]) {
                Ok(0) => eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut used = 0;
        if filled > 0 {
            let cuts = FastCDC::new(&buf[..filled], MIN as usize, AVG as usize, MAX as usize);
            for cut in cuts {
                if !eof && cut.offset + MAX as usize > filled {
                    break;
                }
                let bytes = &buf[cut.offset..cut.offset + cut.length];
                let chunk = Chunk {
                    offset: base + cut.offset as u64,
                    len: cut.length as u32,
                    digest: digest(bytes),
                };
                each(chunk, bytes)?;
                used = cut.offset + cut.length;
            }
        }
        if eof {
            return Ok(base + used as u64);
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
        base += used as u64;
    }
}

/// The XXH3-128 of a chunk's bytes.
pub fn digest(bytes: &[u8]) -> u128 {
    let mut h = Xxh3::new();
    h.update(bytes);
    h.digest128()
}
