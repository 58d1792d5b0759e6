//! zcopy under the names of the tools it stands in for (links made by `zcopy
//! generate links`): as `xxhsum` it is xxhsum 0.8.3, as `b3sum` b3sum 1.8, as
//! `sha256sum` GNU's; each case below is one those tools' own test suites check,
//! with the words they print. Where the real tool is installed (GNU sha256sum
//! always is), the same commands run through both and must agree byte for byte.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{have, zcopy};

/// The links, in a directory of their own.
fn links() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = zcopy()
        .args(["generate", "links", "-q"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

/// A directory holding `f` ("hi\n") and `g` ("bye\n").
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"hi\n").unwrap();
    std::fs::write(dir.path().join("g"), b"bye\n").unwrap();
    dir
}

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `program` (a name found on `path`, so argv[0] is that bare name) in `dir`.
fn run_in(path: &Path, dir: &Path, program: &str, args: &[&OsStr], stdin: &[u8]) -> Out {
    let search = format!(
        "{}:{}",
        path.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", search)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // The tool may not read its input at all.
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

fn ours(links: &Path, dir: &Path, tool: &str, args: &[&str]) -> Out {
    run_in(links, dir, tool, &os(args), b"")
}

#[test]
fn generate_links_makes_every_name_and_keeps_other_files() {
    let dir = links();
    for name in [
        "cp",
        "xxhsum",
        "xxh32sum",
        "xxh64sum",
        "xxh128sum",
        "xxh3sum",
        "b3sum",
        "sha256sum",
        "sha224sum",
        "sha384sum",
        "sha512sum",
        "sha1sum",
        "md5sum",
    ] {
        let target = std::fs::read_link(dir.path().join(name)).unwrap();
        assert_eq!(
            target.canonicalize().unwrap(),
            PathBuf::from(env!("CARGO_BIN_EXE_zcopy"))
                .canonicalize()
                .unwrap(),
            "{name}"
        );
    }
    // Again over the old links, with a target of our choosing.
    let again = zcopy()
        .args(["generate", "links", "--target", "/usr/bin/zcopy"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_link(dir.path().join("b3sum")).unwrap(),
        Path::new("/usr/bin/zcopy")
    );
    std::fs::remove_file(dir.path().join("cp")).unwrap();
    std::fs::write(dir.path().join("cp"), b"mine").unwrap();
    let refused = zcopy()
        .args(["generate", "links"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(std::fs::read(dir.path().join("cp")).unwrap(), b"mine");
}

#[test]
fn xxhsum_algorithms_tags_and_endianness() {
    let (bin, dir) = (links(), files());
    let line = |args: &[&str]| ours(bin.path(), dir.path(), "xxhsum", args).stdout();
    for (flags, hex) in [
        (&["-H0"][..], "d20fe3d3"),
        (&["-H32"], "d20fe3d3"),
        (&[], "d50463dd92503d34"),
        (&["-H1"], "d50463dd92503d34"),
        (&["-H64"], "d50463dd92503d34"),
        (&["-H2"], "f4d0497cf9394caab34d1a3ab2bece70"),
        (&["-H128"], "f4d0497cf9394caab34d1a3ab2bece70"),
    ] {
        let args: Vec<&str> = flags.iter().copied().chain(["f"]).collect();
        assert_eq!(line(&args), format!("{hex}  f\n"), "{flags:?}");
    }
    // xxhsum 0.8.3 marks an untagged XXH3 line, lest it read as XXH64.
    assert_eq!(line(&["-H3", "f"]), "XXH3_b34d1a3ab2bece70  f\n");
    assert_eq!(
        line(&["--tag", "-H3", "f"]),
        "XXH3 (f) = b34d1a3ab2bece70\n"
    );
    assert_eq!(line(&["--tag", "-H0", "f"]), "XXH32 (f) = d20fe3d3\n");
    assert_eq!(
        line(&["--tag", "-H0", "--little-endian", "f"]),
        "XXH32_LE (f) = d3e30fd2\n"
    );
    assert_eq!(
        line(&["-H3", "--little-endian", "--tag", "f"]),
        "XXH3_LE (f) = 70cebeb23a1a4db3\n"
    );
    let bad = ours(bin.path(), dir.path(), "xxhsum", &["-H9", "f"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.starts_with("Wrong parameters\n"),
        "{}",
        bad.stderr
    );
    assert!(bad.stdout.is_empty());

    // Little-endian lines check, tagged ones by their tag, untagged ones by the flag.
    std::fs::write(
        dir.path().join("le"),
        line(&["-H0", "--little-endian", "f", "g"]),
    )
    .unwrap();
    let check = ours(
        bin.path(),
        dir.path(),
        "xxhsum",
        &["-c", "--little-endian", "le"],
    );
    assert_eq!((check.code, check.stdout()), (0, "f: OK\ng: OK\n".into()));
    let tagged = line(&["--tag", "-H2", "--little-endian", "f"]);
    std::fs::write(dir.path().join("le"), tagged).unwrap();
    assert_eq!(
        ours(bin.path(), dir.path(), "xxhsum", &["-c", "le"]).code,
        0
    );

    // xxh128sum writes and reads XXH128 only.
    assert_eq!(
        ours(bin.path(), dir.path(), "xxh128sum", &["f"]).stdout(),
        "f4d0497cf9394caab34d1a3ab2bece70  f\n"
    );
    std::fs::write(dir.path().join("s"), line(&["f"])).unwrap();
    let refused = ours(bin.path(), dir.path(), "xxh128sum", &["-c", "s"]);
    assert_eq!(refused.code, 1);
    assert_eq!(
        refused.stderr,
        "s: no properly formatted xxHash checksum lines found\n"
    );
}

#[test]
fn xxhsum_check_in_its_own_words() {
    let (bin, dir) = (links(), files());
    let sums = ours(bin.path(), dir.path(), "xxhsum", &["f", "g"]).stdout;
    std::fs::write(dir.path().join("s"), &sums).unwrap();
    std::fs::write(dir.path().join("f"), b"changed\n").unwrap();
    let failed = ours(bin.path(), dir.path(), "xxhsum", &["-c", "s"]);
    assert_eq!(failed.code, 1);
    assert_eq!(
        failed.stdout(),
        "f: FAILED\ng: OK\n1 computed checksum did NOT match\n"
    );
    let quiet = ours(bin.path(), dir.path(), "xxhsum", &["-c", "-q", "s"]);
    assert_eq!(
        quiet.stdout(),
        "f: FAILED\n1 computed checksum did NOT match\n"
    );
    let status = ours(bin.path(), dir.path(), "xxhsum", &["-c", "--status", "s"]);
    assert_eq!((status.code, status.stdout()), (1, String::new()));

    let missing = run_in(
        bin.path(),
        dir.path(),
        "xxhsum",
        &os(&["-c", "-"]),
        b"0000000000000000  nope\n",
    );
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stdout(),
        "stdin:1: Could not open or read 'nope': No such file or directory.\n\
         1 listed file could not be read\n"
    );
    let ignored = run_in(
        bin.path(),
        dir.path(),
        "xxhsum",
        &os(&["-c", "--ignore-missing", "-"]),
        b"0000000000000000  nope\n",
    );
    assert_eq!(
        (ignored.code, ignored.stdout()),
        (1, "stdin: no file was verified\n".into())
    );

    let mut junk = sums.clone();
    junk.extend_from_slice(b"12345678 \n");
    std::fs::write(dir.path().join("j"), junk).unwrap();
    let warned = ours(bin.path(), dir.path(), "xxhsum", &["-c", "--warn", "j"]);
    assert_eq!(
        warned.stderr,
        "j:3: Error: Improperly formatted checksum line.\n"
    );
    assert!(warned
        .stdout()
        .ends_with("1 line is improperly formatted\n1 computed checksum did NOT match\n"));

    // --filelist hashes the files a list names, and says which it could not.
    let g = ours(bin.path(), dir.path(), "xxhsum", &["g"]).stdout();
    let listed = run_in(
        bin.path(),
        dir.path(),
        "xxhsum",
        &os(&["--filelist"]),
        b"g\nnope\n",
    );
    assert_eq!(listed.code, 1);
    assert_eq!(
        listed.stdout(),
        format!(
            "{g}stdin:2: Could not open or read 'nope': No such file or directory.\n\
             1 listed file could not be read\n"
        )
    );

    let absent = ours(bin.path(), dir.path(), "xxhsum", &["nonexistent"]);
    assert_eq!(absent.code, 1);
    assert!(
        absent
            .stderr
            .contains("Error: Could not open 'nonexistent': No such file or directory."),
        "{}",
        absent.stderr
    );
}

#[test]
fn b3sum_outputs_and_modes() {
    let (bin, dir) = (links(), files());
    let b3 =
        |args: &[&str], stdin: &[u8]| run_in(bin.path(), dir.path(), "b3sum", &os(args), stdin);
    let hi = blake3::hash(b"hi\n").to_hex().to_string();
    assert_eq!(b3(&["f"], b"").stdout(), format!("{hi}  f\n"));
    assert_eq!(b3(&[], b"hi\n").stdout(), format!("{hi}  -\n"));
    assert_eq!(
        b3(&["--tag", "f"], b"").stdout(),
        format!("BLAKE3 (f) = {hi}\n")
    );
    assert_eq!(
        b3(&["--no-names", "f", "g"], b"").stdout().lines().next(),
        Some(&hi[..])
    );
    assert_eq!(
        b3(&["--raw", "f"], b"").stdout,
        blake3::hash(b"hi\n").as_bytes()
    );
    assert_eq!(b3(&["--raw", "f", "g"], b"").code, 1);

    let mut long = [0; 100];
    blake3::Hasher::new()
        .update(b"hi\n")
        .finalize_xof()
        .fill(&mut long);
    assert_eq!(b3(&["--raw", "--length=100", "f"], b"").stdout, long);
    assert_eq!(
        b3(&["--raw", "--length=99", "--seek=1", "f"], b"").stdout,
        long[1..]
    );
    assert_ne!(b3(&["--length"], b"").code, 0);

    let key = [42; 32];
    let keyed = blake3::keyed_hash(&key, b"hi\n").to_hex().to_string();
    assert_eq!(
        b3(&["--keyed", "--no-names", "f"], &key).stdout(),
        format!("{keyed}\n")
    );
    for bad in [0, 31, 33] {
        let out = b3(&["--keyed", "f"], &vec![0; bad]);
        assert_eq!(out.code, 1, "{bad}");
        assert!(out.stdout.is_empty());
        assert!(out.stderr.contains("key bytes"), "{}", out.stderr);
    }
    let context = "BLAKE3 2019-12-28 10:28:41 example context";
    let derived = blake3::derive_key(context, b"hi\n");
    let derived: String = derived.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        b3(&["--derive-key", context, "--no-names", "f"], b"").stdout(),
        format!("{derived}\n")
    );
    // Only the key takes standard input away; a context leaves it to be hashed.
    assert_eq!(
        b3(&["--derive-key", context], b"hi\n").stdout(),
        format!("{derived}  -\n")
    );
    let keyed_stdin = b3(&["--keyed", "-"], &key);
    assert_eq!(keyed_stdin.code, 1);
    assert_eq!(
        keyed_stdin.stderr,
        "b3sum: -: Cannot open `-` in keyed mode\n"
    );

    let missing = b3(&["f", "missing_file", "g"], b"");
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "b3sum: missing_file: No such file or directory (os error 2)\n"
    );
    assert_eq!(missing.stdout().lines().count(), 2);
}

#[test]
fn b3sum_check_and_its_refusals() {
    let (bin, dir) = (links(), files());
    let b3 =
        |args: &[&str], stdin: &[u8]| run_in(bin.path(), dir.path(), "b3sum", &os(args), stdin);
    let sums = b3(&["f", "g"], b"").stdout;
    let ok = b3(&["--check"], &sums);
    assert_eq!(
        (ok.code, ok.stdout(), ok.stderr.as_str()),
        (0, "f: OK\ng: OK\n".into(), "")
    );
    std::fs::write(dir.path().join("s"), &sums).unwrap();
    std::fs::remove_file(dir.path().join("g")).unwrap();
    let gone = b3(&["--check", "--quiet", "s"], b"");
    assert_eq!(gone.code, 1);
    assert_eq!(
        gone.stdout(),
        "g: FAILED (No such file or directory (os error 2))\n"
    );
    assert_eq!(
        gone.stderr,
        "b3sum: WARNING: 1 computed checksum did NOT match\n"
    );

    let zeros = "0".repeat(64);
    for (line, why) in [
        (format!("{zeros}  \0"), "Null character in path"),
        (
            format!("{zeros}  \u{fffd}"),
            "Unicode replacement character in path",
        ),
        (format!("\\{zeros}  \\a"), "Invalid backslash escape"),
    ] {
        let out = b3(&["--check"], line.as_bytes());
        assert_eq!(out.code, 1, "{why}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            out.stderr,
            format!("b3sum: {why}\nb3sum: WARNING: 1 computed checksum did NOT match\n")
        );
    }
}

#[test]
fn b3sum_escapes_names_as_b3sum() {
    let bin = links();
    let dir = tempfile::tempdir().unwrap();
    let names = ["abcdef", "abc\ndef", "abc\\def", "abc\rdef", "abc\r\ndef"];
    for name in names {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let out = ours(bin.path(), dir.path(), "b3sum", &names);
    let empty = blake3::hash(b"").to_hex().to_string();
    assert_eq!(
        out.stdout(),
        format!(
            "{empty}  abcdef\n\\{empty}  abc\\ndef\n\\{empty}  abc\\\\def\n\
             \\{empty}  abc\\rdef\n\\{empty}  abc\\r\\ndef\n"
        )
    );
    std::fs::write(dir.path().join("s"), &out.stdout).unwrap();
    let check = ours(bin.path(), dir.path(), "b3sum", &["-c", "s"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stdout().contains("\\abc\\ndef: OK\n"),
        "{}",
        check.stdout()
    );
}

/// The same commands through GNU sha256sum and zcopy as sha256sum, in twin
/// directories: everything must agree.
#[test]
fn sha256sum_agrees_with_gnu() {
    if !have("sha256sum", "sha256sum_agrees_with_gnu") {
        return;
    }
    let bin = links();
    let cases: &[(&[&str], &[u8])] = &[
        (&["f", "g"], b""),
        (&["-b", "f"], b""),
        (&["-t", "f"], b""),
        (&["--tag", "f"], b""),
        (&["-z", "f", "a\nb"], b""),
        (&[], b"stdin\n"),
        (&["-", "f"], b"stdin\n"),
        (&["nope", "d e x", "sub", "f"], b""),
        (&["--tag", "--check", "f"], b""),
        (&["--tag", "--text", "f"], b""),
        (&["--ignore-missing", "f"], b""),
        (&["--strict", "f"], b""),
        (&["--st", "f"], b""),
        (&["-x"], b""),
        (&["--bogus"], b""),
        (&["-c", "-z", "f"], b""),
        (&["-c", "nope", "sub"], b""),
        (&["--strict", "-c", "single"], b""),
        (&["--strict", "-c", "double"], b""),
        (&["-c", "mixed"], b""),
        (&["-c", "-w", "mixed"], b""),
        (&["-c", "--status", "mixed"], b""),
        (&["-c", "--quiet", "tagged"], b""),
        (&["-c", "-"], b"SHA1 (f) = 0000\n"),
        (&["-c", "-"], b"SHA256 ("),
        (
            &["--check", "--ignore-missing", "-"],
            b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  missing\n",
        ),
    ];
    let twin = || {
        let dir = files();
        let p = dir.path();
        std::fs::create_dir(p.join("sub")).unwrap();
        std::fs::write(p.join("a\nb"), b"nl\n").unwrap();
        // md5sum-bsd.sh's names: a leading space or star, read back from
        // single-space ("BSD reversed") lines.
        let mut single = Vec::new();
        let mut double = Vec::new();
        for name in ["a", " b", "*c", "dd", " "] {
            std::fs::write(p.join(name), format!("{name}\n")).unwrap();
            let out = Command::new("sha256sum")
                .args(["--text", name])
                .current_dir(p)
                .output()
                .unwrap();
            double.extend_from_slice(&out.stdout);
            let line = String::from_utf8(out.stdout)
                .unwrap()
                .replacen("  ", " ", 1);
            single.extend_from_slice(line.as_bytes());
        }
        std::fs::write(p.join("single"), single).unwrap();
        std::fs::write(p.join("double"), &double).unwrap();
        let mut mixed = b"ERR\n".to_vec();
        mixed.extend_from_slice(&double);
        mixed.extend_from_slice(
            b"\\0000000000000000000000000000000000000000000000000000000000000000  x\\\n",
        );
        std::fs::write(p.join("mixed"), mixed).unwrap();
        let tagged = Command::new("sha256sum")
            .args(["--tag", "f", "a\nb"])
            .current_dir(p)
            .output()
            .unwrap();
        std::fs::write(p.join("tagged"), tagged.stdout).unwrap();
        dir
    };
    let mut differences = Vec::new();
    for (args, stdin) in cases {
        let (theirs_dir, ours_dir) = (twin(), twin());
        let no_links = Path::new("/nonexistent");
        let theirs = run_in(no_links, theirs_dir.path(), "sha256sum", &os(args), stdin);
        let mine = run_in(bin.path(), ours_dir.path(), "sha256sum", &os(args), stdin);
        if (theirs.code, &theirs.stdout, &theirs.stderr) != (mine.code, &mine.stdout, &mine.stderr)
        {
            differences.push(format!(
                "{args:?}\n  GNU:  {} {:?} {:?}\n  ours: {} {:?} {:?}",
                theirs.code,
                theirs.stdout(),
                theirs.stderr,
                mine.code,
                mine.stdout(),
                mine.stderr
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn non_utf8_names_are_hashed_and_printed_as_each_peer_prints_them() {
    let bin = links();
    let dir = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"n\xffme");
    std::fs::write(dir.path().join(name), b"hi\n").unwrap();
    let sha = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";
    let cases: [(&str, &[&str], Vec<u8>); 4] = [
        (
            "zcopy",
            &["scan"],
            [&b"d50463dd92503d34  n\xffme\n"[..]].concat(),
        ),
        ("xxhsum", &[], b"d50463dd92503d34  n\xffme\n".to_vec()),
        ("sha256sum", &[], [sha.as_bytes(), b"  n\xffme\n"].concat()),
        // b3sum prints names as Unicode.
        (
            "b3sum",
            &[],
            format!("{}  n\u{fffd}me\n", blake3::hash(b"hi\n").to_hex()).into_bytes(),
        ),
    ];
    for (tool, first, expected) in cases {
        let mut args: Vec<&OsStr> = first.iter().map(OsStr::new).collect();
        args.push(name);
        let (path, program) = if tool == "zcopy" {
            (
                PathBuf::from(env!("CARGO_BIN_EXE_zcopy"))
                    .parent()
                    .unwrap()
                    .to_path_buf(),
                "zcopy",
            )
        } else {
            (bin.path().to_path_buf(), tool)
        };
        let out = run_in(&path, dir.path(), program, &args, b"");
        assert_eq!(
            (out.code, &out.stdout),
            (0, &expected),
            "{tool}: {}",
            out.stderr
        );
        if tool != "b3sum" {
            // Raw bytes read back: the check finds the file by the same name.
            std::fs::write(dir.path().join("sums"), &out.stdout).unwrap();
            let mut check = first.iter().map(OsStr::new).collect::<Vec<_>>();
            check.extend([OsStr::new("-c"), OsStr::new("sums")]);
            let checked = run_in(&path, dir.path(), program, &check, b"");
            assert_eq!(checked.code, 0, "{tool} -c: {}", checked.stderr);
            assert_eq!(checked.stdout, b"n\xffme: OK\n", "{tool} -c");
        }
    }
    if have("sha256sum", "non_utf8_names (GNU control)") {
        let gnu = run_in(
            Path::new("/nonexistent"),
            dir.path(),
            "sha256sum",
            &[name],
            b"",
        );
        assert_eq!(gnu.stdout, [sha.as_bytes(), b"  n\xffme\n"].concat());
    }
}

#[test]
fn cp_by_its_name_is_zcopy_cp() {
    let (bin, dir) = (links(), files());
    let out = ours(bin.path(), dir.path(), "cp", &["f", "copy"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read(dir.path().join("copy")).unwrap(), b"hi\n");
    let bad = ours(bin.path(), dir.path(), "cp", &["--no-such-flag", "f", "x"]);
    assert_eq!(bad.code, 1, "a usage error exits 1, as GNU cp's");
    assert!(!dir.path().join("x").exists());
}

/// md5sum, sha1sum, sha224sum, sha384sum and sha512sum by their names: GNU's
/// lines, tags and checks, against the real ones.
#[test]
fn the_other_gnu_sums_agree_with_gnu() {
    let bin = links();
    for tool in ["md5sum", "sha1sum", "sha224sum", "sha384sum", "sha512sum"] {
        if !have(tool, "the_other_gnu_sums_agree_with_gnu") {
            continue;
        }
        let dir = files();
        let gnu = |args: &[&str], stdin: &[u8]| {
            run_in(
                Path::new("/nonexistent"),
                dir.path(),
                tool,
                &os(args),
                stdin,
            )
        };
        let mine =
            |args: &[&str], stdin: &[u8]| run_in(bin.path(), dir.path(), tool, &os(args), stdin);
        let sums = gnu(&["f", "g"], b"").stdout;
        let tagged = gnu(&["--tag", "f"], b"").stdout;
        let mut bad = sums.clone();
        bad.extend_from_slice(b"junk\n");
        for (args, stdin) in [
            (&["f", "g"][..], &b""[..]),
            (&["--tag", "f"], b""),
            (&["-c"], &sums[..]),
            (&["-c"], &tagged[..]),
            (&["-c", "--strict", "-w"], &bad[..]),
            (&["-c"], b"SHA256 (f) = 00\n"),
        ] {
            let (theirs, ours) = (gnu(args, stdin), mine(args, stdin));
            assert_eq!(
                (theirs.code, theirs.stdout(), theirs.stderr),
                (ours.code, ours.stdout(), ours.stderr),
                "{tool} {args:?}"
            );
        }
    }
}
