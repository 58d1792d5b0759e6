//! One framed connection of a session: its reading side, its replies, and on
//! the first connection the control loop over entries, blocks and ENDs.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zcopy::engine::direct::AlignedBuf;
use zcopy::{Engine, EngineChoice, Report, Syscalls};

use crate::compress::Unpacker;
use crate::error::{fail, Context, Error, Result};
use crate::frame::{self, EntryKind, Greeting, Have, Msg, Reader};
use crate::net;
use crate::partial::{same_file_in_place, Partial, Root};

use super::delta::{self, Incoming};
use super::mirror::Mirror;
use super::session::{peer_closed, Session, Small, LANES};
use super::Receiver;

/// One framed connection's reading side, buffers and counters.
pub(super) struct Conn<'a> {
    pub(super) job: &'a Receiver,
    pub(super) stream: &'a TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) reader: Reader<&'a TcpStream>,
    pub(super) replies: Vec<u8>,
    pub(super) buf: AlignedBuf,
    pub(super) pipe: Option<(rustix::fd::OwnedFd, rustix::fd::OwnedFd)>,
    pub(super) engine: Engine,
    pub(super) syscalls: Syscalls,
    pub(super) started: Instant,
    /// The peer is a local user other than root (read from the kernel's TCP
    /// table when it was admitted): nothing it sends lands with root's privileges.
    local_peer_not_root: bool,
    /// Made at the first PACKED message.
    unpacker: Option<Unpacker>,
}

impl<'a> Conn<'a> {
    pub(super) fn new(
        job: &'a Receiver,
        stream: &'a TcpStream,
        peer: SocketAddr,
    ) -> Result<Conn<'a>> {
        let engine = match job.options.engine {
            EngineChoice::Only(Engine::Splice) => Engine::Splice,
            // Hashing needs the bytes in user space; read-write has them there anyway.
            _ => Engine::ReadWrite,
        };
        let pipe = if engine == Engine::Splice {
            let (r, w) = rustix::pipe::pipe()
                .map_err(std::io::Error::from)
                .context("pipe")?;
            let _ = rustix::pipe::fcntl_setpipe_size(&w, job.options.pipe_size);
            Some((r, w))
        } else {
            None
        };
        Ok(Conn {
            job,
            stream,
            peer,
            reader: Reader::new(stream),
            replies: Vec::new(),
            buf: AlignedBuf::new(job.options.buffer.max(64 << 10), 4096),
            pipe,
            engine,
            syscalls: Syscalls::default(),
            started: Instant::now(),
            local_peer_not_root: job
                .local_peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&peer)
                .is_some_and(|uid| uid != 0),
            unpacker: None,
        })
    }

    /// The bytes of a PACKED message: its `packed` bytes read and decompressed
    /// into the `len` bytes they stand for.
    pub(super) fn unpack(&mut self, packed: u32, len: u32) -> std::io::Result<&[u8]> {
        if self.unpacker.is_none() {
            self.unpacker = Some(Unpacker::new()?);
        }
        let unpacker = self.unpacker.as_mut().expect("made above");
        self.syscalls.count(zcopy::Syscall::Read);
        unpacker.unpack(&mut self.reader, packed, len)
    }

    pub(super) fn send_greeting(&mut self, session: u64) -> Result<()> {
        let version = self.job.config.protocol;
        let g = Greeting {
            version,
            caps: frame::caps_of(version),
            session,
        };
        (&*self.stream)
            .write_all(&g.encode())
            .with_context(|| format!("{}: cannot answer", self.peer))
    }

    /// Ends the connection with ERR and the reason, then drains what the sender
    /// still sends until it closes, so the reason is read, not lost to a reset.
    pub(super) fn refuse(&mut self, e: &Error) {
        self.replies.clear();
        Msg::Err {
            id: 0,
            reason: e.chain(),
        }
        .encode(&mut self.replies);
        let _ = (&*self.stream).write_all(&self.replies);
        net::lingering_close(
            self.stream,
            self.job.config.timeout.min(Duration::from_secs(5)),
        );
    }

    fn reply(&mut self, msg: Msg, now: bool) -> Result<()> {
        msg.encode(&mut self.replies);
        if now || self.replies.len() >= 4096 || !self.reader.has_buffered() {
            self.send_replies()?;
        }
        Ok(())
    }

    /// Writes out the replies held back while more input was buffered.
    fn send_replies(&mut self) -> Result<()> {
        if !self.replies.is_empty() {
            (&*self.stream)
                .write_all(&self.replies)
                .with_context(|| format!("{}: cannot answer", self.peer))?;
            self.replies.clear();
        }
        Ok(())
    }

    pub(super) fn report(&self, session: &Session) -> Report {
        let mut syscalls = *session.syscalls.lock().unwrap_or_else(|p| p.into_inner());
        syscalls.add(&self.syscalls);
        let mut report = Report::empty(self.engine);
        report.bytes = session.bytes.load(Ordering::Relaxed);
        report.elapsed = self.started.elapsed();
        report.syscalls = syscalls;
        report
    }

    /// The first connection of a session: entries, blocks, ENDs, until DONE.
    /// Returns the number of files received. Small files, verified in memory, are
    /// put in place by landing threads (file creation is most of a small file's
    /// cost, and two directories fill in parallel).
    pub(super) fn control(&mut self, session: &Session) -> Result<u64> {
        let root = self.job.root.clone().expect("framed jobs have a root");
        // Directories kept open by an earlier session may have gone since.
        root.forget_dirs();
        let (landed_tx, landed) = mpsc::channel::<Result<(u32, String), String>>();
        std::thread::scope(|s| {
            let lanes: Vec<Lane> = (0..LANES)
                .map(|_| {
                    let (tx, rx) = mpsc::sync_channel::<Vec<Small>>(LANE_BATCHES);
                    let (root, landed_tx) = (&root, landed_tx.clone());
                    s.spawn(move || {
                        for small in rx.into_iter().flatten() {
                            let id = small.entry.id;
                            let path = frame::shown(&small.entry.path).into_owned();
                            let result = small
                                .land(root)
                                .map(|()| (id, path.clone()))
                                .map_err(|e| format!("{path}: not written: {e}"));
                            if let Err(reason) = &result {
                                session.fail(reason);
                            }
                            if landed_tx.send(result).is_err() {
                                break;
                            }
                        }
                    });
                    Lane {
                        tx,
                        batch: Vec::new(),
                        bytes: 0,
                    }
                })
                .collect();
            drop(landed_tx);
            self.control_loop(session, &root, lanes, &landed)
        })
    }

    fn control_loop(
        &mut self,
        session: &Session,
        root: &Root,
        mut lanes: Vec<Lane>,
        landed: &mpsc::Receiver<Result<(u32, String), String>>,
    ) -> Result<u64> {
        let mut files = 0u64;
        let mut dirs = Vec::new();
        // Hard links are made once every file has landed: their first name is there.
        let mut links = Vec::new();
        // Directories this session made: no file in them is in place, none is looked for.
        let mut made_dirs: HashSet<Vec<u8>> = HashSet::new();
        let mut pending: HashMap<u32, Small> = HashMap::new();
        let mut deltas: HashMap<u32, Incoming> = HashMap::new();
        let mut in_flight = 0u64;
        let mut announced = 0u64;
        let mut mirror: Option<Mirror> = None;
        loop {
            while let Ok(result) = landed.try_recv() {
                in_flight -= 1;
                self.landed(result, &mut files)?;
            }
            // Before this side waits for input, the answers held back leave (a
            // message that is not answered may end what was buffered) and the
            // landing threads get the files batched so far.
            if !self.reader.has_buffered() {
                self.send_replies()?;
                for lane in &mut lanes {
                    lane.hand_over(session)?;
                }
            }
            let msg = self.reader.next();
            if let Some(reason) = session.failure() {
                fail!("{reason}");
            }
            let msg = msg
                .with_context(|| format!("receiving from {}", self.peer))?
                .ok_or_else(|| {
                    peer_closed(format!(
                        "receiving from {}: the sender closed before the end ({files} files received)",
                        self.peer
                    ))
                })?;
            match msg {
                Msg::File(mut entry) => {
                    // Set-uid, set-gid and sticky only from a sender that proved the
                    // secret: any local user reaches a loopback receiver.
                    if self.job.tls.is_none() {
                        entry.mode &= frame::PERMISSION_BITS;
                    }
                    if self.local_peer_not_root && root.landing.is_root() {
                        no_root_privileges(&mut entry, &root.landing.ids);
                    }
                    let path = frame::shown(&entry.path).into_owned();
                    if root.is_single() && (announced > 0 || entry.kind != EntryKind::File) {
                        fail!("{path}: -o names one file, and the sender sends a tree (give a directory)");
                    }
                    announced += 1;
                    session.watching(|w| w.entry(announced, &path));
                    if let Some(m) = &mut mirror {
                        let (line, same) = m.entry(root, &entry)?;
                        if let Some(line) = line {
                            self.reply(Msg::Item(line), false)?;
                        }
                        let dry_run = m.settings.dry_run;
                        if entry.kind == EntryKind::File && (dry_run || same && entry.ask) {
                            if !entry.ask {
                                fail!("{path}: a dry run's files come without content, asking");
                            }
                            self.reply(
                                Msg::Have {
                                    id: entry.id,
                                    have: Have::Complete,
                                },
                                false,
                            )?;
                            files += 1;
                            continue;
                        }
                        if dry_run {
                            files += u64::from(entry.kind != EntryKind::Dir);
                            continue;
                        }
                        // Looked at already: the answer is no.
                        entry.complete_ok = false;
                    }
                    if entry.kind == EntryKind::File && entry.ask && Small::small(&entry) {
                        let parent =
                            &entry.path[..entry.path.iter().rposition(|&b| b == b'/').unwrap_or(0)];
                        let fresh = made_dirs.contains(parent);
                        if self.in_place(root, &entry, fresh)? {
                            files += 1;
                            continue;
                        }
                        entry.ask = false;
                    }
                    match entry.kind {
                        EntryKind::Dir => {
                            let made = root
                                .mkdir(&entry.path)
                                .with_context(|| format!("{path}: cannot create the directory"))?;
                            if made {
                                made_dirs.insert(entry.path.clone());
                            }
                            dirs.push(entry);
                        }
                        EntryKind::Symlink => {
                            root.symlink(&entry)
                                .with_context(|| format!("{path}: cannot create the symlink"))?;
                            files += 1;
                        }
                        EntryKind::HardLink => links.push(entry),
                        // As rsync: only root makes devices; others skip them.
                        EntryKind::CharDevice | EntryKind::BlockDevice
                            if !root.landing.is_root() =>
                        {
                            self.job.observer.warning(&format!(
                                "skipping non-regular file {path:?}: only root makes devices"
                            ));
                        }
                        EntryKind::CharDevice
                        | EntryKind::BlockDevice
                        | EntryKind::Fifo
                        | EntryKind::Socket => {
                            root.special(&entry)
                                .with_context(|| format!("{path}: cannot create it"))?;
                            files += 1;
                        }
                        EntryKind::File if Small::fits(&entry) => {
                            pending.insert(entry.id, Small::new(entry));
                        }
                        EntryKind::File if entry.ask && entry.delta => {
                            let cache = self.job.config.signatures.as_ref();
                            let found = delta::open(root, &entry, cache)
                                .with_context(|| format!("{path}: cannot read the old version"))?;
                            if let Some((incoming, signature)) = found {
                                self.signature(entry.id, &signature)?;
                                deltas.insert(entry.id, incoming);
                            } else {
                                self.whole_file(session, root, entry)?;
                            }
                        }
                        EntryKind::File => {
                            if self.whole_file(session, root, entry)? {
                                files += 1;
                            }
                        }
                    }
                }
                Msg::Copy { id, old, new, len } => {
                    let incoming = deltas
                        .get_mut(&id)
                        .with_context(|| format!("COPY for file {id}, which is no delta"))?;
                    incoming
                        .copy(crate::delta::Copy { old, new, len })
                        .with_context(|| {
                            format!("{}: not written", frame::shown(incoming.path()))
                        })?;
                }
                Msg::Literal { id, offset, len } => {
                    let incoming = deltas
                        .get_mut(&id)
                        .with_context(|| format!("LITERAL for file {id}, which is no delta"))?;
                    incoming
                        .literal(&mut self.reader, offset, len)
                        .with_context(|| {
                            format!(
                                "{}: receiving from {}",
                                frame::shown(incoming.path()),
                                self.peer
                            )
                        })?;
                    session.received(len);
                }
                Msg::Packed {
                    id,
                    offset,
                    len,
                    packed,
                    literal: true,
                } => {
                    let incoming = deltas.get_mut(&id).with_context(|| {
                        format!("a PACKED LITERAL for file {id}, which is no delta")
                    })?;
                    let what = format!(
                        "{}: receiving from {}",
                        frame::shown(incoming.path()),
                        self.peer
                    );
                    incoming
                        .check_literal(offset, len)
                        .with_context(|| what.clone())?;
                    let bytes = self.unpack(packed, len).with_context(|| what.clone())?;
                    incoming
                        .write_literal(offset, bytes)
                        .with_context(|| what)?;
                    session.received(len);
                }
                Msg::Packed {
                    id,
                    offset,
                    len,
                    packed,
                    ..
                } if pending.contains_key(&id) => {
                    let small = pending.get_mut(&id).expect("checked above");
                    self.small_packed(small, offset, len, packed)?;
                    session.received(len);
                }
                Msg::Packed {
                    id,
                    offset,
                    len,
                    packed,
                    ..
                } => self.packed_block(session, id, offset, len, packed)?,
                Msg::End { id, size, digest } if deltas.contains_key(&id) => {
                    let incoming = deltas.remove(&id).expect("checked above");
                    let path = frame::shown(incoming.path()).into_owned();
                    let counts = incoming
                        .finish(&root.landing, size, digest)
                        .with_context(|| format!("{path}: not written"))?;
                    session
                        .delta
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .add(counts);
                    self.landed(Ok((id, path)), &mut files)?;
                }
                Msg::Data { id, offset, len } | Msg::Hole { id, offset, len }
                    if pending.contains_key(&id) =>
                {
                    let hole = matches!(msg, Msg::Hole { .. });
                    let small = pending.get_mut(&id).expect("checked above");
                    self.small_block(small, offset, len, hole)?;
                    session.received(len);
                }
                Msg::Data { id, offset, len } => self.block(session, id, offset, len, false)?,
                Msg::Hole { id, offset, len } => self.block(session, id, offset, len, true)?,
                Msg::End { id, size, digest } if pending.contains_key(&id) => {
                    let mut small = pending.remove(&id).expect("checked above");
                    small.end = Some((size, digest));
                    let path = &small.entry.path;
                    let parent = &path[..path.iter().rposition(|&b| b == b'/').unwrap_or(0)];
                    let lane = xxhash_rust::xxh3::xxh3_64(parent) as usize % lanes.len();
                    lanes[lane].push(small, session)?;
                    in_flight += 1;
                }
                Msg::End { id, size, digest } => {
                    let partial = session
                        .files
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&id)
                        .cloned()
                        .with_context(|| format!("END for file {id}, which was never announced"))?;
                    let path = frame::shown(&partial.entry.path).into_owned();
                    partial
                        .finish(
                            &root.landing,
                            size,
                            digest,
                            self.job.config.timeout.max(Duration::from_secs(1)),
                        )
                        .with_context(|| format!("{path}: not written"))?;
                    session
                        .files
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    self.landed(Ok((id, path)), &mut files)?;
                }
                Msg::Done => {
                    for lane in &mut lanes {
                        lane.hand_over(session)?;
                    }
                    while in_flight > 0 {
                        let result = landed
                            .recv()
                            .map_err(|_| Error::Failed("a landing thread stopped".into()))?;
                        in_flight -= 1;
                        self.landed(result, &mut files)?;
                    }
                    for link in &links {
                        let path = frame::shown(&link.path);
                        let made = root.hard_link(link).with_context(|| {
                            format!("{path}: cannot link it to {}", frame::shown(&link.target))
                        })?;
                        files += 1;
                        if made && mirror.as_ref().is_some_and(|m| m.settings.itemize) {
                            let mut line = b"hf+++++++++ ".to_vec();
                            line.extend_from_slice(&link.path);
                            line.extend_from_slice(b" => ");
                            line.extend_from_slice(&link.target);
                            self.reply(Msg::Item(line), false)?;
                        }
                    }
                    if let Some(m) = &mut mirror {
                        for line in m.after(root)? {
                            self.reply(Msg::Item(line), false)?;
                        }
                        if m.settings.dry_run {
                            dirs.clear();
                        }
                    }
                    // Deepest first, so setting a child's mtime does not change its parent's after.
                    for d in dirs.iter().rev() {
                        root.finish_dir(d).with_context(|| {
                            format!("{}: cannot set its attributes", frame::shown(&d.path))
                        })?;
                    }
                    self.reply(Msg::Bye, true)?;
                    return Ok(files);
                }
                Msg::Mirror(settings) if announced == 0 && mirror.is_none() => {
                    mirror = Some(Mirror::new(settings, root)?);
                }
                Msg::Names(list) => {
                    let m = mirror.as_mut().context("NAMES without MIRROR")?;
                    for line in m.listed(root, list)? {
                        self.reply(Msg::Item(line), false)?;
                    }
                }
                other => fail!("receiving from {}: unexpected message {other:?}", self.peer),
            }
        }
    }

    /// A large file sent whole (or resumed): its partial file, and HAVE if asked.
    /// Returns whether the file is complete in place already.
    fn whole_file(&mut self, session: &Session, root: &Root, entry: frame::Entry) -> Result<bool> {
        let (id, ask) = (entry.id, entry.ask);
        let path = frame::shown(&entry.path).into_owned();
        let (partial, have) =
            Partial::open(root, entry).with_context(|| format!("{path}: cannot create"))?;
        let complete = have == frame::Have::Complete;
        // Sent when the entries read so far are answered: a window of asks
        // (`send --resume`) gets one write.
        if ask {
            self.reply(Msg::Have { id, have }, false)?;
        }
        if complete {
            partial.skip();
            return Ok(true);
        }
        session
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(partial));
        if session.joined() {
            session.arrived.notify_all();
        }
        Ok(false)
    }

    /// The answer to a delta's FILE: the old version's chunks, in SIG messages
    /// that each fit a message body.
    fn signature(&mut self, id: u32, signature: &crate::delta::Signature) -> Result<()> {
        const PER_MESSAGE: usize = 50_000;
        let n = signature.chunks.len();
        let mut start = 0;
        loop {
            let end = (start + PER_MESSAGE).min(n);
            let mut chunks =
                Vec::with_capacity((end - start) * crate::delta::signature::ENCODED_CHUNK);
            signature.encode(start..end, &mut chunks);
            let last = end == n;
            self.reply(Msg::Sig { id, last, chunks }, last)?;
            if last {
                return Ok(());
            }
            start = end;
        }
    }

    /// A small file that asks: answers whether it is in place already (size and
    /// mtime, or its digest; never in a directory `fresh`ly made); if not, it is
    /// received in memory, as one that does not ask.
    fn in_place(&mut self, root: &Root, entry: &frame::Entry, fresh: bool) -> Result<bool> {
        let complete = entry.complete_ok
            && !fresh
            && root.parent_of(&entry.path).is_ok_and(|(dir, name)| {
                same_file_in_place(&dir, &name, entry, Some(&root.landing))
            });
        let have = if complete {
            Have::Complete
        } else {
            Have::Nothing
        };
        self.reply(Msg::Have { id: entry.id, have }, false)?;
        Ok(complete)
    }

    /// A file is in place: count it, say so if asked, answer OK.
    fn landed(&mut self, result: Result<(u32, String), String>, files: &mut u64) -> Result<()> {
        let (id, path) = result.map_err(Error::Failed)?;
        *files += 1;
        self.job.observer.landed(&path);
        self.reply(Msg::Ok { id }, false)
    }
}

/// What a local user other than root sends to a root receiver: no set-uid bit
/// on a file that would be root's, no set-gid bit on one of root's group, no
/// file capabilities.
/// A landing thread is handed this many small files at a time, or fewer that
/// hold this many bytes; at most this many batches wait for it.
const LANE_BATCH_FILES: usize = 32;
const LANE_BATCH_BYTES: usize = 1 << 20;
const LANE_BATCHES: usize = 4;

/// A landing thread's queue: small files are handed over in batches (full, or
/// when the input runs dry), so that the thread is woken once per batch, not
/// once per file.
struct Lane {
    tx: mpsc::SyncSender<Vec<Small>>,
    batch: Vec<Small>,
    bytes: usize,
}

impl Lane {
    fn push(&mut self, small: Small, session: &Session) -> Result<()> {
        self.bytes += small.content.len();
        self.batch.push(small);
        if self.batch.len() >= LANE_BATCH_FILES || self.bytes >= LANE_BATCH_BYTES {
            self.hand_over(session)?;
        }
        Ok(())
    }

    fn hand_over(&mut self, session: &Session) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        if self.tx.send(std::mem::take(&mut self.batch)).is_err() {
            fail!(
                "{}",
                session
                    .failure()
                    .unwrap_or_else(|| "a landing thread stopped".into())
            );
        }
        Ok(())
    }
}

fn no_root_privileges(entry: &mut frame::Entry, ids: &crate::attrs::Ids) {
    let a = &mut entry.attrs;
    if a.owner.as_ref().is_none_or(|o| ids.local(false, o) == 0) {
        entry.mode &= !0o4000;
        if let Some(x) = &mut a.xattrs {
            x.retain(|(name, _)| name != b"security.capability");
        }
    }
    if a.group.as_ref().is_none_or(|g| ids.local(true, g) == 0) && entry.kind != EntryKind::Dir {
        entry.mode &= !0o2000;
    }
}
