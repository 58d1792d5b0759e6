//! Stop signals as messages: a session blocks SIGINT and SIGTERM and waits for
//! them on a thread of its own, which removes what cannot resume before exiting
//! (libc's signal masks, which rustix does not wrap).

/// Blocks SIGINT and SIGTERM in the calling thread and the threads it starts, so
/// that [`wait_for_stop_signal`] receives them instead of the default action.
pub fn block_stop_signals() {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits until SIGINT or SIGTERM arrives (both blocked by [`block_stop_signals`])
/// and returns its number.
pub fn wait_for_stop_signal() -> i32 {
    // SAFETY: as above; sigwait stores the signal number in `sig`.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}
