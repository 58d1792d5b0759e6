//! `zcopy bench`: every engine measured side by side on this machine, beside the
//! seeds' model of copies and switches.
//!
//! The bench writes its own test file, runs each row of each job `--repeat` times
//! (page cache warm, or dropped with `posix_fadvise(DONTNEED)` under `--cold`),
//! and reports the median sample with the spread of throughput across samples.
//! The rows that decide one of the seeds' claims are then sampled again, in turn,
//! until the claim's confidence interval is clear of "no difference" or the time
//! budget is spent (see `verdict`). Output files are opened before the first
//! sample, so a bad path fails in a moment rather than after the run.

mod calibrate;
mod chart;
mod counters;
mod html;
mod jobs;
mod model;
mod peers;
mod table;
mod verdict;

pub use calibrate::Profile;

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::cmd::Usage;
use counters::{Counters, Counts, SkbBytes, EVENTS};
use jobs::{Files, Job, Row, Sample};
use zcopy::size;

/// Measure every engine side by side, beside the seeds' model of copies and switches
#[derive(clap::Args)]
pub struct Args {
    /// Size of the generated test file (at least 64 KiB)
    #[arg(long, value_parser = test_size, default_value = "256MiB")]
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
    /// Seconds spent at most on extra samples of the rows that decide a claim
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = budget)]
    budget: f64,
    /// Drop the test file from the page cache before every sample
    #[arg(long)]
    cold: bool,
    /// Also run the installed peers (nc, socat, the seed's Java clients, nginx with wrk,
    /// xxhsum, b3sum, GNU cp, iperf3) under the same conditions, with ratios
    #[arg(long)]
    peers: bool,
    /// Measure only this machine's crossovers and write them to the calibration
    /// profile that `scan --engine auto` reads ($XDG_CACHE_HOME/zcopy/calibration.json)
    #[arg(long)]
    calibrate: bool,
    /// Show every column (peer CPU, context switches, faults, perf counters, the model)
    #[arg(long)]
    wide: bool,
    /// Print nothing but errors (the files of --json, --svg, --html are still written)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The wide table (as --wide)
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Write every row and the environment as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a chart of throughput and CPU per GiB as SVG to FILE
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write a self-contained HTML report (table, chart, machine, claims) to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Directory for the test files (its file system is the one measured)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The smallest test file: below a few pages the rows measure start-up, not moving bytes.
const MIN_SIZE: u64 = 64 << 10;

fn test_size(text: &str) -> Result<u64, String> {
    match size::parse(text)? {
        n if n < MIN_SIZE => Err(format!(
            "'{text}' is too small: the test file needs at least 64KiB"
        )),
        n => Ok(n),
    }
}

fn budget(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds")),
    }
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

/// One sample of a row with the kernel's counts around it.
pub struct Taken {
    pub sample: Sample,
    pub counts: Option<Counts>,
    /// Bytes the kernel copied to user space in `skb_copy_datagram_iovec`.
    pub skb_bytes: Option<u64>,
}

/// A row's samples, summarised.
pub struct Measured {
    pub row: Row,
    pub taken: Vec<Taken>,
    /// The sample with the median time, whose figures the table shows.
    pub median: Sample,
    pub counts: Option<Counts>,
    pub skb_bytes: Option<u64>,
    pub cold: bool,
}

impl Measured {
    fn new(row: Row, taken: Vec<Taken>, cold: bool) -> Measured {
        let first = &taken[0];
        let mut m = Measured {
            row,
            median: first.sample.clone(),
            counts: first.counts,
            skb_bytes: first.skb_bytes,
            taken,
            cold,
        };
        m.settle();
        m
    }

    /// Points the summary at the median sample, after samples were added.
    fn settle(&mut self) {
        let mut order: Vec<usize> = (0..self.taken.len()).collect();
        order.sort_by(|&a, &b| {
            self.taken[a]
                .sample
                .seconds
                .total_cmp(&self.taken[b].sample.seconds)
        });
        let mid = &self.taken[order[order.len() / 2]];
        self.median = mid.sample.clone();
        self.counts = mid.counts;
        self.skb_bytes = mid.skb_bytes;
    }

    fn throughput(&self) -> f64 {
        self.median.bytes as f64 / self.median.seconds
    }

    fn throughputs(&self) -> Vec<f64> {
        self.taken
            .iter()
            .map(|t| t.sample.bytes as f64 / t.sample.seconds)
            .collect()
    }

    /// (max − min) / median of the samples' throughput.
    fn spread(&self) -> f64 {
        let all = self.throughputs();
        let max = all.iter().copied().fold(f64::MIN, f64::max);
        let min = all.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / self.throughput()
    }

    fn per_gib(&self, x: f64) -> f64 {
        x / (self.median.bytes as f64 / (1u64 << 30) as f64)
    }

    /// The engine side's CPU seconds (user + system) per GiB, the median over the
    /// samples (as the claims take it).
    fn cpu_per_gib(&self) -> f64 {
        let mut all: Vec<f64> = self
            .taken
            .iter()
            .map(|t| {
                let s = &t.sample;
                (s.side.user + s.side.system).as_secs_f64() / (s.bytes as f64 / (1u64 << 30) as f64)
            })
            .collect();
        all.sort_by(f64::total_cmp);
        all[all.len() / 2]
    }
}

/// An output file, created beside its real name before the run and renamed over
/// it only when complete.
struct Output {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl Output {
    fn open(path: &Path) -> Result<Output> {
        if path.is_dir() {
            bail!("cannot write {}: Is a directory", path.display());
        }
        let dir = zcopy::place::parent_dir(path);
        let temp = tempfile::Builder::new()
            .prefix(".zcopy-bench.")
            .tempfile_in(dir)
            .map_err(|e| {
                let words = e.to_string();
                let words = words.split(" (os error").next().unwrap_or_default();
                anyhow::anyhow!("cannot write {}: {words}", path.display())
            })?;
        Ok(Output {
            path: path.to_path_buf(),
            temp,
        })
    }

    fn finish(mut self, bytes: &[u8]) -> Result<()> {
        let write =
            |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", self.path.display());
        self.temp.write_all(bytes).map_err(write)?;
        self.temp.as_file().sync_all().map_err(write)?;
        zcopy::place::open_up(self.temp.as_file()).map_err(write)?;
        self.temp
            .persist(&self.path)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", self.path.display(), e.error))?;
        Ok(())
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut job_list: Vec<Job> = Vec::new();
    for job in &args.jobs {
        if !job_list.contains(job) {
            job_list.push(*job);
        }
    }
    // Calibration is a run of its own: the crossovers, not the table.
    let rows: Vec<Row> = job_list
        .iter()
        .filter(|_| !args.calibrate)
        .flat_map(|&job| jobs::rows(job))
        .filter(|row| args.engines.is_empty() || args.engines.iter().any(|e| e == row.engine()))
        .collect();
    if rows.is_empty() && !args.calibrate {
        bail!(Usage(format!(
            "no row matches --jobs {} and --engines {}",
            job_list
                .iter()
                .map(|j| j.name())
                .collect::<Vec<_>>()
                .join(","),
            args.engines.join(",")
        )));
    }
    let json_out = args.json.as_deref().map(Output::open).transpose()?;
    let svg_out = args.svg.as_deref().map(Output::open).transpose()?;
    let html_out = args.html.as_deref().map(Output::open).transpose()?;
    let profile_out = if args.calibrate {
        Some(calibrate::open_profile()?)
    } else {
        None
    };

    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("zcopy-bench.")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a directory in {}", base.display()))?;
    // Calibration writes files of its own sizes; it never reads the rows' file.
    let files = make_files(
        dir.path(),
        if args.calibrate { MIN_SIZE } else { args.size },
    )?;
    let mut counters = Counters::open();
    let mut skb = SkbBytes::open();
    let bar = progress(rows.len() as u64 * u64::from(args.repeat));
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for row in rows {
        bar.set_message(format!("{}: {}", row.job.name(), row.label));
        let mut taken = Vec::new();
        let mut failed = None;
        for _ in 0..args.repeat {
            match take(
                &row,
                &files,
                args.cold,
                counters.as_mut().ok(),
                skb.as_mut().ok(),
            ) {
                Ok(t) => taken.push(t),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            bar.inc(1);
        }
        match failed {
            None => results.push(Measured::new(row, taken, args.cold)),
            Some(e) => failures.push(format!("{} / {}: {e:#}", row.job.name(), row.label)),
        }
    }
    bar.set_message("repeating the rows that decide the seeds' claims");
    let claims = verdict::decide(
        &mut results,
        Duration::from_secs_f64(args.budget),
        &mut |row| {
            take(
                row,
                &files,
                args.cold,
                counters.as_mut().ok(),
                skb.as_mut().ok(),
            )
        },
    );
    let peers = if args.peers && !args.calibrate {
        bar.set_message("peers");
        Some(peers::run(&job_list, &files, args.repeat))
    } else {
        None
    };
    let calibration = if args.calibrate {
        bar.set_message("calibrating");
        Some(calibrate::measure(dir.path(), args.repeat, args.size)?)
    } else {
        None
    };
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
    let report = Report {
        env,
        results,
        claims,
        peers,
        calibration,
        notes,
    };
    let text = if args.quiet {
        String::new()
    } else if args.wide || args.verbose > 0 {
        table::wide(&report)
    } else {
        table::narrow(&report, table::terminal_width())
    };
    if let (Some(out), Some(profile)) = (profile_out, &report.calibration) {
        out.finish(&profile.bytes())?;
    }
    if let Some(out) = json_out {
        out.finish((serde_json::to_string_pretty(&report.json())? + "\n").as_bytes())?;
    }
    if let Some(out) = svg_out {
        out.finish(chart::render(&report.results, &report.env)?.as_bytes())?;
    }
    if let Some(out) = html_out {
        out.finish(html::render(&report)?.as_bytes())?;
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(crate::cmd::StdoutClosed.into())
        }
        other => Ok(other?),
    }
}

/// Everything a run found, for the table, the JSON, the chart and the HTML page.
pub struct Report {
    pub env: Value,
    pub results: Vec<Measured>,
    pub claims: Vec<verdict::Claim>,
    pub peers: Option<peers::Peers>,
    pub calibration: Option<calibrate::Calibration>,
    pub notes: Vec<String>,
}

impl Report {
    fn json(&self) -> Value {
        let rows: Vec<Value> = self.results.iter().map(row_json).collect();
        let claims: Vec<Value> = self.claims.iter().map(verdict::Claim::json).collect();
        json!({
            "environment": self.env,
            "rows": rows,
            "claims": claims,
            "peers": self.peers.as_ref().map(peers::Peers::json),
            "calibration": self.calibration.as_ref().map(calibrate::Calibration::json),
            "notes": self.notes,
        })
    }
}

fn progress(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{pos}/{len} {wide_bar} {msg}").expect("a valid template"),
    )
}

/// One sample of `row`, with the counters around it.
fn take(
    row: &Row,
    files: &Files,
    cold: bool,
    mut counters: Option<&mut Counters>,
    mut skb: Option<&mut SkbBytes>,
) -> Result<Taken> {
    if cold {
        drop_cache(&files.big)?;
    }
    if let Some(c) = counters.as_deref_mut() {
        c.start();
    }
    if let Some(c) = skb.as_deref_mut() {
        c.start();
    }
    let sample = jobs::measure(row, files);
    let counts = counters.map(Counters::stop);
    let skb_bytes = skb.and_then(SkbBytes::stop);
    Ok(Taken {
        sample: sample?,
        counts,
        skb_bytes,
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
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    json!({
        "kernel": uname.release().to_string_lossy(),
        "machine": uname.machine().to_string_lossy(),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "load_average": load,
        "file_system": file_system(dir),
        "file_size": args.size,
        "page_cache": if args.cold { "cold (posix_fadvise DONTNEED before each sample)" } else { "warm" },
        "repeat": args.repeat,
        "budget_s": args.budget,
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
    let check = model::check(&m.row, m);
    let peer = s.peer.as_ref();
    json!({
        "job": m.row.job.name(),
        "engine": m.row.engine(),
        "label": m.row.label,
        "buffer": m.row.buffer(),
        "bytes": s.bytes,
        "seconds": s.seconds,
        "samples": m.taken.len(),
        "throughput_bytes_per_s": m.throughput(),
        "throughput_samples": m.throughputs(),
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
        "check": check.text,
        "check_holds": check.holds,
    })
}

const MIB: f64 = (1u64 << 20) as f64;
