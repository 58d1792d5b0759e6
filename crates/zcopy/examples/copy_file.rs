//! Copies a file the way `cp` does and says how: a clone where the file system
//! can, else the engines over the data segments (holes kept), placed whole.
//!
//! ```sh
//! cargo run -p zcopy --example copy_file -- SRC DST
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        eprintln!("usage: copy_file SRC DST");
        return ExitCode::from(2);
    };
    match zcopy::copy_file(src.as_ref(), dst.as_ref(), &zcopy::CopyOptions::default()) {
        Ok(copied) => {
            println!("{}", copied.describe());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("copy_file: {e}");
            ExitCode::FAILURE
        }
    }
}
