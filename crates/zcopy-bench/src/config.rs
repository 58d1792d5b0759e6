//! What a run measures and where it writes, as plain values: `zcopy bench` fills
//! them in from its flags.

use std::path::PathBuf;
use std::time::Duration;

use crate::jobs::Job;

/// A bench run: the jobs, the engines, the samples and the output files.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Size of the generated test file (at least [`MIN_SIZE`]).
    pub size: u64,
    /// Jobs to run, in order; a job named twice runs once.
    pub jobs: Vec<Job>,
    /// Only rows with these engines (the names `zcopy --engine` takes, and
    /// "direct"); empty for every row.
    pub engines: Vec<String>,
    /// Samples per row (at least 1); the table shows the median and the spread.
    pub repeat: u32,
    /// Time spent at most on extra samples of the rows that decide a claim.
    pub budget: Duration,
    /// Drop the test file from the page cache before every sample.
    pub cold: bool,
    /// Also run the installed peers under the same conditions.
    pub peers: bool,
    /// Measure only this machine's crossovers and write the calibration profile.
    pub calibrate: bool,
    /// Write every row and the environment as JSON here.
    pub json: Option<PathBuf>,
    /// Write a chart of throughput and CPU per GiB as SVG here.
    pub svg: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    pub html: Option<PathBuf>,
    /// Directory for the test files (its file system is the one measured); the
    /// system's temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// The `zcopy` binary whose commands the peers are compared with.
    pub zcopy: PathBuf,
}

impl Default for Config {
    /// `zcopy bench`'s defaults: a 256 MiB file, every job, 3 samples, 20 s.
    fn default() -> Config {
        Config {
            size: 256 << 20,
            jobs: Job::ALL.to_vec(),
            engines: Vec::new(),
            repeat: 3,
            budget: Duration::from_secs(20),
            cold: false,
            peers: false,
            calibrate: false,
            json: None,
            svg: None,
            html: None,
            dir: None,
            zcopy: PathBuf::from("zcopy"),
        }
    }
}

/// The smallest test file: below a few pages the rows measure start-up, not moving bytes.
pub const MIN_SIZE: u64 = 64 << 10;

/// What a run says while it runs: a bar on a terminal, or nothing.
pub trait Progress {
    /// The run is about to take `total` samples.
    fn start(&mut self, total: u64);
    /// What is being measured now.
    fn message(&mut self, text: &str);
    /// One more sample was taken.
    fn sample(&mut self);
    /// Measuring is over; the report follows.
    fn finish(&mut self);
}
