//! `zcopy::copy`, the one-call copy: positions as `std::io::copy` leaves them, the
//! report of the path taken, and non-blocking descriptors waited for.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::thread;

use common::{file_with, pattern, tcp_pair};
use zcopy::Engine;

/// From the reader's position to its end, both positions after the bytes, as
/// `std::io::copy` does; file to file runs copy_file_range.
#[test]
fn file_to_file_from_the_current_position() {
    let data = pattern(3 << 20);
    let mut src = file_with(&data);
    src.seek(SeekFrom::Start(1000)).unwrap();
    let mut dst = tempfile::tempfile().unwrap();
    dst.write_all(b"head").unwrap();
    let report = zcopy::copy(&mut src, &mut dst).unwrap();
    assert_eq!(report.bytes, data.len() as u64 - 1000);
    assert_eq!(report.engine, Engine::CopyFileRange, "{report:?}");
    assert_eq!(src.stream_position().unwrap(), data.len() as u64);
    assert_eq!(dst.stream_position().unwrap(), 4 + data.len() as u64 - 1000);
    let mut got = Vec::new();
    dst.rewind().unwrap();
    dst.read_to_end(&mut got).unwrap();
    assert_eq!(&got[..4], b"head");
    assert!(got[4..] == data[1000..]);
}

/// A non-blocking socket that fills up is waited for, not spun on nor failed: every
/// byte arrives, by sendfile, the engine `auto` picks for a file into a socket.
#[test]
fn a_nonblocking_sink_is_waited_for() {
    let data = pattern(8 << 20);
    let mut src = file_with(&data);
    src.rewind().unwrap();
    let (mut a, b) = tcp_pair();
    rustix::net::sockopt::set_socket_send_buffer_size(&a, 8192).unwrap();
    a.set_nonblocking(true).unwrap();
    let drain = thread::spawn(move || {
        let mut b = b;
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    let report = zcopy::copy(&mut src, &mut a).unwrap();
    drop(a);
    assert_eq!(report.engine, Engine::Sendfile, "{report:?}");
    assert!(drain.join().unwrap() == data);
}

/// A non-blocking socket source that has nothing yet is waited for until its writer
/// closes; the bytes land whole in the file.
#[test]
fn a_nonblocking_source_is_waited_for() {
    let data = pattern(1 << 20);
    let (a, mut b) = tcp_pair();
    b.set_nonblocking(true).unwrap();
    let sent = data.clone();
    let writer = thread::spawn(move || {
        let mut a = a;
        for chunk in sent.chunks(64 << 10) {
            a.write_all(chunk).unwrap();
            thread::yield_now();
        }
    });
    let mut dst = tempfile::tempfile().unwrap();
    let report = zcopy::copy(&mut b, &mut dst).unwrap();
    writer.join().unwrap();
    assert_eq!(report.bytes, data.len() as u64);
    let mut got = Vec::new();
    dst.rewind().unwrap();
    dst.read_to_end(&mut got).unwrap();
    assert!(got == data);
}

/// A source whose size lies (procfs says 0): everything it yields is copied, not
/// the nothing its size promises.
#[test]
fn a_source_whose_size_lies_is_read_to_its_end() {
    let want = std::fs::read("/proc/version").unwrap();
    let mut src = std::fs::File::open("/proc/version").unwrap();
    assert_eq!(
        src.metadata().unwrap().len(),
        0,
        "procfs reports a size here"
    );
    let mut dst = tempfile::tempfile().unwrap();
    let report = zcopy::copy(&mut src, &mut dst).unwrap();
    assert_eq!(report.bytes, want.len() as u64, "{report:?}");
    let mut got = Vec::new();
    dst.rewind().unwrap();
    dst.read_to_end(&mut got).unwrap();
    assert_eq!(got, want);
}
