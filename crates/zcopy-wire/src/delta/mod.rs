//! Delta transfer: a file the receiver already has in an older version is sent
//! as references to the chunks it holds and the bytes it lacks, and the new file
//! is built sharing the old one's extents.
//!
//! 1. The receiver describes its old copy ([`Signature`]): the file cut into
//!    content-defined chunks ([`chunk`]), each with its XXH3-128.
//! 2. The sender cuts the new file the same way and plans ([`Planner`]): a chunk
//!    whose digest the old copy has becomes a reference ([`Copy`](struct@Copy), runs merged),
//!    any other is sent as it is ([`Op::Literal`]).
//! 3. The receiver applies ([`Apply`]) into a new file beside the target: the
//!    referenced runs cloned with `FICLONERANGE` where the file system shares
//!    extents (btrfs, XFS) and the offsets agree modulo a block, their ragged ends
//!    and everything else copied with `copy_file_range`, the literals written; the
//!    whole file's digest is checked before the caller renames it. `--inplace`
//!    rewrites the old file instead: references are then kept only where their
//!    bytes lie at or after their new place, as rsync's `--inplace` does.
//!
//! # Why content-defined chunks, and why FastCDC
//!
//! Fixed blocks lose everything after an insertion: every later block moves. Two
//! answers survive it. rsync's rolling checksum keeps fixed blocks on the
//! receiver and has the sender slide a window one byte at a time, looking each
//! position's weak checksum up; content-defined chunking (FastCDC, a gear hash)
//! cuts both files where their content says, so the cuts after an edit come back
//! in step by themselves and each side hashes its own file once. Measured with
//! `cargo run --release -p zcopy-wire --example delta_choice` (a 1 GiB random
//! file in memory; rsync's algorithm with 64 KiB blocks against FastCDC with
//! 16/64/256 KiB chunks, the same signature size; one run on the 2-core VM):
//!
//! | new file | rolling: resent | rolling: sender | FastCDC: resent | FastCDC: sender |
//! |---|---:|---:|---:|---:|
//! | 1 MiB overwritten in place (block-aligned) | 1,048,576 B | 1626 MiB/s | 1,133,968 B | 855 MiB/s |
//! | 100 bytes inserted at 1/3 and 2/3 | 131,272 B | 1960 MiB/s | 104,238 B | 1006 MiB/s |
//! | every byte changed | 1 GiB | 98 MiB/s | 1 GiB | 1036 MiB/s |
//!
//! Both resend about as little (under 0.11% of the file here). The rolling search
//! is quicker while blocks match, as it jumps a block at a time and only hashes,
//! but wherever they do not it pays a table look-up per byte: 10.6 times slower
//! than FastCDC over changed data, which is where a delta spends its time on a
//! file that changed much. FastCDC costs the same whatever changed, its signature
//! is a plain list of chunks that needs no search on the receiver either, and
//! after an overwrite its references keep their offsets, which is what lets the
//! receiver clone them block for block. So FastCDC.
//!
//! XXH3-128 names a chunk: not a cryptographic digest, but a sender who forges a
//! collision only spoils its own file, and the whole file's digest is checked.

pub mod apply;
pub mod cache;
pub mod chunk;
pub mod plan;
pub mod signature;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io;

pub use apply::{Apply, Counts};
pub use cache::SignatureCache;
pub use chunk::{chunks, Chunk};
pub use plan::{Copy, Op, Planner};
pub use signature::Signature;

/// Builds in `out` the file `new` holds, from `old` and its signature, as a
/// receiver does from what a sender sends (with `inplace`, `out` is `old` and is
/// rewritten); checks the result against `new`'s digest and returns what moved how.
pub fn rebuild(
    old: &File,
    signature: &Signature,
    new: &File,
    out: &File,
    inplace: bool,
) -> io::Result<Counts> {
    let size = new.metadata()?.len();
    let digest = apply::file_digest(new, size, crate::frame::BLOCK)?;
    let mut apply = if inplace {
        Apply::inplace(out.try_clone()?)?
    } else {
        Apply::new(old.try_clone()?, out.try_clone()?)?
    };
    let mut planner = Planner::new(signature, inplace);
    let mut reader = new;
    io::Seek::rewind(&mut reader)?;
    let got = chunks(reader, |chunk, bytes| {
        planner.push(chunk, &mut |op| match op {
            Op::Copy(copy) => apply.copy(copy),
            Op::Literal(c) => apply.literal(c.offset, bytes),
        })
    })?;
    planner.finish(&mut |op| match op {
        Op::Copy(copy) => apply.copy(copy),
        Op::Literal(_) => unreachable!("finish emits only the run of references"),
    })?;
    if got != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the new file changed size while it was read",
        ));
    }
    apply.finish(size, crate::frame::BLOCK, digest)
}
