//! Flags that several subcommands take, each defined once and taken into a
//! command's `Args` with `#[command(flatten)]`, so that their spelling, help and
//! parsing cannot drift apart between commands. What a flag means for one command
//! in particular (which lines `-v` adds) is in that command's own help.

use std::ffi::OsString;
use std::path::PathBuf;

/// `-q/--quiet` and `-v/--verbose`: how much a command says on stderr.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Verbosity {
    /// Print nothing but errors
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say what is done as it is done: each file, connection or request
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl Verbosity {
    /// Whether `-v` was given (at least once).
    pub fn verbose(&self) -> bool {
        self.verbose > 0
    }
}

/// `--json`: the measurements as JSON on stdout.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Json {
    /// Print one JSON object with the measurements on stdout, one per transfer or
    /// download
    #[arg(long)]
    pub json: bool,
}

/// `--secret-file`: the secret both ends of a framed session know.
#[derive(clap::Args, Clone, Debug)]
pub struct Secret {
    /// The shared secret: the first line of FILE (or set ZCOPY_SECRET). A receiver
    /// asks every sender to prove it (off loopback it makes a one-time secret when
    /// none is given), a sender proves it; the session is then TLS-encrypted
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
}

/// `--timeout`: how long a transfer may make no progress.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Stall {
    /// End the transfer when it makes no progress for this many seconds (0: never)
    #[arg(long, value_name = "S", default_value = "30")]
    pub timeout: f64,
}

/// `-e/--rsh`, `--zcopy-path` and `--ssh-data`: how `send` and `recv` reach a
/// `[user@]host:PATH` operand (see `zcopy_wire::remote`).
#[derive(clap::Args, Clone, Debug)]
pub struct Ssh {
    /// The remote shell that starts zcopy for a [user@]host: operand, with its
    /// options (as rsync's -e: `-e "ssh -p 2222 -i KEY"`)
    #[arg(short = 'e', long = "rsh", value_name = "CMD", default_value = "ssh")]
    pub rsh: OsString,
    /// The zcopy program on the remote host, as rsync's --rsync-path (it may be
    /// `"sudo zcopy"`)
    #[arg(long, value_name = "PROGRAM", default_value = "zcopy")]
    pub zcopy_path: OsString,
    /// Carry the data inside the ssh channel, where no port of the remote host is
    /// reachable (slower: ssh's cipher and window); by default only the start
    /// goes through ssh and the data over direct TCP with TLS
    #[arg(long)]
    pub ssh_data: bool,
    /// The remote side of a transfer over ssh (zcopy passes it; not for hand use)
    #[arg(long, hide = true)]
    pub ssh_serve: bool,
}

/// rsync's attribute flags (`-a -p -t -l -g -H -X -A -D --numeric-ids`): what
/// `send` keeps, and what a pull over ssh asks the remote sender to keep.
/// `-o/--owner` is each command's own (`recv -o` is its output).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct Attributes {
    /// Archive mode, as rsync's -a: -rlptgoD (add -H -X -A for hard links,
    /// xattrs and ACLs)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Keep the set-uid, set-gid and sticky bits too, where the session has a
    /// secret (modes travel anyway; -a implies it)
    #[arg(short = 'p', long)]
    pub perms: bool,
    /// Keep modification times (accepted for rsync habits: they always travel)
    #[arg(short = 't', long)]
    pub times: bool,
    /// Copy symlinks as symlinks (accepted for rsync habits: they always are)
    #[arg(short = 'l', long)]
    pub links: bool,
    /// Keep the group, by name (as root any group; else one the receiving
    /// user is in)
    #[arg(short = 'g', long)]
    pub group: bool,
    /// Owners and groups by number, not by name
    #[arg(long)]
    pub numeric_ids: bool,
    /// Names of one file arrive as hard links of one another, the file sent once
    #[arg(short = 'H', long)]
    pub hard_links: bool,
    /// Keep extended attributes (user.*, and trusted.* and security.* as root)
    #[arg(short = 'X', long)]
    pub xattrs: bool,
    /// Keep POSIX ACLs, named users and groups mapped by name
    #[arg(short = 'A', long)]
    pub acls: bool,
    /// Keep devices (made where the receiver is root) and FIFOs and sockets:
    /// --devices --specials
    #[arg(short = 'D')]
    pub devices_and_specials: bool,
    /// Keep block and character devices
    #[arg(long)]
    pub devices: bool,
    /// Keep FIFOs and sockets
    #[arg(long)]
    pub specials: bool,
}

impl Attributes {
    /// What the sender keeps, with `owner` (`-o/--owner`) given or not.
    pub fn keep(&self, owner: bool) -> zcopy_wire::attrs::Keep {
        let mut keep = zcopy_wire::attrs::Keep::default();
        keep.owner = owner || self.archive;
        keep.group = self.group || self.archive;
        keep.numeric_ids = self.numeric_ids;
        keep.hard_links = self.hard_links;
        keep.xattrs = self.xattrs;
        keep.acls = self.acls;
        keep.devices = self.devices || self.devices_and_specials || self.archive;
        keep.specials = self.specials || self.devices_and_specials || self.archive;
        keep
    }

    /// Whether the set-uid, set-gid and sticky bits are kept (`-p`, `-a`).
    pub fn special_bits(&self) -> bool {
        self.perms || self.archive
    }

    /// The flags that say the same to a remote `zcopy send`.
    pub fn remote_args(&self, owner: bool) -> Vec<OsString> {
        let keep = self.keep(owner);
        let flags = [
            (keep.owner, "--owner"),
            (keep.group, "--group"),
            (keep.numeric_ids, "--numeric-ids"),
            (keep.hard_links, "--hard-links"),
            (keep.xattrs, "--xattrs"),
            (keep.acls, "--acls"),
            (keep.devices, "--devices"),
            (keep.specials, "--specials"),
            (self.special_bits(), "--perms"),
        ];
        flags
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| OsString::from(flag))
            .collect()
    }
}

/// `--protocol N`: speak an older framed protocol, as an older zcopy would
/// (tests of mixed versions).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Protocol {
    /// The framed protocol version to greet with (2 or 3)
    #[arg(long, hide = true, default_value_t = zcopy_wire::frame::VERSION,
          value_parser = clap::value_parser!(u8).range(i64::from(zcopy_wire::frame::MIN_VERSION)..=i64::from(zcopy_wire::frame::VERSION)))]
    pub protocol: u8,
}
