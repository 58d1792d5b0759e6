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

mod attributes;
mod backup;
mod existing;
mod file;
mod links;
mod operands;
mod options;
mod part;
mod special;
mod tree;
mod words;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rustix::fs::Mode;

use crate::exit::message;
use existing::Existing;
use file::At;
use links::link_again;
use operands::{last_component, operands, Operands};
pub use options::Args;
use options::{Follow, Make, Settings};
use words::q;
pub use words::Program;

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
        umask: zcopy::place::umask(),
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
}
