//! `zcopy send` and `zcopy recv` against each other, against hostile and broken
//! peers, and the errors a user meets.

mod common;
mod wire;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use assert_cmd::Command;
use common::{names_in, pattern, zcopy, Server, Tmpfs};

fn send(file: &std::path::Path, addr: &str, extra: &[&str]) -> std::process::Output {
    zcopy()
        .arg("send")
        .arg(file)
        .arg(addr)
        .args(extra)
        .output()
        .unwrap()
}

/// A framed msg-zerocopy send reports its sends and completions in `--json`, as
/// `--raw` does: the session adds every run's counts up.
#[test]
fn framed_msg_zerocopy_reports_its_completions() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(8 << 20);
    let src = dir.path().join("z.bin");
    std::fs::write(&src, &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let o = send(&src, &server.addr, &["--engine", "msg-zerocopy", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["engine"], "msg-zerocopy");
    let sends = json["zerocopy"]["sends"].as_u64().unwrap_or(0);
    assert!(sends > 0, "no zero-copy sends counted: {json}");
    assert_eq!(
        json["zerocopy"]["completions"].as_u64(),
        Some(sends),
        "{json}"
    );
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert!(std::fs::read(out.path().join("z.bin")).unwrap() == data);
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
                // Every pair moves the whole file again: not the quick check's
                // nothing (--ignore-times), not a delta against the last (-W).
                &[
                    "--engine",
                    send_engine,
                    "--json",
                    "--buffer",
                    "1KiB",
                    "--ignore-times",
                    "-W",
                ],
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
    let mut server = Server::recv_once(out.path(), &[]);
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
fn output_with_a_slash_is_a_directory_made_if_missing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, b"hello").unwrap();
    let target = format!("{}/new/", dir.path().display());
    let mut server = Server::start(&["recv", "--listen", ":0", "-o", &target, "--once"]);
    assert!(send(&src, &server.addr, &[]).status.success());
    assert!(server.wait().0.success());
    assert_eq!(
        std::fs::read(dir.path().join("new/a.txt")).unwrap(),
        b"hello"
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
        let mut c = TcpStream::connect(&server.addr).unwrap();
        let mut head = wire::greeting(0);
        head.extend(wire::file(1, &format!("f{i}"), data.len() as u64));
        c.write_all(&head).unwrap();
        conns.push((c, data));
    }
    for (c, data) in &mut conns {
        wire::read_greeting(c).unwrap();
        let mut rest = wire::data(1, 0, data, None);
        rest.extend(wire::end(1, data.len() as u64, &[data]));
        rest.extend(wire::done());
        c.write_all(&rest).unwrap();
    }
    for (c, _) in &mut conns {
        assert_eq!(wire::verdict(c), None);
    }
    for i in 0..256 {
        assert!(std::fs::read(out.path().join(format!("f{i}"))).unwrap() == pattern(1000 + i));
    }
    assert_eq!(names_in(out.path()).len(), 256);
}

/// Starts `recv --once` into a fresh directory, lets `peer` talk to it, and returns
/// the exit status, stderr and what the directory holds afterwards. The socket
/// stays open until the receiver exits: a peer closed before the receiver looks
/// has no owner it could admit (`zcopy_wire::peer_owner`).
fn recv_once_against(peer: impl FnOnce(TcpStream)) -> (bool, String, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let stream = TcpStream::connect(&server.addr).unwrap();
    peer(stream.try_clone().unwrap());
    let (status, _, stderr) = server.wait();
    drop(stream);
    (status.success(), stderr, names_in(out.path()))
}

#[test]
fn digest_mismatch_writes_nothing() {
    let mut verdict = None;
    let (ok, stderr, names) = recv_once_against(|mut c| {
        let mut s = wire::greeting(0);
        s.extend(wire::file(1, "x.bin", 4));
        s.extend(wire::data(1, 0, b"abcd", Some(0)));
        c.write_all(&s).unwrap();
        wire::read_greeting(&mut c).unwrap();
        verdict = wire::verdict(&mut c);
    });
    assert!(!ok);
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    assert!(
        stderr.contains("x.bin") && stderr.contains("127.0.0.1"),
        "names the file and the peer: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(verdict.unwrap().contains("digest mismatch"));
    assert!(names.is_empty(), "{names:?}");
    // The whole-file digest is checked too, not only each block's.
    let (ok, stderr, names) = recv_once_against(|mut c| {
        let mut s = wire::greeting(0);
        s.extend(wire::file(1, "y.bin", 4));
        s.extend(wire::data(1, 0, b"abcd", None));
        s.extend(wire::end(1, 4, &[b"abce"]));
        c.write_all(&s).unwrap();
        wire::read_greeting(&mut c).unwrap();
        wire::verdict(&mut c);
    });
    assert!(
        !ok && stderr.contains("y.bin: not written: digest mismatch"),
        "{stderr}"
    );
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_peer_closing_early_writes_nothing() {
    let (ok, stderr, names) = recv_once_against(|mut c| {
        let mut s = wire::greeting(0);
        s.extend(wire::file(1, "half.bin", 1 << 20));
        let mut d = wire::data(1, 0, &pattern(1 << 20), None);
        d.truncate(d.len() - 16 - ((1 << 20) - 5000));
        s.extend(d);
        c.write_all(&s).unwrap();
        wire::read_greeting(&mut c).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
    });
    assert!(!ok);
    assert!(
        stderr.contains("half.bin: receiving the block at 0 from 127.0.0.1")
            && stderr.contains("the peer closed after 5000 of 1048576 bytes"),
        "{stderr}"
    );
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn hostile_names_are_refused() {
    for name in ["../escape", "a/../../b", "..", "/etc/passwd", "a//b", "./x"] {
        let (ok, stderr, names) = recv_once_against(|mut c| {
            let mut s = wire::greeting(0);
            s.extend(wire::file(1, name, 1));
            s.extend(wire::data(1, 0, b"x", None));
            wire::write_lossy(&mut c, &s);
        });
        assert!(!ok);
        assert!(stderr.contains("refused file name"), "{name}: {stderr}");
        assert!(names.is_empty());
    }
    // A symlink the sender made, then a file "through" it: never followed out.
    let outside = tempfile::tempdir().unwrap();
    let (ok, stderr, names) = recv_once_against(|mut c| {
        let mut s = wire::greeting(0);
        s.extend(wire::entry(
            1,
            2,
            "link",
            None,
            outside.path().to_str().unwrap(),
        ));
        s.extend(wire::file(2, "link/planted", 1));
        s.extend(wire::data(2, 0, b"x", None));
        s.extend(wire::end(2, 1, &[b"x"]));
        s.extend(wire::done());
        wire::write_lossy(&mut c, &s);
    });
    assert!(!ok);
    assert!(
        stderr.contains("leads outside the output directory"),
        "{stderr}"
    );
    assert_eq!(names, ["link"]);
    assert!(names_in(outside.path()).is_empty(), "wrote outside -o");
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
            vec!["-".into(), format!("127.0.0.1:{port}")],
            "-: standard input needs --name NAME".into(),
        ),
        (
            vec![
                "--raw".into(),
                dir.path().display().to_string(),
                format!("127.0.0.1:{port}"),
            ],
            "is a directory (send it without --raw)".into(),
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
        .code(7)
        .stderr(format!(
            "zcopy: cannot connect to 127.0.0.1:{port}: Connection refused\n"
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
            "zcopy: cannot listen on {addr}: Address already in use\n"
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
        let mut hello = [0u8; 17];
        c.read_exact(&mut hello).unwrap();
        c.write_all(&hello).unwrap();
        // A large file asks what the receiver holds: nothing.
        let (kind, body) = wire::read_msg(&mut c).unwrap();
        assert_eq!(kind, b'F');
        let mut have = body[..4].to_vec();
        have.push(0);
        c.write_all(&wire::msg(b'H', &have)).unwrap();
        let mut buf = vec![0u8; 100_000];
        c.read_exact(&mut buf).unwrap();
        rustix::net::sockopt::set_socket_linger(&c, Some(std::time::Duration::ZERO)).unwrap();
        drop(c);
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(55 | 56)),
            "{engine}: curl's send/receive failure codes: {stderr}"
        );
        assert!(
            !stderr.contains("Broken pipe (os error 32): Broken pipe"),
            "{stderr}"
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
    // The sender promises the size it saw; the receiver gets fewer bytes and
    // writes nothing. Simulated by a sender that lies about the size.
    let (ok, stderr, names) = recv_once_against(|mut c| {
        let mut s = wire::greeting(0);
        s.extend(wire::file(1, "shrunk.bin", 10));
        let mut d = wire::data(1, 0, b"1234567890", None);
        d.truncate(d.len() - 16 - 5);
        s.extend(d);
        c.write_all(&s).unwrap();
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

fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn mtime_of(p: &std::path::Path) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// Sets a path's mtime (not following a symlink) to a fixed, odd value.
fn set_mtime(p: &std::path::Path, secs: i64) {
    use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 123_456_789,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// A tree as `send DIR` must reproduce it: nested and empty directories, modes,
/// mtimes, symlinks (also dangling), small, empty and multi-block files.
#[test]
fn a_tree_arrives_whole() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("tree");
    for d in ["a/b/c", "empty", "a/x"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("top.txt"), b"top").unwrap();
    std::fs::write(root.join("a/empty-file"), b"").unwrap();
    std::fs::write(root.join("a/b/c/deep.bin"), pattern(70_000)).unwrap();
    std::fs::write(root.join("a/x/big.bin"), pattern((9 << 20) + 3)).unwrap();
    std::os::unix::fs::symlink("../top.txt", root.join("a/to-top")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    std::fs::set_permissions(root.join("top.txt"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::set_permissions(
        root.join("a/b/c/deep.bin"),
        PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(root.join("a/b"), PermissionsExt::from_mode(0o750)).unwrap();
    let all = [
        "",
        "top.txt",
        "a",
        "a/empty-file",
        "a/b",
        "a/b/c",
        "a/b/c/deep.bin",
        "a/x",
        "a/x/big.bin",
        "a/to-top",
        "dangling",
        "empty",
    ];
    for (i, p) in all.iter().enumerate() {
        set_mtime(&root.join(p), 1_000_000_000 + i as i64);
    }
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let extra = src.path().join("extra.txt");
    std::fs::write(&extra, b"second operand").unwrap();
    let o = zcopy()
        .args([
            "send",
            root.to_str().unwrap(),
            extra.to_str().unwrap(),
            &server.addr,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["files"], 7);
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    let got = out.path().join("tree");
    for p in all {
        let (a, b) = (root.join(p), got.join(p));
        let ma = std::fs::symlink_metadata(&a).unwrap();
        let mb = std::fs::symlink_metadata(&b).unwrap_or_else(|_| panic!("{p} missing"));
        assert_eq!(ma.file_type(), mb.file_type(), "{p}");
        assert_eq!(mtime_of(&a), mtime_of(&b), "mtime of {p}");
        if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&a).unwrap(),
                std::fs::read_link(&b).unwrap()
            );
        } else {
            assert_eq!(mode_of(&a), mode_of(&b), "mode of {p}");
        }
        if ma.is_file() {
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{p}"
            );
        }
    }
    assert_eq!(
        std::fs::read(out.path().join("extra.txt")).unwrap(),
        b"second operand"
    );
    assert_eq!(
        names_in(&got.join("a/x")),
        ["big.bin"],
        "no part or manifest left"
    );
}

/// Sources whose size is wrong or unknown are read to their end, never sent as
/// 0 bytes with exit 0: /proc, /sys, standard input, a FIFO.
#[test]
fn sources_that_lie_about_their_size_arrive_whole() {
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let o = zcopy()
        .args(["send", "/proc/self/status", "/proc/version", &server.addr])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(server.wait().0.success());
    let version = std::fs::read(out.path().join("version")).unwrap();
    assert!(!version.is_empty());
    assert_eq!(version, std::fs::read("/proc/version").unwrap());
    assert!(std::fs::read(out.path().join("status"))
        .unwrap()
        .starts_with(b"Name:"));

    let server = Server::recv_once(out.path(), &[]);
    let mut child = zcopy()
        .args(["send", "-", "--name", "sub/../stdin.bin", &server.addr])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "a hostile --name is refused at home"
    );
    drop(server);

    let data = pattern((5 << 20) + 77);
    let mut server = Server::recv_once(out.path(), &[]);
    let mut child = zcopy()
        .args(["send", "-", "--name", "stdin.bin", &server.addr])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&feed).unwrap());
    assert!(child.wait().unwrap().success());
    writer.join().unwrap();
    assert!(server.wait().0.success());
    assert!(std::fs::read(out.path().join("stdin.bin")).unwrap() == data);

    // --raw too: the bytes alone, read to the end.
    let target = out.path().join("raw-version");
    let mut server = Server::recv_once(&target, &["--raw"]);
    let o = zcopy()
        .args(["send", "--raw", "/proc/version", &server.addr])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(server.wait().0.success());
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read("/proc/version").unwrap()
    );
    // The mode a new file gets from `nc -l > file`: that of any file made here.
    let here = tempfile::tempdir().unwrap();
    let plain = here.path().join("made-here");
    std::fs::write(&plain, b"").unwrap();
    assert_eq!(mode_of(&target), mode_of(&plain));

    if std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
        let mut server = Server::recv_once(out.path(), &[]);
        let o = zcopy()
            .args([
                "send",
                "/sys/kernel/mm/transparent_hugepage/enabled",
                &server.addr,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(server.wait().0.success());
        assert_eq!(
            std::fs::read(out.path().join("enabled")).unwrap(),
            std::fs::read("/sys/kernel/mm/transparent_hugepage/enabled").unwrap()
        );
    }
}

/// The receiver's reason reaches the sender, once, on one line.
#[test]
fn the_receivers_reason_travels_to_the_sender() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a"), b"a").unwrap();
    std::fs::write(src.path().join("b"), b"b").unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("one-file");
    let mut server = Server::recv_once(&target, &[]);
    let o = zcopy()
        .arg("send")
        .arg(src.path().join("a"))
        .arg(src.path().join("b"))
        .arg(&server.addr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("-o names one file"), "{stderr}");
    assert!(stderr.contains(&server.addr), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!server.wait().0.success());

    let ro = tempfile::tempdir().unwrap();
    let test = "the_receivers_reason_travels_to_the_sender (read-only, disk full)";
    let Some(ro_mount) = Tmpfs::mount(ro.path(), "ro,size=1M", test) else {
        return;
    };
    let mut server = Server::recv_once(ro.path(), &[]);
    let o = zcopy()
        .arg("send")
        .arg(src.path())
        .arg(&server.addr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!server.wait().0.success());
    drop(ro_mount);

    // Disk full: both sides say so; only the resumable partial stays.
    let small = tempfile::tempdir().unwrap();
    let Some(_small_mount) = Tmpfs::mount(small.path(), "size=6M", test) else {
        return;
    };
    let big = src.path().join("big.bin");
    std::fs::write(&big, pattern(12 << 20)).unwrap();
    let mut server = Server::recv_once(small.path(), &[]);
    let o = zcopy()
        .arg("send")
        .arg(&big)
        .arg(&server.addr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let (status, _, rstderr) = server.wait();
    assert!(!status.success());
    assert!(rstderr.contains("No space left on device"), "{rstderr}");
    assert!(rstderr.contains("send it again to resume"), "{rstderr}");
    assert_eq!(
        names_in(small.path()),
        [".big.bin.zcopy-manifest", ".big.bin.zcopy-part"]
    );
}

/// A framed sender against a raw receiver, and the reverse: the side that can see
/// it says so, with a hint, and nothing is written.
#[test]
fn framed_and_raw_mismatches_are_explained() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    std::fs::write(&file, pattern(100_000)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("raw.bin");
    let mut server = Server::recv_once(&target, &["--raw"]);
    let o = send(&file, &server.addr, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("add --raw to send"), "{stderr}");
    let (status, _, rstderr) = server.wait();
    assert!(!status.success());
    assert!(
        rstderr.contains("a framed zcopy sender connected"),
        "{rstderr}"
    );
    assert!(names_in(out.path()).is_empty());

    let mut server = Server::recv_once(out.path(), &[]);
    let o = send(&file, &server.addr, &["--raw"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("drop --raw"), "{stderr}");
    let (status, _, rstderr) = server.wait();
    assert!(!status.success());
    assert!(rstderr.contains("bad magic"), "{rstderr}");
    assert!(names_in(out.path()).is_empty());
}

/// Nothing hangs: a peer that never answers the greeting, a peer that answers and
/// then never reads, a receiver whose sender goes silent.
#[test]
fn timeouts_end_stalled_transfers() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    std::fs::write(&file, pattern(64 << 20)).unwrap();

    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = mute.local_addr().unwrap().to_string();
    let o = send(&file, &addr, &["--timeout", "1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(28), "curl's timeout code: {stderr}");
    assert!(
        stderr.contains("no answer to the zcopy greeting"),
        "{stderr}"
    );

    let deaf = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = deaf.local_addr().unwrap().to_string();
    let (done, held) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (mut c, _) = deaf.accept().unwrap();
        let mut hello = [0u8; 17];
        c.read_exact(&mut hello).unwrap();
        c.write_all(&hello).unwrap();
        let (_, body) = wire::read_msg(&mut c).unwrap();
        let mut have = body[..4].to_vec();
        have.push(0);
        c.write_all(&wire::msg(b'H', &have)).unwrap();
        // Holds the connection open, unread, until the sender has given up.
        let _ = held.recv_timeout(std::time::Duration::from_secs(60));
    });
    let o = send(&file, &addr, &["--timeout", "1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(28), "{stderr}");
    assert!(
        stderr.contains("timed out: the receiver took nothing"),
        "{stderr}"
    );
    done.send(()).unwrap();
    holder.join().unwrap();

    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &["--timeout", "1"]);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    let mut s = wire::greeting(0);
    s.extend(wire::file(1, "slow.bin", 10));
    c.write_all(&s).unwrap();
    let (status, _, stderr) = server.wait();
    assert_eq!(status.code(), Some(28), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(names_in(out.path()).is_empty());
}

/// `--raw` to a peer that accepts and never reads: the watchdog ends it with
/// curl's timeout code, whichever engine sends, instead of each partial send
/// restarting the socket's own timeout.
#[test]
fn raw_send_to_a_peer_that_never_reads_times_out() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    // More than the socket buffers on both sides hold, so the sender stalls.
    std::fs::write(&file, pattern(64 << 20)).unwrap();
    let deaf = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = deaf.local_addr().unwrap().to_string();
    let (done, held) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut kept = Vec::new();
        // Holds every connection open, unread, until the senders have given up.
        deaf.set_nonblocking(true).unwrap();
        while held.try_recv().is_err() {
            match deaf.accept() {
                Ok((c, _)) => kept.push(c),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    for engine in ["auto", "read-write", "mmap", "sendfile", "splice"] {
        let o = send(
            &file,
            &addr,
            &["--raw", "--timeout", "1", "--engine", engine],
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(28), "{engine}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{engine}: {stderr}");
        assert!(stderr.contains(&addr), "{engine}: {stderr}");
        assert!(
            stderr.contains("timed out: no byte moved for 1 s (--timeout)"),
            "{engine}: {stderr}"
        );
    }
    done.send(()).unwrap();
    holder.join().unwrap();
}

/// `send --raw --json` of `file` into a drain on 127.0.0.1, with `cache` as
/// XDG_CACHE_HOME: the JSON and stderr.
fn raw_send_json(
    file: &std::path::Path,
    cache: &std::path::Path,
    flag: &str,
) -> (serde_json::Value, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let drain = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        std::io::copy(&mut stream, &mut std::io::sink()).unwrap()
    });
    let o = zcopy()
        .args(["send", "--raw", flag])
        .arg(file)
        .arg(&addr)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert_eq!(
        drain.join().unwrap(),
        std::fs::metadata(file).unwrap().len()
    );
    let json = if flag == "--json" {
        serde_json::from_slice(&o.stdout).unwrap()
    } else {
        serde_json::Value::Null
    };
    (json, err)
}

#[test]
fn auto_names_the_engine_it_chose_for_the_destination_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, pattern(3 << 20)).unwrap();

    // No profile: the chain's default, said to be one.
    let (json, _) = raw_send_json(&file, &dir.path().join("none"), "--json");
    assert_eq!(json["engine"], "sendfile", "{json}");
    let why = json["engine_reason"].as_str().unwrap();
    assert!(
        why.starts_with("auto: sendfile first into a TCP peer on this host: the default"),
        "{why}"
    );

    // A profile in which read-write wins into a copying reader on this host.
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(cache.join("zcopy")).unwrap();
    let profile = serde_json::json!({
        "version": 1,
        "calibrated": "2026-12-02",
        "send_large": [{ "destination": "local-tcp", "reader": "copy", "size": 67108864,
            "mib_s": { "sendfile": 1500.0, "splice": 1500.0, "read-write": 1875.0 } }],
    });
    std::fs::write(cache.join("zcopy/calibration.json"), profile.to_string()).unwrap();
    let (json, _) = raw_send_json(&file, &cache, "--json");
    assert_eq!(json["engine"], "read-write", "{json}");
    assert_eq!(
        json["engine_reason"],
        "auto: read-write first into a TCP peer on this host: 1.25x sendfile into a copying \
         reader in this machine's calibration of 2026-12-02"
    );
    let (_, err) = raw_send_json(&file, &cache, "-v");
    assert!(err.contains("with read-write"), "{err}");
    assert!(
        err.contains("  auto: read-write first into a TCP peer on this host: 1.25x"),
        "{err}"
    );
}
