//! `zcopy echo --listen ADDR`: the seed's `Server`, one thread per connection,
//! echoing every byte back with read-write or splice.

use std::net::{Shutdown, TcpStream};

use anyhow::{bail, Result};
use zcopy::{Engine, EngineChoice, Options, Transfer};

use crate::flags;
use crate::net;
use zcopy::size;

/// Echo every byte back to the sender, one thread per connection (the seed's Server)
///
/// With -v, each connection's peer, bytes and engine when it ends.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on: HOST:PORT, :PORT or PORT (127.0.0.1 unless told)
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Engine: read-write (the seed's Server), splice, or auto
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    /// Buffer size of the read-write engine (1KiB is the seed's Server)
    #[arg(long, value_parser = size::parse_buffer, default_value = "128KiB")]
    buffer: usize,
    #[command(flatten)]
    say: flags::Verbosity,
}

pub fn run(args: Args) -> Result<()> {
    if let EngineChoice::Only(engine @ (Engine::Mmap | Engine::Sendfile | Engine::CopyFileRange)) =
        args.engine
    {
        bail!("echo moves socket to socket: engine {engine} needs a file as source (use read-write or splice)");
    }
    let listener = net::listen(&args.listen)?;
    let options = Options::default().engine(args.engine).buffer(args.buffer);
    let verbose = args.say.verbose();
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                std::thread::spawn(move || echo(stream, options, verbose));
            }
            Err(e) => eprintln!("zcopy: echo: accept: {e}"),
        }
    }
    Ok(())
}

fn echo(stream: TcpStream, options: Options, verbose: bool) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "a peer".to_string(), |a| a.to_string());
    let result =
        Transfer::new(&stream, &stream, options).and_then(|mut t| t.run().map(|_| t.report()));
    match result {
        Ok(report) => {
            let _ = stream.shutdown(Shutdown::Write);
            if verbose {
                eprintln!(
                    "echoed {} bytes to {peer} with {}",
                    report.bytes, report.engine
                );
            }
        }
        Err(e) => eprintln!("zcopy: echo {peer}: {e}"),
    }
}
