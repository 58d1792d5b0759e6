//! Which entries a mirror leaves out, with rsync's rules: `--exclude PATTERN`,
//! `--include PATTERN`, `--exclude-from FILE` and `--filter RULE`, tried in the
//! order given, the first that matches deciding; an entry no rule matches is kept.
//!
//! A pattern is matched against an entry's name relative to the transfer's root
//! (`send src` sends `src/a/b`), as rsync does for `rsync -a src dst`:
//! - a leading `/` anchors it to the root (`/src/build`); without one it matches
//!   the end of the name at a `/` (`*.o`, `cache/tmp`);
//! - a trailing `/` matches directories only (`build/`);
//! - `*`, `**`, `?` and classes as in [`wildmatch`].
//!
//! An excluded directory is not walked. `--filter ':- NAME'` (or `dir-merge,-
//! NAME`) reads per-directory ignore files named NAME as git does (`.gitignore`,
//! by the `ignore` crate): the file in a directory rules the directory's content,
//! the deepest file that has a say deciding, `!pattern` re-including.
//!
//! The rules travel to the receiver as lines ([`Rules::lines`]), so that
//! `--delete` there keeps the files they exclude.

mod dir_merge;
pub mod wildmatch;

use std::io::{BufRead, BufReader};
use std::path::Path;

pub use dir_merge::Filter;

/// A rule that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `--filter` rule of a kind this implementation does not have.
    #[error("unknown filter rule {0:?} (try '- PATTERN', '+ PATTERN' or ':- .gitignore')")]
    Unknown(String),
    /// A per-directory file named by a path, not a file name.
    #[error("filter rule {0:?}: the per-directory file must be a file name, without /")]
    MergeName(String),
    /// An empty pattern.
    #[error("empty pattern in filter rule {0:?}")]
    Empty(String),
    /// An `--exclude-from` file that could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Leave the entry out.
    Exclude,
    /// Keep the entry (rules after this one are not tried).
    Include,
}

/// One pattern of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    /// The wildcards, without the anchoring `/` and the trailing `/`.
    glob: Vec<u8>,
    anchored: bool,
    dir_only: bool,
}

impl Pattern {
    fn new(text: &[u8]) -> Pattern {
        let dir_only = text.len() > 1 && text.ends_with(b"/");
        let text = if dir_only {
            &text[..text.len() - 1]
        } else {
            text
        };
        let anchored = text.starts_with(b"/");
        Pattern {
            glob: text.strip_prefix(b"/").unwrap_or(text).to_vec(),
            anchored,
            dir_only,
        }
    }

    fn matches(&self, name: &[u8], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        if self.anchored {
            return wildmatch::matches(&self.glob, name);
        }
        // At the start, or after any `/`: the end of the name, at a component.
        wildmatch::matches(&self.glob, name)
            || name
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'/')
                .any(|(i, _)| wildmatch::matches(&self.glob, &name[i + 1..]))
    }

    fn text(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.glob.len() + 2);
        if self.anchored {
            text.push(b'/');
        }
        text.extend_from_slice(&self.glob);
        if self.dir_only {
            text.push(b'/');
        }
        text
    }
}

/// One rule, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    Pattern(Action, Pattern),
    /// Per-directory ignore files of this name.
    DirMerge(Vec<u8>),
}

/// The rules of a transfer, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// No rules: everything is kept.
    pub fn new() -> Rules {
        Rules::default()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `--exclude PATTERN` (or `--include PATTERN` for [`Action::Include`]).
    pub fn push(&mut self, action: Action, pattern: &[u8]) {
        self.rules
            .push(Rule::Pattern(action, Pattern::new(pattern)));
    }

    /// `--filter RULE`: `- PATTERN`, `+ PATTERN`, `exclude PATTERN`, `include
    /// PATTERN`, `:- NAME` or `dir-merge,- NAME`.
    pub fn push_filter(&mut self, rule: &[u8]) -> Result<(), Error> {
        let shown = || String::from_utf8_lossy(rule).into_owned();
        let (head, rest) = match rule.iter().position(|&b| b == b' ' || b == b'_') {
            Some(at) => (&rule[..at], &rule[at + 1..]),
            None => (rule, &b""[..]),
        };
        if rest.is_empty() {
            return Err(Error::Empty(shown()));
        }
        match head {
            b"-" | b"exclude" => self.push(Action::Exclude, rest),
            b"+" | b"include" => self.push(Action::Include, rest),
            // A file name, not a path: the receiver reads it in its own directories.
            b":-" | b"dir-merge,-" if rest.contains(&b'/') || rest == b"." || rest == b".." => {
                return Err(Error::MergeName(shown()))
            }
            b":-" | b"dir-merge,-" => self.rules.push(Rule::DirMerge(rest.to_vec())),
            _ => return Err(Error::Unknown(shown())),
        }
        Ok(())
    }

    /// `--exclude-from FILE` (`--include-from` for [`Action::Include`]; `-`:
    /// standard input): a pattern a line; empty lines and lines starting with `;`
    /// or `#` are skipped; `- ` or `+ ` before a pattern make it a rule, as in rsync.
    pub fn push_from(&mut self, action: Action, path: &Path) -> Result<(), Error> {
        let read = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(BufReader::new(std::fs::File::open(path).map_err(read)?))
        };
        for line in reader.split(b'\n') {
            let line = line.map_err(read)?;
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if line.is_empty() || line.starts_with(b";") || line.starts_with(b"#") {
                continue;
            }
            if line.starts_with(b"- ") || line.starts_with(b"+ ") {
                self.push_filter(line)?;
            } else {
                self.push(action, line);
            }
        }
        Ok(())
    }

    /// The rules as `--filter` lines, in order: how they travel to a receiver.
    pub fn lines(&self) -> Vec<Vec<u8>> {
        self.rules
            .iter()
            .map(|rule| match rule {
                Rule::Pattern(Action::Exclude, p) => [b"- ", &p.text()[..]].concat(),
                Rule::Pattern(Action::Include, p) => [b"+ ", &p.text()[..]].concat(),
                Rule::DirMerge(name) => [b":- ", &name[..]].concat(),
            })
            .collect()
    }

    /// The rules read back from [`Rules::lines`].
    pub fn from_lines(lines: &[Vec<u8>]) -> Result<Rules, Error> {
        let mut rules = Rules::new();
        for line in lines {
            rules.push_filter(line)?;
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod tests;
