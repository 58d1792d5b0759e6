//! A transfer: a source descriptor and a range of it, a sink descriptor, an engine
//! choice, and the [`Report`] of what happened.
//!
//! [`Transfer::run`] moves everything, or stops at `WouldBlock` on non-blocking
//! descriptors and resumes on the next call; [`Transfer::run_some`] moves at most a
//! given number of bytes, for progress bars. Under `auto`, an engine that finds on
//! its first call that it cannot work here hands over to the next one in the chain
//! at the byte where it stopped, and the report records why.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::choice::{Destination, Engine, EngineChoice, FdKind};
use crate::choice::{Preference, Skip, SkipReason};
use crate::engine::{Cursor, Side, State, Step};
use crate::profile::Profile;
use crate::report::{Report, Rusage, Syscall, Syscalls, ZeroCopy};
use crate::Error;

/// How to run a transfer; built from [`Options::default`] with the setters below.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Which engine, or `auto`.
    pub engine: EngineChoice,
    /// The read-write engine's buffer size (1 KiB is the seed's `Client`).
    pub buffer: usize,
    /// The size asked for the splice engine's pipe (`F_SETPIPE_SZ`).
    pub pipe_size: usize,
    /// io-uring into a socket: read into registered buffers and send them with
    /// `IORING_OP_SEND_ZC` instead of splicing (Linux 6.0; the copied count is
    /// reported from 6.2). Other engines and sinks ignore it.
    pub send_zc: bool,
    /// Where to start in a positional source (a file); must be 0 for streams.
    pub offset: u64,
    /// How many bytes to move; `None` moves until the source ends. With `Some`, a
    /// source that ends early is [`Error::SourceShrank`].
    pub len: Option<u64>,
    /// Whether to read the thread's resource usage around every run (two
    /// `getrusage` calls); a server answering small requests turns it off.
    pub rusage: bool,
    /// What the sink is, for `auto`'s order ([`EngineChoice::plan_for`]):
    /// [`Transfer::new`] finds out for a file sent into a socket or pipe when this
    /// is `None`; [`Transfer::with_kinds`] and [`TransferState::new`] take it as given.
    pub destination: Option<Destination>,
    /// Whether `auto` reads this machine's calibration profile
    /// ([`Profile::cached`]) to order its chain for the destination.
    pub calibrated: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            engine: EngineChoice::Auto,
            buffer: 128 << 10,
            pipe_size: 1 << 20,
            send_zc: false,
            offset: 0,
            len: None,
            rusage: true,
            destination: None,
            calibrated: true,
        }
    }
}

/// Builders, for callers that set one or two options:
/// `Options::default().engine(EngineChoice::Only(Engine::Sendfile)).len(n)`.
impl Options {
    /// Sets [`Options::engine`].
    pub fn engine(self, engine: EngineChoice) -> Options {
        Options { engine, ..self }
    }

    /// Sets [`Options::buffer`].
    pub fn buffer(self, buffer: usize) -> Options {
        Options { buffer, ..self }
    }

    /// Sets [`Options::pipe_size`].
    pub fn pipe_size(self, pipe_size: usize) -> Options {
        Options { pipe_size, ..self }
    }

    /// Sets [`Options::send_zc`].
    pub fn send_zc(self, send_zc: bool) -> Options {
        Options { send_zc, ..self }
    }

    /// Sets [`Options::offset`].
    pub fn offset(self, offset: u64) -> Options {
        Options { offset, ..self }
    }

    /// Sets [`Options::len`]: move exactly `len` bytes (`Some(n)` or `n`), or
    /// until the source ends (`None`).
    pub fn len(self, len: impl Into<Option<u64>>) -> Options {
        Options {
            len: len.into(),
            ..self
        }
    }

    /// Sets [`Options::rusage`].
    pub fn rusage(self, rusage: bool) -> Options {
        Options { rusage, ..self }
    }

    /// Sets [`Options::destination`].
    pub fn destination(self, destination: impl Into<Option<Destination>>) -> Options {
        Options {
            destination: destination.into(),
            ..self
        }
    }

    /// Sets [`Options::calibrated`].
    pub fn calibrated(self, calibrated: bool) -> Options {
        Options { calibrated, ..self }
    }
}

/// What [`Transfer::run`] or [`Transfer::run_some`] left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything asked for is in the sink.
    Done,
    /// A non-blocking descriptor is not ready: wait until this side is (readable
    /// for the source, writable for the sink), then call again.
    WouldBlock(Side),
    /// `run_some` moved its share; more remains.
    More,
}

/// A transfer in progress between two borrowed descriptors: a [`TransferState`]
/// and the descriptors it is driven with.
pub struct Transfer<'a> {
    src: BorrowedFd<'a>,
    sink: BorrowedFd<'a>,
    state: TransferState,
}

/// What a transfer keeps between calls: the engine chain, the running engine and
/// what it holds (a pipe, a buffer), the cursor and the report. It borrows no
/// descriptor, so a caller that owns its descriptors (a server connection) keeps
/// it across readiness events and passes them to each [`TransferState::run_some`].
pub struct TransferState {
    src_kind: FdKind,
    sink_kind: FdKind,
    options: Options,
    engines: VecDeque<Engine>,
    state: Option<State>,
    /// `cursor.moved` when the running engine started.
    engine_start: u64,
    cursor: Cursor,
    skipped: Vec<Skip>,
    preference: Option<Preference>,
    elapsed: Duration,
    rusage: Rusage,
}

impl<'a> Transfer<'a> {
    /// Prepares to move bytes from `src` to `sink`, which is written at its current
    /// offset. Fails if either is a directory, if an `offset` is given for a stream,
    /// or if the chosen engine cannot handle these kinds of descriptor. Under `auto`,
    /// a file sent into a socket or pipe is ordered for its [`Destination`]
    /// (`getsockname` and `getpeername` for a socket), unless the options name one.
    pub fn new(
        src: &'a impl AsFd,
        sink: &'a impl AsFd,
        mut options: Options,
    ) -> Result<Transfer<'a>, Error> {
        let src_kind = FdKind::of(src).map_err(Error::Setup)?;
        let sink_kind = FdKind::of(sink).map_err(Error::Setup)?;
        if options.engine == EngineChoice::Auto
            && options.destination.is_none()
            && matches!(src_kind, FdKind::File | FdKind::BlockDevice)
        {
            options.destination = Destination::of(sink, sink_kind);
        }
        Transfer::with_kinds(src, src_kind, sink, sink_kind, options)
    }

    /// Like [`Transfer::new`], for a caller that already knows what the descriptors
    /// are (a server answering many requests), saving two `fstat` calls.
    pub fn with_kinds(
        src: &'a impl AsFd,
        src_kind: FdKind,
        sink: &'a impl AsFd,
        sink_kind: FdKind,
        options: Options,
    ) -> Result<Transfer<'a>, Error> {
        Ok(Transfer {
            src: src.as_fd(),
            sink: sink.as_fd(),
            state: TransferState::new(src_kind, sink_kind, options)?,
        })
    }

    /// Moves everything, or up to a `WouldBlock` of a non-blocking descriptor.
    pub fn run(&mut self) -> Result<Status, Error> {
        self.state.run_some(self.src, self.sink, u64::MAX)
    }

    /// Moves at most about `max` bytes (an engine may finish what it holds in
    /// flight), returning [`Status::More`] if the transfer is not finished.
    pub fn run_some(&mut self, max: u64) -> Result<Status, Error> {
        self.state.run_some(self.src, self.sink, max)
    }

    /// Bytes the sink has accepted so far.
    pub fn moved(&self) -> u64 {
        self.state.moved()
    }

    /// The engine running now (or next to run).
    pub fn engine(&self) -> Option<Engine> {
        self.state.engine()
    }

    /// What the transfer did so far.
    pub fn report(&self) -> Report {
        self.state.report()
    }
}

impl TransferState {
    /// Plans a transfer between descriptors of these kinds. Fails if either is a
    /// directory, if an `offset` is given for a stream, or if the chosen engine
    /// cannot handle these kinds of descriptor.
    pub fn new(
        src_kind: FdKind,
        sink_kind: FdKind,
        options: Options,
    ) -> Result<TransferState, Error> {
        for (kind, end) in [(src_kind, "source"), (sink_kind, "sink")] {
            if kind == FdKind::Directory {
                return Err(Error::Setup(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    format!("the {end} is a directory"),
                )));
            }
        }
        let positional = matches!(src_kind, FdKind::File | FdKind::BlockDevice);
        if !positional && options.offset != 0 {
            return Err(Error::Setup(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("an offset needs a file as source, not {src_kind}"),
            )));
        }
        let profile = options.calibrated.then(Profile::cached).flatten();
        let plan = options
            .engine
            .plan_for(src_kind, sink_kind, options.destination, profile)
            .map_err(Error::Setup)?;
        Ok(TransferState {
            src_kind,
            sink_kind,
            options,
            engines: plan.engines.into(),
            state: None,
            engine_start: 0,
            cursor: Cursor {
                src_pos: positional.then_some(options.offset),
                remaining: options.len,
                src_eof: false,
                moved: 0,
                budget: 0,
                syscalls: Syscalls::default(),
                zerocopy: ZeroCopy::default(),
            },
            skipped: plan.skipped,
            preference: plan.preference,
            elapsed: Duration::ZERO,
            rusage: Rusage::default(),
        })
    }

    /// Moves everything from `src` to `sink`, or up to a `WouldBlock` of a
    /// non-blocking descriptor. Every call must pass the same descriptors.
    pub fn run(&mut self, src: BorrowedFd<'_>, sink: BorrowedFd<'_>) -> Result<Status, Error> {
        self.run_some(src, sink, u64::MAX)
    }

    /// Moves at most about `max` bytes (an engine may finish what it holds in
    /// flight), returning [`Status::More`] if the transfer is not finished.
    pub fn run_some(
        &mut self,
        src: BorrowedFd<'_>,
        sink: BorrowedFd<'_>,
        max: u64,
    ) -> Result<Status, Error> {
        let started = Instant::now();
        let usage = self.options.rusage.then(Rusage::thread);
        self.cursor.budget = max;
        let result = self.pump(src, sink);
        self.elapsed += started.elapsed();
        if let Some(usage) = usage {
            self.rusage = self.rusage + Rusage::thread().since(&usage);
        }
        result
    }

    /// Starts the next transfer between descriptors of the same kinds (the next
    /// response on a connection), keeping the engine that worked and what it holds
    /// (the splice pipe, the buffer) when nothing is left in flight. The report
    /// starts again from zero.
    pub fn restart(&mut self, offset: u64, len: Option<u64>) {
        self.cursor = Cursor {
            src_pos: self.cursor.src_pos.map(|_| offset),
            remaining: len,
            src_eof: false,
            moved: 0,
            budget: 0,
            syscalls: Syscalls::default(),
            zerocopy: ZeroCopy::default(),
        };
        if self.state.as_ref().is_some_and(|state| !state.is_idle()) {
            self.state = None;
        }
        self.options.offset = offset;
        self.options.len = len;
        self.engine_start = 0;
        self.elapsed = Duration::ZERO;
        self.rusage = Rusage::default();
    }

    fn pump(&mut self, src: BorrowedFd<'_>, sink: BorrowedFd<'_>) -> Result<Status, Error> {
        loop {
            let Some(&engine) = self.engines.front() else {
                return Err(Error::Setup(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    format!(
                        "no engine could move {} to {}",
                        self.src_kind, self.sink_kind
                    ),
                )));
            };
            let state = match &mut self.state {
                Some(state) => state,
                None => {
                    self.engine_start = self.cursor.moved;
                    self.state.insert(State::new(
                        engine,
                        self.options.buffer,
                        self.options.pipe_size,
                        self.options.send_zc,
                        self.src_kind,
                        self.sink_kind,
                        &mut self.cursor,
                    )?)
                }
            };
            match state.pump(src, sink, &mut self.cursor)? {
                Step::Done => {
                    if let Some(mut reason) = self.size_may_lie(src, engine)? {
                        self.cursor.src_eof = false;
                        self.state = None;
                        while self.engines.front() != Some(&Engine::ReadWrite) {
                            let engine = self
                                .engines
                                .pop_front()
                                .expect("read-write is in the chain");
                            self.skipped.push(Skip { engine, reason });
                            reason = SkipReason::ReadingInstead;
                        }
                        continue;
                    }
                    return match self.cursor.remaining {
                        Some(missing) if missing > 0 => Err(match self.cursor.src_pos {
                            Some(size) => Error::SourceShrank { size },
                            None => Error::EndedEarly {
                                got: self.cursor.moved,
                                expected: self.cursor.moved + missing,
                            },
                        }),
                        _ => Ok(Status::Done),
                    };
                }
                Step::Paused => return Ok(Status::More),
                Step::WouldBlock(side) => return Ok(Status::WouldBlock(side)),
                Step::Fallback(reason) if self.engines.len() > 1 => {
                    self.skipped.push(Skip { engine, reason });
                    self.engines.pop_front();
                    self.state = None;
                }
                Step::Fallback(reason) => {
                    return Err(Error::Setup(std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        format!(
                            "{engine} cannot move {} to {}: {reason}",
                            self.src_kind, self.sink_kind
                        ),
                    )))
                }
            }
        }
    }

    /// Why reading should take over from `engine`, which ended at end of file of
    /// a positional source, or `None` when that end is true.
    ///
    /// copy_file_range, sendfile, splice and mmap go by the size the kernel holds
    /// for the file, and it can lie. procfs and sysfs files report 0 or 4096
    /// whatever they hold, as do some FUSE and overlay files (Rust std's
    /// `kernel_copy.rs` meets the same): an end before the first byte is not
    /// trusted. And a FUSE file opened for direct I/O may answer any read short:
    /// the kernel's splice path takes the short read for the end and even lowers
    /// the size it holds, where `read` goes on (measured: sendfile stopped at byte
    /// 1000 of 4 MiB, a FUSE test file system answering 1000 bytes a read). So an
    /// end after some bytes is checked with a 1-byte `pread`. Under `auto` the
    /// transfer goes on with read-write from the same byte; a single chosen
    /// engine that would silently lose data is an error instead.
    fn size_may_lie(
        &mut self,
        src: BorrowedFd<'_>,
        engine: Engine,
    ) -> Result<Option<SkipReason>, Error> {
        let Some(pos) = self.cursor.src_pos else {
            return Ok(None);
        };
        if engine == Engine::ReadWrite || !self.cursor.src_eof {
            return Ok(None);
        }
        let first_byte = self.cursor.moved == self.engine_start;
        let reading = self.engines.contains(&Engine::ReadWrite);
        if first_byte && reading {
            return Ok(Some(SkipReason::SizeMayLie));
        }
        let mut probe = [0u8; 1];
        let more = self
            .cursor
            .call(Syscall::Pread, rustix::io::pread(src, &mut probe, pos));
        match more {
            Ok(0) | Err(_) => Ok(None),
            Ok(_) if reading => Ok(Some(SkipReason::EndedEarly { at: pos })),
            Ok(_) => Err(Error::Setup(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "{engine} found end of file at byte {pos}, but reading finds more: the \
                     source's size lies (procfs, sysfs, FUSE); use the read-write engine"
                ),
            ))),
        }
    }

    /// Bytes the sink has accepted so far.
    pub fn moved(&self) -> u64 {
        self.cursor.moved
    }

    /// The engine running now (or next to run).
    pub fn engine(&self) -> Option<Engine> {
        self.engines.front().copied()
    }

    /// What the transfer did so far.
    pub fn report(&self) -> Report {
        Report {
            engine: self.engines.front().copied().unwrap_or(Engine::ReadWrite),
            skipped: self.skipped.clone(),
            preference: self.preference.clone(),
            bytes: self.cursor.moved,
            elapsed: self.elapsed,
            syscalls: self.cursor.syscalls,
            zerocopy: self.cursor.zerocopy,
            rusage: self.rusage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_that_finds_nothing_in_a_procfs_file_hands_over_to_reading() {
        // A chain whose first engine goes by the size procfs reports (0): the
        // transfer must not take its end of file for the truth.
        let want = std::fs::read("/proc/version").unwrap();
        let src = std::fs::File::open("/proc/version").unwrap();
        let sink = tempfile::tempfile().unwrap();
        let mut transfer = Transfer::new(&src, &sink, Options::default()).unwrap();
        transfer.state.engines = VecDeque::from([Engine::Mmap, Engine::ReadWrite]);
        assert_eq!(transfer.run().unwrap(), Status::Done);
        assert_eq!(transfer.moved(), want.len() as u64);
        let report = transfer.report();
        assert_eq!(report.engine, Engine::ReadWrite);
        assert!(report
            .skipped
            .iter()
            .any(|s| s.engine == Engine::Mmap && s.reason == SkipReason::SizeMayLie));
    }
}
