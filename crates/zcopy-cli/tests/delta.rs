//! Delta transfers into a file system that shares extents: the new file built
//! from the old one's chunks keeps sharing the old one's extents.

mod common;

use std::fs::File;
use std::process::Command;

use common::{pattern, LoopMount};
use zcopy_wire::delta::{rebuild, Signature};

/// Bytes of `path` that no other file shares, and its total, by `btrfs filesystem du`.
fn exclusive_and_total(path: &std::path::Path) -> (u64, u64) {
    let out = Command::new("btrfs")
        .args(["filesystem", "du", "--raw"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("btrfs du: {text}"));
    let mut words = line.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    let total = words.next().unwrap();
    (words.next().unwrap(), total)
}

#[test]
fn a_delta_on_btrfs_shares_the_old_files_extents() {
    let test = "a_delta_on_btrfs_shares_the_old_files_extents";
    let Some(mount) = LoopMount::new("btrfs", test) else {
        return;
    };
    let old_path = mount.path().join("old");
    let old = pattern(64 << 20);
    std::fs::write(&old_path, &old).unwrap();
    File::open(&old_path).unwrap().sync_all().unwrap();
    // 256 KiB overwritten at an offset no block or chunk boundary is at.
    let mut new = old.clone();
    let at = (20 << 20) + 12345;
    for b in &mut new[at..at + (256 << 10)] {
        *b = !*b;
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let new_path = elsewhere.path().join("new");
    std::fs::write(&new_path, &new).unwrap();

    let old_file = File::open(&old_path).unwrap();
    let sig = Signature::of(&old_file).unwrap();
    let out_path = mount.path().join("out");
    let out = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&out_path)
        .unwrap();
    let counts = rebuild(
        &old_file,
        &sig,
        &File::open(&new_path).unwrap(),
        &out,
        false,
    )
    .unwrap();
    out.sync_all().unwrap();
    assert!(std::fs::read(&out_path).unwrap() == new);
    assert!(
        std::fs::read(&old_path).unwrap() == old,
        "the old file changed"
    );
    assert!(counts.cloned > 0, "{counts:?}");

    let (exclusive, total) = exclusive_and_total(&out_path);
    assert_eq!(total, new.len() as u64);
    let shared = 1.0 - exclusive as f64 / total as f64;
    eprintln!("{test}: {:.2}% shared, {counts:?}", shared * 100.0);
    assert!(
        shared >= 0.99,
        "the new file shares {:.2}% of its bytes with the old one ({counts:?})",
        shared * 100.0
    );
}
