//! The framed protocol of `zcopy send` and `zcopy recv`: the messages
//! ([`frame`]), the receiver's verified, resumable placement of what arrives
//! ([`partial`]), who may connect over loopback ([`peer_owner`]), and the
//! authenticated session: TLS 1.3 with a pinned certificate and a proven secret
//! ([`tls`]), its keys handed to the kernel where it has kTLS ([`ktls`]). The
//! sockets of a transfer ([`net`]), what it tells a watcher
//! ([`observe`]) and its stop signals ([`signal`]).
//! ssh as the way in: starting the other side and hearing where to connect
//! ([`remote`]). Owners, groups, xattrs, ACLs read and set ([`attrs`]).
//! Blocks compressed on the wire (`send -z`, [`compress`]).
//!
//! No command-line types and no exit codes live here: errors are typed
//! ([`Error`]), their text names the file or the rule that refused it, and the
//! `zcopy` command decides what to print and how to exit.
#![deny(
    missing_docs,
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod attrs;
pub mod compress;
pub mod delta;
pub mod error;
pub mod filter;
pub mod frame;
pub mod ktls;
pub mod net;
pub mod observe;
pub mod partial;
pub mod peer_owner;
pub mod recv;
pub mod remote;
pub mod send;
// Signal masks, which rustix does not wrap.
#[allow(unsafe_code)]
pub mod signal;
// setsockopt for kTLS and the user and group databases, which rustix does not wrap.
#[allow(unsafe_code)]
mod sys;
pub mod tls;

pub use error::{Error, Result};
