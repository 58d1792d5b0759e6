//! Reads a file into user space the cheapest way this machine offers (`auto`:
//! `pread` on two threads for large files) and prints a simple checksum of its
//! bytes, with the engine that read them and why it was chosen.
//!
//! ```sh
//! cargo run -p zcopy --example checksum -- FILE
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: checksum FILE");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("checksum: {}: {e}", path.to_string_lossy());
            return ExitCode::FAILURE;
        }
    };
    // Fletcher-style sums: enough to show every byte went through `consume`.
    let (mut a, mut b) = (0u64, 0u64);
    let mut consume = |bytes: &[u8]| {
        for &byte in bytes {
            a = (a + u64::from(byte)) % 0xffff_fff1;
            b = (b + a) % 0xffff_fff1;
        }
    };
    match zcopy::scan(&file, zcopy::ScanChoice::Auto, 4 << 20, &mut consume) {
        Ok(report) => {
            println!("{:016x}  {}", (b << 32) | a, path.to_string_lossy());
            eprintln!(
                "{} bytes by {} ({})",
                report.bytes,
                report.engine.name(),
                report.why
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("checksum: {}: {e}", path.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
