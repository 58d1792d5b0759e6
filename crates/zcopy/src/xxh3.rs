//! Streaming XXH3 (64 and 128 bits) whose long-input loop is compiled once per
//! SIMD level and picked at run time: AVX-512F where the CPU has full-width
//! 512-bit units, else AVX2, else the SSE2 every x86-64 has.
//!
//! xxhash-rust chooses its SIMD code with `cfg(target_feature)` when it is
//! compiled, so a binary built for baseline x86-64 runs its SSE2 loop everywhere
//! (23–28 GB/s on in-cache data on the EPYC VM, against 50 for the same crate
//! built with `target-cpu=native`); wrapping its `update` in a
//! `#[target_feature]` function changes nothing, as its code is compiled already.
//! Plain loops over the eight lanes, inlined into per-level functions, did not do
//! either: the compiler vectorised across stripes, with gathers. So the part of
//! XXH3 where the time goes, accumulating stripes and scrambling, is written here
//! with SSE2, AVX2 and AVX-512F intrinsics (stable since Rust 1.89, hence the
//! workspace's rust-version) behind one generic loop; [`Level::detect`] says which
//! one runs where. Short inputs (up to 240
//! bytes), which take other paths in XXH3, and the final mix are xxhash-rust's and
//! plain code. Every level gives the same digests (tested against xxhash-rust, and
//! against each other on random lengths, on each level this CPU has).

use xxhash_rust::const_xxh3::const_custom_default_secret;

const PRIME32_1: u64 = 0x9E37_79B1;
const PRIME32_2: u64 = 0x85EB_CA77;
const PRIME32_3: u64 = 0xC2B2_AE3D;
const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;

const SECRET: [u8; 192] = const_custom_default_secret(0);
const STRIPE: usize = 64;
/// Stripes between two scrambles: one per 8 bytes of secret past the first stripe.
const STRIPES_PER_BLOCK: usize = (SECRET.len() - STRIPE) / 8;
/// The key of each stripe of a block, copied out of the secret to 64-byte
/// boundaries: read in place, seven of eight keys straddle two cache lines, and
/// AVX-512's whole-stripe loads of them are split in two.
static BLOCK_KEYS: BlockKeys = BlockKeys(block_keys());

#[repr(align(64))]
struct BlockKeys([[u8; STRIPE]; STRIPES_PER_BLOCK]);

const fn block_keys() -> [[u8; STRIPE]; STRIPES_PER_BLOCK] {
    let mut keys = [[0; STRIPE]; STRIPES_PER_BLOCK];
    let mut i = 0;
    while i < STRIPES_PER_BLOCK * STRIPE {
        keys[i / STRIPE][i % STRIPE] = SECRET[(i / STRIPE) * 8 + i % STRIPE];
        i += 1;
    }
    keys
}

/// Inputs up to this long take XXH3's short paths.
const MID_SIZE_MAX: u64 = 240;
/// Bytes kept back before they are accumulated (more than `MID_SIZE_MAX`).
const BUFFER: usize = 256;

/// The SIMD level the long-input loop runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Level {
    /// Whatever the binary was built for (SSE2 on x86-64).
    Baseline,
    /// AVX2's 256-bit lanes.
    Avx2,
    /// AVX-512F's one 512-bit register per stripe.
    Avx512,
}

impl Level {
    /// The best level this CPU has: AVX-512F, except where the CPU runs each
    /// 512-bit operation as two 256-bit halves (AMD before Zen 5): there AVX2 is
    /// faster (on the EPYC VM, Zen 4, AVX-512 hashed in-cache input at 0.88–0.94×
    /// AVX2's rate).
    pub fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") && !x86::halves_512_bit_ops() {
            return Level::Avx512;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Level::Avx2;
        }
        Level::Baseline
    }

    /// Every level this CPU can run, for tests.
    #[cfg(test)]
    fn available() -> Vec<Level> {
        match Level::detect() {
            Level::Baseline => vec![Level::Baseline],
            Level::Avx2 => vec![Level::Baseline, Level::Avx2],
            Level::Avx512 => vec![Level::Baseline, Level::Avx2, Level::Avx512],
        }
    }
}

/// A streaming XXH3 with the default secret and seed 0.
#[derive(Clone)]
pub struct Xxh3 {
    acc: [u64; 8],
    /// Stripes accumulated since the last scramble.
    stripes: usize,
    buf: [u8; BUFFER],
    buf_len: usize,
    /// The last stripe accumulated, for a final stripe that reaches back into it.
    last: [u8; STRIPE],
    total: u64,
    level: Level,
}

impl Default for Xxh3 {
    fn default() -> Xxh3 {
        Xxh3::new()
    }
}

impl Xxh3 {
    /// A hasher at the best level this CPU has ([`Level::detect`]).
    pub fn new() -> Xxh3 {
        Xxh3::with_level(Level::detect())
    }

    /// A hasher whose long-input loop runs at `level` (the tests compare levels).
    pub fn with_level(level: Level) -> Xxh3 {
        Xxh3 {
            acc: [
                PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5,
                PRIME32_1,
            ],
            stripes: 0,
            buf: [0; BUFFER],
            buf_len: 0,
            last: [0; STRIPE],
            total: 0,
            level,
        }
    }

    /// Feeds more input.
    pub fn update(&mut self, mut input: &[u8]) {
        self.total += input.len() as u64;
        if self.buf_len + input.len() <= BUFFER {
            self.buf[self.buf_len..self.buf_len + input.len()].copy_from_slice(input);
            self.buf_len += input.len();
            return;
        }
        // Bytes are accumulated only once more input is known to follow them: the
        // last stripe of the input is treated apart, at the end.
        if self.buf_len > 0 {
            let fill = BUFFER - self.buf_len;
            self.buf[self.buf_len..].copy_from_slice(&input[..fill]);
            input = &input[fill..];
            let buf = self.buf;
            self.accumulate(&buf);
            self.buf_len = 0;
        }
        if input.len() > BUFFER {
            let whole = (input.len() - 1) / STRIPE * STRIPE;
            self.accumulate(&input[..whole]);
            input = &input[whole..];
        }
        self.buf[..input.len()].copy_from_slice(input);
        self.buf_len = input.len();
    }

    /// Accumulates whole stripes and remembers the last one.
    fn accumulate(&mut self, stripes: &[u8]) {
        run(self.level, &mut self.acc, &mut self.stripes, stripes);
        self.last
            .copy_from_slice(&stripes[stripes.len() - STRIPE..]);
    }

    /// The accumulators after the final stripes, for a long input.
    fn final_acc(&self) -> [u64; 8] {
        let mut acc = self.acc;
        let mut stripes = self.stripes;
        let mut last = [0u8; STRIPE];
        if self.buf_len >= STRIPE {
            let whole = (self.buf_len - 1) / STRIPE * STRIPE;
            run(self.level, &mut acc, &mut stripes, &self.buf[..whole]);
            last.copy_from_slice(&self.buf[self.buf_len - STRIPE..self.buf_len]);
        } else {
            let from_last = STRIPE - self.buf_len;
            last[..from_last].copy_from_slice(&self.last[self.buf_len..]);
            last[from_last..].copy_from_slice(&self.buf[..self.buf_len]);
        }
        accumulate_stripe(&mut acc, &last, &SECRET[SECRET.len() - STRIPE - 7..]);
        acc
    }

    /// XXH3-64 of the input so far.
    pub fn digest(&self) -> u64 {
        if self.total <= MID_SIZE_MAX {
            return xxhash_rust::xxh3::xxh3_64(&self.buf[..self.buf_len]);
        }
        merge(&self.final_acc(), 11, self.total.wrapping_mul(PRIME64_1))
    }

    /// XXH3-128 of the input so far.
    pub fn digest128(&self) -> u128 {
        if self.total <= MID_SIZE_MAX {
            return xxhash_rust::xxh3::xxh3_128(&self.buf[..self.buf_len]);
        }
        let acc = self.final_acc();
        let low = merge(&acc, 11, self.total.wrapping_mul(PRIME64_1));
        let high = merge(
            &acc,
            SECRET.len() - STRIPE - 11,
            !self.total.wrapping_mul(PRIME64_2),
        );
        (u128::from(high) << 64) | u128::from(low)
    }
}

fn run(level: Level, acc: &mut [u64; 8], stripes: &mut usize, input: &[u8]) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Level::Avx512` comes from `detect`, which saw AVX-512F, or from a
        // test that asked `detect` first.
        Level::Avx512 => unsafe { accumulate_avx512(acc, stripes, input) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Level::Avx2` comes from `detect`, which saw AVX2 (every AVX-512
        // CPU has it), or from a test that asked `detect` first.
        Level::Avx2 => unsafe { accumulate_avx2(acc, stripes, input) },
        #[cfg(target_arch = "x86_64")]
        Level::Baseline => accumulate_sse2(acc, stripes, input),
        #[cfg(not(target_arch = "x86_64"))]
        _ => accumulate_stripes::<Scalar>(acc, stripes, input),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn accumulate_avx512(acc: &mut [u64; 8], stripes: &mut usize, input: &[u8]) {
    accumulate_stripes::<x86::Avx512>(acc, stripes, input)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(acc: &mut [u64; 8], stripes: &mut usize, input: &[u8]) {
    accumulate_stripes::<x86::Avx2>(acc, stripes, input)
}

#[cfg(target_arch = "x86_64")]
fn accumulate_sse2(acc: &mut [u64; 8], stripes: &mut usize, input: &[u8]) {
    accumulate_stripes::<x86::Sse2>(acc, stripes, input)
}

/// The eight 64-bit accumulators held in registers of one SIMD width: the two
/// steps of XXH3's long loop on a whole stripe.
trait Lanes: Copy {
    fn load(acc: &[u64; 8]) -> Self;
    fn store(self, acc: &mut [u64; 8]);
    /// `acc[i ^ 1] += d[i]; acc[i] += lo32(d[i] ^ k[i]) * hi32(d[i] ^ k[i])`
    fn accumulate(self, stripe: &[u8; STRIPE], secret: &[u8; STRIPE]) -> Self;
    /// `a ^= a >> 47; a ^= k; a *= PRIME32_1`
    fn scramble(self, secret: &[u8; STRIPE]) -> Self;
}

/// Accumulates whole stripes, scrambling after every `STRIPES_PER_BLOCK`, with the
/// accumulators in registers; inlined into each level's function.
#[inline(always)]
fn accumulate_stripes<L: Lanes>(acc: &mut [u64; 8], stripes: &mut usize, input: &[u8]) {
    let scramble_key: &[u8; STRIPE] = SECRET[SECRET.len() - STRIPE..].try_into().expect("64");
    let mut lanes = L::load(acc);
    let mut n = *stripes;
    // Up to the next block boundary stripe by stripe, then whole blocks with
    // fixed secret offsets, then what is left.
    let mut rest = input;
    while n != 0 && rest.len() >= STRIPE {
        lanes = one_stripe(lanes, &mut n, &rest[..STRIPE]);
        rest = &rest[STRIPE..];
    }
    let blocks = rest.chunks_exact(STRIPE * STRIPES_PER_BLOCK);
    let tail = blocks.remainder();
    for block in blocks {
        for (stripe, key) in block.chunks_exact(STRIPE).zip(&BLOCK_KEYS.0) {
            let stripe: &[u8; STRIPE] = stripe.try_into().expect("a whole stripe");
            lanes = lanes.accumulate(stripe, key);
        }
        lanes = lanes.scramble(scramble_key);
    }
    for stripe in tail.chunks_exact(STRIPE) {
        lanes = one_stripe(lanes, &mut n, stripe);
    }
    *stripes = n;
    lanes.store(acc);
}

/// One stripe at secret offset `*n`, and the scramble if it ends a block.
#[inline(always)]
fn one_stripe<L: Lanes>(lanes: L, n: &mut usize, stripe: &[u8]) -> L {
    let stripe: &[u8; STRIPE] = stripe.try_into().expect("a whole stripe");
    let key: &[u8; STRIPE] = SECRET[*n * 8..*n * 8 + STRIPE]
        .try_into()
        .expect("a stripe of secret");
    let mut lanes = lanes.accumulate(stripe, key);
    *n += 1;
    if *n == STRIPES_PER_BLOCK {
        lanes = lanes.scramble(SECRET[SECRET.len() - STRIPE..].try_into().expect("64"));
        *n = 0;
    }
    lanes
}

#[cfg(target_arch = "x86_64")]
mod x86;

/// Plain 64-bit arithmetic, for targets without the x86 lanes above.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy)]
struct Scalar([u64; 8]);

#[cfg(not(target_arch = "x86_64"))]
impl Lanes for Scalar {
    fn load(acc: &[u64; 8]) -> Self {
        Scalar(*acc)
    }

    fn store(self, acc: &mut [u64; 8]) {
        *acc = self.0;
    }

    fn accumulate(mut self, stripe: &[u8; STRIPE], secret: &[u8; STRIPE]) -> Self {
        accumulate_stripe(&mut self.0, stripe, secret);
        self
    }

    fn scramble(mut self, secret: &[u8; STRIPE]) -> Self {
        for (i, a) in self.0.iter_mut().enumerate() {
            let mut v = *a;
            v ^= v >> 47;
            v ^= read64(secret, 8 * i);
            *a = v.wrapping_mul(PRIME32_1);
        }
        self
    }
}

#[inline(always)]
fn read64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn accumulate_stripe(acc: &mut [u64; 8], stripe: &[u8; STRIPE], secret: &[u8]) {
    let secret: &[u8; STRIPE] = secret[..STRIPE].try_into().expect("a stripe of secret");
    for i in 0..8 {
        let data = read64(stripe, 8 * i);
        let key = data ^ read64(secret, 8 * i);
        acc[i ^ 1] = acc[i ^ 1].wrapping_add(data);
        acc[i] = acc[i].wrapping_add((key & 0xFFFF_FFFF).wrapping_mul(key >> 32));
    }
}

fn merge(acc: &[u64; 8], secret_at: usize, start: u64) -> u64 {
    let mut result = start;
    for i in 0..4 {
        let at = secret_at + 16 * i;
        let product = u128::from(acc[2 * i] ^ read64(&SECRET, at))
            * u128::from(acc[2 * i + 1] ^ read64(&SECRET, at + 8));
        result = result.wrapping_add(product as u64 ^ (product >> 64) as u64);
    }
    result ^= result >> 37;
    result = result.wrapping_mul(0x1656_6791_9E37_79F9);
    result ^ (result >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 29) as u8)
            .collect()
    }

    #[test]
    fn every_level_gives_xxhash_rusts_digests() {
        let lengths = [
            0,
            1,
            3,
            16,
            17,
            128,
            129,
            240,
            241,
            255,
            256,
            257,
            319,
            320,
            1023,
            1024,
            1025,
            1088,
            2047,
            4096,
            16_384,
            16_385,
            100_003,
            1 << 20,
        ];
        for level in Level::available() {
            for len in lengths {
                let input = data(len);
                let want64 = xxhash_rust::xxh3::xxh3_64(&input);
                let want128 = xxhash_rust::xxh3::xxh3_128(&input);
                for piece in [1, 63, 64, 65, 255, 256, 257, 4096, usize::MAX] {
                    let mut h = Xxh3::with_level(level);
                    for chunk in input.chunks(piece.min(len.max(1))) {
                        h.update(chunk);
                    }
                    assert_eq!(h.digest(), want64, "{level:?} len {len} in {piece}s");
                    assert_eq!(h.digest128(), want128, "{level:?} len {len} in {piece}s");
                }
            }
        }
    }

    #[test]
    fn every_level_agrees_on_random_lengths_and_pieces() {
        let input = data((2 << 20) + 64);
        // xorshift64: the lengths and pieces repeat from run to run.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |below: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % below as u64) as usize
        };
        for _ in 0..200 {
            // Lengths spread evenly over their logarithm, up to 2 MiB, at any alignment.
            let bits = next(21);
            let len = next(2 << bits);
            let start = next(64);
            let input = &input[start..start + len];
            let bits = next(20);
            let piece = 1 + next(2 << bits);
            let digests: Vec<(u64, u128)> = Level::available()
                .into_iter()
                .map(|level| {
                    let mut h = Xxh3::with_level(level);
                    for chunk in input.chunks(piece) {
                        h.update(chunk);
                    }
                    (h.digest(), h.digest128())
                })
                .collect();
            let want = (
                xxhash_rust::xxh3::xxh3_64(input),
                xxhash_rust::xxh3::xxh3_128(input),
            );
            for (level, got) in Level::available().into_iter().zip(digests) {
                assert_eq!(got, want, "{level:?}: {len} bytes at {start} in {piece}s");
            }
        }
    }
}
