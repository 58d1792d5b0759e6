//! `GET /DIR/?archive=tar` against curl and GNU tar: the folder as one tar stream
//! whose `tar -x` is the same tree (names that are not UTF-8, long names, modes,
//! times, symlinks), ranges and resumes of it, what it leaves out, hostile
//! targets, TLS, and a member that changes while it is sent.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have, pattern, test_ca, Server};

fn serve(root: &Path, extra: &[&str]) -> Server {
    Server::serve(root, 1, extra)
}

/// curl ARGS; returns (exit code, headers, body).
fn curl(args: &[&str]) -> (i32, String, Vec<u8>) {
    let got = common::curl(args);
    (got.code, got.headers, got.body)
}

fn status(headers: &str) -> u16 {
    // The last status line: curl -C - may print more than one head.
    headers
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (n, value) = l.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(value.trim())
    })
}

/// A tree with every kind of member, and what the archive must leave out.
fn site(top: &Path) {
    let long_dir = "d".repeat(90);
    let long_name = "n".repeat(150);
    std::fs::create_dir_all(top.join("sub").join(&long_dir)).unwrap();
    std::fs::create_dir_all(top.join(".git")).unwrap();
    std::fs::create_dir_all(top.join("empty-dir")).unwrap();
    std::fs::write(top.join("a.txt"), b"hello\n").unwrap();
    std::fs::write(top.join("empty"), b"").unwrap();
    std::fs::write(top.join("sub/big.bin"), pattern((1 << 20) + 3)).unwrap();
    std::fs::write(top.join("sub").join(&long_dir).join(&long_name), b"deep").unwrap();
    let odd = OsStr::from_bytes(b"caf\xe9-latin1.txt");
    std::fs::write(top.join(odd), b"not UTF-8").unwrap();
    let mut long_odd = vec![b'x'; 110];
    long_odd.extend_from_slice(b"\xff\xfe");
    std::fs::write(
        top.join("sub").join(OsStr::from_bytes(&long_odd)),
        b"long, not UTF-8",
    )
    .unwrap();
    std::fs::set_permissions(top.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(top.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    std::fs::File::options()
        .write(true)
        .open(top.join("empty"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    symlink("a.txt", top.join("link")).unwrap();
    symlink("sub/big.bin", top.join("link-to-sub")).unwrap();
    // Left out: symlinks out of the root or to nothing, dot names, part files, manifests.
    symlink("/etc/passwd", top.join("outside")).unwrap();
    symlink("nowhere", top.join("dangling")).unwrap();
    std::fs::write(top.join(".env"), b"secret").unwrap();
    std::fs::write(top.join(".git/config"), b"[core]").unwrap();
    std::fs::write(top.join(".a.txt.1234.zcopy-part"), b"half").unwrap();
    std::fs::write(top.join(".big.zcopy-manifest"), b"state").unwrap();
}

/// Every entry under `dir`: (path relative to it, as bytes; what it is, with its
/// mode and, for files and links, its content or target and time).
fn tree(dir: &Path) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            let meta = entry.path().symlink_metadata().unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {:?}", std::fs::read_link(entry.path()).unwrap())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o}", meta.mode() & 0o777)
            } else {
                let content = std::fs::read(entry.path()).unwrap();
                let sum = content
                    .iter()
                    .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                format!(
                    "file {:o} {} {} {sum:x}",
                    meta.mode() & 0o777,
                    meta.mtime(),
                    content.len()
                )
            };
            out.push((path.as_os_str().as_bytes().to_vec(), what));
        }
    }
    out.sort();
    out
}

/// What a request could get of `top`'s tree: without dot names (unless `hidden`),
/// part files, manifests, and links out of the root or to nothing.
fn servable(top: &Path, hidden: bool) -> Vec<(Vec<u8>, String)> {
    tree(top)
        .into_iter()
        .filter(|(path, _)| {
            path.split(|&b| b == b'/').all(|name| {
                (hidden || !name.starts_with(b"."))
                    && !name.ends_with(b".zcopy-part")
                    && !name.ends_with(b".zcopy-manifest")
                    && name != b"outside"
                    && name != b"dangling"
            })
        })
        .collect()
}

/// Extracts `tar` into a new folder under `work`, checking `tar -t` on the way.
fn extract(work: &Path, tar: &[u8], name: &str) -> PathBuf {
    let file = work.join(format!("{name}.tar"));
    std::fs::write(&file, tar).unwrap();
    let out = work.join(name);
    std::fs::create_dir(&out).unwrap();
    let list = Command::new("tar").arg("-tf").arg(&file).output().unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let x = Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    out
}

#[test]
fn a_folder_as_tar_extracts_to_the_same_tree() {
    if !have("curl", "a_folder_as_tar_extracts_to_the_same_tree")
        || !have("tar", "a_folder_as_tar_extracts_to_the_same_tree")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    site(&root.join("site"));
    let server = serve(&root, &[]);
    let url = format!("http://{}/site/?archive=tar", server.addr);

    let (code, headers, body) = curl(&[&url]);
    assert_eq!((code, status(&headers)), (0, 200), "{headers}");
    assert_eq!(header(&headers, "content-type"), Some("application/x-tar"));
    assert_eq!(
        header(&headers, "content-length"),
        Some(&*body.len().to_string())
    );
    assert_eq!(
        header(&headers, "content-disposition"),
        Some("attachment; filename=\"site.tar\"")
    );
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    let etag = header(&headers, "etag").unwrap().to_string();
    assert!(etag.starts_with("\"tar-"), "{etag}");

    let work = tempfile::tempdir().unwrap();
    let out = extract(work.path(), &body, "plain");
    let names = Command::new("tar")
        .args(["--quoting-style=literal", "-tf"])
        .arg(work.path().join("plain.tar"))
        .output()
        .unwrap();
    let names: Vec<&[u8]> = names
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        names.contains(&&b"site/caf\xe9-latin1.txt"[..]),
        "{names:?}"
    );
    assert!(names.iter().all(|n| !n.windows(4).any(|w| w == b".env")));
    assert_eq!(tree(&out.join("site")), servable(&root.join("site"), false));

    // HEAD: the same head, no body; the same tree, the same tag.
    let (_, head, body) = curl(&["-I", &url]);
    assert_eq!(status(&head), 200);
    assert!(body.is_empty() || body.starts_with(b"HTTP/"));
    assert_eq!(header(&head, "etag"), Some(&*etag));
    // The listing links to it.
    let (_, _, page) = curl(&[&format!("http://{}/site/", server.addr)]);
    assert!(String::from_utf8_lossy(&page).contains("href=\"?archive=tar\""));
    // The root's archive is named after the served folder; a path without its slash works too.
    let (_, headers, _) = curl(&["-I", &format!("http://{}/?archive=tar", server.addr)]);
    assert_eq!(
        header(&headers, "content-disposition"),
        Some("attachment; filename=\"www.tar\"")
    );
    let (_, headers, _) = curl(&["-I", &format!("http://{}/site?archive=tar", server.addr)]);
    assert_eq!(status(&headers), 200);

    // With --hidden, dot names are in it; part files and manifests never.
    let hidden = serve(&root, &["--hidden"]);
    let (code, _, body) = curl(&[&format!("http://{}/site/?archive=tar", hidden.addr)]);
    assert_eq!(code, 0);
    let out = extract(work.path(), &body, "hidden");
    assert_eq!(tree(&out.join("site")), servable(&root.join("site"), true));
    assert!(out.join("site/.git/config").exists());
    assert!(!out.join("site/.a.txt.1234.zcopy-part").exists());
}

#[test]
fn tar_ranges_resumes_and_validators() {
    if !have("curl", "tar_ranges_resumes_and_validators") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    site(&root.join("site"));
    let server = serve(&root, &[]);
    let url = format!("http://{}/site/?archive=tar", server.addr);
    let (_, headers, whole) = curl(&[&url]);
    let etag = header(&headers, "etag").unwrap().to_string();
    let len = whole.len();
    assert!(len > 1 << 20);

    // A middle range: from inside a header, across a member's content, to padding.
    for (start, end) in [(700, 600_000), (1000, 1000), (len - 2000, len - 1)] {
        let (_, headers, part) = curl(&["-r", &format!("{start}-{end}"), &url]);
        assert_eq!(status(&headers), 206);
        assert_eq!(
            header(&headers, "content-range"),
            Some(&*format!("bytes {start}-{end}/{len}"))
        );
        assert!(part == whole[start..=end], "{start}-{end}");
    }
    // Several ranges: multipart/byteranges, each part the same bytes of the whole.
    let (_, headers, body) = curl(&["-r", "0-99,5000-5999,700000-700010", &url]);
    assert_eq!(status(&headers), 206);
    assert_eq!(
        header(&headers, "content-length"),
        Some(&*body.len().to_string())
    );
    let kind = header(&headers, "content-type").unwrap();
    let boundary = kind
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap();
    let delimiter = format!("\r\n--{boundary}");
    let mut body = [b"\r\n", &body[..]].concat();
    for (start, end) in [(0, 99), (5000, 5999), (700_000, 700_010)] {
        assert!(body.starts_with(delimiter.as_bytes()));
        let head_end = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&body[..head_end]).to_string();
        assert!(
            head.contains(&format!("Content-Range: bytes {start}-{end}/{len}")),
            "{head}"
        );
        let part = &body[head_end + 4..head_end + 4 + end + 1 - start];
        assert!(part == &whole[start..=end]);
        body.drain(..head_end + 4 + end + 1 - start);
    }
    assert_eq!(body, format!("{delimiter}--\r\n").as_bytes());
    // curl -C - goes on from the partial file's length.
    let work = tempfile::tempdir().unwrap();
    let partial = work.path().join("site.tar");
    std::fs::write(&partial, &whole[..len / 3]).unwrap();
    let o = Command::new("curl")
        .args(["-s", "-C", "-", "-o"])
        .arg(&partial)
        .arg(&url)
        .status()
        .unwrap();
    assert!(o.success());
    assert!(std::fs::read(&partial).unwrap() == whole);
    // So do wget -c and aria2c -c.
    if have("wget", "tar_ranges_resumes_and_validators (wget)") {
        std::fs::write(&partial, &whole[..len / 2]).unwrap();
        let o = Command::new("wget")
            .args(["-q", "-c", "-O"])
            .arg(&partial)
            .arg(&url)
            .status()
            .unwrap();
        assert!(o.success());
        assert!(std::fs::read(&partial).unwrap() == whole, "wget -c");
    }
    if have("aria2c", "tar_ranges_resumes_and_validators (aria2c)") {
        let named = work.path().join("aria.tar");
        std::fs::write(&named, &whole[..len / 4]).unwrap();
        let o = Command::new("aria2c")
            .args(["-q", "-c", "--file-allocation=none", "-d"])
            .arg(work.path())
            .args(["-o", "aria.tar", &url])
            .status()
            .unwrap();
        assert!(o.success());
        assert!(std::fs::read(&named).unwrap() == whole, "aria2c -c");
    }
    // If-Range: the current tag gets the range; another gets the whole archive.
    let (_, headers, _) = curl(&["-r", "10-19", "-H", &format!("If-Range: {etag}"), &url]);
    assert_eq!(status(&headers), 206);
    let (_, headers, body) = curl(&["-r", "10-19", "-H", "If-Range: \"tar-stale\"", &url]);
    assert_eq!((status(&headers), body.len()), (200, len));
    // If-None-Match: 304; a changed tree has another tag.
    let (_, headers, _) = curl(&["-H", &format!("If-None-Match: {etag}"), &url]);
    assert_eq!(status(&headers), 304);
    let (_, headers, _) = curl(&["-r", &format!("{}-", len + 5), &url]);
    assert_eq!(status(&headers), 416);
    std::fs::write(root.join("site/a.txt"), b"changed\n").unwrap();
    let (_, headers, _) = curl(&["-I", &url]);
    assert_ne!(header(&headers, "etag"), Some(&*etag));
}

#[test]
fn tar_of_paths_out_of_the_root_is_refused() {
    if !have("curl", "tar_of_paths_out_of_the_root_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    site(&root.join("site"));
    std::fs::create_dir(dir.path().join("private")).unwrap();
    std::fs::write(dir.path().join("private/key"), b"PRIVATE KEY").unwrap();
    symlink(dir.path().join("private"), root.join("escape")).unwrap();
    symlink("../private", root.join("relative-escape")).unwrap();
    let server = serve(&root, &[]);
    for (target, want) in [
        ("/../?archive=tar", 403),
        ("/%2e%2e/?archive=tar", 403),
        ("/site/../../?archive=tar", 403),
        ("/escape/?archive=tar", 403),
        ("/relative-escape/?archive=tar", 403),
        ("/site/.git/?archive=tar", 404),
        ("/nowhere/?archive=tar", 404),
        ("/site/a.txt?archive=tar", 404),
        ("/site/%00/?archive=tar", 403),
    ] {
        let url = format!("http://{}{target}", server.addr);
        let (_, headers, body) = curl(&["--path-as-is", &url]);
        assert_eq!(status(&headers), want, "{target}: {headers}");
        assert!(!body.windows(11).any(|w| w == b"PRIVATE KEY"), "{target}");
    }
    // The root's archive holds neither the escaping links nor what they lead to.
    let (_, _, body) = curl(&[&format!("http://{}/?archive=tar", server.addr)]);
    assert!(!body.is_empty());
    assert!(!body.windows(11).any(|w| w == b"PRIVATE KEY"));
    assert!(!body.windows(6).any(|w| w == b"escape"));
}

#[test]
fn tar_over_tls() {
    if !have("curl", "tar_over_tls") || !have("tar", "tar_over_tls") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = test_ca(dir.path(), "tar_over_tls") else {
        return;
    };
    let root = dir.path().join("www");
    site(&root.join("site"));
    let server = serve(&root, &["--tls-cert", &cert, "--tls-key", &key]);
    let port = server.addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}/site/?archive=tar");
    let (code, headers, body) = curl(&["--cacert", &ca, &url]);
    assert_eq!((code, status(&headers)), (0, 200), "{headers}");
    let work = tempfile::tempdir().unwrap();
    let out = extract(work.path(), &body, "tls");
    assert_eq!(tree(&out.join("site")), servable(&root.join("site"), false));
    let (_, _, part) = curl(&["--cacert", &ca, "-r", "5000-700000", &url]);
    assert!(part == body[5000..=700_000]);
}

/// A member that shrinks while the archive goes out ends the connection: curl
/// reports a transfer ended short of its Content-Length (18), never a whole body.
#[test]
fn a_member_changed_mid_stream_ends_the_connection() {
    if !have("curl", "a_member_changed_mid_stream_ends_the_connection") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("site")).unwrap();
    let big = root.join("site/big.bin");
    std::fs::write(&big, pattern(64 << 20)).unwrap();
    std::fs::write(root.join("site/z-after.txt"), b"after").unwrap();
    let server = serve(&root, &[]);
    let url = format!("http://{}/site/?archive=tar", server.addr);
    let child = Command::new("curl")
        .args([
            "-s",
            "--limit-rate",
            "8M",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(18), "curl got the whole archive");
    let got: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(got < 64 << 20, "{got}");
    assert!(
        server
            .stderr()
            .contains("the file changed while the archive was sent")
            || server.stderr().is_empty(),
        "{}",
        server.stderr()
    );
}
