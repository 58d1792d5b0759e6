//! Starting the other side: the `-e` command split as rsync splits it, the remote
//! command quoted for the remote shell, and the ssh process ([`Link`]) whose
//! stdout carries the remote side's [`Hello`], whose stderr reaches the user and
//! whose exit code becomes this side's.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::hello::Hello;
use super::{relay, Error, Remote};

/// Splits `-e CMD` into words at blanks, with '...' and "..." quoting as rsync's
/// `-e` does (`-e "ssh -p 2222 -o 'ProxyJump a b'"`).
pub fn split_rsh(cmd: &OsStr) -> Result<Vec<OsString>, Error> {
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut quote = None;
    for &b in cmd.as_bytes() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => word.get_or_insert_with(Vec::new).push(b),
            (None, b'\'' | b'"') => {
                quote = Some(b);
                word.get_or_insert_with(Vec::new);
            }
            (None, b' ' | b'\t' | b'\n') => words.extend(word.take().map(OsString::from_vec)),
            (None, _) => word.get_or_insert_with(Vec::new).push(b),
        }
    }
    if quote.is_some() {
        return Err(Error::Usage(format!(
            "-e {}: a quote is not closed",
            cmd.to_string_lossy()
        )));
    }
    words.extend(word.map(OsString::from_vec));
    if words.is_empty() {
        return Err(Error::Usage("-e: the remote shell command is empty".into()));
    }
    Ok(words)
}

/// `arg` in single quotes for a POSIX shell (`'` as `'\''`): ssh joins its words
/// with spaces and the remote shell splits them again, so every byte of a name
/// must survive that.
pub fn quote(arg: &OsStr) -> OsString {
    let mut out = vec![b'\''];
    for &b in arg.as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    OsString::from_vec(out)
}

/// The remote shell's lines, held back until the remote side has answered (so
/// that a failure can become one line), then passed on as they come.
type Held = Arc<Mutex<Option<Vec<Vec<u8>>>>>;

/// The ssh process that runs the other side.
pub struct Link {
    host: String,
    program: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    held: Held,
    stderr: Option<JoinHandle<()>>,
}

impl Link {
    /// Runs `RSH... [user@]host 'PROGRAM ARGS...'`: `program` as given (it may be
    /// `sudo zcopy`, as rsync's `--rsync-path`), each of `args` quoted.
    pub fn start(
        rsh: &OsStr,
        remote: &Remote,
        program: &OsStr,
        args: &[OsString],
    ) -> Result<Link, Error> {
        let words = split_rsh(rsh)?;
        let mut line = program.as_bytes().to_vec();
        for arg in args {
            line.push(b' ');
            line.extend_from_slice(quote(arg).as_bytes());
        }
        let shown = words[0].to_string_lossy().into_owned();
        let mut child = Command::new(&words[0])
            .args(&words[1..])
            .arg(&remote.host)
            .arg(OsString::from_vec(line))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: shown,
                source,
            })?;
        let held: Held = Arc::new(Mutex::new(Some(Vec::new())));
        let stderr = child.stderr.take().map(|pipe| {
            let held = held.clone();
            std::thread::spawn(move || pass_on(pipe, &held))
        });
        Ok(Link {
            host: remote.shown(),
            program: program.to_string_lossy().into_owned(),
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            held,
            stderr,
        })
    }

    /// Tells the remote side `hello` on its standard input.
    pub fn tell(&mut self, hello: &Hello) -> Result<(), Error> {
        let stdin = self.stdin.as_mut().expect("stdin is kept until the end");
        match writeln!(stdin, "{}", hello.line()).and_then(|()| stdin.flush()) {
            Ok(()) => Ok(()),
            // ssh is gone: what it said is the reason.
            Err(_) => Err(self.ended()),
        }
    }

    /// Waits for the remote side's line; then lets its stderr through as it comes.
    /// If ssh ends first, what it said and its exit code become the error.
    pub fn hear(&mut self) -> Result<Hello, Error> {
        let stdout = self.stdout.as_mut().expect("stdout is kept until heard");
        let line = relay::read_line(stdout).map_err(|source| Error::Channel {
            host: self.host.clone(),
            source,
        })?;
        let Some(line) = line else {
            return Err(self.ended());
        };
        let text = String::from_utf8_lossy(&line).into_owned();
        let Some(hello) = Hello::parse(&text) else {
            self.release();
            return Err(Error::Garbled {
                host: self.host.clone(),
                line: text,
            });
        };
        self.release();
        Ok(hello)
    }

    /// The ssh pipes, for `--ssh-data`'s relay: (into the remote side, out of it).
    pub fn pipes(&mut self) -> (File, File) {
        let stdin = self.stdin.take().expect("stdin is taken once");
        let stdout = self.stdout.take().expect("stdout is taken once");
        (
            File::from(OwnedFd::from(stdin)),
            File::from(OwnedFd::from(stdout)),
        )
    }

    /// After a transfer that went well here: waits for the remote side to end by
    /// itself (its standard input stays open meanwhile: closing it tells the remote
    /// side this one is gone) and returns its failure, if it had one.
    pub fn finish(mut self) -> Result<(), Error> {
        let status = self.child.wait().map_err(|source| Error::Channel {
            host: self.host.clone(),
            source,
        })?;
        self.stdin.take();
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
        match exit_code(status) {
            0 => Ok(()),
            code => Err(Error::Exited {
                host: self.host.clone(),
                code,
            }),
        }
    }

    /// After a failure here: closes the remote side's input (which ends it), and
    /// gives it a few seconds to say why before ssh is killed.
    pub fn abandon(mut self) {
        self.stdin.take();
        self.stdout.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.release();
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }

    /// ssh ended before the remote side answered: its exit code and last line
    /// make the error, one of ssh's, the remote shell's or the remote zcopy's.
    fn ended(&mut self) -> Error {
        self.stdin.take();
        let status = match self.child.wait() {
            Ok(status) => status,
            Err(source) => {
                return Error::Channel {
                    host: self.host.clone(),
                    source,
                }
            }
        };
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
        let mut lines = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        let code = exit_code(status);
        let last = match code {
            127 | 255 => lines.pop(),
            _ => None,
        };
        let mut err = std::io::stderr().lock();
        for line in &lines {
            let _ = err.write_all(line);
        }
        let said = last.map_or_else(
            || "it ended without a word".to_string(),
            |l| String::from_utf8_lossy(&l).trim_end().to_string(),
        );
        let host = self.host.clone();
        match code {
            127 => Error::NotFound {
                host,
                program: self.program.clone(),
            },
            255 => Error::Ssh { host, code, said },
            0 => Error::Garbled {
                host,
                line: String::new(),
            },
            code => Error::Exited { host, code },
        }
    }

    /// Prints what the remote shell said so far and passes on the rest as it comes.
    fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut err = std::io::stderr().lock();
        for line in held.unwrap_or_default() {
            let _ = err.write_all(&line);
        }
    }
}

/// The remote side's stderr, line by line: held while `held` holds a list, then
/// written to this side's stderr.
fn pass_on(pipe: std::process::ChildStderr, held: &Held) {
    let mut pipe = BufReader::new(pipe);
    let mut line = Vec::new();
    while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let mut guard = held.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(lines) => lines.push(std::mem::take(&mut line)),
            None => {
                let _ = std::io::stderr().write_all(&line);
                line.clear();
            }
        }
    }
}

/// A process's exit code as a shell reports it (128 + the signal that killed it).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::{quote, split_rsh};
    use std::ffi::OsStr;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    #[test]
    fn rsh_words_split_at_blanks_outside_quotes() {
        let words = split_rsh(OsStr::new("ssh -p 2222  -o 'ProxyJump a b' -i \"k y\"")).unwrap();
        let words: Vec<_> = words.iter().map(|w| w.to_str().unwrap()).collect();
        assert_eq!(
            words,
            ["ssh", "-p", "2222", "-o", "ProxyJump a b", "-i", "k y"]
        );
        assert!(split_rsh(OsStr::new("ssh 'open")).is_err());
        assert!(split_rsh(OsStr::new("  ")).is_err());
    }

    #[test]
    fn a_quoted_name_keeps_every_byte_through_a_shell() {
        let name = OsStr::from_bytes(b"it's a \xff $name");
        assert_eq!(quote(name).as_bytes(), b"'it'\\''s a \xff $name'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(std::ffi::OsString::from_vec(
                [b"printf %s ".as_slice(), quote(name).as_bytes()].concat(),
            ))
            .output()
            .unwrap();
        assert_eq!(out.stdout, name.as_bytes());
    }
}
