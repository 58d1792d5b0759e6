//! The peers built here from source: the bare C sendfile loop and the seed's
//! Java clients, compiled into the run's directory when a compiler is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::command::installed;

/// Compiles the bare C sendfile loop into `dir`; the reason when it cannot.
pub fn c_sendfile_loop(dir: &Path) -> Result<PathBuf, String> {
    if !installed("cc") {
        return Err("no C compiler (cc) installed".into());
    }
    let source = dir.join("sendfile_loop.c");
    let binary = dir.join("sendfile-loop");
    std::fs::write(&source, include_str!("sendfile_loop.c")).map_err(|e| e.to_string())?;
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(binary)
}

/// Compiles the seed's Java clients into `dir`; the reason when it cannot.
pub fn java_classes(dir: &Path) -> Result<PathBuf, String> {
    if !installed("javac") || !installed("java") {
        return Err("javac or java not installed".into());
    }
    let classes = dir.join("java");
    let sources = [
        ("Client.java", include_str!("../../java/Client.java")),
        (
            "ClientChannel.java",
            include_str!("../../java/ClientChannel.java"),
        ),
    ];
    let mut paths = Vec::new();
    std::fs::create_dir_all(&classes).map_err(|e| e.to_string())?;
    for (name, text) in sources {
        let path = classes.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        paths.push(path);
    }
    let out = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .args(&paths)
        .output()
        .map_err(|e| format!("javac: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "javac failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(classes)
}
