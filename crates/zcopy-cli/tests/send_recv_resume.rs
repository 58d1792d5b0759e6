//! Interrupted transfers resume; large files spread over `-j N` connections; a
//! 10 GiB sparse file keeps its holes. Each kill is `kill -9` at a random moment
//! (the seed and the moments are printed, to replay a failure).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{names_in, pattern, zcopy, Server};

fn recv(out: &Path) -> Server {
    Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.to_str().unwrap(),
    ])
}

/// A small xorshift, seeded from the clock (printed).
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("dice seed {seed}");
        Dice(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sends `file` to completion and returns the payload bytes the sender moved.
fn send_to_end(file: &Path, addr: &str, extra: &[&str]) -> u64 {
    let o = zcopy()
        .arg("send")
        .arg(file)
        .arg(addr)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json["bytes"].as_u64().unwrap()
}

fn slow_sender(file: &Path, addr: &str) -> std::process::Child {
    zcopy()
        .arg("send")
        .arg(file)
        .arg(addr)
        .args(["--limit-rate", "16M", "-q"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_sender_resumes_with_the_missing_blocks() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("data.bin");
    let data = pattern((24 << 20) + 12345);
    std::fs::write(&file, &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = recv(out.path());
    let mut dice = Dice::new();
    let mut kept = 0;
    for run in 1..=10 {
        let wait = dice.below(1000);
        eprintln!("run {run}: kill -9 the sender {wait} ms after the first blocks landed");
        let mut sender = slow_sender(&file, &server.addr);
        await_part(out.path(), &mut sender);
        std::thread::sleep(Duration::from_millis(wait));
        let _ = sender.kill();
        let finished = sender.wait().unwrap().success();
        if !finished {
            kept += usize::from(await_kept_or_landed(&server, out.path(), kept + 1));
        }
        resume_completes(&file, &data, &server.addr, out.path(), run, finished);
    }
}

#[test]
fn a_killed_receiver_resumes_with_the_missing_blocks() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("data.bin");
    let data = pattern((24 << 20) + 999);
    std::fs::write(&file, &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut dice = Dice::new();
    for run in 1..=10 {
        let mut server = recv(out.path());
        let wait = dice.below(1000);
        eprintln!("run {run}: kill -9 the receiver {wait} ms after the first blocks landed");
        let mut sender = slow_sender(&file, &server.addr);
        await_part(out.path(), &mut sender);
        std::thread::sleep(Duration::from_millis(wait));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let finished = sender.wait().unwrap().success();
        let server = recv(out.path());
        resume_completes(&file, &data, &server.addr, out.path(), run, finished);
    }
}

/// Waits until the receiver's part file in `out` holds two 4 MiB blocks, so that a
/// kill after it leaves something to resume however loaded the machine is (or
/// until `sender` has ended).
fn await_part(out: &Path, sender: &mut std::process::Child) {
    let part = out.join(".data.bin.zcopy-part");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 8 << 20 {
        if sender.try_wait().unwrap().is_some() || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the receiver has said `n` times that it kept the partial file, or has
/// put the whole file in place (a sender killed after its last block); true for the
/// first. Runs whose sender finished or whose file landed print no such line.
fn await_kept_or_landed(server: &Server, out: &Path, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if server.stderr().matches("kept the partial file").count() >= n {
            return true;
        }
        if out.join("data.bin").exists() {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "no kept line: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `file` (holding `data`) again to `addr`, which lands in `out`: less than the
/// whole file travels (unless the killed transfer had `finished`), the result is
/// the source byte for byte, and no partial state is left. Empties `out` after.
fn resume_completes(file: &Path, data: &[u8], addr: &str, out: &Path, run: usize, finished: bool) {
    let sent = send_to_end(file, addr, &[]);
    eprintln!(
        "run {run}: the resumed send moved {sent} of {} bytes",
        data.len()
    );
    assert!(
        sent < data.len() as u64 || finished,
        "run {run}: resent all {sent} bytes"
    );
    assert!(
        std::fs::read(out.join("data.bin")).unwrap() == data,
        "run {run}"
    );
    assert_eq!(names_in(out), ["data.bin"], "run {run}");
    std::fs::remove_file(out.join("data.bin")).unwrap();
}

/// `--resume` skips files already in place (asking a window of files at a time)
/// and sends those that changed.
#[test]
fn resume_skips_what_is_in_place() {
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("t");
    std::fs::create_dir(&tree).unwrap();
    // More files than one window of asks (256).
    for i in 0..300 {
        std::fs::write(tree.join(format!("f{i}")), pattern(100 * i + 1)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let server = recv(out.path());
    let first = send_to_end(&tree, &server.addr, &["--resume"]);
    assert!(first > 0);
    assert_eq!(
        send_to_end(&tree, &server.addr, &["--resume"]),
        0,
        "all in place"
    );
    std::fs::write(tree.join("f3"), b"changed").unwrap();
    assert_eq!(send_to_end(&tree, &server.addr, &["--resume"]), 7);
    assert_eq!(std::fs::read(out.path().join("t/f3")).unwrap(), b"changed");
}

#[test]
fn parallel_streams_carry_one_file_and_a_tree() {
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("t");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let big = pattern((41 << 20) + 3);
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    for i in 0..50 {
        std::fs::write(tree.join(format!("sub/s{i}")), pattern(i * 97)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let o = zcopy()
        .arg("send")
        .arg(&tree)
        .arg(&server.addr)
        .args(["-j", "4", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["streams"], 4);
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert!(std::fs::read(out.path().join("t/big.bin")).unwrap() == big);
    for i in 0..50 {
        assert_eq!(
            std::fs::read(out.path().join(format!("t/sub/s{i}"))).unwrap(),
            pattern(i * 97)
        );
    }
    assert_eq!(names_in(&out.path().join("t")), ["big.bin", "sub"]);
}

/// A 10 GiB file with three data regions: sent as its data blocks and HOLE
/// messages, it arrives with the same bytes and (nearly) no allocated blocks.
#[test]
fn a_10_gib_sparse_file_keeps_its_holes() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("sparse.img");
    let f = std::fs::File::create(&file).unwrap();
    let size = 10u64 << 30;
    f.set_len(size).unwrap();
    let marks = [
        (0u64, pattern(5000)),
        (5 << 30, pattern(70_000)),
        (size - 100, pattern(100)),
    ];
    for (at, bytes) in &marks {
        f.write_all_at(bytes, *at).unwrap();
    }
    f.sync_all().unwrap();
    if f.metadata().unwrap().blocks() * 512 > 64 << 20 {
        eprintln!(
            "SKIP a_10_gib_sparse_file_keeps_its_holes: this file system does not keep holes"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let sent = send_to_end(&file, &server.addr, &[]);
    assert!(sent <= 3 * (4 << 20), "sent {sent} bytes of holes");
    assert!(server.wait().0.success());
    let got = std::fs::File::open(out.path().join("sparse.img")).unwrap();
    let meta = got.metadata().unwrap();
    assert_eq!(meta.len(), size);
    assert!(
        meta.blocks() * 512 <= 16 << 20,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    for (at, bytes) in &marks {
        let mut back = vec![0u8; bytes.len()];
        got.read_exact_at(&mut back, *at).unwrap();
        assert!(&back == bytes, "data at {at}");
    }
    let mut zeros = vec![1u8; 1 << 20];
    got.read_exact_at(&mut zeros, 3 << 30).unwrap();
    assert!(zeros.iter().all(|&b| b == 0));
}

/// SIGTERM to the receiver leaves nothing of a file that could never resume (from
/// standard input: no size, no manifest) and keeps a resumable one.
#[test]
fn sigterm_removes_partials_that_cannot_resume() {
    use std::io::Write;
    let out = tempfile::tempdir().unwrap();
    let mut server = recv(out.path());
    let mut sender = zcopy()
        .args(["send", "-", "--name", "s.bin", &server.addr, "-q"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = sender.stdin.take().unwrap();
    stdin.write_all(&pattern(100_000)).unwrap();
    // The partial file is unnamed (O_TMPFILE) where the file system allows, named
    // `.s.bin.zcopy-part` elsewhere: either way it must be gone after SIGTERM.
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    server.child.wait().unwrap();
    drop(stdin);
    let _ = sender.wait();
    assert!(
        names_in(out.path()).is_empty(),
        "{:?}",
        names_in(out.path())
    );

    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    std::fs::write(&file, pattern(24 << 20)).unwrap();
    let mut server = recv(out.path());
    let mut sender = slow_sender(&file, &server.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !names_in(out.path()).contains(&".big.bin.zcopy-manifest".to_string()) {
        assert!(Instant::now() < deadline, "no manifest appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    server.child.wait().unwrap();
    let _ = sender.wait();
    assert_eq!(
        names_in(out.path()),
        [".big.bin.zcopy-manifest", ".big.bin.zcopy-part"]
    );
}
