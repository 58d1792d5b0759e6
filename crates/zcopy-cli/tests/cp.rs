//! `zcopy cp` as users of GNU cp expect it, sparse files, and reflinks on real btrfs
//! and xfs images attached to loop devices (root only; skipped with a reason).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have, names_in, pattern, zcopy, Tmpfs};

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

    let (code, err) = cp(&[s(&a), s(&b), s(&dir.path().join("nodir"))]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a directory"), "{err}");

    let (code, err) = cp(&[s(&a), s(&a)]);
    assert_eq!(code, 1);
    assert!(err.contains("are the same file"), "{err}");

    let (code, err) = cp(&[s(&a), "/nonexistent-dir/x"]);
    assert_eq!(code, 1);
    assert_eq!(err, "zcopy: cannot create regular file '/nonexistent-dir/x': No such file or directory (os error 2)\n");

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

/// A file system image on a loop device, unmounted and detached on drop.
struct LoopMount {
    dir: tempfile::TempDir,
    device: String,
}

impl LoopMount {
    fn new(fs: &str, test: &str) -> Option<LoopMount> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP {test}: needs root for losetup and mount");
            return None;
        }
        let mkfs = format!("mkfs.{fs}");
        if !have(&mkfs, test) || !have("losetup", test) || !have("filefrag", test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(512 << 20)
            .unwrap();
        let ok = |cmd: &mut Command| {
            cmd.output().map(|o| {
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stdout).trim().to_string(),
                )
            })
        };
        let (made, _) = ok(Command::new(&mkfs).arg("-q").arg(&image)).unwrap();
        assert!(made, "{mkfs} failed");
        let (attached, device) =
            ok(Command::new("losetup").args(["-f", "--show"]).arg(&image)).unwrap();
        if !attached {
            eprintln!("SKIP {test}: losetup could not attach a loop device here");
            return None;
        }
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let (mounted, _) = ok(Command::new("mount").arg(&device).arg(&mnt)).unwrap();
        if !mounted {
            let _ = Command::new("losetup").args(["-d", &device]).status();
            eprintln!("SKIP {test}: mounting {fs} failed here");
            return None;
        }
        Some(LoopMount { dir, device })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
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
