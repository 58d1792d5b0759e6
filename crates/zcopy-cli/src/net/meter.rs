//! What a long transfer shows and obeys: the progress line (the look of
//! [`progress::bar`], redrawn about four times a second, as curl and pv do, never
//! per write), and `--limit-rate` (the pacing itself is `zcopy::limit`'s).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget};
use zcopy_wire::observe::Observer;

use crate::progress;

/// Redraws per second.
const HZ: u8 = 4;

/// A session's progress: bytes over every connection, and the file being sent.
pub struct Meter {
    bar: ProgressBar,
    /// Files in the session (a count is shown when there are several).
    files: u64,
}

impl Meter {
    /// A meter of `total` bytes (unknown: `None`) over `files` files, drawn once
    /// [`Meter::show`] says so.
    pub fn new(total: Option<u64>, files: u64) -> Arc<Meter> {
        Arc::new(Meter {
            bar: progress::bar(total.filter(|&t| t > 0), ProgressDrawTarget::hidden()),
            files,
        })
    }

    /// Draws the line on stderr while the [`Drawing`] lives, if `show` and stderr
    /// is a terminal.
    pub fn show(self: &Arc<Meter>, show: bool) -> Drawing {
        if !show || !std::io::stderr().is_terminal() {
            return Drawing(None);
        }
        self.bar
            .set_draw_target(ProgressDrawTarget::stderr_with_hz(HZ));
        Drawing(Some(self.clone()))
    }
}

impl Observer for Meter {
    fn moved(&self, n: u64) {
        self.bar.inc(n);
    }

    fn entry(&self, index: u64, name: &str) {
        if self.files > 1 {
            self.bar.set_prefix(format!("[{index}/{}] ", self.files));
        }
        let name: String = if name.chars().count() > 30 {
            let tail: String = name.chars().rev().take(29).collect();
            format!("…{}", tail.chars().rev().collect::<String>())
        } else {
            name.to_string()
        };
        self.bar.set_message(name);
    }
}

/// The line being drawn; dropping it erases the line.
pub struct Drawing(Option<Arc<Meter>>);

impl Drop for Drawing {
    fn drop(&mut self) {
        if let Some(meter) = self.0.take() {
            meter.bar.finish_and_clear();
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
