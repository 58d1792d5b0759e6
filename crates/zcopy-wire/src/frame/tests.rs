//! The protocol's round trips and refusals, message by message.

use super::*;

fn round_trip(msg: Msg) {
    let mut bytes = Vec::new();
    msg.encode(&mut bytes);
    let mut r = Reader::new(&bytes[..]);
    assert_eq!(r.next().unwrap(), Some(msg));
    assert_eq!(r.next().unwrap(), None);
}

#[test]
fn messages_round_trip() {
    round_trip(Msg::File(Entry {
        id: 7,
        kind: EntryKind::Symlink,
        mode: 0o755,
        mtime: (-5, 999_999_999),
        size: None,
        block: BLOCK,
        ask: true,
        complete_ok: true,
        delta: true,
        inplace: true,
        digest: Some(u128::MAX / 3),
        path: "a/b c/é".into(),
        target: "../x".into(),
        attrs: Box::default(),
    }));
    round_trip(Msg::File(Entry {
        id: 8,
        kind: EntryKind::CharDevice,
        mode: 0o4755,
        mtime: (1, 2),
        size: None,
        block: BLOCK,
        ask: false,
        complete_ok: false,
        delta: false,
        inplace: false,
        digest: None,
        path: b"dev/bad\xffnull".to_vec(),
        target: Vec::new(),
        attrs: Box::new(Attrs {
            owner: Some(Id {
                id: 1000,
                name: b"al\xffice".to_vec(),
            }),
            group: Some(Id {
                id: 7,
                name: Vec::new(),
            }),
            rdev: Some(0x0103),
            xattrs: Some(vec![
                (b"user.a".to_vec(), vec![0, 1, 2]),
                (b"user.b".to_vec(), Vec::new()),
            ]),
            acl: Some(vec![
                AclEntry {
                    tag: 1,
                    perm: 7,
                    who: None,
                },
                AclEntry {
                    tag: ACL_USER,
                    perm: 5,
                    who: Some(Id {
                        id: 1,
                        name: b"daemon".to_vec(),
                    }),
                },
            ]),
            default_acl: Some(Vec::new()),
        }),
    }));
    round_trip(Msg::Data {
        id: 1,
        offset: 5 << 32,
        len: 9,
    });
    round_trip(Msg::Packed {
        id: 2,
        offset: 4 << 20,
        len: 4 << 20,
        packed: 1234,
        literal: false,
    });
    round_trip(Msg::Packed {
        id: 9,
        offset: 77,
        len: 65536,
        packed: 3,
        literal: true,
    });
    round_trip(Msg::Hole {
        id: 1,
        offset: 0,
        len: 4096,
    });
    round_trip(Msg::End {
        id: 1,
        size: 3,
        digest: u128::MAX - 1,
    });
    round_trip(Msg::Have {
        id: 3,
        have: Have::Blocks(vec![0b101]),
    });
    round_trip(Msg::Have {
        id: 3,
        have: Have::Complete,
    });
    round_trip(Msg::Sig {
        id: 4,
        last: true,
        chunks: vec![0, 0, 1, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9],
    });
    round_trip(Msg::Copy {
        id: 4,
        old: 1 << 40,
        new: 3,
        len: 65536,
    });
    round_trip(Msg::Literal {
        id: 4,
        offset: 77,
        len: 100,
    });
    round_trip(Msg::Err {
        id: 0,
        reason: "No space left on device".into(),
    });
    round_trip(Msg::Mirror(Mirror {
        delete: true,
        dry_run: true,
        itemize: true,
        rules: vec![b"- *.o".to_vec(), b":- .gitignore".to_vec()],
        ..Mirror::default()
    }));
    round_trip(Msg::Names(vec![b"a".to_vec(), b"a/b\xff".to_vec()]));
    round_trip(Msg::Names(Vec::new()));
    round_trip(Msg::Item(b">f+++++++++ a/b".to_vec()));
    for m in [Msg::Done, Msg::Bye, Msg::Ok { id: 2 }] {
        round_trip(m);
    }
    let g = Greeting {
        version: VERSION,
        caps: CAPS,
        session: 42,
    };
    assert_eq!(Greeting::decode(&g.encode()).unwrap(), g);
}

#[test]
fn hostile_paths_and_bodies_are_refused() {
    for path in ["..", ".", "a/../b", "/etc/passwd", "x\0y", "", "a//b", "a/"] {
        assert!(check_path(path.as_bytes()).is_err(), "{path:?}");
    }
    assert!(check_path(b"a/b/c.txt").is_ok());
    assert!(check_path(b"d\xff/n\xffme").is_ok(), "names are bytes");
    assert!(Msg::decode(b'F', &[0; 3]).is_err());
    assert!(Msg::decode(b'?', &[]).is_err());
    let mut huge = vec![b'D'];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(Reader::new(&huge[..]).next().is_err());
    assert!(Greeting::decode(b"GET / HTTP/1.1\r\n\r").is_err());
}

/// What the fuzz target checks: reading never panics, and what decodes encodes
/// back to the same message.
fn read_all(data: &[u8]) {
    let mut reader = Reader::new(data);
    let _ = reader.greeting();
    while let Ok(Some(msg)) = reader.next() {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes);
        assert_eq!(Reader::new(&bytes[..]).next().unwrap(), Some(msg));
    }
}

/// The fuzz target's seed corpus (hostile sessions) goes through the reader.
#[test]
fn fuzz_corpus_is_read_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frame");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        read_all(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 10, "the corpus is there");
}

/// Every prefix and thousands of one-byte corruptions of a valid session.
#[test]
fn corrupted_sessions_never_panic() {
    let mut session = Greeting {
        version: VERSION,
        caps: CAPS,
        session: 0,
    }
    .encode()
    .to_vec();
    Msg::File(Entry {
        id: 1,
        kind: EntryKind::File,
        mode: 0o644,
        mtime: (1, 2),
        size: Some(3),
        block: BLOCK,
        ask: true,
        complete_ok: false,
        delta: false,
        inplace: false,
        digest: None,
        path: "d/a.txt".into(),
        target: Vec::new(),
        attrs: Box::default(),
    })
    .encode(&mut session);
    Msg::Data {
        id: 1,
        offset: 0,
        len: 3,
    }
    .encode(&mut session);
    Msg::Have {
        id: 1,
        have: Have::Blocks(vec![1, 2, 3]),
    }
    .encode(&mut session);
    Msg::End {
        id: 1,
        size: 3,
        digest: 7,
    }
    .encode(&mut session);
    Msg::Done.encode(&mut session);
    for end in 0..=session.len() {
        read_all(&session[..end]);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bad = session.clone();
        let at = (x % bad.len() as u64) as usize;
        bad[at] = (x >> 32) as u8;
        read_all(&bad);
    }
}

#[test]
fn have_bits() {
    let h = Have::Blocks(vec![0b1000_0001, 0b1]);
    assert!(h.holds(0) && h.holds(7) && h.holds(8));
    assert!(!h.holds(1) && !h.holds(9) && !h.holds(100));
}

#[test]
fn the_lower_version_wins_down_to_the_oldest_spoken() {
    assert_eq!(negotiate(VERSION, 2), Some(2));
    assert_eq!(negotiate(2, VERSION), Some(2));
    assert_eq!(negotiate(VERSION, VERSION + 5), Some(VERSION));
    assert_eq!(negotiate(VERSION, 1), None);
    assert_eq!(caps_of(2) & CAP_ATTRS, 0);
    assert_ne!(caps_of(VERSION) & CAP_ATTRS, 0);
}

#[test]
fn a_hard_link_to_a_path_that_leaves_the_directory_is_refused() {
    let mut bytes = Vec::new();
    Msg::File(Entry {
        id: 1,
        kind: EntryKind::HardLink,
        mode: 0o644,
        mtime: (0, 0),
        size: None,
        block: BLOCK,
        ask: false,
        complete_ok: false,
        delta: false,
        inplace: false,
        digest: None,
        path: b"a".to_vec(),
        target: b"../etc/passwd".to_vec(),
        attrs: Box::default(),
    })
    .encode(&mut bytes);
    let err = Reader::new(&bytes[..]).next().unwrap_err();
    assert!(err.to_string().contains("refused file name"), "{err}");
}
