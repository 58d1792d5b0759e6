//! Exit codes: curl's numbers for the same failures, so scripts that already
//! sort curl's failures sort zcopy's. One table ([`TABLE`]), from which every man
//! page's EXIT STATUS is made and against which the README's is tested.

use std::io::ErrorKind;

/// The code for a failed command, from the first cause in its chain that says
/// which failure it was.
pub fn code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<crate::cmd::Usage>().is_some() {
            return USAGE;
        }
        if let Some(coded) = cause.downcast_ref::<Coded>() {
            return coded.code;
        }
        if let Some(remote) = cause.downcast_ref::<zcopy_wire::remote::Error>() {
            use zcopy_wire::remote::Error;
            match remote {
                Error::Usage(_) => return USAGE,
                Error::NotFound { .. } => return NOT_FOUND,
                Error::Ssh { .. } => return SSH,
                // The remote zcopy's own code (it said why on stderr).
                Error::Exited { code, .. } => return u8::try_from(*code).unwrap_or(FAILURE),
                _ => continue,
            }
        }
        if let Some(zcopy_bench::Error::NoRows { .. }) = cause.downcast_ref() {
            return USAGE;
        }
        if let Some(tls) = cause.downcast_ref::<zcopy_wire::tls::Error>() {
            match tls_code(tls) {
                Some(code) => return code,
                // A failed step: its cause, next in the chain, says which failure.
                None => continue,
            }
        }
        let kind = if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io.kind()
        } else if let Some(engine) = cause.downcast_ref::<zcopy::Error>() {
            match engine_code(engine) {
                Ok(code) => return code,
                Err(kind) => kind,
            }
        } else if let Some(wire) = cause.downcast_ref::<zcopy_wire::Error>() {
            match wire {
                zcopy_wire::Error::Usage(_) => return USAGE,
                zcopy_wire::Error::Auth(_) => return AUTH,
                zcopy_wire::Error::PeerClosed(_) => return PEER_CLOSED,
                zcopy_wire::Error::TimedOut(_) => return TIMEOUT,
                // Transparent: the chain goes on past what they wrap.
                zcopy_wire::Error::Io(io) => io.kind(),
                zcopy_wire::Error::Engine(engine) => match engine_code(engine) {
                    Ok(code) => return code,
                    Err(kind) => kind,
                },
                zcopy_wire::Error::Tls(tls) => match tls_code(tls) {
                    Some(code) => return code,
                    None => continue,
                },
                _ => continue,
            }
        } else {
            continue;
        };
        match kind {
            ErrorKind::ConnectionRefused
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::AddrNotAvailable => return CONNECT,
            ErrorKind::TimedOut => return TIMEOUT,
            ErrorKind::BrokenPipe => return SEND,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => return RECEIVE,
            _ => {}
        }
    }
    FAILURE
}

/// The exit status of a command run under a peer's name (`prog`): 1 for a failure
/// it reported itself, and for anything else after saying it with that prefix.
pub fn for_peer(prog: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if crate::cmd::is_stdout_closed(&e) => std::process::ExitCode::from(STDOUT_CLOSED),
        Err(e) if e.downcast_ref::<crate::cmd::Quiet>().is_some() => {
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{prog}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// curl's code for a failed download.
pub fn of_download(e: &zcopy_http::client::Error) -> u8 {
    use zcopy_http::client::Error;
    match e {
        Error::UrlMalformed(_) => URL_MALFORMED,
        Error::ResolveProxy(_) => RESOLVE_PROXY,
        Error::Resolve(_) => RESOLVE,
        Error::Connect(_) => CONNECT,
        Error::WeirdReply(_) => WEIRD_REPLY,
        Error::PeerClosed(_) => PEER_CLOSED,
        Error::Http(_) => HTTP_ERROR,
        Error::Write(_) => WRITE,
        Error::Timeout(_) => TIMEOUT,
        Error::Range(_) => RANGE,
        Error::Tls(_) => SSL_CONNECT,
        Error::Redirects(_) => REDIRECTS,
        Error::Send(_) => SEND,
        Error::Receive(_) => RECEIVE,
        Error::Untrusted(_) => PEER_VERIFY,
        Error::CaCert(_) => SSL_CACERT,
        _ => FAILURE,
    }
}

/// The code a TLS failure decides by itself (`None`: a failed step, whose cause says).
fn tls_code(e: &zcopy_wire::tls::Error) -> Option<u8> {
    match e {
        zcopy_wire::tls::Error::Usage(_) => Some(USAGE),
        zcopy_wire::tls::Error::Refused(_) => Some(AUTH),
        zcopy_wire::tls::Error::WrongCertificate(_) => Some(PEER_VERIFY),
        _ => None,
    }
}

/// The code an engine's failure decides by itself, or the kind of its cause.
fn engine_code(e: &zcopy::Error) -> Result<u8, ErrorKind> {
    match e {
        zcopy::Error::EndedEarly { .. } => Ok(PEER_CLOSED),
        zcopy::Error::SourceShrank { .. } => Ok(FAILURE),
        other => Err(other.kind()),
    }
}

/// Whether `e` is a usage error (bad flags or operands), worth the `--help` hint.
pub fn is_usage(e: &anyhow::Error) -> bool {
    code(e) == USAGE
}

/// `e` on one line, its causes joined by ": ", each system error in its strerror
/// words alone: Rust's `io::Error` adds " (os error N)", which no peer tool prints.
pub fn message(e: &anyhow::Error) -> String {
    without_os_error(&format!("{e:#}"))
}

/// `text` without the " (os error N)" that Rust's `io::Error` adds to the strerror.
pub fn without_os_error(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// An error that knows its exit code (a command that found the failure itself).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    /// The exit code.
    pub code: u8,
    /// What went wrong, one line.
    pub message: String,
}

/// Success.
pub const SUCCESS: u8 = 0;
/// Anything else: a file that cannot be read or written, a digest mismatch.
pub const FAILURE: u8 = 1;
/// Bad flags or operands.
pub const USAGE: u8 = 2;
/// get: a malformed URL.
pub const URL_MALFORMED: u8 = 3;
/// get: the proxy's host name does not resolve.
pub const RESOLVE_PROXY: u8 = 5;
/// get: the host name does not resolve.
pub const RESOLVE: u8 = 6;
/// Cannot connect to the peer.
pub const CONNECT: u8 = 7;
/// get: a malformed response head.
pub const WEIRD_REPLY: u8 = 8;
/// The peer closed before everything promised arrived.
pub const PEER_CLOSED: u8 = 18;
/// get: the server answered 4xx or 5xx.
pub const HTTP_ERROR: u8 = 22;
/// get: cannot write the output file.
pub const WRITE: u8 = 23;
/// No progress for the time allowed.
pub const TIMEOUT: u8 = 28;
/// get: the server answered a range that was not asked for.
pub const RANGE: u8 = 33;
/// get: more than 10 redirects.
pub const REDIRECTS: u8 = 47;
/// get: the TLS handshake failed (not an https:// server, no common version).
pub const SSL_CONNECT: u8 = 35;
/// send: the receiver's certificate is not the one whose fingerprint was given;
/// get: the server's certificate is not trusted.
pub const PEER_VERIFY: u8 = 60;
/// send/recv: the secret was missing or wrong.
pub const AUTH: u8 = 67;
/// get: the CA certificates cannot be read.
pub const SSL_CACERT: u8 = 77;
/// Sending to the peer failed (it went away).
pub const SEND: u8 = 55;
/// Receiving from the peer failed (the connection was reset).
pub const RECEIVE: u8 = 56;
/// send, recv over ssh: the remote shell did not find zcopy (as a shell says it).
pub const NOT_FOUND: u8 = 127;
/// Standard output was closed by its reader (128 + SIGPIPE, as a shell reports it).
pub const STDOUT_CLOSED: u8 = 141;
/// send, recv over ssh: ssh itself failed (ssh's own code).
pub const SSH: u8 = 255;

/// Every exit code and what it means, in code order: the man pages' EXIT STATUS
/// section and the README's table are made from it (a test holds the README to it).
pub const TABLE: &[(u8, &str)] = &[
    (SUCCESS, "Success."),
    (FAILURE, "Anything else: a file that cannot be read or written, a digest mismatch, a refused name."),
    (USAGE, "Usage: bad flags or operands."),
    (URL_MALFORMED, "get: a malformed URL."),
    (RESOLVE_PROXY, "get: the proxy's host name does not resolve."),
    (RESOLVE, "get: the host name does not resolve."),
    (CONNECT, "Cannot connect to the peer."),
    (WEIRD_REPLY, "get: a malformed response head."),
    (PEER_CLOSED, "The peer closed before everything promised arrived (a partial file is kept for resuming)."),
    (HTTP_ERROR, "get: the server answered 4xx or 5xx."),
    (WRITE, "get: cannot write the output file."),
    (TIMEOUT, "Timed out: no progress for the time allowed."),
    (RANGE, "get: the server answered a range that was not asked for."),
    (SSL_CONNECT, "get: the TLS handshake failed."),
    (REDIRECTS, "get: more than 10 redirects."),
    (SEND, "Sending to the peer failed."),
    (RECEIVE, "Receiving from the peer failed (the connection was reset)."),
    (PEER_VERIFY, "send: the receiver's certificate is not the one whose fingerprint was given; get: the server's certificate is not trusted."),
    (AUTH, "send, recv: the secret was missing or wrong."),
    (SSL_CACERT, "get: the CA certificates (--cacert) cannot be read."),
    (NOT_FOUND, "send, recv over ssh: the remote host has no zcopy on its PATH (give it with --zcopy-path)."),
    (STDOUT_CLOSED, "Standard output was closed by its reader (as for any program killed by SIGPIPE)."),
    (SSH, "send, recv over ssh: ssh failed (connection, host key, authentication); a remote zcopy's own failure exits with its code."),
];

/// The table as a man page section (roff).
pub fn man_section() -> String {
    let mut out =
        String::from(".SH \"EXIT STATUS\"\nNumbers follow curl's for the same failures.\n");
    for (code, meaning) in TABLE {
        out.push_str(&format!(".TP\n{code}\n{meaning}\n"));
    }
    out
}

/// The table as the README shows it (Markdown).
#[cfg(test)]
fn markdown_table() -> String {
    let mut out = String::from("| code | meaning |\n|---:|---|\n");
    for (code, meaning) in TABLE {
        out.push_str(&format!("| {code} | {meaning} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{man_section, markdown_table, message, TABLE};

    #[test]
    fn the_readme_and_the_man_pages_show_the_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's exit-code table differs from exit::TABLE; it should read:\n{}",
            markdown_table()
        );
        let man = man_section();
        for (code, meaning) in TABLE {
            assert!(man.contains(&format!(".TP\n{code}\n{meaning}\n")));
        }
        let codes: Vec<u8> = TABLE.iter().map(|(c, _)| *c).collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "in code order, once each"
        );
    }

    #[test]
    fn os_error_numbers_are_dropped_and_other_text_kept() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(io).context("cannot stat 'x'");
        assert_eq!(message(&e), "cannot stat 'x': No such file or directory");
        let odd = anyhow::anyhow!("a (os error x) and (os error 12");
        assert_eq!(message(&odd), "a (os error x) and (os error 12");
    }
}
