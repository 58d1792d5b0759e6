//! GNU cp's words: who is speaking (the prefix and the usage exit code), and
//! names quoted as coreutils quotes them (by [`zcopy::quote`]).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use zcopy::quote::{quote, Style};

/// Whose conventions cp speaks with: zcopy's own (`zcopy cp`: prefix `zcopy`,
/// usage errors exit 2, as in every zcopy subcommand) or GNU cp's (run as `cp`
/// through a link: prefix `cp`, usage errors exit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Zcopy,
    Cp,
}

impl Program {
    /// `Cp` when the process runs under the name `cp`, else `Zcopy`.
    pub fn invoked() -> Program {
        let argv0 = std::env::args_os().next().unwrap_or_default();
        if Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("cp")) {
            Program::Cp
        } else {
            Program::Zcopy
        }
    }

    /// The word before the colon on every stderr line.
    pub fn prefix(self) -> &'static str {
        match self {
            Program::Zcopy => "zcopy",
            Program::Cp => "cp",
        }
    }
}

/// `path` as coreutils quotes a file name in a message (its shell-escape-always
/// style): `'name'`, `"it's"`, `'a'$'\n''b'`.
pub fn q(path: &Path) -> String {
    quote(path.as_os_str().as_bytes(), Style::ShellAlways)
}

/// The nine permission letters of `mode`, as `ls -l` (and GNU's questions)
/// show them: `rwsr-x--T`.
pub fn permissions(mode: u32) -> String {
    let letter = |bit: u32, c: char| if mode & bit != 0 { c } else { '-' };
    let special = |exec: u32, special: u32, set: char| match (mode & exec != 0, mode & special != 0)
    {
        (true, true) => set,
        (false, true) => set.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        letter(0o400, 'r'),
        letter(0o200, 'w'),
        special(0o100, 0o4000, 's'),
        letter(0o040, 'r'),
        letter(0o020, 'w'),
        special(0o010, 0o2000, 's'),
        letter(0o004, 'r'),
        letter(0o002, 'w'),
        special(0o001, 0o1000, 't'),
    ]
    .iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn names_are_quoted_as_coreutils_quotes_them() {
        let q = |b: &[u8]| q(Path::new(OsStr::from_bytes(b)));
        assert_eq!(q(b"plain name"), "'plain name'");
        assert_eq!(q(b"it's"), "\"it's\"");
        assert_eq!(q(b"a\xffb"), "'a'$'\\377''b'");
        assert_eq!(q(b"new\nline"), "'new'$'\\n''line'");
        assert_eq!(q(b"$it's"), "'$it'\\''s'");
        assert_eq!(q(b"\x01"), "''$'\\001'");
    }

    #[test]
    fn permission_letters() {
        assert_eq!(permissions(0o100444), "r--r--r--");
        assert_eq!(permissions(0o4755), "rwsr-xr-x");
        assert_eq!(permissions(0o3644), "rw-r-Sr-T");
    }
}
