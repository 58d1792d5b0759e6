//! The serve group: `zcopy serve` and nginx, each started as one process on a
//! port of its own and driven by wrk, its CPU read from /proc.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::command::{free_port, installed, Sample};
use super::{Group, PeerRow, Peers};
use crate::files::Files;

impl Peers {
    /// 4 KiB GETs from wrk (one thread, 16 connections, 1 s a round) to
    /// `zcopy serve --workers 1` and to nginx with one worker process and sendfile on.
    pub fn serve(&mut self, exe: &str, files: &Files, repeat: u32) {
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
