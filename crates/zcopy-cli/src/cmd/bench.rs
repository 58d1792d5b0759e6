//! `zcopy bench`: the flags of the benchmark, turned into a
//! [`zcopy_bench::Config`]; the run and its report are the `zcopy-bench` crate's.
//! Here: the progress bar on a terminal, the view of the table chosen by
//! `--quiet`, `--wide` or the terminal's width, and stdout.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use zcopy::size;
use zcopy_bench::{Config, Job, MIN_SIZE};

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
    /// profile that `auto` reads in scan, send and cp ($XDG_CACHE_HOME/zcopy/calibration.json)
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

pub fn run(args: Args) -> Result<()> {
    let mut config = Config::default();
    config.size = args.size;
    config.jobs = args.jobs;
    config.engines = args.engines;
    config.repeat = args.repeat;
    config.budget = Duration::from_secs_f64(args.budget);
    config.cold = args.cold;
    config.peers = args.peers;
    config.calibrate = args.calibrate;
    config.json = args.json;
    config.svg = args.svg;
    config.html = args.html;
    config.dir = args.dir;
    // The peers' first row in each group is this binary's own command.
    config.zcopy = std::env::current_exe().unwrap_or_else(|_| "zcopy".into());
    let report = zcopy_bench::run(&config, &mut Bar(None))?;
    let text = if args.quiet {
        String::new()
    } else if args.wide || args.verbose > 0 {
        report.wide()
    } else {
        report.narrow(terminal_width())
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(super::StdoutClosed.into()),
        other => Ok(other?),
    }
}

/// The run's progress on stderr, when it is a terminal.
struct Bar(Option<ProgressBar>);

impl zcopy_bench::Progress for Bar {
    fn start(&mut self, total: u64) {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{pos}/{len} {wide_bar} {msg}")
                    .expect("a valid template"),
            )
        } else {
            ProgressBar::hidden()
        };
        self.0 = Some(bar);
    }

    fn message(&mut self, text: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(text.to_string());
        }
    }

    fn sample(&mut self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The width to wrap to: the terminal's, else `$COLUMNS`, else 80.
fn terminal_width() -> usize {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        if let Ok(size) = rustix::termios::tcgetwinsize(&stdout) {
            if size.ws_col > 0 {
                return usize::from(size.ws_col);
            }
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c > 0)
        .unwrap_or(80)
}
