//! Runs a transfer to the end, with a progress bar when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
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
    let big = total.is_none_or(|t| t > STEP);
    if !(show && big && std::io::stderr().is_terminal()) {
        return finish(transfer.run());
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                .expect("a valid template"),
        ),
    };
    let result = loop {
        match transfer.run_some(STEP) {
            Ok(Status::More) => bar.set_position(transfer.moved()),
            other => break other,
        }
    };
    bar.finish_and_clear();
    finish(result)
}

fn finish(result: Result<Status, zcopy::Error>) -> Result<(), zcopy::Error> {
    match result? {
        Status::Done => Ok(()),
        // Only blocking descriptors reach here, and they do not return EAGAIN
        // unless a timeout (SO_RCVTIMEO) expired.
        Status::WouldBlock | Status::More => Err(zcopy::Error::Setup(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out waiting for the peer",
        ))),
    }
}
