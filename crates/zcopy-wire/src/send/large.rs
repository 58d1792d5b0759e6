//! Large files: blocks hashed and sent on every stream of the session, holes
//! skipped.

use std::fs::File;
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rustix::net::SendFlags;
use zcopy::drive::Drive;
use zcopy::engine::direct::AlignedBuf;
use zcopy::limit::Limiter;
use zcopy::{Engine, Options, Report, Status, Syscall, Transfer};

use crate::compress::{Compress, Packer};
use crate::error::{Context, Error, Result};
use crate::frame::{self, Entry, Have, Msg};
use crate::observe::Observer;
use crate::partial::hash_range;
use crate::send::lane::Lane;
use crate::send::session::{greet, send_bytes, Answer, Sender};
use crate::send::walk::Item;
use crate::send::{answer, dial, send_all, SendConfig};
use crate::tls;

impl Sender<'_> {
    /// A large file: asks what the receiver holds, then sends the missing blocks
    /// through the engine (on `-j N` connections at once), holes as HOLE.
    pub(super) fn send_large(
        &mut self,
        item: &Item,
        entry: Entry,
        file: &File,
        size: u64,
    ) -> Result<()> {
        let (id, block, ask) = (entry.id, u64::from(entry.block), entry.ask);
        let path = entry.path.clone();
        Msg::File(entry).encode(&mut self.batch);
        self.flush(false)?;
        let have = if ask {
            match self.await_answer(id, &frame::shown(&path))? {
                Answer::Have(have) => have,
                Answer::Signature(old) => return self.send_delta(item, id, file, &old),
            }
        } else {
            Have::Nothing
        };
        if have == Have::Complete {
            self.meter.moved(size);
            return Ok(());
        }
        let nblocks = size.div_ceil(block) as usize;
        let holes = if zcopy::engine::seek_data::has_holes(file).unwrap_or(false) {
            zcopy::engine::seek_data::data_segments(file, size).ok()
        } else {
            None
        };
        let digests = Mutex::new(vec![0u128; nblocks]);
        // Blocks the receiver holds are hashed here for the file digest, not sent.
        let mut todo = Vec::new();
        for i in 0..nblocks {
            if have.holds(i) {
                let (offset, len) = (i as u64 * block, block.min(size - i as u64 * block));
                let d = hash_range(file, offset, len, &mut self.buf)
                    .with_context(|| format!("cannot read {}", item.source.display()))?;
                digests.lock().unwrap_or_else(|p| p.into_inner())[i] = d;
                self.meter.moved(len);
            } else {
                todo.push(i);
            }
        }
        let streams = self.streams.min(todo.len()).max(1);
        if streams > 1 {
            self.join_streams(streams)?;
        }
        let next = AtomicUsize::new(0);
        let options = Options::default()
            .engine(self.config.engine)
            .buffer(self.config.buffer);
        let limiter = self.limiter.as_ref();
        let meter = &*self.meter;
        let conns: Vec<&TcpStream> = std::iter::once(&self.stream)
            .chain(self.extra.iter())
            .take(streams)
            .collect();
        // Plain TCP has no record limit: the lanes only count under TLS.
        let cap = self.config.records_per_connection;
        while self.secure.is_some() && self.lanes.len() < streams {
            self.lanes.push(Lane::new(cap));
        }
        let mut lanes: Vec<Option<&mut Lane>> = self.lanes.iter_mut().map(Some).collect();
        lanes.resize_with(streams, || None);
        while self.compress != Compress::Off && self.packers.len() < streams {
            let packer = Packer::new(self.compress).context("zstd")?;
            self.packers.extend(packer);
        }
        let mut packers: Vec<Option<&mut Packer>> = self.packers.iter_mut().map(Some).collect();
        packers.resize_with(streams, || None);
        let (addr, config, secure, session, timeout) = (
            self.addr,
            self.config,
            self.secure,
            self.session,
            self.timeout,
        );
        // One stream: a thread hashes the blocks ahead of sendfile, on the other
        // core (compressed blocks are read into memory and hashed there).
        let (ahead_tx, ahead_rx) = std::sync::mpsc::sync_channel::<std::io::Result<u128>>(4);
        let mut ahead = (streams == 1 && self.compress == Compress::Off).then_some(ahead_rx);
        let results: Vec<Result<Report>> = std::thread::scope(|s| {
            if ahead.is_some() {
                let (todo, holes) = (&todo, &holes);
                s.spawn(move || {
                    let mut buf = AlignedBuf::new(256 << 10, 4096);
                    for &i in todo {
                        let offset = i as u64 * block;
                        let len = block.min(size - offset);
                        if !in_hole(holes, offset, len)
                            && ahead_tx
                                .send(hash_range(file, offset, len, &mut buf))
                                .is_err()
                        {
                            break;
                        }
                    }
                });
            }
            let workers: Vec<_> = conns
                .iter()
                .zip(lanes)
                .zip(packers)
                .map(|((&base, mut lane), mut packer)| {
                    let (next, todo, digests, holes) = (&next, &todo, &digests, &holes);
                    let ahead = ahead.take();
                    s.spawn(move || {
                        let mut buf = AlignedBuf::new(256 << 10, 4096);
                        let mut plain = Vec::new();
                        let mut digest = |offset, len| match &ahead {
                            Some(rx) => rx.recv().unwrap_or_else(|_| {
                                Err(std::io::Error::other("the hashing thread stopped"))
                            }),
                            None => hash_range(file, offset, len, &mut buf),
                        };
                        let mut report: Option<Report> = None;
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&i) = todo.get(k) else { break };
                            let offset = i as u64 * block;
                            let len = block.min(size - offset);
                            let hole = in_hole(holes, offset, len);
                            let conn = match lane.as_deref_mut() {
                                Some(lane) => {
                                    let join = || join(addr, config, secure, session, timeout);
                                    if let Some(records) = lane.before_block(len, join)? {
                                        meter.took_over(records);
                                    }
                                    lane.stream(base)
                                }
                                None => base,
                            };
                            let (d, r) = match packer.as_deref_mut() {
                                Some(packer) if !hole => send_packed_block(
                                    conn, file, id, offset, len, packer, &mut plain, limiter, meter,
                                )?,
                                _ => send_block(
                                    conn,
                                    file,
                                    id,
                                    offset,
                                    len,
                                    hole,
                                    options,
                                    &mut digest,
                                    limiter,
                                    meter,
                                )?,
                            };
                            digests.lock().unwrap_or_else(|p| p.into_inner())[i] = d;
                            if let Some(lane) = lane.as_deref_mut() {
                                let calls = r.as_ref().map_or(0, |r| r.syscalls.total());
                                // The header and digest are one call each.
                                lane.after_block(if hole { 0 } else { len }, calls + 2);
                            }
                            if let Some(r) = r {
                                match &mut report {
                                    Some(total) => total.absorb(&r),
                                    None => report = Some(r),
                                }
                            }
                        }
                        Ok(report.unwrap_or_else(|| Report::empty(Engine::ReadWrite)))
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("sending threads do not panic"))
                .collect()
        });
        for r in results {
            match r {
                Ok(r) => self.report.absorb(&r),
                Err(e) => return Err(self.why(e, &frame::shown(&path))),
            }
        }
        let digests = digests.into_inner().unwrap_or_else(|p| p.into_inner());
        Msg::End {
            id,
            size,
            digest: frame::file_digest(&digests),
        }
        .encode(&mut self.batch);
        Ok(())
    }

    /// Opens the extra connections of `-j N` (once), each joining this session.
    pub(super) fn join_streams(&mut self, streams: usize) -> Result<()> {
        while self.extra.len() + 1 < streams {
            let stream = match (self.listener, self.secure) {
                (Some(listener), Some(secure)) => answer(listener, self.config, secure)?,
                _ => dial(self.addr, self.config, self.secure)?,
            };
            greet(
                &stream,
                self.addr,
                self.session,
                self.timeout,
                self.config.protocol,
            )?;
            self.extra.push(stream);
        }
        Ok(())
    }
}

/// A connection joining `session`: dialled, admitted and greeted.
fn join(
    addr: &str,
    config: &SendConfig,
    secure: Option<&tls::Sender>,
    session: u64,
    timeout: Duration,
) -> Result<TcpStream> {
    let stream = dial(addr, config, secure)?;
    greet(&stream, addr, session, timeout, config.protocol)?;
    Ok(stream)
}

/// Whether the block at `offset` lies wholly in a hole of a sparse file.
fn in_hole(holes: &Option<Vec<std::ops::Range<u64>>>, offset: u64, len: u64) -> bool {
    holes.as_ref().is_some_and(|data| {
        !data
            .iter()
            .any(|d| d.start < offset + len && d.end > offset)
    })
}

/// One block read into memory, hashed there and sent as PACKED if it shrinks
/// (else DATA), on one connection.
#[allow(clippy::too_many_arguments)]
fn send_packed_block(
    conn: &TcpStream,
    file: &File,
    id: u32,
    offset: u64,
    len: u64,
    packer: &mut Packer,
    plain: &mut Vec<u8>,
    limiter: Option<&Limiter>,
    meter: &dyn Observer,
) -> Result<(u128, Option<Report>)> {
    let started = std::time::Instant::now();
    plain.resize(len as usize, 0);
    file.read_exact_at(plain, offset)?;
    let digest = xxhash_rust::xxh3::xxh3_128(plain);
    let wire = send_bytes(conn, id, offset, plain, digest, packer)?;
    if let Some(limiter) = limiter {
        limiter.pace(wire);
    }
    meter.moved(len);
    let mut report = Report::empty(Engine::ReadWrite);
    report.bytes = len;
    report.elapsed = started.elapsed();
    report.syscalls.count(Syscall::Pread);
    report.syscalls.count(Syscall::Write);
    Ok((digest, Some(report)))
}

/// One block on one connection: DATA, the bytes through the engine, then their
/// XXH3-128 (from `digest`: hashed ahead by another thread, or read back from the
/// page cache). A hole goes as HOLE.
#[allow(clippy::too_many_arguments)]
fn send_block(
    conn: &TcpStream,
    file: &File,
    id: u32,
    offset: u64,
    len: u64,
    hole: bool,
    options: Options,
    digest: &mut dyn FnMut(u64, u64) -> std::io::Result<u128>,
    limiter: Option<&Limiter>,
    meter: &dyn Observer,
) -> Result<(u128, Option<Report>)> {
    let mut head = Vec::with_capacity(32);
    if hole {
        Msg::Hole {
            id,
            offset,
            len: len as u32,
        }
        .encode(&mut head);
        send_all(conn, &head, SendFlags::empty())?;
        meter.moved(len);
        return Ok((frame::zeros_digest(len as u32), None));
    }
    Msg::Data {
        id,
        offset,
        len: len as u32,
    }
    .encode(&mut head);
    send_all(conn, &head, SendFlags::MORE)?;
    let options = options.offset(offset).len(len);
    let mut transfer = Transfer::new(file, conn, options)?;
    let mut drive = Drive::new().step(16 << 20);
    if let Some(limiter) = limiter {
        drive = drive.paced(limiter);
    }
    if let Status::WouldBlock(_) = drive.run(&mut transfer, |n| meter.moved(n))? {
        return Err(Error::TimedOut(
            "timed out: the receiver took nothing for the whole --timeout".into(),
        ));
    }
    let digest = digest(offset, len)?;
    send_all(conn, &digest.to_be_bytes(), SendFlags::empty())?;
    Ok((digest, Some(transfer.report())))
}
