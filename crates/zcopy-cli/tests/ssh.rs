//! ssh as the way in (issue 23): `send PATH... host:DIR` and `recv host:PATH...`
//! through a throwaway sshd on 127.0.0.1 that this test starts with its own host
//! key and authorized key, the remote zcopy being the binary under test
//! (`--zcopy-path`). Skips with the reason where sshd is missing or cannot start.

mod common;

use std::ffi::OsString;
use std::net::TcpStream;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, names_in, pattern, zcopy, Tmpfs};

/// An sshd of this test's own, in the foreground, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, test: &str) -> Option<Sshd> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() || !common::have("ssh-keygen", test) {
            eprintln!(
                "SKIP {test}: sshd is not installed (scripts/test.sh installs openssh-server)"
            );
            return None;
        }
        for name in ["host_key", "user_key"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .status()
                .unwrap();
            assert!(made.success());
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        // Privilege separation wants its empty directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut sshd = Sshd {
            child,
            port,
            key: dir.join("user_key"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || sshd.child.try_wait().unwrap().is_some() {
                eprintln!("SKIP {test}: sshd did not start on 127.0.0.1:{port}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sshd)
    }

    /// The `-e` command for this sshd, on `port` (another one to see ssh fail).
    fn rsh(&self, port: u16) -> String {
        format!(
            "ssh -p {port} -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.key.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
