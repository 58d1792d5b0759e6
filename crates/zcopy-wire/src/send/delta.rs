//! A file the receiver holds in an older version, sent as a delta: its chunks the
//! old version has as COPY, the others as LITERAL (PACKED with `-z` when they
//! shrink), then END with the digest of the
//! whole new file (see [`crate::delta`]).

use std::fs::File;

use zcopy::xxh3::Xxh3;

use crate::delta::{chunks, Op, Planner, Signature};
use crate::error::{Context, Result};
use crate::frame::{self, Msg};
use crate::send::session::Sender;
use crate::send::walk::Item;
use crate::send::BATCH;

/// The protocol's block digests of bytes given in order, in pieces of any length.
struct BlockDigests {
    block: u64,
    current: Xxh3,
    filled: u64,
    digests: Vec<u128>,
}

impl BlockDigests {
    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = ((self.block - self.filled) as usize).min(bytes.len());
            self.current.update(&bytes[..take]);
            self.filled += take as u64;
            bytes = &bytes[take..];
            if self.filled == self.block {
                self.digests
                    .push(std::mem::take(&mut self.current).digest128());
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> u128 {
        if self.filled > 0 || self.digests.is_empty() {
            self.digests.push(self.current.digest128());
        }
        frame::file_digest(&self.digests)
    }
}

impl Sender<'_> {
    /// Sends `file` (entry `id`) against the receiver's old version `old`.
    pub(super) fn send_delta(
        &mut self,
        item: &Item,
        id: u32,
        file: &File,
        old: &Signature,
    ) -> Result<()> {
        // An in-place plan suits a receiver that builds a new file too.
        let mut planner = Planner::new(old, self.config.inplace);
        let mut digests = BlockDigests {
            block: u64::from(item.entry.block),
            current: Xxh3::new(),
            filled: 0,
            digests: Vec::new(),
        };
        let mut failed = None;
        let size = chunks(file, |chunk, bytes| {
            digests.update(bytes);
            planner.push(chunk, &mut |op| self.delta_op(id, op, bytes, &mut failed))
        });
        let size = size.and_then(|size| {
            planner
                .finish(&mut |op| self.delta_op(id, op, &[], &mut failed))
                .map(|()| size)
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let size = size.with_context(|| format!("cannot read {}", item.source.display()))?;
        Msg::End {
            id,
            size,
            digest: digests.finish(),
        }
        .encode(&mut self.batch);
        Ok(())
    }

    /// One op into the shared buffer; a failure to send is kept in `failed` (and
    /// stops the chunking as an error) so that it is told apart from a read error.
    fn delta_op(
        &mut self,
        id: u32,
        op: Op,
        bytes: &[u8],
        failed: &mut Option<crate::Error>,
    ) -> std::io::Result<()> {
        let moved = match op {
            Op::Copy(c) => {
                Msg::Copy {
                    id,
                    old: c.old,
                    new: c.new,
                    len: c.len,
                }
                .encode(&mut self.batch);
                self.delta_counts.referenced += c.len;
                c.len
            }
            Op::Literal(c) => {
                match self.packers.first_mut().and_then(|p| p.pack(bytes)) {
                    Some(packed) => {
                        Msg::Packed {
                            id,
                            offset: c.offset,
                            len: c.len,
                            packed: packed.len() as u32,
                            literal: true,
                        }
                        .encode(&mut self.batch);
                        self.batch.extend_from_slice(packed);
                    }
                    None => {
                        Msg::Literal {
                            id,
                            offset: c.offset,
                            len: c.len,
                        }
                        .encode(&mut self.batch);
                        self.batch.extend_from_slice(bytes);
                    }
                }
                self.report.bytes += bytes.len() as u64;
                self.delta_counts.literal += bytes.len() as u64;
                bytes.len() as u64
            }
        };
        self.meter.moved(moved);
        if self.batch.len() >= BATCH {
            if let Err(e) = self.flush(true) {
                *failed = Some(e);
                return Err(std::io::Error::other("sending failed"));
            }
        }
        Ok(())
    }
}
