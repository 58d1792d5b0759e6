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

    /// One line for every row where a peer beat zcopy's command, with the reason
    /// this run's figures give: the rates' spreads overlap (noise, not a measured
    /// difference), or which side spent less CPU per unit of work.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for g in &self.groups {
            let Some(ours) = g
                .rows
                .first()
                .filter(|r| r.error.is_none() && !r.samples.is_empty())
            else {
                continue;
            };
            let (unit, per) = if g.requests {
                ("req/s", "CPU-s per 1000 requests")
            } else {
                ("MiB/s", "CPU-s per GiB")
            };
            let scale = if g.requests { 1.0 } else { MIB };
            let work = if g.requests {
                1000.0
            } else {
                (1u64 << 30) as f64
            };
            for r in g.rows.iter().skip(1) {
                if r.error.is_some() || r.samples.is_empty() || r.rate() <= ours.rate() {
                    continue;
                }
                let (lo, hi) = r.range();
                let (our_lo, our_hi) = ours.range();
                let theirs = r.cpu_per_work() * work;
                let mine = ours.cpu_per_work() * work;
                let why = if lo <= our_hi {
                    format!(
                        "within this run's spread (zcopy {:.0}-{:.0} {unit}, the peer {:.0}-{:.0}): not a measured difference",
                        our_lo / scale,
                        our_hi / scale,
                        lo / scale,
                        hi / scale
                    )
                } else if theirs < mine {
                    format!(
                        "it spent {theirs:.3} {per} against zcopy's {mine:.3}: less work per byte"
                    )
                } else {
                    format!(
                        "it spent more CPU ({theirs:.3} {per} against zcopy's {mine:.3}): more work in parallel"
                    )
                };
                let source = if r.name.starts_with("iperf3") {
                    "; iperf3 sends one buffer from memory, no file"
                } else {
                    ""
                };
                notes.push(format!(
                    "{} row '{}' beat '{}' at {:.2}x: {why}{source}",
                    g.job,
                    r.name,
                    ours.name,
                    r.rate() / ours.rate()
                ));
            }
        }
        notes
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

#[cfg(test)]
mod tests {
    use super::super::{Group, Sample};
    use super::*;

    fn row(name: &str, rates: &[f64], cpu_per_gib: f64) -> PeerRow {
        let gib = (1u64 << 30) as f64;
        PeerRow {
            name: name.into(),
            samples: rates
                .iter()
                .map(|r| Sample {
                    rate: r * MIB,
                    cpu: cpu_per_gib,
                    work: gib,
                })
                .collect(),
            error: None,
        }
    }

    #[test]
    fn a_note_for_every_peer_that_wins_with_its_measured_reason() {
        let peers = Peers {
            groups: vec![Group {
                job: "send",
                requests: false,
                rows: vec![
                    row("zcopy send --raw", &[800.0, 850.0, 900.0], 0.5),
                    row("nc -N", &[880.0, 890.0, 950.0], 0.7),
                    row("iperf3", &[1000.0, 1100.0, 1200.0], 0.4),
                    row("slow", &[100.0], 1.0),
                ],
            }],
            missing: Vec::new(),
        };
        let notes = peers.notes();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(
            notes[0],
            "send row 'nc -N' beat 'zcopy send --raw' at 1.05x: within this run's spread \
             (zcopy 800-900 MiB/s, the peer 880-950): not a measured difference"
        );
        assert_eq!(
            notes[1],
            "send row 'iperf3' beat 'zcopy send --raw' at 1.29x: it spent 0.400 CPU-s per \
             GiB against zcopy's 0.500: less work per byte; iperf3 sends one buffer from \
             memory, no file"
        );
    }
}
