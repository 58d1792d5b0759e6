//! The fallback rules of Rust std's `kernel_copy.rs`, each with a real case: sources
//! whose size lies (procfs, sysfs, a pipe), a syscall refused for the files at hand
//! (EPERM from an immutable file) that must not be cached as missing, and EXDEV
//! between file systems.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::process::Command;

use zcopy::{Engine, EngineChoice, Options, Transfer};

fn copy(src: &File, sink: &File, engine: EngineChoice) -> Result<zcopy::Report, zcopy::Error> {
    let options = Options::default().engine(engine);
    let mut transfer = Transfer::new(src, sink, options)?;
    transfer.run()?;
    Ok(transfer.report())
}

fn contents(mut file: &File) -> Vec<u8> {
    let mut got = Vec::new();
    file.rewind().unwrap();
    file.read_to_end(&mut got).unwrap();
    got
}

#[test]
fn a_procfs_file_of_size_zero_is_read_to_its_end() {
    // /proc/version: st_size 0, stable contents.
    let want = std::fs::read("/proc/version").unwrap();
    assert!(!want.is_empty());
    let src = File::open("/proc/version").unwrap();
    assert_eq!(src.metadata().unwrap().len(), 0);
    for engine in [
        EngineChoice::Auto,
        EngineChoice::Only(Engine::Sendfile),
        EngineChoice::Only(Engine::Splice),
        EngineChoice::Only(Engine::ReadWrite),
    ] {
        let sink = tempfile::tempfile().unwrap();
        copy(&src, &sink, engine).unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(contents(&sink), want, "{engine}");
    }
}

#[test]
fn a_single_engine_that_would_lose_a_procfs_file_is_an_error() {
    // mmap goes by the size, 0, and would find nothing to map: silent loss, unless
    // the transfer checks by reading.
    let src = File::open("/proc/version").unwrap();
    let sink = tempfile::tempfile().unwrap();
    let err = copy(&src, &sink, EngineChoice::Only(Engine::Mmap)).unwrap_err();
    assert!(err.to_string().contains("size lies"), "{err}");
    // copy_file_range refuses procfs (EXDEV since Linux 5.19) or finds 0 bytes:
    // either way an error, never an empty copy.
    let sink = tempfile::tempfile().unwrap();
    assert!(copy(&src, &sink, EngineChoice::Only(Engine::CopyFileRange)).is_err());
}

#[test]
fn a_sysfs_file_is_copied_whole_whatever_its_size_says() {
    let Some(path) = [
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "/sys/devices/system/cpu/online",
        "/sys/power/state",
    ]
    .into_iter()
    .find(|p| std::fs::read(p).is_ok_and(|b| !b.is_empty())) else {
        eprintln!("SKIP a_sysfs_file_is_copied_whole: no readable sysfs file here");
        return;
    };
    let want = std::fs::read(path).unwrap();
    let src = File::open(path).unwrap();
    let size = src.metadata().unwrap().len();
    assert_ne!(
        size,
        want.len() as u64,
        "{path}: sysfs reports a size it has not"
    );
    for engine in [
        EngineChoice::Auto,
        EngineChoice::Only(Engine::Sendfile),
        EngineChoice::Only(Engine::Splice),
        EngineChoice::Only(Engine::ReadWrite),
    ] {
        let sink = tempfile::tempfile().unwrap();
        copy(&src, &sink, engine).unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(contents(&sink), want, "{engine}");
    }
}

#[test]
fn a_pipe_source_is_read_to_its_end() {
    let (read, write) = rustix::pipe::pipe().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let feed = data.clone();
    let writer = std::thread::spawn(move || File::from(write).write_all(&feed).unwrap());
    let src = File::from(read);
    let sink = tempfile::tempfile().unwrap();
    let report = copy(&src, &sink, EngineChoice::Auto).unwrap();
    writer.join().unwrap();
    assert_eq!(contents(&sink), data);
    assert_eq!(report.engine, Engine::Splice);
}

#[test]
fn eperm_from_an_immutable_file_is_not_taken_for_a_missing_syscall() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP eperm_from_an_immutable_file: needs root for chattr +i");
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src_path = dir.path().join("src");
    std::fs::write(&src_path, b"immutable test data").unwrap();
    let sink_path = dir.path().join("sink");
    let sink = File::create(&sink_path).unwrap();
    let chattr = Command::new("chattr").arg("+i").arg(&sink_path).status();
    if !chattr.is_ok_and(|s| s.success()) {
        eprintln!("SKIP eperm_from_an_immutable_file: chattr +i is not possible here");
        return;
    }
    let src = File::open(&src_path).unwrap();
    let result = copy(&src, &sink, EngineChoice::Auto);
    Command::new("chattr")
        .arg("-i")
        .arg(&sink_path)
        .status()
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    // The probe found copy_file_range working: the next copy still uses it.
    let sink = tempfile::tempfile_in(dir.path()).unwrap();
    let report = copy(&src, &sink, EngineChoice::Auto).unwrap();
    assert_eq!(report.engine, Engine::CopyFileRange, "{:?}", report.skipped);
}

#[test]
fn exdev_between_file_systems_falls_back() {
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("SKIP exdev_between_file_systems: no /dev/shm tmpfs");
        return;
    }
    let mut src = tempfile::tempfile_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = vec![7u8; 300_000];
    src.write_all(&data).unwrap();
    let sink = tempfile::tempfile_in(shm).unwrap();
    let report = copy(&src, &sink, EngineChoice::Auto).unwrap();
    assert_eq!(contents(&sink), data);
    let why: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(report.engine, Engine::Sendfile);
    assert!(why.iter().any(|w| w.contains("EXDEV")), "{why:?}");
}
