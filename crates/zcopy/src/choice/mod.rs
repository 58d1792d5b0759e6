//! Which engine moves the bytes: [`Engine`], the user's [`EngineChoice`], the kinds
//! of descriptor each engine accepts, and the `auto` fallback chain.
//!
//! `auto` walks reflink's successors in the order of Rust std's `kernel_copy.rs`:
//! copy_file_range → sendfile → splice → mmap → read-write, keeping the engines the
//! source and sink kinds allow. A syscall the kernel lacks (`ENOSYS`) or a sandbox
//! forbids (`EPERM` from seccomp) is remembered once per process in an `AtomicU8`, so
//! later transfers skip it without asking again.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::profile::Profile;

mod destination;
pub use destination::{Basis, Destination, Preference};

/// One technique for moving bytes, named after its syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// `read` into a user buffer, then `write` it: 2 CPU copies, 4 switches per chunk.
    ReadWrite,
    /// `mmap` the source, `write` from the mapping: 1 CPU copy.
    Mmap,
    /// `sendfile(2)`: file → anything, inside the kernel.
    Sendfile,
    /// `splice(2)` through a pipe: anything → anything, inside the kernel.
    Splice,
    /// `copy_file_range(2)`: file → file, inside the kernel or the file system.
    CopyFileRange,
    /// `io_uring`: `IORING_OP_SPLICE` through a pipe, several operations per
    /// `io_uring_enter`; anything → anything.
    IoUring,
    /// `send(MSG_ZEROCOPY)` from pinned buffers, completions read from the error
    /// queue: anything → a TCP socket.
    MsgZerocopy,
}

impl Engine {
    /// The engines `auto` tries, in order. io-uring and msg-zerocopy are not among
    /// them: on loopback both measured slower than sendfile and splice, and
    /// MSG_ZEROCOPY's kernel copies anyway there (see `lib.rs` and docs/engines.md).
    pub const CHAIN: [Engine; 5] = [
        Engine::CopyFileRange,
        Engine::Sendfile,
        Engine::Splice,
        Engine::Mmap,
        Engine::ReadWrite,
    ];

    /// Every engine, `auto`'s first and then the ones only chosen by name.
    pub const ALL: [Engine; 7] = [
        Engine::CopyFileRange,
        Engine::Sendfile,
        Engine::Splice,
        Engine::Mmap,
        Engine::ReadWrite,
        Engine::IoUring,
        Engine::MsgZerocopy,
    ];

    /// The engine's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::ReadWrite => "read-write",
            Engine::Mmap => "mmap",
            Engine::Sendfile => "sendfile",
            Engine::Splice => "splice",
            Engine::CopyFileRange => "copy-file-range",
            Engine::IoUring => "io-uring",
            Engine::MsgZerocopy => "msg-zerocopy",
        }
    }

    /// Whether this engine can move bytes from a `src` descriptor to a `sink`;
    /// `Err` says why not.
    pub fn accepts(self, src: FdKind, sink: FdKind) -> Result<(), SkipReason> {
        let positional = matches!(src, FdKind::File | FdKind::BlockDevice);
        match self {
            Engine::ReadWrite => Ok(()),
            Engine::Mmap if src != FdKind::File => Err(SkipReason::Source(src)),
            Engine::Sendfile if !positional => Err(SkipReason::Source(src)),
            Engine::CopyFileRange if src != FdKind::File => Err(SkipReason::Source(src)),
            Engine::CopyFileRange if sink != FdKind::File => Err(SkipReason::Sink(sink)),
            Engine::MsgZerocopy if sink != FdKind::Socket => Err(SkipReason::Sink(sink)),
            Engine::Mmap
            | Engine::Sendfile
            | Engine::Splice
            | Engine::CopyFileRange
            | Engine::IoUring
            | Engine::MsgZerocopy => Ok(()),
        }
    }

    /// Whether an earlier call found this engine's syscall missing in this process.
    pub(crate) fn known_unavailable(self) -> bool {
        self.probe()
            .is_some_and(|p| p.load(Ordering::Relaxed) == UNAVAILABLE)
    }

    /// Records that this engine's syscall is missing (`ENOSYS`) or forbidden (`EPERM`).
    pub(crate) fn mark_unavailable(self) {
        if let Some(p) = self.probe() {
            p.store(UNAVAILABLE, Ordering::Relaxed);
        }
    }

    fn probe(self) -> Option<&'static AtomicU8> {
        match self {
            Engine::Sendfile => Some(&SENDFILE),
            Engine::Splice => Some(&SPLICE),
            Engine::CopyFileRange => Some(&COPY_FILE_RANGE),
            Engine::IoUring => Some(&IO_URING),
            Engine::ReadWrite | Engine::Mmap | Engine::MsgZerocopy => None,
        }
    }
}

const UNKNOWN: u8 = 0;
const UNAVAILABLE: u8 = 1;
static SENDFILE: AtomicU8 = AtomicU8::new(UNKNOWN);
static SPLICE: AtomicU8 = AtomicU8::new(UNKNOWN);
static COPY_FILE_RANGE: AtomicU8 = AtomicU8::new(UNKNOWN);
static IO_URING: AtomicU8 = AtomicU8::new(UNKNOWN);

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The user's choice: one engine, or `auto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineChoice {
    /// The first engine of the chain that applies and works.
    #[default]
    Auto,
    /// Exactly this engine; a transfer it cannot do is an error.
    Only(Engine),
}

impl EngineChoice {
    /// The engines to try for `src` → `sink`, with the reasons the others were
    /// passed over, in the chain's own order. An `Only` choice that does not apply
    /// is an error.
    pub fn plan(self, src: FdKind, sink: FdKind) -> io::Result<(Vec<Engine>, Vec<Skip>)> {
        self.plan_for(src, sink, None, None)
            .map(|plan| (plan.engines, plan.skipped))
    }

    /// [`EngineChoice::plan`] for a sink known to be a `destination`: under `auto`,
    /// the engine the `profile` measured fastest into that kind of destination is
    /// tried first when it beat the chain's first by [`MARGIN`](crate::profile::MARGIN) into a copying
    /// reader and lost by no more than that into any other reader measured, and the
    /// plan's [`Preference`] says which engine went first and why (the figures, or
    /// the default). The other engines keep their order and their fallbacks.
    pub fn plan_for(
        self,
        src: FdKind,
        sink: FdKind,
        destination: Option<Destination>,
        profile: Option<&Profile>,
    ) -> io::Result<Plan> {
        let (mut engines, skipped) = self.chain(src, sink)?;
        let preference = match (self, destination, engines.first()) {
            (EngineChoice::Auto, Some(destination), Some(&first)) => {
                let preference = Preference::choose(destination, first, &engines, profile);
                if let Some(at) = engines.iter().position(|e| *e == preference.engine) {
                    let engine = engines.remove(at);
                    engines.insert(0, engine);
                }
                Some(preference)
            }
            _ => None,
        };
        Ok(Plan {
            engines,
            skipped,
            preference,
        })
    }

    fn chain(self, src: FdKind, sink: FdKind) -> io::Result<(Vec<Engine>, Vec<Skip>)> {
        match self {
            EngineChoice::Only(engine) => match engine.accepts(src, sink) {
                Ok(()) => Ok((vec![engine], Vec::new())),
                Err(why) => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("engine {engine} cannot move {src} to {sink}: {why}"),
                )),
            },
            EngineChoice::Auto => {
                let mut usable = Vec::new();
                let mut skipped = Vec::new();
                for engine in Engine::CHAIN {
                    let verdict = engine.accepts(src, sink).and_then(|()| {
                        if engine.known_unavailable() {
                            Err(SkipReason::Unavailable)
                        } else {
                            Ok(())
                        }
                    });
                    match verdict {
                        Ok(()) => usable.push(engine),
                        Err(reason) => skipped.push(Skip { engine, reason }),
                    }
                }
                Ok((usable, skipped))
            }
        }
    }
}

impl FromStr for EngineChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(EngineChoice::Auto);
        }
        Engine::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .map(EngineChoice::Only)
            .ok_or_else(|| {
                let names: Vec<_> = Engine::ALL.iter().map(|e| e.name()).collect();
                format!("unknown engine '{s}' (expected auto, {})", names.join(", "))
            })
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineChoice::Auto => f.write_str("auto"),
            EngineChoice::Only(e) => e.fmt(f),
        }
    }
}

/// The engines a transfer will try, in order, with the reasons the others were
/// passed over and, under `auto` for a known destination, why the first is first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The engines to try, in order.
    pub engines: Vec<Engine>,
    /// The engines passed over, each with its reason.
    pub skipped: Vec<Skip>,
    /// Why `engines[0]` goes first, when the destination was known.
    pub preference: Option<Preference>,
}

/// What a descriptor is, as far as the engines care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FdKind {
    /// A regular file: positional, mappable.
    File,
    /// A socket.
    Socket,
    /// A pipe or FIFO.
    Pipe,
    /// A character device (a terminal, `/dev/null`).
    CharDevice,
    /// A block device: positional, not mappable by these engines.
    BlockDevice,
    /// A directory, which no engine reads or writes.
    Directory,
}

impl FdKind {
    /// `fstat(fd)` and classify the result.
    pub fn of(fd: impl AsFd) -> io::Result<FdKind> {
        let stat = rustix::fs::fstat(fd)?;
        Ok(match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => FdKind::File,
            FileType::Socket => FdKind::Socket,
            FileType::Fifo => FdKind::Pipe,
            FileType::CharacterDevice => FdKind::CharDevice,
            FileType::BlockDevice => FdKind::BlockDevice,
            FileType::Directory => FdKind::Directory,
            FileType::Symlink | FileType::Unknown => FdKind::CharDevice,
        })
    }
}

impl fmt::Display for FdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FdKind::File => "a regular file",
            FdKind::Socket => "a socket",
            FdKind::Pipe => "a pipe",
            FdKind::CharDevice => "a character device",
            FdKind::BlockDevice => "a block device",
            FdKind::Directory => "a directory",
        })
    }
}

/// Why an engine of the `auto` chain did not run, or stopped and handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skip {
    /// The engine that was passed over.
    pub engine: Engine,
    /// Why; its `Display` says it in words.
    pub reason: SkipReason,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.engine, self.reason)
    }
}

/// Why an engine was passed over, typed so a caller can act on it and a report can
/// say it without formatting anything until it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The engine cannot read this kind of source.
    Source(FdKind),
    /// The engine cannot write this kind of sink.
    Sink(FdKind),
    /// An earlier call in this process found the syscall missing or forbidden.
    Unavailable,
    /// The kernel refused the call before the first byte (or, for `EOVERFLOW`,
    /// mid-transfer); `cached` when that means the syscall is missing everywhere.
    Refused {
        /// The errno.
        errno: Errno,
        /// Whether the refusal is remembered for the rest of the process.
        cached: bool,
    },
    /// End of file before the first byte from a source whose size may lie
    /// (procfs, sysfs, FUSE): reading to end of file instead.
    SizeMayLie,
    /// End of file at byte `at`, after some bytes, where reading finds more (a
    /// FUSE file answering short reads): reading the rest instead.
    EndedEarly {
        /// The source offset where the engine found its end.
        at: u64,
    },
    /// Passed over on the way to the read-write engine after a [`SkipReason::SizeMayLie`]
    /// or [`SkipReason::EndedEarly`].
    ReadingInstead,
    /// A call setting the engine up was refused before the first byte
    /// (`io_uring_setup`, `SO_ZEROCOPY`, registering buffers); `cached` as for
    /// [`SkipReason::Refused`].
    SetupRefused {
        /// The call, or the option it set.
        call: &'static str,
        /// The errno.
        errno: Errno,
        /// Whether the refusal is remembered for the rest of the process.
        cached: bool,
    },
    /// The kernel or the descriptor lacks what the engine needs, in words ("the
    /// kernel has no IORING_OP_SPLICE (Linux 5.7+)").
    Unsupported(&'static str),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Source(kind) => write!(f, "source is {kind}"),
            SkipReason::Sink(kind) => write!(f, "sink is {kind}"),
            SkipReason::Unavailable => {
                f.write_str("not available in this process (probed once, cached)")
            }
            SkipReason::Refused { errno, cached } => {
                f.write_str(&errno_words(*errno))?;
                if *cached {
                    f.write_str(" (cached for this process)")?;
                }
                Ok(())
            }
            SkipReason::SetupRefused {
                call,
                errno,
                cached,
            } => {
                write!(f, "{call}: {}", errno_words(*errno))?;
                if *call == "io_uring_setup" && *errno == Errno::PERM {
                    // kernel.io_uring_disabled (Linux 6.6): 2 for everyone, 1 for
                    // users outside kernel.io_uring_group; or a seccomp filter.
                    f.write_str(" (kernel.io_uring_disabled or a seccomp filter)")?;
                }
                if *cached {
                    f.write_str(" (cached for this process)")?;
                }
                Ok(())
            }
            SkipReason::Unsupported(words) => f.write_str(words),
            SkipReason::SizeMayLie => f.write_str(
                "found end of file before its first byte: the source's size may lie \
                 (procfs, sysfs, FUSE), so reading to end of file",
            ),
            SkipReason::EndedEarly { at } => write!(
                f,
                "found end of file at byte {at}, but reading finds more (a FUSE file's short \
                 read, a size that lies), so reading the rest"
            ),
            SkipReason::ReadingInstead => f.write_str("passed over: reading to end of file"),
        }
    }
}

/// An errno as a report shows it: "EXDEV: Invalid cross-device link".
fn errno_words(errno: Errno) -> String {
    let name = match errno {
        Errno::NOSYS => "ENOSYS",
        Errno::PERM => "EPERM",
        Errno::INVAL => "EINVAL",
        Errno::XDEV => "EXDEV",
        Errno::OPNOTSUPP => "EOPNOTSUPP",
        Errno::NOPROTOOPT => "ENOPROTOOPT",
        Errno::BADF => "EBADF",
        Errno::OVERFLOW => "EOVERFLOW",
        Errno::NODEV => "ENODEV",
        Errno::ACCESS => "EACCES",
        Errno::NOMEM => "ENOMEM",
        _ => "errno",
    };
    let words = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    let words = words.split(" (os error").next().unwrap_or_default();
    format!("{name}: {words}")
}

#[cfg(test)]
mod tests;
