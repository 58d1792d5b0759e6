//! `--color auto|always|never`, with `NO_COLOR` honoured (no-color.org): one
//! answer for every part of zcopy that could colour its output.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// When to colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// On a terminal, unless `NO_COLOR` is set to anything non-empty.
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: OnceLock<When> = OnceLock::new();

/// Records the command line's choice (once, at start).
pub fn set(when: When) {
    let _ = CHOICE.set(when);
}

/// The choice in force, taking `NO_COLOR` into account under `auto`.
pub fn choice() -> When {
    match CHOICE.get().copied().unwrap_or_default() {
        When::Auto if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) => When::Never,
        other => other,
    }
}

/// Whether output to stderr is coloured.
pub fn stderr() -> bool {
    match choice() {
        When::Always => true,
        When::Never => false,
        When::Auto => std::io::stderr().is_terminal(),
    }
}

/// `--color` as written on the command line, read before clap parses it so the
/// help and error messages clap prints follow it too.
pub fn from_args() -> When {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut when = When::Auto;
    for (i, arg) in args.iter().enumerate() {
        let value = match arg.as_encoded_bytes().strip_prefix(b"--color=") {
            Some(v) => Some(v),
            None if arg == "--color" => args.get(i + 1).map(|v| v.as_encoded_bytes()),
            None => None,
        };
        when = match value {
            Some(b"always") => When::Always,
            Some(b"never") => When::Never,
            Some(_) => When::Auto,
            None => continue,
        };
    }
    when
}

/// The same choice for clap's own output.
pub fn for_clap() -> clap::ColorChoice {
    match choice() {
        When::Auto => clap::ColorChoice::Auto,
        When::Always => clap::ColorChoice::Always,
        When::Never => clap::ColorChoice::Never,
    }
}
