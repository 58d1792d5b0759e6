//! The access log (`zcopy serve -v`): one line per response on stderr, as text, as
//! JSON (`--log-format json`, times in ISO 8601), or as nginx's `combined` format
//! (`--log-format combined`), which goaccess and the awk scripts written for nginx
//! and Apache read. Without `-v` no record is built at all: a request costs no
//! allocation for a log nobody reads.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use crate::request::Request;
use crate::response::Status;

/// How access log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `PEER "METHOD TARGET" STATUS BYTES ENGINE DURATION`
    Text,
    /// One JSON object per line.
    Json,
    /// nginx's `combined`: `ADDR - USER [TIME] "REQUEST" STATUS BYTES "REFERER" "AGENT"`.
    Combined,
}

/// What is known of a request until its response is out.
pub struct Record {
    /// The request method, as sent.
    pub method: String,
    /// The request target, as sent.
    pub target: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub version: u8,
    /// The user named by Basic credentials, checked or not (nginx's `$remote_user`).
    pub user: Option<String>,
    /// The `Referer` header.
    pub referer: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The response status.
    pub status: Status,
    /// When the request arrived.
    pub started: Instant,
    /// Body bytes sent.
    pub bytes: u64,
    /// How the body went out: an engine's name, `memory`, or `-` (none).
    pub engine: &'static str,
}

impl Record {
    /// The record of `req`, or of a request that could not be parsed (`None`).
    pub fn new(req: Option<&Request<'_>>, status: Status) -> Record {
        Record {
            method: req.map_or("-", |r| r.method_name).to_string(),
            target: req.map_or("-", |r| r.target).to_string(),
            version: req.map_or(1, |r| r.version),
            user: req
                .and_then(|r| r.authorization)
                .and_then(crate::auth::basic_user),
            referer: req.and_then(|r| r.referer).map(str::to_string),
            user_agent: req.and_then(|r| r.user_agent).map(str::to_string),
            status,
            started: Instant::now(),
            bytes: 0,
            engine: "-",
        }
    }
}

/// Writes the line of a finished response.
pub fn write(format: LogFormat, peer: Option<SocketAddr>, record: &Record) {
    let engine = record.engine;
    let ms = record.started.elapsed().as_secs_f64() * 1e3;
    match format {
        LogFormat::Text => tracing::info!(
            "{} \"{} {}\" {} {} {engine} {ms:.3}ms",
            peer.map_or_else(|| "unix".to_string(), |p| p.to_string()),
            record.method,
            record.target,
            record.status.code(),
            record.bytes,
        ),
        LogFormat::Json => {
            let line = serde_json::json!({
                "time": iso_8601(SystemTime::now()),
                "peer": peer.map_or_else(|| "unix".to_string(), |p| p.to_string()),
                "method": record.method,
                "target": record.target,
                "status": record.status.code(),
                "bytes": record.bytes,
                "engine": engine,
                "ms": (ms * 1000.0).round() / 1000.0,
            });
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        LogFormat::Combined => {
            let line = combined(peer, record, SystemTime::now());
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

/// nginx's `combined` line: the address without its port (`unix:` for a Unix
/// socket, as nginx writes), the time as `[02/Dec/2026:05:14:38 +0000]`, the
/// quoted fields escaped as nginx escapes them (`"`, `\` and control bytes as `\xHH`).
fn combined(peer: Option<SocketAddr>, record: &Record, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, h, m, s, _) = civil(now);
    let mut line = String::with_capacity(160);
    match peer {
        Some(peer) => {
            let _ = write!(line, "{}", peer.ip());
        }
        None => line.push_str("unix:"),
    }
    line.push_str(" - ");
    match &record.user {
        Some(user) if !user.is_empty() => escaped(&mut line, user),
        _ => line.push('-'),
    }
    let month = MONTHS[month as usize - 1];
    let _ = write!(
        line,
        " [{day:02}/{month}/{year}:{h:02}:{m:02}:{s:02} +0000] \""
    );
    if record.method == "-" {
        line.push('-');
    } else {
        escaped(&mut line, &record.method);
        line.push(' ');
        escaped(&mut line, &record.target);
        let _ = write!(line, " HTTP/1.{}", record.version);
    }
    let _ = write!(line, "\" {} {} \"", record.status.code(), record.bytes);
    escaped(&mut line, record.referer.as_deref().unwrap_or("-"));
    line.push_str("\" \"");
    escaped(&mut line, record.user_agent.as_deref().unwrap_or("-"));
    line.push('"');
    line
}

fn escaped(line: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(line, "\\x{b:02X}");
        } else {
            line.push(b as char);
        }
    }
}

/// `2026-12-02T05:14:38.123Z`.
fn iso_8601(time: SystemTime) -> String {
    let (year, month, day, h, m, s, ms) = civil(time);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// The UTC calendar date and time of `time`: (year, month 1–12, day, hour,
/// minute, second, millisecond), by Howard Hinnant's `civil_from_days`.
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_agree_with_httpdate() {
        // Leap days, the turn of centuries, the epoch.
        for secs in [
            0u64,
            951_782_400,
            951_868_799,
            1_709_164_800,
            4_107_542_399,
            1_796_189_678,
        ] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let (y, mo, d, h, mi, s, _) = civil(t);
            let ours = format!("{d:02} {mo:02} {y} {h:02}:{mi:02}:{s:02}");
            let http = httpdate::fmt_http_date(t);
            let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
            let m = months.find(&http[8..11]).unwrap() / 3 + 1;
            let theirs = format!("{} {m:02} {} {}", &http[5..7], &http[12..16], &http[17..25]);
            assert_eq!(ours, theirs, "{secs}");
        }
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_189_678_042);
        assert_eq!(iso_8601(t), "2026-12-02T05:34:38.042Z");
    }

    #[test]
    fn a_combined_line() {
        let mut record = Record::new(None, Status::BadRequest);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_189_678);
        assert_eq!(
            combined(None, &record, t),
            "unix: - - [02/Dec/2026:05:34:38 +0000] \"-\" 400 0 \"-\" \"-\""
        );
        record.method = "GET".into();
        record.target = "/a b".into();
        record.user = Some("ann".into());
        record.user_agent = Some("say \"hi\"\\".into());
        record.bytes = 13;
        record.status = Status::Ok;
        let peer = Some("192.0.2.1:5555".parse().unwrap());
        assert_eq!(
            combined(peer, &record, t),
            "192.0.2.1 - ann [02/Dec/2026:05:34:38 +0000] \"GET /a b HTTP/1.1\" 200 13 \"-\" \"say \\x22hi\\x22\\x5C\""
        );
    }
}
