//! The tree walk: a directory's entries, depth first, each named by its bytes
//! relative to the walk's root, with its `lstat` metadata (symlinks are never
//! followed), directories before their content.
//!
//! [`walk()`] drives a [`Visit`]or: it is asked whether each entry is kept (the
//! hook filters hang on) and told of the kept ones; a kept directory is entered
//! unless the visitor says otherwise, and left again ([`Visit::leave`]) once its
//! content is done. [`read_dir()`] lists one directory in name or inode order;
//! the walk uses it, and so do callers that drive their own recursion.
//!
//! `zcopy send` walks its trees with [`walk()`] in name order. `cp -r` lists each
//! directory with [`read_dir()`] in inode order (the order GNU cp reads, roughly
//! the order of the files on disk) and keeps its own recursion: it makes each
//! destination directory before it descends, opens both directories so files are
//! created with `openat` relative to them, shares a large directory's files out
//! over two threads, and sets a directory's mode and times after its content.

use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};

/// A walk that failed: the path it could not read, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", path.display())]
pub struct Error {
    /// The directory or entry that could not be read.
    pub path: PathBuf,
    /// The error the kernel gave.
    #[source]
    pub source: io::Error,
}

impl Error {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What an entry is, from its `lstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO, a socket or a device.
    Other,
}

impl Kind {
    /// The kind of an entry with this metadata.
    pub fn of(meta: &Metadata) -> Kind {
        let t = meta.file_type();
        if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else if t.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        }
    }
}

/// One entry of a walk.
#[derive(Debug)]
#[non_exhaustive]
pub struct Entry {
    /// Where it is: the root's path joined with the entry's names.
    pub path: PathBuf,
    /// Its name relative to the walk's root, `/`-separated bytes; the root's
    /// own name first when the walk was given one (`send dir` sends `dir/a`).
    pub name: Vec<u8>,
    /// How deep: 0 for the root.
    pub depth: usize,
    /// What it is.
    pub kind: Kind,
    /// Its `lstat` metadata (a symlink's own; the root's as given).
    pub meta: Metadata,
}

/// The order a directory's entries are listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Order {
    /// By name, bytewise: the same on every run and every file system.
    Name,
    /// By inode number: on ext4 and xfs roughly the order on disk.
    Inode,
}

/// One listed directory entry: its name, inode and `d_type` kind (no `stat`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Listed {
    /// The entry's name in its directory.
    pub name: OsString,
    /// Its inode number.
    pub ino: u64,
    /// Its kind as the directory says (`None` where the file system does not).
    pub kind: Option<Kind>,
}

/// The entries of directory `dir`, without `.` and `..`, in `order`.
pub fn read_dir(dir: &Path, order: Order) -> Result<Vec<Listed>, Error> {
    let mut listed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::at(dir))? {
        let entry = entry.map_err(Error::at(dir))?;
        let kind = entry.file_type().ok().map(|t| {
            if t.is_dir() {
                Kind::Dir
            } else if t.is_file() {
                Kind::File
            } else if t.is_symlink() {
                Kind::Symlink
            } else {
                Kind::Other
            }
        });
        listed.push(Listed {
            ino: entry.ino(),
            name: entry.file_name(),
            kind,
        });
    }
    match order {
        Order::Name => listed.sort_unstable_by(|a, b| a.name.cmp(&b.name)),
        Order::Inode => listed.sort_unstable_by_key(|l| l.ino),
    }
    Ok(listed)
}

/// What a walk asks and tells as it goes. Errors of the visitor's own type
/// stop the walk; a walk's own failures become `E` through `From`.
pub trait Visit {
    /// The visitor's error.
    type Error: From<Error>;

    /// Whether `entry` is walked at all (the hook for filters): an entry not
    /// kept is not visited, nor is anything under it. Kept by default.
    fn keep(&mut self, entry: &Entry) -> bool {
        let _ = entry;
        true
    }

    /// A kept entry. For a directory, `Ok(true)` enters it.
    fn visit(&mut self, entry: &Entry) -> Result<bool, Self::Error>;

    /// A directory that was entered is done with.
    fn leave(&mut self, dir: &Entry) -> Result<(), Self::Error> {
        let _ = dir;
        Ok(())
    }
}

/// Walks the tree at `root` (its metadata `meta`, as the caller got it: an
/// operand may be a followed symlink), naming it `name` (empty: its entries are
/// named from their own names), in `order`. The root is visited like any entry.
pub fn walk<V: Visit>(
    root: &Path,
    name: &[u8],
    meta: Metadata,
    order: Order,
    visitor: &mut V,
) -> Result<(), V::Error> {
    let entry = Entry {
        path: root.to_path_buf(),
        name: name.to_vec(),
        depth: 0,
        kind: Kind::of(&meta),
        meta,
    };
    if visitor.keep(&entry) {
        descend(&entry, order, visitor)?;
    }
    Ok(())
}

fn descend<V: Visit>(entry: &Entry, order: Order, visitor: &mut V) -> Result<(), V::Error> {
    if !visitor.visit(entry)? || entry.kind != Kind::Dir {
        return Ok(());
    }
    for listed in read_dir(&entry.path, order)? {
        let path = entry.path.join(&listed.name);
        let name = if entry.name.is_empty() {
            listed.name.as_bytes().to_vec()
        } else {
            [&entry.name[..], b"/", listed.name.as_bytes()].concat()
        };
        let meta = std::fs::symlink_metadata(&path).map_err(Error::at(&path))?;
        let child = Entry {
            path,
            name,
            depth: entry.depth + 1,
            kind: Kind::of(&meta),
            meta,
        };
        if visitor.keep(&child) {
            descend(&child, order, visitor)?;
        }
    }
    visitor.leave(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    struct Names {
        seen: Vec<String>,
        skip: &'static [u8],
    }

    impl Visit for Names {
        type Error = Error;
        fn keep(&mut self, entry: &Entry) -> bool {
            !entry.name.ends_with(self.skip)
        }
        fn visit(&mut self, entry: &Entry) -> Result<bool, Error> {
            self.seen.push(format!(
                "{:?} {}",
                entry.kind,
                String::from_utf8_lossy(&entry.name)
            ));
            Ok(true)
        }
        fn leave(&mut self, dir: &Entry) -> Result<(), Error> {
            self.seen
                .push(format!("leave {}", String::from_utf8_lossy(&dir.name)));
            Ok(())
        }
    }

    #[test]
    fn walks_depth_first_by_name_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir_all(root.join("b/inner")).unwrap();
        std::fs::write(root.join("a"), b"x").unwrap();
        std::fs::write(root.join("b/inner/f"), b"y").unwrap();
        std::fs::write(root.join("skipped"), b"z").unwrap();
        let odd = OsString::from_vec(b"c\xff".to_vec());
        std::fs::write(root.join(&odd), b"w").unwrap();
        std::os::unix::fs::symlink("b", root.join("link")).unwrap();
        let meta = std::fs::metadata(&root).unwrap();
        let mut names = Names {
            seen: Vec::new(),
            skip: b"skipped",
        };
        walk(&root, b"t", meta, Order::Name, &mut names).unwrap();
        assert_eq!(
            names.seen,
            [
                "Dir t",
                "File t/a",
                "Dir t/b",
                "Dir t/b/inner",
                "File t/b/inner/f",
                "leave t/b/inner",
                "leave t/b",
                "File t/c\u{fffd}",
                "Symlink t/link",
                "leave t",
            ]
        );
    }

    #[test]
    fn an_unreadable_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = read_dir(&gone, Order::Inode).unwrap_err();
        assert_eq!(err.path, gone);
        assert_eq!(err.to_string(), format!("cannot read {}", gone.display()));
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
    }
}
