//! The calibration profile read back (`$XDG_CACHE_HOME/zcopy/calibration.json`,
//! else `~/.cache/zcopy/calibration.json`), which `zcopy bench --calibrate`
//! writes.
//!
//! Here, the scan side: `zcopy scan` under `auto` asks [`Profile::scan_engine`];
//! when the profile has an answer for the file's size, the command uses that engine
//! and cites the measurement. The send side (`send_small`, `send_large`) is read by
//! the library itself, `zcopy::profile`, whose `auto` orders its chain by it.

use std::path::PathBuf;

use serde_json::Value;
use zcopy::size;
use zcopy::{Engine, ScanEngine};

/// The scan engines calibrated, and the only ones a profile can name.
pub const SCAN_ENGINES: [ScanEngine; 3] = [ScanEngine::Read, ScanEngine::Pread, ScanEngine::Mmap];
/// The engines calibrated for sending one file into a socket.
pub const SEND_ENGINES: [Engine; 2] = [Engine::ReadWrite, Engine::Sendfile];
/// A calibrated engine replaces `auto`'s default only when it was this much faster.
const MARGIN: f64 = zcopy::profile::MARGIN;

/// Where the profile lives (`zcopy::profile::path`).
pub fn profile_path() -> Option<PathBuf> {
    zcopy::profile::path()
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
}
