//! zcopy as installed: man pages and completions generated from the flags,
//! `--version` with what this machine offers, systemd socket activation, and the
//! Debian package installed with dpkg and answering curl (root, cargo-deb).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, have, zcopy};

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_pages_and_completions_come_from_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    ok(zcopy()
        .args(["generate", "man"])
        .arg(dir.path().join("man")));
    for sub in ["send", "recv", "echo", "serve", "cp", "scan", "bench"] {
        let page = std::fs::read_to_string(dir.path().join(format!("man/zcopy-{sub}.1"))).unwrap();
        assert!(page.contains(".TH zcopy-"), "{sub}");
        assert!(
            page.contains("EXIT STATUS"),
            "{sub}: the exit codes are in every page"
        );
    }
    let cp = std::fs::read_to_string(dir.path().join("man/zcopy-cp.1")).unwrap();
    assert!(cp.contains("reflink"), "the page lists cp's flags");
    ok(zcopy()
        .args(["generate", "completions"])
        .arg(dir.path().join("comp")));
    for file in ["zcopy.bash", "_zcopy", "zcopy.fish"] {
        assert!(dir.path().join("comp").join(file).is_file(), "{file}");
    }
    if !have(
        "bash",
        "man_pages_and_completions_come_from_the_flags (bash)",
    ) {
        return;
    }
    // Bash completes a subcommand and a flag from the generated script.
    let script = dir.path().join("comp/zcopy.bash");
    let complete = |words: &str, cword: usize| {
        ok(Command::new("bash").arg("-c").arg(format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; \
             COMP_POINT=${{#COMP_LINE}}; _zcopy zcopy; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        )))
    };
    let subs = complete("zcopy c", 1);
    assert!(subs.lines().any(|l| l == "cp"), "{subs}");
    let flags = complete("zcopy cp --refl", 2);
    assert!(flags.lines().any(|l| l.starts_with("--reflink")), "{flags}");
}

#[test]
fn version_says_what_this_machine_offers() {
    let out = ok(zcopy().arg("--version"));
    assert!(
        out.starts_with(&format!("zcopy {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    for line in ["engines: ", "io_uring: ", "kTLS: ", "reflink here: "] {
        assert!(out.contains(line), "{out}");
    }
}

/// Waits until `url` answers curl, or gives up after 30 s.
fn fetch(url: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("curl").args(["-sf", url]).output().unwrap();
        if out.status.success() {
            return out.stdout;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `argv` with a listening socket passed as systemd would (descriptor 3,
/// LISTEN_FDS=1), through systemd-socket-activate.
fn socket_activated(port: u16, argv: &[&str]) -> std::process::Child {
    Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn serve_takes_the_socket_systemd_passes() {
    let test = "serve_takes_the_socket_systemd_passes";
    if !have("systemd-socket-activate", test) || !have("curl", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), b"from a passed socket\n").unwrap();
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_zcopy");
    let root = dir.path().to_str().unwrap();
    let mut child = socket_activated(port, &[bin, "serve", root]);
    let body = fetch(&format!("http://127.0.0.1:{port}/hello.txt"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(body, b"from a passed socket\n");
}

#[test]
fn the_debian_package_installs_and_serves() {
    let test = "the_debian_package_installs_and_serves";
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP {test}: dpkg -i needs root");
        return;
    }
    let has_cargo_deb = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_deb {
        eprintln!("SKIP {test}: cargo-deb is not installed (scripts/test.sh installs it)");
        return;
    }
    if !have("dpkg", test) || !have("curl", test) || !have("systemd-socket-activate", test) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A target directory of its own: the one running this test is locked by cargo.
    let target = repo.join("target/package-test");
    let deb = ok(Command::new(repo.join("scripts/package.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&repo));
    let deb = deb.trim();
    assert!(deb.ends_with(".deb"), "{deb}");
    ok(Command::new("dpkg").args(["-i", deb]));
    for path in [
        "/usr/bin/zcopy",
        "/usr/share/man/man1/zcopy-send.1.gz",
        "/usr/share/bash-completion/completions/zcopy",
        "/lib/systemd/system/zcopy-serve.socket",
        "/lib/systemd/system/zcopy-serve.service",
        "/lib/systemd/system/zcopy-recv@.service",
    ] {
        assert!(Path::new(path).exists(), "the package installs {path}");
    }
    // The drop-ins are links to the binary, and each is its tool.
    let link = std::fs::read_link("/usr/lib/zcopy/bin/sha256sum").unwrap();
    assert_eq!(link, Path::new("../../../bin/zcopy"));
    let ours = ok(Command::new("/usr/lib/zcopy/bin/sha256sum").arg("/usr/bin/zcopy"));
    if have("sha256sum", test) {
        let gnu = ok(Command::new("sha256sum").arg("/usr/bin/zcopy"));
        assert_eq!(
            ours.split_whitespace().next(),
            gnu.split_whitespace().next()
        );
    }
    if have("man", test) {
        let page = ok(Command::new("man").args(["-P", "cat", "zcopy-send"]));
        assert!(page.contains("EXIT STATUS"), "man zcopy-send opens: {page}");
    }
    let version = ok(Command::new("/usr/bin/zcopy").arg("--version"));
    assert!(version.contains("engines: "), "{version}");
    std::fs::create_dir_all("/srv/zcopy").unwrap();
    std::fs::write("/srv/zcopy/from-the-package.txt", b"installed\n").unwrap();
    let systemd = Command::new("systemctl")
        .arg("is-system-running")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() && !o.stdout.starts_with(b"offline"));
    let body = if systemd {
        ok(Command::new("systemctl").args(["start", "zcopy-serve.socket"]));
        let body = fetch("http://127.0.0.1:8080/from-the-package.txt");
        let _ = Command::new("systemctl")
            .args(["stop", "zcopy-serve.socket", "zcopy-serve.service"])
            .status();
        body
    } else {
        eprintln!(
            "{test}: systemd is not running here (PID 1 is not systemd): starting the \
             service's ExecStart under systemd-socket-activate, as zcopy-serve.socket would"
        );
        let unit = std::fs::read_to_string("/lib/systemd/system/zcopy-serve.service").unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("the service has an ExecStart");
        let argv: Vec<&str> = exec.split_whitespace().collect();
        let port = free_port();
        let mut child = socket_activated(port, &argv);
        let body = fetch(&format!("http://127.0.0.1:{port}/from-the-package.txt"));
        let _ = child.kill();
        let _ = child.wait();
        body
    };
    let _ = std::fs::remove_file("/srv/zcopy/from-the-package.txt");
    ok(Command::new("dpkg").args(["-r", "zcopy"]));
    assert_eq!(body, b"installed\n");
}

#[test]
fn every_command_follows_the_conventions() {
    let help = ok(zcopy().arg("--help"));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 9, "{commands:?}");
    for command in commands {
        let help = ok(zcopy().args([command, "--help"]));
        for flag in ["-q, --quiet", "-v, --verbose", "--color <COLOR>"] {
            assert!(
                help.contains(flag),
                "zcopy {command} has no {flag}:\n{help}"
            );
        }
        // A usage error exits 2 with one line naming the problem.
        let out = zcopy().args([command, "--no-such-flag"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "zcopy {command}");
    }
    // NO_COLOR: no escape sequences in clap's help, even when forced by no terminal.
    let out = zcopy()
        .args(["cp", "--help"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.stdout.contains(&0x1b));
    let out = zcopy()
        .args(["--color=always", "cp", "--help"])
        .output()
        .unwrap();
    assert!(
        out.stdout.contains(&0x1b),
        "--color=always colours even into a pipe"
    );
}
