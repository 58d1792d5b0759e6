//! The framed protocol of `zcopy send` and `zcopy recv`: the messages
//! ([`frame`]), the receiver's verified, resumable placement of what arrives
//! ([`partial`]), and who may connect over loopback ([`peer_owner`]).
//!
//! No command-line types and no exit codes live here: errors are `io::Error`s
//! whose text names the file or the rule that refused it, and the `zcopy` command
//! decides what to print and how to exit.
#![forbid(unsafe_code)]

pub mod frame;
pub mod partial;
pub mod peer_owner;
