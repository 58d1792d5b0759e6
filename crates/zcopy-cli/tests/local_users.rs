//! Another local user against a receiver or server on loopback: every local account
//! reaches 127.0.0.1, so without a secret (or `--auth-file`) only the receiver's own
//! user and root are let in, and no set-uid, set-gid or sticky bit lands unless a
//! sender that proved the secret asked for it (`send --keep-setuid`), and a set-uid
//! bit only on a file that keeps its owner (`-o`) and is not root's. The other user
//! is `nobody`, through `setpriv`; those tests need root and skip without it.

mod common;
mod wire;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{have, names_in, pattern, Server};

const NOBODY: &str = "65534";

/// Whether this test can switch to another user; if not, prints why it skips.
fn can_be_nobody(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP {test}: needs root to run a sender as uid {NOBODY} (CI runs it)");
        return false;
    }
    have("setpriv", test)
}

/// A directory every user can read, holding a copy of the binary under test (the
/// target directory may be closed to others) and the files to send.
fn open_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("zcopy");
    std::fs::copy(env!("CARGO_BIN_EXE_zcopy"), &bin).unwrap();
    (dir, bin)
}

/// `PROGRAM ARGS` run as uid/gid 65534 with no supplementary groups.
fn as_nobody(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(program)
    .args(args)
    .env_remove("ZCOPY_SECRET")
    .env("XDG_CACHE_HOME", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A set-uid, set-gid executable to send.
fn setuid_program(dir: &Path) -> PathBuf {
    let prog = dir.join("prog");
    std::fs::write(&prog, pattern(10_000)).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o6755)).unwrap();
    prog
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The fingerprint a receiver with `--secret-file` prints for senders.
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
fn another_user_is_refused_on_loopback_and_nothing_is_written() {
    if !can_be_nobody("another_user_is_refused_on_loopback_and_nothing_is_written") {
        return;
    }
    let (dir, bin) = open_dir();
    let prog = setuid_program(dir.path());
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let o = as_nobody(&bin, &["send", prog.to_str().unwrap(), &server.addr], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("uid 65534, another local user"), "{err}");
    server.await_lines("uid 65534", 1);
    assert!(names_in(out.path()).is_empty());
    // The refusal does not end a --once receiver; its own user still sends, and
    // without a secret the special bits are cleared.
    let o = common::zcopy()
        .args(["send", prog.to_str().unwrap(), &server.addr])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(mode_of(&out.path().join("prog")), 0o755);
    assert!(std::fs::read(out.path().join("prog")).unwrap() == pattern(10_000));
}

#[test]
fn another_user_is_refused_by_a_raw_receiver() {
    if !can_be_nobody("another_user_is_refused_by_a_raw_receiver") {
        return;
    }
    let (dir, bin) = open_dir();
    let prog = setuid_program(dir.path());
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("got");
    let server = Server::recv_once(&target, &["--raw"]);
    let o = as_nobody(
        &bin,
        &["send", "--raw", prog.to_str().unwrap(), &server.addr],
        &[],
    );
    server.await_lines("uid 65534", 1);
    assert!(!target.exists(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn with_a_secret_another_user_sends_but_special_bits_need_keep_setuid() {
    if !can_be_nobody("with_a_secret_another_user_sends_but_special_bits_need_keep_setuid") {
        return;
    }
    let (dir, bin) = open_dir();
    let prog = setuid_program(dir.path());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a secret both users know\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        secret.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
    ]);
    let fingerprint = fingerprint(&server);
    let env = [("ZCOPY_SECRET", "a secret both users know")];
    let send = |extra: &[&str]| {
        let mut args = vec!["send", "--fingerprint", &fingerprint];
        args.extend_from_slice(extra);
        args.extend([prog.to_str().unwrap(), server.addr.as_str()]);
        let o = as_nobody(&bin, &args, &env);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    send(&[]);
    assert_eq!(mode_of(&out.path().join("prog")), 0o755);
    // Its owner not kept, the program would be root's: the bits do not land.
    send(&["--keep-setuid"]);
    assert_eq!(mode_of(&out.path().join("prog")), 0o755);
    // Root's own set-uid program, from another user: not root's again here.
    send(&["--keep-setuid", "-og"]);
    assert_eq!(mode_of(&out.path().join("prog")), 0o755);
    // The sender's own program, its owner kept: the bits land, on nobody's file.
    std::os::unix::fs::chown(&prog, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o6755)).unwrap();
    send(&["--keep-setuid", "-og"]);
    let landed = std::fs::metadata(out.path().join("prog")).unwrap();
    assert_eq!(mode_of(&out.path().join("prog")), 0o6755);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&landed), 65534);
}

#[test]
fn keep_setuid_without_a_secret_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let prog = setuid_program(dir.path());
    let o = common::zcopy()
        .env_remove("ZCOPY_SECRET")
        .args([
            "send",
            "--keep-setuid",
            prog.to_str().unwrap(),
            "127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--keep-setuid needs a secret"), "{err}");
}

/// A FILE frame written by hand with set-uid, set-gid and sticky bits, from the
/// receiver's own user (no secret): the bits are cleared, for files and directories.
#[test]
fn crafted_frames_with_special_bits_land_without_them() {
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let content = pattern(5000);
    let mut session = wire::greeting(0);
    session.extend(wire::entry_with_mode(1, 1, "d", None, "", 0o7777));
    session.extend(wire::entry_with_mode(
        2,
        0,
        "d/f",
        Some(content.len() as u64),
        "",
        0o6755,
    ));
    session.extend(wire::data(2, 0, &content, None));
    session.extend(wire::end(2, content.len() as u64, &[&content]));
    session.extend(wire::done());
    let mut c = TcpStream::connect(&server.addr).unwrap();
    c.write_all(&session).unwrap();
    wire::read_greeting(&mut c).unwrap();
    assert_eq!(wire::verdict(&mut c), None);
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(mode_of(&out.path().join("d")), 0o777);
    assert_eq!(mode_of(&out.path().join("d/f")), 0o755);
    assert!(std::fs::read(out.path().join("d/f")).unwrap() == content);
}

#[test]
fn uploads_from_another_user_are_refused_without_auth_file() {
    if !can_be_nobody("uploads_from_another_user_are_refused_without_auth_file")
        || !have(
            "curl",
            "uploads_from_another_user_are_refused_without_auth_file",
        )
    {
        return;
    }
    let (dir, _) = open_dir();
    let prog = setuid_program(dir.path());
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "serve",
        root.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--upload",
    ]);
    let url = format!("http://{}/prog", server.addr);
    let curl = |nobody: bool| {
        let args = [
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-T",
            prog.to_str().unwrap(),
            &url,
        ];
        let o = if nobody {
            as_nobody(Path::new("curl"), &args, &[])
        } else {
            Command::new("curl").args(args).output().unwrap()
        };
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(curl(true), "403");
    assert!(names_in(root.path()).is_empty());
    // Its own user uploads; the file gets no execute or special bit from anyone.
    assert_eq!(curl(false), "201");
    assert_eq!(mode_of(&root.path().join("prog")) & 0o7111, 0);
}

#[test]
fn downloads_get_a_new_file_mode_not_the_servers() {
    let root = tempfile::tempdir().unwrap();
    setuid_program(root.path());
    let server = Server::start(&[
        "serve",
        root.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("prog");
    let o = common::zcopy()
        .args(["get", &format!("http://{}/prog", server.addr), "-o"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&target).unwrap() == pattern(10_000));
    assert_eq!(mode_of(&target) & 0o7111, 0);
}

#[test]
fn insecure_on_loopback_admits_any_local_user_and_says_so() {
    if !can_be_nobody("insecure_on_loopback_admits_any_local_user_and_says_so") {
        return;
    }
    let (dir, bin) = open_dir();
    let prog = setuid_program(dir.path());
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("got");
    let mut server = Server::recv_once(&target, &["--raw", "--insecure"]);
    let o = as_nobody(
        &bin,
        &["send", "--raw", prog.to_str().unwrap(), &server.addr],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("any local user can write here"), "{stderr}");
    assert!(std::fs::read(&target).unwrap() == pattern(10_000));
    assert_eq!(mode_of(&target) & 0o7111, 0);
}
