//! cp's flags as GNU cp spells them, and the settings they resolve to (nothing
//! below this module sees clap).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use zcopy::EngineChoice;

use super::backup::{self, Backup, Control};

/// Copy files and trees with reflinks, in-kernel copies and sparse awareness (GNU cp's flags)
#[derive(clap::Args)]
// As GNU's getopt: a flag given twice takes the last value (`--reflink --reflink`),
// and a long option may be shortened to any prefix that names only it (`--b`).
#[command(args_override_self = true, infer_long_args = true)]
pub struct Args {
    /// Sources, then the destination (a directory when there are several sources)
    #[arg(value_name = "SRC... DST")]
    pub(super) paths: Vec<PathBuf>,
    /// Copy directories recursively; symlinks inside are copied as links
    #[arg(short = 'r', short_alias = 'R', long)]
    recursive: bool,
    /// Same as -dR --preserve=all
    #[arg(short = 'a', long, action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "a", value_parser = in_order)]
    archive: Vec<InOrder>,
    /// Same as --no-dereference --preserve=links
    #[arg(short = 'd', action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "d", value_parser = in_order)]
    no_dereference_preserve_links: Vec<InOrder>,
    /// Same as --preserve=mode,ownership,timestamps
    #[arg(short = 'p', action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "p", value_parser = in_order)]
    preserve_default: Vec<InOrder>,
    /// Preserve the attributes listed: mode, ownership, timestamps, links, xattr, all
    #[arg(long, value_name = "ATTR_LIST", num_args = 0..=1, require_equals = true,
          default_missing_value = "mode,ownership,timestamps", value_parser = in_order)]
    preserve: Vec<InOrder>,
    /// Do not preserve the attributes listed
    #[arg(long, value_name = "ATTR_LIST", value_parser = in_order)]
    no_preserve: Vec<InOrder>,
    /// Copy only the attributes, not the data
    #[arg(long)]
    attributes_only: bool,
    /// Copy the contents of special files (FIFOs, devices) when recursive
    #[arg(long)]
    copy_contents: bool,
    /// Do not overwrite an existing file (overrides an earlier -i)
    #[arg(short = 'n', long, overrides_with = "interactive")]
    no_clobber: bool,
    /// Ask before overwriting (overrides an earlier -n)
    #[arg(short = 'i', long, overrides_with = "no_clobber")]
    interactive: bool,
    /// When an existing destination cannot be opened, remove it and try again
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove each existing destination before copying to it (unlike -f, first)
    #[arg(long)]
    remove_destination: bool,
    /// Make a backup of each existing destination (like --backup, no argument)
    #[arg(short = 'b')]
    backup_default: bool,
    /// Make a backup of each existing destination: none/off, simple/never,
    /// existing/nil, numbered/t (default: $VERSION_CONTROL, else existing)
    #[arg(long, value_name = "CONTROL", num_args = 0..=1, require_equals = true,
          default_missing_value = "")]
    backup: Option<String>,
    /// The suffix of simple backups (default: $SIMPLE_BACKUP_SUFFIX, else ~)
    #[arg(short = 'S', long, value_name = "SUFFIX")]
    suffix: Option<OsString>,
    /// Copy only when the source is newer than the destination, or it is missing
    #[arg(short = 'u')]
    update_older: bool,
    /// When to replace an existing destination: all, none, older (a bare --update)
    #[arg(long = "update", value_name = "UPDATE", value_enum, num_args = 0..=1,
          require_equals = true, default_missing_value = "older")]
    update: Option<Update>,
    /// Hard-link files instead of copying them
    #[arg(short = 'l', long)]
    link: bool,
    /// Make symbolic links instead of copying
    #[arg(short = 's', long)]
    symbolic_link: bool,
    /// Append each source's name, as given, to the target directory
    #[arg(long)]
    parents: bool,
    /// Remove trailing slashes from each source
    #[arg(long)]
    strip_trailing_slashes: bool,
    /// Stay on this file system: directories on others are made, not descended into
    #[arg(short = 'x', long)]
    one_file_system: bool,
    /// Give copies the default SELinux context, or CTX (no SELinux here: nothing
    /// to do; a CTX is ignored with GNU's warning)
    #[arg(short = 'Z', long, value_name = "CTX", num_args = 0..=1, require_equals = true,
          default_missing_value = "")]
    context: Option<String>,
    /// Say how each file was copied (implies -v)
    #[arg(long)]
    debug: bool,
    /// Copy all sources into DIRECTORY
    #[arg(short = 't', long, value_name = "DIRECTORY")]
    pub(super) target_directory: Option<PathBuf>,
    /// Treat DST as a normal file, never as a directory to copy into
    #[arg(short = 'T', long)]
    pub(super) no_target_directory: bool,
    /// Always follow symbolic links in sources
    #[arg(short = 'L', long, action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "L", value_parser = in_order)]
    dereference: Vec<InOrder>,
    /// Never follow symbolic links in sources
    #[arg(short = 'P', long, action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "P", value_parser = in_order)]
    no_dereference: Vec<InOrder>,
    /// Follow symbolic links named on the command line only
    #[arg(short = 'H', action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "H", value_parser = in_order)]
    command_line_links: Vec<InOrder>,
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
    pub(super) progress: bool,
}

/// A flag that GNU applies in the order given, and where it stood among the
/// others: `--no-preserve=mode --preserve=all` keeps the mode, `-aL` follows
/// symlinks and `-La` does not, which separate fields would lose. The value is
/// a list's text, or the flag's letter.
#[derive(Clone, Debug)]
pub struct InOrder(usize, String);

/// clap calls value parsers in command-line order: a counter numbers them.
fn in_order(list: &str) -> Result<InOrder, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    Ok(InOrder(
        NEXT.fetch_add(1, Ordering::Relaxed),
        list.to_string(),
    ))
}

/// The three-way switches of GNU cp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    Auto,
    Always,
    Never,
}

/// `--update`: which existing destinations are replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Update {
    /// Every one (the default).
    All,
    /// None: existing files are skipped, without failing (unlike -n, nothing asked).
    None,
    /// Those older than their source (`-u`).
    Older,
}

/// Which attributes are kept, as GNU cp's `--preserve` names them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Preserve {
    pub mode: bool,
    pub ownership: bool,
    pub timestamps: bool,
    pub links: bool,
    pub xattr: bool,
    /// `--no-preserve=mode`: new files get the default mode (0666 or 0777, less
    /// the umask), not the source's.
    pub default_mode: bool,
    /// From `all` (or `-a`): failing to keep xattrs is not an error.
    pub quiet_xattr: bool,
}

impl Preserve {
    fn set(&mut self, list: &str, on: bool) -> Result<(), String> {
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
                other => {
                    return Err(format!(
                        "invalid argument '{other}' for '--preserve'\nValid arguments are:\n  \
                         - 'mode'\n  - 'timestamps'\n  - 'ownership'\n  - 'links'\n  \
                         - 'context'\n  - 'xattr'\n  - 'all'"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// When symlinks among the sources are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Always,
    Never,
    CommandLine,
}

/// What to do with a destination that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clobber {
    Overwrite,
    Never,
    Ask,
}

/// What is made at each destination: a copy, or a link to the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Make {
    Copy,
    HardLink,
    SymbolicLink,
}

/// The settings a copy runs with, resolved from the flags.
#[derive(Clone, Debug)]
pub struct Settings {
    pub recursive: bool,
    pub follow: Follow,
    pub clobber: Clobber,
    pub update: Update,
    pub preserve: Preserve,
    pub make: Make,
    pub force: bool,
    pub remove_destination: bool,
    pub backup: Option<Backup>,
    pub attributes_only: bool,
    /// Special files met by `-r` are read like regular ones (`--copy-contents`;
    /// always without `-r`).
    pub copy_contents: bool,
    pub one_file_system: bool,
    pub parents: bool,
    pub strip_trailing_slashes: bool,
    /// `POSIXLY_CORRECT`: a dangling destination symlink is written through.
    pub open_dangling: bool,
    pub debug: bool,
    /// `--context=CTX`, which needs SELinux: GNU warns that it is ignored.
    pub context_ignored: bool,
    pub reflink: When,
    pub sparse: When,
    pub engine: EngineChoice,
    /// `--inplace`: new files are written under their final name.
    pub inplace: bool,
    pub verbose: u8,
}

impl Settings {
    /// The settings `args` ask for, or a usage error in GNU's words.
    pub fn from_args(args: &Args) -> Result<Settings, String> {
        // Every flag that sets attributes or symlink following, in command-line order.
        let mut flags: Vec<(&InOrder, Option<bool>)> = Vec::new();
        for (list, preserve) in [
            (&args.archive, None),
            (&args.no_dereference_preserve_links, None),
            (&args.preserve_default, None),
            (&args.dereference, None),
            (&args.no_dereference, None),
            (&args.command_line_links, None),
            (&args.preserve, Some(true)),
            (&args.no_preserve, Some(false)),
        ] {
            flags.extend(list.iter().map(|flag| (flag, preserve)));
        }
        flags.sort_by_key(|(flag, _)| flag.0);
        let mut preserve = Preserve::default();
        let mut follow = None;
        for (flag, list) in flags {
            match (list, flag.1.as_str()) {
                (Some(on), attrs) => preserve.set(attrs, on)?,
                (None, "a") => {
                    preserve.set("all", true)?;
                    follow = Some(Follow::Never);
                }
                (None, "d") => {
                    preserve.links = true;
                    follow = Some(Follow::Never);
                }
                (None, "p") => preserve.set("mode,ownership,timestamps", true)?,
                (None, "L") => follow = Some(Follow::Always),
                (None, "P") => follow = Some(Follow::Never),
                (None, _) => follow = Some(Follow::CommandLine),
            }
        }
        let make = match (args.link, args.symbolic_link) {
            (true, true) => return Err("cannot make both hard and symbolic links".into()),
            (true, false) => Make::HardLink,
            (false, true) => Make::SymbolicLink,
            (false, false) => Make::Copy,
        };
        let recursive = args.recursive || !args.archive.is_empty();
        let follow = follow.unwrap_or(if recursive && make != Make::HardLink {
            Follow::Never
        } else {
            Follow::Always
        });
        let clobber = if args.no_clobber {
            Clobber::Never
        } else if args.interactive {
            Clobber::Ask
        } else {
            Clobber::Overwrite
        };
        let backup = if args.backup_default || args.backup.is_some() || args.suffix.is_some() {
            if clobber == Clobber::Never {
                return Err("options --backup and --no-clobber are mutually exclusive".into());
            }
            let word = match args.backup.as_deref() {
                Some(word) if !word.is_empty() => word.to_string(),
                _ => std::env::var("VERSION_CONTROL").unwrap_or_else(|_| "existing".into()),
            };
            Control::parse(&word)?.map(|control| Backup {
                control,
                suffix: backup::suffix(args.suffix.as_deref()),
            })
        } else {
            None
        };
        if args.reflink == When::Always && args.sparse != When::Auto {
            return Err("--reflink can be used only with --sparse=auto".into());
        }
        let update = match (args.update, args.update_older) {
            (Some(update), _) => update,
            (None, true) => Update::Older,
            (None, false) => Update::All,
        };
        Ok(Settings {
            recursive,
            follow,
            clobber,
            // -n wins over -u, as in GNU.
            update: if clobber == Clobber::Never {
                Update::All
            } else {
                update
            },
            preserve,
            make,
            force: args.force,
            remove_destination: args.remove_destination,
            backup,
            attributes_only: args.attributes_only,
            copy_contents: args.copy_contents || !recursive,
            one_file_system: args.one_file_system,
            parents: args.parents,
            strip_trailing_slashes: args.strip_trailing_slashes,
            open_dangling: std::env::var_os("POSIXLY_CORRECT").is_some(),
            debug: args.debug,
            context_ignored: args.context.as_deref().is_some_and(|c| !c.is_empty()),
            reflink: args.reflink,
            sparse: args.sparse,
            engine: args.engine,
            inplace: args.inplace,
            verbose: match (args.quiet, args.debug) {
                (true, _) => 0,
                (false, true) => args.verbose.max(1),
                (false, false) => args.verbose,
            },
        })
    }
}
