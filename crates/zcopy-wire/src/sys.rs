//! The socket options rustix does not wrap, through `libc`, each in one small function.

/// setsockopt(fd, IPPROTO_TCP, TCP_ULP, name) — attaches an upper layer protocol
/// ("tls" for kTLS) to a connected TCP socket; rustix has no wrapper.
///
/// # References
/// - tcp(7), <https://docs.kernel.org/networking/tls.html>
pub fn set_tcp_ulp(socket: &impl std::os::fd::AsFd, name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the name's bytes are valid for their length during the call, and the
    // descriptor is borrowed for the call's duration.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// setsockopt(fd, SOL_TLS, TLS_TX or TLS_RX, crypto_info) — hands one direction's
/// TLS keys to the kernel (`info`: the bytes of a `struct tls12_crypto_info_*`,
/// built by `ktls`); the socket must have the `tls` ULP. rustix has no wrapper.
///
/// # References
/// - <https://docs.kernel.org/networking/tls.html>
pub fn set_tls_crypto_info(
    socket: &impl std::os::fd::AsFd,
    direction: libc::c_int,
    info: &[u8],
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `info` is valid for reads of its length during the call (the kernel
    // copies it and checks the length against the cipher's struct), and the
    // descriptor is borrowed for the call's duration.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_TLS,
            direction,
            info.as_ptr().cast(),
            info.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
