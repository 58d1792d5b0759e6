//! Sending a response's body parts: bytes from memory, file ranges through the
//! connection's transfer engine (or read and encrypted over TLS), and archives.

use std::os::fd::AsFd;

use rustix::io::Errno;

use super::Conn;
use crate::answer::Part;
use crate::context::Context;
use crate::transport::{file_transfer, send, send_file_tls, Transport};

impl Conn {
    /// Sends the body's parts; `Ok(true)` when they are all sent.
    pub(super) fn write_body(&mut self, cx: &mut Context<'_>) -> Result<bool, String> {
        loop {
            let more = self.body.len() > 1;
            let Some(part) = self.body.front_mut() else {
                break;
            };
            match part {
                Part::Bytes(bytes) => {
                    while self.part_sent < bytes.len() {
                        let tls = self.transport.session_mut();
                        match send(self.socket.as_fd(), tls, &bytes[self.part_sent..], more) {
                            Ok(n) => self.part_sent += n,
                            Err(Errno::INTR) => {}
                            Err(Errno::AGAIN) => return Ok(false),
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                }
                Part::File { file, start, end } if self.transport.is_tls() => {
                    let tls = self.transport.session_mut().expect("matched above");
                    let range = *start..*end;
                    let (socket, done) = (self.socket.as_fd(), &mut self.part_sent);
                    let out = send_file_tls(tls, socket, file, range, done, more, cx.tls_buffer)?;
                    if let Some(record) = &mut self.record {
                        record.engine = "rustls";
                    }
                    if !out {
                        return Ok(false);
                    }
                    self.deadline = cx.clock.now() + cx.config.idle_timeout;
                }
                Part::Archive(archive) => {
                    let before = archive.position();
                    let socket = self.socket.as_fd();
                    let root = &cx.config.root;
                    let done = match self.transport.session_mut() {
                        Some(tls) => archive.send_tls(root, tls, socket, cx.tls_buffer)?,
                        None => {
                            let (engine, syscalls) = (cx.config.engine, &mut *cx.syscalls);
                            archive.send_plain(
                                root,
                                socket,
                                &mut self.transfer,
                                engine,
                                syscalls,
                            )?
                        }
                    };
                    if archive.position() > before {
                        self.deadline = cx.clock.now() + cx.config.idle_timeout;
                    }
                    if let Some(record) = &mut self.record {
                        record.engine = match (&self.transport, &self.transfer) {
                            (Transport::Tls(_), _) => "rustls",
                            (_, Some(transfer)) => transfer.engine().map_or("", |e| e.name()),
                            (_, None) => "memory",
                        };
                    }
                    if !done {
                        return Ok(false);
                    }
                }
                Part::File { file, start, end } => {
                    let (start, len) = (*start, *end - *start);
                    let restart = self.part_sent == 0;
                    let engine = cx.config.engine;
                    let transfer = file_transfer(&mut self.transfer, restart, engine, start, len)?;
                    self.part_sent = 1;
                    let before = transfer.moved();
                    let status = transfer.run(file.as_fd(), self.socket.as_fd());
                    if transfer.moved() > before {
                        self.deadline = cx.clock.now() + cx.config.idle_timeout;
                    }
                    let status = status.map_err(|e| e.to_string());
                    let done = matches!(status, Ok(zcopy::Status::Done));
                    if let (Some(record), Some(engine)) = (&mut self.record, transfer.engine()) {
                        record.engine = engine.name();
                    }
                    if done || status.is_err() {
                        cx.syscalls.add(&transfer.report().syscalls);
                    }
                    if !done {
                        status?;
                        return Ok(false);
                    }
                }
            }
            self.body.pop_front();
            self.part_sent = 0;
        }
        Ok(true)
    }
}
