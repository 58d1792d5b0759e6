//! The rules at work on a tree: [`Filter`] asks them about each entry, reading
//! the per-directory ignore files of `:- NAME` rules once per directory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::{Action, Rule, Rules};

/// Rules asked about the entries of one tree on disk (the sender's, or the
/// receiver's when it deletes).
pub struct Filter {
    rules: Rules,
    /// Each directory's ignore file of each `:-` rule (`None`: it has none).
    read: HashMap<(PathBuf, Vec<u8>), Option<Gitignore>>,
}

impl Filter {
    /// A filter of `rules`.
    pub fn new(rules: Rules) -> Filter {
        Filter {
            rules,
            read: HashMap::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Whether the entry named `name` (relative to the transfer's root), found at
    /// `path` on disk, is left out. The per-directory files read are those of the
    /// directories of `path` that are inside the transfer: one per `/` in `name`.
    pub fn excluded(&mut self, name: &[u8], is_dir: bool, path: &Path) -> bool {
        let depth = name.iter().filter(|&&b| b == b'/').count();
        for i in 0..self.rules.rules.len() {
            let decided = match &self.rules.rules[i] {
                Rule::Pattern(action, pattern) => pattern
                    .matches(name, is_dir)
                    .then_some(*action == Action::Exclude),
                Rule::DirMerge(file) => {
                    let file = file.clone();
                    self.per_directory(&file, path, depth, is_dir)
                }
            };
            if let Some(excluded) = decided {
                return excluded;
            }
        }
        false
    }

    /// What the ignore files named `file` in the `depth` directories above
    /// `path` say, the deepest with a say deciding.
    fn per_directory(
        &mut self,
        file: &[u8],
        path: &Path,
        depth: usize,
        is_dir: bool,
    ) -> Option<bool> {
        for dir in path.ancestors().skip(1).take(depth) {
            let key = (dir.to_path_buf(), file.to_vec());
            let ignore = self
                .read
                .entry(key)
                .or_insert_with(|| read_ignore_file(dir, file));
            match ignore.as_ref().map(|i| i.matched(path, is_dir)) {
                Some(Match::Ignore(_)) => return Some(true),
                Some(Match::Whitelist(_)) => return Some(false),
                _ => {}
            }
        }
        None
    }
}

/// The ignore file `name` of directory `dir`, if it has one that reads.
fn read_ignore_file(dir: &Path, name: &[u8]) -> Option<Gitignore> {
    let path = dir.join(OsStr::from_bytes(name));
    if !path.is_file() {
        return None;
    }
    let mut builder = GitignoreBuilder::new(dir);
    if builder.add(&path).is_some() {
        return None;
    }
    builder.build().ok()
}
