//! The bench's jobs and the rows each one measures: the seed's own
//! configurations among them, each engine with the buffer it is best at.

use zcopy::{Engine, ScanEngine};

/// One kind of data movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// File → loopback socket; the peer drains with splice.
    Send,
    /// Loopback socket → file; the peer sends with sendfile.
    Recv,
    /// Socket → the same socket (the seed's Server); the peer sends and drains.
    Echo,
    /// File → file.
    Cp,
    /// File → user space, checksummed with XXH3.
    Scan,
    /// Many 4 KiB files → loopback socket: the seeds' "zero copy suits small files".
    Small,
    /// `zcopy serve`'s event loop answering GETs of a 4 KiB file on one keep-alive
    /// connection.
    Serve,
}

impl Job {
    /// Every job, in the table's order.
    pub const ALL: [Job; 7] = [
        Job::Send,
        Job::Recv,
        Job::Echo,
        Job::Cp,
        Job::Scan,
        Job::Small,
        Job::Serve,
    ];

    /// The job's name, as `--jobs` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Job::Send => "send",
            Job::Recv => "recv",
            Job::Echo => "echo",
            Job::Cp => "cp",
            Job::Scan => "scan",
            Job::Small => "small",
            Job::Serve => "serve",
        }
    }

    /// The job of this name; the error says which names there are.
    pub fn parse(name: &str) -> Result<Job, String> {
        Job::ALL
            .into_iter()
            .find(|j| j.name() == name)
            .ok_or_else(|| {
                format!("unknown job '{name}' (expected send, recv, echo, cp, scan, small, serve)")
            })
    }

    /// Which side the row's engine runs on, and so whose figures are "engine side".
    pub fn sides(self) -> (&'static str, Option<&'static str>) {
        match self {
            Job::Send | Job::Small => ("sender", Some("receiver")),
            Job::Recv => ("receiver", Some("sender")),
            Job::Echo => ("echo server", Some("client")),
            Job::Cp => ("copier", None),
            Job::Scan => ("scanner", None),
            Job::Serve => ("server", Some("client")),
        }
    }
}

/// How a row moves its bytes.
#[derive(Clone, Copy, Debug)]
pub enum How {
    Transfer {
        engine: Engine,
        buffer: usize,
    },
    Scan {
        engine: ScanEngine,
        buffer: usize,
    },
    /// The io-uring engine with `Options::send_zc`: `SEND_ZC` from registered buffers.
    SendZc {
        buffer: usize,
    },
}

/// One line of the table: a job run with one engine configuration.
#[derive(Clone, Debug)]
pub struct Row {
    pub job: Job,
    pub how: How,
    /// What the row is called in the table ("seed Client (read-write, 1 KiB)").
    pub label: String,
}

impl Row {
    /// The engine's name as on the command line (DESIGN.md's names).
    pub fn engine(&self) -> &'static str {
        match self.how {
            How::Transfer { engine, .. } => engine.name(),
            How::SendZc { .. } => Engine::IoUring.name(),
            How::Scan {
                engine: ScanEngine::Read,
                ..
            } => "read-write",
            How::Scan { engine, .. } => engine.name(),
        }
    }

    /// The read-write or scan buffer, where the engine has one.
    pub fn buffer(&self) -> Option<usize> {
        match self.how {
            How::Transfer {
                engine: Engine::ReadWrite,
                buffer,
            }
            | How::Scan {
                engine: ScanEngine::Read | ScanEngine::Direct,
                buffer,
            } => Some(buffer),
            _ => None,
        }
    }
}

/// The buffer of most rows, and of the unmeasured peer sides.
pub const BUFFER: usize = 128 << 10;
const SEED_BUFFER: usize = 1024;
const DIRECT_BUFFER: usize = 4 << 20;
/// The small-file job's file size.
pub const SMALL_FILE: u64 = 4096;

fn transfer(job: Job, engine: Engine, buffer: usize, label: &str) -> Row {
    Row {
        job,
        how: How::Transfer { engine, buffer },
        label: label.to_string(),
    }
}

fn scan(engine: ScanEngine, buffer: usize, label: &str) -> Row {
    Row {
        job: Job::Scan,
        how: How::Scan { engine, buffer },
        label: label.to_string(),
    }
}

/// Every row of `job`, the seed's own configurations among them.
pub fn rows(job: Job) -> Vec<Row> {
    use Engine::*;
    match job {
        Job::Send => vec![
            transfer(
                job,
                ReadWrite,
                SEED_BUFFER,
                "seed Client (read-write, 1 KiB)",
            ),
            transfer(job, ReadWrite, BUFFER, "read-write, 128 KiB"),
            transfer(job, Mmap, BUFFER, "mmap + write"),
            transfer(
                job,
                Sendfile,
                BUFFER,
                "sendfile = seed ClientChannel (transferTo)",
            ),
            transfer(job, Splice, BUFFER, "splice through a pipe"),
            transfer(
                job,
                IoUring,
                BUFFER,
                "io_uring: splice chains, 8 MiB per enter",
            ),
            Row {
                job,
                how: How::SendZc { buffer: BUFFER },
                label: "io_uring SEND_ZC from 128 KiB buffers".into(),
            },
            transfer(
                job,
                MsgZerocopy,
                BUFFER,
                "MSG_ZEROCOPY from 128 KiB buffers",
            ),
        ],
        Job::Recv => vec![
            transfer(job, ReadWrite, BUFFER, "read-write, 128 KiB"),
            transfer(job, Splice, BUFFER, "splice through a pipe"),
            transfer(job, IoUring, BUFFER, "io_uring: splices through a pipe"),
        ],
        Job::Echo => vec![
            transfer(
                job,
                ReadWrite,
                SEED_BUFFER,
                "seed Server (read-write, 1 KiB)",
            ),
            transfer(job, ReadWrite, BUFFER, "read-write, 128 KiB"),
            transfer(job, Splice, BUFFER, "splice through a pipe"),
            transfer(job, IoUring, BUFFER, "io_uring: splices through a pipe"),
        ],
        Job::Cp => vec![
            transfer(job, CopyFileRange, BUFFER, "copy_file_range"),
            transfer(job, Sendfile, BUFFER, "sendfile"),
            transfer(job, Splice, BUFFER, "splice through a pipe"),
            transfer(job, Mmap, BUFFER, "mmap + write"),
            transfer(job, ReadWrite, BUFFER, "read-write, 128 KiB"),
            transfer(job, IoUring, BUFFER, "io_uring: splice chains"),
        ],
        Job::Scan => vec![
            scan(
                ScanEngine::Read,
                SEED_BUFFER,
                "seed FileReader (read, 1 KiB)",
            ),
            scan(ScanEngine::Read, BUFFER, "read, 128 KiB"),
            scan(
                ScanEngine::Read,
                DIRECT_BUFFER,
                "read, 4 MiB, read ahead on a thread",
            ),
            scan(
                ScanEngine::Pread,
                zcopy::scan::PAIR_CHUNK,
                "pread pair, 256 KiB chunks, two threads (auto)",
            ),
            scan(ScanEngine::Mmap, BUFFER, "mmap = seed MmapFileReader"),
            scan(
                ScanEngine::Direct,
                DIRECT_BUFFER,
                "direct (O_DIRECT, 4 MiB)",
            ),
        ],
        Job::Small => vec![
            transfer(job, ReadWrite, BUFFER, "read-write, 4 KiB files"),
            transfer(job, Mmap, BUFFER, "mmap + write, 4 KiB files"),
            transfer(job, Sendfile, BUFFER, "sendfile, 4 KiB files"),
            transfer(job, Splice, BUFFER, "splice, 4 KiB files"),
            transfer(job, IoUring, BUFFER, "io_uring splice, 4 KiB files"),
            transfer(job, MsgZerocopy, BUFFER, "MSG_ZEROCOPY, 4 KiB files"),
        ],
        Job::Serve => vec![
            transfer(job, Sendfile, BUFFER, "zcopy serve, sendfile, 4 KiB GETs"),
            transfer(job, Splice, BUFFER, "zcopy serve, splice, 4 KiB GETs"),
            transfer(job, Mmap, BUFFER, "zcopy serve, mmap, 4 KiB GETs"),
            transfer(
                job,
                ReadWrite,
                BUFFER,
                "zcopy serve, read-write, 4 KiB GETs",
            ),
            transfer(
                job,
                IoUring,
                BUFFER,
                "zcopy serve, io_uring splice, 4 KiB GETs",
            ),
        ],
    }
}
