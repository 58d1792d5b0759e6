//! The bench's text output: a table that fits 80 columns by default, every column
//! with `--wide`, and the model, claim and peer lines wrapped to the caller's width (the
//! terminal's, which only the caller knows).

use zcopy::size;

use crate::counters::Counts;
use crate::measured::MIB;
use crate::model;
use crate::report::Report;

/// Engine column of the narrow table.
const ENGINE_WIDTH: usize = 32;

impl Report {
    /// The default view: job, engine, MiB/s, spread, CPU s/GiB, syscalls/GiB and
    /// the model check in a word, in 79 columns; the claims, the peers and the
    /// notes wrapped to `width`.
    pub fn narrow(&self, width: usize) -> String {
        narrow(self, width)
    }

    /// Every column, one row per line however long, and the model's reasons.
    pub fn wide(&self) -> String {
        wide(self)
    }
}

fn narrow(report: &Report, width: usize) -> String {
    let mut out = heading(report, width);
    if report.results.is_empty() {
        tail(report, width, &mut out);
        return out;
    }
    out.push_str(&format!(
        "{:<5} {:<ENGINE_WIDTH$} {:>6} {:>6} {:>9} {:>8} {:<7}\n",
        "job", "engine", "MiB/s", "spread", "CPU s/GiB", "sysc/GiB", "model"
    ));
    for m in &report.results {
        out.push_str(&format!(
            "{:<5} {:<ENGINE_WIDTH$} {:>6.0} {:>6} {:>9.3} {:>8} {:<7}\n",
            m.row.job.name(),
            short_label(&m.row.label),
            m.throughput() / MIB,
            format!("{:.0}%", 100.0 * m.spread()),
            m.cpu_per_gib(),
            compact(m.per_gib(m.median.syscalls.total() as f64)),
            model::check(&m.row, m).word(),
        ));
    }
    out.push('\n');
    out.push_str(&wrap(
        "spread: of throughput, (max - min) / median of the samples; CPU: the engine side, user + system; model: whether the seeds' count of switches (or, for direct I/O, page-cache inserts) held; every column and the model's reasons with --wide",
        width,
        "",
        "",
    ));
    tail(report, width, &mut out);
    out
}

fn wide(report: &Report) -> String {
    let mut out = heading(report, usize::MAX);
    if report.results.is_empty() {
        tail(report, usize::MAX, &mut out);
        return out;
    }
    out.push_str(&format!(
        "{:<6} {:<46} {:>9} {:>6} {:>15} {:>15} {:>11} {:>11} {:>11} {:>12} {:>9} {:>10} {:>9} {:>10} {:>11} {:<7}\n",
        "job",
        "engine",
        "MiB/s",
        "spread",
        "eng CPU usr/sys",
        "peer CPU u/s",
        "sysc/GiB",
        "cs vol/inv",
        "flt min/maj",
        "perf sys/GiB",
        "perf cs",
        "pc insert",
        "skb copy",
        "skb bytes",
        "model s/D/C",
        "check",
    ));
    for m in &report.results {
        let s = &m.median;
        let peer = match &s.peer {
            Some(p) => format!(
                "{:.2}/{:.2}",
                m.per_gib(p.user.as_secs_f64()),
                m.per_gib(p.system.as_secs_f64())
            ),
            None => "-".into(),
        };
        let perf = |i: usize| {
            m.counts
                .map_or_else(|| "n/a".to_string(), |c: Counts| c[i].to_string())
        };
        let raw = m.counts.map_or_else(
            || "n/a".to_string(),
            |c| format!("{:.0}", m.per_gib(c[0] as f64)),
        );
        let model = model::of(&m.row);
        let digit = |x: Option<u32>| x.map_or("-".to_string(), |x| x.to_string());
        out.push_str(&format!(
            "{:<6} {:<46} {:>9.0} {:>6.1} {:>15} {:>15} {:>11.0} {:>11} {:>11} {:>12} {:>9} {:>10} {:>9} {:>10} {:>11} {:<7}\n",
            m.row.job.name(),
            m.row.label,
            m.throughput() / MIB,
            100.0 * m.spread(),
            format!("{:.2}/{:.2}", m.per_gib(s.side.user.as_secs_f64()), m.per_gib(s.side.system.as_secs_f64())),
            peer,
            m.per_gib(s.syscalls.total() as f64),
            format!("{}/{}", s.side.voluntary_switches, s.side.involuntary_switches),
            format!("{}/{}", s.side.minor_faults, s.side.major_faults),
            raw,
            perf(1),
            perf(2),
            perf(3),
            m.skb_bytes.map_or_else(|| "n/a".to_string(), size::human),
            format!("{}/{}/{}", digit(model.switches), digit(model.dma_copies), digit(model.cpu_copies)),
            model::check(&m.row, m).word(),
        ));
    }
    out.push_str("\nmodel s/D/C: the seeds' user-kernel switches per chunk / DMA copies / CPU copies; CPU in s per GiB; perf counts cover both sides\n");
    out.push_str("\nwhat the measurements say about the model:\n");
    for m in &report.results {
        out.push_str(&format!(
            "  {} / {}: {}\n",
            m.row.job.name(),
            m.row.label,
            model::check(&m.row, m).text
        ));
    }
    tail(report, usize::MAX, &mut out);
    out
}

fn heading(report: &Report, width: usize) -> String {
    let env = &report.env;
    let file = if report.results.is_empty() {
        String::new()
    } else {
        format!(
            " {} file on {}, page cache {},",
            size::human(env["file_size"].as_u64().unwrap_or(0)),
            env["file_system"].as_str().unwrap_or("?"),
            env["page_cache"].as_str().unwrap_or("?"),
        )
    };
    let mut out = wrap(
        &format!(
            "zcopy bench:{file} kernel {}, {} cores ({}), load {}",
            env["kernel"].as_str().unwrap_or("?"),
            env["cores"],
            env["cpu"].as_str().unwrap_or("?"),
            env["load_average"].as_str().unwrap_or("?"),
        ),
        width,
        "",
        "  ",
    );
    out.push('\n');
    out
}

/// The claims, the peers, the calibration and the notes.
fn tail(report: &Report, width: usize, out: &mut String) {
    if !report.claims.is_empty() {
        out.push_str("\nthe seeds' claims on this machine:\n");
        for c in &report.claims {
            out.push_str(&wrap(&c.line(), width, "  - ", "    "));
        }
    }
    if let Some(peers) = &report.peers {
        out.push('\n');
        out.push_str(&peers.table(width));
    }
    if let Some(calibration) = &report.calibration {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&calibration.table(width));
    }
    out.push_str("\nnotes:\n");
    for n in &report.notes {
        out.push_str(&wrap(n, width, "  - ", "    "));
    }
}

/// The row's label shortened to the narrow table's engine column.
fn short_label(label: &str) -> String {
    const SHORTER: [(&str, &str); 7] = [
        ("zcopy serve, ", ""),
        (
            "io_uring: splice chains, 8 MiB per enter",
            "io_uring splices, 8 MiB/enter",
        ),
        (" from 128 KiB buffers", ", 128 KiB"),
        (" (transferTo)", ""),
        (" through a pipe", ""),
        (
            "pread pair, 256 KiB chunks, two threads",
            "pread pair, two threads",
        ),
        ("read ahead on a thread", "read-ahead thread"),
    ];
    let mut s = label.to_string();
    for (long, short) in SHORTER {
        s = s.replace(long, short);
    }
    truncate(&s, ENGINE_WIDTH)
}

/// `s` cut to `width` characters, the cut marked with "…".
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

/// 2097152 → "2.1M", 524288 → "524k", 16384 → "16.4k", 256 → "256".
pub fn compact(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e5 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// `text` broken at spaces into lines of at most `width` characters, the first
/// starting with `first`, the others with `rest`; every line ends with a newline.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ') {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !empty && !fits {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_width() {
        let text = "the seeds' claims are decided only when the interval is clear of one";
        let out = wrap(text, 20, "  - ", "    ");
        assert!(out.lines().all(|l| l.chars().count() <= 20), "{out}");
        assert!(out.starts_with("  - the"));
        assert_eq!(
            out.split_whitespace()
                .filter(|w| *w != "-")
                .collect::<Vec<_>>(),
            text.split(' ').collect::<Vec<_>>()
        );
    }

    #[test]
    fn short_labels_fit_the_engine_column() {
        for job in crate::jobs::Job::ALL {
            for row in crate::jobs::rows(job) {
                let short = short_label(&row.label);
                assert!(short.chars().count() <= ENGINE_WIDTH, "{short}");
                assert!(!short.ends_with('…'), "{} is cut: {short}", row.label);
            }
        }
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(2_097_152.0), "2.1M");
        assert_eq!(compact(524_288.0), "524k");
        assert_eq!(compact(16_384.0), "16.4k");
        assert_eq!(compact(256.0), "256");
    }
}
