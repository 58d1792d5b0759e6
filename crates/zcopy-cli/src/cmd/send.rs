//! `zcopy send FILE HOST:PORT`: the seed's `Client` and `ClientChannel`.
//!
//! Framed (default): a header, the bytes through the chosen engine, the XXH3-128
//! digest, then the receiver's verdict. `--raw`: the bytes alone, as `nc` or the
//! seed's Java client would send them.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustix::net::SendFlags;
use serde_json::Map;
use zcopy::{EngineChoice, Options, Rusage, Transfer};

use crate::net::{self, frame};
use crate::summary::Summary;
use crate::{progress, size};

/// Send a file to `zcopy recv` (framed, verified) or to any TCP peer (--raw)
#[derive(clap::Args)]
pub struct Args {
    /// The file to send
    file: PathBuf,
    /// Where to send it
    #[arg(value_name = "HOST:PORT")]
    addr: String,
    /// Engine: auto, read-write, mmap, sendfile, splice
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Send the bytes alone: no header, no digest (for nc and the seed's Java programs)
    #[arg(long)]
    raw: bool,
    /// Buffer size of the read-write engine (1KiB is the seed's Client)
    #[arg(long, value_parser = size::parse_buffer, default_value = "128KiB")]
    buffer: usize,
    /// Print one JSON object with the measurements on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let path = &args.file;
    let file = open_source(path)?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let size = meta.is_file().then_some(meta.len());
    if size.is_none() && !args.raw {
        bail!(
            "{}: not a regular file; framed mode needs its size (use --raw to stream it)",
            path.display()
        );
    }
    let mut stream = net::connect(&args.addr)?;
    let started = Instant::now();
    let usage = Rusage::process();
    let options = Options {
        engine: args.engine,
        buffer: args.buffer,
        len: size,
        ..Options::default()
    };
    let report = if args.raw {
        let report = transfer(&file, &stream, options, &args)?;
        net::lingering_close(stream, Duration::from_secs(1));
        report
    } else {
        let size = size.expect("framed mode has a size");
        let header = frame::Header {
            name: base_name(path)?,
            size,
            mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        };
        send_all(&stream, &header.encode(), SendFlags::MORE)
            .with_context(|| format!("sending to {}", args.addr))?;
        let (report, digest) = std::thread::scope(|s| {
            let hasher = s.spawn(|| frame::digest_file(&file, size));
            let report = transfer(&file, &stream, options, &args);
            (
                report,
                hasher.join().expect("the hashing thread does not panic"),
            )
        });
        let report = report?;
        let digest = digest.with_context(|| format!("cannot read {}", path.display()))?;
        stream
            .write_all(&digest.to_be_bytes())
            .with_context(|| format!("sending to {}", args.addr))?;
        await_verdict(&mut stream, &args.addr, path)?;
        report
    };
    let summary = Summary {
        report: &report,
        seconds: started.elapsed().as_secs_f64(),
        usage: Rusage::process().since(&usage),
    };
    if args.json {
        let mut extra = Map::new();
        extra.insert("file".into(), path.display().to_string().into());
        extra.insert("peer".into(), args.addr.clone().into());
        super::print_json(&summary.json(extra))?;
    } else {
        eprintln!("sent {}: {}", path.display(), summary.line());
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
        bail!("{}: is a directory", path.display());
    }
    Ok(file)
}

fn transfer(
    file: &File,
    stream: &TcpStream,
    options: Options,
    args: &Args,
) -> Result<zcopy::Report> {
    let mut transfer = Transfer::new(file, stream, options)
        .with_context(|| format!("cannot send {}", args.file.display()))?;
    progress::run(&mut transfer, options.len, !args.json).with_context(|| {
        format!(
            "sending {} to {} failed after {} bytes",
            args.file.display(),
            args.addr,
            transfer.moved()
        )
    })?;
    Ok(transfer.report())
}

fn base_name(path: &Path) -> Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: the file name is not UTF-8 text", path.display()))?;
    frame::check_name(name)?;
    Ok(name.to_string())
}

/// `send(2)` of a whole buffer with `flags` (`MSG_MORE` for a header, so it leaves in
/// the same segment as the first bytes of the body).
fn send_all(stream: &TcpStream, mut buf: &[u8], flags: SendFlags) -> std::io::Result<()> {
    while !buf.is_empty() {
        match rustix::net::send(stream, buf, flags) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads the receiver's "OK" or "ERR reason" line.
fn await_verdict(stream: &mut TcpStream, addr: &str, path: &Path) -> Result<()> {
    stream.shutdown(std::net::Shutdown::Write).ok();
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .with_context(|| format!("{addr}: no verdict on {}", path.display()))?;
    match line.trim_end() {
        "OK" => Ok(()),
        "" => bail!(
            "{addr} closed the connection before confirming {}",
            path.display()
        ),
        verdict => {
            let reason = verdict.strip_prefix("ERR ").unwrap_or(verdict);
            bail!("{addr} refused {}: {reason}", path.display())
        }
    }
}
