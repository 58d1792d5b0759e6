//! The access log (`zcopy serve -v`): one line per response on stderr, as text or
//! as JSON (`--log-format json`). Without `-v` no record is built at all: a
//! request costs no allocation for a log nobody reads.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use crate::response::Status;

/// How access log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `PEER "METHOD TARGET" STATUS BYTES ENGINE DURATION`
    Text,
    /// One JSON object per line.
    Json,
}

/// What is known of a request until its response is out.
pub struct Record {
    pub method: String,
    pub target: String,
    pub status: Status,
    pub started: Instant,
    pub bytes: u64,
    /// How the body went out: an engine's name, `memory`, or `-` (none).
    pub engine: &'static str,
}

impl Record {
    pub fn new(method: &str, target: &str, status: Status) -> Record {
        Record {
            method: method.to_string(),
            target: target.to_string(),
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
    let peer = peer.map_or_else(|| "unix".to_string(), |p| p.to_string());
    let ms = record.started.elapsed().as_secs_f64() * 1e3;
    match format {
        LogFormat::Text => tracing::info!(
            "{peer} \"{} {}\" {} {} {engine} {ms:.3}ms",
            record.method,
            record.target,
            record.status.code(),
            record.bytes,
        ),
        LogFormat::Json => {
            let line = serde_json::json!({
                "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
                "peer": peer,
                "method": record.method,
                "target": record.target,
                "status": record.status.code(),
                "bytes": record.bytes,
                "engine": engine,
                "ms": (ms * 1000.0).round() / 1000.0,
            });
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}
