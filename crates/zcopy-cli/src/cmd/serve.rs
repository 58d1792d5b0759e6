//! `zcopy serve [DIR]`: an HTTP/1.1 file server whose bodies go out through the
//! engines (sendfile by default), with an event loop per core.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rustix::process::{Resource, Rlimit};
use zcopy::{Engine, EngineChoice};

use crate::flags;
use crate::net;
use zcopy::size;
use zcopy_http::access_log::LogFormat;
use zcopy_http::server::{Config, Listener, Server};
use zcopy_wire::signal;

/// Serve files over HTTP/1.1 with sendfile (GET, HEAD, ranges, conditional requests; PUT with --upload)
///
/// With -v, every request is logged on stderr (method, path, status, bytes, duration; see
/// --log-format); with -q, nothing but errors (no warning such as the one for a signal).
#[derive(clap::Args)]
pub struct Args {
    /// Directory to serve
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1 unless told), or unix:/PATH
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Port to listen on, on --bind or 127.0.0.1 (python's http.server -p; instead of --listen)
    #[arg(short = 'p', long, value_name = "PORT", conflicts_with = "listen")]
    port: Option<u16>,
    /// Address to listen on, with --port or 8080 (0.0.0.0 or :: for every interface)
    #[arg(short = 'b', long, value_name = "ADDR", conflicts_with = "listen")]
    bind: Option<String>,
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
    /// Who may upload: USER:HASH lines, argon2 (--hash-password) or bcrypt (htpasswd -B)
    #[arg(long, value_name = "F", requires = "upload")]
    auth_file: Option<PathBuf>,
    /// Read a password on stdin, print its argon2 hash (as a USER:HASH line for
    /// --auth-file when USER is given) and exit
    #[arg(long, value_name = "USER", num_args = 0..=1, default_missing_value = "")]
    hash_password: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow --upload on an address other than loopback without --auth-file
    #[arg(long)]
    insecure: bool,
    /// Do not send Repr-Digest (the SHA-256 of each file, computed once per version)
    #[arg(long)]
    no_digest: bool,
    /// Cache-Control value sent with every file (e.g. "public, max-age=3600")
    #[arg(long, value_name = "VALUE")]
    cache_control: Option<String>,
    /// List and serve names starting with '.' (and accept uploads to them); part files
    /// and manifests are never served
    #[arg(long)]
    hidden: bool,
    /// Do not serve FILE.br, FILE.zst or FILE.gz for FILE to clients that accept them
    #[arg(long)]
    no_precompressed: bool,
    /// Do not compress text-like files (HTML, CSS, JS, JSON, SVG ...) of 1 KiB to 8 MiB
    /// on the fly for clients that accept zstd or gzip
    #[arg(long)]
    no_compress: bool,
    /// Send every body through the engine, even small ones (auto sends files up to 4 KiB from memory)
    #[arg(long)]
    no_memory_bodies: bool,
    #[command(flatten)]
    say: flags::Verbosity,
    /// Format of the access log that -v writes
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormatArg,
}

/// `--log-format`, as the library's [`LogFormat`].
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    /// `PEER "METHOD TARGET" STATUS BYTES ENGINE DURATION`
    Text,
    /// One JSON object per line (times in ISO 8601).
    Json,
    /// nginx's combined format, which goaccess reads
    Combined,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> LogFormat {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Combined => LogFormat::Combined,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    if let Some(user) = &args.hash_password {
        return hash_password(user);
    }
    if let EngineChoice::Only(Engine::CopyFileRange) = args.engine {
        bail!("serve sends files to sockets: copy-file-range only copies between files");
    }
    if let EngineChoice::Only(Engine::MsgZerocopy) = args.engine {
        // Its completions wake the event loop as EPOLLERR, which means a dead peer there.
        bail!("serve: msg-zerocopy is not supported by the event loop (use sendfile or io-uring)");
    }
    let level = if args.say.verbose() {
        "info"
    } else if args.say.quiet {
        "error"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(crate::color::stderr())
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .init();
    if !args.dir.exists() {
        // `zcopy serve 8000`, python's `http.server 8000`: the number was a port.
        if let Some(port) = args.dir.to_str().filter(|d| d.parse::<u16>().is_ok()) {
            return Err(super::Usage(format!(
                "cannot serve {port}: no such directory (to listen on port {port}: -p {port})"
            ))
            .into());
        }
    }
    let listen = listen_text(&args);
    let root = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot serve {}", args.dir.display()))?;
    if !root.is_dir() {
        bail!("cannot serve {}: not a directory", args.dir.display());
    }
    let uploaders = match &args.auth_file {
        Some(path) => Some(zcopy_http::auth::Credentials::load(path)?),
        None => None,
    };
    raise_open_file_limit();
    // A socket passed by systemd (zcopy-serve.socket) takes the place of --listen.
    let (listener, unix_path) = match zcopy_http::listen_fds::take()? {
        Some(Listener::Tcp(listener)) => {
            upload_allowed(&args, listener.local_addr()?, &root)?;
            eprintln!("listening on {} (from systemd)", listener.local_addr()?);
            (Listener::Tcp(listener), None)
        }
        // systemd made the socket file and removes it: it is not ours to remove.
        Some(Listener::Unix(listener)) => {
            let addr = listener.local_addr()?;
            match addr.as_pathname() {
                Some(path) => eprintln!("listening on unix:{} (from systemd)", path.display()),
                None => eprintln!("listening on an abstract unix socket (from systemd)"),
            }
            (Listener::Unix(listener), None)
        }
        None => match listen.strip_prefix("unix:") {
            Some(path) => {
                let listener = listen_unix(Path::new(path))?;
                (Listener::Unix(listener), Some(PathBuf::from(path)))
            }
            None => {
                upload_allowed(&args, zcopy_wire::net::listen_addr(&listen)?, &root)?;
                (Listener::Tcp(net::listen(&listen)?), None)
            }
        },
    };
    let tls = match (&args.tls_cert, &args.tls_key, &listener) {
        (Some(_), Some(_), Listener::Unix(_)) => {
            bail!("--tls-cert: a unix: socket is served in clear (TLS is for TCP addresses)")
        }
        (Some(cert), Some(key), Listener::Tcp(_)) => Some(zcopy_http::tls_server::load(cert, key)?),
        _ => None,
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut config = Config::new(
        zcopy_http::files::Root::open(root.clone())
            .with_context(|| format!("cannot serve {}", root.display()))?,
    );
    config.engine = args.engine;
    config.max_connections = args.max_connections;
    config.header_timeout = Duration::from_secs(args.header_timeout);
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_upload = args.upload.then_some(args.max_upload);
    config.uploaders = uploaders;
    config.digests = (!args.no_digest).then(zcopy_http::digest::Cache::default);
    config.cache_control = args.cache_control.clone();
    config.hidden = args.hidden;
    config.precompressed = !args.no_precompressed;
    config.compress = !args.no_compress;
    if args.no_memory_bodies {
        config.memory_body_max = 0;
    }
    config.log = args.say.verbose().then_some(args.log_format.into());
    config.tls = tls;
    signal::block_stop_signals();
    let handle = Server {
        config,
        listener,
        workers,
    }
    .spawn()
    .context("cannot start the workers")?;
    let stopper = handle.stopper();
    std::thread::spawn(move || {
        let sig = signal::wait_for_stop_signal();
        tracing::warn!("signal {sig}: finishing responses in flight, then stopping");
        stopper.stop();
    });
    let done = handle.wait().context("worker");
    if let Some(path) = unix_path {
        let _ = std::fs::remove_file(path);
    }
    done?;
    // Every worker is done: the signal thread may still wait; exit from here.
    std::process::exit(0)
}

/// `--hash-password [USER]`: one password from stdin (not echoed when a person
/// types it), its argon2 hash on stdout.
fn hash_password(user: &str) -> Result<()> {
    use rustix::termios::{self, LocalModes, OptionalActions};
    use std::io::BufRead;
    if user.contains(':') {
        return Err(super::Usage(format!(
            "--hash-password {user}: a user name cannot hold ':'"
        ))
        .into());
    }
    let stdin = std::io::stdin();
    let typed = termios::isatty(&stdin)
        .then(|| termios::tcgetattr(&stdin).ok())
        .flatten();
    if let Some(saved) = &typed {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &quiet);
        eprint!("Password: ");
    }
    let mut line = Vec::new();
    let read = stdin.lock().read_until(b'\n', &mut line);
    if let Some(saved) = &typed {
        let _ = termios::tcsetattr(&stdin, OptionalActions::Now, saved);
        eprintln!();
    }
    read.context("--hash-password: cannot read stdin")?;
    let password = line.strip_suffix(b"\n").unwrap_or(&line);
    let password = password.strip_suffix(b"\r").unwrap_or(password);
    if password.is_empty() {
        bail!("--hash-password: no password on stdin");
    }
    let hash = zcopy_http::auth::hash_password(password).context("--hash-password")?;
    if user.is_empty() {
        println!("{hash}");
    } else {
        println!("{user}:{hash}");
    }
    Ok(())
}

/// The address to listen on: `--listen`, or `--bind` and `--port` (each with
/// its default).
fn listen_text(args: &Args) -> String {
    if args.port.is_none() && args.bind.is_none() {
        return args.listen.clone();
    }
    let port = args.port.unwrap_or(8080);
    match args.bind.as_deref().unwrap_or("127.0.0.1") {
        // An IPv6 address takes brackets before its port.
        v6 if v6.contains(':') && !v6.starts_with('[') => format!("[{v6}]:{port}"),
        host => format!("{host}:{port}"),
    }
}

/// Binds a Unix-domain socket at `path`, replacing a socket file left by a server
/// that is gone (nothing answers on it), never any other kind of file.
fn listen_unix(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && std::os::unix::net::UnixStream::connect(path).is_err()
    {
        let _ = std::fs::remove_file(path);
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on unix:{}", path.display()))?;
    eprintln!("listening on unix:{}", path.display());
    Ok(listener)
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
