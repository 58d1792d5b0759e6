//! From a request target to a file under the served directory, safely: percent-
//! decoding, no `..`, no NUL, no symlink that leads outside (the kernel checks, with
//! `openat2(RESOLVE_BENEATH)`), no FIFO or device, no dot name unless `--hidden`
//! (`/.git/config`, `/.env`), and never a part file or manifest, whatever the flags.
//! The names are checked on the request's path components, before any syscall.

use std::fs::{File, Metadata};
use std::path::PathBuf;

/// What a request target names.
pub enum Resolved {
    /// A regular file, opened.
    File(File, Metadata, PathBuf),
    /// A directory without `index.html`: list it (its descriptor, its path
    /// relative to the root, and the decoded request path).
    Listing(File, String, String),
    /// A directory asked for without its trailing slash.
    Redirect(String),
    NotFound,
    Forbidden,
    BadRequest,
}

/// Why a target names nothing servable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Forbidden,
    BadRequest,
}

impl From<Refused> for Resolved {
    fn from(refused: Refused) -> Resolved {
        match refused {
            Refused::NotFound => Resolved::NotFound,
            Refused::Forbidden => Resolved::Forbidden,
            Refused::BadRequest => Resolved::BadRequest,
        }
    }
}

/// The served directory: its path, and a descriptor every lookup starts from.
pub struct Root {
    pub path: PathBuf,
    dir: File,
}

impl Root {
    pub fn open(path: PathBuf) -> std::io::Result<Root> {
        let dir = File::open(&path)?;
        Ok(Root { path, dir })
    }

    /// The descriptor every lookup under the root starts from.
    pub fn dir(&self) -> &File {
        &self.dir
    }
}

/// Whether a name (one path component) may be served, listed or uploaded to:
/// never a part file (an upload, `get`, `cp` or `recv` in flight) or a manifest
/// (`recv`'s resume state), which are half a file under a name nobody asked for;
/// a dot name only with `hidden` (miniserve's and dufs' default).
pub fn servable(name: &str, hidden: bool) -> bool {
    servable_bytes(name.as_bytes(), hidden)
}

/// [`servable`] for a name as the directory holds it, UTF-8 or not (an archive's
/// members).
pub fn servable_bytes(name: &[u8], hidden: bool) -> bool {
    !in_flight(name) && (hidden || !name.starts_with(b"."))
}

/// Whether a name is a part file's (`.NAME.*.zcopy-part`, `NAME.zcopy-part`) or a
/// manifest's (`.NAME.zcopy-manifest`).
pub fn in_flight(name: &[u8]) -> bool {
    name.ends_with(b".zcopy-part") || name.ends_with(b".zcopy-manifest")
}

/// Resolves `target` (the request's path and query) under `root`; a dot name
/// anywhere in it is served only with `hidden`.
///
/// The file is opened with `openat2(RESOLVE_BENEATH)` from the root's descriptor:
/// the kernel refuses any resolution, `..` or symlink, that would leave the root, in
/// the same call that opens the file.
pub fn resolve(root: &Root, target: &str, hidden: bool) -> Resolved {
    let (path, decoded, relative) = match relative(target, hidden) {
        Ok(found) => found,
        Err(refused) => return refused.into(),
    };
    let file = match open_beneath(&root.dir, &relative) {
        Ok(file) => file,
        Err(e) => return refusal(e),
    };
    let Ok(meta) = file.metadata() else {
        return Resolved::NotFound;
    };
    let full = root.path.join(&relative);
    if meta.is_dir() {
        if !path.ends_with('/') {
            return Resolved::Redirect(format!("{path}/"));
        }
        let index = open_beneath(&file, "index.html").map_err(std::io::Error::from);
        return match index.and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok((index, m)) if m.is_file() => Resolved::File(index, m, full.join("index.html")),
            _ => Resolved::Listing(file, relative, decoded),
        };
    }
    if !meta.is_file() {
        // FIFOs and devices are not content (opened non-blocking, so nothing waited).
        return Resolved::Forbidden;
    }
    Resolved::File(file, meta, full)
}

/// The directory `target` names (with or without its trailing slash), for its
/// archive: its path relative to the root (`.` for the root); `Err` with the
/// answer when it names no servable directory.
pub fn directory(root: &Root, target: &str, hidden: bool) -> Result<String, Refused> {
    let (_, _, relative) = relative(target, hidden)?;
    let dir = open_beneath(&root.dir, &relative).map_err(refused)?;
    match dir.metadata() {
        Ok(meta) if meta.is_dir() => Ok(relative),
        _ => Err(Refused::NotFound),
    }
}

/// A target's path, decoded path and path relative to the root, its names
/// checked before any syscall.
fn relative(target: &str, hidden: bool) -> Result<(&str, String, String), Refused> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Refused::BadRequest);
    }
    let Some(decoded) = crate::percent::decode(path) else {
        return Err(Refused::BadRequest);
    };
    if decoded.contains(&0) {
        return Err(Refused::Forbidden);
    }
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Err(Refused::NotFound);
    };
    let mut parts = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Refused::Forbidden),
            name if !servable(name, hidden) => return Err(Refused::NotFound),
            name => parts.push(name),
        }
    }
    let relative = if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    };
    Ok((path, decoded, relative))
}

pub fn open_beneath<P: rustix::path::Arg>(dir: &File, relative: P) -> rustix::io::Result<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(dir, relative, flags, Mode::empty(), resolve).map(File::from)
}

pub fn refusal(e: rustix::io::Errno) -> Resolved {
    refused(e).into()
}

/// What an `openat2` failure under the root means for the request.
pub fn refused(e: rustix::io::Errno) -> Refused {
    use rustix::io::Errno;
    match e {
        // EXDEV: the path would leave the root; ELOOP: a symlink loop or a magic link.
        Errno::XDEV | Errno::LOOP | Errno::ACCESS | Errno::PERM => Refused::Forbidden,
        _ => Refused::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_served() {
        for (name, plain, hidden) in [
            ("a.txt", true, true),
            (".env", false, true),
            (".git", false, true),
            (".a.txt.123.4.zcopy-part", false, false),
            ("a.txt.zcopy-part", false, false),
            (".big.iso.zcopy-manifest", false, false),
            ("zcopy-part", true, true),
        ] {
            assert_eq!(servable(name, false), plain, "{name}");
            assert_eq!(servable(name, true), hidden, "{name} --hidden");
        }
    }
}
