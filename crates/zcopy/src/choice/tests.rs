use super::*;

#[test]
fn names_round_trip() {
    for engine in Engine::ALL {
        assert_eq!(engine.name().parse(), Ok(EngineChoice::Only(engine)));
    }
    assert_eq!("auto".parse(), Ok(EngineChoice::Auto));
    assert!("zero".parse::<EngineChoice>().is_err());
}

#[test]
fn auto_plan_says_why_engines_are_skipped() {
    let (usable, skipped) = EngineChoice::Auto
        .plan(FdKind::Pipe, FdKind::Socket)
        .unwrap();
    assert_eq!(usable, vec![Engine::Splice, Engine::ReadWrite]);
    let reasons: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
    assert!(
        reasons.contains(&"sendfile: source is a pipe".to_string()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"copy-file-range: source is a pipe".to_string()));
}

fn profile(json: &str) -> Profile {
    Profile::parse(json.as_bytes()).unwrap()
}

const COPY_WINS: &str = r#"{ "version": 1, "calibrated": "2026-12-02", "send_large": [
    { "destination": "local-tcp", "size": 1, "mib_s": { "sendfile": 1500.0, "splice": 1520.0, "read-write": 1880.0 } },
    { "destination": "pipe", "size": 1, "mib_s": { "sendfile": 1300.0, "splice": 1320.0, "read-write": 960.0 } }
] }"#;

#[test]
fn auto_tries_the_calibrated_winner_first_and_says_why() {
    let p = profile(COPY_WINS);
    let plan = EngineChoice::Auto
        .plan_for(
            FdKind::File,
            FdKind::Socket,
            Some(Destination::LocalTcp),
            Some(&p),
        )
        .unwrap();
    assert_eq!(
        plan.engines,
        [
            Engine::ReadWrite,
            Engine::Sendfile,
            Engine::Splice,
            Engine::Mmap
        ],
        "the winner first, the rest in the chain's order"
    );
    let why = plan.preference.unwrap();
    assert_eq!(why.engine, Engine::ReadWrite);
    assert_eq!(
        why.to_string(),
        "read-write first into a TCP peer on this host: 1.25x sendfile into a copying \
         reader in this machine's calibration of 2026-12-02"
    );
    let pipe = EngineChoice::Auto
        .plan_for(
            FdKind::File,
            FdKind::Pipe,
            Some(Destination::Pipe),
            Some(&p),
        )
        .unwrap();
    assert_eq!(
        pipe.engines[0],
        Engine::Sendfile,
        "splice's 2% decides nothing"
    );
    assert_eq!(
        pipe.preference.unwrap().basis,
        Basis::Level {
            date: "2026-12-02".into()
        }
    );
}

#[test]
fn a_winner_that_loses_into_a_splice_reader_does_not_go_first() {
    let p = profile(
        r#"{ "version": 1, "calibrated": "2026-12-02", "send_large": [
        { "destination": "local-tcp", "reader": "copy", "size": 1, "mib_s": { "sendfile": 1500.0, "read-write": 1880.0 } },
        { "destination": "local-tcp", "reader": "splice", "size": 1, "mib_s": { "sendfile": 3800.0, "read-write": 2200.0 } }
    ] }"#,
    );
    let plan = EngineChoice::Auto
        .plan_for(
            FdKind::File,
            FdKind::Socket,
            Some(Destination::LocalTcp),
            Some(&p),
        )
        .unwrap();
    assert_eq!(plan.engines[0], Engine::Sendfile);
    let why = plan.preference.unwrap().to_string();
    assert!(
        why.ends_with(
            "measured read-write at 1.25x into a copying reader but 0.58x into a splice reader"
        ),
        "{why}"
    );
}

#[test]
fn without_a_profile_or_a_destination_the_chain_stands() {
    let p = profile(COPY_WINS);
    let unmeasured = EngineChoice::Auto
        .plan_for(
            FdKind::File,
            FdKind::Socket,
            Some(Destination::NetworkTcp),
            Some(&p),
        )
        .unwrap();
    assert_eq!(unmeasured.engines[0], Engine::Sendfile);
    assert_eq!(unmeasured.preference.unwrap().basis, Basis::Default);
    let none = EngineChoice::Auto
        .plan_for(
            FdKind::File,
            FdKind::Socket,
            Some(Destination::LocalTcp),
            None,
        )
        .unwrap();
    assert_eq!(none.engines[0], Engine::Sendfile);
    assert!(none
        .preference
        .unwrap()
        .to_string()
        .contains("without a calibration"));
    let unknown = EngineChoice::Auto
        .plan_for(FdKind::File, FdKind::Socket, None, Some(&p))
        .unwrap();
    assert_eq!(
        (unknown.engines[0], unknown.preference),
        (Engine::Sendfile, None)
    );
    let only = EngineChoice::Only(Engine::Splice)
        .plan_for(
            FdKind::File,
            FdKind::Socket,
            Some(Destination::LocalTcp),
            Some(&p),
        )
        .unwrap();
    assert_eq!(
        (only.engines, only.preference),
        (vec![Engine::Splice], None)
    );
}

#[test]
fn destinations_of_real_descriptors() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(Destination::of(&a, FdKind::Socket), Some(Destination::Unix));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert_eq!(
        Destination::of(&tcp, FdKind::Socket),
        Some(Destination::LocalTcp)
    );
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(Destination::of(&r, FdKind::Pipe), Some(Destination::Pipe));
    let file = tempfile::tempfile().unwrap();
    assert_eq!(Destination::of(&file, FdKind::File), None);
    for d in Destination::ALL {
        assert_eq!(d.name().parse(), Ok(d));
    }
}

#[test]
fn only_refuses_what_it_cannot_do() {
    let err = EngineChoice::Only(Engine::CopyFileRange)
        .plan(FdKind::File, FdKind::Socket)
        .unwrap_err();
    assert!(err.to_string().contains("sink is a socket"), "{err}");
}
