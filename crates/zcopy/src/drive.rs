//! Running a [`Transfer`] to its end the way a command does: in steps, each
//! reported to the caller (for a progress bar or a meter), paced to a rate, and
//! watched for stalls.
//!
//! A blocking descriptor with a timeout (`SO_SNDTIMEO`, `SO_RCVTIMEO`) gives
//! `EAGAIN` when one call waited that long, and each partial send restarts it: a
//! 5 s socket timeout once let a transfer to a peer that read a little now and
//! then run for 20 s. So the socket's timeout is only a tick here, and the limit is
//! [`Drive::stall`]: no byte moved for that long.
//!
//! ```
//! use std::io::Write;
//! use zcopy::drive::Drive;
//! use zcopy::limit::Limiter;
//! use zcopy::{Options, Status, Transfer};
//!
//! let mut src = tempfile::tempfile()?;
//! src.write_all(&[7; 64 << 10])?;
//! let dst = tempfile::tempfile()?;
//! let limiter = Limiter::new(1 << 30);
//! let mut transfer = Transfer::new(&src, &dst, Options::default().offset(0))?;
//! let mut seen = 0;
//! let status = Drive::new().paced(&limiter).run(&mut transfer, |n| seen += n)?;
//! assert_eq!((status, seen), (Status::Done, 64 << 10));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, Instant};

use crate::limit::Limiter;
use crate::{Error, Status, Transfer};

/// How [`Drive::run`] runs a transfer: its step, its pace and its stall limit.
#[derive(Clone, Copy, Debug)]
pub struct Drive<'a> {
    step: u64,
    limiter: Option<&'a Limiter>,
    stall: Option<Duration>,
}

impl Default for Drive<'_> {
    fn default() -> Self {
        Drive::new()
    }
}

impl<'a> Drive<'a> {
    /// Runs to the end in one go: no steps, no pace, and the first `EAGAIN` of a
    /// blocking descriptor (its timeout) ends the run.
    pub fn new() -> Drive<'a> {
        Drive {
            step: u64::MAX,
            limiter: None,
            stall: None,
        }
    }

    /// Calls back after every `bytes` moved (at the latest).
    pub fn step(mut self, bytes: u64) -> Drive<'a> {
        self.step = bytes.max(1);
        self
    }

    /// Keeps the transfer under `limiter`'s rate, which other transfers may share;
    /// the step becomes at most the limiter's [`Limiter::chunk`].
    pub fn paced(mut self, limiter: &'a Limiter) -> Drive<'a> {
        self.limiter = Some(limiter);
        self
    }

    /// Retries a descriptor's timeout (`EAGAIN`) until no byte has moved for
    /// `limit`; `Duration::ZERO` is no limit on stalls at all but the first timeout.
    pub fn stall(mut self, limit: Duration) -> Drive<'a> {
        self.stall = Some(limit).filter(|l| !l.is_zero());
        self
    }

    /// Runs `transfer` until it is done, calling `moved` with the bytes of each
    /// step that moved some. Returns [`Status::Done`], or [`Status::WouldBlock`]
    /// when a non-blocking descriptor is not ready or a blocking one timed out
    /// with no progress for the stall limit: the caller says which it was.
    pub fn run(
        &self,
        transfer: &mut Transfer<'_>,
        mut moved: impl FnMut(u64),
    ) -> Result<Status, Error> {
        let step = self.limiter.map_or(self.step, |l| self.step.min(l.chunk()));
        let mut last = Instant::now();
        loop {
            let before = transfer.moved();
            let status = transfer.run_some(step);
            let now = transfer.moved() - before;
            if now > 0 {
                last = Instant::now();
                moved(now);
                if let Some(limiter) = self.limiter {
                    limiter.pace(now);
                }
            }
            match (status?, self.stall) {
                (Status::Done, _) => return Ok(Status::Done),
                (Status::More, _) => {}
                (Status::WouldBlock(_), Some(stall)) if last.elapsed() < stall => {}
                (Status::WouldBlock(side), _) => return Ok(Status::WouldBlock(side)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::Drive;
    use crate::{Engine, EngineChoice, Options, Side, Status, Transfer};

    #[test]
    fn steps_are_reported_as_they_move() {
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(&[1; 100 << 10]).unwrap();
        let dst = tempfile::tempfile().unwrap();
        let mut transfer = Transfer::new(&src, &dst, Options::default().offset(0)).unwrap();
        let mut steps = Vec::new();
        let status = Drive::new()
            .step(32 << 10)
            .run(&mut transfer, |n| steps.push(n))
            .unwrap();
        assert_eq!(status, Status::Done);
        assert_eq!(steps.iter().sum::<u64>(), 100 << 10);
        assert!(steps.iter().all(|&n| n <= 32 << 10), "{steps:?}");
    }

    #[test]
    fn a_peer_that_takes_nothing_ends_the_run_after_the_stall_limit() {
        let src = tempfile::tempfile().unwrap();
        src.set_len(16 << 20).unwrap();
        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_write_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let options = Options::default()
            .engine(EngineChoice::Only(Engine::ReadWrite))
            .offset(0);
        let mut transfer = Transfer::new(&src, &ours, options).unwrap();
        let status = Drive::new()
            .stall(Duration::from_millis(200))
            .run(&mut transfer, |_| {})
            .unwrap();
        assert_eq!(status, Status::WouldBlock(Side::Sink));
        assert!(transfer.moved() < 16 << 20);
    }
}
