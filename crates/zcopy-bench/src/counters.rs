//! Kernel event counters for a bench row, through `perf_event_open(2)`: raw
//! syscalls, context switches, page-cache inserts and socket receive copies.
//!
//! Counters watch this process with `inherit`, so they count the threads a row
//! starts after they are opened (the sender, the receiver, the echo peer) once
//! those threads have been joined. They need root or a low enough
//! `kernel.perf_event_paranoid`, and tracefs for the tracepoint ids (mounted here
//! when it is not and we are root). When they cannot be opened the table shows
//! `n/a` and the reason `Counters::open` gives is printed below it.

use std::path::Path;

use perf_event::events::{Software, Tracepoint};
use perf_event::{Builder, Counter};

/// The events, in table order: (column name, tracepoint or `None` for the software
/// context-switch event).
pub const EVENTS: [(&str, Option<&str>); 4] = [
    ("raw_syscalls", Some("raw_syscalls/sys_enter")),
    ("context_switches", None),
    (
        "page_cache_inserts",
        Some("filemap/mm_filemap_add_to_page_cache"),
    ),
    ("skb_copies", Some("skb/skb_copy_datagram_iovec")),
];

const TRACEFS: &str = "/sys/kernel/tracing";

/// Counts of [`EVENTS`] over one measurement.
pub type Counts = [u64; EVENTS.len()];

/// Open counters, or the reason there are none.
pub struct Counters {
    counters: Vec<Counter>,
    baseline: Counts,
}

impl Counters {
    /// Opens one counter per event for this process and the threads it starts.
    pub fn open() -> Result<Counters, String> {
        ensure_tracefs();
        let mut counters = Vec::new();
        for (name, tracepoint) in EVENTS {
            let mut builder = match tracepoint {
                Some(tp) => Builder::new(Tracepoint::with_id(
                    tracepoint_id(tp).map_err(|e| format!("{name}: {e}"))?,
                )),
                None => Builder::new(Software::CONTEXT_SWITCHES),
            };
            let counter = builder
                .observe_self()
                .any_cpu()
                // Every one of these events happens in the kernel, which the builder
                // excludes by default.
                .include_kernel()
                .inherit(true)
                .enabled(false)
                .build()
                .map_err(|e| format!("perf_event_open for {name}: {e} (needs root or kernel.perf_event_paranoid <= 0)"))?;
            counters.push(counter);
        }
        Ok(Counters {
            counters,
            baseline: [0; EVENTS.len()],
        })
    }

    /// Starts every counter from where it stands now.
    pub fn start(&mut self) {
        // `reset` does not clear what exited child threads added to an inherited
        // counter, so each sample is measured from a baseline instead.
        for (base, c) in self.baseline.iter_mut().zip(&mut self.counters) {
            *base = c.read().unwrap_or(0);
            // A counter that cannot be enabled stays at its baseline and reads 0.
            let _ = c.enable();
        }
    }

    /// Stops every counter and reads what it counted since `start`; call after the
    /// row's threads are joined.
    pub fn stop(&mut self) -> Counts {
        let mut out = [0; EVENTS.len()];
        for ((slot, c), base) in out.iter_mut().zip(&mut self.counters).zip(self.baseline) {
            let _ = c.disable();
            *slot = c.read().unwrap_or(0).saturating_sub(base);
        }
        out
    }
}

fn tracepoint_id(name: &str) -> Result<u64, String> {
    let path = Path::new(TRACEFS).join("events").join(name).join("id");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (is tracefs mounted?)", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: not an id", path.display()))
}

/// Mounts tracefs at its usual place if it is missing and we may (root).
fn ensure_tracefs() {
    if Path::new(TRACEFS).join("events").is_dir() {
        return;
    }
    // Failure leaves the tracepoints unreadable, which `open` then explains.
    let _ = rustix::mount::mount(
        "tracefs",
        TRACEFS,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    );
}

/// Bytes copied by `skb_copy_datagram_iovec` in this process: the tracepoint
/// sampled on every CPU (each event carries its `len`), samples of other processes
/// dropped. Needs root, as every system-wide perf event does.
pub struct SkbBytes {
    samplers: Vec<perf_event::Sampler>,
    pid: u32,
}

/// Ring buffer per CPU: room for about 300,000 samples of 48 bytes between reads.
const SKB_RING: usize = 16 << 20;
/// `PERF_RECORD_SAMPLE` and `PERF_RECORD_LOST`.
const RECORD_SAMPLE: u32 = 9;
const RECORD_LOST: u32 = 2;

impl SkbBytes {
    pub fn open() -> Result<SkbBytes, String> {
        ensure_tracefs();
        let id = tracepoint_id("skb/skb_copy_datagram_iovec")?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut samplers = Vec::new();
        for cpu in 0..cpus {
            let sampler = Builder::new(Tracepoint::with_id(id))
                .any_pid()
                .one_cpu(cpu)
                .include_kernel()
                .sample(perf_event::SampleFlag::TID | perf_event::SampleFlag::RAW)
                .sample_period(1)
                .enabled(false)
                .build()
                .and_then(|c| c.sampled(SKB_RING))
                .map_err(|e| {
                    format!("sampling skb_copy_datagram_iovec on cpu {cpu}: {e} (needs root)")
                })?;
            samplers.push(sampler);
        }
        Ok(SkbBytes {
            samplers,
            pid: std::process::id(),
        })
    }

    /// Discards what is buffered and starts sampling.
    pub fn start(&mut self) {
        for s in &mut self.samplers {
            while s.next_record().is_some() {}
            let _ = s.enable();
        }
    }

    /// Stops sampling and sums the `len` of this process's samples; `None` if the
    /// ring buffer overflowed and samples were lost.
    pub fn stop(&mut self) -> Option<u64> {
        let mut bytes = 0u64;
        let mut lost = false;
        for s in &mut self.samplers {
            let _ = s.disable();
            while let Some(record) = s.next_record() {
                match record.ty() {
                    RECORD_LOST => lost = true,
                    RECORD_SAMPLE => {
                        let data = record.to_contiguous();
                        // pid, tid; raw size; raw: common fields (8), skbaddr (8), len (4).
                        let field = |at: usize| {
                            data.get(at..at + 4)
                                .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
                        };
                        if field(0) == Some(self.pid) {
                            bytes += u64::from(field(12 + 16).unwrap_or(0));
                        }
                    }
                    _ => {}
                }
            }
        }
        (!lost).then_some(bytes)
    }
}
