//! `zcopy get URL...`: an HTTP/1.1 download client whose bodies go socket → pipe →
//! file with splice.
//!
//! Every download is written to `.NAME.zcopy-part` beside its target and renamed
//! when it is complete and verified: its length, and its `Repr-Digest` (or, for a
//! whole body, `Content-Digest`) when the server sends one. An interrupted download
//! keeps its partial file with the server's validator (ETag or Last-Modified) in an
//! extended attribute, so that `-C` resumes it with `Range` and `If-Range`; a server
//! whose file changed answers with the whole file, and the download starts over.
//! Failures exit with curl's codes (see the README).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Map, Value};
use zcopy::{Engine, EngineChoice, Options, Report, Rusage};

use crate::exit;
use crate::http::client::{self, fail, Failed, Framing, Head, Receiving, Url};
use crate::http::tls_client;
use crate::summary::Summary;
use zcopy_http::digest;

/// Download files over HTTP/1.1 (http:// and https://), spliced from the socket into the file
#[derive(clap::Args)]
pub struct Args {
    /// What to download
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Save to FILE (one URL only)
    #[arg(short = 'o', long = "output", value_name = "FILE", conflicts_with_all = ["remote_name", "directory"])]
    output: Option<PathBuf>,
    /// Save under the URL's last path segment in the current directory (the default)
    #[arg(short = 'O', long = "remote-name")]
    remote_name: bool,
    /// Save under the URL's last path segment in DIR
    #[arg(short = 'P', long = "directory-prefix", value_name = "DIR")]
    directory: Option<PathBuf>,
    /// Resume from the partial file an interrupted download left (Range + If-Range)
    #[arg(short = 'C', long = "continue")]
    resume: bool,
    /// Fetch a large file as N ranges over N connections, each spliced at its offset
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Seconds to wait for a connection
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = seconds)]
    connect_timeout: f64,
    /// Seconds the server may stay silent (no byte of head or body) before giving up
    #[arg(long, value_name = "S", default_value_t = 60.0, value_parser = seconds)]
    timeout: f64,
    /// Print one JSON object per download on stdout
    #[arg(long)]
    json: bool,
    /// CA certificates (PEM) to verify https:// servers with, instead of the system's
    #[arg(long, value_name = "F")]
    cacert: Option<PathBuf>,
    /// Do not verify https:// certificates (the session is still encrypted)
    #[arg(short = 'k', long)]
    insecure: bool,
    /// At most RATE bytes per second (a SIZE: 500k, 10M), shared by --parallel ranges
    #[arg(long, value_name = "RATE", value_parser = crate::size::parse)]
    limit_rate: Option<u64>,
    /// Engine for bodies with a length: auto (splice), splice, read-write
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Print nothing but errors
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the requests, the responses' status lines and redirects on stderr
    #[arg(short = 'v', long)]
    verbose: bool,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(s),
        _ => Err(format!("'{text}' is not a positive number of seconds")),
    }
}

/// The exit status of a `get` whose failures were reported already (curl's codes).
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Exit(pub u8);

/// Redirects followed at most, as curl and wget do by default.
const MAX_REDIRECTS: usize = 10;
/// The longest redirect body read to keep its connection.
const REDIRECT_BODY_MAX: u64 = 64 << 10;
/// The smallest range `--parallel` fetches on a connection of its own.
const MIN_SEGMENT: u64 = 1 << 20;
/// Where a partial file keeps the server's validator for `If-Range`.
const VALIDATOR_XATTR: &str = "user.zcopy.validator";

pub fn run(args: Args) -> Result<()> {
    if args.output.is_some() && args.urls.len() > 1 {
        return Err(super::Usage(
            "get: -o names one file; use -O or -P DIR for several URLs".into(),
        )
        .into());
    }
    if args.json && args.output.as_deref() == Some(Path::new("-")) {
        let why = "get: --json and -o - would both write to stdout".to_string();
        return Err(super::Usage(why).into());
    }
    let engine = match args.engine {
        EngineChoice::Only(e @ (Engine::Mmap | Engine::Sendfile | Engine::CopyFileRange)) => {
            let why = format!("get: engine {e} needs a file as source; use splice or read-write");
            return Err(super::Usage(why).into());
        }
        other => other,
    };
    let job = Job {
        args: &args,
        receiving: Receiving {
            options: Options {
                engine,
                ..Options::default()
            },
            rate: args.limit_rate,
            progress: !args.json && !args.quiet,
        },
        connect_timeout: Duration::from_secs_f64(args.connect_timeout),
        timeout: Duration::from_secs_f64(args.timeout),
        tls: tls_client::Settings::new(args.cacert.clone(), args.insecure),
    };
    let mut idle = None;
    let mut last_failure = None;
    for text in &args.urls {
        match job.get(text, &mut idle) {
            Ok(done) => job.print(&done)?,
            Err(failed) => {
                eprintln!("zcopy: {failed}");
                last_failure = Some(failed.code);
            }
        }
    }
    match last_failure {
        // As curl: the code of the last failure.
        Some(code) => Err(Exit(code).into()),
        None => Ok(()),
    }
}

/// A connection kept alive after a response, for the next URL to the same host.
type Idle = Option<(String, TcpStream)>;

struct Job<'a> {
    args: &'a Args,
    receiving: Receiving,
    connect_timeout: Duration,
    timeout: Duration,
    tls: tls_client::Settings,
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

impl Job<'_> {
    fn get(&self, text: &str, idle: &mut Idle) -> Result<Done, Failed> {
        let started = Instant::now();
        let usage = Rusage::process();
        let mut url = Url::parse(text)?;
        let target = self.target_for(&url)?;
        let part = part_path(&target);
        // Standard output, a device or a FIFO (`-o -`, `-o /dev/null`) is written in
        // place: it cannot be renamed over, resumed or read back.
        let in_place =
            target == Path::new("-") || std::fs::metadata(&target).is_ok_and(|m| !m.is_file());
        let (resume_from, validator) = if in_place {
            (0, None)
        } else {
            self.partial(&part)
        };
        let place = Place {
            target,
            part,
            have: resume_from,
        };
        let extra = match &validator {
            _ if in_place => String::new(),
            Some(v) if resume_from > 0 => {
                format!("Range: bytes={resume_from}-\r\nIf-Range: {v}\r\n")
            }
            _ if self.args.parallel > 1 => "Range: bytes=0-\r\n".to_string(),
            _ => String::new(),
        };
        let mut redirects = 0;
        loop {
            let (stream, head) = self.exchange(idle, &url, &extra)?;
            let location = head.header("location").map(str::to_string);
            if let (301 | 302 | 303 | 307 | 308, Some(location)) = (head.status, location) {
                if redirects == MAX_REDIRECTS {
                    return Err(fail(
                        exit::REDIRECTS,
                        format!("{text}: more than {MAX_REDIRECTS} redirects (last to {location})"),
                    ));
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
            let mut done = if head.status == 416 && resume_from > 0 {
                self.already_complete(&head, &url, &place)?
            } else if head.status >= 400 {
                return Err(fail(
                    exit::HTTP_ERROR,
                    format!("{url}: {} {}", head.status, head.reason),
                ));
            } else if !(200..300).contains(&head.status) {
                return Err(fail(
                    exit::WEIRD_REPLY,
                    format!("{url}: unexpected {} {}", head.status, head.reason),
                ));
            } else if in_place {
                self.write_in_place(stream, &head, &url, &place.target, idle)?
            } else {
                self.save(stream, &head, &url, &place, idle)?
            };
            done.seconds = started.elapsed().as_secs_f64();
            done.usage = Rusage::process().since(&usage);
            return Ok(done);
        }
    }

    /// Where `url` is saved: `-o FILE`, or its last path segment in `-P DIR` or here.
    fn target_for(&self, url: &Url) -> Result<PathBuf, Failed> {
        let path = match &self.args.output {
            Some(path) => path.clone(),
            None => {
                let name = url.file_name().unwrap_or_else(|| "index.html".to_string());
                let dir = self.args.directory.clone().unwrap_or_default();
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
        if !self.args.resume {
            return (0, None);
        }
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
        extra: &str,
    ) -> Result<(TcpStream, Head), Failed> {
        self.say(&format!("GET {url}"));
        if let Some((key, stream)) = idle.take() {
            if key == url.origin() && client::send_get(&stream, url, extra).is_ok() {
                if let Ok(Some(head)) = client::read_head(&stream, url) {
                    self.say(&format!(
                        "{} {} (kept-alive connection)",
                        head.status, head.reason
                    ));
                    return Ok((stream, head));
                }
            }
        }
        let stream = client::connect(url, self.connect_timeout, self.timeout, &self.tls)?;
        client::send_get(&stream, url, extra)?;
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
        idle: &mut Idle,
    ) -> Result<Done, Failed> {
        let Place {
            target,
            part,
            have: resume_from,
        } = place;
        let resume_from = *resume_from;
        let range = head.content_range();
        let (offset, total) = match (head.status, range) {
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
        let validator = validator_of(head);
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
        let parallel = self.args.parallel;
        let whole_range = range == total.map(|t| (Some((0, t - 1)), t));
        let result = match (head.status, total, &validator) {
            (206, Some(total), Some(v))
                if parallel > 1 && whole_range && total >= u64::from(parallel) * MIN_SEGMENT =>
            {
                self.parallel(stream, url, part, total, v)
                    .map(|body| (body, parallel))
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
                // A parallel download has holes: only a single stream resumes.
                if !resumable || parallel > 1 {
                    let _ = std::fs::remove_file(part);
                } else {
                    self.note(&format!("partial file kept for -C: {}", part.display()));
                }
                return Err(failed);
            }
        };
        let verified = match verify(head, &file, url) {
            Ok(verified) => verified,
            Err(failed) => {
                let _ = std::fs::remove_file(part);
                return Err(failed);
            }
        };
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

    /// The rest of a `bytes=0-` response as `--parallel` ranges: the first on the
    /// connection that asked, the others on connections of their own, each spliced
    /// into the file at its offset.
    fn parallel(
        &self,
        first: TcpStream,
        url: &Url,
        part: &Path,
        total: u64,
        validator: &str,
    ) -> Result<client::Body, Failed> {
        let n = u64::from(self.args.parallel);
        let size = total.div_ceil(n);
        let ranges: Vec<(u64, u64)> = (0..n)
            .map(|i| (i * size, ((i + 1) * size).min(total)))
            .filter(|(start, end)| start < end)
            .collect();
        self.say(&format!(
            "{} ranges of {size} bytes over {} connections",
            ranges.len(),
            ranges.len()
        ));
        // The first failure, and every range's connection: a failed range shuts the
        // others down rather than let them fetch what will be thrown away.
        let failure: Mutex<Option<Failed>> = Mutex::new(None);
        let open: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
        let bodies: Vec<Option<client::Body>> = std::thread::scope(|s| {
            let handles: Vec<_> = ranges
                .iter()
                .enumerate()
                .map(|(i, &(start, end))| {
                    let first = (i == 0).then(|| first.try_clone());
                    let range = Range {
                        url,
                        part,
                        start,
                        end,
                        total,
                        validator,
                    };
                    let (failure, open) = (&failure, &open);
                    s.spawn(
                        move || match self.fetch_range(&range, first, open, failure) {
                            Ok(body) => Some(body),
                            Err(failed) => {
                                let mut first_failure = lock(failure);
                                if first_failure.is_none() {
                                    *first_failure = Some(failed);
                                    for stream in lock(open).iter() {
                                        let _ = stream.shutdown(std::net::Shutdown::Both);
                                    }
                                }
                                None
                            }
                        },
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a range thread does not panic"))
                .collect()
        });
        if let Some(failed) = lock(&failure).take() {
            return Err(failed);
        }
        let mut combined: Option<client::Body> = None;
        for body in bodies.into_iter().flatten() {
            match &mut combined {
                None => combined = Some(body),
                Some(c) => {
                    c.report.bytes += body.report.bytes;
                    c.report.syscalls.add(&body.report.syscalls);
                    c.report.elapsed = c.report.elapsed.max(body.report.elapsed);
                }
            }
        }
        Ok(combined.expect("at least one range"))
    }

    /// One `--parallel` range: on the first connection (which asked for `bytes=0-`),
    /// or on a new one asking for exactly this range, spliced at its offset.
    fn fetch_range(
        &self,
        range: &Range<'_>,
        first: Option<std::io::Result<TcpStream>>,
        open: &Mutex<Vec<TcpStream>>,
        failure: &Mutex<Option<Failed>>,
    ) -> Result<client::Body, Failed> {
        let Range {
            url,
            part,
            start,
            end,
            total,
            validator,
        } = *range;
        let stream = match first {
            Some(stream) => stream.map_err(|e| fail(exit::FAILURE, format!("{url}: {e}")))?,
            None => {
                let stream = client::connect(url, self.connect_timeout, self.timeout, &self.tls)?;
                let last = end - 1;
                let extra = format!("Range: bytes={start}-{last}\r\nIf-Range: {validator}\r\n");
                client::send_get(&stream, url, &extra)?;
                let head = client::read_head(&stream, url)?.ok_or_else(|| {
                    let why = format!("{url}: the server closed without an answer");
                    fail(exit::RECEIVE, why)
                })?;
                if head.content_range() != Some((Some((start, last)), total))
                    || head.framing != Framing::Length(end - start)
                {
                    let why = format!(
                        "{url}: {} {} to the range {start}-{last}: the file changed during the download",
                        head.status, head.reason
                    );
                    return Err(fail(exit::RANGE, why));
                }
                stream
            }
        };
        if let Ok(clone) = stream.try_clone() {
            lock(open).push(clone);
        }
        // Registered after another range failed: it was not shut down, so stop here.
        if lock(failure).is_some() {
            return Err(fail(exit::FAILURE, format!("{url}: another range failed")));
        }
        let file = OpenOptions::new()
            .write(true)
            .open(part)
            .and_then(|mut f| f.seek(SeekFrom::Start(start)).map(|_| f))
            .map_err(|e| {
                let why = format!("cannot write {}: {e}", part.display());
                fail(exit::WRITE, why)
            })?;
        let framing = Framing::Length(end - start);
        let how = Receiving {
            progress: false,
            rate: self
                .receiving
                .rate
                .map(|r| r / u64::from(self.args.parallel)),
            ..self.receiving
        };
        client::receive(&stream, &file, framing, how, url)
    }

    fn print(&self, done: &Done) -> Result<()> {
        let summary = Summary {
            report: &done.report,
            seconds: done.seconds,
            usage: done.usage,
        };
        if self.args.json {
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
        if self.args.quiet {
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

    fn say(&self, line: &str) {
        if self.args.verbose {
            eprintln!("* {line}");
        }
    }

    fn note(&self, line: &str) {
        if !self.args.quiet {
            eprintln!("zcopy: note: {line}");
        }
    }
}

/// One range of a `--parallel` download: bytes `start..end` of `total`.
#[derive(Clone, Copy)]
struct Range<'a> {
    url: &'a Url,
    part: &'a Path,
    start: u64,
    end: u64,
    total: u64,
    validator: &'a str,
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
