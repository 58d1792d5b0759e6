//! xxHash 0.8.3's `xxhsum`, as far as digests and check files go: its `-H`
//! numbers for its digests, its check-line rules (0.8.2's too: 0.8.3 only adds
//! `XXH3_<hex>  name` lines), and its benchmark's variants, run on this crate's
//! hashers.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::digest::{Digest, Hasher, Xof};
use crate::line::{self, CheckLine};

/// `-H` as zcopy scan takes it: xxhsum's numbers for its digests.
pub fn algorithm(value: &str) -> Result<Digest, String> {
    number_to_digest(
        value
            .parse()
            .map_err(|_| format!("{value}: not a number"))?,
    )
    .ok_or_else(|| format!("{value}: xxhsum knows 0, 1, 2, 3, 32, 64 and 128"))
}

/// The digest xxhsum numbers `n` (`-H0` to `-H3`, or by its bits).
pub fn number_to_digest(n: u32) -> Option<Digest> {
    match n {
        0 | 32 => Some(Digest::Xxh32),
        1 | 64 => Some(Digest::Xxh64),
        2 | 128 => Some(Digest::Xxh128),
        3 => Some(Digest::Xxh3),
        _ => None,
    }
}

/// The digests xxhsum knows, which its check files may hold.
pub const XXH: [Digest; 4] = [Digest::Xxh32, Digest::Xxh64, Digest::Xxh128, Digest::Xxh3];

/// Reads a check line as xxhsum 0.8.3 does: `hex<space><any byte>name` (the byte
/// after the space is skipped whatever it is, so `hex *name` reads too) with the
/// digest told by the hex's length, or `TAG (name) = hex` with the digest told by
/// the tag and `_LE` in it meaning little-endian hex. A line that starts with a
/// backslash holds an escaped name. Untagged lines are little-endian with
/// `--little-endian`. An untagged XXH3 line is `XXH3_hex  name`.
pub fn parse(text: &[u8], config: &Config) -> Result<CheckLine, String> {
    let bad = String::new;
    let first = text.iter().position(|b| *b != b' ' && *b != b'\t');
    // xxhsum steps over one byte, the backslash when it starts the line.
    let escaped = first.is_some_and(|i| text[i] == b'\\');
    let text = if escaped { &text[1..] } else { text };
    let space = text.iter().position(|b| *b == b' ').ok_or_else(bad)?;
    if space + 1 >= text.len() {
        return Err(bad());
    }
    let (digest, hex, name, reversed) = if text[space + 1] == b'(' {
        let last = text.iter().rposition(|b| *b == b' ').ok_or_else(bad)?;
        if last - space < 5 || &text[last - 3..last] != b") =" {
            return Err(bad());
        }
        let tag = &text[..space];
        let mut digest = Digest::Xxh64;
        for (prefix, d) in [
            (&b"XXH3"[..], Digest::Xxh3),
            (b"XXH32", Digest::Xxh32),
            (b"XXH64", Digest::Xxh64),
            (b"XXH128", Digest::Xxh128),
        ] {
            if tag.starts_with(prefix) {
                digest = d;
            }
        }
        let le = tag.windows(3).any(|w| w == b"_LE");
        (digest, &text[last + 1..], &text[space + 2..last - 3], le)
    } else {
        let word = &text[..space];
        let (digest, hex) = match word.strip_prefix(b"XXH3_") {
            Some(hex) => (Digest::Xxh3, hex),
            None => match word.len() {
                8 => (Digest::Xxh32, word),
                32 => (Digest::Xxh128, word),
                _ => (Digest::Xxh64, word),
            },
        };
        let name = text.get(space + 2..).unwrap_or_default();
        (digest, hex, name, config.little_endian)
    };
    if !line::is_hex(hex, digest.hex_len()) {
        return Err(bad());
    }
    let unescaped = if escaped {
        line::unescape(name).ok_or_else(bad)?
    } else {
        name.to_vec()
    };
    Ok(CheckLine {
        digests: vec![digest],
        expected: line::unhex(hex, reversed).ok_or_else(bad)?,
        name: unescaped,
        shown: name.to_vec(),
    })
}

/// The benchmark ids xxhsum numbers (odd: aligned input, even: unaligned), as the
/// digests zcopy runs for them.
pub fn bench_digest(id: u32) -> Option<(Digest, &'static str)> {
    match id.checked_sub(1)? / 2 {
        0 | 8 => Some((Digest::Xxh32, "XXH32")),
        1 | 9 => Some((Digest::Xxh64, "XXH64")),
        2..=4 | 10 | 11 => Some((Digest::Xxh3, "XXH3_64b")),
        5..=7 | 12 | 13 => Some((Digest::Xxh128, "XXH128")),
        _ => None,
    }
}

/// The best rate, in hashes a second, over `rounds` rounds of `round_time` each,
/// of hashing `input` whole with `digest`.
pub fn best_rate(digest: Digest, input: &[u8], rounds: u32, round_time: Duration) -> f64 {
    let mut best = 0f64;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut hashed = 0u64;
        while started.elapsed() < round_time {
            let mut h = Hasher::new(digest);
            h.update(input);
            std::hint::black_box(h.finish(Xof::DEFAULT));
            hashed += 1;
        }
        best = best.max(hashed as f64 / started.elapsed().as_secs_f64());
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Voice;

    fn config() -> Config {
        let mut c = Config::new(Voice::Xxhsum, "xxhsum", Digest::Xxh64);
        c.accepts = XXH.to_vec();
        c
    }

    #[test]
    fn check_lines_as_xxhsum_reads_them() {
        let c = config();
        let parsed = parse(b"0a0b0c0d *f", &c).unwrap();
        assert_eq!(
            (parsed.digests[0], &parsed.name[..]),
            (Digest::Xxh32, &b"f"[..])
        );
        let le = parse(b"XXH32_LE (a b) = 0d0c0b0a", &c).unwrap();
        assert_eq!(le.expected, [0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(le.name, b"a b");
        let xxh3 = parse(b"XXH3 (f) = 0123456789abcdef", &c).unwrap();
        assert_eq!(xxh3.digests, [Digest::Xxh3]);
        let escaped = parse(b"\\0a0b0c0d  a\\nb", &c).unwrap();
        assert_eq!(escaped.name, b"a\nb");
        for bad in [
            "12345678 ",
            "123456789  file",
            "",
            "XXH64 (f) = 0a0b0c0d",
            "\\0a0b0c0d  a\\qb",
        ] {
            assert!(parse(bad.as_bytes(), &c).is_err(), "{bad:?}");
        }
    }
}
