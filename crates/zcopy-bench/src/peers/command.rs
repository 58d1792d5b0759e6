//! Peer commands as processes: found in `$PATH`, started with `{addr}` and
//! `{port}` filled in, timed from start to exit with their CPU time; the send
//! group's receiver and iperf3's server.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use zcopy::{Engine, EngineChoice, Options, Rusage, Transfer};

/// One sample of a command.
#[derive(Clone, Copy)]
pub struct Sample {
    /// Bytes per second, or requests per second for `serve`.
    pub rate: f64,
    /// CPU seconds (user + system) of the command's process.
    pub cpu: f64,
    /// Bytes, or requests, it moved.
    pub work: f64,
}

/// A command line, `{addr}` and `{port}` filled in per sample.
pub struct Cmd {
    pub name: String,
    pub argv: Vec<String>,
    pub stdin: Option<PathBuf>,
}

pub fn cmd(name: &str, argv: &[&str]) -> Cmd {
    Cmd {
        name: name.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        stdin: None,
    }
}

/// Whether `tool` is an executable file in `$PATH`.
pub fn installed(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            rustix::fs::access(dir.join(tool), rustix::fs::Access::EXEC_OK).is_ok()
                && dir.join(tool).is_file()
        })
    })
}

/// Runs `c` (its `{addr}` and `{port}` replaced), returning wall time and CPU.
pub fn timed(c: &Cmd, addr: Option<SocketAddr>, work: u64) -> Result<Sample> {
    let argv: Vec<String> = c
        .argv
        .iter()
        .map(|a| match addr {
            Some(addr) => a
                .replace("{addr}", &addr.to_string())
                .replace("{port}", &addr.port().to_string()),
            None => a.clone(),
        })
        .collect();
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(path) = &c.stdin {
        command.stdin(File::open(path)?);
    } else {
        command.stdin(Stdio::null());
    }
    let before = Rusage::children();
    let started = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    let seconds = started.elapsed().as_secs_f64();
    let used = Rusage::children().since(&before);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} exited with {}: {}",
            argv[0],
            out.status,
            err.lines().next().unwrap_or("")
        );
    }
    Ok(Sample {
        rate: work as f64 / seconds,
        cpu: (used.user + used.system).as_secs_f64(),
        work: work as f64,
    })
}

/// One send: a splice drain here, the command sending the file to it.
pub fn send_sample(c: &Cmd, size: u64) -> Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let drain = std::thread::spawn(move || -> Result<u64> {
        let (stream, _) = listener.accept()?;
        let devnull = File::options().write(true).open("/dev/null")?;
        let options = Options::default().engine(EngineChoice::Only(Engine::Splice));
        let mut t = Transfer::new(&stream, &devnull, options)?;
        t.run()?;
        Ok(t.report().bytes)
    });
    let sample = timed(c, Some(addr), size);
    if sample.is_err() {
        // Unblock the drain's accept if the command never connected.
        let _ = TcpStream::connect(addr);
    }
    let received = drain.join().map_err(|_| anyhow!("the receiver panicked"))?;
    let sample = sample?;
    match received? {
        n if n == size => Ok(sample),
        n => bail!("{} delivered {n} of {size} bytes", c.name),
    }
}

/// `size` bytes from an iperf3 client to an iperf3 server, timed at the client.
pub fn iperf3(size: u64) -> Result<Sample> {
    let port = free_port()?;
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run iperf3")?;
    let client = cmd(
        "iperf3",
        &[
            "iperf3",
            "-c",
            "127.0.0.1",
            "-p",
            "{port}",
            "-n",
            &size.to_string(),
        ],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    // The server is ready when a client run succeeds; the first tries may be refused.
    let sample = loop {
        match timed(&client, Some(addr), size) {
            Ok(s) => break Ok(s),
            Err(e) if Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    sample
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("cannot listen on 127.0.0.1")?
        .local_addr()?
        .port())
}
