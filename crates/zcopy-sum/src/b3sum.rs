//! b3sum 1.8, as far as keys and check files go: the key of keyed mode, and its
//! check lines: lower-case hex only, no comments, names with NUL or U+FFFD
//! refused, each refusal in b3sum's words.

use std::io::Read;

use crate::digest::Digest;
use crate::line::{self, CheckLine};

/// Why a `--keyed` key could not be read, in b3sum's words.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Fewer than 32 bytes came.
    #[error("expected {len} key bytes from stdin, found {0}", len = blake3::KEY_LEN)]
    Short(usize),
    /// More than 32 bytes came.
    #[error("read more than {} key bytes from stdin", blake3::KEY_LEN)]
    Long,
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The 32-byte key of `--keyed`: all of `input`, which b3sum reads from standard
/// input (and its words say so).
pub fn read_key(input: impl Read) -> Result<[u8; blake3::KEY_LEN], KeyError> {
    let mut bytes = Vec::with_capacity(blake3::KEY_LEN + 1);
    let n = input
        .take(blake3::KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    match n.cmp(&blake3::KEY_LEN) {
        std::cmp::Ordering::Less => Err(KeyError::Short(n)),
        std::cmp::Ordering::Greater => Err(KeyError::Long),
        std::cmp::Ordering::Equal => Ok(bytes.try_into().unwrap_or([0; blake3::KEY_LEN])),
    }
}

/// Reads a check line as b3sum does: `hex  name` (split at the first two
/// spaces) or `BLAKE3 (name) = hex` (split at the last `) = `), a leading
/// backslash for an escaped name. `Err` carries b3sum's words for the refusal.
pub fn parse(text: &[u8]) -> Result<CheckLine, String> {
    // b3sum reads lines as Unicode: a byte that is not becomes U+FFFD, and is
    // refused with the others below.
    let text = String::from_utf8_lossy(text);
    if text.is_empty() {
        return Err("Empty line".into());
    }
    let (escaped, rest) = match text.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, &text[..]),
    };
    let (hex, name) = if let Some((hex, name)) = rest.split_once("  ") {
        (hex, name)
    } else if let Some((name, hex)) = rest
        .strip_prefix("BLAKE3 (")
        .and_then(|r| r.rsplit_once(") = "))
    {
        (hex, name)
    } else {
        return Err("Invalid check line format".into());
    };
    if hex.len() != 2 * blake3::OUT_LEN {
        return Err("Invalid hash length".into());
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("Invalid hex".into());
    }
    let path = if escaped {
        unescape(name)?
    } else {
        name.to_string()
    };
    if path.is_empty() {
        return Err("empty file path".into());
    }
    if path.contains('\0') {
        return Err("Null character in path".into());
    }
    if path.contains(char::REPLACEMENT_CHARACTER) {
        return Err("Unicode replacement character in path".into());
    }
    let shown = if escaped {
        format!("\\{name}")
    } else {
        name.to_string()
    };
    Ok(CheckLine {
        digests: vec![Digest::Blake3],
        expected: line::unhex(hex.as_bytes(), false).ok_or("Invalid hex")?,
        name: path.into_bytes(),
        shown: shown.into_bytes(),
    })
}

fn unescape(name: &str) -> Result<String, String> {
    line::unescape(name.as_bytes())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| "Invalid backslash escape".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lines_as_b3sum_reads_them() {
        let zeros = "0".repeat(64);
        let ok = parse(format!("{zeros}  a  b").as_bytes()).unwrap();
        assert_eq!(ok.name, b"a  b");
        let tagged = parse(format!("BLAKE3 (x) = y) = {zeros}").as_bytes()).unwrap();
        assert_eq!(tagged.name, b"x) = y");
        let escaped = parse(format!("\\{zeros}  a\\nb").as_bytes()).unwrap();
        assert_eq!(
            (escaped.name, escaped.shown),
            (b"a\nb".to_vec(), b"\\a\\nb".to_vec())
        );
        let refusal = |line: &[u8]| parse(line).err();
        assert_eq!(
            refusal(format!("{zeros}  \0").as_bytes()).as_deref(),
            Some("Null character in path")
        );
        assert_eq!(
            refusal(format!("{zeros}  \u{fffd}").as_bytes()).as_deref(),
            Some("Unicode replacement character in path")
        );
        assert_eq!(
            refusal(&[format!("{zeros}  a").as_bytes(), b"\xff"].concat()).as_deref(),
            Some("Unicode replacement character in path")
        );
        assert_eq!(
            refusal(format!("\\{zeros}  \\a").as_bytes()).as_deref(),
            Some("Invalid backslash escape")
        );
        assert_eq!(
            refusal(format!("{}  f", "A".repeat(64)).as_bytes()).as_deref(),
            Some("Invalid hex")
        );
        assert_eq!(
            refusal(b"# comment").as_deref(),
            Some("Invalid check line format")
        );
        assert_eq!(refusal(b"").as_deref(), Some("Empty line"));
    }
}
