//! A file the receiver holds in another version travels as a delta: only the
//! chunks it lacks cross the wire, the result is the new file byte for byte, a
//! kill -9 of either side leaves the old file or the new one whole, and on btrfs
//! the new file shares the old one's extents.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{names_in, pattern, zcopy, LoopMount, Server};

fn recv(out: &Path) -> Server {
    Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.to_str().unwrap(),
    ])
}

/// Sends `file` to `addr` and returns the payload bytes the sender moved.
fn send(file: &Path, addr: &str, extra: &[&str]) -> u64 {
    send_json(file, addr, extra)["bytes"].as_u64().unwrap()
}

/// Sends `file` to `addr` and returns the sender's `--json`.
fn send_json(file: &Path, addr: &str, extra: &[&str]) -> serde_json::Value {
    let o = zcopy()
        .arg("send")
        .arg(file)
        .arg(addr)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `data` with 64 KiB overwritten at an odd offset and 100 bytes inserted at 1/3
/// and 2/3.
fn edited(data: &[u8]) -> Vec<u8> {
    let mut new = data.to_vec();
    let at = (5 << 20) + 7;
    for b in &mut new[at..at + (64 << 10)] {
        *b = !*b;
    }
    for at in [data.len() * 2 / 3, data.len() / 3] {
        new.splice(at..at, [0x5a; 100]);
    }
    new
}

#[test]
fn a_changed_file_travels_as_its_missing_chunks() {
    let src = tempfile::tempdir().unwrap();
    // A name that is not UTF-8.
    let name = OsStr::from_bytes(b"d\xffelta.img");
    let file = src.path().join(name);
    let old = pattern(24 << 20);
    std::fs::write(&file, &old).unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = recv(out.path());
    assert_eq!(send(&file, &server.addr, &[]), old.len() as u64);

    let new = edited(&old);
    std::fs::write(&file, &new).unwrap();
    let json = send_json(&file, &server.addr, &[]);
    let sent = json["bytes"].as_u64().unwrap();
    eprintln!(
        "the delta sent {sent} of {} bytes: {}",
        new.len(),
        json["delta"]
    );
    assert!(sent * 50 <= new.len() as u64, "sent {sent} bytes");
    assert_eq!(json["delta"]["literal"], sent);
    assert_eq!(
        json["delta"]["referenced"].as_u64().unwrap() + sent,
        new.len() as u64
    );
    assert!(std::fs::read(out.path().join(name)).unwrap() == new);
    assert_eq!(names_in(out.path()).len(), 1);

    // -W sends it whole, as rsync's does.
    std::fs::write(&file, &old).unwrap();
    assert_eq!(send(&file, &server.addr, &["-W"]), old.len() as u64);
    assert!(std::fs::read(out.path().join(name)).unwrap() == old);
}

/// `--inplace` rewrites the old file itself: the same inode, seen through a hard
/// link, byte for byte the new version; without it the new file replaces the old
/// one and the link keeps the old content.
#[test]
fn inplace_rewrites_the_old_file() {
    use std::os::unix::fs::MetadataExt;
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join(OsStr::from_bytes(b"in\xffplace.img"));
    let old = pattern(16 << 20);
    std::fs::write(&file, &old).unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = recv(out.path());
    send(&file, &server.addr, &[]);
    let target = out.path().join(file.file_name().unwrap());
    let link = out.path().join("link");
    std::fs::hard_link(&target, &link).unwrap();
    let inode = std::fs::metadata(&target).unwrap().ino();

    // An overwrite and a deletion (what follows it moves towards the front,
    // which a front-to-back rewrite can copy; after an insertion it could not:
    // those bytes would be overwritten before they are read, and are sent).
    let mut new = old.clone();
    new[5 << 20..(5 << 20) + (64 << 10)].fill(1);
    new.drain(11 << 20..(11 << 20) + 100);
    std::fs::write(&file, &new).unwrap();
    let json = send_json(&file, &server.addr, &["--inplace"]);
    eprintln!("{}", json["delta"]);
    let literal = json["delta"]["literal"].as_u64().unwrap();
    assert!(literal * 20 < new.len() as u64, "{json}");
    assert_eq!(
        json["delta"]["referenced"].as_u64().unwrap() + literal,
        new.len() as u64
    );
    assert!(std::fs::read(&target).unwrap() == new);
    assert!(std::fs::read(&link).unwrap() == new, "not the same file");
    assert_eq!(std::fs::metadata(&target).unwrap().ino(), inode);
    let mtime = std::fs::metadata(&file).unwrap().mtime();
    assert_eq!(std::fs::metadata(&target).unwrap().mtime(), mtime);
    let mut names = names_in(out.path());
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");

    // A second edit, in place again: from the file just rewritten.
    let mut newer = new.clone();
    newer[1 << 20..(1 << 20) + 1000].fill(7);
    std::fs::write(&file, &newer).unwrap();
    send_json(&file, &server.addr, &["--inplace", "-z"]);
    assert!(std::fs::read(&link).unwrap() == newer);

    // Without --inplace the new version is a new file; the link keeps the old.
    std::fs::write(&file, &old).unwrap();
    send_json(&file, &server.addr, &[]);
    assert!(std::fs::read(&target).unwrap() == old);
    assert!(std::fs::read(&link).unwrap() == newer);
    assert_ne!(std::fs::metadata(&target).unwrap().ino(), inode);
}

/// Kills one side at a random moment of a slow delta, ten times: the target is
/// then the old file or the new one, whole, and nothing else is in the directory;
/// a delta sent again completes.
fn killed_in_the_middle(kill_receiver: bool) {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("vm.img");
    let old = pattern(16 << 20);
    // Every chunk differs, so the delta is long enough to be killed inside.
    let new: Vec<u8> = old.iter().map(|b| b ^ 0x33).collect();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("vm.img");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut dice = seed;
    for run in 1..=10 {
        std::fs::write(&target, &old).unwrap();
        std::fs::write(&file, &new).unwrap();
        let mut server = recv(out.path());
        dice ^= dice << 13;
        dice ^= dice >> 7;
        dice ^= dice << 17;
        let wait = 100 + dice % 700;
        let mut sender = zcopy()
            .arg("send")
            .arg(&file)
            .arg(&server.addr)
            .args(["--limit-rate", "16M", "-q"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        if kill_receiver {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            let _ = sender.wait();
        } else {
            let _ = sender.kill();
            sender.wait().unwrap();
        }
        let got = std::fs::read(&target).unwrap();
        assert!(
            got == old || got == new,
            "run {run} (after {wait} ms): a mix"
        );
        assert_eq!(names_in(out.path()), ["vm.img"], "run {run}");
        let server = if kill_receiver {
            recv(out.path())
        } else {
            server
        };
        send(&file, &server.addr, &[]);
        assert!(std::fs::read(&target).unwrap() == new, "run {run}");
    }
}

#[test]
fn a_killed_sender_leaves_the_old_file_or_the_new_one() {
    killed_in_the_middle(false);
}

#[test]
fn a_killed_receiver_leaves_the_old_file_or_the_new_one() {
    killed_in_the_middle(true);
}

/// Bytes of `path` that no other file shares, and its total, by `btrfs filesystem du`.
fn exclusive_and_total(path: &Path) -> (u64, u64) {
    let out = Command::new("btrfs")
        .args(["filesystem", "du", "--raw"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("btrfs du: {text}"));
    let mut words = line.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    let total = words.next().unwrap();
    (words.next().unwrap(), total)
}

#[test]
fn a_delta_on_btrfs_shares_the_old_files_extents() {
    let test = "a_delta_on_btrfs_shares_the_old_files_extents";
    let Some(mount) = LoopMount::new("btrfs", test) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("vm.img");
    let old = pattern(64 << 20);
    std::fs::write(&file, &old).unwrap();
    let mut server = Server::recv_once(&mount.path(), &[]);
    send(&file, &server.addr, &[]);
    assert!(server.wait().0.success());
    // The old version kept as a reflinked copy, to count what the new one shares.
    let kept = mount.path().join("kept");
    let status = Command::new("cp")
        .arg("--reflink=always")
        .arg(mount.path().join("vm.img"))
        .arg(&kept)
        .status()
        .unwrap();
    assert!(status.success());
    // 256 KiB overwritten at an offset no block or chunk boundary is at.
    let mut new = old.clone();
    let at = (20 << 20) + 12345;
    for b in &mut new[at..at + (256 << 10)] {
        *b = !*b;
    }
    std::fs::write(&file, &new).unwrap();
    let mut server = Server::recv_once(&mount.path(), &["--json"]);
    send(&file, &server.addr, &[]);
    let (status, stdout, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let cloned = json["delta"]["cloned"].as_u64().unwrap();
    assert!(cloned * 100 >= new.len() as u64 * 99, "{json}");
    let target = mount.path().join("vm.img");
    assert!(std::fs::read(&target).unwrap() == new);
    assert!(
        std::fs::read(&kept).unwrap() == old,
        "the old version changed"
    );
    assert!(Command::new("sync").status().unwrap().success());
    let (exclusive, total) = exclusive_and_total(&target);
    assert_eq!(total, new.len() as u64);
    let shared = 1.0 - exclusive as f64 / total as f64;
    eprintln!("{test}: {:.2}% shared", shared * 100.0);
    assert!(
        shared >= 0.99,
        "the new file shares {:.2}% of its bytes with the old one",
        shared * 100.0
    );
}

/// The receiver keeps the signature of a file it built from a delta: the next
/// delta to it reads no old file (`signature_cached` counts it), until the file
/// changes on the receiver (then it is read again); `--no-signature-cache` keeps none.
#[test]
fn a_kept_signature_spares_the_next_delta_a_read() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("disk.img");
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("disk.img");
    // One delta: the receiver's `delta` in its --json.
    let delta = |version: &[u8], extra: &[&str]| {
        std::fs::write(&file, version).unwrap();
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let mut server = Server::recv_once(out.path(), &args);
        send_json(&file, &server.addr, &[]);
        let (status, stdout, stderr) = server.wait();
        assert!(status.success(), "{stderr}");
        assert!(std::fs::read(&target).unwrap() == version);
        let json: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        json["delta"].clone()
    };
    let mut version = pattern(12 << 20);
    delta(&version, &[]);
    let edit = |v: &mut Vec<u8>, at: usize| {
        v[at..at + 5000].fill(at as u8);
        v.splice(at / 2..at / 2, [9u8; 77]);
    };
    // Came whole: its old version is read.
    edit(&mut version, 3 << 20);
    let d = delta(&version, &[]);
    assert_eq!(d["signature_cached"], 0, "{d}");
    // Built from a delta: its signature was kept, and it is still that file.
    let before = version.len() as u64;
    edit(&mut version, 7 << 20);
    let d = delta(&version, &[]);
    assert_eq!(d["signature_cached"].as_u64(), Some(before), "{d}");
    assert!(d["literal"].as_u64().unwrap() < 1 << 20, "{d}");
    // Changed on the receiver (a new mtime, so a new ctime): read again.
    let f = std::fs::File::options().write(true).open(&target).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    edit(&mut version, 9 << 20);
    let d = delta(&version, &[]);
    assert_eq!(d["signature_cached"], 0, "{d}");
    // Kept again by that delta, but not used without the cache.
    edit(&mut version, 5 << 20);
    let d = delta(&version, &["--no-signature-cache"]);
    assert_eq!(d["signature_cached"], 0, "{d}");
}
