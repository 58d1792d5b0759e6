//! SSE2 (four 128-bit registers), AVX2 (two 256-bit registers) and AVX-512F (one
//! 512-bit register) lanes.
//! Every method is `inline(always)` and only ever inlined into a function
//! compiled with the feature its intrinsics need (SSE2 is x86-64's baseline).

use std::arch::x86_64::*;

use super::{Lanes, PRIME32_1, STRIPE};

/// `(hi32, lo32)` of each 64-bit lane swapped into the low half, for `mul_epu32`.
const HI_TO_LO: i32 = 0b00_11_00_01;
/// The two 64-bit lanes of each 128 bits swapped.
const SWAP_64: i32 = 0b01_00_11_10;

/// Whether the CPU splits each 512-bit operation into two 256-bit halves, as
/// AMD's cores before Zen 5 (CPU family 0x1A) do: AuthenticAMD, family below 0x1A.
pub fn halves_512_bit_ops() -> bool {
    // `__cpuid` is an unsafe fn in the Rust 1.89 of the workspace's rust-version
    // and safe in later ones, which would call this block unused.
    #[allow(unused_unsafe)]
    // SAFETY: every x86-64 CPU has the CPUID instruction and leaves 0 and 1.
    let (vendor, eax) = unsafe { (__cpuid(0), __cpuid(1).eax) };
    let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6E65, 0x444D_4163);
    let base = (eax >> 8) & 0xF;
    let family = if base == 0xF {
        base + ((eax >> 20) & 0xFF)
    } else {
        base
    };
    amd && family < 0x1A
}

#[derive(Clone, Copy)]
pub struct Sse2([__m128i; 4]);

// Closures are never `inline(always)`: a closure here would be compiled
// without the caller's features and call each intrinsic out of line.
macro_rules! four {
    ($f:expr) => {
        [$f(0), $f(1), $f(2), $f(3)]
    };
}

impl Lanes for Sse2 {
    #[inline(always)]
    fn load(acc: &[u64; 8]) -> Self {
        // SAFETY: 16-byte unaligned loads inside `acc`.
        unsafe {
            let p = acc.as_ptr().cast::<__m128i>();
            Sse2(four!(|i| _mm_loadu_si128(p.add(i))))
        }
    }

    #[inline(always)]
    fn store(self, acc: &mut [u64; 8]) {
        let p = acc.as_mut_ptr().cast::<__m128i>();
        // SAFETY: 16-byte unaligned stores inside `acc`.
        unsafe {
            _mm_storeu_si128(p, self.0[0]);
            _mm_storeu_si128(p.add(1), self.0[1]);
            _mm_storeu_si128(p.add(2), self.0[2]);
            _mm_storeu_si128(p.add(3), self.0[3]);
        }
    }

    #[inline(always)]
    fn accumulate(self, stripe: &[u8; STRIPE], secret: &[u8; STRIPE]) -> Self {
        let (d, k) = (
            stripe.as_ptr().cast::<__m128i>(),
            secret.as_ptr().cast::<__m128i>(),
        );
        // SAFETY: 16-byte unaligned loads inside the 64-byte arrays.
        unsafe {
            Sse2(four!(|i| {
                let data = _mm_loadu_si128(d.add(i));
                let mixed = _mm_xor_si128(data, _mm_loadu_si128(k.add(i)));
                let product = _mm_mul_epu32(mixed, _mm_shuffle_epi32::<HI_TO_LO>(mixed));
                let swapped = _mm_shuffle_epi32::<SWAP_64>(data);
                _mm_add_epi64(self.0[i], _mm_add_epi64(product, swapped))
            }))
        }
    }

    #[inline(always)]
    fn scramble(self, secret: &[u8; STRIPE]) -> Self {
        let k = secret.as_ptr().cast::<__m128i>();
        // SAFETY: as in `accumulate`.
        unsafe {
            let prime = _mm_set1_epi32(PRIME32_1 as i32);
            Sse2(four!(|i| {
                let a = self.0[i];
                let mixed = _mm_xor_si128(
                    _mm_xor_si128(a, _mm_srli_epi64::<47>(a)),
                    _mm_loadu_si128(k.add(i)),
                );
                let low = _mm_mul_epu32(mixed, prime);
                let high = _mm_mul_epu32(_mm_shuffle_epi32::<HI_TO_LO>(mixed), prime);
                _mm_add_epi64(low, _mm_slli_epi64::<32>(high))
            }))
        }
    }
}

#[derive(Clone, Copy)]
pub struct Avx2([__m256i; 2]);

macro_rules! two {
    ($f:expr) => {
        [$f(0), $f(1)]
    };
}

impl Lanes for Avx2 {
    #[inline(always)]
    fn load(acc: &[u64; 8]) -> Self {
        // SAFETY: 32-byte unaligned loads inside `acc`; only inlined where AVX2 is on.
        unsafe {
            let p = acc.as_ptr().cast::<__m256i>();
            Avx2(two!(|i| _mm256_loadu_si256(p.add(i))))
        }
    }

    #[inline(always)]
    fn store(self, acc: &mut [u64; 8]) {
        let p = acc.as_mut_ptr().cast::<__m256i>();
        // SAFETY: 32-byte unaligned stores inside `acc`; only inlined where AVX2 is on.
        unsafe {
            _mm256_storeu_si256(p, self.0[0]);
            _mm256_storeu_si256(p.add(1), self.0[1]);
        }
    }

    #[inline(always)]
    fn accumulate(self, stripe: &[u8; STRIPE], secret: &[u8; STRIPE]) -> Self {
        let (d, k) = (
            stripe.as_ptr().cast::<__m256i>(),
            secret.as_ptr().cast::<__m256i>(),
        );
        // SAFETY: 32-byte unaligned loads inside the 64-byte arrays; only
        // inlined where AVX2 is on.
        unsafe {
            Avx2(two!(|i| {
                let data = _mm256_loadu_si256(d.add(i));
                let mixed = _mm256_xor_si256(data, _mm256_loadu_si256(k.add(i)));
                let product = _mm256_mul_epu32(mixed, _mm256_shuffle_epi32::<HI_TO_LO>(mixed));
                let swapped = _mm256_shuffle_epi32::<SWAP_64>(data);
                _mm256_add_epi64(self.0[i], _mm256_add_epi64(product, swapped))
            }))
        }
    }

    #[inline(always)]
    fn scramble(self, secret: &[u8; STRIPE]) -> Self {
        let k = secret.as_ptr().cast::<__m256i>();
        // SAFETY: as in `accumulate`.
        unsafe {
            let prime = _mm256_set1_epi32(PRIME32_1 as i32);
            Avx2(two!(|i| {
                let a = self.0[i];
                let mixed = _mm256_xor_si256(
                    _mm256_xor_si256(a, _mm256_srli_epi64::<47>(a)),
                    _mm256_loadu_si256(k.add(i)),
                );
                let low = _mm256_mul_epu32(mixed, prime);
                let high = _mm256_mul_epu32(_mm256_shuffle_epi32::<HI_TO_LO>(mixed), prime);
                _mm256_add_epi64(low, _mm256_slli_epi64::<32>(high))
            }))
        }
    }
}

/// AVX-512's one 512-bit register: a whole stripe per instruction.
#[derive(Clone, Copy)]
pub struct Avx512(__m512i);

/// `ternarylogic`'s truth table for `a ^ b ^ c`.
const XOR3: i32 = 0x96;

impl Lanes for Avx512 {
    #[inline(always)]
    fn load(acc: &[u64; 8]) -> Self {
        // SAFETY: one 64-byte unaligned load of `acc`; only inlined where AVX-512F is on.
        unsafe { Avx512(_mm512_loadu_si512(acc.as_ptr().cast())) }
    }

    #[inline(always)]
    fn store(self, acc: &mut [u64; 8]) {
        // SAFETY: one 64-byte unaligned store into `acc`; only inlined where AVX-512F is on.
        unsafe { _mm512_storeu_si512(acc.as_mut_ptr().cast(), self.0) }
    }

    #[inline(always)]
    fn accumulate(self, stripe: &[u8; STRIPE], secret: &[u8; STRIPE]) -> Self {
        // SAFETY: 64-byte unaligned loads of the 64-byte arrays; only inlined where
        // AVX-512F is on.
        unsafe {
            let data = _mm512_loadu_si512(stripe.as_ptr().cast());
            let mixed = _mm512_xor_si512(data, _mm512_loadu_si512(secret.as_ptr().cast()));
            let product = _mm512_mul_epu32(mixed, _mm512_shuffle_epi32::<HI_TO_LO>(mixed));
            let swapped = _mm512_shuffle_epi32::<SWAP_64>(data);
            Avx512(_mm512_add_epi64(self.0, _mm512_add_epi64(product, swapped)))
        }
    }

    #[inline(always)]
    fn scramble(self, secret: &[u8; STRIPE]) -> Self {
        // SAFETY: as in `accumulate`.
        unsafe {
            let a = self.0;
            let mixed = _mm512_ternarylogic_epi64::<XOR3>(
                a,
                _mm512_srli_epi64::<47>(a),
                _mm512_loadu_si512(secret.as_ptr().cast()),
            );
            let prime = _mm512_set1_epi32(PRIME32_1 as i32);
            let low = _mm512_mul_epu32(mixed, prime);
            let high = _mm512_mul_epu32(_mm512_shuffle_epi32::<HI_TO_LO>(mixed), prime);
            Avx512(_mm512_add_epi64(low, _mm512_slli_epi64::<32>(high)))
        }
    }
}
