//! Percent-encoding (RFC 3986 §2.1) as the server and the client use it, on the
//! `percent-encoding` crate: decoding refuses a malformed escape (`%zz`, a `%` at
//! the end), as nginx answers 400 to one, instead of passing it through; encoding
//! keeps only the unreserved characters.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a path segment escapes: everything but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `%XX` escapes decoded to bytes; `None` for a malformed escape.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let mut escapes = s.split('%').skip(1);
    let well_formed = escapes
        .all(|after| after.len() >= 2 && after.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
    well_formed.then(|| percent_decode_str(s).collect())
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not UTF-8.
pub fn decode_utf8(s: &str) -> Option<String> {
    String::from_utf8(decode(s)?).ok()
}

/// A name as one path segment: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`.
pub fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_refuses_malformed_escapes() {
        assert_eq!(decode("/a%20b%2e%2E").unwrap(), b"/a b..");
        assert_eq!(decode("%ff").unwrap(), [0xff]);
        assert_eq!(decode("%%41"), None);
        assert!(decode("/%zz").is_none());
        assert!(decode("/%2").is_none());
        assert!(decode("/%").is_none());
        assert_eq!(decode_utf8("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_utf8("%ff"), None);
    }

    #[test]
    fn encoding_keeps_unreserved() {
        assert_eq!(encode_segment("a b#?"), "a%20b%23%3F");
        assert_eq!(encode_segment("A-z_0.9~/%"), "A-z_0.9~%2F%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
