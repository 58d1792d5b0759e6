//! The one line each side says through the ssh channel: where to connect (or
//! `data`: inside the channel), the session's one-time secret, the certificate's
//! fingerprint, and how many streams to open. Words are `key=value` after the
//! tag, so that a later version can add one that this version skips.

use std::net::SocketAddr;

/// The first word of every line, with the line format's version.
pub const TAG: &str = "zcopy-ssh/1";

/// What one side tells the other.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    /// Where the remote side listens; `None`: the data goes inside the ssh channel.
    pub listen: Option<SocketAddr>,
    /// The session's one-time secret (ssh encrypted it on its way).
    pub secret: Option<String>,
    /// The receiver's certificate (`sha256:HEX`).
    pub fingerprint: Option<String>,
    /// How many connections the sender will use (`-j`).
    pub streams: Option<usize>,
}

impl Hello {
    /// The line, without its newline.
    pub fn line(&self) -> String {
        let mut line = TAG.to_string();
        match self.listen {
            Some(addr) => line.push_str(&format!(" listen={addr}")),
            None => line.push_str(" data"),
        }
        if let Some(secret) = &self.secret {
            line.push_str(&format!(" secret={secret}"));
        }
        if let Some(fp) = &self.fingerprint {
            line.push_str(&format!(" fingerprint={fp}"));
        }
        if let Some(n) = self.streams {
            line.push_str(&format!(" streams={n}"));
        }
        line
    }

    /// Reads a line made by [`Hello::line`]; `None` if it is not one.
    pub fn parse(line: &str) -> Option<Hello> {
        let mut words = line.split_whitespace();
        if words.next()? != TAG {
            return None;
        }
        let mut hello = Hello::default();
        for word in words {
            match word.split_once('=') {
                Some(("listen", addr)) => hello.listen = Some(addr.parse().ok()?),
                Some(("secret", s)) => hello.secret = Some(s.to_string()),
                Some(("fingerprint", f)) => hello.fingerprint = Some(f.to_string()),
                Some(("streams", n)) => hello.streams = Some(n.parse().ok()?),
                // Words of a later version.
                _ => {}
            }
        }
        Some(hello)
    }
}

#[cfg(test)]
mod tests {
    use super::Hello;

    #[test]
    fn a_line_reads_back_as_what_made_it() {
        let hello = Hello {
            listen: Some("[::1]:4000".parse().unwrap()),
            secret: Some("00ff".into()),
            fingerprint: Some("sha256:ab".into()),
            streams: Some(4),
        };
        assert_eq!(Hello::parse(&hello.line()), Some(hello));
        let data = Hello::default();
        assert_eq!(data.line(), "zcopy-ssh/1 data");
        assert_eq!(Hello::parse("zcopy-ssh/1 data later=1"), Some(data));
        assert_eq!(Hello::parse("Welcome to host"), None);
        assert_eq!(Hello::parse("zcopy-ssh/1 listen=nonsense"), None);
    }
}
