//! GNU coreutils 9.1's `sha256sum` and siblings, as far as check files and
//! messages go: its check-line rules (names in messages are quoted by
//! [`zcopy::quote`]).

use crate::digest::Digest;
use crate::line::{self, CheckLine};

/// Reads a check line as GNU's `split_3` does. `reversed` is GNU's "BSD reversed"
/// state for the whole run: the first untagged line says whether lines are
/// `hex name` (one space, as BSD `md5 -r` writes) or `hex  name`/`hex *name`, and
/// later lines of the other kind are refused, so that a name starting with a space
/// or `*` cannot be read two ways.
pub fn parse(
    text: &[u8],
    digest: Digest,
    reversed: &mut Option<bool>,
) -> Result<CheckLine, String> {
    let bad = String::new;
    let white = |b: u8| b == b' ' || b == b'\t';
    let mut i = text.iter().position(|b| !white(*b)).ok_or_else(bad)?;
    let escaped = text[i] == b'\\';
    if escaped {
        i += 1;
    }
    let tag = digest.tag().as_bytes();
    let (hex, name) = if text[i..].starts_with(tag) {
        i += tag.len();
        if text.get(i) == Some(&b' ') {
            i += 1;
        }
        if text.get(i) != Some(&b'(') {
            return Err(bad());
        }
        tagged(&text[i + 1..], digest).ok_or_else(bad)?
    } else {
        let hex_len = digest.hex_len();
        // The shortest line: the hex, a blank and a one-byte name.
        let escape_byte = usize::from(text.get(i) == Some(&b'\\'));
        if text.len() - i < hex_len + 2 + escape_byte {
            return Err(bad());
        }
        let hex = &text[i..i + hex_len];
        let mut j = i + hex_len;
        if !white(text[j]) || !line::is_hex(hex, hex_len) {
            return Err(bad());
        }
        j += 1;
        let one_byte_left = text.len() - j == 1;
        if one_byte_left || (text[j] != b' ' && text[j] != b'*') {
            if *reversed == Some(false) {
                return Err(bad());
            }
            *reversed = Some(true);
        } else if *reversed != Some(true) {
            *reversed = Some(false);
            j += 1;
        }
        (hex, &text[j..])
    };
    let unescaped = if escaped {
        line::unescape(name).ok_or_else(bad)?
    } else {
        name.to_vec()
    };
    Ok(CheckLine {
        digests: vec![digest],
        expected: line::unhex(hex, false).ok_or_else(bad)?,
        name: unescaped,
        shown: name.to_vec(),
    })
}

/// `name) = hex` after `TAG (`: the name ends at the last `)`, blanks may sit on
/// either side of the `=`, and the hex runs to the end of the line.
fn tagged(rest: &[u8], digest: Digest) -> Option<(&[u8], &[u8])> {
    let close = rest.iter().rposition(|b| *b == b')')?;
    let name = &rest[..close];
    let tail = &rest[close + 1..];
    let white = |b: &u8| *b == b' ' || *b == b'\t';
    let start = tail.iter().position(|b| !white(b))?;
    let tail = tail[start..].strip_prefix(b"=")?;
    let start = tail.iter().position(|b| !white(b)).unwrap_or(tail.len());
    let hex = &tail[start..];
    line::is_hex(hex, digest.hex_len()).then_some((hex, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn name(line: &str, reversed: &mut Option<bool>) -> Option<Vec<u8>> {
        parse(line.as_bytes(), Digest::Sha256, reversed)
            .ok()
            .map(|l| l.name)
    }

    #[test]
    fn bsd_reversed_is_decided_once() {
        let mut state = None;
        assert_eq!(name(&format!("{HEX} a"), &mut state), Some(b"a".to_vec()));
        assert_eq!(state, Some(true));
        assert_eq!(name(&format!("{HEX}  b"), &mut state), Some(b" b".to_vec()));
        let mut state = None;
        assert_eq!(name(&format!("{HEX}  b"), &mut state), Some(b"b".to_vec()));
        assert_eq!(name(&format!("{HEX} a"), &mut state), None);
        assert_eq!(name(&format!("{HEX} **c"), &mut None), Some(b"*c".to_vec()));
    }

    #[test]
    fn tagged_lines_and_junk() {
        let mut state = None;
        assert_eq!(
            name(&format!("SHA256 (a) b) = {HEX}"), &mut state),
            Some(b"a) b".to_vec())
        );
        assert_eq!(
            name(&format!("SHA256(f)= {HEX}"), &mut state),
            Some(b"f".to_vec())
        );
        assert_eq!(
            name(&format!("\\SHA256 (a\\nb) = {HEX}"), &mut state),
            Some(b"a\nb".to_vec())
        );
        for bad in [
            "SHA256 (",
            "MD5 (f) = 00",
            "ERR",
            &format!("{}  f", &HEX[1..]),
        ] {
            assert_eq!(name(bad, &mut None), None, "{bad}");
        }
        let nul = format!("{}  h", "\0".repeat(64));
        assert_eq!(name(&nul, &mut None), None);
    }
}
