//! `copy_file` and `copy_contents`: holes kept, zeros made holes, a clone that
//! must happen or fail, a pipe as the sink, and placement that never leaves half
//! a file under the target's name.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use zcopy::{copy_contents, copy_file, CopyOptions, Error, FdKind, Method, Reflink, Sparse};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// 1 MiB of data, a 16 MiB hole, 1 MiB of data.
fn sparse_file(path: &std::path::Path) -> Vec<u8> {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&pattern(1 << 20)).unwrap();
    f.seek(SeekFrom::Start(17 << 20)).unwrap();
    f.write_all(&pattern(1 << 20)).unwrap();
    let mut want = pattern(1 << 20);
    want.resize(17 << 20, 0);
    want.extend(pattern(1 << 20));
    want
}

#[test]
fn a_sparse_file_keeps_its_holes_and_lands_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let want = sparse_file(&src);
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o4750)).unwrap();
    let options = CopyOptions::default().reflink(Reflink::Never);
    let copied = copy_file(&src, &dst, &options).unwrap();
    assert!(std::fs::read(&dst).unwrap() == want);
    let meta = std::fs::metadata(&dst).unwrap();
    assert!(
        meta.blocks() * 512 < 4 << 20,
        "holes kept: {} blocks",
        meta.blocks()
    );
    assert_eq!(meta.permissions().mode() & 0o7777, 0o750, "no set-uid bit");
    assert!(matches!(copied.method, Method::Engine(_)), "{copied:?}");
    assert_eq!(copied.segments, Some(2));
    assert!(
        copied.describe().contains("2 data segments, holes kept"),
        "{}",
        copied.describe()
    );
    // The same again over the existing copy: replaced whole, nothing beside it.
    std::fs::write(&src, b"short now").unwrap();
    copy_file(&src, &dst, &options).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), b"short now");
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["dst", "src"]);
}

#[test]
fn zeros_become_holes_with_sparse_always() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let mut want = pattern(8192);
    want.extend(vec![0u8; 8 << 20]);
    want.extend(pattern(8192));
    std::fs::write(&src, &want).unwrap();
    let options = CopyOptions::default()
        .reflink(Reflink::Never)
        .sparse(Sparse::Always);
    let copied = copy_file(&src, &dst, &options).unwrap();
    assert_eq!(copied.method, Method::ZerosAsHoles);
    assert!(std::fs::read(&dst).unwrap() == want);
    let blocks = std::fs::metadata(&dst).unwrap().blocks();
    assert!(
        blocks * 512 < 1 << 20,
        "8 MiB of zeros left as a hole: {blocks} blocks"
    );
}

#[test]
fn a_required_clone_that_cannot_happen_fails_and_places_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::write(&src, pattern(100_000)).unwrap();
    let options = CopyOptions::default().reflink(Reflink::Always);
    match copy_file(&src, &dst, &options) {
        Ok(copied) => {
            eprintln!(
                "SKIP: this file system clones ({copied:?}); the failure needs one that cannot"
            );
            assert_eq!(copied.method, Method::Reflink);
        }
        Err(Error::Clone(e)) => {
            assert!(e.raw_os_error().is_some(), "{e}");
            assert!(!dst.exists(), "nothing under the target's name");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
        Err(e) => panic!("not a clone failure: {e}"),
    }
}

#[test]
fn a_sparse_file_into_a_pipe_writes_the_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let want = sparse_file(&src);
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    let mut reader = std::fs::File::from(reader);
    let drain = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    let file = std::fs::File::open(&src).unwrap();
    let meta = file.metadata().unwrap();
    let sink = std::fs::File::from(writer);
    let mut seen = 0;
    let copied = copy_contents(
        &file,
        &meta,
        &sink,
        FdKind::Pipe,
        &CopyOptions::default(),
        &mut |moved| seen = moved,
    )
    .unwrap();
    drop(sink);
    assert!(drain.join().unwrap() == want);
    assert_eq!(seen, want.len() as u64, "progress heard every byte");
    assert_eq!(copied.segments, None, "holes only into files");
}

#[test]
fn a_missing_source_says_which_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = copy_file(
        &dir.path().join("nope"),
        &dir.path().join("dst"),
        &CopyOptions::default(),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("nope") && text.contains("No such file or directory"),
        "{text}"
    );
    assert!(!text.contains("os error"), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
