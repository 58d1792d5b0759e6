//! `zcopy send PATH... HOST:PORT`: files, directories and standard input to
//! `zcopy recv` over the framed protocol (the session is [`zcopy_wire::send`]'s),
//! or one file's bytes alone (`--raw`), as `nc` or the seed's Java clients would
//! send them. `PATH... [user@]host:[DIR]` starts the receiver over ssh ([`ssh`]).

mod filters;
mod raw;
mod ssh;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Map;
use zcopy::size;
use zcopy::{EngineChoice, Rusage};
use zcopy_wire::compress::Compress;
use zcopy_wire::filter::{Filter, Rules};
use zcopy_wire::frame::{self, EntryKind};
use zcopy_wire::observe::Observer;
use zcopy_wire::remote::Operand;
use zcopy_wire::send::walk::Item;
use zcopy_wire::send::{self, walk, Compare, SendConfig, Sender};
use zcopy_wire::{signal, tls};

use crate::flags;
use crate::net::meter::{self, Meter};
use crate::summary::{compressed_json, compressed_words, delta_json, delta_words, Summary};

/// Send files and directories to `zcopy recv` (framed, verified, resumable), or a
/// file's bytes alone to any TCP peer (--raw)
///
/// With -v, each entry as it is sent, and what the receiver's certificate proved.
#[derive(clap::Args)]
pub struct Args {
    /// Files and directories to send (`-`: standard input, with --name), then
    /// HOST:PORT (a receiver), or [user@]host:[DIR] (over ssh; `host:./8000` for a
    /// directory named with digits)
    #[arg(value_name = "PATH... HOST:PORT|[user@]host:[DIR]", required = true)]
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
    /// Send changed files whole: without it, a file of more than 1 MiB that the
    /// receiver holds in another version goes as a delta (only the chunks it lacks)
    #[arg(short = 'W', long)]
    whole_file: bool,
    /// Compress with zstd each block that shrinks by 3% or more, at a level that
    /// follows the link (for slow links; the receiver checks the blocks'
    /// digests after decompressing; an older receiver gets them uncompressed)
    #[arg(short = 'z', long)]
    compress: bool,
    /// A delta rewrites the receiver's old file in place instead of building the
    /// new one beside it (rsync's --inplace): no second copy on disk, hard links
    /// see the change, but not crash-safe: a transfer cut off leaves the file part
    /// old, part new
    #[arg(long)]
    inplace: bool,
    /// With -z, compress at this zstd level (-5 fastest .. 19 smallest) instead
    /// of adapting it to the link (implies -z)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-5..=19))]
    compress_level: Option<i32>,
    /// Give up connecting after this many seconds
    #[arg(long, value_name = "S", default_value = "10")]
    connect_timeout: f64,
    #[command(flatten)]
    stall: flags::Stall,
    /// Send at most RATE bytes per second (500k, 10M, 1G), over all streams
    #[arg(long, value_name = "RATE", value_parser = meter::parse_rate)]
    limit_rate: Option<u64>,
    /// The name standard input (`-`) arrives under
    #[arg(long, value_name = "NAME")]
    name: Option<OsString>,
    #[command(flatten)]
    report: flags::Json,
    #[command(flatten)]
    say: flags::Verbosity,
    #[command(flatten)]
    shared: flags::Secret,
    /// The receiver's certificate fingerprint (sha256:HEX, from the line `zcopy
    /// recv` printed): any other certificate is refused before a byte is sent
    #[arg(long, value_name = "FP")]
    fingerprint: Option<String>,
    /// Send the set-uid, set-gid and sticky bits too (needs a secret: a receiver
    /// keeps them only for a sender that proved one); without it they are cleared
    #[arg(long)]
    keep_setuid: bool,
    /// Recurse into directories (accepted for rsync and scp habits: send always does)
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Keep the owner, by name (where the receiver is root; else files are the
    /// receiving user's)
    #[arg(short = 'o', long)]
    owner: bool,
    #[command(flatten)]
    attributes: flags::Attributes,
    #[command(flatten)]
    protocol: flags::Protocol,
    /// Skip files in place by size and digest, not size and mtime (reads every
    /// file on both sides)
    #[arg(short = 'c', long, conflicts_with = "ignore_times")]
    checksum: bool,
    /// Send every file, even one in place with the same size and mtime
    #[arg(short = 'I', long)]
    ignore_times: bool,
    /// Remove what the receiver's directories hold that the source does not
    /// (after the transfer succeeded; files the filter rules exclude are kept)
    #[arg(long)]
    delete: bool,
    /// Remove before the transfer, not after it (implies --delete)
    #[arg(long, conflicts_with = "delete_after")]
    delete_before: bool,
    /// Remove after the transfer (the default of --delete; implies it)
    #[arg(long)]
    delete_after: bool,
    /// Remove excluded files on the receiver too (implies --delete)
    #[arg(long)]
    delete_excluded: bool,
    /// Write nothing: print what would be sent and deleted
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Print what changes on the receiver, in rsync's letters (>f+++++++++ name,
    /// *deleting   name)
    #[arg(short = 'i', long)]
    itemize_changes: bool,
    /// Show the progress line (drawn on a terminal anyway)
    #[arg(long)]
    progress: bool,
    #[command(flatten)]
    filters: filters::Filters,
    #[command(flatten)]
    ssh: flags::Ssh,
    /// Over TLS, the records a data connection carries before a fresh one takes
    /// over (tests set it low; the default stays below where rustls rekeys)
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    tls_records_per_connection: Option<u64>,
}

/// With a secret, the TLS side that pins the receiver; without, plain TCP.
fn secure(args: &Args) -> Result<Option<tls::Sender>> {
    let secret = tls::Secret::given(args.shared.secret_file.as_deref())?;
    let usage = |text: &str| Err(super::Usage(text.to_string()).into());
    match (secret, &args.fingerprint) {
        (None, None) => Ok(None),
        _ if args.raw => usage("send --raw sends plain bytes: it takes no secret or fingerprint (drop --raw, or unset ZCOPY_SECRET)"),
        (Some(secret), Some(fp)) => Ok(Some(tls::Sender::new(secret, fp)?)),
        (Some(_), None) => usage("a secret (ZCOPY_SECRET or --secret-file) needs --fingerprint too: paste the whole line `zcopy recv` printed"),
        (None, Some(_)) => usage("--fingerprint needs the secret too: ZCOPY_SECRET or --secret-file, as `zcopy recv` printed"),
    }
}

/// The session's settings, from the flags.
fn config(args: &Args, rules: &Rules) -> SendConfig {
    let mut config = SendConfig::default();
    config.engine = args.engine;
    config.buffer = args.buffer;
    config.resume = args.resume;
    config.whole_file = args.whole_file;
    config.inplace = args.inplace;
    config.compress = match (args.compress_level, args.compress) {
        (Some(level), _) => Compress::Level(level),
        (None, true) => Compress::Adaptive,
        (None, false) => Compress::Off,
    };
    config.compare = if args.checksum {
        Compare::Checksum
    } else if args.ignore_times {
        Compare::Never
    } else {
        Compare::SizeAndTime
    };
    config.mirror = frame::Mirror::default();
    config.mirror.delete =
        args.delete || args.delete_before || args.delete_after || args.delete_excluded;
    config.mirror.delete_before = args.delete_before;
    config.mirror.delete_excluded = args.delete_excluded;
    config.mirror.dry_run = args.dry_run;
    // A dry run says what it would do, as `rsync -n -i` does.
    config.mirror.itemize = args.itemize_changes || args.dry_run;
    config.mirror.rules = rules.lines();
    config.connect_timeout = secs(args.connect_timeout);
    config.timeout = secs(args.stall.timeout);
    config.limit_rate = args.limit_rate;
    if let Some(records) = args.tls_records_per_connection {
        config.records_per_connection = records;
    }
    config.protocol = args.protocol.protocol;
    config
}

/// What send shows while it runs: the progress line, and with `--verbose` each
/// entry's name as it starts.
struct Watch {
    meter: Arc<Meter>,
    verbose: bool,
    /// Itemized lines go to standard error (standard output has the JSON).
    items_to_stderr: bool,
}

impl Observer for Watch {
    fn moved(&self, bytes: u64) {
        self.meter.moved(bytes);
    }

    fn entry(&self, index: u64, name: &str) {
        self.meter.entry(index, name);
        if self.verbose {
            eprintln!("{name}");
        }
    }

    fn warning(&self, text: &str) {
        meter::clear_line();
        eprintln!("zcopy: warning: {text}");
    }

    fn took_over(&self, records: u64) {
        if self.verbose {
            eprintln!("a fresh TLS connection takes over after {records} records (new keys)");
        }
    }

    fn itemized(&self, line: &[u8]) {
        meter::clear_line();
        let line = format!("{}\n", escaped(line));
        // A closed standard output ends the session when it reports.
        let _ = if self.items_to_stderr {
            std::io::stderr().lock().write_all(line.as_bytes())
        } else {
            std::io::stdout().lock().write_all(line.as_bytes())
        };
    }
}

/// Where the session's connections come from.
enum Way<'a> {
    /// Dialled to the address (and `-j N` more), the usual way.
    Dial,
    /// One connection made already (`--ssh-data`'s relay), TLS done.
    Made(TcpStream),
    /// The receiver dials this sender's listener, this many times (a pull over ssh).
    Answer(&'a TcpListener, usize),
}

pub fn run(args: Args) -> Result<()> {
    if args.ssh.ssh_serve {
        return ssh::serve(&args);
    }
    let Some((dest, paths @ [_, ..])) = args.operands.split_last() else {
        clap::Error::raw(
            clap::error::ErrorKind::WrongNumberOfValues,
            "send needs what to send and where: PATH... HOST:PORT or [user@]host:[DIR]\n",
        )
        .exit();
    };
    if let Operand::Remote(remote) = Operand::parse(dest.as_os_str())? {
        return ssh::push(&args, paths, &remote);
    }
    let addr = dest
        .to_str()
        .with_context(|| format!("{}: not an address", dest.display()))?
        .to_string();
    let secure = secure(&args)?;
    if args.raw {
        return raw::run_raw(&args, paths, &addr);
    }
    let items = items(&args, paths, secure.is_some())?;
    transfer(&args, &items, &addr, secure.as_ref(), Way::Dial)
}

/// What `paths` hold, as the session sends it.
fn items(args: &Args, paths: &[PathBuf], secure: bool) -> Result<Vec<Item>> {
    if args.keep_setuid && !secure {
        return Err(super::Usage("--keep-setuid needs a secret (ZCOPY_SECRET or --secret-file, and --fingerprint): a receiver keeps those bits only for a sender that proved one".into()).into());
    }
    let rules = args.filters.rules()?;
    let mut filter = (!rules.is_empty()).then(|| Filter::new(rules.clone()));
    let keep = args.attributes.keep(args.owner);
    let mut items = walk::walk_filtered(
        paths,
        args.name.as_deref(),
        filter.as_mut(),
        &keep,
        &mut |path| {
            eprintln!(
                "zcopy: {}: skipped: not a file, directory or symlink (-D sends devices, FIFOs and sockets)",
                path.display()
            )
        },
    )?;
    // -p and -a keep them where a secret lets the receiver keep them.
    let special_bits = args.keep_setuid || secure && args.attributes.special_bits();
    if !special_bits {
        for item in &mut items {
            item.entry.mode &= frame::PERMISSION_BITS;
        }
    }
    Ok(items)
}

/// The framed session: `items` to the receiver at `addr`, the way `way` says.
fn transfer(
    args: &Args,
    items: &[Item],
    addr: &str,
    secure: Option<&tls::Sender>,
    way: Way,
) -> Result<()> {
    // Ctrl-C clears the progress line; the receiver keeps what it verified.
    signal::block_stop_signals();
    std::thread::spawn(|| {
        let sig = signal::wait_for_stop_signal();
        meter::clear_line();
        eprintln!("zcopy: interrupted; send again to resume where the receiver stopped");
        std::process::exit(128 + sig);
    });
    let started = Instant::now();
    let usage = Rusage::process();
    let total = items
        .iter()
        .map(|i| i.entry.size)
        .try_fold(0u64, |sum, s| s.map(|s| sum + s));
    let meter = Meter::new(total, items.len() as u64);
    let config = config(args, &args.filters.rules()?);
    let (stream, streams, listener) = match way {
        Way::Dial => (
            send::dial(addr, &config, secure)?,
            send::streams_for(args.streams.map(usize::from), items, addr),
            None,
        ),
        Way::Made(stream) => (stream, 1, None),
        Way::Answer(listener, streams) => {
            let secure = secure.context("a pull over ssh is always secured")?;
            (
                send::answer(listener, &config, secure)?,
                streams,
                Some(listener),
            )
        }
    };
    if let Some(secure) = secure.filter(|_| args.say.verbose()) {
        eprintln!("{addr}: secret proven; TLS 1.3; {}", secure.record_layer());
    }
    let watch = Watch {
        meter: meter.clone(),
        verbose: args.say.verbose(),
        items_to_stderr: args.report.json,
    };
    let mut sender = Sender::open(&config, addr, stream, streams, Arc::new(watch), secure)?;
    if let Some(listener) = listener {
        sender = sender.answering(listener);
    }
    if config.compress != Compress::Off && sender.compressed().is_none() && !args.say.quiet {
        eprintln!(
            "zcopy: {addr}: the receiver cannot decompress (an older zcopy): sending uncompressed"
        );
    }
    let drawing = meter.show(args.progress || !args.report.json && !args.say.quiet);
    sender.send_items(items)?;
    sender.finish()?;
    drop(drawing);
    let summary = Summary {
        report: sender.report(),
        seconds: started.elapsed().as_secs_f64(),
        usage: Rusage::process().since(&usage),
    };
    let files = items
        .iter()
        .filter(|i| i.entry.kind != EntryKind::Dir)
        .count();
    if args.report.json {
        let mut extra = Map::new();
        extra.insert("files".into(), files.into());
        extra.insert("streams".into(), streams.into());
        extra.insert("peer".into(), addr.into());
        extra.insert("encrypted".into(), secure.is_some().into());
        extra.insert("dry_run".into(), args.dry_run.into());
        if let Some(secure) = &secure {
            extra.insert("ktls".into(), secure.record_layer().into());
        }
        if let [one] = items {
            extra.insert("file".into(), one.source.display().to_string().into());
        }
        if let Some(delta) = delta_json(&sender.delta(), false) {
            extra.insert("delta".into(), delta);
        }
        if let Some(compressed) = sender.compressed() {
            extra.insert("compressed".into(), compressed_json(&compressed));
        }
        super::print_json(&summary.json(extra))?;
    } else if !args.say.quiet {
        let delta = delta_words(&sender.delta(), false)
            + &sender
                .compressed()
                .map_or_else(String::new, |c| compressed_words(&c));
        let dry = if args.dry_run { " (DRY RUN)" } else { "" };
        match items {
            [one] if one.entry.kind == EntryKind::File => {
                eprintln!(
                    "sent {}: {}{delta}{dry}",
                    one.source.display(),
                    summary.line()
                )
            }
            _ => eprintln!(
                "sent {files} file{} to {addr}: {}{delta}{dry}",
                if files == 1 { "" } else { "s" },
                summary.line()
            ),
        }
        if let Some(why) = summary.engine_reason().filter(|_| args.say.verbose()) {
            eprintln!("  {why}");
        }
    }
    Ok(())
}

/// A name as rsync prints it: bytes that are not UTF-8, and control
/// characters, as `\#ooo` (octal).
fn escaped(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    let octal = |out: &mut String, bytes: &[u8]| {
        for b in bytes {
            out.push_str(&format!("\\#{b:03o}"));
        }
    };
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                octal(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes());
            } else {
                out.push(c);
            }
        }
        octal(&mut out, chunk.invalid());
    }
    out
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
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
