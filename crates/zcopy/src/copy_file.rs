//! One file's contents into another, the cheapest way that works, and a whole
//! file copied into place: what `cp` does for each regular file.
//!
//! [`copy_contents`] tries a copy-on-write clone first ([`crate::engine::reflink`],
//! `FICLONE`: nothing is read or written, the extents are shared), then runs the
//! transfer engines ([`Transfer`], `copy_file_range` first between files) over the
//! source's data segments only ([`crate::engine::seek_data`]), so a sparse file keeps its
//! holes; with [`Sparse::Always`] runs of zeros become holes too. What ran, and why
//! the faster paths were skipped, comes back in [`Copied`] — what `std::io::copy`
//! and `std::fs::copy` decide silently.
//!
//! [`copy_file`] adds placement: the copy is made unnamed (`O_TMPFILE`) in the
//! target's directory and linked under its name only when complete, or, where the
//! file system has no `O_TMPFILE`, made under a temporary name beside it and renamed.
//! An interrupted copy leaves the old target or nothing, never half a file.
//!
//! A file system that cannot clone at all (`EOPNOTSUPP`, ext4) is asked once per
//! device for the life of the process.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::Mode;

use crate::engine::{reflink, seek_data};
use crate::place::Placement;
use crate::{Engine, EngineChoice, Error, FdKind, Options, Status, Transfer};

/// Whether to clone with `FICLONE`, as `cp --reflink=auto|always|never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reflink {
    /// Clone where the file system can, else copy.
    #[default]
    Auto,
    /// Clone or fail ([`Error::Clone`]).
    Always,
    /// Always copy the bytes.
    Never,
}

/// What to do with holes, as `cp --sparse=auto|always|never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sparse {
    /// Keep the source's holes (found with `SEEK_DATA`/`SEEK_HOLE`).
    #[default]
    Auto,
    /// Keep them, and make holes of every 4 KiB block of zeros too.
    Always,
    /// Write every byte, zeros included.
    Never,
}

/// How [`copy_contents`] and [`copy_file`] copy.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct CopyOptions {
    /// Clone first?
    pub reflink: Reflink,
    /// Holes kept, made, or filled.
    pub sparse: Sparse,
    /// The engines tried for the bytes ([`EngineChoice::Auto`]: the chain).
    pub engine: EngineChoice,
}

impl CopyOptions {
    /// With this reflink rule.
    pub fn reflink(self, reflink: Reflink) -> CopyOptions {
        CopyOptions { reflink, ..self }
    }

    /// With this rule for holes.
    pub fn sparse(self, sparse: Sparse) -> CopyOptions {
        CopyOptions { sparse, ..self }
    }

    /// With these engines.
    pub fn engine(self, engine: EngineChoice) -> CopyOptions {
        CopyOptions { engine, ..self }
    }
}

/// How the bytes were moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// Cloned copy-on-write: no byte was read or written.
    Reflink,
    /// Moved by this engine.
    Engine(Engine),
    /// Read and written block by block, blocks of zeros left as holes
    /// ([`Sparse::Always`]).
    ZerosAsHoles,
    /// Nothing to move: the source is empty.
    Empty,
}

/// What [`copy_contents`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Copied {
    /// How the bytes moved.
    pub method: Method,
    /// The data segments copied when the source has holes (`None`: one run).
    pub segments: Option<usize>,
    /// The faster paths skipped first, each with why (`reflink: Operation not
    /// supported`), and the engines the chain skipped.
    pub skipped: Vec<String>,
}

impl Copied {
    /// One line, as `cp -vv` prints it: `copy-file-range, 3 data segments, holes
    /// kept; skipped reflink: Operation not supported`.
    pub fn describe(&self) -> String {
        let mut how = match self.method {
            Method::Reflink => return "reflink".into(),
            Method::Engine(engine) => engine.name().to_string(),
            Method::ZerosAsHoles => "read-write".into(),
            Method::Empty => "empty".into(),
        };
        if let Some(count) = self.segments {
            let plural = if count == 1 { "" } else { "s" };
            how.push_str(&format!(", {count} data segment{plural}, holes kept"));
            if self.method == Method::ZerosAsHoles {
                how.push_str(" and made of zeros");
            }
        }
        if !self.skipped.is_empty() {
            how.push_str(&format!("; skipped {}", self.skipped.join(", ")));
        }
        how
    }
}

/// Devices whose file system answered a clone with `EOPNOTSUPP`: it cannot clone
/// to any destination, so it is not asked again (`EXDEV` depends on the target).
static NO_REFLINK: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

fn cannot_clone(dev: u64) -> bool {
    let known = NO_REFLINK.lock().unwrap_or_else(|p| p.into_inner());
    known.as_ref().is_some_and(|set| set.contains(&dev))
}

fn remember_cannot_clone(dev: u64) {
    let mut known = NO_REFLINK.lock().unwrap_or_else(|p| p.into_inner());
    known.get_or_insert_with(HashSet::new).insert(dev);
}

/// Copies the contents of `src` (whose metadata is `meta`) into `sink`, a new or
/// truncated file, or a device or pipe written in place (`sink_kind` says which).
/// `progress` hears the bytes moved so far, every 16 MiB.
///
/// A source whose size lies (procfs, sysfs) is read to its end: its length is
/// never trusted, and holes are looked for only where the blocks allow them.
pub fn copy_contents(
    src: &File,
    meta: &Metadata,
    sink: &File,
    sink_kind: FdKind,
    options: &CopyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Copied, Error> {
    let mut skipped = Vec::new();
    let regular = meta.is_file();
    // Clones and holes need a regular file at both ends.
    let files = regular && sink_kind == FdKind::File;
    if files && options.reflink != Reflink::Never && !cannot_clone(meta.dev()) {
        match reflink::clone_file(src, sink) {
            Ok(()) => {
                return Ok(Copied {
                    method: Method::Reflink,
                    segments: None,
                    skipped,
                })
            }
            Err(e) if options.reflink == Reflink::Always => return Err(Error::Clone(e)),
            Err(e) => {
                if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                    remember_cannot_clone(meta.dev());
                }
                skipped.push(format!("reflink: {}", strerror(&e)));
            }
        }
    }
    let src_kind = if regular {
        FdKind::File
    } else {
        FdKind::of(src).map_err(Error::Setup)?
    };
    let engine_options = Options {
        engine: options.engine,
        rusage: false,
        ..Options::default()
    };
    let io = |syscall: &'static str| {
        move |cause: std::io::Error| Error::Io {
            engine: Engine::ReadWrite,
            syscall,
            cause,
        }
    };
    if options.sparse == Sparse::Always && files {
        let segments = seek_data::data_segments(src, meta.len()).map_err(io("lseek"))?;
        for segment in &segments {
            write_skipping_zeros(src, sink, segment.clone())?;
        }
        rustix::fs::ftruncate(sink, meta.len()).map_err(|e| io("ftruncate")(e.into()))?;
        return Ok(Copied {
            method: Method::ZerosAsHoles,
            segments: Some(segments.len()),
            skipped,
        });
    }
    let holes = options.sparse == Sparse::Auto
        && files
        && meta.blocks() * 512 < meta.len()
        && seek_data::has_holes(src).map_err(io("lseek"))?;
    let segments = if holes {
        Some(seek_data::data_segments(src, meta.len()).map_err(io("lseek"))?)
    } else {
        None
    }
    .filter(|segments| segments.len() != 1 || segments[0] != (0..meta.len()));
    let mut engine = None;
    let mut moved = 0;
    let mut run = |transfer: &mut Transfer<'_>, skipped: &mut Vec<String>| -> Result<(), Error> {
        let before = moved;
        loop {
            match transfer.run_some(16 << 20)? {
                Status::More => progress(before + transfer.moved()),
                Status::Done => break,
                // Only a non-blocking sink returns it, and one given here is a caller's mistake.
                Status::WouldBlock(_) => {
                    return Err(Error::Setup(std::io::Error::from(
                        std::io::ErrorKind::WouldBlock,
                    )))
                }
            }
        }
        moved = before + transfer.moved();
        progress(moved);
        if engine.is_none() {
            let report = transfer.report();
            skipped.extend(report.skipped.iter().map(|s| s.to_string()));
            engine = Some(report.engine);
        }
        Ok(())
    };
    let count = segments.as_ref().map(Vec::len);
    match segments {
        None => {
            let mut transfer =
                Transfer::with_kinds(src, src_kind, sink, sink_kind, engine_options)?;
            run(&mut transfer, &mut skipped)?;
        }
        Some(segments) => {
            for segment in &segments {
                rustix::fs::seek(sink, rustix::fs::SeekFrom::Start(segment.start))
                    .map_err(|e| io("lseek")(e.into()))?;
                let options = Options {
                    offset: segment.start,
                    len: Some(segment.end - segment.start),
                    ..engine_options
                };
                let mut transfer = Transfer::with_kinds(src, src_kind, sink, sink_kind, options)?;
                run(&mut transfer, &mut skipped)?;
            }
            rustix::fs::ftruncate(sink, meta.len()).map_err(|e| io("ftruncate")(e.into()))?;
        }
    }
    Ok(Copied {
        method: engine.map_or(Method::Empty, Method::Engine),
        segments: count,
        skipped,
    })
}

/// Copies `segment` of `src` block by block, leaving 4 KiB blocks of zeros
/// unwritten (holes in a new or truncated sink).
fn write_skipping_zeros(
    src: &File,
    sink: &File,
    segment: std::ops::Range<u64>,
) -> Result<(), Error> {
    const BLOCK: usize = 4096;
    let io = |syscall: &'static str, e: rustix::io::Errno| Error::Io {
        engine: Engine::ReadWrite,
        syscall,
        cause: e.into(),
    };
    let mut buf = vec![0u8; 32 * BLOCK];
    let mut offset = segment.start;
    while offset < segment.end {
        let want = buf.len().min((segment.end - offset) as usize);
        let got = rustix::io::pread(src, &mut buf[..want], offset).map_err(|e| io("pread", e))?;
        if got == 0 {
            break;
        }
        for (i, block) in buf[..got].chunks(BLOCK).enumerate() {
            if block.iter().all(|&b| b == 0) {
                continue;
            }
            let at = offset + (i * BLOCK) as u64;
            let mut written = 0;
            while written < block.len() {
                written += rustix::io::pwrite(sink, &block[written..], at + written as u64)
                    .map_err(|e| io("pwrite", e))?;
            }
        }
        offset += got as u64;
    }
    Ok(())
}

/// Copies the file `src` to `dst`, with `src`'s permission bits (less set-uid,
/// set-gid and sticky), and puts it under `dst`'s name only when complete,
/// replacing what was there (see the module doc). Unlike `cp`, an existing `dst`
/// is replaced, not written into: its other hard links keep the old contents.
pub fn copy_file(src: &Path, dst: &Path, options: &CopyOptions) -> Result<Copied, Error> {
    let setup = |what: &str, path: &Path, e: std::io::Error| {
        Error::Setup(std::io::Error::new(
            e.kind(),
            format!("{what} {}: {}", path.display(), strerror(&e)),
        ))
    };
    let file = File::open(src).map_err(|e| setup("cannot open", src, e))?;
    let meta = file.metadata().map_err(|e| setup("cannot stat", src, e))?;
    let mode = Mode::from_raw_mode(meta.mode() & 0o777);
    let placed = Placement::create(dst, mode).map_err(|e| setup("cannot create", dst, e))?;
    let copied = copy_contents(
        &file,
        &meta,
        &placed.file,
        FdKind::File,
        options,
        &mut |_| {},
    )?;
    rustix::fs::fchmod(&placed.file, mode)
        .map_err(|e| setup("cannot set the mode of", dst, e.into()))?;
    placed
        .link(dst)
        .map_err(|e| setup("cannot create", dst, e))?;
    Ok(copied)
}
/// The kernel's words for `e`, without Rust's " (os error N)".
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}
