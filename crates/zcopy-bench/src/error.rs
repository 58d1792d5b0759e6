//! What can stop a run before it has a report. A row that fails does not: it is
//! left out and named in the report's notes.

use std::io;
use std::path::PathBuf;

/// A run that could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No row is left once the jobs and engines are applied (a usage error).
    #[error("no row matches --jobs {jobs} and --engines {engines}")]
    NoRows {
        /// The jobs asked for, comma-separated.
        jobs: String,
        /// The engines asked for, comma-separated.
        engines: String,
    },
    /// The calibration profile has no place: neither `XDG_CACHE_HOME` nor `HOME`.
    #[error("cannot find a cache directory: set XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// A directory or test file could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        /// What could not be created.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The run's own directory could not be made in the one given.
    #[error("cannot create a directory in {}", dir.display())]
    TempDir {
        /// The directory given (or the system's temporary directory).
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A test file or an output file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The chart could not be drawn.
    #[error("cannot draw the chart: {0}")]
    Chart(String),
    /// A calibration sample failed.
    #[error(transparent)]
    Calibrate(Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn a_calibration_failure_keeps_its_causes_for_the_exit_code() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = Error::Calibrate(anyhow::Error::new(io).context("cannot connect").into());
        let mut chain: Vec<&(dyn std::error::Error + 'static)> = vec![&e];
        while let Some(next) = chain[chain.len() - 1].source() {
            chain.push(next);
        }
        let words: Vec<String> = chain.iter().map(ToString::to_string).collect();
        assert_eq!(words, ["cannot connect", "connection refused"]);
        assert!(chain[1].downcast_ref::<std::io::Error>().is_some());
    }
}
