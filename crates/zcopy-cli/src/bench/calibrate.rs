//! `--calibrate`: this machine's crossovers, measured and written to a profile in
//! the user's cache directory (`$XDG_CACHE_HOME/zcopy/calibration.json`, else
//! `~/.cache/zcopy/calibration.json`), and [`Profile`], its reader.
//!
//! Measured: which scan engine (read with 128 KiB, the pread pair, mmap) hashes a
//! page-cached file fastest at 64 KiB, 1 MiB, 16 MiB and 64 MiB, and whether
//! sendfile or read-write moves a 4 KiB, 64 KiB or 1 MiB file into a loopback socket
//! faster. Not measured, and said so in the profile: the splice pipe size (the
//! library sets it, it has no knob to try) and the size where MSG_ZEROCOPY pays
//! off, which needs a NIC: loopback copies a zero-copy send anyway.
//!
//! The library's `auto` has no hook for a profile, so the command line applies it:
//! `zcopy scan` under `auto` asks [`Profile::scan_engine`] and `zcopy send --raw`
//! asks [`Profile::send_engine`] (the framed protocol batches small files its own way); when the profile has an answer for the file's size,
//! the command uses that engine and cites the measurement.

use std::fs::File;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use zcopy::{Engine, EngineChoice, Options, ScanChoice, ScanEngine, Transfer};

use super::table::wrap;
use super::{Output, MIB};
use zcopy::size;
use zcopy::xxh3::Xxh3;

const SCAN_SIZES: [u64; 4] = [64 << 10, 1 << 20, 16 << 20, 64 << 20];
const SEND_SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];
/// Bytes scanned or sent per sample at most, whatever the file's size, so that
/// every sample lasts long enough to time.
const PER_SAMPLE: u64 = 64 << 20;
const SCAN_ENGINES: [ScanEngine; 3] = [ScanEngine::Read, ScanEngine::Pread, ScanEngine::Mmap];
const SEND_ENGINES: [Engine; 2] = [Engine::ReadWrite, Engine::Sendfile];
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

/// Opens the profile for writing before anything is measured.
pub fn open_profile() -> Result<Output> {
    let path =
        profile_path().context("cannot find a cache directory: set XDG_CACHE_HOME or HOME")?;
    let dir = zcopy::place::parent_dir(&path);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Output::open(&path)
}

/// What `--calibrate` measured.
pub struct Calibration {
    profile: Value,
}

impl Calibration {
    pub fn bytes(&self) -> Vec<u8> {
        (serde_json::to_string_pretty(&self.profile).unwrap_or_default() + "\n").into_bytes()
    }

    pub fn json(&self) -> Value {
        self.profile.clone()
    }

    /// The crossovers in words.
    pub fn table(&self, width: usize) -> String {
        let mut out = String::from("calibration (MiB/s, median):\n");
        let p = &self.profile;
        for (key, what) in [("scan", "scan"), ("send_small", "send one file")] {
            for e in p[key].as_array().into_iter().flatten() {
                let rates: Vec<String> = e["mib_s"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k} {:.0}", v.as_f64().unwrap_or(0.0)))
                    .collect();
                out.push_str(&wrap(
                    &format!(
                        "{what}, {}: {} -> {}",
                        size::human(e["size"].as_u64().unwrap_or(0)),
                        rates.join(", "),
                        e["best"].as_str().unwrap_or("?")
                    ),
                    width,
                    "  ",
                    "    ",
                ));
            }
        }
        for key in ["splice_pipe_size_note", "msg_zerocopy_note"] {
            out.push_str(&wrap(p[key].as_str().unwrap_or(""), width, "  ", "    "));
        }
        out.push_str(&wrap(
            &format!(
                "written to {}; zcopy scan and zcopy send --raw use it under --engine auto",
                profile_path().map_or_else(|| "?".into(), |p| p.display().to_string())
            ),
            width,
            "  ",
            "    ",
        ));
        out
    }
}

/// Measures the crossovers, `repeat` samples of each engine at each size, the
/// engines in turn, each sample moving about `volume` bytes (at most 64 MiB).
pub fn measure(dir: &Path, repeat: u32, volume: u64) -> Result<Calibration> {
    let volume = volume.min(PER_SAMPLE);
    let mut scan = Vec::new();
    for size in SCAN_SIZES {
        let path = dir.join(format!("calibrate-{size}.dat"));
        write_file(&path, size)?;
        let mut rates = vec![Vec::new(); SCAN_ENGINES.len()];
        for _ in 0..repeat {
            for (i, engine) in SCAN_ENGINES.into_iter().enumerate() {
                rates[i].push(scan_rate(&path, size, volume, engine)?);
            }
        }
        scan.push(entry(size, SCAN_ENGINES.map(ScanEngine::name), rates));
        std::fs::remove_file(&path)?;
    }
    let mut send = Vec::new();
    for size in SEND_SIZES {
        let path = dir.join(format!("calibrate-{size}.dat"));
        write_file(&path, size)?;
        let mut rates = vec![Vec::new(); SEND_ENGINES.len()];
        for _ in 0..repeat {
            for (i, engine) in SEND_ENGINES.into_iter().enumerate() {
                rates[i].push(send_rate(&path, size, volume, engine)?);
            }
        }
        send.push(entry(size, SEND_ENGINES.map(Engine::name), rates));
        std::fs::remove_file(&path)?;
    }
    let uname = rustix::system::uname();
    Ok(Calibration {
        profile: json!({
            "version": 1,
            "calibrated": today(),
            "kernel": uname.release().to_string_lossy(),
            "scan": scan,
            "send_small": send,
            "splice_pipe_size": null,
            "splice_pipe_size_note": "splice pipe size: not calibrated, the library sets it and has no knob to try others",
            "msg_zerocopy_min": null,
            "msg_zerocopy_note": "MSG_ZEROCOPY / SEND_ZC crossover: not measurable here, loopback copies a zero-copy send; it needs a NIC",
        }),
    })
}

fn entry<const N: usize>(size: u64, names: [&str; N], rates: Vec<Vec<f64>>) -> Value {
    let medians: Vec<f64> = rates
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2] / MIB
        })
        .collect();
    let best = names
        .iter()
        .zip(&medians)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(n, _)| *n)
        .unwrap_or("?");
    let mib_s: serde_json::Map<String, Value> = names
        .iter()
        .zip(&medians)
        .map(|(n, m)| ((*n).to_string(), json!(m)))
        .collect();
    json!({ "size": size, "mib_s": mib_s, "best": best })
}

fn write_file(path: &Path, size: u64) -> Result<()> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size;
    let bytes: Vec<u8> = (0..size.div_ceil(8))
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .take(size as usize)
        .collect();
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Bytes per second hashing `path` with XXH3 through `engine`, the file scanned
/// as many times as make `volume` bytes.
fn scan_rate(path: &Path, size: u64, volume: u64, engine: ScanEngine) -> Result<f64> {
    let times = (volume / size).max(1);
    let started = Instant::now();
    for _ in 0..times {
        let file = File::open(path)?;
        let mut hasher = Xxh3::default();
        let report = zcopy::scan(&file, ScanChoice::Only(engine), 128 << 10, &mut |c| {
            hasher.update(c)
        })?;
        std::hint::black_box(hasher.digest128());
        if let Some(why) = report.fallback {
            return Err(anyhow!("{why}"));
        }
    }
    Ok((times * size) as f64 / started.elapsed().as_secs_f64())
}

/// Bytes per second sending `path` into a loopback socket with `engine`, once per
/// file as a server answering requests for it would, over one connection.
fn send_rate(path: &Path, size: u64, volume: u64, engine: Engine) -> Result<f64> {
    let times = (volume / 4 / size).max(1);
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let drain = std::thread::spawn(move || -> Result<()> {
        let (stream, _) = listener.accept()?;
        let devnull = File::options().write(true).open("/dev/null")?;
        let options = Options {
            engine: EngineChoice::Only(Engine::Splice),
            ..Options::default()
        };
        Transfer::new(&stream, &devnull, options)?.run()?;
        Ok(())
    });
    let started = Instant::now();
    let stream = TcpStream::connect(addr)?;
    for _ in 0..times {
        let file = File::open(path)?;
        let options = Options {
            engine: EngineChoice::Only(engine),
            len: Some(size),
            ..Options::default()
        };
        Transfer::new(&file, &stream, options)?.run()?;
    }
    stream.shutdown(Shutdown::Write)?;
    drain
        .join()
        .map_err(|_| anyhow!("the receiver panicked"))??;
    Ok((times * size) as f64 / started.elapsed().as_secs_f64())
}

/// Today's date, UTC, as YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

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
            "read-write: 1.6x sendfile on this machine for files up to 4 KiB, calibrated 2026-11-22"
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
