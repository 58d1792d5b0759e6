//! The few calls rustix does not wrap, through `libc`, each in one small function.

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
