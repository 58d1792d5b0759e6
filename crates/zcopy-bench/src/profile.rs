//! The calibration profile read back (`$XDG_CACHE_HOME/zcopy/calibration.json`,
//! else `~/.cache/zcopy/calibration.json`), which `zcopy bench --calibrate`
//! writes.
//!
//! The library's `auto` has no hook for a profile, so the command line applies it:
//! `zcopy scan` under `auto` asks [`Profile::scan_engine`] and `zcopy send --raw`
//! asks [`Profile::send_engine`] (the framed protocol batches small files its own way); when the profile has an answer for the file's size,
//! the command uses that engine and cites the measurement. The reader lives beside
//! the writer, which defines the format.

use std::path::{Path, PathBuf};

use serde_json::Value;
use zcopy::size;
use zcopy::{Engine, ScanEngine};

/// The scan engines calibrated, and the only ones a profile can name.
pub const SCAN_ENGINES: [ScanEngine; 3] = [ScanEngine::Read, ScanEngine::Pread, ScanEngine::Mmap];
/// The engines calibrated for sending one file into a socket.
pub const SEND_ENGINES: [Engine; 2] = [Engine::ReadWrite, Engine::Sendfile];
/// A calibrated engine replaces `auto`'s default only when it was this much faster.
const MARGIN: f64 = 0.05;

/// Where the profile lives.
pub fn profile_path() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(cache.join("zcopy").join("calibration.json"))
}

/// A calibration profile read back, for `auto`.
pub struct Profile {
    doc: Value,
}

impl Profile {
    /// The profile, if one was written and parses; `auto` uses its defaults otherwise.
    pub fn load() -> Option<Profile> {
        let text = std::fs::read(profile_path()?).ok()?;
        let doc: Value = serde_json::from_slice(&text).ok()?;
        (doc["version"] == 1).then_some(Profile { doc })
    }

    /// The scan engine measured fastest for files the size of `size` (the largest
    /// calibrated size not above it), with the reason in words: "read: 1.9x mmap on
    /// this machine at 16 MiB, calibrated 2026-11-22"; `None` when no engine was
    /// more than 5% faster than the next, where `auto`'s defaults stand.
    pub fn scan_engine(&self, size: u64) -> Option<(ScanEngine, String)> {
        let entries = self.doc["scan"].as_array()?;
        let e = entries
            .iter()
            .rfind(|e| e["size"].as_u64().is_some_and(|s| s <= size))
            .or_else(|| entries.first())?;
        let best = e["best"].as_str()?;
        let engine = SCAN_ENGINES.into_iter().find(|s| s.name() == best)?;
        let rates = e["mib_s"].as_object()?;
        let own = rates.get(best)?.as_f64()?;
        let (other, rate) = rates
            .iter()
            .filter(|(k, _)| k.as_str() != best)
            .filter_map(|(k, v)| Some((k, v.as_f64()?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let ratio = own / rate.max(f64::MIN_POSITIVE);
        if ratio < 1.0 + MARGIN {
            return None;
        }
        Some((
            engine,
            format!(
                "{best}: {ratio:.1}x {other} on this machine at {}, calibrated {}",
                size::human(e["size"].as_u64()?),
                self.doc["calibrated"].as_str().unwrap_or("?")
            ),
        ))
    }
}

impl Profile {
    /// The engine measured faster than sendfile (auto's first choice for a file into
    /// a socket) for a file of `size` bytes, with the reason in words; `None` when
    /// sendfile won, when nothing won by more than 5%, or when the file is larger
    /// than any calibrated size.
    pub fn send_engine(&self, size: u64) -> Option<(Engine, String)> {
        let entries = self.doc["send_small"].as_array()?;
        let e = entries
            .iter()
            .find(|e| e["size"].as_u64().is_some_and(|s| s >= size))?;
        let rates = e["mib_s"].as_object()?;
        let read_write = rates.get(Engine::ReadWrite.name())?.as_f64()?;
        let sendfile = rates.get(Engine::Sendfile.name())?.as_f64()?;
        let ratio = read_write / sendfile.max(f64::MIN_POSITIVE);
        (ratio >= 1.0 + MARGIN).then(|| {
            (
                Engine::ReadWrite,
                format!(
                    "read-write: {ratio:.1}x sendfile on this machine for files up to {}, calibrated {}",
                    size::human(e["size"].as_u64().unwrap_or(0)),
                    self.doc["calibrated"].as_str().unwrap_or("?")
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn profile_picks_the_largest_size_not_above_the_file() {
        let profile = Profile {
            doc: json!({
                "version": 1,
                "calibrated": "2026-11-22",
                "scan": [
                    { "size": 65536, "mib_s": { "read": 900.0, "mmap": 300.0 }, "best": "read" },
                    { "size": 16777216, "mib_s": { "read": 100.0, "mmap": 190.0 }, "best": "mmap" },
                ],
            }),
        };
        let (engine, why) = profile.scan_engine(1 << 30).unwrap();
        assert_eq!(engine, ScanEngine::Mmap);
        assert_eq!(
            why,
            "mmap: 1.9x read on this machine at 16 MiB, calibrated 2026-11-22"
        );
        assert_eq!(profile.scan_engine(4096).unwrap().0, ScanEngine::Read);
        assert_eq!(profile.scan_engine(1 << 20).unwrap().0, ScanEngine::Read);
        let close = Profile {
            doc: json!({
                "version": 1,
                "scan": [{ "size": 65536, "mib_s": { "read": 102.0, "mmap": 100.0 }, "best": "read" }],
            }),
        };
        assert!(close.scan_engine(1 << 20).is_none(), "2% decides nothing");
    }

    #[test]
    fn profile_picks_read_write_for_small_sends_only_where_it_won() {
        let profile = Profile {
            doc: json!({
                "version": 1,
                "calibrated": "2026-11-22",
                "send_small": [
                    { "size": 4096, "mib_s": { "read-write": 800.0, "sendfile": 500.0 }, "best": "read-write" },
                    { "size": 65536, "mib_s": { "read-write": 900.0, "sendfile": 1900.0 }, "best": "sendfile" },
                ],
            }),
        };
        let (engine, why) = profile.send_engine(1000).unwrap();
        assert_eq!(engine, Engine::ReadWrite);
        assert_eq!(
            why,
            "read-write: 1.6x sendfile on this machine for files up to 4.0 KiB, calibrated 2026-11-22"
        );
        assert!(
            profile.send_engine(8192).is_none(),
            "sendfile won at 64 KiB"
        );
        assert!(
            profile.send_engine(1 << 20).is_none(),
            "larger than calibrated"
        );
    }
}
