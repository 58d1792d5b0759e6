//! `recv [user@]host:PATH... -o DIR`: a pull, the sender started over ssh
//! (`zcopy send --ssh-serve PATH...` there), and the remote side of a push (`zcopy
//! recv --ssh-serve -o DIR`, started by `zcopy send PATH... [user@]host:DIR` here).
//! See `zcopy_wire::remote` for the way in.

use std::ffi::OsString;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use zcopy_wire::remote::{self, relay, Hello, Link, Operand, Remote};
use zcopy_wire::tls;

use super::{output, stop_on_signals, Args, Job};
use crate::cmd::Usage;
use crate::net::ssh;

/// The remote operands, which must all name one host.
fn remotes(args: &Args) -> Result<Vec<Remote>> {
    let mut remotes: Vec<Remote> = Vec::new();
    for arg in &args.remote {
        let shown = arg.to_string_lossy();
        match Operand::parse(arg)? {
            Operand::Remote(r) => {
                if remotes.first().is_some_and(|first| first.host != r.host) {
                    return Err(Usage(format!("{shown}: every [user@]host:PATH of one pull names the same host ({})", remotes[0].shown())).into());
                }
                remotes.push(r);
            }
            Operand::Addr(_) => return Err(Usage(format!("{shown}: recv pulls from [user@]host:PATH (a port after the colon is HOST:PORT; write host:./{} for a directory); to take what a sender sends, --listen ADDR", shown.rsplit(':').next().unwrap_or_default())).into()),
            Operand::Local => return Err(Usage(format!("{shown}: not [user@]host:PATH; to take what a sender sends, --listen ADDR")).into()),
        }
    }
    Ok(remotes)
}

/// A receiver for one session with a one-time secret and certificate.
fn one_time(args: &Args) -> Result<(Job, String, Arc<tls::Receiver>)> {
    let (target, root) = output(args)?;
    let (secret, text) = tls::Secret::random()?;
    let tls = Arc::new(tls::Receiver::new(secret, None)?);
    Ok((Job::new(args, target, root, Some(tls.clone())), text, tls))
}

/// Pulls the remote operands: starts the sender there, tells it this receiver's
/// secret and fingerprint, hears where it listens and connects to it (or relays
/// inside the channel with `--ssh-data`).
pub(super) fn pull(args: &Args) -> Result<()> {
    if args.raw || args.once || args.shared.secret_file.is_some() || args.identity.is_some() {
        return Err(Usage("a pull over ssh makes its own secret and certificate, for one session: drop --raw, --once, --secret-file and --identity".into()).into());
    }
    let remotes = remotes(args)?;
    let (job, secret, tls) = one_time(args)?;
    let mut line: Vec<OsString> = ["send", "--ssh-serve", "-q", "--timeout"]
        .into_iter()
        .map(OsString::from)
        .collect();
    line.push(args.stall.timeout.to_string().into());
    if args.ssh.ssh_data {
        line.push("--ssh-data".into());
    }
    if let Some(n) = args.streams {
        line.push("-j".into());
        line.push(n.to_string().into());
    }
    line.extend(args.attributes.remote_args(args.owner));
    for r in &remotes {
        line.push(if r.path.is_empty() {
            OsString::from(".")
        } else {
            r.path.clone()
        });
    }
    let mut link = Link::start(&args.ssh.rsh, &remotes[0], &args.ssh.zcopy_path, &line)?;
    let key = Hello {
        secret: Some(secret),
        fingerprint: Some(tls.fingerprint.clone()),
        ..Hello::default()
    };
    let result = pull_over(&job, &mut link, &key);
    ssh::end(link, result)
}

fn pull_over(job: &Job, link: &mut Link, key: &Hello) -> Result<()> {
    link.tell(key)?;
    let hello = link.hear()?;
    stop_on_signals();
    let Some(addr) = hello.listen else {
        let (ours, theirs) = relay::socket_pair().context("a socket pair for --ssh-data")?;
        let (into, out) = link.pipes();
        relay::pump(theirs, out, into).context("the --ssh-data relay")?;
        let peer = ours.peer_addr().context("the --ssh-data relay")?;
        let stream = job.admit(ours, peer)?;
        return job.last(stream, peer);
    };
    let dial = move || zcopy_wire::net::connect(&addr.to_string(), Duration::from_secs(10));
    let stream = job.admit(dial()?, addr)?;
    // The sender takes the others when a large file needs them; those it never
    // takes end with it, unused, and say nothing.
    for _ in 1..hello.streams.unwrap_or(1) {
        let job = job.clone();
        std::thread::spawn(move || {
            if let Ok(joined) = dial()
                .map_err(anyhow::Error::from)
                .and_then(|s| job.admit(s, addr))
            {
                let _ = job.handle(joined, addr);
            }
        });
    }
    job.last(stream, addr)
}

/// The remote side of a push: a one-time secret and certificate, a listener
/// where the ssh connection arrived (or the relay inside the channel), the line
/// that says so, then one session.
pub(super) fn serve(args: &Args) -> Result<()> {
    let (input, mut out) = ssh::stdio()?;
    let (job, secret, tls) = one_time(args)?;
    let mut hello = Hello {
        secret: Some(secret),
        fingerprint: Some(tls.fingerprint.clone()),
        ..Hello::default()
    };
    stop_on_signals();
    if args.ssh.ssh_data {
        let (ours, theirs) = relay::socket_pair().context("a socket pair for --ssh-data")?;
        ssh::say(&mut out, &hello)?;
        relay::pump(theirs, input, out).context("the --ssh-data relay")?;
        let peer = ours.peer_addr().context("the --ssh-data relay")?;
        let stream = job.admit(ours, peer)?;
        return job.last(stream, peer);
    }
    let here = remote::listen_here();
    let listener = TcpListener::bind(here).with_context(|| format!("cannot listen on {here}"))?;
    hello.listen = Some(listener.local_addr().context("listen")?);
    ssh::say(&mut out, &hello)?;
    ssh::end_with_input(input);
    job.once(listener)
}
