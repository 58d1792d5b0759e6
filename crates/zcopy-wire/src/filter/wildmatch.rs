//! rsync's wildcards over bytes: `*` matches any run of bytes but `/`, `**` any
//! run at all, `?` one byte but `/`, `[abc]`, `[a-z]`, `[!x]` (or `[^x]`) one byte
//! of a class, `\x` the byte `x` itself. Names are bytes, so patterns are too: a
//! name that is not UTF-8 is matched as it is.
//!
//! Failed (pattern, text) positions are remembered, so a pattern with many stars
//! costs at most its length times the text's, never an exponential search: the
//! patterns a receiver matches come from the sender.

use std::collections::HashSet;

/// Whether `pattern` matches the whole of `text`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    Matcher {
        pattern,
        text,
        failed: HashSet::new(),
    }
    .at(0, 0)
}

struct Matcher<'a> {
    pattern: &'a [u8],
    text: &'a [u8],
    failed: HashSet<(usize, usize)>,
}

impl Matcher<'_> {
    fn at(&mut self, p: usize, t: usize) -> bool {
        if self.failed.contains(&(p, t)) {
            return false;
        }
        let found = self.step(p, t);
        if !found {
            self.failed.insert((p, t));
        }
        found
    }

    fn step(&mut self, p: usize, t: usize) -> bool {
        let (pattern, text) = (self.pattern, self.text);
        let Some(&c) = pattern.get(p) else {
            return t == text.len();
        };
        match c {
            b'*' => {
                let double = pattern.get(p + 1) == Some(&b'*');
                let mut rest = p + 1;
                while pattern.get(rest) == Some(&b'*') {
                    rest += 1;
                }
                for end in t..=text.len() {
                    if self.at(rest, end) {
                        return true;
                    }
                    if !double && text.get(end) == Some(&b'/') {
                        return false;
                    }
                }
                false
            }
            b'?' => text.get(t).is_some_and(|&b| b != b'/') && self.at(p + 1, t + 1),
            b'[' => match class(&pattern[p..], text.get(t).copied()) {
                Some((true, len)) => self.at(p + len, t + 1),
                Some((false, _)) => false,
                // No closing `]`: the `[` is itself.
                None => text.get(t) == Some(&b'[') && self.at(p + 1, t + 1),
            },
            b'\\' if p + 1 < pattern.len() => {
                text.get(t) == Some(&pattern[p + 1]) && self.at(p + 2, t + 1)
            }
            _ => text.get(t) == Some(&c) && self.at(p + 1, t + 1),
        }
    }
}

/// A class at the start of `pattern` (`[`…`]`) against `byte`: whether it
/// matches and the class's length; `None` if the class is not closed.
fn class(pattern: &[u8], byte: Option<u8>) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let c = *pattern.get(i)?;
        if c == b']' && !first {
            let hit = byte.is_some_and(|b| b != b'/') && found != negated;
            return Some((hit, i + 1));
        }
        first = false;
        let (low, next) = if c == b'\\' {
            (*pattern.get(i + 1)?, i + 2)
        } else {
            (c, i + 1)
        };
        if pattern.get(next) == Some(&b'-') && pattern.get(next + 1).is_some_and(|&h| h != b']') {
            let high = pattern[next + 1];
            found |= byte.is_some_and(|b| low <= b && b <= high);
            i = next + 2;
        } else {
            found |= byte == Some(low);
            i = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_questions_and_classes() {
        assert!(matches(b"*.o", b"main.o"));
        assert!(!matches(b"*.o", b"dir/main.o"));
        assert!(matches(b"**.o", b"dir/main.o"));
        assert!(matches(b"a/**/z", b"a/b/c/z"));
        assert!(matches(b"?x", b"ax"));
        assert!(!matches(b"?x", b"/x"));
        assert!(matches(b"[a-c]1", b"b1"));
        assert!(!matches(b"[!a-c]1", b"b1"));
        assert!(matches(b"[]x]", b"]"));
        assert!(matches(b"\\*", b"*"));
        assert!(!matches(b"\\*", b"a"));
        assert!(matches(b"bad\xff*", b"bad\xffname"));
        assert!(matches(b"[x", b"[x"));
    }

    #[test]
    fn many_stars_stay_cheap() {
        let text = [b'a'; 200];
        assert!(!matches(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &text));
    }
}
