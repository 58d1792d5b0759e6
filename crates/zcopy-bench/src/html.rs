//! `--html FILE`: one self-contained page (no script, no external file): the
//! machine, the seeds' claims with their verdicts, the chart with spread bars, the
//! table, the peers and the notes.

use zcopy::size;

use crate::error::Error;
use crate::measured::MIB;
use crate::report::Report;
use crate::{chart, model};

/// The page.
pub fn render(report: &Report) -> Result<String, Error> {
    let env = &report.env;
    let mut page = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<title>zcopy bench</title>\n<style>\n",
        "body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 72em; color: #222; }\n",
        "table { border-collapse: collapse; margin: 1em 0; }\n",
        "th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }\n",
        "td.n { text-align: right; font-variant-numeric: tabular-nums; }\n",
        "th { background: #f3f3f3; }\n",
        ".holds { color: #176117; font-weight: bold; }\n",
        ".does-not-hold { color: #a01818; font-weight: bold; }\n",
        ".inconclusive { color: #8a6200; font-weight: bold; }\n",
        ".chart svg { max-width: 100%; height: auto; }\n",
        "dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }\n",
        "dt { font-weight: bold; }\n",
        "</style>\n</head>\n<body>\n<h1>zcopy bench</h1>\n",
    ));
    page.push_str("<h2>Machine</h2>\n<dl>\n");
    for (key, label) in [
        ("cpu", "CPU"),
        ("cores", "cores"),
        ("load_average", "load average at the end"),
        ("kernel", "kernel"),
        ("file_system", "file system"),
        ("page_cache", "page cache"),
        ("repeat", "samples per row (at least)"),
        ("perf_counters", "perf counters"),
        ("zcopy", "zcopy"),
    ] {
        let value = match &env[key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        page.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>\n",
            escape(label),
            escape(&value)
        ));
    }
    page.push_str(&format!(
        "<dt>test file</dt><dd>{}</dd>\n</dl>\n",
        escape(&size::human(env["file_size"].as_u64().unwrap_or(0)))
    ));

    if !report.claims.is_empty() {
        page.push_str("<h2>The seeds' claims on this machine</h2>\n<table>\n<tr><th>claim</th><th>figures</th><th>99% interval of the ratio</th><th>verdict</th></tr>\n");
        for c in &report.claims {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.2}–{:.2}× ({} samples)</td><td class=\"{}\">{}</td></tr>\n",
                escape(c.statement),
                escape(&c.figures),
                c.low,
                c.high,
                c.samples,
                c.verdict.key(),
                escape(&c.verdict.words()),
            ));
        }
        page.push_str("</table>\n");
    }

    if !report.results.is_empty() {
        page.push_str("<h2>Throughput and CPU</h2>\n<div class=\"chart\">\n");
        page.push_str(&chart::render(&report.results, env)?);
        page.push_str("\n</div>\n<h2>Every row</h2>\n<table>\n<tr><th>job</th><th>engine</th><th>MiB/s (higher is better)</th><th>spread</th><th>CPU s/GiB (lower is better)</th><th>syscalls/GiB</th><th>model</th><th>what the measurement says</th></tr>\n");
        for m in &report.results {
            let check = model::check(&m.row, m);
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.0}</td><td class=\"n\">{:.0}%</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.0}</td><td>{}</td><td>{}</td></tr>\n",
                m.row.job.name(),
                escape(&m.row.label),
                m.throughput() / MIB,
                100.0 * m.spread(),
                m.cpu_per_gib(),
                m.per_gib(m.median.syscalls.total() as f64),
                check.word(),
                escape(&check.text),
            ));
        }
        page.push_str("</table>\n");
    }

    if let Some(peers) = &report.peers {
        page.push_str("<h2>Peers, under the same conditions</h2>\n<pre>");
        page.push_str(&escape(&peers.table(100)));
        page.push_str("</pre>\n");
    }
    if let Some(calibration) = &report.calibration {
        page.push_str("<h2>Calibration</h2>\n<pre>");
        page.push_str(&escape(&calibration.table(100)));
        page.push_str("</pre>\n");
    }
    page.push_str("<h2>Notes</h2>\n<ul>\n");
    for n in &report.notes {
        page.push_str(&format!("<li>{}</li>\n", escape(n)));
    }
    page.push_str("</ul>\n</body>\n</html>\n");
    Ok(page)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
