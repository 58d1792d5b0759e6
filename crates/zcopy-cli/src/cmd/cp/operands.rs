//! The operands: the sources, the destination, and how their names compare.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::options::{Args, Settings};
use super::words::q;
use crate::exit::message;

/// Why the operands do not make a copy.
pub(super) enum Operands {
    /// Told as a usage error.
    Usage(String),
    /// Told as a failure.
    Fail(String),
}

/// The sources, the destination, and whether the sources go into it as a directory.
pub(super) fn operands(
    args: &Args,
    set: &Settings,
) -> Result<(Vec<PathBuf>, PathBuf, bool), Operands> {
    let mut paths = args.paths.clone();
    if set.strip_trailing_slashes {
        for path in &mut paths {
            let bytes = path.as_os_str().as_bytes();
            let end = bytes.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
            *path = PathBuf::from(OsStr::from_bytes(&bytes[..end.min(bytes.len())]));
        }
    }
    // GNU's words: "target directory 'x': Not a directory" for -t, "target
    // 'x': ..." for the last operand.
    let is_dir = |label: &str, dir: &Path| {
        let found = match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => std::io::Error::from_raw_os_error(libc::ENOTDIR),
            Err(e) => e,
        };
        let e = anyhow::Error::from(found).context(format!("{label} {}", q(dir)));
        Err(Operands::Fail(message(&e)))
    };
    if let Some(dir) = &args.target_directory {
        if args.no_target_directory {
            return Err(Operands::Fail(
                "cannot combine --target-directory (-t) and --no-target-directory (-T)".into(),
            ));
        }
        if paths.is_empty() {
            return Err(Operands::Usage("missing file operand".into()));
        }
        is_dir("target directory", dir)?;
        return Ok((paths, dir.clone(), true));
    }
    match paths.len() {
        0 => return Err(Operands::Usage("missing file operand".into())),
        1 => {
            return Err(Operands::Usage(format!(
                "missing destination file operand after {}",
                q(&paths[0])
            )))
        }
        _ => {}
    }
    let dst = paths.pop().expect("two operands or more");
    if args.no_target_directory {
        if paths.len() > 1 {
            return Err(Operands::Usage(format!("extra operand {}", q(&dst))));
        }
        return Ok((paths, dst, false));
    }
    let into_dir = std::fs::metadata(&dst).is_ok_and(|m| m.is_dir());
    if set.parents && !into_dir {
        return Err(Operands::Usage(
            "with --parents, the destination must be a directory".into(),
        ));
    }
    if paths.len() > 1 && !into_dir {
        is_dir("target", &dst)?;
    }
    Ok((paths, dst, into_dir))
}

/// `path` split as given, trailing slashes aside, into its directory (`.` when
/// none) and its last component: `s` and `.` for `s/.` (whose contents then go
/// into the target itself, as in GNU cp), where `Path::file_name` would say `s`.
pub(super) fn split_last(path: &Path) -> (&Path, &OsStr) {
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let slash = bytes[..end].iter().rposition(|&b| b == b'/');
    let name = OsStr::from_bytes(&bytes[slash.map_or(0, |i| i + 1)..end]);
    let dir = match slash {
        None => Path::new("."),
        Some(0) => Path::new("/"),
        Some(i) => Path::new(OsStr::from_bytes(&bytes[..i])),
    };
    (dir, name)
}

pub(super) fn last_component(path: &Path) -> &OsStr {
    split_last(path).1
}

pub(super) fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether `a` and `b` are the same directory entry: the same last component
/// in the same directory.
pub(super) fn same_name(a: &Path, b: &Path) -> bool {
    last_component(a) == last_component(b)
        && match (
            std::fs::metadata(split_last(a).0),
            std::fs::metadata(split_last(b).0),
        ) {
            (Ok(a), Ok(b)) => same_inode(&a, &b),
            _ => false,
        }
}
