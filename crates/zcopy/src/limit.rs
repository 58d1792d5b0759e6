//! A rate limit (`--limit-rate`) that every thread and connection of a transfer
//! shares: send's streams, recv's connections, get's segments.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Paces the connections of a transfer to a rate. Each caller reports the bytes
/// it moved and sleeps until the average is back under the rate, with at most a
/// tenth of a second's worth of burst.
#[derive(Debug)]
pub struct Limiter {
    rate: u64,
    next: Mutex<Instant>,
}

impl Limiter {
    /// A limiter to `rate` bytes per second (0 is taken as 1).
    pub fn new(rate: u64) -> Limiter {
        Limiter {
            rate: rate.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// How many bytes to move between two calls of [`Limiter::pace`]: about 1/16 s
    /// worth, so the pace is smooth even at low rates.
    pub fn chunk(&self) -> u64 {
        (self.rate / 16).clamp(4 << 10, 4 << 20)
    }

    /// Accounts `n` bytes and sleeps if they came too fast.
    pub fn pace(&self, n: u64) {
        let burst = Duration::from_millis(100);
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let earliest = now.checked_sub(burst).unwrap_or(now);
            *next = (*next).max(earliest) + Duration::from_secs_f64(n as f64 / self.rate as f64);
            next.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limiter;

    #[test]
    fn a_chunk_is_a_sixteenth_of_a_second_within_bounds() {
        assert_eq!(Limiter::new(1 << 20).chunk(), 64 << 10);
        assert_eq!(Limiter::new(1).chunk(), 4 << 10);
        assert_eq!(Limiter::new(1 << 40).chunk(), 4 << 20);
    }
}
