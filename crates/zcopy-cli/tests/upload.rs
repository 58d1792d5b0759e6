//! Uploads to `zcopy serve --upload` with real `curl -T`, and hostile uploads over
//! raw sockets: too large, `..` and symlinks out of the tree, a body shorter than
//! its Content-Length, a slow body, a stalled body.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{have, names_in, pattern, zcopy, Server, Tmpfs};

fn upload_server(root: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve",
        root.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--upload",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// `curl -T FILE URL ARGS`: (HTTP status, body).
fn curl_put(file: &Path, url: &str, args: &[&str]) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-T"])
        .arg(file)
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// Sends `head` then `body` pieces with `pause` between them, then closes its
/// side; returns what the server answered.
fn raw_put(addr: &str, head: &str, body: &[&[u8]], pause: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    for piece in body {
        std::thread::sleep(pause);
        if s.write_all(piece).is_err() {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"\n") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Waits until `dir` lists exactly `want` (an upload's temporary file is removed
/// when the server notices the connection is gone).
fn wait_for_names(dir: &Path, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while names_in(dir) != want {
        assert!(Instant::now() < deadline, "{:?} != {want:?}", names_in(dir));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn curl_uploads_new_and_replaced_files() {
    if !have("curl", "curl_uploads_new_and_replaced_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pattern((5 << 20) + 3)).unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"small\n").unwrap();
    let server = upload_server(&root, &["-v"]);
    let url = |p: &str| format!("http://{}{p}", server.addr);

    // curl sends Expect: 100-continue for the large body.
    assert_eq!(curl_put(&big, &url("/big.bin"), &[]).0, 201);
    assert_eq!(
        std::fs::read(root.join("big.bin")).unwrap(),
        pattern((5 << 20) + 3)
    );
    assert_eq!(curl_put(&small, &url("/big.bin"), &[]).0, 204);
    assert_eq!(std::fs::read(root.join("big.bin")).unwrap(), b"small\n");
    assert_eq!(curl_put(&small, &url("/sub/a%20b.txt"), &[]).0, 201);
    assert_eq!(std::fs::read(root.join("sub/a b.txt")).unwrap(), b"small\n");
    // Without Expect, and the file served back at once.
    assert_eq!(
        curl_put(&big, &url("/sub/big2.bin"), &["-H", "Expect:"]).0,
        201
    );
    assert_eq!(
        std::fs::read(root.join("sub/big2.bin")).unwrap(),
        pattern((5 << 20) + 3)
    );
    let back = Command::new("curl")
        .args(["-s", &url("/sub/big2.bin")])
        .output()
        .unwrap();
    assert!(back.stdout == pattern((5 << 20) + 3));

    // What zcopy get downloads of an upload is checked against its Repr-Digest.
    let out = zcopy()
        .args(["get", "--json", "-o"])
        .arg(dir.path().join("a.txt"))
        .arg(url("/sub/a%20b.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"verified\":\"sha-256\""));

    assert_eq!(names_in(&root), ["big.bin", "sub"]);
    assert_eq!(names_in(&root.join("sub")), ["a b.txt", "big2.bin"]);
    server.await_lines("\"PUT /big.bin\" 201 5242883", 1);
}

#[test]
fn hostile_uploads_write_nothing() {
    if !have("curl", "hostile_uploads_write_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir(dir.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside/target"), root.join("link")).unwrap();
    std::fs::create_dir(root.join("adir")).unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, pattern(20_000)).unwrap();
    let server = upload_server(&root, &["--max-upload", "10k"]);
    let url = |p: &str| format!("http://{}{p}", server.addr);

    let (status, body) = curl_put(&file, &url("/big.bin"), &[]);
    assert_eq!(status, 413, "{body}");
    let (status, _) = curl_put(&file, &url("/big.bin"), &["-H", "Expect: 100-continue"]);
    assert_eq!(status, 413);
    let small = dir.path().join("s.txt");
    std::fs::write(&small, b"x").unwrap();
    for (path, want) in [
        ("/../x", 403),
        ("/a/../../x", 403),
        ("/%2e%2e/x", 403),
        ("/escape/x", 403),
        ("/missing/x", 409),
        ("/adir", 409),
        ("/a%00b", 403),
    ] {
        let (status, body) = curl_put(&small, &url(path), &["--path-as-is"]);
        assert_eq!(status, want, "{path}: {body}");
    }
    // A symlink under the target name is replaced, not followed.
    assert_eq!(curl_put(&small, &url("/link"), &[]).0, 204);
    assert!(!dir.path().join("outside/target").exists());
    assert!(root.join("link").is_file());
    assert_eq!(names_in(&dir.path().join("outside")), Vec::<String>::new());
    assert_eq!(names_in(&root), ["adir", "escape", "link"]);

    // Without --upload, a PUT is refused.
    let plain = Server::start(&["serve", root.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    let (status, _) = curl_put(&small, &format!("http://{}/new", plain.addr), &[]);
    assert_eq!(status, 405);
    assert!(!root.join("new").exists());
}

/// An upload to a dot name is refused unless `--hidden`; to a part file's or a
/// manifest's name, always.
#[test]
fn uploads_to_dot_names_need_hidden() {
    if !have("curl", "uploads_to_dot_names_need_hidden") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join(".config")).unwrap();
    let small = dir.path().join("s.txt");
    std::fs::write(&small, b"x").unwrap();
    let never = ["/a.zcopy-part", "/.a.1.2.zcopy-part", "/.a.zcopy-manifest"];

    let server = upload_server(&root, &[]);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    for path in ["/.env", "/.config/x", "/%2eenv"] {
        let (status, body) = curl_put(&small, &url(path), &[]);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("serve --hidden"), "{body}");
    }
    for path in never {
        let (status, body) = curl_put(&small, &url(path), &[]);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("part file"), "{body}");
    }
    assert_eq!(names_in(&root), [".config"]);
    assert_eq!(names_in(&root.join(".config")), Vec::<String>::new());

    let hidden = upload_server(&root, &["--hidden"]);
    let url = |p: &str| format!("http://{}{p}", hidden.addr);
    assert_eq!(curl_put(&small, &url("/.env"), &[]).0, 201);
    assert_eq!(curl_put(&small, &url("/.config/x"), &[]).0, 201);
    for path in never {
        assert_eq!(curl_put(&small, &url(path), &[]).0, 403, "--hidden {path}");
    }
    assert_eq!(names_in(&root), [".config", ".env"]);
}

#[test]
fn short_slow_and_stalled_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let server = upload_server(&root, &["--idle-timeout", "1"]);

    // A body shorter than its Content-Length, then the peer closes: nothing stored.
    let answer = raw_put(
        &server.addr,
        "PUT /short.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
        &[&pattern(5000)],
        Duration::ZERO,
    );
    assert!(answer.is_empty(), "{answer}");
    wait_for_names(&root, &[]);
    // A cut connection: the peer half-closes mid-body.
    {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.write_all(b"PUT /cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
    wait_for_names(&root, &[]);

    // A slow body (a piece every 200 ms, longer in all than the idle timeout) is
    // stored whole, and the server answers others meanwhile.
    let pieces: Vec<Vec<u8>> = pattern(8000).chunks(1000).map(<[u8]>::to_vec).collect();
    let slow = {
        let addr = server.addr.clone();
        std::thread::spawn(move || {
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            raw_put(
                &addr,
                "PUT /slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n",
                &refs,
                Duration::from_millis(200),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut other = TcpStream::connect(&server.addr).unwrap();
    other
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut listing = String::new();
    other.read_to_string(&mut listing).unwrap();
    assert!(listing.starts_with("HTTP/1.1 200"), "{listing}");
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(std::fs::read(root.join("slow.bin")).unwrap(), pattern(8000));

    // A stalled body is dropped after the idle timeout, with its temporary file.
    let mut stalled = TcpStream::connect(&server.addr).unwrap();
    stalled
        .write_all(b"PUT /stalled.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(names_in(&root).len(), 2, "{:?}", names_in(&root));
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    wait_for_names(&root, &["slow.bin"]);
}

#[test]
fn upload_off_loopback_needs_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let out = zcopy()
        .args([
            "serve",
            dir.path().to_str().unwrap(),
            "--upload",
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing --upload on 0.0.0.0:0") && err.contains("--insecure"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let mut server = Server::start(&[
        "serve",
        dir.path().to_str().unwrap(),
        "--upload",
        "--insecure",
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(server.addr.starts_with("0.0.0.0:"));
    let _ = server.child.kill();
    let _ = server.wait();
}

/// A body larger than the free space is refused (507) before it is read, and
/// leaves nothing: a 1 MiB tmpfs (mounted as root) takes a 2 MiB upload.
#[test]
fn a_full_disk_is_refused_before_the_body() {
    if !have("curl", "a_full_disk_is_refused_before_the_body") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("small");
    std::fs::create_dir(&root).unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&root, "size=1m", "a_full_disk_is_refused_before_the_body")
    else {
        return;
    };
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pattern(2 << 20)).unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"fits\n").unwrap();
    let mut server = upload_server(&root, &[]);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let (status, body) = curl_put(&big, &url("/big.bin"), &["-H", "Expect: 100-continue"]);
    assert_eq!(status, 507, "{body}");
    assert_eq!(names_in(&root), Vec::<String>::new());
    assert_eq!(curl_put(&small, &url("/small.txt"), &[]).0, 201);
    assert_eq!(names_in(&root), ["small.txt"]);
    let _ = server.child.kill();
    let _ = server.wait();
}

/// An argon2 hash of `password`, as a line of an `--auth-file` holds it.
fn argon2_of(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"a salt of 16 B..").unwrap();
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// `--auth-file`: uploads need HTTP Basic credentials matching an argon2 hash;
/// downloads do not; with it, `--upload` may listen off loopback.
#[test]
fn uploads_with_credentials() {
    if !have("curl", "uploads_with_credentials") {
        return;
    }
    let hash = argon2_of("s3cret");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("ann:{hash}\n")).unwrap();
    let file = dir.path().join("f.txt");
    std::fs::write(&file, b"payload\n").unwrap();
    let server = upload_server(&root, &["--auth-file", users.to_str().unwrap()]);
    let url = format!("http://{}/f.txt", server.addr);

    let (status, body) = curl_put(&file, &url, &[]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(curl_put(&file, &url, &["-u", "ann:wrong"]).0, 401);
    assert_eq!(curl_put(&file, &url, &["-u", "bob:s3cret"]).0, 401);
    assert!(names_in(&root).is_empty());
    assert_eq!(curl_put(&file, &url, &["-u", "ann:s3cret"]).0, 201);
    assert_eq!(curl_put(&file, &url, &["-u", "ann:s3cret"]).0, 204);
    assert_eq!(std::fs::read(root.join("f.txt")).unwrap(), b"payload\n");
    let got = Command::new("curl").args(["-s", &url]).output().unwrap();
    assert_eq!(got.stdout, b"payload\n");

    // With credentials, off loopback is allowed; a bad auth file is one line.
    let mut open = Server::start(&[
        "serve",
        root.to_str().unwrap(),
        "--upload",
        "--auth-file",
        users.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    let _ = open.child.kill();
    let _ = open.wait();
    std::fs::write(&users, "ann:plain\n").unwrap();
    let out = zcopy()
        .args(["serve", root.to_str().unwrap(), "--upload", "--auth-file"])
        .arg(&users)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":1: not an argon2 or bcrypt hash"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `--auth-file` takes the bcrypt lines `htpasswd -B` writes, and the argon2
/// lines `zcopy serve --hash-password USER` prints from a password on stdin.
#[test]
fn htpasswd_bcrypt_lines_and_hash_password() {
    if !have("curl", "htpasswd_bcrypt_lines_and_hash_password") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let users = dir.path().join("users");
    let line = |args: &[&str], stdin: &[u8]| -> (Option<i32>, String, String) {
        let mut child = zcopy()
            .args(["serve", "--hash-password"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let o = child.wait_with_output().unwrap();
        let out = String::from_utf8(o.stdout).unwrap();
        (
            o.status.code(),
            out,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, ann, _) = line(&["ann"], b"s3cret\n");
    assert_eq!(code, Some(0));
    assert!(
        ann.starts_with("ann:$argon2id$") && ann.ends_with('\n'),
        "{ann}"
    );
    let (code, bare, _) = line(&[], b"pa ss");
    assert_eq!(code, Some(0));
    assert!(
        bare.starts_with("$argon2id$") && !bare.contains(':'),
        "{bare}"
    );
    let (code, _, err) = line(&["ann"], b"");
    assert_eq!(code, Some(1));
    assert!(err.contains("no password on stdin"), "{err}");
    let mut text = ann + &format!("cy:{bare}");
    if have(
        "htpasswd",
        "htpasswd_bcrypt_lines_and_hash_password (bcrypt)",
    ) {
        let o = Command::new("htpasswd")
            .args(["-nbB", "-C", "5", "bob", "b0b pass"])
            .output()
            .unwrap();
        let bob = String::from_utf8(o.stdout).unwrap();
        assert!(bob.starts_with("bob:$2y$05$"), "{bob}");
        text.push_str(bob.trim_end());
        text.push('\n');
    }
    std::fs::write(&users, &text).unwrap();
    let file = dir.path().join("f.txt");
    std::fs::write(&file, b"payload\n").unwrap();
    let server = upload_server(&root, &["--auth-file", users.to_str().unwrap()]);
    let url = format!("http://{}/f.txt", server.addr);
    assert_eq!(curl_put(&file, &url, &["-u", "ann:s3cret"]).0, 201);
    assert_eq!(curl_put(&file, &url, &["-u", "cy:pa ss"]).0, 204);
    assert_eq!(curl_put(&file, &url, &["-u", "ann:wrong"]).0, 401);
    if text.contains("bob:") {
        assert_eq!(curl_put(&file, &url, &["-u", "bob:b0b pass"]).0, 204);
        assert_eq!(curl_put(&file, &url, &["-u", "bob:b0b"]).0, 401);
    }
}

/// 100 wrong passwords from one address: all 401, nothing written, the server
/// still answers, and past the limit it stops checking that address's guesses.
#[test]
fn a_hundred_wrong_passwords_are_refused_and_limited() {
    if !have("curl", "a_hundred_wrong_passwords_are_refused_and_limited") {
        return;
    }
    let hash = argon2_of("s3cret");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("here.txt"), b"still here\n").unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("ann:{hash}\n")).unwrap();
    let file = dir.path().join("f.txt");
    std::fs::write(&file, b"payload\n").unwrap();
    let server = upload_server(&root, &["--auth-file", users.to_str().unwrap()]);
    let url = format!("http://{}/f.txt", server.addr);
    for i in 0..100 {
        let (status, body) = curl_put(&file, &url, &["-u", &format!("ann:guess{i}")]);
        assert_eq!(status, 401, "guess {i}: {body}");
    }
    assert_eq!(names_in(&root), ["here.txt"]);
    let got = Command::new("curl")
        .args(["-s", &format!("http://{}/here.txt", server.addr)])
        .output()
        .unwrap();
    assert_eq!(got.stdout, b"still here\n");
    server.await_lines("failed upload logins", 1);
}
