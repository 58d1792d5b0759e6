//! What a session tells whoever watches it: bytes moved, the entry under way,
//! files put in place. The `zcopy` command draws a progress line and prints
//! names from these calls; a library user may count, log or ignore them.

/// Watches a session. Every method has a default that does nothing, and `()`
/// watches nothing.
pub trait Observer: Send + Sync {
    /// `bytes` more moved (sent, or received and checked).
    fn moved(&self, bytes: u64) {
        let _ = bytes;
    }

    /// The entry `index` (from 1) of the session, named `name`, is under way.
    fn entry(&self, index: u64, name: &str) {
        let _ = (index, name);
    }

    /// The receiver changed (or in a dry run would change) what one line of
    /// rsync's `--itemize-changes` says: `>f+++++++++ a/b`, `*deleting   a/c`.
    fn itemized(&self, line: &[u8]) {
        let _ = line;
    }

    /// Something the user should know that does not stop the session, one line
    /// (a receiver too old for the attributes asked for).
    fn warning(&self, text: &str) {
        let _ = text;
    }

    /// The receiver put the file `path` in place.
    fn landed(&self, path: &str) {
        let _ = path;
    }

    /// The receiver kept (or removed) a partial file of a failed session: what
    /// it did, one line.
    fn kept(&self, note: &str) {
        let _ = note;
    }

    /// Over TLS, a fresh connection took over a data connection's blocks once it
    /// carried up to `records` records ([`crate::tls::records`]).
    fn took_over(&self, records: u64) {
        let _ = records;
    }

    /// A receiver's new session begins: what watches its bytes and entries, until
    /// it is dropped at the session's end.
    fn session(&self) -> Box<dyn Observer> {
        Box::new(())
    }
}

impl Observer for () {}
