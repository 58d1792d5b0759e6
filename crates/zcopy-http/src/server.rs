//! The server and its event loops: one per worker thread, each with its own epoll
//! set, all accepting from one listening socket (`EPOLLEXCLUSIVE` wakes one of
//! them). [`Server::spawn`] starts them and returns a [`Handle`] that stops them
//! and collects what they did; `zcopy serve` and the bench's serve job both use it.
//!
//! A loop turn reads the clock once ([`Clock::tick`]) and hands each ready
//! connection to its state machine ([`crate::conn`]), then tells epoll what the
//! connection now waits for, only when that changed.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::SocketFlags;
use zcopy::{Rusage, Syscalls};

pub use crate::config::Config;
use crate::conn::Conn;
use crate::context::Context;
use crate::open_files::OpenFiles;
use crate::response::Clock;
use crate::tls_server::Session;
use crate::transport::Transport;

/// A listening socket: TCP, or Unix-domain (`--listen unix:/path`).
pub enum Listener {
    /// A TCP socket.
    Tcp(TcpListener),
    /// A Unix-domain socket.
    Unix(UnixListener),
}

impl Listener {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

/// A server ready to start.
pub struct Server {
    /// What the workers share.
    pub config: Config,
    /// Where connections come from.
    pub listener: Listener,
    /// How many worker threads, each with its own event loop.
    pub workers: usize,
}

/// What the workers did: the syscalls their engines issued for bodies, and the
/// CPU time and context switches of their threads.
#[derive(Default)]
pub struct Totals {
    /// Syscalls the body engines issued.
    pub syscalls: Syscalls,
    /// The worker threads' CPU time and context switches.
    pub rusage: Rusage,
}

struct Shared {
    config: Config,
    listener: Listener,
    /// Set when the server should stop: no new connections, in-flight responses finish.
    stop: AtomicBool,
    /// Connections open across all workers.
    open: AtomicUsize,
    /// Readable once the server stops, waking every worker at once.
    wake: OwnedFd,
}

/// The running server.
pub struct Handle {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<std::io::Result<Totals>>>,
}

/// Stops a running server from another thread (a signal handler thread).
#[derive(Clone)]
pub struct Stopper(Arc<Shared>);

impl Stopper {
    /// No new connections; idle ones close, responses in flight finish.
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::Relaxed);
        // The eventfd stays readable: every worker wakes.
        let _ = rustix::io::write(&self.0.wake, &1u64.to_ne_bytes());
    }
}

impl Server {
    /// Starts the workers.
    pub fn spawn(self) -> std::io::Result<Handle> {
        // Several workers accept from it: one that finds nothing must not block.
        rustix::io::ioctl_fionbio(self.listener.fd(), true)?;
        let wake = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        let workers = self.workers.max(1);
        let shared = Arc::new(Shared {
            config: self.config,
            listener: self.listener,
            stop: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            wake,
        });
        let threads = (0..workers)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("serve-{i}"))
                    .spawn(move || run_worker(&shared))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Handle { shared, threads })
    }
}

impl Handle {
    /// A [`Stopper`] for this server.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shared.clone())
    }

    /// Stops the server and waits for it: see [`Stopper::stop`].
    pub fn stop(self) -> std::io::Result<Totals> {
        self.stopper().stop();
        self.wait()
    }

    /// Waits until every worker is done (after a stop, or on an error).
    pub fn wait(self) -> std::io::Result<Totals> {
        let mut totals = Totals::default();
        for thread in self.threads {
            let done = thread.join().expect("a worker does not panic")?;
            totals.syscalls.add(&done.syscalls);
            totals.rusage = totals.rusage + done.rusage;
        }
        Ok(totals)
    }
}

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;

struct Worker<'a> {
    shared: &'a Shared,
    ep: OwnedFd,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    files: OpenFiles,
    clock: Clock,
    totals: Totals,
    /// Over TLS: file bytes on their way to encryption (any connection's, one at a time).
    tls_buffer: Vec<u8>,
}

/// Runs one worker until the server stops and its connections are done.
fn run_worker(shared: &Shared) -> std::io::Result<Totals> {
    let usage = Rusage::thread();
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        shared.listener.fd(),
        EventData::new_u64(LISTENER),
        EventFlags::IN | EventFlags::EXCLUSIVE,
    )?;
    epoll::add(&ep, &shared.wake, EventData::new_u64(WAKE), EventFlags::IN)?;
    let mut worker = Worker {
        shared,
        ep,
        conns: Vec::new(),
        free: Vec::new(),
        files: OpenFiles::default(),
        clock: Clock::new(),
        totals: Totals::default(),
        tls_buffer: Vec::new(),
    };
    worker.run()?;
    worker.totals.rusage = Rusage::thread().since(&usage);
    Ok(worker.totals)
}

impl Worker<'_> {
    fn run(&mut self) -> std::io::Result<()> {
        let mut events = Vec::with_capacity(256);
        let mut listening = true;
        let mut last_sweep = self.clock.now();
        let timeout = rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        loop {
            events.clear();
            match epoll::wait(&self.ep, spare_capacity(&mut events), Some(&timeout)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            self.clock.tick();
            let stopping = self.shared.stop.load(Ordering::Relaxed);
            if stopping && listening {
                let _ = epoll::delete(&self.ep, self.shared.listener.fd());
                let _ = epoll::delete(&self.ep, &self.shared.wake);
                listening = false;
                // Idle connections close now; those mid-response finish first.
                for slot in 0..self.conns.len() {
                    if self.conns[slot].as_ref().is_some_and(Conn::idle) {
                        self.close(slot);
                    }
                }
            }
            for event in events.drain(..) {
                match event.data.u64() {
                    LISTENER => self.accept_all(),
                    WAKE => {}
                    token => {
                        let flags = event.flags;
                        let readable = flags.intersects(
                            EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR,
                        );
                        self.ready(token as usize, readable, stopping);
                    }
                }
            }
            let now = self.clock.now();
            if now.duration_since(last_sweep) >= Duration::from_secs(1) {
                last_sweep = now;
                for slot in 0..self.conns.len() {
                    if self.conns[slot].as_ref().is_some_and(|c| c.deadline <= now) {
                        self.close(slot);
                    }
                }
            }
            if !listening && self.conns.iter().all(Option::is_none) {
                return Ok(());
            }
        }
    }

    fn ready(&mut self, slot: usize, readable: bool, stopping: bool) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut cx = Context {
            config: &self.shared.config,
            files: &mut self.files,
            clock: &self.clock,
            stopping,
            syscalls: &mut self.totals.syscalls,
            tls_buffer: &mut self.tls_buffer,
        };
        let mut keep = conn.ready(&mut cx, readable);
        if keep {
            let interest = conn.interest();
            if interest != conn.registered {
                conn.registered = interest;
                keep = epoll::modify(
                    &self.ep,
                    &conn.socket,
                    EventData::new_u64(slot as u64),
                    interest,
                )
                .is_ok();
            }
        }
        if !keep {
            self.close(slot);
        }
    }

    fn accept_all(&mut self) {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        loop {
            // accept4 with NONBLOCK: no fcntl per connection.
            let (socket, peer) =
                match rustix::net::acceptfrom_with(self.shared.listener.fd(), flags) {
                    Ok(pair) => pair,
                    Err(Errno::AGAIN) => return,
                    Err(Errno::INTR | Errno::CONNABORTED) => continue,
                    Err(e) => {
                        // EMFILE and friends: keep serving what is open, say why once per burst.
                        tracing::warn!("accept: {e}");
                        return;
                    }
                };
            let peer: Option<SocketAddr> = peer.and_then(|p| SocketAddr::try_from(p).ok());
            let open = &self.shared.open;
            if open.load(Ordering::Relaxed) >= self.shared.config.max_connections {
                let who = peer.map_or_else(|| "unix".to_string(), |p| p.to_string());
                tracing::warn!(
                    "{who}: refused, {} connections open (--max-connections)",
                    self.shared.config.max_connections
                );
                continue;
            }
            if matches!(self.shared.listener, Listener::Tcp(_))
                && rustix::net::sockopt::set_tcp_nodelay(&socket, true).is_err()
            {
                continue;
            }
            let config = &self.shared.config;
            // A TLS handshake has --header-timeout, as a request head does.
            let (tls, wait) = match &config.tls {
                Some(tls) => match Session::new(tls) {
                    Ok(session) => (Transport::Tls(Box::new(session)), config.header_timeout),
                    Err(e) => {
                        tracing::warn!("TLS: {e}");
                        continue;
                    }
                },
                None => (Transport::Plain, config.idle_timeout),
            };
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let conn = Conn::new(socket, peer, self.clock.now() + wait, tls);
            if epoll::add(
                &self.ep,
                &conn.socket,
                EventData::new_u64(slot as u64),
                conn.registered,
            )
            .is_err()
            {
                self.free.push(slot);
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            self.conns[slot] = Some(conn);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns[slot].take() {
            let _ = epoll::delete(&self.ep, &conn.socket);
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            self.free.push(slot);
        }
    }
}
