//! File names quoted for messages as GNU coreutils quotes them (gnulib's quotearg),
//! in its two shell styles: [`Style::Shell`] (`quotef`: sha256sum and its
//! siblings) leaves a name bare when a shell would read it back unchanged, and
//! [`Style::ShellAlways`] (`quoteaf`: cp) always quotes.
//!
//! A quoted name is `"it's"` when it holds a `'` and only characters that mean
//! the same between double quotes; otherwise single-quoted runs, each `'` written
//! `'\''`, and what does not print in the locale as one `$'\ooo'` (`$'\n'`, ...)
//! outside them. Non-ASCII characters print in a UTF-8 locale (`LC_ALL`,
//! `LC_CTYPE` or `LANG` names one); in the C locale their bytes are escaped.
//! GNU 9.1 writes names that hold both a `'` and a byte that does not print in
//! ways of its own (an extra `''` in front, or a `$` dropped); those are written
//! by the rule above.

/// Which of quotearg's shell styles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Style {
    /// `shell-escape`: bare when that is safe, as `quotef` quotes.
    Shell,
    /// `shell-escape-always`: quoted even when bare would do, as `quoteaf` quotes.
    ShellAlways,
}

/// `name` quoted for a message in `style`, for the process's locale.
pub fn quote(name: &[u8], style: Style) -> String {
    quote_in(name, style, utf8_locale())
}

/// Whether the locale in the environment is a UTF-8 one.
fn utf8_locale() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// A character that prints, or bytes written as escapes.
enum Piece<'a> {
    Char(char),
    Escaped(&'a [u8]),
}

fn pieces(name: &[u8], utf8: bool) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    for chunk in name.utf8_chunks() {
        let valid = chunk.valid();
        for (i, c) in valid.char_indices() {
            let prints = if c.is_ascii() {
                !c.is_ascii_control()
            } else {
                utf8 && !c.is_control()
            };
            out.push(if prints {
                Piece::Char(c)
            } else {
                Piece::Escaped(&valid.as_bytes()[i..i + c.len_utf8()])
            });
        }
        if !chunk.invalid().is_empty() {
            out.push(Piece::Escaped(chunk.invalid()));
        }
    }
    out
}

fn quote_in(name: &[u8], style: Style, utf8: bool) -> String {
    let pieces = pieces(name, utf8);
    let chars: Option<Vec<char>> = pieces
        .iter()
        .map(|p| match p {
            Piece::Char(c) => Some(*c),
            Piece::Escaped(_) => None,
        })
        .collect();
    if let Some(chars) = chars {
        let text: String = chars.iter().collect();
        let bare = |(i, &c): (usize, &char)| {
            c.is_ascii_alphanumeric()
                || "%+,-./]_@".contains(c)
                || (i > 0 && "#~".contains(c))
                || (chars.len() > 1 && "{}".contains(c))
                || !c.is_ascii()
        };
        if style == Style::Shell && !chars.is_empty() && chars.iter().enumerate().all(bare) {
            return text;
        }
        let double =
            |c: &char| c.is_ascii_alphanumeric() || " %+,-./:@]_'".contains(*c) || !c.is_ascii();
        if chars.contains(&'\'') && chars.iter().all(double) {
            return format!("\"{text}\"");
        }
    }
    single_quoted(&pieces)
}

/// Single-quoted runs; `'\''` for a quote; escapes in `$'…'` between the runs.
fn single_quoted(pieces: &[Piece<'_>]) -> String {
    #[derive(PartialEq)]
    enum At {
        Quoted,
        Escapes,
    }
    let mut out = String::from("'");
    let mut at = At::Quoted;
    for piece in pieces {
        match piece {
            Piece::Char(c) => {
                // Closing the run (or the escapes), `\'`, and opening a new run.
                if *c == '\'' {
                    out.push_str("'\\''");
                } else {
                    if at == At::Escapes {
                        out.push_str("''");
                    }
                    out.push(*c);
                }
                at = At::Quoted;
            }
            Piece::Escaped(bytes) => {
                if at == At::Quoted {
                    out.push_str("'$'");
                    at = At::Escapes;
                }
                for &b in *bytes {
                    out.push_str(&escape_byte(b));
                }
            }
        }
    }
    out.push('\'');
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

    /// Each name as GNU coreutils 9.1 quotes it in a UTF-8 locale: sha256sum's
    /// `quotef`, then cp's `quoteaf`.
    #[test]
    fn as_coreutils_quotes_them() {
        for (name, shell, always) in [
            (&b"plain/name.txt"[..], "plain/name.txt", "'plain/name.txt'"),
            (b"d e x", "'d e x'", "'d e x'"),
            (b"", "''", "''"),
            (b"it's", "\"it's\"", "\"it's\""),
            (b"it's a", "\"it's a\"", "\"it's a\""),
            (b"'", "\"'\"", "\"'\""),
            (b"it's*", "'it'\\''s*'", "'it'\\''s*'"),
            (b"$a'", "'$a'\\'''", "'$a'\\'''"),
            (b"a:b", "'a:b'", "'a:b'"),
            (b"#a", "'#a'", "'#a'"),
            (b"a#", "a#", "'a#'"),
            (b"{", "'{'", "'{'"),
            (b"{}", "{}", "'{}'"),
            (b"\xc3\xa9", "\u{e9}", "'\u{e9}'"),
            (b"n\xffme", "'n'$'\\377''me'", "'n'$'\\377''me'"),
            (b"a\nb", "'a'$'\\n''b'", "'a'$'\\n''b'"),
            (b"\x01", "''$'\\001'", "''$'\\001'"),
            (b"\x01\x02", "''$'\\001\\002'", "''$'\\001\\002'"),
            (b"a\x01\x02b", "'a'$'\\001\\002''b'", "'a'$'\\001\\002''b'"),
            (b"\x01'", "''$'\\001'\\'''", "''$'\\001'\\'''"),
            (b"a b\x01", "'a b'$'\\001'", "'a b'$'\\001'"),
        ] {
            let shown = String::from_utf8_lossy(name);
            assert_eq!(quote_in(name, Style::Shell, true), shell, "{shown:?}");
            assert_eq!(
                quote_in(name, Style::ShellAlways, true),
                always,
                "{shown:?}"
            );
        }
    }

    #[test]
    fn the_c_locale_escapes_non_ascii_bytes() {
        assert_eq!(
            quote_in(b"\xc3\xa9", Style::Shell, false),
            "''$'\\303\\251'"
        );
        assert_eq!(
            quote_in(b"\xc3\xa9'", Style::ShellAlways, false),
            "''$'\\303\\251'\\'''"
        );
    }
}
