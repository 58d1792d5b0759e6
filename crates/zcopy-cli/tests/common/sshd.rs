//! A throwaway sshd with its own host key and authorized key, in the foreground,
//! on 127.0.0.1 or inside a network namespace; the remote zcopy is the binary
//! under test (`--zcopy-path`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// An sshd of the test's own, killed when dropped.
pub struct Sshd {
    child: Child,
    pub port: u16,
    key: PathBuf,
}

impl Sshd {
    /// An sshd on 127.0.0.1; `None`, with the reason printed, where it cannot run.
    pub fn start(dir: &Path, test: &str) -> Option<Sshd> {
        Sshd::start_in(dir, test, None, "127.0.0.1")
    }

    /// An sshd listening on `addr` inside network namespace `netns` (`None`: this
    /// one), its keys in `dir`.
    pub fn start_in(dir: &Path, test: &str, netns: Option<&str>, addr: &str) -> Option<Sshd> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() || !super::have("ssh-keygen", test) {
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
        let port = super::free_port();
        let config = format!(
            "Port {port}\nListenAddress {addr}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(sshd);
                cmd
            }
            None => Command::new(sshd),
        };
        let mut child = cmd
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // sshd -e says "Server listening on ADDR port N." once it is; what it says
        // after (each login) is read and dropped, so that it never blocks.
        let (told, listening) = mpsc::channel();
        let log = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if line.starts_with("Server listening on") {
                    let _ = told.send(());
                }
            }
        });
        let sshd = Sshd {
            child,
            port,
            key: dir.join("user_key"),
        };
        if listening.recv_timeout(Duration::from_secs(10)).is_err() {
            eprintln!("SKIP {test}: sshd did not start on {addr}:{port}");
            return None;
        }
        Some(sshd)
    }

    /// The `-e` command for this sshd, on `port` (another one to see ssh fail).
    pub fn rsh(&self, port: u16) -> String {
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
