//! `--calibrate`: this machine's crossovers, measured and written to the profile
//! that [`Profile`](crate::profile::Profile) reads.
//!
//! Measured: which scan engine (read with 128 KiB, the pread pair, mmap) hashes a
//! page-cached file fastest at 64 KiB, 1 MiB, 16 MiB and 64 MiB, and whether
//! sendfile or read-write moves a 4 KiB, 64 KiB or 1 MiB file into a loopback socket
//! faster; and which of sendfile, splice and read-write sends a large file (the
//! bench's size, at most 64 MiB) fastest into each destination a sender can tell
//! apart (`zcopy::Destination`): a TCP peer on this host read by copying (16 KiB
//! reads, as nc) and by splicing (as `zcopy recv`), a Unix socket and a pipe read
//! by copying (128 KiB reads, as cat). `auto` reads these (`zcopy::profile`). Not
//! measured, and said so in the profile: a TCP peer across a NIC (loopback has no
//! DMA), the splice pipe size (the
//! library sets it, it has no knob to try) and the size where MSG_ZEROCOPY pays
//! off, which needs a NIC: loopback copies a zero-copy send anyway.

use std::fs::File;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use zcopy::profile::Reader;
use zcopy::size;
use zcopy::xxh3::Xxh3;
use zcopy::{Destination, Engine, EngineChoice, Options, ScanChoice, ScanEngine, Transfer};

use crate::error::Error;
use crate::measured::MIB;
use crate::output::Output;
use crate::profile::{profile_path, SCAN_ENGINES, SEND_ENGINES};
use crate::table::wrap;

const SCAN_SIZES: [u64; 4] = [64 << 10, 1 << 20, 16 << 20, 64 << 20];
const SEND_SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];
/// The engines `auto` may put first for a large file into a socket or pipe.
const LARGE_ENGINES: [Engine; 3] = [Engine::Sendfile, Engine::Splice, Engine::ReadWrite];
/// The destinations and readers of the large sends.
const LARGE: [(Destination, Reader); 4] = [
    (Destination::LocalTcp, Reader::Copy),
    (Destination::LocalTcp, Reader::Splice),
    (Destination::Unix, Reader::Copy),
    (Destination::Pipe, Reader::Copy),
];
/// Bytes scanned or sent per sample at most, whatever the file's size, so that
/// every sample lasts long enough to time.
const PER_SAMPLE: u64 = 64 << 20;

/// Opens the profile for writing before anything is measured.
pub fn open_profile() -> Result<Output, Error> {
    let path = profile_path().ok_or(Error::NoCacheDir)?;
    let dir = zcopy::place::parent_dir(&path);
    std::fs::create_dir_all(dir).map_err(|source| Error::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    Output::open(&path)
}

/// What `--calibrate` measured.
pub struct Calibration {
    profile: Value,
}

impl Calibration {
    pub fn bytes(&self) -> Vec<u8> {
        format!("{:#}\n", self.profile).into_bytes()
    }

    pub fn json(&self) -> Value {
        self.profile.clone()
    }

    /// The crossovers in words.
    pub fn table(&self, width: usize) -> String {
        let mut out = String::from("calibration (MiB/s, median):\n");
        let p = &self.profile;
        for (key, what) in [
            ("scan", "scan"),
            ("send_small", "send one file"),
            ("send_large", "send a large file"),
        ] {
            for e in p[key].as_array().into_iter().flatten() {
                let into = match (e["destination"].as_str(), e["reader"].as_str()) {
                    (Some(d), Some(r)) => format!(" into {d}, {r} reader"),
                    _ => String::new(),
                };
                let rates: Vec<String> = e["mib_s"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k} {:.0}", v.as_f64().unwrap_or(0.0)))
                    .collect();
                out.push_str(&wrap(
                    &format!(
                        "{what}{into}, {}: {} -> {}",
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
        for key in [
            "network_tcp_note",
            "splice_pipe_size_note",
            "msg_zerocopy_note",
        ] {
            out.push_str(&wrap(p[key].as_str().unwrap_or(""), width, "  ", "    "));
        }
        out.push_str(&wrap(
            &format!(
                "written to {}; zcopy scan, send and cp use it under --engine auto",
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
    let path = dir.join("calibrate-large.dat");
    write_file(&path, volume)?;
    let mut large = Vec::new();
    for (destination, reader) in LARGE {
        let mut rates = vec![Vec::new(); LARGE_ENGINES.len()];
        for _ in 0..repeat {
            for (i, engine) in LARGE_ENGINES.into_iter().enumerate() {
                rates[i].push(large_rate(&path, volume, destination, reader, engine)?);
            }
        }
        let mut e = entry(volume, LARGE_ENGINES.map(Engine::name), rates);
        e["destination"] = destination.name().into();
        e["reader"] = reader.name().into();
        large.push(e);
    }
    std::fs::remove_file(&path)?;
    let uname = rustix::system::uname();
    Ok(Calibration {
        profile: json!({
            "version": 1,
            "calibrated": today(),
            "kernel": uname.release().to_string_lossy(),
            "scan": scan,
            "send_small": send,
            "send_large": large,
            "network_tcp_note": "a TCP peer on the network: not calibrated, loopback has no NIC; auto keeps sendfile first",
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
        let options = Options::default().engine(EngineChoice::Only(Engine::Splice));
        Transfer::new(&stream, &devnull, options)?.run()?;
        Ok(())
    });
    let started = Instant::now();
    let stream = TcpStream::connect(addr)?;
    for _ in 0..times {
        let file = File::open(path)?;
        let options = Options::default()
            .engine(EngineChoice::Only(engine))
            .len(size);
        Transfer::new(&file, &stream, options)?.run()?;
    }
    stream.shutdown(Shutdown::Write)?;
    drain
        .join()
        .map_err(|_| anyhow!("the receiver panicked"))??;
    Ok((times * size) as f64 / started.elapsed().as_secs_f64())
}

/// Bytes per second sending all of `path` (`size` bytes) with `engine` into a
/// `destination` whose other end `reader` drains into /dev/null, from the start
/// until the reader has taken the last byte.
fn large_rate(
    path: &Path,
    size: u64,
    destination: Destination,
    reader: Reader,
    engine: Engine,
) -> Result<f64> {
    let file = File::open(path)?;
    let send = |sink: &dyn AsFd| -> Result<()> {
        let options = Options::default()
            .engine(EngineChoice::Only(engine))
            .len(size);
        Transfer::new(&file, &sink.as_fd(), options)?.run()?;
        Ok(())
    };
    let started = Instant::now();
    match destination {
        Destination::LocalTcp => {
            let listener =
                TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
            let addr = listener.local_addr()?;
            let drain = std::thread::spawn(move || drain(listener.accept()?.0.into(), reader));
            let stream = TcpStream::connect(addr)?;
            send(&stream)?;
            stream.shutdown(Shutdown::Write)?;
            join(drain)?;
        }
        Destination::Unix => {
            let (ours, theirs) = UnixStream::pair()?;
            let drain = std::thread::spawn(move || drain(theirs.into(), reader));
            send(&ours)?;
            ours.shutdown(Shutdown::Write)?;
            join(drain)?;
        }
        Destination::Pipe => {
            let (theirs, ours) = rustix::pipe::pipe()?;
            let drain = std::thread::spawn(move || drain(theirs, reader));
            send(&ours)?;
            drop(ours);
            join(drain)?;
        }
        other => return Err(anyhow!("cannot calibrate sends into {other}")),
    }
    Ok(size as f64 / started.elapsed().as_secs_f64())
}

/// Reads `src` to its end into /dev/null as `reader` does: 16 KiB reads (nc's) out
/// of a socket, 128 KiB (cat's) out of a pipe, or splice.
fn drain(src: OwnedFd, reader: Reader) -> Result<()> {
    let devnull = File::options().write(true).open("/dev/null")?;
    let options = match reader {
        Reader::Splice => Options::default().engine(EngineChoice::Only(Engine::Splice)),
        _ => {
            let socket = zcopy::FdKind::of(&src)? == zcopy::FdKind::Socket;
            Options::default()
                .engine(EngineChoice::Only(Engine::ReadWrite))
                .buffer(if socket { 16 << 10 } else { 128 << 10 })
        }
    };
    Transfer::new(&src, &devnull, options)?.run()?;
    Ok(())
}

fn join(drain: std::thread::JoinHandle<Result<()>>) -> Result<()> {
    drain.join().map_err(|_| anyhow!("the receiver panicked"))?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
