//! Everything a run found, and the JSON document of it: the environment, one
//! object per row, the claims, the peers, the calibration and the notes.

use std::path::Path;

use serde_json::{json, Value};

use crate::calibrate::Calibration;
use crate::config::Config;
use crate::counters::{Counters, EVENTS};
use crate::measured::Measured;
use crate::model;
use crate::peers::Peers;
use crate::verdict::Claim;

/// Everything a run found, for the table, the JSON, the chart and the HTML page.
pub struct Report {
    pub(crate) env: Value,
    pub(crate) results: Vec<Measured>,
    pub(crate) claims: Vec<Claim>,
    pub(crate) peers: Option<Peers>,
    pub(crate) calibration: Option<Calibration>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// The document `--json` writes: the environment, every row with its samples,
    /// counters and model check, the claims, the peers, the calibration, the notes.
    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self.results.iter().map(row_json).collect();
        let claims: Vec<Value> = self.claims.iter().map(Claim::json).collect();
        json!({
            "environment": self.env,
            "rows": rows,
            "claims": claims,
            "peers": self.peers.as_ref().map(Peers::json),
            "calibration": self.calibration.as_ref().map(Calibration::json),
            "notes": self.notes,
        })
    }
}

/// The machine, the file system of `dir` and the run's settings.
pub fn environment(dir: &Path, config: &Config, counters: &Result<Counters, String>) -> Value {
    let uname = rustix::system::uname();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    json!({
        "kernel": uname.release().to_string_lossy(),
        "machine": uname.machine().to_string_lossy(),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "load_average": load,
        "file_system": file_system(dir),
        "file_size": config.size,
        "page_cache": if config.cold { "cold (posix_fadvise DONTNEED before each sample)" } else { "warm" },
        "repeat": config.repeat,
        "budget_s": config.budget.as_secs_f64(),
        "perf_counters": match counters { Ok(_) => "available".to_string(), Err(why) => format!("n/a: {why}") },
        "zcopy": env!("CARGO_PKG_VERSION"),
    })
}

fn file_system(dir: &Path) -> String {
    let Ok(st) = rustix::fs::statfs(dir) else {
        return "unknown".into();
    };
    match st.f_type as u64 {
        0xEF53 => "ext4".into(),
        0x9123_683E => "btrfs".into(),
        0x5846_5342 => "xfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("0x{other:x}"),
    }
}

fn row_json(m: &Measured) -> Value {
    let s = &m.median;
    let (side, peer_side) = m.row.job.sides();
    let syscalls: serde_json::Map<String, Value> = s
        .syscalls
        .iter()
        .map(|(c, n)| (c.name().to_string(), n.into()))
        .collect();
    let model = model::of(&m.row);
    let check = model::check(&m.row, m);
    let peer = s.peer.as_ref();
    json!({
        "job": m.row.job.name(),
        "engine": m.row.engine(),
        "label": m.row.label,
        "buffer": m.row.buffer(),
        "bytes": s.bytes,
        "seconds": s.seconds,
        "samples": m.taken.len(),
        "throughput_bytes_per_s": m.throughput(),
        "throughput_samples": m.throughputs(),
        "spread": m.spread(),
        "engine_side": side,
        "peer_side": peer_side,
        "engine_cpu_user_s_per_gib": m.per_gib(s.side.user.as_secs_f64()),
        "engine_cpu_sys_s_per_gib": m.per_gib(s.side.system.as_secs_f64()),
        "peer_cpu_user_s_per_gib": peer.map(|p| m.per_gib(p.user.as_secs_f64())),
        "peer_cpu_sys_s_per_gib": peer.map(|p| m.per_gib(p.system.as_secs_f64())),
        "syscalls": syscalls,
        "syscalls_per_gib": m.per_gib(s.syscalls.total() as f64),
        "voluntary_ctx_switches": s.side.voluntary_switches,
        "involuntary_ctx_switches": s.side.involuntary_switches,
        "minor_faults": s.side.minor_faults,
        "major_faults": s.side.major_faults,
        "skb_copy_bytes": m.skb_bytes,
        "zerocopy": (s.zerocopy.sends > 0).then(|| json!({
            "sends": s.zerocopy.sends,
            "completions": s.zerocopy.completions,
            "copied": s.zerocopy.copied,
        })),
        "perf": m.counts.map(|c| EVENTS.iter().zip(c).map(|((name, _), n)| ((*name).to_string(), Value::from(n))).collect::<serde_json::Map<_, _>>()),
        "model": {
            "switches": model.switches,
            "dma_copies": model.dma_copies,
            "cpu_copies": model.cpu_copies,
            "note": model.note,
        },
        "check": check.text,
        "check_holds": check.holds,
    })
}
