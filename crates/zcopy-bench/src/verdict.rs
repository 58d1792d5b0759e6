//! The seeds' general claims, decided with confidence or not at all.
//!
//! Each claim is a ratio of the medians of a few rows (greater than 1 when the claim
//! holds). Its 99% interval comes from a bootstrap: every row's samples resampled
//! with replacement, the ratio of the resampled medians taken, 2,000 times. A claim
//! is decided only when the interval lies wholly beyond a 5% margin on one side of
//! 1 and every row has at least seven samples; until then its rows are sampled
//! again, in turn, while the time budget lasts. (A bootstrap interval from a few
//! samples is narrower than it should be, and a shared machine drifts between
//! runs: hence 99% rather than 95%, and the margin.) What is still undecided then is reported as
//! "inconclusive on this machine (±N%)", N the interval's half-width. Two runs can
//! then disagree only by one of them being inconclusive, not by opposite verdicts,
//! unless the machine itself changed between them.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::jobs::{Job, Row};
use crate::measured::{Measured, Taken, MIB};

/// How a claim came out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Holds,
    DoesNotHold,
    /// The interval straddles "no difference"; the half-width in percent.
    Inconclusive(f64),
}

impl Verdict {
    pub fn words(self) -> String {
        match self {
            Verdict::Holds => "holds".into(),
            Verdict::DoesNotHold => "does not hold".into(),
            Verdict::Inconclusive(pm) => format!("inconclusive on this machine (±{pm:.0}%)"),
        }
    }

    /// One word for the JSON document and the HTML page's colours.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does-not-hold",
            Verdict::Inconclusive(_) => "inconclusive",
        }
    }
}

/// A claim with its figures and verdict.
pub struct Claim {
    pub statement: &'static str,
    /// The medians that decide it, in words.
    pub figures: String,
    pub verdict: Verdict,
    /// The ratio of the medians, and its 99% interval.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    /// Samples of the row with the fewest.
    pub samples: usize,
}

impl Claim {
    /// "statement: figures; verdict".
    pub fn line(&self) -> String {
        format!(
            "{}: {} (99% interval {:.2}–{:.2}x, {} samples); {}",
            self.statement,
            self.figures,
            self.low,
            self.high,
            self.samples,
            self.verdict.words()
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "claim": self.statement,
            "figures": self.figures,
            "verdict": self.verdict.key(),
            "verdict_words": self.verdict.words(),
            "ratio": self.ratio,
            "interval_99": [self.low, self.high],
            "samples": self.samples,
        })
    }
}

#[derive(Clone, Copy)]
enum Metric {
    /// The engine side's CPU seconds per GiB: lower is better.
    Cpu,
    /// Bytes per second: higher is better.
    Throughput,
}

impl Metric {
    fn of(self, t: &Taken) -> f64 {
        let s = &t.sample;
        match self {
            Metric::Cpu => {
                let gib = s.bytes as f64 / (1u64 << 30) as f64;
                // A sample too short for the scheduler to charge counts as 1 µs,
                // not as free.
                (s.side.user + s.side.system).as_secs_f64().max(1e-6) / gib
            }
            Metric::Throughput => s.bytes as f64 / s.seconds,
        }
    }
}

struct Spec {
    statement: &'static str,
    /// (job, engine, a part of the label) of each row the claim needs.
    rows: &'static [(Job, &'static str, &'static str)],
    metric: Metric,
    /// The ratio of the rows' medians, greater than 1 when the claim holds.
    ratio: fn(&[f64]) -> f64,
    figures: fn(&[f64]) -> String,
}

const SPECS: [Spec; 4] = [
    Spec {
        statement: "sendfile uses less sender CPU than read + write (128 KiB)",
        rows: &[
            (Job::Send, "read-write", "128 KiB"),
            (Job::Send, "sendfile", ""),
        ],
        metric: Metric::Cpu,
        ratio: |m| m[0] / m[1],
        figures: |m| format!("{:.3} vs {:.3} CPU s/GiB", m[1], m[0]),
    },
    Spec {
        statement: "the seed's ClientChannel (transferTo) beats its 1 KiB Client",
        rows: &[
            (Job::Send, "read-write", "seed Client"),
            (Job::Send, "sendfile", ""),
        ],
        metric: Metric::Throughput,
        ratio: |m| m[1] / m[0],
        figures: |m| format!("{:.0} vs {:.0} MiB/s", m[1] / MIB, m[0] / MIB),
    },
    Spec {
        statement: "mmap saves read's copy: less CPU than 128 KiB reads (scan)",
        rows: &[
            (Job::Scan, "read-write", "128 KiB"),
            (Job::Scan, "mmap", ""),
        ],
        metric: Metric::Cpu,
        ratio: |m| m[0] / m[1],
        figures: |m| format!("{:.3} vs {:.3} CPU s/GiB", m[1], m[0]),
    },
    Spec {
        statement:
            "\"zero copy suits small files\": sendfile gains more over read-write on 4 KiB files",
        rows: &[
            (Job::Send, "read-write", "128 KiB"),
            (Job::Send, "sendfile", ""),
            (Job::Small, "read-write", ""),
            (Job::Small, "sendfile", ""),
        ],
        metric: Metric::Throughput,
        ratio: |m| (m[3] / m[2]) / (m[1] / m[0]),
        figures: |m| {
            format!(
                "sendfile/read-write {:.2}x on 4 KiB files, {:.2}x on the large file",
                m[3] / m[2],
                m[1] / m[0]
            )
        },
    },
];

/// A claim is decided only beyond this margin around "no difference".
const MARGIN: f64 = 0.05;
/// Fewer samples than this decide nothing: with three a row's samples all fall on
/// one side of another's by chance one time in twenty.
const MIN_SAMPLES: usize = 7;
/// Rows are not sampled more than this, whatever the budget.
const MAX_SAMPLES: usize = 25;
const RESAMPLES: usize = 2000;

/// Decides every claim whose rows were measured, sampling its rows again (through
/// `take`) until it is decided, `budget` is spent or its rows have `MAX_SAMPLES`.
pub fn decide(
    results: &mut [Measured],
    budget: Duration,
    take: &mut dyn FnMut(&Row) -> Result<Taken>,
) -> Vec<Claim> {
    let started = Instant::now();
    let found: Vec<(&Spec, Vec<usize>)> = SPECS
        .iter()
        .filter_map(|spec| {
            let rows: Option<Vec<usize>> = spec
                .rows
                .iter()
                .map(|&(job, engine, label)| {
                    results.iter().position(|m| {
                        m.row.job == job && m.row.engine() == engine && m.row.label.contains(label)
                    })
                })
                .collect();
            rows.map(|rows| (spec, rows))
        })
        .collect();
    let mut stuck = vec![false; found.len()];
    loop {
        let mut more = false;
        for (i, (spec, rows)) in found.iter().enumerate() {
            let claim = judge(spec, rows, results);
            let full = rows.iter().any(|&r| results[r].taken.len() >= MAX_SAMPLES);
            if stuck[i] || full || !matches!(claim.verdict, Verdict::Inconclusive(_)) {
                continue;
            }
            if started.elapsed() >= budget {
                break;
            }
            more = true;
            for &r in rows {
                match take(&results[r].row) {
                    Ok(t) => results[r].taken.push(t),
                    Err(_) => stuck[i] = true,
                }
            }
        }
        if !more {
            break;
        }
    }
    for m in results.iter_mut() {
        m.settle();
    }
    found
        .iter()
        .map(|(spec, rows)| judge(spec, rows, results))
        .collect()
}

fn judge(spec: &Spec, rows: &[usize], results: &[Measured]) -> Claim {
    let values: Vec<Vec<f64>> = rows
        .iter()
        .map(|&r| results[r].taken.iter().map(|t| spec.metric.of(t)).collect())
        .collect();
    let medians: Vec<f64> = values.iter().map(|v| median(v.clone())).collect();
    let ratio = (spec.ratio)(&medians);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let resampled: Vec<f64> = values
                .iter()
                .map(|v| median((0..v.len()).map(|_| v[rng.below(v.len())]).collect()))
                .collect();
            (spec.ratio)(&resampled)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let low = ratios[RESAMPLES * 5 / 1000];
    let high = ratios[RESAMPLES * 995 / 1000 - 1];
    let samples = values.iter().map(Vec::len).min().unwrap_or(0);
    let verdict = if samples >= MIN_SAMPLES && low > 1.0 + MARGIN {
        Verdict::Holds
    } else if samples >= MIN_SAMPLES && high < 1.0 / (1.0 + MARGIN) {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive(100.0 * (high - low) / 2.0 / ratio.max(f64::MIN_POSITIVE))
    };
    Claim {
        statement: spec.statement,
        figures: (spec.figures)(&medians),
        verdict,
        ratio,
        low,
        high,
        samples,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A fixed-seed generator: the same samples give the same interval on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
