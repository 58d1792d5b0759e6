//! Directory listings, read from the directory's opened descriptor (never its path
//! again), as a page a person reads or as JSON (`Accept: application/json`).
//!
//! An entry is listed only if a GET of it would succeed: each is opened the way a
//! request would open it (`openat2(RESOLVE_BENEATH)` from the root), so symlinks
//! that lead outside, FIFOs, devices and unreadable files are left out rather than
//! shown as links to a 403 or 404; nor are names a request could not get
//! ([`files::servable`]: dot names without `--hidden`, part files, manifests).

use std::fs::File;
use std::time::SystemTime;

use rustix::fs::{AtFlags, FileType};

use crate::files::{self, Root};

/// One listed entry.
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub symlink: bool,
    pub size: u64,
    pub modified: SystemTime,
}

/// The servable entries of `dir` (at `relative` under the root): folders first,
/// then by name, case folded; dot names only with `hidden`.
pub fn read(root: &Root, dir: &File, relative: &str, hidden: bool) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in rustix::fs::Dir::read_from(dir)? {
        let item = item?;
        let Ok(name) = item.file_name().to_str() else {
            // Not UTF-8: a request could not name it (it gets 404).
            continue;
        };
        if name == "." || name == ".." || !files::servable(name, hidden) {
            continue;
        }
        let symlink = match item.file_type() {
            FileType::Symlink => true,
            FileType::Unknown => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink),
            _ => false,
        };
        let path = if relative == "." {
            name.to_string()
        } else {
            format!("{relative}/{name}")
        };
        let Ok(opened) = files::open_beneath(root.dir(), &path) else {
            continue;
        };
        let Ok(meta) = opened.metadata() else {
            continue;
        };
        if !meta.is_dir() && !meta.is_file() {
            continue;
        }
        entries.push(Entry {
            name: name.to_string(),
            is_dir: meta.is_dir(),
            symlink,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(entries)
}

/// The listing as a page: a table with names (folders first, marked with `/`;
/// symlinks marked `→`), sizes a person reads, right-aligned, and dates; a link to
/// the parent except at the root; a link to the folder's tar archive.
pub fn html(entries: &[Entry], url_path: &str) -> Vec<u8> {
    let shown = format!("/{}", url_path.trim_start_matches('/'));
    let title = escape(&format!("Index of {shown}"));
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}}\
table{{border-collapse:collapse}}td,th{{padding:.2em 1em;text-align:left}}\
tr:nth-child(even){{background:#f4f4f4}}td.size,th.size{{text-align:right;font-variant-numeric:tabular-nums}}\
a{{text-decoration:none}}a:hover{{text-decoration:underline}}.link{{color:#777}}\
@media (prefers-color-scheme:dark){{body{{color:#ddd;background:#181818}}tr:nth-child(even){{background:#242424}}a{{color:#8ab4f8}}}}\
</style></head>\n<body><h1>{title}</h1>\n\
<p><a href=\"?archive=tar\" download>Download this folder as a .tar</a></p>\n<table>\n\
<tr><th>Name</th><th class=\"size\">Size</th><th>Modified</th></tr>\n"
    );
    if shown != "/" {
        page.push_str(
            "<tr><td><a href=\"../\">../</a></td><td class=\"size\"></td><td></td></tr>\n",
        );
    }
    for entry in entries {
        let slash = if entry.is_dir { "/" } else { "" };
        let href = escape(&crate::percent::encode_segment(&entry.name));
        let size = if entry.is_dir {
            "<td class=\"size\"></td>".to_string()
        } else {
            format!(
                "<td class=\"size\" title=\"{} bytes\">{}</td>",
                entry.size,
                zcopy::size::human(entry.size)
            )
        };
        let link = if entry.symlink {
            " <span class=\"link\" title=\"symbolic link\">→</span>"
        } else {
            ""
        };
        let date = httpdate::fmt_http_date(entry.modified);
        page.push_str(&format!(
            "<tr><td><a href=\"{href}{slash}\">{}{slash}</a>{link}</td>{size}<td>{date}</td></tr>\n",
            escape(&entry.name),
        ));
    }
    page.push_str("</table></body></html>\n");
    page.into_bytes()
}

/// The listing as JSON: `{"path": "/a/", "entries": [{"name", "type", "size",
/// "modified" (Unix seconds), "symlink"}]}`.
pub fn json(entries: &[Entry], url_path: &str) -> Vec<u8> {
    let entries: Vec<_> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "type": if e.is_dir { "directory" } else { "file" },
                "size": e.size,
                "modified": e.modified.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                "symlink": e.symlink,
            })
        })
        .collect();
    let mut body = serde_json::to_vec(&serde_json::json!({
        "path": format!("/{}", url_path.trim_start_matches('/')),
        "entries": entries,
    }))
    .unwrap_or_default();
    body.push(b'\n');
    body
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
