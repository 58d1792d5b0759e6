//! `send`/`recv` over a real link with trouble on it: two network namespaces and
//! a veth pair made by the test, random loss by nftables (`numgen random`), a
//! rate limit by the `tbf` qdisc, the link set down for 5 s mid-transfer (no
//! netem: the kernels this runs on may lack it); and ssh as the way in across
//! the pair, the throwaway sshd inside a namespace. Needs root, `ip`, `tc`,
//! `nft` (and sshd for the ssh test); skips with the reason otherwise.

mod common;

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::sshd::Sshd;
use common::{have, pattern};

fn can_run(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP {test}: network namespaces need root");
        return false;
    }
    have("ip", test) && have("tc", test) && have("nft", test)
}

fn run(cmd: &[&str]) {
    let st = Command::new(cmd[0]).args(&cmd[1..]).status().unwrap();
    assert!(st.success(), "{cmd:?}");
}

/// Namespaces `a` (sender, 10.77.0.1) and `b` (receiver, 10.77.0.2) joined by a
/// veth pair; removed on drop.
struct Link {
    a: String,
    b: String,
    dev_a: String,
}

impl Link {
    fn new() -> Link {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (a, b) = (format!("zca{tag}"), format!("zcb{tag}"));
        let (dev_a, dev_b) = (format!("zva{tag}"), format!("zvb{tag}"));
        run(&["ip", "netns", "add", &a]);
        run(&["ip", "netns", "add", &b]);
        let link = Link { a, b, dev_a };
        run(&[
            "ip",
            "link",
            "add",
            &link.dev_a,
            "netns",
            &link.a,
            "type",
            "veth",
            "peer",
            "name",
            &dev_b,
            "netns",
            &link.b,
        ]);
        run(&[
            "ip",
            "-n",
            &link.a,
            "addr",
            "add",
            "10.77.0.1/24",
            "dev",
            &link.dev_a,
        ]);
        run(&[
            "ip",
            "-n",
            &link.b,
            "addr",
            "add",
            "10.77.0.2/24",
            "dev",
            &dev_b,
        ]);
        for (ns, dev) in [(&link.a, &link.dev_a), (&link.b, &dev_b)] {
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        link
    }

    /// Drops `percent`% of the TCP segments arriving in `b`, at random.
    fn lose(&self, percent: u32) {
        run(&[
            "ip", "netns", "exec", &self.b, "nft", "add", "table", "inet", "zloss",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            &self.b,
            "nft",
            "add",
            "chain",
            "inet",
            "zloss",
            "in",
            "{ type filter hook input priority 0; }",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            &self.b,
            "nft",
            "add",
            "rule",
            "inet",
            "zloss",
            "in",
            "meta",
            "l4proto",
            "tcp",
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            &percent.to_string(),
            "drop",
        ]);
    }

    /// Limits what `a` sends to `rate` (tc's spelling: 200mbit).
    fn limit(&self, rate: &str) {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.a,
            "tc",
            "qdisc",
            "add",
            "dev",
            &self.dev_a,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "64kb",
            "latency",
            "50ms",
        ]);
    }

    fn set_a(&self, state: &str) {
        run(&["ip", "-n", &self.a, "link", "set", &self.dev_a, state]);
    }

    /// `zcopy recv --once` in `b`; returns it and its address.
    fn receiver(&self, out: &Path) -> (Child, String) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.b,
                env!("CARGO_BIN_EXE_zcopy"),
                "recv",
                "--once",
            ])
            // Loss and rate shaping are under test here, not authentication.
            .args(["--insecure", "--listen", "10.77.0.2:0", "-o"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        (child, addr)
    }

    fn send(&self, file: &Path, addr: &str, extra: &[&str]) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a,
                env!("CARGO_BIN_EXE_zcopy"),
                "send",
            ])
            .arg(file)
            .arg(addr)
            .args(extra)
            .args(["--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn check(o: Output, what: &str) -> f64 {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    json["seconds"].as_f64().unwrap()
}

/// Sends `data` from `a` to `b` and checks that it arrived intact.
fn transfer(link: &Link, data: &[u8], extra: &[&str], what: &str) {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("data.bin");
    std::fs::write(&file, data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (mut recv, addr) = link.receiver(out.path());
    let secs = check(
        link.send(&file, &addr, extra).wait_with_output().unwrap(),
        what,
    );
    assert!(
        recv.wait().unwrap().success(),
        "{what}: the receiver failed"
    );
    assert!(
        std::fs::read(out.path().join("data.bin")).unwrap() == data,
        "{what}"
    );
    eprintln!("{what}: {secs:.2} s");
}

#[test]
fn random_loss_of_1_and_5_percent() {
    if !can_run("random_loss_of_1_and_5_percent") {
        return;
    }
    let data = pattern(24 << 20);
    for percent in [1, 5] {
        let link = Link::new();
        link.lose(percent);
        for streams in ["1", "4"] {
            transfer(
                &link,
                &data,
                &["-j", streams],
                &format!("{percent}% loss, -j {streams}"),
            );
        }
    }
}

/// 200 Mbit/s with 1% loss, one stream and four (docs/benchmarks.md reports the times).
#[test]
fn a_200_mbit_lossy_link() {
    if !can_run("a_200_mbit_lossy_link") {
        return;
    }
    let link = Link::new();
    link.limit("200mbit");
    link.lose(1);
    let data = pattern(32 << 20);
    for streams in ["1", "4"] {
        transfer(
            &link,
            &data,
            &["-j", streams],
            &format!("200 Mbit/s, 1% loss, -j {streams}"),
        );
    }
}

/// The link goes down for 5 s in the middle of a transfer and comes back: the
/// transfer finishes (TCP retransmits; the 30 s timeout is not reached).
#[test]
fn the_link_down_for_5_s() {
    if !can_run("the_link_down_for_5_s") {
        return;
    }
    let link = Link::new();
    link.limit("200mbit");
    let data = pattern(48 << 20);
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (mut recv, addr) = link.receiver(out.path());
    let sender = link.send(&file, &addr, &[]);
    std::thread::sleep(Duration::from_millis(700));
    let down = Instant::now();
    link.set_a("down");
    std::thread::sleep(Duration::from_secs(5));
    link.set_a("up");
    eprintln!(
        "the link was down for {:.1} s",
        down.elapsed().as_secs_f64()
    );
    check(sender.wait_with_output().unwrap(), "link down");
    assert!(recv.wait().unwrap().success());
    assert!(std::fs::read(out.path().join("data.bin")).unwrap() == data);
}

/// The default off loopback: the receiver in `b` makes a secret and prints the
/// line; the sender in `a` pastes it and sends over TLS with `-j 4` across 1% loss.
#[test]
fn the_pasted_line_over_a_real_link() {
    if !can_run("the_pasted_line_over_a_real_link") {
        return;
    }
    let link = Link::new();
    link.lose(1);
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("data.bin");
    let data = pattern(16 << 20);
    std::fs::write(&file, &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut recv = Command::new("ip")
        .args([
            "netns",
            "exec",
            &link.b,
            env!("CARGO_BIN_EXE_zcopy"),
            "recv",
            "--once",
        ])
        .args(["--listen", "10.77.0.2:0", "-o"])
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(recv.stderr.take().unwrap());
    let (mut listening, mut ticket) = (String::new(), String::new());
    lines.read_line(&mut listening).unwrap();
    lines.read_line(&mut ticket).unwrap();
    let words: Vec<&str> = ticket.split_whitespace().collect();
    let secret = words
        .iter()
        .find_map(|w| w.strip_prefix("ZCOPY_SECRET="))
        .unwrap_or_else(|| panic!("no secret in {ticket:?}"));
    let at = words.iter().position(|w| *w == "--fingerprint").unwrap();
    let addr = words.last().unwrap();
    assert_eq!(
        *addr,
        listening.trim().strip_prefix("listening on ").unwrap()
    );
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &link.a,
            env!("CARGO_BIN_EXE_zcopy"),
            "send",
        ])
        .arg(&file)
        .args([addr, "--fingerprint", words[at + 1], "-j", "4", "--json"])
        .env("ZCOPY_SECRET", secret)
        .output()
        .unwrap();
    let secs = check(o, "TLS over the veth pair");
    assert!(recv.wait().unwrap().success());
    assert!(std::fs::read(out.path().join("data.bin")).unwrap() == data);
    eprintln!("TLS, -j 4, 1% loss: {secs:.2} s");
}

/// `zcopy ARGS...` run in namespace `ns` over `sshd`, its `--json` report.
fn over_ssh(ns: &str, sshd: &Sshd, args: &[OsString], what: &str) -> serde_json::Value {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_zcopy")])
        .args(args)
        .arg("-e")
        .arg(sshd.rsh(sshd.port))
        .arg("--zcopy-path")
        .arg(env!("CARGO_BIN_EXE_zcopy"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn same_tree(a: &Path, b: &Path, what: &str) {
    let diff = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

/// ssh across the veth pair: the throwaway sshd in `b` (10.77.0.2), the local
/// side in `a`. A push and a pull of a tree with a name that is not UTF-8: the
/// data goes over direct TCP to the address the ssh connection arrived on (the
/// veth's), and with `--ssh-data` inside the ssh channel instead.
#[test]
fn ssh_across_the_veth_pair_push_and_pull() {
    let test = "ssh_across_the_veth_pair_push_and_pull";
    if !can_run(test) {
        return;
    }
    let link = Link::new();
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start_in(dir.path(), test, Some(&link.b), "10.77.0.2") else {
        return;
    };
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("small"), b"hello\n").unwrap();
    std::fs::write(src.join("sub/big"), pattern(6 << 20)).unwrap();
    std::fs::write(src.join(OsStr::from_bytes(b"bad\xffname")), b"odd\n").unwrap();
    let remote = |path: &Path, slash: &[u8]| {
        OsString::from_vec([b"10.77.0.2:", path.as_os_str().as_bytes(), slash].concat())
    };
    for (way, extra) in [
        ("direct TCP", vec![]),
        ("--ssh-data", vec!["--ssh-data".into()]),
    ] {
        let direct = extra.is_empty();
        let pushed = dir.path().join(format!("pushed-{}", extra.len()));
        let args = [
            vec!["send".into(), src.clone().into(), remote(&pushed, b"/")],
            extra.clone(),
        ]
        .concat();
        let json = over_ssh(&link.a, &sshd, &args, way);
        same_tree(&src, &pushed.join("src"), way);
        let pushed_to = json["peer"].as_str().unwrap().to_string();
        let pulled = dir.path().join(format!("pulled-{}", extra.len()));
        let args = [
            vec![
                "recv".into(),
                remote(&src, b""),
                "-o".into(),
                pulled.join("").into(),
            ],
            extra,
        ]
        .concat();
        let json = over_ssh(&link.a, &sshd, &args, way);
        same_tree(&src, &pulled.join("src"), way);
        let pulled_from = json["peer"].as_str().unwrap().to_string();
        eprintln!("{way}: pushed to {pushed_to}, pulled from {pulled_from}");
        // Direct: the remote side listened on the veth address, on a port of its
        // own; inside the channel there is no such address.
        let veth = |peer: &str| {
            peer.strip_prefix("10.77.0.2:")
                .is_some_and(|port| port != sshd.port.to_string())
        };
        assert_eq!(veth(&pushed_to), direct, "{way}: {pushed_to}");
        assert_eq!(veth(&pulled_from), direct, "{way}: {pulled_from}");
    }
}
