//! The `--svg` chart: one bar per row for throughput, one for the engine side's
//! CPU seconds per GiB, grouped by job.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use serde_json::Value;

use super::{Measured, MIB};

const LABEL_WIDTH: i32 = 380;
const BAR_WIDTH: i32 = 300;
const ROW_HEIGHT: i32 = 22;
const TOP: i32 = 70;

pub fn write(path: &Path, results: &[Measured], env: &Value) -> Result<()> {
    let height = TOP + ROW_HEIGHT * results.len() as i32 + 30;
    let width = LABEL_WIDTH + 2 * (BAR_WIDTH + 120);
    let root = SVGBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    let fail = |e: DrawingAreaErrorKind<_>| anyhow!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(fail)?;
    let title = format!(
        "zcopy bench: {} file, {}, kernel {}",
        crate::size::human(env["file_size"].as_u64().unwrap_or(0)),
        env["file_system"].as_str().unwrap_or("?"),
        env["kernel"].as_str().unwrap_or("?")
    );
    let text = |s: &str, x: i32, y: i32, size: u32| {
        Text::new(s.to_string(), (x, y), ("sans-serif", size).into_font())
    };
    root.draw(&text(&title, 10, 10, 18)).map_err(fail)?;
    let throughput_x = LABEL_WIDTH;
    let cpu_x = LABEL_WIDTH + BAR_WIDTH + 120;
    root.draw(&text("throughput (MiB/s)", throughput_x, 42, 14))
        .map_err(fail)?;
    root.draw(&text("CPU s/GiB, engine side (user + sys)", cpu_x, 42, 14))
        .map_err(fail)?;
    let max_rate = results.iter().map(Measured::throughput).fold(1.0, f64::max);
    let cpu = |m: &Measured| m.per_gib((m.median.side.user + m.median.side.system).as_secs_f64());
    let max_cpu = results.iter().map(cpu).fold(f64::MIN_POSITIVE, f64::max);
    for (i, m) in results.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * i as i32;
        let color = Palette99::pick(jobs_index(m)).to_rgba();
        root.draw(&text(
            &format!("{}: {}", m.row.job.name(), m.row.label),
            10,
            y + 3,
            13,
        ))
        .map_err(fail)?;
        let w = (f64::from(BAR_WIDTH) * m.throughput() / max_rate) as i32;
        root.draw(&Rectangle::new(
            [
                (throughput_x, y),
                (throughput_x + w.max(1), y + ROW_HEIGHT - 6),
            ],
            color.filled(),
        ))
        .map_err(fail)?;
        root.draw(&text(
            &format!("{:.0}", m.throughput() / MIB),
            throughput_x + w + 6,
            y + 3,
            12,
        ))
        .map_err(fail)?;
        let w = (f64::from(BAR_WIDTH) * cpu(m) / max_cpu) as i32;
        root.draw(&Rectangle::new(
            [(cpu_x, y), (cpu_x + w.max(1), y + ROW_HEIGHT - 6)],
            color.filled(),
        ))
        .map_err(fail)?;
        root.draw(&text(&format!("{:.3}", cpu(m)), cpu_x + w + 6, y + 3, 12))
            .map_err(fail)?;
    }
    root.present().map_err(fail)?;
    Ok(())
}

fn jobs_index(m: &Measured) -> usize {
    super::jobs::Job::ALL
        .iter()
        .position(|&j| j == m.row.job)
        .unwrap_or(0)
}
