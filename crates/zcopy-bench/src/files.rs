//! The test files a bench works on, written before the first sample.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::jobs::SMALL_FILE;

/// The files a bench works on.
pub struct Files {
    pub big: PathBuf,
    pub size: u64,
    pub small: PathBuf,
    /// How many times the small-file job sends its file per sample.
    pub small_count: u64,
    pub dir: PathBuf,
}

impl Files {
    /// Writes the test files: the big one with bytes that do not compress or
    /// dedupe, synced so that dropping it from the cache really sends reads to the
    /// device.
    pub fn make(dir: &Path, size: u64) -> Result<Files, Error> {
        let big = dir.join("bench.dat");
        let mut f = File::create(&big).map_err(|source| Error::Create {
            path: big.clone(),
            source,
        })?;
        let mut block = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut left = size;
        let written = (|| {
            while left > 0 {
                for word in block.chunks_exact_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    word.copy_from_slice(&x.to_le_bytes());
                }
                let n = left.min(block.len() as u64) as usize;
                f.write_all(&block[..n])?;
                left -= n as u64;
            }
            f.sync_all()
        })();
        written.map_err(|source| Error::Write {
            path: big.clone(),
            source,
        })?;
        let small = dir.join("small.dat");
        std::fs::write(&small, &block[..SMALL_FILE as usize]).map_err(|source| Error::Write {
            path: small.clone(),
            source,
        })?;
        Ok(Files {
            big,
            size,
            small,
            small_count: (size.min(64 << 20) / SMALL_FILE).max(1),
            dir: dir.to_path_buf(),
        })
    }

    /// Drops the big file from the page cache, for a cold sample.
    pub fn drop_cache(&self) -> io::Result<()> {
        let f = File::open(&self.big)?;
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
        Ok(())
    }
}
