//! Over TLS, what one data connection of a session carried, and the fresh
//! connection that took over its blocks once its record budget was near its cap
//! ([`crate::tls::records`]).

use std::net::TcpStream;

use crate::error::Result;
use crate::tls::records::RecordBudget;

/// The write calls a block is assumed to take at most: one per 16 KiB record,
/// so a block never crosses the cap however a slow peer splits it.
const CALLS_PER_BLOCK_PER_MIB: u64 = 64;

/// One data connection's records, and the connections that replaced it.
pub(super) struct Lane {
    budget: RecordBudget,
    cap: u64,
    /// The connection that took over, if any; blocks go on it.
    pub(super) fresh: Option<TcpStream>,
    /// Connections that reached their cap: kept open until the session ends,
    /// so what they carried is delivered before they close.
    pub(super) retired: Vec<TcpStream>,
}

impl Lane {
    pub(super) fn new(cap: u64) -> Lane {
        Lane {
            budget: RecordBudget::new(cap),
            cap,
            fresh: None,
            retired: Vec::new(),
        }
    }

    /// The connection this lane's blocks go on: the fresh one, else `base`.
    pub(super) fn stream<'s>(&'s self, base: &'s TcpStream) -> &'s TcpStream {
        self.fresh.as_ref().unwrap_or(base)
    }

    /// Before a block of `len` bytes: when it could cross the cap, `join` opens
    /// a fresh connection (new handshake, new keys) that takes over; returns the
    /// records the old one carried at most.
    pub(super) fn before_block(
        &mut self,
        len: u64,
        join: impl FnOnce() -> Result<TcpStream>,
    ) -> Result<Option<u64>> {
        let calls = (len >> 20).max(1) * CALLS_PER_BLOCK_PER_MIB;
        if !self.budget.would_cross(len, calls) {
            return Ok(None);
        }
        let fresh = join()?;
        self.retired.extend(self.fresh.replace(fresh));
        let spent = self.budget.spent();
        self.budget = RecordBudget::new(self.cap);
        Ok(Some(spent))
    }

    /// Counts a block (or a header) of `bytes` written in `calls` calls.
    pub(super) fn after_block(&mut self, bytes: u64, calls: u64) {
        self.budget.charge(bytes, calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a cap of a few blocks' records, the blocks move to a fresh
    /// connection when the next one could cross it, and again on that one.
    #[test]
    fn a_fresh_connection_takes_over_at_the_cap() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let base = TcpStream::connect(addr).unwrap();
        let dial = || Ok(TcpStream::connect(addr).unwrap());
        let block = 1 << 20;
        // A 1 MiB block is counted as at most 128 records before it goes, and
        // as 68 after it went in 4 calls: 4 fit under a cap of 300.
        let mut lane = Lane::new(300);
        let mut took_over = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..8 {
            took_over.push(lane.before_block(block, dial).unwrap().is_some());
            ports.push(lane.stream(&base).local_addr().unwrap().port());
            lane.after_block(block, 4);
        }
        assert_eq!(
            took_over,
            [false, false, false, true, false, false, true, false]
        );
        let base = base.local_addr().unwrap().port();
        assert!(ports[..3].iter().all(|&p| p == base), "{ports:?}");
        assert!(ports[3] != base && ports[3..6].iter().all(|&p| p == ports[3]));
        assert!(ports[6] != base && ports[6] != ports[3]);
        assert_eq!(lane.retired.len(), 1);
        assert!(lane.fresh.is_some());
    }
}
