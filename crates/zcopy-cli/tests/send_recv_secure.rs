//! Authenticated, encrypted send/recv against the attacks of issue 16: senders
//! without the secret or with a wrong one, a replayed session, a man in the middle
//! with its own certificate, and an eavesdropper recording every byte.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{names_in, pattern, zcopy, Server};

/// What recv printed for the sender: the secret and the fingerprint.
struct Ticket {
    secret: String,
    fingerprint: String,
}

/// Starts a receiver and reads the line it prints for the sender.
/// `recv --once --json` on loopback with `--secret-file SECRET`, into `out`, then
/// `extra`.
fn loopback_receiver(out: &std::path::Path, secret: &str, extra: &[&str]) -> (Server, Ticket) {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "recv",
        "--once",
        "--json",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        secret,
        "-o",
        out,
    ];
    args.extend_from_slice(extra);
    receiver(&args)
}

fn receiver(args: &[&str]) -> (Server, Ticket) {
    let server = Server::start(args);
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        if let Some(line) = server.stderr().lines().find(|l| l.contains("to send here")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no line for the sender");
        std::thread::sleep(Duration::from_millis(20));
    };
    let word = |prefix: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(prefix))
            .map(str::to_string)
    };
    let fingerprint = line
        .split_whitespace()
        .skip_while(|w| *w != "--fingerprint")
        .nth(1)
        .expect("a fingerprint")
        .to_string();
    let secret = word("ZCOPY_SECRET=").unwrap_or_default();
    (
        server,
        Ticket {
            secret,
            fingerprint,
        },
    )
}

fn send(paths: &[&Path], addr: &str, env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
    let mut cmd = zcopy();
    cmd.arg("send").args(paths).arg(addr).args(extra);
    cmd.env_remove("ZCOPY_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A relay the test puts between send and recv: forwards both ways and records
/// every byte; `client_bytes` keeps what each connection's client sent, for replay.
struct Relay {
    addr: String,
    wire: Arc<Mutex<Vec<u8>>>,
    client_bytes: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let wire = Arc::new(Mutex::new(Vec::new()));
        let client_bytes = Arc::new(Mutex::new(Vec::new()));
        let (w, c, up) = (wire.clone(), client_bytes.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { break };
                let server = TcpStream::connect(&up).unwrap();
                let slot = {
                    let mut all = c.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                let (w1, w2, c1) = (w.clone(), w.clone(), c.clone());
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    forward(client, server, &w1, |b| {
                        c1.lock().unwrap()[slot].extend_from_slice(b)
                    })
                });
                std::thread::spawn(move || forward(server2, client2, &w2, |_| {}));
            }
        });
        Relay {
            addr,
            wire,
            client_bytes,
        }
    }
}

fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    wire: &Mutex<Vec<u8>>,
    mut keep: impl FnMut(&[u8]),
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                wire.lock().unwrap().extend_from_slice(&buf[..n]);
                keep(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn secret_file(dir: &Path, secret: &str) -> String {
    let path = dir.join("secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn off_loopback_recv_makes_a_secret_and_the_pasted_line_sends() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.bin");
    std::fs::write(&src, pattern(3 << 20)).unwrap();
    // 0.0.0.0 is not loopback: the receiver must make a secret.
    let (mut server, ticket) = receiver(&[
        "recv",
        "--once",
        "--listen",
        "0.0.0.0:0",
        "-o",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(ticket.secret.len(), 32, "{}", server.stderr());
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    let o = send(
        &[&src],
        &addr,
        &[("ZCOPY_SECRET", &ticket.secret)],
        &["--fingerprint", &ticket.fingerprint, "--json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json = String::from_utf8_lossy(&o.stdout);
    assert!(json.contains("\"encrypted\":true"), "{json}");
    let (status, _, _) = server.wait();
    assert!(status.success());
    assert_eq!(
        std::fs::read(out.path().join("a.bin")).unwrap(),
        pattern(3 << 20)
    );
}

#[test]
fn no_secret_and_wrong_secret_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.bin");
    std::fs::write(&src, pattern(1 << 20)).unwrap();
    let secret = secret_file(dir.path(), "correct horse battery staple");
    let (server, ticket) = receiver(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        &secret,
        "-o",
        out.path().to_str().unwrap(),
    ]);
    // No secret: a plain greeting where a TLS handshake should be.
    let o = send(&[&src], &server.addr, &[], &[]);
    assert_eq!(
        o.status.code(),
        Some(67),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("requires a secret"));
    // A wrong secret with the right fingerprint.
    let o = send(
        &[&src],
        &server.addr,
        &[("ZCOPY_SECRET", "Tr0ub4dor&3")],
        &["--fingerprint", &ticket.fingerprint],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(67), "{err}");
    assert!(err.contains("refused the secret"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(names_in(out.path()).is_empty());
    server.await_lines("without the secret", 1);
    server.await_lines("wrong secret", 1);
    // A secret without the fingerprint is a usage error.
    let o = send(&[&src], &server.addr, &[("ZCOPY_SECRET", "x")], &[]);
    assert_eq!(o.status.code(), Some(2));
    // The right one still works afterwards, with -j 4 joining the session.
    let o = send(
        &[&src],
        &server.addr,
        &[],
        &[
            "--secret-file",
            &secret,
            "--fingerprint",
            &ticket.fingerprint,
            "-j",
            "4",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out.path().join("a.bin")).unwrap(),
        pattern(1 << 20)
    );
}

#[test]
fn a_recording_relay_sees_neither_names_nor_bytes_and_a_replay_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let name = "MARKER-NAME-7f3a9c";
    let mut content = Vec::with_capacity(1 << 20);
    while content.len() < 1 << 20 {
        content.extend_from_slice(b"MARKER-CONTENT-e81d ");
    }
    content.truncate(1 << 20);
    std::fs::write(tree.join(name), &content).unwrap();
    std::fs::write(tree.join("big.bin"), pattern(9 << 20)).unwrap();
    let secret = secret_file(dir.path(), "s3cret-for-this-test");
    let (server, ticket) = receiver(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        &secret,
        "-o",
        out.path().to_str().unwrap(),
    ]);
    let relay = Relay::start(&server.addr);
    let o = send(
        &[&tree],
        &relay.addr,
        &[],
        &[
            "--secret-file",
            &secret,
            "--fingerprint",
            &ticket.fingerprint,
            "-j",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let landed = out.path().join("tree").join(name);
    assert_eq!(std::fs::read(&landed).unwrap(), content);
    let wire = relay.wire.lock().unwrap().clone();
    assert!(wire.len() > 10 << 20, "the relay saw {} bytes", wire.len());
    assert!(
        !contains(&wire, name.as_bytes()),
        "the name crossed in clear"
    );
    assert!(
        !contains(&wire, b"MARKER-CONTENT"),
        "the content crossed in clear"
    );
    assert!(!contains(&wire, b"s3cret"), "the secret crossed in clear");

    // Replay what the sender sent on every connection, to the same receiver.
    std::fs::remove_dir_all(out.path().join("tree")).unwrap();
    for bytes in relay.client_bytes.lock().unwrap().iter() {
        let mut conn = TcpStream::connect(&server.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = conn.write_all(bytes);
        let _ = conn.shutdown(Shutdown::Write);
        let _ = conn.read_to_end(&mut Vec::new());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        names_in(out.path()).is_empty(),
        "{:?}",
        names_in(out.path())
    );
    server.await_lines("TLS handshake failed; nothing written", 1);
}

#[test]
fn a_man_in_the_middle_with_its_own_certificate_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (out, fake_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src = dir.path().join("a.bin");
    std::fs::write(&src, pattern(1 << 20)).unwrap();
    let secret = secret_file(dir.path(), "the real secret");
    let (_real, ticket) = receiver(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        &secret,
        "-o",
        out.path().to_str().unwrap(),
    ]);
    // The impostor: a receiver with its own certificate (and whatever secret),
    // where the sender believes the real one is.
    let (fake, fake_ticket) = receiver(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        &secret,
        "-o",
        fake_out.path().to_str().unwrap(),
    ]);
    assert_ne!(ticket.fingerprint, fake_ticket.fingerprint);
    let o = send(
        &[&src],
        &fake.addr,
        &[],
        &[
            "--secret-file",
            &secret,
            "--fingerprint",
            &ticket.fingerprint,
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(60), "{err}");
    assert!(err.contains("man in the middle"), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(names_in(fake_out.path()).is_empty());
    // The impostor never got a proof, let alone a name.
    assert!(!fake.stderr().contains("secret proven"));
}

#[test]
fn ktls_carries_the_session_where_the_kernel_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let small = dir.path().join("small.bin");
    std::fs::write(&big, pattern(9 << 20)).unwrap();
    std::fs::write(&small, pattern(1000)).unwrap();
    let secret = secret_file(dir.path(), "k");
    let (mut server, ticket) = loopback_receiver(out.path(), &secret, &[]);
    let tls_stat = || std::fs::read_to_string("/proc/net/tls_stat").unwrap_or_default();
    let before = tls_stat();
    let o = send(
        &[&big, &small],
        &server.addr,
        &[],
        &[
            "--secret-file",
            &secret,
            "--fingerprint",
            &ticket.fingerprint,
            "--json",
            "-j",
            "2",
        ],
    );
    let json = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{json} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (status, received, _) = server.wait();
    assert!(status.success());
    // Whichever way the records were made, the files arrived whole.
    assert_eq!(
        std::fs::read(out.path().join("big.bin")).unwrap(),
        pattern(9 << 20)
    );
    assert_eq!(
        std::fs::read(out.path().join("small.bin")).unwrap(),
        pattern(1000)
    );
    let received = String::from_utf8_lossy(&received);
    if !json.contains("kTLS: keys handed to the kernel") {
        let reason = json
            .split("\"ktls\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("no ktls key");
        assert!(reason.starts_with("kTLS: "), "{json}");
        eprintln!("SKIP ktls: {reason}");
        return;
    }
    assert!(
        received.contains("kTLS: keys handed to the kernel"),
        "{received}"
    );
    // Sessions opened with the kernel's own crypto: both ends of both connections.
    let opened = |stat: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix("TlsTxSw"))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    if let (Some(b), Some(a)) = (opened(&before), opened(&tls_stat())) {
        assert!(a >= b + 4, "TlsTxSw {b} -> {a}");
    }

    // A user-space sender (rustls, ZCOPY_KTLS=off) and a kTLS receiver interoperate:
    // neither sends a TLS control record after the hand-off.
    let out = tempfile::tempdir().unwrap();
    let (mut server, ticket) = loopback_receiver(out.path(), &secret, &[]);
    let o = send(
        &[&big],
        &server.addr,
        &[("ZCOPY_KTLS", "off")],
        &[
            "--secret-file",
            &secret,
            "--fingerprint",
            &ticket.fingerprint,
            "--json",
        ],
    );
    let json = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{json} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(json.contains("kTLS: off (ZCOPY_KTLS=off)"), "{json}");
    let (status, received, _) = server.wait();
    assert!(status.success());
    assert!(String::from_utf8_lossy(&received).contains("kTLS: keys handed to the kernel"));
    assert_eq!(
        std::fs::read(out.path().join("big.bin")).unwrap(),
        pattern(9 << 20)
    );
}

#[test]
fn raw_and_insecure_off_loopback() {
    let o = zcopy()
        .args(["recv", "--raw", "--once", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--insecure"));
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "recv",
        "--insecure",
        "--listen",
        "0.0.0.0:0",
        "-o",
        out.path().to_str().unwrap(),
    ]);
    server.await_lines("warning", 1);
}

/// `--identity`: the receiver's key and certificate are kept in a file (mode
/// 0600), so the fingerprint a sender pinned still holds after a restart; a
/// damaged identity file is one line naming it, exit 1.
#[test]
fn an_identity_keeps_the_fingerprint_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, pattern(100_000)).unwrap();
    let secret = secret_file(dir.path(), "kept");
    let identity = dir.path().join("id.pem");
    let id = identity.to_str().unwrap();
    let mut pinned = String::new();
    for run in 0..2 {
        let out = tempfile::tempdir().unwrap();
        let (mut server, ticket) = loopback_receiver(out.path(), &secret, &["--identity", id]);
        if run == 0 {
            pinned = ticket.fingerprint;
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&identity).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
        } else {
            assert_eq!(
                ticket.fingerprint, pinned,
                "the same certificate after a restart"
            );
        }
        let o = send(
            &[&src],
            &server.addr,
            &[("ZCOPY_SECRET", "kept")],
            &["--fingerprint", &pinned],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(server.wait().0.success());
        assert!(std::fs::read(out.path().join("f.bin")).unwrap() == pattern(100_000));
    }
    std::fs::write(&identity, "not a certificate\n").unwrap();
    let o = zcopy()
        .args([
            "recv",
            "--once",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            &secret,
        ])
        .args(["--identity", id])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    // After the address it bound, one line.
    let err: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("listening on"))
        .collect();
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(err.len(), 1, "{stderr}");
    assert!(err[0].contains("id.pem"), "{stderr}");
}

/// With the records per connection capped low (a hidden flag), the blocks of a
/// file move to fresh connections, each with its own handshake and keys, as they
/// would before rustls's KeyUpdate; the file arrives whole. Runs without kTLS.
#[test]
fn a_fresh_connection_takes_over_before_the_record_cap() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let data = pattern(40 << 20);
    std::fs::write(&src, &data).unwrap();
    let secret = secret_file(dir.path(), "records-cap-secret");
    let (mut server, ticket) = loopback_receiver(out.path(), &secret, &[]);
    let o = send(
        &[&src],
        &server.addr,
        &[],
        &[
            "--secret-file",
            &secret,
            "--fingerprint",
            &ticket.fingerprint,
            "-v",
            "-j",
            "1",
            "--tls-records-per-connection",
            "1000",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let fresh = stderr.matches("a fresh TLS connection takes over").count();
    println!("{fresh} fresh connections for 10 blocks under a cap of 1000 records");
    assert!(fresh >= 3, "{stderr}");
    let (status, _, rstderr) = server.wait();
    assert!(status.success(), "{rstderr}");
    assert!(std::fs::read(out.path().join("big.bin")).unwrap() == data);
}
