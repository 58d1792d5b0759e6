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

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustix::net::SendFlags;
use serde_json::Map;
use xxhash_rust::xxh3::xxh3_128;
use zcopy::engine::direct::AlignedBuf;
use zcopy::{Engine, EngineChoice, Options, Report, Rusage, Status, Syscall, Transfer};
use zcopy_wire::frame::{self, Entry, EntryKind, Greeting, Have, Msg, Reader};
use zcopy_wire::partial::hash_range;

use crate::net::meter::{self, Limiter, Meter};
use crate::summary::Summary;
use crate::{exit, net, progress, size, sys};
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
    let stream = net::connect(addr, secs(args.connect_timeout))?;
    net::keep_alive(&stream, secs(args.timeout))
        .with_context(|| format!("{addr}: socket options"))?;
    let Some(secure) = secure else {
        return Ok(stream);
    };
    let inner = secure.connect(stream, addr)?;
    net::timeouts(&inner, secs(args.timeout)).with_context(|| format!("{addr}: socket options"))?;
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
        return run_raw(&args, paths, &addr);
    }
    // Ctrl-C clears the progress line; the receiver keeps what it verified.
    sys::block_stop_signals();
    std::thread::spawn(|| {
        let sig = sys::wait_for_stop_signal();
        meter::clear_line();
        eprintln!("zcopy: interrupted; send again to resume where the receiver stopped");
        std::process::exit(128 + sig);
    });
    if args.keep_setuid && secure.is_none() {
        return Err(super::Usage("--keep-setuid needs a secret (ZCOPY_SECRET or --secret-file, and --fingerprint): a receiver keeps those bits only for a sender that proved one".into()).into());
    }
    let mut items = walk(paths, args.name.as_deref())?;
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
        None if largest >= MANY_STREAMS_FROM && !is_loopback(&addr) => 4,
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

fn is_loopback(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| a.ip().is_loopback())
}

/// One entry to send: where its bytes come from and what the receiver is told.
struct Item {
    source: PathBuf,
    how: How,
    entry: Entry,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// A regular file whose size can be trusted.
    File,
    /// A source read to its end: a pipe, standard input, a device, a file on a
    /// pseudo file system that reports a size it does not have (`/proc`, `/sys`).
    Stream,
    /// A directory or a symlink: the entry is all there is.
    Entry,
}

/// Lists what `paths` send, depth first, directories before their content. A
/// directory's entries are named under its own name (`send dir` makes `OUT/dir/…`).
fn walk(paths: &[PathBuf], stdin_name: Option<&OsStr>) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut pseudo = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let name = stdin_name.context("-: standard input needs --name NAME")?;
            frame::check_path(name.as_bytes())
                .with_context(|| format!("--name {}", name.to_string_lossy()))?;
            items.push(Item {
                source: path.clone(),
                how: How::Stream,
                entry: entry(
                    name.as_bytes().to_vec(),
                    EntryKind::File,
                    0o644,
                    (0, 0),
                    None,
                ),
            });
            continue;
        }
        // Operands are followed if they are symlinks, as scp and cp -r do.
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        let name = match path.file_name() {
            Some(n) => n.to_owned(),
            None => std::fs::canonicalize(path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_owned()))
                .with_context(|| format!("{}: has no name to send under", path.display()))?,
        };
        add(&mut items, &mut pseudo, path, name.into_vec(), &meta, true)?;
    }
    for (id, item) in items.iter_mut().enumerate() {
        item.entry.id = id as u32 + 1;
    }
    Ok(items)
}

fn add(
    items: &mut Vec<Item>,
    pseudo: &mut Vec<(u64, bool)>,
    path: &Path,
    name: Vec<u8>,
    meta: &std::fs::Metadata,
    operand: bool,
) -> Result<()> {
    let mode = meta.permissions().mode() & 0o7777;
    let mtime = (meta.mtime(), meta.mtime_nsec() as u32);
    let ft = meta.file_type();
    if ft.is_dir() {
        items.push(Item {
            source: path.to_path_buf(),
            how: How::Entry,
            entry: entry(name.clone(), EntryKind::Dir, mode, mtime, None),
        });
        let mut children: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot read {}", path.display()))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let child_path = child.path();
            let child_name = [&name[..], b"/", child.file_name().as_bytes()].concat();
            let meta = std::fs::symlink_metadata(&child_path)
                .with_context(|| format!("cannot read {}", child_path.display()))?;
            add(items, pseudo, &child_path, child_name, &meta, false)?;
        }
    } else if ft.is_symlink() {
        let target =
            std::fs::read_link(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut e = entry(name, EntryKind::Symlink, mode, mtime, None);
        e.target = target.into_os_string().into_vec();
        items.push(Item {
            source: path.to_path_buf(),
            how: How::Entry,
            entry: e,
        });
    } else if ft.is_file() {
        let lies = meta.len() == 0 || on_pseudo_fs(pseudo, path, meta.dev());
        let size = (!lies).then_some(meta.len());
        items.push(Item {
            source: path.to_path_buf(),
            how: if lies { How::Stream } else { How::File },
            entry: entry(name, EntryKind::File, mode, mtime, size),
        });
    } else if operand {
        // A FIFO or a device named on the command line is read to its end.
        items.push(Item {
            source: path.to_path_buf(),
            how: How::Stream,
            entry: entry(name, EntryKind::File, 0o644, mtime, None),
        });
    } else {
        eprintln!(
            "zcopy: {}: skipped: not a file, directory or symlink",
            path.display()
        );
    }
    frame::check_path(items.last().map_or(&[][..], |i| &i.entry.path))
        .with_context(|| format!("cannot send {}", path.display()))?;
    Ok(())
}

fn entry(path: Vec<u8>, kind: EntryKind, mode: u32, mtime: (i64, u32), size: Option<u64>) -> Entry {
    Entry {
        id: 0,
        kind,
        mode,
        mtime,
        size,
        block: frame::BLOCK,
        ask: false,
        complete_ok: false,
        path,
        target: Vec::new(),
    }
}

/// Whether the file system of device `dev` (first met at `path`) makes up file
/// sizes: `/proc` says 0, `/sys` 4096, whatever the content.
fn on_pseudo_fs(known: &mut Vec<(u64, bool)>, path: &Path, dev: u64) -> bool {
    if let Some(&(_, pseudo)) = known.iter().find(|(d, _)| *d == dev) {
        return pseudo;
    }
    const PSEUDO: [u64; 11] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0x6367_7270, // cgroup2
        0x0027_e0eb, // cgroup
        0x6265_6570, // configfs
        0xcafe_4a11, // bpf
        0xde5e_81e4, // efivarfs
        0x6165_676c, // pstore
    ];
    let pseudo = rustix::fs::statfs(path).is_ok_and(|s| PSEUDO.contains(&(s.f_type as u64)));
    known.push((dev, pseudo));
    pseudo
}

/// What the control connection's reading thread hears from the receiver.
enum Heard {
    Have(u32, Have),
    Bye,
    Refused(String),
    Closed(String),
}

/// A framed session: the control connection, its reader thread, the extra
/// connections of `-j N`, and the write buffer small entries share.
struct Sender<'a> {
    args: &'a Args,
    addr: &'a str,
    stream: TcpStream,
    extra: Vec<TcpStream>,
    streams: usize,
    session: u64,
    batch: Vec<u8>,
    heard: mpsc::Receiver<Heard>,
    meter: Arc<Meter>,
    limiter: Option<Limiter>,
    /// The TLS side every connection of the session goes through, if any.
    secure: Option<&'a tls::Sender>,
    report: Report,
    buf: AlignedBuf,
    timeout: Duration,
}

impl<'a> Sender<'a> {
    fn open(
        args: &'a Args,
        addr: &'a str,
        stream: TcpStream,
        streams: usize,
        meter: Arc<Meter>,
        secure: Option<&'a tls::Sender>,
    ) -> Result<Sender<'a>> {
        let timeout = secs(args.timeout);
        let greeting = greet(&stream, addr, 0, timeout)?;
        let (tx, heard) = mpsc::channel();
        let mut reader = Reader::new(stream.try_clone().context("socket")?);
        std::thread::spawn(move || listen(&mut reader, &tx));
        Ok(Sender {
            args,
            addr,
            stream,
            extra: Vec::new(),
            streams: if greeting.caps & frame::CAP_STREAMS != 0 {
                streams
            } else {
                1
            },
            session: greeting.session,
            batch: Vec::with_capacity(BATCH + (64 << 10)),
            heard,
            meter,
            limiter: args.limit_rate.map(Limiter::new),
            secure,
            report: Report {
                engine: Engine::ReadWrite,
                skipped: Vec::new(),
                bytes: 0,
                elapsed: Duration::ZERO,
                syscalls: Default::default(),
                zerocopy: Default::default(),
                rusage: Rusage::default(),
            },
            buf: AlignedBuf::new(256 << 10, 4096),
            timeout,
        })
    }

    fn send(&mut self, item: &Item) -> Result<()> {
        let mut entry = item.entry.clone();
        match item.how {
            How::Entry => {
                Msg::File(entry).encode(&mut self.batch);
                if self.batch.len() >= BATCH {
                    self.flush(false)?;
                }
                Ok(())
            }
            How::Stream => self.send_stream(item, entry),
            How::File => {
                let size = entry.size.expect("regular files have a size");
                entry.ask = self.args.resume || size > u64::from(entry.block);
                entry.complete_ok = self.args.resume;
                let file = File::open(&item.source)
                    .with_context(|| format!("cannot open {}", item.source.display()))?;
                if size <= SMALL && !entry.ask {
                    self.send_small(item, entry, &file, size)
                } else {
                    self.send_large(item, entry, &file, size)
                }
            }
        }
    }

    /// `--resume` for a run of small files: their entries leave together, each
    /// asking; then the answers are read in order and only the files not already in
    /// place are sent. One round trip per window instead of one per file.
    fn send_window(&mut self, window: &[Item]) -> Result<()> {
        for item in window {
            let mut entry = item.entry.clone();
            entry.ask = true;
            entry.complete_ok = true;
            Msg::File(entry).encode(&mut self.batch);
        }
        self.flush(false)?;
        let mut missing = Vec::new();
        for item in window {
            match self.await_have(item.entry.id, &frame::shown(&item.entry.path))? {
                Have::Complete => self.meter.add(item.entry.size.unwrap_or(0)),
                _ => missing.push(item),
            }
        }
        for item in missing {
            let size = item.entry.size.expect("regular files have a size");
            let file = File::open(&item.source)
                .with_context(|| format!("cannot open {}", item.source.display()))?;
            self.small_content(item, item.entry.id, &file, size)?;
        }
        Ok(())
    }

    /// A small file: header, content, digest and END into the shared buffer.
    fn send_small(&mut self, item: &Item, entry: Entry, file: &File, size: u64) -> Result<()> {
        let id = entry.id;
        Msg::File(entry).encode(&mut self.batch);
        self.small_content(item, id, file, size)
    }

    /// A small file's DATA, content, digest and END into the shared buffer.
    fn small_content(&mut self, item: &Item, id: u32, mut file: &File, size: u64) -> Result<()> {
        Msg::Data {
            id,
            offset: 0,
            len: size as u32,
        }
        .encode(&mut self.batch);
        let start = self.batch.len();
        self.batch.resize(start + size as usize, 0);
        let mut got = 0;
        while got < size as usize {
            match file.read(&mut self.batch[start + got..]) {
                Ok(0) => bail!(
                    "{}: the file shrank to {got} bytes while it was sent",
                    item.source.display()
                ),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", item.source.display()))
                }
            }
            self.report.syscalls.count(Syscall::Read);
        }
        let digest = xxh3_128(&self.batch[start..]);
        self.batch.extend_from_slice(&digest.to_be_bytes());
        Msg::End {
            id,
            size,
            digest: frame::file_digest(&[digest]),
        }
        .encode(&mut self.batch);
        self.report.bytes += size;
        self.meter.add(size);
        if self.batch.len() >= BATCH {
            self.flush(false)?;
        }
        Ok(())
    }

    /// A source read to its end, block by block.
    fn send_stream(&mut self, item: &Item, entry: Entry) -> Result<()> {
        let id = entry.id;
        let block = entry.block as usize;
        let mut source: Box<dyn Read> = if item.source.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                File::open(&item.source)
                    .with_context(|| format!("cannot open {}", item.source.display()))?,
            )
        };
        Msg::File(entry).encode(&mut self.batch);
        // A slow source may take long to fill a block: the receiver learns of the
        // file now (blocks of unknown-size sources are full but for the last).
        self.flush(false)?;
        let mut buf = AlignedBuf::new(block, 4096);
        let mut digests = Vec::new();
        let mut size = 0u64;
        loop {
            let mut got = 0;
            while got < block {
                match source.read(&mut buf.as_mut_slice()[got..block]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot read {}", item.source.display()))
                    }
                }
                self.report.syscalls.count(Syscall::Read);
            }
            if got == 0 {
                break;
            }
            let bytes = buf.filled(got);
            let digest = xxh3_128(bytes);
            Msg::Data {
                id,
                offset: size,
                len: got as u32,
            }
            .encode(&mut self.batch);
            self.flush(true)?;
            let sent = send_all(&self.stream, bytes, SendFlags::MORE)
                .and_then(|()| send_all(&self.stream, &digest.to_be_bytes(), SendFlags::empty()));
            if let Err(e) = sent {
                return Err(self.why(e.into(), &frame::shown(&item.entry.path)));
            }
            self.report.syscalls.count(Syscall::Write);
            digests.push(digest);
            size += got as u64;
            self.report.bytes += got as u64;
            self.meter.add(got as u64);
            if let Some(l) = &self.limiter {
                l.pace(got as u64);
            }
            if got < block {
                break;
            }
        }
        Msg::End {
            id,
            size,
            digest: frame::file_digest(&digests),
        }
        .encode(&mut self.batch);
        Ok(())
    }

    /// A large file: asks what the receiver holds, then sends the missing blocks
    /// through the engine (on `-j N` connections at once), holes as HOLE.
    fn send_large(&mut self, item: &Item, entry: Entry, file: &File, size: u64) -> Result<()> {
        let (id, block, ask) = (entry.id, u64::from(entry.block), entry.ask);
        let path = entry.path.clone();
        Msg::File(entry).encode(&mut self.batch);
        self.flush(false)?;
        let have = if ask {
            self.await_have(id, &frame::shown(&path))?
        } else {
            Have::Nothing
        };
        if have == Have::Complete {
            self.meter.add(size);
            return Ok(());
        }
        let nblocks = size.div_ceil(block) as usize;
        let holes = if zcopy::engine::seek_data::has_holes(file).unwrap_or(false) {
            zcopy::engine::seek_data::data_segments(file, size).ok()
        } else {
            None
        };
        let digests = Mutex::new(vec![0u128; nblocks]);
        // Blocks the receiver holds are hashed here for the file digest, not sent.
        let mut todo = Vec::new();
        for i in 0..nblocks {
            if have.holds(i) {
                let (offset, len) = (i as u64 * block, block.min(size - i as u64 * block));
                let d = hash_range(file, offset, len, &mut self.buf)
                    .with_context(|| format!("cannot read {}", item.source.display()))?;
                digests.lock().unwrap_or_else(|p| p.into_inner())[i] = d;
                self.meter.add(len);
            } else {
                todo.push(i);
            }
        }
        let streams = self.streams.min(todo.len()).max(1);
        if streams > 1 {
            self.join_streams(streams)?;
        }
        let next = AtomicUsize::new(0);
        let options = Options {
            engine: self.args.engine,
            buffer: self.args.buffer,
            ..Options::default()
        };
        let limiter = self.limiter.as_ref();
        let meter = &self.meter;
        let conns: Vec<&TcpStream> = std::iter::once(&self.stream)
            .chain(self.extra.iter())
            .take(streams)
            .collect();
        // One stream: a thread hashes the blocks ahead of sendfile, on the other core.
        let (ahead_tx, ahead_rx) = std::sync::mpsc::sync_channel::<std::io::Result<u128>>(4);
        let mut ahead = (streams == 1).then_some(ahead_rx);
        let results: Vec<Result<Report>> = std::thread::scope(|s| {
            if ahead.is_some() {
                let (todo, holes) = (&todo, &holes);
                s.spawn(move || {
                    let mut buf = AlignedBuf::new(256 << 10, 4096);
                    for &i in todo {
                        let offset = i as u64 * block;
                        let len = block.min(size - offset);
                        if !in_hole(holes, offset, len)
                            && ahead_tx
                                .send(hash_range(file, offset, len, &mut buf))
                                .is_err()
                        {
                            break;
                        }
                    }
                });
            }
            let workers: Vec<_> = conns
                .iter()
                .map(|&conn| {
                    let (next, todo, digests, holes) = (&next, &todo, &digests, &holes);
                    let ahead = ahead.take();
                    s.spawn(move || {
                        let mut buf = AlignedBuf::new(256 << 10, 4096);
                        let mut digest = |offset, len| match &ahead {
                            Some(rx) => rx.recv().unwrap_or_else(|_| {
                                Err(std::io::Error::other("the hashing thread stopped"))
                            }),
                            None => hash_range(file, offset, len, &mut buf),
                        };
                        let mut report: Option<Report> = None;
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&i) = todo.get(k) else { break };
                            let offset = i as u64 * block;
                            let len = block.min(size - offset);
                            let hole = in_hole(holes, offset, len);
                            let (d, r) = send_block(
                                conn,
                                file,
                                id,
                                offset,
                                len,
                                hole,
                                options,
                                &mut digest,
                                limiter,
                                meter,
                            )?;
                            digests.lock().unwrap_or_else(|p| p.into_inner())[i] = d;
                            if let Some(r) = r {
                                match &mut report {
                                    Some(total) => absorb(total, &r),
                                    None => report = Some(r),
                                }
                            }
                        }
                        Ok(report.unwrap_or_else(|| empty_report(Engine::ReadWrite)))
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("sending threads do not panic"))
                .collect()
        });
        for r in results {
            match r {
                Ok(r) => absorb(&mut self.report, &r),
                Err(e) => return Err(self.why(e, &frame::shown(&path))),
            }
        }
        let digests = digests.into_inner().unwrap_or_else(|p| p.into_inner());
        Msg::End {
            id,
            size,
            digest: frame::file_digest(&digests),
        }
        .encode(&mut self.batch);
        Ok(())
    }

    /// Opens the extra connections of `-j N` (once), each joining this session.
    fn join_streams(&mut self, streams: usize) -> Result<()> {
        while self.extra.len() + 1 < streams {
            let stream = dial(self.addr, self.args, self.secure)?;
            greet(&stream, self.addr, self.session, self.timeout)?;
            self.extra.push(stream);
        }
        Ok(())
    }

    fn await_have(&mut self, id: u32, path: &str) -> Result<Have> {
        match self
            .heard
            .recv_timeout(self.timeout.max(Duration::from_secs(1)))
        {
            Ok(Heard::Have(got, have)) if got == id => Ok(have),
            Ok(Heard::Refused(reason)) => bail!("{}: {reason}", self.addr),
            Ok(Heard::Closed(why)) => bail!("{}: {why} before answering for {path}", self.addr),
            Ok(_) => bail!("{}: an answer out of order for {path}", self.addr),
            Err(_) => Err(timed_out(format!(
                "{}: timed out: no answer about {path} within {} s",
                self.addr,
                self.timeout.as_secs_f64()
            ))),
        }
    }

    /// Writes the shared buffer out (`more`: more bytes follow at once).
    fn flush(&mut self, more: bool) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let flags = if more {
            SendFlags::MORE
        } else {
            SendFlags::empty()
        };
        if let Err(e) = send_all(&self.stream, &self.batch, flags) {
            return Err(self.why(e.into(), "the entries"));
        }
        self.report.syscalls.count(Syscall::Write);
        if let Some(l) = &self.limiter {
            l.pace(self.batch.len() as u64);
        }
        self.batch.clear();
        Ok(())
    }

    /// DONE, then waits for the receiver to confirm everything is in place.
    fn finish(&mut self) -> Result<()> {
        Msg::Done.encode(&mut self.batch);
        self.flush(false)?;
        for s in &self.extra {
            let _ = s.shutdown(Shutdown::Write);
        }
        match self
            .heard
            .recv_timeout(self.timeout.max(Duration::from_secs(1)))
        {
            Ok(Heard::Bye) => {
                let _ = self.stream.shutdown(Shutdown::Both);
                Ok(())
            }
            Ok(Heard::Refused(reason)) => bail!("{}: {reason}", self.addr),
            Ok(Heard::Closed(why)) => bail!("{}: {why} before confirming the transfer", self.addr),
            Ok(Heard::Have(..)) => bail!("{}: an answer out of order", self.addr),
            Err(_) => Err(timed_out(format!(
                "{}: timed out: no confirmation within {} s",
                self.addr,
                self.timeout.as_secs_f64()
            ))),
        }
    }

    /// The error to print when sending failed: the receiver's own reason if it
    /// sent one (disk full, permission denied…), not the broken pipe it caused.
    fn why(&self, e: anyhow::Error, what: &str) -> anyhow::Error {
        let wait = Duration::from_secs(2).min(self.timeout.max(Duration::from_millis(100)));
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.heard.recv_timeout(left) {
                Ok(Heard::Refused(reason)) => return anyhow!("{}: {reason}", self.addr),
                Ok(Heard::Closed(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        e.context(format!("sending {what} to {}", self.addr))
    }
}

/// Sends a greeting and reads the answer; explains a peer that does not speak
/// the protocol.
fn greet(stream: &TcpStream, addr: &str, session: u64, timeout: Duration) -> Result<Greeting> {
    let hello = Greeting {
        version: frame::VERSION,
        caps: frame::CAPS,
        session,
    };
    send_all(stream, &hello.encode(), SendFlags::empty())
        .with_context(|| format!("sending to {addr}"))?;
    let mut reader = Reader::new(stream);
    match reader.greeting_or_refusal() {
        Ok(Ok(g)) if g.version >= frame::VERSION => Ok(g),
        Ok(Ok(g)) => bail!("{addr} speaks zcopy protocol {}, this sender {} (update the receiver)", g.version, frame::VERSION),
        Ok(Err(reason)) if reason == frame::NEEDS_SECRET => Err(exit::Coded {
            code: exit::AUTH,
            message: format!("{addr}: {reason}"),
        }
        .into()),
        Ok(Err(reason)) => bail!("{addr}: {reason}"),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(timed_out(format!(
            "{addr}: no answer to the zcopy greeting within {} s: is it nc or `zcopy recv --raw`? (then add --raw)",
            timeout.as_secs_f64()
        ))),
        Err(e) => Err(e).with_context(|| format!("{addr}: not a zcopy receiver? (for nc or `recv --raw`, add --raw)")),
    }
}

/// The control connection's reader: forwards what the receiver says; on ERR,
/// shuts the socket so a blocked send returns at once.
fn listen(reader: &mut Reader<TcpStream>, tx: &mpsc::Sender<Heard>) {
    loop {
        let heard = match reader.next() {
            Ok(Some(Msg::Have { id, have })) => Heard::Have(id, have),
            Ok(Some(Msg::Ok { .. })) => continue,
            Ok(Some(Msg::Bye)) => Heard::Bye,
            Ok(Some(Msg::Err { reason, .. })) => {
                let _ = tx.send(Heard::Refused(reason));
                let _ = reader.get_ref().shutdown(Shutdown::Both);
                return;
            }
            Ok(Some(other)) => Heard::Closed(format!("sent an unexpected {other:?}")),
            Ok(None) => Heard::Closed("closed the connection".into()),
            // Silence from the receiver while we send is normal; our sends time out.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => Heard::Closed(e.to_string()),
        };
        let last = !matches!(heard, Heard::Have(..));
        if tx.send(heard).is_err() || last {
            return;
        }
    }
}

/// Whether the block at `offset` lies wholly in a hole of a sparse file.
fn in_hole(holes: &Option<Vec<std::ops::Range<u64>>>, offset: u64, len: u64) -> bool {
    holes.as_ref().is_some_and(|data| {
        !data
            .iter()
            .any(|d| d.start < offset + len && d.end > offset)
    })
}

/// One block on one connection: DATA, the bytes through the engine, then their
/// XXH3-128 (from `digest`: hashed ahead by another thread, or read back from the
/// page cache). A hole goes as HOLE.
#[allow(clippy::too_many_arguments)]
fn send_block(
    conn: &TcpStream,
    file: &File,
    id: u32,
    offset: u64,
    len: u64,
    hole: bool,
    options: Options,
    digest: &mut dyn FnMut(u64, u64) -> std::io::Result<u128>,
    limiter: Option<&Limiter>,
    meter: &Meter,
) -> Result<(u128, Option<Report>)> {
    let mut head = Vec::with_capacity(32);
    if hole {
        Msg::Hole {
            id,
            offset,
            len: len as u32,
        }
        .encode(&mut head);
        send_all(conn, &head, SendFlags::empty())?;
        meter.add(len);
        return Ok((frame::zeros_digest(len as u32), None));
    }
    Msg::Data {
        id,
        offset,
        len: len as u32,
    }
    .encode(&mut head);
    send_all(conn, &head, SendFlags::MORE)?;
    let options = Options {
        offset,
        len: Some(len),
        ..options
    };
    let mut transfer = Transfer::new(file, conn, options)?;
    let step = limiter.map_or(16 << 20, Limiter::chunk);
    loop {
        let before = transfer.moved();
        let status = transfer.run_some(step);
        let moved = transfer.moved() - before;
        meter.add(moved);
        if let Some(l) = limiter {
            l.pace(moved);
        }
        match status.map_err(net::engine_error)? {
            Status::Done => break,
            Status::More => {}
            Status::WouldBlock => {
                return Err(timed_out(
                    "timed out: the receiver took nothing for the whole --timeout".into(),
                ))
            }
        }
    }
    let digest = digest(offset, len)?;
    send_all(conn, &digest.to_be_bytes(), SendFlags::empty())?;
    Ok((digest, Some(transfer.report())))
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

/// `--raw`: one file's bytes, then a lingering close. A framed receiver's refusal,
/// read during the close, is reported with a hint.
fn run_raw(args: &Args, paths: &[PathBuf], addr: &str) -> Result<()> {
    let [path] = paths else {
        bail!("--raw sends one file (a tree needs the framed protocol: drop --raw)");
    };
    let stdin;
    let file;
    // A size that may lie (/proc says 0, /sys 4096) is not promised: the engines
    // read such a source to its end.
    let (source, len): (std::os::fd::BorrowedFd<'_>, Option<u64>) = if path.as_os_str() == "-" {
        stdin = std::io::stdin();
        (stdin.as_fd(), None)
    } else {
        file = open_source(path)?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let trusted =
            meta.is_file() && meta.len() > 0 && !on_pseudo_fs(&mut Vec::new(), path, meta.dev());
        (file.as_fd(), trusted.then_some(meta.len()))
    };
    let stream = net::connect(addr, secs(args.connect_timeout))?;
    net::keep_alive(&stream, secs(args.timeout))
        .with_context(|| format!("{addr}: socket options"))?;
    let started = Instant::now();
    let usage = Rusage::process();
    let calibrated = match (args.engine, len) {
        (EngineChoice::Auto, Some(len)) => {
            crate::bench::Profile::load().and_then(|p| p.send_engine(len))
        }
        _ => None,
    };
    let options = Options {
        engine: calibrated
            .as_ref()
            .map_or(args.engine, |(engine, _)| EngineChoice::Only(*engine)),
        buffer: args.buffer,
        len,
        ..Options::default()
    };
    let mut transfer = Transfer::new(&source, &stream, options)
        .with_context(|| format!("cannot send {}", path.display()))?;
    progress::run(&mut transfer, len, !args.json && !args.quiet)
        .map_err(net::engine_error)
        .with_context(|| {
            format!(
                "sending {} to {addr} failed after {} bytes",
                path.display(),
                transfer.moved()
            )
        })?;
    let report = transfer.report();
    let said = net::lingering_close(&stream, Duration::from_secs(1));
    if said.first() == Some(&b'X') {
        if let Ok(Some(Msg::Err { reason, .. })) = Reader::new(&said[..]).next() {
            bail!("{addr} refused the bytes: {reason} (it is a framed `zcopy recv`: drop --raw)");
        }
    }
    let summary = Summary {
        report: &report,
        seconds: started.elapsed().as_secs_f64(),
        usage: Rusage::process().since(&usage),
    };
    if args.json {
        let mut extra = Map::new();
        extra.insert("file".into(), path.display().to_string().into());
        extra.insert("peer".into(), addr.into());
        if let Some((_, why)) = &calibrated {
            extra.insert(
                "engine_reason".into(),
                format!("auto, calibrated: {why}").into(),
            );
        }
        super::print_json(&summary.json(extra))?;
    } else if !args.quiet {
        let why = calibrated.map_or_else(String::new, |(_, why)| {
            format!(" (auto, calibrated: {why})")
        });
        eprintln!("sent {}: {}{why}", path.display(), summary.line());
    }
    Ok(())
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
