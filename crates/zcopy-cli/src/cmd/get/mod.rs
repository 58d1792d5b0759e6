//! `zcopy get URL...`: an HTTP/1.1 download client whose bodies go socket → pipe →
//! file with splice, with curl's flags and exit codes.
//!
//! Every download is written to `.NAME.zcopy-part` beside its target and renamed
//! when it is complete and verified: its length, and its `Repr-Digest` (or, for a
//! whole body, `Content-Digest`) when the server sends one. An interrupted download
//! keeps its partial file with the server's validator (ETag or Last-Modified) in an
//! extended attribute, so that `-C` (and `--retry`) resumes it with `Range` and
//! `If-Range`; a server whose file changed answers with the whole file, and the
//! download starts over. The flags become a plain [`args::Config`] first; the body
//! path below never looks at them.

mod args;
mod save;
mod segments;
mod write_out;

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Map, Value};
use zcopy::{Options, Report, Rusage};

pub use args::Args;
use args::{Config, Download};
use save::{part_path, Place};

use crate::exit;
use crate::http::client::{self, fail, Failed, Framing, Head, Receiving, Request, Url};
use crate::http::proxy::Proxies;
use crate::http::tls_client;
use crate::summary::Summary;

/// The exit status of a `get` whose failures were reported already (curl's codes).
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Exit(pub u8);

/// Redirects followed at most, as curl and wget do by default.
const MAX_REDIRECTS: usize = 10;
/// The longest redirect body read to keep its connection.
const REDIRECT_BODY_MAX: u64 = 64 << 10;
/// curl's retry backoff without `--retry-delay`: 1 s, doubling, at most 10 min.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MOST: Duration = Duration::from_secs(600);
/// Statuses curl's `--retry` takes for transient.
const TRANSIENT_STATUS: [u16; 6] = [408, 429, 500, 502, 503, 504];

pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    let proxies = match Proxies::new(config.proxy.as_deref(), config.noproxy.as_deref()) {
        Ok(proxies) => proxies,
        Err(failed) => {
            if !config.no_errors {
                eprintln!("zcopy: {failed}");
            }
            return Err(Exit(failed.code).into());
        }
    };
    let at_once = config.parallel.min(config.downloads.len());
    let job = Job {
        config: &config,
        receiving: Receiving {
            options: Options {
                engine: config.engine,
                ..Options::default()
            },
            rate: config.limit_rate,
            // Bars of several downloads at once would overwrite each other.
            progress: !config.json && !config.quiet && at_once == 1,
        },
        tls: tls_client::Settings::new(config.cacert.clone(), config.insecure),
        proxies,
    };
    let last_failure: Mutex<Option<u8>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    // Each worker takes the next URL; one worker is the sequential run, whose
    // kept-alive connection serves the next URL to the same host.
    let work = || -> Result<()> {
        let mut idle = None;
        while let Some(download) = config.downloads.get(next.fetch_add(1, Ordering::Relaxed)) {
            if let Some(code) = job.fetch(download, &mut idle)? {
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

/// A connection kept alive after a response, for the next URL to the same host.
type Idle = Option<(String, TcpStream)>;

struct Job<'a> {
    config: &'a Config,
    receiving: Receiving,
    tls: tls_client::Settings,
    proxies: Proxies,
}

/// A finished download.
struct Done {
    url: Url,
    path: PathBuf,
    status: u16,
    report: Report,
    seconds: f64,
    usage: Rusage,
    resumed_from: u64,
    connections: u16,
    copied: bool,
    verified: Option<&'static str>,
}

/// What a download ended with: a saved file, or with `-I` a head.
enum Got {
    Saved(Box<Done>),
    Head { status: u16, url: Url },
}

/// A failed attempt, and whether `--retry` may try again.
struct Fault {
    failed: Failed,
    /// The status of an HTTP error; 0 for others (`-w`'s `000`).
    status: u16,
    transient: bool,
    /// The server's `Retry-After`, which curl waits instead of its own delay.
    retry_after: Option<Duration>,
}

impl From<Failed> for Fault {
    fn from(failed: Failed) -> Fault {
        // Refused, timed out, cut off or reset: curl's transient failures, and ours.
        let transient = [
            exit::CONNECT,
            exit::TIMEOUT,
            exit::PEER_CLOSED,
            exit::SEND,
            exit::RECEIVE,
        ]
        .contains(&failed.code);
        Fault {
            failed,
            status: 0,
            transient,
            retry_after: None,
        }
    }
}

/// What a download asks for beyond the defaults: the user's header lines (without
/// credentials once a redirect leaves the first origin) and the `Range` lines.
struct Asking<'a> {
    headers: &'a [(String, String)],
    extra: String,
}

impl Job<'_> {
    /// `download` with its retries; the code of its failure, which is reported already.
    fn fetch(&self, download: &Download, idle: &mut Idle) -> Result<Option<u8>> {
        let mut resume = self.config.resume;
        let mut delay = self.config.retry_delay.unwrap_or(RETRY_FIRST);
        let mut left = self.config.retries;
        let first_attempt = Instant::now();
        loop {
            let fault = match self.get(download, idle, resume) {
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
                    return Ok(None);
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
                    return Ok(None);
                }
                Err(fault) => fault,
            };
            let too_late = self
                .config
                .retry_max_time
                .is_some_and(|most| first_attempt.elapsed() >= most);
            if !(fault.transient || self.config.retry_all_errors) || left == 0 || too_late {
                self.error(&fault.failed);
                self.write_out(&write_out::Outcome {
                    status: fault.status,
                    url: &download.url,
                    path: "",
                    bytes: 0,
                    seconds: first_attempt.elapsed().as_secs_f64(),
                    exitcode: fault.failed.code,
                    errormsg: &fault.failed.message,
                })?;
                return Ok(Some(fault.failed.code));
            }
            let wait = fault.retry_after.unwrap_or(delay);
            if !self.config.quiet {
                // curl counts the retries left before this one.
                let s = if left == 1 { "retry" } else { "retries" };
                eprintln!(
                    "zcopy: warning: {}; will retry in {} seconds, {left} {s} left",
                    fault.failed,
                    wait.as_secs_f64(),
                );
            }
            left -= 1;
            std::thread::sleep(wait);
            if self.config.retry_delay.is_none() {
                delay = (delay * 2).min(RETRY_MOST);
            }
            // What arrived is kept with its validator: the next attempt resumes it.
            resume = true;
            *idle = None;
        }
    }

    fn get(&self, download: &Download, idle: &mut Idle, resume: bool) -> Result<Got, Fault> {
        let (text, output) = (&download.url, download.output.as_deref());
        let started = Instant::now();
        let usage = Rusage::process();
        let mut url = Url::parse(text)?;
        let first_origin = url.origin();
        let target = self.target_for(&url, output)?;
        let part = part_path(&target);
        // Standard output, a device or a FIFO (`-o -`, `-o /dev/null`) is written in
        // place: it cannot be renamed over, resumed or read back.
        let in_place =
            target == Path::new("-") || std::fs::metadata(&target).is_ok_and(|m| !m.is_file());
        let (resume_from, validator) = if in_place || !resume {
            (0, None)
        } else {
            self.partial(&part)
        };
        let place = Place {
            target,
            part,
            have: resume_from,
        };
        let extra = match (&validator, &self.config.range) {
            (_, Some(range)) => format!("Range: bytes={range}\r\n"),
            _ if in_place || self.config.head_only => String::new(),
            (Some(v), _) if resume_from > 0 => {
                format!("Range: bytes={resume_from}-\r\nIf-Range: {v}\r\n")
            }
            _ if self.config.segments > 1 => "Range: bytes=0-\r\n".to_string(),
            _ => String::new(),
        };
        let without_credentials: Vec<(String, String)> = self
            .config
            .headers
            .iter()
            .filter(|(name, _)| {
                !name.eq_ignore_ascii_case("authorization") && !name.eq_ignore_ascii_case("cookie")
            })
            .cloned()
            .collect();
        let mut redirects = 0;
        loop {
            // As curl: credentials go to the first origin only, not where it redirects.
            let asking = Asking {
                headers: if url.origin() == first_origin {
                    &self.config.headers
                } else {
                    &without_credentials
                },
                extra: extra.clone(),
            };
            let (stream, mut head) = self.exchange(idle, &url, &asking)?;
            if self.config.head_only {
                head.framing = Framing::Length(0);
                self.print_head(&head, output, redirects == 0)?;
            }
            let location = head.header("location").map(str::to_string);
            if let (301 | 302 | 303 | 307 | 308, Some(location)) = (head.status, location) {
                if redirects == MAX_REDIRECTS {
                    return Err(fail(
                        exit::REDIRECTS,
                        format!("{text}: more than {MAX_REDIRECTS} redirects (last to {location})"),
                    )
                    .into());
                }
                redirects += 1;
                // A short redirect body is read, so that the connection serves the next request.
                if let (Framing::Length(n @ ..=REDIRECT_BODY_MAX), true) =
                    (head.framing, head.keep_alive)
                {
                    if client::discard(&stream, n, &url).is_ok() {
                        *idle = Some((url.origin(), stream));
                    }
                }
                let next = url.join(&location)?;
                self.say(&format!(
                    "{} {}: redirected to {next}",
                    head.status, head.reason
                ));
                url = next;
                continue;
            }
            if head.status >= 400 && !(head.status == 416 && resume_from > 0) {
                return Err(Fault {
                    failed: fail(
                        exit::HTTP_ERROR,
                        format!("{url}: {} {}", head.status, head.reason),
                    ),
                    status: head.status,
                    transient: TRANSIENT_STATUS.contains(&head.status),
                    retry_after: retry_after(&head),
                });
            }
            if self.config.head_only {
                if head.keep_alive {
                    *idle = Some((url.origin(), stream));
                }
                return Ok(Got::Head {
                    status: head.status,
                    url,
                });
            }
            let mut done = if head.status == 416 {
                self.already_complete(&head, &url, &place)?
            } else if !(200..300).contains(&head.status) {
                return Err(fail(
                    exit::WEIRD_REPLY,
                    format!("{url}: unexpected {} {}", head.status, head.reason),
                )
                .into());
            } else if in_place {
                // Bytes written to a pipe or device cannot be taken back: no retry.
                self.write_in_place(stream, &head, &url, &place.target, idle)
                    .map_err(|failed| Fault {
                        failed,
                        status: 0,
                        transient: false,
                        retry_after: None,
                    })?
            } else {
                self.save(stream, &head, &url, &place, &asking, idle)?
            };
            done.seconds = started.elapsed().as_secs_f64();
            done.usage = Rusage::process().since(&usage);
            return Ok(Got::Saved(Box::new(done)));
        }
    }

    /// `-I`: the head as the server sent it (curl's output), on stdout or, as curl,
    /// into `-o FILE` (made anew by the first head, the redirects' after it).
    fn print_head(&self, head: &Head, output: Option<&Path>, first: bool) -> Result<(), Failed> {
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
                .map_err(|e| fail(exit::WRITE, format!("cannot write {}: {e}", path.display()))),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| fail(exit::WRITE, format!("cannot write to standard output: {e}")))
            }
        }
    }

    /// A connection to `url`'s host, or to its proxy.
    fn connect(&self, url: &Url) -> Result<TcpStream, Failed> {
        let proxy = self.proxies.for_url(url);
        if let Some(proxy) = proxy {
            self.say(&format!("through the proxy {}", proxy.url));
        }
        let config = self.config;
        client::connect(
            url,
            proxy,
            config.connect_timeout,
            config.timeout,
            &self.tls,
        )
    }

    /// Sends the request for `url` on `stream`.
    fn send(&self, stream: &TcpStream, url: &Url, asking: &Asking<'_>) -> Result<(), Failed> {
        let request = Request {
            method: if self.config.head_only { "HEAD" } else { "GET" },
            headers: asking.headers,
            // A proxy takes http:// requests whole; https:// goes through a tunnel.
            proxy: self.proxies.for_url(url).filter(|_| !url.tls),
        };
        client::send(stream, url, &request, &asking.extra)
    }

    /// Where `url` is saved: its `-o FILE`, or its last path segment in `-P DIR` or here.
    fn target_for(&self, url: &Url, output: Option<&Path>) -> Result<PathBuf, Failed> {
        let path = match output {
            Some(path) => path.to_path_buf(),
            None => {
                let name = url.file_name().unwrap_or_else(|| "index.html".to_string());
                let dir = self.config.directory.clone().unwrap_or_default();
                dir.join(name)
            }
        };
        if path.is_dir() {
            return Err(fail(
                exit::WRITE,
                format!(
                    "{}: is a directory (give a file name with -o)",
                    path.display()
                ),
            ));
        }
        let parent = zcopy::place::parent_dir(&path);
        if !parent.is_dir() && self.config.create_dirs {
            // curl's mode for the directories it makes.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o750,
            )
            .create(parent)
            .map_err(|e| {
                let e = exit::without_os_error(&e.to_string());
                fail(
                    exit::WRITE,
                    format!("cannot create directory {}: {e}", parent.display()),
                )
            })?;
        }
        if !parent.is_dir() {
            return Err(fail(
                exit::WRITE,
                format!(
                    "cannot write {}: directory {} does not exist",
                    path.display(),
                    parent.display()
                ),
            ));
        }
        Ok(path)
    }

    /// Sends the request on the idle connection if it goes to the same host (once
    /// more on a new one if the server had closed it), else on a new connection.
    fn exchange(
        &self,
        idle: &mut Idle,
        url: &Url,
        asking: &Asking<'_>,
    ) -> Result<(TcpStream, Head), Failed> {
        let method = if self.config.head_only { "HEAD" } else { "GET" };
        self.say(&format!("{method} {url}"));
        if let Some((key, stream)) = idle.take() {
            if key == url.origin() && self.send(&stream, url, asking).is_ok() {
                if let Ok(Some(head)) = client::read_head(&stream, url) {
                    self.say(&format!(
                        "{} {} (kept-alive connection)",
                        head.status, head.reason
                    ));
                    return Ok((stream, head));
                }
            }
        }
        let stream = self.connect(url)?;
        self.send(&stream, url, asking)?;
        match client::read_head(&stream, url)? {
            Some(head) => {
                self.say(&format!("{} {}", head.status, head.reason));
                Ok((stream, head))
            }
            None => Err(fail(
                exit::RECEIVE,
                format!("{url}: the server closed the connection without an answer"),
            )),
        }
    }

    fn print(&self, done: &Done) -> Result<()> {
        let summary = Summary {
            report: &done.report,
            seconds: done.seconds,
            usage: done.usage,
        };
        if self.config.json {
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
        if self.config.quiet {
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
        let Some(format) = &self.config.write_out else {
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
    fn error(&self, failed: &Failed) {
        if !self.config.no_errors {
            eprintln!("zcopy: {failed}");
        }
    }

    fn say(&self, line: &str) {
        if self.config.verbose {
            eprintln!("* {line}");
        }
    }

    fn note(&self, line: &str) {
        if !self.config.quiet {
            eprintln!("zcopy: note: {line}");
        }
    }
}

/// `Retry-After` in seconds or as an HTTP-date, at most curl's longest backoff
/// (a server's "come back tomorrow" is not worth a sleeping process).
fn retry_after(head: &Head) -> Option<Duration> {
    let value = head.header("retry-after")?;
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(wait.min(RETRY_MOST))
}

/// A mutex's guard, also after a panic elsewhere (the data is plain).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> Head {
        Head {
            version: 1,
            status: 503,
            reason: "Service Unavailable".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            framing: Framing::Length(0),
            keep_alive: true,
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let wait = |value: &str| retry_after(&head(&[("Retry-After", value)]));
        assert_eq!(wait("7"), Some(Duration::from_secs(7)));
        assert_eq!(wait("86400"), Some(RETRY_MOST));
        // A date in the past: at once.
        assert_eq!(wait("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        assert!(wait(&soon)
            .is_some_and(|d| d > Duration::from_secs(60) && d <= Duration::from_secs(120)));
        assert_eq!(wait("soon"), None);
        assert_eq!(retry_after(&head(&[])), None);
    }
}
