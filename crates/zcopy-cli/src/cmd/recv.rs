//! `zcopy recv --listen ADDR`: receives files from `zcopy send`, or raw bytes from
//! `nc` and the seed's Java clients, one thread per connection.
//!
//! Every file is written beside its target and put under its name only when it is
//! complete (framed: every block and the file digest match; raw: the peer closed
//! cleanly), so a failed transfer leaves nothing under the real name (see
//! [`zcopy_wire::partial`] for the partial files, their manifests and resuming).
//! A framed session may span several connections (`send -j N`): the first one
//! carries the entries and the verdicts, the others join it with its number and
//! carry blocks, written at their offsets into the same partial file. Small files
//! are checked in memory on the first connection's thread and created by two
//! landing threads, since creating a file costs more than receiving 4 KiB.
//!
//! Off loopback the framed receiver is authenticated and encrypted by default
//! (`zcopy_wire::tls`): every connection, joiners included, proves the secret before a
//! name is read; without `--secret-file` or `ZCOPY_SECRET` a one-time secret is
//! made and printed with the certificate's fingerprint, as one line for the sender.
//!
//! The framed receiver hashes each block from the buffer it writes from
//! (read-write), or re-reads what it just spliced while it is hot in the page
//! cache (splice): the digest costs no second pass over the file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Map;
use tempfile::NamedTempFile;
use xxhash_rust::xxh3::Xxh3;
use zcopy::engine::direct::AlignedBuf;
use zcopy::{Engine, EngineChoice, Options, Report, Rusage, Syscall, Syscalls, Transfer};
use zcopy_wire::frame::{self, EntryKind, Greeting, Msg, Reader};
use zcopy_wire::partial::{self, Partial, Root};
use zcopy_wire::peer_owner;

use super::parent_dir;
use crate::net::meter::{self, Limiter};
use crate::summary::Summary;
use crate::{net, progress, size, sys};
use zcopy_wire::tls;

/// Receive files from `zcopy send`, or raw bytes (--raw) from nc or the seed's clients
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1 unless told)
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Where to write: a directory (framed), or a file path (raw, or framed with one
    /// file); default: the current directory, or stdout with --raw
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<PathBuf>,
    /// Engine: auto, read-write, splice
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Receive the bytes alone, until the peer closes (nc, the seed's Java clients)
    #[arg(long)]
    raw: bool,
    /// Exit after one transfer, with its status
    #[arg(long)]
    once: bool,
    /// Print one JSON object per transfer on stdout
    #[arg(long)]
    json: bool,
    /// Buffer size of the read-write engine
    #[arg(long, value_parser = size::parse_buffer, default_value = "128KiB")]
    buffer: usize,
    /// End a transfer that makes no progress for this many seconds (0: never)
    #[arg(long, value_name = "S", default_value = "30")]
    timeout: f64,
    /// Receive at most RATE bytes per second (500k, 10M, 1G), over all connections
    /// of a framed session
    #[arg(long, value_name = "RATE", value_parser = meter::parse_rate)]
    limit_rate: Option<u64>,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
    /// Print each file as it is put in place
    #[arg(short, long)]
    verbose: bool,
    /// Senders must prove this secret (the file's first line; or set ZCOPY_SECRET);
    /// the session is then TLS-encrypted. Off loopback a one-time secret is made
    /// when none is given
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Keep the receiver's TLS key and certificate in FILE (PEM; made, mode 0600, if
    /// it does not exist), so that its fingerprint stays the same across restarts
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Accept anyone and receive in clear (prints a warning): off loopback, any
    /// host; on loopback, any local user, and senders that close before their
    /// socket's owner is read (a fast `--raw` client)
    #[arg(long)]
    insecure: bool,
}

/// Where received bytes go.
#[derive(Clone, Debug)]
enum Target {
    /// Framed: each file under its own name in this directory.
    Dir(PathBuf),
    /// Every transfer replaces this one file.
    File(PathBuf),
    /// Raw without `-o`: standard output, one connection at a time.
    Stdout(Arc<Mutex<()>>),
    /// Raw into a device or FIFO (`/dev/null`), written in place: it cannot be
    /// renamed over.
    Device(PathBuf),
}

impl Target {
    fn from_args(args: &Args) -> Result<Target> {
        let Some(path) = &args.output else {
            return Ok(if args.raw {
                Target::Stdout(Arc::default())
            } else {
                Target::Dir(PathBuf::from("."))
            });
        };
        // `-o DIR/` names a directory, made if missing (as `cp -r src dir/` expects one).
        if !args.raw && !path.exists() && path.as_os_str().as_encoded_bytes().ends_with(b"/") {
            std::fs::create_dir(path)
                .with_context(|| format!("cannot create the directory {}", path.display()))?;
        }
        if path.is_dir() {
            if args.raw {
                bail!(
                    "{}: is a directory; raw mode writes one file, give its path",
                    path.display()
                );
            }
            return Ok(Target::Dir(path.clone()));
        }
        if path.exists() && !path.is_file() {
            if !args.raw {
                bail!("{}: not a directory or regular file; framed mode verifies what it writes (use --raw)", path.display());
            }
            return Ok(Target::Device(path.clone()));
        }
        let parent = parent_dir(path);
        if !parent.is_dir() {
            bail!(
                "cannot write {}: directory {} does not exist",
                path.display(),
                parent.display()
            );
        }
        Ok(Target::File(path.clone()))
    }

    fn path_for(&self, name: &str) -> PathBuf {
        match self {
            Target::Dir(dir) => dir.join(name),
            Target::File(path) | Target::Device(path) => path.clone(),
            Target::Stdout(_) => PathBuf::from("-"),
        }
    }
}

/// What a connection handler needs, shared by all of them.
#[derive(Clone)]
struct Job {
    target: Target,
    /// Framed: the output directory, opened once.
    root: Option<Arc<Root>>,
    options: Options,
    raw: bool,
    json: bool,
    quiet: bool,
    verbose: bool,
    progress: bool,
    timeout: Duration,
    limiter: Option<Arc<Limiter>>,
    sessions: Arc<Mutex<HashMap<u64, Weak<Session>>>>,
    /// Framed connections must prove the secret and speak TLS.
    tls: Option<Arc<tls::Receiver>>,
    /// `--insecure`: no look at who owns a loopback peer's socket.
    any_local_user: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let EngineChoice::Only(engine @ (Engine::Mmap | Engine::Sendfile | Engine::CopyFileRange)) =
        args.engine
    {
        bail!("recv moves socket to file: engine {engine} needs a file as source (use read-write or splice)");
    }
    let target = Target::from_args(&args)?;
    let root = match (&target, args.raw) {
        (_, true) => None,
        (Target::Dir(dir), false) => {
            Some(Root::open(dir, None).with_context(|| format!("cannot open {}", dir.display()))?)
        }
        (Target::File(path), false) => {
            let parent = parent_dir(path);
            let name = path
                .file_name()
                .with_context(|| format!("{}: not a file name", path.display()))?;
            Some(
                Root::open(parent, Some(name.as_encoded_bytes().to_vec()))
                    .with_context(|| format!("cannot open {}", parent.display()))?,
            )
        }
        _ => unreachable!("framed targets are directories or files"),
    };
    let job = Job {
        target,
        root: root.map(Arc::new),
        options: Options {
            engine: args.engine,
            buffer: args.buffer,
            ..Options::default()
        },
        raw: args.raw,
        json: args.json,
        quiet: args.quiet,
        verbose: args.verbose,
        progress: args.once && !args.json && !args.quiet,
        timeout: Duration::from_secs_f64(args.timeout.max(0.0)),
        limiter: args.limit_rate.map(|r| Arc::new(Limiter::new(r))),
        sessions: Arc::default(),
        tls: None,
        any_local_user: args.insecure,
    };
    let listener = net::listen(&args.listen)?;
    let local = listener.local_addr().context("listen")?;
    let job = Job {
        tls: secure(&args, local)?.map(Arc::new),
        ..job
    };
    // Partial files that can never resume are removed on SIGINT/SIGTERM; the
    // resumable ones stay, with their manifests.
    sys::block_stop_signals();
    std::thread::spawn(|| {
        let sig = sys::wait_for_stop_signal();
        partial::remove_unresumable();
        meter::clear_line();
        std::process::exit(128 + sig);
    });
    if args.once {
        loop {
            let (stream, peer) = listener.accept().context("accept")?;
            let stream = match job.admit(stream, peer) {
                Ok(stream) => stream,
                // A peer without the secret, or another local user, does not end
                // a `--once` receiver: anyone could otherwise stop it.
                Err(e) => {
                    eprintln!("zcopy: {}", crate::exit::message(&e));
                    continue;
                }
            };
            if !job.raw {
                // Extra connections of this session (`send -j N`) keep arriving.
                let joins = job.clone();
                std::thread::spawn(move || joins.serve(listener));
            }
            let result = job.handle(stream, peer);
            // The TLS pump still holds the BYE that tells the sender all is in place.
            tls::finish_pumps(Duration::from_secs(2));
            return result;
        }
    }
    job.serve(listener);
    Ok(())
}

impl Job {
    fn serve(&self, listener: std::net::TcpListener) {
        for conn in listener.incoming() {
            match conn {
                Ok(stream) => {
                    let job = self.clone();
                    std::thread::spawn(move || {
                        let peer = stream
                            .peer_addr()
                            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                        if let Err(e) = job
                            .admit(stream, peer)
                            .and_then(|stream| job.handle(stream, peer))
                        {
                            eprintln!("zcopy: {}", crate::exit::message(&e));
                        }
                    });
                }
                // EMFILE and friends: say so and keep serving the connections we have.
                Err(e) => eprintln!("zcopy: recv: accept: {e}"),
            }
        }
    }

    /// Socket options; then, when a secret is required, the TLS handshake and the
    /// secret's proof (nothing is read as a name before it). Without a secret, a
    /// loopback peer must be this user or root (`zcopy_wire::peer_owner`).
    fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Result<TcpStream> {
        let tls = self.tls.as_ref().filter(|_| !self.raw);
        // First of all: a peer that sends and closes at once leaves no owner to read.
        if tls.is_none() && !self.any_local_user {
            self.refuse_other_user(&stream, peer)?;
        }
        net::keep_alive(&stream, self.timeout)
            .with_context(|| format!("{peer}: socket options"))?;
        let Some(tls) = tls else {
            return Ok(stream);
        };
        refuse_plain_sender(&stream, peer)?;
        let inner = tls.accept(stream, &peer.to_string())?;
        net::timeouts(&inner, self.timeout).with_context(|| format!("{peer}: socket options"))?;
        if self.verbose {
            eprintln!("{peer}: secret proven; TLS 1.3; {}", tls.record_layer());
        }
        Ok(inner)
    }

    /// Another local user's loopback connection, to a receiver without a secret,
    /// is told why (framed) or cut off (raw) before a byte is read as data.
    fn refuse_other_user(&self, stream: &TcpStream, peer: SocketAddr) -> Result<()> {
        let local = stream
            .local_addr()
            .with_context(|| format!("{peer}: local address"))?;
        let Err(e) = peer_owner::admit(local, peer) else {
            return Ok(());
        };
        if self.raw {
            net::lingering_close(stream, Duration::from_secs(2));
        } else {
            refuse_greeting(stream, &e.to_string());
        }
        Err(crate::exit::Coded {
            code: crate::exit::AUTH,
            message: format!("{peer}: {e}"),
        }
        .into())
    }

    fn handle(&self, stream: TcpStream, peer: SocketAddr) -> Result<()> {
        let started = Instant::now();
        let usage = Rusage::thread();
        let (report, name, path, files) = if self.raw {
            let (report, name, path) = self.receive_raw(&stream, peer)?;
            (report, name, path, None)
        } else {
            match self.receive_session(stream, peer)? {
                Some((report, files)) => {
                    (report, String::new(), self.target.path_for(""), Some(files))
                }
                // A joining connection: its session reports for it.
                None => return Ok(()),
            }
        };
        let summary = Summary {
            report: &report,
            seconds: started.elapsed().as_secs_f64(),
            usage: Rusage::thread().since(&usage),
        };
        if self.json {
            let mut extra = Map::new();
            extra.insert("name".into(), name.into());
            extra.insert("path".into(), path.display().to_string().into());
            extra.insert("peer".into(), peer.to_string().into());
            extra.insert("encrypted".into(), (self.tls.is_some() && !self.raw).into());
            if let Some(tls) = self.tls.as_ref().filter(|_| !self.raw) {
                extra.insert("ktls".into(), tls.record_layer().into());
            }
            if let Some(files) = files {
                extra.insert("files".into(), files.into());
            }
            super::print_json(&summary.json(extra))?;
        } else if !self.quiet {
            match files {
                Some(files) => eprintln!(
                    "received {files} file{} into {} from {peer}: {}",
                    if files == 1 { "" } else { "s" },
                    path.display(),
                    summary.line()
                ),
                None => eprintln!(
                    "received {} from {peer}: {}",
                    path.display(),
                    summary.line()
                ),
            }
        }
        Ok(())
    }

    fn receive_raw(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
    ) -> Result<(zcopy::Report, String, PathBuf)> {
        let what = format!("receiving from {peer}");
        refuse_framed_sender(stream, peer)?;
        if let Target::Stdout(lock) = &self.target {
            let _one_at_a_time = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let stdout = std::io::stdout();
            let mut transfer =
                Transfer::new(stream, &stdout, self.options).context(what.clone())?;
            match progress::run(&mut transfer, None, false) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(super::StdoutClosed.into())
                }
                other => other
                    .map_err(net::engine_error)
                    .with_context(|| format!("{what} failed after {} bytes", transfer.moved()))?,
            }
            return Ok((transfer.report(), String::new(), PathBuf::from("-")));
        }
        let path = self.target.path_for("");
        if let Target::Device(_) = self.target {
            let device = File::options()
                .write(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let report = self.transfer(stream, &device, None, &what)?;
            return Ok((report, String::new(), path));
        }
        let temp = temp_beside(&path)?;
        let report = self.transfer(stream, temp.as_file(), None, &what)?;
        super::open_up(temp.as_file())
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        persist(temp, &path)?;
        Ok((report, String::new(), path))
    }

    /// A framed connection: a new session, or one joining a session (`None`).
    fn receive_session(
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

    fn transfer(
        &self,
        stream: &TcpStream,
        file: &File,
        len: Option<u64>,
        what: &str,
    ) -> Result<zcopy::Report> {
        let options = Options {
            len,
            ..self.options
        };
        let mut transfer = Transfer::new(stream, file, options).context(what.to_string())?;
        progress::run(&mut transfer, len, self.progress)
            .map_err(net::engine_error)
            .with_context(|| {
                format!(
                    "{what} failed after {} bytes; nothing written",
                    transfer.moved()
                )
            })?;
        Ok(transfer.report())
    }
}

const ANY_LOCAL_USER: &str =
    "zcopy: warning: --insecure on loopback: any local user can write here";

/// Decides how this receiver admits senders: a secret (given, or made here off
/// loopback) and TLS, or anyone (loopback; `--insecure`, with a warning).
fn secure(args: &Args, local: SocketAddr) -> Result<Option<tls::Receiver>> {
    let loopback = local.ip().is_loopback();
    if args.raw {
        if args.secret_file.is_some() || args.identity.is_some() {
            return Err(super::Usage("recv --raw takes plain bytes: it has no --secret-file or --identity (drop --raw to authenticate senders)".into()).into());
        }
        if !loopback && !args.insecure {
            return Err(super::Usage(format!("recv --raw on {local} would take bytes from anyone who reaches it, in clear: add --insecure to accept that, or drop --raw (framed send/recv authenticate and encrypt)")).into());
        }
        if !loopback {
            eprintln!("zcopy: warning: recv --raw --insecure on {local}: anyone who reaches it can write, and the bytes cross the network in clear");
        } else if args.insecure {
            eprintln!("{ANY_LOCAL_USER}");
        }
        return Ok(None);
    }
    let (secret, made) = match tls::Secret::given(args.secret_file.as_deref())? {
        Some(secret) => (secret, None),
        None if loopback => {
            if args.insecure {
                eprintln!("{ANY_LOCAL_USER}");
            }
            return Ok(None);
        }
        None if args.insecure => {
            eprintln!("zcopy: warning: recv --insecure on {local}: anyone who reaches it can write into the output directory, and names and bytes cross the network in clear");
            return Ok(None);
        }
        None => {
            let (secret, text) = tls::Secret::random()?;
            (secret, Some(text))
        }
    };
    let receiver = tls::Receiver::new(secret, args.identity.as_deref())?;
    let host = if local.ip().is_unspecified() {
        let name = rustix::system::uname();
        format!("{}:{}", name.nodename().to_string_lossy(), local.port())
    } else {
        local.to_string()
    };
    match made {
        Some(secret) => eprintln!(
            "zcopy: to send here: ZCOPY_SECRET={secret} zcopy send --fingerprint {} PATH... {host}",
            receiver.fingerprint
        ),
        None => eprintln!(
            "zcopy: to send here, with the same secret (ZCOPY_SECRET or --secret-file): zcopy send --fingerprint {} PATH... {host}",
            receiver.fingerprint
        ),
    }
    Ok(Some(receiver))
}

/// A receiver that needs a secret meets a sender without one (its greeting comes
/// where a TLS handshake should): it says so to both sides.
fn refuse_plain_sender(stream: &TcpStream, peer: SocketAddr) -> Result<()> {
    let mut first = [0u8; 1];
    let n = loop {
        match rustix::net::recv(stream, &mut first, rustix::net::RecvFlags::PEEK) {
            Ok((n, _)) => break n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(std::io::Error::from(e)).with_context(|| format!("{peer}: receiving"))
            }
        }
    };
    // 0x16: a TLS handshake record.
    if n == 1 && first[0] != 0x16 {
        refuse_greeting(stream, frame::NEEDS_SECRET);
        return Err(crate::exit::Coded {
            code: crate::exit::AUTH,
            message: format!("{peer}: a sender without the secret; refused, nothing written"),
        }
        .into());
    }
    Ok(())
}

/// Reads a framed sender's greeting and answers it with `reason`, the first and
/// last message of the connection.
fn refuse_greeting(stream: &TcpStream, reason: &str) {
    let mut greeting = [0u8; Greeting::LEN];
    let _ = (&*stream).read_exact(&mut greeting);
    let mut out = Vec::new();
    Msg::Err {
        id: 0,
        reason: reason.into(),
    }
    .encode(&mut out);
    let _ = (&*stream).write_all(&out);
    net::lingering_close(stream, Duration::from_secs(2));
}

/// A raw receiver sees a framed sender's greeting: it says so to both sides
/// instead of writing the protocol's bytes as if they were the file.
fn refuse_framed_sender(stream: &TcpStream, peer: SocketAddr) -> Result<()> {
    let mut first = [0u8; 5];
    let n = loop {
        match rustix::net::recv(
            stream,
            &mut first,
            rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::WAITALL,
        ) {
            Ok((n, _)) => break n,
            Err(rustix::io::Errno::INTR) => {}
            // The transfer itself will meet and report the error.
            Err(_) => return Ok(()),
        }
    };
    if n == first.len() && &first[..4] == frame::MAGIC && first[4] >= 2 {
        let mut out = Vec::new();
        Msg::Err {
            id: 0,
            reason: "this receiver takes raw bytes (recv --raw): add --raw to send, or drop it from recv".into(),
        }
        .encode(&mut out);
        let _ = (&*stream).write_all(&out);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        bail!("{peer}: a framed zcopy sender connected to this --raw receiver (add --raw to send, or drop it from recv); nothing written");
    }
    Ok(())
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
struct Session {
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
        self.meter.add(u64::from(len));
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
        net::lingering_close(self.stream, self.job.timeout.min(Duration::from_secs(5)));
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

    /// The one block of a small file, into memory, checked against its digest.
    fn small_block(&mut self, small: &mut Small, offset: u64, len: u32, hole: bool) -> Result<()> {
        let path = frame::shown(&small.entry.path).into_owned();
        if offset != 0 || Some(u64::from(len)) != small.entry.size || !small.digests.is_empty() {
            bail!("{path}: block at {offset} of {len} bytes is not the file's one block");
        }
        if hole {
            small.content = vec![0; len as usize];
            small.digests.push(frame::zeros_digest(len));
            return Ok(());
        }
        small.content.resize(len as usize, 0);
        let mut got = 0;
        while got < small.content.len() {
            match self.reader.read(&mut small.content[got..]) {
                Ok(0) => {
                    return Err(peer_closed(format!(
                        "{path}: receiving the block at 0 from {}: {}",
                        self.peer,
                        ended_early(got as u64, len)
                    )))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("{path}: receiving from {}", self.peer))
                }
            }
            self.syscalls.count(Syscall::Read);
        }
        let got = xxhash_rust::xxh3::xxh3_128(&small.content);
        let mut sent = [0u8; 16];
        if self.reader.read_exact(&mut sent).is_err() {
            return Err(peer_closed(format!(
                "{path}: the sender closed the connection inside the block at 0"
            )));
        }
        let sent = u128::from_be_bytes(sent);
        if got != sent {
            bail!(
                "{path}: digest mismatch in the block at 0 from {} (sent {sent:032x}, received {got:032x})",
                self.peer
            );
        }
        if let Some(l) = &self.job.limiter {
            l.pace(u64::from(len));
        }
        small.digests.push(got);
        Ok(())
    }

    /// An extra connection of a session: blocks only, until the sender closes it.
    fn blocks_only(&mut self, session: &Session) -> Result<()> {
        while let Some(msg) = self
            .reader
            .next()
            .with_context(|| format!("receiving from {}", self.peer))?
        {
            match msg {
                Msg::Data { id, offset, len } => self.block(session, id, offset, len, false)?,
                Msg::Hole { id, offset, len } => self.block(session, id, offset, len, true)?,
                other => bail!(
                    "receiving from {}: unexpected message {other:?} on a joined connection",
                    self.peer
                ),
            }
        }
        session
            .syscalls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&self.syscalls);
        Ok(())
    }

    /// Receives one block into its file at its offset, hashing it on the way, and
    /// checks it against the digest that follows it.
    fn block(
        &mut self,
        session: &Session,
        id: u32,
        offset: u64,
        len: u32,
        hole: bool,
    ) -> Result<()> {
        let partial = session.file(id, self.job.timeout.max(Duration::from_secs(1)))?;
        let index = partial.check_block(offset, len)?;
        let path = frame::shown(&partial.entry.path).into_owned();
        if hole {
            return Ok(partial.skipped_hole(index, frame::zeros_digest(len), session.joined())?);
        }
        let got = match self.engine {
            Engine::Splice => self.splice_block(&partial.file, offset, len),
            _ => self.read_block(&partial.file, offset, len),
        };
        let what = || format!("{path}: receiving the block at {offset} from {}", self.peer);
        let got = match got {
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(peer_closed(format!("{}: {e}", what())))
            }
            Err(e) => return Err(e).with_context(what),
        };
        let mut sent = [0u8; 16];
        if let Err(e) = self.reader.read_exact(&mut sent) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                return Err(peer_closed(format!(
                    "{path}: the sender closed the connection inside the block at {offset}"
                )));
            }
            return Err(e).with_context(|| format!("{path}: in the block at {offset}"));
        }
        let sent = u128::from_be_bytes(sent);
        if got != sent {
            bail!(
                "{path}: digest mismatch in the block at {offset} from {} (sent {sent:032x}, received {got:032x})",
                self.peer
            );
        }
        session.received(len);
        Ok(partial.verified(index, got, session.joined())?)
    }

    fn read_block(&mut self, file: &File, offset: u64, len: u32) -> std::io::Result<u128> {
        let mut h = Xxh3::new();
        let mut pos = 0u64;
        let cap = self.buf.as_mut_slice().len() as u64;
        while pos < u64::from(len) {
            let want = (u64::from(len) - pos).min(cap) as usize;
            let n = match self.reader.read(&mut self.buf.as_mut_slice()[..want]) {
                Ok(0) => return Err(ended_early(pos, len)),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.syscalls.count(Syscall::Read);
            let bytes = self.buf.filled(n);
            h.update(bytes);
            file.write_all_at(bytes, offset + pos)?;
            self.syscalls.count(Syscall::Write);
            pos += n as u64;
            if let Some(l) = &self.job.limiter {
                l.pace(n as u64);
            }
        }
        Ok(h.digest128())
    }

    /// splice(2) socket → pipe → file at the block's offset; each piece is then read
    /// back while it is hot in the page cache and hashed.
    fn splice_block(&mut self, file: &File, offset: u64, len: u32) -> std::io::Result<u128> {
        use rustix::pipe::{splice, SpliceFlags};
        let mut h = Xxh3::new();
        let len = u64::from(len);
        // What came in with the message header is written from the buffer.
        let head = self.reader.buffered(len as usize).to_vec();
        if !head.is_empty() {
            h.update(&head);
            file.write_all_at(&head, offset)?;
            self.syscalls.count(Syscall::Write);
            self.reader.consume(head.len());
        }
        let mut pos = head.len() as u64;
        let (pr, pw) = self.pipe.as_ref().expect("splice connections have a pipe");
        let chunk = self.buf.as_mut_slice().len() as u64;
        while pos < len {
            let want = (len - pos).min(chunk) as usize;
            let n = match splice(self.stream, None, pw, None, want, SpliceFlags::MOVE) {
                Ok(0) => return Err(ended_early(pos, len as u32)),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "timed out: nothing received",
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            self.syscalls.count(Syscall::Splice);
            let mut off = offset + pos;
            let mut left = n;
            while left > 0 {
                let m = splice(pr, None, file, Some(&mut off), left, SpliceFlags::MOVE)?;
                self.syscalls.count(Syscall::Splice);
                left -= m;
            }
            let mut back = 0;
            while back < n {
                let m = file.read_at(
                    &mut self.buf.as_mut_slice()[back..n],
                    offset + pos + back as u64,
                )?;
                self.syscalls.count(Syscall::Pread);
                if m == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was written",
                    ));
                }
                back += m;
            }
            h.update(self.buf.filled(n));
            pos += n as u64;
            if let Some(l) = &self.job.limiter {
                l.pace(n as u64);
            }
        }
        Ok(h.digest128())
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

fn ended_early(got: u64, len: u32) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("the peer closed after {got} of {len} bytes"),
    )
}

fn temp_beside(path: &Path) -> Result<NamedTempFile> {
    zcopy_wire::partial::temp_beside(path)
        .with_context(|| format!("cannot create a file beside {}", path.display()))
}

fn persist(temp: NamedTempFile, path: &Path) -> Result<()> {
    temp.persist(path)
        .map(drop)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename into {}", path.display()))
}
