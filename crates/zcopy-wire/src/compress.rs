//! `send -z`: blocks compressed with zstd, one frame per block, each sent
//! compressed only when that saves at least 3% of it ([`Packer`]), and
//! decompressed by the receiver before the block's digest is checked
//! ([`Unpacker`]): the digests are of the file's bytes, never of what the wire
//! carried, so a corrupted compressed block fails as any corrupted block does.
//!
//! A block is the unit everywhere: a 4 MiB block of a large file (on any of the
//! `-j N` connections), a small file's one block, a delta's literal chunk. Each
//! is compressed on its own, so blocks stay independent (resumable, on any
//! connection, in any order) and the receiver needs no state between them.
//!
//! The level adapts to the link ([`Compress::Adaptive`]): the sender measures,
//! over each few MiB, the time it spent compressing and the time its sends
//! waited for the link. While sends wait (the link is the bottleneck), a higher
//! level costs nothing that would not be spent waiting, and sends fewer bytes; when
//! they do not (compression is the bottleneck, as on a fast link), a lower level
//! keeps up. A window in which nothing shrank (random data, media, archives)
//! drops the level to 1, so trying costs little (zstd gives up on incompressible
//! input at about 1 GB/s) and random data goes as fast as without `-z`.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// How a sender compresses its blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compress {
    /// Not at all (the default: on loopback and fast links compression only
    /// costs time).
    #[default]
    Off,
    /// zstd at a level that follows the link: from [`START`], between
    /// [`LOWEST`] and [`HIGHEST`].
    Adaptive,
    /// zstd at this level, whatever the link.
    Level(i32),
}

/// The level an adaptive sender starts at (zstd's own default).
pub const START: i32 = 3;
/// The lowest level an adaptive sender goes to (zstd's fast levels are negative).
pub const LOWEST: i32 = -5;
/// The highest: above it zstd's strategies get several times slower for a few
/// percent less.
pub const HIGHEST: i32 = 12;

/// A block goes compressed only if it shrinks to this many hundredths at most.
const KEEP_PERCENT: usize = 97;

/// The input bytes between two decisions of an adaptive level.
const WINDOW: u64 = 4 << 20;

/// The largest block a receiver decompresses (the largest block size accepted).
const MAX_UNPACKED: u32 = *crate::frame::BLOCK_RANGE.end();

/// What compression did over a transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes offered to the compressor.
    pub tried: u64,
    /// Of those, the bytes that went compressed (blocks that shrank by 3% or more).
    pub packed: u64,
    /// What those took on the wire.
    pub wire: u64,
    /// The lowest and the highest level used.
    pub levels: Option<(i32, i32)>,
}

impl Counts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: Counts) {
        self.tried += other.tried;
        self.packed += other.packed;
        self.wire += other.wire;
        self.levels = match (self.levels, other.levels) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        };
    }

    /// The bytes compression kept off the wire.
    pub fn saved(&self) -> u64 {
        self.packed - self.wire
    }
}

/// One connection's compressor: its zstd context, its level and what it measured.
pub struct Packer {
    zstd: zstd::bulk::Compressor<'static>,
    level: i32,
    adaptive: bool,
    out: Vec<u8>,
    window: Window,
    counts: Counts,
}

/// What the current window of input measured.
#[derive(Default)]
struct Window {
    input: u64,
    saved: u64,
    packing: Duration,
    waiting: Duration,
}

impl Packer {
    /// A compressor as `how` says; `None` for [`Compress::Off`].
    pub fn new(how: Compress) -> io::Result<Option<Packer>> {
        let (level, adaptive) = match how {
            Compress::Off => return Ok(None),
            Compress::Adaptive => (START, true),
            Compress::Level(level) => (level, false),
        };
        Ok(Some(Packer {
            zstd: zstd::bulk::Compressor::new(level)?,
            level,
            adaptive,
            out: Vec::new(),
            window: Window::default(),
            counts: Counts::default(),
        }))
    }

    /// `plain` compressed, when that saves at least 3% of it; `None`: send it as it is.
    pub fn pack(&mut self, plain: &[u8]) -> Option<&[u8]> {
        if self.window.input >= WINDOW {
            self.adapt();
        }
        let keep = plain.len() * KEEP_PERCENT / 100;
        if self.out.len() < keep {
            self.out.resize(keep, 0);
        }
        let started = Instant::now();
        // An output that does not fit `keep` bytes fails (dstSize_tooSmall): the
        // block did not shrink enough. Any other failure sends the bytes as they are too.
        let packed = self.zstd.compress_to_buffer(plain, &mut self.out[..keep]);
        self.window.packing += started.elapsed();
        let len = plain.len() as u64;
        self.window.input += len;
        self.counts.tried += len;
        let (lo, hi) = self.counts.levels.unwrap_or((self.level, self.level));
        self.counts.levels = Some((lo.min(self.level), hi.max(self.level)));
        match packed {
            Ok(n) if n > 0 => {
                self.window.saved += len - n as u64;
                self.counts.packed += len;
                self.counts.wire += n as u64;
                Some(&self.out[..n])
            }
            _ => None,
        }
    }

    /// Counts `took`, time a send spent waiting for the link, towards the level.
    pub fn waited(&mut self, took: Duration) {
        self.window.waiting += took;
    }

    /// The level the next block is compressed at.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// What this compressor did so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Ends a window: a higher level while sends waited for the link more than
    /// half the time spent compressing, a lower one while they hardly waited.
    fn adapt(&mut self) {
        let w = std::mem::take(&mut self.window);
        if !self.adaptive {
            return;
        }
        let level = if w.saved * 100 < w.input * (100 - KEEP_PERCENT as u64) {
            // Nothing to gain here: trying costs least at level 1.
            self.level.min(1)
        } else if w.waiting > w.packing / 2 {
            (self.level + 1).min(HIGHEST)
        } else if w.waiting < w.packing / 8 {
            (self.level - 1).max(LOWEST)
        } else {
            self.level
        };
        if level != self.level && self.zstd.set_compression_level(level).is_ok() {
            self.level = level;
        }
    }
}

/// One connection's decompressor, with the buffers a block passes through.
pub struct Unpacker {
    zstd: zstd::bulk::Decompressor<'static>,
    packed: Vec<u8>,
    out: Vec<u8>,
}

impl Unpacker {
    /// A decompressor (zstd's context, allocated once per connection).
    pub fn new() -> io::Result<Unpacker> {
        Ok(Unpacker {
            zstd: zstd::bulk::Decompressor::new()?,
            packed: Vec::new(),
            out: Vec::new(),
        })
    }

    /// Reads `packed` bytes from `from` and decompresses them into exactly `len`
    /// bytes; anything else (bytes that are not zstd's, a block of another
    /// length, a "compressed" block no smaller than its bytes) is an error of
    /// kind `InvalidData` that says which.
    pub fn unpack(&mut self, from: &mut impl Read, packed: u32, len: u32) -> io::Result<&[u8]> {
        if len > MAX_UNPACKED || packed >= len {
            return Err(invalid(format!(
                "a compressed block of {packed} bytes for {len}: compressed blocks are smaller than their bytes, and at most {MAX_UNPACKED} bytes"
            )));
        }
        let (packed, len) = (packed as usize, len as usize);
        if self.packed.len() < packed {
            self.packed.resize(packed, 0);
        }
        from.read_exact(&mut self.packed[..packed])?;
        if self.out.len() < len {
            self.out.resize(len, 0);
        }
        match self
            .zstd
            .decompress_to_buffer(&self.packed[..packed], &mut self.out[..len])
        {
            Ok(n) if n == len => Ok(&self.out[..len]),
            Ok(n) => Err(invalid(format!(
                "the compressed block decompresses to {n} bytes, not {len}"
            ))),
            Err(e) => Err(invalid(format!(
                "the compressed block does not decompress ({e})"
            ))),
        }
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Vec<u8> {
        let words = [
            "fn ", "let ", "mut ", "self", ".len()", " = ", ";\n", "    ",
        ];
        let mut out = Vec::with_capacity(len);
        let mut x = 7u32;
        while out.len() < len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    fn random(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn packer(how: Compress) -> Packer {
        Packer::new(how).unwrap().unwrap()
    }

    #[test]
    fn text_round_trips_smaller() {
        let plain = text(1 << 20);
        let mut p = packer(Compress::Adaptive);
        let packed = p.pack(&plain).unwrap().to_vec();
        assert!(packed.len() * 3 < plain.len(), "{} bytes", packed.len());
        let mut u = Unpacker::new().unwrap();
        let got = u
            .unpack(&mut &packed[..], packed.len() as u32, plain.len() as u32)
            .unwrap();
        assert!(got == plain);
        let c = p.counts();
        assert_eq!((c.tried, c.packed), (1 << 20, 1 << 20));
        assert_eq!(c.wire, packed.len() as u64);
        assert_eq!(c.levels, Some((START, START)));
    }

    #[test]
    fn an_incompressible_block_goes_as_it_is() {
        let mut p = packer(Compress::Level(19));
        assert!(p.pack(&random(256 << 10)).is_none());
        // Nearly random: shrinks, but by less than 3%.
        let mut almost = random(256 << 10);
        for b in almost.iter_mut().step_by(40) {
            *b = 0;
        }
        assert!(p.pack(&almost).is_none());
        assert!(p.pack(&[]).is_none());
        let c = p.counts();
        assert_eq!((c.tried, c.packed, c.wire), (512 << 10, 0, 0));
    }

    #[test]
    fn corrupted_or_mislabelled_blocks_are_errors_that_say_so() {
        let plain = text(64 << 10);
        let packed = packer(Compress::Level(3)).pack(&plain).unwrap().to_vec();
        let mut u = Unpacker::new().unwrap();
        let err = |r: io::Result<&[u8]>| {
            let e = r.map(<[u8]>::to_vec).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            e.to_string()
        };
        let (n, len) = (packed.len() as u32, plain.len() as u32);
        let e = err(u.unpack(&mut &b"not zstd at all"[..], 15, 100));
        assert!(e.contains("does not decompress"), "{e}");
        let e = err(u.unpack(&mut &packed[..], n, len - 1));
        assert!(e.contains("does not decompress"), "{e}");
        let e = err(u.unpack(&mut &packed[..], n, len + 1));
        assert!(e.contains(&format!("decompresses to {len} bytes")), "{e}");
        let e = err(u.unpack(&mut &packed[..n as usize / 2], n / 2, len));
        assert!(e.contains("does not decompress"), "{e}");
        let e = err(u.unpack(&mut &plain[..], len, len));
        assert!(e.contains("smaller than their bytes"), "{e}");
        // Short of the bytes announced: the stream's own error.
        let short = u.unpack(&mut &packed[..10], n, len).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        // After all that, the same decompressor still works.
        assert!(u.unpack(&mut &packed[..], n, len).unwrap() == plain);
    }

    #[test]
    fn the_level_follows_the_link() {
        let plain = text(WINDOW as usize);
        let mut p = packer(Compress::Adaptive);
        // Sends that wait long for the link: up, to the highest and no further.
        for _ in 0..20 {
            p.pack(&plain);
            p.waited(Duration::from_secs(10));
        }
        assert_eq!(p.level(), HIGHEST);
        // Sends that never wait: compression is the bottleneck; down.
        for _ in 0..40 {
            p.pack(&plain);
        }
        assert_eq!(p.level(), LOWEST);
        // Nothing shrinks: level 1 at most, however long sends wait.
        let noise = random(WINDOW as usize);
        let mut p = packer(Compress::Adaptive);
        for _ in 0..3 {
            p.pack(&noise);
            p.waited(Duration::from_secs(10));
        }
        assert_eq!(p.level(), 1);
        // A fixed level stays.
        let mut p = packer(Compress::Level(5));
        for _ in 0..3 {
            p.pack(&plain);
        }
        assert_eq!(p.level(), 5);
        assert_eq!(p.counts().levels, Some((5, 5)));
    }
}
