//! `send -z`: blocks that shrink travel compressed (small files, large files'
//! blocks on every `-j` stream, a delta's literal chunks, over plain TCP and
//! TLS) and arrive byte for byte; random data goes as it is; a corrupted
//! compressed block is refused with a clear line and no file; a receiver
//! without the capability gets everything uncompressed, without an error.

mod common;
mod wire;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{have, names_in, pattern, zcopy, Server};
use xxhash_rust::xxh3::xxh3_128;

/// Source-like text: lines of words, different for every seed, that zstd
/// shrinks about four times.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "fn",
        "let",
        "mut",
        "self",
        "impl",
        "match",
        "return",
        "struct",
        "pub",
        "use",
        "buffer",
        "offset",
        "len",
        "digest",
        "Result<()>",
        "Option<u64>",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let indent = (x % 4) as usize * 4;
        out.extend(std::iter::repeat_n(b' ', indent));
        for k in 0..(3 + (x >> 8) % 6) {
            out.extend_from_slice(WORDS[((x >> (12 + 4 * k)) % 16) as usize].as_bytes());
            out.push(if k % 3 == 2 { b'.' } else { b' ' });
        }
        out.extend_from_slice(format!("{};\n", x % 1000).as_bytes());
    }
    out.truncate(len);
    out
}

fn send_json(paths: &[&Path], addr: &str, extra: &[&str]) -> serde_json::Value {
    let o = zcopy()
        .arg("send")
        .args(paths)
        .arg(addr)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn same_tree(a: &Path, b: &Path) {
    let o = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "trees differ: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A tree of text (small files, one of several blocks, a non-UTF-8 name) and a
/// random file: `-z` moves it in far fewer bytes, the random file uncompressed.
fn tree(root: &Path) -> u64 {
    let mut total = 0;
    for d in 0..4u64 {
        let dir = root.join(format!("src{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..25u64 {
            let body = text(1000 + (f * 997 % 40_000) as usize, d * 100 + f);
            total += body.len() as u64;
            std::fs::write(dir.join(format!("m{f}.rs")), body).unwrap();
        }
    }
    let big = text((9 << 20) + 12_345, 7);
    total += big.len() as u64;
    std::fs::write(root.join(OsStr::from_bytes(b"big\xff.txt")), big).unwrap();
    let noise = pattern((3 << 20) + 1);
    total += noise.len() as u64;
    std::fs::write(root.join("noise.bin"), noise).unwrap();
    total
}

#[test]
fn a_text_tree_travels_compressed_and_arrives_whole() {
    let src = tempfile::tempdir().unwrap();
    let total = tree(src.path());
    for streams in ["1", "4"] {
        let out = tempfile::tempdir().unwrap();
        let mut server = Server::recv_once(out.path(), &[]);
        let json = send_json(&[src.path()], &server.addr, &["-z", "-j", streams]);
        let (status, _, stderr) = server.wait();
        assert!(status.success(), "{stderr}");
        same_tree(
            src.path(),
            &out.path().join(src.path().file_name().unwrap()),
        );
        let c = &json["compressed"];
        eprintln!("-j {streams}: {c}");
        let n = |k: &str| c[k].as_u64().unwrap();
        assert_eq!(n("tried"), total, "{json}");
        // Everything but the random file went compressed, in under a third.
        assert_eq!(n("bytes"), total - ((3 << 20) + 1), "{json}");
        assert!(n("wire") * 3 < n("bytes"), "{json}");
        assert_eq!(n("saved"), n("bytes") - n("wire"));
        assert_eq!(json["bytes"].as_u64(), Some(total));
        assert!(c["levels"][0].as_i64().is_some(), "{json}");
    }
}

#[test]
fn the_summary_line_says_what_went_compressed_and_a_level_can_be_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, text(5 << 20, 3)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let o = zcopy()
        .arg("send")
        .arg(&file)
        .arg(&server.addr)
        .args(["--compress-level", "19"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("; compressed: 5.0 MiB into") && stderr.contains("(zstd 19)"),
        "{stderr}"
    );
    assert!(server.wait().0.success());
    assert!(std::fs::read(out.path().join("notes.txt")).unwrap() == text(5 << 20, 3));
    // Out of zstd's range: a usage error.
    let o = zcopy()
        .args(["send", "--compress-level", "30", "x", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn random_data_goes_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.bin");
    let data = pattern(10 << 20);
    std::fs::write(&file, &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let json = send_json(&[&file], &server.addr, &["-z"]);
    assert!(server.wait().0.success());
    assert!(std::fs::read(out.path().join("r.bin")).unwrap() == data);
    let c = &json["compressed"];
    assert_eq!(c["tried"].as_u64(), Some(10 << 20), "{json}");
    assert_eq!(c["bytes"].as_u64(), Some(0), "{json}");
    assert_eq!(c["wire"].as_u64(), Some(0), "{json}");
}

#[test]
fn a_deltas_literal_chunks_go_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.txt");
    let old = text(12 << 20, 11);
    std::fs::write(&file, &old).unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "-o",
        out.path().to_str().unwrap(),
    ]);
    send_json(&[&file], &server.addr, &[]);
    let mut new = old.clone();
    new.splice(4 << 20..(4 << 20) + 300_000, text(500_000, 12));
    std::fs::write(&file, &new).unwrap();
    let json = send_json(&[&file], &server.addr, &["-z"]);
    eprintln!("{} {}", json["delta"], json["compressed"]);
    let literal = json["delta"]["literal"].as_u64().unwrap();
    assert!((500_000..2 << 20).contains(&literal), "{json}");
    let c = &json["compressed"];
    assert_eq!(c["tried"].as_u64(), Some(literal), "{json}");
    assert!(c["wire"].as_u64().unwrap() * 3 < literal, "{json}");
    assert!(std::fs::read(out.path().join("log.txt")).unwrap() == new);
}

#[test]
fn compressed_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("t");
    std::fs::create_dir(&src).unwrap();
    let total = tree(&src);
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "compressed and encrypted\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let secret = secret.to_str().unwrap();
    let mut server = Server::recv_once(out.path(), &["--secret-file", secret]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let fingerprint = loop {
        let said = server.stderr();
        if let Some(fp) = said
            .split_whitespace()
            .skip_while(|w| *w != "--fingerprint")
            .nth(1)
        {
            break fp.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fingerprint: {said}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let json = send_json(
        &[&src],
        &server.addr,
        &[
            "-z",
            "-j",
            "2",
            "--secret-file",
            secret,
            "--fingerprint",
            &fingerprint,
        ],
    );
    let (status, _, stderr) = server.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(json["encrypted"], true);
    assert_eq!(json["compressed"]["tried"].as_u64(), Some(total), "{json}");
    assert!(
        json["compressed"]["bytes"].as_u64().unwrap() > 9 << 20,
        "{json}"
    );
    same_tree(&src, &out.path().join("t"));
}

/// One-file sessions of a hand-written sender whose file's block comes as
/// PACKED with `packed` bytes standing for `content`.
fn packed_session(name: &str, content: &[u8], packed: &[u8]) -> Vec<u8> {
    let mut s = wire::greeting(0);
    s.extend(wire::file(1, name, content.len() as u64));
    s.extend(wire::packed(1, 0, content.len() as u32, packed));
    s.extend_from_slice(&xxh3_128(content).to_be_bytes());
    s.extend(wire::end(1, content.len() as u64, &[content]));
    s.extend(wire::done());
    s
}

/// What `zstd` (the program) makes of `bytes`.
fn zstd(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("zstd")
        .args(["-q", "-c", "-3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let feed = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    feed.join().unwrap();
    assert!(child.wait().unwrap().success());
    out
}

fn recv_once_against(session: Vec<u8>) -> (bool, String, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let mut server = Server::recv_once(out.path(), &[]);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    wire::write_lossy(&mut c, &session);
    let verdict = wire::read_greeting(&mut c).map(|_| wire::verdict(&mut c));
    let (status, _, stderr) = server.wait();
    eprintln!("verdict {verdict:?}");
    (status.success(), stderr, names_in(out.path()))
}

#[test]
fn a_corrupted_compressed_block_is_refused_and_writes_nothing() {
    if !have(
        "zstd",
        "a_corrupted_compressed_block_is_refused_and_writes_nothing",
    ) {
        return;
    }
    let content = text(200_000, 5);
    let good = zstd(&content);
    // The program's frame is taken as it is.
    let (ok, stderr, names) = recv_once_against(packed_session("ok.txt", &content, &good));
    assert!(ok, "{stderr}");
    assert_eq!(names, ["ok.txt"]);
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x55;
    let mut cut = good.clone();
    cut.truncate(good.len() - 40);
    for (name, packed, why) in [
        (
            "garbage.txt",
            b"definitely not zstd".to_vec(),
            "does not decompress",
        ),
        ("cut.txt", cut, "does not decompress"),
        // Bytes that still decompress, to other bytes: the digest catches them.
        ("flipped.txt", flipped, ""),
        ("big.txt", content.clone(), "smaller than their bytes"),
    ] {
        let (ok, stderr, names) = recv_once_against(packed_session(name, &content, &packed));
        assert!(!ok, "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("127.0.0.1"),
            "names the file and the peer: {stderr}"
        );
        assert!(
            stderr.contains(why)
                && (!why.is_empty()
                    || stderr.contains("does not decompress")
                    || stderr.contains("digest mismatch")),
            "{stderr}"
        );
        assert!(names.is_empty(), "{names:?}");
    }
}

/// A receiver of before `-z` (capabilities 1, 2, 4, 8): the sender sends
/// every block as DATA and succeeds, saying why.
#[test]
fn a_receiver_without_the_capability_gets_blocks_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.txt");
    let content = text(600_000, 9);
    std::fs::write(&file, &content).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut hello = [0u8; 17];
        c.read_exact(&mut hello).unwrap();
        let mut g = wire::greeting(7);
        g[5..9].copy_from_slice(&15u32.to_be_bytes());
        c.write_all(&g).unwrap();
        let mut kinds = Vec::new();
        let mut received = Vec::new();
        loop {
            let (kind, body) = wire::read_msg(&mut c).unwrap();
            kinds.push(kind);
            let id = &body[..4.min(body.len())];
            match kind {
                b'F' if body[33] & 1 != 0 => c.write_all(&wire::msg(b'H', &[id, &[0]].concat())),
                b'D' => {
                    let len = u32::from_be_bytes(body[12..16].try_into().unwrap()) as usize;
                    let mut bytes = vec![0u8; len + 16];
                    c.read_exact(&mut bytes).unwrap();
                    received.extend_from_slice(&bytes[..len]);
                    Ok(())
                }
                b'E' => c.write_all(&wire::msg(b'K', id)),
                b'Q' => {
                    c.write_all(&wire::msg(b'B', &[])).unwrap();
                    break;
                }
                _ => Ok(()),
            }
            .unwrap();
        }
        (kinds, received)
    });
    let o = zcopy()
        .arg("send")
        .arg(&file)
        .arg(&addr)
        .args(["-z", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("cannot decompress"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(json.get("compressed").is_none(), "{json}");
    let (kinds, received) = peer.join().unwrap();
    assert!(
        !kinds.contains(&b'P'),
        "{:?}",
        String::from_utf8_lossy(&kinds)
    );
    assert!(kinds.contains(&b'D'));
    assert!(received == content);
}
