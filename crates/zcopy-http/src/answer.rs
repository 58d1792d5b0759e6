//! From a request to its response: files (whole, one range, several ranges as
//! `multipart/byteranges`, precompressed siblings, conditional requests),
//! listings, redirects, refusals, and uploads.

use std::time::SystemTime;

use crate::conn::{Conn, Context, Part, Phase};
use crate::listing;
use crate::open_files::{Entry, Lookup, Variants};
use crate::range::{self, Span};
use crate::request::{Method, Request};
use crate::response::{self, Status};
use crate::upload::{self, Upload};

/// The address failed logins are counted under; clients of a Unix socket share one.
fn client_ip(conn: &Conn) -> std::net::IpAddr {
    conn.peer
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip())
}

/// Refuses a peer on this machine that is neither this process's user nor root:
/// over loopback by its socket's owner, over a Unix socket by its credentials.
fn local_uploader(conn: &Conn) -> Result<(), String> {
    match conn.peer {
        Some(peer) => {
            let local = rustix::net::getsockname(&conn.socket)
                .ok()
                .and_then(|a| std::net::SocketAddr::try_from(a).ok())
                .ok_or("the connection's local address is unknown")?;
            zcopy_wire::peer_owner::admit(local, peer).map_err(|e| e.to_string())
        }
        None => {
            let cred = rustix::net::sockopt::socket_peercred(&conn.socket)
                .map_err(|e| format!("the peer's credentials: {e}"))?;
            let (uid, ours) = (cred.uid.as_raw(), rustix::process::geteuid().as_raw());
            if uid == ours || uid == 0 {
                Ok(())
            } else {
                Err(format!("a connection from uid {uid}, another local user"))
            }
        }
    }
}

/// Answers `req`: the response is left in `conn` to be written.
pub fn respond(conn: &mut Conn, req: &Request<'_>, cx: &mut Context<'_>) {
    conn.close_after = !req.keep_alive;
    let head_only = req.method == Method::Head;
    // Without --auth-file, uploads come only from this user or root (any local
    // account reaches loopback).
    let refusal = match (req.method, cx.config.max_upload, &cx.config.uploaders) {
        (Method::Put, Some(_), None) => local_uploader(conn).err(),
        _ => None,
    };
    let (status, bytes) = match (req.method, cx.config.max_upload) {
        _ if !req.host_ok() => {
            conn.close_after = true;
            simple(
                conn,
                cx,
                Status::BadRequest,
                "HTTP/1.1 needs one Host header",
                &[],
                head_only,
            )
        }
        (Method::Get | Method::Head, _) => path(conn, req, cx, head_only),
        (Method::Put, Some(_))
            if cx
                .config
                .uploaders
                .as_ref()
                .is_some_and(|u| !u.admits(req.authorization, client_ip(conn))) =>
        {
            conn.close_after = true;
            let challenge = [(
                "WWW-Authenticate",
                "Basic realm=\"zcopy uploads\", charset=\"UTF-8\"",
            )];
            simple(
                conn,
                cx,
                Status::Unauthorized,
                "uploads need credentials",
                &challenge,
                false,
            )
        }
        (Method::Put, Some(_)) if refusal.is_some() => {
            let why = refusal.unwrap_or_default();
            tracing::warn!("{}: upload refused: {why}", client_ip(conn));
            conn.close_after = true;
            simple(
                conn,
                cx,
                Status::Forbidden,
                "uploads from another local user need --auth-file",
                &[],
                false,
            )
        }
        (Method::Put, Some(max)) => {
            let length = req.content_length.unwrap_or(0);
            match upload::start(&cx.config.root, req.target, length, max, cx.config.hidden) {
                upload::Start::Refuse(status, why) => {
                    conn.close_after = true;
                    simple(conn, cx, status, why, &[], false)
                }
                upload::Start::Receive(upload) => {
                    if cx.config.log.is_some() {
                        conn.record = Some(Box::new(crate::access_log::Record::new(
                            Some(req),
                            Status::Continue,
                        )));
                    }
                    conn.deadline = cx.clock.now() + cx.config.idle_timeout;
                    conn.phase = if req.expect_continue {
                        conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        Phase::Continuing(upload)
                    } else {
                        Phase::ReadingBody(upload)
                    };
                    return;
                }
            }
        }
        (Method::Put, None) => {
            // A PUT's body is not read: the connection cannot carry another request.
            conn.close_after = true;
            let allow = [("Allow", "GET, HEAD")];
            simple(
                conn,
                cx,
                Status::MethodNotAllowed,
                "only GET and HEAD",
                &allow,
                false,
            )
        }
        (Method::Other, None) => {
            let allow = [("Allow", "GET, HEAD")];
            simple(
                conn,
                cx,
                Status::MethodNotAllowed,
                "only GET and HEAD",
                &allow,
                head_only,
            )
        }
        (Method::Other, Some(_)) => {
            let allow = [("Allow", "GET, HEAD, PUT")];
            simple(
                conn,
                cx,
                Status::MethodNotAllowed,
                "only GET, HEAD and PUT",
                &allow,
                false,
            )
        }
    };
    conn.begin(cx, Some(req), status, bytes);
}

/// An upload's body is in: store it and answer.
pub fn stored(conn: &mut Conn, upload: Upload, cx: &mut Context<'_>) {
    let bytes = upload.received();
    cx.syscalls.add(&upload.syscalls());
    if let Some(record) = &mut conn.record {
        record.engine = upload.engine();
    }
    let status = match upload.finish() {
        Ok(Status::NoContent) => {
            response::start(
                &mut conn.out,
                Status::NoContent,
                cx.clock.date(),
                conn.close_after,
            );
            response::end(&mut conn.out);
            Status::NoContent
        }
        Ok(status) => {
            let location = conn
                .record
                .as_ref()
                .map(|r| r.target.clone())
                .unwrap_or_default();
            simple(
                conn,
                cx,
                status,
                "stored",
                &[("Location", &location)],
                false,
            );
            status
        }
        Err(why) => {
            let peer = conn
                .peer
                .map_or_else(|| "unix".to_string(), |p| p.to_string());
            tracing::warn!("{peer}: {why}");
            conn.close_after = true;
            simple(
                conn,
                cx,
                Status::InternalServerError,
                "cannot store the file",
                &[],
                false,
            );
            Status::InternalServerError
        }
    };
    conn.begin(cx, None, status, bytes);
}

fn simple(
    conn: &mut Conn,
    cx: &Context<'_>,
    status: Status,
    text: &str,
    extra: &[(&str, &str)],
    head_only: bool,
) -> (Status, u64) {
    let date = cx.clock.date();
    let bytes = response::simple(
        &mut conn.out,
        status,
        text,
        extra,
        date,
        conn.close_after,
        head_only,
    );
    (status, bytes)
}

fn path(
    conn: &mut Conn,
    req: &Request<'_>,
    cx: &mut Context<'_>,
    head_only: bool,
) -> (Status, u64) {
    match cx.files.resolve(cx.config, req.target, cx.clock.now()) {
        Lookup::File(variants) => file(conn, req, cx, &variants, head_only),
        Lookup::Listing(dir, relative, shown) => {
            match listing::read(&cx.config.root, &dir, &relative, cx.config.hidden) {
                Ok(entries) => {
                    let (body, kind) = if wants_json(req.accept) {
                        (listing::json(&entries, &shown), "application/json")
                    } else {
                        (listing::html(&entries, &shown), "text/html; charset=utf-8")
                    };
                    let out = &mut conn.out;
                    response::start(out, Status::Ok, cx.clock.date(), conn.close_after);
                    response::header(out, "Content-Type", kind);
                    response::header(out, "Content-Length", body.len());
                    out.extend_from_slice(b"Vary: Accept\r\n");
                    response::end(out);
                    if head_only {
                        return (Status::Ok, 0);
                    }
                    out.extend_from_slice(&body);
                    (Status::Ok, body.len() as u64)
                }
                Err(_) => simple(
                    conn,
                    cx,
                    Status::Forbidden,
                    "cannot list this directory",
                    &[],
                    head_only,
                ),
            }
        }
        Lookup::Redirect(location) => simple(
            conn,
            cx,
            Status::MovedPermanently,
            "see the directory's address",
            &[("Location", &location)],
            head_only,
        ),
        Lookup::NotFound => simple(conn, cx, Status::NotFound, "no such file", &[], head_only),
        Lookup::Forbidden => simple(conn, cx, Status::Forbidden, "not served", &[], head_only),
        Lookup::BadRequest => {
            conn.close_after = true;
            simple(
                conn,
                cx,
                Status::BadRequest,
                "malformed path",
                &[],
                head_only,
            )
        }
    }
}

/// A listing goes out as JSON to a client that asks for JSON and not for HTML.
fn wants_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

fn file(
    conn: &mut Conn,
    req: &Request<'_>,
    cx: &Context<'_>,
    variants: &Variants,
    head_only: bool,
) -> (Status, u64) {
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
    if not_modified(req, entry) {
        let out = &mut conn.out;
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
                response::start(&mut conn.out, Status::Ok, date, close);
                response::header(&mut conn.out, "Content-Length", size);
                entry.representation_headers(&mut conn.out, config, true, digest.as_deref());
                response::end(&mut conn.out);
            } else {
                response::cached(&mut conn.out, &entry.head, date, close);
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
                _ => conn.body.push_back(Part::File {
                    file: entry.file.clone(),
                    start: 0,
                    end: size,
                }),
            }
            (Status::Ok, size)
        }
        Span::Part { start, end } => {
            let out = &mut conn.out;
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
            conn.body.push_back(Part::File {
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
            let out = &mut conn.out;
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
fn if_range_matches(validator: &str, etag: &str, modified: SystemTime, now: SystemTime) -> bool {
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

fn not_modified(req: &Request<'_>, entry: &Entry) -> bool {
    match (req.if_none_match, req.if_modified_since) {
        (Some(tags), _) => tags.split(',').map(str::trim).any(|t| {
            t == "*" || t == entry.etag || t.strip_prefix("W/") == Some(entry.etag.as_str())
        }),
        (None, Some(since)) => httpdate::parse_http_date(since).is_ok_and(|since| {
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            secs(entry.modified) <= secs(since)
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
