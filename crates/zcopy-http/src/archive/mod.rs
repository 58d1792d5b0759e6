//! A folder as a POSIX tar stream whose bytes are known before the first is sent.
//!
//! [`Archive::plan`] walks a served directory once and lays out every member: its
//! header (ustar, with a PAX extended header before it for names or link targets
//! longer than ustar's 100 bytes, or sizes of 8 GiB and more) and where its content
//! lies. The archive's length is then exact, so a response has a `Content-Length`,
//! answers ranges and can be resumed, and a member's content can go out by sendfile
//! from the file itself: [`Archive::piece_at`] says, for any offset, whether the
//! next bytes are header bytes (from memory), padding, or a range of a file.
//!
//! Members are what a request could get, as in a listing: servable names only
//! ([`files::servable`]: no dot names without `--hidden`, never a part file or
//! manifest), kept as the bytes the directory holds (UTF-8 or not), regular files
//! and directories opened beneath the root the way a request opens them, and symlinks
//! that resolve beneath it, stored as symlinks (never followed, so no loop and no
//! byte from outside the root). Modes keep the permission bits only; owners are
//! 0, as `git archive` writes them. The order is fixed (each directory, then its
//! entries by name), so the same tree gives the same bytes and the same ETag.
//!
//! A member file is checked against the plan when it is opened and after its last
//! byte ([`Archive::verify`]); [`body`] sends an archive's bytes on a connection.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags};

use crate::files::{self, Root};
use header::{header, padded, BLOCK};

pub mod body;
mod header;

/// One member of the archive.
struct Member {
    /// Where its header starts in the archive.
    start: u64,
    /// Its PAX header, if any, and its ustar header, padded to blocks.
    header: Vec<u8>,
    /// The file whose content follows the header, as planned.
    content: Option<Content>,
}

/// A regular file's content as the plan saw it: what the archive promises.
struct Content {
    /// Its path under the root, bytes as the directory holds them.
    path: Vec<u8>,
    stat: Stat,
}

/// What a member's header and the validator take from its inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stat {
    mode: u32,
    size: u64,
    ino: u64,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
}

impl Stat {
    fn of_raw(st: &rustix::fs::Stat) -> Stat {
        Stat {
            mode: st.st_mode,
            size: st.st_size as u64,
            ino: st.st_ino,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
        }
    }

    fn of(meta: &std::fs::Metadata) -> Stat {
        Stat {
            mode: meta.mode(),
            size: meta.len(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// The next bytes of an archive from some offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes of a header, from memory.
    Bytes(&'a [u8]),
    /// This many zero bytes: padding after a member's content, or the end blocks.
    Zeros(u64),
    /// `len` bytes of member `member`'s file at `path` under the root, from `offset`.
    File {
        /// The member's index, for [`Archive::open`].
        member: usize,
        /// The file's path under the root.
        path: &'a [u8],
        /// Where in the file.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

/// The member file being read or sent, kept open from one call to the next.
pub type Opened = Option<(usize, File)>;

/// A planned tar stream of one directory.
pub struct Archive {
    members: Vec<Member>,
    len: u64,
    etag: String,
    modified: SystemTime,
}

/// A directory being walked: its descriptor, its path under the root, its
/// member name (ending in `/`), and its inode's times and mode.
type Walked = (File, Vec<u8>, Vec<u8>, Stat);

impl Archive {
    /// Plans the archive of the directory `relative` under `root` (`.` for the
    /// root itself), its members named under `top/`; dot names only with `hidden`.
    pub fn plan(root: &Root, relative: &str, top: &[u8], hidden: bool) -> io::Result<Archive> {
        let mut members = Vec::new();
        let mut validator = zcopy::xxh3::Xxh3::new();
        let mut at = 0;
        let mut newest = (0, 0);
        let dir = files::open_beneath(root.dir(), relative)?;
        let stat = Stat::of(&dir.metadata()?);
        let mut top_name = top.to_vec();
        top_name.push(b'/');
        let mut stack: Vec<Walked> = vec![(dir, relative.as_bytes().to_vec(), top_name, stat)];
        while let Some((dir, relative, name, stat)) = stack.pop() {
            let mut add =
                |name: &[u8], kind: u8, link: &[u8], stat: Stat, path: Option<Vec<u8>>| {
                    let size = if kind == b'0' { stat.size } else { 0 };
                    let header = header(name, kind, link, stat.mode, size, stat.mtime.0);
                    validator.update(name);
                    validator.update(&[0, kind]);
                    validator.update(link);
                    for n in [stat.ino, size, stat.mtime.0 as u64, stat.mtime.1 as u64] {
                        validator.update(&n.to_le_bytes());
                    }
                    newest = newest.max(stat.mtime);
                    let start = at;
                    at += header.len() as u64 + padded(size);
                    members.push(Member {
                        start,
                        header,
                        content: path.map(|path| Content { path, stat }),
                    });
                };
            add(&name, b'5', b"", stat, None);
            let mut children = Vec::new();
            for item in rustix::fs::Dir::read_from(&dir)? {
                let item = item?;
                let child = item.file_name().to_bytes();
                if child != b"." && child != b".." && files::servable_bytes(child, hidden) {
                    children.push(child.to_vec());
                }
            }
            children.sort();
            let mut subdirs = Vec::new();
            for child in children {
                let mut path = Vec::new();
                if relative != b"." {
                    path.extend_from_slice(&relative);
                    path.push(b'/');
                }
                path.extend_from_slice(&child);
                let mut member = name.clone();
                member.extend_from_slice(&child);
                let child = OsStr::from_bytes(&child);
                let Ok(st) = rustix::fs::statat(&dir, child, AtFlags::SYMLINK_NOFOLLOW) else {
                    continue;
                };
                let stat = Stat::of_raw(&st);
                // What a request could not open, the archive leaves out. A name that
                // is not a symlink, in a folder beneath the root, is beneath it too.
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Symlink => {
                        let target = files::open_beneath(root.dir(), &path)
                            .ok()
                            .and_then(|opened| opened.metadata().ok())
                            .filter(|meta| meta.is_file() || meta.is_dir())
                            .and_then(|_| rustix::fs::readlinkat(&dir, child, Vec::new()).ok());
                        if let Some(target) = target {
                            add(&member, b'2', target.as_bytes(), stat, None);
                        }
                    }
                    FileType::Directory => {
                        let flags =
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                        if let Ok(opened) = rustix::fs::openat(&dir, child, flags, Mode::empty()) {
                            member.push(b'/');
                            subdirs.push((File::from(opened), path, member, stat));
                        }
                    }
                    FileType::RegularFile
                        if rustix::fs::accessat(&dir, child, Access::READ_OK, AtFlags::EACCESS)
                            .is_ok() =>
                    {
                        add(&member, b'0', b"", stat, Some(path));
                    }
                    _ => {}
                }
            }
            // Popped in name order: each directory's subtrees follow its files.
            stack.extend(subdirs.into_iter().rev());
        }
        let etag = format!("\"tar-{:032x}\"", validator.digest128());
        let modified = SystemTime::UNIX_EPOCH
            + Duration::new(
                newest.0.max(0) as u64,
                newest.1.clamp(0, 999_999_999) as u32,
            );
        Ok(Archive {
            members,
            len: at + 2 * BLOCK,
            etag,
            modified,
        })
    }

    /// The archive's exact length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the archive has no member (never: the directory itself is one).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A strong validator of the planned bytes: the members' names, kinds, links,
    /// sizes, inodes and modification times.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The newest modification time among the members (the `Last-Modified`).
    pub fn modified(&self) -> SystemTime {
        self.modified
    }

    /// The next bytes from `pos`; `None` at the end.
    pub fn piece_at(&self, pos: u64) -> Option<Piece<'_>> {
        if pos >= self.len {
            return None;
        }
        let i = self.members.partition_point(|m| m.start <= pos);
        let index = i.checked_sub(1)?;
        let member = &self.members[index];
        let within = pos - member.start;
        let header = member.header.len() as u64;
        if within < header {
            return Some(Piece::Bytes(&member.header[within as usize..]));
        }
        let end = self.members.get(i).map_or(self.len, |next| next.start);
        match &member.content {
            Some(content) if within - header < content.stat.size => Some(Piece::File {
                member: index,
                path: &content.path,
                offset: within - header,
                len: content.stat.size - (within - header),
            }),
            _ => Some(Piece::Zeros(end - pos)),
        }
    }

    /// Opens member `member`'s file the way a request would, and checks that it
    /// is still the planned version ([`Archive::verify`]).
    pub fn open(&self, root: &Root, member: usize) -> io::Result<File> {
        let Some(content) = &self.members[member].content else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let file = files::open_beneath(root.dir(), &content.path)?;
        self.verify(member, &file)?;
        Ok(file)
    }

    /// Whether member `member`'s open file is still what the plan saw: the same
    /// inode, size and modification time. Checked when it is opened and after its
    /// last byte went out: a file that changed while it was sent is an error (the
    /// connection ends), never a member of another size or of two versions.
    pub fn verify(&self, member: usize, file: &File) -> io::Result<()> {
        let Some(content) = &self.members[member].content else {
            return Ok(());
        };
        let now = Stat::of(&file.metadata()?);
        let planned = content.stat;
        if (now.ino, now.size, now.mtime) == (planned.ino, planned.size, planned.mtime) {
            Ok(())
        } else {
            Err(changed(&content.path))
        }
    }

    /// Copies the archive's bytes from `pos` into `buf`, reading members' content
    /// from their files (for a sink that cannot take sendfile: TLS in user space),
    /// the member file being read kept in `opened`.
    pub fn read_at(
        &self,
        root: &Root,
        pos: u64,
        buf: &mut [u8],
        opened: &mut Opened,
    ) -> io::Result<usize> {
        let Some(piece) = self.piece_at(pos) else {
            return Ok(0);
        };
        match piece {
            Piece::Bytes(bytes) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(n)
            }
            Piece::Zeros(len) => {
                let n = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                Ok(n)
            }
            Piece::File {
                member,
                path,
                offset,
                len,
            } => {
                let file = match opened {
                    Some((open, file)) if *open == member => file,
                    _ => &opened.insert((member, self.open(root, member)?)).1,
                };
                let n = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
                let got = rustix::io::pread(file, &mut buf[..n], offset)?;
                if got == 0 {
                    return Err(changed(path));
                }
                if got as u64 == len {
                    self.verify(member, file)?;
                }
                Ok(got)
            }
        }
    }
}

/// The error for a member whose file is no longer the planned version.
pub fn changed(path: &[u8]) -> io::Error {
    io::Error::other(format!(
        "{}: the file changed while the archive was sent",
        String::from_utf8_lossy(path)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole archive of a tree with every kind of member, written by
    /// `read_at`, is what GNU tar lists and extracts back into the same tree; what
    /// a request could not get is not in it.
    #[test]
    fn tar_extracts_the_tree() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        if std::process::Command::new("tar")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: no tar on PATH");
            return;
        }
        let served = tempfile::tempdir().unwrap();
        let top = served.path().join("site");
        let long_dir = "d".repeat(90);
        let long_name = "n".repeat(120);
        std::fs::create_dir_all(top.join("sub").join(&long_dir)).unwrap();
        std::fs::write(top.join("a.txt"), b"hello\n").unwrap();
        std::fs::write(top.join("empty"), b"").unwrap();
        std::fs::write(top.join("sub").join("odd"), vec![7u8; 1000]).unwrap();
        std::fs::write(top.join("sub").join(&long_dir).join(&long_name), b"deep").unwrap();
        std::fs::set_permissions(top.join("a.txt"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        symlink("a.txt", top.join("link")).unwrap();
        symlink("/etc/passwd", top.join("outside")).unwrap();
        std::fs::write(top.join(".env"), b"secret").unwrap();
        std::fs::write(top.join(".x.abc123.zcopy-part"), b"half").unwrap();
        let root = Root::open(served.path().to_path_buf()).unwrap();
        let archive = Archive::plan(&root, "site", b"site", false).unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 777];
        let mut opened = None;
        loop {
            let n = archive
                .read_at(&root, bytes.len() as u64, &mut buf, &mut opened)
                .unwrap();
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        assert_eq!(bytes.len() as u64, archive.len());
        let work = tempfile::tempdir().unwrap();
        let tar = work.path().join("site.tar");
        std::fs::write(&tar, &bytes).unwrap();
        let out = work.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let got = out.join("site");
        assert_eq!(std::fs::read(got.join("a.txt")).unwrap(), b"hello\n");
        let mode = std::fs::metadata(got.join("a.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(std::fs::read(got.join("empty")).unwrap(), b"");
        assert_eq!(std::fs::read(got.join("sub/odd")).unwrap(), vec![7u8; 1000]);
        let deep = got.join("sub").join(&long_dir).join(&long_name);
        assert_eq!(std::fs::read(deep).unwrap(), b"deep");
        assert_eq!(
            std::fs::read_link(got.join("link")).unwrap(),
            std::path::Path::new("a.txt")
        );
        assert_eq!(
            std::fs::metadata(got.join("a.txt")).unwrap().mtime(),
            std::fs::metadata(top.join("a.txt")).unwrap().mtime()
        );
        for absent in ["outside", ".env", ".x.abc123.zcopy-part"] {
            assert!(
                !got.join(absent).exists() && got.join(absent).symlink_metadata().is_err(),
                "{absent}"
            );
        }
        let again = Archive::plan(&root, "site", b"site", false).unwrap();
        assert_eq!(again.etag(), archive.etag());
        std::fs::write(top.join("a.txt"), b"changed\n").unwrap();
        let changed = Archive::plan(&root, "site", b"site", false).unwrap();
        assert_ne!(changed.etag(), archive.etag());
    }

    /// A file that shrinks after the plan is an error, never a short member.
    #[test]
    fn a_shrunk_member_is_an_error() {
        let served = tempfile::tempdir().unwrap();
        std::fs::write(served.path().join("f"), vec![1u8; 5000]).unwrap();
        let root = Root::open(served.path().to_path_buf()).unwrap();
        let archive = Archive::plan(&root, ".", b"top", false).unwrap();
        std::fs::write(served.path().join("f"), b"").unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut pos = 0;
        let mut opened = None;
        let err = loop {
            match archive.read_at(&root, pos, &mut buf, &mut opened) {
                Ok(0) => panic!("the archive ended without the shrink seen"),
                Ok(n) => pos += n as u64,
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("f: the file changed"), "{err}");
    }
}
