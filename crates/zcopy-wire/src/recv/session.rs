//! A framed session: what its connections share (the first carries the entries
//! and verdicts, in [`super::conn`]; the others join it and carry blocks, in
//! [`super::blocks`]); small files are checked in memory and created by landing
//! threads.

use std::collections::HashMap;
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use zcopy::Syscalls;

use crate::error::{Context, Error, Result};
use crate::frame;
use crate::observe::Observer;
use crate::partial::{Partial, Root};

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
        !entry.ask && Small::small(entry)
    }

    /// Whether the file is received in memory once it is known not to be in place.
    pub(super) fn small(entry: &frame::Entry) -> bool {
        entry
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
        let result = partial.finish(&root.landing, size, digest, Duration::ZERO);
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
    /// What the files received as deltas moved, by how.
    pub(super) delta: Mutex<crate::delta::Counts>,
    /// Extra connections joined: a block or an entry may be awaited elsewhere.
    pub(super) joined: AtomicBool,
    /// What watches the session's bytes and entries, until it ends.
    watch: Mutex<Option<Box<dyn Observer>>>,
}

impl Session {
    pub(super) fn new(control: &TcpStream, watch: Box<dyn Observer>) -> Result<Session> {
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
            delta: Mutex::default(),
            joined: AtomicBool::new(false),
            watch: Mutex::new(Some(watch)),
        })
    }

    pub(super) fn watching(&self, look: impl FnOnce(&dyn Observer)) {
        if let Some(watch) = &*self.watch.lock().unwrap_or_else(|p| p.into_inner()) {
            look(&**watch);
        }
    }

    pub(super) fn end_watch(&self) {
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
