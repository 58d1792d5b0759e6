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
mod segments;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Map, Value};
use zcopy::{Engine, Options, Report, Rusage};

pub use args::Args;
use args::Config;
use segments::MIN_SEGMENT;

use crate::exit;
use crate::http::client::{self, fail, Failed, Framing, Head, Receiving, Request, Url};
use crate::http::proxy::Proxies;
use crate::http::tls_client;
use crate::summary::Summary;
use zcopy_http::digest;

/// The exit status of a `get` whose failures were reported already (curl's codes).
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Exit(pub u8);

/// Redirects followed at most, as curl and wget do by default.
const MAX_REDIRECTS: usize = 10;
/// The longest redirect body read to keep its connection.
const REDIRECT_BODY_MAX: u64 = 64 << 10;
/// Where a partial file keeps the server's validator for `If-Range`.
const VALIDATOR_XATTR: &str = "user.zcopy.validator";
/// curl's retry backoff without `--retry-delay`: 1 s, doubling, at most 10 min.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MOST: Duration = Duration::from_secs(600);
/// Statuses curl's `--retry` takes for transient.
const TRANSIENT_STATUS: [u16; 6] = [408, 429, 500, 502, 503, 504];

pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    let proxies = match Proxies::from_env() {
        Ok(proxies) => proxies,
        Err(failed) => {
            if !config.no_errors {
                eprintln!("zcopy: {failed}");
            }
            return Err(Exit(failed.code).into());
        }
    };
    let at_once = config.parallel.min(config.urls.len());
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
        while let Some(text) = config.urls.get(next.fetch_add(1, Ordering::Relaxed)) {
            if let Some(code) = job.fetch(text, &mut idle)? {
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

/// A failed attempt, and whether `--retry` may try again.
struct Fault {
    failed: Failed,
    transient: bool,
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
        Fault { failed, transient }
    }
}

/// What a download asks for beyond the defaults: the user's header lines (without
/// credentials once a redirect leaves the first origin) and the `Range` lines.
struct Asking<'a> {
    headers: &'a [(String, String)],
    extra: String,
}

impl Job<'_> {
    /// `text` with its retries; the code of its failure, which is reported already.
    fn fetch(&self, text: &str, idle: &mut Idle) -> Result<Option<u8>> {
        let mut resume = self.config.resume;
        let mut delay = self.config.retry_delay.unwrap_or(RETRY_FIRST);
        for left in (0..=self.config.retries).rev() {
            let fault = match self.get(text, idle, resume) {
                Ok(Some(done)) => return self.print(&done).map(|()| None),
                Ok(None) => return Ok(None),
                Err(fault) => fault,
            };
            if !fault.transient || left == 0 {
                self.error(&fault.failed);
                return Ok(Some(fault.failed.code));
            }
            if !self.config.quiet {
                let s = if left == 1 { "retry" } else { "retries" };
                eprintln!(
                    "zcopy: warning: {}; will retry in {} seconds, {left} {s} left",
                    fault.failed,
                    delay.as_secs_f64()
                );
            }
            std::thread::sleep(delay);
            if self.config.retry_delay.is_none() {
                delay = (delay * 2).min(RETRY_MOST);
            }
            // What arrived is kept with its validator: the next attempt resumes it.
            resume = true;
            *idle = None;
        }
        unreachable!("the last attempt returns")
    }

    fn get(&self, text: &str, idle: &mut Idle, resume: bool) -> Result<Option<Done>, Fault> {
        let started = Instant::now();
        let usage = Rusage::process();
        let mut url = Url::parse(text)?;
        let first_origin = url.origin();
        let target = self.target_for(&url)?;
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
                self.print_head(&head, redirects == 0)?;
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
                    transient: TRANSIENT_STATUS.contains(&head.status),
                });
            }
            if self.config.head_only {
                if head.keep_alive {
                    *idle = Some((url.origin(), stream));
                }
                return Ok(None);
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
                        transient: false,
                    })?
            } else {
                self.save(stream, &head, &url, &place, &asking, idle)?
            };
            done.seconds = started.elapsed().as_secs_f64();
            done.usage = Rusage::process().since(&usage);
            return Ok(Some(done));
        }
    }

    /// `-I`: the head as the server sent it (curl's output), on stdout or, as curl,
    /// into `-o FILE` (made anew by the first head, the redirects' after it).
    fn print_head(&self, head: &Head, first: bool) -> Result<(), Failed> {
        let mut text = format!(
            "HTTP/1.{} {} {}\r\n",
            head.version, head.status, head.reason
        );
        for (name, value) in &head.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        match self
            .config
            .output
            .as_deref()
            .filter(|p| *p != Path::new("-"))
        {
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

    fn target_for(&self, url: &Url) -> Result<PathBuf, Failed> {
        let path = match &self.config.output {
            Some(path) => path.clone(),
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
        let parent = super::parent_dir(&path);
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

    /// With `-C`: the length of the partial file and its validator, if it has one
    /// (without one, resuming could splice two versions together).
    fn partial(&self, part: &Path) -> (u64, Option<String>) {
        let Ok(file) = File::open(part) else {
            return (0, None);
        };
        let mut value = vec![0u8; 1024];
        let validator = rustix::fs::fgetxattr(&file, VALIDATOR_XATTR, &mut value[..])
            .ok()
            .and_then(|n| String::from_utf8(value[..n].to_vec()).ok());
        match (file.metadata(), validator) {
            (Ok(meta), Some(v)) if meta.len() > 0 => {
                self.say(&format!(
                    "resuming {} at byte {}",
                    part.display(),
                    meta.len()
                ));
                (meta.len(), Some(v))
            }
            _ => (0, None),
        }
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

    /// A 416 to a resumed request: the partial file may hold the whole file already.
    fn already_complete(&self, head: &Head, url: &Url, place: &Place) -> Result<Done, Failed> {
        let Place { target, part, have } = place;
        let have = *have;
        match head.content_range() {
            Some((None, total)) if total == have => {
                finish(part, target, url)?;
                Ok(Done {
                    url: url.clone(),
                    path: target.to_path_buf(),
                    status: 416,
                    report: empty_report(),
                    seconds: 0.0,
                    usage: Rusage::default(),
                    resumed_from: have,
                    connections: 1,
                    copied: false,
                    verified: None,
                })
            }
            _ => Err(fail(
                exit::RANGE,
                format!(
                    "{url}: 416 Range Not Satisfiable for the {have} bytes of {}",
                    part.display()
                ),
            )),
        }
    }

    /// The body into standard output or a device, as it comes.
    fn write_in_place(
        &self,
        stream: TcpStream,
        head: &Head,
        url: &Url,
        target: &Path,
        idle: &mut Idle,
    ) -> Result<Done, Failed> {
        let sink = if target == Path::new("-") {
            rustix::io::dup(std::io::stdout())
                .map(File::from)
                .map_err(std::io::Error::from)
        } else {
            OpenOptions::new().write(true).open(target)
        }
        .map_err(|e| {
            fail(
                exit::WRITE,
                format!("cannot write {}: {e}", target.display()),
            )
        })?;
        let how = Receiving {
            progress: false,
            ..self.receiving
        };
        let body = client::receive(&stream, &sink, head.framing, how, url)?;
        if head.keep_alive && matches!(head.framing, Framing::Length(_)) {
            *idle = Some((url.origin(), stream));
        }
        Ok(Done {
            url: url.clone(),
            path: target.to_path_buf(),
            status: head.status,
            report: body.report,
            seconds: 0.0,
            usage: Rusage::default(),
            resumed_from: 0,
            connections: 1,
            copied: body.copied,
            verified: None,
        })
    }

    fn save(
        &self,
        stream: TcpStream,
        head: &Head,
        url: &Url,
        place: &Place,
        asking: &Asking<'_>,
        idle: &mut Idle,
    ) -> Result<Done, Failed> {
        let Place {
            target,
            part,
            have: resume_from,
        } = place;
        let resume_from = *resume_from;
        let range = head.content_range();
        let ranged = self.config.range.is_some();
        let (offset, total) = match (head.status, range) {
            // `-r`: the bytes of the range are the file, from its start, as curl writes them.
            _ if ranged => {
                let total = match head.framing {
                    Framing::Length(n) => Some(n),
                    _ => None,
                };
                (0, total)
            }
            (206, Some((Some((start, end)), total))) => {
                if start != resume_from || end + 1 > total {
                    return Err(fail(
                        exit::RANGE,
                        format!(
                            "{url}: asked for bytes from {resume_from}, got {start}-{end}/{total}"
                        ),
                    ));
                }
                (start, Some(total))
            }
            (206, _) => {
                return Err(fail(
                    exit::WEIRD_REPLY,
                    format!("{url}: 206 without a usable Content-Range"),
                ))
            }
            (_, _) => {
                if resume_from > 0 {
                    self.note(&format!("{url}: the file changed on the server (or it ignores ranges): starting over"));
                }
                let total = match head.framing {
                    Framing::Length(n) => Some(n),
                    _ => None,
                };
                (0, total)
            }
        };
        // A range of the file cannot be resumed as the file.
        let validator = validator_of(head).filter(|_| !ranged);
        let write_failure =
            |e: std::io::Error| fail(exit::WRITE, format!("cannot write {}: {e}", part.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(part)
            .map_err(write_failure)?;
        file.set_len(offset).map_err(write_failure)?;
        file.seek(SeekFrom::Start(offset)).map_err(write_failure)?;
        if let Some(total) = total {
            // Blocks reserved up front: ENOSPC now rather than mid-body, and extents
            // allocated once (KEEP_SIZE: the size still counts the bytes received).
            let _ = rustix::fs::fallocate(
                &file,
                rustix::fs::FallocateFlags::KEEP_SIZE,
                offset,
                total - offset,
            );
        }
        // Only a body of known length from a file with a validator can be resumed.
        let resumable = validator.is_some() && total.is_some();
        match (&validator, resumable) {
            (Some(v), true) => {
                // ENOTSUP on file systems without user xattrs: the file is then not resumable.
                let _ = rustix::fs::fsetxattr(
                    &file,
                    VALIDATOR_XATTR,
                    v.as_bytes(),
                    rustix::fs::XattrFlags::empty(),
                );
            }
            _ => {
                let _ = rustix::fs::fremovexattr(&file, VALIDATOR_XATTR);
            }
        }
        let segments = self.config.segments;
        let whole_range = range == total.map(|t| (Some((0, t - 1)), t));
        let result = match (head.status, total, &validator) {
            (206, Some(total), Some(v))
                if segments > 1 && whole_range && total >= u64::from(segments) * MIN_SEGMENT =>
            {
                self.segments(stream, url, part, total, v, asking.headers)
                    .map(|body| (body, segments))
            }
            _ => {
                let body = client::receive(&stream, &file, head.framing, self.receiving, url);
                if body.is_ok() && head.keep_alive && matches!(head.framing, Framing::Length(_)) {
                    *idle = Some((url.origin(), stream));
                }
                body.map(|body| (body, 1))
            }
        };
        let (body, connections) = match result {
            Ok(done) => done,
            Err(failed) => {
                // A segmented download has holes: only a single stream resumes.
                if !resumable || segments > 1 {
                    let _ = std::fs::remove_file(part);
                } else {
                    self.note(&format!("partial file kept for -C: {}", part.display()));
                }
                return Err(failed);
            }
        };
        // Repr-Digest is of the whole file, not of the range `-r` asked for.
        let checked = if ranged && head.status == 206 {
            Ok(None)
        } else {
            verify(head, &file, url)
        };
        let verified = match checked {
            Ok(verified) => verified,
            Err(failed) => {
                let _ = std::fs::remove_file(part);
                return Err(failed);
            }
        };
        if self.config.remote_time {
            self.take_remote_time(head, &file, part);
        }
        drop(file);
        finish(part, target, url)?;
        Ok(Done {
            url: url.clone(),
            path: target.to_path_buf(),
            status: head.status,
            report: body.report,
            seconds: 0.0,
            usage: Rusage::default(),
            resumed_from: offset,
            connections,
            copied: body.copied,
            verified,
        })
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

    /// The file's mtime from `Last-Modified` (wget's default, curl's `-R`), set on the
    /// part file so that the real name appears with it.
    fn take_remote_time(&self, head: &Head, file: &File, part: &Path) {
        let Some(time) = head
            .header("last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return;
        };
        if let Err(e) = file.set_modified(time) {
            let e = exit::without_os_error(&e.to_string());
            self.note(&format!("cannot set the time of {}: {e}", part.display()));
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

/// Where a download goes: its target, its partial file, and how much of the
/// partial file is kept for a resume.
struct Place {
    target: PathBuf,
    part: PathBuf,
    have: u64,
}

/// `.NAME.zcopy-part` beside `target`: a fixed name, so that `-C` finds it.
fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "index.html".into(), |n| n.to_string_lossy());
    super::parent_dir(target).join(format!(".{name}.zcopy-part"))
}

/// What `If-Range` may carry: a strong ETag, else Last-Modified.
fn validator_of(head: &Head) -> Option<String> {
    match head.header("etag") {
        Some(tag) if !tag.starts_with("W/") => Some(tag.to_string()),
        _ => head.header("last-modified").map(str::to_string),
    }
}

/// Checks the file against `Repr-Digest` (the whole representation, so also after
/// a resumed or parallel download), or `Content-Digest` of a whole (200) body.
fn verify(head: &Head, file: &File, url: &Url) -> Result<Option<&'static str>, Failed> {
    let digests = match (head.header("repr-digest"), head.header("content-digest")) {
        (Some(repr), _) => digest::parse(repr),
        (None, Some(content)) if head.status == 200 => digest::parse(content),
        _ => return Ok(None),
    };
    let Some((algorithm, sent)) = digests.into_iter().next() else {
        return Ok(None);
    };
    let len = file
        .metadata()
        .map_err(|e| {
            fail(
                exit::WRITE,
                format!("{url}: cannot read back the file: {e}"),
            )
        })?
        .len();
    let got = digest::of_file(file, len, algorithm).map_err(|e| {
        fail(
            exit::WRITE,
            format!("{url}: cannot read back the file: {e}"),
        )
    })?;
    let got = digest::header_value(algorithm, &got);
    let sent = format!("{}=:{sent}:", algorithm.name());
    if got != sent {
        return Err(fail(
            exit::FAILURE,
            format!("{url}: digest mismatch: the server sent {sent}, the download has {got}; nothing saved"),
        ));
    }
    Ok(Some(algorithm.name()))
}

/// Renames the verified partial file over its target, without the validator.
fn finish(part: &Path, target: &Path, url: &Url) -> Result<(), Failed> {
    if let Ok(file) = File::open(part) {
        let _ = rustix::fs::fremovexattr(&file, VALIDATOR_XATTR);
    }
    std::fs::rename(part, target).map_err(|e| {
        fail(
            exit::WRITE,
            format!("{url}: cannot rename into {}: {e}", target.display()),
        )
    })
}

/// A mutex's guard, also after a panic elsewhere (the data is plain).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn empty_report() -> Report {
    Report {
        engine: Engine::Splice,
        skipped: Vec::new(),
        bytes: 0,
        elapsed: Duration::ZERO,
        syscalls: zcopy::Syscalls::default(),
        zerocopy: zcopy::ZeroCopy::default(),
        rusage: Rusage::default(),
    }
}
