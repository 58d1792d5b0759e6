//! `send PATH... [user@]host:[DIR]`: the receiver started over ssh (`zcopy recv
//! --ssh-serve` there), and the remote side of a pull (`zcopy send --ssh-serve
//! PATH...`, started by `zcopy recv [user@]host:PATH...` here). See
//! `zcopy_wire::remote` for the way in.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use zcopy_wire::remote::{self, relay, Hello, Link, Remote};
use zcopy_wire::send::walk::Item;
use zcopy_wire::{send, tls};

use super::{items, transfer, Args, Way};
use crate::net::ssh;

/// Pushes `paths` to `remote`: starts the receiver there, hears its address,
/// secret and fingerprint, and sends to it directly (or inside the channel with
/// `--ssh-data`).
pub(super) fn push(args: &Args, paths: &[PathBuf], remote: &Remote) -> Result<()> {
    if args.raw || args.fingerprint.is_some() || args.shared.secret_file.is_some() {
        return Err(crate::cmd::Usage(format!(
            "{}: over ssh the session makes its own secret and certificate and is framed: drop --raw, --fingerprint and --secret-file",
            remote.shown()
        ))
        .into());
    }
    // A missing source fails here, before the remote side is started.
    let items = items(args, paths, true)?;
    let dir = if remote.path.is_empty() {
        OsString::from(".")
    } else {
        remote.path.clone()
    };
    let mut line: Vec<OsString> = ["recv", "--ssh-serve", "-q", "--timeout"]
        .into_iter()
        .map(OsString::from)
        .collect();
    line.push(args.stall.timeout.to_string().into());
    if args.ssh.ssh_data {
        line.push("--ssh-data".into());
    }
    line.push("-o".into());
    line.push(dir);
    let mut link = Link::start(&args.ssh.rsh, remote, &args.ssh.zcopy_path, &line)?;
    let result = push_over(args, &items, &mut link, remote);
    ssh::end(link, result)
}

fn push_over(args: &Args, items: &[Item], link: &mut Link, remote: &Remote) -> Result<()> {
    let hello = link.hear()?;
    let host = remote.shown();
    let secret = tls::Secret::from_text(hello.secret.as_deref().unwrap_or_default())?;
    let secure = tls::Sender::new(secret, hello.fingerprint.as_deref().unwrap_or_default())?;
    match hello.listen {
        Some(addr) => transfer(args, items, &addr.to_string(), Some(&secure), Way::Dial),
        None => {
            let (ours, theirs) = relay::socket_pair().context("a socket pair for --ssh-data")?;
            let (into, out) = link.pipes();
            relay::pump(theirs, out, into).context("the --ssh-data relay")?;
            let stream = secure.connect(ours, &host)?;
            transfer(args, items, &host, Some(&secure), Way::Made(stream))
        }
    }
}

/// The remote side of a pull: hears the local receiver's secret and fingerprint,
/// listens where the ssh connection arrived (or relays inside the channel), says
/// where, and sends to the receiver's connections.
pub(super) fn serve(args: &Args) -> Result<()> {
    let (mut input, mut output) = ssh::stdio()?;
    let key = ssh::hear(&mut input)?;
    let secret = tls::Secret::from_text(key.secret.as_deref().unwrap_or_default())?;
    let secure = tls::Sender::new(secret, key.fingerprint.as_deref().unwrap_or_default())?;
    let items = items(args, &args.operands, true)?;
    if args.ssh.ssh_data {
        let (ours, theirs) = relay::socket_pair().context("a socket pair for --ssh-data")?;
        ssh::say(&mut output, &Hello::default())?;
        relay::pump(theirs, input, output).context("the --ssh-data relay")?;
        let stream = secure.connect(ours, "the ssh channel")?;
        return transfer(
            args,
            &items,
            "the ssh channel",
            Some(&secure),
            Way::Made(stream),
        );
    }
    let here = remote::listen_here();
    let listener = TcpListener::bind(here).with_context(|| format!("cannot listen on {here}"))?;
    let local = listener.local_addr().context("listen")?;
    let streams = send::streams_for(args.streams.map(usize::from), &items, &local.to_string());
    let hello = Hello {
        listen: Some(local),
        streams: Some(streams),
        ..Hello::default()
    };
    ssh::say(&mut output, &hello)?;
    ssh::end_with_input(input);
    transfer(
        args,
        &items,
        &local.to_string(),
        Some(&secure),
        Way::Answer(&listener, streams),
    )
}
