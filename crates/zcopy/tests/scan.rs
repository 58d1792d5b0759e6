//! The scan engines: the same bytes through read, mmap and direct, a file that
//! shrinks under the map, and direct I/O leaving the page cache alone.

use std::fs::File;
use std::io::Write;

use zcopy::{scan, Error, ScanChoice, ScanEngine};

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(17) as u8
        })
        .collect()
}

fn file_with(data: &[u8]) -> File {
    let mut f = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    f.write_all(data).unwrap();
    f.as_file().sync_all().unwrap();
    f.into_file()
}

fn collect(file: &File, choice: ScanChoice, buffer: usize) -> (Vec<u8>, zcopy::ScanReport) {
    let mut got = Vec::new();
    let report = scan(file, choice, buffer, &mut |chunk| {
        got.extend_from_slice(chunk)
    })
    .unwrap();
    (got, report)
}

#[test]
fn every_scan_engine_sees_the_same_bytes() {
    let chunk = zcopy::scan::PAIR_CHUNK;
    for size in [
        0,
        1,
        4095,
        4096,
        65537,
        chunk,
        chunk + 1,
        8 * chunk,
        (8 << 20) + 3,
        // More than two of the mmap engine's 16 MiB windows: a helper populates.
        (40 << 20) + 3,
    ] {
        let data = pattern(size);
        let file = file_with(&data);
        for engine in [
            ScanEngine::Read,
            ScanEngine::Pread,
            ScanEngine::Mmap,
            ScanEngine::Direct,
        ] {
            for buffer in [1024, 128 << 10, 4 << 20] {
                let (got, report) = collect(&file, ScanChoice::Only(engine), buffer);
                assert!(got == data, "{engine} buffer {buffer}: {size} bytes");
                assert_eq!(report.bytes, size as u64);
            }
        }
    }
}

#[test]
fn auto_reads_large_files_on_two_threads_and_small_ones_and_pipes_inline() {
    let big = file_with(&pattern(2 << 20));
    let report = collect(&big, ScanChoice::Auto, 4096).1;
    assert_eq!(report.engine, ScanEngine::Pread);
    assert!(report.why.contains("pread pair"), "{}", report.why);
    assert_eq!(
        collect(&big, ScanChoice::AutoInPlace, 4096).1.engine,
        ScanEngine::Mmap
    );
    let small = file_with(&pattern(100));
    for choice in [ScanChoice::Auto, ScanChoice::AutoInPlace] {
        assert_eq!(collect(&small, choice, 4096).1.engine, ScanEngine::Read);
    }
    let (r, w) = rustix::pipe::pipe().unwrap();
    let mut w = File::from(w);
    w.write_all(b"through a pipe").unwrap();
    drop(w);
    let (got, report) = collect(&File::from(r), ScanChoice::Only(ScanEngine::Mmap), 4096);
    assert_eq!(got, b"through a pipe");
    assert_eq!(report.engine, ScanEngine::Read);
    assert!(report.fallback.unwrap().contains("not a regular file"));
}

/// The kernel copies into page-aligned memory about 4× faster than into memory a
/// few bytes past a page boundary (issue 9): every buffer a scan engine hands to
/// `read`/`pread` starts on a page, which the consumer sees in the chunks' addresses.
#[test]
fn buffers_handed_to_the_kernel_are_page_aligned() {
    let page = rustix::param::page_size();
    let file = file_with(&pattern((3 << 20) + 5));
    for engine in [ScanEngine::Read, ScanEngine::Pread, ScanEngine::Direct] {
        for buffer in [1024, 128 << 10, 4 << 20] {
            let mut misaligned = 0;
            let mut chunks = 0;
            scan(&file, ScanChoice::Only(engine), buffer, &mut |chunk| {
                chunks += 1;
                misaligned += usize::from(!(chunk.as_ptr() as usize).is_multiple_of(page));
            })
            .unwrap();
            assert!(chunks > 0);
            assert_eq!(
                misaligned, 0,
                "{engine} buffer {buffer}: {misaligned} of {chunks}"
            );
        }
    }
}

/// The file is truncated while its mapping is being read: the reader sees SIGBUS,
/// survives it, and reports the shrink instead of a checksum of zeros.
#[test]
fn a_file_that_shrinks_under_the_map_is_an_error_not_a_crash() {
    // One window, read inline; and several, populated ahead by a helper.
    for len in [8 << 20, 40 << 20] {
        let file = file_with(&pattern(len));
        let mut first = true;
        let mut sum = 0u64;
        let err = scan(
            &file,
            ScanChoice::Only(ScanEngine::Mmap),
            4096,
            &mut |chunk| {
                if first {
                    file.set_len(4096).unwrap();
                    first = false;
                }
                sum += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::SourceShrank { size: 4096 }),
            "{len}: {err}"
        );
    }
    // The process is alive and mapping still works afterwards.
    let again = file_with(&pattern(3 << 20));
    assert_eq!(
        collect(&again, ScanChoice::Only(ScanEngine::Mmap), 4096).0,
        pattern(3 << 20)
    );
}

fn cached_pages(file: &File, len: usize) -> usize {
    let map = unsafe { memmap2::Mmap::map(file) }.unwrap();
    let pages = len.div_ceil(4096);
    let mut vec = vec![0u8; pages];
    // SAFETY: `map` covers `len` bytes and `vec` has one byte per page.
    let rc = unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0);
    vec.iter().filter(|&&v| v & 1 == 1).count()
}

#[test]
fn direct_leaves_the_page_cache_as_it_found_it() {
    let len = 4 << 20;
    let file = file_with(&pattern(len));
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    let before = cached_pages(&file, len);
    let (got, report) = collect(&file, ScanChoice::Only(ScanEngine::Direct), 1 << 20);
    if report.engine != ScanEngine::Direct {
        eprintln!(
            "SKIP direct_leaves_the_page_cache_as_it_found_it: {}",
            report.fallback.unwrap_or_default()
        );
        return;
    }
    assert!(got == pattern(len));
    assert_eq!(
        cached_pages(&file, len),
        before,
        "direct I/O added pages to the cache"
    );
    collect(&file, ScanChoice::Only(ScanEngine::Read), 1 << 20);
    assert!(
        cached_pages(&file, len) > before,
        "buffered reads fill the cache (the check works)"
    );
}

/// A consumer that panics mid-file unwinds out of the pread pair and out of the
/// mmap engine; the helper thread is stopped rather than left parked (or blocked
/// handing over its next window) with the scope waiting for it.
#[test]
fn a_panicking_consumer_does_not_hang_the_pair() {
    let file = file_with(&pattern(40 << 20));
    for engine in [ScanEngine::Pread, ScanEngine::Mmap] {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut chunks = 0;
            scan(&file, ScanChoice::Only(engine), 4096, &mut |_| {
                chunks += 1;
                assert!(chunks < 2, "the consumer gives up");
            })
        }));
        assert!(result.is_err(), "{engine}");
    }
}

/// procfs and sysfs files report a size of 0 or 4096 whatever they hold, and sysfs
/// cannot be mapped: every engine still reads exactly what `read` reads.
#[test]
fn proc_and_sys_files_whose_size_lies() {
    for path in [
        "/proc/version",
        "/proc/self/cmdline",
        "/sys/devices/system/cpu/possible",
    ] {
        let Ok(want) = std::fs::read(path) else {
            eprintln!("SKIP {path}: not readable here");
            continue;
        };
        assert!(!want.is_empty(), "{path}");
        for engine in [
            ScanEngine::Read,
            ScanEngine::Pread,
            ScanEngine::Mmap,
            ScanEngine::Direct,
        ] {
            let file = File::open(path).unwrap();
            let (got, _) = collect(&file, ScanChoice::Only(engine), 4096);
            assert_eq!(got, want, "{engine}: {path}");
        }
        let (got, _) = collect(&File::open(path).unwrap(), ScanChoice::Auto, 4096);
        assert_eq!(got, want, "auto: {path}");
    }
}
