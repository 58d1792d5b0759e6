//! The seed's `transferTo` server turned around: every TCP connection to it gets
//! one file, moved by the `auto` engine chain (sendfile from a file into a
//! socket), and the report says which syscalls ran.
//!
//! ```sh
//! cargo run -p zcopy --example serve_file -- FILE 127.0.0.1:9000 &
//! nc 127.0.0.1 9000 > copy
//! ```

use std::net::TcpListener;
use std::process::ExitCode;

use zcopy::{Options, Transfer};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [file, addr] = args.as_slice() else {
        eprintln!("usage: serve_file FILE HOST:PORT");
        return ExitCode::from(2);
    };
    let Some(addr) = addr.to_str() else {
        eprintln!("serve_file: the address is not text");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("serve_file: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for conn in listener.incoming() {
        let result = conn.and_then(|socket| {
            let source = std::fs::File::open(file)?;
            let mut transfer = Transfer::new(&source, &socket, Options::default())?;
            transfer.run()?;
            Ok(transfer.report())
        });
        match result {
            Ok(report) => eprintln!(
                "sent {} bytes with {} [{}]",
                report.bytes, report.engine, report.syscalls
            ),
            Err(e) => eprintln!("serve_file: {e}"),
        }
    }
    ExitCode::SUCCESS
}
