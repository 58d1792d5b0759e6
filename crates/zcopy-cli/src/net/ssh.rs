//! The remote side of a transfer over ssh (`--ssh-serve`, which the local zcopy
//! passes): its standard input and output, where the local side speaks
//! (`zcopy_wire::remote`), and its end when the local side goes away.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use zcopy_wire::partial;
use zcopy_wire::remote::{relay, Hello, Link};

/// Standard input and output as files, unbuffered, for the line and the relay.
pub fn stdio() -> Result<(File, File)> {
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("stdin")?;
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("stdout")?;
    Ok((File::from(input), File::from(output)))
}

/// Tells the local side `hello`, one line on standard output.
pub fn say(out: &mut File, hello: &Hello) -> Result<()> {
    writeln!(out, "{}", hello.line()).context("telling the local side over ssh")
}

/// The line the local side sent on standard input.
pub fn hear(input: &mut File) -> Result<Hello> {
    let line = relay::read_line(input)
        .context("hearing the local side over ssh")?
        .context("the local side closed the ssh channel before its line")?;
    let text = String::from_utf8_lossy(&line);
    Hello::parse(&text).with_context(|| format!("the local side said {text:?}, not its line"))
}

/// When standard input ends the local side (and ssh) is gone: the transfer can
/// have no one to finish for, so this side ends too, keeping what can resume.
pub fn end_with_input(mut input: File) {
    std::thread::spawn(move || {
        let mut sink = [0u8; 512];
        while matches!(input.read(&mut sink), Ok(n) if n > 0) {}
        partial::remove_unresumable();
        std::process::exit(129);
    });
}

/// The end of a transfer over ssh: after success here, the remote side's own
/// exit (its failure, if any, is this command's); after a failure here, the
/// remote side is told to stop and this side's error stands.
pub fn end(link: Link, result: Result<()>) -> Result<()> {
    match result {
        Ok(()) => Ok(link.finish()?),
        Err(e) => {
            link.abandon();
            Err(e)
        }
    }
}
