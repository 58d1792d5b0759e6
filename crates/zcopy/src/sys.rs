//! The few calls rustix does not wrap, through `libc`, each in one small function.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use crate::report::Rusage;

/// Whose usage `getrusage` reads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RusageWho {
    Thread,
    Process,
    Children,
}

/// `getrusage(who, &usage)`—resource usage of a thread, the process or its children.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/getrusage.2.html)
pub(crate) fn getrusage(who: RusageWho) -> Rusage {
    let who = match who {
        RusageWho::Thread => libc::RUSAGE_THREAD,
        RusageWho::Process => libc::RUSAGE_SELF,
        RusageWho::Children => libc::RUSAGE_CHILDREN,
    };
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; `who` is one of the three values
    // the kernel accepts, so the call cannot fail and fills the struct.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
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

/// Ranges of memory whose SIGBUS we turn into an error, one slot per live guard.
const SLOTS: usize = 64;
static STARTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static LENS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static FAULTED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static INSTALL: Once = Once::new();

/// A mapped range whose SIGBUS (a read past the end of a file that shrank) is
/// survived: the handler maps a zero page over the missing page, so the faulting
/// read retries and sees zeros, and marks the guard, so the reader can report the
/// shrink instead of trusting those zeros. Faults outside guarded ranges keep the
/// default action and still kill the process, as a real bug should.
pub(crate) struct SigbusGuard {
    slot: usize,
}

impl SigbusGuard {
    /// Guards `len` bytes at `start`; `None` when every slot is taken (the caller
    /// then reads another way).
    pub(crate) fn new(start: *const u8, len: usize) -> Option<SigbusGuard> {
        INSTALL.call_once(install_sigbus_handler);
        for slot in 0..SLOTS {
            if LENS[slot]
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                FAULTED[slot].store(false, Ordering::Release);
                STARTS[slot].store(start as usize, Ordering::Release);
                LENS[slot].store(len, Ordering::Release);
                return Some(SigbusGuard { slot });
            }
        }
        None
    }

    /// Whether a read in the range hit a page the file no longer has.
    pub(crate) fn faulted(&self) -> bool {
        FAULTED[self.slot].load(Ordering::Acquire)
    }
}

impl Drop for SigbusGuard {
    fn drop(&mut self) {
        STARTS[self.slot].store(0, Ordering::Release);
        LENS[self.slot].store(0, Ordering::Release);
    }
}

fn install_sigbus_handler() {
    // SAFETY: a zeroed sigaction is valid; the handler below only does
    // async-signal-safe work (atomics, mmap, sigaction).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in 0..SLOTS {
        let start = STARTS[slot].load(Ordering::Acquire);
        let len = LENS[slot].load(Ordering::Acquire);
        if len != usize::MAX && start <= addr && addr < start.saturating_add(len) {
            let page = rustix::param::page_size();
            let base = addr & !(page - 1);
            // SAFETY: `base` is a page inside a mapping this guard owns; replacing it
            // with a private zero page only changes what that mapping reads.
            let mapped = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if mapped != libc::MAP_FAILED {
                FAULTED[slot].store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: restore the default action; returning re-runs the faulting access,
    // which now ends the process with SIGBUS as it would have without us.
    // SAFETY: resetting a signal to SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}
