//! `zcopy get URL...`: an HTTP/1.1 download client whose bodies go socket → pipe →
//! file with splice, with curl's flags and exit codes.
//!
//! The downloads are `zcopy_http::client`'s; this command turns its flags into a
//! plain [`args::Config`] first, runs the downloads (one after the other, or with
//! `-Z` several at once), and prints: the progress bar, the `saved` lines or
//! `--json`, `-w`, the failures, and curl's exit code for the last of them.

mod args;
mod write_out;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Map, Value};
use zcopy::Transfer;
use zcopy_http::client::{Client, Download, Error, Failure, Got, Head, Idle, Saved};

pub use args::Args;

use crate::exit;
use crate::summary::Summary;

/// The exit status of a `get` whose failures were reported already (curl's codes).
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Exit(pub u8);

pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    let printer = Printer {
        json: config.json,
        quiet: config.quiet,
        no_errors: config.no_errors,
        verbose: config.verbose,
        write_out: config.write_out.as_deref(),
    };
    let client = match Client::new(config.client) {
        Ok(client) => client,
        Err(e) => {
            printer.error(&e);
            return Err(Exit(exit::of_download(&e)).into());
        }
    };
    let at_once = config.parallel.min(config.downloads.len());
    let last_failure: Mutex<Option<u8>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    // Each worker takes the next URL; one worker is the sequential run, whose
    // kept-alive connection serves the next URL to the same host.
    let work = || -> Result<()> {
        let mut idle = None;
        while let Some(download) = config.downloads.get(next.fetch_add(1, Ordering::Relaxed)) {
            if let Some(code) = printer.fetch(&client, download, &mut idle)? {
                *lock(&last_failure) = Some(code);
            }
        }
        Ok(())
    };
    if at_once > 1 {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..at_once).map(|_| s.spawn(work)).collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("a download thread does not panic"))
        })?;
    } else {
        work()?;
    }
    let last_failure = lock(&last_failure).take();
    match last_failure {
        // As curl: the code of the last failure.
        Some(code) => Err(Exit(code).into()),
        None => Ok(()),
    }
}

/// What `get` prints, and where.
struct Printer<'a> {
    json: bool,
    /// No progress and no "saved" lines.
    quiet: bool,
    /// Not even errors (`-s` without `-S`).
    no_errors: bool,
    verbose: bool,
    write_out: Option<&'a str>,
}

impl Printer<'_> {
    /// `download` with its retries, and what it ended with printed; the code of
    /// its failure.
    fn fetch(&self, client: &Client, download: &Download, idle: &mut Idle) -> Result<Option<u8>> {
        let first_attempt = Instant::now();
        match client.download(download, idle, self) {
            Ok(Got::Saved(done)) => {
                self.print(&done)?;
                let path = done.path.display().to_string();
                self.write_out(&write_out::Outcome {
                    status: done.status,
                    url: &done.url.to_string(),
                    path: &path,
                    bytes: done.report.bytes,
                    seconds: done.seconds,
                    exitcode: exit::SUCCESS,
                    errormsg: "",
                })?;
                Ok(None)
            }
            Ok(Got::Head { status, url }) => {
                self.write_out(&write_out::Outcome {
                    status,
                    url: &url.to_string(),
                    path: "",
                    bytes: 0,
                    seconds: first_attempt.elapsed().as_secs_f64(),
                    exitcode: exit::SUCCESS,
                    errormsg: "",
                })?;
                Ok(None)
            }
            Err(Failure { error, status, .. }) => {
                self.error(&error);
                let code = exit::of_download(&error);
                self.write_out(&write_out::Outcome {
                    status,
                    url: &download.url,
                    path: "",
                    bytes: 0,
                    seconds: first_attempt.elapsed().as_secs_f64(),
                    exitcode: code,
                    errormsg: &said(&error),
                })?;
                Ok(Some(code))
            }
        }
    }

    fn print(&self, done: &Saved) -> Result<()> {
        let summary = Summary {
            report: &done.report,
            seconds: done.seconds,
            usage: done.usage,
        };
        if self.json {
            let mut extra = Map::new();
            extra.insert("url".into(), done.url.to_string().into());
            extra.insert("path".into(), done.path.display().to_string().into());
            extra.insert("status".into(), done.status.into());
            extra.insert("resumed_from".into(), done.resumed_from.into());
            extra.insert("connections".into(), done.connections.into());
            let body = if done.copied {
                "chunked: decoded in user space (copied)"
            } else {
                "spliced"
            };
            extra.insert("body".into(), body.into());
            extra.insert(
                "verified".into(),
                done.verified.map_or(Value::Null, Value::from),
            );
            return super::print_json(&summary.json(extra));
        }
        if self.quiet {
            return Ok(());
        }
        let mut notes = Vec::new();
        if done.resumed_from > 0 {
            notes.push(format!("resumed at byte {}", done.resumed_from));
        }
        if done.connections > 1 {
            notes.push(format!("{} connections", done.connections));
        }
        if done.copied {
            notes.push("chunked: decoded in user space, copied".into());
        }
        if let Some(v) = done.verified {
            notes.push(format!("{v} verified"));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        eprintln!("saved {}: {}{notes}", done.path.display(), summary.line());
        Ok(())
    }

    /// `-w FORMAT` for one transfer, on stdout.
    fn write_out(&self, outcome: &write_out::Outcome<'_>) -> Result<()> {
        let Some(format) = self.write_out else {
            return Ok(());
        };
        let (text, unknown) = write_out::expand(format, outcome);
        for name in unknown {
            // curl's words for it.
            eprintln!("zcopy: warning: unknown --write-out variable: '{name}'");
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(crate::cmd::StdoutClosed.into())
            }
            other => Ok(other?),
        }
    }

    /// A failure, unless `-s` without `-S` silences it.
    fn error(&self, e: &Error) {
        if !self.no_errors {
            eprintln!("zcopy: {}", said(e));
        }
    }
}

impl zcopy_http::client::Events for Printer<'_> {
    fn verbose(&self, line: &str) {
        if self.verbose {
            eprintln!("* {line}");
        }
    }

    fn note(&self, line: &str) {
        if !self.quiet {
            eprintln!("zcopy: note: {}", exit::without_os_error(line));
        }
    }

    fn retrying(&self, error: &Error, wait: Duration, left: u32) {
        if !self.quiet {
            // curl counts the retries left before this one.
            let s = if left == 1 { "retry" } else { "retries" };
            eprintln!(
                "zcopy: warning: {}; will retry in {} seconds, {left} {s} left",
                said(error),
                wait.as_secs_f64(),
            );
        }
    }

    /// `-I`: the head as the server sent it (curl's output), on stdout or, as curl,
    /// into `-o FILE` (made anew by the first head, the redirects' after it).
    fn head(&self, head: &Head, output: Option<&Path>, first: bool) -> Result<(), Error> {
        let mut text = format!(
            "HTTP/1.{} {} {}\r\n",
            head.version, head.status, head.reason
        );
        for (name, value) in &head.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        match output.filter(|p| *p != Path::new("-")) {
            Some(path) => OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(first)
                .append(!first)
                .open(path)
                .and_then(|mut file| file.write_all(text.as_bytes()))
                .map_err(|e| Error::Write(format!("cannot write {}: {e}", path.display()))),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::Write(format!("cannot write to standard output: {e}")))
            }
        }
    }

    fn drive(
        &self,
        transfer: &mut Transfer<'_>,
        total: Option<u64>,
        progress: bool,
    ) -> Result<(), zcopy::Error> {
        crate::progress::run(transfer, total, progress)
    }
}

/// A download's failure in one line, without Rust's " (os error N)".
fn said(e: &Error) -> String {
    exit::without_os_error(&e.to_string())
}

/// A mutex's guard, also after a panic elsewhere (the data is plain).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
