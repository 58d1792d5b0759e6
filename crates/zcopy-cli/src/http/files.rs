//! From a request target to a file under the served directory, safely: percent-
//! decoding, no `..`, no NUL, no symlink that leads outside (the kernel checks, with
//! `openat2(RESOLVE_BENEATH)`), no FIFO or device.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};

/// What a request target names.
pub enum Resolved {
    /// A regular file, opened.
    File(File, Metadata, PathBuf),
    /// A regular file from the server's open-file cache.
    Cached(std::rc::Rc<File>, Metadata, PathBuf),
    /// A directory without `index.html`: list it.
    Listing(PathBuf, String),
    /// A directory asked for without its trailing slash.
    Redirect(String),
    NotFound,
    Forbidden,
    BadRequest,
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

/// Resolves `target` (the request's path and query) under `root`.
///
/// The file is opened with `openat2(RESOLVE_BENEATH)` from the root's descriptor:
/// the kernel refuses any resolution, `..` or symlink, that would leave the root, in
/// the same call that opens the file.
pub fn resolve(root: &Root, target: &str) -> Resolved {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Resolved::BadRequest;
    }
    let Some(decoded) = percent_decode(path) else {
        return Resolved::BadRequest;
    };
    if decoded.contains(&0) {
        return Resolved::Forbidden;
    }
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Resolved::NotFound;
    };
    let mut parts = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return Resolved::Forbidden,
            name => parts.push(name),
        }
    }
    let relative = if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
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
            _ => Resolved::Listing(full, decoded),
        };
    }
    if !meta.is_file() {
        // FIFOs and devices are not content (opened non-blocking, so nothing waited).
        return Resolved::Forbidden;
    }
    Resolved::File(file, meta, full)
}

pub fn open_beneath(dir: &File, relative: &str) -> rustix::io::Result<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(dir, relative, flags, Mode::empty(), resolve).map(File::from)
}

pub fn refusal(e: rustix::io::Errno) -> Resolved {
    use rustix::io::Errno;
    match e {
        // EXDEV: the path would leave the root; ELOOP: a symlink loop or a magic link.
        Errno::XDEV | Errno::LOOP | Errno::ACCESS | Errno::PERM => Resolved::Forbidden,
        _ => Resolved::NotFound,
    }
}

/// `%XX` decoding; `None` for a malformed escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// An HTML listing of `dir` (shown as `url_path`): names escaped and sorted, with
/// sizes and modification dates.
pub fn listing(dir: &Path, url_path: &str) -> std::io::Result<Vec<u8>> {
    let mut entries: Vec<(String, bool, u64, String)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata().ok();
            let is_dir = meta.as_ref().is_some_and(Metadata::is_dir);
            let size = meta.as_ref().map_or(0, Metadata::len);
            let date = meta
                .and_then(|m| m.modified().ok())
                .map_or_else(String::new, httpdate::fmt_http_date);
            (name, is_dir, size, date)
        })
        .collect();
    entries.sort();
    let title = escape(&format!("Index of /{}", url_path.trim_start_matches('/')));
    let mut html = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    for (name, is_dir, size, date) in entries {
        let slash = if is_dir { "/" } else { "" };
        let href = escape(&percent_encode(&name));
        let size = if is_dir {
            "-".to_string()
        } else {
            size.to_string()
        };
        html.push_str(&format!(
            "<tr><td><a href=\"{href}{slash}\">{}{slash}</a></td><td>{size}</td><td>{date}</td></tr>\n",
            escape(&name)
        ));
    }
    html.push_str("</table></body></html>\n");
    Ok(html.into_bytes())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_escaping() {
        assert_eq!(percent_decode("/a%20b%2e%2E").unwrap(), b"/a b..");
        assert!(percent_decode("/%zz").is_none());
        assert!(percent_decode("/%2").is_none());
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(percent_encode("a b#?"), "a%20b%23%3F");
    }
}
