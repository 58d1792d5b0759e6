//! A chunked body, which has to be decoded, so it is read into a buffer and
//! written out: the one path of the client that copies.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use zcopy::limit::Limiter;
use zcopy::{Engine, Report, Syscall, Syscalls};

use super::head::recv_failure;
use super::Body;
use super::{Error, Url};

/// A chunked body, decoded through a buffer. The connection is not reused after
/// it (bytes past the last chunk would be lost in the buffer).
pub(super) fn decode_chunked(
    stream: &TcpStream,
    file: &File,
    url: &Url,
    limiter: Option<Limiter>,
) -> Result<Body, Error> {
    let started = std::time::Instant::now();
    let mut reader = Buffered {
        stream,
        buf: vec![0; 64 << 10],
        start: 0,
        end: 0,
        syscalls: Syscalls::default(),
    };
    let mut written = 0u64;
    let mut out = file;
    let weird = |why: &str| Error::WeirdReply(format!("{url}: chunked body: {why}"));
    loop {
        let line = reader.line(url)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let mut left = u64::from_str_radix(size, 16)
            .map_err(|_| weird(&format!("bad chunk size {size:?}")))?;
        if left == 0 {
            // Trailer fields, up to the blank line.
            while !reader.line(url)?.is_empty() {}
            break;
        }
        while left > 0 {
            if reader.start == reader.end && reader.fill(url)? == 0 {
                return Err(Error::PeerClosed(format!(
                    "{url}: the server closed in the middle of a chunk"
                )));
            }
            let n = (reader.end - reader.start).min(usize::try_from(left).unwrap_or(usize::MAX));
            reader.syscalls.count(Syscall::Write);
            out.write_all(&reader.buf[reader.start..reader.start + n])
                .map_err(|e| Error::Write(format!("{url}: cannot write the file: {e}")))?;
            reader.start += n;
            left -= n as u64;
            written += n as u64;
            if let Some(limiter) = &limiter {
                limiter.pace(n as u64);
            }
        }
        if !reader.line(url)?.is_empty() {
            return Err(weird("no CRLF after a chunk"));
        }
    }
    let mut report = Report::empty(Engine::ReadWrite);
    report.bytes = written;
    report.elapsed = started.elapsed();
    report.syscalls = reader.syscalls;
    Ok(Body {
        report,
        copied: true,
    })
}

/// A read buffer over the socket, counting its reads.
struct Buffered<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    syscalls: Syscalls,
}

impl Buffered<'_> {
    /// Reads more into an emptied buffer; 0 at the end of the stream.
    fn fill(&mut self, url: &Url) -> Result<usize, Error> {
        self.start = 0;
        self.end = 0;
        loop {
            self.syscalls.count(Syscall::Read);
            match (&*self.stream).read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(recv_failure(url, e, "the body")),
            }
        }
    }

    /// One line without its CRLF (a chunk-size line, a trailer), at most 4 KiB.
    fn line(&mut self, url: &Url) -> Result<String, Error> {
        let mut line = Vec::new();
        loop {
            if self.start == self.end && self.fill(url)? == 0 {
                return Err(Error::PeerClosed(format!(
                    "{url}: the server closed in the middle of a chunked body"
                )));
            }
            let seen = &self.buf[self.start..self.end];
            match seen.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    line.extend_from_slice(&seen[..at]);
                    self.start += at + 1;
                    break;
                }
                None => {
                    line.extend_from_slice(seen);
                    self.start = self.end;
                }
            }
            if line.len() > 4096 {
                return Err(Error::WeirdReply(format!(
                    "{url}: chunked body: line too long"
                )));
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line)
            .map_err(|_| Error::WeirdReply(format!("{url}: chunked body: not text")))
    }
}
