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
//! manifest), UTF-8 names (a request cannot name others), regular files and
//! directories opened beneath the root the way a request opens them, and symlinks
//! that resolve beneath it, stored as symlinks (never followed, so no loop and no
//! byte from outside the root). Modes keep the permission bits only; owners are
//! 0, as `git archive` writes them. The order is fixed (each directory, then its
//! entries by name), so the same tree gives the same bytes and the same ETag.

use std::io;
use std::os::unix::fs::MetadataExt;

use rustix::fs::{AtFlags, FileType};

use crate::files::{self, Root};

/// A tar block: headers and content are padded to it, and the end is two of them.
const BLOCK: u64 = 512;
/// The largest size ustar's 11 octal digits hold; beyond it the size goes in PAX.
const USTAR_SIZE_MAX: u64 = (1 << 33) - 1;

/// One member of the archive.
struct Member {
    /// Where its header starts in the archive.
    start: u64,
    /// Its PAX header, if any, and its ustar header, padded to blocks.
    header: Vec<u8>,
    /// The file whose content follows the header: its path under the root, and
    /// the size it had when planned (the bytes the archive promises).
    content: Option<(String, u64)>,
}

/// What a member's header and the validator take from its inode.
#[derive(Clone, Copy)]
struct Stat {
    mode: u32,
    size: u64,
    ino: u64,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
}

impl Stat {
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
    /// `len` bytes of the file at `path` under the root, from `offset`.
    File {
        /// The file's path under the root.
        path: &'a str,
        /// Where in the file.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

/// A planned tar stream of one directory.
pub struct Archive {
    members: Vec<Member>,
    len: u64,
    etag: String,
}

impl Archive {
    /// Plans the archive of the directory `relative` under `root` (`.` for the
    /// root itself), its members named under `top/`.
    pub fn plan(root: &Root, relative: &str, top: &str, hidden: bool) -> io::Result<Archive> {
        let mut members = Vec::new();
        let mut validator = zcopy::xxh3::Xxh3::new();
        let mut at = 0;
        let dir = files::open_beneath(root.dir(), relative)?;
        let meta = dir.metadata()?;
        let mut stack = vec![(dir, relative.to_string(), format!("{top}/"), meta)];
        while let Some((dir, relative, name, meta)) = stack.pop() {
            let mut add = |name: &str, kind: u8, link: &str, stat: Stat, content| {
                let size = if kind == b'0' { stat.size } else { 0 };
                let header = header(name, kind, link, stat.mode, size, stat.mtime.0);
                validator.update(name.as_bytes());
                validator.update(&[0, kind]);
                validator.update(link.as_bytes());
                for n in [stat.ino, size, stat.mtime.0 as u64, stat.mtime.1 as u64] {
                    validator.update(&n.to_le_bytes());
                }
                let start = at;
                at += header.len() as u64 + padded(size);
                members.push(Member {
                    start,
                    header,
                    content,
                });
            };
            add(&name, b'5', "", Stat::of(&meta), None);
            let mut children = Vec::new();
            for item in rustix::fs::Dir::read_from(&dir)? {
                let item = item?;
                let Ok(child) = item.file_name().to_str() else {
                    continue;
                };
                if child != "." && child != ".." && files::servable(child, hidden) {
                    children.push(child.to_string());
                }
            }
            children.sort();
            let mut subdirs = Vec::new();
            for child in children {
                let path = if relative == "." {
                    child.clone()
                } else {
                    format!("{relative}/{child}")
                };
                let member = format!("{name}{child}");
                let Ok(st) = rustix::fs::statat(&dir, child.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                // Opened as a request would open it: what it cannot get, the archive leaves out.
                let Ok(opened) = files::open_beneath(root.dir(), &path) else {
                    continue;
                };
                let Ok(meta) = opened.metadata() else {
                    continue;
                };
                if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                    let Ok(target) = rustix::fs::readlinkat(&dir, child.as_str(), Vec::new())
                    else {
                        continue;
                    };
                    let Ok(target) = target.into_string() else {
                        continue;
                    };
                    let stat = Stat {
                        mode: st.st_mode,
                        size: 0,
                        ino: st.st_ino,
                        mtime: (st.st_mtime, st.st_mtime_nsec as i64),
                    };
                    add(&member, b'2', &target, stat, None);
                } else if meta.is_dir() {
                    subdirs.push((opened, path, format!("{member}/"), meta));
                } else if meta.is_file() {
                    add(&member, b'0', "", Stat::of(&meta), Some((path, meta.len())));
                }
            }
            // Popped in name order: each directory's subtrees follow its files.
            stack.extend(subdirs.into_iter().rev());
        }
        let etag = format!("\"tar-{:032x}\"", validator.digest128());
        Ok(Archive {
            members,
            len: at + 2 * BLOCK,
            etag,
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

    /// The next bytes from `pos`; `None` at the end.
    pub fn piece_at(&self, pos: u64) -> Option<Piece<'_>> {
        if pos >= self.len {
            return None;
        }
        let i = self.members.partition_point(|m| m.start <= pos);
        let member = i.checked_sub(1).map(|i| &self.members[i])?;
        let within = pos - member.start;
        let header = member.header.len() as u64;
        if within < header {
            return Some(Piece::Bytes(&member.header[within as usize..]));
        }
        let size = member.content.as_ref().map_or(0, |c| c.1);
        let end = self.members.get(i).map_or(self.len, |next| next.start);
        match &member.content {
            Some((path, size)) if within - header < *size => Some(Piece::File {
                path,
                offset: within - header,
                len: size - (within - header),
            }),
            _ => {
                debug_assert!(within >= header + size);
                Some(Piece::Zeros(end - pos))
            }
        }
    }

    /// Copies the archive's bytes from `pos` into `buf`, reading members' content
    /// from the files (for a sink that cannot take sendfile: TLS in user space).
    /// A file that became shorter than planned is an error: the length is promised.
    pub fn read_at(&self, root: &Root, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
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
            Piece::File { path, offset, len } => {
                let file = files::open_beneath(root.dir(), path)?;
                let n = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
                let got = rustix::io::pread(&file, &mut buf[..n], offset)?;
                if got == 0 {
                    return Err(shrank(path));
                }
                Ok(got)
            }
        }
    }
}

/// The error for a member whose file ends before its planned size.
pub fn shrank(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{path}: the file shrank while the archive was sent"),
    )
}

/// `size` rounded up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

/// A member's headers: a PAX extended header first when ustar cannot hold the
/// name, the link target or the size, then the ustar header.
fn header(name: &str, kind: u8, link: &str, mode: u32, size: u64, mtime: i64) -> Vec<u8> {
    let mut pax = Vec::new();
    if name.len() > 100 {
        pax_record(&mut pax, "path", name);
    }
    if link.len() > 100 {
        pax_record(&mut pax, "linkpath", link);
    }
    if size > USTAR_SIZE_MAX {
        pax_record(&mut pax, "size", &size.to_string());
    }
    let mut out = Vec::new();
    if !pax.is_empty() {
        let pax_name = format!("PaxHeaders/{}", truncated(name, 89));
        out.extend(ustar(&pax_name, b'x', "", 0o644, pax.len() as u64, mtime));
        let len = pax.len() as u64;
        out.extend(pax);
        out.resize(out.len() + (padded(len) - len) as usize, 0);
    }
    out.extend(ustar(
        truncated(name, 100),
        kind,
        truncated(link, 100),
        mode & 0o777,
        size.min(USTAR_SIZE_MAX),
        mtime,
    ));
    out
}

/// One PAX record, `LEN KEY=VALUE\n`, where LEN counts the whole record, itself too.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend(format!("{len} {key}={value}\n").into_bytes());
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn truncated(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A ustar header block.
fn ustar(name: &str, kind: u8, link: &str, mode: u32, size: u64, mtime: i64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, name.as_bytes());
    put(100, format!("{mode:07o}\0").as_bytes());
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{size:011o}\0").as_bytes());
    put(136, format!("{:011o}\0", mtime.max(0)).as_bytes());
    put(148, b"        ");
    put(156, &[kind]);
    put(157, link.as_bytes());
    put(257, b"ustar\0");
    put(263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", "a");
        assert_eq!(out, b"9 path=a\n");
        let mut out = Vec::new();
        let long = "x".repeat(200);
        pax_record(&mut out, "path", &long);
        let text = String::from_utf8(out).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }

    #[test]
    fn the_checksum_is_ustars() {
        let h = ustar("a", b'0', "", 0o644, 5, 0);
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        assert_eq!(stored, sum);
    }

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
        let archive = Archive::plan(&root, "site", "site", false).unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 777];
        loop {
            let n = archive
                .read_at(&root, bytes.len() as u64, &mut buf)
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
        let again = Archive::plan(&root, "site", "site", false).unwrap();
        assert_eq!(again.etag(), archive.etag());
        std::fs::write(top.join("a.txt"), b"changed\n").unwrap();
        let changed = Archive::plan(&root, "site", "site", false).unwrap();
        assert_ne!(changed.etag(), archive.etag());
    }

    /// A file that shrinks after the plan is an error, never a short member.
    #[test]
    fn a_shrunk_member_is_an_error() {
        let served = tempfile::tempdir().unwrap();
        std::fs::write(served.path().join("f"), vec![1u8; 5000]).unwrap();
        let root = Root::open(served.path().to_path_buf()).unwrap();
        let archive = Archive::plan(&root, ".", "top", false).unwrap();
        std::fs::write(served.path().join("f"), b"").unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut pos = 0;
        let err = loop {
            match archive.read_at(&root, pos, &mut buf) {
                Ok(0) => panic!("the archive ended without the shrink seen"),
                Ok(n) => pos += n as u64,
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("f: the file shrank"), "{err}");
    }
}
