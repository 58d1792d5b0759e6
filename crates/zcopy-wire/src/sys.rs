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

/// What the user and group databases say, by number or by name.
pub enum Lookup<'a> {
    /// The name of user `uid` (`getpwuid_r`).
    UserName(u32),
    /// The name of group `gid` (`getgrgid_r`).
    GroupName(u32),
    /// The number of the user named so (`getpwnam_r`).
    UserId(&'a [u8]),
    /// The number of the group named so (`getgrnam_r`).
    GroupId(&'a [u8]),
}

/// getpwuid_r, getgrgid_r, getpwnam_r, getgrnam_r — one entry of the user or
/// group database (files, or whatever nsswitch.conf names): `(number, name)`,
/// `None` where there is none. rustix has no wrapper.
///
/// # References
/// - getpwnam(3), getgrnam(3)
pub fn lookup(what: Lookup<'_>) -> Option<(u32, Vec<u8>)> {
    use std::ffi::{CStr, CString};
    let name = match what {
        Lookup::UserId(n) | Lookup::GroupId(n) => Some(CString::new(n).ok()?),
        _ => None,
    };
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    loop {
        let rc;
        let found;
        match what {
            Lookup::UserName(_) | Lookup::UserId(_) => {
                // SAFETY: all-zero is a valid `passwd` (null pointers, zero numbers).
                let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
                let mut out = std::ptr::null_mut();
                // SAFETY: `pw`, `buf` (for its length) and `out` are valid for
                // writes during the call, the name is a NUL-terminated string;
                // the strings `pw` points to live in `buf`, read before it changes.
                rc = unsafe {
                    match (&what, &name) {
                        (Lookup::UserName(uid), _) => {
                            libc::getpwuid_r(*uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out)
                        }
                        (_, Some(n)) => libc::getpwnam_r(
                            n.as_ptr(),
                            &mut pw,
                            buf.as_mut_ptr(),
                            buf.len(),
                            &mut out,
                        ),
                        _ => unreachable!("a user id lookup has a name"),
                    }
                };
                found = (rc == 0 && !out.is_null()).then(|| {
                    // SAFETY: on success with an entry, `pw_name` is a
                    // NUL-terminated string in `buf`.
                    let name = unsafe { CStr::from_ptr(pw.pw_name) };
                    (pw.pw_uid, name.to_bytes().to_vec())
                });
            }
            Lookup::GroupName(_) | Lookup::GroupId(_) => {
                // SAFETY: all-zero is a valid `group` (null pointers, zero numbers).
                let mut gr: libc::group = unsafe { std::mem::zeroed() };
                let mut out = std::ptr::null_mut();
                // SAFETY: as for the users above.
                rc = unsafe {
                    match (&what, &name) {
                        (Lookup::GroupName(gid), _) => {
                            libc::getgrgid_r(*gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out)
                        }
                        (_, Some(n)) => libc::getgrnam_r(
                            n.as_ptr(),
                            &mut gr,
                            buf.as_mut_ptr(),
                            buf.len(),
                            &mut out,
                        ),
                        _ => unreachable!("a group id lookup has a name"),
                    }
                };
                found = (rc == 0 && !out.is_null()).then(|| {
                    // SAFETY: on success with an entry, `gr_name` is a
                    // NUL-terminated string in `buf`.
                    let name = unsafe { CStr::from_ptr(gr.gr_name) };
                    (gr.gr_gid, name.to_bytes().to_vec())
                });
            }
        }
        // ERANGE: the entry does not fit the buffer; a bigger one is tried.
        if rc == libc::ERANGE && buf.len() < 1 << 24 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return found;
    }
}
