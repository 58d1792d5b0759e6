//! One connection: its socket and where it is in the protocol, as an explicit
//! state machine (reading a head → writing a head → writing a body → reading the
//! next head, or closing; an upload reads its body after its head). The readiness
//! a connection waits for is derived from its state ([`Conn::interest`]), never
//! kept beside it (rustls' `tlsserver-mio`).
//!
//! A response is the bytes in `out` (its head, or a whole response kept in memory:
//! errors, listings, small files), sent with `MSG_MORE` when a body follows, then
//! the body's parts: bytes (multipart boundaries) and file ranges sent through the
//! connection's [`TransferState`], which outlives each response, so the engine, and
//! the splice pipe or buffer it holds, is set up once per connection, not once per
//! `EPOLLOUT`.
//!
//! Over HTTPS the connection's TLS session ([`Transport::Tls`]) stands between the state machine and the
//! socket: reads and writes go through it, file bodies are read into the worker's
//! buffer and encrypted (no sendfile without kTLS), and a connection that ends
//! sends `close_notify` and its last records before it closes ([`Phase::Draining`]).

use std::collections::VecDeque;

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use std::time::Instant;

use rustix::event::epoll::EventFlags;
use rustix::io::Errno;
use zcopy::TransferState;

use crate::access_log::{self, Record};
use crate::answer::{self, Next, Part, Response};
use crate::context::Context;
use crate::request::{self, Parsed};
use crate::response::{self, Status};
use crate::tls_server::Stop;
use crate::transport::{read_plain, receive, receive_tls, send, Transport};
use crate::upload::Upload;

mod body;

/// Where a connection is.
pub enum Phase {
    /// Waiting for (the rest of) a request head.
    ReadingHead,
    /// Sending `out`: a response head, or a whole response kept in memory.
    WritingHead,
    /// Sending the body's parts.
    WritingBody,
    /// Sending `100 Continue`, then reading the upload's body.
    Continuing(Box<Upload>),
    /// Reading an upload's body into its file.
    ReadingBody(Box<Upload>),
    /// TLS: sending the last records (`close_notify` among them), then closing.
    Draining,
    /// Done: the connection is closed.
    Closing,
}

/// One connection of a worker: its socket, where it is in the protocol, and the
/// response it is writing.
pub struct Conn {
    /// The connection's socket.
    pub socket: OwnedFd,
    /// `None` for a Unix-domain peer.
    pub peer: Option<SocketAddr>,
    phase: Phase,
    input: Vec<u8>,
    /// The response head being sent, or a whole response kept in memory.
    out: Vec<u8>,
    sent: usize,
    /// The body's parts after `out`.
    body: VecDeque<Part>,
    /// Bytes of the first body part already sent (a `Bytes` part), or whether its
    /// transfer has been restarted for it (a `File` part: non-zero).
    part_sent: usize,
    /// Boxed: most of a server's connections are idle, and a connection's size
    /// is what 10,000 idle ones cost.
    transfer: Option<Box<TransferState>>,
    /// The body being written went out from memory with its head (for the log).
    memory_body: bool,
    /// The connection ends after the response being written.
    close_after: bool,
    /// When the connection is closed unless it moves on first.
    pub deadline: Instant,
    /// With `-v`: the response being written, for the access log.
    record: Option<Box<Record>>,
    /// The events epoll was last told, to skip `epoll_ctl` when they are unchanged.
    pub registered: EventFlags,
    /// Plain, or over HTTPS the TLS session every byte goes through.
    pub transport: Transport,
}

impl Conn {
    /// A connection just accepted, reading its first request head by `deadline`.
    pub fn new(
        socket: OwnedFd,
        peer: Option<SocketAddr>,
        deadline: Instant,
        transport: Transport,
    ) -> Conn {
        Conn {
            socket,
            peer,
            phase: Phase::ReadingHead,
            input: Vec::new(),
            out: Vec::new(),
            sent: 0,
            body: VecDeque::new(),
            part_sent: 0,
            transfer: None,
            memory_body: false,
            close_after: false,
            deadline,
            record: None,
            registered: EventFlags::IN | EventFlags::RDHUP,
            transport,
        }
    }

    /// The events this connection waits for, from its phase.
    pub fn interest(&self) -> EventFlags {
        let wants = match self.phase {
            Phase::ReadingHead | Phase::ReadingBody(_) => EventFlags::IN | EventFlags::RDHUP,
            Phase::WritingHead | Phase::WritingBody | Phase::Continuing(_) | Phase::Draining => {
                EventFlags::OUT
            }
            Phase::Closing => EventFlags::empty(),
        };
        // Records the socket refused go out before anything else is read.
        if self
            .transport
            .session()
            .is_some_and(|tls| tls.wants_write())
        {
            wants | EventFlags::OUT
        } else {
            wants
        }
    }

    /// Whether the connection waits for a request with nothing of it read: it
    /// may be closed at once when the server stops.
    pub fn idle(&self) -> bool {
        matches!(self.phase, Phase::ReadingHead) && self.input.is_empty()
    }

    /// Moves the connection on as far as it goes without blocking; `false` when
    /// it is to be closed. `readable`: the socket may have bytes to read (after a
    /// read that drained it, none is tried until epoll says so again).
    pub fn ready(&mut self, cx: &mut Context<'_>, mut readable: bool) -> bool {
        if let Some(tls) = self.transport.session_mut() {
            if tls.wants_write() && tls.flush(self.socket.as_fd()).is_err() {
                self.phase = Phase::Closing;
                return false;
            }
        }
        loop {
            match &mut self.phase {
                Phase::ReadingHead => {
                    if cx.stopping && self.input.is_empty() {
                        return false;
                    }
                    // Taken out so that the request borrows it while the response
                    // is written into the connection.
                    let input = std::mem::take(&mut self.input);
                    let used = match request::parse(&input) {
                        Parsed::Complete(req, used) => {
                            let socket = self.socket.as_fd();
                            let response =
                                answer::respond(&req, self.peer, socket, &mut self.out, cx);
                            self.take(response, Some(&req), cx);
                            used
                        }
                        Parsed::Refuse(status, why) => {
                            self.close_after = true;
                            let date = cx.clock.date();
                            let bytes = response::simple(
                                &mut self.out,
                                status,
                                why,
                                &[],
                                date,
                                true,
                                false,
                            );
                            self.begin(cx, None, status, bytes);
                            input.len()
                        }
                        Parsed::Partial => {
                            let limit = if input.is_empty() {
                                cx.config.idle_timeout
                            } else {
                                // A head has begun: it must be complete in time.
                                cx.config.header_timeout
                            };
                            self.deadline = self.deadline.min(cx.clock.now() + limit);
                            self.input = input;
                            if !readable {
                                return true;
                            }
                            match self.read(cx) {
                                Ok(drained) => readable = !drained,
                                Err(Stop::Closed) => return false,
                                Err(Stop::PlainHttp) => self.refuse_plain_http(cx),
                                Err(Stop::Refused(e)) => return self.fail(format!("TLS: {e}")),
                            }
                            continue;
                        }
                    };
                    self.input = input;
                    if used == self.input.len() {
                        self.input.clear();
                    } else {
                        self.input.drain(..used);
                    }
                }
                Phase::WritingHead | Phase::Continuing(_) => match self.write_out() {
                    Ok(true) => {
                        self.phase = match std::mem::replace(&mut self.phase, Phase::Closing) {
                            Phase::Continuing(upload) => {
                                self.out.clear();
                                self.sent = 0;
                                Phase::ReadingBody(upload)
                            }
                            _ if self.body.is_empty() => {
                                if !self.finish(cx) {
                                    return false;
                                }
                                continue;
                            }
                            _ => Phase::WritingBody,
                        };
                    }
                    Ok(false) => return true,
                    Err(why) => return self.fail(format!("response ended early: {why}")),
                },
                Phase::WritingBody => match self.write_body(cx) {
                    Ok(true) => {
                        if !self.finish(cx) {
                            return false;
                        }
                    }
                    Ok(false) => return true,
                    Err(why) => return self.fail(format!("response ended early: {why}")),
                },
                Phase::ReadingBody(upload) => {
                    let received = match self.transport.session_mut() {
                        Some(tls) => {
                            receive_tls(upload, &mut self.input, tls, &self.socket, readable)
                        }
                        None => receive(upload, &mut self.input, &self.socket, readable),
                    };
                    match received {
                        Ok(Some(moved)) => {
                            if moved {
                                self.deadline = cx.clock.now() + cx.config.idle_timeout;
                            }
                            return true;
                        }
                        Ok(None) => {
                            let Phase::ReadingBody(upload) =
                                std::mem::replace(&mut self.phase, Phase::Closing)
                            else {
                                unreachable!("matched above")
                            };
                            if let Some(record) = &mut self.record {
                                record.engine = upload.engine();
                            }
                            let location = self
                                .record
                                .as_ref()
                                .map(|r| r.target.clone())
                                .unwrap_or_default();
                            let close = self.close_after;
                            let response = answer::stored(
                                *upload,
                                &location,
                                close,
                                self.peer,
                                &mut self.out,
                                cx,
                            );
                            self.take(response, None, cx);
                        }
                        Err(why) => return self.fail(format!("upload ended early: {why}")),
                    }
                }
                Phase::Draining => {
                    let flushed = self
                        .transport
                        .session_mut()
                        .map_or(Ok(true), |tls| tls.flush(self.socket.as_fd()));
                    return matches!(flushed, Ok(false));
                }
                Phase::Closing => return false,
            }
        }
    }

    /// Takes `response` (whose head is in `out`) on: write it next, or read the
    /// upload it starts.
    fn take(
        &mut self,
        response: Response,
        request: Option<&request::Request<'_>>,
        cx: &Context<'_>,
    ) {
        self.close_after = response.close_after;
        self.memory_body = response.memory_body;
        self.body.extend(response.body);
        match response.next {
            Next::Send { status, bytes } => self.begin(cx, request, status, bytes),
            Next::Receive {
                upload,
                expect_continue,
            } => {
                if cx.config.log.is_some() {
                    self.record = Some(Box::new(Record::new(request, Status::Continue)));
                }
                self.deadline = cx.clock.now() + cx.config.idle_timeout;
                self.phase = if expect_continue {
                    self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    Phase::Continuing(upload)
                } else {
                    Phase::ReadingBody(upload)
                };
            }
        }
    }

    /// The response in `out` (and `body`) is ready: write it next.
    fn begin(
        &mut self,
        cx: &Context<'_>,
        request: Option<&request::Request<'_>>,
        status: Status,
        bytes: u64,
    ) {
        self.sent = 0;
        self.part_sent = 0;
        self.phase = Phase::WritingHead;
        if cx.config.log.is_some() {
            // An upload's record was made when its head came.
            let record = self
                .record
                .get_or_insert_with(|| Box::new(Record::new(request, status)));
            record.status = status;
            record.bytes = bytes;
            if self.memory_body {
                record.engine = "memory";
            }
        }
    }

    /// The response is out: log it, then read the next request or close.
    fn finish(&mut self, cx: &mut Context<'_>) -> bool {
        self.out.clear();
        self.memory_body = false;
        self.sent = 0;
        if let (Some(format), Some(record)) = (cx.config.log, self.record.take()) {
            access_log::write(format, self.peer, &record);
        }
        self.deadline = cx.clock.now() + cx.config.idle_timeout;
        if self.close_after || cx.stopping {
            if let Some(tls) = self.transport.session_mut() {
                tls.close();
                self.phase = Phase::Draining;
                return true;
            }
            self.phase = Phase::Closing;
            return false;
        }
        self.phase = Phase::ReadingHead;
        true
    }

    /// A plain-HTTP request on the TLS port: answered 400 in clear, then closed.
    fn refuse_plain_http(&mut self, cx: &Context<'_>) {
        self.transport = Transport::Plain;
        // Read before answering: bytes left unread at the close would reset the
        // connection, and the client could lose the answer.
        let _ = read_plain(&self.socket, &mut self.input);
        self.input.clear();
        let peer = self
            .peer
            .map_or_else(|| "unix".to_string(), |p| p.to_string());
        tracing::warn!("{peer}: plain HTTP on the TLS port; answered 400");
        self.close_after = true;
        let bytes = response::simple(
            &mut self.out,
            Status::BadRequest,
            "this port speaks HTTPS: use https://",
            &[],
            cx.clock.date(),
            true,
            false,
        );
        self.begin(cx, None, Status::BadRequest, bytes);
    }

    fn fail(&mut self, why: String) -> bool {
        let peer = self
            .peer
            .map_or_else(|| "unix".to_string(), |p| p.to_string());
        tracing::warn!("{peer}: {why}");
        self.phase = Phase::Closing;
        false
    }

    /// Reads what the socket has (decrypted, over TLS); `Ok(true)` when the socket
    /// is drained (a short read or `EAGAIN`), `Err` at its end or on an error.
    fn read(&mut self, cx: &Context<'_>) -> Result<bool, Stop> {
        let Some(tls) = self.transport.session_mut() else {
            return read_plain(&self.socket, &mut self.input);
        };
        let handshaking = tls.handshaking();
        let drained = tls.read(self.socket.as_fd(), &mut self.input)?;
        if handshaking && !tls.handshaking() {
            // The handshake had --header-timeout from the accept; now it may idle.
            self.deadline = cx.clock.now() + cx.config.idle_timeout;
        }
        Ok(drained)
    }

    /// Sends `out`; `Ok(true)` when it is all sent.
    fn write_out(&mut self) -> Result<bool, Errno> {
        let more = !self.body.is_empty();
        while self.sent < self.out.len() {
            let tls = self.transport.session_mut();
            match send(self.socket.as_fd(), tls, &self.out[self.sent..], more) {
                Ok(n) => self.sent += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
