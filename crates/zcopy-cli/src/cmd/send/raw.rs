//! `send --raw`: one file's bytes alone, for nc and the seed's Java programs.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Map;
use zcopy::profile::Profile;
use zcopy::{Engine, EngineChoice, Options, Rusage, Transfer};
use zcopy_wire::frame::{Msg, Reader};

use crate::cmd::send::{open_source, secs, Args};
use crate::progress;
use crate::summary::Summary;
use zcopy_wire::send::walk::on_pseudo_fs;

/// How often a stalled send looks at its watchdog.
const TICK: Duration = Duration::from_millis(250);

/// `--raw`: one file's bytes, then a lingering close. A framed receiver's refusal,
/// read during the close, is reported with a hint.
pub(super) fn run_raw(args: &Args, paths: &[PathBuf], addr: &str) -> Result<()> {
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
    let stream = zcopy_wire::net::connect(addr, secs(args.connect_timeout))?;
    // The socket timeout is only a tick for the watchdog in `progress`: as the
    // limit itself, each partial send would restart it.
    let stall = Some(secs(args.stall.timeout)).filter(|t| !t.is_zero());
    let tick = stall.map_or(Duration::ZERO, |s| s.min(TICK));
    zcopy_wire::net::keep_alive(&stream, tick)
        .with_context(|| format!("{addr}: socket options"))?;
    let started = Instant::now();
    let usage = Rusage::process();
    let calibrated = match (args.engine, len) {
        (EngineChoice::Auto, Some(len)) => Profile::cached().and_then(|p| {
            let (size, ratio) = p.small_read_write(len)?;
            Some((
                Engine::ReadWrite,
                format!(
                    "read-write: {ratio:.1}x sendfile on this machine for files up to {}, calibrated {}",
                    zcopy::size::human(size),
                    p.calibrated
                ),
            ))
        }),
        _ => None,
    };
    let options = Options::default()
        .engine(
            calibrated
                .as_ref()
                .map_or(args.engine, |(engine, _)| EngineChoice::Only(*engine)),
        )
        .buffer(args.buffer)
        .len(len);
    let mut transfer = Transfer::new(&source, &stream, options)
        .with_context(|| format!("cannot send {}", path.display()))?;
    let show = !args.report.json && !args.say.quiet;
    progress::run_watched(&mut transfer, len, show, stall)
        .map_err(zcopy_wire::Error::from)
        .with_context(|| {
            format!(
                "sending {} to {addr} failed after {} bytes",
                path.display(),
                transfer.moved()
            )
        })?;
    let report = transfer.report();
    let said = zcopy_wire::net::lingering_close(&stream, Duration::from_secs(1));
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
    if args.report.json {
        let mut extra = Map::new();
        extra.insert("file".into(), path.display().to_string().into());
        extra.insert("peer".into(), addr.into());
        if let Some((_, why)) = &calibrated {
            extra.insert(
                "engine_reason".into(),
                format!("auto, calibrated: {why}").into(),
            );
        }
        crate::cmd::print_json(&summary.json(extra))?;
    } else if !args.say.quiet {
        let why = calibrated.map_or_else(String::new, |(_, why)| {
            format!(" (auto, calibrated: {why})")
        });
        eprintln!("sent {}: {}{why}", path.display(), summary.line());
        if let Some(why) = summary.engine_reason().filter(|_| args.say.verbose()) {
            eprintln!("  {why}");
        }
    }
    Ok(())
}
