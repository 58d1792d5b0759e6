//! A row's samples and the figures the table, the claims and the chart take from
//! them: the median sample, the spread, CPU per GiB.

use crate::counters::Counts;
use crate::jobs::Row;
use crate::sample::Sample;

/// Bytes in a MiB, the unit of the tables' throughput.
pub const MIB: f64 = (1u64 << 20) as f64;

/// One sample of a row with the kernel's counts around it.
pub struct Taken {
    pub sample: Sample,
    pub counts: Option<Counts>,
    /// Bytes the kernel copied to user space in `skb_copy_datagram_iovec`.
    pub skb_bytes: Option<u64>,
}

/// A row's samples, summarised.
pub struct Measured {
    pub row: Row,
    pub taken: Vec<Taken>,
    /// The sample with the median time, whose figures the table shows.
    pub median: Sample,
    pub counts: Option<Counts>,
    pub skb_bytes: Option<u64>,
    pub cold: bool,
}

impl Measured {
    pub fn new(row: Row, taken: Vec<Taken>, cold: bool) -> Measured {
        let first = &taken[0];
        let mut m = Measured {
            row,
            median: first.sample.clone(),
            counts: first.counts,
            skb_bytes: first.skb_bytes,
            taken,
            cold,
        };
        m.settle();
        m
    }

    /// Points the summary at the median sample, after samples were added.
    pub fn settle(&mut self) {
        let mut order: Vec<usize> = (0..self.taken.len()).collect();
        order.sort_by(|&a, &b| {
            self.taken[a]
                .sample
                .seconds
                .total_cmp(&self.taken[b].sample.seconds)
        });
        let mid = &self.taken[order[order.len() / 2]];
        self.median = mid.sample.clone();
        self.counts = mid.counts;
        self.skb_bytes = mid.skb_bytes;
    }

    pub fn throughput(&self) -> f64 {
        self.median.bytes as f64 / self.median.seconds
    }

    pub fn throughputs(&self) -> Vec<f64> {
        self.taken
            .iter()
            .map(|t| t.sample.bytes as f64 / t.sample.seconds)
            .collect()
    }

    /// (max − min) / median of the samples' throughput.
    pub fn spread(&self) -> f64 {
        let all = self.throughputs();
        let max = all.iter().copied().fold(f64::MIN, f64::max);
        let min = all.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / self.throughput()
    }

    pub fn per_gib(&self, x: f64) -> f64 {
        x / (self.median.bytes as f64 / (1u64 << 30) as f64)
    }

    /// The engine side's CPU seconds (user + system) per GiB, the median over the
    /// samples (as the claims take it).
    pub fn cpu_per_gib(&self) -> f64 {
        let mut all: Vec<f64> = self
            .taken
            .iter()
            .map(|t| {
                let s = &t.sample;
                (s.side.user + s.side.system).as_secs_f64() / (s.bytes as f64 / (1u64 << 30) as f64)
            })
            .collect();
        all.sort_by(f64::total_cmp);
        all[all.len() / 2]
    }
}
