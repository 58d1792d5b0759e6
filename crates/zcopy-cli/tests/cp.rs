//! `zcopy cp` as users of GNU cp expect it, sparse files, and reflinks on real btrfs
//! and xfs images attached to loop devices (root only; skipped with a reason).

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{have, names_in, pattern, zcopy, LoopMount, Tmpfs};

fn cp(args: &[&str]) -> (i32, String) {
    let o = zcopy().arg("cp").args(args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap() + &String::from_utf8(o.stderr).unwrap(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn copies_with_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let data = pattern((5 << 20) + 3);
    std::fs::write(&src, &data).unwrap();
    for engine in [
        "auto",
        "copy-file-range",
        "sendfile",
        "splice",
        "mmap",
        "read-write",
    ] {
        let dst = dir.path().join(format!("dst-{engine}"));
        let (code, err) = cp(&["-vv", "--engine", engine, s(&src), s(&dst)]);
        assert_eq!(code, 0, "{err}");
        assert!(std::fs::read(&dst).unwrap() == data, "{engine}");
        let want = if engine == "auto" {
            "copy-file-range"
        } else {
            engine
        };
        assert!(
            err.contains(&format!("({want}")),
            "-v names the engine: {err}"
        );
    }
}

#[test]
fn preserves_mode_and_times_with_p() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("script");
    std::fs::write(&src, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o751)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let dst = dir.path().join("copy");
    assert_eq!(cp(&["-p", s(&src), s(&dst)]).0, 0);
    let meta = std::fs::metadata(&dst).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o751);
    assert_eq!(meta.mtime(), 1_000_000_000);
    let plain = dir.path().join("plain");
    assert_eq!(cp(&[s(&src), s(&plain)]).0, 0);
    assert_ne!(
        std::fs::metadata(&plain).unwrap().mtime(),
        1_000_000_000,
        "without -p the time is new"
    );
}

#[test]
fn several_sources_into_a_directory_and_the_errors_of_gnu_cp() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, sub, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("sub"),
        dir.path().join("out"),
    );
    std::fs::write(&a, b"A").unwrap();
    std::fs::write(&b, b"B").unwrap();
    std::fs::create_dir(&sub).unwrap();
    std::fs::create_dir(&out).unwrap();

    let (code, err) = cp(&[s(&a), s(&sub), s(&b), s(&out)]);
    assert_eq!(code, 1, "a directory without -r fails, the rest is copied");
    assert!(
        err.contains(&format!(
            "-r not specified; omitting directory '{}'",
            sub.display()
        )),
        "{err}"
    );
    assert_eq!(names_in(&out), ["a", "b"]);

    let nodir = dir.path().join("nodir");
    let (code, err) = cp(&[s(&a), s(&b), s(&nodir)]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "zcopy: target '{}': No such file or directory\n",
            nodir.display()
        )
    );

    let (code, err) = cp(&[s(&a), s(&a)]);
    assert_eq!(code, 1);
    assert!(err.contains("are the same file"), "{err}");

    let (code, err) = cp(&[s(&a), "/nonexistent-dir/x"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "zcopy: cannot create regular file '/nonexistent-dir/x': No such file or directory\n"
    );

    let (code, err) = cp(&[s(&dir.path().join("missing")), s(&out)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot stat") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(
        names_in(dir.path()),
        ["a", "b", "out", "sub"],
        "no temporary file left anywhere"
    );
}

#[test]
fn trees_with_r_keep_symlinks_as_links() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("deep/er")).unwrap();
    std::fs::write(tree.join("deep/er/f"), pattern(70_000)).unwrap();
    std::fs::write(tree.join("top"), b"top").unwrap();
    std::os::unix::fs::symlink("deep/er/f", tree.join("link")).unwrap();
    let copy = dir.path().join("copy");
    let (code, err) = cp(&["-r", s(&tree), s(&copy)]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(copy.join("deep/er/f")).unwrap() == pattern(70_000));
    assert_eq!(
        std::fs::read_link(copy.join("link")).unwrap(),
        PathBuf::from("deep/er/f")
    );
    assert_eq!(names_in(&copy), ["deep", "link", "top"]);
    // Into an existing directory: the tree lands under its own name.
    assert_eq!(cp(&["-r", s(&tree), s(&copy)]).0, 0);
    assert_eq!(names_in(&copy.join("tree")), ["deep", "link", "top"]);
    let (code, err) = cp(&["-r", s(&tree), s(&tree.join("deep"))]);
    assert_eq!(code, 1);
    assert!(err.contains("into itself"), "{err}");
}

#[test]
fn sparse_files_keep_their_holes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sparse");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(10 << 30).unwrap();
    let data = pattern(1 << 20);
    rustix::io::pwrite(&f, &data, 5 << 30).unwrap();
    f.sync_all().unwrap();
    let dst = dir.path().join("copy");
    let (code, err) = cp(&["-vv", s(&src), s(&dst)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("holes kept"), "{err}");
    let (a, b) = (
        std::fs::metadata(&src).unwrap(),
        std::fs::metadata(&dst).unwrap(),
    );
    assert_eq!(b.len(), 10 << 30);
    assert!(
        b.blocks() <= a.blocks(),
        "copy uses {} blocks, source {}",
        b.blocks(),
        a.blocks()
    );
    let mut got = vec![0u8; data.len()];
    rustix::io::pread(std::fs::File::open(&dst).unwrap(), &mut got, 5 << 30).unwrap();
    assert!(got == data);
    // --sparse never writes the holes out as zeros (a small file, to keep it quick).
    let small = dir.path().join("small-sparse");
    let f = std::fs::File::create(&small).unwrap();
    f.set_len(16 << 20).unwrap();
    rustix::io::pwrite(&f, &data, 4 << 20).unwrap();
    let dense = dir.path().join("dense");
    assert_eq!(
        cp(&["--sparse", "never", "--reflink=never", s(&small), s(&dense)]).0,
        0
    );
    assert!(std::fs::metadata(&dense).unwrap().blocks() >= (16 << 20) / 512);
    assert!(std::fs::read(&dense).unwrap() == std::fs::read(&small).unwrap());
}

#[test]
fn reflink_always_fails_clearly_where_the_file_system_cannot_clone() {
    let dir = tempfile::tempdir().unwrap();
    let fs = rustix::fs::statfs(dir.path()).unwrap();
    if fs.f_type as u64 != 0xEF53 {
        eprintln!("SKIP reflink_always_fails_clearly…: the temp dir is not ext4");
        return;
    }
    let src = dir.path().join("a");
    std::fs::write(&src, b"x").unwrap();
    let (code, err) = cp(&["--reflink=always", s(&src), s(&dir.path().join("b"))]);
    assert_eq!(code, 1);
    assert!(
        err.contains("failed to clone") && err.contains("Operation not supported"),
        "{err}"
    );
    assert_eq!(names_in(dir.path()), ["a"]);
}

/// The seeds' copy-on-write, shown: the clone shares its extents with the source
/// (FIEMAP's SHARED flag, via filefrag) until it is written, and writing it leaves
/// the source as it was.
fn reflink_shares_extents(fs: &str, test: &str) {
    let Some(mount) = LoopMount::new(fs, test) else {
        return;
    };
    let src = mount.path().join("src");
    let data = pattern(8 << 20);
    std::fs::write(&src, &data).unwrap();
    std::fs::File::open(&src).unwrap().sync_all().unwrap();
    let dst = mount.path().join("clone");
    let (code, err) = cp(&["-vv", "--reflink=always", s(&src), s(&dst)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(reflink)"), "{err}");
    let frag = Command::new("filefrag")
        .arg("-v")
        .arg(&dst)
        .output()
        .unwrap();
    let frag = String::from_utf8_lossy(&frag.stdout);
    assert!(
        frag.contains("shared"),
        "{fs}: the clone's extents are not shared:\n{frag}"
    );
    std::fs::File::options().write(true).open(&dst).unwrap();
    rustix::io::pwrite(
        std::fs::File::options().write(true).open(&dst).unwrap(),
        b"changed",
        4096,
    )
    .unwrap();
    assert!(
        std::fs::read(&src).unwrap() == data,
        "{fs}: writing the clone changed the source"
    );
    assert_eq!(&std::fs::read(&dst).unwrap()[4096..4103], b"changed");
}

#[test]
fn reflink_on_btrfs() {
    reflink_shares_extents("btrfs", "reflink_on_btrfs");
}

#[test]
fn reflink_on_xfs() {
    reflink_shares_extents("xfs", "reflink_on_xfs");
}

/// A directory of 300 files, shared between two threads, in place or not.
#[test]
fn a_large_directory_is_copied_whole_on_two_threads() {
    for inplace in [false, true] {
        a_large_directory_copied(inplace);
    }
}

fn a_large_directory_copied(inplace: bool) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("many");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    for i in 0..300 {
        let data = pattern(i * 37);
        std::fs::write(tree.join(format!("f{i}")), &data).unwrap();
        std::fs::set_permissions(
            tree.join(format!("f{i}")),
            std::fs::Permissions::from_mode(0o600 | ((i as u32 % 2) * 0o44)),
        )
        .unwrap();
    }
    std::fs::write(tree.join("sub/inner"), b"inner").unwrap();
    let copy = dir.path().join("copy");
    let mut args = vec!["-r", s(&tree), s(&copy)];
    if inplace {
        args.push("--inplace");
    }
    let (code, err) = cp(&args);
    assert_eq!(code, 0, "{err}");
    for i in 0..300 {
        let (a, b) = (tree.join(format!("f{i}")), copy.join(format!("f{i}")));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "f{i}"
        );
        assert_eq!(
            std::fs::metadata(&a).unwrap().mode(),
            std::fs::metadata(&b).unwrap().mode()
        );
    }
    assert_eq!(std::fs::read(copy.join("sub/inner")).unwrap(), b"inner");
    assert_eq!(names_in(&copy).len(), 301, "no temporary names left");
}

#[test]
fn devices_and_fifos_as_destinations_are_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let data = pattern(300_000);
    std::fs::write(&src, &data).unwrap();
    let (code, err) = cp(&[s(&src), "/dev/null"]);
    assert_eq!(code, 0, "{err}");
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&null.file_type()),
        "/dev/null is still a device"
    );
    let (code, err) = cp(&["--engine", "read-write", s(&src), "/dev/full"]);
    assert_eq!(code, 1);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &std::fs::metadata("/dev/full").unwrap().file_type()
    ));
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let (code, err) = cp(&[s(&src), s(&fifo)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        reader.join().unwrap() == data,
        "the reader of the FIFO got the file"
    );
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::metadata(&fifo).unwrap().file_type()
    ));
}

/// A disk that fills up midway: one line naming the file and the cause, exit 1,
/// and nothing left under the target's name, written in place or not.
#[test]
fn a_full_disk_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&small, "size=1m", "a_full_disk_leaves_no_partial_file") else {
        return;
    };
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pattern(2 << 20)).unwrap();
    for inplace in [false, true] {
        let target = small.join("big.bin");
        let mut args = vec![s(&big), s(&target)];
        if inplace {
            args.push("--inplace");
        }
        let (code, err) = cp(&args);
        assert_eq!(code, 1, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("big.bin") && err.contains("No space left on device"),
            "{err}"
        );
        assert_eq!(
            names_in(&small),
            Vec::<String>::new(),
            "--inplace {inplace}"
        );
    }
}

/// zcopy's cp under the name `cp` (GNU's words and exit codes), or GNU cp itself,
/// run in `dir`, as the user nobody when `nobody`.
fn run_cp(gnu: bool, dir: &Path, args: &[&OsStr], nobody: bool) -> Output {
    let bin = if gnu {
        "/usr/bin/cp"
    } else {
        env!("CARGO_BIN_EXE_zcopy")
    };
    let mut cmd = if nobody {
        // setpriv runs its argument by path: bash (dash has no exec -a) names it cp.
        let mut cmd = Command::new("setpriv");
        // Also in group 100, to see a failed chown keep the group it may.
        cmd.args(["--reuid=65534", "--regid=65534", "--groups=100"]);
        cmd.args(["bash", "-c", "exec -a cp \"$0\" \"$@\"", bin]);
        cmd
    } else {
        let mut cmd = Command::new(bin);
        cmd.arg0("cp");
        cmd
    };
    cmd.args(args).current_dir(dir).output().unwrap()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn a_symlink_onto_the_file_it_points_to_is_refused() {
    for flag in ["-d", "-P", "-a"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("foo"), "the only copy").unwrap();
        std::os::unix::fs::symlink("foo", dir.path().join("link")).unwrap();
        let out = run_cp(false, dir.path(), &[os(flag), os("link"), os("foo")], false);
        assert_eq!(out.status.code(), Some(1), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "cp: 'link' and 'foo' are the same file\n"
        );
        let foo = std::fs::symlink_metadata(dir.path().join("foo")).unwrap();
        assert!(foo.is_file(), "{flag}: foo is still a file");
        assert_eq!(
            std::fs::read(dir.path().join("foo")).unwrap(),
            b"the only copy"
        );
    }
}

#[test]
fn nothing_is_written_through_a_symlink_the_copy_just_made() {
    for t_exists in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::os::unix::fs::symlink("../t", dir.path().join("a/1")).unwrap();
        std::fs::write(dir.path().join("b/1"), "payload").unwrap();
        if t_exists {
            std::fs::write(dir.path().join("t"), "i").unwrap();
        }
        let args = [os("-dR"), os("a/1"), os("b/1"), os("c")];
        let out = run_cp(false, dir.path(), &args, false);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "cp: will not copy 'b/1' through just-created symlink 'c/1'\n"
        );
        match std::fs::read(dir.path().join("t")) {
            Ok(t) => assert!(t_exists && t == b"i", "t untouched"),
            Err(_) => assert!(!t_exists, "t not made"),
        }
    }
}

#[test]
fn an_existing_destination_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, again) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("again"),
    );
    std::fs::write(&src, "new contents").unwrap();
    std::fs::write(&dst, "old").unwrap();
    std::fs::hard_link(&dst, &again).unwrap();
    let before = std::fs::metadata(&dst).unwrap();
    for extra in [None, Some("--inplace")] {
        let mut args = vec![s(&src), s(&dst)];
        args.extend(extra);
        let (code, err) = cp(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read(&again).unwrap(), b"new contents", "{extra:?}");
        assert_eq!(std::fs::metadata(&dst).unwrap().ino(), before.ino());
    }
    // --remove-destination makes a new file: the other name keeps the old one.
    std::fs::write(&src, "newer").unwrap();
    let (code, err) = cp(&["--remove-destination", s(&src), s(&dst)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&dst).unwrap(), b"newer");
    assert_eq!(std::fs::read(&again).unwrap(), b"new contents");
    if rustix::process::geteuid().is_root() {
        // Root writing over someone's file leaves it theirs.
        std::os::unix::fs::chown(&again, Some(65534), Some(65534)).unwrap();
        assert_eq!(cp(&[s(&src), s(&again)]).0, 0);
        let meta = std::fs::metadata(&again).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    }
}

/// An ordinary user's copies, as GNU cp makes them: a read-only or someone
/// else's destination is refused and untouched, -f replaces a mode-000 one with
/// a readable file, and -p of someone else's set-user-ID program drops the bits
/// (keeping the group where the user may).
#[test]
fn an_ordinary_users_copies_keep_to_their_permissions() {
    if !rustix::process::geteuid().is_root() || !have("setpriv", "an_ordinary_users_copies") {
        eprintln!(
            "SKIP an_ordinary_users_copies_keep_to_their_permissions: needs root to become nobody"
        );
        return;
    }
    for gnu in [true, false] {
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.path().join("home");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let make_as = |name: &str, body: &str, mode: u32, owner: u32, group: u32| {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            std::os::unix::fs::chown(&path, Some(owner), Some(group)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let make =
            |name: &str, body: &str, mode: u32, owner: u32| make_as(name, body, mode, owner, owner);
        make("src", "new\n", 0o644, 65534);
        make_as("grouped", "g\n", 0o2755, 0, 100);
        make("ro", "old\n", 0o444, 65534);
        make("roots", "root's\n", 0o644, 0);
        make("none", "old\n", 0o000, 65534);
        make("suid", "#!/bin/sh\n", 0o6755, 0);
        let who = if gnu { "GNU cp" } else { "zcopy" };
        let run = |args: &[&str]| {
            let args: Vec<&OsStr> = args.iter().map(|a| os(a)).collect();
            run_cp(gnu, &dir, &args, true)
        };

        let out = run(&["src", "ro"]);
        assert_eq!(out.status.code(), Some(1), "{who}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "cp: cannot create regular file 'ro': Permission denied\n",
            "{who}"
        );
        assert_eq!(std::fs::read(dir.join("ro")).unwrap(), b"old\n");
        // -i asks GNU's other question; no answer (stdin at its end) is a no.
        let out = run(&["-i", "src", "ro"]);
        assert_eq!(out.status.code(), Some(0), "{who}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "cp: unwritable 'ro' (mode 0444, r--r--r--); try anyway? ",
            "{who}"
        );
        assert_eq!(std::fs::read(dir.join("ro")).unwrap(), b"old\n");

        let out = run(&["src", "roots"]);
        assert_eq!(out.status.code(), Some(1), "{who}");
        let roots = std::fs::metadata(dir.join("roots")).unwrap();
        assert_eq!(roots.uid(), 0, "{who}: still root's");
        assert_eq!(std::fs::read(dir.join("roots")).unwrap(), b"root's\n");

        let out = run(&["-f", "src", "none"]);
        assert_eq!(out.status.code(), Some(0), "{who}: {out:?}");
        let none = std::fs::metadata(dir.join("none")).unwrap();
        assert_eq!(none.mode() & 0o777, 0o644, "{who}: readable now");
        assert_eq!(std::fs::read(dir.join("none")).unwrap(), b"new\n");

        let out = run(&["-p", "suid", "copy"]);
        assert_eq!(out.status.code(), Some(0), "{who}: {out:?}");
        let copy = std::fs::metadata(dir.join("copy")).unwrap();
        assert_eq!(copy.uid(), 65534, "{who}");
        assert_eq!(copy.mode() & 0o7777, 0o755, "{who}: no set-ID bits");

        let out = run(&["-p", "grouped", "grouped-copy"]);
        assert_eq!(out.status.code(), Some(0), "{who}: {out:?}");
        let copy = std::fs::metadata(dir.join("grouped-copy")).unwrap();
        assert_eq!(
            (copy.uid(), copy.gid()),
            (65534, 100),
            "{who}: the group kept"
        );
        assert_eq!(copy.mode() & 0o7777, 0o755, "{who}: no set-group-ID bit");
    }
}

#[test]
fn a_dot_source_copies_the_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (src, into) = (dir.path().join("s"), dir.path().join("d"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("f"), "f").unwrap();
    std::fs::create_dir(&into).unwrap();
    let dot = src.join(".");
    let (code, err) = cp(&["-r", s(&dot), s(&into)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names_in(&into), ["f", "sub"]);
    let out = zcopy()
        .args(["cp", "-r", ".", "../e"])
        .current_dir(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(names_in(&dir.path().join("e")), ["f", "sub"]);
}

#[test]
fn a_sparse_file_into_a_fifo_writes_the_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sparse");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(4 << 20).unwrap();
    rustix::io::pwrite(&f, &pattern(5000), 2 << 20).unwrap();
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let (code, err) = cp(&[s(&src), s(&fifo)]);
    assert_eq!(code, 0, "{err}");
    assert!(reader.join().unwrap() == std::fs::read(&src).unwrap());
}

#[test]
fn sparse_always_makes_holes_of_runs_of_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("dense");
    let mut body = vec![0u8; 4 << 20];
    body[..5000].copy_from_slice(&pattern(5000));
    std::fs::write(&src, &body).unwrap();
    let dst = dir.path().join("copy");
    let (code, err) = cp(&["--sparse=always", "--reflink=never", s(&src), s(&dst)]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&dst).unwrap() == body);
    let copy = std::fs::metadata(&dst).unwrap();
    if rustix::fs::statfs(dir.path()).unwrap().f_type == 0x0102_1994 {
        // tmpfs keeps holes too; any file system that does shows it in st_blocks.
        assert!(copy.blocks() * 512 < 1 << 20, "{} blocks", copy.blocks());
    } else {
        assert!(
            copy.blocks() * 512 < (4 << 20) / 2,
            "{} blocks: the zeros were written",
            copy.blocks()
        );
    }
}

#[test]
fn names_that_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"a\xffb");
    std::fs::write(dir.path().join(name), "bytes").unwrap();
    let out = zcopy()
        .arg("cp")
        .arg(name)
        .arg(OsStr::from_bytes(b"c\xfe"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(dir.path().join(OsStr::from_bytes(b"c\xfe"))).unwrap(),
        b"bytes"
    );
    let out = run_cp(
        false,
        dir.path(),
        &[OsStr::from_bytes(b"m\xff"), os("x")],
        false,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cp: cannot stat 'm'$'\\377': No such file or directory\n"
    );
}

#[test]
fn posixly_correct_writes_through_a_dangling_symlink() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "hi").unwrap();
    std::os::unix::fs::symlink("no-such", dir.path().join("dangle")).unwrap();
    let out = run_cp(false, dir.path(), &[os("f"), os("dangle")], false);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cp: not writing through dangling symlink 'dangle'\n"
    );
    assert!(!dir.path().join("no-such").exists());
    let out = zcopy()
        .args(["cp", "f", "dangle"])
        .env("POSIXLY_CORRECT", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(dir.path().join("no-such")).unwrap(), b"hi");
}

#[test]
fn update_none_debug_and_copy_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, "new").unwrap();
    std::fs::write(&b, "old").unwrap();
    assert_eq!(cp(&["--update=none", s(&a), s(&b)]).0, 0);
    assert_eq!(std::fs::read(&b).unwrap(), b"old");
    let c = dir.path().join("c");
    let (code, out) = cp(&["--debug", "--reflink=never", s(&a), s(&c)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("copy offload: "), "{out}");
    // -r --copy-contents reads a FIFO instead of making one.
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let fifo = tree.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let writer = std::thread::spawn(move || std::fs::write(fifo, "through the fifo").unwrap());
    let copy = dir.path().join("copy");
    let (code, out) = cp(&["-r", "--copy-contents", s(&tree), s(&copy)]);
    writer.join().unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read(copy.join("fifo")).unwrap(),
        b"through the fifo"
    );
}

/// `-p` keeps a file's ACL with its mode, as GNU cp does (GNU's tests/cp/acl.sh).
#[test]
fn p_keeps_access_control_lists() {
    if !have("setfacl", "p_keeps_access_control_lists") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, plain, kept) = (
        dir.path().join("file"),
        dir.path().join("plain"),
        dir.path().join("kept"),
    );
    std::fs::write(&src, "x").unwrap();
    let set = Command::new("setfacl")
        .args(["-m", "user:65534:rw-", s(&src)])
        .status()
        .unwrap();
    if !set.success() {
        eprintln!("SKIP p_keeps_access_control_lists: no ACLs on this file system");
        return;
    }
    let acl = |path: &Path| {
        rustix::fs::getxattr(path, "system.posix_acl_access", &mut [0u8; 256][..]).is_ok()
    };
    assert_eq!(cp(&[s(&src), s(&plain)]).0, 0);
    assert!(!acl(&plain), "without -p, no ACL");
    let (code, err) = cp(&["-p", s(&src), s(&kept)]);
    assert_eq!(code, 0, "{err}");
    let get = |path: &Path| {
        let mut value = vec![0u8; 256];
        let len = rustix::fs::getxattr(path, "system.posix_acl_access", &mut value[..]).unwrap();
        value.truncate(len);
        value
    };
    assert_eq!(get(&kept), get(&src));
}
