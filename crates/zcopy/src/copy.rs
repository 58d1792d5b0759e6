//! [`copy()`]: `std::io::copy` for descriptors, by the fastest path the kernel
//! offers, with a [`Report`] of the path taken.

use std::os::fd::AsFd;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::SeekFrom;

use crate::{Error, FdKind, Options, Report, Side, Status, Transfer};

/// Copies everything from `reader` to `writer` as `std::io::copy` does (from the
/// reader's current position to its end, leaving both positions after the bytes
/// moved), choosing the engine by the descriptors' kinds (`auto`: sendfile,
/// splice, copy_file_range, then read and write) and falling back engine by engine.
/// Where `std::io::copy` takes its path silently, the report says which engine ran,
/// which were skipped and why, and the syscalls it cost.
///
/// A non-blocking descriptor that is not ready is waited for with `poll(2)` on the
/// side that blocked ([`Status::WouldBlock`]); an event loop drives a [`Transfer`]
/// itself instead.
///
/// ```
/// use std::io::{Read, Seek, Write};
///
/// let mut src = tempfile::tempfile()?;
/// src.write_all(b"hello, zero copy")?;
/// src.rewind()?;
/// let mut dst = tempfile::tempfile()?;
/// let report = zcopy::copy(&mut src, &mut dst)?;
/// assert_eq!(report.bytes, 16);
/// println!("{} ran; skipped: {:?}", report.engine, report.skipped);
/// dst.rewind()?;
/// let mut got = String::new();
/// dst.read_to_string(&mut got)?;
/// assert_eq!(got, "hello, zero copy");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn copy<R: AsFd, W: AsFd>(reader: &mut R, writer: &mut W) -> Result<Report, Error> {
    let positional = FdKind::of(&*reader).map_err(Error::Setup)? == FdKind::File;
    let start = if positional {
        rustix::fs::seek(&*reader, SeekFrom::Current(0)).map_err(|e| Error::Setup(e.into()))?
    } else {
        0
    };
    let mut transfer = Transfer::new(&*reader, &*writer, Options::default().offset(start))?;
    let result = loop {
        match transfer.run() {
            Ok(Status::Done) => break Ok(()),
            Ok(Status::WouldBlock(side)) => {
                if let Err(e) = wait(side, &*reader, &*writer) {
                    break Err(Error::Setup(e));
                }
            }
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    let report = transfer.report();
    drop(transfer);
    if positional {
        // The engines read a file at an offset; its position moves as a read's would.
        let end = start + report.bytes;
        rustix::fs::seek(&*reader, SeekFrom::Start(end)).map_err(|e| Error::Setup(e.into()))?;
    }
    result.map(|()| report)
}

/// Waits until the side that was not ready is.
fn wait(side: Side, reader: &impl AsFd, writer: &impl AsFd) -> std::io::Result<()> {
    let mut fds = [
        PollFd::new(reader, PollFlags::IN),
        PollFd::new(writer, PollFlags::OUT),
    ];
    let fds = match side {
        Side::Source => &mut fds[..1],
        Side::Sink => &mut fds[1..],
        Side::Either => &mut fds[..],
    };
    loop {
        match rustix::event::poll(fds, None) {
            Err(rustix::io::Errno::INTR) => {}
            other => return other.map(|_| ()).map_err(Into::into),
        }
    }
}
