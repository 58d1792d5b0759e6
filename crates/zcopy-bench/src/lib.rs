//! The measurements behind `zcopy bench`: every engine measured side by side on
//! this machine, beside the seeds' model of copies and switches.
//!
//! The bench writes its own test file, runs each row of each job `repeat` times
//! (page cache warm, or dropped with `posix_fadvise(DONTNEED)` under `cold`),
//! and reports the median sample with the spread of throughput across samples.
//! The rows that decide one of the seeds' claims are then sampled again, in turn,
//! until the claim's confidence interval is clear of "no difference" or the time
//! budget is spent (see `verdict`). Output files are opened before the first
//! sample, so a bad path fails in a moment rather than after the run.
//!
//! [`run`] takes a plain [`Config`] and returns a [`Report`], whose text views the
//! caller prints; the JSON, SVG, HTML and calibration files are written by the run
//! itself. Failures are typed ([`Error`]): the `zcopy` command chooses the exit
//! codes. [`Profile`] reads back what a calibration run wrote.
//!
//! ```no_run
//! struct Quiet;
//! impl zcopy_bench::Progress for Quiet {
//!     fn start(&mut self, _total: u64) {}
//!     fn message(&mut self, _text: &str) {}
//!     fn sample(&mut self) {}
//!     fn finish(&mut self) {}
//! }
//!
//! let mut config = zcopy_bench::Config::default();
//! config.jobs = vec![zcopy_bench::Job::Scan];
//! config.size = 16 << 20;
//! let report = zcopy_bench::run(&config, &mut Quiet)?;
//! print!("{}", report.narrow(80));
//! # Ok::<(), zcopy_bench::Error>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod calibrate;
mod chart;
mod config;
mod counters;
mod error;
mod files;
mod html;
mod jobs;
mod measured;
mod model;
mod output;
mod peers;
mod profile;
mod report;
mod run;
mod sample;
mod table;
mod verdict;

pub use config::{Config, Progress, MIN_SIZE};
pub use error::Error;
pub use jobs::Job;
pub use profile::Profile;
pub use report::Report;
pub use run::run;
