//! The peers' figures as a table of text and as JSON.

use serde_json::{json, Value};

use super::{PeerRow, Peers};
use crate::measured::MIB;
use crate::table::{compact, truncate, wrap};

impl Peers {
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
