//! Where a file is sent, and which engine goes first there by measurement.

use std::fmt;
use std::os::fd::AsFd;
use std::str::FromStr;

use super::{Engine, FdKind};
use crate::profile::{Profile, Reader, MARGIN};

/// What kind of reader a file is sent to, as far as the fastest engine depends on
/// it: a peer on this host and one across a NIC cost different things, and so do
/// pipes and Unix sockets (docs/engines.md has the measurements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Destination {
    /// A TCP peer on this host: a loopback address, or the socket's own address
    /// (which the kernel routes over `lo` too). No DMA; the receiver's read copies.
    LocalTcp,
    /// A TCP peer at another address: a NIC, or a veth pair into another network
    /// namespace, which `getpeername` cannot tell apart.
    NetworkTcp,
    /// A Unix stream socket.
    Unix,
    /// A pipe or FIFO.
    Pipe,
}

impl Destination {
    /// Every destination, in the calibration's order.
    pub const ALL: [Destination; 4] = [
        Destination::LocalTcp,
        Destination::Unix,
        Destination::Pipe,
        Destination::NetworkTcp,
    ];

    /// The name a profile gives it.
    pub fn name(self) -> &'static str {
        match self {
            Destination::LocalTcp => "local-tcp",
            Destination::NetworkTcp => "network-tcp",
            Destination::Unix => "unix",
            Destination::Pipe => "pipe",
        }
    }

    /// What `sink` (of kind `kind`) is: for a socket, its family and, for TCP,
    /// whether `getpeername` names this host (`getsockname`'s address or a
    /// loopback one). `None` for files, devices and sockets it cannot place.
    pub fn of(sink: impl AsFd, kind: FdKind) -> Option<Destination> {
        match kind {
            FdKind::Pipe => Some(Destination::Pipe),
            FdKind::Socket => {
                let ours = rustix::net::getsockname(&sink).ok()?;
                if ours.address_family() == rustix::net::AddressFamily::UNIX {
                    return Some(Destination::Unix);
                }
                let ours = std::net::SocketAddr::try_from(ours)
                    .ok()?
                    .ip()
                    .to_canonical();
                let peer = rustix::net::getpeername(&sink).ok()??;
                let peer = std::net::SocketAddr::try_from(peer)
                    .ok()?
                    .ip()
                    .to_canonical();
                Some(if peer.is_loopback() || peer == ours {
                    Destination::LocalTcp
                } else {
                    Destination::NetworkTcp
                })
            }
            _ => None,
        }
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Destination::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown destination '{s}'"))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Destination::LocalTcp => "a TCP peer on this host",
            Destination::NetworkTcp => "a TCP peer on the network",
            Destination::Unix => "a Unix socket",
            Destination::Pipe => "a pipe",
        })
    }
}

/// Why `auto` tried an engine first for a destination.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Preference {
    /// The destination the sink was found to be.
    pub destination: Destination,
    /// The engine tried first.
    pub engine: Engine,
    /// What put it first.
    pub basis: Basis,
}

/// What put an engine first: this machine's calibration, or the default.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Basis {
    /// The calibration of `date` measured it `ratio` times as fast as `over`, the
    /// engine the chain would have tried first.
    Calibrated {
        /// The engine it beat.
        over: Engine,
        /// Its rate over `over`'s.
        ratio: f64,
        /// When the calibration ran.
        date: String,
    },
    /// The calibration of `date` measured `faster` `ratio` times as fast into a
    /// copying reader, but only `there` times as fast into `reader`: the chain's
    /// first stays first, since the sender cannot tell which reader it has.
    Held {
        /// The engine faster into a copying reader.
        faster: Engine,
        /// Its rate over the chain's first into a copying reader.
        ratio: f64,
        /// The reader it was slower into.
        reader: Reader,
        /// Its rate over the chain's first into `reader` (below 1).
        there: f64,
        /// When the calibration ran.
        date: String,
    },
    /// The calibration of `date` measured nothing at least 5% faster than the
    /// chain's first, which stays first.
    Level {
        /// When the calibration ran.
        date: String,
    },
    /// No calibration of this destination: the chain's order, which this
    /// project's measurements justify (docs/engines.md).
    Default,
}

impl Preference {
    /// Which of `usable` (the chain's order, `first` its head) goes first into
    /// `destination`, and why.
    pub(super) fn choose(
        destination: Destination,
        first: Engine,
        usable: &[Engine],
        profile: Option<&Profile>,
    ) -> Preference {
        let default = Preference {
            destination,
            engine: first,
            basis: Basis::Default,
        };
        let Some(profile) = profile else {
            return default;
        };
        let rate = |reader, engine| profile.large_rate(destination, reader, engine);
        let Some(own) = rate(Reader::Copy, first) else {
            return default;
        };
        let date = profile.calibrated.clone();
        let fastest = usable
            .iter()
            .filter_map(|&e| Some((e, rate(Reader::Copy, e)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((engine, best)) = fastest.filter(|(_, best)| *best >= own * (1.0 + MARGIN)) else {
            return Preference {
                basis: Basis::Level { date },
                ..default
            };
        };
        let ratio = best / own;
        // The sender cannot tell how its peer reads: a winner into copying readers
        // that loses into another measured reader does not replace the default.
        for reader in Reader::ALL.into_iter().filter(|r| *r != Reader::Copy) {
            if let (Some(theirs), Some(ours)) = (rate(reader, engine), rate(reader, first)) {
                if theirs < ours * (1.0 - MARGIN) {
                    return Preference {
                        basis: Basis::Held {
                            faster: engine,
                            ratio,
                            reader,
                            there: theirs / ours,
                            date,
                        },
                        ..default
                    };
                }
            }
        }
        Preference {
            destination,
            engine,
            basis: Basis::Calibrated {
                over: first,
                ratio,
                date,
            },
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} first into {}: ", self.engine, self.destination)?;
        match &self.basis {
            Basis::Calibrated { over, ratio, date } => write!(
                f,
                "{ratio:.2}x {over} into a copying reader in this machine's calibration of {date}"
            ),
            Basis::Held {
                faster,
                ratio,
                reader,
                there,
                date,
            } => write!(
                f,
                "the default; this machine's calibration of {date} measured {faster} at \
                 {ratio:.2}x into a copying reader but {there:.2}x into {reader}"
            ),
            Basis::Level { date } => write!(
                f,
                "the default; this machine's calibration of {date} found no engine 5% faster"
            ),
            Basis::Default => f.write_str(
                "the default, without a calibration of this destination (zcopy bench --calibrate)",
            ),
        }
    }
}
