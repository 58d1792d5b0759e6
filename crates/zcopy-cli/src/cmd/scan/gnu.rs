//! `sha256sum` as GNU coreutils 9.1 is: its options as getopt_long reads them
//! (clustered short options, unambiguous prefixes of long ones, operands anywhere,
//! `--` ending the options) and its usage errors (exit 1, `Try 'sha256sum
//! --help'`); the check-line rules and quoted names are `zcopy_sum::gnu`'s.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use zcopy_sum::{Config, Digest, Voice};

/// The long options, in GNU's order (ambiguity messages list them so).
const LONG: &[&str] = &[
    "check",
    "ignore-missing",
    "quiet",
    "status",
    "warn",
    "strict",
    "tag",
    "zero",
    "binary",
    "text",
    "help",
    "version",
];

/// Runs `prog` (`sha256sum`) on its arguments (argv[0] left out).
pub fn main(prog: &str, digest: Digest, args: Vec<OsString>) -> ExitCode {
    match config(prog, digest, args) {
        Ok(Some(config)) => crate::exit::for_peer(prog, super::run_config(config)),
        Ok(None) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{prog}: {message}");
            }
            eprintln!("Try '{prog} --help' for more information.");
            ExitCode::FAILURE
        }
    }
}

/// The config the arguments ask for; `Ok(None)` after `--help` or `--version`;
/// `Err` with the usage error's words.
fn config(prog: &str, digest: Digest, args: Vec<OsString>) -> Result<Option<Config>, String> {
    let mut config = super::config(Voice::Gnu, prog, digest);
    config.accepts = vec![digest];
    // `-b`, `-t` and `--tag` set the mode; the last one wins.
    let mut binary: Option<bool> = None;
    let mut operands = Vec::new();
    // getopt_long permutes operands to the end, unless POSIXLY_CORRECT is set.
    let posix = std::env::var_os("POSIXLY_CORRECT").is_some();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            operands.extend(args.by_ref());
            break;
        }
        let option = if let Some(long) = bytes.strip_prefix(b"--") {
            long_option(long)?
        } else if bytes.len() > 1 && bytes[0] == b'-' {
            let mut short = Vec::new();
            for &c in &bytes[1..] {
                short.push(match c {
                    b'b' => "binary",
                    b'c' => "check",
                    b't' => "text",
                    b'w' => "warn",
                    b'z' => "zero",
                    _ => return Err(format!("invalid option -- '{}'", char::from(c))),
                });
            }
            short
        } else {
            operands.push(arg);
            if posix {
                operands.extend(args.by_ref());
            }
            continue;
        };
        for name in option {
            match name {
                "check" => config.check = true,
                "ignore-missing" => config.ignore_missing = true,
                "binary" => binary = Some(true),
                "text" => binary = Some(false),
                "tag" => {
                    config.tag = true;
                    binary = Some(true);
                }
                "zero" => config.zero = true,
                "strict" => config.strict = true,
                // The last of these three wins, as in GNU.
                "quiet" => (config.quiet, config.status, config.warn) = (true, false, false),
                "status" => (config.quiet, config.status, config.warn) = (false, true, false),
                "warn" => (config.quiet, config.status, config.warn) = (false, false, true),
                "help" => {
                    print!("{}", help(prog, digest));
                    return Ok(None);
                }
                _ => {
                    // GNU's version line names the tool, not argv[0].
                    let tool = format!("{}sum", digest.tag().to_ascii_lowercase());
                    println!("{tool} (zcopy) {}", env!("CARGO_PKG_VERSION"));
                    return Ok(None);
                }
            }
        }
    }
    if config.tag && binary == Some(false) {
        return Err("--tag does not support --text mode".into());
    }
    let check_only = [
        (config.ignore_missing, "--ignore-missing"),
        (config.status, "--status"),
        (config.warn, "--warn"),
        (config.quiet, "--quiet"),
        (config.strict, "--strict"),
    ];
    if config.check {
        if config.zero {
            return Err("the --zero option is not supported when verifying checksums".into());
        }
        if config.tag {
            return Err("the --tag option is meaningless when verifying checksums".into());
        }
        if binary.is_some() {
            return Err(
                "the --binary and --text options are meaningless when verifying checksums".into(),
            );
        }
    } else if let Some((_, flag)) = check_only.iter().find(|(set, _)| *set) {
        return Err(format!(
            "the {flag} option is meaningful only when verifying checksums"
        ));
    }
    config.binary = binary == Some(true);
    config.files = operands;
    Ok(Some(config))
}

/// The long option `--NAME[=VALUE]` names, as getopt_long matches it: exactly, or
/// by a prefix that fits one option only.
fn long_option(arg: &[u8]) -> Result<Vec<&'static str>, String> {
    let (name, value) = match arg.iter().position(|b| *b == b'=') {
        Some(eq) => (&arg[..eq], Some(&arg[eq + 1..])),
        None => (arg, None),
    };
    let shown = String::from_utf8_lossy(name);
    let found = match LONG.iter().find(|l| l.as_bytes() == name) {
        Some(exact) => *exact,
        None => {
            let fits: Vec<&str> = LONG
                .iter()
                .copied()
                .filter(|l| l.as_bytes().starts_with(name))
                .collect();
            match fits[..] {
                [one] => one,
                [] => {
                    return Err(format!(
                        "unrecognized option '--{}'",
                        String::from_utf8_lossy(arg)
                    ))
                }
                _ => {
                    let all: Vec<String> = fits.iter().map(|l| format!("'--{l}'")).collect();
                    return Err(format!(
                        "option '--{shown}' is ambiguous; possibilities: {}",
                        all.join(" ")
                    ));
                }
            }
        }
    };
    if value.is_some() {
        return Err(format!("option '--{found}' doesn't allow an argument"));
    }
    Ok(vec![found])
}

fn help(prog: &str, digest: Digest) -> String {
    format!(
        "Usage: {prog} [OPTION]... [FILE]...
Print or check {tag} ({bits}-bit) checksums.

With no FILE, or when FILE is -, read standard input.

  -b, --binary          read in binary mode
  -c, --check           read checksums from the FILEs and check them
      --tag             create a BSD-style checksum
  -t, --text            read in text mode (default)
  -z, --zero            end each output line with NUL, not newline,
                          and disable file name escaping

The following five options are useful only when verifying checksums:
      --ignore-missing  don't fail or report status for missing files
      --quiet           don't print OK for each successfully verified file
      --status          don't output anything, status code shows success
      --strict          exit non-zero for improperly formatted checksum lines
  -w, --warn            warn about improperly formatted checksum lines

      --help        display this help and exit
      --version     output version information and exit

This is zcopy scan under the name {prog}: it hashes through zcopy's scan engines.
",
        tag = digest.tag(),
        bits = digest.hex_len() * 4,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_in_gnu_words() {
        let err = |args: &[&str]| {
            config(
                "sha256sum",
                Digest::Sha256,
                args.iter().map(OsString::from).collect(),
            )
            .err()
        };
        assert_eq!(
            err(&["--ignore-missing", "f"]).as_deref(),
            Some("the --ignore-missing option is meaningful only when verifying checksums")
        );
        assert_eq!(
            err(&["--st"]).as_deref(),
            Some("option '--st' is ambiguous; possibilities: '--status' '--strict'")
        );
        assert_eq!(err(&["-x"]).as_deref(), Some("invalid option -- 'x'"));
        assert_eq!(
            err(&["--tag", "-c"]).as_deref(),
            Some("the --tag option is meaningless when verifying checksums")
        );
        assert_eq!(
            err(&["--tag", "--text"]).as_deref(),
            Some("--tag does not support --text mode")
        );
        assert_eq!(err(&["--che", "--stat", "f"]), None);
    }
}
