//! The pread pair: two threads take turns, each reading a chunk into its own
//! page-aligned buffer and consuming it when its turn comes.
//!
//! A regular file is cut into chunks of [`CHUNK`] bytes. Two threads (the caller's
//! and a helper) claim chunks with one atomic counter and fill them with `pread`.
//! Chunks are consumed in file order: the thread that read chunk `k` waits until
//! chunk `k - 1` has been consumed, hands chunk `k` to `consume`, passes the turn
//! on and claims the next chunk. In the steady state neither waits: while one
//! thread consumes, the other is still in its `pread`.
//!
//! Why this shape, measured on a 2-core VM (see docs/benchmarks.md): the kernel's copy
//! into the buffer and the digest share the two cores instead of alternating on one;
//! page-aligned destinations copy about 4× faster than glibc's page + 16 ones; and
//! each chunk is consumed by the core that copied it, while it is still in that
//! core's L2 cache. An earlier ring, where one thread consumed every chunk whichever
//! thread read it, hashed XXH3 at 18 GB/s from the other core's cache against
//! 40 GB/s from its own. Unlike mmap there are no page faults to take and no
//! single-threaded `munmap` at the end.

use std::fs::File;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::Thread;

use crate::engine::direct::AlignedBuf;
use crate::report::{Rusage, Syscalls};

/// Bytes per chunk: large enough that a `pread` costs little per byte, small
/// enough that the chunk is still in the L2 cache when it is consumed.
pub const CHUNK: usize = 256 << 10;
/// Spins before a thread waiting for its turn sleeps: a turn usually comes within
/// a few microseconds (the other thread finishing a digest), a sleep and a wake-up
/// cost more than that.
const SPINS: u32 = 4096;

/// The consumer, the bytes it has been given, and the first failure, in file order.
struct Consumer<'c> {
    consume: &'c mut (dyn FnMut(&[u8]) + Send),
    bytes: u64,
    error: Option<std::io::Error>,
}

struct Pair<'f, 'c> {
    file: &'f File,
    /// The next chunk to claim.
    next: AtomicU64,
    /// The chunk whose turn it is to be consumed.
    turn: AtomicU64,
    /// Set at the end of the file, on a failure, or when a thread unwinds: both
    /// threads stop.
    stop: AtomicBool,
    consumer: Mutex<Consumer<'c>>,
}

/// Reads the regular file `file` from its start to its end on two threads and
/// hands every byte to `consume`, in order (from either thread, one call at a
/// time). Returns the bytes, the helper's resource usage, or the failed call.
pub fn scan(
    file: &File,
    syscalls: &mut Syscalls,
    consume: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(u64, Rusage), std::io::Error> {
    let pair = Pair {
        file,
        next: AtomicU64::new(0),
        turn: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        consumer: Mutex::new(Consumer {
            consume,
            bytes: 0,
            error: None,
        }),
    };
    let caller = std::thread::current();
    let (count, usage) = std::thread::scope(|s| {
        let helper = s.spawn(|| {
            let usage = Rusage::thread();
            let mut count = Syscalls::default();
            take_turns(&pair, &caller, &mut count);
            (count, Rusage::thread().since(&usage))
        });
        take_turns(&pair, helper.thread(), syscalls);
        helper.join().unwrap_or_else(|panic| resume_unwind(panic))
    });
    syscalls.add(&count);
    let consumer = pair
        .consumer
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match consumer.error {
        Some(e) => Err(e),
        None => Ok((consumer.bytes, usage)),
    }
}

/// Stops the other thread when dropped: at the end, on a failure, or while
/// unwinding from a panic in `consume` (it would otherwise wait for a turn that
/// never comes, and the scope for it).
struct Stop<'p, 'f, 'c>(&'p Pair<'f, 'c>, &'p Thread);

impl Drop for Stop<'_, '_, '_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
        self.1.unpark();
    }
}

/// One thread's part: claim, read, wait for the turn, consume, until the end.
fn take_turns(pair: &Pair, other: &Thread, syscalls: &mut Syscalls) {
    let _stop = Stop(pair, other);
    let mut buf = AlignedBuf::new(CHUNK, rustix::param::page_size());
    while !pair.stop.load(Ordering::Acquire) {
        let k = pair.next.fetch_add(1, Ordering::AcqRel);
        let read = read_chunk(pair.file, k, buf.as_mut_slice(), syscalls);
        if !wait_for_turn(pair, k) {
            return;
        }
        let mut consumer = pair.consumer.lock().unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(len) => {
                if len > 0 {
                    (consumer.consume)(buf.filled(len));
                    consumer.bytes += len as u64;
                }
                if len < CHUNK {
                    // The end of the file. A chunk claimed past it is not consumed
                    // even if the file grew meanwhile: the bytes stay contiguous.
                    return;
                }
            }
            Err(e) => {
                consumer.error = Some(e);
                return;
            }
        }
        drop(consumer);
        pair.turn.store(k + 1, Ordering::Release);
        other.unpark();
    }
}

/// Reads chunk `k` whole (fewer bytes only at the end of the file), retrying on
/// `EINTR`.
fn read_chunk(
    file: &File,
    k: u64,
    buf: &mut [u8],
    syscalls: &mut Syscalls,
) -> Result<usize, std::io::Error> {
    let start = k * CHUNK as u64;
    let mut len = 0;
    while len < CHUNK {
        match super::fill(file, true, start + len as u64, &mut buf[len..], syscalls) {
            Ok(Some(n)) => len += n,
            Ok(None) => break,
            Err((_, e)) => return Err(e),
        }
    }
    Ok(len)
}

/// Waits until chunk `k` may be consumed; false if the pair stopped instead.
fn wait_for_turn(pair: &Pair, k: u64) -> bool {
    let mut spins = 0;
    loop {
        if pair.stop.load(Ordering::Acquire) {
            return false;
        }
        if pair.turn.load(Ordering::Acquire) == k {
            return true;
        }
        if spins < SPINS {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::park();
        }
    }
}
