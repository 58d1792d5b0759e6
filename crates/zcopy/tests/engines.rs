//! The engine tester: the same cases through every engine and every kind of source
//! and sink, comparing the bytes that arrive with the bytes sent.

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::thread;

use common::{file_with, pattern, tcp_pair};
use xxhash_rust::xxh3::Xxh3;
use zcopy::{Engine, EngineChoice, Error, FdKind, Options, Side, Status, Syscall, Transfer};

const SIZES: [usize; 6] = [0, 1, 4095, 4096, 65537, (8 << 20) + 3];

/// The engines that send a file into a socket.
const STREAM_ENGINES: [Engine; 6] = [
    Engine::ReadWrite,
    Engine::Mmap,
    Engine::Sendfile,
    Engine::Splice,
    Engine::IoUring,
    Engine::MsgZerocopy,
];

/// The engines that copy a file into a file.
const FILE_ENGINES: [Engine; 6] = [
    Engine::CopyFileRange,
    Engine::Sendfile,
    Engine::Splice,
    Engine::Mmap,
    Engine::ReadWrite,
    Engine::IoUring,
];

fn pipe() -> (File, File) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    (File::from(r), File::from(w))
}

fn options(engine: Engine) -> Options {
    Options::default()
        .engine(EngineChoice::Only(engine))
        .buffer(4096)
}

#[derive(Clone, Copy, Debug)]
enum End {
    File,
    Socket,
    Pipe,
}

impl End {
    fn kind(self) -> FdKind {
        match self {
            End::File => FdKind::File,
            End::Socket => FdKind::Socket,
            End::Pipe => FdKind::Pipe,
        }
    }
}

/// Moves `data` from a source of kind `src` to a sink of kind `sink` with `engine`
/// and returns what the sink received.
fn run_case(engine: Engine, src: End, sink: End, data: &[u8]) -> Vec<u8> {
    thread::scope(|s| {
        let (source, feeder): (OwnedFd, Option<OwnedFd>) = match src {
            End::File => (file_with(data).into(), None),
            End::Socket => {
                let (a, b) = tcp_pair();
                (a.into(), Some(b.into()))
            }
            End::Pipe => {
                let (r, w) = pipe();
                (r.into(), Some(w.into()))
            }
        };
        if let Some(feeder) = feeder {
            s.spawn(move || {
                let mut f = File::from(feeder);
                f.write_all(data).unwrap();
            });
        }
        let (sink_fd, drain) = match sink {
            End::File => (OwnedFd::from(tempfile::tempfile().unwrap()), None),
            End::Socket => {
                let (a, b) = tcp_pair();
                (a.into(), Some(s.spawn(move || read_all(b.into()))))
            }
            End::Pipe => {
                let (r, w) = pipe();
                (w.into(), Some(s.spawn(move || read_all(r.into()))))
            }
        };
        let mut transfer = Transfer::new(&source, &sink_fd, options(engine)).unwrap();
        assert_eq!(transfer.run().unwrap(), Status::Done);
        let report = transfer.report();
        assert_eq!(report.bytes, data.len() as u64);
        assert_eq!(report.engine, engine);
        drop(transfer);
        match drain {
            Some(drain) => {
                drop(sink_fd);
                drain.join().unwrap()
            }
            None => {
                let mut f = File::from(sink_fd);
                f.seek(SeekFrom::Start(0)).unwrap();
                read_all(f.into())
            }
        }
    })
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    File::from(fd).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn every_engine_every_end_every_size() {
    let ends = [End::File, End::Socket, End::Pipe];
    for size in SIZES {
        let data = pattern(size);
        for engine in Engine::ALL {
            for src in ends {
                for sink in ends {
                    if engine.accepts(src.kind(), sink.kind()).is_err() {
                        continue;
                    }
                    let got = run_case(engine, src, sink, &data);
                    assert!(
                        got == data,
                        "{engine}: {src:?} -> {sink:?}, {size} bytes: got {} bytes",
                        got.len()
                    );
                }
            }
        }
    }
}

#[test]
fn auto_picks_the_first_engine_that_works() {
    let data = pattern(100_000);
    let src = file_with(&data);
    let sink = tempfile::tempfile().unwrap();
    let mut t = Transfer::new(&src, &sink, Options::default()).unwrap();
    t.run().unwrap();
    assert_eq!(t.report().engine, Engine::CopyFileRange);

    let (a, b) = tcp_pair();
    let drain = thread::spawn(move || read_all(b.into()));
    let mut t = Transfer::new(&src, &a, Options::default()).unwrap();
    t.run().unwrap();
    let report = t.report();
    assert_eq!(report.engine, Engine::Sendfile);
    assert_eq!(
        report.skipped[0].to_string(),
        "copy-file-range: sink is a socket"
    );
    drop(t);
    drop(a);
    assert!(drain.join().unwrap() == data);
}

#[test]
fn auto_falls_back_when_the_sink_is_append_only() {
    // copy_file_range, sendfile and splice all refuse an O_APPEND sink with EINVAL or
    // EBADF; the chain must end at mmap with the reasons recorded.
    let data = pattern(70_000);
    let src = file_with(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let sink = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut t = Transfer::new(&src, &sink, Options::default()).unwrap();
    assert_eq!(t.run().unwrap(), Status::Done);
    let report = t.report();
    let reasons: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
    assert!(
        report.engine == Engine::Mmap || report.engine == Engine::Splice,
        "{report:?}"
    );
    assert!(reasons[0].starts_with("copy-file-range: E"), "{reasons:?}");
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[test]
fn a_range_is_moved_exactly_and_growth_is_ignored() {
    let data = pattern(50_000);
    for engine in FILE_ENGINES {
        let src = file_with(&data);
        let sink = tempfile::tempfile().unwrap();
        let opts = options(engine).offset(1000).len(30_000);
        let mut t = Transfer::new(&src, &sink, opts).unwrap();
        // The file grows after the transfer is set up: exactly the range still goes.
        (&src).write_all(b"grown").unwrap();
        assert_eq!(t.run().unwrap(), Status::Done);
        drop(t);
        let mut got = Vec::new();
        let mut sink = sink;
        sink.seek(SeekFrom::Start(0)).unwrap();
        sink.read_to_end(&mut got).unwrap();
        assert!(got == data[1000..31_000], "{engine}");
    }
}

#[test]
fn a_source_that_shrinks_is_a_clean_error() {
    for engine in FILE_ENGINES {
        let data = pattern(1 << 20);
        let src = file_with(&data);
        let sink = tempfile::tempfile().unwrap();
        let opts = options(engine).len(data.len() as u64);
        let mut t = Transfer::new(&src, &sink, opts).unwrap();
        assert_eq!(t.run_some(100_000).unwrap(), Status::More);
        src.set_len(200_000).unwrap();
        let err = t.run().unwrap_err();
        assert!(
            matches!(err, Error::SourceShrank { size: 200_000 }),
            "{engine}: {err}"
        );
        assert_eq!(
            t.moved(),
            200_000,
            "{engine}: every byte the file still had arrived"
        );
    }
}

/// A non-blocking socket sink with a small buffer and a slow reader: the engines see
/// short writes and `EAGAIN`, and must resume without losing or repeating a byte.
#[test]
fn short_writes_and_eagain_resume_exactly() {
    let data = pattern((4 << 20) + 17);
    for engine in STREAM_ENGINES {
        let src = file_with(&data);
        let (a, b) = tcp_pair();
        rustix::net::sockopt::set_socket_send_buffer_size(&a, 8192).unwrap();
        a.set_nonblocking(true).unwrap();
        let drain = thread::spawn(move || {
            let mut b = b;
            let mut got = Vec::new();
            let mut buf = [0u8; 3000];
            loop {
                match b.read(&mut buf).unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
                if got.len() % 7 == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut t = Transfer::new(&src, &a, options(engine)).unwrap();
        let mut blocked = 0;
        while t.run().unwrap() == Status::WouldBlock(Side::Sink) {
            blocked += 1;
            let mut fds = [rustix::event::PollFd::new(
                &a,
                rustix::event::PollFlags::OUT,
            )];
            rustix::event::poll(&mut fds, None).unwrap();
        }
        assert!(
            blocked > 0,
            "{engine}: the sink never filled, the test proves nothing"
        );
        drop(t);
        a.shutdown(Shutdown::Write).unwrap();
        assert!(drain.join().unwrap() == data, "{engine}");
    }
}

/// A non-blocking socket source with nothing to read says so: `WouldBlock(Source)`,
/// the side an event loop must wait on, for the engine that reads (read-write) and
/// for the one that splices it into a pipe.
#[test]
fn an_empty_nonblocking_source_blocks_on_the_source_side() {
    for engine in [Engine::ReadWrite, Engine::Splice] {
        let (a, b) = tcp_pair();
        b.set_nonblocking(true).unwrap();
        let sink = tempfile::tempfile().unwrap();
        let mut t = Transfer::new(&b, &sink, options(engine)).unwrap();
        assert_eq!(
            t.run().unwrap(),
            Status::WouldBlock(Side::Source),
            "{engine}"
        );
        (&a).write_all(b"late").unwrap();
        drop(a);
        while t.run().unwrap() != Status::Done {
            thread::yield_now();
        }
        assert_eq!(t.moved(), 4, "{engine}");
    }
}

/// The mmap engine with a window mapped and half written when the file is
/// truncated: the next write hits the missing pages, which must be an error naming
/// the new size, not a SIGBUS that kills the process.
#[test]
fn mmap_survives_truncation_under_the_map() {
    let data = pattern(8 << 20);
    let src = file_with(&data);
    let (a, b) = tcp_pair();
    rustix::net::sockopt::set_socket_send_buffer_size(&a, 8192).unwrap();
    a.set_nonblocking(true).unwrap();
    let opts = options(Engine::Mmap).len(data.len() as u64);
    let mut t = Transfer::new(&src, &a, opts).unwrap();
    assert_eq!(t.run().unwrap(), Status::WouldBlock(Side::Sink));
    src.set_len(0).unwrap();
    let drain = thread::spawn(move || read_all(b.into()));
    let err = loop {
        match t.run() {
            Ok(Status::WouldBlock(Side::Sink)) => thread::yield_now(),
            Ok(status) => panic!("transfer of a truncated file ended with {status:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::SourceShrank { size: 0 }), "{err}");
    let sent = t.moved();
    drop(t);
    drop(a);
    let got = drain.join().unwrap();
    assert_eq!(got.len() as u64, sent);
    assert!(got == data[..got.len()], "what arrived is a true prefix");
}

/// A peer that resets the connection mid-transfer is an error for every engine,
/// never death by SIGPIPE.
#[test]
fn a_peer_reset_is_an_error() {
    let data = pattern(16 << 20);
    for engine in STREAM_ENGINES {
        let src = file_with(&data);
        let (a, b) = tcp_pair();
        let reader = thread::spawn(move || {
            let mut b = b;
            let mut buf = vec![0u8; 65536];
            b.read_exact(&mut buf).unwrap();
            // SO_LINGER 0 turns close into a reset.
            rustix::net::sockopt::set_socket_linger(&b, Some(std::time::Duration::ZERO)).unwrap();
        });
        let mut t = Transfer::new(&src, &a, options(engine)).unwrap();
        let err = t.run().unwrap_err();
        reader.join().unwrap();
        let kind = err.kind();
        assert!(
            matches!(
                kind,
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{engine}: {err}"
        );
        assert!(t.moved() >= 65536, "{engine}: the count survives the error");
    }
}

/// Signals without `SA_RESTART` interrupt blocked writes with `EINTR`; the engines
/// retry and the bytes arrive intact.
#[test]
fn eintr_is_retried() {
    extern "C" fn on_signal(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing, for SIGUSR1 only, without
    // SA_RESTART so that blocking calls in this process return EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let data = pattern(4 << 20);
    for engine in STREAM_ENGINES {
        let src = file_with(&data);
        let (a, b) = tcp_pair();
        rustix::net::sockopt::set_socket_send_buffer_size(&a, 8192).unwrap();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() } as usize;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let drain = thread::spawn(move || {
            let mut b = b;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: `me` is the test thread, alive until it joins this one.
                unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) };
                match b.read(&mut buf).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            stop2.store(true, std::sync::atomic::Ordering::Relaxed);
            got
        });
        let mut t = Transfer::new(&src, &a, options(engine)).unwrap();
        assert_eq!(t.run().unwrap(), Status::Done);
        drop(t);
        drop(a);
        let got = drain.join().unwrap();
        assert!(stop.load(std::sync::atomic::Ordering::Relaxed));
        assert!(got == data, "{engine}");
    }
}

/// A sparse file of 4 GiB + 3 bytes, with marks on either side of each 2 GiB and
/// 4 GiB boundary: 32-bit offsets or a missed sendfile cap would misplace them.
fn sparse_file() -> (File, u64, Vec<(u64, &'static [u8])>) {
    let len: u64 = (4 << 30) + 3;
    let marks: Vec<(u64, &[u8])> = vec![
        (0, b"start"),
        (0x7fff_f000 - 1, b"cap"),
        ((2 << 30) - 2, b"2GiB"),
        ((4 << 30) - 3, b"4GiB!"),
        (len - 1, b"e"),
    ];
    let f = tempfile::tempfile().unwrap();
    f.set_len(len).unwrap();
    for (at, mark) in &marks {
        rustix::io::pwrite(&f, mark, *at).unwrap();
    }
    (f, len, marks)
}

fn expected_digest(len: u64, marks: &[(u64, &[u8])]) -> u128 {
    let mut h = Xxh3::new();
    let zeros = vec![0u8; 1 << 20];
    let mut pos = 0;
    for (at, mark) in marks {
        while pos < *at {
            let n = (*at - pos).min(zeros.len() as u64) as usize;
            h.update(&zeros[..n]);
            pos += n as u64;
        }
        h.update(mark);
        pos += mark.len() as u64;
    }
    assert_eq!(pos, len);
    h.digest128()
}

#[test]
fn files_over_4_gib_through_every_stream_engine() {
    let (src, len, marks) = sparse_file();
    let want = expected_digest(len, &marks);
    for engine in STREAM_ENGINES {
        let (a, b) = tcp_pair();
        let drain = thread::spawn(move || {
            let mut b = b;
            let mut h = Xxh3::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n_total = 0u64;
            loop {
                match b.read(&mut buf).unwrap() {
                    0 => return (n_total, h.digest128()),
                    n => {
                        h.update(&buf[..n]);
                        n_total += n as u64;
                    }
                }
            }
        });
        let opts = options(engine).buffer(1 << 20);
        let mut t = Transfer::new(&src, &a, opts).unwrap();
        assert_eq!(t.run().unwrap(), Status::Done);
        let report = t.report();
        drop(t);
        drop(a);
        assert_eq!(drain.join().unwrap(), (len, want), "{engine}");
        if engine == Engine::Sendfile {
            assert!(
                report.syscalls.get(Syscall::Sendfile) >= 3,
                "the 0x7ffff000 cap splits 4 GiB"
            );
        }
    }
}

#[test]
fn file_to_file_past_4_gib() {
    let (src, len, marks) = sparse_file();
    let start = (4 << 30) - 10_000;
    for engine in FILE_ENGINES {
        let sink = tempfile::tempfile().unwrap();
        let opts = options(engine).offset(start);
        let mut t = Transfer::new(&src, &sink, opts).unwrap();
        assert_eq!(t.run().unwrap(), Status::Done);
        assert_eq!(t.moved(), len - start, "{engine}");
        let mut got = [0u8; 5];
        rustix::io::pread(&sink, &mut got, marks[3].0 - start).unwrap();
        assert_eq!(&got, marks[3].1, "{engine}");
        let mut last = [0u8; 1];
        rustix::io::pread(&sink, &mut last, len - 1 - start).unwrap();
        assert_eq!(&last, b"e", "{engine}");
    }
}

#[test]
fn the_report_counts_syscalls_and_names_the_engine() {
    let data = pattern(10 * 1024);
    let src = file_with(&data);
    let sink = tempfile::tempfile().unwrap();
    let opts = options(Engine::ReadWrite).buffer(1024);
    let mut t = Transfer::new(&src, &sink, opts).unwrap();
    t.run().unwrap();
    let r = t.report();
    // Ten full 1 KiB reads and the read that finds end of file; ten writes.
    assert_eq!(r.syscalls.get(Syscall::Pread), 11);
    assert_eq!(r.syscalls.get(Syscall::Write), 10);
    assert_eq!(r.syscalls.to_string(), "pread=11 write=10");
}

#[test]
fn directories_and_offsets_on_streams_are_refused() {
    let dir = File::open(std::env::temp_dir()).unwrap();
    let sink = tempfile::tempfile().unwrap();
    let err = Transfer::new(&dir, &sink, Options::default())
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "the source is a directory");
    let (a, _b) = tcp_pair();
    let opts = Options::default().offset(5);
    assert!(Transfer::new(&a, &sink, opts).is_err());
}
