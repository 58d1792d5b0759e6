//! How one sample of a row is taken: real transfers over loopback TCP, file
//! copies and file scans, each side on its own thread so its CPU time and context
//! switches are its own.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use zcopy::xxh3::Xxh3;
use zcopy::{
    Engine, EngineChoice, Options, Rusage, ScanChoice, ScanEngine, Syscalls, Transfer, ZeroCopy,
};

use crate::files::Files;
use crate::jobs::{How, Job, Row, BUFFER, SMALL_FILE};

/// One measurement of one row.
#[derive(Clone, Debug)]
pub struct Sample {
    pub bytes: u64,
    pub seconds: f64,
    /// The engine side's own syscall count.
    pub syscalls: Syscalls,
    /// The engine side's resource usage.
    pub side: Rusage,
    /// What the kernel said of the engine side's zero-copy sends.
    pub zerocopy: ZeroCopy,
    /// The other side's, where there is one.
    pub peer: Option<Rusage>,
}

/// Takes one sample of `row`.
pub fn measure(row: &Row, files: &Files) -> Result<Sample> {
    match (row.job, row.how) {
        (Job::Send, How::Transfer { engine, buffer }) => {
            send(files, options(engine, buffer, None), 1)
        }
        (Job::Send, How::SendZc { buffer }) => send(
            files,
            options(Engine::IoUring, buffer, None).send_zc(true),
            1,
        ),
        (Job::Small, How::Transfer { engine, buffer }) => {
            send(files, options(engine, buffer, None), files.small_count)
        }
        (Job::Recv, How::Transfer { engine, buffer }) => recv(files, engine, buffer),
        (Job::Echo, How::Transfer { engine, buffer }) => echo(files, engine, buffer),
        (Job::Cp, How::Transfer { engine, buffer }) => copy(files, engine, buffer),
        (Job::Scan, How::Scan { engine, buffer }) => scan_file(&files.big, engine, buffer),
        (Job::Serve, How::Transfer { engine, .. }) => serve(files, engine),
        (job, how) => Err(anyhow!("no such row: {} with {how:?}", job.name())),
    }
}

fn options(engine: Engine, buffer: usize, len: Option<u64>) -> Options {
    Options::default()
        .engine(EngineChoice::Only(engine))
        .buffer(buffer)
        .len(len)
}

/// Drains a socket into /dev/null with splice, returning the thread's usage.
fn drain(stream: TcpStream) -> Result<Rusage> {
    let usage = Rusage::thread();
    let devnull = File::options().write(true).open("/dev/null")?;
    Transfer::new(&stream, &devnull, options(Engine::Splice, BUFFER, None))?.run()?;
    Ok(Rusage::thread().since(&usage))
}

/// Sends the big file into a socket with sendfile and shuts down writing, as a
/// peer that is not being measured; returns the thread's usage.
fn feed(files: &Files, stream: TcpStream) -> Result<Rusage> {
    let usage = Rusage::thread();
    let file = File::open(&files.big)?;
    Transfer::new(
        &file,
        &stream,
        options(Engine::Sendfile, BUFFER, Some(files.size)),
    )?
    .run()?;
    stream.shutdown(Shutdown::Write)?;
    Ok(Rusage::thread().since(&usage))
}

/// The engine side's usage: its thread's, except for io_uring, whose splices run
/// on io-wq worker threads of this process that the thread's usage misses; there
/// it is the process's since `before`, less the `peers`' threads.
fn engine_side(engine: Engine, thread: Rusage, before: &Rusage, peers: Rusage) -> Rusage {
    if engine == Engine::IoUring {
        Rusage::process().since(before).since(&peers)
    } else {
        thread
    }
}

fn loopback() -> Result<(TcpListener, std::net::SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bench: cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

fn joined<T>(handle: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow!("a bench thread panicked"))?
}

/// File → socket with `how` (its length set here), `count` times over one
/// connection (1 for the big file, many for the small one).
fn send(files: &Files, how: Options, count: u64) -> Result<Sample> {
    let EngineChoice::Only(engine) = how.engine else {
        unreachable!("bench rows name their engine")
    };
    let (listener, addr) = loopback()?;
    let (path, len) = if count == 1 {
        (&files.big, files.size)
    } else {
        (&files.small, SMALL_FILE)
    };
    let started = Instant::now();
    let process = Rusage::process();
    thread::scope(|s| {
        let receiver = s.spawn(|| drain(listener.accept()?.0));
        let sender = s.spawn(|| -> Result<(Syscalls, ZeroCopy, Rusage)> {
            let usage = Rusage::thread();
            let file = File::open(path)?;
            let stream = TcpStream::connect(addr)?;
            let mut syscalls = Syscalls::default();
            let mut zerocopy = ZeroCopy::default();
            for _ in 0..count {
                let opts = how.len(len);
                let mut t = Transfer::new(&file, &stream, opts)?;
                t.run()?;
                syscalls.add(&t.report().syscalls);
                zerocopy.add(&t.report().zerocopy);
            }
            stream.shutdown(Shutdown::Write)?;
            Ok((syscalls, zerocopy, Rusage::thread().since(&usage)))
        });
        let (syscalls, zerocopy, side) = joined(sender)?;
        let peer = joined(receiver)?;
        Ok(Sample {
            bytes: len * count,
            seconds: started.elapsed().as_secs_f64(),
            syscalls,
            side: engine_side(engine, side, &process, peer),
            zerocopy,
            peer: Some(peer),
        })
    })
}

/// Socket → file; the peer sends the big file with sendfile.
fn recv(files: &Files, engine: Engine, buffer: usize) -> Result<Sample> {
    let (listener, addr) = loopback()?;
    let sink_path = files.dir.join("recv.out");
    let started = Instant::now();
    let process = Rusage::process();
    let sample = thread::scope(|s| {
        let sender = s.spawn(|| feed(files, TcpStream::connect(addr)?));
        let receiver = s.spawn(|| -> Result<(Syscalls, Rusage)> {
            let usage = Rusage::thread();
            let (stream, _) = listener.accept()?;
            let sink = File::create(&sink_path)?;
            let mut t = Transfer::new(&stream, &sink, options(engine, buffer, Some(files.size)))?;
            t.run()?;
            Ok((t.report().syscalls, Rusage::thread().since(&usage)))
        });
        let (syscalls, side) = joined(receiver)?;
        let peer = joined(sender)?;
        Ok(Sample {
            bytes: files.size,
            seconds: started.elapsed().as_secs_f64(),
            syscalls,
            side: engine_side(engine, side, &process, peer),
            zerocopy: ZeroCopy::default(),
            peer: Some(peer),
        })
    });
    let _ = std::fs::remove_file(&sink_path);
    sample
}

/// Socket → the same socket; a client sends the big file and drains the echo.
fn echo(files: &Files, engine: Engine, buffer: usize) -> Result<Sample> {
    let (listener, addr) = loopback()?;
    let started = Instant::now();
    let process = Rusage::process();
    thread::scope(|s| {
        let server = s.spawn(|| -> Result<(Syscalls, Rusage)> {
            let usage = Rusage::thread();
            let (stream, _) = listener.accept()?;
            let mut t = Transfer::new(&stream, &stream, options(engine, buffer, None))?;
            t.run()?;
            stream.shutdown(Shutdown::Write)?;
            Ok((t.report().syscalls, Rusage::thread().since(&usage)))
        });
        let stream = TcpStream::connect(addr)?;
        let back = stream.try_clone()?;
        let reader = s.spawn(move || drain(back));
        let writer = s.spawn(move || feed(files, stream));
        let (syscalls, side) = joined(server)?;
        let w = joined(writer)?;
        let r = joined(reader)?;
        Ok(Sample {
            bytes: files.size,
            seconds: started.elapsed().as_secs_f64(),
            syscalls,
            side: engine_side(engine, side, &process, w + r),
            zerocopy: ZeroCopy::default(),
            peer: Some(w + r),
        })
    })
}

fn copy(files: &Files, engine: Engine, buffer: usize) -> Result<Sample> {
    let dst = files.dir.join("cp.out");
    let started = Instant::now();
    let process = Rusage::process();
    let usage = Rusage::thread();
    let result = (|| -> Result<Syscalls> {
        let src = File::open(&files.big)?;
        let sink = File::create(&dst)?;
        let mut t = Transfer::new(&src, &sink, options(engine, buffer, Some(files.size)))?;
        t.run()?;
        Ok(t.report().syscalls)
    })();
    let side = Rusage::thread().since(&usage);
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&dst);
    Ok(Sample {
        bytes: files.size,
        seconds,
        syscalls: result?,
        side: engine_side(engine, side, &process, Rusage::default()),
        zerocopy: ZeroCopy::default(),
        peer: None,
    })
}

fn scan_file(path: &Path, engine: ScanEngine, buffer: usize) -> Result<Sample> {
    let file = File::open(path)?;
    let mut hasher = Xxh3::default();
    let report = zcopy::scan(&file, ScanChoice::Only(engine), buffer, &mut |chunk| {
        hasher.update(chunk)
    })?;
    std::hint::black_box(hasher.digest128());
    if let Some(why) = report.fallback {
        return Err(anyhow!("{why}"));
    }
    Ok(Sample {
        bytes: report.bytes,
        seconds: report.elapsed.as_secs_f64(),
        syscalls: report.syscalls,
        side: report.rusage,
        zerocopy: ZeroCopy::default(),
        peer: None,
    })
}

/// GETs of the small file, one at a time on one keep-alive connection, answered by
/// one `zcopy serve` event loop running in this process (the command's
/// `Server::spawn`, with the engine fixed: no body goes out from memory).
fn serve(files: &Files, engine: Engine) -> Result<Sample> {
    use zcopy_http::{files::Root, server};
    let (listener, addr) = loopback()?;
    // No digests (hashing the bench's files would add CPU time to what the bench
    // measures), no precompressed or compressed bodies, none from memory.
    let mut config = server::Config::new(Root::open(files.dir.clone())?);
    config.engine = EngineChoice::Only(engine);
    config.max_connections = 16;
    config.idle_timeout = std::time::Duration::from_secs(60);
    config.precompressed = false;
    config.compress = false;
    config.memory_body_max = 0;
    let name = files
        .small
        .file_name()
        .and_then(|n| n.to_str())
        .context("small file name")?;
    let request = format!("GET /{name} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let handle = server::Server {
        config,
        listener: server::Listener::Tcp(listener),
        workers: 1,
    }
    .spawn()?;
    let started = Instant::now();
    let process = Rusage::process();
    thread::scope(|s| {
        let client = s.spawn(|| -> Result<Rusage> {
            let usage = Rusage::thread();
            let mut stream = TcpStream::connect(addr)?;
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            for _ in 0..files.small_count {
                stream.write_all(request.as_bytes())?;
                loop {
                    let head = pending
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|p| p + 4);
                    match head {
                        Some(head) if pending.len() >= head + SMALL_FILE as usize => {
                            pending.drain(..head + SMALL_FILE as usize);
                            break;
                        }
                        _ => match stream.read(&mut buf)? {
                            0 => return Err(anyhow!("the server closed the connection")),
                            n => pending.extend_from_slice(&buf[..n]),
                        },
                    }
                }
            }
            Ok(Rusage::thread().since(&usage))
        });
        let peer = joined(client);
        let seconds = started.elapsed().as_secs_f64();
        let server = handle.stop()?;
        let peer = peer?;
        Ok(Sample {
            bytes: SMALL_FILE * files.small_count,
            seconds,
            syscalls: server.syscalls,
            side: engine_side(engine, server.rusage, &process, peer),
            zerocopy: ZeroCopy::default(),
            peer: Some(peer),
        })
    })
}
