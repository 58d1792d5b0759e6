//! The HTTP/1.1 file server of `zcopy serve`: request parsing ([`request`]), safe
//! path resolution and listings ([`files`]), and the event loops ([`server`]).

pub mod files;
pub mod request;
pub mod server;
