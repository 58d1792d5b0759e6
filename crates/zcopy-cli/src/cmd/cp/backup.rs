//! `-b/--backup[=CONTROL]` and `-S/--suffix`: an existing destination is renamed
//! aside before it is replaced, named as GNU's backupfile.c names it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::words::q;
use zcopy::place::parent_dir;

/// The backup names GNU's version control makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// `FILE~` (the suffix).
    Simple,
    /// `FILE.~N~`, one more than the highest there.
    Numbered,
    /// Numbered where numbered backups exist already, else simple.
    Existing,
}

impl Control {
    /// `--backup=CONTROL` (or `VERSION_CONTROL`), with GNU's words and
    /// unambiguous abbreviations; `None` for `none` and `off`.
    pub fn parse(word: &str) -> Result<Option<Control>, String> {
        const WORDS: [(&str, Option<Control>); 8] = [
            ("none", None),
            ("off", None),
            ("simple", Some(Control::Simple)),
            ("never", Some(Control::Simple)),
            ("existing", Some(Control::Existing)),
            ("nil", Some(Control::Existing)),
            ("numbered", Some(Control::Numbered)),
            ("t", Some(Control::Numbered)),
        ];
        if let Some((_, control)) = WORDS.iter().find(|(w, _)| *w == word) {
            return Ok(*control);
        }
        let matches: Vec<_> = WORDS.iter().filter(|(w, _)| w.starts_with(word)).collect();
        let first = matches.first().filter(|_| !word.is_empty());
        match first {
            Some((_, control)) if matches.iter().all(|(_, c)| c == control) => Ok(*control),
            _ => Err(format!(
                "{} argument '{word}' for 'backup type'\nValid arguments are:\n  \
                 - 'none', 'off'\n  - 'simple', 'never'\n  - 'existing', 'nil'\n  \
                 - 'numbered', 't'",
                if matches.is_empty() {
                    "invalid"
                } else {
                    "ambiguous"
                }
            )),
        }
    }
}

/// How backups are made: the control and the simple suffix.
#[derive(Clone, Debug)]
pub struct Backup {
    pub control: Control,
    pub suffix: OsString,
}

impl Backup {
    /// The name `dst`'s backup gets.
    pub fn name(&self, dst: &Path) -> PathBuf {
        let numbered = match self.control {
            Control::Simple => None,
            Control::Numbered => Some(highest_number(dst).unwrap_or(0)),
            Control::Existing => highest_number(dst),
        };
        let mut name = dst.as_os_str().to_os_string();
        match numbered {
            Some(n) => name.push(format!(".~{}~", n + 1)),
            None => name.push(&self.suffix),
        }
        PathBuf::from(name)
    }

    /// Renames `dst` to its backup name and returns that name; `None` if `dst`
    /// is gone already.
    pub fn make(&self, dst: &Path) -> anyhow::Result<Option<PathBuf>> {
        let backup = self.name(dst);
        match std::fs::rename(dst, &backup) {
            Ok(()) => Ok(Some(backup)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::from(e).context(format!("cannot backup {}", q(dst)))),
        }
    }
}

/// The highest N among `dst.~N~` beside `dst`, if any.
fn highest_number(dst: &Path) -> Option<u64> {
    let base = dst.file_name()?.as_bytes();
    let dir = std::fs::read_dir(parent_dir(dst)).ok()?;
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let rest = name.as_bytes().strip_prefix(base)?.strip_prefix(b".~")?;
        let digits = rest.strip_suffix(b"~")?;
        let digits = std::str::from_utf8(digits).ok()?;
        (!digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())?
    })
    .max()
}

/// The suffix of simple backups: `-S`, else `SIMPLE_BACKUP_SUFFIX`, else `~`
/// (a suffix with a `/` in it is not one: GNU falls back to `~`).
pub fn suffix(flag: Option<&OsStr>) -> OsString {
    let env = std::env::var_os("SIMPLE_BACKUP_SUFFIX");
    let chosen = flag.map(OsStr::to_os_string).or(env);
    chosen
        .filter(|s| !s.is_empty() && !s.as_bytes().contains(&b'/'))
        .unwrap_or_else(|| "~".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_words_and_abbreviations() {
        assert_eq!(Control::parse("numbered"), Ok(Some(Control::Numbered)));
        assert_eq!(Control::parse("t"), Ok(Some(Control::Numbered)));
        assert_eq!(Control::parse("si"), Ok(Some(Control::Simple)));
        assert_eq!(Control::parse("off"), Ok(None));
        assert!(Control::parse("n").unwrap_err().starts_with("ambiguous"));
        assert!(Control::parse("x").unwrap_err().starts_with("invalid"));
    }

    #[test]
    fn numbered_names_count_up() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let numbered = Backup {
            control: Control::Existing,
            suffix: "~".into(),
        };
        assert_eq!(numbered.name(&f), dir.path().join("f~"));
        std::fs::write(dir.path().join("f.~7~"), "").unwrap();
        assert_eq!(numbered.name(&f), dir.path().join("f.~8~"));
    }
}
