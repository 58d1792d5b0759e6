//! `zcopy send` and `zcopy recv` against each other, against hostile and broken
//! peers, and the errors a user meets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use assert_cmd::Command;
use common::{names_in, pattern, zcopy, Server};

fn send(file: &std::path::Path, addr: &str, extra: &[&str]) -> std::process::Output {
    zcopy()
        .arg("send")
        .arg(file)
        .arg(addr)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn framed_round_trip_with_every_engine_pair() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern((3 << 20) + 5);
    let src = dir.path().join("data.bin");
    std::fs::write(&src, &data).unwrap();
    for recv_engine in ["read-write", "splice", "auto"] {
        let out = tempfile::tempdir().unwrap();
        let mut server = Server::start(&[
            "recv",
            "--listen",
            "127.0.0.1:0",
            "-o",
            out.path().to_str().unwrap(),
            "--engine",
            recv_engine,
            "--json",
        ]);
        for send_engine in ["read-write", "mmap", "sendfile", "splice", "auto"] {
            let o = send(
                &src,
                &server.addr,
                &["--engine", send_engine, "--json", "--buffer", "1KiB"],
            );
            assert!(
                o.status.success(),
                "{send_engine} -> {recv_engine}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(json["bytes"], data.len());
            let want = if send_engine == "auto" {
                "sendfile"
            } else {
                send_engine
            };
            assert_eq!(json["engine"], want);
            for key in [
                "seconds",
                "syscalls",
                "cpu_user_s",
                "cpu_sys_s",
                "ctx_switches",
            ] {
                assert!(json.get(key).is_some(), "--json lacks {key}");
            }
            assert!(
                std::fs::read(out.path().join("data.bin")).unwrap() == data,
                "{send_engine} -> {recv_engine}"
            );
        }
        assert_eq!(names_in(out.path()), ["data.bin"]);
        drop(server.child.kill());
    }
}

#[test]
fn empty_file_and_permissions_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("empty.sh");
    std::fs::write(&src, b"").unwrap();
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o751)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.path().to_str().unwrap(),
        "--once",
    ]);
    assert!(send(&src, &server.addr, &[]).status.success());
    let (status, _, _) = server.wait();
    assert!(status.success());
    let meta = std::fs::metadata(out.path().join("empty.sh")).unwrap();
    assert_eq!(meta.len(), 0);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o751
    );
}

#[test]
fn output_path_names_the_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, b"hello").unwrap();
    let target = dir.path().join("renamed.txt");
    let mut server = Server::start(&[
        "recv",
        "--listen",
        ":0",
        "-o",
        target.to_str().unwrap(),
        "--once",
    ]);
    assert!(
        server.addr.starts_with("127.0.0.1:"),
        "a bare port binds loopback"
    );
    assert!(send(&src, &server.addr, &[]).status.success());
    assert!(server.wait().0.success());
    assert_eq!(std::fs::read(&target).unwrap(), b"hello");
}

/// 256 senders at once against one receiver.
#[test]
fn many_concurrent_senders() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.path().to_str().unwrap(),
    ]);
    // Open 256 connections first, so all are held at once, then finish each.
    let mut conns = Vec::new();
    for i in 0..256 {
        let data = pattern(1000 + i);
        let header = frame_header(&format!("f{i}"), data.len() as u64);
        let mut c = TcpStream::connect(&server.addr).unwrap();
        c.write_all(&header).unwrap();
        conns.push((c, data));
    }
    for (c, data) in &mut conns {
        c.write_all(data).unwrap();
        c.write_all(&xxhash_rust::xxh3::xxh3_128(data).to_be_bytes())
            .unwrap();
    }
    for (c, _) in &mut conns {
        let mut verdict = String::new();
        c.read_to_string(&mut verdict).unwrap();
        assert_eq!(verdict, "OK\n");
    }
    for i in 0..256 {
        assert!(std::fs::read(out.path().join(format!("f{i}"))).unwrap() == pattern(1000 + i));
    }
    assert_eq!(names_in(out.path()).len(), 256);
    drop(dir);
}

fn frame_header(name: &str, size: u64) -> Vec<u8> {
    let mut h = b"ZCP1".to_vec();
    h.extend_from_slice(&(name.len() as u16).to_be_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&0o644u32.to_be_bytes());
    h
}

/// Starts `recv --once` into a fresh directory, lets `peer` talk to it, and returns
/// the exit status, stderr and what the directory holds afterwards.
fn recv_once_against(peer: impl FnOnce(TcpStream)) -> (bool, String, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.path().to_str().unwrap(),
        "--once",
    ]);
    peer(TcpStream::connect(&server.addr).unwrap());
    let (status, _, stderr) = server.wait();
    (status.success(), stderr, names_in(out.path()))
}

#[test]
fn digest_mismatch_writes_nothing() {
    let mut verdict = String::new();
    let (ok, stderr, names) = recv_once_against(|mut c| {
        c.write_all(&frame_header("x.bin", 4)).unwrap();
        c.write_all(b"abcd").unwrap();
        c.write_all(&[0u8; 16]).unwrap();
        c.read_to_string(&mut verdict).unwrap();
    });
    assert!(!ok);
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    assert!(
        stderr.contains("x.bin") && stderr.contains("127.0.0.1"),
        "names the file and the peer: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(verdict.starts_with("ERR "), "{verdict}");
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_peer_closing_early_writes_nothing() {
    let (ok, stderr, names) = recv_once_against(|mut c| {
        c.write_all(&frame_header("half.bin", 1 << 20)).unwrap();
        c.write_all(&pattern(5000)).unwrap();
    });
    assert!(!ok);
    assert!(
        stderr.contains("the peer closed after 5000 of 1048576 bytes"),
        "{stderr}"
    );
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn hostile_names_are_refused() {
    for name in ["../escape", "a/b", ".."] {
        let (ok, stderr, names) = recv_once_against(|mut c| {
            c.write_all(&frame_header(name, 1)).unwrap();
            c.write_all(b"x").unwrap();
        });
        assert!(!ok);
        assert!(stderr.contains("refused file name"), "{stderr}");
        assert!(names.is_empty());
    }
    let (ok, stderr, _) =
        recv_once_against(|mut c| c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap());
    assert!(!ok);
    assert!(stderr.contains("bad magic"), "{stderr}");
}

#[test]
fn sender_errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let port = common::free_port();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![missing.display().to_string(), format!("127.0.0.1:{port}")],
            format!("cannot open {}: No such file", missing.display()),
        ),
        (
            vec![
                dir.path().display().to_string(),
                format!("127.0.0.1:{port}"),
            ],
            "is a directory".into(),
        ),
    ];
    for (args, want) in cases {
        let o = zcopy().arg("send").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&want), "{stderr}");
        assert_eq!(stderr.lines().count(), 1);
    }
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    Command::new(env!("CARGO_BIN_EXE_zcopy"))
        .args(["send", file.to_str().unwrap(), &format!("127.0.0.1:{port}")])
        .assert()
        .code(7) // curl's code for a refused connection
        .stderr(format!(
            "zcopy: cannot connect to 127.0.0.1:{port}: Connection refused (os error 111)\n"
        ));
}

#[test]
fn permission_denied_names_the_file() {
    if rustix::process::geteuid().is_root() {
        eprintln!(
            "SKIP permission_denied_names_the_file: root reads every file; run as a user to test"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, b"x").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let o = zcopy()
        .args(["send", file.to_str().unwrap(), "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
}

#[test]
fn usage_errors_exit_2_and_address_in_use_exits_1() {
    Command::new(env!("CARGO_BIN_EXE_zcopy"))
        .args(["send"])
        .assert()
        .code(2);
    Command::new(env!("CARGO_BIN_EXE_zcopy"))
        .args(["send", "f", "h:1", "--buffer", "12q"])
        .assert()
        .code(2);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    Command::new(env!("CARGO_BIN_EXE_zcopy"))
        .args(["recv", "--listen", &addr])
        .assert()
        .code(1)
        .stderr(format!(
            "zcopy: cannot listen on {addr}: Address already in use (os error 98)\n"
        ));
    Command::new(env!("CARGO_BIN_EXE_zcopy"))
        .args(["recv", "--listen", "127.0.0.1:0", "-o", "/nonexistent/dir/file"])
        .assert()
        .code(1)
        .stderr("zcopy: cannot write /nonexistent/dir/file: directory /nonexistent/dir does not exist\n");
}

/// A receiver that resets the connection mid-transfer: the sender reports it and
/// exits with curl's code (not killed by SIGPIPE), for every engine.
#[test]
fn sender_survives_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, pattern(32 << 20)).unwrap();
    for engine in ["read-write", "mmap", "sendfile", "splice"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let child = zcopy()
            .args(["send", src.to_str().unwrap(), &addr, "--engine", engine])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 100_000];
        c.read_exact(&mut buf).unwrap();
        rustix::net::sockopt::set_socket_linger(&c, Some(std::time::Duration::ZERO)).unwrap();
        drop(c);
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        // curl's codes: 56 for a reset seen receiving, 55 for a broken pipe sending.
        assert!(
            [Some(55), Some(56)].contains(&o.status.code()),
            "{engine}: {stderr}"
        );
        assert!(
            stderr.contains(&addr) && stderr.contains("big.bin"),
            "{stderr}"
        );
        assert!(
            stderr.contains("Connection reset by peer") || stderr.contains("Broken pipe"),
            "{engine}: {stderr}"
        );
    }
}

#[test]
fn a_file_that_shrinks_while_sent_is_refused_by_the_receiver() {
    // The sender promises the size it saw; the receiver gets fewer bytes or a wrong
    // digest and writes nothing. Simulated by a sender that lies about the size.
    let (ok, stderr, names) = recv_once_against(|mut c| {
        c.write_all(&frame_header("shrunk.bin", 10)).unwrap();
        c.write_all(b"12345").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
    });
    assert!(!ok);
    assert!(stderr.contains("closed after 5 of 10"), "{stderr}");
    assert!(names.is_empty());
}

#[test]
fn raw_into_a_device_writes_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.bin");
    std::fs::write(&src, pattern(300_000)).unwrap();
    let mut server = Server::start(&[
        "recv",
        "--raw",
        "--once",
        "--listen",
        "127.0.0.1:0",
        "-o",
        "/dev/null",
    ]);
    assert!(send(&src, &server.addr, &["--raw"]).status.success());
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device(),
        "/dev/null was replaced"
    );
    let framed = zcopy()
        .args(["recv", "--listen", "127.0.0.1:0", "-o", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(framed.status.code(), Some(1));
}
