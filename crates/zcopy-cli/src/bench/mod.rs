//! `zcopy bench`: every engine measured side by side on this machine, beside the
//! seeds' model of copies and switches.
//!
//! The bench writes its own test file, runs each row of each job `--repeat` times
//! (page cache warm, or dropped with `posix_fadvise(DONTNEED)` under `--cold`),
//! and reports the median sample with the spread of throughput across samples.

mod chart;
mod counters;
mod jobs;
mod model;

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::size;
use counters::{Counters, Counts, SkbBytes, EVENTS};
use jobs::{Files, Job, Row, Sample};

/// Measure every engine side by side, beside the seeds' model of copies and switches
#[derive(clap::Args)]
pub struct Args {
    /// Size of the generated test file
    #[arg(long, value_parser = size::parse, default_value = "256MiB")]
    size: u64,
    /// Jobs to run: send, recv, echo, cp, scan, small, serve
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = Job::parse,
        default_value = "send,recv,echo,cp,scan,small,serve"
    )]
    jobs: Vec<Job>,
    /// Only rows with these engines (read-write, mmap, sendfile, splice, copy-file-range,
    /// direct, io-uring, msg-zerocopy)
    #[arg(long, value_delimiter = ',', value_parser = engine_name)]
    engines: Vec<String>,
    /// Samples per row; the table shows the median and the spread
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Drop the test file from the page cache before every sample
    #[arg(long)]
    cold: bool,
    /// Write every row and the environment as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a chart of throughput and CPU per GiB as SVG to FILE
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Directory for the test files (its file system is the one measured)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn engine_name(name: &str) -> Result<String, String> {
    const NAMES: [&str; 8] = [
        "read-write",
        "mmap",
        "sendfile",
        "splice",
        "copy-file-range",
        "direct",
        "io-uring",
        "msg-zerocopy",
    ];
    if NAMES.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "unknown engine '{name}' (expected {})",
            NAMES.join(", ")
        ))
    }
}

/// A row's samples, summarised.
pub struct Measured {
    pub row: Row,
    /// The sample with the median time, whose figures the table shows.
    pub median: Sample,
    pub counts: Option<Counts>,
    /// Bytes the kernel copied to user space in `skb_copy_datagram_iovec`.
    pub skb_bytes: Option<u64>,
    /// Throughput of each sample, bytes per second.
    pub throughputs: Vec<f64>,
    pub cold: bool,
}

impl Measured {
    fn throughput(&self) -> f64 {
        self.median.bytes as f64 / self.median.seconds
    }

    /// (max − min) / median of the samples' throughput.
    fn spread(&self) -> f64 {
        let max = self.throughputs.iter().copied().fold(f64::MIN, f64::max);
        let min = self.throughputs.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / self.throughput()
    }

    fn per_gib(&self, x: f64) -> f64 {
        x / (self.median.bytes as f64 / (1u64 << 30) as f64)
    }
}

pub fn run(args: Args) -> Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("zcopy-bench.")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a directory in {}", base.display()))?;
    let files = make_files(dir.path(), args.size)?;
    let mut counters = Counters::open();
    let mut skb = SkbBytes::open();
    let rows: Vec<Row> = args
        .jobs
        .iter()
        .flat_map(|&job| jobs::rows(job))
        .filter(|row| args.engines.is_empty() || args.engines.iter().any(|e| e == row.engine()))
        .collect();
    if rows.is_empty() {
        bail!("no row matches --jobs and --engines");
    }
    let bar = progress(rows.len() as u64 * u64::from(args.repeat));
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for row in rows {
        bar.set_message(format!("{}: {}", row.job.name(), row.label));
        match measure_row(
            &row,
            &files,
            &args,
            counters.as_mut().ok(),
            skb.as_mut().ok(),
            &bar,
        ) {
            Ok(m) => results.push(m),
            Err(e) => failures.push(format!("{} / {}: {e:#}", row.job.name(), row.label)),
        }
    }
    bar.finish_and_clear();
    let env = environment(dir.path(), &args, &counters);
    let mut notes: Vec<String> = failures
        .iter()
        .map(|f| format!("row not measured: {f}"))
        .collect();
    if let Err(why) = &counters {
        notes.push(format!("perf counters n/a: {why}"));
    }
    match &skb {
        Err(why) => notes.push(format!("skb copy bytes n/a: {why}")),
        Ok(_) if results.iter().any(|m| m.skb_bytes.is_none()) => notes
            .push("skb copy bytes n/a in some rows: the sampling ring buffer overflowed".into()),
        Ok(_) => {}
    }
    notes.push(
        "loopback has no DMA: the seeds' DMA copies do not happen here, and a receiver that reads into user space still copies"
            .into(),
    );
    let claims = claims(&results);
    print_table(&results, &claims, &notes, &env)?;
    if let Some(path) = &args.json {
        let rows: Vec<Value> = results.iter().map(row_json).collect();
        let doc = json!({ "environment": env, "rows": rows, "claims": claims, "notes": notes });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        chart::write(path, &results, &env)?;
    }
    Ok(())
}

fn progress(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{pos}/{len} {wide_bar} {msg}").expect("a valid template"),
    )
}

fn measure_row(
    row: &Row,
    files: &Files,
    args: &Args,
    mut counters: Option<&mut Counters>,
    mut skb: Option<&mut SkbBytes>,
    bar: &ProgressBar,
) -> Result<Measured> {
    let mut samples = Vec::new();
    for _ in 0..args.repeat {
        if args.cold {
            drop_cache(&files.big)?;
        }
        if let Some(c) = counters.as_deref_mut() {
            c.start();
        }
        if let Some(c) = skb.as_deref_mut() {
            c.start();
        }
        let sample = jobs::measure(row, files);
        let counts = counters.as_deref_mut().map(Counters::stop);
        let skb_bytes = skb.as_deref_mut().and_then(SkbBytes::stop);
        samples.push((sample?, counts, skb_bytes));
        bar.inc(1);
    }
    let throughputs = samples
        .iter()
        .map(|(s, _, _)| s.bytes as f64 / s.seconds)
        .collect();
    samples.sort_by(|a, b| a.0.seconds.total_cmp(&b.0.seconds));
    let (median, counts, skb_bytes) = samples.swap_remove(samples.len() / 2);
    Ok(Measured {
        row: row.clone(),
        median,
        counts,
        skb_bytes,
        throughputs,
        cold: args.cold,
    })
}

/// Writes the test files: the big one with bytes that do not compress or dedupe,
/// synced so that dropping it from the cache really sends reads to the device.
fn make_files(dir: &Path, size: u64) -> Result<Files> {
    let big = dir.join("bench.dat");
    let mut f = File::create(&big).with_context(|| format!("cannot create {}", big.display()))?;
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])
            .with_context(|| format!("cannot write {}", big.display()))?;
        left -= n as u64;
    }
    f.sync_all()?;
    let small = dir.join("small.dat");
    std::fs::write(&small, &block[..jobs::SMALL_FILE as usize])?;
    Ok(Files {
        big,
        size,
        small,
        small_count: (size.min(64 << 20) / jobs::SMALL_FILE).max(1),
        dir: dir.to_path_buf(),
    })
}

fn drop_cache(path: &Path) -> Result<()> {
    let f = File::open(path)?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

fn environment(dir: &Path, args: &Args, counters: &Result<Counters, String>) -> Value {
    let uname = rustix::system::uname();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    json!({
        "kernel": uname.release().to_string_lossy(),
        "machine": uname.machine().to_string_lossy(),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "file_system": file_system(dir),
        "file_size": args.size,
        "page_cache": if args.cold { "cold (posix_fadvise DONTNEED before each sample)" } else { "warm" },
        "repeat": args.repeat,
        "perf_counters": match counters { Ok(_) => "available".to_string(), Err(why) => format!("n/a: {why}") },
        "zcopy": env!("CARGO_PKG_VERSION"),
    })
}

fn file_system(dir: &Path) -> String {
    let Ok(st) = rustix::fs::statfs(dir) else {
        return "unknown".into();
    };
    match st.f_type as u64 {
        0xEF53 => "ext4".into(),
        0x9123_683E => "btrfs".into(),
        0x5846_5342 => "xfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("0x{other:x}"),
    }
}

fn row_json(m: &Measured) -> Value {
    let s = &m.median;
    let (side, peer_side) = m.row.job.sides();
    let syscalls: serde_json::Map<String, Value> = s
        .syscalls
        .iter()
        .map(|(c, n)| (c.name().to_string(), n.into()))
        .collect();
    let model = model::of(&m.row);
    let peer = s.peer.as_ref();
    json!({
        "job": m.row.job.name(),
        "engine": m.row.engine(),
        "label": m.row.label,
        "buffer": m.row.buffer(),
        "bytes": s.bytes,
        "seconds": s.seconds,
        "samples": m.throughputs.len(),
        "throughput_bytes_per_s": m.throughput(),
        "throughput_samples": m.throughputs,
        "spread": m.spread(),
        "engine_side": side,
        "peer_side": peer_side,
        "engine_cpu_user_s_per_gib": m.per_gib(s.side.user.as_secs_f64()),
        "engine_cpu_sys_s_per_gib": m.per_gib(s.side.system.as_secs_f64()),
        "peer_cpu_user_s_per_gib": peer.map(|p| m.per_gib(p.user.as_secs_f64())),
        "peer_cpu_sys_s_per_gib": peer.map(|p| m.per_gib(p.system.as_secs_f64())),
        "syscalls": syscalls,
        "syscalls_per_gib": m.per_gib(s.syscalls.total() as f64),
        "voluntary_ctx_switches": s.side.voluntary_switches,
        "involuntary_ctx_switches": s.side.involuntary_switches,
        "minor_faults": s.side.minor_faults,
        "major_faults": s.side.major_faults,
        "skb_copy_bytes": m.skb_bytes,
        "zerocopy": (s.zerocopy.sends > 0).then(|| json!({
            "sends": s.zerocopy.sends,
            "completions": s.zerocopy.completions,
            "copied": s.zerocopy.copied,
        })),
        "perf": m.counts.map(|c| EVENTS.iter().zip(c).map(|((name, _), n)| ((*name).to_string(), Value::from(n))).collect::<serde_json::Map<_, _>>()),
        "model": {
            "switches": model.switches,
            "dma_copies": model.dma_copies,
            "cpu_copies": model.cpu_copies,
            "note": model.note,
        },
        "check": model::check(&m.row, m),
    })
}

/// The seeds' general claims, each with the figures that decide it.
fn claims(results: &[Measured]) -> Vec<String> {
    let find = |job: Job, engine: &str, label: &str| {
        results
            .iter()
            .find(|m| m.row.job == job && m.row.engine() == engine && m.row.label.contains(label))
    };
    let mut out = Vec::new();
    let cpu = |m: &Measured| m.per_gib((m.median.side.user + m.median.side.system).as_secs_f64());
    if let (Some(rw), Some(sf)) = (
        find(Job::Send, "read-write", "128 KiB"),
        find(Job::Send, "sendfile", ""),
    ) {
        out.push(format!(
            "sendfile uses less sender CPU than read + write: {:.3} vs {:.3} CPU s/GiB ({:.2}x); {}",
            cpu(sf),
            cpu(rw),
            cpu(rw) / cpu(sf),
            if cpu(sf) < cpu(rw) { "holds" } else { "does not hold here" }
        ));
    }
    if let (Some(seed), Some(sf)) = (
        find(Job::Send, "read-write", "seed Client"),
        find(Job::Send, "sendfile", ""),
    ) {
        out.push(format!(
            "seed ClientChannel (sendfile) vs seed Client (1 KiB read-write): {:.0} vs {:.0} MiB/s ({:.2}x)",
            sf.throughput() / MIB,
            seed.throughput() / MIB,
            sf.throughput() / seed.throughput()
        ));
    }
    if let (Some(read), Some(map)) = (
        find(Job::Scan, "read-write", "128 KiB"),
        find(Job::Scan, "mmap", ""),
    ) {
        out.push(format!(
            "mmap saves the kernel-to-user copy of read: {:.3} vs {:.3} CPU s/GiB; {}",
            cpu(map),
            cpu(read),
            if cpu(map) < cpu(read) {
                "holds"
            } else {
                "does not hold here"
            }
        ));
    }
    if let (Some(rw_big), Some(sf_big), Some(rw_small), Some(sf_small)) = (
        find(Job::Send, "read-write", "128 KiB"),
        find(Job::Send, "sendfile", ""),
        find(Job::Small, "read-write", ""),
        find(Job::Small, "sendfile", ""),
    ) {
        let big = sf_big.throughput() / rw_big.throughput();
        let small = sf_small.throughput() / rw_small.throughput();
        out.push(format!(
            "\"zero copy suits small files\": sendfile/read-write is {small:.2}x on 4 KiB files and {big:.2}x on the large file; {}",
            if small >= big {
                "holds: the gain is at least as large on small files"
            } else {
                "does not hold: the gain shrinks on small files, where per-call costs dominate and there is little copying to save"
            }
        ));
    }
    out
}

const MIB: f64 = (1u64 << 20) as f64;

fn print_table(
    results: &[Measured],
    claims: &[String],
    notes: &[String],
    env: &Value,
) -> Result<()> {
    let mut out = String::new();
    out.push_str(&format!(
        "zcopy bench: {} file on {}, page cache {}, kernel {}, {} cores ({})\n\n",
        size::human(env["file_size"].as_u64().unwrap_or(0)),
        env["file_system"].as_str().unwrap_or("?"),
        env["page_cache"].as_str().unwrap_or("?"),
        env["kernel"].as_str().unwrap_or("?"),
        env["cores"],
        env["cpu"].as_str().unwrap_or("?"),
    ));
    out.push_str(&format!(
        "{:<6} {:<44} {:>9} {:>6} {:>15} {:>15} {:>11} {:>11} {:>11} {:>11} {:>9} {:>10} {:>9} {:>10} {:>9}\n",
        "job",
        "engine",
        "MiB/s",
        "±%",
        "eng CPU usr/sys",
        "peer CPU u/s",
        "sysc/GiB",
        "cs vol/inv",
        "flt min/maj",
        "perf sys/GiB",
        "perf cs",
        "pc insert",
        "skb copy",
        "skb bytes",
        "model s/D/C",
    ));
    for m in results {
        let s = &m.median;
        let peer = match &s.peer {
            Some(p) => format!(
                "{:.2}/{:.2}",
                m.per_gib(p.user.as_secs_f64()),
                m.per_gib(p.system.as_secs_f64())
            ),
            None => "-".into(),
        };
        let perf = |i: usize| {
            m.counts
                .map_or_else(|| "n/a".to_string(), |c| c[i].to_string())
        };
        let raw = m.counts.map_or_else(
            || "n/a".to_string(),
            |c| format!("{:.0}", m.per_gib(c[0] as f64)),
        );
        let model = model::of(&m.row);
        let digit = |x: Option<u32>| x.map_or("-".to_string(), |x| x.to_string());
        out.push_str(&format!(
            "{:<6} {:<44} {:>9.0} {:>6.1} {:>15} {:>15} {:>11.0} {:>11} {:>11} {:>11} {:>9} {:>10} {:>9} {:>10} {:>9}\n",
            m.row.job.name(),
            m.row.label,
            m.throughput() / MIB,
            100.0 * m.spread(),
            format!("{:.2}/{:.2}", m.per_gib(s.side.user.as_secs_f64()), m.per_gib(s.side.system.as_secs_f64())),
            peer,
            m.per_gib(s.syscalls.total() as f64),
            format!("{}/{}", s.side.voluntary_switches, s.side.involuntary_switches),
            format!("{}/{}", s.side.minor_faults, s.side.major_faults),
            raw,
            perf(1),
            perf(2),
            perf(3),
            m.skb_bytes.map_or_else(|| "n/a".to_string(), size::human),
            format!("{}/{}/{}", digit(model.switches), digit(model.dma_copies), digit(model.cpu_copies)),
        ));
    }
    out.push_str("\nmodel s/D/C: the seeds' user-kernel switches per chunk / DMA copies / CPU copies; CPU in s per GiB; perf counts cover both sides\n");
    out.push_str("\nwhat the measurements say about the model:\n");
    for m in results {
        out.push_str(&format!(
            "  {} / {}: {}\n",
            m.row.job.name(),
            m.row.label,
            model::check(&m.row, m)
        ));
    }
    if !claims.is_empty() {
        out.push_str("\nthe seeds' claims on this machine:\n");
        for c in claims {
            out.push_str(&format!("  - {c}\n"));
        }
    }
    out.push_str("\nnotes:\n");
    for n in notes {
        out.push_str(&format!("  - {n}\n"));
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(crate::cmd::StdoutClosed.into())
        }
        other => Ok(other?),
    }
}
