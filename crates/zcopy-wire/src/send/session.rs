//! A framed session: the greeting, the entries and their content on the first
//! connection, the receiver's answers heard on a thread of their own; large files
//! in [`super::large`].

use std::fs::File;
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::net::SendFlags;
use xxhash_rust::xxh3::xxh3_128;
use zcopy::engine::direct::AlignedBuf;
use zcopy::limit::Limiter;
use zcopy::{Engine, Report, Syscall};

use crate::compress::{self, Compress, Packer};
use crate::delta::{Counts, Signature};
use crate::error::{fail, Context, Error, Result};
use crate::frame::{self, Entry, Greeting, Have, Msg, Reader};
use crate::observe::Observer;
use crate::send::lane::Lane;
use crate::send::walk::{How, Item};
use crate::send::{send_all, Compare, SendConfig, BATCH, SMALL};
use crate::tls;

/// What the control connection's reading thread hears from the receiver.
enum Heard {
    Have(u32, Have),
    Signature(u32, Signature),
    Bye,
    Refused(String),
    Closed(String),
}

/// What the receiver answered about a file.
pub(super) enum Answer {
    Have(Have),
    Signature(Signature),
}

/// A framed session: the control connection, its reader thread, the extra
/// connections of `-j N`, and the write buffer small entries share.
pub struct Sender<'a> {
    pub(super) config: &'a SendConfig,
    pub(super) addr: &'a str,
    pub(super) stream: TcpStream,
    pub(super) extra: Vec<TcpStream>,
    /// Over TLS, one per connection above (the control one first): its record
    /// count, and the fresh connection that took over its blocks, if one did.
    pub(super) lanes: Vec<Lane>,
    pub(super) streams: usize,
    pub(super) session: u64,
    pub(super) batch: Vec<u8>,
    heard: mpsc::Receiver<Heard>,
    pub(super) meter: Arc<dyn Observer>,
    pub(super) limiter: Option<Limiter>,
    /// The TLS side every connection of the session goes through, if any.
    pub(super) secure: Option<&'a tls::Sender>,
    /// Where the extra connections come from when the receiver dials this sender.
    pub(super) listener: Option<&'a TcpListener>,
    pub(super) report: Report,
    /// The receiver answers an old version with its signature (delta).
    delta: bool,
    /// What the deltas sent so far moved, by how (the receiver alone knows what
    /// it cloned).
    pub(super) delta_counts: Counts,
    pub(super) buf: AlignedBuf,
    pub(super) timeout: Duration,
    /// The receiver takes a mirror's messages.
    pub(super) mirror_ok: bool,
    /// The session speaks version 3: entries carry their attributes.
    pub(super) attrs_ok: bool,
    /// Said once that the receiver takes no attributes.
    pub(super) warned: bool,
    /// How blocks are compressed: as asked, or off for a receiver that cannot
    /// decompress.
    pub(super) compress: Compress,
    /// With compression, one compressor per connection (the control one first).
    pub(super) packers: Vec<Packer>,
}

impl<'a> Sender<'a> {
    /// Greets the receiver on `stream` (connected by [`super::dial`]) and starts
    /// hearing its answers; `streams` connections at most carry large files.
    pub fn open(
        config: &'a SendConfig,
        addr: &'a str,
        stream: TcpStream,
        streams: usize,
        meter: Arc<dyn Observer>,
        secure: Option<&'a tls::Sender>,
    ) -> Result<Sender<'a>> {
        let timeout = config.timeout;
        let greeting = greet(&stream, addr, 0, timeout, config.protocol)?;
        let (tx, heard) = mpsc::channel();
        let mut reader = Reader::new(stream.try_clone().context("socket")?);
        let told = meter.clone();
        std::thread::spawn(move || listen(&mut reader, &tx, &*told));
        // An older receiver cannot decompress: it gets the blocks as they are
        // (and a sender told to speak 2 speaks as one from before -z).
        let compress = if greeting.caps & frame::CAP_COMPRESS != 0
            && frame::negotiate(config.protocol, greeting.version).is_some_and(|v| v >= 3)
        {
            config.compress
        } else {
            Compress::Off
        };
        Ok(Sender {
            config,
            addr,
            stream,
            extra: Vec::new(),
            lanes: Vec::new(),
            streams: if greeting.caps & frame::CAP_STREAMS != 0 {
                streams
            } else {
                1
            },
            session: greeting.session,
            batch: Vec::with_capacity(BATCH + (64 << 10)),
            heard,
            meter,
            limiter: config.limit_rate.map(Limiter::new),
            secure,
            listener: None,
            report: Report::empty(Engine::ReadWrite),
            delta: greeting.caps & frame::CAP_DELTA != 0 && !config.whole_file,
            delta_counts: Counts::default(),
            buf: AlignedBuf::new(256 << 10, 4096),
            timeout,
            mirror_ok: greeting.caps & frame::CAP_MIRROR != 0,
            attrs_ok: greeting.caps & frame::CAP_ATTRS != 0
                && frame::negotiate(config.protocol, greeting.version).is_some_and(|v| v >= 3),
            warned: false,
            compress,
            packers: Packer::new(compress).context("zstd")?.into_iter().collect(),
        })
    }

    /// The extra connections of `-j N` are the receiver's, made to `listener`
    /// ([`super::answer`]), instead of dialled: a pull over ssh.
    pub fn answering(mut self, listener: &'a TcpListener) -> Sender<'a> {
        self.listener = Some(listener);
        self
    }

    pub(super) fn send(&mut self, item: &Item) -> Result<()> {
        let mut entry = item.entry.clone();
        if !self.fits(&mut entry) {
            return Ok(());
        }
        if entry.kind == frame::EntryKind::HardLink && !self.attrs_ok {
            // An older receiver gets the other name as a copy of its own.
            entry.kind = frame::EntryKind::File;
            entry.target.clear();
            let copy = Item {
                source: item.source.clone(),
                how: How::File,
                entry,
            };
            return self.send(&copy);
        }
        match item.how {
            How::Entry => {
                Msg::File(entry).encode(&mut self.batch);
                if self.batch.len() >= BATCH {
                    self.flush(false)?;
                }
                Ok(())
            }
            How::Stream if self.config.mirror.dry_run => self.dry_run(entry),
            How::Stream => self.send_stream(item, entry),
            How::File => {
                let size = entry.size.expect("regular files have a size");
                let file = File::open(&item.source)
                    .with_context(|| format!("cannot open {}", item.source.display()))?;
                self.quick_check(item, &mut entry, &file)?;
                entry.ask |= size > u64::from(entry.block);
                if self.config.mirror.dry_run {
                    return self.dry_run(entry);
                }
                entry.delta = self.delta && size > SMALL;
                entry.inplace = entry.delta && self.config.inplace;
                entry.ask |= entry.delta;
                if size <= SMALL && !entry.ask {
                    self.send_small(item, entry, &file, size)
                } else {
                    self.send_large(item, entry, &file, size)
                }
            }
        }
    }

    /// The questions about a run of small files (and the directories and
    /// symlinks among them, sent as they are): their entries leave together,
    /// each file asking. One round trip per window instead of one per file.
    pub(super) fn ask_window(&mut self, window: &[Item]) -> Result<()> {
        for item in window {
            if item.how != How::File {
                self.send(item)?;
                continue;
            }
            let mut entry = item.entry.clone();
            self.fits(&mut entry);
            if self.config.compare == Compare::Checksum {
                let file = File::open(&item.source)
                    .with_context(|| format!("cannot open {}", item.source.display()))?;
                self.quick_check(item, &mut entry, &file)?;
            } else {
                entry.complete_ok = self.config.compare == Compare::SizeAndTime;
            }
            entry.ask = true;
            Msg::File(entry).encode(&mut self.batch);
        }
        self.flush(false)
    }

    /// The content of a window asked about ([`Sender::ask_window`]): its files'
    /// answers are read in order and only the files not already in place are sent.
    pub(super) fn send_window(&mut self, window: &[Item]) -> Result<()> {
        let mut missing = Vec::new();
        for item in window.iter().filter(|i| i.how == How::File) {
            match self.await_have(item.entry.id, &frame::shown(&item.entry.path))? {
                Have::Complete => self.meter.moved(item.entry.size.unwrap_or(0)),
                _ => missing.push(item),
            }
        }
        for item in missing {
            let size = item.entry.size.expect("regular files have a size");
            let file = File::open(&item.source)
                .with_context(|| format!("cannot open {}", item.source.display()))?;
            self.small_content(item, item.entry.id, &file, size)?;
        }
        Ok(())
    }

    /// Fits `entry` to a receiver of version 2, which takes no attributes and
    /// no FIFOs, sockets or devices (said once): whether it is still sent.
    pub(super) fn fits(&mut self, entry: &mut Entry) -> bool {
        if self.attrs_ok || entry.attrs.is_empty() && !entry.kind.is_special() {
            return true;
        }
        if !self.warned {
            self.warned = true;
            self.meter.warning(&format!(
                "{}: the receiver speaks zcopy protocol 2: owners, groups, xattrs, ACLs, devices and FIFOs are not kept (update zcopy there)",
                self.addr
            ));
        }
        *entry.attrs = frame::Attrs::default();
        !entry.kind.is_special()
    }

    /// A small file: header, content, digest and END into the shared buffer.
    pub(super) fn send_small(
        &mut self,
        item: &Item,
        entry: Entry,
        file: &File,
        size: u64,
    ) -> Result<()> {
        let id = entry.id;
        Msg::File(entry).encode(&mut self.batch);
        self.small_content(item, id, file, size)
    }

    /// A small file's DATA, content, digest and END into the shared buffer.
    pub(super) fn small_content(
        &mut self,
        item: &Item,
        id: u32,
        mut file: &File,
        size: u64,
    ) -> Result<()> {
        let head = self.batch.len();
        Msg::Data {
            id,
            offset: 0,
            len: size as u32,
        }
        .encode(&mut self.batch);
        let start = self.batch.len();
        self.batch.resize(start + size as usize, 0);
        let mut got = 0;
        while got < size as usize {
            match file.read(&mut self.batch[start + got..]) {
                Ok(0) => fail!(
                    "{}: the file shrank to {got} bytes while it was sent",
                    item.source.display()
                ),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", item.source.display()))
                }
            }
            self.report.syscalls.count(Syscall::Read);
        }
        let digest = xxh3_128(&self.batch[start..]);
        if let Some(packed) = self
            .packers
            .first_mut()
            .and_then(|p| p.pack(&self.batch[start..]))
        {
            self.batch.truncate(head);
            Msg::Packed {
                id,
                offset: 0,
                len: size as u32,
                packed: packed.len() as u32,
                literal: false,
            }
            .encode(&mut self.batch);
            self.batch.extend_from_slice(packed);
        }
        self.batch.extend_from_slice(&digest.to_be_bytes());
        Msg::End {
            id,
            size,
            digest: frame::file_digest(&[digest]),
        }
        .encode(&mut self.batch);
        self.report.bytes += size;
        self.meter.moved(size);
        if self.batch.len() >= BATCH {
            self.flush(false)?;
        }
        Ok(())
    }

    /// A source read to its end, block by block.
    pub(super) fn send_stream(&mut self, item: &Item, entry: Entry) -> Result<()> {
        let id = entry.id;
        let block = entry.block as usize;
        let mut source: Box<dyn Read> = if item.source.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                File::open(&item.source)
                    .with_context(|| format!("cannot open {}", item.source.display()))?,
            )
        };
        Msg::File(entry).encode(&mut self.batch);
        // A slow source may take long to fill a block: the receiver learns of the
        // file now (blocks of unknown-size sources are full but for the last).
        self.flush(false)?;
        let mut buf = AlignedBuf::new(block, 4096);
        let mut digests = Vec::new();
        let mut size = 0u64;
        loop {
            let mut got = 0;
            while got < block {
                match source.read(&mut buf.as_mut_slice()[got..block]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot read {}", item.source.display()))
                    }
                }
                self.report.syscalls.count(Syscall::Read);
            }
            if got == 0 {
                break;
            }
            let bytes = buf.filled(got);
            let digest = xxh3_128(bytes);
            self.flush(true)?;
            let sent = match self.packers.first_mut() {
                Some(packer) => send_bytes(&self.stream, id, size, bytes, digest, packer),
                None => send_data(&self.stream, id, size, bytes, digest).map(|()| got as u64),
            };
            let wire = match sent {
                Ok(wire) => wire,
                Err(e) => return Err(self.why(Error::from(e), &frame::shown(&item.entry.path))),
            };
            self.report.syscalls.count(Syscall::Write);
            digests.push(digest);
            size += got as u64;
            self.report.bytes += got as u64;
            self.meter.moved(got as u64);
            if let Some(l) = &self.limiter {
                l.pace(wire);
            }
            if got < block {
                break;
            }
        }
        Msg::End {
            id,
            size,
            digest: frame::file_digest(&digests),
        }
        .encode(&mut self.batch);
        Ok(())
    }

    pub(super) fn await_have(&mut self, id: u32, path: &str) -> Result<Have> {
        match self.await_answer(id, path)? {
            Answer::Have(have) => Ok(have),
            Answer::Signature(_) => fail!(
                "{}: a signature for {path}, which was not offered as a delta",
                self.addr
            ),
        }
    }

    /// The receiver's answer to a FILE that asked: HAVE, or SIG for a delta.
    pub(super) fn await_answer(&mut self, id: u32, path: &str) -> Result<Answer> {
        match self
            .heard
            .recv_timeout(self.timeout.max(Duration::from_secs(1)))
        {
            Ok(Heard::Have(got, have)) if got == id => Ok(Answer::Have(have)),
            Ok(Heard::Signature(got, sig)) if got == id => Ok(Answer::Signature(sig)),
            Ok(Heard::Refused(reason)) => fail!("{}: {reason}", self.addr),
            Ok(Heard::Closed(why)) => fail!("{}: {why} before answering for {path}", self.addr),
            Ok(_) => fail!("{}: an answer out of order for {path}", self.addr),
            Err(_) => Err(Error::TimedOut(format!(
                "{}: timed out: no answer about {path} within {} s",
                self.addr,
                self.timeout.as_secs_f64()
            ))),
        }
    }

    /// Writes the shared buffer out (`more`: more bytes follow at once).
    pub(super) fn flush(&mut self, more: bool) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let flags = if more {
            SendFlags::MORE
        } else {
            SendFlags::empty()
        };
        if let Err(e) = send_all(&self.stream, &self.batch, flags) {
            return Err(self.why(Error::from(e), "the entries"));
        }
        self.report.syscalls.count(Syscall::Write);
        if let Some(l) = &self.limiter {
            l.pace(self.batch.len() as u64);
        }
        self.batch.clear();
        Ok(())
    }

    /// What the session moved so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The bytes of files sent as deltas, literal and referenced.
    pub fn delta(&self) -> Counts {
        self.delta_counts
    }

    /// What compression did on every connection; `None` when blocks go as they
    /// are (not asked, or a receiver that cannot decompress).
    pub fn compressed(&self) -> Option<compress::Counts> {
        if self.compress == Compress::Off {
            return None;
        }
        let mut total = compress::Counts::default();
        for p in &self.packers {
            total.add(p.counts());
        }
        Some(total)
    }

    /// DONE, then waits for the receiver to confirm everything is in place.
    pub fn finish(&mut self) -> Result<()> {
        Msg::Done.encode(&mut self.batch);
        self.flush(false)?;
        let lanes = self
            .lanes
            .iter()
            .flat_map(|l| l.fresh.iter().chain(&l.retired));
        for s in self.extra.iter().chain(lanes) {
            let _ = s.shutdown(Shutdown::Write);
        }
        match self
            .heard
            .recv_timeout(self.timeout.max(Duration::from_secs(1)))
        {
            Ok(Heard::Bye) => {
                let _ = self.stream.shutdown(Shutdown::Both);
                Ok(())
            }
            Ok(Heard::Refused(reason)) => fail!("{}: {reason}", self.addr),
            Ok(Heard::Closed(why)) => fail!("{}: {why} before confirming the transfer", self.addr),
            Ok(Heard::Have(..) | Heard::Signature(..)) => {
                fail!("{}: an answer out of order", self.addr)
            }
            Err(_) => Err(Error::TimedOut(format!(
                "{}: timed out: no confirmation within {} s",
                self.addr,
                self.timeout.as_secs_f64()
            ))),
        }
    }

    /// The error to print when sending failed: the receiver's own reason if it
    /// sent one (disk full, permission denied…), not the broken pipe it caused.
    pub(super) fn why(&self, e: Error, what: &str) -> Error {
        let wait = Duration::from_secs(2).min(self.timeout.max(Duration::from_millis(100)));
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.heard.recv_timeout(left) {
                Ok(Heard::Refused(reason)) => {
                    return Error::Failed(format!("{}: {reason}", self.addr))
                }
                Ok(Heard::Closed(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        e.context(format!("sending {what} to {}", self.addr))
    }
}

/// DATA for `bytes` at `offset`, the bytes, then their `digest`, on `conn`.
pub(super) fn send_data(
    conn: &TcpStream,
    id: u32,
    offset: u64,
    bytes: &[u8],
    digest: u128,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(32);
    Msg::Data {
        id,
        offset,
        len: bytes.len() as u32,
    }
    .encode(&mut head);
    send_all(conn, &head, SendFlags::MORE)?;
    send_all(conn, bytes, SendFlags::MORE)?;
    send_all(conn, &digest.to_be_bytes(), SendFlags::empty())
}

/// The same, as PACKED when `packer` shrinks the bytes. Returns the bytes the
/// block took on the wire.
pub(super) fn send_bytes(
    conn: &TcpStream,
    id: u32,
    offset: u64,
    bytes: &[u8],
    digest: u128,
    packer: &mut Packer,
) -> std::io::Result<u64> {
    let wire = match packer.pack(bytes) {
        Some(packed) => {
            let mut head = Vec::with_capacity(32);
            Msg::Packed {
                id,
                offset,
                len: bytes.len() as u32,
                packed: packed.len() as u32,
                literal: false,
            }
            .encode(&mut head);
            send_all(conn, &head, SendFlags::MORE)?;
            send_all(conn, packed, SendFlags::MORE)?;
            send_all(conn, &digest.to_be_bytes(), SendFlags::empty())?;
            packed.len()
        }
        None => {
            send_data(conn, id, offset, bytes, digest)?;
            bytes.len()
        }
    };
    Ok(wire as u64)
}

/// Sends a greeting and reads the answer; explains a peer that does not speak
/// the protocol.
pub(super) fn greet(
    stream: &TcpStream,
    addr: &str,
    session: u64,
    timeout: Duration,
    protocol: u8,
) -> Result<Greeting> {
    let hello = Greeting {
        version: protocol,
        caps: frame::caps_of(protocol),
        session,
    };
    send_all(stream, &hello.encode(), SendFlags::empty())
        .with_context(|| format!("sending to {addr}"))?;
    let mut reader = Reader::new(stream);
    match reader.greeting_or_refusal() {
        Ok(Ok(g)) if frame::negotiate(protocol, g.version).is_some() => Ok(g),
        Ok(Ok(g)) => fail!("{addr} speaks zcopy protocol {}, this sender {} to {protocol} (update the receiver)", g.version, frame::MIN_VERSION),
        Ok(Err(reason)) if reason == frame::NEEDS_SECRET => Err(Error::Auth(format!("{addr}: {reason}"))),
        Ok(Err(reason)) => fail!("{addr}: {reason}"),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(Error::TimedOut(format!(
            "{addr}: no answer to the zcopy greeting within {} s: is it nc or `zcopy recv --raw`? (then add --raw)",
            timeout.as_secs_f64()
        ))),
        Err(e) => Err(e).with_context(|| format!("{addr}: not a zcopy receiver? (for nc or `recv --raw`, add --raw)")),
    }
}

/// The control connection's reader: forwards what the receiver says (ITEM
/// lines go straight to the observer); on ERR,
/// shuts the socket so a blocked send returns at once.
fn listen(reader: &mut Reader<TcpStream>, tx: &mpsc::Sender<Heard>, told: &dyn Observer) {
    let mut signature = Signature::default();
    loop {
        let heard = match reader.next() {
            Ok(Some(Msg::Have { id, have })) => Heard::Have(id, have),
            Ok(Some(Msg::Sig { id, last, chunks })) => match signature.decode_more(&chunks) {
                Ok(()) if last => Heard::Signature(id, std::mem::take(&mut signature)),
                Ok(()) => continue,
                Err(e) => Heard::Closed(format!("sent a bad signature: {e}")),
            },
            Ok(Some(Msg::Item(line))) => {
                told.itemized(&line);
                continue;
            }
            Ok(Some(Msg::Ok { .. })) => continue,
            Ok(Some(Msg::Bye)) => Heard::Bye,
            Ok(Some(Msg::Err { reason, .. })) => {
                let _ = tx.send(Heard::Refused(reason));
                let _ = reader.get_ref().shutdown(Shutdown::Both);
                return;
            }
            Ok(Some(other)) => Heard::Closed(format!("sent an unexpected {other:?}")),
            Ok(None) => Heard::Closed("closed the connection".into()),
            // Silence from the receiver while we send is normal; our sends time out.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => Heard::Closed(e.to_string()),
        };
        let last = !matches!(heard, Heard::Have(..) | Heard::Signature(..));
        if tx.send(heard).is_err() || last {
            return;
        }
    }
}
