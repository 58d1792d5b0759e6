//! A framed session: its first connection carries the entries and verdicts
//! ([`super::conn`]), the others join it and carry blocks ([`super::blocks`]);
//! small files are checked in memory and created by landing threads.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use zcopy::{Report, Syscalls};

use crate::error::{Context, Error, Result};
use crate::frame;
use crate::observe::Observer;
use crate::partial::{Partial, Root};

use super::conn::Conn;
use super::Receiver;

impl Receiver {
    /// A framed connection, admitted: a new session, whose report and number of
    /// files it returns, or one joining a session (`None`: its session reports).
    pub fn receive(&self, stream: TcpStream, peer: SocketAddr) -> Result<Option<(Report, u64)>> {
        let mut conn = Conn::new(self, &stream, peer)?;
        let greeting = match conn.reader.greeting() {
            Ok(g) => g,
            Err(e) => {
                let e = Error::from(e).context(format!("receiving from {peer}: bad greeting"));
                conn.refuse(&e);
                return Err(e);
            }
        };
        if greeting.version < frame::VERSION {
            let e = Error::Failed(format!(
                "{peer} speaks zcopy protocol {}, this receiver {} (update the sender)",
                greeting.version,
                frame::VERSION
            ));
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
                let e = Error::Failed(format!("{peer}: no session {} to join", greeting.session));
                conn.refuse(&e);
                return Err(e);
            };
            session.joined.store(true, Ordering::Relaxed);
            conn.send_greeting(session.id)?;
            if let Err(e) = conn.blocks_only(&session) {
                session.fail(&e.chain());
            }
            return Ok(None);
        }
        let session = Arc::new(Session::new(&stream, self.observer.session())?);
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
        // The session's watcher ends with it (a progress line is cleared).
        session.end_watch();
        match result {
            Ok(files) => Ok(Some((conn.report(&session), files))),
            Err(e) => {
                let e = match session.failure() {
                    Some(reason) => Error::Failed(format!("receiving from {peer}: {reason}")),
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
                        self.observer.kept(&kept);
                    }
                }
                Err(e)
            }
        }
    }
}

/// Threads that put small files in place.
pub(super) const LANES: usize = 2;

/// Files up to this size (in one block) are received into memory and put in
/// place by a landing thread.
const SMALL: u64 = 1 << 20;

/// A small file received and checked in memory, waiting for a landing thread.
pub(super) struct Small {
    pub(super) entry: frame::Entry,
    pub(super) content: Vec<u8>,
    pub(super) digests: Vec<u128>,
    /// END's size and file digest.
    pub(super) end: Option<(u64, u128)>,
}

impl Small {
    pub(super) fn fits(entry: &frame::Entry) -> bool {
        !entry.ask
            && entry
                .size
                .is_some_and(|s| s <= SMALL && s <= u64::from(entry.block))
    }

    pub(super) fn new(entry: frame::Entry) -> Small {
        Small {
            entry,
            content: Vec::new(),
            digests: Vec::new(),
            end: None,
        }
    }

    /// Creates the file, writes it, checks END's digest and puts it in place.
    pub(super) fn land(self, root: &Root) -> std::io::Result<()> {
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
    pub(super) id: u64,
    pub(super) files: Mutex<HashMap<u32, Arc<Partial>>>,
    pub(super) arrived: Condvar,
    failed: Mutex<Option<String>>,
    /// The first connection, shut down for reading when another connection fails,
    /// so that its thread stops waiting and reports.
    pub(super) control: TcpStream,
    pub(super) bytes: AtomicU64,
    pub(super) syscalls: Mutex<Syscalls>,
    /// Extra connections joined: a block or an entry may be awaited elsewhere.
    pub(super) joined: AtomicBool,
    /// What watches the session's bytes and entries, until it ends.
    watch: Mutex<Option<Box<dyn Observer>>>,
}

impl Session {
    fn new(control: &TcpStream, watch: Box<dyn Observer>) -> Result<Session> {
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
            watch: Mutex::new(Some(watch)),
        })
    }

    pub(super) fn watching(&self, look: impl FnOnce(&dyn Observer)) {
        if let Some(watch) = &*self.watch.lock().unwrap_or_else(|p| p.into_inner()) {
            look(&**watch);
        }
    }

    fn end_watch(&self) {
        self.watch.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    pub(super) fn fail(&self, reason: &str) {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| reason.to_string());
        self.arrived.notify_all();
        let _ = self.control.shutdown(std::net::Shutdown::Read);
    }

    pub(super) fn received(&self, len: u32) {
        self.bytes.fetch_add(u64::from(len), Ordering::Relaxed);
        self.watching(|w| w.moved(u64::from(len)));
    }

    pub(super) fn joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The file `id`, waiting for its entry if a block outran it on another connection.
    pub(super) fn file(&self, id: u32, wait: Duration) -> Result<Arc<Partial>> {
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

/// The peer closed mid-transfer: curl's exit code 18 (a partial file may be kept).
pub(super) fn peer_closed(message: String) -> Error {
    Error::PeerClosed(message)
}
