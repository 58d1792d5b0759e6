//! The open-file cache: a popular file is not opened, examined and closed for
//! every request (nginx's `open_file_cache`), and what a request for it needs is
//! worked out once, when it enters the cache: its MIME type, validators, the whole
//! `200` head (date patched per response, see [`response::cached`]), its
//! precompressed siblings, and for a small file its bytes.
//!
//! An entry is trusted for `VALID`; then the path is looked up again, so a file
//! replaced on disk is served within a second (a small body read into memory is
//! the version of that moment, consistent with its validators). A text file's
//! bodies compressed on the fly ([`crate::compress`]) are kept with it, and carried
//! over to the new entry while the file is the same version.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::compress::{self, Coding};
use crate::config::Config;
use crate::files::{self, Resolved};
use crate::response::{self, Status, DATE_LEN};

/// How long an entry is reused before its path is looked up again.
const VALID: Duration = Duration::from_secs(1);
/// The most paths kept per worker.
const MAX_ENTRIES: usize = 1024;

/// A content coding of a precompressed sibling (`FILE.br`, `FILE.zst`, `FILE.gz`),
/// in the server's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Zstd,
    Gzip,
}

impl Encoding {
    const ALL: [Encoding; 3] = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Zstd => ".zst",
            Encoding::Gzip => ".gz",
        }
    }
}

/// One representation of a file: the file itself or a precompressed sibling.
pub struct Entry {
    pub file: Rc<File>,
    pub meta: Metadata,
    pub size: u64,
    pub modified: SystemTime,
    pub etag: String,
    /// The `Content-Type` value: the MIME type, with `charset=utf-8` on `text/*`.
    pub content_type: Cow<'static, str>,
    pub encoding: Option<Encoding>,
    /// `Vary: Accept-Encoding` goes on every response of a file with siblings.
    pub vary: bool,
    pub digest: Option<Arc<str>>,
    /// The `200` head, with a placeholder date at [`response::DATE_AT`].
    pub head: Vec<u8>,
    /// The whole body, for a file small enough to go out with its head.
    pub bytes: Option<Vec<u8>>,
    /// A file without siblings that is compressed on the fly for clients that
    /// take zstd or gzip.
    pub compressible: bool,
}

/// A file's body compressed on the fly, with its `200` head (placeholder date).
pub struct Coded {
    pub etag: String,
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

/// A path's representations.
pub struct Variants {
    pub plain: Rc<Entry>,
    pub encoded: Vec<Rc<Entry>>,
    /// Per [`Coding`]: the coded body once made (`None`: it saved nothing).
    coded: [OnceCell<Option<Rc<Coded>>>; 2],
    /// The file's inode, with the plain ETag what a carried-over coded body needs.
    ino: u64,
    looked_up: Instant,
}

impl Variants {
    /// The representation for a request's `Accept-Encoding`: the first sibling
    /// (in [`Encoding`] order) the client accepts, else the file itself.
    pub fn choose(&self, accept_encoding: Option<&str>) -> &Rc<Entry> {
        let Some(accepted) = accept_encoding else {
            return &self.plain;
        };
        self.encoded
            .iter()
            .find(|e| e.encoding.is_some_and(|enc| accepts(accepted, enc.token())))
            .unwrap_or(&self.plain)
    }

    /// The file's body in `coding`, made on first use; `None` when it cannot be
    /// read whole or compresses to no gain. The `usize` is the bytes it added to
    /// the worker's cache (0 when it was made before).
    pub fn coded(&self, coding: Coding, config: &Config) -> (Option<Rc<Coded>>, usize) {
        let cell = &self.coded[coding.index()];
        if let Some(coded) = cell.get() {
            return (coded.clone(), 0);
        }
        let coded = code(&self.plain, coding, config).map(Rc::new);
        let added = coded.as_ref().map_or(0, |c| c.body.len() + c.head.len());
        (cell.get_or_init(|| coded).clone(), added)
    }
}

/// `entry`'s body in `coding`, and its head.
fn code(entry: &Entry, coding: Coding, config: &Config) -> Option<Coded> {
    let plain = match &entry.bytes {
        Some(bytes) => Cow::Borrowed(&bytes[..]),
        None => {
            let mut buf = vec![0; usize::try_from(entry.size).ok()?];
            let mut at = 0;
            while at < buf.len() {
                match rustix::io::pread(&*entry.file, &mut buf[at..], at as u64) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => at += n,
                }
            }
            Cow::Owned(buf)
        }
    };
    let body = coding.encode(&plain).ok()?;
    if body.len() >= plain.len() {
        return None;
    }
    let etag = format!("{}-{}\"", entry.etag.trim_end_matches('"'), coding.token());
    let mut head = Vec::with_capacity(320);
    response::start(&mut head, Status::Ok, &[b' '; DATE_LEN], false);
    response::header(&mut head, "Content-Length", body.len());
    response::header(&mut head, "Content-Type", &entry.content_type);
    response::header(&mut head, "Content-Encoding", coding.token());
    response::header(&mut head, "ETag", &etag);
    response::header(
        &mut head,
        "Last-Modified",
        httpdate::fmt_http_date(entry.modified),
    );
    head.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    if let Some(value) = &config.cache_control {
        response::header(&mut head, "Cache-Control", value);
    }
    response::end(&mut head);
    Some(Coded { etag, head, body })
}

/// Whether an `Accept-Encoding` value accepts `token` (listed, or `*`, without
/// `q=0`).
fn accepts(header: &str, token: &str) -> bool {
    let mut star = false;
    for item in header.split(',') {
        let mut params = item.split(';');
        let name = params.next().unwrap_or_default().trim();
        let refused = params.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if name.eq_ignore_ascii_case(token) {
            return !refused;
        }
        if name == "*" {
            star = !refused;
        }
    }
    star
}

/// What a request path leads to.
pub enum Lookup {
    File(Rc<Variants>),
    /// A directory to list: its descriptor, its path relative to the root, and
    /// the decoded request path.
    Listing(File, String, String),
    /// A directory asked for without its trailing slash: here is its address.
    Redirect(String),
    NotFound,
    Forbidden,
    BadRequest,
}

/// A worker's cache.
#[derive(Default)]
pub struct OpenFiles {
    paths: HashMap<String, Rc<Variants>>,
    /// Bytes of coded bodies the entries hold, up to [`compress::BUDGET`].
    coded_bytes: usize,
}

impl OpenFiles {
    /// Resolves `target` (path and query) under the root, from the cache when the
    /// entry is fresh.
    pub fn resolve(&mut self, config: &Config, target: &str, now: Instant) -> Lookup {
        let key = target.split(['?', '#']).next().unwrap_or_default();
        if let Some(variants) = self.paths.get(key) {
            // A file rewritten in place keeps the descriptor: its new bytes must not
            // go out under the old version's validators.
            if now.duration_since(variants.looked_up) < VALID && variants.plain.unchanged() {
                return Lookup::File(variants.clone());
            }
        }
        match files::resolve(&config.root, target, config.hidden) {
            Resolved::File(file, meta, path) => {
                let mut variants = variants(config, file, meta, &path, now);
                if let Some(old) = self.paths.get(key) {
                    if (old.ino, &old.plain.etag) == (variants.ino, &variants.plain.etag) {
                        variants.coded = old.coded.clone();
                    }
                }
                let variants = Rc::new(variants);
                if self.paths.len() >= MAX_ENTRIES {
                    self.clear();
                }
                self.paths.insert(key.to_string(), variants.clone());
                Lookup::File(variants)
            }
            Resolved::Listing(dir, relative, shown) => Lookup::Listing(dir, relative, shown),
            Resolved::Redirect(location) => Lookup::Redirect(location),
            Resolved::NotFound => Lookup::NotFound,
            Resolved::Forbidden => Lookup::Forbidden,
            Resolved::BadRequest => Lookup::BadRequest,
        }
    }

    /// Counts `bytes` of coded bodies made for an entry; past the budget the
    /// cache starts again (the entries in use live on until their responses end).
    pub fn hold(&mut self, bytes: usize) {
        self.coded_bytes += bytes;
        if self.coded_bytes > compress::BUDGET {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.paths.clear();
        self.coded_bytes = 0;
    }
}

fn variants(config: &Config, file: File, meta: Metadata, path: &Path, now: Instant) -> Variants {
    let mime = mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    // Without a charset a browser guesses one (often windows-1252), and UTF-8 text
    // shows garbled; most text written today is UTF-8.
    let content_type: Cow<'static, str> = if mime.starts_with("text/") {
        format!("{mime}; charset=utf-8").into()
    } else {
        mime.into()
    };
    let relative = path
        .strip_prefix(&config.root.path)
        .ok()
        .and_then(Path::to_str)
        .map(str::to_string);
    let siblings: Vec<(Encoding, File, Metadata)> = match &relative {
        Some(relative) if config.precompressed => Encoding::ALL
            .into_iter()
            .filter_map(|enc| {
                let sibling =
                    files::open_beneath(config.root.dir(), format!("{relative}{}", enc.suffix()))
                        .ok()?;
                let meta = sibling.metadata().ok().filter(Metadata::is_file)?;
                Some((enc, sibling, meta))
            })
            .collect(),
        _ => Vec::new(),
    };
    let size = meta.len();
    let compressible = config.compress
        && siblings.is_empty()
        && compress::compressible(mime)
        && (compress::MIN_SIZE..=compress::MAX_SIZE).contains(&size);
    let vary = !siblings.is_empty() || compressible;
    let ino = meta.ino();
    let mut plain = entry(config, file, meta, content_type.clone(), None, vary);
    plain.compressible = compressible;
    let plain = Rc::new(plain);
    let encoded = siblings
        .into_iter()
        .map(|(enc, file, meta)| {
            Rc::new(entry(
                config,
                file,
                meta,
                content_type.clone(),
                Some(enc),
                vary,
            ))
        })
        .collect();
    Variants {
        plain,
        encoded,
        coded: Default::default(),
        ino,
        looked_up: now,
    }
}

fn entry(
    config: &Config,
    file: File,
    meta: Metadata,
    content_type: Cow<'static, str>,
    encoding: Option<Encoding>,
    vary: bool,
) -> Entry {
    let size = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    // A sibling's tag names its coding: the same size and time must not make
    // a gzip body and a plain one look like the same representation.
    // nginx's mtime-size tag, with the nanoseconds: a file rewritten at the same
    // size within one second is another version, and a resuming browser's
    // If-Range must not match it.
    let version = format!("{:x}.{:x}-{:x}", meta.mtime(), meta.mtime_nsec(), size);
    let etag = match encoding {
        None => format!("\"{version}\""),
        Some(enc) => format!("\"{version}-{}\"", enc.token()),
    };
    let digest = config
        .digests
        .as_ref()
        .and_then(|d| d.repr_digest(&file, &meta));
    let bytes = (size <= config.memory_body_max)
        .then(|| {
            let mut buf = vec![0; size as usize];
            rustix::io::pread(&file, &mut buf, 0)
                .ok()
                .filter(|&n| n == buf.len())
                .map(|_| buf)
        })
        .flatten();
    let mut entry = Entry {
        file: Rc::new(file),
        meta,
        size,
        modified,
        etag,
        content_type,
        encoding,
        vary,
        digest,
        head: Vec::new(),
        bytes,
        compressible: false,
    };
    let mut head = Vec::with_capacity(320);
    response::start(&mut head, Status::Ok, &[b' '; DATE_LEN], false);
    response::header(&mut head, "Content-Length", size);
    entry.representation_headers(&mut head, config, true, entry.digest.as_deref());
    response::end(&mut head);
    entry.head = head;
    entry
}

impl Entry {
    /// Whether the open file still has the time and size it had when the entry
    /// was made (one `fstat`).
    fn unchanged(&self) -> bool {
        self.file.metadata().is_ok_and(|now| {
            (now.mtime(), now.mtime_nsec(), now.len())
                == (self.meta.mtime(), self.meta.mtime_nsec(), self.size)
        })
    }

    /// The headers that describe this representation, on a 200, a 206 and a 304
    /// (`with_type`: not on a multipart body, whose parts carry it).
    pub fn representation_headers(
        &self,
        out: &mut Vec<u8>,
        config: &Config,
        with_type: bool,
        digest: Option<&str>,
    ) {
        if with_type {
            response::header(out, "Content-Type", &self.content_type);
        }
        response::header(out, "ETag", &self.etag);
        response::header(out, "Last-Modified", httpdate::fmt_http_date(self.modified));
        out.extend_from_slice(b"Accept-Ranges: bytes\r\n");
        if let Some(encoding) = self.encoding {
            response::header(out, "Content-Encoding", encoding.token());
        }
        if self.vary {
            out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
        }
        if let Some(value) = &config.cache_control {
            response::header(out, "Cache-Control", value);
        }
        if let Some(digest) = digest {
            // The whole representation's digest, on a part too: the client checks
            // what it assembled.
            response::header(out, "Repr-Digest", digest);
        }
    }

    /// Whether the digest is still being computed (a large file seen for the
    /// first time): asked again per request until it is known.
    pub fn digest_pending(&self, config: &Config) -> bool {
        self.digest.is_none() && config.digests.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("br;q=0.5, gzip", "gzip"));
        assert!(!accepts("gzip;q=0, br", "gzip"));
        assert!(!accepts("identity", "gzip"));
        assert!(accepts("*", "zstd"));
        assert!(!accepts("*, zstd;q=0", "zstd"));
        assert!(!accepts("*;q=0", "br"));
    }
}
