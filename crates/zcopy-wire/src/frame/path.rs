//! The names entries travel under: refused when they could leave the receiver's
//! directory, shown as text in messages.

use std::io;

use super::{invalid, MAX_PATH};

/// Refuses paths that would leave the receiver's directory or cannot be paths:
/// absolute, empty components, `.` or `..`, NUL, over `PATH_MAX` or `NAME_MAX`.
pub fn check_path(path: &[u8]) -> io::Result<()> {
    let refuse = || {
        invalid(&format!(
            "refused file name {:?}: it must be a relative path without . or ..",
            shown(path)
        ))
    };
    if path.is_empty() || path.len() > MAX_PATH || path.starts_with(b"/") || path.contains(&0) {
        return Err(refuse());
    }
    for part in path.split(|&b| b == b'/') {
        if part.is_empty() || part == b"." || part == b".." || part.len() > 255 {
            return Err(refuse());
        }
    }
    Ok(())
}

/// A name for a message: its bytes as text, each byte that is not UTF-8 shown as
/// U+FFFD (the name itself travels and lands as the bytes it is).
pub fn shown(name: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(name)
}
