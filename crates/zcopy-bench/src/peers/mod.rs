//! `--peers`: the tools people already use for each job, run beside zcopy's own
//! command under the same conditions: the same page-cached file, the same receiver
//! (a splice drain in this process) or the same client (wrk), every command started
//! as a process and timed from start to exit, in alternating rounds. Each group's
//! first row is zcopy's command; the ratio says how much faster zcopy is.
//!
//! A peer that is not installed is listed as missing, never estimated.

mod command;
mod compiled;
mod serve;
mod table;

use std::path::Path;

use anyhow::Result;

use crate::files::Files;
use crate::jobs::Job;
use command::{cmd, installed, iperf3, send_sample, timed, Cmd, Sample};
use compiled::{c_sendfile_loop, java_classes};

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

    /// The slowest and fastest sample's rate.
    fn range(&self) -> (f64, f64) {
        let rates = self.samples.iter().map(|s| s.rate);
        (
            rates.clone().fold(f64::MAX, f64::min),
            rates.fold(f64::MIN, f64::max),
        )
    }

    fn spread(&self) -> f64 {
        let (min, max) = self.range();
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

/// Runs the peers of every job in `jobs` that has some.
pub fn run(jobs: &[Job], files: &Files, repeat: u32, zcopy: &Path) -> Peers {
    let mut peers = Peers {
        groups: Vec::new(),
        missing: Vec::new(),
    };
    let exe = zcopy.to_string_lossy().into_owned();
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
}
