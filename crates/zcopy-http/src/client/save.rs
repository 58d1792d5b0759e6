//! Where a body goes: the `.NAME.zcopy-part` file beside the target (with the
//! server's validator in an extended attribute while it is partial), resumed from
//! its end, checked against the server's digest, given the server's time, and
//! renamed over the target; or, for `-o -` and devices, the sink itself.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use zcopy::{Engine, Report, Rusage};

use super::body::{self, Receiving};
use super::head::{Framing, Head};
use super::segments::MIN_SEGMENT;
use super::{Asking, Error, Idle, Job, Saved, Url};
use crate::digest;

/// Where a partial file keeps the server's validator for `If-Range`.
const VALIDATOR_XATTR: &str = "user.zcopy.validator";

impl Job<'_> {
    /// With `-C`: the length of the partial file and its validator, if it has one
    /// (without one, resuming could splice two versions together).
    pub(super) fn partial(&self, part: &Path) -> (u64, Option<String>) {
        let Ok(file) = File::open(part) else {
            return (0, None);
        };
        let mut value = vec![0u8; 1024];
        let validator = rustix::fs::fgetxattr(&file, VALIDATOR_XATTR, &mut value[..])
            .ok()
            .and_then(|n| String::from_utf8(value[..n].to_vec()).ok());
        match (file.metadata(), validator) {
            (Ok(meta), Some(v)) if meta.len() > 0 => {
                self.say(&format!(
                    "resuming {} at byte {}",
                    part.display(),
                    meta.len()
                ));
                (meta.len(), Some(v))
            }
            _ => (0, None),
        }
    }

    /// A 416 to a resumed request: the partial file may hold the whole file already.
    pub(super) fn already_complete(
        &self,
        head: &Head,
        url: &Url,
        place: &Place,
    ) -> Result<Saved, Error> {
        let Place { target, part, have } = place;
        let have = *have;
        match head.content_range() {
            Some((None, total)) if total == have => {
                finish(part, target, url)?;
                Ok(Saved {
                    url: url.clone(),
                    path: target.to_path_buf(),
                    status: 416,
                    report: Report::empty(Engine::Splice),
                    seconds: 0.0,
                    usage: Rusage::default(),
                    resumed_from: have,
                    connections: 1,
                    copied: false,
                    verified: None,
                })
            }
            _ => Err(Error::Range(format!(
                "{url}: 416 Range Not Satisfiable for the {have} bytes of {}",
                part.display()
            ))),
        }
    }

    /// The body into standard output or a device, as it comes.
    pub(super) fn write_in_place(
        &self,
        stream: TcpStream,
        head: &Head,
        url: &Url,
        target: &Path,
        idle: &mut Idle,
    ) -> Result<Saved, Error> {
        let sink = if target == Path::new("-") {
            rustix::io::dup(std::io::stdout())
                .map(File::from)
                .map_err(std::io::Error::from)
        } else {
            OpenOptions::new().write(true).open(target)
        }
        .map_err(|e| Error::Write(format!("cannot write {}: {e}", target.display())))?;
        let how = Receiving {
            progress: false,
            ..self.client.receiving
        };
        let body = body::receive(&stream, &sink, head.framing, how, url, self.events)?;
        if head.keep_alive && matches!(head.framing, Framing::Length(_)) {
            *idle = Some((url.origin(), stream));
        }
        Ok(Saved {
            url: url.clone(),
            path: target.to_path_buf(),
            status: head.status,
            report: body.report,
            seconds: 0.0,
            usage: Rusage::default(),
            resumed_from: 0,
            connections: 1,
            copied: body.copied,
            verified: None,
        })
    }

    pub(super) fn save(
        &self,
        stream: TcpStream,
        head: &Head,
        url: &Url,
        place: &Place,
        asking: &Asking<'_>,
        idle: &mut Idle,
    ) -> Result<Saved, Error> {
        let Place {
            target,
            part,
            have: resume_from,
        } = place;
        let resume_from = *resume_from;
        let range = head.content_range();
        let ranged = self.client.config.range.is_some();
        let (offset, total) = match (head.status, range) {
            // `-r`: the bytes of the range are the file, from its start, as curl writes them.
            _ if ranged => {
                let total = match head.framing {
                    Framing::Length(n) => Some(n),
                    _ => None,
                };
                (0, total)
            }
            (206, Some((Some((start, end)), total))) => {
                if start != resume_from || end + 1 > total {
                    return Err(Error::Range(format!(
                        "{url}: asked for bytes from {resume_from}, got {start}-{end}/{total}"
                    )));
                }
                (start, Some(total))
            }
            (206, _) => {
                return Err(Error::WeirdReply(format!(
                    "{url}: 206 without a usable Content-Range"
                )))
            }
            (_, _) => {
                if resume_from > 0 {
                    self.note(&format!("{url}: the file changed on the server (or it ignores ranges): starting over"));
                }
                let total = match head.framing {
                    Framing::Length(n) => Some(n),
                    _ => None,
                };
                (0, total)
            }
        };
        // A range of the file cannot be resumed as the file.
        let validator = validator_of(head).filter(|_| !ranged);
        let write_failure =
            |e: std::io::Error| Error::Write(format!("cannot write {}: {e}", part.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(part)
            .map_err(write_failure)?;
        file.set_len(offset).map_err(write_failure)?;
        file.seek(SeekFrom::Start(offset)).map_err(write_failure)?;
        if let Some(total) = total {
            // Blocks reserved up front: ENOSPC now rather than mid-body, and extents
            // allocated once (KEEP_SIZE: the size still counts the bytes received).
            let _ = rustix::fs::fallocate(
                &file,
                rustix::fs::FallocateFlags::KEEP_SIZE,
                offset,
                total - offset,
            );
        }
        // Only a body of known length from a file with a validator can be resumed.
        let resumable = validator.is_some() && total.is_some();
        match (&validator, resumable) {
            (Some(v), true) => {
                // ENOTSUP on file systems without user xattrs: the file is then not resumable.
                let _ = rustix::fs::fsetxattr(
                    &file,
                    VALIDATOR_XATTR,
                    v.as_bytes(),
                    rustix::fs::XattrFlags::empty(),
                );
            }
            _ => {
                let _ = rustix::fs::fremovexattr(&file, VALIDATOR_XATTR);
            }
        }
        let segments = self.client.config.segments;
        let whole_range = range == total.map(|t| (Some((0, t - 1)), t));
        let result = match (head.status, total, &validator) {
            (206, Some(total), Some(v))
                if segments > 1 && whole_range && total >= u64::from(segments) * MIN_SEGMENT =>
            {
                self.segments(stream, url, part, total, v, asking.headers)
                    .map(|body| (body, segments))
            }
            _ => {
                let body = body::receive(
                    &stream,
                    &file,
                    head.framing,
                    self.client.receiving,
                    url,
                    self.events,
                );
                if body.is_ok() && head.keep_alive && matches!(head.framing, Framing::Length(_)) {
                    *idle = Some((url.origin(), stream));
                }
                body.map(|body| (body, 1))
            }
        };
        let (body, connections) = match result {
            Ok(done) => done,
            Err(failed) => {
                // A segmented download has holes: only a single stream resumes.
                if !resumable || segments > 1 {
                    let _ = std::fs::remove_file(part);
                } else {
                    self.note(&format!("partial file kept for -C: {}", part.display()));
                }
                return Err(failed);
            }
        };
        // Repr-Digest is of the whole file, not of the range `-r` asked for.
        let checked = if ranged && head.status == 206 {
            Ok(None)
        } else {
            verify(head, &file, url)
        };
        let verified = match checked {
            Ok(verified) => verified,
            Err(failed) => {
                let _ = std::fs::remove_file(part);
                return Err(failed);
            }
        };
        if self.client.config.remote_time {
            self.take_remote_time(head, &file, part);
        }
        drop(file);
        finish(part, target, url)?;
        Ok(Saved {
            url: url.clone(),
            path: target.to_path_buf(),
            status: head.status,
            report: body.report,
            seconds: 0.0,
            usage: Rusage::default(),
            resumed_from: offset,
            connections,
            copied: body.copied,
            verified,
        })
    }

    /// The file's mtime from `Last-Modified` (wget's default, curl's `-R`), set on the
    /// part file so that the real name appears with it.
    pub(super) fn take_remote_time(&self, head: &Head, file: &File, part: &Path) {
        let Some(time) = head
            .header("last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return;
        };
        if let Err(e) = file.set_modified(time) {
            self.note(&format!("cannot set the time of {}: {e}", part.display()));
        }
    }
}

/// Where a download goes: its target, its partial file, and how much of the
/// partial file is kept for a resume.
pub(super) struct Place {
    pub(super) target: PathBuf,
    pub(super) part: PathBuf,
    pub(super) have: u64,
}

/// `.NAME.zcopy-part` beside `target`: a fixed name, so that `-C` finds it.
pub(super) fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "index.html".into(), |n| n.to_string_lossy());
    zcopy::place::parent_dir(target).join(format!(".{name}.zcopy-part"))
}

/// What `If-Range` may carry: a strong ETag, else Last-Modified.
fn validator_of(head: &Head) -> Option<String> {
    match head.header("etag") {
        Some(tag) if !tag.starts_with("W/") => Some(tag.to_string()),
        _ => head.header("last-modified").map(str::to_string),
    }
}

/// Checks the file against `Repr-Digest` (the whole representation, so also after
/// a resumed or parallel download), or `Content-Digest` of a whole (200) body.
fn verify(head: &Head, file: &File, url: &Url) -> Result<Option<&'static str>, Error> {
    let digests = match (head.header("repr-digest"), head.header("content-digest")) {
        (Some(repr), _) => digest::parse(repr),
        (None, Some(content)) if head.status == 200 => digest::parse(content),
        _ => return Ok(None),
    };
    let Some((algorithm, sent)) = digests.into_iter().next() else {
        return Ok(None);
    };
    let len = file
        .metadata()
        .map_err(|e| Error::Write(format!("{url}: cannot read back the file: {e}")))?
        .len();
    let got = digest::of_file(file, len, algorithm)
        .map_err(|e| Error::Write(format!("{url}: cannot read back the file: {e}")))?;
    let got = digest::header_value(algorithm, &got);
    let sent = format!("{}=:{sent}:", algorithm.name());
    if got != sent {
        return Err(Error::Other(format!(
            "{url}: digest mismatch: the server sent {sent}, the download has {got}; nothing saved"
        )));
    }
    Ok(Some(algorithm.name()))
}

/// Renames the verified partial file over its target, without the validator.
fn finish(part: &Path, target: &Path, url: &Url) -> Result<(), Error> {
    if let Ok(file) = File::open(part) {
        let _ = rustix::fs::fremovexattr(&file, VALIDATOR_XATTR);
    }
    std::fs::rename(part, target).map_err(|e| {
        Error::Write(format!(
            "{url}: cannot rename into {}: {e}",
            target.display()
        ))
    })
}
