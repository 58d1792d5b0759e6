//! Listening, shared by `send`, `recv`, `echo` and `serve`; the sockets of a
//! transfer are `zcopy_wire::net`'s; the remote side's end of ssh ([`ssh`]).

pub mod meter;
pub mod ssh;

use std::net::TcpListener;

use anyhow::{Context, Result};

/// Binds `text` and says where on stderr ("listening on 127.0.0.1:PORT"), so a
/// caller that asked for port 0 learns the port.
pub fn listen(text: &str) -> Result<TcpListener> {
    let addr = zcopy_wire::net::listen_addr(text)?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("listening on {local}");
    Ok(listener)
}
