//! The seeds' model of each path (DESIGN.md's table) and what a measurement says
//! about it.

use zcopy::{Engine, ScanEngine, Syscall};

use crate::jobs::{How, Job, Row, SMALL_FILE};
use crate::measured::Measured;

/// What the seeds claim for a row's path.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// User↔kernel switches per chunk, where the seeds count them.
    pub switches: Option<u32>,
    pub dma_copies: Option<u32>,
    pub cpu_copies: Option<u32>,
    /// The seeds' words for the path.
    pub note: &'static str,
}

const fn model(switches: u32, dma: u32, cpu: u32, note: &'static str) -> Model {
    Model {
        switches: Some(switches),
        dma_copies: Some(dma),
        cpu_copies: Some(cpu),
        note,
    }
}

const fn words(note: &'static str) -> Model {
    Model {
        switches: None,
        dma_copies: None,
        cpu_copies: None,
        note,
    }
}

/// The seeds' model for `row`.
pub fn of(row: &Row) -> Model {
    match row.how {
        How::Transfer { engine, .. } => match engine {
            Engine::ReadWrite => model(4, 2, 2, "traditional I/O: read + write"),
            Engine::Mmap => model(4, 2, 1, "mmap + write"),
            Engine::Sendfile => model(2, 2, 1, "sendfile (0 CPU copies with SG-DMA)"),
            Engine::Splice => words("not in the seeds: splice through a pipe, no user-space copy"),
            Engine::CopyFileRange => words("not in the seeds: in-kernel file copy"),
            Engine::IoUring => words(
                "not in the seeds: splice through a pipe as io_uring operations, 8 pipefuls per io_uring_enter",
            ),
            Engine::MsgZerocopy => Model {
                switches: None,
                dma_copies: Some(2),
                cpu_copies: Some(1),
                note: "not in the seeds: read into a buffer (1 CPU copy), then send(MSG_ZEROCOPY): 0 CPU copies on a NIC that supports it",
            },
        },
        How::SendZc { .. } => Model {
            switches: None,
            dma_copies: Some(2),
            cpu_copies: Some(1),
            note: "not in the seeds: read into registered buffers (1 CPU copy), then io_uring SEND_ZC: 0 CPU copies on a NIC that supports it",
        },
        How::Scan { engine, .. } => match engine {
            ScanEngine::Read => model(
                2,
                1,
                1,
                "FileReader: read copies the page cache into the buffer",
            ),
            ScanEngine::Pread => model(
                2,
                1,
                1,
                "FileReader on two threads: pread copies into page-aligned chunks",
            ),
            ScanEngine::Mmap => model(
                2,
                1,
                0,
                "MmapFileReader: user space reads the page cache in place",
            ),
            ScanEngine::Direct => words("direct I/O: bypasses the kernel page cache"),
        },
    }
}

/// What a measurement says about the model: a sentence, and whether the parts of
/// the model it can test held (`None` where it tests none).
pub struct Check {
    pub text: String,
    pub holds: Option<bool>,
}

impl Check {
    /// The check in a word, for the table.
    pub fn word(&self) -> &'static str {
        match self.holds {
            Some(true) => "holds",
            Some(false) => "differs",
            None => "-",
        }
    }
}

/// Whether the measurement bears the model out.
pub fn check(row: &Row, m: &Measured) -> Check {
    let s = &m.median;
    let gib = s.bytes as f64 / (1u64 << 30) as f64;
    let total = s.syscalls.total() as f64;
    let model = of(row);
    let mut out = Vec::new();
    let mut held = Vec::new();
    let mut verdict = |holds: bool| {
        held.push(holds);
        if holds {
            "holds"
        } else {
            "does not hold"
        }
    };
    let small = matches!(row.job, Job::Small | Job::Serve);
    match (row.how, row.buffer()) {
        (
            How::Transfer {
                engine: Engine::ReadWrite,
                ..
            },
            Some(buffer),
        ) => {
            let buffer = if small { SMALL_FILE as usize } else { buffer };
            let chunks = (s.bytes as f64 / buffer as f64).max(1.0);
            let per_chunk = total / chunks;
            out.push(format!(
                "{per_chunk:.1} syscalls per {} chunk = {:.1} switches (model {}): {}",
                zcopy::size::human(buffer as u64),
                2.0 * per_chunk,
                model.switches.unwrap_or(0),
                verdict((2.0 * per_chunk - 4.0).abs() < 0.5)
            ));
        }
        (
            How::Transfer {
                engine: Engine::Sendfile,
                ..
            },
            _,
        ) if small => {
            let per_file =
                s.syscalls.get(Syscall::Sendfile) as f64 / (s.bytes / SMALL_FILE).max(1) as f64;
            out.push(format!(
                "{per_file:.1} sendfile calls per 4 KiB file = {:.1} switches (model 2): {}",
                2.0 * per_file,
                verdict((2.0 * per_file - 2.0).abs() < 0.5)
            ));
        }
        (
            How::Transfer {
                engine: Engine::Sendfile,
                ..
            },
            _,
        ) => {
            let calls = s.syscalls.get(Syscall::Sendfile);
            let read_write = 4.0 * s.bytes as f64 / (128u64 << 10) as f64;
            out.push(format!(
                "{calls} sendfile calls = {} switches, against {read_write:.0} for read-write with 128 KiB chunks: fewer switches {}",
                2 * calls,
                verdict(2.0 * (calls as f64) < read_write.max(2.0))
            ));
        }
        (
            How::Scan {
                engine: ScanEngine::Read,
                ..
            },
            Some(buffer),
        ) => {
            let per_chunk = total / (s.bytes as f64 / buffer as f64).max(1.0);
            out.push(format!(
                "{per_chunk:.2} syscalls per {} read",
                zcopy::size::human(buffer as u64)
            ));
        }
        _ => {}
    }
    if matches!(
        row.how,
        How::Transfer {
            engine: Engine::MsgZerocopy,
            ..
        } | How::SendZc { .. }
    ) {
        let zc = s.zerocopy;
        out.push(format!(
            "the send: 0 CPU copies on a NIC that supports it; on this path the kernel reported {} of {} copied{}",
            zc.copied,
            zc.completions,
            if zc.copied > 0 { " (loopback delivers to this host, which must not keep our pages)" } else { "" }
        ));
    }
    if let How::Transfer {
        engine: Engine::IoUring,
        ..
    }
    | How::SendZc { .. } = row.how
    {
        out.push(format!(
            "{:.1} io_uring_enter per GiB; CPU counts the kernel's io-wq workers",
            s.syscalls.get(Syscall::IoUringEnter) as f64 / gib.max(f64::MIN_POSITIVE)
        ));
    }
    out.push(format!(
        "engine side {:.3} s user CPU/GiB",
        s.side.user.as_secs_f64() / gib.max(f64::MIN_POSITIVE)
    ));
    if let Some(counts) = m.counts {
        let [_, _, inserts, skb] = counts;
        if let How::Scan {
            engine: ScanEngine::Direct,
            ..
        } = row.how
        {
            out.push(format!(
                "{inserts} page-cache inserts: {}",
                verdict(inserts == 0)
            ));
        } else if m.cold {
            out.push(format!("{inserts} page-cache inserts (cold cache)"));
        }
        let reads_socket = matches!(
            row.how,
            How::Transfer {
                engine: Engine::ReadWrite,
                ..
            }
        );
        match row.job {
            Job::Recv | Job::Echo if reads_socket => out.push(format!(
                "{skb} skb copies{}: the receiving side's copy into user space, which loopback cannot avoid",
                m.skb_bytes.map_or_else(String::new, |b| format!(" of {}", zcopy::size::human(b)))
            )),
            Job::Serve => out.push(format!("{skb} skb copies: the client reads each response into user space")),
            Job::Send | Job::Small | Job::Echo | Job::Recv => {
                out.push(format!("{skb} skb copies: every receiving side splices, so none copies into user space"))
            }
            Job::Cp | Job::Scan => {}
        }
    }
    Check {
        text: out.join("; "),
        holds: (!held.is_empty()).then(|| held.iter().all(|&h| h)),
    }
}
