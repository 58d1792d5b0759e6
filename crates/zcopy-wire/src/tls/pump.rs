//! The user-space record layer: a thread per connection pumps the TLS session
//! between the socket and one end of an `AF_UNIX` pair, whose other end the
//! transfer code uses.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use rustls::Connection;

/// Pumps `conn` over `sock` to and from a local stream it returns (see
/// `spawn_pump`), ending with close_notify as HTTPS peers expect.
pub fn tunnel(conn: Connection, sock: TcpStream) -> io::Result<TcpStream> {
    spawn_pump(conn, sock, Ending::CloseNotify)
}

/// How a pump ends the outgoing direction when `local` closes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// A close_notify alert, then the TCP close: what HTTPS peers expect.
    CloseNotify,
    /// The TCP close alone: send/recv, whose peer may read with kTLS (a control
    /// record fails its read) and whose protocol ends sessions itself.
    Quiet,
}

/// Starts a pump thread between `sock` and one end of an `AF_UNIX` socket pair, and
/// returns the other end typed as the `TcpStream` the transfer code takes. That
/// code only reads, writes, sends, splices, clones, shuts down and sets timeouts on
/// it, as on any stream socket; TCP options stay on `sock`. A Unix pair rather than
/// a loopback TCP pair: no TCP stack between the pump and the transfer code, and
/// sendfile into it passes page references (a quarter less CPU per byte over TLS,
/// measured in docs/security.md).
pub(super) fn spawn_pump(
    conn: Connection,
    sock: TcpStream,
    ending: Ending,
) -> io::Result<TcpStream> {
    let (near, far) = UnixStream::pair()?;
    let far = TcpStream::from(OwnedFd::from(far));
    let live = Live::enter();
    std::thread::spawn(move || {
        run_pump(conn, sock, far, ending);
        drop(live);
    });
    Ok(TcpStream::from(OwnedFd::from(near)))
}

/// How many pump threads still run: a process must not exit while one still holds
/// the last bytes it was given (a receiver's BYE), or the peer never gets them.
pub(super) static PUMPS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// One running pump, counted in [`PUMPS`] while it lives.
struct Live;

impl Live {
    fn enter() -> Live {
        *PUMPS.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        *PUMPS.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        PUMPS.1.notify_all();
    }
}

/// Waits until every pump has delivered what it was given and closed, or `limit`
/// passed (a peer that never closes must not hold the process).
pub fn finish_pumps(limit: Duration) {
    let live = PUMPS.0.lock().unwrap_or_else(|p| p.into_inner());
    let _ = PUMPS.1.wait_timeout_while(live, limit, |n| *n > 0);
}

/// Pumps `conn` over `sock` to and from `local` on this thread, until both
/// directions are closed; an error closes both sockets.
fn run_pump(mut conn: Connection, sock: TcpStream, local: TcpStream, ending: Ending) {
    // The pump bounds what it gives rustls itself (one read at a time).
    conn.set_buffer_limit(None);
    let ready = sock
        .set_nonblocking(true)
        .and_then(|()| local.set_nonblocking(true));
    if ready.is_err() || pump(conn, &sock, &local, ending).is_err() {
        let _ = sock.shutdown(Shutdown::Both);
        let _ = local.shutdown(Shutdown::Both);
    }
}

/// Records are read from the network up to this much at a time: few syscalls and
/// wakeups per byte.
const CHUNK: usize = 256 << 10;

/// Plaintext is read from `local` up to this much at a time. rustls allocates each
/// record it makes and frees it once sent; kept under glibc's heap trim threshold
/// (128 KiB), that memory is reused instead of returned to the kernel and faulted
/// in again (256 KiB cost 129,000 page faults and 19 % more sender CPU per GiB).
const PLAINTEXT_READ: usize = 64 << 10;

/// One thread, both directions: plaintext from `local` is encrypted to `net`, and
/// records from `net` are decrypted to `local`. What it waits for is derived from
/// the state: no reading more plaintext while records are still unsent, no
/// reading more records while the last ones are not all decrypted.
fn pump(
    mut conn: Connection,
    net: &TcpStream,
    local: &TcpStream,
    ending: Ending,
) -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut outgoing = vec![0u8; PLAINTEXT_READ];
    let mut incoming = Incoming::new();
    let (mut local_eof, mut local_shut, mut net_shut) = (false, false, false);
    loop {
        // Decrypt and write until `local` is full or nothing is left.
        loop {
            incoming.decrypt(&mut conn, net)?;
            if incoming.sent == incoming.have {
                break;
            }
            match (&*local).write(&incoming.plain[incoming.sent..incoming.have]) {
                Ok(n) => incoming.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while conn.wants_write() {
            match conn.write_tls(&mut &*net) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if incoming.done() && !local_shut {
            local.shutdown(Shutdown::Write)?;
            local_shut = true;
        }
        if local_eof && !conn.wants_write() && !net_shut {
            net.shutdown(Shutdown::Write)?;
            net_shut = true;
        }
        if local_shut && net_shut {
            return Ok(());
        }
        let mut net_wants = PollFlags::empty();
        if incoming.wants_records() {
            net_wants |= PollFlags::IN;
        }
        if conn.wants_write() {
            net_wants |= PollFlags::OUT;
        }
        let mut local_wants = PollFlags::empty();
        if !local_eof && !conn.wants_write() {
            local_wants |= PollFlags::IN;
        }
        if incoming.sent < incoming.have {
            local_wants |= PollFlags::OUT;
        }
        let mut fds = [PollFd::new(net, net_wants), PollFd::new(local, local_wants)];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let (net_got, local_got) = (fds[0].revents(), fds[1].revents());
        if net_got.intersects(PollFlags::ERR) || local_got.intersects(PollFlags::ERR) {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if net_wants.contains(PollFlags::IN) && net_got.intersects(PollFlags::IN | PollFlags::HUP) {
            incoming.read_records(net)?;
        }
        if local_wants.contains(PollFlags::IN)
            && local_got.intersects(PollFlags::IN | PollFlags::HUP)
        {
            match (&*local).read(&mut outgoing) {
                Ok(0) => {
                    local_eof = true;
                    if ending == Ending::CloseNotify {
                        conn.send_close_notify();
                    }
                }
                Ok(n) => conn.writer().write_all(&outgoing[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The incoming direction's buffers: records read from the network in one large
/// read (rustls's own `read_tls` reads 4 KiB per syscall) and fed to rustls from
/// memory, and the plaintext it decrypted, written to `local` from here.
struct Incoming {
    records: Vec<u8>,
    /// `records[fed..got]` is not given to rustls yet.
    fed: usize,
    got: usize,
    /// Room for a chunk's plaintext and a record begun in the chunk before.
    plain: Vec<u8>,
    /// `plain[sent..have]` is not written to `local` yet.
    sent: usize,
    have: usize,
    /// rustls holds plaintext `plain` had no room for.
    held: bool,
    /// The network side closed (TCP end of stream)…
    net_eof: bool,
    /// …or the peer's close_notify arrived: nothing more comes.
    tls_eof: bool,
}

impl Incoming {
    fn new() -> Incoming {
        Incoming {
            records: vec![0u8; CHUNK],
            fed: 0,
            got: 0,
            plain: vec![0u8; CHUNK + (32 << 10)],
            sent: 0,
            have: 0,
            held: false,
            net_eof: false,
            tls_eof: false,
        }
    }

    /// Whether to read the network: everything read so far has gone to rustls.
    fn wants_records(&self) -> bool {
        self.fed == self.got && !self.net_eof && !self.tls_eof
    }

    /// The incoming direction is over and all of it written to `local`.
    fn done(&self) -> bool {
        (self.net_eof || self.tls_eof)
            && self.fed == self.got
            && !self.held
            && self.sent == self.have
    }

    fn read_records(&mut self, net: &TcpStream) -> io::Result<()> {
        match (&*net).read(&mut self.records) {
            Ok(0) => self.net_eof = true,
            Ok(n) => (self.fed, self.got) = (0, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Feeds rustls the unfed records and moves what it decrypts into `plain`,
    /// as far as `plain` has room.
    fn decrypt(&mut self, conn: &mut Connection, net: &TcpStream) -> io::Result<()> {
        if self.sent == self.have {
            (self.sent, self.have) = (0, 0);
        }
        loop {
            self.held = false;
            loop {
                if self.have == self.plain.len() {
                    self.held = true;
                    break;
                }
                match conn.reader().read(&mut self.plain[self.have..]) {
                    Ok(0) => {
                        self.tls_eof = true;
                        break;
                    }
                    Ok(n) => self.have += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // The peer closed without close_notify; the protocol's own
                    // END and BYE catch a truncation.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            // rustls's plaintext is drained unless `plain` is full: feeding it more
            // now cannot overflow its buffer.
            if self.held || self.fed == self.got {
                return Ok(());
            }
            let mut rest = &self.records[self.fed..self.got];
            match conn.read_tls(&mut rest)? {
                // close_notify came: whatever follows it is not read.
                0 => self.fed = self.got,
                n => self.fed += n,
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the peer why before giving up.
                let _ = conn.write_tls(&mut &*net);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}
