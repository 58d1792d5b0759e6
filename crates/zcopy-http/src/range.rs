//! Byte ranges: a `Range` header for a file of a given size, parsed from bytes
//! from the network, which may be hostile; nothing here panics on any input.

/// The parts of a file a `Range` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span {
    /// The whole file: no header, or an unusable one.
    Full,
    /// Bytes `start..=end` (206).
    Part {
        /// The first byte.
        start: u64,
        /// The last byte.
        end: u64,
    },
    /// Several parts, `(start, end)` inclusive, in the order asked, none
    /// overlapping (206 with `multipart/byteranges`).
    Many(Vec<(u64, u64)>),
    /// Nothing of the file can satisfy it (416).
    Unsatisfiable,
}

/// The most ranges one request may ask for; more get the whole file (nginx's
/// `max_ranges`), so that a tiny request cannot ask for a body many times the file.
pub const MAX_RANGES: usize = 16;

/// Interprets a `Range` header for a file of `size` bytes. A syntax error anywhere
/// gets the whole file, as the RFC requires; parts that cannot be satisfied are
/// dropped; overlapping parts are coalesced, as the RFC allows.
pub fn span(header: Option<&str>, size: u64) -> Span {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Span::Full;
    };
    let mut parts = Vec::new();
    for (i, item) in spec.split(',').enumerate() {
        if i == MAX_RANGES {
            return Span::Full;
        }
        match one_range(item.trim(), size) {
            None => return Span::Full,
            Some(Some(part)) => parts.push(part),
            Some(None) => {}
        }
    }
    let mut sorted = parts.clone();
    sorted.sort_unstable();
    if sorted
        .windows(2)
        .any(|w| w[1].0 <= w[0].1.saturating_add(1))
    {
        parts.clear();
        for (start, end) in sorted {
            match parts.last_mut() {
                Some((_, last)) if start <= last.saturating_add(1) => *last = (*last).max(end),
                _ => parts.push((start, end)),
            }
        }
    }
    match parts.as_slice() {
        [] => Span::Unsatisfiable,
        &[(start, end)] => Span::Part { start, end },
        _ => Span::Many(parts),
    }
}

/// One `first-last`, `first-` or `-suffix`: `None` for a syntax error,
/// `Some(None)` for a range outside the file.
fn one_range(item: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let (first, last) = item.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    Some(match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix)? {
            0 => None,
            _ if size == 0 => None,
            n => Some((size - n.min(size), size - 1)),
        },
        (start, "") => match number(start)? {
            s if s >= size => None,
            s => Some((s, size - 1)),
        },
        (start, end) => {
            let (s, e) = (number(start)?, number(end)?);
            if s > e {
                return None;
            }
            (s < size).then(|| (s, e.min(size - 1)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let p = |start, end| Span::Part { start, end };
        assert_eq!(span(None, 10), Span::Full);
        assert_eq!(span(Some("bytes=0-0"), 10), p(0, 0));
        assert_eq!(span(Some("bytes=2-5"), 10), p(2, 5));
        assert_eq!(span(Some("bytes=2-"), 10), p(2, 9));
        assert_eq!(span(Some("bytes=-3"), 10), p(7, 9));
        assert_eq!(span(Some("bytes=-30"), 10), p(0, 9));
        assert_eq!(span(Some("bytes=5-100"), 10), p(5, 9));
        assert_eq!(span(Some("bytes=10-"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-0"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-"), 0), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=5-2"), 10), Span::Full);
        assert_eq!(
            span(Some("bytes=0-1,4-5"), 10),
            Span::Many(vec![(0, 1), (4, 5)])
        );
        assert_eq!(
            span(Some("bytes=6-7, 0-1"), 10),
            Span::Many(vec![(6, 7), (0, 1)])
        );
        assert_eq!(
            span(Some("bytes=0-3,2-5,9-"), 10),
            Span::Many(vec![(0, 5), (9, 9)])
        );
        assert_eq!(span(Some("bytes=0-3,4-5"), 10), p(0, 5));
        assert_eq!(span(Some("bytes=0-1,20-30"), 10), p(0, 1));
        assert_eq!(span(Some("bytes=20-,30-"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-1,x"), 10), Span::Full);
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(span(Some(&many), 10), Span::Full);
        assert_eq!(span(Some("items=0-1"), 10), Span::Full);
        assert_eq!(span(Some("bytes=a-b"), 10), Span::Full);
        assert_eq!(span(Some("bytes=99999999999999999999999-"), 10), Span::Full);
    }

    /// Range arithmetic on many random headers and sizes: a part is always inside
    /// the file and never empty, and parsing never panics.
    #[test]
    fn range_properties() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..100_000 {
            let size = next(5) * next(1 << 20);
            let (a, b) = (next(size + 10), next(size + 10));
            let header = match next(4) {
                0 => format!("bytes={a}-{b}"),
                1 => format!("bytes={a}-"),
                2 => format!("bytes=-{b}"),
                _ => format!("bytes={a}-{b},{b}-,-{a}"),
            };
            match span(Some(&header), size) {
                Span::Part { start, end } => {
                    assert!(start <= end && end < size, "{header} of {size}")
                }
                Span::Unsatisfiable => assert!(
                    size == 0 || header.contains("-0") || a >= size,
                    "{header} of {size}"
                ),
                Span::Many(parts) => assert!(parts.iter().all(|&(s, e)| s <= e && e < size)),
                Span::Full => {}
            }
        }
    }
}
