//! What `send PATH...` sends: the entries of the trees named, walked by
//! [`zcopy::walk`] (depth first, by name, symlinks not followed), each with its
//! name (bytes), mode, mtime, the attributes asked for ([`Keep`]) and how its
//! content is read. With `-H`, a file met again under another name (the same
//! device and inode) is sent once: its other names as hard links to the first.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;

use zcopy::walk::{self as tree, Kind, Order, Visit};

use crate::attrs::{self, Ids, Keep};
use crate::error::{Context, Error, Result};
use crate::filter::Filter;
use crate::frame::{self, Entry, EntryKind};

/// One entry to send: where its bytes come from and what the receiver is told.
pub struct Item {
    /// Where its bytes are read (`-`: standard input).
    pub source: PathBuf,
    /// How its bytes are read.
    pub how: How,
    /// What the receiver is told.
    pub entry: Entry,
}

/// How an entry's content is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// A regular file whose size can be trusted.
    File,
    /// A source read to its end: a pipe, standard input, a device, a file on a
    /// pseudo file system that reports a size it does not have (`/proc`, `/sys`).
    Stream,
    /// A directory, a symlink, a FIFO, a device, a hard link: the entry is
    /// all there is.
    Entry,
}

/// Lists what `paths` send, depth first, directories before their content. A
/// directory's entries are named under its own name (`send dir` makes `OUT/dir/…`).
/// `-` is standard input, sent as `stdin_name`; what is neither a file, a
/// directory nor a symlink inside a tree is told to `skipped` and left out.
pub fn walk(
    paths: &[PathBuf],
    stdin_name: Option<&OsStr>,
    skipped: &mut dyn FnMut(&Path),
) -> Result<Vec<Item>> {
    walk_filtered(paths, stdin_name, None, &Keep::default(), skipped)
}

/// [`walk`], leaving out what `filter` excludes (and all under an excluded
/// directory), operands included, as rsync does, each entry with the
/// attributes `keep` asks for.
pub fn walk_filtered(
    paths: &[PathBuf],
    stdin_name: Option<&OsStr>,
    mut filter: Option<&mut Filter>,
    keep: &Keep,
    skipped: &mut dyn FnMut(&Path),
) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut pseudo = Vec::new();
    let ids = Ids::default();
    let mut inodes = HashMap::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let name = stdin_name.context("-: standard input needs --name NAME")?;
            frame::check_path(name.as_bytes())
                .with_context(|| format!("--name {}", name.to_string_lossy()))?;
            items.push(Item {
                source: path.clone(),
                how: How::Stream,
                entry: entry(
                    name.as_bytes().to_vec(),
                    EntryKind::File,
                    0o644,
                    (0, 0),
                    None,
                ),
            });
            continue;
        }
        // Operands are followed if they are symlinks, as scp and cp -r do.
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        let name = match path.file_name() {
            Some(n) => n.to_owned(),
            None => std::fs::canonicalize(path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_owned()))
                .with_context(|| format!("{}: has no name to send under", path.display()))?,
        };
        let mut lister = Lister {
            items: &mut items,
            pseudo: &mut pseudo,
            skipped: &mut *skipped,
            filter: filter.as_deref_mut(),
            keep,
            ids: &ids,
            inodes: &mut inodes,
        };
        tree::walk(path, name.as_bytes(), meta, Order::Name, &mut lister)?;
    }
    for (id, item) in items.iter_mut().enumerate() {
        item.entry.id = id as u32 + 1;
    }
    Ok(items)
}

/// The walk's visitor: each kept entry becomes an [`Item`].
struct Lister<'a> {
    items: &'a mut Vec<Item>,
    pseudo: &'a mut Vec<(u64, bool)>,
    skipped: &'a mut dyn FnMut(&Path),
    filter: Option<&'a mut Filter>,
    keep: &'a Keep,
    ids: &'a Ids,
    /// `-H`: the first name of each file with more than one link, by device and inode.
    inodes: &'a mut HashMap<(u64, u64), Vec<u8>>,
}

impl Visit for Lister<'_> {
    type Error = Error;

    fn keep(&mut self, found: &tree::Entry) -> bool {
        self.filter
            .as_deref_mut()
            .is_none_or(|f| !f.excluded(&found.name, found.kind == Kind::Dir, &found.path))
    }

    fn visit(&mut self, found: &tree::Entry) -> Result<bool> {
        let meta = &found.meta;
        let mode = meta.permissions().mode() & 0o7777;
        let mtime = (meta.mtime(), meta.mtime_nsec() as u32);
        let name = found.name.clone();
        let path = &found.path;
        let t = meta.file_type();
        let special = match found.kind {
            Kind::Other if self.keep.devices && t.is_char_device() => Some(EntryKind::CharDevice),
            Kind::Other if self.keep.devices && t.is_block_device() => Some(EntryKind::BlockDevice),
            Kind::Other if self.keep.specials && t.is_fifo() => Some(EntryKind::Fifo),
            Kind::Other if self.keep.specials && t.is_socket() => Some(EntryKind::Socket),
            _ => None,
        };
        let first = (self.keep.hard_links && found.kind == Kind::File && meta.nlink() > 1)
            .then(|| self.inodes.get(&(meta.dev(), meta.ino())).cloned())
            .flatten();
        if let Some(first) = first {
            let mut e = entry(name, EntryKind::HardLink, mode, mtime, Some(meta.len()));
            e.target = first;
            self.items.push(Item {
                source: path.clone(),
                how: How::Entry,
                entry: e,
            });
            frame::check_path(&found.name)
                .with_context(|| format!("cannot send {}", path.display()))?;
            return Ok(true);
        }
        if self.keep.hard_links && found.kind == Kind::File && meta.nlink() > 1 {
            self.inodes.insert((meta.dev(), meta.ino()), name.clone());
        }
        let kind = match (found.kind, special) {
            (_, Some(kind)) => kind,
            (Kind::Dir, _) => EntryKind::Dir,
            (Kind::Symlink, _) => EntryKind::Symlink,
            _ => EntryKind::File,
        };
        let attrs = if self.keep.any() && (found.kind != Kind::Other || special.is_some()) {
            attrs::read(path, meta, kind, self.keep, self.ids)
                .with_context(|| format!("cannot read the attributes of {}", path.display()))?
        } else {
            frame::Attrs::default()
        };
        let before = self.items.len();
        if let Some(kind) = special {
            self.items.push(Item {
                source: path.clone(),
                how: How::Entry,
                entry: entry(name.clone(), kind, mode, mtime, None),
            });
        }
        match found.kind {
            _ if special.is_some() => {}
            Kind::Dir => self.items.push(Item {
                source: path.clone(),
                how: How::Entry,
                entry: entry(name, EntryKind::Dir, mode, mtime, None),
            }),
            Kind::Symlink => {
                let target = std::fs::read_link(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let mut e = entry(name, EntryKind::Symlink, mode, mtime, None);
                e.target = target.into_os_string().into_vec();
                self.items.push(Item {
                    source: path.clone(),
                    how: How::Entry,
                    entry: e,
                });
            }
            Kind::File => {
                let lies = meta.len() == 0 || on_pseudo_fs(self.pseudo, path, meta.dev());
                let size = (!lies).then_some(meta.len());
                self.items.push(Item {
                    source: path.clone(),
                    how: if lies { How::Stream } else { How::File },
                    entry: entry(name, EntryKind::File, mode, mtime, size),
                });
            }
            // A FIFO or a device named on the command line is read to its end.
            _ if found.depth == 0 => self.items.push(Item {
                source: path.clone(),
                how: How::Stream,
                entry: entry(name, EntryKind::File, 0o644, mtime, None),
            }),
            _ => {
                (self.skipped)(path);
                return Ok(false);
            }
        }
        if let Some(item) = self.items.get_mut(before) {
            *item.entry.attrs = attrs;
        }
        frame::check_path(&found.name)
            .with_context(|| format!("cannot send {}", path.display()))?;
        Ok(true)
    }
}

fn entry(path: Vec<u8>, kind: EntryKind, mode: u32, mtime: (i64, u32), size: Option<u64>) -> Entry {
    Entry {
        id: 0,
        kind,
        mode,
        mtime,
        size,
        block: frame::BLOCK,
        ask: false,
        complete_ok: false,
        delta: false,
        inplace: false,
        digest: None,
        path,
        target: Vec::new(),
        attrs: Box::default(),
    }
}

/// Whether the file system of device `dev` (first met at `path`) makes up file
/// sizes: `/proc` says 0, `/sys` 4096, whatever the content. `known` remembers
/// the devices met so far.
pub fn on_pseudo_fs(known: &mut Vec<(u64, bool)>, path: &Path, dev: u64) -> bool {
    if let Some(&(_, pseudo)) = known.iter().find(|(d, _)| *d == dev) {
        return pseudo;
    }
    const PSEUDO: [u64; 11] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0x6367_7270, // cgroup2
        0x0027_e0eb, // cgroup
        0x6265_6570, // configfs
        0xcafe_4a11, // bpf
        0xde5e_81e4, // efivarfs
        0x6165_676c, // pstore
    ];
    let pseudo = rustix::fs::statfs(path).is_ok_and(|s| PSEUDO.contains(&(s.f_type as u64)));
    known.push((dev, pseudo));
    pseudo
}
