//! From a request to its response: files (whole, one range, several ranges as
//! `multipart/byteranges`, precompressed siblings, conditional requests),
//! listings, redirects, refusals, and uploads. [`respond`] returns a [`Response`]
//! whose head is in the connection's reused output buffer; the connection takes
//! the rest on.

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::rc::Rc;

mod archive;
mod file;

use crate::context::Context;
use crate::listing;
use crate::open_files::Lookup;
use crate::request::{Method, Request};
use crate::response::{self, Status};
use crate::upload::{self, Upload};

/// A part of a response body after the head.
pub enum Part {
    /// Bytes from memory (a multipart boundary and part head).
    Bytes(Vec<u8>),
    /// Bytes `start..end` of a file, through the transfer engine.
    File {
        /// The open file.
        file: Rc<File>,
        /// The first byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Bytes of a folder's tar stream: headers from memory, contents from the files.
    Archive(Box<crate::archive::body::Body>),
}

/// What the connection does after the head in its output buffer.
pub enum Next {
    /// Send the response: `status`, with `bytes` of body (for the access log).
    Send {
        /// The status the head carries.
        status: Status,
        /// The body's length.
        bytes: u64,
    },
    /// Read an upload's body into its file (after `100 Continue` when the client
    /// waits for it).
    Receive {
        /// Where the body goes.
        upload: Box<Upload>,
        /// `Expect: 100-continue`.
        expect_continue: bool,
    },
}

/// A response, made from a request: its head (and a body kept in memory) was
/// written into the output buffer given; the rest is here for the connection.
pub struct Response {
    /// The connection ends after this response.
    pub close_after: bool,
    /// The body went into the output buffer with the head.
    pub memory_body: bool,
    /// The body's parts after the head.
    pub body: Vec<Part>,
    /// What follows the head.
    pub next: Next,
}

/// A response being made, and the connection it is for.
struct Draft<'a> {
    out: &'a mut Vec<u8>,
    close_after: bool,
    memory_body: bool,
    body: Vec<Part>,
    /// `None` for a Unix-domain peer.
    peer: Option<SocketAddr>,
}

impl Draft<'_> {
    fn then(self, next: Next) -> Response {
        Response {
            close_after: self.close_after,
            memory_body: self.memory_body,
            body: self.body,
            next,
        }
    }
}

/// The address failed logins are counted under; clients of a Unix socket share one.
fn client_ip(conn: &Draft<'_>) -> std::net::IpAddr {
    conn.peer
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip())
}

/// Refuses a peer on this machine that is neither this process's user nor root:
/// over loopback by its socket's owner, over a Unix socket by its credentials.
fn local_uploader(peer: Option<SocketAddr>, socket: BorrowedFd<'_>) -> Result<(), String> {
    match peer {
        Some(peer) => {
            let local = rustix::net::getsockname(socket)
                .ok()
                .and_then(|a| std::net::SocketAddr::try_from(a).ok())
                .ok_or("the connection's local address is unknown")?;
            zcopy_wire::peer_owner::admit(local, peer).map_err(|e| e.to_string())
        }
        None => {
            let cred = rustix::net::sockopt::socket_peercred(socket)
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

/// Answers `req` from `peer` on `socket`: the head goes into `out`.
pub fn respond(
    req: &Request<'_>,
    peer: Option<SocketAddr>,
    socket: BorrowedFd<'_>,
    out: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Response {
    let mut conn = Draft {
        out,
        close_after: !req.keep_alive,
        memory_body: false,
        body: Vec::new(),
        peer,
    };
    let next = reply(&mut conn, socket, req, cx);
    conn.then(next)
}

fn reply(
    conn: &mut Draft<'_>,
    socket: BorrowedFd<'_>,
    req: &Request<'_>,
    cx: &mut Context<'_>,
) -> Next {
    let head_only = req.method == Method::Head;
    // Without --auth-file, uploads come only from this user or root (any local
    // account reaches loopback).
    let refusal = match (req.method, cx.config.max_upload, &cx.config.uploaders) {
        (Method::Put, Some(_), None) => local_uploader(conn.peer, socket).err(),
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
                    return Next::Receive {
                        upload,
                        expect_continue: req.expect_continue,
                    };
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
    Next::Send { status, bytes }
}

/// An upload's body is in: store it and answer (`location`: where it went), on
/// a connection to `peer` that ends after it if `close_after`.
pub fn stored(
    upload: Upload,
    location: &str,
    close_after: bool,
    peer: Option<SocketAddr>,
    out: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Response {
    let bytes = upload.received();
    cx.syscalls.add(&upload.syscalls());
    let mut conn = Draft {
        out,
        close_after,
        memory_body: false,
        body: Vec::new(),
        peer,
    };
    let status = match upload.finish() {
        Ok(Status::NoContent) => {
            response::start(
                conn.out,
                Status::NoContent,
                cx.clock.date(),
                conn.close_after,
            );
            response::end(conn.out);
            Status::NoContent
        }
        Ok(status) => {
            simple(
                &mut conn,
                cx,
                status,
                "stored",
                &[("Location", location)],
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
                &mut conn,
                cx,
                Status::InternalServerError,
                "cannot store the file",
                &[],
                false,
            );
            Status::InternalServerError
        }
    };
    conn.then(Next::Send { status, bytes })
}

fn simple(
    conn: &mut Draft<'_>,
    cx: &Context<'_>,
    status: Status,
    text: &str,
    extra: &[(&str, &str)],
    head_only: bool,
) -> (Status, u64) {
    let date = cx.clock.date();
    let bytes = response::simple(
        conn.out,
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
    conn: &mut Draft<'_>,
    req: &Request<'_>,
    cx: &mut Context<'_>,
    head_only: bool,
) -> (Status, u64) {
    if archive::asked(req.target) {
        return archive::archive(conn, req, cx, head_only);
    }
    match cx.files.resolve(cx.config, req.target, cx.clock.now()) {
        Lookup::File(variants) => file::file(conn, req, cx, &variants, head_only),
        Lookup::Listing(dir, relative, shown) => {
            match listing::read(&cx.config.root, &dir, &relative, cx.config.hidden) {
                Ok(entries) => {
                    let (body, kind) = if wants_json(req.accept) {
                        (listing::json(&entries, &shown), "application/json")
                    } else {
                        (listing::html(&entries, &shown), "text/html; charset=utf-8")
                    };
                    let out = &mut *conn.out;
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
