//! What a transfer did: bytes, time, the syscalls the engine issued, and the
//! resource usage (CPU time, context switches, page faults) it cost.
//!
//! Syscalls are counted by the engines themselves, one increment per call, so the
//! counts are exact for the transfer and free to collect. Resource usage comes from
//! `getrusage(RUSAGE_THREAD)`: a transfer runs on one thread, and the thread's figures
//! stay correct when a server runs many transfers at once.

use std::fmt;
use std::time::Duration;

use rustix::io::Errno;

use crate::choice::{Engine, FdKind};
use crate::sys;

/// A syscall an engine issues, counted in [`Syscalls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Syscall {
    /// `read(2)` on a stream.
    Read,
    /// `pread(2)` on a file.
    Pread,
    /// `write(2)`.
    Write,
    /// `mmap(2)`.
    Mmap,
    /// `munmap(2)`.
    Munmap,
    /// `madvise(2)`.
    Madvise,
    /// `sendfile(2)`.
    Sendfile,
    /// `splice(2)`.
    Splice,
    /// `copy_file_range(2)`.
    CopyFileRange,
    /// `pipe2(2)` and its `fcntl(F_SETPIPE_SZ)`.
    Pipe,
    /// `fstat(2)`, issued to learn a file's size.
    Fstat,
}

impl Syscall {
    /// Every syscall, in display order.
    pub const ALL: [Syscall; 11] = [
        Syscall::Read,
        Syscall::Pread,
        Syscall::Write,
        Syscall::Mmap,
        Syscall::Munmap,
        Syscall::Madvise,
        Syscall::Sendfile,
        Syscall::Splice,
        Syscall::CopyFileRange,
        Syscall::Pipe,
        Syscall::Fstat,
    ];

    /// The syscall's name as in its man page.
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Read => "read",
            Syscall::Pread => "pread",
            Syscall::Write => "write",
            Syscall::Mmap => "mmap",
            Syscall::Munmap => "munmap",
            Syscall::Madvise => "madvise",
            Syscall::Sendfile => "sendfile",
            Syscall::Splice => "splice",
            Syscall::CopyFileRange => "copy_file_range",
            Syscall::Pipe => "pipe",
            Syscall::Fstat => "fstat",
        }
    }
}

/// Syscalls issued, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Syscalls([u64; Syscall::ALL.len()]);

impl Syscalls {
    /// Counts one call of `call`.
    pub fn count(&mut self, call: Syscall) {
        self.0[call as usize] += 1;
    }

    /// How many times `call` was issued.
    pub fn get(&self, call: Syscall) -> u64 {
        self.0[call as usize]
    }

    /// All syscalls together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The kinds issued at least once, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Syscall, u64)> + '_ {
        Syscall::ALL
            .into_iter()
            .map(|call| (call, self.get(call)))
            .filter(|&(_, n)| n > 0)
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Syscalls) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

impl fmt::Display for Syscalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (call, n) in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{}={n}", call.name())?;
        }
        Ok(())
    }
}

/// Resource usage of a thread or process, or the difference between two readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    /// CPU time in user mode.
    pub user: Duration,
    /// CPU time in the kernel.
    pub system: Duration,
    /// Voluntary context switches: the thread blocked (waited for I/O or a lock).
    pub voluntary_switches: u64,
    /// Involuntary context switches: the scheduler preempted the thread.
    pub involuntary_switches: u64,
    /// Page faults served without I/O (the page was in memory).
    pub minor_faults: u64,
    /// Page faults that needed I/O.
    pub major_faults: u64,
}

impl Rusage {
    /// `getrusage(RUSAGE_THREAD)`: the calling thread's usage so far.
    pub fn thread() -> Rusage {
        sys::getrusage(sys::RusageWho::Thread)
    }

    /// `getrusage(RUSAGE_SELF)`: the whole process's usage so far.
    pub fn process() -> Rusage {
        sys::getrusage(sys::RusageWho::Process)
    }

    /// `getrusage(RUSAGE_CHILDREN)`: usage of the waited-for child processes.
    pub fn children() -> Rusage {
        sys::getrusage(sys::RusageWho::Children)
    }

    /// The usage between an earlier reading and this one.
    pub fn since(&self, earlier: &Rusage) -> Rusage {
        Rusage {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
        }
    }

    /// Voluntary and involuntary context switches together.
    pub fn context_switches(&self) -> u64 {
        self.voluntary_switches + self.involuntary_switches
    }
}

impl std::ops::Add for Rusage {
    type Output = Rusage;

    /// The usage of two threads or two stretches of time together.
    fn add(self, other: Rusage) -> Rusage {
        Rusage {
            user: self.user + other.user,
            system: self.system + other.system,
            voluntary_switches: self.voluntary_switches + other.voluntary_switches,
            involuntary_switches: self.involuntary_switches + other.involuntary_switches,
            minor_faults: self.minor_faults + other.minor_faults,
            major_faults: self.major_faults + other.major_faults,
        }
    }
}

/// Why an engine of the `auto` chain did not run, or stopped and handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The engine that was passed over.
    pub engine: Engine,
    /// Why; its `Display` says it in words.
    pub reason: SkipReason,
}

/// Why an engine was passed over, typed so a caller can act on it and a report can
/// say it without formatting anything until it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Passed over on the way to the read-write engine after a [`SkipReason::SizeMayLie`].
    ReadingInstead,
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
                let name = match *errno {
                    Errno::NOSYS => "ENOSYS",
                    Errno::PERM => "EPERM",
                    Errno::INVAL => "EINVAL",
                    Errno::XDEV => "EXDEV",
                    Errno::OPNOTSUPP => "EOPNOTSUPP",
                    Errno::BADF => "EBADF",
                    Errno::OVERFLOW => "EOVERFLOW",
                    Errno::NODEV => "ENODEV",
                    Errno::ACCESS => "EACCES",
                    _ => "errno",
                };
                let words = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
                let words = words.split(" (os error").next().unwrap_or_default();
                write!(f, "{name}: {words}")?;
                if *cached {
                    f.write_str(" (cached for this process)")?;
                }
                Ok(())
            }
            SkipReason::SizeMayLie => f.write_str(
                "found end of file before its first byte: the source's size may lie \
                 (procfs, sysfs, FUSE), so reading to end of file",
            ),
            SkipReason::ReadingInstead => f.write_str("passed over: reading to end of file"),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.engine, self.reason)
    }
}

/// Everything measured about one transfer.
#[derive(Clone, Debug)]
pub struct Report {
    /// The engine that moved the bytes (the last one, after any fallback).
    pub engine: Engine,
    /// Engines passed over before `engine`, each with its reason.
    pub skipped: Vec<Skip>,
    /// Bytes written to the sink.
    pub bytes: u64,
    /// Wall-clock time spent inside the engine calls.
    pub elapsed: Duration,
    /// Syscalls the engines issued.
    pub syscalls: Syscalls,
    /// Resource usage of the thread while it ran the engines (zero when
    /// `Options::rusage` is off).
    pub rusage: Rusage,
}

impl Report {
    /// Bytes per second, or 0 for a transfer that took no measurable time.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        }
    }
}
