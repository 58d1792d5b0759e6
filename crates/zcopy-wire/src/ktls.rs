//! kTLS: the kernel takes over a finished TLS session's records, so sendfile and
//! splice keep working under encryption.
//!
//! With the `tls` upper layer protocol (`setsockopt(TCP_ULP, "tls")`), then the
//! session's keys through `SOL_TLS` `TLS_TX`/`TLS_RX`, the kernel encrypts what
//! sendfile and splice put on the socket and decrypts what reads take from it:
//! an encrypted transfer keeps zero-copy and costs the CPU only the cipher. zcopy
//! probes once, on a loopback connection of its own, whether the ULP attaches
//! and takes TLS 1.3 AES-128-GCM keys in both directions. Where it does, send
//! and recv hand each session's keys to the kernel once the secret is proven
//! (see `tls`); where the ULP is missing (`ENOENT`: the `tls` module is not built
//! or not loadable) rustls encrypts in user space: one CPU copy per byte, and the
//! transfer code's bytes go through the TLS pump. `-v` and `--json` say which.
//! `ZCOPY_KTLS=off` keeps TLS in user space even where the kernel could take it,
//! so a benchmark can show both on one machine.
//!
//! Pitfalls: the kernel's record layer only moves application data; a TLS
//! control record (an alert, a session ticket, a key update) arriving after the
//! hand-off makes a plain read fail with `EIO`. zcopy's receiver sends no session
//! tickets and neither side sends close_notify after the hand-off (the protocol's
//! own END and BYE end a session), so none arrive. Neither side updates keys
//! either: a data connection stops below AES-GCM's limit and a fresh one takes
//! over (see `tls::records`).
//!
//! # References
//! - <https://docs.kernel.org/networking/tls.html>
//! - `include/uapi/linux/tls.h` (the `tls12_crypto_info_*` layouts)

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::OnceLock;

use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};

use crate::sys;

/// `-v` and `--json` where the kernel took the keys.
const IN_KERNEL: &str =
    "kTLS: keys handed to the kernel; it encrypts what sendfile and splice move: no user-space copy";
/// Where the kernel has no `tls` ULP (this is what CI's kernel says).
const NO_ULP: &str =
    "kTLS: tls ULP not in this kernel; TLS encrypts in user space: 1 CPU copy per byte";

/// The probe's answer, in the words `-v` and `--json` print.
pub fn status() -> &'static str {
    &probe().1
}

/// Whether this kernel takes TLS 1.3 AES-128-GCM keys in both directions.
pub fn available() -> bool {
    probe().0
}

fn probe() -> &'static (bool, String) {
    static PROBE: OnceLock<(bool, String)> = OnceLock::new();
    PROBE.get_or_init(|| {
        let user_space = "TLS encrypts in user space: 1 CPU copy per byte";
        if std::env::var_os("ZCOPY_KTLS").is_some_and(|v| v == "off") {
            return (false, format!("kTLS: off (ZCOPY_KTLS=off); {user_space}"));
        }
        let pair = TcpListener::bind(("127.0.0.1", 0)).and_then(|l| {
            let client = TcpStream::connect(l.local_addr()?)?;
            let server = l.accept()?.0;
            Ok((client, server))
        });
        let client = match pair {
            Ok((client, _server)) => client,
            Err(e) => return (false, format!("kTLS: not probed ({e}); {user_space}")),
        };
        match attach(&client) {
            Ok(()) => {}
            // ENOENT: no `tls` module in this kernel (CONFIG_TLS off, or not loadable).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return (false, NO_ULP.into()),
            Err(e) => return (false, format!("kTLS: tls ULP refused ({e}); {user_space}")),
        }
        // Keys that protect nothing: whether the kernel takes this version and
        // cipher in both directions (TLS 1.3 arrived in Linux 5.1).
        let info = crypto_info(TLS_1_3, Cipher::Aes128Gcm, &[0; 16], &[0; 12], 0)
            .expect("a well-formed key");
        let installed = sys::set_tls_crypto_info(&client, libc::TLS_TX, &info)
            .and_then(|()| sys::set_tls_crypto_info(&client, libc::TLS_RX, &info));
        match installed {
            Ok(()) => (true, IN_KERNEL.into()),
            Err(e) => (
                false,
                format!("kTLS: the kernel refused TLS 1.3 AES-128-GCM keys ({e}); {user_space}"),
            ),
        }
    })
}

/// setsockopt(TCP_ULP, "tls") on a connected TCP socket: the first step, which
/// leaves the socket as it was (a caller can still use TLS in user space).
pub fn attach(socket: &impl AsFd) -> io::Result<()> {
    sys::set_tcp_ulp(socket, "tls")
}

/// Hands a finished session's keys to the kernel, transmit then receive; from
/// then on reads, writes, sendfile and splice on `socket` carry TLS records.
/// `socket` must have the ULP ([`attach`]), and every record rustls received
/// must have been read and every record it made sent (`secrets` holds the next
/// sequence numbers). Generic: any rustls session, TLS 1.2 or 1.3.
pub fn install(
    socket: &impl AsFd,
    version: ProtocolVersion,
    secrets: &ExtractedSecrets,
) -> io::Result<()> {
    let version = match version {
        ProtocolVersion::TLSv1_3 => TLS_1_3,
        ProtocolVersion::TLSv1_2 => TLS_1_2,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("kTLS: no kernel record layer for {other:?}"),
            ))
        }
    };
    let tx = traffic_info(version, &secrets.tx)?;
    let rx = traffic_info(version, &secrets.rx)?;
    sys::set_tls_crypto_info(socket, libc::TLS_TX, &tx)?;
    sys::set_tls_crypto_info(socket, libc::TLS_RX, &rx)
}

/// `struct tls_crypto_info`'s version field (`TLS_1_2_VERSION`, `TLS_1_3_VERSION`).
const TLS_1_2: u16 = 0x0303;
const TLS_1_3: u16 = 0x0304;

/// The kernel's cipher numbers (`TLS_CIPHER_*`) and the key sizes they take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cipher {
    Aes128Gcm = 51,
    Aes256Gcm = 52,
    Chacha20Poly1305 = 54,
}

impl Cipher {
    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            Cipher::Aes256Gcm | Cipher::Chacha20Poly1305 => 32,
        }
    }
}

fn traffic_info(
    version: u16,
    (seq, secrets): &(u64, ConnectionTrafficSecrets),
) -> io::Result<Vec<u8>> {
    let (cipher, key, iv) = match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            (Cipher::Chacha20Poly1305, key, iv)
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "kTLS: the kernel has no record layer for this cipher",
            ))
        }
    };
    let iv: &[u8; 12] = iv
        .as_ref()
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "kTLS: an IV is 12 bytes"))?;
    crypto_info(version, cipher, key.as_ref(), iv, *seq)
}

/// The bytes of one direction's `struct tls12_crypto_info_<cipher>`: the header
/// (`version`, `cipher_type`, native-endian u16s), then `iv`, `key`, `salt` and
/// `rec_seq`, all byte arrays, so the struct has no padding. The AES-GCM nonce
/// is salt (the IV's first 4 bytes) then iv (the other 8); ChaCha20-Poly1305
/// takes all 12 as iv and has no salt. `rec_seq` is the next record's sequence
/// number, big-endian.
fn crypto_info(
    version: u16,
    cipher: Cipher,
    key: &[u8],
    iv: &[u8; 12],
    seq: u64,
) -> io::Result<Vec<u8>> {
    if key.len() != cipher.key_len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "kTLS: a {cipher:?} key is {} bytes, not {}",
                cipher.key_len(),
                key.len()
            ),
        ));
    }
    let (salt, iv) = match cipher {
        Cipher::Chacha20Poly1305 => (&iv[..0], &iv[..]),
        Cipher::Aes128Gcm | Cipher::Aes256Gcm => iv.split_at(4),
    };
    let mut info = Vec::with_capacity(4 + iv.len() + key.len() + salt.len() + 8);
    info.extend_from_slice(&version.to_ne_bytes());
    info.extend_from_slice(&(cipher as u16).to_ne_bytes());
    info.extend_from_slice(iv);
    info.extend_from_slice(key);
    info.extend_from_slice(salt);
    info.extend_from_slice(&seq.to_be_bytes());
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_structs_have_the_kernels_sizes_and_order() {
        let iv: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
        let key16: Vec<u8> = (1..=16).collect();
        let info = crypto_info(
            TLS_1_3,
            Cipher::Aes128Gcm,
            &key16,
            &iv,
            0x0102_0304_0506_0708,
        )
        .unwrap();
        // sizeof(struct tls12_crypto_info_aes_gcm_128) == 40
        assert_eq!(info.len(), 40);
        assert_eq!(&info[..2], &0x0304u16.to_ne_bytes());
        assert_eq!(&info[2..4], &51u16.to_ne_bytes());
        assert_eq!(&info[4..12], &iv[4..]);
        assert_eq!(&info[12..28], &key16[..]);
        assert_eq!(&info[28..32], &iv[..4]);
        assert_eq!(&info[32..], &[1, 2, 3, 4, 5, 6, 7, 8]);

        let key32 = [7u8; 32];
        let info = crypto_info(TLS_1_2, Cipher::Aes256Gcm, &key32, &iv, 1).unwrap();
        // sizeof(struct tls12_crypto_info_aes_gcm_256) == 56
        assert_eq!(info.len(), 56);
        assert_eq!(&info[..2], &0x0303u16.to_ne_bytes());
        assert_eq!(&info[2..4], &52u16.to_ne_bytes());
        assert_eq!(&info[4..12], &iv[4..]);
        assert_eq!(&info[44..48], &iv[..4]);
        assert_eq!(&info[48..], &1u64.to_be_bytes());

        let info = crypto_info(TLS_1_3, Cipher::Chacha20Poly1305, &key32, &iv, 2).unwrap();
        // sizeof(struct tls12_crypto_info_chacha20_poly1305) == 56, no salt
        assert_eq!(info.len(), 56);
        assert_eq!(&info[2..4], &54u16.to_ne_bytes());
        assert_eq!(&info[4..16], &iv[..]);
        assert_eq!(&info[16..48], &key32[..]);
        assert_eq!(&info[48..], &2u64.to_be_bytes());

        assert!(crypto_info(TLS_1_3, Cipher::Aes128Gcm, &key32, &iv, 0).is_err());
    }

    /// A real rustls session: a record the client sent decrypts with the key,
    /// salt, iv and sequence number as the kernel would read them from the
    /// struct built from the client's extracted secrets.
    #[test]
    fn a_record_rustls_sent_decrypts_as_the_kernel_would_from_the_struct() {
        use std::io::{Read, Write};
        let (mut client, mut server) = crate::tls::session_in_memory();
        client.writer().write_all(b"secret bytes").unwrap();
        let mut record = Vec::new();
        client.write_tls(&mut record).unwrap();
        server.read_tls(&mut &record[..]).unwrap();
        server.process_new_packets().unwrap();
        let mut plain = [0u8; 12];
        server.reader().read_exact(&mut plain).unwrap();
        assert_eq!(&plain, b"secret bytes");

        let secrets = client.dangerous_extract_secrets().unwrap();
        let info = traffic_info(TLS_1_3, &secrets.tx).unwrap();
        assert_eq!(info.len(), 40, "zcopy's sessions negotiate AES-128-GCM");
        let (iv, key, salt, next) = (&info[4..12], &info[12..28], &info[28..32], &info[32..40]);
        // The record just sent has the sequence number before `rec_seq`.
        let seq = u64::from_be_bytes(next.try_into().unwrap()) - 1;
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(salt);
        nonce[4..].copy_from_slice(iv);
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, key).unwrap(),
        );
        let (header, body) = record.split_at(5);
        let mut body = body.to_vec();
        let opened = key
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(header),
                &mut body,
            )
            .expect("the struct's key and nonce open the record");
        // TLS 1.3 inner plaintext: the data, then its content type (23: application data).
        assert_eq!(opened, b"secret bytes\x17");
    }
}
