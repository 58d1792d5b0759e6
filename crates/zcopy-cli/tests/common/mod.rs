//! What the integration tests share: the binary, servers started on port 0, test
//! data, and skipping with a printed reason when a peer program is missing.
#![allow(dead_code)] // each test file uses its own part of this module

pub mod sshd;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The zcopy binary under test, blind to any calibration profile the developer's
/// own `zcopy bench --calibrate` left in ~/.cache (a test that wants one sets
/// `XDG_CACHE_HOME` itself).
pub fn zcopy() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zcopy"));
    cmd.env(
        "XDG_CACHE_HOME",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/no-calibration"),
    );
    cmd
}

/// Deterministic bytes that differ at every offset.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Whether `tool` runs here; if not, prints why the caller skips.
pub fn have(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIP {test}: {tool} is not installed (.ci/run installs it)");
    }
    found
}

/// A port that was free a moment ago, for peers that cannot listen on port 0 and
/// report it (nc).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A zcopy server (recv, echo, serve) on port 0, its stderr collected.
pub struct Server {
    pub child: Child,
    pub addr: String,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `zcopy ARGS` and waits for its "listening on ADDR" line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_in(args, None)
    }

    /// `zcopy serve ROOT --listen 127.0.0.1:0 --workers N`, then `extra`.
    pub fn serve(root: &std::path::Path, workers: u32, extra: &[&str]) -> Server {
        let workers = workers.to_string();
        let mut args = vec![
            "serve",
            root.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            &workers,
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// `zcopy recv --once --listen 127.0.0.1:0 -o OUT`, then `extra`.
    pub fn recv_once(out: &std::path::Path, extra: &[&str]) -> Server {
        let out = out.to_str().unwrap();
        let mut args = vec!["recv", "--once", "--listen", "127.0.0.1:0", "-o", out];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    pub fn start_in<S: AsRef<std::ffi::OsStr>>(
        args: &[S],
        dir: Option<&std::path::Path>,
    ) -> Server {
        let mut cmd = zcopy();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no listening line, got {first:?}"))
            .to_string();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server {
            child,
            addr,
            stderr,
            reader: Some(reader),
        }
    }

    /// Waits up to 60 s for the server to exit on its own (`--once`); returns its
    /// status, stdout and stderr.
    pub fn wait(&mut self) -> (ExitStatus, Vec<u8>, String) {
        let stdout = self.child.stdout.take().map(|mut stdout| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                stdout.read_to_end(&mut out).unwrap();
                out
            })
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let out = stdout.map(|t| t.join().unwrap()).unwrap_or_default();
        (status, out, self.stderr())
    }

    /// Waits (20 s at most) until the server's stderr holds `n` lines with `what`:
    /// a line is collected by a thread, a moment after the server wrote it.
    pub fn await_lines(&self, what: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.stderr().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "no {what:?} line: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server printed on stderr after its listening line, so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The names in a directory, sorted (to prove no partial file was left).
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A test CA and a server certificate it signed for `localhost` and 127.0.0.1, made
/// with the openssl command in `dir`: (CA certificate, server certificate, key).
/// `None` (with the reason printed) where openssl is missing.
pub fn test_ca(dir: &std::path::Path, test: &str) -> Option<(String, String, String)> {
    if !have("openssl", test) {
        return None;
    }
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.pem"),
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("ext.cnf"),
    );
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                &ca_key,
                "-out",
                &ca,
                "-days",
                "2",
                "-subj",
                "/CN=zcopy test CA",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    ];
    for args in steps {
        let o = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Some((ca, cert, key))
}

/// A tmpfs of `options` (such as `size=1m`) mounted on `dir` for one test, and
/// unmounted when dropped; `None`, with the reason printed, where mounting needs
/// a root this process is not.
pub struct Tmpfs<'a>(&'a std::path::Path);

impl<'a> Tmpfs<'a> {
    pub fn mount(dir: &'a std::path::Path, options: &str, test: &str) -> Option<Tmpfs<'a>> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("SKIP {test}: cannot mount a tmpfs (needs root)");
        }
        mounted.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// A file system image on a loop device, unmounted and detached on drop.
pub struct LoopMount {
    dir: tempfile::TempDir,
    device: String,
}

impl LoopMount {
    pub fn new(fs: &str, test: &str) -> Option<LoopMount> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP {test}: needs root for losetup and mount");
            return None;
        }
        let mkfs = format!("mkfs.{fs}");
        if !have(&mkfs, test) || !have("losetup", test) || !have("filefrag", test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(512 << 20)
            .unwrap();
        let ok = |cmd: &mut Command| {
            cmd.output().map(|o| {
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stdout).trim().to_string(),
                )
            })
        };
        let (made, _) = ok(Command::new(&mkfs).arg("-q").arg(&image)).unwrap();
        assert!(made, "{mkfs} failed");
        let (attached, device) =
            ok(Command::new("losetup").args(["-f", "--show"]).arg(&image)).unwrap();
        if !attached {
            eprintln!("SKIP {test}: losetup could not attach a loop device here");
            return None;
        }
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let (mounted, _) = ok(Command::new("mount").arg(&device).arg(&mnt)).unwrap();
        if !mounted {
            let _ = Command::new("losetup").args(["-d", &device]).status();
            eprintln!("SKIP {test}: mounting {fs} failed here");
            return None;
        }
        Some(LoopMount { dir, device })
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// What `curl -s -D HEADERS ARGS` gave.
pub struct Fetched {
    /// curl's exit code.
    pub code: i32,
    /// The HTTP status of the first response head (0: none).
    pub status: u16,
    /// The response heads as curl wrote them.
    pub headers: String,
    /// The body on stdout.
    pub body: Vec<u8>,
}

/// Runs `curl -s -D HEADERS ARGS`.
pub fn curl(args: &[&str]) -> Fetched {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("h");
    let o = Command::new("curl")
        .args(["-s", "-D"])
        .arg(&headers)
        .args(args)
        .output()
        .unwrap();
    let headers = std::fs::read_to_string(&headers).unwrap_or_default();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Fetched {
        code: o.status.code().unwrap_or(-1),
        status,
        headers,
        body: o.stdout,
    }
}
