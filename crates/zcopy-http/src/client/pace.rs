//! `--limit-rate`: a transfer kept at or under a rate.

use std::time::{Duration, Instant};

/// Keeps a transfer at or under a rate by sleeping between its steps.
pub(super) struct Pace {
    rate: u64,
    started: Instant,
}

impl Pace {
    pub(super) fn new(rate: u64) -> Pace {
        Pace {
            rate: rate.max(1),
            started: Instant::now(),
        }
    }

    /// Sleeps until `moved` bytes are due.
    pub(super) fn wait(&self, moved: u64) {
        let due = Duration::from_secs_f64(moved as f64 / self.rate as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}
