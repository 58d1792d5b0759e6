//! How many TLS records one connection carries before a fresh one takes over.
//!
//! AES-GCM may seal about 2^24.5 records under one key (RFC 8446 §5.5); rustls
//! sends a KeyUpdate and changes keys at 2^24. A kTLS reader fails on that
//! KeyUpdate (a control record after the hand-off, see `ktls`), and a kTLS writer
//! never sends one, so neither mix rekeys safely. zcopy instead caps the records
//! of each data connection below the point where rustls would rekey: when a
//! connection's next block could cross the cap, the sender opens a fresh
//! connection joining the session (new handshake, new keys) and sends the rest
//! of the blocks on it.
//!
//! Records are not counted one by one (the kernel builds them under kTLS): each
//! write call of `n` bytes makes at most `ceil(n / 16 KiB)` records, so a
//! connection that took `bytes` in `calls` calls carried at most
//! `calls + bytes / 16 KiB` of them.

/// The records a data connection carries at most: half of where rustls rekeys.
pub const RECORDS_PER_CONNECTION: u64 = 1 << 23;

/// The largest TLS record's plaintext (RFC 8446 §5.1).
const MAX_RECORD: u64 = 16 << 10;

/// A connection's count of records sent, against its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBudget {
    cap: u64,
    spent: u64,
}

impl RecordBudget {
    /// A fresh connection's budget of `cap` records.
    pub fn new(cap: u64) -> RecordBudget {
        RecordBudget { cap, spent: 0 }
    }

    /// The most records `bytes` written in `calls` calls can have made.
    pub fn records_at_most(bytes: u64, calls: u64) -> u64 {
        calls + bytes / MAX_RECORD
    }

    /// Counts `bytes` written in `calls` calls.
    pub fn charge(&mut self, bytes: u64, calls: u64) {
        self.spent = self
            .spent
            .saturating_add(RecordBudget::records_at_most(bytes, calls));
    }

    /// Whether `bytes` more, in up to `calls` calls, could cross the cap: then a
    /// fresh connection should carry them.
    pub fn would_cross(&self, bytes: u64, calls: u64) -> bool {
        self.spent > 0
            && self
                .spent
                .saturating_add(RecordBudget::records_at_most(bytes, calls))
                > self.cap
    }

    /// The records counted so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_records_and_short_writes_both_count() {
        assert_eq!(RecordBudget::records_at_most(4 << 20, 1), 257);
        assert_eq!(RecordBudget::records_at_most(10, 10), 10);
        let mut b = RecordBudget::new(600);
        assert!(
            !b.would_cross(4 << 20, 16),
            "a fresh connection takes any block"
        );
        b.charge(4 << 20, 3);
        assert_eq!(b.spent(), 259);
        assert!(!b.would_cross(4 << 20, 16));
        b.charge(4 << 20, 3);
        assert!(b.would_cross(4 << 20, 16), "{b:?}");
    }

    #[test]
    fn the_default_cap_stays_below_where_rustls_rekeys() {
        let cap = RECORDS_PER_CONNECTION;
        // A 4 MiB block in as many calls as a slow peer could cause still fits.
        let block = RecordBudget::records_at_most(4 << 20, 4096);
        assert!(cap + block < 1 << 24);
    }
}
