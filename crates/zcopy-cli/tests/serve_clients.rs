//! `zcopy serve` against the download managers people resume with: aria2c's
//! segmented downloads (several ranges at once over several connections) and its
//! continuation of a partial file, and wget's `-c`, each ending byte-equal.

mod common;

use std::path::Path;
use std::process::Command;

use common::{have, pattern, Server};

fn serve(root: &Path) -> Server {
    Server::serve(root, 2, &[])
}

/// Runs a client in `dir`; panics with its stderr when it fails.
fn run(dir: &Path, program: &str, args: &[&str]) {
    let o = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `aria2c -x4 -s4 -k1M`: four connections, each asking for its own ranges of one
/// file; the pieces join into the file whole.
#[test]
fn aria2c_segments_join_into_the_file() {
    if !have("aria2c", "aria2c_segments_join_into_the_file") {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let data = pattern((9 << 20) + 333);
    std::fs::write(site.path().join("big.bin"), &data).unwrap();
    let server = serve(site.path());
    let out = tempfile::tempdir().unwrap();
    let url = format!("http://{}/big.bin", server.addr);
    run(
        out.path(),
        "aria2c",
        &["-q", "-x4", "-s4", "-k1M", "--file-allocation=none", &url],
    );
    let got = std::fs::read(out.path().join("big.bin")).unwrap();
    assert!(got == data, "aria2c's segments differ from the file");
}

/// A partial file (the first 3 MiB, as an interrupted download leaves it) that
/// `aria2c -c` continues with a range from its end.
#[test]
fn aria2c_continues_a_partial_file() {
    if !have("aria2c", "aria2c_continues_a_partial_file") {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let data = pattern((5 << 20) + 77);
    std::fs::write(site.path().join("f.bin"), &data).unwrap();
    let server = serve(site.path());
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("f.bin"), &data[..3 << 20]).unwrap();
    let url = format!("http://{}/f.bin", server.addr);
    run(
        out.path(),
        "aria2c",
        &["-q", "-c", "--file-allocation=none", &url],
    );
    let got = std::fs::read(out.path().join("f.bin")).unwrap();
    assert!(got == data, "aria2c's continuation differs from the file");
}

/// `wget -c` of a partial file: the rest by a range, and the file's time from
/// Last-Modified.
#[test]
fn wget_continues_a_partial_file() {
    if !have("wget", "wget_continues_a_partial_file") {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let data = pattern((2 << 20) + 5);
    let served = site.path().join("w.bin");
    std::fs::write(&served, &data).unwrap();
    let server = serve(site.path());
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("w.bin"), &data[..1 << 20]).unwrap();
    let url = format!("http://{}/w.bin", server.addr);
    run(out.path(), "wget", &["-q", "-c", &url]);
    let got = out.path().join("w.bin");
    assert!(
        std::fs::read(&got).unwrap() == data,
        "wget's continuation differs"
    );
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    assert_eq!(mtime(&got), mtime(&served));
}
