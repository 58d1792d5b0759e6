//! `zcopy cp SRC... DST`: copies files and trees like GNU cp, through the cheapest
//! mechanism that works: a reflink (copy-on-write clone), then the transfer engines
//! (copy_file_range → sendfile → splice → mmap → read-write), moving only the data
//! segments of sparse files.
//!
//! A new file is written under no name (or a temporary one) beside its target and
//! linked into place when complete, so an interrupted copy never leaves a half file
//! under the real name. An existing file is opened and truncated, as GNU cp does:
//! its permissions decide whether it may be written, its owner stays and its other
//! hard links see the new contents (`-f` removes it and makes a new one when it
//! cannot be opened; `--remove-destination` removes it first).
//!
//! The flags are GNU cp's, with GNU's defaults (`-r` copies symlinks as links,
//! otherwise command-line symlinks are followed), GNU's checks (the same file, a
//! symlink made by this copy) and GNU's words on stdout and stderr.

mod backup;
mod options;
mod part;
mod words;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{BufRead, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, CWD};
use zcopy::FdKind;

use crate::exit::message;
pub use options::Args;
use options::{Clobber, Follow, Make, Settings, Update, When};
use part::{temp_name, PartFile, Target};
use words::q;
pub use words::Program;

/// A directory with at least this many entries has its files copied on two
/// threads: below it, starting a thread costs more than it saves.
const SHARE_OUT_MIN: usize = 64;

/// The copy in progress: the settings resolved from the flags, and what was learnt
/// along the way.
struct Copier {
    set: Settings,
    program: Program,
    umask: u32,
    /// With `--preserve=links`: the first copy of each multiply-linked source.
    linked: HashMap<(u64, u64), PathBuf>,
    /// With several operands: what this copy made at each top-level destination
    /// (device, inode), so that a later operand is never written through a
    /// symlink, or over a file, that an earlier one just made (GNU's guard).
    made: Option<HashSet<(u64, u64)>>,
    /// With several operands: the sources copied so far (device, inode, name
    /// as given), so a file named twice is copied once, with GNU's warning (two
    /// names of one file are two sources).
    sources: Option<HashSet<(u64, u64, PathBuf)>>,
    /// The device of the directory being copied, for `-x`.
    dir_dev: u64,
    bar: Option<ProgressBar>,
}

/// What an existing destination leaves to do.
enum Existing {
    /// Nothing: it stays (-n, -u, -i answered no, the same file with -l).
    Keep,
    /// Write over it.
    Replace,
    /// It was moved aside (to this backup) or removed: the target is new.
    Gone(Option<PathBuf>),
}

/// cp as the program was invoked: GNU cp's conventions under the name `cp` (a
/// link to zcopy), zcopy's otherwise.
pub fn run(args: Args) -> Result<()> {
    run_as(args, Program::invoked())
}

/// cp speaking as `program`: its prefix on every message, its exit code for
/// usage errors (zcopy's 2 through `super::Usage`, GNU's 1 printed here).
pub fn run_as(args: Args, program: Program) -> Result<()> {
    let usage = |message: String| -> anyhow::Error {
        match program {
            Program::Zcopy => super::Usage(message).into(),
            Program::Cp => {
                let name = program.prefix();
                eprintln!("{name}: {message}\nTry '{name} --help' for more information.");
                super::Quiet.into()
            }
        }
    };
    let set = Settings::from_args(&args).map_err(usage)?;
    let (srcs, dst, into_dir) = match operands(&args, &set) {
        Ok(found) => found,
        Err(Operands::Usage(message)) => return Err(usage(message)),
        Err(Operands::Fail(message)) => {
            eprintln!("{}: {message}", program.prefix());
            bail!(super::Quiet);
        }
    };
    if set.context_ignored {
        eprintln!(
            "{}: warning: ignoring --context; it requires an SELinux-enabled kernel",
            program.prefix()
        );
    }
    let show_bar = args.progress && set.verbose == 0 && std::io::stderr().is_terminal();
    let mut copier = Copier {
        made: (srcs.len() > 1).then(HashSet::new),
        sources: (srcs.len() > 1).then(HashSet::new),
        set,
        program,
        umask: super::umask(),
        linked: HashMap::new(),
        dir_dev: 0,
        bar: show_bar.then(|| {
            ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes} copied {binary_bytes_per_sec} {wide_msg}",
                )
                .expect("a valid template"),
            )
        }),
    };
    let mut failed = false;
    for src in &srcs {
        let result = if copier.set.parents {
            copier.copy_with_parents(src, &dst)
        } else {
            let target = if into_dir {
                dst.join(last_component(src))
            } else {
                dst.clone()
            };
            copier.copy_operand(src, &target)
        };
        if let Err(e) = result {
            if super::is_stdout_closed(&e) {
                return Err(e);
            }
            copier.report(&e);
            failed = true;
        }
    }
    if let Some(bar) = &copier.bar {
        bar.finish_and_clear();
    }
    if failed {
        bail!(super::Quiet);
    }
    Ok(())
}

/// Why the operands do not make a copy.
enum Operands {
    /// Told as a usage error.
    Usage(String),
    /// Told as a failure.
    Fail(String),
}

/// The sources, the destination, and whether the sources go into it as a directory.
fn operands(args: &Args, set: &Settings) -> Result<(Vec<PathBuf>, PathBuf, bool), Operands> {
    let mut paths = args.paths.clone();
    if set.strip_trailing_slashes {
        for path in &mut paths {
            let bytes = path.as_os_str().as_bytes();
            let end = bytes.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
            *path = PathBuf::from(OsStr::from_bytes(&bytes[..end.min(bytes.len())]));
        }
    }
    // GNU's words: "target directory 'x': Not a directory" for -t, "target
    // 'x': ..." for the last operand.
    let is_dir = |label: &str, dir: &Path| {
        let found = match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => std::io::Error::from_raw_os_error(libc::ENOTDIR),
            Err(e) => e,
        };
        let e = anyhow::Error::from(found).context(format!("{label} {}", q(dir)));
        Err(Operands::Fail(message(&e)))
    };
    if let Some(dir) = &args.target_directory {
        if args.no_target_directory {
            return Err(Operands::Fail(
                "cannot combine --target-directory (-t) and --no-target-directory (-T)".into(),
            ));
        }
        if paths.is_empty() {
            return Err(Operands::Usage("missing file operand".into()));
        }
        is_dir("target directory", dir)?;
        return Ok((paths, dir.clone(), true));
    }
    match paths.len() {
        0 => return Err(Operands::Usage("missing file operand".into())),
        1 => {
            return Err(Operands::Usage(format!(
                "missing destination file operand after {}",
                q(&paths[0])
            )))
        }
        _ => {}
    }
    let dst = paths.pop().expect("two operands or more");
    if args.no_target_directory {
        if paths.len() > 1 {
            return Err(Operands::Usage(format!("extra operand {}", q(&dst))));
        }
        return Ok((paths, dst, false));
    }
    let into_dir = std::fs::metadata(&dst).is_ok_and(|m| m.is_dir());
    if set.parents && !into_dir {
        return Err(Operands::Usage(
            "with --parents, the destination must be a directory".into(),
        ));
    }
    if paths.len() > 1 && !into_dir {
        is_dir("target", &dst)?;
    }
    Ok((paths, dst, into_dir))
}

/// `path` split as given, trailing slashes aside, into its directory (`.` when
/// none) and its last component: `s` and `.` for `s/.` (whose contents then go
/// into the target itself, as in GNU cp), where `Path::file_name` would say `s`.
fn split_last(path: &Path) -> (&Path, &OsStr) {
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let slash = bytes[..end].iter().rposition(|&b| b == b'/');
    let name = OsStr::from_bytes(&bytes[slash.map_or(0, |i| i + 1)..end]);
    let dir = match slash {
        None => Path::new("."),
        Some(0) => Path::new("/"),
        Some(i) => Path::new(OsStr::from_bytes(&bytes[..i])),
    };
    (dir, name)
}

fn last_component(path: &Path) -> &OsStr {
    split_last(path).1
}

fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether `a` and `b` are the same directory entry: the same last component
/// in the same directory.
fn same_name(a: &Path, b: &Path) -> bool {
    last_component(a) == last_component(b)
        && match (
            std::fs::metadata(split_last(a).0),
            std::fs::metadata(split_last(b).0),
        ) {
            (Ok(a), Ok(b)) => same_inode(&a, &b),
            _ => false,
        }
}

impl Copier {
    /// Prints a failure on stderr, one line of GNU's words.
    fn report(&self, e: &anyhow::Error) {
        if e.downcast_ref::<super::Quiet>().is_none() {
            eprintln!("{}: {}", self.program.prefix(), message(e));
        }
    }

    /// A command-line operand to `dst`, with GNU's special case of `cp -f -b F F`
    /// (a copy of F made as its backup).
    fn copy_operand(&mut self, src: &Path, dst: &Path) -> Result<()> {
        if let Some(backup) = self.set.backup.as_ref().filter(|_| self.set.force) {
            if src == dst && std::fs::metadata(src).is_ok_and(|m| m.is_file()) {
                let backup = backup.name(dst);
                let saved = self.set.backup.take();
                let copied = self.copy_entry(src, &backup, true, false, None);
                self.set.backup = saved;
                return copied;
            }
        }
        self.copy_entry(src, dst, true, false, None)
    }

    /// `--parents`: `src` to `dir/src`, making the directories between as copies
    /// of the source's (their attributes set once the copy is in, as GNU's
    /// re_protect does, so a read-only one is still written into).
    fn copy_with_parents(&mut self, src: &Path, dir: &Path) -> Result<()> {
        let bytes = src.as_os_str().as_bytes();
        let relative = Path::new(OsStr::from_bytes(
            &bytes[bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len())..],
        ));
        let mut made = Vec::new();
        let mut src_prefix = PathBuf::from(if bytes.starts_with(b"/") { "/" } else { "" });
        let mut dst_prefix = dir.to_path_buf();
        let ancestors: Vec<_> = relative.components().collect();
        for component in ancestors.iter().take(ancestors.len().saturating_sub(1)) {
            src_prefix.push(component);
            dst_prefix.push(component);
            let meta = std::fs::metadata(&src_prefix).and_then(|meta| {
                if meta.is_dir() {
                    Ok(meta)
                } else {
                    Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
                }
            });
            let meta =
                meta.with_context(|| format!("failed to get attributes of {}", q(&src_prefix)))?;
            // One that is there gets the source's attributes again only with -p.
            let current = match std::fs::metadata(&dst_prefix) {
                Ok(existing) if existing.is_dir() && self.set.preserve.mode => {
                    existing.mode() & 0o7777
                }
                Ok(existing) if existing.is_dir() => continue,
                Ok(_) => bail!("{} exists but is not a directory", q(&dst_prefix)),
                Err(_) => {
                    rustix::fs::mkdir(&dst_prefix, Mode::from_raw_mode(0o700))
                        .with_context(|| format!("cannot make directory {}", q(&dst_prefix)))?;
                    if self.set.verbose > 0 {
                        self.print(&format!("{} -> {}\n", q(&src_prefix), q(&dst_prefix)))?;
                    }
                    0o700
                }
            };
            made.push((src_prefix.clone(), dst_prefix.clone(), meta, current));
        }
        let copied = self.copy_operand(src, &dir.join(relative));
        for (src_dir, dst_dir, meta, current) in made.iter().rev() {
            let mode = self.new_mode(meta, 0o777);
            let (src_dir, dir) = (File::open(src_dir)?, File::open(dst_dir)?);
            self.keep_attributes(&src_dir, &dir, dst_dir, meta, mode, *current)?;
        }
        copied
    }

    /// The mode of a new file or directory made as a copy of `meta`: the
    /// source's with `-p`, else the default (`base`, 0666 or 0777) less the
    /// umask with `--no-preserve=mode`, else the source's less the umask.
    fn new_mode(&self, meta: &Metadata, base: u32) -> u32 {
        if self.set.preserve.mode {
            meta.mode() & 0o7777
        } else if self.set.preserve.default_mode {
            base & !self.umask
        } else {
            meta.mode() & 0o777 & !self.umask
        }
    }

    /// Copies `src` to `dst`. `fresh`: `dst`'s directory was made by this copy and
    /// holds only what it put there, so nothing is at `dst` yet and no stat asks.
    /// `at`: a regular file (by its directory entry) in directories held open.
    fn copy_entry(
        &mut self,
        src: &Path,
        dst: &Path,
        top: bool,
        fresh: bool,
        at: Option<At<'_>>,
    ) -> Result<()> {
        let follow = match self.set.follow {
            Follow::Always => true,
            Follow::Never => false,
            Follow::CommandLine => top,
        };
        let opened = at
            .filter(|_| !follow && self.set.make == Make::Copy)
            .and_then(At::open_source);
        let (meta, opened) = match opened {
            Some((file, meta)) => (meta, Some(file)),
            None => {
                let meta = if follow {
                    std::fs::metadata(src)
                } else {
                    std::fs::symlink_metadata(src)
                }
                .with_context(|| format!("cannot stat {}", q(src)))?;
                (meta, None)
            }
        };
        let kind = meta.file_type();
        if kind.is_dir() && !self.set.recursive {
            bail!("-r not specified; omitting directory {}", q(src));
        }
        if let Some(sources) = self.sources.as_mut().filter(|_| top) {
            let again = !sources.insert((meta.dev(), meta.ino(), src.to_path_buf()));
            if again && !kind.is_dir() && self.set.backup.is_none() {
                eprintln!(
                    "{}: warning: source file {} specified more than once",
                    self.program.prefix(),
                    q(src)
                );
                return Ok(());
            }
        }
        let as_regular =
            kind.is_file() || (self.set.copy_contents && !kind.is_dir() && !kind.is_symlink());
        // A regular file is written through a symlink at the target, so the target
        // is stat'ed; anything else replaces what is there, so it is lstat'ed.
        let by_lstat = !as_regular
            || self.set.make != Make::Copy
            || self.set.backup.is_some()
            || self.set.remove_destination;
        let mut existing = None;
        let mut backup = None;
        if !fresh {
            let found = if by_lstat {
                std::fs::symlink_metadata(dst)
            } else {
                std::fs::metadata(dst)
            };
            existing = match found {
                Ok(found) => Some(found),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                // A symlink loop at the target: -f removes it when it cannot be opened.
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) && self.set.force => {
                    std::fs::symlink_metadata(dst).ok()
                }
                Err(e) => return Err(e).with_context(|| format!("cannot stat {}", q(dst))),
            };
            if let Some(found) = &existing {
                match self.existing(src, dst, &meta, found, top)? {
                    Existing::Keep => return Ok(()),
                    Existing::Replace => {}
                    Existing::Gone(moved) => {
                        backup = moved;
                        existing = None;
                    }
                }
            }
        }
        if let Some(made) = self.made.as_ref().filter(|_| top && !fresh) {
            let link = match existing.as_ref().filter(|_| by_lstat) {
                Some(found) => Some(found.clone()),
                None => std::fs::symlink_metadata(dst).ok(),
            };
            if let Some(link) = link.filter(|l| l.file_type().is_symlink()) {
                if made.contains(&(link.dev(), link.ino())) {
                    bail!(
                        "will not copy {} through just-created symlink {}",
                        q(src),
                        q(dst)
                    );
                }
            }
        }
        if kind.is_dir() {
            let descend = top || !self.set.one_file_system || meta.dev() == self.dir_dev;
            self.copy_dir(src, dst, &meta, descend)?;
            self.note_made(top, dst);
            return Ok(());
        }
        // -v's line comes before the copy, as GNU's does (an error follows it);
        // -vv and --debug say how once the copy is done.
        let say_after = self.set.verbose > 1 || self.set.debug;
        if !say_after {
            self.say(src, dst, backup.as_deref(), "")?;
        }
        // A file reached through a followed symlink may be met again by its own
        // name: with -L (or -H, on the command line) every one is remembered.
        let may_meet_again = meta.nlink() > 1
            || self.set.follow == Follow::Always
            || (top && self.set.follow == Follow::CommandLine);
        if self.set.preserve.links && self.set.make == Make::Copy && may_meet_again {
            if let Some(first) = self.linked.get(&(meta.dev(), meta.ino())) {
                link_again(first, dst, existing.is_some())?;
                self.note_made(top, dst);
                return Ok(());
            }
            self.linked
                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        let how = match self.set.make {
            Make::HardLink => self.hard_link(src, dst, follow)?,
            Make::SymbolicLink => self.symbolic_link(src, dst)?,
            Make::Copy if kind.is_symlink() && existing.is_some() && self.set.attributes_only => {
                bail!(
                    "cannot create symbolic link {} to {}: File exists",
                    q(dst),
                    q(src)
                )
            }
            Make::Copy if kind.is_symlink() => self.copy_symlink(src, dst, &meta)?,
            Make::Copy if as_regular => {
                self.copy_file(src, dst, &meta, existing.as_ref(), opened, at)?
            }
            Make::Copy => self.copy_special(src, dst, &meta)?,
        };
        self.note_made(top, dst);
        if say_after {
            self.say(src, dst, backup.as_deref(), &how)?;
        }
        Ok(())
    }

    /// Remembers what a top-level operand made at `dst` (with several operands).
    fn note_made(&mut self, top: bool, dst: &Path) {
        if let Some(made) = self.made.as_mut().filter(|_| top) {
            if let Ok(meta) = std::fs::symlink_metadata(dst) {
                made.insert((meta.dev(), meta.ino()));
            }
        }
    }

    /// What to do about `dst`, which exists (`found`): GNU's checks in GNU's
    /// order (the same file, -u, -n, -i, a directory against a file, a file
    /// this copy just made), then a backup or a removal where one is due.
    fn existing(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        found: &Metadata,
        top: bool,
    ) -> Result<Existing> {
        let mut keep_anyway = false;
        if self.set.clobber != Clobber::Never {
            match self.same_file_ok(src, meta, dst, found) {
                Some(ok) => keep_anyway = ok,
                None => bail!("{} and {} are the same file", q(src), q(dst)),
            }
        }
        if !meta.is_dir() {
            let skip = match self.set.update {
                Update::All => false,
                Update::None => true,
                Update::Older => {
                    (found.mtime(), found.mtime_nsec()) >= (meta.mtime(), meta.mtime_nsec())
                }
            };
            if skip {
                // The tree kept as it is still keeps its hard links, as with GNU's -u.
                if self.set.preserve.links && meta.nlink() > 1 {
                    match self.linked.get(&(meta.dev(), meta.ino())) {
                        Some(first) if !same_inode(&std::fs::metadata(first)?, found) => {
                            link_again(first, dst, true)?
                        }
                        Some(_) => {}
                        None => {
                            self.linked
                                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
                        }
                    }
                }
                return Ok(Existing::Keep);
            }
            match self.set.clobber {
                Clobber::Never => return Ok(Existing::Keep),
                Clobber::Ask if !self.ask(dst, found)? => return Ok(Existing::Keep),
                _ => {}
            }
        }
        if keep_anyway {
            return Ok(Existing::Keep);
        }
        if !found.is_dir() {
            if meta.is_dir() {
                bail!(
                    "cannot overwrite non-directory {} with directory {}",
                    q(dst),
                    q(src)
                );
            }
            let numbered = self
                .set
                .backup
                .as_ref()
                .is_some_and(|b| b.control == backup::Control::Numbered);
            let just_made = self.made.as_ref().filter(|_| top && !numbered);
            if just_made.is_some_and(|made| made.contains(&(found.dev(), found.ino()))) {
                bail!("will not overwrite just-created {} with {}", q(dst), q(src));
            }
        } else if !meta.is_dir() {
            bail!("cannot overwrite directory {} with non-directory", q(dst));
        }
        let base = last_component(src);
        if let Some(backup) = self.set.backup.as_ref() {
            if base != "." && base != ".." && !found.is_dir() {
                // `cp --backup=simple a~ a` would move the source aside as a's backup.
                let name = backup.name(dst);
                let is_source = backup.control != backup::Control::Numbered
                    && std::fs::symlink_metadata(&name).is_ok_and(|b| same_inode(&b, meta));
                if is_source {
                    bail!(
                        "backing up {} might destroy source;  {} not copied",
                        q(dst),
                        q(src)
                    );
                }
                return Ok(Existing::Gone(backup.make(dst)?));
            }
        }
        // Without data to copy (--attributes-only), what is there is kept.
        let remove = self.set.remove_destination
            || (!self.set.attributes_only
                && ((self.set.preserve.links && found.nlink() > 1)
                    || (self.set.follow == Follow::Never && !meta.is_file())));
        if !found.is_dir() && remove {
            if let Err(e) = std::fs::remove_file(dst) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e).with_context(|| format!("cannot remove {}", q(dst)));
                }
            }
            if self.set.verbose > 0 {
                self.print(&format!("removed {}\n", q(dst)))?;
            }
            return Ok(Existing::Gone(None));
        }
        Ok(Existing::Replace)
    }

    /// GNU's same_file_ok: `None` when copying `src` (`meta`) over `dst`
    /// (`found`, stat'ed or lstat'ed as copy_entry chose) would destroy the data
    /// it copies (a file onto itself, a symlink onto what it points to);
    /// `Some(true)` when there is nothing to do (hard-linking a file to itself).
    fn same_file_ok(
        &self,
        src: &Path,
        meta: &Metadata,
        dst: &Path,
        found: &Metadata,
    ) -> Option<bool> {
        let same = same_inode(meta, found);
        let hard_link = self.set.make == Make::HardLink;
        let backup = self.set.backup.is_some();
        if same && hard_link {
            return Some(true);
        }
        let (src_link, dst_link);
        let same_link;
        if self.set.follow == Follow::Never {
            same_link = same;
            if meta.file_type().is_symlink() && found.file_type().is_symlink() {
                let same_entry = same_name(src, dst);
                if !same_entry && (backup || same_link) {
                    return Some(!backup);
                }
                return (!same_entry).then_some(false);
            }
            src_link = meta.clone();
            dst_link = found.clone();
        } else {
            if !same {
                return Some(false);
            }
            let (Ok(d), Ok(s)) = (
                std::fs::symlink_metadata(dst),
                std::fs::symlink_metadata(src),
            ) else {
                return Some(false);
            };
            same_link = same_inode(&s, &d);
            if s.file_type().is_symlink()
                && d.file_type().is_symlink()
                && self.set.remove_destination
            {
                return Some(false);
            }
            src_link = s;
            dst_link = d;
        }
        let (src_is_link, dst_is_link) = (
            src_link.file_type().is_symlink(),
            dst_link.file_type().is_symlink(),
        );
        if backup {
            if !same_link {
                let breaks = self.set.follow != Follow::Never && src_is_link && !dst_is_link;
                return (!breaks).then_some(false);
            }
            return (!same_name(src, dst)).then_some(false);
        }
        if self.set.remove_destination {
            if dst_is_link {
                return Some(false);
            }
            if same_link && dst_link.nlink() > 1 && !same_name(src, dst) {
                return Some(false);
            }
        }
        if !src_is_link && !dst_is_link {
            if !same_inode(&src_link, &dst_link) {
                return Some(false);
            }
            if hard_link {
                return Some(true);
            }
        }
        if self.set.make == Make::SymbolicLink && dst_is_link {
            return Some(false);
        }
        if self.set.follow == Follow::Never {
            let resolve = |path: &Path, lstat: Metadata| {
                if lstat.file_type().is_symlink() {
                    std::fs::metadata(path).ok()
                } else {
                    Some(lstat)
                }
            };
            let (Some(s), Some(d)) = (resolve(src, src_link), resolve(dst, dst_link)) else {
                return Some(false);
            };
            if !same_inode(&s, &d) {
                return Some(false);
            }
            if hard_link {
                return Some(!dst_is_link);
            }
        }
        None
    }

    /// `-i`: GNU's question on stderr (another for a target this user may not
    /// write), the answer from stdin.
    fn ask(&self, dst: &Path, found: &Metadata) -> Result<bool> {
        let writable = found.file_type().is_symlink()
            || rustix::process::geteuid().is_root()
            || rustix::fs::accessat(CWD, dst, rustix::fs::Access::WRITE_OK, AtFlags::EACCESS)
                .is_ok();
        let (mode, perms) = (found.mode() & 0o7777, words::permissions(found.mode()));
        let question = if writable {
            format!("overwrite {}? ", q(dst))
        } else if self.set.force || self.set.remove_destination {
            format!("replace {}, overriding mode {mode:04o} ({perms})? ", q(dst))
        } else {
            format!(
                "unwritable {} (mode {mode:04o}, {perms}); try anyway? ",
                q(dst)
            )
        };
        eprint!("{}: {question}", self.program.prefix());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(answer.trim_start().starts_with(['y', 'Y']))
    }

    /// Prints `text` on stdout; a closed stdout ends the copy quietly.
    fn print(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(super::StdoutClosed.into()),
            other => Ok(other?),
        }
    }

    /// `-v`: GNU's line on stdout (with the backup made); `-vv` adds how the
    /// file was copied; `--debug`, GNU's line about offload, reflink and holes.
    fn say(&self, src: &Path, dst: &Path, backup: Option<&Path>, how: &str) -> Result<()> {
        if self.set.verbose == 0 {
            return Ok(());
        }
        let mut line = format!("{} -> {}", q(src), q(dst));
        if let Some(backup) = backup {
            line.push_str(&format!(" (backup: {})", q(backup)));
        }
        if self.set.verbose > 1 && !how.is_empty() {
            line.push_str(&format!(" ({how})"));
        }
        line.push('\n');
        if self.set.debug && !how.is_empty() {
            let engine = how.split([',', ';']).next().unwrap_or_default();
            let (offload, reflink) = match engine {
                "reflink" => ("unknown", "yes"),
                "copy-file-range" | "sendfile" | "splice" => ("yes", "unsupported"),
                _ => ("avoided", "unsupported"),
            };
            let holes = if how.contains("holes kept") {
                "SEEK_HOLE"
            } else {
                "no"
            };
            line.push_str(&format!(
                "copy offload: {offload}, reflink: {reflink}, sparse detection: {holes}\n"
            ));
        }
        self.print(&line)
    }

    /// `src`, a directory, to `dst`; its contents only if `descend` (`-x` stops
    /// at a mount point, which is made empty as in GNU cp).
    fn copy_dir(&mut self, src: &Path, dst: &Path, meta: &Metadata, descend: bool) -> Result<()> {
        let abs_src = src
            .canonicalize()
            .with_context(|| format!("cannot access {}", q(src)))?;
        let (parent, name) = split_last(dst);
        let abs_parent = parent
            .canonicalize()
            .with_context(|| format!("cannot create directory {}", q(dst)))?;
        if abs_parent.join(name).starts_with(&abs_src) {
            bail!(
                "cannot copy a directory, {}, into itself, {}",
                q(src),
                q(dst)
            );
        }
        let created = match std::fs::metadata(dst) {
            Ok(existing) if existing.is_dir() => false,
            Ok(_) => bail!(
                "cannot overwrite non-directory {} with directory {}",
                q(dst),
                q(src)
            ),
            Err(_) => {
                // Created private, opened up below once the contents are in.
                rustix::fs::mkdir(dst, Mode::from_raw_mode(0o700))
                    .with_context(|| format!("cannot create directory {}", q(dst)))?;
                self.say(src, dst, None, "")?;
                true
            }
        };
        let dir = File::open(dst).with_context(|| format!("cannot access {}", q(dst)))?;
        let src_dir = File::open(src).with_context(|| format!("cannot access {}", q(src)))?;
        let mut failed = false;
        if descend {
            // In inode order, as GNU cp reads a directory: on ext4 and xfs that is
            // roughly the order of the files on disk.
            let mut entries = std::fs::read_dir(src)
                .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
                .with_context(|| format!("cannot access {}", q(src)))?;
            entries.sort_unstable_by_key(std::os::unix::fs::DirEntryExt::ino);
            let dirs = (src_dir.as_fd(), dir.as_fd());
            let outer_dev = std::mem::replace(&mut self.dir_dev, meta.dev());
            if self.may_share_out() && entries.len() >= SHARE_OUT_MIN {
                // Regular files (by d_type, no stat) shared between this thread and a
                // helper, each taking the next file when it is done with one (a file
                // system stalls one creation now and then: halves fixed up front left
                // one thread idle); directories and the rest after, in order.
                let (files, rest): (Vec<_>, Vec<_>) = entries
                    .into_iter()
                    .partition(|e| e.file_type().is_ok_and(|t| t.is_file()));
                let next = AtomicUsize::new(0);
                let take =
                    || std::iter::from_fn(|| files.get(next.fetch_add(1, Ordering::Relaxed)));
                let mut helper = self.helper();
                let (mine, theirs) = std::thread::scope(|scope| {
                    let theirs = scope.spawn(|| helper.copy_entries(dst, take(), created, dirs));
                    (self.copy_entries(dst, take(), created, dirs), theirs.join())
                });
                failed |= mine? | theirs.expect("a copy thread does not panic")?;
                entries = rest;
            }
            failed |= self.copy_entries(dst, entries.iter(), created, dirs)?;
            self.dir_dev = outer_dev;
        }
        // A directory that was there keeps its mode unless -p, as in GNU cp.
        let mode = if created || self.set.preserve.mode {
            self.new_mode(meta, 0o777)
        } else {
            dir.metadata()?.mode() & 0o7777
        };
        let current = if created { 0o700 } else { mode };
        self.keep_attributes(&src_dir, &dir, dst, meta, mode, current)?;
        if failed {
            bail!(super::Quiet);
        }
        Ok(())
    }

    /// Copies `entries` into `dst` (made by this copy if `fresh`), each error
    /// reported as it happens; `Ok(true)` when any failed. `dirs`: the source
    /// directory and `dst`, open.
    fn copy_entries<'e>(
        &mut self,
        dst: &Path,
        entries: impl Iterator<Item = &'e std::fs::DirEntry>,
        fresh: bool,
        dirs: (BorrowedFd<'_>, BorrowedFd<'_>),
    ) -> Result<bool> {
        let mut failed = false;
        for entry in entries {
            let name = entry.file_name();
            let target = dst.join(&name);
            let at = entry.file_type().is_ok_and(|t| t.is_file()).then_some(At {
                src_dir: dirs.0,
                dst_dir: dirs.1,
                name: &name,
            });
            if let Err(e) = self.copy_entry(&entry.path(), &target, false, fresh, at) {
                if super::is_stdout_closed(&e) {
                    return Err(e);
                }
                self.report(&e);
                failed = true;
            }
        }
        Ok(failed)
    }

    /// Whether a directory's files may be copied on two threads: only when the
    /// order of what is printed or asked does not matter (no -v, -i, progress) and
    /// no hard-link map is shared (-a, -d), and there is a second core.
    fn may_share_out(&self) -> bool {
        self.set.verbose == 0
            && self.set.clobber != Clobber::Ask
            && !self.set.preserve.links
            && self.bar.is_none()
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    }

    /// A copier for a helper thread, with the same settings and what was learnt.
    fn helper(&self) -> Copier {
        Copier {
            set: self.set.clone(),
            linked: HashMap::new(),
            made: None,
            sources: None,
            bar: None,
            ..*self
        }
    }

    /// `-l`: `dst` as another name of `src` (of what it points to, when
    /// following); with `-f`, what is at `dst` is replaced.
    fn hard_link(&self, src: &Path, dst: &Path, follow: bool) -> Result<String> {
        let flags = if follow {
            AtFlags::SYMLINK_FOLLOW
        } else {
            AtFlags::empty()
        };
        let made = self.make_or_replace(dst, |at| rustix::fs::linkat(CWD, src, CWD, at, flags));
        made.with_context(|| format!("cannot create hard link {} to {}", q(dst), q(src)))?;
        Ok("hard link".into())
    }

    /// `-s`: `dst` as a symlink to `src`, which must be absolute unless `dst`
    /// is in the current directory (a relative one would point elsewhere).
    fn symbolic_link(&self, src: &Path, dst: &Path) -> Result<String> {
        if !src.is_absolute() {
            let parent = split_last(dst).0;
            let here = parent == Path::new(".")
                || match (std::fs::metadata("."), std::fs::metadata(parent)) {
                    (Ok(dot), Ok(parent)) => same_inode(&dot, &parent),
                    _ => true,
                };
            if !here {
                bail!(
                    "{}: can make relative symbolic links only in current directory",
                    dst.display()
                );
            }
        }
        let made = self.make_or_replace(dst, |at| rustix::fs::symlink(src, at));
        made.with_context(|| format!("cannot create symbolic link {} to {}", q(dst), q(src)))?;
        Ok("symbolic link".into())
    }

    /// Makes `dst` with `make`; where something is there and `-f` was given,
    /// makes it under a temporary name and renames that over it.
    fn make_or_replace(
        &self,
        dst: &Path,
        make: impl Fn(&Path) -> rustix::io::Result<()>,
    ) -> std::io::Result<()> {
        match make(dst) {
            Err(rustix::io::Errno::EXIST) if self.set.force => {
                let temp = temp_name(dst);
                make(&temp)?;
                std::fs::rename(&temp, dst).inspect_err(|_| {
                    let _ = std::fs::remove_file(&temp);
                })?;
                if self.set.verbose > 0 {
                    let _ = self.print(&format!("removed {}\n", q(dst)));
                }
                Ok(())
            }
            other => Ok(other?),
        }
    }

    fn copy_symlink(&mut self, src: &Path, dst: &Path, meta: &Metadata) -> Result<String> {
        let target = std::fs::read_link(src)
            .with_context(|| format!("cannot read symbolic link {}", q(src)))?;
        let temp = temp_name(dst);
        std::os::unix::fs::symlink(&target, &temp)
            .with_context(|| format!("cannot create symbolic link {}", q(dst)))?;
        let kept = self.keep_link_attributes(&temp, meta);
        if let Err(e) = kept.and_then(|()| {
            std::fs::rename(&temp, dst)
                .with_context(|| format!("cannot create symbolic link {}", q(dst)))
        }) {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok("symbolic link".into())
    }

    /// A symlink's own owner and times, with `-a`.
    fn keep_link_attributes(&self, link: &Path, meta: &Metadata) -> Result<()> {
        if self.set.preserve.ownership {
            let owner = rustix::fs::chownat(
                CWD,
                link,
                Some(rustix::fs::Uid::from_raw(meta.uid())),
                Some(rustix::fs::Gid::from_raw(meta.gid())),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            // Only root may give a file away: GNU cp keeps going too.
            match owner {
                Ok(()) | Err(rustix::io::Errno::PERM) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("failed to preserve ownership for {}", q(link)))
                }
            }
        }
        if self.set.preserve.timestamps {
            rustix::fs::utimensat(CWD, link, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
                .with_context(|| format!("preserving times for {}", q(link)))?;
        }
        Ok(())
    }

    /// A FIFO, device or socket met by `-r`: made again, as GNU cp does (without
    /// `-r` their contents are copied instead, like a regular file's).
    fn copy_special(&mut self, src: &Path, dst: &Path, meta: &Metadata) -> Result<String> {
        let kind = meta.file_type();
        let (file_type, words) = if kind.is_fifo() {
            (FileType::Fifo, "fifo")
        } else if kind.is_char_device() {
            (FileType::CharacterDevice, "character device")
        } else if kind.is_block_device() {
            (FileType::BlockDevice, "block device")
        } else if kind.is_socket() {
            (FileType::Socket, "socket")
        } else {
            bail!("cannot copy special file {}", q(src));
        };
        let temp = temp_name(dst);
        let mode = meta.mode() & 0o7777;
        rustix::fs::mknodat(
            CWD,
            &temp,
            file_type,
            Mode::from_raw_mode(mode & !self.umask),
            meta.rdev(),
        )
        .with_context(|| format!("cannot create special file {}", q(dst)))?;
        let kept = self.keep_link_attributes(&temp, meta).and_then(|()| {
            if self.set.preserve.mode {
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(std::fs::rename(&temp, dst)?)
        });
        if let Err(e) = kept {
            let _ = std::fs::remove_file(&temp);
            return Err(e).with_context(|| format!("cannot create special file {}", q(dst)));
        }
        Ok(words.into())
    }

    /// A regular file (or, without `-r` or with `--copy-contents`, what a special
    /// file reads as) to `dst`. An existing target (`existing`, stat'ed through a
    /// symlink) is opened and truncated, as GNU cp does; a new one is made beside
    /// its name and put in place when complete.
    fn copy_file(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        existing: Option<&Metadata>,
        opened: Option<File>,
        at: Option<At<'_>>,
    ) -> Result<String> {
        let file = match opened {
            Some(file) => file,
            None => {
                let nofollow = if self.set.follow == Follow::Never {
                    OFlags::NOFOLLOW
                } else {
                    OFlags::empty()
                };
                rustix::fs::open(
                    src,
                    OFlags::RDONLY | OFlags::CLOEXEC | nofollow,
                    Mode::empty(),
                )
                .map(File::from)
                .with_context(|| format!("cannot open {} for reading", q(src)))?
            }
        };
        if let Some(existing) = existing {
            if let Some(how) = self.copy_into_existing(src, dst, meta, existing, &file)? {
                return Ok(how);
            }
        }
        let mode = self.new_mode(meta, 0o666);
        // POSIXLY_CORRECT: a dangling symlink at the target is written through
        // (looked for only then: otherwise placing the file finds it).
        let dangling = || std::fs::symlink_metadata(dst).is_ok_and(|m| m.file_type().is_symlink());
        if existing.is_none() && self.set.open_dangling && dangling() {
            let sink = rustix::fs::open(
                dst,
                OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
            )
            .map(File::from)
            .with_context(|| format!("cannot create regular file {}", q(dst)))?;
            let how = self
                .fill(&file, meta, &sink, FdKind::File, dst)
                .map_err(|e| copy_failed(e, src, dst))?;
            self.keep_attributes(&file, &sink, dst, meta, mode, mode & 0o777 & !self.umask)?;
            return Ok(how);
        }
        if dst.as_os_str().as_bytes().ends_with(b"/") {
            // A name with a trailing slash can only be a directory's.
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
                .with_context(|| format!("cannot create regular file {}", q(dst)));
        }
        // By name in the open target directory, unless a symlink led elsewhere.
        let at = at.map(At::target);
        // What is read from a FIFO or a device may never end: its copy is made
        // under its name at once, as GNU cp makes it (a writer may wait to see it).
        let in_place = self.set.inplace || !meta.is_file();
        // A file visible under its name before its owner is set is made private
        // until then, as in GNU cp: the owner-to-be's group must not open it early.
        let private = if in_place && self.set.preserve.ownership {
            0o700
        } else {
            0o777
        };
        let temp = PartFile::create(dst, at, mode & private, in_place)
            .with_context(|| format!("cannot create regular file {}", q(dst)))?;
        let how = if self.set.attributes_only {
            String::new()
        } else {
            self.fill(&file, meta, temp.as_file(), FdKind::File, dst)
                .map_err(|e| copy_failed(e, src, dst))?
        };
        let created_as = mode & private & !self.umask;
        self.keep_attributes(&file, temp.as_file(), dst, meta, mode, created_as)?;
        temp.persist(dst, at).map_err(|e| match e {
            part::Persist::Dangling => {
                anyhow::anyhow!("not writing through dangling symlink {}", q(dst))
            }
            part::Persist::Io(e) => {
                anyhow::Error::from(e).context(format!("cannot create regular file {}", q(dst)))
            }
        })?;
        Ok(how)
    }

    /// Writes `src` into the existing `dst` in place, opened `O_WRONLY|O_TRUNC`
    /// as GNU cp opens it (so its permissions decide, and a device or FIFO is
    /// written into, never replaced). `None` when it could not be opened and was
    /// removed (`-f`), or was gone: then a new file is made.
    fn copy_into_existing(
        &mut self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        existing: &Metadata,
        file: &File,
    ) -> Result<Option<String>> {
        let truncate = if self.set.attributes_only {
            OFlags::empty()
        } else {
            OFlags::TRUNC
        };
        let sink = match rustix::fs::open(
            dst,
            OFlags::WRONLY | OFlags::CLOEXEC | truncate,
            Mode::empty(),
        ) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(_) if self.set.force => {
                // GNU's --force: what cannot be opened is removed and made anew.
                match std::fs::remove_file(dst) {
                    Ok(()) if self.set.verbose > 0 => {
                        self.print(&format!("removed {}\n", q(dst)))?
                    }
                    Ok(()) => {}
                    Err(gone) if gone.kind() == std::io::ErrorKind::NotFound => {}
                    Err(gone) => {
                        return Err(gone).with_context(|| format!("cannot remove {}", q(dst)))
                    }
                }
                return Ok(None);
            }
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot create regular file {}", q(dst)))
            }
        };
        let kind = if existing.is_file() {
            FdKind::File
        } else {
            FdKind::of(&sink)?
        };
        let how = if self.set.attributes_only {
            String::new()
        } else {
            self.fill(file, meta, &sink, kind, dst)
                .map_err(|e| copy_failed(e, src, dst))?
        };
        // An existing file keeps its mode unless -p, as when GNU cp opens it O_TRUNC.
        let current = existing.mode() & 0o7777;
        let mode = if self.set.preserve.mode {
            meta.mode() & 0o7777
        } else {
            current
        };
        if existing.is_file() {
            self.keep_attributes(file, &sink, dst, meta, mode, current)?;
        }
        Ok(Some(how))
    }

    /// Fills `sink` (a new file, or a device written in place) with the contents of
    /// `src` and says how (`zcopy::copy_contents`: a clone, else the engines over
    /// the data segments); `dst` names it on the progress bar.
    fn fill(
        &self,
        src: &File,
        meta: &Metadata,
        sink: &File,
        sink_kind: FdKind,
        dst: &Path,
    ) -> Result<String> {
        let options = zcopy::CopyOptions::default()
            .reflink(match self.set.reflink {
                When::Auto => zcopy::Reflink::Auto,
                When::Always => zcopy::Reflink::Always,
                When::Never => zcopy::Reflink::Never,
            })
            .sparse(match self.set.sparse {
                When::Auto => zcopy::Sparse::Auto,
                When::Always => zcopy::Sparse::Always,
                When::Never => zcopy::Sparse::Never,
            })
            .engine(self.set.engine);
        let bar = self.bar.as_ref();
        if let Some(bar) = bar {
            bar.set_message(dst.display().to_string());
        }
        let before = bar.map_or(0, ProgressBar::position);
        let copied = zcopy::copy_contents(src, meta, sink, sink_kind, &options, &mut |moved| {
            if let Some(bar) = bar {
                bar.set_position(before + moved);
            }
        })
        .map_err(|e| match e {
            zcopy::Error::Clone(e) => anyhow::Error::from(CloneFailed(e)),
            e => e.into(),
        })?;
        Ok(copied.describe())
    }

    /// Mode, and with `--preserve`: ownership, xattrs and times, in the order that
    /// keeps each (chown clears set-user-ID bits, so mode comes after it; times last).
    /// Where the owner cannot be kept (an ordinary user's copy of someone else's
    /// file), the group is kept if it may be and the set-user-ID, set-group-ID
    /// and sticky bits are dropped, as GNU cp drops them: the copy must not run
    /// as its new owner with privileges meant for the old one.
    fn keep_attributes(
        &self,
        src: &File,
        file: &File,
        path: &Path,
        meta: &Metadata,
        mode: u32,
        current: u32,
    ) -> Result<()> {
        let mut mode = mode;
        if self.set.preserve.ownership {
            let (uid, gid) = (
                rustix::fs::Uid::from_raw(meta.uid()),
                rustix::fs::Gid::from_raw(meta.gid()),
            );
            match rustix::fs::fchown(file, Some(uid), Some(gid)) {
                Ok(()) => {}
                Err(rustix::io::Errno::PERM | rustix::io::Errno::INVAL) => {
                    let _ = rustix::fs::fchown(file, None, Some(gid));
                    mode &= !0o7000;
                }
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("failed to preserve ownership for {}", q(path)))
                }
            }
        }
        if self.set.preserve.mode && !self.set.preserve.xattr {
            // GNU keeps ACLs with the mode; --preserve=xattr copies them anyway.
            copy_acls(src, file, meta.is_dir())
                .with_context(|| format!("preserving permissions for {}", q(path)))?;
        }
        if self.set.preserve.xattr {
            if let Err(e) = copy_xattrs(src, file) {
                if !self.set.preserve.quiet_xattr {
                    return Err(std::io::Error::from(e)).with_context(|| {
                        format!("failed to preserve extended attributes for {}", q(path))
                    });
                }
            }
        }
        // `current` is the mode the file was made with: set it only where that
        // differs (the umask took something away, a directory was made private).
        if current != mode || (self.set.preserve.ownership && mode & 0o6000 != 0) {
            rustix::fs::fchmod(file, Mode::from_raw_mode(mode))
                .with_context(|| format!("preserving permissions for {}", q(path)))?;
        }
        if self.set.preserve.timestamps {
            rustix::fs::futimens(file, &timestamps(meta))
                .with_context(|| format!("preserving times for {}", q(path)))?;
        }
        Ok(())
    }
}

/// `--reflink=always` met a file system that cannot clone.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CloneFailed(std::io::Error);

/// A failure while filling `dst` from `src`, in GNU's words for each kind.
fn copy_failed(e: anyhow::Error, src: &Path, dst: &Path) -> anyhow::Error {
    if e.downcast_ref::<CloneFailed>().is_some() {
        e.context(format!("failed to clone {} from {}", q(dst), q(src)))
    } else {
        e.context(format!("error copying {} to {}", q(src), q(dst)))
    }
}

/// `--preserve=links`: `dst` becomes another name of the file already copied to `first`.
fn link_again(first: &Path, dst: &Path, replace: bool) -> Result<()> {
    if replace {
        std::fs::remove_file(dst).with_context(|| format!("cannot remove {}", q(dst)))?;
    }
    std::fs::hard_link(first, dst)
        .with_context(|| format!("cannot create hard link {} to {}", q(dst), q(first)))
}

/// The POSIX ACLs of `src` onto `dst` (the access ACL, and a directory's default
/// one), where it has them and the file systems keep them.
fn copy_acls(src: &File, dst: &File, dir: bool) -> std::io::Result<()> {
    let names: &[&str] = if dir {
        &["system.posix_acl_access", "system.posix_acl_default"]
    } else {
        &["system.posix_acl_access"]
    };
    let mut value = vec![0u8; 4096];
    for name in names {
        let len = match rustix::fs::fgetxattr(src, *name, &mut value[..]) {
            Ok(len) => len,
            Err(rustix::io::Errno::RANGE) => {
                value.resize(rustix::fs::fgetxattr_query(src, *name)?, 0);
                rustix::fs::fgetxattr(src, *name, &mut value[..])?
            }
            // No ACL beyond the mode, or a file system without them.
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::fsetxattr(dst, *name, &value[..len], rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Every extended attribute of `src` onto `dst`.
fn copy_xattrs(src: &File, dst: &File) -> rustix::io::Result<()> {
    let mut names = vec![0u8; rustix::fs::flistxattr_query(src)?];
    let len = rustix::fs::flistxattr(src, &mut names[..])?;
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; rustix::fs::fgetxattr_query(src, name)?];
        let len = rustix::fs::fgetxattr(src, name, &mut value[..])?;
        rustix::fs::fsetxattr(dst, name, &value[..len], rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

fn timestamps(meta: &Metadata) -> Timestamps {
    let time = |secs: i64, nsecs: i64| Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    };
    Timestamps {
        last_access: time(meta.atime(), meta.atime_nsec()),
        last_modification: time(meta.mtime(), meta.mtime_nsec()),
    }
}

/// A regular file (by its directory entry) in a directory being copied, reached by
/// name from the open source and target directories rather than by walking its
/// whole path again (four walks per file, through every component).
#[derive(Clone, Copy)]
struct At<'a> {
    src_dir: BorrowedFd<'a>,
    dst_dir: BorrowedFd<'a>,
    name: &'a OsStr,
}

impl<'a> At<'a> {
    /// The source opened without following a symlink, and its metadata; `None`
    /// if it is no longer a regular file (or cannot be opened: the path-based
    /// code that follows then reports why, by name).
    fn open_source(self) -> Option<(File, Metadata)> {
        use rustix::fs::OFlags;
        let fd = rustix::fs::openat(
            self.src_dir,
            self.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let file = File::from(fd);
        let meta = file.metadata().ok()?;
        meta.is_file().then_some((file, meta))
    }

    fn target(self) -> Target<'a> {
        (self.dst_dir, self.name)
    }
}
