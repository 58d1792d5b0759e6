//! GNU coreutils 9.1's `sha256sum` and siblings, as far as check files and
//! messages go: its check-line rules and its shell-quoted names in messages.

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

/// `name` quoted for a message as GNU's `quotef` does: as it is when the shell
/// would read it back unchanged, else in single quotes, with bytes that do not
/// print written `$'\ooo'` outside them.
pub fn quote(name: &[u8]) -> String {
    let utf8_locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        });
    let text = String::from_utf8_lossy(name);
    let printable = |c: char| {
        if c.is_ascii() {
            !c.is_ascii_control()
        } else {
            utf8_locale && c != char::REPLACEMENT_CHARACTER && !c.is_control()
        }
    };
    let safe = |i: usize, c: char| {
        c.is_ascii_alphanumeric()
            || "%+,-./]_@".contains(c)
            || (i > 0 && "#~".contains(c))
            || (!c.is_ascii() && printable(c))
            || (name.len() > 1 && "{}".contains(c))
    };
    if !name.is_empty()
        && text.chars().enumerate().all(|(i, c)| safe(i, c))
        && !text.contains('\u{fffd}')
    {
        return text.into_owned();
    }
    let mut out = String::from("'");
    // Whether the last thing written was a `$'\ooo'`, after which GNU opens no
    // new pair of quotes.
    let mut ended_escaped = false;
    let mut rest = name;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, tail) = rest.split_at(e.valid_up_to());
                let bad_len = e.error_len().unwrap_or(tail.len());
                // `ok` is valid UTF-8: from_utf8 said so.
                (
                    std::str::from_utf8(ok).unwrap_or_default(),
                    &tail[..bad_len],
                )
            }
        };
        for c in valid.chars() {
            ended_escaped = !printable(c);
            match c {
                '\'' => out.push_str("'\\''"),
                c if printable(c) => out.push(c),
                c => {
                    let mut buf = [0; 4];
                    out.push_str("'$'");
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&escape_byte(b));
                    }
                    out.push_str("''");
                }
            }
        }
        if !bad.is_empty() {
            ended_escaped = true;
            out.push_str("'$'");
            for &b in bad {
                out.push_str(&escape_byte(b));
            }
            out.push_str("''");
        }
        rest = &rest[valid.len() + bad.len()..];
    }
    if ended_escaped {
        out.truncate(out.len() - 1);
    } else {
        out.push('\'');
    }
    out
}

fn escape_byte(b: u8) -> String {
    match b {
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        b'\r' => "\\r".into(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0b => "\\v".into(),
        0x0c => "\\f".into(),
        _ => format!("\\{b:03o}"),
    }
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

    #[test]
    fn names_quoted_as_gnu_quotes_them() {
        assert_eq!(quote(b"plain/name.txt"), "plain/name.txt");
        assert_eq!(quote(b"d e x"), "'d e x'");
        assert_eq!(quote(b"it's"), "'it'\\''s'");
        assert_eq!(quote(b"n\xffme"), "'n'$'\\377''me'");
        assert_eq!(quote(b"a\nb"), "'a'$'\\n''b'");
        assert_eq!(quote(b""), "''");
    }
}
