//! One download: its request (with the user's headers, without credentials once
//! a redirect leaves the first origin), its redirects, its retries with curl's
//! backoff, and where its body goes ([`save`](super::save)).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zcopy::{Options, Rusage};

use super::body::{self, Receiving};
use super::head::{read_head, Framing, Head};
use super::proxy::Proxies;
use super::request::{self, Request};
use super::save::{part_path, Place};
use super::tls::Settings;
use super::{Asking, Config, Download, Error, Events, Idle, Job, Url};

/// Redirects followed at most, as curl and wget do by default.
const MAX_REDIRECTS: usize = 10;
/// The longest redirect body read to keep its connection.
const REDIRECT_BODY_MAX: u64 = 64 << 10;
/// curl's retry backoff without `--retry-delay`: 1 s, doubling, at most 10 min.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MOST: Duration = Duration::from_secs(600);
/// Statuses curl's `--retry` takes for transient.
const TRANSIENT_STATUS: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Downloads with one configuration: the proxies and the TLS settings read once,
/// shared by every download (and thread) of a run.
pub struct Client {
    pub(super) config: Config,
    pub(super) receiving: Receiving,
    tls: Settings,
    proxies: Proxies,
}

/// A finished download.
#[derive(Debug)]
#[non_exhaustive]
pub struct Saved {
    /// The URL after redirects.
    pub url: Url,
    /// Where the body went (`-` for standard output).
    pub path: PathBuf,
    /// The last response's status.
    pub status: u16,
    /// What the engine (or engines, with segments) did.
    pub report: zcopy::Report,
    /// Seconds from the request to the file in place.
    pub seconds: f64,
    /// The process's CPU time and context switches over the download.
    pub usage: Rusage,
    /// Where the body started in the file: the bytes a resume kept.
    pub resumed_from: u64,
    /// Connections the body came over.
    pub connections: u16,
    /// The body was decoded in user space (chunked), so its bytes were copied.
    pub copied: bool,
    /// The digest algorithm the file was checked with, if the server sent one.
    pub verified: Option<&'static str>,
}

/// What a download ended with: a saved file, or with `head_only` a head.
#[derive(Debug)]
pub enum Got {
    /// The body is in its file.
    Saved(Box<Saved>),
    /// `head_only`: the last head was given to [`Events::head`].
    Head {
        /// Its status.
        status: u16,
        /// The URL after redirects.
        url: Url,
    },
}

/// A download that failed, after its retries.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// Why the last attempt failed.
    pub error: Error,
    /// The status of an HTTP error; 0 for others (curl's `-w` says `000`).
    pub status: u16,
}

/// A failed attempt, and whether a retry may try again.
pub(super) struct Fault {
    failed: Error,
    status: u16,
    transient: bool,
    /// The server's `Retry-After`, which curl waits instead of its own delay.
    retry_after: Option<Duration>,
}

impl From<Error> for Fault {
    fn from(failed: Error) -> Fault {
        Fault {
            transient: failed.is_transient(),
            failed,
            status: 0,
            retry_after: None,
        }
    }
}

impl Client {
    /// A client for `config`; fails on a proxy (given or from the environment)
    /// that cannot be used.
    pub fn new(config: Config) -> Result<Client, Error> {
        let proxies = Proxies::new(config.proxy.as_deref(), config.noproxy.as_deref())?;
        Ok(Client {
            receiving: Receiving {
                options: Options::default().engine(config.engine),
                rate: config.limit_rate,
                progress: config.progress,
            },
            tls: Settings::new(config.cacert.clone(), config.insecure),
            proxies,
            config,
        })
    }

    /// `download` with its retries, telling `events` along the way. `idle` is the
    /// connection the last download left alive, and afterwards the one this leaves.
    pub fn download(
        &self,
        download: &Download,
        idle: &mut Idle,
        events: &dyn Events,
    ) -> Result<Got, Failure> {
        let job = Job {
            client: self,
            events,
        };
        let config = &self.config;
        let mut resume = config.resume;
        let mut delay = config.retry_delay.unwrap_or(RETRY_FIRST);
        let mut left = config.retries;
        let first_attempt = Instant::now();
        loop {
            let fault = match job.get(download, idle, resume) {
                Ok(got) => return Ok(got),
                Err(fault) => fault,
            };
            let too_late = config
                .retry_max_time
                .is_some_and(|most| first_attempt.elapsed() >= most);
            if !(fault.transient || config.retry_all_errors) || left == 0 || too_late {
                return Err(Failure {
                    error: fault.failed,
                    status: fault.status,
                });
            }
            let wait = fault.retry_after.unwrap_or(delay);
            events.retrying(&fault.failed, wait, left);
            left -= 1;
            std::thread::sleep(wait);
            if config.retry_delay.is_none() {
                delay = (delay * 2).min(RETRY_MOST);
            }
            // What arrived is kept with its validator: the next attempt resumes it.
            resume = true;
            *idle = None;
        }
    }
}

impl Job<'_> {
    /// One attempt at `download`.
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
        let extra = match (&validator, &self.client.config.range) {
            (_, Some(range)) => format!("Range: bytes={range}\r\n"),
            _ if in_place || self.client.config.head_only => String::new(),
            (Some(v), _) if resume_from > 0 => {
                format!("Range: bytes={resume_from}-\r\nIf-Range: {v}\r\n")
            }
            _ if self.client.config.segments > 1 => "Range: bytes=0-\r\n".to_string(),
            _ => String::new(),
        };
        let without_credentials: Vec<(String, String)> = self
            .client
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
                    &self.client.config.headers
                } else {
                    &without_credentials
                },
                extra: extra.clone(),
            };
            let (stream, mut head) = self.exchange(idle, &url, &asking)?;
            if self.client.config.head_only {
                head.framing = Framing::Length(0);
                self.events.head(&head, output, redirects == 0)?;
            }
            let location = head.header("location").map(str::to_string);
            if let (301 | 302 | 303 | 307 | 308, Some(location)) = (head.status, location) {
                if redirects == MAX_REDIRECTS {
                    return Err(Error::Redirects(format!(
                        "{text}: more than {MAX_REDIRECTS} redirects (last to {location})"
                    ))
                    .into());
                }
                redirects += 1;
                // A short redirect body is read, so that the connection serves the next request.
                if let (Framing::Length(n @ ..=REDIRECT_BODY_MAX), true) =
                    (head.framing, head.keep_alive)
                {
                    if body::discard(&stream, n, &url).is_ok() {
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
                    failed: Error::Http(format!("{url}: {} {}", head.status, head.reason)),
                    status: head.status,
                    transient: TRANSIENT_STATUS.contains(&head.status),
                    retry_after: retry_after(&head),
                });
            }
            if self.client.config.head_only {
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
                return Err(Error::WeirdReply(format!(
                    "{url}: unexpected {} {}",
                    head.status, head.reason
                ))
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

    /// A connection to `url`'s host, or to its proxy.
    pub(super) fn connect(&self, url: &Url) -> Result<TcpStream, Error> {
        let proxy = self.client.proxies.for_url(url);
        if let Some(proxy) = proxy {
            self.say(&format!("through the proxy {}", proxy.url));
        }
        let config = &self.client.config;
        super::connect::connect(
            url,
            proxy,
            config.connect_timeout,
            config.timeout,
            &self.client.tls,
        )
    }

    /// Sends the request for `url` on `stream`.
    pub(super) fn send(
        &self,
        stream: &TcpStream,
        url: &Url,
        asking: &Asking<'_>,
    ) -> Result<(), Error> {
        let request = Request {
            method: if self.client.config.head_only {
                "HEAD"
            } else {
                "GET"
            },
            headers: asking.headers,
            // A proxy takes http:// requests whole; https:// goes through a tunnel.
            proxy: self.client.proxies.for_url(url).filter(|_| !url.tls),
        };
        request::send(stream, url, &request, &asking.extra)
    }

    /// Where `url` is saved: its `-o FILE`, or its last path segment in `-P DIR` or here.
    fn target_for(&self, url: &Url, output: Option<&Path>) -> Result<PathBuf, Error> {
        let path = match output {
            Some(path) => path.to_path_buf(),
            None => {
                let name = url.file_name().unwrap_or_else(|| "index.html".to_string());
                let dir = self.client.config.directory.clone().unwrap_or_default();
                dir.join(name)
            }
        };
        if path.is_dir() {
            return Err(Error::Write(format!(
                "{}: is a directory (give a file name with -o)",
                path.display()
            )));
        }
        let parent = zcopy::place::parent_dir(&path);
        if !parent.is_dir() && self.client.config.create_dirs {
            // curl's mode for the directories it makes.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o750,
            )
            .create(parent)
            .map_err(|e| {
                Error::Write(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
        if !parent.is_dir() {
            return Err(Error::Write(format!(
                "cannot write {}: directory {} does not exist",
                path.display(),
                parent.display()
            )));
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
    ) -> Result<(TcpStream, Head), Error> {
        let method = if self.client.config.head_only {
            "HEAD"
        } else {
            "GET"
        };
        self.say(&format!("{method} {url}"));
        if let Some((key, stream)) = idle.take() {
            if key == url.origin() && self.send(&stream, url, asking).is_ok() {
                if let Ok(Some(head)) = read_head(&stream, url) {
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
        match read_head(&stream, url)? {
            Some(head) => {
                self.say(&format!("{} {}", head.status, head.reason));
                Ok((stream, head))
            }
            None => Err(Error::Receive(format!(
                "{url}: the server closed the connection without an answer"
            ))),
        }
    }

    pub(super) fn say(&self, line: &str) {
        self.events.verbose(line);
    }

    pub(super) fn note(&self, line: &str) {
        self.events.note(line);
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
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
