//! Files that misbehave under zcopy, from a FUSE file system the test mounts
//! (`tests/fuse/faultfs.py`, root and python3-fusepy only; skipped with a reason
//! elsewhere): short reads must not end a copy early, and an I/O error must give
//! one line naming the file, a non-zero exit and no file under the target's name.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{have, names_in, zcopy, Server};

const SIZE: usize = 4 << 20;
const MIB: usize = 1 << 20;

/// What every file of the test file system holds at each offset.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 3) & 0xFF) as u8).collect()
}

/// The file system, mounted for one test and unmounted when dropped.
struct FaultFs {
    dir: tempfile::TempDir,
    child: Child,
}

impl FaultFs {
    fn mount(test: &str) -> Option<FaultFs> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP {test}: mounting a FUSE file system needs root");
            return None;
        }
        let python = Path::new("/usr/bin/python3");
        let fusepy = Command::new(python)
            .args(["-c", "import fusepy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !fusepy || !Path::new("/dev/fuse").exists() {
            eprintln!("SKIP {test}: needs /dev/fuse and python3-fusepy (.ci/run installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuse/faultfs.py");
        // Its stderr goes to a file, which no full pipe can block.
        let log = tempfile::tempfile().unwrap();
        let child = Command::new(python)
            .arg(script)
            .arg(dir.path())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .unwrap();
        let mut fs = FaultFs { dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fs.path("short.bin").exists() {
            if fs.child.try_wait().unwrap().is_some() {
                // The kernel or a sandbox refused the mount: say why and skip.
                let mut why = String::new();
                let mut log = log;
                let _ = log.seek(SeekFrom::Start(0));
                let _ = log.read_to_string(&mut why);
                let why = why.lines().last().unwrap_or("no reason given");
                eprintln!("SKIP {test}: the FUSE file system did not mount: {why}");
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "the FUSE file system did not mount"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(fs)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The one line an I/O error gives: it names `name` and the cause.
fn one_eio_line(o: &Output, name: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(name) && err.contains("Input/output error"),
        "{err}"
    );
}

/// A FUSE file answering 1000 bytes a read: the kernel's splice path takes the
/// first short read for the end of the file (sendfile stopped at byte 1000); cp
/// must read the rest instead of losing it. An I/O error midway leaves nothing.
#[test]
fn cp_reads_past_short_reads_and_stops_clean_on_eio() {
    let Some(fs) = FaultFs::mount("cp_reads_past_short_reads_and_stops_clean_on_eio") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let copy = out.path().join("short.bin");
    let o = zcopy()
        .args(["cp", "-vv"])
        .arg(fs.path("short.bin"))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&copy).unwrap() == content(SIZE));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("reading the rest"), "{said}");

    // One engine chosen, which would stop at the short read: an error, not a
    // quarter of the file.
    let o = zcopy()
        .args(["cp", "--engine", "sendfile"])
        .arg(fs.path("short.bin"))
        .arg(out.path().join("only-sendfile.bin"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("use the read-write engine"),
        "{}",
        stderr(&o)
    );

    let o = zcopy()
        .arg("cp")
        .arg(fs.path("eio.bin"))
        .arg(out.path().join("eio.bin"))
        .output()
        .unwrap();
    one_eio_line(&o, "eio.bin");
    assert_eq!(names_in(out.path()), ["short.bin"]);

    // A file that ends before its size is copied as far as it goes, as GNU cp does.
    let o = zcopy()
        .arg("cp")
        .arg(fs.path("shrinks.bin"))
        .arg(out.path().join("shrinks.bin"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(out.path().join("shrinks.bin")).unwrap() == content(MIB));
}

/// scan digests every byte through short reads, and names the file on EIO.
#[test]
fn scan_digests_short_reads_whole_and_names_eio() {
    let Some(fs) = FaultFs::mount("scan_digests_short_reads_whole_and_names_eio") else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let same = local.path().join("short.bin");
    std::fs::write(&same, content(SIZE)).unwrap();
    let digest = |path: &Path| {
        let o = zcopy()
            .args(["scan", "--digest", "xxh3"])
            .arg(path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest(&fs.path("short.bin")), digest(&same));
    let o = zcopy()
        .arg("scan")
        .arg(fs.path("eio.bin"))
        .output()
        .unwrap();
    one_eio_line(&o, "eio.bin");
}

/// send → recv: short reads arrive whole; EIO midway fails the sender with one
/// line and leaves nothing under the name at the receiver.
#[test]
fn send_moves_short_reads_whole_and_stops_clean_on_eio() {
    let Some(fs) = FaultFs::mount("send_moves_short_reads_whole_and_stops_clean_on_eio") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let o = zcopy()
        .arg("send")
        .arg(fs.path("short.bin"))
        .arg(&server.addr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(server.wait().0.success());
    assert!(std::fs::read(out.path().join("short.bin")).unwrap() == content(SIZE));

    let mut server = Server::recv_once(out.path(), &[]);
    let o = zcopy()
        .arg("send")
        .arg(fs.path("eio.bin"))
        .arg(&server.addr)
        .output()
        .unwrap();
    one_eio_line(&o, "eio.bin");
    let _ = server.wait();
    assert!(!out.path().join("eio.bin").exists());
}

/// serve answers a file of short reads whole (curl checks the length).
#[test]
fn serve_answers_short_reads_whole() {
    if !have("curl", "serve_answers_short_reads_whole") {
        return;
    }
    let Some(fs) = FaultFs::mount("serve_answers_short_reads_whole") else {
        return;
    };
    let server = Server::start(&[
        "serve",
        fs.dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let o = Command::new("curl")
        .args(["-sf", &format!("http://{}/short.bin", server.addr)])
        .output()
        .unwrap();
    assert!(o.status.success(), "curl exit {:?}", o.status.code());
    assert!(o.stdout == content(SIZE));
}
