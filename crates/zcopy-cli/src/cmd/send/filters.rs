//! send's filter flags (`--exclude`, `--include`, `--exclude-from`,
//! `--include-from`, `-f/--filter`), kept in the order they were given, since
//! the first rule that matches decides, as in rsync.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use clap::{Arg, ArgAction, ArgMatches, Command};
use zcopy_wire::filter::{Action, Rules};

/// The filter flags, in command-line order.
#[derive(Debug, Default)]
pub struct Filters(Vec<(Flag, OsString)>);

#[derive(Clone, Copy, Debug)]
enum Flag {
    Exclude,
    Include,
    ExcludeFrom,
    IncludeFrom,
    Filter,
}

const FLAGS: [(&str, Option<char>, Flag, &str, &str); 5] = [
    ("exclude", None, Flag::Exclude, "PATTERN", "Leave out what matches PATTERN (rsync's rules: a leading / anchors it to the transfer's root, a trailing / matches directories only, * ** ? [..])"),
    ("include", None, Flag::Include, "PATTERN", "Keep what matches PATTERN (the first matching --include/--exclude decides)"),
    ("exclude-from", None, Flag::ExcludeFrom, "FILE", "Read exclude patterns from FILE, one a line (# and ; start comments)"),
    ("include-from", None, Flag::IncludeFrom, "FILE", "Read include patterns from FILE, one a line"),
    ("filter", Some('f'), Flag::Filter, "RULE", "A filter rule: '- PATTERN', '+ PATTERN', or ':- .gitignore' for per-directory ignore files"),
];

impl Filters {
    /// The rules, in order; a rule or file that does not read is a usage error.
    pub fn rules(&self) -> anyhow::Result<Rules> {
        let mut rules = Rules::new();
        for (flag, value) in &self.0 {
            let bytes = value.as_bytes();
            match flag {
                Flag::Exclude => rules.push(Action::Exclude, bytes),
                Flag::Include => rules.push(Action::Include, bytes),
                Flag::ExcludeFrom => rules.push_from(Action::Exclude, Path::new(value))?,
                Flag::IncludeFrom => rules.push_from(Action::Include, Path::new(value))?,
                Flag::Filter => rules
                    .push_filter(bytes)
                    .map_err(|e| super::super::Usage(format!("--filter: {e}")))?,
            }
        }
        Ok(rules)
    }
}

impl clap::FromArgMatches for Filters {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Filters, clap::Error> {
        let mut given = Vec::new();
        for (id, _, flag, _, _) in FLAGS {
            if let (Some(values), Some(at)) = (matches.get_raw(id), matches.indices_of(id)) {
                given.extend(at.zip(values).map(|(i, v)| (i, flag, v.to_os_string())));
            }
        }
        given.sort_by_key(|&(i, _, _)| i);
        Ok(Filters(given.into_iter().map(|(_, f, v)| (f, v)).collect()))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Filters::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for Filters {
    fn augment_args(mut cmd: Command) -> Command {
        for (id, short, _, value, help) in FLAGS {
            let mut arg = Arg::new(id)
                .long(id)
                .value_name(value)
                .help(help)
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(OsString));
            if let Some(c) = short {
                arg = arg.short(c);
            }
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Filters::augment_args(cmd)
    }
}
