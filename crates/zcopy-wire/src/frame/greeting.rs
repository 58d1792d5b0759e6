//! The greeting both sides send first: magic, version, capabilities, session.

use std::io;

use super::{invalid, MAGIC};

/// The greeting, the same shape both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// The protocol version the side speaks.
    pub version: u8,
    /// The capability bits the side offers.
    pub caps: u32,
    /// 0 from a sender opening a session; the session's number otherwise.
    pub session: u64,
}

impl Greeting {
    /// Its length on the wire: magic (4), version (1), caps (4), session (8).
    pub const LEN: usize = 17;

    /// The greeting as it goes on the wire.
    pub fn encode(&self) -> [u8; Greeting::LEN] {
        let mut out = [0u8; Greeting::LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4] = self.version;
        out[5..9].copy_from_slice(&self.caps.to_be_bytes());
        out[9..].copy_from_slice(&self.session.to_be_bytes());
        out
    }

    /// A greeting from the wire; an error when the magic is not zcopy's.
    pub fn decode(bytes: &[u8; Greeting::LEN]) -> io::Result<Greeting> {
        if &bytes[..4] != MAGIC {
            return Err(invalid(
                "not a zcopy sender (bad magic; use --raw for plain bytes)",
            ));
        }
        Ok(Greeting {
            version: bytes[4],
            caps: u32::from_be_bytes(bytes[5..9].try_into().expect("4 bytes")),
            session: u64::from_be_bytes(bytes[9..].try_into().expect("8 bytes")),
        })
    }
}
