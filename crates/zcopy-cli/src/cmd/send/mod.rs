//! `zcopy send PATH... HOST:PORT`: files, directories and standard input to
//! `zcopy recv` over the framed protocol (see [`zcopy_wire::frame`]), or one file's
//! bytes alone (`--raw`), as `nc` or the seed's Java clients would send them.
//!
//! Small files are read into one buffer with their headers and digests and leave
//! in large writes, so a tree of many files is not bound by syscalls or round
//! trips. Large files leave block by block through the chosen engine (sendfile by
//! default), each block then hashed while it is still in the page cache; with
//! `-j N` their blocks are spread over N connections. Sources that do not know their
//! size (pipes, `/proc`, `/sys`, devices) are read to their end.

mod raw;
mod session;
mod walk;

use std::ffi::OsString;
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustix::net::SendFlags;
use serde_json::Map;
use zcopy::{Engine, EngineChoice, Report, Rusage};
use zcopy_wire::frame::{self, EntryKind};
use zcopy_wire::observe::Observer;

use crate::cmd::send::session::Sender;
use crate::cmd::send::walk::How;
use crate::net::meter::{self, Meter};
use crate::summary::Summary;
use zcopy::size;
use zcopy_wire::signal;
use zcopy_wire::tls;

/// Files up to this size travel inside the shared write buffer.
const SMALL: u64 = 1 << 20;

/// The shared write buffer is flushed when it holds this much.
const BATCH: usize = 1 << 20;

/// How many small files `--resume` asks about before it waits for the answers.
const RESUME_WINDOW: usize = 256;

/// Files this large to a host that is not this one get 4 streams by default.
const MANY_STREAMS_FROM: u64 = 256 << 20;

/// Send files and directories to `zcopy recv` (framed, verified, resumable), or a
/// file's bytes alone to any TCP peer (--raw)
#[derive(clap::Args)]
pub struct Args {
    /// Files and directories to send (`-`: standard input, with --name), then HOST:PORT
    #[arg(value_name = "PATH... HOST:PORT", required = true)]
    operands: Vec<PathBuf>,
    /// Engine: auto, read-write, mmap, sendfile, splice
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Send the bytes alone: no header, no digest (for nc and the seed's Java programs)
    #[arg(long)]
    raw: bool,
    /// Buffer size of the read-write engine (1KiB is the seed's Client)
    #[arg(long, value_parser = size::parse_buffer, default_value = "128KiB")]
    buffer: usize,
    /// Connections to spread large files over [default: 4 for files of 256 MiB or
    /// more to another host, else 1]
    #[arg(short = 'j', long = "streams", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    streams: Option<u16>,
    /// Ask the receiver what it already holds for every file (large files always
    /// ask): files in place with the same size and mtime are skipped, interrupted
    /// ones get only their missing blocks
    #[arg(long)]
    resume: bool,
    /// Give up connecting after this many seconds
    #[arg(long, value_name = "S", default_value = "10")]
    connect_timeout: f64,
    /// End the transfer when it makes no progress for this many seconds (0: never)
    #[arg(long, value_name = "S", default_value = "30")]
    timeout: f64,
    /// Send at most RATE bytes per second (500k, 10M, 1G), over all streams
    #[arg(long, value_name = "RATE", value_parser = meter::parse_rate)]
    limit_rate: Option<u64>,
    /// The name standard input (`-`) arrives under
    #[arg(long, value_name = "NAME")]
    name: Option<OsString>,
    /// Print one JSON object with the measurements on stdout
    #[arg(long)]
    json: bool,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
    /// Print each entry as it is sent
    #[arg(short, long)]
    verbose: bool,
    /// Prove this secret to the receiver (the file's first line; or set
    /// ZCOPY_SECRET); needs --fingerprint. The session is then TLS-encrypted
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// The receiver's certificate fingerprint (sha256:HEX, from the line `zcopy
    /// recv` printed): any other certificate is refused before a byte is sent
    #[arg(long, value_name = "FP")]
    fingerprint: Option<String>,
    /// Send the set-uid, set-gid and sticky bits too (needs a secret: a receiver
    /// keeps them only for a sender that proved one); without it they are cleared
    #[arg(long)]
    keep_setuid: bool,
}

/// With a secret, the TLS side that pins the receiver; without, plain TCP.
fn secure(args: &Args) -> Result<Option<tls::Sender>> {
    let secret = tls::Secret::given(args.secret_file.as_deref())?;
    let usage = |text: &str| Err(super::Usage(text.to_string()).into());
    match (secret, &args.fingerprint) {
        (None, None) => Ok(None),
        _ if args.raw => usage("send --raw sends plain bytes: it takes no secret or fingerprint (drop --raw, or unset ZCOPY_SECRET)"),
        (Some(secret), Some(fp)) => Ok(Some(tls::Sender::new(secret, fp)?)),
        (Some(_), None) => usage("a secret (ZCOPY_SECRET or --secret-file) needs --fingerprint too: paste the whole line `zcopy recv` printed"),
        (None, Some(_)) => usage("--fingerprint needs the secret too: ZCOPY_SECRET or --secret-file, as `zcopy recv` printed"),
    }
}

/// Connects with the socket options of a transfer; with `secure`, the TLS
/// handshake with the pinned receiver and the secret's proof come first.
fn dial(addr: &str, args: &Args, secure: Option<&tls::Sender>) -> Result<TcpStream> {
    let stream = zcopy_wire::net::connect(addr, secs(args.connect_timeout))?;
    zcopy_wire::net::keep_alive(&stream, secs(args.timeout))
        .with_context(|| format!("{addr}: socket options"))?;
    let Some(secure) = secure else {
        return Ok(stream);
    };
    let inner = secure.connect(stream, addr)?;
    zcopy_wire::net::timeouts(&inner, secs(args.timeout))
        .with_context(|| format!("{addr}: socket options"))?;
    Ok(inner)
}

pub fn run(args: Args) -> Result<()> {
    let Some((addr, paths @ [_, ..])) = args.operands.split_last() else {
        clap::Error::raw(
            clap::error::ErrorKind::WrongNumberOfValues,
            "send needs what to send and where: PATH... HOST:PORT\n",
        )
        .exit();
    };
    let addr = addr
        .to_str()
        .with_context(|| format!("{}: not an address", addr.display()))?
        .to_string();
    let secure = secure(&args)?;
    if args.raw {
        return raw::run_raw(&args, paths, &addr);
    }
    // Ctrl-C clears the progress line; the receiver keeps what it verified.
    signal::block_stop_signals();
    std::thread::spawn(|| {
        let sig = signal::wait_for_stop_signal();
        meter::clear_line();
        eprintln!("zcopy: interrupted; send again to resume where the receiver stopped");
        std::process::exit(128 + sig);
    });
    if args.keep_setuid && secure.is_none() {
        return Err(super::Usage("--keep-setuid needs a secret (ZCOPY_SECRET or --secret-file, and --fingerprint): a receiver keeps those bits only for a sender that proved one".into()).into());
    }
    let mut items = walk::walk(paths, args.name.as_deref())?;
    if !args.keep_setuid {
        for item in &mut items {
            item.entry.mode &= frame::PERMISSION_BITS;
        }
    }
    let started = Instant::now();
    let usage = Rusage::process();
    let total = items
        .iter()
        .map(|i| i.entry.size)
        .try_fold(0u64, |sum, s| s.map(|s| sum + s));
    let largest = items.iter().filter_map(|i| i.entry.size).max().unwrap_or(0);
    let streams = match args.streams {
        Some(n) => usize::from(n),
        None if largest >= MANY_STREAMS_FROM && !zcopy_wire::net::is_loopback(&addr) => 4,
        None => 1,
    };
    let meter = Meter::new(total, items.len() as u64);
    let stream = dial(&addr, &args, secure.as_ref())?;
    if let Some(secure) = secure.as_ref().filter(|_| args.verbose) {
        eprintln!("{addr}: secret proven; TLS 1.3; {}", secure.record_layer());
    }
    let mut sender = Sender::open(
        &args,
        &addr,
        stream,
        streams,
        meter.clone(),
        secure.as_ref(),
    )?;
    let drawing = meter.show(!args.json && !args.quiet);
    let mut index = 0;
    while index < items.len() {
        // --resume asks about small files a window at a time.
        let window = if args.resume {
            items[index..]
                .iter()
                .take(RESUME_WINDOW)
                .take_while(|i| i.how == How::File && i.entry.size.is_some_and(|s| s <= SMALL))
                .count()
        } else {
            0
        };
        let run = window.max(1);
        for (n, item) in items[index..index + run].iter().enumerate() {
            meter.entry((index + n) as u64 + 1, &frame::shown(&item.entry.path));
            if args.verbose {
                eprintln!("{}", frame::shown(&item.entry.path));
            }
        }
        if window > 0 {
            sender.send_window(&items[index..index + window])?;
        } else {
            sender.send(&items[index])?;
        }
        index += run;
    }
    sender.finish()?;
    drop(drawing);
    let summary = Summary {
        report: &sender.report,
        seconds: started.elapsed().as_secs_f64(),
        usage: Rusage::process().since(&usage),
    };
    let files = items
        .iter()
        .filter(|i| i.entry.kind != EntryKind::Dir)
        .count();
    if args.json {
        let mut extra = Map::new();
        extra.insert("files".into(), files.into());
        extra.insert("streams".into(), streams.into());
        extra.insert("peer".into(), addr.clone().into());
        extra.insert("encrypted".into(), secure.is_some().into());
        if let Some(secure) = &secure {
            extra.insert("ktls".into(), secure.record_layer().into());
        }
        if let [one] = &items[..] {
            extra.insert("file".into(), one.source.display().to_string().into());
        }
        super::print_json(&summary.json(extra))?;
    } else if !args.quiet {
        match &items[..] {
            [one] if one.entry.kind == EntryKind::File => {
                eprintln!("sent {}: {}", one.source.display(), summary.line())
            }
            _ => eprintln!(
                "sent {files} file{} to {addr}: {}",
                if files == 1 { "" } else { "s" },
                summary.line()
            ),
        }
    }
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// A timeout as an error whose kind gives curl's exit code 28.
fn timed_out(message: String) -> anyhow::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, message).into()
}

fn empty_report(engine: Engine) -> Report {
    Report {
        engine,
        skipped: Vec::new(),
        bytes: 0,
        elapsed: Duration::ZERO,
        syscalls: Default::default(),
        zerocopy: Default::default(),
        rusage: Rusage::default(),
    }
}

/// Adds one engine run's report to a session's.
fn absorb(total: &mut Report, r: &Report) {
    if r.bytes > 0 {
        total.engine = r.engine;
    }
    if total.skipped.is_empty() {
        total.skipped = r.skipped.clone();
    }
    total.bytes += r.bytes;
    total.elapsed += r.elapsed;
    total.syscalls.add(&r.syscalls);
    total.rusage = total.rusage + r.rusage;
}

/// Opens FILE for reading, with the errors GNU tools give ("cannot open 'x': ...").
pub fn open_source(path: &Path) -> Result<File> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!("{}: is a directory (send it without --raw)", path.display());
    }
    Ok(file)
}

/// `send(2)` of a whole buffer with `flags` (`MSG_MORE` for a header, so it leaves in
/// the same segment as the first bytes of the body).
fn send_all(stream: &TcpStream, mut buf: &[u8], flags: SendFlags) -> std::io::Result<()> {
    while !buf.is_empty() {
        match rustix::net::send(stream, buf, flags) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out: the receiver took nothing for the whole --timeout",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
