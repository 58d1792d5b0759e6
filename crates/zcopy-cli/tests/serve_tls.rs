//! `zcopy serve --tls-cert --tls-key` against curl and openssl s_client, and
//! `zcopy get https://` against it; plain HTTP to the TLS port and the reverse.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{have, pattern, test_ca, zcopy, Server};

#[test]
fn https_with_curl_openssl_and_get() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = test_ca(dir.path(), "https_with_curl_openssl_and_get") else {
        return;
    };
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("big.bin"), pattern(3 << 20)).unwrap();
    std::fs::write(root.join("small.txt"), b"over TLS\n").unwrap();
    let server = Server::start(&[
        "serve",
        root.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--workers",
        "1",
    ]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let url = |path: &str| format!("https://localhost:{port}{path}");

    if have("curl", "https_with_curl_openssl_and_get (curl)") {
        for version in ["--tlsv1.3", "--tls-max"] {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "--cacert", &ca, version]);
            if version == "--tls-max" {
                cmd.args(["1.2", "--tlsv1.2"]);
            }
            let o = cmd.arg(url("/small.txt")).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(o.stdout, b"over TLS\n");
        }
        // Keep-alive: two requests on one TLS connection, and a 3 MiB body.
        let o = Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                &ca,
                "-o",
                "/dev/null",
                "-o",
                "-",
                &url("/small.txt"),
                &url("/big.bin"),
            ])
            .output()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(o.stdout, pattern(3 << 20));
        // Not trusted without the CA.
        let o = Command::new("curl")
            .args(["-sS", &url("/small.txt")])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(60));
    }

    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr,
            "-CAfile",
            &ca,
            "-servername",
            "localhost",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s_client
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let o = s_client.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&o.stdout);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("over TLS\n"), "{answer}");
    assert!(!answer.contains("Strict-Transport-Security"));

    // zcopy get: with the CA, without it (60), with -k.
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("big.bin");
    let o = zcopy()
        .args([
            "get",
            "--cacert",
            &ca,
            "-o",
            got.to_str().unwrap(),
            &url("/big.bin"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&got).unwrap(), pattern(3 << 20));
    let o = zcopy()
        .args([
            "get",
            "-o",
            out.path().join("x").to_str().unwrap(),
            &url("/small.txt"),
        ])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.path().join("x").exists());
    let o = zcopy()
        .args([
            "get",
            "-k",
            "-o",
            out.path().join("k").to_str().unwrap(),
            &format!("https://{}/small.txt", server.addr),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Plain HTTP to the TLS port: a 400 that says why.
    let mut plain = TcpStream::connect(&server.addr).unwrap();
    plain
        .write_all(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
    server.await_lines("plain HTTP on the TLS port", 1);

    // https:// to a plain server: exit 35, one line.
    let plain_server = Server::start(&["serve", root.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    let o = zcopy()
        .args([
            "get",
            "-k",
            "-o",
            out.path().join("p").to_str().unwrap(),
            &format!("https://{}/small.txt", plain_server.addr),
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(35),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}

#[test]
fn a_bad_key_or_certificate_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let o = zcopy()
        .args([
            "serve",
            ".",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cert.pem"), "{err}");
}

/// Inside the event loop: an upload and ranges over TLS, and a client that stalls
/// mid-handshake neither holds up the others nor stays past --header-timeout.
#[test]
fn uploads_ranges_and_a_stalled_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = test_ca(dir.path(), "uploads_ranges_and_a_stalled_handshake")
    else {
        return;
    };
    if !have("curl", "uploads_ranges_and_a_stalled_handshake") {
        return;
    }
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("big.bin"), pattern(1 << 20)).unwrap();
    let server = Server::start(&[
        "serve",
        root.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--workers",
        "1",
        "--upload",
        "--header-timeout",
        "1",
    ]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let url = |path: &str| format!("https://localhost:{port}{path}");

    // Half a ClientHello, then nothing: the one worker must go on serving.
    let mut stalled = TcpStream::connect(&server.addr).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();

    let upload = dir.path().join("up.bin");
    std::fs::write(&upload, pattern(5 << 20)).unwrap();
    let o = Command::new("curl")
        .args(["-sS", "-f", "--cacert", &ca, "-T", upload.to_str().unwrap()])
        .arg(url("/up.bin"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(root.join("up.bin")).unwrap(),
        pattern(5 << 20)
    );

    let o = Command::new("curl")
        .args(["-sS", "-f", "--cacert", &ca, "-r", "1000-1999"])
        .arg(url("/big.bin"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, pattern(1 << 20)[1000..2000]);
    let o = Command::new("curl")
        .args(["-sS", "-f", "--cacert", &ca, "-r", "0-9,500000-900000"])
        .arg(url("/big.bin"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let body = String::from_utf8_lossy(&o.stdout);
    assert!(
        body.contains("Content-Range: bytes 500000-900000/1048576"),
        "{body}"
    );
    let wanted = &pattern(1 << 20)[500000..=900000];
    assert!(o.stdout.windows(wanted.len()).any(|w| w == wanted));

    // The stalled client is closed once its --header-timeout (1 s) is over.
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = stalled.read_to_end(&mut rest);
    assert!(ended.is_ok(), "not closed: {ended:?}");
}
