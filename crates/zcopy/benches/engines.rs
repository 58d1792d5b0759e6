//! Micro-benchmarks of each engine on a small (4 KiB) and a large (8 MiB) page-cached
//! file: file → /dev/null for the stream engines, file → file for copy_file_range.
//! Whole transfers over sockets are `zcopy bench`'s job.

use std::fs::File;
use std::io::Write;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zcopy::{Engine, EngineChoice, Options, Transfer};

fn engines(c: &mut Criterion) {
    let devnull = File::options().write(true).open("/dev/null").unwrap();
    for size in [4usize << 10, 8 << 20] {
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(&vec![7u8; size]).unwrap();
        let mut group = c.benchmark_group(format!("{} KiB", size >> 10));
        group.throughput(Throughput::Bytes(size as u64));
        for engine in Engine::CHAIN {
            let options = Options::default()
                .engine(EngineChoice::Only(engine))
                .len(size as u64);
            group.bench_with_input(
                BenchmarkId::from_parameter(engine),
                &options,
                |b, &options| {
                    if engine == Engine::CopyFileRange {
                        let sink = tempfile::tempfile().unwrap();
                        b.iter(|| {
                            sink.set_len(0).unwrap();
                            rustix::fs::seek(&sink, rustix::fs::SeekFrom::Start(0)).unwrap();
                            Transfer::new(&src, &sink, options).unwrap().run().unwrap()
                        });
                    } else {
                        b.iter(|| {
                            Transfer::new(&src, &devnull, options)
                                .unwrap()
                                .run()
                                .unwrap()
                        });
                    }
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, engines);
criterion_main!(benches);
