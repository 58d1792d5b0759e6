//! The ends of an async copy: what a tokio type is to the engines.

use ::tokio::fs::File;
use ::tokio::io::DuplexStream;
use ::tokio::net::{tcp, unix, TcpStream, UnixStream};

/// One end of an async copy, as the engines see it.
#[non_exhaustive]
pub enum End<'a> {
    /// A TCP socket, driven by tokio's readiness.
    Tcp(&'a TcpStream),
    /// A Unix stream socket, driven by tokio's readiness.
    Unix(&'a UnixStream),
    /// A file, read or written at its position; a regular file uses the engines, other
    /// files (FIFOs, terminals) fall back.
    File(&'a mut File),
    /// Nothing the engines can drive; the words say what it is, for the report
    /// ("an in-memory tokio::io::duplex").
    Other(&'static str),
}

/// What a value is to [`copy`](super::copy): a descriptor the engines drive, or [`End::Other`].
pub trait AsEnd {
    /// This value as an end of a copy.
    fn as_end(&mut self) -> End<'_>;
}

impl AsEnd for TcpStream {
    fn as_end(&mut self) -> End<'_> {
        End::Tcp(self)
    }
}

impl AsEnd for UnixStream {
    fn as_end(&mut self) -> End<'_> {
        End::Unix(self)
    }
}

/// A half of a split socket is the socket: one task copies into it while another
/// copies out of it (a proxy), each waiting on its own direction's readiness.
macro_rules! halves {
    ($variant:ident: $($half:ty),*) => {$(
        impl AsEnd for $half {
            fn as_end(&mut self) -> End<'_> {
                End::$variant((*self).as_ref())
            }
        }
    )*};
}

halves!(Tcp: tcp::OwnedReadHalf, tcp::OwnedWriteHalf, tcp::ReadHalf<'_>, tcp::WriteHalf<'_>);
halves!(Unix: unix::OwnedReadHalf, unix::OwnedWriteHalf, unix::ReadHalf<'_>, unix::WriteHalf<'_>);

impl AsEnd for File {
    fn as_end(&mut self) -> End<'_> {
        End::File(self)
    }
}

impl AsEnd for DuplexStream {
    fn as_end(&mut self) -> End<'_> {
        End::Other("an in-memory tokio::io::duplex")
    }
}
