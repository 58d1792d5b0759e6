//! Names are bytes: every subcommand given an argument that is not UTF-8 either
//! does its work with that name or says why in one line, and never panics (exit
//! 101). Trees with such names travel whole through send and recv.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::process::Output;

use common::{pattern, zcopy, Server};

fn odd(name: &str) -> OsString {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0xff);
    OsString::from_vec(bytes)
}

fn no_panic(what: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// `zcopy send PATH` to a `recv --once` server; both must succeed.
fn send_to(path: &std::path::Path, server: &mut Server) {
    let o = zcopy()
        .arg("send")
        .arg(path)
        .arg(&server.addr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_tree_with_names_that_are_not_utf8_arrives_whole() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join(odd("tree"));
    std::fs::create_dir_all(root.join(odd("dir"))).unwrap();
    std::fs::write(root.join(odd("dir")).join(odd("file")), pattern(70_000)).unwrap();
    std::os::unix::fs::symlink(odd("target"), root.join(odd("link"))).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    send_to(&root, &mut server);
    let got = out.path().join(odd("tree"));
    assert!(std::fs::read(got.join(odd("dir")).join(odd("file"))).unwrap() == pattern(70_000));
    assert_eq!(
        std::fs::read_link(got.join(odd("link")))
            .unwrap()
            .as_os_str(),
        odd("target")
    );
}

#[test]
fn recv_into_a_file_whose_name_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.bin");
    std::fs::write(&src, pattern(5000)).unwrap();
    let target = dir.path().join(odd("got"));
    let mut server = Server::start_in(
        &[
            OsStr::new("recv"),
            OsStr::new("--once"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("-o"),
            target.as_os_str(),
        ],
        None,
    );
    send_to(&src, &mut server);
    assert!(std::fs::read(&target).unwrap() == pattern(5000));
}

#[test]
fn serve_a_directory_whose_name_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(odd("www"));
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.txt"), b"served\n").unwrap();
    let server = Server::start_in(
        &[
            OsStr::new("serve"),
            root.as_os_str(),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
        ],
        None,
    );
    let out = dir.path().join("a.txt");
    let o = zcopy()
        .args(["get", &format!("http://{}/a.txt", server.addr), "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), b"served\n");
}

#[test]
fn every_subcommand_takes_a_name_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(odd("n"));
    std::fs::write(&file, b"hi\n").unwrap();
    let run = |args: &[&OsStr]| zcopy().args(args).output().unwrap();
    let o = run(&[OsStr::new("scan"), file.as_os_str()]);
    no_panic("scan", &o);
    assert!(o.status.success());
    assert!(
        o.stdout.contains(&0xff),
        "the name as its bytes: {:?}",
        o.stdout
    );
    let copy = dir.path().join(odd("copy"));
    let o = run(&[OsStr::new("cp"), file.as_os_str(), copy.as_os_str()]);
    no_panic("cp", &o);
    assert!(o.status.success());
    assert_eq!(std::fs::read(&copy).unwrap(), b"hi\n");
    let man = dir.path().join(odd("man"));
    let o = run(&[OsStr::new("generate"), OsStr::new("man"), man.as_os_str()]);
    no_panic("generate", &o);
    assert!(o.status.success());
    assert!(man.join("zcopy-send.1").exists());
    let o = run(&[
        OsStr::new("get"),
        OsStr::new("http://127.0.0.1:9/x"),
        OsStr::new("-o"),
        dir.path().join(odd("got")).as_os_str(),
    ]);
    no_panic("get", &o);
    assert!(!dir.path().join(odd("got")).exists());
    let o = run(&[
        OsStr::new("send"),
        file.as_os_str(),
        OsStr::new("127.0.0.1:9"),
    ]);
    no_panic("send", &o);
    assert_eq!(o.status.code(), Some(7), "connect refused, as curl");
    for (sub, flag) in [
        ("echo", "--listen"),
        ("bench", "--jobs"),
        ("recv", "--listen"),
    ] {
        let o = run(&[OsStr::new(sub), OsStr::new(flag), &odd("x")]);
        no_panic(sub, &o);
        assert_eq!(o.status.code(), Some(2), "{sub}: a usage error");
    }
}
