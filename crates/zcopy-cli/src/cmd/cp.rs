//! `zcopy cp SRC... DST`: copies files and trees like GNU cp, through the cheapest
//! mechanism that works: a reflink (copy-on-write clone), then the transfer engines
//! (copy_file_range → sendfile → splice → mmap → read-write), moving only the data
//! segments of sparse files. Each file is written under a temporary name beside its
//! target and renamed at the end, so an interrupted copy never leaves a half file
//! under the real name.

use std::fs::{File, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tempfile::NamedTempFile;
use zcopy::engine::{reflink, seek_data};

use super::parent_dir;
use zcopy::{EngineChoice, Options, Transfer};

/// Copy files and trees with reflinks, in-kernel copies and sparse awareness
#[derive(clap::Args)]
pub struct Args {
    /// Sources, then the destination (a directory when there are several sources)
    #[arg(required = true, num_args = 2.., value_name = "SRC... DST")]
    paths: Vec<PathBuf>,
    /// Copy directories recursively; symlinks inside are copied as links
    #[arg(short = 'r', short_alias = 'R', long)]
    recursive: bool,
    /// Preserve mode, ownership (where permitted) and timestamps
    #[arg(short = 'p')]
    preserve: bool,
    /// Clone with FICLONE: auto (when the file system can), always (or fail), never
    #[arg(long, value_enum, default_value = "auto")]
    reflink: When,
    /// Keep holes: auto (when the source has holes), always (look for holes), never
    #[arg(long, value_enum, default_value = "auto")]
    sparse: When,
    /// Engine when not cloning: auto, copy-file-range, sendfile, splice, mmap, read-write
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Say what is copied and which engine copied it
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// The three-way switches of GNU cp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    Auto,
    Always,
    Never,
}

pub fn run(args: Args) -> Result<()> {
    let (dst, srcs) = args.paths.split_last().expect("clap requires two paths");
    let into_dir = dst.is_dir();
    if srcs.len() > 1 && !into_dir {
        bail!("target '{}' is not a directory", dst.display());
    }
    let umask = current_umask();
    let mut failed = false;
    for src in srcs {
        let target = if into_dir {
            match src.file_name() {
                Some(name) => dst.join(name),
                None => {
                    eprintln!(
                        "zcopy: cannot copy '{}': it has no file name",
                        src.display()
                    );
                    failed = true;
                    continue;
                }
            }
        } else {
            dst.clone()
        };
        if let Err(e) = copy_entry(src, &target, &args, umask, true) {
            eprintln!("zcopy: {e:#}");
            failed = true;
        }
    }
    if failed {
        bail!(super::Quiet);
    }
    Ok(())
}

fn current_umask() -> u32 {
    // umask can only be read by setting it; set it straight back.
    let mask = rustix::process::umask(rustix::fs::Mode::empty());
    rustix::process::umask(mask);
    mask.bits()
}

fn copy_entry(src: &Path, dst: &Path, args: &Args, umask: u32, top: bool) -> Result<()> {
    // Command-line symlinks are followed unless -r (GNU cp's -R implies -P).
    let meta = if top && !args.recursive {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .with_context(|| format!("cannot stat '{}'", src.display()))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        if !args.recursive {
            bail!("-r not specified; omitting directory '{}'", src.display());
        }
        copy_dir(src, dst, &meta, args, umask)
    } else if kind.is_symlink() {
        copy_symlink(src, dst, args)
    } else if kind.is_file() {
        copy_file(src, dst, &meta, args, umask)
    } else {
        bail!("cannot copy special file '{}'", src.display())
    }
}

fn copy_dir(src: &Path, dst: &Path, meta: &Metadata, args: &Args, umask: u32) -> Result<()> {
    let abs_src = src
        .canonicalize()
        .with_context(|| format!("cannot read '{}'", src.display()))?;
    let abs_parent = parent_dir(dst)
        .canonicalize()
        .with_context(|| format!("cannot create directory '{}'", dst.display()))?;
    if abs_parent.starts_with(&abs_src) {
        bail!(
            "cannot copy a directory, '{}', into itself, '{}'",
            src.display(),
            dst.display()
        );
    }
    match std::fs::symlink_metadata(dst) {
        Ok(existing) if existing.is_dir() => {}
        Ok(_) => bail!(
            "cannot overwrite non-directory '{}' with directory '{}'",
            dst.display(),
            src.display()
        ),
        Err(_) => {
            std::fs::create_dir(dst)
                .with_context(|| format!("cannot create directory '{}'", dst.display()))?;
            if args.verbose {
                eprintln!("'{}' -> '{}'", src.display(), dst.display());
            }
        }
    }
    let mut failed = None;
    let entries = std::fs::read_dir(src)
        .with_context(|| format!("cannot read directory '{}'", src.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read directory '{}'", src.display()))?;
        if let Err(e) = copy_entry(
            &entry.path(),
            &dst.join(entry.file_name()),
            args,
            umask,
            false,
        ) {
            eprintln!("zcopy: {e:#}");
            failed = Some(e);
        }
    }
    let mode = if args.preserve {
        meta.mode() & 0o7777
    } else {
        meta.mode() & 0o7777 & !umask
    };
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions of '{}'", dst.display()))?;
    if args.preserve {
        let dir = File::open(dst).with_context(|| format!("cannot open '{}'", dst.display()))?;
        preserve(&dir, meta, dst)?;
    }
    match failed {
        Some(_) => bail!(super::Quiet),
        None => Ok(()),
    }
}

fn copy_symlink(src: &Path, dst: &Path, args: &Args) -> Result<()> {
    let target = std::fs::read_link(src)
        .with_context(|| format!("cannot read symbolic link '{}'", src.display()))?;
    let temp = temp_name(dst);
    std::os::unix::fs::symlink(&target, &temp)
        .with_context(|| format!("cannot create symbolic link '{}'", dst.display()))?;
    if let Err(e) = std::fs::rename(&temp, dst) {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot create symbolic link '{}'", dst.display()));
    }
    if args.verbose {
        eprintln!("'{}' -> '{}'", src.display(), dst.display());
    }
    Ok(())
}

/// A name beside `path` for a symlink being made (files use NamedTempFile).
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "zcopy".into(), |n| n.to_string_lossy().into_owned());
    parent_dir(path).join(format!(".{name}.{}.zcopy-part", std::process::id()))
}

fn copy_file(src: &Path, dst: &Path, meta: &Metadata, args: &Args, umask: u32) -> Result<()> {
    let file =
        File::open(src).with_context(|| format!("cannot open '{}' for reading", src.display()))?;
    if let Ok(existing) = std::fs::metadata(dst) {
        if existing.dev() == meta.dev() && existing.ino() == meta.ino() {
            bail!(
                "'{}' and '{}' are the same file",
                src.display(),
                dst.display()
            );
        }
        if existing.is_dir() {
            bail!(
                "cannot overwrite directory '{}' with non-directory",
                dst.display()
            );
        }
    }
    let temp = super::temp_beside(dst)
        .with_context(|| format!("cannot create regular file '{}'", dst.display()))?;
    let how = fill(&file, meta.len(), &temp, args)
        .with_context(|| format!("copying '{}' to '{}'", src.display(), dst.display()))?;
    let mode = if args.preserve {
        meta.mode() & 0o7777
    } else {
        meta.mode() & 0o777 & !umask
    };
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions of '{}'", dst.display()))?;
    if args.preserve {
        preserve(temp.as_file(), meta, dst)?;
    }
    temp.persist(dst)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot create regular file '{}'", dst.display()))?;
    if args.verbose {
        eprintln!("'{}' -> '{}' ({how})", src.display(), dst.display());
    }
    Ok(())
}

/// Fills `temp` with the contents of `src` and says how.
fn fill(src: &File, size: u64, temp: &NamedTempFile, args: &Args) -> Result<String> {
    let mut skipped = Vec::new();
    if args.reflink != When::Never {
        match reflink::clone_file(src, temp.as_file()) {
            Ok(()) => return Ok("reflink".into()),
            Err(e) if args.reflink == When::Always => {
                return Err(e).context("cannot clone (--reflink=always)");
            }
            Err(e) => skipped.push(format!("reflink: {e}")),
        }
    }
    let whole = std::iter::once(0..size).collect();
    let segments = match args.sparse {
        When::Never => whole,
        When::Auto if !seek_data::has_holes(src)? => whole,
        When::Auto | When::Always => seek_data::data_segments(src, size)?,
    };
    let sparse = segments.len() != 1 || segments.first().is_some_and(|s| *s != (0..size));
    let mut engine = None;
    for segment in &segments {
        rustix::fs::seek(temp.as_file(), rustix::fs::SeekFrom::Start(segment.start))?;
        let options = Options {
            engine: args.engine,
            offset: segment.start,
            len: Some(segment.end - segment.start),
            ..Options::default()
        };
        let mut transfer = Transfer::new(src, temp.as_file(), options)?;
        transfer.run()?;
        let report = transfer.report();
        if engine.is_none() {
            skipped.extend(report.skipped.iter().map(|s| s.to_string()));
            engine = Some(report.engine);
        }
    }
    rustix::fs::ftruncate(temp.as_file(), size)?;
    let mut how = engine.map_or("empty", |e| e.name()).to_string();
    if sparse {
        let plural = if segments.len() == 1 { "" } else { "s" };
        how.push_str(&format!(
            ", {} data segment{plural}, holes kept",
            segments.len()
        ));
    }
    if !skipped.is_empty() {
        how.push_str(&format!("; skipped {}", skipped.join(", ")));
    }
    Ok(how)
}

/// `-p`: mode is set by the caller; here ownership (where permitted) and times.
fn preserve(file: &File, meta: &Metadata, path: &Path) -> Result<()> {
    let owner = rustix::fs::fchown(
        file,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    );
    // EPERM: only root may give files away; GNU cp keeps going too.
    if let Err(e) = owner {
        if e != rustix::io::Errno::PERM {
            return Err(e)
                .with_context(|| format!("cannot preserve ownership of '{}'", path.display()));
        }
    }
    let time = |secs: i64, nsecs: i64| rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: time(meta.atime(), meta.atime_nsec()),
        last_modification: time(meta.mtime(), meta.mtime_nsec()),
    };
    rustix::fs::futimens(file, &times)
        .with_context(|| format!("cannot preserve times of '{}'", path.display()))
}
