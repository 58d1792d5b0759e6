//! Flags that several subcommands take, each defined once and taken into a
//! command's `Args` with `#[command(flatten)]`, so that their spelling, help and
//! parsing cannot drift apart between commands. What a flag means for one command
//! in particular (which lines `-v` adds) is in that command's own help.

use std::ffi::OsString;
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

/// `-e/--rsh`, `--zcopy-path` and `--ssh-data`: how `send` and `recv` reach a
/// `[user@]host:PATH` operand (see `zcopy_wire::remote`).
#[derive(clap::Args, Clone, Debug)]
pub struct Ssh {
    /// The remote shell that starts zcopy for a [user@]host: operand, with its
    /// options (as rsync's -e: `-e "ssh -p 2222 -i KEY"`)
    #[arg(short = 'e', long = "rsh", value_name = "CMD", default_value = "ssh")]
    pub rsh: OsString,
    /// The zcopy program on the remote host, as rsync's --rsync-path (it may be
    /// `"sudo zcopy"`)
    #[arg(long, value_name = "PROGRAM", default_value = "zcopy")]
    pub zcopy_path: OsString,
    /// Carry the data inside the ssh channel, where no port of the remote host is
    /// reachable (slower: ssh's cipher and window); by default only the start
    /// goes through ssh and the data over direct TCP with TLS
    #[arg(long)]
    pub ssh_data: bool,
    /// The remote side of a transfer over ssh (zcopy passes it; not for hand use)
    #[arg(long, hide = true)]
    pub ssh_serve: bool,
}
