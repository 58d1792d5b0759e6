//! One run: the rows chosen, the output files opened, every row sampled with the
//! counters around it, the claims decided, the peers and the calibration, and the
//! output files written.

use anyhow::Result;

use crate::config::{Config, Progress, MIN_SIZE};
use crate::counters::{Counters, SkbBytes};
use crate::error::Error;
use crate::files::Files;
use crate::jobs::{self, Job, Row};
use crate::measured::{Measured, Taken};
use crate::output::Output;
use crate::report::{self, Report};
use crate::{calibrate, chart, html, peers, sample, verdict};

/// Runs the bench `config` describes, telling `progress` how far it is, and writes
/// its output files; the report's text views are the caller's to print.
pub fn run(config: &Config, progress: &mut dyn Progress) -> Result<Report, Error> {
    let mut job_list: Vec<Job> = Vec::new();
    for job in &config.jobs {
        if !job_list.contains(job) {
            job_list.push(*job);
        }
    }
    // Calibration is a run of its own: the crossovers, not the table.
    let rows: Vec<Row> = job_list
        .iter()
        .filter(|_| !config.calibrate)
        .flat_map(|&job| jobs::rows(job))
        .filter(|row| config.engines.is_empty() || config.engines.iter().any(|e| e == row.engine()))
        .collect();
    if rows.is_empty() && !config.calibrate {
        return Err(Error::NoRows {
            jobs: job_list
                .iter()
                .map(|j| j.name())
                .collect::<Vec<_>>()
                .join(","),
            engines: config.engines.join(","),
        });
    }
    let json_out = config.json.as_deref().map(Output::open).transpose()?;
    let svg_out = config.svg.as_deref().map(Output::open).transpose()?;
    let html_out = config.html.as_deref().map(Output::open).transpose()?;
    let profile_out = if config.calibrate {
        Some(calibrate::open_profile()?)
    } else {
        None
    };

    let base = config.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("zcopy-bench.")
        .tempdir_in(&base)
        .map_err(|source| Error::TempDir { dir: base, source })?;
    // Calibration writes files of its own sizes; it never reads the rows' file.
    let files = Files::make(
        dir.path(),
        if config.calibrate {
            MIN_SIZE
        } else {
            config.size
        },
    )?;
    let mut counters = Counters::open();
    let mut skb = SkbBytes::open();
    progress.start(rows.len() as u64 * u64::from(config.repeat));
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for row in rows {
        progress.message(&format!("{}: {}", row.job.name(), row.label));
        let mut taken = Vec::new();
        let mut failed = None;
        for _ in 0..config.repeat {
            match take(
                &row,
                &files,
                config.cold,
                counters.as_mut().ok(),
                skb.as_mut().ok(),
            ) {
                Ok(t) => taken.push(t),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            progress.sample();
        }
        match failed {
            None => results.push(Measured::new(row, taken, config.cold)),
            Some(e) => failures.push(format!("{} / {}: {e:#}", row.job.name(), row.label)),
        }
    }
    progress.message("repeating the rows that decide the seeds' claims");
    let claims = verdict::decide(&mut results, config.budget, &mut |row| {
        take(
            row,
            &files,
            config.cold,
            counters.as_mut().ok(),
            skb.as_mut().ok(),
        )
    });
    let peers = if config.peers && !config.calibrate {
        progress.message("peers");
        Some(peers::run(&job_list, &files, config.repeat, &config.zcopy))
    } else {
        None
    };
    let calibration = if config.calibrate {
        progress.message("calibrating");
        Some(
            calibrate::measure(dir.path(), config.repeat, config.size)
                .map_err(|e| Error::Calibrate(e.into()))?,
        )
    } else {
        None
    };
    progress.finish();

    let env = report::environment(dir.path(), config, &counters);
    let mut notes: Vec<String> = failures
        .iter()
        .map(|f| format!("row not measured: {f}"))
        .collect();
    if let Err(why) = &counters {
        notes.push(format!("perf counters n/a: {why}"));
    }
    match &skb {
        Err(why) => notes.push(format!("skb copy bytes n/a: {why}")),
        Ok(_) if results.iter().any(|m| m.skb_bytes.is_none()) => notes
            .push("skb copy bytes n/a in some rows: the sampling ring buffer overflowed".into()),
        Ok(_) => {}
    }
    if let Some(peers) = &peers {
        notes.extend(peers.notes());
    }
    notes.push(
        "loopback has no DMA: the seeds' DMA copies do not happen here, and a receiver that reads into user space still copies"
            .into(),
    );
    let report = Report {
        env,
        results,
        claims,
        peers,
        calibration,
        notes,
    };
    if let (Some(out), Some(profile)) = (profile_out, &report.calibration) {
        out.finish(&profile.bytes())?;
    }
    if let Some(out) = json_out {
        // Value's alternate Display is serde_json's pretty printer, and cannot fail.
        out.finish(format!("{:#}\n", report.json()).as_bytes())?;
    }
    if let Some(out) = svg_out {
        out.finish(chart::render(&report.results, &report.env)?.as_bytes())?;
    }
    if let Some(out) = html_out {
        out.finish(html::render(&report)?.as_bytes())?;
    }
    Ok(report)
}

/// One sample of `row`, with the counters around it.
fn take(
    row: &Row,
    files: &Files,
    cold: bool,
    mut counters: Option<&mut Counters>,
    mut skb: Option<&mut SkbBytes>,
) -> Result<Taken> {
    if cold {
        files.drop_cache()?;
    }
    if let Some(c) = counters.as_deref_mut() {
        c.start();
    }
    if let Some(c) = skb.as_deref_mut() {
        c.start();
    }
    let sample = sample::measure(row, files);
    let counts = counters.map(Counters::stop);
    let skb_bytes = skb.and_then(SkbBytes::stop);
    Ok(Taken {
        sample: sample?,
        counts,
        skb_bytes,
    })
}
