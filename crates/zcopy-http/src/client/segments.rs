//! `--segments N`: one file as N ranges over N connections, each spliced into the
//! part file at its offset by a thread of its own.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;

use super::body::{self, Receiving};
use super::download::lock;
use super::head::{read_head, Framing};
use super::Body;
use super::{Asking, Job};
use super::{Error, Url};

/// The smallest range `--segments` fetches on a connection of its own.
pub const MIN_SEGMENT: u64 = 1 << 20;

impl Job<'_> {
    /// The rest of a `bytes=0-` response as `--segments` ranges: the first on the
    /// connection that asked, the others on connections of their own, each spliced
    /// into the file at its offset.
    pub(super) fn segments(
        &self,
        first: TcpStream,
        url: &Url,
        part: &Path,
        total: u64,
        validator: &str,
        headers: &[(String, String)],
    ) -> Result<Body, Error> {
        let n = u64::from(self.client.config.segments);
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
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let open: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
        let bodies: Vec<Option<Body>> = std::thread::scope(|s| {
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
                        headers,
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
        let mut combined: Option<Body> = None;
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

    /// One `--segments` range: on the first connection (which asked for `bytes=0-`),
    /// or on a new one asking for exactly this range, spliced at its offset.
    fn fetch_range(
        &self,
        range: &Range<'_>,
        first: Option<std::io::Result<TcpStream>>,
        open: &Mutex<Vec<TcpStream>>,
        failure: &Mutex<Option<Error>>,
    ) -> Result<Body, Error> {
        let Range {
            url,
            part,
            start,
            end,
            total,
            validator,
            headers,
        } = *range;
        let stream = match first {
            Some(stream) => stream.map_err(|e| Error::Other(format!("{url}: {e}")))?,
            None => {
                let stream = self.connect(url)?;
                let last = end - 1;
                let asking = Asking {
                    headers,
                    extra: format!("Range: bytes={start}-{last}\r\nIf-Range: {validator}\r\n"),
                };
                self.send(&stream, url, &asking)?;
                let head = read_head(&stream, url)?.ok_or_else(|| {
                    let why = format!("{url}: the server closed without an answer");
                    Error::Receive(why)
                })?;
                if head.content_range() != Some((Some((start, last)), total))
                    || head.framing != Framing::Length(end - start)
                {
                    let why = format!(
                        "{url}: {} {} to the range {start}-{last}: the file changed during the download",
                        head.status, head.reason
                    );
                    return Err(Error::Range(why));
                }
                stream
            }
        };
        if let Ok(clone) = stream.try_clone() {
            lock(open).push(clone);
        }
        // Registered after another range failed: it was not shut down, so stop here.
        if lock(failure).is_some() {
            return Err(Error::Other(format!("{url}: another range failed")));
        }
        let file = OpenOptions::new()
            .write(true)
            .open(part)
            .and_then(|mut f| f.seek(SeekFrom::Start(start)).map(|_| f))
            .map_err(|e| {
                let why = format!("cannot write {}: {e}", part.display());
                Error::Write(why)
            })?;
        let framing = Framing::Length(end - start);
        let how = Receiving {
            progress: false,
            rate: self
                .client
                .receiving
                .rate
                .map(|r| r / u64::from(self.client.config.segments)),
            ..self.client.receiving
        };
        body::receive(&stream, &file, framing, how, url, self.events)
    }
}

/// One range of a `--segments` download: bytes `start..end` of `total`.
#[derive(Clone, Copy)]
struct Range<'a> {
    url: &'a Url,
    part: &'a Path,
    start: u64,
    end: u64,
    total: u64,
    validator: &'a str,
    headers: &'a [(String, String)],
}
