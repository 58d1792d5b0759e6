//! Runs a transfer to the end, with a progress bar when stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zcopy::drive::Drive;
use zcopy::{Status, Transfer};

/// Bytes moved between two updates of the bar.
const STEP: u64 = 16 << 20;

/// Runs `transfer` until it is done. `total` sizes the bar; `show` is false for
/// `--json` and for servers with many transfers at once.
pub fn run(
    transfer: &mut Transfer<'_>,
    total: Option<u64>,
    show: bool,
) -> Result<(), zcopy::Error> {
    run_watched(transfer, total, show, None)
}

/// Like [`run`], with a watchdog on progress ([`Drive::stall`]): a socket timeout
/// (`EAGAIN`) is retried until no byte has moved for `stall`.
pub fn run_watched(
    transfer: &mut Transfer<'_>,
    total: Option<u64>,
    show: bool,
    stall: Option<Duration>,
) -> Result<(), zcopy::Error> {
    let mut drive = Drive::new();
    if let Some(stall) = stall {
        drive = drive.stall(stall);
    }
    let big = total.is_none_or(|t| t > STEP);
    if !(show && big && std::io::stderr().is_terminal()) {
        return finish(drive.run(transfer, |_| {}), stall);
    }
    let bar = bar(total, ProgressDrawTarget::stderr());
    let result = drive.step(STEP).run(transfer, |n| bar.inc(n));
    bar.finish_and_clear();
    finish(result, stall)
}

/// The one look of every progress line zcopy draws: `{prefix}{msg}` (send's file
/// count and name, else empty), then bytes, a bar when the total is known, the rate
/// and the time left.
pub fn bar(total: Option<u64>, target: ProgressDrawTarget) -> ProgressBar {
    let template = match total {
        Some(_) => {
            "{prefix}{msg} {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}"
        }
        None => "{prefix}{msg} {spinner} {bytes} {binary_bytes_per_sec}",
    };
    ProgressBar::with_draw_target(total, target)
        .with_style(ProgressStyle::with_template(template).expect("a valid template"))
}

fn finish(
    result: Result<Status, zcopy::Error>,
    stall: Option<Duration>,
) -> Result<(), zcopy::Error> {
    match result? {
        Status::Done => Ok(()),
        // Only blocking descriptors reach here, and they do not return EAGAIN
        // unless a timeout (SO_RCVTIMEO) expired.
        Status::WouldBlock(_) | Status::More => Err(zcopy::Error::Setup(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            match stall {
                Some(stall) => format!(
                    "timed out: no byte moved for {} s (--timeout)",
                    stall.as_secs_f64()
                ),
                None => "timed out waiting for the peer".into(),
            },
        ))),
    }
}
