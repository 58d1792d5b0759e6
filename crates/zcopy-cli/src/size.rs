//! SIZE arguments: `1024`, `1KiB`, `64k`, `1M`, `1GiB`.
//!
//! `k`, `K`, `KiB`, `M`, `MiB`, `G`, `GiB`, `T`, `TiB` are powers of 1024; `KB`, `MB`,
//! `GB`, `TB` are powers of 1000, as in GNU `dd` and `truncate`.

/// Parses a SIZE; the error says what was wrong.
pub fn parse(text: &str) -> Result<u64, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 1024, 64k, 1MiB, 1G)"))?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{unit}' (use k, M, G, T, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// A SIZE that fits in memory, for buffer sizes.
pub fn parse_buffer(text: &str) -> Result<usize, String> {
    let n = parse(text)?;
    if n == 0 {
        return Err("a buffer needs at least 1 byte".into());
    }
    usize::try_from(n).map_err(|_| format!("'{text}' is too large for a buffer"))
}

/// Bytes in binary units for people: `1.5 GiB`, `64 KiB`, `12 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
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
        assert!(parse("").is_err());
        assert!(parse("k").is_err());
        assert!(parse("12q").is_err());
        assert!(parse("99999999999T").is_err());
        assert!(parse_buffer("0").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(65536), "64 KiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
