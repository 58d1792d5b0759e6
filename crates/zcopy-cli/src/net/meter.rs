//! What a long transfer shows and obeys: a progress line redrawn on a timer (about
//! four times a second, as curl and pv do, never per write), and `--limit-rate`
//! (the pacing itself is `zcopy::limit`'s).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zcopy::size::human;
use zcopy_wire::observe::Observer;

/// How often the progress line is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// Counters the transferring threads bump and the drawing thread reads.
pub struct Meter {
    bytes: AtomicU64,
    total: Option<u64>,
    files_done: AtomicU64,
    files: u64,
    name: Mutex<String>,
    started: Instant,
    stop: AtomicBool,
}

impl Meter {
    /// A meter for `files` entries of `total` bytes (`None`: a stream of unknown length).
    pub fn new(total: Option<u64>, files: u64) -> Arc<Meter> {
        Arc::new(Meter {
            bytes: AtomicU64::new(0),
            total,
            files_done: AtomicU64::new(0),
            files,
            name: Mutex::new(String::new()),
            started: Instant::now(),
            stop: AtomicBool::new(false),
        })
    }

    /// Starts redrawing on stderr if `show` and stderr is a terminal; the line is
    /// cleared when the returned guard drops.
    pub fn show(self: &Arc<Meter>, show: bool) -> Drawing {
        if !show || !std::io::stderr().is_terminal() {
            return Drawing(None);
        }
        let meter = self.clone();
        let thread = std::thread::spawn(move || {
            while !meter.stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(TICK);
                if meter.stop.load(Ordering::Relaxed) {
                    break;
                }
                let line = meter.line();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
            }
        });
        Drawing(Some((self.clone(), thread)))
    }

    fn line(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (bytes as f64 / secs) as u64;
        let mut line = String::new();
        if self.files > 1 {
            line.push_str(&format!(
                "[{}/{}] ",
                self.files_done.load(Ordering::Relaxed),
                self.files
            ));
        }
        let name = self.name.lock().unwrap_or_else(|p| p.into_inner());
        let name: String = if name.chars().count() > 30 {
            let tail: String = name.chars().rev().take(29).collect();
            format!("…{}", tail.chars().rev().collect::<String>())
        } else {
            name.clone()
        };
        line.push_str(&name);
        match self.total {
            Some(total) if total > 0 => {
                let eta = total
                    .saturating_sub(bytes)
                    .checked_div(rate)
                    .map_or(String::new(), |s| format!(" eta {s}s"));
                line.push_str(&format!(
                    "  {}/{} ({}%)  {}/s{eta}",
                    human(bytes),
                    human(total),
                    bytes.min(total) * 100 / total,
                    human(rate)
                ));
            }
            _ => line.push_str(&format!("  {}  {}/s", human(bytes), human(rate))),
        }
        line
    }
}

impl Observer for Meter {
    fn moved(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The entry now being sent or received (1-based `index`).
    fn entry(&self, index: u64, name: &str) {
        self.files_done.store(index, Ordering::Relaxed);
        let mut current = self.name.lock().unwrap_or_else(|p| p.into_inner());
        current.clear();
        current.push_str(name);
    }
}

/// The drawing thread; dropping it stops the thread and clears the line.
pub struct Drawing(Option<(Arc<Meter>, JoinHandle<()>)>);

impl Drop for Drawing {
    fn drop(&mut self) {
        if let Some((meter, thread)) = self.0.take() {
            meter.stop.store(true, Ordering::Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
            clear_line();
        }
    }
}

/// Erases a progress line (also called on SIGINT, so no half-drawn line stays).
pub fn clear_line() {
    if std::io::stderr().is_terminal() {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// Parses a `--limit-rate` value: bytes per second with curl's suffixes (`500k`,
/// `10M`, `1G`; binary multiples, as curl uses).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let rate = zcopy::size::parse(text).map_err(|e| e.to_string())?;
    if rate == 0 {
        return Err("the rate must be above 0".into());
    }
    Ok(rate)
}
