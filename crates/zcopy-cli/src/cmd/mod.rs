//! One module per subcommand, named after it.

pub mod bench;
pub mod cp;
pub mod echo;
pub mod generate;
pub mod get;
pub mod recv;
pub mod scan;
pub mod send;
pub mod serve;

use std::io::Write;

/// Marks an error as "stdout was closed by its reader": the command exits quietly,
/// as `cat` does when piped into `head`.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
pub struct StdoutClosed;

/// A failure already reported on stderr, line by line: the command exits 1 with
/// nothing more to say.
#[derive(Debug, thiserror::Error)]
#[error("")]
pub struct Quiet;

/// A usage error found after parsing (operands that do not fit together): the
/// command exits 2, as for the errors clap finds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Whether `e` is the quiet end of a closed stdout.
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StdoutClosed>().is_some()
}

/// Prints one JSON object as a line on stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{value}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}
