//! A file's response: whole (from memory under `auto` when it is small), one
//! range, several ranges as `multipart/byteranges`, `304 Not Modified`,
//! `If-Range` (a range of another version goes out as the whole file), and a
//! text file's body compressed on the fly ([`crate::compress`]).

use std::time::SystemTime;

use super::{simple, Draft, Part};
use crate::compress;
use crate::context::Context;
use crate::open_files::{Entry, Variants};
use crate::range::{self, Span};
use crate::request::Request;
use crate::response::{self, Status};

/// `entry`'s response to `req`, one of `variants` chosen by its `Accept-Encoding`.
pub(super) fn file(
    conn: &mut Draft<'_>,
    req: &Request<'_>,
    cx: &mut Context<'_>,
    variants: &Variants,
    head_only: bool,
) -> (Status, u64) {
    if let Some(answer) = coded(conn, req, cx, variants, head_only) {
        return answer;
    }
    let entry = variants.choose(req.accept_encoding);
    let config = cx.config;
    let date = cx.clock.date();
    let close = conn.close_after;
    // Known when the entry was made, except while a large file is being hashed.
    let pending = entry.digest_pending(config);
    let digest = if pending {
        config
            .digests
            .as_ref()
            .and_then(|d| d.repr_digest(&entry.file, &entry.meta))
    } else {
        entry.digest.clone()
    };
    if not_modified(req, &entry.etag, entry.modified) {
        let out = &mut *conn.out;
        response::start(out, Status::NotModified, date, close);
        response::header(out, "ETag", &entry.etag);
        response::header(
            out,
            "Last-Modified",
            httpdate::fmt_http_date(entry.modified),
        );
        if entry.vary {
            out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
        }
        if let Some(value) = &config.cache_control {
            response::header(out, "Cache-Control", value);
        }
        response::end(out);
        return (Status::NotModified, 0);
    }
    let size = entry.size;
    // A range of another version would be stitched onto the client's copy of the
    // old one: when the validator does not match, the whole file goes out.
    let range = match req.if_range {
        Some(validator)
            if !if_range_matches(validator, &entry.etag, entry.modified, SystemTime::now()) =>
        {
            None
        }
        _ => req.range,
    };
    match range::span(range, size) {
        Span::Full => {
            if pending {
                response::start(conn.out, Status::Ok, date, close);
                response::header(conn.out, "Content-Length", size);
                entry.representation_headers(conn.out, config, true, digest.as_deref());
                response::end(conn.out);
            } else {
                response::cached(conn.out, &entry.head, date, close);
            }
            if head_only || size == 0 {
                return (Status::Ok, 0);
            }
            match &entry.bytes {
                // Under `auto`, a small body goes out from memory with its head, in one send.
                Some(bytes) if config.engine == zcopy::EngineChoice::Auto => {
                    conn.out.extend_from_slice(bytes);
                    conn.memory_body = true;
                }
                _ => conn.body.push(Part::File {
                    file: entry.file.clone(),
                    start: 0,
                    end: size,
                }),
            }
            (Status::Ok, size)
        }
        Span::Part { start, end } => {
            let out = &mut *conn.out;
            response::start(out, Status::PartialContent, date, close);
            response::header(out, "Content-Length", end + 1 - start);
            response::header(
                out,
                "Content-Range",
                format_args!("bytes {start}-{end}/{size}"),
            );
            entry.representation_headers(out, config, true, digest.as_deref());
            response::end(out);
            if head_only {
                return (Status::PartialContent, 0);
            }
            conn.body.push(Part::File {
                file: entry.file.clone(),
                start,
                end: end + 1,
            });
            (Status::PartialContent, end + 1 - start)
        }
        Span::Many(parts) => {
            let boundary = boundary(entry);
            let mut length = 0;
            let mut body = Vec::new();
            for (i, &(start, end)) in parts.iter().enumerate() {
                let lead = if i == 0 { "" } else { "\r\n" };
                let part_head = format!(
                    "{lead}--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n",
                    entry.content_type
                );
                length += part_head.len() as u64 + end + 1 - start;
                body.push(Part::Bytes(part_head.into_bytes()));
                body.push(Part::File {
                    file: entry.file.clone(),
                    start,
                    end: end + 1,
                });
            }
            let tail = format!("\r\n--{boundary}--\r\n");
            length += tail.len() as u64;
            body.push(Part::Bytes(tail.into_bytes()));
            let out = &mut *conn.out;
            response::start(out, Status::PartialContent, date, close);
            response::header(out, "Content-Length", length);
            response::header(
                out,
                "Content-Type",
                format_args!("multipart/byteranges; boundary={boundary}"),
            );
            entry.representation_headers(out, config, false, digest.as_deref());
            response::end(out);
            if head_only {
                return (Status::PartialContent, 0);
            }
            conn.body.extend(body);
            (Status::PartialContent, length)
        }
        Span::Unsatisfiable => {
            let range = format!("bytes */{size}");
            simple(
                conn,
                cx,
                Status::RangeNotSatisfiable,
                "range outside the file",
                &[("Content-Range", &range)],
                head_only,
            )
        }
    }
}

/// The answer with the file's body compressed on the fly, when it is a text file
/// without siblings, the request takes zstd or gzip and asks for no range, and the
/// coding saves bytes; `None` otherwise (the identity answer follows).
fn coded(
    conn: &mut Draft<'_>,
    req: &Request<'_>,
    cx: &mut Context<'_>,
    variants: &Variants,
    head_only: bool,
) -> Option<(Status, u64)> {
    let plain = &variants.plain;
    if !plain.compressible || req.range.is_some() {
        return None;
    }
    let coding = compress::choose(req.accept_encoding?)?;
    let (coded, added) = variants.coded(coding, cx.config);
    cx.files.hold(added);
    let coded = coded?;
    let (date, close) = (cx.clock.date(), conn.close_after);
    if not_modified(req, &coded.etag, plain.modified) {
        let out = &mut *conn.out;
        response::start(out, Status::NotModified, date, close);
        response::header(out, "ETag", &coded.etag);
        response::header(
            out,
            "Last-Modified",
            httpdate::fmt_http_date(plain.modified),
        );
        out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
        if let Some(value) = &cx.config.cache_control {
            response::header(out, "Cache-Control", value);
        }
        response::end(out);
        return Some((Status::NotModified, 0));
    }
    response::cached(conn.out, &coded.head, date, close);
    if head_only {
        return Some((Status::Ok, 0));
    }
    conn.out.extend_from_slice(&coded.body);
    conn.memory_body = true;
    Some((Status::Ok, coded.body.len() as u64))
}

/// A multipart boundary: it must not occur in the parts, so it carries the
/// file's version and the moment, in a form file bytes are unlikely to hold.
fn boundary(entry: &Entry) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag = entry.etag.trim_matches('"');
    format!("zcopy-{tag}-{nanos:08x}")
}

/// `If-Range` (RFC 9110 §13.1.5): an entity tag matches by strong comparison
/// (a weak one never does); a date matches only if it is the file's Last-Modified
/// and that is a strong validator, at least a second before now (§8.8.2.2); nginx
/// compares the date for equality alone.
pub(super) fn if_range_matches(
    validator: &str,
    etag: &str,
    modified: SystemTime,
    now: SystemTime,
) -> bool {
    if validator.starts_with('"') {
        return validator == etag;
    }
    if validator.starts_with("W/") {
        return false;
    }
    let Ok(date) = httpdate::parse_http_date(validator) else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    secs(date) == secs(modified) && secs(modified) < secs(now)
}

/// `If-None-Match` (weak comparison), else `If-Modified-Since`, against a
/// representation's tag and time.
pub(super) fn not_modified(req: &Request<'_>, etag: &str, modified: SystemTime) -> bool {
    match (req.if_none_match, req.if_modified_since) {
        (Some(tags), _) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)),
        (None, Some(since)) => httpdate::parse_http_date(since).is_ok_and(|since| {
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            secs(modified) <= secs(since)
        }),
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn if_range_validators() {
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_189_678);
        let date = httpdate::fmt_http_date(modified);
        let later = modified + Duration::from_secs(5);
        let tag = "\"6b2f-1000\"";
        assert!(if_range_matches(tag, tag, modified, later));
        assert!(!if_range_matches("\"6b2f-1001\"", tag, modified, later));
        assert!(!if_range_matches("W/\"6b2f-1000\"", tag, modified, later));
        assert!(if_range_matches(&date, tag, modified, later));
        assert!(!if_range_matches(
            &date,
            tag,
            modified + Duration::from_secs(1),
            later
        ));
        // Modified in the second it is served: the date is a weak validator.
        let same_second = modified + Duration::from_millis(400);
        assert!(!if_range_matches(&date, tag, modified, same_second));
        assert!(!if_range_matches("yesterday", tag, modified, later));
    }
}
