//! HTTP/1.1: the file server of `zcopy serve`, the client of `zcopy get`, and the
//! digests both check.
//!
//! The server in rooms: what its workers share in [`config`], the event loops and
//! [`server::Server::spawn`] in [`server`], a connection's state machine in
//! [`conn`] (the bytes of plain and TLS connections in [`transport`]), requests
//! parsed borrowed from the input buffer in [`request`] (their byte ranges in
//! [`range`]), from a request to its response in [`answer`], heads encoded in
//! [`response`], the open-file cache with each file's prebuilt head in
//! [`open_files`] (with the bodies [`compress`] makes on the fly), safe path
//! resolution in [`files`], listings in [`listing`], folders as tar streams in
//! [`archive`], uploads in [`upload`], who may upload in [`auth`], each HTTPS
//! connection's TLS session in [`tls_server`], the access log in [`access_log`],
//! percent-coding in [`percent`], and systemd's socket activation in
//! [`listen_fds`].
//! [`digest`] is the `Repr-Digest` both the server and a client use.
//!
//! The client, in [`client`]: downloads spliced from the socket into a file placed
//! beside its target, with redirects, resumes, ranges and segments.
// Unsafe code only where systemd's descriptor is taken, in listen_fds.
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]

pub mod access_log;
pub mod answer;
pub mod archive;
pub mod auth;
pub mod client;
pub mod compress;
pub mod config;
pub mod conn;
pub mod context;
pub mod digest;
pub mod files;
#[allow(unsafe_code)]
pub mod listen_fds;
pub mod listing;
pub mod open_files;
pub mod percent;
pub mod range;
pub mod request;
pub mod response;
pub mod server;
pub mod tls_server;
pub mod transport;
pub mod upload;
