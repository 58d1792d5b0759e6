//! The receiving side of a framed session, one connection at a time: who is let
//! in ([`Receiver::admit`]), then the session the connection starts or joins
//! ([`Receiver::receive`]).
//!
//! Every file is written beside its target and put under its name only when it is
//! complete (every block and the file digest match), so a failed transfer leaves
//! nothing under the real name (see [`crate::partial`] for the partial files,
//! their manifests and resuming). A session may span several connections (`send
//! -j N`): the first one carries the entries and the verdicts, the others join it
//! with its number and carry blocks, written at their offsets into the same
//! partial file. Small files are checked in memory on the first connection's
//! thread and created by two landing threads, since creating a file costs more
//! than receiving 4 KiB.
//!
//! Each block is hashed from the buffer it is written from (read-write), or
//! re-read while it is hot in the page cache after a splice: the digest costs no
//! second pass over the file.

mod admit;
mod blocks;
mod conn;
mod delete;
mod delta;
mod mirror;
mod session;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use zcopy::limit::Limiter;
use zcopy::{EngineChoice, Options, Report};

use crate::delta::Counts;
use crate::error::{Error, Result};
use crate::frame;
use crate::observe::Observer;
use crate::partial::Root;
use crate::tls;

pub use admit::refuse_framed_sender;
use conn::Conn;
use session::Session;

/// How a receiver receives: plain values, made from a command's flags or by hand.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecvConfig {
    /// The engine that moves socket bytes to files (auto, read-write or splice).
    pub engine: EngineChoice,
    /// The read-write engine's buffer.
    pub buffer: usize,
    /// A connection that makes no progress for this long ends (zero: never).
    pub timeout: Duration,
    /// At most this many bytes per second over all connections of a session.
    pub limit_rate: Option<u64>,
    /// Raw connections: admitted, but not read as frames (`recv --raw`).
    pub raw: bool,
    /// Any local user may connect over loopback (`--insecure`).
    pub any_local_user: bool,
    /// Where the signatures of files built from deltas are kept for their next
    /// delta (`None`: every old version is read again).
    pub signatures: Option<crate::delta::SignatureCache>,
    /// The protocol version greeted with (a lower one speaks as an older
    /// receiver would, for tests of old peers).
    pub protocol: u8,
}

impl Default for RecvConfig {
    fn default() -> RecvConfig {
        RecvConfig {
            engine: EngineChoice::Auto,
            buffer: 128 << 10,
            timeout: Duration::from_secs(30),
            limit_rate: None,
            raw: false,
            any_local_user: false,
            signatures: None,
            protocol: frame::VERSION,
        }
    }
}

/// A receiver: its output directory, its admission rule and the sessions its
/// connections are filling. Shared by every connection's thread.
pub struct Receiver {
    config: RecvConfig,
    /// Framed: the output directory, opened once.
    root: Option<Arc<Root>>,
    options: Options,
    limiter: Option<Limiter>,
    sessions: Mutex<HashMap<u64, Weak<Session>>>,
    /// Framed connections must prove the secret and speak TLS.
    tls: Option<Arc<tls::Receiver>>,
    observer: Arc<dyn Observer>,
    /// The owners of admitted loopback peers' sockets, until their session reads them.
    local_peers: Mutex<HashMap<SocketAddr, u32>>,
}

impl Receiver {
    /// A receiver writing under `root` (`None` for raw connections), admitting
    /// with `tls` when given, telling `observer` what lands.
    pub fn new(
        config: RecvConfig,
        root: Option<Root>,
        tls: Option<Arc<tls::Receiver>>,
        observer: Arc<dyn Observer>,
    ) -> Receiver {
        Receiver {
            options: Options::default()
                .engine(config.engine)
                .buffer(config.buffer),
            limiter: config.limit_rate.map(Limiter::new),
            root: root.map(Arc::new),
            sessions: Mutex::default(),
            tls,
            observer,
            local_peers: Mutex::default(),
            config,
        }
    }

    /// The engine options raw connections are received with.
    pub fn options(&self) -> Options {
        self.options
    }
}

impl Receiver {
    /// A framed connection, admitted: a new session, whose report, number of
    /// files and delta counts it returns, or one joining a session (`None`: its
    /// session reports).
    pub fn receive(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<Option<(Report, u64, Counts)>> {
        let mut conn = Conn::new(self, &stream, peer)?;
        let greeting = match conn.reader.greeting() {
            Ok(g) => g,
            Err(e) => {
                let e = Error::from(e).context(format!("receiving from {peer}: bad greeting"));
                conn.refuse(&e);
                return Err(e);
            }
        };
        if frame::negotiate(self.config.protocol, greeting.version).is_none() {
            let e = Error::Failed(format!(
                "{peer} speaks zcopy protocol {}, this receiver {} to {} (update the sender)",
                greeting.version,
                frame::MIN_VERSION,
                self.config.protocol
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
            Ok(files) => {
                let delta = *session.delta.lock().unwrap_or_else(|p| p.into_inner());
                Ok(Some((conn.report(&session), files, delta)))
            }
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
