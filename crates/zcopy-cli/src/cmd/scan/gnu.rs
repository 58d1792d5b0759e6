//! `sha256sum` as GNU coreutils 9.1 is: its options as getopt_long reads them
//! (clustered short options, unambiguous prefixes of long ones, operands anywhere,
//! `--` ending the options), its usage errors (exit 1, `Try 'sha256sum --help'`),
//! its check-line rules and its shell-quoted names in messages.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use super::line::{self, CheckLine};
use super::{Config, Voice};
use crate::digest::Digest;

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
        Ok(Some(config)) => super::super::exit_for(prog, super::run_config(config)),
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
    let mut config = Config::new(Voice::Gnu, prog, digest);
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

/// Reads a check line as GNU's `split_3` does. `reversed` is GNU's "BSD reversed"
/// state for the whole run: the first untagged line says whether lines are
/// `hex name` (one space, as BSD `md5 -r` writes) or `hex  name`/`hex *name`, and
/// later lines of the other kind are refused, so that a name starting with a space
/// or `*` cannot be read two ways.
pub fn parse(
    text: &[u8],
    digest: Digest,
    reversed: &mut Option<bool>,
) -> Result<CheckLine, String> {
    let bad = String::new;
    let white = |b: u8| b == b' ' || b == b'\t';
    let mut i = text.iter().position(|b| !white(*b)).ok_or_else(bad)?;
    let escaped = text[i] == b'\\';
    if escaped {
        i += 1;
    }
    let tag = digest.tag().as_bytes();
    let (hex, name) = if text[i..].starts_with(tag) {
        i += tag.len();
        if text.get(i) == Some(&b' ') {
            i += 1;
        }
        if text.get(i) != Some(&b'(') {
            return Err(bad());
        }
        tagged(&text[i + 1..], digest).ok_or_else(bad)?
    } else {
        let hex_len = digest.hex_len();
        // The shortest line: the hex, a blank and a one-byte name.
        let escape_byte = usize::from(text.get(i) == Some(&b'\\'));
        if text.len() - i < hex_len + 2 + escape_byte {
            return Err(bad());
        }
        let hex = &text[i..i + hex_len];
        let mut j = i + hex_len;
        if !white(text[j]) || !line::is_hex(hex, hex_len) {
            return Err(bad());
        }
        j += 1;
        let one_byte_left = text.len() - j == 1;
        if one_byte_left || (text[j] != b' ' && text[j] != b'*') {
            if *reversed == Some(false) {
                return Err(bad());
            }
            *reversed = Some(true);
        } else if *reversed != Some(true) {
            *reversed = Some(false);
            j += 1;
        }
        (hex, &text[j..])
    };
    let unescaped = if escaped {
        line::unescape(name).ok_or_else(bad)?
    } else {
        name.to_vec()
    };
    Ok(CheckLine {
        digests: vec![digest],
        expected: line::unhex(hex, false).ok_or_else(bad)?,
        name: unescaped,
        shown: name.to_vec(),
    })
}

/// `name) = hex` after `TAG (`: the name ends at the last `)`, blanks may sit on
/// either side of the `=`, and the hex runs to the end of the line.
fn tagged(rest: &[u8], digest: Digest) -> Option<(&[u8], &[u8])> {
    let close = rest.iter().rposition(|b| *b == b')')?;
    let name = &rest[..close];
    let tail = &rest[close + 1..];
    let white = |b: &u8| *b == b' ' || *b == b'\t';
    let start = tail.iter().position(|b| !white(b))?;
    let tail = tail[start..].strip_prefix(b"=")?;
    let start = tail.iter().position(|b| !white(b)).unwrap_or(tail.len());
    let hex = &tail[start..];
    line::is_hex(hex, digest.hex_len()).then_some((hex, name))
}

/// `name` quoted for a message as GNU's `quotef` does: as it is when the shell
/// would read it back unchanged, else in single quotes, with bytes that do not
/// print written `$'\ooo'` outside them.
pub fn quote(name: &[u8]) -> String {
    let utf8_locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        });
    let text = String::from_utf8_lossy(name);
    let printable = |c: char| {
        if c.is_ascii() {
            !c.is_ascii_control()
        } else {
            utf8_locale && c != char::REPLACEMENT_CHARACTER && !c.is_control()
        }
    };
    let safe = |i: usize, c: char| {
        c.is_ascii_alphanumeric()
            || "%+,-./]_@".contains(c)
            || (i > 0 && "#~".contains(c))
            || (!c.is_ascii() && printable(c))
            || (name.len() > 1 && "{}".contains(c))
    };
    if !name.is_empty()
        && text.chars().enumerate().all(|(i, c)| safe(i, c))
        && !text.contains('\u{fffd}')
    {
        return text.into_owned();
    }
    let mut out = String::from("'");
    // Whether the last thing written was a `$'\ooo'`, after which GNU opens no
    // new pair of quotes.
    let mut ended_escaped = false;
    let mut rest = name;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, tail) = rest.split_at(e.valid_up_to());
                let bad_len = e.error_len().unwrap_or(tail.len());
                // `ok` is valid UTF-8: from_utf8 said so.
                (
                    std::str::from_utf8(ok).unwrap_or_default(),
                    &tail[..bad_len],
                )
            }
        };
        for c in valid.chars() {
            ended_escaped = !printable(c);
            match c {
                '\'' => out.push_str("'\\''"),
                c if printable(c) => out.push(c),
                c => {
                    let mut buf = [0; 4];
                    out.push_str("'$'");
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&escape_byte(b));
                    }
                    out.push_str("''");
                }
            }
        }
        if !bad.is_empty() {
            ended_escaped = true;
            out.push_str("'$'");
            for &b in bad {
                out.push_str(&escape_byte(b));
            }
            out.push_str("''");
        }
        rest = &rest[valid.len() + bad.len()..];
    }
    if ended_escaped {
        out.truncate(out.len() - 1);
    } else {
        out.push('\'');
    }
    out
}

fn escape_byte(b: u8) -> String {
    match b {
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        b'\r' => "\\r".into(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0b => "\\v".into(),
        0x0c => "\\f".into(),
        _ => format!("\\{b:03o}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn name(line: &str, reversed: &mut Option<bool>) -> Option<Vec<u8>> {
        parse(line.as_bytes(), Digest::Sha256, reversed)
            .ok()
            .map(|l| l.name)
    }

    #[test]
    fn bsd_reversed_is_decided_once() {
        let mut state = None;
        assert_eq!(name(&format!("{HEX} a"), &mut state), Some(b"a".to_vec()));
        assert_eq!(state, Some(true));
        assert_eq!(name(&format!("{HEX}  b"), &mut state), Some(b" b".to_vec()));
        let mut state = None;
        assert_eq!(name(&format!("{HEX}  b"), &mut state), Some(b"b".to_vec()));
        assert_eq!(name(&format!("{HEX} a"), &mut state), None);
        assert_eq!(name(&format!("{HEX} **c"), &mut None), Some(b"*c".to_vec()));
    }

    #[test]
    fn tagged_lines_and_junk() {
        let mut state = None;
        assert_eq!(
            name(&format!("SHA256 (a) b) = {HEX}"), &mut state),
            Some(b"a) b".to_vec())
        );
        assert_eq!(
            name(&format!("SHA256(f)= {HEX}"), &mut state),
            Some(b"f".to_vec())
        );
        assert_eq!(
            name(&format!("\\SHA256 (a\\nb) = {HEX}"), &mut state),
            Some(b"a\nb".to_vec())
        );
        for bad in [
            "SHA256 (",
            "MD5 (f) = 00",
            "ERR",
            &format!("{}  f", &HEX[1..]),
        ] {
            assert_eq!(name(bad, &mut None), None, "{bad}");
        }
        let nul = format!("{}  h", "\0".repeat(64));
        assert_eq!(name(&nul, &mut None), None);
    }

    #[test]
    fn names_quoted_as_gnu_quotes_them() {
        assert_eq!(quote(b"plain/name.txt"), "plain/name.txt");
        assert_eq!(quote(b"d e x"), "'d e x'");
        assert_eq!(quote(b"it's"), "'it'\\''s'");
        assert_eq!(quote(b"n\xffme"), "'n'$'\\377''me'");
        assert_eq!(quote(b"a\nb"), "'a'$'\\n''b'");
        assert_eq!(quote(b""), "''");
    }

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
