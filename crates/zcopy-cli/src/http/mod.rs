//! The HTTP/1.1 client of `zcopy get`: [`client`], with TLS in [`tls_client`] and the
//! environment's proxies in [`proxy`]; the server and the digests both sides check
//! are the `zcopy_http` library.

pub mod client;
pub mod proxy;
pub mod tls_client;
