//! What a worker lends a connection, and the answer it makes, for one readiness
//! event.

use zcopy::Syscalls;

use crate::config::Config;
use crate::open_files::OpenFiles;
use crate::response::Clock;

/// What a worker lends a connection for one readiness event.
pub struct Context<'a> {
    /// What every worker shares.
    pub config: &'a Config,
    /// The worker's open-file cache.
    pub files: &'a mut OpenFiles,
    /// The time of this loop turn, and its `Date`.
    pub clock: &'a Clock,
    /// The server is stopping: idle connections close, no new request is read.
    pub stopping: bool,
    /// Syscalls the engines issued for response bodies and uploads.
    pub syscalls: &'a mut Syscalls,
    /// Over TLS: where file bytes are read before they are encrypted.
    pub tls_buffer: &'a mut Vec<u8>,
}
