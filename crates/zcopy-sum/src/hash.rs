//! A file read once through zcopy's scan engines into one hasher per digest.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;

use zcopy::{ScanChoice, ScanEngine};

use crate::config::{Config, Voice};
use crate::digest::{Digest, Hasher};
use crate::output::Streams;

/// Opens a file to hash; `-` is standard input.
pub(crate) fn open(name: &OsStr, config: &Config) -> std::io::Result<File> {
    if name == "-" {
        if config.key_from_stdin {
            return Err(std::io::Error::other("Cannot open `-` in keyed mode"));
        }
        return Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?));
    }
    File::open(name)
}

/// The digests of `file` in one pass, canonical bytes each.
pub(crate) fn hash(
    file: &File,
    digests: &[Digest],
    config: &Config,
    io: &mut Streams,
) -> std::io::Result<Vec<Vec<u8>>> {
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    let mut hashers: Vec<Hasher> = digests
        .iter()
        .map(|d| match (&config.blake3, d) {
            (Some(base), Digest::Blake3) => Hasher::blake3((**base).clone()),
            _ => Hasher::new(*d),
        })
        .collect();
    let mut calibrated = None;
    let choice = match config.engine {
        ScanChoice::Auto if digests.contains(&Digest::Blake3) => ScanChoice::AutoInPlace,
        ScanChoice::Auto => match calibrated_engine(file, config) {
            Some((engine, why)) => {
                calibrated = Some(why);
                ScanChoice::Only(engine)
            }
            None => ScanChoice::Auto,
        },
        choice => choice,
    };
    let report = zcopy::scan(file, choice, config.buffer, &mut |chunk| {
        for h in &mut hashers {
            h.update(chunk);
        }
    })
    .map_err(|e| match e {
        zcopy::Error::ScanIo { cause, .. } | zcopy::Error::Setup(cause) => cause,
        other => std::io::Error::other(other.to_string()),
    })?;
    // Notes are zcopy's own: a peer's stderr carries only the peer's words.
    if config.voice == Voice::Zcopy {
        if let Some(note) = &report.fallback {
            if config.engine != ScanChoice::Only(ScanEngine::Read) && !config.quiet {
                io.say_line(format_args!("zcopy: note: {note}"));
            }
        }
    }
    if config.verbose {
        let why = calibrated.as_deref().unwrap_or(report.why);
        io.say_line(format_args!("{}: {} ({why})", config.prog, report.engine));
    }
    Ok(hashers.into_iter().map(|h| h.finish(config.xof)).collect())
}

/// The engine the config's calibration measured fastest for a regular file of
/// this size, and why; `None` without one, where `auto`'s defaults apply.
fn calibrated_engine(file: &File, config: &Config) -> Option<(ScanEngine, String)> {
    let calibration = config.calibration?;
    let meta = file.metadata().ok().filter(std::fs::Metadata::is_file)?;
    let (engine, why) = calibration(meta.len())?;
    Some((engine, format!("auto, calibrated: {why}")))
}
