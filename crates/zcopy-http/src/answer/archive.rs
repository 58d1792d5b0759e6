//! `GET /DIR/?archive=tar`: the folder as one POSIX tar stream of known length
//! ([`crate::archive`]), with a strong ETag, `Last-Modified` (its newest member),
//! `Content-Disposition: attachment`, ranges (`206`, several as
//! `multipart/byteranges`, `If-Range`), `304`s and HEAD.

use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::file::{if_range_matches, not_modified};
use super::{simple, Draft, Part};
use crate::archive::{body::Body, Archive};
use crate::context::Context;
use crate::files::{self, Refused};
use crate::range::{self, Span};
use crate::request::Request;
use crate::response::{self, Status};

/// Whether the target's query asks for the folder's archive (`archive=tar`).
pub(super) fn asked(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').any(|pair| pair == "archive=tar")
}

/// The archive's response to `req`.
pub(super) fn archive(
    conn: &mut Draft<'_>,
    req: &Request<'_>,
    cx: &Context<'_>,
    head_only: bool,
) -> (Status, u64) {
    let config = cx.config;
    let relative = match files::directory(&config.root, req.target, config.hidden) {
        Ok(relative) => relative,
        Err(refused) => {
            let (status, text) = match refused {
                Refused::Forbidden => (Status::Forbidden, "not served"),
                Refused::BadRequest => (Status::BadRequest, "malformed path"),
                Refused::NotFound => (Status::NotFound, "no such folder"),
            };
            return simple(conn, cx, status, text, &[], head_only);
        }
    };
    let top = match relative.rsplit_once('/') {
        Some((_, last)) => last.as_bytes(),
        None if relative != "." => relative.as_bytes(),
        None => config
            .root
            .path
            .file_name()
            .map_or(&b"archive"[..], |name| name.as_bytes()),
    };
    let archive = match Archive::plan(&config.root, &relative, top, config.hidden) {
        Ok(archive) => Rc::new(archive),
        Err(e) => {
            tracing::warn!(
                "{}: cannot archive: {e}",
                config.root.path.join(&relative).display()
            );
            return simple(
                conn,
                cx,
                Status::Forbidden,
                "cannot read this folder",
                &[],
                head_only,
            );
        }
    };
    let (etag, modified, size) = (archive.etag(), archive.modified(), archive.len());
    let date = cx.clock.date();
    let close = conn.close_after;
    if not_modified(req, etag, modified) {
        let out = &mut *conn.out;
        response::start(out, Status::NotModified, date, close);
        response::header(out, "ETag", etag);
        response::header(out, "Last-Modified", httpdate::fmt_http_date(modified));
        response::end(out);
        return (Status::NotModified, 0);
    }
    let range = match req.if_range {
        Some(validator)
            if !if_range_matches(validator, etag, modified, std::time::SystemTime::now()) =>
        {
            None
        }
        _ => req.range,
    };
    let (status, start, end) = match range::span(range, size) {
        Span::Full => (Status::Ok, 0, size),
        Span::Many(parts) => return several(conn, cx, &archive, &parts, head_only),
        Span::Part { start, end } => (Status::PartialContent, start, end + 1),
        Span::Unsatisfiable => {
            let range = format!("bytes */{size}");
            let extra = [("Content-Range", range.as_str())];
            return simple(
                conn,
                cx,
                Status::RangeNotSatisfiable,
                "range outside the archive",
                &extra,
                head_only,
            );
        }
    };
    let out = &mut *conn.out;
    response::start(out, status, date, close);
    response::header(out, "Content-Type", "application/x-tar");
    response::header(out, "Content-Length", end - start);
    if status == Status::PartialContent {
        response::header(
            out,
            "Content-Range",
            format_args!("bytes {start}-{}/{size}", end - 1),
        );
    }
    response::header(out, "Content-Disposition", disposition(top));
    response::header(out, "ETag", etag);
    response::header(out, "Last-Modified", httpdate::fmt_http_date(modified));
    out.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    if let Some(value) = &config.cache_control {
        response::header(out, "Cache-Control", value);
    }
    response::end(out);
    if head_only {
        return (status, 0);
    }
    conn.body
        .push(Part::Archive(Box::new(Body::new(archive, start, end))));
    (status, end - start)
}

/// Several ranges of the archive as `multipart/byteranges`, each part's bytes
/// sent as a single range's are.
fn several(
    conn: &mut Draft<'_>,
    cx: &Context<'_>,
    archive: &Rc<Archive>,
    parts: &[(u64, u64)],
    head_only: bool,
) -> (Status, u64) {
    let size = archive.len();
    let boundary = format!("zcopy-{}", archive.etag().trim_matches('"'));
    let mut length = 0;
    let mut body = Vec::new();
    for (i, &(start, end)) in parts.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        let part_head = format!(
            "{lead}--{boundary}\r\nContent-Type: application/x-tar\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
        );
        length += part_head.len() as u64 + end + 1 - start;
        body.push(Part::Bytes(part_head.into_bytes()));
        let part = Body::new(archive.clone(), start, end + 1);
        body.push(Part::Archive(Box::new(part)));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    length += tail.len() as u64;
    body.push(Part::Bytes(tail.into_bytes()));
    let out = &mut *conn.out;
    response::start(
        out,
        Status::PartialContent,
        cx.clock.date(),
        conn.close_after,
    );
    response::header(out, "Content-Length", length);
    let kind = format!("multipart/byteranges; boundary={boundary}");
    response::header(out, "Content-Type", kind);
    response::header(out, "ETag", archive.etag());
    let modified = httpdate::fmt_http_date(archive.modified());
    response::header(out, "Last-Modified", modified);
    response::end(out);
    if head_only {
        return (Status::PartialContent, 0);
    }
    conn.body.extend(body);
    (Status::PartialContent, length)
}

/// `attachment; filename="NAME.tar"`, the name's bytes outside printable ASCII
/// (and quotes, backslashes) as `_`, with RFC 6266's `filename*` in UTF-8 beside
/// it when that changed the name.
fn disposition(top: &[u8]) -> String {
    let plain: String = top
        .iter()
        .map(|&b| match b {
            b' '..=b'~' if b != b'"' && b != b'\\' => b as char,
            _ => '_',
        })
        .collect();
    let mut value = format!("attachment; filename=\"{plain}.tar\"");
    if plain.as_bytes() != top {
        value.push_str("; filename*=UTF-8''");
        for &b in top.iter().chain(b".tar") {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                value.push(b as char);
            } else {
                value.push_str(&format!("%{b:02X}"));
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_by_the_query() {
        assert!(asked("/a/?archive=tar"));
        assert!(asked("/a?x=1&archive=tar#top"));
        assert!(!asked("/a/"));
        assert!(!asked("/a/?archive=zip"));
        assert!(!asked("/archive=tar"));
    }

    #[test]
    fn dispositions() {
        assert_eq!(disposition(b"site"), "attachment; filename=\"site.tar\"");
        assert_eq!(
            disposition("caf\u{e9} \"x\"".as_bytes()),
            "attachment; filename=\"caf__ _x_.tar\"; filename*=UTF-8''caf%C3%A9%20%22x%22.tar"
        );
    }
}
