//! This machine's calibration profile, read back for `auto`.
//!
//! `zcopy bench --calibrate` measures which engine moves a page-cached file fastest
//! into each kind of [`Destination`] and writes the figures to
//! `$XDG_CACHE_HOME/zcopy/calibration.json` (else `~/.cache/zcopy/calibration.json`).
//! [`Profile::cached`] reads that file once per process; [`EngineChoice::Auto`]
//! then tries the measured winner first for a destination of that kind (see
//! [`EngineChoice::plan_for`]), and the report's [`Preference`] cites the figures.
//! Without a profile, or for a destination it did not measure, the chain's own
//! order stands, which docs/engines.md justifies by measurement.
//!
//! The file is JSON, `"version": 1`; this module reads its `calibrated` date and its
//! `send_small` and `send_large` entries, each a size and the MiB/s of each engine
//! (`send_large` also names its destination). The scan entries are `zcopy scan`'s,
//! read by zcopy-bench.
//!
//! [`EngineChoice::Auto`]: crate::EngineChoice::Auto
//! [`EngineChoice::plan_for`]: crate::EngineChoice::plan_for
//! [`Preference`]: crate::choice::Preference

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::choice::{Destination, Engine};

/// A calibrated engine is put first only when it measured at least this much faster
/// than the one the chain would try first: closer figures are noise on a shared VM.
pub const MARGIN: f64 = 0.05;

/// Where the profile lives: `$XDG_CACHE_HOME/zcopy/calibration.json` (an absolute
/// `XDG_CACHE_HOME` only, as the XDG spec says), else under `$HOME/.cache`.
pub fn path() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(cache.join("zcopy").join("calibration.json"))
}

/// A calibration profile: when it was measured, and what.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Profile {
    /// The day it was measured, `YYYY-MM-DD` (empty if the file does not say).
    pub calibrated: String,
    send_small: Vec<Rates>,
    send_large: Vec<(Destination, Reader, Rates)>,
}

/// How the calibration's receiver read what was sent: the sender cannot tell, and
/// the fastest engine depends on it (a sendfile into a splice reader copies
/// nothing; into a copying reader, the reader's copy is the slowest step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reader {
    /// `read(2)` into user memory, as nc, cat and most programs do.
    Copy,
    /// `splice(2)` out of the socket or pipe, as `zcopy recv` does.
    Splice,
}

impl Reader {
    /// Both readers, the common one first.
    pub const ALL: [Reader; 2] = [Reader::Copy, Reader::Splice];

    /// The name a profile gives it.
    pub fn name(self) -> &'static str {
        match self {
            Reader::Copy => "copy",
            Reader::Splice => "splice",
        }
    }
}

impl std::fmt::Display for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reader::Copy => "a copying reader",
            Reader::Splice => "a splice reader",
        })
    }
}

/// The rates of the engines measured at one size, in MiB/s.
#[derive(Clone, Debug, Deserialize)]
struct Rates {
    size: u64,
    mib_s: BTreeMap<String, f64>,
}

impl Rates {
    fn of(&self, engine: Engine) -> Option<f64> {
        self.mib_s.get(engine.name()).copied().filter(|r| *r > 0.0)
    }
}

fn copy_reader() -> String {
    Reader::Copy.name().into()
}

#[derive(Deserialize)]
struct Doc {
    version: u32,
    #[serde(default)]
    calibrated: String,
    #[serde(default)]
    send_small: Vec<Rates>,
    #[serde(default)]
    send_large: Vec<Large>,
}

#[derive(Deserialize)]
struct Large {
    destination: String,
    #[serde(default = "copy_reader")]
    reader: String,
    #[serde(flatten)]
    rates: Rates,
}

impl Profile {
    /// Parses a profile; `None` for anything that is not a version-1 profile.
    /// Entries naming an engine or destination this build does not know are
    /// ignored, so an older binary reads a newer profile.
    pub fn parse(bytes: &[u8]) -> Option<Profile> {
        let doc: Doc = serde_json::from_slice(bytes).ok()?;
        if doc.version != 1 {
            return None;
        }
        let send_large = doc
            .send_large
            .into_iter()
            .filter_map(|l| {
                let reader = Reader::ALL.into_iter().find(|r| r.name() == l.reader)?;
                Some((l.destination.parse().ok()?, reader, l.rates))
            })
            .collect();
        Some(Profile {
            calibrated: doc.calibrated,
            send_small: doc.send_small,
            send_large,
        })
    }

    /// Reads and parses the profile at [`path()`]; `None` if there is none or it
    /// does not parse, where `auto` keeps its defaults.
    pub fn load() -> Option<Profile> {
        Profile::parse(&std::fs::read(path()?).ok()?)
    }

    /// [`Profile::load`], once per process.
    pub fn cached() -> Option<&'static Profile> {
        static PROFILE: OnceLock<Option<Profile>> = OnceLock::new();
        PROFILE.get_or_init(Profile::load).as_ref()
    }

    /// The rate measured for `engine` sending a large file into `destination`
    /// read by `reader`, MiB/s.
    pub fn large_rate(
        &self,
        destination: Destination,
        reader: Reader,
        engine: Engine,
    ) -> Option<f64> {
        self.send_large
            .iter()
            .find(|(d, r, _)| *d == destination && *r == reader)?
            .2
            .of(engine)
    }

    /// For one file of `size` bytes into a socket, whether read-write measured at
    /// least 5% faster than sendfile at the smallest calibrated size not below
    /// `size`: that size and the ratio. `None` when sendfile won or tied, or when the
    /// file is larger than any calibrated size (the `send_large` figures apply).
    pub fn small_read_write(&self, size: u64) -> Option<(u64, f64)> {
        let rates = self.send_small.iter().find(|e| e.size >= size)?;
        let ratio = rates.of(Engine::ReadWrite)? / rates.of(Engine::Sendfile)?;
        (ratio >= 1.0 + MARGIN).then_some((rates.size, ratio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"{
        "version": 1,
        "calibrated": "2026-12-02",
        "scan": [{ "size": 65536, "mib_s": { "read": 900.0 }, "best": "read" }],
        "send_small": [
            { "size": 4096, "mib_s": { "read-write": 800.0, "sendfile": 500.0 }, "best": "read-write" },
            { "size": 65536, "mib_s": { "read-write": 900.0, "sendfile": 1900.0 }, "best": "sendfile" }
        ],
        "send_large": [
            { "destination": "local-tcp", "reader": "copy", "size": 67108864,
              "mib_s": { "sendfile": 2000.0, "splice": 1500.0, "read-write": 2600.0 }, "best": "read-write" },
            { "destination": "local-tcp", "reader": "splice", "size": 67108864,
              "mib_s": { "sendfile": 3800.0, "read-write": 2200.0 }, "best": "sendfile" },
            { "destination": "local-tcp", "reader": "telepathy", "size": 1, "mib_s": { "sendfile": 1.0 } },
            { "destination": "pipe", "size": 67108864,
              "mib_s": { "sendfile": 1400.0, "splice": 1700.0, "read-write": 1200.0 }, "best": "splice" },
            { "destination": "infiniband", "size": 1, "mib_s": { "sendfile": 1.0 } },
            { "destination": "unix", "size": 67108864, "mib_s": { "teleport": 9999.0, "sendfile": 700.0 } }
        ]
    }"#;

    #[test]
    fn parses_each_destination_and_ignores_what_it_does_not_know() {
        let p = Profile::parse(PROFILE.as_bytes()).unwrap();
        assert_eq!(p.calibrated, "2026-12-02");
        let rate = |d, r, e| p.large_rate(d, r, e);
        use Reader::{Copy, Splice};
        assert_eq!(
            rate(Destination::LocalTcp, Copy, Engine::ReadWrite),
            Some(2600.0)
        );
        assert_eq!(
            rate(Destination::LocalTcp, Splice, Engine::Sendfile),
            Some(3800.0)
        );
        assert_eq!(
            rate(Destination::Pipe, Copy, Engine::Splice),
            Some(1700.0),
            "copy by default"
        );
        assert_eq!(rate(Destination::Pipe, Splice, Engine::Splice), None);
        assert_eq!(rate(Destination::Unix, Copy, Engine::Sendfile), Some(700.0));
        assert_eq!(rate(Destination::Unix, Copy, Engine::Splice), None);
        assert_eq!(rate(Destination::NetworkTcp, Copy, Engine::Sendfile), None);
    }

    #[test]
    fn refuses_what_is_not_a_version_1_profile() {
        assert!(Profile::parse(b"").is_none());
        assert!(Profile::parse(b"[1, 2]").is_none());
        assert!(Profile::parse(br#"{ "version": 2, "send_large": [] }"#).is_none());
        let bare = Profile::parse(br#"{ "version": 1 }"#).unwrap();
        assert!(bare
            .large_rate(Destination::LocalTcp, Reader::Copy, Engine::Sendfile)
            .is_none());
        assert!(Profile::parse(br#"{ "version": 1, "send_large": [{ "size": 1 }] }"#).is_none());
    }

    #[test]
    fn small_sends_pick_read_write_only_where_it_won() {
        let p = Profile::parse(PROFILE.as_bytes()).unwrap();
        let (size, ratio) = p.small_read_write(1000).unwrap();
        assert_eq!(size, 4096);
        assert!((ratio - 1.6).abs() < 1e-9);
        assert!(p.small_read_write(8192).is_none(), "sendfile won at 64 KiB");
        assert!(
            p.small_read_write(1 << 20).is_none(),
            "larger than calibrated"
        );
    }
}
