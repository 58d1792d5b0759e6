use std::fs::File;
use std::io::{Seek, Write};

use super::*;

/// A seeded xorshift, so a failure names the case that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Random data with runs of zeros and repeats, so chunks recur and cuts are forced.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let piece = 1 + rng.below(300 << 10);
        match rng.below(4) {
            0 => out.resize(out.len() + piece, 0),
            1 if !out.is_empty() => {
                let from = rng.below(out.len());
                let to = (from + piece).min(out.len());
                out.extend_from_within(from..to);
            }
            _ => out.extend(rng.bytes(piece)),
        }
    }
    out.truncate(len);
    out
}

fn edit(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = rng.below(data.len() + 1);
    let most = if rng.below(2) == 0 { 200 } else { 200 << 10 };
    let len = 1 + rng.below(most);
    match rng.below(3) {
        0 => {
            let bytes = rng.bytes(len);
            data.splice(at..at, bytes);
        }
        1 => {
            let end = (at + len).min(data.len());
            data.drain(at..end);
        }
        _ => {
            let end = (at + len).min(data.len());
            let bytes = rng.bytes(end - at);
            data[at..end].copy_from_slice(&bytes);
        }
    }
}

fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> File {
    let mut f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join(name))
        .unwrap();
    f.write_all(bytes).unwrap();
    f.rewind().unwrap();
    f
}

#[test]
fn random_edits_rebuild_the_new_file_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let len = rng.below(3 << 20);
        let old = content(&mut rng, len);
        let mut new = old.clone();
        for _ in 0..1 + rng.below(8) {
            edit(&mut rng, &mut new);
        }
        let old_file = file(&dir, "old", &old);
        let new_file = file(&dir, "new", &new);
        let sig = Signature::of(&old_file).unwrap();
        assert_eq!(sig.size(), old.len() as u64, "seed {seed}");
        for inplace in [false, true] {
            let out = if inplace {
                file(&dir, "old", &old)
            } else {
                file(&dir, "out", b"")
            };
            let source = File::open(dir.path().join("old")).unwrap();
            let counts = rebuild(&source, &sig, &new_file, &out, inplace)
                .unwrap_or_else(|e| panic!("seed {seed}, inplace {inplace}: {e}"));
            let name = if inplace { "old" } else { "out" };
            let got = std::fs::read(dir.path().join(name)).unwrap();
            assert!(got == new, "seed {seed}, inplace {inplace}: result differs");
            assert_eq!(
                counts.literal + counts.referenced,
                new.len() as u64,
                "seed {seed}, inplace {inplace}"
            );
        }
    }
}

#[test]
fn an_overwrite_or_two_insertions_resend_a_few_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let old = rng.bytes(16 << 20);
    let mut overwritten = old.clone();
    overwritten[5 << 20..(5 << 20) + (256 << 10)].copy_from_slice(&rng.bytes(256 << 10));
    let mut inserted = old.clone();
    for at in [old.len() * 2 / 3, old.len() / 3] {
        let bytes = rng.bytes(100);
        inserted.splice(at..at, bytes);
    }
    let old_file = file(&dir, "old", &old);
    let sig = Signature::of(&old_file).unwrap();
    for (new, most) in [
        (overwritten, (256 << 10) + 2 * chunk::MAX),
        (inserted, 4 * chunk::MAX),
    ] {
        let new_file = file(&dir, "new", &new);
        let out = file(&dir, "out", b"");
        let counts = rebuild(&old_file, &sig, &new_file, &out, false).unwrap();
        assert!(counts.literal <= u64::from(most), "{counts:?}");
        assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), new);
    }
}

#[test]
fn a_wrong_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = file(&dir, "old", b"old bytes");
    let out = file(&dir, "out", b"");
    let mut apply = Apply::new(old.try_clone().unwrap(), out).unwrap();
    apply.literal(0, b"new bytes").unwrap();
    let right = apply::file_digest(&old, 9, crate::frame::BLOCK).unwrap();
    let err = apply.finish(9, crate::frame::BLOCK, right).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn a_signature_survives_encoding_and_refuses_hostile_bytes() {
    let mut rng = Rng(3);
    let sig = Signature::of(&rng.bytes(1 << 20)[..]).unwrap();
    let mut bytes = Vec::new();
    sig.encode(0..sig.chunks.len(), &mut bytes);
    let mut back = Signature::default();
    back.decode_more(&bytes).unwrap();
    assert_eq!(back, sig);
    assert!(Signature::default().decode_more(&bytes[..7]).is_err());
    assert!(Signature::default().decode_more(&[0; 20]).is_err());
    assert!(Signature::default().decode_more(&[0xff; 20]).is_err());
}
