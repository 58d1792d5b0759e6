//! `zcopy recv --listen ADDR`: receives files from `zcopy send`, or raw bytes from
//! `nc` and the seed's Java clients, one thread per connection. `zcopy recv
//! [user@]host:PATH...` pulls: it starts the sender over ssh ([`ssh`]).
//!
//! Every file is written beside its target and put under its name only when it is
//! complete (framed: every block and the file digest match, see
//! [`zcopy_wire::recv`]; raw: the peer closed cleanly), so a failed transfer
//! leaves nothing under the real name.
//!
//! Off loopback the framed receiver is authenticated and encrypted by default
//! (`zcopy_wire::tls`): every connection, joiners included, proves the secret before a
//! name is read; without `--secret-file` or `ZCOPY_SECRET` a one-time secret is
//! made and printed with the certificate's fingerprint, as one line for the sender.

mod admit;
mod raw;
mod ssh;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Map;
use zcopy::place::parent_dir;
use zcopy::size;
use zcopy::{Engine, EngineChoice, Rusage};
use zcopy_wire::delta::{Counts, SignatureCache};
use zcopy_wire::observe::Observer;
use zcopy_wire::partial::{self, Root};
use zcopy_wire::recv::{Receiver, RecvConfig};
use zcopy_wire::signal;
use zcopy_wire::tls;

use crate::flags;
use crate::net;
use crate::net::meter::{self, Drawing, Meter};
use crate::summary::{delta_json, delta_words, Summary};
use admit::secure;

/// Receive files from `zcopy send`, or raw bytes (--raw) from nc or the seed's clients
///
/// With -v, each file as it is put in place, and what each sender proved.
#[derive(clap::Args)]
pub struct Args {
    /// Files and directories to pull over ssh ([user@]host:PATH, all from one host)
    #[arg(value_name = "[user@]host:PATH", conflicts_with = "listen")]
    remote: Vec<std::ffi::OsString>,
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1 unless told)
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
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
    #[command(flatten)]
    report: flags::Json,
    /// Buffer size of the read-write engine
    #[arg(long, value_parser = size::parse_buffer, default_value = "128KiB")]
    buffer: usize,
    #[command(flatten)]
    stall: flags::Stall,
    /// Receive at most RATE bytes per second (500k, 10M, 1G), over all connections
    /// of a framed session
    #[arg(long, value_name = "RATE", value_parser = meter::parse_rate)]
    limit_rate: Option<u64>,
    #[command(flatten)]
    say: flags::Verbosity,
    #[command(flatten)]
    shared: flags::Secret,
    /// Keep the receiver's TLS key and certificate in FILE (PEM; made, mode 0600, if
    /// it does not exist), so that its fingerprint stays the same across restarts
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Accept anyone and receive in clear (prints a warning): off loopback, any
    /// host; on loopback, any local user, and senders that close before their
    /// socket's owner is read (a fast `--raw` client)
    #[arg(long)]
    insecure: bool,
    /// Keep no signatures of the files built from deltas (kept, by default, in
    /// $XDG_CACHE_HOME/zcopy/signatures, so that the next delta to an unchanged
    /// file need not read it): every old version is read again
    #[arg(long)]
    no_signature_cache: bool,
    /// Pull: connections the remote sender spreads large files over [default: 4
    /// for files of 256 MiB or more from another host, else 1]
    #[arg(short = 'j', long = "streams", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    streams: Option<u16>,
    #[command(flatten)]
    ssh: flags::Ssh,
    /// Pull: keep the owner, by name (where this receiver is root)
    #[arg(long)]
    owner: bool,
    /// Pull: what the remote sender keeps (a sender decides what it sends)
    #[command(flatten)]
    attributes: flags::Attributes,
    #[command(flatten)]
    protocol: flags::Protocol,
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
    receiver: Arc<Receiver>,
    raw: bool,
    json: bool,
    quiet: bool,
    verbose: bool,
    progress: bool,
    /// `--timeout` for raw connections: no byte moved for this long ends one.
    stall: Option<Duration>,
    /// Framed connections must prove the secret and speak TLS.
    tls: Option<Arc<tls::Receiver>>,
}

/// What recv shows of a session: the names it lands (`--verbose`), the partial
/// files it keeps, and with `--once` on a terminal the session's progress line.
struct Watch {
    verbose: bool,
    progress: bool,
}

impl Observer for Watch {
    fn landed(&self, path: &str) {
        if self.verbose {
            eprintln!("{path}");
        }
    }

    fn kept(&self, note: &str) {
        eprintln!("zcopy: {note}");
    }

    fn warning(&self, text: &str) {
        eprintln!("zcopy: {text}");
    }

    fn session(&self) -> Box<dyn Observer> {
        let meter = Meter::new(None, 0);
        let drawing = meter.show(self.progress);
        Box::new(Shown {
            meter,
            _drawing: drawing,
        })
    }
}

/// A session's meter and the thread that draws it, until the session ends.
struct Shown {
    meter: Arc<Meter>,
    _drawing: Drawing,
}

impl Observer for Shown {
    fn moved(&self, bytes: u64) {
        self.meter.moved(bytes);
    }

    fn entry(&self, index: u64, name: &str) {
        self.meter.entry(index, name);
    }
}

pub fn run(args: Args) -> Result<()> {
    if let EngineChoice::Only(engine @ (Engine::Mmap | Engine::Sendfile | Engine::CopyFileRange)) =
        args.engine
    {
        bail!("recv moves socket to file: engine {engine} needs a file as source (use read-write or splice)");
    }
    if !args.remote.is_empty() {
        return ssh::pull(&args);
    }
    if args.ssh.ssh_serve {
        return ssh::serve(&args);
    }
    let Some(listen) = &args.listen else {
        return Err(super::Usage(
            "recv needs --listen ADDR, or [user@]host:PATH... to pull over ssh".into(),
        )
        .into());
    };
    let (target, root) = output(&args)?;
    let listener = net::listen(listen)?;
    let local = listener.local_addr().context("listen")?;
    let tls = secure(&args, local)?.map(Arc::new);
    let job = Job::new(&args, target, root, tls);
    stop_on_signals();
    if args.once {
        return job.once(listener);
    }
    job.serve(listener);
    Ok(())
}

/// Where received files go, and the framed receiver's root there.
fn output(args: &Args) -> Result<(Target, Option<Root>)> {
    let target = Target::from_args(args)?;
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
    Ok((target, root))
}

/// Partial files that can never resume are removed on SIGINT/SIGTERM; the
/// resumable ones stay, with their manifests.
fn stop_on_signals() {
    signal::block_stop_signals();
    std::thread::spawn(|| {
        let sig = signal::wait_for_stop_signal();
        partial::remove_unresumable();
        meter::clear_line();
        std::process::exit(128 + sig);
    });
}

impl Job {
    fn new(
        args: &Args,
        target: Target,
        root: Option<Root>,
        tls: Option<Arc<tls::Receiver>>,
    ) -> Job {
        let mut config = RecvConfig::default();
        config.engine = args.engine;
        config.buffer = args.buffer;
        config.timeout = Duration::from_secs_f64(args.stall.timeout.max(0.0));
        let stall = Some(config.timeout).filter(|t| !t.is_zero());
        config.limit_rate = args.limit_rate;
        config.raw = args.raw;
        config.any_local_user = args.insecure;
        config.signatures = if args.no_signature_cache {
            None
        } else {
            SignatureCache::users()
        };
        config.protocol = args.protocol.protocol;
        let progress =
            (args.once || !args.remote.is_empty()) && !args.report.json && !args.say.quiet;
        let watch = Watch {
            verbose: args.say.verbose(),
            progress,
        };
        Job {
            target,
            receiver: Arc::new(Receiver::new(config, root, tls.clone(), Arc::new(watch))),
            raw: args.raw,
            json: args.report.json,
            quiet: args.say.quiet,
            verbose: args.say.verbose(),
            progress,
            stall,
            tls,
        }
    }

    /// `--once`: the first admitted connection's session, with the joiners of
    /// `send -j N`, then its status.
    fn once(&self, listener: std::net::TcpListener) -> Result<()> {
        loop {
            let (stream, peer) = listener.accept().context("accept")?;
            let stream = match self.admit(stream, peer) {
                Ok(stream) => stream,
                // A peer without the secret, or another local user, does not end
                // a `--once` receiver: anyone could otherwise stop it.
                Err(e) => {
                    eprintln!("zcopy: {}", crate::exit::message(&e));
                    continue;
                }
            };
            if !self.raw {
                // Extra connections of this session (`send -j N`) keep arriving.
                let joins = self.clone();
                std::thread::spawn(move || joins.serve(listener));
            }
            return self.last(stream, peer);
        }
    }

    /// The session on `stream`, the last of this run: its status once the TLS
    /// pump has passed on the BYE that tells the sender all is in place.
    fn last(&self, stream: TcpStream, peer: SocketAddr) -> Result<()> {
        let result = self.handle(stream, peer);
        tls::finish_pumps(Duration::from_secs(2));
        result
    }
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
    fn handle(&self, stream: TcpStream, peer: SocketAddr) -> Result<()> {
        let started = Instant::now();
        let usage = Rusage::thread();
        let (report, name, path, files, delta) = if self.raw {
            let (report, name, path) = self.receive_raw(&stream, peer)?;
            (report, name, path, None, Counts::default())
        } else {
            match self.receiver.receive(stream, peer)? {
                Some((report, files, delta)) => (
                    report,
                    String::new(),
                    self.target.path_for(""),
                    Some(files),
                    delta,
                ),
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
            if let Some(delta) = delta_json(&delta, true) {
                extra.insert("delta".into(), delta);
            }
            super::print_json(&summary.json(extra))?;
        } else if !self.quiet {
            match files {
                Some(files) => eprintln!(
                    "received {files} file{} into {} from {peer}: {}{}",
                    if files == 1 { "" } else { "s" },
                    path.display(),
                    summary.line(),
                    delta_words(&delta, true)
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
}
