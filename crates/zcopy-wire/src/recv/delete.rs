//! `--delete`: what the receiver removes from the directories a mirror sent,
//! because the sender does not have it.
//!
//! Every directory is opened beneath the output directory through no symlink
//! (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`), and each entry is looked at
//! and removed relative to its open directory (`fstatat`, `unlinkat`, a
//! subdirectory opened with `O_NOFOLLOW`): a symlink is removed, never followed,
//! so nothing outside the directory is touched. An entry that changes its kind
//! between the look and the removal is removed as what it has become. Entries
//! the rules exclude are kept (unless `--delete-excluded`), and so is a directory
//! that still holds one; partial files of interrupted transfers are kept for
//! their resume.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::filter::Filter;
use crate::partial::Root;

/// What a deletion pass works from.
pub(super) struct Pass<'a> {
    pub(super) root: &'a Root,
    /// Every name the sender has (or will send), and whether it is a directory.
    pub(super) names: &'a HashMap<Vec<u8>, bool>,
    /// `None`: excluded files are deleted too.
    pub(super) filter: Option<&'a mut Filter>,
    pub(super) dry_run: bool,
    /// Told `(name, is_dir)` of each entry removed (or that would be).
    pub(super) removed: &'a mut dyn FnMut(&[u8], bool) -> io::Result<()>,
}

impl Pass<'_> {
    /// Removes what directory `rel` holds that the sender has not; a directory
    /// that is not there, or is reached only through a symlink, holds nothing.
    pub(super) fn directory(&mut self, rel: &[u8]) -> io::Result<()> {
        let dir = match self.root.open_dir(rel) {
            Ok(dir) => dir,
            Err(e)
                if matches!(
                    Errno::from_io_error(&e),
                    Some(Errno::NOENT | Errno::LOOP | Errno::NOTDIR | Errno::XDEV)
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        for name in listing(&dir)? {
            if is_partial(&name) {
                continue;
            }
            let child = [rel, b"/", &name[..]].concat();
            self.entry(&dir, &name, &child)?;
        }
        Ok(())
    }

    /// Removes `name` of `dir` (named `rel` in the transfer) unless the sender
    /// has it (as a directory if it is one here) or the rules protect it; a
    /// directory with all it holds.
    fn entry(&mut self, dir: &File, name: &[u8], rel: &[u8]) -> io::Result<()> {
        let is_dir = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => FileType::from_raw_mode(st.st_mode) == FileType::Directory,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if self.names.get(rel) == Some(&is_dir) {
            return Ok(());
        }
        if let Some(filter) = self.filter.as_deref_mut() {
            let path = self.root.path().join(OsStr::from_bytes(rel));
            if filter.excluded(rel, is_dir, &path) {
                return Ok(());
            }
        }
        if is_dir {
            self.tree(dir, name, rel)
        } else {
            self.file(dir, name, rel)
        }
    }

    fn file(&mut self, dir: &File, name: &[u8], rel: &[u8]) -> io::Result<()> {
        if !self.dry_run {
            match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOENT) => return Ok(()),
                // It became a directory since it was looked at.
                Err(Errno::ISDIR | Errno::PERM) => return self.tree(dir, name, rel),
                Err(e) => return Err(e.into()),
            }
        }
        (self.removed)(rel, false)
    }

    /// A directory's content, deepest first, then the directory itself.
    fn tree(&mut self, dir: &File, name: &[u8], rel: &[u8]) -> io::Result<()> {
        let sub = match rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => return Ok(()),
            // It became a symlink or a file since it was looked at.
            Err(Errno::LOOP | Errno::NOTDIR) => return self.file(dir, name, rel),
            Err(e) => return Err(e.into()),
        };
        for child in listing(&sub)? {
            let child_rel = [rel, b"/", &child[..]].concat();
            self.entry(&sub, &child, &child_rel)?;
        }
        if !self.dry_run {
            match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                Ok(()) => {}
                // It holds what the rules protect, or what arrived meanwhile.
                Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOENT) => return Ok(()),
                Err(Errno::NOTDIR) => return self.file(dir, name, rel),
                Err(e) => return Err(e.into()),
            }
        }
        (self.removed)(rel, true)
    }
}

/// The names in an open directory but `.` and `..`, sorted bytewise.
fn listing(dir: &File) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// A partial file or manifest of an interrupted transfer (`.NAME.zcopy-part`).
fn is_partial(name: &[u8]) -> bool {
    name.starts_with(b".") && (name.ends_with(b".zcopy-part") || name.ends_with(b".zcopy-manifest"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Action, Rules};

    /// A pass over `root` with the sender having only directory `t`.
    fn run(
        root: &Root,
        filter: Option<&mut Filter>,
        act: impl FnOnce(&mut Pass<'_>),
    ) -> Vec<String> {
        let names = HashMap::from([(b"t".to_vec(), true)]);
        let mut said = Vec::new();
        let mut removed = |name: &[u8], is_dir: bool| {
            said.push(format!(
                "{}{}",
                String::from_utf8_lossy(name),
                if is_dir { "/" } else { "" }
            ));
            Ok(())
        };
        let mut pass = Pass {
            root,
            names: &names,
            filter,
            dry_run: false,
            removed: &mut removed,
        };
        act(&mut pass);
        said
    }

    #[test]
    fn symlinks_are_removed_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (out, outside) = (dir.path().join("out"), dir.path().join("outside"));
        std::fs::create_dir_all(out.join("t")).unwrap();
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        std::fs::write(outside.join("deep/precious"), b"p").unwrap();
        std::os::unix::fs::symlink(&outside, out.join("t/link")).unwrap();
        let root = Root::open(&out, None).unwrap();
        let said = run(&root, None, |pass| pass.directory(b"t").unwrap());
        assert_eq!(said, ["t/link"]);
        assert!(std::fs::symlink_metadata(out.join("t/link")).is_err());
        assert!(outside.join("deep/precious").exists());
        // A directory sent that is a symlink here is not listed through it.
        std::os::unix::fs::symlink(&outside, out.join("t2")).unwrap();
        let said = run(&root, None, |pass| pass.directory(b"t2").unwrap());
        assert!(said.is_empty());
        assert!(outside.join("deep/precious").exists());
    }

    #[test]
    fn an_entry_that_changed_kind_is_removed_as_what_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let (out, outside) = (dir.path().join("out"), dir.path().join("outside"));
        std::fs::create_dir_all(out.join("t/was_file")).unwrap();
        std::fs::write(out.join("t/was_file/inner"), b"i").unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("precious"), b"p").unwrap();
        std::os::unix::fs::symlink(&outside, out.join("t/was_dir")).unwrap();
        let root = Root::open(&out, None).unwrap();
        let t = root.open_dir(b"t").unwrap();
        // Looked at as a file, a directory by the time it is removed.
        let said = run(&root, None, |pass| {
            pass.file(&t, b"was_file", b"t/was_file").unwrap();
            // Looked at as a directory, a symlink to one outside by then.
            pass.tree(&t, b"was_dir", b"t/was_dir").unwrap();
        });
        assert_eq!(said, ["t/was_file/inner", "t/was_file/", "t/was_dir"]);
        assert!(!out.join("t/was_file").exists());
        assert!(std::fs::symlink_metadata(out.join("t/was_dir")).is_err());
        assert!(outside.join("precious").exists());
    }

    #[test]
    fn excluded_files_are_kept_and_so_are_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("t/d")).unwrap();
        for f in ["t/x.keep", "t/d/a.keep", "t/d/b", "t/y"] {
            std::fs::write(out.join(f), b"f").unwrap();
        }
        let mut rules = Rules::new();
        rules.push(Action::Exclude, b"*.keep");
        let mut filter = Filter::new(rules);
        let root = Root::open(&out, None).unwrap();
        let mut said = run(&root, Some(&mut filter), |pass| {
            pass.directory(b"t").unwrap()
        });
        said.sort();
        assert_eq!(said, ["t/d/b", "t/y"]);
        assert!(out.join("t/x.keep").exists() && out.join("t/d/a.keep").exists());
    }
}
