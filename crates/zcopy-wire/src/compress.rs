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
//! The level adapts to the link ([`Compress::Adaptive`]) by climbing the rate it
//! gets: every 8 MiB of input the sender looks at how fast that input went (bytes
//! given to the compressor per second of wall time, which counts the link, the
//! compressor, the reads and the receiver's answers alike) against the window
//! before: risen by more than 3%, the level moves one more step the same way;
//! fallen by more than 3%, one step back the other way; else it stays. On a slow
//! link a higher level sends fewer bytes for the same input and the level climbs;
//! once compressing takes longer than the link saves, the rate falls and it comes
//! back; on a fast link it goes down (to zstd's fast levels, -5 at the lowest). A window in which nothing shrank (random data, media, archives)
//! drops the level to 1, so trying costs little (zstd gives up on incompressible
//! input at about 1 GB/s) and random data goes as fast as without `-z`.
//!
//! Measured first, and dropped: comparing the time spent compressing with the
//! time sends waited for the link. A tree of small files is sent a window of
//! questions at a time, and the waits for the answers hide the link's pace: over
//! `scripts/bench-compress.sh`'s 100 Mbit/s link, counting only the sends' waits
//! took the level down to 1 (3.46× with -z), counting the answers' waits too took
//! it up to 12, where compressing became the bottleneck (1.25×).

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
const WINDOW: u64 = 8 << 20;

/// A window's rate has moved when it differs from the previous one's by more
/// than this share (less is noise: other work on the machine, the receiver's pauses).
const MOVED_PERCENT: f64 = 3.0;

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
    /// The way the level moves next: up (+1) or down (-1).
    step: i32,
    /// Whether the last window moved the level (so a fall is the move's fault).
    moved: bool,
    /// The previous window's rate, in input bytes per second.
    last_rate: Option<f64>,
    out: Vec<u8>,
    window: Window,
    counts: Counts,
}

/// What the current window of input measured.
#[derive(Default)]
struct Window {
    started: Option<Instant>,
    input: u64,
    saved: u64,
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
            step: 1,
            moved: false,
            last_rate: None,
            out: Vec::new(),
            window: Window::default(),
            counts: Counts::default(),
        }))
    }

    /// `plain` compressed, when that saves at least 3% of it; `None`: send it as it is.
    pub fn pack(&mut self, plain: &[u8]) -> Option<&[u8]> {
        let now = Instant::now();
        match self.window.started {
            Some(started) if self.window.input >= WINDOW => self.adapt(now - started),
            Some(_) => {}
            None => self.window.started = Some(now),
        }
        let keep = plain.len() * KEEP_PERCENT / 100;
        if self.out.len() < keep {
            self.out.resize(keep, 0);
        }
        // An output that does not fit `keep` bytes fails (dstSize_tooSmall): the
        // block did not shrink enough. Any other failure sends the bytes as they are too.
        let packed = self.zstd.compress_to_buffer(plain, &mut self.out[..keep]);
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

    /// The level the next block is compressed at.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// What this compressor did so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Ends a window that took `took`: one level on in the same direction if its
    /// rate rose, the other way if it fell, none if it held; level 1 at most if
    /// nothing shrank.
    fn adapt(&mut self, took: Duration) {
        let w = std::mem::replace(
            &mut self.window,
            Window {
                started: Some(Instant::now()),
                ..Window::default()
            },
        );
        if !self.adaptive {
            return;
        }
        let rate = w.input as f64 / took.as_secs_f64().max(1e-6);
        let level = if w.saved * 100 < w.input * (100 - KEEP_PERCENT as u64) {
            // Nothing to gain here: trying costs least at level 1, and the climb
            // starts afresh when the data changes.
            self.last_rate = None;
            self.step = 1;
            self.level.min(1)
        } else {
            let moved = |a: f64, b: f64| a * 100.0 > b * (100.0 + MOVED_PERCENT);
            let go = match self.last_rate {
                // Worse after a move: undo it and go on that way. Worse without
                // one (the link or the data changed): try the way it points.
                Some(last) if moved(last, rate) => {
                    if self.moved {
                        self.step = -self.step;
                    }
                    true
                }
                Some(last) => moved(rate, last),
                None => true,
            };
            self.last_rate = Some(rate);
            let next = self.level + self.step;
            if !(LOWEST..=HIGHEST).contains(&next) {
                // At an end: the next move, if any, is back.
                self.step = -self.step;
                self.level
            } else if go {
                next
            } else {
                self.level
            }
        };
        self.moved = level != self.level;
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

    /// Windows of compressible input that took what `rate(level)` says.
    fn climb(p: &mut Packer, windows: usize, rate: impl Fn(i32) -> f64) -> Vec<i32> {
        (0..windows)
            .map(|_| {
                p.window.input = WINDOW;
                p.window.saved = WINDOW / 2;
                p.adapt(Duration::from_secs_f64(WINDOW as f64 / rate(p.level)));
                p.level()
            })
            .collect()
    }

    #[test]
    fn the_level_climbs_to_the_best_rate_and_stays_there() {
        // A link where level 7 is best: below it the link limits, above it the compressor.
        let mut p = packer(Compress::Adaptive);
        let levels = climb(&mut p, 20, |level| {
            1e8 - 1e6 * f64::from((level - 7).pow(2))
        });
        assert!(levels[..4] == [4, 5, 6, 7], "{levels:?}");
        assert!(levels[4..].iter().all(|&l| l == 7), "{levels:?}");
        // A fast link, where compressing is the bottleneck (each level 20% slower):
        // down to the fastest level.
        let mut p = packer(Compress::Adaptive);
        let levels = climb(&mut p, 20, |level| 5e8 / 1.25f64.powi(level));
        assert!(levels[1..9] == [3, 2, 1, 0, -1, -2, -3, -4], "{levels:?}");
        assert!(levels[9..].iter().all(|&l| l == LOWEST), "{levels:?}");
        // A link slow enough that every level up pays: up to the highest.
        let mut p = packer(Compress::Adaptive);
        let levels = climb(&mut p, 20, |level| 1e6 * 1.05f64.powi(level));
        assert!(levels[9..].iter().all(|&l| l == HIGHEST), "{levels:?}");
        // The link slows down below the compressor: back up.
        let levels = climb(&mut p, 1, |_| 1e5);
        assert_eq!(levels, [HIGHEST - 1]);
        assert_eq!(p.counts().levels, None, "no block was packed");
    }

    #[test]
    fn nothing_shrinking_means_level_1_at_most_and_a_fixed_level_stays() {
        let mut p = packer(Compress::Adaptive);
        climb(&mut p, 6, |level| 1e6 * f64::from(level + 10));
        assert!(p.level() > START);
        let noise = random(WINDOW as usize);
        for _ in 0..2 {
            assert!(p.pack(&noise).is_none());
        }
        // Held back until the window fills: the second one decided.
        p.window.started = Some(Instant::now() - Duration::from_secs(1));
        p.pack(&noise);
        assert_eq!(p.level(), 1);
        let mut p = packer(Compress::Level(5));
        climb(&mut p, 6, |level| 1e6 * f64::from(level + 10));
        assert_eq!(p.level(), 5);
    }
}
