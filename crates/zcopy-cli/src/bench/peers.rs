//! `--peers`: the tools people already use for each job, run beside zcopy's own
//! command under the same conditions: the same page-cached file, the same receiver
//! (a splice drain in this process) or the same client (wrk), every command started
//! as a process and timed from start to exit, in alternating rounds. Each group's
//! first row is zcopy's command; the ratio says how much faster zcopy is.
//!
//! A peer that is not installed is listed as missing, never estimated.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use zcopy::{Engine, EngineChoice, Options, Rusage, Transfer};

use super::jobs::{Files, Job};
use super::table::{compact, truncate, wrap};
use super::MIB;

/// One sample of a command.
#[derive(Clone, Copy)]
struct Sample {
    /// Bytes per second, or requests per second for `serve`.
    rate: f64,
    /// CPU seconds (user + system) of the command's process.
    cpu: f64,
    /// Bytes, or requests, it moved.
    work: f64,
}

/// A command and its samples.
pub struct PeerRow {
    pub name: String,
    samples: Vec<Sample>,
    pub error: Option<String>,
}

impl PeerRow {
    fn median(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        let mut v: Vec<f64> = self.samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn rate(&self) -> f64 {
        self.median(|s| s.rate)
    }

    fn spread(&self) -> f64 {
        let max = self.samples.iter().map(|s| s.rate).fold(f64::MIN, f64::max);
        let min = self.samples.iter().map(|s| s.rate).fold(f64::MAX, f64::min);
        (max - min) / self.rate()
    }

    /// CPU seconds per unit of work.
    fn cpu_per_work(&self) -> f64 {
        self.median(|s| s.cpu / s.work)
    }
}

/// The commands of one job: zcopy's first.
pub struct Group {
    pub job: &'static str,
    /// "MiB/s" or "req/s".
    requests: bool,
    pub rows: Vec<PeerRow>,
}

/// Every group, and the peers that are not installed.
pub struct Peers {
    pub groups: Vec<Group>,
    pub missing: Vec<String>,
}

/// A command line, `{addr}` and `{port}` filled in per sample.
struct Cmd {
    name: String,
    argv: Vec<String>,
    stdin: Option<PathBuf>,
}

fn cmd(name: &str, argv: &[&str]) -> Cmd {
    Cmd {
        name: name.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        stdin: None,
    }
}

/// Runs the peers of every job in `jobs` that has some.
pub fn run(jobs: &[Job], files: &Files, repeat: u32) -> Peers {
    let mut peers = Peers {
        groups: Vec::new(),
        missing: Vec::new(),
    };
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "zcopy".into());
    let big = files.big.to_string_lossy().into_owned();
    if jobs.contains(&Job::Send) {
        peers.send(&exe, &big, files, repeat);
    }
    if jobs.contains(&Job::Serve) {
        peers.serve(&exe, files, repeat);
    }
    if jobs.contains(&Job::Scan) {
        for (digest, tool, argv) in [
            ("xxh3", "xxhsum", &["xxhsum", "-H3"][..]),
            ("blake3", "b3sum", &["b3sum"][..]),
        ] {
            if !installed(tool) {
                peers
                    .missing
                    .push(format!("{tool} (scan --digest {digest})"));
                continue;
            }
            let mut ours = cmd(
                &format!("zcopy scan --digest {digest}"),
                &[&exe, "scan", "--digest", digest],
            );
            ours.argv.push(big.clone());
            let mut theirs = cmd(&argv.join(" "), argv);
            theirs.argv.push(big.clone());
            peers.files("scan", vec![ours, theirs], files.size, repeat, None);
        }
    }
    if jobs.contains(&Job::Cp) {
        if installed("cp") {
            let out = files.dir.join("peer-cp.out");
            let out_s = out.to_string_lossy().into_owned();
            let ours = cmd("zcopy cp", &[&exe, "cp", &big, &out_s]);
            let theirs = cmd("GNU cp", &["cp", &big, &out_s]);
            peers.files("cp", vec![ours, theirs], files.size, repeat, Some(&out));
        } else {
            peers.missing.push("cp (GNU coreutils)".into());
        }
    }
    peers
}

impl Peers {
    /// File → loopback socket: zcopy send --raw, nc, socat, the seed's Java clients
    /// and iperf3 as the ceiling, each to the same splice receiver.
    fn send(&mut self, exe: &str, big: &str, files: &Files, repeat: u32) {
        let mut cmds = vec![cmd(
            "zcopy send --raw",
            &[exe, "send", "--raw", big, "{addr}"],
        )];
        if installed("nc") {
            let mut nc = cmd(
                "nc -N (netcat-openbsd)",
                &["nc", "-N", "127.0.0.1", "{port}"],
            );
            nc.stdin = Some(files.big.clone());
            cmds.push(nc);
        } else {
            self.missing.push("nc (netcat-openbsd, send)".into());
        }
        if installed("socat") {
            let source = format!("FILE:{big}");
            cmds.push(cmd(
                "socat -u",
                &["socat", "-u", &source, "TCP:127.0.0.1:{port}"],
            ));
        } else {
            self.missing.push("socat (send)".into());
        }
        match c_sendfile_loop(&files.dir) {
            Ok(path) => {
                let path = path.to_string_lossy().into_owned();
                cmds.push(cmd(
                    "bare C sendfile loop",
                    &[&path, big, "127.0.0.1", "{port}"],
                ));
            }
            Err(why) => self
                .missing
                .push(format!("the bare C sendfile loop: {why}")),
        }
        match java_classes(&files.dir) {
            Ok(classes) => {
                let classes = classes.to_string_lossy().into_owned();
                for (class, what) in [
                    ("ClientChannel", "seed ClientChannel (Java)"),
                    ("Client", "seed Client (Java, 1 KiB)"),
                ] {
                    cmds.push(cmd(
                        what,
                        &["java", "-cp", &classes, class, "127.0.0.1", "{port}", big],
                    ));
                }
            }
            Err(why) => self.missing.push(format!("the seed's Java clients: {why}")),
        }
        let mut group = self.group("send", &cmds, repeat, &mut |c| send_sample(c, files.size));
        if installed("iperf3") {
            let mut row = PeerRow {
                name: "iperf3 (loopback ceiling)".into(),
                samples: Vec::new(),
                error: None,
            };
            for _ in 0..repeat {
                match iperf3(files.size) {
                    Ok(s) => row.samples.push(s),
                    Err(e) => {
                        row.error = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
            group.rows.push(row);
        } else {
            self.missing.push("iperf3 (the loopback ceiling)".into());
        }
        self.groups.push(group);
    }

    /// Commands that read a file and exit (scan, cp), `remove` deleted before each.
    fn files(
        &mut self,
        job: &'static str,
        cmds: Vec<Cmd>,
        size: u64,
        repeat: u32,
        remove: Option<&Path>,
    ) {
        let group = self.group(job, &cmds, repeat, &mut |c| {
            if let Some(path) = remove {
                let _ = std::fs::remove_file(path);
            }
            timed(c, None, size)
        });
        if let Some(path) = remove {
            let _ = std::fs::remove_file(path);
        }
        self.groups.push(group);
    }

    /// `repeat` rounds of every command in turn.
    fn group(
        &self,
        job: &'static str,
        cmds: &[Cmd],
        repeat: u32,
        sample: &mut dyn FnMut(&Cmd) -> Result<Sample>,
    ) -> Group {
        let mut rows: Vec<PeerRow> = cmds
            .iter()
            .map(|c| PeerRow {
                name: c.name.clone(),
                samples: Vec::new(),
                error: None,
            })
            .collect();
        for _ in 0..repeat {
            for (c, row) in cmds.iter().zip(&mut rows) {
                if row.error.is_some() {
                    continue;
                }
                match sample(c) {
                    Ok(s) => row.samples.push(s),
                    Err(e) => row.error = Some(format!("{e:#}")),
                }
            }
        }
        Group {
            job,
            requests: false,
            rows,
        }
    }

    /// 4 KiB GETs from wrk (one thread, 16 connections, 1 s a round) to
    /// `zcopy serve --workers 1` and to nginx with one worker process and sendfile on.
    fn serve(&mut self, exe: &str, files: &Files, repeat: u32) {
        if !installed("wrk") {
            self.missing
                .push("wrk (serve: the client that drives zcopy serve and nginx)".into());
            return;
        }
        let mut servers: Vec<(String, Result<Server>)> = vec![(
            "zcopy serve --workers 1".into(),
            zcopy_serve(exe, &files.dir),
        )];
        if installed("nginx") {
            servers.push(("nginx, 1 worker, sendfile on".into(), nginx(&files.dir)));
        } else {
            self.missing.push("nginx (serve)".into());
        }
        let name = files
            .small
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rows: Vec<PeerRow> = servers
            .iter()
            .map(|(n, s)| PeerRow {
                name: n.clone(),
                samples: Vec::new(),
                error: s.as_ref().err().map(|e| format!("{e:#}")),
            })
            .collect();
        for _ in 0..repeat {
            for ((_, server), row) in servers.iter().zip(&mut rows) {
                let Ok(server) = server else { continue };
                if row.error.is_some() {
                    continue;
                }
                match wrk(server, &name) {
                    Ok(s) => row.samples.push(s),
                    Err(e) => row.error = Some(format!("{e:#}")),
                }
            }
        }
        for (_, server) in servers {
            if let Ok(mut s) = server {
                let _ = s.child.kill();
                let _ = s.child.wait();
            }
        }
        self.groups.push(Group {
            job: "serve",
            requests: true,
            rows,
        });
    }

    /// The peers' table, its notes wrapped to `width`.
    pub fn table(&self, width: usize) -> String {
        let mut out = String::from("peers, under the same conditions:\n");
        out.push_str(&format!(
            "{:<5} {:<30} {:>12} {:>6} {:>14} {:>7}\n",
            "job", "command", "rate", "spread", "CPU", "zcopy×"
        ));
        for g in &self.groups {
            let ours = g.rows.first().filter(|r| r.error.is_none());
            for (i, r) in g.rows.iter().enumerate() {
                let name = truncate(&r.name, 30);
                if let Some(e) = &r.error {
                    out.push_str(&wrap(
                        &format!("{:<5} {name}: not measured: {e}", g.job),
                        width,
                        "",
                        "      ",
                    ));
                    continue;
                }
                let (rate, cpu) = if g.requests {
                    (
                        format!("{} req/s", compact(r.rate())),
                        format!("{} req/CPU-s", compact(1.0 / r.cpu_per_work())),
                    )
                } else {
                    (
                        format!("{:.0} MiB/s", r.rate() / MIB),
                        format!("{:.3} s/GiB", r.cpu_per_work() * (1u64 << 30) as f64),
                    )
                };
                let ratio = match ours {
                    Some(o) if i > 0 => format!("{:.2}", o.rate() / r.rate()),
                    _ => "-".into(),
                };
                out.push_str(&format!(
                    "{:<5} {name:<30} {rate:>12} {:>6} {cpu:>14} {ratio:>7}\n",
                    g.job,
                    format!("{:.0}%", 100.0 * r.spread()),
                ));
            }
        }
        out.push_str(&wrap(
            "each command is a process timed from start to exit (start-up included: the JVM's is about 0.1 s); CPU is the process's user + system time (the server's, for serve); zcopy×: zcopy's rate over the peer's, above 1 when zcopy is faster",
            width,
            "",
            "",
        ));
        if !self.missing.is_empty() {
            out.push_str(&wrap(
                &format!("not installed, not measured: {}", self.missing.join("; ")),
                width,
                "",
                "  ",
            ));
        }
        out
    }

    pub fn json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                let ours = g.rows.first().filter(|r| r.error.is_none()).map(PeerRow::rate);
                let rows: Vec<Value> = g
                    .rows
                    .iter()
                    .map(|r| {
                        json!({
                            "command": r.name,
                            "error": r.error,
                            "rate": (r.error.is_none()).then(|| r.rate()),
                            "rate_unit": if g.requests { "requests/s" } else { "bytes/s" },
                            "rate_samples": r.samples.iter().map(|s| s.rate).collect::<Vec<_>>(),
                            "cpu_s_per_unit": (r.error.is_none()).then(|| r.cpu_per_work()),
                            "zcopy_over_peer": ours.filter(|_| r.error.is_none()).map(|o| o / r.rate()),
                        })
                    })
                    .collect();
                json!({ "job": g.job, "rows": rows })
            })
            .collect();
        json!({ "groups": groups, "missing": self.missing })
    }
}

/// Whether `tool` is an executable file in `$PATH`.
pub fn installed(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            rustix::fs::access(dir.join(tool), rustix::fs::Access::EXEC_OK).is_ok()
                && dir.join(tool).is_file()
        })
    })
}

/// Runs `c` (its `{addr}` and `{port}` replaced), returning wall time and CPU.
fn timed(c: &Cmd, addr: Option<SocketAddr>, work: u64) -> Result<Sample> {
    let argv: Vec<String> = c
        .argv
        .iter()
        .map(|a| match addr {
            Some(addr) => a
                .replace("{addr}", &addr.to_string())
                .replace("{port}", &addr.port().to_string()),
            None => a.clone(),
        })
        .collect();
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(path) = &c.stdin {
        command.stdin(File::open(path)?);
    } else {
        command.stdin(Stdio::null());
    }
    let before = Rusage::children();
    let started = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    let seconds = started.elapsed().as_secs_f64();
    let used = Rusage::children().since(&before);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} exited with {}: {}",
            argv[0],
            out.status,
            err.lines().next().unwrap_or("")
        );
    }
    Ok(Sample {
        rate: work as f64 / seconds,
        cpu: (used.user + used.system).as_secs_f64(),
        work: work as f64,
    })
}

/// One send: a splice drain here, the command sending the file to it.
fn send_sample(c: &Cmd, size: u64) -> Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let drain = std::thread::spawn(move || -> Result<u64> {
        let (stream, _) = listener.accept()?;
        let devnull = File::options().write(true).open("/dev/null")?;
        let options = Options {
            engine: EngineChoice::Only(Engine::Splice),
            ..Options::default()
        };
        let mut t = Transfer::new(&stream, &devnull, options)?;
        t.run()?;
        Ok(t.report().bytes)
    });
    let sample = timed(c, Some(addr), size);
    if sample.is_err() {
        // Unblock the drain's accept if the command never connected.
        let _ = TcpStream::connect(addr);
    }
    let received = drain.join().map_err(|_| anyhow!("the receiver panicked"))?;
    let sample = sample?;
    match received? {
        n if n == size => Ok(sample),
        n => bail!("{} delivered {n} of {size} bytes", c.name),
    }
}

/// Compiles the bare C sendfile loop into `dir`; the reason when it cannot.
fn c_sendfile_loop(dir: &Path) -> Result<PathBuf, String> {
    if !installed("cc") {
        return Err("no C compiler (cc) installed".into());
    }
    let source = dir.join("sendfile_loop.c");
    let binary = dir.join("sendfile-loop");
    std::fs::write(&source, include_str!("sendfile_loop.c")).map_err(|e| e.to_string())?;
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(binary)
}

/// Compiles the seed's Java clients into `dir`; the reason when it cannot.
fn java_classes(dir: &Path) -> Result<PathBuf, String> {
    if !installed("javac") || !installed("java") {
        return Err("javac or java not installed".into());
    }
    let classes = dir.join("java");
    let sources = [
        ("Client.java", include_str!("../../tests/java/Client.java")),
        (
            "ClientChannel.java",
            include_str!("../../tests/java/ClientChannel.java"),
        ),
    ];
    let mut paths = Vec::new();
    std::fs::create_dir_all(&classes).map_err(|e| e.to_string())?;
    for (name, text) in sources {
        let path = classes.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        paths.push(path);
    }
    let out = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .args(&paths)
        .output()
        .map_err(|e| format!("javac: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "javac failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(classes)
}

/// `size` bytes from an iperf3 client to an iperf3 server, timed at the client.
fn iperf3(size: u64) -> Result<Sample> {
    let port = free_port()?;
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run iperf3")?;
    let client = cmd(
        "iperf3",
        &[
            "iperf3",
            "-c",
            "127.0.0.1",
            "-p",
            "{port}",
            "-n",
            &size.to_string(),
        ],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    // The server is ready when a client run succeeds; the first tries may be refused.
    let sample = loop {
        match timed(&client, Some(addr), size) {
            Ok(s) => break Ok(s),
            Err(e) if Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    sample
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("cannot listen on 127.0.0.1")?
        .local_addr()?
        .port())
}

/// A server process under test.
struct Server {
    child: Child,
    addr: SocketAddr,
}

fn zcopy_serve(exe: &str, dir: &Path) -> Result<Server> {
    let mut child = Command::new(exe)
        .arg("serve")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--workers", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run zcopy serve")?;
    let stderr = child.stderr.take().context("zcopy serve's stderr")?;
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok());
    match addr {
        Some(addr) => Ok(Server { child, addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("zcopy serve did not start: {}", line.trim())
        }
    }
}

/// nginx in the foreground as one process (no master), `sendfile on`.
fn nginx(dir: &Path) -> Result<Server> {
    let port = free_port()?;
    let conf_dir = dir.join("nginx");
    std::fs::create_dir_all(&conf_dir)?;
    let c = conf_dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {c}/nginx.pid;\nerror_log {c}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  sendfile on;\n  tcp_nopush on;\n  access_log off;\n  keepalive_requests 1000000;\n\
         client_body_temp_path {c};\n  proxy_temp_path {c};\n  fastcgi_temp_path {c};\n  uwsgi_temp_path {c};\n  scgi_temp_path {c};\n\
         server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
        dir.display()
    );
    let conf_path = conf_dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut child = Command::new("nginx")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run nginx")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("nginx did not start (see {c}/error.log)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server { child, addr })
}

/// One second of wrk against `server`: requests per second, and the server's CPU.
fn wrk(server: &Server, name: &str) -> Result<Sample> {
    let url = format!("http://{}/{name}", server.addr);
    let before = process_cpu(server.child.id())?;
    let out = Command::new("wrk")
        .args(["-t1", "-c16", "-d1s", &url])
        .stdin(Stdio::null())
        .output()
        .context("cannot run wrk")?;
    let cpu = process_cpu(server.child.id())? - before;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        bail!("{url} answered with errors");
    }
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let rate = field("Requests/sec:").context("wrk printed no Requests/sec")?;
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(rate);
    Ok(Sample {
        rate,
        cpu: cpu.max(1e-3),
        work: requests,
    })
}

/// User + system CPU seconds of process `pid`, from /proc/PID/stat.
fn process_cpu(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its closing parenthesis
    // start with the state (field 3), so utime and stime (14, 15) are 11 and 12 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Ok((ticks(11) + ticks(12)) / hz)
}
