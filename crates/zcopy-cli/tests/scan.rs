//! `zcopy scan` against xxhsum and b3sum: the same digests, check files that work
//! both ways, and the errors of a checksum tool.

mod common;

use std::process::{Command, Stdio};

use common::{have, pattern, zcopy};

fn scan(args: &[&str]) -> (i32, String, String) {
    let o = zcopy().arg("scan").args(args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn fixture() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, pattern((3 << 20) + 11)).unwrap();
    let path = file.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn every_engine_gives_the_same_digest() {
    let (_dir, file) = fixture();
    for digest in [
        "xxh64", "xxh32", "xxh3", "xxh128", "crc32c", "blake3", "sha256",
    ] {
        let outputs: Vec<String> = ["read", "pread", "mmap", "direct", "auto"]
            .iter()
            .map(|engine| scan(&["--digest", digest, "--engine", engine, &file]).1)
            .collect();
        assert!(
            outputs.iter().all(|o| o == &outputs[0]),
            "{digest}: {outputs:?}"
        );
        let tagged = format!("({file}) = ");
        assert!(
            outputs[0].ends_with(&format!("  {file}\n")) || outputs[0].contains(&tagged),
            "{}",
            outputs[0]
        );
    }
    let seed = scan(&["--engine", "read", "--buffer", "1KiB", &file]).1;
    assert_eq!(seed, scan(&[&file]).1, "the seed's 1 KiB FileReader agrees");
}

#[test]
fn matches_xxhsum_both_ways() {
    if !have("xxhsum", "matches_xxhsum_both_ways") {
        return;
    }
    let (dir, file) = fixture();
    for (algo, tag) in [("-H3", "xxh3"), ("-H128", "xxh128")] {
        let theirs = Command::new("xxhsum")
            .args([algo, "--tag", &file])
            .output()
            .unwrap()
            .stdout;
        let ours = scan(&["--digest", tag, "--tag", &file]).1;
        assert_eq!(String::from_utf8(theirs.clone()).unwrap(), ours, "{tag}");
        // Their check file through our --check, ours through theirs.
        let check = dir.path().join(format!("{tag}.sums"));
        std::fs::write(&check, &theirs).unwrap();
        let (code, out, _) = scan(&["--check", check.to_str().unwrap()]);
        assert_eq!((code, out), (0, format!("{file}: OK\n")));
        std::fs::write(&check, ours).unwrap();
        let status = Command::new("xxhsum")
            .args(["-c", check.to_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "xxhsum -c accepts our {tag} line");
    }
    let gnu128 = scan(&["--digest", "xxh128", &file]).1;
    let check = dir.path().join("gnu128.sums");
    std::fs::write(&check, gnu128).unwrap();
    assert!(Command::new("xxhsum")
        .args(["-c", check.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
}

#[test]
fn matches_b3sum_both_ways() {
    if !have("b3sum", "matches_b3sum_both_ways") {
        return;
    }
    let (dir, file) = fixture();
    let theirs =
        String::from_utf8(Command::new("b3sum").arg(&file).output().unwrap().stdout).unwrap();
    let ours = scan(&["--digest", "blake3", &file]).1;
    assert_eq!(theirs, ours);
    let check = dir.path().join("b3.sums");
    std::fs::write(&check, &ours).unwrap();
    assert!(Command::new("b3sum")
        .args(["-c", check.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
    assert_eq!(scan(&["-c", check.to_str().unwrap()]).0, 0);
}

#[test]
fn stdin_and_check_failures() {
    let (dir, file) = fixture();
    let mut child = zcopy()
        .args(["scan", "-", "--tag"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let from_stdin = String::from_utf8(std::mem::take(&mut child.stdout)).unwrap();
    let from_file = scan(&["--tag", &file]).1;
    assert_eq!(from_stdin, from_file.replace(&file, "stdin"));

    let check = dir.path().join("sums");
    let line = scan(&[&file]).1;
    std::fs::write(&check, format!("{line}not a checksum line\n")).unwrap();
    std::fs::write(&file, b"changed").unwrap();
    let (code, out, err) = scan(&["-c", check.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(out, format!("{file}: FAILED\n"));
    assert!(err.contains("1 computed checksum did NOT match"), "{err}");
    assert!(err.contains("1 line is improperly formatted"), "{err}");

    std::fs::remove_file(&file).unwrap();
    let (code, out, err) = scan(&["-c", check.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(out, format!("{file}: FAILED open or read\n"));
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn errors_name_the_file_and_the_rest_still_run() {
    let (dir, file) = fixture();
    let missing = dir.path().join("missing");
    let (code, out, err) = scan(&[
        missing.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        &file,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        out.lines().count(),
        1,
        "the good file is still summed: {out}"
    );
    assert!(
        err.contains(&format!("{}: No such file or directory", missing.display())),
        "{err}"
    );
    assert!(err.contains("Is a directory"), "{err}");
    assert_eq!(err.lines().count(), 2);
    assert_eq!(scan(&["--digest", "md4", &file]).0, 2);
}
