//! The run's output files, each created beside its real name before the first
//! sample and renamed over it only when complete.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// An output file, open beside its name until [`Output::finish`].
pub struct Output {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl Output {
    pub fn open(path: &Path) -> Result<Output, Error> {
        let write = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Err(write(rustix::io::Errno::ISDIR.into()));
        }
        let dir = zcopy::place::parent_dir(path);
        let temp = tempfile::Builder::new()
            .prefix(".zcopy-bench.")
            .tempfile_in(dir)
            .map_err(|e| {
                // tempfile's text names the temporary file; the error names the output.
                let words = e.to_string();
                let words = words.split(" (os error").next().unwrap_or_default();
                write(io::Error::new(e.kind(), words))
            })?;
        Ok(Output {
            path: path.to_path_buf(),
            temp,
        })
    }

    pub fn finish(mut self, bytes: &[u8]) -> Result<(), Error> {
        let result = (|| {
            self.temp.write_all(bytes)?;
            self.temp.as_file().sync_all()?;
            zcopy::place::open_up(self.temp.as_file())?;
            self.temp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        })();
        result.map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })
    }
}
