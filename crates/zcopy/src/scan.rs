//! Reading a file into user space for code that must see the bytes (a checksum):
//! the seed's buffered `FileReader` versus its `MmapFileReader`, and direct I/O.
//!
//! | engine | how | copies |
//! |---|---|---|
//! | [`ScanEngine::Read`] | `read` into a page-aligned buffer (1 KiB is the seed's `FileReader`); from 1 MiB up, a helper thread reads the next buffer while the consumer works | page cache → buffer |
//! | [`ScanEngine::Pread`] | two threads taking turns: each `pread`s a 256 KiB chunk into its own page-aligned buffer and consumes it in file order (see `pread`) | page cache → buffer, on both cores |
//! | [`ScanEngine::Mmap`] | map the whole file, `MADV_SEQUENTIAL`; a helper thread fills the page tables of the next 16 MiB (`MADV_POPULATE_READ`) while the consumer reads this window, then drops it (`MADV_DONTNEED`) | none: the consumer reads the cache |
//! | [`ScanEngine::Direct`] | `O_DIRECT` into an aligned buffer | device → buffer, no page cache |
//!
//! `auto` reads regular files of [`AUTO_PAIR_MIN`] bytes or more through the pread
//! pair and everything else with `read`. Measured on the 2-core VMs this was tuned
//! on (docs/benchmarks.md, scan), the pair beats mmap or ties with it: filling the
//! page tables and dropping them costs, per GiB of 4 KiB–1 MiB page-cache folios,
//! about the copy it saves (the populate walks every page; dropping them sends the
//! other core a TLB shootdown), while the pair's copies and digests share both
//! cores. Below 1 MiB a second thread costs more than it overlaps.
//!
//! A mapped file that shrinks raises SIGBUS on the next read of a lost page. The
//! mmap reader guards each window (see `sys::SigbusGuard`): the fault is survived and
//! reported as [`Error::SourceShrank`], never a crash.

use std::fmt;
use std::fs::File;
use std::str::FromStr;
use std::time::Instant;

mod mmap;
mod pread;

use crate::engine::direct::{AlignedBuf, DirectFile};
use crate::report::{Rusage, Syscall, Syscalls};
use crate::Error;

/// Regular files at least this large go through the pread pair under `auto`.
pub const AUTO_PAIR_MIN: u64 = 1 << 20;

/// Bytes per chunk of the pread pair.
pub const PAIR_CHUNK: usize = pread::CHUNK;

/// How a scan reads the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanEngine {
    /// Buffered `read(2)`.
    Read,
    /// `pread(2)` of page-aligned chunks by two threads.
    Pread,
    /// `mmap(2)` windows read in place.
    Mmap,
    /// `O_DIRECT` reads into an aligned buffer.
    Direct,
}

impl ScanEngine {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ScanEngine::Read => "read",
            ScanEngine::Pread => "pread",
            ScanEngine::Mmap => "mmap",
            ScanEngine::Direct => "direct",
        }
    }
}

impl fmt::Display for ScanEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The user's choice of scan engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanChoice {
    /// The pread pair for regular files of at least [`AUTO_PAIR_MIN`] bytes, read
    /// otherwise.
    #[default]
    Auto,
    /// As `Auto`, for a consumer that keeps every core busy itself (BLAKE3 on all
    /// cores): large regular files are mapped and read in place, as b3sum does,
    /// because then no core spends its time copying; mapping costs fewer CPU
    /// seconds than the pair's copies, and CPU seconds are what such a consumer lacks.
    AutoInPlace,
    /// This engine, falling back to `read` with a note where it cannot work.
    Only(ScanEngine),
}

impl FromStr for ScanChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => ScanChoice::Auto,
            "read" => ScanChoice::Only(ScanEngine::Read),
            "pread" => ScanChoice::Only(ScanEngine::Pread),
            "mmap" => ScanChoice::Only(ScanEngine::Mmap),
            "direct" => ScanChoice::Only(ScanEngine::Direct),
            _ => {
                return Err(format!(
                    "unknown scan engine '{s}' (expected auto, read, pread, mmap, direct)"
                ))
            }
        })
    }
}

/// What a scan did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScanReport {
    /// The engine that read the bytes.
    pub engine: ScanEngine,
    /// Why the asked-for engine was not used, if it was not.
    pub fallback: Option<String>,
    /// Why this engine: `asked for`, or the rule `auto` applied.
    pub why: &'static str,
    /// Bytes handed to the consumer.
    pub bytes: u64,
    /// Wall-clock time of the scan, the consumer's work included.
    pub elapsed: std::time::Duration,
    /// Syscalls the reader issued.
    pub syscalls: Syscalls,
    /// Resource usage of the scan's threads: the caller's and, for large read
    /// buffers, the helper that reads ahead.
    pub rusage: Rusage,
}

/// Reads `file` from its start (or, for a stream, from where it is) to its end and
/// hands every byte, in order, to `consume`. `buffer` sizes the read and direct
/// engines' buffers.
///
/// # A process-wide SIGBUS handler
///
/// The first scan that maps a file ([`ScanEngine::Mmap`], or `auto` choosing it)
/// installs a `SIGBUS` handler for the whole process, once, and keeps it: a fault
/// inside one of its own mapped windows is turned into [`Error::SourceShrank`];
/// any other SIGBUS goes to the handler that was there before (or the default
/// action, which ends the process, as without zcopy). A program with its own
/// SIGBUS handling should install it first, or scan with [`ScanChoice::Only`] of
/// an engine that does not map.
pub fn scan(
    file: &File,
    choice: ScanChoice,
    buffer: usize,
    consume: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<ScanReport, Error> {
    let started = Instant::now();
    let usage = Rusage::thread();
    let mut syscalls = Syscalls::default();
    syscalls.count(Syscall::Fstat);
    let stat = rustix::fs::fstat(file).map_err(|e| io("fstat", e.into()))?;
    let regular =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    let size = stat.st_size as u64;
    let large = regular && size >= AUTO_PAIR_MIN;
    let (wanted, why) = match choice {
        ScanChoice::Auto if large => (
            ScanEngine::Pread,
            "auto: a regular file of 1 MiB or more; the pread pair reads and consumes chunks on \
             both cores in turn, measured faster here than mmap's faults and munmap",
        ),
        ScanChoice::AutoInPlace if large => (
            ScanEngine::Mmap,
            "auto for a consumer on every core: a regular file of 1 MiB or more is mapped, \
             which costs fewer CPU seconds than copying it",
        ),
        ScanChoice::Auto | ScanChoice::AutoInPlace if regular => (
            ScanEngine::Read,
            "auto: a file under 1 MiB; one buffer, a second thread would cost more than it overlaps",
        ),
        ScanChoice::Auto | ScanChoice::AutoInPlace => (
            ScanEngine::Read,
            "auto: not a regular file (a pipe, a socket, a device) reads as a stream",
        ),
        ScanChoice::Only(engine) => (engine, "asked for"),
    };
    let (wanted, mut fallback) = match wanted {
        engine @ (ScanEngine::Pread | ScanEngine::Mmap | ScanEngine::Direct) if !regular => (
            ScanEngine::Read,
            Some(format!("{engine}: not a regular file; read instead")),
        ),
        engine => (engine, None),
    };
    let mut bytes = 0;
    let mut helper = Rusage::default();
    let engine = match wanted {
        ScanEngine::Read => {
            helper = read(file, regular, buffer, &mut syscalls, &mut bytes, consume)?;
            ScanEngine::Read
        }
        ScanEngine::Pread => {
            let (n, usage) =
                pread::scan(file, &mut syscalls, consume).map_err(|e| io("pread", e))?;
            bytes = n;
            helper = usage;
            ScanEngine::Pread
        }
        ScanEngine::Mmap => match mmap::mmap(
            file,
            size,
            choice != ScanChoice::AutoInPlace,
            &mut syscalls,
            &mut bytes,
            consume,
        ) {
            Ok(usage) => {
                helper = usage;
                // A size that lies (procfs and sysfs say 0 or 4096) or a file that
                // grew: what lies past the mapped size is read, not lost.
                read(file, true, TAIL_BUFFER, &mut syscalls, &mut bytes, consume)?;
                ScanEngine::Mmap
            }
            // ENODEV: the file system cannot map this file (sysfs attributes, some
            // character devices); nothing was consumed yet.
            Err(Error::ScanIo { cause: source, .. })
                if bytes == 0 && source.raw_os_error() == Some(libc::ENODEV) =>
            {
                fallback =
                    Some("mmap: the file system cannot map it (ENODEV); read instead".into());
                helper = read(file, regular, buffer, &mut syscalls, &mut bytes, consume)?;
                ScanEngine::Read
            }
            Err(e) => return Err(e),
        },
        ScanEngine::Direct => match DirectFile::reopen(file) {
            Ok(direct) => {
                read_direct(&direct, buffer, &mut syscalls, &mut bytes, consume)?;
                ScanEngine::Direct
            }
            // EINVAL: tmpfs, overlayfs on older kernels and some FUSE mounts refuse O_DIRECT.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                fallback =
                    Some("direct: the file system refuses O_DIRECT (EINVAL); read instead".into());
                helper = read(file, regular, buffer, &mut syscalls, &mut bytes, consume)?;
                ScanEngine::Read
            }
            Err(e) => return Err(io("open(O_DIRECT)", e)),
        },
    };
    Ok(ScanReport {
        engine,
        fallback,
        why,
        bytes,
        elapsed: started.elapsed(),
        syscalls,
        rusage: Rusage::thread().since(&usage) + helper,
    })
}

fn io(syscall: &'static str, source: std::io::Error) -> Error {
    Error::ScanIo {
        syscall,
        cause: source,
    }
}

/// The buffer that reads what lies past a mapped file's reported size.
const TAIL_BUFFER: usize = 64 << 10;

/// Buffers at least this large are filled by a helper thread while the consumer
/// works on the previous one; smaller ones (the seed's 1 KiB) are read inline, where
/// a hand-off per buffer would cost more than it overlaps.
pub const PIPELINE_MIN: usize = 1 << 20;

/// What the reading thread hands over: a filled buffer and its length, or the
/// failed call.
type Filled = Result<(AlignedBuf, usize), (Syscall, std::io::Error)>;

/// A page-aligned buffer of `len` usable bytes: the kernel copies into page-aligned
/// memory about 4× faster than into glibc's usual page + 16 (measured on the EPYC
/// VM of issue 9), and every I/O buffer of a scan is one.
fn page_buffer(len: usize) -> AlignedBuf {
    AlignedBuf::new(len, rustix::param::page_size())
}

fn read(
    file: &File,
    positional: bool,
    buffer: usize,
    syscalls: &mut Syscalls,
    bytes: &mut u64,
    consume: &mut dyn FnMut(&[u8]),
) -> Result<Rusage, Error> {
    let buffer = buffer.max(1);
    if buffer < PIPELINE_MIN {
        let mut buf = page_buffer(buffer);
        while let Some(n) = fill(
            file,
            positional,
            *bytes,
            &mut buf.as_mut_slice()[..buffer],
            syscalls,
        )
        .map_err(|(call, e)| io(call.name(), e))?
        {
            consume(buf.filled(n));
            *bytes += n as u64;
        }
        return Ok(Rusage::default());
    }
    let (filled_tx, filled_rx) = std::sync::mpsc::sync_channel::<Filled>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<AlignedBuf>();
    for _ in 0..2 {
        empty_tx
            .send(page_buffer(buffer))
            .expect("the receiver is alive");
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let usage = Rusage::thread();
            let mut count = Syscalls::default();
            let mut pos = 0;
            for mut buf in empty_rx {
                let item = match fill(
                    file,
                    positional,
                    pos,
                    &mut buf.as_mut_slice()[..buffer],
                    &mut count,
                ) {
                    Ok(None) => break,
                    Ok(Some(n)) => {
                        pos += n as u64;
                        Ok((buf, n))
                    }
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if filled_tx.send(item).is_err() || failed {
                    break;
                }
            }
            (count, Rusage::thread().since(&usage))
        });
        let mut result = Ok(());
        for item in filled_rx.iter() {
            match item {
                Ok((buf, n)) => {
                    consume(buf.filled(n));
                    *bytes += n as u64;
                    // The reader is gone only after an error or the end, reported here.
                    let _ = empty_tx.send(buf);
                }
                Err((call, e)) => {
                    result = Err(io(call.name(), e));
                    break;
                }
            }
        }
        drop(filled_rx);
        drop(empty_tx);
        let (count, usage) = reader.join().expect("the reading thread does not panic");
        syscalls.add(&count);
        result.map(|()| usage)
    })
}

/// One `pread` (positional) or `read` into `buf`, retried on `EINTR`; `None` at the end.
fn fill(
    file: &File,
    positional: bool,
    pos: u64,
    buf: &mut [u8],
    syscalls: &mut Syscalls,
) -> Result<Option<usize>, (Syscall, std::io::Error)> {
    loop {
        let (call, result) = if positional {
            (Syscall::Pread, rustix::io::pread(file, &mut *buf, pos))
        } else {
            (Syscall::Read, rustix::io::read(file, &mut *buf))
        };
        syscalls.count(call);
        match result {
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Some(n)),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err((call, e.into())),
        }
    }
}

fn read_direct(
    direct: &DirectFile,
    buffer: usize,
    syscalls: &mut Syscalls,
    bytes: &mut u64,
    consume: &mut dyn FnMut(&[u8]),
) -> Result<(), Error> {
    let mut buf = AlignedBuf::new(
        buffer.max(direct.offset_align),
        direct
            .mem_align
            .max(direct.offset_align)
            .max(rustix::param::page_size()),
    );
    loop {
        syscalls.count(Syscall::Pread);
        let n = direct
            .read_at(&mut buf, *bytes)
            .map_err(|e| io("pread(O_DIRECT)", e))?;
        if n == 0 {
            return Ok(());
        }
        consume(buf.filled(n));
        *bytes += n as u64;
        if n % direct.offset_align != 0 {
            return Ok(()); // a short, unaligned read is the tail of the file
        }
    }
}
