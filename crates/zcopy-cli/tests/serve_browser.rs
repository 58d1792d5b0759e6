//! `zcopy serve` against headless Chromium's own download resumption. A relay
//! between them cuts the first response after half its body, as a dropped
//! connection does; Chromium then resumes by itself with `Range` and `If-Range`.
//! Unchanged, the file must join byte-equal from a `206`; changed between the two
//! halves, Chromium must be told with a `200` and end with the new file whole.
//!
//! Chromium is driven by its DevTools protocol over `--remote-debugging-pipe`
//! (JSON messages ended by a NUL byte on its descriptors 3 and 4).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use common::{have, pattern, Server};

/// Headless Chromium with a new, empty profile, spoken to by the DevTools protocol.
struct Chromium {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium; `None`, with the reason printed, where it is missing or
    /// does not answer.
    fn start(test: &str) -> Option<Chromium> {
        if !have("chromium", test) {
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        // The shell hands our pipes to Chromium as its descriptors 3 and 4.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec chromium \"$@\" 3<&0 4>&1 0</dev/null 1>/dev/null")
            .arg("sh")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let commands = child.stdin.take().unwrap();
        let replies = child.stdout.take().unwrap();
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for message in BufReader::new(replies).split(0).map_while(Result::ok) {
                let Ok(value) = serde_json::from_slice(&message) else {
                    break;
                };
                if sender.send(value).is_err() {
                    break;
                }
            }
        });
        let mut browser = Chromium {
            child,
            commands,
            messages,
            next_id: 0,
            _profile: profile,
        };
        if browser.call("Browser.getVersion", json!({})).is_none() {
            eprintln!("SKIP {test}: chromium did not start (no answer on its DevTools pipe)");
            return None;
        }
        Some(browser)
    }

    /// Sends a command and waits (30 s at most) for its result; events that
    /// arrive meanwhile are dropped.
    fn call(&mut self, method: &str, params: Value) -> Option<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params }).to_string();
        message.push('\0');
        self.commands.write_all(message.as_bytes()).ok()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.next_message(deadline)?;
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return Some(reply["result"].clone());
            }
        }
    }

    fn next_message(&self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.messages.recv_timeout(left).ok()
    }

    /// Downloads `url` into `dir` as a person clicking a link would, and waits
    /// (60 s at most) until Chromium says it is complete: the file it wrote.
    fn download(&mut self, url: &str, dir: &Path) -> PathBuf {
        let behavior = json!({
            "behavior": "allow",
            "downloadPath": dir.to_str().unwrap(),
            "eventsEnabled": true,
        });
        self.call("Browser.setDownloadBehavior", behavior).unwrap();
        self.call("Target.createTarget", json!({ "url": url }))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let message = self
                .next_message(deadline)
                .expect("chromium did not finish the download");
            if message["method"] != "Browser.downloadProgress" {
                continue;
            }
            let params = &message["params"];
            match params["state"].as_str() {
                Some("completed") => return PathBuf::from(params["filePath"].as_str().unwrap()),
                Some("canceled") => panic!("chromium gave the download up: {params}"),
                _ => {}
            }
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self
            .commands
            .write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request through the relay and the head of the answer to it.
#[derive(Clone, Debug, Default)]
struct Exchange {
    request: String,
    response: String,
}

impl Exchange {
    fn header(head: &str, name: &str) -> Option<String> {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    fn status(&self) -> &str {
        self.response.split(' ').nth(1).unwrap_or_default()
    }
}

/// A TCP relay in front of the server, one request per connection. The first
/// response for `path` is cut after `cut` bytes of its body; `between` runs
/// before the cut, so that whatever Chromium asks next sees its effect.
struct Relay {
    addr: String,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Relay {
    fn start(
        upstream: &str,
        path: &str,
        cut: usize,
        between: impl FnOnce() + Send + 'static,
    ) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (upstream, target, record) = (upstream.to_string(), format!(" {path} "), log.clone());
        let between: Arc<Between> = Arc::new(Mutex::new(Some(Box::new(between))));
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let (upstream, target, record, between) = (
                    upstream.clone(),
                    target.clone(),
                    record.clone(),
                    between.clone(),
                );
                std::thread::spawn(move || {
                    relay_one(client, &upstream, &target, cut, &record, &between)
                });
            }
        });
        Relay { addr, log }
    }

    /// The exchanges whose request line names `path`, in order.
    fn exchanges(&self, path: &str) -> Vec<Exchange> {
        let target = format!(" {path} ");
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|e| {
                e.request
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .contains(&target)
            })
            .cloned()
            .collect()
    }
}

/// Reads from `from` until a blank line ends a head: (head, bytes read past it).
fn read_head(from: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        let n = from.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

type Between = Mutex<Option<Box<dyn FnOnce() + Send>>>;

fn relay_one(
    mut client: TcpStream,
    upstream: &str,
    target: &str,
    cut: usize,
    log: &Mutex<Vec<Exchange>>,
    between: &Between,
) {
    let Some((request, _)) = read_head(&mut client) else {
        return;
    };
    let mut server = TcpStream::connect(upstream).unwrap();
    server.write_all(request.as_bytes()).unwrap();
    let Some((response, mut body)) = read_head(&mut server) else {
        return;
    };
    let entry = log.lock().unwrap().len();
    log.lock().unwrap().push(Exchange {
        request: request.clone(),
        response: response.clone(),
    });
    let first = request.lines().next().unwrap_or_default().contains(target)
        && log.lock().unwrap()[..entry].iter().all(|e| {
            !e.request
                .lines()
                .next()
                .unwrap_or_default()
                .contains(target)
        });
    let length: usize = Exchange::header(&response, "Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let length = if request.starts_with("HEAD ") {
        0
    } else {
        length
    };
    let limit = if first { cut.min(length) } else { length };
    client.write_all(response.as_bytes()).unwrap();
    let mut sent = 0;
    let mut chunk = vec![0u8; 1 << 16];
    while sent < limit {
        if body.is_empty() {
            match server.read(&mut chunk) {
                Ok(n) if n > 0 => body.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let n = body.len().min(limit - sent);
        if client.write_all(&body[..n]).is_err() {
            return;
        }
        body.drain(..n);
        sent += n;
    }
    if first {
        if let Some(change) = between.lock().unwrap().take() {
            change();
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

const SIZE: usize = (8 << 20) + 4321;

/// The same folder served by `zcopy serve` with one worker, so that the
/// resumption meets the worker's open-file cache of the first request.
fn serve(root: &Path) -> Server {
    Server::serve(root, 1, &[])
}

/// A file time a few seconds ago, `millis` into its second: both versions of a
/// changed file get times in one second, as a file rewritten twice in a second
/// has (a validator made of whole seconds cannot tell them apart).
fn in_one_second(millis: u64) -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs - 5) + Duration::from_millis(millis)
}

fn write_version(path: &Path, data: &[u8], millis: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(data).unwrap();
    file.set_modified(in_one_second(millis)).unwrap();
}

/// Chromium's resumption of an unchanged file: `Range` from what it has, an
/// `If-Range` with the ETag of the first response, a `206`, and the file joins
/// byte-equal.
#[test]
fn chromium_resumes_an_unchanged_file_byte_equal() {
    let Some(mut browser) = Chromium::start("chromium_resumes_an_unchanged_file_byte_equal") else {
        return;
    };
    let site = tempfile::tempdir().unwrap();
    let data = pattern(SIZE);
    write_version(&site.path().join("big.bin"), &data, 100);
    let server = serve(site.path());
    let relay = Relay::start(&server.addr, "/big.bin", SIZE / 2, || {});
    let downloads = tempfile::tempdir().unwrap();
    let saved = browser.download(&format!("http://{}/big.bin", relay.addr), downloads.path());

    let exchanges = relay.exchanges("/big.bin");
    assert_eq!(exchanges.len(), 2, "{exchanges:#?}");
    let (first, resumed) = (&exchanges[0], &exchanges[1]);
    assert_eq!(first.status(), "200", "{first:#?}");
    let etag = Exchange::header(&first.response, "ETag").unwrap();
    let range = Exchange::header(&resumed.request, "Range").expect("a Range request");
    let offset: usize = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("Range {range:?}"));
    assert!(offset > 0 && offset <= SIZE / 2, "Range {range:?}");
    assert_eq!(Exchange::header(&resumed.request, "If-Range"), Some(etag));
    assert_eq!(resumed.status(), "206", "{resumed:#?}");
    assert!(
        std::fs::read(&saved).unwrap() == data,
        "the resumed download differs"
    );
}

/// The file is rewritten (same size, other bytes, a time in the same second)
/// between the two halves: Chromium's `If-Range` names the old version, the
/// server answers `200` with the whole new file, and Chromium ends with exactly
/// that, never old bytes joined to new ones.
#[test]
fn chromium_restarts_a_file_changed_between_the_halves() {
    let Some(mut browser) = Chromium::start("chromium_restarts_a_file_changed_between_the_halves")
    else {
        return;
    };
    let site = tempfile::tempdir().unwrap();
    let file = site.path().join("big.bin");
    let old = pattern(SIZE);
    let new: Vec<u8> = old.iter().rev().map(|b| !b).collect();
    write_version(&file, &old, 100);
    let server = serve(site.path());
    let change = {
        let (file, new) = (file.clone(), new.clone());
        move || write_version(&file, &new, 600)
    };
    let relay = Relay::start(&server.addr, "/big.bin", SIZE / 2, change);
    let downloads = tempfile::tempdir().unwrap();
    let saved = browser.download(&format!("http://{}/big.bin", relay.addr), downloads.path());

    let exchanges = relay.exchanges("/big.bin");
    assert_eq!(exchanges.len(), 2, "{exchanges:#?}");
    let (first, resumed) = (&exchanges[0], &exchanges[1]);
    let etag = Exchange::header(&first.response, "ETag").unwrap();
    assert!(
        Exchange::header(&resumed.request, "Range").is_some(),
        "{resumed:#?}"
    );
    assert_eq!(
        Exchange::header(&resumed.request, "If-Range"),
        Some(etag.clone())
    );
    assert_eq!(resumed.status(), "200", "{resumed:#?}");
    assert_ne!(Exchange::header(&resumed.response, "ETag"), Some(etag));
    let got = std::fs::read(&saved).unwrap();
    assert_eq!(got.len(), SIZE);
    assert!(got != old, "chromium kept the old file");
    assert!(
        got == new,
        "chromium joined the old file's first half to the new one"
    );
}
