//! send/recv keep what `rsync -aHAX` keeps (issue 23): owners and groups by name,
//! set-uid/set-gid/sticky modes, mtimes of directories and symlinks, xattrs,
//! POSIX ACLs, hard links, FIFOs and devices, names as bytes; `rsync -aHAX`
//! into another directory is the control. A version 2 peer still transfers.
//! The parts that need root (owners, devices, trusted xattrs) skip with the
//! reason when not root.

mod common;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use common::{have, zcopy, Server};

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

fn recv(out: &Path, extra: &[&str]) -> Server {
    std::fs::create_dir_all(out).unwrap();
    let mut args = vec![
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

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

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A tree with what -aHAX keeps: modes with set-uid, set-gid and sticky, a
/// directory's and a symlink's mtime, user xattrs, ACLs (where setfacl is),
/// hard links, a FIFO, a non-UTF-8 name; as root also owners and groups of
/// other users, a char device and a trusted xattr.
fn tree(src: &Path, acls: bool) {
    std::fs::create_dir_all(src.join("sub/deep")).unwrap();
    let name = |rel: &[u8]| src.join(OsStr::from_bytes(rel));
    std::fs::write(name(b"plain"), b"plain\n").unwrap();
    std::fs::write(name(b"bad\xffname"), b"odd\n").unwrap();
    std::fs::write(name(b"suid"), b"#!/bin/sh\n").unwrap();
    std::fs::write(name(b"sub/big"), common::pattern(3 << 20)).unwrap();
    std::fs::hard_link(name(b"plain"), name(b"sub/plain-again")).unwrap();
    std::fs::hard_link(name(b"sub/big"), name(b"big-again")).unwrap();
    std::os::unix::fs::symlink("plain", name(b"link")).unwrap();
    run(Command::new("mkfifo").arg(name(b"fifo")));
    for (rel, mode) in [
        (&b"suid"[..], 0o4755),
        (b"sub", 0o2775),
        (b"sub/deep", 0o1777),
        (b"plain", 0o640),
    ] {
        std::fs::set_permissions(name(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    rustix::fs::setxattr(
        name(b"plain").as_path(),
        "user.colour",
        b"blue\0\xff",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(
        name(b"sub").as_path(),
        "user.dir",
        b"d",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    if acls {
        run(Command::new("setfacl")
            .args(["-m", "u:daemon:rw,g:daemon:r"])
            .arg(name(b"plain")));
        run(Command::new("setfacl")
            .args(["-d", "-m", "u:daemon:rwx"])
            .arg(name(b"sub")));
    }
    if root() {
        std::os::unix::fs::chown(name(b"suid"), Some(1), Some(1)).unwrap();
        std::os::unix::fs::lchown(name(b"link"), Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(name(b"sub"), Some(1), Some(65534)).unwrap();
        run(Command::new("mknod")
            .arg(name(b"null"))
            .args(["c", "1", "3"]));
        rustix::fs::setxattr(
            name(b"plain").as_path(),
            "trusted.t",
            b"root only",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        // chown clears set-uid: set it again.
        std::fs::set_permissions(name(b"suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    }
    // Last, deepest first: the mtimes of directories and of the symlink.
    for rel in [&b"sub/deep"[..], b"sub", b"link", b""] {
        run(Command::new("touch")
            .args(["-h", "-d", "@1500000000"])
            .arg(name(rel)));
    }
}

/// Everything -aHAX keeps of each entry under `dir`, by name: kind, mode,
/// owner, group, mtime (not a symlink's: rsync sets it, and so does zcopy,
/// but only where utimensat may), size, rdev, content or target, xattrs, ACLs
/// (getfacl), and which names are links of one another.
fn survey(dir: &Path, acls: bool) -> BTreeMap<Vec<u8>, String> {
    let mut found = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
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
            let m = std::fs::symlink_metadata(&path).unwrap();
            let t = m.file_type();
            let what = if t.is_dir() {
                todo.push(path.clone());
                "dir".to_string()
            } else if t.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if t.is_file() {
                let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                format!(
                    "file {:x} link of {}",
                    xxhash(&std::fs::read(&path).unwrap()),
                    String::from_utf8_lossy(first)
                )
            } else {
                format!("special rdev {:x}", m.rdev())
            };
            let mut xattrs = Vec::new();
            if !t.is_symlink() {
                let mut names = vec![0u8; 4096];
                let n = rustix::fs::llistxattr(path.as_path(), &mut names[..]).unwrap_or(0);
                for name in names[..n]
                    .split(|&b| b == 0)
                    .filter(|n| !n.is_empty() && !n.starts_with(b"system."))
                {
                    let mut v = vec![0u8; 4096];
                    let len = rustix::fs::lgetxattr(path.as_path(), name, &mut v[..]).unwrap();
                    xattrs.push(format!("{}={:?}", String::from_utf8_lossy(name), &v[..len]));
                }
                xattrs.sort();
            }
            let acl = if acls && !t.is_symlink() {
                let o = Command::new("getfacl")
                    .args(["-cp", "--"])
                    .arg(&path)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&o.stdout).replace('\n', ",")
            } else {
                String::new()
            };
            let mtime = if t.is_symlink() { 0 } else { m.mtime() };
            let mode = if t.is_symlink() { 0 } else { m.mode() & 0o7777 };
            found.insert(
                rel,
                format!(
                    "{what} mode {mode:o} {}:{} mtime {mtime} {xattrs:?} {acl}",
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    found
}

fn xxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn a_tree_with_every_attribute_lands_as_rsync_ahax_lands_it() {
    if !have(
        "rsync",
        "a_tree_with_every_attribute_lands_as_rsync_ahax_lands_it",
    ) {
        return;
    }
    let acls = have(
        "setfacl",
        "the ACL part of a_tree_with_every_attribute_lands_as_rsync_ahax_lands_it",
    );
    if !root() {
        eprintln!("SKIP the owner, device and trusted xattr parts: not root");
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    tree(&src, acls);
    let (by_rsync, by_zcopy) = (dir.path().join("rsync"), dir.path().join("zcopy"));
    std::fs::create_dir_all(&by_rsync).unwrap();
    run(Command::new("rsync")
        .arg("-aHAX")
        .arg(&src)
        .arg(format!("{}/", by_rsync.display())));
    // A secret: set-uid bits land only from a sender that proved one.
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "attributes\n").unwrap();
    let server = recv(&by_zcopy, &["--secret-file", secret.to_str().unwrap()]);
    let fp = fingerprint(&server);
    let args = [
        "-aHAX",
        "--secret-file",
        secret.to_str().unwrap(),
        "--fingerprint",
        &fp,
        "--json",
    ];
    let o = send(&src, &server.addr, &args);
    let theirs = survey(&by_rsync.join("src"), acls);
    let ours = survey(&by_zcopy.join("src"), acls);
    assert_eq!(theirs, ours);
    assert_eq!(survey(&src, acls), ours);
    // Each file once: big-again is a link, not 3 MiB more.
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["bytes"].as_u64().unwrap(), (3 << 20) + 6 + 4 + 10);
    // Only attributes change: nothing is sent again, and -i says what changed
    // in rsync's letters.
    rustix::fs::setxattr(
        src.join("plain").as_path(),
        "user.colour",
        b"red",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::set_permissions(src.join("suid"), std::fs::Permissions::from_mode(0o4750)).unwrap();
    let mut again = args.to_vec();
    again.push("-i");
    let o = send(&src, &server.addr, &again);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["bytes"].as_u64().unwrap(), 0);
    let items = String::from_utf8_lossy(&o.stderr);
    assert!(items.contains(".f........x src/plain"), "{items}");
    assert!(items.contains(".f...p..... src/suid"), "{items}");
    assert_eq!(survey(&src, acls), survey(&by_zcopy.join("src"), acls));
}

/// The fingerprint in the line a receiver with a secret prints.
fn fingerprint(server: &Server) -> String {
    server.await_lines("to send here", 1);
    let stderr = server.stderr();
    let line = stderr.lines().find(|l| l.contains("to send here")).unwrap();
    line.split_whitespace()
        .skip_while(|w| *w != "--fingerprint")
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn owners_travel_by_name_or_by_number_with_numeric_ids() {
    if !root() {
        eprintln!("SKIP owners_travel_by_name_or_by_number_with_numeric_ids: not root (chown)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("f");
    std::fs::write(&file, b"f").unwrap();
    // A number nobody here has: by name it stays the number; daemon is 1 by name.
    std::os::unix::fs::chown(&file, Some(1), Some(4242)).unwrap();
    let out = dir.path().join("out");
    let server = recv(&out, &[]);
    send(&src, &server.addr, &["-og"]);
    let m = std::fs::metadata(out.join("src/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1, 4242));
    send(
        &src,
        &server.addr,
        &["-og", "--numeric-ids", "--ignore-times"],
    );
    let m = std::fs::metadata(out.join("src/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1, 4242));
    // Without -o -g the receiver's own user and group.
    send(&src, &server.addr, &["--ignore-times"]);
    let m = std::fs::metadata(out.join("src/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[test]
fn without_the_owner_a_set_uid_bit_does_not_land() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("prog"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(src.join("prog"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s\n").unwrap();
    let out = dir.path().join("out");
    let server = recv(&out, &["--secret-file", secret.to_str().unwrap()]);
    let fp = fingerprint(&server);
    let secure = [
        "--secret-file",
        secret.to_str().unwrap(),
        "--fingerprint",
        &fp,
    ];
    send(&src, &server.addr, &[&secure[..], &["-p"]].concat());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&out.join("src/prog")), 0o755);
    send(&src, &server.addr, &[&secure[..], &["-pog"]].concat());
    assert_eq!(mode(&out.join("src/prog")), 0o6755);
}

#[test]
fn a_version_2_peer_either_way_still_transfers_without_the_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    rustix::fs::setxattr(
        src.join("f").as_path(),
        "user.x",
        b"1",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::hard_link(src.join("f"), src.join("g")).unwrap();
    run(Command::new("mkfifo").arg(src.join("fifo")));
    let old = dir.path().join("old");
    let server = recv(&old, &["--protocol", "2"]);
    let o = send(&src, &server.addr, &["-aHX"]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(said.matches("protocol 2").count(), 1, "{said}");
    assert_eq!(std::fs::read(old.join("src/g")).unwrap(), b"data");
    assert!(!old.join("src/fifo").exists());
    assert!(
        rustix::fs::getxattr(old.join("src/f").as_path(), "user.x", &mut [0u8; 8][..]).is_err()
    );
    let new = dir.path().join("new");
    let server = recv(&new, &[]);
    let o = send(&src, &server.addr, &["-aHX", "--protocol", "2"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("protocol 2"));
    assert_eq!(std::fs::read(new.join("src/f")).unwrap(), b"data");
    assert_eq!(std::fs::read(new.join("src/g")).unwrap(), b"data");
    // Both at 3: the link and the FIFO land.
    let o = send(&src, &server.addr, &["-aHX"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("protocol 2"));
    assert_eq!(
        std::fs::metadata(new.join("src/g")).unwrap().ino(),
        std::fs::metadata(new.join("src/f")).unwrap().ino()
    );
    assert!(std::fs::symlink_metadata(new.join("src/fifo"))
        .unwrap()
        .file_type()
        .is_fifo_like());
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn a_hard_link_into_a_non_utf8_name_is_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let odd = src.join(OsString::from_vec(b"x\xfe".to_vec()));
    std::fs::write(&odd, b"same").unwrap();
    std::fs::hard_link(&odd, src.join("y")).unwrap();
    let out = dir.path().join("out");
    let server = recv(&out, &[]);
    send(&src, &server.addr, &["-H"]);
    let a = std::fs::metadata(out.join("src").join(OsStr::from_bytes(b"x\xfe"))).unwrap();
    let b = std::fs::metadata(out.join("src/y")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
}
