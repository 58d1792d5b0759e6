//! `zcopy serve [DIR]`: an HTTP/1.1 file server whose bodies go out through the
//! engines (sendfile by default), with an event loop per core.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rustix::process::{Resource, Rlimit};
use zcopy::{Engine, EngineChoice};

use crate::http::server::{self, Config};
use crate::{net, size, sys};

/// Serve files over HTTP/1.1 with sendfile (GET, HEAD, ranges, conditional requests; PUT with --upload)
#[derive(clap::Args)]
pub struct Args {
    /// Directory to serve
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1 unless told)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Engine for bodies: auto (sendfile), sendfile, splice, mmap, read-write, io-uring
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Event loops (threads); default one per core
    #[arg(long)]
    workers: Option<usize>,
    /// Most connections open at once; more are closed as they arrive
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Seconds to send a whole request head once it has begun
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds an idle keep-alive connection, or a stalled response, is kept
    #[arg(long, default_value_t = 75)]
    idle_timeout: u64,
    /// Accept uploads: PUT /PATH (curl -T FILE URL) stores the body under DIR
    #[arg(long)]
    upload: bool,
    /// The largest upload accepted (413 beyond)
    #[arg(long, value_name = "SIZE", value_parser = size::parse, default_value = "1GiB")]
    max_upload: u64,
    /// Who may upload: USER:ARGON2-HASH lines (HTTP Basic; `argon2 SALT -id -e` makes a hash)
    #[arg(long, value_name = "F", requires = "upload")]
    auth_file: Option<PathBuf>,
    /// Allow --upload on an address other than loopback without --auth-file
    #[arg(long)]
    insecure: bool,
    /// Do not send Repr-Digest (the SHA-256 of each file, computed once per version)
    #[arg(long)]
    no_digest: bool,
    /// Log every request (method, path, status, bytes, duration) on stderr
    #[arg(short = 'v', long)]
    verbose: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let EngineChoice::Only(Engine::CopyFileRange) = args.engine {
        bail!("serve sends files to sockets: copy-file-range only copies between files");
    }
    if let EngineChoice::Only(Engine::MsgZerocopy) = args.engine {
        // Its completions wake the event loop as EPOLLERR, which means a dead peer there.
        bail!("serve: msg-zerocopy is not supported by the event loop (use sendfile or io-uring)");
    }
    let level = if args.verbose { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(crate::color::stderr())
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .init();
    let root = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot serve {}", args.dir.display()))?;
    if !root.is_dir() {
        bail!("cannot serve {}: not a directory", args.dir.display());
    }
    let uploaders = match &args.auth_file {
        Some(path) => Some(crate::http::auth::Credentials::load(path)?),
        None => None,
    };
    raise_open_file_limit();
    // A socket passed by systemd (zcopy-serve.socket) takes the place of --listen.
    let listener = match crate::listen_fds::take()? {
        Some(listener) => {
            upload_allowed(&args, listener.local_addr()?, &root)?;
            eprintln!("listening on {} (from systemd)", listener.local_addr()?);
            listener
        }
        None => {
            upload_allowed(&args, net::listen_addr(&args.listen)?, &root)?;
            net::listen(&args.listen)?
        }
    };
    listener.set_nonblocking(true).context("listener")?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let config = Config {
        root: crate::http::files::Root::open(root.clone())
            .with_context(|| format!("cannot serve {}", root.display()))?,
        engine: args.engine,
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        stop: AtomicBool::new(false),
        open: AtomicUsize::new(0),
        max_upload: args.upload.then_some(args.max_upload),
        uploaders,
        digests: (!args.no_digest).then(crate::http::digest::Cache::default),
    };
    let wake =
        rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).context("eventfd")?;
    sys::block_stop_signals();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| server::run_worker(&listener, rustix::fd::AsFd::as_fd(&wake), &config))
            })
            .collect();
        s.spawn(|| {
            let sig = sys::wait_for_stop_signal();
            tracing::warn!("signal {sig}: finishing responses in flight, then stopping");
            config.stop.store(true, Ordering::Relaxed);
            // Wakes every worker at once (the eventfd stays readable).
            let _ = rustix::io::write(&wake, &1u64.to_ne_bytes());
        });
        for h in handles {
            h.join()
                .expect("a worker does not panic")
                .context("worker")?;
        }
        // Every worker is done: the signal thread may still wait; exit from here.
        std::process::exit(0)
    })
}

/// Refuses `--upload` off loopback without `--auth-file` or `--insecure`: nobody
/// may write where they do not belong.
fn upload_allowed(args: &Args, addr: std::net::SocketAddr, root: &std::path::Path) -> Result<()> {
    if args.upload && !addr.ip().is_loopback() && args.auth_file.is_none() && !args.insecure {
        bail!("refusing --upload on {addr}: anyone who can reach it could write into {}; give --auth-file, bind 127.0.0.1, or say --insecure", root.display());
    }
    Ok(())
}

/// Raises the open-file soft limit to the hard limit, for many idle connections.
fn raise_open_file_limit() {
    let limit = rustix::process::getrlimit(Resource::Nofile);
    let Some(hard) = limit.maximum else { return };
    if limit.current == Some(hard) {
        return;
    }
    let raised = rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    );
    if let Err(e) = raised {
        tracing::warn!(
            "cannot raise the open-file limit to {hard}: {e}; at most {:?} connections",
            limit.current
        );
    }
}
