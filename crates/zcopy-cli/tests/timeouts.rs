//! `--timeout S` ends a stalled transfer within S seconds (and a tick) in every
//! mode: raw and framed, sending and receiving, against a peer that stops. Each
//! case prints how long it took; none asserts more than that it ended by S + 5.

mod common;
mod wire;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{names_in, pattern, zcopy, Server};

const TIMEOUT: u64 = 2;

/// Runs `zcopy ARGS`, prints how long it took, and checks it ended as a timeout
/// (curl's code 28) by `TIMEOUT` + 5 seconds.
fn timed_out(what: &str, args: &[&std::ffi::OsStr]) -> String {
    let started = Instant::now();
    let o = zcopy().args(args).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    println!(
        "{what}: ended after {:.2} s with --timeout {TIMEOUT}",
        took.as_secs_f64()
    );
    assert_eq!(o.status.code(), Some(28), "{what}: {stderr}");
    assert!(took < Duration::from_secs(TIMEOUT + 5), "{what}: {took:?}");
    stderr
}

/// A listener whose connections are accepted and held open, never read, until
/// the returned sender is dropped or sent to.
fn deaf(greet: bool) -> (String, mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (done, held) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        if greet {
            let mut hello = [0u8; 17];
            c.read_exact(&mut hello).unwrap();
            // The receiver's greeting: version 2, no capabilities, session 1.
            let mut answer = hello;
            answer[5..9].copy_from_slice(&0u32.to_be_bytes());
            answer[9..].copy_from_slice(&1u64.to_be_bytes());
            c.write_all(&answer).unwrap();
        }
        let _ = held.recv_timeout(Duration::from_secs(60));
    });
    (addr, done, holder)
}

#[test]
fn raw_send_to_a_receiver_that_stops_reading() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    std::fs::write(&file, pattern(64 << 20)).unwrap();
    let (addr, done, holder) = deaf(false);
    let t = TIMEOUT.to_string();
    let stderr = timed_out(
        "send --raw",
        &[
            "send".as_ref(),
            file.as_os_str(),
            addr.as_ref(),
            "--raw".as_ref(),
            "--timeout".as_ref(),
            t.as_ref(),
        ],
    );
    assert!(stderr.contains("no byte moved"), "{stderr}");
    done.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn framed_send_to_a_receiver_that_stops_reading() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    std::fs::write(&file, pattern(64 << 20)).unwrap();
    let (addr, done, holder) = deaf(true);
    let t = TIMEOUT.to_string();
    let stderr = timed_out(
        "framed send",
        &[
            "send".as_ref(),
            file.as_os_str(),
            addr.as_ref(),
            "--timeout".as_ref(),
            t.as_ref(),
        ],
    );
    assert!(stderr.contains(&addr), "{stderr}");
    done.send(()).unwrap();
    holder.join().unwrap();
}

/// A sender that sends `first` and then stops writing, holding the connection
/// open until the receiver has given up.
fn stop_after(addr: &str, first: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut c = TcpStream::connect(addr).unwrap();
    std::thread::spawn(move || {
        c.write_all(&first).unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    })
}

#[test]
fn raw_recv_from_a_sender_that_stops_writing() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("raw.bin");
    let t = TIMEOUT.to_string();
    let started = Instant::now();
    let mut server = Server::start(&[
        "recv",
        "--once",
        "--raw",
        "--listen",
        "127.0.0.1:0",
        "-o",
        target.to_str().unwrap(),
        "--timeout",
        &t,
    ]);
    let sender = stop_after(&server.addr, pattern(1 << 20));
    let (status, _, stderr) = server.wait();
    println!(
        "recv --raw: ended after {:.2} s with --timeout {TIMEOUT}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(status.code(), Some(28), "{stderr}");
    assert!(stderr.contains("no byte moved"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(TIMEOUT + 5));
    assert!(
        names_in(out.path()).is_empty(),
        "{:?}",
        names_in(out.path())
    );
    sender.join().unwrap();
}

#[test]
fn framed_recv_from_a_sender_that_stops_writing() {
    let out = tempfile::tempdir().unwrap();
    let t = TIMEOUT.to_string();
    let started = Instant::now();
    let mut server = Server::recv_once(out.path(), &["--timeout", &t]);
    // A file of two blocks whose first block stops half way.
    let mut s = wire::greeting(0);
    s.extend(wire::file(1, "stalled.bin", 2 * u64::from(wire::BLOCK)));
    s.extend(wire::msg(
        b'D',
        &[
            &1u32.to_be_bytes()[..],
            &0u64.to_be_bytes(),
            &wire::BLOCK.to_be_bytes(),
        ]
        .concat(),
    ));
    s.extend(pattern(wire::BLOCK as usize / 2));
    let sender = stop_after(&server.addr, s);
    let (status, _, stderr) = server.wait();
    println!(
        "framed recv: ended after {:.2} s with --timeout {TIMEOUT}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(status.code(), Some(28), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(TIMEOUT + 5));
    // The partial file stays under a hidden name, to resume; never the real one.
    let names = names_in(out.path());
    assert!(!out.path().join("stalled.bin").exists(), "{names:?}");
    sender.join().unwrap();
}
