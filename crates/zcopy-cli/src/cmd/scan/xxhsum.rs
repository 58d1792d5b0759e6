//! `xxhsum` as xxHash 0.8.3 is (and `xxh32sum`, `xxh64sum`, `xxh128sum`,
//! `xxh3sum`, which default to and check only their own digest): its arguments as
//! it reads them (options up to the first file name, `-H#` glued, clustered short
//! options), `Wrong parameters` and exit 1 for a bad one, `--filelist`, and its
//! benchmark (`-b`); the check-line rules are `zcopy_sum::xxhsum`'s.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Duration;

use zcopy_sum::xxhsum::{bench_digest, best_rate, number_to_digest, XXH};
use zcopy_sum::{Config, Digest, Voice};

/// What the command line asked for.
enum Mode {
    Run(Config),
    Bench {
        ids: Vec<u32>,
        iterations: u32,
        sample: usize,
        files: Vec<OsString>,
    },
    /// Help or version, already printed.
    Done,
}

/// Runs xxhsum under the name `exename` on its arguments (argv[0] left out).
pub fn main(exename: &str, args: Vec<OsString>) -> ExitCode {
    match parse_args(exename, args) {
        Ok(Mode::Run(config)) => crate::exit::for_peer(exename, super::run_config(config)),
        Ok(Mode::Bench {
            ids,
            iterations,
            sample,
            files,
        }) => bench(exename, &ids, iterations, sample, &files),
        Ok(Mode::Done) => ExitCode::SUCCESS,
        Err(Bad::Usage) => {
            eprint!("Wrong parameters\n\n{}", usage(exename));
            ExitCode::FAILURE
        }
        Err(Bad::TooLarge) => {
            eprintln!("Error: numeric value too large ");
            ExitCode::FAILURE
        }
    }
}

enum Bad {
    Usage,
    TooLarge,
}

fn parse_args(exename: &str, args: Vec<OsString>) -> Result<Mode, Bad> {
    let (default, accepts) = match ["xxh32sum", "xxh64sum", "xxh128sum", "xxh3sum"]
        .iter()
        .position(|n| exename.contains(n))
    {
        Some(i) => {
            let d = [Digest::Xxh32, Digest::Xxh64, Digest::Xxh128, Digest::Xxh3][i];
            (d, vec![d])
        }
        None => (Digest::Xxh64, XXH.to_vec()),
    };
    let mut config = super::config(Voice::Xxhsum, "xxhsum", default);
    config.accepts = accepts;
    let (mut quiet, mut explicit_stdin) = (0, false);
    let (mut bench, mut ids, mut iterations, mut sample) = (false, Vec::new(), 3, 100 << 10);
    let mut files = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        match bytes {
            b"--check" => config.check = true,
            b"--files-from" | b"--filelist" => config.file_list = true,
            b"--benchmark-all" | b"--bench-all" => {
                bench = true;
                ids = (1..=28).collect();
            }
            b"--quiet" => quiet += 1,
            b"--little-endian" => config.little_endian = true,
            b"--strict" => config.strict = true,
            b"--status" => config.status = true,
            b"--warn" => config.warn = true,
            // Ignored by xxhsum too: there is no text mode.
            b"--binary" => {}
            b"--ignore-missing" => config.ignore_missing = true,
            b"--help" => {
                eprint!("{}", usage_advanced(exename));
                return Ok(Mode::Done);
            }
            b"--version" => {
                eprint!("{}", welcome(exename));
                return Ok(Mode::Done);
            }
            b"--tag" => config.tag = true,
            b"--" => {
                files.extend(args.by_ref());
                break;
            }
            [b'-', ..] => {
                if bytes == b"-" {
                    explicit_stdin = true;
                }
                let mut rest = &bytes[1..];
                while let Some((&c, tail)) = rest.split_first() {
                    rest = tail;
                    match c {
                        b'V' => {
                            eprint!("{}", welcome(exename));
                            return Ok(Mode::Done);
                        }
                        b'h' => {
                            eprint!("{}", usage_advanced(exename));
                            return Ok(Mode::Done);
                        }
                        b'H' => {
                            config.digest =
                                number_to_digest(number(&mut rest)?).ok_or(Bad::Usage)?;
                        }
                        b'c' => config.check = true,
                        b'w' => config.warn = true,
                        b'b' => {
                            bench = true;
                            loop {
                                let id = number(&mut rest)?;
                                ids.push(id);
                                match rest.split_first() {
                                    Some((b',', tail)) => rest = tail,
                                    _ => break,
                                }
                            }
                        }
                        b'i' => iterations = number(&mut rest)?,
                        b'B' => sample = number(&mut rest)? as usize,
                        b'q' => quiet += 1,
                        _ => return Err(Bad::Usage),
                    }
                }
            }
            _ => {
                // The first name ends the options: the rest are all names.
                files.push(arg);
                files.extend(args.by_ref());
                break;
            }
        }
    }
    if bench {
        return Ok(Mode::Bench {
            ids,
            iterations,
            sample,
            files,
        });
    }
    if files.is_empty() && !explicit_stdin && std::io::stdin().is_terminal() {
        return Err(Bad::Usage);
    }
    config.quiet = quiet > 0;
    config.files = files;
    Ok(Mode::Run(config))
}

/// Reads the digits at the start of `rest` (with xxhsum's K, KB, KiB, M, MB, MiB
/// suffixes), moving past them; none reads as 0, as in xxhsum.
fn number(rest: &mut &[u8]) -> Result<u32, Bad> {
    let mut n: u32 = 0;
    while let Some((&c, tail)) = rest.split_first() {
        if !c.is_ascii_digit() {
            break;
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(c - b'0')))
            .ok_or(Bad::TooLarge)?;
        *rest = tail;
    }
    if let Some((&unit @ (b'K' | b'M'), tail)) = rest.split_first() {
        let shift = if unit == b'K' { 10 } else { 20 };
        n = n.checked_mul(1 << shift).ok_or(Bad::TooLarge)?;
        *rest = tail;
        for skip in [b'i', b'B'] {
            if let Some((&c, tail)) = rest.split_first() {
                if c == skip {
                    *rest = tail;
                }
            }
        }
    }
    Ok(n)
}

fn welcome(exename: &str) -> String {
    format!("{exename} 0.8.3 (zcopy {}) \n", env!("CARGO_PKG_VERSION"))
}

/// The `-H` number of the name's default digest, as the usage text shows it.
fn default_number(exename: &str) -> usize {
    ["xxh32sum", "xxh64sum", "xxh128sum", "xxh3sum"]
        .iter()
        .position(|n| exename.contains(n))
        .unwrap_or(1)
}

fn usage(exename: &str) -> String {
    format!(
        "{}Create or verify checksums using fast non-cryptographic algorithm xxHash \n\n\
         Usage: {exename} [options] [files] \n\n\
         When no filename provided or when '-' is provided, uses stdin as input. \n\
         \nOptions: \n  \
         -H#             select an xxhash algorithm (default: {default}) \n                  \
         0: XXH32 \n                  \
         1: XXH64 \n                  \
         2: XXH128 (also called XXH3_128bits) \n                  \
         3: XXH3 (also called XXH3_64bits) \n  \
         -c, --check     read xxHash checksum from [files] and check them \n      \
         --filelist  generate hashes for files listed in [files] \n  \
         -h, --help      display a long help page about advanced options \n",
        welcome(exename),
        default = default_number(exename)
    )
}

fn usage_advanced(exename: &str) -> String {
    format!(
        "{}\nAdvanced :\n  \
         -V, --version        Display version information \n      \
         --tag            Produce BSD-style checksum lines \n      \
         --little-endian  Checksum values use little endian convention (default: big endian) \n      \
         --binary         Read in binary mode \n  \
         -b                   Run benchmark \n  \
         -b#                  Bench only algorithm variant # \n  \
         -i#                  Number of times to run the benchmark (default: 3) \n  \
         -q, --quiet          Don't display version header in benchmark mode \n\n\
         The following five options are useful only when using lists in [files] to verify or generate checksums: \n  \
         -q, --quiet          Don't print OK for each successfully verified hash \n      \
         --status         Don't output anything, status code shows success \n      \
         --strict         Exit non-zero for improperly formatted lines in [files] \n      \
         --warn           Warn about improperly formatted lines in [files] \n      \
         --ignore-missing Don't fail or report status for missing files \n",
        usage(exename)
    )
}

/// `-b`: hashes a sample (or each file) for about a second, `iterations` times,
/// and prints the best rate on stderr, as xxhsum's benchmark does.
fn bench(
    exename: &str,
    ids: &[u32],
    iterations: u32,
    sample: usize,
    files: &[OsString],
) -> ExitCode {
    let ids: Vec<u32> = if ids.is_empty() || ids == [0] {
        vec![1, 3, 5, 11]
    } else if ids.iter().any(|id| bench_digest(*id).is_none()) {
        (1..=28).collect()
    } else {
        ids.to_vec()
    };
    eprint!("{}", welcome(exename));
    let inputs: Vec<Vec<u8>> = if files.is_empty() {
        eprintln!("Sample of {} KB...        ", sample >> 10);
        vec![(0..sample).map(|i| (i * 2_654_435_761) as u8).collect()]
    } else {
        let mut inputs = Vec::new();
        for file in files {
            match std::fs::read(file) {
                Ok(bytes) => inputs.push(bytes),
                Err(e) => {
                    eprintln!(
                        "Error: Could not open '{}': {}. ",
                        String::from_utf8_lossy(file.as_bytes()),
                        crate::exit::without_os_error(&e.to_string())
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        inputs
    };
    // -i0 is one quick round, "no claim of accuracy", as in xxhsum.
    let (rounds, round_time) = match iterations {
        0 => (1, Duration::from_millis(100)),
        n => (n, Duration::from_secs(1)),
    };
    for bytes in &inputs {
        for &id in &ids {
            let Some((digest, name)) = bench_digest(id) else {
                continue;
            };
            let unaligned = id % 2 == 0;
            let input = if unaligned && !bytes.is_empty() {
                &bytes[1..]
            } else {
                &bytes[..]
            };
            let best = best_rate(digest, input, rounds, round_time);
            let variant = if unaligned {
                format!("{name} unaligned")
            } else {
                name.to_string()
            };
            let mbs = best * input.len() as f64 / f64::from(1 << 20);
            eprintln!(
                "{id:2}#{variant:<30} : {:10} -> {best:8.0} it/s ({mbs:7.1} MB/s) ",
                input.len()
            );
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_xxhsum_reads_them() {
        let run =
            |args: &[&str]| match parse_args("xxhsum", args.iter().map(OsString::from).collect()) {
                Ok(Mode::Run(c)) => Some((c.digest, c.tag, c.quiet, c.files.len())),
                _ => None,
            };
        assert_eq!(run(&["-H0", "f"]), Some((Digest::Xxh32, false, false, 1)));
        assert_eq!(run(&["-qH3", "f"]), Some((Digest::Xxh3, false, true, 1)));
        assert_eq!(
            run(&["-H128", "f", "-H0"]),
            Some((Digest::Xxh128, false, false, 2))
        );
        assert_eq!(run(&["-H9", "f"]), None);
        assert_eq!(run(&["--bogus", "f"]), None);
        assert!(matches!(
            parse_args("xxhsum", vec!["-bi0".into()]),
            Ok(Mode::Bench { iterations: 0, .. })
        ));
        match parse_args("/usr/bin/xxh128sum", vec!["-c".into(), "f".into()]) {
            Ok(Mode::Run(c)) => assert_eq!(c.accepts, [Digest::Xxh128]),
            _ => panic!("xxh128sum -c f"),
        }
    }
}
