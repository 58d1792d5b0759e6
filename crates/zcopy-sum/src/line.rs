//! Check-file lines as the GNU `*sum` tools, xxhsum and b3sum write and read them.
//!
//! - GNU style: `<hex>  <name>` (`<hex> *<name>` in binary mode); xxhsum 0.8.2 also
//!   writes `XXH3_<hex>  <name>`.
//! - BSD style: `<TAG> (<name>) = <hex>` (`--tag`; `SHA256(name)= hex` from openssl
//!   is read too).
//! - A name holding a newline, a carriage return or a backslash is escaped (`\n`,
//!   `\r`, `\\`) and its line starts with a backslash, as GNU coreutils and b3sum do.

use crate::{Digest, Voice};

/// Whether `name` must be escaped to fit on one line.
pub fn needs_escape(name: &[u8]) -> bool {
    name.iter().any(|b| matches!(b, b'\n' | b'\r' | b'\\'))
}

/// `name` as printed: escaped when it must be (the caller prints the leading `\`).
pub fn escaped(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out
}

/// A name as it starts a result line (`name: OK`): escaped, with its leading
/// backslash, when it holds a problematic byte.
pub fn display(name: &[u8]) -> Vec<u8> {
    if needs_escape(name) {
        let mut out = vec![b'\\'];
        out.extend(escaped(name));
        out
    } else {
        name.to_vec()
    }
}

/// How a digest line is laid out.
#[derive(Clone, Copy, Default)]
pub struct Style {
    /// BSD style, `TAG (name) = hex`.
    pub tagged: bool,
    /// `hex *name`, GNU's binary-mode marker.
    pub binary: bool,
    /// NUL-terminated and never escaped (GNU `-z`).
    pub zero: bool,
}

/// One output line, its end (newline or NUL) included.
pub fn format(tag: &str, hex: &str, name: &[u8], style: Style) -> Vec<u8> {
    let escape = !style.zero && needs_escape(name);
    let mut line = Vec::with_capacity(hex.len() + name.len() + 16);
    if escape {
        line.push(b'\\');
    }
    let name = if escape { escaped(name) } else { name.to_vec() };
    if style.tagged {
        line.extend_from_slice(tag.as_bytes());
        line.extend_from_slice(b" (");
        line.extend_from_slice(&name);
        line.extend_from_slice(b") = ");
        line.extend_from_slice(hex.as_bytes());
    } else {
        line.extend_from_slice(hex.as_bytes());
        line.extend_from_slice(if style.binary { b" *" } else { b"  " });
        line.extend_from_slice(&name);
    }
    line.push(if style.zero { 0 } else { b'\n' });
    line
}

/// A check line read into its parts, before the file is hashed.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// The digests the line may hold, the likeliest first (one unless untagged).
    pub digests: Vec<Digest>,
    /// The expected digest, canonical (big-endian) bytes.
    pub expected: Vec<u8>,
    /// The file name, unescaped.
    pub name: Vec<u8>,
    /// The name as the line wrote it (escaped, with its leading backslash), which
    /// b3sum prints in its result lines.
    pub shown: Vec<u8>,
}

/// The part of a check-file line (newline included) that the voice's tool parses,
/// or `None` for a line it skips: GNU and zcopy skip comments and blank lines and
/// strip a CR; xxhsum skips comments only; b3sum skips nothing.
pub fn content(line: &[u8], voice: Voice) -> Option<&[u8]> {
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    match voice {
        Voice::B3sum => {
            let end = text
                .iter()
                .rposition(|b| !matches!(b, b'\r' | b'\n'))
                .map_or(0, |i| i + 1);
            Some(&text[..end])
        }
        _ if text.first() == Some(&b'#') => None,
        Voice::Xxhsum => Some(text),
        Voice::Gnu | Voice::Zcopy => {
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            (!text.is_empty()).then_some(text)
        }
    }
}

/// Parses one line the way `zcopy scan -c` reads it: any digest's lines, tagged or
/// not. `digest` is the user's `--digest`, which untagged lines are read as;
/// `little_endian` reads untagged hex in that order (tags say it themselves,
/// `XXH64_LE`). `None` when a line does not parse.
pub fn parse(line: &[u8], digest: Option<Digest>, little_endian: bool) -> Option<CheckLine> {
    let start = line.iter().position(|b| *b != b' ' && *b != b'\t')?;
    let mut rest = &line[start..];
    let escaped = rest.first() == Some(&b'\\');
    if escaped {
        rest = &rest[1..];
    }
    let (digests, hex, name, reversed) = match tagged(rest) {
        Some((d, hex, name, le)) => (vec![d], hex, name, le),
        None => {
            let (digests, hex, name) = untagged(rest)?;
            let digests = match digest {
                Some(d) if digests.contains(&d) => vec![d],
                Some(_) => return None,
                None => digests,
            };
            (digests, hex, name, little_endian)
        }
    };
    if name.is_empty() {
        return None;
    }
    let shown = if escaped {
        [b"\\", name].concat()
    } else {
        name.to_vec()
    };
    let name = if escaped {
        unescape(name)?
    } else {
        name.to_vec()
    };
    Some(CheckLine {
        digests,
        expected: unhex(hex, reversed)?,
        name,
        shown,
    })
}

/// `TAG (name) = hex` or `TAG(name)= hex`; a tag ending `_LE` (xxhsum
/// `--little-endian`) says the hex is little-endian.
fn tagged(line: &[u8]) -> Option<(Digest, &[u8], &[u8], bool)> {
    let tag_end = line.iter().position(|b| *b == b' ' || *b == b'(')?;
    let tag = std::str::from_utf8(&line[..tag_end]).ok()?;
    let (tag, le) = match tag.strip_suffix("_LE") {
        Some(tag) => (tag, true),
        None => (tag, false),
    };
    let digest = Digest::from_tag(tag)?;
    let rest = line[tag_end..]
        .strip_prefix(b" ")
        .unwrap_or(&line[tag_end..]);
    let rest = rest.strip_prefix(b"(")?;
    let close = rest.iter().rposition(|b| *b == b')')?;
    let (name, tail) = (&rest[..close], &rest[close + 1..]);
    let tail = tail.strip_prefix(b" ").unwrap_or(tail);
    let tail = tail.strip_prefix(b"=")?;
    let hex = tail.strip_prefix(b" ").unwrap_or(tail);
    is_hex(hex, digest.hex_len()).then_some((digest, hex, name, le))
}

/// `hex  name`, `hex *name`, `hex name` or `XXH3_hex  name`.
fn untagged(line: &[u8]) -> Option<(Vec<Digest>, &[u8], &[u8])> {
    let end = line.iter().position(|b| *b == b' ' || *b == b'\t')?;
    let (word, rest) = (&line[..end], &line[end + 1..]);
    let rest = match rest.first() {
        Some(b' ' | b'*') => &rest[1..],
        _ => rest,
    };
    let (digests, hex) = match word.strip_prefix(b"XXH3_") {
        Some(hex) => (vec![Digest::Xxh3], hex),
        None => (Digest::by_hex_len(word.len()).to_vec(), word),
    };
    (!digests.is_empty() && is_hex(hex, digests[0].hex_len())).then_some((digests, hex, rest))
}

/// Whether `text` is `len` hex digits, either case.
pub fn is_hex(text: &[u8], len: usize) -> bool {
    text.len() == len && text.iter().all(u8::is_ascii_hexdigit)
}

/// The bytes hex digits (either case) stand for, in reverse order if `reversed`.
pub fn unhex(hex: &[u8], reversed: bool) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut bytes = hex
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()?;
    if reversed {
        bytes.reverse();
    }
    Some(bytes)
}

/// Undoes [`escaped`]; `None` for an unknown escape, a trailing backslash or a
/// NUL, as GNU and xxhsum refuse the line.
pub fn unescape(name: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len());
    let mut bytes = name.iter();
    while let Some(&b) = bytes.next() {
        match b {
            0 => return None,
            b'\\' => out.push(match bytes.next()? {
                b'n' => b'\n',
                b'r' => b'\r',
                b'\\' => b'\\',
                _ => return None,
            }),
            _ => out.push(b),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(digests: &[Digest], hex: &str, name: &str) -> Option<CheckLine> {
        Some(CheckLine {
            digests: digests.to_vec(),
            expected: unhex(hex.as_bytes(), false).unwrap(),
            name: name.as_bytes().to_vec(),
            shown: name.as_bytes().to_vec(),
        })
    }

    fn p(text: &str, digest: Option<Digest>) -> Option<CheckLine> {
        parse(text.as_bytes(), digest, false)
    }

    #[test]
    fn both_styles_and_their_variants() {
        let h = "99fc819aaba2462a";
        assert_eq!(
            p(&format!("XXH3 (a b.txt) = {h}"), None),
            line(&[Digest::Xxh3], h, "a b.txt")
        );
        assert_eq!(
            p(&format!("XXH3_{h}  f"), None),
            line(&[Digest::Xxh3], h, "f")
        );
        assert_eq!(
            p(&format!("{h}  f"), None),
            line(&[Digest::Xxh64, Digest::Xxh3], h, "f")
        );
        assert_eq!(
            p(&format!("{h} *f"), Some(Digest::Xxh3)),
            line(&[Digest::Xxh3], h, "f")
        );
        assert_eq!(
            p(&format!("  {}  (x)", h.to_uppercase()), None),
            line(&[Digest::Xxh64, Digest::Xxh3], h, "(x)")
        );
        let sha = "ab".repeat(32);
        assert_eq!(
            p(&format!("SHA256(f)= {sha}"), None),
            line(&[Digest::Sha256], &sha, "f")
        );
        assert_eq!(
            p(&format!("{sha}  f"), None).unwrap().digests,
            [Digest::Blake3, Digest::Sha256]
        );
        assert_eq!(
            p("CRC32C (f) = 0a0b0c0d", None).unwrap().digests,
            [Digest::Crc32c]
        );
    }

    #[test]
    fn little_endian_from_the_tag_or_the_flag() {
        let le = p("XXH32_LE (f) = 0d0c0b0a", None).unwrap();
        assert_eq!(le.expected, [0x0a, 0x0b, 0x0c, 0x0d]);
        let flag = parse(b"0d0c0b0a  f", None, true).unwrap();
        assert_eq!(flag.expected, [0x0a, 0x0b, 0x0c, 0x0d]);
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            "zz  f",
            "nonsense",
            "0a0b0c0d  ",
            "XXH3 (f) = 0a0b",
            "MD4 (f) = d41d8cd98f00b204e9800998ecf8427e",
            "\\0a0b0c0d  bad\\qescape",
        ] {
            assert_eq!(p(bad, None), None, "{bad}");
        }
        assert_eq!(p("0a0b0c0d  f", Some(Digest::Sha256)), None);
    }

    #[test]
    fn what_each_tool_skips() {
        assert_eq!(content(b"# note\n", Voice::Gnu), None);
        assert_eq!(content(b"\r\n", Voice::Zcopy), None);
        assert_eq!(content(b"\n", Voice::Xxhsum), Some(&b""[..]));
        assert_eq!(content(b"x\r\n", Voice::Xxhsum), Some(&b"x\r"[..]));
        assert_eq!(content(b"# note\r\n", Voice::B3sum), Some(&b"# note"[..]));
    }

    #[test]
    fn escaped_names_round_trip() {
        let name = b"a\nb\\c\rd";
        let zeros = "0".repeat(64);
        let out = format("SHA256", &zeros, name, Style::default());
        assert_eq!(
            out,
            [b"\\", zeros.as_bytes(), b"  a\\nb\\\\c\\rd\n"].concat()
        );
        let parsed = parse(&out[..out.len() - 1], None, false).unwrap();
        assert_eq!(parsed.name, name);
        let style = Style {
            tagged: true,
            ..Style::default()
        };
        let tagged = format("XXH3", "0a0b0c0d0e0f0a0b", name, style);
        assert_eq!(tagged, b"\\XXH3 (a\\nb\\\\c\\rd) = 0a0b0c0d0e0f0a0b\n");
        let parsed = parse(&tagged[..tagged.len() - 1], None, false).unwrap();
        assert_eq!(parsed.name, name);
        let zero = Style {
            zero: true,
            binary: true,
            ..Style::default()
        };
        assert_eq!(format("SHA256", "ab", b"a\nb", zero), b"ab *a\nb\0");
        assert_eq!(display(b"plain"), b"plain");
        assert_eq!(display(b"a\\b"), b"\\a\\\\b");
    }
}
