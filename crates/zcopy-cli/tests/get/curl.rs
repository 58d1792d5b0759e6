//! `get` spoken as curl and wget are: their flags against the same servers, with the
//! real curl (and wget) as the control where a flag is theirs.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Environment variables for a client.
type Env<'a> = &'a [(&'a str, &'a str)];

/// `curl ARGS` in `dir` with the proxy variables `env` and no others.
fn curl(dir: &Path, args: &[&str], env: Env<'_>) -> Output {
    let mut command = Command::new("curl");
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A server that records each request's head and answers `ok`.
fn recording() -> (Scripted, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = Scripted::start(move |request, s| {
        log.lock().unwrap().push(request.to_string());
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    });
    (server, seen)
}

/// A server whose first answer is cut after 1000 of 1,000,000 bytes (ETag "v1"),
/// and which answers a resume (`Range: bytes=1000-` with `If-Range`) with the rest.
fn cut_then_resumable() -> Scripted {
    Scripted::start(|request, s| {
        let body = pattern(1_000_000);
        if request.contains("Range: bytes=1000-\r\n") && request.contains("If-Range: \"v1\"\r\n") {
            let _ = s.write_all(format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes 1000-999999/1000000\r\nETag: \"v1\"\r\n\r\n", body.len() - 1000).as_bytes());
            let _ = s.write_all(&body[1000..]);
        } else {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nETag: \"v1\"\r\n\r\n");
            let _ = s.write_all(&body[..1000]);
        }
    })
}

#[test]
fn curls_resume_spellings_and_wgets() {
    let server = cut_then_resumable();
    let url = format!("http://{}/e", server.addr);
    let dir = tempfile::tempdir().unwrap();
    for (name, resume) in [("curl.bin", &["-C", "-"][..]), ("wget.bin", &["-c"][..])] {
        let out = get(dir.path(), &["-o", name, &url]);
        assert_eq!(code(&out), 18, "{}", stderr(&out));
        let mut args = resume.to_vec();
        args.extend(["--json", "-o", name, &url]);
        let out = get(dir.path(), &args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert_eq!(json(&out)["resumed_from"], 1000);
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            pattern(1_000_000)
        );
    }
    assert_eq!(names_in(dir.path()), ["curl.bin", "wget.bin"]);
}

/// Each `-o` names the file of one URL, in order; URLs past the last `-o` are saved
/// under their names (curl writes those to stdout unless `-O`).
#[test]
fn each_o_names_the_file_of_one_url() {
    let site = Site::new();
    let server = site.serve();
    let url = |name: &str| format!("http://{}/{name}", server.addr);
    let (hello, mid, big) = (url("hello.txt"), url("mid.bin"), url("big.bin"));
    let out = get(
        &site.out(),
        &["-q", "-o", "one.txt", &hello, "-o", "two.bin", &mid, &big],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(names_in(&site.out()), ["big.bin", "one.txt", "two.bin"]);
    assert_eq!(
        std::fs::read(site.out().join("two.bin")).unwrap(),
        pattern(1_000_000)
    );
    // --create-dirs makes -o's directories (0750, as curl); --output-dir is -P.
    let out = get(
        &site.out(),
        &["-q", "--create-dirs", "-o", "new/deeper/h.txt", &hello],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(site.out().join("new/deeper/h.txt").is_file());
    let mode = std::fs::metadata(site.out().join("new/deeper"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o750
    );
    let out = get(&site.out(), &["-q", "--output-dir", "new", &hello]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(site.out().join("new/hello.txt").is_file());
    let out = get(&site.out(), &["-q", "-o", "missing/h.txt", &hello]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    if have("curl", "each_o_names_the_file_of_one_url") {
        let peers = tempfile::tempdir().unwrap();
        let args = ["-s", "-o", "one.txt", &hello, "-o", "two.bin", &mid];
        assert_eq!(code(&curl(peers.path(), &args, &[])), 0);
        assert_eq!(names_in(peers.path()), ["one.txt", "two.bin"]);
        let args = ["-s", "--create-dirs", "-o", "new/deeper/h.txt", &hello];
        assert_eq!(code(&curl(peers.path(), &args, &[])), 0);
        let mode = std::fs::metadata(peers.path().join("new/deeper"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o750
        );
    }
}

/// `-s` prints nothing, not even the error; `-sS` the error alone: as curl.
#[test]
fn silent_and_show_error_as_curl() {
    let site = Site::new();
    let server = site.serve();
    let missing = format!("http://{}/missing", server.addr);
    let hello = format!("http://{}/hello.txt", server.addr);
    let out = get(&site.out(), &["-L", "-f", "-s", &hello]);
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
    assert!(site.out().join("hello.txt").is_file());
    let out = get(&site.out(), &["-L", "-f", "-s", &missing]);
    assert_eq!((code(&out), stderr(&out)), (22, String::new()));
    let out = get(&site.out(), &["-sS", "-o", "m", &missing]);
    assert_eq!(code(&out), 22);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert_eq!(names_in(&site.out()), ["hello.txt"]);
    if have("curl", "silent_and_show_error_as_curl") {
        let c = curl(&site.out(), &["-f", "-s", "-o", "c", &missing], &[]);
        assert_eq!((code(&c), stderr(&c)), (22, String::new()));
        let c = curl(&site.out(), &["-f", "-sS", "-o", "c", &missing], &[]);
        assert_eq!((code(&c), stderr(&c).lines().count()), (22, 1));
    }
}

/// The lines of `request` that name `header` (case-insensitive).
fn lines_of<'a>(request: &'a str, header: &str) -> Vec<&'a str> {
    request
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(header))
        })
        .collect()
}

#[test]
fn headers_agent_and_basic_auth_as_curl_sends_them() {
    let (server, seen) = recording();
    let url = format!("http://{}/h", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "-H",
        "Host: example.test",
        "-H",
        "X-One: 1",
        "-H",
        "Accept:",
        "-A",
        "agent/1",
        "-u",
        "user:pass",
        "-e",
        "http://from.test/",
    ];
    let mut args = flags.to_vec();
    args.extend(["-o", "h", &url]);
    let out = get(dir.path(), &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut clients = vec!["zcopy"];
    if have("curl", "headers_agent_and_basic_auth_as_curl_sends_them") {
        let c = curl(dir.path(), &args, &[]);
        assert_eq!(code(&c), 0, "{}", stderr(&c));
        clients.push("curl");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), clients.len());
    for (client, request) in clients.iter().zip(&seen) {
        assert_eq!(
            lines_of(request, "host"),
            ["Host: example.test"],
            "{client}"
        );
        assert_eq!(lines_of(request, "x-one"), ["X-One: 1"], "{client}");
        assert_eq!(
            lines_of(request, "user-agent"),
            ["User-Agent: agent/1"],
            "{client}"
        );
        // base64("user:pass")
        assert_eq!(
            lines_of(request, "authorization"),
            ["Authorization: Basic dXNlcjpwYXNz"],
            "{client}"
        );
        assert!(
            lines_of(request, "accept").is_empty(),
            "{client}: {request}"
        );
        assert_eq!(
            lines_of(request, "referer"),
            ["Referer: http://from.test/"],
            "{client}"
        );
    }
    for bad in [
        &["-H", "no colon"],
        &["-u", "user"],
        &["-A", "a\r\nX-Evil: 1"],
    ] {
        let out = get(dir.path(), &[bad[0], bad[1], &url]);
        assert_eq!(code(&out), 2, "{bad:?}: {}", stderr(&out));
    }
}

/// A redirect to another origin does not carry the credentials, as curl (since
/// 7.83) does not.
#[test]
fn credentials_stay_with_the_first_origin() {
    let (other, seen) = recording();
    let to = format!("http://{}/x", other.addr);
    let redirect = Scripted::start(move |_, s| {
        let _ = s.write_all(
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        );
    });
    let url = format!("http://{}/a", redirect.addr);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-L",
        "-u",
        "user:pass",
        "-H",
        "X-Kept: yes",
        "-o",
        "r",
        &url,
    ];
    let out = get(dir.path(), &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut clients = 1;
    if have("curl", "credentials_stay_with_the_first_origin") {
        let c = curl(dir.path(), &args, &[]);
        assert_eq!(code(&c), 0, "{}", stderr(&c));
        clients += 1;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), clients);
    for request in &seen {
        assert!(lines_of(request, "authorization").is_empty(), "{request}");
        assert_eq!(lines_of(request, "x-kept"), ["X-Kept: yes"], "{request}");
    }
}

#[test]
fn head_prints_the_response_head_and_writes_nothing() {
    let site = Site::new();
    let server = site.serve();
    let url = format!("http://{}/hello.txt", server.addr);
    let out = get(&site.out(), &["-I", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let head = String::from_utf8(out.stdout).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 13\r\n"), "{head}");
    assert!(names_in(&site.out()).is_empty());
    if have("curl", "head_prints_the_response_head_and_writes_nothing") {
        let c = curl(&site.out(), &["-sI", &url], &[]);
        // The same lines but the date (a second may pass between the two).
        let lines = |text: &str| -> Vec<String> {
            text.split("\r\n")
                .filter(|l| !l.starts_with("Date:"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(lines(&head), lines(&String::from_utf8_lossy(&c.stdout)));
    }
    // Into -o FILE, as curl writes it.
    let out = get(&site.out(), &["-I", "-o", "head.txt", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let saved = std::fs::read_to_string(site.out().join("head.txt")).unwrap();
    assert!(saved.starts_with("HTTP/1.1 200 OK\r\n"), "{saved}");
    std::fs::remove_file(site.out().join("head.txt")).unwrap();
    // A missing file: the head is printed, and the exit is curl -f's 22.
    let out = get(&site.out(), &["-I", &format!("http://{}/no", server.addr)]);
    assert_eq!(code(&out), 22);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 404"));
    assert!(names_in(&site.out()).is_empty());
}

#[test]
fn a_range_goes_to_the_file_as_curl_writes_it() {
    let site = Site::new();
    let server = site.serve();
    let url = format!("http://{}/mid.bin", server.addr);
    let whole = pattern(1_000_000);
    for (range, want) in [
        ("100-199", &whole[100..200]),
        ("-10", &whole[999_990..]),
        ("999000-", &whole[999_000..]),
    ] {
        let out = get(&site.out(), &["-r", range, "-o", "r.bin", &url]);
        assert_eq!(code(&out), 0, "{range}: {}", stderr(&out));
        assert_eq!(
            std::fs::read(site.out().join("r.bin")).unwrap(),
            want,
            "{range}"
        );
        if have("curl", "a_range_goes_to_the_file_as_curl_writes_it") {
            let c = curl(&site.out(), &["-s", "-r", range, "-o", "c.bin", &url], &[]);
            assert_eq!(code(&c), 0);
            assert_eq!(
                std::fs::read(site.out().join("c.bin")).unwrap(),
                want,
                "curl {range}"
            );
            std::fs::remove_file(site.out().join("c.bin")).unwrap();
        }
    }
    assert_eq!(names_in(&site.out()), ["r.bin"]);
    let out = get(&site.out(), &["-r", "x-y", &url]);
    assert_eq!(code(&out), 2);
}

/// A 503, then a body cut after 1000 bytes, then the rest: `--retry` goes on
/// through both and resumes from what arrived.
#[test]
fn retries_resume_from_what_arrived() {
    let answers = Arc::new(AtomicUsize::new(0));
    let count = answers.clone();
    let server = Scripted::start(move |request, s| {
        let body = pattern(1_000_000);
        match count.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let _ =
                    s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            }
            1 => {
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nETag: \"v1\"\r\n\r\n",
                );
                let _ = s.write_all(&body[..1000]);
            }
            _ => {
                assert!(request.contains("Range: bytes=1000-\r\n"), "{request}");
                let _ = s.write_all(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 999000\r\nContent-Range: bytes 1000-999999/1000000\r\nETag: \"v1\"\r\n\r\n");
                let _ = s.write_all(&body[1000..]);
            }
        }
    });
    let url = format!("http://{}/r", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = get(
        dir.path(),
        &[
            "--retry",
            "3",
            "--retry-delay",
            "0.1",
            "--json",
            "-o",
            "r.bin",
            &url,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("will retry in").count(),
        2,
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out)["resumed_from"], 1000);
    assert_eq!(
        std::fs::read(dir.path().join("r.bin")).unwrap(),
        pattern(1_000_000)
    );
    assert_eq!(answers.load(Ordering::SeqCst), 3);

    // Refused: retried (curl asks for --retry-connrefused), then curl's 7.
    let refused = format!("http://127.0.0.1:{}/x", free_port());
    let out = get(
        dir.path(),
        &["--retry", "1", "--retry-delay", "0.1", &refused],
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("will retry in").count(),
        1,
        "{}",
        stderr(&out)
    );
    // curl's spelling for the same is accepted; --retry-max-time stops the retries
    // once it has passed since the first attempt (a microsecond: before the second).
    let args = [
        "--retry",
        "3",
        "--retry-delay",
        "0.1",
        "--retry-connrefused",
    ];
    let out = get(
        dir.path(),
        &[&args[..], &["--retry-max-time", "0.000001", &refused]].concat(),
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(!stderr(&out).contains("will retry"), "{}", stderr(&out));
    // A 404 is not transient, unless --retry-all-errors.
    let site = Site::new();
    let serve = site.serve();
    let missing = format!("http://{}/missing", serve.addr);
    let out = get(dir.path(), &["--retry", "2", &missing]);
    assert_eq!(code(&out), 22);
    assert!(!stderr(&out).contains("will retry"), "{}", stderr(&out));
    let out = get(
        dir.path(),
        &[
            "--retry",
            "1",
            "--retry-delay",
            "0.1",
            "--retry-all-errors",
            &missing,
        ],
    );
    assert_eq!(code(&out), 22);
    assert_eq!(
        stderr(&out).matches("will retry in").count(),
        1,
        "{}",
        stderr(&out)
    );
}

/// A server that answers 503 (with `Retry-After: 0`) once, then `ok`; how many
/// answers it gave.
fn unavailable_once() -> (Scripted, Arc<AtomicUsize>) {
    let answers = Arc::new(AtomicUsize::new(0));
    let count = answers.clone();
    let server = Scripted::start(move |_, s| {
        let reply: &[u8] = if count.fetch_add(1, Ordering::SeqCst) == 0 {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        let _ = s.write_all(reply);
    });
    (server, answers)
}

/// curl retries a 503 too: the control for the status rule.
#[test]
fn a_503_is_retried_as_curl_does() {
    let dir = tempfile::tempdir().unwrap();
    let (server, answers) = unavailable_once();
    let url = format!("http://{}/r", server.addr);
    // Retry-After (0 s here) is waited instead of --retry-delay, as curl does.
    let out = get(
        dir.path(),
        &["--retry", "1", "--retry-delay", "600", "-o", "z", &url],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("will retry in 0 seconds, 1 retry left"),
        "{}",
        stderr(&out)
    );
    assert_eq!(answers.load(Ordering::SeqCst), 2);
    assert_eq!(std::fs::read(dir.path().join("z")).unwrap(), b"ok");
    if have("curl", "a_503_is_retried_as_curl_does") {
        let (server, answers) = unavailable_once();
        let url = format!("http://{}/r", server.addr);
        let args = ["-sf", "--retry", "1", "--retry-delay", "1", "-o", "c", &url];
        let c = curl(dir.path(), &args, &[]);
        assert_eq!(code(&c), 0, "{}", stderr(&c));
        assert_eq!(answers.load(Ordering::SeqCst), 2);
    }
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn the_files_time_comes_from_last_modified() {
    let site = Site::new();
    let then = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(site.www().join("hello.txt"))
        .unwrap()
        .set_modified(then)
        .unwrap();
    let server = site.serve();
    let url = format!("http://{}/hello.txt", server.addr);
    let out = get(&site.out(), &["-q", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mtime(&site.out().join("hello.txt")), then);
    let out = get(&site.out(), &["-R", "-o", "r.txt", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mtime(&site.out().join("r.txt")), then);
    let out = get(&site.out(), &["--no-remote-time", "-o", "now.txt", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(mtime(&site.out().join("now.txt")) > then);
    // wget does so by default, curl with -R.
    let peers = tempfile::tempdir().unwrap();
    if have("wget", "the_files_time_comes_from_last_modified") {
        let w = Command::new("wget")
            .args(["-q", &url])
            .current_dir(peers.path())
            .output()
            .unwrap();
        assert!(w.status.success());
        assert_eq!(mtime(&peers.path().join("hello.txt")), then);
    }
    if have("curl", "the_files_time_comes_from_last_modified") {
        let c = curl(peers.path(), &["-s", "-R", "-o", "c.txt", &url], &[]);
        assert_eq!(code(&c), 0);
        assert_eq!(mtime(&peers.path().join("c.txt")), then);
    }
}

/// A proxy on 127.0.0.1 that relays `CONNECT` tunnels and absolute-form requests,
/// recording each request line and `Proxy-Authorization` line.
struct Proxy {
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    _thread: JoinHandle<()>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = lines.clone();
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let log = log.clone();
                std::thread::spawn(move || Proxy::relay(client, &log));
            }
        });
        Proxy {
            addr,
            lines,
            _thread: thread,
        }
    }

    fn relay(mut client: TcpStream, log: &Mutex<Vec<String>>) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let (line, rest) = head.split_once("\r\n").unwrap();
        log.lock().unwrap().push(line.to_string());
        let credentials = rest
            .split("\r\n")
            .filter(|l| l.starts_with("Proxy-Authorization:"));
        log.lock().unwrap().extend(credentials.map(str::to_string));
        let mut words = line.split(' ');
        let (method, target) = (words.next().unwrap(), words.next().unwrap());
        let upstream = if method == "CONNECT" {
            let upstream = TcpStream::connect(target).unwrap();
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            upstream
        } else {
            let rest_of_url = target.strip_prefix("http://").unwrap();
            let (host, path) = rest_of_url.split_at(rest_of_url.find('/').unwrap());
            let mut upstream = TcpStream::connect(host).unwrap();
            upstream
                .write_all(format!("{method} {path} HTTP/1.1\r\n{rest}").as_bytes())
                .unwrap();
            upstream
        };
        let (mut up_read, mut client_write) =
            (upstream.try_clone().unwrap(), client.try_clone().unwrap());
        let down = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_read, &mut client_write);
            let _ = client_write.shutdown(std::net::Shutdown::Both);
        });
        let mut upstream = upstream;
        let _ = std::io::copy(&mut client, &mut upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
        let _ = down.join();
    }

    fn lines(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

#[test]
fn http_proxy_and_no_proxy_as_curl_reads_them() {
    let site = Site::new();
    let server = site.serve();
    let proxy = Proxy::start();
    let url = format!("http://{}/hello.txt", server.addr);
    let via = format!("http://{}", proxy.addr);
    let want = [format!("GET {url} HTTP/1.1")];
    let with_credentials = format!("http://u%40x:pw@{}", proxy.addr);
    let cases: [(Env<'_>, bool); 4] = [
        (&[("http_proxy", &via)], true),
        (&[("all_proxy", &proxy.addr)], true),
        // Upper-case HTTP_PROXY is not read (curl's rule against httpoxy).
        (&[("HTTP_PROXY", &via)], false),
        (
            &[("http_proxy", &via), ("no_proxy", "localhost,127.0.0.1")],
            false,
        ),
    ];
    let curl_here = have("curl", "http_proxy_and_no_proxy_as_curl_reads_them");
    for (env, proxied) in cases {
        let out = get_with(&site.out(), &["-q", "-o", "p.txt", &url], env);
        assert_eq!(code(&out), 0, "{env:?}: {}", stderr(&out));
        assert_eq!(
            std::fs::read(site.out().join("p.txt")).unwrap(),
            b"hello, world\n"
        );
        let seen = proxy.lines();
        if proxied {
            assert_eq!(seen, want, "{env:?}");
        } else {
            assert!(seen.is_empty(), "{env:?}: {seen:?}");
        }
        if curl_here {
            let c = curl(&site.out(), &["-s", "-o", "c.txt", &url], env);
            assert_eq!(code(&c), 0, "{env:?}");
            assert_eq!(proxy.lines().len(), usize::from(proxied), "curl {env:?}");
        }
    }
    // curl's -x and --noproxy, which win over the environment; -x "" is no proxy.
    let flags: [(&[&str], Env<'_>, bool); 3] = [
        (&["-x", &via], &[], true),
        (&["-x", ""], &[("http_proxy", &via)], false),
        (&["--noproxy", "127.0.0.1"], &[("http_proxy", &via)], false),
    ];
    for (extra, env, proxied) in flags {
        let out = get_with(
            &site.out(),
            &[extra, &["-q", "-o", "p.txt", &url]].concat(),
            env,
        );
        assert_eq!(code(&out), 0, "{extra:?}: {}", stderr(&out));
        assert_eq!(proxy.lines().len(), usize::from(proxied), "{extra:?}");
        if curl_here {
            let c = curl(
                &site.out(),
                &[extra, &["-s", "-o", "c.txt", &url]].concat(),
                env,
            );
            assert_eq!(code(&c), 0, "{extra:?}");
            assert_eq!(proxy.lines().len(), usize::from(proxied), "curl {extra:?}");
        }
    }
    // Credentials in the proxy's URL, %-decoded, as curl sends them.
    let env = [("http_proxy", with_credentials.as_str())];
    // base64("u@x:pw")
    let want = [
        want[0].clone(),
        "Proxy-Authorization: Basic dUB4OnB3".into(),
    ];
    let out = get_with(&site.out(), &["-q", "-o", "p.txt", &url], &env);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(proxy.lines(), want);
    if curl_here {
        let c = curl(&site.out(), &["-s", "-o", "c.txt", &url], &env);
        assert_eq!(code(&c), 0, "{}", stderr(&c));
        assert_eq!(proxy.lines(), want, "curl");
    }
    // A proxy that is not there: curl's 7; one whose name does not resolve: 5.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let out = get_with(&site.out(), &["-o", "g", &url], &[("http_proxy", &gone)]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let nowhere = [("http_proxy", "http://no-such-proxy.invalid:3128")];
    let out = get_with(&site.out(), &["-o", "g", &url], &nowhere);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[test]
fn https_proxy_connect_tunnel() {
    if !have_nginx("https_proxy_connect_tunnel") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = common::test_ca(work.path(), "https_proxy_connect_tunnel") else {
        return;
    };
    let root = work.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("f.bin"), pattern(2 << 20)).unwrap();
    let tls_port = free_port();
    let _nginx = Nginx::start(
        &root,
        work.path(),
        &format!("  listen 127.0.0.1:{tls_port} ssl;\n  ssl_certificate {cert};\n  ssl_certificate_key {key};\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "nginx's TLS port did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    let proxy = Proxy::start();
    let url = format!("https://localhost:{tls_port}/f.bin");
    let via = format!("http://{}", proxy.addr);
    let out = tempfile::tempdir().unwrap();
    let connect = format!("CONNECT localhost:{tls_port} HTTP/1.1");
    let with_credentials = format!("http://u:pw@{}", proxy.addr);
    // base64("u:pw")
    let credentials = "Proxy-Authorization: Basic dTpwdw==".to_string();
    for (env, want) in [
        ([("https_proxy", via.as_str())], vec![connect.clone()]),
        ([("HTTPS_PROXY", via.as_str())], vec![connect.clone()]),
        (
            [("https_proxy", with_credentials.as_str())],
            vec![connect.clone(), credentials],
        ),
    ] {
        let o = get_with(out.path(), &["-q", "--cacert", &ca, &url], &env);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(
            std::fs::read(out.path().join("f.bin")).unwrap(),
            pattern(2 << 20)
        );
        assert_eq!(proxy.lines(), want);
        if have("curl", "https_proxy_connect_tunnel") {
            let c = curl(
                out.path(),
                &["-s", "--cacert", &ca, "-o", "c.bin", &url],
                &env,
            );
            assert_eq!(code(&c), 0, "{}", stderr(&c));
            assert_eq!(proxy.lines(), want, "curl");
        }
    }
}

/// Answers once two requests have arrived (or after 10 s): "together" proves the
/// URLs were fetched at once, whatever the machine's speed.
fn rendezvous() -> Scripted {
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    Scripted::start(move |_, s| {
        let (count, cv) = &*arrived;
        let mut n = count.lock().unwrap();
        *n += 1;
        cv.notify_all();
        let (n, _) = cv
            .wait_timeout_while(n, Duration::from_secs(10), |n| *n < 2)
            .unwrap();
        let body: &[u8] = if *n >= 2 { b"together" } else { b"alone..." };
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\n");
        let _ = s.write_all(body);
    })
}

#[test]
fn parallel_fetches_several_urls_at_once_as_curl() {
    let server = rendezvous();
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("http://{}/{n}", server.addr))
        .collect();
    let mut args = vec!["-Z", "--parallel-max", "2", "-q"];
    args.extend(urls.iter().map(String::as_str));
    let out = get(dir.path(), &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for name in ["a", "b", "c"] {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), b"together");
    }
    // curl waits to see whether the first connection multiplexes unless told not to.
    if have("curl", "parallel_fetches_several_urls_at_once_as_curl") {
        let server = rendezvous();
        let peers = tempfile::tempdir().unwrap();
        let a = format!("http://{}/a", server.addr);
        let b = format!("http://{}/b", server.addr);
        let c = curl(
            peers.path(),
            &[
                "-s",
                "-Z",
                "--parallel-immediate",
                "--parallel-max",
                "2",
                "-O",
                &a,
                "-O",
                &b,
            ],
            &[],
        );
        assert_eq!(code(&c), 0);
        assert_eq!(std::fs::read(peers.path().join("a")).unwrap(), b"together");
    }
}

/// `-w` says what curl's says for a success, an HTTP error and a refused connection.
#[test]
fn write_out_as_curl() {
    let site = Site::new();
    let server = site.serve();
    let hello = format!("http://{}/hello.txt", server.addr);
    let missing = format!("http://{}/missing", server.addr);
    let refused = format!("http://127.0.0.1:{}/x", free_port());
    let format = "%{http_code} %{size_download} %{exitcode} %{url_effective}\\n";
    let cases = [
        (&hello, 0, format!("200 13 0 {hello}\n")),
        (&missing, 22, format!("404 0 22 {missing}\n")),
        (&refused, 7, format!("000 0 7 {refused}\n")),
    ];
    let curl_here = have("curl", "write_out_as_curl");
    for (url, exit, want) in &cases {
        let out = get(&site.out(), &["-s", "-o", "w", "-w", format, url]);
        assert_eq!(code(&out), *exit, "{}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), *want);
        if curl_here {
            let c = curl(&site.out(), &["-sf", "-o", "c", "-w", format, url], &[]);
            assert_eq!(code(&c), *exit);
            assert_eq!(String::from_utf8_lossy(&c.stdout), *want, "curl");
        }
    }
    let out = get(
        &site.out(),
        &[
            "-q",
            "-o",
            "w",
            "-w",
            "%{filename_effective} %{nope}",
            &hello,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "w ");
    assert!(
        stderr(&out).contains("unknown --write-out variable: 'nope'"),
        "{}",
        stderr(&out)
    );
}
