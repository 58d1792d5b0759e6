//! The engines of today's zero-copy: io_uring's batched splices and MSG_ZEROCOPY's
//! completions, as the kernel reports them on this machine's loopback.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::thread;

use common::{file_with, pattern, tcp_pair};
use zcopy::{Engine, EngineChoice, Options, Status, Syscall, Transfer};

fn only(engine: Engine) -> Options {
    Options::default().engine(EngineChoice::Only(engine))
}

fn read_all(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn msg_zerocopy_on_loopback_reports_every_send_copied() {
    let data = pattern(8 << 20);
    let src = file_with(&data);
    let (a, b) = tcp_pair();
    let drain = thread::spawn(move || read_all(b));
    let mut t = Transfer::new(&src, &a, only(Engine::MsgZerocopy)).unwrap();
    assert_eq!(t.run().unwrap(), Status::Done);
    let report = t.report();
    drop(t);
    drop(a);
    assert!(drain.join().unwrap() == data);
    let zc = report.zerocopy;
    assert!(zc.sends > 0, "{report:?}");
    assert_eq!(zc.sends, report.syscalls.get(Syscall::Send));
    // Done waits for every completion; loopback delivers to a receiver on this host,
    // which must not keep our pages, so the kernel copies every send.
    assert_eq!(zc.completions, zc.sends, "{zc}");
    assert_eq!(zc.copied, zc.completions, "{zc}");
}

/// The kernel numbers zero-copy sends per socket: many small transfers over one
/// connection must each continue the count, or the last would wait forever.
#[test]
fn msg_zerocopy_many_transfers_on_one_connection() {
    let data = pattern(10_000);
    let src = file_with(&data);
    let (a, b) = tcp_pair();
    let drain = thread::spawn(move || read_all(b));
    let mut completions = 0;
    for _ in 0..50 {
        let mut t = Transfer::new(&src, &a, only(Engine::MsgZerocopy)).unwrap();
        assert_eq!(t.run().unwrap(), Status::Done);
        completions += t.report().zerocopy.completions;
    }
    drop(a);
    assert_eq!(drain.join().unwrap().len(), 50 * data.len());
    assert!(completions >= 50);
}

#[test]
fn msg_zerocopy_into_a_unix_socket_says_why_not() {
    let src = file_with(b"unix sockets have no SO_ZEROCOPY");
    let (a, _b) = UnixStream::pair().unwrap();
    let mut t = Transfer::new(&src, &a, only(Engine::MsgZerocopy)).unwrap();
    let err = t.run().unwrap_err();
    assert!(err.to_string().contains("SO_ZEROCOPY: EOPNOTSUPP"), "{err}");
    assert_eq!(t.moved(), 0);
}

/// A reset while sends are in flight: an error with the count kept, and what
/// arrived is a true prefix (a buffer refilled before its completion would show
/// as foreign bytes).
#[test]
fn msg_zerocopy_survives_a_reset_with_sends_in_flight() {
    survives_a_reset_with_sends_in_flight(only(Engine::MsgZerocopy));
}

/// The same through io_uring's `SEND_ZC`: registered buffers with sends in flight
/// when the peer resets.
#[test]
fn io_uring_send_zc_survives_a_reset_with_sends_in_flight() {
    survives_a_reset_with_sends_in_flight(send_zc());
}

/// 32 MiB sent with `options` to a peer that reads 1 MiB and resets.
fn survives_a_reset_with_sends_in_flight(options: Options) {
    let data = pattern(32 << 20);
    let src = file_with(&data);
    let (a, b) = tcp_pair();
    let reader = thread::spawn(move || {
        let mut b = b;
        let mut got = vec![0u8; 1 << 20];
        b.read_exact(&mut got).unwrap();
        rustix::net::sockopt::set_socket_linger(&b, Some(std::time::Duration::ZERO)).unwrap();
        got
    });
    let mut t = Transfer::new(&src, &a, options).unwrap();
    let err = t.run().unwrap_err();
    let got = reader.join().unwrap();
    assert!(got == data[..got.len()]);
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{err}"
    );
    assert!(t.moved() >= got.len() as u64);
}

#[test]
fn io_uring_submits_several_splices_per_enter() {
    let data = pattern(16 << 20);
    let src = file_with(&data);
    let sink = tempfile::tempfile().unwrap();
    let mut t = Transfer::new(&src, &sink, only(Engine::IoUring)).unwrap();
    assert_eq!(t.run().unwrap(), Status::Done);
    let report = t.report();
    eprintln!("{:?}", report.syscalls.to_string());
    // 16 pipefuls of 1 MiB, two splices each, 8 pipefuls to a round.
    let enters = report.syscalls.get(Syscall::IoUringEnter);
    assert!((2..=4).contains(&enters), "{}", report.syscalls);
    assert_eq!(report.syscalls.get(Syscall::Splice), 0);
}

fn send_zc() -> Options {
    only(Engine::IoUring).send_zc(true)
}

/// io_uring's `SEND_ZC` from registered buffers, every size, from a file, a
/// socket and a pipe: the bytes arrive whole, and every send's notification says
/// the kernel copied (loopback).
#[test]
fn io_uring_send_zc_every_size_and_source() {
    for size in [0, 1, 4095, 4096, 65537, (8 << 20) + 3] {
        let data = &pattern(size);
        for source in ["file", "socket", "pipe"] {
            thread::scope(|s| {
                let src: std::os::fd::OwnedFd = match source {
                    "file" => file_with(data).into(),
                    "socket" => {
                        let (a, mut b) = tcp_pair();
                        s.spawn(move || b.write_all(data).unwrap());
                        a.into()
                    }
                    _ => {
                        let (r, w) = rustix::pipe::pipe().unwrap();
                        s.spawn(move || File::from(w).write_all(data).unwrap());
                        r
                    }
                };
                let (a, b) = tcp_pair();
                let drain = s.spawn(move || read_all(b));
                let mut t = Transfer::new(&src, &a, send_zc()).unwrap();
                assert_eq!(t.run().unwrap(), Status::Done);
                let report = t.report();
                drop(t);
                drop(a);
                let got = drain.join().unwrap();
                assert!(got == *data, "{source}, {size} bytes: got {}", got.len());
                let zc = report.zerocopy;
                assert_eq!(zc.completions, zc.sends, "{source}, {size}: {zc}");
                assert_eq!(zc.copied, zc.completions, "{source}, {size}: {zc}");
                assert_eq!(zc.sends > 0, size > 0, "{source}, {size}: {zc}");
            });
        }
    }
}

/// A non-blocking socket with a small buffer: `SEND_ZC` resumes after `EAGAIN`
/// without losing or repeating a byte.
#[test]
fn io_uring_send_zc_resumes_after_eagain() {
    let data = pattern((4 << 20) + 17);
    let src = file_with(&data);
    let (a, b) = tcp_pair();
    rustix::net::sockopt::set_socket_send_buffer_size(&a, 8192).unwrap();
    a.set_nonblocking(true).unwrap();
    let drain = thread::spawn(move || read_all(b));
    let mut t = Transfer::new(&src, &a, send_zc()).unwrap();
    let mut blocked = 0;
    while t.run().unwrap() == Status::WouldBlock(zcopy::Side::Sink) {
        blocked += 1;
        let mut fds = [rustix::event::PollFd::new(
            &a,
            rustix::event::PollFlags::OUT,
        )];
        rustix::event::poll(&mut fds, None).unwrap();
    }
    assert!(
        blocked > 0,
        "the sink never filled, the test proves nothing"
    );
    drop(t);
    drop(a);
    assert!(drain.join().unwrap() == data);
}
