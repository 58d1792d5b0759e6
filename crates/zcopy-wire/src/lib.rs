//! The framed protocol of `zcopy send` and `zcopy recv`: the messages
//! ([`frame`]), the receiver's verified, resumable placement of what arrives
//! ([`partial`]), who may connect over loopback ([`peer_owner`]), and the
//! authenticated session: TLS 1.3 with a pinned certificate and a proven secret
//! ([`tls`]), its keys handed to the kernel where it has kTLS ([`ktls`]).
//!
//! No command-line types and no exit codes live here: errors are `io::Error`s
//! whose text names the file or the rule that refused it, and the `zcopy` command
//! decides what to print and how to exit.
#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod frame;
pub mod ktls;
pub mod partial;
pub mod peer_owner;
// setsockopt for kTLS, which rustix does not wrap.
#[allow(unsafe_code)]
mod sys;
pub mod tls;
