//! Sizes as people write them and read them.
//!
//! SIZE arguments: `1024`, `1KiB`, `64k`, `1M`, `1GiB`, `1kb`, `1.5KiB`.
//!
//! Units are case-insensitive. `k`, `KiB`, `M`, `MiB`, `G`, `GiB`, `T`, `TiB` are
//! powers of 1024; `KB`, `MB`, `GB`, `TB` are powers of 1000, as in GNU `dd` and
//! `truncate`. A decimal point is allowed where the result is a whole number of
//! bytes (`1.5KiB` is 1536, `0.5` is refused).

/// Parses a SIZE; the error says what was wrong.
pub fn parse(text: &str) -> Result<u64, String> {
    let number_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let not_a_size = || format!("'{text}' is not a size (examples: 1024, 64k, 1MiB, 1.5G, 1kb)");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return Err(not_a_size());
    }
    let scale: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{unit}' (use k, M, G, T, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let digits = |s: &str| -> Result<u128, String> {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse().map_err(|_| not_a_size())
        }
    };
    let too_large = || format!("'{text}' is too large");
    let denominator = 10u128.pow(fraction.len() as u32);
    let numerator = digits(whole)?
        .checked_mul(denominator)
        .and_then(|n| n.checked_add(digits(fraction).ok()?))
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(too_large)?;
    if numerator % denominator != 0 {
        return Err(format!("'{text}' is not a whole number of bytes"));
    }
    u64::try_from(numerator / denominator).map_err(|_| too_large())
}

/// A SIZE that fits in memory, for buffer sizes.
pub fn parse_buffer(text: &str) -> Result<usize, String> {
    let n = parse(text)?;
    if n == 0 {
        return Err("a buffer needs at least 1 byte".into());
    }
    usize::try_from(n).map_err(|_| format!("'{text}' is too large for a buffer"))
}

/// Bytes in binary units for people, as `ls -h` and `du -h` round them: one
/// decimal below 10 of a unit, none from 10 up: `12 B`, `1.5 KiB`, `3.0 MiB`,
/// `64 KiB`, `200 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_the_contract() {
        assert_eq!(parse("1024"), Ok(1024));
        assert_eq!(parse("1KiB"), Ok(1024));
        assert_eq!(parse("64k"), Ok(65536));
        assert_eq!(parse("1M"), Ok(1 << 20));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("1MB"), Ok(1_000_000));
        assert_eq!(parse("1kb"), Ok(1000));
        assert_eq!(parse("1kib"), Ok(1024));
        assert_eq!(parse("1.5KiB"), Ok(1536));
        assert_eq!(parse("1.5k"), Ok(1536));
        assert_eq!(parse("0.5gb"), Ok(500_000_000));
        assert_eq!(parse(".5K"), Ok(512));
        assert_eq!(parse("2."), Ok(2));
        assert!(parse("0.5").is_err(), "half a byte");
        assert!(parse("1.2.3k").is_err());
        assert!(parse(".").is_err());
        assert!(parse("1e3").is_err());
        assert!(parse("-1k").is_err());
        assert!(parse("").is_err());
        assert!(parse("k").is_err());
        assert!(parse("12q").is_err());
        assert!(parse("99999999999T").is_err());
        assert!(parse_buffer("0").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(65536), "64 KiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(200 << 30), "200 GiB");
        assert_eq!(human(u64::MAX), "16 EiB");
    }
}
