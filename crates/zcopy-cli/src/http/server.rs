//! The event loops: one per worker thread, each with its own epoll set, all
//! accepting from one listening socket (`EPOLLEXCLUSIVE` wakes one of them).
//!
//! A connection reads a request head, answers it, and reads the next (keep-alive
//! and pipelining). A response is its head, sent with `MSG_MORE` so that it leaves
//! in the same segment as the start of the body, then the body through the chosen
//! engine on the non-blocking socket. The body's source is a file, so a response
//! resumes after `EAGAIN` with a fresh engine call at the exact offset reached.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::SendFlags;
use zcopy::{EngineChoice, FdKind, Options, Status, Syscalls, Transfer};

use super::digest;
use super::files::{self, Resolved};
use super::request::{self, Method, Parsed, Span};
use super::upload::{self, Upload};

/// What every worker shares.
pub struct Config {
    pub root: files::Root,
    pub engine: EngineChoice,
    pub max_connections: usize,
    /// Time allowed to send a whole request head once it has begun.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection is kept, and a stalled response waits.
    pub idle_timeout: Duration,
    /// Set when the server should stop: no new connections, in-flight responses finish.
    pub stop: AtomicBool,
    /// Connections open across all workers.
    pub open: AtomicUsize,
    /// With `--upload`: the largest body a PUT may have.
    pub max_upload: Option<u64>,
    /// With `--auth-file`: who may upload.
    pub uploaders: Option<super::auth::Credentials>,
    /// The `Repr-Digest` of each file version, when the server sends them.
    pub digests: Option<digest::Cache>,
}

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 << 10;

/// The body of a response still to send.
enum Body {
    File { file: Rc<File>, next: u64, end: u64 },
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    /// Response head (or a whole small response) still to send.
    output: Vec<u8>,
    sent: usize,
    body: Option<Body>,
    close_after: bool,
    deadline: Instant,
    /// For the access log.
    log: Option<(String, String, u16, Instant)>,
    body_bytes: u64,
    /// The engine that sent the last body, for the access log.
    engine: &'static str,
    /// The events the connection is registered for.
    interest: EventFlags,
    /// Syscalls the engines issued for this connection's bodies.
    syscalls: Syscalls,
    /// A PUT body being received, with its request line and start for the log.
    upload: Option<(Box<Upload>, String, String, Instant)>,
}

/// Open files kept for a moment, so that a popular file is not opened, examined
/// and closed for every request (nginx's `open_file_cache`).
struct OpenFiles {
    files: HashMap<String, (Rc<File>, std::fs::Metadata, std::path::PathBuf, Instant)>,
}

/// How long an open file is reused before its path is looked up again.
const OPEN_FILE_VALID: Duration = Duration::from_secs(1);
/// The most files kept open per worker.
const OPEN_FILE_MAX: usize = 1024;

impl OpenFiles {
    fn resolve(&mut self, root: &files::Root, target: &str) -> Resolved {
        let key = target.split(['?', '#']).next().unwrap_or_default();
        if let Some((file, meta, path, at)) = self.files.get(key) {
            if at.elapsed() < OPEN_FILE_VALID {
                return Resolved::Cached(file.clone(), meta.clone(), path.clone());
            }
        }
        match files::resolve(root, target) {
            Resolved::File(file, meta, path) => {
                if self.files.len() >= OPEN_FILE_MAX {
                    self.files.clear();
                }
                let file = Rc::new(file);
                self.files.insert(
                    key.to_string(),
                    (file.clone(), meta.clone(), path.clone(), Instant::now()),
                );
                Resolved::Cached(file, meta, path)
            }
            other => other,
        }
    }
}

/// Runs one worker until the server stops and its connections are done; returns
/// the syscalls its engines issued for response bodies.
pub fn run_worker(
    listener: &TcpListener,
    wake: BorrowedFd<'_>,
    config: &Config,
) -> std::io::Result<Syscalls> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        listener,
        EventData::new_u64(LISTENER),
        EventFlags::IN | EventFlags::EXCLUSIVE,
    )?;
    epoll::add(&ep, wake, EventData::new_u64(WAKE), EventFlags::IN)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: VecDeque<usize> = VecDeque::new();
    let mut events = Vec::with_capacity(256);
    let mut syscalls = Syscalls::default();
    let mut listening = true;
    let mut last_sweep = Instant::now();
    let mut open_files = OpenFiles {
        files: HashMap::new(),
    };
    loop {
        let timeout = rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        events.clear();
        match epoll::wait(&ep, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let stopping = config.stop.load(Ordering::Relaxed);
        if stopping && listening {
            let _ = epoll::delete(&ep, listener);
            let _ = epoll::delete(&ep, wake);
            listening = false;
            // Idle connections close now; those mid-response finish first.
            for slot in 0..conns.len() {
                if conns[slot]
                    .as_ref()
                    .is_some_and(|c| c.output.is_empty() && c.body.is_none() && c.upload.is_none())
                {
                    close(&ep, &mut conns, &mut free, slot, config, &mut syscalls);
                }
            }
        }
        for event in events.drain(..) {
            match event.data.u64() {
                LISTENER => accept_all(&ep, listener, &mut conns, &mut free, config),
                WAKE => {}
                token => {
                    let slot = token as usize;
                    if conns.get(slot).is_some_and(Option::is_some) {
                        let flags = event.flags;
                        let readable = flags.intersects(
                            EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR,
                        );
                        let conn = conns[slot].as_mut().expect("checked");
                        let keep = serve(
                            &ep,
                            conn,
                            token,
                            config,
                            &mut open_files,
                            stopping,
                            readable,
                        );
                        if !keep {
                            close(&ep, &mut conns, &mut free, slot, config, &mut syscalls);
                        }
                    }
                }
            }
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            for slot in 0..conns.len() {
                if conns[slot]
                    .as_ref()
                    .is_some_and(|c| c.deadline <= last_sweep)
                {
                    close(&ep, &mut conns, &mut free, slot, config, &mut syscalls);
                }
            }
        }
        if !listening && conns.iter().all(Option::is_none) {
            return Ok(syscalls);
        }
    }
}

fn accept_all(
    ep: &impl AsFd,
    listener: &TcpListener,
    conns: &mut Vec<Option<Conn>>,
    free: &mut VecDeque<usize>,
    config: &Config,
) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // EMFILE and friends: keep serving what is open, say why once per burst.
                tracing::warn!("accept: {e}");
                return;
            }
        };
        if config.open.load(Ordering::Relaxed) >= config.max_connections {
            tracing::warn!(
                "{peer}: refused, {} connections open (--max-connections)",
                config.max_connections
            );
            continue;
        }
        if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
            continue;
        }
        let slot = free.pop_front().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        if epoll::add(
            ep,
            &stream,
            EventData::new_u64(slot as u64),
            EventFlags::IN | EventFlags::RDHUP,
        )
        .is_err()
        {
            free.push_back(slot);
            continue;
        }
        config.open.fetch_add(1, Ordering::Relaxed);
        conns[slot] = Some(Conn {
            stream,
            peer,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            body: None,
            close_after: false,
            deadline: Instant::now() + config.idle_timeout,
            log: None,
            body_bytes: 0,
            engine: "-",
            interest: EventFlags::IN | EventFlags::RDHUP,
            syscalls: Syscalls::default(),
            upload: None,
        });
    }
}

fn close(
    ep: &impl AsFd,
    conns: &mut [Option<Conn>],
    free: &mut VecDeque<usize>,
    slot: usize,
    config: &Config,
    total: &mut Syscalls,
) {
    if let Some(conn) = conns[slot].take() {
        let _ = epoll::delete(ep, &conn.stream);
        config.open.fetch_sub(1, Ordering::Relaxed);
        total.add(&conn.syscalls);
        free.push_back(slot);
    }
}

/// Handles readiness of one connection; `false` closes it. `readable`: the socket
/// may have bytes to read (after a read that drained it, no read is tried until
/// epoll says so again).
fn serve(
    ep: &impl AsFd,
    conn: &mut Conn,
    token: u64,
    config: &Config,
    open_files: &mut OpenFiles,
    stopping: bool,
    mut readable: bool,
) -> bool {
    loop {
        if !conn.output.is_empty() || conn.body.is_some() {
            match write(conn, config) {
                Ok(true) => {
                    finish_log(conn);
                    // `100 Continue` is sent before an upload's body: not an end.
                    if (conn.close_after || stopping) && conn.upload.is_none() {
                        return false;
                    }
                    conn.deadline = Instant::now() + config.idle_timeout;
                }
                Ok(false) => return watch(ep, conn, token, EventFlags::OUT),
                Err(why) => {
                    tracing::warn!("{}: response ended early: {why}", conn.peer);
                    return false;
                }
            }
        }
        if conn.upload.is_some() {
            match receive(conn, config, readable) {
                Ok(true) => continue,
                Ok(false) => return watch(ep, conn, token, EventFlags::IN | EventFlags::RDHUP),
                Err(why) => {
                    tracing::warn!("{}: upload ended early: {why}", conn.peer);
                    return false;
                }
            }
        }
        match request::parse(&conn.input) {
            Parsed::Complete(req, used) => {
                conn.input.drain(..used);
                respond(conn, &req, config, open_files);
            }
            Parsed::Refuse(status, why) => {
                conn.close_after = true;
                simple(conn, status, why, &[]);
                conn.log = Some(("-".into(), "-".into(), status, Instant::now()));
            }
            Parsed::Partial => {
                if conn.input.is_empty() {
                    conn.deadline = conn.deadline.min(Instant::now() + config.idle_timeout);
                } else {
                    // A head has begun: it must be complete within the header timeout.
                    conn.deadline = conn.deadline.min(Instant::now() + config.header_timeout);
                }
                if !readable {
                    return watch(ep, conn, token, EventFlags::IN | EventFlags::RDHUP);
                }
                match read(conn) {
                    Ok(drained) => readable = !drained,
                    Err(()) => return false,
                }
            }
        }
    }
}

fn watch(ep: &impl AsFd, conn: &mut Conn, token: u64, flags: EventFlags) -> bool {
    if conn.interest == flags {
        return true;
    }
    conn.interest = flags;
    epoll::modify(ep, &conn.stream, EventData::new_u64(token), flags).is_ok()
}

/// Reads what the socket has; `Ok(true)` when the socket is drained (a short read
/// or `EAGAIN`), `Err` at its end or on an error.
fn read(conn: &mut Conn) -> Result<bool, ()> {
    conn.input.reserve(READ_CHUNK);
    let room = conn.input.capacity() - conn.input.len();
    match rustix::io::read(&conn.stream, spare_capacity(&mut conn.input)) {
        Ok(0) => Err(()),
        Ok(n) => Ok(n < room),
        Err(Errno::AGAIN) => Ok(true),
        Err(Errno::INTR) => Ok(false),
        Err(_) => Err(()),
    }
}

/// Sends what is pending; `Ok(true)` when the response is complete.
fn write(conn: &mut Conn, config: &Config) -> Result<bool, String> {
    while conn.sent < conn.output.len() {
        let more = if conn.body.is_some() {
            SendFlags::MORE
        } else {
            SendFlags::empty()
        };
        match rustix::net::send(
            &conn.stream,
            &conn.output[conn.sent..],
            more | SendFlags::NOSIGNAL,
        ) {
            Ok(n) => conn.sent += n,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Ok(false),
            Err(e) => return Err(e.to_string()),
        }
    }
    conn.output.clear();
    conn.sent = 0;
    if let Some(Body::File { file, next, end }) = &mut conn.body {
        let options = Options {
            engine: config.engine,
            offset: *next,
            len: Some(*end - *next),
            rusage: false,
            ..Options::default()
        };
        let mut transfer =
            Transfer::with_kinds(&**file, FdKind::File, &conn.stream, FdKind::Socket, options)
                .map_err(|e| e.to_string())?;
        let status = transfer.run();
        let moved = transfer.moved();
        let report = transfer.report();
        conn.engine = report.engine.name();
        conn.syscalls.add(&report.syscalls);
        *next += moved;
        conn.body_bytes += moved;
        if moved > 0 {
            conn.deadline = Instant::now() + config.idle_timeout;
        }
        match status.map_err(|e| e.to_string())? {
            Status::Done => conn.body = None,
            Status::WouldBlock | Status::More => return Ok(false),
        }
    }
    Ok(true)
}

/// Moves an upload's body on (the bytes read with the head, then what the socket
/// has when `readable`); `Ok(true)` when it is stored and its response is ready.
fn receive(conn: &mut Conn, config: &Config, readable: bool) -> Result<bool, String> {
    let (up, _, target, _) = conn.upload.as_mut().expect("receiving an upload");
    let before = up.received();
    up.take_buffered(&mut conn.input)
        .map_err(|e| format!("{target}: {e}"))?;
    let done = if readable {
        up.pump(&conn.stream)
            .map_err(|e| format!("{target}: {e}"))?
    } else {
        up.complete()
    };
    if up.received() > before {
        conn.deadline = Instant::now() + config.idle_timeout;
    }
    if !done {
        return Ok(false);
    }
    let (up, method, target, started) = conn.upload.take().expect("receiving an upload");
    let bytes = up.received();
    conn.engine = up.engine();
    conn.syscalls.add(&up.syscalls());
    let status = match up.finish() {
        Ok(204) => {
            let mut h = head(conn, 204);
            h.push_str("\r\n");
            conn.output = h.into_bytes();
            204
        }
        Ok(status) => {
            simple(conn, status, "stored", &[("Location", &target)]);
            status
        }
        Err(why) => {
            tracing::warn!("{}: {why}", conn.peer);
            conn.close_after = true;
            simple(conn, 500, "cannot store the file", &[]);
            500
        }
    };
    conn.body_bytes = bytes;
    conn.log = Some((method, target, status, started));
    Ok(true)
}

fn finish_log(conn: &mut Conn) {
    if let Some((method, target, status, started)) = conn.log.take() {
        tracing::info!(
            "{} \"{method} {target}\" {status} {} {} {:.3}ms",
            conn.peer,
            conn.body_bytes,
            conn.engine,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    conn.body_bytes = 0;
    conn.engine = "-";
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        401 => "Unauthorized",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        507 => "Insufficient Storage",
        _ => "Internal Server Error",
    }
}

/// The `Date` header's value, formatted once a second per thread.
fn http_date() -> String {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            *d = (secs, httpdate::fmt_http_date(now));
        }
        d.1.clone()
    })
}

/// Starts a response head with the status line and the headers every response has.
fn head(conn: &Conn, status: u16) -> String {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nServer: zcopy\r\nDate: {}\r\n",
        reason(status),
        http_date()
    );
    if conn.close_after {
        h.push_str("Connection: close\r\n");
    }
    h
}

/// A whole response with a short text body.
fn simple(conn: &mut Conn, status: u16, text: &str, extra: &[(&str, &str)]) {
    let mut h = head(conn, status);
    for (name, value) in extra {
        h.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = format!("{status} {}: {text}\n", reason(status));
    h.push_str(&format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    conn.output = h.into_bytes();
    conn.output.extend_from_slice(body.as_bytes());
    conn.body_bytes = body.len() as u64;
}

fn respond(conn: &mut Conn, req: &request::Request, config: &Config, open_files: &mut OpenFiles) {
    conn.close_after = !req.keep_alive;
    let started = Instant::now();
    let status = match (req.method, config.max_upload) {
        (Method::Other, None) | (Method::Put, None) => {
            // A PUT's body is not read: the connection cannot carry another request.
            conn.close_after |= req.method == Method::Put;
            simple(conn, 405, "only GET and HEAD", &[("Allow", "GET, HEAD")]);
            405
        }
        (Method::Other, Some(_)) => {
            simple(
                conn,
                405,
                "only GET, HEAD and PUT",
                &[("Allow", "GET, HEAD, PUT")],
            );
            405
        }
        (Method::Put, Some(_))
            if config
                .uploaders
                .as_ref()
                .is_some_and(|u| !u.admits(req.authorization.as_deref())) =>
        {
            conn.close_after = true;
            let challenge = "Basic realm=\"zcopy uploads\", charset=\"UTF-8\"";
            simple(
                conn,
                401,
                "uploads need credentials",
                &[("WWW-Authenticate", challenge)],
            );
            401
        }
        (Method::Put, Some(max)) => {
            let length = req.content_length.unwrap_or(0);
            match upload::start(&config.root, &req.target, length, max) {
                upload::Start::Refuse(status, why) => {
                    conn.close_after = true;
                    simple(conn, status, why, &[]);
                    status
                }
                upload::Start::Receive(up) => {
                    if req.expect_continue {
                        conn.output = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
                    }
                    conn.deadline = Instant::now() + config.idle_timeout;
                    // Logged when the body is in (see `receive`).
                    conn.upload = Some((up, req.method_name.clone(), req.target.clone(), started));
                    return;
                }
            }
        }
        (Method::Get | Method::Head, _) => respond_path(conn, req, config, open_files),
    };
    if req.method == Method::Head {
        conn.body = None;
        if let Some(end) = conn.output.windows(4).position(|w| w == b"\r\n\r\n") {
            conn.output.truncate(end + 4);
        }
        conn.body_bytes = 0;
    }
    conn.log = Some((req.method_name.clone(), req.target.clone(), status, started));
}

fn respond_path(
    conn: &mut Conn,
    req: &request::Request,
    config: &Config,
    open_files: &mut OpenFiles,
) -> u16 {
    match open_files.resolve(&config.root, &req.target) {
        Resolved::Cached(file, meta, path) => respond_file(conn, req, config, file, &meta, &path),
        Resolved::File(file, meta, path) => {
            respond_file(conn, req, config, Rc::new(file), &meta, &path)
        }
        Resolved::Listing(dir, url) => match files::listing(&dir, &url) {
            Ok(html) => {
                let mut h = head(conn, 200);
                h.push_str(&format!(
                    "Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                    html.len()
                ));
                conn.output = h.into_bytes();
                conn.output.extend_from_slice(&html);
                conn.body_bytes = html.len() as u64;
                200
            }
            Err(_) => {
                simple(conn, 403, "cannot list this directory", &[]);
                403
            }
        },
        Resolved::Redirect(location) => {
            simple(
                conn,
                301,
                "see the directory's address",
                &[("Location", &location)],
            );
            301
        }
        Resolved::NotFound => {
            simple(conn, 404, "no such file", &[]);
            404
        }
        Resolved::Forbidden => {
            simple(conn, 403, "not served", &[]);
            403
        }
        Resolved::BadRequest => {
            conn.close_after = true;
            simple(conn, 400, "malformed path", &[]);
            400
        }
    }
}

fn respond_file(
    conn: &mut Conn,
    req: &request::Request,
    config: &Config,
    file: Rc<File>,
    meta: &std::fs::Metadata,
    path: &std::path::Path,
) -> u16 {
    use std::os::unix::fs::MetadataExt;
    let size = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = format!("\"{:x}-{:x}\"", meta.mtime(), size);
    let last_modified = httpdate::fmt_http_date(modified);
    let validators = format!("ETag: {etag}\r\nLast-Modified: {last_modified}\r\n");
    let not_modified = match (&req.if_none_match, &req.if_modified_since) {
        (Some(tags), _) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(&etag)),
        (None, Some(since)) => httpdate::parse_http_date(since).is_ok_and(|since| {
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            secs(modified) <= secs(since)
        }),
        (None, None) => false,
    };
    if not_modified {
        let mut h = head(conn, 304);
        h.push_str(&validators);
        h.push_str("\r\n");
        conn.output = h.into_bytes();
        return 304;
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let (status, start, end) = match request::span(req.range.as_deref(), size) {
        Span::Full => (200, 0, size),
        Span::Part { start, end } => (206, start, end + 1),
        Span::Unsatisfiable => {
            simple(
                conn,
                416,
                "range outside the file",
                &[("Content-Range", &format!("bytes */{size}"))],
            );
            return 416;
        }
    };
    let mut h = head(conn, status);
    h.push_str(&format!(
        "Content-Type: {mime}\r\nContent-Length: {}\r\n{validators}Accept-Ranges: bytes\r\n",
        end - start
    ));
    if let Some(digest) = config
        .digests
        .as_ref()
        .and_then(|d| d.repr_digest(&file, meta))
    {
        // The whole file's digest, on a part too: the client checks what it assembled.
        h.push_str(&format!("Repr-Digest: {digest}\r\n"));
    }
    if status == 206 {
        h.push_str(&format!(
            "Content-Range: bytes {start}-{}/{size}\r\n",
            end - 1
        ));
    }
    h.push_str("\r\n");
    conn.output = h.into_bytes();
    conn.body = (end > start).then_some(Body::File {
        file,
        next: start,
        end,
    });
    status
}
