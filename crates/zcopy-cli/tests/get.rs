//! `zcopy get` against real servers: nginx (started with a config the test writes),
//! `zcopy serve`, and small servers written here for what neither will do on
//! demand (chunked bodies, stalls, early closes, wrong digests, cut connections).

mod common;
#[path = "get/curl.rs"]
mod curl;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{free_port, have, names_in, pattern, zcopy, Server};

/// nginx serving `root` on 127.0.0.1 with `extra` lines in its server block.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(root: &Path, work: &Path, extra: &str) -> Nginx {
        let port = free_port();
        let conf = work.join("nginx.conf");
        let w = work.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\npid {w}/nginx.pid;\nerror_log {w}/error.log;\n\
                 events {{}}\nhttp {{\n access_log off;\n client_body_temp_path {w}/body;\n\
                 proxy_temp_path {w}/proxy;\n fastcgi_temp_path {w}/fastcgi;\n uwsgi_temp_path {w}/uwsgi;\n\
                 scgi_temp_path {w}/scgi;\n server {{\n  listen 127.0.0.1:{port};\n  root {};\n{extra}\n }}\n}}\n",
                root.display()
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .args(["-e", &format!("{w}/error.log"), "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(work.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_nginx(test: &str) -> bool {
    have("nginx", test)
}

/// `zcopy get ARGS` in `dir`.
fn get(dir: &Path, args: &[&str]) -> Output {
    get_with(dir, args, &[])
}

/// The proxy variables curl and `get` read: cleared, so that a test's requests go
/// where it says whatever the environment it runs in.
const PROXY_VARS: [&str; 7] = [
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// `zcopy get ARGS` in `dir` with the proxy variables `env`, and no others.
fn get_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = zcopy();
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    command
        .arg("get")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {text} / {}", stderr(out)))
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["www", "out", "nginx"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("www/hello.txt"), b"hello, world\n").unwrap();
        std::fs::write(dir.path().join("www/big.bin"), pattern((3 << 20) + 7)).unwrap();
        std::fs::write(dir.path().join("www/mid.bin"), pattern(1_000_000)).unwrap();
        Site { dir }
    }
    fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn nginx(&self, extra: &str) -> Nginx {
        Nginx::start(&self.www(), &self.dir.path().join("nginx"), extra)
    }
    fn serve(&self) -> Server {
        Server::start(&[
            "serve",
            self.www().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
        ])
    }
}

#[test]
fn whole_files_from_nginx_are_spliced() {
    if !have_nginx("whole_files_from_nginx_are_spliced") {
        return;
    }
    let site = Site::new();
    let nginx = site.nginx("");
    let out = get(
        &site.out(),
        &["--json", &nginx.url("/big.bin"), &nginx.url("/hello.txt")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["engine"], "splice");
    assert_eq!(first["body"], "spliced");
    assert_eq!(first["bytes"], (3 << 20) + 7);
    assert!(first["syscalls"]["splice"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read(site.out().join("big.bin")).unwrap(),
        pattern((3 << 20) + 7)
    );
    assert_eq!(
        std::fs::read(site.out().join("hello.txt")).unwrap(),
        b"hello, world\n"
    );
    assert_eq!(names_in(&site.out()), ["big.bin", "hello.txt"]);

    // -o, -P, and the read-write engine for comparison.
    let out = get(
        &site.out(),
        &[
            "-q",
            "-o",
            "named.bin",
            "--engine",
            "read-write",
            &nginx.url("/big.bin"),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(site.out().join("named.bin")).unwrap(),
        pattern((3 << 20) + 7)
    );
    std::fs::create_dir(site.out().join("sub")).unwrap();
    let out = get(&site.out(), &["-q", "-P", "sub", &nginx.url("/hello.txt")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(site.out().join("sub/hello.txt").is_file());
}

#[test]
fn parallel_ranges_from_nginx() {
    if !have_nginx("parallel_ranges_from_nginx") {
        return;
    }
    let site = Site::new();
    let nginx = site.nginx("");
    let out = get(
        &site.out(),
        &["--json", "--segments", "3", &nginx.url("/big.bin")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["connections"], 3);
    assert_eq!(report["bytes"], (3 << 20) + 7);
    assert_eq!(
        std::fs::read(site.out().join("big.bin")).unwrap(),
        pattern((3 << 20) + 7)
    );
    // Too small to split: one connection.
    let out = get(
        &site.out(),
        &["--json", "--segments", "4", &nginx.url("/hello.txt")],
    );
    assert_eq!(json(&out)["connections"], 1);
    assert_eq!(
        std::fs::read(site.out().join("hello.txt")).unwrap(),
        b"hello, world\n"
    );
}

#[test]
fn redirects_loops_and_errors_from_nginx() {
    if !have_nginx("redirects_loops_and_errors_from_nginx") {
        return;
    }
    let site = Site::new();
    let nginx = site.nginx(
        "  location = /a { return 301 /b; }\n  location = /b { return 302 http://127.0.0.1:$server_port/hello.txt; }\n  location = /loop { return 302 /loop; }\n  location = /five { return 500; }",
    );
    let out = get(&site.out(), &["-v", "-o", "r.txt", &nginx.url("/a")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Both redirects' bodies were read: one connection for the three requests.
    assert_eq!(
        stderr(&out).matches("kept-alive connection").count(),
        2,
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(site.out().join("r.txt")).unwrap(),
        b"hello, world\n"
    );

    let out = get(&site.out(), &["-o", "loop", &nginx.url("/loop")]);
    assert_eq!(code(&out), 47, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than 10 redirects"),
        "{}",
        stderr(&out)
    );
    let out = get(&site.out(), &[&nginx.url("/missing.iso")]);
    assert_eq!(code(&out), 22);
    assert!(stderr(&out).contains("404 Not Found"), "{}", stderr(&out));
    let out = get(&site.out(), &["-o", "five", &nginx.url("/five")]);
    assert_eq!(code(&out), 22);
    assert_eq!(names_in(&site.out()), ["r.txt"]);

    // Several URLs go on after a failure; the exit code is the last failure's.
    let out = get(
        &site.out(),
        &["-P", ".", &nginx.url("/missing"), &nginx.url("/hello.txt")],
    );
    assert_eq!(code(&out), 22);
    assert!(site.out().join("hello.txt").is_file());
}

/// nginx sends slowly (`limit_rate`); it is killed mid-body, the partial file stays
/// under its temporary name, and `-C` finishes it from a new nginx.
#[test]
fn resume_after_nginx_is_killed_mid_body() {
    if !have_nginx("resume_after_nginx_is_killed_mid_body") {
        return;
    }
    let site = Site::new();
    let mut nginx = site.nginx("  limit_rate 1m;");
    let url = nginx.url("/big.bin");
    let client = zcopy()
        .args(["get", &url])
        .current_dir(site.out())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let part = site.out().join(".big.bin.zcopy-part");
    await_part(&part, 100_000);
    let _ = nginx.child.kill();
    let _ = nginx.child.wait();
    let out = client.wait_with_output().unwrap();
    // The server's death is an end of stream (18) or a reset (56).
    assert!([18, 56].contains(&code(&out)), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("partial file kept"),
        "{}",
        stderr(&out)
    );
    assert!(!site.out().join("big.bin").exists());
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < (3 << 20));

    // The file is the same: a range from where the partial file ends.
    drop(nginx);
    let nginx = site.nginx("");
    let out = get(&site.out(), &["-C", "--json", &nginx.url("/big.bin")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["status"], 206);
    assert_eq!(report["resumed_from"], kept);
    assert_eq!(report["bytes"], (3 << 20) + 7 - kept);
    assert_eq!(
        std::fs::read(site.out().join("big.bin")).unwrap(),
        pattern((3 << 20) + 7)
    );
    assert_eq!(names_in(&site.out()), ["big.bin"]);
}

/// A file that changed between two attempts: If-Range makes the server send the
/// whole new file, and the stale partial file is not spliced onto it.
#[test]
fn resume_of_a_changed_file_starts_over() {
    if !have_nginx("resume_of_a_changed_file_starts_over") {
        return;
    }
    let site = Site::new();
    let nginx = site.nginx("");
    // A partial file of the old version, cut by a relay.
    let relay = Relay::start(nginx.port, 200_000);
    let out = get(&site.out(), &[&format!("http://{}/big.bin", relay.addr)]);
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    let part = site.out().join(".big.bin.zcopy-part");
    assert!(std::fs::metadata(&part).unwrap().len() > 0);

    let new = pattern(2_000_000).into_iter().rev().collect::<Vec<u8>>();
    std::fs::write(site.www().join("big.bin"), &new).unwrap();
    // A different mtime second, so that the ETag changes even on coarse clocks.
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(site.www().join("big.bin"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = get(&site.out(), &["-C", "--json", &nginx.url("/big.bin")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["status"], 200);
    assert_eq!(report["resumed_from"], 0);
    assert!(stderr(&out).contains("starting over"), "{}", stderr(&out));
    assert_eq!(std::fs::read(site.out().join("big.bin")).unwrap(), new);
}

#[test]
fn zcopy_serve_digest_is_checked_and_resume_is_verified() {
    let site = Site::new();
    let server = site.serve();
    let out = get(
        &site.out(),
        &["--json", &format!("http://{}/mid.bin", server.addr)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["verified"], "sha-256");

    // Cut after 300 kB by a relay, then resumed from zcopy serve: the whole file's
    // digest comes with the 206, so the assembled file is checked end to end.
    std::fs::remove_file(site.out().join("mid.bin")).unwrap();
    let port: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    let relay = Relay::start(port, 300_000);
    let out = get(&site.out(), &[&format!("http://{}/mid.bin", relay.addr)]);
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    assert!(!site.out().join("mid.bin").exists());
    let out = get(
        &site.out(),
        &["-C", "--json", &format!("http://{}/mid.bin", server.addr)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["status"], 206);
    assert!(report["resumed_from"].as_u64().unwrap() > 0);
    assert_eq!(report["verified"], "sha-256");
    assert_eq!(
        std::fs::read(site.out().join("mid.bin")).unwrap(),
        pattern(1_000_000)
    );

    // Keep-alive: the second URL to the same server reuses the connection.
    let out = get(
        &site.out(),
        &[
            "-v",
            "-P",
            "ka",
            &format!("http://{}/hello.txt", server.addr),
            &format!("http://{}/mid.bin", server.addr),
        ],
    );
    assert_eq!(code(&out), 23, "no ka/ directory: {}", stderr(&out));
    std::fs::create_dir(site.out().join("ka")).unwrap();
    let out = get(
        &site.out(),
        &[
            "-v",
            "-P",
            "ka",
            &format!("http://{}/hello.txt", server.addr),
            &format!("http://{}/mid.bin", server.addr),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kept-alive connection"),
        "{}",
        stderr(&out)
    );
}

/// A hand-written server: answers every connection, on a thread of its own, with
/// `respond(request head)`.
struct Scripted {
    addr: String,
    _thread: JoinHandle<()>,
}

impl Scripted {
    fn start(respond: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let respond = std::sync::Arc::new(respond);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let respond = respond.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        request.push_str(&line);
                    }
                    respond(&request, &mut stream);
                });
            }
        });
        Scripted {
            addr,
            _thread: thread,
        }
    }
}

#[test]
fn chunked_bodies_are_decoded() {
    let server = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n");
        std::thread::sleep(Duration::from_millis(50));
        let big = pattern(70_000);
        let _ = s.write_all(format!("{:X}\r\n", big.len()).as_bytes());
        let _ = s.write_all(&big);
        let _ = s.write_all(b"\r\n0\r\nX-Trailer: yes\r\n\r\n");
    });
    let dir = tempfile::tempdir().unwrap();
    let out = get(
        dir.path(),
        &[
            "--json",
            "-o",
            "c.bin",
            &format!("http://{}/c", server.addr),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["bytes"], 70_005);
    assert!(report["body"].as_str().unwrap().contains("user space"));
    let mut want = b"hello".to_vec();
    want.extend(pattern(70_000));
    assert_eq!(std::fs::read(dir.path().join("c.bin")).unwrap(), want);

    // A chunked body cut in the middle: nothing under the real name.
    let cut = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc");
    });
    let out = get(
        dir.path(),
        &["-o", "cut.bin", &format!("http://{}/c", cut.addr)],
    );
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    assert_eq!(names_in(dir.path()), ["c.bin"]);
}

#[test]
fn a_stalling_server_times_out() {
    let server = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789");
        std::thread::sleep(Duration::from_secs(10));
    });
    let dir = tempfile::tempdir().unwrap();
    let out = get(
        dir.path(),
        &[
            "--timeout",
            "0.5",
            "-o",
            "s.bin",
            &format!("http://{}/s", server.addr),
        ],
    );
    assert_eq!(code(&out), 28, "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
    // A head that never comes.
    let silent = Scripted::start(|_, _| std::thread::sleep(Duration::from_secs(10)));
    let out = get(
        dir.path(),
        &[
            "--timeout",
            "0.5",
            "-o",
            "s.bin",
            &format!("http://{}/s", silent.addr),
        ],
    );
    assert_eq!(code(&out), 28, "{}", stderr(&out));
}

#[test]
fn an_early_close_leaves_no_file_under_the_real_name() {
    let server = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nETag: \"v1\"\r\n\r\n");
        let _ = s.write_all(&pattern(1000));
    });
    let dir = tempfile::tempdir().unwrap();
    let out = get(
        dir.path(),
        &["-o", "e.bin", &format!("http://{}/e", server.addr)],
    );
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("closed after 1000 of 1000000 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names_in(dir.path()), [".e.bin.zcopy-part"]);

    // The resume asks for the rest with If-Range; this server answers a 206.
    let resumed = Scripted::start(|request, s| {
        assert!(request.contains("Range: bytes=1000-\r\n"), "{request}");
        assert!(request.contains("If-Range: \"v1\"\r\n"), "{request}");
        let rest = &pattern(1_000_000)[1000..];
        let _ = s.write_all(format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes 1000-999999/1000000\r\nETag: \"v1\"\r\n\r\n", rest.len()).as_bytes());
        let _ = s.write_all(rest);
    });
    let out = get(
        dir.path(),
        &["-C", "-o", "e.bin", &format!("http://{}/e", resumed.addr)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("e.bin")).unwrap(),
        pattern(1_000_000)
    );
    assert_eq!(names_in(dir.path()), ["e.bin"]);

    // A partial file that turns out whole: the server answers the resume with 416
    // and the size the partial file has.
    let short = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"v2\"\r\n\r\n12345");
    });
    let out = get(
        dir.path(),
        &["-o", "f.bin", &format!("http://{}/f", short.addr)],
    );
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    let complete = Scripted::start(|request, s| {
        assert!(request.contains("Range: bytes=5-\r\n"), "{request}");
        let _ = s.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */5\r\nContent-Length: 0\r\n\r\n");
    });
    let out = get(
        dir.path(),
        &["-C", "-o", "f.bin", &format!("http://{}/f", complete.addr)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("f.bin")).unwrap(), b"12345");
    assert_eq!(names_in(dir.path()), ["e.bin", "f.bin"]);
}

#[test]
fn a_wrong_digest_saves_nothing() {
    let server = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nRepr-Digest: sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:\r\n\r\nhello");
    });
    let dir = tempfile::tempdir().unwrap();
    let out = get(
        dir.path(),
        &["-o", "d.txt", &format!("http://{}/d", server.addr)],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    assert!(names_in(dir.path()).is_empty());
    // Content-Digest of the right bytes is checked too (sha-256 of "hello").
    let good = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Digest: sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:\r\n\r\nhello");
    });
    let out = get(
        dir.path(),
        &["--json", "-o", "d.txt", &format!("http://{}/d", good.addr)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["verified"], "sha-256");
}

#[test]
fn bad_urls_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = get(dir.path(), &["ftp://127.0.0.1/x"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("unsupported protocol ftp://"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
    assert_eq!(code(&get(dir.path(), &["http://127.0.0.1:99999/x"])), 3);
    let port = free_port();
    let out = get(dir.path(), &[&format!("http://127.0.0.1:{port}/x")]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert_eq!(
        code(&get(dir.path(), &["-o", "x", "-o", "y", "http://a/1"])),
        2
    );
    // The old --parallel=N: --segments N, with the hint.
    let out = get(
        dir.path(),
        &["--parallel=2", &format!("http://127.0.0.1:{port}/x")],
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--parallel 2 is now --segments 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&get(dir.path(), &["--parallel=0", "http://a/1"])), 2);
    let out = get(dir.path(), &["-C", "100", "http://a/1"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("only -C -"), "{}", stderr(&out));
    assert_eq!(
        code(&get(dir.path(), &["--json", "-o", "-", "http://a/1"])),
        2
    );
    assert!(names_in(dir.path()).is_empty());
}

/// A relay to 127.0.0.1:`port` that forwards one request and cuts the response
/// after `limit` bytes: a server that dies mid-body, at a known byte.
struct Relay {
    addr: String,
    _thread: JoinHandle<()>,
}

impl Relay {
    fn start(port: u16, limit: usize) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let thread = std::thread::spawn(move || {
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let mut upstream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            upstream.write_all(&request).unwrap();
            let mut sent = 0;
            let mut buf = vec![0u8; 64 << 10];
            while sent < limit {
                let n = upstream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let n = n.min(limit - sent);
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
                sent += n;
            }
        });
        Relay {
            addr,
            _thread: thread,
        }
    }
}

/// `-o -` and `-o FIFO` are written in place: no temporary file, no rename over
/// them (which would replace a device such as /dev/null with a regular file).
#[test]
fn stdout_and_fifos_are_written_in_place() {
    let site = Site::new();
    let server = site.serve();
    let url = format!("http://{}/big.bin", server.addr);
    let out = get(&site.out(), &["-q", "-o", "-", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout == pattern((3 << 20) + 7));

    let fifo = site.out().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = get(&site.out(), &["-q", "-o", "fifo", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(reader.join().unwrap() == pattern((3 << 20) + 7));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(names_in(&site.out()), ["fifo"]);

    // A reader that leaves early: exit 23, as curl.
    let mut child = zcopy()
        .args(["get", "-o", "-", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!([0, 23].contains(&code(&out)), "{}", stderr(&out));
}

/// `--limit-rate` paces the body (spliced, parallel or chunked); the bytes are the
/// same (no timing is asserted).
#[test]
fn limited_rate_downloads_are_whole() {
    let site = Site::new();
    let server = site.serve();
    let url = format!("http://{}/mid.bin", server.addr);
    for extra in [&[][..], &["--segments", "2"][..]] {
        let mut args = vec!["-q", "--limit-rate", "4M", "-o", "m.bin", &url];
        args.extend_from_slice(extra);
        let out = get(&site.out(), &args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            std::fs::read(site.out().join("m.bin")).unwrap(),
            pattern(1_000_000)
        );
    }
    let chunked = Scripted::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for piece in pattern(100_000).chunks(10_000) {
            let _ = s.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
            let _ = s.write_all(piece);
            let _ = s.write_all(b"\r\n");
        }
        let _ = s.write_all(b"0\r\n\r\n");
    });
    let url = format!("http://{}/c", chunked.addr);
    let out = get(
        &site.out(),
        &["-q", "--limit-rate", "1M", "-o", "c.bin", &url],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(site.out().join("c.bin")).unwrap(),
        pattern(100_000)
    );
}

/// A file that changes while `--parallel` fetches it: a range answered with 200
/// fails the download (33), shuts the other ranges down, and leaves no file.
#[test]
fn a_file_changed_during_a_parallel_download_leaves_nothing() {
    const TOTAL: usize = 4 << 20;
    let server = Scripted::start(|request, s| {
        if request.contains("Range: bytes=0-\r\n") {
            let _ = s.write_all(format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {TOTAL}\r\nContent-Range: bytes 0-{}/{TOTAL}\r\nETag: \"v1\"\r\n\r\n", TOTAL - 1).as_bytes());
            let _ = s.write_all(&pattern(TOTAL));
        } else {
            let _ = s.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\nETag: \"v2\"\r\n\r\n")
                    .as_bytes(),
            );
            let _ = s.write_all(&pattern(TOTAL));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/p.bin", server.addr);
    // The old spelling of --segments still works, with a hint.
    let out = get(dir.path(), &["--parallel", "4", "-o", "p.bin", &url]);
    assert_eq!(code(&out), 33, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--parallel 4 is now --segments 4"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("the file changed during the download"),
        "{}",
        stderr(&out)
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
}

/// `zcopy serve` killed while `get --limit-rate` is reading a body: the partial
/// file stays, and `-C` against a new server finishes it.
#[test]
fn resume_after_zcopy_serve_is_killed_mid_body() {
    let site = Site::new();
    // Larger than what the two sockets' buffers hold, so that the kill cuts the body.
    let size = 24 << 20;
    std::fs::write(site.www().join("large.bin"), pattern(size)).unwrap();
    let mut server = site.serve();
    let url = format!("http://{}/large.bin", server.addr);
    let client = zcopy()
        .args(["get", "--limit-rate", "8M", &url])
        .current_dir(site.out())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let part = site.out().join(".large.bin.zcopy-part");
    await_part(&part, 1_000_000);
    let _ = server.child.kill();
    let _ = server.child.wait();
    let out = client.wait_with_output().unwrap();
    assert!([18, 56].contains(&code(&out)), "{}", stderr(&out));
    assert!(!site.out().join("large.bin").exists());
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept < size as u64);

    let server = site.serve();
    let url = format!("http://{}/large.bin", server.addr);
    let out = get(&site.out(), &["-C", "--json", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["status"], 206);
    assert_eq!(report["resumed_from"], kept);
    assert!(std::fs::read(site.out().join("large.bin")).unwrap() == pattern(size));
    assert_eq!(names_in(&site.out()), ["large.bin"]);
}

/// `get https://` from nginx with a test CA: verified with --cacert, refused
/// without it (60), the bytes as nginx sent them.
#[test]
fn https_from_nginx_with_a_test_ca() {
    if !have_nginx("https_from_nginx_with_a_test_ca") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = common::test_ca(work.path(), "https_from_nginx_with_a_test_ca")
    else {
        return;
    };
    let root = work.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("f.bin"), pattern(2 << 20)).unwrap();
    let tls_port = free_port();
    let nginx = Nginx::start(
        &root,
        work.path(),
        &format!("  listen 127.0.0.1:{tls_port} ssl;\n  ssl_certificate {cert};\n  ssl_certificate_key {key};\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "nginx's TLS port did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("https://localhost:{tls_port}/f.bin");
    let out = tempfile::tempdir().unwrap();
    let o = get(out.path(), &["--cacert", &ca, &url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out.path().join("f.bin")).unwrap(),
        pattern(2 << 20)
    );
    let o = zcopy()
        .args(["get", "-o", "g.bin", &url])
        .env("SSL_CERT_FILE", &cert)
        .current_dir(out.path())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.path().join("g.bin").exists());
    drop(nginx);
}

/// Waits (20 s at most) until the part file `part` holds `bytes` bytes or more.
fn await_part(part: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(part).map_or(0, |m| m.len()) < bytes {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}
