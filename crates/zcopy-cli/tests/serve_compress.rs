//! `zcopy serve`'s on-the-fly compression against curl (`--compressed`, raw
//! codings decoded by `zstd -d` and `gzip -d`) and wget (`--compression=gzip`):
//! q-values, the size threshold, types, ranges, validators, HEAD, `--no-compress`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{have, Server};

fn serve(root: &Path, extra: &[&str]) -> Server {
    Server::serve(root, 1, extra)
}

/// curl ARGS; returns (HTTP status, headers, body).
fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let got = common::curl(args);
    (got.status, got.headers, got.body)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (n, value) = l.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(value.trim())
    })
}

/// `tool -dc` of `coded`.
fn decode(tool: &str, coded: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let coded = coded.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&coded).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{tool} -d failed");
    out.stdout
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let page: String = (0..2000)
        .map(|i| format!("<p>line {i} of a page</p>\n"))
        .collect();
    std::fs::write(root.join("page.html"), &page).unwrap();
    let json: String = (0..1000)
        .map(|i| format!("{{\"n\":{i},\"name\":\"item {i}\"}},"))
        .collect();
    std::fs::write(root.join("data.json"), format!("[{}0]", json)).unwrap();
    std::fs::write(root.join("small.txt"), b"under a KiB\n").unwrap();
    std::fs::write(root.join("image.png"), vec![0u8; 64 << 10]).unwrap();
    dir
}

#[test]
fn text_is_compressed_for_curl_and_wget() {
    if !have("curl", "text_is_compressed_for_curl_and_wget")
        || !have("zstd", "text_is_compressed_for_curl_and_wget")
        || !have("gzip", "text_is_compressed_for_curl_and_wget")
    {
        return;
    }
    let dir = site();
    let root = dir.path().join("www");
    let page = std::fs::read(root.join("page.html")).unwrap();
    let server = serve(&root, &["--cache-control", "max-age=60"]);
    let url = format!("http://{}/page.html", server.addr);

    let (status, plain, body) = curl(&[&url]);
    assert_eq!((status, body == page), (200, true));
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "vary"), Some("Accept-Encoding"));
    let plain_tag = header(&plain, "etag").unwrap().to_string();

    // curl --compressed offers zstd among others: zstd it is, decoded by curl.
    let (status, headers, body) = curl(&["--compressed", &url]);
    assert_eq!((status, body == page), (200, true));
    assert_eq!(header(&headers, "content-encoding"), Some("zstd"));

    for (accept, coding, tool) in [
        ("zstd", "zstd", "zstd"),
        ("gzip", "gzip", "gzip"),
        ("zstd;q=0.1, gzip;q=0.9", "gzip", "gzip"),
        ("gzip, zstd", "zstd", "zstd"),
        ("*", "zstd", "zstd"),
    ] {
        let (status, headers, coded) = curl(&["-H", &format!("Accept-Encoding: {accept}"), &url]);
        assert_eq!(status, 200, "{accept}");
        assert_eq!(
            header(&headers, "content-encoding"),
            Some(coding),
            "{accept}"
        );
        assert_eq!(
            header(&headers, "content-length"),
            Some(&*coded.len().to_string())
        );
        assert!(coded.len() < page.len() / 4, "{accept}: {}", coded.len());
        assert!(decode(tool, &coded) == page, "{accept}");
        let tag = header(&headers, "etag").unwrap();
        assert_ne!(tag, plain_tag);
        assert!(tag.ends_with(&format!("-{coding}\"")), "{tag}");
        assert_eq!(header(&headers, "vary"), Some("Accept-Encoding"));
        assert_eq!(header(&headers, "cache-control"), Some("max-age=60"));
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&headers, "accept-ranges"), None);

        // Its own tag validates it; HEAD has the coded length.
        let inm = format!("If-None-Match: {tag}");
        let ae = format!("Accept-Encoding: {accept}");
        let (status, _, _) = curl(&["-H", &ae, "-H", &inm, &url]);
        assert_eq!(status, 304, "{accept}");
        let (_, head, _) = curl(&["-I", "-H", &ae, &url]);
        assert_eq!(
            header(&head, "content-length"),
            Some(&*coded.len().to_string())
        );
    }
    // Refused codings, and codings we do not make, get the file as it is.
    for accept in [
        "gzip;q=0, zstd;q=0",
        "br",
        "identity",
        "zstd;q=0, gzip;q=0, *",
    ] {
        let (_, headers, body) = curl(&["-H", &format!("Accept-Encoding: {accept}"), &url]);
        assert_eq!(header(&headers, "content-encoding"), None, "{accept}");
        assert!(body == page);
    }
    // A range gets the identity bytes.
    let (status, headers, body) =
        curl(&["-H", "Accept-Encoding: gzip, zstd", "-r", "100-199", &url]);
    assert_eq!((status, &body[..]), (206, &page[100..200]));
    assert_eq!(header(&headers, "content-encoding"), None);

    // JSON is compressed; a small file, a PNG are not, and do not vary.
    let (_, headers, _) = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        &format!("http://{}/data.json", server.addr),
    ]);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    for name in ["small.txt", "image.png"] {
        let (_, headers, _) = curl(&[
            "-H",
            "Accept-Encoding: gzip, zstd",
            &format!("http://{}/{name}", server.addr),
        ]);
        assert_eq!(
            (
                header(&headers, "content-encoding"),
                header(&headers, "vary")
            ),
            (None, None),
            "{name}"
        );
    }

    // wget asks for gzip and decodes it.
    if have("wget", "text_is_compressed_for_curl_and_wget (wget)") {
        let out = dir.path().join("wget.html");
        let o = Command::new("wget")
            .args(["-S", "--compression=gzip", "-O"])
            .arg(&out)
            .arg(&url)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{log}");
        assert!(log.contains("Content-Encoding: gzip"), "{log}");
        assert!(std::fs::read(&out).unwrap() == page);
    }

    let server = serve(&root, &["--no-compress"]);
    let (_, headers, body) = curl(&[
        "-H",
        "Accept-Encoding: gzip, zstd",
        &format!("http://{}/page.html", server.addr),
    ]);
    assert_eq!(
        (
            header(&headers, "content-encoding"),
            header(&headers, "vary")
        ),
        (None, None)
    );
    assert!(body == page);
}

/// A file replaced on disk is compressed again: the coded body and its tag follow
/// the new version, never the one kept from before.
#[test]
fn a_changed_file_is_compressed_again() {
    if !have("curl", "a_changed_file_is_compressed_again") {
        return;
    }
    let dir = site();
    let root = dir.path().join("www");
    let server = serve(&root, &[]);
    let url = format!("http://{}/page.html", server.addr);
    let (_, before, body) = curl(&["--compressed", &url]);
    assert!(body == std::fs::read(root.join("page.html")).unwrap());
    let new: String = (0..3000).map(|i| format!("<li>item {i}</li>\n")).collect();
    std::fs::write(root.join("page.html"), &new).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(root.join("page.html"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    // The open-file cache looks a path up again after a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, after, body) = curl(&["--compressed", &url]);
    assert!(body == new.as_bytes());
    assert_ne!(header(&before, "etag"), header(&after, "etag"));
}
