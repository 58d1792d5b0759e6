//! The measurement behind the delta's chunking (the table in `zcopy_wire::delta`):
//! rsync's rolling checksum against FastCDC on a random file of SIZE MiB (1024 by
//! default) with 1 MiB overwritten in place, then with 100 bytes inserted at 1/3
//! and 2/3, then with every byte changed: bytes each must resend, and the
//! sender's speed over the new file.
//!
//! `cargo run --release -p zcopy-wire --example delta_choice [SIZE_MIB]`

use std::collections::HashMap;
use std::time::Instant;

use zcopy_wire::delta::{chunk, chunks, Op, Planner, Signature};

/// rsync's block for a file this size is about its square root (32 KiB at 1 GiB);
/// 64 KiB matches FastCDC's average chunk, so both send the same signature size.
const BLOCK: usize = 64 << 10;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map_or(1024, |a| a.parse().expect("SIZE in MiB"));
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut old = vec![0u8; mib << 20];
    for word in old.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    let mut overwritten = old.clone();
    let at = old.len() / 2;
    for b in &mut overwritten[at..at + (1 << 20)] {
        *b = !*b;
    }
    let fresh: Vec<u8> = old.iter().map(|b| b.rotate_left(3) ^ 0xa5).collect();
    let mut inserted = old.clone();
    for at in [old.len() * 2 / 3, old.len() / 3] {
        inserted.splice(at..at, [0x5a; 100]);
    }
    println!(
        "{mib} MiB file | rolling checksum ({} KiB blocks) | FastCDC ({}/{}/{} KiB)",
        BLOCK >> 10,
        chunk::MIN >> 10,
        chunk::AVG >> 10,
        chunk::MAX >> 10
    );
    let roll_sig = Rolling::of(&old);
    let cdc_sig = Signature::of(&old[..]).expect("in memory");
    let cases = [
        ("1 MiB overwritten", &overwritten),
        ("100 B inserted twice", &inserted),
        ("nothing in common", &fresh),
    ];
    for (name, new) in cases {
        let start = Instant::now();
        let roll = roll_sig.literal_bytes(new);
        let roll_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let cdc = cdc_literal_bytes(&cdc_sig, new);
        let cdc_s = start.elapsed().as_secs_f64();
        let speed = |s: f64| new.len() as f64 / (1 << 20) as f64 / s;
        println!(
            "{name}: resent {roll} B at {:.0} MiB/s | resent {cdc} B at {:.0} MiB/s",
            speed(roll_s),
            speed(cdc_s)
        );
    }
}

fn cdc_literal_bytes(sig: &Signature, new: &[u8]) -> u64 {
    let mut planner = Planner::new(sig, false);
    let mut literal = 0;
    let mut count = |op: Op| {
        if let Op::Literal(c) = op {
            literal += u64::from(c.len);
        }
        Ok(())
    };
    chunks(new, |c, _| planner.push(c, &mut count)).expect("in memory");
    planner.finish(&mut count).expect("in memory");
    literal
}

/// rsync's signature: per fixed block, its weak rolling checksum and a strong digest.
struct Rolling {
    blocks: HashMap<u32, Vec<(usize, u128)>>,
    /// rsync's first filter: whether any block has this 16-bit tag.
    tags: Vec<bool>,
}

fn weak(s1: u32, s2: u32) -> u32 {
    (s1 & 0xffff) | (s2 << 16)
}

fn tag(w: u32) -> usize {
    ((w & 0xffff) + (w >> 16)) as usize & 0xffff
}

impl Rolling {
    fn of(old: &[u8]) -> Rolling {
        let mut blocks: HashMap<u32, Vec<(usize, u128)>> = HashMap::new();
        let mut tags = vec![false; 1 << 16];
        for (i, b) in old.chunks_exact(BLOCK).enumerate() {
            let (s1, s2) = sums(b);
            let w = weak(s1, s2);
            tags[tag(w)] = true;
            blocks.entry(w).or_default().push((i, chunk::digest(b)));
        }
        Rolling { blocks, tags }
    }

    /// The sender's search: slide a block-long window byte by byte; at a weak and
    /// strong match, reference the block and jump past it; else the byte is sent.
    fn literal_bytes(&self, new: &[u8]) -> u64 {
        let (mut pos, mut literal) = (0usize, 0u64);
        let (mut s1, mut s2) = sums(&new[..BLOCK.min(new.len())]);
        while pos + BLOCK <= new.len() {
            let w = weak(s1, s2);
            let hit = self.tags[tag(w)]
                && self.blocks.get(&w).is_some_and(|cands| {
                    let strong = chunk::digest(&new[pos..pos + BLOCK]);
                    cands.iter().any(|&(_, d)| d == strong)
                });
            if hit {
                pos += BLOCK;
                if pos + BLOCK <= new.len() {
                    (s1, s2) = sums(&new[pos..pos + BLOCK]);
                }
                continue;
            }
            literal += 1;
            if pos + BLOCK < new.len() {
                let (out, inb) = (u32::from(new[pos]), u32::from(new[pos + BLOCK]));
                s1 = s1.wrapping_sub(out).wrapping_add(inb);
                s2 = s2.wrapping_sub(BLOCK as u32 * out).wrapping_add(s1);
            }
            pos += 1;
        }
        literal + (new.len() - pos) as u64
    }
}

/// rsync's checksum of a block: s1 the sum of its bytes, s2 the sum of the s1s.
fn sums(block: &[u8]) -> (u32, u32) {
    let (mut s1, mut s2) = (0u32, 0u32);
    for &b in block {
        s1 = s1.wrapping_add(u32::from(b));
        s2 = s2.wrapping_add(s1);
    }
    (s1, s2)
}
