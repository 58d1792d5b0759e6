//! A framed session: its first connection carries the entries and verdicts, the
//! others join it and carry blocks ([`blocks`]); small files are checked in memory
//! and created by landing threads.

mod blocks;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use zcopy::engine::direct::AlignedBuf;
use zcopy::{Engine, EngineChoice, Report, Rusage, Syscalls};
use zcopy_wire::frame::{self, EntryKind, Greeting, Msg, Reader};
use zcopy_wire::observe::Observer;
use zcopy_wire::partial::{Partial, Root};

use crate::net::meter::{self};

use super::Job;

impl Job {
    /// A framed connection: a new session, or one joining a session (`None`).
    pub(super) fn receive_session(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<Option<(Report, u64)>> {
        let mut conn = Conn::new(self, &stream, peer)?;
        let greeting = match conn.reader.greeting() {
            Ok(g) => g,
            Err(e) => {
                let e = anyhow!(e).context(format!("receiving from {peer}: bad greeting"));
                conn.refuse(&e);
                return Err(e);
            }
        };
        if greeting.version < frame::VERSION {
            let e = anyhow!(
                "{peer} speaks zcopy protocol {}, this receiver {} (update the sender)",
                greeting.version,
                frame::VERSION
            );
            conn.refuse(&e);
            return Err(e);
        }
        if greeting.session != 0 {
            let session = self
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&greeting.session)
                .and_then(Weak::upgrade);
            let Some(session) = session else {
                let e = anyhow!("{peer}: no session {} to join", greeting.session);
                conn.refuse(&e);
                return Err(e);
            };
            session.joined.store(true, Ordering::Relaxed);
            conn.send_greeting(session.id)?;
            if let Err(e) = conn.blocks_only(&session) {
                session.fail(&format!("{e:#}"));
            }
            return Ok(None);
        }
        let session = Arc::new(Session::new(&stream)?);
        // `--once` on a terminal: the session's progress, redrawn on a timer.
        let drawing = session.meter.show(self.progress);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.id, Arc::downgrade(&session));
        let result = conn
            .send_greeting(session.id)
            .and_then(|()| conn.control(&session));
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&session.id);
        drop(drawing);
        match result {
            Ok(files) => Ok(Some((conn.report(&session), files))),
            Err(e) => {
                let e = match session.failure() {
                    Some(reason) => anyhow!("receiving from {peer}: {reason}"),
                    None => e,
                };
                conn.refuse(&e);
                for p in session
                    .files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drain()
                {
                    if let Some(kept) = p.1.abandon() {
                        eprintln!("zcopy: {kept}");
                    }
                }
                Err(e)
            }
        }
    }
}

/// Threads that put small files in place.
const LANES: usize = 2;

/// Files up to this size (in one block) are received into memory and put in
/// place by a landing thread.
const SMALL: u64 = 1 << 20;

/// A small file received and checked in memory, waiting for a landing thread.
struct Small {
    entry: frame::Entry,
    content: Vec<u8>,
    digests: Vec<u128>,
    /// END's size and file digest.
    end: Option<(u64, u128)>,
}

impl Small {
    fn fits(entry: &frame::Entry) -> bool {
        !entry.ask
            && entry
                .size
                .is_some_and(|s| s <= SMALL && s <= u64::from(entry.block))
    }

    fn new(entry: frame::Entry) -> Small {
        Small {
            entry,
            content: Vec::new(),
            digests: Vec::new(),
            end: None,
        }
    }

    /// Creates the file, writes it, checks END's digest and puts it in place.
    fn land(self, root: &Root) -> std::io::Result<()> {
        let (size, digest) = self.end.expect("landed after END");
        let (partial, _) = Partial::open(root, self.entry)?;
        if !self.content.is_empty() {
            partial.file.write_all_at(&self.content, 0)?;
        }
        for (i, d) in self.digests.iter().enumerate() {
            partial.verified(i, *d, false)?;
        }
        let result = partial.finish(size, digest, Duration::ZERO);
        if result.is_err() {
            partial.abandon();
        }
        result
    }
}

/// One session: the files its connections are filling, by the sender's number.
pub(super) struct Session {
    id: u64,
    files: Mutex<HashMap<u32, Arc<Partial>>>,
    arrived: Condvar,
    failed: Mutex<Option<String>>,
    /// The first connection, shut down for reading when another connection fails,
    /// so that its thread stops waiting and reports.
    control: TcpStream,
    bytes: AtomicU64,
    syscalls: Mutex<Syscalls>,
    /// Extra connections joined: a block or an entry may be awaited elsewhere.
    joined: AtomicBool,
    meter: Arc<meter::Meter>,
}

impl Session {
    fn new(control: &TcpStream) -> Result<Session> {
        static COUNT: AtomicU64 = AtomicU64::new(1);
        let seed = format!(
            "{:?} {} {}",
            Instant::now(),
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Session {
            id: xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) | 1,
            files: Mutex::default(),
            arrived: Condvar::new(),
            failed: Mutex::default(),
            control: control.try_clone().context("socket")?,
            bytes: AtomicU64::new(0),
            syscalls: Mutex::default(),
            joined: AtomicBool::new(false),
            meter: meter::Meter::new(None, 0),
        })
    }

    fn fail(&self, reason: &str) {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| reason.to_string());
        self.arrived.notify_all();
        let _ = self.control.shutdown(std::net::Shutdown::Read);
    }

    fn received(&self, len: u32) {
        self.bytes.fetch_add(u64::from(len), Ordering::Relaxed);
        self.meter.moved(u64::from(len));
    }

    fn joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The file `id`, waiting for its entry if a block outran it on another connection.
    fn file(&self, id: u32, wait: Duration) -> Result<Arc<Partial>> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let (files, _) = self
            .arrived
            .wait_timeout_while(files, wait, |f| {
                !f.contains_key(&id) && self.failure().is_none()
            })
            .unwrap_or_else(|p| p.into_inner());
        files
            .get(&id)
            .cloned()
            .with_context(|| format!("a block for file {id}, which was never announced"))
    }
}

/// One framed connection's reading side, buffers and counters.
struct Conn<'a> {
    job: &'a Job,
    stream: &'a TcpStream,
    peer: SocketAddr,
    reader: Reader<&'a TcpStream>,
    replies: Vec<u8>,
    buf: AlignedBuf,
    pipe: Option<(rustix::fd::OwnedFd, rustix::fd::OwnedFd)>,
    engine: Engine,
    syscalls: Syscalls,
    started: Instant,
}

impl<'a> Conn<'a> {
    fn new(job: &'a Job, stream: &'a TcpStream, peer: SocketAddr) -> Result<Conn<'a>> {
        let engine = match job.options.engine {
            EngineChoice::Only(Engine::Splice) => Engine::Splice,
            // Hashing needs the bytes in user space; read-write has them there anyway.
            _ => Engine::ReadWrite,
        };
        let pipe = if engine == Engine::Splice {
            let (r, w) = rustix::pipe::pipe().context("pipe")?;
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
        })
    }

    fn send_greeting(&mut self, session: u64) -> Result<()> {
        let g = Greeting {
            version: frame::VERSION,
            caps: frame::CAPS,
            session,
        };
        (&*self.stream)
            .write_all(&g.encode())
            .with_context(|| format!("{}: cannot answer", self.peer))
    }

    /// Ends the connection with ERR and the reason, then drains what the sender
    /// still sends until it closes, so the reason is read, not lost to a reset.
    fn refuse(&mut self, e: &anyhow::Error) {
        self.replies.clear();
        Msg::Err {
            id: 0,
            reason: format!("{:#}", e),
        }
        .encode(&mut self.replies);
        let _ = (&*self.stream).write_all(&self.replies);
        zcopy_wire::net::lingering_close(self.stream, self.job.timeout.min(Duration::from_secs(5)));
    }

    fn reply(&mut self, msg: Msg, now: bool) -> Result<()> {
        msg.encode(&mut self.replies);
        if now || self.replies.len() >= 4096 || !self.reader.has_buffered() {
            (&*self.stream)
                .write_all(&self.replies)
                .with_context(|| format!("{}: cannot answer", self.peer))?;
            self.replies.clear();
        }
        Ok(())
    }

    fn report(&self, session: &Session) -> Report {
        let mut syscalls = *session.syscalls.lock().unwrap_or_else(|p| p.into_inner());
        syscalls.add(&self.syscalls);
        Report {
            engine: self.engine,
            skipped: Vec::new(),
            bytes: session.bytes.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
            syscalls,
            zerocopy: Default::default(),
            rusage: Rusage::default(),
        }
    }

    /// The first connection of a session: entries, blocks, ENDs, until DONE.
    /// Returns the number of files received. Small files, verified in memory, are
    /// put in place by landing threads (file creation is most of a small file's
    /// cost, and two directories fill in parallel).
    fn control(&mut self, session: &Session) -> Result<u64> {
        let root = self.job.root.clone().expect("framed jobs have a root");
        let (landed_tx, landed) = mpsc::channel::<Result<(u32, String), String>>();
        std::thread::scope(|s| {
            let lanes: Vec<mpsc::SyncSender<Small>> = (0..LANES)
                .map(|_| {
                    let (tx, rx) = mpsc::sync_channel::<Small>(64);
                    let (root, landed_tx) = (&root, landed_tx.clone());
                    s.spawn(move || {
                        for small in rx {
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
                    tx
                })
                .collect();
            drop(landed_tx);
            self.control_loop(session, &root, &lanes, &landed)
        })
    }

    fn control_loop(
        &mut self,
        session: &Session,
        root: &Root,
        lanes: &[mpsc::SyncSender<Small>],
        landed: &mpsc::Receiver<Result<(u32, String), String>>,
    ) -> Result<u64> {
        let mut files = 0u64;
        let mut dirs = Vec::new();
        let mut pending: HashMap<u32, Small> = HashMap::new();
        let mut in_flight = 0u64;
        let mut announced = 0u64;
        loop {
            while let Ok(result) = landed.try_recv() {
                in_flight -= 1;
                self.landed(result, &mut files)?;
            }
            let msg = self.reader.next();
            if let Some(reason) = session.failure() {
                bail!("{reason}");
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
                    let path = frame::shown(&entry.path).into_owned();
                    if root.is_single() && (announced > 0 || entry.kind != EntryKind::File) {
                        bail!("{path}: -o names one file, and the sender sends a tree (give a directory)");
                    }
                    announced += 1;
                    session.meter.entry(announced, &path);
                    match entry.kind {
                        EntryKind::Dir => {
                            root.mkdir(&entry.path)
                                .with_context(|| format!("{path}: cannot create the directory"))?;
                            dirs.push(entry);
                        }
                        EntryKind::Symlink => {
                            root.symlink(&entry.path, &entry.target, entry.mtime)
                                .with_context(|| format!("{path}: cannot create the symlink"))?;
                            files += 1;
                        }
                        EntryKind::File if Small::fits(&entry) => {
                            pending.insert(entry.id, Small::new(entry));
                        }
                        EntryKind::File => {
                            let (id, ask) = (entry.id, entry.ask);
                            let (partial, have) = Partial::open(root, entry)
                                .with_context(|| format!("{path}: cannot create"))?;
                            let complete = have == frame::Have::Complete;
                            // Sent when the entries read so far are answered: a
                            // window of asks (`send --resume`) gets one write.
                            if ask {
                                self.reply(Msg::Have { id, have }, false)?;
                            }
                            if complete {
                                partial.skip();
                                files += 1;
                                continue;
                            }
                            session
                                .files
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(id, Arc::new(partial));
                            if session.joined() {
                                session.arrived.notify_all();
                            }
                        }
                    }
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
                    if lanes[lane].send(small).is_err() {
                        bail!(
                            "{}",
                            session
                                .failure()
                                .unwrap_or_else(|| "a landing thread stopped".into())
                        );
                    }
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
                        .finish(size, digest, self.job.timeout.max(Duration::from_secs(1)))
                        .with_context(|| format!("{path}: not written"))?;
                    session
                        .files
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    self.landed(Ok((id, path)), &mut files)?;
                }
                Msg::Done => {
                    while in_flight > 0 {
                        let result = landed
                            .recv()
                            .map_err(|_| anyhow!("a landing thread stopped"))?;
                        in_flight -= 1;
                        self.landed(result, &mut files)?;
                    }
                    // Deepest first, so setting a child's mtime does not change its parent's after.
                    for d in dirs.iter().rev() {
                        root.finish_dir(&d.path, d.mode, d.mtime).with_context(|| {
                            format!("{}: cannot set mode and mtime", frame::shown(&d.path))
                        })?;
                    }
                    self.reply(Msg::Bye, true)?;
                    return Ok(files);
                }
                other => bail!("receiving from {}: unexpected message {other:?}", self.peer),
            }
        }
    }

    /// A file is in place: count it, say so if asked, answer OK.
    fn landed(&mut self, result: Result<(u32, String), String>, files: &mut u64) -> Result<()> {
        let (id, path) = result.map_err(|reason| anyhow!("{reason}"))?;
        *files += 1;
        if self.job.verbose {
            eprintln!("{path}");
        }
        self.reply(Msg::Ok { id }, false)
    }
}

/// The peer closed mid-transfer: curl's exit code 18 (a partial file may be kept).
fn peer_closed(message: String) -> anyhow::Error {
    crate::exit::Coded {
        code: crate::exit::PEER_CLOSED,
        message,
    }
    .into()
}
