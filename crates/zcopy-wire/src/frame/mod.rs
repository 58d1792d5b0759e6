//! The framed protocol of `send` and `recv` (without `--raw`), version 3.
//!
//! ```text
//! sender → receiver   greeting  "ZCPY" version:u8 caps:u32 session:u64
//! receiver → sender   greeting  "ZCPY" version:u8 caps:u32 session:u64
//! then messages, both ways:  kind:u8  body_len:u32  body      (big-endian)
//! ```
//!
//! A session sends entries (files, directories, symlinks) in any number. A file's
//! content travels as blocks of `block` bytes (the last one shorter), each a DATA
//! message followed by its bytes and their XXH3-128, or a HOLE message for a block
//! of zeros that is not sent. END closes a file with its size and the XXH3-128 of
//! the block digests in block order; the receiver checks every block as it arrives
//! and the file digest at END, then renames the file into place and answers OK.
//! Extra connections of a session (`-j N`) send a greeting with the session number
//! the first connection was given, and carry only DATA, PACKED and HOLE messages.
//! With `send -z`, a block that compresses goes as PACKED instead of DATA (and a
//! delta's chunk instead of LITERAL), to a receiver with [`CAP_COMPRESS`] only.
//!
//! The receiver answers a file sent with `ASK` with HAVE: the blocks it already holds
//! from an interrupted transfer (or the whole file), so the sender sends only the
//! rest. A mirror's messages (MIRROR, NAMES, ITEM) are in [`Mirror`]'s module;
//! a FILE sent with a digest (`send -c`) is complete in place only if the file
//! there has that digest too. Any error ends the session with ERR and its reason, which the sender
//! prints. The greeting's capability bits leave room for later steps (authentication
//! will be one); a side ignores bits it does not know.
//!
//! Versions: each side greets with the highest it speaks, and the session speaks
//! the lower of the two ([`negotiate`]), down to [`MIN_VERSION`]. Version 3 adds
//! an entry's attributes ([`Attrs`]: owner, group, xattrs, ACLs, a device's
//! number) and the entry kinds of FIFOs, sockets, devices and hard links; a
//! version 2 peer gets none of them (the sender says so once).

use std::io;

mod attrs;
mod digest;
mod greeting;
mod mirror;
mod path;
mod reader;

pub use attrs::{AclEntry, Attrs, Id, ACL_GROUP, ACL_USER};
pub use digest::{file_digest, zeros_digest};
pub use greeting::Greeting;
pub use mirror::{names_messages, Mirror};
pub use path::{check_path, shown};
pub use reader::Reader;

/// The first four bytes of every framed connection, both ways.
pub const MAGIC: &[u8; 4] = b"ZCPY";

/// This protocol's version; the receiver answers with the version it speaks.
pub const VERSION: u8 = 3;

/// The oldest version this implementation still speaks.
pub const MIN_VERSION: u8 = 2;

/// The version a session between a side speaking `ours` and one speaking
/// `theirs` speaks: the lower one, `None` below [`MIN_VERSION`].
pub fn negotiate(ours: u8, theirs: u8) -> Option<u8> {
    Some(ours.min(theirs)).filter(|&v| v >= MIN_VERSION)
}

/// The greeting's capability bits this implementation has.
pub const CAPS: u32 = CAP_RESUME | CAP_STREAMS | CAP_MIRROR | CAP_DELTA | CAP_ATTRS | CAP_COMPRESS;

/// The capability bits of `version` (a side speaking 2 has no [`CAP_ATTRS`],
/// nor [`CAP_COMPRESS`], which came with 3).
pub fn caps_of(version: u8) -> u32 {
    if version >= 3 {
        CAPS
    } else {
        CAPS & !CAP_ATTRS & !CAP_COMPRESS
    }
}
/// The receiver keeps partial files and answers ASK with HAVE.
pub const CAP_RESUME: u32 = 1;
/// The receiver accepts extra connections joining a session.
pub const CAP_STREAMS: u32 = 2;
/// The receiver takes MIRROR, NAMES and FILE digests, and answers ITEM.
pub const CAP_MIRROR: u32 = 4;
/// The receiver answers a FILE sent with `delta` and held in an older version
/// with SIG, and builds the file from COPY and LITERAL (see [`crate::delta`]).
pub const CAP_DELTA: u32 = 8;
/// Version 3: the receiver takes [`Attrs`] and the entry kinds beyond file,
/// directory and symlink.
pub const CAP_ATTRS: u32 = 16;
/// The receiver takes PACKED: a DATA block or a LITERAL chunk compressed with
/// zstd (see [`crate::compress`]).
pub const CAP_COMPRESS: u32 = 32;

/// The reason a receiver that requires a secret gives a sender that has none.
pub const NEEDS_SECRET: &str = "this receiver requires a secret: run send as the line `zcopy recv` printed says (ZCOPY_SECRET=... zcopy send --fingerprint ...)";

/// The block size senders use: large enough that a block's header is noise, small
/// enough that a resume loses little and `-j N` has blocks to spread.
pub const BLOCK: u32 = 4 << 20;

/// The block sizes a receiver accepts.
pub const BLOCK_RANGE: std::ops::RangeInclusive<u32> = (4 << 10)..=(64 << 20);

/// The longest message body accepted (a HAVE bitmap of a 2 TiB file fits).
const MAX_BODY: u32 = 1 << 20;

/// The longest relative path accepted, as Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file: its blocks follow.
    File = 0,
    /// A directory.
    Dir = 1,
    /// A symbolic link: its target is in the entry.
    Symlink = 2,
    /// A FIFO (`-D`, version 3).
    Fifo = 3,
    /// A Unix socket (`-D`, version 3).
    Socket = 4,
    /// A character device, its number in [`Attrs::rdev`] (`-D`, version 3).
    CharDevice = 5,
    /// A block device, its number in [`Attrs::rdev`] (`-D`, version 3).
    BlockDevice = 6,
    /// Another name of a file sent before (`-H`, version 3): `target` is that
    /// file's path.
    HardLink = 7,
}

impl EntryKind {
    /// A FIFO, a socket or a device: made with mknod, no content.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice
        )
    }
}

/// The read, write and execute bits of a mode: what an entry keeps unless its
/// sender proved the secret and asked for set-uid, set-gid and sticky too.
pub const PERMISSION_BITS: u32 = 0o777;

/// A FILE message: one entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The sender's number for this entry, echoed in DATA, HOLE, END, HAVE, OK, ERR.
    pub id: u32,
    /// A file, a directory or a symlink.
    pub kind: EntryKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// Content length; `None` for a source that does not know it (a pipe, `/proc`).
    pub size: Option<u64>,
    /// The block size the file's DATA and HAVE bits count in.
    pub block: u32,
    /// Answer with HAVE before any DATA (resume).
    pub ask: bool,
    /// With `ask`: a file already in place with the same size and mtime is complete.
    pub complete_ok: bool,
    /// With `ask` and `complete_ok`: the file's digest ([`file_digest`] of its
    /// blocks), which a file in place must have too (`send -c`), not only its
    /// size and mtime.
    pub digest: Option<u128>,
    /// With `ask`: an older version in place may be answered with SIG (delta).
    pub delta: bool,
    /// With `delta`: rewrite the old version in place rather than build the new
    /// file beside it (`--inplace`; the plan only references bytes at or after
    /// their new place).
    pub inplace: bool,
    /// The path relative to the receiver's directory, `/`-separated: bytes, as
    /// Linux names are (see [`shown`] for messages).
    pub path: Vec<u8>,
    /// A symlink's target, as it is (never followed by the receiver); a hard
    /// link's first name.
    pub target: Vec<u8>,
    /// Owner, group, xattrs, ACLs, a device's number: what the sender was asked
    /// to keep (version 3; empty otherwise). Boxed: most entries carry none.
    pub attrs: Box<Attrs>,
}

/// How much of a file the receiver already holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Have {
    /// None of it: every block is to be sent.
    Nothing,
    /// One bit per block, least significant bit of byte 0 is block 0.
    Blocks(Vec<u8>),
    /// The file is in place with the same size and mtime; send nothing.
    Complete,
}

impl Have {
    /// Whether block number `block` is already there.
    pub fn holds(&self, block: usize) -> bool {
        match self {
            Have::Nothing => false,
            Have::Complete => true,
            Have::Blocks(bits) => bits
                .get(block / 8)
                .is_some_and(|b| b >> (block % 8) & 1 == 1),
        }
    }
}

/// One message after the greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Sender: an entry; a file's blocks and END follow.
    File(Entry),
    /// Sender: `len` bytes at `offset` follow, then their XXH3-128 (16 bytes).
    Data {
        /// The entry's number.
        id: u32,
        /// Where the bytes go in the file.
        offset: u64,
        /// How many bytes follow.
        len: u32,
    },
    /// Sender: `len` zero bytes at `offset`, not sent.
    Hole {
        /// The entry's number.
        id: u32,
        /// Where the hole starts in the file.
        offset: u64,
        /// How many zero bytes.
        len: u32,
    },
    /// Sender: the file is complete; its size and the digest of its block digests.
    End {
        /// The entry's number.
        id: u32,
        /// The file's size.
        size: u64,
        /// The XXH3-128 of its block digests.
        digest: u128,
    },
    /// Sender: no more entries.
    Done,
    /// Receiver: the answer to an entry sent with `ask`.
    Have {
        /// The entry's number.
        id: u32,
        /// What the receiver holds of it.
        have: Have,
    },
    /// Receiver: the answer to an entry sent with `delta` when an older version is
    /// in place: its chunks ([`crate::delta::Signature::encode`]), in as many
    /// messages as they need, `last` on the final one.
    Sig {
        /// The entry's number.
        id: u32,
        /// Whether this is the signature's last message.
        last: bool,
        /// Encoded chunks of the old version.
        chunks: Vec<u8>,
    },
    /// Sender: `len` bytes of the old version at `old` go to `new`.
    Copy {
        /// The entry's number.
        id: u32,
        /// Offset in the old version.
        old: u64,
        /// Offset in the new file.
        new: u64,
        /// Bytes referenced.
        len: u64,
    },
    /// Sender: `len` bytes at `offset` follow, as they are (a delta's literal
    /// chunk; the file digest at END covers them).
    Literal {
        /// The entry's number.
        id: u32,
        /// Offset in the new file.
        offset: u64,
        /// Bytes that follow.
        len: u32,
    },
    /// Sender (to a receiver with [`CAP_COMPRESS`]): a DATA block or a LITERAL
    /// chunk of `len` bytes at `offset`, compressed: `packed` bytes of one zstd
    /// frame follow, then for a block the XXH3-128 of its `len` bytes.
    Packed {
        /// The entry's number.
        id: u32,
        /// Where the bytes go in the file.
        offset: u64,
        /// How many bytes they decompress to.
        len: u32,
        /// How many compressed bytes follow (fewer than `len`).
        packed: u32,
        /// A delta's literal chunk (no digest follows), not a DATA block.
        literal: bool,
    },
    /// Receiver: the file is verified and under its real name.
    Ok {
        /// The entry's number.
        id: u32,
    },
    /// Either side: the session ends for this reason (`id` 0: not about one file).
    Err {
        /// The entry's number, or 0.
        id: u32,
        /// Why, in words for a message.
        reason: String,
    },
    /// Receiver: every entry is in place; the session is over.
    Bye,
    /// Sender, first: the session is a mirror ([`Mirror`]).
    Mirror(Mirror),
    /// Sender: names it will send, for a deletion before the transfer; empty: the last.
    Names(Vec<Vec<u8>>),
    /// Receiver: one `--itemize-changes` line (`>f+++++++++ a/b`).
    Item(Vec<u8>),
}

impl Msg {
    /// Appends the message's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 5]);
        let kind = match self {
            Msg::File(e) => {
                out.extend_from_slice(&e.id.to_be_bytes());
                out.push(e.kind as u8);
                out.extend_from_slice(&e.mode.to_be_bytes());
                out.extend_from_slice(&e.mtime.0.to_be_bytes());
                out.extend_from_slice(&e.mtime.1.to_be_bytes());
                out.extend_from_slice(&e.size.unwrap_or(u64::MAX).to_be_bytes());
                out.extend_from_slice(&e.block.to_be_bytes());
                out.push(
                    u8::from(e.ask)
                        | u8::from(e.complete_ok) << 1
                        | u8::from(e.digest.is_some()) << 2
                        | u8::from(e.delta) << 3
                        | u8::from(!e.attrs.is_empty()) << 4
                        | u8::from(e.inplace) << 5,
                );
                for text in [&e.path, &e.target] {
                    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
                    out.extend_from_slice(text);
                }
                // After the names: a receiver without CAP_MIRROR ignores it.
                if let Some(d) = e.digest {
                    out.extend_from_slice(&d.to_be_bytes());
                }
                if !e.attrs.is_empty() {
                    e.attrs.encode(out);
                }
                b'F'
            }
            Msg::Data { id, offset, len } | Msg::Hole { id, offset, len } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                if matches!(self, Msg::Data { .. }) {
                    b'D'
                } else {
                    b'Z'
                }
            }
            Msg::End { id, size, digest } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&digest.to_be_bytes());
                b'E'
            }
            Msg::Done => b'Q',
            Msg::Have { id, have } => {
                out.extend_from_slice(&id.to_be_bytes());
                match have {
                    Have::Nothing => out.push(0),
                    Have::Blocks(bits) => {
                        out.push(1);
                        out.extend_from_slice(bits);
                    }
                    Have::Complete => out.push(2),
                }
                b'H'
            }
            Msg::Sig { id, last, chunks } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.push(u8::from(*last));
                out.extend_from_slice(chunks);
                b'S'
            }
            Msg::Copy { id, old, new, len } => {
                out.extend_from_slice(&id.to_be_bytes());
                for n in [old, new, len] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                b'C'
            }
            Msg::Literal { id, offset, len } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                b'L'
            }
            Msg::Packed {
                id,
                offset,
                len,
                packed,
                literal,
            } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&packed.to_be_bytes());
                out.push(u8::from(*literal));
                b'P'
            }
            Msg::Ok { id } => {
                out.extend_from_slice(&id.to_be_bytes());
                b'K'
            }
            Msg::Err { id, reason } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(reason.as_bytes());
                b'X'
            }
            Msg::Bye => b'B',
            Msg::Mirror(m) => {
                m.encode(out);
                b'M'
            }
            Msg::Names(list) => {
                mirror::names(list, out);
                b'N'
            }
            Msg::Item(line) => {
                out.extend_from_slice(line);
                b'I'
            }
        };
        let body = (out.len() - start - 5) as u32;
        out[start] = kind;
        out[start + 1..start + 5].copy_from_slice(&body.to_be_bytes());
    }

    /// Decodes a message from its kind and body; never panics on hostile bytes.
    pub fn decode(kind: u8, body: &[u8]) -> io::Result<Msg> {
        let mut b = Body(body);
        let msg = match kind {
            b'F' => {
                let id = b.u32()?;
                let kind = match b.u8()? {
                    0 => EntryKind::File,
                    1 => EntryKind::Dir,
                    2 => EntryKind::Symlink,
                    3 => EntryKind::Fifo,
                    4 => EntryKind::Socket,
                    5 => EntryKind::CharDevice,
                    6 => EntryKind::BlockDevice,
                    7 => EntryKind::HardLink,
                    k => return Err(invalid(&format!("unknown entry kind {k}"))),
                };
                let mode = b.u32()?;
                let mtime = (b.u64()? as i64, b.u32()?);
                let size = Some(b.u64()?).filter(|&s| s != u64::MAX);
                let block = b.u32()?;
                let flags = b.u8()?;
                let path = b.name()?;
                let target = b.name()?;
                let digest = if flags & 4 != 0 {
                    Some(b.u128()?)
                } else {
                    None
                };
                let attrs = if flags & 16 != 0 {
                    Box::new(Attrs::decode(&mut b)?)
                } else {
                    Box::default()
                };
                if !BLOCK_RANGE.contains(&block) {
                    return Err(invalid(&format!("block size {block} out of range")));
                }
                check_path(&path)?;
                if kind == EntryKind::HardLink {
                    check_path(&target)?;
                }
                Msg::File(Entry {
                    id,
                    kind,
                    mode,
                    mtime,
                    size,
                    block,
                    ask: flags & 1 != 0,
                    complete_ok: flags & 2 != 0,
                    digest,
                    delta: flags & 8 != 0,
                    inplace: flags & 32 != 0,
                    path,
                    target,
                    attrs,
                })
            }
            b'D' | b'Z' => {
                let (id, offset, len) = (b.u32()?, b.u64()?, b.u32()?);
                if kind == b'D' {
                    Msg::Data { id, offset, len }
                } else {
                    Msg::Hole { id, offset, len }
                }
            }
            b'E' => Msg::End {
                id: b.u32()?,
                size: b.u64()?,
                digest: b.u128()?,
            },
            b'Q' => Msg::Done,
            b'H' => {
                let id = b.u32()?;
                let have = match b.u8()? {
                    0 => Have::Nothing,
                    1 => Have::Blocks(b.0.to_vec()),
                    2 => Have::Complete,
                    s => return Err(invalid(&format!("unknown HAVE state {s}"))),
                };
                Msg::Have { id, have }
            }
            b'S' => Msg::Sig {
                id: b.u32()?,
                last: b.u8()? != 0,
                chunks: b.0.to_vec(),
            },
            b'C' => Msg::Copy {
                id: b.u32()?,
                old: b.u64()?,
                new: b.u64()?,
                len: b.u64()?,
            },
            b'L' => Msg::Literal {
                id: b.u32()?,
                offset: b.u64()?,
                len: b.u32()?,
            },
            b'P' => Msg::Packed {
                id: b.u32()?,
                offset: b.u64()?,
                len: b.u32()?,
                packed: b.u32()?,
                literal: b.u8()? != 0,
            },
            b'K' => Msg::Ok { id: b.u32()? },
            b'X' => Msg::Err {
                id: b.u32()?,
                reason: String::from_utf8_lossy(b.0).into_owned(),
            },
            b'B' => Msg::Bye,
            b'M' => Msg::Mirror(Mirror::decode(&mut b)?),
            b'N' => Msg::Names(mirror::decode_names(&mut b)?),
            b'I' => {
                mirror::check_item(b.0)?;
                Msg::Item(b.0.to_vec())
            }
            k => return Err(invalid(&format!("unknown message kind 0x{k:02x}"))),
        };
        Ok(msg)
    }
}

/// A body being decoded, front to back.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        if self.0.len() < N {
            return Err(invalid("message body too short"));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> io::Result<u64> {
        self.take().map(u64::from_be_bytes)
    }
    fn u128(&mut self) -> io::Result<u128> {
        self.take().map(u128::from_be_bytes)
    }
    fn name(&mut self) -> io::Result<Vec<u8>> {
        let len = usize::from(u16::from_be_bytes(self.take()?));
        if self.0.len() < len {
            return Err(invalid("message body too short"));
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(text.to_vec())
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests;
