//! CPU per GiB of `zcopy::tokio::copy` against `tokio::io::copy`, over loopback:
//! a page-cached file into a TCP socket, and one TCP socket into another.
//!
//! ```sh
//! cargo run --release -p zcopy --features tokio --example tokio_cpu -- 1GiB
//! ```
//!
//! The copy runs on a current-thread runtime; a reader thread drains the sink and,
//! for socket → socket, a writer thread feeds the source. The figure is the
//! process's user + system CPU time (`getrusage(RUSAGE_SELF)`, so tokio's blocking
//! pool, which reads the file for `tokio::io::copy`, counts) less what those two
//! threads used (`RUSAGE_THREAD` each), per GiB moved.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use tokio::net::TcpStream;
use zcopy::Rusage;

const CHUNK: usize = 1 << 20;

fn main() -> ExitCode {
    let size = match std::env::args_os().nth(1) {
        None => 1 << 30,
        Some(arg) => match arg.to_str().map(zcopy::size::parse) {
            Some(Ok(size)) => size,
            Some(Err(e)) => {
                eprintln!("tokio_cpu: {e}");
                return ExitCode::from(2);
            }
            None => {
                eprintln!("usage: tokio_cpu [SIZE]");
                return ExitCode::from(2);
            }
        },
    };
    match run(size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_cpu: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy)]
enum Pair {
    FileToTcp,
    TcpToTcp,
}

#[derive(Clone, Copy)]
enum Method {
    Zcopy,
    TokioIoCopy,
}

fn run(size: u64) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let file = page_cached_file(size)?;
    println!(
        "{:<16} {:<16} {:>10} {:>9} {:>9} {:>12}  path",
        "pair", "copy", "bytes", "user s", "sys s", "CPU s/GiB"
    );
    for (pair, name) in [
        (Pair::FileToTcp, "file -> tcp"),
        (Pair::TcpToTcp, "tcp -> tcp"),
    ] {
        for (method, label) in [
            (Method::TokioIoCopy, "tokio::io::copy"),
            (Method::Zcopy, "zcopy::tokio"),
        ] {
            let (bytes, cpu, path) = runtime.block_on(measure(&file, size, pair, method))?;
            let per_gib =
                (cpu.user + cpu.system).as_secs_f64() * (1u64 << 30) as f64 / bytes as f64;
            println!(
                "{name:<16} {label:<16} {bytes:>10} {:>9.3} {:>9.3} {per_gib:>12.3}  {path}",
                cpu.user.as_secs_f64(),
                cpu.system.as_secs_f64(),
            );
        }
    }
    Ok(())
}

/// A file of `size` bytes, just written, so its pages are in the cache.
fn page_cached_file(size: u64) -> std::io::Result<std::fs::File> {
    let mut file = tempfile::tempfile()?;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(file)
}

/// Moves `size` bytes over `pair` by `method`: bytes, the copy's CPU, the path.
async fn measure(
    file: &std::fs::File,
    size: u64,
    pair: Pair,
    method: Method,
) -> std::io::Result<(u64, Rusage, String)> {
    let before = Rusage::process();
    let (mut sink, drain) = sink().await?;
    let (path, helpers) = match pair {
        Pair::FileToTcp => {
            let mut std_file = file.try_clone()?;
            std_file.seek(SeekFrom::Start(0))?;
            let mut src = tokio::fs::File::from_std(std_file);
            (copy(&mut src, &mut sink, method).await?, Rusage::default())
        }
        Pair::TcpToTcp => {
            let (mut src, feeder) = source(size).await?;
            let path = copy(&mut src, &mut sink, method).await?;
            (path, join(feeder)?.1)
        }
    };
    drop(sink);
    let (bytes, drained) = join(drain)?;
    let mut cpu = Rusage::process().since(&before);
    let others = drained + helpers;
    cpu.user = cpu.user.saturating_sub(others.user);
    cpu.system = cpu.system.saturating_sub(others.system);
    Ok((bytes, cpu, path))
}

async fn copy(
    src: &mut (impl zcopy::tokio::AsEnd + tokio::io::AsyncRead + Unpin),
    sink: &mut TcpStream,
    method: Method,
) -> std::io::Result<String> {
    Ok(match method {
        Method::Zcopy => zcopy::tokio::copy(src, sink).await?.path.to_string(),
        Method::TokioIoCopy => {
            tokio::io::copy(src, sink).await?;
            "read + write".to_string()
        }
    })
}

type Helper = thread::JoinHandle<std::io::Result<(u64, Rusage)>>;

fn join(helper: Helper) -> std::io::Result<(u64, Rusage)> {
    helper
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("a helper thread panicked")))
}

/// The copy's sink, and a thread that reads the other end to its end.
async fn sink() -> std::io::Result<(TcpStream, Helper)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let ours = TcpStream::connect(listener.local_addr()?).await?;
    let (mut theirs, _) = listener.accept()?;
    let drain = thread::spawn(move || {
        let start = Rusage::thread();
        let mut buf = vec![0u8; 256 << 10];
        let mut bytes = 0;
        loop {
            match theirs.read(&mut buf)? {
                0 => return Ok((bytes, Rusage::thread().since(&start))),
                n => bytes += n as u64,
            }
        }
    });
    Ok((ours, drain))
}

/// The copy's source, and a thread that writes `size` bytes into the other end.
async fn source(size: u64) -> std::io::Result<(TcpStream, Helper)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let feeder = thread::spawn(move || {
        let start = Rusage::thread();
        let mut theirs = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        let chunk = vec![0x5a_u8; CHUNK];
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            theirs.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        theirs.shutdown(Shutdown::Write)?;
        Ok((size, Rusage::thread().since(&start)))
    });
    let (ours, _) = listener.accept()?;
    ours.set_nonblocking(true)?;
    Ok((TcpStream::from_std(ours)?, feeder))
}
