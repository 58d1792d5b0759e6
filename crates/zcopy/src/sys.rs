//! The few calls rustix does not wrap, through `libc`, each in one small function.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

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
pub(crate) fn getrusage(who: RusageWho) -> libc::rusage {
    let who = match who {
        RusageWho::Thread => libc::RUSAGE_THREAD,
        RusageWho::Process => libc::RUSAGE_SELF,
        RusageWho::Children => libc::RUSAGE_CHILDREN,
    };
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; `who` is one of the three values
    // the kernel accepts, so the call cannot fail and fills the struct.
    unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    }
}

/// The syscalls [`syscall_is_missing`] can probe.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Probe {
    CopyFileRange,
    Sendfile,
    Splice,
}

/// Whether `call` is missing or forbidden in this process, as opposed to refused
/// for the files at hand: the call is made with invalid descriptors, which a
/// working syscall answers with `EBADF`, and a missing or filtered one with `ENOSYS`
/// or `EPERM` (Rust std's probe for copy_file_range).
pub(crate) fn syscall_is_missing(call: Probe) -> bool {
    // SAFETY: every call gets descriptor -1 and null offsets; the kernel checks the
    // descriptors first and touches no memory of ours.
    let result = unsafe {
        match call {
            Probe::CopyFileRange => libc::syscall(
                libc::SYS_copy_file_range,
                -1,
                std::ptr::null_mut::<libc::loff_t>(),
                -1,
                std::ptr::null_mut::<libc::loff_t>(),
                1usize,
                0u32,
            ),
            Probe::Sendfile => libc::sendfile(-1, -1, std::ptr::null_mut(), 1) as libc::c_long,
            Probe::Splice => libc::splice(-1, std::ptr::null_mut(), -1, std::ptr::null_mut(), 1, 0)
                as libc::c_long,
        }
    };
    result == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
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

/// The page size, read before the handler is installed: the handler must not call
/// anything that might initialise state lazily.
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// The SIGBUS action we replaced, to which faults outside our ranges are passed.
static PREVIOUS: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

fn install_sigbus_handler() {
    PAGE.store(rustix::param::page_size(), Ordering::Release);
    // SAFETY: a zeroed sigaction is valid; the handler below only does
    // async-signal-safe work (atomics, mmap, sigaction, calling the old handler).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
            let _ = PREVIOUS.set(previous);
        }
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Acquire);
    for slot in 0..SLOTS {
        let start = STARTS[slot].load(Ordering::Acquire);
        let len = LENS[slot].load(Ordering::Acquire);
        if len != usize::MAX && start <= addr && addr < start.saturating_add(len) {
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
    // Not ours: chain to the handler we replaced, or, if it was the default (or
    // ignored, which the kernel does not honour for a real fault), restore the
    // default action; returning re-runs the faulting access, which then ends the
    // process with SIGBUS as it would have without us.
    match PREVIOUS.get() {
        Some(previous) if previous.sa_sigaction > libc::SIG_IGN => {
            let handler = previous.sa_sigaction;
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous action was installed with SA_SIGINFO, so its
                // handler takes these three arguments.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                handler(sig, info, ctx);
            } else {
                // SAFETY: without SA_SIGINFO the previous handler takes the signal number.
                let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                handler(sig);
            }
        }
        // SAFETY: restoring the default action with sigaction is async-signal-safe.
        _ => unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        },
    }
}

/// `SO_ZEROCOPY` from `asm-generic/socket.h` (the `libc` crate lacks it); alpha,
/// mips, parisc and sparc number it differently and are not supported.
const SO_ZEROCOPY: libc::c_int = 60;
/// `SO_EE_ORIGIN_ZEROCOPY` from `linux/errqueue.h`.
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED` from `linux/errqueue.h`.
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// `setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, 1)`—allows `send(MSG_ZEROCOPY)` on a
/// socket (Linux 4.14; TCP since 4.14, UDP since 5.0). `EOPNOTSUPP` for other
/// families (Unix sockets), `ENOPROTOOPT` on older kernels.
///
/// # References
///  - [MSG_ZEROCOPY](https://docs.kernel.org/networking/msg_zerocopy.html)
pub(crate) fn set_zerocopy(fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid c_int for the duration of the call, and its size is
    // the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    errno_of(rc as isize).map(drop)
}

/// `getsockopt(fd, SOL_SOCKET, SO_ZEROCOPY)`—whether zero-copy sends are on.
///
/// # References
///  - [MSG_ZEROCOPY](https://docs.kernel.org/networking/msg_zerocopy.html)
pub(crate) fn zerocopy_enabled(fd: BorrowedFd<'_>) -> rustix::io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid and writable for the duration of the
    // call, and `len` holds the size of `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    errno_of(rc as isize).map(|_| value != 0)
}

/// `send(fd, buf, len, MSG_ZEROCOPY | MSG_NOSIGNAL)`—queues `len` bytes at `buf`
/// for sending without copying them: the kernel pins the pages and reads them
/// when it transmits, after this call has returned.
///
/// # Safety
///
/// The `len` bytes at `buf` must stay allocated and unmodified until the kernel
/// reports this send complete on the socket's error queue ([`zerocopy_completion`]).
///
/// # References
///  - [send(2)](https://man7.org/linux/man-pages/man2/send.2.html),
///    [MSG_ZEROCOPY](https://docs.kernel.org/networking/msg_zerocopy.html)
pub(crate) unsafe fn send_zerocopy(
    fd: BorrowedFd<'_>,
    buf: *const u8,
    len: usize,
) -> rustix::io::Result<usize> {
    let flags = libc::MSG_ZEROCOPY | libc::MSG_NOSIGNAL;
    // SAFETY: the caller guarantees `buf..buf + len` is readable until completion.
    let rc = unsafe { libc::send(fd.as_raw_fd(), buf.cast(), len, flags) };
    errno_of(rc).map(|n| n as usize)
}

/// One notification from a socket's error queue.
pub(crate) enum ErrQueue {
    /// Zero-copy sends `lo..=hi` (numbered from 0 in the order they were issued)
    /// are complete; `copied` when the kernel copied their bytes after all.
    Zerocopy { lo: u32, hi: u32, copied: bool },
    /// Something else (an ICMP error, a timestamp), not ours to act on.
    Other,
}

/// `recvmsg(fd, MSG_ERRQUEUE | MSG_DONTWAIT)`—the next notification on the error
/// queue; `EAGAIN` when there is none.
///
/// # References
///  - [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html),
///    [ip(7)](https://man7.org/linux/man-pages/man7/ip.7.html) `IP_RECVERR`,
///    [MSG_ZEROCOPY](https://docs.kernel.org/networking/msg_zerocopy.html)
pub(crate) fn zerocopy_completion(fd: BorrowedFd<'_>) -> rustix::io::Result<ErrQueue> {
    // Room for one control message carrying a `sock_extended_err` and an address.
    let mut control = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid (no name, no iovec).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `control`, which outlives the call and whose size is
    // the length given; there is no data buffer to fill.
    let rc = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    errno_of(rc)?;
    // SAFETY: the kernel filled `msg_control` with `msg_controllen` bytes of
    // well-formed control messages; CMSG_FIRSTHDR/NXTHDR stay within them.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and inside the control buffer (see above).
        let header = unsafe { &*cmsg };
        let recverr = (header.cmsg_level == libc::SOL_IP && header.cmsg_type == libc::IP_RECVERR)
            || (header.cmsg_level == libc::SOL_IPV6 && header.cmsg_type == libc::IPV6_RECVERR);
        let size = std::mem::size_of::<libc::sock_extended_err>();
        // SAFETY: CMSG_LEN is arithmetic on its argument.
        if recverr && header.cmsg_len as usize >= unsafe { libc::CMSG_LEN(size as u32) } as usize {
            // SAFETY: the message is an IP(V6)_RECVERR long enough to hold a
            // sock_extended_err; the data may be unaligned, hence read_unaligned.
            let err = unsafe {
                std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>())
            };
            if err.ee_origin == SO_EE_ORIGIN_ZEROCOPY && err.ee_errno == 0 {
                return Ok(ErrQueue::Zerocopy {
                    lo: err.ee_info,
                    hi: err.ee_data,
                    copied: err.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(ErrQueue::Other)
}

/// A libc return value as rustix's result: -1 is `errno`.
fn errno_of(rc: isize) -> rustix::io::Result<isize> {
    if rc == -1 {
        Err(rustix::io::Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    } else {
        Ok(rc)
    }
}

/// `ioctl(dst, FICLONERANGE, {src, src_offset, len, dst_offset})`—shares `len`
/// bytes of `src` at `src_offset` with `dst` at `dst_offset`; rustix wraps only
/// FICLONE. `len` 0 means to the end of `src`.
///
/// # References
///  - [ioctl_ficlonerange(2)](https://man7.org/linux/man-pages/man2/ioctl_ficlonerange.2.html)
pub(crate) fn ficlonerange(
    src: BorrowedFd<'_>,
    src_offset: u64,
    len: u64,
    dst: BorrowedFd<'_>,
    dst_offset: u64,
) -> std::io::Result<()> {
    let range = libc::file_clone_range {
        src_fd: i64::from(src.as_raw_fd()),
        src_offset,
        src_length: len,
        dest_offset: dst_offset,
    };
    // SAFETY: `range` is a valid `file_clone_range` the kernel only reads during
    // the call; both descriptors are borrowed for its duration.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONERANGE, &range) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
