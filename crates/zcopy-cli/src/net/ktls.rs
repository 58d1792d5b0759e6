//! kTLS: whether this kernel can take over TLS records from user space.
//!
//! With the `tls` upper layer protocol (`setsockopt(TCP_ULP, "tls")`, then the
//! session's keys through `SOL_TLS` `TLS_TX`/`TLS_RX`) the kernel encrypts what
//! sendfile and splice put on the socket, so an encrypted transfer keeps zero-copy
//! and costs the CPU only the cipher. zcopy probes for the ULP once, on a loopback
//! connection of its own. Where it is missing (`ENOENT`: the `tls` module is not
//! built or not loadable) rustls encrypts in user space: one CPU copy per byte,
//! and the transfer code's bytes go through the TLS pump (see `tls`). Handing the
//! keys to the kernel where the ULP exists is not written yet; the probe's answer
//! says so, and `-v` and `--json` report it.
//!
//! # References
//! - <https://docs.kernel.org/networking/tls.html>

use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;

/// The probe's answer, in the words `-v` and `--json` print.
pub fn status() -> &'static str {
    static STATUS: OnceLock<String> = OnceLock::new();
    STATUS.get_or_init(probe)
}

fn probe() -> String {
    let attached = TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| {
            let client = TcpStream::connect(l.local_addr()?)?;
            let _server = l.accept()?;
            Ok(client)
        })
        .and_then(|client| crate::sys::set_tcp_ulp(&client, "tls"));
    match attached {
        Ok(()) => "kTLS: tls ULP available, but zcopy does not hand it the keys yet; TLS encrypts in user space: 1 CPU copy per byte".into(),
        // ENOENT: no `tls` module in this kernel (CONFIG_TLS off, or not loadable).
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            "kTLS: tls ULP not in this kernel; TLS encrypts in user space: 1 CPU copy per byte".into()
        }
        Err(e) => format!("kTLS: tls ULP refused ({e}); TLS encrypts in user space: 1 CPU copy per byte"),
    }
}
