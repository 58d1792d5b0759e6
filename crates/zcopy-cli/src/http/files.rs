//! From a request target to a file under the served directory, safely: percent-
//! decoding, no `..`, no NUL, no symlink that leads outside, no FIFO or device.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};

/// What a request target names.
pub enum Resolved {
    /// A regular file, opened.
    File(File, Metadata, PathBuf),
    /// A directory without `index.html`: list it.
    Listing(PathBuf, String),
    /// A directory asked for without its trailing slash.
    Redirect(String),
    NotFound,
    Forbidden,
    BadRequest,
}

/// Resolves `target` (the request's path and query) under `root` (canonical).
pub fn resolve(root: &Path, target: &str) -> Resolved {
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
    let mut full = root.to_path_buf();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return Resolved::Forbidden,
            name => full.push(name),
        }
    }
    // Symlinks are followed, but only to places under the root.
    let Ok(real) = full.canonicalize() else {
        return Resolved::NotFound;
    };
    if !real.starts_with(root) {
        return Resolved::Forbidden;
    }
    let Ok(meta) = std::fs::metadata(&real) else {
        return Resolved::NotFound;
    };
    if meta.is_dir() {
        if !path.ends_with('/') {
            return Resolved::Redirect(format!("{path}/"));
        }
        let index = real.join("index.html");
        return match std::fs::metadata(&index) {
            Ok(m) if m.is_file() => open(index),
            _ => Resolved::Listing(real, decoded),
        };
    }
    if !meta.is_file() {
        // Opening a FIFO would block the worker; devices are not content.
        return Resolved::Forbidden;
    }
    open(real)
}

fn open(path: PathBuf) -> Resolved {
    match File::open(&path).and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok((file, meta)) if meta.is_file() => Resolved::File(file, meta, path),
        Ok(_) => Resolved::Forbidden,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Resolved::Forbidden,
        Err(_) => Resolved::NotFound,
    }
}

/// `%XX` decoding; `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
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
