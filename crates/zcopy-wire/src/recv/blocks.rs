//! The blocks of a session's files: read or spliced from the connection into
//! the partial file, each hashed from where it lands and checked.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use zcopy::xxh3::Xxh3;
use zcopy::{Engine, Syscall};

use crate::error::{fail, Context, Result};
use crate::frame::{self, Msg};

use super::conn::Conn;
use super::session::{peer_closed, Session, Small};

impl Conn<'_> {
    /// The one block of a small file, into memory, checked against its digest.
    pub(super) fn small_block(
        &mut self,
        small: &mut Small,
        offset: u64,
        len: u32,
        hole: bool,
    ) -> Result<()> {
        let path = frame::shown(&small.entry.path).into_owned();
        if offset != 0 || Some(u64::from(len)) != small.entry.size || !small.digests.is_empty() {
            fail!("{path}: block at {offset} of {len} bytes is not the file's one block");
        }
        if hole {
            small.content = vec![0; len as usize];
            small.digests.push(frame::zeros_digest(len));
            return Ok(());
        }
        small.content.resize(len as usize, 0);
        let mut got = 0;
        while got < small.content.len() {
            match self.reader.read(&mut small.content[got..]) {
                Ok(0) => {
                    return Err(peer_closed(format!(
                        "{path}: receiving the block at 0 from {}: {}",
                        self.peer,
                        ended_early(got as u64, len)
                    )))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("{path}: receiving from {}", self.peer))
                }
            }
            self.syscalls.count(Syscall::Read);
        }
        let got = xxhash_rust::xxh3::xxh3_128(&small.content);
        let mut sent = [0u8; 16];
        if self.reader.read_exact(&mut sent).is_err() {
            return Err(peer_closed(format!(
                "{path}: the sender closed the connection inside the block at 0"
            )));
        }
        let sent = u128::from_be_bytes(sent);
        if got != sent {
            fail!(
                "{path}: digest mismatch in the block at 0 from {} (sent {sent:032x}, received {got:032x})",
                self.peer
            );
        }
        if let Some(l) = &self.job.limiter {
            l.pace(u64::from(len));
        }
        small.digests.push(got);
        Ok(())
    }

    /// The one block of a small file, compressed: decompressed into memory and
    /// checked against its digest.
    pub(super) fn small_packed(
        &mut self,
        small: &mut Small,
        offset: u64,
        len: u32,
        packed: u32,
    ) -> Result<()> {
        let path = frame::shown(&small.entry.path).into_owned();
        if offset != 0 || Some(u64::from(len)) != small.entry.size || !small.digests.is_empty() {
            fail!(
                "{path}: compressed block at {offset} of {len} bytes is not the file's one block"
            );
        }
        let bytes = match self.unpack(packed, len) {
            Ok(bytes) => bytes,
            Err(e) => {
                let what = format!("{path}: receiving the block at 0 from {}", self.peer);
                return Err(self.unpack_error(e, what));
            }
        };
        small.content.clear();
        small.content.extend_from_slice(bytes);
        let got = xxhash_rust::xxh3::xxh3_128(&small.content);
        self.check_digest(&path, 0, got)?;
        if let Some(l) = &self.job.limiter {
            l.pace(u64::from(packed));
        }
        small.digests.push(got);
        Ok(())
    }

    /// A block that came compressed: decompressed, written at its offset, checked
    /// against the digest that follows it.
    pub(super) fn packed_block(
        &mut self,
        session: &Session,
        id: u32,
        offset: u64,
        len: u32,
        packed: u32,
    ) -> Result<()> {
        let partial = session.file(id, self.job.config.timeout.max(Duration::from_secs(1)))?;
        let index = partial.check_block(offset, len)?;
        let path = frame::shown(&partial.entry.path).into_owned();
        let got = match self.unpack(packed, len) {
            Ok(bytes) => {
                let got = xxhash_rust::xxh3::xxh3_128(bytes);
                partial
                    .file
                    .write_all_at(bytes, offset)
                    .with_context(|| format!("{path}: cannot write"))?;
                got
            }
            Err(e) => {
                let what = format!("{path}: receiving the block at {offset} from {}", self.peer);
                return Err(self.unpack_error(e, what));
            }
        };
        self.syscalls.count(Syscall::Write);
        self.check_digest(&path, offset, got)?;
        if let Some(l) = &self.job.limiter {
            l.pace(u64::from(packed));
        }
        session.received(len);
        Ok(partial.verified(index, got, session.joined())?)
    }

    /// A PACKED message's bytes that could not be had: the sender closed, or
    /// they do not decompress.
    fn unpack_error(&self, e: std::io::Error, what: String) -> crate::Error {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return peer_closed(format!(
                "{what}: the sender closed the connection inside the compressed block"
            ));
        }
        crate::Error::from(e).context(what)
    }

    /// Reads the digest that follows a block's bytes and compares it with `got`,
    /// the digest of what arrived.
    fn check_digest(&mut self, path: &str, offset: u64, got: u128) -> Result<()> {
        let mut sent = [0u8; 16];
        if let Err(e) = self.reader.read_exact(&mut sent) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                return Err(peer_closed(format!(
                    "{path}: the sender closed the connection inside the block at {offset}"
                )));
            }
            return Err(e).with_context(|| format!("{path}: in the block at {offset}"));
        }
        let sent = u128::from_be_bytes(sent);
        if got != sent {
            fail!(
                "{path}: digest mismatch in the block at {offset} from {} (sent {sent:032x}, received {got:032x})",
                self.peer
            );
        }
        Ok(())
    }

    /// An extra connection of a session: blocks only, until the sender closes it.
    pub(super) fn blocks_only(&mut self, session: &Session) -> Result<()> {
        while let Some(msg) = self
            .reader
            .next()
            .with_context(|| format!("receiving from {}", self.peer))?
        {
            match msg {
                Msg::Data { id, offset, len } => self.block(session, id, offset, len, false)?,
                Msg::Hole { id, offset, len } => self.block(session, id, offset, len, true)?,
                Msg::Packed {
                    id,
                    offset,
                    len,
                    packed,
                    literal: false,
                } => self.packed_block(session, id, offset, len, packed)?,
                other => fail!(
                    "receiving from {}: unexpected message {other:?} on a joined connection",
                    self.peer
                ),
            }
        }
        session
            .syscalls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&self.syscalls);
        Ok(())
    }

    /// Receives one block into its file at its offset, hashing it on the way, and
    /// checks it against the digest that follows it.
    pub(super) fn block(
        &mut self,
        session: &Session,
        id: u32,
        offset: u64,
        len: u32,
        hole: bool,
    ) -> Result<()> {
        let partial = session.file(id, self.job.config.timeout.max(Duration::from_secs(1)))?;
        let index = partial.check_block(offset, len)?;
        let path = frame::shown(&partial.entry.path).into_owned();
        if hole {
            return Ok(partial.skipped_hole(index, frame::zeros_digest(len), session.joined())?);
        }
        let got = match self.engine {
            Engine::Splice => self.splice_block(&partial.file, offset, len),
            _ => self.read_block(&partial.file, offset, len),
        };
        let what = || format!("{path}: receiving the block at {offset} from {}", self.peer);
        let got = match got {
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(peer_closed(format!("{}: {e}", what())))
            }
            Err(e) => return Err(e).with_context(what),
        };
        self.check_digest(&path, offset, got)?;
        session.received(len);
        Ok(partial.verified(index, got, session.joined())?)
    }

    pub(super) fn read_block(
        &mut self,
        file: &File,
        offset: u64,
        len: u32,
    ) -> std::io::Result<u128> {
        let mut h = Xxh3::new();
        let mut pos = 0u64;
        let cap = self.buf.as_mut_slice().len() as u64;
        while pos < u64::from(len) {
            let want = (u64::from(len) - pos).min(cap) as usize;
            let n = match self.reader.read(&mut self.buf.as_mut_slice()[..want]) {
                Ok(0) => return Err(ended_early(pos, len)),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.syscalls.count(Syscall::Read);
            let bytes = self.buf.filled(n);
            h.update(bytes);
            file.write_all_at(bytes, offset + pos)?;
            self.syscalls.count(Syscall::Write);
            pos += n as u64;
            if let Some(l) = &self.job.limiter {
                l.pace(n as u64);
            }
        }
        Ok(h.digest128())
    }

    /// splice(2) socket → pipe → file at the block's offset; each piece is then read
    /// back while it is hot in the page cache and hashed.
    pub(super) fn splice_block(
        &mut self,
        file: &File,
        offset: u64,
        len: u32,
    ) -> std::io::Result<u128> {
        use rustix::pipe::{splice, SpliceFlags};
        let mut h = Xxh3::new();
        let len = u64::from(len);
        // What came in with the message header is written from the buffer.
        let head = self.reader.buffered(len as usize).to_vec();
        if !head.is_empty() {
            h.update(&head);
            file.write_all_at(&head, offset)?;
            self.syscalls.count(Syscall::Write);
            self.reader.consume(head.len());
        }
        let mut pos = head.len() as u64;
        let (pr, pw) = self.pipe.as_ref().expect("splice connections have a pipe");
        let chunk = self.buf.as_mut_slice().len() as u64;
        while pos < len {
            let want = (len - pos).min(chunk) as usize;
            let n = match splice(self.stream, None, pw, None, want, SpliceFlags::MOVE) {
                Ok(0) => return Err(ended_early(pos, len as u32)),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "timed out: nothing received",
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            self.syscalls.count(Syscall::Splice);
            let mut off = offset + pos;
            let mut left = n;
            while left > 0 {
                let m = splice(pr, None, file, Some(&mut off), left, SpliceFlags::MOVE)?;
                self.syscalls.count(Syscall::Splice);
                left -= m;
            }
            let mut back = 0;
            while back < n {
                let m = file.read_at(
                    &mut self.buf.as_mut_slice()[back..n],
                    offset + pos + back as u64,
                )?;
                self.syscalls.count(Syscall::Pread);
                if m == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was written",
                    ));
                }
                back += m;
            }
            h.update(self.buf.filled(n));
            pos += n as u64;
            if let Some(l) = &self.job.limiter {
                l.pace(n as u64);
            }
        }
        Ok(h.digest128())
    }
}

fn ended_early(got: u64, len: u32) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("the peer closed after {got} of {len} bytes"),
    )
}
