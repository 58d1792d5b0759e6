//! The `--svg` chart (also drawn into the `--html` page): one bar per row for
//! throughput with a line from the slowest to the fastest sample, one for the
//! engine side's CPU seconds per GiB, grouped by job.

use plotters::prelude::*;
use serde_json::Value;

use crate::error::Error;
use crate::jobs::Job;
use crate::measured::{Measured, MIB};

const LABEL_WIDTH: i32 = 380;
const BAR_WIDTH: i32 = 300;
const ROW_HEIGHT: i32 = 22;
const TOP: i32 = 70;

/// The chart as an SVG document.
pub fn render(results: &[Measured], env: &Value) -> Result<String, Error> {
    let height = TOP + ROW_HEIGHT * results.len() as i32 + 30;
    let width = LABEL_WIDTH + 2 * (BAR_WIDTH + 120);
    let mut svg = String::new();
    draw(&mut svg, (width as u32, height as u32), results, env)?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    size: (u32, u32),
    results: &[Measured],
    env: &Value,
) -> Result<(), Error> {
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    let fail = |e: DrawingAreaErrorKind<_>| Error::Chart(e.to_string());
    root.fill(&WHITE).map_err(fail)?;
    let title = format!(
        "zcopy bench: {} file, {}, kernel {}",
        zcopy::size::human(env["file_size"].as_u64().unwrap_or(0)),
        env["file_system"].as_str().unwrap_or("?"),
        env["kernel"].as_str().unwrap_or("?")
    );
    let text = |s: &str, x: i32, y: i32, size: u32| {
        Text::new(s.to_string(), (x, y), ("sans-serif", size).into_font())
    };
    root.draw(&text(&title, 10, 10, 18)).map_err(fail)?;
    let throughput_x = LABEL_WIDTH;
    let cpu_x = LABEL_WIDTH + BAR_WIDTH + 120;
    root.draw(&text(
        "throughput (MiB/s), higher is better; line: slowest to fastest sample",
        throughput_x,
        42,
        13,
    ))
    .map_err(fail)?;
    root.draw(&text(
        "CPU s/GiB, engine side (user + sys), lower is better",
        cpu_x,
        42,
        13,
    ))
    .map_err(fail)?;
    let max_rate = results
        .iter()
        .flat_map(Measured::throughputs)
        .fold(1.0, f64::max);
    let cpu = Measured::cpu_per_gib;
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
        let rates = m.throughputs();
        let x_of = |rate: f64| throughput_x + (f64::from(BAR_WIDTH) * rate / max_rate) as i32;
        let slowest = x_of(rates.iter().copied().fold(f64::MAX, f64::min));
        let fastest = x_of(rates.iter().copied().fold(0.0, f64::max));
        let mid = y + (ROW_HEIGHT - 6) / 2;
        root.draw(&PathElement::new(
            vec![(slowest, mid), (fastest, mid)],
            BLACK.stroke_width(2),
        ))
        .map_err(fail)?;
        for x in [slowest, fastest] {
            root.draw(&PathElement::new(
                vec![(x, y + 3), (x, y + ROW_HEIGHT - 9)],
                BLACK.stroke_width(2),
            ))
            .map_err(fail)?;
        }
        root.draw(&text(
            &format!("{:.0}", m.throughput() / MIB),
            fastest.max(throughput_x + w) + 6,
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
    Job::ALL.iter().position(|&j| j == m.row.job).unwrap_or(0)
}
