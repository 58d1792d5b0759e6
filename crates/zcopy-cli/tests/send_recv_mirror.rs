//! send as a mirror: rsync's quick check by default (`-c`, `--ignore-times`),
//! `--delete` (against hostile trees), the filter rules, `-n` and `-i`; real
//! rsync is the reference, on the same trees.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{have, zcopy, Server};

fn recv(out: &Path) -> Server {
    std::fs::create_dir_all(out).unwrap();
    Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.to_str().unwrap(),
    ])
}

/// `zcopy send SRC ADDR ARGS`, which must succeed.
fn send(src: &Path, addr: &str, args: &[&str]) -> Output {
    let o = zcopy()
        .arg("send")
        .arg(src)
        .arg(addr)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// The payload bytes a `--json` send moved.
fn sent_bytes(src: &Path, addr: &str, args: &[&str]) -> u64 {
    let o = send(src, addr, &[&["--json"], args].concat());
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json["bytes"].as_u64().unwrap()
}

/// `rsync -a ARGS SRC DST/`, which must succeed; its standard output.
fn rsync(src: &Path, dst: &Path, args: &[&str]) -> String {
    std::fs::create_dir_all(dst).unwrap();
    let o = Command::new("rsync")
        .arg("-a")
        .args(args)
        .arg(src)
        .arg(format!("{}/", dst.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every entry under `dir`: its kind and content (a symlink's target).
fn tree(dir: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                todo.push(path);
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else {
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
            };
            found.insert(rel, what);
        }
    }
    found
}

/// Sets the mtime of everything under `dir` (symlinks' targets, not their own).
fn stamp(dir: &Path, epoch: u64) {
    let ok = Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-d", &format!("@{epoch}"), "{}", "+"])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn write(dir: &Path, rel: &[u8], content: &[u8]) {
    let path = dir.join(OsStr::from_bytes(rel));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn the_quick_check_sends_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, b"small", b"s");
    write(&src, b"sub/large", &common::pattern(5 << 20));
    let server = recv(&dir.path().join("out"));
    let total = 1 + (5 << 20);
    assert_eq!(sent_bytes(&src, &server.addr, &[]), total);
    // In place with the same size and mtime: nothing is sent again.
    assert_eq!(sent_bytes(&src, &server.addr, &[]), 0);
    stamp(&src.join("small"), 1_600_000_000);
    assert_eq!(sent_bytes(&src, &server.addr, &[]), 1);
    assert_eq!(sent_bytes(&src, &server.addr, &["--ignore-times"]), total);
    // -c: the same content with another mtime is not sent, and takes the mtime.
    stamp(&src, 1_500_000_000);
    assert_eq!(sent_bytes(&src, &server.addr, &["-c"]), 0);
    let got = dir.path().join("out/src/sub/large");
    let mtime = std::fs::metadata(&got).unwrap().modified().unwrap();
    let want = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    assert_eq!(mtime, want);
    // -c: the same size and mtime but other content is sent.
    let mut changed = common::pattern(5 << 20);
    changed[17] ^= 1;
    write(&src, b"sub/large", &changed);
    stamp(&src, 1_500_000_000);
    assert_eq!(sent_bytes(&src, &server.addr, &[]), 0);
    assert_eq!(sent_bytes(&src, &server.addr, &["--checksum"]), 5 << 20);
    assert_eq!(std::fs::read(&got).unwrap(), changed);
}

/// A source tree and a receiver that already holds an older copy of it plus
/// files of its own, copied to `out` by rsync and by zcopy with `args`; both
/// must leave the same tree, which is returned (`None`: no rsync here).
fn mirror_like_rsync(args: &[&str]) -> Option<BTreeMap<Vec<u8>, String>> {
    if !have("rsync", "mirror_like_rsync") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for f in [
        &b"a"[..],
        b"b.o",
        b"keep.o",
        b"sub/c",
        b"sub/old",
        b"bad\xff.o",
        b"cache/x",
        b"top",
    ] {
        write(&src, f, f);
    }
    write(&src, b".gitignore", b"*.log\nbuild/\n");
    write(&src, b"sub/.gitignore", b"local\n");
    let (by_rsync, by_zcopy) = (dir.path().join("rsync"), dir.path().join("zcopy"));
    let server = recv(&by_zcopy);
    rsync(&src, &by_rsync, &[]);
    send(&src, &server.addr, &[]);
    assert_eq!(tree(&by_rsync), tree(&by_zcopy));
    // The source changes; the receivers gain files of their own.
    std::fs::remove_file(src.join("sub/old")).unwrap();
    write(&src, b"new", b"new");
    write(&src, b"a.log", b"log");
    write(&src, b"build/out", b"built");
    write(&src, b"sub/local", b"local");
    for out in [&by_rsync, &by_zcopy] {
        let mine = out.join("src");
        write(&mine, b"gone\xff", b"only here");
        write(&mine, b"mine.o", b"protected by *.o");
        write(&mine, b"olddir/deep/f", b"f");
        write(&mine, b"x.log", b"protected by .gitignore");
        write(&mine, b"sub/local", b"protected by sub/.gitignore");
    }
    rsync(&src, &by_rsync, args);
    send(&src, &server.addr, args);
    let (theirs, ours) = (tree(&by_rsync), tree(&by_zcopy));
    assert_eq!(theirs, ours, "rsync {args:?} left {theirs:#?}");
    Some(ours)
}

#[test]
fn delete_and_excludes_leave_what_rsync_leaves() {
    let rules = [
        "--delete",
        "--include",
        "keep.o",
        "--exclude",
        "*.o",
        "--exclude",
        "/src/cache/",
        "--filter",
        ":- .gitignore",
    ];
    let Some(left) = mirror_like_rsync(&rules) else {
        return;
    };
    let has = |name: &[u8]| left.contains_key(name);
    assert!(has(b"src/keep.o") && has(b"src/mine.o") && has(b"src/x.log"));
    assert!(has(b"src/sub/local") && has(b"src/new"));
    assert!(!has(b"src/gone\xff") && !has(b"src/olddir") && !has(b"src/sub/old"));
    // Copied the first time, excluded now: protected, as in rsync; never sent.
    assert!(has(b"src/bad\xff.o") && has(b"src/cache/x") && !has(b"src/build"));
    // Excluded files on the receiver go too with --delete-excluded.
    let left = mirror_like_rsync(&[&rules[..], &["--delete-excluded"]].concat()).unwrap();
    assert!(!left.contains_key(&b"src/mine.o"[..]) && !left.contains_key(&b"src/x.log"[..]));
    assert!(!left.contains_key(&b"src/bad\xff.o"[..]));
    let left = mirror_like_rsync(&["--delete-before", "--exclude", "b*"]).unwrap();
    assert!(!left.contains_key(&b"src/gone\xff"[..]) && !left.contains_key(&b"src/sub/old"[..]));
}

#[test]
fn exclude_from_reads_its_file() {
    let lists = tempfile::tempdir().unwrap();
    let list = lists.path().join("list");
    std::fs::write(&list, b"# built\n*.o\n\ncache/\n").unwrap();
    mirror_like_rsync(&["--delete", "--exclude-from", list.to_str().unwrap()]);
}

#[test]
fn itemized_changes_are_rsyncs() {
    if !have("rsync", "itemized_changes_are_rsyncs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for f in [&b"a"[..], b"b", b"sub/c", b"sub/d\xff"] {
        write(&src, f, f);
    }
    std::os::unix::fs::symlink("a", src.join("link")).unwrap();
    stamp(&src, 1_577_836_800);
    let (by_rsync, by_zcopy) = (dir.path().join("rsync"), dir.path().join("zcopy"));
    let server = recv(&by_zcopy);
    let lines = |text: &[u8]| {
        let mut l: Vec<String> = String::from_utf8_lossy(text)
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let compare = |args: &[&str]| {
        let theirs = lines(rsync(&src, &by_rsync, &[&["-i"], args].concat()).as_bytes());
        let ours = lines(&send(&src, &server.addr, &[&["-i"], args].concat()).stdout);
        assert_eq!(ours, theirs, "with {args:?}");
        ours
    };
    assert!(compare(&[]).contains(&">f+++++++++ src/a".to_string()));
    assert!(compare(&[]).is_empty(), "nothing changed, nothing itemized");
    std::fs::write(src.join("b"), b"longer").unwrap();
    std::fs::remove_file(src.join("sub/c")).unwrap();
    write(&src, b"e", b"e");
    stamp(&src, 1_609_459_200);
    let dry = compare(&["-n", "--delete"]);
    assert!(
        dry.contains(&"*deleting   src/sub/c".to_string()),
        "{dry:?}"
    );
    assert_eq!(
        compare(&["--delete"]),
        dry,
        "the dry run said what the run did"
    );
    assert!(dry.contains(&">f.st...... src/b".to_string()), "{dry:?}");
}

#[test]
fn a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, b"a", b"a");
    write(&src, b"sub/b", b"b");
    let out = dir.path().join("out");
    let server = recv(&out);
    let o = send(&src, &server.addr, &["-n"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(">f+++++++++ src/sub/b"));
    assert!(tree(&out).is_empty(), "{:?}", tree(&out));
    send(&src, &server.addr, &[]);
    write(&out, b"src/extra", b"x");
    std::fs::write(src.join("a"), b"changed").unwrap();
    let before = tree(&out);
    let o = send(&src, &server.addr, &["--dry-run", "--delete"]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("*deleting   src/extra"), "{said}");
    assert!(said.contains(">f.st...... src/a"), "{said}");
    assert_eq!(tree(&out), before);
}

#[test]
fn delete_removes_a_symlink_never_what_it_points_to() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, b"sub/a", b"a");
    let outside = dir.path().join("outside");
    write(&outside, b"precious", b"p");
    let out = dir.path().join("out");
    let server = recv(&out);
    send(&src, &server.addr, &[]);
    std::os::unix::fs::symlink(&outside, out.join("src/link")).unwrap();
    // A directory the sender sends that is a symlink out on the receiver.
    std::fs::remove_dir_all(out.join("src/sub")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("src/sub")).unwrap();
    let o = zcopy()
        .args(["send", "--delete-before", "-i"])
        .arg(&src)
        .arg(&server.addr)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(said.contains("*deleting   src/link"), "{said}");
    assert!(said.contains("*deleting   src/sub"), "{said}");
    assert_eq!(tree(&outside).len(), 1, "{:?}", tree(&outside));
    assert_eq!(std::fs::read(out.join("src/sub/a")).unwrap(), b"a");
}

#[test]
fn bad_rules_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, b"a", b"a");
    let o = zcopy()
        .args(["send", "--filter", "merge x"])
        .arg(&src)
        .arg("127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown filter rule \"merge x\""), "{err}");
    let missing = dir.path().join("no-such-list");
    let o = zcopy()
        .args(["send", "--exclude-from"])
        .arg(&missing)
        .arg(&src)
        .arg("127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "zcopy: cannot read {}: No such file or directory",
            missing.display()
        )
    );
}
