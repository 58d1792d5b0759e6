//! The `tokio` feature: `zcopy::tokio::copy` between tokio files and sockets on
//! loopback, the path each pair takes, waiting on a slow reader, the fallback to
//! `tokio::io::copy`, and a peer that resets.

mod common;

use std::io::{ErrorKind, Seek, SeekFrom};
use std::time::Duration;

use common::{file_with, pattern};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use zcopy::tokio::{copy, copy_with, Fallback, Path};
use zcopy::{Engine, EngineChoice, FdKind, Options, Side, Syscall};

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = listener.accept().await.unwrap();
    (a, b)
}

/// A tokio file holding `data`, positioned at `at`.
fn tokio_file(data: &[u8], at: u64) -> File {
    let mut file = file_with(data);
    file.seek(SeekFrom::Start(at)).unwrap();
    File::from_std(file)
}

/// Reads `socket` to its end on a task of its own.
fn drain<S>(mut socket: S) -> tokio::task::JoinHandle<Vec<u8>>
where
    S: AsyncReadExt + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut got = Vec::new();
        socket.read_to_end(&mut got).await.unwrap();
        got
    })
}

#[tokio::test]
async fn a_file_goes_into_a_tcp_socket_by_sendfile_from_its_position() {
    let data = pattern(4 << 20);
    let mut src = tokio_file(&data, 1000);
    let (mut ours, theirs) = tcp_pair().await;
    let got = drain(theirs);
    let outcome = copy(&mut src, &mut ours).await.unwrap();
    drop(ours);
    assert_eq!(outcome.engine(), Some(Engine::Sendfile), "{}", outcome.path);
    assert_eq!(outcome.bytes, data.len() as u64 - 1000);
    let Path::Engine(report) = &outcome.path else {
        unreachable!("the engine ran")
    };
    assert!(report.syscalls.get(Syscall::Sendfile) > 0);
    assert!(got.await.unwrap() == data[1000..]);
    // As after tokio::io::copy: the file's position is past the last byte sent.
    assert_eq!(src.stream_position().await.unwrap(), data.len() as u64);
}

#[tokio::test]
async fn a_file_goes_into_a_unix_socket_by_sendfile() {
    let data = pattern(1 << 20);
    let mut src = tokio_file(&data, 0);
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let got = drain(theirs);
    let outcome = copy(&mut src, &mut ours).await.unwrap();
    drop(ours);
    assert_eq!(outcome.engine(), Some(Engine::Sendfile), "{}", outcome.path);
    assert!(got.await.unwrap() == data);
}

#[tokio::test]
async fn socket_to_socket_splices_and_waits_for_a_slow_reader() {
    let data = pattern(8 << 20);
    let (mut feeder, mut src) = tcp_pair().await;
    let (mut sink, mut reader) = tcp_pair().await;
    // Small fixed buffers on the reader's side, so the sink fills long before the end.
    rustix::net::sockopt::set_socket_recv_buffer_size(&reader, 64 << 10).unwrap();
    rustix::net::sockopt::set_socket_send_buffer_size(&sink, 64 << 10).unwrap();
    let sent = data.clone();
    let feeding = tokio::spawn(async move {
        feeder.write_all(&sent).await.unwrap();
        feeder.shutdown().await.unwrap();
    });
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 << 10];
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            match reader.read(&mut buf).await.unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    let outcome = copy(&mut src, &mut sink).await.unwrap();
    drop(sink);
    feeding.await.unwrap();
    assert_eq!(outcome.engine(), Some(Engine::Splice), "{}", outcome.path);
    assert_eq!(outcome.bytes, data.len() as u64);
    assert!(
        outcome.sink_waits > 0,
        "the slow reader never made the sink wait"
    );
    assert!(reading.await.unwrap() == data);
}

#[tokio::test]
async fn a_socket_goes_into_a_file_by_splice() {
    let data = pattern(2 << 20);
    let (mut feeder, mut src) = tcp_pair().await;
    let sent = data.clone();
    let feeding = tokio::spawn(async move {
        feeder.write_all(&sent).await.unwrap();
    });
    let mut sink = File::from_std(tempfile::tempfile().unwrap());
    let outcome = copy(&mut src, &mut sink).await.unwrap();
    feeding.await.unwrap();
    assert_eq!(outcome.engine(), Some(Engine::Splice), "{}", outcome.path);
    sink.rewind().await.unwrap();
    let mut got = Vec::new();
    sink.read_to_end(&mut got).await.unwrap();
    assert!(got == data);
}

#[tokio::test]
async fn a_duplex_falls_back_to_tokio_io_copy_and_says_so() {
    let data = pattern(1 << 20);
    let (mut writer, mut src) = tokio::io::duplex(64 << 10);
    let sent = data.clone();
    let feeding = tokio::spawn(async move {
        writer.write_all(&sent).await.unwrap();
    });
    let (mut ours, theirs) = tcp_pair().await;
    let got = drain(theirs);
    let outcome = copy(&mut src, &mut ours).await.unwrap();
    drop(ours);
    feeding.await.unwrap();
    assert_eq!(outcome.engine(), None);
    match &outcome.path {
        Path::Fallback(Fallback::NoDescriptor { side, what }) => {
            assert_eq!(*side, Side::Source);
            assert!(what.contains("duplex"), "{what}");
        }
        other => panic!("expected the fallback for a duplex, got {other}"),
    }
    assert!(outcome.path.to_string().starts_with("tokio::io::copy"));
    assert_eq!(outcome.bytes, data.len() as u64);
    assert!(got.await.unwrap() == data);
}

#[tokio::test]
async fn an_engine_that_cannot_move_the_pair_falls_back_with_its_words() {
    let data = pattern(256 << 10);
    let (mut feeder, mut src) = tcp_pair().await;
    let sent = data.clone();
    let feeding = tokio::spawn(async move {
        feeder.write_all(&sent).await.unwrap();
    });
    let (mut ours, theirs) = tcp_pair().await;
    let got = drain(theirs);
    let options = Options::default().engine(EngineChoice::Only(Engine::Sendfile));
    let outcome = copy_with(&mut src, &mut ours, options).await.unwrap();
    drop(ours);
    feeding.await.unwrap();
    match &outcome.path {
        Path::Fallback(Fallback::Refused(words)) => {
            assert!(words.contains("sendfile"), "{words}")
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(got.await.unwrap() == data);
}

#[tokio::test]
async fn a_device_file_falls_back_and_the_fallback_keeps_to_the_length() {
    let mut src = File::open("/dev/zero").await.unwrap();
    let (mut ours, theirs) = tcp_pair().await;
    let got = drain(theirs);
    let outcome = copy_with(&mut src, &mut ours, Options::default().len(1 << 20))
        .await
        .unwrap();
    drop(ours);
    match &outcome.path {
        Path::Fallback(Fallback::NotRegularFile { side, kind }) => {
            assert_eq!((*side, *kind), (Side::Source, FdKind::CharDevice))
        }
        other => panic!("expected the fallback for a device, got {other}"),
    }
    assert_eq!(outcome.bytes, 1 << 20);
    let got = got.await.unwrap();
    assert!(got.len() == 1 << 20 && got.iter().all(|&b| b == 0));
}

/// Reads a little from `socket`, then closes it with a reset (`SO_LINGER` 0).
fn reset_after_a_little(mut socket: TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        socket.read_exact(&mut buf).await.unwrap();
        rustix::net::sockopt::set_socket_linger(&socket, Some(Duration::ZERO)).unwrap();
    })
}

fn is_reset(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}

#[tokio::test]
async fn a_peer_reset_during_sendfile_is_an_error() {
    let data = pattern(64 << 20);
    let mut src = tokio_file(&data, 0);
    let (mut ours, theirs) = tcp_pair().await;
    let peer = reset_after_a_little(theirs);
    let err = copy(&mut src, &mut ours).await.unwrap_err();
    peer.await.unwrap();
    assert!(is_reset(err.kind()), "{err}");
    let moved = err.moved().expect("an engine error says how far it got");
    assert!(moved >= 64 << 10 && moved < data.len() as u64, "{moved}");
}

#[tokio::test]
async fn a_peer_reset_during_splice_is_an_error() {
    let (mut feeder, mut src) = tcp_pair().await;
    let feeding = tokio::spawn(async move {
        let chunk = pattern(1 << 20);
        // Until the copy fails and drops its end.
        while feeder.write_all(&chunk).await.is_ok() {}
    });
    let (mut ours, theirs) = tcp_pair().await;
    let peer = reset_after_a_little(theirs);
    let err = copy(&mut src, &mut ours).await.unwrap_err();
    peer.await.unwrap();
    drop(src);
    feeding.await.unwrap();
    assert!(is_reset(err.kind()), "{err}");
    assert!(err.to_string().contains("splice"), "{err}");
}

#[tokio::test]
async fn a_file_goes_into_a_file_by_copy_file_range() {
    let data = pattern(1 << 20);
    let mut src = tokio_file(&data, 0);
    let mut sink = File::from_std(tempfile::tempfile().unwrap());
    sink.write_all(b"head").await.unwrap();
    let outcome = copy(&mut src, &mut sink).await.unwrap();
    assert_eq!(
        outcome.engine(),
        Some(Engine::CopyFileRange),
        "{}",
        outcome.path
    );
    sink.rewind().await.unwrap();
    let mut got = Vec::new();
    sink.read_to_end(&mut got).await.unwrap();
    // Written at the sink's position, after what tokio had written before.
    assert!(got[..4] == *b"head" && got[4..] == data);
}

#[tokio::test]
async fn a_proxy_splices_both_directions_of_split_sockets_at_once() {
    let (up, down) = (pattern(4 << 20), pattern(3 << 20));
    let (client, proxy_in) = tcp_pair().await;
    let (proxy_out, server) = tcp_pair().await;
    let ends = |socket: TcpStream, send: Vec<u8>| {
        let (reader, mut writer) = socket.into_split();
        let got = drain(reader);
        tokio::spawn(async move {
            writer.write_all(&send).await.unwrap();
            writer.shutdown().await.unwrap();
        });
        got
    };
    // Each peer sends its part and reads what comes back.
    let at_client = ends(client, up.clone());
    let at_server = ends(server, down.clone());
    let (mut in_read, mut in_write) = proxy_in.into_split();
    let (mut out_read, mut out_write) = proxy_out.into_split();
    let upward = tokio::spawn(async move {
        let outcome = copy(&mut in_read, &mut out_write).await.unwrap();
        out_write.shutdown().await.unwrap();
        outcome
    });
    let downward = tokio::spawn(async move {
        let outcome = copy(&mut out_read, &mut in_write).await.unwrap();
        in_write.shutdown().await.unwrap();
        outcome
    });
    for (task, len) in [(upward, up.len()), (downward, down.len())] {
        let outcome = task.await.unwrap();
        assert_eq!(outcome.engine(), Some(Engine::Splice), "{}", outcome.path);
        assert_eq!(outcome.bytes, len as u64);
    }
    assert!(at_server.await.unwrap() == up);
    assert!(at_client.await.unwrap() == down);
}
