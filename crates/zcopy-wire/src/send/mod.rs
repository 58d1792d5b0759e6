//! The sending side of a framed session: files, directories and standard input
//! to a receiver ([`crate::recv`]), over the messages of [`crate::frame`].
//!
//! Small files are read into one buffer with their headers and digests and leave
//! in large writes, so a tree of many files is not bound by syscalls or round
//! trips. Large files leave block by block through the chosen engine (sendfile by
//! default), each block then hashed while it is still in the page cache; with
//! several streams their blocks are spread over that many connections. Sources
//! that do not know their size (pipes, `/proc`, `/sys`, devices) are read to
//! their end.

mod delta;
mod lane;
mod large;
mod mirror;
mod session;
pub mod walk;

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use rustix::net::SendFlags;
use zcopy::EngineChoice;

use crate::compress::Compress;
use crate::error::{Context, Result};
use crate::{frame, net, tls};

pub use session::Sender;
use walk::{How, Item};

/// Files up to this size travel inside the shared write buffer.
const SMALL: u64 = 1 << 20;

/// The shared write buffer is flushed when it holds this much.
const BATCH: usize = 1 << 20;

/// How many entries (small files, and the directories and symlinks among them)
/// a resuming session sends, asking, before it waits for the answers.
const RESUME_WINDOW: usize = 256;

/// How many windows are asked about before the first of them is sent: their
/// answers come back while the windows before them travel (one ahead left the
/// link idle a tenth of the time over a 100 Mbit/s link with `-z`).
const WINDOWS_AHEAD: usize = 2;

/// Files this large to a host that is not this one get 4 streams by default.
const MANY_STREAMS_FROM: u64 = 256 << 20;

/// How a sender sends: plain values, made from a command's flags or by hand.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SendConfig {
    /// The engine that moves large files' blocks.
    pub engine: EngineChoice,
    /// The read-write engine's buffer.
    pub buffer: usize,
    /// Ask the receiver what it holds for every file, not only the large ones.
    pub resume: bool,
    /// How a file already on the receiver is found to be the sender's (then it is
    /// not sent): rsync's quick check by default.
    pub compare: Compare,
    /// A mirror's deletions, dry run and itemized changes (all off by default).
    pub mirror: frame::Mirror,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// A connection that makes no progress for this long ends (zero: never).
    pub timeout: Duration,
    /// At most this many bytes per second over all streams.
    pub limit_rate: Option<u64>,
    /// Send changed files whole, never as a delta against the receiver's old
    /// version (rsync's `-W`).
    pub whole_file: bool,
    /// Over TLS, a data connection carries at most this many records before a
    /// fresh one takes over ([`tls::records`]).
    pub records_per_connection: u64,
    /// Compress blocks that shrink (`-z`), to a receiver that takes them.
    pub compress: Compress,
    /// Deltas rewrite the receiver's old file in place (`--inplace`: no second
    /// copy on disk, and not crash-safe).
    pub inplace: bool,
    /// The protocol version greeted with (a lower one speaks as an older
    /// sender would, for tests of old peers).
    pub protocol: u8,
}

impl Default for SendConfig {
    fn default() -> SendConfig {
        SendConfig {
            engine: EngineChoice::Auto,
            buffer: 128 << 10,
            resume: false,
            compare: Compare::SizeAndTime,
            mirror: frame::Mirror::default(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            limit_rate: None,
            whole_file: false,
            records_per_connection: tls::records::RECORDS_PER_CONNECTION,
            compress: Compress::Off,
            inplace: false,
            protocol: frame::VERSION,
        }
    }
}

/// How the sender and the receiver decide that a file in place needs no sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compare {
    /// The same size and mtime (rsync's quick check).
    SizeAndTime,
    /// The same size and digest, whatever the mtime (`-c/--checksum`).
    Checksum,
    /// Never: every file is sent (`--ignore-times`).
    Never,
}

impl SendConfig {
    /// Whether the receiver is told of a mirror (MIRROR): deletions, a dry run
    /// or itemized changes.
    pub fn mirrors(&self) -> bool {
        let m = &self.mirror;
        m.delete || m.delete_before || m.dry_run || m.itemize
    }

    /// Whether every file asks the receiver what it holds.
    fn asks(&self) -> bool {
        self.resume || self.compare != Compare::Never || self.mirror.dry_run
    }
}

/// How many connections `items` go over to `addr`: `asked` if given, else 4 for
/// a file of 256 MiB or more to another host, else 1.
pub fn streams_for(asked: Option<usize>, items: &[Item], addr: &str) -> usize {
    let largest = items.iter().filter_map(|i| i.entry.size).max().unwrap_or(0);
    match asked {
        Some(n) => n,
        None if largest >= MANY_STREAMS_FROM && !net::is_loopback(addr) => 4,
        None => 1,
    }
}

/// Connects with the socket options of a transfer; with `secure`, the TLS
/// handshake with the pinned receiver and the secret's proof come first.
pub fn dial(addr: &str, config: &SendConfig, secure: Option<&tls::Sender>) -> Result<TcpStream> {
    let stream = net::connect(addr, config.connect_timeout)?;
    net::keep_alive(&stream, config.timeout).with_context(|| format!("{addr}: socket options"))?;
    let Some(secure) = secure else {
        return Ok(stream);
    };
    let inner = secure.connect(stream, addr)?;
    net::timeouts(&inner, config.timeout).with_context(|| format!("{addr}: socket options"))?;
    Ok(inner)
}

/// Connections a peer made to this sender's `listener` (a pull over ssh: the
/// remote sender listens and the receiver connects): the next one whose far end
/// is the pinned receiver and takes the secret's proof. Others (anyone who
/// found the port) are dropped, up to a few, before giving up.
pub fn answer(
    listener: &TcpListener,
    config: &SendConfig,
    secure: &tls::Sender,
) -> Result<TcpStream> {
    let mut last = None;
    for _ in 0..8 {
        let (stream, peer) = listener.accept().context("accepting the receiver")?;
        let peer = peer.to_string();
        net::keep_alive(&stream, config.timeout)
            .with_context(|| format!("{peer}: socket options"))?;
        match secure.connect(stream, &peer) {
            Ok(inner) => {
                net::timeouts(&inner, config.timeout)
                    .with_context(|| format!("{peer}: socket options"))?;
                return Ok(inner);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("eight tries").into())
}

/// Whether `item` goes in a window of asks: a small file, or a directory or
/// symlink between them (an entry alone, answered by nothing), so that a tree
/// costs one round trip per window, not one per directory.
fn in_window(item: &Item) -> bool {
    match item.how {
        How::File => item.entry.size.is_some_and(|s| s <= SMALL),
        How::Entry => matches!(
            item.entry.kind,
            frame::EntryKind::Dir | frame::EntryKind::Symlink
        ),
        How::Stream => false,
    }
}

impl Sender<'_> {
    /// Sends `items` in order, telling the observer each entry as it starts;
    /// a resuming session asks about small files a window at a time, the next
    /// windows' questions leaving before this one's content, so that their
    /// answers travel while it is sent and the link never waits for a round trip.
    pub fn send_items(&mut self, items: &[Item]) -> Result<()> {
        let mut index = 0;
        let mut asked: std::collections::VecDeque<&[Item]> = Default::default();
        while index < items.len() {
            if index == 0 {
                self.announce(items)?;
            }
            let mut window = if self.config.asks() {
                items[index..]
                    .iter()
                    .take(RESUME_WINDOW)
                    .take_while(|i| in_window(i))
                    .count()
            } else {
                0
            };
            // A window ends with a file that asks: a receiver answers once its input
            // runs dry, and an older one only after a message it answers.
            while window > 0 && items[index + window - 1].how != How::File {
                window -= 1;
            }
            let run = window.max(1);
            for (n, item) in items[index..index + run].iter().enumerate() {
                self.meter
                    .entry((index + n) as u64 + 1, &frame::shown(&item.entry.path));
            }
            if window > 0 {
                let this = &items[index..index + window];
                self.ask_window(this)?;
                asked.push_back(this);
                if asked.len() > WINDOWS_AHEAD {
                    let first = asked.pop_front().expect("more than none");
                    self.send_window(first)?;
                }
            } else {
                for before in asked.drain(..) {
                    self.send_window(before)?;
                }
                self.send(&items[index])?;
            }
            index += run;
        }
        for last in asked {
            self.send_window(last)?;
        }
        Ok(())
    }
}

/// `send(2)` of a whole buffer with `flags` (`MSG_MORE` for a header, so it leaves in
/// the same segment as the first bytes of the body).
fn send_all(stream: &TcpStream, mut buf: &[u8], flags: SendFlags) -> std::io::Result<()> {
    while !buf.is_empty() {
        match rustix::net::send(stream, buf, flags) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out: the receiver took nothing for the whole --timeout",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
