//! `--raw` and `echo` against real peers: netcat and the seed's own Java programs
//! (compiled here with javac). A test whose peer is not installed skips with a
//! printed reason; `.ci/run` installs them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{free_port, have, pattern, zcopy, Server};

/// The seed's programs, compiled once into a directory for `java -cp`.
fn java_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("zcopy-java-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zcopy-bench/java");
        let status = Command::new("javac")
            .arg("-d")
            .arg(&dir)
            .args(["Server.java", "Client.java", "ClientChannel.java"].map(|f| src.join(f)))
            .status()
            .unwrap();
        assert!(status.success(), "javac failed");
        dir
    })
}

fn java(class: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp").arg(java_classes()).arg(class).args(args);
    cmd
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

#[test]
fn seed_clients_into_recv_raw() {
    if !have("javac", "seed_clients_into_recv_raw") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = pattern((2 << 20) + 321);
    let src = dir.path().join("a.txt");
    std::fs::write(&src, &data).unwrap();
    for (class, engine) in [
        ("Client", "splice"),
        ("ClientChannel", "read-write"),
        ("Client", "auto"),
    ] {
        let out = dir.path().join(format!("{class}-{engine}.out"));
        // The seed's clients close the moment the last byte is written, often
        // before the receiver can read who owns their socket: --insecure lets in
        // any local user (tests/local_users.rs shows the default refusing).
        let mut server = Server::start(&[
            "recv",
            "--raw",
            "--insecure",
            "--once",
            "--listen",
            "127.0.0.1:0",
            "-o",
            out.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        let status = java(
            class,
            &["127.0.0.1", port_of(&server.addr), src.to_str().unwrap()],
        )
        .status()
        .unwrap();
        assert!(status.success());
        let (status, _, stderr) = server.wait();
        assert!(status.success(), "{stderr}");
        assert!(
            std::fs::read(&out).unwrap() == data,
            "{class} -> recv --raw --engine {engine}"
        );
    }
}

#[test]
fn send_raw_into_the_seed_server() {
    if !have("javac", "send_raw_into_the_seed_server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Text without newlines: the seed's Server prints each 1 KiB read with println,
    // so its stdout minus newlines and its greeting is exactly what it received.
    let text: String = (0..20_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, &text).unwrap();
    let mut server = java("Server", &["0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    for engine in ["read-write", "sendfile"] {
        let o = zcopy()
            .args([
                "send",
                "--raw",
                src.to_str().unwrap(),
                &format!("127.0.0.1:{port}"),
                "--engine",
                engine,
                "--buffer",
                "1KiB",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut greeting = String::new();
        lines.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("get a conn"), "{greeting}");
        let mut got = String::new();
        while got.len() < text.len() {
            let mut line = String::new();
            assert!(
                lines.read_line(&mut line).unwrap() > 0,
                "the Server stopped printing"
            );
            got.push_str(line.trim_end_matches('\n'));
        }
        assert_eq!(got, text, "{engine}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn seed_client_against_echo() {
    if !have("javac", "seed_client_against_echo") {
        return;
    }
    // The seed's Client never reads the echo; the file stays small enough for the
    // socket buffers, and echo must survive the client closing on unread data.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, pattern(50_000)).unwrap();
    let server = Server::start(&[
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--engine",
        "read-write",
        "--buffer",
        "1KiB",
    ]);
    for _ in 0..3 {
        let status = java(
            "Client",
            &["127.0.0.1", port_of(&server.addr), src.to_str().unwrap()],
        )
        .status()
        .unwrap();
        assert!(status.success());
    }
    let data = pattern(100_000);
    assert!(
        echo_round_trip(&server.addr, &data) == data,
        "echo still serves after the seed's clients left"
    );
}

fn echo_round_trip(addr: &str, data: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    let mut reader = c.try_clone().unwrap();
    let got = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    c.write_all(data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    got.join().unwrap()
}

#[test]
fn echo_engines_round_trip() {
    let data = pattern((4 << 20) + 1);
    for engine in ["read-write", "splice", "auto"] {
        let server = Server::start(&["echo", "--listen", "127.0.0.1:0", "--engine", engine]);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let addr = server.addr.clone();
                let data = data.clone();
                std::thread::spawn(move || echo_round_trip(&addr, &data))
            })
            .collect();
        for c in clients {
            assert!(c.join().unwrap() == data, "{engine}");
        }
    }
    zcopy()
        .args(["echo", "--listen", "127.0.0.1:0", "--engine", "sendfile"])
        .output()
        .map(|o| {
            assert_eq!(o.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&o.stderr).contains("needs a file as source"));
        })
        .unwrap();
}

#[test]
fn nc_against_echo() {
    if !have("nc", "nc_against_echo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1 << 20);
    let src = dir.path().join("in");
    std::fs::write(&src, &data).unwrap();
    let server = Server::start(&["echo", "--listen", "127.0.0.1:0"]);
    let o = Command::new("nc")
        .args(["-N", "127.0.0.1", port_of(&server.addr)])
        .stdin(std::fs::File::open(&src).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(o.stdout == data);
}

#[test]
fn nc_into_recv_raw_and_send_raw_into_nc() {
    if !have("nc", "nc_into_recv_raw_and_send_raw_into_nc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = pattern((5 << 20) + 7);
    let src = dir.path().join("in");
    std::fs::write(&src, &data).unwrap();

    // nc → zcopy recv --raw (to a file, then to stdout).
    let out = dir.path().join("from-nc");
    let mut server = Server::recv_once(&out, &["--raw"]);
    let status = Command::new("nc")
        .args(["-N", "127.0.0.1", port_of(&server.addr)])
        .stdin(std::fs::File::open(&src).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.wait().0.success());
    assert!(std::fs::read(&out).unwrap() == data);

    let mut server = Server::start(&["recv", "--raw", "--once", "--listen", "127.0.0.1:0"]);
    let nc = Command::new("nc")
        .args(["-N", "127.0.0.1", port_of(&server.addr)])
        .stdin(std::fs::File::open(&src).unwrap())
        .spawn()
        .unwrap();
    let (status, stdout, _) = server.wait();
    assert!(nc.wait_with_output().unwrap().status.success());
    assert!(status.success());
    assert!(stdout == data, "stdout carries the bytes");

    // zcopy send --raw → nc -l, for each engine.
    for engine in ["read-write", "mmap", "sendfile", "splice"] {
        let port = free_port().to_string();
        let nc = Command::new("nc")
            .args(["-l", "127.0.0.1", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let received = std::thread::spawn(move || nc.wait_with_output().unwrap());
        let mut sent = false;
        for _ in 0..100 {
            let o = zcopy()
                .args([
                    "send",
                    "--raw",
                    src.to_str().unwrap(),
                    &format!("127.0.0.1:{port}"),
                    "--engine",
                    engine,
                ])
                .output()
                .unwrap();
            if o.status.success() {
                sent = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50)); // nc not listening yet
        }
        assert!(sent, "{engine}: nc never accepted");
        let o = received.join().unwrap();
        assert!(
            o.stdout == data,
            "{engine}: nc received {} bytes",
            o.stdout.len()
        );
    }
}

#[test]
fn recv_raw_refuses_a_reset_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let mut server = Server::recv_once(&out, &["--raw"]);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    c.write_all(&pattern(100_000)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    rustix::net::sockopt::set_socket_linger(&c, Some(Duration::ZERO)).unwrap();
    drop(c);
    let (status, _, stderr) = server.wait();
    assert_eq!(
        status.code(),
        Some(56),
        "curl's code for a failure receiving"
    );
    assert!(stderr.contains("Connection reset by peer"), "{stderr}");
    assert_eq!(common::names_in(dir.path()), Vec::<String>::new());
}
