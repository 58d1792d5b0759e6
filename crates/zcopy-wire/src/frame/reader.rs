//! The reading side of a connection: messages through a buffer of its own.

use std::io::{self, Read};

use super::{invalid, Greeting, Msg, MAX_BODY};

/// Reads messages from a stream through a buffer of its own, so that the content
/// after a DATA message can be taken from the buffer first and the socket after.
pub struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> Reader<R> {
    /// A reader of the messages `inner` carries, with a 64 KiB buffer.
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Whether a message or content is already buffered (so a reply can wait).
    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Reads the greeting.
    pub fn greeting(&mut self) -> io::Result<Greeting> {
        let mut bytes = [0u8; Greeting::LEN];
        self.read_exact(&mut bytes)?;
        Greeting::decode(&bytes)
    }

    /// The receiver's answer to a greeting: its greeting, or ERR with its reason.
    pub fn greeting_or_refusal(&mut self) -> io::Result<Result<Greeting, String>> {
        if self.start == self.end && self.fill()? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed the connection without answering",
            ));
        }
        if self.buf[self.start] == b'X' {
            return match self.next()? {
                Some(Msg::Err { reason, .. }) => Ok(Err(reason)),
                _ => Err(invalid("a garbled answer")),
            };
        }
        self.greeting().map(Ok)
    }

    /// The next message, `None` at a clean end of stream between messages.
    // Not an `Iterator`: an error ends the stream, and callers tell it from the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<Msg>> {
        if self.start == self.end && self.fill()? == 0 {
            return Ok(None);
        }
        let mut head = [0u8; 5];
        self.read_exact(&mut head)?;
        let len = u32::from_be_bytes(head[1..].try_into().expect("4 bytes"));
        if len > MAX_BODY {
            return Err(invalid(&format!("message body of {len} bytes is too long")));
        }
        let mut body = vec![0u8; len as usize];
        self.read_exact(&mut body)?;
        Msg::decode(head[0], &body).map(Some)
    }

    /// The bytes already buffered (content that arrived with a message), at most `max`.
    pub fn buffered(&self, max: usize) -> &[u8] {
        &self.buf[self.start..self.end.min(self.start + max)]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
    }

    fn fill(&mut self) -> io::Result<usize> {
        self.start = 0;
        self.end = 0;
        let n = read_retrying(&mut self.inner, &mut self.buf)?;
        self.end = n;
        Ok(n)
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if out.len() >= self.buf.len() {
                return read_retrying(&mut self.inner, out);
            }
            self.fill()?;
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

fn read_retrying(inner: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
    loop {
        match inner.read(out) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // SO_RCVTIMEO expired: no byte for the whole timeout.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out: nothing received",
                ))
            }
            other => return other,
        }
    }
}
