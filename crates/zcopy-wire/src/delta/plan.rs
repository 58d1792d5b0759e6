//! The sender's plan: for each chunk of the new file, a reference to the same
//! bytes in the receiver's old copy, else the bytes themselves.

use std::collections::HashMap;
use std::io;

use super::chunk::Chunk;
use super::signature::Signature;

/// `len` bytes of the old file at `old` go to `new` in the new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copy {
    pub old: u64,
    pub new: u64,
    pub len: u64,
}

/// One step of a plan, in the new file's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Bytes the old file has: references to consecutive old chunks in one run.
    Copy(Copy),
    /// A chunk the old file lacks, sent as it is.
    Literal(Chunk),
}

/// Turns the new file's chunks, given in order, into ops; references to old
/// chunks that follow each other are merged into one [`Copy`].
pub struct Planner<'a> {
    old: &'a Signature,
    /// Each digest's first chunk in the old file.
    index: HashMap<u128, usize>,
    /// The run of references not yet emitted, and the old chunk after it.
    run: Option<(Copy, usize)>,
    inplace: bool,
}

impl<'a> Planner<'a> {
    /// A plan against `old`. `inplace`: the receiver rewrites the old file front to
    /// back, so only references to bytes at or after their new place are safe
    /// (earlier ones are overwritten by then) and the rest are sent.
    pub fn new(old: &'a Signature, inplace: bool) -> Planner<'a> {
        let mut index = HashMap::with_capacity(old.chunks.len());
        for (i, c) in old.chunks.iter().enumerate() {
            index.entry(c.digest).or_insert(i);
        }
        Planner {
            old,
            index,
            run: None,
            inplace,
        }
    }

    /// The old chunk holding `chunk`'s bytes: the one after the current run, else
    /// the one at the same offset (clones need the same place modulo a block),
    /// else any.
    fn find(&self, chunk: &Chunk) -> Option<usize> {
        let same = |i: usize| {
            self.old
                .chunks
                .get(i)
                .is_some_and(|o| o.digest == chunk.digest && o.len == chunk.len)
        };
        if let Some((_, next)) = self.run {
            if same(next) {
                return Some(next);
            }
        }
        let at = self
            .old
            .chunks
            .binary_search_by_key(&chunk.offset, |o| o.offset);
        if let Ok(i) = at {
            if same(i) {
                return Some(i);
            }
        }
        let i = *self.index.get(&chunk.digest)?;
        let o = &self.old.chunks[i];
        (o.len == chunk.len && (!self.inplace || o.offset >= chunk.offset)).then_some(i)
    }

    /// Plans the next chunk of the new file; what is decided goes to `emit`.
    pub fn push(
        &mut self,
        chunk: Chunk,
        emit: &mut impl FnMut(Op) -> io::Result<()>,
    ) -> io::Result<()> {
        match self.find(&chunk) {
            Some(i) => {
                let old = self.old.chunks[i].offset;
                let len = u64::from(chunk.len);
                if let Some((run, next)) = &mut self.run {
                    if run.old + run.len == old && run.new + run.len == chunk.offset {
                        run.len += len;
                        *next = i + 1;
                        return Ok(());
                    }
                }
                self.finish(emit)?;
                self.run = Some((
                    Copy {
                        old,
                        new: chunk.offset,
                        len,
                    },
                    i + 1,
                ));
                Ok(())
            }
            None => {
                self.finish(emit)?;
                emit(Op::Literal(chunk))
            }
        }
    }

    /// Emits the run of references in progress, if any (call after the last chunk).
    pub fn finish(&mut self, emit: &mut impl FnMut(Op) -> io::Result<()>) -> io::Result<()> {
        match self.run.take() {
            Some((run, _)) => emit(Op::Copy(run)),
            None => Ok(()),
        }
    }
}
