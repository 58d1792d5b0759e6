//! Zero-copy between tokio files and sockets (the `tokio` feature): [`copy`] is
//! `tokio::io::copy` that moves the bytes inside the kernel where it can, and says
//! which path ran.
//!
//! What runs when, for `copy(&mut src, &mut dst)`:
//!
//! | source → sink | path | per chunk |
//! |---|---|---|
//! | [`File`] → [`TcpStream`], [`UnixStream`] | [`Engine::Sendfile`] | 1 `sendfile` |
//! | socket → socket, socket → [`File`] | [`Engine::Splice`] through a private pipe | 2 `splice` |
//! | [`File`] → [`File`] | [`Engine::CopyFileRange`] | 1 `copy_file_range` |
//! | anything with no descriptor ([`tokio::io::DuplexStream`], a type whose [`AsEnd`] says [`End::Other`]); a [`File`] that is not a regular file (a FIFO, a terminal); a pair or an [`Options::engine`] that [`TransferState::new`] refuses | `tokio::io::copy` | a `read` and a `write` through its 8 KiB buffer |
//!
//! [`Outcome::path`] says which ([`Path::Engine`] with the engine's [`Report`],
//! or [`Path::Fallback`] with the [`Fallback`] reason), and [`Outcome::bytes`] how
//! many bytes moved. The engines are those of [`Transfer`] under `auto`, so an engine
//! the kernel refuses on its first call hands over to the next (down to
//! read-write), and the report lists what was skipped and why.
//!
//! A socket may be whole or a half of [`TcpStream::into_split`] (or `split`, or
//! [`UnixStream`]'s): a proxy copies each direction in a task of its own.
//!
//! ```
//! use std::io::{Seek, Write};
//! use tokio::io::AsyncReadExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut file = tempfile::tempfile()?;
//! file.write_all(b"hello, zero copy")?;
//! file.rewind()?;
//! let mut src = tokio::fs::File::from_std(file);
//! let (mut ours, mut theirs) = tokio::net::UnixStream::pair()?;
//! let outcome = zcopy::tokio::copy(&mut src, &mut ours).await?;
//! assert_eq!(outcome.engine(), Some(zcopy::Engine::Sendfile));
//! println!("{} bytes by {}", outcome.bytes, outcome.path);
//! drop(ours);
//! let mut got = String::new();
//! theirs.read_to_string(&mut got).await?;
//! assert_eq!(got, "hello, zero copy");
//! # Ok(())
//! # }
//! ```
//!
//! Sockets are driven by readiness: the engines run on tokio's non-blocking
//! descriptors until one says `EAGAIN`; [`Status::WouldBlock`] names the side, the
//! task waits for that socket to be readable (the source) or writable (the sink) with
//! tokio's `async_io`, which clears the readiness tokio cached when the engine finds
//! the socket not ready after all. A runtime thread never blocks on a socket.
//!
//! Regular files are another matter: Linux has no readiness for them, and
//! `sendfile`, `splice` and `copy_file_range` on a file block the calling thread
//! while the kernel reads the disk. That is what `tokio::fs` hands to its blocking
//! pool, one `read` at a time. Here it runs on the runtime thread, which is right for
//! page-cached files (the common case of a file server: the call is a memory copy
//! inside the kernel, or none) and stalls the thread's other tasks for as long as a
//! disk read takes otherwise. For files that are likely cold, run the blocking
//! [`crate::copy()`] (which waits on a non-blocking socket with `poll`) inside
//! `tokio::task::spawn_blocking`, or give such copies a runtime of their own. A
//! transfer yields to the scheduler
//! every 4 MiB, so a fast pair never keeps the thread's other tasks waiting longer
//! than that takes.
//!
//! A [`File`] source is read from its current position, which ends after the last
//! byte moved, as with `tokio::io::copy` (after an error it stays where the copy
//! started, and [`Error::moved`] says how far it got); a [`File`] sink is written at
//! its position. Each costs one `lseek` on tokio's blocking pool (the file's own
//! seek, which also waits for a write in flight and accounts for bytes tokio read
//! ahead).

use std::io::{self, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};

use ::tokio::fs::File;
use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, Interest};
use ::tokio::net::{TcpStream, UnixStream};

use crate::{Engine, FdKind, Options, Side, Status, TransferState};
#[cfg(doc)]
use crate::{EngineChoice, Report, Transfer};

mod end;
mod outcome;

pub use end::{AsEnd, End};
pub use outcome::{Error, Fallback, Outcome, Path};

/// How many bytes a transfer moves between two yields to the scheduler.
const SLICE: u64 = 4 << 20;

/// Copies everything from `src` to `dst` with the `auto` engines, or
/// `tokio::io::copy` where they cannot (see the module doc), and says which ran.
/// The thread's resource usage is not measured ([`Options::rusage`] off): that is
/// two `getrusage` calls per readiness wake.
pub async fn copy<R, W>(src: &mut R, dst: &mut W) -> Result<Outcome, Error>
where
    R: AsyncRead + AsEnd + Unpin + ?Sized,
    W: AsyncWrite + AsEnd + Unpin + ?Sized,
{
    copy_with(src, dst, Options::default().rusage(false)).await
}

/// [`copy`] with these options: the engine choice (an [`EngineChoice::Only`] that
/// cannot move the pair falls back), buffer and pipe sizes, `len` (exactly that
/// many bytes, else an error), `rusage`. `offset` must be 0: a file source is read
/// from its position.
pub async fn copy_with<R, W>(src: &mut R, dst: &mut W, options: Options) -> Result<Outcome, Error>
where
    R: AsyncRead + AsEnd + Unpin + ?Sized,
    W: AsyncWrite + AsEnd + Unpin + ?Sized,
{
    if options.offset != 0 {
        return Err(Error::Setup {
            call: "offset",
            cause: io::Error::new(
                io::ErrorKind::InvalidInput,
                "an async copy reads a file from its position: seek it instead of an offset",
            ),
        });
    }
    let src_kind = match kind_of(&src.as_end(), Side::Source)? {
        Ok(kind) => kind,
        Err(why) => return fallback(src, dst, options, why).await,
    };
    let sink_kind = match kind_of(&dst.as_end(), Side::Sink)? {
        Ok(kind) => kind,
        Err(why) => return fallback(src, dst, options, why).await,
    };
    let start = match src.as_end() {
        End::File(file) => position(file).await?,
        _ => 0,
    };
    if let End::File(file) = dst.as_end() {
        position(file).await?;
    }
    let options = options.offset(start);
    let mut state = match TransferState::new(src_kind, sink_kind, options) {
        Ok(state) => state,
        Err(e) => return fallback(src, dst, options, Fallback::Refused(e.to_string())).await,
    };
    let mut waits = Waits::default();
    let driven = match (Ready::of(src.as_end()), Ready::of(dst.as_end())) {
        (Ok(src), Ok(sink)) => drive(&mut state, src, sink, &mut waits).await,
        // An AsEnd that had a descriptor a moment ago and has none now.
        (Err(what), _) => {
            let why = Fallback::NoDescriptor {
                side: Side::Source,
                what,
            };
            return fallback(src, dst, options, why).await;
        }
        (_, Err(what)) => {
            let why = Fallback::NoDescriptor {
                side: Side::Sink,
                what,
            };
            return fallback(src, dst, options, why).await;
        }
    };
    let moved = state.moved();
    let outcome = match driven {
        Ok(()) => Outcome {
            bytes: moved,
            path: Path::Engine(state.report()),
            source_waits: waits.source,
            sink_waits: waits.sink,
        },
        // An engine that cannot move the pair, found before the first byte (a
        // single chosen engine the kernel refuses): the fallback takes over.
        Err(crate::Error::Setup(e)) if moved == 0 => {
            return fallback(src, dst, options, Fallback::Refused(e.to_string())).await
        }
        Err(error) => return Err(Error::Engine { moved, error }),
    };
    if let End::File(file) = src.as_end() {
        file.seek(SeekFrom::Start(start + moved))
            .await
            .map_err(|cause| Error::Setup {
                call: "lseek",
                cause,
            })?;
    }
    Ok(outcome)
}

/// The kind of an end the engines can drive, or why they cannot.
fn kind_of(end: &End<'_>, side: Side) -> Result<Result<FdKind, Fallback>, Error> {
    Ok(Ok(match end {
        End::Tcp(_) | End::Unix(_) => FdKind::Socket,
        End::File(file) => match FdKind::of(&**file) {
            Ok(FdKind::File) => FdKind::File,
            Ok(kind) => return Ok(Err(Fallback::NotRegularFile { side, kind })),
            Err(cause) => {
                return Err(Error::Setup {
                    call: "fstat",
                    cause,
                })
            }
        },
        End::Other(what) => return Ok(Err(Fallback::NoDescriptor { side, what })),
    }))
}

/// A file's position, once tokio has finished what it had in flight on it.
async fn position(file: &mut File) -> Result<u64, Error> {
    file.stream_position().await.map_err(|cause| Error::Setup {
        call: "lseek",
        cause,
    })
}

async fn fallback<R, W>(
    src: &mut R,
    dst: &mut W,
    options: Options,
    why: Fallback,
) -> Result<Outcome, Error>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let copied = match options.len {
        Some(len) => ::tokio::io::copy(&mut src.take(len), dst).await,
        None => ::tokio::io::copy(src, dst).await,
    };
    let bytes = match copied {
        Ok(bytes) => bytes,
        Err(cause) => return Err(Error::Fallback { why, cause }),
    };
    match options.len {
        Some(expected) if bytes < expected => Err(Error::EndedEarly {
            why,
            got: bytes,
            expected,
        }),
        _ => Ok(Outcome {
            bytes,
            path: Path::Fallback(why),
            source_waits: 0,
            sink_waits: 0,
        }),
    }
}

#[derive(Default)]
struct Waits {
    source: u64,
    sink: u64,
}

impl Waits {
    fn count(&mut self, side: Side) {
        match side {
            Side::Source => self.source += 1,
            Side::Sink | Side::Either => self.sink += 1,
        }
    }
}

/// Runs the transfer to its end, waiting for readiness of whichever side said
/// `EAGAIN`.
async fn drive(
    state: &mut TransferState,
    src: Ready<'_>,
    sink: Ready<'_>,
    waits: &mut Waits,
) -> Result<(), crate::Error> {
    let (src_fd, sink_fd) = (src.fd(), sink.fd());
    let mut status = state.run_some(src_fd, sink_fd, SLICE)?;
    loop {
        status = match status {
            Status::Done => return Ok(()),
            Status::More => {
                ::tokio::task::yield_now().await;
                state.run_some(src_fd, sink_fd, SLICE)?
            }
            Status::WouldBlock(side) => {
                waits.count(side);
                let (end, interest) = match side {
                    Side::Source => (src, Interest::READABLE),
                    Side::Sink => (sink, Interest::WRITABLE),
                    // A direct splice between a pipe and the other end; no end
                    // here is a pipe (a FIFO falls back), so the sink is a socket.
                    Side::Either => (sink, Interest::WRITABLE),
                };
                // async_io clears tokio's cached readiness each time the engine
                // finds this side not ready after all, so the wait is real.
                let mut run = || match state.run_some(src_fd, sink_fd, SLICE) {
                    Ok(Status::WouldBlock(again)) if again == side => {
                        waits.count(side);
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    other => Ok(other),
                };
                let ran = match end {
                    Ready::Tcp(socket) => socket.async_io(interest, run).await,
                    Ready::Unix(socket) => socket.async_io(interest, run).await,
                    // Regular files are always ready: an EAGAIN from one is an error.
                    Ready::File(_) => run(),
                };
                match ran {
                    Ok(result) => result?,
                    Err(cause) => {
                        return Err(crate::Error::Io {
                            engine: state.engine().unwrap_or(Engine::ReadWrite),
                            syscall: "epoll_wait",
                            cause,
                        })
                    }
                }
            }
        }
    }
}

/// An end with a descriptor, as the transfer is driven with it.
#[derive(Clone, Copy)]
enum Ready<'a> {
    Tcp(&'a TcpStream),
    Unix(&'a UnixStream),
    File(&'a File),
}

impl<'a> Ready<'a> {
    fn of(end: End<'a>) -> Result<Ready<'a>, &'static str> {
        match end {
            End::Tcp(socket) => Ok(Ready::Tcp(socket)),
            End::Unix(socket) => Ok(Ready::Unix(socket)),
            End::File(file) => Ok(Ready::File(file)),
            End::Other(what) => Err(what),
        }
    }

    fn fd(self) -> BorrowedFd<'a> {
        match self {
            Ready::Tcp(socket) => socket.as_fd(),
            Ready::Unix(socket) => socket.as_fd(),
            Ready::File(file) => file.as_fd(),
        }
    }
}
