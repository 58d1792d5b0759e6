//! The mmap scan engine: the whole file mapped, a helper filling the page tables
//! of the next window while the consumer reads this one, and SIGBUS survived.

use std::fs::File;

use memmap2::{Advice, MmapOptions, UncheckedAdvice};

use super::io;
use crate::report::{Rusage, Syscall, Syscalls};
use crate::sys::SigbusGuard;
use crate::Error;

/// Bytes populated and read at a time: small enough that the first window,
/// populated before any reading can start, is a short wait, large enough that
/// the `madvise` calls cost little per byte.
const SCAN_WINDOW: usize = 16 << 20;

/// Maps the whole file and hands it to `consume`. With `populate_ahead` and more
/// than one window, a helper thread fills the page tables of the next window
/// (`MADV_POPULATE_READ`) while `consume` reads this one: populating costs 55–75 ms
/// per GiB of 4 KiB–1 MiB page-cache folios (under 2 ms for 2 MiB folios, which
/// map whole), about what XXH3 takes to read the bytes, and the consumer takes no
/// page faults. The consumer then drops the window's page tables
/// (`MADV_DONTNEED`): like the populate, it holds the address space's lock only to
/// read, so neither thread waits for the other, as it would for an `munmap`.
/// Without `populate_ahead` (a consumer on every core, which a helper would slow
/// down), the whole mapping goes to `consume` in one call, faults and all, as b3sum
/// does. Returns the helper's usage.
pub(super) fn mmap(
    file: &File,
    size: u64,
    populate_ahead: bool,
    syscalls: &mut Syscalls,
    bytes: &mut u64,
    consume: &mut dyn FnMut(&[u8]),
) -> Result<Rusage, Error> {
    if size == 0 {
        return Ok(Rusage::default());
    }
    let len = usize::try_from(size)
        .map_err(|_| io("mmap", std::io::Error::from_raw_os_error(libc::EFBIG)))?;
    syscalls.count(Syscall::Mmap);
    // SAFETY: the mapping is only read under a SigbusGuard (below), so a page lost
    // to truncation reads as zeros and is reported, never a crash; the bytes are
    // read only, never written.
    let map = unsafe { MmapOptions::new().len(len).map(file) }.map_err(|e| io("mmap", e))?;
    syscalls.count(Syscall::Madvise);
    // Readahead is only a hint: a kernel that refuses it still maps correctly.
    let _ = map.advise(Advice::Sequential);
    let Some(guard) = SigbusGuard::new(map.as_ptr(), map.len()) else {
        return Err(io(
            "mmap",
            std::io::Error::other("too many mapped scans at once"),
        ));
    };
    let windows = (0..len)
        .step_by(SCAN_WINDOW)
        .map(|at| at..len.min(at + SCAN_WINDOW));
    let mut result = Ok(());
    let mut read_window = |window: std::ops::Range<usize>, syscalls: &mut Syscalls| {
        consume(&map[window.clone()]);
        if guard.faulted() {
            return false;
        }
        *bytes += window.len() as u64;
        syscalls.count(Syscall::Madvise);
        // SAFETY: the mapping is private, read-only and of a file: dropping its
        // page tables loses nothing, a later read would fault the file's pages in
        // again. Failing, it only leaves them mapped until the munmap.
        let _ = unsafe {
            map.unchecked_advise_range(UncheckedAdvice::DontNeed, window.start, window.len())
        };
        true
    };
    let usage = if !populate_ahead || len <= SCAN_WINDOW {
        if populate_ahead {
            populate(&map, 0..len, syscalls);
        }
        if !read_window(0..len, syscalls) {
            result = Err(());
        }
        Rusage::default()
    } else {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        std::thread::scope(|s| {
            let map = &map;
            let windows = windows.clone();
            let populator = s.spawn(move || {
                let usage = Rusage::thread();
                let mut count = Syscalls::default();
                for window in windows {
                    populate(map, window.clone(), &mut count);
                    if ready_tx.send(window).is_err() {
                        break;
                    }
                }
                (count, Rusage::thread().since(&usage))
            });
            for window in ready_rx.iter() {
                if !read_window(window, syscalls) {
                    result = Err(());
                    break;
                }
            }
            // The populator stops at its next send once the receiver is gone.
            drop(ready_rx);
            let (count, usage) = populator
                .join()
                .expect("the populating thread does not panic");
            syscalls.add(&count);
            usage
        })
    };
    drop(guard);
    syscalls.count(Syscall::Munmap);
    drop(map);
    if result.is_err() {
        syscalls.count(Syscall::Fstat);
        return Err(match rustix::fs::fstat(file) {
            Ok(st) => Error::SourceShrank {
                size: st.st_size as u64,
            },
            Err(e) => io("fstat", e.into()),
        });
    }
    Ok(usage)
}

/// Fills the page tables of `window` (`MADV_POPULATE_READ`, Linux 5.14), so that
/// reading it takes no page faults. A hint: a kernel without it (EINVAL) faults
/// the pages in as they are read, and a file that shrank fails it (EFAULT) and is
/// caught by the guard when read.
fn populate(map: &memmap2::Mmap, window: std::ops::Range<usize>, syscalls: &mut Syscalls) {
    syscalls.count(Syscall::Madvise);
    let _ = map.advise_range(Advice::PopulateRead, window.start, window.len());
}
