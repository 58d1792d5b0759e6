//! HTTP/1.1: the file server of `zcopy serve` (request parsing in [`request`], safe
//! path resolution and listings in [`files`], the event loops in [`server`], uploads
//! in [`upload`], who may upload in [`auth`]), the client of `zcopy get` ([`client`]), and the digests both
//! sides use ([`digest`]).

pub mod auth;
pub mod client;
pub mod digest;
pub mod files;
pub mod request;
pub mod server;
pub mod upload;
