//! `zcopy cp SRC... DST`: copies files and trees like GNU cp, through the cheapest
//! mechanism that works: a reflink (copy-on-write clone), then the transfer engines
//! (copy_file_range → sendfile → splice → mmap → read-write), moving only the data
//! segments of sparse files. Each file is written under a temporary name beside its
//! target and renamed at the end, so an interrupted copy never leaves a half file
//! under the real name.
//!
//! The flags are GNU cp's: `-a -d -r/-R -p --preserve --no-preserve -n -i -f -u -t -T
//! -L -P -H -v --reflink --sparse`, with GNU's defaults (`-r` copies symlinks as
//! links, otherwise command-line symlinks are followed) and GNU's words on stdout
//! and stderr.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{BufRead, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};
use zcopy::engine::{reflink, seek_data};
use zcopy::{EngineChoice, FdKind, Options, Transfer};

mod part;

use super::parent_dir;
use part::{temp_name, PartFile, Target};

/// Copy files and trees with reflinks, in-kernel copies and sparse awareness (GNU cp's flags)
#[derive(clap::Args)]
pub struct Args {
    /// Sources, then the destination (a directory when there are several sources)
    #[arg(required = true, value_name = "SRC... DST")]
    paths: Vec<PathBuf>,
    /// Copy directories recursively; symlinks inside are copied as links
    #[arg(short = 'r', short_alias = 'R', long)]
    recursive: bool,
    /// Same as -dR --preserve=all
    #[arg(short = 'a', long)]
    archive: bool,
    /// Same as --no-dereference --preserve=links
    #[arg(short = 'd')]
    no_dereference_preserve_links: bool,
    /// Same as --preserve=mode,ownership,timestamps
    #[arg(short = 'p')]
    preserve_default: bool,
    /// Preserve the attributes listed: mode, ownership, timestamps, links, xattr, all
    #[arg(long, value_name = "ATTR_LIST", num_args = 0..=1, require_equals = true,
          default_missing_value = "mode,ownership,timestamps")]
    preserve: Vec<String>,
    /// Do not preserve the attributes listed
    #[arg(long, value_name = "ATTR_LIST")]
    no_preserve: Vec<String>,
    /// Do not overwrite an existing file (overrides an earlier -i)
    #[arg(short = 'n', long, overrides_with = "interactive")]
    no_clobber: bool,
    /// Ask before overwriting (overrides an earlier -n)
    #[arg(short = 'i', long, overrides_with = "no_clobber")]
    interactive: bool,
    /// Accepted for GNU cp: an existing destination is always replaced by a rename,
    /// which needs no permission on the file itself
    #[arg(short = 'f', long)]
    force: bool,
    /// Copy only when the source is newer than the destination, or it is missing
    #[arg(short = 'u', long)]
    update: bool,
    /// Copy all sources into DIRECTORY
    #[arg(short = 't', long, value_name = "DIRECTORY")]
    target_directory: Option<PathBuf>,
    /// Treat DST as a normal file, never as a directory to copy into
    #[arg(short = 'T', long)]
    no_target_directory: bool,
    /// Always follow symbolic links in sources
    #[arg(short = 'L', long, overrides_with_all = ["no_dereference", "command_line_links"])]
    dereference: bool,
    /// Never follow symbolic links in sources
    #[arg(short = 'P', long, overrides_with_all = ["dereference", "command_line_links"])]
    no_dereference: bool,
    /// Follow symbolic links named on the command line only
    #[arg(short = 'H', overrides_with_all = ["dereference", "no_dereference"])]
    command_line_links: bool,
    /// Clone with FICLONE: auto (when the file system can), always (or fail), never;
    /// a bare --reflink means always, as in GNU cp
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true,
          default_value = "auto", default_missing_value = "always")]
    reflink: When,
    /// Keep holes: auto (when the source has holes), always (look for holes), never
    #[arg(long, value_enum, require_equals = false, default_value = "auto")]
    sparse: When,
    /// Engine when not cloning: auto, copy-file-range, sendfile, splice, mmap, read-write
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Write each new file under its final name, as GNU cp does, not as an unnamed
    /// file linked into place when complete: faster for many small files; an error
    /// still removes the file, but a copy killed midway can leave a partial one
    #[arg(long)]
    inplace: bool,
    /// Print what is copied on stdout, GNU's words ('a' -> 'b'); -vv adds the engine
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print only errors (no -v lines, no progress)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show a progress bar on a terminal (bytes of the files copied so far)
    #[arg(long)]
    progress: bool,
}

/// The three-way switches of GNU cp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    Auto,
    Always,
    Never,
}

/// Which attributes are kept, as GNU cp's `--preserve` names them.
#[derive(Clone, Copy, Debug, Default)]
struct Preserve {
    mode: bool,
    ownership: bool,
    timestamps: bool,
    links: bool,
    xattr: bool,
    /// `--no-preserve=mode`: new files get the default mode (0666 or 0777, less
    /// the umask), not the source's.
    default_mode: bool,
    /// From `all` (or `-a`): failing to keep xattrs is not an error.
    quiet_xattr: bool,
}

impl Preserve {
    fn set(&mut self, list: &str, on: bool) -> Result<()> {
        for attr in list.split(',').filter(|a| !a.is_empty()) {
            match attr {
                "mode" => {
                    self.mode = on;
                    self.default_mode = !on;
                }
                "ownership" => self.ownership = on,
                "timestamps" => self.timestamps = on,
                "links" => self.links = on,
                "xattr" => self.xattr = on,
                // SELinux contexts: nothing to keep on a system without SELinux.
                "context" => {}
                "all" => {
                    *self = Preserve {
                        mode: on,
                        ownership: on,
                        timestamps: on,
                        links: on,
                        xattr: on,
                        default_mode: !on,
                        quiet_xattr: on,
                    }
                }
                other => bail!(super::Usage(format!(
                    "invalid argument '{other}' for '--preserve' (valid: mode, ownership, \
                     timestamps, links, xattr, context, all)"
                ))),
            }
        }
        Ok(())
    }
}

/// When symlinks among the sources are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Follow {
    Always,
    Never,
    CommandLine,
}

/// What to do with a destination that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clobber {
    Overwrite,
    Never,
    Ask,
}

/// A directory with at least this many entries has its files copied on two
/// threads: below it, starting a thread costs more than it saves.
const SHARE_OUT_MIN: usize = 64;

/// The copy in progress: the settings resolved from the flags, and what was learnt
/// along the way.
struct Copier {
    recursive: bool,
    follow: Follow,
    clobber: Clobber,
    update: bool,
    preserve: Preserve,
    reflink: When,
    sparse: When,
    engine: EngineChoice,
    /// `--inplace`: new files are written under their final name.
    inplace: bool,
    verbose: u8,
    umask: u32,
    /// Source devices whose file system refused FICLONE: asked once, not per file.
    no_reflink: HashSet<u64>,
    /// With `--preserve=links`: the first copy of each multiply-linked source.
    linked: HashMap<(u64, u64), PathBuf>,
    bar: Option<ProgressBar>,
}

pub fn run(args: Args) -> Result<()> {
    let (srcs, dst, into_dir) = operands(&args)?;
    let mut preserve = Preserve::default();
    if args.archive {
        preserve.set("all", true)?;
    }
    if args.no_dereference_preserve_links {
        preserve.links = true;
    }
    if args.preserve_default {
        preserve.set("mode,ownership,timestamps", true)?;
    }
    for list in &args.preserve {
        preserve.set(list, true)?;
    }
    for list in &args.no_preserve {
        preserve.set(list, false)?;
    }
    let recursive = args.recursive || args.archive;
    let follow = if args.dereference {
        Follow::Always
    } else if args.no_dereference || args.no_dereference_preserve_links || args.archive {
        Follow::Never
    } else if args.command_line_links {
        Follow::CommandLine
    } else if recursive {
        Follow::Never
    } else {
        Follow::Always
    };
    let clobber = if args.no_clobber {
        Clobber::Never
    } else if args.interactive {
        Clobber::Ask
    } else {
        Clobber::Overwrite
    };
    let show_bar = args.progress && !args.quiet && std::io::stderr().is_terminal();
    let mut copier = Copier {
        recursive,
        follow,
        clobber,
        update: args.update,
        preserve,
        reflink: args.reflink,
        sparse: args.sparse,
        engine: args.engine,
        inplace: args.inplace,
        verbose: if args.quiet { 0 } else { args.verbose },
        umask: super::umask(),
        no_reflink: HashSet::new(),
        linked: HashMap::new(),
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
        if let Err(e) = copier.copy_entry(src, &target, true, false, None) {
            if e.downcast_ref::<super::Quiet>().is_none() {
                eprintln!("zcopy: {e:#}");
            }
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

/// The sources, the destination, and whether the sources go into it as a directory.
fn operands(args: &Args) -> Result<(&[PathBuf], PathBuf, bool)> {
    if let Some(dir) = &args.target_directory {
        if args.no_target_directory {
            bail!(super::Usage(
                "cannot combine --target-directory (-t) and --no-target-directory (-T)".into()
            ));
        }
        if !dir.is_dir() {
            bail!("target directory '{}' is not a directory", dir.display());
        }
        return Ok((&args.paths, dir.clone(), true));
    }
    let Some((dst, srcs)) = args.paths.split_last().filter(|(_, srcs)| !srcs.is_empty()) else {
        bail!(super::Usage(format!(
            "missing destination file operand after '{}'",
            args.paths[0].display()
        )));
    };
    if args.no_target_directory {
        if srcs.len() > 1 {
            bail!(super::Usage(format!(
                "extra operand '{}'",
                args.paths[2].display()
            )));
        }
        return Ok((srcs, dst.clone(), false));
    }
    let into_dir = dst.is_dir();
    if srcs.len() > 1 && !into_dir {
        bail!("target '{}' is not a directory", dst.display());
    }
    Ok((srcs, dst.clone(), into_dir))
}

impl Copier {
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
        let follow = match self.follow {
            Follow::Always => true,
            Follow::Never => false,
            Follow::CommandLine => top,
        };
        let (meta, opened) = match at.filter(|_| !follow).and_then(At::open_source) {
            Some((file, meta)) => (meta, Some(file)),
            None => {
                let meta = if follow {
                    std::fs::metadata(src)
                } else {
                    std::fs::symlink_metadata(src)
                }
                .with_context(|| format!("cannot stat '{}'", src.display()))?;
                (meta, None)
            }
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            if !self.recursive {
                bail!("-r not specified; omitting directory '{}'", src.display());
            }
            return self.copy_dir(src, dst, &meta);
        }
        let existing = if fresh {
            None
        } else {
            std::fs::symlink_metadata(dst).ok()
        };
        if let Some(existing) = &existing {
            if !self.may_replace(src, dst, &meta, existing)? {
                return Ok(());
            }
        }
        if self.preserve.links && meta.nlink() > 1 {
            if let Some(first) = self.linked.get(&(meta.dev(), meta.ino())) {
                return link_again(first, dst, existing.is_some());
            }
            self.linked
                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        let how = if kind.is_symlink() {
            self.copy_symlink(src, dst, &meta)?
        } else if kind.is_file() || !self.recursive {
            self.copy_file(src, dst, &meta, existing.as_ref(), opened, at)?
        } else {
            self.copy_special(src, dst, &meta)?
        };
        self.say(src, dst, &how)
    }

    /// Whether an existing `dst` may be replaced by `src` (-n, -i, -u), or an error
    /// when it must not be (the same file, a directory).
    fn may_replace(
        &self,
        src: &Path,
        dst: &Path,
        meta: &Metadata,
        existing: &Metadata,
    ) -> Result<bool> {
        let target = std::fs::metadata(dst).ok();
        let same = |m: &Metadata| m.dev() == meta.dev() && m.ino() == meta.ino();
        if same(existing) || (meta.is_file() && target.as_ref().is_some_and(same)) {
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
        if self.update {
            let newer =
                (meta.mtime(), meta.mtime_nsec()) > (existing.mtime(), existing.mtime_nsec());
            if !newer {
                return Ok(false);
            }
        }
        match self.clobber {
            Clobber::Overwrite => Ok(true),
            Clobber::Never => Ok(false),
            Clobber::Ask => {
                eprint!("zcopy: overwrite '{}'? ", dst.display());
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                Ok(answer.trim_start().starts_with(['y', 'Y']))
            }
        }
    }

    /// `-v`: GNU's line on stdout; `-vv` adds how the file was copied.
    fn say(&self, src: &Path, dst: &Path, how: &str) -> Result<()> {
        if self.verbose == 0 {
            return Ok(());
        }
        let mut line = format!("'{}' -> '{}'", src.display(), dst.display());
        if self.verbose > 1 && !how.is_empty() {
            line.push_str(&format!(" ({how})"));
        }
        line.push('\n');
        let mut out = std::io::stdout().lock();
        match out.write_all(line.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(super::StdoutClosed.into()),
            other => Ok(other?),
        }
    }

    fn copy_dir(&mut self, src: &Path, dst: &Path, meta: &Metadata) -> Result<()> {
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
        let created = match std::fs::metadata(dst) {
            Ok(existing) if existing.is_dir() => false,
            Ok(_) => bail!(
                "cannot overwrite non-directory '{}' with directory '{}'",
                dst.display(),
                src.display()
            ),
            Err(_) => {
                // Created private, opened up below once the contents are in.
                rustix::fs::mkdir(dst, Mode::from_raw_mode(0o700))
                    .with_context(|| format!("cannot create directory '{}'", dst.display()))?;
                self.say(src, dst, "")?;
                true
            }
        };
        // In inode order, as GNU cp reads a directory: on ext4 and xfs that is
        // roughly the order of the files on disk.
        let mut entries = std::fs::read_dir(src)
            .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
            .with_context(|| format!("cannot access '{}'", src.display()))?;
        entries.sort_unstable_by_key(std::os::unix::fs::DirEntryExt::ino);
        let dir = File::open(dst).with_context(|| format!("cannot access '{}'", dst.display()))?;
        let src_dir =
            File::open(src).with_context(|| format!("cannot access '{}'", src.display()))?;
        let dirs = (src_dir.as_fd(), dir.as_fd());
        let mut failed = false;
        if self.may_share_out() && entries.len() >= SHARE_OUT_MIN {
            // Regular files (by d_type, no stat) shared between this thread and a
            // helper, each taking the next file when it is done with one (a file
            // system stalls one creation now and then: halves fixed up front left
            // one thread idle); directories and the rest after, in order.
            let (files, rest): (Vec<_>, Vec<_>) = entries
                .into_iter()
                .partition(|e| e.file_type().is_ok_and(|t| t.is_file()));
            let next = AtomicUsize::new(0);
            let take = || std::iter::from_fn(|| files.get(next.fetch_add(1, Ordering::Relaxed)));
            let mut helper = self.helper();
            let (mine, theirs) = std::thread::scope(|scope| {
                let theirs = scope.spawn(|| helper.copy_entries(dst, take(), created, dirs));
                (self.copy_entries(dst, take(), created, dirs), theirs.join())
            });
            failed |= mine? | theirs.expect("a copy thread does not panic")?;
            entries = rest;
        }
        failed |= self.copy_entries(dst, entries.iter(), created, dirs)?;
        // A directory that was there keeps its mode unless -p, as in GNU cp.
        let mode = if self.preserve.mode {
            meta.mode() & 0o7777
        } else if !created {
            dir.metadata()?.mode() & 0o7777
        } else if self.preserve.default_mode {
            0o777 & !self.umask
        } else {
            meta.mode() & 0o777 & !self.umask
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
                if e.downcast_ref::<super::Quiet>().is_none() {
                    eprintln!("zcopy: {e:#}");
                }
                failed = true;
            }
        }
        Ok(failed)
    }

    /// Whether a directory's files may be copied on two threads: only when the
    /// order of what is printed or asked does not matter (no -v, -i, progress) and
    /// no hard-link map is shared (-a, -d), and there is a second core.
    fn may_share_out(&self) -> bool {
        self.verbose == 0
            && self.clobber != Clobber::Ask
            && !self.preserve.links
            && self.bar.is_none()
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    }

    /// A copier for a helper thread, with the same settings and what was learnt.
    fn helper(&self) -> Copier {
        Copier {
            no_reflink: self.no_reflink.clone(),
            linked: HashMap::new(),
            bar: None,
            ..*self
        }
    }

    fn copy_symlink(&mut self, src: &Path, dst: &Path, meta: &Metadata) -> Result<String> {
        let target = std::fs::read_link(src)
            .with_context(|| format!("cannot read symbolic link '{}'", src.display()))?;
        let temp = temp_name(dst);
        std::os::unix::fs::symlink(&target, &temp)
            .with_context(|| format!("cannot create symbolic link '{}'", dst.display()))?;
        let kept = self.keep_link_attributes(&temp, meta);
        if let Err(e) = kept.and_then(|()| {
            std::fs::rename(&temp, dst)
                .with_context(|| format!("cannot create symbolic link '{}'", dst.display()))
        }) {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok("symbolic link".into())
    }

    /// A symlink's own owner and times, with `-a`.
    fn keep_link_attributes(&self, link: &Path, meta: &Metadata) -> Result<()> {
        if self.preserve.ownership {
            let owner = rustix::fs::chownat(
                CWD,
                link,
                Some(rustix::fs::Uid::from_raw(meta.uid())),
                Some(rustix::fs::Gid::from_raw(meta.gid())),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            if let Err(e) = owner.filter_perm() {
                return Err(e)
                    .with_context(|| format!("cannot preserve ownership of '{}'", link.display()));
            }
        }
        if self.preserve.timestamps {
            rustix::fs::utimensat(CWD, link, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
                .with_context(|| format!("cannot preserve times of '{}'", link.display()))?;
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
            bail!("cannot copy special file '{}'", src.display());
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
        .with_context(|| format!("cannot create special file '{}'", dst.display()))?;
        let kept = self.keep_link_attributes(&temp, meta).and_then(|()| {
            if self.preserve.mode {
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(std::fs::rename(&temp, dst)?)
        });
        if let Err(e) = kept {
            let _ = std::fs::remove_file(&temp);
            return Err(e)
                .with_context(|| format!("cannot create special file '{}'", dst.display()));
        }
        Ok(words.into())
    }

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
            None => File::open(src)
                .with_context(|| format!("cannot open '{}' for reading", src.display()))?,
        };
        // A destination that is a symlink is written through, as GNU cp does: the
        // file it points to is replaced, the link stays.
        let (dst, existing) = match existing {
            Some(e) if e.file_type().is_symlink() => match std::fs::canonicalize(dst) {
                Ok(real) => {
                    let meta = std::fs::metadata(&real).ok();
                    (real, meta)
                }
                Err(_) => bail!("not writing through dangling symlink '{}'", dst.display()),
            },
            other => (dst.to_path_buf(), other.cloned()),
        };
        let dst = dst.as_path();
        if existing.as_ref().is_some_and(|e| !e.is_file()) {
            // A device, FIFO or socket is written into, as GNU cp does: `cp f /dev/null`
            // must never put a regular file in the place of /dev/null.
            let sink = File::options()
                .write(true)
                .truncate(true)
                .open(dst)
                .with_context(|| format!("cannot open '{}' for writing", dst.display()))?;
            let kind = FdKind::of(&sink)?;
            return self.fill(&file, meta, &sink, kind, dst).with_context(|| {
                format!("error copying '{}' to '{}'", src.display(), dst.display())
            });
        }
        // An existing file keeps its mode unless -p, as when GNU cp opens it O_TRUNC.
        let mode = if self.preserve.mode {
            meta.mode() & 0o7777
        } else if let Some(existing) = &existing {
            existing.mode() & 0o7777
        } else if self.preserve.default_mode {
            0o666 & !self.umask
        } else {
            meta.mode() & 0o777 & !self.umask
        };
        // By name in the open target directory, unless a symlink led elsewhere.
        let at = at.filter(|_| existing.is_none()).map(At::target);
        let temp = PartFile::create(dst, at, mode & 0o777, self.inplace && existing.is_none())
            .with_context(|| format!("cannot create regular file '{}'", dst.display()))?;
        let how = self
            .fill(&file, meta, temp.as_file(), FdKind::File, dst)
            .with_context(|| format!("error copying '{}' to '{}'", src.display(), dst.display()))?;
        let created_as = mode & 0o777 & !self.umask;
        self.keep_attributes(&file, temp.as_file(), dst, meta, mode, created_as)?;
        if let Some(existing) = existing.filter(|_| !self.preserve.ownership) {
            // Root replacing someone's file gives the new one back to its owner.
            if existing.uid() != meta.uid() || existing.gid() != meta.gid() {
                let _ = rustix::fs::fchown(
                    temp.as_file(),
                    Some(rustix::fs::Uid::from_raw(existing.uid())),
                    Some(rustix::fs::Gid::from_raw(existing.gid())),
                );
            }
        }
        temp.persist(dst, at)
            .with_context(|| format!("cannot create regular file '{}'", dst.display()))?;
        Ok(how)
    }

    /// Fills `sink` (a new file, or a device written in place) with the contents of
    /// `src` and says how; `dst` names it on the progress bar.
    fn fill(
        &mut self,
        src: &File,
        meta: &Metadata,
        sink: &File,
        sink_kind: FdKind,
        dst: &Path,
    ) -> Result<String> {
        let mut skipped = Vec::new();
        let regular = meta.is_file();
        // Clones and holes need a regular file at both ends.
        let sparse_sink = regular && sink_kind == FdKind::File;
        if sparse_sink && self.reflink != When::Never && !self.no_reflink.contains(&meta.dev()) {
            match reflink::clone_file(src, sink) {
                Ok(()) => return Ok("reflink".into()),
                Err(e) if self.reflink == When::Always => {
                    return Err(e).context("failed to clone (--reflink=always)");
                }
                Err(e) => {
                    // EOPNOTSUPP: the source's file system cannot clone at all, to any
                    // destination: not asked again. EXDEV depends on the destination.
                    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                        self.no_reflink.insert(meta.dev());
                    }
                    skipped.push(format!("reflink: {e}"));
                }
            }
        }
        let src_kind = if regular {
            FdKind::File
        } else {
            FdKind::of(src)?
        };
        let options = Options {
            engine: self.engine,
            rusage: false,
            ..Options::default()
        };
        // Holes are looked for only where the size allows them; a size that lies
        // (procfs, sysfs) is never trusted for the length: copies run to end of file.
        let segments = match self.sparse {
            When::Always if sparse_sink => Some(seek_data::data_segments(src, meta.len())?),
            When::Auto
                if regular && meta.blocks() * 512 < meta.len() && seek_data::has_holes(src)? =>
            {
                Some(seek_data::data_segments(src, meta.len())?)
            }
            _ => None,
        }
        .filter(|segments| segments.len() != 1 || segments[0] != (0..meta.len()));
        let mut engine = None;
        let mut record = |report: zcopy::Report, skipped: &mut Vec<String>| {
            if engine.is_none() {
                skipped.extend(report.skipped.iter().map(|s| s.to_string()));
                engine = Some(report.engine);
            }
        };
        let sparse = segments.is_some();
        let count = segments.as_ref().map_or(0, Vec::len);
        match segments {
            None => {
                let mut transfer = Transfer::with_kinds(src, src_kind, sink, sink_kind, options)?;
                self.run(&mut transfer, dst)?;
                record(transfer.report(), &mut skipped);
            }
            Some(segments) => {
                for segment in &segments {
                    rustix::fs::seek(sink, rustix::fs::SeekFrom::Start(segment.start))?;
                    let options = Options {
                        offset: segment.start,
                        len: Some(segment.end - segment.start),
                        ..options
                    };
                    let mut transfer =
                        Transfer::with_kinds(src, src_kind, sink, sink_kind, options)?;
                    self.run(&mut transfer, dst)?;
                    record(transfer.report(), &mut skipped);
                }
                rustix::fs::ftruncate(sink, meta.len())?;
            }
        }
        let mut how = engine.map_or("empty", |e| e.name()).to_string();
        if sparse {
            let plural = if count == 1 { "" } else { "s" };
            how.push_str(&format!(", {count} data segment{plural}, holes kept"));
        }
        if !skipped.is_empty() {
            how.push_str(&format!("; skipped {}", skipped.join(", ")));
        }
        Ok(how)
    }

    /// Runs a transfer, moving the progress bar along when there is one.
    fn run(&self, transfer: &mut Transfer<'_>, dst: &Path) -> Result<()> {
        let Some(bar) = &self.bar else {
            crate::progress::run(transfer, None, false)?;
            return Ok(());
        };
        bar.set_message(dst.display().to_string());
        let before = bar.position();
        loop {
            match transfer.run_some(16 << 20)? {
                zcopy::Status::More => bar.set_position(before + transfer.moved()),
                zcopy::Status::Done => break,
                zcopy::Status::WouldBlock => bail!("timed out"),
            }
        }
        bar.set_position(before + transfer.moved());
        Ok(())
    }

    /// Mode, and with `--preserve`: ownership, xattrs and times, in the order that
    /// keeps each (chown clears set-user-ID bits, so mode comes after it; times last).
    fn keep_attributes(
        &self,
        src: &File,
        file: &File,
        path: &Path,
        meta: &Metadata,
        mode: u32,
        current: u32,
    ) -> Result<()> {
        if self.preserve.ownership {
            let owner = rustix::fs::fchown(
                file,
                Some(rustix::fs::Uid::from_raw(meta.uid())),
                Some(rustix::fs::Gid::from_raw(meta.gid())),
            );
            if let Err(e) = owner.filter_perm() {
                return Err(e)
                    .with_context(|| format!("cannot preserve ownership of '{}'", path.display()));
            }
        }
        if self.preserve.xattr {
            if let Err(e) = copy_xattrs(src, file) {
                if !self.preserve.quiet_xattr {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot preserve extended attributes of '{}'",
                            path.display()
                        )
                    });
                }
            }
        }
        // `current` is the mode the file was made with: set it only where that
        // differs (the umask took something away, a directory was made private).
        if current != mode || (self.preserve.ownership && mode & 0o6000 != 0) {
            rustix::fs::fchmod(file, Mode::from_raw_mode(mode))
                .with_context(|| format!("cannot set permissions of '{}'", path.display()))?;
        }
        if self.preserve.timestamps {
            rustix::fs::futimens(file, &timestamps(meta))
                .with_context(|| format!("cannot preserve times of '{}'", path.display()))?;
        }
        Ok(())
    }
}

/// `--preserve=links`: `dst` becomes another name of the file already copied to `first`.
fn link_again(first: &Path, dst: &Path, replace: bool) -> Result<()> {
    if replace {
        std::fs::remove_file(dst).with_context(|| format!("cannot remove '{}'", dst.display()))?;
    }
    std::fs::hard_link(first, dst).with_context(|| {
        format!(
            "cannot create hard link '{}' to '{}'",
            dst.display(),
            first.display()
        )
    })
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

/// Turns `EPERM` from chown into success: only root may give files away, and GNU
/// cp keeps going too.
trait FilterPerm {
    fn filter_perm(self) -> rustix::io::Result<()>;
}

impl FilterPerm for rustix::io::Result<()> {
    fn filter_perm(self) -> rustix::io::Result<()> {
        match self {
            Err(rustix::io::Errno::PERM) => Ok(()),
            other => other,
        }
    }
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
