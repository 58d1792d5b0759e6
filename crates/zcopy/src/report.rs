//! What a transfer did: bytes, time, the syscalls the engine issued, and the
//! resource usage (CPU time, context switches, page faults) it cost.
//!
//! Syscalls are counted by the engines themselves, one increment per call, so the
//! counts are exact for the transfer and free to collect. Resource usage comes from
//! `getrusage(RUSAGE_THREAD)`: a transfer runs on one thread, and the thread's figures
//! stay correct when a server runs many transfers at once.

use std::fmt;
use std::time::Duration;

use crate::choice::{Engine, Preference, Skip};
use crate::sys;

/// A syscall an engine issues, counted in [`Syscalls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
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
    /// `io_uring_setup(2)` and the `mmap`s of its rings.
    IoUringSetup,
    /// `io_uring_register(2)`: the opcode probe, registered buffers.
    IoUringRegister,
    /// `io_uring_enter(2)`: submits a batch of operations and waits for them.
    IoUringEnter,
    /// `send(2)` with `MSG_ZEROCOPY`.
    Send,
    /// `recvmsg(2)` on the error queue (`MSG_ERRQUEUE`): zerocopy completions.
    Recvmsg,
    /// `poll(2)`, waiting for zerocopy completions.
    Poll,
    /// `getsockopt(2)` and `setsockopt(2)` (`SO_ZEROCOPY`).
    Sockopt,
    /// `fcntl(2)` `F_GETFL`, to learn whether a socket blocks.
    Fcntl,
}

impl Syscall {
    /// Every syscall, in display order.
    pub const ALL: [Syscall; 19] = [
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
        Syscall::IoUringSetup,
        Syscall::IoUringRegister,
        Syscall::IoUringEnter,
        Syscall::Send,
        Syscall::Recvmsg,
        Syscall::Poll,
        Syscall::Sockopt,
        Syscall::Fcntl,
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
            Syscall::IoUringSetup => "io_uring_setup",
            Syscall::IoUringRegister => "io_uring_register",
            Syscall::IoUringEnter => "io_uring_enter",
            Syscall::Send => "send",
            Syscall::Recvmsg => "recvmsg",
            Syscall::Poll => "poll",
            Syscall::Sockopt => "sockopt",
            Syscall::Fcntl => "fcntl",
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

/// What the kernel said about zero-copy sends (`MSG_ZEROCOPY`, io_uring's
/// `SEND_ZC`): each send is completed once the kernel no longer needs its pages,
/// and the completion says whether it sent them in place or copied them after all
/// (loopback and veth always copy; so does a NIC without scatter-gather or
/// checksum offload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZeroCopy {
    /// Zero-copy sends issued (each `send` call or `SEND_ZC` operation that moved bytes).
    pub sends: u64,
    /// Sends the kernel has reported complete, releasing their buffer.
    pub completions: u64,
    /// Completions the kernel marked copied (`SO_EE_CODE_ZEROCOPY_COPIED`,
    /// `IORING_NOTIF_USAGE_ZC_COPIED`): the pages were copied, not sent in place.
    pub copied: u64,
}

impl ZeroCopy {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &ZeroCopy) {
        self.sends += other.sends;
        self.completions += other.completions;
        self.copied += other.copied;
    }
}

impl fmt::Display for ZeroCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} zero-copy sends, {} completed, the kernel copied {} of them",
            self.sends, self.completions, self.copied
        )
    }
}

/// Resource usage of a thread or process, or the difference between two readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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
        Rusage::of(sys::RusageWho::Thread)
    }

    /// `getrusage(RUSAGE_SELF)`: the whole process's usage so far.
    pub fn process() -> Rusage {
        Rusage::of(sys::RusageWho::Process)
    }

    /// `getrusage(RUSAGE_CHILDREN)`: usage of the waited-for child processes.
    pub fn children() -> Rusage {
        Rusage::of(sys::RusageWho::Children)
    }

    fn of(who: sys::RusageWho) -> Rusage {
        let usage = sys::getrusage(who);
        let time = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
        };
        Rusage {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
            voluntary_switches: usage.ru_nvcsw as u64,
            involuntary_switches: usage.ru_nivcsw as u64,
            minor_faults: usage.ru_minflt as u64,
            major_faults: usage.ru_majflt as u64,
        }
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

/// Everything measured about one transfer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// The engine that moved the bytes (the last one, after any fallback).
    pub engine: Engine,
    /// Engines passed over before `engine`, each with its reason.
    pub skipped: Vec<Skip>,
    /// Under `auto`, for a sink whose destination was known: which engine went
    /// first and why (this machine's calibration, or the default).
    pub preference: Option<Preference>,
    /// Bytes written to the sink.
    pub bytes: u64,
    /// Wall-clock time spent inside the engine calls.
    pub elapsed: Duration,
    /// Syscalls the engines issued.
    pub syscalls: Syscalls,
    /// Zero-copy sends and their completions (all zero for the other engines).
    pub zerocopy: ZeroCopy,
    /// Resource usage of the thread while it ran the engines (zero when
    /// `Options::rusage` is off).
    pub rusage: Rusage,
}

impl Report {
    /// A report of nothing moved yet by `engine`, for a caller that adds runs up
    /// with [`Report::absorb`] (a session of many files, a download in pieces).
    pub fn empty(engine: Engine) -> Report {
        Report {
            engine,
            skipped: Vec::new(),
            preference: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            syscalls: Syscalls::default(),
            zerocopy: ZeroCopy::default(),
            rusage: Rusage::default(),
        }
    }

    /// Adds another run's report to this one: bytes, time, syscalls, zero-copy
    /// counts and usage add up; the engine becomes the last one that moved bytes,
    /// and the first run's skips and preference are kept (later runs skip the same engines).
    pub fn absorb(&mut self, other: &Report) {
        if other.bytes > 0 {
            self.engine = other.engine;
        }
        if self.skipped.is_empty() {
            self.skipped = other.skipped.clone();
        }
        if self.preference.is_none() {
            self.preference = other.preference.clone();
        }
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
        self.syscalls.add(&other.syscalls);
        self.zerocopy.add(&other.zerocopy);
        self.rusage = self.rusage + other.rusage;
    }

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
