//! ssh as the way in (issue 23): `send PATH... host:DIR` and `recv host:PATH...`
//! through a throwaway sshd on 127.0.0.1 that this test starts with its own host
//! key and authorized key, the remote zcopy being the binary under test
//! (`--zcopy-path`). Skips with the reason where sshd is missing or cannot start.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::sshd::Sshd;
use common::{free_port, names_in, pattern, zcopy, Tmpfs};

/// `zcopy ARGS... -e RSH --zcopy-path THIS-BINARY`, its output.
fn over(sshd: &Sshd, args: &[OsString]) -> Output {
    zcopy()
        .args(args)
        .arg("-e")
        .arg(sshd.rsh(sshd.port))
        .arg("--zcopy-path")
        .arg(env!("CARGO_BIN_EXE_zcopy"))
        .output()
        .unwrap()
}

fn os(parts: &[&[u8]]) -> OsString {
    OsString::from_vec(parts.concat())
}

/// A tree with a small file, a 3 MiB one (several blocks, so `-j 2` uses both
/// streams), a subdirectory and a name that is not UTF-8.
fn tree(root: &Path) -> PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("small"), b"hello\n").unwrap();
    std::fs::write(src.join("sub/big"), pattern(3 << 20)).unwrap();
    std::fs::write(src.join(os(&[b"bad\xffname"])), b"odd\n").unwrap();
    src
}

fn same_tree(a: &Path, b: &Path) {
    let diff = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tree_with_a_non_utf8_name_is_pushed_and_pulled_over_direct_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path(), "ssh push/pull") else {
        return;
    };
    let src = tree(dir.path());
    let pushed = dir.path().join("pushed");
    let dest = os(&[b"127.0.0.1:", pushed.as_os_str().as_encoded_bytes(), b"/"]);
    let out = over(
        &sshd,
        &[
            "send".into(),
            src.clone().into(),
            dest,
            "-j".into(),
            "2".into(),
        ],
    );
    ok(&out);
    same_tree(&src, &pushed.join("src"));
    let pulled = dir.path().join("pulled");
    let from = os(&[b"127.0.0.1:", src.as_os_str().as_encoded_bytes()]);
    let args = [
        "recv".into(),
        from,
        "-o".into(),
        os(&[pulled.as_os_str().as_encoded_bytes(), b"/"]),
        "-j".into(),
        "2".into(),
    ];
    let out = over(&sshd, &args);
    ok(&out);
    same_tree(&src, &pulled.join("src"));
}

#[test]
fn ssh_data_carries_the_session_inside_the_ssh_channel() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path(), "ssh --ssh-data") else {
        return;
    };
    let src = tree(dir.path());
    let pushed = dir.path().join("pushed");
    let dest = os(&[b"127.0.0.1:", pushed.as_os_str().as_encoded_bytes(), b"/"]);
    ok(&over(
        &sshd,
        &["send".into(), src.clone().into(), dest, "--ssh-data".into()],
    ));
    same_tree(&src, &pushed.join("src"));
    let pulled = dir.path().join("pulled");
    let from = os(&[b"127.0.0.1:", src.as_os_str().as_encoded_bytes()]);
    let to = os(&[pulled.as_os_str().as_encoded_bytes(), b"/"]);
    ok(&over(
        &sshd,
        &["recv".into(), from, "-o".into(), to, "--ssh-data".into()],
    ));
    same_tree(&src, &pulled.join("src"));
}

#[test]
fn ssh_failing_is_one_line_and_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path(), "ssh failures") else {
        return;
    };
    let src = tree(dir.path());
    let dest = os(&[b"127.0.0.1:", dir.path().as_os_str().as_encoded_bytes()]);
    // Nothing listens on the wrong port: ssh's own failure, 255.
    let out = zcopy()
        .arg("send")
        .arg(&src)
        .arg(&dest)
        .arg("-e")
        .arg(sshd.rsh(free_port()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("ssh failed") && stderr.contains("Connection refused"),
        "{stderr}"
    );
    // No zcopy there: the remote shell's 127, said once.
    let out = zcopy()
        .arg("send")
        .arg(&src)
        .arg(&dest)
        .arg("-e")
        .arg(sshd.rsh(sshd.port))
        .args(["--zcopy-path", "/nonexistent/zcopy"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("command not found") && stderr.contains("--zcopy-path"),
        "{stderr}"
    );
    // A remote path that is not there: the remote zcopy's words and code.
    let from = os(&[
        b"127.0.0.1:",
        dir.path().join("missing").as_os_str().as_encoded_bytes(),
    ]);
    let out = over(
        &sshd,
        &["recv".into(), from, "-o".into(), dir.path().into()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missing: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn a_remote_receiver_out_of_space_fails_and_leaves_no_file_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path(), "ssh no space") else {
        return;
    };
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&small, "size=1m", "ssh no space") else {
        return;
    };
    let src = tree(dir.path());
    let dest = os(&[b"127.0.0.1:", small.as_os_str().as_encoded_bytes()]);
    let big = src.join("sub/big");
    let out = over(&sshd, &["send".into(), big.into(), dest]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        !names_in(&small).iter().any(|n| n == "big"),
        "{:?}",
        names_in(&small)
    );
}

#[test]
fn attribute_flags_reach_the_remote_side_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path(), "ssh attributes") else {
        return;
    };
    let src = tree(dir.path());
    std::fs::hard_link(src.join("small"), src.join("sub/small-again")).unwrap();
    let xattr = rustix::fs::XattrFlags::empty();
    rustix::fs::setxattr(src.join("small").as_path(), "user.k", b"v", xattr).unwrap();
    let linked = |root: &Path| {
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(root.join("small")).unwrap();
        let b = std::fs::metadata(root.join("sub/small-again")).unwrap();
        let mut v = [0u8; 8];
        let n = rustix::fs::getxattr(root.join("small").as_path(), "user.k", &mut v[..]).unwrap();
        assert_eq!(&v[..n], b"v");
        assert_eq!(a.ino(), b.ino());
    };
    let pushed = dir.path().join("pushed");
    let dest = os(&[b"127.0.0.1:", pushed.as_os_str().as_encoded_bytes(), b"/"]);
    ok(&over(
        &sshd,
        &["send".into(), "-aHX".into(), src.clone().into(), dest],
    ));
    linked(&pushed.join("src"));
    let pulled = dir.path().join("pulled");
    let from = os(&[b"127.0.0.1:", src.as_os_str().as_encoded_bytes()]);
    let to = os(&[pulled.as_os_str().as_encoded_bytes(), b"/"]);
    ok(&over(
        &sshd,
        &["recv".into(), "-aHX".into(), from, "-o".into(), to],
    ));
    linked(&pulled.join("src"));
}

/// A tree that a rate-limited push is caught in the middle of: 200 files of
/// about 4 KiB in `a/`, a 16 MiB file, 200 more in `z/` (sent in that order).
fn tree_to_interrupt(root: &Path) -> PathBuf {
    let src = root.join("src");
    for d in ["a", "z"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        for i in 0..200 {
            std::fs::write(src.join(format!("{d}/f{i:03}")), pattern(4000 + i)).unwrap();
        }
    }
    std::fs::write(src.join("m-big"), pattern(16 << 20)).unwrap();
    src
}

/// The regular files under `dir` by their names relative to it, and apart from
/// them the partial files of interrupted transfers (`.NAME.zcopy-part`,
/// `.NAME.zcopy-manifest`).
fn files_in(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    fn walk(root: &Path, rel: &Path, out: &mut (Vec<PathBuf>, Vec<PathBuf>)) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = rel.join(entry.file_name());
            let text = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &name, out);
            } else if text.ends_with(".zcopy-part") || text.ends_with(".zcopy-manifest") {
                out.1.push(name);
            } else {
                out.0.push(name);
            }
        }
    }
    let mut found = (Vec::new(), Vec::new());
    walk(dir, Path::new(""), &mut found);
    found.0.sort();
    found
}

/// A `--zcopy-path` program that writes its pid to `dir/remote.pid` and then
/// becomes the zcopy under test, so that the test can kill the remote side.
fn pid_telling_zcopy(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("remote-zcopy");
    let script = format!(
        "#!/bin/sh\necho $$ > {}\nexec {} \"$@\"\n",
        dir.join("remote.pid").display(),
        env!("CARGO_BIN_EXE_zcopy")
    );
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

/// Which side of a push `kill -9` ends.
#[derive(Clone, Copy, Debug)]
enum Victim {
    LocalSender,
    RemoteReceiver,
}

/// Pushes a tree over ssh at 8 MB/s, kills `victim` with SIGKILL once the large
/// file in the middle is half there, then pushes again: every file under a real
/// name was whole after the kill, the second push sends exactly the files that
/// were missing (its `-i` lines) and no more bytes than they hold, and the trees
/// end equal with no partial file left.
fn killed_then_pushed_again(victim: Victim) {
    let test = format!("ssh kill -9 {victim:?}");
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path(), &test) else {
        return;
    };
    let src = tree_to_interrupt(dir.path());
    let pushed = dir.path().join("pushed");
    let dest = os(&[b"127.0.0.1:", pushed.as_os_str().as_encoded_bytes(), b"/"]);
    let mut sender = zcopy()
        .arg("send")
        .arg(&src)
        .arg(&dest)
        .args(["--limit-rate", "8M", "-q", "-e"])
        .arg(sshd.rsh(sshd.port))
        .arg("--zcopy-path")
        .arg(pid_telling_zcopy(dir.path()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let part = pushed.join("src/.m-big.zcopy-part");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 8 << 20 {
        let ended = sender.try_wait().unwrap().is_some();
        assert!(
            !ended && Instant::now() < deadline,
            "{test}: no part file grew"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let remote = std::fs::read_to_string(dir.path().join("remote.pid")).unwrap();
    let remote = rustix::process::Pid::from_raw(remote.trim().parse().unwrap()).unwrap();
    match victim {
        Victim::LocalSender => sender.kill().unwrap(),
        Victim::RemoteReceiver => {
            rustix::process::kill_process(remote, rustix::process::Signal::KILL).unwrap()
        }
    }
    assert!(!sender.wait().unwrap().success(), "{test}");
    // The remote side of a killed sender ends when its ssh channel closes; the
    // next push must not meet it.
    let proc = PathBuf::from(format!("/proc/{}", remote.as_raw_nonzero()));
    while proc.exists() {
        assert!(
            Instant::now() < deadline,
            "{test}: the remote zcopy lives on"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (landed, partial) = files_in(&pushed.join("src"));
    for name in &landed {
        let whole = std::fs::read(src.join(name)).unwrap();
        assert!(
            std::fs::read(pushed.join("src").join(name)).unwrap() == whole,
            "{test}: {name:?} is under its name but not whole"
        );
    }
    let (all, _) = files_in(&src);
    let missing: Vec<&PathBuf> = all.iter().filter(|n| !landed.contains(n)).collect();
    let missing_bytes: u64 = missing
        .iter()
        .map(|n| std::fs::metadata(src.join(n)).unwrap().len())
        .sum();
    eprintln!(
        "{test}: {} files landed, {} missing ({missing_bytes} bytes), partial {partial:?}",
        landed.len(),
        missing.len()
    );
    assert!(
        !missing.is_empty() && landed.len() >= 200,
        "{test}: not mid-way"
    );

    let again = over(
        &sshd,
        &[
            "send".into(),
            "-i".into(),
            "--json".into(),
            src.clone().into(),
            dest,
        ],
    );
    ok(&again);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let bytes = json["bytes"].as_u64().unwrap();
    let mut sent: Vec<PathBuf> = String::from_utf8_lossy(&again.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix(">f"))
        .filter_map(|l| l.split_once(" src/"))
        .map(|(_, name)| PathBuf::from(name))
        .collect();
    sent.sort();
    eprintln!(
        "{test}: the second push sent {} files, {bytes} bytes",
        sent.len()
    );
    assert_eq!(sent.iter().collect::<Vec<_>>(), missing, "{test}");
    assert!(bytes <= missing_bytes, "{test}: sent {bytes} bytes");
    // The large file's verified blocks stayed: it is not sent whole again.
    if partial.iter().any(|p| p.ends_with(".m-big.zcopy-part")) {
        assert!(bytes < missing_bytes, "{test}: m-big was sent whole again");
    }
    same_tree(&src, &pushed.join("src"));
    let (_, partial) = files_in(&pushed.join("src"));
    assert!(partial.is_empty(), "{test}: left {partial:?}");
}

#[test]
fn a_push_whose_sender_was_killed_sends_only_what_is_missing() {
    killed_then_pushed_again(Victim::LocalSender);
}

#[test]
fn a_push_whose_remote_receiver_was_killed_sends_only_what_is_missing() {
    killed_then_pushed_again(Victim::RemoteReceiver);
}
