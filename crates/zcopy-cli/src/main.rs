//! `zcopy`: move bytes between files, pipes and sockets without copying them
//! through user space, and measure what each technique saves.
//!
//! A thin layer over the library crates: arguments in, plain configurations to the
//! libraries, their reports printed and their typed errors mapped to exit codes in
//! `exit`. No unsafe code: what needs it lives in the libraries, each block fenced.
#![forbid(unsafe_code)]

mod cmd;
mod color;
mod exit;
mod flags;
mod net;
mod progress;
mod summary;
mod version;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args as _, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Move bytes between files, pipes and sockets without copying them through user
/// space, and measure what each technique saves.
#[derive(Parser)]
#[command(name = "zcopy", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, global = true, value_enum, default_value = "auto")]
    color: color::When,
}

#[derive(Subcommand)]
enum Command {
    Send(cmd::send::Args),
    Recv(cmd::recv::Args),
    Echo(cmd::echo::Args),
    Bench(cmd::bench::Args),
    Scan(cmd::scan::Args),
    Cp(cmd::cp::Args),
    Serve(cmd::serve::Args),
    Generate(cmd::generate::Args),
    Get(cmd::get::Args),
}

/// The names under which zcopy is another tool (BusyBox's multi-call binary):
/// a link of one of these names to `zcopy` runs that tool. `zcopy generate links
/// DIR` makes them.
pub const PEER_NAMES: &[&str] = &[
    "cp",
    "xxhsum",
    "xxh32sum",
    "xxh64sum",
    "xxh128sum",
    "xxh3sum",
    "b3sum",
    "sha256sum",
    "sha224sum",
    "sha384sum",
    "sha512sum",
    "sha1sum",
    "md5sum",
];

/// Runs the tool argv[0] names, if it names one of [`PEER_NAMES`].
fn as_peer() -> Option<ExitCode> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first()?;
    let name = std::path::Path::new(argv0)
        .file_name()?
        .to_str()?
        .to_string();
    if !PEER_NAMES.contains(&name.as_str()) {
        return None;
    }
    Some(match name.as_str() {
        "cp" => cp(args),
        "b3sum" => cmd::scan::b3sum::main(args),
        "xxhsum" | "xxh32sum" | "xxh64sum" | "xxh128sum" | "xxh3sum" => {
            cmd::scan::xxhsum::main(&name, args.split_off(1))
        }
        // The GNU tools: sha256sum and its siblings, each named after its digest.
        gnu => {
            let digest = zcopy_sum::Digest::ALL
                .into_iter()
                .find(|d| format!("{}sum", d.tag().to_ascii_lowercase()) == gnu)?;
            // GNU names itself as it was called, path and all.
            let prog = argv0.to_string_lossy().into_owned();
            cmd::scan::gnu::main(&prog, digest, args.split_off(1))
        }
    })
}

/// `cp`: zcopy cp's flags under GNU's name; a usage error exits 1, as GNU's does.
fn cp(args: Vec<OsString>) -> ExitCode {
    let command = cmd::cp::Args::augment_args(clap::Command::new("cp"));
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| cmd::cp::Args::from_arg_matches(&m));
    match parsed {
        Ok(args) => exit::for_peer("cp", cmd::cp::run(args)),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    if let Some(code) = as_peer() {
        return code;
    }
    color::set(color::from_args());
    let mut command = Cli::command().color(color::for_clap());
    // The long version probes the kernel and the current directory (a FICLONE
    // between two new files): only `--version` pays for it, not every copy.
    if std::env::args_os().any(|a| a == "--version") {
        command = command.long_version(version::long());
    }
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Send(args) => cmd::send::run(args),
        Command::Recv(args) => cmd::recv::run(args),
        Command::Echo(args) => cmd::echo::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Cp(args) => cmd::cp::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Get(args) => cmd::get::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cmd::is_stdout_closed(&e) => ExitCode::from(exit::STDOUT_CLOSED),
        Err(e) if e.downcast_ref::<cmd::Quiet>().is_some() => ExitCode::FAILURE,
        Err(e) if exit::is_usage(&e) => {
            eprintln!(
                "zcopy: {}\nTry 'zcopy --help' for more information.",
                exit::message(&e)
            );
            ExitCode::from(exit::USAGE)
        }
        Err(e) if e.downcast_ref::<cmd::get::Exit>().is_some() => {
            ExitCode::from(e.downcast_ref::<cmd::get::Exit>().map_or(1, |exit| exit.0))
        }
        Err(e) => {
            eprintln!("zcopy: {}", exit::message(&e));
            ExitCode::from(exit::code(&e))
        }
    }
}
