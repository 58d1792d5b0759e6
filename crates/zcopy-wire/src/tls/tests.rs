//! The TLS handshake and the secret's proof, in memory.

use std::time::Duration;

use super::pump::PUMPS;
use super::*;

/// A finished send/recv handshake between the two configurations, in memory.
pub(crate) fn session_in_memory() -> (rustls::ClientConnection, rustls::ServerConnection) {
    fn carry(
        from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
        to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    ) {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).unwrap();
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
    }
    let receiver = Receiver::new(Secret(b"secret".to_vec()), None).unwrap();
    let sender = Sender::new(Secret(b"secret".to_vec()), &receiver.fingerprint).unwrap();
    let name = ServerName::try_from("zcopy").unwrap();
    let mut client = rustls::ClientConnection::new(sender.config.clone(), name).unwrap();
    let mut server = rustls::ServerConnection::new(receiver.config.clone()).unwrap();
    while client.is_handshaking()
        || server.is_handshaking()
        || client.wants_write()
        || server.wants_write()
    {
        carry(&mut client, &mut server);
        carry(&mut server, &mut client);
    }
    (client, server)
}

/// Two pumps over a real loopback connection, a finished session between them:
/// 24 MiB each way at once (both pumps' buffers fill and drain), then each
/// side's end of stream reaches the other, and both pumps exit.
#[test]
fn two_pumps_carry_both_directions_at_once_and_end() {
    let (client, server) = session_in_memory();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let b = listener.accept().unwrap().0;
    let near_a = spawn_pump(Connection::Client(client), a, Ending::Quiet).unwrap();
    let near_b = spawn_pump(Connection::Server(server), b, Ending::CloseNotify).unwrap();
    let bytes = |seed: u64| -> Vec<u8> {
        let mut x = seed;
        (0..24 << 20)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect()
    };
    let (to_b, to_a) = (bytes(1), bytes(2));
    // A stalled pump fails the test instead of hanging it.
    let stall = Some(Duration::from_secs(30));
    let send = |mut near: TcpStream, data: Vec<u8>| {
        std::thread::spawn(move || {
            near.set_write_timeout(stall).unwrap();
            near.write_all(&data).expect("the pump takes the bytes");
            near.shutdown(Shutdown::Write).unwrap();
        })
    };
    let receive = |mut near: TcpStream| {
        std::thread::spawn(move || {
            near.set_read_timeout(stall).unwrap();
            let mut got = Vec::new();
            near.read_to_end(&mut got)
                .expect("the pump delivers the bytes");
            got
        })
    };
    let writers = [
        send(near_a.try_clone().unwrap(), to_b.clone()),
        send(near_b.try_clone().unwrap(), to_a.clone()),
    ];
    let (at_b, at_a) = (receive(near_b), receive(near_a));
    for w in writers {
        w.join().unwrap();
    }
    assert!(at_b.join().unwrap() == to_b, "a → b differs");
    assert!(at_a.join().unwrap() == to_a, "b → a differs");
    finish_pumps(Duration::from_secs(10));
    assert_eq!(*PUMPS.0.lock().unwrap(), 0, "a pump still runs");
}
