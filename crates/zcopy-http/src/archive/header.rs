//! A member's header blocks: ustar, with a PAX extended header before it when
//! ustar cannot hold the name, the link target or the size. Names are bytes as the
//! directory holds them; a PAX value that is not UTF-8 goes with
//! `hdrcharset=BINARY` (POSIX's word for "take these bytes as they are").

/// A tar block: headers and content are padded to it, and the end is two of them.
pub const BLOCK: u64 = 512;
/// The largest size ustar's 11 octal digits hold; beyond it the size goes in PAX.
const USTAR_SIZE_MAX: u64 = (1 << 33) - 1;

/// `size` rounded up to whole blocks.
pub fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

/// A member's headers: a PAX extended header first when ustar cannot hold the
/// name, the link target or the size, then the ustar header.
pub fn header(name: &[u8], kind: u8, link: &[u8], mode: u32, size: u64, mtime: i64) -> Vec<u8> {
    let mut pax = Vec::new();
    if (name.len() > 100 && std::str::from_utf8(name).is_err())
        || (link.len() > 100 && std::str::from_utf8(link).is_err())
    {
        pax_record(&mut pax, "hdrcharset", b"BINARY");
    }
    if name.len() > 100 {
        pax_record(&mut pax, "path", name);
    }
    if link.len() > 100 {
        pax_record(&mut pax, "linkpath", link);
    }
    if size > USTAR_SIZE_MAX {
        pax_record(&mut pax, "size", size.to_string().as_bytes());
    }
    let mut out = Vec::new();
    if !pax.is_empty() {
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(truncated(name, 89));
        out.extend(ustar(&pax_name, b'x', b"", 0o644, pax.len() as u64, mtime));
        let len = pax.len() as u64;
        out.extend(pax);
        out.resize(out.len() + (padded(len) - len) as usize, 0);
    }
    out.extend(ustar(
        truncated(name, 100),
        kind,
        truncated(link, 100),
        mode & 0o777,
        size.min(USTAR_SIZE_MAX),
        mtime,
    ));
    out
}

/// One PAX record, `LEN KEY=VALUE\n`, where LEN counts the whole record, itself too.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend(format!("{len} {key}=").into_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The longest prefix of `s` of at most `max` bytes that does not cut a UTF-8
/// character (any prefix of a name that is not UTF-8).
fn truncated(s: &[u8], max: usize) -> &[u8] {
    let Ok(text) = std::str::from_utf8(s) else {
        return &s[..s.len().min(max)];
    };
    let mut end = s.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A ustar header block.
fn ustar(name: &[u8], kind: u8, link: &[u8], mode: u32, size: u64, mtime: i64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, name);
    put(100, format!("{mode:07o}\0").as_bytes());
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{size:011o}\0").as_bytes());
    put(136, format!("{:011o}\0", mtime.max(0)).as_bytes());
    put(148, b"        ");
    put(156, &[kind]);
    put(157, link);
    put(257, b"ustar\0");
    put(263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", b"a");
        assert_eq!(out, b"9 path=a\n");
        let mut out = Vec::new();
        let long = "x".repeat(200);
        pax_record(&mut out, "path", long.as_bytes());
        let text = String::from_utf8(out).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }

    #[test]
    fn the_checksum_is_ustars() {
        let h = ustar(b"a", b'0', b"", 0o644, 5, 0);
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        assert_eq!(stored, sum);
    }

    #[test]
    fn names_not_utf8_are_cut_anywhere_and_marked_binary() {
        assert_eq!(truncated("aé".as_bytes(), 2), b"a");
        assert_eq!(truncated(b"a\xffb", 2), b"a\xff");
        let mut name = vec![b'n'; 120];
        name.push(0xff);
        let h = header(&name, b'0', b"", 0o644, 0, 0);
        let text = String::from_utf8_lossy(&h[512..1024]);
        assert!(text.contains("hdrcharset=BINARY\n"), "{text}");
    }
}
