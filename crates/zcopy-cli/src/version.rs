//! `zcopy --version`: the version, then what this build and this kernel offer, as
//! `curl --version` and `rsync --version` list their features.

use std::fmt::Write;

/// The long version text, probed now.
pub fn long() -> String {
    let mut text = format!("{}\n", env!("CARGO_PKG_VERSION"));
    let engines: Vec<&str> = zcopy::Engine::ALL.iter().map(|e| e.name()).collect();
    let _ = writeln!(text, "engines: {}", engines.join(" "));
    if let Ok(uname) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        let _ = writeln!(text, "kernel: Linux {}", uname.trim());
    }
    let _ = writeln!(text, "io_uring: {}", io_uring());
    // The same probe send and recv make: the ULP attached and test keys taken.
    let _ = writeln!(text, "{}", zcopy_wire::ktls::status());
    let _ = write!(text, "reflink here: {}", reflink_here());
    text
}

/// io_uring as `/proc/sys/kernel/io_uring_disabled` allows it.
fn io_uring() -> &'static str {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
    {
        Ok(v) if v == "0" => "enabled",
        Ok(v) if v == "1" => "for privileged processes only (io_uring_disabled = 1)",
        Ok(_) => "disabled (io_uring_disabled = 2)",
        // Kernels before 6.6 have no switch: io_uring is there if the kernel has it.
        Err(_) => "no io_uring_disabled switch (enabled if the kernel has it)",
    }
}

/// Whether the current directory's file system clones files: two unnamed files
/// made here, one cloned onto the other.
fn reflink_here() -> String {
    use rustix::fs::{Mode, OFlags};
    let make = || {
        rustix::fs::open(
            ".",
            OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    match make().and_then(|a| Ok((a, make()?))) {
        Ok((a, b)) => match zcopy::engine::reflink::clone_file(&a, &b) {
            Ok(()) => "yes (FICLONE works in the current directory)".into(),
            Err(e) => format!("no ({e})"),
        },
        Err(e) => format!("unknown (cannot make a file here: {e})"),
    }
}
