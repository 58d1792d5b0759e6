//! `zcopy recv --listen ADDR`: receives files from `zcopy send`, or raw bytes from
//! `nc` and the seed's Java clients, one thread per connection.
//!
//! Every file is written to a temporary name beside its target and renamed only
//! when it is complete (framed: size and digest match; raw: the peer closed
//! cleanly), so a failed transfer leaves nothing under the real name.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Map;
use tempfile::NamedTempFile;
use zcopy::{Engine, EngineChoice, Options, Rusage, Transfer};

use super::parent_dir;
use crate::net::{self, frame};
use crate::summary::Summary;
use crate::{progress, size};

/// Receive files from `zcopy send`, or raw bytes (--raw) from nc or the seed's clients
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1 unless told)
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Where to write: a directory (framed), or a file path (raw, or framed with one
    /// file); default: the current directory, or stdout with --raw
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<PathBuf>,
    /// Engine: auto, read-write, splice
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Receive the bytes alone, until the peer closes (nc, the seed's Java clients)
    #[arg(long)]
    raw: bool,
    /// Exit after one transfer, with its status
    #[arg(long)]
    once: bool,
    /// Print one JSON object per transfer on stdout
    #[arg(long)]
    json: bool,
    /// Buffer size of the read-write engine
    #[arg(long, value_parser = size::parse_buffer, default_value = "128KiB")]
    buffer: usize,
}

/// Where received bytes go.
#[derive(Clone, Debug)]
enum Target {
    /// Framed: each file under its own name in this directory.
    Dir(PathBuf),
    /// Every transfer replaces this one file.
    File(PathBuf),
    /// Raw without `-o`: standard output, one connection at a time.
    Stdout(Arc<Mutex<()>>),
    /// Raw into a device or FIFO (`/dev/null`), written in place: it cannot be
    /// renamed over.
    Device(PathBuf),
}

impl Target {
    fn from_args(args: &Args) -> Result<Target> {
        let Some(path) = &args.output else {
            return Ok(if args.raw {
                Target::Stdout(Arc::default())
            } else {
                Target::Dir(PathBuf::from("."))
            });
        };
        if path.is_dir() {
            if args.raw {
                bail!(
                    "{}: is a directory; raw mode writes one file, give its path",
                    path.display()
                );
            }
            return Ok(Target::Dir(path.clone()));
        }
        if path.exists() && !path.is_file() {
            if !args.raw {
                bail!("{}: not a directory or regular file; framed mode verifies what it writes (use --raw)", path.display());
            }
            return Ok(Target::Device(path.clone()));
        }
        let parent = parent_dir(path);
        if !parent.is_dir() {
            bail!(
                "cannot write {}: directory {} does not exist",
                path.display(),
                parent.display()
            );
        }
        Ok(Target::File(path.clone()))
    }

    fn path_for(&self, name: &str) -> PathBuf {
        match self {
            Target::Dir(dir) => dir.join(name),
            Target::File(path) | Target::Device(path) => path.clone(),
            Target::Stdout(_) => PathBuf::from("-"),
        }
    }
}

/// What a connection handler needs, shared by all of them.
#[derive(Clone)]
struct Job {
    target: Target,
    options: Options,
    raw: bool,
    json: bool,
    progress: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let EngineChoice::Only(engine @ (Engine::Mmap | Engine::Sendfile | Engine::CopyFileRange)) =
        args.engine
    {
        bail!("recv moves socket to file: engine {engine} needs a file as source (use read-write or splice)");
    }
    let job = Job {
        target: Target::from_args(&args)?,
        options: Options {
            engine: args.engine,
            buffer: args.buffer,
            ..Options::default()
        },
        raw: args.raw,
        json: args.json,
        progress: args.once && !args.json,
    };
    let listener = net::listen(&args.listen)?;
    if args.once {
        let (stream, peer) = listener.accept().context("accept")?;
        return job.handle(stream, peer);
    }
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let job = job.clone();
                std::thread::spawn(move || {
                    let peer = stream
                        .peer_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    if let Err(e) = job.handle(stream, peer) {
                        eprintln!("zcopy: {e:#}");
                    }
                });
            }
            // EMFILE and friends: say so and keep serving the connections we have.
            Err(e) => eprintln!("zcopy: recv: accept: {e}"),
        }
    }
    Ok(())
}

impl Job {
    fn handle(&self, stream: TcpStream, peer: SocketAddr) -> Result<()> {
        let started = Instant::now();
        let usage = Rusage::thread();
        let (report, name, path) = if self.raw {
            self.receive_raw(&stream, peer)?
        } else {
            self.receive_framed(stream, peer)?
        };
        let summary = Summary {
            report: &report,
            seconds: started.elapsed().as_secs_f64(),
            usage: Rusage::thread().since(&usage),
        };
        if self.json {
            let mut extra = Map::new();
            extra.insert("name".into(), name.into());
            extra.insert("path".into(), path.display().to_string().into());
            extra.insert("peer".into(), peer.to_string().into());
            super::print_json(&summary.json(extra))?;
        } else {
            eprintln!(
                "received {} from {peer}: {}",
                path.display(),
                summary.line()
            );
        }
        Ok(())
    }

    fn receive_raw(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
    ) -> Result<(zcopy::Report, String, PathBuf)> {
        let what = format!("receiving from {peer}");
        if let Target::Stdout(lock) = &self.target {
            let _one_at_a_time = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let stdout = std::io::stdout();
            let mut transfer =
                Transfer::new(stream, &stdout, self.options).context(what.clone())?;
            match progress::run(&mut transfer, None, false) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Err(super::StdoutClosed.into())
                }
                other => other
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
        persist(temp, &path)?;
        Ok((report, String::new(), path))
    }

    fn receive_framed(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<(zcopy::Report, String, PathBuf)> {
        let result = self.receive_verified(&mut stream, peer);
        let verdict = match &result {
            Ok(_) => "OK\n".to_string(),
            Err(e) => format!("ERR {:#}\n", e.root_cause()),
        };
        // The sender may be gone already; its absence is in `result`.
        let _ = stream.write_all(verdict.as_bytes());
        result
    }

    fn receive_verified(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
    ) -> Result<(zcopy::Report, String, PathBuf)> {
        let header = frame::Header::read(stream)
            .with_context(|| format!("receiving from {peer}: bad header"))?;
        let path = self.target.path_for(&header.name);
        let what = format!("receiving {} from {peer}", header.name);
        let temp = temp_beside(&path)?;
        let report = self.transfer(stream, temp.as_file(), Some(header.size), &what)?;
        let mut sent = [0u8; 16];
        stream
            .read_exact(&mut sent)
            .with_context(|| format!("{what}: the peer closed before the digest"))?;
        let sent = u128::from_be_bytes(sent);
        let got = frame::digest_file(temp.as_file(), header.size)
            .with_context(|| format!("{what}: cannot read back"))?;
        if got != sent {
            bail!(
                "{what}: digest mismatch (sent {sent:032x}, received {got:032x}); nothing written"
            );
        }
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(header.mode & 0o777))
            .with_context(|| format!("{what}: cannot set permissions"))?;
        persist(temp, &path)?;
        Ok((report, header.name, path))
    }

    fn transfer(
        &self,
        stream: &TcpStream,
        file: &File,
        len: Option<u64>,
        what: &str,
    ) -> Result<zcopy::Report> {
        let options = Options {
            len,
            ..self.options
        };
        let mut transfer = Transfer::new(stream, file, options).context(what.to_string())?;
        progress::run(&mut transfer, len, self.progress).with_context(|| {
            format!(
                "{what} failed after {} bytes; nothing written",
                transfer.moved()
            )
        })?;
        Ok(transfer.report())
    }
}

fn temp_beside(path: &Path) -> Result<NamedTempFile> {
    super::temp_beside(path)
        .with_context(|| format!("cannot create a file beside {}", path.display()))
}

fn persist(temp: NamedTempFile, path: &Path) -> Result<()> {
    temp.persist(path)
        .map(drop)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename into {}", path.display()))
}
