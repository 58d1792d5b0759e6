//! The HTTP/1.1 client of `zcopy get`: [`client`], with TLS in [`tls_client`]; the
//! server and the digests both sides check are the `zcopy_http` library.

pub mod client;
pub mod tls_client;
