//! `recv --raw`: one connection's bytes, as they are, into a file, a device or
//! standard output.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;
use zcopy::Transfer;

use crate::progress;

use super::{Job, Target};
use zcopy_wire::net;
use zcopy_wire::recv::refuse_framed_sender;

/// How often a stalled receive looks at its watchdog.
const TICK: Duration = Duration::from_millis(250);

impl Job {
    pub(super) fn receive_raw(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
    ) -> Result<(zcopy::Report, String, PathBuf)> {
        let what = format!("receiving from {peer}");
        refuse_framed_sender(stream, peer)?;
        // The socket timeout is only a tick for the watchdog in `progress`: as the
        // limit itself, each partial receive would restart it.
        let tick = self.stall.map_or(Duration::ZERO, |s| s.min(TICK));
        net::timeouts(stream, tick).with_context(|| format!("{peer}: socket options"))?;
        if let Target::Stdout(lock) = &self.target {
            let _one_at_a_time = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let stdout = std::io::stdout();
            let mut transfer =
                Transfer::new(stream, &stdout, self.receiver.options()).context(what.clone())?;
            match progress::run_watched(&mut transfer, None, false, self.stall) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(crate::cmd::StdoutClosed.into())
                }
                other => other
                    .map_err(zcopy_wire::Error::from)
                    .with_context(|| format!("{what} failed after {} bytes", transfer.moved()))?,
            }
            return Ok((transfer.report(), String::new(), PathBuf::from("-")));
        }
        let path = self.target.path_for("");
        if let Target::Device(_) = self.target {
            let device = File::options()
                .write(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let report = self.transfer(stream, &device, None, &what)?;
            return Ok((report, String::new(), path));
        }
        let temp = temp_beside(&path)?;
        let report = self.transfer(stream, temp.as_file(), None, &what)?;
        zcopy::place::open_up(temp.as_file())
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        persist(temp, &path)?;
        Ok((report, String::new(), path))
    }

    fn transfer(
        &self,
        stream: &TcpStream,
        file: &File,
        len: Option<u64>,
        what: &str,
    ) -> Result<zcopy::Report> {
        let options = self.receiver.options().len(len);
        let mut transfer = Transfer::new(stream, file, options).context(what.to_string())?;
        progress::run_watched(&mut transfer, len, self.progress, self.stall)
            .map_err(zcopy_wire::Error::from)
            .with_context(|| {
                format!(
                    "{what} failed after {} bytes; nothing written",
                    transfer.moved()
                )
            })?;
        Ok(transfer.report())
    }
}

pub(super) fn temp_beside(path: &Path) -> Result<NamedTempFile> {
    zcopy::place::temp_beside(path)
        .with_context(|| format!("cannot create a file beside {}", path.display()))
}

pub(super) fn persist(temp: NamedTempFile, path: &Path) -> Result<()> {
    temp.persist(path)
        .map(drop)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename into {}", path.display()))
}
