//! Flags that several subcommands take, each defined once and taken into a
//! command's `Args` with `#[command(flatten)]`, so that their spelling, help and
//! parsing cannot drift apart between commands. What a flag means for one command
//! in particular (which lines `-v` adds) is in that command's own help.

use std::path::PathBuf;

/// `-q/--quiet` and `-v/--verbose`: how much a command says on stderr.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Verbosity {
    /// Print nothing but errors
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say what is done as it is done: each file, connection or request
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl Verbosity {
    /// Whether `-v` was given (at least once).
    pub fn verbose(&self) -> bool {
        self.verbose > 0
    }
}

/// `--json`: the measurements as JSON on stdout.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Json {
    /// Print one JSON object with the measurements on stdout, one per transfer or
    /// download
    #[arg(long)]
    pub json: bool,
}

/// `--secret-file`: the secret both ends of a framed session know.
#[derive(clap::Args, Clone, Debug)]
pub struct Secret {
    /// The shared secret: the first line of FILE (or set ZCOPY_SECRET). A receiver
    /// asks every sender to prove it (off loopback it makes a one-time secret when
    /// none is given), a sender proves it; the session is then TLS-encrypted
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
}

/// `--timeout`: how long a transfer may make no progress.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Stall {
    /// End the transfer when it makes no progress for this many seconds (0: never)
    #[arg(long, value_name = "S", default_value = "30")]
    pub timeout: f64,
}
