//! `zcopy serve` driven by real curl (and raw sockets for what curl will not send):
//! bodies byte for byte through every engine, HEAD, ranges, conditional requests,
//! keep-alive, traversal, listings, hostile requests, timeouts and shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{have, pattern, Server};

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("list")).unwrap();
    std::fs::write(root.join("hello.txt"), b"hello, world\n").unwrap();
    std::fs::write(root.join("big.bin"), pattern((3 << 20) + 7)).unwrap();
    std::fs::write(root.join("docs/index.html"), b"<p>index</p>\n").unwrap();
    std::fs::write(root.join("list/b <&>.txt"), b"b").unwrap();
    std::fs::write(root.join("list/a.txt"), b"a").unwrap();
    std::fs::write(dir.path().join("secret"), b"outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("escape")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("inside")).unwrap();
    dir
}

fn serve(dir: &Path, extra: &[&str]) -> Server {
    Server::serve(&dir.join("www"), 2, extra)
}

/// curl ARGS; returns (HTTP status, headers, body).
fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let got = common::curl(args);
    (got.status, got.headers, got.body)
}

/// The parts of a `multipart/byteranges` body: (Content-Range, bytes) each; checks
/// that Content-Length is the body's length.
fn multipart(headers: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let kind = header(headers, "content-type").unwrap();
    let boundary = kind
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{kind}"));
    assert_eq!(
        header(headers, "content-length"),
        Some(&*body.len().to_string())
    );
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let first = find(rest, delimiter.as_bytes()).unwrap();
    rest = &rest[first + delimiter.len()..];
    while !rest.starts_with(b"--") {
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&rest[..head_end]).unwrap();
        let range = header(head, "content-range").unwrap().to_string();
        let after = &rest[head_end + 4..];
        let next = find(after, format!("\r\n{delimiter}").as_bytes()).unwrap();
        parts.push((range, after[..next].to_vec()));
        rest = &after[next + 2 + delimiter.len()..];
    }
    assert_eq!(rest, b"--\r\n");
    parts
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (n, value) = l.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(value.trim())
    })
}

#[test]
fn full_bodies_through_every_engine() {
    if !have("curl", "full_bodies_through_every_engine") {
        return;
    }
    let dir = site();
    let big = pattern((3 << 20) + 7);
    for engine in [
        "auto",
        "sendfile",
        "splice",
        "mmap",
        "read-write",
        "io-uring",
    ] {
        let server = serve(dir.path(), &["--engine", engine]);
        let (status, headers, body) = curl(&[&format!("http://{}/big.bin", server.addr)]);
        assert_eq!(status, 200, "{engine}");
        assert!(body == big, "{engine}: {} bytes", body.len());
        assert_eq!(
            header(&headers, "content-length"),
            Some(&*big.len().to_string())
        );
        assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
        let (_, headers, body) = curl(&[&format!("http://{}/hello.txt", server.addr)]);
        assert_eq!(body, b"hello, world\n");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(header(&headers, "etag").is_some() && header(&headers, "last-modified").is_some());
    }
}

#[test]
fn head_ranges_and_conditional_requests() {
    if !have("curl", "head_ranges_and_conditional_requests") {
        return;
    }
    let dir = site();
    let server = serve(dir.path(), &[]);
    let url = format!("http://{}/big.bin", server.addr);
    let big = pattern((3 << 20) + 7);
    let size = big.len();

    let (status, headers, _) = curl(&["-I", &url]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-length"), Some(&*size.to_string()));
    let head = raw(
        &server.addr,
        b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.ends_with("\r\n\r\n"), "HEAD sends no body: {head}");

    for (range, start, end) in [
        ("0-99", 0, 99),
        ("1000-2000", 1000, 2000),
        ("-500", size - 500, size - 1),
        (&*format!("{}-", size - 10), size - 10, size - 1),
        (&*format!("5-{}", size + 100), 5, size - 1),
    ] {
        let (status, headers, body) = curl(&["-r", range, &url]);
        assert_eq!(status, 206, "{range}");
        assert!(body == big[start..=end], "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some(&*format!("bytes {start}-{end}/{size}"))
        );
    }
    let (status, headers, _) = curl(&["-r", &format!("{size}-"), &url]);
    assert_eq!(status, 416);
    assert_eq!(
        header(&headers, "content-range"),
        Some(&*format!("bytes */{size}"))
    );
    // Several ranges: one multipart/byteranges body, each part with its range.
    let (status, headers, body) = curl(&["-r", "0-1,1000-2999,-5", &url]);
    assert_eq!(status, 206);
    let parts = multipart(&headers, &body);
    let want = [(0, 1), (1000, 2999), (size - 5, size - 1)];
    assert_eq!(parts.len(), want.len());
    for ((range, bytes), (start, end)) in parts.iter().zip(want) {
        assert_eq!(range, &format!("bytes {start}-{end}/{size}"));
        assert!(bytes[..] == big[start..=end], "{range}");
    }
    // Overlapping ranges are coalesced into one.
    let (status, headers, body) = curl(&["-r", "0-9,5-19", &url]);
    assert_eq!((status, body.len()), (206, 20));
    assert_eq!(
        header(&headers, "content-range"),
        Some(&*format!("bytes 0-19/{size}"))
    );

    let (_, headers, _) = curl(&["-I", &url]);
    let etag = header(&headers, "etag").unwrap().to_string();
    let modified = header(&headers, "last-modified").unwrap().to_string();
    let (status, _, body) = curl(&["-H", &format!("If-None-Match: {etag}"), &url]);
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = curl(&["-H", "If-None-Match: \"other\"", &url]);
    assert_eq!(status, 200);
    let (status, _, _) = curl(&["-H", &format!("If-Modified-Since: {modified}"), &url]);
    assert_eq!(status, 304);
    let (status, _, _) = curl(&[
        "-H",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
        &url,
    ]);
    assert_eq!(status, 200);
}

/// A resume after the file changed: `If-Range` with a validator of the old version
/// gets 200 and the whole new file (RFC 9110 §13.1.5), never the new file's tail.
#[test]
fn if_range_resumes_only_the_same_version() {
    if !have("curl", "if_range_resumes_only_the_same_version") {
        return;
    }
    let dir = site();
    let path = dir.path().join("www/big.bin");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let set_old = || {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap()
    };
    set_old();
    let server = serve(dir.path(), &[]);
    let url = format!("http://{}/big.bin", server.addr);
    let big = pattern((3 << 20) + 7);
    let (_, headers, _) = curl(&["-I", &url]);
    let etag = header(&headers, "etag").unwrap().to_string();
    let modified = header(&headers, "last-modified").unwrap().to_string();

    let if_range = |value: &str| curl(&["-r", "100-", "-H", &format!("If-Range: {value}"), &url]);
    for matching in [&etag, &modified] {
        let (status, headers, body) = if_range(matching);
        assert_eq!(status, 206, "{matching}");
        assert!(body == big[100..], "{matching}: {} bytes", body.len());
        assert!(header(&headers, "content-range").is_some());
    }
    let weak = format!("W/{etag}");
    for stale in [
        "\"stale\"",
        weak.as_str(),
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "not a date",
    ] {
        let (status, headers, body) = if_range(stale);
        assert_eq!(status, 200, "{stale}");
        assert!(body == big, "{stale}: {} bytes", body.len());
        assert_eq!(header(&headers, "content-range"), None, "{stale}");
    }

    // The file changes between the two halves of a download: the resume that
    // names the first half's ETag gets the new file whole.
    let new = pattern(5000);
    std::fs::write(&path, &new).unwrap();
    set_old();
    // The open-file cache trusts what it looked up for a second.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, body) = if_range(&etag);
    assert_eq!(status, 200);
    assert!(body == new, "{} bytes", body.len());
}

/// Dot names are neither listed nor served unless `--hidden`; part files and
/// manifests never are, whatever the flags, through any path component.
#[test]
fn dot_names_part_files_and_manifests_are_not_served() {
    if !have("curl", "dot_names_part_files_and_manifests_are_not_served") {
        return;
    }
    let dir = site();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join(".git")).unwrap();
    std::fs::write(www.join(".git/config"), b"[core]\n").unwrap();
    std::fs::write(www.join(".env"), b"KEY=1\n").unwrap();
    std::fs::write(www.join("list/.hidden"), b"h").unwrap();
    let in_flight = [
        ".up.bin.123.4.zcopy-part",
        ".cp.bin.123-4.zcopy-part",
        "get.bin.zcopy-part",
        ".big.iso.zcopy-manifest",
    ];
    for name in in_flight {
        std::fs::write(www.join(name), b"half").unwrap();
    }
    let listed = |addr: &str| -> Vec<String> {
        let (_, _, body) = curl(&["-H", "Accept: application/json", &format!("http://{addr}/")]);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut names: Vec<String> = json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let status =
        |addr: &str, path: &str| curl(&["--path-as-is", &format!("http://{addr}{path}")]).0;

    let plain = serve(dir.path(), &[]);
    let a = &plain.addr;
    for path in [
        "/.env",
        "/.git/config",
        "/.git/",
        "/%2egit/config",
        "/list/.hidden",
    ] {
        assert_eq!(status(a, path), 404, "{path}");
    }
    for name in in_flight {
        assert_eq!(status(a, &format!("/{name}")), 404, "{name}");
    }
    assert_eq!(status(a, "/hello.txt"), 200);
    let names = listed(a);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('.') && !n.contains("zcopy-")),
        "{names:?}"
    );
    assert!(names.contains(&"hello.txt".to_string()), "{names:?}");
    let (_, _, page) = curl(&[&format!("http://{a}/list/")]);
    assert!(!String::from_utf8_lossy(&page).contains(".hidden"));
    // A mirror (wget -r follows the listing's links) takes none of them.
    if have(
        "wget",
        "dot_names_part_files_and_manifests_are_not_served (wget)",
    ) {
        let mirror = dir.path().join("mirror");
        let o = Command::new("wget")
            .args(["-q", "-r", "-np", "-nH", "-e", "robots=off", "-P"])
            .arg(&mirror)
            .arg(format!("http://{a}/"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(mirror.join("hello.txt").is_file() && mirror.join("list/a.txt").is_file());
        let mut names = Vec::new();
        let mut dirs = vec![mirror.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                names.push(e.file_name().into_string().unwrap());
                if e.file_type().unwrap().is_dir() {
                    dirs.push(e.path());
                }
            }
        }
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with('.') && !n.contains("zcopy-")),
            "{names:?}"
        );
    }

    let shown = serve(dir.path(), &["--hidden"]);
    let a = &shown.addr;
    assert_eq!(curl(&[&format!("http://{a}/.git/config")]).2, b"[core]\n");
    assert_eq!(status(a, "/.env"), 200);
    for name in in_flight {
        assert_eq!(status(a, &format!("/{name}")), 404, "--hidden {name}");
    }
    let names = listed(a);
    assert!(
        names.contains(&".env".to_string()) && names.contains(&".git".to_string()),
        "{names:?}"
    );
    assert!(names.iter().all(|n| !n.contains("zcopy-")), "{names:?}");
}

/// Text goes out as UTF-8 (`charset=utf-8` on every `text/*` type, a multipart
/// part's too); other types as they are.
#[test]
fn text_types_say_utf_8() {
    if !have("curl", "text_types_say_utf_8") {
        return;
    }
    let dir = site();
    let www = dir.path().join("www");
    std::fs::write(www.join("data.json"), b"{}\n").unwrap();
    std::fs::write(www.join("page.css"), "p::after{content:\"é\"}\n").unwrap();
    let server = serve(dir.path(), &[]);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    for (path, want) in [
        ("/hello.txt", "text/plain; charset=utf-8"),
        ("/docs/", "text/html; charset=utf-8"),
        ("/page.css", "text/css; charset=utf-8"),
        ("/list/", "text/html; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/big.bin", "application/octet-stream"),
    ] {
        let (status, headers, _) = curl(&[&url(path)]);
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "content-type"), Some(want), "{path}");
    }
    let (_, headers, _) = curl(&["-H", "Accept: application/json", &url("/list/")]);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let (status, headers, body) = curl(&["-r", "0-1,3-4", &url("/hello.txt")]);
    assert_eq!(status, 206);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(
        text.matches("Content-Type: text/plain; charset=utf-8\r\n")
            .count(),
        2,
        "{text}"
    );
    assert_eq!(multipart(&headers, &body).len(), 2);
}

/// python's `http.server` habits: `-p PORT`, `-b ADDR`, and `zcopy serve 8000`
/// (a port where a directory goes) told how to say it.
#[test]
fn port_and_bind_as_python_spells_them() {
    if !have("curl", "port_and_bind_as_python_spells_them") {
        return;
    }
    let dir = site();
    let www = dir.path().join("www");
    let www = www.to_str().unwrap();
    for args in [
        vec!["serve", www, "-p", "0"],
        vec!["serve", www, "--bind", "127.0.0.1", "--port", "0"],
        vec!["serve", www, "-b", "localhost", "-p", "0"],
    ] {
        let server = Server::start(&args);
        // localhost may resolve to ::1 first.
        let loopback = ["127.0.0.1:", "[::1]:"];
        assert!(
            loopback.iter().any(|l| server.addr.starts_with(l)),
            "{args:?}: {}",
            server.addr
        );
        assert!(!server.addr.ends_with(":0"), "{}", server.addr);
        let (status, _, body) = curl(&[&format!("http://{}/hello.txt", server.addr)]);
        assert_eq!((status, &*body), (200, &b"hello, world\n"[..]), "{args:?}");
    }
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let server = Server::start(&["serve", www, "-b", "::1", "-p", "0"]);
        assert!(server.addr.starts_with("[::1]:"), "{}", server.addr);
        assert_eq!(curl(&[&format!("http://{}/hello.txt", server.addr)]).0, 200);
    }

    let o = common::zcopy()
        .args(["serve", "8000"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot serve 8000: no such directory (to listen on port 8000: -p 8000)"),
        "{stderr}"
    );
    // A directory that is named by a number is served.
    std::fs::create_dir(dir.path().join("8000")).unwrap();
    std::fs::write(dir.path().join("8000/n.txt"), b"n").unwrap();
    let numbered = Server::start_in(&["serve", "8000", "-p", "0"], Some(dir.path()));
    assert_eq!(curl(&[&format!("http://{}/n.txt", numbered.addr)]).2, b"n");

    let o = common::zcopy()
        .args(["serve", www, "--listen", "127.0.0.1:0", "-p", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn keep_alive_reuses_one_connection() {
    if !have("curl", "keep_alive_reuses_one_connection") {
        return;
    }
    let dir = site();
    let server = serve(dir.path(), &[]);
    let url = format!("http://{}/hello.txt", server.addr);
    let urls: Vec<String> = (0..50).map(|_| url.clone()).collect();
    let o = Command::new("curl")
        .arg("-sv")
        .args(&urls)
        .output()
        .unwrap();
    assert_eq!(o.stdout, b"hello, world\n".repeat(50));
    let log = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        log.matches("Connected to").count(),
        1,
        "one TCP connection for 50 requests"
    );

    // Pipelining: three requests in one write, three responses in order.
    let mut c = TcpStream::connect(&server.addr).unwrap();
    c.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 3, "{all}");
    assert!(all.ends_with("<p>index</p>\n"), "{all}");
}

#[test]
fn only_files_under_the_root_are_served() {
    if !have("curl", "only_files_under_the_root_are_served") {
        return;
    }
    let dir = site();
    let server = serve(dir.path(), &[]);
    let base = format!("http://{}", server.addr);
    for (path, want) in [
        ("/escape", 403),
        ("/../secret", 403),
        ("/%2e%2e/secret", 403),
        ("/docs/%2E%2E/%2E%2E/secret", 403),
        ("/a%00b", 403),
        ("/missing", 404),
        ("/inside", 200),
        ("/%zz", 400),
    ] {
        let (status, _, _) = curl(&["--path-as-is", &format!("{base}{path}")]);
        assert_eq!(status, want, "{path}");
    }
    let (status, headers, _) = curl(&[&format!("{base}/docs")]);
    assert_eq!(
        (status, header(&headers, "location")),
        (301, Some("/docs/"))
    );
    let (_, _, body) = curl(&[&format!("{base}/docs/")]);
    assert_eq!(body, b"<p>index</p>\n");
    let (status, _, body) = curl(&[&format!("{base}/list/")]);
    let html = String::from_utf8(body).unwrap();
    assert_eq!(status, 200);
    let a = html.find(">a.txt<").unwrap();
    let b = html
        .find(">b &lt;&amp;&gt;.txt<")
        .expect("names are escaped");
    assert!(a < b, "sorted");
    assert!(html.contains("href=\"b%20%3C%26%3E.txt\""), "{html}");
}

fn raw(addr: &str, request: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = c.write_all(request);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hostile_requests_get_4xx_and_the_server_lives() {
    let dir = site();
    let server = serve(dir.path(), &[]);
    let a = &server.addr;
    assert!(raw(a, b"DELETE /hello.txt HTTP/1.0\r\n\r\n").contains("405 Method Not Allowed\r\n"));
    assert!(raw(
        a,
        b"DELETE /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .contains("Allow: GET, HEAD\r\n"));
    assert!(raw(a, b"GARBAGE\x01\x02\r\n\r\n").starts_with("HTTP/1.1 400 "));
    assert!(raw(
        a,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"
    )
    .starts_with("HTTP/1.1 400 "));
    assert!(
        raw(a, b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n")
            .starts_with("HTTP/1.1 400 ")
    );
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10_000));
    assert!(raw(a, long.as_bytes()).starts_with("HTTP/1.1 414 "));
    let fat = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    assert!(raw(a, fat.as_bytes()).starts_with("HTTP/1.1 431 "));
    // RFC 9112 §3.2: HTTP/1.1 needs exactly one Host; HTTP/1.0 may go without.
    let two_hosts = b"GET /hello.txt HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n";
    assert!(raw(a, two_hosts).starts_with("HTTP/1.1 400 "));
    if have(
        "curl",
        "hostile_requests_get_4xx_and_the_server_lives (Host)",
    ) {
        let url = format!("http://{a}/hello.txt");
        assert_eq!(curl(&["-H", "Host:", &url]).0, 400);
        let (status, _, body) = curl(&["-0", "-H", "Host:", &url]);
        assert_eq!((status, &*body), (200, &b"hello, world\n"[..]));
    }
    let ok = raw(
        a,
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        ok.starts_with("HTTP/1.1 200 OK") && ok.ends_with("hello, world\n"),
        "{ok}"
    );
}

/// Slowloris: a head that never completes is closed after the header timeout.
#[test]
fn a_slow_head_is_cut_off() {
    let dir = site();
    let server = serve(dir.path(), &["--header-timeout", "1"]);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    c.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(0) => {}
        // A close that finds bytes unread is a reset: closed all the same.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the server did not close the connection: {other:?}"),
    }
    assert!(raw(&server.addr, b"GET /hello.txt HTTP/1.0\r\n\r\n").ends_with("hello, world\n"));
}

/// Many idle keep-alive connections are held, and the server still answers.
#[test]
fn many_idle_connections() {
    let dir = site();
    let server = serve(dir.path(), &[]);
    // 1000 sockets here, beside the other tests': lift the soft limit as the server does.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    assert!(raw(&server.addr, b"GET /hello.txt HTTP/1.0\r\n\r\n").ends_with("hello, world\n"));
    for mut c in idle.iter().take(10) {
        c.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        assert!(s.ends_with("hello, world\n"));
    }
}

/// A file that shrinks while it is sent ends that response (the connection closes
/// short of Content-Length) and the server keeps serving.
#[test]
fn a_file_that_shrinks_mid_response_ends_only_that_response() {
    let dir = site();
    let path = dir.path().join("www/shrinks.bin");
    std::fs::write(&path, pattern(64 << 20)).unwrap();
    let server = serve(dir.path(), &[]);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(&c, 64 << 10).unwrap();
    c.write_all(b"GET /shrinks.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 100_000];
    c.read_exact(&mut first).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let mut rest = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = c.read_to_end(&mut rest);
    assert!(
        first.len() + rest.len() < 64 << 20,
        "the response was cut short"
    );
    assert!(raw(&server.addr, b"GET /hello.txt HTTP/1.0\r\n\r\n").ends_with("hello, world\n"));
    server.await_lines("response ended early", 1);
}

/// SIGTERM: the response in flight finishes, then the server exits 0.
#[test]
fn sigterm_finishes_responses_in_flight() {
    let dir = site();
    let mut server = serve(dir.path(), &[]);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(&c, 64 << 10).unwrap();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 1000];
    c.read_exact(&mut first).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(server.child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    let all = [first, rest].concat();
    let body_start = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        all[body_start..] == pattern((3 << 20) + 7),
        "the whole body arrived"
    );
    let (status, _, _) = server.wait();
    assert!(status.success());
}

#[test]
fn bad_directories_and_busy_addresses_are_one_line_errors() {
    let dir = site();
    let missing = dir.path().join("missing");
    let file = dir.path().join("www/hello.txt");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let www = dir.path().join("www");
    for (args, want) in [
        (
            vec![missing.to_str().unwrap(), "--listen", "127.0.0.1:0"],
            "No such file or directory",
        ),
        (
            vec![file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
            "not a directory",
        ),
        (
            vec![www.to_str().unwrap(), "--listen", &busy],
            "Address already in use",
        ),
    ] {
        let o = common::zcopy().arg("serve").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    if !have("curl", "precompressed_siblings_follow_accept_encoding")
        || !have("gzip", "precompressed_siblings_follow_accept_encoding")
    {
        return;
    }
    let dir = site();
    let root = dir.path().join("www");
    let text = "a readable page\n".repeat(200);
    std::fs::write(root.join("page.txt"), &text).unwrap();
    let gz = Command::new("gzip")
        .args(["-k", "-9"])
        .arg(root.join("page.txt"))
        .status()
        .unwrap();
    assert!(gz.success());
    // Not real brotli: the server sends the sibling's bytes as they are.
    std::fs::write(root.join("page.txt.br"), b"brotli bytes").unwrap();
    let server = serve(dir.path(), &["--cache-control", "public, max-age=60"]);
    let url = format!("http://{}/page.txt", server.addr);

    let (status, headers, body) = curl(&[&url]);
    assert_eq!((status, body), (200, text.as_bytes().to_vec()));
    assert_eq!(header(&headers, "content-encoding"), None);
    assert_eq!(header(&headers, "vary"), Some("Accept-Encoding"));
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=60")
    );
    let plain_tag = header(&headers, "etag").unwrap().to_string();

    // curl --compressed asks for gzip (and more) and decodes what comes.
    let (status, headers, body) = curl(&["-H", "Accept-Encoding: gzip", "--compressed", &url]);
    assert_eq!((status, body), (200, text.as_bytes().to_vec()));
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_ne!(
        header(&headers, "etag"),
        Some(&*plain_tag),
        "each coding has its own tag"
    );
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=60")
    );

    let (_, headers, body) = curl(&["-H", "Accept-Encoding: gzip, br", &url]);
    assert_eq!(header(&headers, "content-encoding"), Some("br"));
    assert_eq!(body, b"brotli bytes");
    let (_, headers, _) = curl(&["-H", "Accept-Encoding: br;q=0, gzip", &url]);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    // A range of the coded representation.
    let (status, headers, body) = curl(&["-H", "Accept-Encoding: br", "-r", "0-5", &url]);
    assert_eq!((status, &body[..]), (206, &b"brotli"[..]));
    assert_eq!(header(&headers, "content-range"), Some("bytes 0-5/12"));
    // A file without siblings does not vary.
    let (_, headers, _) = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        &format!("http://{}/hello.txt", server.addr),
    ]);
    assert_eq!(
        (
            header(&headers, "content-encoding"),
            header(&headers, "vary")
        ),
        (None, None)
    );

    // Without siblings the text is compressed on the fly (never the .br's bytes),
    // and with --no-compress too it goes as it is.
    let server = serve(dir.path(), &["--no-precompressed"]);
    let url = format!("http://{}/page.txt", server.addr);
    let (_, headers, body) = curl(&["-H", "Accept-Encoding: gzip, br", &url]);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_ne!(body, b"brotli bytes");
    let server = serve(dir.path(), &["--no-precompressed", "--no-compress"]);
    let url = format!("http://{}/page.txt", server.addr);
    let (_, headers, _) = curl(&["-H", "Accept-Encoding: gzip, br", &url]);
    assert_eq!(header(&headers, "content-encoding"), None);
}

#[test]
fn listings_for_people_and_for_programs() {
    if !have("curl", "listings_for_people_and_for_programs") {
        return;
    }
    let dir = site();
    let root = dir.path().join("www");
    std::fs::create_dir(root.join("list/Zsub")).unwrap();
    std::fs::write(root.join("list/big.bin"), vec![0u8; 1536]).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("list/alias")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("list/outside")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("list/dangling")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("list/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let server = serve(dir.path(), &[]);
    let base = format!("http://{}", server.addr);

    let (status, headers, body) =
        curl(&["-H", "Accept: application/json", &format!("{base}/list/")]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(header(&headers, "vary"), Some("Accept"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/list/");
    let names: Vec<&str> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    // Folders first; what a GET would refuse (a symlink out, a FIFO, a dangling
    // link) is not listed.
    assert_eq!(names, ["Zsub", "a.txt", "alias", "b <&>.txt", "big.bin"]);
    let alias = &json["entries"][2];
    assert_eq!(
        (
            alias["type"].as_str(),
            alias["symlink"].as_bool(),
            alias["size"].as_u64()
        ),
        (Some("file"), Some(true), Some(1))
    );
    assert_eq!(json["entries"][0]["type"], "directory");

    let (_, headers, body) = curl(&[&format!("{base}/list/")]);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(body).unwrap();
    assert!(
        html.find(">Zsub/<").unwrap() < html.find(">a.txt<").unwrap(),
        "folders first"
    );
    assert!(html.contains("href=\"../\""), "a way up below the root");
    assert!(html.contains("title=\"1536 bytes\">1.5 KiB</td>"), "{html}");
    assert!(
        html.contains(">alias</a> <span class=\"link\""),
        "symlinks marked"
    );
    for hidden in ["outside", "fifo", "dangling"] {
        assert!(!html.contains(hidden), "{hidden} listed");
    }
    let (_, _, body) = curl(&[&format!("{base}/")]);
    let html = String::from_utf8(body).unwrap();
    assert!(!html.contains("href=\"../\""), "no way up at the root");
    assert!(
        !html.contains(">escape<"),
        "the symlink out of the root is not listed"
    );
    assert!(html.contains(">inside</a> <span class=\"link\""));
}

#[test]
fn unix_socket_and_json_access_log() {
    if !have("curl", "unix_socket_and_json_access_log") {
        return;
    }
    let dir = site();
    let socket = dir.path().join("serve.sock");
    let root = dir.path().join("www");
    let listen = format!("unix:{}", socket.display());
    let mut server = Server::start(&[
        "serve",
        root.to_str().unwrap(),
        "--listen",
        &listen,
        "-v",
        "--log-format",
        "json",
    ]);
    assert_eq!(server.addr, listen);
    let o = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&socket)
        .args([
            "http://zcopy/hello.txt",
            "http://zcopy/big.bin",
            "http://zcopy/missing",
        ])
        .output()
        .unwrap();
    let mut want = b"hello, world\n".to_vec();
    want.extend(pattern((3 << 20) + 7));
    assert!(o.stdout.starts_with(&want));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&server.child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert!(!socket.exists(), "the socket file is removed at exit");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["target"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
                l["peer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("/hello.txt", 200, "unix"),
            ("/big.bin", 200, "unix"),
            ("/missing", 404, "unix")
        ]
    );
    assert_eq!(lines[1]["bytes"], (3 << 20) + 7);
    // ISO 8601, UTC: 2026-12-02T05:14:38.123Z
    let time = lines[0]["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{time}"
    );
    assert_eq!(lines[0]["engine"], "memory");
    assert_eq!(lines[1]["engine"], "sendfile");
}

/// `--log-format combined` is nginx's: goaccess reads every line (none failed),
/// awk's `$9` is the status, and the quoted fields are escaped as nginx does.
#[test]
fn combined_access_log_as_goaccess_reads_it() {
    if !have("curl", "combined_access_log_as_goaccess_reads_it") {
        return;
    }
    let dir = site();
    let mut server = serve(dir.path(), &["-v", "--log-format", "combined"]);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let quoted = "agent \"q\"";
    curl(&[
        "-A",
        quoted,
        "-e",
        "http://example.com/from",
        "-u",
        "ann:pw",
        &url("/hello.txt"),
    ]);
    curl(&[&url("/missing")]);
    curl(&["-0", "-H", "Host:", &url("/big.bin")]);
    curl(&["-H", "Host:", &url("/hello.txt")]);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&server.child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let (_, _, stderr) = server.wait();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("127.0.0.1 - "))
        .collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].ends_with(
            "] \"GET /hello.txt HTTP/1.1\" 200 13 \"http://example.com/from\" \"agent \\x22q\\x22\""
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].starts_with("127.0.0.1 - ann ["), "{}", lines[0]);
    assert!(
        lines[2].contains("\"GET /big.bin HTTP/1.0\" 200 3145735 \"-\" \"curl/"),
        "{}",
        lines[2]
    );
    let status: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(8).unwrap()).collect();
    assert_eq!(status, ["200", "404", "200", "400"]);

    if !have(
        "goaccess",
        "combined_access_log_as_goaccess_reads_it (goaccess)",
    ) {
        return;
    }
    let log = dir.path().join("access.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let report = dir.path().join("report.json");
    let o = Command::new("goaccess")
        .arg(&log)
        .args(["--log-format=COMBINED", "-o"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let general = &report["general"];
    assert_eq!(general["valid_requests"], 4, "{general}");
    assert_eq!(general["failed_requests"], 0, "{general}");
    let bytes: u64 = lines
        .iter()
        .map(|l| l.split(' ').nth(9).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(general["bandwidth"], bytes, "{general}");
}

/// Sockets passed by systemd (`ListenStream=/run/x.sock` or a port, here through
/// `systemd-socket-activate`, which passes them the same way): a Unix socket is
/// served as one, a TCP socket as TCP, and each answers curl.
#[test]
fn sockets_from_systemd_unix_and_tcp() {
    if !have(
        "systemd-socket-activate",
        "sockets_from_systemd_unix_and_tcp",
    ) || !have("curl", "sockets_from_systemd_unix_and_tcp")
    {
        return;
    }
    let dir = site();
    let root = dir.path().join("www");
    let socket = dir.path().join("x.sock");
    let port = common::free_port();
    let tcp = format!("127.0.0.1:{port}");
    for (listen, unix) in [(socket.to_str().unwrap(), true), (tcp.as_str(), false)] {
        let mut child = Command::new("systemd-socket-activate")
            .args(["-l", listen])
            .arg(env!("CARGO_BIN_EXE_zcopy"))
            .args(["serve", root.to_str().unwrap(), "--workers", "1"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut lines, &mut first).unwrap();
        assert!(first.starts_with("Listening on "), "{first}");
        let o = if unix {
            Command::new("curl")
                .args(["-s", "--unix-socket", listen, "http://zcopy/hello.txt"])
                .output()
                .unwrap()
        } else {
            Command::new("curl")
                .args(["-s", &format!("http://{listen}/hello.txt")])
                .output()
                .unwrap()
        };
        assert_eq!(o.stdout, b"hello, world\n", "{listen}");
        let mut rest = String::new();
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
        let status = child.wait().unwrap();
        let want = if unix {
            format!("listening on unix:{listen} (from systemd)")
        } else {
            format!("listening on {listen} (from systemd)")
        };
        assert!(rest.contains(&want), "{rest}");
        assert!(status.success(), "{rest}");
    }
}

/// The listing as a browser shows it: headless Chromium renders the page to a PNG
/// (kept in the target directory, `serve-listing.png`, for a person to look at),
/// and its DOM has the table the server sent.
#[test]
fn the_listing_renders_in_a_headless_browser() {
    if !have("chromium", "the_listing_renders_in_a_headless_browser") {
        return;
    }
    let dir = site();
    let root = dir.path().join("www");
    std::fs::write(root.join("list/movie.mkv"), vec![0u8; 3 << 20]).unwrap();
    std::fs::create_dir(root.join("list/photos")).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("list/latest")).unwrap();
    let server = serve(dir.path(), &[]);
    let url = format!("http://{}/list/", server.addr);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-listing.png");
    let _ = std::fs::remove_file(&shot);
    let browser = |args: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg("--no-first-run")
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("chromium").display()
            ))
            .args(args)
            .arg(&url)
            .output()
            .unwrap()
    };
    let o = browser(&[
        "--window-size=800,400",
        &format!("--screenshot={}", shot.display()),
    ]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (800, 400));
    // A blank page compresses to a few hundred bytes; text and table rows do not.
    assert!(
        png.len() > 8000,
        "the screenshot looks empty ({} bytes)",
        png.len()
    );
    eprintln!("listing screenshot: {}", shot.display());

    let o = browser(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains("<h1>Index of /list/</h1>"), "{dom}");
    let photos = dom.find(">photos/</a>").expect("the folder is listed");
    let movie = dom.find(">movie.mkv</a>").expect("the file is listed");
    assert!(photos < movie, "folders first");
    assert!(dom.contains("3.0 MiB</td>"), "{dom}");
    assert!(dom.contains(">latest</a> <span class=\"link\""), "{dom}");
}
