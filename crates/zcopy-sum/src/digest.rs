//! The digests this crate computes, with the names and line formats of the tools that
//! print them: xxhsum (XXH32, XXH64, XXH3, XXH128), b3sum (BLAKE3), GNU's
//! sha256sum and its siblings (SHA256, SHA224, SHA384, SHA512, SHA1, MD5); CRC32C
//! has no such tool and is printed tagged.

use std::fmt::Write as _;

use sha2::Digest as _;

use xxhash_rust::xxh32::Xxh32;
use xxhash_rust::xxh64::Xxh64;
use zcopy::xxh3::Xxh3;

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    /// XXH64, xxhsum's default
    Xxh64,
    /// XXH32 (`xxhsum -H0`)
    Xxh32,
    /// XXH3 64 bits (`xxhsum -H3`)
    Xxh3,
    /// XXH3 128 bits (`xxhsum -H2`)
    Xxh128,
    /// CRC32C (Castagnoli), as iSCSI and ext4 use it
    Crc32c,
    /// BLAKE3, as b3sum
    Blake3,
    /// SHA-256, as sha256sum
    Sha256,
    /// SHA-224, as sha224sum
    Sha224,
    /// SHA-384, as sha384sum
    Sha384,
    /// SHA-512, as sha512sum
    Sha512,
    /// SHA-1, as sha1sum (broken for security; for old check files)
    Sha1,
    /// MD5, as md5sum (broken for security; for old check files)
    Md5,
}

impl Digest {
    /// Every digest, in the order a command's help lists them.
    pub const ALL: [Digest; 12] = [
        Digest::Xxh64,
        Digest::Xxh32,
        Digest::Xxh3,
        Digest::Xxh128,
        Digest::Crc32c,
        Digest::Blake3,
        Digest::Sha256,
        Digest::Sha224,
        Digest::Sha384,
        Digest::Sha512,
        Digest::Sha1,
        Digest::Md5,
    ];

    /// The name in BSD-style lines, `TAG (name) = hex`.
    pub fn tag(self) -> &'static str {
        match self {
            Digest::Xxh64 => "XXH64",
            Digest::Xxh32 => "XXH32",
            Digest::Xxh3 => "XXH3",
            Digest::Xxh128 => "XXH128",
            Digest::Crc32c => "CRC32C",
            Digest::Blake3 => "BLAKE3",
            Digest::Sha256 => "SHA256",
            Digest::Sha224 => "SHA224",
            Digest::Sha384 => "SHA384",
            Digest::Sha512 => "SHA512",
            Digest::Sha1 => "SHA1",
            Digest::Md5 => "MD5",
        }
    }

    /// The digest a BSD-style tag names (`SHA256`), if any.
    pub fn from_tag(tag: &str) -> Option<Digest> {
        Digest::ALL.into_iter().find(|d| d.tag() == tag)
    }

    /// The name a command line gives it: the tag in lower case (`xxh64`, `sha256`).
    pub fn name(self) -> String {
        self.tag().to_ascii_lowercase()
    }

    /// What it is, in one line, as a command's help lists it.
    pub fn about(self) -> &'static str {
        match self {
            Digest::Xxh64 => "XXH64, xxhsum's default",
            Digest::Xxh32 => "XXH32 (`xxhsum -H0`)",
            Digest::Xxh3 => "XXH3 64 bits (`xxhsum -H3`)",
            Digest::Xxh128 => "XXH3 128 bits (`xxhsum -H2`)",
            Digest::Crc32c => "CRC32C (Castagnoli), as iSCSI and ext4 use it",
            Digest::Blake3 => "BLAKE3, as b3sum",
            Digest::Sha256 => "SHA-256, as sha256sum",
            Digest::Sha224 => "SHA-224, as sha224sum",
            Digest::Sha384 => "SHA-384, as sha384sum",
            Digest::Sha512 => "SHA-512, as sha512sum",
            Digest::Sha1 => "SHA-1, as sha1sum (broken for security; for old check files)",
            Digest::Md5 => "MD5, as md5sum (broken for security; for old check files)",
        }
    }

    /// Hex digits in the digest.
    pub fn hex_len(self) -> usize {
        match self {
            Digest::Xxh32 | Digest::Crc32c => 8,
            Digest::Xxh64 | Digest::Xxh3 => 16,
            Digest::Xxh128 | Digest::Md5 => 32,
            Digest::Sha1 => 40,
            Digest::Sha224 => 56,
            Digest::Blake3 | Digest::Sha256 => 64,
            Digest::Sha384 => 96,
            Digest::Sha512 => 128,
        }
    }

    /// The digests an untagged line of `len` hex digits may hold, the peer tools'
    /// reading first: xxhsum reads 8, 16 and 32 digits as XXH32, XXH64, XXH128.
    pub fn by_hex_len(len: usize) -> &'static [Digest] {
        match len {
            8 => &[Digest::Xxh32, Digest::Crc32c],
            16 => &[Digest::Xxh64, Digest::Xxh3],
            32 => &[Digest::Xxh128, Digest::Md5],
            40 => &[Digest::Sha1],
            56 => &[Digest::Sha224],
            64 => &[Digest::Blake3, Digest::Sha256],
            96 => &[Digest::Sha384],
            128 => &[Digest::Sha512],
            _ => &[],
        }
    }

    /// Whether lines are tagged by default: where the length of the hex does not
    /// say which digest it is to the peer tool (xxhsum 0.8.1 prints XXH3 tagged).
    pub fn tagged_by_default(self) -> bool {
        matches!(self, Digest::Xxh3 | Digest::Crc32c)
    }

    /// What standard input is called in output lines: xxhsum says `stdin`, the
    /// GNU tools and b3sum `-`.
    pub fn stdin_name(self) -> &'static str {
        match self {
            Digest::Xxh64 | Digest::Xxh32 | Digest::Xxh3 | Digest::Xxh128 => "stdin",
            _ => "-",
        }
    }
}

/// A running digest: [`Hasher::update`] with the bytes, then [`Hasher::finish`].
pub struct Hasher(Running);

enum Running {
    Xxh64(Box<Xxh64>),
    Xxh32(Xxh32),
    Xxh3(Box<Xxh3>),
    Xxh128(Box<Xxh3>),
    Crc32c(u32),
    Blake3(Box<blake3::Hasher>),
    Sha256(Box<sha2::Sha256>),
    Sha224(Box<sha2::Sha224>),
    Sha384(Box<sha2::Sha384>),
    Sha512(Box<sha2::Sha512>),
    Sha1(Box<sha1::Sha1>),
    Md5(Box<md5::Md5>),
}

/// Which part of BLAKE3's extendable output to print (b3sum's `--seek` and
/// `--length`, in bytes); the other digests have one fixed output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Xof {
    /// The first output byte.
    pub seek: u64,
    /// How many output bytes.
    pub len: u64,
}

impl Xof {
    /// BLAKE3's 32 bytes from the start, as b3sum prints without flags.
    pub const DEFAULT: Xof = Xof {
        seek: 0,
        len: blake3::OUT_LEN as u64,
    };
}

impl Hasher {
    /// A hasher of `digest`, unkeyed and unseeded.
    pub fn new(digest: Digest) -> Hasher {
        Hasher(match digest {
            Digest::Xxh64 => Running::Xxh64(Box::new(Xxh64::new(0))),
            Digest::Xxh32 => Running::Xxh32(Xxh32::new(0)),
            Digest::Xxh3 => Running::Xxh3(Box::default()),
            Digest::Xxh128 => Running::Xxh128(Box::default()),
            Digest::Crc32c => Running::Crc32c(0),
            Digest::Blake3 => Running::Blake3(Box::default()),
            Digest::Sha256 => Running::Sha256(Box::default()),
            Digest::Sha224 => Running::Sha224(Box::default()),
            Digest::Sha384 => Running::Sha384(Box::default()),
            Digest::Sha512 => Running::Sha512(Box::default()),
            Digest::Sha1 => Running::Sha1(Box::default()),
            Digest::Md5 => Running::Md5(Box::default()),
        })
    }

    /// A BLAKE3 hasher already set up (keyed, or deriving a key).
    pub fn blake3(hasher: blake3::Hasher) -> Hasher {
        Hasher(Running::Blake3(Box::new(hasher)))
    }

    /// Hashes `bytes`, after those already hashed.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Running::Xxh64(h) => h.update(bytes),
            Running::Xxh32(h) => h.update(bytes),
            Running::Xxh3(h) | Running::Xxh128(h) => h.update(bytes),
            Running::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, bytes),
            // BLAKE3 hashes the halves of a large input on separate cores (b3sum
            // does the same); below 128 KiB the blake3 crate advises one thread.
            Running::Blake3(h) if bytes.len() >= 128 << 10 => {
                h.update_rayon(bytes);
            }
            Running::Blake3(h) => {
                h.update(bytes);
            }
            Running::Sha256(h) => h.update(bytes),
            Running::Sha224(h) => h.update(bytes),
            Running::Sha384(h) => h.update(bytes),
            Running::Sha512(h) => h.update(bytes),
            Running::Sha1(h) => h.update(bytes),
            Running::Md5(h) => h.update(bytes),
        }
    }

    /// The digest's bytes in canonical (big-endian) order, as the peer tools print
    /// them in hex; `xof` picks BLAKE3's output bytes.
    pub fn finish(self, xof: Xof) -> Vec<u8> {
        match self.0 {
            Running::Xxh64(h) => h.digest().to_be_bytes().to_vec(),
            Running::Xxh32(h) => h.digest().to_be_bytes().to_vec(),
            Running::Xxh3(h) => h.digest().to_be_bytes().to_vec(),
            Running::Xxh128(h) => h.digest128().to_be_bytes().to_vec(),
            Running::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            Running::Blake3(h) if xof == Xof::DEFAULT => h.finalize().as_bytes().to_vec(),
            Running::Blake3(h) => {
                let mut reader = h.finalize_xof();
                reader.set_position(xof.seek);
                // A length beyond memory is refused when the flags are read.
                let mut out = vec![0; usize::try_from(xof.len).unwrap_or(usize::MAX)];
                reader.fill(&mut out);
                out
            }
            Running::Sha256(h) => h.finalize().to_vec(),
            Running::Sha224(h) => h.finalize().to_vec(),
            Running::Sha384(h) => h.finalize().to_vec(),
            Running::Sha512(h) => h.finalize().to_vec(),
            Running::Sha1(h) => h.finalize().to_vec(),
            Running::Md5(h) => h.finalize().to_vec(),
        }
    }
}

/// Bytes in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(digest: Digest, bytes: &[u8]) -> String {
        let mut h = Hasher::new(digest);
        h.update(bytes);
        super::hex(&h.finish(Xof::DEFAULT))
    }

    #[test]
    fn known_digests_of_hi() {
        // Printed by xxhsum 0.8.1, b3sum 1.2 and sha256sum 9.1 for "hi\n".
        let hi = b"hi\n";
        assert_eq!(hex(Digest::Xxh32, hi), "d20fe3d3");
        assert_eq!(hex(Digest::Xxh64, hi), "d50463dd92503d34");
        assert_eq!(hex(Digest::Xxh3, hi), "b34d1a3ab2bece70");
        assert_eq!(hex(Digest::Xxh128, hi), "f4d0497cf9394caab34d1a3ab2bece70");
        assert_eq!(
            hex(Digest::Blake3, hi),
            "0b8b60248fad7ac6dfac221b7e01a8b91c772421a15b387dd1fb2d6a94aee438"
        );
        assert_eq!(
            hex(Digest::Sha256, hi),
            "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"
        );
        // md5sum, sha1sum, sha224sum, sha384sum, sha512sum (coreutils 9.1) of "hi\n".
        assert_eq!(hex(Digest::Md5, hi), "764efa883dda1e11db47671c4a3bbd9e");
        assert_eq!(
            hex(Digest::Sha1, hi),
            "55ca6286e3e4f4fba5d0448333fa99fc5a404a73"
        );
        assert_eq!(
            hex(Digest::Sha224, hi),
            "0689e590864cee67b037c8f4c390a75a192bb01160cc9c21374afb12"
        );
        assert_eq!(
            hex(Digest::Sha384, hi),
            "4284b5694ca6c0d2cf4789a0b95ac8025c818de52304364be7cd2981b2d2edc6\
             85b322277ec25819962413d8c9b2c1f5"
        );
        assert_eq!(
            hex(Digest::Sha512, hi),
            "d78abb0542736865f94704521609c230dac03a2f369d043ac212d6933b91410e\
             06399e37f9c5cc88436a31737330c1c8eccb2c2f9f374d62f716432a32d50fac"
        );
    }

    #[test]
    fn blake3_output_is_one_stream_whatever_the_window() {
        let mut h = Hasher::new(Digest::Blake3);
        h.update(b"foo");
        let long = h.finish(Xof { seek: 0, len: 100 });
        assert_eq!(long[..32], *blake3::hash(b"foo").as_bytes());
        let mut h = Hasher::new(Digest::Blake3);
        h.update(b"foo");
        assert_eq!(h.finish(Xof { seek: 1, len: 99 }), long[1..]);
    }

    #[test]
    fn every_length_names_its_digests() {
        for d in Digest::ALL {
            assert_eq!(Digest::from_tag(d.tag()), Some(d));
            assert!(Digest::by_hex_len(d.hex_len()).contains(&d), "{d:?}");
        }
    }
}
